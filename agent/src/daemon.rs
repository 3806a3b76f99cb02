//! `log2drop run`: wires config, engine, store, backends, control socket and sources
//! together, and owns the order they start and stop in.
//!
//! Start-up: load and validate the config, build the engine and every source's
//! matcher (the same [`prepare`] `log2drop check` runs), open the store, restore
//! bans into the engine, open the backends and reconcile each with the active bans
//! in one batch, bind the control socket, then start the sources. Errors up to here
//! abort start-up with context; after it, errors are logged and never stop the
//! daemon.
//!
//! One engine task owns the engine, the store and the backends, so none of them
//! needs a lock. It takes offences (draining whatever is queued into one batch),
//! control requests, and a timer for the next expiry. Every decision batch goes to
//! the store first, then to the backends its jails map to.
//!
//! SIGTERM/SIGINT stop cleanly: sources send their last lines and positions, the
//! store is flushed, the socket removed; bans stay in the kernel and in the store.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use ipnet::IpNet;
use tokio::sync::{mpsc, watch};

use crate::backend::nftables::NftablesBackend;
use crate::backend::xdp::XdpBackend;
use crate::backend::{Backend, BackendError, dry_run::DryRun};
use crate::config::{self, Config, ConfigError};
use crate::control::protocol::{BanEntry, Command, Reply, SourceStatus, Status};
use crate::control::server::{ControlRequest, ControlServer, ServerError, ServerOptions};
use crate::engine::{Ban, Decision, Engine, EngineError};
use crate::filter::{FilterError, Scratch, SourceMatcher};
use crate::source::file::FilePosition;
use crate::source::{LineMatcher, SourceCounters, SourceError, SourceEvent, SourceHandle};
use crate::store::{Store, StoreError};

/// Capacity of the offence channel: how far sources may run ahead of the engine.
const OFFENCE_QUEUE: usize = 8192;
/// Most offences folded into one decision batch.
const MAX_BATCH: usize = 4096;
/// How often backends drop expired entries.
const GC_EVERY: Duration = Duration::from_secs(60);
/// How often source positions are written to the store.
const POSITIONS_EVERY: Duration = Duration::from_secs(5);

