//! The rewrites held to fancy-regex on the pattern as written: same match,
//! same spans for every group, on hand-picked and generated lines; and the
//! superset never refuses a line the pattern matches.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use super::super::{F2bRegex, fancy, resolve_tags, to_rust_syntax};
use super::*;

/// A pattern of our own in the shape of sshd's `Failed ...` line: an optional
/// group, a conditional on it inside a group that itself decides a conditional
/// at the end, and `(?:(?!W).)*` loops stopped by `W` or by the end.
const DENIED: &str = r"^Denied (?:<F-NOFAIL>token</F-NOFAIL>|\S+) to (?P<neg>unknown account )?<F-USER>(?P<plain>\S+)|(?(neg)(?:(?! via ).)*?|[^;]+)</F-USER> via <HOST>(?: (?:slot \d+|on \S+)){0,2}(?: v\d*)?(?(plain); |(?:(?:(?! via ).)*)$)";

/// Group spans by index, from fancy-regex on the pattern as written.
fn reference(python: &str, hay: &str) -> Option<Vec<Option<(usize, usize)>>> {
    let slow = fancy(&to_rust_syntax(python)).unwrap();
    let c = slow.captures(hay).unwrap()?;
    Some(
        (0..c.len())
            .map(|i| c.get(i).map(|m| (m.start(), m.end())))
            .collect(),
    )
}

/// The same from the compiled regex (rewritten where it could be).
fn ours(r: &F2bRegex, hay: &str) -> Option<Vec<Option<(usize, usize)>>> {
    let g = r.captures(hay)?;
    Some(g.spans().to_vec())
}

/// The rewrite's group names (the backtracking engine is not compiled for
/// them) are the ones fancy-regex gives the pattern as written.
fn same_names(python: &str, r: &F2bRegex) {
    let slow = fancy(&to_rust_syntax(python)).unwrap();
    let want: Vec<Option<Box<str>>> = slow.capture_names().map(|n| n.map(Box::from)).collect();
    assert_eq!(r.names, want, "{python}");
}

fn agree(python: &str, r: &F2bRegex, hay: &str) -> Result<(), String> {
    let want = reference(python, hay);
    let got = ours(r, hay);
    if want != got {
        return Err(format!("{python}\non {hay:?}: want {want:?}, got {got:?}"));
    }
    if r.is_match(hay) != want.is_some() {
        return Err(format!("{python}\non {hay:?}: is_match disagrees"));
    }
    Ok(())
}

#[test]
fn conditionals_and_word_loops_become_regular() {
    let python = resolve_tags(DENIED, true);
    let r = F2bRegex::new(&python).unwrap();
    assert!(!r.is_fancy(), "rewritten: {}", to_rust_syntax(&python));
    same_names(&python, &r);
    for line in [
        "Denied key to bob via 192.0.2.1 slot 22 v2",
        "Denied key to bob via 192.0.2.1 slot 22 v2; extra",
        "Denied token to unknown account eve via 192.0.2.2",
        "Denied token to unknown account eve mallory via 192.0.2.3 on eth0",
        "Denied key to unknown account a via b via 192.0.2.4",
        "Denied key to unknown account  via 192.0.2.5",
        "Denied key to x y via 192.0.2.6 trailing via more",
        "Denied key to x y via 192.0.2.6 trailing text",
        "Denied key to x y via 192.0.2.6 via",
        "Denied key to x;y via 192.0.2.7",
        "Denied key to via via 192.0.2.8",
        "Denied key to bob via 2001:db8::1 slot 1 on lo v",
        "Denied key to bob via example.org",
        "Denied key to bob via 192.0.2.9 via 198.51.100.1",
        "Denied key to unknown account bob via 192.0.2.9 via",
        "Denied key to bob",
        "",
    ] {
        agree(&python, &r, line).unwrap();
    }
    let g = r
        .captures("Denied token to unknown account eve mallory via 192.0.2.3 on eth0")
        .unwrap();
    assert_eq!(g.name("user"), Some("eve mallory"));
    assert_eq!(g.name("nofail"), Some("token"));
    assert_eq!(g.name("neg"), Some("unknown account "));
    assert_eq!(g.name("plain"), None);
    assert_eq!(g.name("ip4"), Some("192.0.2.3"));
}

