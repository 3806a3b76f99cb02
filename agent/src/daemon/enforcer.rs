//! The commit thread: the only owner of the state database and the backends.
//!
//! The engine task hands it decision batches (with the source positions read up to
//! them) and goes on matching; this thread records each batch in the store, then
//! applies it to the backends its jails map to, then starts the notification
//! hooks. So the engine never waits for an fsync, a ban is on disk before it is in
//! the kernel, and hooks never delay either.
//!
//! Batches that queue up while one is being synced are merged into one transaction
//! (group commit): under a flood the sync cost is paid per round, not per batch.
//! Everything else that touches the store or the backends comes through the same
//! queue, in order: a `ban` command's reply is sent after its batch is enforced,
//! and `status` sees every batch sent before it.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{mpsc, oneshot};

use super::reload::backend_changes;
use super::{DaemonError, flush_kernel_state, open_backend};
use crate::backend::kind::Step;
use crate::backend::{Backend, BackendKind, BackendsConfig, ReconcileReport};
use crate::config::Config;
use crate::control::protocol::{
    BackendStatus, Changes, DropEntry, FlushReport, ReconcileStatus, Reply, Stats, Status,
};
use crate::engine::{Ban, Decision, ScheduleChange};
use crate::hooks::Hooks;
use crate::metrics::Metrics;
use crate::source::{Positions, SourcePosition};
use crate::store::{Batch, OffenceCount, Store};

/// Most queued commits merged into one transaction.
const MAX_GROUP: usize = 256;

/// How often old history is purged.
const PURGE_EVERY: Duration = Duration::from_secs(86_400);

/// One batch to record and enforce.
#[derive(Debug)]
pub(super) struct Commit {
    /// Decisions, in order.
    pub decisions: Vec<Decision>,
    /// Source positions read up to these decisions.
    pub positions: Vec<SourcePosition>,
    /// Changes to the schedule of delayed bans, in order.
    pub scheduled: Vec<ScheduleChange>,
    /// When the decisions were taken.
    pub now: SystemTime,
    /// Told once the batch is recorded and enforced.
    pub done: Option<oneshot::Sender<()>>,
}

/// Work for the commit thread.
#[derive(Debug)]
pub(super) enum Job {
    /// Record and enforce a batch.
    Commit(Commit),
    /// Complete `status` with the backends, and answer.
    Status(Box<Status>, oneshot::Sender<Reply>),
    /// Complete `stats` with the backends, store and hooks, and answer.
    Stats(Box<Stats>, oneshot::Sender<Reply>),
    /// Switch to a new config's backends, routes and hooks; `active` are the bans
    /// a newly opened backend is reconciled with (empty when no backend is added
    /// or changed).
    Reconfigure {
        config: Box<Config>,
        active: Vec<Ban>,
        reply: oneshot::Sender<Result<Changes, String>>,
    },
    /// Every saved source position.
    Saved(oneshot::Sender<Positions>),
    /// Add aggregated offence counts to the store (one transaction).
    Offences(Vec<OffenceCount>),
    /// Periodic upkeep: backend gc, history purge.
    Maintain(SystemTime),
    /// Remove every kernel object and stop enforcing.
    Flush(oneshot::Sender<Reply>),
    /// Read the backends' drop counters into the metrics (a scrape).
    RefreshDrops(oneshot::Sender<()>),
}

/// A backend with what `status` reports about it.
pub(super) struct Slot {
    kind: BackendKind,
    backend: Box<dyn Backend>,
    healthy: bool,
    error: Option<String>,
    bans_applied: u64,
    unbans_applied: u64,
    failures: u64,
    reconcile: Option<ReconcileStatus>,
    metrics: Metrics,
}

