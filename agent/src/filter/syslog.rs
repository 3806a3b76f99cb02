//! The syslog prefix of a line, parsed by hand: when it was logged, by which
//! program, and where the program's own message starts and ends.
//!
//! Filters with `prefix = "syslog"` match only the message, anchored at its start,
//! so nothing earlier on the line can feed them, and they only see the programs
//! they are written for. The prefix is written by the logging system, not by a
//! client, which is why it is safe to trust for the program name and the time.
//!
//! Accepted forms (an optional `<PRI>` first), as syslog daemons write them:
//! - BSD / RFC 3164 (sysklogd, rsyslog's default, syslog-ng, OpenBSD, FreeBSD,
//!   macOS, `journalctl -o short`, `-o short-precise` with a fraction):
//!   `May 19 10:00:00 host prog[pid]: message`, also with a year before the
//!   time (`May 19 2026 10:00:00`, macOS system.log) and with more than one
//!   space before the host (macOS pads an empty one, `log show --style syslog`)
//! - ISO 8601 (rsyslog's high-precision format, syslog-ng's `ts-format(iso)`,
//!   OpenBSD `syslogd -Z`, `journalctl -o short-iso`):
//!   `2026-05-19T10:00:00.123456+02:00 host prog[pid]: message`
//! - RFC 5424, with or without structured data:
//!   `<PRI>1 TIMESTAMP HOST APP PROCID MSGID SD message`
//! - `journalctl -o short-full` (`Tue 2026-05-19 10:00:00 CEST host ...`) and
//!   `-o short-unix` (`1747648800.123456 host ...`); OpenWrt's `logread`
//!   (`Tue May 19 10:00:00 2026 auth.info prog[pid]: ...`).
//! - Supervisors' loggers: a TAI64N label (`@400000006a0c34aa075bcd15`, from
//!   daemontools' multilog, runit's svlogd, s6-log) or svlogd's
//!   `2026-05-19_10:00:00.12345`, usually with no host; socklog's
//!   `facility.level:` word, then the sender's BSD stamp if it kept one.
//! - BIND's own log file, `06-Dec-2026 10:00:00.123 message`: no tag, read as
//!   program `named` (no syslog daemon writes that stamp).
//!
//! Between the time and the tag: FreeBSD `syslogd -v`'s `<4.6>` / `<auth.info>`,
//! then the host (which may be missing), then busybox syslogd's `auth.info` or a
//! Linux-VServer guest's `@vserver_NAME`.
//! The tag is `prog[pid]:`, `prog:`, `prog(sub)[pid]:` (old PAM modules:
//! `sshd(pam_unix)[12]:`), `[prog]:`, metalog's `[prog]`, or `prog[pid]`
//! without the colon (busybox and some BSD programs), optionally followed by
//! macOS ASL's level (`sshd[12] <Notice>:`). After the tag, Solaris's message ID
//! (`[ID 800047 auth.info] `) and the kernel's uptime stamp some journal exports
//! add (`kernel:[  970.699396]: `) are skipped, and rsyslog's `message repeated
//! N times: [ ... ]` yields the repeated message inside the brackets.
//!
//! A line may also start with the tag itself (`prog[pid]: message`, as the
//! journal source writes entries that carry no time); it then has no time of its
//! own. The journal source writes
//! `2026-05-19T10:00:00.123456Z prog[pid]: message`, the ISO form without a host.
//! Lines without a tag (`last message repeated 3 times`) have no prefix.
//!
//! Every element before the tag is recognised by its own shape and in a fixed
//! order, at most one host-or-other word before the tag, so the first words of a
//! message can never be read as a tag: the message starts after the first tag.

use super::time::{
    RawTime, digit_stops, from_seconds, parse_bind, parse_bsd, parse_bsd_year, parse_ctime,
    parse_iso, parse_svlogd, parse_tai64n, parse_unix_stamp, parse_weekday_iso,
};

/// The parts of a syslog line the matcher needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prefix<'a> {
    /// When the line was logged (`None` for RFC 5424's `-`).
    pub time: Option<RawTime>,
    /// The program (tag) that logged it, without `[pid]`.
    pub program: &'a [u8],
    /// Offset of the message in the line.
    pub message: usize,
    /// Offset just past the message: the line's length, except inside rsyslog's
    /// `message repeated N times: [ ... ]`.
    pub end: usize,
    /// The bytes that name the process that logged the line (host, program and
    /// pid; never busybox's facility.level, which changes from line to line of
    /// one process, and so without the host where that stands between them:
    /// sessions key on `host` too), for sessions; `None` when the line carries
    /// no pid, so lines of one process cannot be told from another's.
    pub process: Option<&'a [u8]>,
    /// The host before the tag (with a Linux-VServer guest's name after it),
    /// empty when the line names none: what tells two machines' lines apart
    /// in one file (`<F-MLFID>` sessions).
    pub host: &'a [u8],
}

impl Prefix<'_> {
    /// The program's message in `line` (the line this prefix was parsed from).
    pub fn text<'l>(&self, line: &'l [u8]) -> &'l [u8] {
        &line[self.message..self.end]
    }
}

/// Parses the syslog prefix of `line`, or `None` if the line does not have one.
pub fn parse(line: &[u8]) -> Option<Prefix<'_>> {
    parse_with(line, stamp)
}

/// The timestamps of the last lines [`parse_cached`] read, as bytes and as
/// parsed: consecutive lines mostly carry the same one, and comparing bytes is
/// cheaper than parsing them.
///
/// BSD and ISO 8601 stamps are kept by their minute (everything before the
/// seconds), each in its own slot, so a log host that mixes both keeps both,
/// and lines a second apart or with a fraction still reuse the date and the
/// clock's hour and minute. Other stamps are kept whole.
///
/// It also keeps the hosts and programs of the last common lines
/// ([`TagMemos`]): a log host's lines mostly come from a few programs on a few
/// machines, so a line's host and program are compared as two words rather
/// than scanned byte by byte.
#[derive(Debug, Clone, Default)]
pub struct StampCache {
    bsd: MinuteSlot,
    iso: MinuteSlot,
    whole: WholeStamp,
    tags: TagMemos,
}

/// The `HOST PROGRAM` of a line [`common`] read, its first `len` (at most
/// 16) bytes held as two words and masks, like a [`MinuteSlot`]. Equal bytes
/// followed by a byte that cannot continue a program name read the same host
/// and program: the host ends at its first space, the program where its name
/// bytes end, and whether the host is busybox's facility.level depends on its
/// bytes alone.
#[derive(Debug, Clone, Copy, Default)]
struct TagMemo {
    words: [u64; 2],
    masks: [u64; 2],
    /// 0 while empty.
    len: usize,
    /// Bytes of the host (the space follows).
    host_len: usize,
    /// The host is busybox's facility.level (see [`common`]).
    facility: bool,
}

/// How many hosts and programs [`TagMemos`] keeps: a log host's lines come
/// from a few machines, interleaved line by line, and each machine's cron,
/// sudo and systemd lines come in between. With four, four machines' sshd
/// lines were pushed out by those (one line in seven missed on the attack
/// corpus, 14,046 of 100,000); with eight, only the rare programs' own lines
/// miss (5,521), and a probe of the extra slots costs less than the misses.
const TAG_MEMOS: usize = 8;

/// The last few distinct `HOST PROGRAM`s [`common`] read.
#[derive(Debug, Clone, Copy, Default)]
struct TagMemos {
    memos: [TagMemo; TAG_MEMOS],
    /// The one the next new host and program replaces.
    next: usize,
    /// Per hash of a line's first eight bytes ([`hint_of`]), the memo that
    /// last read such a line: probed first, so a line costs one probe, not
    /// a walk through the memos in their order (4.6 probes a line on the
    /// attack corpus, whose four machines' sshd lines interleave; 1.5 with
    /// the hint). Only a hint: any memo that matches reads the same.
    hints: [u8; TAG_HINTS],
}

/// Entries of [`TagMemos::hints`]: twice the memos, so two kept hosts and
/// programs seldom share one.
const TAG_HINTS: usize = 16;

/// The hint of a line whose first eight bytes are `w0` (the first word of
/// [`head_pair`]): a multiplicative hash's top bits. A host and program of
/// eight bytes or more always has the same; a shorter one takes the next
/// bytes too (its pid), so its lines find it by the walk.
#[inline(always)]
fn hint_of(w0: u64) -> usize {
    const { assert!(TAG_HINTS.is_power_of_two() && TAG_MEMOS.is_power_of_two()) };
    (w0.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - TAG_HINTS.trailing_zeros())) as usize
}

/// The first 16 bytes of `b` as two words: [`head_words`] cut to two, since
/// every kept host and program probed pays for each word (sharing the
/// three-word form measured +16 instructions a line).
#[inline(always)]
fn head_pair(b: &[u8]) -> [u64; 2] {
    words::<16, 2>(b)
}

impl TagMemos {
    /// The host's length, whether it is a facility.level and the program
    /// name's length, if `rest` starts with a kept host and program: the
    /// hinted memo first, then the others ([`Self::walk`]).
    #[inline(always)]
    fn read(&mut self, rest: &[u8]) -> Option<(usize, bool, usize)> {
        let w = head_pair(rest);
        let hint = hint_of(w[0]);
        let first = usize::from(self.hints[hint]) & (TAG_MEMOS - 1);
        match self.memos[first].reads(w, rest) {
            Some(found) => Some(found),
            None => self.walk(w, rest, hint),
        }
    }

    /// [`Self::read`] past a wrong hint: every memo in order, and the hint
    /// then names the one that matched. Out of line: most lines take the
    /// hint.
    #[inline(never)]
    fn walk(&mut self, w: [u64; 2], rest: &[u8], hint: usize) -> Option<(usize, bool, usize)> {
        let (i, found) = self
            .memos
            .iter()
            .enumerate()
            .find_map(|(i, m)| Some((i, m.reads(w, rest)?)))?;
        self.hints[hint] = i as u8;
        Some(found)
    }

    /// Keeps `rest[..len]` (a host of `host_len` bytes, a space, a program).
    fn keep(&mut self, rest: &[u8], len: usize, host_len: usize, facility: bool) {
        if len > 16 {
            return;
        }
        let masks = [minute_masks(len)[0], minute_masks(len)[1]];
        let w = head_pair(rest);
        self.memos[self.next] = TagMemo {
            words: [w[0] & masks[0], w[1] & masks[1]],
            masks,
            len,
            host_len,
            facility,
        };
        self.hints[hint_of(w[0])] = self.next as u8;
        self.next = (self.next + 1) % TAG_MEMOS;
    }
}