#[test]
fn small_shapes() {
    for (python, lines) in [
        (
            r"^(?P<c>c)?(?(c)d|e)$",
            &["cd", "e", "ce", "d", "cde", ""][..],
        ),
        (
            r"^a(?P<x>b|(?P<y>y))(?(y)!|\?)$",
            &["ab?", "ay!", "ab!", "ay?"],
        ),
        (
            r"^(?:(?!ab).)*$",
            &["", "a", "b", "aab", "ba", "xaxb", "a\nb"],
        ),
        (
            r"^(?P<u>(?:(?!aa).)*?)aa",
            &["aa", "xaa", "xaaa", "aaa", "axaa", "a"],
        ),
        (
            r"^(?P<u>(?:(?!aba).)*?)aba!",
            &["aba!", "xababa!", "abababa!", "ab"],
        ),
        // Lazy loop before its word, the rest may fail after the first one.
        (
            r"^(?P<u>(?:(?! at ).)*?) at (?P<h>\d+)$",
            &["x at 1", "x at y at 2", " at 3"],
        ),
    ] {
        let r = F2bRegex::new(python).unwrap();
        assert!(!r.is_fancy(), "{python}");
        for line in lines {
            agree(python, &r, line).unwrap();
        }
    }
}

#[test]
fn left_to_backtracking_what_has_no_exact_form() {
    for python in [
        // The loop's extent depends on what follows: not forced.
        r"^(?:(?!ab).)*b",
        // A look-ahead outside the loop shape.
        r"^(?:\w+ (?!found\b)){0,2}\w+$",
        // A conditional decided inside a loop.
        r"^(?:(?P<a>a)|b)+(?(a)x|y)$",
        r"(a)\1",
        r"a++b",
    ] {
        let r = F2bRegex::new(python).unwrap();
        assert!(r.is_fancy(), "{python}");
        assert!(r.prefilter.is_some(), "{python}");
    }
}

/// Lines made of the pattern's own words, addresses and separators.
fn vocabulary(python: &str) -> Vec<String> {
    let mut words: Vec<String> = python
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| w.len() > 1 && w.len() < 20)
        .map(str::to_owned)
        .collect();
    for w in [
        "192.0.2.1",
        "2001:db8::7",
        "example.org",
        "from",
        "for",
        "user",
        "invalid",
        "port",
        "22",
        "ssh2",
        ":",
        ";",
        "[preauth]",
        "x",
        "",
        "\u{e9}",
    ] {
        words.push(w.to_owned());
    }
    words.sort();
    words.dedup();
    words
}

/// Differential run of `python` against fancy-regex on generated lines.
fn differential(python: &str, cases: u32) {
    let r = F2bRegex::new(python).unwrap();
    let words = vocabulary(python);
    let seps = [" ", " ", " ", "", ": ", "  ", "\n"];
    let lines = proptest::collection::vec((0..words.len(), 0..seps.len()), 0..14);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&lines, |parts| {
            let mut hay = String::new();
            for (w, s) in parts {
                hay.push_str(&words[w]);
                hay.push_str(seps[s]);
            }
            agree(python, &r, &hay).map_err(TestCaseError::fail)?;
            // Lines the pattern is after: its anchored head, then the rest.
            Ok(())
        })
        .unwrap();
}

#[test]
fn generated_lines_agree() {
    differential(&resolve_tags(DENIED, true), 3000);
    differential(
        r"^(?P<u>(?:(?! from ).)*?) from (?P<h>\S+)(?: port \d+)?$",
        1000,
    );
    differential(r"^(?:\w+ (?!found\b)){0,2}\w+ found", 1000);
}

