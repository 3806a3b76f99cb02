//! Offence tracking: which addresses misbehaved recently, in which jail, with which
//! weight. This is the part of the engine an attacker can grow by spraying
//! addresses into a log, so it is bounded and compact:
//!
//! - at most `max_tracked` keys; a new key past the cap evicts the least recently
//!   seen one (an LRU list threaded through the entries, so eviction is O(1));
//! - IPv4 and IPv6 keys live in separate slabs of fixed-size entries (24 bytes for
//!   IPv4, 48 for IPv6: the key, the LRU links as `u32` slot tags, one hit inline),
//!   found through a hash table of slot numbers; no allocation per key;
//! - a key's first hit is kept in its entry, so the common sprayed address (one
//!   offence) costs nothing more; a key with more hits moves them to a shared
//!   side slab of small vectors (four hits inline there);
//! - a hit is 8 bytes (seconds, jail index, weight), and each jail keeps fewer hits
//!   than its threshold per key (reaching it bans and clears them).
//!
//! Keys are addresses as the jail counts them: IPv4 as is, IPv6 truncated to the
//! jail's `ipv6_prefix`. Hits carry their jail, so jails with different prefixes
//! can share a key without mixing counts.
//!
//! The index hashes with std's randomly keyed SipHash: keys come from attackers.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hash};
use std::net::IpAddr;

use hashbrown::HashTable;
use smallvec::SmallVec;

/// One counted offence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Hit {
    /// Seconds since the Unix epoch.
    pub time: u32,
    /// Index of the jail it counts for.
    pub jail: u16,
    /// Its weight in that jail (at least 1; 0 marks "no hit").
    pub weight: u16,
}

const NO_HIT: Hit = Hit {
    time: 0,
    jail: 0,
    weight: 0,
};

/// Hits of a key that has more than one.
type Spill = SmallVec<[Hit; 4]>;

/// Set in a slot tag for the IPv6 slab.
const V6: u32 = 1 << 31;
/// No slot (end of the LRU list, no spill).
const NIL: u32 = u32::MAX;

/// One tracked key.
#[derive(Debug, Clone, Copy)]
struct Entry<K> {
    key: K,
    /// Slot tags of the neighbours in recency order (`prev` is older).
    prev: u32,
    next: u32,
    /// Index into the spill slab when the key has more than one hit.
    spill: u32,
    /// The only hit when `spill` is [`NIL`].
    hit: Hit,
}

/// The entries of one address family.
#[derive(Debug)]
struct Slab<K> {
    entries: Vec<Entry<K>>,
    free: Vec<u32>,
    index: HashTable<u32>,
}

impl<K: Copy + Eq + Hash> Slab<K> {
    fn new() -> Self {
        Self {
            entries: Vec::new(),
            free: Vec::new(),
            index: HashTable::new(),
        }
    }

    fn find(&self, hasher: &RandomState, key: K) -> Option<u32> {
        if self.index.is_empty() {
            return None;
        }
        let entries = &self.entries;
        self.index
            .find(hasher.hash_one(key), |&i| entries[i as usize].key == key)
            .copied()
    }

    fn add(&mut self, hasher: &RandomState, entry: Entry<K>) -> u32 {
        let slot = match self.free.pop() {
            Some(s) => {
                self.entries[s as usize] = entry;
                s
            }
            None => {
                self.entries.push(entry);
                u32::try_from(self.entries.len() - 1).unwrap_or(NIL)
            }
        };
        let entries = &self.entries;
        self.index
            .insert_unique(hasher.hash_one(entry.key), slot, |&i| {
                hasher.hash_one(entries[i as usize].key)
            });
        slot
    }

    fn drop_slot(&mut self, hasher: &RandomState, slot: u32) {
        let key = self.entries[slot as usize].key;
        if let Ok(e) = self.index.find_entry(hasher.hash_one(key), |&i| i == slot) {
            e.remove();
        }
        if self.index.is_empty() {
            *self = Self::new();
        } else if slot as usize + 1 == self.entries.len() {
            self.entries.pop();
        } else {
            self.free.push(slot);
        }
    }
}

/// The bounded LRU of tracked keys. See the module docs.
#[derive(Debug)]
pub(super) struct Tracker {
    v4: Slab<u32>,
    v6: Slab<u128>,
    spills: Vec<Spill>,
    spill_free: Vec<u32>,
    hasher: RandomState,
    /// Least recently seen key.
    head: u32,
    /// Most recently seen key.
    tail: u32,
    cap: usize,
    evicted: u64,
}

/// The fields of an entry both slabs share.
#[derive(Clone, Copy)]
struct Links {
    prev: u32,
    next: u32,
    spill: u32,
    hit: Hit,
}

