//! The standard backend test bench: a server namespace and an attacker namespace
//! joined by [`VethPair::server_attacker`], ready when every attacker address gets
//! replies, and the probes a backend test asks of it ("does this address still get
//! through?"). Backend tests wrap it with their own backend's open/apply helpers;
//! agent tests use [`AgentLab`], the same bench with the agent on the server side.

use std::time::Duration;

use crate::agent::{Agent, AgentDir, JailSpec};
use crate::bpffs::PinDir;
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

/// A [`WireLab`] with the agent on the server side: a pin directory, an
/// [`AgentDir`] whose config puts XDP on the server's end of the wire, and, once
/// [`AgentLab::spawn_agent`] ran, the agent. Fields drop in order: the agent is
/// killed first, then the wire and the namespaces, the pins and the files go.
#[derive(Debug)]
pub struct AgentLab {
    /// The running agent, if any; a test may take it to stop or replace it.
    pub agent: Option<Agent>,
    /// The namespaces and the wire between them.
    pub wire: WireLab,
    /// Where the agent pins its XDP objects.
    pub pins: PinDir,
    /// The agent's config, watched log, state and socket.
    pub dir: AgentDir,
}

impl AgentLab {
    /// Builds the wire (see [`WireLab::new`]), the pin directory and the config
    /// (the `ssh-fail` filter, `jails`, XDP on the server's end). The agent is
    /// not started. Call it after [`crate::require_root`].
    pub fn new(jails: &[JailSpec]) -> AgentLab {
        let wire = WireLab::new();
        let pins = PinDir::new();
        let dir = AgentDir::new();
        dir.write_config(&[wire.veth.a().ifname.as_str()], pins.path(), jails);
        AgentLab {
            agent: None,
            wire,
            pins,
            dir,
        }
    }

    /// Rewrites the config file through `edit`.
    pub fn edit_config(&self, edit: impl FnOnce(String) -> String) {
        let path = self.dir.config_path();
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        std::fs::write(&path, edit(text))
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    }

    /// Starts (or restarts) the agent in the server namespace on the same config,
    /// state and pins, and waits until its socket answers; returns how long that took.
    pub fn spawn_agent(&mut self) -> Duration {
        let mut agent = Agent::spawn(&self.wire.server, &self.dir);
        let took = agent.wait_ready();
        self.agent = Some(agent);
        took
    }

    /// The running agent; panics if there is none.
    pub fn agent(&self) -> &Agent {
        self.agent.as_ref().expect("the agent is running")
    }

    /// The running agent, mutable; panics if there is none.
    pub fn agent_mut(&mut self) -> &mut Agent {
        self.agent.as_mut().expect("the agent is running")
    }
}

/// Declares `struct $name(AgentLab)` that derefs to the [`AgentLab`], so a test
/// file can add its own probes as methods and still use the lab's fields and
/// methods directly: `log2drop_tests::agent_lab!(Lab);`.
#[macro_export]
macro_rules! agent_lab {
    ($(#[$attr:meta])* $name:ident) => {
        $(#[$attr])*
        struct $name($crate::AgentLab);

        impl ::std::ops::Deref for $name {
            type Target = $crate::AgentLab;
            fn deref(&self) -> &$crate::AgentLab {
                &self.0
            }
        }

        impl ::std::ops::DerefMut for $name {
            fn deref_mut(&mut self) -> &mut $crate::AgentLab {
                &mut self.0
            }
        }
    };
}
