//! The PF backend's logic against the crate's fake device, which applies the
//! kernel's table rules to the real encoding: batching, reconcile in one
//! replacement, agent-owned deadlines, a removed table, state killing.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ipnet::IpNet;
use log2drop_openbsd::pf::Pf;
use log2drop_openbsd::pf::fake::FakePf;
use log2drop_openbsd::pf::sys::{
    DIOCKILLSTATES, DIOCRADDADDRS, DIOCRDELADDRS, DIOCRGETADDRS, DIOCRSETADDRS,
};

use super::PfBackend;
use crate::backend::Backend;
use crate::engine::{Ban, Decision, Origin};

const TABLE: &str = "log2drop";

fn net(s: &str) -> IpNet {
    s.parse().expect("test prefix")
}

fn ban(target: &str, until: Option<SystemTime>) -> Ban {
    Ban {
        target: net(target),
        jail: Arc::from("ssh"),
        since: SystemTime::UNIX_EPOCH,
        until,
        origin: Origin::Jail,
        reason: None,
        forced: false,
        node: None,
    }
}

fn backend(dev: FakePf, kill_states: bool) -> PfBackend<Pf<FakePf>> {
    PfBackend::new(Pf::with_device(dev), TABLE, kill_states).expect("open")
}

fn table(b: &PfBackend<Pf<FakePf>>) -> Vec<IpNet> {
    let mut nets = b.ops().device().nets(TABLE).expect("table exists");
    nets.sort_unstable();
    nets
}

fn calls(b: &PfBackend<Pf<FakePf>>, request: libc::c_ulong) -> usize {
    b.ops().device().count_calls(request)
}

#[test]
fn open_creates_a_missing_table_and_keeps_an_existing_one() {
    let b = backend(FakePf::new(), false);
    assert_eq!(table(&b), Vec::<IpNet>::new());
    let mut dev = FakePf::new().with_table(TABLE);
    dev.insert(TABLE, net("192.0.2.1/32"), false);
    let b = backend(dev, false);
    assert_eq!(table(&b), [net("192.0.2.1/32")]);
}

#[test]
fn a_batch_is_one_add_and_one_delete() {
    let now = SystemTime::now();
    let later = Some(now + Duration::from_secs(3600));
    let mut b = backend(FakePf::new(), false);
    let first: Vec<Decision> = ["192.0.2.1/32", "192.0.2.2/32", "2001:db8:1::/64"]
        .iter()
        .map(|t| Decision::Ban(ban(t, later)))
        .collect();
    b.apply(&first, now).expect("bans");
    assert_eq!(calls(&b, DIOCRADDADDRS), 1);
    assert_eq!(table(&b).len(), 3);
    let second = vec![
        Decision::Unban(ban("192.0.2.1/32", later)),
        Decision::Unban(ban("192.0.2.2/32", later)),
        Decision::Ban(ban("198.51.100.0/24", later)),
    ];
    b.apply(&second, now).expect("mixed batch");
    assert_eq!(calls(&b, DIOCRADDADDRS), 2);
    assert_eq!(calls(&b, DIOCRDELADDRS), 1);
    assert_eq!(table(&b), [net("198.51.100.0/24"), net("2001:db8:1::/64")]);
}

#[test]
fn the_last_decision_on_a_target_in_a_batch_wins() {
    let now = SystemTime::now();
    let later = Some(now + Duration::from_secs(60));
    let mut b = backend(FakePf::new(), false);
    b.apply(
        &[
            Decision::Ban(ban("192.0.2.7/32", later)),
            Decision::Unban(ban("192.0.2.7/32", later)),
            Decision::Unban(ban("192.0.2.8/32", later)),
            Decision::Ban(ban("192.0.2.8/32", later)),
        ],
        now,
    )
    .expect("batch");
    assert_eq!(table(&b), [net("192.0.2.8/32")]);
}

#[test]
fn reconcile_is_one_replacement_without_expired_bans() {
    let now = SystemTime::now();
    let mut dev = FakePf::new().with_table(TABLE);
    dev.insert(TABLE, net("192.0.2.1/32"), false); // still banned
    dev.insert(TABLE, net("192.0.2.99/32"), false); // no ban backs it
    let mut b = backend(dev, false);
    let active = vec![
        ban("192.0.2.1/32", Some(now + Duration::from_secs(60))),
        ban("198.51.100.0/24", None),
        ban("203.0.113.5/32", Some(now - Duration::from_secs(1))), // expired while down
    ];
    let report = b.reconcile(&active, now).expect("reconcile");
    assert_eq!(calls(&b, DIOCRSETADDRS), 1);
    assert_eq!(calls(&b, DIOCRADDADDRS) + calls(&b, DIOCRDELADDRS), 0);
    assert_eq!(table(&b), [net("192.0.2.1/32"), net("198.51.100.0/24")]);
    assert_eq!((report.added, report.removed, report.kept), (1, 1, 1));
}

