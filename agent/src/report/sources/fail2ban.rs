//! fail2ban's own log (`fail2ban.log` and its rotated files): the `Ban`, `Unban`,
//! `Restore Ban` and `Found` lines of fail2ban 0.8 to 1.1.
//!
//! The formats, as fail2ban's logging set-up writes them:
//!
//! ```text
//! 0.8:      2013-05-04 10:11:12,345 fail2ban.actions: WARNING [ssh] Ban 192.0.2.1
//!           2013-05-04 10:11:12,345 fail2ban.filter : INFO   [ssh] Found 192.0.2.1
//! 0.9-1.1:  2020-05-04 10:11:12,345 fail2ban.actions        [812]: NOTICE  [sshd] Ban 192.0.2.1
//!           2020-05-04 10:11:12,345 fail2ban.filter         [812]: INFO    [sshd] Found 192.0.2.1 - 2020-05-04 10:11:11
//! ```
//!
//! (`%(name)-16s: %(levelname)-6s` in 0.8, `%(name)-24s[%(process)d]: %(levelname)-7s`
//! since.) The parser is anchored on that shape: time, the `fail2ban.actions` or
//! `fail2ban.filter` logger, the level, `[jail]`, the verb and an address that ends
//! the line (or, for `Found`, is followed by ` - time`). Any other line, such as a
//! debug line quoting attacker-written log text, is not an event, however much
//! `Ban 203.0.113.9` it contains. `Increase Ban` (1.0's ban-time increment) follows
//! the `Ban` line of the same ban and so is not counted again; `Restore Ban` is a
//! ban put back after a restart and is counted apart from new bans.
//!
//! One pass over the bytes, no allocation: the line is borrowed, the address is
//! parsed from bytes, the jail is interned by the caller.

use std::net::IpAddr;

use super::super::model::{Civil, DAY, Kind, days_from_civil};

/// One line read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Parsed<'a> {
    /// An event of jail `jail` about `addr`.
    Event {
        /// When (local wall clock, as written).
        time: Civil,
        /// What.
        kind: Kind,
        /// The jail's name, as written between the brackets.
        jail: &'a [u8],
        /// The address.
        addr: IpAddr,
    },
    /// A well-formed event line whose address does not parse.
    Malformed,
    /// Not an event line (startup, debug, other messages, other programs).
    Other,
}

/// Longest jail name taken (fail2ban's are short words).
const MAX_JAIL: usize = 128;

/// Reads one line of fail2ban's log.
pub(crate) fn parse_line(line: &[u8]) -> Parsed<'_> {
    let Some((time, rest)) = timestamp(line) else {
        return Parsed::Other;
    };
    let Some(rest) = rest.strip_prefix(b"fail2ban.") else {
        return Parsed::Other;
    };
    let (is_actions, rest) = if let Some(r) = rest.strip_prefix(b"actions") {
        (true, r)
    } else if let Some(r) = rest.strip_prefix(b"filter") {
        (false, r)
    } else {
        return Parsed::Other;
    };
    let rest = skip_spaces(rest);
    // 0.9+: `[pid]` before the colon.
    let rest = match rest.strip_prefix(b"[") {
        Some(r) => {
            let digits = r.iter().take_while(|b| b.is_ascii_digit()).count();
            match r[digits..].strip_prefix(b"]") {
                Some(r) if digits > 0 => r,
                _ => return Parsed::Other,
            }
        }
        None => rest,
    };
    let Some(rest) = rest.strip_prefix(b":") else {
        return Parsed::Other;
    };
    let rest = skip_spaces(rest);
    let level = rest.iter().take_while(|b| b.is_ascii_uppercase()).count();
    if level == 0 || rest.get(level) != Some(&b' ') {
        return Parsed::Other;
    }
    let Some(rest) = skip_spaces(&rest[level..]).strip_prefix(b"[") else {
        return Parsed::Other;
    };
    let Some(close) = rest.iter().take(MAX_JAIL + 1).position(|&b| b == b']') else {
        return Parsed::Other;
    };
    let jail = &rest[..close];
    if jail.is_empty() || jail.iter().any(|&b| b == b' ' || b == b'[') {
        return Parsed::Other;
    }
    let Some(msg) = rest[close + 1..].strip_prefix(b" ") else {
        return Parsed::Other;
    };
    let (kind, addr) = if is_actions {
        let (kind, addr) = if let Some(a) = msg.strip_prefix(b"Ban ") {
            (Kind::Ban, a)
        } else if let Some(a) = msg.strip_prefix(b"Unban ") {
            (Kind::Unban, a)
        } else if let Some(a) = msg.strip_prefix(b"Restore Ban ") {
            (Kind::Restore, a)
        } else {
            return Parsed::Other;
        };
        let addr = trim_end(addr);
        if addr.contains(&b' ') {
            return Parsed::Other;
        }
        (kind, addr)
    } else {
        let Some(a) = msg.strip_prefix(b"Found ") else {
            return Parsed::Other;
        };
        // 0.10+: `Found ADDR - TIME`; earlier: `Found ADDR`.
        let end = memchr::memchr(b' ', a).unwrap_or(a.len());
        let tail = trim_end(&a[end..]);
        if !(tail.is_empty() || tail.starts_with(b" - ")) {
            return Parsed::Other;
        }
        (Kind::Found, &a[..end])
    };
    match crate::addr::parse_ip(addr) {
        Some(addr) => Parsed::Event {
            time,
            kind,
            jail,
            addr,
        },
        None => Parsed::Malformed,
    }
}

