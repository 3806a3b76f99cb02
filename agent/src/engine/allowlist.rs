//! The allowlist: addresses and prefixes that must never be banned. It answers
//! two questions fast: is this address allowed (every offence asks), and does this
//! prefix touch anything allowed (every ban asks, so a manual or subnet ban can
//! never cover an allowed host).
//!
//! Entries are kept as merged, sorted, disjoint address ranges per family, so both
//! questions are one binary search however many entries there are.

use std::net::IpAddr;

use ipnet::{IpNet, Ipv4Net};

use crate::addr::{self, AddrError};

/// One `agent.allow` entry: an address or prefix, or a host name the daemon
/// resolves (at start and reload) before handing its addresses to the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowEntry {
    /// An address (/32, /128) or prefix.
    Net(IpNet),
    /// A DNS name such as `admin.example.org`.
    Host(String),
}

/// Why an `agent.allow` entry was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllowEntryError {
    /// Looks like an address or prefix but is not a valid one.
    #[error(transparent)]
    Target(#[from] AddrError),
    /// Neither an address nor a valid host name.
    #[error(
        "{input:?} is neither an address, a prefix nor a host name (letters, digits, '-' and '.', labels of 1 to 63 characters)"
    )]
    NotAHostName {
        /// What the user wrote.
        input: String,
    },
}

/// Reads an `agent.allow` entry. Anything with a `/` or `:`, or made only of
/// digits and dots, must be an address or prefix (so `192.0.2.7/24` gets the
/// address error, not "bad host name"); anything else must be a host name.
pub fn parse_entry(s: &str) -> Result<AllowEntry, AllowEntryError> {
    let input = s.trim();
    let address_like =
        input.contains(['/', ':', '%']) || input.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    if address_like {
        return Ok(AllowEntry::Net(addr::parse_target(input)?));
    }
    if is_host_name(input) {
        Ok(AllowEntry::Host(
            input.trim_end_matches('.').to_ascii_lowercase(),
        ))
    } else {
        Err(AllowEntryError::NotAHostName {
            input: input.to_owned(),
        })
    }
}

/// RFC 1123 host name syntax: dot-separated labels of letters, digits and
/// hyphens, no label starting or ending with a hyphen, one trailing dot allowed.
fn is_host_name(s: &str) -> bool {
    let s = s.strip_suffix('.').unwrap_or(s);
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// Loopback is always allowed: banning it breaks the host and never stops an
/// attacker.
const ALWAYS: [&str; 2] = ["127.0.0.0/8", "::1/128"];

/// Addresses and prefixes that are never banned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allowlist {
    entries: Vec<IpNet>,
    v4: Vec<(u32, u32)>,
    v6: Vec<(u128, u128)>,
}

impl Allowlist {
    /// An allowlist of exactly these prefixes (loopback not added).
    pub fn new(nets: impl IntoIterator<Item = IpNet>) -> Self {
        let entries: Vec<IpNet> = nets.into_iter().map(normalise_net).collect();
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for net in &entries {
            match net {
                IpNet::V4(n) => v4.push((u32::from(n.network()), u32::from(n.broadcast()))),
                IpNet::V6(n) => v6.push((u128::from(n.network()), u128::from(n.broadcast()))),
            }
        }
        Self {
            entries,
            v4: merge(v4),
            v6: merge(v6),
        }
    }

    /// These prefixes plus loopback (`127.0.0.0/8`, `::1`).
    pub fn with_loopback(nets: impl IntoIterator<Item = IpNet>) -> Self {
        let loopback = ALWAYS.iter().filter_map(|s| s.parse::<IpNet>().ok());
        Self::new(nets.into_iter().chain(loopback))
    }

    /// True if `addr` is allowed. IPv4-mapped IPv6 is checked as IPv4.
    pub fn contains(&self, addr: IpAddr) -> bool {
        match addr::normalise(addr) {
            IpAddr::V4(a) => overlaps(&self.v4, u32::from(a), u32::from(a)),
            IpAddr::V6(a) => overlaps(&self.v6, u128::from(a), u128::from(a)),
        }
    }

    /// True if any address in `net` is allowed.
    pub(crate) fn intersects(&self, net: &IpNet) -> bool {
        match normalise_net(*net) {
            IpNet::V4(n) => overlaps(&self.v4, u32::from(n.network()), u32::from(n.broadcast())),
            IpNet::V6(n) => overlaps(&self.v6, u128::from(n.network()), u128::from(n.broadcast())),
        }
    }