impl TagMemo {
    /// [`TagMemos::read`]'s answer if this memo holds the host and program
    /// `rest` (whose [`head_pair`] is `w`) starts with.
    #[inline(always)]
    fn reads(&self, w: [u64; 2], rest: &[u8]) -> Option<(usize, bool, usize)> {
        let differ =
            ((w[0] ^ self.words[0]) & self.masks[0]) | ((w[1] ^ self.words[1]) & self.masks[1]);
        // An empty memo's masks are zero: its `len` tells it apart. The
        // words are zero past `rest`, which a host may hold: so is its
        // length.
        // A longer program (`sshd-session` where `sshd` is kept) is
        // its own.
        (differ == 0
            && self.len != 0
            && rest.len() >= self.len
            && rest.get(self.len).is_none_or(|c| !NAME[usize::from(*c)]))
        .then(|| (self.host_len, self.facility, self.len - self.host_len - 1))
    }
}

/// A stamp kept whole: the last one of a rarer form.
#[derive(Debug, Clone)]
struct WholeStamp {
    bytes: [u8; STAMP_CACHE_LEN],
    len: usize,
    time: Option<RawTime>,
}

impl Default for WholeStamp {
    fn default() -> Self {
        WholeStamp {
            bytes: [0; STAMP_CACHE_LEN],
            len: 0,
            time: None,
        }
    }
}

/// The longest timestamp [`WholeStamp`] keeps (ISO 8601 with nanoseconds and an
/// offset fits).
const STAMP_CACHE_LEN: usize = 40;

/// The minute of a BSD or ISO 8601 stamp: its first `len` bytes (up to the
/// seconds), held as the three words of the line's first 24 bytes and a mask
/// of the bytes that count, and the time they read.
#[derive(Debug, Clone, Copy, Default)]
struct MinuteSlot {
    words: [u64; 3],
    masks: [u64; 3],
    len: usize,
    /// `None` while empty.
    time: Option<RawTime>,
}

/// Bytes before the seconds in `May 19 10:00:SS` and `May 9 10:00:SS`.
const BSD_MINUTE: [usize; 2] = [13, 12];
/// Bytes before the seconds in `2026-05-19T10:00:SS`.
const ISO_MINUTE: usize = 17;

/// The first 24 bytes of `b` as three words, zero past its end (no stamp
/// byte is zero, so a short line never matches a longer minute).
#[inline(always)]
fn head_words(b: &[u8]) -> [u64; 3] {
    words::<24, 3>(b)
}

/// The first `BYTES` (= 8 x `WORDS`) bytes of `b` as little-endian words,
/// zero past its end. Both sizes are constants, so each use compiles to
/// plain loads.
#[inline(always)]
fn words<const BYTES: usize, const WORDS: usize>(b: &[u8]) -> [u64; WORDS] {
    const { assert!(BYTES == 8 * WORDS) };
    let head = match b.first_chunk::<BYTES>() {
        Some(head) => *head,
        None => {
            let mut head = [0; BYTES];
            head[..b.len()].copy_from_slice(b);
            head
        }
    };
    std::array::from_fn(|i| {
        u64::from_le_bytes(*head[8 * i..].first_chunk::<8>().expect("8 x WORDS bytes"))
    })
}

/// The masks that keep the first `len` (at most 24) bytes of [`head_words`].
fn minute_masks(len: usize) -> [u64; 3] {
    let mask = |at: usize| match len.saturating_sub(at) {
        0 => 0,
        n @ 1..8 => (1u64 << (8 * n)) - 1,
        _ => u64::MAX,
    };
    [mask(0), mask(8), mask(16)]
}

impl MinuteSlot {
    /// The stamp at the start of `rest` if its minute is this slot's, as
    /// [`parse_bsd`] or (with `iso`) [`parse_iso`] reads it: those parsers read
    /// the minute's bytes and then only [`from_seconds`]'s, so the same minute
    /// bytes read the same fields.
    #[inline(always)]
    fn read(&self, rest: &[u8], iso: bool) -> Option<(RawTime, usize)> {
        let mut time = self.time?;
        let w = head_words(rest);
        let differ = ((w[0] ^ self.words[0]) & self.masks[0])
            | ((w[1] ^ self.words[1]) & self.masks[1])
            | ((w[2] ^ self.words[2]) & self.masks[2]);
        if differ != 0 {
            return None;
        }
        // The minute matched, so `rest` holds its `len` bytes.
        let used = from_seconds(&rest[self.len..], &mut time, iso)?;
        Some((time, self.len + used))
    }

    /// Keeps the minute of `stamp`, which the parser read as `time` with its
    /// seconds at `len`.
    fn keep(&mut self, stamp: &[u8], len: usize, time: RawTime) {
        if stamp.len() >= len {
            let masks = minute_masks(len);
            let w = head_words(stamp);
            *self = MinuteSlot {
                words: [w[0] & masks[0], w[1] & masks[1], w[2] & masks[2]],
                masks,
                len,
                time: Some(time),
            };
        }
    }
}

/// [`parse`], reusing earlier lines' timestamps (see [`StampCache`]), and with
/// the common line (`STAMP HOST prog[pid]: message` with a BSD or ISO 8601
/// stamp) read by [`common`] without the general parser's detours.
///
/// Only the common line is read here; every other line takes
/// [`parse_uncommon`], kept out of line so this stays small. Always inlined,
/// with [`common`]: the 112-byte [`Prefix`] is then built in the caller's
/// frame rather than copied out of two returns (34 instructions a line fewer
/// on the attack corpus).
#[inline(always)]
pub fn parse_cached<'a>(line: &'a [u8], cache: &mut StampCache) -> Option<Prefix<'a>> {
    if let Some(prefix) = common(line, cache) {
        return Some(prefix);
    }
    parse_uncommon(line, cache)
}

/// [`parse_cached`] of a line [`common`] does not read.
#[inline(never)]
fn parse_uncommon<'a>(line: &'a [u8], cache: &mut StampCache) -> Option<Prefix<'a>> {
    parse_with(line, |rest| cached_stamp(rest, cache))
}

/// [`stamp`] through `cache`.
#[inline]
fn cached_stamp(rest: &[u8], cache: &mut StampCache) -> Option<(RawTime, usize)> {
    match rest.first() {
        Some(c) if c.is_ascii_digit() => {
            if let Some(found) = cache.iso.read(rest, true) {
                return Some(found);
            }
            if let Some((time, used)) = parse_iso(rest) {
                cache.iso.keep(rest, ISO_MINUTE, time);
                return Some((time, used));
            }
        }
        Some(c) if c.is_ascii_alphabetic() => {
            if let Some(found) = cache.bsd.read(rest, false) {
                return Some(found);
            }
            if let Some((time, used)) = parse_bsd(rest) {
                // A one-digit day (`May 9`) puts the seconds one byte earlier.
                let len = BSD_MINUTE[usize::from(rest[5] == b' ')];
                cache.bsd.keep(rest, len, time);
                return Some((time, used));
            }
        }
        _ => {}
    }
    whole_stamp(rest, &mut cache.whole)
}

/// A stamp of a rarer form, reusing the last line's when this one starts with
/// the same bytes followed by a space: the time parsers look at most one byte
/// past what they use, and [`parse`] requires that byte to be a space, so the
/// same bytes read the same time. The one parser that reads further (a
/// weekday-ISO stamp looking for a zone after the space) is never cached, see
/// [`may_take_a_zone`]. A stamp with a fraction of a second is not kept: the
/// next line's almost never repeats it (nor does a TAI64N label's).
fn whole_stamp(rest: &[u8], cache: &mut WholeStamp) -> Option<(RawTime, usize)> {
    let len = cache.len;
    if let Some(time) = cache.time
        && rest.get(len) == Some(&b' ')
        && same_bytes(&rest[..len], &cache.bytes[..len])
    {
        return Some((time, len));
    }
    let (time, used) = stamp(rest)?;
    if used <= STAMP_CACHE_LEN
        && rest.get(used) == Some(&b' ')
        && rest[0] != b'@'
        && !rest[..used].contains(&b'.')
        && !may_take_a_zone(&rest[..used])
    {
        cache.bytes[..used].copy_from_slice(&rest[..used]);
        cache.len = used;
        cache.time = Some(time);
    }
    Some((time, used))
}

/// The common line, `STAMP HOST prog[pid]: message` or `STAMP HOST prog:
/// message` with a BSD or ISO 8601 stamp whose minute `cache` holds, read in
/// one pass; `None` for anything else, which [`parse_with`] then reads. Where
/// this finds a prefix, it is the one [`parse`] finds: each step is the general
/// parser's on a line of that shape (the `common_is_parse` proptest holds it
/// to that).
#[inline(always)]
fn common<'a>(line: &'a [u8], cache: &mut StampCache) -> Option<Prefix<'a>> {
    // No `<PRI>` (which starts with `<`), no BIND stamp (a digit, then `-` at
    // 2, which ISO 8601's year never has).
    let (time, used) = match *line.first()? {
        c if c.is_ascii_digit() => cache.iso.read(line, true)?,
        c if c.is_ascii_alphabetic() => cache.bsd.read(line, false)?,
        _ => return None,
    };
    let host = used + 1;
    if line.get(used) != Some(&b' ') || line.get(host) == Some(&b'<') {
        return None;
    }
    let rest = line.get(host..)?;
    let (host_len, facility, name) = match cache.tags.read(rest) {
        Some(kept) => kept,
        None => {
            // The host: a word that is not itself a tag (which ends in `:`
            // or `]`).
            let (host_len, dotted) = space_at(rest);
            let last = *rest.get(host_len.checked_sub(1)?)?;
            if host_len == 0 || rest.get(host_len) != Some(&b' ') || matches!(last, b':' | b']') {
                return None;
            }
            let name = name_len(rest.get(host_len + 1..)?);
            // busybox's facility.level without a host (OpenWrt's `logread`)
            // changes with the level, so it is neither the host nor part of
            // the process; it has a dot, which most hosts do not, so those
            // skip the lists.
            let facility = dotted && facility_level(&rest[..host_len]);
            if name > 0 {
                cache
                    .tags
                    .keep(rest, host_len + 1 + name, host_len, facility);
            }
            (host_len, facility, name)
        }
    };
    let host_end = host + host_len;
    let (program, tag_end, pid) = plain_tag(line, host_end + 1, name)?;
    let (host, process) = if facility {
        (&b""[..], pid.then(|| &line[host_end + 1..tag_end]))
    } else {
        (&line[host..host_end], pid.then(|| &line[host..tag_end]))
    };
    Some(message(line, Some(time), program, tag_end, process, host))
}

/// How many bytes of a program name (see [`NAME`]) `rest` starts with.
#[inline(always)]
fn name_len(rest: &[u8]) -> usize {
    rest.iter().take_while(|c| NAME[usize::from(**c)]).count()
}

/// `prog[pid]:` or `prog:` starting at `start`, its name `name` bytes long
/// ([`name_len`]), and followed by a space or the line's end: the program,
/// where the tag ends, and whether it has a pid. `None` for any other tag,
/// which [`tag`] then reads.
#[inline(always)]
fn plain_tag(line: &[u8], start: usize, name: usize) -> Option<(&[u8], usize, bool)> {
    let rest = line.get(start..)?;
    let (end, pid) = match rest.get(name) {
        _ if name == 0 => return None,
        Some(b':') => (name + 1, false),
        Some(b'[') => {
            let digits = name + 1;
            let close = digits + digits_len(&rest[digits..]);
            if close == digits || rest.get(close..close + 2) != Some(b"]:") {
                return None;
            }
            (close + 2, true)
        }
        _ => return None,
    };
    if !matches!(rest.get(end), None | Some(b' ')) {
        return None;
    }
    Some((&rest[..name], start + end, pid))
}