/// Why the daemon could not start (or a config does not check).
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The config file is wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The engine refused the config.
    #[error("{path}: {source}")]
    Engine {
        /// Config file.
        path: PathBuf,
        /// Why.
        #[source]
        source: EngineError,
    },
    /// A source's filters do not compile.
    #[error("{path}: source {name}: {source}")]
    Filter {
        /// Config file.
        path: PathBuf,
        /// Source name.
        name: String,
        /// Why.
        #[source]
        source: FilterError,
    },
    /// A source names a filter the config lacks (validation should have caught it).
    #[error("{path}: source {name}: unknown filter {filter:?}")]
    UnknownFilter {
        /// Config file.
        path: PathBuf,
        /// Source name.
        name: String,
        /// The missing filter.
        filter: String,
    },
    /// The state database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A backend could not be opened or reconciled.
    #[error("backend {name}: {source}")]
    Backend {
        /// Backend name.
        name: &'static str,
        /// Why (boxed: backend errors are large and start-up errors are rare).
        #[source]
        source: Box<BackendError>,
    },
    /// The control socket could not be set up.
    #[error(transparent)]
    Control(#[from] ServerError),
    /// A source could not start.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// Signal handlers could not be installed.
    #[error("cannot install signal handlers: {0}")]
    Signal(#[source] std::io::Error),
    /// The host's own addresses could not be read for the allowlist.
    #[error(transparent)]
    OwnAddrs(#[from] crate::ownaddrs::OwnAddrsError),
}

/// What a config builds into before anything touches the system: the engine and
/// every source's compiled matcher. `log2drop check` stops here.
pub struct Prepared {
    /// The config it came from.
    pub config: Config,
    /// Where the config came from.
    pub path: PathBuf,
    /// The engine, with no state yet.
    pub engine: Engine,
    /// Per source: name, path and matcher.
    pub sources: Vec<(String, PathBuf, SourceMatcher)>,
}

/// Loads, validates and builds a config, reporting the first stage that fails.
pub fn prepare(path: &Path) -> Result<Prepared, DaemonError> {
    let config = config::load(path)?;
    let engine = Engine::from_config(&config).map_err(|source| DaemonError::Engine {
        path: path.to_path_buf(),
        source,
    })?;
    let mut sources = Vec::new();
    for (name, src) in &config.sources {
        let mut resolved = Vec::new();
        for f in &src.filters {
            // A [filters.NAME] table, else the built-in filter of that name.
            let cfg = crate::filter::lookup(&config.filters, f).ok_or_else(|| {
                DaemonError::UnknownFilter {
                    path: path.to_path_buf(),
                    name: name.clone(),
                    filter: f.clone(),
                }
            })?;
            resolved.push((f.as_str(), cfg));
        }
        let filters: Vec<(&str, &crate::config::FilterConfig)> =
            resolved.iter().map(|(n, c)| (*n, c.as_ref())).collect();
        let matcher = SourceMatcher::build(&filters).map_err(|source| DaemonError::Filter {
            path: path.to_path_buf(),
            name: name.clone(),
            source,
        })?;
        sources.push((name.clone(), src.path.clone(), matcher));
    }
    Ok(Prepared {
        config,
        path: path.to_path_buf(),
        engine,
        sources,
    })
}

/// Opens every configured backend.
pub fn open_backends(cfg: &Config) -> Result<Vec<Box<dyn Backend>>, DaemonError> {
    let mut backends: Vec<Box<dyn Backend>> = Vec::new();
    if let Some(xdp) = &cfg.backends.xdp {
        let backend = XdpBackend::open(xdp).map_err(|e| DaemonError::Backend {
            name: "xdp",
            source: Box::new(BackendError::from(e)),
        })?;
        backends.push(Box::new(backend));
    }
    if let Some(nft) = &cfg.backends.nftables {
        let backend = NftablesBackend::open(nft).map_err(|e| DaemonError::Backend {
            name: "nftables",
            source: Box::new(BackendError::from(e)),
        })?;
        backends.push(Box::new(backend));
    }
    if cfg.backends.dry_run.is_some() {
        backends.push(Box::new(DryRun));
    }
    Ok(backends)
}

/// Runs the agent until SIGTERM or SIGINT.
pub async fn run(config_path: &Path) -> Result<(), DaemonError> {
    let prepared = prepare(config_path)?;
    let backends = open_backends(&prepared.config)?;
    run_prepared(
        prepared,
        backends,
        ServerOptions::default(),
        shutdown_signals()?,
    )
    .await
}

/// Resolves when SIGTERM or SIGINT arrives; logs SIGHUP.
fn shutdown_signals() -> Result<watch::Receiver<bool>, DaemonError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).map_err(DaemonError::Signal)?;
    let mut int = signal(SignalKind::interrupt()).map_err(DaemonError::Signal)?;
    let mut hup = signal(SignalKind::hangup()).map_err(DaemonError::Signal)?;
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = term.recv() => { tracing::info!("SIGTERM: stopping"); break; }
                _ = int.recv() => { tracing::info!("SIGINT: stopping"); break; }
                _ = hup.recv() => {
                    tracing::warn!("SIGHUP: reload is not implemented yet; keeping the running config");
                }
            }
        }
        let _ = tx.send(true);
    });
    Ok(rx)
}

