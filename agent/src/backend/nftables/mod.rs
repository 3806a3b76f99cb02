//! The nftables backend: bans live in two interval sets of a table log2drop owns
//! (`table inet log2drop` with `ban4`/`ban6`, `flags interval, timeout`, and a chain
//! on the input hook; or `table netdev log2drop` with one ingress chain per listed
//! interface), written over netlink in one transaction per engine batch. Elements
//! carry the ban's remaining time as their kernel timeout, so bans expire even while
//! the agent is down, and the table outlives the agent, so a crash keeps them.
//!
//! Ownership: the table carries the comment "managed by log2drop"; a same-named table
//! without it belongs to someone else and [`NftablesBackend::open`] refuses to touch
//! it. No other table is ever read for writing or changed.
//!
//! Overlapping bans (a /24 over the /32s that caused it) cannot sit in an interval set
//! side by side, so the sets hold [`segments`] of the banned space. The backend keeps
//! a mirror of what it wrote, recomputes only the region a decision touches, and on a
//! refused transaction (someone edited the set) re-reads the set and retries once.
//!
//! Submodules: [`segments`] (pure interval logic), [`wire`] (messages through
//! libnftnl), [`socket`] (the netlink socket), [`error`].

mod error;
pub mod measure;
mod segments;
mod socket;
mod wire;

use std::collections::BTreeMap;
use std::ffi::CString;
use std::time::{Duration, SystemTime};

use ipnet::IpNet;
use nftnl::{Batch, Chain, ChainType, Hook, MsgType, Policy, Rule, nft_expr};

pub use error::NftError;

use self::segments::{Family, Index, Segment, Span, Until, expired};
use self::socket::{KernelError, Socket, means_not_permitted};
use self::wire::{ListedElem, RawSet, TableFamily, TableMsg, msg};
use super::{Backend, BackendError, DropCounts, ReconcileReport};
use crate::config::{NftAction, NftHook, NftablesConfig};
use crate::engine::{Ban, Decision};

/// Two deadlines closer than this are the same: the kernel counts in jiffies and
/// reports milliseconds left, read a little after we computed ours.
const TOLERANCE: Duration = Duration::from_secs(2);

/// Most set elements in one transaction. An engine batch is far smaller and goes in
/// one; a reconcile of a million bans is cut into transactions of this size, which
/// bounds the kernel's and libnftnl's memory per transaction.
const MAX_ELEMS_PER_TRANSACTION: usize = 200_000;

/// Name of the input-hook chain.
const INPUT_CHAIN: &str = "input";

/// Kernel version from which `DESTROYSETELEM` exists (delete without failing when
/// the element is gone).
const DESTROY_SINCE: (u32, u32) = (6, 3);

/// One address family's bans and what the kernel set holds for them.
#[derive(Debug)]
struct FamilyState {
    index: Index,
    /// Segments written to the kernel, by first address.
    mirror: BTreeMap<u128, Segment>,
}

impl FamilyState {
    fn new(family: Family) -> FamilyState {
        FamilyState {
            index: Index::new(family),
            mirror: BTreeMap::new(),
        }
    }
}

/// Changes to one set.
#[derive(Debug, Default)]
struct Plan {
    del: Vec<Segment>,
    add: Vec<Segment>,
    report: ReconcileReport,
}

/// The nftables backend. Dropping it leaves the table, sets and chain in place; that
/// is the point. [`NftablesBackend::flush`] removes them.
#[derive(Debug)]
pub struct NftablesBackend {
    sock: Socket,
    table: CString,
    table_name: String,
    family: TableFamily,
    v4: FamilyState,
    v6: FamilyState,
    destroy: bool,
    counter: bool,
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
        NftHook::Input => TableFamily::Inet,
        NftHook::Ingress => TableFamily::Netdev,
    }
}

