//! The whole agent with the nftables backend, as root: `log2drop run` in a server
//! namespace, offending lines in the watched log, pings from an attacker namespace.
//! With nftables alone, pings show the set at work; across `kill -9` the set keeps
//! the ban; elements changed by hand while the agent is down are put right by the
//! restart's reconcile. With `backends = ["xdp", "nftables"]` the same jail bans in
//! both at once.
//!
//! The harness writes an XDP config; these tests edit its text (drop or keep the
//! `[backends.xdp]` table, add `[backends.nftables]`, list the jail's backends)
//! instead of growing the harness. Run with `--test-threads=1`.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use log2drop_tests::agent::ssh_fail_line;
use log2drop_tests::veth::{
    BYSTANDER_V4, BYSTANDER_V6, OFFENDER_V4, OFFENDER_V6, SERVER_V4, SERVER_V6,
};
use log2drop_tests::{
    Agent, AgentLab, JailSpec, ban_entry, ping_with_timeout, require_root, wait_until,
};

const DROP_PROBE: Duration = Duration::from_millis(150);
const REPLY_PROBE: Duration = Duration::from_secs(1);
/// Latency the issue promises between the offending line and the drop.
const BAN_DEADLINE: Duration = Duration::from_secs(1);

/// Which backends the agent runs.
#[derive(Clone, Copy, PartialEq)]
enum Backends {
    Nftables,
    Both,
}

log2drop_tests::agent_lab!(
    /// The harness's [`AgentLab`], its config edited for the backends, and this
    /// file's probes.
    Lab
);

/// The harness's config with the backends `which` asks for.
fn edit_config(text: &str, which: Backends) -> String {
    let mut out = String::new();
    let mut in_xdp = false;
    for line in text.lines() {
        if line.starts_with('[') {
            in_xdp = line.trim() == "[backends.xdp]";
            if in_xdp && which == Backends::Nftables {
                continue;
            }
        }
        if in_xdp && which == Backends::Nftables {
            continue;
        }
        if line.trim() == "backends = [\"xdp\"]" {
            out.push_str(match which {
                Backends::Nftables => "backends = [\"nftables\"]\n",
                Backends::Both => "backends = [\"xdp\", \"nftables\"]\n",
            });
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out.push_str("\n[backends.nftables]\ntable = \"log2drop\"\ncounter = true\n");
    out
}

impl Lab {
    fn start(test: &str, which: Backends) -> Option<Lab> {
        if !require_root(test) {
            return None;
        }
        let mut lab = Lab(AgentLab::new(&[JailSpec::ssh(3, "1h")]));
        lab.edit_config(|text| edit_config(&text, which));
        lab.spawn_agent();
        for addr in [OFFENDER_V4, BYSTANDER_V4, OFFENDER_V6, BYSTANDER_V6] {
            assert!(lab.replies(addr), "{addr} gets no reply before any ban");
        }
        Some(lab)
    }

    fn replies(&self, from: &str) -> bool {
        let to = if from.contains(':') {
            SERVER_V6
        } else {
            SERVER_V4
        };
        ping_with_timeout(&self.wire.attacker, from, to, REPLY_PROBE)
    }

    fn dropped(&self, from: &str) -> bool {
        let to = if from.contains(':') {
            SERVER_V6
        } else {
            SERVER_V4
        };
        !ping_with_timeout(&self.wire.attacker, from, to, DROP_PROBE)
    }

    fn offend(&self, addr: &str) -> Instant {
        let lines: Vec<String> = (0..3).map(|_| ssh_fail_line(addr)).collect();
        self.dir.append_lines(&lines);
        Instant::now()
    }

    #[track_caller]
    fn wait_dropped(&self, from: &str, since: Instant) {
        let found = wait_until(
            BAN_DEADLINE + Duration::from_secs(2),
            Duration::from_millis(5),
            || self.dropped(from),
        );
        assert!(
            found.is_some(),
            "{from} still answered {:?} after its lines; agent output:\n{}",
            since.elapsed(),
            self.agent
                .as_ref()
                .map(Agent::output_text)
                .unwrap_or_default()
        );
        eprintln!("{from} dropped {:?} after its lines", since.elapsed());
    }

    fn nft(&self, args: &[&str]) -> String {
        let mut argv = vec!["nft"];
        argv.extend_from_slice(args);
        String::from_utf8_lossy(&self.wire.server.exec_checked(&argv).stdout).into_owned()
    }

    fn table(&self) -> String {
        self.nft(&["list", "table", "inet", "log2drop"])
    }

    /// The targets `bans --json` lists (an IPv6 offender may be banned as a prefix,
    /// per the jail's `ipv6_prefix`).
    fn ban_targets(&self) -> Vec<String> {
        self.agent
            .as_ref()
            .map(Agent::bans)
            .unwrap_or_default()
            .iter()
            .filter_map(|b| b.get("address").and_then(|a| a.as_str()).map(str::to_owned))
            .collect()
    }

    /// Whether every listed ban appears in the nftables table, and there are `n`.
    fn table_has_bans(&self, n: usize) -> bool {
        let targets = self.ban_targets();
        let table = self.table();
        targets.len() == n && targets.iter().all(|t| table.contains(t.as_str()))
    }
}

#[test]
fn nftables_agent_bans_survives_kill9_and_reconciles_on_restart() {
    let Some(mut lab) = Lab::start(
        "nftables_agent_bans_survives_kill9_and_reconciles_on_restart",
        Backends::Nftables,
    ) else {
        return;
    };
    let since = lab.offend(OFFENDER_V4);
    lab.wait_dropped(OFFENDER_V4, since);
    let since = lab.offend(OFFENDER_V6);
    lab.wait_dropped(OFFENDER_V6, since);
    assert!(lab.replies(BYSTANDER_V4));
    assert!(lab.replies(BYSTANDER_V6));
    assert!(
        lab.table_has_bans(2),
        "{:?} not all in\n{}",
        lab.ban_targets(),
        lab.table()
    );
    assert!(lab.table().contains("counter packets"));
    // `stats` reports the rule counter, for all bans together.
    let out = lab
        .agent
        .as_ref()
        .expect("agent")
        .cli_checked(&["stats", "--json"]);
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stats printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    let total = stats["drops"]
        .as_array()
        .and_then(|d| d.iter().find(|d| d["backend"] == "nftables"))
        .unwrap_or_else(|| panic!("no nftables drop counter: {stats}"));
    assert_eq!(total["address"], "*", "{stats}");
    assert!(total["packets"].as_u64().is_some_and(|p| p >= 2), "{stats}");

    // A crash leaves the table in place: the ban holds without the agent.
    lab.agent.as_mut().expect("agent").kill9();
    lab.agent = None;
    for _ in 0..3 {
        assert!(lab.dropped(OFFENDER_V4), "ban lost when the agent died");
    }
    assert!(lab.dropped(OFFENDER_V6));

    // Behind the agent's back: its ban removed (few single addresses live in one
    // set per family), a stranger banned.
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
        "ban4",
        &format!("{{ {BYSTANDER_V4} }}"),
    ]);
    assert!(lab.replies(OFFENDER_V4), "the set is what drops it");
    assert!(lab.dropped(BYSTANDER_V4));

    lab.spawn_agent();
    assert!(lab.dropped(OFFENDER_V4), "restart did not put the ban back");
    assert!(
        lab.replies(BYSTANDER_V4),
        "restart did not remove the stranger"
    );
    assert!(lab.dropped(OFFENDER_V6));
    let table = lab.table();
    assert!(
        table.contains(OFFENDER_V4) && !table.contains(BYSTANDER_V4),
        "{table}"
    );
    let out = lab
        .agent
        .as_ref()
        .map(Agent::output_text)
        .unwrap_or_default();
    assert!(out.contains("reconciled"), "no reconcile report in:\n{out}");
}

