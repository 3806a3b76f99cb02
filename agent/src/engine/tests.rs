//! Engine tests, all on a fake clock: thresholds, sliding windows, allowlist
//! precedence, manual bans, expiry, restore and bounded memory.

use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use proptest::prelude::*;

use super::*;
use crate::config;

/// Test time 0 (seconds since the epoch); the decision tests share it.
pub(super) const T0: u64 = 1_750_000_000;

/// `secs` after [`T0`].
pub(super) fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(T0 + secs)
}

pub(super) fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

pub(super) fn net(s: &str) -> IpNet {
    s.parse().expect("test net")
}

/// An engine for one jail `ssh` fed by filter `f`, plus jail `web` fed by `g` and
/// `f` (so `f` offences count in both).
fn engine_with(maxretry: u32, findtime: &str, bantime: &str, allow: &str, extra: &str) -> Engine {
    let text = format!(
        r#"
[agent]
allow = [{allow}]
{extra}
[backends.dry-run]
[backends.xdp]
interfaces = ["eth0"]
[filters.f]
regex = ['f <HOST>$']
[filters.g]
regex = ['g <HOST>$']
[sources.s]
path = "/var/log/s.log"
filters = ["f", "g"]
[jails.ssh]
filters = ["f"]
maxretry = {maxretry}
findtime = "{findtime}"
bantime = "{bantime}"
backends = ["xdp"]
[jails.web]
filters = ["g", "f"]
maxretry = 100
findtime = "1h"
bantime = "1d"
"#
    );
    let cfg = config::parse(&text, Path::new("test.toml")).unwrap_or_else(|e| panic!("{e}"));
    Engine::from_config(&cfg).expect("engine")
}

