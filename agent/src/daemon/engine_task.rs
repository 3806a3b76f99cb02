//! The engine task: the single owner of the engine and of the running sources.
//!
//! It takes offences (draining whatever is queued into one batch), control
//! requests, reload and stop triggers, and a timer for the next expiry. Each batch
//! of decisions goes to the commit thread ([`super::enforcer`]) together with the
//! source positions read up to it; the engine task does not wait for the disk or
//! the kernel, except where a control command's reply must say the ban is in force
//! (then a small task waits for that batch and answers, and the engine goes on).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use ipnet::IpNet;
use tokio::sync::{mpsc, oneshot};

use super::enforcer::{Commit, Job};
use super::reload::ConfigDiff;
use super::sources::{SourceSet, stop_draining};
use super::{Triggers, prepare, to_reply};
use crate::config::Config;
use crate::control::protocol::{BanEntry, Command, JailStatus, ReloadReport, Reply, Stats, Status};
use crate::control::server::ControlRequest;
use crate::engine::{Ban, Decision, Engine, MANUAL_JAIL, ManualBan};
use crate::fleet::{Fleet, Incoming};
use crate::hooks::HookStats;
use crate::metrics::{Metrics, OffenceCounters};
use crate::source::{Positions, SourceEvent};
use crate::store::offences::Tally;

/// Most offences folded into one decision batch.
const MAX_BATCH: usize = 4096;
/// How often backends drop expired entries and old history is purged.
const GC_EVERY: Duration = Duration::from_secs(60);
/// How often source positions are committed when no decision carries them. Sources
/// report a position after every read that found offences; alone, positions wait
/// for this tick (a disk sync per read would be too many under a flood), with
/// decisions they go at once, in the same transaction.
const POSITIONS_EVERY: Duration = Duration::from_secs(1);
/// How often offence counts go to the store (sooner when the tally is full): each
/// hand-over writes one row per distinct key, so the longer the interval, the
/// more offences one row stands for under a sustained attack.
const OFFENCES_EVERY: Duration = Duration::from_secs(15);

/// See the module docs.
pub(super) struct EngineTask {
    pub(super) engine: Engine,
    pub(super) config: Config,
    pub(super) config_path: PathBuf,
    pub(super) sources: SourceSet,
    /// For sources started by a reload.
    pub(super) src_tx: mpsc::Sender<SourceEvent>,
    pub(super) enforcer: mpsc::Sender<Job>,
    pub(super) started: Instant,
    /// Decisions not yet handed to the commit thread.
    pub(super) pending: Vec<Decision>,
    /// Positions not yet handed to the commit thread.
    pub(super) positions: Positions,
    /// The latest position seen per key (a restarted source resumes there).
    pub(super) last_positions: Positions,
    pub(super) bans_total: u64,
    pub(super) bans_lifted: u64,
    /// Set by `flush`: the task ends after answering.
    pub(super) stop: bool,
    /// What the agent kept at start; a reload needing more is refused.
    pub(super) sandbox: crate::sandbox::Sandbox,
    pub(super) metrics: Metrics,
    /// Offences per filter and jail, and the lag to the decision (rebuilt on reload).
    pub(super) offence_counters: OffenceCounters,
    /// The fleet link, when `[fleet]` is configured.
    pub(super) fleet: Option<Fleet>,
    /// Offence counts not yet handed to the commit thread; `None` when
    /// `agent.offence_rows` is 0.
    pub(super) tally: Option<Tally>,
    /// The tally reached its cap: hand it over after this batch.
    pub(super) offences_full: bool,
}

/// The fleet reader's next batch; never ready without a fleet.
async fn fleet_next(fleet: &mut Option<Fleet>) -> Option<Incoming> {
    match fleet {
        Some(f) => f.next().await,
        None => std::future::pending().await,
    }
}

