//! `--resolve`: reverse DNS names for the addresses a report shows. Lookups run
//! on a few threads at once, each address once (the cache), and the report
//! waits for them at most a fixed time overall: a lookup still pending then is
//! left behind (its thread ends on its own) and the address is shown without a
//! name. The resolver is injected, so tests need no DNS.
//!
//! PTR records are written by whoever owns the address, that is by the
//! attacker: a name is kept only if it is a plausible host name (letters,
//! digits, `-`, `_`, `.`, at most 253 bytes), so no control character or
//! markup reaches an output.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

/// Turns an address into its name.
pub trait Resolver: Send + Sync {
    /// The address's PTR name, or `None`. May block.
    fn reverse(&self, addr: IpAddr) -> Option<String>;
}

/// Lookups run at once.
pub const WORKERS: usize = 16;

/// Names of `addrs`, looked up through `resolver` on up to `workers` threads,
/// waiting no longer than `budget` in total. Addresses without a (valid) name,
/// or whose lookup had not finished, are absent.
pub fn resolve_all(
    addrs: &[IpAddr],
    resolver: Arc<dyn Resolver>,
    workers: usize,
    budget: Duration,
) -> HashMap<IpAddr, String> {
    let deadline = Instant::now() + budget;
    let mut unique = addrs.to_vec();
    unique.sort_unstable();
    unique.dedup();
    let total = unique.len();
    let queue = Arc::new(Mutex::new(unique));
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel::<(IpAddr, Option<String>)>();
    for _ in 0..workers.clamp(1, total.max(1)) {
        let (queue, stop, tx, resolver) =
            (queue.clone(), stop.clone(), tx.clone(), resolver.clone());
        // Detached on purpose: a lookup stuck past the deadline must not hold
        // the report; the thread ends when its lookup does.
        let spawned = std::thread::Builder::new()
            .name("report-resolve".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let next = queue.lock().ok().and_then(|mut q| q.pop());
                    let Some(addr) = next else { break };
                    let name = resolver.reverse(addr).filter(|n| plausible(n));
                    if tx.send((addr, name)).is_err() {
                        break;
                    }
                }
            });
        if spawned.is_err() {
            break;
        }
    }
    drop(tx);
    let mut names = HashMap::new();
    let mut done = 0;
    while done < total {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((addr, name)) => {
                done += 1;
                if let Some(n) = name {
                    names.insert(addr, n);
                }
            }
            Err(_) => break,
        }
    }
    stop.store(true, Ordering::Relaxed);
    names
}

/// Whether `name` may be shown: a host name's characters and length only.
pub(crate) fn plausible(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// The system's resolver (`getnameinfo` with `NI_NAMEREQD`: a name or nothing,
/// never the address echoed back).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemResolver;

impl Resolver for SystemResolver {
    fn reverse(&self, addr: IpAddr) -> Option<String> {
        let mut host = [0 as libc::c_char; 1025];
        // SAFETY: the sockaddr is fully initialised (zeroed, then its family,
        // port and address set) and outlives the call; `host` is a writable
        // buffer whose length is passed; no service buffer is asked for.
        let rc = unsafe {
            match addr {
                IpAddr::V4(a) => {
                    let mut sa: libc::sockaddr_in = std::mem::zeroed();
                    sa.sin_family = libc::AF_INET as libc::sa_family_t;
                    sa.sin_addr.s_addr = u32::from_ne_bytes(a.octets());
                    libc::getnameinfo(
                        (&raw const sa).cast(),
                        std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
                        host.as_mut_ptr(),
                        host.len() as _, // socklen_t on Linux, size_t on OpenBSD
                        std::ptr::null_mut(),
                        0,
                        libc::NI_NAMEREQD,
                    )
                }
                IpAddr::V6(a) => {
                    let mut sa: libc::sockaddr_in6 = std::mem::zeroed();
                    sa.sin6_family = libc::AF_INET6 as libc::sa_family_t;
                    sa.sin6_addr.s6_addr = a.octets();
                    libc::getnameinfo(
                        (&raw const sa).cast(),
                        std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
                        host.as_mut_ptr(),
                        host.len() as _, // socklen_t on Linux, size_t on OpenBSD
                        std::ptr::null_mut(),
                        0,
                        libc::NI_NAMEREQD,
                    )
                }
            }
        };
        if rc != 0 {
            return None;
        }
        // SAFETY: getnameinfo succeeded, so `host` holds a NUL-terminated string.
        let name = unsafe { std::ffi::CStr::from_ptr(host.as_ptr()) };
        name.to_str().ok().map(str::to_owned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    struct Fake {
        calls: AtomicUsize,
        slow: IpAddr,
    }

    impl Resolver for Fake {
        fn reverse(&self, addr: IpAddr) -> Option<String> {
            self.calls.fetch_add(1, Ordering::Relaxed);
            if addr == self.slow {
                std::thread::sleep(Duration::from_secs(30));
            }
            match addr {
                IpAddr::V4(a) if a.octets()[3] == 66 => Some("evil\x1b[31m.example.com".into()),
                IpAddr::V4(a) => Some(format!("host-{}.example.org", a.octets()[3])),
                IpAddr::V6(_) => None,
            }
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn names_each_address_once_and_drops_implausible_names() {
        let fake = Arc::new(Fake {
            calls: AtomicUsize::new(0),
            slow: ip("192.0.2.255"),
        });
        let addrs = [
            ip("192.0.2.1"),
            ip("192.0.2.1"),
            ip("192.0.2.66"),
            ip("2001:db8::1"),
        ];
        let names = resolve_all(&addrs, fake.clone(), 4, Duration::from_secs(5));
        assert_eq!(
            fake.calls.load(Ordering::Relaxed),
            3,
            "one lookup per address"
        );
        assert_eq!(names.len(), 1, "{names:?}");
        assert_eq!(names[&ip("192.0.2.1")], "host-1.example.org");
    }

    #[test]
    fn a_stuck_lookup_does_not_hold_the_report() {
        let fake = Arc::new(Fake {
            calls: AtomicUsize::new(0),
            slow: ip("192.0.2.9"),
        });
        let addrs: Vec<IpAddr> = (1..=20).map(|i| ip(&format!("192.0.2.{i}"))).collect();
        let t0 = Instant::now();
        let names = resolve_all(&addrs, fake, 4, Duration::from_millis(500));
        assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
        assert_eq!(names.len(), 19, "every other address named");
        assert!(!names.contains_key(&ip("192.0.2.9")));
    }

    #[test]
    fn plausible_names() {
        assert!(plausible("mail-7.example.org"));
        assert!(!plausible("a b"));
        assert!(!plausible("<b>.example.org"));
        assert!(!plausible(""));
        assert!(!plausible(&"a".repeat(254)));
    }
}