fn engine(maxretry: u32) -> Engine {
    engine_with(maxretry, "10m", "1h", r#""192.0.2.0/24""#, "")
}

fn offend(e: &mut Engine, filter: &str, addr: &str, secs: u64) -> Vec<Decision> {
    let mut out = Vec::new();
    e.offence(filter, ip(addr), at(secs), &mut out);
    out
}

fn the_ban(decisions: &[Decision]) -> &Ban {
    match decisions {
        [Decision::Ban(b)] => b,
        other => panic!("expected one ban, got {other:?}"),
    }
}

#[test]
fn bans_at_maxretry_within_findtime() {
    let mut e = engine(3);
    assert!(offend(&mut e, "f", "203.0.113.4", 0).is_empty());
    assert!(offend(&mut e, "f", "203.0.113.4", 1).is_empty());
    let out = offend(&mut e, "f", "203.0.113.4", 2);
    let ban = the_ban(&out);
    assert_eq!(ban.target, net("203.0.113.4/32"));
    assert_eq!(&*ban.jail, "ssh");
    assert_eq!(ban.origin, Origin::Jail);
    assert_eq!(ban.since, at(2));
    assert_eq!(ban.until, Some(at(2 + 3600)));
    assert_eq!(e.bans().count(), 1);
    assert_eq!(e.next_expiry(), Some(at(3602)));
}

#[test]
fn jail_ban_names_its_filter_and_offence_span() {
    let mut e = engine(3);
    offend(&mut e, "f", "203.0.113.4", 10);
    offend(&mut e, "f", "203.0.113.4", 20);
    let out = offend(&mut e, "f", "203.0.113.4", 30);
    let reason = the_ban(&out)
        .reason
        .clone()
        .expect("jail bans carry a reason");
    assert_eq!(&*reason.filter, "f");
    assert_eq!(reason.first_offence, at(10));
    assert_eq!(reason.last_offence, at(30));
    let manual = e.ban(net("203.0.113.0/24"), None, at(40)).expect("manual");
    assert!(matches!(manual, Decision::Ban(Ban { reason: None, .. })));
}

#[test]
fn jail_ban_carries_the_captures_of_the_offence_that_fired() {
    let mut e = engine(2);
    let user = |u: &str| {
        let mut c = crate::filter::Captures::new();
        c.push_named("user", u.as_bytes());
        c
    };
    let mut out = Vec::new();
    e.offence_with("f", ip("203.0.113.4"), at(10), &user("admin"), &mut out);
    assert!(out.is_empty());
    e.offence_with("f", ip("203.0.113.4"), at(11), &user("root"), &mut out);
    let reason = the_ban(&out).reason.clone().expect("reason");
    assert_eq!(reason.captures.user(), Some("root"));
    // `bans` rebuilds them from the table.
    let listed = e.bans().next().expect("one ban");
    assert_eq!(listed.reason.expect("reason").captures.user(), Some("root"));
    assert_eq!(e.jails_of("f"), "ssh,web");
    assert_eq!(e.jails_of("nope"), "");
}

#[test]
fn maxretry_one_bans_on_first_offence() {
    let mut e = engine(1);
    the_ban(&offend(&mut e, "f", "2001:db8::9", 5));
    assert!(e.is_banned(ip("2001:db8::9")));
}

#[test]
fn addresses_are_counted_separately() {
    let mut e = engine(2);
    assert!(offend(&mut e, "f", "203.0.113.4", 0).is_empty());
    assert!(offend(&mut e, "f", "203.0.113.5", 1).is_empty());
    assert!(offend(&mut e, "f", "2001:db8::4", 2).is_empty());
    assert_eq!(e.bans().count(), 0);
}

#[test]
fn window_slides() {
    let mut e = engine(3);
    assert!(offend(&mut e, "f", "203.0.113.4", 0).is_empty());
    assert!(offend(&mut e, "f", "203.0.113.4", 300).is_empty());
    // 601 s later the first offence is out of the 600 s window.
    assert!(offend(&mut e, "f", "203.0.113.4", 601).is_empty());
    let out = offend(&mut e, "f", "203.0.113.4", 700);
    assert_eq!(the_ban(&out).since, at(700));
}

#[test]
fn window_edge_is_inclusive() {
    let mut e = engine(3);
    offend(&mut e, "f", "203.0.113.4", 0);
    offend(&mut e, "f", "203.0.113.4", 300);
    // Exactly findtime after the first offence: still within the window.
    the_ban(&offend(&mut e, "f", "203.0.113.4", 600));
}

#[test]
fn mapped_and_plain_forms_count_together() {
    let mut e = engine(2);
    offend(&mut e, "f", "::ffff:203.0.113.4", 0);
    let out = offend(&mut e, "f", "203.0.113.4", 1);
    assert_eq!(the_ban(&out).target, net("203.0.113.4/32"));
}

#[test]
fn allowlisted_addresses_are_never_banned() {
    let mut e = engine(1);
    for i in 0..10 {
        assert!(offend(&mut e, "f", "192.0.2.77", i).is_empty());
        assert!(offend(&mut e, "f", "::ffff:192.0.2.78", i).is_empty());
        assert!(offend(&mut e, "f", "127.0.0.1", i).is_empty());
        assert!(offend(&mut e, "f", "::1", i).is_empty());
    }
    assert_eq!(e.bans().count(), 0);
    assert_eq!(e.stats().allowlisted, 40);
    assert_eq!(e.stats().tracked, 0);
}

/// Issue 16, item 7: link-local, multicast, unspecified and broadcast sources were
/// banned like any other (`fe80::/64`, `ff02::/64`, `::`, `0.0.0.0`, `224.0.0.1`).
#[test]
fn special_purpose_sources_are_refused_and_counted() {
    let mut e = engine(1);
    let special = [
        "fe80::1",
        "ff02::1",
        "::",
        "0.0.0.0",
        "224.0.0.1",
        "255.255.255.255",
        "169.254.1.1",
        "::ffff:224.0.0.1",
    ];
    for a in special {
        assert!(offend(&mut e, "f", a, 0).is_empty(), "{a} was banned");
    }
    assert_eq!(e.bans().count(), 0);
    assert_eq!(e.stats().special_addresses, special.len() as u64);
    assert_eq!(e.stats().tracked, 0);
    // Ordinary neighbours of those ranges still count.
    assert_eq!(
        the_ban(&offend(&mut e, "f", "2001:db8::1", 1))
            .target
            .addr(),
        ip("2001:db8::")
    );
    assert!(!offend(&mut e, "f", "198.51.100.255", 1).is_empty());
}

#[test]
fn loopback_is_allowlisted_even_when_allow_omits_it() {
    let mut e = engine_with(1, "10m", "1h", "", "");
    assert!(offend(&mut e, "f", "127.0.0.1", 0).is_empty());
    assert!(offend(&mut e, "f", "::1", 0).is_empty());
    assert!(e.ban(net("127.0.0.0/8"), None, at(0)).is_err());
}

#[test]
fn banned_address_is_not_banned_again() {
    let mut e = engine(2);
    offend(&mut e, "f", "203.0.113.4", 0);
    the_ban(&offend(&mut e, "f", "203.0.113.4", 1));
    for i in 2..20 {
        assert!(offend(&mut e, "f", "203.0.113.4", i).is_empty());
    }
    assert_eq!(e.bans().count(), 1);
    assert_eq!(e.stats().already_banned, 18);
    assert_eq!(e.stats().jail_bans, 1);
    // The original deadline stands: no extension from ignored offences.
    assert_eq!(e.next_expiry(), Some(at(3601)));
}

#[test]
fn counting_restarts_after_a_ban_ends() {
    let mut e = engine(2);
    offend(&mut e, "f", "203.0.113.4", 0);
    the_ban(&offend(&mut e, "f", "203.0.113.4", 1));
    let mut out = Vec::new();
    e.expire(at(3601), &mut out);
    assert_eq!(out.len(), 1);
    // One offence after the ban is not enough: the window was cleared at the ban.
    assert!(offend(&mut e, "f", "203.0.113.4", 3602).is_empty());
    the_ban(&offend(&mut e, "f", "203.0.113.4", 3603));
}

#[test]
fn unknown_filter_is_ignored() {
    let mut e = engine(1);
    assert!(offend(&mut e, "nope", "203.0.113.4", 0).is_empty());
    assert_eq!(e.stats().tracked, 0);
}

#[test]
fn a_filter_feeds_every_jail_that_lists_it() {
    // Filter `g` feeds only `web` (maxretry 100); `f` feeds `ssh` and `web`.
    let mut e = engine(3);
    for i in 0..99 {
        assert!(offend(&mut e, "g", "198.51.100.1", i).is_empty());
    }
    // The 100th offence for web comes through filter f.
    let out = offend(&mut e, "f", "198.51.100.1", 99);
    assert_eq!(&*the_ban(&out).jail, "web");
    assert_eq!(the_ban(&out).until, Some(at(99 + 86_400)));
}

#[test]
fn expiry_unbans_on_time() {
    let mut e = engine(1);
    the_ban(&offend(&mut e, "f", "203.0.113.4", 0));
    the_ban(&offend(&mut e, "f", "203.0.113.5", 10));
    let mut out = Vec::new();
    e.expire(at(3599), &mut out);
    assert!(out.is_empty());
    e.expire(at(3600), &mut out);
    match out.as_slice() {
        [Decision::Unban(b)] => assert_eq!(b.target, net("203.0.113.4/32")),
        other => panic!("expected one unban, got {other:?}"),
    }
    assert_eq!(e.next_expiry(), Some(at(3610)));
    out.clear();
    e.expire(at(1_000_000), &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(e.next_expiry(), None);
    assert_eq!(e.bans().count(), 0);
    assert_eq!(e.stats().expired, 2);
}

#[test]
fn manual_ban_permanent_and_timed() {
    let mut e = engine(3);
    let d = e.ban(net("203.0.113.0/24"), None, at(0)).expect("ban");
    let Decision::Ban(b) = d else {
        panic!("not a ban")
    };
    assert_eq!(b.until, None);
    assert_eq!(b.origin, Origin::Manual);
    assert_eq!(&*b.jail, MANUAL_JAIL);
    assert_eq!(e.next_expiry(), None, "permanent bans have no deadline");
    // Addresses inside the prefix are banned: their offences are ignored.
    assert!(e.is_banned(ip("203.0.113.99")));
    for i in 0..5 {
        assert!(offend(&mut e, "f", "203.0.113.99", i).is_empty());
    }
    let d = e
        .ban(
            net("198.51.100.7/32"),
            Some(Duration::from_secs(90)),
            at(10),
        )
        .expect("ban");
    assert!(matches!(d, Decision::Ban(ref b) if b.until == Some(at(100))));
    assert_eq!(e.next_expiry(), Some(at(100)));
}

#[test]
fn manual_ban_replaces_an_existing_ban_on_the_same_target() {
    let mut e = engine(1);
    the_ban(&offend(&mut e, "f", "203.0.113.4", 0));
    e.ban(net("203.0.113.4/32"), None, at(5)).expect("ban");
    assert_eq!(e.bans().count(), 1);
    assert_eq!(e.next_expiry(), None);
}

#[test]
fn manual_ban_refused_on_allowlisted_target() {
    let mut e = engine(3);
    let err = e
        .ban(net("192.0.2.5/32"), None, at(0))
        .expect_err("allowlisted");
    assert_eq!(
        err,
        EngineError::Allowlisted {
            target: "192.0.2.5".into(),
            entry: "192.0.2.0/24".into()
        }
    );
    // A wider prefix that would cover the allowlisted range is refused too.
    assert!(e.ban(net("192.0.0.0/16"), None, at(0)).is_err());
    assert!(e.ban(net("::ffff:192.0.2.9/128"), None, at(0)).is_err());
    assert_eq!(e.bans().count(), 0);
}

#[test]
fn manual_ban_of_zero_length_is_refused() {
    let mut e = engine(3);
    assert!(matches!(
        e.ban(net("203.0.113.4/32"), Some(Duration::ZERO), at(0)),
        Err(EngineError::ZeroDuration { .. })
    ));
}

#[test]
fn unban_lifts_exactly_the_target() {
    let mut e = engine(3);
    e.ban(net("203.0.113.0/24"), Some(Duration::from_secs(60)), at(0))
        .expect("ban");
    assert_eq!(e.unban(net("203.0.113.4/32")), None);
    match e.unban(net("203.0.113.0/24")) {
        Some(Decision::Unban(b)) => assert_eq!(b.target, net("203.0.113.0/24")),
        other => panic!("expected an unban, got {other:?}"),
    }
    assert!(!e.is_banned(ip("203.0.113.4")));
    assert_eq!(e.next_expiry(), None);
    assert_eq!(e.unban(net("203.0.113.0/24")), None);
}

fn stored(target: &str, jail: &str, until: Option<u64>) -> Ban {
    Ban {
        target: net(target),
        jail: Arc::from(jail),
        since: at(0),
        until: until.map(at),
        origin: Origin::Jail,
        reason: None,
        forced: false,
        node: None,
    }
}

#[test]
fn restore_drops_expired_and_allowlisted_bans() {
    let mut e = engine(3);
    e.restore(
        vec![
            stored("203.0.113.1/32", "ssh", Some(50)),
            stored("203.0.113.2/32", "ssh", Some(100)),
            stored("203.0.113.3/32", "ssh", Some(200)),
            stored("2001:db8::/64", "old-jail", None),
            stored("192.0.2.9/32", "ssh", Some(500)),
        ],
        at(100),
    );
    let mut targets: Vec<IpNet> = e.bans().map(|b| b.target).collect();
    targets.sort();
    assert_eq!(targets, vec![net("203.0.113.3/32"), net("2001:db8::/64")]);
    assert_eq!(e.next_expiry(), Some(at(200)));
    assert!(e.is_banned(ip("2001:db8::1234")));
    // Restored bans expire like any other.
    let mut out = Vec::new();
    e.expire(at(200), &mut out);
    assert_eq!(out.len(), 1);
}

#[test]
fn restore_keeps_the_longer_of_duplicate_bans() {
    let mut e = engine(3);
    e.restore(
        vec![
            stored("203.0.113.1/32", "ssh", Some(500)),
            stored("203.0.113.1/32", "ssh", Some(300)),
        ],
        at(0),
    );
    assert_eq!(e.bans().count(), 1);
    assert_eq!(e.next_expiry(), Some(at(500)));
}

#[test]
fn jail_backends_lists_configured_backends() {
    let e = engine(3);
    assert_eq!(e.jail_backends("ssh"), ["xdp".to_owned()]);
    assert!(e.jail_backends("web").is_empty());
    assert!(e.jail_backends(MANUAL_JAIL).is_empty());
    assert!(e.jail_backends("gone").is_empty());
}

#[test]
fn tracked_addresses_are_capped_least_recently_seen_first() {
    let mut e = engine_with(2, "10m", "1h", "", "max_tracked = 2");
    offend(&mut e, "f", "203.0.113.1", 0);
    offend(&mut e, "f", "203.0.113.2", 1);
    offend(&mut e, "f", "203.0.113.1", 2); // bans .1 (and forgets it)
    assert_eq!(e.bans().count(), 1);
    offend(&mut e, "f", "203.0.113.3", 3);
    offend(&mut e, "f", "203.0.113.4", 4); // evicts .2, the least recently seen
    assert_eq!(e.stats().tracked, 2);
    assert_eq!(e.stats().evicted, 1);
    // .2 was forgotten: one more offence starts from zero.
    assert!(offend(&mut e, "f", "203.0.113.2", 5).is_empty());
    // .3 was evicted by .2; .4 is still tracked and gets banned.
    the_ban(&offend(&mut e, "f", "203.0.113.4", 6));
}

#[test]
fn sweep_forgets_aged_out_windows() {
    let mut e = engine(5);
    for i in 0..100u8 {
        offend(&mut e, "f", &format!("198.51.100.{i}"), u64::from(i));
    }
    assert_eq!(e.stats().tracked, 100);
    let mut out = Vec::new();
    e.expire(at(200), &mut out);
    // `web` (findtime 1h) still holds them.
    assert_eq!(e.stats().tracked, 100);
    e.expire(at(100 + 3600 + 61), &mut out);
    assert_eq!(e.stats().tracked, 0);
    assert_eq!(e.tracker.len(), 0);
    assert!(out.is_empty());
}

#[test]
fn windows_hold_at_most_maxretry_times() {
    let mut e = engine_with(3, "10s", "1h", "", "");
    // One offence every 40 s never reaches 3 within 10 s for `ssh`, nor 100
    // within 1 h for `web`.
    for i in 0..150 {
        assert!(offend(&mut e, "f", "203.0.113.8", i * 40).is_empty());
        let hits = e.tracker.get(&ip("203.0.113.8")).expect("tracked");
        for (j, jail) in e.jails.iter().enumerate() {
            let n = hits.iter().filter(|h| usize::from(h.jail) == j).count();
            assert!(
                n < jail.threshold as usize,
                "{n} hits kept for {}",
                jail.name
            );
        }
    }
}

#[test]
fn allow_entries_are_validated_again() {
    let mut cfg = config::parse(
        "[backends.dry-run]\n[filters.f]\nregex=['<HOST>$']\n[sources.s]\npath='/x'\nfilters=['f']\n[jails.j]\nfilters=['f']\n",
        Path::new("t.toml"),
    )
    .expect("valid");
    cfg.agent.allow.push("not an address!".into());
    assert!(matches!(
        Engine::from_config(&cfg),
        Err(EngineError::Allow { .. })
    ));
}

fn arb_addr() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        (0u8..16).prop_map(|i| IpAddr::from([198, 51, 100, i])),
        (0u8..16).prop_map(|i| IpAddr::from([203, 0, 113, i])),
        (0u16..16).prop_map(|i| IpAddr::from([0x2001, 0xdb8, 0, 0, 0, 0, 0, i])),
        (0u8..16).prop_map(|i| IpAddr::from([
            0,
            0,
            0,
            0,
            0,
            0xffff,
            0xcb00,
            0x7100 | u16::from(i)
        ])),
    ]
}

