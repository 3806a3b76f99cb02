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
//! was down and while it ran. Every lost line is given a cause: just before the
//! rotator destroys a file holding a rotation's lines (deletes it, or `cp` empties
//! it), it looks in `/proc/<pid>/fd` and `fdinfo` whether the agent holds it open
//! and how far it read. A file destroyed while the agent was down, deleted before
//! the agent opened it (the agent was that many rotations behind), or a copy
//! replaced before the agent read it to its end cannot be recovered, as
//! `source/file.rs` documents; any other loss fails the run. The agent runs with
//! the dry-run backend and needs no privilege, so CI never has a reason to skip it.
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

    /// Every ban, as `bans --json` prints them, asked jail by jail over the
    /// control socket itself: the client gives up after 10 s without a byte,
    /// and a debug agent on a loaded machine (load 18) takes longer than that
    /// to encode 180,000 bans. Two minutes here.
    fn bans(&self) -> Result<String> {
        use std::io::{BufRead, BufReader};
        use std::os::unix::net::UnixStream;
        let mut all = Vec::new();
        for jail in ["once", "twice"] {
            let mut stream = UnixStream::connect(self.socket())
                .with_context(|| format!("connecting to {}", self.socket().display()))?;
            stream.set_read_timeout(Some(Duration::from_secs(120)))?;
            writeln!(stream, r#"{{"v":1,"cmd":"bans","jail":"{jail}"}}"#)
                .context("asking for the bans")?;
            let mut line = String::new();
            BufReader::new(stream)
                .read_line(&mut line)
                .with_context(|| format!("reading the bans of jail {jail}"))?;
            let reply: serde_json::Value =
                serde_json::from_str(&line).context("parsing the bans reply")?;
            if reply.get("ok") != Some(&serde_json::Value::Bool(true)) {
                bail!("the agent refused the bans request: {line}");
            }
            match reply.get("data") {
                Some(serde_json::Value::Array(bans)) => all.extend(bans.iter().cloned()),
                _ => bail!("the bans reply carries no list"),
            }
        }
        Ok(serde_json::Value::Array(all).to_string())
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

    /// Performs rotation `h.rotation` (whose lines the log holds now) in `style`,
    /// telling `h` which file holds which rotation's lines and which it destroys.
    fn rotate(&self, style: Style, h: &mut Holders) -> io::Result<()> {
        let log = self.log();
        let now = h.rotation;
        match style {
            Style::RenameCreate => {
                self.shift(h)?;
                fs::rename(&log, self.generation(1, false))?;
                File::create(&log)?;
                h.gens[0] = Some(now);
            }
            Style::CopyTruncate => {
                self.shift(h)?;
                fs::copy(&log, self.generation(1, false))?;
                OpenOptions::new().write(true).open(&log)?.set_len(0)?;
                h.gens[0] = Some(now);
            }
            Style::DeleteRecreate => {
                h.destroyed(&log, Some(now), Destroyed::Deleted);
                fs::remove_file(&log)?;
                File::create(&log)?;
            }
            Style::CpOverGeneration => {
                let one = self.generation(1, false);
                h.destroyed(&one, h.gens[0], Destroyed::Overwritten);
                // fs::copy opens an existing destination with O_TRUNC: same inode.
                fs::copy(&log, &one)?;
                OpenOptions::new().write(true).open(&log)?.set_len(0)?;
                h.gens[0] = Some(now);
            }
            Style::RenameGzip => {
                self.shift(h)?;
                let one = self.generation(1, false);
                fs::rename(&log, &one)?;
                File::create(&log)?;
                let mut enc = flate2::write::GzEncoder::new(
                    File::create(self.generation(1, true))?,
                    flate2::Compression::fast(),
                );
                io::copy(&mut File::open(&one)?, &mut enc)?;
                enc.finish()?.sync_all()?;
                // The plain file goes; the agent reads `.gz` only at a restart.
                h.destroyed(&one, Some(now), Destroyed::Deleted);
                fs::remove_file(&one)?;
            }
        }
        Ok(())
    }

    /// Moves `.1` (or `.1.gz`) to `.2`, dropping the old `.2`.
    fn shift(&self, h: &mut Holders) -> io::Result<()> {
        for gz in [false, true] {
            let two = self.generation(2, gz);
            if two.exists() {
                if !gz {
                    h.destroyed(&two, h.gens[1], Destroyed::Deleted);
                }
                fs::remove_file(&two)?;
            }
        }
        h.gens = [None, h.gens[0]];
        for gz in [false, true] {
            let one = self.generation(1, gz);
            if one.exists() {
                fs::rename(&one, self.generation(2, gz))?;
            }
        }
        Ok(())
    }
}

/// How a file holding a rotation's lines was destroyed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Destroyed {
    /// Its last name removed (shifted out of the kept generations, deleted by
    /// delete+recreate, or the plain `.1` removed once gzipped).
    Deleted,
    /// Emptied by `cp` over it (`O_TRUNC`): the bytes are gone even for an open
    /// descriptor.
    Overwritten,
}

