//! The engine's table of active bans, kept compact because it holds one record per
//! banned address and an attack can ban millions.
//!
//! A [`Ban`] is a rich value (a jail name, four times, a reason); the table keeps
//! a fixed-size record per target instead and rebuilds the [`Ban`] when asked:
//!
//! - IPv4 and IPv6 targets live in separate slabs, keyed by the address as a
//!   `u32` or `u128` plus the prefix length (32 bytes per IPv4 ban, 48 per IPv6);
//! - jail and filter names are interned (`u16` indices), and so is the node of a
//!   fleet ban, kept where a jail ban keeps its filter (a fleet ban has no reason);
//! - the start and end are nanoseconds since the Unix epoch, so nothing is rounded;
//!   a jail's reason is stored as the first offence in whole seconds, the last
//!   offence being the ban's start (the engine bans at the offence that reached
//!   the threshold);
//! - a jail ban's named captures (the user tried) sit in a side map by slot, for
//!   at most [`MAX_CAPTURED`] bans at once; past that, bans keep their captures
//!   in the store only, so an attack that bans millions costs no more per ban;
//! - a ban that does not fit that shape (a delayed ban, whose last offence is
//!   earlier than its start; times outside what fits) is kept whole in a small
//!   side map, so every ban reads back exactly as it was inserted;
//! - an index (a hash table of slab slots, keyed with a random key: attackers
//!   choose addresses) finds a target; a min-heap of (deadline, slot) gives the
//!   next expiry. Replaced or lifted bans leave stale heap entries that are
//!   skipped, and the heap is rebuilt when they outnumber the live ones.

use std::cmp::Reverse;
use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::hash::{BuildHasher, Hash};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hashbrown::HashTable;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use super::{Ban, BanReason, Origin};
use crate::filter::Captures;

/// Most active bans whose captures are kept in memory (see the module docs).
pub(super) const MAX_CAPTURED: usize = 65_536;

/// Set on slots of the IPv6 slab in a slot tag.
const V6_TAG: u32 = 1 << 31;
/// `Rec::len` of a free slot.
const FREE: u8 = u8::MAX;
/// `Rec::until` of a permanent ban.
const PERMANENT: u64 = u64::MAX;
/// `Rec::filter` of a ban without a reason.
const NO_REASON: u16 = u16::MAX;

const FORCED: u8 = 1 << 2;
const EXOTIC: u8 = 1 << 3;
const ORIGIN_MASK: u8 = 0b11;

/// One ban, compact. See the module docs.
#[derive(Debug, Clone, Copy)]
struct Rec<K> {
    key: K,
    /// Start, nanoseconds since the epoch.
    since: u64,
    /// End, nanoseconds since the epoch, or [`PERMANENT`].
    until: u64,
    /// The reason's first offence, seconds since the epoch.
    first: u32,
    jail: u16,
    filter: u16,
    len: u8,
    flags: u8,
}

impl Rec<()> {
    fn with_key<K>(self, key: K) -> Rec<K> {
        Rec {
            key,
            since: self.since,
            until: self.until,
            first: self.first,
            jail: self.jail,
            filter: self.filter,
            len: self.len,
            flags: self.flags,
        }
    }
}

/// An address type one slab is keyed by.
trait Key: Copy + Eq + Hash + std::fmt::Debug {
    fn net(self, len: u8) -> IpNet;
}

impl Key for u32 {
    fn net(self, len: u8) -> IpNet {
        IpNet::V4(Ipv4Net::new_assert(Ipv4Addr::from(self), len.min(32)))
    }
}

impl Key for u128 {
    fn net(self, len: u8) -> IpNet {
        IpNet::V6(Ipv6Net::new_assert(Ipv6Addr::from(self), len.min(128)))
    }
}

/// The bans of one address family.
#[derive(Debug)]
struct Slab<K> {
    recs: Vec<Rec<K>>,
    free: Vec<u32>,
    index: HashTable<u32>,
}

impl<K: Key> Slab<K> {
    fn new() -> Self {
        Self {
            recs: Vec::new(),
            free: Vec::new(),
            index: HashTable::new(),
        }
    }