fn arb_allow() -> impl Strategy<Value = String> {
    prop_oneof![
        (0u8..16, 28u8..=32).prop_map(|(i, l)| format!(
            "{}",
            IpNet::new(IpAddr::from([198, 51, 100, i]), l)
                .expect("len")
                .trunc()
        )),
        (0u8..16, 28u8..=32).prop_map(|(i, l)| format!(
            "{}",
            IpNet::new(IpAddr::from([203, 0, 113, i]), l)
                .expect("len")
                .trunc()
        )),
        (0u16..16, 124u8..=128).prop_map(|(i, l)| format!(
            "{}",
            IpNet::new(IpAddr::from([0x2001, 0xdb8, 0, 0, 0, 0, 0, i]), l)
                .expect("len")
                .trunc()
        )),
    ]
}

#[derive(Debug, Clone)]
enum Op {
    Offence(IpAddr, u64),
    ManualBan(IpAddr, u8),
    Expire(u64),
}

fn arb_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (arb_addr(), 0u64..120).prop_map(|(a, dt)| Op::Offence(a, dt)),
        1 => (arb_addr(), 0u8..=8).prop_map(|(a, shorter)| Op::ManualBan(a, shorter)),
        1 => (0u64..4000).prop_map(Op::Expire),
    ]
}

