//! Which addresses the bench uses. Traffic and log lines that a test sends or writes
//! for real use documentation addresses only (192.0.2.0/24, 198.51.100.0/24,
//! 203.0.113.0/24, 2001:db8::/32), inside namespaces the bench created.
//!
//! IPv4 has only 762 documentation host addresses, and the map cases need up to a
//! million distinct IPv4 keys. Those filler keys come from 240.0.0.0/4, the block
//! reserved "for future use" that is never assigned to a host and never routed; they
//! are written into maps and sets and into log files the agent reads. The one place
//! they are a packet's source is the flood case, which needs thousands of distinct
//! IPv4 sources: there the frames exist only on a veth between two namespaces the
//! bench created, written by the sender program straight into the receiver's ring.
//! IPv6 keys and sources all come from 2001:db8::/32.

use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};

/// The three IPv4 documentation /24s.
const DOC_V4_NETS: [[u8; 3]; 3] = [[192, 0, 2], [198, 51, 100], [203, 0, 113]];

/// How many IPv4 documentation host addresses [`doc_v4`] yields.
pub const DOC_V4_COUNT: usize = 3 * 254;

/// The `i`-th IPv4 documentation host address (`.1` to `.254` of each /24), for
/// `i < DOC_V4_COUNT`; wraps around beyond.
pub fn doc_v4(i: usize) -> Ipv4Addr {
    let i = i % DOC_V4_COUNT;
    let [a, b, c] = DOC_V4_NETS[i / 254];
    Ipv4Addr::new(a, b, c, (i % 254) as u8 + 1)
}

/// The `i`-th filler IPv4 key in 240.0.0.0/4 (wraps after 2^28).
pub fn filler_v4(i: usize) -> Ipv4Addr {
    Ipv4Addr::from(0xF000_0000u32 | (i as u32 & 0x0FFF_FFFF))
}

/// The `i`-th /24 inside 240.0.0.0/4 (wraps after 2^20).
pub fn filler_v4_24(i: usize) -> Ipv4Net {
    let base = 0xF000_0000u32 | ((i as u32 & 0x000F_FFFF) << 8);
    Ipv4Net::new(Ipv4Addr::from(base), 24).expect("24 is a valid IPv4 prefix length")
}

/// The `i`-th IPv6 documentation address, in 2001:db8:1::/64.
pub fn doc_v6(i: usize) -> Ipv6Addr {
    Ipv6Addr::from((0x2001_0db8_0001_0000u128 << 64) | (i as u128 + 1))
}

/// The `i`-th /64 inside 2001:db8::/32, starting at 2001:db8:100::/64 (so it never
/// covers [`doc_v6`]'s /64 for any `i` below 2^31).
pub fn doc_v6_64(i: usize) -> Ipv6Net {
    let net = (0x2001_0db8u128 << 96) | ((0x0100_0000u128 + i as u128) << 64);
    Ipv6Net::new(Ipv6Addr::from(net), 64).expect("64 is a valid IPv6 prefix length")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn doc_v4_covers_three_nets_without_network_or_broadcast() {
        let all: HashSet<Ipv4Addr> = (0..DOC_V4_COUNT).map(doc_v4).collect();
        assert_eq!(all.len(), DOC_V4_COUNT);
        assert_eq!(doc_v4(0), Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(doc_v4(253), Ipv4Addr::new(192, 0, 2, 254));
        assert_eq!(doc_v4(254), Ipv4Addr::new(198, 51, 100, 1));
        assert_eq!(doc_v4(DOC_V4_COUNT - 1), Ipv4Addr::new(203, 0, 113, 254));
        for a in &all {
            let o = a.octets();
            assert!(o[3] != 0 && o[3] != 255);
            assert!(DOC_V4_NETS.contains(&[o[0], o[1], o[2]]));
        }
    }

    #[test]
    fn fillers_stay_in_the_reserved_block_and_are_distinct() {
        let reserved: Ipv4Net = "240.0.0.0/4".parse().expect("literal");
        let n = 100_000;
        let all: HashSet<Ipv4Addr> = (0..n).map(filler_v4).collect();
        assert_eq!(all.len(), n);
        assert!(all.iter().all(|a| reserved.contains(a)));
        assert!(reserved.contains(&filler_v4(usize::MAX)));
        let nets: HashSet<Ipv4Net> = (0..1_048_576).map(filler_v4_24).collect();
        assert_eq!(nets.len(), 1_048_576, "a million /24s fit");
        assert!(nets.iter().all(|n| reserved.contains(n)));
    }

    #[test]
    fn ipv6_keys_are_documentation_and_disjoint() {
        let doc: Ipv6Net = "2001:db8::/32".parse().expect("literal");
        assert!(doc.contains(&doc_v6(0)));
        assert!(doc.contains(&doc_v6(1_000_000)));
        let first = doc_v6_64(0);
        assert_eq!(first.to_string(), "2001:db8:100::/64");
        assert!(doc.contains(&doc_v6_64(1_000_000)));
        assert!(!first.contains(&doc_v6(5)));
        assert_ne!(doc_v6_64(1), first);
    }
}