impl Tracker {
    pub fn new(cap: usize) -> Self {
        Self {
            v4: Slab::new(),
            v6: Slab::new(),
            spills: Vec::new(),
            spill_free: Vec::new(),
            hasher: RandomState::new(),
            head: NIL,
            tail: NIL,
            cap: cap.clamp(1, (V6 - 1) as usize),
            evicted: 0,
        }
    }

    fn find(&self, key: IpAddr) -> Option<u32> {
        match key {
            IpAddr::V4(a) => self.v4.find(&self.hasher, u32::from(a)),
            IpAddr::V6(a) => self.v6.find(&self.hasher, u128::from(a)).map(|s| s | V6),
        }
    }

    fn links(&self, tag: u32) -> Links {
        let i = (tag & !V6) as usize;
        if tag & V6 == 0 {
            let e = &self.v4.entries[i];
            Links {
                prev: e.prev,
                next: e.next,
                spill: e.spill,
                hit: e.hit,
            }
        } else {
            let e = &self.v6.entries[i];
            Links {
                prev: e.prev,
                next: e.next,
                spill: e.spill,
                hit: e.hit,
            }
        }
    }

    fn set(&mut self, tag: u32, f: impl FnOnce(&mut u32, &mut u32, &mut u32, &mut Hit)) {
        let i = (tag & !V6) as usize;
        if tag & V6 == 0 {
            let e = &mut self.v4.entries[i];
            f(&mut e.prev, &mut e.next, &mut e.spill, &mut e.hit);
        } else {
            let e = &mut self.v6.entries[i];
            f(&mut e.prev, &mut e.next, &mut e.spill, &mut e.hit);
        }
    }

    #[cfg(test)]
    fn key_of(&self, tag: u32) -> IpAddr {
        let i = (tag & !V6) as usize;
        if tag & V6 == 0 {
            IpAddr::from(self.v4.entries[i].key.to_be_bytes())
        } else {
            IpAddr::from(self.v6.entries[i].key.to_be_bytes())
        }
    }

    fn unlink(&mut self, tag: u32) {
        let l = self.links(tag);
        match l.prev {
            NIL => self.head = l.next,
            p => self.set(p, |_, next, _, _| *next = l.next),
        }
        match l.next {
            NIL => self.tail = l.prev,
            n => self.set(n, |prev, _, _, _| *prev = l.prev),
        }
    }

    fn push_back(&mut self, tag: u32) {
        let tail = self.tail;
        self.set(tag, |prev, next, _, _| {
            *prev = tail;
            *next = NIL;
        });
        match tail {
            NIL => self.head = tag,
            t => self.set(t, |_, next, _, _| *next = tag),
        }
        self.tail = tag;
    }

    /// Forgets the entry `tag` entirely.
    fn drop_tag(&mut self, tag: u32) {
        self.unlink(tag);
        let spill = self.links(tag).spill;
        self.free_spill(spill);
        if tag & V6 == 0 {
            self.v4.drop_slot(&self.hasher, tag & !V6);
        } else {
            self.v6.drop_slot(&self.hasher, tag & !V6);
        }
    }

    fn free_spill(&mut self, spill: u32) {
        if spill == NIL {
            return;
        }
        if spill as usize + 1 == self.spills.len() {
            self.spills.pop();
        } else if let Some(s) = self.spills.get_mut(spill as usize) {
            *s = Spill::new();
            self.spill_free.push(spill);
        }
        if self.spills.len() == self.spill_free.len() {
            self.spills = Vec::new();
            self.spill_free = Vec::new();
        }
    }

    fn new_spill(&mut self, hits: Spill) -> u32 {
        match self.spill_free.pop() {
            Some(i) => {
                self.spills[i as usize] = hits;
                i
            }
            None => {
                self.spills.push(hits);
                u32::try_from(self.spills.len() - 1).unwrap_or(NIL)
            }
        }
    }

    /// The entry of `key`, marked as just seen; created (evicting the least
    /// recently seen keys at the cap) if new.
    fn touch(&mut self, key: IpAddr) -> u32 {
        if let Some(tag) = self.find(key) {
            if self.tail != tag {
                self.unlink(tag);
                self.push_back(tag);
            }
            return tag;
        }
        while self.len() >= self.cap && self.head != NIL {
            self.drop_tag(self.head);
            self.evicted += 1;
        }
        let tag = match key {
            IpAddr::V4(a) => self.v4.add(
                &self.hasher,
                Entry {
                    key: u32::from(a),
                    prev: NIL,
                    next: NIL,
                    spill: NIL,
                    hit: NO_HIT,
                },
            ),
            IpAddr::V6(a) => {
                self.v6.add(
                    &self.hasher,
                    Entry {
                        key: u128::from(a),
                        prev: NIL,
                        next: NIL,
                        spill: NIL,
                        hit: NO_HIT,
                    },
                ) | V6
            }
        };
        self.push_back(tag);
        tag
    }

