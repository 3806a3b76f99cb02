//! The offence flood: a writer appending to the watched log whether the agent runs
//! or not. Each banned address gets exactly `maxretry` (2) lines, in one write, and
//! is used once in the whole run, so its ban has one deadline and a second ban means
//! lines were read twice. Noise addresses get one offence each and must never be
//! banned. The jail (and so the bantime) of each ban is drawn from the seed.
//! Documentation addresses only: flood bans in 192.0.2.0/24, 203.0.113.0/24 and
//! 2001:db8:c000::/48, noise in 2001:db8:d000::/48.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::fs::OpenOptions;
use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::Shared;
use crate::ledger::mono_ns;

/// The flood jails: name, bantime and backend. Short, so bans are applied and
/// expire during the run, some while the agent is dead.
pub const JAILS: [(&str, &str, &str); 5] = [
    ("b3", "3s", "xdp"),
    ("b6", "6s", "xdp"),
    ("b10", "10s", "xdp"),
    ("n3", "3s", "nftables"),
    ("n6", "6s", "nftables"),
];
/// Offences per ban.
pub const MAXRETRY: u32 = 2;
/// Pause between writes; each write holds one ban's lines and [`NOISE_PER_WRITE`]
/// noise lines: about 20 bans and 200 single offences per second.
const WRITE_PAUSE: Duration = Duration::from_millis(50);
const NOISE_PER_WRITE: u32 = 10;

/// What the writer did, for the checks and the report.
#[derive(Debug, Default)]
pub struct Written {
    /// Every address given `maxretry` offences, with when (monotonic ns).
    pub bans: HashMap<IpAddr, u64>,
    /// Of those, the ones whose jail bans through nftables.
    pub nft: HashSet<IpAddr>,
    pub noise_lines: u64,
    pub lines: u64,
}

/// The line the filter of jail `jail` counts as an offence by `addr`.
pub fn line(jail: &str, addr: IpAddr, seq: u64) -> String {
    format!("crash offence jail={jail} from {addr} seq {seq}")
}

/// The `n`-th banned address: the two IPv4 documentation /24s first (alternating
/// with IPv6), then IPv6 only.
pub fn ban_address(n: u32) -> IpAddr {
    let v4_slots = 2 * 254;
    if n.is_multiple_of(2) && n / 2 < v4_slots {
        let i = n / 2;
        let (net, host) = if i < 254 {
            ([192, 0, 2], i + 1)
        } else {
            ([203, 0, 113], i - 254 + 1)
        };
        return IpAddr::V4(Ipv4Addr::new(net[0], net[1], net[2], host as u8));
    }
    IpAddr::V6(Ipv6Addr::new(
        0x2001,
        0xdb8,
        0xc000,
        0,
        0,
        0,
        (n >> 16) as u16,
        n as u16,
    ))
}

/// The `n`-th noise address.
pub fn noise_address(n: u32) -> IpAddr {
    IpAddr::V6(Ipv6Addr::new(
        0x2001,
        0xdb8,
        0xd000,
        0,
        0,
        0,
        (n >> 16) as u16,
        n as u16,
    ))
}

/// Whether `addr` is a noise address (never to be banned).
pub fn is_noise(addr: IpAddr) -> bool {
    matches!(addr, IpAddr::V6(a) if a.segments()[..3] == [0x2001, 0xdb8, 0xd000])
}

/// Appends until `shared.stop` or `shared.stop_writing`. `rng` is the seeded
/// generator's state.
pub fn write_loop(shared: &Shared, log: &Path, mut rng: u64) {
    let mut n_ban = 0u32;
    let mut n_noise = 0u32;
    let mut seq = 0u64;
    let mut buf = String::new();
    while !shared.stop.load(Ordering::SeqCst) && !shared.stop_writing.load(Ordering::SeqCst) {
        buf.clear();
        let addr = ban_address(n_ban);
        n_ban += 1;
        let (jail, _, backend) = JAILS[(crate::next(&mut rng) % JAILS.len() as u64) as usize];
        for _ in 0..MAXRETRY {
            let _ = writeln!(buf, "{}", line(jail, addr, seq));
            seq += 1;
        }
        for _ in 0..NOISE_PER_WRITE {
            let (jail, _, _) = JAILS[(n_noise as usize) % JAILS.len()];
            let _ = writeln!(buf, "{}", line(jail, noise_address(n_noise), seq));
            n_noise += 1;
            seq += 1;
        }
        let written = OpenOptions::new()
            .append(true)
            .open(log)
            .and_then(|mut f| f.write_all(buf.as_bytes()));
        if let Err(e) = written {
            panic!("cannot append to {}: {e}", log.display());
        }
        {
            let mut w = shared.written.lock().expect("written lock");
            w.bans.insert(addr, mono_ns());
            if backend == "nftables" {
                w.nft.insert(addr);
            }
            w.noise_lines += u64::from(NOISE_PER_WRITE);
            w.lines += u64::from(MAXRETRY + NOISE_PER_WRITE);
        }
        std::thread::sleep(WRITE_PAUSE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_documentation_ones_and_distinct() {
        let mut all = std::collections::HashSet::new();
        for n in 0..5000 {
            let a = ban_address(n);
            assert!(!is_noise(a));
            match a {
                IpAddr::V4(v4) => {
                    let o = v4.octets();
                    assert!(matches!(o[..3], [192, 0, 2] | [203, 0, 113]), "{a}");
                    assert!(o[3] != 0 && o[3] != 255, "{a}");
                }
                IpAddr::V6(v6) => assert_eq!(v6.segments()[..3], [0x2001, 0xdb8, 0xc000]),
            }
            assert!(all.insert(a), "{a} twice");
            let z = noise_address(n);
            assert!(is_noise(z));
            assert!(all.insert(z), "{z} twice");
        }
    }

    #[test]
    fn a_line_names_its_jail_and_address() {
        let l = line("b3", "192.0.2.1".parse().expect("addr"), 7);
        assert_eq!(l, "crash offence jail=b3 from 192.0.2.1 seq 7");
    }
}
