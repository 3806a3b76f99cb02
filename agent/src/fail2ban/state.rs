//! fail2ban's ban database (`/var/lib/fail2ban/fail2ban.sqlite3`) brought into
//! log2drop's store, so bans still running stay in force and escalation counts
//! the bans fail2ban already gave.
//!
//! fail2ban keeps every ban in `bans(jail, ip, timeofban, bantime, bancount,
//! data)` (`bantime` -1 = for ever) and the latest per address and jail in
//! `bips`; both are read (schema from fail2ban's `database.py`).

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ipnet::IpNet;
use rusqlite::{Connection, OpenFlags};

use crate::engine::{Ban, Decision, Origin};
use crate::store::{Batch, Store};

/// Why the database could not be imported.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// fail2ban's database cannot be read.
    #[error("{path}: {source}")]
    Read {
        /// The database.
        path: String,
        /// SQLite's explanation.
        #[source]
        source: rusqlite::Error,
    },
    /// log2drop's store refused a write.
    #[error("log2drop state: {0}")]
    Store(#[from] crate::store::StoreError),
}

/// What was brought over.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct StateImport {
    /// Bans still running, now in log2drop's store.
    pub active: usize,
    /// Ended bans added to the history.
    pub history: usize,
    /// Rows whose address is not an address (fail2ban can ban failure ids).
    pub skipped: usize,
}

struct Row {
    jail: String,
    ip: String,
    since: i64,
    bantime: i64,
}

fn time(secs: i64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs.max(0) as u64)
}

