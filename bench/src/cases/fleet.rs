//! Case 10, fleet propagation: N agents (release builds, separate processes, each
//! in its own network namespace with its own state directory, log, socket and the
//! dry-run backend) share jail `ssh` through one `redis-server`. Redis runs in a
//! hub namespace on a bridge ([`HUB_V4`]); each agent's namespace is joined to the
//! bridge by a veth pair, so every agent reaches Redis over its own interface and
//! network stack, as hosts on a LAN would. The bench writes one offending
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
//!
//! Namespaces, veth pairs and the bridge are the harness's throwaway kind
//! ([`NetNs`], [`VethPair`]): unique names, removed on drop, panics included;
//! the processes in them are killed first (declared after them).

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail};
use log2drop_tests::{NetNs, VethPair};

use log2drop_bench::report::{self, CaseReport, Cell, Table};
use log2drop_bench::stats;

use super::Ctx;

/// Pause between two written lines.
const PACE: Duration = Duration::from_millis(20);
/// How long the stragglers may take once every line is written.
const DRAIN: Duration = Duration::from_secs(60);
/// The decision log line of the dry-run backend.
const WOULD_BAN: &str = "dry-run: would ban";
/// Redis's address on the hub's bridge (documentation range; it exists only in
/// the namespaces this case creates).
const HUB_V4: &str = "192.0.2.1";
/// The hub's bridge.
const BRIDGE: &str = "l2dfleet0";
/// Redis's port (its own namespace: no other listener to collide with).
const REDIS_PORT: u16 = 6379;

/// The `i`th agent's address on the bridge's /24.
fn agent_v4(i: usize) -> String {
    format!("192.0.2.{}", 10 + i)
}

/// The hub namespace with its bridge, one namespace per agent and the veth pairs
/// joining them. Fields drop in order: the wires, then the agents' namespaces,
/// then the hub (deleting a namespace takes its bridge and veth ends with it).
struct Lab {
    wires: Vec<VethPair>,
    agents: Vec<NetNs>,
    hub: NetNs,
}