/// Runs a prepared config with the given backends until `shutdown` turns true. The
/// seam tests use to run the daemon without signals or root.
pub async fn run_prepared(
    prepared: Prepared,
    mut backends: Vec<Box<dyn Backend>>,
    server_options: ServerOptions,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), DaemonError> {
    let Prepared {
        config,
        mut engine,
        sources,
        ..
    } = prepared;
    let now = SystemTime::now();

    let mut store = Store::open(&config.agent.state_dir)?;
    // The allowlist is complete before stored bans are checked against it.
    let mut none_yet = Vec::new();
    engine.set_allow_hosts(resolve_allow_hosts(&config).await, &mut none_yet);
    let (own_tx, own_rx) = mpsc::channel::<Vec<std::net::IpAddr>>(4);
    let own_watcher = if config.agent.allow_own_addresses {
        let (initial, watcher) = crate::ownaddrs::watch(own_tx).await?;
        tracing::info!(
            addresses = initial.len(),
            "host's own addresses allowlisted"
        );
        engine.set_own_addresses(initial, &mut none_yet);
        Some(watcher)
    } else {
        drop(own_tx);
        None
    };
    if let Some(window) = engine.history_window() {
        let since = now.checked_sub(window).unwrap_or(std::time::UNIX_EPOCH);
        let history = store.ban_history_since(since)?;
        tracing::info!(entries = history.len(), "ban history loaded for escalation");
        engine.restore_history(history, now);
    }
    let pruned = store.prune_expired(now)?;
    let restored = store.active_bans(now)?;
    let count = restored.len();
    engine.restore(restored.clone(), now);
    // Stored bans the engine refused (they now overlap the allowlist) end here, so
    // the store and the kernel agree with the engine.
    let dropped: Vec<Decision> = restored
        .into_iter()
        .filter(|b| !engine.bans().any(|e| e.target == b.target))
        .map(Decision::Unban)
        .collect();
    if !dropped.is_empty() {
        store.record_at(&dropped, now)?;
    }
    tracing::info!(
        db = %store.path().display(),
        restored = count,
        expired_while_down = pruned,
        "state loaded"
    );

    let active: Vec<Ban> = engine.bans().cloned().collect();
    for backend in &mut backends {
        let name = backend.name();
        let mine: Vec<Ban> = active
            .iter()
            .filter(|b| enforced_by(&engine, &b.jail, name))
            .cloned()
            .collect();
        let report = backend
            .reconcile(&mine, now)
            .map_err(|source| DaemonError::Backend {
                name,
                source: Box::new(source),
            })?;
        tracing::info!(
            backend = name,
            added = report.added,
            removed = report.removed,
            kept = report.kept,
            "backend reconciled"
        );
    }

    let server = ControlServer::bind(&config.agent.socket, server_options)?;
    tracing::info!(socket = %server.path().display(), "control socket ready");
    let (ctl_tx, ctl_rx) = mpsc::channel::<ControlRequest>(64);
    let (stop_server_tx, stop_server_rx) = watch::channel(false);

    let (src_tx, src_rx) = mpsc::channel::<SourceEvent>(OFFENCE_QUEUE);
    let mut handles: Vec<SourceHandle> = Vec::new();
    let positions = store.all_positions().unwrap_or_else(|e| {
        tracing::warn!(error = %e, "cannot read saved positions; files start per `start`");
        Vec::new()
    });
    for (name, _path, matcher) in sources {
        let Some(cfg) = config.sources.get(&name) else {
            continue;
        };
        let cursor = match cfg.kind {
            crate::config::SourceKind::Journal => store.cursor(&name).unwrap_or_else(|e| {
                tracing::warn!(source = %name, error = %e, "cannot read saved cursor");
                None
            }),
            _ => None,
        };
        let saved = crate::source::Saved {
            positions: positions.clone(),
            cursor,
        };
        let scratch = matcher.new_scratch();
        let windows = filter_windows(&config, &name);
        let matcher = FilterMatcher {
            matcher,
            scratch,
            windows,
        };
        match crate::source::spawn_configured(&name, cfg, &saved, matcher, src_tx.clone()) {
            Ok(h) => handles.push(h),
            Err(e) => {
                for h in &handles {
                    h.request_stop();
                }
                return Err(e.into());
            }
        }
    }
    // Only the sources hold senders now: the channel closes when the last one ends.
    drop(src_tx);

    let source_info = handles
        .iter()
        .map(|h| (h.name().to_owned(), h.path().to_path_buf(), h.counters()))
        .collect();
    let task = EngineTask {
        engine,
        store,
        backends,
        positions: HashMap::new(),
        cursors: HashMap::new(),
        positions_dirty: false,
        started: Instant::now(),
        sources: source_info,
        stopping: false,
    };
    let engine_task = tokio::spawn(task.run(src_rx, ctl_rx, own_rx, shutdown.clone()));
    let server_task = tokio::spawn(async move {
        server.serve(ctl_tx, stop_server_rx).await;
        drop(server);
    });
    tracing::info!("log2drop running");

    while !*shutdown.borrow() {
        if shutdown.changed().await.is_err() {
            break;
        }
    }
    let _ = stop_server_tx.send(true);
    for h in &handles {
        h.request_stop();
    }
    // Joining blocks; the engine task keeps draining the channel meanwhile.
    let joined = tokio::task::spawn_blocking(move || {
        for h in handles {
            h.stop();
        }
    });
    if joined.await.is_err() {
        tracing::error!("a source thread could not be joined");
    }
    if server_task.await.is_err() {
        tracing::error!("control server task failed");
    }
    if engine_task.await.is_err() {
        tracing::error!("engine task failed");
    }
    drop(own_watcher);
    tracing::info!("log2drop stopped; bans stay enforced");
    Ok(())
}

