//! When a log line says it happened: timestamp text parsed straight from bytes, and
//! turned into a point in time with the filter's time zone.
//!
//! Lines older than a jail's `findtime` must not count, so a line's own time
//! matters when a backlog or a rotated file is read. The formats here are the ones
//! logs use: syslog's `Mmm dd HH:MM:SS` (no year, local time), ISO 8601 / RFC 3339,
//! the Common Log Format of web servers, Unix seconds, and a small strftime subset
//! for everything else. Parsing never allocates; it runs only on lines that matched.
//!
//! Where the time is read from is part of injection safety: an attacker who could
//! place a fake old date where the parser looks would make their lines not count.
//! So a date pattern is only ever read at a fixed place (the start of the line, the
//! syslog prefix, or the Common Log Format field right before the request).

use std::time::SystemTime;

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::{Offset, TimeZone};

/// How far in the future a year-less syslog time may lie before it is taken to be
/// last year's (a December line read in January). Clocks of the logging host and
/// the agent may disagree a little.
const FUTURE_SLACK_SECS: i64 = 2 * 86_400;

/// A timestamp as written: civil fields, maybe without a year or an offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawTime {
    /// The year, if the text had one.
    pub year: Option<i16>,
    /// 1 to 12.
    pub month: i8,
    /// 1 to 31.
    pub day: i8,
    /// 0 to 23.
    pub hour: i8,
    /// 0 to 59.
    pub minute: i8,
    /// 0 to 60 (a leap second is read as 59).
    pub second: i8,
    /// Fraction of the second.
    pub nanos: i32,
    /// Offset from UTC in seconds, if the text had one.
    pub offset: Option<i32>,
    /// Unix seconds, for `%s`; the civil fields are then unused.
    pub epoch: Option<(i64, i32)>,
}

impl RawTime {
    fn civil(year: Option<i16>, month: i8, day: i8) -> RawTime {
        RawTime {
            year,
            month,
            day,
            hour: 0,
            minute: 0,
            second: 0,
            nanos: 0,
            offset: None,
            epoch: None,
        }
    }

    /// The point in time this text names. A missing offset means `tz`; a missing
    /// year means the year that puts the time closest before `now`.
    pub fn resolve(&self, tz: &TimeZone, now: SystemTime) -> Option<SystemTime> {
        if let Some((secs, nanos)) = self.epoch {
            let ts = Timestamp::new(secs, nanos).ok()?;
            return Some(SystemTime::from(ts));
        }
        let second = self.second.min(59);
        let at = |year: i16| -> Option<Timestamp> {
            let dt = DateTime::new(
                year,
                self.month,
                self.day,
                self.hour,
                self.minute,
                second,
                self.nanos,
            )
            .ok()?;
            match self.offset {
                Some(secs) => Offset::from_seconds(secs).ok()?.to_timestamp(dt).ok(),
                None => tz.to_ambiguous_timestamp(dt).compatible().ok(),
            }
        };
        let ts = match self.year {
            Some(y) => at(y)?,
            None => {
                let now_ts = Timestamp::try_from(now).ok()?;
                let year = tz.to_datetime(now_ts).year();
                match at(year) {
                    Some(ts) if ts.as_second() <= now_ts.as_second() + FUTURE_SLACK_SECS => ts,
                    // In the future (or Feb 29 of a common year): last year's.
                    _ => at(year.checked_sub(1)?)?,
                }
            }
        };
        Some(SystemTime::from(ts))
    }
}

/// Resolves line times like [`RawTime::resolve`], remembering the last hour it
/// resolved. Log lines come in time order, so consecutive lines mostly share an
/// hour, and the time zone rules (a search through the zone's transitions)
/// then run once an hour instead of once a line.
///
/// An hour is remembered only when its first and last second resolve exactly
/// 3,599 seconds apart, so an hour that a zone transition (Lord Howe's moves
/// by half an hour) or the year choice (a line just past `now`) splits is
/// resolved minute by minute, as without the memo. Its fields are held as two
/// words, so a line of a remembered hour costs two comparisons and an addition.
///
/// Two hours are kept, and a new one replaces the one used longest ago: a
/// log host that collects from servers with different stamps (BSD without a
/// zone, ISO 8601 with an offset) alternates between two hours that never
/// compare equal, and one slot would resolve every line.
#[derive(Debug, Clone, Default)]
pub struct TimeMemo {
    last: [Option<HourMemo>; 2],
    /// The slot used last (0 or 1).
    recent: usize,
}

/// One remembered hour and what its result depends on.
#[derive(Debug, Clone, Copy)]
struct HourMemo {
    /// Identifies the time zone (the caller's key, such as a filter index).
    zone: usize,
    /// The line time's fields down to its hour, see [`hour_key`].
    hour: [u64; 2],
    now: SystemTime,
    /// The resolved start of the hour (`None`: no second of it resolves).
    start: Option<SystemTime>,
}

/// The fields of a civil time (no `epoch`) down to its hour, packed into two
/// words: equal words, equal fields.
#[inline(always)]
fn hour_key(raw: &RawTime) -> [u64; 2] {
    let year = raw.year.map_or(0, |y| (1 << 16) | u64::from(y as u16));
    let date = (year << 24)
        | (u64::from(raw.month as u8) << 16)
        | (u64::from(raw.day as u8) << 8)
        | u64::from(raw.hour as u8);
    let offset = raw.offset.map_or(0, |o| (1 << 32) | u64::from(o as u32));
    [date, offset]
}

impl TimeMemo {
    /// `raw` in `tz` (which `zone` names for the caller: the same key must always
    /// come with the same zone), as [`RawTime::resolve`] gives it.
    ///
    /// A line of either remembered hour is answered without moving the
    /// slots (`recent` notes which was used); a new hour takes the slot used
    /// longest ago.
    ///
    /// Inlined, with the rest kept out of line ([`Self::resolve_new`]): a
    /// remembered hour is the usual case, and a call's frame cost about as
    /// much as the look-up.
    #[inline(always)]
    pub fn resolve(
        &mut self,
        raw: &RawTime,
        zone: usize,
        tz: &TimeZone,
        now: SystemTime,
    ) -> Option<SystemTime> {
        if let Some(within) = within_hour(raw) {
            let hour = hour_key(raw);
            for (i, m) in self.last.iter().enumerate() {
                if let Some(m) = m
                    && m.hour == hour
                    && m.zone == zone
                    && m.now == now
                {
                    self.recent = i;
                    return m.start.map(|s| s + within);
                }
            }
        }
        self.resolve_new(raw, zone, tz, now)
    }

    /// [`Self::resolve`] of a line whose hour is not remembered.
    #[inline(never)]
    fn resolve_new(
        &mut self,
        raw: &RawTime,
        zone: usize,
        tz: &TimeZone,
        now: SystemTime,
    ) -> Option<SystemTime> {
        let Some(within) = within_hour(raw) else {
            return raw.resolve(tz, now);
        };
        let hour = hour_key(raw);
        let first = RawTime {
            minute: 0,
            second: 0,
            nanos: 0,
            ..*raw
        };
        let start = first.resolve(tz, now);
        let last_second = RawTime {
            minute: 59,
            second: 59,
            ..first
        }
        .resolve(tz, now);
        let whole = match (start, last_second) {
            (None, None) => true,
            (Some(a), Some(b)) => {
                b.duration_since(a).ok() == Some(std::time::Duration::from_secs(3599))
            }
            _ => false,
        };
        if !whole {
            return raw.resolve(tz, now);
        }
        // The new hour takes the place of the one used longest ago.
        let slot = 1 - self.recent;
        self.last[slot] = Some(HourMemo {
            zone,
            hour,
            now,
            start,
        });
        self.recent = slot;
        start.map(|s| s + within)
    }
}

