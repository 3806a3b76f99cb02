//! The age check: whether a line is too old to count as an offence anywhere, told
//! from its timestamp alone, before any regex runs.
//!
//! A backlog read at start-up (`start = "beginning"` on weeks of log, a rotated
//! file read late) is mostly lines older than every `findtime`: they can never
//! count, yet matching them is most of the cost of reading them. [`AgeCheck`]
//! reads each line's time the way the matcher does for each filter of the source
//! (the syslog prefix, or the filter's `datepattern`, in the filter's time zone)
//! and calls the line stale only when, for every filter, that time is older than
//! the longest window the filter feeds. So it is exact: it never skips a line the
//! matcher and the window check would have let through. A source with a filter
//! that takes the arrival time, or that feeds no jail, gets no age check at all,
//! and a line whose time cannot be read is matched as before.
//!
//! It is cheap because a log's lines come in time order: consecutive lines share
//! their timestamp bytes (one verdict per second of log, not per line), and a new
//! timestamp is placed in time through the matcher's own hour memo
//! ([`TimeMemo`]) instead of a full time-zone lookup. Both caches are tied to the
//! `now` they were made with (which decides the year of a year-less syslog time),
//! so a new `now` starts them afresh.

use std::time::{Duration, SystemTime};

use jiff::tz::TimeZone;

use super::time::{DatePattern, TimeMemo};
use super::{SourceMatcher, strip_newline, syslog};

/// Where a filter reads a line's time.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Field {
    /// The syslog prefix (`prefix = "syslog"`).
    Syslog,
    /// The filter's `datepattern`.
    Date(DatePattern),
}

/// The timestamp bytes of the last line, with the time they name: syslog lines
/// only, whose time sits at a fixed place at the start of the line.
#[derive(Debug, Default)]
struct LastStamp {
    /// The line's bytes up to and including the byte after its timestamp (which
    /// `syslog` requires to be a space): a line starting with them reads the same
    /// time, since the parse never looks further.
    key: Vec<u8>,
    /// Whether that time is older than the window at `now`.
    stale: bool,
    /// The `now` it was resolved and judged with.
    now: Option<SystemTime>,
}

/// One way of reading the time, shared by the filters that read it alike.
#[derive(Debug)]
struct Reader {
    field: Field,
    zone: TimeZone,
    /// The longest window of those filters.
    window: Duration,
    last: LastStamp,
    times: TimeMemo,
}

/// Tells stale lines of one source; see the module docs. Holds caches: one per
/// source thread, like the matcher's [`Scratch`](super::Scratch).
#[derive(Debug)]
pub struct AgeCheck {
    readers: Vec<Reader>,
}

impl SourceMatcher {
    /// The age check for this matcher's filters, given per filter (in the order
    /// given to [`build`](Self::build)) the longest window of the jails it feeds.
    /// `None` when some filter can count a line whatever its time says: one
    /// without a window, or one that takes the arrival time (no syslog prefix and
    /// no `datepattern`).
    pub fn age_check(&self, windows: &[Option<Duration>]) -> Option<AgeCheck> {
        if windows.len() != self.filters.len() {
            return None;
        }
        let mut readers: Vec<Reader> = Vec::new();
        for (f, window) in self.filters.iter().zip(windows) {
            let window = (*window)?;
            let field = match (&f.date, f.syslog) {
                (_, true) => Field::Syslog,
                (Some(d), false) => Field::Date(d.clone()),
                (None, false) => return None,
            };
            match readers
                .iter_mut()
                .find(|r| r.field == field && r.zone == f.zone)
            {
                Some(r) => r.window = r.window.max(window),
                None => readers.push(Reader {
                    field,
                    zone: f.zone.clone(),
                    window,
                    last: LastStamp::default(),
                    times: TimeMemo::default(),
                }),
            }
        }
        (!readers.is_empty()).then_some(AgeCheck { readers })
    }
}

impl AgeCheck {
    /// Whether `line` is older than every window, so no filter of the source can
    /// make it count at `now`: for each filter, the time the matcher would give a
    /// hit on this line is more than the window before `now`. `false` whenever a
    /// time cannot be read.
    pub fn is_stale(&mut self, line: &[u8], now: SystemTime) -> bool {
        let line = strip_newline(line);
        self.readers.iter_mut().all(|r| r.is_stale(line, now))
    }
}

impl Reader {
    fn is_stale(&mut self, line: &[u8], now: SystemTime) -> bool {
        match &self.field {
            Field::Syslog => self.syslog_is_stale(line, now),
            Field::Date(d) => {
                let Some(raw) = d.find(line) else {
                    return false;
                };
                let at = self.times.resolve(&raw, 0, &self.zone, now);
                older(at, now, self.window)
            }
        }
    }