impl NftablesBackend {
    /// Creates the table, sets and chain(s), or takes over the ones a previous run
    /// left, in one transaction. Existing bans stay in the sets (the chain is
    /// replaced, atomically, so a changed hook, priority or action applies). A table
    /// of the same name that log2drop did not create is refused, and so is a stale
    /// table of ours in the other family (after a hook change) removed.
    ///
    /// Netlink sockets belong to the network namespace of the thread that opens them.
    pub fn open(cfg: &NftablesConfig) -> Result<NftablesBackend, NftError> {
        let table = cname("table", &cfg.table)?;
        let family = table_family(cfg);
        let mut devices = Vec::with_capacity(cfg.interfaces.len());
        if cfg.hook == NftHook::Ingress {
            for name in &cfg.interfaces {
                nix::net::if_::if_nametoindex(name.as_str()).map_err(|source| {
                    NftError::UnknownInterface {
                        interface: name.clone(),
                        source,
                    }
                })?;
                devices.push((name.clone(), cname("interface", name)?));
            }
        }
        let mut sock = Socket::open()?;

        let mine = list_tables(&mut sock, family)?;
        let exists = match mine.iter().find(|t| t.name == cfg.table) {
            Some(t) if !t.ours => {
                return Err(NftError::NotOurTable {
                    family: family.name(),
                    table: cfg.table.clone(),
                });
            }
            Some(_) => true,
            None => false,
        };
        let stale = list_tables(&mut sock, family.other())?
            .into_iter()
            .any(|t| t.name == cfg.table && t.ours);
        let chains = if exists {
            let req = wire::dump_request(msg::GETCHAIN, family.raw(), None, 2);
            let mut names = Vec::new();
            sock.dump(&req, |m| {
                if let Some((t, c)) = wire::parse_chain(m)
                    && t == cfg.table
                {
                    names.push(c);
                }
                Ok(())
            })
            .map_err(|source| dump_error("chains", family, &cfg.table, source))?;
            names
        } else {
            Vec::new()
        };

        let mut batch = Batch::new();
        if stale {
            batch.add(&TableMsg::delete(&table, family.other()), MsgType::Add);
        }
        batch.add(&TableMsg::create(&table, family), MsgType::Add);
        RawSet::definition(&table, family, Family::V4, 1).add_definition(&mut batch);
        RawSet::definition(&table, family, Family::V6, 2).add_definition(&mut batch);
        let nft_table = wire::nftnl_table(&table, family);
        for name in &chains {
            let name = cname("chain", name)?;
            let chain = Chain::new(&name, &nft_table);
            // No handle: deletes every rule of the chain, so the chain can go.
            batch.add(&Rule::new(&chain), MsgType::Del);
            batch.add(&chain, MsgType::Del);
        }
        let chain_names: Vec<(CString, Option<CString>)> = match cfg.hook {
            NftHook::Input => vec![(cname("chain", INPUT_CHAIN)?, None)],
            NftHook::Ingress => devices
                .iter()
                .map(|(n, dev)| Ok((cname("chain", &format!("ingress-{n}"))?, Some(dev.clone()))))
                .collect::<Result<_, NftError>>()?,
        };
        for (name, dev) in &chain_names {
            let mut chain = Chain::new(name, &nft_table);
            match dev {
                // NF_NETDEV_INGRESS is hook 0, the value nftnl names PreRouting.
                Some(dev) => {
                    chain.set_hook(Hook::PreRouting, cfg.priority);
                    chain.set_device(dev);
                }
                None => chain.set_hook(Hook::In, cfg.priority),
            }
            chain.set_type(ChainType::Filter);
            chain.set_policy(Policy::Accept);
            batch.add(&chain, MsgType::Add);
            for fam in [Family::V4, Family::V6] {
                let rule = ban_rule(&chain, family, fam, cfg);
                batch.add(&rule, MsgType::Add);
            }
        }
        let fin = batch.finalize();
        let pages: Vec<&[u8]> = fin.iter().collect();
        let errors = sock.transact(&pages).map_err(|source| NftError::Socket {
            action: "send",
            source,
        })?;
        if let Some(e) = errors.into_iter().next() {
            return Err(transaction_error(
                "create the table, sets and chain",
                family,
                &cfg.table,
                e,
            ));
        }
        tracing::info!(
            table = %cfg.table,
            family = family.name(),
            hook = ?cfg.hook,
            priority = cfg.priority,
            took_over = exists,
            "nftables table ready"
        );
        Ok(NftablesBackend {
            sock,
            table,
            table_name: cfg.table.clone(),
            family,
            v4: FamilyState::new(Family::V4),
            v6: FamilyState::new(Family::V6),
            destroy: kernel_at_least(DESTROY_SINCE),
            counter: cfg.counter,
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
            let fin = batch.finalize();
            let pages: Vec<&[u8]> = fin.iter().collect();
            let errors = sock.transact(&pages).map_err(|source| NftError::Socket {
                action: "send",
                source,
            })?;
            if let Some(e) = errors.into_iter().next() {
                return Err(transaction_error("delete the table", family, &cfg.table, e));
            }
            gone += 1;
        }
        Ok(gone)
    }

    /// Packets and bytes the chain turned away since it was (re)created, when
    /// `counter = true`; `None` otherwise.
    pub fn rule_counter(&self) -> Result<Option<DropCounts>, NftError> {
        if !self.counter {
            return Ok(None);
        }
        let mut sock = Socket::open()?;
        let req = wire::dump_request(msg::GETRULE, self.family.raw(), None, 3);
        let mut total = DropCounts::default();
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

    /// Number of elements (interval starts) the backend believes each set holds:
    /// `[ban4, ban6]`.
    pub fn segment_counts(&self) -> [usize; 2] {
        [self.v4.mirror.len(), self.v6.mirror.len()]
    }

    fn state(&mut self, family: Family) -> &mut FamilyState {
        match family {
            Family::V4 => &mut self.v4,
            Family::V6 => &mut self.v6,
        }
    }

    /// Reads one set back from the kernel as segments, with deadlines relative to `now`.
    fn read_set(&mut self, family: Family, now: SystemTime) -> Result<Vec<Segment>, NftError> {
        let req = wire::dump_request(
            msg::GETSETELEM,
            self.family.raw(),
            Some((&self.table, wire::set_name(family))),
            4,
        );
        let mut listed: Vec<Listed> = Vec::new();
        let mut scratch: Vec<ListedElem> = Vec::new();
        let mut bad = false;
        let (tfam, tname) = (self.family, self.table_name.clone());
        self.sock
            .dump(&req, |m| {
                scratch.clear();
                if !wire::parse_elems(m, family, &mut scratch) {
                    bad = true;
                }
                // Time left counts from when the kernel wrote this message.
                let at = SystemTime::now().max(now);
                listed.extend(scratch.iter().map(|e| Listed {
                    addr: e.addr,
                    end: e.end,
                    until: e.expires_ms.map(|ms| at + Duration::from_millis(ms)),
                }));
                Ok(())
            })
            .map_err(|source| dump_error("set elements", tfam, &tname, source))?;
        if bad {
            return Err(NftError::Malformed {
                action: "reading set elements",
            });
        }
        Ok(intervals(listed, family))
    }

    /// Sends deletions then additions for one family in as few transactions as the
    /// size cap allows. A segment deleted and re-added (new deadline) goes in the same
    /// transaction, so the address is never unbanned in between.
    fn send_plan(&mut self, family: Family, plan: &Plan, now: SystemTime) -> Result<(), NftError> {
        // Pair deletions and additions of the same span, so they never split.
        let mut ops: Vec<(bool, Segment)> = Vec::with_capacity(plan.del.len() + plan.add.len());
        let adds: BTreeMap<Span, Segment> = plan.add.iter().map(|s| (s.span, *s)).collect();
        let mut paired = std::collections::HashSet::new();
        for d in &plan.del {
            ops.push((false, *d));
            if let Some(a) = adds.get(&d.span) {
                ops.push((true, *a));
                paired.insert(d.span);
            }
        }
        for a in &plan.add {
            if !paired.contains(&a.span) {
                ops.push((true, *a));
            }
        }
        let max = family.max();
        let mut i = 0;
        while i < ops.len() {
            // The kernel's timer starts at commit: count the time left from now, not
            // from the batch's `now`, so a long reconcile does not stretch late chunks.
            let sent_at = SystemTime::now().max(now);
            let mut dels = RawSet::new(&self.table, self.family, family);
            let mut adds = RawSet::new(&self.table, self.family, family);
            while i < ops.len() && dels.len() + adds.len() < MAX_ELEMS_PER_TRANSACTION {
                let (is_add, seg) = ops[i];
                i += 1;
                let start = family.key(seg.span.first);
                let end = (seg.span.last < max).then(|| family.key(seg.span.last + 1));
                if is_add {
                    let timeout = match seg.until {
                        None => None,
                        Some(u) => match u.duration_since(sent_at) {
                            Ok(left) if !left.is_zero() => {
                                Some(u64::try_from(left.as_millis().max(1)).unwrap_or(u64::MAX))
                            }
                            _ => continue,
                        },
                    };
                    adds.push(&start, 0, timeout);
                    if let Some(end) = end {
                        adds.push(&end, wire::ELEM_INTERVAL_END, None);
                    }
                } else {
                    if !self.destroy && expired(seg.until, now) {
                        // Gone from the kernel already; deleting it would fail.
                        continue;
                    }
                    dels.push(&start, 0, None);
                    if let Some(end) = end {
                        dels.push(&end, wire::ELEM_INTERVAL_END, None);
                    }
                }
            }
            if dels.len() + adds.len() == 0 {
                continue;
            }
            let mut batch = Batch::new();
            let del_kind = if self.destroy {
                msg::DESTROYSETELEM
            } else {
                msg::DELSETELEM
            };
            dels.add_elements(&mut batch, del_kind);
            adds.add_elements(&mut batch, msg::NEWSETELEM);
            let fin = batch.finalize();
            let pages: Vec<&[u8]> = fin.iter().collect();
            let errors = self
                .sock
                .transact(&pages)
                .map_err(|source| NftError::Socket {
                    action: "send",
                    source,
                })?;
            if let Some(e) = errors.into_iter().next() {
                return Err(transaction_error(
                    &format!("update set {}", wire::set_name(family).to_string_lossy()),
                    self.family,
                    &self.table_name,
                    e,
                ));
            }
        }
        Ok(())
    }

    /// Applies the changes of `regions` of one family: recompute, diff against the
    /// mirror, send; on refusal re-read the set and retry once.
    fn sync_regions(
        &mut self,
        family: Family,
        regions: &[Span],
        now: SystemTime,
    ) -> Result<(), NftError> {
        let plan = self.plan_regions(family, regions, now);
        match self.send_plan(family, &plan, now) {
            Ok(()) => {
                self.commit(family, &plan);
                Ok(())
            }
            Err(first) => {
                tracing::warn!(error = %first, set = ?wire::set_name(family),
                    "nftables set differs from what log2drop wrote; re-reading it and reconciling");
                self.resync(family, now).map(|_| ())
            }
        }
    }

    /// Makes one kernel set hold exactly the index's segments: reads the set back,
    /// diffs, sends the difference, and resets the mirror to match.
    fn resync(&mut self, family: Family, now: SystemTime) -> Result<ReconcileReport, NftError> {
        let listed = self.read_set(family, now)?;
        let full = Span {
            first: 0,
            last: family.max(),
        };
        let desired = self.state(family).index.segments(full, now);
        let mut plan = Plan::default();
        diff(&listed, &desired, &mut plan);
        self.send_plan(family, &plan, now)?;
        self.state(family).mirror = desired.into_iter().map(|s| (s.span.first, s)).collect();
        Ok(plan.report)
    }

    fn plan_regions(&mut self, family: Family, regions: &[Span], now: SystemTime) -> Plan {
        let st = self.state(family);
        let mut plan = Plan::default();
        for region in regions {
            let current: Vec<Segment> = st
                .mirror
                .range(region.first..=region.last)
                .map(|(_, s)| *s)
                .collect();
            let desired = st.index.segments(*region, now);
            diff(&current, &desired, &mut plan);
        }
        plan
    }

    fn commit(&mut self, family: Family, plan: &Plan) {
        let st = self.state(family);
        for d in &plan.del {
            st.mirror.remove(&d.span.first);
        }
        for a in &plan.add {
            st.mirror.insert(a.span.first, *a);
        }
    }
}

/// Adds to `plan` what turns `current` into `desired` (both sorted, disjoint).
fn diff(current: &[Segment], desired: &[Segment], plan: &mut Plan) {
    let want: BTreeMap<Span, Until> = desired.iter().map(|s| (s.span, s.until)).collect();
    let have: BTreeMap<Span, Until> = current.iter().map(|s| (s.span, s.until)).collect();
    for seg in current {
        match want.get(&seg.span) {
            None => {
                plan.del.push(*seg);
                plan.report.removed += 1;
            }
            Some(u) if same_until(*u, seg.until) => plan.report.kept += 1,
            Some(u) => {
                plan.del.push(*seg);
                plan.add.push(Segment {
                    span: seg.span,
                    until: *u,
                });
                plan.report.updated += 1;
            }
        }
    }
    for seg in desired {
        if !have.contains_key(&seg.span) {
            plan.add.push(*seg);
            plan.report.added += 1;
        }
    }
}

fn same_until(a: Until, b: Until) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => {
            let d = a
                .duration_since(b)
                .or_else(|_| b.duration_since(a))
                .unwrap_or_default();
            d < TOLERANCE
        }
        _ => false,
    }
}