/// How far into its hour a civil time (no `epoch`) lies, or `None` for a
/// time the memo does not take (Unix seconds, fields out of range).
#[inline(always)]
fn within_hour(raw: &RawTime) -> Option<std::time::Duration> {
    if raw.epoch.is_some()
        || !(0..60).contains(&raw.minute)
        || raw.second < 0
        || !(0..1_000_000_000).contains(&raw.nanos)
    {
        return None;
    }
    // A leap second reads as 59, as in `resolve`.
    let secs =
        60 * u64::from(raw.minute.unsigned_abs()) + u64::from(raw.second.min(59).unsigned_abs());
    Some(std::time::Duration::new(secs, raw.nanos.unsigned_abs()))
}

/// The time zone named by a filter's `timezone` key: `local` (the system's),
/// `UTC`, a fixed offset (`+02:00`, `-0530`) or an IANA name (`Europe/Berlin`).
pub fn parse_zone(name: &str) -> Result<TimeZone, String> {
    match name {
        "local" => return Ok(TimeZone::system()),
        "UTC" | "utc" | "Z" => return Ok(TimeZone::UTC),
        _ => {}
    }
    if let Some((secs, used)) = parse_offset(name.as_bytes())
        && used == name.len()
    {
        return Offset::from_seconds(secs)
            .map(TimeZone::fixed)
            .map_err(|e| format!("{name:?}: {e}"));
    }
    TimeZone::get(name).map_err(|_| {
        format!("unknown time zone {name:?} (use local, UTC, an offset like +02:00, or an IANA name like Europe/Berlin)")
    })
}

/// `n` ASCII digits at the start of `b`, as a number.
fn digits(b: &[u8], n: usize) -> Option<i32> {
    let d = b.get(..n)?;
    let mut v = 0i32;
    for &c in d {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + i32::from(c - b'0');
    }
    Some(v)
}

/// One or two digits, optionally preceded by a space (`%e` style).
fn day_digits(b: &[u8]) -> Option<(i32, usize)> {
    match b {
        [b' ', d, ..] if d.is_ascii_digit() => Some((i32::from(d - b'0'), 2)),
        [a, b2, ..] if a.is_ascii_digit() && b2.is_ascii_digit() => {
            Some((i32::from(a - b'0') * 10 + i32::from(b2 - b'0'), 2))
        }
        [a, ..] if a.is_ascii_digit() => Some((i32::from(a - b'0'), 1)),
        _ => None,
    }
}

/// `Jan` to `Dec`, any case, as 1 to 12. On every syslog line, so one decision
/// tree rather than twelve comparisons (`| 0x20` lower-cases exactly the ASCII
/// letters into the range the names use).
fn month_abbr(b: &[u8]) -> Option<i8> {
    let [a, b2, c] = *b.first_chunk::<3>()?;
    Some(match [a | 0x20, b2 | 0x20, c | 0x20] {
        [b'j', b'a', b'n'] => 1,
        [b'f', b'e', b'b'] => 2,
        [b'm', b'a', b'r'] => 3,
        [b'a', b'p', b'r'] => 4,
        [b'm', b'a', b'y'] => 5,
        [b'j', b'u', b'n'] => 6,
        [b'j', b'u', b'l'] => 7,
        [b'a', b'u', b'g'] => 8,
        [b's', b'e', b'p'] => 9,
        [b'o', b'c', b't'] => 10,
        [b'n', b'o', b'v'] => 11,
        [b'd', b'e', b'c'] => 12,
        _ => return None,
    })
}