impl EngineTask {
    /// Runs until the stop trigger fires (or `flush`), then stops the sources
    /// without losing what they read and hands the last batch to the commit thread.
    /// Returns whether it stopped for `flush` (the kernel state is then gone).
    pub(super) async fn run(
        mut self,
        mut src_rx: mpsc::Receiver<SourceEvent>,
        mut ctl_rx: mpsc::Receiver<ControlRequest>,
        mut own_rx: mpsc::Receiver<Vec<std::net::IpAddr>>,
        mut answer_rx: mpsc::Receiver<super::names::Answer>,
        mut triggers: Triggers,
    ) -> bool {
        let mut gc = tokio::time::interval(GC_EVERY);
        let mut flush = tokio::time::interval(POSITIONS_EVERY);
        let mut offences = tokio::time::interval(OFFENCES_EVERY);
        gc.tick().await;
        flush.tick().await;
        offences.tick().await;
        self.count_active();
        let mut ctl_open = true;
        let mut own_open = true;
        let mut reload_open = true;
        let mut fleet_open = self.fleet.is_some();
        let mut answers_open = true;
        while !self.stop && !*triggers.shutdown.borrow() {
            let expiry = self
                .engine
                .next_expiry()
                .map(|t| {
                    t.duration_since(SystemTime::now())
                        .unwrap_or(Duration::ZERO)
                })
                .unwrap_or(Duration::from_secs(3600));
            tokio::select! {
                ev = src_rx.recv() => {
                    // This task holds a sender, so the channel never closes.
                    if let Some(ev) = ev {
                        self.take(ev);
                        let mut n = 1;
                        while n < MAX_BATCH {
                            match src_rx.try_recv() {
                                Ok(ev) => self.take(ev),
                                Err(_) => break,
                            }
                            n += 1;
                        }
                        self.commit_decisions().await;
                        if self.offences_full {
                            self.send_offences().await;
                        }
                    }
                }
                req = ctl_rx.recv(), if ctl_open => match req {
                    Some(req) => self.control(req, &mut src_rx).await,
                    None => ctl_open = false,
                },
                batch = fleet_next(&mut self.fleet), if fleet_open => match batch {
                    // Bans and unbans from other hosts, with the stream ID they
                    // reach, committed together.
                    Some(batch) => {
                        self.fleet_incoming(batch);
                        self.commit(None).await;
                    }
                    None => fleet_open = false,
                },
                answer = answer_rx.recv(), if answers_open => match answer {
                    Some(answer) => {
                        self.answer(answer);
                        while let Ok(more) = answer_rx.try_recv() {
                            self.answer(more);
                        }
                        self.commit(None).await;
                    }
                    None => answers_open = false,
                },
                addrs = own_rx.recv(), if own_open => match addrs {
                    // The host gained or lost an address: bans that now cover one
                    // of its own addresses are lifted.
                    Some(addrs) => {
                        self.engine.set_own_addresses(addrs, &mut self.pending);
                        self.commit(None).await;
                    }
                    None => own_open = false,
                },
                () = tokio::time::sleep(expiry) => {
                    self.expire(SystemTime::now());
                    self.commit(None).await;
                }
                _ = gc.tick() => {
                    // Also lets the engine forget aged-out offence windows when no
                    // ban deadline wakes it.
                    let now = SystemTime::now();
                    self.expire(now);
                    self.commit(None).await;
                    self.send(Job::Maintain(now)).await;
                }
                _ = flush.tick() => {
                    if !self.positions.is_empty() {
                        self.commit(None).await;
                    }
                }
                _ = offences.tick() => self.send_offences().await,
                r = triggers.reload.recv(), if reload_open => match r {
                    Some(()) => match self.notified_reload(&mut src_rx).await {
                        Ok(report) => tracing::info!(?report, "SIGHUP: config reloaded"),
                        Err(e) => tracing::error!("SIGHUP: {e}"),
                    },
                    None => reload_open = false,
                },
                changed = triggers.shutdown.changed() => {
                    if changed.is_err() {
                        break;
                    }
                }
            }
        }
        let handles = self.sources.take_all();
        let mut drained = Vec::new();
        stop_draining(handles, &mut src_rx, |ev| drained.push(ev)).await;
        for ev in drained {
            self.take(ev);
        }
        self.commit(None).await;
        self.send_offences().await;
        if let Some(fleet) = self.fleet.take() {
            fleet.stop().await;
        }
        self.stop
    }

