//! Following one log file path across rotations without losing or repeating a line.
//!
//! A [`FileFollower`] owns the open descriptor(s) behind one path and turns the
//! bytes appended to them into complete, bounded lines ([`super::line`]). It is
//! plain synchronous code driven by [`FileFollower::poll_at`] with an injected
//! clock, so tests drive it step by step; the thread that calls it decides when to
//! poll (inotify wake-ups plus a polling fallback).
//!
//! A file is told apart from its successors by device+inode plus its first bytes
//! (the *head*, up to [`FINGERPRINT_MAX`]): an inode number is often reused at once
//! after a delete, but never while we hold the file open.
//!
//! What it handles:
//! - appends, with a partial last line kept until its `\n` arrives;
//! - rename+create: the path now names another file. The old descriptor stays
//!   open and is read as long as something writes to it, until it has been idle
//!   for [`FollowOptions::rotated_idle`] (at most [`FollowOptions::max_rotated`]
//!   such descriptors of files with lines; past it, the one idle longest is
//!   closed); the new file is read from 0. A deleted file is kept the
//!   same way: a writer that has not reopened its log still writes to it after
//!   logrotate removed the oldest rotation, and nobody else will see those lines;
//!   its space is freed at most `rotated_idle` after its last write;
//! - several rotations between two polls: the files that came and went in between
//!   are found among the rotated *siblings* in the same directory (`auth.log.1`,
//!   `auth.log-20250101`: the name followed by `.`, `-` or `_`) as files we had not
//!   seen before, and read whole, oldest first, before the new file;
//! - copytruncate: the file shrank, or its head or the bytes just before our offset
//!   changed (it was truncated and has grown again since). If the copy is still
//!   there as a sibling (its head equals the one we knew), the lines that reached
//!   the file between our last read and the truncation are read from the copy; then
//!   the file is read from 0;
//! - delete+recreate and a file that does not exist yet: wait until the path
//!   exists, then read the new file from 0;
//! - resume: a saved [`FilePosition`] continues exactly where the last run
//!   stopped. If the file was rotated while the agent was down, it is found among
//!   the siblings by device, inode and head, read from the saved offset, followed by
//!   any sibling written after it, and then the new file from 0. If it was
//!   copytruncated while the agent was down, the copy (a sibling newer than the
//!   saved position, see [`FilePosition::mtime_ns`]) is read from the saved offset
//!   instead, then the file from 0. The rotated files still open at the stop
//!   ([`FileFollower::rotated_positions`]) continue from their own positions.
//!
//! - a line is read at most once, however copies race the reads: the contents
//!   read are remembered by their first bytes with how far they were read
//!   (`generations`), and any copy of one (a copytruncate's, a `cp`) is read
//!   only past that; a rotated file rewritten in place (`cp` over it, a
//!   copytruncate copying into the same `log.1` again) is read only as the copy
//!   of a truncation, and otherwise skipped, its bytes counted in
//!   [`FollowStats::skipped_bytes`] and logged. A new file that reused a freed
//!   inode number is told from a rewrite by its birth time (statx), where the
//!   filesystem keeps one. A file that starts like the followed file as it is
//!   now is a copy of it (a `cp` finished, or caught half written, before the
//!   truncation): it is not read, its lines come from the followed file, and
//!   it stays available as the copy of a truncation seen later. A rotated file
//!   that grows is read only past what was handed out of its content in any
//!   file. Each read checks the file's first bytes afterwards, so a read that
//!   raced a truncation never hands out a later generation's lines.
//!
//! - rotate+compress while the agent was down: the saved file is found among
//!   the compressed siblings by its decompressed first bytes and read from the
//!   saved offset (gzip, zstd, xz, bzip2), then the files rotated after it.
//!
//! What cannot be recovered, by construction: lines written to a file that is then
//! deleted before anyone reads it, and lines of a copytruncate whose copy is gone
//! (compressed away) before the truncation is seen.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufRead, Read, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::line::{DEFAULT_MAX_LINE, Line, LineSplitter};

/// How long a rotated-away descriptor may stay idle before it is closed. Writers
/// usually reopen within seconds of a rotation; some only on their next restart or
/// SIGHUP, so this is generous.
pub const DEFAULT_ROTATED_IDLE: Duration = Duration::from_secs(300);

/// Most rotated-away descriptors of files with lines kept open per path; past it,
/// the one idle longest is closed. Empty ones count apart, up to the number of
/// siblings looked at.
pub const DEFAULT_MAX_ROTATED: usize = 8;

/// Most rotated siblings looked at in one scan (the newest by modification time),
/// so a directory with years of rotated files costs a bounded amount of work.
const MAX_SIBLINGS: usize = 64;

const READ_CHUNK: usize = 64 * 1024;

/// How many leading bytes of a file its fingerprint (its *head*) covers at most.
pub const FINGERPRINT_MAX: u64 = 256;

/// Fewest leading bytes two files must share to be taken for copies of one
/// content (a bare banner line is not enough; a timestamped first line is).
const SAME_CONTENT_MIN: usize = 64;

/// How many bytes just before the read offset are compared to tell a file that was
/// truncated and has since grown past our offset from one that was only appended.
const TAIL_CHECK: usize = 32;

/// Where a followed file was left: enough to resume after a restart without a gap
/// or a re-scan. `offset` is always just after a complete line.
///
/// Device+inode alone are not enough: a deleted file's inode is often reused at
/// once by the next file created, so the position also carries a fingerprint of
/// the file's first bytes (up to [`FINGERPRINT_MAX`]; possibly past `offset`, into
/// an unfinished line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FilePosition {
    /// Device of the file.
    pub dev: u64,
    /// Inode of the file.
    pub inode: u64,
    /// Byte offset of the first line not yet handed out.
    pub offset: u64,
    /// How many leading bytes `fingerprint` covers.
    pub fingerprint_len: u64,
    /// FNV-1a hash of those bytes.
    pub fingerprint: u64,
    /// The file's modification time when we last read it, in nanoseconds since
    /// the epoch; 0 if unknown (saved by an older version). A copy of the file
    /// made after that (a copytruncate while the agent was down) is newer, which
    /// tells it from an older rotated file that happens to start alike.
    pub mtime_ns: i64,
}

impl FilePosition {
    /// No file: what a rotated file's saved slot holds once that file is closed
    /// (saved positions are only ever overwritten). Inode 0 names no file.
    pub const NONE: FilePosition = FilePosition {
        dev: 0,
        inode: 0,
        offset: 0,
        fingerprint_len: 0,
        fingerprint: 0,
        mtime_ns: 0,
    };

    /// Whether this is [`FilePosition::NONE`].
    pub fn is_none(&self) -> bool {
        self.dev == 0 && self.inode == 0
    }
}

