//! The configuration file: plain serde data, then a pure validation pass that
//! collects every error at once with its file, line and column, then `build` steps
//! elsewhere turn it into running parts. `log2drop check` and `log2drop run` go
//! through the same [`load`] so a config that checks clean is the config that runs.
//!
//! OWNER NOTE (skeleton): the struct shapes below are the contract other modules
//! build on; `load`/`parse` and validation are to be completed.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use crate::duration::HumanDuration;

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Agent-wide settings.
    #[serde(default)]
    pub agent: AgentConfig,
    /// Where bans take effect.
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
}

/// `[agent]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentConfig {
    /// Directory for the state database. Default `/var/lib/log2drop`.
    pub state_dir: PathBuf,
    /// Control socket path. Default `/run/log2drop/log2drop.sock`.
    pub socket: PathBuf,
    /// Addresses and CIDRs that are never banned. Default loopback.
    pub allow: Vec<String>,
}

impl Default for AgentConfig {
    fn default() -> Self {
        Self {
            state_dir: PathBuf::from("/var/lib/log2drop"),
            socket: PathBuf::from("/run/log2drop/log2drop.sock"),
            allow: vec!["127.0.0.0/8".into(), "::1".into()],
        }
    }
}

/// `[backends]`: each present table enables that backend.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendsConfig {
    /// `[backends.xdp]`.
    pub xdp: Option<XdpConfig>,
    /// `[backends.dry-run]`: logs decisions only.
    #[serde(rename = "dry-run")]
    pub dry_run: Option<DryRunConfig>,
}

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
#[derive(Debug, Clone, Deserialize)]
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

/// `[backends.dry-run]`: no settings yet.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DryRunConfig {}

/// `[filters.NAME]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterConfig {
    /// Regexes; each must contain `<HOST>` exactly once.
    pub regex: Vec<String>,
    /// Lines matching any of these never count.
    #[serde(default)]
    pub ignore: Vec<String>,
}

/// `[sources.NAME]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// File to follow.
    pub path: PathBuf,
    /// Filters applied to its lines.
    pub filters: Vec<String>,
}

/// `[jails.NAME]`.
#[derive(Debug, Clone, Deserialize)]
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
