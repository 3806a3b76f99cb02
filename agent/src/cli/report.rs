//! `log2drop report`: parses the arguments, reads the sources (with progress on
//! a terminal), builds the report through the library and prints it in the form
//! asked for.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;

use log2drop::engine::allowlist::{AllowEntry, Allowlist, parse_entry};
use log2drop::report::enrich::{geoip, resolve, suggest};
use log2drop::report::model::{Civil, DAY, Events, Range, civil_of, day_text, time_text};
use log2drop::report::sources::{self, LogKind, Progress};
use log2drop::report::views::{self, View};
use log2drop::report::{self, output};

/// `log2drop report` arguments.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Read these fail2ban logs (fail2ban.log, fail2ban.log.1, fail2ban.log.2.gz,
    /// ...: plain, gzip or zstd, any mix) instead of the state database.
    #[arg(long = "fail2ban-log", value_name = "FILE", num_args = 1..)]
    fail2ban_log: Vec<PathBuf>,
    /// Read these log2drop logs (its stderr or `journalctl -u log2drop` output;
    /// plain, gzip or zstd) instead of the state database.
    #[arg(long = "log", value_name = "FILE", num_args = 1..)]
    log: Vec<PathBuf>,
    /// Config file: where the state database is (agent.state_dir) and the
    /// allowlist --suggest respects [default: /etc/log2drop/log2drop.toml if it
    /// exists].
    #[arg(long, short, value_name = "FILE")]
    config: Option<PathBuf>,
    /// State directory holding log2drop.db (overrides the config's).
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Only events at or after this local time: 2026-12-01, "2026-12-01 08:00",
    /// or a duration back from now (7d, 12h).
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// Only events before this local time (same forms as --since).
    #[arg(long, value_name = "TIME")]
    until: Option<String>,
    /// Only today (local time): --since today's midnight.
    #[arg(long, conflicts_with = "since")]
    today: bool,
    /// What to count; repeat or separate with commas for several tables
    /// [default: ip,subnet,day].
    #[arg(long, value_enum, value_name = "VIEW", value_delimiter = ',')]
    by: Vec<View>,
    /// IPv4 prefix length of --by subnet (8, 16, 24, ...).
    #[arg(long, value_name = "LEN", default_value_t = 24, value_parser = clap::value_parser!(u8).range(1..=32))]
    prefix: u8,
    /// IPv6 prefix length of --by subnet (32, 48, 64, ...).
    #[arg(long, value_name = "LEN", default_value_t = 64, value_parser = clap::value_parser!(u8).range(1..=128))]
    prefix6: u8,
    /// Rows per table [default: 20 on a terminal and in HTML, all in JSON and CSV].
    #[arg(long, value_name = "N")]
    top: Option<usize>,
    /// --by offender: addresses banned at least N times.
    #[arg(long, value_name = "N", default_value_t = 3)]
    min: u64,
    /// Print one JSON object (summary, views, suggestions).
    #[arg(long, conflicts_with_all = ["csv", "html"])]
    json: bool,
    /// Print one view as CSV (the first --by, default ip).
    #[arg(long, conflicts_with = "html")]
    csv: bool,
    /// Write a self-contained HTML page (tables and SVG charts) to FILE.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// Suggest prefix bans for clusters of banned addresses, as `log2drop ban`
    /// lines; never one covering an allowlisted address.
    #[arg(long)]
    suggest: bool,
    /// --suggest: fewest distinct banned addresses in a suggested prefix.
    #[arg(long, value_name = "N", default_value_t = 3)]
    suggest_min: usize,
    /// MaxMind DB files (GeoLite2 or DB-IP lite, ASN and/or country) for
    /// --by asn and --by country and the HTML page's breakdowns.
    #[arg(long, value_name = "FILE.mmdb", num_args = 1..)]
    geoip: Vec<PathBuf>,
    /// Show reverse DNS names next to addresses (looked up concurrently, each
    /// once, waiting at most --resolve-timeout in all).
    #[arg(long)]
    resolve: bool,
    /// --resolve: longest wait for names, overall (names not back by then are
    /// left out).
    #[arg(long, value_name = "DUR", default_value = "3s")]
    resolve_timeout: String,
    /// Colour on a terminal (auto honours NO_COLOR).
    #[arg(long, value_name = "WHEN", value_parser = ["auto", "always", "never"], default_value = "auto")]
    color: String,
}

