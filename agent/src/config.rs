//! The configuration file: plain serde data, then a pure validation pass that
//! collects every error at once with its file, line and column, then `build` steps
//! elsewhere turn it into running parts. `log2drop check` and `log2drop run` go
//! through the same [`load`] so a config that checks clean is the config that runs.
//!
//! The structs stay plain data (no spans inside), so other modules and reload diffs
//! use them directly; positions for error messages come from [`locate`], which maps
//! key paths to `LINE:COL` over the span-carrying document the `toml` crate parses.
//! See docs/config.md for every key.

pub mod locate;
pub mod validate;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::backend::BackendsConfig;
use crate::duration::HumanDuration;
use locate::Locator;

/// Upper bound on `maxretry`: the engine keeps up to `maxretry` offence times per
/// address and jail, and the number of tracked addresses is bounded, so this bounds
/// memory.
pub(crate) const MAX_MAXRETRY: u32 = 1000;

/// Upper bound on a jail's per-filter `weight`.
pub(crate) const MAX_WEIGHT: u32 = 1000;

/// Upper bound on `bantime_factor`: beyond it the second ban is already longer
/// than any sensible `bantime_max`.
pub(crate) const MAX_BANTIME_FACTOR: f64 = 1000.0;

/// Shortest `ipv6_prefix`: wider than a /48 site would ban other customers.
pub(crate) const MIN_IPV6_PREFIX: u8 = 48;

/// Longest `ipv6_prefix`: a single address.
pub(crate) const MAX_IPV6_PREFIX: u8 = 128;

/// One problem in a config file, with its place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The config file, as given.
    pub file: PathBuf,
    /// Line, from 1.
    pub line: usize,
    /// Column in characters, from 1.
    pub column: usize,
    /// Key path such as `jails.ssh.filters[1]`; empty for a syntax error outside
    /// any key.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

/// `FILE:LINE:COL: KEY: message`, the form editors and CI annotators understand.
impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file.display(), self.line, self.column)?;
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        f.write_str(&self.message)
    }
}

/// Why a config cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{}: cannot read config file: {source}", path.display())]
    Read {
        /// The config file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file was read but has problems; all of them are listed, one per line.
    #[error("{}", ProblemList(problems))]
    Invalid {
        /// Every problem found, in file order.
        problems: Vec<Problem>,
    },
}

impl ConfigError {
    /// The problems, if the file was read.
    pub fn problems(&self) -> &[Problem] {
        match self {
            ConfigError::Read { .. } => &[],
            ConfigError::Invalid { problems } => problems,
        }
    }
}

struct ProblemList<'a>(&'a [Problem]);

impl fmt::Display for ProblemList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

/// Reads, parses and validates the config file at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse(&text, path)
}

/// Parses and validates config text; `path` only names the file in messages.
///
/// Syntax errors are all reported. A type error (a string where a number belongs,
/// an unknown key) stops deserialisation, so it is reported alone; once the file
/// deserialises, every validation problem is reported together.
pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
    let problem = |offset: usize, key: String, message: String| {
        let pos = locate::position(text, offset);
        Problem {
            file: path.to_owned(),
            line: pos.line,
            column: pos.column,
            key,
            message,
        }
    };
    let (doc, syntax_errors) = toml::de::DeTable::parse_recoverable(text);
    let locator = Locator::new(Some(doc));
    if !syntax_errors.is_empty() {
        let problems = syntax_errors
            .iter()
            .map(|e| {
                let offset = e.span().map_or(0, |s| s.start);
                let mut message = one_line(e.message());
                // The parser says only "duplicate key"; its span is the key.
                if let Some(key) = e.span().and_then(|s| text.get(s)).map(str::trim)
                    && message == "duplicate key"
                    && !key.is_empty()
                {
                    message = format!("duplicate key `{key}`: a key may be given once per table");
                }
                problem(offset, String::new(), message)
            })
            .collect();
        return Err(ConfigError::Invalid { problems });
    }
    let mut cfg: Config = match toml::from_str(text) {
        Ok(cfg) => cfg,
        Err(e) => {
            let offset = e.span().map_or(0, |s| s.start);
            let key = locator.path_at(offset).to_string();
            return Err(ConfigError::Invalid {
                problems: vec![problem(offset, key, one_line(e.message()))],
            });
        }
    };
    resolve_relative_paths(&mut cfg, path);
    let mut problems: Vec<Problem> = validate::validate(&cfg)
        .into_iter()
        .map(|issue| {
            let offset = locator.offset_of(&issue.key);
            problem(offset, issue.key.to_string(), issue.message)
        })
        .collect();
    if problems.is_empty() {
        return Ok(cfg);
    }
    problems.sort_by_key(|p| (p.line, p.column));
    Err(ConfigError::Invalid { problems })
}

