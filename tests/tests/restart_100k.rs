//! Restarting with 100,000 active bans, as root: the bans are written into the state
//! database, then the agent is started cold (empty XDP maps), restarted warm (maps
//! already right), and restarted after the store and the kernel drifted apart while
//! it was down. Each time the agent reconciles the XDP maps with the store in one
//! pass (its `status` reports what that pass added, removed and kept, and how long it
//! took), and the maps end up holding exactly the active bans.
//!
//! The figures (start-to-ready and reconcile time) are printed, not asserted: this
//! is a measurement. Run with `--nocapture` to see them; `LOG2DROP_RESTART_BANS=N`
//! changes the number of bans (for example 1000000). Run with `--test-threads=1`.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use log2drop::engine::{Ban, Decision, Origin};
use log2drop::store::{Batch, Store};
use log2drop_tests::veth::{BYSTANDER_V4, OFFENDER_V4, SERVER_V4};
use log2drop_tests::{
    Agent, AgentDir, JailSpec, NetNs, PinDir, VethPair, exact_bans, ping_with_timeout,
    plant_exact_ban, require_root, wait_until,
};

/// How many bans, unless `LOG2DROP_RESTART_BANS` says otherwise.
const DEFAULT_BANS: usize = 100_000;
/// How many bans change while the agent is down (lifted, and new ones added).
const DRIFT: usize = 1000;

fn ban_count() -> usize {
    std::env::var("LOG2DROP_RESTART_BANS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 300)
        .unwrap_or(DEFAULT_BANS)
}

/// `n` distinct documentation addresses: the offender, 203.0.113.0/24, then
/// addresses in 2001:db8:4000::/48 (away from the lab's own 2001:db8:100::/64).
fn targets(n: usize, offset: usize) -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = Vec::with_capacity(n);
    if offset == 0 {
        out.push(OFFENDER_V4.parse().expect("offender"));
        out.extend((0..=255u8).map(|i| IpAddr::from([203, 0, 113, i])));
    }
    let mut i = offset;
    while out.len() < n {
        let hi = u16::try_from(i >> 16).expect("fits");
        let lo = u16::try_from(i & 0xffff).expect("fits");
        out.push(IpAddr::V6(Ipv6Addr::new(
            0x2001, 0xdb8, 0x4000, 0, 0, 0, hi, lo,
        )));
        i += 1;
    }
    out
}

fn ban(addr: IpAddr, now: SystemTime) -> Ban {
    Ban {
        target: addr.into(),
        jail: Arc::from("manual"),
        since: now,
        until: Some(now + Duration::from_secs(86_400)),
        origin: Origin::Manual,
        reason: None,
        forced: false,
        node: None,
    }
}

/// Starts the agent and waits until `status` answers; returns the agent and the
/// time from spawn to that answer.
fn start(server: &NetNs, dir: &AgentDir) -> (Agent, Duration) {
    let started = Instant::now();
    let mut agent = Agent::spawn(server, dir);
    let mut exited = None;
    let ready = wait_until(Duration::from_secs(120), Duration::from_millis(10), || {
        exited = agent.exit_status();
        exited.is_some() || agent.cli(&["status", "--json"]).status.success()
    });
    assert!(
        exited.is_none() && ready.is_some(),
        "the agent did not become ready ({exited:?}):\n{}",
        agent.output_text()
    );
    (agent, started.elapsed())
}

