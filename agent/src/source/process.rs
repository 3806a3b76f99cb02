//! Lines from other programs: a `command` source's child process (argv, never a
//! shell, started again with backoff whenever it exits) and the agent's stdin.
//! The journal source runs journalctl through the same pieces.
//!
//! A thread blocked reading a pipe cannot see a stop request, so stopping kills
//! the child's process group (the read then ends), and stdin is read on a helper
//! thread the source thread can walk away from.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, sync_channel};
use std::time::{Duration, Instant};

use super::line::{Line, LineSplitter};
use super::{CommandSourceSpec, Emitter, LineMatcher};

/// First delay before a child that exited is started again.
pub const BACKOFF_MIN: Duration = Duration::from_secs(1);
/// Longest delay between restarts.
pub const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// A child that ran at least this long starts the backoff over.
const RAN_LONG_ENOUGH: Duration = Duration::from_secs(60);

const READ_CHUNK: usize = 64 * 1024;

/// Restart delays: doubling from [`BACKOFF_MIN`] up to [`BACKOFF_MAX`].
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self { next: BACKOFF_MIN }
    }
}

impl Backoff {
    /// The delay to wait now; the following one doubles.
    pub fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(BACKOFF_MAX);
        d
    }

    /// After a child ran long enough, start again from the shortest delay.
    pub fn reset(&mut self) {
        self.next = BACKOFF_MIN;
    }
}

/// Sends SIGTERM to the process group of the child recorded in `child`, if any.
pub(super) fn terminate(child: &Mutex<Option<u32>>) {
    let pid = match child.lock() {
        Ok(g) => *g,
        Err(poisoned) => *poisoned.into_inner(),
    };
    if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
        // The child leads its own process group: stop its children too, so no
        // grandchild keeps the pipe open.
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
}

fn set_child(child: &Mutex<Option<u32>>, pid: Option<u32>) {
    match child.lock() {
        Ok(mut g) => *g = pid,
        Err(poisoned) => *poisoned.into_inner() = pid,
    }
}

/// Starts `argv` (no shell) with stdout piped, in its own process group.
pub(super) fn spawn_child(argv: &[String]) -> std::io::Result<Child> {
    use std::os::unix::process::CommandExt;
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "empty argv"))?;
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .process_group(0)
        .spawn()
}

/// Runs a child until it exits (or is killed), handing its output's lines to
/// `sink`; records its pid in `child` meanwhile. Returns how it ended.
pub(super) fn run_child(
    argv: &[String],
    max_line: usize,
    stop: &AtomicBool,
    child: &Mutex<Option<u32>>,
    sink: &mut dyn FnMut(Line<'_>),
) -> std::io::Result<std::process::ExitStatus> {
    let mut c = spawn_child(argv)?;
    set_child(child, Some(c.id()));
    if stop.load(Ordering::Acquire) {
        // A stop that came before the pid was recorded.
        terminate(child);
    }
    if let Some(mut out) = c.stdout.take() {
        let mut splitter = LineSplitter::new(max_line);
        let mut buf = vec![0; READ_CHUNK];
        loop {
            match out.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    splitter.push(&buf[..n], sink);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    tracing::warn!(program = %argv[0], error = %e, "reading the output failed");
                    break;
                }
            }
        }
        splitter.finish(sink);
    }
    let status = c.wait();
    set_child(child, None);
    status
}

/// Waits `delay`, or less if a stop wakes the thread. Returns whether to go on.
pub(super) fn pause(delay: Duration, stop: &AtomicBool, wake: &Receiver<()>) -> bool {
    if stop.load(Ordering::Acquire) {
        return false;
    }
    match wake.recv_timeout(delay) {
        Ok(()) | Err(RecvTimeoutError::Timeout) => !stop.load(Ordering::Acquire),
        Err(RecvTimeoutError::Disconnected) => false,
    }
}

