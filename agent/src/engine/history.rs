//! The engine's memory of past bans: when each target was banned, for as far back
//! as any jail looks (escalation's `history`, subnet escalation's `within`). It is
//! loaded from the store at start and grows with every ban, so repeat offenders are
//! recognised across restarts without the engine doing I/O.
//!
//! Targets are kept in address order, so "how many distinct addresses inside this
//! prefix were banned lately" is a range scan over just that prefix. A second,
//! time-ordered queue makes forgetting old bans cost only what is forgotten, and
//! bounds the whole memory: past `cap` entries the oldest is dropped.

use std::collections::{BTreeMap, VecDeque};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use smallvec::SmallVec;

/// Ban start times (seconds) of one target, oldest first.
type Times = SmallVec<[u32; 2]>;

#[derive(Debug, Default)]
pub(super) struct History {
    by_target: BTreeMap<IpNet, Times>,
    order: VecDeque<(u32, IpNet)>,
    cap: usize,
    dropped: u64,
}

impl History {
    pub fn new(cap: usize) -> Self {
        Self {
            cap: cap.max(1),
            ..Self::default()
        }
    }

    /// Remembers that `target` was banned at `time`.
    pub fn record(&mut self, target: IpNet, time: u32) {
        while self.order.len() >= self.cap {
            self.pop_oldest();
            self.dropped += 1;
        }
        self.by_target.entry(target).or_default().push(time);
        self.order.push_back((time, target));
    }

    /// How many bans of exactly `target` started at or after `since`.
    pub fn count(&self, target: &IpNet, since: u32) -> u32 {
        self.by_target.get(target).map_or(0, |times| {
            u32::try_from(times.iter().filter(|&&t| t >= since).count()).unwrap_or(u32::MAX)
        })
    }

    /// How many distinct targets strictly inside `prefix` (longer prefix length)
    /// were banned at or after `since`; stops counting at `enough`.
    pub(crate) fn distinct_inside(&self, prefix: &IpNet, since: u32, enough: u32) -> u32 {
        let (lo, hi) = match prefix {
            IpNet::V4(n) => (
                IpNet::V4(Ipv4Net::new_assert(n.network(), 0)),
                IpNet::V4(Ipv4Net::new_assert(n.broadcast(), 32)),
            ),
            IpNet::V6(n) => (
                IpNet::V6(Ipv6Net::new_assert(n.network(), 0)),
                IpNet::V6(Ipv6Net::new_assert(n.broadcast(), 128)),
            ),
        };
        let mut n = 0;
        for (target, times) in self.by_target.range(lo..=hi) {
            if target.prefix_len() > prefix.prefix_len()
                && prefix.contains(target)
                && times.iter().any(|&t| t >= since)
            {
                n += 1;
                if n >= enough {
                    break;
                }
            }
        }
        n
    }

    /// Forgets bans that started before `horizon`.
    pub(crate) fn prune(&mut self, horizon: u32) {
        while self.order.front().is_some_and(|(t, _)| *t < horizon) {
            self.pop_oldest();
        }
    }

    fn pop_oldest(&mut self) {
        let Some((time, target)) = self.order.pop_front() else {
            return;
        };
        if let Some(times) = self.by_target.get_mut(&target) {
            if let Some(i) = times.iter().position(|&t| t == time) {
                times.remove(i);
            }
            if times.is_empty() {
                self.by_target.remove(&target);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    pub fn cap(&self) -> usize {
        self.cap
    }

    pub fn set_cap(&mut self, cap: usize) {
        self.cap = cap.max(1);
        while self.order.len() > self.cap {
            self.pop_oldest();
            self.dropped += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().expect("test net")
    }

    #[test]
    fn counts_exact_target_since() {
        let mut h = History::new(100);
        h.record(net("203.0.113.4/32"), 10);
        h.record(net("203.0.113.4/32"), 20);
        h.record(net("203.0.113.5/32"), 30);
        assert_eq!(h.count(&net("203.0.113.4/32"), 0), 2);
        assert_eq!(h.count(&net("203.0.113.4/32"), 15), 1);
        assert_eq!(h.count(&net("203.0.113.4/32"), 21), 0);
        assert_eq!(h.count(&net("203.0.113.0/24"), 0), 0);
    }

    #[test]
    fn distinct_inside_counts_each_target_once_and_only_inside() {
        let mut h = History::new(100);
        for (t, s) in [
            (10, "203.0.113.1/32"),
            (11, "203.0.113.1/32"),
            (12, "203.0.113.255/32"),
            (13, "203.0.112.255/32"),
            (14, "203.0.114.0/32"),
            (15, "203.0.113.0/24"),
            (16, "203.0.113.128/25"),
        ] {
            h.record(net(s), t);
        }
        let p = net("203.0.113.0/24");
        assert_eq!(h.distinct_inside(&p, 0, 100), 3);
        assert_eq!(h.distinct_inside(&p, 12, 100), 2);
        assert_eq!(h.distinct_inside(&p, 0, 2), 2, "stops at enough");
        let v6 = net("2001:db8:1::/48");
        h.record(net("2001:db8:1:2::/64"), 20);
        h.record(net("2001:db8:1:3::/64"), 20);
        h.record(net("2001:db8:2::/64"), 20);
        assert_eq!(h.distinct_inside(&v6, 0, 100), 2);
    }

    #[test]
    fn prune_and_cap_forget_oldest() {
        let mut h = History::new(3);
        h.record(net("198.51.100.1/32"), 1);
        h.record(net("198.51.100.2/32"), 2);
        h.record(net("198.51.100.1/32"), 3);
        h.record(net("198.51.100.3/32"), 4);
        assert_eq!(h.len(), 3);
        assert_eq!(h.dropped(), 1);
        assert_eq!(h.count(&net("198.51.100.1/32"), 0), 1);
        h.prune(4);
        assert_eq!(h.len(), 1);
        assert_eq!(h.count(&net("198.51.100.2/32"), 0), 0);
        assert_eq!(h.count(&net("198.51.100.3/32"), 0), 1);
    }
}
