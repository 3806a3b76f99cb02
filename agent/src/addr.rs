//! Addresses as text: the one place that decides what counts as an IP address in a
//! log line, on the command line and in the config.
//!
//! Log lines arrive as bytes, so [`parse_ip`] reads an address straight from a byte
//! slice without allocating. Both log text and user input may write an IPv4 peer as an
//! IPv4-mapped IPv6 address (`::ffff:203.0.113.4`); the agent always normalises those
//! to plain IPv4, so one host has one key in the engine and in the kernel maps.
//! Zone ids (`fe80::1%eth0`) name a link, not a host, and are rejected.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// The longest textual address accepted: a full IPv6 address with an embedded IPv4
/// tail (`ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255`) is 45 bytes.
const MAX_ADDR_LEN: usize = 45;

/// Why a CLI or config target (`ADDR` or `ADDR/LEN`) was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddrError {
    /// The address part is not an IPv4 or IPv6 address.
    #[error("{input:?} is not an IPv4 or IPv6 address")]
    InvalidAddress {
        /// What the user wrote.
        input: String,
    },
    /// The address carries an IPv6 zone id, which names a link rather than a host.
    #[error("{input:?} has a zone id (%...); zone ids name a link, not a host")]
    ZoneId {
        /// What the user wrote.
        input: String,
    },
    /// The prefix length is not a number or too long for the address family.
    #[error("{input:?} has an invalid prefix length (expected 0 to {max})")]
    InvalidPrefix {
        /// What the user wrote.
        input: String,
        /// The longest prefix for this family (32 or 128).
        max: u8,
    },
    /// The address has bits set below the prefix length, so it is ambiguous.
    #[error("{input:?} has host bits set below the prefix; did you mean {network}?")]
    HostBitsSet {
        /// What the user wrote.
        input: String,
        /// The network the user probably meant.
        network: String,
    },
    /// An IPv4-mapped IPv6 prefix shorter than /96 covers more than IPv4 space.
    #[error("{input:?} is an IPv4-mapped prefix shorter than /96")]
    MappedPrefixTooShort {
        /// What the user wrote.
        input: String,
    },
}

/// Parses an IPv4 or IPv6 address from raw bytes, as found in a log line.
///
/// Returns `None` for anything that is not exactly one address: surrounding text,
/// zone ids, leading-zero IPv4 octets (`010.0.0.1`, ambiguous octal) and invalid
/// UTF-8 are all refused. IPv4-mapped IPv6 (`::ffff:a.b.c.d`) comes back as IPv4.
/// Does not allocate.
pub(crate) fn parse_ip(bytes: &[u8]) -> Option<IpAddr> {
    if bytes.is_empty() || bytes.len() > MAX_ADDR_LEN {
        return None;
    }
    // Dotted quads are what logs mostly hold: one pass, and done.
    if let Some(v4) = parse_v4(bytes) {
        return Some(IpAddr::V4(v4));
    }
    // Only the characters of an address; this also keeps zone ids (`%`) and any
    // non-ASCII byte out before the std parser sees them.
    let mut colon = false;
    for &b in bytes {
        match b {
            b':' => colon = true,
            b'.' => {}
            _ if b.is_ascii_hexdigit() => {}
            _ => return None,
        }
    }
    if !colon {
        return None;
    }
    parse_v6(bytes).map(normalise_v6)
}

/// [`parse_ip`] of text its caller has already read byte by byte: only hex
/// digits, `:` and `.`, at most [`MAX_ADDR_LEN`] of them, and `colon` says
/// whether one is a `:`. That settles the family (IPv4 has no colon, IPv6 at
/// least two), so neither the other parser nor the character check runs.
#[inline]
pub(crate) fn parse_addr_chars(bytes: &[u8], colon: bool) -> Option<IpAddr> {
    debug_assert!(bytes.len() <= MAX_ADDR_LEN);
    debug_assert!(
        bytes
            .iter()
            .all(|b| b.is_ascii_hexdigit() || *b == b':' || *b == b'.')
    );
    debug_assert_eq!(colon, bytes.contains(&b':'));
    if colon {
        parse_v6(bytes).map(normalise_v6)
    } else {
        parse_v4(bytes).map(IpAddr::V4)
    }
}

