//! `log2drop run`: wires config, engine, store, backends, hooks, control socket and
//! sources together, and owns the order they start and stop in.
//!
//! Start-up: load and validate the config, build the engine and every source's
//! matcher (the same [`prepare`] `log2drop check` runs), open the store, restore
//! bans into the engine, open the backends and reconcile each with the active bans
//! in one batch (timed: `status` shows it), bind the control socket, then start the
//! sources. Errors up to here abort start-up with context; after it, errors are
//! logged and never stop the daemon.
//!
//! Running, the work is split in two so matching never waits for a disk sync:
//! - the engine task ([`engine_task`]) owns the engine and the sources: offences
//!   in, decisions out, control commands, reload (SIGHUP or `reload`);
//! - the commit thread ([`enforcer`]) owns the store, the backends and the hooks:
//!   each decision batch is recorded, then enforced, then announced to hooks.
//!
//! Reload re-reads the config and rebuilds only what changed ([`reload`]): a bad
//! config, or a backend that does not open, is refused with its errors and the
//! running config stays. SIGTERM/SIGINT stop cleanly: sources send their last
//! lines and positions, the last batch is committed, the socket removed; bans stay
//! in the kernel and in the store. `flush` removes every kernel object and stops.

pub mod alloc;
pub(crate) mod enforcer;
mod engine_task;
mod names;
pub mod reload;
mod sources;

use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use tokio::sync::{mpsc, watch};

use crate::backend::{Backend, BackendError, BackendKind, BackendsConfig};
use crate::config::{self, Config, ConfigError};
use crate::control::protocol::Reply;
use crate::control::server::{ControlRequest, ControlServer, ServerError, ServerOptions};
use crate::engine::{Decision, Engine, EngineError};
use crate::filter::{FilterError, SourceMatcher};
use crate::hooks::{Hooks, WebhookError};
use crate::metrics::Metrics;
use crate::source::{Positions, SourceError, SourceEvent, SourcePosition};
use crate::store::{Batch, Store, StoreError};
use enforcer::{Enforcer, Job, Routes, Slot};
use engine_task::EngineTask;
use sources::SourceSet;