/// Makes the config's relative file references relative to the config file's
/// directory, not to wherever the agent was started: `fail2ban =
/// "filters/x.conf"` next to `/etc/log2drop/log2drop.toml` means
/// `/etc/log2drop/filters/x.conf`, from any working directory and after a
/// reload. The result is absolute (no file system access), so a later
/// `chdir` does not change it.
fn resolve_relative_paths(cfg: &mut Config, config_path: &Path) {
    let base = config_path.parent().unwrap_or(Path::new(""));
    for f in cfg.filters.values_mut() {
        if let Some(file) = &mut f.fail2ban
            && file.is_relative()
        {
            let joined = base.join(&*file);
            *file = std::path::absolute(&joined).unwrap_or(joined);
        }
    }
}

/// Where `keys` (a dotted path such as `agent.socket_group`) is written in the
/// config file at `path`, for errors found after validation (a group that does
/// not exist on this host). `None` if the file cannot be read again.
pub(crate) fn position_of(path: &Path, keys: &[&str]) -> Option<locate::Position> {
    let text = std::fs::read_to_string(path).ok()?;
    let (doc, _) = toml::de::DeTable::parse_recoverable(&text);
    let offset = Locator::new(Some(doc)).offset_of(&locate::KeyPath::of(keys));
    Some(locate::position(&text, offset))
}

fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// The whole file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Agent-wide settings.
    #[serde(default)]
    pub agent: AgentConfig,
    /// Where bans take effect: each backend's own table, composed by
    /// [`crate::backend::kind`].
    #[serde(default)]
    pub backends: BackendsConfig,
    /// Named filters: regexes with `<HOST>`.
    #[serde(default)]
    pub filters: BTreeMap<String, FilterConfig>,
    /// Named sources of lines.
    #[serde(default)]
    pub sources: BTreeMap<String, SourceConfig>,
    /// Named jails: the ban policies.
    #[serde(default)]
    pub jails: BTreeMap<String, JailConfig>,
    /// The Prometheus endpoint (off by default).
    #[serde(default)]
    pub metrics: crate::metrics::MetricsConfig,
    /// Ban sharing with other hosts through Redis; owned by [`crate::fleet`].
    #[serde(default)]
    pub fleet: Option<crate::fleet::FleetConfig>,
    /// Host names in log lines: the default `use_dns` and the resolver.
    #[serde(default)]
    pub dns: crate::dns::DnsConfig,
}

/// `[agent]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentConfig {
    /// Directory for the state database. Default `/var/lib/log2drop`.
    pub state_dir: PathBuf,
    /// Control socket path. Default `/run/log2drop/log2drop.sock`.
    pub socket: PathBuf,
    /// Addresses, CIDRs and host names that are never banned. Default loopback.
    /// The engine adds loopback even when this list leaves it out; host names are
    /// resolved by the daemon at start and reload.
    pub allow: Vec<String>,
    /// Also allowlist every address of this host's interfaces, kept current over
    /// rtnetlink. Default true.
    pub allow_own_addresses: bool,
    /// Most addresses whose offences are tracked at once; past this the least
    /// recently seen address that is not banned is forgotten. Default 1,000,000.
    pub max_tracked: usize,
    /// Group whose members may use the read-only control commands (`status`,
    /// `bans`, `stats`); the socket is then mode 0660 with this group. Default
    /// none: root only, mode 0600.
    pub socket_group: Option<String>,
    /// How long the history of ended bans is kept (escalation looks back into
    /// it). Default 365d.
    pub history_retention: HumanDuration,
    /// Most rows of offence counts (per day, address, filter and user) kept in
    /// the state database for reports; 0 turns the counting off. Default 100,000.
    pub offence_rows: usize,
}

