//! Tests of the decisions issue 4 added, on a fake clock: weights and thresholds,
//! consolidation, IPv6 prefixes, the escalation ladder, history look-back, subnet
//! escalation (and its refusal over the allowlist), timed access, forced bans,
//! allowlist changes, reload; plus a property test that no ban ever covers an
//! allowed address, whatever the offences, allowlists and own-address changes.

use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, SystemTime};

use proptest::prelude::*;

use super::tests::{at, ip, net};
use super::*;
use crate::config::{self, Config};

const H: u64 = 3600;

/// A config with filters `f`, `g`, `h`; sources `auth` (f, g) and `web` (h); the
/// given jails (which together must use all three filters) and agent keys.
fn config_with(jails: &str, agent: &str) -> Config {
    let text = format!(
        r#"
[agent]
{agent}
[backends.dry-run]
[filters.f]
regex = ['f <HOST>$']
[filters.g]
regex = ['g <HOST>$']
[filters.h]
regex = ['h <HOST>$']
[sources.auth]
path = "/var/log/auth.log"
filters = ["f", "g"]
[sources.web]
path = "/var/log/web.log"
filters = ["h"]
{jails}
"#
    );
    config::parse(&text, Path::new("test.toml")).unwrap_or_else(|e| panic!("{e}"))
}

fn engine_with(jails: &str, agent: &str) -> Engine {
    Engine::from_config(&config_with(jails, agent)).expect("engine")
}

/// One jail `j` taking every filter, with extra keys.
fn jail(extra: &str) -> Engine {
    engine_with(
        &format!("[jails.j]\nfilters = [\"f\", \"g\", \"h\"]\n{extra}\n"),
        "allow = [\"192.0.2.0/24\"]",
    )
}

fn offend(e: &mut Engine, filter: &str, addr: &str, secs: u64) -> Vec<Decision> {
    let mut out = Vec::new();
    e.offence(filter, ip(addr), at(secs), &mut out);
    out
}

fn expire(e: &mut Engine, secs: u64) -> Vec<Decision> {
    let mut out = Vec::new();
    e.expire(at(secs), &mut out);
    out
}

fn bans_in(decisions: &[Decision]) -> Vec<&Ban> {
    decisions
        .iter()
        .filter_map(|d| match d {
            Decision::Ban(b) => Some(b),
            Decision::Unban(_) => None,
        })
        .collect()
}

fn the_ban(decisions: &[Decision]) -> &Ban {
    match decisions {
        [Decision::Ban(b)] => b,
        other => panic!("expected one ban, got {other:?}"),
    }
}

/// `log2drop ban --force`.
fn force_ban(
    e: &mut Engine,
    target: IpNet,
    duration: Option<Duration>,
    now: SystemTime,
) -> Result<Decision, EngineError> {
    e.manual_ban(
        &ManualBan {
            target,
            duration,
            jail: None,
            force: true,
        },
        now,
    )
}

fn length(b: &Ban) -> Option<u64> {
    b.until.map(|u| {
        u.duration_since(b.since)
            .expect("until after since")
            .as_secs()
    })
}

#[test]
fn origin_names_round_trip() {
    for o in [Origin::Jail, Origin::Manual, Origin::Subnet] {
        assert_eq!(Origin::parse(o.as_str()), Some(o));
        let json = serde_json::to_string(&o).expect("json");
        assert_eq!(json, format!("\"{}\"", o.as_str()));
    }
    assert_eq!(Origin::parse("Jail"), None);
}

// ---- score model and consolidation ----

#[test]
fn weights_add_up_to_the_threshold() {
    let mut e = jail("threshold = 6\nweight = { g = 5 }");
    assert!(offend(&mut e, "g", "203.0.113.4", 0).is_empty(), "5 < 6");
    let b = the_ban(&offend(&mut e, "f", "203.0.113.4", 1)).clone();
    assert_eq!(b.target, net("203.0.113.4/32"));
    // Cheap offences alone need six.
    for i in 0..5 {
        assert!(offend(&mut e, "f", "203.0.113.5", i).is_empty());
    }
    the_ban(&offend(&mut e, "h", "203.0.113.5", 5));
}

#[test]
fn a_heavy_offence_alone_can_ban() {
    let mut e = jail("threshold = 3\nweight = { h = 3 }");
    the_ban(&offend(&mut e, "h", "198.51.100.9", 0));
}

#[test]
fn weighted_window_slides() {
    let mut e = jail("threshold = 10\nfindtime = \"10m\"\nweight = { g = 6 }");
    assert!(offend(&mut e, "g", "203.0.113.4", 0).is_empty());
    // 601 s later the first heavy offence aged out: the score is 6, not 12.
    assert!(offend(&mut e, "g", "203.0.113.4", 601).is_empty());
    for t in 700..703 {
        assert!(offend(&mut e, "f", "203.0.113.4", t).is_empty(), "at {t}");
    }
    the_ban(&offend(&mut e, "f", "203.0.113.4", 703));
}

#[test]
fn threshold_replaces_maxretry() {
    let mut e = jail("maxretry = 2\nthreshold = 4");
    for i in 0..3 {
        assert!(offend(&mut e, "f", "203.0.113.4", i).is_empty());
    }
    the_ban(&offend(&mut e, "f", "203.0.113.4", 3));
}

