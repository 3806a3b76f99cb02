//! How much of fail2ban's own test logs the built-in filters catch (issue 10).
//!
//! Debian's `fail2ban` package installs fail2ban's sample logs (one per
//! fail2ban filter, each log line preceded by a `# failJSON: {...}` comment
//! saying whether it must match and which host it names). They are the nearest
//! public stand-in for a corpus of real lines from many services, versions and
//! platforms. They are read where the package put them, at run time, and never
//! copied into this project: the built-ins are written from the daemons' own
//! logging code, and these lines are only the exam.
//!
//! For every file named like a built-in filter, each of the filter's modes
//! reads the whole file in order (sessions span lines, as in the agent), and
//! every `failJSON` line the mode is meant for is scored:
//! - `"match": true`: *caught* when the line's own offence, or the offence its
//!   session counts, names the expected host; *wrong host* when it names
//!   another; *missed* otherwise.
//! - `"match": false`: a *false positive* when the line counts.
//!
//! Print the table with
//! `cargo test -p log2drop --test builtin_coverage -- --nocapture`.
//! docs/filters.md explains what is not scored and why. The test fails on a
//! wrong host, a false positive, or a catch rate below the floors below (so a
//! regression shows); without the package it skips and says so, and under
//! `CI=true` that is a failure (CI installs it).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::Path;
use std::time::SystemTime;

use log2drop::filter::{self, Host, Outcome, SourceMatcher, builtin, session::Role};
use serde_json::Value;

/// Where Debian's `fail2ban` package installs fail2ban's sample logs.
const LOGS: &str = "/usr/lib/python3/dist-packages/fail2ban/tests/files/logs";

/// Lowest catch rates (per cent) the built-ins may fall to: the figures
/// measured when they were last raised, rounded down.
const FLOOR_NORMAL: f64 = 97.0;
const FLOOR_AGGRESSIVE: f64 = 98.0;

/// `"match": false` lines a built-in counts on purpose: real failed logins in a
/// format fail2ban chose to stop reading (its own comment says so), not lines
/// that must never count. Each is (file, text of the line, why). They are
/// reported, not scored as false positives; anything else still is.
const COUNTED_ON_PURPOSE: &[(&str, &str, &str)] = &[(
    "pam-generic",
    "pop(pam_unix)[4920]: authentication failure;",
    "Linux-PAM before 0.78 put the module in the tag; a failed login from rhost all the same \
     (fail2ban: \"nolonger supported\")",
)];

/// fail2ban's sample files that test one of its filters under another name.
fn filter_of(file: &str) -> &str {
    match file {
        "sshd-journal" => "sshd",
        // fail2ban's `recidive` reads fail2ban's own log, which log2drop's
        // `fail2ban` filter reads (its `recidive` reads log2drop's log).
        "recidive" => "fail2ban",
        f => f,
    }
}

/// One option set of a `filterOptions` block.
#[derive(Debug, Clone, Default)]
struct Opts {
    /// fail2ban's mode (`""` for the filter's default).
    mode: String,
    /// `test.prefix-line`, put in front of each line.
    prefix_line: String,
    /// `logtype = journal`: the lines are fail2ban's rendering of journal
    /// entries (`HOST IDENT[PID]: MESSAGE`, no time).
    journal: bool,
}

/// One scored line of a sample file.
#[derive(Debug)]
struct Expect {
    /// Line number in the file.
    number: usize,
    line: String,
    /// Whether a `failJSON` comment scores the line (others are only read).
    scored: bool,
    /// `None` for `"match": false`.
    host: Option<String>,
    /// Our modes the line is scored in.
    modes: BTreeSet<String>,
    /// fail2ban modes of its block that no built-in mode stands for.
    lacking: Vec<String>,
}

