//! The XDP backend against the real kernel, as root, without the rest of the agent:
//! `XdpBackend` is opened on the server end of a veth pair in a throwaway namespace,
//! bans are written through the `Backend` trait, and pings from the attacker
//! namespace show what the XDP program does with them. Covered: exact and prefix
//! bans (IPv4 and IPv6), drop counters, kernel-side expiry, unban, 802.1Q and
//! 802.1ad + 802.1Q tagged traffic, the pinned link and maps outliving the backend
//! (restart with reconcile, then detach and unpin), deadlines in `CLOCK_MONOTONIC`,
//! and the upgrade from pin layout 2 (bans and counters carried over before the
//! first packet meets the new program, old pins removed).
//!
//! Every test has its own namespaces and pin directory, removed even when it fails.
//! Run with `--test-threads=1` (namespaces are per thread).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use aya::maps::lpm_trie::{Key, LpmTrie};
use aya::maps::{HashMap, Map, MapData, PerCpuHashMap, PerCpuValues};
use ipnet::IpNet;
use log2drop::backend::Backend;
use log2drop::backend::xdp::config::{XdpConfig, XdpMode};
use log2drop::backend::xdp::{Attachment, Verdict, XdpBackend};
use log2drop::engine::{Ban, Decision, Origin};
use log2drop_common::{CidrBanValue, CounterKey, DropCounter};
use log2drop_tests::veth::{
    BYSTANDER_V4, BYSTANDER_V6, OFFENDER_V4, OFFENDER_V6, SERVER_V4, SERVER_V6, VethEnd,
};
use log2drop_tests::{NetNs, PinDir, VethPair, ping_with_timeout, require_root, wait_until};
use nix::time::{ClockId, clock_gettime};

/// No reply within this long over a veth means the packet was dropped.
const DROP_PROBE: Duration = Duration::from_millis(200);
/// A reply that should come gets this long.
const REPLY_PROBE: Duration = Duration::from_secs(1);

/// One test's world. Fields drop in declaration order: the wire first, then the pins
/// (unpinning detaches the program), then the namespaces.
struct Lab {
    veth: VethPair,
    pins: PinDir,
    attacker: NetNs,
    server: NetNs,
}

impl Lab {
    fn new(test: &str) -> Option<Lab> {
        if !require_root(test) {
            return None;
        }
        let server = NetNs::new();
        let attacker = NetNs::new();
        let veth = VethPair::server_attacker(&server, &attacker);
        let pins = PinDir::new();
        let lab = Lab {
            veth,
            pins,
            attacker,
            server,
        };
        for from in [OFFENDER_V4, BYSTANDER_V4, OFFENDER_V6, BYSTANDER_V6] {
            lab.await_replies(from);
        }
        Some(lab)
    }

    fn config(&self) -> XdpConfig {
        XdpConfig {
            interfaces: vec![self.veth.a().ifname.clone()],
            pin_dir: self.pins.path().to_owned(),
            mode: XdpMode::Auto,
            max_bans: 1024,
            max_cidr_bans: 64,
            counters: true,
        }
    }

    /// Opens the backend inside the server namespace (interfaces are per namespace).
    fn open(&self) -> XdpBackend {
        let _in = self.server.enter();
        let backend = XdpBackend::open(&self.config())
            .unwrap_or_else(|e| panic!("XdpBackend::open: {}", chain(&e)));
        eprintln!(
            "XDP program loaded in {:?}; attachments {:?}",
            backend.load_time(),
            backend.attachments()
        );
        backend
    }

    /// Whether a ping from `from` to the server address of its subnet gets a reply.
    fn replies(&self, from: &str, timeout: Duration) -> bool {
        ping_with_timeout(&self.attacker, from, server_for(from), timeout)
    }

    #[track_caller]
    fn assert_replies(&self, from: &str) {
        assert!(
            self.replies(from, REPLY_PROBE),
            "{from} should get replies but does not"
        );
    }

    /// For preconditions on a fresh wire or address: polls, because on a loaded
    /// machine the first ping over new plumbing can time out with nothing wrong.
    #[track_caller]
    fn await_replies(&self, from: &str) {
        let ok = wait_until(Duration::from_secs(10), Duration::ZERO, || {
            self.replies(from, REPLY_PROBE)
        });
        assert!(
            ok.is_some(),
            "{from} gets no reply before anything is banned"
        );
    }

    #[track_caller]
    fn assert_dropped(&self, from: &str) {
        assert!(
            !self.replies(from, DROP_PROBE),
            "{from} should be dropped but gets replies"
        );
    }

    /// Adds `server`/`len` to the server end and `attacker`/`len` to the attacker end,
    /// with static neighbours both ways (a banned address could not answer ND).
    fn add_subnet(&self, server: &str, attacker: &str, len: u8) {
        add_addr(&self.server, self.veth.a(), server, len);
        add_addr(&self.attacker, self.veth.b(), attacker, len);
        neigh(&self.server, self.veth.a(), attacker, &self.veth.b().mac);
        neigh(&self.attacker, self.veth.b(), server, &self.veth.a().mac);
    }
}