/// FNV-1a, 64 bit: stable across builds and Rust versions (it is persisted).
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Reads up to `len` bytes at `offset` into `buf` (cleared first); fewer at the
/// end of the file.
fn read_at(file: &File, offset: u64, len: usize, buf: &mut Vec<u8>) -> io::Result<()> {
    buf.clear();
    buf.resize(len, 0);
    let mut got = 0;
    while got < len {
        match file.read_at(&mut buf[got..], offset + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(got);
    Ok(())
}

/// The first bytes of a file, up to [`FINGERPRINT_MAX`].
fn read_head(file: &File) -> io::Result<Vec<u8>> {
    let mut head = Vec::new();
    read_at(file, 0, FINGERPRINT_MAX as usize, &mut head)?;
    Ok(head)
}

/// Whether two heads agree on the bytes both have.
fn same_start(a: &[u8], b: &[u8]) -> bool {
    let n = a.len().min(b.len());
    a[..n] == b[..n]
}

/// Whether a file starting with `head` is a copy of the file that starts with
/// `followed` (the followed file's first bytes as they are now): they agree on
/// at least [`SAME_CONTENT_MIN`] bytes, or all of `head` (a short file, or a
/// `cp` caught after its first bytes) is where the followed file starts. An
/// empty file is a copy of nothing yet.
fn copy_of_followed(head: &[u8], followed: &[u8]) -> bool {
    let n = head.len().min(followed.len());
    n > 0 && head[..n] == followed[..n] && (n >= SAME_CONTENT_MIN || head.len() <= followed.len())
}

/// Where `start = "end"` begins in `path` now: the position the agent saves for a
/// file it has none for before it reports ready, so a crash right after the
/// first start resumes there instead of skipping, as a new first run, what was
/// written meanwhile. `None` if there is no file.
pub fn end_position(path: &Path, max_line: usize) -> io::Result<Option<FilePosition>> {
    let mut reader = match Reader::open(path, max_line) {
        Ok(r) => r,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let end = reader.len()?;
    reader.seek_to(end)?;
    Ok(Some(reader.position()))
}

/// Where to start in a file the agent has no saved position for and that existed
/// when following began.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StartAt {
    /// Skip the existing content: old history is not replayed.
    #[default]
    End,
    /// Read the existing content.
    Beginning,
}

/// Tunables of a follower.
#[derive(Debug, Clone)]
pub struct FollowOptions {
    /// Longest line, in bytes; longer lines are cut and flagged.
    pub max_line: usize,
    /// Start position for a file first seen at start-up without a saved position.
    pub start_at: StartAt,
    /// How long a rotated-away descriptor is kept open without new bytes.
    pub rotated_idle: Duration,
    /// Most rotated-away descriptors of files with lines kept open (empty ones
    /// are bounded apart, by the siblings looked at).
    pub max_rotated: usize,
}

impl Default for FollowOptions {
    fn default() -> Self {
        Self {
            max_line: DEFAULT_MAX_LINE,
            start_at: StartAt::End,
            rotated_idle: DEFAULT_ROTATED_IDLE,
            max_rotated: DEFAULT_MAX_ROTATED,
        }
    }
}

/// Counters a follower keeps, for status and stats.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FollowStats {
    /// Lines handed out, cut ones included.
    pub lines: u64,
    /// Lines cut because they exceeded the maximum length.
    pub long_lines: u64,
    /// Rotations seen (rename+create or delete+recreate).
    pub rotations: u64,
    /// Truncations seen (copytruncate).
    pub truncations: u64,
    /// Files read that had come and gone between two looks: rotated siblings
    /// read whole, and copies read from our old offset after a copytruncate.
    pub recovered: u64,
    /// Bytes never read because they could not be told from lines already read:
    /// a rotated file rewritten in place (`cp` over it, a copytruncate's copy
    /// made again into the same file) that is not the copy of the file we follow.
    /// Skipping them may lose lines; reading them would read lines twice.
    pub skipped_bytes: u64,
}

/// An I/O failure on the followed file, with its path.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct FollowError {
    /// The followed path.
    pub path: PathBuf,
    /// What failed.
    #[source]
    pub source: io::Error,
}

/// One open descriptor and the line assembly state that goes with it.
#[derive(Debug)]
struct Reader {
    file: File,
    dev: u64,
    inode: u64,
    /// Bytes read from the descriptor so far.
    read_offset: u64,
    /// Offset just after the last complete line.
    committed: u64,
    splitter: LineSplitter,
    /// The file's first bytes as we know them, up to [`FINGERPRINT_MAX`].
    head: Vec<u8>,
    /// The last bytes before `read_offset`, up to [`TAIL_CHECK`].
    tail: Vec<u8>,
    /// Modification time at the last drain, in nanoseconds since the epoch.
    mtime: i128,
    /// The inode's birth time where the filesystem keeps one (statx): a file
    /// rewritten in place keeps it, a new file that reused a freed inode number
    /// does not.
    born: Option<std::time::SystemTime>,
    /// Scratch for comparisons.
    scratch: Vec<u8>,
}

fn mtime_of(meta: &std::fs::Metadata) -> i128 {
    i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec())
}

impl Reader {
    fn open(path: &Path, max_line: usize) -> io::Result<Self> {
        Self::from_file(File::open(path)?, max_line)
    }

    fn from_file(file: File, max_line: usize) -> io::Result<Self> {
        let meta = file.metadata()?;
        Ok(Self {
            file,
            dev: meta.dev(),
            inode: meta.ino(),
            read_offset: 0,
            committed: 0,
            splitter: LineSplitter::new(max_line),
            head: Vec::new(),
            tail: Vec::new(),
            mtime: mtime_of(&meta),
            born: meta.created().ok(),
            scratch: Vec::new(),
        })
    }