#[test]
fn offences_from_every_source_add_up() {
    // `f` is fed by source auth, `h` by source web; the jail takes both.
    let mut e = jail("maxretry = 3");
    assert!(offend(&mut e, "f", "198.51.100.7", 0).is_empty());
    assert!(offend(&mut e, "h", "198.51.100.7", 1).is_empty());
    let b = the_ban(&offend(&mut e, "f", "198.51.100.7", 2)).clone();
    assert_eq!(b.target, net("198.51.100.7/32"));
}

#[test]
fn jails_count_on_their_own() {
    let mut e = engine_with(
        "[jails.a]\nfilters = [\"f\", \"h\"]\nmaxretry = 2\n[jails.b]\nfilters = [\"g\", \"f\"]\nmaxretry = 3\n",
        "",
    );
    assert!(offend(&mut e, "g", "198.51.100.1", 0).is_empty());
    assert!(offend(&mut e, "g", "198.51.100.1", 1).is_empty());
    // `f` counts in both: a reaches 1, b reaches 3 and bans.
    let b = the_ban(&offend(&mut e, "f", "198.51.100.1", 2)).clone();
    assert_eq!(&*b.jail, "b");
}

// ---- IPv6 prefixes ----

#[test]
fn ipv6_offenders_count_and_ban_as_their_64() {
    let mut e = jail("maxretry = 3");
    assert!(offend(&mut e, "f", "2001:db8:1:2::5", 0).is_empty());
    assert!(offend(&mut e, "f", "2001:db8:1:2:aaaa::6", 1).is_empty());
    let b = the_ban(&offend(&mut e, "f", "2001:db8:1:2:ffff:ffff:ffff:ffff", 2)).clone();
    assert_eq!(b.target, net("2001:db8:1:2::/64"));
    assert!(e.is_banned(ip("2001:db8:1:2::77")));
    assert!(!e.is_banned(ip("2001:db8:1:3::5")));
    assert_eq!(e.stats().tracked, 0);
}

#[test]
fn ipv6_prefix_128_counts_single_addresses() {
    let mut e = jail("maxretry = 2\nipv6_prefix = 128");
    assert!(offend(&mut e, "f", "2001:db8::5", 0).is_empty());
    assert!(offend(&mut e, "f", "2001:db8::6", 1).is_empty());
    let b = the_ban(&offend(&mut e, "f", "2001:db8::5", 2)).clone();
    assert_eq!(b.target, net("2001:db8::5/128"));
}

#[test]
fn ipv6_ban_narrows_around_an_allowed_neighbour() {
    let mut e = engine_with(
        "[jails.j]\nfilters = [\"f\", \"g\", \"h\"]\nmaxretry = 1\n",
        "allow = [\"2001:db8:1:2::1\"]",
    );
    let b = the_ban(&offend(&mut e, "f", "2001:db8:1:2::5", 0)).clone();
    // ::5 and ::1 first differ in the bit worth 4: the /126 around ::5 is clear.
    assert_eq!(b.target, net("2001:db8:1:2::4/126"));
    assert!(!e.allowlist().intersects(&b.target));
    assert!(offend(&mut e, "f", "2001:db8:1:2::1", 1).is_empty());
}

// ---- escalation ----

/// Bans `addr` through jail `j` (maxretry 1), lets the ban expire, returns it.
fn ban_and_expire(e: &mut Engine, addr: &str, now: &mut u64) -> Ban {
    let b = the_ban(&offend(e, "f", addr, *now)).clone();
    match b.until {
        Some(u) => {
            *now = u.duration_since(at(0)).expect("after t0").as_secs();
            let out = expire(e, *now);
            assert_eq!(out.len(), 1, "{out:?}");
            *now += 1;
        }
        None => *now += 1,
    }
    b
}

#[test]
fn escalation_ladder_doubles_caps_then_goes_permanent() {
    let mut e = jail(
        "maxretry = 1\nbantime = \"1h\"\nbantime_factor = 2\nbantime_max = \"5h\"\npermanent_after = 4",
    );
    let mut now = 0;
    let lengths: Vec<Option<u64>> = (0..5)
        .map(|_| length(&ban_and_expire(&mut e, "203.0.113.4", &mut now)))
        .collect();
    assert_eq!(
        lengths,
        vec![Some(H), Some(2 * H), Some(4 * H), Some(5 * H), None]
    );
    let s = e.stats();
    assert_eq!(s.escalated, 3);
    assert_eq!(s.permanent, 1);
    assert_eq!(e.next_expiry(), None, "the permanent ban has no deadline");
}

#[test]
fn fractional_factor_and_no_cap() {
    let mut e = jail("maxretry = 1\nbantime = \"1h\"\nbantime_factor = 1.5");
    let mut now = 0;
    let lengths: Vec<Option<u64>> = (0..3)
        .map(|_| length(&ban_and_expire(&mut e, "203.0.113.4", &mut now)))
        .collect();
    assert_eq!(lengths, vec![Some(3600), Some(5400), Some(8100)]);
}