    fn find(&self, hasher: &RandomState, key: K, len: u8) -> Option<u32> {
        if self.index.is_empty() {
            return None;
        }
        let recs = &self.recs;
        self.index
            .find(hasher.hash_one((key, len)), |&i| {
                let r = &recs[i as usize];
                r.key == key && r.len == len
            })
            .copied()
    }

    fn insert(&mut self, hasher: &RandomState, rec: Rec<K>) -> u32 {
        let slot = match self.free.pop() {
            Some(s) => {
                self.recs[s as usize] = rec;
                s
            }
            None => {
                let s = u32::try_from(self.recs.len()).unwrap_or(u32::MAX);
                self.recs.push(rec);
                s
            }
        };
        let recs = &self.recs;
        self.index
            .insert_unique(hasher.hash_one((rec.key, rec.len)), slot, |&i| {
                let r = &recs[i as usize];
                hasher.hash_one((r.key, r.len))
            });
        slot
    }

    fn remove(&mut self, hasher: &RandomState, slot: u32) -> Rec<K> {
        let rec = self.recs[slot as usize];
        if let Ok(entry) = self
            .index
            .find_entry(hasher.hash_one((rec.key, rec.len)), |&i| i == slot)
        {
            entry.remove();
        }
        self.recs[slot as usize].len = FREE;
        if slot as usize + 1 == self.recs.len() {
            self.recs.pop();
        } else {
            self.free.push(slot);
        }
        if self.index.is_empty() {
            // Everything went (flush, unban --all): give the memory back.
            *self = Self::new();
        }
        rec
    }

    fn live(&self) -> impl Iterator<Item = (u32, &Rec<K>)> {
        self.recs
            .iter()
            .enumerate()
            .filter(|(_, r)| r.len != FREE)
            .map(|(i, r)| (u32::try_from(i).unwrap_or(u32::MAX), r))
    }
}

/// Up to this many names, [`Names::intern`] scans instead of hashing.
const SCAN_NAMES: usize = 32;

/// Jail and filter names, interned.
#[derive(Debug, Default)]
struct Names {
    list: Vec<Arc<str>>,
    index: HashMap<Arc<str>, u16>,
}

impl Names {
    fn intern(&mut self, name: &Arc<str>) -> Option<u16> {
        // A config has a handful of names: scanning them (the same allocation,
        // mostly) is cheaper than hashing the string.
        if self.list.len() <= SCAN_NAMES {
            if let Some(i) = self
                .list
                .iter()
                .position(|n| Arc::ptr_eq(n, name) || **n == **name)
            {
                return u16::try_from(i).ok();
            }
        } else if let Some(&i) = self.index.get(&**name) {
            return Some(i);
        }
        let i = u16::try_from(self.list.len())
            .ok()
            .filter(|&i| i != NO_REASON)?;
        self.list.push(name.clone());
        self.index.insert(name.clone(), i);
        Some(i)
    }

    fn get(&self, i: u16) -> Arc<str> {
        self.list
            .get(usize::from(i))
            .cloned()
            .unwrap_or_else(|| Arc::from(""))
    }
}

/// Nanoseconds since the epoch, if `t` is after it and fits.
fn to_ns(t: SystemTime) -> Option<u64> {
    let ns = t.duration_since(UNIX_EPOCH).ok()?.as_nanos();
    u64::try_from(ns).ok().filter(|&n| n != PERMANENT)
}

fn from_ns(ns: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(ns)
}

fn origin_bits(o: Origin) -> u8 {
    match o {
        Origin::Jail => 0,
        Origin::Manual => 1,
        Origin::Subnet => 2,
        Origin::Fleet => 3,
    }
}

fn origin_of(bits: u8) -> Origin {
    match bits & ORIGIN_MASK {
        0 => Origin::Jail,
        1 => Origin::Manual,
        2 => Origin::Subnet,
        _ => Origin::Fleet,
    }
}

