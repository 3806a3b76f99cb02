//! Sources of lines, and the thread that runs each one.
//!
//! Each source runs on its own blocking thread: it reads bytes, splits lines and
//! runs the matcher right there (no line ever crosses a thread), and sends only
//! offences to the engine over a bounded channel. A full channel blocks the reader,
//! so a slow engine slows reading down instead of dropping lines or growing memory.
//!
//! The source also sends its read position through the same channel, after the
//! offences read before it. When the engine task sees a position, every offence
//! before it has been handled, so persisting that position never skips a line.

pub mod compressed;
pub mod file;
pub mod line;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use notify::Watcher;
use tokio::sync::mpsc::Sender;

use self::file::{FileFollower, FilePosition, FollowOptions};

/// Default interval of the polling fallback: the upper bound on how late a line is
/// seen when inotify says nothing (network filesystems, missed events).
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(250);

/// How often a source reports its position while it keeps reading.
const POSITION_EVERY: Duration = Duration::from_secs(1);

/// Turns one line into an offence. Implemented over the filter module's matcher by
/// the daemon; tests use simple fakes.
pub trait LineMatcher: Send + 'static {
    /// The name of the filter that matched and the offending address, if any.
    fn match_line(&mut self, line: &[u8]) -> Option<(&str, IpAddr)>;
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
}

/// What a source thread sends to the engine task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceEvent {
    /// A matched line.
    Offence(Offence),
    /// Every line before this position has been sent.
    Position {
        /// Source name.
        source: Arc<str>,
        /// The followed path (the key under which the position is stored).
        path: PathBuf,
        /// Where to resume.
        position: FilePosition,
    },
}

/// Counters of one source, shared with whoever reports status.
#[derive(Debug, Default)]
pub struct SourceCounters {
    /// Lines read.
    pub lines: AtomicU64,
    /// Lines that matched a filter.
    pub offences: AtomicU64,
    /// Lines skipped for exceeding the length bound.
    pub long_lines: AtomicU64,
}

/// How to run one file source.
#[derive(Debug, Clone)]
pub struct FileSourceSpec {
    /// Source name from the config.
    pub name: Arc<str>,
    /// File to follow.
    pub path: PathBuf,
    /// Follower tunables.
    pub options: FollowOptions,
    /// Polling fallback interval.
    pub poll_interval: Duration,
    /// Saved position from the last run, if any.
    pub resume: Option<FilePosition>,
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
}

/// A running source. [`stop`](Self::stop) ends it; dropping it without stopping
/// leaves the thread to end when the engine's receiver goes away.
#[derive(Debug)]
pub struct SourceHandle {
    name: Arc<str>,
    path: PathBuf,
    stop: Arc<AtomicBool>,
    wake: SyncSender<()>,
    thread: Option<JoinHandle<()>>,
    counters: Arc<SourceCounters>,
}

impl SourceHandle {
    /// Source name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Followed path.
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

/// Starts following a file on its own thread, matching each line with `matcher` and
/// sending offences and positions to `tx`.
pub fn spawn_file_source<M: LineMatcher>(
    spec: FileSourceSpec,
    matcher: M,
    tx: Sender<SourceEvent>,
) -> Result<SourceHandle, SourceError> {
    let stop = Arc::new(AtomicBool::new(false));
    let (wake_tx, wake_rx) = sync_channel::<()>(1);
    let counters = Arc::new(SourceCounters::default());
    let watcher = watch_parent(&spec.name, &spec.path, wake_tx.clone());
    let name = spec.name.clone();
    let path = spec.path.clone();
    let thread = {
        let stop = stop.clone();
        let counters = counters.clone();
        std::thread::Builder::new()
            .name(format!("source-{}", spec.name))
            .spawn(move || {
                // The watcher lives as long as the thread that it wakes.
                let _watcher = watcher;
                run_file_source(spec, matcher, tx, &stop, &wake_rx, &counters);
            })
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
        thread: Some(thread),
        counters,
    })
}

