//! The agent's database read from outside: `PRAGMA integrity_check` on the file a
//! kill left behind, and the active ban rows (target, deadline) to compare with what
//! the kernel enforced.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;

use anyhow::{Context, Result};
use rusqlite::{Connection, OpenFlags};

/// The database's name under `state_dir` (`log2drop::store::DB_FILE`).
pub const DB_FILE: &str = log2drop::store::DB_FILE;

/// Result of the integrity check of a crashed database.
#[derive(Debug, PartialEq, Eq)]
pub enum Integrity {
    /// No database yet (the agent was killed before it created one).
    NoDatabase,
    /// `ok`.
    Ok,
    /// Anything else, with what SQLite said.
    Damaged(String),
}

/// Opens the database as the agent would after a crash (read-write, so a WAL left
/// by the kill is recovered as at the agent's next start) and runs
/// `PRAGMA integrity_check`. Only while no agent runs.
pub fn integrity(state_dir: &Path) -> Result<Integrity> {
    let path = state_dir.join(DB_FILE);
    if !path.exists() {
        return Ok(Integrity::NoDatabase);
    }
    let conn = Connection::open_with_flags(
        &path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("opening {}", path.display()))?;
    let mut stmt = conn
        .prepare("PRAGMA integrity_check")
        .with_context(|| format!("integrity check of {}", path.display()))?;
    let rows: Vec<String> = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .and_then(|rows| rows.collect())
        .with_context(|| format!("integrity check of {}", path.display()))?;
    Ok(if rows == ["ok"] {
        Integrity::Ok
    } else {
        Integrity::Damaged(rows.join("; "))
    })
}

/// The active ban rows: address (single-address targets only; the soak bans
/// nothing else) to deadline in milliseconds since the epoch (`None` = permanent).
/// Read-only, so it can run next to a live agent. An empty map when there is no
/// database yet.
pub fn ban_rows(state_dir: &Path) -> Result<HashMap<IpAddr, Option<i64>>> {
    let path = state_dir.join(DB_FILE);
    if !path.exists() {
        return Ok(HashMap::new());
    }
    let conn = Connection::open_with_flags(
        &path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("opening {} read-only", path.display()))?;
    conn.busy_timeout(std::time::Duration::from_secs(30))
        .context("setting a busy timeout")?;
    // A kill between the file's creation and the first migration leaves no table.
    let has_table: bool = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'bans'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .map(|n| n > 0)
        .with_context(|| format!("reading the schema of {}", path.display()))?;
    if !has_table {
        return Ok(HashMap::new());
    }
    let mut stmt = conn
        .prepare("SELECT target, until FROM bans")
        .with_context(|| format!("reading the bans of {}", path.display()))?;
    let rows: Vec<(String, Option<i64>)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .and_then(|rows| rows.collect())
        .with_context(|| format!("reading the bans of {}", path.display()))?;
    let mut out = HashMap::with_capacity(rows.len());
    for (target, until) in rows {
        let addr = target.split('/').next().unwrap_or(&target);
        let addr: IpAddr = addr
            .parse()
            .with_context(|| format!("ban row with target {target:?} in {}", path.display()))?;
        out.insert(addr, until);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_database_is_no_database_and_no_rows() {
        let dir = tempfile::tempdir().expect("temp dir");
        assert_eq!(
            integrity(dir.path()).expect("checked"),
            Integrity::NoDatabase
        );
        assert!(ban_rows(dir.path()).expect("read").is_empty());
    }

    #[test]
    fn a_database_without_the_schema_yet_has_no_rows() {
        let dir = tempfile::tempdir().expect("temp dir");
        Connection::open(dir.path().join(DB_FILE)).expect("created");
        assert!(ban_rows(dir.path()).expect("read").is_empty());
        assert_eq!(integrity(dir.path()).expect("checked"), Integrity::Ok);
    }

    #[test]
    fn a_store_written_by_the_agent_library_checks_ok_and_lists_its_bans() {
        use log2drop::engine::{Ban, Decision, Origin};
        use log2drop::store::{Batch, Store};
        use std::time::{Duration, SystemTime};
        let dir = tempfile::tempdir().expect("temp dir");
        let now = SystemTime::now();
        let until = now + Duration::from_secs(60);
        {
            let mut store = Store::open(dir.path()).expect("store");
            let ban = Ban {
                target: "192.0.2.9".parse::<IpAddr>().expect("addr").into(),
                jail: "b3".into(),
                since: now,
                until: Some(until),
                origin: Origin::Manual,
                reason: None,
                forced: false,
                node: None,
            };
            store
                .write(Batch::at(now).decisions(&[Decision::Ban(ban)]))
                .expect("written");
        }
        assert_eq!(integrity(dir.path()).expect("checked"), Integrity::Ok);
        let rows = ban_rows(dir.path()).expect("read");
        let ms = until
            .duration_since(SystemTime::UNIX_EPOCH)
            .expect("after epoch")
            .as_millis() as i64;
        assert_eq!(
            rows.get(&"192.0.2.9".parse().expect("addr")),
            Some(&Some(ms))
        );
    }

    #[test]
    fn a_damaged_database_is_reported() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join(DB_FILE);
        {
            let conn = Connection::open(&path).expect("created");
            conn.execute_batch(
                "CREATE TABLE bans (target TEXT PRIMARY KEY, until INTEGER);
                 CREATE INDEX bans_until ON bans (until);",
            )
            .expect("schema");
            conn.execute_batch("BEGIN").expect("begin");
            for i in 0..2000 {
                conn.execute(
                    "INSERT INTO bans VALUES (?1, ?2)",
                    rusqlite::params![format!("2001:db8::{i:x}/128"), i],
                )
                .expect("row");
            }
            conn.execute_batch("COMMIT").expect("commit");
        }
        // Overwrite a page in the middle of the file: the index no longer matches.
        let mut bytes = std::fs::read(&path).expect("read");
        let page = 4096;
        let mid = (bytes.len() / page / 2) * page;
        for b in &mut bytes[mid + 100..mid + 400] {
            *b = 0x5a;
        }
        std::fs::write(&path, bytes).expect("write");
        match integrity(dir.path()) {
            Ok(Integrity::Damaged(_)) | Err(_) => {}
            other => panic!("a damaged page passed the check: {other:?}"),
        }
    }
}
