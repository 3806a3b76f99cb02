//! Where a ban target lives in the kernel. A single address (/32, /128) goes into the
//! exact hash map of its family; any other prefix goes into the family's LPM trie. The
//! drop counter of a prefix ban is keyed by the same target (an exact ban counts in
//! its own value), so these conversions are the one place that decides both, and they
//! must agree with what the XDP program computes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use log2drop_common::{
    CounterKey, FAMILY_V4, FAMILY_V6, MAP_BAN_V4, MAP_BAN_V6, MAP_CIDR_V4, MAP_CIDR_V6,
};

/// A ban target, routed to its map. Prefix variants always hold the network
/// address (host bits cleared), as the trie and the counters key them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Slot {
    /// Exact IPv4 address, in `BAN_V4`.
    V4([u8; 4]),
    /// Exact IPv6 address, in `BAN_V6`.
    V6([u8; 16]),
    /// IPv4 prefix shorter than /32, in `CIDR_V4`.
    CidrV4 {
        /// Prefix length, 0..=31.
        prefix_len: u8,
        /// Network address.
        addr: [u8; 4],
    },
    /// IPv6 prefix shorter than /128, in `CIDR_V6`.
    CidrV6 {
        /// Prefix length, 0..=127.
        prefix_len: u8,
        /// Network address.
        addr: [u8; 16],
    },
}

impl Slot {
    /// Routes a target. Host bits are cleared, so `203.0.113.7/24` and
    /// `203.0.113.0/24` are the same ban.
    pub(crate) fn of(net: &IpNet) -> Slot {
        match net.trunc() {
            IpNet::V4(n) if n.prefix_len() == 32 => Slot::V4(n.addr().octets()),
            IpNet::V4(n) => Slot::CidrV4 {
                prefix_len: n.prefix_len(),
                addr: n.addr().octets(),
            },
            IpNet::V6(n) if n.prefix_len() == 128 => Slot::V6(n.addr().octets()),
            IpNet::V6(n) => Slot::CidrV6 {
                prefix_len: n.prefix_len(),
                addr: n.addr().octets(),
            },
        }
    }

    /// The target this slot enforces.
    pub(crate) fn net(&self) -> IpNet {
        // The prefix lengths below are in range by construction (`of`,
        // `from_trie_v4/v6`), so `new` cannot fail; fall back to the host route
        // rather than panic if that ever changes.
        match *self {
            Slot::V4(a) => IpNet::V4(Ipv4Net::from(Ipv4Addr::from(a))),
            Slot::V6(a) => IpNet::V6(Ipv6Net::from(Ipv6Addr::from(a))),
            Slot::CidrV4 { prefix_len, addr } => {
                let a = Ipv4Addr::from(addr);
                IpNet::V4(Ipv4Net::new(a, prefix_len).unwrap_or_else(|_| Ipv4Net::from(a)))
            }
            Slot::CidrV6 { prefix_len, addr } => {
                let a = Ipv6Addr::from(addr);
                IpNet::V6(Ipv6Net::new(a, prefix_len).unwrap_or_else(|_| Ipv6Net::from(a)))
            }
        }
    }

