//! fail2ban's multi-line tags (`<F-MLFID>`, `<F-NOFAIL>`, `<F-MLFFORGET>`,
//! `<F-MLFGAINED>`) run on log2drop's one session mechanism and count what
//! fail2ban counts (issue 11).
//!
//! Cases (filter, log):
//! - `demo`: `data/fail2ban-mlf/mlf-demo.conf`, our own filter using every tag
//!   (failures with and without an address, carriers, forget, gained with and
//!   without forget), on `mlf-demo.log`. Runs everywhere.
//! - Debian's stock `/etc/fail2ban/filter.d/sshd.conf`, normal and aggressive,
//!   on `data/sshd-auth.log` (1,987 lines) and `data/fail2ban-mlf/sshd-sessions.log`
//!   (sessions whose failure lines name no address), and `sendmail-auth.conf` and
//!   `sendmail-reject.conf` (the other stock filters that use `<F-MLFID>`; Debian's
//!   dovecot and postfix filters do not) on `sendmail.log`.
//!
//! `data/fail2ban-mlf/expected.txt` holds fail2ban 1.0.2's offences per
//! address, made with `fail2ban-regex -o ip LOG FILTER | sort | uniq -c` for each
//! case. Where `fail2ban-regex` is installed, [`same_as_fail2ban_regex_now`]
//! also runs it. The stock filters come with Debian's `fail2ban` package (in
//! CI's apt packages): without it those cases are skipped, and under `CI=true`
//! that is a failure.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use log2drop::config::FilterConfig;
use log2drop::filter::SourceMatcher;

mod offences_common;

const STOCK: &str = "/etc/fail2ban/filter.d";

struct Case {
    name: &'static str,
    filter: PathBuf,
    mode: Option<&'static str>,
    log: &'static str,
}

fn data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(rel)
}

fn cases() -> Vec<Case> {
    let stock = |f: &str| Path::new(STOCK).join(f);
    let mut v = vec![Case {
        name: "demo",
        filter: data("fail2ban-mlf/mlf-demo.conf"),
        mode: None,
        log: "fail2ban-mlf/mlf-demo.log",
    }];
    for (log, short) in [
        ("sshd-auth.log", "sshd-auth"),
        ("fail2ban-mlf/sshd-sessions.log", "sshd-sessions"),
    ] {
        for mode in ["normal", "aggressive"] {
            v.push(Case {
                name: Box::leak(format!("{short}.{mode}").into_boxed_str()),
                filter: stock("sshd.conf"),
                mode: Some(mode),
                log,
            });
        }
    }
    for f in ["sendmail-auth", "sendmail-reject"] {
        v.push(Case {
            name: f,
            filter: stock(&format!("{f}.conf")),
            mode: None,
            log: "fail2ban-mlf/sendmail.log",
        });
    }
    v
}

/// Whether a case can run here; a skip is said, and fails under `CI=true`.
fn available(case: &Case) -> bool {
    if case.filter.exists() {
        return true;
    }
    let msg = format!(
        "{}: {} is absent (Debian's fail2ban package installs it)",
        case.name,
        case.filter.display()
    );
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{msg}; CI must not skip"
    );
    eprintln!("skipped {msg}");
    false
}

type Counts = BTreeMap<IpAddr, u64>;

fn recorded(case: &str) -> Counts {
    std::fs::read_to_string(data("fail2ban-mlf/expected.txt"))
        .expect("expected.txt")
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            (f.next()? == case).then(|| {
                let n = f.next().expect("count").parse().expect("count");
                (f.next().expect("address").parse().expect("address"), n)
            })
        })
        .collect()
}

fn log2drop_counts(case: &Case) -> Counts {
    let cfg = FilterConfig {
        fail2ban: Some(case.filter.clone()),
        options: case
            .mode
            .map(|m| [("mode".to_owned(), m.to_owned())].into())
            .unwrap_or_default(),
        timezone: Some("UTC".into()),
        ..FilterConfig::default()
    };
    let m = SourceMatcher::build(&[(case.name, &cfg)]).expect("builds");
    let text = std::fs::read_to_string(data(case.log)).expect("log");
    offences_common::per_address(&m, &text, SystemTime::now())
}

/// Same hosts, and a total within 5% of fail2ban's.
fn assert_close(case: &str, ours: &Counts, theirs: &Counts) {
    let (o, t): (u64, u64) = (ours.values().sum(), theirs.values().sum());
    assert!(t > 0, "{case}: fail2ban counts nothing; a broken case");
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        theirs.keys().collect::<Vec<_>>(),
        "{case}: the same hosts"
    );
    assert!(
        o.abs_diff(t) * 100 <= t * 5,
        "{case}: log2drop counts {o}, fail2ban {t}: more than 5% apart"
    );
}

#[test]
fn every_multi_line_tag_counts_as_in_fail2ban() {
    let case = &cases()[0];
    // Our own filter: exactly fail2ban's counts, host by host.
    assert_eq!(log2drop_counts(case), recorded("demo"));
}

#[test]
fn stock_filters_count_within_5_percent_of_fail2ban_with_the_same_hosts() {
    for case in cases().iter().skip(1) {
        if !available(case) {
            continue;
        }
        let theirs = recorded(case.name);
        let ours = log2drop_counts(case);
        assert_close(case.name, &ours, &theirs);
        // Today they agree exactly; say so if that ever changes.
        if ours != theirs {
            eprintln!(
                "{}: not exactly fail2ban's counts: {ours:?} vs {theirs:?}",
                case.name
            );
        }
    }
}

#[test]
fn aggressive_mode_counts_failures_that_name_no_address() {
    // `kex_exchange_identification` and `Read from socket failed` lines have no
    // address: they count with the one their session's `Connection from`
    // named, so aggressive mode finds more than before sessions carried it.
    let case = cases()
        .into_iter()
        .find(|c| c.name == "sshd-sessions.aggressive")
        .expect("case");
    if !available(&case) {
        return;
    }
    let ours = log2drop_counts(&case);
    let scanner: IpAddr = "203.0.113.53".parse().expect("address");
    assert_eq!(ours.get(&scanner), Some(&1));
    // The address in the client-controlled text after `ssh2:` is never banned.
    let injected: IpAddr = "198.51.100.66".parse().expect("address");
    assert!(!ours.contains_key(&injected));
}

/// Runs `fail2ban-regex -o ip` where it is installed.
fn fail2ban_regex(case: &Case) -> Option<Counts> {
    let filter = match case.mode {
        Some(m) => format!("{}[mode={m}]", case.filter.display()),
        None => case.filter.display().to_string(),
    };
    let out = Command::new("fail2ban-regex")
        .args(["-o", "ip"])
        .arg(data(case.log))
        .arg(filter)
        .output()
        .ok()?;
    assert!(
        out.status.success(),
        "fail2ban-regex failed on {}",
        case.name
    );
    let mut counts = Counts::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        if let Ok(addr) = line.trim().parse::<IpAddr>() {
            *counts.entry(addr).or_default() += 1;
        }
    }
    Some(counts)
}

#[test]
fn same_as_fail2ban_regex_now() {
    if Command::new("fail2ban-regex")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "fail2ban-regex is not installed; CI must not skip"
        );
        eprintln!("skipped: fail2ban-regex is not installed");
        return;
    }
    for case in cases() {
        if !available(&case) {
            continue;
        }
        let theirs = fail2ban_regex(&case).expect("ran");
        let ours = log2drop_counts(&case);
        assert_close(case.name, &ours, &theirs);
        if case.name == "demo" {
            assert_eq!(ours, theirs, "our own filter: exactly fail2ban's counts");
        }
    }
}
