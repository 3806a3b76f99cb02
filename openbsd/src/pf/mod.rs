//! A PF table client: it creates a table, adds, deletes, lists and replaces its
//! addresses and kills a host's states by issuing the `DIOCR*` and DIOCKILLSTATES
//! ioctls itself, the way pfctl does, without forking pfctl per ban.
//!
//! Below the encoding sits one small trait, [`Ioctl`]: "issue this request on this
//! argument". `DevPf` implements it on OpenBSD with `ioctl(2)` on `/dev/pf`;
//! `fake::FakePf` implements it in memory with the kernel's rules, so everything
//! above it (structures, pointers, sizes, batching, the list size protocol) runs in
//! tests on any system.
//!
//! The table belongs to log2drop: [`Pf::replace`] makes it hold exactly the given
//! set, and [`Pf::list`] skips negated (`!addr`) entries, which log2drop never writes.
//! Keep hand-made entries in a table of their own.

pub mod addr;
#[cfg(any(test, feature = "fake"))]
pub mod fake;
pub mod sys;
#[cfg(test)]
mod tests;

use std::io;
use std::net::IpAddr;
#[cfg(target_os = "openbsd")]
use std::path::{Path, PathBuf};

use core::ffi::{c_int, c_ulong, c_void};

use ipnet::IpNet;

use sys::{PfiocStateKill, PfiocTable, PfrAddr, PfrTable};

/// The testable boundary: issue one pf ioctl.
pub trait Ioctl {
    /// Issues `request` with `arg` as its argument, as `ioctl(fd, request, arg)` would,
    /// and returns the errno on failure.
    ///
    /// # Safety
    /// `arg` must point to a live, writable value of the structure `request` encodes
    /// (`PfiocTable` or `PfiocStateKill`), and a `PfiocTable`'s `pfrio_buffer` must be
    /// valid for reads and writes of `pfrio_size * pfrio_esize` bytes.
    unsafe fn ioctl(&mut self, request: c_ulong, arg: *mut c_void) -> io::Result<()>;
}

/// `/dev/pf`, opened read-write.
#[cfg(target_os = "openbsd")]
#[derive(Debug)]
pub struct DevPf {
    fd: std::os::fd::OwnedFd,
}

#[cfg(target_os = "openbsd")]
impl DevPf {
    /// Opens `path` (normally `/dev/pf`) read-write and close-on-exec.
    pub fn open(path: &Path) -> io::Result<Self> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(path)?;
        Ok(DevPf { fd: file.into() })
    }
}

#[cfg(target_os = "openbsd")]
impl Ioctl for DevPf {
    unsafe fn ioctl(&mut self, request: c_ulong, arg: *mut c_void) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        // SAFETY: the caller guarantees `arg` matches `request` (the trait contract);
        // the descriptor is open for as long as `self` lives.
        let rc = unsafe { libc::ioctl(self.fd.as_raw_fd(), request, arg) };
        if rc == -1 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }
}

