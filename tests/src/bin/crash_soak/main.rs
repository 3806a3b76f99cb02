//! `log2drop-crash-soak` (run by `cargo xtask soak --crash`): issue 16's crash-safety
//! proof against the real agent and the real kernel, as root.
//!
//! A server namespace runs the agent with its XDP and nftables backends (separate
//! jails for each) on one end of a veth pair; an attacker namespace holds the other
//! end. A writer floods the watched log with offences (bans of 3, 6 and 10 s, so
//! bans are applied and expire during the run, some while the agent is dead, and
//! single offences that must never ban). The agent is killed with SIGKILL at seeded
//! random moments, every third time within its first second (before it is ready,
//! mostly), then restarted. Meanwhile:
//!
//! - a watcher polls the pinned maps and the nftables sets ([`nft`]): every ban it
//!   sees in force is an applied ban, and one that leaves the kernel before its
//!   deadline, moves its deadline or comes back after it ended is a failure
//!   ([`ledger`]);
//! - datagrams from banned addresses (and from an unbanned control address) cross
//!   the kill and the restart; one that reaches the server's socket while its ban was
//!   in force is a failure ([`traffic`]);
//! - after each kill the crashed database gets `PRAGMA integrity_check` and must hold
//!   every ban in force; after each restart that reaches ready, `bans --json` and the
//!   database must hold every ban in force, and nothing whose deadline passed before
//!   the start may be left in the database, the listing or the map ([`store`]).
//!
//! Every failure is classified and counted; any fails the run. Everything created
//! (namespaces, veth, pins, agent, files) is removed on exit, panics included.

mod flood;
mod ledger;
mod nft;
mod store;
mod traffic;

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::net::{IpAddr, UdpSocket};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use clap::Parser;
use log2drop_tests::agent::quote_path;
use log2drop_tests::veth::{
    BYSTANDER_V4, BYSTANDER_V6, OFFENDER_V4, OFFENDER_V6, SERVER_V4, SERVER_V6,
};
use log2drop_tests::{Agent, AgentDir, NetNs, PinDir, VethPair, try_exact_entries};

use crate::flood::Written;
use crate::ledger::{Event, Failure, Ledger, Phase, TOLERANCE_NS, mono_ns};
use crate::store::Integrity;
use crate::traffic::Counts;

/// Crash-safety soak: kill -9 the agent at random moments during a flood of
/// offences and bans, and check after each restart that no applied ban was lost,
/// no expired one kept, no banned packet passed, and the store is intact.
#[derive(Debug, Parser)]
#[command(name = "log2drop-crash-soak")]
struct Args {
    /// Kill/restart cycles.
    #[arg(long, default_value_t = 100)]
    cycles: u32,
    /// Seed of the kill moments, pauses and bantimes (printed, to reproduce a run).
    #[arg(long)]
    seed: Option<u64>,
    /// The command line to print in the report.
    #[arg(long, default_value = "log2drop-crash-soak")]
    command_line: String,
    /// Where to copy the agent's output (every run of it) when the soak fails.
    #[arg(long, value_name = "PATH")]
    failed_output: Option<std::path::PathBuf>,
}

/// What the threads share.
pub(crate) struct Shared {
    pub(crate) stop: AtomicBool,
    /// Ends the flood only (before the last checks).
    pub(crate) stop_writing: AtomicBool,
    pub(crate) cycle: AtomicU32,
    pub(crate) phase: AtomicU8,
    pub(crate) ledger: Mutex<Ledger>,
    pub(crate) counts: Mutex<Counts>,
    pub(crate) written: Mutex<Written>,
    pub(crate) events: Mutex<Vec<Event>>,
}

impl Shared {
    fn event(&self, failure: Failure, cycle: u32, detail: String) {
        let phase = Phase::from_u8(self.phase.load(Ordering::SeqCst));
        self.events.lock().expect("events lock").push(Event {
            failure,
            cycle,
            phase,
            detail,
        });
    }
    fn set_phase(&self, p: Phase) {
        self.phase.store(p.as_u8(), Ordering::SeqCst);
    }
}