#[test]
fn huge_escalation_saturates_instead_of_overflowing() {
    let mut e = jail("maxretry = 1\nbantime = \"52w\"\nbantime_factor = 1000");
    let mut lengths = Vec::new();
    for i in 0..4 {
        let b = the_ban(&offend(&mut e, "f", "203.0.113.4", i)).clone();
        lengths.push(length(&b));
        e.unban(b.target).expect("unban");
    }
    let cap = Some(MAX_BANTIME.as_secs());
    assert_eq!(lengths, vec![Some(52 * 7 * 86_400), cap, cap, cap]);
}

#[test]
fn earlier_bans_outside_history_do_not_count() {
    let mut e = jail("maxretry = 1\nbantime = \"1h\"\nbantime_factor = 2\nhistory = \"1d\"");
    let mut now = 0;
    assert_eq!(
        length(&ban_and_expire(&mut e, "203.0.113.4", &mut now)),
        Some(H)
    );
    assert_eq!(
        length(&ban_and_expire(&mut e, "203.0.113.4", &mut now)),
        Some(2 * H)
    );
    // Two days later both earlier bans are outside the one-day look-back.
    now += 2 * 86_400;
    assert_eq!(
        length(&ban_and_expire(&mut e, "203.0.113.4", &mut now)),
        Some(H)
    );
}

#[test]
fn restored_history_escalates_after_a_restart() {
    let mut e = jail("maxretry = 1\nbantime = \"1h\"\nbantime_factor = 3\nhistory = \"30d\"");
    let old = |days: u64| HistoryEntry {
        target: net("198.51.100.7/32"),
        jail: Arc::from("j"),
        since: at(100 * 86_400 - days * 86_400),
    };
    // Two bans within 30 days (one by another jail: escalation counts them all),
    // one too old to count.
    e.restore_history(vec![old(40), old(3), old(1)], at(100 * 86_400));
    let b = the_ban(&offend(&mut e, "f", "198.51.100.7", 100 * 86_400)).clone();
    assert_eq!(length(&b), Some(9 * H));
    // Another address has no history.
    let b = the_ban(&offend(&mut e, "f", "198.51.100.8", 100 * 86_400)).clone();
    assert_eq!(length(&b), Some(H));
}

#[test]
fn manual_bans_count_as_earlier_bans() {
    let mut e = jail("maxretry = 1\nbantime = \"1h\"\nbantime_factor = 2");
    e.ban(net("203.0.113.9/32"), Some(Duration::from_secs(60)), at(0))
        .expect("ban");
    expire(&mut e, 60);
    let b = the_ban(&offend(&mut e, "f", "203.0.113.9", 100)).clone();
    assert_eq!(length(&b), Some(2 * H));
}

#[test]
fn without_escalation_no_history_is_kept() {
    let mut e = jail("maxretry = 1");
    assert_eq!(e.history_window(), None);
    let mut now = 0;
    for _ in 0..3 {
        assert_eq!(
            length(&ban_and_expire(&mut e, "203.0.113.4", &mut now)),
            Some(H)
        );
    }
    assert_eq!(e.stats().history, 0);
}

// ---- subnet escalation ----

fn subnet_jail(extra: &str, agent: &str) -> Engine {
    engine_with(
        &format!(
            "[jails.j]\nfilters = [\"f\", \"g\", \"h\"]\nmaxretry = 1\nbantime = \"1h\"\nsubnet = {{ v4 = 24, v6 = 48, after = 3, within = \"1h\" }}\n{extra}\n"
        ),
        agent,
    )
}

#[test]
fn subnet_v4_bans_the_24_after_three_addresses() {
    let mut e = subnet_jail("", "");
    the_ban(&offend(&mut e, "f", "203.0.113.1", 0));
    the_ban(&offend(&mut e, "f", "203.0.113.2", 10));
    // Outside the /24: does not count.
    the_ban(&offend(&mut e, "f", "203.0.112.3", 15));
    let out = offend(&mut e, "f", "203.0.113.3", 20);
    let bans = bans_in(&out);
    assert_eq!(bans.len(), 2, "{out:?}");
    assert_eq!(bans[0].target, net("203.0.113.3/32"));
    assert_eq!(bans[1].target, net("203.0.113.0/24"));
    assert_eq!(bans[1].origin, Origin::Subnet);
    assert_eq!(&*bans[1].jail, "j");
    assert_eq!(length(bans[1]), Some(H));
    assert!(e.is_banned(ip("203.0.113.200")));
    assert!(offend(&mut e, "f", "203.0.113.200", 30).is_empty());
    assert_eq!(e.stats().subnet_bans, 1);
    // A fourth host ban inside the banned /24 cannot happen (its offences are
    // ignored), and the /24 is not banned twice.
    assert_eq!(e.bans().filter(|b| b.origin == Origin::Subnet).count(), 1);
}

#[test]
fn subnet_counts_only_bans_within_the_window() {
    let mut e = subnet_jail("", "");
    the_ban(&offend(&mut e, "f", "203.0.113.1", 0));
    the_ban(&offend(&mut e, "f", "203.0.113.2", 10));
    // More than an hour after the first two.
    let out = offend(&mut e, "f", "203.0.113.3", 2 * H);
    assert_eq!(bans_in(&out).len(), 1);
}