/// Watches the file's directory (so creation and renames are seen too) and wakes the
/// source on any event naming the file. Failure only costs latency: polling remains.
fn watch_parent(
    name: &str,
    path: &Path,
    wake: SyncSender<()>,
) -> Option<notify::RecommendedWatcher> {
    let file_name = path.file_name()?.to_os_string();
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let handler = move |res: notify::Result<notify::Event>| {
        let relevant = match &res {
            Ok(ev) => ev
                .paths
                .iter()
                .any(|p| p.file_name() == Some(file_name.as_os_str())),
            // An error may mean missed events: poll now.
            Err(_) => true,
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
    mut matcher: M,
    tx: Sender<SourceEvent>,
    stop: &AtomicBool,
    wake: &Receiver<()>,
    counters: &SourceCounters,
) {
    let name = spec.name.clone();
    let mut follower = FileFollower::new(spec.path.clone(), spec.options, spec.resume);
    let mut last_error: Option<String> = None;
    let mut sent_position = spec.resume;
    let mut sent_at = Instant::now();
    let mut engine_gone = false;
    tracing::info!(source = %name, path = %spec.path.display(), "following");
    loop {
        let stopping = stop.load(Ordering::Acquire);
        let result = follower.poll(&mut |line| {
            // A cut line is not evidence (see `line`): counted, never matched.
            if engine_gone || line.truncated {
                return;
            }
            if let Some((filter, addr)) = matcher.match_line(line.bytes) {
                counters.offences.fetch_add(1, Ordering::Relaxed);
                let ev = SourceEvent::Offence(Offence {
                    source: name.clone(),
                    filter: Arc::from(filter),
                    addr,
                    at: SystemTime::now(),
                });
                // Blocks while the engine is behind: back-pressure, not loss.
                if tx.blocking_send(ev).is_err() {
                    engine_gone = true;
                }
            }
        });
        let stats = follower.stats();
        counters.lines.store(stats.lines, Ordering::Relaxed);
        counters
            .long_lines
            .store(stats.long_lines, Ordering::Relaxed);
        match result {
            Ok(_) => {
                if last_error.take().is_some() {
                    tracing::info!(source = %name, path = %spec.path.display(), "readable again");
                }
            }
            Err(e) => {
                let msg = e.to_string();
                if last_error.as_deref() != Some(msg.as_str()) {
                    tracing::warn!(source = %name, error = %msg, "cannot read, will retry");
                    last_error = Some(msg);
                }
            }
        }
        let position = follower.position();
        if !engine_gone
            && position.is_some()
            && position != sent_position
            && (stopping || sent_at.elapsed() >= POSITION_EVERY)
            && let Some(p) = position
        {
            let ev = SourceEvent::Position {
                source: name.clone(),
                path: spec.path.clone(),
                position: p,
            };
            if tx.blocking_send(ev).is_err() {
                engine_gone = true;
            }
            sent_position = position;
            sent_at = Instant::now();
        }
        if stopping || engine_gone {
            break;
        }
        // Wake on inotify, or after the interval, whichever first; a position not yet
        // sent is sent once the interval has passed even if nothing new arrives.
        match wake.recv_timeout(spec.poll_interval) {
            Ok(()) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    tracing::debug!(source = %name, "source stopped");
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::Ipv4Addr;

    /// Matches lines `bad ADDR`.
    struct Fake;
    impl LineMatcher for Fake {
        fn match_line(&mut self, line: &[u8]) -> Option<(&str, IpAddr)> {
            let rest = line.strip_prefix(b"bad ")?;
            let addr = std::str::from_utf8(rest).ok()?.parse().ok()?;
            Some(("fake", addr))
        }
    }

    fn append(path: &Path, text: &str) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .expect("open");
        f.write_all(text.as_bytes()).expect("write");
    }

    #[tokio::test]
    async fn thread_sends_offences_then_position_and_stops() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("auth.log");
        append(&path, "bad 192.0.2.1\n");
        let (tx, mut rx) = tokio::sync::mpsc::channel(4);
        let handle = spawn_file_source(
            FileSourceSpec {
                name: Arc::from("auth"),
                path: path.clone(),
                options: FollowOptions::default(),
                poll_interval: Duration::from_millis(20),
                resume: None,
            },
            Fake,
            tx,
        )
        .expect("spawn");
        // Give the thread its first poll (at end of file), then append.
        tokio::time::sleep(Duration::from_millis(100)).await;
        append(&path, "good 192.0.2.2\nbad 198.51.100.7\n");
        let ev = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("offence in time")
            .expect("channel open");
        match ev {
            SourceEvent::Offence(o) => {
                assert_eq!(o.addr, IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7)));
                assert_eq!(&*o.filter, "fake");
                assert_eq!(&*o.source, "auth");
            }
            other => panic!("expected an offence, got {other:?}"),
        }
        let stopper = tokio::task::spawn_blocking(move || handle.stop());
        let ev = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("position in time")
            .expect("channel open");
        match ev {
            SourceEvent::Position {
                position, path: p, ..
            } => {
                assert_eq!(p, path);
                let len = std::fs::metadata(&path).expect("meta").len();
                assert_eq!(position.offset, len);
            }
            other => panic!("expected a position, got {other:?}"),
        }
        stopper.await.expect("stop");
    }
}
