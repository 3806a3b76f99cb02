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

/// Prefix-less sshd regexes (searched anywhere in the line), as a user might write.
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
    m.match_line(line.as_bytes(), now(), &mut s)
        .and_then(|h| h.addr())
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
        m.match_line(line, now(), &mut s).and_then(|h| h.addr()),
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
        assert_eq!(
            hit.addr().expect("address"),
            IpAddr::from([198, 51, 100, (i % 250) as u8])
        );
        assert_eq!(m.match_line_now(b"noise line", &mut s), None);
    }
}

/// Regexes without `<HOST>` are for filters with sessions only; there they take
/// their session's address (issue 10: sshd lines that name no client).
#[test]
fn a_regex_without_host_takes_its_sessions_address() {
    let mut cfg = session_filter();
    // Without session roles, still refused.
    let plain = FilterConfig {
        regex: vec![r"^too many failures$".to_owned()],
        ..cfg.clone()
    };
    let plain = FilterConfig {
        attempt: vec![],
        address: vec![],
        end: vec![],
        success: vec![],
        ..plain
    };
    assert!(matches!(
        SourceMatcher::build(&[("authd", &plain)]),
        Err(FilterError::Pattern {
            source: PatternError::NoHost,
            ..
        })
    ));
    cfg.attempt.push(r"^too many failures$".to_owned());
    cfg.carry.push(r"^connect from <HOST>$".to_owned());
    cfg.timezone = Some("UTC".into());
    let m = SourceMatcher::build(&[("authd", &cfg)]).expect("builds");
    let mut s = m.new_scratch();
    let lines = [
        // The carrier names the client; the line without one counts with it.
        "Jun  1 00:00:00 h authd[1]: connect from 192.0.2.1",
        "Jun  1 00:00:01 h authd[1]: too many failures",
        "Jun  1 00:00:02 h authd[1]: closed 192.0.2.1",
        // Before any address: it waits for the close.
        "Jun  1 00:00:03 h authd[2]: too many failures",
        "Jun  1 00:00:04 h authd[2]: closed 192.0.2.2",
        // Without a pid it could be anyone's: nothing.
        "Jun  1 00:00:05 h authd: connect from 192.0.2.3",
        "Jun  1 00:00:06 h authd: too many failures",
        // A carrier alone counts nothing.
        "Jun  1 00:00:07 h authd[4]: connect from 192.0.2.4",
        "Jun  1 00:00:08 h authd[4]: closed 192.0.2.4",
    ];
    let got: Vec<IpAddr> = lines
        .iter()
        .filter_map(|l| m.match_line(l.as_bytes(), now(), &mut s))
        .filter_map(|h| h.addr())
        .collect();
    assert_eq!(got, ["192.0.2.1", "192.0.2.2"].map(ip));
}

/// A syslog line without a pid is keyed by its program: an `address` line
/// waits there and counts when a line naming another client ends its session.
#[test]
fn pidless_lines_form_a_session_per_program() {
    let mut cfg = session_filter();
    cfg.timezone = Some("UTC".into());
    let m = SourceMatcher::build(&[("authd", &cfg)]).expect("builds");
    let mut s = m.new_scratch();
    let mut got = Vec::new();
    for l in [
        "Jun  1 00:00:00 h authd: auth failure rhost=192.0.2.1",
        "Jun  1 00:00:01 h authd: auth failure rhost=192.0.2.2",
        "Jun  1 00:00:02 h authd: bad password from 192.0.2.2",
    ] {
        got.extend(
            m.match_line(l.as_bytes(), now(), &mut s)
                .and_then(|h| h.addr()),
        );
        while let Some(h) = m.take_deferred(&mut s) {
            got.extend(h.addr());
        }
    }
    assert_eq!(got, ["192.0.2.1", "192.0.2.2"].map(ip));
}

/// A syslog filter with every session role, like a daemon that logs one attempt
/// over several lines.
fn session_filter() -> FilterConfig {
    let v = |s: &str| vec![s.to_owned()];
    FilterConfig {
        prefix: LinePrefix::Syslog,
        programs: v("authd"),
        regex: v(r"^bad password from <HOST>$"),
        attempt: v(r"^gave up early: <HOST>$"),
        address: v(r"^auth failure rhost=<HOST>$"),
        end: v(r"^closed <HOST>$"),
        success: v(r"^welcome <HOST>$"),
        ..FilterConfig::default()
    }
}

#[test]
fn session_lines_of_one_process_count_as_one_attempt() {
    let mut cfg = session_filter();
    cfg.timezone = Some("UTC".into());
    let m = SourceMatcher::build(&[("authd", &cfg)]).expect("builds");
    let mut s = m.new_scratch();
    let lines = [
        // pid 1: PAM line then the failure: one offence.
        "Jun  1 00:00:00 h authd[1]: auth failure rhost=192.0.2.1",
        "Jun  1 00:00:01 h authd[1]: bad password from 192.0.2.1",
        "Jun  1 00:00:02 h authd[1]: closed 192.0.2.1",
        // pid 2: PAM line alone, the session ends: one offence at the end line.
        "Jun  1 00:00:03 h authd[2]: auth failure rhost=192.0.2.2",
        "Jun  1 00:00:04 h authd[2]: closed 192.0.2.2",
        // pid 3: a login: nothing.
        "Jun  1 00:00:05 h authd[3]: auth failure rhost=192.0.2.3",
        "Jun  1 00:00:06 h authd[3]: welcome 192.0.2.3",
        "Jun  1 00:00:07 h authd[3]: closed 192.0.2.3",
        // pid 4: a scanner, twice in one session: one offence.
        "Jun  1 00:00:08 h authd[4]: gave up early: 192.0.2.4",
        "Jun  1 00:00:08 h authd[4]: gave up early: 192.0.2.4",
        // No pid: the PAM line cannot be tied to an attempt and does not count.
        "Jun  1 00:00:09 h authd: auth failure rhost=192.0.2.5",
        "Jun  1 00:00:09 h authd: bad password from 192.0.2.5",
    ];
    let got: Vec<IpAddr> = lines
        .iter()
        .filter_map(|l| m.match_line(l.as_bytes(), now(), &mut s))
        .filter_map(|h| h.addr())
        .collect();
    assert_eq!(
        got,
        ["192.0.2.1", "192.0.2.2", "192.0.2.4", "192.0.2.5"].map(ip)
    );
    // The end line releases the PAM line's offence, with that line's time.
    let mut s = m.new_scratch();
    m.match_line(lines[3].as_bytes(), now(), &mut s);
    let hit = m
        .match_line(lines[4].as_bytes(), now(), &mut s)
        .expect("released");
    assert_eq!(hit.role, Role::Address);
    let at: jiff::Timestamp = "2026-06-01T00:00:03Z".parse().expect("constant");
    assert_eq!(hit.time, Some(SystemTime::from(at)));
}

#[test]
fn a_pending_address_counts_when_its_window_passes() {
    let mut cfg = session_filter();
    cfg.session_window = Some("1m".into());
    let m = SourceMatcher::build(&[("authd", &cfg)]).expect("builds");
    let mut s = m.new_scratch();
    let t0 = now();
    let line = b"Jun  1 00:00:00 h authd[7]: auth failure rhost=192.0.2.7";
    assert!(matches!(m.examine(line, t0, &mut s), Outcome::Held(_)));
    // A line of another program, 61 s later (the injected clock), ends it.
    let other = b"Jun  1 00:01:01 h cron[9]: nothing";
    assert_eq!(
        m.examine(other, t0 + std::time::Duration::from_secs(30), &mut s),
        Outcome::Miss
    );
    assert_eq!(m.take_deferred(&mut s), None);
    m.examine(other, t0 + std::time::Duration::from_secs(61), &mut s);
    assert_eq!(
        m.take_deferred(&mut s).and_then(|h| h.addr()),
        Some(ip("192.0.2.7"))
    );
    assert_eq!(m.take_deferred(&mut s), None);
}

#[test]
fn a_filter_without_session_roles_counts_every_line() {
    let cfg = FilterConfig {
        prefix: LinePrefix::Syslog,
        regex: vec![r"^bad password from <HOST>$".into()],
        ..FilterConfig::default()
    };
    let m = SourceMatcher::build(&[("authd", &cfg)]).expect("builds");
    let mut s = m.new_scratch();
    for _ in 0..3 {
        assert!(
            m.match_line(
                b"Jun  1 00:00:00 h authd[1]: bad password from 192.0.2.1",
                now(),
                &mut s
            )
            .is_some()
        );
    }
    assert!(s.sessions.is_empty(), "no session table use");
}

