//! Durable state: active bans, ban history and source positions in one SQLite
//! database (`STATE_DIR/log2drop.db`, WAL mode).
//!
//! The daemon's commit thread records every decision batch here before it reaches
//! any backend, together with the source positions read up to it, in one
//! transaction ([`Store::write`]), so a crash can lose at most offences that had
//! not yet turned into a ban (their lines are read again after the restart), never
//! an enforced ban. Batches that queue up while one is being synced are merged into
//! the next transaction, so the sync cost is paid per batch, not per offence. On
//! start the active bans come back from here and are reconciled into the kernel.
//!
//! The history of bans (one row per ban, closed when it ends) is what escalation of
//! repeat offenders counts ([`Store::ban_history_since`]); rows older than
//! `agent.history_retention` are purged ([`Store::purge_history`]).
//!
//! Offence counts per address, filter, user and day are kept apart from the
//! decisions, aggregated and bounded ([`offences`]): they come in one small
//! transaction every 15 seconds ([`Store::add_offences`]).
//!
//! Times are stored as milliseconds since the Unix epoch; targets in their
//! canonical `ADDR/LEN` form so one target has exactly one row.

pub mod offences;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ipnet::IpNet;
use rusqlite::{Connection, OptionalExtension, params};

use crate::engine::{Ban, BanReason, Decision, HistoryEntry, Origin, ScheduleChange, ScheduledBan};
use crate::filter::Captures;
use crate::source::file::FilePosition;
use crate::source::{Positions, SourcePosition};
pub use offences::OffenceCount;

/// Database file name under the state directory.
pub const DB_FILE: &str = "log2drop.db";

/// Schema version this code writes. Each step in [`MIGRATIONS`] brings the schema
/// from its index to the next version.
pub const SCHEMA_VERSION: i64 = 7;

/// Schema steps; `MIGRATIONS[i]` upgrades version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    "
    CREATE TABLE bans (
        target TEXT PRIMARY KEY,
        jail   TEXT NOT NULL,
        since  INTEGER NOT NULL,
        until  INTEGER,
        origin TEXT NOT NULL
    );
    CREATE TABLE ban_history (
        id     INTEGER PRIMARY KEY,
        target TEXT NOT NULL,
        jail   TEXT NOT NULL,
        since  INTEGER NOT NULL,
        until  INTEGER,
        origin TEXT NOT NULL,
        ended  INTEGER
    );
    CREATE INDEX ban_history_target ON ban_history (target, since);
    CREATE TABLE offsets (
        source TEXT PRIMARY KEY,
        dev    INTEGER NOT NULL,
        inode  INTEGER NOT NULL,
        offset INTEGER NOT NULL
    );
",
    // 2: fingerprint of a followed file's first bytes, so a reused inode is not
    // mistaken for the file the offset belongs to. Rows from version 1 get an
    // empty fingerprint (they resume on inode and size alone, as before).
    "
    ALTER TABLE offsets ADD COLUMN fingerprint_len INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE offsets ADD COLUMN fingerprint INTEGER NOT NULL DEFAULT -3750763034362895579;
",
    // 3: journal cursors of journal sources, by source name.
    "
    CREATE TABLE cursors (
        source TEXT PRIMARY KEY,
        cursor TEXT NOT NULL
    );
",
    // 4: what led to a ban (the filter, the first and last offence counted), bans
    // forced over the allowlist, and an index for history look-back and purge.
    // Rows from version 3 have no reason (shown as unknown) and are not forced.
    "
    ALTER TABLE bans ADD COLUMN reason TEXT;
    ALTER TABLE bans ADD COLUMN first_offence INTEGER;
    ALTER TABLE bans ADD COLUMN last_offence INTEGER;
    ALTER TABLE bans ADD COLUMN forced INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE ban_history ADD COLUMN reason TEXT;
    CREATE INDEX ban_history_since ON ban_history (since);
    CREATE INDEX ban_history_ended ON ban_history (ended);
",
    // 5: the followed file's modification time when its position was saved, so a
    // copy of it made while the agent was down (copytruncate) is told from older
    // rotated files. Rows from version 4 get 0 (unknown).
    "
    ALTER TABLE offsets ADD COLUMN mtime INTEGER NOT NULL DEFAULT 0;
",
    // 6: bans `ban_delay` scheduled and not yet in force, by tracking key and
    // jail, so a restart neither forgets them nor restarts their clock.
    "
    CREATE TABLE scheduled_bans (
        key           TEXT NOT NULL,
        jail          TEXT NOT NULL,
        due           INTEGER NOT NULL,
        target        TEXT NOT NULL,
        filter        TEXT NOT NULL,
        first_offence INTEGER NOT NULL,
        last_offence  INTEGER NOT NULL,
        PRIMARY KEY (key, jail)
    );
",
    // 7: a jail ban's named captures (JSON object, bounded), and offence counts
    // per UTC day, address, filter and `user` capture ('' when none), bounded by
    // agent.offence_rows (see `offences`). Rows from version 6 have no captures.
    "
    ALTER TABLE bans ADD COLUMN captures TEXT;
    ALTER TABLE ban_history ADD COLUMN captures TEXT;
    CREATE TABLE offence_counts (
        day     INTEGER NOT NULL,
        address TEXT NOT NULL,
        filter  TEXT NOT NULL,
        user    TEXT NOT NULL,
        jails   TEXT NOT NULL,
        count   INTEGER NOT NULL,
        first   INTEGER NOT NULL,
        last    INTEGER NOT NULL,
        UNIQUE (day, address, filter, user)
    );
",
];

/// Errors of the state database.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The state directory (or a file in it) is not safe to trust, or could not be
    /// created.
    #[error("state directory: {0}")]
    Dir(#[from] crate::private_dir::DirError),
    /// The database file's mode could not be set.
    #[error("cannot create or set the mode of {path}: {source}")]
    FileMode {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// SQLite failed.
    #[error("state database {path}: {source}")]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// Why.
        #[source]
        source: rusqlite::Error,
    },
    /// The database was written by a newer log2drop.
    #[error(
        "state database {path} has schema version {found}, newer than this log2drop ({supported}); upgrade log2drop or move the file away"
    )]
    TooNew {
        /// The database file.
        path: PathBuf,
        /// Version found.
        found: i64,
        /// Newest version this code knows.
        supported: i64,
    },
    /// A row holds something this code cannot read back.
    #[error("state database {path}: bad value {value:?} in {column}")]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// The column.
        column: &'static str,
        /// The value found.
        value: String,
    },
}

/// The open state database.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

