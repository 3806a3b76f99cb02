//! Backends: where a ban takes effect. The daemon hands each backend the decisions
//! that arrived together as one batch, so a backend can turn them into one netlink
//! batch or one map update loop. Backends never decide anything themselves; they
//! make the kernel match the engine.
//!
//! Each backend lives in its own folder with its settings (`config.rs`: the serde
//! table and its checks) and implements two traits: [`BackendConfig`] for what the
//! daemon does with its settings (open, flush, what a changed table takes) and
//! [`Backend`] for the running backend. [`kind`] lists the backends this system
//! has and composes their tables into `[backends]`; nothing else names a backend.
//! Backends that need another system's kernel are compiled only there.

pub mod dry_run;
pub mod kind;
#[cfg(target_os = "linux")]
pub mod nftables;
#[cfg(any(target_os = "openbsd", test))]
pub mod pf;
#[cfg(target_os = "linux")]
pub mod xdp;

use std::fmt;
use std::time::SystemTime;

use ipnet::IpNet;

pub use kind::{BackendKind, BackendsConfig};

use crate::config::locate::KeyPath;
use crate::engine::{Ban, Decision};

/// Packets and bytes a backend dropped on behalf of one ban.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct DropCounts {
    /// Packets dropped.
    pub packets: u64,
    /// Bytes dropped.
    pub bytes: u64,
}

/// What a reconciliation changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReconcileReport {
    /// Entries added because the kernel lacked them.
    pub added: usize,
    /// Entries removed because no active ban backs them (expired or unknown).
    pub removed: usize,
    /// Entries present but rewritten because their deadline was wrong.
    pub updated: usize,
    /// Entries already right and left alone.
    pub kept: usize,
}

/// Errors any backend can report.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The XDP backend failed.
    #[cfg(target_os = "linux")]
    #[error(transparent)]
    Xdp(#[from] xdp::XdpError),
    /// The nftables backend failed.
    #[cfg(target_os = "linux")]
    #[error(transparent)]
    Nftables(#[from] nftables::NftError),
    /// The PF backend failed.
    #[cfg(any(target_os = "openbsd", test))]
    #[error(transparent)]
    Pf(#[from] pf::PfBackendError),
}

/// What moving a backend from its running settings to new ones takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Nothing: the settings did not change.
    Keep,
    /// Open the backend with the new settings beside the running one, then swap:
    /// no gap in enforcement.
    Reopen,
    /// Remove the running backend's kernel state first, then open anew: for
    /// changes the kernel cannot hold side by side (a short gap, logged).
    Replace,
    /// Not while running: the reload is refused and the agent must restart (a
    /// backend whose opening the sandboxed agent can no longer do).
    Restart,
}

/// What the daemon needs from one backend's settings. Each backend's config type
/// implements it, and [`BackendsConfig`] dispatches to it by [`BackendKind`], so
/// the daemon starts, reloads and flushes backends without knowing any of them.
pub(crate) trait BackendConfig: Clone + PartialEq + fmt::Debug {
    /// Every problem in these settings, keyed under `at` (the table's own key
    /// path). Pure: `log2drop check` runs it without touching the system.
    fn check(&self, at: &KeyPath) -> Vec<(KeyPath, String)>;

    /// Opens the backend: creates its kernel objects, or takes over the ones an
    /// earlier run left (bans survive restarts).
    fn open(&self) -> Result<Box<dyn Backend>, BackendError>;

    /// Removes every kernel object these settings made (`log2drop flush`, or a
    /// backend leaving the config); returns how many went.
    fn flush(&self) -> Result<usize, BackendError>;

    /// What moving from these settings to `new` takes.
    fn change_to(&self, new: &Self) -> Change {
        if self == new {
            Change::Keep
        } else {
            Change::Reopen
        }
    }

    /// Whether a reload may add this backend to a running agent. False for a
    /// backend whose opening the sandboxed agent can no longer do.
    fn opens_while_running(&self) -> bool {
        true
    }

    /// Called after the backend was reopened with `new` ([`Change::Reopen`]):
    /// removes what these settings set up that `new` no longer uses. Failures are
    /// logged here; the new backend runs regardless.
    fn release(&self, _new: &Self) {}
}

/// A place where bans take effect.
pub trait Backend: Send {
    /// Applies decisions that arrived together, in order.
    fn apply(&mut self, batch: &[Decision], now: SystemTime) -> Result<(), BackendError>;

    /// Makes the kernel hold exactly `active`: adds what is missing, removes entries
    /// no active ban backs, keeps what is already right (no flush-and-reban).
    fn reconcile(
        &mut self,
        active: &[Ban],
        now: SystemTime,
    ) -> Result<ReconcileReport, BackendError>;

    /// Removes entries whose deadline passed. The kernel already ignores them; this
    /// only frees their memory. Returns how many went.
    fn gc(&mut self, now: SystemTime) -> Result<usize, BackendError>;

    /// Drop counters per ban, for backends that count. Empty otherwise.
    fn counters(&self) -> Result<Vec<(IpNet, DropCounts)>, BackendError>;

    /// Empties the kernel state through this running backend, for backends whose
    /// state only the running backend can reach (PF: its helper holds the device
    /// the sandboxed agent cannot open); how many entries went. `None`: the
    /// settings' [`BackendConfig::flush`] does it once the backend is closed.
    fn flush_running(&mut self) -> Result<Option<usize>, BackendError> {
        Ok(None)
    }

    /// Drops across all bans, for backends that count only in total (the nftables
    /// rule counter). `None` when the backend does not count that way.
    fn totals(&self) -> Result<Option<DropCounts>, BackendError> {
        Ok(None)
    }
}

#[cfg(target_os = "linux")]
use std::collections::BTreeSet;

/// Checks a list of interface names under `key`: each a valid Linux or BSD name
/// (1 to 15 bytes, IFNAMSIZ less the NUL; no '/', ':' or whitespace), none twice.
#[cfg(target_os = "linux")]
pub(crate) fn check_interfaces(names: &[String], key: &KeyPath, out: &mut Vec<(KeyPath, String)>) {
    let mut seen = BTreeSet::new();
    for (i, name) in names.iter().enumerate() {
        if !valid_interface_name(name) {
            out.push((
                key.index(i),
                format!(
                    "{name:?} is not a valid interface name (1 to 15 characters, no '/', ':' or whitespace)"
                ),
            ));
        } else if !seen.insert(name.as_str()) {
            out.push((key.index(i), format!("interface {name:?} is listed twice")));
        }
    }
}

#[cfg(target_os = "linux")]
fn valid_interface_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 15
        && name != "."
        && name != ".."
        && !name
            .bytes()
            .any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace() || b.is_ascii_control())
}