/// The server's address on the subnet of attacker address `from`.
fn server_for(from: &str) -> &'static str {
    if from.starts_with("192.0.2.") {
        "192.0.2.1"
    } else if from.starts_with("203.0.113.") {
        "203.0.113.1"
    } else if from.starts_with("2001:db8:200::") {
        "2001:db8:200::1"
    } else if from.contains(':') {
        SERVER_V6
    } else {
        SERVER_V4
    }
}

fn add_addr(ns: &NetNs, end: &VethEnd, addr: &str, len: u8) {
    let cidr = format!("{addr}/{len}");
    let mut argv = vec!["ip", "addr", "add", &cidr, "dev", &end.ifname];
    if addr.contains(':') {
        argv.push("nodad");
    }
    ns.exec_checked(&argv);
}

fn neigh(ns: &NetNs, dev: &VethEnd, addr: &str, mac: &str) {
    neigh_on(ns, &dev.ifname, addr, mac);
}

fn neigh_on(ns: &NetNs, dev: &str, addr: &str, mac: &str) {
    ns.exec_checked(&[
        "ip",
        "neigh",
        "replace",
        addr,
        "lladdr",
        mac,
        "dev",
        dev,
        "nud",
        "permanent",
    ]);
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

fn net(s: &str) -> IpNet {
    match s.parse::<IpNet>() {
        Ok(n) => n,
        Err(_) => IpNet::from(
            s.parse::<IpAddr>()
                .unwrap_or_else(|e| panic!("bad test address {s}: {e}")),
        ),
    }
}

fn ban(target: &str, until: Option<SystemTime>) -> Ban {
    Ban {
        target: net(target),
        jail: Arc::from("test"),
        since: SystemTime::now(),
        until,
        origin: Origin::Manual,
        reason: None,
        forced: false,
        node: None,
    }
}

fn apply(backend: &mut XdpBackend, batch: &[Decision]) {
    backend
        .apply(batch, SystemTime::now())
        .unwrap_or_else(|e| panic!("apply: {}", chain(&e)));
}

fn packets_for(backend: &XdpBackend, target: &str) -> u64 {
    let want = net(target);
    backend
        .counters()
        .unwrap_or_else(|e| panic!("counters: {}", chain(&e)))
        .into_iter()
        .find(|(n, _)| *n == want)
        .map_or(0, |(_, c)| c.packets)
}

#[test]
fn exact_bans_drop_count_and_unban() {
    let Some(lab) = Lab::new("exact_bans_drop_count_and_unban") else {
        return;
    };
    let mut backend = lab.open();
    let bans = [ban(OFFENDER_V4, None), ban(OFFENDER_V6, None)];
    apply(
        &mut backend,
        &bans.iter().cloned().map(Decision::Ban).collect::<Vec<_>>(),
    );
    lab.assert_dropped(OFFENDER_V4);
    lab.assert_dropped(OFFENDER_V6);
    lab.assert_replies(BYSTANDER_V4);
    lab.assert_replies(BYSTANDER_V6);

    let before = packets_for(&backend, OFFENDER_V4);
    assert!(before >= 1, "the IPv4 drop was not counted");
    assert!(
        packets_for(&backend, OFFENDER_V6) >= 1,
        "IPv6 drop not counted"
    );
    lab.assert_dropped(OFFENDER_V4);
    assert!(
        packets_for(&backend, OFFENDER_V4) > before,
        "counter did not grow"
    );
    assert_eq!(packets_for(&backend, BYSTANDER_V4), 0);

    apply(
        &mut backend,
        &bans
            .iter()
            .cloned()
            .map(Decision::Unban)
            .collect::<Vec<_>>(),
    );
    lab.assert_replies(OFFENDER_V4);
    lab.assert_replies(OFFENDER_V6);
    assert_eq!(
        packets_for(&backend, OFFENDER_V4),
        0,
        "unban removes the counter"
    );
    // Unbanning again is not an error.
    apply(&mut backend, &[Decision::Unban(ban(OFFENDER_V4, None))]);
}

#[test]
fn prefix_bans_cover_their_subnet_only() {
    let Some(lab) = Lab::new("prefix_bans_cover_their_subnet_only") else {
        return;
    };
    lab.add_subnet("203.0.113.1", "203.0.113.7", 24);
    lab.add_subnet("2001:db8:200::1", "2001:db8:200::7", 64);
    lab.await_replies("203.0.113.7");
    lab.await_replies("2001:db8:200::7");
    let mut backend = lab.open();
    assert_eq!(backend.cidr_counts(), [0, 0]);

    let v4 = ban("203.0.113.0/24", None);
    let v6 = ban("2001:db8:200::/48", None);
    apply(
        &mut backend,
        &[Decision::Ban(v4.clone()), Decision::Ban(v6.clone())],
    );
    assert_eq!(backend.cidr_counts(), [1, 1]);
    // Re-banning the same prefix (an extension) must not inflate the count.
    apply(&mut backend, &[Decision::Ban(v4.clone())]);
    assert_eq!(backend.cidr_counts(), [1, 1]);

    lab.assert_dropped("203.0.113.7");
    lab.assert_dropped("2001:db8:200::7");
    lab.assert_replies(OFFENDER_V4);
    lab.assert_replies(OFFENDER_V6);
    assert!(packets_for(&backend, "203.0.113.0/24") >= 1);
    assert!(packets_for(&backend, "2001:db8:200::/48") >= 1);

    apply(&mut backend, &[Decision::Unban(v4), Decision::Unban(v6)]);
    assert_eq!(backend.cidr_counts(), [0, 0]);
    lab.assert_replies("203.0.113.7");
    lab.assert_replies("2001:db8:200::7");
}

#[test]
fn a_deadline_expires_in_the_kernel_without_the_agent() {
    let Some(lab) = Lab::new("a_deadline_expires_in_the_kernel_without_the_agent") else {
        return;
    };
    let mut backend = lab.open();
    let start = Instant::now();
    let until = SystemTime::now() + Duration::from_secs(2);
    apply(
        &mut backend,
        &[Decision::Ban(ban(OFFENDER_V4, Some(until)))],
    );
    // The kernel holds the deadline in CLOCK_MONOTONIC, the clock the program reads.
    let stored = log2drop_tests::ban_entry(&lab.pins, net(OFFENDER_V4).addr())
        .expect("the ban is in the map")
        .expires_ns;
    let mono = clock_ns(ClockId::CLOCK_MONOTONIC);
    assert!(
        stored > mono && stored <= mono + 2_000_000_000,
        "deadline {stored} is not within 2 s of CLOCK_MONOTONIC {mono}"
    );
    lab.assert_dropped(OFFENDER_V4);
    let back = wait_until(Duration::from_secs(5), Duration::from_millis(50), || {
        lab.replies(OFFENDER_V4, DROP_PROBE)
    });
    let elapsed = start.elapsed();
    assert!(back.is_some(), "still dropped {elapsed:?} after a 2 s ban");
    assert!(
        elapsed >= Duration::from_millis(1900),
        "ban lifted early, after {elapsed:?}"
    );
    eprintln!("2 s ban lifted by the kernel after {elapsed:?}");
    // The entry is still there (the kernel only ignores it); gc removes it.
    let removed = backend
        .gc(SystemTime::now())
        .unwrap_or_else(|e| panic!("gc: {}", chain(&e)));
    assert_eq!(removed, 1);
    assert_eq!(backend.gc(SystemTime::now()).expect("second gc"), 0);
}

#[test]
fn counters_off_still_drops_and_counts_nothing() {
    let Some(lab) = Lab::new("counters_off_still_drops_and_counts_nothing") else {
        return;
    };
    lab.add_subnet("203.0.113.1", "203.0.113.7", 24);
    lab.await_replies("203.0.113.7");
    let cfg = XdpConfig {
        counters: false,
        ..lab.config()
    };
    let mut backend = {
        let _in = lab.server.enter();
        XdpBackend::open(&cfg).unwrap_or_else(|e| panic!("open: {}", chain(&e)))
    };
    let until = SystemTime::now() + Duration::from_secs(3600);
    apply(
        &mut backend,
        &[
            Decision::Ban(ban(OFFENDER_V4, Some(until))),
            Decision::Ban(ban(OFFENDER_V6, None)),
            Decision::Ban(ban("203.0.113.0/24", None)),
        ],
    );
    lab.assert_dropped(OFFENDER_V4);
    lab.assert_dropped(OFFENDER_V6);
    lab.assert_dropped("203.0.113.7");
    lab.assert_replies(BYSTANDER_V4);
    assert_eq!(packets_for(&backend, OFFENDER_V4), 0);
    assert_eq!(packets_for(&backend, OFFENDER_V6), 0);
    assert_eq!(packets_for(&backend, "203.0.113.0/24"), 0);
    // Turned back on (a reload reopens the backend), the same maps count again.
    drop(backend);
    let backend = lab.open();
    lab.assert_dropped(OFFENDER_V4);
    assert!(packets_for(&backend, OFFENDER_V4) >= 1, "counting is back");
}

/// Regression: the periodic gc walked every ban map each minute, a million lookups
/// at a million bans, next to the cores dropping a flood. The engine lifts its own
/// bans, so the walk (for leftovers only) now runs at most hourly.
#[test]
fn gc_walks_the_maps_at_most_hourly() {
    let Some(lab) = Lab::new("gc_walks_the_maps_at_most_hourly") else {
        return;
    };
    let mut backend = lab.open();
    assert_eq!(backend.gc(SystemTime::now()).expect("first gc"), 0);
    // A leftover: expired one nanosecond after boot, never lifted by an engine.
    let leftover = net(OFFENDER_V4).addr();
    log2drop_tests::plant_exact_ban(&lab.pins, leftover, 1);
    assert_eq!(
        backend.gc(SystemTime::now()).expect("gc within the hour"),
        0
    );
    assert!(
        log2drop_tests::ban_entry(&lab.pins, leftover).is_some(),
        "the walk ran again within the hour"
    );
    // A fresh backend (an agent restart) walks on its first gc.
    drop(backend);
    let mut backend = lab.open();
    assert_eq!(backend.gc(SystemTime::now()).expect("gc after restart"), 1);
    assert!(log2drop_tests::ban_entry(&lab.pins, leftover).is_none());
}

const TPID_8021Q: u16 = 0x8100;
const TPID_8021AD: u16 = 0x88A8;

/// An Ethernet frame carrying an ICMP echo (v4) or ICMPv6 echo (v6) from `src` to
/// `dst`, behind the VLAN tags `tpids` (outermost first), cut to `cut` bytes if given.
fn frame(tpids: &[u16], src: &str, dst: &str, cut: Option<usize>) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 0x0b, 0x02, 0, 0, 0, 0, 0x0a];
    for (i, tpid) in tpids.iter().enumerate() {
        f.extend(tpid.to_be_bytes());
        f.extend((100 + i as u16).to_be_bytes());
    }
    let ip = |a: &str| -> IpAddr { a.parse().unwrap_or_else(|e| panic!("{a}: {e}")) };
    match (ip(src), ip(dst)) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            f.extend(0x0800u16.to_be_bytes());
            f.extend([0x45, 0, 0, 28, 0, 0, 0, 0, 64, 1, 0, 0]);
            f.extend(s.octets());
            f.extend(d.octets());
            f.extend([8, 0, 0xf7, 0xff, 0, 0, 0, 0]);
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            f.extend(0x86DDu16.to_be_bytes());
            f.extend([0x60, 0, 0, 0, 0, 8, 58, 64]);
            f.extend(s.octets());
            f.extend(d.octets());
            f.extend([128, 0, 0, 0, 0, 0, 0, 0]);
        }
        _ => panic!("mixed families {src} -> {dst}"),
    }
    if let Some(n) = cut {
        f.truncate(n);
    }
    f
}

