//! An in-memory `/dev/pf` that applies the kernel's table rules, from OpenBSD's
//! `sys/net/pf_ioctl.c` (the `pfrio_esize` checks) and `sys/net/pf_table.c`
//! (`pfr_validate_table`, `pfr_validate_addr`, the add/delete/set/get/clear
//! counting and the DIOCRGETADDRS size protocol), so the real encoding code, raw
//! pointers included, runs in tests on any system. It reads its argument through the
//! pointer it is given and writes the results back, as `copyin`/`copyout` do.
//!
//! Not modelled: anchors other than the main ruleset's, route-to entries, counters,
//! pfsync, and states beyond their two addresses.

use std::collections::{BTreeMap, HashSet};
use std::io;
use std::net::IpAddr;

use core::ffi::{c_int, c_ulong, c_void};

use ipnet::IpNet;

use super::Ioctl;
use super::addr::{self, Entry};
use super::sys::{self, PfiocStateKill, PfiocTable, PfrAddr, PfrTable};

/// An entry's identity in a table: family, address bytes, prefix length.
type Key = (u8, [u8; 16], u8);

#[derive(Debug, Default)]
struct Table {
    flags: u32,
    /// Key → negated.
    entries: BTreeMap<Key, bool>,
}

/// A state as DIOCKILLSTATES sees it: who opened it and towards whom.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FakeState {
    /// The originator (`psk_src` matches it).
    pub src: IpAddr,
    /// The other end (`psk_dst` matches it).
    pub dst: IpAddr,
}

/// The in-memory device. Tables are created with [`FakePf::with_table`] (as
/// `table <name> persist` in pf.conf would) or by DIOCRADDTABLES.
#[derive(Debug, Default)]
pub struct FakePf {
    tables: BTreeMap<String, Table>,
    states: Vec<FakeState>,
    calls: Vec<c_ulong>,
    fail_next: Option<(c_ulong, i32)>,
    grow_on_get: Vec<(String, IpNet)>,
    securelevel: i32,
}

impl FakePf {
    /// A device with no tables.
    pub fn new() -> Self {
        FakePf::default()
    }

    /// Adds an empty persistent table, as pf.conf's `table <name> persist` does.
    pub fn with_table(mut self, name: &str) -> Self {
        self.tables.insert(
            name.to_owned(),
            Table {
                flags: sys::PFR_TFLAG_PERSIST | sys::PFR_TFLAG_ACTIVE,
                ..Table::default()
            },
        );
        self
    }

    /// Sets `kern.securelevel`. Above 1, pf(4) refuses DIOCRADDTABLES (unless
    /// `PFR_FLAG_DUMMY`) and DIOCKILLSTATES with EPERM, but still changes addresses.
    pub fn set_securelevel(&mut self, level: i32) {
        self.securelevel = level;
    }

    /// Marks a table const (`table <name> const`): address changes fail with EPERM.
    pub fn make_const(&mut self, name: &str) {
        if let Some(t) = self.tables.get_mut(name) {
            t.flags |= sys::PFR_TFLAG_CONST;
        }
    }

    /// Removes a table, as `pfctl -t name -T kill` does.
    pub fn kill_table(&mut self, name: &str) {
        self.tables.remove(name);
    }

    /// The table's entries in the kernel's order (IPv4 first), or None if missing.
    pub fn entries(&self, name: &str) -> Option<Vec<Entry>> {
        let t = self.tables.get(name)?;
        Some(
            t.entries
                .iter()
                .map(|(k, &negated)| {
                    let a = pfr_addr(k, negated);
                    let mut e = addr::decode(&a).expect("the fake holds only valid entries");
                    e.negated = negated;
                    e
                })
                .collect(),
        )
    }

    /// The table's non-negated blocks, or None if missing.
    pub fn nets(&self, name: &str) -> Option<Vec<IpNet>> {
        Some(
            self.entries(name)?
                .into_iter()
                .filter(|e| !e.negated)
                .map(|e| e.net)
                .collect(),
        )
    }

