//! The fuzzing entry points: one function per target, each taking arbitrary bytes
//! and driving one parser of the agent through its public surface. The libFuzzer
//! harness (`fuzz/libfuzzer`, nightly, `cargo xtask fuzz`) and the corpus
//! regression test (`tests/corpus.rs`, plain stable `cargo test`) call the same
//! functions, so every corpus file and crash reproducer kept in the repository is
//! replayed by CI without nightly.
//!
//! An entry point must never panic on any input: a panic is the finding. Where a
//! parser gives two routes to one answer, the entry point also checks that they
//! agree (an oracle), so a silent wrong answer is a finding too.

use std::collections::BTreeMap;
use std::io::{BufRead, Cursor};
use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use log2drop::config::{FilterConfig, LinePrefix};
use log2drop::control::protocol::Request;
use log2drop::fail2ban::ini::Ini;
use log2drop::fail2ban::{Definition, LineState, Matcher};
use log2drop::filter::{HostRule, SourceMatcher, builtin, pattern, syslog, time};
use log2drop::source::compressed;

/// An entry point: arbitrary bytes in, a panic on a finding.
pub type Entry = fn(&[u8]);

/// The targets by name, as `cargo fuzz` and the corpus directories name them.
pub const TARGETS: &[(&str, Entry)] = &[
    ("config", config),
    ("pattern", pattern),
    ("matcher", matcher),
    ("syslog", syslog),
    ("control", control),
    ("fail2ban", fail2ban),
    ("compressed", compressed),
];

/// The entry point of target `name`.
pub fn target(name: &str) -> Option<Entry> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}

/// A fixed "now", so that a reproducer replays the same way tomorrow.
fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

/// Splits an input into a definition part and the lines to run it over, at the
/// first `\n---\n`; without one, everything is the definition.
fn split_input(data: &[u8]) -> (&[u8], &[u8]) {
    const SEP: &[u8] = b"\n---\n";
    match data.windows(SEP.len()).position(|w| w == SEP) {
        Some(at) => (&data[..at], &data[at + SEP.len()..]),
        None => (data, &[]),
    }
}

/// The config parser and its validation (`log2drop check`).
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = log2drop::config::parse(text, Path::new("/etc/log2drop/fuzz.toml"));
}

/// `<HOST>` expansion and the filter compiler: each line of the first part is a
/// pattern whose first byte picks its role (`r` regex, `a` attempt, `A` address,
/// `e` end, `s` success, `i` ignore, anything else a regex of the whole line), and
/// a `S` line alone switches to syslog prefixes. A compiled filter then examines
/// the lines after `---`.
pub fn pattern(data: &[u8]) {
    let (def, lines) = split_input(data);
    let Ok(def) = std::str::from_utf8(def) else {
        return;
    };
    let mut cfg = FilterConfig::default();
    for line in def.lines() {
        let _ = pattern::expand(line, HostRule::Required);
        let _ = pattern::expand(line, HostRule::Optional);
        let _ = pattern::split(line);
        let (role, rest) = match line.as_bytes().first() {
            Some(b'r') => (&mut cfg.regex, &line[1..]),
            Some(b'a') => (&mut cfg.attempt, &line[1..]),
            Some(b'A') => (&mut cfg.address, &line[1..]),
            Some(b'e') => (&mut cfg.end, &line[1..]),
            Some(b's') => (&mut cfg.success, &line[1..]),
            Some(b'i') => (&mut cfg.ignore, &line[1..]),
            Some(b'S') if line.len() == 1 => {
                cfg.prefix = LinePrefix::Syslog;
                continue;
            }
            _ => (&mut cfg.regex, line),
        };
        role.push(rest.to_owned());
    }
    if log2drop::filter::check_settings(&cfg).is_empty()
        && let Ok(m) = SourceMatcher::build(&[("fuzz", &cfg)])
    {
        run_matcher(&m, lines);
    }
}

