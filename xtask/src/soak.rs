//! `cargo xtask soak`: rotation torture against the real agent binary (issue 16,
//! "prove the whole"). A writer thread appends unique-address offence lines while a
//! rotator cycles through five rotation styles, stopping and restarting the agent
//! now and then (rotations go on while it is down). Every line names its own
//! address, so what the agent read is measured exactly:
//!
//! - jail `once` (`maxretry = 1`) bans every address read at least once: its bans,
//!   mapped back to the rotation that wrote them, give what was read per style;
//! - the `lines` counter of each agent run, taken after the agent caught up with a
//!   paused writer and just before it is stopped, summed over runs, gives every line
//!   read, so `lines - distinct addresses` is the number of lines read twice;
//! - jail `twice` (`maxretry = 2`) bans an address read twice within one run, which
//!   attributes such duplicates to a rotation style.
//!
//! A duplicate fails the run (a line read twice can ban an innocent host); losses are
//! printed per style and in total, split into lines of rotations done while the agent
//! was down and while it ran. Only 2 generations are kept, so a reader more than two
//! rotations behind finds its file gone: such losses are counted, not failed. The agent runs with the dry-run backend and needs
//! no privilege, so CI never has a reason to skip it.
//!
//! `--crash` runs the other soak instead, crash safety with kill -9 (see [`crash`]).

mod crash;

pub use crash::{WithoutRoot, run as crash};

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;

use crate::{host_target_dir, process};

#[derive(Debug, Args)]
pub struct Options {
    /// The reduced form CI runs: 100 rotations and 2 restarts instead of 1,000 and 10
    /// (with --crash: 10 kill -9 cycles instead of 100).
    #[arg(long)]
    pub quick: bool,
    /// Rotations to perform (overrides the default of the form chosen).
    #[arg(long)]
    pub rotations: Option<u32>,
    /// Agent restarts sprinkled among the rotations (overrides the default).
    #[arg(long)]
    pub restarts: Option<u32>,
    /// Seed of the pauses between rotations (with --crash: of the kill moments, pauses
    /// and jails); printed by every run, to reproduce it.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Keep the work directory (config, logs, state, agent output) afterwards.
    #[arg(long)]
    pub keep: bool,
    /// Crash safety instead of rotation: kill -9 the agent (XDP and nftables, root)
    /// at random moments during an offence flood and check every restart.
    #[arg(long, conflicts_with_all = ["rotations", "restarts", "keep"])]
    pub crash: bool,
    /// With --crash: kill/restart cycles (default 100, or 10 with --quick).
    #[arg(long, requires = "crash")]
    pub cycles: Option<u32>,
}

/// The rotation styles, in the order the rotator cycles through them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Style {
    /// logrotate's default: rename to `.1`, create a new file.
    RenameCreate,
    /// logrotate `copytruncate`: copy to a new `.1`, truncate in place.
    CopyTruncate,
    /// The file is deleted and a new one created (no generation kept).
    DeleteRecreate,
    /// `cp log log.1` over the existing generation (same inode), then truncate.
    CpOverGeneration,
    /// Rename to `.1`, create a new file, gzip `.1` at once (`.1.gz`).
    RenameGzip,
}

const STYLES: [Style; 5] = [
    Style::RenameCreate,
    Style::CopyTruncate,
    Style::DeleteRecreate,
    Style::CpOverGeneration,
    Style::RenameGzip,
];

impl Style {
    fn name(self) -> &'static str {
        match self {
            Style::RenameCreate => "rename+create",
            Style::CopyTruncate => "copytruncate",
            Style::DeleteRecreate => "delete+recreate",
            Style::CpOverGeneration => "cp over .1 + truncate",
            Style::RenameGzip => "rename+gzip",
        }
    }
}

/// Lines per write and the pause between writes: about 5,000 lines/s.
const BATCH: u32 = 10;
const WRITE_PAUSE: Duration = Duration::from_millis(2);
/// Rotations performed while the agent is down, after each stop.
const ROTATIONS_WHILE_DOWN: u32 = 3;