    /// Whether a table exists.
    pub fn has_table(&self, name: &str) -> bool {
        self.tables.contains_key(name)
    }

    /// Inserts an entry directly, as an admin's `pfctl -T add` would.
    pub fn insert(&mut self, table: &str, net: IpNet, negated: bool) {
        if let Some(t) = self.tables.get_mut(table) {
            t.entries.insert(key(&addr::encode(&net)), negated);
        }
    }

    /// Adds a state.
    pub fn add_state(&mut self, src: IpAddr, dst: IpAddr) {
        self.states.push(FakeState { src, dst });
    }

    /// The states still alive.
    pub fn states(&self) -> &[FakeState] {
        &self.states
    }

    /// Every request number issued so far, in order.
    pub fn calls(&self) -> &[c_ulong] {
        &self.calls
    }

    /// How many times `request` was issued.
    pub fn count_calls(&self, request: c_ulong) -> usize {
        self.calls.iter().filter(|&&r| r == request).count()
    }

    /// Makes the next `request` fail with `errno` before doing anything.
    pub fn fail_next(&mut self, request: c_ulong, errno: i32) {
        self.fail_next = Some((request, errno));
    }

    /// Makes `table` gain `nets` just before each of the next `nets.len()`
    /// DIOCRGETADDRS requests (one entry per request), as concurrent bans would,
    /// so a buffer sized from the previous answer is too small again.
    pub fn grow_on_get(&mut self, table: &str, nets: &[IpNet]) {
        self.grow_on_get
            .extend(nets.iter().map(|n| (table.to_owned(), *n)));
    }