/// `.123456` or `,123` after the seconds: the fraction in nanoseconds and the bytes
/// used (0 when there is none). Digits past the ninth are used but not counted.
fn fraction(b: &[u8]) -> (i32, usize) {
    /// What `n` digits read so far are multiplied by to give nanoseconds.
    const SCALE: [i32; 10] = [
        0,
        100_000_000,
        10_000_000,
        1_000_000,
        100_000,
        10_000,
        1_000,
        100,
        10,
        1,
    ];
    let Some((b'.' | b',', digits)) = b.split_first() else {
        return (0, 0);
    };
    // Up to seven digits and what follows them, as one word.
    if let Some(chunk) = digits.first_chunk::<8>() {
        let word = u64::from_le_bytes(*chunk);
        let stops = digit_stops(word);
        if stops != 0 {
            let n = (stops.trailing_zeros() / 8) as usize;
            if n == 0 {
                return (0, 0);
            }
            // The digits' values, moved up so zeros lead them.
            let values = (word ^ splat(b'0')) & ((1 << (8 * n)) - 1);
            let value = eight_digits(values << (8 * (8 - n)));
            return (value as i32 * SCALE[n], n + 1);
        }
    }
    let mut nanos = 0i32;
    let mut n = 0;
    while n < 9 {
        match digits.get(n) {
            Some(c) if c.is_ascii_digit() => nanos = nanos * 10 + i32::from(c - b'0'),
            _ => break,
        }
        n += 1;
    }
    if n == 0 {
        return (0, 0);
    }
    let nanos = nanos * SCALE[n];
    if n == 9 {
        n += digits[9..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
    }
    (nanos, n + 1)
}

/// `Z`, `±HH:MM`, `±HHMM` or `±HH`: seconds east of UTC and bytes used.
#[inline]
fn parse_offset(b: &[u8]) -> Option<(i32, usize)> {
    let pair = |at: usize| -> Option<i32> {
        let &[x, y] = b.get(at..)?.first_chunk::<2>()?;
        two_digits(x, y).map(i32::from)
    };
    match b.first()? {
        b'Z' | b'z' => Some((0, 1)),
        sign @ (b'+' | b'-') => {
            let h = pair(1)?;
            let (m, used) = match b.get(3) {
                Some(b':') => (pair(4)?, 6),
                Some(c) if c.is_ascii_digit() => (pair(3)?, 5),
                _ => (0, 3),
            };
            if h > 23 || m > 59 {
                return None;
            }
            let secs = h * 3600 + m * 60;
            Some((if *sign == b'-' { -secs } else { secs }, used))
        }
        _ => None,
    }
}

/// [`parse_offset`], with the form ISO 8601 stamps mostly carry (`+HH:MM`)
/// read here from six fixed bytes: the general parser, a call that takes
/// the bytes one at a time, cost about 70 instructions a stamp. Any other
/// form, or one it would refuse, goes to it.
#[inline(always)]
fn offset_at(b: &[u8]) -> Option<(i32, usize)> {
    if let Some(&[sign @ (b'+' | b'-'), h1, h2, b':', m1, m2]) = b.first_chunk::<6>()
        && let (Some(h @ 0..=23), Some(m @ 0..=59)) = (two_digits(h1, h2), two_digits(m1, m2))
    {
        let secs = i32::from(h) * 3600 + i32::from(m) * 60;
        return Some((if sign == b'-' { -secs } else { secs }, 6));
    }
    parse_offset(b)
}

/// `[b; 8]` as a word.
pub(super) const fn splat(b: u8) -> u64 {
    u64::from_ne_bytes([b; 8])
}

/// The high bit of every byte of `word` that is not an ASCII digit. Exact
/// for every byte (unlike the zero-byte test's borrows): the test adds at
/// most `0x76` to seven-bit values, which never carries into the next byte.
#[inline(always)]
pub(super) fn digit_stops(word: u64) -> u64 {
    const HIGHS: u64 = splat(0x80);
    // A digit is `0x30 + 0..=9`; past `^ 0x30`, the low seven bits are 10 or
    // more (`+ 0x76` sets the high bit), or the high bit was set, for any other.
    let x = word ^ splat(b'0');
    (x | ((x & !HIGHS) + splat(0x80 - 10))) & HIGHS
}

/// The number whose decimal digits are the bytes of `values` (each 0 to 9,
/// the first byte the most significant), eight at a time: pairs, then the
/// four pairs in one multiplication.
#[inline(always)]
fn eight_digits(values: u64) -> u32 {
    const PAIRS: u64 = 0x0000_00ff_0000_00ff;
    let pairs = values.wrapping_mul(10).wrapping_add(values >> 8);
    let hi = (pairs & PAIRS).wrapping_mul(100 + (1_000_000 << 32));
    let lo = ((pairs >> 16) & PAIRS).wrapping_mul(1 + (10_000 << 32));
    (hi.wrapping_add(lo) >> 32) as u32
}

/// Two ASCII digits as a number.
fn two_digits(a: u8, b: u8) -> Option<i8> {
    let (a, b) = (a.wrapping_sub(b'0'), b.wrapping_sub(b'0'));
    (a < 10 && b < 10).then(|| (a * 10 + b) as i8)
}

/// The rest of a stamp whose minute is already known, as the BSD or (with
/// `offset`) the ISO 8601 parser reads it from the seconds on: `SS`, an optional
/// fraction, and for ISO 8601 an optional offset. Sets those fields of `t` and
/// gives the bytes used; `None` where those parsers would fail.
#[inline(always)]
pub(super) fn from_seconds(b: &[u8], t: &mut RawTime, offset: bool) -> Option<usize> {
    let &[s1, s2] = b.first_chunk::<2>()?;
    let s = two_digits(s1, s2)?;
    if s > 60 {
        return None;
    }
    // Most stamps have no fraction: that is decided here, without the call.
    let (nanos, used) = match b.get(2) {
        Some(b'.' | b',') => fraction(&b[2..]),
        _ => (0, 0),
    };
    t.second = s;
    t.nanos = nanos;
    let mut pos = 2 + used;
    if offset {
        t.offset = None;
        if let Some((off, used)) = offset_at(&b[pos..]) {
            t.offset = Some(off);
            pos += used;
        }
    }
    Some(pos)
}

/// `HH:MM:SS` and an optional fraction.
fn clock(b: &[u8], t: &mut RawTime) -> Option<usize> {
    let &[h1, h2, c1, m1, m2, c2, s1, s2] = b.first_chunk::<8>()?;
    if c1 != b':' || c2 != b':' {
        return None;
    }
    let (h, m, s) = (
        two_digits(h1, h2)?,
        two_digits(m1, m2)?,
        two_digits(s1, s2)?,
    );
    if h > 23 || m > 59 || s > 60 {
        return None;
    }
    let (nanos, used) = fraction(&b[8..]);
    t.hour = h;
    t.minute = m;
    t.second = s;
    t.nanos = nanos;
    Some(8 + used)
}

fn valid_day(d: i32) -> Option<i8> {
    (1..=31).contains(&d).then_some(d as i8)
}

/// Syslog's `Mmm dd HH:MM:SS` (day space-padded or not), with an optional
/// fraction. Returns the time and the bytes used.
pub fn parse_bsd(b: &[u8]) -> Option<(RawTime, usize)> {
    let (mut t, mut pos) = bsd_date(b)?;
    pos += clock(b.get(pos..)?, &mut t)?;
    Some((t, pos))
}

/// `Mmm dd ` at the start of `b`: the date without a year, and the bytes used.
#[inline]
fn bsd_date(b: &[u8]) -> Option<(RawTime, usize)> {
    let month = month_abbr(b)?;
    if b.get(3) != Some(&b' ') {
        return None;
    }
    let (day, used) = day_digits(b.get(4..)?)?;
    let pos = 4 + used;
    if b.get(pos) != Some(&b' ') {
        return None;
    }
    Some((RawTime::civil(None, month, valid_day(day)?), pos + 1))
}

/// The BSD stamp with a year between the day and the time, `May 19 2026
/// 10:00:00` (macOS system.log with a year).
pub fn parse_bsd_year(b: &[u8]) -> Option<(RawTime, usize)> {
    let (mut t, mut pos) = bsd_date(b)?;
    if b.get(pos + 4) != Some(&b' ') {
        return None;
    }
    t.year = Some(digits(b.get(pos..)?, 4)? as i16);
    pos += 5;
    pos += clock(b.get(pos..)?, &mut t)?;
    Some((t, pos))
}

/// ISO 8601 / RFC 3339: `YYYY-MM-DD` then `T` or a space, `HH:MM:SS`, an optional
/// fraction (`.` or `,`) and an optional offset (`Z`, `+02:00`, `+0200`).
pub fn parse_iso(b: &[u8]) -> Option<(RawTime, usize)> {
    let mut t = iso_date(b)?;
    if !matches!(b.get(10), Some(b'T' | b't' | b' ')) {
        return None;
    }
    let mut pos = 11 + clock(b.get(11..)?, &mut t)?;
    if let Some((off, used)) = parse_offset(&b[pos..]) {
        t.offset = Some(off);
        pos += used;
    }
    Some((t, pos))
}

/// The `YYYY-MM-DD` at the start of `b`.
#[inline]
fn iso_date(b: &[u8]) -> Option<RawTime> {
    let y = digits(b, 4)?;
    let mo = digits(b.get(5..)?, 2)?;
    let d = digits(b.get(8..)?, 2)?;
    if b[4] != b'-' || b[7] != b'-' || !(1..=12).contains(&mo) {
        return None;
    }
    Some(RawTime::civil(Some(y as i16), mo as i8, valid_day(d)?))
}

/// A weekday name and a space (`Tue `), as some syslog front ends write before
/// the date: the bytes used. The name says nothing the date does not.
fn weekday(b: &[u8]) -> Option<usize> {
    let [a, b2, c, sp] = *b.first_chunk::<4>()?;
    let known = matches!(
        [a | 0x20, b2 | 0x20, c | 0x20],
        [b'm', b'o', b'n']
            | [b't', b'u', b'e']
            | [b'w', b'e', b'd']
            | [b't', b'h', b'u']
            | [b'f', b'r', b'i']
            | [b's', b'a', b't']
            | [b's', b'u', b'n']
    );
    (known && sp == b' ').then_some(4)
}

/// The C library's `ctime` layout, `Tue May 19 10:00:00 2026`: what OpenWrt's
/// `logread` writes before each line.
pub fn parse_ctime(b: &[u8]) -> Option<(RawTime, usize)> {
    let day = weekday(b)?;
    let (mut t, used) = parse_bsd(&b[day..])?;
    let pos = day + used;
    if b.get(pos) != Some(&b' ') {
        return None;
    }
    let year = digits(b.get(pos + 1..)?, 4)?;
    t.year = Some(year as i16);
    Some((t, pos + 5))
}

/// `journalctl -o short-full`: `Tue 2026-05-19 10:00:00 CEST` (a fraction with
/// `--output=short-full` and microseconds is accepted too). The zone is printed
/// as an abbreviation, which does not name an offset, so the time is read in the
/// filter's time zone (journalctl prints in the reading host's zone); a numeric
/// `+0530` is used as such.
pub fn parse_weekday_iso(b: &[u8]) -> Option<(RawTime, usize)> {
    let day = weekday(b)?;
    let (mut t, used) = parse_iso(&b[day..])?;
    let mut pos = day + used;
    if t.offset.is_some() || b.get(pos) != Some(&b' ') {
        return Some((t, pos));
    }
    let zone = &b[pos + 1..];
    if let Some((off, n)) = parse_offset(zone)
        && zone.get(n) == Some(&b' ')
    {
        t.offset = Some(off);
        return Some((t, pos + 1 + n));
    }
    let letters = zone.iter().take_while(|c| c.is_ascii_uppercase()).count();
    if (2..=6).contains(&letters) && zone.get(letters) == Some(&b' ') {
        pos += 1 + letters;
    }
    Some((t, pos))
}

/// `journalctl -o short-unix`: Unix seconds with a fraction, `1747648800.123456`.
/// Ten or more digits and a fraction, so no other number at a line's start
/// passes for one.
pub fn parse_unix_stamp(b: &[u8]) -> Option<(RawTime, usize)> {
    let n = b.iter().take_while(|c| c.is_ascii_digit()).count();
    if n < 10 || b.get(n) != Some(&b'.') {
        return None;
    }
    let (t, used) = parse_epoch(b)?;
    (used > n + 1).then_some((t, used))
}

/// svlogd's `-tt` stamp, `2026-05-19_10:00:00.12345` (runit, socklog): ISO 8601
/// with `_` between date and time. svlogd writes it in UTC, so it is read as UTC.
pub fn parse_svlogd(b: &[u8]) -> Option<(RawTime, usize)> {
    if b.get(10) != Some(&b'_') {
        return None;
    }
    let mut t = iso_date(b)?;
    let used = 11 + clock(b.get(11..)?, &mut t)?;
    t.offset = Some(0);
    Some((t, used))
}

/// The TAI64N label daemontools' `multilog t`, runit's `svlogd -t` and s6-log
/// write before each line: `@` and 24 hex digits, 16 for the TAI64 second and 8
/// for the nanosecond. Converted as those tools' own `tai64nlocal` does: the
/// label is 2^62 + 10 + the Unix second (leap seconds are not counted).
pub fn parse_tai64n(b: &[u8]) -> Option<(RawTime, usize)> {
    let hex = b.strip_prefix(b"@")?.get(..24)?;
    let mut value: u128 = 0;
    for &c in hex {
        let v = (c as char).to_digit(16)?;
        value = value << 4 | u128::from(v);
    }
    let (label, nanos) = ((value >> 32) as u64, (value & 0xffff_ffff) as u32);
    let secs = label.checked_sub((1u64 << 62) + 10)?;
    if nanos >= 1_000_000_000 || secs > i64::MAX as u64 {
        return None;
    }
    let mut t = RawTime::civil(None, 1, 1);
    t.epoch = Some((secs as i64, nanos as i32));
    Some((t, 25))
}

/// BIND's own log files (a `file` channel with `print-time yes`):
/// `06-Dec-2026 10:00:00.123`, the day always two digits, milliseconds optional.
pub fn parse_bind(b: &[u8]) -> Option<(RawTime, usize)> {
    let d = digits(b, 2)?;
    if b.get(2) != Some(&b'-') || b.get(6) != Some(&b'-') || b.get(11) != Some(&b' ') {
        return None;
    }
    let month = month_abbr(&b[3..])?;
    let y = digits(&b[7..], 4)?;
    let mut t = RawTime::civil(Some(y as i16), month, valid_day(d)?);
    let used = 12 + clock(b.get(12..)?, &mut t)?;
    Some((t, used))
}

/// The Common Log Format date inside its brackets: `19/May/2026:10:00:00 +0000`.
pub fn parse_clf(b: &[u8]) -> Option<(RawTime, usize)> {
    let (d, used) = day_digits(b)?;
    let mut pos = used;
    if b.get(pos) != Some(&b'/') {
        return None;
    }
    let month = month_abbr(b.get(pos + 1..)?)?;
    pos += 4;
    if b.get(pos) != Some(&b'/') {
        return None;
    }
    let y = digits(b.get(pos + 1..)?, 4)?;
    pos += 5;
    if b.get(pos) != Some(&b':') {
        return None;
    }
    let mut t = RawTime::civil(Some(y as i16), month, valid_day(d)?);
    pos += 1 + clock(b.get(pos + 1..)?, &mut t)?;
    if b.get(pos) == Some(&b' ') {
        let (off, used) = parse_offset(&b[pos + 1..])?;
        t.offset = Some(off);
        pos += 1 + used;
    }
    Some((t, pos))
}

/// Unix seconds with an optional fraction.
fn parse_epoch(b: &[u8]) -> Option<(RawTime, usize)> {
    let n = b.iter().take_while(|c| c.is_ascii_digit()).count();
    if n == 0 || n > 12 {
        return None;
    }
    let secs: i64 = std::str::from_utf8(&b[..n]).ok()?.parse().ok()?;
    let (nanos, used) = fraction(&b[n..]);
    let mut t = RawTime::civil(None, 1, 1);
    t.epoch = Some((secs, nanos));
    Some((t, n + used))
}

/// One element of a compiled strftime pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Item {
    Literal(u8),
    /// One or more spaces.
    Space,
    Year4,
    Year2,
    Month,
    MonthName,
    Day,
    Hour,
    Minute,
    Second,
    Fraction,
    /// `%.f`: `.123` or `,123` if present (Apache 2.4 writes microseconds, 2.2 none).
    OptFraction,
    Weekday,
    Zone,
    Epoch,
}