proptest! {
    /// Lines built to take every path through the sshd-shaped pattern.
    #[test]
    fn denied_lines_agree(
        kind in prop::sample::select(vec!["key", "token", "x"]),
        neg in any::<bool>(),
        user in "[a-z; ]{0,3}( via )?[a-z;]{0,3}",
        host in prop::sample::select(vec!["192.0.2.1", "2001:db8::2", "example.org", "via"]),
        tail in prop::sample::select(vec!["", " slot 2", " on eth0 slot 3", " v2", " v", "; ", "; x", " via x", " via", " trailing"]),
        more in prop::sample::select(vec!["", "; ", " via 198.51.100.4", " x"]),
    ) {
        let python = resolve_tags(DENIED, true);
        let r = F2bRegex::new(&python).unwrap();
        let neg = if neg { "unknown account " } else { "" };
        let hay = format!("Denied {kind} to {neg}{user} via {host}{tail}{more}");
        agree(&python, &r, &hay).map_err(TestCaseError::fail)?;
    }
}

/// Debian's stock filters, where fail2ban is installed: every regex that
/// needs backtracking, rewritten or behind its superset, against fancy-regex
/// on the pattern as written, over fail2ban's test logs (whole lines and their
/// text after the daemon's `]: `) and generated lines.
#[test]
fn stock_backtracking_regexes_agree() {
    use crate::fail2ban::Definition;
    use std::collections::BTreeMap;
    let filters = std::path::Path::new("/etc/fail2ban/filter.d");
    let logs = std::path::Path::new("/usr/lib/python3/dist-packages/fail2ban/tests/files/logs");
    if !filters.is_dir() || !logs.is_dir() {
        eprintln!("skipped: fail2ban is not installed (no {})", logs.display());
        return;
    }
    let mut rewritten = 0;
    let mut checked = 0;
    let mut entries: Vec<_> = std::fs::read_dir(filters)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "conf"))
        .collect();
    entries.sort();
    for path in entries {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        for mode in ["normal", "aggressive"] {
            let mut opts = BTreeMap::new();
            opts.insert("mode".to_owned(), mode.to_owned());
            let Ok(def) = Definition::read(&path, &opts) else {
                continue;
            };
            let log = std::fs::read(logs.join(&name)).unwrap_or_default();
            let log = String::from_utf8_lossy(&log);
            let mut lines: Vec<&str> = Vec::new();
            for l in log.lines().filter(|l| !l.starts_with('#')) {
                lines.push(l);
                if let Some((_, rest)) = l.split_once("]: ") {
                    lines.push(rest);
                }
            }
            let all = def
                .failregex
                .iter()
                .chain(&def.ignoreregex)
                .chain(&def.prefregex);
            for line in all {
                let python = resolve_tags(&line.text, true);
                let Ok(r) = F2bRegex::new(&python) else {
                    continue;
                };
                if !super::super::needs_backtracking(&python) {
                    continue;
                }
                checked += 1;
                same_names(&python, &r);
                if !r.is_fancy() {
                    rewritten += 1;
                }
                for hay in &lines {
                    agree(&python, &r, hay).unwrap_or_else(|e| panic!("{name}: {e}"));
                }
                differential(&python, 48);
            }
        }
    }
    eprintln!("{checked} backtracking regexes checked, {rewritten} rewritten");
    assert!(rewritten >= 2, "sshd's Failed lines are rewritten");
}

#[test]
fn word_automaton_text() {
    // Without "ab" anywhere, followed by the end.
    let end = Follow {
        lit: String::new(),
        end: true,
    };
    let t = without_word("ab", &end).unwrap();
    let re = regex::Regex::new(&format!("^{t}$")).unwrap();
    for (s, ok) in [
        ("", true),
        ("a", true),
        ("ba", true),
        ("aab", false),
        ("xa b", true),
    ] {
        assert_eq!(re.is_match(s), ok, "{s:?}");
    }
    // Followed by the word: not ending where the word that follows would
    // complete an earlier occurrence ("ab" + "aba!" has "aba" at 0).
    let word = Follow {
        lit: "aba!".to_owned(),
        end: false,
    };
    let t = without_word("aba", &word).unwrap();
    let re = regex::Regex::new(&format!("^{t}$")).unwrap();
    for (s, ok) in [
        ("", true),
        ("a", true),
        ("b", true),
        ("ab", false),
        ("xab", false),
        ("aba", false),
        ("abb", true),
    ] {
        assert_eq!(re.is_match(s), ok, "{s:?}");
    }
    // Anything else follows: the extent is not forced.
    assert!(without_word("ab", &Follow::unknown()).is_none());
}