    /// The first entry (as configured) that overlaps `net`, to name it in errors.
    pub(crate) fn entry_intersecting(&self, net: &IpNet) -> Option<IpNet> {
        let net = normalise_net(*net);
        self.entries
            .iter()
            .copied()
            .find(|e| e.contains(&net) || net.contains(e))
    }

    /// The widest prefix around `addr`, no wider than `/min_len`, that holds no
    /// allowed address; `None` if `addr` itself is allowed. An IPv6 host ban
    /// (a /64 by default) narrows this way instead of covering an allowed
    /// neighbour.
    pub(crate) fn widest_clear_prefix(&self, addr: IpAddr, min_len: u8) -> Option<IpNet> {
        let addr = addr::normalise(addr);
        let max = if addr.is_ipv4() { 32 } else { 128 };
        (min_len.min(max)..=max)
            .filter_map(|len| IpNet::new(addr, len).ok().map(|n| n.trunc()))
            .find(|n| !self.intersects(n))
    }

    /// The entries as configured (after mapped-address normalisation).
    pub fn entries(&self) -> &[IpNet] {
        &self.entries
    }
}

/// An IPv4-mapped IPv6 prefix of /96 or longer is the IPv4 prefix it maps.
fn normalise_net(net: IpNet) -> IpNet {
    if let IpNet::V6(n) = net
        && let Some(v4) = n.network().to_ipv4_mapped()
        && n.prefix_len() >= 96
        && let Ok(v4net) = Ipv4Net::new(v4, n.prefix_len() - 96)
    {
        return IpNet::V4(v4net);
    }
    net.trunc()
}

/// Sorts ranges and merges overlapping or adjacent ones, leaving disjoint ranges
/// in ascending order.
fn merge<T: Copy + Ord + Step>(mut ranges: Vec<(T, T)>) -> Vec<(T, T)> {
    ranges.sort_unstable();
    let mut out: Vec<(T, T)> = Vec::with_capacity(ranges.len());
    for (start, end) in ranges {
        if let Some(last) = out.last_mut()
            && (start <= last.1 || last.1.succ() == Some(start))
        {
            last.1 = last.1.max(end);
            continue;
        }
        out.push((start, end));
    }
    out
}

/// Whether `[start, end]` overlaps any of the disjoint sorted `ranges`.
fn overlaps<T: Copy + Ord>(ranges: &[(T, T)], start: T, end: T) -> bool {
    // The first range that ends at or after `start`; ends ascend because the
    // ranges are disjoint and sorted.
    let i = ranges.partition_point(|r| r.1 < start);
    ranges.get(i).is_some_and(|r| r.0 <= end)
}

trait Step: Sized {
    fn succ(self) -> Option<Self>;
}

impl Step for u32 {
    fn succ(self) -> Option<Self> {
        self.checked_add(1)
    }
}

