//! The systemd journal, read through `journalctl --output=json --follow`.
//!
//! journalctl rather than libsystemd: no C library to link or version to match,
//! and tests fake the program with a script (the path is configurable). Each JSON
//! entry becomes one line, `TIME IDENTIFIER[PID]: MESSAGE`: the shape filters know
//! from syslog files (`prefix = "syslog"`, ISO 8601 form without a host), or
//! `TIME MESSAGE` when the entry has no identifier. TIME is the entry's own
//! `__REALTIME_TIMESTAMP` in UTC, `2026-05-19T10:00:00.123456Z`, so the line's
//! time is when it was logged, not when it was read: a backlog read after a
//! restart is judged against `findtime` like a file's. An entry without a time
//! gets no TIME. The entry's `__CURSOR` is sent to the engine like a file
//! position and persisted, so a restart continues with `--after-cursor` exactly
//! after the last entry read. journalctl is started again with backoff if it
//! exits.

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use jiff::tz::Offset;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::file::StartAt;
use super::line::Line;
use super::process::{Backoff, pause, run_child};
use super::{Emitter, JournalSourceSpec, LineMatcher, SourceEvent, SourcePosition};

/// How often the cursor is sent while entries keep coming.
const CURSOR_EVERY: Duration = Duration::from_secs(1);

/// A child that ran at least this long starts the backoff over.
const RAN_LONG_ENOUGH: Duration = Duration::from_secs(60);

/// Room for the JSON around a message: one JSON line may be this much longer
/// than `max_line` before it is cut (and then not parsed).
const JSON_OVERHEAD: usize = 16 * 1024;

/// What to run.
#[derive(Debug, Clone)]
pub struct JournalOptions {
    /// The journalctl program.
    pub program: PathBuf,
    /// Match expressions, passed as arguments.
    pub matches: Vec<String>,
    /// Where to start without a cursor.
    pub start: StartAt,
    /// Longest message, in bytes.
    pub max_line: usize,
}

/// journalctl's arguments: JSON, follow, where to start, then the matches.
pub fn arguments(options: &JournalOptions, cursor: Option<&str>) -> Vec<String> {
    let mut args = vec![
        options.program.to_string_lossy().into_owned(),
        "--output=json".to_owned(),
        "--follow".to_owned(),
        "--no-pager".to_owned(),
        "--quiet".to_owned(),
    ];
    match (cursor, options.start) {
        (Some(c), _) => args.push(format!("--after-cursor={c}")),
        (None, StartAt::End) => args.push("--lines=0".to_owned()),
        (None, StartAt::Beginning) => args.push("--no-tail".to_owned()),
    }
    args.extend(options.matches.iter().cloned());
    args
}

#[derive(Deserialize)]
struct Entry<'a> {
    #[serde(rename = "MESSAGE", borrow)]
    message: Option<&'a RawValue>,
    #[serde(rename = "__CURSOR", borrow)]
    cursor: Option<Cow<'a, str>>,
    #[serde(rename = "SYSLOG_IDENTIFIER", borrow)]
    identifier: Option<Cow<'a, str>>,
    #[serde(rename = "_PID", borrow)]
    pid: Option<Cow<'a, str>>,
    /// Microseconds since the epoch, as a decimal string.
    #[serde(rename = "__REALTIME_TIMESTAMP", borrow)]
    realtime: Option<Cow<'a, str>>,
}

/// One journal entry turned into a line.
#[derive(Debug, PartialEq, Eq)]
pub struct Parsed<'a> {
    /// The line (into the caller's buffer).
    pub line: Line<'a>,
    /// The entry's cursor.
    pub cursor: Option<String>,
}

/// Why a JSON line was not an entry.
#[derive(Debug, thiserror::Error)]
#[error("journalctl printed something that is not a JSON entry: {0}")]
pub struct ParseError(#[from] serde_json::Error);

/// Turns one JSON line into `TIME IDENTIFIER[PID]: MESSAGE` in `buf` (cleared
/// first), at most `max` bytes. A message that is not text (journalctl prints
/// those as an array of bytes) is taken byte for byte; a missing or null one is
/// empty. A missing or unreadable `__REALTIME_TIMESTAMP` leaves TIME out.
pub fn parse<'b>(json: &[u8], max: usize, buf: &'b mut Vec<u8>) -> Result<Parsed<'b>, ParseError> {
    let entry: Entry<'_> = serde_json::from_slice(json)?;
    buf.clear();
    if let Some(at) = entry
        .realtime
        .as_deref()
        .and_then(|us| us.parse::<i64>().ok())
        .and_then(|us| Timestamp::from_microsecond(us).ok())
        && write_time(at, buf)
    {
        buf.push(b' ');
    }
    if let Some(id) = &entry.identifier {
        buf.extend_from_slice(id.as_bytes());
        if let Some(pid) = &entry.pid {
            buf.push(b'[');
            buf.extend_from_slice(pid.as_bytes());
            buf.push(b']');
        }
        buf.extend_from_slice(b": ");
    }
    if let Some(raw) = entry.message {
        let text = raw.get();
        if text.starts_with('"') {
            let s: Cow<'_, str> = serde_json::from_str(text)?;
            buf.extend_from_slice(s.as_bytes());
        } else if text.starts_with('[') {
            let bytes: Vec<u8> = serde_json::from_str(text)?;
            buf.extend_from_slice(&bytes);
        }
    }
    let truncated = buf.len() > max;
    buf.truncate(max);
    Ok(Parsed {
        line: Line {
            bytes: buf,
            truncated,
        },
        cursor: entry.cursor.map(Cow::into_owned),
    })
}

