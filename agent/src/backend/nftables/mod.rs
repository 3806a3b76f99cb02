//! The nftables backend: bans live in sets of a table log2drop owns, written over
//! netlink in one transaction per engine batch. Prefix bans go into the interval
//! sets `ban4`/`ban6` (`flags interval, timeout`); single-address bans into the hash
//! set `ban4_all`/`ban6_all`, or, once a family has more than [`SHARD_ABOVE`] of
//! them, into hash sets `ban4_K`/`ban6_K` picked by the address's low bits (see
//! [`ruleset`] for the layout and [`wire::SHARDS`] for why). Elements carry the ban's remaining time as
//! their kernel timeout, so bans expire even while the agent is down, and the table
//! outlives the agent, so a crash keeps them.
//!
//! Ownership: the table carries the comment "managed by log2drop"; a same-named table
//! without it belongs to someone else and [`NftablesBackend::open`] refuses to touch
//! it. No other table is ever changed.
//!
//! Overlapping prefix bans (a /16 over a /24) cannot sit in an interval set side by
//! side, so the prefix sets hold [`segments`] of the banned space. The backend keeps
//! a mirror of what it wrote, diffs each batch against it ([`plan`]), and when the
//! kernel refuses a transaction (someone edited a set) it re-reads every set and
//! reconciles.
//!
//! Submodules: [`segments`] (interval logic), [`plan`] (differences), [`ruleset`]
//! (table, sets, chains), [`wire`] (messages through libnftnl), [`socket`] (the
//! netlink socket), [`error`], [`measure`] (bulk measurements); [`config`] is
//! `[backends.nftables]`.

pub mod config;
mod error;
pub mod measure;
mod plan;
mod ruleset;
mod segments;
mod socket;
mod wire;

use std::collections::{BTreeMap, HashMap};
use std::ffi::CString;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use ipnet::IpNet;
use nftnl::{Batch, MsgType};

pub use error::NftError;

use self::config::{NftHook, NftablesConfig};
use self::plan::{Listed, Op, Plan, intervals, timeout_ms};
use self::ruleset::{Base, Layout};
use self::segments::{Family, Index, Segment, Span, Until, expired};
use self::socket::{KernelError, Socket, means_not_permitted};
use self::wire::{ListedElem, RawSet, SetId, TableFamily, TableMsg, msg};
use super::{Backend, BackendConfig, BackendError, Change, DropCounts, ReconcileReport};
use crate::config::locate::KeyPath;
use crate::engine::{Ban, Decision};

/// Most set elements in one transaction. An engine batch is far smaller and goes in
/// one; a reconcile of a million bans is cut into transactions of this size, which
/// bounds the kernel's and libnftnl's memory per transaction.
const MAX_ELEMS_PER_TRANSACTION: usize = 200_000;

/// Single addresses per family above which they are spread over the shard sets.
/// One set is what a packet costs least (one lookup, as with a plain set: about
/// 10–15% more packets per second than the sharded layout's map lookup and jump),
/// but reading it back at a restart costs time quadratic in its size (0.26 s at
/// 65,536, over a minute at a million), and crossing this size moves every address
/// once, which delays that one batch (about 0.15 s at 65,536). Small enough that
/// the move stays short, large enough for the ban lists most hosts carry.
pub const SHARD_ABOVE: usize = 16_384;

/// Kernel version from which `DESTROYSETELEM` exists (delete without failing when
/// the element is gone).
const DESTROY_SINCE: (u32, u32) = (6, 3);

/// One address family's bans and what the kernel sets hold for them.
#[derive(Debug)]
struct FamilyState {
    /// Prefix bans.
    index: Index,
    /// Segments written to the prefix set, by first address.
    mirror: BTreeMap<u128, Segment>,
    /// Single-address bans.
    exact: HashMap<u128, Until>,
    /// Single addresses written to the exact sets.
    exact_mirror: HashMap<u128, Until>,
}

impl FamilyState {
    fn new(family: Family) -> FamilyState {
        FamilyState {
            index: Index::new(family),
            mirror: BTreeMap::new(),
            exact: HashMap::new(),
            exact_mirror: HashMap::new(),
        }
    }
}