proptest! {
    #[test]
    fn no_ban_ever_intersects_the_allowlist(
        allow in proptest::collection::vec(arb_allow(), 0..6),
        ops in proptest::collection::vec(arb_op(), 1..300),
        maxretry in 1u32..4,
    ) {
        let allow_list = allow.iter().map(|a| format!("{a:?}")).collect::<Vec<_>>().join(", ");
        let mut e = engine_with(maxretry, "5m", "30m", &allow_list, "");
        let allowset = Allowlist::with_loopback(allow.iter().map(|a| net(a)));
        let mut now = 0u64;
        let mut out = Vec::new();
        for op in ops {
            match op {
                Op::Offence(a, dt) => {
                    now += dt;
                    e.offence("f", a, at(now), &mut out);
                }
                Op::ManualBan(a, shorter) => {
                    let len = if a.is_ipv4() { 32 - shorter } else { 128 - shorter };
                    let target = IpNet::new(a, len).expect("len").trunc();
                    match e.ban(target, Some(Duration::from_secs(600)), at(now)) {
                        Ok(d) => out.push(d),
                        Err(EngineError::Allowlisted { .. }) => {
                            prop_assert!(allowset.intersects(&target));
                        }
                        Err(other) => prop_assert!(false, "unexpected error {other}"),
                    }
                }
                Op::Expire(dt) => {
                    now += dt;
                    e.expire(at(now), &mut out);
                }
            }
        }
        for d in &out {
            if let Decision::Ban(b) = d {
                prop_assert!(!allowset.intersects(&b.target), "banned {}", b.target);
            }
        }
        for b in e.bans() {
            prop_assert!(!allowset.intersects(&b.target));
        }
    }

    /// Against a naive model for one jail: an address is banned exactly when
    /// `maxretry` of its offences since it was last banned fall within findtime.
    #[test]
    fn threshold_matches_a_naive_model(
        offences in proptest::collection::vec((0u8..4, 0u64..200), 1..200),
        maxretry in 1u32..5,
    ) {
        let mut e = engine_with(maxretry, "5m", "1w", "", "");
        let mut model: HashMap<u8, Vec<u64>> = HashMap::new();
        let mut banned: BTreeSet<u8> = BTreeSet::new();
        let mut now = 0u64;
        for (who, dt) in offences {
            now += dt;
            let addr = IpAddr::from([203, 0, 113, who]);
            let mut out = Vec::new();
            e.offence("f", addr, at(now), &mut out);
            let expect_ban = if banned.contains(&who) {
                false
            } else {
                let times = model.entry(who).or_default();
                times.push(now);
                let recent = times.iter().filter(|&&t| t + 300 >= now).count();
                if recent >= maxretry as usize {
                    banned.insert(who);
                    true
                } else {
                    false
                }
            };
            prop_assert_eq!(out.len(), usize::from(expect_ban), "at {} for .{}", now, who);
        }
    }
}

