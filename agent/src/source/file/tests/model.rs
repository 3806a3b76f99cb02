//! Model test: a writer, logrotate and the agent act on a real directory in a
//! random order (seeded, many seeds), and every line the writer wrote must come
//! out of the follower exactly once.
//!
//! The writer holds its file open like a daemon does: after a rename it keeps
//! writing to the renamed file until it reopens the path. Actions: append (whole
//! lines, or a line in two writes with polls in between), rename+create rotation
//! (with `.1`..`.N` shifting), copytruncate, delete+recreate, the writer reopening,
//! polls, time passing (rotated descriptors idle out), and the agent stopping
//! (after a last poll, saving its position and those of the rotated files it
//! still reads) and starting again later, with any of the above happening while
//! it is down, the writer possibly still writing to a rotated file.
//!
//! Only what no follower could recover is ruled out: deleting a file that holds
//! lines written since the follower last looked, (while the agent is down)
//! shifting the oldest rotated file out of existence, and a copytruncate while the
//! agent is down of a file that was empty when it stopped (nothing tells the copy
//! from an older rotated file then), any rotation while the agent is down
//! after the file it was reading was deleted (nothing tells the files rotated
//! since from older ones then), and stopping while the writer is on a rotated file
//! that is still empty (an empty file is not saved: by its inode alone it cannot
//! be told from a file that reused the inode by the restart) or already deleted
//! (nothing can open it again after the restart).

use super::*;
use std::collections::HashSet;
use std::fs::OpenOptions;

