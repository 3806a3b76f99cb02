//! Timing external programs: wall time, and the CPU time the child and its own
//! children used (from the kernel's accounting of reaped children), so "lines per
//! second" and "CPU seconds" come from the same run. Also small readers of
//! `/proc/<pid>` for the agent's memory.

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sys::resource::{UsageWho, getrusage};

/// One timed run.
#[derive(Debug, Clone)]
pub struct Timed {
    /// Wall time from spawn to exit.
    pub wall: Duration,
    /// User plus system CPU time of the child and everything it waited for.
    pub cpu: Duration,
    /// Its stdout and stderr.
    pub output: Output,
}

fn children_cpu() -> Result<Duration> {
    let u = getrusage(UsageWho::RUSAGE_CHILDREN).context("getrusage(RUSAGE_CHILDREN)")?;
    let tv = |t: nix::sys::time::TimeVal| {
        Duration::from_secs(t.tv_sec().max(0) as u64)
            + Duration::from_micros(t.tv_usec().max(0) as u64)
    };
    Ok(tv(u.user_time()) + tv(u.system_time()))
}

/// Runs `cmd` to completion with `stdin` as its input (or nothing), fails unless it
/// exits 0, and returns its times. Children are reaped one at a time, so the growth
/// of this process's children CPU total is exactly this child's.
pub fn timed(cmd: &mut Command, stdin: Option<&Path>) -> Result<Timed> {
    let what = describe(cmd);
    match stdin {
        Some(p) => {
            let f = std::fs::File::open(p).with_context(|| format!("opening {}", p.display()))?;
            cmd.stdin(f);
        }
        None => {
            cmd.stdin(Stdio::null());
        }
    }
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let cpu0 = children_cpu()?;
    let t0 = Instant::now();
    let output = cmd
        .output()
        .with_context(|| format!("cannot start `{what}`"))?;
    let wall = t0.elapsed();
    let cpu = children_cpu()?.saturating_sub(cpu0);
    if !output.status.success() {
        bail!(
            "`{what}` failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(Timed { wall, cpu, output })
}

/// Runs `argv` and fails with its stderr unless it exits 0; returns stdout.
pub fn run<S: AsRef<OsStr>>(argv: &[S]) -> Result<String> {
    let (prog, args) = argv.split_first().context("empty command")?;
    let mut cmd = Command::new(prog);
    cmd.args(args);
    let what = describe(&cmd);
    let out = cmd
        .output()
        .with_context(|| format!("cannot start `{what}`"))?;
    if !out.status.success() {
        bail!(
            "`{what}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The command line as one string, for reports and errors.
pub fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// A field of `/proc/<pid>/status` in KiB (`VmRSS`, `VmHWM`).
pub fn status_kib(pid: u32, field: &str) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_status_kib(&text, field).with_context(|| format!("{path} has no {field} line"))
}

fn parse_status_kib(text: &str, field: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timed_counts_the_childs_cpu() {
        // A shell loop burns some CPU; its CPU time must be seen and bounded by wall.
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done"]);
        let t = timed(&mut cmd, None).expect("sh runs");
        assert!(t.cpu > Duration::ZERO, "{t:?}");
        assert!(t.cpu <= t.wall + Duration::from_millis(20), "{t:?}");
    }

    #[test]
    fn timed_fails_on_nonzero_exit() {
        let err = timed(&mut Command::new("false"), None).expect_err("false fails");
        assert!(err.to_string().contains("`false` failed"), "{err}");
    }

    #[test]
    fn status_fields() {
        let text = "Name:\tlog2drop\nVmHWM:\t   12345 kB\nVmRSS:\t    6789 kB\n";
        assert_eq!(parse_status_kib(text, "VmRSS"), Some(6789));
        assert_eq!(parse_status_kib(text, "VmHWM"), Some(12345));
        assert_eq!(parse_status_kib(text, "VmSwap"), None);
        assert!(status_kib(std::process::id(), "VmRSS").expect("self") > 0);
    }
}