/// Sets the stop flag when dropped, so a panicking main loop still ends the threads
/// (the scope joins them before unwinding further).
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// xorshift64: the soak's only randomness, from the seed.
pub(crate) fn next(rng: &mut u64) -> u64 {
    *rng ^= *rng << 13;
    *rng ^= *rng >> 7;
    *rng ^= *rng << 17;
    *rng
}

/// Kills within this long of the spawn count as "in the first second".
const EARLY: Duration = Duration::from_secs(1);
/// Longest wait for the agent to answer on its socket: a loaded machine is slow,
/// but an agent that never answers is a failure, said clearly.
const READY_WAIT: Duration = Duration::from_secs(120);
/// How often the watcher reads the pinned maps.
const WATCH_EVERY: Duration = Duration::from_millis(50);
/// The nftables sets are read every this many polls.
const NFT_EVERY: u32 = 4;
/// Prefixes of the flood addresses, routed to the veth in the server namespace so
/// nothing but XDP can drop their datagrams (no reverse-path filter).
const FLOOD_ROUTES: [&str; 3] = ["192.0.2.0/24", "203.0.113.0/24", "2001:db8:c000::/48"];

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("crash soak error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Kill/restart schedule and what was seen of it.
#[derive(Debug, Default)]
struct Figures {
    kills: u32,
    kills_early: u32,
    kills_before_ready: u32,
    kill_after_ms: Vec<u64>,
    restarts_verified: u32,
    /// When the agent first answered (monotonic ns): with `start = "end"`, lines
    /// written before a first start that was killed before it saved its starting
    /// position are skipped by design.
    first_ready_ns: Option<u64>,
    ready_ms: Vec<u64>,
    bans_checked_after_restart: u64,
    bans_checked_at_crash: u64,
    integrity: BTreeMap<&'static str, u32>,
}

fn run(args: &Args) -> Result<bool> {
    if !nix::unistd::geteuid().is_root() {
        bail!("the crash soak needs root (network namespaces, veth, XDP, bpffs)");
    }
    for (tool, flag) in [("nft", "--version"), ("ip", "-V"), ("nsenter", "--version")] {
        let found = std::process::Command::new(tool)
            .arg(flag)
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            bail!(
                "`{tool} --version` failed: the crash soak needs nftables, iproute2 and util-linux"
            );
        }
    }
    let started = Instant::now();
    let seed = args.seed.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
    });
    eprintln!(
        "crash soak: {} cycles, seed {seed} (reproduce with --seed {seed})",
        args.cycles
    );

    // Declared in drop order's reverse: the agent goes first, the namespaces last.
    let server = NetNs::new();
    let attacker = NetNs::new();
    let veth = VethPair::server_attacker(&server, &attacker);
    let ifname = veth.a().ifname.clone();
    for route in FLOOD_ROUTES {
        server.exec_checked(&["ip", "route", "add", route, "dev", &ifname]);
    }
    let pins = PinDir::new();
    let dir = AgentDir::new();
    std::fs::write(dir.config_path(), config(&dir, &ifname, pins.path()))
        .with_context(|| format!("writing {}", dir.config_path().display()))?;

    let parse = |s: &str| -> IpAddr { s.parse().expect("address constant") };
    let receiver = {
        let _in = server.enter();
        let sock = UdpSocket::bind(("::", traffic::PORT)).context("binding the probe receiver")?;
        // The receiver may lag on a loaded machine; a datagram dropped for want of
        // buffer could hide a pass.
        traffic::set_int(&sock, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, 16 << 20)
            .context("SO_RCVBUFFORCE on the probe receiver")?;
        sock
    };
    let sender = {
        let _in = attacker.enter();
        traffic::Sender::new(parse(SERVER_V4), parse(SERVER_V6))
            .context("opening the probe sender")?
    };
    let control = [parse(BYSTANDER_V4), parse(BYSTANDER_V6)];

    let shared = Shared {
        stop: AtomicBool::new(false),
        stop_writing: AtomicBool::new(false),
        cycle: AtomicU32::new(0),
        phase: AtomicU8::new(Phase::Dead.as_u8()),
        ledger: Mutex::new(Ledger::default()),
        counts: Mutex::new(Counts::default()),
        written: Mutex::new(Written::default()),
        events: Mutex::new(Vec::new()),
    };
    let mut rng = seed | 1;
    let writer_rng = next(&mut rng) | 1;
    let figures = std::thread::scope(|s| {
        let _stop = StopOnDrop(&shared.stop);
        s.spawn(|| watch_loop(&shared, &pins, &server));
        s.spawn(|| traffic::send_loop(&shared, &sender, &control));
        s.spawn(|| traffic::receive_loop(&shared, &receiver, &control, &shared.events));
        s.spawn(|| flood::write_loop(&shared, &dir.watched_log(), writer_rng));
        cycles(&shared, &server, &dir, &pins, args.cycles, &mut rng)
    })?;

    never_banned(&shared, &figures);
    let report = report(&shared, &figures, args, seed, started.elapsed());
    println!("{report}");
    let events = shared.events.lock().expect("events lock");
    let exercised = exercised(&shared, &figures);
    if !events.is_empty() || !exercised.is_empty() {
        eprintln!("crash soak FAILED (seed {seed}):");
        for e in events.iter().take(50) {
            eprintln!("  {e}");
        }
        if events.len() > 50 {
            eprintln!("  ... and {} more", events.len() - 50);
        }
        for why in &exercised {
            eprintln!("  the soak did not exercise what it checks: {why}");
        }
        if let Some(to) = &args.failed_output {
            match std::fs::copy(dir.agent_output(), to) {
                Ok(_) => eprintln!("  the agent's whole output is in {}", to.display()),
                Err(e) => eprintln!("  cannot copy the agent's output to {}: {e}", to.display()),
            }
        }
        eprintln!(
            "---- agent output (last 60 lines of {}) ----",
            dir.agent_output().display()
        );
        let out = std::fs::read_to_string(dir.agent_output()).unwrap_or_default();
        let lines: Vec<&str> = out.lines().collect();
        for l in &lines[lines.len().saturating_sub(60)..] {
            eprintln!("{l}");
        }
        return Ok(false);
    }
    Ok(true)
}

