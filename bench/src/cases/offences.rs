//! Case 9, the cost of offence counting (issue 12): the real agent (release
//! build, dry-run backend) reads a log in which every line is an offence, once
//! with `agent.offence_rows` at its default (counting on) and once with 0
//! (counting off), runs interleaved (on, off, on, off, ...), each from an empty
//! state directory. Timed: from spawning the agent until the engine has taken
//! every offence (`stats.offences`), and the agent's CPU time until then (every
//! thread: sources, engine task, commit thread; start-up included, the same in
//! both); then the stop (SIGTERM to exit), which writes the counts not yet
//! handed over.
//!
//! The log is a spray, a bad case for the tally: 750 addresses each trying user
//! names from a list of 50, 37,500 distinct (day, address, filter, user) keys in
//! random order, so each hand-over to the store rewrites many rows; every line
//! has a `user` capture. `maxretry` is above what any address reaches, so no ban is
//! decided and the figures are the counting's alone.

use std::io::Write as _;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail};

use log2drop_bench::report::{self, CaseReport, Cell, Table};
use log2drop_bench::stats;

use super::{Ctx, RUNS};
use crate::agentlab::{AgentLab, Spec};

/// The built-in sshd filter over the log, read from its beginning; no address
/// reaches maxretry within findtime.
const BODY: &str = r#"[sources.auth]
path = {LOG}
filters = ["sshd"]
start = "beginning"

[jails.ssh]
filters = ["sshd"]
maxretry = 1000
findtime = "1d"
bantime = "1h"
"#;

/// Offending addresses in the log: 250 in each of the three documentation /24s.
const ADDRESSES: u64 = 750;

/// Distinct user names tried.
const USERS: u64 = 50;

/// One run's figures.
struct Run {
    /// Spawn to every offence taken by the engine, seconds.
    wall: f64,
    /// SIGTERM to exit, seconds: the last hand-over of offence counts is
    /// written then.
    stop: f64,
    /// Agent CPU time until every offence was taken, seconds.
    cpu: f64,
}

pub fn run(ctx: &Ctx, rep: &mut CaseReport) -> Result<()> {
    let lines = ctx.size(1_000_000, 100_000) as u64;
    let mut lab = AgentLab::new(&Spec {
        max_tracked: 1_000_000,
        xdp: false,
        body: BODY,
    })?;
    write_log(&lab, lines)?;
    rep.command(format!(
        "{} run --config {} (built-in sshd filter, start = \"beginning\", dry-run backend; \
         agent.offence_rows = {} or 0)",
        ctx.agent.display(),
        lab.config().display(),
        log2drop::config::DEFAULT_OFFENCE_ROWS
    ));
    let mut on = Vec::new();
    let mut off = Vec::new();
    let mut rows = 0;
    for i in 0..RUNS * 2 {
        let counting = i % 2 == 0;
        let rows_setting = if counting {
            log2drop::config::DEFAULT_OFFENCE_ROWS
        } else {
            0
        };
        set_offence_rows(&lab, rows_setting)?;
        lab.forget_state()?;
        let mut r = scan(&mut lab, lines)?;
        let t = Instant::now();
        lab.stop()?;
        r.stop = t.elapsed().as_secs_f64();
        if counting {
            let store = log2drop::store::Store::open(&lab_state_dir(&lab)?)
                .context("opening the state database")?;
            rows = store
                .offence_counts()
                .context("reading offence counts")?
                .len();
            on.push(r);
        } else {
            off.push(r);
        }
    }
    let med = |runs: &[Run], f: fn(&Run) -> f64| {
        stats::median(&runs.iter().map(f).collect::<Vec<_>>()).unwrap_or(f64::NAN)
    };
    let mut t = Table::new(
        &format!(
            "{} offending lines (every line an offence), median of {RUNS} interleaved runs each",
            report::si(lines as f64)
        ),
        &[
            "offence counting",
            "all offences taken",
            "agent CPU",
            "offences/s",
            "stop (last write)",
            "vs off",
        ],
    );
    let base_wall = med(&off, |r| r.wall);
    let base_cpu = med(&off, |r| r.cpu);
    let base_total = med(&off, |r| r.wall + r.stop);
    for (name, runs) in [("off (offence_rows = 0)", &off), ("on (default)", &on)] {
        let wall: Vec<f64> = runs.iter().map(|r| r.wall).collect();
        let cpu: Vec<f64> = runs.iter().map(|r| r.cpu).collect();
        let stop: Vec<f64> = runs.iter().map(|r| r.stop).collect();
        let m = med(runs, |r| r.wall);
        t.row(vec![
            Cell::text(name),
            Cell::median(&wall, "s", report::secs),
            Cell::median(&cpu, "s", report::secs),
            Cell::value(
                lines as f64 / m,
                "offences/s",
                report::rate(lines as f64 / m),
            ),
            Cell::median(&stop, "s", report::secs),
            Cell::text(format!(
                "taken {}, CPU {}, taken + stop {}",
                report::times(m, base_wall),
                report::times(med(runs, |r| r.cpu), base_cpu),
                report::times(med(runs, |r| r.wall + r.stop), base_total)
            )),
        ]);
    }
    rep.tables.push(t);
    rep.note(format!(
        "The log: {ADDRESSES} addresses each trying user names from a list of {USERS} \
         in random order (a spray: {} distinct day/address/filter/user keys), timestamps \
         inside findtime, maxretry above what any address reaches (no bans). Counting on \
         left {rows} rows in offence_counts (bound: agent.offence_rows = {}). Taken: spawn \
         to stats.offences reaching the line count; CPU: the agent's utime + stime until \
         then; stop: SIGTERM to exit, when the counts not yet handed over are written.",
        ADDRESSES * USERS,
        log2drop::config::DEFAULT_OFFENCE_ROWS
    ));
    Ok(())
}

