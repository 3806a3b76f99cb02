//! What the fail2ban comparison tests share (fail2ban_stock_filters.rs,
//! fail2ban_differential.rs): running fail2ban-regex's own class on a corpus
//! through a Python script, the imported config, log2drop's hits per line,
//! the line-by-line comparison and its per-filter table.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use serde::Deserialize;

use log2drop::config::FilterConfig;
use log2drop::filter::{self, Host, Outcome, SourceMatcher};

pub const FAIL2BAN_DIR: &str = "/etc/fail2ban";

#[derive(Deserialize)]
pub struct Corpus {
    pub version: String,
    pub jobs: Vec<Job>,
}

#[derive(Deserialize)]
pub struct Job {
    pub filter: String,
    /// The transformation fail2ban_mutants.py applied to the test log's job.
    #[serde(default)]
    pub variant: String,
    pub options: BTreeMap<String, serde_json::Value>,
    pub lines: Vec<Line>,
}

#[derive(Deserialize)]
pub struct Line {
    pub text: String,
    pub expect: Option<Expect>,
    fail2ban: Vec<String>,
}

#[derive(Deserialize)]
pub struct Expect {
    #[serde(rename = "match")]
    pub matches: bool,
    pub host: Option<serde_json::Value>,
}

/// One offence as `log2drop test --json` gives it: the host text the filter
/// matched, and the addresses that would be banned.
pub struct Hit {
    pub host: String,
    pub addresses: Vec<IpAddr>,
}

/// A filter's figures over all its option sets.
#[derive(Default)]
pub struct Row {
    /// Lines a failJSON says must count.
    pub must: usize,
    /// Of those, caught by fail2ban-regex / by log2drop.
    pub f2b_caught: usize,
    pub l2d_caught: usize,
    /// Lines fail2ban-regex reports and log2drop does not (any line).
    pub missed: usize,
    /// Lines where log2drop's host is not fail2ban-regex's or the failJSON's.
    pub wrong_host: usize,
    /// Lines log2drop reports and fail2ban-regex does not, or a failJSON says
    /// must not match.
    pub extra: usize,
    pub notes: Vec<String>,
}

pub fn skip(why: &str) -> bool {
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{why}; CI must not skip"
    );
    eprintln!("skipped: {why}");
    true
}

