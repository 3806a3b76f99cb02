//! Case 10, fleet propagation: N agents (release builds, separate processes, each
//! with its own state directory, log, socket and the dry-run backend) share jail
//! `ssh` through one `redis-server` on 127.0.0.1. The bench writes one offending
//! line per ban, rotating the agent that sees it, and measures from just before
//! that `write` to the moment each *other* agent enforces the ban: the dry-run
//! backend's "would ban" line in that agent's log (its decision log), whose
//! timestamp the agent takes right after the ban was recorded in its store.
//! The origin's own time to enforce is reported next to it as the baseline
//! measured in the same run.
//!
//! Bans are written at a steady pace (not waiting for the previous one), so the
//! figures include queueing under a sustained flow of bans. State directories
//! live on tmpfs: the case measures the fleet path, not N fsyncs per ban on one
//! shared disk (case 2 shows what the store's fsync costs one agent).

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail};

use log2drop_bench::report::{self, CaseReport, Cell, Table};
use log2drop_bench::stats;

use super::Ctx;

/// Pause between two written lines.
const PACE: Duration = Duration::from_millis(20);
/// How long the stragglers may take once every line is written.
const DRAIN: Duration = Duration::from_secs(60);
/// The decision log line of the dry-run backend.
const WOULD_BAN: &str = "dry-run: would ban";