/// How long one `agent.allow` host name may take to resolve.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(10);

/// Resolves the host names in `agent.allow` (at start and reload). A name that
/// does not resolve is logged as an error and allows nothing until the next
/// reload; it does not stop the agent, so a DNS outage at boot cannot keep the
/// firewall down.
pub async fn resolve_allow_hosts(cfg: &Config) -> Vec<IpNet> {
    use crate::engine::allowlist::{AllowEntry, parse_entry};
    let mut nets = Vec::new();
    for entry in &cfg.agent.allow {
        let Ok(AllowEntry::Host(name)) = parse_entry(entry) else {
            continue;
        };
        let lookup = tokio::net::lookup_host((name.as_str(), 0));
        match tokio::time::timeout(RESOLVE_TIMEOUT, lookup).await {
            Ok(Ok(addrs)) => {
                let before = nets.len();
                nets.extend(addrs.map(|a| IpNet::from(crate::addr::normalise(a.ip()))));
                tracing::info!(host = %name, addresses = nets.len() - before, "allowlisted host name resolved");
            }
            Ok(Err(e)) => tracing::error!(host = %name, error = %e,
                "cannot resolve an agent.allow host name; it allows nothing until the next reload"),
            Err(_) => tracing::error!(host = %name, timeout_secs = RESOLVE_TIMEOUT.as_secs(),
                "agent.allow host name did not resolve in time; it allows nothing until the next reload"),
        }
    }
    nets.sort_unstable();
    nets.dedup();
    nets
}

/// Whether `backend` enforces bans of `jail`.
fn enforced_by(engine: &Engine, jail: &str, backend: &str) -> bool {
    let list = engine.jail_backends(jail);
    list.is_empty() || list.iter().any(|b| b == backend)
}

/// The filter module's matcher with its per-thread scratch space.
struct FilterMatcher {
    matcher: SourceMatcher,
    scratch: Scratch,
    /// Per filter of the source (in its order): the longest `findtime` of the
    /// jails it feeds. A line whose own time is older cannot count anywhere.
    windows: Vec<Option<std::time::Duration>>,
}

impl LineMatcher for FilterMatcher {
    fn match_line(&mut self, line: &[u8]) -> Option<(&str, std::net::IpAddr)> {
        let now = SystemTime::now();
        let hit = self.matcher.match_line(line, now, &mut self.scratch)?;
        if let (Some(at), Some(Some(window))) = (hit.time, self.windows.get(hit.filter.index()))
            && now.duration_since(at).is_ok_and(|age| age > *window)
        {
            // An old line (a backlog, a rotated file read late): not an offence now.
            return None;
        }
        Some((self.matcher.filter_name(hit.filter), hit.addr))
    }
}

/// For each filter of source `source`, in its order, the longest `findtime` of
/// the jails that list it.
fn filter_windows(config: &Config, source: &str) -> Vec<Option<std::time::Duration>> {
    let Some(src) = config.sources.get(source) else {
        return Vec::new();
    };
    src.filters
        .iter()
        .map(|f| {
            config
                .jails
                .values()
                .filter(|j| j.filters.iter().any(|x| x == f))
                .map(|j| j.findtime.get())
                .max()
        })
        .collect()
}

