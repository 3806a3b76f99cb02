//! What each subcommand does, and how its answers are printed. Kept out of the
//! library because it speaks anyhow and writes to the terminal.

pub mod test;

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, bail};

use log2drop::control::client::{self, DEFAULT_TIMEOUT};
use log2drop::control::protocol::{BanEntry, Command, Reply, Status};

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
pub fn run(config: &Path) -> Result<()> {
    init_tracing();
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

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

/// `log2drop check`: the same preparation `run` does, minus the system.
pub fn check(config: &Path) -> ExitCode {
    match log2drop::daemon::prepare(config) {
        Ok(_) => {
            println!("{}: ok", config.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn ask(socket: &SocketArg, cmd: Command) -> Result<serde_json::Value> {
    let path = socket.resolve()?;
    let reply: Reply = client::request(&path, &cmd, DEFAULT_TIMEOUT)?;
    if !reply.ok {
        bail!(
            "{}",
            reply
                .error
                .unwrap_or_else(|| "the agent refused without saying why".into())
        );
    }
    Ok(reply.data.unwrap_or(serde_json::Value::Null))
}

/// `log2drop bans [--json]`.
pub fn bans(socket: &SocketArg, json: bool) -> Result<()> {
    let data = ask(socket, Command::Bans)?;
    let entries: Vec<BanEntry> =
        serde_json::from_value(data).context("the agent's ban list is not in the expected form")?;
    let mut out = std::io::stdout().lock();
    if json {
        let text = serde_json::to_string(&entries).context("cannot encode the ban list")?;
        writeln!(out, "{text}")?;
    } else {
        write!(out, "{}", ban_table(&entries, SystemTime::now()))?;
    }
    Ok(())
}

/// `log2drop ban ADDR[/LEN] [--for DUR]`.
pub fn ban(socket: &SocketArg, target: &str, duration: Option<&str>) -> Result<()> {
    let net =
        log2drop::addr::parse_target(target).with_context(|| format!("cannot ban {target:?}"))?;
    if let Some(d) = duration {
        log2drop::duration::parse_duration(d).with_context(|| format!("bad --for {d:?}"))?;
    }
    let address = log2drop::addr::display_target(&net);
    let data = ask(
        socket,
        Command::Ban {
            target: address.clone(),
            duration: duration.map(str::to_owned),
        },
    )
    .with_context(|| format!("cannot ban {address}"))?;
    let entry: BanEntry = serde_json::from_value(data).context("unexpected reply to ban")?;
    match &entry.until {
        Some(until) => println!(
            "banned {} until {until} (jail {})",
            entry.address, entry.jail
        ),
        None => println!("banned {} permanently (jail {})", entry.address, entry.jail),
    }
    Ok(())
}

/// `log2drop unban ADDR[/LEN]`.
pub fn unban(socket: &SocketArg, target: &str) -> Result<()> {
    let net =
        log2drop::addr::parse_target(target).with_context(|| format!("cannot unban {target:?}"))?;
    let address = log2drop::addr::display_target(&net);
    let data = ask(
        socket,
        Command::Unban {
            target: address.clone(),
        },
    )
    .with_context(|| format!("cannot unban {address}"))?;
    let entry: BanEntry = serde_json::from_value(data).context("unexpected reply to unban")?;
    println!("unbanned {} (jail {})", entry.address, entry.jail);
    Ok(())
}

/// `log2drop status [--json]`.
pub fn status(socket: &SocketArg, json: bool) -> Result<()> {
    let data = ask(socket, Command::Status)?;
    if json {
        println!("{data}");
        return Ok(());
    }
    let s: Status = serde_json::from_value(data).context("unexpected reply to status")?;
    println!(
        "log2drop {} up {}",
        s.version,
        short_duration(Duration::from_secs(s.uptime_secs))
    );
    println!("active bans: {}", s.bans_active);
    println!("backends: {}", s.backends.join(", "));
    for src in &s.sources {
        println!(
            "source {}: {} ({} lines, {} offences, {} over-long lines skipped)",
            src.name, src.path, src.lines, src.offences, src.long_lines
        );
    }
    Ok(())
}

/// The human `bans` table: address, jail, since, until (or "permanent"), remaining.
fn ban_table(entries: &[BanEntry], now: SystemTime) -> String {
    if entries.is_empty() {
        return "no active bans\n".into();
    }
    let header = ["ADDRESS", "JAIL", "SINCE", "UNTIL", "REMAINING"];
    let rows: Vec<[String; 5]> = entries
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
            [
                e.address.clone(),
                e.jail.clone(),
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
        }
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
