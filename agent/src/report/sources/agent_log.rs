//! log2drop's own log: the `ban` and `unban` lines the daemon writes through
//! `tracing` for every decision, as a file, a terminal capture (colours included)
//! or a `journalctl` export:
//!
//! ```text
//! 2026-12-06T02:00:43.123456Z  INFO log2drop::daemon::enforcer: ban address=198.51.100.7 jail=ssh until=2026-12-06T03:00:43Z origin=jail filter=sshd forced=false captures=user=root
//! 2026-12-06T03:00:43.200000Z  INFO log2drop::daemon::enforcer: unban address=198.51.100.7 jail=ssh
//! ```
//!
//! The event is anchored on the logging target (`log2drop::daemon...: ban `) and
//! its time is the first RFC 3339 token before it, so a journal or syslog prefix
//! in front does not matter.
//!
//! `log2drop run --log-format json` writes the same events as JSON objects, read
//! from the `{"timestamp":` that opens them (after any prefix):
//!
//! ```text
//! {"timestamp":"2026-12-06T02:00:43.123456Z","level":"INFO","message":"ban","address":"198.51.100.7","jail":"ssh",...,"target":"log2drop::daemon::enforcer"}
//! ```

use ipnet::IpNet;

use super::super::model::Kind;

/// One line read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Parsed<'a> {
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
        /// The `user` capture of the offence behind the ban (unescaped,
        /// bounded), if logged.
        user: Option<String>,
    },
    /// A decision line that cannot be read back.
    Malformed,
    /// Anything else.
    Other,
}

const TARGET: &str = "log2drop::daemon";

/// Reads one line. `scratch` holds the line without colour codes when it has
/// any (reused, so only coloured lines cost a copy).
pub(crate) fn parse_line<'a>(line: &'a [u8], scratch: &'a mut String) -> Parsed<'a> {
    if memchr::memmem::find(line, TARGET.as_bytes()).is_none() {
        return Parsed::Other;
    }
    let Ok(text) = std::str::from_utf8(line) else {
        return Parsed::Other;
    };
    if let Some(at) = text.find(JSON_OPEN) {
        return parse_json(&text[at..]);
    }
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
    let (mut target, mut jail, mut filter, mut user) = (None, None, None, None);
    for field in fields.split_ascii_whitespace() {
        let Some((k, v)) = field.split_once('=') else {
            continue;
        };
        match k {
            "address" => target = crate::addr::parse_target(v).ok(),
            "jail" => jail = Some(v),
            "filter" if !v.is_empty() => filter = Some(v),
            // One escaped token (see `filter::capture`): a user name cannot
            // add fields or lines.
            "captures" if !v.is_empty() => {
                user = crate::filter::Captures::parse_fields(v)
                    .user()
                    .map(str::to_owned);
            }
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
            user,
        },
        _ => Parsed::Malformed,
    }
}

/// How a JSON log line opens.
const JSON_OPEN: &str = "{\"timestamp\":";

/// One JSON log line: the fields a decision carries. Strings are borrowed, so a
/// value with escapes (never an address or a jail name) makes the line malformed.
#[derive(serde::Deserialize)]
struct JsonEvent<'a> {
    timestamp: &'a str,
    message: &'a str,
    target: &'a str,
    address: Option<&'a str>,
    jail: Option<&'a str>,
    filter: Option<&'a str>,
    /// The ban reason's captures: escaped text, so it may hold JSON escapes.
    #[serde(borrow, default)]
    captures: Option<std::borrow::Cow<'a, str>>,
}