/// This kernel has no 802.1Q support (no VLAN sub-interfaces), so tagged frames go
/// through `BPF_PROG_TEST_RUN`: the same loaded program, the same maps.
#[test]
fn vlan_tagged_and_odd_frames() {
    let Some(lab) = Lab::new("vlan_tagged_and_odd_frames") else {
        return;
    };
    let mut backend = lab.open();
    apply(
        &mut backend,
        &[
            Decision::Ban(ban("192.0.2.7", None)),
            Decision::Ban(ban("2001:db8:300::/48", None)),
        ],
    );
    let run = |f: &[u8]| -> Verdict {
        backend
            .test_run(f, 1)
            .unwrap_or_else(|e| panic!("test_run: {}", chain(&e)))
            .action
    };
    let q = TPID_8021Q;
    let ad = TPID_8021AD;
    let cases: &[(&str, Vec<u8>, Verdict)] = &[
        (
            "untagged",
            frame(&[], "192.0.2.7", "192.0.2.1", None),
            Verdict::Drop,
        ),
        (
            "802.1Q",
            frame(&[q], "192.0.2.7", "192.0.2.1", None),
            Verdict::Drop,
        ),
        (
            "802.1Q bystander",
            frame(&[q], "192.0.2.8", "192.0.2.1", None),
            Verdict::Pass,
        ),
        (
            "802.1ad",
            frame(&[ad], "192.0.2.7", "192.0.2.1", None),
            Verdict::Drop,
        ),
        (
            "QinQ",
            frame(&[ad, q], "192.0.2.7", "192.0.2.1", None),
            Verdict::Drop,
        ),
        (
            "double 802.1Q",
            frame(&[q, q], "192.0.2.7", "192.0.2.1", None),
            Verdict::Drop,
        ),
        (
            "QinQ v6 prefix",
            frame(&[ad, q], "2001:db8:300:5::7", "2001:db8:300::1", None),
            Verdict::Drop,
        ),
        (
            "QinQ v6 outside",
            frame(&[ad, q], "2001:db8:301::7", "2001:db8:300::1", None),
            Verdict::Pass,
        ),
        // Beyond two tags the program does not look: it passes rather than guess.
        (
            "three tags",
            frame(&[ad, q, q], "192.0.2.7", "192.0.2.1", None),
            Verdict::Pass,
        ),
        // Cut inside the source address: never read past the frame.
        (
            "short v4",
            frame(&[q], "192.0.2.7", "192.0.2.1", Some(18 + 14)),
            Verdict::Pass,
        ),
        (
            "short v6",
            frame(&[], "2001:db8:300::7", "2001:db8:300::1", Some(14 + 20)),
            Verdict::Pass,
        ),
        (
            "tag only",
            frame(&[q], "192.0.2.7", "192.0.2.1", Some(16)),
            Verdict::Pass,
        ),
    ];
    let mut drops_v4 = 0;
    for (name, f, want) in cases {
        assert_eq!(run(f), *want, "{name}");
        if *want == Verdict::Drop && !name.contains("v6") {
            drops_v4 += 1;
        }
    }
    let mut arp = frame(&[], "192.0.2.7", "192.0.2.1", None);
    arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
    assert_eq!(run(&arp), Verdict::Pass, "ARP");
    assert_eq!(packets_for(&backend, "192.0.2.7"), drops_v4);
    assert_eq!(packets_for(&backend, "2001:db8:300::/48"), 1);

    // The per-frame cost as the kernel measures it (hot cache, one repeated frame).
    for (name, f) in [
        ("miss v4", frame(&[], "192.0.2.8", "192.0.2.1", None)),
        ("hit v4", frame(&[], "192.0.2.7", "192.0.2.1", None)),
        (
            "hit v6 prefix",
            frame(&[], "2001:db8:300::7", "2001:db8:300::1", None),
        ),
    ] {
        let r = backend.test_run(&f, 100_000).expect("timed test_run");
        eprintln!("BPF_PROG_TEST_RUN {name}: {:?} per frame", r.per_run);
    }
}

