//! The filters that ship with log2drop, usable by name from `[sources.X] filters`
//! and `[jails.X] filters` without a `[filters.X]` table.
//!
//! Each one is a TOML file under `filter/builtin/` in exactly the form of a
//! `[filters.NAME]` table (so users can copy one into their config and change it),
//! embedded in the binary. Each has sample logs under `filter/samples/`, with the
//! expected result of every line, including lines in which a client imitates the
//! log format to make the filter take the wrong address; the tests below run them
//! all. docs/filters.md describes every filter.

use serde::Deserialize;

use crate::config::FilterConfig;

/// One built-in filter file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    description: String,
    filter: FilterConfig,
}

macro_rules! builtins {
    ($($name:literal),* $(,)?) => {
        /// Name and TOML text of every built-in filter, sorted by name.
        const BUILTINS: &[(&str, &str)] = &[
            $(($name, include_str!(concat!("builtin/", $name, ".toml")))),*
        ];
        /// Name and sample log of every built-in filter.
        #[cfg(test)]
        const SAMPLES: &[(&str, &str)] = &[
            $(($name, include_str!(concat!("samples/", $name, ".log")))),*
        ];
    };
}

#[rustfmt::skip]
builtins![
    "apache-auth",
    "apache-badbots",
    "apache-botsearch",
    "apache-modsecurity",
    "apache-nohome",
    "apache-noscript",
    "apache-overflows",
    "apache-shellshock",
    "courier-auth",
    "courier-smtp",
    "cyrus-imap",
    "dovecot",
    "dropbear",
    "exim",
    "exim-spam",
    "fail2ban",
    "haproxy-http-auth",
    "http-4xx",
    "monit",
    "mysqld-auth",
    "named-refused",
    "nginx-bad-request",
    "nginx-botsearch",
    "nginx-forbidden",
    "nginx-http-auth",
    "nginx-limit-req",
    "pam-generic",
    "php-url-fopen",
    "portsentry",
    "postfix",
    "proftpd",
    "pure-ftpd",
    "recidive",
    "roundcube-auth",
    "selinux-ssh",
    "sendmail-auth",
    "sendmail-reject",
    "sogo-auth",
    "squid",
    "sshd",
    "traefik-auth",
    "vsftpd",
    "webmin-auth",
    "wordpress",
    "wuftpd",
    "xrdp",
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

/// The TOML text of the built-in filter `name`, as shipped.
pub fn source(name: &str) -> Option<&'static str> {
    BUILTINS.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

#[cfg(test)]
mod tests;