/// Active bans by target. See the module docs.
#[derive(Debug)]
pub(super) struct BanTable {
    v4: Slab<u32>,
    v6: Slab<u128>,
    hasher: RandomState,
    names: Names,
    /// Bans that do not fit a record, whole, by slot tag.
    exotic: HashMap<u32, Ban>,
    /// The reasons' captures of up to [`MAX_CAPTURED`] bans, by slot tag.
    captures: HashMap<u32, Captures>,
    /// (deadline ns, slot tag); may hold stale entries, see [`BanTable::valid`].
    deadlines: BinaryHeap<Reverse<(u64, u32)>>,
    /// How many bans exist per (is IPv6, prefix length), so "is this address
    /// covered by a ban" tries only the prefix lengths in use.
    lens: BTreeMap<(bool, u8), usize>,
    /// Active bans per jail name; a handful of jails, so a list.
    per_jail: Vec<(Arc<str>, usize)>,
}

impl BanTable {
    pub fn new() -> Self {
        Self {
            v4: Slab::new(),
            v6: Slab::new(),
            hasher: RandomState::new(),
            names: Names::default(),
            exotic: HashMap::new(),
            captures: HashMap::new(),
            deadlines: BinaryHeap::new(),
            lens: BTreeMap::new(),
            per_jail: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.v4.index.len() + self.v6.index.len()
    }

    /// Active bans per jail name (jails with none are absent).
    pub(crate) fn per_jail(&self) -> impl Iterator<Item = (&str, usize)> {
        self.per_jail.iter().map(|(j, n)| (&**j, *n))
    }

    /// The deadline of the ban on exactly `target` (`Some(None)`: permanent).
    pub(crate) fn until_of(&self, target: &IpNet) -> Option<Option<SystemTime>> {
        let tag = self.tag_of(target)?;
        if let Some(b) = self.exotic.get(&tag) {
            return Some(b.until);
        }
        let slot = (tag & !V6_TAG) as usize;
        let until = if tag & V6_TAG == 0 {
            self.v4.recs[slot].until
        } else {
            self.v6.recs[slot].until
        };
        Some((until != PERMANENT).then(|| from_ns(until)))
    }

    fn tag_of(&self, target: &IpNet) -> Option<u32> {
        match target {
            IpNet::V4(n) => self
                .v4
                .find(&self.hasher, u32::from(n.network()), n.prefix_len()),
            IpNet::V6(n) => self
                .v6
                .find(&self.hasher, u128::from(n.network()), n.prefix_len())
                .map(|s| s | V6_TAG),
        }
    }

    /// Whether exactly `target` (normalised) is banned.
    pub fn contains(&self, target: &IpNet) -> bool {
        self.tag_of(target).is_some()
    }

    /// The ban on exactly `target`.
    pub fn get(&self, target: &IpNet) -> Option<Ban> {
        self.tag_of(target).map(|tag| self.ban_at(tag))
    }

    /// Prefix lengths in use in one family, up to `max`.
    pub(crate) fn lens_up_to(&self, v6: bool, max: u8) -> impl Iterator<Item = u8> + '_ {
        self.lens
            .range((v6, 0)..=(v6, max))
            .map(|(&(_, len), _)| len)
    }