impl Store {
    /// Opens (creating if needed) `state_dir/log2drop.db` and migrates its schema.
    ///
    /// The directory is made (0700, whatever the umask) and checked with
    /// [`crate::private_dir`]: whoever can write it could swap the database and
    /// have the agent restore any ban. The database holds the ban list the control
    /// socket shows only to root, so it is created 0600, and an existing one (with
    /// its journal files) is set to 0600 after checking it is root's.
    pub fn open(state_dir: &Path) -> Result<Store, StoreError> {
        crate::private_dir::ensure(state_dir, 0o700, None)?;
        let path = state_dir.join(DB_FILE);
        private_file(&path)?;
        let conn = Connection::open(&path).map_err(|source| StoreError::Sqlite {
            path: path.clone(),
            source,
        })?;
        let mut store = Store { conn, path };
        store.init()?;
        Ok(store)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn sql(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        |source| StoreError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    fn init(&mut self) -> Result<(), StoreError> {
        let path = self.path.clone();
        let sql = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        // WAL keeps readers (reports) off the writer's back; FULL sync makes a
        // committed ban survive power loss, which matters more than write speed
        // for batches this small.
        self.conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0))
            .map_err(sql)?;
        self.conn
            .execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")
            .map_err(sql)?;
        self.conn
            .busy_timeout(Duration::from_secs(5))
            .map_err(sql)?;
        migrate(&mut self.conn, &self.path)
    }

    /// The schema version in the file.
    #[cfg(test)]
    pub(crate) fn schema_version(&self) -> Result<i64, StoreError> {
        read_version(&self.conn).map_err(self.sql())
    }

    /// Writes `w` in one transaction: decisions (a ban upserts the active row
    /// and opens or extends its history row; an unban deletes the active row and
    /// closes its history row at `w.now`) and the source positions read up to
    /// them. After a crash either all of it is there or none is, so the lines
    /// behind a lost decision are read again. This is the store's only write
    /// path: new kinds of state join [`Batch`] rather than adding another.
    pub fn write(&mut self, w: Batch<'_>) -> Result<(), StoreError> {
        let path = self.path.clone();
        let sql = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(sql)?;
        for d in w.decisions {
            match d {
                Decision::Ban(b) => record_ban(&tx, b).map_err(sql)?,
                Decision::Unban(b) => record_unban(&tx, b, w.now).map_err(sql)?,
            }
        }
        for p in w.positions {
            write_position(&tx, p).map_err(sql)?;
        }
        for c in w.scheduled {
            write_schedule_change(&tx, c).map_err(sql)?;
        }
        tx.commit().map_err(sql)
    }

    /// Bans still in force at `now` (permanent ones included).
    pub fn active_bans(&self, now: SystemTime) -> Result<Vec<Ban>, StoreError> {
        let mut out = Vec::new();
        self.for_each_active_ban(now, |b| out.push(b))?;
        Ok(out)
    }

    /// [`Store::active_bans`] one at a time, oldest first, without holding them
    /// all: a restart with a million bans hands each straight to the engine.
    pub(crate) fn for_each_active_ban(
        &self,
        now: SystemTime,
        each: impl FnMut(Ban),
    ) -> Result<(), StoreError> {
        self.for_each_ban_where("until IS NULL OR until > ?1", now, each)
    }

    /// The stored bans whose deadline passed by `now` (while the agent was down),
    /// one at a time, before [`Store::prune_expired`] deletes them: their unban
    /// hooks still have to run.
    pub(crate) fn for_each_expired_ban(
        &self,
        now: SystemTime,
        each: impl FnMut(Ban),
    ) -> Result<(), StoreError> {
        self.for_each_ban_where("until IS NOT NULL AND until <= ?1", now, each)
    }

