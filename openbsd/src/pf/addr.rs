//! Table entries to and from `struct pfr_addr`. Encoding masks host bits, because the
//! kernel refuses (EINVAL) an entry like 192.0.2.77/24 whose bits past the prefix are
//! set; decoding accepts only what the kernel itself would have accepted.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use super::sys::{AF_INET, AF_INET6, AddrBytes, PFR_FB_NONE, PfrAddr};

/// A table entry as the kernel reports it: an address block, possibly negated
/// (`!192.0.2.0/24` in pfctl's syntax). log2drop never writes negated entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The address block.
    pub net: IpNet,
    /// `pfra_not`: the entry excludes rather than includes.
    pub negated: bool,
}

/// The `pfr_addr` for `net`, host bits cleared: 192.0.2.77/24 becomes 192.0.2.0/24.
pub fn encode(net: &IpNet) -> PfrAddr {
    let mut a = PfrAddr::zeroed();
    match net.trunc() {
        IpNet::V4(n) => {
            a.pfra_u.0[..4].copy_from_slice(&n.addr().octets());
            a.pfra_af = AF_INET;
            a.pfra_net = n.prefix_len();
        }
        IpNet::V6(n) => {
            a.pfra_u.0 = n.addr().octets();
            a.pfra_af = AF_INET6;
            a.pfra_net = n.prefix_len();
        }
    }
    a
}

/// The `pfr_addr` for one host (/32 or /128).
pub fn encode_host(addr: IpAddr) -> PfrAddr {
    encode(&IpNet::from(addr))
}

/// Why a `pfr_addr` is not a valid table entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvalidAddr {
    /// `pfra_af` is neither 2 nor 24.
    #[error("address family {0} is neither AF_INET (2) nor OpenBSD's AF_INET6 (24)")]
    Family(u8),
    /// The prefix is longer than the family's address.
    #[error("prefix length {net} is too long for the address family")]
    Prefix {
        /// The prefix length.
        net: u8,
    },
    /// Bits past the prefix (or past an IPv4 address) are set.
    #[error("bits past the /{net} prefix are set")]
    HostBits {
        /// The prefix length.
        net: u8,
    },
    /// `pfra_not` is neither 0 nor 1, `pfra_fback` is set, or `pfra_type` is unknown.
    #[error("invalid flags (not={not}, fback={fback}, type={type_})")]
    Flags {
        /// `pfra_not`.
        not: u8,
        /// `pfra_fback`.
        fback: u8,
        /// `pfra_type`.
        type_: u8,
    },
}

/// The kernel's `pfr_validate_addr`: what DIOCRADDADDRS, DIOCRDELADDRS and
/// DIOCRSETADDRS accept. The fake device applies it; `decode` relies on it.
pub fn validate(a: &PfrAddr) -> Result<(), InvalidAddr> {
    let bits: u8 = match a.pfra_af {
        AF_INET => 32,
        AF_INET6 => 128,
        af => return Err(InvalidAddr::Family(af)),
    };
    let net = a.pfra_net;
    if net > bits {
        return Err(InvalidAddr::Prefix { net });
    }
    let bytes = &a.pfra_u.0;
    // The partial byte at the prefix boundary, then every byte after it, through
    // the whole 16-byte union (so an IPv4 entry's bytes 4..16 must be zero).
    if net < 128 && bytes[usize::from(net / 8)] & (0xFF >> (net % 8)) != 0 {
        return Err(InvalidAddr::HostBits { net });
    }
    if bytes[usize::from(net).div_ceil(8)..]
        .iter()
        .any(|&b| b != 0)
    {
        return Err(InvalidAddr::HostBits { net });
    }
    if a.pfra_not > 1 || a.pfra_fback != PFR_FB_NONE || a.pfra_type >= super::sys::PFRKE_MAX {
        return Err(InvalidAddr::Flags {
            not: a.pfra_not,
            fback: a.pfra_fback,
            type_: a.pfra_type,
        });
    }
    Ok(())
}

/// The entry a `pfr_addr` from DIOCRGETADDRS describes. The kernel fills
/// `pfra_fback` on output, so only the address part is validated here.
pub fn decode(a: &PfrAddr) -> Result<Entry, InvalidAddr> {
    let mut clean = *a;
    clean.pfra_fback = PFR_FB_NONE;
    clean.pfra_type = 0;
    validate(&clean)?;
    let bytes = a.pfra_u.0;
    let net = match a.pfra_af {
        AF_INET => {
            let v4 = Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]);
            IpNet::V4(Ipv4Net::new(v4, a.pfra_net).expect("prefix checked by validate"))
        }
        _ => IpNet::V6(
            Ipv6Net::new(Ipv6Addr::from(bytes), a.pfra_net).expect("prefix checked by validate"),
        ),
    };
    Ok(Entry {
        net,
        negated: a.pfra_not == 1,
    })
}

