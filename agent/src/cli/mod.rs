//! What each subcommand does, and how its answers are printed. Kept out of the
//! library because it speaks anyhow and writes to the terminal.

pub mod default_config;
pub mod exit;
pub mod filters;
pub mod generate;
pub mod import;
pub mod report;
pub mod test;

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, bail};

use log2drop::control::client::{self, ClientError, DEFAULT_TIMEOUT};
use log2drop::control::protocol::{
    BackendStatus, BanEntry, Changes, Command, DropEntry, FlushReport, ReloadReport, Reply, Stats,
    Status,
};
use log2drop::fleet::FleetStatus;

/// Socket used when neither `--socket` nor `--config` is given.
pub const DEFAULT_SOCKET: &str = "/run/log2drop/log2drop.sock";

/// Where a client command finds the socket.
pub enum SocketArg {
    /// Given directly.
    Path(PathBuf),
    /// Named in a config file.
    FromConfig(PathBuf),
}

impl SocketArg {
    /// The config file this socket came from, if any.
    fn config(&self) -> Option<&Path> {
        match self {
            SocketArg::Path(_) => None,
            SocketArg::FromConfig(c) => Some(c),
        }
    }

    fn resolve(&self) -> Result<PathBuf> {
        match self {
            SocketArg::Path(p) => Ok(p.clone()),
            SocketArg::FromConfig(c) => {
                let cfg = log2drop::config::load(c).with_context(|| {
                    format!("cannot read the control socket path from {}", c.display())
                })?;
                Ok(cfg.agent.socket)
            }
        }
    }
}

/// `log2drop run`.
pub fn run(config: &Path, format: LogFormat) -> Result<()> {
    log2drop::daemon::alloc::tune();
    init_tracing(format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("log2drop")
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime
        .block_on(log2drop::daemon::run(config))
        .with_context(|| format!("log2drop run --config {}", config.display()))
}

/// `log2drop run --log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Lines for people: time, level, target, message, `key=value` fields;
    /// coloured when standard error is a terminal.
    Human,
    /// One JSON object per line, for journald and log shippers.
    Json,
}

fn init_tracing(format: LogFormat) {
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Like `fmt().init()`: also routes the `log` records of dependencies.
    let done = match format {
        LogFormat::Human => log2drop::daemon::log_subscriber(
            std::io::stderr,
            std::io::stderr().is_terminal(),
            filter,
        )
        .try_init(),
        LogFormat::Json => {
            log2drop::daemon::json_log_subscriber(std::io::stderr, filter).try_init()
        }
    };
    if done.is_err() {
        eprintln!("log2drop: logging was already set up");
    }
}

/// `log2drop check`: the same preparation `run` does, minus the system. Exits 78
/// (EX_CONFIG) on a config error, 66 (EX_NOINPUT) when the file cannot be read.
pub fn check(config: &Path) -> ExitCode {
    match log2drop::daemon::prepare(config) {
        Ok(prepared) => {
            // The files `run` reads for the fleet link (password, TLS).
            if let Some(fleet) = &prepared.config.fleet
                && let Err(e) = fleet.build()
            {
                eprintln!("{}: {e}", config.display());
                return ExitCode::from(exit::EX_CONFIG);
            }
            println!("{}: ok", config.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(exit::for_daemon_error(&e).unwrap_or(1))
        }
    }
}

/// The agent's successful reply to `cmd` (decode its data with [`Reply::decode`]).
fn ask(socket: &SocketArg, cmd: Command) -> Result<Reply> {
    let path = socket.resolve()?;
    ask_at(&path, cmd)
}

fn ask_at(path: &Path, cmd: Command) -> Result<Reply> {
    let reply: Reply = client::request(path, &cmd, DEFAULT_TIMEOUT)?;
    if !reply.ok {
        bail!(
            "{}",
            reply
                .error
                .unwrap_or_else(|| "the agent refused without saying why".into())
        );
    }
    Ok(reply)
}

/// `log2drop bans [--jail J] [--json]`.
pub fn bans(socket: &SocketArg, jail: Option<&str>, json: bool) -> Result<()> {
    let data = ask(
        socket,
        Command::Bans {
            jail: jail.map(str::to_owned),
        },
    )?;
    let entries: Vec<BanEntry> = data
        .decode()
        .context("the agent's ban list is not in the expected form")?;
    let mut out = std::io::stdout().lock();
    if json {
        let text = serde_json::to_string(&entries).context("cannot encode the ban list")?;
        writeln!(out, "{text}")?;
    } else {
        write!(out, "{}", ban_table(&entries, SystemTime::now()))?;
    }
    Ok(())
}

/// What `log2drop ban` asks for.
pub struct BanArgs<'a> {
    /// `ADDR[/LEN]`.
    pub target: &'a str,
    /// `--for`.
    pub duration: Option<&'a str>,
    /// `--jail`.
    pub jail: Option<&'a str>,
    /// `--force`.
    pub force: bool,
}