    fn for_each_ban_where(
        &self,
        condition: &str,
        now: SystemTime,
        mut each: impl FnMut(Ban),
    ) -> Result<(), StoreError> {
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT target, jail, since, until, origin, reason, first_offence,
                        last_offence, forced, captures
                 FROM bans WHERE {condition} ORDER BY since, target"
            ))
            .map_err(self.sql())?;
        let rows = stmt
            .query_map(params![millis(now)], |r| {
                Ok((
                    (
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, Option<i64>>(3)?,
                        r.get::<_, String>(4)?,
                    ),
                    (
                        r.get::<_, Option<String>>(5)?,
                        r.get::<_, Option<i64>>(6)?,
                        r.get::<_, Option<i64>>(7)?,
                        r.get::<_, bool>(8)?,
                        r.get::<_, Option<String>>(9)?,
                    ),
                ))
            })
            .map_err(self.sql())?;
        let mut names = Names::default();
        for row in rows {
            let ((target, jail, since, until, origin), (reason, first, last, forced, captures)) =
                row.map_err(self.sql())?;
            let target: IpNet = target.parse().map_err(|_| StoreError::Corrupt {
                path: self.path.clone(),
                column: "bans.target",
                value: target.clone(),
            })?;
            let origin = parse_origin(&origin).ok_or_else(|| StoreError::Corrupt {
                path: self.path.clone(),
                column: "bans.origin",
                value: origin.clone(),
            })?;
            // A fleet ban keeps the node it came from where a jail ban keeps its
            // filter (see `record_ban`).
            let (reason, node) = if origin == Origin::Fleet {
                (None, reason.map(|n| names.get(&n)))
            } else {
                (reason, None)
            };
            let reason = match (reason, first, last) {
                (Some(filter), Some(first), Some(last)) => Some(BanReason {
                    filter: names.get(&filter),
                    first_offence: from_millis(first),
                    last_offence: from_millis(last),
                    captures: captures
                        .as_deref()
                        .map(Captures::from_json)
                        .unwrap_or_default(),
                }),
                _ => None,
            };
            each(Ban {
                target,
                jail: names.get(&jail),
                since: from_millis(since),
                until: until.map(from_millis),
                origin,
                reason,
                forced,
                node,
            });
        }
        Ok(())
    }

    /// Deletes active rows whose deadline passed (for example while the agent was
    /// down) and closes their history rows at their deadline. Returns how many.
    pub(crate) fn prune_expired(&mut self, now: SystemTime) -> Result<usize, StoreError> {
        let path = self.path.clone();
        let sql = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(sql)?;
        let now = millis(now);
        tx.execute(
            "UPDATE ban_history SET ended = until
             WHERE ended IS NULL AND until IS NOT NULL AND until <= ?1",
            params![now],
        )
        .map_err(sql)?;
        let n = tx
            .execute(
                "DELETE FROM bans WHERE until IS NOT NULL AND until <= ?1",
                params![now],
            )
            .map_err(sql)?;
        tx.commit().map_err(sql)?;
        Ok(n)
    }

    /// How many bans `target` received that started at or after `since` (for
    /// escalation of repeat offenders). Only the tests ask it now.
    #[cfg(test)]
    pub(crate) fn ban_count_since(
        &self,
        target: &IpNet,
        since: SystemTime,
    ) -> Result<u64, StoreError> {
        self.conn
            .query_row(
                "SELECT COUNT(*) FROM ban_history WHERE target = ?1 AND since >= ?2",
                params![target.to_string(), millis(since)],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| u64::try_from(n).unwrap_or(0))
            .map_err(self.sql())
    }

    /// Every ban (history row) that started at or after `since`, oldest first: what
    /// escalation of repeat offenders counts ([`crate::engine::Engine::restore_history`]).
    /// One row per ban (an extended ban is one row). Rows whose target does not
    /// parse are skipped with a warning.
    pub(crate) fn ban_history_since(
        &self,
        since: SystemTime,
    ) -> Result<Vec<HistoryEntry>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT target, jail, since FROM ban_history WHERE since >= ?1 ORDER BY since, id",
            )
            .map_err(self.sql())?;
        let rows = stmt
            .query_map(params![millis(since)], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })
            .map_err(self.sql())?;
        let mut names = Names::default();
        let mut out = Vec::new();
        for row in rows {
            let (target, jail, started) = row.map_err(self.sql())?;
            let Ok(target) = target.parse::<IpNet>() else {
                tracing::warn!(db = %self.path.display(), target, "skipping a history row with a bad target");
                continue;
            };
            out.push(HistoryEntry {
                target,
                jail: names.get(&jail),
                since: from_millis(started),
            });
        }
        Ok(out)
    }

    /// Deletes history rows of bans that ended before `before` (the retention
    /// horizon). Rows of bans still running are kept whatever their age. Returns
    /// how many went.
    pub(crate) fn purge_history(&mut self, before: SystemTime) -> Result<usize, StoreError> {
        self.conn
            .execute(
                "DELETE FROM ban_history WHERE ended IS NOT NULL AND ended < ?1",
                params![millis(before)],
            )
            .map_err(self.sql())
    }

    /// Rows in the ban history (for `stats`).
    pub(crate) fn history_len(&self) -> Result<u64, StoreError> {
        self.conn
            .query_row("SELECT COUNT(*) FROM ban_history", [], |r| {
                r.get::<_, i64>(0)
            })
            .map(|n| u64::try_from(n).unwrap_or(0))
            .map_err(self.sql())
    }

    /// Adds aggregated offence counts in one transaction and trims the table to
    /// `max_rows` (see [`offences`]).
    pub(crate) fn add_offences(
        &mut self,
        counts: &[OffenceCount],
        max_rows: usize,
    ) -> Result<(), StoreError> {
        let path = self.path.clone();
        let sql = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(sql)?;
        offences::write(&tx, counts, max_rows).map_err(sql)?;
        tx.commit().map_err(sql)
    }

    /// Every offence count row, oldest day first.
    pub fn offence_counts(&self) -> Result<Vec<OffenceCount>, StoreError> {
        offences::read_all(&self.conn).map_err(self.sql())
    }

    /// Deletes offence counts of days that ended before `before`; returns how
    /// many rows went.
    pub(crate) fn purge_offences(&mut self, before: SystemTime) -> Result<usize, StoreError> {
        offences::purge(&self.conn, before).map_err(self.sql())
    }

    /// Bans `ban_delay` scheduled and not yet in force, soonest first.
    pub fn scheduled_bans(&self) -> Result<Vec<ScheduledBan>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT key, jail, due, target, filter, first_offence, last_offence
                 FROM scheduled_bans ORDER BY due",
            )
            .map_err(self.sql())?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, i64>(6)?,
                ))
            })
            .map_err(self.sql())?;
        let mut names = Names::default();
        let mut out = Vec::new();
        for row in rows {
            let (key, jail, due, target, filter, first, last) = row.map_err(self.sql())?;
            let corrupt = |column: &'static str, value: &str| StoreError::Corrupt {
                path: self.path.clone(),
                column,
                value: value.to_owned(),
            };
            out.push(ScheduledBan {
                key: key
                    .parse()
                    .map_err(|_| corrupt("scheduled_bans.key", &key))?,
                jail: names.get(&jail),
                due: from_millis(due),
                target: target
                    .parse()
                    .map_err(|_| corrupt("scheduled_bans.target", &target))?,
                reason: BanReason {
                    filter: names.get(&filter),
                    first_offence: from_millis(first),
                    last_offence: from_millis(last),
                    captures: Captures::default(),
                },
            });
        }
        Ok(out)
    }

    /// Every saved source position: the one place a restart (or a source started
    /// by a reload) learns where to resume.
    pub fn positions(&self) -> Result<Positions, StoreError> {
        let mut out = Positions::default();
        let mut stmt = self
            .conn
            .prepare(
                "SELECT source, dev, inode, offset, fingerprint_len, fingerprint, mtime FROM offsets",
            )
            .map_err(self.sql())?;
        let rows = stmt
            .query_map([], |r| {
                Ok(SourcePosition::File {
                    path: PathBuf::from(r.get::<_, String>(0)?),
                    at: FilePosition {
                        // SQLite integers are i64; the bits round-trip unchanged.
                        dev: r.get::<_, i64>(1)? as u64,
                        inode: r.get::<_, i64>(2)? as u64,
                        offset: r.get::<_, i64>(3)? as u64,
                        fingerprint_len: r.get::<_, i64>(4)? as u64,
                        fingerprint: r.get::<_, i64>(5)? as u64,
                        mtime_ns: r.get(6)?,
                    },
                })
            })
            .map_err(self.sql())?;
        for row in rows {
            out.insert(row.map_err(self.sql())?);
        }
        let mut stmt = self
            .conn
            .prepare("SELECT source, cursor FROM cursors")
            .map_err(self.sql())?;
        let rows = stmt
            .query_map([], |r| {
                let source: String = r.get(0)?;
                let cursor: String = r.get(1)?;
                Ok(match source.strip_prefix(FLEET_CURSOR) {
                    Some(stream) => SourcePosition::Fleet {
                        stream: stream.to_owned(),
                        id: cursor,
                    },
                    None => SourcePosition::Journal { source, cursor },
                })
            })
            .map_err(self.sql())?;
        for row in rows {
            out.insert(row.map_err(self.sql())?);
        }
        Ok(out)
    }
}

/// What one [`Store::write`] transaction holds. Built with [`Batch::at`] and
/// the setters, so a new kind of state is one more field, not one more entry
/// point.
#[derive(Debug, Clone, Copy)]
pub struct Batch<'a> {
    /// Decisions, in order.
    pub decisions: &'a [Decision],
    /// Source positions read up to these decisions.
    pub positions: &'a [SourcePosition],
    /// Changes to the schedule of delayed bans, in order.
    pub scheduled: &'a [ScheduleChange],
    /// When the decisions were taken (closes history rows of unbans).
    pub now: SystemTime,
}

impl<'a> Batch<'a> {
    /// Nothing yet, at `now`.
    pub fn at(now: SystemTime) -> Self {
        Batch {
            decisions: &[],
            positions: &[],
            scheduled: &[],
            now,
        }
    }

    /// With these decisions.
    pub fn decisions(self, decisions: &'a [Decision]) -> Self {
        Batch { decisions, ..self }
    }

    /// With these positions.
    pub fn positions(self, positions: &'a [SourcePosition]) -> Self {
        Batch { positions, ..self }
    }

    /// With these changes to the schedule of delayed bans.
    pub fn scheduled(self, scheduled: &'a [ScheduleChange]) -> Self {
        Batch { scheduled, ..self }
    }
}

