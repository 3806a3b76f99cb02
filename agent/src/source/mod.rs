//! Sources of lines, and the thread that runs each one.
//!
//! Each source runs on its own blocking thread: it reads bytes, splits bounded
//! lines ([`line`]) and runs the matcher right there (no line ever crosses a
//! thread), and sends only offences to the engine over a bounded channel. A full
//! channel blocks the reader, so a slow engine slows reading down instead of
//! dropping lines or growing memory.
//!
//! The per-line work is kept to the matcher: a file source sends its offences in
//! batches (one channel message per poll or per [`OFFENCES_PER_EVENT`]
//! offences, not one per line), publishes its counters once per poll and reads
//! the wall clock once per [`LINES_PER_CLOCK`] lines and after every wait, so a
//! backlog is read at the speed of matching.
//!
//! Kinds: files and globs ([`files`], [`file`]), the systemd journal
//! ([`journal`]), a command's output and stdin ([`process`]). Compressed files for
//! one-shot reading are in [`compressed`].
//!
//! A source also sends where it is (file positions, journal cursors) through the
//! same channel, after the offences read before it. When the engine task sees a
//! position, every offence before it has been handled, so persisting that position
//! never skips a line.

pub mod compressed;
pub mod file;
pub mod files;
pub mod glob;
#[cfg(target_os = "linux")]
pub mod journal;
pub mod line;
pub mod position;
pub mod process;

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use notify::Watcher;
use tokio::sync::mpsc::Sender;

use self::file::{FilePosition, FollowOptions};
use self::files::FileSet;
use self::glob::Pattern;
use self::line::Line;
pub use self::position::{PositionKey, Positions, SourcePosition};
use crate::filter::Captures;

/// Default interval of the polling fallback: the upper bound on how late a line is
/// seen when inotify says nothing (network filesystems, missed events).
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(250);

/// How often a source reports its position while it keeps reading and finds no
/// offence (after offences it reports at once).
const POSITION_EVERY: Duration = Duration::from_secs(1);

/// Most offences in one [`SourceEvent::Offences`]: the channel's bound, in
/// offences, is its capacity times this.
pub const OFFENCES_PER_EVENT: usize = 64;

/// Lines matched with one reading of the wall clock while a file source reads
/// on; the clock is read afresh after every wait (a poll, a full channel).
pub const LINES_PER_CLOCK: u32 = 256;

/// Lines read between two updates of the shared counters while reading on.
const LINES_PER_COUNT: u64 = 64 * 1024;

/// Turns one line into an offence. Implemented over the filter module's matcher by
/// the daemon; tests use simple fakes.
pub trait LineMatcher: Send + 'static {
    /// The name of the filter that matched and the offending address, if any.
    /// `now` is the time the line was read (the time of an offence without a
    /// time of its own).
    fn match_line(&mut self, line: &[u8], now: SystemTime) -> Option<(Arc<str>, IpAddr)>;

    /// An offence that no line of its own gave: a session that ended when its
    /// window passed or its table was full (see `filter::session`). Asked after
    /// every line until it returns `None`.
    fn deferred(&mut self) -> Option<(Arc<str>, IpAddr)> {
        None
    }

    /// The named captures of the line [`match_line`](Self::match_line) just
    /// matched (asked only after a match, so lines that miss never pay for them).
    fn take_captures(&mut self) -> Captures {
        Captures::new()
    }
}

/// An address misbehaved, according to a filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offence {
    /// Source the line came from.
    pub source: Arc<str>,
    /// Filter that matched.
    pub filter: Arc<str>,
    /// The offending address.
    pub addr: IpAddr,
    /// When the line was read.
    pub at: SystemTime,
    /// The line's named captures (`user`...), bounded; empty for an offence a
    /// session released without a line of its own.
    pub captures: Captures,
}

/// What a source thread sends to the engine task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceEvent {
    /// Matched lines, in the order they were read.
    Offences(Vec<Offence>),
    /// Every line before this position has been sent.
    Position(SourcePosition),
}

