//! Case 2, ban-to-drop latency: the real agent (release build) runs in a server
//! namespace with its XDP program on a veth; for each ban the bench appends one
//! offending sshd line to the watched log and, from the attacker namespace, keeps
//! sending frames from that address while it polls the pinned maps on its own
//! descriptors. Two times per ban, from just before the `write`:
//! - until the address is in the kernel ban map;
//! - until the program's drop counter for it is non-zero (the first dropped frame).
//!
//! The sender and the poller are one loop on one thread pinned to one CPU, so the
//! agent has the other CPU; the loop's period (a few microseconds) bounds the
//! resolution. Frames carry a destination MAC that is not the server's, so a frame
//! that is not dropped dies in the stack right after XDP without any reply. Half
//! the bans are IPv4, half IPv6, all documentation addresses.
//!
//! The agent runs twice, with its state directory on disk and on tmpfs, since its
//! store write (with an fsync) precedes the map write. Then fail2ban gets the same
//! kind of lines ([`super::f2b`]).

use std::fs::OpenOptions;
use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use log2drop_bench::report::{self, CaseReport, Cell, Table};
use log2drop_bench::stats;
use log2drop_tests::agent::ssh_fail_line;
use log2drop_tests::{Agent, AgentDir, JailSpec, NetNs, PinDir, VethPair};

use super::Ctx;
use crate::addrs;
use crate::cpu::Pinned;
use crate::frames;
use crate::packet::PacketSocket;
use crate::pinned::PinnedMaps;

/// Give up on one ban after this long (the agent's polling fallback is 250 ms, so a
/// missed inotify event still lands well within it).
const PER_BAN_TIMEOUT: Duration = Duration::from_secs(2);

/// A destination MAC no interface has: frames that pass XDP are dropped as
/// "other host" by the stack.
const OTHER_HOST: [u8; 6] = [0x02, 0x6c, 0x32, 0x64, 0xee, 0xee];

/// The CPU the sender/poller loop is pinned to.
const LOOP_CPU: usize = 0;

/// What one pass measured.
struct Pass {
    to_map: Vec<f64>,
    to_map_v4: Vec<f64>,
    to_map_v6: Vec<f64>,
    to_drop: Vec<f64>,
    timeouts: usize,
    frames_sent: u64,
}

pub fn run(ctx: &Ctx, rep: &mut CaseReport) -> Result<()> {
    let bans = ctx.size(1_000, 100);
    let mut t = Table::new(
        &format!("{bans} bans per pass, one offending line each (maxretry = 1)"),
        &[
            "state directory",
            "until",
            "p50",
            "p90",
            "p99",
            "max",
            "target",
        ],
    );
    let disk = pass(ctx, rep, bans, false)?;
    add_rows(&mut t, "on disk (default)", &disk, true);
    let tmpfs = pass(ctx, rep, bans, true)?;
    add_rows(&mut t, "on tmpfs", &tmpfs, false);
    rep.tables.push(t);
    fail2ban(ctx, rep, ctx.size(50, 5));
    for (name, p) in [("disk", &disk), ("tmpfs", &tmpfs)] {
        rep.note(format!(
            "State on {name}: {} frames sent from the attacker namespace ({} per ban on \
             average); the first-drop time is at most one loop period after the ban landed.",
            p.frames_sent,
            p.frames_sent / bans.max(1) as u64
        ));
        if p.timeouts > 0 {
            rep.note(format!(
                "State on {name}: {} of {bans} bans did not reach the map within {} and \
                 are left out of the percentiles.",
                p.timeouts,
                report::secs(PER_BAN_TIMEOUT.as_secs_f64())
            ));
        }
    }
    rep.note(
        "Times run from just before the line is written. The agent writes each decision \
         batch to its SQLite store (synchronous = FULL, so an fsync) before the backends; \
         the tmpfs pass shows the cost without that disk flush.",
    );
    Ok(())
}