    /// Adds `ban`, replacing any ban on the same target; returns the replaced one.
    pub fn insert(&mut self, ban: &Ban) -> Option<Ban> {
        let old = self.remove(&ban.target);
        let jail = self.names.intern(&ban.jail);
        let since = to_ns(ban.since);
        let until = match ban.until {
            None => Some(PERMANENT),
            Some(u) => to_ns(u),
        };
        let (filter, first, reason_fits) = match &ban.reason {
            // A fleet ban's node takes the filter's place.
            None => match &ban.node {
                Some(node) if ban.origin == Origin::Fleet => (self.names.intern(node), 0, true),
                Some(_) => (None, 0, false),
                None => (Some(NO_REASON), 0, ban.origin != Origin::Fleet),
            },
            Some(r) => {
                let first = r
                    .first_offence
                    .duration_since(UNIX_EPOCH)
                    .ok()
                    .filter(|d| d.subsec_nanos() == 0)
                    .and_then(|d| u32::try_from(d.as_secs()).ok());
                (
                    self.names.intern(&r.filter),
                    first.unwrap_or(0),
                    first.is_some() && r.last_offence == ban.since,
                )
            }
        };
        let fits = reason_fits && jail.is_some() && filter.is_some() && since.is_some();
        let mut flags = origin_bits(ban.origin);
        if ban.forced {
            flags |= FORCED;
        }
        if !fits {
            flags |= EXOTIC;
        }
        // An exotic ban's heap deadline is the nearest that fits; the side map has
        // the exact one.
        let until_ns = until.unwrap_or(PERMANENT - 1);
        let rec = |len: u8| Rec {
            key: (),
            since: since.unwrap_or(0),
            until: until_ns,
            first,
            jail: jail.unwrap_or(0),
            filter: filter.unwrap_or(NO_REASON),
            len,
            flags,
        };
        let len = ban.target.prefix_len();
        let tag = match ban.target {
            IpNet::V4(n) => self
                .v4
                .insert(&self.hasher, rec(len).with_key(u32::from(n.network()))),
            IpNet::V6(n) => {
                self.v6
                    .insert(&self.hasher, rec(len).with_key(u128::from(n.network())))
                    | V6_TAG
            }
        };
        if !fits {
            self.exotic.insert(tag, ban.clone());
        } else if let Some(r) = ban.reason.as_ref().filter(|r| !r.captures.is_empty())
            && self.captures.len() < MAX_CAPTURED
        {
            self.captures.insert(tag, r.captures.clone());
        }
        if until_ns != PERMANENT {
            self.deadlines.push(Reverse((until_ns, tag)));
        }
        *self
            .lens
            .entry((ban.target.addr().is_ipv6(), len))
            .or_default() += 1;
        match self
            .per_jail
            .iter_mut()
            .find(|(j, _)| Arc::ptr_eq(j, &ban.jail) || **j == *ban.jail)
        {
            Some((_, n)) => *n += 1,
            None => self.per_jail.push((ban.jail.clone(), 1)),
        }
        old
    }

