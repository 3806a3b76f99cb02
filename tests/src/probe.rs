//! Observing the network from a test: one ping at a time, and polling until a
//! condition holds. Tests poll instead of sleeping so they are as fast as the agent
//! and still tolerate a slow machine up to an explicit deadline.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::netns::NetNs;

/// Sends one echo request from `from` to `to` inside `ns` and waits up to 1 s for the
/// reply. True when a reply came.
pub fn ping(ns: &NetNs, from: &str, to: &str) -> bool {
    ping_with_timeout(ns, from, to, Duration::from_secs(1))
}

/// [`ping`] with a chosen reply timeout. A veth round trip takes well under a
/// millisecond, so a short timeout polls faster without false negatives.
pub fn ping_with_timeout(ns: &NetNs, from: &str, to: &str, timeout: Duration) -> bool {
    let family = match to.parse::<IpAddr>() {
        Ok(IpAddr::V6(_)) => "-6",
        Ok(IpAddr::V4(_)) => "-4",
        Err(e) => panic!("ping target {to} is not an address: {e}"),
    };
    let wait = format!("{:.3}", timeout.as_secs_f64());
    ns.exec(&[
        "ping", family, "-n", "-q", "-c", "1", "-W", &wait, "-I", from, to,
    ])
    .status
    .success()
}

/// Calls `f` every `poll` until it returns true or `timeout` has passed. Returns how
/// long it took, or `None` on timeout. `f` is always called at least once, and once
/// more at the deadline, so a slow `f` cannot make it give up early.
pub fn wait_until(
    timeout: Duration,
    poll: Duration,
    mut f: impl FnMut() -> bool,
) -> Option<Duration> {
    let start = Instant::now();
    loop {
        if f() {
            return Some(start.elapsed());
        }
        if start.elapsed() >= timeout {
            return None;
        }
        std::thread::sleep(poll);
    }
}

#[cfg(test)]
mod tests {
    use super::wait_until;
    use std::time::Duration;

    #[test]
    fn wait_until_returns_when_true() {
        let mut calls = 0;
        let took = wait_until(Duration::from_secs(5), Duration::from_millis(1), || {
            calls += 1;
            calls == 3
        });
        assert!(took.is_some());
        assert_eq!(calls, 3);
    }

    #[test]
    fn wait_until_times_out() {
        let mut calls = 0;
        let took = wait_until(Duration::from_millis(30), Duration::from_millis(5), || {
            calls += 1;
            false
        });
        assert!(took.is_none());
        assert!(calls >= 2, "polled {calls} times");
    }
}
