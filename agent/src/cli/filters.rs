//! `log2drop filters`: what the built-in filters are, so an admin can pick one
//! without reading the source. `filters` lists them (description, the services
//! and versions they were written against, their modes); `filters show NAME`
//! prints one in full: settings, regexes and its sample lines with what each
//! gives. Both print JSON with `--json` for scripts.

use std::io::Write;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use serde::Serialize;

use log2drop::config::{FilterConfig, LinePrefix};
use log2drop::filter::builtin::{self, Info, Sample};

/// The mode made of a filter's own regexes.
const NORMAL_MODE: &str = "normal";

/// `log2drop filters` arguments.
#[derive(Debug, Args)]
pub struct FiltersArgs {
    #[command(subcommand)]
    command: Option<FiltersCmd>,
    /// Print JSON instead of text: an array of {"name", "description",
    /// "services", "log", "modes"}, or with `show` one object that adds
    /// "settings", "regex", "ignore" and "samples".
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum FiltersCmd {
    /// Print one built-in filter in full: what it is for, where its lines are,
    /// its settings (prefix, programs, datepattern, timezone), every regex and
    /// ignore regex, and its sample lines: those that match (with the address
    /// taken), those that must not, and injection attempts (client-written text
    /// imitating the format), which must never give another address.
    ///
    /// To change a built-in, copy `log2drop filters show NAME --toml` into a
    /// [filters.NAME] table of your config: a table with a built-in's name
    /// replaces it.
    Show {
        /// The built-in filter's name, as `log2drop filters` lists it.
        #[arg(value_name = "NAME")]
        name: String,
        /// Print the filter's TOML file as shipped (its [filter] table is exactly
        /// a [filters.NAME] table).
        #[arg(long, conflicts_with = "json")]
        toml: bool,
    },
}

/// One mode of a filter.
#[derive(Debug, Serialize)]
struct Mode {
    name: String,
    description: String,
}

/// A filter in the listing.
#[derive(Debug, Serialize)]
struct Listed<'a> {
    name: &'a str,
    description: &'a str,
    services: &'a [String],
    log: &'a str,
    modes: Vec<Mode>,
}

/// A filter shown in full.
#[derive(Debug, Serialize)]
struct Shown<'a> {
    #[serde(flatten)]
    listed: Listed<'a>,
    settings: Settings<'a>,
    regex: &'a [String],
    ignore: &'a [String],
    samples: Vec<ShownSample<'a>>,
}

#[derive(Debug, Serialize)]
struct Settings<'a> {
    prefix: &'static str,
    programs: &'a [String],
    datepattern: Option<&'a str>,
    timezone: Option<&'a str>,
    /// Domains of genuine clients (forward-confirmed reverse DNS).
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    allow_rdns: &'a [String],
}

#[derive(Debug, Serialize)]
struct ShownSample<'a> {
    line: &'a str,
    /// The address (or host name) the filter takes, or null when the line
    /// must not match.
    host: Option<String>,
    inject: bool,
}

/// `log2drop filters`.
pub fn run(args: &FiltersArgs) -> Result<()> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match &args.command {
        None => list(&mut out, args.json)?,
        Some(FiltersCmd::Show { name, toml }) => {
            let Some(info) = builtin::info(name) else {
                bail!(
                    "no built-in filter {name:?}; `log2drop filters` lists them ({})",
                    builtin::names().collect::<Vec<_>>().join(", ")
                );
            };
            if *toml {
                let text = builtin::source(name).unwrap_or_default();
                out.write_all(text.as_bytes())?;
            } else {
                let samples = builtin::samples(name).unwrap_or_default();
                show(&mut out, &info, &samples, args.json)?;
            }
        }
    }
    out.flush().context("cannot write to stdout")
}

/// The modes of a filter, `normal` (its own regexes) first.
fn modes(_cfg: &FilterConfig) -> Vec<Mode> {
    // Filters gain named modes in `[filters.NAME.modes.MODE]`; until the config
    // carries them every filter has only its own regexes.
    vec![Mode {
        name: NORMAL_MODE.to_owned(),
        description: "the filter's own regexes".to_owned(),
    }]
}

fn listed(info: &Info) -> Listed<'_> {
    Listed {
        name: info.name,
        description: &info.description,
        services: &info.services,
        log: &info.log,
        modes: modes(&info.filter),
    }
}

