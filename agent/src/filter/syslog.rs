//! The syslog prefix of a line, parsed by hand: when it was logged, by which
//! program, and where the program's own message starts.
//!
//! Filters with `prefix = "syslog"` match only the message, anchored at its start,
//! so nothing earlier on the line can feed them, and they only see the programs
//! they are written for. The prefix is written by the logging system, not by a
//! client, which is why it is safe to trust for the program name and the time.
//!
//! Accepted forms (an optional `<PRI>` first):
//! - BSD / RFC 3164: `May 19 10:00:00 host prog[pid]: message`
//! - ISO 8601 (rsyslog's high-precision format, `journalctl -o short-iso`):
//!   `2026-05-19T10:00:00.123456+02:00 host prog[pid]: message`
//! - RFC 5424: `<PRI>1 TIMESTAMP HOST APP PROCID MSGID SD message`
//!
//! The host field may be missing (`May 19 10:00:00 prog: message`), and the
//! `[pid]` is optional. A line may also start with the tag itself
//! (`prog[pid]: message`, as the journal source writes entries that carry no
//! time); it then has no time of its own. The journal source writes
//! `2026-05-19T10:00:00.123456Z prog[pid]: message`, the ISO form without a host.

use super::time::{RawTime, parse_bsd, parse_iso};

/// The parts of a syslog line the matcher needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prefix<'a> {
    /// When the line was logged (`None` for RFC 5424's `-`).
    pub time: Option<RawTime>,
    /// The program (tag) that logged it, without `[pid]`.
    pub program: &'a [u8],
    /// Offset of the message in the line.
    pub message: usize,
}

/// Parses the syslog prefix of `line`, or `None` if the line does not have one.
pub fn parse(line: &[u8]) -> Option<Prefix<'_>> {
    parse_with(line, stamp)
}

/// The timestamp of the last line [`parse_cached`] read, as bytes and as parsed:
/// consecutive lines mostly carry the same one, and comparing bytes is cheaper
/// than parsing them.
#[derive(Debug, Clone)]
pub struct StampCache {
    bytes: [u8; STAMP_CACHE_LEN],
    len: usize,
    time: Option<RawTime>,
}

impl Default for StampCache {
    fn default() -> Self {
        StampCache {
            bytes: [0; STAMP_CACHE_LEN],
            len: 0,
            time: None,
        }
    }
}

/// The longest timestamp [`StampCache`] keeps (ISO 8601 with nanoseconds and an
/// offset fits).
const STAMP_CACHE_LEN: usize = 40;

/// [`parse`], reusing the last line's timestamp when this one starts with the
/// same bytes followed by a space: the time parsers look at most one byte past
/// what they use, and [`parse`] requires that byte to be a space, so the same
/// bytes read the same time.
pub fn parse_cached<'a>(line: &'a [u8], cache: &mut StampCache) -> Option<Prefix<'a>> {
    parse_with(line, |rest| {
        let len = cache.len;
        if let Some(time) = cache.time
            && rest.get(len) == Some(&b' ')
            && same_bytes(&rest[..len], &cache.bytes[..len])
        {
            return Some((time, len));
        }
        let (time, used) = stamp(rest)?;
        if used <= STAMP_CACHE_LEN && rest.get(used) == Some(&b' ') {
            cache.bytes[..used].copy_from_slice(&rest[..used]);
            cache.len = used;
            cache.time = Some(time);
        }
        Some((time, used))
    })
}

/// `a == b` for the short texts of a prefix (timestamps, program names) without
/// a call into the C library's general comparison.
#[inline]
pub(super) fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let word = |c: Option<&[u8; 8]>| c.map(|c| u64::from_ne_bytes(*c));
    match a.len() {
        0..8 => a.iter().zip(b).all(|(x, y)| x == y),
        // Two overlapping words cover 8 to 16 bytes.
        8..=16 => {
            word(a.first_chunk()) == word(b.first_chunk())
                && word(a.last_chunk()) == word(b.last_chunk())
        }
        _ => a == b,
    }
}