#[test]
fn xdp_and_nftables_ban_at_once() {
    let Some(lab) = Lab::start("xdp_and_nftables_ban_at_once", Backends::Both) else {
        return;
    };
    let since = lab.offend(OFFENDER_V4);
    lab.wait_dropped(OFFENDER_V4, since);
    let since = lab.offend(OFFENDER_V6);
    lab.wait_dropped(OFFENDER_V6, since);
    assert!(lab.replies(BYSTANDER_V4));
    assert!(lab.replies(BYSTANDER_V6));
    let ok = wait_until(Duration::from_secs(2), Duration::from_millis(20), || {
        lab.table_has_bans(2)
    });
    assert!(
        ok.is_some(),
        "nftables sets lack some of {:?}:\n{}",
        lab.ban_targets(),
        lab.table()
    );
    // Single-address bans are also in XDP's exact maps (prefix bans, such as an
    // IPv6 offender banned as its jail's ipv6_prefix, live in its tries).
    let singles: Vec<IpAddr> = lab
        .ban_targets()
        .iter()
        .filter_map(|t| t.parse().ok())
        .collect();
    assert!(!singles.is_empty(), "{:?}", lab.ban_targets());
    for ip in singles {
        assert!(ban_entry(&lab.pins, ip).is_some(), "XDP map lacks {ip}");
    }
    for addr in [BYSTANDER_V4, BYSTANDER_V6] {
        let ip: IpAddr = addr.parse().expect("constant");
        assert!(ban_entry(&lab.pins, ip).is_none(), "XDP map holds {addr}");
    }
}