    fn table_io(&mut self, request: c_ulong, io: &mut PfiocTable) -> Result<(), i32> {
        match request {
            sys::DIOCRADDTABLES => self.add_tables(io),
            sys::DIOCRCLRADDRS => {
                if io.pfrio_esize != 0 {
                    return Err(libc::ENODEV);
                }
                accept_flags(io.pfrio_flags, sys::PFR_FLAG_DUMMY)?;
                let t = self.writable_table(&io.pfrio_table)?;
                io.pfrio_ndel = t.entries.len() as c_int;
                if io.pfrio_flags & sys::PFR_FLAG_DUMMY == 0 {
                    t.entries.clear();
                }
                Ok(())
            }
            sys::DIOCRADDADDRS => {
                check_esize::<PfrAddr>(io)?;
                accept_flags(io.pfrio_flags, sys::PFR_FLAG_DUMMY | sys::PFR_FLAG_FEEDBACK)?;
                validate_table(&io.pfrio_table, 0)?;
                // The kernel copies in and validates every address before it looks
                // the table up, so a bad address fails the whole request.
                let addrs = read_addrs(io)?;
                let t = self.writable_table(&io.pfrio_table)?;
                let mut added = 0;
                let mut batch = HashSet::new();
                for a in &addrs {
                    let k = key(a);
                    if t.entries.contains_key(&k) || !batch.insert(k) {
                        continue;
                    }
                    added += 1;
                }
                if io.pfrio_flags & sys::PFR_FLAG_DUMMY == 0 {
                    for k in batch {
                        t.entries.insert(k, false);
                    }
                }
                io.pfrio_nadd = added;
                Ok(())
            }
            sys::DIOCRDELADDRS => {
                let (addrs, t) = self.table_then_addrs(io)?;
                let mut gone = HashSet::new();
                for a in &addrs {
                    let k = key(a);
                    if t.entries.get(&k) == Some(&(a.pfra_not == 1)) {
                        gone.insert(k);
                    }
                }
                io.pfrio_ndel = gone.len() as c_int;
                if io.pfrio_flags & sys::PFR_FLAG_DUMMY == 0 {
                    for k in gone {
                        t.entries.remove(&k);
                    }
                }
                Ok(())
            }
            sys::DIOCRSETADDRS => {
                let (addrs, t) = self.table_then_addrs(io)?;
                let mut next: BTreeMap<Key, bool> = BTreeMap::new();
                let (mut added, mut changed) = (0, 0);
                for a in &addrs {
                    let k = key(a);
                    let negated = a.pfra_not == 1;
                    if next.contains_key(&k) {
                        continue; // PFR_FB_DUPLICATE
                    }
                    match t.entries.get(&k) {
                        Some(&old) if old != negated => changed += 1,
                        Some(_) => {}
                        None => added += 1,
                    }
                    next.insert(k, negated);
                }
                let deleted = t.entries.keys().filter(|k| !next.contains_key(k)).count();
                io.pfrio_nadd = added;
                io.pfrio_ndel = deleted as c_int;
                io.pfrio_nchange = changed;
                if io.pfrio_flags & sys::PFR_FLAG_DUMMY == 0 {
                    t.entries = next;
                }
                Ok(())
            }
            sys::DIOCRGETADDRS => {
                check_esize::<PfrAddr>(io)?;
                accept_flags(io.pfrio_flags, 0)?;
                validate_table(&io.pfrio_table, 0)?;
                let name = table_name(&io.pfrio_table);
                if let Some(pos) = self.grow_on_get.iter().position(|(t, _)| *t == name) {
                    let (t, net) = self.grow_on_get.remove(pos);
                    self.insert(&t, net, false);
                }
                let t = self.tables.get(&name).ok_or(libc::ESRCH)?;
                let cnt = t.entries.len() as c_int;
                if cnt > io.pfrio_size {
                    io.pfrio_size = cnt;
                    return Ok(());
                }
                if cnt > 0 && io.pfrio_buffer.is_null() {
                    return Err(libc::EFAULT);
                }
                for (i, (k, &negated)) in t.entries.iter().enumerate() {
                    let a = pfr_addr(k, negated);
                    // SAFETY: the Ioctl contract makes the buffer valid for
                    // `pfrio_size` (>= cnt) entries of `pfrio_esize` (checked) bytes.
                    unsafe { io.pfrio_buffer.cast::<PfrAddr>().add(i).write_unaligned(a) };
                }
                io.pfrio_size = cnt;
                Ok(())
            }
            _ => Err(libc::ENODEV),
        }
    }

    fn add_tables(&mut self, io: &mut PfiocTable) -> Result<(), i32> {
        check_esize::<PfrTable>(io)?;
        accept_flags(io.pfrio_flags, sys::PFR_FLAG_DUMMY)?;
        let size = usize::try_from(io.pfrio_size).map_err(|_| libc::EINVAL)?;
        if size > 0 && io.pfrio_buffer.is_null() {
            return Err(libc::EFAULT);
        }
        let mut wanted = Vec::with_capacity(size);
        for i in 0..size {
            // SAFETY: the Ioctl contract makes the buffer valid for `pfrio_size`
            // entries of `pfrio_esize` (checked) bytes.
            let t = unsafe { io.pfrio_buffer.cast::<PfrTable>().add(i).read_unaligned() };
            validate_table(&t, sys::PFR_TFLAG_USRMASK)?;
            wanted.push(t);
        }
        let mut added = 0;
        for t in wanted {
            let name = table_name(&t);
            if self.tables.contains_key(&name) {
                continue;
            }
            added += 1;
            if io.pfrio_flags & sys::PFR_FLAG_DUMMY == 0 {
                self.tables.insert(
                    name,
                    Table {
                        flags: t.pfrt_flags | sys::PFR_TFLAG_ACTIVE,
                        ..Table::default()
                    },
                );
            }
        }
        io.pfrio_nadd = added;
        Ok(())
    }