#[test]
fn references_name_a_filter_and_a_mode() {
    assert_eq!(parse_reference("sshd"), Ok(("sshd", None)));
    assert_eq!(
        parse_reference("sshd[mode=aggressive]"),
        Ok(("sshd", Some("aggressive".to_owned())))
    );
    for bad in [
        "",
        "sshd[",
        "sshd[aggressive]",
        "sshd[mode=]",
        "[mode=x]",
        "sshd]",
        "sshd[mode=a b]",
    ] {
        assert!(
            matches!(parse_reference(bad), Err(ReferenceError::Syntax { .. })),
            "{bad:?}"
        );
    }
}

#[test]
fn a_mode_puts_its_regexes_in_front_and_unknown_modes_list_the_known_ones() {
    let mut cfg = session_filter();
    cfg.modes.insert(
        "strict".into(),
        crate::config::FilterMode {
            attempt: vec![r"^closed <HOST>$".into()],
            ..Default::default()
        },
    );
    let mut filters = BTreeMap::new();
    filters.insert("authd".to_owned(), cfg);
    let strict = resolve(&filters, "authd[mode=strict]").expect("mode");
    assert_eq!(strict.attempt[0], r"^closed <HOST>$");
    assert!(strict.modes.is_empty());
    // In the strict mode a lone close counts once; normally it does not.
    let line = b"Jun  1 00:00:00 h authd[5]: closed 192.0.2.9";
    let m = SourceMatcher::build(&[("authd", &strict)]).expect("builds");
    let mut s = m.new_scratch();
    assert!(m.match_line(line, now(), &mut s).is_some());
    assert!(m.match_line(line, now(), &mut s).is_none());
    let normal = resolve(&filters, "authd").expect("normal");
    let m = SourceMatcher::build(&[("authd", &normal)]).expect("builds");
    assert!(m.match_line(line, now(), &mut m.new_scratch()).is_none());
    assert_eq!(resolve(&filters, "authd[mode=normal]"), Ok(normal));

    let err = resolve(&filters, "authd[mode=agressive]").unwrap_err();
    assert_eq!(
        err.to_string(),
        "filter \"authd\" has no mode \"agressive\" (its modes: normal, strict)"
    );
    assert!(matches!(
        resolve(&filters, "nope[mode=strict]"),
        Err(ReferenceError::Unknown { .. })
    ));
}

#[test]
fn one_reference_parser_modes_for_ours_every_option_for_fail2ban_filters() {
    // A log2drop filter takes only a mode.
    assert!(matches!(
        parse_reference("sshd[mode=aggressive, port=22]"),
        Err(ReferenceError::Syntax { .. })
    ));
    let mut filters = BTreeMap::new();
    filters.insert(
        "f2b-sshd".to_owned(),
        FilterConfig {
            fail2ban: Some("/etc/fail2ban/filter.d/sshd.conf".into()),
            options: [("logtype".to_owned(), "file".to_owned())].into(),
            ..FilterConfig::default()
        },
    );
    // A fail2ban filter gets every option of the reference over its own.
    let cfg = resolve(
        &filters,
        r#"f2b-sshd[mode=aggressive, publickey="invalid", logtype=journal]"#,
    )
    .expect("resolves");
    assert_eq!(cfg.options["mode"], "aggressive");
    assert_eq!(cfg.options["publickey"], "invalid");
    assert_eq!(cfg.options["logtype"], "journal");
    assert!(matches!(
        resolve(&filters, "f2b-sshd[mode"),
        Err(ReferenceError::Syntax { .. })
    ));
}

/// Offences of `filters` (built-in names) on `log`, sessions ended at the end.
fn offences(names: &[&str], log: &str) -> Vec<IpAddr> {
    let cfgs: Vec<FilterConfig> = names
        .iter()
        .map(|n| builtin::get(n).expect("built-in"))
        .collect();
    let list: Vec<(&str, &FilterConfig)> = names.iter().copied().zip(cfgs.iter()).collect();
    let m = SourceMatcher::build(&list).expect("builds");
    let mut s = m.new_scratch();
    let mut out = Vec::new();
    for line in log.lines() {
        out.extend(
            m.match_line_now(line.as_bytes(), &mut s)
                .and_then(|h| h.addr()),
        );
        while let Some(h) = m.take_deferred(&mut s) {
            out.extend(h.addr());
        }
    }
    m.finish(&mut s);
    while let Some(h) = m.take_deferred(&mut s) {
        out.extend(h.addr());
    }
    out
}

#[test]
fn pam_generic_next_to_sshd_counts_an_sshd_attempt_once_in_either_order() {
    let log = "\
Jun  1 10:00:00 h sshd[70]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=192.0.2.70  user=root
Jun  1 10:00:02 h sshd[70]: Failed password for root from 192.0.2.70 port 40000 ssh2
Jun  1 10:00:03 h sshd[70]: Connection closed by authenticating user root 192.0.2.70 port 40000 [preauth]
Jun  1 10:00:04 h su[71]: pam_unix(su:auth): authentication failure; logname=bob uid=1000 euid=0 tty=/dev/pts/0 ruser=bob rhost=198.51.100.71  user=root
";
    let one_each = vec![ip("192.0.2.70"), ip("198.51.100.71")];
    assert_eq!(offences(&["sshd", "pam-generic"], log), one_each);
    assert_eq!(offences(&["pam-generic", "sshd"], log), one_each);
    // Alone, pam-generic counts every PAM line, sshd's too.
    assert_eq!(
        offences(&["pam-generic"], log),
        vec![ip("192.0.2.70"), ip("198.51.100.71")]
    );
}

#[test]
fn pam_generic_next_to_sshd_on_a_real_auth_log_counts_what_sshd_counts() {
    let log = include_str!("../../tests/data/sshd-auth.log");
    let sshd = offences(&["sshd"], log);
    let both = offences(&["pam-generic", "sshd"], log);
    assert!(!sshd.is_empty());
    assert_eq!(both.len(), sshd.len(), "one attempt, one offence");
}

#[test]
fn an_mlfid_capture_keys_the_session_without_a_pid_or_prefix() {
    let cfg = FilterConfig {
        regex: vec![r"^auth: bad password from <HOST> session=<F-MLFID>\w+</F-MLFID>$".into()],
        attempt: vec![
            r"^closed: <HOST>(?: session=<F-MLFID>\w+</F-MLFID>)? after failed logins$".into(),
        ],
        ..FilterConfig::default()
    };
    let m = SourceMatcher::build(&[("imapd", &cfg)]).expect("builds");
    let mut s = m.new_scratch();
    let mut count = |line: &str| {
        m.match_line_now(line.as_bytes(), &mut s)
            .and_then(|h| h.addr())
    };
    // Two failed passwords and the close of their session: two offences.
    assert_eq!(
        count("auth: bad password from 192.0.2.80 session=A1"),
        Some(ip("192.0.2.80"))
    );
    assert_eq!(
        count("auth: bad password from 192.0.2.80 session=A1"),
        Some(ip("192.0.2.80"))
    );
    assert_eq!(
        count("closed: 192.0.2.80 session=A1 after failed logins"),
        None
    );
    // Another session of the same client: its close counts once.
    assert_eq!(
        count("closed: 192.0.2.80 session=B2 after failed logins"),
        Some(ip("192.0.2.80"))
    );
    assert_eq!(
        count("closed: 192.0.2.80 session=B2 after failed logins"),
        None
    );
    // No session ID on the line: it stands alone, and counts.
    assert_eq!(
        count("closed: 192.0.2.81 after failed logins"),
        Some(ip("192.0.2.81"))
    );
    assert_eq!(
        count("closed: 192.0.2.81 after failed logins"),
        Some(ip("192.0.2.81"))
    );
}