/// Reads a sample file the way fail2ban's `samplestestcase.py` does.
fn read_file(name: &str, our_modes: &[String], text: &str) -> Vec<Expect> {
    let mut out = Vec::new();
    let mut common: serde_json::Map<String, Value> = Default::default();
    let mut block: Vec<Opts> = vec![Opts::default()];
    let mut skip_block = false;
    let mut pending: Option<Value> = None;
    // As fail2ban's samplestestcase.py reads them.
    let directive =
        regex::Regex::new(r"^#+ ?(failJSON|(?:file|filter)Options|addFILE):(.+)$").expect("regex");
    let journal = regex::Regex::new(r"^\S+ ([A-Za-z][\w./-]*(?:\[\d+\])?: .*)$").expect("regex");
    for (n, line) in text.lines().enumerate() {
        let number = n + 1;
        if let Some(c) = directive.captures(line) {
            let (key, json) = (&c[1], &c[2]);
            let v: Value = serde_json::from_str(json.trim())
                .unwrap_or_else(|e| panic!("{name}:{number}: {e}"));
            match key {
                "fileOptions" => common = v.as_object().cloned().unwrap_or_default(),
                "filterOptions" => {
                    let sets = match v {
                        Value::Array(a) => a,
                        o => vec![o],
                    };
                    block.clear();
                    skip_block = false;
                    for set in sets {
                        let mut o = common.clone();
                        o.extend(set.as_object().cloned().unwrap_or_default());
                        if let Some(cond) = o.get("test.condition").and_then(Value::as_str) {
                            // The only form the files use: `name=='FILTER'`.
                            let wanted = cond.trim_start_matches("name==").trim_matches('\'');
                            if wanted != filter_of(name) {
                                skip_block = true;
                                continue;
                            }
                        }
                        block.push(Opts {
                            mode: o
                                .get("mode")
                                .and_then(Value::as_str)
                                .unwrap_or("")
                                .to_owned(),
                            prefix_line: o
                                .get("test.prefix-line")
                                .and_then(Value::as_str)
                                .unwrap_or("")
                                .to_owned(),
                            journal: o.get("logtype").and_then(Value::as_str) == Some("journal"),
                        });
                    }
                }
                "failJSON" => pending = Some(v),
                _ => {} // addFILE: only in files for filters we do not have
            }
            continue;
        }
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        if skip_block {
            pending = None;
            continue;
        }
        let prefix = block.first().map(|o| o.prefix_line.as_str()).unwrap_or("");
        let mut full = format!("{prefix}{line}");
        if block.iter().any(|o| o.journal)
            && let Some(c) = journal.captures(&full)
        {
            // What log2drop's journal source makes of that entry: its time
            // (any; no filter here looks at the year) and no host.
            full = format!("2005-08-14T10:00:00.000000Z {}", &c[1]);
        }
        let v = pending.take();
        let scored = v.is_some();
        let v = v.unwrap_or_default();
        let host = v
            .get("match")
            .and_then(Value::as_bool)
            .unwrap_or(false)
            .then(|| {
                v.get("host")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned()
            });
        let mut modes = BTreeSet::new();
        let mut lacking = Vec::new();
        let constraint = v.get("constraint").and_then(Value::as_str);
        for o in &block {
            // fail2ban does not give a line to an option set whose filter
            // the line's constraint rules out.
            if let Some(c) = constraint
                && !holds(c, filter_of(name), &o.mode)
            {
                continue;
            }
            match our_mode(&o.mode, our_modes) {
                Some(m) => {
                    modes.insert(m);
                }
                None => lacking.push(o.mode.clone()),
            }
        }
        out.push(Expect {
            number,
            line: full,
            scored,
            host,
            modes,
            lacking,
        });
    }
    out
}

/// Whether a `failJSON` constraint holds for fail2ban's filter `name` in
/// `mode`: the files use only these three forms.
fn holds(constraint: &str, name: &str, mode: &str) -> bool {
    let quoted = |s: &str| s.trim().trim_matches('\'').to_owned();
    if let Some(v) = constraint.strip_prefix("name ==") {
        name == quoted(v)
    } else if let Some(v) = constraint.strip_prefix("opts.get('mode') ==") {
        mode == quoted(v)
    } else if let Some(v) = constraint.strip_prefix("opts.get('mode') !=") {
        mode != quoted(v)
    } else {
        panic!("a failJSON constraint this test cannot read: {constraint}")
    }
}

