//! The host's own addresses, as root, in throwaway namespaces: the rtnetlink
//! watcher reports addresses as they are added and removed, and the running agent
//! allowlists a new address of its host at once, lifting a ban that covers it.
//! Run with `--test-threads=1`.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

use log2drop::ownaddrs;
use log2drop_tests::agent::ssh_fail_line;
use log2drop_tests::veth::{BYSTANDER_V6, OFFENDER_V6, SERVER_V6};
use log2drop_tests::{AgentLab, JailSpec, NetNs, require_root, wait_until};
use tokio::sync::mpsc;

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

/// Waits for an update from the watcher that satisfies `ok`; panics after 5 s
/// with the last set seen.
async fn wait_for(
    rx: &mut mpsc::Receiver<Vec<IpAddr>>,
    what: &str,
    ok: impl Fn(&BTreeSet<IpAddr>) -> bool,
) -> BTreeSet<IpAddr> {
    let mut last = BTreeSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(set)) => {
                last = set.into_iter().collect();
                if ok(&last) {
                    return last;
                }
            }
            Ok(None) => panic!("watcher stopped while waiting for {what}"),
            Err(_) => panic!("no update with {what} within 5 s; last set: {last:?}"),
        }
    }
}

#[test]
fn watcher_reports_added_and_removed_addresses() {
    if !require_root("watcher_reports_added_and_removed_addresses") {
        return;
    }
    let ns = NetNs::new();
    let dev = "l2dwatch0";
    // A veth pair inside the namespace (this kernel may lack the dummy driver).
    ns.exec_checked(&[
        "ip",
        "link",
        "add",
        dev,
        "type",
        "veth",
        "peer",
        "name",
        "l2dwatch1",
    ]);
    ns.exec_checked(&["ip", "link", "set", dev, "up"]);
    ns.exec_checked(&["ip", "link", "set", "l2dwatch1", "up"]);
    let v4 = ip("192.0.2.41");
    let v6 = ip("2001:db8:41::1");
    // The netlink socket belongs to the namespace of the thread that opens it.
    let _inside = ns.enter();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let (tx, mut rx) = mpsc::channel(16);
        let (initial, watcher) = ownaddrs::watch(tx).await.expect("watch");
        assert!(initial.contains(&ip("127.0.0.1")), "{initial:?}");
        assert!(initial.contains(&ip("::1")), "{initial:?}");
        assert!(!initial.contains(&v4));

        ns.exec_checked(&["ip", "addr", "add", "192.0.2.41/24", "dev", dev]);
        ns.exec_checked(&[
            "ip",
            "-6",
            "addr",
            "add",
            "2001:db8:41::1/64",
            "dev",
            dev,
            "nodad",
        ]);
        let set = wait_for(&mut rx, "both new addresses", |s| {
            s.contains(&v4) && s.contains(&v6)
        })
        .await;
        assert!(set.contains(&ip("127.0.0.1")), "loopback stays: {set:?}");

        ns.exec_checked(&["ip", "addr", "del", "192.0.2.41/24", "dev", dev]);
        wait_for(&mut rx, "the IPv4 address gone", |s| {
            !s.contains(&v4) && s.contains(&v6)
        })
        .await;

        // Removing the interface takes its addresses along.
        ns.exec_checked(&["ip", "link", "del", dev]);
        let set = wait_for(&mut rx, "the IPv6 address gone", |s| !s.contains(&v6)).await;
        assert!(set.contains(&ip("127.0.0.1")), "{set:?}");
        assert!(!watcher.is_finished());
        drop(watcher);
    });
}

#[test]
fn current_lists_a_namespace_s_addresses() {
    if !require_root("current_lists_a_namespace_s_addresses") {
        return;
    }
    let ns = NetNs::new();
    ns.exec_checked(&[
        "ip", "link", "add", "l2dcur0", "type", "veth", "peer", "name", "l2dcur1",
    ]);
    ns.exec_checked(&["ip", "addr", "add", "198.51.100.42/32", "dev", "l2dcur0"]);
    let _inside = ns.enter();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let addrs = rt.block_on(ownaddrs::current()).expect("dump");
    assert!(addrs.contains(&ip("198.51.100.42")), "{addrs:?}");
    assert!(addrs.contains(&ip("127.0.0.1")), "{addrs:?}");
}