/// `log2drop ban ADDR[/LEN] [--jail J] [--for DUR] [--force]`.
pub fn ban(socket: &SocketArg, args: &BanArgs<'_>) -> Result<()> {
    let target = args.target;
    let net =
        log2drop::addr::parse_target(target).with_context(|| format!("cannot ban {target:?}"))?;
    if let Some(d) = args.duration {
        log2drop::duration::parse_duration(d).with_context(|| format!("bad --for {d:?}"))?;
    }
    let address = log2drop::addr::display_target(&net);
    let data = ask(
        socket,
        Command::Ban {
            target: address.clone(),
            duration: args.duration.map(str::to_owned),
            jail: args.jail.map(str::to_owned),
            force: args.force,
        },
    )
    .with_context(|| format!("cannot ban {address}"))?;
    let entry: BanEntry = data.decode().context("unexpected reply to ban")?;
    let forced = if entry.forced {
        " (forced over the allowlist)"
    } else {
        ""
    };
    match &entry.until {
        Some(until) => println!(
            "banned {} until {until} (jail {}){forced}",
            entry.address, entry.jail
        ),
        None => println!(
            "banned {} permanently (jail {}){forced}",
            entry.address, entry.jail
        ),
    }
    Ok(())
}

/// `log2drop unban ADDR[/LEN] | --all [--jail J]`.
pub fn unban(
    socket: &SocketArg,
    target: Option<&str>,
    all: bool,
    jail: Option<&str>,
    fleet: bool,
) -> Result<()> {
    let address = match target {
        Some(t) => {
            let net =
                log2drop::addr::parse_target(t).with_context(|| format!("cannot unban {t:?}"))?;
            Some(log2drop::addr::display_target(&net))
        }
        None => None,
    };
    let what = match (&address, jail) {
        (Some(a), _) => a.clone(),
        (None, Some(j)) => format!("the bans of jail {j}"),
        (None, None) => "every ban".to_owned(),
    };
    let data = ask(
        socket,
        Command::Unban {
            target: address,
            all,
            jail: jail.map(str::to_owned),
            fleet,
        },
    )
    .with_context(|| format!("cannot unban {what}"))?;
    let entries: Vec<BanEntry> = data.decode().context("unexpected reply to unban")?;
    match entries.as_slice() {
        [] if fleet => println!("not banned here; unban sent to the fleet"),
        [] => println!("nothing to unban"),
        [e] if fleet => println!(
            "unbanned {} (jail {}) here and on the fleet",
            e.address, e.jail
        ),
        [e] => println!("unbanned {} (jail {})", e.address, e.jail),
        many => println!("unbanned {} bans", many.len()),
    }
    Ok(())
}

/// `log2drop status [--json]`.
pub fn status(socket: &SocketArg, json: bool) -> Result<()> {
    let data = ask(socket, Command::Status)?;
    if json {
        // Through a Value, as before: its keys print sorted.
        let v: serde_json::Value = data.decode().context("unexpected reply to status")?;
        println!("{v}");
        return Ok(());
    }
    let s: Status = data.decode().context("unexpected reply to status")?;
    print!("{}", status_text(&s));
    Ok(())
}