    fn id(&self) -> (u64, u64) {
        (self.dev, self.inode)
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    /// Positions the reader at `offset` (a line boundary), loading what it must
    /// know of the bytes before it.
    fn seek_to(&mut self, offset: u64) -> io::Result<()> {
        self.file.seek(SeekFrom::Start(offset))?;
        self.read_offset = offset;
        self.committed = offset;
        self.splitter.reset();
        let head_len = offset.min(FINGERPRINT_MAX) as usize;
        read_at(&self.file, 0, head_len, &mut self.head)?;
        let tail_len = offset.min(TAIL_CHECK as u64);
        read_at(
            &self.file,
            offset - tail_len,
            tail_len as usize,
            &mut self.tail,
        )?;
        Ok(())
    }

    /// Whether the bytes we read are no longer there: the file shrank below our
    /// offset, or was truncated and has grown again (its head or the bytes just
    /// before our offset changed). Looked at only when the file has grown or was
    /// modified, which is when a rewrite would otherwise be misread or missed.
    /// An empty file that was modified and is still empty was written to and
    /// truncated in between: that counts as rewritten too.
    fn rewritten(&mut self, meta: &std::fs::Metadata) -> io::Result<bool> {
        let len = meta.len();
        if len < self.read_offset {
            return Ok(true);
        }
        if len == self.read_offset {
            if mtime_of(meta) == self.mtime {
                return Ok(false);
            }
            if self.read_offset == 0 {
                return Ok(true);
            }
        }
        read_at(&self.file, 0, self.head.len(), &mut self.scratch)?;
        if self.scratch != self.head {
            return Ok(true);
        }
        let at = self.read_offset - self.tail.len() as u64;
        read_at(&self.file, at, self.tail.len(), &mut self.scratch)?;
        Ok(self.scratch != self.tail)
    }

    /// Reads to the current end of the descriptor, handing out complete lines.
    /// Returns whether any byte was read. Does not look for rewrites.
    fn drain(
        &mut self,
        buf: &mut [u8],
        stats: &mut FollowStats,
        sink: &mut dyn FnMut(Line<'_>),
    ) -> io::Result<bool> {
        self.drain_checked(buf, stats, sink, u64::MAX, &[])
    }

    /// [`drain`](Self::drain) up to offset `limit` at most; a read from the
    /// file's start must find the first bytes `seen` (what the caller looked
    /// at), or nothing of it is handed out.
    fn drain_checked(
        &mut self,
        buf: &mut [u8],
        stats: &mut FollowStats,
        sink: &mut dyn FnMut(Line<'_>),
        limit: u64,
        seen: &[u8],
    ) -> io::Result<bool> {
        let mut any = false;
        loop {
            let room = limit.saturating_sub(self.read_offset);
            if room == 0 {
                break;
            }
            let want = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
            let n = match self.file.read(&mut buf[..want]) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            // A truncation between two reads (or since the caller looked)
            // makes the read go on in the new content, at our old offset: the
            // chunk would mix generations and hand out lines that a copy holds
            // too. The first bytes tell: if they changed, the chunk is
            // dropped and the rewrite is left for the caller to see.
            let changed = if self.head.is_empty() {
                let k = seen.len().min(n);
                self.read_offset == 0 && buf[..k] != seen[..k]
            } else {
                read_at(&self.file, 0, self.head.len(), &mut self.scratch)?;
                self.scratch != self.head
            };
            if changed {
                self.file.seek(SeekFrom::Start(self.read_offset))?;
                break;
            }
            any = true;
            let chunk = &buf[..n];
            let base = self.read_offset;
            let mut counted = |l: Line<'_>| {
                stats.lines += 1;
                if l.truncated {
                    stats.long_lines += 1;
                }
                sink(l);
            };
            if let Some(end) = self.splitter.push(chunk, &mut counted) {
                self.committed = base + end as u64;
            }
            if (self.head.len() as u64) == base && self.head.len() < FINGERPRINT_MAX as usize {
                let take = (FINGERPRINT_MAX as usize - self.head.len()).min(n);
                self.head.extend_from_slice(&chunk[..take]);
            }
            if n >= TAIL_CHECK {
                self.tail.clear();
                self.tail.extend_from_slice(&chunk[n - TAIL_CHECK..]);
            } else {
                self.tail.extend_from_slice(chunk);
                let excess = self.tail.len().saturating_sub(TAIL_CHECK);
                self.tail.drain(..excess);
            }
            self.read_offset += n as u64;
        }
        let meta = self.file.metadata()?;
        self.mtime = mtime_of(&meta);
        Ok(any)
    }

    /// Hands out an unterminated last line when the descriptor is given up for good.
    fn finish(&mut self, stats: &mut FollowStats, sink: &mut dyn FnMut(Line<'_>)) {
        self.splitter.finish(&mut |l| {
            stats.lines += 1;
            if l.truncated {
                stats.long_lines += 1;
            }
            sink(l);
        });
    }

    /// The fingerprint covers every head byte read, the start of an unfinished
    /// line included: those bytes are in the file, and the more it covers, the
    /// better it tells this file from a successor that starts alike.
    fn position(&self) -> FilePosition {
        let fingerprint_len = self.head.len() as u64;
        FilePosition {
            dev: self.dev,
            inode: self.inode,
            offset: self.committed,
            fingerprint_len,
            fingerprint: fnv1a(&self.head[..fingerprint_len as usize]),
            mtime_ns: i64::try_from(self.mtime).unwrap_or(0),
        }
    }

    /// Whether this open file is the one `p` was saved for.
    fn matches(&self, p: &FilePosition, len: u64) -> bool {
        self.id() == (p.dev, p.inode) && self.starts_like(p, len)
    }

    /// Whether this file starts with the bytes `p` was saved for and reaches its
    /// offset: the file itself, or a copy of it made by copytruncate.
    fn starts_like(&self, p: &FilePosition, len: u64) -> bool {
        if p.offset > len || p.fingerprint_len > len {
            return false;
        }
        let mut buf = Vec::new();
        let want = p.fingerprint_len.min(FINGERPRINT_MAX) as usize;
        matches!(read_at(&self.file, 0, want, &mut buf), Ok(()) if buf.len() == want && fnv1a(&buf) == p.fingerprint)
    }
}

/// A rotated sibling seen in the directory.
#[derive(Debug)]
struct Sibling {
    reader: Reader,
    head: Vec<u8>,
    len: u64,
    path: PathBuf,
}

/// What a truncated file's reader knew, to continue in its copy.
#[derive(Debug)]
struct CopyOf {
    head: Vec<u8>,
    offset: u64,
    committed: u64,
    splitter: LineSplitter,
}

/// A file accounted for: its head, modification time and birth time (see
/// [`Reader`]).
type Known = (Vec<u8>, i128, Option<std::time::SystemTime>);

/// Where [`FileFollower::recover`] starts reading a sibling.
#[derive(Debug)]
enum Recovered {
    /// From 0: a file that came and went between two looks.
    Whole,
    /// A copytruncate's copy, from where we were in the truncated file.
    Copy(CopyOf),
    /// A rotated file that only looked rewritten, after what we handed out.
    At(u64),
}

/// What [`FileFollower::check_grown`] decided for a rotated file that grew.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Grown {
    /// Read on from where it is now, up to `limit`, the length looked at; a
    /// read from its start must find the first bytes `seen` then.
    Read { limit: u64, seen: Vec<u8> },
    /// Not read this time: what it holds so far was handed out already.
    Wait,
    /// Removed from the rotated files: a copy of the followed file.
    GivenUp,
}

/// A descriptor whose path has moved on, read until it goes quiet.
#[derive(Debug)]
struct Rotated {
    reader: Reader,
    last_active: Instant,
}

/// Follows one path. See the module documentation.
#[derive(Debug)]
pub struct FileFollower {
    path: PathBuf,
    options: FollowOptions,
    current: Option<Reader>,
    /// Descriptors rotated away, oldest first.
    rotated: Vec<Rotated>,
    /// Saved position to resume from on the first open.
    resume: Option<FilePosition>,
    /// Saved positions of rotated files that were still open at the last stop,
    /// resumed at the first look so lines written to them late are not lost.
    resume_rotated: Vec<FilePosition>,
    /// While the path names no file and no file is current: the rotated
    /// descriptor that stands for the position, the newest file known to have
    /// been at the path (the saved file, continued at start-up after it was
    /// rotated while we were down, or files that appeared and were rotated away
    /// while we were not looking). Until the path names a file again, a restart
    /// resumes there, and only files rotated after it are new.
    resumed_in: Option<(u64, u64)>,
    /// The newest sibling with content that the last [`recover`](Self::recover)
    /// read whole.
    newest_recovered: Option<(u64, u64)>,
    /// Whether the first look at the path has happened (a file found then existed
    /// before us and starts at `start_at`; one found later is new and starts at 0).
    first_look_done: bool,
    /// Rotated siblings already accounted for (existing before we started, or
    /// read), by device+inode, with their heads and modification times (inode
    /// numbers are reused).
    known: HashMap<(u64, u64), Known>,
    /// Rotated files we were reading that were rewritten in place since, by
    /// device+inode: their bytes are most likely lines we read already (a copy
    /// of the followed file, or of an older generation). Such a file is read
    /// only as a copytruncate's copy, from our old offset; otherwise skipped.
    /// With each, its head and the offset after the last line we handed out:
    /// if it still starts alike (it only looked rewritten, being filled), it
    /// continues there.
    rewritten: HashMap<(u64, u64), (Vec<u8>, u64)>,
    /// Contents we read and no longer hold open, by their first bytes, with
    /// the offset after the last line handed out, newest last (at most
    /// [`MAX_SIBLINGS`]): any copy of one of them (a copytruncate's, a `cp`)
    /// is read only past that offset, whatever file it is in. This is what
    /// keeps a line from being read twice however the copies race the reads.
    generations: Vec<(Vec<u8>, u64)>,
    /// Wall-clock time of the last look at which file the path names, in
    /// nanoseconds since the epoch: a file created after it is new to us.
    last_look: i128,
    /// Modification time of the directory when the path was last seen missing.
    dir_mtime: i128,
    buf: Vec<u8>,
    stats: FollowStats,
}

impl FileFollower {
    /// A follower for `path`, resuming from `resume` if it names the same file.
    /// Nothing is opened until the first [`poll`](Self::poll).
    pub fn new(path: PathBuf, options: FollowOptions, resume: Option<FilePosition>) -> Self {
        Self {
            path,
            options,
            current: None,
            rotated: Vec::new(),
            resume,
            resume_rotated: Vec::new(),
            resumed_in: None,
            newest_recovered: None,
            first_look_done: false,
            known: HashMap::new(),
            rewritten: HashMap::new(),
            generations: Vec::new(),
            last_look: 0,
            dir_mtime: 0,
            buf: vec![0; READ_CHUNK],
            stats: FollowStats::default(),
        }
    }

    /// Also resumes these rotated files (saved from [`rotated_positions`]
    /// (Self::rotated_positions)), found among the siblings by device, inode and
    /// fingerprint, each from its saved offset.
    pub fn with_rotated(mut self, positions: Vec<FilePosition>) -> Self {
        self.resume_rotated = positions;
        self.resume_rotated
            .retain(|p| !p.is_none() && p.fingerprint_len > 0);
        self
    }

    /// Marks the path as appeared while watching: when it is first found it is
    /// read from its start (unless a saved position says otherwise). For paths
    /// a glob picks up after start-up.
    pub fn appeared_later(mut self) -> Self {
        self.first_look_done = true;
        self
    }

    /// The followed path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Counters so far.
    pub fn stats(&self) -> FollowStats {
        self.stats
    }

    /// Whether the follower holds no descriptor: the path does not exist and
    /// nothing rotated away is still being read.
    pub fn is_idle(&self) -> bool {
        self.current.is_none() && self.rotated.is_empty()
    }

    /// Device+inode of every file this follower holds open.
    pub fn open_ids(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.current
            .iter()
            .map(Reader::id)
            .chain(self.rotated.iter().map(|r| r.reader.id()))
    }

    /// Where to resume after a restart: the current file and the offset after its
    /// last complete line; while no file is open, the saved position not used yet
    /// (so a restart while the file is missing keeps it). `None` if neither.
    pub fn position(&self) -> Option<FilePosition> {
        if let Some(r) = &self.current {
            return Some(r.position());
        }
        self.resumed_in
            .and_then(|id| self.rotated.iter().find(|r| r.reader.id() == id))
            .map(|r| r.reader.position())
            .or(self.resume)
    }

    /// Where to resume the rotated files still open, oldest first: written to
    /// after a stop (a writer that has not reopened its log yet), they hold lines
    /// a restart would otherwise lose. The file [`position`](Self::position)
    /// already names is left out, and so are files we know no byte of: an empty
    /// file's position names it by inode alone, and after a restart that inode
    /// may be another file's (a copy made while the agent was down), whose lines
    /// would be read twice.
    pub fn rotated_positions(&self) -> Vec<FilePosition> {
        let in_position = if self.current.is_none() {
            self.resumed_in
        } else {
            None
        };
        self.rotated
            .iter()
            .filter(|r| Some(r.reader.id()) != in_position && !r.reader.head.is_empty())
            .map(|r| r.reader.position())
            .collect()
    }

    /// Reads everything available now, handing each line (without its `\n`, and
    /// without a trailing `\r`) to `sink`, and follows any rotation seen.
    /// Returns whether any byte was read.
    pub fn poll(&mut self, sink: &mut dyn FnMut(Line<'_>)) -> Result<bool, FollowError> {
        self.poll_at(Instant::now(), sink)
    }

    /// [`poll`](Self::poll) with an injected clock for the idle limit of rotated
    /// descriptors.
    pub fn poll_at(
        &mut self,
        now: Instant,
        sink: &mut dyn FnMut(Line<'_>),
    ) -> Result<bool, FollowError> {
        let mut any = self.poll_rotated(now, sink);
        // Files created since our previous look at the path are new to us. File
        // times are kept coarser than the clock: allow a second of slack.
        let since = (self.last_look - 1_000_000_001, i64::MAX);

        if !self.first_look_done {
            any |= self.first_look(now, sink)?;
        } else if self.current.is_none() {
            self.open_current(0)?;
            if self.current.is_some() {
                // The path appeared since the last look; it may have been rotated
                // or copytruncated already, leaving lines in a sibling.
                any |= self.recover(since, None, now, sink);
            }
        }

        // Has the path moved on to another file? Looked at before the current
        // file is read, so a rotation's old file is read to its end and the
        // files rotated after it come next, before the new file.
        self.last_look = wall_clock();
        let meta = match std::fs::metadata(&self.path) {
            Ok(m) => Some(m),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(self.err(e)),
        };
        let moved = match (&meta, &self.current) {
            (Some(m), Some(r)) => r.id() != (m.dev(), m.ino()),
            _ => false,
        };
        if moved {
            // The old file to its end (it may have been truncated first); the
            // files rotated after it come next, so no probe for those here.
            any |= self.drain_current(now, since, false, sink)?;
        }
        if moved && let Some(old) = self.current.take() {
            self.stats.rotations += 1;
            self.push_rotated(old, now, sink);
            // Files that were created and rotated away between two looks.
            any |= self.recover(since, None, now, sink);
            self.open_current(0)?;
        }
        any |= self.drain_current(now, since, true, sink)?;
        if meta.is_none() {
            // While the path is missing, a file may appear there and be rotated
            // away between two looks: look at the siblings whenever the
            // directory's entries changed (after the current file was read, so
            // a copytruncate's copy is recognised as one first).
            let dir_mtime = std::fs::metadata(self.dir())
                .map(|m| mtime_of(&m))
                .unwrap_or(0);
            if dir_mtime != self.dir_mtime {
                self.dir_mtime = dir_mtime;
                self.newest_recovered = None;
                any |= self.recover(since, None, now, sink);
                if let Some(id) = self.newest_recovered.take() {
                    // Files came to the path and went since the one we were
                    // reading: that one is just a rotated file now, and the
                    // newest of them is where a restart resumes (otherwise it
                    // would read them all again as files rotated after ours).
                    if let Some(old) = self.current.take() {
                        self.stats.rotations += 1;
                        self.push_rotated(old, now, sink);
                    }
                    self.resumed_in = Some(id);
                }
            }
        }
        Ok(any)
    }

    /// Drains the rotated descriptors; closes those idle too long (deleted ones
    /// too: a writer may still hold them).
    fn poll_rotated(&mut self, now: Instant, sink: &mut dyn FnMut(Line<'_>)) -> bool {
        let mut any = false;
        let mut i = 0;
        // The followed file's first bytes, read once, when a rotated file grew.
        let mut followed: Option<Vec<u8>> = None;
        while i < self.rotated.len() {
            let r = &mut self.rotated[i];
            // A rotated file rewritten in place (`cp` over it, or a fast
            // copytruncate copying into the same file again) holds lines we read
            // already, or the copy of the followed file's latest lines: it is
            // given up here, without being remembered as known, so a truncation
            // of the followed file can still take it as its copy (`recover`).
            // Reading it again from 0 read every line twice. A failure on a
            // file we are giving up anyway only ends it early.
            let rewritten = r
                .reader
                .file
                .metadata()
                .and_then(|m| r.reader.rewritten(&m));
            if matches!(rewritten, Ok(true)) {
                let mut r = self.rotated.remove(i);
                // An unfinished line of a file being rewritten is a fragment
                // (of a copy caught half-written, most often): dropped.
                if r.reader.splitter.has_partial() {
                    self.stats.skipped_bytes += r.reader.read_offset - r.reader.committed;
                    r.reader.splitter.reset();
                }
                if self.resumed_in == Some(r.reader.id()) {
                    self.resumed_in = None;
                }
                self.note_generation(&r.reader.head, r.reader.committed);
                self.rewritten
                    .insert(r.reader.id(), (r.reader.head, r.reader.committed));
                continue;
            }
            let ok = rewritten.is_ok();
            let grown = if ok {
                self.check_grown(i, &mut followed)
            } else {
                Grown::Wait
            };
            if grown == Grown::GivenUp {
                continue;
            }
            let r = &mut self.rotated[i];
            let read = match grown {
                Grown::Read { limit, seen } => r
                    .reader
                    .drain_checked(&mut self.buf, &mut self.stats, sink, limit, &seen)
                    .unwrap_or(false),
                _ => false,
            };
            any |= read;
            if read {
                r.last_active = now;
            }
            let done =
                !ok || now.saturating_duration_since(r.last_active) >= self.options.rotated_idle;
            if done {
                let r = self.rotated.remove(i);
                self.retire(r.reader, sink);
            } else {
                i += 1;
            }
        }
        any
    }

    /// Before a rotated file that grew is read: the new bytes may be a copy of
    /// lines handed out already (a `cp` writing into a file we hold, seen empty
    /// or half written, or rewriting it in place with lines that keep its first
    /// bytes). A copy of the followed file as it is now is given up, neither
    /// known nor rewritten, so that a truncation seen later still finds it as
    /// its copy (its lines are read from the followed file meanwhile). Content
    /// handed out further already, in any file, is read only past that: if the
    /// file does not reach so far yet, it waits (at most until it has been
    /// idle for `rotated_idle`).
    fn check_grown(&mut self, i: usize, followed: &mut Option<Vec<u8>>) -> Grown {
        let r = &self.rotated[i].reader;
        let len = match r.len() {
            Ok(len) if len > r.read_offset => len,
            // Nothing new (or no length): nothing is read.
            _ => {
                return Grown::Read {
                    limit: r.read_offset,
                    seen: Vec::new(),
                };
            }
        };
        let mut head = Vec::new();
        if r.head.len() < FINGERPRINT_MAX as usize {
            if read_at(&r.file, 0, FINGERPRINT_MAX as usize, &mut head).is_err() {
                return Grown::Wait;
            }
        } else {
            head.clone_from(&r.head);
        }
        let followed = followed.get_or_insert_with(|| self.followed_head());
        if copy_of_followed(&head, followed) {
            let mut r = self.rotated.remove(i);
            r.reader.splitter.reset();
            if self.resumed_in == Some(r.reader.id()) {
                self.resumed_in = None;
            }
            self.note_generation(&r.reader.head, r.reader.committed);
            self.known.remove(&r.reader.id());
            self.rewritten.remove(&r.reader.id());
            return Grown::GivenUp;
        }
        let committed = self.rotated[i].reader.committed;
        if let Some(done) = self.already_read(&head).filter(|&d| d > committed) {
            if done > len {
                return Grown::Wait;
            }
            // An unfinished line below `done` was handed out too.
            if self.rotated[i].reader.seek_to(done).is_err() {
                return Grown::Wait;
            }
        }
        // Only the bytes looked at: `cp` may be writing more into it right now.
        Grown::Read {
            limit: len,
            seen: head,
        }
    }

    fn push_rotated(&mut self, reader: Reader, now: Instant, sink: &mut dyn FnMut(Line<'_>)) {
        self.rotated.push(Rotated {
            reader,
            last_active: now,
        });
        // Over the bound: close the file with lines that has been idle longest
        // (the oldest on a tie). Files we never read a byte of do not count:
        // closing one gains little, and it may be the one a writer fills next
        // (rotations nobody wrote to pile up in bursts); they have a bound of
        // their own, the siblings looked at.
        let max = self.options.max_rotated.max(1);
        loop {
            let (empty, with_lines): (Vec<usize>, Vec<usize>) =
                (0..self.rotated.len()).partition(|&i| self.rotated[i].reader.head.is_empty());
            let victim = if with_lines.len() > max {
                with_lines
                    .into_iter()
                    .min_by_key(|&i| (self.rotated[i].last_active, i))
            } else if empty.len() > MAX_SIBLINGS {
                empty.first().copied()
            } else {
                None
            };
            let Some(victim) = victim else {
                break;
            };
            let mut closed = self.rotated.remove(victim);
            let _ = closed.reader.drain(&mut self.buf, &mut self.stats, sink);
            self.retire(closed.reader, sink);
        }
    }

    /// Gives a descriptor up for good, remembering its file as accounted for.
    fn retire(&mut self, mut reader: Reader, sink: &mut dyn FnMut(Line<'_>)) {
        reader.finish(&mut self.stats, sink);
        if self.resumed_in == Some(reader.id()) {
            self.resumed_in = None;
            if self.current.is_none() {
                self.resume = Some(reader.position());
            }
        }
        self.note_generation(&reader.head, reader.committed);
        self.known
            .insert(reader.id(), (reader.head, reader.mtime, reader.born));
    }

    /// Remembers that the content starting with `head` was handed out up to
    /// `committed` (see `generations`).
    fn note_generation(&mut self, head: &[u8], committed: u64) {
        if head.is_empty() || committed == 0 {
            return;
        }
        if let Some(i) = self
            .generations
            .iter()
            .position(|(h, _)| same_start(h, head))
        {
            let (mut h, at) = self.generations.remove(i);
            if head.len() > h.len() {
                h = head.to_vec();
            }
            self.generations.push((h, at.max(committed)));
        } else {
            self.generations.push((head.to_vec(), committed));
        }
        if self.generations.len() > MAX_SIBLINGS {
            self.generations.remove(0);
        }
    }

    /// The followed file's first bytes as they are now (up to
    /// [`FINGERPRINT_MAX`]); empty without a current file.
    fn followed_head(&self) -> Vec<u8> {
        let mut head = Vec::new();
        if let Some(cur) = &self.current
            && read_at(&cur.file, 0, FINGERPRINT_MAX as usize, &mut head).is_err()
        {
            head.clear();
        }
        head
    }

    /// How far the content a file starting with `head` holds was handed out
    /// already, in any file: a generation we remember, or a file we hold open.
    /// Contents are told apart by their first bytes, at least
    /// [`SAME_CONTENT_MIN`] of them, compared on the bytes both have.
    fn already_read(&self, head: &[u8]) -> Option<u64> {
        if head.is_empty() {
            return None;
        }
        let open = self
            .current
            .iter()
            .chain(self.rotated.iter().map(|r| &r.reader))
            .map(|r| (r.head.as_slice(), r.committed));
        self.generations
            .iter()
            .map(|(h, at)| (h.as_slice(), *at))
            .chain(open)
            .filter(|(h, at)| {
                *at > 0 && h.len().min(head.len()) >= SAME_CONTENT_MIN && same_start(h, head)
            })
            .map(|(_, at)| at)
            .max()
    }

    /// Reads the current file, first checking it was not truncated or rewritten.
    /// `probe_first_bytes`: when nothing of the file was read yet and it changed,
    /// look for a copytruncate's copy first (see below).
    fn drain_current(
        &mut self,
        now: Instant,
        since: (i128, i64),
        probe_first_bytes: bool,
        sink: &mut dyn FnMut(Line<'_>),
    ) -> Result<bool, FollowError> {
        let Some(reader) = self.current.as_mut() else {
            return Ok(false);
        };
        let meta = reader.file.metadata().map_err(|source| FollowError {
            path: self.path.clone(),
            source,
        })?;
        let mut rewritten = reader.rewritten(&meta).map_err(|source| FollowError {
            path: self.path.clone(),
            source,
        })?;
        let read_offset = reader.read_offset;
        let changed = mtime_of(&meta) != reader.mtime;
        let few_bytes_read = read_offset > 0 && read_offset < FINGERPRINT_MAX;
        if !rewritten && probe_first_bytes && few_bytes_read && changed {
            // Every byte we read still reads the same, but they are few (part of
            // a first line, say), so a copytruncate whose file has grown again
            // from a line that starts alike looks like an append. Its copy tells.
            rewritten = self.truncated_behind_a_copy(since);
        }
        let mut any = false;
        if rewritten {
            self.stats.truncations += 1;
            // What we had not read yet is in the copy, if it is still there, and
            // in any file rotated away since.
            if let Some(cur) = &self.current {
                let (head, at) = (cur.head.clone(), cur.committed);
                self.note_generation(&head, at);
            }
            let copy_of = self.current.as_mut().map(|cur| CopyOf {
                head: cur.head.clone(),
                offset: cur.read_offset,
                committed: cur.committed,
                splitter: std::mem::replace(
                    &mut cur.splitter,
                    LineSplitter::new(self.options.max_line),
                ),
            });
            any |= self.recover(since, copy_of, now, sink);
            if let Some(reader) = self.current.as_mut() {
                reader.seek_to(0).map_err(|source| FollowError {
                    path: self.path.clone(),
                    source,
                })?;
            }
        } else if probe_first_bytes && read_offset == 0 && changed {
            // An empty file got its first bytes, or was written and truncated
            // and written again: with nothing read yet the two look the same, so
            // look for a copy holding what was written before a truncation.
            any |= self.recover(since, None, now, sink);
        }
        let Some(reader) = self.current.as_mut() else {
            return Ok(any);
        };
        any |= reader
            .drain(&mut self.buf, &mut self.stats, sink)
            .map_err(|source| FollowError {
                path: self.path.clone(),
                source,
            })?;
        Ok(any)
    }

    /// Whether a sibling that appeared since `since` is a copy of the current
    /// file taken before it was truncated: it starts with every byte we read of
    /// the file (all of them are in our head while they are few), reaches our
    /// offset, and the file no longer starts with it (a plain backup of a file
    /// that was not truncated still does).
    fn truncated_behind_a_copy(&self, since: (i128, i64)) -> bool {
        let Some(cur) = &self.current else {
            return false;
        };
        self.siblings().iter().any(|s| {
            !self.is_known(s)
                && is_after(s, since)
                && s.len >= cur.read_offset
                && s.head.starts_with(&cur.head)
                && !starts_with_file(&cur.file, &s.reader.file, s.len)
        })
    }

    /// After a rotation or truncation: reads the siblings that hold lines we have
    /// not seen, oldest first, and keeps them open like any rotated descriptor.
    ///
    /// - The copy of a copytruncate (`copy_of`): a sibling we did not know that
    ///   starts with the head we read and is at least as long as what we read. It
    ///   is read from our old offset, continuing our unfinished line.
    /// - Files created after our previous look and rotated away before this
    ///   one: siblings we did not know whose (modification time, [`age_rank`])
    ///   is after `since`. They are read whole.
    ///
    /// Every other sibling is remembered as accounted for.
    fn recover(
        &mut self,
        since: (i128, i64),
        mut copy_of: Option<CopyOf>,
        now: Instant,
        sink: &mut dyn FnMut(Line<'_>),
    ) -> bool {
        let mut fresh: Vec<(Sibling, Recovered)> = Vec::new();
        let mut seen = Vec::new();
        let followed = self.followed_head();
        for s in self.siblings() {
            seen.push(s.reader.id());
            if self.is_known(&s) {
                continue;
            }
            let id = s.reader.id();
            if let Some((h, _, born)) = self.known.get(&id)
                && !h.is_empty()
                && (born.is_none() || *born == s.reader.born)
            {
                // A file we knew by its bytes that no longer starts with them,
                // born when it was (or the filesystem cannot tell): rewritten in
                // place (`cp` over it, or truncated and being copied into). Its
                // bytes are most likely lines read already: only a copy we look
                // for is read. A new file that reused the inode number of one
                // deleted since (logrotate's remove, then copy) is born later
                // and is new.
                // Every byte of it was handed out (it was known).
                let known = (h.clone(), 0);
                self.rewritten.entry(id).or_insert(known);
            }
            let is_copy = copy_of.as_ref().is_some_and(|c| {
                !c.head.is_empty() && s.len >= c.offset && same_start(&c.head, &s.head)
            });
            if !is_copy && copy_of_followed(&s.head, &followed) {
                // A copy of the followed file as it is now (`cp` of it, finished
                // or still being written, before any truncation): every line in
                // it is read from the followed file. Left as it is (neither read
                // nor known), so a truncation seen later finds it as its copy.
                continue;
            }
            // What we handed out of it before it looked rewritten, if it still
            // starts with those bytes (it was being filled, not rewritten).
            let read_of = self
                .rewritten
                .get(&id)
                .filter(|(h, at)| *at > 0 && s.len >= *at && same_start(h, &s.head))
                .map(|(_, at)| *at);
            if is_copy {
                self.rewritten.remove(&id);
                let c = copy_of.take().expect("is_copy");
                match read_of {
                    Some(at) if at > c.offset => fresh.push((s, Recovered::At(at))),
                    _ => fresh.push((s, Recovered::Copy(c))),
                }
            } else if let Some(at) = read_of {
                self.rewritten.remove(&id);
                fresh.push((s, Recovered::At(at)));
            } else if self.rewritten.remove(&id).is_some() {
                // Rewritten while we read it, and not the copy we look for: in
                // doubt, skip it rather than read lines twice, and count it.
                self.stats.skipped_bytes += s.len;
                tracing::warn!(path = %s.path.display(), bytes = s.len,
                    "skipping a rotated file rewritten in place: its lines were most likely read already");
                self.known
                    .insert(s.reader.id(), (s.head, s.reader.mtime, s.reader.born));
            } else if is_after(&s, since) {
                fresh.push((s, Recovered::Whole));
            } else {
                self.known
                    .insert(s.reader.id(), (s.head, s.reader.mtime, s.reader.born));
            }
        }
        // Forget files that are gone, so this stays as small as the directory.
        self.known.retain(|id, _| seen.contains(id));
        self.rewritten.retain(|id, _| seen.contains(id));
        fresh.sort_by_key(|(s, _)| (s.reader.mtime, age_rank(&s.path)));
        let mut any = false;
        for (mut s, mut how) in fresh {
            // Never below what was handed out of the same content already.
            if let Some(done) = self.already_read(&s.head) {
                let from = match &how {
                    Recovered::Whole => 0,
                    Recovered::Copy(c) => c.offset,
                    Recovered::At(at) => *at,
                };
                if done > from {
                    if done > s.len {
                        // A copy still being written: what it holds was read.
                        self.known
                            .insert(s.reader.id(), (s.head, s.reader.mtime, s.reader.born));
                        continue;
                    }
                    how = Recovered::At(done);
                }
            }
            self.stats.recovered += 1;
            let copy_read = !matches!(how, Recovered::Whole);
            match how {
                Recovered::Whole => {}
                Recovered::Copy(c) => {
                    if s.reader.seek_to(c.offset).is_err() {
                        continue;
                    }
                    s.reader.splitter = c.splitter;
                    s.reader.committed = c.committed;
                }
                Recovered::At(at) => {
                    if s.reader.seek_to(at).is_err() {
                        continue;
                    }
                }
            }
            any |= s
                .reader
                .drain(&mut self.buf, &mut self.stats, sink)
                .unwrap_or(false);
            // An empty file stands for nothing: it may be an old one that only
            // looks new (inode reused, or known by nothing but its inode).
            if !copy_read && !s.reader.head.is_empty() {
                self.newest_recovered = Some(s.reader.id());
            }
            self.push_rotated(s.reader, now, sink);
        }
        any
    }

    /// Whether a sibling is a file already accounted for: same device+inode and
    /// still starting with the bytes we knew (a file only grows, so its head now
    /// holds all of them). A file shorter than the head we knew is another one
    /// (an inode reused at once by a new, still short file) or was rewritten: its
    /// bytes are new. A file known while empty has no bytes to tell it by: it is
    /// known only while it is empty with the same modification time (a new file
    /// that reused its inode was created later, and may be a writer's file).
    fn is_known(&self, s: &Sibling) -> bool {
        self.known.get(&s.reader.id()).is_some_and(|(h, mtime, _)| {
            if h.is_empty() {
                s.head.is_empty() && s.reader.mtime == *mtime
            } else {
                s.head.starts_with(h)
            }
        })
    }

    /// Plain-text rotated siblings of the path that we hold no descriptor for, the
    /// newest [`MAX_SIBLINGS`] by modification time, opened at offset 0.
    fn siblings(&self) -> Vec<Sibling> {
        let Some(base) = self.path.file_name().and_then(|n| n.to_str()) else {
            return Vec::new();
        };
        let Ok(entries) = std::fs::read_dir(self.dir()) else {
            return Vec::new();
        };
        let open: Vec<(u64, u64)> = self.open_ids().collect();
        let mut found: Vec<(i128, PathBuf)> = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let Some(rest) = name.strip_prefix(base) else {
                continue;
            };
            if !rest.starts_with(['.', '-', '_']) || is_compressed_name(rest) {
                continue;
            }
            let Ok(meta) = std::fs::metadata(entry.path()) else {
                continue;
            };
            if !meta.is_file() || open.contains(&(meta.dev(), meta.ino())) {
                continue;
            }
            found.push((mtime_of(&meta), entry.path()));
        }
        found.sort_by_key(|f| std::cmp::Reverse(f.0));
        found.truncate(MAX_SIBLINGS);
        found
            .into_iter()
            .filter_map(|(_, p)| {
                let reader = Reader::open(&p, self.options.max_line).ok()?;
                let head = read_head(&reader.file).ok()?;
                if super::compressed::Format::sniff(&head) != super::compressed::Format::Plain {
                    return None;
                }
                let len = reader.len().ok()?;
                Some(Sibling {
                    reader,
                    head,
                    len,
                    path: p,
                })
            })
            .collect()
    }

    /// Reads the rest of the saved file from a compressed rotated sibling (a
    /// rotate+gzip while the agent was down): one whose decompressed first
    /// bytes match the saved fingerprint and that reaches the saved offset. Its
    /// lines after the offset go to `sink`. Returns the `since` for the files
    /// rotated after it, or `None` if no compressed sibling is the saved file.
    fn resume_compressed(
        &mut self,
        p: &FilePosition,
        sink: &mut dyn FnMut(Line<'_>),
    ) -> Option<(i128, i64)> {
        if p.fingerprint_len == 0 {
            return None;
        }
        let base = self.path.file_name()?.to_str()?.to_owned();
        let mut found: Vec<(i128, PathBuf)> = std::fs::read_dir(self.dir())
            .ok()?
            .flatten()
            .filter_map(|e| {
                let name = e.file_name();
                let rest = name.to_str()?.strip_prefix(base.as_str())?.to_owned();
                if !rest.starts_with(['.', '-', '_']) || !is_compressed_name(&rest) {
                    return None;
                }
                let meta = e.metadata().ok()?;
                meta.is_file().then(|| (mtime_of(&meta), e.path()))
            })
            .collect();
        found.sort_by_key(|f| std::cmp::Reverse(f.0));
        found.truncate(MAX_SIBLINGS);
        for (mtime, path) in found {
            let Ok(file) = File::open(&path) else {
                continue;
            };
            let Ok(mut text) = super::compressed::open_reader(file, &path) else {
                continue;
            };
            let want = usize::try_from(p.fingerprint_len.min(FINGERPRINT_MAX)).unwrap_or(0);
            let mut head = vec![0u8; want];
            if text.read_exact(&mut head).is_err() || fnv1a(&head) != p.fingerprint {
                continue;
            }
            // Skip to the saved offset (counted from the file's start).
            let skip = p.offset.saturating_sub(want as u64);
            let mut rest = (&mut text).take(skip);
            match io::copy(&mut rest, &mut io::sink()) {
                Ok(n) if n == skip => {}
                _ => continue,
            }
            // The fingerprint may run past the offset (an unfinished line).
            let mut splitter = LineSplitter::new(self.options.max_line);
            let stats = &mut self.stats;
            let mut emit = |l: Line<'_>| {
                stats.lines += 1;
                if l.truncated {
                    stats.long_lines += 1;
                }
                sink(l);
            };
            if p.offset < want as u64 {
                let from = usize::try_from(p.offset).unwrap_or(want);
                splitter.push(&head[from..], &mut emit);
            }
            loop {
                let chunk = match text.fill_buf() {
                    Ok([]) => break,
                    Ok(c) => c,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        tracing::warn!(path = %path.display(), error = %e,
                            "cannot read the rest of the compressed rotated file");
                        break;
                    }
                };
                let n = chunk.len();
                splitter.push(chunk, &mut emit);
                text.consume(n);
            }
            splitter.finish(&mut emit);
            self.stats.recovered += 1;
            tracing::info!(path = %path.display(), offset = p.offset,
                "the followed file was rotated and compressed while the agent was down; read its rest from the compressed file");
            let plain = path.with_extension("");
            return Some(match age_rank(&plain) {
                0 => (mtime, 0),
                rank => (i128::MIN, rank),
            });
        }
        None
    }

    /// The first look at the path: resume from the saved position (finding the
    /// saved file among the siblings if it was rotated while we were down), or
    /// start per `start_at`. Every sibling not read is remembered as accounted for.
    fn first_look(
        &mut self,
        now: Instant,
        sink: &mut dyn FnMut(Line<'_>),
    ) -> Result<bool, FollowError> {
        self.first_look_done = true;
        let resume = self.resume.take();
        let mut siblings = self.siblings();
        let opened = match Reader::open(&self.path, self.options.max_line) {
            Ok(r) => Some(r),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(self.err(e)),
        };
        let mut start = None;
        let mut any = false;
        // Rotated files still open at the stop: each continues where it was left
        // (they are older than the saved file, so nothing below reads them again:
        // open files are never siblings).
        for rp in std::mem::take(&mut self.resume_rotated) {
            let Some(i) = siblings.iter().position(|s| s.reader.matches(&rp, s.len)) else {
                continue;
            };
            let mut s = siblings.swap_remove(i);
            if s.reader.seek_to(rp.offset).is_ok() {
                any |= s
                    .reader
                    .drain(&mut self.buf, &mut self.stats, sink)
                    .unwrap_or(false);
                self.push_rotated(s.reader, now, sink);
            }
        }
        if let Some(p) = &resume {
            let at_path = match &opened {
                Some(r) => r.matches(p, r.len().map_err(|e| self.err(e))?),
                None => false,
            };
            let renamed = if at_path {
                None
            } else {
                siblings.iter().position(|s| s.reader.matches(p, s.len))
            };
            // Where the lines after the saved offset are: in a copy made since
            // (copytruncate while we were down: the file itself was truncated,
            // even if it has grown back past the offset and starts alike), else
            // in the file itself, at the path or renamed to a sibling, else in
            // some copy of it (the file is gone or no longer reaches the offset).
            let same_file = if at_path {
                opened.as_ref()
            } else {
                renamed.map(|i| &siblings[i].reader)
            };
            let copy = copy_made_since(p, &siblings, same_file, renamed.map(|i| &siblings[i]));
            let saved = copy.or(renamed).or_else(|| {
                if at_path {
                    return None;
                }
                siblings
                    .iter()
                    .position(|s| p.fingerprint_len > 0 && s.reader.starts_like(p, s.len))
            });
            if let Some(i) = saved {
                let mut s = siblings.swap_remove(i);
                // Siblings written after the saved file are the ones rotated away
                // after it, while we were down. File times are coarse (files
                // written within a few milliseconds share one): on a tie, the
                // rotation number tells which is newer.
                // With logrotate's numbering the number says it (a file rotated
                // earlier may have been written to later); otherwise the time.
                let since = match age_rank(&s.path) {
                    0 => (s.reader.mtime, 0),
                    rank => (i128::MIN, rank),
                };
                if s.reader.seek_to(p.offset).is_ok() {
                    self.stats.recovered += 1;
                    any |= s
                        .reader
                        .drain(&mut self.buf, &mut self.stats, sink)
                        .unwrap_or(false);
                    if opened.is_none() {
                        self.resumed_in = Some(s.reader.id());
                    }
                    self.push_rotated(s.reader, now, sink);
                }
                siblings = Vec::new();
                self.newest_recovered = None;
                any |= self.recover(since, None, now, sink);
                // With the path missing, the newest file read stands for the
                // position (see `resumed_in`).
                if let Some(id) = self.newest_recovered.take()
                    && opened.is_none()
                {
                    self.resumed_in = Some(id);
                }
            } else if at_path {
                start = Some(p.offset);
            } else if let Some(since) = self.resume_compressed(p, sink) {
                // Rotated and compressed while we were down: its rest was read
                // from the compressed file; the files rotated after it follow.
                any = true;
                siblings = Vec::new();
                any |= self.recover(since, None, now, sink);
            } else if opened.is_some() {
                tracing::warn!(path = %self.path.display(),
                    "the file followed before the restart was replaced and is gone; reading the new file from its start");
            }
            if start.is_none() {
                if opened.is_some() {
                    start = Some(0);
                } else {
                    // Still missing: keep the saved position for the next restart.
                    self.resume = resume;
                }
            }
        }
        for s in siblings {
            self.known
                .insert(s.reader.id(), (s.head, s.reader.mtime, s.reader.born));
        }
        let Some(mut reader) = opened else {
            return Ok(any);
        };
        let start = match start {
            Some(s) => s,
            None if self.options.start_at == StartAt::End => {
                reader.len().map_err(|e| self.err(e))?
            }
            None => 0,
        };
        reader.seek_to(start).map_err(|e| self.err(e))?;
        self.current = Some(reader);
        Ok(any)
    }

    /// Opens the path if it exists, at `offset`.
    fn open_current(&mut self, offset: u64) -> Result<(), FollowError> {
        let mut reader = match Reader::open(&self.path, self.options.max_line) {
            Ok(r) => r,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(self.err(e)),
        };
        // A saved position already continued in a rotated file is used up.
        let resume = self
            .resume
            .take()
            .filter(|_| self.resumed_in.take().is_none());
        if let Some(p) = resume {
            let len = reader.len().map_err(|e| self.err(e))?;
            if reader.matches(&p, len) {
                reader.seek_to(p.offset).map_err(|e| self.err(e))?;
                self.current = Some(reader);
                return Ok(());
            }
        }
        reader.seek_to(offset).map_err(|e| self.err(e))?;
        self.current = Some(reader);
        Ok(())
    }

    fn dir(&self) -> &Path {
        match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        }
    }

    fn err(&self, source: io::Error) -> FollowError {
        FollowError {
            path: self.path.clone(),
            source,
        }
    }
}

/// The oldest sibling that is a copy of the file `p` was saved for, made after it
/// was saved: another file, modified after `p.mtime_ns`, that starts with the
/// saved first bytes and reaches the saved offset, while the file itself (if it
/// is still there: `same_file`) no longer starts with the copy's bytes (it was
/// truncated after the copy; a plain `cp` of a file that was not truncated is not
/// taken for a copytruncate's copy). If the file was renamed to a sibling
/// (`renamed`), the copy was made before that rename, so it is the older sibling.
fn copy_made_since(
    p: &FilePosition,
    siblings: &[Sibling],
    same_file: Option<&Reader>,
    renamed: Option<&Sibling>,
) -> Option<usize> {
    if p.fingerprint_len == 0 || p.mtime_ns == 0 {
        return None;
    }
    siblings
        .iter()
        .enumerate()
        .filter(|(_, s)| {
            s.reader.id() != (p.dev, p.inode)
                && s.reader.mtime > i128::from(p.mtime_ns)
                && s.reader.starts_like(p, s.len)
                && renamed.is_none_or(|r| rotated_before(s, r))
                && same_file.is_none_or(|f| !starts_with_file(&f.file, &s.reader.file, s.len))
        })
        .min_by_key(|(_, s)| (s.reader.mtime, age_rank(&s.path)))
        .map(|(i, _)| i)
}

/// Whether sibling `a` was rotated away before sibling `b`: by logrotate's
/// numbers if both have one, else by modification time.
fn rotated_before(a: &Sibling, b: &Sibling) -> bool {
    match (age_rank(&a.path), age_rank(&b.path)) {
        (0, _) | (_, 0) => a.reader.mtime <= b.reader.mtime,
        (ra, rb) => ra < rb,
    }
}

/// How many leading bytes [`starts_with_file`] compares at most.
const COMPARE_MAX: u64 = 64 * 1024;

/// Whether `file` still starts with the first bytes of `prefix` (`prefix_len`
/// long), as far as both reach and up to [`COMPARE_MAX`]. An unreadable file
/// does not.
fn starts_with_file(file: &File, prefix: &File, prefix_len: u64) -> bool {
    let Ok(len) = file.metadata().map(|m| m.len()) else {
        return false;
    };
    let n = len.min(prefix_len).min(COMPARE_MAX);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    let mut at = 0;
    while at < n {
        let chunk = (n - at).min(READ_CHUNK as u64) as usize;
        if read_at(file, at, chunk, &mut a).is_err()
            || read_at(prefix, at, chunk, &mut b).is_err()
            || a != b
        {
            return false;
        }
        at += chunk as u64;
    }
    true
}

/// Whether a sibling comes after `since` = (modification time, [`age_rank`]):
/// compared as a pair, so on equal times the rotation number decides. A time of
/// `i128::MIN` compares rotation numbers alone (numbered siblings only).
fn is_after(s: &Sibling, since: (i128, i64)) -> bool {
    let rank = age_rank(&s.path);
    if since.0 == i128::MIN {
        return rank != 0 && rank > since.1;
    }
    (s.reader.mtime, rank) > since
}

/// Orders siblings with the same modification time oldest first: `log.3` before
/// `log.2` (logrotate's numbering); other names keep their time order.
fn age_rank(path: &Path) -> i64 {
    path.extension()
        .and_then(|e| e.to_str())
        .and_then(|e| e.parse::<i64>().ok())
        .map_or(0, |n| -n)
}

fn wall_clock() -> i128 {
    match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i128,
        Err(_) => 0,
    }
}

/// Rotated names that are compressed (read by `log2drop test`/`report`, never
/// followed).
pub(super) fn is_compressed_name(rest: &str) -> bool {
    [".gz", ".zst", ".xz", ".bz2", ".lz4", ".z", ".Z", ".zip"]
        .iter()
        .any(|ext| rest.ends_with(ext))
}

#[cfg(test)]
mod tests;