/// How many ASCII digits `rest` starts with: a pid's (up to seven) in one
/// word.
#[inline(always)]
fn digits_len(rest: &[u8]) -> usize {
    if let Some(chunk) = rest.first_chunk::<8>() {
        let stops = digit_stops(u64::from_le_bytes(*chunk));
        if stops != 0 {
            return (stops.trailing_zeros() / 8) as usize;
        }
    }
    rest.iter().take_while(|c| c.is_ascii_digit()).count()
}

/// The bytes [`name`] takes into a program name.
const NAME: [bool; 256] = {
    let mut table = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        table[c] = b.is_ascii_graphic() && !matches!(b, b'[' | b']' | b'(' | b')' | b':');
        c += 1;
    }
    table
};

/// The offset of the first space in `rest`, or its length, and whether a `.`
/// comes before it: eight bytes at a time, since host names are a few words
/// long, and most have no dot, which spares them [`facility_level`].
#[inline]
fn space_at(rest: &[u8]) -> (usize, bool) {
    let mut at = 0;
    let mut dotted = false;
    while let Some(chunk) = rest.get(at..).and_then(|r| r.first_chunk::<8>()) {
        let w = u64::from_le_bytes(*chunk);
        let (space, dot) = (byte_flags(w, b' '), byte_flags(w, b'.'));
        if space != 0 {
            // Both lowest flags are exact: a dot before the space is a
            // lower flag.
            dotted |= dot != 0 && dot.trailing_zeros() < space.trailing_zeros();
            return (at + (space.trailing_zeros() / 8) as usize, dotted);
        }
        dotted |= dot != 0;
        at += 8;
    }
    let tail = &rest[at..];
    let space = tail.iter().position(|c| *c == b' ').unwrap_or(tail.len());
    (at + space, dotted || tail[..space].contains(&b'.'))
}

/// The high bit of each byte of `word` that equals `byte`, eight bytes at a
/// time (the classic zero-byte test on `word ^ byte`): nonzero exactly when
/// one does, and the lowest flag is the first such byte of a little-endian
/// word (a borrow can only flag bytes above a real match).
#[inline]
pub(super) fn byte_flags(word: u64, byte: u8) -> u64 {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    let x = word ^ u64::from_ne_bytes([byte; 8]);
    x.wrapping_sub(ONES) & !x & HIGHS
}

/// Whether the word after `stamp` could have changed it: `journalctl -o
/// short-full`'s weekday-ISO form without an offset looks past the space for a
/// zone (`CEST`, `+0200`), so the same bytes followed by a zone read another
/// time and leave another host. Every other form stops at the space. Such a
/// stamp starts with a letter (the weekday), has a `-` in its date, and ends in a
/// digit; this also declines a weekday-ISO stamp with a numeric offset, which
/// could be kept but is rare enough not to matter.
fn may_take_a_zone(stamp: &[u8]) -> bool {
    stamp.first().is_some_and(u8::is_ascii_alphabetic)
        && stamp.last().is_some_and(u8::is_ascii_digit)
        && stamp.contains(&b'-')
}

/// `a == b` for the short texts of a prefix (timestamps, program names) and
/// of the patterns' heads and tails, without a call into the C library's
/// general comparison: two overlapping loads of the widest size that fits
/// cover the text (a byte loop over `sshd` cost 20 instructions a line in
/// the program dispatch).
#[inline]
pub(super) fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let w4 = |c: Option<&[u8; 4]>| c.map(|c| u32::from_ne_bytes(*c));
    let w8 = |c: Option<&[u8; 8]>| c.map(|c| u64::from_ne_bytes(*c));
    let w16 = |c: Option<&[u8; 16]>| c.map(|c| u128::from_ne_bytes(*c));
    match a.len() {
        0 => true,
        // The first, middle and last bytes are every byte of 1 to 3.
        1..4 => a[0] == b[0] && a[a.len() / 2] == b[b.len() / 2] && a.last() == b.last(),
        4..8 => {
            w4(a.first_chunk()) == w4(b.first_chunk()) && w4(a.last_chunk()) == w4(b.last_chunk())
        }
        8..=16 => {
            w8(a.first_chunk()) == w8(b.first_chunk()) && w8(a.last_chunk()) == w8(b.last_chunk())
        }
        17..=32 => {
            w16(a.first_chunk()) == w16(b.first_chunk())
                && w16(a.last_chunk()) == w16(b.last_chunk())
        }
        _ => a == b,
    }
}

/// The timestamp at the start of `rest`: ISO 8601 if it starts with a digit,
/// else BSD; the rarer forms only when those fail, so the common ones cost
/// nothing more.
#[inline]
fn stamp(rest: &[u8]) -> Option<(RawTime, usize)> {
    match rest.first() {
        Some(c) if c.is_ascii_digit() => {
            let iso = parse_iso(rest);
            if iso.is_some() {
                return iso;
            }
            rare_numeric_stamp(rest)
        }
        _ => {
            let bsd = parse_bsd(rest);
            if bsd.is_some() {
                return bsd;
            }
            rare_stamp(rest)
        }
    }
}

/// The numeric stamps other than ISO 8601, kept out of [`stamp`]'s way.
#[cold]
#[inline(never)]
fn rare_numeric_stamp(rest: &[u8]) -> Option<(RawTime, usize)> {
    parse_unix_stamp(rest)
        .or_else(|| parse_svlogd(rest))
        .or_else(|| parse_bind(rest))
}

/// The stamps that start with neither a digit nor a month (a weekday, `@`).
#[cold]
#[inline(never)]
fn rare_stamp(rest: &[u8]) -> Option<(RawTime, usize)> {
    match rest.first() {
        Some(b'@') => parse_tai64n(rest),
        _ => parse_ctime(rest)
            .or_else(|| parse_weekday_iso(rest))
            .or_else(|| parse_bsd_year(rest)),
    }
}

fn parse_with(
    line: &[u8],
    read_time: impl FnOnce(&[u8]) -> Option<(RawTime, usize)>,
) -> Option<Prefix<'_>> {
    let (mut pos, rfc5424) = time_start(line)?;
    if rfc5424 {
        return parse_5424(line, pos);
    }
    let Some((time, used)) = read_time(&line[pos..]) else {
        // `prog[pid]: message` alone: what the journal source writes.
        return (pos == 0).then(|| bare(line)).flatten();
    };
    let start = pos;
    pos += used;
    if line.get(pos) != Some(&b' ') {
        return None;
    }
    pos += 1;
    // macOS's syslogd pads an empty host with spaces, `log show --style
    // syslog` writes two after its stamp.
    while line.get(pos) == Some(&b' ') {
        pos += 1;
    }
    // BIND's own log file: `06-Dec-2026 10:00:00.123 message`, no host, no tag.
    if line[start + 2] == b'-' && line[start].is_ascii_digit() {
        return Some(Prefix {
            time: Some(time),
            program: b"named",
            message: pos,
            end: line.len(),
            process: None,
            host: b"",
        });
    }
    // FreeBSD `syslogd -v`: `<4.6>` or `<auth.info>` before the host.
    if line.get(pos) == Some(&b'<') {
        let end = token(line, pos)?;
        if !angled_priority(&line[pos..end]) || line.get(end) != Some(&b' ') {
            return None;
        }
        pos = end + 1;
    }
    // [HOST] [FACILITY.LEVEL] TAG: the host and busybox's facility.level are
    // both optional, the tag is not. `HOST TAG` and `TAG` are tried first: they
    // are what nearly every line has, and a facility.level in the first place
    // then reads the same as a host.
    let first = token(line, pos)?;
    if let Some((program, tag_end, pid)) = tag(line, pos, first) {
        // socklog: `auth.info: [May 19 10:00:00 ]prog[pid]: message`.
        if facility_level(program) {
            return socklog(line, Some(time), first);
        }
        let process = pid.then(|| &line[pos..first]);
        return Some(message(line, Some(time), program, tag_end, process, b""));
    }
    let second_start = next_token_start(line, first)?;
    let second = token(line, second_start)?;
    if let Some((program, tag_end, pid)) = tag(line, second_start, second) {
        // busybox's facility.level without a host changes with the level.
        let (host, process) = match &line[pos..first] {
            h if facility_level(h) => (&b""[..], pid.then(|| &line[second_start..second])),
            h => (h, pid.then(|| &line[pos..second])),
        };
        return Some(message(line, Some(time), program, tag_end, process, host));
    }
    // HOST FACILITY.LEVEL TAG (busybox syslogd), HOST @vserver_NAME TAG
    // (Linux-VServer guests logging through the host).
    let second_word = &line[second_start..second];
    if !facility_level(second_word) && !second_word.starts_with(b"@vserver_") {
        return None;
    }
    let third_start = next_token_start(line, second)?;
    let third = token(line, third_start)?;
    let (program, tag_end, pid) = tag(line, third_start, third)?;
    // The level changes from line to line of one process, so the process is
    // the tag alone (sessions key on the host too); a guest's name tells
    // machines apart.
    let (host, process) = if facility_level(second_word) {
        (&line[pos..first], pid.then(|| &line[third_start..third]))
    } else {
        (&line[pos..second], pid.then(|| &line[pos..third]))
    };
    Some(message(line, Some(time), program, tag_end, process, host))
}

/// socklog's line after its `facility.level:` word (which ends at `end`): an
/// optional BSD stamp the sender wrote, then the tag. The line's own stamp
/// (svlogd's) is the time when there is one; else the sender's.
fn socklog(line: &[u8], time: Option<RawTime>, end: usize) -> Option<Prefix<'_>> {
    let (time, start) = socklog_time(line, time, end)?;
    let tag_token = token(line, start)?;
    let (program, tag_end, pid) = tag(line, start, tag_token)?;
    if facility_level(program) {
        return None;
    }
    let process = pid.then(|| &line[start..tag_token]);
    Some(message(line, time, program, tag_end, process, b""))
}

/// The time of a socklog line whose `facility.level:` ends at `end`, and where
/// its tag starts: past the sender's BSD stamp if it wrote one.
fn socklog_time(
    line: &[u8],
    time: Option<RawTime>,
    end: usize,
) -> Option<(Option<RawTime>, usize)> {
    let start = next_token_start(line, end)?;
    match parse_bsd(&line[start..]) {
        Some((inner, used)) if line.get(start + used) == Some(&b' ') => {
            Some((time.or(Some(inner)), start + used + 1))
        }
        _ => Some((time, start)),
    }
}

/// The start of the token after the one ending at `end`: one space later.
fn next_token_start(line: &[u8], end: usize) -> Option<usize> {
    (line.get(end) == Some(&b' ')).then_some(end + 1)
}

