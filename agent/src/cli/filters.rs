//! `log2drop filters`: what the built-in filters are, so an admin can pick one
//! without reading the source. `filters` lists them (description, the services
//! and versions they were written against, their modes); `filters show NAME`
//! prints one in full: settings, regexes and its sample lines with what each
//! gives. Both print JSON with `--json` for scripts.

use std::io::Write;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use serde::Serialize;

use log2drop::config::{FilterConfig, FilterMode, LinePrefix};
use log2drop::filter::builtin::{self, Info, Sample};
use log2drop::filter::{self, HOST_PLACEHOLDER, NORMAL_MODE, Role};

/// `log2drop filters` arguments.
#[derive(Debug, Args)]
pub struct FiltersArgs {
    #[command(subcommand)]
    command: Option<FiltersCmd>,
    /// Print JSON instead of text: an array of {"name", "description",
    /// "services", "log", "modes"}, or with `show` one object that adds
    /// "mode", "settings", one list per role ("regex", "attempt", "address",
    /// "end", "success", "carry"), "ignore", "hostless" (the counting regexes
    /// without <HOST>, as "ROLE[INDEX]"), what each mode adds and "samples".
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum FiltersCmd {
    /// Print one built-in filter in full: what it is for, where its lines are,
    /// its settings (prefix, programs, line time: datepattern or the syslog
    /// prefix, timezone, session_window), every regex by role (failure
    /// `regex`; the session roles `attempt`, `address`, `end`, `success` and
    /// `carry`, with the regexes that name no <HOST> and take their session's
    /// address marked), its ignore regexes, each mode and the regexes it adds,
    /// and its sample lines: those that match (with the address taken), those
    /// that must not, and injection attempts (client-written text imitating the
    /// format), which must never give another address.
    ///
    /// With --mode MODE: the lists that mode runs (its own, marked `+`, in
    /// front of the filter's) and the sample lines of that mode.
    ///
    /// To change a built-in, copy `log2drop filters show NAME --toml` into a
    /// [filters.NAME] table of your config: a table with a built-in's name
    /// replaces it.
    Show {
        /// The built-in filter's name, as `log2drop filters` lists it.
        #[arg(value_name = "NAME")]
        name: String,
        /// Show the filter as it runs in this mode (`sshd[mode=aggressive]`
        /// in a config; `log2drop test sshd --mode aggressive`).
        #[arg(long, value_name = "MODE")]
        mode: Option<String>,
        /// Print the filter's TOML file as shipped (its [filter] table is exactly
        /// a [filters.NAME] table, modes included).
        #[arg(long, conflicts_with_all = ["json", "mode"])]
        toml: bool,
    },
}

/// What each role's lines do, as `filters show` titles them.
fn role_title(role: Role) -> &'static str {
    match role {
        Role::Failure => "each line is one failed attempt: it always counts",
        Role::Attempt => {
            "the session failed: counts once, not if a line of the session already counted"
        }
        Role::Address => {
            "only the session's address: counts once if the session ends with no counted line"
        }
        Role::End => "the session ends: a pending address counts now; never counts by itself",
        Role::Success => "a login: the session ends without an offence, a pending address dropped",
        Role::Carry => {
            "only names the session's address, for its lines that name none; never counts"
        }
    }
}

/// One mode of a filter.
#[derive(Debug, Serialize)]
struct Mode<'a> {
    name: &'a str,
    description: &'a str,
    /// The regexes the mode puts in front of the filter's own, by role (empty
    /// for `normal`, which is the filter's own lists).
    #[serde(skip_serializing_if = "Lists::is_empty")]
    adds: Lists<'a>,
}

/// A filter's regex lists, by role, then its ignore regexes.
#[derive(Debug, Default, Serialize)]
struct Lists<'a> {
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    regex: &'a [String],
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    attempt: &'a [String],
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    address: &'a [String],
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    end: &'a [String],
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    success: &'a [String],
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    carry: &'a [String],
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    ignore: &'a [String],
}

impl<'a> Lists<'a> {
    fn of(f: &'a FilterConfig) -> Self {
        Self::from_parts(f.counting_lists(), &f.ignore)
    }

    fn of_mode(m: &'a FilterMode) -> Self {
        Self::from_parts(m.counting_lists(), &m.ignore)
    }

