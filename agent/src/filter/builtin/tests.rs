//! Runs every built-in filter over its sample log.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::SystemTime;

use super::*;
use crate::filter::{
    Host, HostRule, Outcome, SourceMatcher, check_pattern, check_settings, pattern,
};

/// What one sample line must give.
#[derive(Debug)]
struct Expect {
    addr: Option<IpAddr>,
    /// A host name where the line has no address.
    name: Option<&'static str>,
    inject: bool,
    /// The line matches but its session keeps it from counting (`held`).
    held: bool,
    /// The filter's mode the line is read in (`#mode NAME` lines switch it).
    mode: String,
    captures: Vec<(String, String)>,
    time: Option<SystemTime>,
}

/// Sample lines with their expectations and line numbers in the sample file.
fn parse_samples(name: &str, text: &'static str) -> Vec<(usize, Expect, String)> {
    let samples = super::parse_samples(text).unwrap_or_else(|e| panic!("{name}.log: {e}"));
    samples
        .into_iter()
        .map(|s| {
            let mut e = Expect {
                addr: s.host,
                name: s.name,
                inject: s.inject,
                held: s.held,
                mode: s.mode.to_owned(),
                captures: Vec::new(),
                time: None,
            };
            for (k, v) in s.details {
                if k == "time" {
                    let ts: jiff::Timestamp = v
                        .parse()
                        .unwrap_or_else(|_| panic!("{name}.log:{}: bad time {v:?}", s.number));
                    e.time = Some(SystemTime::from(ts));
                } else {
                    e.captures.push((k.to_owned(), v.to_owned()));
                }
            }
            (s.number, e, s.line.to_owned())
        })
        .collect()
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
        let (_, text) = BUILTINS.iter().find(|(n, _)| *n == name).expect("listed");
        let f = load(name, text).unwrap_or_else(|e| panic!("{e}"));
        assert!(!f.description.is_empty(), "{name}: no description");
        assert!(
            !(f.filter.regex.is_empty()
                && f.filter.attempt.is_empty()
                && f.filter.address.is_empty()),
            "{name}: no regex"
        );
        assert!(
            !f.services.is_empty(),
            "{name}: no `services` (the programs and versions the regexes were written against)"
        );
        assert!(
            !f.log.is_empty(),
            "{name}: no `log` (where the lines are written)"
        );
        assert_eq!(check_settings(&f.filter), Vec::new(), "{name}");
        let f2 = &f.filter;
        let modes = f2
            .modes
            .values()
            .flat_map(|m| m.counting_lists().into_iter().flatten());
        let own = f2.counting_lists().into_iter().flatten();
        let rule = crate::filter::host_rule(&[&f2.counting_lists()]);
        for (i, re) in own.chain(modes).enumerate() {
            check_pattern(re, rule).unwrap_or_else(|e| panic!("{name} regex {i}: {e}"));
            if !re.contains(crate::filter::HOST_PLACEHOLDER) {
                // A session line without the address: anchored and led by
                // literals, so the first-byte dispatch keeps it cheap.
                let expanded = pattern::expand(re, rule).expect("checked");
                assert!(
                    re.starts_with('^') && crate::filter::Literals::of(&expanded).heads.is_some(),
                    "{name} regex {i}: a regex without <HOST> must start with ^ and literals"
                );
                continue;
            }
            // Every built-in regex with <HOST> takes the fast path.
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
        let info = info(name).expect("info");
        assert_eq!(info.name, name);
        assert_eq!(info.filter, f.filter);
        assert!(!samples(name).expect("samples").is_empty(), "{name}");
    }
    assert!(!exists("no-such-filter"));
}

