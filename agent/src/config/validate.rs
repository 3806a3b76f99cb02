//! The pure validation pass: every check a config must pass before anything runs,
//! with every problem collected at once (one run of `log2drop check` shows all of
//! them) and each tied to the key path it is about. Positions are added by the
//! caller; this pass only sees the plain config data.
//!
//! The rule behind most checks: a config that would start and then silently do
//! nothing (a filter no source feeds, a jail nothing reaches, no backend) is an
//! error, not a warning.

use std::collections::{BTreeMap, BTreeSet};

use super::locate::KeyPath;
use super::{
    Config, MAX_MAX_LINE_BYTES, MAX_MAXRETRY, MIN_MAX_LINE_BYTES, SourceConfig, SourceKind,
};
use crate::backend::kind::{BackendKind, unknown_backend};
use crate::engine::{FLEET_JAIL, MANUAL_JAIL, allowlist};
use crate::filter::{self, HostRule};

/// One problem, before it has a position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// What the problem is about.
    pub key: KeyPath,
    /// What is wrong, and where possible how to fix it.
    pub message: String,
}

struct Issues(Vec<Issue>);

impl Issues {
    fn push(&mut self, key: KeyPath, message: impl Into<String>) {
        self.0.push(Issue {
            key,
            message: message.into(),
        });
    }
}

/// Checks everything that deserialisation cannot, and returns every problem found.
pub fn validate(cfg: &Config) -> Vec<Issue> {
    let mut out = Issues(Vec::new());
    check_agent(cfg, &mut out);
    check_backends(cfg, &mut out);
    check_filters(cfg, &mut out);
    let fed = check_sources(cfg, &mut out);
    check_jails(cfg, &fed, &mut out);
    check_control(cfg, &mut out);
    check_notify(cfg, &mut out);
    for (key, message) in cfg.metrics.check(&KeyPath::of(&["metrics"])) {
        out.push(key, message);
    }
    check_fleet(cfg, &mut out);
    let dns = KeyPath::of(&["dns"]);
    for (key, message) in cfg.dns.problems() {
        out.push(dns.key(key), message);
    }
    out.0
}

/// `[fleet]` checks itself against the jails and backends.
fn check_fleet(cfg: &Config, out: &mut Issues) {
    let Some(fleet) = &cfg.fleet else {
        return;
    };
    let jails: Vec<&str> = cfg.jails.keys().map(String::as_str).collect();
    let backends = cfg.backends.names();
    let cx = crate::fleet::config::Context {
        jails: &jails,
        backends: &backends,
    };
    for (key, message) in fleet.check(&KeyPath::of(&["fleet"]), cx) {
        out.push(key, message);
    }
}

fn check_agent(cfg: &Config, out: &mut Issues) {
    let agent = KeyPath::of(&["agent"]);
    if cfg.agent.state_dir.as_os_str().is_empty() {
        out.push(agent.key("state_dir"), "must not be empty");
    }
    if cfg.agent.socket.as_os_str().is_empty() {
        out.push(agent.key("socket"), "must not be empty");
    }
    if cfg.agent.max_tracked == 0 {
        out.push(agent.key("max_tracked"), "must be at least 1");
    }
    for (i, entry) in cfg.agent.allow.iter().enumerate() {
        if let Err(e) = allowlist::parse_entry(entry) {
            out.push(agent.key("allow").index(i), e.to_string());
        }
    }
}

/// Each backend checks its own table; `[backends]` composes them.
fn check_backends(cfg: &Config, out: &mut Issues) {
    for (key, message) in cfg.backends.check(&KeyPath::of(&["backends"])) {
        out.push(key, message);
    }
}

