//! `log2drop config --default`: the commented default config. The text is a file in
//! the source tree so the Debian package installs the very same bytes as
//! /etc/log2drop/log2drop.toml; the tests below keep it honest (it checks clean, every
//! value it prints is the real default, and every commented example still parses).

use std::io::Write;

use anyhow::{Context, Result};

/// The full commented default config.
pub const DEFAULT_CONFIG_TEXT: &str = include_str!("default.toml");

/// `log2drop config --default`.
pub fn print_default() -> Result<()> {
    std::io::stdout()
        .lock()
        .write_all(DEFAULT_CONFIG_TEXT.as_bytes())
        .context("cannot write the default config to standard output")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// Only what has no default: removing every printed value must not change the
    /// config, which proves each printed value is the real default (a changed default
    /// in `config.rs` fails here until this file says the same).
    const REQUIRED_ONLY: &str = r#"
[backends.nftables]
[sources.sshd]
type = "auto"
path = "/var/log/auth.log"
match = ["_SYSTEMD_UNIT=ssh.service", "+", "_SYSTEMD_UNIT=sshd.service"]
filters = ["sshd"]
[jails.sshd]
filters = ["sshd"]
"#;

    #[test]
    fn default_config_passes_check() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("log2drop.toml");
        std::fs::write(&path, DEFAULT_CONFIG_TEXT).expect("write");
        // The same load-validate-build pass `log2drop check` runs.
        if let Err(e) = log2drop::daemon::prepare(&path) {
            panic!("the default config does not check:\n{e}");
        }
    }

    #[test]
    fn default_config_round_trips_to_the_defaults() {
        let printed = log2drop::config::parse(DEFAULT_CONFIG_TEXT, Path::new("default.toml"))
            .unwrap_or_else(|e| panic!("{e}"));
        let minimal = log2drop::config::parse(REQUIRED_ONLY, Path::new("minimal.toml"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(printed, minimal);
    }

    #[test]
    fn commented_examples_still_parse() {
        // `#key = value` and `#[table]` lines (no space after `#`) are examples; with
        // every one of them enabled the file must still deserialise, so a renamed key
        // cannot linger in the printed config.
        let enabled: String = DEFAULT_CONFIG_TEXT
            .lines()
            .map(|l| match l.strip_prefix('#') {
                Some(rest) if !rest.is_empty() && !rest.starts_with([' ', '#']) => rest,
                _ => l,
            })
            .flat_map(|l| [l, "\n"])
            .collect();
        assert_ne!(enabled, DEFAULT_CONFIG_TEXT, "no example was enabled");
        let cfg: log2drop::config::Config = toml::from_str(&enabled)
            .unwrap_or_else(|e| panic!("an enabled example does not parse: {e}\n{enabled}"));
        assert!(cfg.backends.xdp.is_some() && cfg.backends.dry_run.is_some());
        assert!(cfg.filters.contains_key("myapp"));
        assert!(cfg.metrics.listen.is_some());
        let jail = &cfg.jails["sshd"];
        assert!(jail.subnet.is_some() && jail.notify.is_some() && jail.threshold.is_some());
        let fleet = cfg.fleet.as_ref().expect("the [fleet] example");
        assert_eq!(fleet.share, ["sshd"]);
    }
}
