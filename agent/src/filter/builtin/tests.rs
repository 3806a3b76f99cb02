//! Runs every built-in filter over its sample log.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::SystemTime;

use super::*;
use crate::filter::{HostRule, Outcome, SourceMatcher, check_pattern, check_settings, pattern};

/// What one sample line must give.
#[derive(Debug)]
struct Expect {
    addr: Option<IpAddr>,
    inject: bool,
    captures: Vec<(String, String)>,
    time: Option<SystemTime>,
}

/// Sample lines with their expectations and line numbers in the sample file.
fn parse_samples(name: &str, text: &str) -> Vec<(usize, Expect, String)> {
    let mut out = Vec::new();
    let mut pending: Option<Expect> = None;
    for (n, line) in text.lines().enumerate() {
        let n = n + 1;
        if let Some(spec) = line.strip_prefix("#= ") {
            assert!(
                pending.is_none(),
                "{name}.log:{n}: two expectations in a row"
            );
            let mut words = spec.split_whitespace();
            let addr = match words.next() {
                Some("-") => None,
                Some(a) => Some(
                    a.parse()
                        .unwrap_or_else(|_| panic!("{name}.log:{n}: bad address {a:?}")),
                ),
                None => panic!("{name}.log:{n}: empty expectation"),
            };
            let mut e = Expect {
                addr,
                inject: false,
                captures: Vec::new(),
                time: None,
            };
            for w in words {
                match w.split_once('=') {
                    None if w == "inject" => e.inject = true,
                    Some(("time", t)) => {
                        let ts: jiff::Timestamp = t
                            .parse()
                            .unwrap_or_else(|_| panic!("{name}.log:{n}: bad time {t:?}"));
                        e.time = Some(SystemTime::from(ts));
                    }
                    Some((k, v)) => e.captures.push((k.to_owned(), v.to_owned())),
                    None => panic!("{name}.log:{n}: unknown word {w:?}"),
                }
            }
            pending = Some(e);
        } else if line.starts_with('#') {
            continue;
        } else {
            let e = pending
                .take()
                .unwrap_or_else(|| panic!("{name}.log:{n}: sample line without a #= expectation"));
            out.push((n, e, line.to_owned()));
        }
    }
    assert!(
        pending.is_none(),
        "{name}.log: expectation without a line at the end"
    );
    out
}

/// The time year-less sample lines are read at.
fn reading_time() -> SystemTime {
    let ts: jiff::Timestamp = "2026-06-01T00:00:00Z".parse().expect("constant");
    SystemTime::from(ts)
}

#[test]
fn every_builtin_parses_and_checks_clean() {
    let names: Vec<&str> = names().collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(names, sorted, "built-ins must be listed sorted, once each");
    for name in names {
        let text = source(name).expect("listed");
        let f: File = toml::from_str(text).unwrap_or_else(|e| panic!("{name}.toml: {e}"));
        assert!(!f.description.is_empty(), "{name}: no description");
        assert!(!f.filter.regex.is_empty(), "{name}: no regex");
        assert_eq!(check_settings(&f.filter), Vec::new(), "{name}");
        for (i, re) in f.filter.regex.iter().enumerate() {
            check_pattern(re, HostRule::Required)
                .unwrap_or_else(|e| panic!("{name} regex {i}: {e}"));
            // Every built-in regex takes the fast path.
            let split = pattern::split(re)
                .unwrap_or_else(|| panic!("{name} regex {i} does not split at <HOST>"));
            assert!(
                crate::filter::extract::FastHost::build(&split, true).is_some(),
                "{name} regex {i}: halves do not compile"
            );
        }
        for (i, re) in f.filter.ignore.iter().enumerate() {
            check_pattern(re, HostRule::Optional)
                .unwrap_or_else(|e| panic!("{name} ignore {i}: {e}"));
        }
        assert!(exists(name));
        assert!(get(name).is_some());
        assert!(description(name).is_some());
    }
    assert!(!exists("no-such-filter"));
}

#[test]
fn every_builtin_has_samples_with_hits_misses_and_injections() {
    for (name, text) in SAMPLES {
        let samples = parse_samples(name, text);
        let hits = samples.iter().filter(|(_, e, _)| e.addr.is_some()).count();
        let misses = samples.iter().filter(|(_, e, _)| e.addr.is_none()).count();
        let injections = samples.iter().filter(|(_, e, _)| e.inject).count();
        assert!(hits >= 2, "{name}: needs matching samples");
        assert!(misses >= 2, "{name}: needs non-matching samples");
        assert!(injections >= 1, "{name}: needs injection samples");
    }
}

#[test]
fn every_builtin_gives_what_its_samples_say() {
    let mut failures = Vec::new();
    for (name, text) in SAMPLES {
        let mut cfg = get(name).expect("built-in");
        // Samples are written in UTC so the test does not depend on the machine.
        cfg.timezone = Some("UTC".into());
        let m = SourceMatcher::build(&[(name, &cfg)]).unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut scratch = m.new_scratch();
        let mut used = BTreeSet::new();
        for (n, expect, line) in parse_samples(name, text) {
            let outcome = m.examine(line.as_bytes(), reading_time(), &mut scratch);
            let got = match outcome {
                Outcome::Hit(h) => Some(h),
                Outcome::Ignored { .. } | Outcome::Miss => None,
            };
            let where_ = format!("{name}.log:{n}: {line}");
            if got.map(|h| h.addr) != expect.addr {
                failures.push(format!(
                    "{where_}\n    expected {:?}, got {:?}",
                    expect.addr,
                    got.map(|h| h.addr)
                ));
                continue;
            }
            let Some(hit) = got else { continue };
            used.insert(hit.regex);
            if let Some(t) = expect.time
                && hit.time != Some(t)
            {
                failures.push(format!(
                    "{where_}\n    expected time {t:?}, got {:?}",
                    hit.time
                ));
            }
            if !expect.captures.is_empty() {
                let caps = m.named_captures(line.as_bytes(), &hit);
                for (k, v) in &expect.captures {
                    let found = caps
                        .iter()
                        .find(|(name, _)| name == k)
                        .map(|(_, val)| String::from_utf8_lossy(val).into_owned());
                    if found.as_deref() != Some(v.as_str()) {
                        failures.push(format!("{where_}\n    expected {k}={v}, got {found:?}"));
                    }
                }
            }
        }
        let count = cfg.regex.len();
        for i in 0..count {
            if !used.contains(&i) {
                failures.push(format!("{name}: regex {i} is not exercised by any sample"));
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn docs_describe_every_builtin() {
    let docs = include_str!("../../../../docs/filters.md");
    for name in names() {
        assert!(
            docs.contains(&format!("\n## `{name}`\n")),
            "docs/filters.md has no section for {name}"
        );
        let f = get(name).expect("built-in");
        for re in &f.regex {
            assert!(
                docs.contains(re.as_str()),
                "docs/filters.md lacks {name}'s regex {re}"
            );
        }
    }
}