fn check_filters(cfg: &Config, out: &mut Issues) {
    for (name, f) in &cfg.filters {
        let path = KeyPath::of(&["filters", name]);
        if let Some(loaded) = crate::fail2ban::load_config(f) {
            if f.counting_lists().iter().any(|l| !l.is_empty()) {
                out.push(
                    path.key("regex"),
                    "a filter takes its regexes either from its own lists or from a fail2ban file, not both",
                );
            }
            if f.fail2ban.is_some() && f.fail2ban_inline.is_some() {
                out.push(
                    path.key("fail2ban_inline"),
                    "give either fail2ban = FILE or fail2ban_inline, not both",
                );
            }
            if let Err(e) = loaded {
                let key = if f.fail2ban.is_some() {
                    "fail2ban"
                } else {
                    "fail2ban_inline"
                };
                out.push(path.key(key), e.to_string());
            }
        } else if !f.options.is_empty() {
            out.push(
                path.key("options"),
                "only applies with fail2ban = \"FILE\" (options of a fail2ban filter)",
            );
        }
        if f.regex.is_empty()
            && f.attempt.is_empty()
            && f.address.is_empty()
            && !crate::fail2ban::is_fail2ban(f)
        {
            out.push(
                path.key("regex"),
                "lists no regex: a filter needs at least one, with <HOST> where the address is",
            );
        }
        let rule = filter::host_rule(&[&f.counting_lists()]);
        for (role, list) in filter::Role::ALL.into_iter().zip(f.counting_lists()) {
            for (i, re) in list.iter().enumerate() {
                if let Err(e) = filter::check_pattern(re, rule) {
                    out.push(path.key(role.key()).index(i), e.to_string());
                }
            }
        }
        for (i, re) in f.ignore.iter().enumerate() {
            if let Err(e) = filter::check_pattern(re, HostRule::Optional) {
                out.push(path.key("ignore").index(i), e.to_string());
            }
        }
        for (key, message) in filter::check_settings(f) {
            out.push(path.key(key), message);
        }
    }
}

/// Whether `reference` names a filter (a `[filters.NAME]` table or a built-in
/// filter, optionally `NAME[mode=MODE]` with a mode it has).
fn known_filter(cfg: &Config, reference: &str) -> bool {
    filter::resolve(&cfg.filters, reference).is_ok()
}

fn unknown_filter(cfg: &Config, reference: &str) -> String {
    let name = match filter::resolve(&cfg.filters, reference) {
        Err(filter::ReferenceError::Unknown { name }) => name,
        Err(e) => return e.to_string(),
        Ok(_) => return String::new(),
    };
    let builtins: Vec<&str> = filter::builtin::names().collect();
    if cfg.filters.is_empty() {
        format!(
            "unknown filter {name:?} (not a built-in filter: {}; or define it in [filters.{name}])",
            builtins.join(", ")
        )
    } else {
        let known: Vec<&str> = cfg.filters.keys().map(String::as_str).collect();
        format!(
            "unknown filter {name:?} (defined: {}; built-in: {})",
            known.join(", "),
            builtins.join(", ")
        )
    }
}

/// Checks sources; returns, per filter name, the sources that feed it.
fn check_sources<'c>(cfg: &'c Config, out: &mut Issues) -> BTreeMap<&'c str, Vec<&'c str>> {
    let mut fed: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut paths: BTreeMap<&std::path::Path, &str> = BTreeMap::new();
    let used_by_jails: BTreeSet<&str> = cfg
        .jails
        .values()
        .flat_map(|j| j.filters.iter().map(String::as_str))
        .collect();
    let mut stdin: Option<&str> = None;
    for (name, src) in &cfg.sources {
        let path = KeyPath::of(&["sources", name]);
        if name.starts_with('@') {
            // `@fleet STREAM` names the fleet link's saved position in the store.
            out.push(
                path.clone(),
                "a source name may not start with @ (reserved)",
            );
        }
        check_source_kind(name, src, &path, &mut paths, &mut stdin, out);
        if src.filters.is_empty() {
            out.push(
                path.key("filters"),
                "lists no filter: the source's lines would never be looked at",
            );
        }
        let mut seen = BTreeSet::new();
        for (i, f) in src.filters.iter().enumerate() {
            let key = path.key("filters").index(i);
            if !known_filter(cfg, f) {
                out.push(key, unknown_filter(cfg, f));
            } else if !seen.insert(f.as_str()) {
                out.push(key, format!("filter {f:?} is listed twice"));
            } else {
                fed.entry(f.as_str()).or_default().push(name.as_str());
                if !used_by_jails.contains(f.as_str()) {
                    out.push(
                        key,
                        format!(
                            "filter {f:?} feeds no jail: add it to a [jails.NAME] filters list, or remove it here"
                        ),
                    );
                }
            }
        }
    }
    fed
}