/// What a filter's `datepattern` names, and where on the line it is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatePattern {
    /// ISO 8601 / RFC 3339 at the start of the line.
    Iso8601,
    /// Syslog's `Mmm dd HH:MM:SS` at the start of the line.
    Syslog,
    /// `[19/May/2026:10:00:00 +0000]`, the bracketed field right before the request's
    /// opening quote (where nginx and Apache put it), so a user name cannot supply it.
    Clf,
    /// Unix seconds at the start of the line.
    Epoch,
    /// A strftime subset at the start of the line.
    Custom(Custom),
    /// Several of the above, written one a line (as fail2ban writes a
    /// `datepattern` of alternatives): the first that reads the line gives its
    /// time. For a daemon whose releases stamp their own file differently
    /// (OpenVPN 2.4's ctime, 2.5's ISO 8601), each read where it always is.
    Any(Vec<DatePattern>),
}

/// A compiled strftime pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Custom {
    items: Vec<Item>,
}

impl DatePattern {
    /// Parses a `datepattern` value: `iso8601`, `syslog`, `clf`, `epoch`, or a
    /// strftime pattern using `%Y %y %m %b %d %e %H %M %S %f %.f %a %z %s %T %F %%`.
    ///
    /// Several patterns, one a line, are alternatives tried in order (see
    /// [`DatePattern::Any`]); blank lines and the spaces around each are
    /// ignored.
    pub fn parse(text: &str) -> Result<DatePattern, String> {
        if !text.contains('\n') {
            return DatePattern::parse_one(text);
        }
        let mut any = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if !line.is_empty() {
                any.push(DatePattern::parse_one(line).map_err(|e| format!("line {}: {e}", i + 1))?);
            }
        }
        match any.len() {
            0 => Err("no date pattern: every line is blank".to_owned()),
            1 => Ok(any.remove(0)),
            _ => Ok(DatePattern::Any(any)),
        }
    }

    /// One pattern: a name or a strftime pattern.
    fn parse_one(text: &str) -> Result<DatePattern, String> {
        match text {
            "iso8601" => return Ok(DatePattern::Iso8601),
            "syslog" => return Ok(DatePattern::Syslog),
            "clf" => return Ok(DatePattern::Clf),
            "epoch" => return Ok(DatePattern::Epoch),
            _ => {}
        }
        if !text.contains('%') {
            return Err(format!(
                "{text:?} is not a date pattern: use iso8601, syslog, clf, epoch, or a strftime pattern such as \"%Y/%m/%d %H:%M:%S\""
            ));
        }
        let mut items = Vec::new();
        let mut bytes = text.bytes();
        let mut has = [false; 4]; // day-of-month or epoch, month, hour, year-or-epoch
        while let Some(c) = bytes.next() {
            if c == b' ' {
                if items.last() != Some(&Item::Space) {
                    items.push(Item::Space);
                }
                continue;
            }
            if c != b'%' {
                items.push(Item::Literal(c));
                continue;
            }
            let Some(spec) = bytes.next() else {
                return Err(format!("{text:?} ends in a lone %"));
            };
            let item: &[Item] = match spec {
                b'Y' => &[Item::Year4],
                b'y' => &[Item::Year2],
                b'm' => &[Item::Month],
                b'b' | b'h' => &[Item::MonthName],
                b'd' | b'e' => &[Item::Day],
                b'H' => &[Item::Hour],
                b'M' => &[Item::Minute],
                b'S' => &[Item::Second],
                b'f' => &[Item::Fraction],
                b'.' => match bytes.next() {
                    Some(b'f') => &[Item::OptFraction],
                    _ => return Err(format!("{text:?}: % followed by . must be %.f")),
                },
                b'a' => &[Item::Weekday],
                b'z' => &[Item::Zone],
                b's' => &[Item::Epoch],
                b'T' => &[
                    Item::Hour,
                    Item::Literal(b':'),
                    Item::Minute,
                    Item::Literal(b':'),
                    Item::Second,
                ],
                b'F' => &[
                    Item::Year4,
                    Item::Literal(b'-'),
                    Item::Month,
                    Item::Literal(b'-'),
                    Item::Day,
                ],
                b'%' => &[Item::Literal(b'%')],
                other => {
                    return Err(format!(
                        "{text:?}: %{} is not supported (use %Y %y %m %b %d %e %H %M %S %f %.f %a %z %s %T %F %%)",
                        char::from(other)
                    ));
                }
            };
            for it in item {
                match it {
                    Item::Day => has[0] = true,
                    Item::Month | Item::MonthName => has[1] = true,
                    Item::Hour => has[2] = true,
                    Item::Epoch => has = [true; 4],
                    _ => {}
                }
            }
            items.extend_from_slice(item);
        }
        if !has[0] || !has[1] || !has[2] {
            return Err(format!(
                "{text:?} needs at least a day (%d), a month (%m or %b) and an hour (%H), or %s"
            ));
        }
        Ok(DatePattern::Custom(Custom { items }))
    }

    /// Reads the time from a line, at the place this pattern is read from.
    pub fn find(&self, line: &[u8]) -> Option<RawTime> {
        let start = line.strip_prefix(b"[").unwrap_or(line);
        match self {
            // JSON lines whose first key is the time (tracing's JSON format, as
            // `log2drop run --log-format json` writes) carry it right after it.
            DatePattern::Iso8601 => {
                parse_iso(start.strip_prefix(JSON_TIME_KEY).unwrap_or(start)).map(|(t, _)| t)
            }
            DatePattern::Syslog => parse_bsd(start).map(|(t, _)| t),
            DatePattern::Epoch => parse_epoch(start).map(|(t, _)| t),
            DatePattern::Custom(c) => parse_custom(&c.items, start).map(|(t, _)| t),
            DatePattern::Any(any) => any.iter().find_map(|p| p.find(line)),
            DatePattern::Clf => {
                // Formats that open the line with the bracketed date (Nginx
                // Proxy Manager's `[date] 404 - GET https HOST "/uri" ...`): the
                // line's start is the server's, never a client's.
                if line.first() == Some(&b'[')
                    && let Some((t, used)) = parse_clf(start)
                    && start.get(used) == Some(&b']')
                {
                    return Some(t);
                }
                // `[date] "GET ...`: the field right before the first quote. Web
                // servers escape quotes in what a client sends, so the first quote
                // opens the request and nothing before it is a client's text in a
                // position to fake this field.
                let q = memchr::memchr(b'"', line)?;
                let head = line[..q].strip_suffix(b"] ")?;
                let open = memchr::memrchr(b'[', head)?;
                let (t, used) = parse_clf(&head[open + 1..])?;
                (open + 1 + used == head.len()).then_some(t)
            }
        }
    }
}

