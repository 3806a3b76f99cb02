//! The nftables backend against the real kernel, as root, without the rest of the
//! agent: `NftablesBackend` is opened inside the server namespace of a veth pair
//! (netlink sockets belong to the namespace they were opened in), bans go through
//! the `Backend` trait, pings from the attacker namespace show their effect, and the
//! `nft` CLI inspects and tampers with the set the way an admin might. Covered: exact
//! and CIDR bans (IPv4, IPv6), overlapping bans, kernel-side expiry without the
//! backend, restart with reconcile after tampering, refusing a foreign table of the
//! same name, flush leaving other tables alone, the ingress hook with reject and a
//! counter. An ignored test measures bulk inserts and the restart reconcile.
//!
//! Every test has its own namespaces (the harness's [`WireLab`]), removed with their
//! tables even when it fails.
//! Run with `--test-threads=1` (namespaces are per thread).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ipnet::IpNet;
use log2drop::backend::nftables::config::{NftAction, NftHook, NftablesConfig};
use log2drop::backend::nftables::{NftError, NftablesBackend, SHARD_ABOVE, measure};
use log2drop::backend::{Backend, ReconcileReport};
use log2drop::engine::{Ban, Decision, Origin};
use log2drop_tests::lab::DROP_PROBE;
use log2drop_tests::veth::{BYSTANDER_V4, BYSTANDER_V6, OFFENDER_V4, OFFENDER_V6};
use log2drop_tests::{NetNs, WireLab, require_root, wait_until};

/// An address no packet comes from, planted by hand in a shard set.
const MISFILED_V6: &str = "2001:db8:100::99";

/// One test's world: the shared server/attacker wire (dropped with its namespaces,
/// and with them every nftables table inside), plus the nftables helpers.
struct Lab {
    wire: WireLab,
}

impl std::ops::Deref for Lab {
    type Target = WireLab;

    fn deref(&self) -> &WireLab {
        &self.wire
    }
}

impl Lab {
    fn new(test: &str) -> Option<Lab> {
        if !require_root(test) {
            return None;
        }
        Some(Lab {
            wire: WireLab::new(),
        })
    }

    fn config(&self) -> NftablesConfig {
        NftablesConfig {
            table: "log2drop".into(),
            hook: NftHook::Input,
            priority: -10,
            interfaces: Vec::new(),
            action: NftAction::Drop,
            counter: false,
        }
    }

    fn open_with(&self, cfg: &NftablesConfig) -> NftablesBackend {
        let _in = self.server.enter();
        NftablesBackend::open(cfg)
            .unwrap_or_else(|e| panic!("NftablesBackend::open: {}", chain(&e)))
    }

    fn open(&self) -> NftablesBackend {
        self.open_with(&self.config())
    }

    fn apply(&self, backend: &mut NftablesBackend, batch: &[Decision]) {
        let _in = self.server.enter();
        backend
            .apply(batch, SystemTime::now())
            .unwrap_or_else(|e| panic!("apply: {}", chain(&e)));
    }

    fn reconcile(&self, backend: &mut NftablesBackend, active: &[Ban]) -> ReconcileReport {
        let _in = self.server.enter();
        backend
            .reconcile(active, SystemTime::now())
            .unwrap_or_else(|e| panic!("reconcile: {}", chain(&e)))
    }