/// The agent end to end: a manual ban on an address the host then takes is lifted
/// at once, and that address's offences are ignored from then on.
#[test]
fn agent_lifts_a_ban_when_the_host_gains_the_address() {
    if !require_root("agent_lifts_a_ban_when_the_host_gains_the_address") {
        return;
    }
    let mut lab = AgentLab::new(&[JailSpec::ssh(3, "1h")]);
    lab.spawn_agent();
    let (agent, dir, server) = (lab.agent(), &lab.dir, &lab.wire.server);

    let own = "203.0.113.77";
    agent.cli_checked(&["ban", own]);
    assert!(agent.ban_for(own).is_some());

    server.exec_checked(&["ip", "addr", "add", "203.0.113.77/32", "dev", "lo"]);
    let lifted = wait_until(Duration::from_secs(5), Duration::from_millis(20), || {
        agent.ban_for(own).is_none()
    });
    assert!(
        lifted.is_some(),
        "the ban on the host's new address was not lifted; agent output:\n{}",
        agent.output_text()
    );
    eprintln!("ban lifted {lifted:?} after the address was added");
    assert!(agent.output_text().contains("lifting a ban"));

    // Its offences are ignored now; a marker address behind it gets banned, so
    // everything before the marker was read.
    let marker = "198.51.100.9";
    let mut lines: Vec<String> = (0..3).map(|_| ssh_fail_line(own)).collect();
    lines.extend((0..3).map(|_| ssh_fail_line(marker)));
    dir.append_lines(&lines);
    let seen = wait_until(Duration::from_secs(5), Duration::from_millis(20), || {
        agent.ban_for(marker).is_some()
    });
    assert!(
        seen.is_some(),
        "marker never banned:\n{}",
        agent.output_text()
    );
    assert!(agent.ban_for(own).is_none(), "an own address was banned");
    let refused = agent.cli(&["ban", own]);
    assert!(
        !refused.status.success(),
        "manual ban of an own address must be refused"
    );
    assert!(String::from_utf8_lossy(&refused.stderr).contains("allowlist"));
}

/// IPv6 offenders are banned as their /64 by default, but never over the host's
/// own address: here the server's own address shares the offender's /64, so the
/// ban narrows to the widest prefix around the offender that leaves it out, and
/// a bystander in the same /64 outside that prefix keeps its replies.
#[test]
fn ipv6_ban_narrows_around_the_host_s_own_address() {
    if !require_root("ipv6_ban_narrows_around_the_host_s_own_address") {
        return;
    }
    let mut lab = AgentLab::new(&[JailSpec::ssh(3, "1h").with_ipv6_prefix(64)]);
    lab.spawn_agent();
    let (agent, dir) = (lab.agent(), &lab.dir);
    let replies = |from: &str| lab.wire.replies(from, Duration::from_millis(300));
    let up = wait_until(Duration::from_secs(10), Duration::ZERO, || {
        replies(OFFENDER_V6) && replies(BYSTANDER_V6)
    });
    assert!(up.is_some(), "no IPv6 replies before any ban");

    let lines: Vec<String> = (0..3).map(|_| ssh_fail_line(OFFENDER_V6)).collect();
    dir.append_lines(&lines);
    // Offender ::7 and the server's ::1 first differ in the bit worth 4.
    let narrowed = "2001:db8:100::4/126";
    let listed = wait_until(Duration::from_secs(5), Duration::from_millis(20), || {
        agent.ban_for(narrowed).is_some()
    });
    assert!(
        listed.is_some(),
        "no {narrowed} ban; bans: {:?}\n{}",
        agent.bans(),
        agent.output_text()
    );
    assert_eq!(agent.bans().len(), 1, "{:?}", agent.bans());
    let dropped = wait_until(Duration::from_secs(2), Duration::ZERO, || {
        !replies(OFFENDER_V6)
    });
    assert!(dropped.is_some(), "{OFFENDER_V6} still gets replies");
    assert!(replies(BYSTANDER_V6), "{BYSTANDER_V6} lost its replies");
    assert_eq!(SERVER_V6, "2001:db8:100::1", "the lab's layout changed");
}