impl Slot {
    /// Reconciles `backend` with the active bans and wraps it; the time taken is
    /// kept for `status` and logged. The wall clock is read right before the
    /// backend reads its own clock: a backend may turn deadlines into the
    /// kernel's monotonic clock from the pair. Only this backend's bans are
    /// gathered, and only for as long as the reconcile runs.
    pub(super) fn reconciled(
        kind: BackendKind,
        mut backend: Box<dyn Backend>,
        active: impl Iterator<Item = Ban>,
        routes: &Routes,
        metrics: &Metrics,
    ) -> Result<Slot, DaemonError> {
        let name = kind.name();
        let mine: Vec<Ban> = active.filter(|b| routes.enforces(&b.jail, kind)).collect();
        let started = Instant::now();
        let report: ReconcileReport =
            backend
                .reconcile(&mine, SystemTime::now())
                .map_err(|source| DaemonError::Backend {
                    name,
                    source: Box::new(source),
                })?;
        let took = started.elapsed();
        metrics.reconciled(name, took);
        tracing::info!(
            backend = name,
            bans = mine.len(),
            added = report.added,
            removed = report.removed,
            updated = report.updated,
            kept = report.kept,
            took_ms = took.as_secs_f64() * 1000.0,
            "backend reconciled"
        );
        Ok(Slot {
            kind,
            backend,
            healthy: true,
            error: None,
            bans_applied: 0,
            unbans_applied: 0,
            failures: 0,
            reconcile: Some(ReconcileStatus {
                added: report.added,
                removed: report.removed,
                updated: report.updated,
                kept: report.kept,
                took_us: u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
            }),
            metrics: metrics.clone(),
        })
    }

    fn status(&self) -> BackendStatus {
        BackendStatus {
            name: self.kind.name().to_owned(),
            healthy: self.healthy,
            error: self.error.clone(),
            bans_applied: self.bans_applied,
            unbans_applied: self.unbans_applied,
            failures: self.failures,
            reconcile: self.reconcile,
        }
    }

    fn failed(&mut self, what: &'static str, e: &dyn std::error::Error) {
        self.metrics.backend_error(self.kind.name(), what);
        self.healthy = false;
        self.failures += 1;
        self.error = Some(format!("{what}: {}", chain(e)));
    }
}

/// Which backends enforce which jail's bans.
#[derive(Debug, Clone, Default)]
pub(super) struct Routes(HashMap<String, Vec<BackendKind>>);

impl Routes {
    /// From the jails' `backends` lists (validated: every name is a backend of
    /// this build).
    pub(super) fn from_config(cfg: &Config) -> Routes {
        Routes(
            cfg.jails
                .iter()
                .map(|(name, j)| {
                    let kinds = j
                        .backends
                        .iter()
                        .filter_map(|b| BackendKind::from_name(b))
                        .collect();
                    (name.clone(), kinds)
                })
                .collect(),
        )
    }

    /// Whether `backend` enforces bans of `jail`: an empty list, a manual ban and
    /// a jail no longer configured mean every backend.
    pub(super) fn enforces(&self, jail: &str, backend: BackendKind) -> bool {
        self.0
            .get(jail)
            .is_none_or(|list| list.is_empty() || list.contains(&backend))
    }
}

/// The commit thread's state.
pub(super) struct Enforcer {
    pub(super) store: Store,
    pub(super) slots: Vec<Slot>,
    pub(super) backends_cfg: BackendsConfig,
    pub(super) routes: Routes,
    pub(super) hooks: Hooks,
    pub(super) retention: Duration,
    /// `agent.offence_rows`: the bound of the offence counts table.
    pub(super) offence_rows: usize,
    pub(super) next_purge: SystemTime,
    pub(super) commits: u64,
    pub(super) store_errors: u64,
    pub(super) metrics: Metrics,
}

