//! `log2drop import-fail2ban`: a fail2ban configuration directory (jail.conf,
//! jail.local, jail.d, paths-*.conf) turned into one log2drop config.
//!
//! fail2ban's settings are read the way fail2ban reads them (same files, same
//! order, same interpolation, see [`super::ini`]); each jail becomes a log2drop
//! jail fed by sources for its log paths (or the journal) and by its fail2ban
//! filter, referenced by path. What has no equivalent is said per jail, never
//! dropped silently.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::filter::Definition;
use super::ini::{Ini, IniError};
use crate::filter::parse_reference_options;

/// Why nothing could be imported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    /// A jail file cannot be read.
    #[error(transparent)]
    Ini(#[from] IniError),
    /// No jail.conf / jail.local in the directory.
    #[error("{0}: no jail.conf or jail.local here; is this a fail2ban configuration directory?")]
    NoJails(PathBuf),
}

/// Which backend enforces the imported bans.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enforce {
    /// `[backends.nftables]`: works without naming interfaces.
    Nftables,
    /// `[backends.xdp]` on the given interfaces is left to the user; dry-run logs.
    DryRun,
}

/// What to import and how.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// The fail2ban directory (`/etc/fail2ban`).
    pub dir: PathBuf,
    /// Every jail, not only the enabled ones.
    pub all: bool,
    /// Copy the filter definitions into the config instead of naming the files.
    pub inline: bool,
    /// The backend ban actions map onto.
    pub enforce: Enforce,
}

/// One thing that did not carry over, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// The jail (or `DEFAULT`).
    pub jail: String,
    /// What and why.
    pub message: String,
}

/// The result: the config text and what it could not say.
#[derive(Debug, Clone)]
pub struct Imported {
    /// A log2drop config (TOML).
    pub toml: String,
    /// Per jail, what was not carried over.
    pub notes: Vec<Note>,
    /// Jails written.
    pub jails: usize,
}

/// A jail as read from fail2ban, before it is written out.
#[derive(Debug, Default)]
struct Jail {
    name: String,
    filter_name: String,
    filter_file: PathBuf,
    options: BTreeMap<String, String>,
    journal: Option<Vec<String>>,
    paths: Vec<String>,
    maxretry: Option<u32>,
    findtime: Option<u64>,
    bantime: Option<u64>,
    factor: Option<f64>,
    maxtime: Option<u64>,
    permanent: bool,
    /// `usedns` other than fail2ban's (and log2drop's) default `warn`.
    use_dns: Option<&'static str>,
}

/// The jail files fail2ban reads, in its order: jail.conf, jail.d/*.conf,
/// jail.local, jail.d/*.local.
fn jail_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![dir.join("jail.conf")];
    let sorted = |ext: &str| {
        let mut v: Vec<PathBuf> = std::fs::read_dir(dir.join("jail.d"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == ext))
            .collect();
        v.sort();
        v
    };
    out.extend(sorted("conf"));
    out.push(dir.join("jail.local"));
    out.extend(sorted("local"));
    out.into_iter().filter(|p| p.exists()).collect()
}

/// fail2ban's time values: seconds, or numbers with units (`10m`, `1h30m`,
/// `1w`, `1mo`, `1y`); `-1` is permanent (returned as `None`).
pub fn parse_time(text: &str) -> Result<Option<u64>, String> {
    let t = text.trim();
    if t.starts_with('-') {
        return Ok(None);
    }
    if let Ok(n) = t.parse::<f64>() {
        return Ok(Some(n as u64));
    }
    let mut total = 0f64;
    let mut rest = t;
    while !rest.is_empty() {
        rest = rest.trim_start();
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return Err(format!("{text:?} is not a fail2ban time"));
        }
        let n: f64 = rest[..num_len]
            .parse()
            .map_err(|_| format!("{text:?} is not a fail2ban time"))?;
        rest = rest[num_len..].trim_start();
        let unit_len = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        let unit = rest[..unit_len].to_ascii_lowercase();
        rest = &rest[unit_len..];
        let scale = match unit.as_str() {
            "" | "s" | "sec" | "secs" | "second" | "seconds" => 1.0,
            "m" | "mi" | "min" | "mins" | "minute" | "minutes" => 60.0,
            "h" | "hour" | "hours" => 3600.0,
            "d" | "day" | "days" => 86_400.0,
            "w" | "wk" | "week" | "weeks" => 604_800.0,
            "mo" | "mon" | "month" | "months" => 2_629_800.0,
            "y" | "yy" | "year" | "years" => 31_557_600.0,
            _ => return Err(format!("{text:?}: unknown time unit {unit:?}")),
        };
        total += n * scale;
    }
    Ok(Some(total as u64))
}