#[test]
fn subnet_counts_restored_history() {
    let mut e = subnet_jail("", "");
    let entry = |a: &str| HistoryEntry {
        target: net(a),
        jail: Arc::from("j"),
        since: at(100),
    };
    e.restore_history(
        vec![entry("198.51.100.1/32"), entry("198.51.100.2/32")],
        at(200),
    );
    let out = offend(&mut e, "f", "198.51.100.3", 200);
    assert_eq!(bans_in(&out).len(), 2, "{out:?}");
}

#[test]
fn subnet_v6_bans_the_48_after_three_64s() {
    let mut e = subnet_jail("", "");
    let b = the_ban(&offend(&mut e, "f", "2001:db8:7:1::9", 0)).clone();
    assert_eq!(b.target, net("2001:db8:7:1::/64"));
    the_ban(&offend(&mut e, "f", "2001:db8:7:2::9", 1));
    let out = offend(&mut e, "f", "2001:db8:7:3::9", 2);
    let bans = bans_in(&out);
    assert_eq!(bans.len(), 2, "{out:?}");
    assert_eq!(bans[1].target, net("2001:db8:7::/48"));
    assert_eq!(bans[1].origin, Origin::Subnet);
    assert!(e.is_banned(ip("2001:db8:7:ffff::1")));
}

#[test]
fn subnet_v6_with_single_address_bans() {
    let mut e = subnet_jail("ipv6_prefix = 128", "");
    let mut bans = 0;
    for i in 1..=3 {
        bans += bans_in(&offend(&mut e, "f", &format!("2001:db8:9::{i}"), i)).len();
    }
    assert_eq!(bans, 4);
    assert!(e.bans().any(|b| b.target == net("2001:db8:9::/48")));
}

#[test]
fn subnet_ban_over_an_allowed_address_is_refused() {
    let mut e = subnet_jail("", "allow = [\"203.0.113.200\"]");
    for i in 1..=5 {
        let out = offend(&mut e, "f", &format!("203.0.113.{i}"), i);
        // Host bans go on; the /24 never comes.
        assert_eq!(bans_in(&out).len(), 1, "{out:?}");
    }
    assert!(!e.bans().any(|b| b.origin == Origin::Subnet));
    assert_eq!(e.stats().subnet_refused, 3);
    assert!(!e.is_banned(ip("203.0.113.200")));
}

#[test]
fn subnet_escalation_escalates_the_prefix_too() {
    let mut e = subnet_jail("bantime_factor = 2", "");
    let entry = HistoryEntry {
        target: net("203.0.113.0/24"),
        jail: Arc::from("j"),
        since: at(0),
    };
    e.restore_history(vec![entry], at(50));
    for i in 1..=3 {
        offend(&mut e, "f", &format!("203.0.113.{i}"), 100 + i);
    }
    let sub = e
        .bans()
        .find(|b| b.origin == Origin::Subnet)
        .expect("subnet ban");
    assert_eq!(length(&sub), Some(2 * H));
}

// ---- timed access (ban_delay) ----

#[test]
fn ban_delay_bans_later_for_bantime_then_allows_again() {
    let mut e = jail("maxretry = 1\nban_delay = \"1h\"\nbantime = \"1h\"");
    assert!(offend(&mut e, "f", "198.51.100.20", 0).is_empty());
    assert_eq!(e.next_expiry(), Some(at(H)));
    assert_eq!(e.stats().pending, 1);
    // Seen again while the ban is pending: nothing new is scheduled.
    assert!(offend(&mut e, "f", "198.51.100.20", 600).is_empty());
    assert!(!e.is_banned(ip("198.51.100.20")));
    assert!(expire(&mut e, H - 1).is_empty());
    let out = expire(&mut e, H);
    let b = the_ban(&out).clone();
    assert_eq!(b.target, net("198.51.100.20/32"));
    assert_eq!(b.since, at(H));
    assert_eq!(b.until, Some(at(2 * H)));
    assert_eq!(e.next_expiry(), Some(at(2 * H)));
    assert!(offend(&mut e, "f", "198.51.100.20", H + 5).is_empty());
    match expire(&mut e, 2 * H).as_slice() {
        [Decision::Unban(u)] => assert_eq!(u.target, b.target),
        other => panic!("expected the unban, got {other:?}"),
    }
    // Allowed again; a new sighting starts a new cycle.
    assert!(offend(&mut e, "f", "198.51.100.20", 2 * H + 1).is_empty());
    assert_eq!(e.next_expiry(), Some(at(3 * H + 1)));
    assert_eq!(e.stats().delayed, 2);
}

#[test]
fn delayed_ban_of_a_newly_allowed_address_is_dropped() {
    let mut e = jail("maxretry = 1\nban_delay = \"10m\"");
    assert!(offend(&mut e, "f", "198.51.100.20", 0).is_empty());
    let mut out = Vec::new();
    e.set_own_addresses(vec![ip("198.51.100.20")], &mut out);
    assert!(out.is_empty());
    assert_eq!(e.stats().pending, 0);
    assert!(expire(&mut e, 601).is_empty());
}

#[test]
fn delayed_jail_does_not_hold_back_other_jails() {
    let mut e = engine_with(
        "[jails.wifi]\nfilters = [\"f\"]\nmaxretry = 1\nban_delay = \"1h\"\n[jails.ssh]\nfilters = [\"f\", \"g\", \"h\"]\nmaxretry = 2\n",
        "",
    );
    assert!(offend(&mut e, "f", "198.51.100.30", 0).is_empty());
    let b = the_ban(&offend(&mut e, "f", "198.51.100.30", 1)).clone();
    assert_eq!(&*b.jail, "ssh");
    // The delayed ban comes due while the ssh ban is in force: nothing to add.
    assert!(bans_in(&expire(&mut e, H)).is_empty());
}

