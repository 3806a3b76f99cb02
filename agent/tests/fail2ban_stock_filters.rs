//! Every stock fail2ban filter that has a test log, run by log2drop exactly as
//! an admin switching would run it, catches what `fail2ban-regex` catches,
//! line by line, with the same host (issue 11).
//!
//! Read at run time from Debian's `fail2ban` package (in CI's apt packages),
//! never copied into the project: the filters in `/etc/fail2ban/filter.d` and
//! the test logs in `fail2ban/tests/files/logs`, whose `# failJSON:` comments
//! say what each line must give. `fail2ban_corpus.py` reads those logs the way
//! fail2ban's own `samplestestcase.py` does (one job per filter and
//! `# filterOptions:` set) and runs each job's lines through fail2ban-regex's
//! own class in one Python process. log2drop runs the same lines the way the
//! issue says: `log2drop import-fail2ban --all` to a config, then
//! `log2drop test --config imported.toml 'NAME[options]' FILE --json`.
//!
//! Per line: what fail2ban-regex reports, log2drop reports with the same
//! address; log2drop reports nothing fail2ban-regex does not; and on the lines
//! a failJSON covers, what it says. The table and totals are printed
//! (`cargo test -p log2drop --test fail2ban_stock_filters -- --nocapture`).
//!
//! Without fail2ban the test is skipped, saying so; under `CI=true` that is a
//! failure.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use serde::Deserialize;

use log2drop::config::FilterConfig;
use log2drop::filter::{self, Host, Outcome, SourceMatcher};

const FAIL2BAN_DIR: &str = "/etc/fail2ban";

/// Filters where log2drop does not catch every line fail2ban catches, with the
/// least it must still catch of their must-count lines (a regression fails).
/// Every other filter must agree with fail2ban-regex exactly.
///
/// mysqld-auth: `'root'@'localhost'`: fail2ban resolves the single-label name
/// to 127.0.0.1 (which its `ignoreself` never bans); log2drop takes only names
/// of two labels or more (docs/filters.md, "Host names").
const FLOORS: &[(&str, usize)] = &[("mysqld-auth", 16)];

#[derive(Deserialize)]
struct Corpus {
    version: String,
    jobs: Vec<Job>,
}

#[derive(Deserialize)]
struct Job {
    filter: String,
    options: BTreeMap<String, serde_json::Value>,
    lines: Vec<Line>,
}

#[derive(Deserialize)]
struct Line {
    text: String,
    expect: Option<Expect>,
    fail2ban: Vec<String>,
}

#[derive(Deserialize)]
struct Expect {
    #[serde(rename = "match")]
    matches: bool,
    host: Option<serde_json::Value>,
}

/// One offence as `log2drop test --json` gives it: the host text the filter
/// matched, and the addresses that would be banned.
struct Hit {
    host: String,
    addresses: Vec<IpAddr>,
}

/// A filter's figures over all its option sets.
#[derive(Default)]
struct Row {
    /// Lines a failJSON says must count.
    must: usize,
    /// Of those, caught by fail2ban-regex / by log2drop.
    f2b_caught: usize,
    l2d_caught: usize,
    /// Lines fail2ban-regex reports and log2drop does not (any line).
    missed: usize,
    /// Lines where log2drop's host is not fail2ban-regex's or the failJSON's.
    wrong_host: usize,
    /// Lines log2drop reports and fail2ban-regex does not, or a failJSON says
    /// must not match.
    extra: usize,
    notes: Vec<String>,
}

fn skip(why: &str) -> bool {
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{why}; CI must not skip"
    );
    eprintln!("skipped: {why}");
    true
}

/// The Python that runs `fail2ban-regex` (its `#!` line), where it is installed.
fn fail2ban_python() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    let script = std::env::split_paths(&path)
        .map(|d| d.join("fail2ban-regex"))
        .find(|p| p.is_file())?;
    let text = std::fs::read_to_string(script).ok()?;
    let interp = text.lines().next()?.strip_prefix("#!")?.trim();
    // `#!/usr/bin/env python3` or `#!/usr/bin/python3`.
    let interp = interp.strip_prefix("/usr/bin/env ").unwrap_or(interp);
    Some(PathBuf::from(interp.split_whitespace().next()?))
}