/// Counters of one source, shared with whoever reports status.
#[derive(Debug, Default)]
pub struct SourceCounters {
    /// Lines read, cut ones included.
    pub lines: AtomicU64,
    /// Bytes of those lines, line ends not counted (cut lines: what was kept).
    pub bytes: AtomicU64,
    /// Lines that matched a filter.
    pub offences: AtomicU64,
    /// Lines cut at the length bound (counted, never matched).
    pub long_lines: AtomicU64,
}

/// How to run one file source.
#[derive(Debug, Clone)]
pub struct FileSourceSpec {
    /// Source name from the config.
    pub name: Arc<str>,
    /// File or glob to follow.
    pub path: PathBuf,
    /// Follower tunables.
    pub options: FollowOptions,
    /// Polling fallback interval.
    pub poll_interval: Duration,
    /// Saved positions from the last run, by path (and by
    /// [`files::rotated_key`] for rotated files still open then).
    pub resume: HashMap<PathBuf, FilePosition>,
}

/// Errors starting a source.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The thread could not be spawned.
    #[error("source {name}: cannot start its thread: {source}")]
    Spawn {
        /// Source name.
        name: Arc<str>,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The path is not a valid glob (validation should have caught it).
    #[error("source {name}: {source}")]
    Glob {
        /// Source name.
        name: Arc<str>,
        /// Why.
        #[source]
        source: glob::GlobError,
    },
    /// This kind of source does not exist on this system (validation should have
    /// caught it).
    #[error("source {name}: {what} is not available on this system")]
    Unsupported {
        /// Source name.
        name: Arc<str>,
        /// The kind of source.
        what: &'static str,
    },
}

/// A running source. [`stop`](Self::stop) ends it; dropping it without stopping
/// leaves the thread to end when the engine's receiver goes away.
#[derive(Debug)]
pub struct SourceHandle {
    name: Arc<str>,
    path: PathBuf,
    stop: Arc<AtomicBool>,
    wake: SyncSender<()>,
    /// The child process of a journal or command source, killed on stop so the
    /// thread's blocking read ends.
    child: Arc<Mutex<Option<u32>>>,
    thread: Option<JoinHandle<()>>,
    counters: Arc<SourceCounters>,
    /// The files a file source follows (none for other kinds).
    files: Option<Pattern>,
}

impl SourceHandle {
    /// Whether this is a file source none of whose files exists yet: it reads
    /// them as soon as one appears (`status` shows it as waiting).
    pub fn waiting(&self) -> bool {
        self.files.as_ref().is_some_and(|p| !p.any_exists())
    }

    /// Source name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Followed path or glob (a description such as `journal` for other kinds).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Live counters, shared with the thread.
    pub fn counters(&self) -> Arc<SourceCounters> {
        self.counters.clone()
    }

    /// Asks the thread to stop after its current poll, without waiting. The thread
    /// sends its final position first (if the engine still listens), then drops its
    /// sender, so the engine knows every line it read has arrived.
    pub fn request_stop(&self) {
        self.stop.store(true, Ordering::Release);
        let _ = self.wake.try_send(());
        process::terminate(&self.child);
    }

    /// Stops the thread and waits for it. The engine must keep receiving meanwhile,
    /// or the thread may block on a full channel.
    pub fn stop(mut self) {
        self.request_stop();
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            tracing::error!(source = %self.name, "source thread panicked");
        }
    }
}

/// The wall clock as the per-line path reads it: the same reading for up to
/// [`LINES_PER_CLOCK`] lines, and a fresh one after [`expire`](Self::expire).
#[derive(Debug)]
struct LineClock {
    now: SystemTime,
    left: u32,
}

impl LineClock {
    fn new() -> Self {
        Self {
            now: SystemTime::UNIX_EPOCH,
            left: 0,
        }
    }

    fn now(&mut self) -> SystemTime {
        if self.left == 0 {
            self.now = SystemTime::now();
            self.left = LINES_PER_CLOCK;
        }
        self.left -= 1;
        self.now
    }

    /// The next line reads the clock again (after a wait of any kind).
    fn expire(&mut self) {
        self.left = 0;
    }
}

