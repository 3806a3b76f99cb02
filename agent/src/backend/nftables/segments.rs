//! What the kernel's interval sets must hold for a set of bans. An nftables set with
//! `flags interval` refuses overlapping intervals, but bans overlap: a /24 subnet ban
//! contains the /32 bans that led to it, and each has its own deadline. So the set
//! holds *segments*: the address space cut at every ban's first and one-past-last
//! address, each piece covered by some ban carrying the latest deadline of the bans
//! covering it. Where no bans overlap, a segment is exactly one ban.
//!
//! CIDR bans are either nested or disjoint, so a change to one ban only changes the
//! segments inside the outermost ban that contains it ([`Index::region_of`]); the
//! backend recomputes that region alone, not the whole set. This module is pure:
//! addresses are `u128` (IPv4 in the low 32 bits), time is injected.

use std::collections::BTreeMap;
use std::time::SystemTime;

use ipnet::IpNet;

/// Address family of a set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Family {
    /// `ban4`, `ipv4_addr`.
    V4,
    /// `ban6`, `ipv6_addr`.
    V6,
}

impl Family {
    /// Address width in bits.
    pub(crate) fn bits(self) -> u8 {
        match self {
            Family::V4 => 32,
            Family::V6 => 128,
        }
    }

    /// The highest address of the family.
    pub(crate) fn max(self) -> u128 {
        match self {
            Family::V4 => u128::from(u32::MAX),
            Family::V6 => u128::MAX,
        }
    }

    /// Key length in bytes in the kernel set.
    pub(crate) fn key_len(self) -> usize {
        usize::from(self.bits() / 8)
    }

    /// The key bytes of `addr` (network order), as the set stores them.
    pub(crate) fn key(self, addr: u128) -> Vec<u8> {
        match self {
            Family::V4 => u32::try_from(addr)
                .unwrap_or(u32::MAX)
                .to_be_bytes()
                .to_vec(),
            Family::V6 => addr.to_be_bytes().to_vec(),
        }
    }

    /// The address a set key holds; `None` for a key of the wrong length.
    pub(crate) fn addr(self, key: &[u8]) -> Option<u128> {
        match self {
            Family::V4 => <[u8; 4]>::try_from(key)
                .ok()
                .map(|b| u128::from(u32::from_be_bytes(b))),
            Family::V6 => <[u8; 16]>::try_from(key).ok().map(u128::from_be_bytes),
        }
    }
}

/// An inclusive address range in one family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Span {
    /// First address.
    pub first: u128,
    /// Last address (inclusive, so the top of the space needs no overflow).
    pub last: u128,
}

impl Span {
    /// The family, range and prefix length of a ban target.
    pub(crate) fn of(net: &IpNet) -> (Family, Span, u8) {
        match net.trunc() {
            IpNet::V4(n) => (
                Family::V4,
                Span {
                    first: u128::from(u32::from(n.network())),
                    last: u128::from(u32::from(n.broadcast())),
                },
                n.prefix_len(),
            ),
            IpNet::V6(n) => (
                Family::V6,
                Span {
                    first: u128::from(n.network()),
                    last: u128::from(n.broadcast()),
                },
                n.prefix_len(),
            ),
        }
    }

    /// The prefix of length `len` that contains `self.first`, in a `bits`-wide space.
    fn prefix(first: u128, len: u8, bits: u8) -> Span {
        let host_bits = u32::from(bits - len.min(bits));
        let host_mask = if host_bits == 128 {
            u128::MAX
        } else {
            (1u128 << host_bits) - 1
        };
        let first = first & !host_mask;
        Span {
            first,
            last: first | host_mask,
        }
    }

    /// Whether `other` lies inside `self`.
    pub(crate) fn contains(&self, other: &Span) -> bool {
        self.first <= other.first && other.last <= self.last
    }
}

/// A ban deadline: `None` is permanent and later than any time.
pub(crate) type Until = Option<SystemTime>;

/// The later of two deadlines.
pub(crate) fn later(a: Until, b: Until) -> Until {
    match (a, b) {
        (None, _) | (_, None) => None,
        (Some(a), Some(b)) => Some(a.max(b)),
    }
}

