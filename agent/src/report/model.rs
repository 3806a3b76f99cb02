//! What every report source turns its input into: ban events with a time, an
//! address (or prefix), a jail and the filter behind them. Views only ever see
//! these, so a fail2ban log, log2drop's own log and the state database give the
//! same tables.
//!
//! Times are *local wall-clock seconds* ([`Civil`]): fail2ban writes local times
//! without a zone, and admins group by the day their log shows. Sources that store
//! UTC (the state database, log2drop's log) convert to the local zone once, on
//! read, so one day is the same day for every source.

use std::net::IpAddr;

use ipnet::IpNet;

/// Seconds since 1970-01-01T00:00:00 of the local wall clock (no zone).
pub type Civil = i64;

/// Seconds per day.
pub const DAY: i64 = 86_400;

/// What a line or row says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// A new ban.
    Ban,
    /// A ban lifted or expired.
    Unban,
    /// A ban put back after a restart (fail2ban's `Restore Ban`): not a new ban.
    Restore,
    /// One offence seen by a filter (fail2ban's `Found`).
    Found,
}

/// One event. Small and `Copy`: a million of them fit in tens of megabytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    /// When, local wall clock.
    pub time: Civil,
    /// What.
    pub kind: Kind,
    /// The banned address (a host prefix) or subnet.
    pub target: IpNet,
    /// Index into [`Events::jails`].
    pub jail: u32,
    /// Index into [`Events::filters`], if the source names the filter.
    pub filter: Option<u32>,
    /// Index into [`Events::users`]: the `user` capture of the offence (a
    /// `Found`) or of the offence that caused the ban, if known.
    pub user: Option<u32>,
    /// How many offences a `Found` stands for (the state database keeps them
    /// aggregated per day); 1 for everything else.
    pub count: u32,
}

impl Event {
    /// The address of a single-host target, else the network address of the prefix.
    pub fn addr(&self) -> IpAddr {
        self.target.addr()
    }
}

/// Interned names (jails, filters, users): sources see few distinct names many
/// times, so a short linear scan beats hashing and nothing is allocated per line;
/// past [`LINEAR_NAMES`] names (user names an attacker chose) a hash index takes
/// over.
#[derive(Debug, Default, Clone)]
pub struct Names(Vec<Box<str>>, std::collections::HashMap<Box<str>, u32>);

/// Names looked up by a linear scan before the hash index is built.
const LINEAR_NAMES: usize = 32;

impl Names {
    /// The index of `name`, adding it when new.
    pub(crate) fn intern(&mut self, name: &str) -> u32 {
        if self.0.len() <= LINEAR_NAMES {
            if let Some(i) = self.0.iter().rposition(|n| **n == *name) {
                return i as u32;
            }
        } else if let Some(&i) = self.1.get(name) {
            return i;
        }
        self.0.push(name.into());
        let i = (self.0.len() - 1) as u32;
        if self.0.len() > LINEAR_NAMES {
            if self.1.is_empty() {
                for (k, n) in self.0.iter().enumerate() {
                    self.1.insert(n.clone(), k as u32);
                }
            } else {
                self.1.insert(name.into(), i);
            }
        }
        i
    }

    /// [`Names::intern`] for raw log bytes (invalid UTF-8 is replaced).
    pub(crate) fn intern_bytes(&mut self, name: &[u8]) -> u32 {
        if self.0.len() <= LINEAR_NAMES
            && let Some(i) = self.0.iter().rposition(|n| n.as_bytes() == name)
        {
            return i as u32;
        }
        self.intern(&String::from_utf8_lossy(name))
    }

    /// The name at `i`.
    pub fn get(&self, i: u32) -> &str {
        self.0.get(i as usize).map_or("?", |n| n)
    }

    /// How many names.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// No names yet.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The time window a report covers: `since <= time < until`, either end open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Range {
    /// First second included.
    pub since: Option<Civil>,
    /// First second excluded.
    pub until: Option<Civil>,
}

impl Range {
    /// Whether `t` is inside.
    #[inline]
    pub fn contains(&self, t: Civil) -> bool {
        self.since.is_none_or(|s| t >= s) && self.until.is_none_or(|u| t < u)
    }
}

/// Everything the sources read, ready for the views.
#[derive(Debug, Default, Clone)]
pub struct Events {
    /// The events inside the range, in the order read.
    pub events: Vec<Event>,
    /// Jail names.
    pub jails: Names,
    /// Filter names.
    pub filters: Names,
    /// `user` captures (raw, bounded; views escape them).
    pub users: Names,
    /// Lines (or rows) read.
    pub lines: u64,
    /// Lines that looked like events but could not be read (bad address, time).
    pub malformed: u64,
}

impl Events {
    /// Adds an event if `range` holds its time.
    #[inline]
    pub fn push(&mut self, range: &Range, event: Event) {
        if range.contains(event.time) {
            self.events.push(event);
        }
    }

    /// The events of one kind.
    pub fn of(&self, kind: Kind) -> impl Iterator<Item = &Event> + '_ {
        self.events.iter().filter(move |e| e.kind == kind)
    }
}

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day number from [`days_from_civil`].
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `YYYY-MM-DD` of a day number.
pub fn day_text(day: i64) -> String {
    let (y, m, d) = civil_from_days(day);
    format!("{y:04}-{m:02}-{d:02}")
}

/// `YYYY-MM-DD HH:MM:SS` of a civil time.
pub fn time_text(t: Civil) -> String {
    let s = t.rem_euclid(DAY);
    format!(
        "{} {:02}:{:02}:{:02}",
        day_text(t.div_euclid(DAY)),
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// The local wall-clock time of a UTC instant, in `zone`.
pub fn civil_of(ts: jiff::Timestamp, zone: &jiff::tz::TimeZone) -> Civil {
    ts.as_second() + i64::from(zone.to_offset(ts).seconds())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(day_text(days_from_civil(2024, 2, 29)), "2024-02-29");
        assert_eq!(
            time_text(days_from_civil(2026, 12, 6) * DAY + 3723),
            "2026-12-06 01:02:03"
        );
    }

    #[test]
    fn range_is_half_open() {
        let r = Range {
            since: Some(10),
            until: Some(20),
        };
        assert!(!r.contains(9) && r.contains(10) && r.contains(19) && !r.contains(20));
        assert!(Range::default().contains(i64::MIN));
    }

    #[test]
    fn names_intern_once() {
        let mut n = Names::default();
        assert_eq!(n.intern("sshd"), 0);
        assert_eq!(n.intern_bytes(b"nginx"), 1);
        assert_eq!(n.intern_bytes(b"sshd"), 0);
        assert_eq!(n.get(1), "nginx");
        assert_eq!(n.len(), 2);
    }

    proptest! {
        #[test]
        fn days_round_trip(z in -1_000_000i64..1_000_000) {
            let (y, m, d) = civil_from_days(z);
            prop_assert_eq!(days_from_civil(y, m, d), z);
        }
    }
}