/// Every line through `m`, then the end of the source, as a source task does.
fn run_matcher(m: &SourceMatcher, lines: &[u8]) {
    let mut scratch = m.new_scratch();
    let mut at = now();
    for line in lines.split(|&b| b == b'\n') {
        let _ = m.examine(line, at, &mut scratch);
        while m.take_deferred(&mut scratch).is_some() {}
        at += Duration::from_secs(1);
    }
    m.finish(&mut scratch);
    while m.take_deferred(&mut scratch).is_some() {}
}

/// Every built-in filter on one source, with its session roles.
fn builtin_matcher() -> &'static SourceMatcher {
    static MATCHER: OnceLock<SourceMatcher> = OnceLock::new();
    MATCHER.get_or_init(|| {
        let filters: Vec<(&str, FilterConfig)> = builtin::names()
            .map(|n| (n, builtin::get(n).expect("a listed built-in exists")))
            .collect();
        let refs: Vec<(&str, &FilterConfig)> = filters.iter().map(|(n, c)| (*n, c)).collect();
        SourceMatcher::build(&refs).expect("the built-in filters compile together")
    })
}

/// The line matcher: arbitrary lines through the whole built-in filter set.
pub fn matcher(data: &[u8]) {
    run_matcher(builtin_matcher(), data);
}

/// The syslog prefix parser. Oracle: the cached parse of a line agrees with the
/// uncached one, whatever line came before.
pub fn syslog(data: &[u8]) {
    let mut cache = syslog::StampCache::default();
    for line in data.split(|&b| b == b'\n') {
        let plain = syslog::parse(line);
        let cached = syslog::parse_cached(line, &mut cache);
        assert_eq!(plain, cached, "parse_cached disagrees with parse");
        if let Some(p) = plain {
            let _ = p.text(line);
        }
        let _ = syslog::time_of(line);
        for parse in [
            time::parse_bsd,
            time::parse_iso,
            time::parse_ctime,
            time::parse_weekday_iso,
            time::parse_unix_stamp,
            time::parse_clf,
        ] {
            if let Some((_, used)) = parse(line) {
                assert!(used <= line.len(), "a time parser used more than the line");
            }
        }
    }
}

/// The control protocol's request parser. Oracle: what parses serialises back to
/// a line that parses to the same request.
pub fn control(data: &[u8]) {
    let _ = Request::id_of(data);
    if let Ok(req) = Request::parse(data) {
        let line = serde_json::to_vec(&req).expect("a request serialises");
        let again = Request::parse(&line).expect("a serialised request parses");
        assert_eq!(req, again, "request changed through a round trip");
    }
}

/// The fail2ban filter-file reader and its regex translation: the first part is
/// the filter file, the lines after `---` are examined by it.
pub fn fail2ban(data: &[u8]) {
    let (file, lines) = split_input(data);
    let (Ok(file), Ok(lines)) = (std::str::from_utf8(file), std::str::from_utf8(lines)) else {
        return;
    };
    let path = Path::new("/etc/fail2ban/filter.d/fuzz.conf");
    let Ok(ini) = Ini::from_text(path, file) else {
        return;
    };
    let Ok(def) = Definition::from_ini(path, &ini, &BTreeMap::new()) else {
        return;
    };
    let Ok(m) = Matcher::build(&def) else {
        return;
    };
    let zone = time::parse_zone("UTC").expect("UTC is a zone");
    let mut state = LineState::default();
    for line in lines.lines() {
        let _ = m.examine(line, &zone, now(), &mut state);
    }
}

/// Decompressed bytes read at most per input: a small input may expand a lot,
/// and a bomb is not a finding.
const MAX_DECODED: u64 = 16 << 20;

/// The compressed-file readers (gzip, zstd, xz, bzip2, sniffed from the magic) and
/// the line reader over them, as `log2drop test` reads a rotated log.
pub fn compressed(data: &[u8]) {
    let Ok(reader) = compressed::open_reader(Cursor::new(data.to_vec()), Path::new("fuzz.log"))
    else {
        return;
    };
    let mut reader = std::io::Read::take(reader, MAX_DECODED);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
}