/// The opening of a JSON log line whose first key is its time.
const JSON_TIME_KEY: &[u8] = br#"{"timestamp":""#;

fn parse_custom(items: &[Item], b: &[u8]) -> Option<(RawTime, usize)> {
    let mut t = RawTime::civil(None, 1, 1);
    let mut pos = 0;
    let mut pm_year: Option<i32> = None;
    for item in items {
        let rest = b.get(pos..)?;
        match *item {
            Item::Literal(c) => {
                if rest.first() != Some(&c) {
                    return None;
                }
                pos += 1;
            }
            Item::Space => {
                let n = rest.iter().take_while(|c| **c == b' ').count();
                if n == 0 {
                    return None;
                }
                pos += n;
            }
            Item::Year4 => {
                t.year = Some(digits(rest, 4)? as i16);
                pos += 4;
            }
            Item::Year2 => {
                pm_year = Some(digits(rest, 2)?);
                pos += 2;
            }
            Item::Month => {
                let m = digits(rest, 2)?;
                if !(1..=12).contains(&m) {
                    return None;
                }
                t.month = m as i8;
                pos += 2;
            }
            Item::MonthName => {
                t.month = month_abbr(rest)?;
                pos += 3;
                // Full names: skip the remaining letters.
                pos += b[pos..]
                    .iter()
                    .take_while(|c| c.is_ascii_alphabetic())
                    .count();
            }
            Item::Day => {
                let (d, used) = day_digits(rest)?;
                t.day = valid_day(d)?;
                pos += used;
            }
            Item::Hour | Item::Minute | Item::Second => {
                let v = digits(rest, 2)?;
                let (max, slot) = match item {
                    Item::Hour => (23, &mut t.hour),
                    Item::Minute => (59, &mut t.minute),
                    _ => (60, &mut t.second),
                };
                if v > max {
                    return None;
                }
                *slot = v as i8;
                pos += 2;
            }
            Item::Fraction => {
                // `%f` follows its own separator in the pattern (`%S.%f`).
                let n = rest.iter().take_while(|c| c.is_ascii_digit()).count();
                if n == 0 {
                    return None;
                }
                let mut nanos = 0i32;
                for (i, c) in rest[..n].iter().enumerate() {
                    if i < 9 {
                        nanos = nanos * 10 + i32::from(c - b'0');
                    }
                }
                for _ in n..9 {
                    nanos *= 10;
                }
                t.nanos = nanos;
                pos += n;
            }
            Item::OptFraction => {
                let (nanos, used) = fraction(rest);
                t.nanos = nanos;
                pos += used;
            }
            Item::Weekday => {
                let n = rest.iter().take_while(|c| c.is_ascii_alphabetic()).count();
                if n < 3 {
                    return None;
                }
                pos += n;
            }
            Item::Zone => {
                let (off, used) = parse_offset(rest)?;
                t.offset = Some(off);
                pos += used;
            }
            Item::Epoch => {
                let (e, used) = parse_epoch(rest)?;
                t.epoch = e.epoch;
                pos += used;
            }
        }
    }
    if let Some(y) = pm_year {
        t.year = Some((2000 + y) as i16);
    }
    Some((t, pos))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The fraction as it was first written: every digit counted, the first
    /// nine used.
    fn reference_fraction(b: &[u8]) -> (i32, usize) {
        if !matches!(b.first(), Some(b'.' | b',')) {
            return (0, 0);
        }
        let mut nanos = 0i32;
        let mut n = 0;
        for &c in &b[1..] {
            if !c.is_ascii_digit() {
                break;
            }
            if n < 9 {
                nanos = nanos * 10 + i32::from(c - b'0');
            }
            n += 1;
        }
        if n == 0 {
            return (0, 0);
        }
        for _ in n..9 {
            nanos *= 10;
        }
        (nanos, n + 1)
    }

    proptest! {
        /// The fixed-width read of `+HH:MM` answers as the general parser,
        /// on bytes around every edge it checks (signs, digits and their
        /// neighbours `/` and `:`, hours past 23, minutes past 59).
        #[test]
        fn offset_at_is_parse_offset(b in proptest::collection::vec(prop_oneof![
            Just(b'+'), Just(b'-'), Just(b':'), Just(b'/'), Just(b'Z'), Just(b' '),
            Just(b'0'), Just(b'1'), Just(b'2'), Just(b'3'), Just(b'5'), Just(b'6'), Just(b'9'),
            any::<u8>(),
        ], 0..9)) {
            prop_assert_eq!(offset_at(&b), parse_offset(&b));
        }

        #[test]
        fn offset_at_reads_every_offset(h in 0u8..30, m in 0u8..70, minus in any::<bool>(), tail in "[ 0-9]?") {
            let text = format!("{}{h:02}:{m:02}{tail}", if minus { '-' } else { '+' });
            prop_assert_eq!(offset_at(text.as_bytes()), parse_offset(text.as_bytes()));
        }

        #[test]
        fn fraction_reads_like_the_reference(b in "[.,]?[0-9]{0,14}[ Z+a.]?") {
            prop_assert_eq!(fraction(b.as_bytes()), reference_fraction(b.as_bytes()));
        }

        /// Reading a stamp from its seconds on, with the minute taken as
        /// known, gives what the whole parser gives.
        #[test]
        fn from_seconds_reads_like_the_whole_parser(
            seconds in "[0-9]{2}|6[0-9]|[0-9]|[0-9]:",
            fraction in "([.,][0-9]{0,12})?",
            offset in "(Z|z|[+-][0-9]{2}(:?[0-9]{2})?|[+-][0-9]|[+-]2[0-9]:[0-9]{2})?",
            tail in "[ a]?",
        ) {
            let end = format!("{seconds}{fraction}{offset}{tail}");
            for (head, iso) in [("May 19 10:00:", false), ("2026-05-19T10:00:", true)] {
                let whole = format!("{head}{end}");
                let want = if iso { parse_iso(whole.as_bytes()) } else { parse_bsd(whole.as_bytes()) };
                let (mut t, _) = if iso { parse_iso(b"2026-05-19T10:00:00") } else { parse_bsd(b"May 19 10:00:00") }.expect("a stamp");
                // Whatever the last line left in them is overwritten.
                t.second = 33;
                t.nanos = 7;
                t.offset = iso.then_some(99);
                let got = from_seconds(end.as_bytes(), &mut t, iso).map(|n| (t, head.len() + n));
                prop_assert_eq!(got, want, "{}", whole);
            }
        }
    }

    proptest! {
        #[test]
        fn memo_resolves_like_resolve(
            // Hours around a spring-forward gap, a fall-back fold (Berlin's
            // hour, Lord Howe's half hour), a year end (year-less lines just
            // past `now`) and an invalid date, with minutes and seconds
            // varying so hours repeat.
            times in proptest::collection::vec((
                0usize..10,
                prop_oneof![Just(0i8), Just(29), Just(30), Just(59), 0i8..60],
                0i8..61,
                prop_oneof![Just(0i32), Just(500_000_000)],
            ), 1..60),
            zone in prop_oneof![Just("Europe/Berlin"), Just("UTC"), Just("Australia/Lord_Howe")],
            now in prop_oneof![Just("2026-03-29T01:00:00Z"), Just("2026-12-31T00:59:30Z"), Just("2027-01-01T00:00:00Z")],
        ) {
            type Hour = (Option<i16>, i8, i8, i8, Option<i32>);
            let hours: [Hour; 10] = [
                (Some(2026), 3, 29, 2, None),
                (None, 3, 29, 1, None),
                (Some(2026), 10, 25, 2, None),
                (None, 10, 4, 1, None),
                (None, 12, 31, 1, None),
                (None, 1, 1, 0, None),
                (None, 2, 30, 10, None),
                (Some(2026), 5, 19, 10, Some(3600)),
                (Some(2026), 10, 4, 2, None),
                (Some(2026), 4, 5, 1, None),
            ];
            let tz = parse_zone(zone).expect("zone");
            let now = utc(now);
            let mut memo = TimeMemo::default();
            for (h, minute, second, nanos) in times {
                let (year, month, day, hour, offset) = hours[h];
                let raw = RawTime { year, month, day, hour, minute, second, nanos, offset, epoch: None };
                prop_assert_eq!(memo.resolve(&raw, 0, &tz, now), raw.resolve(&tz, now), "{:?}", raw);
            }
        }

        /// Lines a minute apart or more share the remembered hour, also
        /// across a Lord Howe half-hour shift, where they must not.
        #[test]
        fn memo_hours_hold_their_minutes(
            minutes in proptest::collection::vec((0i8..60, 0i8..60), 1..40),
            day in prop_oneof![Just(5i8), Just(4)],
            month in prop_oneof![Just(4i8), Just(10)],
        ) {
            let tz = parse_zone("Australia/Lord_Howe").expect("zone");
            let now = utc("2027-01-01T00:00:00Z");
            let mut memo = TimeMemo::default();
            for (minute, second) in minutes {
                for hour in [1, 2] {
                    let raw = RawTime {
                        year: Some(2026), month, day, hour, minute, second, nanos: 0, offset: None, epoch: None,
                    };
                    prop_assert_eq!(memo.resolve(&raw, 0, &tz, now), raw.resolve(&tz, now), "{:?}", raw);
                }
            }
        }
    }

    /// [`fraction`] as it read before its word-at-a-time path: a digit at a
    /// time.
    fn fraction_by_bytes(b: &[u8]) -> (i32, usize) {
        let Some((b'.' | b',', digits)) = b.split_first() else {
            return (0, 0);
        };
        let n = digits.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return (0, 0);
        }
        let mut nanos = 0i32;
        for i in 0..9 {
            let d = digits
                .get(i)
                .filter(|_| i < n)
                .map_or(0, |c| i32::from(c - b'0'));
            nanos = nanos * 10 + d;
        }
        (nanos, n + 1)
    }

    proptest! {
        /// The word-at-a-time fraction reads what a digit-at-a-time one
        /// reads, whatever follows the digits and however many there are.
        #[test]
        fn fraction_is_read_digit_by_digit(
            sep in prop_oneof![Just(b'.'), Just(b','), Just(b':')],
            digits in "[0-9]{0,12}",
            tail in proptest::collection::vec(prop_oneof![Just(b'+'), Just(b' '), Just(b'/'), Just(b':'), Just(b'Z'), any::<u8>()], 0..10),
        ) {
            let mut b = vec![sep];
            b.extend(digits.bytes());
            b.extend(tail);
            prop_assert_eq!(fraction(&b), fraction_by_bytes(&b));
        }

        #[test]
        fn eight_digits_is_the_number(n in 0u32..100_000_000) {
            let text = format!("{n:08}");
            let word = u64::from_le_bytes(*text.as_bytes().first_chunk::<8>().expect("8")) ^ splat(b'0');
            prop_assert_eq!(eight_digits(word), n);
        }

    }

    /// Every byte value in every place of a word, among neighbours of each
    /// class (a carry or borrow from one would show here).
    #[test]
    fn digit_stops_exhaustive() {
        for fill in [b'a', b' ', b'0', 0x00, 0xff, b'[', 0x7f] {
            for at in 0..8 {
                for b in 0..=255u8 {
                    let mut word = [fill; 8];
                    word[at] = b;
                    let w = u64::from_le_bytes(word);
                    for (i, c) in word.iter().enumerate() {
                        let flag = 0x80u64 << (8 * i);
                        assert_eq!(digit_stops(w) & flag != 0, !c.is_ascii_digit(), "{word:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn month_names_in_any_case_and_nothing_else() {
        const MONTHS: [&[u8; 3]; 12] = [
            b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
            b"Dec",
        ];
        // Every letter plus the bytes that `| 0x20` moves onto or next to letters.
        let alphabet: Vec<u8> = (b'A'..=b'Z')
            .chain(b'a'..=b'z')
            .chain([0, b' ', b'@', b'[', b'`', b'{', b'\x0e', 0xc1, 0xe1, 0xff])
            .collect();
        for &a in &alphabet {
            for &b in &alphabet {
                for &c in &alphabet {
                    let text = [a, b, c];
                    let want = MONTHS
                        .iter()
                        .position(|m| m.eq_ignore_ascii_case(&text))
                        .map(|i| i as i8 + 1);
                    assert_eq!(month_abbr(&text), want, "{text:?}");
                }
            }
        }
        assert_eq!(month_abbr(b"Ma"), None);
    }

    fn utc(text: &str) -> SystemTime {
        let ts: Timestamp = text.parse().expect("test timestamp");
        SystemTime::from(ts)
    }

    #[test]
    fn bsd_times_take_the_year_before_now() {
        let (t, used) = parse_bsd(b"May 19 10:00:00 host").expect("parses");
        assert_eq!(used, 15);
        let now = utc("2026-05-19T12:00:00Z");
        assert_eq!(
            t.resolve(&TimeZone::UTC, now),
            Some(utc("2026-05-19T10:00:00Z"))
        );
        // A December line read on the 1st of January is last year's.
        let (t, _) = parse_bsd(b"Dec 31 23:59:59").expect("parses");
        assert_eq!(
            t.resolve(&TimeZone::UTC, utc("2027-01-01T00:00:10Z")),
            Some(utc("2026-12-31T23:59:59Z"))
        );
        let (t, used) = parse_bsd(b"Jan  5 01:02:03.250 x").expect("padded day");
        assert_eq!(used, 19);
        assert_eq!(
            t.resolve(&TimeZone::UTC, utc("2026-02-01T00:00:00Z")),
            Some(utc("2026-01-05T01:02:03.25Z"))
        );
    }

    #[test]
    fn front_end_stamps() {
        let now = utc("2026-06-01T00:00:00Z");
        type Parser = fn(&[u8]) -> Option<(RawTime, usize)>;
        let cases: [(Parser, &str, usize, &str); 4] = [
            (
                parse_ctime,
                "Tue May 19 10:00:00 2026 auth.info x",
                24,
                "2026-05-19T10:00:00Z",
            ),
            (
                parse_weekday_iso,
                "Tue 2026-05-19 10:00:00 CEST host",
                28,
                "2026-05-19T10:00:00Z",
            ),
            (
                parse_weekday_iso,
                "Tue 2026-05-19 10:00:00 +0200 host",
                29,
                "2026-05-19T08:00:00Z",
            ),
            (
                parse_unix_stamp,
                "1747648800.123456 host",
                17,
                "2025-05-19T10:00:00.123456Z",
            ),
        ];
        for (parse, text, want_used, want) in cases {
            let (t, used) = parse(text.as_bytes()).expect(text);
            assert_eq!(used, want_used, "{text}");
            assert_eq!(t.resolve(&TimeZone::UTC, now), Some(utc(want)), "{text}");
        }
        for bad in [
            &b"2026 host"[..],
            b"1747648800 host",
            b"123.5 x",
            b"1747648800. x",
        ] {
            assert_eq!(parse_unix_stamp(bad), None, "{bad:?}");
        }
        assert_eq!(parse_ctime(b"Tux May 19 10:00:00 2026"), None);
        assert_eq!(parse_ctime(b"Tue May 19 10:00:00 26"), None);
    }

    #[test]
    fn supervisor_and_bind_stamps() {
        let now = utc("2026-06-01T00:00:00Z");
        type Parser = fn(&[u8]) -> Option<(RawTime, usize)>;
        let cases: [(Parser, &str, usize, &str); 4] = [
            (
                parse_tai64n,
                "@400000006a0c34aa075bcd15 x",
                25,
                "2026-05-19T10:00:00.123456789Z",
            ),
            (
                parse_svlogd,
                "2026-05-19_10:00:00.12345 x",
                25,
                "2026-05-19T10:00:00.12345Z",
            ),
            (
                parse_bind,
                "19-May-2026 10:00:00.123 client",
                24,
                "2026-05-19T10:00:00.123Z",
            ),
            (
                parse_bind,
                "19-May-2026 10:00:00 x",
                20,
                "2026-05-19T10:00:00Z",
            ),
        ];
        for (parse, text, want_used, want) in cases {
            let (t, used) = parse(text.as_bytes()).expect(text);
            assert_eq!(used, want_used, "{text}");
            assert_eq!(t.resolve(&TimeZone::UTC, now), Some(utc(want)), "{text}");
        }
        // svlogd writes UTC whatever the filter's zone.
        let (t, _) = parse_svlogd(b"2026-05-19_10:00:00").expect("svlogd");
        let berlin = TimeZone::get("Europe/Berlin").expect("zone");
        assert_eq!(t.resolve(&berlin, now), Some(utc("2026-05-19T10:00:00Z")));
        for bad in [
            &b"@400000006a0c34aa075bcd1"[..],
            b"@400000006a0c34aa075bcdxx",
            b"400000006a0c34aa075bcd15",
            // Nanoseconds past a second.
            b"@400000006a0c34aa3b9aca00",
            // Before 1970.
            b"@3fffffff6a0c34aa075bcd15",
        ] {
            assert_eq!(parse_tai64n(bad), None, "{bad:?}");
        }
        for bad in [
            &b"6-May-2026 10:00:00"[..],
            b"19-Mai-2026 10:00:00",
            b"19-May-26 10:00:00",
            b"19-May-2026T10:00:00",
            b"32-May-2026 10:00:00",
        ] {
            assert_eq!(parse_bind(bad), None, "{bad:?}");
        }
        for bad in [
            &b"2026-05-19T10:00:00"[..],
            b"2026-13-19_10:00:00",
            b"2026-05-19_10:00",
        ] {
            assert_eq!(parse_svlogd(bad), None, "{bad:?}");
        }
    }

    proptest! {
        /// A TAI64N label reads back the Unix time and nanosecond it was
        /// written from.
        #[test]
        fn tai64n_round_trips(secs in 0u64..(1 << 40), nanos in 0u32..1_000_000_000) {
            let label = format!("@{:016x}{nanos:08x}", (1u64 << 62) + 10 + secs);
            let (t, used) = parse_tai64n(label.as_bytes()).expect("label");
            prop_assert_eq!(used, 25);
            prop_assert_eq!(t.epoch, Some((secs as i64, nanos as i32)));
        }

        #[test]
        fn stamp_parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            for parse in [parse_tai64n, parse_svlogd, parse_bind] {
                if let Some((_, used)) = parse(&bytes) {
                    prop_assert!(used <= bytes.len());
                }
            }
        }
    }

    #[test]
    fn bsd_rejects_malformed() {
        for bad in [
            &b"Mai 19 10:00:00"[..],
            b"May 19 10:00",
            b"May 32 10:00:00",
            b"May 19 25:00:00",
            b"May19 10:00:00",
            b"",
        ] {
            assert_eq!(parse_bsd(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn local_zone_applies_without_offset() {
        let tz = parse_zone("+02:00").expect("fixed");
        let (t, _) = parse_bsd(b"May 19 10:00:00").expect("parses");
        assert_eq!(
            t.resolve(&tz, utc("2026-05-19T12:00:00Z")),
            Some(utc("2026-05-19T08:00:00Z"))
        );
        let berlin = parse_zone("Europe/Berlin");
        if let Ok(berlin) = berlin {
            // Summer time: UTC+2.
            assert_eq!(
                t.resolve(&berlin, utc("2026-05-19T12:00:00Z")),
                Some(utc("2026-05-19T08:00:00Z"))
            );
        }
        assert!(parse_zone("Not/AZone").is_err());
        assert!(parse_zone("local").is_ok());
    }

    #[test]
    fn iso_forms() {
        let now = utc("2030-01-01T00:00:00Z");
        for (text, want) in [
            ("2026-05-19T10:00:00Z", "2026-05-19T10:00:00Z"),
            (
                "2026-05-19T10:00:00.123456+02:00",
                "2026-05-19T08:00:00.123456Z",
            ),
            ("2026-05-19T10:00:00+0200 host", "2026-05-19T08:00:00Z"),
            ("2026-05-19 10:00:00,500 fail2ban", "2026-05-19T10:00:00.5Z"),
        ] {
            let (t, _) = parse_iso(text.as_bytes()).expect(text);
            assert_eq!(t.resolve(&TimeZone::UTC, now), Some(utc(want)), "{text}");
        }
        assert_eq!(parse_iso(b"2026-13-19T10:00:00Z"), None);
        assert_eq!(parse_iso(b"2026-05-19X10:00:00Z"), None);
    }

    #[test]
    fn clf_is_read_right_before_the_request() {
        let p = DatePattern::parse("clf").expect("named");
        let line = br#"203.0.113.4 - - [19/May/2026:10:00:00 +0200] "GET / HTTP/1.1" 404 1"#;
        let t = p.find(line).expect("found");
        assert_eq!(
            t.resolve(&TimeZone::UTC, utc("2030-01-01T00:00:00Z")),
            Some(utc("2026-05-19T08:00:00Z"))
        );
        // A user name holding a fake date does not move the time.
        let line = br#"203.0.113.4 - x [01/Jan/2000:00:00:00 +0000] y [19/May/2026:10:00:00 +0000] "GET / HTTP/1.1" 404 1"#;
        let t = p.find(line).expect("found");
        assert_eq!(t.year, Some(2026));
        // Nginx Proxy Manager opens the line with it; a bracket the line does
        // not open with is not read there.
        let line = br#"[19/May/2026:10:00:00 +0200] - 404 404 - GET https example.org "/x" [Client 203.0.113.4] [Length 1]"#;
        let t = p.find(line).expect("found");
        assert_eq!(
            t.resolve(&TimeZone::UTC, utc("2030-01-01T00:00:00Z")),
            Some(utc("2026-05-19T08:00:00Z"))
        );
        let line =
            br#"[19/May/2026:10:00:00 +0200 404 - GET https example.org "/x" [Client 203.0.113.4]"#;
        assert_eq!(p.find(line), None);
    }

    #[test]
    fn custom_patterns() {
        let now = utc("2030-01-01T00:00:00Z");
        for (pat, text, want) in [
            (
                "%Y/%m/%d %H:%M:%S",
                "2026/05/19 10:00:00 [error]",
                "2026-05-19T10:00:00Z",
            ),
            (
                "%d-%b-%Y %H:%M:%S.%f",
                "19-May-2026 10:00:00.250 client",
                "2026-05-19T10:00:00.25Z",
            ),
            (
                "%a %b %d %H:%M:%S.%f %Y",
                "[Tue May 19 10:00:00.000001 2026] [auth",
                "2026-05-19T10:00:00.000001Z",
            ),
            (
                "%a %b %d %H:%M:%S%.f %Y",
                "[Tue May 19 10:00:00.000001 2026] [auth",
                "2026-05-19T10:00:00.000001Z",
            ),
            (
                "%a %b %d %H:%M:%S%.f %Y",
                "[Tue May 19 10:00:00 2026] [error]",
                "2026-05-19T10:00:00Z",
            ),
            (
                "%a %b %e %T %Y",
                "Tue May  5 10:00:00 2026 [pid 1]",
                "2026-05-05T10:00:00Z",
            ),
            (
                "%y%m%d %H:%M:%S",
                "260519 10:00:00 mysqld",
                "2026-05-19T10:00:00Z",
            ),
            ("%s", "1779184800.5 x", "2026-05-19T10:00:00.5Z"),
        ] {
            let p = DatePattern::parse(pat).expect(pat);
            let t = p.find(text.as_bytes()).expect(text);
            assert_eq!(t.resolve(&TimeZone::UTC, now), Some(utc(want)), "{pat}");
        }
    }

    #[test]
    fn bad_patterns_are_refused() {
        for bad in ["%Y-%m", "no percent", "%Q %d %m %H", "%d %m %H %"] {
            assert!(DatePattern::parse(bad).is_err(), "{bad}");
        }
        // Alternatives: the line that fails is named; blank lines alone are
        // no pattern.
        let e = DatePattern::parse("iso8601\n%Q %d %m %H").expect_err("bad second line");
        assert!(e.starts_with("line 2: "), "{e}");
        assert!(DatePattern::parse("\n  \n").is_err());
    }

    /// OpenVPN's own file: 2.5 and later stamp it in ISO 8601, 2.4 and
    /// earlier with ctime (day padded with a space); one pattern reads both.
    #[test]
    fn alternatives_read_the_first_that_fits() {
        let p = DatePattern::parse("iso8601\n  %a %b %e %T %Y\n").expect("two lines");
        assert!(matches!(&p, DatePattern::Any(a) if a.len() == 2), "{p:?}");
        let now = utc("2030-01-01T00:00:00Z");
        for (text, want) in [
            (
                "2026-12-06 10:00:00 192.0.2.1:1194 TLS Error",
                "2026-12-06T10:00:00Z",
            ),
            (
                "Sun Dec  6 10:00:00 2026 192.0.2.1:1194 TLS Error",
                "2026-12-06T10:00:00Z",
            ),
            (
                "Tue Dec 15 14:12:18 2026 us=5 192.0.2.1:1194 x",
                "2026-12-15T14:12:18Z",
            ),
        ] {
            let t = p.find(text.as_bytes()).expect(text);
            assert_eq!(t.resolve(&TimeZone::UTC, now), Some(utc(want)), "{text}");
        }
        assert_eq!(
            p.find(b"192.0.2.1:1194 TLS Error: TLS handshake failed"),
            None
        );
        // One line is that pattern alone.
        assert_eq!(DatePattern::parse("syslog\n"), Ok(DatePattern::Syslog));
    }

    proptest! {
        #[test]
        fn iso_round_trips(secs in 0i64..4_102_444_800, nanos in 0i32..1_000_000_000) {
            let ts = Timestamp::new(secs, nanos).expect("in range");
            let text = ts.to_string();
            let (t, used) = parse_iso(text.as_bytes()).expect("parses");
            prop_assert_eq!(used, text.len());
            prop_assert_eq!(t.resolve(&TimeZone::UTC, SystemTime::UNIX_EPOCH), Some(SystemTime::from(ts)));
        }

        /// Alternatives read what the first of their patterns that reads the
        /// line reads: ctime and ISO 8601 stamps of any second give the same
        /// time through OpenVPN's pair, whichever comes first.
        #[test]
        fn alternatives_are_their_first_fit(secs in 0i64..4_102_444_800, iso_first in any::<bool>()) {
            let dt = Timestamp::new(secs, 0).expect("in range").to_zoned(TimeZone::UTC).datetime();
            let (iso, ctime) = ("iso8601", "%a %b %e %T %Y");
            let text = if iso_first { format!("{iso}\n{ctime}") } else { format!("{ctime}\n{iso}") };
            let p = DatePattern::parse(&text).expect("pair");
            let want = Some(SystemTime::from(Timestamp::new(secs, 0).expect("in range")));
            for line in [dt.strftime("%Y-%m-%d %H:%M:%S 192.0.2.1:1 x").to_string(), dt.strftime("%a %b %e %H:%M:%S %Y 192.0.2.1:1 x").to_string()] {
                let t = p.find(line.as_bytes());
                let mut each = [DatePattern::parse(iso).expect("iso"), DatePattern::parse(ctime).expect("ctime")];
                if !iso_first {
                    each.reverse();
                }
                let first = each
                    .iter()
                    .find_map(|q| q.find(line.as_bytes()));
                prop_assert_eq!(t, first, "{}", line);
                prop_assert_eq!(t.and_then(|t| t.resolve(&TimeZone::UTC, SystemTime::UNIX_EPOCH)), want, "{}", line);
            }
        }

        #[test]
        fn parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = parse_bsd(&bytes);
            let _ = parse_iso(&bytes);
            let _ = parse_clf(&bytes);
            let _ = DatePattern::Clf.find(&bytes);
            if let Ok(p) = DatePattern::parse("%a %b %e %T.%f %Y %z") {
                let _ = p.find(&bytes);
            }
        }
    }
}