#[test]
fn mlfid_sessions_of_two_hosts_in_one_file_stay_apart() {
    // Regression: the `<F-MLFID>` key was the captured id alone, so two
    // slapd servers logging into one file with the same connection numbers
    // shared a session, and ldap1's failed bind counted for ldap2's client.
    let log = "\
May 19 10:00:00 ldap1 slapd[812]: conn=1004 fd=14 ACCEPT from IP=192.0.2.41:51022 (IP=0.0.0.0:389)
May 19 10:00:00 ldap2 slapd[977]: conn=1004 fd=12 ACCEPT from IP=198.51.100.42:40100 (IP=0.0.0.0:389)
May 19 10:00:01 ldap1 slapd[812]: conn=1004 op=0 RESULT tag=97 err=49 text=
May 19 10:00:01 ldap2 slapd[977]: conn=1004 op=0 RESULT tag=97 err=49 text=
May 19 10:00:02 ldap1 slapd[812]: conn=1004 op=1 RESULT tag=97 err=49 text=
May 19 10:00:03 ldap2 slapd[977]: conn=1004 fd=12 closed
May 19 10:00:03 ldap1 slapd[812]: conn=1004 op=2 RESULT tag=97 err=49 text=
";
    assert_eq!(
        offences(&["slapd"], log),
        [
            ip("192.0.2.41"),
            ip("198.51.100.42"),
            ip("192.0.2.41"),
            ip("192.0.2.41")
        ]
    );
    // On one host, the id joins the lines of the daemon's processes, whatever
    // their tags (Dovecot's own log file): an auth failure and its login's
    // close are one attempt; the same id on another host is another session.
    let dovecot = "\
2026-05-19 10:00:00 auth: Info: passwd-file(alice,192.0.2.43,<AbCd01>): Password mismatch
2026-05-19 10:00:02 imap-login: Info: Disconnected (auth failed, 1 attempts in 2 secs): user=<alice>, method=PLAIN, rip=192.0.2.43, lip=192.0.2.1, session=<AbCd01>
May 19 10:00:03 mx2 dovecot: imap-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<bob>, method=PLAIN, rip=192.0.2.43, lip=192.0.2.1, session=<AbCd01>
";
    assert_eq!(
        offences(&["dovecot"], dovecot),
        [ip("192.0.2.43"), ip("192.0.2.43")]
    );
}

#[test]
fn whole_line_mlfid_sessions_of_two_syslog_hosts_stay_apart() {
    // Regression: a filter without a syslog prefix keyed its `<F-MLFID>`
    // sessions on the id alone, so two stunnel servers logging through syslog
    // into one file, both numbering connections from 0, shared a session, and
    // gw2's refused handshake counted for gw1's client.
    let log = "\
May 19 10:00:00 gw1 stunnel: LOG5[0]: Service [imaps] accepted connection from 192.0.2.44:40100
May 19 10:00:00 gw2 stunnel: LOG5[0]: Service [imaps] accepted connection from 198.51.100.45:40200
May 19 10:00:01 gw2 stunnel: LOG3[0]: SSL_accept: ssl/statem/statem_srvr.c:3713: error:0A0000C7:SSL routines::peer did not return a certificate
May 19 10:00:02 gw1 stunnel: LOG3[0]: SSL_accept: ssl/statem/statem_srvr.c:3713: error:0A0000C7:SSL routines::certificate verify failed
";
    assert_eq!(
        offences(&["stunnel"], log),
        [ip("198.51.100.45"), ip("192.0.2.44")]
    );
    // stunnel's own file names no host: its lines keep one session per id.
    let own = "\
2026.05.19 10:00:00 LOG5[7]: Service [imaps] accepted connection from 192.0.2.46:40300
2026.05.19 10:00:01 LOG3[7]: SSL_accept: ssl/statem/statem_srvr.c:3713: error:0A0000C7:SSL routines::peer did not return a certificate
";
    assert_eq!(offences(&["stunnel"], own), [ip("192.0.2.46")]);
}

#[test]
fn a_mode_may_read_the_daemons_own_file_with_its_own_prefix_and_time() {
    // openvpn reads syslog; its mode `file` reads OpenVPN's own --log file,
    // which has no syslog prefix, and takes the time from the line.
    let normal = resolve(&BTreeMap::new(), "openvpn").expect("openvpn");
    let file = resolve(&BTreeMap::new(), "openvpn[mode=file]").expect("mode file");
    assert_eq!(normal.prefix, LinePrefix::Syslog);
    assert_eq!(file.prefix, LinePrefix::None);
    assert!(file.programs.is_empty());
    assert_eq!(file.datepattern.as_deref(), Some("iso8601\n%a %b %e %T %Y"));
    let line = b"2026-05-19 10:00:00 203.0.113.47:51234 TLS Error: TLS handshake failed";
    for (cfg, want) in [(&normal, None), (&file, Some(ip("203.0.113.47")))] {
        let m = SourceMatcher::build(&[("openvpn", cfg)]).expect("builds");
        let mut s = m.new_scratch();
        assert_eq!(m.match_line_now(line, &mut s).and_then(|h| h.addr()), want);
    }
    // A mode's datepattern is checked as the filter's is, under either prefix.
    let mut cfg = normal.clone();
    cfg.modes.insert(
        "bad".into(),
        crate::config::FilterMode {
            datepattern: Some("iso8601\n%Q".into()),
            ..Default::default()
        },
    );
    assert!(
        check_settings(&cfg)
            .iter()
            .any(|(k, m)| *k == "modes" && m.contains("bad.datepattern: line 2")),
        "{:?}",
        check_settings(&cfg)
    );
}

/// A daemon that writes its tag before its own time (Dovecot 1.x's own file,
/// `dovecot: TIME Info: ...`): under a syslog prefix, `datepattern` reads the
/// message's start where the prefix has no time, and only there.
#[test]
fn a_syslog_filter_reads_the_messages_own_time_where_the_prefix_has_none() {
    let cfg = FilterConfig {
        prefix: LinePrefix::Syslog,
        programs: vec!["dovecot".into()],
        datepattern: Some("%b %d %H:%M:%S".into()),
        timezone: Some("UTC".into()),
        ..filter(&[r"^(?:\S+ \S+ \S+ )?Info: fail from <HOST>$"], &[])
    };
    assert!(
        check_settings(&cfg).is_empty(),
        "{:?}",
        check_settings(&cfg)
    );
    let m = SourceMatcher::build(&[("d", &cfg)]).expect("builds");
    let mut s = m.new_scratch();
    let at = |t: &str| {
        Some(SystemTime::from(
            t.parse::<jiff::Timestamp>().expect("time"),
        ))
    };
    for (line, want) in [
        // The tag, then the daemon's time.
        (
            "dovecot: May 19 10:00:00 Info: fail from 192.0.2.1",
            at("2026-05-19T10:00:00Z"),
        ),
        // The prefix's own time wins over one in the message.
        (
            "May 20 11:00:00 mail dovecot: May 19 10:00:00 Info: fail from 192.0.2.1",
            at("2026-05-20T11:00:00Z"),
        ),
        // No time at the message's start: the line's reading time.
        ("dovecot: Info: fail from 192.0.2.1", None),
    ] {
        let hit = m.match_line_now(line.as_bytes(), &mut s).expect(line);
        assert_eq!(hit.addr(), Some(ip("192.0.2.1")), "{line}");
        assert_eq!(hit.time, want, "{line}");
    }
}

/// The host name a line gives, if it gives one.
fn name_of(m: &SourceMatcher, line: &[u8], s: &mut Scratch) -> Option<String> {
    match m.examine(line, now(), s) {
        Outcome::Hit(Hit {
            host: Host::Name(r),
            ..
        }) => s.host_name(r).map(str::to_owned),
        _ => None,
    }
}