    fn from_parts(c: [&'a Vec<String>; 6], ignore: &'a [String]) -> Self {
        Lists {
            regex: c[0],
            attempt: c[1],
            address: c[2],
            end: c[3],
            success: c[4],
            carry: c[5],
            ignore,
        }
    }

    /// The counting lists, in the order of `Role::ALL`.
    fn by_role(&self) -> [(Role, &'a [String]); 6] {
        let l = [
            self.regex,
            self.attempt,
            self.address,
            self.end,
            self.success,
            self.carry,
        ];
        std::array::from_fn(|i| (Role::ALL[i], l[i]))
    }

    fn is_empty(&self) -> bool {
        self.by_role().iter().all(|(_, l)| l.is_empty()) && self.ignore.is_empty()
    }
}

/// A filter in the listing.
#[derive(Debug, Serialize)]
struct Listed<'a> {
    name: &'a str,
    description: &'a str,
    services: &'a [String],
    log: &'a str,
    modes: Vec<Mode<'a>>,
}

/// A filter shown in full.
#[derive(Debug, Serialize)]
struct Shown<'a> {
    #[serde(flatten)]
    listed: Listed<'a>,
    /// The mode shown: its lists are in front of the filter's own below.
    mode: &'a str,
    settings: Settings<'a>,
    /// Every list is present (empty where the filter has none) so scripts can
    /// index them.
    regex: &'a [String],
    attempt: &'a [String],
    address: &'a [String],
    end: &'a [String],
    success: &'a [String],
    carry: &'a [String],
    ignore: &'a [String],
    /// The counting regexes (`ROLE[INDEX]`, as in the lists above) that name
    /// no <HOST>: their lines take the address their session named.
    hostless: Vec<String>,
    samples: Vec<ShownSample<'a>>,
}

#[derive(Debug, Serialize)]
struct Settings<'a> {
    prefix: &'static str,
    programs: &'a [String],
    datepattern: Option<&'a str>,
    timezone: Option<&'a str>,
    /// How long a session may be idle before it ends, when the filter has
    /// session roles (null otherwise).
    session_window: Option<String>,
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
    /// The line matches but its session keeps it from counting by itself.
    held: bool,
    /// The mode the line is read in.
    mode: &'a str,
}

/// `log2drop filters`.
pub fn run(args: &FiltersArgs) -> Result<()> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match &args.command {
        None => list(&mut out, args.json)?,
        Some(FiltersCmd::Show { name, mode, toml }) => {
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
                let mode = mode.as_deref().unwrap_or(NORMAL_MODE);
                let Some(running) = filter::with_mode(&info.filter, mode) else {
                    bail!(
                        "filter {name:?} has no mode {mode:?} (its modes: {})",
                        filter::modes(&info.filter).join(", ")
                    );
                };
                let samples = builtin::samples(name).unwrap_or_default();
                show(&mut out, &info, mode, &running, &samples, args.json)?;
            }
        }
    }
    out.flush().context("cannot write to stdout")
}

/// The modes of a filter, `normal` (its own lists) first.
fn modes(cfg: &FilterConfig) -> Vec<Mode<'_>> {
    std::iter::once(Mode {
        name: NORMAL_MODE,
        description: "the filter's own regexes",
        adds: Lists::default(),
    })
    .chain(cfg.modes.iter().map(|(name, m)| Mode {
        name,
        description: &m.description,
        adds: Lists::of_mode(m),
    }))
    .collect()
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
        let names: Vec<&str> = l.modes.iter().map(|m| m.name).collect();
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

/// `ROLE[INDEX]` of every counting regex of `lists` without `<HOST>`.
fn hostless(lists: &Lists) -> Vec<String> {
    lists
        .by_role()
        .iter()
        .flat_map(|(role, list)| {
            list.iter()
                .enumerate()
                .filter(|(_, re)| !re.contains(HOST_PLACEHOLDER))
                .map(move |(i, _)| format!("{}[{i}]", role.key()))
        })
        .collect()
}

/// Prints the counting lists of `lists` under their role's key, then `ignore`.
/// The first `added` entries of each list (a mode's, by role) are marked `+`.
fn write_lists(
    out: &mut impl Write,
    lists: &Lists,
    added: Option<&Lists>,
    indent: &str,
) -> Result<()> {
    let added_roles = added.map(Lists::by_role);
    for (k, (role, list)) in lists.by_role().into_iter().enumerate() {
        if list.is_empty() {
            continue;
        }
        let n_added = added_roles.map_or(0, |a| a[k].1.len());
        writeln!(out, "{indent}{} ({}):", role.key(), role_title(role))?;
        write_regexes(out, list, n_added, indent, true)?;
    }
    if !lists.ignore.is_empty() {
        let n_added = added.map_or(0, |a| a.ignore.len());
        writeln!(
            out,
            "{indent}ignore (a line any of these matches never counts):"
        )?;
        write_regexes(out, lists.ignore, n_added, indent, false)?;
    }
    Ok(())
}

fn write_regexes(
    out: &mut impl Write,
    list: &[String],
    n_added: usize,
    indent: &str,
    counting: bool,
) -> Result<()> {
    for (i, re) in list.iter().enumerate() {
        let mark = if i < n_added { '+' } else { ' ' };
        writeln!(out, "{indent} {mark}{i:>2}  {re}")?;
        if counting && !re.contains(HOST_PLACEHOLDER) {
            writeln!(
                out,
                "{indent}        (no {HOST_PLACEHOLDER}: the address its session named)"
            )?;
        }
    }
    Ok(())
}