/// IPv6 text by hand, with exactly the standard parser's rules (a proptest holds
/// them to it): up to eight groups of one to four hex digits, at most one `::`
/// standing for at least one zero group, and a dotted-quad tail in place of the
/// last two groups. The standard parser goes through `&str` and a generic
/// parser combinator; an attacked server's log holds an IPv6 address on many
/// lines, and this is several times cheaper. One pass from left to right, each
/// byte looked at once. The groups are shifted into one number as they come,
/// those before `::` set aside and shifted into place at the close: an array
/// of groups closed the gap with two `memcpy` calls (391 instructions a call
/// on attacks-100k against 375 this way).
fn parse_v6(bytes: &[u8]) -> Option<Ipv6Addr> {
    let len = bytes.len();
    // The groups read so far (since `::`, once it is seen), 16 bits each.
    let mut groups: u128 = 0;
    // The groups before `::`.
    let mut head: u128 = 0;
    let mut n: u32 = 0;
    // How many groups come before `::`, once it is seen.
    let mut gap: Option<u32> = None;
    let mut pos = 0;
    if bytes.starts_with(b"::") {
        gap = Some(0);
        pos = 2;
    }
    // Each turn reads a group where one must stand: at the start, after a
    // single ':', or after `::` unless the text ends there.
    while pos < len {
        if n == 8 {
            return None;
        }
        let start = pos;
        let mut value: u32 = 0;
        while pos < len && pos - start < 4 {
            let Some(d) = hex_digit(bytes[pos]) else {
                break;
            };
            value = value * 16 + d;
            pos += 1;
        }
        match bytes.get(pos) {
            // A dotted quad takes the place of the last two groups, and
            // nothing may follow it.
            Some(b'.') => {
                let room = if gap.is_some() { 7 } else { 8 };
                if n + 2 > room {
                    return None;
                }
                let quad = parse_v4(&bytes[start..])?;
                groups = groups << 32 | u128::from(quad.to_bits());
                n += 2;
                break;
            }
            _ if pos == start => return None,
            None => {
                groups = groups << 16 | u128::from(value);
                n += 1;
            }
            Some(b':') => {
                groups = groups << 16 | u128::from(value);
                n += 1;
                if bytes.get(pos + 1) == Some(&b':') {
                    if gap.is_some() {
                        return None;
                    }
                    gap = Some(n);
                    head = groups;
                    groups = 0;
                    pos += 2;
                } else {
                    pos += 1;
                    // A single ':' must be followed by a group.
                    if pos == len {
                        return None;
                    }
                }
            }
            // A fifth digit, or a byte no address holds.
            Some(_) => return None,
        }
    }
    match gap {
        None => (n == 8).then(|| Ipv6Addr::from_bits(groups)),
        // `::` stands for at least one group. With none before it, `head`
        // is 0 and the shift (by 128, taken as 0) leaves it 0.
        Some(g) if n <= 7 => Some(Ipv6Addr::from_bits(
            head.wrapping_shl(16 * (8 - g)) | groups,
        )),
        Some(_) => None,
    }
}

/// The value of a hex digit of either case, by table (`char::to_digit` tests
/// ranges one after another).
#[inline(always)]
fn hex_digit(b: u8) -> Option<u32> {
    const NONE: u8 = u8::MAX;
    static VALUES: [u8; 256] = {
        let mut table = [NONE; 256];
        let mut k = 0;
        while k < 256 {
            let b = k as u8;
            table[k] = match b {
                b'0'..=b'9' => b - b'0',
                b'a'..=b'f' => b - b'a' + 10,
                b'A'..=b'F' => b - b'A' + 10,
                _ => NONE,
            };
            k += 1;
        }
        table
    };
    let v = VALUES[usize::from(b)];
    (v != NONE).then_some(u32::from(v))
}

/// Dotted-quad IPv4, by hand: the hot path of every matched line. Same rules as
/// the standard parser: four decimal octets of one to three digits, at most 255,
/// no leading zero (`010` could be read as octal), nothing before or after.
/// Octet by octet, so each byte is looked at once and tested only for what may
/// come at its place (a proptest holds it to the standard parser).
fn parse_v4(bytes: &[u8]) -> Option<Ipv4Addr> {
    // `0.0.0.0` to `255.255.255.255`: anything else is refused before a byte is read.
    if !(7..=15).contains(&bytes.len()) {
        return None;
    }
    let (mut addr, mut pos) = octet(bytes)?;
    for _ in 0..3 {
        if bytes.get(pos) != Some(&b'.') {
            return None;
        }
        let (value, used) = octet(&bytes[pos + 1..])?;
        addr = addr << 8 | value;
        pos += 1 + used;
    }
    (pos == bytes.len()).then(|| Ipv4Addr::from(addr))
}