/// The prefix whose tag ends at `tag_end`, with what syslog daemons put between
/// the tag and the program's text removed.
#[inline]
fn message<'a>(
    line: &'a [u8],
    time: Option<RawTime>,
    program: &'a [u8],
    tag_end: usize,
    process: Option<&'a [u8]>,
    host: &'a [u8],
) -> Prefix<'a> {
    let mut message = tag_end;
    if line.get(message) == Some(&b' ') {
        message += 1;
    }
    let mut end = line.len();
    if let Some(b'[' | b'k' | b'm') = line.get(message) {
        (message, end) = wrapped(line, message);
    }
    Prefix {
        time,
        program,
        message,
        end,
        process,
        host,
    }
}

/// Where the message starts and ends inside what the logging chain put around
/// it, for a message starting at `message` with `[`, `k` or `m`.
#[cold]
#[inline(never)]
fn wrapped(line: &[u8], mut message: usize) -> (usize, usize) {
    let mut end = line.len();
    match line[message] {
        // Solaris: `[ID 800047 auth.info] ` (message ID, facility.level).
        b'[' => message += solaris_id(&line[message..]),
        // The kernel's uptime stamp, as some journal exports and containers
        // put it in front of a program's message.
        b'k' => message += kernel_stamp(&line[message..]),
        // rsyslog's repeated-message reduction.
        _ => {
            if let Some(inner) = repeated(&line[message..]) {
                message += inner;
                end -= 1;
            }
        }
    }
    (message, end)
}

/// The length of Solaris's `[ID 800047 auth.info] ` at the start of `rest`, or
/// 0 when it is not there.
fn solaris_id(rest: &[u8]) -> usize {
    let Some(body) = rest.strip_prefix(b"[ID ") else {
        return 0;
    };
    let digits = body.iter().take_while(|c| c.is_ascii_digit()).count();
    if digits == 0 || body.get(digits) != Some(&b' ') {
        return 0;
    }
    let fac = &body[digits + 1..];
    let Some(close) = fac.iter().take(24).position(|c| *c == b']') else {
        return 0;
    };
    if !facility_level(&fac[..close]) || fac.get(close + 1) != Some(&b' ') {
        return 0;
    }
    4 + digits + 1 + close + 2
}

/// The length of `kernel:[  970.699396]: ` or `kernel: [  970.699396] ` at the
/// start of `rest` (the kernel's seconds since boot), or 0 when it is not there.
fn kernel_stamp(rest: &[u8]) -> usize {
    let Some(body) = rest.strip_prefix(b"kernel:") else {
        return 0;
    };
    let mut pos = usize::from(body.first() == Some(&b' '));
    if body.get(pos) != Some(&b'[') {
        return 0;
    }
    pos += 1;
    pos += body[pos..].iter().take_while(|c| **c == b' ').count();
    let secs = body[pos..]
        .iter()
        .take_while(|c| c.is_ascii_digit())
        .count();
    if secs == 0 || body.get(pos + secs) != Some(&b'.') {
        return 0;
    }
    pos += secs + 1;
    let frac = body[pos..]
        .iter()
        .take_while(|c| c.is_ascii_digit())
        .count();
    if frac == 0 || body.get(pos + frac) != Some(&b']') {
        return 0;
    }
    pos += frac + 1;
    if body.get(pos) == Some(&b':') {
        pos += 1;
    }
    if body.get(pos) != Some(&b' ') {
        return 0;
    }
    7 + pos + 1
}

/// Where the repeated message starts in rsyslog's
/// `message repeated 3 times: [ Failed password ...]` (the text after `[ `),
/// if `rest` is that and ends with its `]`.
fn repeated(rest: &[u8]) -> Option<usize> {
    let body = rest.strip_prefix(b"message repeated ")?;
    let digits = body.iter().take_while(|c| c.is_ascii_digit()).count();
    let tail = body.get(digits..)?;
    if digits == 0 || !tail.starts_with(b" times: [ ") || !rest.ends_with(b"]") {
        return None;
    }
    let start = 17 + digits + 10;
    (start < rest.len()).then_some(start)
}

/// Syslog's facility names (RFC 5424 section 6.2.1 and the BSD extras).
const FACILITIES: &[&[u8]] = &[
    b"kern",
    b"user",
    b"mail",
    b"daemon",
    b"auth",
    b"syslog",
    b"lpr",
    b"news",
    b"uucp",
    b"cron",
    b"authpriv",
    b"ftp",
    b"ntp",
    b"security",
    b"console",
    b"solaris-cron",
    b"audit",
    b"local0",
    b"local1",
    b"local2",
    b"local3",
    b"local4",
    b"local5",
    b"local6",
    b"local7",
    b"mark",
];

/// Syslog's level names, with the old spellings.
const LEVELS: &[&[u8]] = &[
    b"emerg", b"panic", b"alert", b"crit", b"err", b"error", b"warning", b"warn", b"notice",
    b"info", b"debug",
];

/// `auth.info` (busybox syslogd, Solaris): a known facility and a known level.
fn facility_level(tok: &[u8]) -> bool {
    if tok.len() > 20 {
        return false;
    }
    let Some(dot) = tok.iter().position(|c| *c == b'.') else {
        return false;
    };
    let (fac, level) = (&tok[..dot], &tok[dot + 1..]);
    // Host names with dots reach here on every line: their "level" is rarely
    // 3 to 7 lower-case letters, so most never reach the lists.
    (3..=7).contains(&level.len())
        && level.iter().all(u8::is_ascii_lowercase)
        && LEVELS.contains(&level)
        && FACILITIES.contains(&fac)
}

/// FreeBSD `syslogd -v` (`<4.6>`) and `-vv` (`<auth.info>`).
fn angled_priority(tok: &[u8]) -> bool {
    let Some(inner) = tok.strip_prefix(b"<").and_then(|t| t.strip_suffix(b">")) else {
        return false;
    };
    if facility_level(inner) {
        return true;
    }
    let Some(dot) = inner.iter().position(|c| *c == b'.') else {
        return false;
    };
    let (fac, level) = (&inner[..dot], &inner[dot + 1..]);
    let number = |t: &[u8]| (1..=2).contains(&t.len()) && t.iter().all(u8::is_ascii_digit);
    number(fac) && number(level)
}

/// The time of a syslog line's prefix, read where [`parse`] reads it, and the
/// offset of the space that must follow it; without the rest of the prefix. For
/// the age check ([`super::age`]), which caches by those bytes. When [`parse`]
/// finds a prefix with a time, this finds the same time; when this finds none,
/// `parse` finds none either.
pub fn time_of(line: &[u8]) -> Option<(RawTime, usize)> {
    let (pos, _) = time_start(line)?;
    let Some((time, used)) = stamp(&line[pos..]) else {
        return (pos == 0).then(|| bare_socklog_time(line)).flatten();
    };
    let end = pos + used;
    (line.get(end) == Some(&b' ')).then_some((time, end))
}

/// Whether the time [`time_of`] read in `line` (ending at `end`) is the time of
/// every line that starts with the same bytes and a space, so a cache may reuse
/// it; see [`may_take_a_zone`].
pub(crate) fn time_is_reusable(line: &[u8], end: usize) -> bool {
    time_start(line).is_some_and(|(pos, _)| !may_take_a_zone(&line[pos..end]))
}

/// Where the time starts: after an optional `<PRI>`, and after RFC 5424's
/// version (`<PRI>1 `, then `true`). `None` for a malformed `<PRI>`.
fn time_start(line: &[u8]) -> Option<(usize, bool)> {
    if line.first() != Some(&b'<') {
        return Some((0, false));
    }
    let close = line.iter().take(5).position(|c| *c == b'>')?;
    if close < 2 || !line[1..close].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let pos = close + 1;
    if line[pos..].starts_with(b"1 ") {
        Some((pos + 2, true))
    } else {
        Some((pos, false))
    }
}

/// The sender's time on a socklog line without a stamp of its own
/// (`auth.info: May 19 10:00:00 prog[pid]: message`) and where the space after
/// it is, as [`bare`] reads it.
fn bare_socklog_time(line: &[u8]) -> Option<(RawTime, usize)> {
    let end = token(line, 0)?;
    let fac = line[..end].strip_suffix(b":")?;
    if !facility_level(fac) {
        return None;
    }
    let (time, start) = socklog_time(line, None, end)?;
    Some((time?, start - 1))
}

/// A line that starts with the tag: no time, no host.
fn bare(line: &[u8]) -> Option<Prefix<'_>> {
    let end = token(line, 0)?;
    let (program, tag_end, pid) = tag(line, 0, end)?;
    if facility_level(program) {
        return socklog(line, None, end);
    }
    Some(message(
        line,
        None,
        program,
        tag_end,
        pid.then(|| &line[..end]),
        b"",
    ))
}

/// End of the space-free token starting at `pos` (which must not be empty).
fn token(line: &[u8], pos: usize) -> Option<usize> {
    let rest = line.get(pos..)?;
    // Host names and tags are short: a plain loop beats a vectorised search.
    let len = rest.iter().position(|c| *c == b' ').unwrap_or(rest.len());
    (len > 0).then_some(pos + len)
}

/// The program of the tag token `line[start..end]` and where the tag ends
/// (past a macOS level that follows it); `None` if the token is not a tag.
#[inline]
fn tag(line: &[u8], start: usize, end: usize) -> Option<(&[u8], usize, bool)> {
    let tok = &line[start..end];
    if let Some(body) = tok.strip_suffix(b":") {
        return program_of(body).map(|(p, pid)| (p, end, pid));
    }
    // `prog[pid]` without the colon; a pid is required, so a host name (which
    // holds no bracket) is never taken for one.
    if tok.last() != Some(&b']') || !tok.contains(&b'[') {
        return None;
    }
    // metalog: `[sshd] message`, the program in brackets, no pid, no colon.
    if tok.starts_with(b"[") {
        return program_of(tok).map(|(p, _)| (p, end, false));
    }
    let (program, _) = program_of(tok)?;
    // macOS ASL: `sshd[12] <Notice>: message`.
    let level = asl_level(line.get(end..).unwrap_or_default());
    Some((program, end + level, true))
}

/// The length of macOS ASL's ` <Notice>:` at the start of `rest`, or 0.
fn asl_level(rest: &[u8]) -> usize {
    const LEVELS: &[&[u8]] = &[
        b" <Emergency>:",
        b" <Alert>:",
        b" <Critical>:",
        b" <Error>:",
        b" <Warning>:",
        b" <Notice>:",
        b" <Info>:",
        b" <Debug>:",
    ];
    if rest.get(1) != Some(&b'<') {
        return 0;
    }
    LEVELS
        .iter()
        .find(|l| rest.starts_with(l))
        .map_or(0, |l| l.len())
}

