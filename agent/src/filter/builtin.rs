//! The filters that ship with log2drop, usable by name from `[sources.X] filters`
//! and `[jails.X] filters` without a `[filters.X]` table.
//!
//! Each one is a TOML file under `filter/builtin/` in exactly the form of a
//! `[filters.NAME]` table (so users can copy one into their config and change it),
//! embedded in the binary. Each has sample logs under `filter/samples/`, with the
//! expected result of every line, including lines in which a client imitates the
//! log format to make the filter take the wrong address; the tests below run them
//! all. docs/filters.md describes every filter, and `log2drop filters` lists them
//! from the metadata at the top of each file (`description`, `services`, `log`).
//!
//! Regex pieces several filters share are defined once, in [`FRAGMENTS`], and
//! written `{{name}}` in the files; they are put in when a file is loaded, so
//! what runs, what `log2drop filters show` prints and what `--toml` gives to copy
//! are the full regexes.

use std::net::IpAddr;

use serde::Deserialize;

use crate::config::FilterConfig;

/// One built-in filter file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    description: String,
    /// The programs and versions whose log formats the regexes were written
    /// against, so an admin can tell whether a filter fits a server.
    #[serde(default)]
    services: Vec<String>,
    /// Where those programs write the lines (a file, syslog, the journal).
    #[serde(default)]
    log: String,
    filter: FilterConfig,
}

/// What a built-in filter is for, as `log2drop filters` shows it.
#[derive(Debug, Clone)]
pub struct Info {
    /// The name to use in `filters = [...]`.
    pub name: &'static str,
    /// One line saying what counts.
    pub description: String,
    /// Programs and the versions whose formats the regexes follow.
    pub services: Vec<String>,
    /// Where the lines are written.
    pub log: String,
    /// The filter itself, as a `[filters.NAME]` table would give it.
    pub filter: FilterConfig,
}

/// One line of a built-in filter's sample log, with what it must give.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// Line number in the sample file.
    pub number: usize,
    /// The log line.
    pub line: &'static str,
    /// The address the filter must take from it; `None` when it must not match
    /// or matches a host name.
    pub host: Option<IpAddr>,
    /// The host name the filter must take from it where the log has no
    /// address (`#= NAME`; counted for the name's addresses with `use_dns`).
    pub name: Option<&'static str>,
    /// A client wrote part of the line to imitate the format.
    pub inject: bool,
    /// The line matches but its session keeps it from counting (`held`).
    pub held: bool,
    /// The filter mode the line is read in (`#mode NAME` lines switch it).
    pub mode: &'static str,
    /// The other words of the expectation (`user=root`, `time=...`).
    pub details: Vec<(&'static str, &'static str)>,
}

macro_rules! builtins {
    ($($name:literal),* $(,)?) => {
        /// Name and TOML text of every built-in filter, sorted by name.
        const BUILTINS: &[(&str, &str)] = &[
            $(($name, include_str!(concat!("builtin/", $name, ".toml")))),*
        ];
        /// Name and sample log of every built-in filter.
        const SAMPLES: &[(&str, &str)] = &[
            $(($name, include_str!(concat!("samples/", $name, ".log")))),*
        ];
    };
}