/// The decimal octet at the start of `bytes` and how many digits it took: one to
/// three digits, no leading zero, at most 255. What follows is the caller's: a
/// fourth digit is refused there, as it is not a `.` nor the end.
#[inline(always)]
fn octet(bytes: &[u8]) -> Option<(u32, usize)> {
    let digit = |i: usize| {
        bytes
            .get(i)
            .map(|b| u32::from(b.wrapping_sub(b'0')))
            .filter(|d| *d <= 9)
    };
    let d0 = digit(0)?;
    let Some(d1) = digit(1) else {
        return Some((d0, 1));
    };
    if d0 == 0 {
        return None;
    }
    let Some(d2) = digit(2) else {
        return Some((d0 * 10 + d1, 2));
    };
    let value = d0 * 100 + d1 * 10 + d2;
    (value <= 255).then_some((value, 3))
}

/// Longest DNS name, without the root's trailing dot.
pub(crate) const MAX_HOST_NAME_LEN: usize = 253;

/// Whether `text` is a DNS host name that a log may hold where an address
/// belongs (`use_dns`): labels of letters, digits and `-` (not at either end of
/// a label), at most 63 bytes each, at least two labels, at most 253 bytes, an
/// optional trailing dot, and a last label that is not all digits, so no
/// address, whole or cut (`192.0.2`), passes. Does not allocate.
pub(crate) fn is_host_name(text: &[u8]) -> bool {
    let text = text.strip_suffix(b".").unwrap_or(text);
    if text.is_empty() || text.len() > MAX_HOST_NAME_LEN {
        return false;
    }
    let mut labels = 0;
    let mut last: &[u8] = b"";
    for label in text.split(|&b| b == b'.') {
        if label.is_empty()
            || label.len() > 63
            || label.first() == Some(&b'-')
            || label.last() == Some(&b'-')
            || !label
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        {
            return false;
        }
        labels += 1;
        last = label;
    }
    labels >= 2 && !last.iter().all(u8::is_ascii_digit)
}

/// Turns an IPv4-mapped IPv6 address into its IPv4 address; leaves others alone.
pub(crate) fn normalise(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => normalise_v6(v6),
        v4 => v4,
    }
}

/// Why an address (already [`normalise`]d) can never be a packet's real source
/// worth banning, or `None` for an ordinary address. Link-local sources are
/// neighbours on the same link (a router, the host's own peers), multicast and
/// broadcast are never sources, and unspecified means "no address": a log line
/// naming one is a misconfiguration or a forgery, and a ban on it drops the
/// host's own link-level traffic (IPv6 neighbour discovery) or nothing at all.
pub(crate) fn never_banned(addr: IpAddr) -> Option<&'static str> {
    match addr {
        IpAddr::V4(v4) if v4.is_unspecified() => Some("unspecified"),
        IpAddr::V4(v4) if v4.is_broadcast() => Some("broadcast"),
        IpAddr::V4(v4) if v4.is_multicast() => Some("multicast"),
        IpAddr::V4(v4) if v4.is_link_local() => Some("link-local"),
        IpAddr::V6(v6) if v6.is_unspecified() => Some("unspecified"),
        IpAddr::V6(v6) if v6.is_multicast() => Some("multicast"),
        IpAddr::V6(v6) if v6.is_unicast_link_local() => Some("link-local"),
        _ => None,
    }
}

fn normalise_v6(v6: Ipv6Addr) -> IpAddr {
    match v6.to_ipv4_mapped() {
        Some(v4) => IpAddr::V4(v4),
        None => IpAddr::V6(v6),
    }
}