/// Copies fail2ban's bans into `store`; only jails in `jails` (the imported
/// ones) are taken unless it is empty.
pub fn import_state(
    db: &Path,
    store: &mut Store,
    jails: &BTreeSet<String>,
    now: SystemTime,
) -> Result<StateImport, StateError> {
    let read = |source| StateError::Read {
        path: db.display().to_string(),
        source,
    };
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(read)?;
    let mut rows = Vec::new();
    for table in ["bans", "bips"] {
        let mut stmt = conn
            .prepare(&format!(
                "SELECT jail, ip, timeofban, bantime FROM {table} ORDER BY timeofban"
            ))
            .map_err(read)?;
        let it = stmt
            .query_map([], |r| {
                Ok(Row {
                    jail: r.get(0)?,
                    ip: r.get::<_, Option<String>>(1)?.unwrap_or_default(),
                    since: r.get(2)?,
                    bantime: r.get(3)?,
                })
            })
            .map_err(read)?;
        for row in it {
            rows.push(row.map_err(read)?);
        }
    }
    // `bips` repeats the latest row of `bans`; keep each ban once.
    rows.sort_by(|a, b| (a.since, &a.ip, &a.jail).cmp(&(b.since, &b.ip, &b.jail)));
    rows.dedup_by(|a, b| a.since == b.since && a.ip == b.ip && a.jail == b.jail);
    let now_secs = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let mut out = StateImport::default();
    for row in rows {
        if !jails.is_empty() && !jails.contains(&row.jail) {
            continue;
        }
        let Some(addr) = crate::addr::parse_ip(row.ip.as_bytes()) else {
            out.skipped += 1;
            continue;
        };
        let until = (row.bantime >= 0).then(|| row.since.saturating_add(row.bantime));
        let ban = Ban {
            target: IpNet::from(addr),
            jail: Arc::from(row.jail.as_str()),
            since: time(row.since),
            until: until.map(time),
            origin: Origin::Jail,
            reason: None,
            forced: false,
            node: None,
        };
        let running = until.is_none_or(|u| u > now_secs);
        store.write(Batch::at(time(row.since)).decisions(&[Decision::Ban(ban.clone())]))?;
        if running {
            out.active += 1;
        } else {
            // Ended when its time ran out.
            store.write(
                Batch::at(time(until.unwrap_or(now_secs))).decisions(&[Decision::Unban(ban)]),
            )?;
            out.history += 1;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// fail2ban's own schema (database.py, version 4).
    const SCHEMA: &str = "
        CREATE TABLE fail2banDb(version INTEGER);
        CREATE TABLE jails(name TEXT NOT NULL UNIQUE, enabled INTEGER NOT NULL DEFAULT 1);
        CREATE TABLE logs(jail TEXT NOT NULL, path TEXT, firstlinemd5 TEXT, lastfilepos INTEGER DEFAULT 0,
            FOREIGN KEY(jail) REFERENCES jails(name) ON DELETE CASCADE, UNIQUE(jail, path), UNIQUE(jail, path, firstlinemd5));
        CREATE TABLE bans(jail TEXT NOT NULL, ip TEXT, timeofban INTEGER NOT NULL, bantime INTEGER NOT NULL,
            bancount INTEGER NOT NULL default 1, data JSON, FOREIGN KEY(jail) REFERENCES jails(name));
        CREATE TABLE bips(ip TEXT NOT NULL, jail TEXT NOT NULL, timeofban INTEGER NOT NULL, bantime INTEGER NOT NULL,
            bancount INTEGER NOT NULL default 1, data JSON, PRIMARY KEY(ip, jail), FOREIGN KEY(jail) REFERENCES jails(name));
        INSERT INTO fail2banDb(version) VALUES (4);
    ";

    #[test]
    fn active_bans_and_history_come_over() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("fail2ban.sqlite3");
        let c = Connection::open(&db).unwrap();
        c.execute_batch(SCHEMA).unwrap();
        let now = 1_700_000_000i64;
        let ins = |t: &str, jail: &str, ip: &str, at: i64, bt: i64, n: i64| {
            let sql = if t == "bans" {
                "INSERT INTO bans(jail, ip, timeofban, bantime, bancount, data) VALUES (?1, ?2, ?3, ?4, ?5, '{}')"
            } else {
                "INSERT INTO bips(jail, ip, timeofban, bantime, bancount, data) VALUES (?1, ?2, ?3, ?4, ?5, '{}')"
            };
            c.execute(sql, rusqlite::params![jail, ip, at, bt, n])
                .unwrap();
        };
        c.execute("INSERT INTO jails(name) VALUES ('sshd'), ('other')", [])
            .unwrap();
        // Two old bans of one address, then a running one (also in bips).
        ins("bans", "sshd", "192.0.2.1", now - 86_400 * 3, 600, 1);
        ins("bans", "sshd", "192.0.2.1", now - 86_400 * 2, 1200, 2);
        ins("bans", "sshd", "192.0.2.1", now - 100, 2400, 3);
        ins("bips", "sshd", "192.0.2.1", now - 100, 2400, 3);
        // A permanent ban, a jail not imported, and a failure id that is no address.
        ins("bans", "sshd", "2001:db8::7", now - 50, -1, 1);
        ins("bans", "other", "198.51.100.2", now - 10, 600, 1);
        ins("bans", "sshd", "user@example.org", now - 10, 600, 1);
        drop(c);

        let state = tempfile::tempdir().unwrap();
        let mut store = Store::open(state.path()).unwrap();
        let jails: BTreeSet<String> = ["sshd".to_owned()].into();
        let r = import_state(&db, &mut store, &jails, time(now)).unwrap();
        assert_eq!(
            r,
            StateImport {
                active: 2,
                history: 2,
                skipped: 1
            }
        );
        let active = store.active_bans(time(now)).unwrap();
        assert_eq!(active.len(), 2);
        let v4 = active
            .iter()
            .find(|b| b.target == "192.0.2.1/32".parse::<IpNet>().unwrap())
            .unwrap();
        assert_eq!(v4.until, Some(time(now - 100 + 2400)));
        assert!(
            active
                .iter()
                .any(|b| b.target == "2001:db8::7/128".parse::<IpNet>().unwrap()
                    && b.until.is_none())
        );
        // Escalation sees all three bans of 192.0.2.1.
        let n = store
            .ban_count_since(&"192.0.2.1/32".parse().unwrap(), time(now - 86_400 * 10))
            .unwrap();
        assert_eq!(n, 3);
    }
}
