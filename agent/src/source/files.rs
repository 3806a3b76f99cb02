//! The files one file source follows: one [`FileFollower`] per path its
//! [`Pattern`] names, with paths a glob matches later picked up while running.
//!
//! Files matched at start-up begin at their saved position, else at `start`
//! (`end` by default); files that appear later are new and are read from their
//! start. A path that no longer matches keeps its follower until the follower
//! holds nothing open (its rotated file may still be written to).
//!
//! Positions are reported per path ([`FileSet::positions`]), and so are those of
//! the rotated files a follower still reads, under keys of their own
//! ([`rotated_key`]: `rotated:N:PATH`, which no configured path can be, as those
//! are absolute). A slot whose file was closed is reported as
//! [`FilePosition::NONE`], so a stale one is never resumed.

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::file::{FileFollower, FilePosition, FollowError, FollowOptions, FollowStats};
use super::glob::Pattern;
use super::line::Line;

/// How often a glob is expanded again when no inotify event asks for it sooner.
pub const RESCAN_EVERY: Duration = Duration::from_secs(2);

/// The key under which the position of the `slot`-th rotated file still open
/// for `path` is saved.
pub fn rotated_key(path: &Path, slot: usize) -> PathBuf {
    let mut key = std::ffi::OsString::from(format!("rotated:{slot}:"));
    key.push(path.as_os_str());
    PathBuf::from(key)
}

/// A saved key split into the followed path and, for a rotated file's key, its
/// slot.
pub fn split_key(key: &Path) -> (&Path, Option<usize>) {
    let rotated = key
        .to_str()
        .and_then(|k| k.strip_prefix("rotated:"))
        .and_then(|rest| rest.split_once(':'))
        .and_then(|(slot, path)| Some((Path::new(path), slot.parse().ok()?)));
    match rotated {
        Some((path, slot)) => (path, Some(slot)),
        None => (key, None),
    }
}

/// Followers of every path of one file source.
#[derive(Debug)]
pub struct FileSet {
    pattern: Pattern,
    options: FollowOptions,
    followers: BTreeMap<PathBuf, FileFollower>,
    /// Saved positions by path, used when a follower for that path is created.
    resume: HashMap<PathBuf, FilePosition>,
    /// Saved positions of rotated files by path, in slot order.
    resume_rotated: HashMap<PathBuf, Vec<FilePosition>>,
    /// How many rotated slots were saved or reported per path: those beyond what
    /// a follower holds now are reported as [`FilePosition::NONE`].
    slots: HashMap<PathBuf, usize>,
    scanned_at: Option<Instant>,
    /// Whether the first expansion happened (its matches start at `start`).
    started: bool,
    /// Stats of followers that were dropped, so counters never go back.
    retired: FollowStats,
}

impl FileSet {
    /// A set for `pattern`, resuming paths (and their rotated files, under
    /// [`rotated_key`]s) from `saved`.
    pub fn new(
        pattern: Pattern,
        options: FollowOptions,
        saved: HashMap<PathBuf, FilePosition>,
    ) -> Self {
        let mut resume = HashMap::new();
        let mut rotated: HashMap<PathBuf, Vec<(usize, FilePosition)>> = HashMap::new();
        for (key, position) in saved {
            match split_key(&key) {
                (path, Some(slot)) => rotated
                    .entry(path.to_owned())
                    .or_default()
                    .push((slot, position)),
                (_, None) => {
                    resume.insert(key, position);
                }
            }
        }
        let mut slots = HashMap::new();
        let mut resume_rotated = HashMap::new();
        for (path, mut list) in rotated {
            list.sort_by_key(|(slot, _)| *slot);
            // Slots saved with a file must be cleared once it is closed; empty
            // ones are cleared already.
            if let Some((last, _)) = list.iter().rev().find(|(_, p)| !p.is_none()) {
                slots.insert(path.clone(), last + 1);
            }
            resume_rotated.insert(path, list.into_iter().map(|(_, p)| p).collect());
        }
        Self {
            pattern,
            options,
            followers: BTreeMap::new(),
            resume,
            resume_rotated,
            slots,
            scanned_at: None,
            started: false,
            retired: FollowStats::default(),
        }
    }

    /// The configured pattern.
    pub fn pattern(&self) -> &Pattern {
        &self.pattern
    }