/// The agent's config: XDP on the server's veth end, the flood jails and the
/// sentinel jail (one long ban, held across every kill), single addresses only.
fn config(dir: &AgentDir, ifname: &str, pin_dir: &Path) -> String {
    let mut t = String::new();
    let _ = writeln!(t, "[agent]");
    let _ = writeln!(t, "state_dir = {}", quote_path(&dir.state_dir()));
    let _ = writeln!(t, "socket = {}", quote_path(&dir.socket_path()));
    let _ = writeln!(t, "allow = [\"127.0.0.0/8\", \"::1\"]\n");
    let _ = writeln!(t, "[backends.xdp]");
    let _ = writeln!(t, "interfaces = [\"{ifname}\"]");
    let _ = writeln!(t, "pin_dir = {}", quote_path(pin_dir));
    let _ = writeln!(t, "mode = \"auto\"\n");
    let _ = writeln!(t, "[backends.nftables]");
    let _ = writeln!(t, "table = \"{}\"\n", nft::TABLE);
    let jails: Vec<(&str, &str, u32, &str)> = flood::JAILS
        .iter()
        .map(|(j, b, backend)| (*j, *b, flood::MAXRETRY, *backend))
        .chain([("sentinel", "1d", 1, "xdp")])
        .collect();
    for (jail, _, _, _) in &jails {
        let _ = writeln!(t, "[filters.{jail}]");
        let _ = writeln!(
            t,
            "regex = ['crash offence jail={jail} from <HOST> seq \\d+']\n"
        );
    }
    let _ = writeln!(t, "[sources.flood]");
    let _ = writeln!(t, "path = {}", quote_path(&dir.watched_log()));
    let names: Vec<String> = jails
        .iter()
        .map(|(j, _, _, _)| format!("\"{j}\""))
        .collect();
    let _ = writeln!(t, "filters = [{}]", names.join(", "));
    for (jail, bantime, maxretry, backend) in &jails {
        let _ = writeln!(t, "\n[jails.{jail}]");
        let _ = writeln!(t, "filters = [\"{jail}\"]");
        let _ = writeln!(t, "maxretry = {maxretry}");
        let _ = writeln!(t, "findtime = \"1h\"");
        let _ = writeln!(t, "bantime = \"{bantime}\"");
        let _ = writeln!(t, "ipv6_prefix = 128");
        let _ = writeln!(t, "backends = [\"{backend}\"]");
    }
    t
}