fn skip_spaces(b: &[u8]) -> &[u8] {
    let n = b.iter().take_while(|&&c| c == b' ').count();
    &b[n..]
}

fn trim_end(b: &[u8]) -> &[u8] {
    let n = b
        .iter()
        .rev()
        .take_while(|&&c| c == b' ' || c == b'\r' || c == b'\t')
        .count();
    &b[..b.len() - n]
}

/// `YYYY-MM-DD HH:MM:SS` with optional `,mmm` (or `.mmm`), then one space.
fn timestamp(line: &[u8]) -> Option<(Civil, &[u8])> {
    let t = line.get(..19)?;
    if t[4] != b'-' || t[7] != b'-' || t[10] != b' ' || t[13] != b':' || t[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let mut v = 0u32;
        for &b in &t[r] {
            let d = b.wrapping_sub(b'0');
            if d > 9 {
                return None;
            }
            v = v * 10 + u32::from(d);
        }
        Some(v)
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let mut rest = &line[19..];
    if let [b',' | b'.', tail @ ..] = rest {
        let n = tail.iter().take_while(|b| b.is_ascii_digit()).count();
        rest = &tail[n..];
    }
    let rest = rest.strip_prefix(b" ")?;
    let day = days_from_civil(i64::from(y), mo, d);
    Some((
        day * DAY + i64::from(h) * 3600 + i64::from(mi) * 60 + i64::from(s),
        rest,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ev(line: &str) -> (Kind, String, String, String) {
        match parse_line(line.as_bytes()) {
            Parsed::Event {
                time,
                kind,
                jail,
                addr,
            } => (
                kind,
                String::from_utf8_lossy(jail).into_owned(),
                addr.to_string(),
                crate::report::model::time_text(time),
            ),
            other => panic!("{line:?} gave {other:?}"),
        }
    }

    #[test]
    fn reads_the_0_8_format() {
        assert_eq!(
            ev("2013-05-04 10:11:12,345 fail2ban.actions: WARNING [ssh] Ban 192.0.2.1"),
            (
                Kind::Ban,
                "ssh".into(),
                "192.0.2.1".into(),
                "2013-05-04 10:11:12".into()
            )
        );
        assert_eq!(
            ev("2013-05-04 10:21:12,345 fail2ban.actions: WARNING [ssh] Unban 192.0.2.1").0,
            Kind::Unban
        );
        assert_eq!(
            ev("2013-05-04 10:11:10,001 fail2ban.filter : INFO   [ssh] Found 192.0.2.1").0,
            Kind::Found
        );
    }

    #[test]
    fn reads_the_0_9_to_1_1_format() {
        assert_eq!(
            ev(
                "2020-05-04 10:11:12,345 fail2ban.actions        [812]: NOTICE  [sshd] Ban 2001:db8::7"
            ),
            (
                Kind::Ban,
                "sshd".into(),
                "2001:db8::7".into(),
                "2020-05-04 10:11:12".into()
            )
        );
        assert_eq!(
            ev("2020-05-04 10:11:12,345 fail2ban.actions        [812]: NOTICE  [nginx-http-auth] Restore Ban 198.51.100.4").0,
            Kind::Restore
        );
        let (kind, jail, addr, _) = ev(
            "2020-05-04 10:11:11,900 fail2ban.filter         [812]: INFO    [sshd] Found 203.0.113.5 - 2020-05-04 10:11:11",
        );
        assert_eq!(
            (kind, jail.as_str(), addr.as_str()),
            (Kind::Found, "sshd", "203.0.113.5")
        );
        assert_eq!(
            ev("2020-05-04 10:11:12,345 fail2ban.actions        [812]: NOTICE  [sshd] Ban 192.0.2.1\r").2,
            "192.0.2.1"
        );
    }

    #[test]
    fn other_lines_are_not_events() {
        for line in [
            "",
            "2020-05-04 10:11:12,345 fail2ban.actions        [812]: NOTICE  [sshd] 192.0.2.1 already banned",
            "2020-05-04 10:11:12,345 fail2ban.observer       [812]: NOTICE  [sshd] Increase Ban 192.0.2.1 (2 # 2:00:00 -> 2020-05-04 12:11:12)",
            "2020-05-04 10:11:12,345 fail2ban.actions        [812]: NOTICE  [sshd] Increase Ban 192.0.2.1 (2 # 2:00:00 -> 2020-05-04 12:11:12)",
            "2020-05-04 10:11:12,345 fail2ban.observer       [812]: INFO    [sshd] Found 192.0.2.1, bad - 2020-05-04 10:11:11, 1 # -> 3, Ban",
            "2020-05-04 10:11:12,345 fail2ban.server         [812]: INFO    Starting Fail2ban v1.0.2",
            // Attacker text quoted by a debug line must not become a ban.
            "2020-05-04 10:11:12,345 fail2ban.filter         [812]: DEBUG   Processing line: sshd: user [x] Ban 198.51.100.66",
            "2020-05-04 10:11:12,345 fail2ban.filter         [812]: INFO    [sshd] Found 192.0.2.1 x [sshd] Ban 198.51.100.66",
            "2020-05-04 10:11:12,345 fail2ban.actions        [812]: NOTICE  [sshd] Ban 192.0.2.1 198.51.100.66",
            "Dec  6 10:11:12 host fail2ban.actions[812]: NOTICE [sshd] Ban 192.0.2.1",
            "2020-13-04 10:11:12,345 fail2ban.actions        [812]: NOTICE  [sshd] Ban 192.0.2.1",
        ] {
            assert_eq!(parse_line(line.as_bytes()), Parsed::Other, "{line:?}");
        }
        assert_eq!(
            parse_line(b"2020-05-04 10:11:12,345 fail2ban.actions        [812]: NOTICE  [sshd] Ban 192.0.2.300"),
            Parsed::Malformed
        );
    }

    proptest! {
        #[test]
        fn never_panics(line in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_line(&line);
        }

        #[test]
        fn reads_what_it_is_given(
            a in any::<[u8; 4]>(), pid in 1u32..99999, jail in "[a-z][a-z0-9-]{0,20}",
            old in any::<bool>(), h in 0u32..24, m in 0u32..60,
        ) {
            let addr = std::net::Ipv4Addr::from(a);
            let line = if old {
                format!("2019-01-02 {h:02}:{m:02}:03,004 fail2ban.actions: WARNING [{jail}] Ban {addr}")
            } else {
                format!("2019-01-02 {h:02}:{m:02}:03,004 fail2ban.actions        [{pid}]: NOTICE  [{jail}] Ban {addr}")
            };
            match parse_line(line.as_bytes()) {
                Parsed::Event { time, kind, jail: j, addr: got } => {
                    prop_assert_eq!(kind, Kind::Ban);
                    prop_assert_eq!(j, jail.as_bytes());
                    prop_assert_eq!(got, std::net::IpAddr::V4(addr));
                    prop_assert_eq!(time.rem_euclid(DAY), i64::from(h * 3600 + m * 60 + 3));
                }
                other => prop_assert!(false, "{:?}", other),
            }
        }
    }
}
