//! `[backends.nftables]`: the nftables backend's settings and the checks they must
//! pass, owned by the backend; `config` only composes the backends' tables.

use serde::Deserialize;

use crate::backend::check_interfaces;
use crate::config::locate::KeyPath;

/// Where the nftables chain hooks in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NftHook {
    /// `table inet NAME`, a base chain on the input hook: traffic to this host.
    #[default]
    Input,
    /// `table netdev NAME`, one base chain per listed interface on the ingress hook:
    /// earlier than input, before conntrack and routing.
    Ingress,
    /// `table inet NAME`, a base chain on the forward hook: traffic this host
    /// routes to others, such as Docker's published ports (DNAT'ed to a container,
    /// they pass forward, never input). Not traffic to the host itself.
    Forward,
    /// `table inet NAME`, a base chain on the prerouting hook: every packet that
    /// arrives, to the host or routed through it (containers included), on every
    /// interface, after conntrack has seen it.
    Prerouting,
}

impl NftHook {
    /// The name the config uses.
    pub fn name(self) -> &'static str {
        match self {
            NftHook::Input => "input",
            NftHook::Ingress => "ingress",
            NftHook::Forward => "forward",
            NftHook::Prerouting => "prerouting",
        }
    }
}

/// What the nftables chain does with a packet from a banned source.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NftAction {
    /// Drop silently.
    #[default]
    Drop,
    /// Reject: ICMP(v6) port unreachable (or TCP reset where the kernel picks it).
    Reject,
}

/// `[backends.nftables]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NftablesConfig {
    /// Name of the table log2drop owns (`inet` family for `input`, `netdev` for
    /// `ingress`). Default `log2drop`.
    #[serde(default = "default_nft_table")]
    pub table: String,
    /// Hook of the chain. Default `input`.
    #[serde(default)]
    pub hook: NftHook,
    /// Chain priority; lower runs first. Default -10, before the usual filter chains
    /// (priority 0) of firewalld, ufw or docker.
    #[serde(default = "default_nft_priority")]
    pub priority: i32,
    /// Interfaces for the `ingress` hook (required there, not allowed with `input`).
    #[serde(default)]
    pub interfaces: Vec<String>,
    /// `drop` or `reject`. Default `drop`.
    #[serde(default)]
    pub action: NftAction,
    /// Count packets and bytes the chain turned away (`stats`). Default false.
    #[serde(default)]
    pub counter: bool,
}

fn default_nft_table() -> String {
    "log2drop".into()
}
fn default_nft_priority() -> i32 {
    -10
}

/// Longest table name nftables accepts (NFT_NAME_MAXLEN less the NUL).
const NFT_NAME_MAX: usize = 255;

impl NftablesConfig {
    /// Every problem of this table, keyed under `at` (its own key path).
    pub(crate) fn problems(&self, at: &KeyPath) -> Vec<(KeyPath, String)> {
        let mut out = Vec::new();
        let table = at.key("table");
        if self.table.is_empty() {
            out.push((table, "must not be empty".to_owned()));
        } else if self.table.len() > NFT_NAME_MAX {
            out.push((
                table,
                format!("must be at most {NFT_NAME_MAX} bytes (nftables' name limit)"),
            ));
        } else if self.table.bytes().any(|b| b == 0 || b.is_ascii_control()) {
            out.push((table, "must not contain control characters".to_owned()));
        }
        let interfaces = at.key("interfaces");
        match self.hook {
            NftHook::Ingress if self.interfaces.is_empty() => out.push((
                interfaces.clone(),
                "lists no interface: hook = \"ingress\" needs at least one, e.g. interfaces = [\"eth0\"]"
                    .to_owned(),
            )),
            NftHook::Input | NftHook::Forward | NftHook::Prerouting
                if !self.interfaces.is_empty() =>
            {
                out.push((
                    interfaces.clone(),
                    format!(
                        "is only used with hook = \"ingress\"; the {} hook sees every interface",
                        self.hook.name()
                    ),
                ))
            }
            _ => {}
        }
        check_interfaces(&self.interfaces, &interfaces, &mut out);
        out
    }
}
