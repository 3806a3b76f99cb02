//! Bulk measurements of the nftables backend, for `cargo xtask bench` and the ignored
//! measuring test: insert N bans into an empty set, then reconcile the same N as a
//! restarted agent would. Never a timed assertion. Runs in the calling thread's
//! network namespace; callers use a throwaway one.

use std::net::Ipv6Addr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use ipnet::{IpNet, Ipv6Net};

use super::config::NftablesConfig;
use super::{NftError, NftablesBackend, ReconcileTiming};
use crate::backend::{Backend, BackendError, ReconcileReport};
use crate::engine::{Ban, Decision, Origin};

/// What one measurement found.
#[derive(Debug, Clone)]
pub struct Measurement {
    /// Bans inserted.
    pub bans: usize,
    /// Time to put them into the empty set (one reconcile, chunked transactions).
    pub insert: Duration,
    /// Time for a fresh backend (a restarted agent) to open and reconcile them.
    pub restart: Duration,
    /// What that reconcile did (all `kept` when nothing changed).
    pub restart_report: ReconcileReport,
    /// Where the insert's reconcile spent its time.
    pub insert_timing: ReconcileTiming,
    /// Where the restart's reconcile spent its time.
    pub restart_timing: ReconcileTiming,
}

impl Measurement {
    /// Bans per second of the insert.
    pub fn insert_rate(&self) -> f64 {
        self.bans as f64 / self.insert.as_secs_f64().max(1e-9)
    }
}

/// `n` distinct single-address bans in 2001:db8::/32 (documentation space), each
/// lasting `bantime` from `now`.
pub fn bulk_bans(n: usize, now: SystemTime, bantime: Duration) -> Vec<Ban> {
    let base = u128::from(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0));
    let jail: Arc<str> = Arc::from("bench");
    (0..n)
        .map(|i| Ban {
            target: IpNet::V6(
                Ipv6Net::new(Ipv6Addr::from(base + (i as u128) * 2 + 1), 128).unwrap_or_default(),
            ),
            jail: jail.clone(),
            since: now,
            until: Some(now + bantime),
            origin: Origin::Jail,
            reason: None,
            forced: false,
            node: None,
        })
        .collect()
}

/// Inserts `n` bans into an empty set, then measures a restart's reconcile, then
/// removes the table. The table `cfg.table` must not exist or be log2drop's.
pub fn insert_and_restart(cfg: &NftablesConfig, n: usize) -> Result<Measurement, BackendError> {
    NftablesBackend::flush(cfg)?;
    let now = SystemTime::now();
    let bans = bulk_bans(n, now, Duration::from_secs(3600));
    let mut backend = NftablesBackend::open(cfg)?;
    let started = Instant::now();
    backend.reconcile(&bans, now)?;
    let insert = started.elapsed();
    let insert_timing = backend.last_reconcile_timing();
    drop(backend);

    let started = Instant::now();
    let mut backend = NftablesBackend::open(cfg)?;
    let restart_report = backend.reconcile(&bans, SystemTime::now())?;
    let restart = started.elapsed();
    let restart_timing = backend.last_reconcile_timing();
    drop(backend);
    NftablesBackend::flush(cfg)?;
    Ok(Measurement {
        bans: n,
        insert,
        restart,
        restart_report,
        insert_timing,
        restart_timing,
    })
}

/// Inserts `n` bans through `apply` in engine-sized batches of `batch` decisions and
/// returns the time taken; removes the table afterwards.
pub fn apply_in_batches(
    cfg: &NftablesConfig,
    n: usize,
    batch: usize,
) -> Result<Duration, BackendError> {
    NftablesBackend::flush(cfg)?;
    let now = SystemTime::now();
    let decisions: Vec<Decision> = bulk_bans(n, now, Duration::from_secs(3600))
        .into_iter()
        .map(Decision::Ban)
        .collect();
    let mut backend = NftablesBackend::open(cfg)?;
    backend.reconcile(&[], now)?;
    let started = Instant::now();
    for chunk in decisions.chunks(batch.max(1)) {
        backend.apply(chunk, now)?;
    }
    let took = started.elapsed();
    drop(backend);
    NftablesBackend::flush(cfg).map_err(|e: NftError| BackendError::from(e))?;
    Ok(took)
}