// ---- allowlist: force, own addresses, host names ----

#[test]
fn force_bans_over_the_allowlist_and_survives_changes() {
    let mut e = jail("maxretry = 1");
    assert!(matches!(
        e.ban(net("192.0.2.0/25"), None, at(0)),
        Err(EngineError::Allowlisted { .. })
    ));
    // Forcing covers single addresses only.
    assert!(matches!(
        force_ban(&mut e, net("192.0.2.0/25"), None, at(0)),
        Err(EngineError::ForcedPrefix { .. })
    ));
    let d = force_ban(&mut e, net("192.0.2.1/32"), None, at(0)).expect("forced");
    assert!(matches!(d, Decision::Ban(ref b) if b.forced && b.origin == Origin::Manual));
    let mut out = Vec::new();
    e.set_own_addresses(vec![ip("192.0.2.1")], &mut out);
    assert!(out.is_empty(), "forced bans stay: {out:?}");
    // And across a restart.
    let bans: Vec<Ban> = e.bans().collect();
    let mut fresh = jail("maxretry = 1");
    fresh.restore(bans, at(10));
    assert_eq!(fresh.bans().count(), 1);
    // A forced ban does not make the allowed address count offences.
    assert!(offend(&mut e, "f", "192.0.2.1", 1).is_empty());
}

/// Issue 16, item 4: a swapped database restored a forced permanent ban on
/// `0.0.0.0/0`. A stored ban on everything is never restored, and one over the
/// allowlist only when it is a forced single address; `ban` refuses `/0` too.
#[test]
fn restore_refuses_everything_and_forced_prefixes_over_the_allowlist() {
    let stored = |target: &str, forced: bool| Ban {
        target: net(target),
        jail: Arc::from("manual"),
        since: at(0),
        until: None,
        origin: Origin::Manual,
        reason: None,
        forced,
        node: None,
    };
    let mut e = jail("maxretry = 1");
    let refused = e.restore(
        vec![
            stored("0.0.0.0/0", true),
            stored("::/0", true),
            stored("0.0.0.0/0", false),
            stored("192.0.2.0/25", true),
            stored("192.0.2.0/25", false),
            stored("192.0.2.1/32", false),
            stored("192.0.2.1/32", true),
            stored("203.0.113.0/24", false),
        ],
        at(1),
    );
    let mut kept: Vec<String> = e.bans().map(|b| b.target.to_string()).collect();
    kept.sort();
    assert_eq!(kept, ["192.0.2.1/32", "203.0.113.0/24"]);
    assert_eq!(refused.len(), 6, "{refused:?}");
    for target in ["0.0.0.0/0", "::/0"] {
        for force in [false, true] {
            let res = if force {
                force_ban(&mut e, net(target), None, at(2))
            } else {
                e.ban(net(target), None, at(2))
            };
            assert!(
                matches!(res, Err(EngineError::Everything { .. })),
                "{target}: {res:?}"
            );
        }
    }
}

#[test]
fn force_on_a_clear_target_is_a_plain_manual_ban() {
    let mut e = jail("maxretry = 1");
    let d = force_ban(&mut e, net("203.0.113.0/24"), None, at(0)).expect("ban");
    assert!(matches!(d, Decision::Ban(ref b) if b.origin == Origin::Manual));
}

#[test]
fn own_addresses_are_allowed_and_lift_covering_bans() {
    let mut e = jail("maxretry = 1");
    the_ban(&offend(&mut e, "f", "198.51.100.7", 0));
    e.ban(net("203.0.113.0/24"), None, at(0)).expect("ban");
    e.ban(net("2001:db8:5::/48"), None, at(0)).expect("ban");
    let mut out = Vec::new();
    e.set_own_addresses(
        vec![
            ip("198.51.100.7"),
            ip("203.0.113.50"),
            ip("::ffff:198.51.100.7"),
        ],
        &mut out,
    );
    let mut lifted: Vec<IpNet> = out
        .iter()
        .map(|d| match d {
            Decision::Unban(b) => b.target,
            Decision::Ban(b) => panic!("unexpected ban {b:?}"),
        })
        .collect();
    lifted.sort();
    assert_eq!(lifted, vec![net("198.51.100.7/32"), net("203.0.113.0/24")]);
    assert_eq!(e.stats().allow_lifted, 2);
    assert!(e.is_banned(ip("2001:db8:5::1")));
    assert!(offend(&mut e, "f", "198.51.100.7", 5).is_empty());
    assert!(matches!(
        e.ban(net("203.0.113.50/32"), None, at(6)),
        Err(EngineError::Allowlisted { .. })
    ));
    // When the address goes away, it can be banned again.
    out.clear();
    e.set_own_addresses(vec![], &mut out);
    assert!(out.is_empty());
    the_ban(&offend(&mut e, "f", "198.51.100.7", 7));
}

