//! The PF backend (OpenBSD): bans are entries of one PF table (`<log2drop>` in
//! pf.conf, which blocks what it holds). Writing goes through
//! [`log2drop_openbsd::pf::TableOps`]: on OpenBSD a privileged helper process that
//! holds `/dev/pf` (docs/openbsd.md says why: pledge forbids the ioctls), in tests
//! the crate's fake device, which applies the kernel's table rules on Linux.
//!
//! PF tables never expire entries, so this backend keeps each entry's deadline:
//! the engine's unban at the deadline deletes it, and [`Backend::gc`] deletes any
//! entry whose deadline passed without one (an unban that failed). A start
//! reconciles the table with the store in one whole-table replacement, so a
//! restart neither drops bans nor re-adds them one by one, and bans that expired
//! while the agent was down are gone.

pub mod config;

use std::collections::HashMap;
use std::time::SystemTime;

use ipnet::IpNet;
use log2drop_openbsd::pf::{PfError, TableOps};

use super::{Backend, BackendError, DropCounts, ReconcileReport};
use crate::engine::{Ban, Decision};

/// Why the PF backend failed.
#[derive(Debug, thiserror::Error)]
pub enum PfBackendError {
    /// The table client (the helper, or `/dev/pf`) refused or failed.
    #[error(transparent)]
    Pf(#[from] PfError),
    /// The privileged helper could not be started.
    #[error("cannot start the PF helper {exe}: {source}")]
    Spawn {
        /// The program started as the helper (the agent's own binary).
        exe: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl From<PfError> for BackendError {
    fn from(e: PfError) -> Self {
        BackendError::Pf(PfBackendError::Pf(e))
    }
}

/// The PF backend over any table client.
pub struct PfBackend<T> {
    ops: T,
    table: String,
    kill_states: bool,
    /// What the table holds, by entry (host bits cleared), with its deadline
    /// (`None`: permanent).
    held: HashMap<IpNet, Option<SystemTime>>,
}

impl<T> std::fmt::Debug for PfBackend<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PfBackend")
            .field("table", &self.table)
            .field("kill_states", &self.kill_states)
            .field("held", &self.held.len())
            .finish_non_exhaustive()
    }
}

/// Whether a ban with deadline `until` is over at `now`.
fn expired(until: Option<SystemTime>, now: SystemTime) -> bool {
    until.is_some_and(|u| u <= now)
}

/// Of two deadlines for one entry, the one that lasts longer.
fn later(a: Option<SystemTime>, b: Option<SystemTime>) -> Option<SystemTime> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        _ => None,
    }
}

/// Whether `net` is one host (states are killed for hosts only).
fn is_host(net: &IpNet) -> bool {
    net.prefix_len() == net.max_prefix_len()
}

impl<T: TableOps> PfBackend<T> {
    /// Takes `ops` over for `table`, creating the table if it is missing.
    pub fn new(mut ops: T, table: &str, kill_states: bool) -> Result<Self, PfError> {
        if ops.ensure_table(table)? {
            tracing::info!(
                table,
                "PF table created (add `table <{table}> persist` to pf.conf)"
            );
        }
        Ok(PfBackend {
            ops,
            table: table.to_owned(),
            kill_states,
            held: HashMap::new(),
        })
    }

    /// The table client (tests look at the fake device through it).
    pub fn ops(&self) -> &T {
        &self.ops
    }

    /// Makes the table hold exactly what this backend holds, in one replacement.
    fn rewrite(&mut self) -> Result<log2drop_openbsd::pf::Replaced, PfError> {
        self.ops.ensure_table(&self.table)?;
        let mut nets: Vec<IpNet> = self.held.keys().copied().collect();
        nets.sort_unstable();
        self.ops.replace(&self.table, &nets)
    }

    /// Runs one table write; when the table is gone (ESRCH: `pfctl -F Tables`,
    /// `pfctl -t T -T kill`) it is created again and given the whole set, which
    /// already includes this write.
    fn write(
        &mut self,
        op: impl FnOnce(&mut T, &str) -> Result<u32, PfError>,
    ) -> Result<(), PfError> {
        match op(&mut self.ops, &self.table) {
            Ok(_) => Ok(()),
            Err(e) if e.errno() == Some(libc::ESRCH) => {
                tracing::warn!(table = %self.table, "the PF table was removed; creating it again with every ban");
                self.rewrite().map(|_| ())
            }
            Err(e) => Err(e),
        }
    }
}