/// Reads both backends' kernel state into the ledger: the XDP maps every poll,
/// the nftables sets (a process per read) every [`NFT_EVERY`] polls, the last good
/// listing standing in between (its deadlines still age correctly).
fn watch_loop(shared: &Shared, pins: &PinDir, server: &NetNs) {
    let mut nft_cache: Vec<(IpAddr, u64)> = Vec::new();
    let mut polls = 0u32;
    while !shared.stop.load(Ordering::SeqCst) {
        let cycle = shared.cycle.load(Ordering::SeqCst);
        let phase = Phase::from_u8(shared.phase.load(Ordering::SeqCst));
        if polls.is_multiple_of(NFT_EVERY)
            && let Some(entries) = nft::set_entries(server)
        {
            nft_cache = entries;
        }
        polls += 1;
        if let Some(mut entries) = try_exact_entries(pins) {
            entries.extend_from_slice(&nft_cache);
            let now = mono_ns();
            let events = shared
                .ledger
                .lock()
                .expect("ledger lock")
                .observe(&entries, now, cycle, phase);
            if !events.is_empty() {
                shared.events.lock().expect("events lock").extend(events);
            }
        }
        std::thread::sleep(WATCH_EVERY);
    }
}

/// The kill/restart loop, then a last restart that is verified and stopped cleanly.
fn cycles(
    shared: &Shared,
    server: &NetNs,
    dir: &AgentDir,
    pins: &PinDir,
    n: u32,
    rng: &mut u64,
) -> Result<Figures> {
    let mut fig = Figures::default();
    let mut sentinel_written = false;
    for cycle in 1..=n {
        shared.cycle.store(cycle, Ordering::SeqCst);
        let early = cycle % 3 == 1;
        let spawn_wall = SystemTime::now();
        let spawn_mono = mono_ns();
        let spawned = Instant::now();
        shared.set_phase(Phase::Starting);
        let mut agent = Agent::spawn(server, dir);
        let kill_at = if early {
            spawned + Duration::from_millis(next(rng) % 1000)
        } else {
            match wait_ready(&mut agent, spawned + READY_WAIT) {
                Ready::Yes(took) => {
                    shared.set_phase(Phase::Running);
                    fig.first_ready_ns.get_or_insert_with(mono_ns);
                    fig.ready_ms.push(took.as_millis() as u64);
                    fig.restarts_verified += 1;
                    verify(
                        shared, &agent, dir, pins, cycle, spawn_wall, spawn_mono, &mut fig,
                    );
                    if !sentinel_written {
                        write_sentinels(dir);
                        sentinel_written = true;
                    }
                    Instant::now() + Duration::from_millis(next(rng) % 2500)
                }
                Ready::Exited(why) | Ready::Timeout(why) => {
                    shared.event(Failure::AgentFailed, cycle, why.clone());
                    bail!("cycle {cycle}: {why}");
                }
            }
        };
        // Early kills hit the start-up wherever it is; the agent may also be ready.
        if let Some(left) = kill_at.checked_duration_since(Instant::now()) {
            std::thread::sleep(left);
        }
        if early && shared.phase.load(Ordering::SeqCst) == Phase::Starting.as_u8() {
            if let Some(status) = agent.exit_status() {
                let why = format!("the agent exited on its own during start-up ({status})");
                shared.event(Failure::AgentFailed, cycle, why.clone());
                bail!("cycle {cycle}: {why}");
            }
            // Connecting is instant (no client process), so the kill is not
            // delayed; the socket is bound after the backends are reconciled.
            if std::os::unix::net::UnixStream::connect(dir.socket_path()).is_ok() {
                shared.set_phase(Phase::Running);
            } else {
                fig.kills_before_ready += 1;
            }
        }
        let after = spawned.elapsed();
        agent.kill9();
        shared.set_phase(Phase::Dead);
        fig.kills += 1;
        fig.kill_after_ms.push(after.as_millis() as u64);
        if after < EARLY {
            fig.kills_early += 1;
        }
        crash_check(shared, dir, cycle, &mut fig)?;
        // Dead for a moment: lines pile up, some bans reach their deadline.
        std::thread::sleep(Duration::from_millis(next(rng) % 500));
    }

    // The restart after the last kill is verified too, then stopped cleanly.
    shared.cycle.store(n + 1, Ordering::SeqCst);
    let spawn_wall = SystemTime::now();
    let spawn_mono = mono_ns();
    let spawned = Instant::now();
    shared.set_phase(Phase::Starting);
    let mut agent = Agent::spawn(server, dir);
    match wait_ready(&mut agent, spawned + READY_WAIT) {
        Ready::Yes(took) => {
            shared.set_phase(Phase::Running);
            fig.ready_ms.push(took.as_millis() as u64);
            fig.restarts_verified += 1;
            verify(
                shared,
                &agent,
                dir,
                pins,
                n + 1,
                spawn_wall,
                spawn_mono,
                &mut fig,
            );
            catch_up(shared);
        }
        Ready::Exited(why) | Ready::Timeout(why) => {
            shared.event(Failure::AgentFailed, n + 1, why.clone());
            bail!("last restart: {why}");
        }
    }
    let status = agent.terminate();
    shared.set_phase(Phase::Dead);
    if !status.success() {
        shared.event(
            Failure::AgentFailed,
            n + 1,
            format!("exit status {status} after SIGTERM"),
        );
    }
    crash_check(shared, dir, n + 1, &mut fig)?;
    // Let the traffic threads see the stopped agent before they end.
    std::thread::sleep(Duration::from_millis(200));
    Ok(fig)
}