/// fail2ban's time from a written line to its iptables rule, next to log2drop's.
fn fail2ban(ctx: &Ctx, rep: &mut CaseReport, bans: usize) {
    if let Err(why) = ctx
        .tools
        .check("fail2ban")
        .and_then(|()| ctx.tools.check("iptables"))
    {
        rep.note(format!("fail2ban's latency is not measured: {why}"));
        return;
    }
    let mut commands = Vec::new();
    let res = super::f2b::pass(bans, &mut commands);
    for c in commands {
        rep.command(c);
    }
    let p = match res {
        Ok(p) => p,
        Err(e) => {
            rep.note(format!("fail2ban's latency could not be measured: {e:#}"));
            return;
        }
    };
    let mut t = Table::new(
        &format!(
            "fail2ban {} on the same kind of line, {bans} bans (maxretry = 1)",
            ctx.tools.version("fail2ban")
        ),
        &[
            "until",
            "p50",
            "p90",
            "p99",
            "max",
            "log2drop p50 is faster by",
        ],
    );
    let ours = rep
        .tables
        .first()
        .and_then(|t| t.rows.first())
        .and_then(|r| r.get(2))
        .and_then(|c| c.value);
    let theirs = stats::percentile(&p.to_rule, 50.0);
    let pct = |q: f64| match stats::percentile(&p.to_rule, q) {
        Some(x) => Cell::value(x, "s", report::secs(x)),
        None => Cell::text("n/a"),
    };
    t.row(vec![
        Cell::text("its iptables rule for the address is listed"),
        pct(50.0),
        pct(90.0),
        pct(99.0),
        pct(100.0),
        match (ours, theirs) {
            (Some(o), Some(f)) => Cell::value(
                stats::ratio(f, o).unwrap_or(f64::NAN),
                "ratio",
                report::times(f, o),
            ),
            _ => Cell::text("n/a"),
        },
    ]);
    rep.tables.push(t);
    rep.note(format!(
        "fail2ban ran with its stock sshd filter and iptables-multiport action, backend auto \
         (pyinotify when installed, else polling), in its own namespace. Its time is until \
         `iptables -S f2b-sshd` lists the address, polled by forking iptables (a few ms per \
         look). The ratio compares its p50 with log2drop's p50 to the map (state on disk).{}",
        if p.timeouts > 0 {
            format!(
                " {} of {bans} bans did not show up within 15 s and are left out.",
                p.timeouts
            )
        } else {
            String::new()
        }
    ));
}

fn add_rows(t: &mut Table, state: &str, p: &Pass, with_target: bool) {
    let pct = |v: &[f64], q: f64| -> Cell {
        match stats::percentile(v, q) {
            Some(x) => Cell::value(x, "s", report::secs(x)),
            None => Cell::text("n/a"),
        }
    };
    let rows: [(&str, &[f64], &str); 4] = [
        (
            "address in the kernel map",
            &p.to_map,
            if with_target {
                "p50 < 1 ms, p99 < 5 ms"
            } else {
                ""
            },
        ),
        ("  IPv4 only", &p.to_map_v4, ""),
        ("  IPv6 only", &p.to_map_v6, ""),
        ("first frame dropped", &p.to_drop, ""),
    ];
    for (i, (label, v, target)) in rows.into_iter().enumerate() {
        t.row(vec![
            Cell::text(if i == 0 { state } else { "" }),
            Cell::text(label),
            pct(v, 50.0),
            pct(v, 90.0),
            pct(v, 99.0),
            pct(v, 100.0),
            Cell::text(target),
        ]);
    }
}

