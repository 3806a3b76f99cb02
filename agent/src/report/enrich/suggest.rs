//! `--suggest`: prefixes worth banning whole. Banned addresses are grouped by the
//! widest prefix an admin would ban by hand (`/24`, `/64` by default); a group
//! with enough distinct addresses gets the *smallest* prefix covering them, so a
//! suggestion never takes in more address space than the evidence does. A
//! prefix that would cover an allowlisted address is split at its first
//! differing bit and each half tried again, so nothing suggested ever covers an
//! allowed address.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

use crate::engine::allowlist::Allowlist;

/// One suggested prefix ban.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suggestion {
    /// The prefix.
    pub prefix: IpNet,
    /// Bans of addresses inside it (what a ban of it would have caught).
    pub bans: u64,
    /// Distinct banned addresses inside it.
    pub addresses: u64,
}

/// How suggestions are found.
#[derive(Debug, Clone, Copy)]
pub struct Params {
    /// Widest IPv4 prefix suggested.
    pub group4: u8,
    /// Widest IPv6 prefix suggested.
    pub group6: u8,
    /// Fewest distinct addresses a suggestion holds (at least 2).
    pub min_addresses: usize,
}

/// Suggestions for these banned host addresses (address, bans), most bans first.
pub fn suggest(banned: &[(IpAddr, u64)], allow: &Allowlist, p: &Params) -> Vec<Suggestion> {
    let min = p.min_addresses.max(2);
    // Per family: address bits -> bans, sorted by the map.
    let mut v4: BTreeMap<u128, u64> = BTreeMap::new();
    let mut v6: BTreeMap<u128, u64> = BTreeMap::new();
    for &(a, n) in banned {
        match crate::addr::normalise(a) {
            IpAddr::V4(a) => *v4.entry(u128::from(u32::from(a))).or_default() += n,
            IpAddr::V6(a) => *v6.entry(u128::from(a)).or_default() += n,
        }
    }
    let mut out = Vec::new();
    for (map, bits, group) in [(v4, 32u8, p.group4), (v6, 128u8, p.group6)] {
        let list: Vec<(u128, u64)> = map.into_iter().collect();
        let group = group.min(bits);
        let shift = u32::from(bits - group);
        let key = |a: u128| a.checked_shr(shift).unwrap_or(0);
        let mut start = 0;
        while start < list.len() {
            let k = key(list[start].0);
            let end = start + list[start..].iter().take_while(|e| key(e.0) == k).count();
            cover(&list[start..end], bits, min, allow, &mut out);
            start = end;
        }
    }
    out.sort_by(|a, b| b.bans.cmp(&a.bans).then(a.prefix.cmp(&b.prefix)));
    out
}

/// The smallest prefix over `addrs` (sorted, one family, `bits` wide), or its
/// halves when it covers an allowed address.
fn cover(
    addrs: &[(u128, u64)],
    bits: u8,
    min: usize,
    allow: &Allowlist,
    out: &mut Vec<Suggestion>,
) {
    if addrs.len() < min {
        return;
    }
    let (first, last) = (addrs[0].0, addrs[addrs.len() - 1].0);
    // Leading bits the first and last share, within the family's width.
    let common = ((first ^ last).leading_zeros() - (128 - u32::from(bits))) as u8;
    let net = make_net(first, bits, common);
    if !allow.intersects(&net) {
        out.push(Suggestion {
            prefix: net,
            bans: addrs.iter().map(|a| a.1).sum(),
            addresses: addrs.len() as u64,
        });
        return;
    }
    // first and last differ at bit `common`: split there, both halves non-empty.
    let bit = 1u128 << (bits - common - 1);
    let split = addrs.partition_point(|a| a.0 & bit == 0);
    cover(&addrs[..split], bits, min, allow, out);
    cover(&addrs[split..], bits, min, allow, out);
}