#[test]
fn pins_outlive_the_backend_and_reopen_reconciles() {
    let Some(lab) = Lab::new("pins_outlive_the_backend_and_reopen_reconciles") else {
        return;
    };
    let kept = ban(OFFENDER_V4, None);
    let stale = ban(OFFENDER_V6, None);
    {
        let mut backend = lab.open();
        assert!(
            backend
                .attachments()
                .iter()
                .all(|(_, a)| *a != Attachment::Reused),
            "fresh pin dir, nothing to reuse"
        );
        apply(
            &mut backend,
            &[Decision::Ban(kept.clone()), Decision::Ban(stale.clone())],
        );
        lab.assert_dropped(OFFENDER_V4);
    } // The agent "exits".
    lab.assert_dropped(OFFENDER_V4);
    lab.assert_dropped(OFFENDER_V6);
    assert!(
        lab.pins.find(&lab.veth.a().ifname).is_some(),
        "link pin missing: {:?}",
        lab.pins.list()
    );

    let mut backend = lab.open();
    assert_eq!(
        backend.attachments(),
        &[(lab.veth.a().ifname.clone(), Attachment::Reused)]
    );
    // Still dropping right after the program switch, before any reconcile.
    lab.assert_dropped(OFFENDER_V4);
    let report = backend
        .reconcile(&[kept.clone(), ban(BYSTANDER_V6, None)], SystemTime::now())
        .unwrap_or_else(|e| panic!("reconcile: {}", chain(&e)));
    assert_eq!(
        (report.kept, report.added, report.removed),
        (1, 1, 1),
        "{report:?}"
    );
    lab.assert_dropped(OFFENDER_V4);
    lab.assert_replies(OFFENDER_V6);
    lab.assert_dropped(BYSTANDER_V6);
    // A second reconcile with the same set changes nothing.
    let again = backend
        .reconcile(&[kept.clone(), ban(BYSTANDER_V6, None)], SystemTime::now())
        .expect("reconcile again");
    assert_eq!(
        (again.kept, again.added, again.removed, again.updated),
        (2, 0, 0, 0)
    );
    // A permanent ban the store now says ends in an hour is rewritten in place.
    let mut shortened = kept;
    shortened.until = Some(SystemTime::now() + std::time::Duration::from_secs(3600));
    let third = backend
        .reconcile(&[shortened, ban(BYSTANDER_V6, None)], SystemTime::now())
        .expect("reconcile with a new deadline");
    assert_eq!(
        (third.kept, third.added, third.removed, third.updated),
        (1, 0, 0, 1)
    );
    lab.assert_dropped(OFFENDER_V4);

    drop(backend);
    let removed = XdpBackend::detach_and_unpin(lab.pins.path())
        .unwrap_or_else(|e| panic!("detach_and_unpin: {}", chain(&e)));
    assert!(removed >= 7, "removed only {removed} pins");
    assert!(lab.pins.list().is_empty(), "left: {:?}", lab.pins.list());
    // The kernel releases an unpinned link (and detaches its program) in deferred
    // work, so replies come back shortly after, not necessarily at once.
    for from in [OFFENDER_V4, BYSTANDER_V6] {
        let back = wait_until(Duration::from_secs(5), Duration::ZERO, || {
            lab.replies(from, REPLY_PROBE)
        });
        assert!(back.is_some(), "{from} still dropped 5 s after unpinning");
    }
}