    /// Feeds a fleet reader batch to the engine; the stream ID it reaches is
    /// saved with the decisions it causes.
    fn fleet_incoming(&mut self, batch: Incoming) {
        let Some(fleet) = self.fleet.as_mut() else {
            return;
        };
        let reached = fleet.apply(
            &mut self.engine,
            batch,
            SystemTime::now(),
            &mut self.pending,
        );
        self.positions.insert(reached);
    }

    fn take(&mut self, ev: SourceEvent) {
        match ev {
            SourceEvent::Offences(batch) => {
                let now = SystemTime::now();
                for o in batch {
                    self.engine.offence_with(
                        &o.filter,
                        o.addr,
                        o.at,
                        &o.captures,
                        &mut self.pending,
                    );
                    self.tally_offence(o.addr, &o.filter, &o.captures, o.at, now);
                }
            }
            SourceEvent::Position(p) => {
                self.last_positions.insert(p.clone());
                self.positions.insert(p);
            }
        }
    }

    /// Ends the bans past their deadline, counting them.
    fn expire(&mut self, now: SystemTime) {
        let before = self.pending.len();
        self.engine.expire(now, &mut self.pending);
        self.metrics
            .expired(self.pending[before..].iter().filter_map(|d| match d {
                Decision::Unban(b) => Some(&*b.jail),
                Decision::Ban(_) => None,
            }));
    }

    /// Brings the active-ban gauges up to date (after decisions).
    fn count_active(&self) {
        let all: Vec<&'static str> = self
            .config
            .backends
            .kinds()
            .into_iter()
            .map(|k| k.name())
            .collect();
        let engine = &self.engine;
        self.metrics.set_active(
            engine.bans_per_jail(),
            self.config.jails.keys().map(String::as_str),
            |jail| {
                let listed = engine.jail_backends(jail);
                if listed.is_empty() {
                    all.clone()
                } else {
                    all.iter()
                        .copied()
                        .filter(|b| listed.iter().any(|l| l == b))
                        .collect()
                }
            },
            &all,
        );
    }

    fn name_stats(&self) -> crate::control::protocol::NameStats {
        use std::sync::atomic::Ordering::Relaxed;
        let es = self.engine.stats();
        let mut n = crate::control::protocol::NameStats {
            offences: es.name_offences,
            refused: es.names_refused,
            ..Default::default()
        };
        if let Some(q) = &self.sources.names {
            let c = &q.counters;
            n.matched = c.names.load(Relaxed);
            n.ignored = c.ignored.load(Relaxed);
            n.dropped = c.dropped.load(Relaxed);
            n.unresolved = c.unresolved.load(Relaxed);
            n.genuine = c.genuine.load(Relaxed);
        }
        n
    }

    /// What the name task resolved: offences by addresses only.
    fn answer(&mut self, answer: super::names::Answer) {
        use super::names::Answer;
        let now = SystemTime::now();
        match answer {
            Answer::Name {
                filter,
                name,
                addrs,
                at,
                captures,
            } => {
                if let Some(refused) =
                    self.engine
                        .offence_by_name(&filter, &addrs, at, &captures, &mut self.pending)
                {
                    tracing::warn!(
                        filter = %filter,
                        name = %name,
                        address = %refused,
                        "a host name in a log line resolves to an allowlisted or own address: nothing banned"
                    );
                    return;
                }
                // As the engine does: each address the name resolved to is
                // one offence, with the line's captures.
                for addr in addrs.iter() {
                    self.tally_offence(*addr, &filter, &captures, at, now);
                }
            }
            Answer::Offence {
                filter,
                addr,
                at,
                captures,
            } => {
                self.engine
                    .offence_with(&filter, addr, at, &captures, &mut self.pending);
                self.tally_offence(addr, &filter, &captures, at, now);
            }
        }
    }

    /// Counts one offence the engine was given: the store's tally and the
    /// metrics.
    fn tally_offence(
        &mut self,
        addr: std::net::IpAddr,
        filter: &Arc<str>,
        captures: &crate::filter::Captures,
        at: SystemTime,
        now: SystemTime,
    ) {
        if let Some(t) = &mut self.tally
            && t.add(addr, filter, captures.user(), at)
        {
            self.offences_full = true;
        }
        self.offence_counters.offence(filter, at, now);
    }