struct EngineTask {
    engine: Engine,
    store: Store,
    backends: Vec<Box<dyn Backend>>,
    positions: HashMap<PathBuf, FilePosition>,
    /// Journal cursors by source name, saved with the positions.
    cursors: HashMap<String, String>,
    positions_dirty: bool,
    started: Instant,
    sources: Vec<(String, PathBuf, Arc<SourceCounters>)>,
    stopping: bool,
}

impl EngineTask {
    async fn run(
        mut self,
        mut src_rx: mpsc::Receiver<SourceEvent>,
        mut ctl_rx: mpsc::Receiver<ControlRequest>,
        mut own_rx: mpsc::Receiver<Vec<std::net::IpAddr>>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut gc = tokio::time::interval(GC_EVERY);
        let mut flush = tokio::time::interval(POSITIONS_EVERY);
        gc.tick().await;
        flush.tick().await;
        let mut batch = Vec::new();
        let mut sources_open = true;
        let mut ctl_open = true;
        let mut own_open = true;
        loop {
            let expiry = self
                .engine
                .next_expiry()
                .map(|t| {
                    t.duration_since(SystemTime::now())
                        .unwrap_or(Duration::ZERO)
                })
                .unwrap_or(Duration::from_secs(3600));
            tokio::select! {
                ev = src_rx.recv(), if sources_open => match ev {
                    Some(ev) => {
                        self.take(ev, &mut batch);
                        let mut n = 1;
                        while n < MAX_BATCH {
                            match src_rx.try_recv() {
                                Ok(ev) => self.take(ev, &mut batch),
                                Err(_) => break,
                            }
                            n += 1;
                        }
                        self.commit(&mut batch, SystemTime::now());
                    }
                    None => {
                        sources_open = false;
                        if self.stopping {
                            break;
                        }
                    }
                },
                req = ctl_rx.recv(), if ctl_open => match req {
                    Some(req) => {
                        let reply = self.control(req.cmd, &mut batch);
                        let _ = req.reply.send(reply);
                    }
                    None => ctl_open = false,
                },
                addrs = own_rx.recv(), if own_open => match addrs {
                    Some(addrs) => {
                        self.engine.set_own_addresses(addrs, &mut batch);
                        self.commit(&mut batch, SystemTime::now());
                    }
                    None => own_open = false,
                },
                () = tokio::time::sleep(expiry) => {
                    let now = SystemTime::now();
                    self.engine.expire(now, &mut batch);
                    self.commit(&mut batch, now);
                }
                _ = gc.tick() => {
                    // Also lets the engine forget aged-out offence windows when no
                    // ban deadline wakes it.
                    let now = SystemTime::now();
                    self.engine.expire(now, &mut batch);
                    self.commit(&mut batch, now);
                    self.gc();
                }
                _ = flush.tick() => self.flush_positions(),
                changed = shutdown.changed(), if !self.stopping => {
                    if changed.is_err() || *shutdown.borrow() {
                        self.stopping = true;
                        if !sources_open {
                            break;
                        }
                    }
                }
            }
        }
        self.flush_positions();
    }

    fn take(&mut self, ev: SourceEvent, batch: &mut Vec<Decision>) {
        match ev {
            SourceEvent::Offence(o) => self.engine.offence(&o.filter, o.addr, o.at, batch),
            SourceEvent::Position { path, position, .. } => {
                self.positions.insert(path, position);
                self.positions_dirty = true;
            }
            SourceEvent::Cursor { source, cursor } => {
                self.cursors.insert(source.to_string(), cursor);
                self.positions_dirty = true;
            }
        }
    }