    /// Counts `hit` for `key` (marking it as just seen, creating it at need):
    /// first forgets that jail's hits before `horizon`. Returns the jail's score
    /// and its oldest hit still counted.
    pub fn record(&mut self, key: IpAddr, hit: Hit, horizon: u32) -> (u32, u32) {
        let tag = self.touch(key);
        let l = self.links(tag);
        let j = hit.jail;
        let stale = |h: &Hit| h.jail == j && h.time < horizon;
        if l.spill == NIL {
            if l.hit.weight == 0 || stale(&l.hit) {
                self.set(tag, |_, _, _, h| *h = hit);
                return (u32::from(hit.weight), hit.time);
            }
            let mut hits = Spill::new();
            hits.push(l.hit);
            hits.push(hit);
            let (score, first) = score(&hits, j);
            let spill = self.new_spill(hits);
            self.set(tag, |_, _, s, h| {
                *s = spill;
                *h = NO_HIT;
            });
            return (score, first);
        }
        let hits = &mut self.spills[l.spill as usize];
        hits.retain(|h| !stale(h));
        hits.push(hit);
        score(hits, j)
    }

    /// The hits of `key`, oldest first.
    #[cfg(test)]
    pub fn get(&self, key: &IpAddr) -> Option<Vec<Hit>> {
        self.find(*key).map(|tag| self.hits(tag).to_vec())
    }

    fn hits(&self, tag: u32) -> &[Hit] {
        let l = self.links(tag);
        if l.spill != NIL {
            return &self.spills[l.spill as usize];
        }
        if l.hit.weight == 0 {
            return &[];
        }
        let e = (tag & !V6) as usize;
        if tag & V6 == 0 {
            std::slice::from_ref(&self.v4.entries[e].hit)
        } else {
            std::slice::from_ref(&self.v6.entries[e].hit)
        }
    }

    pub fn remove(&mut self, key: &IpAddr) {
        if let Some(tag) = self.find(*key) {
            self.drop_tag(tag);
        }
    }

    /// Drops the hits of `jail` for `key`, and the key when nothing is left.
    pub(crate) fn clear_jail(&mut self, key: &IpAddr, jail: u16) {
        if let Some(tag) = self.find(*key) {
            self.retain_in(tag, |h| h.jail != jail);
        }
    }

    /// Keeps the hits of `tag` that `keep` accepts (it may rewrite them); drops
    /// the key when none is left.
    fn retain_in(&mut self, tag: u32, mut keep: impl FnMut(&mut Hit) -> bool) {
        let l = self.links(tag);
        if l.spill == NIL {
            let mut h = l.hit;
            if h.weight != 0 && keep(&mut h) {
                self.set(tag, |_, _, _, hit| *hit = h);
            } else {
                self.drop_tag(tag);
            }
            return;
        }
        let hits = &mut self.spills[l.spill as usize];
        hits.retain(|h| keep(h));
        match hits.len() {
            0 => self.drop_tag(tag),
            1 => {
                let only = hits[0];
                self.free_spill(l.spill);
                self.set(tag, |_, _, s, h| {
                    *s = NIL;
                    *h = only;
                });
            }
            _ => {}
        }
    }

    /// Forgets keys from the least recently seen end whose last hit is before
    /// `horizon` (seconds). Recency order is last-hit order, so this stops at the
    /// first key still in use and costs only what it removes.
    pub(crate) fn sweep(&mut self, horizon: u32) {
        while self.head != NIL {
            let last = self
                .hits(self.head)
                .iter()
                .map(|h| h.time)
                .max()
                .unwrap_or(0);
            if last >= horizon {
                break;
            }
            self.drop_tag(self.head);
        }
    }

    /// Drops the hits `keep` refuses, and keys left with none (after a reload).
    pub(crate) fn retain_hits(&mut self, mut keep: impl FnMut(&mut Hit) -> bool) {
        let mut tag = self.head;
        while tag != NIL {
            let next = self.links(tag).next;
            self.retain_in(tag, &mut keep);
            tag = next;
        }
    }

    pub fn len(&self) -> usize {
        self.v4.index.len() + self.v6.index.len()
    }

    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    pub fn cap(&self) -> usize {
        self.cap
    }

    pub fn set_cap(&mut self, cap: usize) {
        self.cap = cap.clamp(1, (V6 - 1) as usize);
        while self.len() > self.cap && self.head != NIL {
            self.drop_tag(self.head);
            self.evicted += 1;
        }
    }

