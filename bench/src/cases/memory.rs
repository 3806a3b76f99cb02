//! Case 5, memory: the running agent's resident memory and the kernel memory of its
//! maps, idle, with a million active bans, and with a million more addresses
//! tracked (offended once, below the threshold). The bans and the tracked addresses
//! arrive the way real ones do, as log lines, so the same run also says how long a
//! million bans take through the whole agent (read, match, decide, store, map).
//! Then the agent is restarted with the million bans in place: time until its socket
//! answers and until every ban is active again (the restart-restore of case 3, for
//! the whole agent).

use std::io::Write as _;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use log2drop_bench::report::{self, CaseReport, Cell, Table};

use super::{Ctx, RUNS};
use crate::addrs;
use crate::agentlab::{AgentLab, Spec, bans_active, lines_read};
use crate::pinned;

/// Filters, source and jails: `ban-me` lines ban at once, `track-me` lines are
/// tracked (one offence of five needed).
const BODY: &str = r#"[filters.ban-me]
regex = ['Failed password for .* from <HOST> port \d+']

[filters.track-me]
regex = ['Invalid user .* from <HOST> port \d+']

[sources.auth]
path = {LOG}
filters = ["ban-me", "track-me"]

[jails.bans]
filters = ["ban-me"]
maxretry = 1
findtime = "10m"
bantime = "1d"

[jails.tracks]
filters = ["track-me"]
maxretry = 5
findtime = "1d"
bantime = "1h"
"#;

/// Restarts stop being repeated once they have taken this long together.
const RESTART_BUDGET: Duration = Duration::from_secs(120);

/// One restart may take this long before it counts as failed.
const RESTART_LIMIT: Duration = Duration::from_secs(600);

/// Lines per write when feeding the log.
const CHUNK: usize = 65_536;

