//! Where a report's events come from: the agent's state database (the
//! default), fail2ban's logs, or log2drop's own logs. Log files may be plain,
//! gzip or zstd (told by their content) and are read as a stream, one borrowed
//! line at a time, so a year of rotated logs costs the memory of its events only.

pub mod agent_log;
pub mod fail2ban;
pub mod store;

use std::path::{Path, PathBuf};

use super::model::{Event, Events, Range, civil_of};
use crate::source::compressed;
use crate::source::line::{DEFAULT_MAX_LINE, for_each_line};

pub use store::StoreReadError;

/// Which reader a log file goes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogKind {
    /// fail2ban.log.
    Fail2ban,
    /// log2drop's own log.
    Log2drop,
}

/// A log file that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read {path}: {source}")]
pub struct LogReadError {
    /// The file.
    pub path: PathBuf,
    /// Why.
    #[source]
    pub source: std::io::Error,
}

/// Told how far a long read has come (file and lines so far), every
/// [`PROGRESS_EVERY`] lines.
pub trait Progress {
    /// Called from the reading loop; must be cheap.
    fn lines(&mut self, file: &Path, lines: u64);
}

/// No progress shown.
impl Progress for () {
    fn lines(&mut self, _: &Path, _: u64) {}
}

/// How often [`Progress::lines`] is called, in lines.
pub(crate) const PROGRESS_EVERY: u64 = 1 << 16;

/// Reads `path` as a log of `kind` into `out`, keeping events inside `range`.
pub fn read_log(
    path: &Path,
    kind: LogKind,
    range: &Range,
    zone: &jiff::tz::TimeZone,
    out: &mut Events,
    progress: &mut dyn Progress,
) -> Result<(), LogReadError> {
    let err = |source| LogReadError {
        path: path.to_owned(),
        source,
    };
    let mut reader = compressed::open_lines(path).map_err(|e| err(e.source))?;
    let mut scratch = String::new();
    let mut lines = 0u64;
    for_each_line(&mut *reader, DEFAULT_MAX_LINE, &mut |line| {
        lines += 1;
        if lines.is_multiple_of(PROGRESS_EVERY) {
            progress.lines(path, lines);
        }
        if line.truncated {
            return;
        }
        match kind {
            LogKind::Fail2ban => match fail2ban::parse_line(line.bytes) {
                fail2ban::Parsed::Event {
                    time,
                    kind,
                    jail,
                    addr,
                } => {
                    if range.contains(time) {
                        let jail = out.jails.intern_bytes(jail);
                        out.events.push(Event {
                            time,
                            kind,
                            target: ipnet::IpNet::from(addr),
                            jail,
                            // fail2ban runs one filter per jail, named after it.
                            filter: None,
                            user: None,
                            count: 1,
                        });
                    }
                }
                fail2ban::Parsed::Malformed => out.malformed += 1,
                fail2ban::Parsed::Other => {}
            },
            LogKind::Log2drop => match agent_log::parse_line(line.bytes, &mut scratch) {
                agent_log::Parsed::Event {
                    time,
                    kind,
                    target,
                    jail,
                    filter,
                    user,
                } => {
                    let time = civil_of(time, zone);
                    if range.contains(time) {
                        let jail = out.jails.intern(jail);
                        let filter = filter.map(|f| out.filters.intern(f));
                        let user = user.map(|u| out.users.intern(&u));
                        out.events.push(Event {
                            time,
                            kind,
                            target,
                            jail,
                            filter,
                            user,
                            count: 1,
                        });
                    }
                }
                agent_log::Parsed::Malformed => out.malformed += 1,
                agent_log::Parsed::Other => {}
            },
        }
    })
    .map_err(err)?;
    out.lines += lines;
    Ok(())
}