/// Runs `log2drop report`.
pub fn run(args: &ReportArgs) -> Result<()> {
    let zone = jiff::tz::TimeZone::system();
    let now_civil = civil_of(jiff::Timestamp::now(), &zone);
    let range = time_range(args, now_civil)?;
    // The config is read only for what needs it: where the database is, and the
    // allowlist of --suggest.
    let from_store = args.fail2ban_log.is_empty() && args.log.is_empty();
    let needs_config = args.suggest || (from_store && args.state_dir.is_none());
    let config = config_file(args.config.as_deref()).filter(|_| needs_config);
    let config = match &config {
        Some(path) => Some(
            log2drop::config::load(path)
                .with_context(|| format!("cannot read the config {}", path.display()))?,
        ),
        None => None,
    };
    let stdout_tty = std::io::stdout().is_terminal();
    let machine = args.json || args.csv;
    let mut progress = TermProgress::new(stdout_tty && !machine && std::io::stderr().is_terminal());
    let mut events = Events::default();
    let source = if from_store {
        let state_dir = args
            .state_dir
            .clone()
            .or_else(|| config.as_ref().map(|c| c.agent.state_dir.clone()))
            .unwrap_or_else(|| PathBuf::from("/var/lib/log2drop"));
        sources::store::read(&state_dir, &range, &zone, &mut events)?;
        format!(
            "state database {}",
            state_dir.join(log2drop::store::DB_FILE).display()
        )
    } else {
        for (files, kind) in [
            (&args.fail2ban_log, LogKind::Fail2ban),
            (&args.log, LogKind::Log2drop),
        ] {
            for f in files {
                sources::read_log(f, kind, &range, &zone, &mut events, &mut progress)?;
            }
        }
        let mut parts = Vec::new();
        if !args.fail2ban_log.is_empty() {
            parts.push(format!("fail2ban log ({} files)", args.fail2ban_log.len()));
        }
        if !args.log.is_empty() {
            parts.push(format!("log2drop log ({} files)", args.log.len()));
        }
        parts.join(", ")
    };
    progress.done();

    let html = args.html.is_some();
    let views = if args.csv {
        vec![args.by.first().copied().unwrap_or(View::Ip)]
    } else if args.by.is_empty() {
        report::DEFAULT_VIEWS.to_vec()
    } else {
        args.by.clone()
    };
    let geo = if args.geoip.is_empty() {
        None
    } else {
        Some(geoip::GeoDb::open(&args.geoip)?)
    };
    let top = args.top.or(if machine { None } else { Some(20) });
    let suggest = if args.suggest {
        Some((
            allowlist(config.as_ref())?,
            suggest::Params {
                group4: args.prefix,
                group6: args.prefix6,
                min_addresses: args.suggest_min,
            },
        ))
    } else {
        None
    };
    let request = report::Request {
        views,
        opts: views::Options {
            prefix4: args.prefix,
            prefix6: args.prefix6,
            top,
            min: args.min,
            geo: geo.as_ref().map(|g| g as &dyn views::GeoLookup),
        },
        suggest,
        charts: html,
        source,
        range: range_text(&range),
        today: day_text(now_civil.div_euclid(DAY)),
        generated: time_text(now_civil),
    };
    let mut report = report::build(&events, request)?;
    if args.resolve {
        let budget = log2drop::duration::parse_duration(&args.resolve_timeout)
            .with_context(|| format!("bad --resolve-timeout {:?}", args.resolve_timeout))?;
        let names = resolve::resolve_all(
            &report::shown_addresses(&report),
            std::sync::Arc::new(resolve::SystemResolver),
            resolve::WORKERS,
            budget,
        );
        report::add_names(&mut report, &names);
    }

    let mut out = std::io::stdout().lock();
    if let Some(path) = &args.html {
        std::fs::write(path, output::html::render(&report))
            .with_context(|| format!("cannot write {}", path.display()))?;
        writeln!(
            out,
            "wrote {} ({} bans, {} addresses)",
            path.display(),
            report.summary.bans,
            report.summary.addresses
        )?;
    } else if args.json {
        writeln!(out, "{}", output::json::render(&report))?;
    } else if args.csv {
        if let Some(t) = report.tables.first() {
            write!(out, "{}", output::csv::render(t))?;
        }
    } else {
        let color = match args.color.as_str() {
            "always" => true,
            "never" => false,
            _ => stdout_tty && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        };
        write!(out, "{}", output::terminal::render(&report, color))?;
    }
    Ok(())
}

/// `--config`, else the default config when it exists.
fn config_file(given: Option<&Path>) -> Option<PathBuf> {
    match given {
        Some(p) => Some(p.to_owned()),
        None => {
            let p = PathBuf::from(crate::DEFAULT_CONFIG);
            p.exists().then_some(p)
        }
    }
}