#[test]
fn names_match_only_where_no_address_does() {
    let cfg = FilterConfig {
        prefix: LinePrefix::Syslog,
        ..filter(
            &[
                r"^Failed password for .* from <HOST> port \d+ ssh2$",
                r"^authentication failure; rhost=<HOST>$",
                r"^<HOST> asked for it$",
            ],
            &[r"from trusted\.example\.org "],
        )
    };
    let m = SourceMatcher::build(&[("f", &cfg)]).expect("builds");
    let mut s = m.new_scratch();
    let line =
        b"May 19 10:00:00 h sshd[1]: Failed password for root from Scan.Example.org port 22 ssh2";
    assert_eq!(
        name_of(&m, line, &mut s).as_deref(),
        Some("scan.example.org")
    );
    let Outcome::Hit(hit) = m.examine(line, now(), &mut s) else {
        panic!("a hit");
    };
    assert_eq!(hit.addr(), None);
    assert!(
        hit.time.is_some(),
        "the line's time is read as for addresses"
    );
    for (line, name) in [
        (
            &b"May 19 10:00:00 h x[1]: authentication failure; rhost=mail-1.example.com"[..],
            "mail-1.example.com",
        ),
        (
            b"May 19 10:00:00 h x[1]: crawl.example.net. asked for it",
            "crawl.example.net.",
        ),
        // A name made to look like an address is still a name: its own
        // addresses count, never the one it spells.
        (
            b"May 19 10:00:00 h x[1]: authentication failure; rhost=192.0.2.1.example.org",
            "192.0.2.1.example.org",
        ),
    ] {
        assert_eq!(
            name_of(&m, line, &mut s).as_deref(),
            Some(name),
            "{}",
            String::from_utf8_lossy(line)
        );
    }
    // An address on the line wins over a name a client wrote into the user
    // field, and a user field cannot supply the name.
    let both = b"May 19 10:00:00 h sshd[1]: Failed password for x from evil.example.org port 1 ssh2 from 203.0.113.4 port 22 ssh2";
    assert_eq!(
        m.match_line(both, now(), &mut s).and_then(|h| h.addr()),
        Some(ip("203.0.113.4"))
    );
    let user_named = b"May 19 10:00:00 h sshd[1]: Failed password for x from evil.example.org port 1 ssh2 from 203.0.113.4 port 22 ssh2 extra";
    assert_eq!(m.examine(user_named, now(), &mut s), Outcome::Miss);
    // The filter's ignore applies to names; cut addresses, bare words and
    // single labels are not names.
    let ignored = b"May 19 10:00:00 h sshd[1]: Failed password for root from trusted.example.org port 22 ssh2";
    assert!(matches!(
        m.examine(ignored, now(), &mut s),
        Outcome::Ignored { .. }
    ));
    for miss in [
        &b"May 19 10:00:00 h sshd[1]: Failed password for root from 203.0.113 port 22 ssh2"[..],
        b"May 19 10:00:00 h sshd[1]: Failed password for root from localhost port 22 ssh2",
        b"May 19 10:00:00 h sshd[1]: Failed password for root from -x.example.org port 22 ssh2",
        b"May 19 10:00:00 h x[1]: authentication failure; rhost=",
        b"May 19 10:00:00 h x[1]: authentication failure; rhost=a_b.example.org",
    ] {
        assert_eq!(
            m.examine(miss, now(), &mut s),
            Outcome::Miss,
            "{}",
            String::from_utf8_lossy(miss)
        );
    }
}

#[test]
fn plain_filters_find_names_too() {
    // An access log with host name lookups on: the name is the first field.
    let cfg = filter(&[r#"^<HOST> \S+ \S+ \[[^\]]+\] "GET /wp-login\.php"#], &[]);
    let m = SourceMatcher::build(&[("f", &cfg)]).expect("builds");
    let mut s = m.new_scratch();
    let line =
        br#"bot.example.com - - [19/May/2026:10:00:00 +0000] "GET /wp-login.php HTTP/1.1" 404 1"#;
    assert_eq!(
        name_of(&m, line, &mut s).as_deref(),
        Some("bot.example.com")
    );
    let addr =
        br#"203.0.113.9 - - [19/May/2026:10:00:00 +0000] "GET /wp-login.php HTTP/1.1" 404 1"#;
    assert_eq!(
        m.match_line(addr, now(), &mut s).and_then(|h| h.addr()),
        Some(ip("203.0.113.9"))
    );
}

#[test]
fn a_name_waits_in_its_session_like_an_address() {
    // PAM names the host, then the Failed line (with the address) counts: the
    // name must not count as well.
    let cfg = FilterConfig {
        prefix: LinePrefix::Syslog,
        regex: vec![r"^Failed password for \S+ from <HOST> port \d+ ssh2$".into()],
        address: vec![r"^pam_unix\(sshd:auth\): authentication failure; rhost=<HOST>$".into()],
        ..FilterConfig::default()
    };
    let m = SourceMatcher::build(&[("f", &cfg)]).expect("builds");
    let mut s = m.new_scratch();
    let pam = b"May 19 10:00:00 h sshd[7]: pam_unix(sshd:auth): authentication failure; rhost=scan.example.org";
    assert!(matches!(m.examine(pam, now(), &mut s), Outcome::Held(_)));
    let failed =
        b"May 19 10:00:01 h sshd[7]: Failed password for root from 203.0.113.7 port 22 ssh2";
    assert_eq!(
        m.match_line(failed, now(), &mut s).and_then(|h| h.addr()),
        Some(ip("203.0.113.7"))
    );
    m.finish(&mut s);
    assert_eq!(m.take_deferred(&mut s), None, "the session already counted");
    // Alone, the name counts when its session ends.
    let pam2 = b"May 19 10:00:02 h sshd[8]: pam_unix(sshd:auth): authentication failure; rhost=scan.example.org";
    assert!(matches!(m.examine(pam2, now(), &mut s), Outcome::Held(_)));
    m.finish(&mut s);
    let hit = m.take_deferred(&mut s).expect("the session's name");
    let Host::Name(r) = hit.host else {
        panic!("a name, got {hit:?}");
    };
    assert_eq!(s.host_name(r), Some("scan.example.org"));
}

/// The captures `captures_into` gives for `line` under `cfg`.
fn captures_of(cfg: &FilterConfig, line: &str) -> Captures {
    let m = SourceMatcher::build(&[("f", cfg)]).expect("builds");
    let mut s = m.new_scratch();
    let hit = m
        .match_line(line.as_bytes(), now(), &mut s)
        .expect("matches");
    let mut out = Captures::new();
    // Something left over from an earlier line is cleared.
    out.push_named("stale", b"x");
    m.captures_into(line.as_bytes(), &hit, &mut s, &mut out);
    out
}

#[test]
fn named_captures_come_with_the_offence() {
    let cfg = filter(
        &[r"auth failed for (?P<user>\S+) mail (?P<mail>\S+) from <HOST>$"],
        &[],
    );
    let c = captures_of(
        &cfg,
        "auth failed for root mail a@example.org from 192.0.2.4",
    );
    assert_eq!(c.user(), Some("root"));
    assert_eq!(c.get("mail"), Some("a@example.org"));
    assert_eq!(c.get("stale"), None);
    // fail2ban's tag spelling in our own regexes.
    let cfg = filter(&[r"login <F-USER>\S+</F-USER> from <HOST>$"], &[]);
    assert_eq!(
        captures_of(&cfg, "login admin from 2001:db8::3").user(),
        Some("admin")
    );
    // No named group: nothing to capture, nothing searched.
    let cfg = filter(&[r"bad from <HOST>$"], &[]);
    assert!(captures_of(&cfg, "bad from 192.0.2.4").is_empty());
}

#[test]
fn syslog_filter_captures_from_the_message() {
    let cfg = builtin::get("sshd").expect("built-in");
    let c = captures_of(
        &cfg,
        "Dec  6 04:00:01 web1 sshd[100]: Failed password for invalid user oracle from 192.0.2.5 port 22 ssh2",
    );
    assert_eq!(c.user(), Some("oracle"));
}

#[test]
fn hostile_captures_are_bounded() {
    let cfg = filter(&[r"user (?P<user>.*) from <HOST>$"], &[]);
    let long = format!("x\r\x1b[31m{}", "y".repeat(10_000));
    let c = captures_of(&cfg, &format!("user {long} from 192.0.2.4"));
    let user = c.user().expect("user");
    assert!(user.len() <= capture::MAX_VALUE_BYTES + '…'.len_utf8());
    assert!(user.starts_with("x\r\x1b[31myyy"), "kept raw: {user:?}");
    assert!(!capture::escape(user).contains('\x1b'));
}

#[test]
fn fail2ban_filter_captures_its_tags() {
    let cfg = FilterConfig {
        fail2ban_inline: Some(
            "[Definition]\nfailregex = ^login failed for <F-USER>\\S+</F-USER> from <HOST>$\n"
                .into(),
        ),
        ..FilterConfig::default()
    };
    let c = captures_of(&cfg, "login failed for operator from 198.51.100.9");
    assert_eq!(c.user(), Some("operator"));
    // The address groups are not captures.
    assert_eq!(c.len(), 1, "{c:?}");
}

#[test]
fn fail2ban_filters_read_valid_and_invalid_utf8_lines_alike() {
    // A valid line is borrowed as it is; a line with invalid bytes goes through
    // the lossy copy: both must reach the failregex.
    let cfg = FilterConfig {
        fail2ban_inline: Some(
            "[Definition]\nfailregex = ^login failed for \\S+ from <HOST>$\n".into(),
        ),
        ..FilterConfig::default()
    };
    let m = SourceMatcher::build(&[("f", &cfg)]).expect("builds");
    let mut s = m.new_scratch();
    for line in [
        &b"login failed for operator from 198.51.100.9"[..],
        &b"login failed for op\xff\xfeator from 198.51.100.9"[..],
        "login failed for op\u{e9}rateur from 198.51.100.9".as_bytes(),
    ] {
        let hit = m.match_line(line, now(), &mut s).expect("a hit");
        assert_eq!(hit.addr(), Some(ip("198.51.100.9")), "{line:?}");
    }
}

#[test]
fn a_name_hit_comes_with_its_captures() {
    // The name path's regex numbers its groups apart from the address
    // regex's: the captures are found by name.
    let cfg = FilterConfig {
        prefix: LinePrefix::Syslog,
        ..filter(
            &[r"^Failed password for (?P<user>\S+) from <HOST> port \d+ ssh2$"],
            &[],
        )
    };
    for (line, host) in [
        (
            "May 19 10:00:00 h sshd[1]: Failed password for admin from scan.example.org port 22 ssh2",
            None,
        ),
        (
            "May 19 10:00:00 h sshd[1]: Failed password for admin from 203.0.113.8 port 22 ssh2",
            Some(ip("203.0.113.8")),
        ),
    ] {
        let m = SourceMatcher::build(&[("f", &cfg)]).expect("builds");
        let mut s = m.new_scratch();
        let hit = m.match_line(line.as_bytes(), now(), &mut s).expect("a hit");
        assert_eq!(hit.addr(), host, "{line}");
        let mut out = Captures::new();
        m.captures_into(line.as_bytes(), &hit, &mut s, &mut out);
        assert_eq!(out.user(), Some("admin"), "{line}");
        assert_eq!(out.len(), 1, "{line}: {out:?}");
    }
}

#[test]
fn a_program_glob_takes_one_name_part() {
    let g = ProgramGlob::parse("postfix-*/smtpd").expect("a glob");
    assert!(g.matches(b"postfix-incoming/smtpd"));
    assert!(g.matches(b"postfix-a/smtpd"));
    assert!(!g.matches(b"postfix-/smtpd"), "the * is at least one byte");
    assert!(
        !g.matches(b"postfix-a/submission/smtpd"),
        "the * holds no '/'"
    );
    assert!(!g.matches(b"postfix/smtpd"));
    assert!(!g.matches(b"xpostfix-a/smtpd"));
    assert!(!g.matches(b"postfix-a/smtpdx"));
    assert_eq!(ProgramGlob::parse("postfix/smtpd"), None);
}

#[test]
fn a_program_entry_with_two_stars_is_refused() {
    let cfg = FilterConfig {
        prefix: LinePrefix::Syslog,
        programs: vec!["postfix-*/smtpd".into(), "*-*/smtpd".into()],
        regex: vec![r"^x <HOST>$".into()],
        ..FilterConfig::default()
    };
    let problems = check_settings(&cfg);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].0, "programs");
    assert!(problems[0].1.contains("entry 1"), "{problems:?}");
}