/// How many elements the backend believes the kernel holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ElementCounts {
    /// Segments in `ban4` and `ban6` (prefix bans).
    pub prefixes: [usize; 2],
    /// Addresses in the `ban4_K` and `ban6_K` sets.
    pub addresses: [usize; 2],
}

/// Where the last reconcile spent its time (both families added up), for the bench.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReconcileTiming {
    /// Reading the sets back (netlink dumps and parsing).
    pub read: Duration,
    /// Computing segments and the difference.
    pub compute: Duration,
    /// Sending the difference (transactions, including the kernel's commit).
    pub write: Duration,
    /// Dump messages the kernel sent.
    pub dump_messages: usize,
}

/// The nftables backend. Dropping it leaves the table, sets and chains in place;
/// that is the point. [`NftablesBackend::flush`] removes them.
///
/// Every operation goes through the one socket opened by [`NftablesBackend::open`],
/// so all of them act on the network namespace the backend was opened in, whatever
/// namespace the calling thread is in later. The mutex lets the `&self` readers
/// ([`NftablesBackend::rule_counter`]) use it too; `&mut self` paths reach it
/// without locking.
#[derive(Debug)]
pub struct NftablesBackend {
    sock: Mutex<Socket>,
    table: CString,
    table_name: String,
    family: TableFamily,
    v4: FamilyState,
    v6: FamilyState,
    destroy: bool,
    /// The config the rules are built from (action, counter).
    cfg: NftablesConfig,
    bases: Vec<Base>,
    /// Whether single addresses live in the shards (both families together).
    sharded: bool,
    /// The rules the base chains hold now.
    rules: Layout,
    /// What rules replaced since open had counted (a new rule starts from zero).
    counted_before: DropCounts,
    timing: ReconcileTiming,
}

/// Tables of `family` and whether each is ours.
fn list_tables(sock: &mut Socket, family: TableFamily) -> Result<Vec<wire::TableInfo>, NftError> {
    let req = wire::dump_request(msg::GETTABLE, family.raw(), None, 1);
    let mut out = Vec::new();
    sock.dump(&req, |m| {
        if let Some(t) = wire::parse_table(m) {
            out.push(t);
        }
        Ok(())
    })
    .map_err(|source| dump_error("tables", family, "*", source))?;
    Ok(out)
}

fn dump_error(
    what: &'static str,
    family: TableFamily,
    table: &str,
    source: std::io::Error,
) -> NftError {
    if socket::means_no_nftables(&source) {
        NftError::NoNfTables { source }
    } else if means_not_permitted(&source) {
        NftError::NotPermitted {
            action: format!("list nftables {what}"),
        }
    } else {
        NftError::Dump {
            what,
            family: family.name(),
            table: table.to_owned(),
            source,
        }
    }
}

/// Whether the running kernel is at least `want` (major, minor).
fn kernel_at_least(want: (u32, u32)) -> bool {
    let Ok(uts) = nix::sys::utsname::uname() else {
        return false;
    };
    let release = uts.release().to_string_lossy();
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty())
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let major = parts.next().unwrap_or(0);
    let minor = parts.next().unwrap_or(0);
    (major, minor) >= want
}

fn cname(what: &'static str, name: &str) -> Result<CString, NftError> {
    CString::new(name).map_err(|_| NftError::BadName {
        what,
        name: name.to_owned(),
    })
}

fn table_family(cfg: &NftablesConfig) -> TableFamily {
    match cfg.hook {
        NftHook::Input | NftHook::Forward | NftHook::Prerouting => TableFamily::Inet,
        NftHook::Ingress => TableFamily::Netdev,
    }
}

