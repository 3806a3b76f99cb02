//! The systemd unit's capability set, proved on the real kernel: the agent runs under
//! `setpriv` with exactly the unit's `CapabilityBoundingSet`/`AmbientCapabilities`
//! (read from contrib/systemd/log2drop.service, so the test follows the unit), bans
//! and unbans through XDP and nftables, and the offender's packets are dropped. With
//! a capability taken away it fails at start-up with a message that says what is
//! missing. Run with `--test-threads=1`.

use log2drop_tests::agent::quote_path;
use log2drop_tests::veth::{BYSTANDER_V4, OFFENDER_V4};
use log2drop_tests::{Agent, AgentDir, PinDir, WireLab, require_root, wait_until};
use std::time::Duration;

/// The unit's `CapabilityBoundingSet=` capabilities, lower-case without `cap_`, as
/// setpriv spells them.
fn unit_capabilities() -> Vec<String> {
    let unit = include_str!("../../contrib/systemd/log2drop.service");
    let line = unit
        .lines()
        .find_map(|l| l.strip_prefix("CapabilityBoundingSet="))
        .expect("the unit sets CapabilityBoundingSet");
    let ambient = unit
        .lines()
        .find_map(|l| l.strip_prefix("AmbientCapabilities="))
        .expect("the unit sets AmbientCapabilities");
    assert_eq!(line, ambient, "bounding and ambient sets differ");
    line.split_whitespace()
        .map(|c| c.trim_start_matches("CAP_").to_ascii_lowercase())
        .collect()
}

/// `setpriv` arguments that leave exactly `caps` (bounding, inheritable, ambient),
/// as systemd does for the unit.
fn setpriv(caps: &[String]) -> Vec<String> {
    let set: String = std::iter::once("-all".to_owned())
        .chain(caps.iter().map(|c| format!("+{c}")))
        .collect::<Vec<_>>()
        .join(",");
    vec![
        "setpriv".into(),
        format!("--bounding-set={set}"),
        format!("--inh-caps={set}"),
        format!("--ambient-caps={set}"),
    ]
}

fn write_config(dir: &AgentDir, iface: &str, pins: &PinDir, xdp: bool) {
    let mut t = format!(
        "[agent]\nstate_dir = {}\nsocket = {}\n\n[backends.nftables]\n\n",
        quote_path(&dir.state_dir()),
        quote_path(&dir.socket_path())
    );
    if xdp {
        t.push_str(&format!(
            "[backends.xdp]\ninterfaces = [\"{iface}\"]\npin_dir = {}\n\n",
            quote_path(pins.path())
        ));
    }
    t.push_str(&format!(
        "[sources.auth]\npath = {}\nfilters = [\"sshd\"]\n\n[jails.ssh]\nfilters = [\"sshd\"]\n",
        quote_path(&dir.watched_log())
    ));
    std::fs::write(dir.config_path(), t).expect("write config");
}

fn spawn(lab: &WireLab, dir: &AgentDir, caps: &[String]) -> Agent {
    let wrapper = setpriv(caps);
    let wrapper: Vec<&str> = wrapper.iter().map(String::as_str).collect();
    Agent::spawn_wrapped(&lab.server, dir, &wrapper)
}

#[test]
fn agent_bans_with_exactly_the_units_capabilities() {
    if !require_root("agent_bans_with_exactly_the_units_capabilities") {
        return;
    }
    let caps = unit_capabilities();
    let lab = WireLab::new();
    let pins = PinDir::new();
    let dir = AgentDir::new();
    write_config(&dir, &lab.veth.a().ifname, &pins, true);
    let mut agent = spawn(&lab, &dir, &caps);
    agent.wait_ready();
    agent.cli_checked(&["ban", OFFENDER_V4, "--for", "1h"]);
    lab.assert_dropped(OFFENDER_V4);
    lab.assert_replies(BYSTANDER_V4);
    // Both backends hold it: the nftables set too, not only the XDP map.
    let nft = log2drop_tests::cmd::checked(&[
        "nsenter",
        &format!("--net={}", lab.server.path().display()),
        "nft",
        "list",
        "table",
        "inet",
        "log2drop",
    ]);
    assert!(String::from_utf8_lossy(&nft.stdout).contains(OFFENDER_V4));
    agent.cli_checked(&["unban", OFFENDER_V4]);
    lab.assert_replies(OFFENDER_V4);
    let status = agent.terminate();
    assert!(status.success(), "{status}:\n{}", agent.output_text());
}

/// Starts the agent without `missing` and returns its output once it has exited.
fn fails_without(missing: &str, xdp: bool) -> String {
    let caps: Vec<String> = unit_capabilities()
        .into_iter()
        .filter(|c| c != missing)
        .collect();
    let lab = WireLab::new();
    let pins = PinDir::new();
    let dir = AgentDir::new();
    write_config(&dir, &lab.veth.a().ifname, &pins, xdp);
    let mut agent = spawn(&lab, &dir, &caps);
    let exited = wait_until(Duration::from_secs(15), Duration::from_millis(50), || {
        agent.exit_status().is_some()
    });
    assert!(
        exited.is_some(),
        "the agent kept running without {missing}:\n{}",
        agent.output_text()
    );
    let status = agent.exit_status().expect("exited");
    assert!(!status.success());
    agent.output_text()
}

#[test]
fn agent_fails_clearly_without_them() {
    if !require_root("agent_fails_clearly_without_them") {
        return;
    }
    let out = fails_without("net_admin", false);
    assert!(out.contains("needs CAP_NET_ADMIN"), "{out}");
    let out = fails_without("perfmon", true);
    assert!(
        out.contains("cannot load (verify) the XDP program"),
        "{out}"
    );
}