pub fn run(opts: &Options) -> Result<()> {
    if opts.crash {
        return crash::run(opts, crash::WithoutRoot::Fail);
    }
    let started = Instant::now();
    let rotations = opts
        .rotations
        .unwrap_or(if opts.quick { 100 } else { 1_000 });
    let restarts = opts.restarts.unwrap_or(if opts.quick { 2 } else { 10 });
    let seed = opts.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
    });
    let what = format!("soak: rotation torture, {rotations} rotations, {restarts} restarts");
    process::announce(&what);
    eprintln!("    seed {seed} (reproduce with --seed {seed})");

    let bin = host_target_dir().join("debug/log2drop");
    if !bin.is_file() {
        bail!(
            "{} is missing: run `cargo build -p log2drop` first",
            bin.display()
        );
    }
    let work = host_target_dir()
        .join("tmp")
        .join(format!("soak-{}", std::process::id()));
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let lab = Lab::new(bin, work.clone())?;
    let result = torture(&lab, rotations, restarts, seed);
    if opts.keep || result.is_err() {
        eprintln!("    work directory kept: {}", work.display());
    } else {
        let _ = fs::remove_dir_all(&work);
    }
    result?;
    process::finished(&what, started);
    Ok(())
}

/// The work directory: config, followed log, state and socket.
struct Lab {
    bin: PathBuf,
    dir: PathBuf,
}

impl Lab {
    fn new(bin: PathBuf, dir: PathBuf) -> Result<Lab> {
        let lab = Lab { bin, dir };
        let mut t = String::new();
        let _ = writeln!(t, "[agent]");
        let _ = writeln!(t, "state_dir = {:?}", lab.dir.join("state").display());
        let _ = writeln!(t, "socket = {:?}", lab.socket().display());
        let _ = writeln!(t, "\n[backends.dry-run]\n");
        let _ = writeln!(t, "[filters.soak]");
        let _ = writeln!(t, "regex = ['soak offence from <HOST> seq \\d+']\n");
        let _ = writeln!(t, "[sources.soak]");
        let _ = writeln!(t, "path = {:?}", lab.log().display());
        let _ = writeln!(t, "filters = [\"soak\"]");
        for (jail, maxretry) in [("once", 1), ("twice", 2)] {
            let _ = writeln!(t, "\n[jails.{jail}]");
            let _ = writeln!(t, "filters = [\"soak\"]");
            let _ = writeln!(t, "maxretry = {maxretry}");
            let _ = writeln!(t, "findtime = \"1d\"\nbantime = \"1d\"\nipv6_prefix = 128");
            let _ = writeln!(t, "backends = [\"dry-run\"]");
        }
        let config = lab.config();
        fs::write(&config, t).with_context(|| format!("writing {}", config.display()))?;
        File::create(lab.log()).with_context(|| format!("creating {}", lab.log().display()))?;
        Ok(lab)
    }

    fn config(&self) -> PathBuf {
        self.dir.join("log2drop.toml")
    }
    fn socket(&self) -> PathBuf {
        self.dir.join("log2drop.sock")
    }
    fn log(&self) -> PathBuf {
        self.dir.join("soak.log")
    }
    fn generation(&self, n: u32, gz: bool) -> PathBuf {
        let ext = if gz { ".gz" } else { "" };
        self.dir.join(format!("soak.log.{n}{ext}"))
    }