/// A process killed and reaped on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Proc {
    /// SIGTERM, then waits (up to 10 s) for a clean stop.
    fn stop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.0.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The `i`th banned address: documentation ranges only, IPv4 and IPv6 (each in
/// its own /64, the jail's IPv6 ban length) alternating.
fn address(i: usize) -> String {
    if i.is_multiple_of(2) {
        let k = i / 2;
        let (net, host) = if k < 254 {
            ("198.51.100", k + 1)
        } else {
            ("203.0.113", k - 254 + 1)
        };
        format!("{net}.{host}")
    } else {
        format!("2001:db8:{:x}::1", i)
    }
}

/// How the dry-run backend prints the target of `address`'s ban.
fn target(address: &str) -> String {
    if address.contains(':') {
        let a: std::net::Ipv6Addr = address.parse().expect("v6");
        let net = ipnet::Ipv6Net::new(a, 64).expect("len").trunc();
        net.to_string()
    } else {
        format!("{address}/32")
    }
}

fn redis_server() -> Result<PathBuf> {
    ["/usr/bin/redis-server", "/usr/local/bin/redis-server"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .context("redis-server is not installed (apt-get install redis-server)")
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn start_redis(dir: &Path) -> Result<(Proc, u16)> {
    let port = free_port()?;
    let child = Command::new(redis_server()?)
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .arg("--dir")
        .arg(dir)
        .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting redis-server")?;
    let proc = Proc(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok((proc, port));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    bail!("redis-server did not listen on port {port}")
}

fn config(dir: &Path, port: u16, node: usize) -> String {
    format!(
        r#"[agent]
state_dir = "{d}/state"
socket = "{d}/ctl.sock"
allow_own_addresses = false

[backends.dry-run]

[filters.ssh-fail]
regex = ['Failed password for .* from <HOST> port \d+']

[sources.auth]
path = "{d}/auth.log"
filters = ["ssh-fail"]

[jails.ssh]
filters = ["ssh-fail"]
maxretry = 1
bantime = "1h"

[fleet]
redis = "redis://127.0.0.1:{port}/0"
node = "agent-{node}"
stream = "bench:bans"
share = ["ssh"]
"#,
        d = dir.display()
    )
}

/// Each `WOULD_BAN` line's target and time in one agent's log.
fn decisions(log: &Path) -> Result<HashMap<String, SystemTime>> {
    let text =
        std::fs::read_to_string(log).with_context(|| format!("reading {}", log.display()))?;
    let mut out = HashMap::new();
    for line in text.lines().filter(|l| l.contains(WOULD_BAN)) {
        let Some(stamp) = line.split_whitespace().next() else {
            continue;
        };
        let Ok(at) = humantime::parse_rfc3339(stamp) else {
            continue;
        };
        let Some(t) = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("target="))
        else {
            continue;
        };
        out.entry(t.to_owned()).or_insert(at);
    }
    Ok(out)
}

fn count_decisions(log: &Path) -> usize {
    std::fs::read_to_string(log)
        .map(|t| t.matches(WOULD_BAN).count())
        .unwrap_or(0)
}

pub fn run(ctx: &Ctx, rep: &mut CaseReport) -> Result<()> {
    let n = ctx.size(50, 5);
    let bans = ctx.size(1_000, 100);
    let shm = Path::new("/dev/shm");
    let root = tempfile::Builder::new()
        .prefix("log2drop-fleet-")
        .tempdir_in(if shm.is_dir() { shm } else { &ctx.scratch })
        .context("creating the agents' directory")?;
    let (mut redis, port) = start_redis(root.path())?;
    let mut agents = Vec::with_capacity(n);
    let mut dirs = Vec::with_capacity(n);
    for i in 0..n {
        let dir = root.path().join(format!("agent-{i}"));
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("auth.log"), b"")?;
        let cfg = dir.join("log2drop.toml");
        std::fs::write(&cfg, config(&dir, port, i))?;
        let log = std::fs::File::create(dir.join("agent.log"))?;
        let child = Command::new(&ctx.agent)
            .args(["run", "--config"])
            .arg(&cfg)
            .env("RUST_LOG", "warn,log2drop::backend::dry_run=info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting agent {i}"))?;
        agents.push(Proc(child));
        dirs.push(dir);
    }
    // Every agent up (its socket exists) and following the stream.
    let deadline = Instant::now() + Duration::from_secs(60);
    for d in &dirs {
        while !d.join("ctl.sock").exists() {
            if Instant::now() > deadline {
                bail!("agent in {} did not start", d.display());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    std::thread::sleep(Duration::from_secs(1));

    let mut written = Vec::with_capacity(bans);
    for k in 0..bans {
        let origin = k % n;
        let addr = address(k);
        let line = format!("sshd[1]: Failed password for root from {addr} port 22 ssh2\n");
        let mut f = OpenOptions::new()
            .append(true)
            .open(dirs[origin].join("auth.log"))?;
        let at = SystemTime::now();
        f.write_all(line.as_bytes())?;
        drop(f);
        written.push((target(&addr), origin, at));
        std::thread::sleep(PACE);
    }
    let deadline = Instant::now() + DRAIN;
    while Instant::now() < deadline {
        if dirs
            .iter()
            .all(|d| count_decisions(&d.join("agent.log")) >= bans)
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    for a in &mut agents {
        a.stop();
    }
    redis.stop();

    let logs: Vec<HashMap<String, SystemTime>> = dirs
        .iter()
        .map(|d| decisions(&d.join("agent.log")))
        .collect::<Result<_>>()?;
    let mut remote = Vec::with_capacity(bans * (n - 1));
    let mut local = Vec::with_capacity(bans);
    let mut missing = 0usize;
    for (t, origin, at) in &written {
        for (j, log) in logs.iter().enumerate() {
            match log.get(t) {
                Some(done) => {
                    let secs = done
                        .duration_since(*at)
                        .unwrap_or(Duration::ZERO)
                        .as_secs_f64();
                    if j == *origin {
                        local.push(secs);
                    } else {
                        remote.push(secs);
                    }
                }
                None => missing += 1,
            }
        }
    }
    let mut t = Table::new(
        &format!(
            "{n} agents, one redis-server, {bans} bans (one line each, every {} ms, rotating the agent that sees it)",
            PACE.as_millis()
        ),
        &[
            "enforced by",
            "samples",
            "p50",
            "p90",
            "p99",
            "max",
            "target",
        ],
    );
    let pct = |v: &[f64], q: f64| match stats::percentile(v, q) {
        Some(x) => Cell::value(x, "s", report::secs(x)),
        None => Cell::text("n/a"),
    };
    for (name, v, target) in [
        ("every other agent (through Redis)", &remote, "p99 < 100 ms"),
        ("the agent that read the line (baseline)", &local, ""),
    ] {
        t.row(vec![
            Cell::text(name),
            Cell::value(v.len() as f64, "count", v.len().to_string()),
            pct(v, 50.0),
            pct(v, 90.0),
            pct(v, 99.0),
            pct(v, 100.0),
            Cell::text(target),
        ]);
    }
    rep.tables.push(t);
    rep.note(format!(
        "Times run from just before the offending line is written to the dry-run backend's \
         decision-log line (the agent's own timestamp, taken after the store commit) on each \
         agent. Agents are separate processes on this host with their state on tmpfs; Redis \
         keeps no persistence. {missing} of {} expected enforcements did not happen within {} \
         after the last line and are left out.",
        bans * n,
        report::secs(DRAIN.as_secs_f64())
    ));
    if missing > 0 {
        bail!("{missing} enforcements missing");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_distinct_documentation_targets() {
        let mut seen = std::collections::HashSet::new();
        for i in 0..1000 {
            let a = address(i);
            let ip: std::net::IpAddr = a.parse().expect("address");
            match ip {
                std::net::IpAddr::V4(v4) => {
                    let o = v4.octets();
                    assert!(
                        matches!((o[0], o[1], o[2]), (198, 51, 100) | (203, 0, 113)),
                        "{a}"
                    );
                    assert!(o[3] != 0 && o[3] != 255, "{a}");
                }
                std::net::IpAddr::V6(v6) => assert_eq!(v6.segments()[0..2], [0x2001, 0xdb8]),
            }
            assert!(seen.insert(target(&a)), "{a} twice");
        }
    }

    #[test]
    fn decision_lines_are_read_with_their_time() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("agent.log");
        std::fs::write(
            &log,
            "2026-12-06T05:30:00.123456Z  INFO log2drop::backend::dry_run: dry-run: would ban target=198.51.100.7/32 jail=fleet\n\
             2026-12-06T05:30:01.000000Z  WARN log2drop: something else target=198.51.100.8/32\n",
        )
        .expect("write");
        let d = decisions(&log).expect("read");
        assert_eq!(d.len(), 1);
        assert_eq!(
            d["198.51.100.7/32"],
            humantime::parse_rfc3339("2026-12-06T05:30:00.123456Z").expect("time")
        );
    }
}