#[test]
fn a_program_glob_reads_lines_an_exact_name_does_not_take() {
    let cfg = FilterConfig {
        prefix: LinePrefix::Syslog,
        programs: vec!["postfix/smtpd".into(), "postfix-*/smtpd".into()],
        regex: vec![r"^fail from <HOST>$".into()],
        ..FilterConfig::default()
    };
    let m = SourceMatcher::build(&[("f", &cfg)]).expect("builds");
    let mut s = m.new_scratch();
    for (line, want) in [
        (
            &b"May 19 10:00:00 mx postfix/smtpd[1]: fail from 192.0.2.1"[..],
            Some("192.0.2.1"),
        ),
        (
            b"May 19 10:00:00 mx postfix-in/smtpd[2]: fail from 192.0.2.2",
            Some("192.0.2.2"),
        ),
        (
            b"May 19 10:00:00 mx postfix-in/cleanup[3]: fail from 192.0.2.3",
            None,
        ),
        (b"May 19 10:00:00 mx sshd[4]: fail from 192.0.2.4", None),
    ] {
        assert_eq!(
            m.match_line(line, now(), &mut s).and_then(|h| h.addr()),
            want.map(ip),
            "{}",
            String::from_utf8_lossy(line)
        );
    }
}

#[test]
fn captures_before_the_address_agree_with_the_whole_regex() {
    // `captures_into` searches only the text before the address where the
    // fast path found it; `named_captures` runs the whole regex.
    let mut searched = 0;
    for name in builtin::names() {
        let cfg = builtin::get(name).expect("built-in");
        if crate::fail2ban::is_fail2ban(&cfg) {
            continue;
        }
        for mode in modes(&cfg) {
            let cfg = with_mode(&cfg, &mode).expect("its own mode");
            let m = SourceMatcher::build(&[(name, &cfg)]).expect("builds");
            let mut s = m.new_scratch();
            for sample in builtin::samples(name).expect("samples") {
                let line = sample.line.as_bytes();
                let own = match m.examine(line, now(), &mut s) {
                    Outcome::Hit(h) | Outcome::Ended { line: h, .. } => h,
                    _ => continue,
                };
                let mut got = Captures::new();
                m.captures_into(line, &own, &mut s, &mut got);
                // Bounded as `captures_into` bounds them.
                let mut want = Captures::new();
                for (n, v) in m.named_captures(line, &own) {
                    if n != SESSION_GROUP {
                        want.push_named(&n, &v);
                    }
                }
                assert_eq!(got, want, "{name}[mode={mode}]: {}", sample.line);
                searched += usize::from(!want.is_empty());
            }
        }
    }
    assert!(searched > 50, "only {searched} sample lines with captures");
}

/// What the DFA capture plan of each pattern says about `line`, checked
/// against the capturing search of `\A(?:A)\z` it stands in for; returns how
/// many answers the plan gave (rather than leaving them to that search).
fn plans_agree(m: &SourceMatcher, line: &[u8]) -> usize {
    let mut answered = 0;
    for pat in &m.patterns {
        let (Some(fast), Some(before)) = (&pat.fast, &pat.before_captures) else {
            continue;
        };
        let Some(plan) = &before.plan else {
            continue;
        };
        let hay = if m.filters[pat.filter.index()].syslog {
            match syslog::parse(line) {
                Some(prefix) => prefix.text(line),
                None => continue,
            }
        } else {
            line
        };
        let Ok(extract::Found::Addr(_, start, group)) = fast.find_at(hay) else {
            continue;
        };
        let text = &hay[..start];
        let regex = before.regex().expect("compiles");
        let mut caps = regex.create_captures();
        regex.search_captures(&Input::new(text).anchored(Anchored::Yes), &mut caps);
        assert!(caps.is_match(), "{:?}", String::from_utf8_lossy(text));
        let want = caps.get_group(before.groups[0].0).map(|s| s.range());
        let what = || format!("{:?} on {:?}", before.text, String::from_utf8_lossy(text));
        // What the address path found on the way, if anything.
        match group {
            extract::GroupAt::At(a, b) => assert_eq!(Some(a..b), want, "{}", what()),
            extract::GroupAt::Absent => assert_eq!(None, want, "{}", what()),
            extract::GroupAt::Unknown => {}
        }
        if let Ok(Some(span)) = plan.span(text) {
            assert_eq!(span, want, "{}", what());
            answered += 1;
        }
    }
    answered
}