/// The keys that depend on a source's `type`.
fn check_source_kind<'c>(
    name: &'c str,
    src: &'c SourceConfig,
    path: &KeyPath,
    paths: &mut BTreeMap<&'c std::path::Path, &'c str>,
    stdin: &mut Option<&'c str>,
    out: &mut Issues,
) {
    let kind = src.kind;
    let only = |key: &str, allowed: &str, out: &mut Issues| {
        out.push(
            path.key(key),
            format!(
                "only applies to type = {allowed} (this source is type = {})",
                kind_name(kind)
            ),
        );
    };
    let file = matches!(kind, SourceKind::File | SourceKind::Auto);
    let journal = matches!(kind, SourceKind::Journal | SourceKind::Auto);
    if !file && !src.path.as_os_str().is_empty() {
        only("path", "\"file\" or \"auto\"", out);
    }
    if !journal {
        if src.matches.is_some() {
            only("match", "\"journal\" or \"auto\"", out);
        }
        if src.journalctl.is_some() {
            only("journalctl", "\"journal\" or \"auto\"", out);
        }
    }
    if kind != SourceKind::Command && src.command.is_some() {
        only("command", "\"command\"", out);
    }
    if !(file || journal) && src.start.is_some() {
        only("start", "\"file\", \"journal\" or \"auto\"", out);
    }
    if !(MIN_MAX_LINE_BYTES..=MAX_MAX_LINE_BYTES).contains(&src.max_line_bytes) {
        out.push(
            path.key("max_line_bytes"),
            format!("must be between {MIN_MAX_LINE_BYTES} and {MAX_MAX_LINE_BYTES} bytes"),
        );
    }
    match kind {
        SourceKind::Auto => {
            if src.path.as_os_str().is_empty() || src.matches.is_none() {
                out.push(
                    path.clone(),
                    "an auto source needs both path = \"/var/log/...\" (read when it exists) and match = [\"_SYSTEMD_UNIT=...\"] (the journal otherwise)",
                );
            }
            check_file_path(name, src, path, paths, out);
            check_journal_keys(src, path, out);
        }
        SourceKind::File => {
            if src.path.as_os_str().is_empty() {
                out.push(
                    path.clone(),
                    "a file source needs path = \"/var/log/...\" (or set type = \"journal\", \"command\" or \"stdin\")",
                );
            } else {
                check_file_path(name, src, path, paths, out);
            }
        }
        SourceKind::Journal => {
            if !cfg!(target_os = "linux") {
                out.push(
                    path.key("type"),
                    "the systemd journal exists only on Linux: read the log files instead (type = \"file\")",
                );
            }
            check_journal_keys(src, path, out);
        }
        SourceKind::Command => match src.command.as_deref() {
            None => out.push(
                path.clone(),
                "a command source needs command = [\"program\", \"arg\", ...]",
            ),
            Some([]) => out.push(path.key("command"), "must name a program"),
            Some([program, ..]) if program.is_empty() => out.push(
                path.key("command").index(0),
                "the program must not be empty",
            ),
            Some(_) => {}
        },
        SourceKind::Stdin => {
            if let Some(other) = stdin.replace(name) {
                out.push(
                    path.key("type"),
                    format!("source {other:?} already reads stdin; there is only one"),
                );
            }
        }
    }
}