    /// Paths followed now.
    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        self.followers.keys().map(PathBuf::as_path)
    }

    /// Counters summed over every follower, past ones included.
    pub fn stats(&self) -> FollowStats {
        let mut total = self.retired;
        for f in self.followers.values() {
            add(&mut total, &f.stats());
        }
        total
    }

    /// Where each followed path would resume, and each rotated file still open
    /// (under [`rotated_key`]s; slots no longer used as [`FilePosition::NONE`]).
    pub fn positions(&mut self) -> Vec<(PathBuf, FilePosition)> {
        let mut out = Vec::new();
        for (path, f) in &self.followers {
            if let Some(p) = f.position() {
                out.push((path.clone(), p));
            }
            let rotated = f.rotated_positions();
            let used = self.slots.entry(path.clone()).or_insert(0);
            for slot in 0..rotated.len().max(*used) {
                let p = rotated.get(slot).copied().unwrap_or(FilePosition::NONE);
                out.push((rotated_key(path, slot), p));
            }
            *used = rotated.len();
        }
        out
    }

    /// Asks for the glob to be expanded again at the next poll.
    pub fn rescan_soon(&mut self) {
        self.scanned_at = None;
    }

    /// Expands the pattern if due, then polls every follower. Errors of one path
    /// go to `on_error` and do not stop the others. Returns whether any byte was
    /// read.
    pub fn poll_at(
        &mut self,
        now: Instant,
        sink: &mut dyn FnMut(Line<'_>),
        on_error: &mut dyn FnMut(FollowError),
    ) -> bool {
        let due = self
            .scanned_at
            .is_none_or(|t| now.saturating_duration_since(t) >= RESCAN_EVERY);
        let current = if due {
            self.scanned_at = Some(now);
            Some(self.scan())
        } else {
            None
        };
        let mut any = false;
        for f in self.followers.values_mut() {
            match f.poll_at(now, sink) {
                Ok(read) => any |= read,
                Err(e) => on_error(e),
            }
        }
        if let Some(current) = current
            && !self.pattern.is_literal()
        {
            // Paths gone from the glob whose files are all closed.
            let gone: Vec<PathBuf> = self
                .followers
                .iter()
                .filter(|(p, f)| f.is_idle() && !current.contains(p))
                .map(|(p, _)| p.clone())
                .collect();
            for p in gone {
                if let Some(f) = self.followers.remove(&p) {
                    add(&mut self.retired, &f.stats());
                }
            }
        }
        any
    }

    /// Creates followers for new matches; returns the matches.
    fn scan(&mut self) -> Vec<PathBuf> {
        let first = self.followers.is_empty() && !self.started;
        self.started = true;
        let paths = self.pattern.expand();
        for path in paths.iter().cloned() {
            if self.followers.contains_key(&path) {
                continue;
            }
            // A rotated file that a follower still reads, now under a matching
            // name: it is already being read.
            if let Ok(meta) = std::fs::metadata(&path) {
                let id = (meta.dev(), meta.ino());
                if self
                    .followers
                    .values()
                    .any(|f| f.open_ids().any(|o| o == id))
                {
                    continue;
                }
            }
            let resume = self.resume.remove(&path);
            let rotated = self.resume_rotated.remove(&path).unwrap_or_default();
            let follower =
                FileFollower::new(path.clone(), self.options.clone(), resume).with_rotated(rotated);
            let follower = if first || self.pattern.is_literal() {
                follower
            } else {
                follower.appeared_later()
            };
            self.followers.insert(path, follower);
        }
        paths
    }
}

