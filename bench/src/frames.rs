//! Ethernet frames the bench sends or feeds to the XDP program: a small UDP datagram
//! over IPv4 or IPv6 with a valid IPv4 header checksum (the stack drops a bad one
//! before any firewall hook sees it, which would flatter the netfilter figures).
//! The UDP checksum is left at zero (allowed for IPv4; the kernel does not check it
//! for a closed port on IPv6 before the firewall hooks either).

use std::net::{Ipv4Addr, Ipv6Addr};

/// Locally administered MAC used as the source of generated frames.
pub const SRC_MAC: [u8; 6] = [0x02, 0x6c, 0x32, 0x64, 0xbe, 0x01];

/// The discard port: nothing listens there.
pub const DST_PORT: u16 = 9;

/// A 60-byte Ethernet + IPv4 + UDP frame (the minimum Ethernet size without FCS).
pub fn udp_v4(dst_mac: [u8; 6], src: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
    let payload = 60 - 14 - 20 - 8;
    let mut f = Vec::with_capacity(60);
    f.extend_from_slice(&dst_mac);
    f.extend_from_slice(&SRC_MAC);
    f.extend_from_slice(&0x0800u16.to_be_bytes());
    let total = (20 + 8 + payload) as u16;
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    ip[6] = 0x40; // don't fragment
    ip[8] = 64; // TTL
    ip[9] = 17; // UDP
    ip[12..16].copy_from_slice(&src.octets());
    ip[16..20].copy_from_slice(&dst.octets());
    let sum = ipv4_checksum(&ip);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    f.extend_from_slice(&ip);
    udp(&mut f, payload);
    f
}

/// An Ethernet + IPv6 + UDP frame with an 18-byte payload (80 bytes).
pub fn udp_v6(dst_mac: [u8; 6], src: Ipv6Addr, dst: Ipv6Addr) -> Vec<u8> {
    let payload = 18;
    let mut f = Vec::with_capacity(14 + 40 + 8 + payload);
    f.extend_from_slice(&dst_mac);
    f.extend_from_slice(&SRC_MAC);
    f.extend_from_slice(&0x86DDu16.to_be_bytes());
    f.extend_from_slice(&[0x60, 0, 0, 0]);
    f.extend_from_slice(&((8 + payload) as u16).to_be_bytes());
    f.push(17); // next header: UDP
    f.push(64); // hop limit
    f.extend_from_slice(&src.octets());
    f.extend_from_slice(&dst.octets());
    udp(&mut f, payload);
    f
}

fn udp(f: &mut Vec<u8>, payload: usize) {
    f.extend_from_slice(&40000u16.to_be_bytes());
    f.extend_from_slice(&DST_PORT.to_be_bytes());
    f.extend_from_slice(&((8 + payload) as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend(std::iter::repeat_n(0x5a, payload));
}

/// The Internet checksum of an IPv4 header whose checksum field is zero.
pub fn ipv4_checksum(header: &[u8]) -> u16 {
    let mut sum: u32 = header
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Parses `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = s.trim().split(':');
    for b in &mut out {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_frame_layout_and_checksum() {
        let f = udp_v4(
            [2, 0, 0, 0, 0, 1],
            Ipv4Addr::new(198, 51, 100, 7),
            Ipv4Addr::new(198, 51, 100, 1),
        );
        assert_eq!(f.len(), 60);
        assert_eq!(&f[12..14], &[0x08, 0x00]);
        assert_eq!(&f[26..30], &[198, 51, 100, 7], "source address");
        // A header with its checksum in place sums to zero.
        assert_eq!(ipv4_checksum(&f[14..34]), 0);
        assert_eq!(u16::from_be_bytes([f[36], f[37]]), 9, "dst port");
    }

    #[test]
    fn known_checksum() {
        // The classic example header from RFC 1071 discussions (checksum 0xb861).
        let h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(ipv4_checksum(&h), 0xb861);
    }

    #[test]
    fn ipv6_frame_layout() {
        let src: Ipv6Addr = "2001:db8:1::7".parse().expect("lit");
        let f = udp_v6(
            [2, 0, 0, 0, 0, 1],
            src,
            "2001:db8:1::1".parse().expect("lit"),
        );
        assert_eq!(f.len(), 80);
        assert_eq!(&f[12..14], &[0x86, 0xdd]);
        assert_eq!(&f[22..38], &src.octets());
        assert_eq!(u16::from_be_bytes([f[18], f[19]]), 26, "payload length");
    }

    #[test]
    fn macs() {
        assert_eq!(
            parse_mac("02:6c:32:64:00:0a"),
            Some([2, 0x6c, 0x32, 0x64, 0, 0x0a])
        );
        assert_eq!(parse_mac("02:6c:32"), None);
        assert_eq!(parse_mac("02:6c:32:64:00:0a:01"), None);
        assert_eq!(parse_mac("zz:6c:32:64:00:0a"), None);
    }
}