    /// DIOCRDELADDRS' and DIOCRSETADDRS' checks in the kernel's order: `pfrio_esize`
    /// (ENODEV), flags and table (EINVAL), lookup (ESRCH), const (EPERM), and only
    /// then every address (EINVAL).
    fn table_then_addrs(&mut self, io: &PfiocTable) -> Result<(Vec<PfrAddr>, &mut Table), i32> {
        check_esize::<PfrAddr>(io)?;
        accept_flags(io.pfrio_flags, sys::PFR_FLAG_DUMMY | sys::PFR_FLAG_FEEDBACK)?;
        let t = self.writable_table(&io.pfrio_table)?;
        let addrs = read_addrs(io)?;
        Ok((addrs, t))
    }

    /// `pfr_validate_table`, then the lookup (ESRCH) and the const check (EPERM).
    fn writable_table(&mut self, t: &PfrTable) -> Result<&mut Table, i32> {
        validate_table(t, 0)?;
        let table = self.tables.get_mut(&table_name(t)).ok_or(libc::ESRCH)?;
        if table.flags & sys::PFR_TFLAG_CONST != 0 {
            return Err(libc::EPERM);
        }
        Ok(table)
    }

    fn kill_states(&mut self, psk: &mut PfiocStateKill) {
        let mut killed = 0;
        if psk.psk_pfcmp.id != 0 {
            // Killing by state id: the fake's states have none.
            psk.psk_killed = 0;
            return;
        }
        // SAFETY: reading the `a` member of the address unions, which is what the
        // kernel reads for DIOCKILLSTATES; every bit pattern is a valid byte array.
        let (src, dst) = unsafe { (psk.psk_src.addr.v.a, psk.psk_dst.addr.v.a) };
        self.states.retain(|s| {
            let af = family(s.src);
            let hit = (psk.psk_af == 0 || psk.psk_af == af)
                && psk.psk_rdomain == 0
                && match_addr(psk.psk_src.neg, &src, s.src)
                && match_addr(psk.psk_dst.neg, &dst, s.dst);
            if hit {
                killed += 1;
            }
            !hit
        });
        psk.psk_killed = killed;
    }
}

impl Ioctl for FakePf {
    unsafe fn ioctl(&mut self, request: c_ulong, arg: *mut c_void) -> io::Result<()> {
        self.calls.push(request);
        if let Some((r, errno)) = self.fail_next
            && r == request
        {
            self.fail_next = None;
            return Err(io::Error::from_raw_os_error(errno));
        }
        if arg.is_null() {
            return Err(io::Error::from_raw_os_error(libc::EFAULT));
        }
        if self.securelevel > 1 {
            let refused = match request {
                sys::DIOCKILLSTATES => true,
                sys::DIOCRADDTABLES => {
                    // SAFETY: the Ioctl contract: `arg` points at a live PfiocTable.
                    let io = unsafe { arg.cast::<PfiocTable>().read_unaligned() };
                    io.pfrio_flags & sys::PFR_FLAG_DUMMY == 0
                }
                _ => false,
            };
            if refused {
                return Err(io::Error::from_raw_os_error(libc::EPERM));
            }
        }
        let result = if request == sys::DIOCKILLSTATES {
            // SAFETY: the Ioctl contract: `arg` points at a live PfiocStateKill.
            let mut psk = unsafe { arg.cast::<PfiocStateKill>().read_unaligned() };
            self.kill_states(&mut psk);
            // SAFETY: as above; IOC_OUT copies the argument back.
            unsafe { arg.cast::<PfiocStateKill>().write_unaligned(psk) };
            Ok(())
        } else {
            // SAFETY: the Ioctl contract: `arg` points at a live PfiocTable.
            let mut io = unsafe { arg.cast::<PfiocTable>().read_unaligned() };
            let r = self.table_io(request, &mut io);
            if r.is_ok() {
                // SAFETY: as above; IOC_OUT copies the argument back on success.
                unsafe { arg.cast::<PfiocTable>().write_unaligned(io) };
            }
            r
        };
        result.map_err(io::Error::from_raw_os_error)
    }
}