fn status_text(s: &Status) -> String {
    let mut out = format!(
        "log2drop {} up {} ({})\nactive bans: {}\n",
        s.version,
        short_duration(Duration::from_secs(s.uptime_secs)),
        s.config,
        s.bans_active
    );
    for src in &s.sources {
        let waiting = if src.waiting {
            " waiting: no such file yet"
        } else {
            ""
        };
        out.push_str(&format!(
            "source {}: {}{waiting} ({} lines, {} offences, {} over-long lines skipped)\n",
            src.name, src.path, src.lines, src.offences, src.long_lines
        ));
    }
    for j in &s.jails {
        out.push_str(&format!("jail {}: {} active bans\n", j.name, j.bans_active));
    }
    for b in &s.backends {
        out.push_str(&format!("backend {}\n", backend_line(b)));
    }
    if let Some(f) = &s.fleet {
        out.push_str(&format!("fleet {}\n", fleet_line(f)));
    }
    out
}

/// One line on the fleet link for `status` and `stats`.
fn fleet_line(f: &FleetStatus) -> String {
    let lag = f
        .lag_ms
        .map_or_else(String::new, |ms| format!(", lag {ms} ms"));
    format!(
        "{} as {}: {}{lag}, {} published ({} queued, {} dropped), {} received ({} enforced, {} refused), {} peers",
        f.redis,
        f.node,
        if f.connected {
            "connected"
        } else {
            "DISCONNECTED"
        },
        f.published,
        f.queued,
        f.dropped,
        f.received,
        f.applied,
        f.refused_allowlist + f.refused_prefix,
        f.peers.len()
    )
}

/// `log2drop fleet status [--json]`.
pub fn fleet_status(socket: &SocketArg, json: bool) -> Result<()> {
    let data = ask(socket, Command::Fleet)?;
    if json {
        let v: serde_json::Value = data.decode().context("unexpected reply to fleet")?;
        println!("{v}");
        return Ok(());
    }
    let f: FleetStatus = data.decode().context("unexpected reply to fleet")?;
    print!("{}", fleet_text(&f));
    Ok(())
}

fn fleet_text(f: &FleetStatus) -> String {
    let mut out = String::new();
    let mut kv = |k: &str, v: String| out.push_str(&format!("{k:<22}{v}\n"));
    kv("node", f.node.clone());
    kv("redis", format!("{} (stream {})", f.redis, f.stream));
    kv(
        "connected",
        if f.connected {
            "yes".into()
        } else {
            "NO".into()
        },
    );
    kv(
        "publishing",
        if f.publishing {
            "ok".into()
        } else {
            "FAILING (queued, retrying)".into()
        },
    );
    kv("last ID", f.last_id.clone().unwrap_or_else(|| "-".into()));
    kv(
        "lag",
        f.lag_ms.map_or_else(|| "-".into(), |ms| format!("{ms} ms")),
    );
    kv(
        "published",
        format!(
            "{} ({} queued, {} dropped at the queue bound, {} failed attempts)",
            f.published, f.queued, f.dropped, f.publish_errors
        ),
    );
    kv(
        "received",
        format!(
            "{} ({} enforced, {} lifted, {} refused by the allowlist, {} refused as too wide)",
            f.received, f.applied, f.lifted, f.refused_allowlist, f.refused_prefix
        ),
    );
    kv("fleet bans active", f.bans_active.to_string());
    kv(
        "resyncs",
        format!("{} snapshot loads, {} reconnects", f.resyncs, f.reconnects),
    );
    if let Some(e) = &f.last_error {
        kv("last error", e.clone());
    }
    if f.peers.is_empty() {
        kv("peers", "none seen yet".into());
    }
    for p in &f.peers {
        kv(
            "peer",
            format!("{} (seen {}s ago)", p.node, p.seen_secs_ago),
        );
    }
    out
}

fn backend_line(b: &BackendStatus) -> String {
    let mut l = format!(
        "{}: {} ({} bans and {} unbans applied, {} failures)",
        b.name,
        if b.healthy { "ok" } else { "FAILING" },
        b.bans_applied,
        b.unbans_applied,
        b.failures
    );
    if let Some(r) = &b.reconcile {
        l.push_str(&format!(
            "; reconciled: {} added, {} removed, {} updated, {} kept in {:.1} ms",
            r.added,
            r.removed,
            r.updated,
            r.kept,
            r.took_us as f64 / 1000.0
        ));
    }
    if let Some(e) = &b.error {
        l.push_str(&format!("; last error: {e}"));
    }
    l
}

