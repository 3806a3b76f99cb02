//! Case 6, cold start on a big log: the agent starts on a 1 GB auth.log it has never
//! seen, with `start = "beginning"`, and reads it all (the scan rate); then it is
//! stopped, the log grows by a few lines, and it is started again: the time until it
//! has caught up from its saved position. The file is in the page cache (it was just
//! written), so the scan figure is the agent's, not the disk's.

use std::io::Write as _;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use log2drop_bench::corpus;
use log2drop_bench::report::{self, CaseReport, Cell, Table};

use super::{Ctx, RUNS};
use crate::agentlab::{AgentLab, Spec, lines_read};

/// The built-in sshd filter on the log, read from its beginning on first start.
const BODY: &str = r#"[sources.auth]
path = {LOG}
filters = ["sshd"]
start = "beginning"

[jails.ssh]
filters = ["sshd"]
maxretry = 5
findtime = "10m"
bantime = "1h"
"#;

/// Lines per generated chunk.
const CHUNK_LINES: usize = 1_000_000;

/// Lines appended while the agent is down, before each resume.
const GROWTH: usize = 1_000;

pub fn run(ctx: &Ctx, rep: &mut CaseReport) -> Result<()> {
    let target_bytes = ctx.size(1 << 30, 50 << 20) as u64;
    let mut lab = AgentLab::new(&Spec {
        max_tracked: 1_000_000,
        xdp: true,
        body: BODY,
    })?;
    let (bytes, lines) = write_log(&lab, target_bytes)?;
    rep.note(format!(
        "Log: {} in {lines} lines from log2drop_bench::corpus::auth_log (chunks of \
         {CHUNK_LINES} lines, one seed each), written just before the run (page cache warm).",
        report::bytes(bytes as f64)
    ));
    rep.command(format!(
        "{} run --config {} (built-in sshd filter, start = \"beginning\", XDP backend)",
        ctx.agent.display(),
        lab.config().display()
    ));

    // First start: read everything.
    let t0 = Instant::now();
    let ready = lab.start()?;
    lab.wait_status(Duration::from_secs(600), Duration::from_millis(5), |s| {
        lines_read(s) >= lines
    })?;
    let full = t0.elapsed().as_secs_f64();
    let scan = full - ready.as_secs_f64();

    // Resumes after the log grew.
    let mut resume_ready = Vec::new();
    let mut resume_caught = Vec::new();
    for run in 0..RUNS {
        lab.stop()?;
        append(&lab, run)?;
        let t0 = Instant::now();
        let r = lab.start()?;
        lab.wait_status(Duration::from_secs(120), Duration::from_millis(1), |s| {
            lines_read(s) >= GROWTH as u64
        })?;
        let caught = t0.elapsed();
        let st = lab.status()?;
        if lines_read(&st) != GROWTH as u64 {
            bail!(
                "after resuming the agent read {} lines, expected the {GROWTH} new ones",
                lines_read(&st)
            );
        }
        resume_ready.push(r.as_secs_f64());
        resume_caught.push(caught.as_secs_f64());
    }

    let mut t = Table::new(
        &format!("Cold start on {}", report::bytes(bytes as f64)),
        &["what", "time", "rate", "target"],
    );
    t.row(vec![
        Cell::text("first start: spawn to socket answering"),
        Cell::value(ready.as_secs_f64(), "s", report::secs(ready.as_secs_f64())),
        Cell::text(""),
        Cell::text(""),
    ]);
    t.row(vec![
        Cell::text("first start: whole file read (from spawn)"),
        Cell::value(full, "s", report::secs(full)),
        Cell::value(
            bytes as f64 / full,
            "bytes/s",
            format!("{}/s", report::bytes(bytes as f64 / full)),
        ),
        Cell::text(""),
    ]);
    t.row(vec![
        Cell::text("first start: scan alone (socket answering to whole file read)"),
        Cell::value(scan, "s", report::secs(scan)),
        Cell::value(
            bytes as f64 / scan,
            "bytes/s",
            format!(
                "{}/s, {}",
                report::bytes(bytes as f64 / scan),
                report::rate(lines as f64 / scan).replace("/s", " lines/s")
            ),
        ),
        Cell::text(">= 1 GB/s"),
    ]);
    t.row(vec![
        Cell::text(format!(
            "resume from the saved position ({GROWTH} new lines): spawn to socket answering"
        )),
        Cell::median(&resume_ready, "s", report::secs),
        Cell::text(""),
        Cell::text(""),
    ]);
    t.row(vec![
        Cell::text(format!(
            "resume from the saved position: spawn to the {GROWTH} new lines read"
        )),
        Cell::median(&resume_caught, "s", report::secs),
        Cell::text(""),
        Cell::text("< 100 ms"),
    ]);
    rep.tables.push(t);
    rep.note(format!(
        "Resume figures are the median of {RUNS} stop (SIGTERM), append, start cycles. They \
         include the process start, the store, loading and attaching the XDP program and \
         reconciling the bans the scan produced; the catch-up itself is the difference \
         between the two resume rows."
    ));
    Ok(())
}

/// Writes the log in corpus chunks until it holds at least `target` bytes; returns
/// its size and line count.
fn write_log(lab: &AgentLab, target: u64) -> Result<(u64, u64)> {
    let path = lab.log();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    let mut bytes = 0u64;
    let mut lines = 0u64;
    let mut seed = 1u64;
    while bytes < target {
        let left = target - bytes;
        // The last chunk is cut to roughly what is left (about 100 bytes a line).
        let n = CHUNK_LINES.min((left / 90 + 1) as usize);
        let chunk = corpus::auth_log(n, seed);
        f.write_all(&chunk)
            .with_context(|| format!("writing {}", path.display()))?;
        bytes += chunk.len() as u64;
        lines += n as u64;
        seed += 1;
    }
    f.sync_all()
        .with_context(|| format!("syncing {}", path.display()))?;
    Ok((bytes, lines))
}

/// Appends [`GROWTH`] corpus lines while the agent is down.
fn append(lab: &AgentLab, run: usize) -> Result<()> {
    let path = lab.log();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    f.write_all(&corpus::auth_log(GROWTH, 1000 + run as u64))
        .with_context(|| format!("appending to {}", path.display()))
}