/// Capacity of the offence channel, in offences: how far sources may run ahead
/// of the engine (file sources send up to `OFFENCES_PER_EVENT` in one message).
const OFFENCE_QUEUE: usize = 8192;
/// Capacity of the commit queue: how far the engine may run ahead of the disk and
/// the kernel before it waits.
const COMMIT_QUEUE: usize = 64;

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
    /// `agent.socket_group` names no group on this host.
    #[error("{path}:{line}:{column}: agent.socket_group: no group {group:?} on this host")]
    SocketGroup {
        /// Config file.
        path: PathBuf,
        /// Where the key is written (1-based).
        line: usize,
        /// Its column (1-based).
        column: usize,
        /// The group.
        group: String,
    },
    /// A webhook URL is unusable (validation should have caught it).
    #[error("{path}: {source}")]
    Hooks {
        /// Config file.
        path: PathBuf,
        /// Why.
        #[source]
        source: WebhookError,
    },
    /// The state database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A backend could not be opened, reconciled or flushed.
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
    /// The commit thread could not be started.
    #[error("cannot start the commit thread: {0}")]
    Thread(#[source] std::io::Error),
    /// The metrics endpoint could not listen.
    #[error(transparent)]
    Metrics(#[from] crate::metrics::server::BindError),
    /// The fleet link could not start.
    #[error(transparent)]
    Fleet(#[from] crate::fleet::FleetError),
    /// pledge(2) or unveil(2) refused the agent's sandbox.
    #[error("cannot enter the sandbox: {0}")]
    Sandbox(#[source] std::io::Error),
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
    /// The gid of `agent.socket_group`, if set.
    pub socket_gid: Option<u32>,
}

/// Loads, validates and builds a config, reporting the first stage that fails.
pub fn prepare(path: &Path) -> Result<Prepared, DaemonError> {
    let mut config = config::load(path)?;
    // What the fail2ban filter files hold now: a reload compares it.
    for f in config.filters.values_mut() {
        f.fail2ban_digest = crate::fail2ban::digest(f);
    }
    let engine = Engine::from_config(&config).map_err(|source| DaemonError::Engine {
        path: path.to_path_buf(),
        source,
    })?;
    let mut sources = Vec::new();
    for (name, src) in &config.sources {
        let mut resolved = Vec::new();
        for f in &src.filters {
            // A [filters.NAME] table, else the built-in filter of that name, in
            // the mode the reference names.
            let cfg = crate::filter::resolve(&config.filters, f).map_err(|_| {
                DaemonError::UnknownFilter {
                    path: path.to_path_buf(),
                    name: name.clone(),
                    filter: f.clone(),
                }
            })?;
            resolved.push((f.as_str(), cfg));
        }
        let filters: Vec<(&str, &crate::config::FilterConfig)> =
            resolved.iter().map(|(n, c)| (*n, c)).collect();
        let matcher = SourceMatcher::build(&filters).map_err(|source| DaemonError::Filter {
            path: path.to_path_buf(),
            name: name.clone(),
            source,
        })?;
        sources.push((name.clone(), src.path.clone(), matcher));
    }
    let socket_gid = match &config.agent.socket_group {
        None => None,
        Some(group) => match nix::unistd::Group::from_name(group) {
            Ok(Some(g)) => Some(g.gid.as_raw()),
            _ => {
                let at = config::position_of(path, &["agent", "socket_group"])
                    .unwrap_or(config::locate::Position { line: 1, column: 1 });
                return Err(DaemonError::SocketGroup {
                    path: path.to_path_buf(),
                    line: at.line,
                    column: at.column,
                    group: group.clone(),
                });
            }
        },
    };
    Ok(Prepared {
        config,
        path: path.to_path_buf(),
        engine,
        sources,
        socket_gid,
    })
}

/// Opens backend `kind` of `cfg`, if it is configured.
pub(crate) fn open_backend(
    cfg: &BackendsConfig,
    kind: BackendKind,
) -> Result<Option<Box<dyn Backend>>, DaemonError> {
    cfg.open(kind)
        .transpose()
        .map_err(|e| backend_error(kind, e))
}

/// An opened backend and which one it is.
pub(crate) type Opened = (BackendKind, Box<dyn Backend>);

/// Opens every configured backend, in the config's order.
pub fn open_backends(cfg: &Config) -> Result<Vec<Opened>, DaemonError> {
    let mut backends = Vec::new();
    for kind in cfg.backends.kinds() {
        if let Some(b) = open_backend(&cfg.backends, kind)? {
            backends.push((kind, b));
        }
    }
    Ok(backends)
}

/// Removes every kernel object the configured backends created (what `log2drop
/// flush` does, with or without a running agent).
/// Returns, per backend, how many objects went.
pub fn flush_kernel_state(cfg: &BackendsConfig) -> Result<Vec<(String, usize)>, DaemonError> {
    let mut out = Vec::new();
    for kind in cfg.kinds() {
        if let Some(n) = cfg
            .flush(kind)
            .transpose()
            .map_err(|e| backend_error(kind, e))?
        {
            out.push((kind.name().to_owned(), n));
        }
    }
    Ok(out)
}

fn backend_error(kind: BackendKind, e: BackendError) -> DaemonError {
    DaemonError::Backend {
        name: kind.name(),
        source: Box::new(e),
    }
}

/// What makes a running agent reload or stop.
#[derive(Debug)]
pub struct Triggers {
    /// Turns true to stop.
    pub shutdown: watch::Receiver<bool>,
    /// One message per reload (SIGHUP).
    pub reload: mpsc::Receiver<()>,
}

impl Triggers {
    /// Triggers driven by the returned senders (tests; the daemon uses signals).
    pub fn manual() -> (watch::Sender<bool>, mpsc::Sender<()>, Triggers) {
        let (stop_tx, shutdown) = watch::channel(false);
        let (reload_tx, reload) = mpsc::channel(4);
        (stop_tx, reload_tx, Triggers { shutdown, reload })
    }
}

/// Raises the soft limit on open files to the hard one: the soft default (1024 on
/// most systems) is what a busy host's sources, the store and the control socket
/// share, and the control socket's caps assume room beyond them. Failing is
/// logged, not fatal.
fn raise_fd_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => tracing::debug!(from = soft, to = hard, "raised the open-file limit"),
            Err(e) => tracing::warn!(soft, hard, error = %e, "cannot raise the open-file limit"),
        },
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "cannot read the open-file limit"),
    }
}