impl Default for AgentConfig {
    fn default() -> Self {
        Self {
            state_dir: PathBuf::from("/var/lib/log2drop"),
            socket: PathBuf::from("/run/log2drop/log2drop.sock"),
            allow: vec!["127.0.0.0/8".into(), "::1".into()],
            max_tracked: DEFAULT_MAX_TRACKED,
            allow_own_addresses: true,
            socket_group: None,
            history_retention: HumanDuration::from_secs(DEFAULT_HISTORY_RETENTION_SECS),
            offence_rows: DEFAULT_OFFENCE_ROWS,
        }
    }
}

/// Default for `agent.history_retention`: one year.
pub(crate) const DEFAULT_HISTORY_RETENTION_SECS: u64 = 365 * 86_400;

/// Default for `agent.offence_rows`: about 10 MB of database.
pub const DEFAULT_OFFENCE_ROWS: usize = 100_000;

/// Default for `agent.max_tracked`.
pub(crate) const DEFAULT_MAX_TRACKED: usize = 1_000_000;

/// Declares a filter table holding the regex lists, one per role, that
/// `[filters.NAME]` and each of its `modes` share: declared once here so the
/// two cannot drift apart, as plain fields so the config file's positions stay
/// on their keys (a `#[serde(flatten)]` struct would move every error in them
/// to the table's header).
macro_rules! filter_table {
    ($(#[$attr:meta])* pub struct $name:ident { $($rest:tt)* }) => {
        $(#[$attr])*
        pub struct $name {
            /// Failure regexes: each line one of them matches is one failed
            /// attempt. Each regex of every counting role contains `<HOST>`
            /// once; in a filter with session roles it may leave it out (the
            /// line takes its session's address, see `filter::host_rule`). All
            /// lists stay empty with `fail2ban`.
            #[serde(default)]
            pub regex: Vec<String>,
            /// Session lines that show the session failed: they count once per
            /// session, not when a line of the session already counted (see
            /// `filter::session`).
            #[serde(default)]
            pub attempt: Vec<String>,
            /// Session lines that only name the address: the session counts once
            /// if it ends without a counted line.
            #[serde(default)]
            pub address: Vec<String>,
            /// Lines that end a session: a pending `address` counts now.
            #[serde(default)]
            pub end: Vec<String>,
            /// Lines that end a session without an offence (a login).
            #[serde(default)]
            pub success: Vec<String>,
            /// Lines that only name the session's address and never count by
            /// themselves (sshd's `Connection from H`): later lines of the
            /// session without `<HOST>` count with it.
            #[serde(default)]
            pub carry: Vec<String>,
            /// Lines matching any of these never count (`<HOST>` optional).
            #[serde(default)]
            pub ignore: Vec<String>,
            $($rest)*
        }

        impl $name {
            /// The lists that count, in the order of `filter::Role::ALL`
            /// (`regex`, `attempt`, `address`, `end`, `success`, `carry`).
            pub fn counting_lists(&self) -> [&Vec<String>; 6] {
                [
                    &self.regex,
                    &self.attempt,
                    &self.address,
                    &self.end,
                    &self.success,
                    &self.carry,
                ]
            }

            /// Every list, mutable: the counting ones in their order, then `ignore`.
            pub fn lists_mut(&mut self) -> [&mut Vec<String>; 7] {
                [
                    &mut self.regex,
                    &mut self.attempt,
                    &mut self.address,
                    &mut self.end,
                    &mut self.success,
                    &mut self.carry,
                    &mut self.ignore,
                ]
            }
        }
    };
}

filter_table! {
/// `[filters.NAME]`. A name not defined here may still name a built-in filter
/// (see `filter::builtin`); a table here with a built-in's name replaces it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterConfig {
    /// How long a session may be idle before it ends. Default 5m.
    #[serde(default)]
    pub session_window: Option<String>,
    /// A fail2ban filter file (`/etc/fail2ban/filter.d/sshd.conf`) to run instead
    /// of `regex`: its includes, `.local`, prefregex, failregex, ignoreregex and
    /// datepattern, read each time the config is loaded. A relative path is
    /// relative to the config file's directory.
    #[serde(default)]
    pub fail2ban: Option<PathBuf>,
    /// Not a config key: a digest of the fail2ban filter files this filter
    /// read when the agent loaded the config ([`crate::fail2ban::digest`]), so
    /// that a reload, which rebuilds what differs, notices an edited filter
    /// file although the config itself did not change.
    #[serde(skip)]
    pub fail2ban_digest: Option<u64>,
    /// A fail2ban filter's `[Definition]` written out here instead of a file
    /// (`log2drop import-fail2ban --inline`).
    #[serde(default)]
    pub fail2ban_inline: Option<String>,
    /// With `fail2ban`: the filter's options, as in `sshd[mode=aggressive]`.
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// What precedes the text the regexes match. Default `none`.
    #[serde(default)]
    pub prefix: LinePrefix,
    /// With `prefix = "syslog"`: the programs (syslog tags, without `[pid]`)
    /// whose lines this filter reads. Default: every program.
    #[serde(default)]
    pub programs: Vec<String>,
    /// How to read the line's own time (`iso8601`, `syslog`, `clf`, `epoch` or
    /// a strftime pattern; several, one a line, are tried in order). With
    /// `prefix = "syslog"` it reads the message's start, and only where the
    /// prefix has no time (a daemon that writes its tag before its time, as
    /// Dovecot 1.x's own file). Default: none, the time the line was read.
    #[serde(default)]
    pub datepattern: Option<String>,
    /// Time zone of timestamps that carry no offset: `local`, `UTC`, `+02:00`
    /// or an IANA name. Default `local`.
    #[serde(default)]
    pub timezone: Option<String>,
    /// Named variants, picked with `NAME[mode=MODE]` where the filter is
    /// listed; the lists above are the `normal` mode.
    #[serde(default)]
    pub modes: BTreeMap<String, FilterMode>,
    /// Domains of genuine clients: a hit whose address has a reverse name in
    /// one of them that resolves back to the address (forward-confirmed
    /// reverse DNS) does not count (`apache-fakegooglebot`). Default none: no
    /// lookup.
    #[serde(default)]
    pub allow_rdns: Vec<String>,
}
}

filter_table! {
/// `[filters.NAME.modes.MODE]`: what a mode adds to the filter, a list for
/// each of the filter's. Its regexes come before the filter's own, so a mode
/// can give a line another role.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterMode {
    /// One line saying what the mode adds.
    #[serde(default)]
    pub description: String,
    /// Replaces the filter's `prefix` in this mode: a daemon's own log file
    /// (no syslog prefix) read by the filter of its syslog lines
    /// (`openvpn[mode=file]`). With `none`, `programs` do not apply.
    #[serde(default)]
    pub prefix: Option<LinePrefix>,
    /// Replaces the filter's `datepattern` in this mode.
    #[serde(default)]
    pub datepattern: Option<String>,
}
}