/// Counts kept on the source thread and published to [`SourceCounters`] now
/// and then: no shared write per line.
#[derive(Debug, Default)]
struct LocalCounts {
    lines: u64,
    bytes: u64,
    offences: u64,
    long_lines: u64,
}

/// How a source hands offences over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pace {
    /// Each offence at once, with a fresh clock per line: sources whose lines
    /// come one by one from a pipe (journal, commands, stdin), where the next
    /// line may be long in coming.
    Immediate,
    /// In batches, sent when full and when the source calls
    /// [`Emitter::flush`] (after every poll): file sources.
    Batched,
}

/// What every source thread shares: matching a line, counting, sending.
struct Emitter<M> {
    name: Arc<str>,
    matcher: M,
    tx: Sender<SourceEvent>,
    counters: Arc<SourceCounters>,
    engine_gone: bool,
    pace: Pace,
    clock: LineClock,
    batch: Vec<Offence>,
    counts: LocalCounts,
    /// Offences went to the engine since [`Emitter::take_offences_sent`]: the
    /// source reports its position right after them, so the position that covers
    /// the lines of a ban is saved with the ban (or moments later), and a crash
    /// does not read those lines again once the ban has ended.
    offences_sent: bool,
}

impl<M: LineMatcher> Emitter<M> {
    fn new(
        name: Arc<str>,
        matcher: M,
        tx: Sender<SourceEvent>,
        counters: Arc<SourceCounters>,
        pace: Pace,
    ) -> Self {
        Self {
            name,
            matcher,
            tx,
            counters,
            engine_gone: false,
            pace,
            clock: LineClock::new(),
            batch: Vec::new(),
            counts: LocalCounts::default(),
            offences_sent: false,
        }
    }

    fn line(&mut self, line: Line<'_>) {
        self.counts.lines += 1;
        self.counts.bytes += line.bytes.len() as u64;
        // A cut line is not evidence (see `line`): counted, never matched.
        if line.truncated {
            self.counts.long_lines += 1;
        } else if !self.engine_gone {
            let now = self.clock.now();
            let mut next = self
                .matcher
                .match_line(line.bytes, now)
                .map(|(filter, addr)| (filter, addr, self.matcher.take_captures()));
            while let Some((filter, addr, captures)) = next.take().or_else(|| {
                self.matcher
                    .deferred()
                    .map(|(f, a)| (f, a, Captures::new()))
            }) {
                self.counts.offences += 1;
                self.batch.push(Offence {
                    source: self.name.clone(),
                    filter,
                    addr,
                    at: now,
                    captures,
                });
                if self.pace == Pace::Immediate || self.batch.len() >= OFFENCES_PER_EVENT {
                    self.send_batch();
                }
            }
        }
        if self.pace == Pace::Immediate {
            self.clock.expire();
            self.publish();
        } else if self.counts.lines.is_multiple_of(LINES_PER_COUNT) {
            self.publish();
        }
    }

    /// Sends the offences batched so far and publishes the counters; the next
    /// line reads the clock afresh.
    fn flush(&mut self) {
        self.send_batch();
        self.publish();
        self.clock.expire();
    }

    fn send_batch(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(OFFENCES_PER_EVENT));
        self.send_now(SourceEvent::Offences(batch));
        self.offences_sent = true;
        // The send may have waited for the engine.
        self.clock.expire();
    }

    /// Moves the local counts to the shared counters.
    fn publish(&mut self) {
        let c = std::mem::take(&mut self.counts);
        if c.lines > 0 {
            self.counters.lines.fetch_add(c.lines, Ordering::Relaxed);
            self.counters.bytes.fetch_add(c.bytes, Ordering::Relaxed);
        }
        if c.offences > 0 {
            self.counters
                .offences
                .fetch_add(c.offences, Ordering::Relaxed);
        }
        if c.long_lines > 0 {
            self.counters
                .long_lines
                .fetch_add(c.long_lines, Ordering::Relaxed);
        }
    }

    /// Sends `ev` after the offences read before it. Blocks while the engine is
    /// behind: back-pressure, not loss.
    /// Whether offences were sent since the last call.
    fn take_offences_sent(&mut self) -> bool {
        std::mem::take(&mut self.offences_sent)
    }

    fn send(&mut self, ev: SourceEvent) {
        self.flush();
        self.send_now(ev);
    }

    fn send_now(&mut self, ev: SourceEvent) {
        if !self.engine_gone && self.tx.blocking_send(ev).is_err() {
            self.engine_gone = true;
        }
    }
}