/// Whether a deadline has passed at `now`.
pub(crate) fn expired(until: Until, now: SystemTime) -> bool {
    until.is_some_and(|u| u <= now)
}

/// One interval the kernel set holds, with its deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Segment {
    /// The addresses.
    pub span: Span,
    /// When the kernel drops it by itself.
    pub until: Until,
}

/// The bans of one family, indexed for region queries.
#[derive(Debug)]
pub(crate) struct Index {
    family: Family,
    bans: BTreeMap<(u128, u128), Until>,
    /// Bans per prefix length, so containment checks try only the lengths in use.
    lens: Vec<usize>,
}

impl Index {
    /// An empty index.
    pub(crate) fn new(family: Family) -> Index {
        Index {
            family,
            bans: BTreeMap::new(),
            lens: vec![0; usize::from(family.bits()) + 1],
        }
    }

    /// Number of bans.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.bans.len()
    }

    /// Sets the deadline of the ban on `span` (prefix length `len`), adding it if new.
    pub(crate) fn insert(&mut self, span: Span, len: u8, until: Until) {
        if self.bans.insert((span.first, span.last), until).is_none() {
            self.lens[usize::from(len)] += 1;
        }
    }

    /// Like [`Index::insert`], but keeps the later deadline if the ban exists.
    pub(crate) fn insert_latest(&mut self, span: Span, len: u8, until: Until) {
        match self.bans.get_mut(&(span.first, span.last)) {
            Some(cur) => *cur = later(*cur, until),
            None => self.insert(span, len, until),
        }
    }

    /// Removes the ban on `span`; whether it existed.
    pub(crate) fn remove(&mut self, span: Span, len: u8) -> bool {
        let existed = self.bans.remove(&(span.first, span.last)).is_some();
        if existed {
            self.lens[usize::from(len)] -= 1;
        }
        existed
    }

    /// Drops bans whose deadline passed; returns how many.
    pub(crate) fn remove_expired(&mut self, now: SystemTime) -> usize {
        let gone: Vec<(u128, u128)> = self
            .bans
            .iter()
            .filter(|(_, until)| expired(**until, now))
            .map(|(k, _)| *k)
            .collect();
        for (first, last) in &gone {
            self.bans.remove(&(*first, *last));
            let host_bits = (last - first)
                .checked_add(1)
                .map_or(128, |n| n.trailing_zeros());
            let len = u32::from(self.family.bits()).saturating_sub(host_bits);
            if let Some(n) = self.lens.get_mut(len as usize) {
                *n = n.saturating_sub(1);
            }
        }
        gone.len()
    }

    /// The range whose segments a change to the ban on `span` can affect: the outermost
    /// ban containing it, or `span` itself when no ban does.
    pub(crate) fn region_of(&self, span: Span, len: u8) -> Span {
        let bits = self.family.bits();
        for l in 0..len {
            if self.lens[usize::from(l)] == 0 {
                continue;
            }
            let outer = Span::prefix(span.first, l, bits);
            if self.bans.contains_key(&(outer.first, outer.last)) {
                return outer;
            }
        }
        span
    }

    /// The segments of `region`, in address order, ignoring bans expired at `now`.
    /// Every ban inside `region` must be nested in it (true of CIDR bans and the
    /// regions [`Index::region_of`] returns).
    pub(crate) fn segments(&self, region: Span, now: SystemTime) -> Vec<Segment> {
        let mut bans: Vec<(Span, Until)> = self
            .bans
            .range((region.first, region.first)..=(region.last, u128::MAX))
            .filter(|(_, until)| !expired(**until, now))
            .map(|(&(first, last), &until)| (Span { first, last }, until))
            .filter(|(span, _)| region.contains(span))
            .collect();
        // Containing bans before the bans they contain.
        bans.sort_unstable_by(|a, b| (a.0.first, b.0.last).cmp(&(b.0.first, a.0.last)));
        sweep(&bans)
    }
}