#[test]
fn gc_removes_entries_whose_deadline_passed_in_one_delete() {
    let now = SystemTime::now();
    let mut b = backend(FakePf::new(), false);
    let soon = Some(now + Duration::from_secs(10));
    b.apply(
        &[
            Decision::Ban(ban("192.0.2.1/32", soon)),
            Decision::Ban(ban("192.0.2.2/32", soon)),
            Decision::Ban(ban("192.0.2.3/32", None)),
        ],
        now,
    )
    .expect("bans");
    assert_eq!(b.gc(now).expect("gc"), 0);
    assert_eq!(calls(&b, DIOCRDELADDRS), 0);
    let after = now + Duration::from_secs(11);
    assert_eq!(b.gc(after).expect("gc"), 2);
    assert_eq!(calls(&b, DIOCRDELADDRS), 1);
    assert_eq!(table(&b), [net("192.0.2.3/32")]);
    assert_eq!(b.gc(after).expect("gc"), 0);
}

#[test]
fn a_removed_table_is_recreated_with_every_ban() {
    let now = SystemTime::now();
    let later = Some(now + Duration::from_secs(600));
    let mut b = backend(FakePf::new(), false);
    b.apply(&[Decision::Ban(ban("192.0.2.1/32", later))], now)
        .expect("ban");
    // pfctl -t log2drop -T kill
    let mut dev = std::mem::take(b.ops.device_mut());
    dev.kill_table(TABLE);
    *b.ops.device_mut() = dev;
    b.apply(&[Decision::Ban(ban("192.0.2.2/32", later))], now)
        .expect("ban after the table went");
    assert_eq!(table(&b), [net("192.0.2.1/32"), net("192.0.2.2/32")]);
    assert_eq!(calls(&b, DIOCRSETADDRS), 1);
}

#[test]
fn states_of_newly_banned_hosts_are_killed_only_when_asked() {
    let now = SystemTime::now();
    let later = Some(now + Duration::from_secs(600));
    let server = "198.51.100.10".parse().expect("addr");
    let attacker = "192.0.2.66".parse().expect("addr");
    let mut dev = FakePf::new();
    dev.add_state(attacker, server);
    dev.add_state(server, attacker);
    let mut b = backend(dev, true);
    b.apply(
        &[
            Decision::Ban(ban("192.0.2.66/32", later)),
            Decision::Ban(ban("203.0.113.0/24", later)),
        ],
        now,
    )
    .expect("ban");
    assert!(b.ops().device().states().is_empty());
    // Prefix bans kill nothing; a ban already held is not new.
    let kills = calls(&b, DIOCKILLSTATES);
    assert!(kills >= 1);
    b.apply(&[Decision::Ban(ban("192.0.2.66/32", later))], now)
        .expect("extend");
    assert_eq!(calls(&b, DIOCKILLSTATES), kills);

    let mut dev = FakePf::new();
    dev.add_state(attacker, server);
    let mut b = backend(dev, false);
    b.apply(&[Decision::Ban(ban("192.0.2.66/32", later))], now)
        .expect("ban");
    assert_eq!(b.ops().device().states().len(), 1);
    assert_eq!(calls(&b, DIOCKILLSTATES), 0);
}

#[test]
fn the_backend_never_lists_the_table() {
    // DIOCRGETADDRS is what pledge and the helper's cost model rule out on the
    // hot path: the backend works from what it holds.
    let now = SystemTime::now();
    let mut b = backend(FakePf::new(), true);
    b.reconcile(&[ban("192.0.2.1/32", None)], now)
        .expect("reconcile");
    b.apply(&[Decision::Unban(ban("192.0.2.1/32", None))], now)
        .expect("unban");
    b.gc(now).expect("gc");
    assert_eq!(calls(&b, DIOCRGETADDRS), 0);
}

#[test]
fn a_running_backend_flushes_through_its_own_client() {
    let now = SystemTime::now();
    let mut b = backend(FakePf::new(), false);
    b.apply(&[Decision::Ban(ban("192.0.2.1/32", None))], now)
        .expect("ban");
    assert_eq!(b.flush_running().expect("flush"), Some(1));
    assert!(table(&b).is_empty());
    // Nothing held any more: gc and a later unban have nothing to delete.
    assert_eq!(b.gc(now + Duration::from_secs(1)).expect("gc"), 0);
}