/// `[filters.NAME] prefix`: the part of a line before what the regexes match.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LinePrefix {
    /// Regexes search the whole line.
    #[default]
    None,
    /// Lines start with a syslog prefix (BSD, ISO 8601, RFC 5424, and the
    /// variants syslog daemons and journalctl write: see `filter::syslog`), which
    /// is parsed for the program and the time; regexes match the message, anchored
    /// at its start. Lines without the prefix never match.
    Syslog,
}

/// `[sources.NAME]`. Which keys apply depends on `type`; validation refuses the
/// keys of another type, so a typo in `type` cannot silently ignore them.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// Where lines come from. Default `file`.
    #[serde(rename = "type", default)]
    pub kind: SourceKind,
    /// `file`: the file to follow, or a glob of files (`*`, `?`, `[...]`).
    /// Empty for the other types.
    #[serde(default)]
    pub path: PathBuf,
    /// Filters applied to its lines.
    pub filters: Vec<String>,
    /// `journal`: journalctl match expressions (`FIELD=value`, or `+` for OR).
    #[serde(rename = "match")]
    pub matches: Option<Vec<String>>,
    /// `journal`: the journalctl program. Default `journalctl` (found on PATH).
    pub journalctl: Option<PathBuf>,
    /// `command`: the program and its arguments (no shell).
    pub command: Option<Vec<String>>,
    /// `file` and `journal`: where to start without a saved position. Default
    /// `end`.
    pub start: Option<crate::source::file::StartAt>,
    /// Longest line, in bytes; longer lines are cut, counted and never matched.
    /// Default 16 KiB.
    #[serde(default = "default_max_line_bytes")]
    pub max_line_bytes: usize,
}

impl SourceConfig {
    /// The journalctl program to run.
    pub fn journalctl_program(&self) -> PathBuf {
        self.journalctl
            .clone()
            .unwrap_or_else(|| PathBuf::from("journalctl"))
    }

    /// Where to start without a saved position.
    pub fn start_at(&self) -> crate::source::file::StartAt {
        self.start.unwrap_or_default()
    }