/// A file or auto source's `path`: absolute, a valid glob, followed once.
fn check_file_path<'c>(
    name: &'c str,
    src: &'c SourceConfig,
    path: &KeyPath,
    paths: &mut BTreeMap<&'c std::path::Path, &'c str>,
    out: &mut Issues,
) {
    if src.path.as_os_str().is_empty() {
        return;
    }
    if !src.path.is_absolute() {
        out.push(
            path.key("path"),
            format!("{:?} must be an absolute path", src.path.display()),
        );
    } else if let Err(e) = crate::source::glob::Pattern::new(&src.path) {
        out.push(path.key("path"), e.to_string());
    } else if let Some(other) = paths.insert(&src.path, name) {
        out.push(
            path.key("path"),
            format!(
                "{:?} is also followed by source {other:?}; each line would count twice",
                src.path.display()
            ),
        );
    }
}

/// A journal or auto source's `match` and `journalctl`.
fn check_journal_keys(src: &SourceConfig, path: &KeyPath, out: &mut Issues) {
    for (i, m) in src.matches.iter().flatten().enumerate() {
        if let Err(e) = check_journal_match(m) {
            out.push(path.key("match").index(i), e);
        }
    }
    if src
        .journalctl
        .as_ref()
        .is_some_and(|p| p.as_os_str().is_empty())
    {
        out.push(path.key("journalctl"), "must not be empty");
    }
}

fn kind_name(kind: SourceKind) -> &'static str {
    match kind {
        SourceKind::File => "\"file\"",
        SourceKind::Journal => "\"journal\"",
        SourceKind::Command => "\"command\"",
        SourceKind::Stdin => "\"stdin\"",
        SourceKind::Auto => "\"auto\"",
    }
}

/// journalctl's match syntax: `FIELD=value` with an upper-case field name, or `+`
/// (OR between groups).
fn check_journal_match(m: &str) -> Result<(), String> {
    if m == "+" {
        return Ok(());
    }
    let Some((field, _value)) = m.split_once('=') else {
        return Err(format!(
            "{m:?} is not a journal match: write FIELD=value (e.g. \"_SYSTEMD_UNIT=ssh.service\") or \"+\""
        ));
    };
    let valid = !field.is_empty()
        && !field.starts_with(|c: char| c.is_ascii_digit())
        && field
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "{field:?} is not a journal field name (upper-case letters, digits and _, e.g. _SYSTEMD_UNIT)"
        ))
    }
}

fn check_jails(cfg: &Config, fed: &BTreeMap<&str, Vec<&str>>, out: &mut Issues) {
    // A host that only enforces the fleet's bans needs no jail of its own.
    let accepts_fleet = cfg.fleet.as_ref().is_some_and(|f| f.accept);
    if cfg.jails.is_empty() && !accepts_fleet {
        out.push(
            KeyPath::of(&["jails"]),
            "no jail configured: nothing would ever be banned; add a [jails.NAME] table",
        );
    }
    let configured = cfg.backends.kinds();
    for (name, jail) in &cfg.jails {
        let path = KeyPath::of(&["jails", name]);
        if name == MANUAL_JAIL {
            out.push(
                path.clone(),
                format!(
                    "the jail name {MANUAL_JAIL:?} is reserved for bans made with `log2drop ban`"
                ),
            );
        }
        if name == FLEET_JAIL {
            out.push(
                path.clone(),
                format!("the jail name {FLEET_JAIL:?} is reserved for bans shared by the fleet"),
            );
        }
        if jail.filters.is_empty() {
            out.push(
                path.key("filters"),
                "lists no filter: this jail would never ban anything",
            );
        }
        let mut seen = BTreeSet::new();
        for (i, f) in jail.filters.iter().enumerate() {
            let key = path.key("filters").index(i);
            if !known_filter(cfg, f) {
                out.push(key, unknown_filter(cfg, f));
            } else if !seen.insert(f.as_str()) {
                out.push(key, format!("filter {f:?} is listed twice"));
            } else if !fed.contains_key(f.as_str()) {
                out.push(
                    key,
                    format!(
                        "filter {f:?} is not fed by any source: add it to a [sources.NAME] filters list"
                    ),
                );
            }
        }
        if jail.maxretry == 0 {
            out.push(
                path.key("maxretry"),
                "must be at least 1 (the number of offences within findtime that cause a ban)",
            );
        } else if jail.maxretry > MAX_MAXRETRY {
            out.push(
                path.key("maxretry"),
                format!("must be at most {MAX_MAXRETRY} (offence history per address is bounded)"),
            );
        }
        if jail.findtime.is_zero() {
            out.push(path.key("findtime"), "must be longer than 0s");
        }
        if jail.bantime.is_zero() {
            out.push(path.key("bantime"), "must be longer than 0s");
        }
        check_score_and_escalation(jail, &path, out);
        let mut seen = BTreeSet::new();
        for (i, b) in jail.backends.iter().enumerate() {
            let key = path.key("backends").index(i);
            let Some(kind) = BackendKind::from_name(b) else {
                out.push(key, unknown_backend(b));
                continue;
            };
            if !configured.contains(&kind) {
                out.push(
                    key,
                    format!("backend {b:?} is not configured: add a [backends.{b}] table"),
                );
            } else if !seen.insert(b.as_str()) {
                out.push(key, format!("backend {b:?} is listed twice"));
            }
        }
    }
}

