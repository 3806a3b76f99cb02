//! The whole agent, end to end, as root: `log2drop run` in a server namespace with
//! the XDP program on its veth, an attacker namespace holding an offender and a
//! bystander address, and offending lines written to the watched log. What is
//! asserted is what a user sees: the offender's pings stop within a second, the
//! bystander's do not, the kernel counted the drops, and the ban behaves across
//! unban, expiry, a crash, a restart and a log rotation.
//!
//! Every test builds its own namespaces, pin directory and agent; all of them are
//! removed when the test ends, also when it fails (the agent's output is printed
//! then). Run with `--test-threads=1`.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use log2drop_tests::agent::ssh_fail_line;
use log2drop_tests::netns::listed_namespaces;
use log2drop_tests::veth::{
    BYSTANDER_V4, BYSTANDER_V6, OFFENDER_V4, OFFENDER_V6, SERVER_V4, SERVER_V6,
};
use log2drop_tests::{
    Agent, AgentLab, JailSpec, KernelObjects, ban_entry, drops_for, ping_with_timeout,
    require_root, wait_until,
};

/// The promise: a banned address is dropped within this long of its line.
const BAN_DEADLINE: Duration = Duration::from_secs(1);
/// A reply over a veth takes well under a millisecond; a probe that waits this long
/// and gets nothing means the packet was dropped.
const DROP_PROBE: Duration = Duration::from_millis(150);
/// Waiting for a reply that should come: generous, a slow machine must not flake.
const REPLY_PROBE: Duration = Duration::from_secs(1);
/// An address in the attacker's range that is not on any interface: lines naming it
/// are used as a marker that the agent has read everything written before them.
const MARKER_V4: &str = "198.51.100.9";

log2drop_tests::agent_lab!(
    /// One test's world: the harness's [`AgentLab`] and this file's probes.
    Lab
);

impl Lab {
    /// Builds the namespaces, the wire and the config, starts the agent and checks
    /// that every attacker address gets replies before anything is banned. `None`
    /// when the test must skip (not root, outside CI).
    fn start(test: &str, jails: &[JailSpec]) -> Option<Lab> {
        if !require_root(test) {
            return None;
        }
        let mut lab = Lab(AgentLab::new(jails));
        let took = lab.spawn_agent();
        eprintln!(
            "{test}: agent ready in {took:?} (server ns {}, interface {})",
            lab.wire.server.name(),
            lab.wire.veth.a().ifname
        );
        // Polled: on a loaded machine the first ping over a fresh wire can time out.
        for addr in [OFFENDER_V4, BYSTANDER_V4, OFFENDER_V6, BYSTANDER_V6] {
            let ok = wait_until(Duration::from_secs(10), Duration::ZERO, || {
                lab.replies(addr)
            });
            assert!(ok.is_some(), "{addr} gets no reply before any ban");
        }
        Some(lab)
    }

    /// Appends `n` offending lines naming `addr`, returning when they were written.
    fn offend(&self, addr: &str, n: usize) -> Instant {
        let lines: Vec<String> = (0..n).map(|_| ssh_fail_line(addr)).collect();
        self.dir.append_lines(&lines);
        Instant::now()
    }