impl Step for u128 {
    fn succ(self) -> Option<Self> {
        self.checked_add(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipnet::Ipv6Net;
    use proptest::prelude::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn net(s: &str) -> IpNet {
        s.parse().expect("test net")
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test addr")
    }

    #[test]
    fn contains_addresses_in_entries() {
        let a = Allowlist::new([net("192.0.2.0/24"), net("2001:db8:1::/48")]);
        assert!(a.contains(ip("192.0.2.0")));
        assert!(a.contains(ip("192.0.2.255")));
        assert!(!a.contains(ip("192.0.3.0")));
        assert!(!a.contains(ip("192.0.1.255")));
        assert!(a.contains(ip("2001:db8:1:ffff::1")));
        assert!(!a.contains(ip("2001:db8:2::1")));
    }

    #[test]
    fn mapped_addresses_are_checked_as_ipv4() {
        let a = Allowlist::new([net("192.0.2.0/24")]);
        assert!(a.contains(ip("::ffff:192.0.2.7")));
        let b = Allowlist::new([net("::ffff:198.51.100.0/120")]);
        assert!(b.contains(ip("198.51.100.9")));
    }

    #[test]
    fn loopback_is_always_added() {
        let a = Allowlist::with_loopback([]);
        assert!(a.contains(ip("127.0.0.1")));
        assert!(a.contains(ip("127.255.0.1")));
        assert!(a.contains(ip("::1")));
        assert!(!a.contains(ip("203.0.113.1")));
    }

    #[test]
    fn intersects_in_both_directions() {
        let a = Allowlist::new([net("203.0.113.7/32")]);
        assert!(
            a.intersects(&net("203.0.113.0/24")),
            "prefix covering an entry"
        );
        assert!(a.intersects(&net("203.0.113.7/32")));
        assert!(!a.intersects(&net("203.0.112.0/24")));
        let b = Allowlist::new([net("198.51.100.0/24")]);
        assert!(
            b.intersects(&net("198.51.100.128/25")),
            "prefix inside an entry"
        );
        assert!(b.intersects(&net("0.0.0.0/0")));
        assert!(!b.intersects(&net("::/0")), "families never mix");
    }

    #[test]
    fn entry_intersecting_names_the_configured_entry() {
        let a = Allowlist::new([net("192.0.2.0/24"), net("203.0.113.7/32")]);
        assert_eq!(
            a.entry_intersecting(&net("203.0.113.0/24")),
            Some(net("203.0.113.7/32"))
        );
        assert_eq!(a.entry_intersecting(&net("198.51.100.0/24")), None);
    }

    #[test]
    fn merging_handles_adjacent_and_nested() {
        let a = Allowlist::new([
            net("10.0.0.0/25"),
            net("10.0.0.128/25"),
            net("10.0.0.5/32"),
            net("255.255.255.255/32"),
        ]);
        assert_eq!(a.v4, vec![(0x0a00_0000, 0x0a00_00ff), (u32::MAX, u32::MAX)]);
        assert!(a.contains(ip("255.255.255.255")));
    }

    fn v4net() -> impl Strategy<Value = IpNet> {
        (any::<u32>(), 0u8..=32)
            .prop_map(|(a, l)| IpNet::V4(Ipv4Net::new(Ipv4Addr::from(a), l).expect("len").trunc()))
    }

    fn v6net() -> impl Strategy<Value = IpNet> {
        (any::<u128>(), 0u8..=128)
            .prop_map(|(a, l)| IpNet::V6(Ipv6Net::new(Ipv6Addr::from(a), l).expect("len").trunc()))
    }

    /// A naive model: linear scan over the entries.
    fn naive_intersects(entries: &[IpNet], n: &IpNet) -> bool {
        entries.iter().any(|e| e.contains(n) || n.contains(e))
    }

    proptest! {
        #[test]
        fn contains_matches_naive_v4(
            entries in proptest::collection::vec((any::<u32>(), 8u8..=32), 0..12),
            probe in any::<u32>(),
        ) {
            let nets: Vec<IpNet> = entries
                .iter()
                .map(|(a, l)| IpNet::V4(Ipv4Net::new(Ipv4Addr::from(*a), *l).expect("len").trunc()))
                .collect();
            let a = Allowlist::new(nets.clone());
            let addr = IpAddr::V4(Ipv4Addr::from(probe));
            prop_assert_eq!(a.contains(addr), nets.iter().any(|n| n.contains(&addr)));
        }

        #[test]
        fn contains_near_entry_edges(entries in proptest::collection::vec(v4net(), 1..8), pick in any::<prop::sample::Index>(), delta in -2i64..=2) {
            // Probe right at and around entry boundaries, where off-by-ones live.
            let a = Allowlist::new(entries.clone());
            let e = pick.get(&entries);
            let IpNet::V4(e4) = e else { unreachable!() };
            for base in [u32::from(e4.network()), u32::from(e4.broadcast())] {
                let probe = (i64::from(base) + delta).clamp(0, i64::from(u32::MAX)) as u32;
                let addr = IpAddr::V4(Ipv4Addr::from(probe));
                prop_assert_eq!(a.contains(addr), entries.iter().any(|n| n.contains(&addr)));
            }
        }

        #[test]
        fn intersects_matches_naive(entries in proptest::collection::vec(prop_oneof![v4net(), v6net()], 0..10), probe in prop_oneof![v4net(), v6net()]) {
            let a = Allowlist::new(entries.clone());
            prop_assert_eq!(a.intersects(&probe), naive_intersects(&entries, &probe));
            prop_assert_eq!(a.entry_intersecting(&probe).is_some(), naive_intersects(&entries, &probe));
        }

        #[test]
        fn every_entry_contains_its_own_addresses(entries in proptest::collection::vec(prop_oneof![v4net(), v6net()], 1..10)) {
            let a = Allowlist::new(entries.clone());
            for e in &entries {
                prop_assert!(a.contains(e.network()));
                prop_assert!(a.contains(e.broadcast()));
                prop_assert!(a.intersects(e));
            }
        }
    }
}