impl Lab {
    fn new(n: usize) -> Result<Lab> {
        if n > 200 {
            bail!("{n} agents do not fit the bridge's /24");
        }
        let hub = NetNs::new();
        for argv in [
            vec![
                "ip",
                "link",
                "add",
                BRIDGE,
                "type",
                "bridge",
                "stp_state",
                "0",
            ],
            vec!["ip", "addr", "add", &format!("{HUB_V4}/24"), "dev", BRIDGE],
            vec!["ip", "link", "set", "dev", BRIDGE, "up"],
        ] {
            let out = hub.exec(&argv);
            if !out.status.success() {
                bail!(
                    "`{}` in {} failed: {}",
                    argv.join(" "),
                    hub.name(),
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
        }
        let mut lab = Lab {
            wires: Vec::with_capacity(n),
            agents: Vec::with_capacity(n),
            hub,
        };
        for i in 0..n {
            let ns = NetNs::new();
            let addr: std::net::IpAddr = agent_v4(i).parse()?;
            let wire = VethPair::new(&lab.hub, &[], &ns, &[(addr, 24)]);
            let port = wire.a().ifname.clone();
            lab.agents.push(ns);
            lab.wires.push(wire);
            let out = lab
                .hub
                .exec(&["ip", "link", "set", "dev", &port, "master", BRIDGE]);
            if !out.status.success() {
                bail!(
                    "cannot put {port} on {BRIDGE}: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
        }
        Ok(lab)
    }

    /// `argv` run inside `ns` (nsenter execs it: the child is the program).
    fn spawn_in(ns: &NetNs, argv: &[&std::ffi::OsStr]) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net={}", ns.path().display())).args(argv);
        c
    }

    /// Waits until Redis answers a TCP connection from every agent's namespace.
    fn wait_reachable(&self) -> Result<()> {
        let to = std::net::SocketAddr::from(([192, 0, 2, 1], REDIS_PORT));
        for ns in &self.agents {
            let _inside = ns.enter();
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                match std::net::TcpStream::connect_timeout(&to, Duration::from_millis(500)) {
                    Ok(_) => break,
                    Err(e) if Instant::now() > deadline => {
                        bail!("Redis at {to} unreachable from {}: {e}", ns.name())
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(50)),
                }
            }
        }
        Ok(())
    }
}

/// The load averages (1, 5, 15 min) now.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|t| t.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_owned())
}

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

fn start_redis(lab: &Lab, dir: &Path) -> Result<Proc> {
    let server = redis_server()?;
    let port = REDIS_PORT.to_string();
    let child = Lab::spawn_in(
        &lab.hub,
        &[
            server.as_os_str(),
            "--port".as_ref(),
            port.as_ref(),
            "--bind".as_ref(),
            HUB_V4.as_ref(),
            "--dir".as_ref(),
            dir.as_os_str(),
            "--save".as_ref(),
            "".as_ref(),
            "--appendonly".as_ref(),
            "no".as_ref(),
            "--daemonize".as_ref(),
            "no".as_ref(),
            // No password: protected mode would refuse the agents, which are
            // not on loopback. Redis is reachable from this case's namespaces only.
            "--protected-mode".as_ref(),
            "no".as_ref(),
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .context("starting redis-server in the hub namespace")?;
    let proc = Proc(child);
    lab.wait_reachable()?;
    Ok(proc)
}

fn config(dir: &Path, node: usize) -> String {
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
redis = "redis://{HUB_V4}:{REDIS_PORT}/0"
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

/// Checks that every agent runs in a network namespace of its own, not this one.
fn distinct_namespaces(agents: &[Proc]) -> Result<()> {
    let ns_of = |pid: u32| {
        std::fs::read_link(format!("/proc/{pid}/ns/net"))
            .with_context(|| format!("reading the network namespace of pid {pid}"))
    };
    let mine = ns_of(std::process::id())?;
    let mut seen = std::collections::HashSet::new();
    for a in agents {
        let ns = ns_of(a.0.id())?;
        if ns == mine || !seen.insert(ns.clone()) {
            bail!(
                "agent pid {} shares network namespace {}",
                a.0.id(),
                ns.display()
            );
        }
    }
    Ok(())
}

/// Whether the agent on `socket` answers and its fleet reader is connected.
fn following(agent: &Path, socket: &Path) -> bool {
    if !socket.exists() {
        return false;
    }
    Command::new(agent)
        .args(["fleet", "status", "--json", "--socket"])
        .arg(socket)
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| serde_json::from_slice::<serde_json::Value>(&o.stdout).ok())
        .is_some_and(|v| v["connected"] == serde_json::Value::Bool(true))
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
    let load_before = loadavg();
    let lab = Lab::new(n).context("building the namespaces (needs root)")?;
    let mut redis = start_redis(&lab, root.path())?;
    let mut agents = Vec::with_capacity(n);
    let mut dirs = Vec::with_capacity(n);
    for (i, ns) in lab.agents.iter().enumerate() {
        let dir = root.path().join(format!("agent-{i}"));
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("auth.log"), b"")?;
        let cfg = dir.join("log2drop.toml");
        std::fs::write(&cfg, config(&dir, i))?;
        let log = std::fs::File::create(dir.join("agent.log"))?;
        let child = Lab::spawn_in(
            ns,
            &[
                ctx.agent.as_os_str(),
                "run".as_ref(),
                "--config".as_ref(),
                cfg.as_os_str(),
            ],
        )
        .env("RUST_LOG", "warn,log2drop::backend::dry_run=info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting agent {i} in {}", ns.name()))?;
        agents.push(Proc(child));
        dirs.push(dir);
    }
    // Every agent up and following the stream (its reader connected).
    let deadline = Instant::now() + Duration::from_secs(120);
    for d in &dirs {
        while !following(&ctx.agent, &d.join("ctl.sock")) {
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(d.join("agent.log")).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(5).collect();
                bail!(
                    "agent in {} did not connect to Redis; its log ends: {}",
                    d.display(),
                    tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    distinct_namespaces(&agents)?;
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
    let load_after = loadavg();
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
    // Per ban, the last of the other agents: when it is enforced everywhere.
    let mut everywhere = Vec::with_capacity(bans);
    let mut missing = 0usize;
    for (t, origin, at) in &written {
        let mut last: Option<f64> = None;
        let mut all = true;
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
                        last = Some(last.map_or(secs, |l: f64| l.max(secs)));
                    }
                }
                None => {
                    missing += 1;
                    all = false;
                }
            }
        }
        if let (true, Some(l)) = (all, last) {
            everywhere.push(l);
        }
    }
    let mut t = Table::new(
        &format!(
            "{n} agents in {n} network namespaces, one redis-server on a bridge, {bans} bans (one line each, every {} ms, rotating the agent that sees it)",
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
        ("the last of the other agents, per ban", &everywhere, ""),
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
         agent. Each agent is a separate process in its own network namespace, joined by a \
         veth pair to a bridge in a hub namespace where redis-server listens on {HUB_V4}; \
         state on tmpfs; Redis keeps no persistence. {missing} of {} expected enforcements \
         did not happen within {} after the last line and are left out. Load average \
         (1, 5, 15 min) before the case: {load_before}; after: {load_after}.",
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