fn list(out: &mut impl Write, json: bool) -> Result<()> {
    let infos: Vec<Info> = builtin::names().filter_map(builtin::info).collect();
    if json {
        let all: Vec<Listed> = infos.iter().map(listed).collect();
        serde_json::to_writer_pretty(&mut *out, &all)?;
        writeln!(out)?;
        return Ok(());
    }
    let width = infos.iter().map(|i| i.name.len()).max().unwrap_or(0);
    for info in &infos {
        let l = listed(info);
        writeln!(out, "{:<width$}  {}", l.name, l.description)?;
        let pad = " ".repeat(width + 2);
        writeln!(out, "{pad}services: {}", l.services.join("; "))?;
        let names: Vec<&str> = l.modes.iter().map(|m| m.name.as_str()).collect();
        writeln!(out, "{pad}modes: {}", names.join(", "))?;
    }
    writeln!(
        out,
        "\n{} built-in filters. `log2drop filters show NAME` prints one in full; \
         `log2drop test NAME FILE` runs it over a log.",
        infos.len()
    )?;
    Ok(())
}

fn prefix_name(p: LinePrefix) -> &'static str {
    match p {
        LinePrefix::None => "none",
        LinePrefix::Syslog => "syslog",
    }
}

fn show(out: &mut impl Write, info: &Info, samples: &[Sample], json: bool) -> Result<()> {
    let f = &info.filter;
    let shown = Shown {
        listed: listed(info),
        settings: Settings {
            prefix: prefix_name(f.prefix),
            programs: &f.programs,
            datepattern: f.datepattern.as_deref(),
            timezone: f.timezone.as_deref(),
            allow_rdns: &f.allow_rdns,
        },
        regex: &f.regex,
        ignore: &f.ignore,
        samples: samples
            .iter()
            .map(|s| ShownSample {
                line: s.line,
                host: s
                    .host
                    .map(|h| h.to_string())
                    .or_else(|| s.name.map(str::to_owned)),
                inject: s.inject,
            })
            .collect(),
    };
    if json {
        serde_json::to_writer_pretty(&mut *out, &shown)?;
        writeln!(out)?;
        return Ok(());
    }
    let l = &shown.listed;
    writeln!(out, "{}: {}", l.name, l.description)?;
    writeln!(out, "services: {}", l.services.join("; "))?;
    writeln!(out, "log: {}", l.log)?;
    writeln!(out, "modes:")?;
    for m in &l.modes {
        writeln!(out, "  {}: {}", m.name, m.description)?;
    }
    let s = &shown.settings;
    writeln!(out, "settings:")?;
    writeln!(out, "  prefix = {:?}", s.prefix)?;
    if !s.programs.is_empty() {
        writeln!(out, "  programs = {:?}", s.programs)?;
    }
    match s.datepattern {
        Some(d) => writeln!(out, "  datepattern = {d:?}")?,
        None if f.prefix == LinePrefix::Syslog => {
            writeln!(out, "  (line time from the syslog prefix)")?;
        }
        None => writeln!(out, "  (no datepattern: the time a line is read)")?,
    }
    writeln!(out, "  timezone = {:?}", s.timezone.unwrap_or("local"))?;
    if !s.allow_rdns.is_empty() {
        writeln!(
            out,
            "  allow_rdns = {:?} (lines from addresses whose reverse name in these domains resolves back to them do not count)",
            s.allow_rdns
        )?;
    }
    writeln!(out, "regex:")?;
    for (i, re) in shown.regex.iter().enumerate() {
        writeln!(out, "  {i:>2}  {re}")?;
    }
    if !shown.ignore.is_empty() {
        writeln!(out, "ignore:")?;
        for (i, re) in shown.ignore.iter().enumerate() {
            writeln!(out, "  {i:>2}  {re}")?;
        }
    }
    // A sample's head: 0 matches, 1 must not match, 2 injection.
    let head = |s: &Sample| match (s.inject, s.host.is_some() || s.name.is_some()) {
        (true, _) => 2,
        (false, true) => 0,
        (false, false) => 1,
    };
    let titles = [
        "samples that match (-> address taken):",
        "samples that must not match:",
        "injection attempts (client text imitating the format; -> the true client, or nothing):",
    ];
    for (k, title) in titles.into_iter().enumerate() {
        let picked: Vec<&Sample> = samples.iter().filter(|s| head(s) == k).collect();
        if picked.is_empty() {
            continue;
        }
        writeln!(out, "{title}")?;
        for s in picked {
            writeln!(out, "  {}", s.line)?;
            if let Some(h) = s.host {
                writeln!(out, "      -> {h}")?;
            } else if let Some(name) = s.name {
                writeln!(out, "      -> host name {name} (use_dns: its addresses)")?;
            }
        }
    }
    Ok(())
}