impl NftablesBackend {
    /// Creates the table, sets and chains, or takes over the ones a previous run
    /// left, in one transaction. Existing bans stay in the sets; the base chains are
    /// replaced atomically, so a changed hook, priority, action or counter applies.
    /// A same-named table log2drop did not create is refused; log2drop's own table in
    /// the other family (left by a hook change) is removed.
    ///
    /// Netlink sockets belong to the network namespace of the thread that opens them.
    pub fn open(cfg: &NftablesConfig) -> Result<NftablesBackend, NftError> {
        let table = cname("table", &cfg.table)?;
        let family = table_family(cfg);
        let mut bases: Vec<Base> = Vec::new();
        match cfg.hook {
            NftHook::Input | NftHook::Forward | NftHook::Prerouting => {
                bases.push((cname("chain", ruleset::inet_chain(cfg.hook))?, None))
            }
            NftHook::Ingress => {
                for name in &cfg.interfaces {
                    nix::net::if_::if_nametoindex(name.as_str()).map_err(|source| {
                        NftError::UnknownInterface {
                            interface: name.clone(),
                            source,
                        }
                    })?;
                    bases.push((
                        cname("chain", &ruleset::ingress_chain(name))?,
                        Some(cname("interface", name)?),
                    ));
                }
            }
        }
        let mut sock = Socket::open()?;

        let exists = match list_tables(&mut sock, family)?
            .into_iter()
            .find(|t| t.name == cfg.table)
        {
            Some(t) if !t.ours => {
                return Err(NftError::NotOurTable {
                    family: family.name(),
                    table: cfg.table.clone(),
                });
            }
            Some(_) => true,
            None => false,
        };
        let stale_other_family = list_tables(&mut sock, family.other())?
            .into_iter()
            .any(|t| t.name == cfg.table && t.ours);
        let mut chains = Vec::new();
        if exists {
            let req = wire::dump_request(msg::GETCHAIN, family.raw(), None, 2);
            sock.dump(&req, |m| {
                if let Some((t, c)) = wire::parse_chain(m)
                    && t == cfg.table
                {
                    chains.push(c);
                }
                Ok(())
            })
            .map_err(|source| dump_error("chains", family, &cfg.table, source))?;
        }

        let mut batch = Batch::new();
        let existing = ruleset::Existing {
            stale_other_family,
            chains,
        };
        ruleset::build(&mut batch, &table, family, cfg, &bases, &existing);
        transaction(
            &mut sock,
            batch,
            "create the table, sets and chains",
            family,
            &cfg.table,
        )?;
        tracing::info!(
            table = %cfg.table,
            family = family.name(),
            hook = ?cfg.hook,
            priority = cfg.priority,
            took_over = exists,
            "nftables table ready"
        );
        Ok(NftablesBackend {
            sock: Mutex::new(sock),
            table,
            table_name: cfg.table.clone(),
            family,
            v4: FamilyState::new(Family::V4),
            v6: FamilyState::new(Family::V6),
            destroy: kernel_at_least(DESTROY_SINCE),
            cfg: cfg.clone(),
            bases,
            sharded: false,
            rules: Layout::Both,
            counted_before: DropCounts::default(),
            timing: ReconcileTiming::default(),
        })
    }

    /// Removes log2drop's table (both families: `inet` and `netdev`) and everything in
    /// it. Refuses a same-named table log2drop did not create. Returns how many
    /// tables went.
    pub fn flush(cfg: &NftablesConfig) -> Result<usize, NftError> {
        let table = cname("table", &cfg.table)?;
        let mut sock = Socket::open()?;
        let mut gone = 0;
        for family in [TableFamily::Inet, TableFamily::Netdev] {
            let Some(t) = list_tables(&mut sock, family)?
                .into_iter()
                .find(|t| t.name == cfg.table)
            else {
                continue;
            };
            if !t.ours {
                return Err(NftError::NotOurTable {
                    family: family.name(),
                    table: cfg.table.clone(),
                });
            }
            let mut batch = Batch::new();
            batch.add(&TableMsg::delete(&table, family), MsgType::Add);
            transaction(&mut sock, batch, "delete the table", family, &cfg.table)?;
            gone += 1;
        }
        Ok(gone)
    }

