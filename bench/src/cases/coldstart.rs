//! Case 6, cold start on a big log: the agent starts on a 1 GB auth.log it has never
//! seen, with `start = "beginning"`, and reads it all (the scan rate); then it is
//! stopped, the log grows by a few lines, and it is started again: the time until it
//! has caught up from its saved position. The file is in the page cache (it was just
//! written), so the scan figure is the agent's, not the disk's.
//!
//! The scan is measured on two logs with the same lines, told apart only by their
//! timestamps, both placed relative to the bench's own clock:
//! - an old backlog (the target): weeks of log, every line older than the jail's
//!   `findtime`, as on a first start over a long-lived auth.log. No line can count,
//!   and the agent skips them on their time alone, before any regex.
//! - all recent (the worst case): every line inside `findtime`, so every line is
//!   matched in full and every hit is an offence for the engine (tracking, bans,
//!   the XDP map).
//!
//! Each scan starts from an empty state directory and unpinned maps, so each reads
//! the whole log; figures are medians over the runs.

use std::io::Write as _;
use std::time::{Duration, Instant, SystemTime};

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

/// The jail's `findtime` above.
const FINDTIME: Duration = Duration::from_secs(600);

/// Lines per generated chunk.
const CHUNK_LINES: usize = 1_000_000;

/// Lines appended while the agent is down, before each resume.
const GROWTH: usize = 1_000;

/// How far back the old backlog starts (it spans about 38 days per 10 M lines).
const OLD_START: Duration = Duration::from_secs(60 * 86_400);

/// The recent log's lines are spread evenly over this much time before it is
/// written, so all of them stay inside `findtime` for every scan.
const RECENT_SPAN: Duration = Duration::from_secs(60);

/// What one scan from the beginning took.
#[derive(Debug, Clone, Copy)]
struct Scan {
    /// Spawn to socket answering.
    ready: f64,
    /// Spawn to the whole file read.
    full: f64,
}

impl Scan {
    /// Socket answering to the whole file read.
    fn alone(&self) -> f64 {
        self.full - self.ready
    }
}

pub fn run(ctx: &Ctx, rep: &mut CaseReport) -> Result<()> {
    let target_bytes = ctx.size(1 << 30, 50 << 20) as u64;
    let mut lab = AgentLab::new(&Spec {
        max_tracked: 1_000_000,
        xdp: true,
        body: BODY,
    })?;
    rep.command(format!(
        "{} run --config {} (built-in sshd filter, start = \"beginning\", findtime = \"10m\", \
         XDP backend)",
        ctx.agent.display(),
        lab.config().display()
    ));

    // The old backlog: scans, then resumes after the log grew.
    let old_start = SystemTime::now() - OLD_START;
    let (bytes, lines) = write_log(&lab, target_bytes, &mut Stamps::old(old_start)?)?;
    rep.note(format!(
        "Logs: {} in {lines} lines each, the lines of log2drop_bench::corpus::auth_log \
         (chunks of {CHUNK_LINES} lines, one seed each), written just before their scans \
         (page cache warm). Old backlog: timestamps from {} days before the run on, about \
         one second per three lines, so every line is older than findtime. All recent: the \
         same lines with timestamps spread over the {} s before the log was written.",
        report::bytes(bytes as f64),
        OLD_START.as_secs() / 86_400,
        RECENT_SPAN.as_secs()
    ));
    let old = scans(&mut lab, lines, None)?;
    let (resume_ready, resume_caught) = resumes(&mut lab)?;

    // The same lines, all recent.
    lab.stop()?;
    lab.forget_state()?;
    let written = SystemTime::now();
    let recent_lines = {
        let mut stamps = Stamps::recent(written - RECENT_SPAN, lines)?;
        let (b, l) = write_log_fresh(&lab, target_bytes, &mut stamps)?;
        if (b, l) != (bytes, lines) {
            bail!("the recent log has {b} bytes in {l} lines, the old one {bytes} in {lines}");
        }
        l
    };
    let recent = scans(&mut lab, recent_lines, Some(written - RECENT_SPAN))?;

    let mut t = Table::new(
        &format!("Cold start on {}", report::bytes(bytes as f64)),
        &["what", "time", "rate", "target"],
    );
    let ready: Vec<f64> = old.iter().map(|s| s.ready).collect();
    t.row(vec![
        Cell::text("first start: spawn to socket answering"),
        Cell::median(&ready, "s", report::secs),
        Cell::text(""),
        Cell::text(""),
    ]);
    t.row(scan_row(
        "first start, old backlog: whole file read (from spawn)",
        &old.iter().map(|s| s.full).collect::<Vec<_>>(),
        bytes,
        lines,
        "",
    ));
    t.row(scan_row(
        "first start, old backlog: scan alone (socket answering to whole file read)",
        &old.iter().map(Scan::alone).collect::<Vec<_>>(),
        bytes,
        lines,
        ">= 1 GB/s",
    ));
    t.row(scan_row(
        "first start, all lines recent: scan alone (worst case)",
        &recent.iter().map(Scan::alone).collect::<Vec<_>>(),
        bytes,
        lines,
        "",
    ));
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
        "Scan figures are the median of {RUNS} first starts, each from an empty state \
         directory and unpinned maps. The two scans differ only in the lines' timestamps. \
         In the old backlog no line can count (all are older than findtime), and the agent \
         skips each on its timestamp before any regex runs: that is what a first start \
         over weeks of auth.log costs. With every line recent, every line is matched in \
         full and each hit (about half the lines) is an offence the engine tracks, and \
         thousands of addresses are banned into the XDP map while the scan runs: the \
         worst case, bound by matching and the engine, with no target."
    ));
    rep.note(format!(
        "Resume figures are the median of {RUNS} stop (SIGTERM), append, start cycles on \
         the old backlog, with {GROWTH} new lines stamped at the time they are appended. \
         They include the process start, the store, loading and attaching the XDP program \
         and reconciling the bans; the catch-up itself is the difference between the two \
         resume rows."
    ));
    Ok(())
}