/// One agent, `bans` bans. With `tmpfs_state` the agent's state directory is a
/// symlink into /dev/shm.
fn pass(ctx: &Ctx, rep: &mut CaseReport, bans: usize, tmpfs_state: bool) -> Result<Pass> {
    let server = NetNs::new();
    let attacker = NetNs::new();
    let veth = VethPair::new(&server, &[], &attacker, &[]);
    let pins = PinDir::new();
    let dir = AgentDir::new();
    let _shm = if tmpfs_state {
        let shm = tempfile::Builder::new()
            .prefix("log2drop-bench-state-")
            .tempdir_in("/dev/shm")
            .context("creating a state directory on /dev/shm")?;
        std::fs::remove_dir(dir.state_dir())
            .with_context(|| format!("removing {}", dir.state_dir().display()))?;
        std::os::unix::fs::symlink(shm.path(), dir.state_dir())
            .with_context(|| format!("linking {} to /dev/shm", dir.state_dir().display()))?;
        Some(shm)
    } else {
        None
    };
    dir.write_config(&[&veth.a().ifname], pins.path(), &[JailSpec::ssh(1, "1h")]);
    let mut agent = Agent::spawn(&server, &dir);
    let ready = agent.wait_ready();
    rep.command(format!(
        "{} run --config {} (XDP on {} in namespace {}, jail maxretry=1{})",
        ctx.agent.display(),
        dir.config_path().display(),
        veth.a().ifname,
        server.name(),
        if tmpfs_state {
            ", state dir on /dev/shm"
        } else {
            ""
        }
    ));
    rep.note(format!(
        "Agent ready (control socket answering) {} after spawn{}.",
        report::secs(ready.as_secs_f64()),
        if tmpfs_state { " (tmpfs state)" } else { "" }
    ));

    let maps = PinnedMaps::open(&pins)?;
    let socket = {
        let _inside = attacker.enter();
        let ifindex =
            nix::net::if_::if_nametoindex(veth.b().ifname.as_str()).with_context(|| {
                format!("no interface {} in the attacker namespace", veth.b().ifname)
            })?;
        PacketSocket::open(ifindex)?
    };
    let _pinned = Pinned::to(LOOP_CPU);

    let mut p = Pass {
        to_map: Vec::with_capacity(bans),
        to_map_v4: Vec::new(),
        to_map_v6: Vec::new(),
        to_drop: Vec::with_capacity(bans),
        timeouts: 0,
        frames_sent: 0,
    };
    let log = dir.watched_log();
    for i in 0..bans {
        // IPv4 from 198.51.100.0/24 and 203.0.113.0/24 (508 addresses), IPv6 from
        // 2001:db8:1::/64.
        let addr: IpAddr = if i % 2 == 0 {
            IpAddr::V4(addrs::doc_v4(254 + i / 2))
        } else {
            IpAddr::V6(addrs::doc_v6(i))
        };
        let frame = match addr {
            IpAddr::V4(a) => frames::udp_v4(OTHER_HOST, a, Ipv4Addr::new(192, 0, 2, 1)),
            IpAddr::V6(a) => frames::udp_v6(OTHER_HOST, a, addrs::doc_v6(0xffff)),
        };
        if maps.banned(addr)? {
            bail!("{addr} is banned before its line was written");
        }
        let line = format!("{}\n", ssh_fail_line(&addr.to_string()));
        let mut f = OpenOptions::new()
            .append(true)
            .open(&log)
            .with_context(|| format!("opening {}", log.display()))?;
        let t0 = Instant::now();
        f.write_all(line.as_bytes())
            .with_context(|| format!("appending to {}", log.display()))?;
        drop(f);
        let mut in_map: Option<Duration> = None;
        loop {
            socket
                .send(&frame)
                .context("sending a frame from the attacker")?;
            p.frames_sent += 1;
            let now = t0.elapsed();
            if in_map.is_none() && maps.banned(addr)? {
                in_map = Some(now);
            }
            if let Some(m) = in_map
                && maps.dropped(addr)? > 0
            {
                p.to_map.push(m.as_secs_f64());
                p.to_drop.push(now.as_secs_f64());
                if addr.is_ipv4() {
                    p.to_map_v4.push(m.as_secs_f64());
                } else {
                    p.to_map_v6.push(m.as_secs_f64());
                }
                break;
            }
            if now > PER_BAN_TIMEOUT {
                p.timeouts += 1;
                break;
            }
        }
    }
    if !agent.is_running() {
        bail!("the agent exited during the run:\n{}", agent.output_text());
    }
    Ok(p)
}