fn record_ban(tx: &rusqlite::Transaction<'_>, b: &Ban) -> rusqlite::Result<()> {
    let target = b.target.to_string();
    let since = millis(b.since);
    let until = b.until.map(millis);
    let origin = origin_str(b.origin);
    // The `reason` column holds a jail ban's filter, or the node a fleet ban
    // came from: one or the other, never both.
    let reason = b.reason.as_ref().map(|r| &*r.filter).or(b.node.as_deref());
    let first = b.reason.as_ref().map(|r| millis(r.first_offence));
    let last = b.reason.as_ref().map(|r| millis(r.last_offence));
    let captures = b
        .reason
        .as_ref()
        .filter(|r| !r.captures.is_empty())
        .map(|r| r.captures.to_json());
    tx.prepare_cached(
        "INSERT INTO bans (target, jail, since, until, origin, reason, first_offence,
                           last_offence, forced, captures)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
         ON CONFLICT (target) DO UPDATE
         SET jail = excluded.jail, since = excluded.since, until = excluded.until,
             origin = excluded.origin, reason = excluded.reason,
             first_offence = excluded.first_offence, last_offence = excluded.last_offence,
             forced = excluded.forced, captures = excluded.captures",
    )?
    .execute(params![
        target, &*b.jail, since, until, origin, reason, first, last, b.forced, captures
    ])?;
    // A history row left open by a ban that expired while nobody closed it ends at
    // its deadline; a still-running ban is extended rather than counted twice.
    tx.prepare_cached(
        "UPDATE ban_history SET ended = until
         WHERE target = ?1 AND ended IS NULL AND until IS NOT NULL AND until <= ?2",
    )?
    .execute(params![target, since])?;
    let extended = tx
        .prepare_cached(
            "UPDATE ban_history SET jail = ?2, until = ?3, origin = ?4, reason = ?5,
                 captures = ?6
             WHERE target = ?1 AND ended IS NULL",
        )?
        .execute(params![target, &*b.jail, until, origin, reason, captures])?;
    if extended == 0 {
        tx.prepare_cached(
            "INSERT INTO ban_history (target, jail, since, until, origin, ended, reason,
                                      captures)
             VALUES (?1, ?2, ?3, ?4, ?5, NULL, ?6, ?7)",
        )?
        .execute(params![
            target, &*b.jail, since, until, origin, reason, captures
        ])?;
    }
    Ok(())
}

fn record_unban(tx: &rusqlite::Transaction<'_>, b: &Ban, now: SystemTime) -> rusqlite::Result<()> {
    let target = b.target.to_string();
    tx.prepare_cached("DELETE FROM bans WHERE target = ?1")?
        .execute(params![target])?;
    tx.prepare_cached("UPDATE ban_history SET ended = ?2 WHERE target = ?1 AND ended IS NULL")?
        .execute(params![target, millis(now)])?;
    Ok(())
}

fn write_schedule_change(
    tx: &rusqlite::Transaction<'_>,
    c: &ScheduleChange,
) -> rusqlite::Result<()> {
    match c {
        ScheduleChange::Add(b) => {
            tx.prepare_cached(
                "INSERT INTO scheduled_bans (key, jail, due, target, filter, first_offence,
                                             last_offence)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (key, jail) DO UPDATE
                 SET due = excluded.due, target = excluded.target, filter = excluded.filter,
                     first_offence = excluded.first_offence,
                     last_offence = excluded.last_offence",
            )?
            .execute(params![
                b.key.to_string(),
                &*b.jail,
                millis(b.due),
                b.target.to_string(),
                &*b.reason.filter,
                millis(b.reason.first_offence),
                millis(b.reason.last_offence)
            ])?;
        }
        ScheduleChange::Remove { key, jail } => {
            tx.prepare_cached("DELETE FROM scheduled_bans WHERE key = ?1 AND jail = ?2")?
                .execute(params![key.to_string(), &**jail])?;
        }
    }
    Ok(())
}

fn write_position(tx: &rusqlite::Transaction<'_>, p: &SourcePosition) -> rusqlite::Result<()> {
    match p {
        SourcePosition::File { path, at } => {
            tx.prepare_cached(
                "INSERT INTO offsets (source, dev, inode, offset, fingerprint_len, fingerprint, mtime)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (source) DO UPDATE
                 SET dev = excluded.dev, inode = excluded.inode, offset = excluded.offset,
                     fingerprint_len = excluded.fingerprint_len,
                     fingerprint = excluded.fingerprint, mtime = excluded.mtime",
            )?
            .execute(params![
                path.to_string_lossy(),
                at.dev as i64,
                at.inode as i64,
                at.offset as i64,
                at.fingerprint_len as i64,
                at.fingerprint as i64,
                at.mtime_ns
            ])?;
        }
        SourcePosition::Journal { source, cursor } => {
            write_cursor(tx, source, cursor)?;
        }
        SourcePosition::Fleet { stream, id } => {
            write_cursor(tx, &format!("{FLEET_CURSOR}{stream}"), id)?;
        }
    }
    Ok(())
}

/// A fleet stream's last ID is kept in `cursors` under this prefix and the
/// stream key (a source name cannot start with `@`: see config validation).
const FLEET_CURSOR: &str = "@fleet ";

fn write_cursor(
    tx: &rusqlite::Transaction<'_>,
    source: &str,
    cursor: &str,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO cursors (source, cursor) VALUES (?1, ?2)
         ON CONFLICT (source) DO UPDATE SET cursor = excluded.cursor",
    )?
    .execute(params![source, cursor])?;
    Ok(())
}

/// One shared allocation per distinct name read back (jails, filters), as the
/// engine shares them.
#[derive(Default)]
struct Names(Vec<Arc<str>>);

impl Names {
    fn get(&mut self, name: &str) -> Arc<str> {
        if let Some(n) = self.0.iter().find(|n| ***n == *name) {
            return n.clone();
        }
        let n: Arc<str> = Arc::from(name);
        self.0.push(n.clone());
        n
    }
}

fn parse_origin(s: &str) -> Option<Origin> {
    Origin::parse(s)
}

fn origin_str(o: Origin) -> &'static str {
    o.as_str()
}

fn read_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("SELECT version FROM schema_version", [], |r| r.get(0))
        .optional()
        .map(|v| v.unwrap_or(0))
}

/// Brings the schema to [`SCHEMA_VERSION`], one step per transaction.
fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let sql = |source| StoreError::Sqlite {
        path: path.to_path_buf(),
        source,
    };
    conn.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        .map_err(sql)?;
    let mut version = read_version(conn).map_err(sql)?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            path: path.to_path_buf(),
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    while version < SCHEMA_VERSION {
        let step = MIGRATIONS
            .get(usize::try_from(version).unwrap_or(usize::MAX))
            .ok_or(StoreError::TooNew {
                path: path.to_path_buf(),
                found: version,
                supported: SCHEMA_VERSION,
            })?;
        let tx = conn.transaction().map_err(sql)?;
        tx.execute_batch(step).map_err(sql)?;
        tx.execute("DELETE FROM schema_version", []).map_err(sql)?;
        tx.execute(
            "INSERT INTO schema_version (version) VALUES (?1)",
            params![version + 1],
        )
        .map_err(sql)?;
        tx.commit().map_err(sql)?;
        version += 1;
    }
    Ok(())
}