/// Writes `lines` offending sshd lines with recent timestamps.
fn write_log(lab: &AgentLab, lines: u64) -> Result<()> {
    let path = lab.log();
    let f = std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    let mut w = std::io::BufWriter::new(f);
    let start = jiff::Timestamp::try_from(SystemTime::now() - Duration::from_secs(120))
        .context("the clock")?;
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    for n in 0..lines {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let at = start
            .checked_add(jiff::SignedDuration::from_micros((n * 100) as i64))
            .context("timestamp")?;
        let host = state % ADDRESSES;
        let net = ["192.0.2", "198.51.100", "203.0.113"][(host % 3) as usize];
        let addr = format!("{net}.{}", host / 3 + 1);
        let user = (state >> 20) % USERS;
        writeln!(
            w,
            "{at} bench sshd[{}]: Failed password for invalid user user{user} from {addr} port 22 ssh2",
            1000 + n % 30_000
        )
        .with_context(|| format!("writing {}", path.display()))?;
    }
    w.flush()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Sets `agent.offence_rows` in the lab's config (the agent is stopped).
fn set_offence_rows(lab: &AgentLab, rows: usize) -> Result<()> {
    let path = lab.config();
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let kept: String = text
        .lines()
        .filter(|l| !l.starts_with("offence_rows = "))
        .map(|l| format!("{l}\n"))
        .collect();
    let Some(at) = kept.find("[agent]\n") else {
        bail!("{} has no [agent] table", path.display());
    };
    let at = at + "[agent]\n".len();
    let text = format!("{}offence_rows = {rows}\n{}", &kept[..at], &kept[at..]);
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
}

/// The lab's state directory, read from its config.
fn lab_state_dir(lab: &AgentLab) -> Result<std::path::PathBuf> {
    let cfg = log2drop::config::load(&lab.config()).context("reading the lab's config")?;
    Ok(cfg.agent.state_dir)
}

/// One run: start, wait for every offence, stop the clock.
fn scan(lab: &mut AgentLab, lines: u64) -> Result<Run> {
    // Sources may start reading before the socket answers: time from spawn.
    let ready = lab.start()?;
    let pid = lab.pid()?;
    let t0 = Instant::now();
    loop {
        let s = lab.stats()?;
        if s["offences"].as_u64().unwrap_or(0) >= lines {
            break;
        }
        if t0.elapsed() > Duration::from_secs(600) {
            bail!("the agent took more than 600 s; last stats: {s}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let wall = (ready + t0.elapsed()).as_secs_f64();
    let cpu = cpu_secs(pid)?;
    Ok(Run {
        wall,
        stop: 0.0,
        cpu,
    })
}

/// utime + stime of process `pid`, in seconds.
fn cpu_secs(pid: u32) -> Result<f64> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let after = text
        .rsplit_once(')')
        .map(|(_, r)| r)
        .context("no ')' in /proc/PID/stat")?;
    let f: Vec<&str> = after.split_ascii_whitespace().collect();
    // Fields 14 and 15 of stat(5); `after` starts at field 3.
    let ticks: u64 = f
        .get(11..13)
        .context("short /proc/PID/stat")?
        .iter()
        .map(|v| v.parse::<u64>().unwrap_or(0))
        .sum();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Ok(ticks as f64 / hz)
}
