//! The nftables backend's kernel state read from outside: the single-address sets
//! (`ban4_all`, `ban6_all`) of the agent's table, through `nft list set` in the
//! server namespace. The text form gives each element's time left to the
//! millisecond (the JSON form only to the second). A listing that took long (a
//! loaded machine) is discarded: its deadlines would be off by its own duration.

use std::net::IpAddr;

use log2drop_tests::NetNs;

use crate::ledger::mono_ns;

/// The table the soak's agent owns (`table inet NAME`).
pub const TABLE: &str = "l2dcrash";
/// Sets of single addresses (fewer than 16,384 per family: not sharded).
const SETS: [&str; 2] = ["ban4_all", "ban6_all"];
/// A listing slower than this is not used.
const SLOW_NS: u64 = 250_000_000;

/// Every element of the address sets with its deadline (`CLOCK_MONOTONIC` ns,
/// 0 = no timeout); `None` while the table does not exist (first start) or when the
/// listing was too slow to date the deadlines.
pub fn set_entries(server: &NetNs) -> Option<Vec<(IpAddr, u64)>> {
    let before = mono_ns();
    let mut texts = Vec::with_capacity(SETS.len());
    for set in SETS {
        let out = server.exec(&["nft", "list", "set", "inet", TABLE, set]);
        if !out.status.success() {
            return None;
        }
        texts.push(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let after = mono_ns();
    if after - before > SLOW_NS {
        return None;
    }
    let at = before + (after - before) / 2;
    let mut out = Vec::new();
    for text in &texts {
        for (addr, left_ns) in parse_elements(text) {
            out.push((addr, left_ns.map_or(0, |l| at + l)));
        }
    }
    Some(out)
}

/// The elements of one `nft list set` text: address and time left in ns (`None`
/// without a timeout).
pub fn parse_elements(text: &str) -> Vec<(IpAddr, Option<u64>)> {
    let Some(start) = text.find("elements = {") else {
        return Vec::new();
    };
    let body = &text[start + "elements = {".len()..];
    let body = &body[..body.find('}').unwrap_or(body.len())];
    let mut out = Vec::new();
    for item in body.split(',') {
        let mut words = item.split_whitespace();
        let Some(addr) = words.next().and_then(|w| w.parse::<IpAddr>().ok()) else {
            continue;
        };
        let mut left = None;
        while let Some(w) = words.next() {
            if w == "expires" {
                left = words.next().and_then(duration_ns);
            }
        }
        out.push((addr, left));
    }
    out
}

/// nft's `1d2h3m4s567ms` form, in ns.
fn duration_ns(s: &str) -> Option<u64> {
    let mut total = 0u64;
    let mut num = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let n: u64 = num.parse().ok()?;
        num.clear();
        let unit = match c {
            'd' => 86_400_000_000_000,
            'h' => 3_600_000_000_000,
            'm' if chars.peek() == Some(&'s') => {
                chars.next();
                1_000_000
            }
            'm' => 60_000_000_000,
            's' => 1_000_000_000,
            _ => return None,
        };
        total += n * unit;
    }
    num.is_empty().then_some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_nft_form() {
        assert_eq!(duration_ns("9s990ms"), Some(9_990_000_000));
        assert_eq!(duration_ns("1m2s"), Some(62_000_000_000));
        assert_eq!(duration_ns("1d2h"), Some(93_600_000_000_000));
        assert_eq!(duration_ns("450ms"), Some(450_000_000));
        assert_eq!(duration_ns("12"), None);
        assert_eq!(duration_ns("3x"), None);
    }

    #[test]
    fn elements_with_and_without_timeouts() {
        let text = "table inet l2dcrash {\n\tset ban4_all {\n\t\ttype ipv4_addr\n\t\tflags timeout\n\t\telements = { 192.0.2.1 timeout 6s expires 5s120ms, 192.0.2.2 timeout 3s expires 450ms,\n\t\t\t     203.0.113.9 }\n\t}\n}\n";
        let got = parse_elements(text);
        assert_eq!(
            got,
            [
                ("192.0.2.1".parse().expect("addr"), Some(5_120_000_000)),
                ("192.0.2.2".parse().expect("addr"), Some(450_000_000)),
                ("203.0.113.9".parse().expect("addr"), None),
            ]
        );
        assert!(
            parse_elements("table inet t {\n\tset s {\n\t\ttype ipv4_addr\n\t}\n}\n").is_empty()
        );
    }
}