    /// Store first, then backends: a ban is never enforced without being recorded
    /// (unless the store itself fails, which is logged and does not stop enforcing).
    fn commit(&mut self, batch: &mut Vec<Decision>, now: SystemTime) {
        if batch.is_empty() {
            return;
        }
        if let Err(e) = self.store.record_at(batch, now) {
            tracing::error!(error = %e, decisions = batch.len(),
                "cannot record decisions; enforcing them anyway");
        }
        for d in batch.iter() {
            log_decision(d);
        }
        for backend in &mut self.backends {
            let name = backend.name();
            let mine: Vec<Decision> = batch
                .iter()
                .filter(|d| enforced_by(&self.engine, &decision_ban(d).jail, name))
                .cloned()
                .collect();
            if mine.is_empty() {
                continue;
            }
            if let Err(e) = backend.apply(&mine, now) {
                tracing::error!(backend = name, decisions = mine.len(), error = %e,
                    "backend failed to apply decisions");
            }
        }
        batch.clear();
    }

    fn control(&mut self, cmd: Command, batch: &mut Vec<Decision>) -> Reply {
        let now = SystemTime::now();
        match cmd {
            Command::Bans => {
                let mut bans: Vec<&Ban> = self.engine.bans().collect();
                bans.sort_by(|a, b| a.since.cmp(&b.since).then(a.target.cmp(&b.target)));
                let entries: Vec<BanEntry> = bans.into_iter().map(BanEntry::from_ban).collect();
                to_reply(&entries)
            }
            Command::Ban { target, duration } => {
                let net = match parse_target(&target) {
                    Ok(n) => n,
                    Err(e) => return Reply::error(e),
                };
                let duration = match duration.as_deref().map(crate::duration::parse_duration) {
                    None => None,
                    Some(Ok(d)) => Some(d),
                    Some(Err(e)) => return Reply::error(format!("bad duration: {e}")),
                };
                match self.engine.ban(net, duration, now) {
                    Ok(d) => {
                        let entry = BanEntry::from_ban(decision_ban(&d));
                        batch.push(d);
                        self.commit(batch, now);
                        to_reply(&entry)
                    }
                    Err(e) => Reply::error(e.to_string()),
                }
            }
            Command::Unban { target } => {
                let net = match parse_target(&target) {
                    Ok(n) => n,
                    Err(e) => return Reply::error(e),
                };
                match self.engine.unban(net) {
                    Some(d) => {
                        let entry = BanEntry::from_ban(decision_ban(&d));
                        batch.push(d);
                        self.commit(batch, now);
                        to_reply(&entry)
                    }
                    None => Reply::error(format!(
                        "{} is not banned",
                        crate::addr::display_target(&net)
                    )),
                }
            }
            Command::Status => {
                let status = Status {
                    version: env!("CARGO_PKG_VERSION").to_owned(),
                    uptime_secs: self.started.elapsed().as_secs(),
                    bans_active: self.engine.bans().count(),
                    sources: self
                        .sources
                        .iter()
                        .map(|(name, path, c)| SourceStatus {
                            name: name.clone(),
                            path: path.display().to_string(),
                            lines: c.lines.load(Ordering::Relaxed),
                            offences: c.offences.load(Ordering::Relaxed),
                            long_lines: c.long_lines.load(Ordering::Relaxed),
                        })
                        .collect(),
                    backends: self.backends.iter().map(|b| b.name().to_owned()).collect(),
                };
                to_reply(&status)
            }
        }
    }

    fn gc(&mut self) {
        let now = SystemTime::now();
        for backend in &mut self.backends {
            match backend.gc(now) {
                Ok(0) => {}
                Ok(n) => tracing::debug!(
                    backend = backend.name(),
                    removed = n,
                    "expired entries collected"
                ),
                Err(e) => tracing::warn!(backend = backend.name(), error = %e, "gc failed"),
            }
        }
    }

    fn flush_positions(&mut self) {
        if !self.positions_dirty {
            return;
        }
        let positions: Vec<(PathBuf, FilePosition)> = self
            .positions
            .iter()
            .map(|(p, pos)| (p.clone(), *pos))
            .collect();
        let cursors: Vec<(String, String)> = self
            .cursors
            .iter()
            .map(|(s, c)| (s.clone(), c.clone()))
            .collect();
        if let Err(e) = self.store.save_cursors(&cursors) {
            tracing::warn!(error = %e, "cannot save journal cursors");
        }
        match self.store.save_positions(&positions) {
            Ok(()) => self.positions_dirty = false,
            Err(e) => tracing::warn!(error = %e, "cannot save source positions"),
        }
    }
}