/// What the agent had of a file when it was destroyed, looked up in
/// `/proc/<pid>/fd` and `fdinfo` just before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AgentHeld {
    /// The agent was stopped.
    Down,
    /// No descriptor of the agent's named the file.
    NotOpen,
    /// The agent held it open, its read offset at `pos` of `len` bytes.
    Open { pos: u64, len: u64 },
}

/// The end of the file holding one rotation's lines (the file rotated away, or
/// the copy of a copytruncate), recorded when the rotator destroyed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fate {
    how: Destroyed,
    /// Rotations performed between the one that rotated the lines away and the
    /// one that destroyed their file (0: destroyed by the next rotation).
    after: u32,
    agent: AgentHeld,
}

/// Which rotation's lines each kept generation holds, and the fate of every
/// file destroyed, by the rotation whose lines it held: what the soak needs to
/// say why a line was lost.
#[derive(Debug, Default)]
struct Holders {
    /// The rotation being performed (its lines are in the log until it).
    rotation: u32,
    /// The agent's pid while it runs.
    agent: Option<u32>,
    /// Rotations whose lines `.1` and `.2` hold (plain files only).
    gens: [Option<u32>; 2],
    fates: HashMap<u32, Fate>,
}

impl Holders {
    /// Records that `path`, holding the lines of rotation `of`, is about to be
    /// destroyed, with what the agent holds of it now. Only the first
    /// destruction counts: after it the lines are gone.
    fn destroyed(&mut self, path: &Path, of: Option<u32>, how: Destroyed) {
        let Some(of) = of else { return };
        let agent = match self.agent {
            None => AgentHeld::Down,
            Some(pid) => held_by(pid, path),
        };
        let fate = Fate {
            how,
            after: self.rotation.saturating_sub(of),
            agent,
        };
        self.fates.entry(of).or_insert(fate);
    }
}