#[test]
fn manual_ban_under_a_jail_takes_its_bantime_and_unknown_jails_are_refused() {
    let mut e = engine(3);
    let req = |jail: Option<&str>, duration: Option<u64>| ManualBan {
        target: net("203.0.113.7/32"),
        duration: duration.map(Duration::from_secs),
        jail: jail.map(str::to_owned),
        force: false,
    };
    let b = the_ban(&[e.manual_ban(&req(Some("web"), None), at(0)).expect("ban")]).clone();
    assert_eq!(&*b.jail, "web");
    assert_eq!(b.origin, Origin::Manual);
    assert_eq!(b.until, Some(at(86_400)), "web's bantime is 1d");
    let b = the_ban(&[e
        .manual_ban(&req(Some("web"), Some(60)), at(0))
        .expect("ban")])
    .clone();
    assert_eq!(b.until, Some(at(60)), "--for wins over the jail's bantime");
    let b = the_ban(&[e.manual_ban(&req(None, None), at(0)).expect("ban")]).clone();
    assert_eq!((&*b.jail, b.until), (MANUAL_JAIL, None));
    let err = e
        .manual_ban(&req(Some("nope"), None), at(0))
        .expect_err("unknown");
    assert!(matches!(err, EngineError::UnknownJail { .. }), "{err}");
    assert!(err.to_string().contains("ssh, web"), "{err}");
}

