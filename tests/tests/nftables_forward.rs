//! The nftables backend's hooks on a host that routes, as Docker hosts do for
//! their containers' published ports: a client namespace reaches a server
//! namespace through a router namespace (IP forwarding on), and the backend runs
//! in the router. A ban at the input hook stops the client reaching the router
//! itself but not the server behind it; at the forward hook it stops the routed
//! traffic (and not the router's own); at prerouting, both. The other client
//! address keeps working throughout. Real kernel, throwaway namespaces and veth
//! pairs removed on drop, documentation addresses only.
//! Run with `--test-threads=1` (namespaces are per thread).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use log2drop::backend::Backend;
use log2drop::backend::nftables::NftablesBackend;
use log2drop::backend::nftables::config::{NftAction, NftHook, NftablesConfig};
use log2drop::engine::{Ban, Origin};
use log2drop_tests::probe::ping_with_timeout;
use log2drop_tests::veth::{BYSTANDER_V4, OFFENDER_V4, SERVER_V4, VethPair};
use log2drop_tests::{NetNs, require_root, wait_until};

/// The server behind the router (a container, on a Docker host).
const BEHIND_V4: &str = "203.0.113.2";
/// The router's address on the server's side.
const ROUTER_INNER_V4: &str = "203.0.113.1";

/// Client, router and server namespaces and the two wires. Fields drop in order:
/// the wires, then the namespaces (with the nftables table inside the router).
struct Routed {
    _outer: VethPair,
    _inner: VethPair,
    client: NetNs,
    router: NetNs,
    _server: NetNs,
}

fn ip(s: &str, len: u8) -> (IpAddr, u8) {
    (s.parse().expect("address"), len)
}

impl Routed {
    fn new() -> Routed {
        let client = NetNs::new();
        let router = NetNs::new();
        let server = NetNs::new();
        let outer = VethPair::new(
            &router,
            &[ip(SERVER_V4, 24)],
            &client,
            &[ip(OFFENDER_V4, 24), ip(BYSTANDER_V4, 24)],
        );
        let inner = VethPair::new(
            &router,
            &[ip(ROUTER_INNER_V4, 24)],
            &server,
            &[ip(BEHIND_V4, 24)],
        );
        router.exec_checked(&["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"]);
        client.exec_checked(&["ip", "route", "add", "203.0.113.0/24", "via", SERVER_V4]);
        server.exec_checked(&[
            "ip",
            "route",
            "add",
            "198.51.100.0/24",
            "via",
            ROUTER_INNER_V4,
        ]);
        let lab = Routed {
            _outer: outer,
            _inner: inner,
            client,
            router,
            _server: server,
        };
        for from in [OFFENDER_V4, BYSTANDER_V4] {
            for to in [SERVER_V4, BEHIND_V4] {
                assert!(
                    lab.reaches(from, to),
                    "{from} cannot reach {to} before any ban"
                );
            }
        }
        lab
    }

    /// Whether a ping from client address `from` to `to` is answered (retried for a
    /// few seconds: a loaded machine can miss one probe).
    fn reaches(&self, from: &str, to: &str) -> bool {
        wait_until(Duration::from_secs(5), Duration::from_millis(100), || {
            ping_with_timeout(&self.client, from, to, Duration::from_secs(1))
        })
        .is_some()
    }

    /// Whether a ping goes unanswered (a short deadline: a veth round trip takes
    /// well under a millisecond; tried twice so one slow reply cannot pass).
    fn blocked(&self, from: &str, to: &str) -> bool {
        (0..2).all(|_| !ping_with_timeout(&self.client, from, to, Duration::from_millis(400)))
    }

    /// Opens the backend with `hook` in the router and bans the offender.
    fn ban_with(&self, hook: NftHook) -> NftablesBackend {
        let cfg = NftablesConfig {
            table: "log2drop".into(),
            hook,
            priority: -10,
            interfaces: Vec::new(),
            action: NftAction::Drop,
            counter: false,
        };
        let _in = self.router.enter();
        let mut backend = NftablesBackend::open(&cfg)
            .unwrap_or_else(|e| panic!("open with hook {}: {e}", hook.name()));
        let ban = Ban {
            target: format!("{OFFENDER_V4}/32").parse().expect("net"),
            jail: Arc::from("test"),
            since: SystemTime::now(),
            until: None,
            origin: Origin::Manual,
            reason: None,
            forced: false,
            node: None,
        };
        backend
            .reconcile(&[ban], SystemTime::now())
            .unwrap_or_else(|e| panic!("reconcile: {e}"));
        backend
    }
}

#[test]
fn forward_hook_bans_routed_traffic_that_the_input_hook_lets_through() {
    if !require_root("forward_hook_bans_routed_traffic_that_the_input_hook_lets_through") {
        return;
    }
    let lab = Routed::new();

    // input: the router itself is protected, what it forwards is not.
    let backend = lab.ban_with(NftHook::Input);
    assert!(
        lab.blocked(OFFENDER_V4, SERVER_V4),
        "input: the router answers the banned address"
    );
    assert!(
        lab.reaches(OFFENDER_V4, BEHIND_V4),
        "input: a ban at the input hook should not see forwarded traffic"
    );
    drop(backend);

    // forward: the routed traffic is dropped; the router's own is not.
    let backend = lab.ban_with(NftHook::Forward);
    assert!(
        lab.blocked(OFFENDER_V4, BEHIND_V4),
        "forward: the banned address still reaches the server behind the router"
    );
    assert!(
        lab.reaches(BYSTANDER_V4, BEHIND_V4),
        "forward: the bystander is cut off"
    );
    assert!(
        lab.reaches(OFFENDER_V4, SERVER_V4),
        "forward: a forward-hook ban should not see traffic to the router itself"
    );
    let chains = lab
        .router
        .exec_checked(&["nft", "list", "chain", "inet", "log2drop", "forward"]);
    let text = String::from_utf8_lossy(&chains.stdout);
    assert!(text.contains("hook forward priority"), "{text}");
    let input = lab
        .router
        .exec(&["nft", "list", "chain", "inet", "log2drop", "input"]);
    assert!(
        !input.status.success(),
        "the input chain of the earlier hook is gone"
    );
    drop(backend);

    // prerouting: both.
    let _backend = lab.ban_with(NftHook::Prerouting);
    assert!(
        lab.blocked(OFFENDER_V4, BEHIND_V4),
        "prerouting: forwarded traffic passes"
    );
    assert!(
        lab.blocked(OFFENDER_V4, SERVER_V4),
        "prerouting: the router answers"
    );
    assert!(
        lab.reaches(BYSTANDER_V4, BEHIND_V4),
        "prerouting: the bystander is cut off"
    );
    assert!(
        lab.reaches(BYSTANDER_V4, SERVER_V4),
        "prerouting: the bystander is cut off"
    );
}