    /// Name of the map that holds this slot.
    pub(crate) fn map_name(&self) -> &'static str {
        match self {
            Slot::V4(_) => MAP_BAN_V4,
            Slot::V6(_) => MAP_BAN_V6,
            Slot::CidrV4 { .. } => MAP_CIDR_V4,
            Slot::CidrV6 { .. } => MAP_CIDR_V6,
        }
    }

    /// Key of this prefix ban's drop counter in `CIDR_DROPS`, as the XDP program
    /// builds it; `None` for an exact ban, which counts in its own map value.
    pub(crate) fn counter_key(&self) -> Option<CounterKey> {
        let mut addr = [0u8; 16];
        let (family, prefix_len) = match *self {
            Slot::V4(_) | Slot::V6(_) => return None,
            Slot::CidrV4 {
                prefix_len,
                addr: a,
            } => {
                addr[..4].copy_from_slice(&a);
                (FAMILY_V4, prefix_len)
            }
            Slot::CidrV6 {
                prefix_len,
                addr: a,
            } => {
                addr = a;
                (FAMILY_V6, prefix_len)
            }
        };
        Some(CounterKey {
            family,
            prefix_len,
            _pad: [0; 2],
            addr,
        })
    }

    /// The slot a drop counter belongs to; `None` for a key no ban could produce.
    pub(crate) fn from_counter_key(key: &CounterKey) -> Option<Slot> {
        let net = match key.family {
            FAMILY_V4 => {
                let mut a = [0u8; 4];
                a.copy_from_slice(&key.addr[..4]);
                IpNet::new(IpAddr::from(a), key.prefix_len).ok()?
            }
            FAMILY_V6 => IpNet::new(IpAddr::from(key.addr), key.prefix_len).ok()?,
            _ => return None,
        };
        Some(Slot::of(&net))
    }

    /// A slot read back from `CIDR_V4`; `None` for an out-of-range prefix. A /32 in
    /// the trie (never written by us) still maps back to the trie, not the hash map.
    pub(crate) fn from_trie_v4(prefix_len: u32, addr: [u8; 4]) -> Option<Slot> {
        let prefix_len = u8::try_from(prefix_len).ok().filter(|p| *p <= 32)?;
        Some(Slot::CidrV4 { prefix_len, addr })
    }

    /// A slot read back from `CIDR_V6`; `None` for an out-of-range prefix.
    pub(crate) fn from_trie_v6(prefix_len: u32, addr: [u8; 16]) -> Option<Slot> {
        let prefix_len = u8::try_from(prefix_len).ok().filter(|p| *p <= 128)?;
        Some(Slot::CidrV6 { prefix_len, addr })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn net(s: &str) -> IpNet {
        s.parse().expect("test literal")
    }

    #[test]
    fn host_routes_go_to_exact_maps() {
        assert_eq!(
            Slot::of(&net("198.51.100.7/32")),
            Slot::V4([198, 51, 100, 7])
        );
        assert_eq!(Slot::of(&net("198.51.100.7/32")).map_name(), MAP_BAN_V4);
        let s = Slot::of(&net("2001:db8::1/128"));
        assert_eq!(s.map_name(), MAP_BAN_V6);
        assert_eq!(s.net(), net("2001:db8::1/128"));
    }

    #[test]
    fn prefixes_go_to_tries_with_host_bits_cleared() {
        let s = Slot::of(&net("203.0.113.77/24"));
        assert_eq!(
            s,
            Slot::CidrV4 {
                prefix_len: 24,
                addr: [203, 0, 113, 0]
            }
        );
        assert_eq!(s.map_name(), MAP_CIDR_V4);
        let s = Slot::of(&net("2001:db8:1:2::5/48"));
        assert_eq!(s.map_name(), MAP_CIDR_V6);
        assert_eq!(s.net(), net("2001:db8:1::/48"));
    }

    #[test]
    fn counter_key_layout_matches_the_program() {
        let k = Slot::of(&net("203.0.113.0/24"))
            .counter_key()
            .expect("prefix ban");
        assert_eq!((k.family, k.prefix_len), (FAMILY_V4, 24));
        assert_eq!(&k.addr[..4], &[203, 0, 113, 0]);
        assert!(k.addr[4..].iter().all(|b| *b == 0));
        let k = Slot::of(&net("2001:db8:1::/48"))
            .counter_key()
            .expect("prefix ban");
        assert_eq!((k.family, k.prefix_len), (FAMILY_V6, 48));
        assert_eq!(
            k.addr,
            "2001:db8:1::".parse::<Ipv6Addr>().expect("lit").octets()
        );
        assert_eq!(Slot::of(&net("2001:db8::1/128")).counter_key(), None);
        assert_eq!(Slot::of(&net("192.0.2.1/32")).counter_key(), None);
    }

    #[test]
    fn bad_counter_keys_are_rejected() {
        let mut k = Slot::of(&net("192.0.2.0/24"))
            .counter_key()
            .expect("prefix ban");
        k.prefix_len = 33;
        assert_eq!(Slot::from_counter_key(&k), None);
        k.family = 5;
        k.prefix_len = 24;
        assert_eq!(Slot::from_counter_key(&k), None);
    }

    #[test]
    fn trie_readback_rejects_impossible_prefixes() {
        assert_eq!(Slot::from_trie_v4(33, [0; 4]), None);
        assert_eq!(Slot::from_trie_v6(129, [0; 16]), None);
        assert!(Slot::from_trie_v4(0, [0; 4]).is_some());
    }

    fn any_net() -> impl Strategy<Value = IpNet> {
        prop_oneof![
            (any::<[u8; 4]>(), 0u8..=32)
                .prop_map(|(a, p)| IpNet::new(IpAddr::from(a), p).expect("prefix in range")),
            (any::<[u8; 16]>(), 0u8..=128)
                .prop_map(|(a, p)| IpNet::new(IpAddr::from(a), p).expect("prefix in range")),
        ]
    }

    proptest! {
        #[test]
        fn routing_round_trips(n in any_net()) {
            let s = Slot::of(&n);
            prop_assert_eq!(s.net(), n.trunc());
            let exact = n.prefix_len() == n.max_prefix_len();
            match s.counter_key() {
                Some(k) => prop_assert_eq!(Slot::from_counter_key(&k), Some(s)),
                None => prop_assert!(exact),
            }
            prop_assert_eq!(matches!(s, Slot::V4(_) | Slot::V6(_)), exact);
        }
    }
}