/// Cuts nested spans (sorted by first address, outer first) into segments, each with
/// the latest deadline of the spans covering it.
fn sweep(bans: &[(Span, Until)]) -> Vec<Segment> {
    let mut out = Vec::with_capacity(bans.len());
    // Open spans, innermost last: (last address, latest deadline of it and its parents).
    let mut open: Vec<(u128, Until)> = Vec::new();
    // Start of the piece not yet emitted; None once past the top of the space.
    let mut cursor: Option<u128> = None;
    let emit = |out: &mut Vec<Segment>, from: Option<u128>, to: u128, until: Until| {
        if let Some(from) = from
            && from <= to
        {
            out.push(Segment {
                span: Span {
                    first: from,
                    last: to,
                },
                until,
            });
        }
    };
    for &(span, until) in bans {
        while let Some(&(last, u)) = open.last() {
            if last >= span.first {
                break;
            }
            emit(&mut out, cursor, last, u);
            cursor = last.checked_add(1);
            open.pop();
        }
        if let Some(&(_, u)) = open.last()
            && let Some(c) = cursor
            && c < span.first
        {
            emit(&mut out, Some(c), span.first - 1, u);
        }
        cursor = Some(span.first);
        let inherited = open.last().map_or(until, |&(_, u)| later(u, until));
        open.push((span.last, inherited));
    }
    while let Some((last, u)) = open.pop() {
        emit(&mut out, cursor, last, u);
        cursor = last.checked_add(1);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::time::Duration;

    fn t(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn index(bans: &[(&str, Until)]) -> (Index, Index) {
        let mut v4 = Index::new(Family::V4);
        let mut v6 = Index::new(Family::V6);
        for (net, until) in bans {
            let (fam, span, len) = Span::of(&net.parse().expect("test literal"));
            match fam {
                Family::V4 => v4.insert(span, len, *until),
                Family::V6 => v6.insert(span, len, *until),
            }
        }
        (v4, v6)
    }

    fn v4(a: &str) -> u128 {
        u128::from(u32::from(a.parse::<std::net::Ipv4Addr>().expect("lit")))
    }

    const FULL4: Span = Span {
        first: 0,
        last: u32::MAX as u128,
    };

    #[test]
    fn disjoint_bans_are_their_own_segments() {
        let (ix, _) = index(&[("198.51.100.7/32", Some(t(50))), ("203.0.113.0/24", None)]);
        let segs = ix.segments(FULL4, t(0));
        assert_eq!(segs.len(), 2);
        assert_eq!(segs[0].span.first, v4("198.51.100.7"));
        assert_eq!(segs[0].span.last, v4("198.51.100.7"));
        assert_eq!(segs[0].until, Some(t(50)));
        assert_eq!(segs[1].span.first, v4("203.0.113.0"));
        assert_eq!(segs[1].span.last, v4("203.0.113.255"));
        assert_eq!(segs[1].until, None);
    }

    #[test]
    fn a_contained_ban_cuts_its_parent_and_takes_the_later_deadline() {
        let (ix, _) = index(&[
            ("198.51.100.0/24", Some(t(100))),
            ("198.51.100.7/32", Some(t(50))),
            ("198.51.100.9/32", Some(t(500))),
        ]);
        let segs = ix.segments(FULL4, t(0));
        let got: Vec<_> = segs
            .iter()
            .map(|s| {
                (
                    s.span.first - v4("198.51.100.0"),
                    s.span.last - v4("198.51.100.0"),
                    s.until,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (0, 6, Some(t(100))),
                (7, 7, Some(t(100))),
                (8, 8, Some(t(100))),
                (9, 9, Some(t(500))),
                (10, 255, Some(t(100))),
            ]
        );
    }

    #[test]
    fn expired_bans_are_left_out() {
        let (ix, _) = index(&[
            ("198.51.100.0/24", Some(t(10))),
            ("198.51.100.7/32", Some(t(50))),
        ]);
        let segs = ix.segments(FULL4, t(20));
        assert_eq!(segs.len(), 1);
        assert_eq!(segs[0].span.first, v4("198.51.100.7"));
    }

    #[test]
    fn the_whole_space_needs_no_overflow() {
        let (ix, v6) = index(&[
            ("0.0.0.0/0", None),
            ("255.255.255.255/32", Some(t(9))),
            ("::/0", None),
            ("ffff::/16", Some(t(9))),
        ]);
        let segs = ix.segments(FULL4, t(0));
        assert_eq!(segs.len(), 2);
        assert_eq!(
            segs[1].span,
            Span {
                first: u128::from(u32::MAX),
                last: u128::from(u32::MAX)
            }
        );
        let full6 = Span {
            first: 0,
            last: u128::MAX,
        };
        let segs = v6.segments(full6, t(0));
        assert_eq!(segs.len(), 2);
        assert_eq!(segs[1].span.last, u128::MAX);
    }

    #[test]
    fn region_is_the_outermost_containing_ban() {
        let (ix, _) = index(&[("198.51.0.0/16", None), ("198.51.100.0/24", None)]);
        let (_, span, len) = Span::of(&"198.51.100.7/32".parse().expect("lit"));
        let region = ix.region_of(span, len);
        assert_eq!(region.first, v4("198.51.0.0"));
        assert_eq!(region.last, v4("198.51.255.255"));
        let (_, other, len) = Span::of(&"203.0.113.7/32".parse().expect("lit"));
        assert_eq!(ix.region_of(other, len), other);
    }

    #[test]
    fn remove_expired_keeps_counts_right() {
        let (mut ix, _) = index(&[
            ("198.51.100.0/24", Some(t(10))),
            ("198.51.100.7/32", Some(t(50))),
        ]);
        assert_eq!(ix.remove_expired(t(20)), 1);
        assert_eq!(ix.len(), 1);
        let (_, span, len) = Span::of(&"198.51.100.7/32".parse().expect("lit"));
        assert_eq!(ix.region_of(span, len), span, "the /24 no longer counts");
    }

    /// Brute force: the latest deadline covering `addr`, if any ban covers it.
    fn covering(bans: &[(Span, Until)], addr: u128) -> Option<Until> {
        bans.iter()
            .filter(|(s, _)| s.first <= addr && addr <= s.last)
            .map(|(_, u)| *u)
            .reduce(later)
    }

    proptest! {
        /// Segments are disjoint, sorted, cover exactly the banned addresses and carry
        /// the latest covering deadline; a region's segments equal the full
        /// computation's segments inside it.
        #[test]
        fn segments_match_brute_force(
            raw in proptest::collection::vec((0u32..64, 26u8..=32, proptest::option::of(1u64..5)), 0..12),
            probe in proptest::collection::vec(0u32..80, 40),
        ) {
            let base = v4("198.51.100.0");
            let mut ix = Index::new(Family::V4);
            let mut bans = Vec::new();
            for (off, len, until) in raw {
                let net: IpNet = format!("{}/{len}", std::net::Ipv4Addr::from(u32::try_from(base).unwrap_or(0) + off))
                    .parse().expect("generated");
                let (_, span, len) = Span::of(&net);
                let until = until.map(t);
                ix.insert(span, len, until);
                bans.retain(|(s, _): &(Span, Until)| *s != span);
                bans.push((span, until));
            }
            let segs = ix.segments(FULL4, t(0));
            for w in segs.windows(2) {
                prop_assert!(w[0].span.last < w[1].span.first);
            }
            for off in probe {
                let addr = base + u128::from(off);
                let seg = segs.iter().find(|s| s.span.first <= addr && addr <= s.span.last);
                prop_assert_eq!(seg.map(|s| s.until), covering(&bans, addr));
            }
            for (span, _) in &bans {
                let (_, len) = (span, 32 - ((span.last - span.first + 1).trailing_zeros() as u8));
                let region = ix.region_of(*span, len);
                let part = ix.segments(region, t(0));
                let whole: Vec<_> = segs.iter().filter(|s| region.contains(&s.span)).copied().collect();
                prop_assert_eq!(part, whole);
            }
        }
    }
}
