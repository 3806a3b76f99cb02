//! Offence counts per address, filter, user and day: what an address did before
//! any ban (`report --by filter`, `--by jail`, `--by user`), without a row per
//! line.
//!
//! Two halves, both bounded:
//! - [`Tally`], in the daemon's engine task, folds offences into one entry per
//!   (day, address, filter, user) in memory, at most `cap` entries; the daemon
//!   hands its contents to the commit thread every 15 seconds, or at once when
//!   it is full, so the store sees one transaction per interval, never one per
//!   line. A crash loses at most the counts of that interval (they are
//!   statistics; bans never depend on them).
//! - The `offence_counts` table adds those counts up ([`write`]) and keeps at most
//!   `agent.offence_rows` rows: past that, the rows of the oldest day with the
//!   fewest offences go first. Rows older than `agent.history_retention` are
//!   purged with the ban history.

use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use hashbrown::{Equivalent, HashMap};
use rusqlite::params;

use super::{from_millis, millis};

/// One aggregated row: `count` offences by `address` seen by `filter` (with the
/// `user` capture, empty when the line had none) on UTC day `day`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffenceCount {
    /// Days since 1970-01-01, UTC.
    pub day: i64,
    /// The offending address.
    pub address: IpAddr,
    /// The filter that saw it.
    pub filter: Arc<str>,
    /// The `user` capture (bounded, raw), or empty.
    pub user: Box<str>,
    /// The jails the filter fed, comma separated.
    pub jails: Box<str>,
    /// How many offences.
    pub count: u64,
    /// The first of them.
    pub first: SystemTime,
    /// The last of them.
    pub last: SystemTime,
}

/// The UTC day of `t`.
pub(crate) fn day_of(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (d.as_secs() / 86_400) as i64,
        Err(e) => -((e.duration().as_secs() / 86_400) as i64) - 1,
    }
}

#[derive(Debug, PartialEq, Eq)]
struct Key {
    day: i64,
    address: IpAddr,
    filter: Arc<str>,
    user: Box<str>,
}

impl Hash for Key {
    fn hash<H: Hasher>(&self, h: &mut H) {
        (self.day, self.address, &*self.filter, &*self.user).hash(h);
    }
}

/// A key borrowed from an offence, so counting an offence already seen today
/// allocates nothing.
struct KeyRef<'a> {
    day: i64,
    address: IpAddr,
    filter: &'a str,
    user: &'a str,
}

impl Hash for KeyRef<'_> {
    fn hash<H: Hasher>(&self, h: &mut H) {
        (self.day, self.address, self.filter, self.user).hash(h);
    }
}

impl Equivalent<Key> for KeyRef<'_> {
    fn equivalent(&self, k: &Key) -> bool {
        self.day == k.day
            && self.address == k.address
            && self.filter == &*k.filter
            && self.user == &*k.user
    }
}

#[derive(Debug, Clone, Copy)]
struct Agg {
    count: u64,
    first: SystemTime,
    last: SystemTime,
}

/// Offence counts not yet written. See the module docs.
#[derive(Debug)]
pub struct Tally {
    // Keyed by attacker-chosen addresses and names: a randomly seeded hasher.
    map: HashMap<Key, Agg, foldhash::fast::RandomState>,
    cap: usize,
}

impl Tally {
    /// A tally of at most `cap` entries (at least 1).
    pub fn new(cap: usize) -> Tally {
        Tally {
            map: HashMap::with_hasher(foldhash::fast::RandomState::default()),
            cap: cap.max(1),
        }
    }