fn parse_target(s: &str) -> Result<IpNet, String> {
    crate::addr::parse_target(s).map_err(|e| e.to_string())
}

fn decision_ban(d: &Decision) -> &Ban {
    match d {
        Decision::Ban(b) | Decision::Unban(b) => b,
    }
}

fn to_reply<T: serde::Serialize>(value: &T) -> Reply {
    match serde_json::to_value(value) {
        Ok(v) => Reply::ok(v),
        Err(e) => Reply::error(format!("internal error: {e}")),
    }
}

fn log_decision(d: &Decision) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::client;
    use std::io::Write;

    struct Lab {
        dir: tempfile::TempDir,
    }

    impl Lab {
        fn new() -> Lab {
            let dir = tempfile::tempdir().expect("tempdir");
            let lab = Lab { dir };
            std::fs::write(lab.log(), b"").expect("create log");
            let config = format!(
                r#"
[agent]
state_dir = "{state}"
socket = "{socket}"
allow = ["127.0.0.0/8", "::1", "192.0.2.0/24"]

[backends.dry-run]

[filters.ssh-fail]
regex = ['Failed password for .* from <HOST> port \d+']

[sources.auth]
path = "{log}"
filters = ["ssh-fail"]

[jails.ssh]
filters = ["ssh-fail"]
maxretry = 3
findtime = "10m"
bantime = "1h"
"#,
                state = lab.dir.path().join("state").display(),
                socket = lab.socket().display(),
                log = lab.log().display(),
            );
            std::fs::write(lab.config(), config).expect("write config");
            lab
        }
        fn config(&self) -> PathBuf {
            self.dir.path().join("log2drop.toml")
        }
        fn socket(&self) -> PathBuf {
            self.dir.path().join("run").join("ctl.sock")
        }
        fn log(&self) -> PathBuf {
            self.dir.path().join("auth.log")
        }
        fn append(&self, text: &str) {
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(self.log())
                .expect("open log");
            f.write_all(text.as_bytes()).expect("append");
        }
        /// Starts the daemon; returns the stop switch and its task.
        async fn start(
            &self,
        ) -> (
            watch::Sender<bool>,
            tokio::task::JoinHandle<Result<(), DaemonError>>,
        ) {
            let prepared = prepare(&self.config()).expect("prepare");
            let backends = open_backends(&prepared.config).expect("backends");
            let (tx, rx) = watch::channel(false);
            let options = ServerOptions {
                allowed_uids: vec![nix::unistd::geteuid().as_raw()],
            };
            let task = tokio::spawn(run_prepared(prepared, backends, options, rx));
            for _ in 0..200 {
                if self.socket().exists() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            // Let the source open the file at its end before lines are written.
            tokio::time::sleep(Duration::from_millis(300)).await;
            (tx, task)
        }
        async fn ask(&self, cmd: Command) -> Reply {
            let socket = self.socket();
            tokio::task::spawn_blocking(move || {
                client::request(&socket, &cmd, Duration::from_secs(5))
            })
            .await
            .expect("join")
            .expect("reply")
        }
        async fn bans(&self) -> Vec<BanEntry> {
            let reply = self.ask(Command::Bans).await;
            assert!(reply.ok, "{reply:?}");
            serde_json::from_value(reply.data.expect("data")).expect("ban list")
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn offences_in_the_log_ban_and_bans_survive_a_restart() {
        let lab = Lab::new();
        let (stop, task) = lab.start().await;
        for _ in 0..3 {
            lab.append("sshd[1]: Failed password for root from 198.51.100.7 port 22 ssh2\n");
        }
        lab.append(
            "sshd[1]: Failed password for root from 192.0.2.9 port 22 ssh2\n"
                .repeat(5)
                .as_str(),
        );
        let mut bans = Vec::new();
        for _ in 0..300 {
            bans = lab.bans().await;
            if !bans.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(bans.len(), 1, "{bans:?}");
        assert_eq!(bans[0].address, "198.51.100.7");
        assert_eq!(bans[0].jail, "ssh");
        assert!(bans[0].until.is_some());

        let reply = lab
            .ask(Command::Ban {
                target: "203.0.113.0/24".into(),
                duration: None,
            })
            .await;
        assert!(reply.ok, "{reply:?}");
        let reply = lab
            .ask(Command::Ban {
                target: "192.0.2.1".into(),
                duration: Some("1h".into()),
            })
            .await;
        assert!(!reply.ok, "allowlisted target must be refused");
        let reply = lab
            .ask(Command::Ban {
                target: "198.51.100.9".into(),
                duration: Some("soon".into()),
            })
            .await;
        assert!(reply.error.unwrap_or_default().contains("duration"));

        stop.send(true).expect("stop");
        task.await.expect("join").expect("clean stop");
        assert!(!lab.socket().exists(), "socket removed on stop");

        // Written while the agent is down: must be read after the restart (the
        // saved position), so 198.51.100.8 reaches maxretry.
        for _ in 0..3 {
            lab.append("sshd[1]: Failed password for root from 198.51.100.8 port 22 ssh2\n");
        }
        let (stop, task) = lab.start().await;
        let mut addrs = Vec::new();
        for _ in 0..300 {
            addrs = lab
                .bans()
                .await
                .into_iter()
                .map(|b| b.address)
                .collect::<Vec<_>>();
            if addrs.len() == 3 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        addrs.sort();
        assert_eq!(addrs, ["198.51.100.7", "198.51.100.8", "203.0.113.0/24"]);

        let reply = lab
            .ask(Command::Unban {
                target: "198.51.100.7".into(),
            })
            .await;
        assert!(reply.ok, "{reply:?}");
        let reply = lab
            .ask(Command::Unban {
                target: "198.51.100.7".into(),
            })
            .await;
        assert!(reply.error.unwrap_or_default().contains("not banned"));
        let status = lab.ask(Command::Status).await;
        let status: Status = serde_json::from_value(status.data.expect("data")).expect("status");
        assert_eq!(status.bans_active, 2);
        assert_eq!(status.backends, ["dry-run"]);
        assert_eq!(status.sources.len(), 1);
        stop.send(true).expect("stop");
        task.await.expect("join").expect("clean stop");
    }

    #[test]
    fn prepare_reports_config_problems_with_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "[agent]\nstate_dirr = 1\n").expect("write");
        let err = prepare(&path).err().expect("must fail");
        assert!(err.to_string().contains("bad.toml"), "{err}");
    }

    #[test]
    fn lines_older_than_findtime_do_not_count() {
        let sshd = crate::filter::builtin::get("sshd").expect("built-in");
        let matcher = SourceMatcher::build(&[("sshd", &sshd)]).expect("builds");
        let scratch = matcher.new_scratch();
        let mut m = FilterMatcher {
            matcher,
            scratch,
            windows: vec![Some(Duration::from_secs(600))],
        };
        let line = |age: Duration| {
            let at = jiff::Timestamp::try_from(SystemTime::now() - age).expect("time");
            format!("{at} web1 sshd[1]: Invalid user a from 192.0.2.1 port 22")
        };
        let fresh = line(Duration::from_secs(5));
        assert!(m.match_line(fresh.as_bytes()).is_some(), "{fresh}");
        let old = line(Duration::from_secs(3600));
        assert!(m.match_line(old.as_bytes()).is_none(), "{old}");
    }

    #[test]
    fn filter_windows_take_the_longest_findtime() {
        let text = "[backends.dry-run]\n[sources.a]\npath = \"/var/log/a\"\nfilters = [\"sshd\", \"x\"]\n[filters.x]\nregex = ['x <HOST>']\n[jails.j1]\nfilters = [\"sshd\"]\nfindtime = \"10m\"\n[jails.j2]\nfilters = [\"sshd\", \"x\"]\nfindtime = \"1h\"\n";
        let cfg = config::parse(text, Path::new("t.toml")).expect("valid");
        assert_eq!(
            filter_windows(&cfg, "a"),
            vec![
                Some(Duration::from_secs(3600)),
                Some(Duration::from_secs(3600))
            ]
        );
    }
}