struct Thread {
    stop: Arc<AtomicBool>,
    wake_tx: SyncSender<()>,
    wake_rx: Receiver<()>,
    child: Arc<Mutex<Option<u32>>>,
    counters: Arc<SourceCounters>,
}

impl Thread {
    fn new() -> Self {
        let (wake_tx, wake_rx) = sync_channel::<()>(1);
        Self {
            stop: Arc::new(AtomicBool::new(false)),
            wake_tx,
            wake_rx,
            child: Arc::new(Mutex::new(None)),
            counters: Arc::new(SourceCounters::default()),
        }
    }

    /// Spawns `body` on a thread named after the source.
    fn spawn(
        self,
        name: Arc<str>,
        path: PathBuf,
        body: impl FnOnce(Receiver<()>, Arc<AtomicBool>, Arc<Mutex<Option<u32>>>) + Send + 'static,
    ) -> Result<SourceHandle, SourceError> {
        let Thread {
            stop,
            wake_tx,
            wake_rx,
            child,
            counters,
        } = self;
        let thread = {
            let stop = stop.clone();
            let child = child.clone();
            std::thread::Builder::new()
                .name(format!("source-{name}"))
                .spawn(move || body(wake_rx, stop, child))
                .map_err(|source| SourceError::Spawn {
                    name: name.clone(),
                    source,
                })?
        };
        Ok(SourceHandle {
            name,
            path,
            stop,
            wake: wake_tx,
            child,
            thread: Some(thread),
            counters,
            files: None,
        })
    }
}

/// Starts following a file or glob on its own thread, matching each line with
/// `matcher` and sending offences and positions to `tx`.
pub fn spawn_file_source<M: LineMatcher>(
    spec: FileSourceSpec,
    matcher: M,
    tx: Sender<SourceEvent>,
) -> Result<SourceHandle, SourceError> {
    let pattern = Pattern::new(&spec.path).map_err(|source| SourceError::Glob {
        name: spec.name.clone(),
        source,
    })?;
    let t = Thread::new();
    let watcher = watch_dir(&spec.name, &pattern, t.wake_tx.clone());
    let emitter = Emitter::new(
        spec.name.clone(),
        matcher,
        tx,
        t.counters.clone(),
        Pace::Batched,
    );
    let files = pattern.clone();
    let mut handle = t.spawn(
        spec.name.clone(),
        spec.path.clone(),
        move |wake, stop, _| {
            // The watcher lives as long as the thread that it wakes.
            let _watcher = watcher;
            run_file_source(spec, pattern, emitter, &stop, &wake);
        },
    )?;
    handle.files = Some(files);
    Ok(handle)
}

/// Watches the directory where the pattern's files appear (so creation and
/// renames are seen too) and wakes the source on any event there. Failure only
/// costs latency: polling remains.
fn watch_dir(
    name: &str,
    pattern: &Pattern,
    wake: SyncSender<()>,
) -> Option<notify::RecommendedWatcher> {
    let dir = pattern.watch_dir();
    let file_name = pattern
        .is_literal()
        .then(|| pattern.path().file_name().map(|n| n.to_os_string()))
        .flatten();
    let handler = move |res: notify::Result<notify::Event>| {
        let relevant = match (&res, &file_name) {
            // Rotated siblings share the file's name as a prefix.
            (Ok(ev), Some(name)) => ev.paths.iter().any(|p| {
                p.file_name()
                    .is_some_and(|n| n.as_encoded_bytes().starts_with(name.as_encoded_bytes()))
            }),
            (Ok(_), None) => true,
            // An error may mean missed events: poll now.
            (Err(_), _) => true,
        };
        if relevant {
            match wake.try_send(()) {
                Ok(()) | Err(TrySendError::Full(())) | Err(TrySendError::Disconnected(())) => {}
            }
        }
    };
    let mut watcher = match notify::recommended_watcher(handler) {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(source = name, error = %e, "inotify unavailable, polling only");
            return None;
        }
    };
    if let Err(e) = watcher.watch(&dir, notify::RecursiveMode::NonRecursive) {
        tracing::warn!(source = name, dir = %dir.display(), error = %e,
            "cannot watch directory, polling only");
        return None;
    }
    Some(watcher)
}