/// Whether process `pid` holds `path` open, and its read offset there (the
/// largest, if several descriptors name it).
fn held_by(pid: u32, path: &Path) -> AgentHeld {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = fs::metadata(path) else {
        return AgentHeld::NotOpen;
    };
    let fds = PathBuf::from(format!("/proc/{pid}/fd"));
    let Ok(entries) = fs::read_dir(&fds) else {
        return AgentHeld::NotOpen;
    };
    let mut best: Option<u64> = None;
    for e in entries.flatten() {
        let Ok(m) = fs::metadata(e.path()) else {
            continue;
        };
        if (m.dev(), m.ino()) != (meta.dev(), meta.ino()) {
            continue;
        }
        let info = format!("/proc/{pid}/fdinfo/{}", e.file_name().to_string_lossy());
        let pos = fs::read_to_string(info)
            .ok()
            .and_then(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix("pos:").map(|v| v.trim().parse().ok()))
            })
            .flatten()
            .unwrap_or(0);
        best = Some(best.map_or(pos, |b: u64| b.max(pos)));
    }
    match best {
        Some(pos) => AgentHeld::Open {
            pos,
            len: meta.len(),
        },
        None => AgentHeld::NotOpen,
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

/// Line `seq` as written, newline included.
fn line(seq: u32) -> String {
    format!(
        "Dec  6 06:00:00 host soakd[1]: soak offence from {} seq {seq}\n",
        address(seq)
    )
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
    let mut holders = Holders::default();
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
            holders.rotation = s.rotation;
            holders.agent = agent.as_ref().map(Child::id);
            lab.rotate(style, &mut holders)
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
    // Stopped whatever the answer: a failed soak leaves no agent running.
    let bans = lab.bans();
    lab.stop(agent)?;
    let bans = bans?;

    let shared = shared.lock().expect("writer finished");
    let report = tally(
        &shared.written,
        &shared.down,
        &bans,
        read_before_restarts + read_last,
    )?;
    eprintln!("{}", report.table());
    let mut causes = classify(&shared.written, &shared.down, &report.read, &holders.fates);
    causes.skipped_in_doubt(&fs::read_to_string(lab.dir.join("agent.out")).unwrap_or_default());
    eprintln!("{}", causes.table());
    if report.duplicates_total > 0 {
        bail!(
            "{} lines were read twice ({} attributed to a style by jail `twice`): a line read twice can ban an innocent host",
            report.duplicates_total,
            report.rows[..STYLES.len()]
                .iter()
                .map(|r| r.duplicates)
                .sum::<u64>()
        );
    }
    // A loss with a documented cause (a file destroyed before the agent could
    // read it) is reported; any other is a bug.
    if causes.unexplained > 0 {
        bail!(
            "{} lines were lost with no documented cause (see the causes above)",
            causes.unexplained
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
                buf.push_str(&line(seq));
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
    /// Whether each line (by its number) was read.
    read: Vec<bool>,
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
        read,
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

/// Why lines were lost: lines per documented cause, and those with none.
#[derive(Debug, Default)]
struct Causes {
    lines: Vec<(String, u64)>,
    unexplained: u64,
    /// The size of those lines as written.
    unexplained_bytes: u64,
}

/// Gives every line not read a cause, from the rotation that wrote it: a
/// rotation done while the agent was down, or the fate of the file that held
/// the rotation's lines. The causes that cannot be recovered (documented in
/// `source/file.rs`): a file destroyed while the agent was down, deleted
/// before the agent opened it (the agent was behind by at least the rotations
/// it outlived, plus one), or a copy replaced by `cp` before the agent read it
/// to its end. A file the agent held open and had read to its end when it was
/// destroyed, or deleted while the agent held it open (an open descriptor
/// still reads it), or never destroyed, explains nothing.
fn classify(written: &[u32], down: &[u32], read: &[bool], fates: &HashMap<u32, Fate>) -> Causes {
    let mut by: HashMap<String, u64> = HashMap::new();
    let mut unexplained = 0;
    let mut unexplained_bytes = 0;
    for (seq, &r) in written.iter().enumerate() {
        if read[seq] {
            continue;
        }
        let cause = if down.contains(&r) {
            Some("rotated while the agent was down".to_owned())
        } else {
            match fates.get(&r) {
                Some(Fate {
                    agent: AgentHeld::Down,
                    ..
                }) => Some("file destroyed while the agent was down".to_owned()),
                Some(Fate {
                    how: Destroyed::Deleted,
                    after,
                    agent: AgentHeld::NotOpen,
                }) => Some(format!(
                    "file deleted {after} rotation(s) after its own, never opened (agent {} or more rotations behind)",
                    after + 1
                )),
                Some(Fate {
                    how: Destroyed::Overwritten,
                    after,
                    agent: AgentHeld::NotOpen,
                }) => Some(format!(
                    "copy replaced by `cp` {after} rotation(s) after its own, not held open by the agent"
                )),
                Some(Fate {
                    how: Destroyed::Overwritten,
                    agent: AgentHeld::Open { pos, len },
                    ..
                }) if pos < len => {
                    Some("copy replaced by `cp` while the agent was reading it".to_owned())
                }
                _ => None,
            }
        };
        match cause {
            Some(c) => *by.entry(c).or_default() += 1,
            None => {
                if unexplained < 20 {
                    eprintln!(
                        "    unexplained loss: line {seq} of rotation {r} ({}), its file: {:?}",
                        STYLES[r as usize % STYLES.len()].name(),
                        fates.get(&r)
                    );
                }
                unexplained += 1;
                unexplained_bytes += line(seq as u32).len() as u64;
            }
        }
    }
    let mut lines: Vec<(String, u64)> = by.into_iter().collect();
    lines.sort();
    Causes {
        lines,
        unexplained,
        unexplained_bytes,
    }
}

impl Causes {
    /// The agent skips, and logs with its size, a rotated file rewritten in
    /// place that it cannot tell from lines it read (issue 16: "when in doubt,
    /// skip, and count"). When the lines with no other cause fit in the bytes
    /// it logged as skipped (`agent_out`, its log), that is their cause.
    fn skipped_in_doubt(&mut self, agent_out: &str) {
        let skipped: u64 = agent_out
            .lines()
            .filter(|l| l.contains("skipping a rotated file rewritten in place"))
            .filter_map(|l| {
                l.split("bytes=")
                    .nth(1)?
                    .split_whitespace()
                    .next()?
                    .parse::<u64>()
                    .ok()
            })
            .sum();
        if self.unexplained > 0 && self.unexplained_bytes <= skipped {
            self.lines.push((
                format!("skipped in doubt by the agent (a rewritten copy, {skipped} bytes logged as skipped)"),
                self.unexplained,
            ));
            self.unexplained = 0;
            self.unexplained_bytes = 0;
        }
    }

    fn table(&self) -> String {
        let mut t = String::from("| cause of loss | lines |\n|---|---:|\n");
        for (cause, n) in &self.lines {
            let _ = writeln!(t, "| {cause} | {n} |");
        }
        let _ = write!(t, "| **no documented cause** | {} |", self.unexplained);
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
    fn every_loss_gets_a_documented_cause_or_counts_as_unexplained() {
        // Rotation 0: its file deleted unopened; 1: its copy replaced by `cp`
        // after the agent read it to the end; 2: done while the agent was down;
        // 3: its file never destroyed; 4: replaced while half read.
        let written = [0, 0, 1, 2, 3, 4];
        let fates = HashMap::from([
            (
                0,
                Fate {
                    how: Destroyed::Deleted,
                    after: 1,
                    agent: AgentHeld::NotOpen,
                },
            ),
            (
                1,
                Fate {
                    how: Destroyed::Overwritten,
                    after: 0,
                    agent: AgentHeld::Open { pos: 10, len: 10 },
                },
            ),
            (
                4,
                Fate {
                    how: Destroyed::Overwritten,
                    after: 0,
                    agent: AgentHeld::Open { pos: 4, len: 10 },
                },
            ),
        ]);
        let mut read = [false; 6];
        read[1] = true;
        let causes = classify(&written, &[2], &read, &fates);
        assert_eq!(causes.unexplained, 2, "rotations 1 and 3");
        let total: u64 = causes.lines.iter().map(|(_, n)| n).sum();
        assert_eq!(total, 3);
        assert!(
            causes
                .lines
                .iter()
                .any(|(c, n)| c.contains("2 or more") && *n == 1)
        );
        // Two lines with no cause: more bytes than the agent logged as
        // skipped leaves them unexplained; enough explains them.
        let log = |bytes: usize| {
            format!(
                "WARN skipping a rotated file rewritten in place: its lines were most likely read already path=/x bytes={bytes}\n"
            )
        };
        let mut c = classify(&written, &[2], &read, &fates);
        let need = line(2).len() + line(4).len();
        c.skipped_in_doubt(&log(need - 1));
        assert_eq!(c.unexplained, 2);
        c.skipped_in_doubt(&log(need));
        assert_eq!(c.unexplained, 0);
    }

    #[test]
    fn a_ban_on_a_foreign_address_is_an_error() {
        let bans = r#"[{"address":"2001:db8::1","jail":"once"}]"#;
        assert!(tally(&[0], &[], bans, 1).is_err());
    }
}