/// Rotated files kept by the model's logrotate (`log.1` .. `log.KEEP`).
const KEEP: usize = 6;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn id_of(path: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

struct Model {
    dir: tempfile::TempDir,
    path: PathBuf,
    rng: Rng,
    /// The writer's open file and its identity.
    writer: Option<(File, (u64, u64))>,
    /// Second half of a line the writer has started, not yet written.
    pending: Option<String>,
    next_line: u64,
    written: Vec<String>,
    got: Vec<String>,
    follower: Option<FileFollower>,
    saved: Option<FilePosition>,
    /// Positions of the rotated files still open at the stop.
    saved_rotated: Vec<FilePosition>,
    now: Instant,
    /// Files written since the follower last looked.
    dirty: HashSet<(u64, u64)>,
    options: FollowOptions,
    stats: Vec<FollowStats>,
    /// The saved file was deleted while the agent is down.
    saved_deleted: bool,
    /// Stops while the writer was on a rotated file.
    late_stops: u64,
    /// What happened, printed when a seed fails.
    trace: Vec<String>,
}

impl Model {
    fn new(seed: u64) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("app.log");
        append(&path, "");
        let options = FollowOptions {
            max_line: 200,
            ..FollowOptions::default()
        };
        let mut m = Model {
            dir,
            path: path.clone(),
            rng: Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1),
            writer: None,
            pending: None,
            next_line: 0,
            written: Vec::new(),
            got: Vec::new(),
            follower: Some(FileFollower::new(path, options.clone(), None)),
            saved: None,
            saved_rotated: Vec::new(),
            now: Instant::now(),
            dirty: HashSet::new(),
            options,
            stats: Vec::new(),
            trace: Vec::new(),
            saved_deleted: false,
            late_stops: 0,
        };
        m.poll();
        m
    }

    fn rotated(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("app.log.{i}"))
    }

    fn writer_on_path(&self) -> bool {
        match (&self.writer, id_of(&self.path)) {
            (Some((_, w)), Some(p)) => *w == p,
            _ => false,
        }
    }

    fn write(&mut self, text: &str) {
        if self.writer.is_none() {
            self.reopen();
        }
        let (file, id) = self.writer.as_mut().expect("writer");
        file.write_all(text.as_bytes()).expect("write");
        self.dirty.insert(*id);
    }

    fn reopen(&mut self) {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .expect("open");
        let id = id_of(&self.path).expect("id");
        self.writer = Some((file, id));
    }

    fn finish_pending(&mut self) {
        if let Some(rest) = self.pending.take() {
            self.write(&rest);
        }
    }

    fn new_line(&mut self) -> String {
        self.next_line += 1;
        // Unique, with a varying length; now and then longer than the bound.
        let pad = match self.rng.below(20) {
            0 => 300,
            n => n as usize * 3,
        };
        let line = format!("{:08} {}", self.next_line, "x".repeat(pad));
        self.written.push(if line.len() > 200 {
            line[..200].to_owned()
        } else {
            line.clone()
        });
        line
    }

    fn poll(&mut self) {
        let Some(f) = self.follower.as_mut() else {
            return;
        };
        let got = &mut self.got;
        f.poll_at(self.now, &mut |l| {
            got.push(String::from_utf8_lossy(l.bytes).into_owned())
        })
        .expect("poll");
        self.dirty.clear();
    }

    /// Shifts `.i` to `.i+1`; false if the oldest would be deleted while it holds
    /// lines nobody has read (or while the agent is down).
    fn shift(&mut self) -> bool {
        let oldest = self.rotated(KEEP);
        if let Some(id) = id_of(&oldest) {
            if self.dirty.contains(&id) || self.follower.is_none() {
                return false;
            }
            std::fs::remove_file(&oldest).expect("remove oldest");
        }
        for i in (1..KEEP).rev() {
            let from = self.rotated(i);
            if from.exists() {
                std::fs::rename(&from, self.rotated(i + 1)).expect("shift");
            }
        }
        true
    }

    fn step(&mut self) {
        let before = (self.next_line, self.got.len());
        let action = self.rng.below(100);
        self.act(action);
        self.trace.push(format!(
            "{action:2} lines {}..{} got {}: {} writer {:?} path {:?} up {}",
            before.0,
            self.next_line,
            before.1,
            self.got[before.1..]
                .iter()
                .map(|l| &l[5..8])
                .collect::<Vec<_>>()
                .join(","),
            self.writer.as_ref().map(|w| w.1.1),
            id_of(&self.path).map(|i| i.1),
            self.follower.is_some(),
        ));
        let mut files: Vec<String> = std::fs::read_dir(self.dir.path())
            .expect("dir")
            .flatten()
            .map(|e| {
                let m = e.metadata().expect("meta");
                format!(
                    "{}={}:{}",
                    e.file_name()
                        .to_string_lossy()
                        .trim_start_matches("app.log"),
                    m.ino() % 1000,
                    m.len()
                )
            })
            .collect();
        files.sort();
        if let Some(t) = self.trace.last_mut() {
            t.push_str(&format!(" [{}]", files.join(" ")));
        }
    }

    fn act(&mut self, action: u64) {
        match action {
            0..=34 => {
                self.finish_pending();
                for _ in 0..=self.rng.below(3) {
                    let line = self.new_line();
                    self.write(&format!("{line}\n"));
                }
            }
            35..=39 => {
                self.finish_pending();
                let line = self.new_line();
                let cut = 1 + self.rng.below(line.len() as u64 - 1) as usize;
                self.write(&line[..cut]);
                self.pending = Some(format!("{}\n", &line[cut..]));
            }
            40..=47 => {
                // rename+create; the writer goes on writing to the renamed file.
                self.finish_pending();
                let blind = self.follower.is_none() && self.saved_deleted;
                if self.path.exists() && !blind && self.shift() {
                    std::fs::rename(&self.path, self.rotated(1)).expect("rotate");
                    if self.rng.below(2) == 0 {
                        append(&self.path, "");
                    }
                }
            }
            48..=53 => {
                self.finish_pending();
                if !self.writer_on_path() {
                    self.reopen();
                }
            }
            54..=59 => {
                // copytruncate, atomic: no write between the copy and the truncate.
                self.finish_pending();
                // While down, after a stop that knew none of the file's bytes, a
                // copy cannot be told from an old rotated file (documented).
                let blind = self.follower.is_none()
                    && (self.saved_deleted || self.saved.is_some_and(|p| p.fingerprint_len == 0));
                if self.writer_on_path() && !blind && self.shift() {
                    let copy = self.rotated(1);
                    std::fs::copy(&self.path, &copy).expect("copy");
                    if id_of(&self.path).is_some_and(|id| self.dirty.contains(&id)) {
                        self.dirty.insert(id_of(&copy).expect("copy id"));
                    }
                    truncate(&self.path);
                }
            }
            60..=62 => {
                // delete+recreate by the writer itself.
                self.finish_pending();
                let clean = id_of(&self.path).is_some_and(|id| !self.dirty.contains(&id));
                if clean && self.writer_on_path() {
                    std::fs::remove_file(&self.path).expect("delete");
                    self.saved_deleted |= self.follower.is_none();
                    self.writer = None;
                    if self.rng.below(2) == 0 {
                        self.reopen();
                    }
                }
            }
            63..=86 => self.poll(),
            87..=91 => {
                // Time passes; rotated descriptors may idle out, so only once the
                // writer has moved on to the current file.
                if self.writer_on_path() || self.writer.is_none() {
                    self.now += Duration::from_secs(1 + self.rng.below(400));
                }
            }
            92..=95 => {
                // The writer may still be on a rotated file: its lines around the
                // restart are read from that file's saved position, unless it was
                // still empty (an empty file is not saved) or already deleted (no
                // name to open it by after the restart): both documented.
                let (writer_len, writer_links) = self
                    .writer
                    .as_ref()
                    .and_then(|(f, _)| f.metadata().ok())
                    .map_or((0, 0), |m| (m.len(), m.nlink()));
                let resumable = self.writer_on_path()
                    || self.writer.is_none()
                    || (writer_len > 0 && writer_links > 0);
                if self.follower.is_some() && resumable {
                    // Stop: a last poll, then the position is saved.
                    self.poll();
                    let f = self.follower.take().expect("follower");
                    self.saved = f.position();
                    self.saved_rotated = f.rotated_positions();
                    if !self.writer_on_path() && self.writer.is_some() {
                        self.late_stops += 1;
                    }
                    // Stopped while reading a file no longer at the path: as if
                    // it was deleted while down.
                    self.saved_deleted = self
                        .saved
                        .is_some_and(|p| id_of(&self.path).is_none_or(|id| id != (p.dev, p.inode)));
                    self.stats.push(f.stats());
                }
            }
            _ => {
                if self.follower.is_none() {
                    self.saved_deleted = false;
                    self.follower = Some(
                        FileFollower::new(self.path.clone(), self.options.clone(), self.saved)
                            .with_rotated(self.saved_rotated.clone()),
                    );
                    // File times are kept coarser than the clock.
                    std::thread::sleep(Duration::from_millis(2));
                    // The source thread looks at once when it starts.
                    self.poll();
                }
            }
        }
    }

    /// The follower's stats and the stops while the writer was on a rotated
    /// file, or what went wrong (with the trace).
    fn check(mut self, seed: u64) -> Result<(Vec<FollowStats>, u64), String> {
        if self.follower.is_none() {
            self.follower = Some(
                FileFollower::new(self.path.clone(), self.options.clone(), self.saved)
                    .with_rotated(self.saved_rotated.clone()),
            );
        }
        self.finish_pending();
        self.poll();
        self.poll();
        if let Some(f) = &self.follower {
            self.stats.push(f.stats());
        }
        let mut seen = HashSet::new();
        let twice: Vec<&str> = self
            .got
            .iter()
            .filter(|l| !seen.insert(l.as_str()))
            .map(|l| &l[..8])
            .collect();
        let lost: Vec<&str> = self
            .written
            .iter()
            .filter(|l| !seen.contains(l.as_str()))
            .map(|l| &l[..8])
            .collect();
        if !twice.is_empty() || !lost.is_empty() || self.got.len() != self.written.len() {
            let got: Vec<&str> = self.got.iter().map(|l| &l[..8]).collect();
            return Err(format!(
                "{}\ngot: {got:?}\nseed {seed}: of {} lines, got {}, lost {lost:?}, read twice {twice:?}",
                self.trace.join("\n"),
                self.written.len(),
                self.got.len(),
            ));
        }
        Ok((self.stats, self.late_stops))
    }
}