/// Parses a ban or allow target written by a user: `ADDR` (a single host, /32 or
/// /128) or `ADDR/LEN`.
///
/// A prefix with host bits set (`203.0.113.7/24`) is refused with the network the
/// user probably meant, because silently widening or narrowing a ban is worse than
/// asking. IPv4-mapped IPv6 prefixes of /96 or longer become the IPv4 prefix.
pub fn parse_target(s: &str) -> Result<IpNet, AddrError> {
    let input = s.trim();
    if input.contains('%') {
        return Err(AddrError::ZoneId {
            input: input.to_owned(),
        });
    }
    let (addr_text, len_text) = match input.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (input, None),
    };
    let raw: IpAddr = addr_text.parse().map_err(|_| AddrError::InvalidAddress {
        input: input.to_owned(),
    })?;
    let max: u8 = if raw.is_ipv4() { 32 } else { 128 };
    let len = match len_text {
        None => max,
        Some(l) => parse_prefix_len(l, max).ok_or_else(|| AddrError::InvalidPrefix {
            input: input.to_owned(),
            max,
        })?,
    };
    let (addr, len) = match raw {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) if len >= 96 => (IpAddr::V4(v4), len - 96),
            Some(_) => {
                return Err(AddrError::MappedPrefixTooShort {
                    input: input.to_owned(),
                });
            }
            None => (raw, len),
        },
        IpAddr::V4(_) => (raw, len),
    };
    let net = match addr {
        IpAddr::V4(a) => Ipv4Net::new(a, len).map(IpNet::V4),
        IpAddr::V6(a) => Ipv6Net::new(a, len).map(IpNet::V6),
    }
    .map_err(|_| AddrError::InvalidPrefix {
        input: input.to_owned(),
        max,
    })?;
    if net.trunc() != net {
        return Err(AddrError::HostBitsSet {
            input: input.to_owned(),
            network: display_target(&net.trunc()),
        });
    }
    Ok(net)
}

/// Only plain decimal digits: `+24`, ` 24` or `024`-style surprises are refused.
fn parse_prefix_len(text: &str, max: u8) -> Option<u8> {
    if text.is_empty() || text.len() > 3 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if text.len() > 1 && text.starts_with('0') {
        return None;
    }
    let len: u8 = text.parse().ok()?;
    (len <= max).then_some(len)
}

