//! Backends: where a ban takes effect. The daemon hands each backend the decisions
//! that arrived together as one batch, so a backend can turn them into one netlink
//! batch or one map update loop. Backends never decide anything themselves; they
//! make the kernel match the engine.

pub mod dry_run;
pub mod nftables;
pub mod xdp;

use std::time::SystemTime;

use ipnet::IpNet;

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
    #[error(transparent)]
    Xdp(#[from] xdp::XdpError),
    /// The nftables backend failed.
    #[error(transparent)]
    Nftables(#[from] nftables::NftError),
}

/// A place where bans take effect.
pub trait Backend: Send {
    /// The name used in config (`xdp`, `dry-run`, ...).
    fn name(&self) -> &'static str;

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

    /// Drops across all bans, for backends that count only in total (the nftables
    /// rule counter). `None` when the backend does not count that way.
    fn totals(&self) -> Result<Option<DropCounts>, BackendError> {
        Ok(None)
    }
}