fn check_esize<T>(io: &PfiocTable) -> Result<(), i32> {
    if io.pfrio_esize as usize != core::mem::size_of::<T>() || io.pfrio_esize < 0 {
        return Err(libc::ENODEV);
    }
    Ok(())
}

/// The kernel's `ACCEPT_FLAGS`.
fn accept_flags(flags: c_int, ok: c_int) -> Result<(), i32> {
    if (flags & !ok) & sys::PFR_FLAG_ALLMASK != 0 {
        return Err(libc::EINVAL);
    }
    Ok(())
}

/// The kernel's `pfr_validate_table` (and `pfr_fix_anchor`'s NUL checks).
fn validate_table(t: &PfrTable, allowed_flags: u32) -> Result<(), i32> {
    let name = &t.pfrt_name;
    let len = name.iter().position(|&b| b == 0).unwrap_or(name.len());
    let bad_name = len == 0 || name[sys::PF_TABLE_NAME_SIZE - 1] != 0;
    let anchor = &t.pfrt_anchor;
    let alen = anchor.iter().position(|&b| b == 0).unwrap_or(anchor.len());
    let bad_anchor = anchor[sys::MAXPATHLEN - 1] != 0 || anchor[alen..].iter().any(|&b| b != 0);
    if bad_name
        || name[len..].iter().any(|&b| b != 0)
        || bad_anchor
        || t.pfrt_flags & !allowed_flags != 0
    {
        return Err(libc::EINVAL);
    }
    // Only the main ruleset is modelled.
    if alen != 0 {
        return Err(libc::ESRCH);
    }
    Ok(())
}

fn read_addrs(io: &PfiocTable) -> Result<Vec<PfrAddr>, i32> {
    let size = usize::try_from(io.pfrio_size).map_err(|_| libc::EINVAL)?;
    if size > 0 && io.pfrio_buffer.is_null() {
        return Err(libc::EFAULT);
    }
    (0..size)
        .map(|i| {
            // SAFETY: the Ioctl contract makes the buffer valid for `pfrio_size`
            // entries of `pfrio_esize` (checked by the caller) bytes.
            let a = unsafe { io.pfrio_buffer.cast::<PfrAddr>().add(i).read_unaligned() };
            addr::validate(&a).map_err(|_| libc::EINVAL)?;
            Ok(a)
        })
        .collect()
}

fn table_name(t: &PfrTable) -> String {
    let len = t.pfrt_name.iter().position(|&b| b == 0).unwrap_or(0);
    String::from_utf8_lossy(&t.pfrt_name[..len]).into_owned()
}

fn key(a: &PfrAddr) -> Key {
    (a.pfra_af, a.pfra_u.0, a.pfra_net)
}

fn pfr_addr(k: &Key, negated: bool) -> PfrAddr {
    let mut a = PfrAddr::zeroed();
    a.pfra_af = k.0;
    a.pfra_u.0 = k.1;
    a.pfra_net = k.2;
    a.pfra_not = u8::from(negated);
    a
}

fn family(ip: IpAddr) -> u8 {
    match ip {
        IpAddr::V4(_) => sys::AF_INET,
        IpAddr::V6(_) => sys::AF_INET6,
    }
}

/// The kernel's `pf_match_addr`: `(a & m) == (b & m)`, inverted by `neg`; a zero
/// mask matches everything.
fn match_addr(neg: u8, am: &sys::PfAddrMask, b: IpAddr) -> bool {
    let bytes = match b {
        IpAddr::V4(v4) => {
            let mut x = [0u8; 16];
            x[..4].copy_from_slice(&v4.octets());
            x
        }
        IpAddr::V6(v6) => v6.octets(),
    };
    let width = if matches!(b, IpAddr::V4(_)) { 4 } else { 16 };
    let hit = (0..width).all(|i| am.addr.0[i] & am.mask.0[i] == bytes[i] & am.mask.0[i]);
    hit != (neg != 0)
}