/// Writes `at` as RFC 3339 in UTC with microseconds,
/// `2026-05-19T10:00:00.123456Z` (the journal's precision), without allocating.
/// Writes nothing and returns false for a year RFC 3339 cannot write (before 0).
fn write_time(at: Timestamp, buf: &mut Vec<u8>) -> bool {
    fn digits(buf: &mut Vec<u8>, n: i64, width: u32) {
        for i in (0..width).rev() {
            buf.push(b'0' + (n / 10_i64.pow(i) % 10) as u8);
        }
    }
    let t = Offset::UTC.to_datetime(at);
    if t.year() < 0 {
        return false;
    }
    digits(buf, i64::from(t.year()), 4);
    buf.push(b'-');
    digits(buf, i64::from(t.month()), 2);
    buf.push(b'-');
    digits(buf, i64::from(t.day()), 2);
    buf.push(b'T');
    digits(buf, i64::from(t.hour()), 2);
    buf.push(b':');
    digits(buf, i64::from(t.minute()), 2);
    buf.push(b':');
    digits(buf, i64::from(t.second()), 2);
    buf.push(b'.');
    digits(buf, i64::from(t.subsec_nanosecond() / 1000), 6);
    buf.push(b'Z');
    true
}

/// The journal source's thread.
pub(super) fn run<M: LineMatcher>(
    spec: JournalSourceSpec,
    mut emitter: Emitter<M>,
    stop: &AtomicBool,
    wake: &Receiver<()>,
    child: &Mutex<Option<u32>>,
) {
    let name = spec.name.clone();
    let options = spec.options;
    let mut cursor = spec.cursor;
    let mut sent = cursor.clone();
    let mut backoff = Backoff::default();
    let mut buf = Vec::new();
    let mut bad_json = 0u64;
    tracing::info!(source = %name, program = %options.program.display(), "reading the journal");
    loop {
        let argv = arguments(&options, cursor.as_deref());
        let started = Instant::now();
        let mut sent_at = Instant::now();
        let json_max = options.max_line.saturating_add(JSON_OVERHEAD);
        let result = run_child(&argv, json_max, stop, child, &mut |json| {
            if json.truncated {
                emitter.counters.lines.fetch_add(1, Ordering::Relaxed);
                emitter.counters.long_lines.fetch_add(1, Ordering::Relaxed);
                return;
            }
            match parse(json.bytes, options.max_line, &mut buf) {
                Ok(p) => {
                    emitter.line(p.line);
                    if p.cursor.is_some() {
                        cursor = p.cursor;
                    }
                    // Right after an offence, else every CURSOR_EVERY (see
                    // `Emitter::offences_sent`).
                    let offences_sent = emitter.take_offences_sent();
                    if (offences_sent || sent_at.elapsed() >= CURSOR_EVERY) && cursor != sent {
                        if let Some(c) = &cursor {
                            emitter.send(SourceEvent::Position(SourcePosition::Journal {
                                source: name.to_string(),
                                cursor: c.clone(),
                            }));
                        }
                        sent.clone_from(&cursor);
                        sent_at = Instant::now();
                    }
                }
                Err(e) => {
                    bad_json += 1;
                    if bad_json.is_power_of_two() {
                        tracing::warn!(source = %name, error = %e, count = bad_json, "skipping output that is not a journal entry");
                    }
                }
            }
        });
        if cursor != sent
            && let Some(c) = &cursor
        {
            emitter.send(SourceEvent::Position(SourcePosition::Journal {
                source: name.to_string(),
                cursor: c.clone(),
            }));
            sent.clone_from(&cursor);
        }
        match result {
            Ok(status) if !stop.load(Ordering::Acquire) => {
                tracing::warn!(source = %name, %status, "journalctl exited; starting it again")
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(source = %name, program = %options.program.display(), error = %e, "cannot start journalctl; retrying")
            }
        }
        if emitter.engine_gone {
            break;
        }
        if started.elapsed() >= RAN_LONG_ENOUGH {
            backoff.reset();
        }
        if !pause(backoff.next_delay(), stop, wake) {
            break;
        }
    }
    tracing::debug!(source = %name, "source stopped");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(json: &str) -> (String, bool, Option<String>) {
        let mut buf = Vec::new();
        let p = parse(json.as_bytes(), 64, &mut buf).expect("parse");
        (
            String::from_utf8_lossy(p.line.bytes).into_owned(),
            p.line.truncated,
            p.cursor,
        )
    }

    #[test]
    fn entry_becomes_a_syslog_shaped_line_with_its_cursor() {
        let (line, cut, cursor) = parse_str(
            r#"{"__CURSOR":"s=1;i=2","MESSAGE":"Failed password for root from 192.0.2.1 port 22 ssh2","SYSLOG_IDENTIFIER":"sshd","_PID":"812","_SYSTEMD_UNIT":"ssh.service"}"#,
        );
        assert_eq!(
            line,
            "sshd[812]: Failed password for root from 192.0.2.1 port 22 ssh2"
        );
        assert!(!cut);
        assert_eq!(cursor.as_deref(), Some("s=1;i=2"));
    }

    #[test]
    fn binary_escaped_missing_and_long_messages() {
        let (line, _, _) = parse_str(r#"{"MESSAGE":[104,105,255]}"#);
        assert_eq!(line, "hi\u{fffd}");
        let (line, _, cursor) = parse_str(r#"{"MESSAGE":null,"SYSLOG_IDENTIFIER":"x"}"#);
        assert_eq!(line, "x: ");
        assert_eq!(cursor, None);
        let (line, _, _) = parse_str(r#"{"MESSAGE":"a\"b\u00e9"}"#);
        assert_eq!(line, "a\"bé");
        let long = format!(r#"{{"MESSAGE":"{}"}}"#, "y".repeat(100));
        let (line, cut, _) = parse_str(&long);
        assert_eq!(line.len(), 64);
        assert!(cut);
    }

    #[test]
    fn entry_time_prefixes_the_line_as_rfc3339_utc() {
        let (line, _, _) = parse_str(
            r#"{"__REALTIME_TIMESTAMP":"1747648800123456","MESSAGE":"m","SYSLOG_IDENTIFIER":"sshd","_PID":"7"}"#,
        );
        assert_eq!(line, "2025-05-19T10:00:00.123456Z sshd[7]: m");
        let (line, _, _) = parse_str(r#"{"__REALTIME_TIMESTAMP":"5","MESSAGE":"no identifier"}"#);
        assert_eq!(line, "1970-01-01T00:00:00.000005Z no identifier");
        // Unreadable or out of range: no time, the rest as before.
        for bad in ["", "x", "-99999999999999999", "99999999999999999999"] {
            let json = format!(
                r#"{{"__REALTIME_TIMESTAMP":"{bad}","MESSAGE":"m","SYSLOG_IDENTIFIER":"x"}}"#
            );
            assert_eq!(parse_str(&json).0, "x: m", "{bad:?}");
        }
    }

    /// The prefix is one the filter module's syslog parser reads, time and all,
    /// and the message after it is what a `prefix = "syslog"` filter sees.
    #[test]
    fn prefixed_line_parses_as_syslog_with_the_entry_time() {
        let mut buf = Vec::new();
        let json = br#"{"__REALTIME_TIMESTAMP":"1747648800123456","MESSAGE":"Failed password for root from 192.0.2.1 port 22 ssh2","SYSLOG_IDENTIFIER":"sshd","_PID":"812"}"#;
        let p = parse(json, 1024, &mut buf).expect("parse");
        let line = p.line.bytes;
        let prefix = crate::filter::syslog::parse(line).expect("a syslog prefix");
        assert_eq!(prefix.program, b"sshd");
        assert_eq!(
            &line[prefix.message..],
            b"Failed password for root from 192.0.2.1 port 22 ssh2"
        );
        let at = prefix
            .time
            .and_then(|t| t.resolve(&jiff::tz::TimeZone::UTC, std::time::SystemTime::now()))
            .expect("a time");
        let want = std::time::UNIX_EPOCH + Duration::from_micros(1_747_648_800_123_456);
        assert_eq!(at, want);
    }

    #[test]
    fn garbage_is_an_error() {
        let mut buf = Vec::new();
        assert!(parse(b"-- No entries --", 64, &mut buf).is_err());
        assert!(parse(br#"{"MESSAGE":5"#, 64, &mut buf).is_err());
    }

    #[test]
    fn arguments_start_after_the_cursor_or_per_start() {
        let options = JournalOptions {
            program: PathBuf::from("/usr/bin/journalctl"),
            matches: vec!["_SYSTEMD_UNIT=ssh.service".to_owned()],
            start: StartAt::End,
            max_line: 100,
        };
        let args = arguments(&options, Some("s=abc"));
        assert_eq!(args[0], "/usr/bin/journalctl");
        assert!(args.contains(&"--output=json".to_owned()));
        assert!(args.contains(&"--follow".to_owned()));
        assert!(args.contains(&"--after-cursor=s=abc".to_owned()));
        assert_eq!(
            args.last().map(String::as_str),
            Some("_SYSTEMD_UNIT=ssh.service")
        );
        assert!(arguments(&options, None).contains(&"--lines=0".to_owned()));
        let beginning = JournalOptions {
            start: StartAt::Beginning,
            ..options
        };
        assert!(arguments(&beginning, None).contains(&"--no-tail".to_owned()));
    }
}