#[test]
fn generic_mode_when_asked() {
    let Some(lab) = Lab::new("generic_mode_when_asked") else {
        return;
    };
    let mut cfg = lab.config();
    cfg.mode = XdpMode::Skb;
    let mut backend = {
        let _in = lab.server.enter();
        XdpBackend::open(&cfg).unwrap_or_else(|e| panic!("open: {}", chain(&e)))
    };
    assert_eq!(
        backend.attachments(),
        &[(lab.veth.a().ifname.clone(), Attachment::Generic)]
    );
    apply(&mut backend, &[Decision::Ban(ban(OFFENDER_V6, None))]);
    lab.assert_dropped(OFFENDER_V6);
    lab.assert_replies(BYSTANDER_V6);
}

#[test]
fn a_full_map_is_named_and_unbans_still_apply() {
    let Some(lab) = Lab::new("a_full_map_is_named_and_unbans_still_apply") else {
        return;
    };
    let mut cfg = lab.config();
    cfg.max_bans = 1;
    let mut backend = {
        let _in = lab.server.enter();
        XdpBackend::open(&cfg).unwrap_or_else(|e| panic!("open: {}", chain(&e)))
    };
    apply(&mut backend, &[Decision::Ban(ban(OFFENDER_V4, None))]);
    let err = backend
        .apply(
            &[
                Decision::Ban(ban(BYSTANDER_V4, None)),
                Decision::Unban(ban(OFFENDER_V4, None)),
            ],
            SystemTime::now(),
        )
        .expect_err("second exact IPv4 ban exceeds max_bans = 1");
    let msg = chain(&err);
    assert!(msg.contains("BAN_V4") && msg.contains("1 entries"), "{msg}");
    // The unban in the same batch still happened.
    lab.assert_replies(OFFENDER_V4);
    lab.assert_replies(BYSTANDER_V4);
}