/// A failed table operation.
#[derive(Debug, thiserror::Error)]
pub enum PfError {
    /// `/dev/pf` could not be opened.
    #[error("opening {}: {source}", path.display())]
    Open {
        /// The device path.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The kernel refused a request.
    #[error("{ioctl} on {target}: {source}")]
    Ioctl {
        /// The request's name (`DIOCRADDADDRS`, ...).
        ioctl: &'static str,
        /// What it was about: `table <log2drop>` or `host 192.0.2.1`.
        target: String,
        /// The errno.
        #[source]
        source: io::Error,
    },
    /// The table name cannot be a PF table name.
    #[error("invalid PF table name {name:?}: {reason}")]
    TableName {
        /// The name given.
        name: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// More addresses than one request can carry (`pfrio_size` is an `int`).
    #[error("{ioctl} on table <{table}>: {count} addresses exceed one request's limit")]
    TooMany {
        /// The request.
        ioctl: &'static str,
        /// The table.
        table: String,
        /// How many were given.
        count: usize,
    },
    /// DIOCRGETADDRS kept reporting a larger table than the buffer just sized for it.
    #[error("DIOCRGETADDRS on table <{table}>: the table kept growing over {attempts} attempts")]
    Unstable {
        /// The table.
        table: String,
        /// How many sized attempts were made.
        attempts: u32,
    },
    /// The kernel returned an entry that is not a valid address block.
    #[error("DIOCRGETADDRS on table <{table}>: unreadable entry: {source}")]
    Decode {
        /// The table.
        table: String,
        /// What is wrong with it.
        #[source]
        source: addr::InvalidAddr,
    },
    /// The privileged helper could not be reached or broke the protocol.
    #[error("pf helper {what}: {source}")]
    Helper {
        /// What was being done (`sending DIOCRADDADDRS request`, ...).
        what: String,
        /// The transport or protocol error.
        #[source]
        source: io::Error,
    },
    /// The privileged helper refused a request its policy does not allow.
    #[error("pf helper refused: {0}")]
    Refused(String),
}

impl PfError {
    /// The errno the kernel returned, if this is a refused request: ESRCH means the
    /// table is gone (flushed by `pfctl -F Tables`), so it can be recreated.
    pub fn errno(&self) -> Option<i32> {
        match self {
            PfError::Ioctl { source, .. } | PfError::Open { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}

/// What a whole-table replacement changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Replaced {
    /// Entries added.
    pub added: u32,
    /// Entries removed.
    pub deleted: u32,
    /// Entries whose negation flipped.
    pub changed: u32,
}

/// Everything the agent's PF backend needs from a table, whether it talks to
/// `/dev/pf` itself ([`Pf`]) or through the privileged helper
/// ([`crate::privsep::Client`]).
pub trait TableOps {
    /// Creates `name` as a persistent table if it does not exist; true if created.
    fn ensure_table(&mut self, name: &str) -> Result<bool, PfError>;
    /// Adds `nets` (host bits masked); the number actually added.
    fn add(&mut self, table: &str, nets: &[IpNet]) -> Result<u32, PfError>;
    /// Deletes `nets`; the number actually deleted.
    fn delete(&mut self, table: &str, nets: &[IpNet]) -> Result<u32, PfError>;
    /// The table's (non-negated) entries.
    fn list(&mut self, table: &str) -> Result<Vec<IpNet>, PfError>;
    /// Makes the table hold exactly `nets`, atomically.
    fn replace(&mut self, table: &str, nets: &[IpNet]) -> Result<Replaced, PfError>;
    /// Empties the table; the number of entries removed.
    fn clear(&mut self, table: &str) -> Result<u32, PfError>;
    /// Kills every state from and to `host`; the number of states killed.
    fn kill_states(&mut self, host: IpAddr) -> Result<u32, PfError>;
}

/// A table name checked against the kernel's `pfr_validate_table`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableName {
    name: String,
}

impl TableName {
    /// Checks `name`: 1 to 31 bytes (the kernel's field is 32 with its NUL), no NUL,
    /// no whitespace (pfctl could not name it on its command line).
    pub fn new(name: &str) -> Result<Self, PfError> {
        let reason = if name.is_empty() {
            Some("it is empty")
        } else if name.len() >= sys::PF_TABLE_NAME_SIZE {
            Some("it is longer than 31 bytes")
        } else if name
            .bytes()
            .any(|b| b == 0 || b.is_ascii_whitespace() || b.is_ascii_control())
        {
            Some("it contains a NUL, whitespace or a control character")
        } else {
            None
        };
        match reason {
            Some(reason) => Err(PfError::TableName {
                name: name.to_owned(),
                reason,
            }),
            None => Ok(TableName {
                name: name.to_owned(),
            }),
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.name
    }

    fn pfr_table(&self, flags: u32) -> PfrTable {
        let mut t = PfrTable::zeroed();
        t.pfrt_name[..self.name.len()].copy_from_slice(self.name.as_bytes());
        t.pfrt_flags = flags;
        t
    }
}

/// Addresses per DIOCRADDADDRS / DIOCRDELADDRS request: 4096 × 52 bytes = 208 KiB
/// copied in per call, and the kernel holds its PF lock for one batch at a time.
pub const DEFAULT_BATCH: usize = 4096;

/// Sized attempts of DIOCRGETADDRS before giving up on a table that keeps growing.
const LIST_ATTEMPTS: u32 = 8;

/// A PF table client over some [`Ioctl`] device.
#[derive(Debug)]
pub struct Pf<D: Ioctl> {
    dev: D,
    batch: usize,
    /// The last table size seen, so the next list usually needs one call.
    list_hint: usize,
}

#[cfg(target_os = "openbsd")]
impl Pf<DevPf> {
    /// Opens `path` (normally `/dev/pf`).
    pub fn open(path: impl AsRef<Path>) -> Result<Pf<DevPf>, PfError> {
        let path = path.as_ref();
        let dev = DevPf::open(path).map_err(|source| PfError::Open {
            path: PathBuf::from(path),
            source,
        })?;
        Ok(Pf::with_device(dev))
    }
}

impl<D: Ioctl> Pf<D> {
    /// A client over `dev`.
    pub fn with_device(dev: D) -> Self {
        Pf {
            dev,
            batch: DEFAULT_BATCH,
            list_hint: 0,
        }
    }

    /// Sets how many addresses go in one add or delete request (at least 1).
    pub fn with_batch_size(mut self, batch: usize) -> Self {
        self.batch = batch.clamp(1, c_int::MAX as usize);
        self
    }

    /// The device.
    pub fn device(&self) -> &D {
        &self.dev
    }

    /// The device, mutably (tests inspect and steer the fake through it).
    pub fn device_mut(&mut self) -> &mut D {
        &mut self.dev
    }

    /// DIOCRADDTABLES with `PFR_TFLAG_PERSIST`: creates `name` in the main ruleset if
    /// missing. True if it was created, false if it already existed.
    pub fn ensure_table(&mut self, name: &str) -> Result<bool, PfError> {
        let table = TableName::new(name)?;
        let mut t = table.pfr_table(sys::PFR_TFLAG_PERSIST);
        let mut io = PfiocTable::zeroed();
        io.pfrio_buffer = (&mut t as *mut PfrTable).cast();
        io.pfrio_esize = size_of_c::<PfrTable>();
        io.pfrio_size = 1;
        match self.issue(sys::DIOCRADDTABLES, &mut io, &table) {
            Ok(()) => Ok(io.pfrio_nadd > 0),
            // At kern.securelevel 2 pf(4) refuses to create tables but still changes
            // their addresses: a table pf.conf declared is all that is needed.
            Err(e) if e.errno() == Some(libc::EPERM) && self.table_exists(&table)? => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Whether the table exists: DIOCRGETADDRS with an empty buffer answers with its
    /// size, or ESRCH.
    fn table_exists(&mut self, table: &TableName) -> Result<bool, PfError> {
        let mut io = PfiocTable::zeroed();
        io.pfrio_table = table.pfr_table(0);
        io.pfrio_esize = size_of_c::<PfrAddr>();
        match self.issue(sys::DIOCRGETADDRS, &mut io, table) {
            Ok(()) => Ok(true),
            Err(e) if e.errno() == Some(libc::ESRCH) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// DIOCRADDADDRS in batches: adds `nets` (host bits masked). Returns how many were
    /// new; addresses already present are not errors.
    pub fn add(&mut self, table: &str, nets: &[IpNet]) -> Result<u32, PfError> {
        self.batched(sys::DIOCRADDADDRS, table, nets, |io| io.pfrio_nadd)
    }

    /// DIOCRDELADDRS in batches. Returns how many were present and removed.
    pub fn delete(&mut self, table: &str, nets: &[IpNet]) -> Result<u32, PfError> {
        self.batched(sys::DIOCRDELADDRS, table, nets, |io| io.pfrio_ndel)
    }

    /// DIOCRGETADDRS with the kernel's size protocol: when the buffer is too small
    /// the kernel copies nothing, writes the needed count into `pfrio_size` and
    /// succeeds; the buffer is then grown and the request repeated.
    pub fn list(&mut self, table: &str) -> Result<Vec<IpNet>, PfError> {
        Ok(self
            .list_entries(table)?
            .into_iter()
            .filter(|e| !e.negated)
            .map(|e| e.net)
            .collect())
    }

    /// Like [`Pf::list`], with negated entries too.
    pub fn list_entries(&mut self, table: &str) -> Result<Vec<addr::Entry>, PfError> {
        let name = TableName::new(table)?;
        let mut capacity = self.list_hint.max(64);
        for _ in 0..LIST_ATTEMPTS {
            let mut buf = vec![PfrAddr::zeroed(); capacity];
            let mut io = PfiocTable::zeroed();
            io.pfrio_table = name.pfr_table(0);
            io.pfrio_buffer = buf.as_mut_ptr().cast();
            io.pfrio_esize = size_of_c::<PfrAddr>();
            io.pfrio_size = c_int::try_from(capacity).map_err(|_| PfError::TooMany {
                ioctl: "DIOCRGETADDRS",
                table: table.to_owned(),
                count: capacity,
            })?;
            self.issue(sys::DIOCRGETADDRS, &mut io, &name)?;
            let needed = count(io.pfrio_size) as usize;
            if needed > capacity {
                // Nothing was copied; ask again with room for some growth.
                capacity = needed + needed / 8 + 16;
                continue;
            }
            self.list_hint = needed + needed / 8;
            buf.truncate(needed);
            return buf
                .iter()
                .map(|a| {
                    addr::decode(a).map_err(|source| PfError::Decode {
                        table: table.to_owned(),
                        source,
                    })
                })
                .collect();
        }
        Err(PfError::Unstable {
            table: table.to_owned(),
            attempts: LIST_ATTEMPTS,
        })
    }

    /// DIOCRSETADDRS: the table holds exactly `nets` afterwards, in one atomic step
    /// (duplicates in `nets` count once).
    pub fn replace(&mut self, table: &str, nets: &[IpNet]) -> Result<Replaced, PfError> {
        let name = TableName::new(table)?;
        let mut buf: Vec<PfrAddr> = nets.iter().map(addr::encode).collect();
        let mut io = PfiocTable::zeroed();
        io.pfrio_table = name.pfr_table(0);
        io.pfrio_buffer = buf.as_mut_ptr().cast();
        io.pfrio_esize = size_of_c::<PfrAddr>();
        io.pfrio_size = c_int::try_from(buf.len()).map_err(|_| PfError::TooMany {
            ioctl: "DIOCRSETADDRS",
            table: table.to_owned(),
            count: buf.len(),
        })?;
        self.issue(sys::DIOCRSETADDRS, &mut io, &name)?;
        Ok(Replaced {
            added: count(io.pfrio_nadd),
            deleted: count(io.pfrio_ndel),
            changed: count(io.pfrio_nchange),
        })
    }

    /// DIOCRCLRADDRS: empties the table (its `pfrio_esize` must be 0). Returns how
    /// many entries were removed.
    pub fn clear(&mut self, table: &str) -> Result<u32, PfError> {
        let name = TableName::new(table)?;
        let mut io = PfiocTable::zeroed();
        io.pfrio_table = name.pfr_table(0);
        self.issue(sys::DIOCRCLRADDRS, &mut io, &name)?;
        Ok(count(io.pfrio_ndel))
    }

    /// DIOCKILLSTATES twice, as `pfctl -k host` and `pfctl -k 0.0.0.0/0 -k host` do:
    /// first the states `host` originated, then the states towards it, so a banned
    /// host's established connections are cut too. Returns the states killed.
    pub fn kill_states(&mut self, host: IpAddr) -> Result<u32, PfError> {
        let (af, addr, mask) = addr::host_and_mask(host);
        let mut killed = 0;
        for towards in [false, true] {
            let mut psk = PfiocStateKill::zeroed();
            psk.psk_af = af;
            let side = if towards {
                &mut psk.psk_dst
            } else {
                &mut psk.psk_src
            };
            side.addr.v.a = sys::PfAddrMask { addr, mask };
            // SAFETY: `psk` is a live PfiocStateKill, the structure DIOCKILLSTATES
            // encodes; it has no embedded buffer.
            unsafe {
                self.dev.ioctl(
                    sys::DIOCKILLSTATES,
                    (&mut psk as *mut PfiocStateKill).cast(),
                )
            }
            .map_err(|source| PfError::Ioctl {
                ioctl: "DIOCKILLSTATES",
                target: format!("host {host}"),
                source,
            })?;
            killed += psk.psk_killed;
        }
        Ok(killed)
    }

    /// Issues an address request per batch of `nets`; sums what `counted` reads.
    fn batched(
        &mut self,
        request: c_ulong,
        table: &str,
        nets: &[IpNet],
        counted: fn(&PfiocTable) -> c_int,
    ) -> Result<u32, PfError> {
        let name = TableName::new(table)?;
        let mut total = 0u32;
        let mut buf: Vec<PfrAddr> = Vec::with_capacity(self.batch.min(nets.len()));
        for chunk in nets.chunks(self.batch) {
            buf.clear();
            buf.extend(chunk.iter().map(addr::encode));
            let mut io = PfiocTable::zeroed();
            io.pfrio_table = name.pfr_table(0);
            io.pfrio_buffer = buf.as_mut_ptr().cast();
            io.pfrio_esize = size_of_c::<PfrAddr>();
            // A chunk is at most `batch`, which is clamped to c_int::MAX.
            io.pfrio_size = chunk.len() as c_int;
            self.issue(request, &mut io, &name)?;
            total = total.saturating_add(count(counted(&io)));
        }
        Ok(total)
    }

    /// Issues a table request whose buffer `io` already points at.
    fn issue(
        &mut self,
        request: c_ulong,
        io: &mut PfiocTable,
        table: &TableName,
    ) -> Result<(), PfError> {
        // SAFETY: `io` is a live PfiocTable, the structure every DIOCR* request
        // encodes, and each caller points `pfrio_buffer` at a live buffer of at least
        // `pfrio_size` elements of `pfrio_esize` bytes (or sets size 0).
        unsafe { self.dev.ioctl(request, (io as *mut PfiocTable).cast()) }.map_err(|source| {
            PfError::Ioctl {
                ioctl: sys::request_name(request),
                target: format!("table <{}>", table.as_str()),
                source,
            }
        })
    }
}

impl<D: Ioctl> TableOps for Pf<D> {
    fn ensure_table(&mut self, name: &str) -> Result<bool, PfError> {
        Pf::ensure_table(self, name)
    }
    fn add(&mut self, table: &str, nets: &[IpNet]) -> Result<u32, PfError> {
        Pf::add(self, table, nets)
    }
    fn delete(&mut self, table: &str, nets: &[IpNet]) -> Result<u32, PfError> {
        Pf::delete(self, table, nets)
    }
    fn list(&mut self, table: &str) -> Result<Vec<IpNet>, PfError> {
        Pf::list(self, table)
    }
    fn replace(&mut self, table: &str, nets: &[IpNet]) -> Result<Replaced, PfError> {
        Pf::replace(self, table, nets)
    }
    fn clear(&mut self, table: &str) -> Result<u32, PfError> {
        Pf::clear(self, table)
    }
    fn kill_states(&mut self, host: IpAddr) -> Result<u32, PfError> {
        Pf::kill_states(self, host)
    }
}

/// `sizeof(T)` as the `int` the kernel compares `pfrio_esize` with.
fn size_of_c<T>() -> c_int {
    // Only PfrAddr (52) and PfrTable (1064) are passed.
    core::mem::size_of::<T>() as c_int
}

/// A count the kernel wrote; never negative in practice.
fn count(n: c_int) -> u32 {
    u32::try_from(n).unwrap_or(0)
}