/// A duration the way log2drop's config writes it.
fn dur(secs: u64) -> String {
    for (unit, s) in [("w", 604_800), ("d", 86_400), ("h", 3600), ("m", 60)] {
        if secs >= s && secs.is_multiple_of(s) {
            return format!("{}{unit}", secs / s);
        }
    }
    format!("{secs}s")
}

fn q(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// A TOML key: bare when it can be.
fn k(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        s.to_owned()
    } else {
        q(s)
    }
}

fn truthy(s: &str) -> bool {
    matches!(
        s.trim().to_ascii_lowercase().as_str(),
        "true" | "yes" | "1" | "on" | "enabled"
    )
}

/// Ban actions: fail2ban actions that block the address; log2drop's backend
/// does that.
fn is_ban_action(name: &str) -> bool {
    const BAN: &[&str] = &[
        "iptables",
        "ip6tables",
        "nftables",
        "firewallcmd",
        "shorewall",
        "ufw",
        "route",
        "pf",
        "ipfw",
        "bsd-ipfw",
        "npf",
        "apf",
        "csf",
        "hostsdeny",
        "osx-",
        "symbiosis",
        "ipset",
        "nginx-block-map",
        "iptables-ipset",
        "xarf",
    ];
    BAN.iter().any(|b| name.starts_with(b)) && !name.starts_with("xarf")
}

/// The action names of an `action` value (one per line, `name[options]`).
fn action_names(value: &str) -> Vec<String> {
    value
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .filter_map(|l| parse_reference_options(l).ok().map(|(n, _)| n.to_owned()))
        .filter(|n| !n.is_empty())
        .collect()
}