/// The XDP backend's last reconciliation, from `status --json`, which must list
/// `active` bans.
fn reconcile(agent: &Agent, active: usize) -> serde_json::Value {
    let out = agent.cli_checked(&["status", "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status json");
    let xdp = status["backends"]
        .as_array()
        .and_then(|b| b.iter().find(|b| b["name"] == "xdp"))
        .unwrap_or_else(|| panic!("no xdp backend in {status}"));
    assert_eq!(xdp["healthy"], true, "{xdp}");
    assert_eq!(
        status["bans_active"].as_u64(),
        Some(active as u64),
        "{status}"
    );
    xdp["reconcile"].clone()
}

/// The agent's own start-up milestones (state loaded, reconciled, running), for the
/// report: where the start-up time went.
fn milestones(agent: &Agent) -> String {
    let out = agent.output_text();
    let keep = ["state loaded", "backend reconciled", "log2drop running"];
    // The output file spans every start; this start's lines are the last ones.
    let lines: Vec<&str> = out
        .lines()
        .filter(|l| keep.iter().any(|k| l.contains(k)))
        .collect();
    lines[lines.len().saturating_sub(keep.len())..]
        .iter()
        .map(|l| format!("    {l}\n"))
        .collect()
}

fn counts(r: &serde_json::Value) -> [u64; 4] {
    ["added", "removed", "updated", "kept"].map(|k| r[k].as_u64().unwrap_or(u64::MAX))
}

fn took_ms(r: &serde_json::Value) -> f64 {
    r["took_us"].as_u64().unwrap_or(0) as f64 / 1000.0
}

#[test]
fn restart_with_100k_bans_reconciles_the_xdp_maps_in_one_pass() {
    if !require_root("restart_with_100k_bans_reconciles_the_xdp_maps_in_one_pass") {
        return;
    }
    let n = ban_count();
    let server = NetNs::new();
    let attacker = NetNs::new();
    let veth = VethPair::server_attacker(&server, &attacker);
    let pins = PinDir::new();
    let dir = AgentDir::new();
    dir.write_config(
        &[veth.a().ifname.as_str()],
        pins.path(),
        &[JailSpec::ssh(3, "1h")],
    );

    // The store as a previous run left it: n active bans.
    let now = SystemTime::now();
    let mut active: BTreeSet<IpAddr> = targets(n, 0).into_iter().collect();
    assert_eq!(active.len(), n);
    let written = Instant::now();
    {
        let mut store = Store::open(&dir.state_dir()).expect("store");
        let batch: Vec<Decision> = active.iter().map(|a| Decision::Ban(ban(*a, now))).collect();
        store
            .write(Batch::at(now).decisions(&batch))
            .expect("record bans");
    }
    let store_write = written.elapsed();
    let ready_probe = Duration::from_secs(1);
    assert!(
        ping_with_timeout(&attacker, BYSTANDER_V4, SERVER_V4, ready_probe),
        "no reply before the agent runs"
    );

    // Cold: the maps are empty; everything is added in one pass.
    let (mut agent, cold_ready) = start(&server, &dir);
    let cold = reconcile(&agent, n);
    eprint!("cold start:\n{}", milestones(&agent));
    assert_eq!(counts(&cold), [n as u64, 0, 0, 0], "cold reconcile: {cold}");
    assert_eq!(
        exact_bans(&pins),
        active,
        "the maps hold exactly the stored bans"
    );
    assert!(
        !ping_with_timeout(
            &attacker,
            OFFENDER_V4,
            SERVER_V4,
            Duration::from_millis(200)
        ),
        "{OFFENDER_V4} is banned and still answered"
    );
    // A bystander still gets through (retried: a loaded machine may be slow).
    let through = wait_until(Duration::from_secs(10), Duration::from_millis(100), || {
        ping_with_timeout(&attacker, BYSTANDER_V4, SERVER_V4, ready_probe)
    });
    assert!(
        through.is_some(),
        "{BYSTANDER_V4} dropped with {n} other bans"
    );
    assert!(agent.terminate().success(), "{}", agent.output_text());

    // Warm: the pinned maps already hold every ban; nothing is rewritten.
    let (mut agent, warm_ready) = start(&server, &dir);
    let warm = reconcile(&agent, n);
    eprint!("warm restart:\n{}", milestones(&agent));
    assert_eq!(counts(&warm), [0, 0, 0, n as u64], "warm reconcile: {warm}");
    assert_eq!(exact_bans(&pins), active);
    assert!(agent.terminate().success(), "{}", agent.output_text());

    // Drift while down: DRIFT bans lifted in the store, DRIFT new ones recorded, and
    // one entry planted in the kernel behind the agent's back.
    let lifted: Vec<IpAddr> = active.iter().rev().take(DRIFT).copied().collect();
    let added = targets(DRIFT, n + 1);
    {
        let mut store = Store::open(&dir.state_dir()).expect("store");
        let mut batch: Vec<Decision> = lifted
            .iter()
            .map(|a| Decision::Unban(ban(*a, now)))
            .collect();
        batch.extend(added.iter().map(|a| Decision::Ban(ban(*a, now))));
        store
            .write(Batch::at(SystemTime::now()).decisions(&batch))
            .expect("drift");
    }
    let stray: IpAddr = "2001:db8:ffff::1".parse().expect("stray");
    plant_exact_ban(&pins, stray, 0);
    for a in &lifted {
        active.remove(a);
    }
    active.extend(added.iter().copied());
    let (mut agent, drift_ready) = start(&server, &dir);
    let drift = reconcile(&agent, n);
    assert_eq!(
        counts(&drift),
        [DRIFT as u64, DRIFT as u64 + 1, 0, (n - DRIFT) as u64],
        "drift reconcile: {drift}"
    );
    assert_eq!(
        exact_bans(&pins),
        active,
        "the maps hold exactly the stored bans"
    );
    assert!(agent.terminate().success(), "{}", agent.output_text());

    let report = format!(
        "restart with {n} active bans (XDP, exact-address maps), \
         `cargo test -p log2drop-tests --test restart_100k -- --nocapture`:\n\
         - store write of {n} bans in one transaction: {store_write:.2?}\n\
         - cold start (maps empty): ready in {cold_ready:.2?}, reconcile {:.1} ms ({} added)\n\
         - warm restart (maps right): ready in {warm_ready:.2?}, reconcile {:.1} ms ({} kept)\n\
         - restart after drift ({DRIFT} lifted, {DRIFT} new, 1 stray): ready in {drift_ready:.2?}, \
           reconcile {:.1} ms ({} added, {} removed, {} kept)",
        took_ms(&cold),
        counts(&cold)[0],
        took_ms(&warm),
        counts(&warm)[3],
        took_ms(&drift),
        counts(&drift)[0],
        counts(&drift)[1],
        counts(&drift)[3],
    );
    println!("{report}");
    eprintln!("{report}");
}