    /// The server address of `from`'s family.
    fn server_for(from: &str) -> &'static str {
        if from.contains(':') {
            SERVER_V6
        } else {
            SERVER_V4
        }
    }

    /// One ping from attacker address `from` to the server; true on a reply.
    fn replies(&self, from: &str) -> bool {
        ping_with_timeout(
            &self.wire.attacker,
            from,
            Self::server_for(from),
            REPLY_PROBE,
        )
    }

    /// One ping that is expected to vanish; true when no reply came.
    fn dropped(&self, from: &str) -> bool {
        !ping_with_timeout(
            &self.wire.attacker,
            from,
            Self::server_for(from),
            DROP_PROBE,
        )
    }

    /// Pings until one from `from` goes unanswered and returns how long after
    /// `since` that ping was sent, i.e. the latency a user would observe. Panics
    /// if none is dropped within `deadline`.
    fn wait_dropped(&self, from: &str, since: Instant, deadline: Duration) -> Duration {
        let mut sent_at = since;
        let found = wait_until(deadline + DROP_PROBE, Duration::from_millis(5), || {
            sent_at = Instant::now();
            self.dropped(from)
        });
        assert!(
            found.is_some(),
            "pings from {from} still answered {deadline:?} after the offending lines; bans: {:?}",
            self.agent.as_ref().map(Agent::bans)
        );
        sent_at.duration_since(since)
    }

    /// Pings until one from `from` is answered again, returning how long after
    /// `since` that happened. Panics if none is within `deadline`.
    fn wait_replies(&self, from: &str, since: Instant, deadline: Duration) -> Duration {
        let found = wait_until(deadline, Duration::from_millis(20), || {
            ping_with_timeout(
                &self.wire.attacker,
                from,
                Self::server_for(from),
                Duration::from_millis(200),
            )
        });
        assert!(
            found.is_some(),
            "pings from {from} still dropped {deadline:?} later"
        );
        since.elapsed()
    }

    /// Asserts that `from` stays dropped over several probes (not one lost packet).
    fn assert_stays_dropped(&self, from: &str) {
        for i in 0..3 {
            assert!(
                self.dropped(from),
                "probe {i}: {from} got a reply while banned"
            );
        }
    }

    /// Asserts that `from` gets replies over several probes while another is banned.
    fn assert_keeps_replying(&self, from: &str) {
        for i in 0..3 {
            assert!(self.replies(from), "probe {i}: {from} got no reply");
        }
    }

    /// Waits until `bans --json` lists `addr` and returns its entry.
    fn wait_listed(&self, addr: &str, deadline: Duration) -> serde_json::Value {
        let mut entry = None;
        wait_until(deadline, Duration::from_millis(10), || {
            entry = self.agent().ban_for(addr);
            entry.is_some()
        });
        entry.unwrap_or_else(|| {
            panic!(
                "`bans --json` does not list {addr} after {deadline:?}: {:?}",
                self.agent().bans()
            )
        })
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse()
        .unwrap_or_else(|e| panic!("bad address constant {s}: {e}"))
}

/// Checks the `bans --json` entry the contract promises for a jail ban.
fn assert_jail_ban(entry: &serde_json::Value, addr: &str, jail: &str) {
    assert_eq!(entry["address"], addr, "entry: {entry}");
    assert_eq!(entry["jail"], jail, "entry: {entry}");
    assert_eq!(entry["origin"], "jail", "entry: {entry}");
    for field in ["since", "until"] {
        let v = entry[field]
            .as_str()
            .unwrap_or_else(|| panic!("{field} is not an RFC 3339 string: {entry}"));
        assert!(
            v.len() >= 20 && v.as_bytes()[4] == b'-' && v.as_bytes()[10] == b'T',
            "{field} {v:?} is not RFC 3339"
        );
    }
    assert!(
        entry["until"].as_str() > entry["since"].as_str(),
        "until is not after since: {entry}"
    );
}

/// Bans the offender (maxretry 3) and returns when its pings started vanishing.
/// Also checks that two offences do not ban: a marker address banned after them
/// proves the agent has read those two lines.
fn ban_offender(lab: &Lab, offender: &str) -> Instant {
    lab.offend(offender, 2);
    lab.offend(MARKER_V4, 3);
    lab.wait_listed(MARKER_V4, Duration::from_secs(2));
    assert!(
        lab.agent().ban_for(offender).is_none(),
        "{offender} banned after only 2 of 3 offences"
    );
    assert!(
        lab.replies(offender),
        "{offender} dropped after 2 of 3 offences"
    );

    let written = lab.offend(offender, 1);
    let in_map = wait_until(BAN_DEADLINE, Duration::from_millis(1), || {
        ban_entry(&lab.pins, ip(offender)).is_some()
    });
    let dropped = lab.wait_dropped(offender, written, BAN_DEADLINE);
    eprintln!(
        "{offender}: line written -> XDP map entry {in_map:?}, -> first dropped ping {dropped:?}"
    );
    assert!(in_map.is_some(), "no XDP map entry for {offender}");
    assert!(
        dropped <= BAN_DEADLINE,
        "{offender} first dropped {dropped:?} after its line, over {BAN_DEADLINE:?}"
    );
    Instant::now()
}