/// The program name of a tag without its colon: `prog`, `prog[pid]`,
/// `prog(sub)`, `prog(sub)[pid]` or `[prog]`.
#[inline]
fn program_of(body: &[u8]) -> Option<(&[u8], bool)> {
    if let Some(inner) = body.strip_prefix(b"[").and_then(|b| b.strip_suffix(b"]")) {
        // `[1234]:` is a pid whose program stands before it (SOGo's own log
        // writes `sogod [1234]:`), not a program.
        return name(inner)
            .filter(|n| n.len() == inner.len() && !n[0].is_ascii_digit())
            .map(|n| (n, false));
    }
    let name = name(body)?;
    let mut rest = &body[name.len()..];
    // `sshd(pam_unix)`: the module that logged for the program.
    if let Some(sub) = rest.strip_prefix(b"(") {
        let close = sub.iter().position(|c| *c == b')')?;
        if close == 0
            || !sub[..close]
                .iter()
                .all(|c| c.is_ascii_graphic() && *c != b'(')
        {
            return None;
        }
        rest = &sub[close + 1..];
    }
    match rest {
        [] => Some((name, false)),
        [b'[', pid @ .., b']'] if !pid.is_empty() && pid.iter().all(u8::is_ascii_digit) => {
            Some((name, true))
        }
        _ => None,
    }
}

/// The program name at the start of a tag: printable, up to `[`, `(` or `:`.
#[inline]
fn name(body: &[u8]) -> Option<&[u8]> {
    let end = body
        .iter()
        .position(|c| !c.is_ascii_graphic() || matches!(c, b'[' | b']' | b'(' | b')' | b':'))
        .unwrap_or(body.len());
    (end > 0).then(|| &body[..end])
}