    /// Counts one offence; returns `true` when the tally is full and should be
    /// taken now.
    pub fn add(
        &mut self,
        address: IpAddr,
        filter: &Arc<str>,
        user: Option<&str>,
        at: SystemTime,
    ) -> bool {
        let day = day_of(at);
        let user = user.unwrap_or("");
        let key = KeyRef {
            day,
            address,
            filter,
            user,
        };
        match self.map.get_mut(&key) {
            Some(a) => {
                a.count += 1;
                a.first = a.first.min(at);
                a.last = a.last.max(at);
            }
            None => {
                self.map.insert(
                    Key {
                        day,
                        address,
                        filter: filter.clone(),
                        user: user.into(),
                    },
                    Agg {
                        count: 1,
                        first: at,
                        last: at,
                    },
                );
            }
        }
        self.map.len() >= self.cap
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// How many entries are waiting.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Takes every entry, naming each filter's jails with `jails_of`.
    pub fn take(&mut self, jails_of: impl Fn(&str) -> String) -> Vec<OffenceCount> {
        self.map
            .drain()
            .map(|(k, a)| OffenceCount {
                jails: jails_of(&k.filter).into(),
                day: k.day,
                address: k.address,
                filter: k.filter,
                user: k.user,
                count: a.count,
                first: a.first,
                last: a.last,
            })
            .collect()
    }
}

/// Adds `counts` to the table, then trims it to `max_rows` (oldest day, fewest
/// offences first).
pub(super) fn write(
    tx: &rusqlite::Transaction<'_>,
    counts: &[OffenceCount],
    max_rows: usize,
) -> rusqlite::Result<()> {
    for c in counts {
        tx.prepare_cached(
            "INSERT INTO offence_counts (day, address, filter, user, jails, count, first, last)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (day, address, filter, user) DO UPDATE
             SET jails = excluded.jails, count = count + excluded.count,
                 first = min(first, excluded.first), last = max(last, excluded.last)",
        )?
        .execute(params![
            c.day,
            c.address.to_string(),
            &*c.filter,
            &*c.user,
            &*c.jails,
            i64::try_from(c.count).unwrap_or(i64::MAX),
            millis(c.first),
            millis(c.last)
        ])?;
    }
    let rows: i64 = tx
        .prepare_cached("SELECT COUNT(*) FROM offence_counts")?
        .query_row([], |r| r.get(0))?;
    let excess = rows - i64::try_from(max_rows).unwrap_or(i64::MAX);
    if excess > 0 {
        tx.prepare_cached(
            "DELETE FROM offence_counts WHERE rowid IN
             (SELECT rowid FROM offence_counts ORDER BY day, count, last LIMIT ?1)",
        )?
        .execute(params![excess])?;
    }
    Ok(())
}

/// Deletes the rows of days that ended before `before`.
pub(super) fn purge(conn: &rusqlite::Connection, before: SystemTime) -> rusqlite::Result<usize> {
    conn.execute(
        "DELETE FROM offence_counts WHERE day < ?1",
        params![day_of(before)],
    )
}

/// Every row, for reports and tests: (day, address, filter, user, jails, count,
/// first, last).
pub(super) fn read_all(conn: &rusqlite::Connection) -> rusqlite::Result<Vec<OffenceCount>> {
    let mut stmt = conn.prepare(
        "SELECT day, address, filter, user, jails, count, first, last FROM offence_counts
         ORDER BY day, address, filter, user",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, String>(4)?,
            r.get::<_, i64>(5)?,
            r.get::<_, i64>(6)?,
            r.get::<_, i64>(7)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (day, address, filter, user, jails, count, first, last) = row?;
        let Ok(address) = address.parse() else {
            continue;
        };
        out.push(OffenceCount {
            day,
            address,
            filter: filter.into(),
            user: user.into(),
            jails: jails.into(),
            count: u64::try_from(count).unwrap_or(0),
            first: from_millis(first),
            last: from_millis(last),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn t(s: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(s)
    }

    #[test]
    fn tally_folds_offences_per_day_address_filter_user() {
        let mut tally = Tally::new(100);
        let sshd: Arc<str> = Arc::from("sshd");
        let a: IpAddr = "192.0.2.1".parse().expect("addr");
        let b: IpAddr = "2001:db8::1".parse().expect("addr");
        for i in 0..5 {
            tally.add(a, &sshd, Some("root"), t(1_000 + i));
        }
        tally.add(a, &sshd, Some("admin"), t(1_010));
        tally.add(a, &sshd, None, t(1_020));
        tally.add(b, &sshd, Some("root"), t(1_030));
        // The next day is a row of its own.
        tally.add(a, &sshd, Some("root"), t(86_400 + 5));
        assert_eq!(tally.len(), 5);
        let mut rows = tally.take(|f| format!("jail-of-{f}"));
        rows.sort_by(|x, y| (x.day, x.address, &x.user).cmp(&(y.day, y.address, &y.user)));
        let root = rows
            .iter()
            .find(|r| r.day == 0 && r.address == a && &*r.user == "root")
            .expect("row");
        assert_eq!((root.count, root.first, root.last), (5, t(1_000), t(1_004)));
        assert_eq!(&*root.jails, "jail-of-sshd");
        assert!(rows.iter().any(|r| r.day == 0 && r.user.is_empty()));
        assert!(rows.iter().any(|r| r.day == 1 && r.count == 1));
        assert!(tally.is_empty());
    }

    #[test]
    fn tally_says_when_it_is_full() {
        let mut tally = Tally::new(3);
        let f: Arc<str> = Arc::from("f");
        let mut full = false;
        for i in 0..3u8 {
            full = tally.add(IpAddr::from([192, 0, 2, i]), &f, None, t(0));
        }
        assert!(full);
        // The same key again does not grow it.
        let mut tally = Tally::new(2);
        for _ in 0..100 {
            assert!(!tally.add(IpAddr::from([192, 0, 2, 1]), &f, None, t(0)));
        }
    }

    #[test]
    fn days_before_the_epoch_round_down() {
        assert_eq!(day_of(t(0)), 0);
        assert_eq!(day_of(t(86_399)), 0);
        assert_eq!(day_of(t(86_400)), 1);
        assert_eq!(day_of(UNIX_EPOCH - Duration::from_secs(1)), -1);
    }
}