fn show(
    out: &mut impl Write,
    info: &Info,
    mode: &str,
    running: &FilterConfig,
    samples: &[Sample],
    json: bool,
) -> Result<()> {
    let f = running;
    let lists = Lists::of(f);
    let sessions = lists.by_role()[1..].iter().any(|(_, l)| !l.is_empty());
    let window = sessions.then(|| {
        f.session_window
            .clone()
            .unwrap_or_else(|| format!("{}s (default)", filter::session::DEFAULT_WINDOW.as_secs()))
    });
    // Without --mode every sample is shown, tagged with its mode; with one,
    // the samples read in it.
    let picked: Vec<&Sample> = samples
        .iter()
        .filter(|s| mode == NORMAL_MODE || s.mode == mode)
        .collect();
    let shown = Shown {
        listed: listed(info),
        mode,
        settings: Settings {
            prefix: prefix_name(f.prefix),
            programs: &f.programs,
            datepattern: f.datepattern.as_deref(),
            timezone: f.timezone.as_deref(),
            session_window: window,
            allow_rdns: &f.allow_rdns,
        },
        regex: &f.regex,
        attempt: &f.attempt,
        address: &f.address,
        end: &f.end,
        success: &f.success,
        carry: &f.carry,
        ignore: &f.ignore,
        hostless: hostless(&lists),
        samples: picked
            .iter()
            .map(|s| ShownSample {
                line: s.line,
                host: s
                    .host
                    .map(|h| h.to_string())
                    .or_else(|| s.name.map(str::to_owned)),
                inject: s.inject,
                held: s.held,
                mode: s.mode,
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
        let this = if m.name == mode { " (shown)" } else { "" };
        writeln!(out, "  {}{this}: {}", m.name, m.description)?;
    }
    let s = &shown.settings;
    writeln!(out, "settings:")?;
    writeln!(out, "  prefix = {:?}", s.prefix)?;
    if s.programs.is_empty() {
        if f.prefix == LinePrefix::Syslog {
            writeln!(out, "  (programs: every program's lines)")?;
        }
    } else {
        writeln!(out, "  programs = {:?}", s.programs)?;
    }
    match s.datepattern {
        Some(d) if f.prefix == LinePrefix::Syslog => writeln!(
            out,
            "  datepattern = {d:?} (at the message's start, where the syslog prefix has no time)"
        )?,
        Some(d) => writeln!(out, "  datepattern = {d:?}")?,
        None if f.prefix == LinePrefix::Syslog => {
            writeln!(out, "  (line time from the syslog prefix)")?;
        }
        None => writeln!(out, "  (no datepattern: the time a line is read)")?,
    }
    writeln!(out, "  timezone = {:?}", s.timezone.unwrap_or("local"))?;
    if let Some(w) = &s.session_window {
        writeln!(
            out,
            "  session_window = {w}: the lines of one session (syslog program and pid, or the regex's <F-MLFID>) within it are one attempt"
        )?;
    }
    if !s.allow_rdns.is_empty() {
        writeln!(
            out,
            "  allow_rdns = {:?} (lines from addresses whose reverse name in these domains resolves back to them do not count)",
            s.allow_rdns
        )?;
    }
    let added = info.filter.modes.get(mode).map(Lists::of_mode);
    if added.is_some() {
        writeln!(
            out,
            "regexes in mode {mode} (+: the mode's own, tried before the filter's):"
        )?;
    }
    write_lists(out, &lists, added.as_ref(), "")?;
    if mode == NORMAL_MODE {
        for m in l.modes.iter().filter(|m| m.name != NORMAL_MODE) {
            writeln!(
                out,
                "mode {} adds, before the filter's own (`{}[mode={}]`, `log2drop filters show {} --mode {}`):",
                m.name, l.name, m.name, l.name, m.name
            )?;
            write_lists(out, &m.adds, None, "  ")?;
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
        let these: Vec<&&Sample> = picked.iter().filter(|s| head(s) == k).collect();
        if these.is_empty() {
            continue;
        }
        writeln!(out, "{title}")?;
        for s in these {
            let tag = if mode == NORMAL_MODE && s.mode != NORMAL_MODE {
                format!("[mode {}] ", s.mode)
            } else {
                String::new()
            };
            writeln!(out, "  {tag}{}", s.line)?;
            let held = if s.held {
                " (held: does not count by itself; one attempt is one offence)"
            } else {
                ""
            };
            if let Some(h) = s.host {
                writeln!(out, "      -> {h}{held}")?;
            } else if let Some(name) = s.name {
                writeln!(
                    out,
                    "      -> host name {name} (use_dns: its addresses){held}"
                )?;
            }
        }
    }
    Ok(())
}