fn ban_drops_only_the_offender(test: &str, offender: &str, bystander: &str) {
    let Some(lab) = Lab::start(test, &[JailSpec::ssh(3, "1h")]) else {
        return;
    };
    ban_offender(&lab, offender);
    lab.assert_stays_dropped(offender);
    lab.assert_keeps_replying(bystander);

    let entry = lab.wait_listed(offender, Duration::from_secs(1));
    assert_jail_ban(&entry, offender, "ssh");
    assert!(
        lab.agent().ban_for(bystander).is_none(),
        "{bystander} is listed"
    );

    // The kernel program, not just the agent, did the dropping: its per-ban counter
    // grows with each dropped ping (one echo request each).
    let before = drops_for(&lab.pins, offender)
        .unwrap_or_else(|| panic!("no drop counter for {offender} after dropped pings"));
    assert!(before.packets >= 3 && before.bytes >= before.packets * 42);
    lab.assert_stays_dropped(offender);
    let after = drops_for(&lab.pins, offender).unwrap_or_default();
    assert!(
        after.packets >= before.packets + 3,
        "counter went from {before:?} to {after:?} over 3 dropped pings"
    );
    assert!(
        drops_for(&lab.pins, bystander).is_none(),
        "the bystander has a drop counter"
    );

    let unbanned = Instant::now();
    lab.agent().cli_checked(&["unban", offender]);
    let back = lab.wait_replies(offender, unbanned, Duration::from_secs(1));
    eprintln!("{offender}: unban -> replies again in {back:?}");
    assert!(
        lab.agent().ban_for(offender).is_none(),
        "still listed after unban"
    );
    assert!(
        ban_entry(&lab.pins, ip(offender)).is_none(),
        "still in the XDP map"
    );
    lab.assert_keeps_replying(offender);
}

#[test]
fn ipv4_ban_drops_only_the_offender_until_unban() {
    ban_drops_only_the_offender(
        "ipv4_ban_drops_only_the_offender_until_unban",
        OFFENDER_V4,
        BYSTANDER_V4,
    );
}

#[test]
fn ipv6_ban_drops_only_the_offender_until_unban() {
    ban_drops_only_the_offender(
        "ipv6_ban_drops_only_the_offender_until_unban",
        OFFENDER_V6,
        BYSTANDER_V6,
    );
}

#[test]
fn ban_expires_on_time() {
    let Some(lab) = Lab::start("ban_expires_on_time", &[JailSpec::ssh(3, "3s")]) else {
        return;
    };
    let banned = ban_offender(&lab, OFFENDER_V4);
    lab.assert_keeps_replying(BYSTANDER_V4);
    let back = lab.wait_replies(OFFENDER_V4, banned, Duration::from_secs(6));
    eprintln!("{OFFENDER_V4}: bantime 3s, replies again {back:?} after the first drop");
    // The first drop came at most BAN_DEADLINE after the ban started, so the ban
    // cannot be over much before 3 s - 1 s from there.
    assert!(
        back >= Duration::from_millis(1800),
        "ban of 3s lifted after only {back:?}"
    );
    let unlisted = wait_until(Duration::from_secs(3), Duration::from_millis(50), || {
        lab.agent().ban_for(OFFENDER_V4).is_none()
    });
    assert!(unlisted.is_some(), "expired ban still listed");
    lab.assert_keeps_replying(OFFENDER_V4);
}

#[test]
fn drops_survive_kill9_and_restart_lists_the_ban() {
    let Some(mut lab) = Lab::start(
        "drops_survive_kill9_and_restart_lists_the_ban",
        &[JailSpec::ssh(3, "1h")],
    ) else {
        return;
    };
    ban_offender(&lab, OFFENDER_V4);
    lab.wait_listed(OFFENDER_V4, Duration::from_secs(1));

    lab.agent_mut().kill9();
    // With no agent at all, the pinned program and maps keep enforcing.
    lab.assert_stays_dropped(OFFENDER_V4);
    lab.assert_keeps_replying(BYSTANDER_V4);
    let counted = drops_for(&lab.pins, OFFENDER_V4).unwrap_or_default();
    lab.assert_stays_dropped(OFFENDER_V4);
    let later = drops_for(&lab.pins, OFFENDER_V4).unwrap_or_default();
    assert!(
        later.packets > counted.packets,
        "no drops counted while the agent was down"
    );

    let took = lab.spawn_agent();
    eprintln!("restart after kill -9: ready in {took:?}");
    let entry = lab.wait_listed(OFFENDER_V4, Duration::from_secs(1));
    assert_jail_ban(&entry, OFFENDER_V4, "ssh");
    lab.assert_stays_dropped(OFFENDER_V4);
    lab.assert_keeps_replying(BYSTANDER_V4);

    // A clean stop keeps the ban in force too, and the restarted agent still owns
    // it: unban works and lifts the drop.
    let status = lab.agent_mut().terminate();
    assert!(status.success(), "SIGTERM exit status {status}");
    lab.assert_stays_dropped(OFFENDER_V4);
    lab.spawn_agent();
    lab.wait_listed(OFFENDER_V4, Duration::from_secs(1));
    let unbanned = Instant::now();
    lab.agent().cli_checked(&["unban", OFFENDER_V4]);
    lab.wait_replies(OFFENDER_V4, unbanned, Duration::from_secs(1));
}