    /// Packets and bytes the chain turned away since the backend was opened, when
    /// `counter = true`; `None` otherwise. Read over the backend's own socket, so
    /// from the namespace the backend was opened in.
    pub fn rule_counter(&self) -> Result<Option<DropCounts>, NftError> {
        if !self.cfg.counter {
            return Ok(None);
        }
        // Poisoned only if a dump callback panicked; the socket is still open and
        // the next request starts a new dump.
        let mut sock = self.sock.lock().unwrap_or_else(|p| p.into_inner());
        let req = wire::dump_request(msg::GETRULE, self.family.raw(), None, 3);
        let mut total = self.counted_before;
        sock.dump(&req, |m| {
            if let Some((table, packets, bytes)) = wire::parse_rule_counters(m)
                && table == self.table_name
            {
                total.packets += packets;
                total.bytes += bytes;
            }
            Ok(())
        })
        .map_err(|source| dump_error("rules", self.family, &self.table_name, source))?;
        Ok(Some(total))
    }

    /// How many elements the backend believes the kernel holds.
    pub fn element_counts(&self) -> ElementCounts {
        ElementCounts {
            prefixes: [self.v4.mirror.len(), self.v6.mirror.len()],
            addresses: [self.v4.exact_mirror.len(), self.v6.exact_mirror.len()],
        }
    }

    /// Whether single addresses are spread over the shard sets (more than
    /// [`SHARD_ABOVE`] in a family when the layout was last chosen).
    pub fn is_sharded(&self) -> bool {
        self.sharded
    }

    /// Where the last [`Backend::reconcile`] spent its time.
    pub(crate) fn last_reconcile_timing(&self) -> ReconcileTiming {
        self.timing
    }

    /// The socket, for the `&mut self` paths (no locking needed).
    fn socket(&mut self) -> &mut Socket {
        self.sock.get_mut().unwrap_or_else(|p| p.into_inner())
    }

    /// Sends `batch` as one transaction over the backend's socket.
    fn transaction(&mut self, batch: Batch, action: &str) -> Result<(), NftError> {
        let sock = self.sock.get_mut().unwrap_or_else(|p| p.into_inner());
        transaction(sock, batch, action, self.family, &self.table_name)
    }

    fn state(&mut self, family: Family) -> &mut FamilyState {
        match family {
            Family::V4 => &mut self.v4,
            Family::V6 => &mut self.v6,
        }
    }

    /// Lists set `set`'s elements, with deadlines counted from when each dump message
    /// was written.
    fn read_set(&mut self, set: SetId, now: SystemTime) -> Result<Vec<Listed>, NftError> {
        let name = set.name();
        let req = wire::dump_request(
            msg::GETSETELEM,
            self.family.raw(),
            Some((&self.table, &name)),
            4,
        );
        let family = set.family();
        let mut listed: Vec<Listed> = Vec::new();
        let mut scratch: Vec<ListedElem> = Vec::new();
        let mut bad = false;
        let mut messages = 0usize;
        let (tfam, tname) = (self.family, self.table_name.clone());
        self.socket()
            .dump(&req, |m| {
                messages += 1;
                scratch.clear();
                if !wire::parse_elems(m, family, &mut scratch) {
                    bad = true;
                }
                let at = SystemTime::now().max(now);
                listed.extend(scratch.iter().map(|e| Listed {
                    addr: e.addr,
                    end: e.end,
                    until: e.expires_ms.map(|ms| at + Duration::from_millis(ms)),
                }));
                Ok(())
            })
            .map_err(|source| dump_error("set elements", tfam, &tname, source))?;
        self.timing.dump_messages += messages;
        if bad {
            return Err(NftError::Malformed {
                action: "reading set elements",
            });
        }
        Ok(listed)
    }