/// `log2drop stats [--json]`.
pub fn stats(socket: &SocketArg, json: bool) -> Result<()> {
    let data = ask(socket, Command::Stats)?;
    if json {
        // Through a Value, as before: its keys print sorted.
        let v: serde_json::Value = data.decode().context("unexpected reply to stats")?;
        println!("{v}");
        return Ok(());
    }
    let s: Stats = data.decode().context("unexpected reply to stats")?;
    print!("{}", stats_text(&s));
    Ok(())
}

/// How many per-ban drop counters the text form shows.
const TOP_DROPS: usize = 20;

fn stats_text(s: &Stats) -> String {
    let mut out = String::new();
    let mut kv = |k: &str, v: String| out.push_str(&format!("{k:<26}{v}\n"));
    kv("uptime", short_duration(Duration::from_secs(s.uptime_secs)));
    kv("lines read", s.lines.to_string());
    kv(
        "offences",
        format!(
            "{} ({} allowlisted, {} link-local/multicast/broadcast/unspecified, {} already banned)",
            s.offences, s.offences_allowlisted, s.offences_special, s.offences_already_banned
        ),
    );
    let n = &s.names;
    if n.matched + n.genuine > 0 {
        kv(
            "host names",
            format!(
                "{} matched ({} ignored by use_dns = no, {} dropped, {} unresolved), {} offences, {} refused (allowlisted address), {} genuine (allow_rdns)",
                n.matched, n.ignored, n.dropped, n.unresolved, n.offences, n.refused, n.genuine
            ),
        );
    }
    kv("bans active", s.bans_active.to_string());
    kv(
        "bans issued",
        format!(
            "{} ({} expired, {} lifted)",
            s.bans_total, s.bans_expired, s.bans_lifted
        ),
    );
    kv(
        "tracked addresses",
        format!("{} ({} evicted at max_tracked)", s.tracked, s.evicted),
    );
    kv(
        "state database",
        format!(
            "{} commits, {} errors, {} history rows",
            s.store_commits, s.store_errors, s.history_rows
        ),
    );
    kv(
        "hooks",
        format!(
            "{} started, {} ok, {} failed, {} timed out, {} skipped",
            s.hooks.started, s.hooks.succeeded, s.hooks.failed, s.hooks.timed_out, s.hooks.dropped
        ),
    );
    for src in &s.sources {
        out.push_str(&format!(
            "source {}: {} lines, {} offences\n",
            src.name, src.lines, src.offences
        ));
    }
    for b in &s.backends {
        out.push_str(&format!("backend {}\n", backend_line(b)));
    }
    if let Some(f) = &s.fleet {
        out.push_str(&format!("fleet {}\n", fleet_line(f)));
    }
    if !s.drops.is_empty() {
        out.push_str(&format!(
            "drops per ban (top {} of {}):\n",
            TOP_DROPS.min(s.drops.len()),
            s.drops.len()
        ));
        for d in s.drops.iter().take(TOP_DROPS) {
            let address = if d.address == DropEntry::ALL_BANS {
                "(all bans)"
            } else {
                d.address.as_str()
            };
            out.push_str(&format!(
                "  {:<40} {:>12} packets {:>14} bytes ({})\n",
                address, d.packets, d.bytes, d.backend
            ));
        }
    }
    out
}

/// `log2drop reload`: prints what changed, or the errors of the new config.
pub fn reload(socket: &SocketArg) -> Result<()> {
    let data = ask(socket, Command::Reload)?;
    let r: ReloadReport = data.decode().context("unexpected reply to reload")?;
    print!("{}", reload_text(&r));
    Ok(())
}

fn reload_text(r: &ReloadReport) -> String {
    let mut out = String::from("config reloaded\n");
    let mut kind = |name: &str, c: &Changes| {
        let mut parts = Vec::new();
        for (what, list) in [
            ("added", &c.added),
            ("removed", &c.removed),
            ("rebuilt", &c.changed),
            ("unchanged", &c.kept),
        ] {
            if !list.is_empty() {
                parts.push(format!("{what} {}", list.join(", ")));
            }
        }
        if !parts.is_empty() {
            out.push_str(&format!("{name}: {}\n", parts.join("; ")));
        }
    };
    kind("sources", &r.sources);
    kind("jails", &r.jails);
    kind("backends", &r.backends);
    if r.lifted > 0 {
        out.push_str(&format!(
            "{} bans lifted: the new allowlist covers them\n",
            r.lifted
        ));
    }
    for n in &r.notes {
        out.push_str(&format!("note: {n}\n"));
    }
    out
}