/// The score model, escalation, subnet and timed-access keys of one jail.
fn check_score_and_escalation(jail: &super::JailConfig, path: &KeyPath, out: &mut Issues) {
    use super::{MAX_BANTIME_FACTOR, MAX_IPV6_PREFIX, MAX_WEIGHT, MIN_IPV6_PREFIX};
    for (filter, &w) in &jail.weight {
        let key = path.key("weight").key(filter);
        if !jail.filters.contains(filter) {
            out.push(
                key,
                format!(
                    "filter {filter:?} is not in this jail's filters, so its weight never counts"
                ),
            );
        } else if w == 0 || w > MAX_WEIGHT {
            out.push(
                key,
                format!(
                    "must be 1 to {MAX_WEIGHT} (to stop a filter counting, remove it from filters)"
                ),
            );
        }
    }
    if let Some(t) = jail.threshold
        && (t == 0 || t > MAX_MAXRETRY)
    {
        out.push(
            path.key("threshold"),
            format!("must be 1 to {MAX_MAXRETRY} (offence history per address is bounded)"),
        );
    }
    let f = jail.bantime_factor;
    if !f.is_finite() || !(1.0..=MAX_BANTIME_FACTOR).contains(&f) {
        out.push(
            path.key("bantime_factor"),
            format!("must be a number from 1 (no escalation) to {MAX_BANTIME_FACTOR}"),
        );
    }
    if let Some(max) = jail.bantime_max
        && max < jail.bantime
    {
        out.push(
            path.key("bantime_max"),
            format!(
                "{max} is shorter than bantime ({}); escalation never shortens a ban",
                jail.bantime
            ),
        );
    }
    if jail.permanent_after == Some(0) {
        out.push(
            path.key("permanent_after"),
            "must be at least 1 (the number of earlier bans after which the next is permanent); for permanent bans from the start, leave it out and use a long bantime",
        );
    }
    if jail.history.is_zero() {
        out.push(path.key("history"), "must be longer than 0s");
    }
    if !(MIN_IPV6_PREFIX..=MAX_IPV6_PREFIX).contains(&jail.ipv6_prefix) {
        out.push(
            path.key("ipv6_prefix"),
            format!("must be {MIN_IPV6_PREFIX} to {MAX_IPV6_PREFIX} (64 bans the /64 one host owns; 128 bans the single address)"),
        );
    }
    if let Some(d) = jail.ban_delay
        && d.is_zero()
    {
        out.push(
            path.key("ban_delay"),
            "must be longer than 0s (leave it out to ban at once)",
        );
    }
    if let Some(access) = &jail.access {
        let ap = path.key("access");
        if jail.ban_delay.is_some() {
            out.push(
                ap.clone(),
                "set either `access` or `ban_delay`, not both (`access.allow` is the delay)",
            );
        }
        if access.allow.is_zero() {
            out.push(
                ap.key("allow"),
                "must be longer than 0s (leave `access` out to ban at once)",
            );
        }
        if access.block.is_zero() {
            out.push(ap.key("block"), "must be longer than 0s");
        }
    }
    if let Some(sub) = &jail.subnet {
        let sp = path.key("subnet");
        if !(8..=31).contains(&sub.v4) {
            out.push(
                sp.key("v4"),
                "must be 8 to 31 (a prefix wider than one address)",
            );
        }
        if sub.v6 < 16 || sub.v6 >= jail.ipv6_prefix {
            out.push(
                sp.key("v6"),
                format!(
                    "must be 16 to {} (shorter than ipv6_prefix = {}, which one IPv6 ban already covers)",
                    jail.ipv6_prefix.saturating_sub(1),
                    jail.ipv6_prefix
                ),
            );
        }
        if sub.after < 2 || sub.after > MAX_MAXRETRY {
            out.push(
                sp.key("after"),
                format!("must be 2 to {MAX_MAXRETRY} (banned addresses inside one prefix that ban the prefix)"),
            );
        }
        if sub.within.is_zero() {
            out.push(sp.key("within"), "must be longer than 0s");
        }
    }
}