#[test]
fn capture_plans_agree_with_the_capturing_search() {
    // Lines built to make the priority rules matter: user names that imitate
    // the text around them, empty ones, the optional user part present or not.
    let tricky = [
        "May 19 10:00:00 h sshd[1]: Failed password for invalid user invalid user x from 192.0.2.1 port 22 ssh2",
        "May 19 10:00:00 h sshd[1]: Failed password for invalid user  from 192.0.2.1 port 22 ssh2",
        "May 19 10:00:00 h sshd[1]: Failed password for  from 192.0.2.1 port 22 ssh2",
        "May 19 10:00:00 h sshd[1]: Failed password for a from 198.51.100.1 from 192.0.2.1 port 22 ssh2",
        "May 19 10:00:00 h sshd[1]: Failed password for invalid user from 192.0.2.1 port 22 ssh2",
        "May 19 10:00:00 h sshd[1]: Failed none for illegal user illegal user  from 192.0.2.1 port 22 ssh2",
        "May 19 10:00:00 h sshd[1]: Connection closed by invalid user git 192.0.2.1 port 22 [preauth]",
        "May 19 10:00:00 h sshd[1]: Connection closed by invalid user  192.0.2.1 port 22 [preauth]",
        "May 19 10:00:00 h sshd[1]: Connection closed by invalid user invalid user x 192.0.2.1 port 22 [preauth]",
        "May 19 10:00:00 h sshd[1]: Connection closed by authenticating user 192.0.2.1 port 22 [preauth]",
        "May 19 10:00:00 h sshd[1]: Connection closed by 192.0.2.1 port 22 [preauth]",
        "May 19 10:00:00 h sshd[1]: Disconnected from user root 192.0.2.1 port 22",
        "May 19 10:00:00 h sshd[1]: Disconnected from invalid user user x 192.0.2.1 port 22 [preauth]",
        "May 19 10:00:00 h sshd[1]: Disconnected from authenticating user  192.0.2.1 port 22 [preauth]",
        "May 19 10:00:00 h sshd[1]: Disconnected from 192.0.2.1 port 22 [preauth]",
        "May 19 10:00:00 h sshd[1]: Invalid user  from 192.0.2.1 port 22",
        "May 19 10:00:00 h sshd[1]: Invalid user a from b from 192.0.2.1 port 22",
        "May 19 10:00:00 h sshd[1]: Disconnecting invalid user a b 192.0.2.1 port 22: Too many authentication failures",
        "May 19 10:00:00 h sshd[1]: User a from b from 192.0.2.1 not allowed because not in any group",
        "May 19 10:00:00 h sshd[1]: Accepted publickey for invalid user x from 192.0.2.1 port 22 ssh2: RSA SHA256:x",
    ];
    let mut answered = 0;
    for name in builtin::names() {
        let samples = builtin::samples(name).unwrap_or_default();
        for cfg in &builtin_in_every_mode(name) {
            let Ok(m) = SourceMatcher::build(&[(name, cfg)]) else {
                continue;
            };
            for s in &samples {
                answered += plans_agree(&m, s.line.as_bytes());
            }
            for line in tricky {
                answered += plans_agree(&m, line.as_bytes());
            }
        }
    }
    assert!(answered > 100, "the plans answered only {answered} times");
}

/// Texts near `text` that a head or tail check could get wrong: cut near
/// either end, one byte changed there, doubled, and another line's message
/// spliced in.
fn near_texts(text: &[u8], other: &[u8]) -> Vec<Vec<u8>> {
    let mut out = vec![text.to_vec(), Vec::new()];
    let ends = (0..=text.len()).filter(|i| *i < 24 || i + 24 > text.len());
    for i in ends {
        out.push(text[..i].to_vec());
        out.push(text[i..].to_vec());
        if i < text.len() {
            let mut t = text.to_vec();
            t[i] ^= 0x20;
            out.push(t);
        }
    }
    out.push([text, text].concat());
    out.push([text, other].concat());
    out.push([other, text].concat());
    out.push([&text[..text.len() / 2], &other[other.len() / 2..]].concat());
    out
}

/// No pattern that the anchored groups' dispatch turns away from a text
/// (by its head or tails) matches it at its start, in its address or its name
/// form; returns how many it turned away.
fn dispatch_admits_every_match(m: &SourceMatcher, hay: &[u8]) -> usize {
    let mut turned_away = 0;
    for group in &m.groups {
        let (Group::Anchored { by_first_byte, .. }, Some(b)) = (group, hay.first()) else {
            continue;
        };
        for c in by_first_byte[usize::from(*b)].iter() {
            if c.admits(hay) {
                continue;
            }
            turned_away += 1;
            let pat = &m.patterns[c.pattern];
            let input = Input::new(hay).anchored(Anchored::Yes);
            let matches = pat.full.get().is_match(input.clone())
                || pat
                    .name
                    .as_ref()
                    .and_then(|n| n.regex())
                    .is_some_and(|(r, _)| r.is_match(input));
            assert!(
                !matches,
                "pattern {} ({:?}) matches {:?} but is turned away",
                c.pattern,
                pat.full.hir,
                String::from_utf8_lossy(hay)
            );
        }
    }
    turned_away
}

#[test]
fn literal_dispatch_never_turns_away_a_matching_pattern() {
    let mut turned_away = 0;
    for name in builtin::names() {
        let cfgs = builtin_in_every_mode(name);
        let base = &cfgs[0];
        if crate::fail2ban::is_fail2ban(base) || base.prefix != LinePrefix::Syslog {
            continue;
        }
        let messages: Vec<&[u8]> = builtin::samples(name)
            .unwrap_or_default()
            .iter()
            .filter_map(|s| {
                let line = s.line.as_bytes();
                syslog::parse(line).map(|p| p.text(line))
            })
            .collect();
        for cfg in &cfgs {
            let m = SourceMatcher::build(&[(name, cfg)]).expect("builds");
            for (i, text) in messages.iter().enumerate() {
                let other = messages[(i + 1) % messages.len()];
                for hay in near_texts(text, other) {
                    turned_away += dispatch_admits_every_match(&m, &hay);
                }
            }
        }
    }
    assert!(
        turned_away > 1000,
        "the dispatch turned away only {turned_away}"
    );
}

#[test]
fn literal_dispatch_reads_heads_and_tails() {
    let lits = Literals::of(
        r"^(?:error: )?Disconnecting (?:user \S+ )?x port \d+: Too many(?: \[preauth\])?$",
    );
    assert_eq!(
        lits.heads
            .map(|h| common_prefix(h.iter().filter(|h| h[0] == b'D')).map(<[u8]>::to_vec)),
        Some(Some(b"Disconnecting ".to_vec()))
    );
    let mut tails = lits.tails.expect("ends at the text end");
    tails.sort();
    assert_eq!(
        tails,
        [b": Too many".to_vec(), b": Too many [preauth]".to_vec()]
    );
    // `(?m)$` may end before a newline; a pattern without `$` anywhere.
    assert_eq!(Literals::of(r"(?m)^a b$").tails, None);
    assert_eq!(Literals::of(r"^a b").tails, None);
    assert_eq!(Literals::of(r"^a .*$").tails, None);
    // A pattern that may match the empty string starts with nothing known.
    assert_eq!(Literals::of(r"(?:ab)?").heads, None);
    assert_eq!(
        common_prefix([b"abc".to_vec(), b"abd".to_vec()].iter()),
        Some(&b"ab"[..])
    );
    assert_eq!(common_prefix(std::iter::empty()), None);
}

#[test]
fn tails_are_cut_down_soundly() {
    let digits: Vec<Vec<u8>> = (b'0'..=b'9')
        .flat_map(|d| [[&[d][..], b": x"].concat(), [&[d][..], b": x [p]"].concat()])
        .collect();
    assert_eq!(
        few_tails(digits),
        Some(vec![b": x".to_vec(), b": x [p]".to_vec()])
    );
    // One that ends with another adds nothing.
    assert_eq!(
        few_tails(vec![b"ab".to_vec(), b"b".to_vec()]),
        Some(vec![b"b".to_vec()])
    );
    // Ten one-byte tails cannot be cut.
    assert_eq!(few_tails((b'0'..=b'9').map(|d| vec![d]).collect()), None);
}

#[test]
fn role_index_is_the_position_in_all() {
    for (i, role) in Role::ALL.into_iter().enumerate() {
        assert_eq!(role.index(), i);
    }
}