/// The address bytes of `addr` as `pf_addr` holds them, and an all-ones mask of
/// the family's width (what `pfctl -k host` puts in `pfioc_state_kill`).
pub(crate) fn host_and_mask(addr: IpAddr) -> (u8, AddrBytes, AddrBytes) {
    let mut a = AddrBytes::default();
    let mut m = AddrBytes::default();
    match addr {
        IpAddr::V4(v4) => {
            a.0[..4].copy_from_slice(&v4.octets());
            m.0[..4].fill(0xff);
            (AF_INET, a, m)
        }
        IpAddr::V6(v6) => {
            a.0 = v6.octets();
            m.0.fill(0xff);
            (AF_INET6, a, m)
        }
    }
}

/// The bytes of a `pfr_addr` in memory order, for golden-byte tests.
#[cfg(test)]
pub(crate) fn as_bytes(a: &PfrAddr) -> &[u8; 52] {
    const _: () = assert!(core::mem::size_of::<PfrAddr>() == 52);
    // SAFETY: PfrAddr is repr(C), 52 bytes, with its tail padding named, so every
    // byte is an initialized integer; u8 has no alignment requirement.
    unsafe { &*(a as *const PfrAddr).cast::<[u8; 52]>() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    /// 52 bytes: address union (16), ifname (16), states (4), weight (2), af, net,
    /// not, fback, type, pad (7), tail (2).
    fn golden(addr: &[u8], af: u8, prefix: u8) -> [u8; 52] {
        let mut g = [0u8; 52];
        g[..addr.len()].copy_from_slice(addr);
        g[38] = af;
        g[39] = prefix;
        g
    }

    #[test]
    fn ipv4_host_golden_bytes() {
        let a = encode(&net("192.0.2.1/32"));
        assert_eq!(as_bytes(&a), &golden(&[192, 0, 2, 1], 2, 32));
    }

    #[test]
    fn ipv6_host_golden_bytes_use_openbsd_af_24() {
        let a = encode(&net("2001:db8::1/128"));
        let addr = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        assert_eq!(as_bytes(&a), &golden(&addr, 24, 128));
        assert_eq!(as_bytes(&a)[38], 24, "OpenBSD's AF_INET6, not Linux's 10");
    }

    #[test]
    fn cidr_host_bits_are_masked() {
        let a = encode(&net("198.51.100.77/24"));
        assert_eq!(as_bytes(&a), &golden(&[198, 51, 100, 0], 2, 24));
        let b = encode(&net("2001:db8:abcd:12ff::1/52"));
        let addr = [
            0x20, 0x01, 0x0d, 0xb8, 0xab, 0xcd, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        assert_eq!(as_bytes(&b), &golden(&addr, 24, 52));
        // Both are what the kernel's validation accepts.
        validate(&a).unwrap();
        validate(&b).unwrap();
    }

    #[test]
    fn validate_refuses_what_the_kernel_refuses() {
        let mut a = encode(&net("203.0.113.0/24"));
        a.pfra_u.0[3] = 1;
        assert_eq!(validate(&a), Err(InvalidAddr::HostBits { net: 24 }));
        let mut a = encode(&net("203.0.113.1/32"));
        a.pfra_u.0[4] = 1; // past an IPv4 address
        assert_eq!(validate(&a), Err(InvalidAddr::HostBits { net: 32 }));
        let mut a = encode(&net("203.0.113.1/32"));
        a.pfra_net = 33;
        assert_eq!(validate(&a), Err(InvalidAddr::Prefix { net: 33 }));
        let mut a = encode(&net("2001:db8::1/128"));
        a.pfra_af = 10; // Linux's AF_INET6
        assert_eq!(validate(&a), Err(InvalidAddr::Family(10)));
        let mut a = encode(&net("2001:db8::1/128"));
        a.pfra_not = 2;
        assert!(matches!(validate(&a), Err(InvalidAddr::Flags { .. })));
    }

    #[test]
    fn decode_inverts_encode_and_reads_negation() {
        for s in [
            "192.0.2.1/32",
            "0.0.0.0/0",
            "2001:db8::/32",
            "::/0",
            "::1/128",
        ] {
            let e = decode(&encode(&net(s))).unwrap();
            assert_eq!(
                e,
                Entry {
                    net: net(s),
                    negated: false
                }
            );
        }
        let mut a = encode(&net("192.0.2.0/24"));
        a.pfra_not = 1;
        a.pfra_fback = 2; // the kernel may report feedback; not an error on output
        assert!(decode(&a).unwrap().negated);
    }
}