/// Saves, for every file a `start = "end"` source would begin at its end (no
/// saved position yet), that end as its position, before the agent reports
/// ready: a kill -9 right after the first start then resumes there, where it
/// used to act as a first run again and skip what was written while it was down.
/// Adds those positions to `saved`, for the sources to resume from.
fn save_start_positions(store: &mut Store, config: &Config, saved: &mut Positions) {
    use crate::source::file::{StartAt, end_position};
    let mut fresh = Vec::new();
    for (name, src) in &config.sources {
        if src.resolved_kind() != crate::config::SourceKind::File || src.start_at() != StartAt::End
        {
            continue;
        }
        let Ok(pattern) = crate::source::glob::Pattern::new(&src.path) else {
            continue;
        };
        for path in pattern.expand() {
            if saved.has_file(&path) {
                continue;
            }
            match end_position(&path, src.max_line_bytes) {
                Ok(Some(at)) => fresh.push(SourcePosition::File { path, at }),
                Ok(None) => {}
                Err(e) => tracing::warn!(source = %name, path = %path.display(), error = %e,
                    "cannot read the starting position"),
            }
        }
    }
    if fresh.is_empty() {
        return;
    }
    match store.write(Batch::at(SystemTime::now()).positions(&fresh)) {
        Ok(()) => tracing::debug!(files = fresh.len(), "saved the starting positions"),
        Err(e) => tracing::warn!(error = %e, "cannot save the starting positions"),
    }
    saved.extend(fresh);
}

/// Runs the agent until SIGTERM or SIGINT (or `flush`).
pub async fn run(config_path: &Path) -> Result<(), DaemonError> {
    let started = Instant::now();
    let prepared = prepare(config_path)?;
    raise_fd_limit();
    let backends = open_backends(&prepared.config)?;
    let options = ServerOptions {
        admin_uids: vec![0],
        read_gid: prepared.socket_gid,
    };
    run_prepared(prepared, backends, options, signals()?, started).await
}

/// SIGTERM and SIGINT stop, SIGHUP reloads.
fn signals() -> Result<Triggers, DaemonError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).map_err(DaemonError::Signal)?;
    let mut int = signal(SignalKind::interrupt()).map_err(DaemonError::Signal)?;
    let mut hup = signal(SignalKind::hangup()).map_err(DaemonError::Signal)?;
    let (stop_tx, reload_tx, triggers) = Triggers::manual();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = term.recv() => { tracing::info!("SIGTERM: stopping"); break; }
                _ = int.recv() => { tracing::info!("SIGINT: stopping"); break; }
                _ = hup.recv() => {
                    tracing::info!("SIGHUP: reloading the config");
                    if reload_tx.try_send(()).is_err() {
                        tracing::warn!("SIGHUP: a reload is already pending");
                    }
                }
            }
        }
        let _ = stop_tx.send(true);
    });
    Ok(triggers)
}