    fn nft(&self, args: &[&str]) -> String {
        let mut argv = vec!["nft"];
        argv.extend_from_slice(args);
        let out = self.server.exec_checked(&argv);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Whether set `set` of `table inet log2drop` lists `addr`.
    fn set_holds(&self, set: &str, addr: &str) -> bool {
        self.nft(&["list", "set", "inet", "log2drop", set])
            .contains(addr)
    }

    /// The input chain names `present` and not `absent`.
    #[track_caller]
    fn assert_input_looks_in(&self, present: &str, absent: &str) {
        let input = self.nft(&["list", "chain", "inet", "log2drop", "input"]);
        assert!(
            input.contains(present) && !input.contains(absent),
            "{input}"
        );
    }
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

fn in_secs(secs: u64) -> Option<SystemTime> {
    Some(SystemTime::now() + Duration::from_secs(secs))
}

#[test]
fn ban_drops_only_that_address_v4_and_v6() {
    let Some(lab) = Lab::new("ban_drops_only_that_address_v4_and_v6") else {
        return;
    };
    let mut b = lab.open();
    lab.reconcile(&mut b, &[]);
    lab.apply(
        &mut b,
        &[
            Decision::Ban(ban(OFFENDER_V4, in_secs(600))),
            Decision::Ban(ban(OFFENDER_V6, None)),
        ],
    );
    lab.assert_dropped(OFFENDER_V4);
    lab.assert_dropped(OFFENDER_V6);
    lab.assert_replies(BYSTANDER_V4);
    lab.assert_replies(BYSTANDER_V6);
    let listed = lab.nft(&["list", "table", "inet", "log2drop"]);
    // Few single addresses live in one hash set per family, and the chain looks
    // only there (one lookup per packet), not in the shards.
    assert!(!b.is_sharded());
    let ban4 = lab.nft(&["list", "set", "inet", "log2drop", "ban4_all"]);
    assert!(
        ban4.contains(OFFENDER_V4),
        "ban4_all lacks the offender:\n{listed}"
    );
    let ban6 = lab.nft(&["list", "set", "inet", "log2drop", "ban6_all"]);
    assert!(
        ban6.contains(OFFENDER_V6),
        "ban6_all lacks the offender:\n{listed}"
    );
    let input = lab.nft(&["list", "chain", "inet", "log2drop", "input"]);
    assert!(
        input.contains("@ban4_all") && !input.contains("@shard4"),
        "{input}"
    );
    assert!(
        listed.contains("managed by log2drop"),
        "no owner mark:\n{listed}"
    );

    lab.apply(
        &mut b,
        &[
            Decision::Unban(ban(OFFENDER_V4, None)),
            Decision::Unban(ban(OFFENDER_V6, None)),
        ],
    );
    lab.assert_replies(OFFENDER_V4);
    lab.assert_replies(OFFENDER_V6);
}

#[test]
fn cidr_bans_and_overlapping_bans() {
    let Some(lab) = Lab::new("cidr_bans_and_overlapping_bans") else {
        return;
    };
    let mut b = lab.open();
    lab.reconcile(&mut b, &[]);
    // 198.51.100.0/29 holds the offender (.7) but not the bystander (.8).
    lab.apply(
        &mut b,
        &[
            Decision::Ban(ban("198.51.100.0/29", in_secs(600))),
            Decision::Ban(ban("2001:db8:100::4/126", None)),
        ],
    );
    lab.assert_dropped(OFFENDER_V4);
    lab.assert_replies(BYSTANDER_V4);
    // ::4-::7 hold the offender ::7, not ::8.
    lab.assert_dropped(OFFENDER_V6);
    lab.assert_replies(BYSTANDER_V6);

    // A /32 inside the /29 with a later deadline, then the /29 lifted: the /32 stays.
    lab.apply(&mut b, &[Decision::Ban(ban(OFFENDER_V4, in_secs(3600)))]);
    lab.assert_dropped(OFFENDER_V4);
    lab.apply(&mut b, &[Decision::Unban(ban("198.51.100.0/29", None))]);
    lab.assert_dropped(OFFENDER_V4);
    // And a wider ban over both: the bystander goes too; lifting it restores it.
    lab.apply(
        &mut b,
        &[Decision::Ban(ban("198.51.100.0/28", in_secs(60)))],
    );
    lab.assert_dropped(BYSTANDER_V4);
    lab.apply(&mut b, &[Decision::Unban(ban("198.51.100.0/28", None))]);
    lab.assert_replies(BYSTANDER_V4);
    lab.assert_dropped(OFFENDER_V4);
    let counts = b.element_counts();
    assert_eq!(counts.prefixes, [0, 1], "{counts:?}");
    assert_eq!(counts.addresses, [1, 0], "{counts:?}");
}

#[test]
fn elements_expire_in_the_kernel_without_the_backend() {
    let Some(lab) = Lab::new("elements_expire_in_the_kernel_without_the_backend") else {
        return;
    };
    let mut b = lab.open();
    lab.reconcile(&mut b, &[]);
    lab.apply(
        &mut b,
        &[
            Decision::Ban(ban(OFFENDER_V4, in_secs(2))),
            Decision::Ban(ban(OFFENDER_V6, in_secs(2))),
        ],
    );
    lab.assert_dropped(OFFENDER_V4);
    lab.assert_dropped(OFFENDER_V6);
    drop(b);
    assert!(
        wait_until(Duration::from_secs(10), Duration::from_millis(200), || {
            lab.replies(OFFENDER_V4, DROP_PROBE) && lab.replies(OFFENDER_V6, DROP_PROBE)
        })
        .is_some(),
        "expired bans still drop"
    );
}

#[test]
fn restart_reconciles_tampered_sets() {
    let Some(lab) = Lab::new("restart_reconciles_tampered_sets") else {
        return;
    };
    let active = [
        ban(OFFENDER_V4, in_secs(600)),
        ban("198.51.100.20", in_secs(600)),
        ban(OFFENDER_V6, None),
    ];
    let mut b = lab.open();
    let first = lab.reconcile(&mut b, &active);
    assert_eq!(
        first,
        ReconcileReport {
            added: 3,
            removed: 0,
            updated: 0,
            kept: 0
        }
    );
    drop(b);
    // Behind our back: one ban removed (few single addresses live in one hash set),
    // strangers added to the prefix set and to a shard set.
    lab.nft(&[
        "delete",
        "element",
        "inet",
        "log2drop",
        "ban4_all",
        &format!("{{ {OFFENDER_V4} }}"),
    ]);
    lab.nft(&[
        "add",
        "element",
        "inet",
        "log2drop",
        "ban6_all",
        &format!("{{ {BYSTANDER_V6} }}"),
    ]);
    lab.nft(&[
        "add",
        "element",
        "inet",
        "log2drop",
        "ban6_8",
        &format!("{{ {MISFILED_V6} }}"),
    ]);
    lab.nft(&[
        "add",
        "element",
        "inet",
        "log2drop",
        "ban4",
        &format!("{{ {BYSTANDER_V4} }}"),
    ]);
    lab.assert_replies(OFFENDER_V4);
    lab.assert_dropped(BYSTANDER_V4);
    lab.assert_dropped(BYSTANDER_V6);

    let mut b = lab.open();
    let report = lab.reconcile(&mut b, &active);
    assert_eq!(
        report,
        ReconcileReport {
            added: 1,
            removed: 3,
            updated: 0,
            kept: 2
        },
        "{report:?}"
    );
    lab.assert_dropped(OFFENDER_V4);
    lab.assert_replies(BYSTANDER_V4);
    lab.assert_replies(BYSTANDER_V6);
    lab.assert_dropped(OFFENDER_V6);
    let listed = lab.nft(&["list", "table", "inet", "log2drop"]);
    assert!(
        !listed.contains(BYSTANDER_V4)
            && !listed.contains(BYSTANDER_V6)
            && !listed.contains(MISFILED_V6),
        "stranger still listed:\n{listed}"
    );

    // Same bans, fresh open: nothing to do. A changed deadline is rewritten in place.
    drop(b);
    let mut b = lab.open();
    let same = lab.reconcile(&mut b, &active);
    assert_eq!(
        same,
        ReconcileReport {
            added: 0,
            removed: 0,
            updated: 0,
            kept: 3
        }
    );
    let mut longer = active.clone();
    longer[0].until = in_secs(7200);
    let changed = lab.reconcile(&mut b, &longer);
    assert_eq!(
        changed,
        ReconcileReport {
            added: 0,
            removed: 0,
            updated: 1,
            kept: 2
        }
    );
    lab.assert_dropped(OFFENDER_V4);
}

#[test]
fn apply_recovers_when_the_set_was_edited_behind_its_back() {
    let Some(lab) = Lab::new("apply_recovers_when_the_set_was_edited_behind_its_back") else {
        return;
    };
    let mut b = lab.open();
    lab.reconcile(&mut b, &[]);
    // An admin adds a /28 by hand; our /29 inside it would overlap, so the kernel
    // refuses the batch. The backend re-reads the sets, drops the stranger and
    // applies the ban.
    lab.nft(&[
        "add",
        "element",
        "inet",
        "log2drop",
        "ban4",
        "{ 198.51.100.0/28 }",
    ]);
    lab.assert_dropped(BYSTANDER_V4);
    lab.apply(
        &mut b,
        &[Decision::Ban(ban("198.51.100.0/29", in_secs(600)))],
    );
    lab.assert_dropped(OFFENDER_V4);
    lab.assert_replies(BYSTANDER_V4);
    assert_eq!(b.element_counts().prefixes, [1, 0]);
}

#[test]
fn a_foreign_table_of_the_same_name_is_refused() {
    let Some(lab) = Lab::new("a_foreign_table_of_the_same_name_is_refused") else {
        return;
    };
    lab.nft(&["add", "table", "inet", "log2drop"]);
    lab.nft(&["add", "chain", "inet", "log2drop", "mine"]);
    let err = {
        let _in = lab.server.enter();
        NftablesBackend::open(&lab.config()).expect_err("must refuse a foreign table")
    };
    assert!(
        matches!(err, NftError::NotOurTable { .. }),
        "{}",
        chain(&err)
    );
    assert!(
        chain(&err).contains("not created by log2drop"),
        "{}",
        chain(&err)
    );
    let flush = {
        let _in = lab.server.enter();
        NftablesBackend::flush(&lab.config())
    };
    assert!(matches!(flush, Err(NftError::NotOurTable { .. })));
    let listed = lab.nft(&["list", "table", "inet", "log2drop"]);
    assert!(
        listed.contains("chain mine"),
        "foreign table was changed:\n{listed}"
    );
}

#[test]
fn flush_removes_only_our_table() {
    let Some(lab) = Lab::new("flush_removes_only_our_table") else {
        return;
    };
    lab.nft(&["add", "table", "inet", "user"]);
    lab.nft(&["add", "set", "inet", "user", "keep", "{ type ipv4_addr; }"]);
    let mut b = lab.open();
    lab.apply(&mut b, &[Decision::Ban(ban(OFFENDER_V4, None))]);
    lab.assert_dropped(OFFENDER_V4);
    drop(b);
    let gone = {
        let _in = lab.server.enter();
        NftablesBackend::flush(&lab.config()).unwrap_or_else(|e| panic!("flush: {}", chain(&e)))
    };
    assert_eq!(gone, 1);
    lab.assert_replies(OFFENDER_V4);
    let ruleset = lab.nft(&["list", "ruleset"]);
    assert!(
        !ruleset.contains("log2drop"),
        "our table is still there:\n{ruleset}"
    );
    assert!(
        ruleset.contains("table inet user"),
        "the user's table went:\n{ruleset}"
    );
    // Flushing again finds nothing.
    let _in = lab.server.enter();
    assert_eq!(NftablesBackend::flush(&lab.config()).expect("flush"), 0);
}

#[test]
fn ingress_hook_with_reject_and_counter() {
    let Some(lab) = Lab::new("ingress_hook_with_reject_and_counter") else {
        return;
    };
    let mut cfg = lab.config();
    cfg.hook = NftHook::Ingress;
    cfg.interfaces = vec![lab.veth.a().ifname.clone()];
    cfg.action = NftAction::Reject;
    cfg.counter = true;
    let mut b = lab.open_with(&cfg);
    lab.reconcile(&mut b, &[]);
    lab.apply(
        &mut b,
        &[
            Decision::Ban(ban(OFFENDER_V4, None)),
            Decision::Ban(ban(OFFENDER_V6, None)),
        ],
    );
    lab.assert_dropped(OFFENDER_V4);
    lab.assert_dropped(OFFENDER_V6);
    lab.assert_replies(BYSTANDER_V4);
    let listed = lab.nft(&["list", "table", "netdev", "log2drop"]);
    assert!(listed.contains("hook ingress"), "{listed}");
    assert!(listed.contains("reject"), "{listed}");
    let counts = {
        let _in = lab.server.enter();
        b.rule_counter().expect("counter").expect("counter enabled")
    };
    assert!(counts.packets >= 2, "counter saw {counts:?}");
    assert!(counts.bytes > 0);

    // Switching back to the input hook removes the stale netdev table, keeps nothing
    // of it, and the bans come back through reconcile.
    drop(b);
    let mut b = lab.open();
    let report = lab.reconcile(&mut b, &[ban(OFFENDER_V4, None)]);
    assert_eq!(report.added, 1);
    let ruleset = lab.nft(&["list", "ruleset"]);
    assert!(
        !ruleset.contains("netdev"),
        "stale netdev table left:\n{ruleset}"
    );
    lab.assert_dropped(OFFENDER_V4);
}

/// Single addresses stay in one set (one lookup per packet) until a family has more
/// than `SHARD_ABOVE`; then they move to the shards (whose read-back at a restart is
/// cheap) without a packet passing, and a restart with few left moves them back.
#[test]
fn many_single_addresses_move_to_the_shards_and_back() {
    let Some(lab) = Lab::new("many_single_addresses_move_to_the_shards_and_back") else {
        return;
    };
    let mut cfg = lab.config();
    cfg.counter = true;
    let mut b = lab.open_with(&cfg);
    let mut active = measure::bulk_bans(SHARD_ABOVE, SystemTime::now(), Duration::from_secs(600));
    active.push(ban(OFFENDER_V4, in_secs(600)));
    lab.reconcile(&mut b, &active);
    assert!(!b.is_sharded());
    lab.assert_dropped(OFFENDER_V4);
    lab.assert_input_looks_in("@ban4_all", "@shard4");

    // One more IPv6 address crosses the threshold.
    lab.apply(&mut b, &[Decision::Ban(ban(OFFENDER_V6, None))]);
    assert!(b.is_sharded());
    assert_eq!(b.element_counts().addresses, [1, SHARD_ABOVE + 1]);
    lab.assert_dropped(OFFENDER_V4);
    lab.assert_dropped(OFFENDER_V6);
    lab.assert_replies(BYSTANDER_V4);
    lab.assert_replies(BYSTANDER_V6);
    lab.assert_input_looks_in("@shard4", "@ban4_all");
    assert!(lab.set_holds("ban4_7", OFFENDER_V4));
    assert!(!lab.set_holds("ban4_all", OFFENDER_V4));
    let counted = b
        .rule_counter()
        .unwrap_or_else(|e| panic!("rule_counter: {}", chain(&e)))
        .expect("counter enabled");
    // One ping dropped before the move and two after: the count survives the rules
    // being replaced.
    assert!(counted.packets >= 3, "{counted:?}");

    // A restart with two bans left: back into one set each.
    drop(b);
    let mut b = lab.open_with(&cfg);
    lab.reconcile(
        &mut b,
        &[ban(OFFENDER_V4, in_secs(600)), ban(OFFENDER_V6, None)],
    );
    assert!(!b.is_sharded());
    assert_eq!(b.element_counts().addresses, [1, 1]);
    lab.assert_dropped(OFFENDER_V4);
    lab.assert_dropped(OFFENDER_V6);
    lab.assert_replies(BYSTANDER_V6);
    lab.assert_input_looks_in("@ban4_all", "@shard4");
    assert!(lab.set_holds("ban4_all", OFFENDER_V4));
}

/// A backend opened in one namespace keeps working on that namespace's table when
/// the caller has moved elsewhere: applying, reconciling and reading the counter all
/// go through the socket it opened, not one of the caller's namespace.
#[test]
fn every_operation_uses_the_namespace_it_was_opened_in() {
    let Some(lab) = Lab::new("every_operation_uses_the_namespace_it_was_opened_in") else {
        return;
    };
    let mut cfg = lab.config();
    cfg.counter = true;
    let mut b = lab.open_with(&cfg);
    // From here on the test thread stays in its own namespace.
    let outside = log2drop_tests::netns::current_netns_inode();
    b.reconcile(&[], SystemTime::now())
        .unwrap_or_else(|e| panic!("reconcile: {}", chain(&e)));
    b.apply(
        &[Decision::Ban(ban(OFFENDER_V4, in_secs(600)))],
        SystemTime::now(),
    )
    .unwrap_or_else(|e| panic!("apply: {}", chain(&e)));
    lab.assert_dropped(OFFENDER_V4);
    lab.assert_dropped(OFFENDER_V4);
    lab.assert_replies(BYSTANDER_V4);
    assert_eq!(outside, log2drop_tests::netns::current_netns_inode());
    let counts = b
        .rule_counter()
        .unwrap_or_else(|e| panic!("rule_counter: {}", chain(&e)))
        .expect("counter enabled");
    assert!(
        counts.packets >= 2,
        "the drop rule's counter read from outside the namespace: {counts:?}"
    );
    let totals = b
        .totals()
        .unwrap_or_else(|e| panic!("totals: {}", chain(&e)))
        .expect("counter enabled");
    assert!(totals.packets >= counts.packets, "{totals:?} < {counts:?}");
}

/// Measures bulk inserts and the restart reconcile. Not a timed assertion:
/// `cargo test -p log2drop-tests --test nftables_backend -- --ignored --nocapture`.
#[test]
#[ignore = "measurement; run with --ignored --nocapture"]
fn measure_bulk_insert_and_restart() {
    if !require_root("measure_bulk_insert_and_restart") {
        return;
    }
    let ns = NetNs::new();
    let _in = ns.enter();
    let cfg = NftablesConfig {
        table: "log2drop".into(),
        hook: NftHook::Input,
        priority: -10,
        interfaces: Vec::new(),
        action: NftAction::Drop,
        counter: false,
    };
    // LOG2DROP_NFT_BENCH_SIZES=100000,500000 overrides the sizes measured.
    let sizes: Vec<usize> = std::env::var("LOG2DROP_NFT_BENCH_SIZES")
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![100_000, 1_000_000]);
    for n in sizes {
        let m = measure::insert_and_restart(&cfg, n)
            .unwrap_or_else(|e| panic!("measure: {}", chain(&e)));
        eprintln!(
            "nftables: {n} bans inserted into an empty set in {:.2?} ({:.0} elements/s); \
             restart (open + reconcile) in {:.2?}: {:?}\n  insert {:?}\n  restart {:?}",
            m.insert,
            m.insert_rate(),
            m.restart,
            m.restart_report,
            m.insert_timing,
            m.restart_timing
        );
        assert_eq!(m.restart_report.kept, n);
    }
    let took = measure::apply_in_batches(&cfg, 100_000, 1000)
        .unwrap_or_else(|e| panic!("apply: {}", chain(&e)));
    eprintln!(
        "nftables: 100000 bans through apply in batches of 1000 in {took:.2?} ({:.0} bans/s)",
        100_000.0 / took.as_secs_f64()
    );
}

/// Drops CAP_NET_ADMIN from the calling thread's effective set (capabilities are
/// per thread on Linux), so only this test thread loses it.
fn drop_net_admin_in_this_thread() {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
    const CAP_NET_ADMIN: u32 = 12;
    let mut header = Header {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [Data::default(); 2];
    // SAFETY: capget/capset with a v3 header and two data structs, as the ABI asks.
    let rc = unsafe { libc::syscall(libc::SYS_capget, &raw mut header, data.as_mut_ptr()) };
    assert_eq!(rc, 0, "capget: {}", std::io::Error::last_os_error());
    data[0].effective &= !(1 << CAP_NET_ADMIN);
    // SAFETY: as above.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &raw mut header, data.as_ptr()) };
    assert_eq!(rc, 0, "capset: {}", std::io::Error::last_os_error());
}

#[test]
fn without_cap_net_admin_the_error_says_so() {
    let Some(lab) = Lab::new("without_cap_net_admin_the_error_says_so") else {
        return;
    };
    let cfg = lab.config();
    let server = &lab.server;
    let err = std::thread::scope(|s| {
        s.spawn(|| {
            let _in = server.enter();
            drop_net_admin_in_this_thread();
            NftablesBackend::open(&cfg).expect_err("must fail without CAP_NET_ADMIN")
        })
        .join()
        .expect("thread")
    });
    assert!(
        matches!(err, NftError::NotPermitted { .. }),
        "{}",
        chain(&err)
    );
    assert!(chain(&err).contains("CAP_NET_ADMIN"), "{}", chain(&err));
}