#[test]
fn own_addresses_are_ignored_when_turned_off() {
    let mut e = engine_with(
        "[jails.j]\nfilters = [\"f\", \"g\", \"h\"]\nmaxretry = 1\n",
        "allow_own_addresses = false",
    );
    let mut out = Vec::new();
    e.set_own_addresses(vec![ip("198.51.100.7")], &mut out);
    the_ban(&offend(&mut e, "f", "198.51.100.7", 0));
}

#[test]
fn resolved_host_names_are_allowed() {
    let cfg = config_with(
        "[jails.j]\nfilters = [\"f\", \"g\", \"h\"]\nmaxretry = 1\n",
        "allow = [\"admin.example.org\", \"192.0.2.0/24\"]",
    );
    let mut e = Engine::from_config(&cfg).expect("engine");
    the_ban(&offend(&mut e, "f", "198.51.100.8", 0));
    let mut out = Vec::new();
    e.set_allow_hosts(vec![net("198.51.100.8/32")], &mut out);
    assert_eq!(out.len(), 1, "the ban on the now-allowed host is lifted");
    assert!(offend(&mut e, "f", "198.51.100.8", 1).is_empty());
    assert!(
        e.allowlist().contains(ip("192.0.2.9")),
        "static entries stay"
    );
}

// ---- reload ----

/// Reload as the daemon does it: a fresh engine from the new config takes over
/// the old one's state.
fn reload(old: Engine, jails: &str, agent: &str, keep: &[&str]) -> (Engine, Vec<Decision>) {
    let mut new = engine_with(jails, agent);
    let keep: BTreeSet<String> = keep.iter().map(|s| (*s).to_owned()).collect();
    let mut out = Vec::new();
    new.carry_over(old, &keep, &mut out);
    (new, out)
}

#[test]
fn carry_over_keeps_history_scheduled_bans_and_own_addresses() {
    let jails = "[jails.a]\nfilters = [\"f\", \"g\"]\nmaxretry = 1\nbantime_factor = 2\n[jails.w]\nfilters = [\"h\"]\nmaxretry = 1\nban_delay = \"1h\"\n";
    let mut e = engine_with(jails, "");
    e.set_own_addresses(vec![ip("198.51.100.50")], &mut Vec::new());
    the_ban(&offend(&mut e, "f", "198.51.100.1", 0));
    assert_eq!(expire(&mut e, H).len(), 1);
    assert!(offend(&mut e, "h", "198.51.100.2", H + 1).is_empty());
    let (mut e, out) = reload(e, jails, "", &["a", "w"]);
    assert!(out.is_empty(), "{out:?}");
    assert!(
        offend(&mut e, "f", "198.51.100.50", H + 2).is_empty(),
        "own address still allowed"
    );
    assert_eq!(e.stats().pending, 1);
    let b = the_ban(&expire(&mut e, 2 * H + 1)).clone();
    assert_eq!((b.target, &*b.jail), (net("198.51.100.2/32"), "w"));
    // The history came along: the second ban of .1 is doubled.
    let b = the_ban(&offend(&mut e, "f", "198.51.100.1", 2 * H + 2)).clone();
    assert_eq!(length(&b), Some(2 * H));
}

#[test]
fn carry_over_drops_scheduled_bans_of_removed_jails() {
    let mut e = engine_with(
        "[jails.a]\nfilters = [\"f\", \"g\"]\nmaxretry = 1\n[jails.b]\nfilters = [\"h\"]\nmaxretry = 1\nban_delay = \"1h\"\n",
        "",
    );
    the_ban(&offend(&mut e, "f", "198.51.100.1", 0));
    assert!(offend(&mut e, "h", "198.51.100.2", 0).is_empty());
    let (mut e, out) = reload(
        e,
        "[jails.a]\nfilters = [\"f\", \"g\", \"h\"]\nmaxretry = 1\n",
        "",
        &["a"],
    );
    assert!(out.is_empty());
    assert_eq!(e.bans().count(), 1);
    assert_eq!(e.stats().pending, 0, "b's scheduled ban went with b");
    assert!(
        expire(&mut e, 2 * H)
            .iter()
            .all(|d| matches!(d, Decision::Unban(_)))
    );
}

#[test]
fn carry_over_keeps_resolved_hosts_only_for_the_same_names() {
    let jails = "[jails.j]\nfilters = [\"f\", \"g\", \"h\"]\nmaxretry = 1\n";
    let mut e = engine_with(jails, "allow = [\"admin.example.org\"]");
    e.set_allow_hosts(vec![net("198.51.100.9/32")], &mut Vec::new());
    let (mut e, _) = reload(e, jails, "allow = [\"admin.example.org\"]", &["j"]);
    assert!(e.allowlist().contains(ip("198.51.100.9")));
    assert!(offend(&mut e, "f", "198.51.100.9", 0).is_empty());
    let (e, _) = reload(e, jails, "allow = [\"other.example.org\"]", &["j"]);
    assert!(
        !e.allowlist().contains(ip("198.51.100.9")),
        "stale host addresses are not kept"
    );
}

// ---- bounded memory ----