/// Seeds that found bugs in soaks beyond the default range (each has a
/// hand-written test in `tests.rs` too; some found them before stops with the
/// writer on a rotated file were allowed, which changed their sequences): run on
/// every test run.
const REGRESSION_SEEDS: &[u64] = &[
    88, 339, 352, 480, 570, 624, 775, 881, 1102, 1446, 1794, 1957, 1984, 2773, 2794, 3679, 3687,
    5071, 10166, 26919, 28678, 57830,
];

/// Runs one seed: 150 random steps, then the check.
fn run_seed(seed: u64) -> Result<(Vec<FollowStats>, u64), String> {
    let mut m = Model::new(seed);
    for _ in 0..150 {
        m.step();
    }
    m.check(seed)
}

#[test]
fn model_regression_seeds() {
    for &seed in REGRESSION_SEEDS {
        if let Err(report) = run_seed(seed) {
            panic!("{report}");
        }
    }
}

#[test]
fn model_no_lost_and_no_duplicated_line() {
    let mut totals = FollowStats::default();
    // LOG2DROP_MODEL_SEED=N runs one seed (to debug a failure).
    // LOG2DROP_MODEL_SEEDS=N runs seeds 0..N (a longer soak); with
    // LOG2DROP_MODEL_FIRST=M, seeds M..M+N (to split a soak across processes).
    let var = |name: &str| std::env::var(name).ok().and_then(|s| s.parse::<u64>().ok());
    let seeds = match (var("LOG2DROP_MODEL_SEED"), var("LOG2DROP_MODEL_SEEDS")) {
        (Some(n), _) => n..n + 1,
        (None, Some(n)) => {
            let first = var("LOG2DROP_MODEL_FIRST").unwrap_or(0);
            first..first.saturating_add(n)
        }
        (None, None) => 0..120,
    };
    // Every seed runs; the first failure is shown in full, the others by number.
    let mut failed = Vec::new();
    let mut late_stops = 0;
    let count = seeds.end - seeds.start;
    for seed in seeds {
        match run_seed(seed) {
            Ok((stats, late)) => {
                late_stops += late;
                for s in stats {
                    totals.rotations += s.rotations;
                    totals.truncations += s.truncations;
                    totals.recovered += s.recovered;
                    totals.long_lines += s.long_lines;
                }
            }
            Err(report) => {
                if failed.is_empty() {
                    eprintln!("{report}");
                }
                failed.push(seed);
            }
        }
    }
    assert!(failed.is_empty(), "failed seeds: {failed:?}");
    // The sequences must have exercised what they are meant to (the default
    // run and longer ones).
    if count < 100 {
        return;
    }
    assert!(totals.rotations > 100, "{totals:?}");
    assert!(totals.truncations > 50, "{totals:?}");
    assert!(totals.recovered > 20, "{totals:?}");
    assert!(totals.long_lines > 20, "{totals:?}");
    assert!(
        late_stops > 20,
        "{late_stops} stops with the writer on a rotated file"
    );
}