    /// Removes the ban on exactly `target`.
    pub fn remove(&mut self, target: &IpNet) -> Option<Ban> {
        let tag = self.tag_of(target)?;
        let ban = self.ban_at(tag);
        let slot = tag & !V6_TAG;
        if tag & V6_TAG == 0 {
            self.v4.remove(&self.hasher, slot);
        } else {
            self.v6.remove(&self.hasher, slot);
        }
        self.exotic.remove(&tag);
        self.captures.remove(&tag);
        let key = (ban.target.addr().is_ipv6(), ban.target.prefix_len());
        if let Some(n) = self.lens.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                self.lens.remove(&key);
            }
        }
        if let Some(i) = self.per_jail.iter().position(|(j, _)| *j == ban.jail) {
            self.per_jail[i].1 -= 1;
            if self.per_jail[i].1 == 0 {
                self.per_jail.swap_remove(i);
            }
        }
        self.tidy_deadlines();
        Some(ban)
    }

    /// The earliest deadline of a ban.
    pub(crate) fn next_deadline(&self) -> Option<SystemTime> {
        let &Reverse((ns, tag)) = self.deadlines.peek()?;
        let exotic = self.rec_flags(tag).is_some_and(|f| f & EXOTIC != 0);
        if exotic {
            return self.exotic.get(&tag).and_then(|b| b.until);
        }
        Some(from_ns(ns))
    }

    /// Takes the targets whose deadline is at or before `now` off the deadline
    /// queue, in (deadline, target) order; the bans stay until removed.
    pub fn due(&mut self, now: SystemTime) -> Vec<IpNet> {
        let mut due = Vec::new();
        while let Some(&Reverse((ns, tag))) = self.deadlines.peek() {
            if !self.valid(ns, tag) {
                self.deadlines.pop();
                continue;
            }
            let ban = self.ban_at(tag);
            let Some(until) = ban.until else {
                self.deadlines.pop();
                continue;
            };
            if until > now {
                break;
            }
            self.deadlines.pop();
            due.push((until, ban.target));
        }
        due.sort_unstable();
        due.into_iter().map(|(_, t)| t).collect()
    }

    /// Every active ban, rebuilt.
    pub fn iter(&self) -> impl Iterator<Item = Ban> + '_ {
        let v4 = self.v4.live().map(|(s, _)| s);
        let v6 = self.v6.live().map(|(s, _)| s | V6_TAG);
        v4.chain(v6).map(|tag| self.ban_at(tag))
    }

    /// Targets of the bans `keep` picks, without rebuilding the others.
    pub(crate) fn targets_where(&self, mut keep: impl FnMut(&IpNet, bool) -> bool) -> Vec<IpNet> {
        let v4 = self
            .v4
            .live()
            .map(|(_, r)| (r.key.net(r.len), r.flags & FORCED != 0));
        let v6 = self
            .v6
            .live()
            .map(|(_, r)| (r.key.net(r.len), r.flags & FORCED != 0));
        v4.chain(v6)
            .filter(|(t, forced)| keep(t, *forced))
            .map(|(t, _)| t)
            .collect()
    }

    fn rec_flags(&self, tag: u32) -> Option<u8> {
        let slot = (tag & !V6_TAG) as usize;
        let (len, flags) = if tag & V6_TAG == 0 {
            self.v4.recs.get(slot).map(|r| (r.len, r.flags))?
        } else {
            self.v6.recs.get(slot).map(|r| (r.len, r.flags))?
        };
        (len != FREE).then_some(flags)
    }

    /// Whether a heap entry still names a live ban with that deadline.
    fn valid(&self, ns: u64, tag: u32) -> bool {
        let slot = (tag & !V6_TAG) as usize;
        if tag & V6_TAG == 0 {
            self.v4
                .recs
                .get(slot)
                .is_some_and(|r| r.len != FREE && r.until == ns)
        } else {
            self.v6
                .recs
                .get(slot)
                .is_some_and(|r| r.len != FREE && r.until == ns)
        }
    }

    /// Drops stale entries from the head of the deadline heap (so the head is a
    /// live deadline), and rebuilds it when stale entries dominate.
    fn tidy_deadlines(&mut self) {
        while let Some(&Reverse((ns, tag))) = self.deadlines.peek() {
            if self.valid(ns, tag) {
                break;
            }
            self.deadlines.pop();
        }
        if self.deadlines.len() > 2 * self.len() + 1024 {
            let v4 = self
                .v4
                .live()
                .filter(|(_, r)| r.until != PERMANENT)
                .map(|(s, r)| Reverse((r.until, s)));
            let v6 = self
                .v6
                .live()
                .filter(|(_, r)| r.until != PERMANENT)
                .map(|(s, r)| Reverse((r.until, s | V6_TAG)));
            self.deadlines = v4.chain(v6).collect();
        }
    }

    fn ban_at(&self, tag: u32) -> Ban {
        if let Some(b) = self.exotic.get(&tag) {
            return b.clone();
        }
        let slot = (tag & !V6_TAG) as usize;
        let (target, rec) = if tag & V6_TAG == 0 {
            let r = self.v4.recs[slot];
            (
                r.key.net(r.len),
                (r.since, r.until, r.first, r.jail, r.filter, r.flags),
            )
        } else {
            let r = self.v6.recs[slot];
            (
                r.key.net(r.len),
                (r.since, r.until, r.first, r.jail, r.filter, r.flags),
            )
        };
        let (since, until, first, jail, filter, flags) = rec;
        let since = from_ns(since);
        let origin = origin_of(flags);
        let fleet = origin == Origin::Fleet;
        Ban {
            target,
            jail: self.names.get(jail),
            since,
            until: (until != PERMANENT).then(|| from_ns(until)),
            origin,
            reason: (filter != NO_REASON && !fleet).then(|| BanReason {
                filter: self.names.get(filter),
                first_offence: UNIX_EPOCH + Duration::from_secs(u64::from(first)),
                last_offence: since,
                captures: self.captures.get(&tag).cloned().unwrap_or_default(),
            }),
            forced: flags & FORCED != 0,
            node: (filter != NO_REASON && fleet).then(|| self.names.get(filter)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_750_000_000 + secs)
    }

    fn ban(target: &str, since: u64, until: Option<u64>) -> Ban {
        Ban {
            target: target.parse().expect("test net"),
            jail: Arc::from("ssh"),
            since: t(since),
            until: until.map(t),
            origin: Origin::Jail,
            reason: Some(BanReason {
                filter: Arc::from("sshd"),
                first_offence: t(since.saturating_sub(5)),
                last_offence: t(since),
                captures: Captures::new(),
            }),
            forced: false,
            node: None,
        }
    }

    #[test]
    fn records_are_small() {
        assert!(std::mem::size_of::<Rec<u32>>() <= 32);
        assert!(std::mem::size_of::<Rec<u128>>() <= 48);
    }

    #[test]
    fn fleet_bans_keep_their_node_compactly() {
        let mut tab = BanTable::new();
        let fleet = Ban {
            reason: None,
            origin: Origin::Fleet,
            node: Some(Arc::from("web-2")),
            jail: Arc::from("fleet"),
            ..ban("192.0.2.9/32", 5, Some(50))
        };
        let odd = Ban {
            node: None,
            ..fleet.clone()
        };
        tab.insert(&fleet);
        tab.insert(&odd.clone().with_target("192.0.2.10/32"));
        assert_eq!(
            tab.exotic.len(),
            1,
            "a fleet ban without a node is kept whole"
        );
        assert_eq!(tab.get(&fleet.target), Some(fleet));
        let odd = odd.with_target("192.0.2.10/32");
        assert_eq!(tab.get(&odd.target), Some(odd));
    }

    impl Ban {
        fn with_target(mut self, t: &str) -> Ban {
            self.target = t.parse().expect("test net");
            self
        }
    }

    #[test]
    fn bans_read_back_exactly_compact_or_not() {
        let mut tab = BanTable::new();
        let plain = ban("203.0.113.4/32", 10, Some(100));
        let mut delayed = ban("2001:db8::/64", 20, None);
        if let Some(r) = delayed.reason.as_mut() {
            r.last_offence = t(15) + Duration::from_nanos(7);
        }
        let manual = Ban {
            reason: None,
            origin: Origin::Manual,
            forced: true,
            node: None,
            jail: Arc::from("manual"),
            since: t(3) + Duration::from_nanos(123),
            ..ban("198.51.100.0/24", 3, Some(7))
        };
        for b in [&plain, &delayed, &manual] {
            assert!(tab.insert(b).is_none());
        }
        assert_eq!(
            tab.exotic.len(),
            1,
            "only the delayed ban needs the side map"
        );
        for b in [&plain, &delayed, &manual] {
            assert_eq!(tab.get(&b.target).as_ref(), Some(b));
        }
        assert_eq!(tab.len(), 3);
        assert_eq!(tab.per_jail().find(|(j, _)| *j == "ssh"), Some(("ssh", 2)));
        let mut all: Vec<Ban> = tab.iter().collect();
        all.sort_by_key(|b| b.target);
        let mut want = vec![plain.clone(), delayed.clone(), manual.clone()];
        want.sort_by_key(|b| b.target);
        assert_eq!(all, want);
        assert_eq!(tab.remove(&delayed.target), Some(delayed));
        assert!(tab.exotic.is_empty());
        assert_eq!(tab.len(), 2);
    }

    #[test]
    fn deadlines_skip_replaced_and_removed_bans() {
        let mut tab = BanTable::new();
        tab.insert(&ban("203.0.113.1/32", 0, Some(50)));
        tab.insert(&ban("203.0.113.2/32", 0, Some(60)));
        tab.insert(&ban("203.0.113.3/32", 0, Some(60)));
        assert_eq!(tab.next_deadline(), Some(t(50)));
        // Extended: its old deadline is stale.
        tab.insert(&ban("203.0.113.1/32", 1, Some(90)));
        assert_eq!(tab.next_deadline(), Some(t(60)));
        tab.remove(&"203.0.113.2/32".parse().expect("net"));
        assert_eq!(tab.next_deadline(), Some(t(60)));
        let due = tab.due(t(70));
        assert_eq!(due, vec!["203.0.113.3/32".parse::<IpNet>().expect("net")]);
        tab.remove(&due[0]);
        assert_eq!(tab.next_deadline(), Some(t(90)));
        assert!(tab.due(t(89)).is_empty());
    }

    #[test]
    fn many_replacements_keep_the_heap_bounded() {
        let mut tab = BanTable::new();
        for i in 0..10_000u64 {
            tab.insert(&ban("203.0.113.9/32", i, Some(i + 100)));
        }
        assert_eq!(tab.len(), 1);
        assert!(tab.deadlines.len() <= 2 + 1024 + 1);
        assert_eq!(tab.next_deadline(), Some(t(9_999 + 100)));
    }
}
