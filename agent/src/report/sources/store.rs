//! The agent's state database, read-only: one ban event per row of
//! `ban_history` (an extended ban is one row, as the agent counts it for
//! escalation) and an unban event when the row was closed, with the `user`
//! capture of the offence behind the ban; and one `Found` event per row of
//! `offence_counts` (schema 6 on), standing for that row's count, timed at its
//! last offence, filed under the jails its filter fed (comma separated).
//!
//! It is opened read-only so a report never migrates, locks or creates the
//! database of a running agent; WAL mode lets it read while the agent writes.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, params};

use super::super::model::{Civil, Event, Events, Kind, Range, civil_of};
use crate::filter::Captures;
use crate::store::DB_FILE;

/// Why the database could not be read.
#[derive(Debug, thiserror::Error)]
pub enum StoreReadError {
    /// No database there.
    #[error("no state database at {path} (is agent.state_dir right? give --state-dir or --config)")]
    Missing {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// SQLite failed.
    #[error("cannot read the state database {path}: {source}")]
    Sqlite {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: rusqlite::Error,
    },
}

/// Reads the ban history under `state_dir` into `out`, keeping what `range` holds.
pub fn read(
    state_dir: &Path,
    range: &Range,
    zone: &jiff::tz::TimeZone,
    out: &mut Events,
) -> Result<(), StoreReadError> {
    let path = state_dir.join(DB_FILE);
    if !path.exists() {
        return Err(StoreReadError::Missing { path });
    }
    let err = |source| StoreReadError::Sqlite {
        path: path.clone(),
        source,
    };
    let conn = open(&path).map_err(err)?;
    // `reason` (the filter) exists from schema 4 on.
    let has_reason: bool = conn
        .query_row(
            "SELECT COUNT(*) FROM pragma_table_info('ban_history') WHERE name = 'reason'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .map_err(err)?
        > 0;
    let has = |table: &str, column: &str| -> Result<bool, StoreReadError> {
        conn.query_row(
            "SELECT COUNT(*) FROM pragma_table_info(?1) WHERE name = ?2",
            params![table, column],
            |r| r.get::<_, i64>(0),
        )
        .map(|n| n > 0)
        .map_err(err)
    };
    // `captures` and the offence counts exist from schema 6 on.
    let has_captures = has("ban_history", "captures")?;
    let sql = format!(
        "SELECT target, jail, since, ended, {}, {} FROM ban_history ORDER BY since, id",
        if has_reason { "reason" } else { "NULL" },
        if has_captures { "captures" } else { "NULL" }
    );
    let mut stmt = conn.prepare(&sql).map_err(err)?;
    let mut rows = stmt.query(params![]).map_err(err)?;
    let civil = |ms: i64| -> Civil {
        let ts = jiff::Timestamp::from_millisecond(ms).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        civil_of(ts, zone)
    };
    while let Some(row) = rows.next().map_err(err)? {
        out.lines += 1;
        let target: String = row.get(0).map_err(err)?;
        let Ok(target) = target.parse::<ipnet::IpNet>() else {
            out.malformed += 1;
            continue;
        };
        let jail: String = row.get(1).map_err(err)?;
        let since: i64 = row.get(2).map_err(err)?;
        let ended: Option<i64> = row.get(3).map_err(err)?;
        let reason: Option<String> = row.get(4).map_err(err)?;
        let captures: Option<String> = row.get(5).map_err(err)?;
        let jail = out.jails.intern(&jail);
        let filter = reason.as_deref().map(|f| out.filters.intern(f));
        let user = captures
            .as_deref()
            .map(Captures::from_json)
            .and_then(|c| c.user().map(|u| out.users.intern(u)));
        let mut event = Event {
            time: civil(since),
            kind: Kind::Ban,
            target,
            jail,
            filter,
            user,
            count: 1,
        };
        out.push(range, event);
        if let Some(ended) = ended {
            event.time = civil(ended);
            event.kind = Kind::Unban;
            out.push(range, event);
        }
    }
    drop(rows);
    drop(stmt);
    if has("offence_counts", "count")? {
        read_offences(&conn, range, &civil, out).map_err(err)?;
    }
    Ok(())
}

/// The `offence_counts` rows as `Found` events.
fn read_offences(
    conn: &Connection,
    range: &Range,
    civil: &dyn Fn(i64) -> Civil,
    out: &mut Events,
) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare(
        "SELECT address, filter, user, jails, count, last FROM offence_counts
         ORDER BY day, last",
    )?;
    let mut rows = stmt.query(params![])?;
    while let Some(row) = rows.next()? {
        out.lines += 1;
        let address: String = row.get(0)?;
        let Ok(addr) = address.parse::<std::net::IpAddr>() else {
            out.malformed += 1;
            continue;
        };
        let filter: String = row.get(1)?;
        let user: String = row.get(2)?;
        let jails: String = row.get(3)?;
        let count: i64 = row.get(4)?;
        let last: i64 = row.get(5)?;
        let event = Event {
            time: civil(last),
            kind: Kind::Found,
            target: ipnet::IpNet::from(addr),
            jail: out.jails.intern(&jails),
            filter: Some(out.filters.intern(&filter)),
            user: (!user.is_empty()).then(|| out.users.intern(&user)),
            count: u32::try_from(count.max(0)).unwrap_or(u32::MAX),
        };
        out.push(range, event);
    }
    Ok(())
}

fn open(path: &Path) -> rusqlite::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    match Connection::open_with_flags(path, flags) {
        Ok(c) => match c.query_row("SELECT COUNT(*) FROM ban_history", [], |r| {
            r.get::<_, i64>(0)
        }) {
            Ok(_) => Ok(c),
            // A reader without write access to the directory cannot create the
            // WAL index; an immutable read of the file itself still works.
            Err(_) => immutable(path),
        },
        Err(_) => immutable(path),
    }
}