    /// Keys from least to most recently seen.
    #[cfg(test)]
    pub fn keys(&self) -> Vec<IpAddr> {
        let mut out = Vec::new();
        let mut tag = self.head;
        while tag != NIL {
            out.push(self.key_of(tag));
            tag = self.links(tag).next;
        }
        out
    }
}

/// The summed weight of `jail`'s hits and the oldest of them.
fn score(hits: &[Hit], jail: u16) -> (u32, u32) {
    let mut sum = 0u32;
    let mut first = u32::MAX;
    for h in hits.iter().filter(|h| h.jail == jail) {
        sum = sum.saturating_add(u32::from(h.weight));
        first = first.min(h.time);
    }
    (sum, first)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(i: u8) -> IpAddr {
        IpAddr::from([198, 51, 100, i])
    }

    fn hit(time: u32) -> Hit {
        Hit {
            time,
            jail: 0,
            weight: 1,
        }
    }

    #[test]
    fn entries_are_small() {
        assert_eq!(std::mem::size_of::<Entry<u32>>(), 24);
        assert!(std::mem::size_of::<Entry<u128>>() <= 48);
    }

    #[test]
    fn evicts_least_recently_seen() {
        let mut t = Tracker::new(2);
        t.record(ip(1), hit(1), 0);
        t.record(ip(2), hit(2), 0);
        t.record(ip(1), hit(3), 0);
        t.record(ip(3), hit(4), 0);
        assert_eq!(t.len(), 2);
        assert_eq!(t.evicted(), 1);
        assert!(
            t.get(&ip(2)).is_none(),
            "the least recently seen goes first"
        );
        assert_eq!(t.get(&ip(1)).map(|h| h.len()), Some(2));
    }

    #[test]
    fn record_scores_within_the_window_per_jail() {
        let mut t = Tracker::new(10);
        let other = Hit {
            time: 1,
            jail: 1,
            weight: 5,
        };
        assert_eq!(t.record(ip(1), other, 0), (5, 1));
        assert_eq!(t.record(ip(1), hit(2), 0), (1, 2));
        assert_eq!(t.record(ip(1), hit(3), 0), (2, 2));
        // Hits of jail 0 before 3 are forgotten; jail 1's stay.
        assert_eq!(t.record(ip(1), hit(10), 3), (2, 3));
        assert_eq!(t.get(&ip(1)).map(|h| h.len()), Some(3));
        // A lone hit out of the window is replaced in place.
        let v6: IpAddr = "2001:db8::".parse().expect("v6");
        assert_eq!(t.record(v6, hit(1), 0), (1, 1));
        assert_eq!(t.record(v6, hit(9), 5), (1, 9));
        assert_eq!(t.get(&v6), Some(vec![hit(9)]));
    }

    #[test]
    fn sweep_stops_at_the_first_live_key() {
        let mut t = Tracker::new(10);
        for i in 0..5u8 {
            t.record(ip(i), hit(u32::from(i) * 10), 0);
        }
        t.sweep(25);
        assert_eq!(t.keys(), vec![ip(3), ip(4)]);
    }

    #[test]
    fn clear_jail_removes_empty_keys() {
        let mut t = Tracker::new(10);
        t.record(ip(1), hit(1), 0);
        t.record(
            ip(1),
            Hit {
                time: 2,
                jail: 1,
                weight: 3,
            },
            0,
        );
        t.clear_jail(&ip(1), 0);
        assert_eq!(t.get(&ip(1)).map(|h| h.len()), Some(1));
        assert!(t.spills.is_empty(), "a single hit moves back inline");
        t.clear_jail(&ip(1), 1);
        assert!(t.get(&ip(1)).is_none());
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn lowering_the_cap_evicts_oldest() {
        let mut t = Tracker::new(10);
        for i in 0..5u8 {
            t.record(ip(i), hit(1), 0);
        }
        t.set_cap(2);
        assert_eq!(t.keys(), vec![ip(3), ip(4)]);
        assert_eq!(t.evicted(), 3);
    }

    #[test]
    fn mixed_families_share_one_recency_order() {
        let mut t = Tracker::new(3);
        let a: IpAddr = "2001:db8::1".parse().expect("v6");
        t.record(ip(1), hit(1), 0);
        t.record(a, hit(2), 0);
        t.record(ip(2), hit(3), 0);
        t.record(ip(1), hit(4), 0);
        t.record(ip(3), hit(5), 0);
        assert_eq!(t.keys(), vec![ip(2), ip(1), ip(3)]);
        t.remove(&ip(1));
        assert_eq!(t.keys(), vec![ip(2), ip(3)]);
        t.retain_hits(|h| h.time != 3);
        assert_eq!(t.keys(), vec![ip(3)]);
    }
}
