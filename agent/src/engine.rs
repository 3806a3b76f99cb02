//! The engine: the single owner of per-address state. It turns offences into ban and
//! unban decisions (thresholds, windows, allowlist, expiry). It is synchronous, does
//! no I/O and takes `now` from its caller, so tests drive it with a fake clock.
//!
//! OWNER NOTE (skeleton): `Ban`, `Decision` and `Origin` are the contract with
//! backends, store and control; the engine itself is to be completed.

use std::sync::Arc;
use std::time::SystemTime;

use ipnet::IpNet;

/// Why a ban exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// A jail's threshold was reached.
    Jail,
    /// `log2drop ban` from the control socket.
    Manual,
}

/// One active ban.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ban {
    /// Banned address (/32, /128) or prefix.
    pub target: IpNet,
    /// Jail that owns the ban (`manual` for manual bans).
    pub jail: Arc<str>,
    /// When the ban started.
    pub since: SystemTime,
    /// When it ends; `None` means permanent.
    pub until: Option<SystemTime>,
    /// Why it exists.
    pub origin: Origin,
}

/// What the engine asks the backends and the store to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Enforce this ban (new, or extended: the target may already be banned).
    Ban(Ban),
    /// Lift the ban on this target.
    Unban(Ban),
}