/// The Python that runs `fail2ban-regex` (its `#!` line), where it is installed.
pub fn fail2ban_python() -> Option<PathBuf> {
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

pub fn corpus(script: &str, python: &Path, base: &Path, filters: &[String]) -> Corpus {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(script);
    let out = Command::new(python)
        .arg(&script)
        .arg(Path::new(FAIL2BAN_DIR).join("filter.d"))
        .arg(base)
        .args(filters)
        .output()
        .unwrap_or_else(|e| panic!("runs {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "{} failed: {}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the corpus script prints JSON")
}

/// `NAME[k="v", ...]`, as a jail's `filter =` names a filter with options.
pub fn reference(job: &Job) -> String {
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
pub fn resolve_name(name: &str) -> Vec<IpAddr> {
    use std::net::ToSocketAddrs;
    let mut v: Vec<IpAddr> = (name, 0)
        .to_socket_addrs()
        .map(|it| it.map(|s| s.ip()).collect())
        .unwrap_or_default();
    v.sort();
    v.dedup();
    v
}

/// [`resolve_name`], once per name for the whole run.
fn resolve_cached(name: &str) -> Vec<String> {
    use std::sync::{Mutex, OnceLock};
    static CACHE: OnceLock<Mutex<BTreeMap<String, Vec<String>>>> = OnceLock::new();
    let mut cache = CACHE.get_or_init(Default::default).lock().expect("lock");
    cache
        .entry(name.to_owned())
        .or_insert_with(|| resolve_name(name).iter().map(IpAddr::to_string).collect())
        .clone()
}

/// log2drop's hits per line (1-based): the imported config's filter, with the
/// job's options, run the way `log2drop test --config imported.toml
/// 'NAME[options]' FILE --json` runs it (`cli/test.rs`): each line's own
/// offence, a session's at the line that ended it, the rest at the last line.
pub fn log2drop_hits(
    filters: &BTreeMap<String, FilterConfig>,
    job: &Job,
) -> BTreeMap<usize, Vec<Hit>> {
    hits_of(&matcher(filters, job), job)
}

/// The job's `NAME[options]`, resolved in the imported config and compiled as
/// `log2drop test --config` does.
pub fn matcher(filters: &BTreeMap<String, FilterConfig>, job: &Job) -> SourceMatcher {
    let name = reference(job);
    let cfg = filter::resolve(filters, &name)
        .unwrap_or_else(|e| panic!("{name}: not in the imported config: {e}"));
    SourceMatcher::build(&[(name.as_str(), &cfg)])
        .unwrap_or_else(|e| panic!("{name}: does not compile: {e}"))
}

/// [`log2drop_hits`] with a matcher already built (fresh session state).
pub fn hits_of(m: &SourceMatcher, job: &Job) -> BTreeMap<usize, Vec<Hit>> {
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

pub fn compare(job: &Job, hits: &BTreeMap<usize, Vec<Hit>>, row: &mut Row) {
    let mut name = reference(job);
    if !job.variant.is_empty() {
        name = format!("{name} ({})", job.variant);
    }
    for (i, line) in job.lines.iter().enumerate() {
        let ours = hits.get(&(i + 1)).map(Vec::as_slice).unwrap_or_default();
        let our_addrs: BTreeSet<String> = ours
            .iter()
            .flat_map(|h| h.addresses.iter().map(IpAddr::to_string))
            .collect();
        let our_hosts: BTreeSet<&str> = ours.iter().map(|h| h.host.as_str()).collect();
        // What fail2ban would ban: the address, or what the name resolves to
        // (`usedns = warn`); a malformed address (`192.0.2.256`) resolves to
        // nothing, as in fail2ban.
        let theirs: BTreeSet<String> = line
            .fail2ban
            .iter()
            .flat_map(|h| match canonical(h) {
                Some(a) => vec![a],
                None => resolve_cached(h),
            })
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
            row.f2b_caught += usize::from(!line.fail2ban.is_empty());
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
pub fn canonical(host: &str) -> Option<String> {
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

/// The Python running fail2ban-regex, or why the comparison is skipped (under
/// `CI=true` a skip fails).
pub fn fail2ban_or_skip() -> Option<PathBuf> {
    let Some(python) = fail2ban_python() else {
        skip("fail2ban-regex is not installed (Debian's fail2ban package)");
        return None;
    };
    if !Path::new(FAIL2BAN_DIR).join("jail.conf").is_file() && skip("no /etc/fail2ban/jail.conf") {
        return None;
    }
    Some(python)
}

/// The filters named by `LOG2DROP_F2B_FILTERS` (comma-separated), or none: all.
pub fn only_filters() -> Vec<String> {
    std::env::var("LOG2DROP_F2B_FILTERS")
        .map(|v| v.split(',').map(str::to_owned).collect())
        .unwrap_or_default()
}

/// `log2drop import-fail2ban --all` of the installed tree into DIR, loaded;
/// and the options file (each filter's options in that config) that
/// fail2ban-regex runs the filters with, so both run the same filter.
pub fn import_all(dir: &Path) -> (BTreeMap<String, FilterConfig>, PathBuf) {
    let config = dir.join("imported.toml");
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
    // DEFAULT, for one), overlaid by the job's own: what log2drop runs.
    let base: BTreeMap<&str, &BTreeMap<String, String>> = filters
        .iter()
        .map(|(name, cfg)| (name.as_str(), &cfg.options))
        .collect();
    let base_file = dir.join("options.json");
    std::fs::write(&base_file, serde_json::to_vec(&base).expect("JSON")).expect("writes");
    (filters, base_file)
}

/// The per-filter table with its totals row.
pub fn table(title: &str, rows: &BTreeMap<String, Row>) -> String {
    let mut table = format!(
        "{title}\n{:<28} {:>5} {:>9} {:>9} {:>7} {:>6} {:>6}\n",
        "filter", "must", "fail2ban", "log2drop", "missed", "wrong", "extra"
    );
    let mut total = Row::default();
    for (name, r) in rows {
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
    table
}