    /// Sends `ops` in as few transactions as the size cap allows (one for any normal
    /// batch), never splitting an operation from the one it is joined to.
    fn send(&mut self, ops: &[Op], now: SystemTime) -> Result<(), NftError> {
        let mut i = 0;
        while i < ops.len() {
            let sent_at = SystemTime::now().max(now);
            let mut sets: BTreeMap<SetId, (RawSet, RawSet)> = BTreeMap::new();
            let mut count = 0;
            while i < ops.len() && (count < MAX_ELEMS_PER_TRANSACTION || ops[i].joined) {
                let op = ops[i];
                i += 1;
                let family = op.set.family();
                let (dels, adds) = sets.entry(op.set).or_insert_with(|| {
                    (
                        RawSet::new(&self.table, self.family, op.set),
                        RawSet::new(&self.table, self.family, op.set),
                    )
                });
                let start = family.key(op.span.first);
                // Exact sets hold single keys; prefix sets close each interval.
                let end = match op.set {
                    SetId::Prefixes(_) if op.span.last < family.max() => {
                        Some(family.key(op.span.last + 1))
                    }
                    _ => None,
                };
                if op.del {
                    if !self.destroy && expired(op.until, now) {
                        // Gone from the kernel already; deleting it would fail.
                        continue;
                    }
                    dels.push(&start, 0, None);
                    if let Some(end) = &end {
                        dels.push(end, wire::ELEM_INTERVAL_END, None);
                    }
                } else {
                    let Ok(timeout) = timeout_ms(op.until, sent_at) else {
                        continue;
                    };
                    adds.push(&start, 0, timeout);
                    if let Some(end) = &end {
                        adds.push(end, wire::ELEM_INTERVAL_END, None);
                    }
                }
                count += 1 + usize::from(end.is_some());
            }
            if count == 0 {
                continue;
            }
            let mut batch = Batch::new();
            let del_kind = if self.destroy {
                msg::DESTROYSETELEM
            } else {
                msg::DELSETELEM
            };
            for (dels, adds) in sets.values() {
                dels.add_elements(&mut batch, del_kind);
                adds.add_elements(&mut batch, msg::NEWSETELEM);
            }
            self.transaction(batch, "update the ban sets")?;
        }
        Ok(())
    }

    /// Makes every set of the kernel hold exactly what the bans say: reads all sets
    /// back, diffs, sends the difference, and resets the mirrors to match.
    fn resync(&mut self, now: SystemTime) -> Result<ReconcileReport, NftError> {
        let mut plan = Plan::default();
        let mut read = Duration::ZERO;
        let mut desired_segments = Vec::new();
        for family in [Family::V4, Family::V6] {
            let started = Instant::now();
            let listed = self.read_set(SetId::Prefixes(family), now)?;
            let mut by_set = Vec::new();
            for k in 0..=wire::SINGLE {
                let set = SetId::Exact(family, k);
                by_set.push((set, self.read_set(set, now)?));
            }
            read += started.elapsed();
            let current = intervals(listed, family);
            let full = Span {
                first: 0,
                last: family.max(),
            };
            let st = self.state(family);
            let desired = st.index.segments(full, now);
            plan.segments(family, &current, &desired);
            desired_segments.push(desired);
            st.exact.retain(|_, u| !expired(*u, now));
            let mut desired: Vec<(u128, Until)> = st.exact.iter().map(|(a, u)| (*a, *u)).collect();
            desired.sort_unstable_by_key(|(a, _)| *a);
            let mut listed: Vec<(u128, u8, Until)> = Vec::new();
            for (set, elems) in by_set {
                let SetId::Exact(_, k) = set else { continue };
                listed.extend(elems.iter().map(|e| (e.addr, k, e.until)));
            }
            listed.sort_unstable_by_key(|(a, k, _)| (*a, *k));
            plan.exact_merge(family, &listed, &desired, self.sharded);
        }
        let computed = Instant::now();
        self.send(&plan.ops, now)?;
        self.timing.read += read;
        self.timing.write += computed.elapsed();
        for (family, desired) in [Family::V4, Family::V6].into_iter().zip(desired_segments) {
            let st = self.state(family);
            st.mirror = desired.into_iter().map(|s| (s.span.first, s)).collect();
            st.exact_mirror = st.exact.clone();
        }
        Ok(plan.report)
    }

    /// Makes the base chains look where `layout` says, in one transaction.
    fn set_rules(&mut self, layout: Layout) -> Result<(), NftError> {
        if self.rules == layout {
            return Ok(());
        }
        // The new rules count from zero: keep what the old ones counted.
        let before = self.rule_counter()?.unwrap_or_default();
        let mut batch = Batch::new();
        ruleset::replace_rules(
            &mut batch,
            &self.table,
            self.family,
            &self.cfg,
            &self.bases,
            layout,
        );
        self.transaction(batch, "replace the chain's rules")?;
        self.rules = layout;
        self.counted_before = before;
        Ok(())
    }