/// Runs a prepared config with the given backends until `triggers` stop it (or a
/// `flush`). `started` is when start-up began, for the "running" log line. The
/// seam tests use to run the daemon without signals or root.
pub async fn run_prepared(
    prepared: Prepared,
    backends: Vec<Opened>,
    server_options: ServerOptions,
    triggers: Triggers,
    started: Instant,
) -> Result<(), DaemonError> {
    let Prepared {
        config,
        path: config_path,
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
    let scheduled = store.scheduled_bans()?;
    if !scheduled.is_empty() {
        tracing::info!(
            bans = scheduled.len(),
            "bans scheduled by ban_delay before the restart restored"
        );
        engine.restore_scheduled(scheduled);
    }
    let reading = Instant::now();
    // Bans that ended while the agent was down still owe their unban hooks.
    let mut expired_while_down = Vec::new();
    store.for_each_expired_ban(now, |ban| expired_while_down.push(Decision::Unban(ban)))?;
    let pruned = store.prune_expired(now)?;
    // Stored bans go straight into the engine, one row at a time: no copy of
    // them all is ever held besides the engine's own.
    let mut count = 0usize;
    let mut in_engine = std::time::Duration::ZERO;
    let mut dropped = Vec::new();
    store.for_each_active_ban(now, |ban| {
        count += 1;
        let t = Instant::now();
        let refused = engine.restore_one(ban, now);
        in_engine += t.elapsed();
        // A stored ban the engine refused (it now overlaps the allowlist) ends
        // here, so the store and the kernel agree with the engine.
        dropped.extend(refused.map(Decision::Unban));
    })?;
    let restore_ms = in_engine.as_secs_f64() * 1000.0;
    let read_ms = reading.elapsed().as_secs_f64() * 1000.0 - restore_ms;
    if !dropped.is_empty() {
        store.write(Batch::at(now).decisions(&dropped))?;
    }
    tracing::info!(
        db = %store.path().display(),
        restored = count,
        expired_while_down = pruned,
        read_ms,
        restore_ms,
        since_start_ms = started.elapsed().as_secs_f64() * 1000.0,
        "state loaded"
    );

    let metrics = Metrics::new(config.metrics.top);
    let routes = Routes::from_config(&config);
    let mut slots = Vec::with_capacity(backends.len());
    for (kind, backend) in backends {
        slots.push(Slot::reconciled(
            kind,
            backend,
            engine.bans(),
            &routes,
            &metrics,
        )?);
    }
    let active_bans = engine.ban_count();
    // The bans gathered for each reconcile are gone now.
    alloc::trim();
    let hooks =
        Hooks::from_config(&config, tokio::runtime::Handle::current()).map_err(|source| {
            DaemonError::Hooks {
                path: config_path.clone(),
                source,
            }
        })?;
    if !expired_while_down.is_empty() {
        tracing::info!(
            bans = expired_while_down.len(),
            "running the unban hooks of bans that ended while the agent was down"
        );
        hooks.notify(&expired_while_down);
    }
    drop(expired_while_down);
    let mut positions = store.positions().unwrap_or_else(|e| {
        tracing::warn!(error = %e, "cannot read saved positions; sources start per `start`");
        Positions::default()
    });
    save_start_positions(&mut store, &config, &mut positions);
    // The fleet link starts before the sources: remote bans flow in while the
    // sources catch up. It reads on from the stream ID saved with its last batch.
    let fleet = match &config.fleet {
        None => None,
        Some(fc) => {
            let settings = fc.build().map_err(crate::fleet::FleetError::from)?;
            let cursor = positions.fleet_id(&settings.stream);
            let fleet = crate::fleet::Fleet::start_with(settings, cursor)?;
            metrics.watch_fleet(fleet.probe());
            Some(fleet)
        }
    };
    let mut enforcer = Enforcer {
        store,
        slots,
        backends_cfg: config.backends.clone(),
        routes,
        hooks,
        retention: config.agent.history_retention.get(),
        offence_rows: config.agent.offence_rows,
        next_purge: now,
        commits: 0,
        store_errors: 0,
        metrics: metrics.clone(),
    };
    enforcer.purge(now);
    let (job_tx, job_rx) = mpsc::channel::<Job>(COMMIT_QUEUE);
    let commit_thread = std::thread::Builder::new()
        .name("log2drop-commit".into())
        .spawn(move || enforcer.run(job_rx))
        .map_err(DaemonError::Thread)?;

    let server = ControlServer::bind(&config.agent.socket, server_options)?;
    tracing::info!(socket = %server.path().display(), "control socket ready");
    let metrics_listener = match config.metrics.listen {
        Some(addr) => {
            let listener = crate::metrics::server::bind(addr).await?;
            tracing::info!(listen = %addr, "metrics endpoint ready: GET /metrics");
            Some(listener)
        }
        None => None,
    };
    let (ctl_tx, ctl_rx) = mpsc::channel::<ControlRequest>(64);
    let (stop_server_tx, stop_server_rx) = watch::channel(false);

    let (src_tx, src_rx) =
        mpsc::channel::<SourceEvent>(OFFENCE_QUEUE / crate::source::OFFENCES_PER_EVENT);
    let mut set = SourceSet::new(metrics.clone());
    // Host names and reverse-DNS checks: resolved by their own task, answered
    // to the engine task.
    let name_counters = std::sync::Arc::new(names::NameCounters::default());
    let (name_queue, name_rx) = names::NameQueue::new(name_counters.clone());
    let (answer_tx, answer_rx) = mpsc::channel::<names::Answer>(names::QUEUE);
    let name_task = match config.dns.build() {
        Ok(lookups) => tokio::spawn(names::run(
            std::sync::Arc::new(lookups),
            name_rx,
            answer_tx,
            name_counters.clone(),
        )),
        // Addresses still count: only names go unresolved.
        Err(e) => {
            tracing::error!("{e}; host names in logs will not be resolved (set [dns] servers)");
            let none = crate::dns::Unavailable(e.to_string().into());
            tokio::spawn(names::run(
                std::sync::Arc::new(crate::dns::Lookups::new(none, config.dns.limits())),
                name_rx,
                answer_tx,
                name_counters.clone(),
            ))
        }
    };
    set.names = Some(name_queue);
    for (name, _, matcher) in sources {
        if let Err(e) = set.start(&name, &config, &positions, matcher, src_tx.clone()) {
            for h in set.take_all() {
                h.request_stop();
            }
            return Err(e.into());
        }
    }

    // Everything the agent keeps open is open now: give up the rest (pledge and
    // unveil on OpenBSD; nothing elsewhere).
    let sandbox = crate::sandbox::Sandbox::for_config(&config, &config_path);
    if let Err(e) = sandbox.enter() {
        for h in set.take_all() {
            h.request_stop();
        }
        return Err(DaemonError::Sandbox(e));
    }
    tracing::debug!(promises = %sandbox.promises, paths = sandbox.paths.len(), "sandbox entered");

    let metrics_task = metrics_listener.map(|listener| {
        tokio::spawn(crate::metrics::server::serve(
            listener,
            metrics.clone(),
            refresh_drops(job_tx.clone()),
            stop_server_rx.clone(),
        ))
    });
    let tally = engine_task::tally_for(&config);
    let task = EngineTask {
        offence_counters: metrics.offence_counters(&config),
        metrics,
        engine,
        config,
        config_path,
        sources: set,
        src_tx,
        enforcer: job_tx,
        started: Instant::now(),
        pending: Vec::new(),
        positions: Positions::default(),
        last_positions: positions,
        bans_total: 0,
        bans_lifted: 0,
        stop: false,
        sandbox,
        fleet,
        tally,
        offences_full: false,
    };
    let engine_task = tokio::spawn(task.run(src_rx, ctl_rx, own_rx, answer_rx, triggers));
    let server_task = tokio::spawn(async move {
        server.serve(ctl_tx, stop_server_rx).await;
        drop(server);
    });
    tracing::info!(
        bans = active_bans,
        took_ms = started.elapsed().as_secs_f64() * 1000.0,
        "log2drop running"
    );
    crate::systemd::ready();

    let flushed = engine_task.await.unwrap_or_else(|_| {
        tracing::error!("engine task failed");
        false
    });
    crate::systemd::stopping();
    // The sources are stopped: the queue's last sender is gone with them.
    name_task.abort();
    drop(own_watcher);
    let _ = stop_server_tx.send(true);
    if server_task.await.is_err() {
        tracing::error!("control server task failed");
    }
    // It holds a sender of the commit queue: it ends before the thread is joined.
    if let Some(t) = metrics_task
        && t.await.is_err()
    {
        tracing::error!("metrics endpoint task failed");
    }
    // The engine task dropped its sender: the commit thread finishes the queue.
    let joined = tokio::task::spawn_blocking(move || commit_thread.join()).await;
    if !matches!(joined, Ok(Ok(()))) {
        tracing::error!("the commit thread failed");
    }
    // After `flush` the kernel state is already gone (logged there); otherwise the
    // pinned maps and links keep enforcing every ban while the agent is down.
    if flushed {
        tracing::info!("log2drop stopped after flush; no kernel state left");
    } else {
        tracing::info!("log2drop stopped; kernel state left in place");
    }
    Ok(())
}

/// What a scrape of the metrics endpoint runs first: the commit thread reads the
/// backends' drop counters into the metrics (queued behind the batches before it).
fn refresh_drops(jobs: mpsc::Sender<Job>) -> crate::metrics::server::Refresh {
    std::sync::Arc::new(move || {
        let jobs = jobs.clone();
        Box::pin(async move {
            let (tx, rx) = tokio::sync::oneshot::channel();
            if jobs.send(Job::RefreshDrops(tx)).await.is_ok() {
                let _ = rx.await;
            }
        })
    })
}

/// How long one `agent.allow` host name may take to resolve.
const RESOLVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Resolves the host names in `agent.allow` (at start and reload). A name that
/// does not resolve is logged as an error and allows nothing until the next
/// reload; it does not stop the agent, so a DNS outage at boot cannot keep the
/// firewall down.
pub async fn resolve_allow_hosts(cfg: &Config) -> Vec<ipnet::IpNet> {
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
                nets.extend(addrs.map(|a| ipnet::IpNet::from(crate::addr::normalise(a.ip()))));
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

fn to_reply<T: serde::Serialize>(value: &T) -> Reply {
    Reply::ok(value)
}

/// The agent's log format, written to `writer`: tracing's default format (UTC
/// RFC 3339 time, level, target, message, fields). The built-in `recidive`
/// filter reads its `ban` lines, and its test runs lines this subscriber writes
/// (made by the enforcer's own logging), so a change here that breaks the
/// filter fails that test.
pub fn log_subscriber<W>(
    writer: W,
    ansi: bool,
    filter: tracing_subscriber::EnvFilter,
) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(ansi)
        .finish()
}

/// The agent's log as JSON lines (`--log-format json`), for journald and log
/// shippers: one object per event, `timestamp` (UTC RFC 3339) first, then
/// `level`, the event's fields at the top level (`message`, then the rest in
/// the order they are logged) and `target`. A ban is
/// `{"timestamp":"…","level":"INFO","message":"ban","address":"…","jail":"…",…}`;
/// the built-in `recidive` filter and `report --log` read these lines too (their
/// tests run lines this subscriber writes).
pub fn json_log_subscriber<W>(
    writer: W,
    filter: tracing_subscriber::EnvFilter,
) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_env_filter(filter)
        .with_writer(writer)
        .finish()
}

/// A log writer that keeps what it is given, for tests of the log formats.
#[cfg(test)]
#[derive(Clone, Default)]
pub(crate) struct LogCapture(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

#[cfg(test)]
impl LogCapture {
    /// Everything written so far.
    pub(crate) fn text(&self) -> String {
        let bytes = self.0.lock().expect("lock").clone();
        String::from_utf8(bytes).expect("utf-8 log")
    }
}

#[cfg(test)]
impl std::io::Write for LogCapture {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
impl<'w> tracing_subscriber::fmt::MakeWriter<'w> for LogCapture {
    type Writer = LogCapture;
    fn make_writer(&'w self) -> LogCapture {
        self.clone()
    }
}