fn millis(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

fn from_millis(ms: i64) -> SystemTime {
    if ms >= 0 {
        UNIX_EPOCH + Duration::from_millis(ms.unsigned_abs())
    } else {
        UNIX_EPOCH - Duration::from_millis(ms.unsigned_abs())
    }
}

/// Creates the database file 0600 if it is missing; otherwise checks it (and its
/// journal files) belongs to root and sets them to 0600.
fn private_file(db: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mode_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| StoreError::FileMode { path, source }
    };
    if !db.exists() {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(db)
            .map_err(mode_err(db))?;
    }
    let mut journal = db.as_os_str().to_owned();
    journal.push("-journal");
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    let mut shm = db.as_os_str().to_owned();
    shm.push("-shm");
    for file in [db.to_path_buf(), journal.into(), wal.into(), shm.into()] {
        if file != db && !file.exists() {
            continue;
        }
        crate::private_dir::check_file(&file)?;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))
            .map_err(mode_err(&file))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decisions alone, the shape most tests write.
    trait RecordAt {
        fn record_at(&mut self, batch: &[Decision], now: SystemTime) -> Result<(), StoreError>;
    }

    impl RecordAt for Store {
        fn record_at(&mut self, batch: &[Decision], now: SystemTime) -> Result<(), StoreError> {
            self.write(Batch::at(now).decisions(batch))
        }
    }

    fn file_at(store: &Store, path: &Path) -> Option<FilePosition> {
        store
            .positions()
            .expect("read")
            .iter()
            .find_map(|p| match p {
                SourcePosition::File { path: k, at } if k == path => Some(*at),
                _ => None,
            })
    }

    fn file(path: &Path, at: FilePosition) -> SourcePosition {
        SourcePosition::File {
            path: path.to_owned(),
            at,
        }
    }

    fn journal(source: &str, cursor: &str) -> SourcePosition {
        SourcePosition::Journal {
            source: source.into(),
            cursor: cursor.into(),
        }
    }

    fn t(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
    }

    fn ban(target: &str, jail: &str, since: u64, until: Option<u64>) -> Ban {
        Ban {
            target: target.parse().expect("target"),
            jail: Arc::from(jail),
            since: t(since),
            until: until.map(t),
            origin: if jail == "manual" {
                Origin::Manual
            } else {
                Origin::Jail
            },
            reason: None,
            forced: false,
            node: None,
        }
    }

    /// Issue 16, item 4: under `umask 000` the state directory came out 0777 and
    /// the database 0644 (any user could read the ban list, or swap the file).
    #[test]
    fn the_state_dir_and_database_are_private_whatever_the_umask() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        if !crate::private_dir::run_under_umask_000(
            "store::tests::the_state_dir_and_database_are_private_whatever_the_umask",
        ) {
            return;
        }
        let tmp = tempfile::tempdir().expect("tempdir");
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o700))
            .expect("chmod");
        let state = tmp.path().join("state");
        drop(Store::open(&state).expect("open"));
        let mode = |p: &Path| std::fs::metadata(p).expect("stat").mode() & 0o7777;
        assert_eq!(mode(&state), 0o700);
        assert_eq!(mode(&state.join(DB_FILE)), 0o600);
        // An existing database readable by everyone is made private on open.
        std::fs::set_permissions(state.join(DB_FILE), std::fs::Permissions::from_mode(0o644))
            .expect("chmod");
        drop(Store::open(&state).expect("reopen"));
        assert_eq!(mode(&state.join(DB_FILE)), 0o600);
        // A state directory others can write is refused, naming it.
        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        let err = Store::open(&state).expect_err("0777 state dir");
        assert!(
            err.to_string().contains(&state.display().to_string())
                && err.to_string().contains("can write"),
            "{err}"
        );
    }

    #[test]
    fn fresh_database_has_current_schema_and_no_bans() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("state")).expect("open");
        assert_eq!(store.schema_version().expect("version"), SCHEMA_VERSION);
        assert!(store.active_bans(t(0)).expect("bans").is_empty());
        assert!(dir.path().join("state").join(DB_FILE).exists());
    }

    #[test]
    fn restart_restores_bans() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = ban("198.51.100.7/32", "ssh", 0, Some(3600));
        let b = ban("203.0.113.0/24", "manual", 10, None);
        let c = ban("2001:db8::1/128", "ssh", 20, Some(7200));
        {
            let mut store = Store::open(dir.path()).expect("open");
            store
                .record_at(
                    &[
                        Decision::Ban(a.clone()),
                        Decision::Ban(b.clone()),
                        Decision::Ban(c.clone()),
                    ],
                    t(20),
                )
                .expect("record");
        }
        let store = Store::open(dir.path()).expect("reopen");
        assert_eq!(store.active_bans(t(30)).expect("bans"), vec![a, b, c]);
    }

    #[test]
    fn expired_bans_are_not_returned() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = Store::open(dir.path()).expect("open");
        let short = ban("198.51.100.7/32", "ssh", 0, Some(60));
        let long = ban("198.51.100.8/32", "ssh", 0, Some(600));
        store
            .record_at(
                &[Decision::Ban(short.clone()), Decision::Ban(long.clone())],
                t(0),
            )
            .expect("record");
        assert_eq!(store.active_bans(t(59)).expect("bans").len(), 2);
        assert_eq!(store.active_bans(t(60)).expect("bans"), vec![long.clone()]);
        assert_eq!(store.prune_expired(t(61)).expect("prune"), 1);
        assert_eq!(store.active_bans(t(0)).expect("bans"), vec![long]);
    }

    #[test]
    fn unban_removes_the_active_row_and_closes_history() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = Store::open(dir.path()).expect("open");
        let a = ban("198.51.100.7/32", "ssh", 0, Some(3600));
        store
            .record_at(&[Decision::Ban(a.clone())], t(0))
            .expect("ban");
        store
            .record_at(&[Decision::Unban(a.clone())], t(5))
            .expect("unban");
        assert!(store.active_bans(t(6)).expect("bans").is_empty());
        let ended: Option<i64> = store
            .conn
            .query_row("SELECT ended FROM ban_history", [], |r| r.get(0))
            .expect("history row");
        assert_eq!(ended, Some(millis(t(5))));
    }

    #[test]
    fn history_since_lists_past_bans_oldest_first() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = Store::open(dir.path()).expect("open");
        let mut sub = ban("203.0.113.0/24", "ssh", 300, Some(400));
        sub.origin = Origin::Subnet;
        store
            .record_at(
                &[
                    Decision::Ban(ban("198.51.100.7/32", "ssh", 100, Some(200))),
                    Decision::Ban(ban("198.51.100.8/32", "web", 0, Some(50))),
                    Decision::Ban(sub),
                ],
                t(300),
            )
            .expect("bans");
        let all = store.ban_history_since(t(0)).expect("history");
        let got: Vec<(String, &str, SystemTime)> = all
            .iter()
            .map(|e| (e.target.to_string(), &*e.jail, e.since))
            .collect();
        assert_eq!(
            got,
            vec![
                ("198.51.100.8/32".to_owned(), "web", t(0)),
                ("198.51.100.7/32".to_owned(), "ssh", t(100)),
                ("203.0.113.0/24".to_owned(), "ssh", t(300)),
            ]
        );
        assert_eq!(store.ban_history_since(t(101)).expect("history").len(), 1);
        // The new origins come back as written.
        let origins: Vec<Origin> = store
            .active_bans(t(0))
            .expect("bans")
            .iter()
            .map(|b| b.origin)
            .collect();
        assert!(origins.contains(&Origin::Subnet), "{origins:?}");
    }

    #[test]
    fn extending_a_ban_keeps_one_history_row_and_a_new_ban_adds_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = Store::open(dir.path()).expect("open");
        let target: IpNet = "198.51.100.7/32".parse().expect("net");
        store
            .record_at(
                &[Decision::Ban(ban("198.51.100.7/32", "ssh", 0, Some(60)))],
                t(0),
            )
            .expect("ban");
        store
            .record_at(
                &[Decision::Ban(ban("198.51.100.7/32", "ssh", 30, Some(600)))],
                t(30),
            )
            .expect("extend");
        assert_eq!(store.ban_count_since(&target, t(0)).expect("count"), 1);
        // A later ban after the first one expired unclosed counts again.
        store
            .record_at(
                &[Decision::Ban(ban("198.51.100.7/32", "ssh", 700, Some(800)))],
                t(700),
            )
            .expect("second ban");
        assert_eq!(store.ban_count_since(&target, t(0)).expect("count"), 2);
        assert_eq!(store.active_bans(t(701)).expect("bans").len(), 1);
    }

    #[test]
    fn batch_is_atomic() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = Store::open(dir.path()).expect("open");
        // Make the second insert of the batch fail inside the transaction.
        store
            .conn
            .execute_batch(
                "CREATE TRIGGER refuse BEFORE INSERT ON bans
                 WHEN NEW.target = '192.0.2.66/32'
                 BEGIN SELECT RAISE(ABORT, 'refused'); END;",
            )
            .expect("trigger");
        let good = ban("198.51.100.7/32", "ssh", 0, Some(60));
        let bad = ban("192.0.2.66/32", "ssh", 0, Some(60));
        let err = store
            .record_at(&[Decision::Ban(good), Decision::Ban(bad)], t(0))
            .expect_err("batch must fail");
        assert!(err.to_string().contains(DB_FILE), "{err}");
        assert!(store.active_bans(t(1)).expect("bans").is_empty());
        let history: i64 = store
            .conn
            .query_row("SELECT COUNT(*) FROM ban_history", [], |r| r.get(0))
            .expect("count");
        assert_eq!(history, 0);
    }

    #[test]
    fn positions_round_trip_and_update() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = Store::open(dir.path()).expect("open");
        let p = PathBuf::from("/var/log/auth.log");
        assert_eq!(file_at(&store, &p), None);
        let first = FilePosition {
            dev: 2049,
            inode: u64::MAX - 3,
            offset: 10,
            fingerprint_len: 10,
            fingerprint: u64::MAX - 7,
            mtime_ns: 1_747_648_800_123_456_789,
        };
        store
            .write(Batch::at(t(0)).positions(&[file(&p, first)]))
            .expect("save");
        let second = FilePosition {
            offset: 99,
            ..first
        };
        store
            .write(Batch::at(t(1)).positions(&[file(&p, second)]))
            .expect("save");
        drop(store);
        let store = Store::open(dir.path()).expect("reopen");
        assert_eq!(file_at(&store, &p), Some(second));
    }

    #[test]
    fn cursors_round_trip_and_update() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = Store::open(dir.path()).expect("open");
        assert_eq!(store.positions().expect("read").cursor("journal"), None);
        store
            .write(Batch::at(t(0)).positions(&[journal("journal", "s=1;i=1")]))
            .expect("save");
        store
            .write(Batch::at(t(1)).positions(&[journal("journal", "s=1;i=2")]))
            .expect("save");
        drop(store);
        let store = Store::open(dir.path()).expect("reopen");
        assert_eq!(
            store
                .positions()
                .expect("read")
                .cursor("journal")
                .as_deref(),
            Some("s=1;i=2")
        );
    }

    #[test]
    fn the_fleet_stream_id_round_trips_apart_from_journal_cursors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = Store::open(dir.path()).expect("open");
        let fleet = |id: &str| SourcePosition::Fleet {
            stream: "log2drop:bans".into(),
            id: id.into(),
        };
        store
            .write(Batch::at(t(0)).positions(&[fleet("1-0"), journal("log2drop:bans", "c")]))
            .expect("save");
        store
            .write(Batch::at(t(1)).positions(&[fleet("1700000000000-3")]))
            .expect("save");
        drop(store);
        let p = Store::open(dir.path())
            .expect("reopen")
            .positions()
            .expect("read");
        assert_eq!(
            p.fleet_id("log2drop:bans").as_deref(),
            Some("1700000000000-3")
        );
        assert_eq!(p.cursor("log2drop:bans").as_deref(), Some("c"));
        assert_eq!(p.fleet_id("other"), None);
    }

    #[test]
    fn positions_lists_every_path_and_cursor() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = Store::open(dir.path()).expect("open");
        let p = FilePosition {
            dev: 1,
            inode: 2,
            offset: 3,
            fingerprint_len: 0,
            fingerprint: u64::MAX,
            mtime_ns: -1,
        };
        let written = [
            file(Path::new("/a"), p),
            file(Path::new("/b"), p),
            journal("j", "s=1"),
        ];
        store
            .write(Batch::at(t(0)).positions(&written))
            .expect("save");
        let all = store.positions().expect("all");
        assert_eq!(all, written.into_iter().collect());
    }

    #[test]
    fn scheduled_bans_round_trip_and_go_when_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = Store::open(dir.path()).expect("open");
        let sched = |key: &str, due: u64| ScheduledBan {
            key: key.parse().expect("ip"),
            jail: Arc::from("wifi"),
            due: t(due),
            target: format!("{key}/32").parse().expect("net"),
            reason: BanReason {
                filter: Arc::from("dhcp"),
                first_offence: t(1),
                last_offence: t(2),
                captures: Captures::default(),
            },
        };
        let a = sched("198.51.100.7", 3600);
        let b = sched("198.51.100.8", 60);
        store
            .write(Batch::at(t(0)).scheduled(&[
                ScheduleChange::Add(a.clone()),
                ScheduleChange::Add(b.clone()),
            ]))
            .expect("schedule");
        drop(store);
        let mut store = Store::open(dir.path()).expect("reopen");
        assert_eq!(
            store.scheduled_bans().expect("read"),
            [b.clone(), a.clone()]
        );
        store
            .write(Batch::at(t(60)).scheduled(&[ScheduleChange::Remove {
                key: b.key,
                jail: b.jail.clone(),
            }]))
            .expect("in force");
        assert_eq!(store.scheduled_bans().expect("read"), [a]);
    }

    #[test]
    fn version_1_database_is_migrated_keeping_its_rows() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            // A database as version 1 left it.
            let conn = Connection::open(dir.path().join(DB_FILE)).expect("create");
            conn.execute_batch(MIGRATIONS[0]).expect("v1 schema");
            conn.execute_batch(
                "CREATE TABLE schema_version (version INTEGER NOT NULL);
                 INSERT INTO schema_version VALUES (1);
                 INSERT INTO offsets VALUES ('/var/log/auth.log', 1, 2, 3);
                 INSERT INTO bans VALUES ('198.51.100.7/32', 'ssh', 0, NULL, 'jail');",
            )
            .expect("v1 rows");
        }
        let store = Store::open(dir.path()).expect("open migrates");
        assert_eq!(store.schema_version().expect("version"), SCHEMA_VERSION);
        let p = file_at(&store, Path::new("/var/log/auth.log")).expect("row kept");
        assert_eq!(
            (p.dev, p.inode, p.offset, p.fingerprint_len, p.mtime_ns),
            (1, 2, 3, 0, 0)
        );
        assert_eq!(p.fingerprint, fnv1a_empty());
        assert_eq!(store.active_bans(t(0)).expect("bans").len(), 1);
    }

    /// The fingerprint of zero bytes, which version-1 rows get.
    fn fnv1a_empty() -> u64 {
        0xcbf2_9ce4_8422_2325
    }

    fn pos(offset: u64) -> FilePosition {
        FilePosition {
            dev: 1,
            inode: 2,
            offset,
            fingerprint_len: 0,
            fingerprint: 0,
            mtime_ns: 0,
        }
    }

    #[test]
    fn restart_restores_reason_origin_forced_and_fleet_node() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut jail = ban("198.51.100.7/32", "ssh", 100, Some(3700));
        jail.reason = Some(BanReason {
            filter: Arc::from("ssh-fail"),
            first_offence: t(40),
            last_offence: t(100),
            captures: Default::default(),
        });
        let mut subnet = ban("203.0.113.0/24", "ssh", 110, Some(7200));
        subnet.origin = Origin::Subnet;
        let mut forced = ban("192.0.2.1/32", "manual", 120, None);
        forced.forced = true;
        let mut fleet = ban("203.0.113.77/32", "fleet", 125, Some(7300));
        fleet.origin = Origin::Fleet;
        fleet.node = Some(Arc::from("web-2"));
        {
            let mut store = Store::open(dir.path()).expect("open");
            store
                .record_at(
                    &[
                        Decision::Ban(jail.clone()),
                        Decision::Ban(subnet.clone()),
                        Decision::Ban(forced.clone()),
                        Decision::Ban(fleet.clone()),
                    ],
                    t(125),
                )
                .expect("record");
        }
        let store = Store::open(dir.path()).expect("reopen");
        assert_eq!(
            store.active_bans(t(130)).expect("bans"),
            vec![jail, subnet, forced, fleet]
        );
    }

    #[test]
    fn history_since_lists_each_ban_once_and_survives_unbans() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = Store::open(dir.path()).expect("open");
        let a = ban("198.51.100.7/32", "ssh", 0, Some(60));
        store
            .record_at(&[Decision::Ban(a.clone())], t(0))
            .expect("ban");
        // Extended while running: still one ban.
        store
            .record_at(
                &[Decision::Ban(ban("198.51.100.7/32", "ssh", 30, Some(90)))],
                t(30),
            )
            .expect("extend");
        store
            .record_at(&[Decision::Unban(a)], t(40))
            .expect("unban");
        store
            .record_at(
                &[Decision::Ban(ban("198.51.100.7/32", "web", 100, Some(200)))],
                t(100),
            )
            .expect("second ban");
        store
            .record_at(
                &[Decision::Ban(ban("2001:db8::/64", "ssh", 150, None))],
                t(150),
            )
            .expect("third");
        let all = store.ban_history_since(t(0)).expect("history");
        let seen: Vec<(String, &str, SystemTime)> = all
            .iter()
            .map(|h| (h.target.to_string(), &*h.jail, h.since))
            .collect();
        assert_eq!(
            seen,
            vec![
                ("198.51.100.7/32".to_owned(), "ssh", t(0)),
                ("198.51.100.7/32".to_owned(), "web", t(100)),
                ("2001:db8::/64".to_owned(), "ssh", t(150)),
            ]
        );
        assert_eq!(store.ban_history_since(t(101)).expect("recent").len(), 1);
        drop(store);
        let store = Store::open(dir.path()).expect("reopen");
        assert_eq!(store.ban_history_since(t(0)).expect("history"), all);
    }

    #[test]
    fn purge_drops_only_history_that_ended_before_the_horizon() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = Store::open(dir.path()).expect("open");
        let old = ban("198.51.100.1/32", "ssh", 0, Some(10));
        let recent = ban("198.51.100.2/32", "ssh", 0, Some(10));
        let running = ban("198.51.100.3/32", "ssh", 0, None);
        store
            .record_at(
                &[
                    Decision::Ban(old.clone()),
                    Decision::Ban(recent.clone()),
                    Decision::Ban(running),
                ],
                t(0),
            )
            .expect("bans");
        store
            .record_at(&[Decision::Unban(old)], t(5))
            .expect("unban");
        store
            .record_at(&[Decision::Unban(recent)], t(500))
            .expect("unban");
        assert_eq!(store.history_len().expect("len"), 3);
        assert_eq!(store.purge_history(t(100)).expect("purge"), 1);
        let left: Vec<String> = store
            .ban_history_since(t(0))
            .expect("history")
            .iter()
            .map(|h| h.target.to_string())
            .collect();
        assert_eq!(left, ["198.51.100.2/32", "198.51.100.3/32"]);
        // The running ban's row stays however old it is.
        assert_eq!(store.purge_history(t(1_000_000)).expect("purge"), 1);
        assert_eq!(store.history_len().expect("len"), 1);
    }

    #[test]
    fn decisions_and_positions_commit_together() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = Store::open(dir.path()).expect("open");
        let log = PathBuf::from("/var/log/auth.log");
        store
            .conn
            .execute_batch(
                "CREATE TRIGGER refuse BEFORE UPDATE ON offsets
                 WHEN NEW.offset = 666
                 BEGIN SELECT RAISE(ABORT, 'refused'); END;",
            )
            .expect("trigger");
        store
            .write(
                Batch::at(t(0))
                    .decisions(&[Decision::Ban(ban("198.51.100.7/32", "ssh", 0, None))])
                    .positions(&[file(&log, pos(10))]),
            )
            .expect("first commit");
        store
            .write(
                Batch::at(t(1))
                    .decisions(&[Decision::Ban(ban("198.51.100.8/32", "ssh", 1, None))])
                    .positions(&[file(&log, pos(666))]),
            )
            .expect_err("the position fails, so the whole batch does");
        assert_eq!(store.active_bans(t(2)).expect("bans").len(), 1);
        assert_eq!(file_at(&store, &log), Some(pos(10)));
    }

    /// Environment variable that turns [`crash_child`] into the crashing writer.
    const CRASH_DIR: &str = "LOG2DROP_STORE_CRASH_DIR";

    /// Not a test on its own: run by `crash_between_offence_and_ban_*` in a child
    /// process, which commits one batch, then dies (abort, no unwinding, no
    /// destructors) in the middle of the next transaction.
    #[test]
    #[ignore = "helper process for crash_between_offence_and_ban_keeps_the_last_commit"]
    fn crash_child() {
        let Some(dir) = std::env::var_os(CRASH_DIR) else {
            return;
        };
        let dir = PathBuf::from(dir);
        let log = PathBuf::from("/var/log/auth.log");
        let mut store = Store::open(&dir).expect("open");
        store
            .write(
                Batch::at(t(0))
                    .decisions(&[Decision::Ban(ban("198.51.100.7/32", "ssh", 0, Some(3600)))])
                    .positions(&[file(&log, pos(100))]),
            )
            .expect("committed batch");
        // The next batch: offences read up to 200 produced a ban; the transaction
        // is written but the process dies before COMMIT.
        let tx = store.conn.transaction().expect("begin");
        record_ban(&tx, &ban("198.51.100.8/32", "ssh", 5, Some(3600))).expect("ban row");
        write_position(&tx, &file(&log, pos(200))).expect("position row");
        std::process::abort();
    }

    #[test]
    fn crash_between_offence_and_ban_keeps_the_last_commit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let exe = std::env::current_exe().expect("test binary");
        let status = std::process::Command::new(exe)
            .args([
                "--exact",
                "store::tests::crash_child",
                "--ignored",
                "--nocapture",
            ])
            .env(CRASH_DIR, dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .expect("run the crashing child");
        assert!(!status.success(), "the child must have crashed: {status}");
        let store = Store::open(dir.path()).expect("reopen after the crash");
        let bans: Vec<String> = store
            .active_bans(t(1))
            .expect("bans")
            .iter()
            .map(|b| b.target.to_string())
            .collect();
        // The committed ban is there; the one whose transaction died is not, and
        // neither is its position, so its lines are read (and banned) again.
        assert_eq!(bans, ["198.51.100.7/32"]);
        assert_eq!(
            file_at(&store, Path::new("/var/log/auth.log")),
            Some(pos(100))
        );
        assert_eq!(store.ban_history_since(t(0)).expect("history").len(), 1);
    }

    #[test]
    fn version_2_database_is_migrated_keeping_its_rows() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            // A database as version 2 left it.
            let conn = Connection::open(dir.path().join(DB_FILE)).expect("create");
            conn.execute_batch(MIGRATIONS[0]).expect("v1 schema");
            conn.execute_batch(MIGRATIONS[1]).expect("v2 schema");
            conn.execute_batch(
                "CREATE TABLE schema_version (version INTEGER NOT NULL);
                 INSERT INTO schema_version VALUES (2);
                 INSERT INTO offsets VALUES ('/var/log/auth.log', 1, 2, 3, 4, 5);
                 INSERT INTO bans VALUES ('198.51.100.7/32', 'ssh', 0, NULL, 'jail');
                 INSERT INTO ban_history (target, jail, since, until, origin, ended)
                 VALUES ('198.51.100.7/32', 'ssh', 0, NULL, 'jail', NULL);",
            )
            .expect("v2 rows");
        }
        let store = Store::open(dir.path()).expect("open migrates");
        assert_eq!(store.schema_version().expect("version"), SCHEMA_VERSION);
        let p = file_at(&store, Path::new("/var/log/auth.log")).expect("row kept");
        assert_eq!((p.offset, p.fingerprint_len, p.fingerprint), (3, 4, 5));
        let bans = store.active_bans(t(0)).expect("bans");
        assert_eq!(bans.len(), 1);
        assert_eq!((bans[0].reason.clone(), bans[0].forced), (None, false));
        assert_eq!(
            store.ban_history_since(UNIX_EPOCH).expect("history").len(),
            1
        );
    }

    #[test]
    fn ban_captures_survive_a_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut b = ban("198.51.100.7/32", "ssh", 100, Some(3700));
        let mut captures = Captures::new();
        captures.push_named("user", "root\n\x1b[2J".as_bytes());
        b.reason = Some(BanReason {
            filter: Arc::from("sshd"),
            first_offence: t(40),
            last_offence: t(100),
            captures,
        });
        {
            let mut store = Store::open(dir.path()).expect("open");
            store
                .record_at(&[Decision::Ban(b.clone())], t(100))
                .expect("record");
        }
        let store = Store::open(dir.path()).expect("reopen");
        assert_eq!(store.active_bans(t(130)).expect("bans"), vec![b]);
    }

    fn count(day: i64, addr: &str, user: &str, n: u64, at: u64) -> OffenceCount {
        OffenceCount {
            day,
            address: addr.parse().expect("addr"),
            filter: Arc::from("sshd"),
            user: user.into(),
            jails: "ssh".into(),
            count: n,
            first: t(at),
            last: t(at),
        }
    }

    #[test]
    fn offence_counts_add_up_per_day_address_filter_user() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = Store::open(dir.path()).expect("open");
        store
            .add_offences(
                &[
                    count(1, "192.0.2.1", "root", 3, 10),
                    count(1, "192.0.2.1", "", 1, 11),
                ],
                100,
            )
            .expect("add");
        store
            .add_offences(&[count(1, "192.0.2.1", "root", 2, 5)], 100)
            .expect("add again");
        let rows = store.offence_counts().expect("rows");
        assert_eq!(rows.len(), 2);
        let root = rows.iter().find(|r| &*r.user == "root").expect("root row");
        assert_eq!((root.count, root.first, root.last), (5, t(5), t(10)));
    }

    #[test]
    fn offence_counts_are_bounded_oldest_day_smallest_first() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = Store::open(dir.path()).expect("open");
        let mut batch = Vec::new();
        for day in 1..=3 {
            for host in 1..=4u8 {
                batch.push(count(
                    day,
                    &format!("192.0.2.{host}"),
                    "",
                    u64::from(host),
                    0,
                ));
            }
        }
        store.add_offences(&batch, 6).expect("add");
        let rows = store.offence_counts().expect("rows");
        assert_eq!(rows.len(), 6);
        // Day 1 is gone, and the smallest two of day 2.
        let kept: Vec<(i64, u64)> = rows.iter().map(|r| (r.day, r.count)).collect();
        assert_eq!(kept, [(2, 3), (2, 4), (3, 1), (3, 2), (3, 3), (3, 4)]);
        // Purging by retention drops whole days.
        let day3 = UNIX_EPOCH + Duration::from_secs(3 * 86_400);
        assert_eq!(store.purge_offences(day3).expect("purge"), 2);
        assert!(
            store
                .offence_counts()
                .expect("rows")
                .iter()
                .all(|r| r.day == 3)
        );
    }

    #[test]
    fn version_5_database_is_migrated_keeping_its_bans() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let conn = Connection::open(dir.path().join(DB_FILE)).expect("create");
            for m in &MIGRATIONS[..5] {
                conn.execute_batch(m).expect("old schema");
            }
            conn.execute_batch(
                "CREATE TABLE schema_version (version INTEGER NOT NULL);
                 INSERT INTO schema_version VALUES (5);
                 INSERT INTO bans (target, jail, since, until, origin, reason, first_offence,
                                   last_offence)
                 VALUES ('198.51.100.7/32', 'ssh', 0, NULL, 'jail', 'sshd', 0, 0);",
            )
            .expect("v5 rows");
        }
        let store = Store::open(dir.path()).expect("open migrates");
        assert_eq!(store.schema_version().expect("version"), SCHEMA_VERSION);
        let bans = store.active_bans(t(0)).expect("bans");
        let reason = bans[0].reason.as_ref().expect("reason kept");
        assert!(reason.captures.is_empty());
        assert!(store.offence_counts().expect("table exists").is_empty());
    }

    #[test]
    fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let store = Store::open(dir.path()).expect("open");
            store
                .conn
                .execute("UPDATE schema_version SET version = 99", [])
                .expect("bump");
        }
        let err = Store::open(dir.path()).expect_err("must refuse");
        assert!(matches!(err, StoreError::TooNew { found: 99, .. }), "{err}");
    }
}