impl Enforcer {
    /// Runs until every sender of `rx` is gone; every job queued before that is done.
    pub(super) fn run(mut self, mut rx: mpsc::Receiver<Job>) {
        let mut next = None;
        loop {
            let job = match next.take() {
                Some(j) => j,
                None => match rx.blocking_recv() {
                    Some(j) => j,
                    None => break,
                },
            };
            match job {
                Job::Commit(first) => {
                    let mut group = vec![first];
                    while group.len() < MAX_GROUP {
                        match rx.try_recv() {
                            Ok(Job::Commit(c)) => group.push(c),
                            Ok(other) => {
                                next = Some(other);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    self.commit(group);
                }
                other => self.handle(other),
            }
        }
        tracing::debug!("commit thread stopped");
    }

    fn commit(&mut self, group: Vec<Commit>) {
        let mut decisions = Vec::new();
        let mut positions = Positions::default();
        let mut scheduled = Vec::new();
        let mut now = SystemTime::UNIX_EPOCH;
        let mut done = Vec::new();
        for c in group {
            decisions.extend(c.decisions);
            positions.extend(c.positions);
            scheduled.extend(c.scheduled);
            now = now.max(c.now);
            done.extend(c.done);
        }
        let positions = positions.take();
        // Store first: a ban is never enforced without being recorded (unless the
        // store itself fails, which is logged and does not stop enforcing).
        let started = Instant::now();
        let stored = self.store.write(
            Batch::at(now)
                .decisions(&decisions)
                .positions(&positions)
                .scheduled(&scheduled),
        );
        self.metrics.store_commit(started.elapsed(), stored.is_ok());
        match stored {
            Ok(()) => self.commits += 1,
            Err(e) => {
                self.store_errors += 1;
                tracing::error!(error = %chain(&e), decisions = decisions.len(),
                    "cannot record decisions; enforcing them anyway");
            }
        }
        if !decisions.is_empty() {
            for d in &decisions {
                log_decision(d);
            }
            // Deadlines are converted to the kernel's clock against the time now,
            // not when the batch was decided.
            self.apply(&decisions, SystemTime::now());
            self.metrics.decided(&decisions);
            self.hooks.notify(&decisions);
        }
        for tx in done {
            let _ = tx.send(());
        }
    }

    fn apply(&mut self, decisions: &[Decision], now: SystemTime) {
        for slot in &mut self.slots {
            let name = slot.kind.name();
            let mine: Vec<Decision> = decisions
                .iter()
                .filter(|d| self.routes.enforces(&decision_ban(d).jail, slot.kind))
                .cloned()
                .collect();
            if mine.is_empty() {
                continue;
            }
            match slot.backend.apply(&mine, now) {
                Ok(()) => {
                    slot.healthy = true;
                    slot.error = None;
                }
                Err(e) => {
                    tracing::error!(backend = name, decisions = mine.len(), error = %chain(&e),
                        "backend failed to apply decisions");
                    slot.failed("apply", &e);
                }
            }
            let bans = mine
                .iter()
                .filter(|d| matches!(d, Decision::Ban(_)))
                .count() as u64;
            let unbans = mine.len() as u64 - bans;
            slot.bans_applied += bans;
            slot.unbans_applied += unbans;
            self.metrics.backend_applied(name, bans, unbans);
        }
    }

    fn handle(&mut self, job: Job) {
        match job {
            Job::Commit(c) => self.commit(vec![c]),
            Job::Offences(counts) => {
                if let Err(e) = self.store.add_offences(&counts, self.offence_rows.max(1)) {
                    self.store_errors += 1;
                    tracing::warn!(error = %chain(&e), rows = counts.len(),
                        "cannot record offence counts");
                }
            }
            Job::Status(mut status, reply) => {
                status.backends = self.slots.iter().map(Slot::status).collect();
                let _ = reply.send(super::to_reply(&*status));
            }
            Job::Stats(mut stats, reply) => {
                stats.backends = self.slots.iter().map(Slot::status).collect();
                stats.hooks = self.hooks.stats();
                stats.store_commits = self.commits;
                stats.store_errors = self.store_errors;
                stats.history_rows = self.store.history_len().unwrap_or_else(|e| {
                    tracing::warn!(error = %chain(&e), "cannot count history rows");
                    0
                });
                stats.drops = self.drops();
                let _ = reply.send(super::to_reply(&*stats));
            }
            Job::Reconfigure {
                config,
                active,
                reply,
            } => {
                let _ = reply.send(self.reconfigure(&config, &active));
            }
            Job::Saved(reply) => {
                let positions = self.store.positions().unwrap_or_else(|e| {
                    tracing::warn!(error = %chain(&e), "cannot read saved positions");
                    Positions::default()
                });
                let _ = reply.send(positions);
            }
            Job::Maintain(now) => self.maintain(now),
            Job::RefreshDrops(done) => {
                let drops = self.drops();
                self.metrics.set_drops(&drops);
                let _ = done.send(());
            }
            Job::Flush(reply) => {
                let _ = reply.send(match self.flush() {
                    Ok(report) => super::to_reply(&report),
                    Err(e) => Reply::error(format!("flush failed: {}", chain(&e))),
                });
            }
        }
    }

    fn drops(&mut self) -> Vec<DropEntry> {
        let mut out = Vec::new();
        for slot in &mut self.slots {
            match slot.backend.counters() {
                Ok(list) => out.extend(list.into_iter().map(|(net, c)| DropEntry {
                    address: crate::addr::display_target(&net),
                    backend: slot.kind.name().to_owned(),
                    packets: c.packets,
                    bytes: c.bytes,
                })),
                Err(e) => slot.failed("read counters", &e),
            }
            // Backends that count only in total (one counter on a rule).
            match slot.backend.totals() {
                Ok(Some(c)) => out.push(DropEntry {
                    address: DropEntry::ALL_BANS.to_owned(),
                    backend: slot.kind.name().to_owned(),
                    packets: c.packets,
                    bytes: c.bytes,
                }),
                Ok(None) => {}
                Err(e) => slot.failed("read counters", &e),
            }
        }
        out.sort_by(|a, b| b.packets.cmp(&a.packets).then(a.address.cmp(&b.address)));
        out
    }

    fn maintain(&mut self, now: SystemTime) {
        for slot in &mut self.slots {
            match slot.backend.gc(now) {
                Ok(0) => {}
                Ok(n) => tracing::debug!(
                    backend = slot.kind.name(),
                    removed = n,
                    "expired entries collected"
                ),
                Err(e) => {
                    tracing::warn!(backend = slot.kind.name(), error = %chain(&e), "gc failed");
                    slot.failed("gc", &e);
                }
            }
        }
        if now >= self.next_purge {
            self.purge(now);
        }
    }

    /// Deletes history older than the retention and schedules the next purge.
    pub(super) fn purge(&mut self, now: SystemTime) {
        let horizon = now
            .checked_sub(self.retention)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        match self.store.purge_history(horizon) {
            Ok(0) => {}
            Ok(n) => tracing::info!(rows = n, "purged ban history past its retention"),
            Err(e) => tracing::warn!(error = %chain(&e), "cannot purge ban history"),
        }
        match self.store.purge_offences(horizon) {
            Ok(0) => {}
            Ok(n) => tracing::info!(rows = n, "purged offence counts past the retention"),
            Err(e) => tracing::warn!(error = %chain(&e), "cannot purge offence counts"),
        }
        self.next_purge = now + PURGE_EVERY;
    }

    /// Opens new and changed backends before touching the running ones, so a
    /// backend that fails to open leaves everything as it was. Each backend says
    /// what its change takes ([`Step`]); one whose old and new kernel state cannot
    /// coexist is removed first (a short gap, logged) and put back if the new one
    /// fails to open.
    fn reconfigure(&mut self, cfg: &Config, active: &[Ban]) -> Result<Changes, String> {
        let steps = self.backends_cfg.steps(&cfg.backends);
        let changes = backend_changes(&self.backends_cfg, &cfg.backends);
        let routes = Routes::from_config(cfg);
        let hooks = self
            .hooks
            .with_config(cfg)
            .map_err(|e| format!("notify: {e}"))?;
        if let Some((kind, _)) = steps.iter().find(|(_, s)| *s == Step::Restart) {
            return Err(format!(
                "backend {kind}: this change takes effect only at start; restart the agent"
            ));
        }
        let mut opened = Vec::new();
        for &(kind, step) in &steps {
            if matches!(step, Step::Keep | Step::Remove) {
                continue;
            }
            let replaced = step == Step::Replace;
            if replaced {
                tracing::warn!(backend = %kind, "backend replaced: removing its old kernel state first");
                self.slots.retain(|s| s.kind != kind);
                if let Some(Err(e)) = self.backends_cfg.flush(kind) {
                    tracing::warn!(backend = %kind, error = %chain(&e), "cannot remove the old kernel state");
                }
            }
            let opened_one = open_backend(&cfg.backends, kind).and_then(|b| {
                b.map(|b| Slot::reconciled(kind, b, active.iter().cloned(), &routes, &self.metrics))
                    .transpose()
            });
            match opened_one {
                Ok(Some(slot)) => opened.push(slot),
                Ok(None) => {}
                Err(e) => {
                    if replaced {
                        self.reopen_old(kind, active);
                    }
                    return Err(chain(&e));
                }
            }
        }
        // Past this point nothing fails: swap.
        let goes = |kind: BackendKind| {
            steps.iter().any(|&(k, step)| {
                k == kind && matches!(step, Step::Remove | Step::Reopen | Step::Replace)
            })
        };
        // A removed backend that reaches its kernel state only while running
        // empties it before it goes.
        let mut emptied = Vec::new();
        for slot in self.slots.iter_mut().filter(|s| goes(s.kind)) {
            let removed = steps
                .iter()
                .any(|&(k, step)| k == slot.kind && step == Step::Remove);
            if removed && let Ok(Some(_)) = slot.backend.flush_running() {
                emptied.push(slot.kind);
            }
        }
        self.slots.retain(|s| !goes(s.kind));
        for &(kind, step) in &steps {
            match step {
                Step::Remove if emptied.contains(&kind) => {
                    tracing::info!(backend = %kind, "backend removed from the config; its kernel state is gone")
                }
                Step::Remove => match self.backends_cfg.flush(kind).transpose() {
                    Ok(_) => {
                        tracing::info!(backend = %kind, "backend removed from the config; its kernel state is gone")
                    }
                    Err(e) => {
                        tracing::warn!(backend = %kind, error = %chain(&e), "cannot remove the kernel state of a removed backend")
                    }
                },
                Step::Reopen => self.backends_cfg.release(&cfg.backends, kind),
                Step::Add | Step::Keep | Step::Replace | Step::Restart => {}
            }
        }
        self.slots.extend(opened);
        // Keep the config's order: it is the order decisions are applied in.
        self.slots.sort_by_key(|s| s.kind);
        self.backends_cfg = cfg.backends.clone();
        self.routes = routes;
        self.hooks = hooks;
        self.retention = cfg.agent.history_retention.get();
        self.offence_rows = cfg.agent.offence_rows;
        Ok(changes)
    }

    /// Puts back a backend of the running config after a failed replacement.
    fn reopen_old(&mut self, kind: BackendKind, active: &[Ban]) {
        match open_backend(&self.backends_cfg, kind).and_then(|b| {
            b.map(|b| {
                Slot::reconciled(kind, b, active.iter().cloned(), &self.routes, &self.metrics)
            })
            .transpose()
        }) {
            Ok(Some(slot)) => self.slots.push(slot),
            Ok(None) => {}
            Err(e) => tracing::error!(backend = %kind, error = %chain(&e),
                "cannot reopen the backend of the running config; its bans are not enforced"),
        }
    }

    /// Backends that reach their kernel state only while running empty it
    /// themselves; then every backend is closed (open descriptors could keep kernel
    /// objects alive) and the rest are flushed from their settings.
    fn flush(&mut self) -> Result<FlushReport, DaemonError> {
        let mut done = Vec::new();
        for slot in &mut self.slots {
            if let Some(n) = slot
                .backend
                .flush_running()
                .map_err(|e| super::backend_error(slot.kind, e))?
            {
                done.push((slot.kind, n));
            }
        }
        self.slots.clear();
        let mut rest = self.backends_cfg.clone();
        for (kind, _) in &done {
            rest.remove(*kind);
        }
        let mut backends = flush_kernel_state(&rest)?;
        backends.extend(done.into_iter().map(|(k, n)| (k.name().to_owned(), n)));
        backends.sort_by_key(|(name, _)| BackendKind::from_name(name));
        self.backends_cfg = BackendsConfig::default();
        tracing::warn!(
            ?backends,
            "flushed every kernel object; bans are no longer enforced"
        );
        Ok(FlushReport {
            backends,
            stopping: true,
        })
    }
}

fn decision_ban(d: &Decision) -> &Ban {
    match d {
        Decision::Ban(b) | Decision::Unban(b) => b,
    }
}

/// Logs a ban or unban; the built-in `recidive` filter reads these lines.
pub(crate) fn log_decision(d: &Decision) {
    match d {
        Decision::Ban(b) => {
            let until = b
                .until
                .map_or_else(|| "permanent".to_owned(), crate::control::protocol::rfc3339);
            tracing::info!(
                address = %crate::addr::display_target(&b.target),
                jail = %b.jail,
                until = %until,
                origin = match b.origin {
                    crate::engine::Origin::Jail => "jail",
                    crate::engine::Origin::Manual => "manual",
                    crate::engine::Origin::Subnet => "subnet",
                },
                filter = b.reason.as_ref().map_or("", |r| &*r.filter),
                forced = b.forced,
                // Attacker text: each value one escaped token (no spaces, no
                // control characters), readable back by `report --log`.
                captures = %b.reason.as_ref().map(|r| r.captures.to_fields()).unwrap_or_default(),
                "ban"
            );
        }
        Decision::Unban(b) => tracing::info!(
            address = %crate::addr::display_target(&b.target),
            jail = %b.jail,
            "unban"
        ),
    }
}

/// An error and its sources on one line.
pub(super) fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let msg = c.to_string();
        if !s.contains(&msg) {
            s.push_str(": ");
            s.push_str(&msg);
        }
        cur = c.source();
    }
    s
}