/// The `command` source: runs the program, restarting it with backoff.
pub(super) fn run_command<M: LineMatcher>(
    spec: CommandSourceSpec,
    mut emitter: Emitter<M>,
    stop: &AtomicBool,
    wake: &Receiver<()>,
    child: &Mutex<Option<u32>>,
) {
    let mut backoff = Backoff::default();
    let program = spec.argv.first().cloned().unwrap_or_default();
    tracing::info!(source = %spec.name, program = %program, "running");
    loop {
        let started = Instant::now();
        match run_child(&spec.argv, spec.max_line, stop, child, &mut |l| {
            emitter.line(l)
        }) {
            Ok(status) if !stop.load(Ordering::Acquire) => {
                tracing::warn!(source = %spec.name, program = %program, %status, "command exited; starting it again")
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(source = %spec.name, program = %program, error = %e, "cannot start command; retrying")
            }
        }
        if emitter.engine_gone {
            break;
        }
        if started.elapsed() >= RAN_LONG_ENOUGH {
            backoff.reset();
        }
        if !pause(backoff.next_delay(), stop, wake) {
            break;
        }
    }
    tracing::debug!(source = %spec.name, "source stopped");
}

/// Reads `input` to its end (stdin): on a helper thread, so a stop does not wait
/// for input that may never come.
pub(super) fn run_reader<R: Read + Send + 'static, M: LineMatcher>(
    mut input: R,
    max_line: usize,
    mut emitter: Emitter<M>,
    stop: &AtomicBool,
) {
    let (tx, rx) = sync_channel::<Vec<u8>>(4);
    let reader = std::thread::Builder::new()
        .name(format!("stdin-{}", emitter.name))
        .spawn(move || {
            loop {
                let mut buf = vec![0; READ_CHUNK];
                match input.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        buf.truncate(n);
                        if tx.send(buf).is_err() {
                            break;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "reading stdin failed");
                        break;
                    }
                }
            }
        });
    if let Err(e) = reader {
        tracing::error!(source = %emitter.name, error = %e, "cannot start the stdin reader");
        return;
    }
    let mut splitter = LineSplitter::new(max_line);
    loop {
        if stop.load(Ordering::Acquire) || emitter.engine_gone {
            return;
        }
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(chunk) => {
                splitter.push(&chunk, &mut |l| emitter.line(l));
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    splitter.finish(&mut |l| emitter.line(l));
    tracing::info!(source = %emitter.name, "stdin closed");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_maximum_and_resets() {
        let mut b = Backoff::default();
        let delays: Vec<u64> = (0..9).map(|_| b.next_delay().as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        b.reset();
        assert_eq!(b.next_delay(), BACKOFF_MIN);
    }

    #[test]
    fn child_output_is_split_into_lines_and_no_shell_is_involved() {
        let stop = AtomicBool::new(false);
        let child = Mutex::new(None);
        let mut got = Vec::new();
        // With a shell the `;` would run a second command.
        let argv = vec!["echo".to_owned(), "a b; echo c".to_owned()];
        let status = run_child(&argv, 1024, &stop, &child, &mut |l| {
            got.push(String::from_utf8_lossy(l.bytes).into_owned())
        })
        .expect("run");
        assert!(status.success());
        assert_eq!(got, ["a b; echo c"]);
        assert_eq!(*child.lock().expect("lock"), None);
    }

    #[test]
    fn missing_program_is_an_error() {
        let stop = AtomicBool::new(false);
        let child = Mutex::new(None);
        let argv = vec!["/nonexistent/log2drop-test-program".to_owned()];
        let err = run_child(&argv, 1024, &stop, &child, &mut |_| {}).expect_err("missing");
        assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    }

    #[test]
    fn terminate_ends_a_child_and_its_children() {
        let stop = AtomicBool::new(false);
        let child = std::sync::Arc::new(Mutex::new(None));
        let c2 = child.clone();
        let killer = std::thread::spawn(move || {
            for _ in 0..100 {
                if c2.lock().expect("lock").is_some() {
                    terminate(&c2);
                    return true;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            false
        });
        let t0 = Instant::now();
        // A grandchild (sleep) holds the pipe too; the group kill ends both.
        let argv: Vec<String> = ["sh", "-c", "sleep 30 & sleep 30"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let status = run_child(&argv, 1024, &stop, &child, &mut |_| {}).expect("run");
        assert!(killer.join().expect("join"));
        assert!(!status.success());
        assert!(t0.elapsed() < Duration::from_secs(10));
    }
}