#[rustfmt::skip]
builtins![
    "3proxy",
    "apache-auth",
    "apache-badbots",
    "apache-botsearch",
    "apache-fakegooglebot",
    "apache-modsecurity",
    "apache-nohome",
    "apache-noscript",
    "apache-overflows",
    "apache-pass",
    "apache-shellshock",
    "assp",
    "asterisk",
    "bitwarden",
    "caddy-auth",
    "centreon",
    "counter-strike",
    "courier-auth",
    "courier-smtp",
    "cyrus-imap",
    "directadmin",
    "domino-smtp",
    "dovecot",
    "dropbear",
    "drupal-auth",
    "ejabberd-auth",
    "exim",
    "exim-spam",
    "fail2ban",
    "freeswitch",
    "froxlor-auth",
    "gitlab",
    "grafana",
    "groupoffice",
    "gssftpd",
    "guacamole",
    "haproxy-http-auth",
    "horde",
    "http-4xx",
    "kerio",
    "lighttpd-auth",
    "mongodb-auth",
    "monit",
    "monitorix",
    "mssql-auth",
    "murmur",
    "mysqld-auth",
    "nagios",
    "named-refused",
    "nginx-bad-request",
    "nginx-botsearch",
    "nginx-forbidden",
    "nginx-http-auth",
    "nginx-limit-req",
    "nsd",
    "openhab",
    "openvpn",
    "openwebmail",
    "oracleims",
    "pam-generic",
    "perdition",
    "php-url-fopen",
    "phpmyadmin-syslog",
    "portsentry",
    "postfix",
    "proftpd",
    "pure-ftpd",
    "qmail",
    "recidive",
    "roundcube-auth",
    "scanlogd",
    "screensharingd",
    "selinux-ssh",
    "sendmail-auth",
    "sendmail-reject",
    "sieve",
    "slapd",
    "softethervpn",
    "sogo-auth",
    "solid-pop3d",
    "squid",
    "squirrelmail",
    "sshd",
    "stunnel",
    "suhosin",
    "tine20",
    "traefik-auth",
    "uwimap-auth",
    "vaultwarden",
    "vsftpd",
    "webmin-auth",
    "wordpress",
    "wuftpd",
    "xinetd-fail",
    "xrdp",
    "znc-adminlog",
    "zoneminder",
];

/// The optional syslog head of a line a program (`$prog`, a regex) sent through
/// syslog or the journal: a BSD or ISO 8601 time and a host, both optional as
/// each relay and reader keeps or drops them, then `prog[PID]: `.
macro_rules! bsd_head {
    ($prog:expr) => {
        concat!(syslog_time_host!(), $prog, r"(?:\[\d+\])?: ")
    };
}

/// The optional BSD or ISO 8601 time and host a syslog relay or reader puts
/// before `prog[PID]: `.
macro_rules! syslog_time_host {
    () => {
        r"(?:(?:[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?) )?(?:[^\s\[\]]+ )?"
    };
}

/// The RFC 5424 head of a line `$prog` sent to a remote syslog server that
/// writes what it received (`<PRI>1 TIME HOST APP PROCID MSGID SD [BOM]`).
macro_rules! rfc5424_head {
    ($prog:expr) => {
        concat!(
            r"<\d{1,3}>1 \S+ \S+ ",
            $prog,
            r" \S+ \S+ (?:-|(?:\[[^\]]*\])+) (?:\xEF\xBB\xBF)?"
        )
    };
}

/// The program names nginx and Apache httpd log access lines under when sent
/// to syslog (`access_log syslog:` takes `nginx` or its `tag=`; Debian's and Red
/// Hat's `CustomLog |logger` recipes use `apache2`, `apache` or `httpd`, some
/// with `-access` or `_access`).
macro_rules! web_prog {
    () => {
        r"(?:nginx|apache2?|httpd)(?:[-_]access)?"
    };
}

