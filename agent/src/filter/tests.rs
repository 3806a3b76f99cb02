//! Unit tests of the matcher: plain and syslog filters, priorities, ignore,
//! time extraction and the fast path against the capturing search.

use super::*;

fn now() -> SystemTime {
    let ts: jiff::Timestamp = "2026-06-01T00:00:00Z".parse().expect("constant");
    SystemTime::from(ts)
}

trait MatchNow {
    fn match_line_now(&self, line: &[u8], s: &mut Scratch) -> Option<Hit>;
}

impl MatchNow for SourceMatcher {
    fn match_line_now(&self, line: &[u8], s: &mut Scratch) -> Option<Hit> {
        self.match_line(line, now(), s)
    }
}

fn filter(regex: &[&str], ignore: &[&str]) -> FilterConfig {
    FilterConfig {
        regex: regex.iter().map(|s| (*s).to_owned()).collect(),
        ignore: ignore.iter().map(|s| (*s).to_owned()).collect(),
        ..FilterConfig::default()
    }
}

/// The sshd regexes shipped in examples/log2drop.toml.
fn sshd() -> FilterConfig {
    filter(
        &[
            r"sshd\[[0-9]+\]: Failed (?:password|publickey) for (?:invalid user )?.* from <HOST> port [0-9]+(?: ssh2)?$",
            r"sshd\[[0-9]+\]: Invalid user .* from <HOST> port [0-9]+$",
        ],
        &[],
    )
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

fn one(cfg: &FilterConfig, line: &str) -> Option<IpAddr> {
    let m = SourceMatcher::build(&[("f", cfg)]).expect("builds");
    let mut s = m.new_scratch();
    m.match_line(line.as_bytes(), now(), &mut s).map(|h| h.addr)
}

#[test]
fn failed_password_lines() {
    let cfg = sshd();
    assert_eq!(
        one(
            &cfg,
            "May 19 10:00:00 host sshd[123]: Failed password for root from 203.0.113.4 port 22 ssh2"
        ),
        Some(ip("203.0.113.4"))
    );
    assert_eq!(
        one(
            &cfg,
            "May 19 10:00:00 host sshd[123]: Failed password for invalid user admin from 2001:db8::7 port 50022 ssh2\n"
        ),
        Some(ip("2001:db8::7"))
    );
    assert_eq!(
        one(
            &cfg,
            "May 19 10:00:00 host sshd[9]: Invalid user oracle from 198.51.100.23 port 40000"
        ),
        Some(ip("198.51.100.23"))
    );
}

#[test]
fn mapped_addresses_come_out_as_ipv4() {
    assert_eq!(
        one(
            &sshd(),
            "sshd[1]: Failed password for root from ::ffff:203.0.113.4 port 22 ssh2"
        ),
        Some(ip("203.0.113.4"))
    );
}

#[test]
fn unrelated_lines_do_not_match() {
    let cfg = sshd();
    for line in [
        "May 19 10:00:00 host sshd[123]: Accepted password for root from 203.0.113.4 port 22 ssh2",
        "May 19 10:00:00 host CRON[77]: pam_unix(cron:session): session opened for user root",
        "",
        "sshd[1]: Failed password for root from 203.0.113.999 port 22 ssh2",
    ] {
        assert_eq!(one(&cfg, line), None, "{line}");
    }
}

#[test]
fn user_controlled_text_never_supplies_the_address() {
    let cfg = sshd();
    assert_eq!(
        one(
            &cfg,
            "sshd[5]: Failed password for invalid user 198.51.100.9 from 203.0.113.4 port 22 ssh2"
        ),
        Some(ip("203.0.113.4"))
    );
    // A user name that imitates the tail of the line.
    assert_eq!(
        one(
            &cfg,
            "sshd[5]: Failed password for invalid user x from 198.51.100.9 port 22 from 203.0.113.4 port 22 ssh2"
        ),
        Some(ip("203.0.113.4"))
    );
    assert_eq!(
        one(
            &cfg,
            "sshd[5]: Invalid user admin from 198.51.100.9 from 203.0.113.4 port 22"
        ),
        Some(ip("203.0.113.4"))
    );
    // Trailing junk after the real tail: the anchored regex must refuse the line
    // rather than take an address from inside the user name.
    assert_eq!(
        one(&cfg, "sshd[5]: Invalid user a from 198.51.100.9 port 22 x"),
        None
    );
}

#[test]
fn invalid_utf8_is_tolerated() {
    let line = b"sshd[5]: Failed password for invalid user \xff\xfe from 203.0.113.4 port 22 ssh2";
    let cfg = sshd();
    let m = SourceMatcher::build(&[("ssh", &cfg)]).expect("builds");
    let mut s = m.new_scratch();
    assert_eq!(
        m.match_line(line, now(), &mut s).map(|h| h.addr),
        Some(ip("203.0.113.4"))
    );
}

#[test]
fn ignore_suppresses_a_hit() {
    let cfg = filter(
        &[r"Failed password for .* from <HOST> port [0-9]+"],
        &[r"for backup-robot from"],
    );
    assert_eq!(
        one(
            &cfg,
            "Failed password for backup-robot from 203.0.113.4 port 22"
        ),
        None
    );
    assert_eq!(
        one(&cfg, "Failed password for root from 203.0.113.4 port 22"),
        Some(ip("203.0.113.4"))
    );
}

#[test]
fn ignore_of_one_filter_does_not_hide_another() {
    let a = filter(&[r"from <HOST> port"], &[r"port"]);
    let b = filter(&[r"from <HOST> port"], &[]);
    let m = SourceMatcher::build(&[("a", &a), ("b", &b)]).expect("builds");
    let mut s = m.new_scratch();
    let hit = m
        .match_line_now(b"from 203.0.113.4 port 22", &mut s)
        .expect("b matches");
    assert_eq!(m.filter_name(hit.filter), "b");
}

#[test]
fn first_filter_wins_and_names_resolve() {
    let a = filter(&[r"login failure from <HOST>$"], &[]);
    let b = filter(&[r"failure from <HOST>$"], &[]);
    let m = SourceMatcher::build(&[("a", &a), ("b", &b)]).expect("builds");
    let mut s = m.new_scratch();
    let hit = m
        .match_line_now(b"login failure from 192.0.2.1", &mut s)
        .expect("hit");
    assert_eq!(m.filter_name(hit.filter), "a");
    let hit = m
        .match_line_now(b"auth failure from 192.0.2.1", &mut s)
        .expect("hit");
    assert_eq!(m.filter_name(hit.filter), "b");
    assert_eq!(m.filter_count(), 2);
}

#[test]
fn a_regex_whose_capture_is_not_an_address_falls_through() {
    // The first regex's <HOST> captures 999.1.1.1 (not an address); the second
    // regex finds the real one.
    let cfg = filter(&[r"client <HOST> ", r"peer <HOST>$"], &[]);
    assert_eq!(
        one(&cfg, "client 999.1.1.1 peer 192.0.2.8"),
        Some(ip("192.0.2.8"))
    );
}

#[test]
fn build_errors_name_filter_and_index() {
    let bad = filter(&[r"from <HOST>", r"no host"], &[]);
    let err = SourceMatcher::build(&[("ssh-fail", &bad)]).expect_err("no host");
    assert_eq!(
        err,
        FilterError::Pattern {
            filter: "ssh-fail".into(),
            kind: "regex",
            index: 1,
            source: PatternError::NoHost
        }
    );
    let empty = filter(&[], &[]);
    assert!(matches!(
        SourceMatcher::build(&[("e", &empty)]),
        Err(FilterError::Empty { .. })
    ));
}

#[test]
fn scratch_is_reusable_across_many_lines() {
    let cfg = sshd();
    let m = SourceMatcher::build(&[("ssh", &cfg)]).expect("builds");
    let mut s = m.new_scratch();
    for i in 0..200u32 {
        let line = format!(
            "sshd[1]: Failed password for root from 198.51.100.{} port 22 ssh2",
            i % 250
        );
        let hit = m.match_line(line.as_bytes(), now(), &mut s).expect("hit");
        assert_eq!(hit.addr, IpAddr::from([198, 51, 100, (i % 250) as u8]));
        assert_eq!(m.match_line_now(b"noise line", &mut s), None);
    }
}