/// Reads `opts.dir` and writes the config.
pub fn import(opts: &ImportOptions) -> Result<Imported, ImportError> {
    let files = jail_files(&opts.dir);
    if files.is_empty() {
        return Err(ImportError::NoJails(opts.dir.clone()));
    }
    let ini = Ini::load_all(&files)?;
    let mut notes = Vec::new();
    let mut note = |jail: &str, message: String| {
        notes.push(Note {
            jail: jail.to_owned(),
            message,
        });
    };

    // Allowlist: DEFAULT's ignoreip for everyone.
    let mut allow: Vec<String> = Vec::new();
    let default_ignore = match ini.get("DEFAULT", "ignoreip", &BTreeMap::new()) {
        Ok(v) => v.unwrap_or_default(),
        Err(e) => {
            note("DEFAULT", format!("ignoreip: {e}"));
            String::new()
        }
    };
    expand_ignoreip(&default_ignore, "DEFAULT", &mut allow, &mut note);
    let own_addresses = ini
        .defaults()
        .get("ignoreself")
        .is_none_or(|v| truthy(&v.text));

    let mut jails = Vec::new();
    let mut any_ban_action = false;
    for name in ini.sections() {
        if name == "INCLUDES" || name.starts_with("KNOWN/") || name.contains('?') {
            continue;
        }
        let vars: BTreeMap<String, String> = [("__name__".to_owned(), name.to_owned())].into();
        let get = |key: &str| -> Result<Option<String>, IniError> { ini.get(name, key, &vars) };
        let get_or_note = |key: &str, note: &mut dyn FnMut(&str, String)| -> Option<String> {
            match get(key) {
                Ok(v) => v,
                Err(e) => {
                    note(name, format!("{key}: {e}"));
                    None
                }
            }
        };
        let enabled = get_or_note("enabled", &mut note).is_some_and(|v| truthy(&v));
        if !enabled && !opts.all {
            continue;
        }
        // Only sections that are jails: they name a filter (DEFAULT gives one to all).
        let Some(filter_ref) = get_or_note("filter", &mut note) else {
            note(name, "no filter: skipped".into());
            continue;
        };
        if filter_ref.trim().is_empty() {
            note(name, "empty filter (action-only jail): skipped".into());
            continue;
        }
        let (filter_name, mut options) = match parse_reference_options(&filter_ref) {
            Ok((n, o)) => (n.to_owned(), o),
            Err(e) => {
                note(name, format!("filter: {e}; skipped"));
                continue;
            }
        };
        let mut filter_file = opts
            .dir
            .join("filter.d")
            .join(format!("{filter_name}.conf"));
        if !filter_file.exists() {
            let local = filter_file.with_extension("local");
            if local.exists() {
                filter_file = local;
            } else {
                note(
                    name,
                    format!(
                        "filter file {} does not exist: skipped",
                        filter_file.display()
                    ),
                );
                continue;
            }
        }
        let backend = get_or_note("backend", &mut note).unwrap_or_else(|| "auto".into());
        let backend_kind = backend.split('[').next().unwrap_or("").trim().to_owned();
        let mut jail = Jail {
            name: name.to_owned(),
            filter_name: filter_name.clone(),
            ..Jail::default()
        };
        if backend_kind.starts_with("systemd") {
            options
                .entry("logtype".into())
                .or_insert_with(|| "journal".into());
            let filter_match = Definition::read(&filter_file, &options)
                .ok()
                .and_then(|d| d.journalmatch);
            let jm = get_or_note("journalmatch", &mut note)
                .filter(|s| !s.trim().is_empty())
                .or(filter_match);
            match jm {
                Some(m) => {
                    jail.journal = Some(m.split_whitespace().map(str::to_owned).collect());
                }
                None => {
                    note(
                        name,
                        "backend = systemd without journalmatch: reads the whole journal".into(),
                    );
                    jail.journal = Some(Vec::new());
                }
            }
            if backend.contains('[') {
                note(
                    name,
                    format!("backend options in {backend:?} are not carried over"),
                );
            }
        } else {
            if !matches!(
                backend_kind.as_str(),
                "auto" | "polling" | "pyinotify" | "gamin" | ""
            ) {
                note(
                    name,
                    format!("backend {backend_kind:?} read as files (auto)"),
                );
            }
            let logpath = get_or_note("logpath", &mut note).unwrap_or_default();
            for line in logpath.lines() {
                // fail2ban allows `PATH tail` / `PATH head` after the path.
                let mut words = line.split_whitespace();
                if let Some(p) = words.next() {
                    jail.paths.push(p.to_owned());
                    if let Some(w) = words.next() {
                        note(
                            name,
                            format!(
                                "logpath {p}: {w:?} not carried over (log2drop starts at the end, then resumes from its saved position)"
                            ),
                        );
                    }
                }
            }
            if jail.paths.is_empty() {
                note(name, "no logpath: skipped".into());
                continue;
            }
        }
        jail.filter_file = filter_file;
        jail.options = options;
        let time = |key: &str, note: &mut dyn FnMut(&str, String)| -> Option<Option<u64>> {
            let v = get_or_note(key, note)?;
            match parse_time(&v) {
                Ok(t) => Some(t),
                Err(e) => {
                    note(name, format!("{key}: {e}; log2drop's default used"));
                    None
                }
            }
        };
        jail.maxretry = get_or_note("maxretry", &mut note).and_then(|v| v.trim().parse().ok());
        jail.findtime = time("findtime", &mut note).flatten();
        match time("bantime", &mut note) {
            Some(Some(t)) => jail.bantime = Some(t),
            Some(None) => jail.permanent = true,
            None => {}
        }
        if get_or_note("bantime.increment", &mut note).is_some_and(|v| truthy(&v)) {
            escalation(name, &mut jail, &get_or_note, &mut note);
        }
        if let Some(ip) = get_or_note("ignoreip", &mut note)
            && ip.trim() != default_ignore.trim()
        {
            let mut extra = Vec::new();
            expand_ignoreip(&ip, name, &mut extra, &mut note);
            let missing: Vec<&String> = extra.iter().filter(|a| !allow.contains(a)).collect();
            if !missing.is_empty() {
                note(
                    name,
                    format!(
                        "ignoreip {missing:?} is per jail in fail2ban; log2drop's allowlist ([agent] allow) holds for every jail: add them there if that is what you want"
                    ),
                );
            }
        }
        // Host names where <HOST> stands count as fail2ban's usedns says; warn
        // is both defaults.
        match get_or_note("usedns", &mut note).as_deref().map(str::trim) {
            Some("yes") => jail.use_dns = Some("yes"),
            Some("no") => jail.use_dns = Some("no"),
            Some("raw") => {
                jail.use_dns = Some("no");
                note(
                    name,
                    "usedns = raw (host names as ban ids) has no equivalent: use_dns = \"no\""
                        .into(),
                );
            }
            _ => {}
        }
        let actions = get_or_note("action", &mut note).unwrap_or_default();
        for a in action_names(&actions) {
            if is_ban_action(&a) {
                any_ban_action = true;
                if !a.contains("allports")
                    && get_or_note("port", &mut note)
                        .is_some_and(|p| !matches!(p.trim(), "0:65535" | "1:65535" | "all"))
                {
                    note(
                        name,
                        format!(
                            "action {a}: fail2ban blocks only the jail's ports; log2drop blocks the address on every port"
                        ),
                    );
                }
            } else {
                note(
                    name,
                    format!(
                        "action {a} (a notification) has no equivalent: add notify = {{ exec = [...] }} or a webhook to [jails.{name}] to be told of bans"
                    ),
                );
            }
        }
        jails.push(jail);
    }

    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Imported from {} by `log2drop import-fail2ban`.\n# Check it with `log2drop check --config FILE`; see docs/migrating-from-fail2ban.md.\n",
        opts.dir.display()
    );
    let _ = writeln!(out, "[agent]");
    let mut allow_all: Vec<String> = vec!["127.0.0.0/8".into(), "::1".into()];
    for a in &allow {
        if !allow_all.contains(a) && a != "127.0.0.1/8" {
            allow_all.push(a.clone());
        }
    }
    let _ = writeln!(
        out,
        "allow = [{}]",
        allow_all
            .iter()
            .map(|a| q(a))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(out, "allow_own_addresses = {own_addresses}\n");
    match opts.enforce {
        Enforce::Nftables if any_ban_action => {
            let _ = writeln!(
                out,
                "# fail2ban's ban actions (iptables, nftables, ...) become one nftables set.\n# For XDP instead: [backends.xdp] interfaces = [\"eth0\"]\n[backends.nftables]\n"
            );
        }
        _ => {
            if !any_ban_action && opts.enforce == Enforce::Nftables {
                note(
                    "DEFAULT",
                    "no jail has a ban action: bans are only logged (dry-run)".into(),
                );
            }
            let _ = writeln!(
                out,
                "# Bans are only logged. To enforce them: [backends.nftables] or [backends.xdp].\n[backends.dry-run]\n"
            );
        }
    }

    // Filters: named after their file; a second use with other options gets the
    // jail's name appended.
    let mut filters: BTreeMap<String, (PathBuf, BTreeMap<String, String>)> = BTreeMap::new();
    let mut filter_of = Vec::new();
    for j in &jails {
        let stem = j
            .filter_file
            .file_stem()
            .map_or(j.filter_name.clone(), |s| s.to_string_lossy().into_owned());
        let key = match filters.get(&stem) {
            Some((f, o)) if *f == j.filter_file && *o == j.options => stem,
            None => stem,
            Some(_) => format!("{stem}-{}", j.name),
        };
        filters.insert(key.clone(), (j.filter_file.clone(), j.options.clone()));
        filter_of.push(key);
    }
    for (name, (file, options)) in &filters {
        let _ = writeln!(out, "[filters.{}]", k(name));
        if opts.inline {
            match inline_definition(file, options) {
                Ok(text) => out.push_str(&text),
                Err(e) => {
                    note(name, format!("--inline: {e}; referenced by path instead"));
                    let _ = writeln!(out, "fail2ban = {}", q(&file.display().to_string()));
                }
            }
        } else {
            let _ = writeln!(out, "fail2ban = {}", q(&file.display().to_string()));
        }
        if !options.is_empty() && !opts.inline {
            let _ = writeln!(
                out,
                "options = {{ {} }}",
                options
                    .iter()
                    .map(|(key, v)| format!("{} = {}", k(key), q(v)))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        out.push('\n');
    }

    // Sources: one per log path (or journal match); jails reading the same one share it.
    let mut sources: Vec<(String, String, Vec<String>)> = Vec::new(); // (name, key, filters)
    for (j, f) in jails.iter().zip(&filter_of) {
        let keys: Vec<String> = match &j.journal {
            Some(m) => vec![format!("journal:{}", m.join(" "))],
            None => j.paths.clone(),
        };
        for (i, k) in keys.iter().enumerate() {
            if let Some(s) = sources.iter_mut().find(|s| &s.1 == k) {
                if !s.2.contains(f) {
                    s.2.push(f.clone());
                }
                continue;
            }
            let mut sname = if i == 0 {
                j.name.clone()
            } else {
                format!("{}-{}", j.name, i + 1)
            };
            while sources.iter().any(|s| s.0 == sname) {
                sname.push('_');
            }
            sources.push((sname, k.clone(), vec![f.clone()]));
        }
    }
    for (name, key, fl) in &sources {
        let _ = writeln!(out, "[sources.{}]", k(name));
        match key.strip_prefix("journal:") {
            Some(m) => {
                let _ = writeln!(out, "type = \"journal\"");
                if !m.is_empty() {
                    let _ = writeln!(
                        out,
                        "match = [{}]",
                        m.split(' ').map(q).collect::<Vec<_>>().join(", ")
                    );
                }
            }
            None => {
                let _ = writeln!(out, "path = {}", q(key));
            }
        }
        let _ = writeln!(
            out,
            "filters = [{}]\n",
            fl.iter().map(|f| q(f)).collect::<Vec<_>>().join(", ")
        );
    }
    for (j, f) in jails.iter().zip(&filter_of) {
        let _ = writeln!(out, "[jails.{}]", k(&j.name));
        let _ = writeln!(out, "filters = [{}]", q(f));
        if let Some(m) = j.maxretry {
            let _ = writeln!(out, "maxretry = {m}");
        }
        if let Some(t) = j.findtime {
            let _ = writeln!(out, "findtime = {}", q(&dur(t.max(1))));
        }
        if j.permanent {
            let _ = writeln!(
                out,
                "# fail2ban bantime = -1 (for ever): the longest ban, escalating to permanent\nbantime = \"3650d\"\npermanent_after = 1"
            );
        } else if let Some(t) = j.bantime {
            let _ = writeln!(out, "bantime = {}", q(&dur(t.max(1))));
        }
        if let Some(u) = j.use_dns {
            let _ = writeln!(out, "use_dns = {}", q(u));
        }
        if !j.permanent {
            if let Some(f) = j.factor {
                let _ = writeln!(out, "bantime_factor = {f:?}");
            }
            match j.maxtime {
                Some(m) if m >= j.bantime.unwrap_or(3600) => {
                    let _ = writeln!(out, "bantime_max = {}", q(&dur(m.max(1))));
                }
                Some(m) => note(
                    &j.name,
                    format!(
                        "bantime.maxtime ({}) is shorter than bantime: left out",
                        dur(m)
                    ),
                ),
                None => {}
            }
        }
        out.push('\n');
    }
    notes.dedup();
    Ok(Imported {
        toml: out,
        notes,
        jails: jails.len(),
    })
}

/// Reads one option of a jail, saying why on the notes when it cannot.
type Getter<'a> = &'a dyn Fn(&str, &mut dyn FnMut(&str, String)) -> Option<String>;

/// `bantime.increment` and its family onto `bantime_factor` / `bantime_max`.
fn escalation(name: &str, jail: &mut Jail, get: Getter<'_>, note: &mut dyn FnMut(&str, String)) {
    let factor: f64 = get("bantime.factor", note)
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(1.0);
    let base = jail.bantime.unwrap_or(3600);
    if let Some(m) = get("bantime.multipliers", note).filter(|m| !m.trim().is_empty()) {
        let ms: Vec<f64> = m
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        let ratio = ms.windows(2).map(|w| w[1] / w[0]).collect::<Vec<_>>();
        if let Some(r) = ratio.first()
            && ratio.iter().all(|x| (x - r).abs() < 1e-9)
            && ms.first().is_some_and(|f| (*f - 1.0).abs() < 1e-9)
        {
            jail.factor = Some(*r);
            let last = ms.last().copied().unwrap_or(1.0) * factor;
            jail.maxtime = Some((base as f64 * last) as u64);
        } else {
            note(
                name,
                format!(
                    "bantime.multipliers = {m:?} is not a geometric series from 1: approximated by bantime_factor = 2"
                ),
            );
            jail.factor = Some(2.0);
        }
    } else {
        let formula = get("bantime.formula", note).unwrap_or_default();
        let default_formula = formula.is_empty()
            || formula.replace(' ', "")
                == "ban.Time*(1<<(ban.Countifban.Count<20else20))*banFactor";
        if !default_formula {
            note(
                name,
                format!(
                    "bantime.formula {formula:?} does not map: fail2ban's default (doubling) used"
                ),
            );
        }
        jail.factor = Some(2.0);
        if (factor - 1.0).abs() > 1e-9 {
            note(
                name,
                format!(
                    "bantime.factor = {factor}: the first escalated ban is not scaled by it (log2drop multiplies by bantime_factor per earlier ban)"
                ),
            );
        }
    }
    if let Some(m) = get("bantime.maxtime", note).filter(|m| !m.trim().is_empty()) {
        match parse_time(&m) {
            Ok(Some(t)) => jail.maxtime = Some(jail.maxtime.map_or(t, |x| x.min(t))),
            _ => note(name, format!("bantime.maxtime {m:?} not understood")),
        }
    }
    if get("bantime.rndtime", note).is_some_and(|r| !r.trim().is_empty()) {
        note(
            name,
            "bantime.rndtime has no equivalent (bans end when they are due)".into(),
        );
    }
    if get("bantime.overalljails", note).is_some_and(|v| truthy(&v)) {
        note(
            name,
            "bantime.overalljails: log2drop counts earlier bans of the address in this jail only"
                .into(),
        );
    }
}

/// `ignoreip` entries: addresses, CIDRs and names pass as they are (the agent
/// resolves names); `file:PATH` is read now.
fn expand_ignoreip(
    value: &str,
    jail: &str,
    out: &mut Vec<String>,
    note: &mut dyn FnMut(&str, String),
) {
    for item in value
        .split([' ', ',', '\n', '\t'])
        .filter(|s| !s.is_empty())
    {
        if let Some(path) = item.strip_prefix("file:") {
            match std::fs::read_to_string(path) {
                Ok(text) => {
                    for l in text.lines() {
                        let l = l.split('#').next().unwrap_or("").trim();
                        if !l.is_empty() {
                            for w in l.split([' ', ',', '\t']).filter(|s| !s.is_empty()) {
                                out.push(w.to_owned());
                            }
                        }
                    }
                    note(
                        jail,
                        format!(
                            "ignoreip {item}: its entries were copied; later edits of {path} are not picked up"
                        ),
                    );
                }
                Err(e) => note(jail, format!("ignoreip {item}: cannot read it: {e}")),
            }
        } else {
            out.push(item.to_owned());
        }
    }
}

/// A filter's definition written into the config (`--inline`): the settings
/// after includes, options and substitution, as a self-contained fail2ban
/// `[Definition]`.
fn inline_definition(file: &Path, options: &BTreeMap<String, String>) -> Result<String, String> {
    let d = Definition::read(file, options).map_err(|e| e.to_string())?;
    let mut ini = String::from("[Definition]\n");
    let mut put = |key: &str, lines: &[&str]| {
        if lines.is_empty() {
            return;
        }
        // `%` is interpolation syntax in the INI text.
        let esc: Vec<String> = lines.iter().map(|l| l.replace('%', "%%")).collect();
        let _ = writeln!(ini, "{key} = {}", esc.join("\n    "));
    };
    put(
        "prefregex",
        &d.prefregex
            .iter()
            .map(|l| l.text.as_str())
            .collect::<Vec<_>>(),
    );
    put(
        "failregex",
        &d.failregex
            .iter()
            .map(|l| l.text.as_str())
            .collect::<Vec<_>>(),
    );
    put(
        "ignoreregex",
        &d.ignoreregex
            .iter()
            .map(|l| l.text.as_str())
            .collect::<Vec<_>>(),
    );
    if let Some(dp) = &d.datepattern {
        put("datepattern", &dp.lines().collect::<Vec<_>>());
    }
    if d.maxlines > 1 {
        let _ = writeln!(ini, "maxlines = {}", d.maxlines);
    }
    if d.journal {
        ini.push_str("logtype = journal\n");
    }
    Ok(format!(
        "# copied from {} (options {:?})\nfail2ban_inline = \"\"\"\n{}\"\"\"\n",
        file.display(),
        options,
        ini.replace('\\', "\\\\").replace("\"\"\"", "\\\"\\\"\\\"")
    ))
}

#[cfg(test)]
mod tests;