#[test]
fn unknown_interface_is_named() {
    let Some(lab) = Lab::new("unknown_interface_is_named") else {
        return;
    };
    let mut cfg = lab.config();
    cfg.interfaces.push("l2d-nosuch0".into());
    let _in = lab.server.enter();
    let err = XdpBackend::open(&cfg).expect_err("interface does not exist");
    assert!(chain(&err).contains("l2d-nosuch0"), "{}", chain(&err));
    // Nothing got attached to the good interface either.
    assert!(lab.pins.find(&lab.veth.a().ifname).is_none());
}

fn clock_ns(clock: ClockId) -> u64 {
    let ts = clock_gettime(clock).unwrap_or_else(|e| panic!("clock_gettime {clock:?}: {e}"));
    u64::try_from(ts.tv_sec()).expect("clock after 1970") * 1_000_000_000
        + u64::try_from(ts.tv_nsec()).expect("nanoseconds in range")
}

/// Creates a map with `bpf(BPF_MAP_CREATE)` and pins it at `path`: how the test
/// builds a pin layout the current program no longer has.
fn create_pinned_map(path: &std::path::Path, map_type: u32, key: u32, value: u32, flags: u32) {
    use std::os::unix::ffi::OsStrExt as _;
    // The first five u32s of `union bpf_attr` for BPF_MAP_CREATE; the rest zero.
    let mut attr = [0u8; 128];
    for (i, v) in [map_type, key, value, 64, flags].into_iter().enumerate() {
        attr[i * 4..i * 4 + 4].copy_from_slice(&v.to_ne_bytes());
    }
    const BPF_MAP_CREATE: libc::c_long = 0;
    const BPF_OBJ_PIN: libc::c_long = 6;
    // SAFETY: `attr` is a valid, zero-padded bpf_attr of the size passed.
    let fd = unsafe { libc::syscall(libc::SYS_bpf, BPF_MAP_CREATE, attr.as_ptr(), attr.len()) };
    assert!(
        fd >= 0,
        "BPF_MAP_CREATE type {map_type}: {}",
        std::io::Error::last_os_error()
    );
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).expect("no NUL in path");
    let mut pin = [0u8; 128];
    pin[..8].copy_from_slice(&(c_path.as_ptr() as u64).to_ne_bytes());
    pin[8..12].copy_from_slice(&(fd as u32).to_ne_bytes());
    // SAFETY: as above; `c_path` outlives the call.
    let rc = unsafe { libc::syscall(libc::SYS_bpf, BPF_OBJ_PIN, pin.as_ptr(), pin.len()) };
    let err = std::io::Error::last_os_error();
    // SAFETY: `fd` is ours; the pin keeps the map.
    unsafe { libc::close(fd as i32) };
    assert_eq!(rc, 0, "BPF_OBJ_PIN {}: {err}", path.display());
}