#[test]
fn eviction_is_counted_and_bounded_with_ipv6_keys() {
    let mut e = engine_with(
        "[jails.j]\nfilters = [\"f\", \"g\", \"h\"]\nmaxretry = 3\n",
        "max_tracked = 100",
    );
    for i in 0..1000u32 {
        let a = IpAddr::from([0x2001, 0xdb8, (i >> 16) as u16, i as u16, 0, 0, 0, 1]);
        let mut out = Vec::new();
        e.offence("f", a, at(u64::from(i)), &mut out);
        assert!(out.is_empty());
    }
    assert_eq!(e.stats().tracked, 100);
    assert_eq!(e.stats().evicted, 900);
}

// ---- the allowlist is never banned ----

#[derive(Debug, Clone)]
enum Op {
    Offence(u8, IpAddr, u64),
    ManualBan(IpAddr, u8),
    OwnAddresses(Vec<IpAddr>),
    Expire(u64),
}

fn arb_addr() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        (0u8..24).prop_map(|i| IpAddr::from([203, 0, 113, i])),
        (0u8..8).prop_map(|i| IpAddr::from([203, 0, 112, i])),
        (0u16..4, 0u16..6).prop_map(|(s, i)| IpAddr::from([0x2001, 0xdb8, 0, s, 0, 0, 0, i])),
        (0u8..8).prop_map(|i| IpAddr::from([0, 0, 0, 0, 0, 0xffff, 0xcb00, 0x7100 | u16::from(i)])),
    ]
}

fn arb_allow() -> impl Strategy<Value = IpNet> {
    prop_oneof![
        (0u8..24, 28u8..=32).prop_map(|(i, l)| IpNet::new(IpAddr::from([203, 0, 113, i]), l)
            .expect("len")
            .trunc()),
        (0u16..4, 0u16..6, 120u8..=128).prop_map(|(s, i, l)| IpNet::new(
            IpAddr::from([0x2001, 0xdb8, 0, s, 0, 0, 0, i]),
            l
        )
        .expect("len")
        .trunc()),
    ]
}

fn arb_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0u8..3, arb_addr(), 0u64..90).prop_map(|(f, a, dt)| Op::Offence(f, a, dt)),
        1 => (arb_addr(), 0u8..=12).prop_map(|(a, shorter)| Op::ManualBan(a, shorter)),
        1 => proptest::collection::vec(arb_addr(), 0..3).prop_map(Op::OwnAddresses),
        1 => (0u64..4000).prop_map(Op::Expire),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn no_ban_ever_covers_an_allowed_address(
        allow in proptest::collection::vec(arb_allow(), 0..5),
        ops in proptest::collection::vec(arb_op(), 1..300),
        maxretry in 1u32..3,
        v6_len in prop_oneof![Just(64u8), Just(120u8), Just(128u8)],
        delay in any::<bool>(),
    ) {
        let allow_list = allow
            .iter()
            .map(|a| format!("{:?}", a.to_string()))
            .collect::<Vec<_>>()
            .join(", ");
        let delay = if delay { "ban_delay = \"2m\"" } else { "" };
        let sub6 = v6_len - 8;
        let jails = format!(
            "[jails.j]\nfilters = [\"f\", \"g\"]\nmaxretry = {maxretry}\nfindtime = \"5m\"\nbantime = \"30m\"\nbantime_factor = 2\nipv6_prefix = {v6_len}\nsubnet = {{ v4 = 28, v6 = {sub6}, after = 2, within = \"1h\" }}\n{delay}\n[jails.k]\nfilters = [\"h\", \"f\"]\nthreshold = 3\nweight = {{ h = 2 }}\nipv6_prefix = 128\nsubnet = {{ v4 = 24, v6 = 48, after = 3, within = \"1h\" }}\n",
        );
        let mut e = engine_with(&jails, &format!("allow = [{allow_list}]"));
        let filters = ["f", "g", "h"];
        let mut own: Vec<IpNet> = Vec::new();
        let allowset = |own: &[IpNet]| Allowlist::with_loopback(allow.iter().chain(own).copied());
        let mut now = 0u64;
        let mut forced: BTreeSet<IpNet> = BTreeSet::new();
        for op in ops {
            let mut out = Vec::new();
            match op {
                Op::Offence(f, a, dt) => {
                    now += dt;
                    e.offence(filters[usize::from(f)], a, at(now), &mut out);
                }
                Op::ManualBan(a, shorter) => {
                    let a = crate::addr::normalise(a);
                    let len = if a.is_ipv4() { 32 - shorter } else { 128 - shorter };
                    let target = IpNet::new(a, len).expect("len").trunc();
                    match e.ban(target, Some(Duration::from_secs(600)), at(now)) {
                        Ok(d) => out.push(d),
                        Err(EngineError::Allowlisted { .. }) => {
                            prop_assert!(allowset(&own).intersects(&target));
                        }
                        Err(other) => prop_assert!(false, "unexpected error {other}"),
                    }
                    if shorter == 12 {
                        // Now and then force one: it must be the only kind that
                        // may cover an allowed address.
                        if let Ok(Decision::Ban(b)) = force_ban(&mut e, target, Some(Duration::from_secs(60)), at(now))
                            && b.forced
                        {
                            forced.insert(b.target);
                        }
                    }
                }
                Op::OwnAddresses(addrs) => {
                    own = addrs.iter().map(|a| IpNet::from(crate::addr::normalise(*a))).collect();
                    e.set_own_addresses(addrs, &mut out);
                }
                Op::Expire(dt) => {
                    now += dt;
                    e.expire(at(now), &mut out);
                }
            }
            let current = allowset(&own);
            for d in &out {
                if let Decision::Ban(b) = d {
                    prop_assert!(!current.intersects(&b.target), "banned {} over the allowlist", b.target);
                }
            }
            for b in e.bans() {
                if b.forced {
                    prop_assert!(forced.contains(&b.target));
                } else {
                    prop_assert!(!current.intersects(&b.target), "active ban {} covers an allowed address", b.target);
                }
            }
        }
    }
}