    /// Hands the offence counts gathered so far to the commit thread (one
    /// transaction for all of them).
    async fn send_offences(&mut self) {
        self.offences_full = false;
        let Some(t) = self.tally.as_mut().filter(|t| !t.is_empty()) else {
            return;
        };
        let engine = &self.engine;
        let counts = t.take(|f| engine.jails_of(f));
        self.send(Job::Offences(counts)).await;
    }

    async fn send(&self, job: Job) {
        if self.enforcer.send(job).await.is_err() {
            tracing::error!("the commit thread is gone; decisions are not enforced");
        }
    }

    /// [`EngineTask::commit`] when there are decisions or schedule changes (the
    /// pending positions go with them); positions alone wait for the flush tick.
    async fn commit_decisions(&mut self) {
        if self.pending.is_empty() && !self.engine.has_schedule_changes() {
            return;
        }
        self.commit(None).await;
    }

    /// Hands pending decisions and positions to the commit thread; `done` is told
    /// once they are recorded and enforced.
    async fn commit(&mut self, done: Option<oneshot::Sender<()>>) {
        let scheduled = self.engine.take_schedule_changes();
        if self.pending.is_empty()
            && self.positions.is_empty()
            && scheduled.is_empty()
            && done.is_none()
        {
            return;
        }
        self.bans_total += self
            .pending
            .iter()
            .filter(|d| matches!(d, Decision::Ban(_)))
            .count() as u64;
        if !self.pending.is_empty() {
            self.count_active();
        }
        if let Some(fleet) = &self.fleet {
            fleet.publish_bans(&self.pending);
        }
        let commit = Commit {
            decisions: std::mem::take(&mut self.pending),
            positions: self.positions.take(),
            scheduled,
            now: SystemTime::now(),
            done,
        };
        self.send(Job::Commit(commit)).await;
    }

    /// Commits what is pending and answers `reply` with `answer` once it is
    /// enforced, without holding up the engine.
    async fn commit_then_reply(&mut self, reply: oneshot::Sender<Reply>, answer: Reply) {
        let (done_tx, done_rx) = oneshot::channel();
        self.commit(Some(done_tx)).await;
        tokio::spawn(async move {
            let answer = match done_rx.await {
                Ok(()) => answer,
                Err(_) => Reply::error("the agent stopped before the change was enforced"),
            };
            let _ = reply.send(answer);
        });
    }