/// Why each one exists: a web server writes its own log file, but may instead
/// send the same line to syslog (nginx's `access_log syslog:`, `error_log
/// syslog:`, Apache's `CustomLog |logger`, Caddy under systemd), where a relay or
/// the journal puts a head in front; the line after the head is the same, so one
/// regex reads both. The head is the same for every filter of that server, so it
/// is defined here once instead of copied into each regex.
///
/// Written `{{name}}` in a built-in's TOML (inside a literal `'...'` or `'''...'''`
/// string, so its backslashes stay as they are). `{{` followed by a lower-case
/// letter is always a reference: a regex never has it (a `{` repetition takes a
/// digit) and fail2ban's `%(name)s` and `<TAG>` do not look like it.
pub(crate) const FRAGMENTS: &[(&str, &str)] = &[
    // nginx's and Apache's access lines (the combined format and its kin), as
    // their own file or behind a BSD/ISO 8601 or RFC 5424 syslog head; optional.
    (
        "web-head",
        concat!(
            "(?:",
            bsd_head!(web_prog!()),
            "|",
            rfc5424_head!(web_prog!()),
            ")?"
        ),
    ),
    // nginx's error log lines (`YYYY/MM/DD HH:MM:SS [level] PID#TID: ...`), as
    // its own file or behind a syslog head (`error_log syslog:`); optional.
    (
        "nginx-head",
        concat!("(?:", bsd_head!("nginx"), "|", rfc5424_head!("nginx"), ")?"),
    ),
    // One optional SGR colour sequence (`ESC[1;33m`, `ESC[0m`, `ESC[0;37;40m`)
    // where a daemon's console colours its own fields (Asterisk's level, file,
    // line and function), raw or as rsyslog writes a received ESC (`#033[`).
    // Put only between a daemon's own fields, never in client text, so a
    // colour cannot move where the address is taken.
    ("ansi", r"(?:(?:\x1b|#033)\[[\d;]*m)?"),
    // Apache httpd's error log head: its own `[Www Mmm DD HH:MM:SS[.usec] YYYY] `,
    // or syslog's (`ErrorLog syslog:`) `[TIME] [HOST] apache2[PID]: ` or
    // `httpd/VHOST[PID]: `; not optional, one of the two is always there.
    (
        "apache-error-head",
        concat!(
            r"(?:\[[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d(?:\.\d+)? \d{4}\] |",
            syslog_time_host!(),
            r"(?:apache2?|httpd)(?:/[-.\w]+)?\[\d+\]: )"
        ),
    ),
    // Caddy's JSON log lines (access log, handlers' logs), as their own file or in
    // the journal (`caddy[PID]: {...}`); optional.
    ("caddy-head", concat!("(?:", bsd_head!("caddy"), ")?")),
    // Caddy's JSON access log up to the value of `remote_ip`, as its own file or
    // in the journal (`caddy[PID]: {...}`): the fields before it are Caddy's, in
    // its order, so the regex goes on with `<HOST>` (the peer) or the peer's value
    // and `client_ip` (2.7 and later).
    (
        "caddy-access",
        concat!(
            "(?:",
            bsd_head!("caddy"),
            r#")?\{"level":"\w+","ts":(?:[\d.eE+-]+|"[^"\\]*"),"logger":"http\.log\.access(?:\.[^"\\]*)?","msg":"(?:handled request|NOP)","request":\{"remote_ip":""#
        ),
    ),
];

/// A built-in filter that does not load: a bug in the source tree (a test loads
/// every one), said with the filter's name so the fix is quick.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LoadError {
    #[error(
        "built-in filter {filter}: unknown fragment {{{{{name}}}}} (the fragments: {known})",
        known = FRAGMENTS.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
    )]
    UnknownFragment { filter: String, name: String },
    #[error("built-in filter {filter}: fragment reference {{{{{name}... has no closing }}}}")]
    Unclosed { filter: String, name: String },
    #[error("built-in filter {filter}: {source}")]
    Toml {
        filter: String,
        source: toml::de::Error,
    },
}