/// The addition that finds a hit's pattern agrees with a scan of every
/// pattern, for sshd in every mode (every role) and a few more built-in
/// filters, all in one matcher (so filters after the first are checked too);
/// a regex past its list's end finds none.
#[test]
fn pattern_of_agrees_with_a_scan() {
    let mut all = Vec::new();
    let sshd = builtin::get("sshd").expect("built in");
    for mode in modes(&sshd) {
        all.push((
            format!("sshd[mode={mode}]"),
            with_mode(&sshd, &mode).expect("mode"),
        ));
    }
    for name in builtin::names().filter(|n| *n != "sshd").take(3) {
        all.push((name.to_owned(), builtin::get(name).expect("listed")));
    }
    let filters: Vec<(&str, &FilterConfig)> = all.iter().map(|(n, c)| (n.as_str(), c)).collect();
    let m = SourceMatcher::build(&filters).expect("builds");
    for (fi, (_, cfg)) in filters.iter().enumerate() {
        for (role, list) in role_lists(cfg) {
            for regex in 0..=list.len() {
                let hit = Hit {
                    host: Host::Addr(ip("192.0.2.1")),
                    filter: FilterId(fi as u16),
                    role,
                    regex,
                    time: None,
                };
                let scan = m.patterns.iter().position(|p| {
                    p.filter == hit.filter && p.role == hit.role && p.index == hit.regex
                });
                assert_eq!(m.pattern_of(&hit), scan, "{fi} {role:?} {regex}");
                assert_eq!(scan.is_some(), regex < list.len());
            }
        }
    }
}

proptest::proptest! {
    /// The word-at-a-time check is `starts_with` and `ends_with`.
    #[test]
    fn candidate_admits_as_starts_and_ends_with(
        hay in proptest::collection::vec(0u8..3, 0..40),
        head in proptest::collection::vec(0u8..3, 0..20),
        tails in proptest::collection::vec(proptest::collection::vec(0u8..3, 1..20), 0..4),
    ) {
        let c = Candidate {
            pattern: 0,
            head: head.clone().into(),
            tails: tails.iter().map(|t| t.clone().into_boxed_slice()).collect(),
        };
        let want = hay.starts_with(&head)
            && (tails.is_empty() || tails.iter().any(|t| hay.ends_with(t)));
        proptest::prop_assert_eq!(c.admits(&hay), want);
    }
}

/// Sample lines, the same with a host name where the address is (for the
/// name path), and texts near them.
fn probe_lines(name: &str) -> Vec<Vec<u8>> {
    let samples = builtin::samples(name).unwrap_or_default();
    let addresses =
        regex::bytes::Regex::new(r"(?:[0-9]{1,3}\.){3}[0-9]{1,3}|(?i:2001:db8:)[0-9a-fA-F:.]*")
            .expect("regex");
    let mut lines = Vec::new();
    for (k, s) in samples.iter().enumerate() {
        let line = s.line.as_bytes();
        lines.push(line.to_vec());
        let named = addresses.replace_all(line, &b"scan.example.org"[..]);
        lines.push(named.into_owned());
        let other = samples[(k + 1) % samples.len()].line.as_bytes();
        lines.extend(near_texts(line, other));
    }
    lines
}

#[test]
fn parts_built_at_first_use_answer_as_built_up_front() {
    // Name regexes, the regexes of the text before `<HOST>` and the DFAs of
    // capture plans are compiled for the first line that needs them: every
    // answer, capture and session outcome must be the one they give when
    // compiled with the matcher.
    let mut hits = 0;
    for name in builtin::names() {
        let lines = probe_lines(name);
        for cfg in &builtin_in_every_mode(name) {
            let lazy = SourceMatcher::build(&[(name, cfg)]).expect("builds");
            let eager = SourceMatcher::build(&[(name, cfg)]).expect("builds");
            eager.build_now();
            let (mut ls, mut es) = (lazy.new_scratch(), eager.new_scratch());
            for line in &lines {
                let got = lazy.examine(line, now(), &mut ls);
                let want = eager.examine(line, now(), &mut es);
                let what = || format!("{name}: {}", String::from_utf8_lossy(line));
                assert_eq!(got, want, "{}", what());
                let (Outcome::Hit(h) | Outcome::Ended { line: h, .. }) = got else {
                    continue;
                };
                hits += 1;
                let (mut a, mut b) = (Captures::new(), Captures::new());
                lazy.captures_into(line, &h, &mut ls, &mut a);
                eager.captures_into(line, &h, &mut es, &mut b);
                assert_eq!(a, b, "{}", what());
                assert_eq!(
                    lazy.named_captures(line, &h),
                    eager.named_captures(line, &h),
                    "{}",
                    what()
                );
                if let Host::Name(n) = h.host {
                    assert_eq!(ls.host_name(n), es.host_name(n), "{}", what());
                }
            }
        }
    }
    assert!(hits > 1000, "only {hits} hits");
}

/// The text each pattern of `m` searches in `line`: the syslog message for
/// a syslog filter (`None` when the line has no syslog prefix).
fn pattern_text<'a>(m: &SourceMatcher, p: usize, line: &'a [u8]) -> Option<&'a [u8]> {
    if m.filters[m.patterns[p].filter.index()].syslog {
        syslog::parse(line).map(|prefix| prefix.text(line))
    } else {
        Some(line)
    }
}

/// Runs `lines`, in order, through every fast path of `m` with one memory
/// of earlier lines per pattern (as a scratch keeps them), and checks each
/// answer against the same search without that memory; returns how many
/// addresses they found.
fn memo_agrees(
    m: &SourceMatcher,
    lines: &[&[u8]],
    name: &str,
) -> Result<usize, proptest::test_runner::TestCaseError> {
    let mut found = 0;
    for (p, pat) in m.patterns.iter().enumerate() {
        let Some(fast) = &pat.fast else {
            continue;
        };
        let mut memo = extract::Memo::default();
        for line in lines {
            let Some(hay) = pattern_text(m, p, line) else {
                continue;
            };
            let got = fast.find_at_with(hay, &mut memo).ok();
            let want = fast.find_at(hay).ok();
            proptest::prop_assert_eq!(
                got,
                want,
                "{}: pattern {} on {:?}",
                name,
                p,
                String::from_utf8_lossy(hay)
            );
            found += usize::from(matches!(want, Some(extract::Found::Addr(..))));
        }
    }
    Ok(found)
}

#[test]
fn remembered_verdicts_agree_with_fresh_searches_for_every_filter() {
    // Each probe line twice in a row, then all of them again: the memory
    // answers the repeats, and the near texts (a byte changed, a text cut
    // or doubled) must not be taken for the lines they resemble.
    let mut found = 0;
    for name in builtin::names() {
        let lines = probe_lines(name);
        let twice: Vec<&[u8]> = lines
            .iter()
            .flat_map(|l| [l.as_slice(), l.as_slice()])
            .chain(lines.iter().map(Vec::as_slice))
            .collect();
        for cfg in &builtin_in_every_mode(name) {
            let m = SourceMatcher::build(&[(name, cfg)]).expect("builds");
            found += memo_agrees(&m, &twice, name).expect("agrees");
        }
    }
    assert!(found > 1000, "only {found} addresses found");
}

#[test]
fn remembered_verdicts_agree_on_generated_messages() {
    use proptest::strategy::Strategy;
    // sshd's patterns and a few other filters' of other shapes (PAM's field
    // list, dovecot's `rip=`, postfix's `[<HOST>]`, vsftpd's).
    let names = ["sshd", "pam-generic", "dovecot", "postfix", "vsftpd"];
    let filters: Vec<(&str, Vec<SourceMatcher>, Vec<&str>)> = names
        .iter()
        .map(|name| {
            let ms = builtin_in_every_mode(name)
                .iter()
                .map(|cfg| SourceMatcher::build(&[(name, cfg)]).expect("builds"))
                .collect();
            let samples = builtin::samples(name).expect("samples");
            (*name, ms, samples.into_iter().map(|s| s.line).collect())
        })
        .collect();
    // A sample line with a piece put in (or none), repeated in an order that
    // revisits lines: a user name that imitates the text around it, an
    // address, a field cut short.
    let edit = (
        0usize..64,
        0usize..256,
        proptest::sample::select(
            &[
                "",
                " ",
                "x",
                "root",
                " from ",
                "192.0.2.9",
                "2001:db8::9",
                ":",
                " port 22",
                "invalid user ",
                "rhost=",
                "user=",
                "[",
                "]",
                "a b",
                "::",
                "\t",
            ][..],
        ),
    );
    let strategy = (
        0..names.len(),
        proptest::collection::vec(edit, 1..5),
        proptest::collection::vec(0usize..5, 1..16),
    );
    let mut runner = proptest::test_runner::TestRunner::default();
    runner
        .run(&strategy.boxed(), |(f, edits, order)| {
            let (name, ms, samples) = &filters[f];
            let lines: Vec<Vec<u8>> = edits
                .iter()
                .map(|(k, cut, piece)| {
                    let s = samples[k % samples.len()].as_bytes();
                    let cut = cut % (s.len() + 1);
                    [&s[..cut], piece.as_bytes(), &s[cut..]].concat()
                })
                .collect();
            let seq: Vec<&[u8]> = order
                .iter()
                .map(|k| lines[k % lines.len()].as_slice())
                .collect();
            for m in ms {
                memo_agrees(m, &seq, name)?;
            }
            Ok(())
        })
        .expect("agrees");
}