    /// Reads every set back and puts every single address where the layout
    /// `sharded` wants it, then leaves the rules looking only there. While
    /// addresses move the rules look in both places, so none of them passes.
    fn relayout(&mut self, sharded: bool, now: SystemTime) -> Result<ReconcileReport, NftError> {
        let target = Layout::of(sharded);
        if self.rules != target {
            self.set_rules(Layout::Both)?;
        }
        self.sharded = sharded;
        let report = self.resync(now)?;
        self.set_rules(target)?;
        Ok(report)
    }

    /// Moves every single address from the one set to its shard, from what the
    /// mirrors say the kernel holds (no reading back): each removal travels with
    /// its re-addition, and the rules look in both places meanwhile.
    fn shard_out(&mut self, now: SystemTime) -> Result<(), NftError> {
        tracing::info!(
            v4 = self.v4.exact_mirror.len(),
            v6 = self.v6.exact_mirror.len(),
            threshold = SHARD_ABOVE,
            "nftables: moving single-address bans from one set to the shards"
        );
        self.set_rules(Layout::Both)?;
        let mut ops =
            Vec::with_capacity(2 * (self.v4.exact_mirror.len() + self.v6.exact_mirror.len()));
        for family in [Family::V4, Family::V6] {
            for (&addr, &until) in &self.state(family).exact_mirror {
                let span = Span {
                    first: addr,
                    last: addr,
                };
                ops.push(Op {
                    set: SetId::Exact(family, wire::SINGLE),
                    del: true,
                    span,
                    until,
                    joined: false,
                });
                ops.push(Op {
                    set: SetId::exact(family, addr, true),
                    del: false,
                    span,
                    until,
                    joined: true,
                });
            }
        }
        self.sharded = true;
        if let Err(first) = self.send(&ops, now) {
            tracing::warn!(error = %first,
                "nftables sets differ from what log2drop wrote; re-reading them and reconciling");
            self.resync(now)?;
        }
        self.set_rules(Layout::Sharded)
    }

    /// Whether the single addresses now want the sharded layout.
    fn wants_shards(&self) -> bool {
        self.v4.exact.len().max(self.v6.exact.len()) > SHARD_ABOVE
    }

    /// Records in the mirrors what a sent plan did.
    fn commit(&mut self, ops: &[Op]) {
        for op in ops {
            let st = self.state(op.set.family());
            match (op.set, op.del) {
                (SetId::Prefixes(_), true) => {
                    st.mirror.remove(&op.span.first);
                }
                (SetId::Prefixes(_), false) => {
                    st.mirror.insert(
                        op.span.first,
                        Segment {
                            span: op.span,
                            until: op.until,
                        },
                    );
                }
                (SetId::Exact(..), true) => {
                    st.exact_mirror.remove(&op.span.first);
                }
                (SetId::Exact(..), false) => {
                    st.exact_mirror.insert(op.span.first, op.until);
                }
            }
        }
    }
}

/// Whether a ban covers exactly one address (it goes into an exact set).
fn is_single(family: Family, len: u8) -> bool {
    len == family.bits()
}

/// Sends `batch` as one transaction; the kernel's first refusal becomes the error.
fn transaction(
    sock: &mut Socket,
    batch: Batch,
    action: &str,
    family: TableFamily,
    table: &str,
) -> Result<(), NftError> {
    let fin = batch.finalize();
    let pages: Vec<&[u8]> = fin.iter().collect();
    let errors = sock.transact(&pages).map_err(|source| NftError::Socket {
        action: "send",
        source,
    })?;
    match errors.into_iter().next() {
        Some(e) => Err(transaction_error(action, family, table, e)),
        None => Ok(()),
    }
}