    /// The kind this source runs as now: `auto` becomes `file` when a file its
    /// `path` names exists, else `journal` (always `file` where there is no
    /// journal). Decided when the source starts (start, or a reload that
    /// restarts it).
    pub(crate) fn resolved_kind(&self) -> SourceKind {
        match self.kind {
            SourceKind::Auto => {
                let exists =
                    crate::source::glob::Pattern::new(&self.path).is_ok_and(|p| p.any_exists());
                if exists || !cfg!(target_os = "linux") {
                    SourceKind::File
                } else {
                    SourceKind::Journal
                }
            }
            kind => kind,
        }
    }
}

/// `type` of a source.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// Files: one path or a glob, followed across rotations.
    #[default]
    File,
    /// The systemd journal, through `journalctl --output=json --follow`.
    Journal,
    /// The standard output of a program, restarted when it exits.
    Command,
    /// The agent's standard input (pipelines, tests).
    Stdin,
    /// `path` when a file it names exists at start, otherwise the journal with
    /// `match` (as fail2ban's `backend = auto`): one config for hosts with and
    /// without rsyslog.
    Auto,
}

/// Default of `max_line_bytes`.
pub(crate) const DEFAULT_MAX_LINE_BYTES: usize = crate::source::line::DEFAULT_MAX_LINE;
/// Smallest `max_line_bytes`: below this real log lines would be cut.
pub(crate) const MIN_MAX_LINE_BYTES: usize = 256;
/// Largest `max_line_bytes`: each source keeps up to this many bytes per
/// unfinished line, per followed file.
pub(crate) const MAX_MAX_LINE_BYTES: usize = 1 << 20;

fn default_max_line_bytes() -> usize {
    DEFAULT_MAX_LINE_BYTES
}

/// `[jails.NAME]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JailConfig {
    /// Filters whose offences count for this jail.
    pub filters: Vec<String>,
    /// Offences within `findtime` that cause a ban. Default 5.
    #[serde(default = "default_maxretry")]
    pub maxretry: u32,
    /// The counting window. Default 10m.
    #[serde(default = "default_findtime")]
    pub findtime: HumanDuration,
    /// How long a ban lasts. Default 1h.
    #[serde(default = "default_bantime")]
    pub bantime: HumanDuration,
    /// Backends that enforce this jail's bans. Default: every configured backend.
    #[serde(default)]
    pub backends: Vec<String>,
    /// Score model: weight of an offence per filter name; filters not listed weigh
    /// 1. Default empty (every offence weighs 1).
    #[serde(default)]
    pub weight: BTreeMap<String, u32>,
    /// Score model: the weighted sum within `findtime` that causes a ban. Replaces
    /// `maxretry` when set.
    #[serde(default)]
    pub threshold: Option<u32>,
    /// Escalation: each earlier ban of the address within `history` multiplies
    /// `bantime` by this. Default 1 (no escalation).
    #[serde(default = "default_bantime_factor")]
    pub bantime_factor: f64,
    /// Escalation: the longest an escalated ban lasts. Default none.
    #[serde(default)]
    pub bantime_max: Option<HumanDuration>,
    /// Escalation: an address with this many earlier bans within `history` is
    /// banned for good. Default none.
    #[serde(default)]
    pub permanent_after: Option<u32>,
    /// Escalation: how far back earlier bans count. Default 90d.
    #[serde(default = "default_history")]
    pub history: HumanDuration,
    /// Subnet escalation. Default none.
    #[serde(default)]
    pub subnet: Option<SubnetConfig>,
    /// Prefix length an IPv6 offender is counted and banned as (one host owns a
    /// /64). Default 64, allowed 48 to 128.
    #[serde(default = "default_ipv6_prefix")]
    pub ipv6_prefix: u8,
    /// Timed access: a reached threshold bans this much later instead of at once.
    /// Default none.
    #[serde(default)]
    pub ban_delay: Option<HumanDuration>,
    /// Timed access as log2table's WifiTemp rule does it: `{ allow = "1h",
    /// block = "1h" }`. Shorthand for `ban_delay = allow` with `bantime =
    /// block`; the schedule is kept in the state database. Default none.
    #[serde(default)]
    pub access: Option<AccessConfig>,
    /// Notification hooks run after this jail's bans are enforced. Default none.
    #[serde(default)]
    pub notify: Option<NotifyConfig>,
    /// Whether offences by host names (resolved to their addresses) count
    /// here: `no`, `warn` or `yes`. Default: `[dns] use_dns`.
    #[serde(default)]
    pub use_dns: Option<crate::dns::UseDns>,
}