#[test]
fn programs_read_by_the_same_filters_share_one_group() {
    // sshd names three programs; one dispatch table serves them all.
    let sshd = builtin::get("sshd").expect("built-in");
    let m = SourceMatcher::build(&[("sshd", &sshd)]).expect("builds");
    assert_eq!(m.by_program.len(), 3);
    assert_eq!(m.groups.len(), 1);
    assert!(m.by_program.iter().all(|(_, g)| *g == 0));
    // With a filter that reads one of them only, that one gets its own.
    let mut other = sshd.clone();
    other.programs = vec!["sshd-auth".into()];
    other.attempt.clear();
    other.address.clear();
    other.end.clear();
    other.carry.clear();
    other.success.clear();
    let m = SourceMatcher::build(&[("sshd", &sshd), ("other", &other)]).expect("builds");
    let group_of = |prog: &[u8]| {
        m.by_program
            .iter()
            .find(|(p, _)| &**p == prog)
            .map(|(_, g)| *g)
            .expect("named")
    };
    assert_eq!(group_of(b"sshd"), group_of(b"sshd-session"));
    assert_ne!(group_of(b"sshd"), group_of(b"sshd-auth"));
    assert_eq!(m.groups.len(), 2);
}

/// The hostless patterns of the built-in filters (every mode) that a
/// [`TextSet`] decides, with their regexes (built once for all the cases).
fn text_set_patterns() -> &'static [(TextSet, Regex)] {
    static SETS: std::sync::LazyLock<Vec<(TextSet, Regex)>> =
        std::sync::LazyLock::new(collect_text_sets);
    &SETS
}

fn collect_text_sets() -> Vec<(TextSet, Regex)> {
    let mut out = Vec::new();
    for name in builtin::names() {
        for cfg in builtin_in_every_mode(name) {
            let Ok(m) = SourceMatcher::build(&[(name, &cfg)]) else {
                continue;
            };
            for p in &m.patterns {
                if p.texts.is_some() {
                    let set = TextSet::of_hir(&p.full.hir).expect("takes it again");
                    out.push((set, p.full.get().clone()));
                }
            }
        }
    }
    out
}

#[test]
fn text_sets_cover_the_sshd_key_exchange_attempt() {
    let sets = text_set_patterns();
    assert!(
        sets.iter()
            .any(|(s, _)| s.matches(b"error: kex_exchange_identification: banner line too long")),
        "{} sets",
        sets.len()
    );
}

proptest::proptest! {
    /// A text of the set, cut, extended or with one byte changed: the set
    /// says what the regex's anchored search says.
    #[test]
    fn text_sets_agree_with_the_regex(
        pick in 0usize..10_000,
        cut in 0usize..200,
        at in 0usize..200,
        byte in proptest::prelude::any::<u8>(),
        extra in "[ a-z\\]\\[]{0,6}",
        how in 0u8..4,
    ) {
        let sets = text_set_patterns();
        let (set, regex) = &sets[pick % sets.len()];
        let texts = set.texts();
        let mut hay = texts[(pick / sets.len()) % texts.len()].to_vec();
        match how {
            0 => hay.truncate(cut % (hay.len() + 1)),
            1 => hay.extend_from_slice(extra.as_bytes()),
            2 => {
                let n = hay.len();
                if n > 0 {
                    hay[at % n] = byte;
                }
            }
            _ => {}
        }
        let want = regex
            .search_half(&Input::new(&hay).anchored(Anchored::Yes))
            .is_some();
        proptest::prop_assert_eq!(set.matches(&hay), want, "{:?}", String::from_utf8_lossy(&hay));
    }
}

/// Captures as (name, value) pairs, in order.
type Pairs = Vec<(String, String)>;

/// What `each_capture` hands out for the line that made `own`, bounded as
/// `captures_into` bounds it, and what `captures_into` keeps.
fn each_and_into(m: &SourceMatcher, s: &mut Scratch, line: &[u8], own: &Hit) -> (Pairs, Pairs) {
    let mut each = Vec::new();
    let mut buf = String::from("stale");
    m.each_capture(line, own, s, |name, raw| {
        each.push((
            name.to_string(),
            capture::bound_in(raw, &mut buf).to_owned(),
        ));
    });
    let mut into = Captures::new();
    m.captures_into(line, own, s, &mut into);
    let into = into
        .iter()
        .map(|c| (c.name.to_string(), c.value.to_owned()))
        .collect();
    (each, into)
}

#[test]
fn each_capture_hands_out_what_captures_into_keeps() {
    // Every built-in filter in every mode (fail2ban ones among them), on its
    // samples, their host-name forms and texts near them.
    let mut with_captures = 0;
    for name in builtin::names() {
        let lines = probe_lines(name);
        for cfg in &builtin_in_every_mode(name) {
            let m = SourceMatcher::build(&[(name, cfg)]).expect("builds");
            let mut s = m.new_scratch();
            for line in &lines {
                let (Outcome::Hit(own) | Outcome::Ended { line: own, .. }) =
                    m.examine(line, now(), &mut s)
                else {
                    continue;
                };
                let (each, into) = each_and_into(&m, &mut s, line, &own);
                assert_eq!(each, into, "{name}: {}", String::from_utf8_lossy(line));
                with_captures += usize::from(!into.is_empty());
            }
        }
    }
    assert!(
        with_captures > 100,
        "only {with_captures} lines with captures"
    );
}

proptest::proptest! {
    /// Whatever a user name holds (long, not ASCII, not UTF-8), the value
    /// `each_capture` hands out, bounded, is the one `captures_into` keeps.
    #[test]
    fn each_capture_bounds_as_captures_into(
        user in proptest::collection::vec(
            proptest::prop_oneof![
                proptest::prelude::Just(b'r'),
                proptest::prelude::Just(b' '),
                proptest::prelude::Just(0xc3),
                proptest::prelude::Just(0xa9),
                proptest::prelude::Just(0xe2),
                proptest::prelude::Just(0xff),
                0x20u8..0x7f,
            ],
            0..150,
        ),
        mode in 0usize..3,
    ) {
        let user: Vec<u8> = user.into_iter().filter(|&b| b != b':').collect();
        SSHD_MODES.with(|ms| -> Result<(), proptest::test_runner::TestCaseError> {
            let m = &ms[mode % ms.len()];
            let mut s = m.new_scratch();
            let mut line = b"May 19 00:00:00 h sshd[7]: Failed password for invalid user ".to_vec();
            line.extend_from_slice(&user);
            line.extend_from_slice(b" from 192.0.2.7 port 22 ssh2");
            let Outcome::Hit(own) = m.examine(&line, now(), &mut s) else {
                panic!("no hit: {}", String::from_utf8_lossy(&line));
            };
            let (each, into) = each_and_into(m, &mut s, &line, &own);
            proptest::prop_assert!(!into.is_empty());
            proptest::prop_assert_eq!(each, into);
            Ok(())
        })?;
    }
}

thread_local! {
    /// The built-in sshd filter in each of its modes, built once for the
    /// cases of a proptest.
    static SSHD_MODES: Vec<SourceMatcher> = builtin_in_every_mode("sshd")
        .iter()
        .map(|cfg| SourceMatcher::build(&[("sshd", cfg)]).expect("builds"))
        .collect();
}