fn transaction_error(action: &str, family: TableFamily, table: &str, e: KernelError) -> NftError {
    tracing::debug!(seq = e.seq, error = %e.error, action, "nftables refused a message");
    if means_not_permitted(&e.error) {
        NftError::NotPermitted {
            action: action.to_owned(),
        }
    } else if socket::means_no_nftables(&e.error) {
        NftError::NoNfTables { source: e.error }
    } else {
        NftError::Transaction {
            action: action.to_owned(),
            family: family.name(),
            table: table.to_owned(),
            source: e.error,
        }
    }
}

/// The region of each decision's target, before and after it changes the index;
/// regions nested in others are dropped.
fn merge_regions(mut regions: Vec<Span>) -> Vec<Span> {
    regions.sort_unstable_by(|a, b| (a.first, b.last).cmp(&(b.first, a.last)));
    let mut out: Vec<Span> = Vec::with_capacity(regions.len());
    for r in regions {
        if out.last().is_some_and(|l| l.contains(&r)) {
            continue;
        }
        out.push(r);
    }
    out
}

impl BackendConfig for NftablesConfig {
    fn check(&self, at: &KeyPath) -> Vec<(KeyPath, String)> {
        self.problems(at)
    }

    fn open(&self) -> Result<Box<dyn Backend>, BackendError> {
        Ok(Box::new(NftablesBackend::open(self)?))
    }

    fn flush(&self) -> Result<usize, BackendError> {
        Ok(NftablesBackend::flush(self)?)
    }

    /// Any change replaces the table: it may move family (inet <-> netdev) under
    /// the same name, and its chains and sets are built from the whole table.
    fn change_to(&self, new: &Self) -> Change {
        if self == new {
            Change::Keep
        } else {
            Change::Replace
        }
    }
}

impl Backend for NftablesBackend {
    /// One transaction for the whole batch. If the kernel refuses it (a set was
    /// edited behind our back), every set is read back and reconciled instead.
    fn apply(&mut self, batch: &[Decision], now: SystemTime) -> Result<(), BackendError> {
        let mut plan = Plan::default();
        let mut regions: [Vec<Span>; 2] = [Vec::new(), Vec::new()];
        let sharded = self.sharded;
        for d in batch {
            let (ban, add) = match d {
                Decision::Ban(b) => (b, true),
                Decision::Unban(b) => (b, false),
            };
            let (family, span, len) = Span::of(&ban.target);
            let st = self.state(family);
            if is_single(family, len) {
                let addr = span.first;
                if add {
                    st.exact.insert(addr, ban.until);
                } else {
                    st.exact.remove(&addr);
                }
                let current = st.exact_mirror.get(&addr).copied();
                let wanted = st.exact.get(&addr).copied();
                plan.exact_change(family, addr, current, wanted, sharded);
                // Record at once, so a later decision on the same address in this
                // batch diffs against it.
                if let Some(u) = wanted {
                    st.exact_mirror.insert(addr, u);
                } else {
                    st.exact_mirror.remove(&addr);
                }
                continue;
            }
            let before = st.index.region_of(span, len);
            if add {
                st.index.insert(span, len, ban.until);
            } else {
                st.index.remove(span, len);
            }
            let after = st.index.region_of(span, len);
            let region = if before.contains(&after) {
                before
            } else {
                after
            };
            regions[usize::from(family == Family::V6)].push(region);
        }
        for (family, regions) in [(Family::V4, &regions[0]), (Family::V6, &regions[1])] {
            let st = self.state(family);
            for region in merge_regions(regions.clone()) {
                let current: Vec<Segment> = st
                    .mirror
                    .range(region.first..=region.last)
                    .map(|(_, s)| *s)
                    .collect();
                let desired = st.index.segments(region, now);
                plan.segments(family, &current, &desired);
            }
        }
        match self.send(&plan.ops, now) {
            Ok(()) => self.commit(&plan.ops),
            Err(first) => {
                tracing::warn!(error = %first,
                    "nftables sets differ from what log2drop wrote; re-reading them and reconciling");
                self.resync(now)?;
            }
        }
        if !self.sharded && self.wants_shards() {
            // Too many for one set to be read back quickly at a restart.
            self.shard_out(now)?;
        }
        Ok(())
    }