pub fn run(ctx: &Ctx, rep: &mut CaseReport) -> Result<()> {
    let n = ctx.size(1_000_000, 20_000);
    let mut lab = AgentLab::new(&Spec {
        max_tracked: 2 * n,
        xdp: true,
        body: BODY,
    })?;
    rep.command(format!(
        "{} run --config {} (XDP on a veth in a namespace; jail `bans` maxretry 1, jail \
         `tracks` maxretry 5)",
        ctx.agent.display(),
        lab.config().display()
    ));
    lab.start()?;
    // Let start-up allocations settle before the idle reading.
    std::thread::sleep(Duration::from_millis(300));

    let mut mem = Table::new(
        "Agent and kernel memory",
        &[
            "state",
            "agent RSS",
            "agent peak RSS",
            "kernel maps (all)",
            "of which BAN_V4",
            "target",
        ],
    );
    mem.row(memory_row(&lab, "idle, 0 bans", "")?);

    // A million bans, as log lines.
    let t0 = Instant::now();
    feed(&lab, n, |i| {
        format!(
            "Nov 21 10:00:00 host sshd[123]: Failed password for root from {} port 50000 ssh2\n",
            addrs::filler_v4(i)
        )
    })?;
    let want = n as u64;
    lab.wait_status(Duration::from_secs(900), Duration::from_millis(50), |s| {
        bans_active(s) >= want
    })?;
    let ban_time = t0.elapsed().as_secs_f64();
    mem.row(memory_row(&lab, &format!("{n} bans"), "")?);

    // A million tracked addresses.
    let t0 = Instant::now();
    feed(&lab, n, |i| {
        format!(
            "Nov 21 10:00:01 host sshd[124]: Invalid user admin from {} port 50000\n",
            addrs::filler_v4(n + i)
        )
    })?;
    let lines = 2 * want;
    lab.wait_status(Duration::from_secs(900), Duration::from_millis(50), |s| {
        lines_read(s) >= lines
    })?;
    // Lines are read before the engine has handled them; wait for the engine too.
    let t_tracked = Instant::now();
    let tracked = loop {
        let st = lab.stats()?;
        let tracked = st["tracked"].as_u64().unwrap_or(0);
        if tracked >= want || t_tracked.elapsed() > Duration::from_secs(300) {
            break tracked;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let track_time = t0.elapsed().as_secs_f64();
    mem.row(memory_row(
        &lab,
        &format!("{n} bans + {tracked} tracked"),
        "RSS < 150 MB at 1M + 1M",
    )?);
    if tracked < want {
        rep.note(format!(
            "Only {tracked} of {n} addresses were tracked after the log was read (stats \
             `tracked`); see `evicted` in the agent's stats."
        ));
    }

    // Restarts with the bans in place; fewer than RUNS when they are slow. A restart
    // that fails is a finding, not a reason to lose the figures above.
    let (ready, restored) = match restarts(&mut lab, want, rep) {
        Ok(r) => r,
        Err(e) => {
            rep.note(format!("Restart with {n} bans failed: {e:#}"));
            (Vec::new(), Vec::new())
        }
    };
    if !restored.is_empty() {
        let in_kernel = kernel_bans(&lab)?;
        if in_kernel < want {
            bail!("after the restarts the kernel map holds {in_kernel} bans, expected {want}");
        }
        mem.row(memory_row(
            &lab,
            &format!("after a restart with {n} bans"),
            "",
        )?);
    }
    rep.tables.push(mem);

    let mut t = Table::new(
        "Through the whole agent",
        &["what", "time", "rate", "target"],
    );
    t.row(vec![
        Cell::text(format!("{n} offending lines to {n} bans in the kernel map")),
        Cell::value(ban_time, "s", report::secs(ban_time)),
        Cell::value(
            n as f64 / ban_time,
            "bans/s",
            report::rate(n as f64 / ban_time),
        ),
        Cell::text(""),
    ]);
    t.row(vec![
        Cell::text(format!(
            "{n} lines of addresses below the threshold, tracked"
        )),
        Cell::value(track_time, "s", report::secs(track_time)),
        Cell::value(
            n as f64 / track_time,
            "lines/s",
            report::rate(n as f64 / track_time),
        ),
        Cell::text(""),
    ]);
    t.row(vec![
        Cell::text(format!("restart with {n} bans: socket answers")),
        Cell::median(&ready, "s", report::secs),
        Cell::text(""),
        Cell::text(""),
    ]);
    t.row(vec![
        Cell::text(format!("restart with {n} bans: every ban active again")),
        Cell::median(&restored, "s", report::secs),
        Cell::text(""),
        Cell::text(if n >= 1_000_000 { "1M under 5 s" } else { "" }),
    ]);
    rep.tables.push(t);
    rep.note(format!(
        "Ban addresses are filler keys from 240.0.0.0/4 written into the log, one line each \
         (bantime 1 day); the tracked ones too. Restart times are the median of up to \
         {RUNS} SIGTERM-and-start cycles, from spawn; \"every ban active\" is when `status` reports them all."
    ));
    rep.note(
        "Kernel map memory is the `memlock` of each pinned map's descriptor (the kernel's own \
         accounting of the map's memory), summed over all of log2drop's maps.",
    );
    Ok(())
}

/// Up to [`RUNS`] SIGTERM-and-start cycles: time to the socket answering and to
/// `want` bans active, from spawn.
fn restarts(lab: &mut AgentLab, want: u64, rep: &mut CaseReport) -> Result<(Vec<f64>, Vec<f64>)> {
    let mut ready = Vec::new();
    let mut restored = Vec::new();
    let began = Instant::now();
    for _ in 0..RUNS {
        if began.elapsed() > RESTART_BUDGET {
            rep.note(format!(
                "Restarts stopped after {} of {RUNS} because they took over {} in all.",
                ready.len(),
                report::secs(RESTART_BUDGET.as_secs_f64())
            ));
            break;
        }
        lab.stop()?;
        let t0 = Instant::now();
        let r = lab.start_within(RESTART_LIMIT)?;
        lab.wait_status(RESTART_LIMIT, Duration::from_millis(10), |s| {
            bans_active(s) >= want
        })?;
        ready.push(r.as_secs_f64());
        restored.push(t0.elapsed().as_secs_f64());
    }
    Ok((ready, restored))
}

/// Appends `n` lines made by `line` to the watched log, in chunks.
fn feed(lab: &AgentLab, n: usize, line: impl Fn(usize) -> String) -> Result<()> {
    let path = lab.log();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    let mut buf = String::with_capacity(CHUNK * 100);
    for i in 0..n {
        buf.push_str(&line(i));
        if (i + 1) % CHUNK == 0 || i + 1 == n {
            f.write_all(buf.as_bytes())
                .with_context(|| format!("appending to {}", path.display()))?;
            buf.clear();
        }
    }
    Ok(())
}

/// Entries in the exact-address IPv4 map.
fn kernel_bans(lab: &AgentLab) -> Result<u64> {
    let maps = crate::pinned::PinnedMaps::open(lab.pins())?;
    maps.count_v4()
}

fn memory_row(lab: &AgentLab, state: &str, target: &str) -> Result<Vec<Cell>> {
    let (rss, hwm) = lab.memory()?;
    let maps = pinned::map_memory(lab.pins().path())?;
    let total: u64 = maps.iter().map(|(_, b)| b).sum();
    let v4 = maps
        .iter()
        .find(|(n, _)| n == log2drop_common::MAP_BAN_V4)
        .map_or(0, |(_, b)| *b);
    let b = |x: u64| Cell::value(x as f64, "bytes", report::bytes(x as f64));
    Ok(vec![
        Cell::text(state),
        b(rss),
        b(hwm),
        b(total),
        b(v4),
        Cell::text(target),
    ])
}