#[test]
fn every_fragment_reference_is_put_in_and_every_fragment_used() {
    let mut used = vec![false; FRAGMENTS.len()];
    for (name, text) in BUILTINS {
        for (i, (fragment, _)) in FRAGMENTS.iter().enumerate() {
            used[i] |= text.contains(&format!("{{{{{fragment}}}}}"));
        }
        let expanded = source(name).expect("listed");
        // Anything left that looks like a reference would reach the regex
        // compiler as a bad repetition.
        let left = expanded
            .match_indices("{{")
            .find(|(at, _)| expanded[at + 2..].starts_with(|c: char| c.is_ascii_lowercase()));
        assert!(left.is_none(), "{name}: a reference is left: {left:?}");
    }
    for ((fragment, _), used) in FRAGMENTS.iter().zip(used) {
        assert!(used, "fragment {fragment} is used by no built-in");
    }
}

#[test]
fn fragments_expand_in_place_and_bad_references_say_which() {
    let (_, web) = FRAGMENTS
        .iter()
        .find(|(n, _)| *n == "web-head")
        .expect("web-head");
    assert_eq!(
        expand("x", "regex = ['^{{web-head}}<HOST> ']").expect("known"),
        format!("regex = ['^{web}<HOST> ']")
    );
    // Regex and comment text with `{{` not followed by a lower-case letter stays.
    for text in [r"a\{{2}b", "# ({{A,B,C,D},PORT})", "{{", "x{{-y}}"] {
        assert_eq!(expand("x", text).expect("no reference"), text);
    }
    let e = expand("nginx-foo", "regex = ['^{{web-hed}}<HOST>']").expect_err("unknown");
    assert!(matches!(e, LoadError::UnknownFragment { .. }));
    let msg = e.to_string();
    assert!(
        msg.contains("nginx-foo") && msg.contains("{{web-hed}}") && msg.contains("web-head"),
        "{msg}"
    );
    let e = expand("nginx-foo", "regex = ['^{{web-head<HOST>']").expect_err("unclosed");
    assert!(matches!(e, LoadError::Unclosed { .. }), "{e}");
    assert!(e.to_string().contains("nginx-foo"), "{e}");
}

