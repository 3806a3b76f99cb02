//! The standard backend test bench: a server namespace and an attacker namespace
//! joined by [`VethPair::server_attacker`], ready when every attacker address gets
//! replies, and the probes a backend test asks of it ("does this address still get
//! through?"). Backend tests wrap it with their own backend's open/apply helpers.

use std::time::Duration;

use crate::netns::NetNs;
use crate::probe::{ping_with_timeout, wait_until};
use crate::veth::{
    BYSTANDER_V4, BYSTANDER_V6, OFFENDER_V4, OFFENDER_V6, SERVER_V4, SERVER_V6, VethPair,
};

/// No reply within this long over a veth means the packet was dropped.
pub const DROP_PROBE: Duration = Duration::from_millis(300);
/// A reply that should come gets this long per probe.
pub const REPLY_PROBE: Duration = Duration::from_secs(1);
/// How long a reply that should come may keep failing on a loaded machine.
const REPLY_PATIENCE: Duration = Duration::from_secs(5);

/// A server and an attacker namespace on one veth. Fields drop in order: the veth
/// first, then the namespaces (and everything inside them, nftables tables
/// included).
#[derive(Debug)]
pub struct WireLab {
    /// The wire; `a()` is the server's end, `b()` the attacker's.
    pub veth: VethPair,
    /// Where the test's traffic comes from.
    pub attacker: NetNs,
    /// Where the backend runs.
    pub server: NetNs,
}

impl WireLab {
    /// Builds the namespaces and the wire and waits until every attacker address
    /// gets replies (a fresh veth can take a moment under load). Call it after
    /// [`crate::require_root`].
    pub fn new() -> WireLab {
        let server = NetNs::new();
        let attacker = NetNs::new();
        let veth = VethPair::server_attacker(&server, &attacker);
        let lab = WireLab {
            veth,
            attacker,
            server,
        };
        for from in [OFFENDER_V4, BYSTANDER_V4, OFFENDER_V6, BYSTANDER_V6] {
            let up = wait_until(Duration::from_secs(10), Duration::from_millis(100), || {
                lab.replies(from, REPLY_PROBE)
            });
            assert!(up.is_some(), "{from} gets no reply before any ban");
        }
        lab
    }

    /// Whether one ping from attacker address `from` to the server's address of
    /// the same family gets a reply within `timeout`.
    pub fn replies(&self, from: &str, timeout: Duration) -> bool {
        let to = if from.contains(':') {
            SERVER_V6
        } else {
            SERVER_V4
        };
        ping_with_timeout(&self.attacker, from, to, timeout)
    }

    /// `from` gets replies; retried for a few seconds, since a loaded machine can
    /// miss one probe's deadline.
    #[track_caller]
    pub fn assert_replies(&self, from: &str) {
        let replied = wait_until(REPLY_PATIENCE, Duration::from_millis(100), || {
            self.replies(from, REPLY_PROBE)
        });
        assert!(replied.is_some(), "{from} should get replies but does not");
    }

    /// `from`'s ping goes unanswered.
    #[track_caller]
    pub fn assert_dropped(&self, from: &str) {
        assert!(
            !self.replies(from, DROP_PROBE),
            "{from} should be dropped but gets replies"
        );
    }
}

impl Default for WireLab {
    fn default() -> Self {
        WireLab::new()
    }
}