fn immutable(path: &Path) -> rusqlite::Result<Connection> {
    let uri = format!("file:{}?immutable=1", path.display());
    Connection::open_with_flags(
        uri,
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Ban, BanReason, Decision, Origin};
    use crate::store::{Batch, Store};
    use std::sync::Arc;
    use std::time::{Duration, UNIX_EPOCH};

    fn ban(target: &str, jail: &str, at: u64) -> Ban {
        let since = UNIX_EPOCH + Duration::from_secs(at);
        Ban {
            target: target.parse().expect("target"),
            jail: Arc::from(jail),
            since,
            until: Some(since + Duration::from_secs(3600)),
            origin: Origin::Jail,
            reason: Some(BanReason {
                filter: Arc::from("sshd"),
                first_offence: since,
                last_offence: since,
                captures: Default::default(),
            }),
            forced: false,
        }
    }

    #[test]
    fn history_rows_become_bans_and_unbans_in_local_time() {
        let dir = tempfile::tempdir().expect("tempdir");
        let t0 = 1_764_547_200; // 2025-12-01T00:00:00Z
        {
            let mut store = Store::open(dir.path()).expect("store");
            let a = ban("192.0.2.1/32", "ssh", t0);
            store
                .write(Batch::at(UNIX_EPOCH).decisions(&[Decision::Ban(a.clone())]))
                .expect("ban");
            store
                .write(
                    Batch::at(UNIX_EPOCH + Duration::from_secs(t0 + 60))
                        .decisions(&[Decision::Unban(a)]),
                )
                .expect("unban");
            store
                .write(Batch::at(UNIX_EPOCH).decisions(&[Decision::Ban(ban(
                    "203.0.113.0/24",
                    "web",
                    t0 + 86_400,
                ))]))
                .expect("ban");
        }
        let zone = jiff::tz::TimeZone::fixed(jiff::tz::offset(2));
        let mut ev = Events::default();
        read(dir.path(), &Range::default(), &zone, &mut ev).expect("read");
        let got: Vec<(Kind, String, &str, Option<&str>, String)> = ev
            .events
            .iter()
            .map(|e| {
                (
                    e.kind,
                    e.target.to_string(),
                    ev.jails.get(e.jail),
                    e.filter.map(|f| ev.filters.get(f)),
                    crate::report::model::time_text(e.time),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    Kind::Ban,
                    "192.0.2.1/32".into(),
                    "ssh",
                    Some("sshd"),
                    "2025-12-01 02:00:00".into()
                ),
                (
                    Kind::Unban,
                    "192.0.2.1/32".into(),
                    "ssh",
                    Some("sshd"),
                    "2025-12-01 02:01:00".into()
                ),
                (
                    Kind::Ban,
                    "203.0.113.0/24".into(),
                    "web",
                    Some("sshd"),
                    "2025-12-02 02:00:00".into()
                ),
            ]
        );
        // A range keeps what falls inside it.
        let mut ev = Events::default();
        let since = crate::report::model::days_from_civil(2025, 12, 2) * crate::report::model::DAY;
        read(
            dir.path(),
            &Range {
                since: Some(since),
                until: None,
            },
            &zone,
            &mut ev,
        )
        .expect("read");
        assert_eq!(ev.events.len(), 1);
    }

    #[test]
    fn a_missing_database_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = read(
            dir.path(),
            &Range::default(),
            &jiff::tz::TimeZone::UTC,
            &mut Events::default(),
        )
        .expect_err("missing");
        assert!(err.to_string().contains("no state database at"), "{err}");
        assert!(
            !dir.path().join(DB_FILE).exists(),
            "the report created the database"
        );
    }
}