/// `log2drop flush`: asks the running agent to remove its kernel state and stop;
/// with no agent running, removes the state named in the config itself.
pub fn flush(socket: &SocketArg, default_config: &Path) -> Result<()> {
    let path = socket.resolve()?;
    match client::request(&path, &Command::Flush, DEFAULT_TIMEOUT) {
        Ok(reply) if reply.ok => {
            let r: FlushReport = reply.decode().context("unexpected reply to flush")?;
            println!("{}; the agent is stopping", flush_text(&r.backends));
            Ok(())
        }
        Ok(reply) => bail!(
            "{}",
            reply
                .error
                .unwrap_or_else(|| "the agent refused without saying why".into())
        ),
        Err(ClientError::NotRunning { .. }) => {
            let config = socket.config().unwrap_or(default_config);
            let cfg = log2drop::config::load(config).with_context(|| {
                format!(
                    "no agent answers at {}; cannot read {} to flush without it",
                    path.display(),
                    config.display()
                )
            })?;
            let removed = log2drop::daemon::flush_kernel_state(&cfg.backends)
                .context("cannot remove log2drop's kernel state")?;
            println!("{} (no agent was running)", flush_text(&removed));
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

fn flush_text(removed: &[(String, usize)]) -> String {
    if removed.is_empty() {
        return "no backend holds kernel state".into();
    }
    let parts: Vec<String> = removed
        .iter()
        .map(|(name, n)| format!("{name}: {n} objects removed"))
        .collect();
    parts.join(", ")
}

/// The human `bans` table: address, jail, why (origin and filter), since, until
/// (or "permanent"), remaining.
fn ban_table(entries: &[BanEntry], now: SystemTime) -> String {
    if entries.is_empty() {
        return "no active bans\n".into();
    }
    let header = ["ADDRESS", "JAIL", "WHY", "SINCE", "UNTIL", "REMAINING"];
    let rows: Vec<[String; 6]> = entries
        .iter()
        .map(|e| {
            let (until, remaining) = match &e.until {
                None => ("permanent".to_owned(), "-".to_owned()),
                Some(u) => {
                    let left = humantime::parse_rfc3339(u)
                        .ok()
                        .map(|t| t.duration_since(now).unwrap_or(Duration::ZERO));
                    (u.clone(), left.map_or_else(|| "?".into(), short_duration))
                }
            };
            let origin = e.origin.as_str();
            let mut why = match (&e.filter, e.forced) {
                (Some(f), _) => format!("{origin}:{f}"),
                (None, _) if e.node.is_some() => {
                    format!("{origin}:{}", e.node.as_deref().unwrap_or_default())
                }
                (None, true) => format!("{origin} (forced)"),
                (None, false) => origin.to_owned(),
            };
            if !e.captures.is_empty() {
                // Attacker text: one escaped token (no spaces, no control
                // characters), so it can neither break the columns nor the
                // terminal.
                why.push(' ');
                why.push_str(&e.captures.to_fields());
            }
            [
                e.address.clone(),
                e.jail.clone(),
                why,
                e.since.clone(),
                until,
                remaining,
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[&str]| {
        let mut l = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                l.push_str(cell);
            } else {
                l.push_str(&format!("{cell:<w$}  "));
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&header);
    for r in &rows {
        let cells: Vec<&str> = r.iter().map(String::as_str).collect();
        line(&cells);
    }
    out
}

/// Whole seconds, humantime style ("59m 12s").
fn short_duration(d: Duration) -> String {
    humantime::format_duration(Duration::from_secs(d.as_secs())).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use log2drop::engine::Origin;

    fn entry(address: &str, until: Option<&str>) -> BanEntry {
        BanEntry {
            address: address.into(),
            jail: "ssh".into(),
            since: "2026-01-01T00:00:00Z".into(),
            until: until.map(str::to_owned),
            origin: Origin::Jail,
            filter: Some("ssh-fail".into()),
            first_offence: None,
            last_offence: None,
            forced: false,
            node: None,
            captures: Default::default(),
        }
    }

    #[test]
    fn table_escapes_hostile_captures() {
        let now = humantime::parse_rfc3339("2026-01-01T00:10:00Z").expect("time");
        let mut e = entry("198.51.100.7", Some("2026-01-01T01:00:00Z"));
        let hostile = format!("root\n198.51.100.9  ssh  \x1b[2J{}", "x".repeat(500));
        e.captures.push_named("user", hostile.as_bytes());
        let table = ban_table(&[e], now);
        assert_eq!(table.lines().count(), 2, "{table}");
        assert!(!table.contains('\x1b'), "{table}");
        let row = table.lines().nth(1).expect("row");
        assert!(
            row.contains("jail:ssh-fail user=root\\u{a}198.51.100.9\\u{20}"),
            "{row}"
        );
        assert!(row.contains('…'), "bounded: {row}");
        assert!(row.len() < 300, "{row}");
    }

    #[test]
    fn table_shows_remaining_time_and_permanent_bans() {
        let now = humantime::parse_rfc3339("2026-01-01T00:10:00Z").expect("time");
        let table = ban_table(
            &[
                entry("198.51.100.7", Some("2026-01-01T01:00:00Z")),
                entry("203.0.113.0/24", None),
            ],
            now,
        );
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3, "{table}");
        assert!(lines[0].starts_with("ADDRESS"));
        assert!(lines[1].starts_with("198.51.100.7 "));
        assert!(lines[1].ends_with("50m"), "{}", lines[1]);
        assert!(lines[2].contains("permanent"));
        // Columns line up: JAIL starts at the same offset on every line.
        let col = lines[0].find("JAIL").expect("header");
        assert!(lines.iter().skip(1).all(|l| &l[col..col + 3] == "ssh"));
    }

    #[test]
    fn empty_table_says_so() {
        assert_eq!(ban_table(&[], SystemTime::now()), "no active bans\n");
    }

    #[test]
    fn expired_but_listed_ban_shows_zero_remaining() {
        let now = humantime::parse_rfc3339("2026-01-01T02:00:00Z").expect("time");
        let table = ban_table(&[entry("198.51.100.7", Some("2026-01-01T01:00:00Z"))], now);
        assert!(
            table.lines().nth(1).is_some_and(|l| l.ends_with("0s")),
            "{table}"
        );
    }
}

#[cfg(test)]
mod text_tests {
    use super::*;
    use log2drop::control::protocol::{DropEntry, JailStatus, ReconcileStatus, SourceStatus};
    use log2drop::hooks::HookStats;

    fn backend(healthy: bool) -> BackendStatus {
        BackendStatus {
            name: "xdp".into(),
            healthy,
            error: (!healthy).then(|| "apply: map full".to_owned()),
            bans_applied: 7,
            unbans_applied: 2,
            failures: u64::from(!healthy),
            reconcile: Some(ReconcileStatus {
                added: 100_000,
                removed: 1,
                updated: 0,
                kept: 3,
                took_us: 41_500,
            }),
        }
    }

    #[test]
    fn status_text_lists_sources_jails_and_backend_health() {
        let s = Status {
            version: "0.1.0".into(),
            uptime_secs: 3725,
            config: "/etc/log2drop/log2drop.toml".into(),
            bans_active: 3,
            sources: vec![SourceStatus {
                name: "auth".into(),
                path: "/var/log/auth.log".into(),
                lines: 10,
                offences: 4,
                long_lines: 0,
                waiting: false,
            }],
            jails: vec![JailStatus {
                name: "ssh".into(),
                bans_active: 3,
            }],
            backends: vec![backend(false)],
            fleet: Some(fleet()),
        };
        let t = status_text(&s);
        assert!(
            t.contains("fleet redis://127.0.0.1:6379/0 as web-1: DISCONNECTED, lag 3 ms, 7 published (4 queued, 0 dropped), 5 received (3 enforced, 2 refused), 1 peers"),
            "{t}"
        );
        assert!(
            t.starts_with("log2drop 0.1.0 up 1h 2m 5s (/etc/log2drop/log2drop.toml)\n"),
            "{t}"
        );
        assert!(
            t.contains("source auth: /var/log/auth.log (10 lines, 4 offences"),
            "{t}"
        );
        assert!(t.contains("jail ssh: 3 active bans"), "{t}");
        assert!(!t.contains("waiting"), "{t}");
        let mut waiting = s.clone();
        waiting.sources[0].waiting = true;
        let t = status_text(&waiting);
        assert!(
            t.contains("source auth: /var/log/auth.log waiting: no such file yet ("),
            "{t}"
        );
        assert!(t.contains("backend xdp: FAILING (7 bans and 2 unbans applied, 1 failures); reconciled: 100000 added, 1 removed, 0 updated, 3 kept in 41.5 ms; last error: apply: map full"), "{t}");
    }

    fn fleet() -> FleetStatus {
        FleetStatus {
            node: "web-1".into(),
            redis: "redis://127.0.0.1:6379/0".into(),
            stream: "log2drop:bans".into(),
            connected: false,
            publishing: false,
            last_error: Some("read: connection refused".into()),
            last_id: Some("1700000000000-0".into()),
            lag_ms: Some(3),
            published: 7,
            queued: 4,
            dropped: 0,
            publish_errors: 2,
            received: 5,
            applied: 3,
            refused_allowlist: 1,
            refused_prefix: 1,
            lifted: 0,
            resyncs: 1,
            reconnects: 2,
            bans_active: 3,
            peers: vec![log2drop::fleet::Peer {
                node: "web-2".into(),
                seen_secs_ago: 12,
            }],
        }
    }

    #[test]
    fn fleet_text_says_what_is_wrong() {
        let t = fleet_text(&fleet());
        for want in [
            "connected             NO\n",
            "publishing            FAILING (queued, retrying)\n",
            "last ID               1700000000000-0\n",
            "received              5 (3 enforced, 0 lifted, 1 refused by the allowlist, 1 refused as too wide)\n",
            "peer                  web-2 (seen 12s ago)\n",
            "last error            read: connection refused\n",
        ] {
            assert!(t.contains(want), "{want:?} not in\n{t}");
        }
    }

    #[test]
    fn stats_text_shows_counters_and_top_drops() {
        let mut drops: Vec<DropEntry> = (0..25)
            .map(|i| DropEntry {
                address: format!("198.51.100.{i}"),
                backend: "xdp".into(),
                packets: 100 - i,
                bytes: 6000,
            })
            .collect();
        drops[0] = DropEntry {
            address: DropEntry::ALL_BANS.into(),
            backend: "nftables".into(),
            packets: 500,
            bytes: 30000,
        };
        let s = Stats {
            uptime_secs: 60,
            lines: 1000,
            offences: 40,
            offences_allowlisted: 1,
            offences_special: 0,
            offences_already_banned: 9,
            bans_active: 5,
            bans_total: 6,
            bans_expired: 1,
            bans_lifted: 0,
            tracked: 12,
            evicted: 0,
            history_rows: 6,
            store_commits: 4,
            store_errors: 0,
            sources: Vec::new(),
            backends: vec![backend(true)],
            hooks: HookStats::default(),
            drops,
            fleet: None,
            names: Default::default(),
        };
        let t = stats_text(&s);
        assert!(t.contains("lines read                1000\n"), "{t}");
        assert!(t.contains("  (all bans)  "), "{t}");
        assert!(
            t.contains("bans issued               6 (1 expired, 0 lifted)"),
            "{t}"
        );
        assert!(t.contains("drops per ban (top 20 of 25):"), "{t}");
        assert!(t.contains("198.51.100.19 "), "{t}");
        assert!(!t.contains("198.51.100.20 "), "only the top 20: {t}");
    }

    #[test]
    fn reload_text_names_what_changed() {
        let r = ReloadReport {
            sources: Changes {
                kept: vec!["auth".into()],
                ..Changes::default()
            },
            jails: Changes {
                changed: vec!["ssh".into()],
                added: vec!["web".into()],
                ..Changes::default()
            },
            backends: Changes::default(),
            lifted: 2,
            notes: vec!["agent.socket changed: takes effect after a restart".into()],
        };
        assert_eq!(
            reload_text(&r),
            "config reloaded\nsources: unchanged auth\njails: added web; rebuilt ssh\n2 bans lifted: the new allowlist covers them\nnote: agent.socket changed: takes effect after a restart\n"
        );
    }
}
