//! log2drop's own log: the `ban` and `unban` lines the daemon writes through
//! `tracing` for every decision, as a file, a terminal capture (colours included)
//! or a `journalctl` export:
//!
//! ```text
//! 2026-12-06T02:00:43.123456Z  INFO log2drop::daemon::enforcer: ban address=198.51.100.7 jail=ssh until=2026-12-06T03:00:43Z origin=jail filter=sshd forced=false
//! 2026-12-06T03:00:43.200000Z  INFO log2drop::daemon::enforcer: unban address=198.51.100.7 jail=ssh
//! ```
//!
//! The event is anchored on the logging target (`log2drop::daemon...: ban `) and
//! its time is the first RFC 3339 token before it, so a journal or syslog prefix
//! in front does not matter.

use ipnet::IpNet;

use super::super::model::Kind;

/// One line read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed<'a> {
    /// A decision.
    Event {
        /// When, UTC.
        time: jiff::Timestamp,
        /// Ban or unban.
        kind: Kind,
        /// The address or prefix.
        target: IpNet,
        /// The jail.
        jail: &'a str,
        /// The filter that caused a jail ban, if any.
        filter: Option<&'a str>,
    },
    /// A decision line that cannot be read back.
    Malformed,
    /// Anything else.
    Other,
}

const TARGET: &str = "log2drop::daemon";

/// Reads one line. `scratch` holds the line without colour codes when it has
/// any (reused, so only coloured lines cost a copy).
pub fn parse_line<'a>(line: &'a [u8], scratch: &'a mut String) -> Parsed<'a> {
    if memchr::memmem::find(line, TARGET.as_bytes()).is_none() {
        return Parsed::Other;
    }
    let Ok(text) = std::str::from_utf8(line) else {
        return Parsed::Other;
    };
    let text = if text.contains('\x1b') {
        strip_ansi(text, scratch);
        scratch.as_str()
    } else {
        text
    };
    let Some(at) = text.find(TARGET) else {
        return Parsed::Other;
    };
    let Some(colon) = text[at..].find(": ") else {
        return Parsed::Other;
    };
    let head = &text[..at];
    let msg = &text[at + colon + 2..];
    let (kind, fields) = if let Some(f) = msg.strip_prefix("ban ") {
        (Kind::Ban, f)
    } else if let Some(f) = msg.strip_prefix("unban ") {
        (Kind::Unban, f)
    } else {
        return Parsed::Other;
    };
    let Some(time) = head
        .split_ascii_whitespace()
        .find_map(|t| t.parse::<jiff::Timestamp>().ok())
    else {
        return Parsed::Malformed;
    };
    let (mut target, mut jail, mut filter) = (None, None, None);
    for field in fields.split_ascii_whitespace() {
        let Some((k, v)) = field.split_once('=') else {
            continue;
        };
        match k {
            "address" => target = crate::addr::parse_target(v).ok(),
            "jail" => jail = Some(v),
            "filter" if !v.is_empty() => filter = Some(v),
            _ => {}
        }
    }
    match (target, jail) {
        (Some(target), Some(jail)) => Parsed::Event {
            time,
            kind,
            target,
            jail,
            filter,
        },
        _ => Parsed::Malformed,
    }
}

/// Copies `text` into `out` without ANSI escape sequences (`ESC [ ... letter`).
fn strip_ansi(text: &str, out: &mut String) {
    out.clear();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            if chars.clone().next() == Some('[') {
                chars.next();
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ban_and_unban_lines() {
        let mut s = String::new();
        let line = "2026-12-06T02:00:43.123456Z  INFO log2drop::daemon::enforcer: ban address=198.51.100.7 jail=ssh until=2026-12-06T03:00:43Z origin=jail filter=sshd forced=false";
        match parse_line(line.as_bytes(), &mut s) {
            Parsed::Event {
                time,
                kind,
                target,
                jail,
                filter,
            } => {
                assert_eq!(time.to_string(), "2026-12-06T02:00:43.123456Z");
                assert_eq!(kind, Kind::Ban);
                assert_eq!(target.to_string(), "198.51.100.7/32");
                assert_eq!((jail, filter), ("ssh", Some("sshd")));
            }
            other => panic!("{other:?}"),
        }
        let line = "Dec 06 03:00:43 host log2drop[9]: 2026-12-06T03:00:43.2Z  INFO log2drop::daemon::enforcer: unban address=203.0.113.0/24 jail=manual";
        assert!(matches!(
            parse_line(line.as_bytes(), &mut s),
            Parsed::Event {
                kind: Kind::Unban,
                jail: "manual",
                filter: None,
                ..
            }
        ));
    }

    #[test]
    fn colours_are_ignored() {
        let mut s = String::new();
        let line = "\x1b[2m2026-12-06T02:00:43.123456Z\x1b[0m \x1b[32m INFO\x1b[0m \x1b[2mlog2drop::daemon::enforcer\x1b[0m\x1b[2m:\x1b[0m ban \x1b[3maddress\x1b[0m\x1b[2m=\x1b[0m2001:db8::5 \x1b[3mjail\x1b[0m\x1b[2m=\x1b[0mweb";
        assert!(matches!(
            parse_line(line.as_bytes(), &mut s),
            Parsed::Event {
                kind: Kind::Ban,
                jail: "web",
                ..
            }
        ));
    }

    #[test]
    fn other_lines_are_not_events() {
        let mut s = String::new();
        for line in [
            "2026-12-06T02:00:43Z  INFO log2drop::daemon: started",
            "2026-12-06T02:00:43Z  WARN log2drop::daemon::enforcer: cannot purge ban history",
            "Dec 06 sshd[1]: Invalid user ban address=192.0.2.1 jail=x from 198.51.100.1",
        ] {
            assert_eq!(parse_line(line.as_bytes(), &mut s), Parsed::Other, "{line}");
        }
        assert_eq!(
            parse_line(
                b"2026-12-06T02:00:43Z  INFO log2drop::daemon::enforcer: ban address=nope jail=ssh",
                &mut s
            ),
            Parsed::Malformed
        );
    }
}