/// `access = { allow = "1h", block = "1h" }` in a jail: an address that reaches
/// the threshold (with `maxretry = 1`, its first sighting) is allowed for
/// `allow`, then blocked for `block`, then allowed again for a new period when it
/// is seen again.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessConfig {
    /// How long an address is allowed from the sighting that starts its period.
    pub allow: HumanDuration,
    /// How long it is blocked after that.
    pub block: HumanDuration,
}

impl JailConfig {
    /// How long a ban lasts: `access.block` when timed access is set, else
    /// `bantime`.
    pub(crate) fn ban_length(&self) -> std::time::Duration {
        self.access.map_or(self.bantime, |a| a.block).get()
    }

    /// How much later than its threshold a ban starts: `access.allow` when
    /// timed access is set, else `ban_delay`; `None` bans at once.
    pub(crate) fn delay(&self) -> Option<std::time::Duration> {
        self.access
            .map(|a| a.allow)
            .or(self.ban_delay)
            .map(|d| d.get())
            .filter(|d| !d.is_zero())
    }
}

/// `subnet = { v4 = 24, v6 = 48, after = 5, within = "1h" }` in a jail: ban the
/// whole prefix once `after` addresses inside it were banned within `within`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubnetConfig {
    /// IPv4 prefix length to escalate to. Default 24.
    #[serde(default = "default_subnet_v4")]
    pub v4: u8,
    /// IPv6 prefix length to escalate to; shorter than the jail's `ipv6_prefix`.
    /// Default 48.
    #[serde(default = "default_subnet_v6")]
    pub v6: u8,
    /// Banned addresses inside one prefix that ban the prefix.
    pub after: u32,
    /// How recent those bans must be. Default 1h.
    #[serde(default = "default_subnet_within")]
    pub within: HumanDuration,
}

/// `notify = { exec = [...], webhook = "http://...", timeout = "5s" }` in a jail:
/// told about each ban after it is enforced, asynchronously; a slow or failing hook
/// never delays a ban.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    /// Program and arguments, run without a shell. `{address}`, `{jail}`,
    /// `{event}`, `{origin}`, `{since}`, `{until}` and `{filter}` in an argument
    /// are replaced by the event's values; each argument stays one argument.
    #[serde(default)]
    pub exec: Vec<String>,
    /// `http://HOST[:PORT]/PATH` that gets an HTTP POST of the event as JSON.
    #[serde(default)]
    pub webhook: Option<String>,
    /// How long one hook may take before it is killed or abandoned. Default 5s.
    #[serde(default = "default_notify_timeout")]
    pub timeout: HumanDuration,
    /// Which events run the hooks: `"ban"`, `"unban"`. Default `["ban"]`.
    #[serde(default = "default_notify_events")]
    pub events: Vec<NotifyEvent>,
}

/// An event a hook can be told about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NotifyEvent {
    /// A ban was enforced (new or extended).
    Ban,
    /// A ban ended (expired, lifted by hand or by a reload).
    Unban,
}

fn default_notify_timeout() -> HumanDuration {
    HumanDuration::from_secs(5)
}
fn default_notify_events() -> Vec<NotifyEvent> {
    vec![NotifyEvent::Ban]
}

fn default_maxretry() -> u32 {
    5
}
fn default_findtime() -> HumanDuration {
    HumanDuration::from_secs(600)
}
fn default_bantime() -> HumanDuration {
    HumanDuration::from_secs(3600)
}
fn default_bantime_factor() -> f64 {
    1.0
}
fn default_history() -> HumanDuration {
    HumanDuration::from_secs(90 * 86_400)
}
/// Default for `ipv6_prefix`: one host owns a /64.
pub(crate) const DEFAULT_IPV6_PREFIX: u8 = 64;
fn default_ipv6_prefix() -> u8 {
    DEFAULT_IPV6_PREFIX
}
fn default_subnet_v4() -> u8 {
    24
}
fn default_subnet_v6() -> u8 {
    48
}
fn default_subnet_within() -> HumanDuration {
    HumanDuration::from_secs(3600)
}

#[cfg(test)]
mod tests;