/// Shows a target the way users write it: a bare address for a single host, the
/// CIDR form for a prefix.
pub fn display_target(net: &IpNet) -> String {
    if net.prefix_len() == net.max_prefix_len() {
        net.addr().to_string()
    } else {
        net.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    #[test]
    fn parses_plain_ipv4() {
        assert_eq!(parse_ip(b"203.0.113.4"), Some(ip("203.0.113.4")));
    }

    #[test]
    fn parses_plain_ipv6() {
        assert_eq!(parse_ip(b"2001:db8::1"), Some(ip("2001:db8::1")));
        assert_eq!(parse_ip(b"::1"), Some(ip("::1")));
    }

    #[test]
    fn normalises_mapped_ipv6_to_ipv4() {
        assert_eq!(parse_ip(b"::ffff:203.0.113.4"), Some(ip("203.0.113.4")));
        assert_eq!(parse_ip(b"::ffff:cb00:7104"), Some(ip("203.0.113.4")));
        assert_eq!(parse_ip(b"::FFFF:203.0.113.4"), Some(ip("203.0.113.4")));
    }

    #[test]
    fn keeps_compatible_but_unmapped_ipv6() {
        // ::a.b.c.d (deprecated "compatible" form) is not a mapped address.
        assert_eq!(parse_ip(b"::203.0.113.4"), Some(ip("::203.0.113.4")));
    }

    #[test]
    fn rejects_zone_ids() {
        assert_eq!(parse_ip(b"fe80::1%eth0"), None);
        assert_eq!(parse_ip(b"fe80::1%2"), None);
    }

    #[test]
    fn rejects_surrounding_text_and_junk() {
        for junk in [
            &b""[..],
            b" 203.0.113.4",
            b"203.0.113.4 ",
            b"203.0.113",
            b"203.0.113.256",
            b"203.0.113.4.5",
            b"010.0.0.1",
            b"2001:db8:::1",
            b"2001:db8::1::2",
            b"\xff\xfe",
            b"host.example",
            b"[2001:db8::1]",
        ] {
            assert_eq!(parse_ip(junk), None, "accepted {:?}", junk);
        }
    }

    #[test]
    fn rejects_overlong_input() {
        let long = b"1111:1111:1111:1111:1111:1111:255.255.255.255.1";
        assert_eq!(parse_ip(long), None);
    }

    #[test]
    fn target_bare_addresses_are_hosts() {
        assert_eq!(
            parse_target("198.51.100.7").expect("v4"),
            "198.51.100.7/32".parse::<IpNet>().expect("net")
        );
        assert_eq!(
            parse_target("2001:db8::7").expect("v6"),
            "2001:db8::7/128".parse::<IpNet>().expect("net")
        );
    }

    #[test]
    fn target_prefixes() {
        assert_eq!(
            parse_target("203.0.113.0/24").expect("v4"),
            "203.0.113.0/24".parse::<IpNet>().expect("net")
        );
        assert_eq!(
            parse_target("2001:db8:1::/48").expect("v6"),
            "2001:db8:1::/48".parse::<IpNet>().expect("net")
        );
    }

    #[test]
    fn target_host_bits_suggest_network() {
        let err = parse_target("203.0.113.7/24").expect_err("host bits");
        assert_eq!(
            err,
            AddrError::HostBitsSet {
                input: "203.0.113.7/24".into(),
                network: "203.0.113.0/24".into()
            }
        );
        assert!(err.to_string().contains("did you mean 203.0.113.0/24"));
    }

    #[test]
    fn target_bad_prefix_lengths() {
        for bad in [
            "203.0.113.0/33",
            "203.0.113.0/",
            "203.0.113.0/+8",
            "203.0.113.0/024",
            "2001:db8::/129",
            "2001:db8::/x",
        ] {
            assert!(
                matches!(parse_target(bad), Err(AddrError::InvalidPrefix { .. })),
                "accepted {bad}"
            );
        }
    }

    #[test]
    fn target_zone_and_garbage() {
        assert!(matches!(
            parse_target("fe80::1%eth0"),
            Err(AddrError::ZoneId { .. })
        ));
        assert!(matches!(
            parse_target("example.org"),
            Err(AddrError::InvalidAddress { .. })
        ));
    }

    #[test]
    fn target_mapped_prefixes_become_ipv4() {
        assert_eq!(
            parse_target("::ffff:203.0.113.0/120").expect("mapped"),
            "203.0.113.0/24".parse::<IpNet>().expect("net")
        );
        assert_eq!(
            parse_target("::ffff:203.0.113.9").expect("mapped host"),
            "203.0.113.9/32".parse::<IpNet>().expect("net")
        );
        assert!(matches!(
            parse_target("::ffff:0.0.0.0/95"),
            Err(AddrError::MappedPrefixTooShort { .. })
        ));
    }

    #[test]
    fn display_target_forms() {
        let host = parse_target("198.51.100.7").expect("host");
        assert_eq!(display_target(&host), "198.51.100.7");
        let net = parse_target("2001:db8:1::/48").expect("net");
        assert_eq!(display_target(&net), "2001:db8:1::/48");
    }

    /// What `parse_ip` must answer: the standard parser's verdict on the text,
    /// IPv4-mapped addresses as IPv4.
    fn std_verdict(bytes: &[u8]) -> Option<IpAddr> {
        let text = std::str::from_utf8(bytes).ok()?;
        text.parse::<IpAddr>().ok().map(normalise)
    }

    /// Every octet text of up to three digits (leading zeros, over 255, empty,
    /// a fourth digit) at every place of a dotted quad, bare and IPv4-mapped.
    #[test]
    fn every_octet_text_at_every_place_is_judged_like_std() {
        let mut octets: Vec<String> = vec![String::new(), "0000".into(), "2555".into()];
        for len in 1..=3u32 {
            for n in 0..10u32.pow(len) {
                octets.push(format!("{n:0width$}", width = len as usize));
            }
        }
        for place in 0..4 {
            for o in &octets {
                let mut parts = ["198", "51", "100", "7"];
                parts[place] = o;
                let quad = parts.join(".");
                for text in [quad.clone(), format!("::ffff:{quad}"), format!("::{quad}")] {
                    assert_eq!(
                        parse_ip(text.as_bytes()),
                        std_verdict(text.as_bytes()),
                        "{text}"
                    );
                }
            }
        }
    }

    #[test]
    fn hex_digits_are_to_digit() {
        for b in 0..=u8::MAX {
            assert_eq!(hex_digit(b), char::from(b).to_digit(16), "{b}");
        }
    }

    proptest! {
        #[test]
        fn every_ipv4_display_round_trips(a in any::<Ipv4Addr>()) {
            prop_assert_eq!(parse_ip(a.to_string().as_bytes()), Some(IpAddr::V4(a)));
        }

        #[test]
        fn every_ipv6_display_round_trips(a in any::<Ipv6Addr>()) {
            let expected = normalise(IpAddr::V6(a));
            prop_assert_eq!(parse_ip(a.to_string().as_bytes()), Some(expected));
        }

        #[test]
        fn full_uncompressed_ipv6_parses(a in any::<Ipv6Addr>()) {
            let s = a.segments();
            let text = format!(
                "{:x}:{:x}:{:x}:{:x}:{:x}:{:x}:{:x}:{:x}",
                s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]
            );
            prop_assert_eq!(parse_ip(text.as_bytes()), Some(normalise(IpAddr::V6(a))));
        }

        #[test]
        fn mapped_forms_normalise(a in any::<Ipv4Addr>()) {
            let dotted = format!("::ffff:{a}");
            prop_assert_eq!(parse_ip(dotted.as_bytes()), Some(IpAddr::V4(a)));
            let o = a.octets();
            let hex = format!("::ffff:{:x}:{:x}", u16::from_be_bytes([o[0], o[1]]), u16::from_be_bytes([o[2], o[3]]));
            prop_assert_eq!(parse_ip(hex.as_bytes()), Some(IpAddr::V4(a)));
            let long = format!("0:0:0:0:0:ffff:{a}");
            prop_assert_eq!(parse_ip(long.as_bytes()), Some(IpAddr::V4(a)));
        }

        #[test]
        fn zone_ids_never_parse(a in any::<Ipv6Addr>(), zone in "[a-z0-9]{1,8}") {
            let text = format!("{a}%{zone}");
            prop_assert_eq!(parse_ip(text.as_bytes()), None);
            prop_assert!(parse_target(&text).is_err());
        }

        #[test]
        fn dotted_quads_parse_like_the_standard_parser(text in "[0-9.]{0,20}") {
            let std_parsed = text.parse::<Ipv4Addr>().ok().map(IpAddr::V4);
            prop_assert_eq!(parse_ip(text.as_bytes()), std_parsed);
        }

        #[test]
        fn every_ipv4_textual_variant_is_judged_like_std(a in 0u16..300, b in 0u16..300, c in 0u16..300, d in 0u16..300, zeros in 0usize..3) {
            let pad = "0".repeat(zeros);
            let text = format!("{pad}{a}.{b}.{c}.{d}");
            let std_parsed = text.parse::<Ipv4Addr>().ok().map(IpAddr::V4);
            prop_assert_eq!(parse_ip(text.as_bytes()), std_parsed);
        }

        #[test]
        fn compressed_ipv6_forms_parse(a in any::<Ipv6Addr>(), upper in any::<bool>()) {
            // Every zero run std would not compress, written compressed and in
            // either case, still parses to the same address.
            let text = if upper { a.to_string().to_uppercase() } else { a.to_string() };
            prop_assert_eq!(parse_ip(text.as_bytes()), Some(normalise(IpAddr::V6(a))));
            let s = a.segments();
            let leading = format!(
                "{:04x}:{:04x}:{:04x}:{:04x}:{:04x}:{:04x}:{:04x}:{:04x}",
                s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]
            );
            prop_assert_eq!(parse_ip(leading.as_bytes()), Some(normalise(IpAddr::V6(a))));
        }

        #[test]
        fn ipv6_text_is_judged_like_std(text in "[0-9a-fA-F:.]{0,45}") {
            prop_assert_eq!(
                parse_v6(text.as_bytes()),
                text.parse::<Ipv6Addr>().ok(),
                "{}", text
            );
        }

        #[test]
        fn ipv6_shaped_text_is_judged_like_std(
            groups in proptest::collection::vec("[0-9a-f]{0,5}", 0..10),
            gap in proptest::option::of(0usize..10),
            quad in proptest::option::of((0u16..300, 0u16..300, 0u16..300, 0u16..300)),
        ) {
            // Near-valid forms: the cases random text rarely reaches.
            let mut parts: Vec<String> = groups;
            if let Some(g) = gap {
                parts.insert(g.min(parts.len()), String::new());
            }
            let mut text = parts.join(":");
            if let Some((a, b, c, d)) = quad {
                text.push_str(&format!(":{a}.{b}.{c}.{d}"));
            }
            prop_assert_eq!(
                parse_v6(text.as_bytes()),
                text.parse::<Ipv6Addr>().ok(),
                "{}", text
            );
        }

        #[test]
        fn ipv4_shaped_text_is_judged_like_std(
            octets in proptest::collection::vec("|0|00|0[0-9]{1,2}|[0-9]{1,4}|25[0-9]|[12][0-9]{2}", 2..6),
            prefix in "|::|::ffff:|::FFFF:|0:0:0:0:0:ffff:|2001:db8::|1:2:3:4:5:6:| |x",
            suffix in "|\\.|0|:|::1|%eth0|/24| |x|\n",
        ) {
            // Near-valid quads: every way an octet, a separator or the text
            // around them can be wrong.
            let text = format!("{prefix}{}{suffix}", octets.join("."));
            prop_assert_eq!(parse_ip(text.as_bytes()), std_verdict(text.as_bytes()), "{:?}", text);
        }

        #[test]
        fn address_text_is_judged_like_std(text in "[0-9a-fA-F:.%x ]{0,48}") {
            prop_assert_eq!(parse_ip(text.as_bytes()), std_verdict(text.as_bytes()), "{:?}", text);
        }

        #[test]
        fn address_chars_are_judged_like_parse_ip(text in "[0-9a-fA-F:.]{0,45}") {
            let bytes = text.as_bytes();
            prop_assert_eq!(parse_addr_chars(bytes, text.contains(':')), parse_ip(bytes), "{:?}", text);
        }

        #[test]
        fn address_chars_of_addresses_parse(a in any::<Ipv4Addr>(), b in any::<Ipv6Addr>()) {
            for text in [a.to_string(), b.to_string(), format!("::ffff:{a}"), format!("{b}1")] {
                let bytes = text.as_bytes();
                prop_assert_eq!(parse_addr_chars(bytes, text.contains(':')), parse_ip(bytes), "{:?}", text);
            }
        }

        #[test]
        fn any_bytes_are_judged_like_std(bytes in proptest::collection::vec(any::<u8>(), 0..48)) {
            prop_assert_eq!(parse_ip(&bytes), std_verdict(&bytes));
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = parse_ip(&bytes);
            let _ = parse_target(&String::from_utf8_lossy(&bytes));
        }

        #[test]
        fn address_like_garbage_never_panics(text in "[0-9a-fA-F:./%]{0,50}") {
            if let Some(addr) = parse_ip(text.as_bytes()) {
                // Anything accepted must be a real address that std agrees with.
                let std_parsed: IpAddr = text.parse().expect("std agrees");
                prop_assert_eq!(addr, normalise(std_parsed));
            }
            let _ = parse_target(&text);
        }

        #[test]
        fn targets_round_trip_through_display(a in any::<Ipv4Addr>(), len in 0u8..=32) {
            let net = Ipv4Net::new(a, len).expect("valid len").trunc();
            let parsed = parse_target(&display_target(&IpNet::V4(net)));
            prop_assert_eq!(parsed, Ok(IpNet::V4(net)));
        }

        #[test]
        fn v6_targets_round_trip_through_display(a in any::<Ipv6Addr>(), len in 0u8..=128) {
            let net = Ipv6Net::new(a, len).expect("valid len").trunc();
            let parsed = parse_target(&display_target(&IpNet::V6(net)));
            match net.addr().to_ipv4_mapped() {
                Some(v4) if len >= 96 => {
                    let v4net = Ipv4Net::new(v4, len - 96).expect("valid len");
                    prop_assert_eq!(parsed, Ok(IpNet::V4(v4net)));
                }
                Some(_) => {
                    let is_too_short = matches!(parsed, Err(AddrError::MappedPrefixTooShort { .. }));
                    prop_assert!(is_too_short);
                }
                None => prop_assert_eq!(parsed, Ok(IpNet::V6(net))),
            }
        }
    }
}