    fn start(&self) -> Result<Child> {
        let out_path = self.dir.join("agent.out");
        let out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&out_path)
            .with_context(|| format!("opening {}", out_path.display()))?;
        let err = out.try_clone()?;
        let child = Command::new(&self.bin)
            .args(["run", "--config"])
            .arg(self.config())
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("starting {}", self.bin.display()))?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.stats_lines().is_err() {
            if Instant::now() > deadline {
                bail!(
                    "the agent did not answer on {} within 30 s (see {})",
                    self.socket().display(),
                    out_path.display()
                );
            }
            thread::sleep(Duration::from_millis(50));
        }
        Ok(child)
    }

    fn cli(&self, args: &[&str]) -> Result<String> {
        let out = Command::new(&self.bin)
            .arg(args[0])
            .arg("--socket")
            .arg(self.socket())
            .args(&args[1..])
            .output()
            .with_context(|| format!("running log2drop {}", args[0]))?;
        if !out.status.success() {
            bail!(
                "log2drop {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The agent's `lines` counter (lines read since it started).
    fn stats_lines(&self) -> Result<u64> {
        let text = self.cli(&["stats", "--json"])?;
        let v: serde_json::Value = serde_json::from_str(&text).context("parsing stats --json")?;
        v.get("lines")
            .and_then(serde_json::Value::as_u64)
            .context("stats --json has no lines")
    }

    /// Waits until the counter stays put for a while (the writer is paused), then
    /// returns it.
    fn caught_up_lines(&self) -> Result<u64> {
        let mut last = self.stats_lines()?;
        let mut still = 0;
        while still < 5 {
            thread::sleep(Duration::from_millis(200));
            let now = self.stats_lines()?;
            if now == last {
                still += 1;
            } else {
                still = 0;
                last = now;
            }
        }
        Ok(last)
    }

    fn stop(&self, mut child: Child) -> Result<()> {
        let pid = child.id().to_string();
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .context("sending SIGTERM to the agent")?;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait()? {
                if !status.success() {
                    bail!("the agent exited with {status} after SIGTERM");
                }
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!("the agent did not exit within 20 s of SIGTERM");
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn rotate(&self, style: Style) -> io::Result<()> {
        let log = self.log();
        match style {
            Style::RenameCreate => {
                self.shift()?;
                fs::rename(&log, self.generation(1, false))?;
                File::create(&log)?;
            }
            Style::CopyTruncate => {
                self.shift()?;
                fs::copy(&log, self.generation(1, false))?;
                OpenOptions::new().write(true).open(&log)?.set_len(0)?;
            }
            Style::DeleteRecreate => {
                fs::remove_file(&log)?;
                File::create(&log)?;
            }
            Style::CpOverGeneration => {
                // fs::copy opens an existing destination with O_TRUNC: same inode.
                fs::copy(&log, self.generation(1, false))?;
                OpenOptions::new().write(true).open(&log)?.set_len(0)?;
            }
            Style::RenameGzip => {
                self.shift()?;
                let one = self.generation(1, false);
                fs::rename(&log, &one)?;
                File::create(&log)?;
                let mut enc = flate2::write::GzEncoder::new(
                    File::create(self.generation(1, true))?,
                    flate2::Compression::fast(),
                );
                io::copy(&mut File::open(&one)?, &mut enc)?;
                enc.finish()?.sync_all()?;
                fs::remove_file(&one)?;
            }
        }
        Ok(())
    }

    /// Moves `.1` (or `.1.gz`) to `.2`, dropping the old `.2`.
    fn shift(&self) -> io::Result<()> {
        for gz in [false, true] {
            let two = self.generation(2, gz);
            if two.exists() {
                fs::remove_file(&two)?;
            }
        }
        for gz in [false, true] {
            let one = self.generation(1, gz);
            if one.exists() {
                fs::rename(&one, self.generation(2, gz))?;
            }
        }
        Ok(())
    }
}

/// What the writer shares with the rotator: the rotation in progress, and for each
/// line written (its index is its address) the rotation it was written in.
struct Shared {
    rotation: u32,
    written: Vec<u32>,
    /// Rotations performed while the agent was down.
    down: Vec<u32>,
}

fn address(seq: u32) -> Ipv6Addr {
    Ipv6Addr::new(
        0x2001,
        0xdb8,
        0x50a,
        0,
        0,
        0,
        (seq >> 16) as u16,
        seq as u16,
    )
}

fn seq_of(addr: &str) -> Option<u32> {
    let a: Ipv6Addr = addr.split('/').next()?.parse().ok()?;
    let s = a.segments();
    (s[..6] == [0x2001, 0xdb8, 0x50a, 0, 0, 0]).then(|| (u32::from(s[6]) << 16) | u32::from(s[7]))
}

fn torture(lab: &Lab, rotations: u32, restarts: u32, seed: u64) -> Result<()> {
    let shared = Arc::new(Mutex::new(Shared {
        rotation: 0,
        written: Vec::new(),
        down: Vec::new(),
    }));
    let stop = Arc::new(AtomicBool::new(false));
    let mut agent = Some(lab.start()?);
    let writer = {
        let shared = Arc::clone(&shared);
        let stop = Arc::clone(&stop);
        let log = lab.log();
        thread::spawn(move || write_lines(&log, &shared, &stop))
    };

    // Restarts fall evenly among the rotations, never on the first or the last.
    let restart_at: Vec<u32> = (1..=restarts)
        .map(|i| i * rotations / (restarts + 1))
        .collect();
    let mut read_before_restarts = 0u64;
    let mut rng = seed | 1;
    let mut down_for = 0u32;
    let run = (|| -> Result<()> {
        for r in 0..rotations {
            // Up to 200 rotations/s: a pause of 5..=50 ms.
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            thread::sleep(Duration::from_millis(5 + rng % 46));
            let mut s = shared.lock().expect("writer panicked");
            let style = STYLES[(s.rotation as usize) % STYLES.len()];
            lab.rotate(style)
                .with_context(|| format!("rotation {r} ({})", style.name()))?;
            if agent.is_none() {
                let rotation = s.rotation;
                s.down.push(rotation);
            }
            s.rotation += 1;
            if restart_at.contains(&r) {
                // The writer is held by the lock: the count is exact once caught up.
                read_before_restarts += lab.caught_up_lines()?;
                lab.stop(agent.take().expect("agent running"))?;
                down_for = ROTATIONS_WHILE_DOWN;
                // The next rotation (and its lines) happen while the agent is down.
                let next = s.rotation;
                s.down.push(next);
            } else if down_for > 0 {
                down_for -= 1;
                if down_for == 0 {
                    drop(s);
                    agent = Some(lab.start()?);
                }
            }
        }
        Ok(())
    })();
    stop.store(true, Ordering::SeqCst);
    writer
        .join()
        .map_err(|_| anyhow::anyhow!("the writer thread panicked"))??;
    run?;
    let agent = match agent {
        Some(a) => a,
        None => lab.start()?,
    };
    let read_last = lab.caught_up_lines()?;
    let bans = lab.cli(&["bans", "--json"])?;
    lab.stop(agent)?;

    let shared = shared.lock().expect("writer finished");
    let report = tally(
        &shared.written,
        &shared.down,
        &bans,
        read_before_restarts + read_last,
    )?;
    eprintln!("{}", report.table());
    if report.duplicates_total > 0 {
        bail!(
            "{} lines were read twice ({} attributed to a style by jail `twice`): a line read twice can ban an innocent host",
            report.duplicates_total,
            report.rows.iter().map(|r| r.duplicates).sum::<u64>()
        );
    }
    // Losses are reported, not failed: a file deleted or shifted out of the kept
    // generations before the agent opened it cannot be read, and the soak cannot yet
    // tell that case from a bug (see docs/reliability.md for the figures).
    let lost_while_up: Vec<String> = report.rows[..STYLES.len()]
        .iter()
        .filter(|r| r.lost > r.lost_while_down)
        .map(|r| format!("{}: {}", r.style, r.lost - r.lost_while_down))
        .collect();
    if !lost_while_up.is_empty() {
        eprintln!(
            "    NOTE: lines lost while the agent was running: {}",
            lost_while_up.join(", ")
        );
    }
    Ok(())
}

fn write_lines(log: &Path, shared: &Mutex<Shared>, stop: &AtomicBool) -> Result<()> {
    let mut buf = String::new();
    while !stop.load(Ordering::SeqCst) {
        {
            let mut s = shared.lock().expect("rotator panicked");
            buf.clear();
            for _ in 0..BATCH {
                let seq = u32::try_from(s.written.len()).context("too many lines")?;
                let _ = writeln!(
                    buf,
                    "Dec  6 06:00:00 host soakd[1]: soak offence from {} seq {seq}",
                    address(seq)
                );
                let rotation = s.rotation;
                s.written.push(rotation);
            }
            let mut f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
                .with_context(|| format!("opening {}", log.display()))?;
            f.write_all(buf.as_bytes())
                .with_context(|| format!("appending to {}", log.display()))?;
        }
        thread::sleep(WRITE_PAUSE);
    }
    Ok(())
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Row {
    style: &'static str,
    written: u64,
    read: u64,
    duplicates: u64,
    lost: u64,
    /// Of `lost`, lines written in a rotation performed while the agent was down.
    lost_while_down: u64,
}

#[derive(Debug)]
struct Report {
    rows: Vec<Row>,
    read_total: u64,
    duplicates_total: u64,
}

/// Lines written in rotation `r` end up in the file rotated away by rotation `r`,
/// so they are attributed to that rotation's style.
fn tally(written: &[u32], down: &[u32], bans_json: &str, read_total: u64) -> Result<Report> {
    let bans: Vec<serde_json::Value> =
        serde_json::from_str(bans_json).context("parsing bans --json")?;
    let style_of = |seq: u32| STYLES[written[seq as usize] as usize % STYLES.len()];
    let mut rows: HashMap<Style, Row> = STYLES
        .iter()
        .map(|&s| {
            (
                s,
                Row {
                    style: s.name(),
                    ..Row::default()
                },
            )
        })
        .collect();
    for &r in written {
        rows.get_mut(&STYLES[r as usize % STYLES.len()])
            .expect("every style has a row")
            .written += 1;
    }
    let mut read = vec![false; written.len()];
    let mut distinct = 0u64;
    for b in &bans {
        let addr = b.get("address").and_then(|a| a.as_str()).unwrap_or("");
        let jail = b.get("jail").and_then(|a| a.as_str()).unwrap_or("");
        let Some(seq) = seq_of(addr).filter(|&s| (s as usize) < written.len()) else {
            bail!("ban on {addr:?} names no line written by this run");
        };
        let row = rows.get_mut(&style_of(seq)).expect("every style has a row");
        match jail {
            "once" => {
                read[seq as usize] = true;
                row.read += 1;
                distinct += 1;
            }
            "twice" => row.duplicates += 1,
            other => bail!("ban on {addr} by unexpected jail {other:?}"),
        }
    }
    for (seq, &r) in written.iter().enumerate() {
        if !read[seq] && down.contains(&r) {
            rows.get_mut(&style_of(seq as u32))
                .expect("every style has a row")
                .lost_while_down += 1;
        }
    }
    let mut rows: Vec<Row> = STYLES
        .iter()
        .map(|s| {
            let mut r = rows.remove(s).expect("every style has a row");
            r.lost = r.written - r.read;
            r
        })
        .collect();
    let total = rows.iter().fold(
        Row {
            style: "total",
            ..Row::default()
        },
        |mut t, r| {
            t.written += r.written;
            t.read += r.read;
            t.duplicates += r.duplicates;
            t.lost += r.lost;
            t.lost_while_down += r.lost_while_down;
            t
        },
    );
    let duplicates_total = read_total.saturating_sub(distinct);
    rows.push(Row {
        duplicates: duplicates_total,
        ..total
    });
    Ok(Report {
        rows,
        read_total,
        duplicates_total,
    })
}

impl Report {
    fn table(&self) -> String {
        let mut t = String::new();
        let _ = writeln!(
            t,
            "| rotation style | written | read (distinct) | duplicates | lost | of which while down |\n|---|---:|---:|---:|---:|---:|"
        );
        for r in &self.rows {
            let _ = writeln!(
                t,
                "| {} | {} | {} | {} | {} | {} |",
                r.style, r.written, r.read, r.duplicates, r.lost, r.lost_while_down
            );
        }
        let _ = write!(
            t,
            "lines read (sum of `stats` lines over agent runs): {}; the total row's duplicates \
             are that sum minus the distinct addresses read, the per-style ones are jail \
             `twice` bans (a line read twice within one run).",
            self.read_total
        );
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_round_trip_and_stay_in_the_documentation_prefix() {
        for seq in [0, 1, 65_535, 65_536, 1_000_000] {
            let a = address(seq);
            assert_eq!(a.segments()[..2], [0x2001, 0xdb8]);
            assert_eq!(seq_of(&a.to_string()), Some(seq));
        }
        assert_eq!(seq_of("2001:db8::1"), None);
        assert_eq!(seq_of("192.0.2.1"), None);
    }

    #[test]
    fn tally_counts_reads_duplicates_and_losses_per_style() {
        // Lines 0,1 in rotation 0 (rename+create), line 2 in rotation 1 (copytruncate).
        let written = [0, 0, 1];
        let bans = format!(
            r#"[{{"address":"{}","jail":"once"}},{{"address":"{}","jail":"once"}},{{"address":"{}","jail":"twice"}}]"#,
            address(0),
            address(2),
            address(2)
        );
        let report = tally(&written, &[1], &bans, 3).expect("valid");
        assert_eq!(report.rows[0].written, 2);
        assert_eq!(report.rows[0].read, 1);
        assert_eq!(report.rows[0].lost, 1);
        assert_eq!(report.rows[0].lost_while_down, 0);
        assert_eq!(report.rows[1].read, 1);
        assert_eq!(report.rows[1].duplicates, 1);
        assert_eq!(report.duplicates_total, 1);
        let total = report.rows.last().expect("total row");
        assert_eq!((total.written, total.read, total.lost), (3, 2, 1));
    }

    #[test]
    fn a_ban_on_a_foreign_address_is_an_error() {
        let bans = r#"[{"address":"2001:db8::1","jail":"once"}]"#;
        assert!(tally(&[0], &[], bans, 1).is_err());
    }
}