/// RFC 5424 after `<PRI>1 `: TIMESTAMP HOST APP PROCID MSGID SD [MSG].
fn parse_5424(line: &[u8], mut pos: usize) -> Option<Prefix<'_>> {
    let time = if line.get(pos) == Some(&b'-') {
        pos += 1;
        None
    } else {
        let (t, used) = parse_iso(&line[pos..])?;
        pos += used;
        Some(t)
    };
    // HOST, APP, PROCID, MSGID: four space-separated fields.
    let mut program: &[u8] = b"";
    let host = pos + 1;
    let mut process = None;
    let mut host_end = host;
    for field in 0..4 {
        if line.get(pos) != Some(&b' ') {
            return None;
        }
        let end = token(line, pos + 1)?;
        match field {
            0 => host_end = end,
            1 => program = &line[pos + 1..end],
            2 if &line[pos + 1..end] != b"-" => process = Some(&line[host..end]),
            _ => {}
        }
        pos = end;
    }
    if line.get(pos) != Some(&b' ') {
        return None;
    }
    pos += 1;
    // Structured data: `-` or one or more `[...]` elements. Parameter values
    // are quoted, with `\"`, `\\` and `\]` escaped; senders that leave a `]`
    // unescaped inside the quotes are common, so a `]` only ends an element
    // outside the quotes.
    match line.get(pos)? {
        b'-' => pos += 1,
        b'[' => {
            while line.get(pos) == Some(&b'[') {
                pos += 1;
                let mut quoted = false;
                loop {
                    match line.get(pos)? {
                        b'\\' => pos += 2,
                        b'"' => {
                            quoted = !quoted;
                            pos += 1;
                        }
                        b']' if !quoted => {
                            pos += 1;
                            break;
                        }
                        _ => pos += 1,
                    }
                }
            }
        }
        _ => return None,
    }
    match line.get(pos) {
        None => {}
        Some(b' ') => pos += 1,
        Some(_) => return None,
    }
    // An optional UTF-8 byte order mark before the message.
    if line[pos..].starts_with(b"\xEF\xBB\xBF") {
        pos += 3;
    }
    if program == b"-" {
        program = b"";
    }
    Some(Prefix {
        time,
        program,
        message: pos,
        end: line.len(),
        process,
        host: match &line[host..host_end] {
            b"-" => b"",
            h => h,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn msg(line: &str) -> (&str, &str) {
        let p = parse(line.as_bytes()).unwrap_or_else(|| panic!("no prefix in {line:?}"));
        (
            std::str::from_utf8(p.program).expect("utf8"),
            std::str::from_utf8(p.text(line.as_bytes())).expect("utf8"),
        )
    }

    /// Fuzzing found this (fuzz/regressions/syslog/cached-weekday-iso-stamp-before-zone):
    /// a weekday-ISO stamp without a zone was cached, and the next line's zone
    /// after the same bytes was then read as the host.
    #[test]
    fn cached_stamp_without_zone_does_not_hide_the_next_zone() {
        for next in [
            "Sun 2026-12-13T12:00:00 CET web1 sshd[1]: x",
            "Sun 2026-12-13T12:00:00 +0100 web1 sshd[1]: x",
        ] {
            let mut cache = StampCache::default();
            let first = "Sun 2026-12-13T12:00:00 web1 sshd[1]: x";
            assert_eq!(
                parse_cached(first.as_bytes(), &mut cache),
                parse(first.as_bytes())
            );
            let plain = parse(next.as_bytes());
            assert!(plain.is_some(), "{next}");
            assert_eq!(parse_cached(next.as_bytes(), &mut cache), plain, "{next}");
        }
    }

    #[test]
    fn bsd_with_host_and_pid() {
        assert_eq!(
            msg("May 19 10:00:00 web1 sshd[123]: Invalid user a from 192.0.2.1"),
            ("sshd", "Invalid user a from 192.0.2.1")
        );
        assert_eq!(
            msg("May  9 10:00:00 web1 postfix/smtpd[7]: warning: x"),
            ("postfix/smtpd", "warning: x")
        );
    }

    #[test]
    fn macos_forms_a_year_and_padded_hosts() {
        let line = b"Oct 27 2025 12:35:40 mac1.example.org screensharingd[1170]: x";
        let p = parse(line).expect("year form");
        assert_eq!(p.program, b"screensharingd");
        assert_eq!(p.host, b"mac1.example.org");
        assert_eq!(p.text(line), b"x");
        let t = p.time.expect("time");
        assert_eq!((t.year, t.month, t.day, t.hour), (Some(2025), 10, 27, 12));
        for (line, program, host) in [
            ("Mar 11 22:52:12   lighttpd[53690]: x", "lighttpd", ""),
            (
                "2026-05-19 10:00:02.123456-0700  mac1 screensharingd[7]: x",
                "screensharingd",
                "mac1",
            ),
        ] {
            let p = parse(line.as_bytes()).expect(line);
            assert_eq!(p.program, program.as_bytes(), "{line}");
            assert_eq!(p.host, host.as_bytes(), "{line}");
            assert_eq!(p.text(line.as_bytes()), b"x", "{line}");
        }
        // Not a year: the time must follow it.
        assert_eq!(parse(b"Oct 27 2025 x[1]: y"), None);
        assert_eq!(parse(b"Oct 27 20251 12:35:40 h x[1]: y"), None);
    }

    #[test]
    fn the_host_is_the_words_before_the_tag() {
        for (line, host) in [
            ("May 19 10:00:00 web1 slapd[1]: x", "web1"),
            ("May 19 10:00:00 slapd[1]: x", ""),
            ("May 19 10:00:00 web1 [slapd]: x", "web1"),
            ("May 19 10:00:00 router authpriv.info slapd[1]: x", "router"),
            ("May 19 10:00:00 authpriv.info slapd[1]: x", ""),
            (
                "May 19 10:00:00 box @vserver_ldap slapd[1]: x",
                "box @vserver_ldap",
            ),
            ("2026-05-19T10:00:00+02:00 ldap2 slapd[1]: x", "ldap2"),
            ("<38>1 2026-05-19T10:00:00Z ldap3 slapd 1 - - x", "ldap3"),
            ("<38>1 2026-05-19T10:00:00Z - slapd 1 - - x", ""),
            ("slapd[1]: x", ""),
        ] {
            let p = parse(line.as_bytes()).expect(line);
            assert_eq!(String::from_utf8_lossy(p.host), host, "{line}");
        }
    }

    #[test]
    fn bsd_without_pid_or_host() {
        assert_eq!(
            msg("May 19 10:00:00 web1 dovecot: auth: x"),
            ("dovecot", "auth: x")
        );
        assert_eq!(msg("May 19 10:00:00 sshd[1]: hello"), ("sshd", "hello"));
    }

    #[test]
    fn iso_and_pri() {
        assert_eq!(
            msg("2026-05-19T10:00:00.123456+02:00 web1 sshd-session[5]: Failed"),
            ("sshd-session", "Failed")
        );
        assert_eq!(msg("<38>May 19 10:00:00 web1 sshd[1]: x"), ("sshd", "x"));
        assert_eq!(
            msg("2026-05-19T10:00:00+0200 web1 sshd[1]: y"),
            ("sshd", "y")
        );
    }

    #[test]
    fn rfc5424() {
        assert_eq!(
            msg("<34>1 2026-05-19T10:00:00.003Z web1 sshd 123 - - Failed password"),
            ("sshd", "Failed password")
        );
        assert_eq!(
            msg(r#"<34>1 2026-05-19T10:00:00Z web1 app - ID47 [ex@1 a="x\]y"][b@2 c="d"] msg"#),
            ("app", "msg")
        );
        let p = parse(b"<34>1 - web1 app - - -").expect("no time, no msg");
        assert_eq!(p.time, None);
        assert_eq!(p.message, 22);
    }

    #[test]
    fn bare_tag_from_the_journal_source() {
        assert_eq!(
            msg("sshd[812]: Failed password"),
            ("sshd", "Failed password")
        );
        assert_eq!(parse(b"sshd[812]: x").expect("bare").time, None);
    }

    #[test]
    fn tag_forms() {
        for (line, program) in [
            ("May 19 10:00:00 web1 sshd(pam_unix)[1234]: x", "sshd"),
            ("May 19 10:00:00 web1 [sshd]: x", "sshd"),
            ("May 19 10:00:00 [sshd]: x", "sshd"),
            ("May 19 10:00:00 web1 dropbear[77] x", "dropbear"),
            ("May 19 10:00:00 dropbear[77] x", "dropbear"),
            ("May 19 10:00:00 mac sshd[12] <Notice>: x", "sshd"),
            ("May 19 10:00:00 web1 sshd(pam_unix): x", "sshd"),
            ("May 19 10:00:00 2001:db8::1 sshd[1]: x", "sshd"),
        ] {
            assert_eq!(msg(line), (program, "x"), "{line}");
        }
    }

    /// Regression (survey of real logs): busybox's facility.level changes from
    /// line to line of one process (dropbear logs `authpriv.warn` and
    /// `authpriv.info`), so it was part of the process and split one
    /// connection into sessions; its host-less unknown-user line then never
    /// met the connection's address.
    #[test]
    fn facility_level_is_no_part_of_the_process() {
        for (warn, info, host) in [
            (
                "Thu Dec  5 17:43:57 2024 authpriv.warn dropbear[12]: x",
                "Thu Dec  5 17:43:58 2024 authpriv.info dropbear[12]: y",
                "",
            ),
            (
                "May 19 10:00:00 authpriv.warn dropbear[12]: x",
                "May 19 10:00:01 authpriv.info dropbear[12]: y",
                "",
            ),
            (
                "May 19 10:00:00 router authpriv.warn dropbear[12]: x",
                "May 19 10:00:01 router authpriv.info dropbear[12]: y",
                "router",
            ),
        ] {
            let (a, b) = (parse(warn.as_bytes()), parse(info.as_bytes()));
            let (a, b) = (a.expect("parses"), b.expect("parses"));
            let process = a.process.expect("a pid");
            assert!(process.starts_with(b"dropbear[12]"), "{warn}");
            assert_eq!(a.process, b.process, "{warn}");
            assert_eq!((a.host, b.host), (host.as_bytes(), host.as_bytes()));
        }
        // A plain host stays part of the process.
        let p = parse(b"May 19 10:00:00 router dropbear[12]: x").expect("parses");
        assert!(
            p.process
                .expect("a pid")
                .starts_with(b"router dropbear[12]")
        );
    }

    #[test]
    fn daemon_specific_forms() {
        for (line, program) in [
            // busybox syslogd: facility.level after the host.
            (
                "May 19 10:00:00 router authpriv.info dropbear[77]: x",
                "dropbear",
            ),
            ("May 19 10:00:00 authpriv.info dropbear[77]: x", "dropbear"),
            // OpenWrt logread.
            (
                "Tue May 19 10:00:00 2026 authpriv.warn dropbear[77]: x",
                "dropbear",
            ),
            // FreeBSD syslogd -v and -vv.
            ("May 19 10:00:00 <4.6> fbsd sshd[5]: x", "sshd"),
            ("May 19 10:00:00 <auth.info> fbsd sshd[5]: x", "sshd"),
            // Solaris: message ID and facility.level after the tag.
            (
                "May 19 10:00:00 sol sshd[5]: [ID 800047 auth.info] x",
                "sshd",
            ),
            // journalctl -o short-precise, short-full, short-unix.
            ("May 19 10:00:00.123456 web1 sshd[5]: x", "sshd"),
            ("Tue 2026-05-19 10:00:00 CEST web1 sshd[5]: x", "sshd"),
            ("Tue 2026-05-19 10:00:00.123456 UTC web1 sshd[5]: x", "sshd"),
            ("1779184800.123456 web1 sshd[5]: x", "sshd"),
            // rsyslog's repeated-message reduction.
            (
                "May 19 10:00:00 web1 sshd[5]: message repeated 3 times: [ x]",
                "sshd",
            ),
            // RFC 5424 without a host name's domain, with structured data.
            (
                r#"<38>1 2026-05-19T10:00:00Z web1 sshd 5 - [origin ip="192.0.2.1"] x"#,
                "sshd",
            ),
        ] {
            assert_eq!(msg(line), (program, "x"), "{line}");
        }
        let p = parse(b"Tue May 19 10:00:00 2026 authpriv.warn dropbear[77]: x").expect("logread");
        assert_eq!(p.time.and_then(|t| t.year), Some(2026));
        // Not a message ID: stays part of the message.
        assert_eq!(
            msg("May 19 10:00:00 sol sshd[5]: [ID x auth.info] y"),
            ("sshd", "[ID x auth.info] y")
        );
        assert_eq!(
            msg("May 19 10:00:00 web1 sshd[5]: message repeated 3 times: [ x"),
            ("sshd", "message repeated 3 times: [ x")
        );
    }

    #[test]
    fn metalog_program_in_brackets() {
        assert_eq!(
            msg("Jun 25 23:53:34 [sshd] User root from 192.0.2.1 not allowed"),
            ("sshd", "User root from 192.0.2.1 not allowed")
        );
        assert_eq!(
            msg("Mar  3 00:17:22 [sshd]: User root"),
            ("sshd", "User root")
        );
        assert_eq!(msg("Mar  3 00:17:22 web1 [sshd] x"), ("sshd", "x"));
        // No pid: lines of one process cannot be told apart.
        assert_eq!(
            parse(b"Jun 25 23:53:34 [sshd] x").expect("metalog").process,
            None
        );
        // A pid alone or an address in brackets names no program.
        for line in [
            "Jun 25 23:53:34 [1234] x",
            "Jun 25 23:53:34 [2001:db8::1] x",
            "Jun 25 23:53:34 [] x",
        ] {
            assert_eq!(parse(line.as_bytes()), None, "{line}");
        }
    }

    #[test]
    fn rfc5424_quoted_structured_data() {
        assert_eq!(
            msg(
                r#"<38>1 2026-05-19T10:00:16.954167-04:00 host.example.com sshd 57915 - - Failed x"#
            ),
            ("sshd", "Failed x")
        );
        for sd in [
            r#"[timeQuality tzKnown="1" isSynced="0"][ex@32473 note="[in brackets]"]"#,
            r#"[ex@32473 a="x]y" b="\"]\""]"#,
            r#"[ex@32473 a="a\\"][b@1]"#,
        ] {
            let line =
                format!("<38>1 2026-05-19T10:00:17Z host.example.com sshd 555 - {sd} Failed x");
            assert_eq!(msg(&line), ("sshd", "Failed x"), "{line}");
        }
        // An element left open (or a quote never closed) is not RFC 5424.
        for sd in [r#"[ex@1 a="x] y"#, "[ex@1 a"] {
            let line = format!("<38>1 2026-05-19T10:00:17Z h sshd 1 - {sd}");
            assert_eq!(parse(line.as_bytes()), None, "{line}");
        }
    }

    #[test]
    fn kernel_uptime_after_the_tag() {
        for line in [
            "May 19 10:00:00 web1 sshd[20878]: kernel:[  970.699396]: Failed x",
            "May 19 10:00:00 web1 sshd[20879]: kernel: [  970.699397] Failed x",
            "sshd[20880]: kernel:[12970.699398] Failed x",
        ] {
            assert_eq!(msg(line), ("sshd", "Failed x"), "{line}");
        }
        // Only that shape is removed.
        for (line, text) in [
            (
                "May 19 10:00:00 web1 sshd[1]: kernel:[970] x",
                "kernel:[970] x",
            ),
            ("May 19 10:00:00 web1 sshd[1]: kernel: x", "kernel: x"),
            (
                "May 19 10:00:00 web1 sshd[1]: kernel:[ 1.5]x",
                "kernel:[ 1.5]x",
            ),
            (
                "May 19 10:00:00 web1 sshd[1]: kernel:[ .5] x",
                "kernel:[ .5] x",
            ),
        ] {
            assert_eq!(msg(line), ("sshd", text), "{line}");
        }
    }

    /// The kernel's own lines name the process that caused them (`comm[pid]:`),
    /// and a process can be given any name: a kernel line never passes for a
    /// program's.
    #[test]
    fn kernel_lines_are_the_kernels() {
        let line = "May 19 10:00:00 web1 kernel: [ 970.6] sshd[1]: segfault at 0 from 198.51.100.9";
        assert_eq!(msg(line).0, "kernel");
    }

    #[test]
    fn daemontools_runit_and_s6_stamps() {
        let line = b"@400000006a0c34aa075bcd15 imap-login: Info: Aborted login";
        let p = parse(line).expect("tai64n");
        assert_eq!(p.program, b"imap-login");
        assert_eq!(p.text(line), b"Info: Aborted login");
        assert_eq!(
            p.time.and_then(|t| t.epoch),
            Some((1_779_184_800, 123_456_789))
        );
        // svlogd -tt (UTC) and -ttt.
        for line in [
            "2026-05-19_10:00:00.12345 web1 sshd[5]: x",
            "2026-05-19T10:00:00.12345 web1 sshd[5]: x",
        ] {
            assert_eq!(msg(line), ("sshd", "x"), "{line}");
        }
        let p = parse(b"2026-05-19_10:00:00.12345 sshd[5]: x").expect("svlogd");
        assert_eq!(p.time.and_then(|t| t.offset), Some(0));
        // A label without its program is not a prefix (dnscache's own lines).
        assert_eq!(
            parse(b"@400000006a0c34aa075bcd15 query 1 c0000201:1234"),
            None
        );
        assert_eq!(parse(b"@400000006a0c34aa075bcd1 sshd[1]: x"), None);
    }

    #[test]
    fn socklog() {
        for line in [
            "2026-05-19T10:00:00.10040 auth.info: May 19 10:00:00 sshd[30993]: x",
            "2026-05-19T10:00:00.10040 auth.info: sshd[30993]: x",
            "2026-05-19_10:00:00.10040 authpriv.notice: sshd[30993]: x",
            "@400000006a0c34aa075bcd15 auth.info: sshd[30993]: x",
            "auth.info: May 19 10:00:00 sshd[30993]: x",
            "auth.info: sshd[30993]: x",
        ] {
            assert_eq!(msg(line), ("sshd", "x"), "{line}");
        }
        // svlogd's stamp is the time; without it, the sender's.
        let p =
            parse(b"2026-05-19T10:00:00 auth.info: May 19 11:00:00 sshd[1]: x").expect("socklog");
        assert_eq!(p.time.map(|t| t.hour), Some(10));
        let line = b"auth.info: May 19 11:00:00 sshd[1]: x";
        let p = parse(line).expect("socklog");
        assert_eq!(p.time.map(|t| t.hour), Some(11));
        assert_eq!(time_of(line).map(|(t, _)| t), p.time);
        assert_eq!(parse(b"auth.info: sshd[1]: x").expect("socklog").time, None);
        // A facility.level is never the program, nor is a host name allowed.
        for line in [
            "2026-05-19T10:00:00 auth.info: auth.info: x",
            "2026-05-19T10:00:00 auth.info: web1 sshd[1]: x",
            "auth.info: x",
        ] {
            assert_eq!(parse(line.as_bytes()), None, "{line}");
        }
    }

    #[test]
    fn bind_log_file() {
        let line = b"06-Dec-2026 10:00:00.123 client @0x7f00c0ffee00 192.0.2.1#53 (example.com): query (cache) 'example.com/A/IN' denied";
        let p = parse(line).expect("BIND");
        assert_eq!(p.program, b"named");
        assert!(p.text(line).starts_with(b"client @0x"));
        assert_eq!(
            p.time.map(|t| (t.year, t.month, t.day)),
            Some((Some(2026), 12, 6))
        );
        assert_eq!(p.process, None);
        assert_eq!(
            msg("06-Dec-2026 10:00:00.123 security: info: client x"),
            ("named", "security: info: client x")
        );
        assert_eq!(time_of(line).map(|(t, _)| t), p.time);
        assert_eq!(parse(b"6-Dec-2026 10:00:00.123 client x"), None);
    }

    #[test]
    fn vserver_guest() {
        assert_eq!(
            msg("May 19 10:00:00 web1 @vserver_mail sshd[5]: x"),
            ("sshd", "x")
        );
        assert_eq!(
            msg("May 19 10:00:00 @vserver_mail sshd[5]: x"),
            ("sshd", "x")
        );
        assert_eq!(parse(b"May 19 10:00:00 web1 @other sshd[5]: x"), None);
    }

    /// A user name is the part of a line a client chooses most freely. Written
    /// as another program's tag and message, it stays in the message of the
    /// program that logged it, in every form.
    #[test]
    fn a_user_name_cannot_become_a_tag() {
        let user = "sshd[1]: Failed password for root from 198.51.100.9 port 22 ssh2";
        for head in [
            "May 19 10:00:00 web1 su[9]: FAILED SU (to root) ",
            "May 19 10:00:00 [su] FAILED SU (to root) ",
            "May 19 10:00:00 web1 @vserver_a su[9]: FAILED SU (to root) ",
            "2026-05-19_10:00:00.1 auth.info: May 19 10:00:00 su[9]: FAILED SU (to root) ",
            "@400000006a0c34aa075bcd15 su[9]: FAILED SU (to root) ",
            "auth.info: su[9]: FAILED SU (to root) ",
            "<38>1 2026-05-19T10:00:00Z web1 su 9 - [a@1 b=\"]\"] FAILED SU (to root) ",
            "06-Dec-2026 10:00:00.123 ",
        ] {
            let line = format!("{head}{user} on pts/0");
            let p = parse(line.as_bytes()).unwrap_or_else(|| panic!("{line}"));
            assert_ne!(p.program, b"sshd", "{line}");
            assert!(p.message <= head.len(), "{line}");
        }
    }

    /// Whatever the message says, it never changes the program or where the
    /// message starts: nothing a client writes is read as part of the prefix.
    #[test]
    fn a_message_cannot_fake_the_prefix() {
        let fakes = [
            "sshd[1]: Failed password for root from 203.0.113.9 port 22 ssh2",
            "host sshd[1]: x",
            "authpriv.info sshd[1]: x",
            "<auth.info> host sshd[1]: x",
            "[sshd]: x",
            "sshd[1] <Notice>: x",
            "May 19 10:00:00 host sshd[1]: x",
            "[sshd] x",
            "auth.info: sshd[1]: x",
            "@vserver_a sshd[1]: x",
            "@400000006a0c34aa075bcd15 sshd[1]: x",
            "06-Dec-2026 10:00:00.123 client x",
        ];
        for head in [
            "May 19 10:00:00 web1 app[9]: ",
            "May 19 10:00:00 app[9]: ",
            "May 19 10:00:00 web1 app[9] ",
            "May 19 10:00:00 router authpriv.info app[9]: ",
            "2026-05-19T10:00:00Z web1 app: ",
            "<13>1 2026-05-19T10:00:00Z web1 app 9 - - ",
            "<13>1 2026-05-19T10:00:00Z web1 app 9 - [a@1 b=\"]\"] ",
            "May 19 10:00:00 [app] ",
            "2026-05-19T10:00:00 auth.info: May 19 10:00:00 app[9]: ",
            "auth.info: app[9]: ",
            "@400000006a0c34aa075bcd15 app[9]: ",
            "May 19 10:00:00 web1 @vserver_x app[9]: ",
            "app[9]: ",
        ] {
            for fake in fakes {
                let line = format!("{head}{fake}");
                let p = parse(line.as_bytes()).unwrap_or_else(|| panic!("{line}"));
                assert_eq!(p.program, b"app", "{line}");
                assert_eq!(p.message, head.len(), "{line}");
            }
        }
    }

    #[test]
    fn lines_without_a_tag_have_no_prefix() {
        for line in [
            "May 19 10:00:00 web1 last message repeated 3 times",
            "May 19 10:00:00 web1 -- MARK --",
            "May 19 10:00:00 web1 mail.info",
            "May 19 10:00:00 <9999.1> web1 sshd[1]: x",
            "May 19 10:00:00 web1 mail.info host sshd[1]: x",
            "May 19 10:00:00 sogod [26818]: x",
        ] {
            assert_eq!(parse(line.as_bytes()), None, "{line}");
        }
    }

    #[test]
    fn not_syslog() {
        for line in [
            "203.0.113.4 - - [19/May/2026:10:00:00 +0000] \"GET / HTTP/1.1\" 200 1",
            "2026/05/19 10:00:00 [error] 1#1: x",
            "May 19 10:00:00 host notatag message",
            "May 19 10:00:00 host prog[x]: bad pid",
            "May 19 10:00:00",
            "",
            "<999999>May 19 10:00:00 h p: x",
        ] {
            assert_eq!(parse(line.as_bytes()), None, "{line}");
        }
    }

    /// The common lines take the one-pass reader once their minute is known
    /// (else `common_is_parse` would test nothing).
    #[test]
    fn common_lines_take_the_fast_path() {
        let mut cache = StampCache::default();
        for line in [
            "May 19 10:00:00 web1 sshd[123]: Invalid user a from 192.0.2.1",
            "May 19 10:00:07.25 web1 sshd: x",
            "May  9 10:00:00 web1 sshd[1]: x",
            "May  9 10:00:59 web1 sshd[1]:",
            "2026-05-19T10:00:00.123456+02:00 web1 sshd-session[5]: Failed",
            "2026-05-19T10:00:01Z web1 sshd-session[5]: Failed",
            "2026-05-19T10:00:02 web1 sshd-session[5]: Failed",
        ] {
            let line = line.as_bytes();
            assert_eq!(parse_cached(line, &mut cache), parse(line));
            assert_eq!(common(line, &mut cache), parse(line));
        }
        let line = b"May 19 10:00:00 web1 sshd[123]: x";
        let mut cache = StampCache::default();
        assert_eq!(common(line, &mut cache), None, "nothing kept yet");
        parse_cached(line, &mut cache);
        assert!(common(b"May 19 10:00:33 db2 su: x", &mut cache).is_some());
        assert!(common(b"May 19 10:01:00 db2 su: x", &mut cache).is_none());
    }

    /// The host and program of the last common line are compared, not
    /// scanned: a line whose host or program only starts like the kept ones
    /// (a longer program, a shorter host) still reads its own.
    #[test]
    fn kept_host_and_program_read_only_their_own() {
        let mut cache = StampCache::default();
        for line in [
            "May 19 10:00:00 web1 sshd[1]: a",
            "May 19 10:00:01 web1 sshd[2]: b",
            "May 19 10:00:01 web1 sshd-session[2]: b",
            "May 19 10:00:01 web1 sshd: c",
            "May 19 10:00:01 web1 ssh[3]: c",
            "May 19 10:00:02 web12 sshd[2]: d",
            "May 19 10:00:02 web sshd[2]: d",
            "May 19 10:00:02 web1 sshd(pam_unix)[2]: d",
            "May 19 10:00:02 web1 sshd[2] x",
            "May 19 10:00:02 auth.info sshd[2]: e",
            "May 19 10:00:02 auth.info sshd[3]: e",
            "May 19 10:00:02 web1 sshd",
            "May 19 10:00:02 web1 sshd[",
            "May 19 10:00:03 averyveryverylonghost.example.org sshd[4]: f",
            "May 19 10:00:03 averyveryverylonghost.example.org sshd[4]: f",
            "May 19 10:00:03 web1 sshd[5]: g",
            "May 19 10:00:03 web1 sshd[5]: g",
        ] {
            let line = line.as_bytes();
            assert_eq!(
                parse_cached(line, &mut cache),
                parse(line),
                "{}",
                String::from_utf8_lossy(line)
            );
        }
        // Zeros past a short line never match a kept host that holds them.
        let mut cache = StampCache::default();
        let line = b"May 19 10:00:00 a\0\0 b: x";
        assert_eq!(parse_cached(line, &mut cache), parse(line));
        let short = b"May 19 10:00:00 a";
        assert_eq!(parse_cached(short, &mut cache), parse(short));
    }

    /// A minute is compared in the line's first 24 bytes, padded with zeros
    /// when the line is shorter; a stamp cut short never matches.
    #[test]
    fn minute_slots_compare_the_minute_only() {
        assert_eq!(minute_masks(13), [u64::MAX, (1 << 40) - 1, 0]);
        assert_eq!(minute_masks(17), [u64::MAX, u64::MAX, 0xff]);
        let mut slot = MinuteSlot::default();
        assert_eq!(slot.read(b"May 19 10:00:00 h p: x", false), None, "empty");
        let (time, _) = parse_bsd(b"May 19 10:00:00").expect("stamp");
        slot.keep(b"May 19 10:00:00 web1 sshd[1]: a longer line", 13, time);
        for (line, want) in [
            (&b"May 19 10:00:07"[..], parse_bsd(b"May 19 10:00:07")),
            (
                b"May 19 10:00:07.5 h p: x",
                parse_bsd(b"May 19 10:00:07.5 h p: x"),
            ),
            (b"May 19 10:00", None),
            (b"May 19 10:00:", None),
            (b"May 19 10:01:07", None),
            (b"May 19 10:00:61", None),
            (b"", None),
        ] {
            assert_eq!(
                slot.read(line, false),
                want,
                "{}",
                String::from_utf8_lossy(line)
            );
        }
    }

    proptest! {
        #[test]
        fn same_bytes_is_equality(a in proptest::collection::vec(0u8..3, 0..40), b in proptest::collection::vec(0u8..3, 0..40)) {
            prop_assert_eq!(same_bytes(&a, &b), a == b);
            prop_assert!(same_bytes(&a, &a));
        }

        /// Every byte counts, at every length the word paths cover: a copy
        /// with one byte changed is not the same.
        #[test]
        fn same_bytes_sees_each_byte(
            a in proptest::collection::vec(any::<u8>(), 1..40),
            at in any::<proptest::sample::Index>(),
            flip in 1u8..,
        ) {
            let mut b = a.clone();
            prop_assert!(same_bytes(&a, &b));
            let i = at.index(b.len());
            b[i] ^= flip;
            prop_assert!(!same_bytes(&a, &b), "byte {} of {}", i, a.len());
        }
    }

    #[test]
    fn time_of_finds_the_prefix_time() {
        for line in [
            "May 19 10:00:00 web1 sshd[123]: Invalid user a from 192.0.2.1",
            "May  9 10:00:00.250 web1 postfix/smtpd[7]: warning: x",
            "2026-05-19T10:00:00.123456+02:00 web1 sshd-session[5]: Failed",
            "<38>May 19 10:00:00 web1 sshd[1]: x",
            "<34>1 2026-05-19T10:00:00.003Z web1 sshd 123 - - Failed password",
        ] {
            let p = parse(line.as_bytes()).expect(line);
            let (t, end) = time_of(line.as_bytes()).expect(line);
            assert_eq!(p.time, Some(t), "{line}");
            assert_eq!(line.as_bytes()[end], b' ', "{line}");
        }
        for line in [
            "sshd[812]: Failed password",
            "<34>1 - web1 app - - -",
            "May 19 10:00:00",
        ] {
            assert_eq!(time_of(line.as_bytes()), None, "{line}");
        }
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            if let Some(p) = parse(&bytes) {
                prop_assert!(p.message <= bytes.len());
            }
        }

        /// Wherever `parse` reads a time, `time_of` reads the same one.
        #[test]
        fn time_of_agrees_with_parse(
            pri in prop_oneof![Just(""), Just("<38>"), Just("<34>1 ")],
            stamp in prop_oneof![
                Just("May 19 10:00:00"), Just("May  9 10:00:00.5"), Just("Feb 30 10:00:00"),
                Just("2026-05-19T10:00:00Z"), Just("2026-05-19T10:00:00.1+0200"), Just("-"),
                Just("@400000006a0c34aa075bcd15"), Just("2026-05-19_10:00:00.5"),
                Just("06-Dec-2026 10:00:00.123"), Just("auth.info: May 19 10:00:00"),
                Just("auth.info: "),
            ],
            rest in "[ -~]{0,30}",
        ) {
            let line = format!("{pri}{stamp}{rest}");
            if let Some(Prefix { time: Some(t), .. }) = parse(line.as_bytes()) {
                prop_assert_eq!(time_of(line.as_bytes()).map(|(t, _)| t), Some(t));
            }
            if time_of(line.as_bytes()).is_none() {
                prop_assert!(parse(line.as_bytes()).is_none_or(|p| p.time.is_none()));
            }
        }

        /// The cache never changes what a line parses to, whatever came before.
        #[test]
        fn cached_parse_is_parse(
            lines in proptest::collection::vec((
                prop_oneof![Just(""), Just("<38>"), Just("<34>1 ")],
                prop_oneof![
                    Just("May 19 10:00:00"), Just("May 19 10:00:00.5"), Just("May 19 10:00:0"),
                    Just("2026-05-19T10:00:00Z"), Just("2026-05-19T10:00:00+02"), Just("2026-05-19T10:00:00+02:00"),
                    Just("Tue 2026-05-19 10:00:00"), Just("Tue 2026-05-19T10:00:00"),
                    Just("@400000006a0c34aa075bcd15"), Just("@400000006a0c34aa075bcd16"),
                    Just("2026-05-19_10:00:00"), Just("06-Dec-2026 10:00:00"),
                    Just("auth.info: May 19 10:00:00"),
                ],
                "[ .:+0-9a-zA-Z\\[\\]]{0,12}",
            ), 1..12),
        ) {
            let mut cache = StampCache::default();
            for (pri, stamp, rest) in lines {
                let line = format!("{pri}{stamp}{rest}");
                prop_assert_eq!(parse_cached(line.as_bytes(), &mut cache), parse(line.as_bytes()), "{}", line);
            }
        }

        /// The one-pass reader of the common line finds what the general
        /// parser finds wherever it finds anything, and the minute slots never
        /// change what a line parses to, on lines near the common shape.
        #[test]
        fn common_is_parse(
            lines in proptest::collection::vec((
                prop_oneof![
                    Just("May 19 10:00:"), Just("May  9 10:00:"), Just("May 9 10:00:"),
                    Just("May 19 10:01:"), Just("may 19 10:00:"), Just("Feb 31 23:59:"),
                    Just("2026-05-19T10:00:"), Just("2026-05-19 10:00:"), Just("2026-05-19T10:01:"),
                    Just("2026-13-19T10:00:"), Just("<38>May 19 10:00:"), Just("<34>1 2026-05-19T10:00:"),
                    Just("06-Dec-2026 10:00:"), Just("Tue 2026-05-19 10:00:"), Just("Tue May 19 10:00:"),
                    Just("2026-05-19_10:00:"), Just("May 19 10:00"),
                ],
                "[0-9]{2}|6[0-9]|[0-9]|x",
                "([.,][0-9]{0,10})?(Z|[+-][0-9]{2}(:?[0-9]{2})?|[+-]9)?",
                prop_oneof![
                    Just(" "), Just("  "), Just(" 2026 "), Just(" CEST "), Just(""),
                ],
                prop_oneof![
                    Just("web1 "), Just("db2.example.org "), Just("a "), Just(""), Just(" "),
                    Just("web1: "), Just("web1] "), Just("w[1] "), Just("<4.6> web1 "),
                    Just("auth.info "), Just("web1 auth.info "), Just("web1 @vserver_a "),
                    Just("web1\t"), Just("averyveryverylonghostname.example.com "),
                ],
                prop_oneof![
                    Just("sshd[123]:"), Just("sshd:"), Just("sshd-session[9]:"), Just("sshd[123]"),
                    Just("sshd[]:"), Just("sshd[1x]:"), Just("sshd[1]:x"), Just("sshd(pam_unix)[1]:"),
                    Just("[sshd]:"), Just("[sshd]"), Just("sshd[1] <Notice>:"), Just("sshd"),
                    Just("auth.info:"), Just("s:"), Just(":"), Just("[1]:"), Just("sshd[1]:]"),
                    Just("postfix/smtpd[7]:"), Just("sshd\u{e9}[1]:"),
                ],
                prop_oneof![
                    Just(""), Just(" "), Just(" Failed password for root"), Just("Failed"),
                    Just(" [ID 800047 auth.info] x"), Just(" message repeated 2 times: [ x]"),
                    Just(" kernel:[ 1.5]: x"), Just(" sshd[1]: x"), Just("  x"),
                ],
            ), 1..10),
        ) {
            let mut cache = StampCache::default();
            for (minute, second, tail, gap, host, tag, msg) in lines {
                let line = format!("{minute}{second}{tail}{gap}{host}{tag}{msg}");
                let line = line.as_bytes();
                let want = parse(line);
                if let Some(found) = common(line, &mut cache) {
                    prop_assert_eq!(Some(found), want, "{}", String::from_utf8_lossy(line));
                }
                prop_assert_eq!(parse_cached(line, &mut cache), want, "{}", String::from_utf8_lossy(line));
            }
        }

        /// The hinted read answers what a walk through every memo in order
        /// answers, whatever the hints hold: lines of hosts and programs
        /// sharing their first eight bytes, shorter than eight (their hint
        /// changes with the pid) and longer than the sixteen kept.
        #[test]
        fn hinted_tag_read_is_the_walk(
            lines in proptest::collection::vec((
                prop_oneof![
                    Just("web1"), Just("db2"), Just("a"), Just("ip-10-0-0-1"), Just("ip-10-0-0-2"),
                    Just("auth.info"), Just("averyverylonghost"),
                ],
                prop_oneof![
                    Just("sshd"), Just("sshd-session"), Just("CRON"), Just("su"), Just("systemd"),
                    Just("systemd-logind"),
                ],
                prop_oneof![Just("["), Just(":"), Just(" "), Just("")],
                "[0-9]{0,6}",
            ), 1..60),
        ) {
            let mut memos = TagMemos::default();
            for (host, program, after, pid) in lines {
                let line = format!("{host} {program}{after}{pid}]: x");
                let rest = line.as_bytes();
                let w = head_pair(rest);
                let want = memos.memos.iter().find_map(|m| m.reads(w, rest));
                let got = memos.read(rest);
                prop_assert_eq!(got, want, "{}", line);
                let len = host.len() + 1 + name_len(&rest[host.len() + 1..]);
                if got.is_none() {
                    memos.keep(rest, len, host.len(), false);
                }
                prop_assert_eq!(memos.read(rest).is_some(), len <= 16, "{}", line);
            }
        }

        /// The word-at-a-time digit scan takes what a byte loop takes, on
        /// bytes near every boundary of the class.
        #[test]
        fn word_scan_is_byte_scan(bytes in proptest::collection::vec(prop_oneof![
            Just(b' '), Just(b'!'), Just(b'~'), Just(0x7f), Just(0x80), Just(0xa8), Just(0xba),
            Just(0xdb), Just(0xdd), Just(0xff), Just(0), Just(0x1f), Just(b'('), Just(b')'),
            Just(b'*'), Just(b'\''), Just(b':'), Just(b';'), Just(b'9'), Just(b'['), Just(b']'),
            Just(b'\\'), Just(b'^'), Just(b'Z'), Just(b'/'), Just(b'0'), Just(b'5'), Just(b'@'),
            b'a'..=b'z', b'0'..=b'9', any::<u8>(),
        ], 0..40)) {
            let digits = bytes.iter().take_while(|c| c.is_ascii_digit()).count();
            prop_assert_eq!(digits_len(&bytes), digits);
        }

        #[test]
        fn space_at_finds_the_first_space(bytes in proptest::collection::vec(prop_oneof![Just(b' '), Just(b'.'), Just(b'!'), Just(b'/'), Just(b'-'), Just(0x1fu8), Just(0xa0u8), Just(0xaeu8), any::<u8>()], 0..40)) {
            let want = bytes.iter().position(|c| *c == b' ').unwrap_or(bytes.len());
            prop_assert_eq!(space_at(&bytes), (want, bytes[..want].contains(&b'.')));
        }

        #[test]
        fn message_is_whatever_follows_the_tag(msg in "[ -~]{0,40}", pid in 1u32..99999) {
            let line = format!("May 19 10:00:00 host sshd[{pid}]: {msg}");
            let p = parse(line.as_bytes()).expect("parses");
            prop_assert_eq!(&line.as_bytes()[p.message..], msg.as_bytes());
            prop_assert_eq!(p.program, b"sshd");
        }

        /// In every form, the message never moves the program or the start of
        /// the message earlier; it only ever shortens what the filters see
        /// (Solaris IDs, rsyslog repeats) from the front or the final `]`.
        #[test]
        fn no_message_reaches_into_the_prefix(
            head in prop_oneof![
                Just("May 19 10:00:00 web1 app[9]: "),
                Just("May 19 10:00:00 app[9]: "),
                Just("May 19 10:00:00 web1 app[9] "),
                Just("May 19 10:00:00 app[9] "),
                Just("May 19 10:00:00 web1 app(pam_unix)[9]: "),
                Just("May 19 10:00:00 web1 [app]: "),
                Just("May 19 10:00:00 <auth.info> web1 app[9]: "),
                Just("May 19 10:00:00 web1 auth.info app[9]: "),
                Just("Tue May 19 10:00:00 2026 auth.info app[9]: "),
                Just("Tue 2026-05-19 10:00:00 CEST web1 app[9]: "),
                Just("1779184800.5 web1 app[9]: "),
                Just("2026-05-19T10:00:00Z app: "),
                Just("app[9]: "),
                Just("May 19 10:00:00 [app] "),
                Just("May 19 10:00:00 web1 @vserver_x app[9]: "),
                Just("2026-05-19_10:00:00.5 auth.info: May 19 10:00:00 app[9]: "),
                Just("auth.info: app[9]: "),
                Just("@400000006a0c34aa075bcd15 app[9]: "),
                Just("<13>1 2026-05-19T10:00:00Z web1 app 9 - [a@1 b=\"]\"] "),
            ],
            msg in "(\\[ID 1 auth.info\\] |message repeated 2 times: \\[ |kernel:\\[ 1.5\\]: |sshd\\[1\\]: |\\[sshd\\] |<Notice>: |auth.info: |auth.info |@vserver_a |host |[ -~]){0,12}",
        ) {
            let line = format!("{head}{msg}");
            let p = parse(line.as_bytes()).expect("parses");
            prop_assert_eq!(p.program, b"app");
            prop_assert!(p.message >= head.len());
            prop_assert!(p.message <= p.end && p.end <= line.len());
        }
    }
}