/// The allowlist --suggest respects: the config's agent.allow (host names
/// resolved now), loopback, and the host's own addresses unless the config
/// turns them off.
fn allowlist(config: Option<&log2drop::config::Config>) -> Result<Allowlist> {
    let mut nets = Vec::new();
    let defaults = log2drop::config::AgentConfig::default();
    let agent = config.map_or(&defaults, |c| &c.agent);
    for entry in &agent.allow {
        match parse_entry(entry).with_context(|| format!("agent.allow entry {entry:?}"))? {
            AllowEntry::Net(n) => nets.push(n),
            AllowEntry::Host(h) => {
                use std::net::ToSocketAddrs;
                let addrs = (h.as_str(), 0)
                    .to_socket_addrs()
                    .with_context(|| format!("cannot resolve agent.allow host {h}"))?;
                nets.extend(addrs.map(|a| ipnet::IpNet::from(a.ip())));
            }
        }
    }
    if agent.allow_own_addresses {
        let own = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")?
            .block_on(log2drop::ownaddrs::current())
            .context("cannot read this host's addresses (agent.allow_own_addresses)")?;
        nets.extend(own.into_iter().map(ipnet::IpNet::from));
    }
    Ok(Allowlist::with_loopback(nets))
}

fn time_range(args: &ReportArgs, now: Civil) -> Result<Range> {
    let since = if args.today {
        Some(now.div_euclid(DAY) * DAY)
    } else {
        args.since
            .as_deref()
            .map(|t| parse_time(t, now).with_context(|| format!("bad --since {t:?}")))
            .transpose()?
    };
    let until = args
        .until
        .as_deref()
        .map(|t| parse_time(t, now).with_context(|| format!("bad --until {t:?}")))
        .transpose()?;
    if let (Some(s), Some(u)) = (since, until)
        && s >= u
    {
        bail!(
            "--since {} is not before --until {}",
            time_text(s),
            time_text(u)
        );
    }
    Ok(Range { since, until })
}

/// A local time (`YYYY-MM-DD`, `YYYY-MM-DD HH:MM[:SS]`, `T` instead of the
/// space) or a duration back from `now`.
pub fn parse_time(text: &str, now: Civil) -> Result<Civil> {
    let t = text.trim();
    if let Ok(d) = log2drop::duration::parse_duration(t) {
        return Ok(now - i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 2));
    }
    let civil: jiff::civil::DateTime = if t.len() == 10 {
        t.parse::<jiff::civil::Date>()
            .map(|d| d.to_datetime(jiff::civil::Time::midnight()))
    } else {
        t.replacen(' ', "T", 1).parse::<jiff::civil::DateTime>()
    }
    .map_err(|_| {
        anyhow::anyhow!(
            "expected YYYY-MM-DD, \"YYYY-MM-DD HH:MM[:SS]\" or a duration back from now (7d, 12h)"
        )
    })?;
    let days = log2drop::report::model::days_from_civil(
        i64::from(civil.year()),
        civil.month() as u32,
        civil.day() as u32,
    );
    Ok(days * DAY
        + i64::from(civil.hour()) * 3600
        + i64::from(civil.minute()) * 60
        + i64::from(civil.second()))
}

fn range_text(r: &Range) -> String {
    match (r.since, r.until) {
        (None, None) => "all time".into(),
        (Some(s), None) => format!("since {}", time_text(s)),
        (None, Some(u)) => format!("until {}", time_text(u)),
        (Some(s), Some(u)) => format!("{} .. {}", time_text(s), time_text(u)),
    }
}

/// Progress on stderr for reads that take more than a moment, on a terminal only.
struct TermProgress {
    on: bool,
    start: Instant,
    shown: bool,
}

impl TermProgress {
    fn new(on: bool) -> Self {
        TermProgress {
            on,
            start: Instant::now(),
            shown: false,
        }
    }

    fn done(&mut self) {
        if self.shown {
            eprint!("\r\x1b[K");
        }
    }
}

impl Progress for TermProgress {
    fn lines(&mut self, file: &Path, lines: u64) {
        if self.on && self.start.elapsed() > Duration::from_millis(500) {
            self.shown = true;
            eprint!("\r\x1b[Kreading {}: {lines} lines", file.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_durations() {
        let now = log2drop::report::model::days_from_civil(2026, 12, 6) * DAY + 3600;
        assert_eq!(
            time_text(parse_time("2026-12-01", now).expect("date")),
            "2026-12-01 00:00:00"
        );
        assert_eq!(
            time_text(parse_time("2026-12-01 08:30", now).expect("time")),
            "2026-12-01 08:30:00"
        );
        assert_eq!(
            time_text(parse_time("2026-12-01T08:30:15", now).expect("time")),
            "2026-12-01 08:30:15"
        );
        assert_eq!(parse_time("1d", now).expect("dur"), now - DAY);
        assert!(parse_time("yesterday", now).is_err());
    }
}