#[test]
fn forced_ban_overrides_the_allowlist_and_survives_restore() {
    let mut e = engine(3);
    let mut req = ManualBan {
        target: net("192.0.2.9/32"),
        duration: None,
        jail: None,
        force: false,
    };
    assert!(matches!(
        e.manual_ban(&req, at(0)),
        Err(EngineError::Allowlisted { .. })
    ));
    req.force = true;
    let b = the_ban(&[e.manual_ban(&req, at(0)).expect("forced")]).clone();
    assert!(b.forced);
    // Forcing a target nothing allowlists is an ordinary ban.
    req.target = net("203.0.113.9/32");
    let plain = the_ban(&[e.manual_ban(&req, at(0)).expect("ban")]).clone();
    assert!(!plain.forced);

    let mut fresh = engine(3);
    let mut unforced = b.clone();
    unforced.forced = false;
    unforced.target = net("192.0.2.10/32");
    fresh.restore(vec![b.clone(), unforced], at(1));
    let kept: Vec<IpNet> = fresh.bans().map(|b| b.target).collect();
    assert_eq!(kept, vec![net("192.0.2.9/32")]);
}

/// Two jails, `a` (filter f) and `b` (filter g), with their maxretry and the
/// allowlist as parameters: the config before and after a reload.
fn two_jails(a: u32, b: u32, allow: &str) -> Engine {
    let text = format!(
        r#"
[agent]
allow = [{allow}]
[backends.dry-run]
[filters.f]
regex = ['f <HOST>$']
[filters.g]
regex = ['g <HOST>$']
[sources.s]
path = "/var/log/s.log"
filters = ["f", "g"]
[jails.a]
filters = ["f"]
maxretry = {a}
[jails.b]
filters = ["g"]
maxretry = {b}
"#
    );
    let cfg = config::parse(&text, Path::new("test.toml")).unwrap_or_else(|e| panic!("{e}"));
    Engine::from_config(&cfg).expect("engine")
}