/// The control socket's group and the history retention.
fn check_control(cfg: &Config, out: &mut Issues) {
    let agent = KeyPath::of(&["agent"]);
    if let Some(group) = &cfg.agent.socket_group
        && !valid_group_name(group)
    {
        out.push(
            agent.key("socket_group"),
            format!("{group:?} is not a valid group name (1 to 32 characters: letters, digits, '_', '-', '.')"),
        );
    }
    if cfg.agent.history_retention.is_zero() {
        out.push(
            agent.key("history_retention"),
            "must be longer than 0s (repeat offenders are recognised from this history)",
        );
    }
    for (name, jail) in &cfg.jails {
        let escalates =
            jail.bantime_factor > 1.0 || jail.permanent_after.is_some() || jail.subnet.is_some();
        if escalates && jail.history.get() > cfg.agent.history_retention.get() {
            out.push(
                KeyPath::of(&["jails", name, "history"]),
                format!(
                    "{} is longer than agent.history_retention ({}): bans older than the retention are purged, so escalation could not see them; shorten this or lengthen history_retention",
                    jail.history, cfg.agent.history_retention
                ),
            );
        }
    }
}

fn valid_group_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && !name.starts_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// Per-jail notification hooks: a program given by absolute path with known
/// placeholders, an http:// webhook, a positive timeout, at least one event.
fn check_notify(cfg: &Config, out: &mut Issues) {
    for (name, jail) in &cfg.jails {
        let Some(n) = &jail.notify else {
            continue;
        };
        let path = KeyPath::of(&["jails", name, "notify"]);
        if n.exec.is_empty() && n.webhook.is_none() {
            out.push(
                path.clone(),
                "sets neither exec nor webhook: give a program (exec = [\"/usr/local/bin/x\", \"{address}\"]) or a webhook URL",
            );
        }
        if let Some(program) = n.exec.first()
            && !std::path::Path::new(program).is_absolute()
        {
            out.push(
                path.key("exec").index(0),
                format!("{program:?} must be an absolute path (hooks run without a shell and without PATH lookup)"),
            );
        }
        for (i, arg) in n.exec.iter().enumerate() {
            if let Err(e) = crate::hooks::check_template(arg) {
                out.push(path.key("exec").index(i), e);
            }
        }
        if let Some(url) = &n.webhook
            && let Err(e) = crate::hooks::WebhookUrl::parse(url)
        {
            out.push(path.key("webhook"), e.to_string());
        }
        if n.timeout.is_zero() {
            out.push(path.key("timeout"), "must be longer than 0s");
        }
        if n.events.is_empty() {
            out.push(
                path.key("events"),
                "lists no event: use [\"ban\"], [\"unban\"] or both",
            );
        }
    }
}