    async fn control(&mut self, req: ControlRequest, src_rx: &mut mpsc::Receiver<SourceEvent>) {
        let ControlRequest { cmd, reply } = req;
        let now = SystemTime::now();
        match cmd {
            Command::Status => {
                let status = Status {
                    version: env!("CARGO_PKG_VERSION").to_owned(),
                    uptime_secs: self.started.elapsed().as_secs(),
                    config: self.config_path.display().to_string(),
                    bans_active: self.engine.ban_count(),
                    sources: self.sources.statuses(),
                    jails: self.jail_statuses(),
                    backends: Vec::new(),
                    fleet: self.fleet.as_ref().map(|f| f.status(&self.engine)),
                };
                self.send(Job::Status(Box::new(status), reply)).await;
            }
            Command::Stats => {
                let es = self.engine.stats();
                let sources = self.sources.statuses();
                let stats = Stats {
                    uptime_secs: self.started.elapsed().as_secs(),
                    lines: sources.iter().map(|s| s.lines).sum(),
                    offences: es.offences,
                    offences_allowlisted: es.allowlisted,
                    offences_special: es.special_addresses,
                    offences_already_banned: es.already_banned,
                    bans_active: self.engine.ban_count(),
                    bans_total: self.bans_total
                        + self
                            .pending
                            .iter()
                            .filter(|d| matches!(d, Decision::Ban(_)))
                            .count() as u64,
                    bans_expired: es.expired,
                    bans_lifted: self.bans_lifted,
                    tracked: es.tracked,
                    evicted: es.evicted,
                    history_rows: 0,
                    store_commits: 0,
                    store_errors: 0,
                    sources,
                    backends: Vec::new(),
                    hooks: HookStats::default(),
                    drops: Vec::new(),
                    fleet: self.fleet.as_ref().map(|f| f.status(&self.engine)),
                    names: self.name_stats(),
                };
                self.send(Job::Stats(Box::new(stats), reply)).await;
            }
            Command::Bans { jail } => {
                let mut bans: Vec<Ban> = self
                    .engine
                    .bans()
                    .filter(|b| jail.as_deref().is_none_or(|j| *b.jail == *j))
                    .collect();
                // Unstable is exact here: the table holds one ban per target.
                bans.sort_unstable_by(|a, b| a.since.cmp(&b.since).then(a.target.cmp(&b.target)));
                let _ = reply.send(Reply::ok_list(bans.iter().map(BanEntry::from_ban)));
            }
            Command::Ban {
                target,
                duration,
                jail,
                force,
            } => match self.manual_ban(&target, duration.as_deref(), jail, force, now) {
                Ok(entry) => self.commit_then_reply(reply, to_reply(&entry)).await,
                Err(e) => {
                    let _ = reply.send(Reply::error(e));
                }
            },
            Command::Fleet => {
                let answer = match &self.fleet {
                    Some(f) => to_reply(&f.status(&self.engine)),
                    None => Reply::error("no fleet: the config has no [fleet] table"),
                };
                let _ = reply.send(answer);
            }
            Command::Unban {
                target,
                all,
                jail,
                fleet,
            } => match self.unban(target.as_deref(), all, jail.as_deref(), fleet) {
                Ok(entries) => {
                    self.commit_then_reply(reply, Reply::ok_list(&entries))
                        .await
                }
                Err(e) => {
                    let _ = reply.send(Reply::error(e));
                }
            },
            Command::Reload => {
                let answer = match self.notified_reload(src_rx).await {
                    Ok(report) => {
                        tracing::info!(?report, "config reloaded");
                        to_reply(&report)
                    }
                    Err(e) => {
                        tracing::error!("{e}");
                        Reply::error(e)
                    }
                };
                let _ = reply.send(answer);
            }
            Command::Flush => {
                // Decisions already taken are recorded first; then the kernel
                // state goes and the agent stops (it would recreate it).
                self.commit(None).await;
                self.send(Job::Flush(reply)).await;
                self.stop = true;
            }
        }
    }