fn make_net(addr: u128, bits: u8, len: u8) -> IpNet {
    let ip = if bits == 32 {
        IpAddr::V4(Ipv4Addr::from(addr as u32))
    } else {
        IpAddr::V6(Ipv6Addr::from(addr))
    };
    IpNet::new(ip, len).map_or_else(|_| IpNet::from(ip), |n| n.trunc())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn params() -> Params {
        Params {
            group4: 24,
            group6: 64,
            min_addresses: 2,
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn smallest_cover_with_ban_counts() {
        let banned = [
            (ip("192.0.2.10"), 3),
            (ip("192.0.2.12"), 1),
            (ip("192.0.2.14"), 2),
            (ip("198.51.100.1"), 5),
            (ip("2001:db8::1"), 1),
            (ip("2001:db8::ff"), 1),
        ];
        let s = suggest(&banned, &Allowlist::new([]), &params());
        assert_eq!(
            s,
            [
                Suggestion {
                    prefix: "192.0.2.8/29".parse().expect("net"),
                    bans: 6,
                    addresses: 3
                },
                Suggestion {
                    prefix: "2001:db8::/120".parse().expect("net"),
                    bans: 2,
                    addresses: 2
                },
            ]
        );
    }

    #[test]
    fn allowed_addresses_split_the_cluster() {
        let banned = [
            (ip("192.0.2.1"), 1),
            (ip("192.0.2.2"), 1),
            (ip("192.0.2.200"), 1),
            (ip("192.0.2.201"), 1),
        ];
        let allow = Allowlist::new(["192.0.2.100/32".parse().expect("net")]);
        let s = suggest(&banned, &allow, &params());
        let nets: Vec<String> = s.iter().map(|s| s.prefix.to_string()).collect();
        assert_eq!(nets, ["192.0.2.0/30", "192.0.2.200/31"]);
    }

    fn v4s() -> impl Strategy<Value = Vec<(IpAddr, u64)>> {
        proptest::collection::vec(
            (
                prop_oneof![
                    Just([192u8, 0, 2]),
                    Just([198, 51, 100]),
                    Just([203, 0, 113])
                ],
                any::<u8>(),
                1u64..5,
            ),
            0..60,
        )
        .prop_map(|v| {
            v.into_iter()
                .map(|(p, l, n)| (IpAddr::V4(Ipv4Addr::new(p[0], p[1], p[2], l)), n))
                .collect()
        })
    }

    proptest! {
        #[test]
        fn suggestions_are_minimal_counted_and_never_cover_the_allowlist(
            banned in v4s(),
            allow in proptest::collection::vec((any::<u8>(), 24u8..=32), 0..4),
            min in 2usize..5,
        ) {
            let allow_nets: Vec<IpNet> = allow
                .iter()
                .map(|&(l, len)| IpNet::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, l)), len).expect("net").trunc())
                .collect();
            let allowlist = Allowlist::new(allow_nets.clone());
            let p = Params { min_addresses: min, ..params() };
            let s = suggest(&banned, &allowlist, &p);
            let mut per: BTreeMap<IpAddr, u64> = BTreeMap::new();
            for (a, n) in &banned {
                *per.entry(*a).or_default() += n;
            }
            for (i, sug) in s.iter().enumerate() {
                for a in &allow_nets {
                    prop_assert!(!sug.prefix.contains(a) && !a.contains(&sug.prefix), "{} covers allowed {}", sug.prefix, a);
                }
                let inside: Vec<(&IpAddr, &u64)> = per.iter().filter(|(a, _)| sug.prefix.contains(*a)).collect();
                prop_assert!(inside.len() >= min);
                prop_assert_eq!(inside.len() as u64, sug.addresses);
                prop_assert_eq!(inside.iter().map(|x| *x.1).sum::<u64>(), sug.bans);
                prop_assert!(sug.prefix.prefix_len() >= 24);
                // Smallest: both halves of the prefix hold a banned address.
                let halves = sug.prefix.subnets(sug.prefix.prefix_len() + 1).expect("halves");
                for half in halves {
                    prop_assert!(inside.iter().any(|(a, _)| half.contains(*a)));
                }
                for other in &s[i + 1..] {
                    prop_assert!(!sug.prefix.contains(&other.prefix) && !other.prefix.contains(&sug.prefix));
                }
            }
        }
    }
}