/// A listed element with its deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Listed {
    addr: u128,
    end: bool,
    until: Until,
}

/// Pairs listed elements into intervals. Interval ends without a start (the start
/// expired, or nft's leading `0.0.0.0` end) are skipped; a start without an end runs
/// to the top of the address space.
fn intervals(mut elems: Vec<Listed>, family: Family) -> Vec<Segment> {
    // At one address an end sorts before a start: [a, b) then [b, c).
    elems.sort_unstable_by_key(|e| (e.addr, !e.end));
    let mut out = Vec::with_capacity(elems.len() / 2 + 1);
    let mut open: Option<Listed> = None;
    for e in elems {
        if e.end {
            if let Some(s) = open.take()
                && e.addr > s.addr
            {
                out.push(Segment {
                    span: Span {
                        first: s.addr,
                        last: e.addr - 1,
                    },
                    until: s.until,
                });
            }
        } else {
            if let Some(s) = open.take() {
                // Two starts in a row: the first cannot reach past the second.
                out.push(Segment {
                    span: Span {
                        first: s.addr,
                        last: e.addr.saturating_sub(1).max(s.addr),
                    },
                    until: s.until,
                });
            }
            open = Some(e);
        }
    }
    if let Some(s) = open {
        out.push(Segment {
            span: Span {
                first: s.addr,
                last: family.max(),
            },
            until: s.until,
        });
    }
    out
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

/// The rule `[meta nfproto|protocol] <family>  <saddr> @banN [counter] drop|reject`.
fn ban_rule<'a>(
    chain: &'a Chain<'_>,
    tfam: TableFamily,
    family: Family,
    cfg: &NftablesConfig,
) -> Rule<'a> {
    let mut rule = Rule::new(chain);
    match (tfam, family) {
        (TableFamily::Inet, Family::V4) => {
            rule.add_expr(&nft_expr!(meta nfproto));
            rule.add_expr(&nft_expr!(cmp == libc::NFPROTO_IPV4 as u8));
        }
        (TableFamily::Inet, Family::V6) => {
            rule.add_expr(&nft_expr!(meta nfproto));
            rule.add_expr(&nft_expr!(cmp == libc::NFPROTO_IPV6 as u8));
        }
        (TableFamily::Netdev, Family::V4) => {
            rule.add_expr(&nftnl::expr::Meta::Protocol);
            rule.add_expr(&nft_expr!(cmp == &[0x08u8, 0x00][..]));
        }
        (TableFamily::Netdev, Family::V6) => {
            rule.add_expr(&nftnl::expr::Meta::Protocol);
            rule.add_expr(&nft_expr!(cmp == &[0x86u8, 0xdd][..]));
        }
    }
    match family {
        Family::V4 => rule.add_expr(&nft_expr!(payload ipv4 saddr)),
        Family::V6 => rule.add_expr(&nft_expr!(payload ipv6 saddr)),
    }
    rule.add_expr(&wire::LookupByName(wire::set_name(family).to_owned()));
    if cfg.counter {
        rule.add_expr(&nft_expr!(counter));
    }
    match cfg.action {
        NftAction::Drop => rule.add_expr(&nft_expr!(verdict drop)),
        NftAction::Reject => rule.add_expr(&wire::RejectIcmpx),
    }
    rule
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