fn corpus(python: &Path, base: &Path, filters: &[String]) -> Corpus {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fail2ban_corpus.py");
    let out = Command::new(python)
        .arg(script)
        .arg(Path::new(FAIL2BAN_DIR).join("filter.d"))
        .arg(base)
        .args(filters)
        .output()
        .expect("runs fail2ban_corpus.py");
    assert!(
        out.status.success(),
        "fail2ban_corpus.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("fail2ban_corpus.py prints JSON")
}

/// `NAME[k="v", ...]`, as a jail's `filter =` names a filter with options.
fn reference(job: &Job) -> String {
    if job.options.is_empty() {
        return job.filter.clone();
    }
    let opts: Vec<String> = job
        .options
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", v.as_str().unwrap_or_default()))
        .collect();
    format!("{}[{}]", job.filter, opts.join(", "))
}

/// What a host name stands for: the system resolver's answer, as fail2ban's
/// `usedns = warn` (the default) and `log2drop test` (use_dns warn) take it.
fn resolve_name(name: &str) -> Vec<IpAddr> {
    use std::net::ToSocketAddrs;
    let mut v: Vec<IpAddr> = (name, 0)
        .to_socket_addrs()
        .map(|it| it.map(|s| s.ip()).collect())
        .unwrap_or_default();
    v.sort();
    v.dedup();
    v
}

/// log2drop's hits per line (1-based): the imported config's filter, with the
/// job's options, run the way `log2drop test --config imported.toml
/// 'NAME[options]' FILE --json` runs it (`cli/test.rs`): each line's own
/// offence, a session's at the line that ended it, the rest at the last line.
fn log2drop_hits(filters: &BTreeMap<String, FilterConfig>, job: &Job) -> BTreeMap<usize, Vec<Hit>> {
    let name = reference(job);
    let cfg = filter::resolve(filters, &name)
        .unwrap_or_else(|e| panic!("{name}: not in the imported config: {e}"));
    let m = SourceMatcher::build(&[(name.as_str(), &cfg)])
        .unwrap_or_else(|e| panic!("{name}: does not compile: {e}"));
    let mut s = m.new_scratch();
    let now = SystemTime::now();
    let mut hits: BTreeMap<usize, Vec<Hit>> = BTreeMap::new();
    let mut record = |n: usize, hit: &filter::Hit, s: &filter::Scratch| {
        let h = match hit.host {
            Host::Addr(a) => Hit {
                host: a.to_string(),
                addresses: vec![a],
            },
            Host::Name(r) => {
                let host = s.host_name(r).unwrap_or_default().to_owned();
                Hit {
                    addresses: resolve_name(&host),
                    host,
                }
            }
        };
        hits.entry(n).or_default().push(h);
    };
    for (i, line) in job.lines.iter().enumerate() {
        match m.examine(line.text.as_bytes(), now, &mut s) {
            Outcome::Hit(hit) | Outcome::Ended { counted: hit, .. } => record(i + 1, &hit, &s),
            Outcome::Held(_) | Outcome::Ignored { .. } | Outcome::Miss => {}
        }
        while let Some(hit) = m.take_deferred(&mut s) {
            record(i + 1, &hit, &s);
        }
    }
    m.finish(&mut s);
    while let Some(hit) = m.take_deferred(&mut s) {
        record(job.lines.len(), &hit, &s);
    }
    hits
}

fn compare(job: &Job, hits: &BTreeMap<usize, Vec<Hit>>, row: &mut Row) {
    let name = reference(job);
    for (i, line) in job.lines.iter().enumerate() {
        let ours = hits.get(&(i + 1)).map(Vec::as_slice).unwrap_or_default();
        let our_addrs: BTreeSet<String> = ours
            .iter()
            .flat_map(|h| h.addresses.iter().map(IpAddr::to_string))
            .collect();
        let our_hosts: BTreeSet<&str> = ours.iter().map(|h| h.host.as_str()).collect();
        let theirs: BTreeSet<String> = line
            .fail2ban
            .iter()
            .map(|h| canonical(h).unwrap_or_else(|| h.clone()))
            .collect();
        let mut note = |what: &str| {
            row.notes
                .push(format!("{name} line {}: {what}: {}", i + 1, line.text))
        };
        if !theirs.is_empty() && our_addrs.is_empty() {
            row.missed += 1;
            note(&format!("missed (fail2ban: {theirs:?})"));
        } else if theirs.is_empty() && !our_addrs.is_empty() {
            row.extra += 1;
            note(&format!("extra ({our_addrs:?})"));
        } else if theirs != our_addrs {
            row.wrong_host += 1;
            note(&format!("host {our_addrs:?}, fail2ban {theirs:?}"));
        }
        let Some(expect) = &line.expect else { continue };
        if expect.matches {
            row.must += 1;
            row.f2b_caught += usize::from(!theirs.is_empty());
            row.l2d_caught += usize::from(!our_addrs.is_empty());
            let want = match &expect.host {
                Some(serde_json::Value::String(h)) => Some(h.clone()),
                _ => None,
            };
            if let (Some(want), false) = (want, our_addrs.is_empty()) {
                // The failJSON gives the raw host: an address or a name.
                let right = match canonical(&want) {
                    Some(a) => our_addrs.contains(&a),
                    None => our_hosts.contains(want.as_str()),
                };
                if !right && theirs == our_addrs {
                    row.wrong_host += 1;
                    note(&format!("host {our_hosts:?}, failJSON {want}"));
                }
            }
        } else if !our_addrs.is_empty() && theirs.is_empty() {
            // Already counted as extra above.
        } else if !our_addrs.is_empty() {
            // Matched where the failJSON says no, as fail2ban-regex did.
            note("matches against the failJSON, as fail2ban-regex does");
        }
    }
}

/// An address in the form Rust prints it. fail2ban reports a zero-padded quad
/// (`192.030.0.6`) as written; log2drop reads it in decimal (see
/// `fail2ban::filter::parse_host`), and so does this comparison.
fn canonical(host: &str) -> Option<String> {
    if let Ok(a) = host.parse::<IpAddr>() {
        return Some(a.to_string());
    }
    let octets: Vec<u8> = host
        .split('.')
        .map(|p| p.parse().ok().filter(|_| p.len() <= 3))
        .collect::<Option<_>>()?;
    let quad: [u8; 4] = octets.try_into().ok()?;
    Some(IpAddr::from(quad).to_string())
}

#[test]
fn stock_filters_catch_what_fail2ban_regex_catches() {
    let Some(python) = fail2ban_python() else {
        skip("fail2ban-regex is not installed (Debian's fail2ban package)");
        return;
    };
    if !Path::new(FAIL2BAN_DIR).join("jail.conf").is_file() && skip("no /etc/fail2ban/jail.conf") {
        return;
    }
    let only: Vec<String> = std::env::var("LOG2DROP_F2B_FILTERS")
        .map(|v| v.split(',').map(str::to_owned).collect())
        .unwrap_or_default();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("imported.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_log2drop"))
        .args(["import-fail2ban", "--all", "--backend", "dry-run", "-o"])
        .arg(&config)
        .arg(FAIL2BAN_DIR)
        .output()
        .expect("runs log2drop import-fail2ban");
    assert!(
        out.status.success(),
        "import-fail2ban --all failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Loaded once (`log2drop test --config` loads and checks it per run: every
    // filter compiled, slow in a debug build); each job then resolves its
    // `NAME[options]` in it as `log2drop test` does.
    let filters = log2drop::config::load(&config)
        .expect("the imported config loads")
        .filters;
    // fail2ban-regex runs each filter with the options its jail gives it (as
    // the imported config has them: `mode = "normal"` from jail.conf's
    // DEFAULT, for one), overlaid by the test log's: what log2drop runs.
    let base: BTreeMap<&str, &BTreeMap<String, String>> = filters
        .iter()
        .map(|(name, cfg)| (name.as_str(), &cfg.options))
        .collect();
    let base_file = dir.path().join("options.json");
    std::fs::write(&base_file, serde_json::to_vec(&base).expect("JSON")).expect("writes");
    let corpus = corpus(&python, &base_file, &only);

    let mut rows: BTreeMap<String, Row> = BTreeMap::new();
    for job in &corpus.jobs {
        let hits = log2drop_hits(&filters, job);
        compare(job, &hits, rows.entry(job.filter.clone()).or_default());
    }

    let mut table = format!(
        "fail2ban {}: {} filters, {} option sets\n{:<28} {:>5} {:>9} {:>9} {:>7} {:>6} {:>6}\n",
        corpus.version,
        rows.len(),
        corpus.jobs.len(),
        "filter",
        "must",
        "fail2ban",
        "log2drop",
        "missed",
        "wrong",
        "extra"
    );
    let mut total = Row::default();
    for (name, r) in &rows {
        let _ = writeln!(
            table,
            "{name:<28} {:>5} {:>9} {:>9} {:>7} {:>6} {:>6}",
            r.must, r.f2b_caught, r.l2d_caught, r.missed, r.wrong_host, r.extra
        );
        total.must += r.must;
        total.f2b_caught += r.f2b_caught;
        total.l2d_caught += r.l2d_caught;
        total.missed += r.missed;
        total.wrong_host += r.wrong_host;
        total.extra += r.extra;
    }
    let _ = writeln!(
        table,
        "{:<28} {:>5} {:>9} {:>9} {:>7} {:>6} {:>6}",
        "total",
        total.must,
        total.f2b_caught,
        total.l2d_caught,
        total.missed,
        total.wrong_host,
        total.extra
    );
    eprintln!("{table}");
    for r in rows.values() {
        for n in &r.notes {
            eprintln!("{n}");
        }
    }

    let mut failures = Vec::new();
    for (name, r) in &rows {
        if r.wrong_host > 0 || r.extra > 0 {
            failures.push(format!(
                "{name}: {} wrong host(s), {} extra",
                r.wrong_host, r.extra
            ));
        }
        match FLOORS.iter().find(|(f, _)| f == name) {
            Some((_, floor)) if r.l2d_caught < *floor => failures.push(format!(
                "{name}: log2drop catches {} of its must-count lines, below its floor {floor}",
                r.l2d_caught
            )),
            Some(_) => {}
            None if r.missed > 0 => failures.push(format!(
                "{name}: misses {} line(s) fail2ban-regex catches",
                r.missed
            )),
            None => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