#[test]
fn carry_over_keeps_bans_counters_and_windows_of_unchanged_jails_only() {
    let mut old = two_jails(3, 3, r#""192.0.2.0/24""#);
    for t in 0..2 {
        assert!(offend(&mut old, "f", "203.0.113.1", t).is_empty());
        assert!(offend(&mut old, "g", "203.0.113.2", t).is_empty());
    }
    for t in 0..3 {
        offend(&mut old, "f", "203.0.113.3", t);
    }
    assert!(old.is_banned(ip("203.0.113.3")));
    let offences_before = old.stats().offences;

    // Jail a changes (maxretry 3 -> 4); jail b does not.
    let mut new = two_jails(4, 3, r#""192.0.2.0/24""#);
    let keep: BTreeSet<String> = ["b".to_owned()].into();
    let mut out = Vec::new();
    new.carry_over(old, &keep, &mut out);
    assert!(out.is_empty(), "{out:?}");
    assert!(new.is_banned(ip("203.0.113.3")), "bans survive a reload");
    assert_eq!(new.stats().offences, offences_before, "counters carry on");
    // b kept its window: one more offence reaches 3.
    let out = offend(&mut new, "g", "203.0.113.2", 3);
    assert_eq!(&*the_ban(&out).jail, "b");
    // a's window was dropped: it starts from zero and needs four.
    for t in 3..6 {
        assert!(offend(&mut new, "f", "203.0.113.1", t).is_empty(), "at {t}");
    }
    the_ban(&offend(&mut new, "f", "203.0.113.1", 6));
}

#[test]
fn carry_over_lifts_bans_the_new_allowlist_covers() {
    let mut old = two_jails(1, 1, r#""192.0.2.0/24""#);
    the_ban(&offend(&mut old, "f", "203.0.113.1", 0));
    the_ban(&offend(&mut old, "f", "198.51.100.1", 0));
    let mut new = two_jails(1, 1, r#""192.0.2.0/24", "203.0.113.0/24""#);
    let mut out = Vec::new();
    new.carry_over(old, &BTreeSet::new(), &mut out);
    match out.as_slice() {
        [Decision::Unban(b)] => assert_eq!(b.target, net("203.0.113.1/32")),
        other => panic!("expected one unban, got {other:?}"),
    }
    assert!(new.is_banned(ip("198.51.100.1")));
    assert!(!new.is_banned(ip("203.0.113.1")));
}

fn remote(target: &str, node: &str, since: u64, until: Option<u64>) -> RemoteBan {
    RemoteBan {
        target: net(target),
        node: Arc::from(node),
        since: at(since),
        until: until.map(at),
    }
}

const FLEET_LIMITS: (u8, u8) = (24, 48);

#[test]
fn a_remote_ban_keeps_its_node_and_deadline_and_expires_here() {
    let mut e = engine_with(3, "10m", "1h", "\"192.0.2.0/24\"", "");
    let d = e
        .fleet_ban(
            &remote("203.0.113.5/32", "web-2", 0, Some(600)),
            FLEET_LIMITS,
            at(1),
        )
        .expect("accepted")
        .expect("new ban");
    let Decision::Ban(b) = d else { panic!("a ban") };
    assert_eq!(b.origin, Origin::Fleet);
    assert_eq!(b.node.as_deref(), Some("web-2"));
    assert_eq!(&*b.jail, FLEET_JAIL);
    assert_eq!((b.since, b.until), (at(0), Some(at(600))));
    assert!(e.is_banned(ip("203.0.113.5")));
    assert_eq!(e.ban_on(net("203.0.113.5/32")).expect("kept").node, b.node);
    // The same ban again (a replayed entry) changes nothing.
    let again = e.fleet_ban(
        &remote("203.0.113.5/32", "web-2", 0, Some(600)),
        FLEET_LIMITS,
        at(2),
    );
    assert_eq!(again, Ok(None));
    let mut out = Vec::new();
    e.expire(at(600), &mut out);
    assert!(matches!(out.as_slice(), [Decision::Unban(u)] if u.target == b.target));
}

#[test]
fn the_allowlist_and_own_addresses_win_over_the_fleet() {
    let mut e = engine_with(3, "10m", "1h", "\"192.0.2.0/24\"", "");
    let mut out = Vec::new();
    e.set_own_addresses(vec![ip("198.51.100.10")], &mut out);
    for t in [
        "192.0.2.7/32",
        "192.0.2.0/24",
        "198.51.100.10/32",
        "127.0.0.1/32",
    ] {
        assert_eq!(
            e.fleet_ban(&remote(t, "web-2", 0, None), FLEET_LIMITS, at(1)),
            Err(FleetRefusal::Allowlisted),
            "{t}"
        );
    }
    assert_eq!(e.ban_count(), 0);
}

#[test]
fn remote_prefixes_wider_than_the_limit_are_refused() {
    let mut e = engine_with(3, "10m", "1h", "", "");
    for t in ["203.0.113.0/23", "0.0.0.0/0", "2001:db8::/47"] {
        assert_eq!(
            e.fleet_ban(&remote(t, "n", 0, None), FLEET_LIMITS, at(1)),
            Err(FleetRefusal::TooWide),
            "{t}"
        );
    }
    for t in ["203.0.113.0/24", "2001:db8:1::/48"] {
        assert!(
            matches!(
                e.fleet_ban(&remote(t, "n", 0, None), FLEET_LIMITS, at(1)),
                Ok(Some(_))
            ),
            "{t}"
        );
    }
}

#[test]
fn a_local_ban_is_never_replaced_by_a_remote_one() {
    let mut e = engine_with(3, "10m", "1h", "", "");
    e.ban(net("203.0.113.9/32"), Some(Duration::from_secs(60)), at(0))
        .expect("manual ban");
    let r = e.fleet_ban(
        &remote("203.0.113.9/32", "web-2", 0, None),
        FLEET_LIMITS,
        at(1),
    );
    assert_eq!(r, Ok(None));
    assert_eq!(
        e.ban_on(net("203.0.113.9/32")).expect("ban").origin,
        Origin::Manual
    );
    // An already expired remote ban and one a wider local ban covers do nothing.
    e.ban(net("198.51.100.0/24"), None, at(0)).expect("prefix");
    assert_eq!(
        e.fleet_ban(
            &remote("198.51.100.3/32", "n", 0, None),
            FLEET_LIMITS,
            at(1)
        ),
        Ok(None)
    );
    assert_eq!(
        e.fleet_ban(
            &remote("203.0.113.10/32", "n", 0, Some(5)),
            FLEET_LIMITS,
            at(10)
        ),
        Ok(None)
    );
}

#[test]
fn fleet_unbans_lift_only_what_their_node_shared_unless_everywhere() {
    let mut e = engine_with(3, "10m", "1h", "", "");
    e.fleet_ban(
        &remote("203.0.113.5/32", "web-2", 0, None),
        FLEET_LIMITS,
        at(1),
    )
    .expect("accepted");
    e.ban(net("203.0.113.6/32"), None, at(0)).expect("local");
    assert_eq!(e.fleet_unban(net("203.0.113.5/32"), Some("web-3")), None);
    assert_eq!(e.fleet_unban(net("203.0.113.6/32"), Some("web-2")), None);
    assert!(
        e.fleet_unban(net("203.0.113.5/32"), Some("web-2"))
            .is_some()
    );
    // `unban --fleet` elsewhere lifts this host's own ban too.
    assert!(e.fleet_unban(net("203.0.113.6/32"), None).is_some());
    assert_eq!(e.ban_count(), 0);
}

#[test]
fn an_offence_by_name_counts_for_each_of_its_addresses() {
    let mut e = engine(2);
    let addrs = [ip("203.0.113.10"), ip("2001:db8::10")];
    let mut out = Vec::new();
    let mut captures = crate::filter::Captures::new();
    captures.push_named("user", b"root");
    assert_eq!(
        e.offence_by_name("f", &addrs, at(0), &captures, &mut out),
        None
    );
    assert!(out.is_empty());
    e.offence_by_name("f", &addrs, at(1), &captures, &mut out);
    let banned: Vec<IpNet> = out
        .iter()
        .filter_map(|d| match d {
            Decision::Ban(b) => {
                // The line's captures come with the ban of every address.
                let reason = b.reason.as_ref().expect("a reason");
                assert_eq!(reason.captures.user(), Some("root"), "{b:?}");
                Some(b.target)
            }
            _ => None,
        })
        .collect();
    assert_eq!(banned.len(), 2, "{out:?}");
    assert!(banned.contains(&net("203.0.113.10/32")));
    assert_eq!(e.stats().name_offences, 4);
}

#[test]
fn a_name_that_resolves_to_any_allowlisted_address_bans_nothing() {
    let none = crate::filter::Captures::new();
    let mut e = engine(1);
    let mut out = Vec::new();
    // 192.0.2.0/24 is allowlisted; loopback always is; link-local never banned.
    for (addrs, refused) in [
        (vec![ip("203.0.113.10"), ip("192.0.2.5")], ip("192.0.2.5")),
        (vec![ip("127.0.0.1"), ip("203.0.113.11")], ip("127.0.0.1")),
        (
            vec![ip("::ffff:192.0.2.6"), ip("198.51.100.1")],
            ip("192.0.2.6"),
        ),
        (vec![ip("198.51.100.1"), ip("fe80::1")], ip("fe80::1")),
    ] {
        assert_eq!(
            e.offence_by_name("f", &addrs, at(0), &none, &mut out),
            Some(refused)
        );
        assert!(out.is_empty(), "{addrs:?}: {out:?}");
    }
    assert_eq!(e.stats().names_refused, 4);
    // The same address on its own is banned.
    e.offence_by_name("f", &[ip("203.0.113.10")], at(1), &none, &mut out);
    assert_eq!(the_ban(&out).target, net("203.0.113.10/32"));
}

#[test]
fn jails_with_use_dns_no_do_not_count_names() {
    let none = crate::filter::Captures::new();
    let mut e = engine_with(1, "10m", "1h", "", "[dns]\nuse_dns = \"no\"");
    let mut out = Vec::new();
    e.offence_by_name("f", &[ip("203.0.113.10")], at(0), &none, &mut out);
    assert!(out.is_empty(), "{out:?}");
    e.offence("f", ip("203.0.113.10"), at(0), &mut out);
    assert_eq!(the_ban(&out).target, net("203.0.113.10/32"));
}