/// A table row for a scan: median time, and the rate in MiB/s and lines/s.
fn scan_row(what: &str, times: &[f64], bytes: u64, lines: u64, target: &str) -> Vec<Cell> {
    let rates: Vec<f64> = times.iter().map(|t| bytes as f64 / t).collect();
    let line_rate = log2drop_bench::stats::median(times).map_or(0.0, |t| lines as f64 / t);
    vec![
        Cell::text(what),
        Cell::median(times, "s", report::secs),
        Cell::median(&rates, "bytes/s", |r| {
            format!(
                "{}/s, {}",
                report::bytes(r),
                report::rate(line_rate).replace("/s", " lines/s")
            )
        }),
        Cell::text(target),
    ]
}

/// [`RUNS`] first starts on the log, each from an empty state; the agent is left
/// running after the last. With `oldest`, the time of the log's oldest line: a
/// scan that ends with it outside `findtime` would not measure what it says.
fn scans(lab: &mut AgentLab, lines: u64, oldest: Option<SystemTime>) -> Result<Vec<Scan>> {
    let mut out = Vec::new();
    for run in 0..RUNS {
        if run > 0 {
            lab.stop()?;
            lab.forget_state()?;
        }
        let t0 = Instant::now();
        let ready = lab.start()?;
        lab.wait_status(Duration::from_secs(600), Duration::from_millis(5), |s| {
            lines_read(s) >= lines
        })?;
        let full = t0.elapsed().as_secs_f64();
        if let Some(oldest) = oldest
            && SystemTime::now()
                .duration_since(oldest)
                .is_ok_and(|age| age >= FINDTIME)
        {
            bail!(
                "the recent log's oldest line left findtime during scan {}: the scan took too \
                 long for the all-recent figure to be one",
                run + 1
            );
        }
        out.push(Scan {
            ready: ready.as_secs_f64(),
            full,
        });
    }
    Ok(out)
}

