//! `[backends.pf]`: the PF backend's settings and the checks they must pass, owned
//! by the backend; `config` only composes the backends' tables.

use std::path::PathBuf;

use serde::Deserialize;

use crate::config::locate::KeyPath;

/// `[backends.pf]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PfConfig {
    /// The PF table that holds the bans, `<log2drop>` in pf.conf. Default
    /// `log2drop`.
    #[serde(default = "default_table")]
    pub table: String,
    /// Kill the states of a newly banned host, as `pfctl -k` does, so its
    /// established connections are cut too (a `block` rule only stops new ones).
    /// Default true.
    #[serde(default = "default_kill_states")]
    pub kill_states: bool,
    /// The pf device. Default `/dev/pf`.
    #[serde(default = "default_device")]
    pub device: PathBuf,
}

fn default_table() -> String {
    "log2drop".into()
}
fn default_kill_states() -> bool {
    true
}
fn default_device() -> PathBuf {
    PathBuf::from("/dev/pf")
}

/// Longest PF table name: the kernel's field is 32 bytes with its NUL.
const PF_TABLE_NAME_MAX: usize = 31;

impl PfConfig {
    /// Every problem of this table, keyed under `at` (its own key path).
    pub(crate) fn problems(&self, at: &KeyPath) -> Vec<(KeyPath, String)> {
        let mut out = Vec::new();
        let table = at.key("table");
        if self.table.is_empty() {
            out.push((table, "must not be empty".to_owned()));
        } else if self.table.len() > PF_TABLE_NAME_MAX {
            out.push((
                table,
                format!("must be at most {PF_TABLE_NAME_MAX} bytes (PF's table name limit)"),
            ));
        } else if self
            .table
            .bytes()
            .any(|b| b == 0 || b.is_ascii_whitespace() || b.is_ascii_control())
        {
            out.push((
                table,
                "must not contain whitespace or control characters (pfctl -t could not name it)"
                    .to_owned(),
            ));
        }
        if !self.device.is_absolute() {
            out.push((
                at.key("device"),
                format!("{:?} must be an absolute path", self.device.display()),
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<String> {
        let cfg: PfConfig = toml::from_str(text).unwrap_or_else(|e| panic!("{e}"));
        cfg.problems(&KeyPath::of(&["backends", "pf"]))
            .into_iter()
            .map(|(k, m)| format!("{k}: {m}"))
            .collect()
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let cfg: PfConfig = toml::from_str("").expect("empty table");
        assert_eq!(cfg.table, "log2drop");
        assert!(cfg.kill_states);
        assert_eq!(cfg.device, PathBuf::from("/dev/pf"));
        assert!(problems("").is_empty());
    }

    #[test]
    fn bad_names_and_paths_are_refused_with_their_key() {
        assert_eq!(
            problems("table = \"\""),
            ["backends.pf.table: must not be empty"]
        );
        let long = format!("table = \"{}\"", "t".repeat(32));
        assert!(problems(&long)[0].contains("at most 31 bytes"));
        assert!(problems("table = \"two words\"")[0].contains("whitespace"));
        assert!(problems(&format!("table = \"{}\"", "t".repeat(31))).is_empty());
        assert!(problems("device = \"dev/pf\"")[0].starts_with("backends.pf.device: "));
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(toml::from_str::<PfConfig>("tabel = \"x\"").is_err());
    }
}