#[test]
fn every_builtin_has_samples_with_hits_misses_and_injections() {
    for (name, text) in SAMPLES {
        let samples = parse_samples(name, text);
        let hits = samples.iter().filter(|(_, e, _)| e.addr.is_some()).count();
        let misses = samples
            .iter()
            .filter(|(_, e, _)| e.addr.is_none() && e.name.is_none())
            .count();
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
        let mut base = get(name).expect("built-in");
        // Samples are written in UTC so the test does not depend on the machine.
        base.timezone = Some("UTC".into());
        let build = |mode: &str| {
            let cfg = crate::filter::with_mode(&base, mode)
                .unwrap_or_else(|| panic!("{name}: samples use unknown mode {mode}"));
            let m = SourceMatcher::build(&[(name, &cfg)]).unwrap_or_else(|e| panic!("{name}: {e}"));
            (m, cfg)
        };
        let mut current = crate::filter::NORMAL_MODE.to_owned();
        let (mut m, _) = build(&current);
        let mut scratch = m.new_scratch();
        // (mode, role, position in that mode's list) of every regex a sample hit.
        let mut used = BTreeSet::new();
        for (n, expect, line) in parse_samples(name, text) {
            if expect.mode != current {
                current.clone_from(&expect.mode);
                m = build(&current).0;
                scratch = m.new_scratch();
            }
            let outcome = m.examine(line.as_bytes(), reading_time(), &mut scratch);
            let (got, held) = match outcome {
                Outcome::Hit(h) => (Some(h), false),
                Outcome::Ended { line, counted } => {
                    used.insert(mode_position(&base, &current, line));
                    (Some(counted), false)
                }
                Outcome::Held(h) => (Some(h), true),
                Outcome::Ignored { .. } | Outcome::Miss => (None, false),
            };
            let where_ = format!("{name}.log:{n}: {line}");
            // What the line gave, as the expectation writes it.
            let shown = |host: Option<IpAddr>, name: Option<&str>| match (host, name) {
                (Some(a), _) => a.to_string(),
                (None, Some(n)) => n.to_owned(),
                (None, None) => "-".to_owned(),
            };
            let got_text = match got.map(|h| h.host) {
                Some(Host::Addr(a)) => a.to_string(),
                Some(Host::Name(r)) => scratch.host_name(r).unwrap_or("(lost)").to_owned(),
                None => "-".to_owned(),
            };
            let want_text = shown(expect.addr, expect.name);
            if got_text != want_text {
                failures.push(format!(
                    "{where_}\n    expected {want_text}, got {got_text}{}",
                    if held { " (held)" } else { "" }
                ));
                continue;
            }
            let Some(hit) = got else { continue };
            if held != expect.held {
                failures.push(format!(
                    "{where_}\n    expected the line {}to count, it {}",
                    if expect.held { "not " } else { "" },
                    if held {
                        "did not (held by its session)"
                    } else {
                        "did"
                    }
                ));
            }
            if !matches!(outcome, Outcome::Ended { .. }) {
                used.insert(mode_position(&base, &current, hit));
            }
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
        for mode in crate::filter::modes(&base) {
            let lists = mode_lists(&base, &mode);
            for (role, len) in lists {
                for i in 0..len {
                    if !used.contains(&(mode.clone(), role, i)) {
                        failures.push(format!(
                            "{name}: {} {i}{} is not exercised by any sample",
                            role.key(),
                            if mode == crate::filter::NORMAL_MODE {
                                String::new()
                            } else {
                                format!(" of mode {mode}")
                            }
                        ));
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// The regex lists a mode has of its own (the filter's own lists for `normal`):
/// role and length.
fn mode_lists(base: &crate::config::FilterConfig, mode: &str) -> Vec<(crate::filter::Role, usize)> {
    let lists = if mode == crate::filter::NORMAL_MODE {
        base.counting_lists()
    } else {
        base.modes[mode].counting_lists()
    };
    crate::filter::Role::ALL
        .into_iter()
        .zip(lists.map(Vec::len))
        .collect()
}

/// Which mode's own regex a hit in mode `mode` came from: the mode's lists come
/// first, then the filter's own.
fn mode_position(
    base: &crate::config::FilterConfig,
    mode: &str,
    hit: crate::filter::Hit,
) -> (String, crate::filter::Role, usize) {
    let own = mode_lists(base, mode)
        .into_iter()
        .find(|(r, _)| *r == hit.role)
        .map_or(0, |(_, len)| len);
    if mode == crate::filter::NORMAL_MODE || hit.regex < own {
        (mode.to_owned(), hit.role, hit.regex)
    } else {
        (
            crate::filter::NORMAL_MODE.to_owned(),
            hit.role,
            hit.regex - own,
        )
    }
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
        let modes = f
            .modes
            .values()
            .flat_map(|m| m.counting_lists().into_iter().flatten());
        let own = f.counting_lists().into_iter().flatten();
        for re in own.chain(modes) {
            assert!(
                docs.contains(re.as_str()),
                "docs/filters.md lacks {name}'s regex {re}"
            );
        }
    }
}

/// Regression (issue 10): the built-in `recidive` filter expected
/// `log2drop::daemon: ban`, but bans are logged by `log2drop::daemon::enforcer`,
/// and IPv6 bans (a /64 by default) were unreadable to it. Here the engine makes
/// real decisions, the enforcer's own `log_decision` logs them through the
/// agent's own log format, and those lines go through the filter.
#[test]
fn recidive_reads_the_ban_lines_the_agent_writes() {
    let engine = |jail: &str, extra: &str| {
        let text = format!(
            "[backends.dry-run]\n[sources.auth]\npath = \"/var/log/auth.log\"\nfilters = [\"sshd\"]\n\
             [jails.{jail}]\nfilters = [\"sshd\"]\nmaxretry = 1\nbantime = \"1h\"\n{extra}"
        );
        let cfg = crate::config::parse(&text, std::path::Path::new("log2drop.toml"))
            .unwrap_or_else(|e| panic!("{e}"));
        crate::engine::Engine::from_config(&cfg).unwrap_or_else(|e| panic!("{e}"))
    };
    let now = std::time::SystemTime::now();
    let mut decisions = Vec::new();
    // The ssh jail: two IPv4 bans, an IPv6 one (its /64), then the /24.
    let mut ssh = engine("ssh", "subnet = { v4 = 24, after = 2, within = \"1h\" }\n");
    for addr in ["203.0.113.4", "2001:db8:1:2::7", "203.0.113.5"] {
        ssh.offence("sshd", addr.parse().expect("address"), now, &mut decisions);
    }
    let manual = ssh
        .ban("198.51.100.9/32".parse().expect("target"), None, now)
        .unwrap_or_else(|e| panic!("{e}"));
    decisions.push(manual);
    decisions.extend(ssh.unban("198.51.100.9/32".parse().expect("net")));
    // The recidive jail's own bans must not feed it again.
    let mut recidive = engine("recidive", "");
    recidive.offence(
        "sshd",
        "192.0.2.50".parse().expect("address"),
        now,
        &mut decisions,
    );

    // Both log formats: human (`run`'s default) and `--log-format json`.
    for json in [false, true] {
        let buf = crate::daemon::LogCapture::default();
        let filter = tracing_subscriber::EnvFilter::new("info");
        let log_all = || {
            for d in &decisions {
                crate::daemon::enforcer::log_decision(d);
            }
        };
        if json {
            let subscriber = crate::daemon::json_log_subscriber(buf.clone(), filter);
            tracing::subscriber::with_default(subscriber, log_all);
        } else {
            let subscriber = crate::daemon::log_subscriber(buf.clone(), false, filter);
            tracing::subscriber::with_default(subscriber, log_all);
        }
        let log = buf.text();
        recidive_reads(&log, now);
    }
}

/// The built-in `recidive` filter over the agent's own log `log` (the decisions
/// of [`recidive_reads_the_ban_lines_the_agent_writes`]): as written to a file,
/// through syslog and through the journal source.
fn recidive_reads(log: &str, now: std::time::SystemTime) {
    let recidive = crate::filter::builtin::get("recidive").expect("built-in");
    let m = crate::filter::SourceMatcher::build(&[("recidive", &recidive)]).expect("builds");
    let mut s = m.new_scratch();
    let mut hits = Vec::new();
    // As written to a file, through syslog and through the journal source.
    for line in log.lines() {
        for (i, form) in [
            line.to_owned(),
            format!("May 19 10:00:00 web1 log2drop[812]: {line}"),
            format!("log2drop[812]: {line}"),
        ]
        .iter()
        .enumerate()
        {
            // The line's own time is read where the agent's log starts with it.
            hits.extend(m.match_line(form.as_bytes(), now, &mut s).map(|h| {
                (
                    h.addr().map(|a| a.to_string()).unwrap_or_default(),
                    i > 0 || h.time.is_some(),
                )
            }));
        }
    }
    // Each ssh-jail ban, in each of the three forms; not
    // the /24 subnet ban, the manual ban, the unban or recidive's own ban.
    let want: Vec<(String, bool)> = ["203.0.113.4", "2001:db8:1:2::", "203.0.113.5"]
        .iter()
        .flat_map(|a| std::iter::repeat_n(((*a).to_owned(), true), 3))
        .collect();
    assert!(
        log.contains("203.0.113.0/24"),
        "a subnet ban was logged:\n{log}"
    );
    assert!(
        log.contains("2001:db8:1:2::/64"),
        "an IPv6 /64 ban was logged:\n{log}"
    );
    assert!(
        log.contains("jail=recidive") || log.contains(r#""jail":"recidive""#),
        "recidive's ban was logged:\n{log}"
    );
    assert_eq!(hits, want, "in:\n{log}");
}