/// Issue 16 item 7: a ban `ban_delay` scheduled survives a restart. Every change
/// to the schedule is handed out for the store, and an engine built after a
/// restart takes the schedule back and bans at the same due time, not later.
#[test]
fn delayed_bans_are_handed_out_for_the_store_and_restored_after_a_restart() {
    let cfg = "maxretry = 1\nban_delay = \"1h\"\nbantime = \"1h\"";
    let mut before = jail(cfg);
    assert!(offend(&mut before, "f", "198.51.100.20", 0).is_empty());
    assert!(offend(&mut before, "f", "198.51.100.21", 60).is_empty());
    let changes = before.take_schedule_changes();
    let scheduled: Vec<ScheduledBan> = changes
        .iter()
        .map(|c| match c {
            ScheduleChange::Add(b) => b.clone(),
            other => panic!("expected additions, got {other:?}"),
        })
        .collect();
    assert_eq!(scheduled.len(), 2);
    assert_eq!(scheduled[0].due, at(H));
    assert!(before.take_schedule_changes().is_empty(), "taken once");

    // The restart: a new engine from the same config, the schedule restored.
    let mut after = jail(cfg);
    after.restore_scheduled(scheduled);
    assert_eq!(after.next_expiry(), Some(at(H)));
    assert_eq!(after.stats().pending, 2);
    // Seen again while pending: its clock does not restart.
    assert!(offend(&mut after, "f", "198.51.100.20", 1_800).is_empty());
    assert!(expire(&mut after, H - 1).is_empty());
    let out = expire(&mut after, H);
    assert_eq!(the_ban(&out).target, net("198.51.100.20/32"));
    assert_eq!(the_ban(&out).until, Some(at(2 * H)));
    // In force: its schedule row goes.
    match after.take_schedule_changes().as_slice() {
        [ScheduleChange::Remove { key, jail }] => {
            assert_eq!(*key, ip("198.51.100.20"));
            assert_eq!(&**jail, "j");
        }
        other => panic!("expected one removal, got {other:?}"),
    }
}

/// The bans scheduled since the last look, as the store would get them.
fn scheduled_additions(e: &mut Engine) -> Vec<ScheduledBan> {
    e.take_schedule_changes()
        .into_iter()
        .filter_map(|c| match c {
            ScheduleChange::Add(b) => Some(b),
            ScheduleChange::Remove { .. } => None,
        })
        .collect()
}

/// A restored schedule whose jail is gone (or no longer delays) is dropped, and
/// its removal handed out so the store forgets it too.
#[test]
fn a_restored_delayed_ban_of_a_jail_that_no_longer_delays_is_dropped() {
    let mut before = jail("maxretry = 1\nban_delay = \"1h\"");
    assert!(offend(&mut before, "f", "198.51.100.20", 0).is_empty());
    let scheduled = scheduled_additions(&mut before);
    let mut after = jail("maxretry = 1");
    after.restore_scheduled(scheduled);
    assert_eq!(after.stats().pending, 0);
    assert!(matches!(
        after.take_schedule_changes().as_slice(),
        [ScheduleChange::Remove { .. }]
    ));
}

/// Timed access (`access = { allow = "1h", block = "1h" }`, log2table's
/// WifiTemp rule) with a fake clock: the first sighting starts the allowed
/// period, then the address is blocked for the block period, then allowed again
/// for a new period when it is seen again; a restart in the middle neither
/// forgets the schedule nor restarts the clock.
#[test]
fn timed_access_allows_then_blocks_then_allows_again_across_a_restart() {
    let cfg = "maxretry = 1\naccess = { allow = \"1h\", block = \"1h\" }";
    let mut e = jail(cfg);
    let a = "198.51.100.30";
    assert!(
        offend(&mut e, "f", a, 0).is_empty(),
        "first sighting: allowed"
    );
    assert!(offend(&mut e, "f", a, 1_000).is_empty(), "still allowed");
    // Restart half way through the allowed period.
    let saved = scheduled_additions(&mut e);
    let mut e = jail(cfg);
    e.restore_scheduled(saved);
    assert!(
        offend(&mut e, "f", a, 1_800).is_empty(),
        "clock not restarted"
    );
    assert!(expire(&mut e, H - 1).is_empty());
    let out = expire(&mut e, H);
    let b = the_ban(&out);
    assert_eq!((b.since, b.until), (at(H), Some(at(2 * H))), "blocked 1h");
    assert!(matches!(
        expire(&mut e, 2 * H).as_slice(),
        [Decision::Unban(_)]
    ));
    // Seen again: a new allowed period.
    assert!(offend(&mut e, "f", a, 2 * H + 10).is_empty());
    assert_eq!(e.next_expiry(), Some(at(3 * H + 10)));
}