    fn reconcile(
        &mut self,
        active: &[Ban],
        now: SystemTime,
    ) -> Result<ReconcileReport, BackendError> {
        let started = Instant::now();
        self.v4 = FamilyState::new(Family::V4);
        self.v6 = FamilyState::new(Family::V6);
        let v6 = active.iter().filter(|b| b.target.addr().is_ipv6()).count();
        self.v4.exact.reserve(active.len() - v6);
        self.v6.exact.reserve(v6);
        for ban in active {
            if expired(ban.until, now) {
                continue;
            }
            let (family, span, len) = Span::of(&ban.target);
            let st = self.state(family);
            if is_single(family, len) {
                let e = st.exact.entry(span.first).or_insert(ban.until);
                *e = segments::later(*e, ban.until);
            } else {
                st.index.insert_latest(span, len, ban.until);
            }
        }
        self.timing = ReconcileTiming::default();
        let sharded = self.wants_shards();
        let report = self.relayout(sharded, now)?;
        self.timing.compute = started
            .elapsed()
            .saturating_sub(self.timing.read + self.timing.write);
        Ok(report)
    }

    /// The kernel drops expired elements by itself; this only forgets them here.
    fn gc(&mut self, now: SystemTime) -> Result<usize, BackendError> {
        let mut removed = 0;
        for family in [Family::V4, Family::V6] {
            let st = self.state(family);
            st.index.remove_expired(now);
            st.exact.retain(|_, u| !expired(*u, now));
            let before = st.mirror.len() + st.exact_mirror.len();
            st.mirror.retain(|_, s| !expired(s.until, now));
            st.exact_mirror.retain(|_, u| !expired(*u, now));
            removed += before - st.mirror.len() - st.exact_mirror.len();
        }
        Ok(removed)
    }

    /// The set elements have no counters of their own; see
    /// [`NftablesBackend::rule_counter`] for the chains' total.
    fn counters(&self) -> Result<Vec<(IpNet, DropCounts)>, BackendError> {
        Ok(Vec::new())
    }

    fn totals(&self) -> Result<Option<DropCounts>, BackendError> {
        Ok(self.rule_counter()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_regions_merge_into_the_outer_one() {
        let r = merge_regions(vec![
            Span { first: 5, last: 5 },
            Span {
                first: 0,
                last: 255,
            },
            Span {
                first: 300,
                last: 301,
            },
            Span {
                first: 0,
                last: 255,
            },
        ]);
        assert_eq!(
            r,
            vec![
                Span {
                    first: 0,
                    last: 255
                },
                Span {
                    first: 300,
                    last: 301
                }
            ]
        );
    }

    #[test]
    fn kernel_version_check_accepts_old_minimums() {
        assert!(kernel_at_least((2, 6)));
        assert!(!kernel_at_least((999, 0)));
    }

    #[test]
    fn kernel_errnos_become_the_errors_users_can_act_on() {
        let err = |errno| KernelError {
            seq: 1,
            error: std::io::Error::from_raw_os_error(errno),
        };
        let e = transaction_error("x", TableFamily::Inet, "t", err(libc::EPERM));
        assert!(matches!(e, NftError::NotPermitted { .. }));
        assert!(e.to_string().contains("CAP_NET_ADMIN"));
        let e = transaction_error("x", TableFamily::Inet, "t", err(libc::EPROTONOSUPPORT));
        assert!(matches!(e, NftError::NoNfTables { .. }));
        assert!(e.to_string().contains("nf_tables"));
        let e = transaction_error("add", TableFamily::Netdev, "t", err(libc::EEXIST));
        assert!(matches!(e, NftError::Transaction { .. }));
        assert!(e.to_string().contains("netdev t"), "{e}");
        let e = dump_error(
            "chains",
            TableFamily::Inet,
            "t",
            std::io::Error::from_raw_os_error(libc::EPERM),
        );
        assert!(matches!(e, NftError::NotPermitted { .. }));
    }

    #[test]
    fn single_addresses_are_full_length_prefixes() {
        assert!(is_single(Family::V4, 32));
        assert!(!is_single(Family::V4, 31));
        assert!(is_single(Family::V6, 128));
        assert!(!is_single(Family::V6, 64));
    }
}
