//! Offence tracking: which addresses misbehaved recently, in which jail, with which
//! weight. This is the part of the engine an attacker can grow by spraying
//! addresses into a log, so it is bounded and compact:
//!
//! - at most `max_tracked` keys; a new key past the cap evicts the least recently
//!   seen one (an LRU list threaded through the map, so eviction is O(1));
//! - per key, the hits of every jail in one small vector that holds two hits inline,
//!   so the common sprayed address (one or two offences) costs no extra allocation;
//! - a hit is 8 bytes (seconds, jail index, weight), and each jail keeps fewer hits
//!   than its threshold per key (reaching it bans and clears them).
//!
//! Keys are addresses as the jail counts them: IPv4 as is, IPv6 truncated to the
//! jail's `ipv6_prefix`. Hits carry their jail, so jails with different prefixes
//! can share a key without mixing counts.
//!
//! The map hashes with std's randomly keyed SipHash: keys come from attackers.

use std::collections::hash_map::RandomState;
use std::net::IpAddr;

use hashlink::LinkedHashMap;
use smallvec::SmallVec;

/// One counted offence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Hit {
    /// Seconds since the Unix epoch.
    pub time: u32,
    /// Index of the jail it counts for.
    pub jail: u16,
    /// Its weight in that jail.
    pub weight: u16,
}

/// The hits of one key, across jails, oldest first.
pub(super) type Hits = SmallVec<[Hit; 2]>;

/// The bounded LRU of tracked keys. See the module docs.
#[derive(Debug)]
pub(super) struct Tracker {
    map: LinkedHashMap<IpAddr, Hits, RandomState>,
    cap: usize,
    evicted: u64,
}

impl Tracker {
    pub fn new(cap: usize) -> Self {
        Self {
            map: LinkedHashMap::with_hasher(RandomState::new()),
            cap: cap.max(1),
            evicted: 0,
        }
    }

    /// The hits of `key`, marking it as just seen; creates the key (evicting the
    /// least recently seen one at the cap).
    pub fn touch(&mut self, key: IpAddr) -> Option<&mut Hits> {
        if !self.map.contains_key(&key) {
            while self.map.len() >= self.cap {
                if self.map.pop_front().is_none() {
                    break;
                }
                self.evicted += 1;
            }
            self.map.insert(key, Hits::new());
        }
        self.map.to_back(&key)
    }

    #[cfg(test)]
    pub fn get(&self, key: &IpAddr) -> Option<&Hits> {
        self.map.get(key)
    }

    pub fn remove(&mut self, key: &IpAddr) {
        self.map.remove(key);
    }

    /// Drops the hits of `jail` for `key`, and the key when nothing is left.
    pub fn clear_jail(&mut self, key: &IpAddr, jail: u16) {
        if let Some(hits) = self.map.get_mut(key) {
            hits.retain(|h| h.jail != jail);
            if hits.is_empty() {
                self.map.remove(key);
            }
        }
    }

    /// Forgets keys from the least recently seen end whose last hit is before
    /// `horizon` (seconds). Recency order is last-hit order, so this stops at the
    /// first key still in use and costs only what it removes.
    pub fn sweep(&mut self, horizon: u32) {
        while let Some((_, hits)) = self.map.front() {
            let last = hits.iter().map(|h| h.time).max().unwrap_or(0);
            if last >= horizon {
                break;
            }
            self.map.pop_front();
        }
    }

    /// Drops the hits `keep` refuses, and keys left with none (after a reload).
    pub fn retain_hits(&mut self, mut keep: impl FnMut(&mut Hit) -> bool) {
        self.map.retain(|_, hits| {
            hits.retain(|h| keep(h));
            !hits.is_empty()
        });
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    pub fn cap(&self) -> usize {
        self.cap
    }

    pub fn set_cap(&mut self, cap: usize) {
        self.cap = cap.max(1);
        while self.map.len() > self.cap {
            if self.map.pop_front().is_none() {
                break;
            }
            self.evicted += 1;
        }
    }

    #[cfg(test)]
    pub fn keys(&self) -> impl Iterator<Item = &IpAddr> {
        self.map.keys()
    }
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
    fn evicts_least_recently_seen() {
        let mut t = Tracker::new(2);
        t.touch(ip(1)).expect("tracked").push(hit(1));
        t.touch(ip(2)).expect("tracked").push(hit(2));
        t.touch(ip(1)).expect("tracked").push(hit(3));
        t.touch(ip(3)).expect("tracked").push(hit(4));
        assert_eq!(t.len(), 2);
        assert_eq!(t.evicted(), 1);
        assert!(
            t.get(&ip(2)).is_none(),
            "the least recently seen goes first"
        );
        assert_eq!(t.get(&ip(1)).map(|h| h.len()), Some(2));
    }

    #[test]
    fn sweep_stops_at_the_first_live_key() {
        let mut t = Tracker::new(10);
        for i in 0..5u8 {
            t.touch(ip(i))
                .expect("tracked")
                .push(hit(u32::from(i) * 10));
        }
        t.sweep(25);
        let left: Vec<IpAddr> = t.keys().copied().collect();
        assert_eq!(left, vec![ip(3), ip(4)]);
    }

    #[test]
    fn clear_jail_removes_empty_keys() {
        let mut t = Tracker::new(10);
        let h = t.touch(ip(1)).expect("tracked");
        h.push(hit(1));
        h.push(Hit {
            time: 2,
            jail: 1,
            weight: 3,
        });
        t.clear_jail(&ip(1), 0);
        assert_eq!(t.get(&ip(1)).map(|h| h.len()), Some(1));
        t.clear_jail(&ip(1), 1);
        assert!(t.get(&ip(1)).is_none());
    }

    #[test]
    fn lowering_the_cap_evicts_oldest() {
        let mut t = Tracker::new(10);
        for i in 0..5u8 {
            t.touch(ip(i)).expect("tracked").push(hit(1));
        }
        t.set_cap(2);
        let left: Vec<IpAddr> = t.keys().copied().collect();
        assert_eq!(left, vec![ip(3), ip(4)]);
        assert_eq!(t.evicted(), 3);
    }
}