/// Stops the flood and gives the last agent time to apply every ban written: waits
/// until the number of written bans never seen applied stops falling (bounded).
fn catch_up(shared: &Shared) {
    shared.stop_writing.store(true, Ordering::SeqCst);
    let unseen = || {
        let written = shared.written.lock().expect("written lock");
        let ledger = shared.ledger.lock().expect("ledger lock");
        written
            .bans
            .keys()
            .filter(|a| !ledger.seen.contains_key(a))
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = unseen();
    let mut still_since = Instant::now();
    while last > 0 && Instant::now() < deadline && still_since.elapsed() < Duration::from_secs(3) {
        std::thread::sleep(Duration::from_millis(100));
        let now = unseen();
        if now != last {
            last = now;
            still_since = Instant::now();
        }
    }
}

enum Ready {
    Yes(Duration),
    Exited(String),
    Timeout(String),
}

/// Polls `status` until it answers, the agent exits, or `deadline`.
fn wait_ready(agent: &mut Agent, deadline: Instant) -> Ready {
    let started = Instant::now();
    loop {
        if let Some(status) = agent.exit_status() {
            return Ready::Exited(format!("the agent exited on its own ({status})"));
        }
        let out = agent.cli(&["status", "--json"]);
        if out.status.success() {
            return Ready::Yes(started.elapsed());
        }
        if Instant::now() > deadline {
            return Ready::Timeout(format!(
                "the agent did not answer `status` within {READY_WAIT:?}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The sentinels: one long ban per family, written once the agent first answered,
/// held (and probed) across every later kill.
fn write_sentinels(dir: &AgentDir) {
    dir.append_lines(&[
        flood::line("sentinel", OFFENDER_V4.parse().expect("addr"), 0),
        flood::line("sentinel", OFFENDER_V6.parse().expect("addr"), 0),
    ]);
}

fn wall_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// After a kill (no agent running): the crashed database passes `PRAGMA
/// integrity_check` and holds every ban the kernel enforced that is still in force.
fn crash_check(shared: &Shared, dir: &AgentDir, cycle: u32, fig: &mut Figures) -> Result<()> {
    let state = dir.state_dir();
    let integrity = store::integrity(&state)?;
    let key = match &integrity {
        Integrity::NoDatabase => "no database yet",
        Integrity::Ok => "ok",
        Integrity::Damaged(what) => {
            shared.event(Failure::IntegrityCheck, cycle, what.clone());
            "not ok"
        }
    };
    *fig.integrity.entry(key).or_default() += 1;
    let rows = store::ban_rows(&state)?;
    let now = mono_ns();
    let hold = shared
        .ledger
        .lock()
        .expect("ledger lock")
        .must_hold(now, now);
    for (addr, _) in hold {
        fig.bans_checked_at_crash += 1;
        if !rows.contains_key(&addr) {
            shared.event(
                Failure::LostFromStoreAtCrash,
                cycle,
                format!("{addr} is in force in the kernel but has no row"),
            );
        }
    }
    Ok(())
}

/// After a restart answered: every ban in force is listed and stored with its
/// deadline; nothing that ended before the start is left anywhere; no noise
/// address is banned.
#[allow(clippy::too_many_arguments)]
fn verify(
    shared: &Shared,
    agent: &Agent,
    dir: &AgentDir,
    pins: &PinDir,
    cycle: u32,
    spawn_wall: SystemTime,
    spawn_mono: u64,
    fig: &mut Figures,
) {
    let t0 = mono_ns();
    let out = agent.cli(&["bans", "--json"]);
    let listing: HashSet<IpAddr> = match serde_json::from_slice::<serde_json::Value>(&out.stdout) {
        Ok(serde_json::Value::Array(v)) if out.status.success() => v
            .iter()
            .filter_map(|b| b.get("address")?.as_str())
            .filter_map(|a| a.split('/').next()?.parse().ok())
            .collect(),
        _ => {
            shared.event(
                Failure::AgentFailed,
                cycle,
                format!(
                    "`bans --json` failed ({}): {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            );
            return;
        }
    };
    let rows = match store::ban_rows(&dir.state_dir()) {
        Ok(r) => r,
        Err(e) => {
            shared.event(Failure::AgentFailed, cycle, format!("{e:#}"));
            return;
        }
    };
    let entries = try_exact_entries(pins).unwrap_or_default();
    let now_mono = mono_ns();
    let now_wall = wall_ms(SystemTime::now());
    let spawn_wall = wall_ms(spawn_wall);
    let ledger = shared.ledger.lock().expect("ledger lock");
    for (addr, seen) in ledger.must_hold(now_mono, t0) {
        fig.bans_checked_after_restart += 1;
        if !listing.contains(&addr) {
            shared.event(Failure::LostFromListing, cycle, format!("{addr}"));
        }
        match rows.get(&addr) {
            None => shared.event(Failure::LostFromStore, cycle, format!("{addr}")),
            Some(until) => {
                let expected = (seen.deadline_ns != 0)
                    .then(|| now_wall + (seen.deadline_ns as i64 - now_mono as i64) / 1_000_000);
                let differs = match (until, expected) {
                    (None, None) => false,
                    (Some(u), Some(e)) => u.abs_diff(e) > TOLERANCE_NS / 1_000_000,
                    _ => true,
                };
                if differs {
                    shared.event(
                        Failure::StoreDeadlineDiffers,
                        cycle,
                        format!("{addr}: database {until:?} ms, kernel {expected:?} ms"),
                    );
                }
            }
        }
    }
    for (addr, until) in &rows {
        if until.is_some_and(|u| u < spawn_wall) {
            shared.event(
                Failure::KeptExpiredStore,
                cycle,
                format!(
                    "{addr}: ended {} ms before the start",
                    spawn_wall - until.unwrap_or(0)
                ),
            );
        }
    }
    for addr in &listing {
        if let Some(s) = ledger.seen.get(addr)
            && s.deadline_ns != 0
            && s.deadline_ns + TOLERANCE_NS < spawn_mono
        {
            shared.event(Failure::KeptExpiredListing, cycle, format!("{addr}"));
        }
    }
    for (addr, deadline) in &entries {
        if *deadline != 0 && *deadline < spawn_mono {
            shared.event(
                Failure::KeptExpiredKernel,
                cycle,
                format!(
                    "{addr}: deadline {:.3} s before the start",
                    (spawn_mono - deadline) as f64 / 1e9
                ),
            );
        }
    }
    let live_kernel = entries
        .iter()
        .filter(|(_, d)| ledger::live(*d, now_mono))
        .map(|(a, _)| a);
    let banned: HashSet<&IpAddr> = listing
        .iter()
        .chain(rows.keys())
        .chain(live_kernel)
        .collect();
    for addr in banned {
        if flood::is_noise(*addr) {
            shared.event(Failure::FalseBan, cycle, format!("{addr}"));
        }
    }
}

/// Every ban written after the agent first answered must have been applied once the
/// last agent caught up (lines written before that may be skipped by `start = "end"`
/// when the first start was killed before it saved its position).
fn never_banned(shared: &Shared, fig: &Figures) {
    let first_ready = fig.first_ready_ns.unwrap_or(u64::MAX);
    let lost: Vec<IpAddr> = {
        let written = shared.written.lock().expect("written lock");
        let ledger = shared.ledger.lock().expect("ledger lock");
        written
            .bans
            .iter()
            .filter(|(a, at)| **at >= first_ready && !ledger.seen.contains_key(a))
            .map(|(a, _)| *a)
            .collect()
    };
    for addr in lost {
        shared.event(Failure::NeverBanned, 0, format!("{addr}"));
    }
}

/// Reasons the run proved nothing (an unexercised check cannot fail).
fn exercised(shared: &Shared, fig: &Figures) -> Vec<String> {
    let mut why = Vec::new();
    let ledger = shared.ledger.lock().expect("ledger lock");
    let counts = shared.counts.lock().expect("counts lock");
    if ledger.seen.is_empty() {
        why.push("no ban was ever seen in the kernel map".into());
    }
    if ledger.expired == 0 {
        why.push("no ban reached its deadline".into());
    }
    if fig.restarts_verified == 0 {
        why.push("no restart reached ready".into());
    }
    if fig.kills_early == 0 {
        why.push("no kill within the first second".into());
    }
    if counts.probes_sent.get(&Phase::Dead).copied().unwrap_or(0) == 0 {
        why.push("no datagram from a banned address was sent while the agent was dead".into());
    }
    if counts.control_received == 0 {
        why.push("no control datagram arrived: the probe path is broken".into());
    }
    why
}

fn median(v: &[u64]) -> u64 {
    let mut v = v.to_vec();
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

fn report(shared: &Shared, fig: &Figures, args: &Args, seed: u64, took: Duration) -> String {
    let ledger = shared.ledger.lock().expect("ledger lock");
    let counts = shared.counts.lock().expect("counts lock");
    let written = shared.written.lock().expect("written lock");
    let events = shared.events.lock().expect("events lock");
    let mut by_failure: BTreeMap<Failure, u64> = BTreeMap::new();
    for e in events.iter() {
        *by_failure.entry(e.failure).or_default() += 1;
    }
    let first_ready = fig.first_ready_ns.unwrap_or(u64::MAX);
    let (never_before_first, never_after_first) = written
        .bans
        .iter()
        .filter(|(a, _)| !ledger.seen.contains_key(a))
        .fold((0, 0), |(b, a), (_, &at)| {
            if at < first_ready {
                (b + 1, a)
            } else {
                (b, a + 1)
            }
        });
    let phase_counts = |m: &BTreeMap<Phase, u64>| {
        [Phase::Running, Phase::Starting, Phase::Dead]
            .iter()
            .map(|p| format!("{} {}", p.name(), m.get(p).copied().unwrap_or(0)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut t = String::new();
    let _ = writeln!(
        t,
        "crash soak: `{}`, seed {seed}, {:.0} s",
        args.command_line,
        took.as_secs_f64()
    );
    let _ = writeln!(t, "| what | count |\n|---|---:|");
    let _ = writeln!(t, "| kill -9 cycles | {} |", fig.kills);
    let _ = writeln!(t, "| kills within 1 s of the spawn | {} |", fig.kills_early);
    let _ = writeln!(
        t,
        "| kills before the agent answered | {} |",
        fig.kills_before_ready
    );
    let _ = writeln!(
        t,
        "| kill moment after spawn, median / max (ms) | {} / {} |",
        median(&fig.kill_after_ms),
        fig.kill_after_ms.iter().max().copied().unwrap_or(0)
    );
    let _ = writeln!(
        t,
        "| restarts verified (answered, then checked) | {} |",
        fig.restarts_verified
    );
    let _ = writeln!(
        t,
        "| spawn to ready, median / max (ms) | {} / {} |",
        median(&fig.ready_ms),
        fig.ready_ms.iter().max().copied().unwrap_or(0)
    );
    let _ = writeln!(
        t,
        "| offence lines written (of them single offences) | {} ({}) |",
        written.lines, written.noise_lines
    );
    let _ = writeln!(
        t,
        "| bans written (2 offences each) / seen applied in the kernel (XDP + nftables) | {} / {} + {} |",
        written.bans.len(),
        ledger
            .seen
            .keys()
            .filter(|a| !written.nft.contains(a))
            .count(),
        ledger
            .seen
            .keys()
            .filter(|a| written.nft.contains(a))
            .count()
    );
    let _ = writeln!(
        t,
        "| bans written never seen applied: before the first ready (start = end) / after | {never_before_first} / {never_after_first} |"
    );
    let _ = writeln!(
        t,
        "| bans that reached their deadline (of them while dead) | {} ({}) |",
        ledger.expired, ledger.expired_while_dead
    );
    let _ = writeln!(
        t,
        "| applied bans checked in the crashed database | {} |",
        fig.bans_checked_at_crash
    );
    let _ = writeln!(
        t,
        "| applied bans checked after restarts (listing + database) | {} |",
        fig.bans_checked_after_restart
    );
    let _ = writeln!(t, "| map polls | {} |", ledger.polls);
    let integrity: Vec<String> = fig
        .integrity
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    let _ = writeln!(
        t,
        "| integrity checks after kills | {} |",
        integrity.join(", ")
    );
    let _ = writeln!(
        t,
        "| datagrams from banned addresses sent, by agent phase | {} |",
        phase_counts(&counts.probes_sent)
    );
    let _ = writeln!(
        t,
        "| of them arrived outside their ban (before seen / after deadline) | {} |",
        counts.arrived_outside_ban
    );
    let _ = writeln!(
        t,
        "| **passed while banned**, by phase | {} |",
        phase_counts(&counts.passed)
    );
    let _ = writeln!(
        t,
        "| control datagrams sent / received | {} / {} |",
        counts.control_sent, counts.control_received
    );
    let _ = writeln!(
        t,
        "\nfailures: {}",
        if by_failure.is_empty() {
            "none".to_string()
        } else {
            String::new()
        }
    );
    for (f, n) in &by_failure {
        let _ = writeln!(t, "- {}: {n}", f.name());
    }
    t
}