/// [`RUNS`] stop, append, start cycles; the times to socket answering and to the
/// new lines read.
fn resumes(lab: &mut AgentLab) -> Result<(Vec<f64>, Vec<f64>)> {
    let mut resume_ready = Vec::new();
    let mut resume_caught = Vec::new();
    for run in 0..RUNS {
        lab.stop()?;
        append(lab, run)?;
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
    Ok((resume_ready, resume_caught))
}

/// Syslog timestamps (`Mmm dd HH:MM:SS`, local time, as the agent reads them) for
/// the log's lines; each second is formatted once.
struct Stamps {
    zone: jiff::tz::TimeZone,
    /// Unix seconds of the line the corpus clock calls 0 in the first chunk.
    start: i64,
    /// Old backlog: each chunk's clock continues where the last one ended. Recent:
    /// line `i` of `lines` sits at `start + i * RECENT_SPAN / lines`.
    spread_over: Option<u64>,
    /// Clock offset of the current chunk, and the last clock seen.
    chunk_base: u64,
    last_clock: u64,
    /// Lines stamped before the current chunk.
    lines_before: u64,
    last: Option<(i64, String)>,
}

impl Stamps {
    fn old(start: SystemTime) -> Result<Stamps> {
        Stamps::new(start, None)
    }

    fn recent(start: SystemTime, lines: u64) -> Result<Stamps> {
        Stamps::new(start, Some(lines))
    }

    fn new(start: SystemTime, spread_over: Option<u64>) -> Result<Stamps> {
        let start = jiff::Timestamp::try_from(start).context("the bench's clock")?;
        Ok(Stamps {
            zone: jiff::tz::TimeZone::system(),
            start: start.as_second(),
            spread_over,
            chunk_base: 0,
            last_clock: 0,
            lines_before: 0,
            last: None,
        })
    }

    /// Starts the next chunk (its clock starts again at 0).
    fn next_chunk(&mut self, lines_in_last: u64) {
        self.chunk_base += self.last_clock + 1;
        self.last_clock = 0;
        self.lines_before += lines_in_last;
    }

    fn write(&mut self, out: &mut Vec<u8>, clock: u64, index: usize) {
        self.last_clock = clock;
        let secs = match self.spread_over {
            None => self.start + (self.chunk_base + clock) as i64,
            Some(total) => {
                let i = self.lines_before + index as u64;
                self.start + (i * RECENT_SPAN.as_secs() / total.max(1)) as i64
            }
        };
        if self.last.as_ref().is_none_or(|(s, _)| *s != secs) {
            let text = jiff::Timestamp::from_second(secs)
                .map(|t| {
                    t.to_zoned(self.zone.clone())
                        .strftime("%b %e %H:%M:%S")
                        .to_string()
                })
                .unwrap_or_default();
            self.last = Some((secs, text));
        }
        if let Some((_, text)) = &self.last {
            out.extend_from_slice(text.as_bytes());
        }
    }
}

/// Appends the log in corpus chunks until it holds at least `target` bytes;
/// returns its size and line count.
fn write_log(lab: &AgentLab, target: u64, stamps: &mut Stamps) -> Result<(u64, u64)> {
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
        let chunk =
            corpus::auth_log_stamped(n, seed, &mut |out, clock, i| stamps.write(out, clock, i));
        stamps.next_chunk(n as u64);
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

/// [`write_log`] into an emptied log.
fn write_log_fresh(lab: &AgentLab, target: u64, stamps: &mut Stamps) -> Result<(u64, u64)> {
    let path = lab.log();
    std::fs::File::create(&path).with_context(|| format!("emptying {}", path.display()))?;
    write_log(lab, target, stamps)
}

/// Appends [`GROWTH`] corpus lines, stamped now, while the agent is down.
fn append(lab: &AgentLab, run: usize) -> Result<()> {
    let path = lab.log();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    let mut stamps = Stamps::recent(SystemTime::now(), GROWTH as u64)?;
    stamps.spread_over = Some(u64::MAX);
    let lines = corpus::auth_log_stamped(GROWTH, 1000 + run as u64, &mut |out, clock, i| {
        stamps.write(out, clock, i)
    });
    f.write_all(&lines)
        .with_context(|| format!("appending to {}", path.display()))
}
