//! `[backends.xdp]`: the XDP backend's settings and the checks they must pass. The
//! backend owns them, so adding a key touches this folder only; `config` just
//! composes every backend's table (see [`crate::backend::kind`]).

use std::path::PathBuf;

use serde::Deserialize;

use crate::backend::check_interfaces;
use crate::config::locate::KeyPath;

/// How the XDP program is attached.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum XdpMode {
    /// Native (driver) mode, falling back to generic (skb) mode with a warning.
    #[default]
    Auto,
    /// Native only: fail if the driver lacks XDP.
    Native,
    /// Generic (skb) mode only.
    Skb,
}

/// `[backends.xdp]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct XdpConfig {
    /// Interfaces to attach to.
    pub interfaces: Vec<String>,
    /// bpffs directory for pinned maps and links. Default `/sys/fs/bpf/log2drop`.
    #[serde(default = "default_pin_dir")]
    pub pin_dir: PathBuf,
    /// Attach mode. Default `auto`.
    #[serde(default)]
    pub mode: XdpMode,
    /// Capacity of each exact-address map (IPv4 and IPv6). Default 1,048,576.
    #[serde(default = "default_max_bans")]
    pub max_bans: u32,
    /// Capacity of each prefix-ban trie (IPv4 and IPv6). Default 65,536.
    #[serde(default = "default_max_cidr_bans")]
    pub max_cidr_bans: u32,
    /// Count drops per ban (`log2drop stats`). Default true. Off, a drop skips the
    /// two atomic adds and the write to the ban's cache line.
    #[serde(default = "default_counters")]
    pub counters: bool,
}

fn default_counters() -> bool {
    true
}

fn default_pin_dir() -> PathBuf {
    PathBuf::from("/sys/fs/bpf/log2drop")
}
fn default_max_bans() -> u32 {
    1 << 20
}
fn default_max_cidr_bans() -> u32 {
    1 << 16
}

impl XdpConfig {
    /// Every problem of this table, keyed under `at` (its own key path).
    pub(crate) fn problems(&self, at: &KeyPath) -> Vec<(KeyPath, String)> {
        let mut out = Vec::new();
        let interfaces = at.key("interfaces");
        if self.interfaces.is_empty() {
            out.push((
                interfaces.clone(),
                "lists no interface: name at least one, e.g. interfaces = [\"eth0\"]".to_owned(),
            ));
        }
        check_interfaces(&self.interfaces, &interfaces, &mut out);
        if !self.pin_dir.is_absolute() {
            out.push((
                at.key("pin_dir"),
                format!(
                    "{:?} must be an absolute path on a bpffs mount",
                    self.pin_dir.display()
                ),
            ));
        }
        if self.max_bans == 0 {
            out.push((at.key("max_bans"), "must be at least 1".to_owned()));
        }
        if self.max_cidr_bans == 0 {
            out.push((at.key("max_cidr_bans"), "must be at least 1".to_owned()));
        }
        out
    }
}