    fn jail_statuses(&self) -> Vec<JailStatus> {
        let mut counts: HashMap<&str, usize> =
            self.config.jails.keys().map(|j| (j.as_str(), 0)).collect();
        for (jail, n) in self.engine.bans_per_jail() {
            *counts.entry(jail).or_default() += n;
        }
        let mut out: Vec<JailStatus> = counts
            .into_iter()
            .filter(|(name, n)| *n > 0 || *name != MANUAL_JAIL)
            .map(|(name, n)| JailStatus {
                name: name.to_owned(),
                bans_active: n,
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    fn manual_ban(
        &mut self,
        target: &str,
        duration: Option<&str>,
        jail: Option<String>,
        force: bool,
        now: SystemTime,
    ) -> Result<BanEntry, String> {
        let target = parse_target(target)?;
        let duration = duration
            .map(crate::duration::parse_duration)
            .transpose()
            .map_err(|e| format!("bad duration: {e}"))?;
        let req = ManualBan {
            target,
            duration,
            jail,
            force,
        };
        let d = self
            .engine
            .manual_ban(&req, now)
            .map_err(|e| e.to_string())?;
        let entry = match &d {
            Decision::Ban(b) | Decision::Unban(b) => BanEntry::from_ban(b),
        };
        self.pending.push(d);
        Ok(entry)
    }

    /// Lifts bans here; a lifted shared ban is lifted on the fleet too, and with
    /// `fleet` (`unban --fleet`) every host lifts its ban on the target, even
    /// when there is none here.
    fn unban(
        &mut self,
        target: Option<&str>,
        all: bool,
        jail: Option<&str>,
        fleet: bool,
    ) -> Result<Vec<BanEntry>, String> {
        if fleet && self.fleet.is_none() {
            return Err("--fleet: the config has no [fleet] table".into());
        }
        if fleet && all {
            return Err("--fleet lifts one target everywhere; it does not go with --all".into());
        }
        let in_jail = |b: &Ban| jail.is_none_or(|j| *b.jail == *j);
        let targets: Vec<IpNet> = match (target, all) {
            (Some(_), true) => return Err("give a target or --all, not both".into()),
            (None, false) => return Err("give a target to unban, or --all".into()),
            (None, true) => self
                .engine
                .bans()
                .filter(|b| in_jail(b))
                .map(|b| b.target)
                .collect(),
            (Some(t), false) => {
                let net = parse_target(t)?;
                match self.engine.ban_on(net) {
                    None if fleet => {
                        if let Some(f) = &self.fleet {
                            f.publish_unban(net, None, true);
                        }
                        return Ok(Vec::new());
                    }
                    None => {
                        return Err(format!(
                            "{} is not banned",
                            crate::addr::display_target(&net)
                        ));
                    }
                    Some(b) if !in_jail(&b) => {
                        return Err(format!(
                            "{} is banned by jail {}, not {}",
                            crate::addr::display_target(&net),
                            b.jail,
                            jail.unwrap_or_default()
                        ));
                    }
                    Some(_) => vec![net],
                }
            }
        };
        let mut entries = Vec::with_capacity(targets.len());
        for t in targets {
            if let Some(d) = self.engine.unban(t) {
                let (Decision::Unban(b) | Decision::Ban(b)) = &d;
                entries.push(BanEntry::from_ban(b));
                if let Some(f) = &self.fleet {
                    f.publish_unban(t, Some(b), fleet);
                }
                self.pending.push(d);
            }
        }
        self.bans_lifted += entries.len() as u64;
        Ok(entries)
    }

    /// [`Self::reload`] between RELOADING and READY to systemd; READY after a refused
    /// reload too, since the running config stays in force.
    async fn notified_reload(
        &mut self,
        src_rx: &mut mpsc::Receiver<SourceEvent>,
    ) -> Result<ReloadReport, String> {
        crate::systemd::reloading();
        let result = self.reload(src_rx).await;
        crate::systemd::ready();
        result
    }

    /// Re-reads the config and rebuilds what changed. A config that does not load,
    /// or a backend that does not open, leaves everything as it was.
    async fn reload(
        &mut self,
        src_rx: &mut mpsc::Receiver<SourceEvent>,
    ) -> Result<ReloadReport, String> {
        let path = self.config_path.clone();
        let prepared = match tokio::task::spawn_blocking(move || prepare(&path)).await {
            Ok(Ok(p)) => p,
            Ok(Err(e)) => {
                return Err(format!(
                    "config not reloaded, the running config stays in force:\n{e}"
                ));
            }
            Err(e) => return Err(format!("config not reloaded: {e}")),
        };
        let needs = crate::sandbox::Sandbox::for_config(&prepared.config, &self.config_path);
        if let Err(e) = self.sandbox.admits(&needs) {
            return Err(format!(
                "config not reloaded, the running config stays in force: {e}; restart the agent for it"
            ));
        }
        let diff = ConfigDiff::between(&self.config, &prepared.config);

        // Backends first: the only step that can fail. A backend opened anew is
        // reconciled with every ban; when none is, the bans are not copied.
        let backends_moved = {
            let c =
                super::reload::backend_changes(&self.config.backends, &prepared.config.backends);
            !c.added.is_empty() || !c.changed.is_empty()
        };
        let active = if backends_moved {
            self.engine.bans().collect()
        } else {
            Vec::new()
        };
        let (tx, rx) = oneshot::channel();
        self.send(Job::Reconfigure {
            config: Box::new(prepared.config.clone()),
            active,
            reply: tx,
        })
        .await;
        let backends = match rx.await {
            Ok(Ok(changes)) => changes,
            Ok(Err(e)) => {
                return Err(format!(
                    "config not reloaded, the running config stays in force: {e}"
                ));
            }
            Err(_) => return Err("config not reloaded: the commit thread is gone".into()),
        };

        // The engine: bans and the counters of unchanged jails carry over; host
        // names in the allowlist are resolved again.
        let mut engine = prepared.engine;
        let before = self.pending.len();
        engine.set_allow_hosts(
            super::resolve_allow_hosts(&prepared.config).await,
            &mut self.pending,
        );
        let old = std::mem::replace(&mut self.engine, engine);
        self.engine
            .carry_over(old, &diff.kept_jails(), &mut self.pending);
        let lifted = self.pending.len() - before;
        self.bans_lifted += lifted as u64;

        // Sources: stop the removed and changed ones (keeping what they read),
        // start the added and changed ones where they left off.
        let stop: Vec<String> = diff
            .sources
            .removed
            .iter()
            .chain(&diff.sources.changed)
            .cloned()
            .collect();
        let handles = self.sources.take(&stop);
        let mut drained = Vec::new();
        stop_draining(handles, src_rx, |ev| drained.push(ev)).await;
        for ev in drained {
            self.take(ev);
        }
        let start: Vec<&String> = diff
            .sources
            .added
            .iter()
            .chain(&diff.sources.changed)
            .collect();
        let new_sources: Vec<(String, crate::filter::SourceMatcher)> = prepared
            .sources
            .into_iter()
            .filter(|(name, _, _)| start.contains(&name))
            .map(|(name, _, matcher)| (name, matcher))
            .collect();
        if !new_sources.is_empty() {
            // What the store holds, overlaid with what this run has seen since.
            let (tx, rx) = oneshot::channel();
            self.send(Job::Saved(tx)).await;
            let mut saved = rx.await.unwrap_or_default();
            saved.extend(self.last_positions.iter().cloned());
            for (name, matcher) in new_sources {
                if let Err(e) = self.sources.start(
                    &name,
                    &prepared.config,
                    &saved,
                    matcher,
                    self.src_tx.clone(),
                ) {
                    tracing::error!(source = %name, error = %e, "cannot start source after reload");
                }
            }
        }
        self.offence_counters = self.metrics.offence_counters(&prepared.config);
        if let Some(fleet) = &mut self.fleet {
            match &prepared.config.fleet {
                Some(fc) => {
                    if fc.redis != fleet.settings().url
                        || fc.stream != fleet.settings().stream
                        || fc
                            .node
                            .as_ref()
                            .is_some_and(|n| *n != fleet.settings().node)
                    {
                        tracing::warn!(
                            "fleet: connection settings changed; they take effect at the next restart"
                        );
                    }
                    fleet.reconfigure(fc);
                }
                None => {
                    tracing::warn!("fleet: [fleet] removed; the link stops at the next restart")
                }
            }
        } else if prepared.config.fleet.is_some() {
            tracing::warn!("fleet: [fleet] added; the link starts at the next restart");
        }
        // One commit records what the reload decided (bans the new allowlist
        // lifts) and what the stopped sources read; nothing after it adds more.
        self.commit(None).await;
        self.send_offences().await;
        self.tally = tally_for(&prepared.config);
        self.config = prepared.config;
        self.count_active();
        Ok(ReloadReport {
            sources: diff.sources,
            jails: diff.jails,
            backends,
            lifted,
            notes: diff.notes,
        })
    }
}

/// The offence tally a config asks for: `None` when `agent.offence_rows` is 0.
/// It holds at most as many entries as rows are kept, and at most [`TALLY_MAX`],
/// between two hand-overs.
pub(super) fn tally_for(config: &Config) -> Option<Tally> {
    let rows = config.agent.offence_rows;
    (rows > 0).then(|| Tally::new(rows.clamp(1, TALLY_MAX)))
}

/// Most entries the engine task's tally holds before it is handed over (about
/// 150 bytes each: some 10 MB at most). A spray of new (address, user) pairs
/// fills it; the bigger it is, the fewer rows each hand-over rewrites.
const TALLY_MAX: usize = 65_536;

fn parse_target(s: &str) -> Result<IpNet, String> {
    crate::addr::parse_target(s).map_err(|e| e.to_string())
}