/// Issue 16, item 3: a kill -9 within about a second of the very first start lost
/// the lines written while the agent was down: no position was saved yet, so the
/// restart acted as a first run and began at the end (`start = "end"`). The
/// starting position is now saved before the agent answers on its socket.
#[test]
fn lines_written_after_an_early_crash_on_the_first_start_are_read() {
    let Some(mut lab) = Lab::start(
        "lines_written_after_an_early_crash_on_the_first_start_are_read",
        &[JailSpec::ssh(3, "1h")],
    ) else {
        return;
    };
    lab.agent_mut().kill9();
    lab.offend(OFFENDER_V4, 3);
    lab.spawn_agent();
    let entry = lab.wait_listed(OFFENDER_V4, Duration::from_secs(5));
    assert_jail_ban(&entry, OFFENDER_V4, "ssh");
    lab.assert_stays_dropped(OFFENDER_V4);
}

#[test]
fn rename_and_create_rotation_is_followed() {
    let Some(lab) = Lab::start(
        "rename_and_create_rotation_is_followed",
        &[JailSpec::ssh(3, "1h")],
    ) else {
        return;
    };
    lab.offend(MARKER_V4, 3);
    lab.wait_listed(MARKER_V4, Duration::from_secs(2));
    lab.dir.rotate();
    let written = lab.offend(OFFENDER_V4, 3);
    let dropped = lab.wait_dropped(OFFENDER_V4, written, Duration::from_secs(2));
    eprintln!("after rotation: line written -> first dropped ping {dropped:?}");
    lab.assert_keeps_replying(BYSTANDER_V4);
}

#[test]
fn rotation_loses_no_line() {
    let Some(lab) = Lab::start("rotation_loses_no_line", &[JailSpec::ssh(3, "1h")]) else {
        return;
    };
    // Two offences land in the file just before it is renamed away and one in its
    // successor: only if the agent reads both files to the end do they add up.
    lab.offend(OFFENDER_V4, 2);
    lab.dir.rotate();
    let written = lab.offend(OFFENDER_V4, 1);
    lab.wait_dropped(OFFENDER_V4, written, Duration::from_secs(2));
    lab.wait_listed(OFFENDER_V4, Duration::from_secs(1));
}

#[test]
fn nothing_is_left_behind() {
    let Some(lab) = Lab::start("nothing_is_left_behind", &[JailSpec::ssh(3, "1h")]) else {
        return;
    };
    ban_offender(&lab, OFFENDER_V4);
    let objects = KernelObjects::pinned_in(&lab.pins);
    assert!(
        !objects.maps.is_empty() && !objects.links.is_empty() && !objects.programs.is_empty(),
        "expected pinned maps and an XDP link, found {objects:?} in {:?}",
        lab.pins.list()
    );
    let namespaces = [
        lab.wire.server.name().to_owned(),
        lab.wire.attacker.name().to_owned(),
    ];
    let pin_dir = lab.pins.path().to_owned();
    drop(lab);

    // The kernel frees unreferenced objects asynchronously; give it a moment.
    let mut left = objects.still_loaded();
    wait_until(Duration::from_secs(5), Duration::from_millis(50), || {
        left = objects.still_loaded();
        left.is_empty()
    });
    assert!(left.is_empty(), "kernel objects left behind: {left:?}");
    assert!(!pin_dir.exists(), "{} left behind", pin_dir.display());
    let listed = listed_namespaces();
    for ns in &namespaces {
        assert!(!listed.contains(ns), "namespace {ns} left behind");
    }
}