/// The timestamp at the start of `rest`: ISO 8601 if it starts with a digit,
/// else BSD.
fn stamp(rest: &[u8]) -> Option<(RawTime, usize)> {
    match rest.first() {
        Some(c) if c.is_ascii_digit() => parse_iso(rest),
        _ => parse_bsd(rest),
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
    pos += used;
    if line.get(pos) != Some(&b' ') {
        return None;
    }
    pos += 1;
    // HOST TAG: or just TAG: (no host field).
    let first = token(line, pos)?;
    let (tag_end, program) = match tag_program(&line[pos..first]) {
        Some(program) => (first, program),
        None => {
            if line.get(first) != Some(&b' ') {
                return None;
            }
            let tag_end = token(line, first + 1)?;
            (tag_end, tag_program(&line[first + 1..tag_end])?)
        }
    };
    let mut message = tag_end;
    if line.get(message) == Some(&b' ') {
        message += 1;
    }
    Some(Prefix {
        time: Some(time),
        program,
        message,
    })
}

/// The time of a syslog line's prefix, read where [`parse`] reads it, and the
/// offset of the space that must follow it; without the rest of the prefix. For
/// the age check ([`super::age`]), which caches by those bytes. When [`parse`]
/// finds a prefix with a time, this finds the same time; when this finds none,
/// `parse` finds none either.
pub fn time_of(line: &[u8]) -> Option<(RawTime, usize)> {
    let (pos, _) = time_start(line)?;
    let (time, used) = stamp(&line[pos..])?;
    let end = pos + used;
    (line.get(end) == Some(&b' ')).then_some((time, end))
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

/// A line that starts with the tag: no time, no host.
fn bare(line: &[u8]) -> Option<Prefix<'_>> {
    let end = token(line, 0)?;
    let program = tag_program(&line[..end])?;
    let mut message = end;
    if line.get(message) == Some(&b' ') {
        message += 1;
    }
    Some(Prefix {
        time: None,
        program,
        message,
    })
}

/// End of the space-free token starting at `pos` (which must not be empty).
fn token(line: &[u8], pos: usize) -> Option<usize> {
    let rest = line.get(pos..)?;
    // Host names and tags are short: a plain loop beats a vectorised search.
    let len = rest.iter().position(|c| *c == b' ').unwrap_or(rest.len());
    (len > 0).then_some(pos + len)
}

/// The program of a tag token, `prog:` or `prog[pid]:`; `None` if `tok` is not a
/// tag.
fn tag_program(tok: &[u8]) -> Option<&[u8]> {
    if tok.len() > 1 && tok.ends_with(b":") {
        program_of(tok)
    } else {
        None
    }
}

/// The program name of a tag: up to `[` or the final `:`.
fn program_of(tag: &[u8]) -> Option<&[u8]> {
    let body = tag.strip_suffix(b":")?;
    let end = body
        .iter()
        .position(|c| !c.is_ascii_graphic() || matches!(c, b'[' | b']' | b':'))
        .unwrap_or(body.len());
    let name = &body[..end];
    if name.is_empty() {
        return None;
    }
    match &body[end..] {
        [] => Some(name),
        [b'[', pid @ .., b']'] if !pid.is_empty() && pid.iter().all(u8::is_ascii_digit) => {
            Some(name)
        }
        _ => None,
    }
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
    for field in 0..4 {
        if line.get(pos) != Some(&b' ') {
            return None;
        }
        let end = token(line, pos + 1)?;
        if field == 1 {
            program = &line[pos + 1..end];
        }
        pos = end;
    }
    if line.get(pos) != Some(&b' ') {
        return None;
    }
    pos += 1;
    // Structured data: `-` or one or more `[...]` elements, with `\]` escapes.
    match line.get(pos)? {
        b'-' => pos += 1,
        b'[' => {
            while line.get(pos) == Some(&b'[') {
                pos += 1;
                loop {
                    match line.get(pos)? {
                        b'\\' => pos += 2,
                        b']' => {
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
            &line[p.message..],
        )
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

    proptest! {
        #[test]
        fn same_bytes_is_equality(a in proptest::collection::vec(0u8..3, 0..20), b in proptest::collection::vec(0u8..3, 0..20)) {
            prop_assert_eq!(same_bytes(&a, &b), a == b);
            prop_assert!(same_bytes(&a, &a));
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
                ],
                "[ .:+0-9a-z\\[\\]]{0,12}",
            ), 1..12),
        ) {
            let mut cache = StampCache::default();
            for (pri, stamp, rest) in lines {
                let line = format!("{pri}{stamp}{rest}");
                prop_assert_eq!(parse_cached(line.as_bytes(), &mut cache), parse(line.as_bytes()), "{}", line);
            }
        }

        #[test]
        fn message_is_whatever_follows_the_tag(msg in "[ -~]{0,40}", pid in 1u32..99999) {
            let line = format!("May 19 10:00:00 host sshd[{pid}]: {msg}");
            let p = parse(line.as_bytes()).expect("parses");
            prop_assert_eq!(&line.as_bytes()[p.message..], msg.as_bytes());
            prop_assert_eq!(p.program, b"sshd");
        }
    }
}