fn parse_json(text: &str) -> Parsed<'_> {
    let Ok(e) = serde_json::from_str::<JsonEvent<'_>>(text.trim_end()) else {
        // Another tool's JSON, or a line cut short.
        return Parsed::Other;
    };
    if !e.target.starts_with(TARGET) {
        return Parsed::Other;
    }
    let kind = match e.message {
        "ban" => Kind::Ban,
        "unban" => Kind::Unban,
        _ => return Parsed::Other,
    };
    let time = e.timestamp.parse::<jiff::Timestamp>().ok();
    let target = e.address.and_then(|a| crate::addr::parse_target(a).ok());
    match (time, target, e.jail) {
        (Some(time), Some(target), Some(jail)) => Parsed::Event {
            time,
            kind,
            target,
            jail,
            filter: e.filter.filter(|f| !f.is_empty()),
            user: e.captures.as_deref().and_then(|c| {
                crate::filter::Captures::parse_fields(c)
                    .user()
                    .map(str::to_owned)
            }),
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
                user,
            } => {
                assert_eq!(user, None);
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
    fn hostile_user_captures_read_back_as_one_field() {
        let mut s = String::new();
        let mut c = crate::filter::Captures::new();
        let hostile = "x address=192.0.2.66 jail=evil\n2026-12-06T02:00:44Z  INFO log2drop::daemon::enforcer: ban address=192.0.2.77";
        c.push_named("user", hostile.as_bytes());
        let line = format!(
            "2026-12-06T02:00:43Z  INFO log2drop::daemon::enforcer: ban address=198.51.100.7 jail=ssh until=2026-12-06T03:00:43Z origin=jail filter=sshd forced=false captures={}",
            c.to_fields()
        );
        assert_eq!(line.lines().count(), 1);
        match parse_line(line.as_bytes(), &mut s) {
            Parsed::Event {
                target, jail, user, ..
            } => {
                assert_eq!(target.to_string(), "198.51.100.7/32");
                assert_eq!(jail, "ssh");
                let bounded = crate::filter::capture::bound(hostile.as_bytes());
                assert_eq!(user.as_deref(), Some(&*bounded));
            }
            other => panic!("{other:?}"),
        }
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
    fn reads_json_lines() {
        let mut s = String::new();
        let line = r#"{"timestamp":"2026-12-06T02:00:43.123456Z","level":"INFO","message":"ban","address":"2001:db8:1:2::/64","jail":"ssh","until":"2026-12-06T03:00:43Z","origin":"jail","filter":"sshd","forced":false,"target":"log2drop::daemon::enforcer"}"#;
        match parse_line(line.as_bytes(), &mut s) {
            Parsed::Event {
                time,
                kind,
                target,
                jail,
                filter,
                ..
            } => {
                assert_eq!(time.to_string(), "2026-12-06T02:00:43.123456Z");
                assert_eq!(kind, Kind::Ban);
                assert_eq!(target.to_string(), "2001:db8:1:2::/64");
                assert_eq!((jail, filter), ("ssh", Some("sshd")));
            }
            other => panic!("{other:?}"),
        }
        let unban = r#"Dec 06 03:00:43 host log2drop[9]: {"timestamp":"2026-12-06T03:00:43.2Z","level":"INFO","message":"unban","address":"203.0.113.0/24","jail":"manual","target":"log2drop::daemon::enforcer"}"#;
        assert!(matches!(
            parse_line(unban.as_bytes(), &mut s),
            Parsed::Event {
                kind: Kind::Unban,
                jail: "manual",
                filter: None,
                ..
            }
        ));
        for other in [
            r#"{"timestamp":"2026-12-06T02:00:43Z","level":"INFO","message":"log2drop running","bans":3,"target":"log2drop::daemon"}"#,
            r#"{"timestamp":"2026-12-06T02:00:43Z","level":"WARN","message":"ban","address":"192.0.2.1","jail":"x","target":"someone::else log2drop::daemon"}"#,
        ] {
            assert_eq!(
                parse_line(other.as_bytes(), &mut s),
                Parsed::Other,
                "{other}"
            );
        }
        let bad = r#"{"timestamp":"2026-12-06T02:00:43Z","level":"INFO","message":"ban","address":"nope","jail":"ssh","target":"log2drop::daemon::enforcer"}"#;
        assert_eq!(parse_line(bad.as_bytes(), &mut s), Parsed::Malformed);
    }

    /// The lines the agent writes with `--log-format json` read back as events.
    #[test]
    fn reads_what_the_json_subscriber_writes() {
        let ban = crate::engine::Ban {
            target: "198.51.100.7/32".parse().expect("net"),
            jail: std::sync::Arc::from("ssh"),
            since: std::time::SystemTime::now(),
            until: None,
            origin: crate::engine::Origin::Jail,
            reason: None,
            forced: false,
            node: None,
        };
        let buf = crate::daemon::LogCapture::default();
        let subscriber = crate::daemon::json_log_subscriber(
            buf.clone(),
            tracing_subscriber::EnvFilter::new("info"),
        );
        tracing::subscriber::with_default(subscriber, || {
            crate::daemon::enforcer::log_decision(&crate::engine::Decision::Ban(ban.clone()));
            crate::daemon::enforcer::log_decision(&crate::engine::Decision::Unban(ban));
        });
        let log = buf.text();
        let kinds: Vec<Kind> = log
            .lines()
            .map(|l| match parse_line(l.as_bytes(), &mut String::new()) {
                Parsed::Event { kind, target, .. } => {
                    assert_eq!(target.to_string(), "198.51.100.7/32");
                    kind
                }
                other => panic!("{other:?} from {l}"),
            })
            .collect();
        assert_eq!(kinds, [Kind::Ban, Kind::Unban], "{log}");
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