    fn syslog_is_stale(&mut self, line: &[u8], now: SystemTime) -> bool {
        let last = &mut self.last;
        if last.now == Some(now) && !last.key.is_empty() && starts_with(line, &last.key) {
            return last.stale;
        }
        let Some((raw, end)) = syslog::time_of(line) else {
            return false;
        };
        let at = self.times.resolve(&raw, 0, &self.zone, now);
        let stale = older(at, now, self.window);
        last.key.clear();
        if syslog::time_is_reusable(line, end) {
            last.key.extend_from_slice(&line[..=end]);
            last.stale = stale;
            last.now = Some(now);
        }
        stale
    }
}

/// The same test as the window check after a hit: `at` is more than `window`
/// before `now`.
fn older(at: Option<SystemTime>, now: SystemTime, window: Duration) -> bool {
    at.is_some_and(|at| now.duration_since(at).is_ok_and(|age| age > window))
}

/// `line.starts_with(key)` through the prefix parser's short-text compare (the
/// library call costs more than the compare for keys this short).
fn starts_with(line: &[u8], key: &[u8]) -> bool {
    line.get(..key.len())
        .is_some_and(|head| syslog::same_bytes(head, key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::FilterConfig;
    use jiff::Timestamp;
    use proptest::prelude::*;

    fn utc(text: &str) -> SystemTime {
        let ts: Timestamp = text.parse().expect("test timestamp");
        SystemTime::from(ts)
    }

    fn filter(toml: &str) -> FilterConfig {
        toml::from_str(toml).expect("filter config")
    }

    fn sshd_utc() -> FilterConfig {
        let mut f = crate::filter::builtin::get("sshd").expect("built-in");
        f.timezone = Some("UTC".into());
        f
    }

    fn check(filters: &[(&str, &FilterConfig)], windows: &[Option<Duration>]) -> Option<AgeCheck> {
        SourceMatcher::build(filters)
            .expect("builds")
            .age_check(windows)
    }

    const TEN_MIN: Option<Duration> = Some(Duration::from_secs(600));

    #[test]
    fn old_syslog_lines_are_stale_recent_ones_not() {
        let sshd = sshd_utc();
        let mut age = check(&[("sshd", &sshd)], &[TEN_MIN]).expect("syslog filter");
        let now = utc("2026-11-21T12:00:00Z");
        let line = |t: &str| format!("{t} web1 sshd[1]: Invalid user a from 192.0.2.1 port 22");
        assert!(age.is_stale(line("May 19 10:00:00").as_bytes(), now));
        assert!(age.is_stale(line("Nov 21 11:49:59").as_bytes(), now));
        assert!(!age.is_stale(line("Nov 21 11:50:00").as_bytes(), now));
        assert!(!age.is_stale(line("Nov 21 11:59:59").as_bytes(), now));
        // Read again with the same bytes (the cache), and in the future.
        assert!(!age.is_stale(line("Nov 21 11:59:59").as_bytes(), now));
        assert!(!age.is_stale(line("Nov 22 12:00:00").as_bytes(), now));
        // ISO, RFC 5424 and a priority.
        assert!(age.is_stale(line("2026-11-21T11:00:00Z").as_bytes(), now));
        assert!(!age.is_stale(line("2026-11-21T11:55:00Z").as_bytes(), now));
        assert!(age.is_stale(b"<34>1 2026-11-21T11:00:00Z web1 sshd 1 - - Failed", now));
        assert!(age.is_stale(line("<38>Nov 21 11:00:00").as_bytes(), now));
    }

    /// The stamps of supervisors' loggers, socklog and BIND's own file are line
    /// times too, so a backlog in those formats does not count.
    #[test]
    fn other_syslog_forms_are_dated() {
        let sshd = sshd_utc();
        let mut age = check(&[("sshd", &sshd)], &[TEN_MIN]).expect("syslog filter");
        let now = utc("2026-05-19T10:05:00Z");
        let later = utc("2026-05-19T10:20:00Z");
        for line in [
            "@400000006a0c34aa075bcd15 sshd[1]: Invalid user a from 192.0.2.1",
            "2026-05-19_10:00:00.12345 web1 sshd[1]: Invalid user a from 192.0.2.1",
            "2026-05-19T10:00:00.5Z auth.info: sshd[1]: Invalid user a from 192.0.2.1",
            "auth.info: May 19 10:00:00 sshd[1]: Invalid user a from 192.0.2.1",
            "19-May-2026 10:00:00.123 client @0x1 192.0.2.1#53 (example.com): query 'example.com/A/IN' denied",
            "May 19 10:00:00 [sshd] User root from 192.0.2.1 not allowed",
        ] {
            assert!(!age.is_stale(line.as_bytes(), now), "{line}");
            assert!(age.is_stale(line.as_bytes(), later), "{line}");
        }
    }

    #[test]
    fn a_line_without_a_readable_time_is_not_stale() {
        let sshd = sshd_utc();
        let mut age = check(&[("sshd", &sshd)], &[TEN_MIN]).expect("syslog filter");
        let now = utc("2026-11-21T12:00:00Z");
        for line in [
            &b"sshd[1]: Invalid user a from 192.0.2.1 port 22"[..],
            b"<34>1 - web1 sshd 1 - - Failed",
            b"Feb 30 10:00:00 web1 sshd[1]: x",
            b"Mai 19 10:00:00 web1 sshd[1]: x",
            b"May 19 10:00:00",
            b"",
        ] {
            assert!(
                !age.is_stale(line, now),
                "{}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn starts_with_compares_whole_keys() {
        for (line, key, want) in [
            (&b"May 19 10:00:00 web1"[..], &b"May 19 10:00:00 "[..], true),
            (b"May 19 10:00:01 web1", b"May 19 10:00:00 ", false),
            (b"May 19 10:00:00 web1", b"May 19 10:00:00 w", true),
            (b"May 19 10:00:00 web1", b"May 19 10:00:00 x", false),
            (b"May 19", b"May 19 10", false),
            (b"abc", b"", true),
        ] {
            assert_eq!(starts_with(line, key), want, "{key:?}");
            assert_eq!(starts_with(line, key), line.starts_with(key));
        }
    }

    #[test]
    fn a_fraction_after_cached_bytes_is_read_anew() {
        let sshd = sshd_utc();
        let mut age = check(&[("sshd", &sshd)], &[TEN_MIN]).expect("syslog filter");
        let now = utc("2026-11-21T11:59:59.4Z");
        assert!(age.is_stale(b"2026-11-21T11:49:59 h sshd[1]: x", now));
        // Starts with the same digits but reads a later time.
        assert!(!age.is_stale(b"2026-11-21T11:49:59.5+00:00 h sshd[1]: x", now));
    }

    #[test]
    fn a_zone_after_cached_weekday_iso_bytes_is_read_anew() {
        let sshd = sshd_utc();
        let mut age = check(&[("sshd", &sshd)], &[TEN_MIN]).expect("syslog filter");
        let now = utc("2026-11-21T12:00:00Z");
        assert!(!age.is_stale(b"Sat 2026-11-21T11:55:00 h sshd[1]: x", now));
        // The same bytes, then a zone: an hour earlier.
        assert!(age.is_stale(b"Sat 2026-11-21T11:55:00 +0100 h sshd[1]: x", now));
    }

    #[test]
    fn arrival_time_or_no_window_means_no_check() {
        let sshd = sshd_utc();
        let plain = filter("regex = ['x <HOST>']");
        assert!(check(&[("sshd", &sshd), ("x", &plain)], &[TEN_MIN, TEN_MIN]).is_none());
        assert!(check(&[("sshd", &sshd)], &[None]).is_none());
        let dated = filter("regex = ['x <HOST>']\ndatepattern = \"iso8601\"\ntimezone = \"UTC\"");
        assert!(check(&[("sshd", &sshd), ("x", &dated)], &[TEN_MIN, TEN_MIN]).is_some());
    }

    #[test]
    fn every_filter_must_find_the_line_old() {
        let sshd = sshd_utc();
        let dated = filter("regex = ['x <HOST>']\ndatepattern = \"iso8601\"\ntimezone = \"UTC\"");
        let mut age = check(
            &[("sshd", &sshd), ("x", &dated)],
            &[TEN_MIN, Some(Duration::from_secs(86_400))],
        )
        .expect("both read a time");
        let now = utc("2026-11-21T12:00:00Z");
        // No date where the plain filter reads it: its time is the arrival time.
        assert!(!age.is_stale(b"Nov 21 10:00:00 web1 sshd[1]: x", now));
        // Both read a time, but the plain filter's day-long window still holds it.
        assert!(!age.is_stale(b"2026-11-21T10:00:00Z web1 sshd[1]: x 192.0.2.1", now));
        assert!(age.is_stale(b"2026-11-19T10:00:00Z web1 sshd[1]: x 192.0.2.1", now));
        // The syslog filter cannot read this one's time (nor match it): matched.
        assert!(!age.is_stale(b"2026/11/19 10:00:00 x 192.0.2.1", now));
    }

    #[test]
    fn windows_of_filters_reading_alike_merge_to_the_longest() {
        let sshd = sshd_utc();
        let other = sshd_utc();
        let mut age = check(
            &[("sshd", &sshd), ("other", &other)],
            &[TEN_MIN, Some(Duration::from_secs(7200))],
        )
        .expect("syslog filters");
        assert_eq!(age.readers.len(), 1);
        let now = utc("2026-11-21T12:00:00Z");
        assert!(!age.is_stale(b"Nov 21 11:00:00 web1 sshd[1]: x", now));
        assert!(age.is_stale(b"Nov 21 09:59:59 web1 sshd[1]: x", now));
    }

    #[test]
    fn zone_transitions_resolve_exactly() {
        // Europe/Berlin falls back at 03:00 CEST to 02:00 CET on 2026-10-25.
        let Ok(berlin) = crate::filter::time::parse_zone("Europe/Berlin") else {
            return;
        };
        let now = utc("2026-10-25T03:00:00Z");
        let mut memo = TimeMemo::default();
        for text in [
            "Oct 25 02:30:00",
            "Oct 25 01:59:59",
            "Oct 25 03:15:00",
            "Mar 29 02:30:00",
        ] {
            let (raw, _) = crate::filter::time::parse_bsd(text.as_bytes()).expect(text);
            assert_eq!(
                memo.resolve(&raw, 0, &berlin, now),
                raw.resolve(&berlin, now),
                "{text}"
            );
        }
    }

    proptest! {
        // Each case builds the sshd matcher: fewer cases than the default.
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// The cached path gives the verdict a fresh check gives, line after line,
        /// around the year boundary and for every zone form.
        #[test]
        fn caches_agree_with_a_fresh_check(
            stamps in proptest::collection::vec((0u64..3, 0i64..400_000), 1..40),
            now_secs in 1_767_100_000i64..1_767_400_000,
            zone in prop_oneof![Just("UTC"), Just("+05:30"), Just("America/New_York"), Just("Australia/Lord_Howe")],
        ) {
            let mut sshd = sshd_utc();
            sshd.timezone = Some(zone.into());
            let Ok(m) = SourceMatcher::build(&[("sshd", &sshd)]) else { return Ok(()); };
            let Some(mut cached) = m.age_check(&[TEN_MIN]) else { return Ok(()); };
            let now = SystemTime::from(Timestamp::new(now_secs, 0).expect("in range"));
            for (form, back) in stamps {
                let at = Timestamp::new(now_secs - back, 0).expect("in range");
                let stamp = match form {
                    0 => at.strftime("%b %e %H:%M:%S").to_string(),
                    1 => format!("{}+00:00", at.strftime("%Y-%m-%dT%H:%M:%S")),
                    _ => format!("{}.{:03}", at.strftime("%b %d %H:%M:%S"), back % 1000),
                };
                let line = format!("{stamp} web1 sshd[1]: Invalid user a from 192.0.2.1 port 22");
                let mut fresh = m.age_check(&[TEN_MIN]).expect("same");
                prop_assert_eq!(
                    cached.is_stale(line.as_bytes(), now),
                    fresh.is_stale(line.as_bytes(), now),
                    "{}", line
                );
            }
        }

        #[test]
        fn stale_lines_never_count(
            back in 0i64..2_000_000,
            now_secs in 1_767_100_000i64..1_800_000_000,
        ) {
            let sshd = sshd_utc();
            let m = SourceMatcher::build(&[("sshd", &sshd)]).expect("builds");
            let mut age = m.age_check(&[TEN_MIN]).expect("syslog");
            let mut scratch = m.new_scratch();
            let now = SystemTime::from(Timestamp::new(now_secs, 0).expect("in range"));
            let at = Timestamp::new(now_secs - back, 0).expect("in range");
            let line = format!("{} web1 sshd[1]: Failed password for invalid user a from 192.0.2.1 port 22 ssh2", at.strftime("%b %e %H:%M:%S"));
            let hit = m.match_line(line.as_bytes(), now, &mut scratch).expect("a hit");
            let counts = !hit.time.is_some_and(|t| now.duration_since(t).is_ok_and(|a| a > Duration::from_secs(600)));
            prop_assert_eq!(age.is_stale(line.as_bytes(), now), !counts, "{}", line);
        }
    }
}