/// `text` with every `{{name}}` replaced by its fragment.
fn expand(filter: &str, text: &str) -> Result<String, LoadError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("{{") {
        let after = &rest[at + 2..];
        if !after.starts_with(|c: char| c.is_ascii_lowercase()) {
            out.push_str(&rest[..at + 2]);
            rest = after;
            continue;
        }
        let len = after
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'))
            .unwrap_or(after.len());
        let name = &after[..len];
        if !after[len..].starts_with("}}") {
            return Err(LoadError::Unclosed {
                filter: filter.into(),
                name: name.into(),
            });
        }
        let (_, fragment) = FRAGMENTS.iter().find(|(n, _)| *n == name).ok_or_else(|| {
            LoadError::UnknownFragment {
                filter: filter.into(),
                name: name.into(),
            }
        })?;
        out.push_str(&rest[..at]);
        out.push_str(fragment);
        rest = &after[len + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The built-in filter `name`, its fragments put in and parsed.
fn load(name: &str, text: &str) -> Result<File, LoadError> {
    toml::from_str(&expand(name, text)?).map_err(|source| LoadError::Toml {
        filter: name.into(),
        source,
    })
}

fn file(name: &str) -> Option<File> {
    let (name, text) = BUILTINS.iter().find(|(n, _)| *n == name)?;
    // The files are part of the source tree and a test loads every one, so an
    // error here is a bug that cannot reach a release; stop on it with the
    // filter's name rather than have the filter look missing.
    Some(load(name, text).unwrap_or_else(|e| panic!("{e}")))
}

/// Names of every built-in filter, sorted.
pub fn names() -> impl Iterator<Item = &'static str> {
    BUILTINS.iter().map(|(n, _)| *n)
}

/// Whether `name` is a built-in filter.
pub fn exists(name: &str) -> bool {
    BUILTINS.iter().any(|(n, _)| *n == name)
}

/// The built-in filter called `name`.
pub fn get(name: &str) -> Option<FilterConfig> {
    file(name).map(|f| f.filter)
}

/// One line saying what the built-in filter `name` matches.
pub fn description(name: &str) -> Option<String> {
    file(name).map(|f| f.description)
}

/// Everything `log2drop filters` tells about the built-in filter `name`.
pub fn info(name: &str) -> Option<Info> {
    let (name, _) = BUILTINS.iter().find(|(n, _)| *n == name)?;
    let f = file(name)?;
    Some(Info {
        name,
        description: f.description,
        services: f.services,
        log: f.log,
        filter: f.filter,
    })
}

/// The sample lines of the built-in filter `name`, in file order.
pub fn samples(name: &str) -> Option<Vec<Sample>> {
    let (_, text) = SAMPLES.iter().find(|(n, _)| *n == name)?;
    // A test parses every sample file, so an error here cannot reach a release.
    parse_samples(text).ok()
}

/// Reads a sample file: each log line is preceded by a `#= ` line saying what it
/// must give (`#= ADDRESS [inject] [key=value...]` or `#= - [inject]`); other
/// lines starting with `#` are comments.
fn parse_samples(text: &'static str) -> Result<Vec<Sample>, String> {
    let mut out = Vec::new();
    // The expectation read, waiting for its line.
    let mut pending: Option<Sample> = None;
    let mut mode = crate::filter::NORMAL_MODE;
    for (n, line) in text.lines().enumerate() {
        let n = n + 1;
        if let Some(m) = line.strip_prefix("#mode ") {
            if pending.is_some() {
                return Err(format!("line {n}: mode switch after an expectation"));
            }
            mode = m.trim();
        } else if let Some(spec) = line.strip_prefix("#= ") {
            if pending.is_some() {
                return Err(format!("line {n}: two expectations in a row"));
            }
            let mut words = spec.split_whitespace();
            let (host, name) = match words.next() {
                Some("-") => (None, None),
                Some(a) => match a.parse() {
                    Ok(ip) => (Some(ip), None),
                    Err(_) if crate::addr::is_host_name(a.as_bytes()) => (None, Some(a)),
                    Err(_) => return Err(format!("line {n}: bad address or host name {a:?}")),
                },
                None => return Err(format!("line {n}: empty expectation")),
            };
            let mut inject = false;
            let mut held = false;
            let mut details = Vec::new();
            for w in words {
                match w.split_once('=') {
                    None if w == "inject" => inject = true,
                    None if w == "held" => held = true,
                    Some(kv) => details.push(kv),
                    None => return Err(format!("line {n}: unknown word {w:?}")),
                }
            }
            pending = Some(Sample {
                number: 0,
                line: "",
                host,
                name,
                inject,
                held,
                mode,
                details,
            });
        } else if line.starts_with('#') {
            continue;
        } else {
            let expect = pending
                .take()
                .ok_or_else(|| format!("line {n}: sample line without a #= expectation"))?;
            out.push(Sample {
                number: n,
                line,
                ..expect
            });
        }
    }
    if pending.is_some() {
        return Err("expectation without a line at the end".into());
    }
    Ok(out)
}

/// The TOML text of the built-in filter `name`, as shipped with its fragments
/// put in: what runs, and what a `[filters.NAME]` table can copy.
pub fn source(name: &str) -> Option<String> {
    let (name, text) = BUILTINS.iter().find(|(n, _)| *n == name)?;
    // As in `file`: a test loads every built-in.
    Some(expand(name, text).unwrap_or_else(|e| panic!("{e}")))
}

#[cfg(test)]
mod tests;
