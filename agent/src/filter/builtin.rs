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

fn file(name: &str) -> Option<File> {
    let (_, text) = BUILTINS.iter().find(|(n, _)| *n == name)?;
    // The files are part of the source tree and a test parses every one, so a
    // parse error here cannot reach a release.
    toml::from_str(text).ok()
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

/// The TOML text of the built-in filter `name`, as shipped.
pub fn source(name: &str) -> Option<&'static str> {
    BUILTINS.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

#[cfg(test)]
mod tests;