/// The built-in mode that stands for fail2ban's `mode`: the default and
/// `normal` are ours; fail2ban's `ddos` and `extra` are parts of its
/// `aggressive`, which ours covers.
fn our_mode(mode: &str, ours: &[String]) -> Option<String> {
    let normal = filter::NORMAL_MODE;
    match mode {
        "" | "normal" => Some(normal.to_owned()),
        m if ours.iter().any(|o| o == m) => Some(m.to_owned()),
        "ddos" | "extra" if ours.iter().any(|o| o == "aggressive") => Some("aggressive".into()),
        _ => None,
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Score {
    must: u32,
    caught: u32,
    /// Of `caught`: by an offence its session counted on another line.
    by_session: u32,
    wrong: u32,
    must_not: u32,
    false_pos: u32,
    /// Offences for hosts only a stricter fail2ban mode counts.
    stricter: u32,
}

impl Score {
    fn add(&mut self, o: &Score) {
        self.must += o.must;
        self.caught += o.caught;
        self.by_session += o.by_session;
        self.wrong += o.wrong;
        self.must_not += o.must_not;
        self.false_pos += o.false_pos;
        self.stricter += o.stricter;
    }
    /// One line of the table.
    fn row(&self, file: &str, mode: &str, unscored: &str) -> String {
        format!(
            "{file:<22} {mode:<10} {:>5} {:>6} {:>7} {:>6.1} {:>5} {:>8} {:>4} {:>8} {unscored:>8}\n",
            self.must,
            self.caught,
            self.by_session,
            self.rate(),
            self.wrong,
            self.must_not,
            self.false_pos,
            self.stricter,
        )
    }
    fn rate(&self) -> f64 {
        if self.must == 0 {
            100.0
        } else {
            100.0 * f64::from(self.caught) / f64::from(self.must)
        }
    }
}

/// Whether `got` (as the filter took it) is the host fail2ban expects.
/// A `failJSON` without `host` (the host is its session's) takes any.
fn same_host(got: &str, want: &str) -> bool {
    if want.is_empty() || got.eq_ignore_ascii_case(want) {
        return true;
    }
    match (got.parse::<IpAddr>(), want.parse::<IpAddr>()) {
        (Ok(a), Ok(b)) => a == b || a.to_canonical() == b.to_canonical(),
        _ => false,
    }
}

/// Runs one filter in one mode over a file's lines; returns its score and
/// the lines it got wrong, for the report.
fn score(name: &str, mode: &str, expects: &[Expect], problems: &mut Vec<String>) -> Score {
    let base = builtin::get(name).expect("built-in");
    let cfg = filter::with_mode(&base, mode).expect("mode");
    let m = SourceMatcher::build(&[(name, &cfg)]).expect("a built-in compiles");
    // Only a filter with session lists counts one attempt over several lines.
    let sessions = !(cfg.attempt.is_empty()
        && cfg.address.is_empty()
        && cfg.end.is_empty()
        && cfg.success.is_empty());
    let mut s = m.new_scratch();
    // The lines of the blocks for this mode, as fail2ban gives each option
    // set's filter only its blocks' lines.
    let lines: Vec<&Expect> = expects.iter().filter(|e| e.modes.contains(mode)).collect();
    let now = SystemTime::now();
    let text = |h: &Host, s: &filter::Scratch| match h {
        Host::Addr(a) => a.to_string(),
        Host::Name(r) => s.host_name(*r).unwrap_or("?").to_owned(),
    };
    // Per scored line: what its own outcome says, and the host a held line's
    // session would count.
    enum Got {
        Counted(String),
        Held(String, Role),
        Nothing,
    }
    let mut got: Vec<(usize, Got)> = Vec::new();
    let process = regex::Regex::new(r"[A-Za-z][\w./-]*\[\d+\]").expect("regex");
    // The process that wrote a line (`IDENT[PID]`), which groups a session.
    let key = |i: usize| -> Option<String> {
        let l = &lines.get(i)?.line;
        Some(process.find(l)?.as_str().to_owned())
    };
    // Every offence: the index of the line read when it was counted, its
    // host, and the process of its session (for one that ended without a
    // line of its own, that of the last held line for the host).
    let mut offences: Vec<(usize, String, Option<String>)> = Vec::new();
    let mut held_by: BTreeMap<String, Option<String>> = BTreeMap::new();
    for (i, e) in lines.iter().enumerate() {
        let out = m.examine(e.line.as_bytes(), now, &mut s);
        let g = match out {
            Outcome::Hit(h) | Outcome::Ended { counted: h, .. } => {
                let t = text(&h.host, &s);
                offences.push((i, t.clone(), key(i)));
                Got::Counted(t)
            }
            Outcome::Held(h) => {
                let t = text(&h.host, &s);
                held_by.insert(t.clone(), key(i));
                Got::Held(t, h.role)
            }
            Outcome::Ignored { .. } | Outcome::Miss => Got::Nothing,
        };
        while let Some(h) = m.take_deferred(&mut s) {
            let t = text(&h.host, &s);
            let k = held_by.get(&t).cloned().flatten();
            offences.push((i, t, k));
        }
        if e.scored {
            got.push((i, g));
        }
    }
    m.finish(&mut s);
    while let Some(h) = m.take_deferred(&mut s) {
        let t = text(&h.host, &s);
        let k = held_by.get(&t).cloned().flatten();
        offences.push((lines.len(), t, k));
    }
    let mut sc = Score::default();
    let mut explained = vec![false; offences.len()];
    let credit =
        |i: usize, want: &str, own: bool, role: Option<Role>, explained: &mut Vec<bool>| {
            // The line's own offence, or one its session counted for the same
            // host: one attempt is one offence, so lines fail2ban counts one by
            // one inside a session share the session's offence. A held
            // `address` line's session counts at or after it, a held `attempt`
            // or `end` line's already did; an unheld line's session, either.
            let k = key(i);
            let mut found = false;
            if !own && !sessions {
                return false;
            }
            for (j, o) in offences.iter().enumerate() {
                // A line without `host` takes its session's.
                if !(want.is_empty() || same_host(&o.1, want)) {
                    continue;
                }
                let hit = if own {
                    o.0 == i
                } else {
                    let same = k.is_some() && o.2 == k;
                    match role {
                        _ if want.is_empty() => same,
                        Some(Role::Address | Role::Carry) => o.0 >= i,
                        Some(_) => o.0 <= i,
                        None => same,
                    }
                };
                if hit {
                    explained[j] = true;
                    found = true;
                }
            }
            found
        };
    for (i, g) in &got {
        let e = lines[*i];
        let what = match (&e.host, g) {
            (Some(want), Got::Counted(h)) if same_host(h, want) => {
                credit(*i, want, true, None, &mut explained);
                "caught"
            }
            (Some(want), Got::Held(h, role)) if same_host(h, want) => {
                if credit(*i, want, false, Some(*role), &mut explained) {
                    "caught (session)"
                } else {
                    "missed (held)"
                }
            }
            (Some(_), Got::Counted(_)) => "wrong host",
            (Some(_), Got::Held(h, _)) if !h.is_empty() && h != "::" && h != "0.0.0.0" => {
                "wrong host"
            }
            (Some(want), _) => {
                if credit(*i, want, false, None, &mut explained) {
                    "caught (session)"
                } else {
                    "missed"
                }
            }
            (None, _) => "",
        };
        match &e.host {
            Some(_) => sc.must += 1,
            None => sc.must_not += 1,
        }
        match what {
            "caught" => sc.caught += 1,
            "caught (session)" => {
                sc.caught += 1;
                sc.by_session += 1;
            }
            "wrong host" => sc.wrong += 1,
            _ => {}
        }
        if !what.is_empty() && !what.starts_with("caught") {
            let got = match g {
                Got::Counted(h) => format!("counted {h}"),
                Got::Held(h, r) => format!("held {h} ({r:?})"),
                Got::Nothing => "no match".into(),
            };
            problems.push(format!(
                "{name}[{mode}] line {}: {what}: want {:?}, {got}\n    {}",
                e.number,
                e.host.as_deref().unwrap_or("no match"),
                e.line
            ));
        }
    }
    // An offence that no `"match": true` line explains is a false positive:
    // counted on a line that must not count, or for a session of such lines.
    for (k, (i, h, _)) in offences.iter().enumerate() {
        if explained[k] {
            continue;
        }
        // fail2ban counts it in a stricter mode of its own: a session
        // log2drop counts in every mode (an address, then the client left).
        if expects.iter().any(|e| {
            e.scored
                && !e.modes.contains(mode)
                && e.host
                    .as_deref()
                    .is_some_and(|w| !w.is_empty() && same_host(h, w))
        }) {
            sc.stricter += 1;
            continue;
        }
        if let Some(l) = lines.get(*i)
            && let Some((_, _, why)) = COUNTED_ON_PURPOSE
                .iter()
                .find(|(f, text, _)| *f == name && l.line.contains(text))
        {
            problems.push(format!(
                "{name}[{mode}]: counted on purpose at line {}: {why}",
                l.number
            ));
            continue;
        }
        sc.false_pos += 1;
        let at = lines.get(*i).map_or("(end of file)".into(), |l| {
            format!("line {}: {}", l.number, l.line)
        });
        problems.push(format!(
            "{name}[{mode}]: false positive: an offence for {h} no line expects, counted at\n    {at}"
        ));
    }
    sc
}

struct Report {
    table: String,
    problems: Vec<String>,
    normal: Score,
    aggressive: Score,
}

fn measure(dir: &Path) -> Report {
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .expect("fail2ban's sample logs")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|f| builtin::exists(filter_of(f)))
        .collect();
    files.sort();
    let mut table = String::new();
    let _ = writeln!(
        table,
        "{:<22} {:<10} {:>5} {:>6} {:>7} {:>6} {:>5} {:>8} {:>4} {:>8} {:>8}",
        "file",
        "mode",
        "must",
        "caught",
        "session",
        "rate%",
        "wrong",
        "must-not",
        "fp",
        "stricter",
        "unscored"
    );
    let mut problems = Vec::new();
    let mut normal = Score::default();
    let mut aggressive = Score::default();
    let mut lacking_total: BTreeMap<String, u32> = BTreeMap::new();
    for f in &files {
        let name = filter_of(f);
        let base = builtin::get(name).expect("built-in");
        let modes = filter::modes(&base);
        let text = std::fs::read_to_string(dir.join(f))
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.join(f).display()));
        let expects = read_file(f, &modes, &text);
        let lacking: Vec<&Expect> = expects
            .iter()
            .filter(|e| e.scored && e.modes.is_empty() && e.host.is_some())
            .collect();
        for e in &lacking {
            *lacking_total.entry(e.lacking.join("/")).or_default() += 1;
        }
        for mode in &modes {
            let sc = score(name, mode, &expects, &mut problems);
            if sc.must + sc.must_not == 0 {
                continue;
            }
            let unscored = if mode == filter::NORMAL_MODE {
                lacking.len().to_string()
            } else {
                String::new()
            };
            table.push_str(&sc.row(f, mode, &unscored));
            if mode == filter::NORMAL_MODE {
                normal.add(&sc);
            }
            if mode == "aggressive" {
                aggressive.add(&sc);
            }
        }
    }
    for (label, sc) in [
        ("TOTAL normal", &normal),
        ("TOTAL aggressive (where a filter has it)", &aggressive),
    ] {
        let _ = writeln!(table, "{label}");
        table.push_str(&sc.row("", "", ""));
    }
    for (modes, n) in lacking_total {
        let _ = writeln!(
            table,
            "unscored: {n} lines only for fail2ban mode(s) {modes}, which no built-in has"
        );
    }
    Report {
        table,
        problems,
        normal,
        aggressive,
    }
}

#[test]
fn builtin_filters_catch_fail2bans_sample_lines() {
    let dir = Path::new(LOGS);
    if !dir.is_dir() {
        let msg = format!("{LOGS} is absent (Debian's fail2ban package installs it)");
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{msg}; CI must not skip"
        );
        eprintln!("skipped: {msg}");
        return;
    }
    let r = measure(dir);
    println!("{}", r.table);
    for p in &r.problems {
        println!("{p}");
    }
    for (label, sc) in [("normal", &r.normal), ("aggressive", &r.aggressive)] {
        assert_eq!(sc.wrong, 0, "{label}: wrong hosts (see the lines above)");
        assert_eq!(
            sc.false_pos, 0,
            "{label}: false positives (see the lines above)"
        );
    }
    assert!(
        r.normal.rate() >= FLOOR_NORMAL,
        "normal mode catches {:.1}% of the lines, below the floor {FLOOR_NORMAL}%",
        r.normal.rate()
    );
    assert!(
        r.aggressive.rate() >= FLOOR_AGGRESSIVE,
        "aggressive mode catches {:.1}% of the lines, below the floor {FLOOR_AGGRESSIVE}%",
        r.aggressive.rate()
    );
}