impl Backend for NftablesBackend {
    fn name(&self) -> &'static str {
        "nftables"
    }

    fn apply(&mut self, batch: &[Decision], now: SystemTime) -> Result<(), BackendError> {
        let mut regions: [Vec<Span>; 2] = [Vec::new(), Vec::new()];
        for d in batch {
            let (ban, add) = match d {
                Decision::Ban(b) => (b, true),
                Decision::Unban(b) => (b, false),
            };
            let (family, span, len) = Span::of(&ban.target);
            let st = self.state(family);
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
        let mut first = None;
        for (family, regions) in [(Family::V4, &regions[0]), (Family::V6, &regions[1])] {
            if regions.is_empty() {
                continue;
            }
            let merged = merge_regions(regions.clone());
            if let Err(e) = self.sync_regions(family, &merged, now) {
                first.get_or_insert(e);
            }
        }
        match first {
            None => Ok(()),
            Some(e) => Err(e.into()),
        }
    }

    fn reconcile(
        &mut self,
        active: &[Ban],
        now: SystemTime,
    ) -> Result<ReconcileReport, BackendError> {
        let mut v4 = Index::new(Family::V4);
        let mut v6 = Index::new(Family::V6);
        for ban in active {
            if expired(ban.until, now) {
                continue;
            }
            let (family, span, len) = Span::of(&ban.target);
            match family {
                Family::V4 => v4.insert_latest(span, len, ban.until),
                Family::V6 => v6.insert_latest(span, len, ban.until),
            }
        }
        self.v4.index = v4;
        self.v6.index = v6;
        let mut report = ReconcileReport::default();
        for family in [Family::V4, Family::V6] {
            let r = self.resync(family, now)?;
            report.added += r.added;
            report.removed += r.removed;
            report.updated += r.updated;
            report.kept += r.kept;
        }
        Ok(report)
    }

    /// The kernel drops expired elements by itself; this only forgets them here.
    fn gc(&mut self, now: SystemTime) -> Result<usize, BackendError> {
        let mut removed = 0;
        for family in [Family::V4, Family::V6] {
            let st = self.state(family);
            st.index.remove_expired(now);
            let before = st.mirror.len();
            st.mirror.retain(|_, s| !expired(s.until, now));
            removed += before - st.mirror.len();
        }
        Ok(removed)
    }

    /// The set elements have no counters of their own; see
    /// [`NftablesBackend::rule_counter`] for the chain's total.
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

    fn t(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn seg(first: u128, last: u128, until: Until) -> Segment {
        Segment {
            span: Span { first, last },
            until,
        }
    }

    fn el(addr: u128, end: bool, until: Until) -> Listed {
        Listed { addr, end, until }
    }

    #[test]
    fn intervals_pair_starts_with_ends_and_skip_orphans() {
        let got = intervals(
            vec![
                el(0, true, None),  // nft's leading end
                el(20, true, None), // closes 10
                el(10, false, Some(t(105))),
                el(20, false, None), // adjacent interval [20, 30)
                el(30, true, None),
                el(50, true, None),   // orphan: its start expired
                el(100, false, None), // runs to the top
            ],
            Family::V4,
        );
        assert_eq!(
            got,
            vec![
                seg(10, 19, Some(t(105))),
                seg(20, 29, None),
                seg(100, u128::from(u32::MAX), None),
            ]
        );
    }

    #[test]
    fn diff_keeps_updates_removes_and_adds() {
        let current = [
            seg(1, 1, Some(t(10))),
            seg(2, 2, Some(t(10))),
            seg(3, 3, None),
        ];
        let desired = [
            seg(1, 1, Some(t(11))),
            seg(2, 2, Some(t(50))),
            seg(4, 4, None),
        ];
        let mut plan = Plan::default();
        diff(&current, &desired, &mut plan);
        assert_eq!(
            plan.report,
            ReconcileReport {
                added: 1,
                removed: 1,
                updated: 1,
                kept: 1
            }
        );
        assert_eq!(plan.del, vec![seg(2, 2, Some(t(10))), seg(3, 3, None)]);
        assert_eq!(plan.add, vec![seg(2, 2, Some(t(50))), seg(4, 4, None)]);
    }

    #[test]
    fn permanent_and_timed_are_never_the_same() {
        assert!(!same_until(None, Some(t(1))));
        assert!(same_until(Some(t(10)), Some(t(11))));
        assert!(!same_until(Some(t(10)), Some(t(13))));
    }

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
}