impl<T: TableOps + Send> Backend for PfBackend<T> {
    /// One add for the batch's bans, one delete for its unbans; with
    /// `kill_states`, the states of each newly banned host are killed after the
    /// add. Every ban is written even if already held, so an entry removed behind
    /// the agent's back comes back with the next ban of it.
    fn apply(&mut self, batch: &[Decision], now: SystemTime) -> Result<(), BackendError> {
        // The last decision on a target wins within the batch.
        let mut last: HashMap<IpNet, Option<Option<SystemTime>>> = HashMap::new();
        let mut order = Vec::new();
        for d in batch {
            let (ban, until) = match d {
                Decision::Ban(b) => (b, Some(b.until)),
                Decision::Unban(b) => (b, None),
            };
            let net = ban.target.trunc();
            if last.insert(net, until).is_none() {
                order.push(net);
            }
        }
        let mut adds = Vec::new();
        let mut dels = Vec::new();
        let mut new_hosts = Vec::new();
        for net in order {
            match last[&net] {
                Some(until) if !expired(until, now) => {
                    if self.held.insert(net, until).is_none() && is_host(&net) {
                        new_hosts.push(net.addr());
                    }
                    adds.push(net);
                }
                _ => {
                    if self.held.remove(&net).is_some() {
                        dels.push(net);
                    }
                }
            }
        }
        if !adds.is_empty() {
            self.write(|ops, table| ops.add(table, &adds))?;
        }
        if !dels.is_empty() {
            self.write(|ops, table| ops.delete(table, &dels))?;
        }
        if self.kill_states {
            for host in new_hosts {
                match self.ops.kill_states(host) {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::info!(address = %host, states = n, "killed the banned host's PF states")
                    }
                    Err(e) => {
                        tracing::warn!(address = %host, error = %e, "cannot kill the banned host's PF states")
                    }
                }
            }
        }
        Ok(())
    }

    /// One whole-table replacement (DIOCRSETADDRS): the table holds exactly the
    /// active bans afterwards; unchanged entries are never removed in between.
    fn reconcile(
        &mut self,
        active: &[Ban],
        now: SystemTime,
    ) -> Result<ReconcileReport, BackendError> {
        self.held.clear();
        for ban in active.iter().filter(|b| !expired(b.until, now)) {
            let e = self.held.entry(ban.target.trunc()).or_insert(ban.until);
            *e = later(*e, ban.until);
        }
        let replaced = self.rewrite()?;
        let added = usize::try_from(replaced.added).unwrap_or(usize::MAX);
        Ok(ReconcileReport {
            added,
            removed: usize::try_from(replaced.deleted).unwrap_or(usize::MAX),
            updated: usize::try_from(replaced.changed).unwrap_or(usize::MAX),
            kept: self.held.len().saturating_sub(added),
        })
    }

    /// Deletes the entries whose deadline passed (the engine's unban normally
    /// did already; PF itself never would).
    fn gc(&mut self, now: SystemTime) -> Result<usize, BackendError> {
        let mut due: Vec<IpNet> = self
            .held
            .iter()
            .filter(|(_, u)| expired(**u, now))
            .map(|(n, _)| *n)
            .collect();
        if due.is_empty() {
            return Ok(0);
        }
        due.sort_unstable();
        for n in &due {
            self.held.remove(n);
        }
        self.write(|ops, table| ops.delete(table, &due))?;
        Ok(due.len())
    }

    /// Through the table client: the sandboxed agent cannot open `/dev/pf`.
    fn flush_running(&mut self) -> Result<Option<usize>, BackendError> {
        self.held.clear();
        let n = self.ops.clear(&self.table)?;
        Ok(Some(usize::try_from(n).unwrap_or(usize::MAX)))
    }

    /// PF counts per table, not per entry; nothing to report per ban.
    fn counters(&self) -> Result<Vec<(IpNet, DropCounts)>, BackendError> {
        Ok(Vec::new())
    }
}

#[cfg(target_os = "openbsd")]
mod openbsd;

#[cfg(test)]
mod tests;