fn add(total: &mut FollowStats, s: &FollowStats) {
    total.lines += s.lines;
    total.long_lines += s.long_lines;
    total.rotations += s.rotations;
    total.truncations += s.truncations;
    total.recovered += s.recovered;
    total.skipped_bytes += s.skipped_bytes;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::file::StartAt;
    use std::io::Write;

    fn append(path: &Path, text: &str) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .expect("open");
        f.write_all(text.as_bytes()).expect("write");
    }

    fn poll(set: &mut FileSet, now: Instant) -> Vec<String> {
        let mut out = Vec::new();
        set.poll_at(
            now,
            &mut |l| out.push(String::from_utf8_lossy(l.bytes).into_owned()),
            &mut |e| panic!("{e}"),
        );
        out.sort();
        out
    }

    #[test]
    fn glob_follows_existing_files_from_end_and_new_files_from_start() {
        let dir = tempfile::tempdir().expect("tempdir");
        append(&dir.path().join("a-access.log"), "old a\n");
        append(&dir.path().join("error.log"), "not matched\n");
        let pattern = Pattern::new(&dir.path().join("*access.log")).expect("glob");
        let mut set = FileSet::new(pattern, FollowOptions::default(), HashMap::new());
        let t0 = Instant::now();
        assert!(poll(&mut set, t0).is_empty());
        append(&dir.path().join("a-access.log"), "new a\n");
        append(&dir.path().join("b-access.log"), "first b\n");
        assert_eq!(poll(&mut set, t0), ["new a"]);
        // The new file is found at the next expansion and read from its start.
        assert_eq!(poll(&mut set, t0 + RESCAN_EVERY), ["first b"]);
        append(&dir.path().join("b-access.log"), "second b\n");
        assert_eq!(poll(&mut set, t0 + RESCAN_EVERY), ["second b"]);
        assert_eq!(set.positions().len(), 2);
        assert_eq!(set.stats().lines, 3);
    }

    #[test]
    fn rotated_name_matching_the_glob_is_not_read_twice() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("app.log");
        append(&p, "");
        let pattern = Pattern::new(&dir.path().join("app*")).expect("glob");
        let mut set = FileSet::new(
            pattern,
            FollowOptions {
                start_at: StartAt::End,
                ..FollowOptions::default()
            },
            HashMap::new(),
        );
        let t0 = Instant::now();
        poll(&mut set, t0);
        append(&p, "a\n");
        std::fs::rename(&p, dir.path().join("app.log.1")).expect("rename");
        append(&p, "b\n");
        let mut got = poll(&mut set, t0 + RESCAN_EVERY);
        got.extend(poll(&mut set, t0 + RESCAN_EVERY * 2));
        assert_eq!(got, ["a", "b"]);
    }

    #[test]
    fn rotated_keys_round_trip_and_are_never_a_configured_path() {
        let p = Path::new("/var/log/auth.log");
        let key = rotated_key(p, 3);
        assert_eq!(key, Path::new("rotated:3:/var/log/auth.log"));
        assert!(key.is_relative(), "configured paths are absolute");
        assert_eq!(split_key(&key), (p, Some(3)));
        assert_eq!(split_key(p), (p, None));
        for odd in ["rotated:x:/a", "rotated:/a", "/a/rotated:1:/b"] {
            assert_eq!(split_key(Path::new(odd)), (Path::new(odd), None), "{odd}");
        }
    }

    /// The rotated files a follower holds are reported under their own keys,
    /// a slot whose file was closed as NONE, and a set built from what was
    /// reported resumes them.
    #[test]
    fn rotated_positions_are_reported_cleared_and_resumed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("app.log");
        append(&p, "");
        let mut writer = std::fs::OpenOptions::new()
            .append(true)
            .open(&p)
            .expect("open");
        let pattern = Pattern::new(&p).expect("path");
        let mut set = FileSet::new(pattern.clone(), FollowOptions::default(), HashMap::new());
        let t0 = Instant::now();
        poll(&mut set, t0);
        writer.write_all(b"a1\n").expect("write");
        std::fs::rename(&p, dir.path().join("app.log.1")).expect("rotate");
        append(&p, "b1\n");
        assert_eq!(poll(&mut set, t0), ["a1", "b1"]);
        let saved: HashMap<PathBuf, FilePosition> = set.positions().into_iter().collect();
        let slot = saved.get(&rotated_key(&p, 0)).expect("rotated slot");
        assert_eq!(slot.offset, 3);
        assert_eq!(saved.len(), 2);

        // Down: the writer goes on in the rotated file.
        writer.write_all(b"a2\n").expect("write");
        let mut again = FileSet::new(pattern, FollowOptions::default(), saved);
        assert_eq!(poll(&mut again, t0), ["a2"]);

        // Idle: the rotated file is closed and its slot cleared.
        let later = t0 + crate::source::file::DEFAULT_ROTATED_IDLE * 2;
        poll(&mut again, later);
        let now: HashMap<PathBuf, FilePosition> = again.positions().into_iter().collect();
        assert_eq!(now.get(&rotated_key(&p, 0)), Some(&FilePosition::NONE));
        // Reported once: the next report leaves the slot alone.
        assert_eq!(again.positions().len(), 1);
    }

    #[test]
    fn saved_positions_resume_each_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = dir.path().join("a.log");
        append(&a, "one\n");
        let pattern = Pattern::new(&dir.path().join("*.log")).expect("glob");
        let mut set = FileSet::new(pattern.clone(), FollowOptions::default(), HashMap::new());
        poll(&mut set, Instant::now());
        let saved: HashMap<PathBuf, FilePosition> = set.positions().into_iter().collect();
        drop(set);
        append(&a, "two\n");
        let mut set = FileSet::new(pattern, FollowOptions::default(), saved);
        assert_eq!(poll(&mut set, Instant::now()), ["two"]);
    }
}
