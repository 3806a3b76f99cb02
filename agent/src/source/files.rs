//! The files one file source follows: one [`FileFollower`] per path its
//! [`Pattern`] names, with paths a glob matches later picked up while running.
//!
//! Files matched at start-up begin at their saved position, else at `start`
//! (`end` by default); files that appear later are new and are read from their
//! start. A path that no longer matches keeps its follower until the follower
//! holds nothing open (its rotated file may still be written to).

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::file::{FileFollower, FilePosition, FollowError, FollowOptions, FollowStats};
use super::glob::Pattern;
use super::line::Line;

/// How often a glob is expanded again when no inotify event asks for it sooner.
pub const RESCAN_EVERY: Duration = Duration::from_secs(2);

/// Followers of every path of one file source.
#[derive(Debug)]
pub struct FileSet {
    pattern: Pattern,
    options: FollowOptions,
    followers: BTreeMap<PathBuf, FileFollower>,
    /// Saved positions by path, used when a follower for that path is created.
    resume: HashMap<PathBuf, FilePosition>,
    scanned_at: Option<Instant>,
    /// Whether the first expansion happened (its matches start at `start`).
    started: bool,
    /// Stats of followers that were dropped, so counters never go back.
    retired: FollowStats,
}

impl FileSet {
    /// A set for `pattern`, resuming paths from `resume`.
    pub fn new(
        pattern: Pattern,
        options: FollowOptions,
        resume: HashMap<PathBuf, FilePosition>,
    ) -> Self {
        Self {
            pattern,
            options,
            followers: BTreeMap::new(),
            resume,
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

    /// Where each followed path would resume.
    pub fn positions(&self) -> Vec<(PathBuf, FilePosition)> {
        self.followers
            .iter()
            .filter_map(|(p, f)| Some((p.clone(), f.position()?)))
            .collect()
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
            let follower = FileFollower::new(path.clone(), self.options.clone(), resume);
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