fn run_file_source<M: LineMatcher>(
    spec: FileSourceSpec,
    pattern: Pattern,
    mut emitter: Emitter<M>,
    stop: &AtomicBool,
    wake: &Receiver<()>,
) {
    let name = spec.name.clone();
    let mut set = FileSet::new(pattern, spec.options, spec.resume);
    let mut errors: HashMap<PathBuf, String> = HashMap::new();
    let mut sent: HashMap<PathBuf, FilePosition> = HashMap::new();
    let mut sent_at = Instant::now();
    tracing::info!(source = %name, path = %spec.path.display(), "following");
    loop {
        let stopping = stop.load(Ordering::Acquire);
        let mut failed: Vec<(PathBuf, String)> = Vec::new();
        set.poll_at(Instant::now(), &mut |line| emitter.line(line), &mut |e| {
            failed.push((e.path.clone(), e.to_string()))
        });
        emitter.flush();
        for (path, msg) in &failed {
            if errors.get(path) != Some(msg) {
                tracing::warn!(source = %name, error = %msg, "cannot read, will retry");
                errors.insert(path.clone(), msg.clone());
            }
        }
        errors.retain(|p, _| {
            let still = failed.iter().any(|(f, _)| f == p);
            if !still {
                tracing::info!(source = %name, path = %p.display(), "readable again");
            }
            still
        });
        // Right after offences, else every POSITION_EVERY: see `offences_sent`.
        let offences_sent = emitter.take_offences_sent();
        if stopping || offences_sent || sent_at.elapsed() >= POSITION_EVERY {
            for (path, position) in set.positions() {
                if sent.get(&path) != Some(&position) {
                    sent.insert(path.clone(), position);
                    emitter.send(SourceEvent::Position(SourcePosition::File {
                        path,
                        at: position,
                    }));
                }
            }
            sent_at = Instant::now();
        }
        if stopping || emitter.engine_gone {
            break;
        }
        // Wake on inotify, or after the interval, whichever first.
        match wake.recv_timeout(spec.poll_interval) {
            Ok(()) => set.rescan_soon(),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    tracing::debug!(source = %name, "source stopped");
}

/// How to run a journal source.
#[cfg(target_os = "linux")]
#[derive(Debug, Clone)]
pub struct JournalSourceSpec {
    /// Source name from the config.
    pub name: Arc<str>,
    /// What to run and where to start.
    pub options: journal::JournalOptions,
    /// Cursor saved by the last run.
    pub cursor: Option<String>,
}

/// Starts reading the journal through journalctl on its own thread.
#[cfg(target_os = "linux")]
pub fn spawn_journal_source<M: LineMatcher>(
    spec: JournalSourceSpec,
    matcher: M,
    tx: Sender<SourceEvent>,
) -> Result<SourceHandle, SourceError> {
    let t = Thread::new();
    let emitter = Emitter::new(
        spec.name.clone(),
        matcher,
        tx,
        t.counters.clone(),
        Pace::Immediate,
    );
    t.spawn(
        spec.name.clone(),
        PathBuf::from("journal"),
        move |wake, stop, child| {
            journal::run(spec, emitter, &stop, &wake, &child);
        },
    )
}

/// How to run a command source.
#[derive(Debug, Clone)]
pub struct CommandSourceSpec {
    /// Source name from the config.
    pub name: Arc<str>,
    /// Program and arguments (no shell).
    pub argv: Vec<String>,
    /// Longest line.
    pub max_line: usize,
}

/// Starts running a command and reading its output on its own thread; the command
/// is started again, with backoff, whenever it exits.
pub fn spawn_command_source<M: LineMatcher>(
    spec: CommandSourceSpec,
    matcher: M,
    tx: Sender<SourceEvent>,
) -> Result<SourceHandle, SourceError> {
    let t = Thread::new();
    let emitter = Emitter::new(
        spec.name.clone(),
        matcher,
        tx,
        t.counters.clone(),
        Pace::Immediate,
    );
    let label = PathBuf::from(spec.argv.first().map_or("command", String::as_str));
    t.spawn(spec.name.clone(), label, move |wake, stop, child| {
        process::run_command(spec, emitter, &stop, &wake, &child);
    })
}

/// Starts reading the agent's standard input on its own thread, until it closes.
pub fn spawn_stdin_source<M: LineMatcher>(
    name: Arc<str>,
    max_line: usize,
    matcher: M,
    tx: Sender<SourceEvent>,
) -> Result<SourceHandle, SourceError> {
    let t = Thread::new();
    let emitter = Emitter::new(
        name.clone(),
        matcher,
        tx,
        t.counters.clone(),
        Pace::Immediate,
    );
    t.spawn(name, PathBuf::from("-"), move |_wake, stop, _| {
        process::run_reader(std::io::stdin(), max_line, emitter, &stop);
    })
}

#[cfg(test)]
mod tests;

/// Starts the source `cfg` describes (already validated) under `name`, resuming
/// from what `saved` holds for it (every saved position; each kind of source
/// takes its own).
pub fn spawn_configured<M: LineMatcher>(
    name: &str,
    cfg: &crate::config::SourceConfig,
    saved: &Positions,
    matcher: M,
    tx: Sender<SourceEvent>,
) -> Result<SourceHandle, SourceError> {
    use crate::config::SourceKind;
    let name: Arc<str> = Arc::from(name);
    let kind = cfg.resolved_kind();
    if cfg.kind == SourceKind::Auto {
        match kind {
            SourceKind::File => tracing::info!(source = %name, path = %cfg.path.display(),
                "type auto: the file exists, following it"),
            _ => tracing::info!(source = %name, path = %cfg.path.display(),
                matches = ?cfg.matches.as_deref().unwrap_or_default(),
                "type auto: no such file, reading the journal instead"),
        }
    }
    match kind {
        SourceKind::File => {
            let pattern = Pattern::new(&cfg.path).map_err(|source| SourceError::Glob {
                name: name.clone(),
                source,
            })?;
            if !pattern.any_exists() {
                tracing::warn!(source = %name, path = %cfg.path.display(),
                    "no such file yet: waiting for it to appear (status shows the source as waiting); \
                     if the service logs only to the journal (Debian 12 without rsyslog), \
                     use type = \"auto\" or \"journal\" with match = [\"_SYSTEMD_UNIT=...\"]");
            }
            let resume = saved.files_for(&pattern);
            let spec = FileSourceSpec {
                name,
                path: cfg.path.clone(),
                options: FollowOptions {
                    max_line: cfg.max_line_bytes,
                    start_at: cfg.start_at(),
                    ..FollowOptions::default()
                },
                poll_interval: DEFAULT_POLL_INTERVAL,
                resume,
            };
            spawn_file_source(spec, matcher, tx)
        }
        #[cfg(not(target_os = "linux"))]
        SourceKind::Journal => Err(SourceError::Unsupported {
            name,
            what: "the systemd journal",
        }),
        #[cfg(target_os = "linux")]
        SourceKind::Journal => spawn_journal_source(
            JournalSourceSpec {
                cursor: saved.cursor(&name),
                name,
                options: journal::JournalOptions {
                    program: cfg.journalctl_program(),
                    matches: cfg.matches.clone().unwrap_or_default(),
                    start: cfg.start_at(),
                    max_line: cfg.max_line_bytes,
                },
            },
            matcher,
            tx,
        ),
        SourceKind::Command => spawn_command_source(
            CommandSourceSpec {
                name,
                argv: cfg.command.clone().unwrap_or_default(),
                max_line: cfg.max_line_bytes,
            },
            matcher,
            tx,
        ),
        SourceKind::Stdin => spawn_stdin_source(name, cfg.max_line_bytes, matcher, tx),
        // Resolved above.
        SourceKind::Auto => unreachable!("resolved_kind never returns Auto"),
    }
}