fn pinned(path: &std::path::Path) -> Map {
    let data = MapData::from_pin(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Map::from_map_data(data).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn bans_and_counters_move_over_from_pin_layout_2() {
    let Some(lab) = Lab::new("bans_and_counters_move_over_from_pin_layout_2") else {
        return;
    };
    lab.add_subnet("203.0.113.1", "203.0.113.7", 24);
    lab.await_replies("203.0.113.7");
    // Pin layout 2 as the previous release left it: exact bans with a u64
    // CLOCK_BOOTTIME deadline, prefix bans in tries, counters in a per-CPU DROPS.
    let old = lab.pins.path().join("maps-v2");
    std::fs::create_dir_all(&old).expect("mkdir maps-v2");
    const HASH: u32 = 1;
    const PERCPU_HASH: u32 = 5;
    const LPM_TRIE: u32 = 11;
    const NO_PREALLOC: u32 = 1;
    create_pinned_map(&old.join("BAN_V4"), HASH, 4, 8, NO_PREALLOC);
    create_pinned_map(&old.join("BAN_V6"), HASH, 16, 8, NO_PREALLOC);
    create_pinned_map(&old.join("CIDR_V4"), LPM_TRIE, 8, 16, NO_PREALLOC);
    create_pinned_map(&old.join("DROPS"), PERCPU_HASH, 20, 16, NO_PREALLOC);

    let boot = clock_ns(ClockId::CLOCK_BOOTTIME);
    let hour = 3_600_000_000_000u64;
    let offender4 = net(OFFENDER_V4).addr();
    let offender6 = net(OFFENDER_V6).addr();
    let std::net::IpAddr::V4(o4) = offender4 else {
        panic!("OFFENDER_V4 is IPv4")
    };
    let std::net::IpAddr::V6(o6) = offender6 else {
        panic!("OFFENDER_V6 is IPv6")
    };
    let mut v4: HashMap<MapData, [u8; 4], u64> =
        HashMap::try_from(pinned(&old.join("BAN_V4"))).expect("BAN_V4 v2");
    v4.insert(o4.octets(), boot + hour, 0).expect("old v4 ban");
    // Expired a second ago: must not come along.
    v4.insert([198, 51, 100, 99], boot - 1_000_000_000, 0)
        .expect("old expired ban");
    let mut v6: HashMap<MapData, [u8; 16], u64> =
        HashMap::try_from(pinned(&old.join("BAN_V6"))).expect("BAN_V6 v2");
    v6.insert(o6.octets(), 0, 0).expect("old permanent v6 ban");
    let mut trie: LpmTrie<MapData, [u8; 4], CidrBanValue> =
        LpmTrie::try_from(pinned(&old.join("CIDR_V4"))).expect("CIDR_V4 v2");
    let cidr = CidrBanValue {
        expires_ns: boot + hour,
        prefix_len: 24,
        _pad: 0,
    };
    trie.insert(&Key::new(24, [203, 0, 113, 0]), cidr, 0)
        .expect("old prefix ban");
    let mut drops: PerCpuHashMap<MapData, CounterKey, DropCounter> =
        PerCpuHashMap::try_from(pinned(&old.join("DROPS"))).expect("DROPS v2");
    let cpus = aya::util::nr_cpus().expect("possible CPUs");
    let per_cpu: Vec<DropCounter> = (0..cpus as u64)
        .map(|i| DropCounter {
            packets: 3 + i,
            bytes: 300 + 100 * i,
        })
        .collect();
    let carried: u64 = per_cpu.iter().map(|c| c.packets).sum();
    let mut key = CounterKey {
        family: log2drop_common::FAMILY_V4,
        prefix_len: 32,
        _pad: [0; 2],
        addr: [0; 16],
    };
    key.addr[..4].copy_from_slice(&o4.octets());
    drops
        .insert(key, PerCpuValues::try_from(per_cpu).expect("values"), 0)
        .expect("old counter");
    drop((v4, v6, trie, drops));

    let backend = lab.open();
    let migrated = backend.migrated().expect("the old layout was found");
    assert_eq!(
        (migrated.bans, migrated.expired, migrated.counters),
        (3, 1, 1),
        "{migrated:?}"
    );
    assert!(!old.exists(), "the old layout's pins are gone");
    // Enforced straight away, before any reconcile with a store.
    lab.assert_dropped(OFFENDER_V4);
    lab.assert_dropped(OFFENDER_V6);
    lab.assert_dropped("203.0.113.7");
    lab.assert_replies(BYSTANDER_V4);
    lab.assert_replies(BYSTANDER_V6);
    assert!(
        packets_for(&backend, OFFENDER_V4) > carried,
        "the old counts came along and new drops add to them"
    );
    assert!(packets_for(&backend, "203.0.113.0/24") >= 1);
    // The time left is kept, now on CLOCK_MONOTONIC.
    let entry = log2drop_tests::ban_entry(&lab.pins, offender4).expect("v4 ban carried");
    let left = entry
        .expires_ns
        .saturating_sub(clock_ns(ClockId::CLOCK_MONOTONIC));
    assert!(
        left > hour - 60_000_000_000 && left <= hour,
        "time left {left} ns, wanted about an hour"
    );
    assert_eq!(
        log2drop_tests::ban_entry(&lab.pins, offender6)
            .expect("v6 ban carried")
            .expires_ns,
        0,
        "permanent stays permanent"
    );

    // The next start finds nothing to carry.
    drop(backend);
    let backend = lab.open();
    assert_eq!(backend.migrated(), None);
    lab.assert_dropped(OFFENDER_V4);
}

/// Issue 16, item 1: `/sys/fs/bpf` is 1777, so `nobody` can create the agent's pin
/// directory (or a subdirectory of it) before the agent's first start and later
/// delete the pins. The agent refuses such a pin directory, naming it and its owner.
#[test]
fn a_pin_dir_another_user_can_write_is_refused() {
    use log2drop_tests::unprivileged::{RemoveOnDrop, mkdir_as_nobody};
    let Some(lab) = Lab::new("a_pin_dir_another_user_can_write_is_refused") else {
        return;
    };
    let open_err = |pin_dir: &std::path::Path| {
        let _in = lab.server.enter();
        let cfg = XdpConfig {
            pin_dir: pin_dir.to_owned(),
            ..lab.config()
        };
        match XdpBackend::open(&cfg) {
            Ok(_) => panic!("{} was accepted as a pin directory", pin_dir.display()),
            Err(e) => chain(&e),
        }
    };
    // The whole pin directory made by nobody.
    // (bpffs refuses names with a dot.)
    let mut name = lab.pins.path().as_os_str().to_owned();
    name.push("-nobody");
    let squatted = RemoveOnDrop(name.into());
    mkdir_as_nobody(&squatted.0.join("links"));
    let err = open_err(&squatted.0);
    assert!(
        err.contains(&squatted.0.display().to_string())
            && err.contains("another user owns it")
            && err.contains("uid 65534"),
        "{err}"
    );
    // A root-owned pin directory with a subdirectory nobody made in it (while the
    // directory was open to everyone) is refused too, naming the subdirectory.
    let links = lab.pins.path().join("links");
    let chmod = |mode| {
        std::fs::set_permissions(
            lab.pins.path(),
            std::os::unix::fs::PermissionsExt::from_mode(mode),
        )
        .expect("chmod")
    };
    chmod(0o1777);
    mkdir_as_nobody(&links);
    chmod(0o755);
    let err = open_err(lab.pins.path());
    assert!(
        err.contains(&links.display().to_string()) && err.contains("uid 65534"),
        "{err}"
    );
    std::fs::remove_dir(&links).expect("rmdir");
    // A root-owned directory others may write is refused as well.
    chmod(0o777);
    let err = open_err(lab.pins.path());
    assert!(err.contains("other users can write"), "{err}");
    // Not writable by others, the same directory is fine, and what the agent
    // creates in it is root's alone (0700).
    chmod(0o755);
    let _backend = lab.open();
    let meta = std::fs::metadata(&links).expect("stat");
    use std::os::unix::fs::MetadataExt;
    assert_eq!((meta.uid(), meta.mode() & 0o7777), (0, 0o700));
}

/// Issue 16, item 1: a pin removed while the agent runs (a map's, or a link's, which
/// detaches the program) is put back by the periodic pass (`gc`).
#[test]
fn vanished_pins_are_restored() {
    let Some(lab) = Lab::new("vanished_pins_are_restored") else {
        return;
    };
    let mut backend = lab.open();
    apply(&mut backend, &[Decision::Ban(ban(OFFENDER_V4, None))]);
    lab.assert_dropped(OFFENDER_V4);
    let link = lab.pins.find(&lab.veth.a().ifname).expect("link pin");
    let map = lab.pins.find("BAN_V4").expect("map pin");
    std::fs::remove_file(&link).expect("rm link pin");
    std::fs::remove_file(&map).expect("rm map pin");
    // Without its pin the link is gone, and the program with it.
    let detached = wait_until(Duration::from_secs(5), Duration::ZERO, || {
        lab.replies(OFFENDER_V4, REPLY_PROBE)
    });
    assert!(detached.is_some(), "removing the link pin did not detach");
    {
        let _in = lab.server.enter();
        backend
            .gc(SystemTime::now())
            .unwrap_or_else(|e| panic!("gc: {}", chain(&e)));
    }
    assert!(link.exists() && map.exists(), "{:?}", lab.pins.list());
    lab.assert_dropped(OFFENDER_V4);
    // The restored map pin is the live map: the ban outlives the backend through it.
    drop(backend);
    lab.assert_dropped(OFFENDER_V4);
    let backend = lab.open();
    assert_eq!(
        backend.attachments(),
        &[(lab.veth.a().ifname.clone(), Attachment::Reused)]
    );
    lab.assert_dropped(OFFENDER_V4);
}
