//! A hand-written fail2ban filter tree that uses every construct the reader
//! supports, run over sample lines (documentation addresses only).

use super::*;

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

/// common.conf (included before), the filter, its .local and an after-include.
fn tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "base.conf",
        "# shared pieces\n[DEFAULT]\n_daemon = \\S*\n__prefix = \\s*(?:\\S+\\s+)?%(_daemon)s(?:\\[\\d+\\])?:\\s+\n\n[Definition]\n",
    );
    write(
        d,
        "demo.conf",
        r#"[INCLUDES]
before = base.conf
after = demo-extra.conf

[DEFAULT]
_daemon = demod

[Definition]
; the session id is the prefix, the rest is matched by failregex
prefregex = ^<F-MLFID>%(__prefix)s</F-MLFID><F-CONTENT>.+</F-CONTENT>$

failregex = ^auth failure for <F-USER>\S+</F-USER> from <HOST> port \d+$
            ^bad key from <ADDR>$ ; inline comment
            # a comment line inside the value
            ^v4 only <IP4> and v6 only <IP6>$
            ^name <DNS> tried$
            ^net <SUBNET> blocked$
            ^cidr <ADDR>/<CIDR> blocked$
            ^<F-NOFAIL>session opened</F-NOFAIL> from <HOST>$
            <mdre-<mode>>
            ^look(?!ing) ahead from <HOST>$

mdre-normal =
mdre-aggressive = ^probe from <HOST>$

ignoreregex = : auth failure for ignored-user from

mode = normal
datepattern = {^LN-BEG}
journalmatch = _SYSTEMD_UNIT=demod.service

[Init]
maxlines = 1
"#,
    );
    write(
        d,
        "demo.local",
        "[Definition]\nignoreregex = %(known/ignoreregex)s\n              : auth failure for local-user from\n",
    );
    write(d, "demo-extra.conf", "[Init]\nmaxlines = 1\n");
    dir
}

fn run(m: &Matcher, line: &str) -> Verdict {
    let now = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_717_243_200); // 2024-06-01
    m.examine(line, &TimeZone::UTC, now, &mut LineState::default())
}

/// The address of a line that is a failure by itself (a session's failure
/// line with its own address is one).
fn host(m: &Matcher, line: &str) -> Option<String> {
    match run(m, line) {
        Verdict::Fail { addr, .. }
        | Verdict::Session {
            addr: Some(addr),
            nofail: false,
            gained: false,
            ..
        } => Some(addr.to_string()),
        _ => None,
    }
}

#[test]
fn every_construct_of_a_filter_file() {
    let dir = tree();
    let path = dir.path().join("demo.conf");
    let def = Definition::read(&path, &BTreeMap::new()).unwrap();
    assert_eq!(def.files.len(), 4, "{:?}", def.files);
    assert_eq!(
        def.journalmatch.as_deref(),
        Some("_SYSTEMD_UNIT=demod.service")
    );
    assert_eq!(def.datepattern.as_deref(), Some("{^LN-BEG}"));
    assert_eq!(def.ignoreregex.len(), 2, ".local extends with %(known/x)s");
    // Normal mode: <mdre-normal> is empty, so one regex fewer.
    assert_eq!(def.failregex.len(), 8);
    assert!(
        def.failregex[0].place.ends_with("demo.conf:12"),
        "{}",
        def.failregex[0].place
    );
    let m = Matcher::build(&def).unwrap();
    assert_eq!(m.fancy, 1, "only the look-ahead needs backtracking");

    let p = "Jun  1 10:00:00 host demod[42]: ";
    assert_eq!(
        host(
            &m,
            &format!("{p}auth failure for bob from 192.0.2.10 port 22")
        )
        .as_deref(),
        Some("192.0.2.10")
    );
    assert_eq!(
        host(
            &m,
            &format!("{p}auth failure for bob from ::ffff:192.0.2.11 port 22")
        )
        .as_deref(),
        Some("192.0.2.11")
    );
    assert_eq!(
        host(&m, &format!("{p}bad key from [2001:db8::5]")).as_deref(),
        Some("2001:db8::5")
    );
    assert_eq!(
        host(
            &m,
            &format!("{p}v4 only 198.51.100.1 and v6 only 2001:db8::1")
        )
        .as_deref(),
        Some("198.51.100.1")
    );
    assert_eq!(
        host(&m, &format!("{p}net 203.0.113.0/24 blocked")).as_deref(),
        Some("203.0.113.0")
    );
    assert_eq!(
        host(&m, &format!("{p}cidr 203.0.113.7/32 blocked")).as_deref(),
        Some("203.0.113.7")
    );
    assert_eq!(
        host(&m, &format!("{p}look ahead from 192.0.2.12")).as_deref(),
        Some("192.0.2.12")
    );
    assert_eq!(
        run(&m, &format!("{p}looking ahead from 192.0.2.12")),
        Verdict::Miss
    );
    // A name is never banned without resolving, and nobody resolves it: a
    // line of its session without an address.
    assert!(matches!(
        run(&m, &format!("{p}name host.example.org tried")),
        Verdict::Session { addr: None, .. }
    ));
    // <F-NOFAIL> names the address without an offence.
    assert!(matches!(
        run(&m, &format!("{p}session opened from 192.0.2.13")),
        Verdict::Session {
            addr: Some(_),
            nofail: true,
            ..
        }
    ));
    // ignoreregex from the .conf and from the .local.
    for u in ["ignored-user", "local-user"] {
        assert!(matches!(
            run(
                &m,
                &format!("{p}auth failure for {u} from 192.0.2.14 port 22")
            ),
            Verdict::Ignored { regex: 0 }
        ));
    }
    // The prefregex wants this daemon: another program's line does not count.
    assert_eq!(
        run(
            &m,
            "Jun  1 10:00:00 host other[1]: auth failure for bob from 192.0.2.15 port 22"
        ),
        Verdict::Miss
    );
    // Normal mode has no probe regex.
    assert_eq!(run(&m, &format!("{p}probe from 192.0.2.16")), Verdict::Miss);
    // The line's time is read from the date fail2ban's way, and cut before matching.
    match run(
        &m,
        &format!("{p}auth failure for bob from 192.0.2.10 port 22"),
    ) {
        Verdict::Session { time: Some(t), .. } => assert_eq!(
            jiff::Timestamp::try_from(t).unwrap().to_string(),
            "2024-06-01T10:00:00Z"
        ),
        v => panic!("{v:?}"),
    }
}

#[test]
fn options_pick_the_mode() {
    let dir = tree();
    let opts: BTreeMap<String, String> = [("mode".to_owned(), "aggressive".to_owned())].into();
    let m = crate::fail2ban::load(&dir.path().join("demo.conf"), &opts).unwrap();
    assert_eq!(m.regex_count(), 9);
    assert_eq!(
        host(&m, "Jun  1 10:00:00 host demod[42]: probe from 192.0.2.16").as_deref(),
        Some("192.0.2.16")
    );
}

#[test]
fn injected_text_never_supplies_the_address() {
    let dir = tree();
    let m = crate::fail2ban::load(&dir.path().join("demo.conf"), &BTreeMap::new()).unwrap();
    // The user name carries a fake "from ADDR port N": \S+ cannot take it.
    assert_eq!(
        run(
            &m,
            "Jun  1 10:00:00 host demod[42]: auth failure for x from 198.51.100.66 port 1 from 192.0.2.20 port 22"
        ),
        Verdict::Miss
    );
}

#[test]
fn unrunnable_pattern_is_reported_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "bad.conf",
        "[Definition]\n\nfailregex = ^fine <HOST>$\n            ^broken (<HOST>$\n",
    );
    let e = crate::fail2ban::load(&dir.path().join("bad.conf"), &BTreeMap::new()).unwrap_err();
    let text = e.to_string();
    assert!(text.contains("bad.conf:3: failregex #2"), "{text}");
}

#[test]
fn missing_failregex_and_self_reference_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "none.conf", "[Definition]\nignoreregex = x\n");
    assert!(matches!(
        Definition::read(&dir.path().join("none.conf"), &BTreeMap::new()),
        Err(LoadError::NoFailregex { .. })
    ));
    write(
        dir.path(),
        "loop.conf",
        "[Definition]\nfailregex = <a> <HOST>\na = x<a>\n",
    );
    let e = Definition::read(&dir.path().join("loop.conf"), &BTreeMap::new()).unwrap_err();
    assert!(e.to_string().contains("refers to itself"), "{e}");
}

#[test]
fn maxlines_searches_lines_together() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "ml.conf",
        "[Definition]\nfailregex = ^login from <HOST>\\n.*denied$\nmaxlines = 2\ndatepattern = {NONE}\n",
    );
    let m = crate::fail2ban::load(&dir.path().join("ml.conf"), &BTreeMap::new()).unwrap();
    let mut st = LineState::default();
    let now = SystemTime::now();
    assert_eq!(
        m.examine("login from 192.0.2.30", &TimeZone::UTC, now, &mut st),
        Verdict::Miss
    );
    assert!(matches!(
        m.examine("access denied", &TimeZone::UTC, now, &mut st),
        Verdict::Fail { .. }
    ));
    // The same two lines do not count twice.
    assert_eq!(
        m.examine("access denied", &TimeZone::UTC, now, &mut st),
        Verdict::Miss
    );
}

#[test]
fn references_with_options() {
    let (n, o) = crate::filter::parse_reference_options(
        r#"sshd[mode=aggressive, publickey="invalid", x='a,b']"#,
    )
    .unwrap();
    assert_eq!(n, "sshd");
    assert_eq!(o["mode"], "aggressive");
    assert_eq!(o["publickey"], "invalid");
    assert_eq!(o["x"], "a,b");
    assert_eq!(
        crate::filter::parse_reference_options("plain")
            .unwrap()
            .1
            .len(),
        0
    );
    assert!(crate::filter::parse_reference_options("x[mode=a").is_err());
    assert!(crate::filter::parse_reference_options("x[novalue]").is_err());
}

/// `logtype = journal`: fail2ban's systemd backend knows the time and runs no
/// date detection on the message, so a date inside the message stays for the
/// regex; only the time the journal source writes at the line start is cut.
#[test]
fn journal_lines_keep_the_dates_in_their_message() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "stamp.conf",
        "[Definition]\nfailregex = ^\\s*\\S+ stampd\\[\\d+\\]: <E>[\\d-]+ [\\d:.]+ bad login from <HOST>$\ndatepattern = <E>{DATE}\n",
    );
    let path = dir.path().join("stamp.conf");
    let line = "srv stampd[7]: <E>2024-06-01 10:00:00.123 bad login from 192.0.2.40";
    let file = Matcher::build(&Definition::read(&path, &BTreeMap::new()).unwrap()).unwrap();
    // A file's date detector cuts the date out of the message.
    assert_eq!(host(&file, line), None);
    let opts: BTreeMap<String, String> = [("logtype".into(), "journal".into())].into();
    let def = Definition::read(&path, &opts).unwrap();
    assert!(def.journal);
    let journal = Matcher::build(&def).unwrap();
    assert_eq!(host(&journal, line).as_deref(), Some("192.0.2.40"));
    // As log2drop's journal source writes it: the entry's time first.
    let from_source = format!("2024-06-01T10:00:01.000000Z {line}");
    assert_eq!(host(&journal, &from_source).as_deref(), Some("192.0.2.40"));
    match run(&journal, &from_source) {
        Verdict::Fail { time, .. } => assert!(time.is_some(), "the entry's time is read"),
        v => panic!("{v:?}"),
    }
}

/// `<HOST>` takes `\d{1,3}` octets, so a zero-padded quad matches; it is read in
/// decimal, as written (fail2ban reports the padded text).
#[test]
fn zero_padded_addresses_are_read_in_decimal() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "pad.conf",
        "[Definition]\nfailregex = ^login failure from <HOST>$\n",
    );
    let m =
        Matcher::build(&Definition::read(&dir.path().join("pad.conf"), &BTreeMap::new()).unwrap())
            .unwrap();
    assert_eq!(
        host(&m, "login failure from 192.000.002.030").as_deref(),
        Some("192.0.2.30")
    );
    assert_eq!(
        host(&m, "login failure from 203.0.113.009").as_deref(),
        Some("203.0.113.9")
    );
    // Still no more than 255 an octet.
    assert_eq!(host(&m, "login failure from 192.0.2.256"), None);
}

/// fail2ban's exception for sessions: once a session has named several users
/// (`<F-USER>`, or `<F-ALT_USER>` where that is empty), a line that would not
/// count (`<F-NOFAIL>`, `<F-MLFGAINED>`) is a failure: a login after guessing
/// other names does not clear the guesses.
#[test]
fn a_session_with_several_users_makes_its_successes_failures() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "multi.conf",
        r"[Definition]
prefregex = ^<F-MLFID>authd\[\d+\]:</F-MLFID> <F-CONTENT>.+</F-CONTENT>$
failregex = ^<F-NOFAIL>check failed</F-NOFAIL> for (?:user=<F-USER>\S+</F-USER>|as=<F-ALT_USER>\S+</F-ALT_USER>) from <HOST>$
            ^<F-MLFFORGET><F-MLFGAINED>login ok</F-MLFGAINED></F-MLFFORGET> for <F-USER>\S+</F-USER> from <HOST>$
",
    );
    let m = Matcher::build(
        &Definition::read(&dir.path().join("multi.conf"), &BTreeMap::new()).unwrap(),
    )
    .unwrap();
    let now = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_717_243_200);
    let mut st = LineState::default();
    let mut flags = |line: &str| match m.examine(line, &TimeZone::UTC, now, &mut st) {
        Verdict::Session {
            nofail,
            gained,
            forget,
            ..
        } => (nofail, gained, forget),
        v => panic!("{line}: {v:?}"),
    };
    // One user throughout: a check that failed then a login are not failures.
    assert_eq!(
        flags("authd[1]: check failed for user=amy from 192.0.2.50"),
        (true, false, false)
    );
    assert_eq!(
        flags("authd[1]: login ok for amy from 192.0.2.50"),
        (false, true, true)
    );
    // Session 2 names root (as the alternative name), then bob: from the
    // second name on, nothing is a success any more.
    assert_eq!(
        flags("authd[2]: check failed for as=root from 192.0.2.51"),
        (true, false, false)
    );
    assert_eq!(
        flags("authd[2]: check failed for user=bob from 192.0.2.51"),
        (false, false, false)
    );
    assert_eq!(
        flags("authd[2]: login ok for bob from 192.0.2.51"),
        (false, false, true)
    );
    // The login forgot session 2: the same id starts afresh.
    assert_eq!(
        flags("authd[2]: login ok for carl from 192.0.2.52"),
        (false, true, true)
    );
}

/// `<HOST>` that takes a host name gives [`Verdict::FailName`] with the name (the
/// agent resolves it as its `use_dns` says, as fail2ban's `usedns` does); text
/// that is no host name gives nothing.
#[test]
fn a_host_name_is_an_offence_by_name() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "named.conf",
        "[Definition]\nfailregex = ^denied for '\\S+'@'<HOST>'$\n",
    );
    let m = Matcher::build(
        &Definition::read(&dir.path().join("named.conf"), &BTreeMap::new()).unwrap(),
    )
    .unwrap();
    let now = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_717_243_200);
    let mut st = LineState::default();
    let line = "denied for 'root'@'db1.example.org'";
    assert!(matches!(
        m.examine(line, &TimeZone::UTC, now, &mut st),
        Verdict::FailName { regex: 0, .. }
    ));
    assert_eq!(st.name, "db1.example.org");
    assert_eq!(
        host(&m, "denied for 'root'@'192.0.2.60'").as_deref(),
        Some("192.0.2.60")
    );
}

/// Runs `lines` through the filter and through the same filter without its
/// shortcuts (and without the date memo: its memo is emptied before each line),
/// each with its own state kept across lines as a source keeps it, and demands
/// the same verdicts, session ids, names and captures.
fn same_as_reference(def: &Definition, lines: &[&str]) {
    let fast = Matcher::build(def).unwrap();
    let plain = Matcher::build(def).unwrap().without_shortcuts();
    let now = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_717_243_200);
    let (mut st, mut reference) = (LineState::default(), LineState::default());
    for line in lines {
        reference.date.forget_memo();
        // As a source's bytes reach it: told whether the line is unbroken.
        let (text, unbroken) = super::line_text(line.as_bytes());
        let a = fast.examine_text(&text, unbroken, &TimeZone::UTC, now, &mut st);
        let b = plain.examine(line, &TimeZone::UTC, now, &mut reference);
        assert_eq!(a, b, "{}: {line:?}", def.path.display());
        assert_eq!(st.mlfid, reference.mlfid, "{line:?}");
        assert_eq!(st.name, reference.name, "{line:?}");
        assert_eq!(st.captures, reference.captures, "{line:?}");
    }
}

#[test]
fn shortcuts_change_no_verdict() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "s.conf",
        r#"[Definition]
prefregex = ^<F-MLFID>\s*(?:\S+\s+)?app(?:\[\d+\])?:\s*</F-MLFID>(?:warn: )?<F-CONTENT>.+</F-CONTENT>$
failregex = ^[Bb]ad login for <F-USER>\S+</F-USER> from <HOST>$
            ^(?i)denied <HOST>$
            from <HOST> rejected
            ^Bad(?! key) thing from <HOST>$
            ^<F-NOFAIL>hello</F-NOFAIL> from <HOST>$
"#,
    );
    let def = Definition::read(&dir.path().join("s.conf"), &BTreeMap::new()).unwrap();
    let m = Matcher::build(&def).unwrap();
    assert!(
        m.split.is_some(),
        "the usual prefregex shape takes the DFA path"
    );
    same_as_reference(
        &def,
        &[
            "Jun  1 10:00:00 host app[1]: Bad login for bob from 192.0.2.1",
            // Same timestamp text: the date memo answers.
            "Jun  1 10:00:00 host app[1]: bad login for eve from 192.0.2.2",
            "Jun  1 10:00:00 host app[1]: warn: Bad login for eve from 192.0.2.3",
            // The leading literal fits, the regex does not.
            "Jun  1 10:00:00 host app[1]: Bad login for bob from nowhere at all",
            "Jun  1 10:00:01 host app[1]: Bad key from 192.0.2.4",
            "Jun  1 10:00:01 host app[1]: Bad thing from 192.0.2.5",
            // Case-insensitive lead.
            "Jun  1 10:00:01 host app[1]: DENIED 192.0.2.6",
            // Unanchored regex: no lead, tried on every line, still in order.
            "Jun  1 10:00:02 host app[1]: Bad login for x from 192.0.2.7 rejected",
            "Jun  1 10:00:02 host app[1]: note: from 192.0.2.8 rejected",
            "Jun  1 10:00:02 host app[1]: hello from 192.0.2.9",
            // The prefix part would take the whole line: the full capture run decides.
            "Jun  1 10:00:03 host app[1]:",
            "Jun  1 10:00:03 host app[1]: x",
            "Jun  1 10:00:03 host other[1]: Bad login for bob from 192.0.2.1",
            "no date app: denied 192.0.2.10",
            "",
            // A newline inside the line: `.+$` does not reach past it.
            "Jun  1 10:00:04 host app[1]: Bad login for bob from 192.0.2.1\nx",
            "Jun  1 10:00:04 host app[1]: Bad login for bob\n from 192.0.2.1",
            "Jun  1 10:00:04 host app[1]:\nBad login for bob from 192.0.2.1",
            "Jun  1 10:00:04 host app[1]: x\nfrom 192.0.2.11 rejected",
        ],
    );
}

#[test]
fn prefregex_split_only_for_its_shape() {
    use crate::fail2ban::regex::{ContentSplit, F2bRegex, Split};
    let split = |p: &str| ContentSplit::new(p, &F2bRegex::new(p).unwrap());
    let ok = split(r"^(?P<mlfid>\S+ )(?P<content>.+)$").unwrap();
    assert!(matches!(
        ok.split("host rest"),
        Split::Content { at: 5, .. }
    ));
    assert_eq!(ok.split("host"), Split::Miss);
    // HEAD's own match leaves nothing: only the capture run knows ("hos" + "t"
    // cannot be, but a head that may shrink can).
    let shrink = split(r"^\S+\s*(?P<content>.+)$").unwrap();
    assert_eq!(shrink.split("abc"), Split::Unknown);
    assert!(matches!(
        shrink.split("abc d"),
        Split::Content { at: 4, .. }
    ));
    // A top-level alternative, no anchor, backtracking syntax or a content group
    // elsewhere: not this shape.
    assert!(split(r"^a|b(?P<content>.+)$").is_none());
    assert!(split(r"a(?P<content>.+)$").is_none());
    assert!(split(r"^a(?!b)(?P<content>.+)$").is_none());
    assert!(split(r"^a(?P<content>.+)x$").is_none());
    assert!(split(r"^(?P<content>.+)(?P<x>)$").is_none());
}

/// Debian's stock filters, where fail2ban is installed, over fail2ban's own
/// test logs: the shortcuts agree with the plain run line by line.
#[test]
fn stock_filters_same_as_reference() {
    let filters = std::path::Path::new("/etc/fail2ban/filter.d");
    let logs = std::path::Path::new("/usr/lib/python3/dist-packages/fail2ban/tests/files/logs");
    if !filters.is_dir() || !logs.is_dir() {
        eprintln!("skipped: fail2ban is not installed (no {})", logs.display());
        return;
    }
    for (filter, mode, log) in [
        ("sshd", "normal", "sshd"),
        ("sshd", "aggressive", "sshd"),
        ("sshd", "aggressive", "sshd-journal"),
        ("postfix", "aggressive", "postfix"),
        ("nginx-botsearch", "normal", "nginx-botsearch"),
        ("dovecot", "normal", "dovecot"),
    ] {
        let mut opts = BTreeMap::new();
        opts.insert("mode".to_owned(), mode.to_owned());
        let def = Definition::read(&filters.join(format!("{filter}.conf")), &opts).unwrap();
        let text = std::fs::read(logs.join(log)).unwrap();
        let text = String::from_utf8_lossy(&text);
        let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        same_as_reference(&def, &lines);
    }
}

/// A prefregex of sshd's shape, written here: `^(?P<mlfid>PREFIX)(?:error: )?`
/// then the content.
const SPLIT_PREF: &str = r"^(?P<mlfid>(?:\[\])?\s*(?:<[^.]+\.[^.]+>\s+)?(?:\S+\s+)?(?:(?:(?:\[\d+\])?:\s+[\[\(]?app(?:\(\S+\))?[\]\)]?:?|[\[\(]?app(?:\(\S+\))?[\]\)]?:?(?:\[\d+\])?:?)\s+)?)(?:(?:error|fatal): (?:PAM: )?)?(?P<content>.+)$";

proptest::proptest! {
    /// The split's DFA runs of HEAD's parts (`^(?P<g>X)` and `Y`) give the
    /// content and the group the capture engine gives on the whole prefregex.
    #[test]
    fn split_parts_same_as_capture_engine(
        pieces in proptest::collection::vec(proptest::sample::select(vec![
            "", " ", "  ", "host", "[]", "<a.b>", "app", "app[12]", "[app]", ":", "[7]:",
            "error: ", "fatal: PAM: ", "error:", "x", "\u{e9}", "(sub)", "\t",
        ]), 0..8),
    ) {
        use crate::fail2ban::regex::{ContentSplit, F2bRegex, Split};
        let full = F2bRegex::new(SPLIT_PREF).unwrap();
        let split = ContentSplit::new(SPLIT_PREF, &full).unwrap();
        let line: String = pieces.concat();
        let want = full.captures(&line);
        match split.split(&line) {
            Split::Miss => proptest::prop_assert!(want.is_none(), "{line:?}"),
            Split::Content { at, group } => {
                let want = want.expect("the prefregex matches");
                let got = split
                    .captures_split(&line, group.map(|(s, x)| (s, x, at)))
                    .unwrap();
                let again = split.captures(&line).unwrap();
                proptest::prop_assert_eq!(again.spans(), got.spans());
                proptest::prop_assert_eq!(got.name("content"), Some(&line[at..]));
                proptest::prop_assert_eq!(got.name("content"), want.name("content"), "{:?}", line);
                proptest::prop_assert_eq!(got.name("mlfid"), want.name("mlfid"), "{:?}", line);
            }
            Split::Unknown => {}
        }
    }
}

#[test]
fn sshd_shaped_prefregex_splits_in_parts() {
    use crate::fail2ban::regex::{ContentSplit, F2bRegex, Split};
    let full = F2bRegex::new(SPLIT_PREF).unwrap();
    let split = ContentSplit::new(SPLIT_PREF, &full).unwrap();
    assert!(split.is_parts());
    let line = "host app[3]: error: Bad thing";
    assert_eq!(
        split.split(line),
        Split::Content {
            at: 20,
            group: Some((0, 13))
        }
    );
    let g = split.captures(line).unwrap();
    assert_eq!(g.name("mlfid"), Some("host app[3]: "));
    assert_eq!(g.name("content"), Some("Bad thing"));
}

/// A filter whose failregexes the scan's one DFA searches together (all
/// anchored), but for an unanchored one and one on the backtracking
/// engine, among them, so the scan and the per-regex searches take turns.
const SCAN_FILTER: &str = r#"[Definition]
prefregex = ^<F-MLFID>\s*(?:\S+\s+)?app(?:\[\d+\])?:\s*</F-MLFID>(?:warn: )?<F-CONTENT>.+</F-CONTENT>$
failregex = ^Bad login for <F-USER>\S+|.*?</F-USER> from <HOST>(?: port \d+)?$
            ^Bad(?! key) \w+ from <HOST>$
            ^(?:Bad|bad) key from <HOST>\s*$
            from <HOST> rejected
            ^(?i)denied <F-USER>.*</F-USER> <HOST>$
            ^<F-NOFAIL>hello</F-NOFAIL> from <HOST>(?: (?P<x>\w+))?$
            ^
"#;

proptest::proptest! {
    #![proptest_config(proptest::test_runner::Config::with_cases(128))]
    /// The failregexes' one DFA search (and the split's own DFAs) give the
    /// verdicts, captures and session state of the per-regex searches,
    /// non-ASCII text (where the DFAs do not answer) included.
    #[test]
    fn scan_same_as_per_regex_search(
        pieces in proptest::collection::vec(proptest::sample::select(vec![
            "Bad", "bad", " login", " key", " thing", " for ", "bob", "b\u{f6}b", " from ",
            "192.0.2.1", "2001:db8::1", "host.example.org", " port 22", " rejected",
            "denied ", "DENIED ", "hello", " x", "warn: ", " ", "\u{3000}", "\u{e9}", ":",
        ]), 0..10),
        head in proptest::sample::select(vec![
            "Jun  1 10:00:00 host app[1]: ", "Jun  1 10:00:01 app: ", "app:", "h\u{e9} app: ",
            "other: ", "",
        ]),
    ) {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "scan.conf", SCAN_FILTER);
        let def = Definition::read(&dir.path().join("scan.conf"), &BTreeMap::new()).unwrap();
        let line = format!("{head}{}", pieces.concat());
        same_as_reference(&def, &[&line]);
    }
}

#[test]
fn scan_searches_the_anchored_fast_regexes() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "scan.conf", SCAN_FILTER);
    let def = Definition::read(&dir.path().join("scan.conf"), &BTreeMap::new()).unwrap();
    let m = Matcher::build(&def).unwrap();
    let scan = m.fail_scan().expect("some failregexes are anchored");
    // The look-ahead one runs on the backtracking engine, the unanchored
    // one may match anywhere: both are searched on their own.
    assert_eq!(
        scan.searched,
        vec![true, false, true, false, true, true, true]
    );
    same_as_reference(
        &def,
        &[
            "Jun  1 10:00:00 host app[1]: Bad login for bob from 192.0.2.1 port 22",
            "Jun  1 10:00:00 host app[1]: Bad thing from 192.0.2.2",
            "Jun  1 10:00:00 host app[1]: Bad key from 192.0.2.3 ",
            "Jun  1 10:00:00 host app[1]: hello from 192.0.2.4 there",
            "Jun  1 10:00:00 host app[1]: so from 192.0.2.5 rejected",
            "Jun  1 10:00:00 host app[1]: DENIED j\u{f6}rg 192.0.2.6",
            "Jun  1 10:00:00 host app[1]: anything else",
        ],
    );
}

/// `line` with the byte at `at` (if any) replaced by `with`, or cut there.
fn one_byte_off(line: &str, at: usize, with: char) -> String {
    let mut out: Vec<u8> = line.as_bytes().to_vec();
    match out.get_mut(at) {
        Some(_) if with == '\0' => out.truncate(at),
        Some(b) if with.is_ascii() => *b = with as u8,
        Some(_) => {
            out.splice(at..=at, with.to_string().bytes());
        }
        None => out.extend(with.to_string().bytes()),
    }
    String::from_utf8_lossy(&out).into_owned()
}

proptest::proptest! {
    /// The split resumed from the source's last line answers as the plain
    /// split on lines that share heads and part at any byte of the head or
    /// just after it.
    #[test]
    fn split_resumed_same_as_split(
        heads in proptest::collection::vec(proptest::collection::vec(proptest::sample::select(vec![
            " ", "  ", "host", "[]", "<a.b>", "app", "app[12]", "app[3]", "[app]", ":", "[7]:",
            "error: ", "fatal: PAM: ", "x", "\t", "(sub)",
        ]), 0..7), 1..4),
        rests in proptest::collection::vec(proptest::sample::select(vec![
            "", "Bad login", "error: no", "kx", " ", "x y", "\u{e9}t\u{e9}",
        ]), 1..4),
        offs in proptest::collection::vec((0usize..40, proptest::sample::select(vec![
            ' ', 'a', '[', ']', ':', '1', 'e', 'f', 'k', '\t', 'x', '(', '<', '.', '\u{e9}', '\0',
            '\n',
        ])), 0..24),
    ) {
        use crate::fail2ban::regex::{ContentSplit, F2bRegex, Resume};
        let full = F2bRegex::new(SPLIT_PREF).unwrap();
        let split = ContentSplit::new(SPLIT_PREF, &full).unwrap();
        let mut memo = Resume::default();
        for (i, (at, with)) in offs.iter().enumerate() {
            let head: String = heads[i % heads.len()].concat();
            let base = format!("{head}{}", rests[i % rests.len()]);
            for line in [one_byte_off(&base, *at % (head.len() + 2), *with), base.clone()] {
                proptest::prop_assert_eq!(
                    split.split_resumed(&line, &mut memo, !line.contains('\n')),
                    split.split(&line),
                    "{:?}",
                    line
                );
            }
        }
    }
}

/// The same on real lines, in order (fail2ban's own sshd.conf prefregex and
/// a real auth.log, where both are here), with their dates cut.
#[test]
fn split_resumed_same_on_real_lines() {
    use crate::fail2ban::regex::{ContentSplit, F2bRegex, Resume};
    let conf = std::path::Path::new("/etc/fail2ban/filter.d/sshd.conf");
    let (Ok(log), true) = (std::fs::read("/tmp/auth.log"), conf.is_file()) else {
        eprintln!("skipped: no /tmp/auth.log or sshd.conf");
        return;
    };
    let def = Definition::read(conf, &BTreeMap::new()).unwrap();
    let pref = def.prefregex.as_ref().unwrap();
    let text = python_text(pref, def.maxlines > 1);
    let full = F2bRegex::new(&text).unwrap();
    let split = ContentSplit::new(&text, &full).unwrap();
    assert!(split.is_parts());
    let log = String::from_utf8_lossy(&log);
    let mut memo = Resume::default();
    let mut content = 0;
    for line in log.lines() {
        let cut = line.get(15..).unwrap_or(line);
        let got = split.split_resumed(cut, &mut memo, true);
        assert_eq!(got, split.split(cut), "{cut:?}");
        content += usize::from(matches!(got, crate::fail2ban::regex::Split::Content { .. }));
    }
    assert!(content > log.lines().count() / 2);
}

/// One memo met by two splits in turn: each answers as its plain split.
#[test]
fn split_resumed_across_two_patterns() {
    use crate::fail2ban::regex::{ContentSplit, F2bRegex, Resume};
    let other = r"^(?P<mlfid>\S+ +)(?:e: )?(?P<content>.+)$";
    let a = ContentSplit::new(SPLIT_PREF, &F2bRegex::new(SPLIT_PREF).unwrap()).unwrap();
    let b = ContentSplit::new(other, &F2bRegex::new(other).unwrap()).unwrap();
    assert!(a.is_parts() && b.is_parts());
    let mut memo = Resume::default();
    for line in [
        "host app[3]: error: x",
        "host app[3]: e: x",
        "host app[3]:",
        "host",
        "",
        "host   app: y",
        "h\u{e9}st app: y",
        "host app[3]: error: x\ny",
    ] {
        for s in [&a, &b, &a] {
            let unbroken = !line.contains('\n');
            assert_eq!(
                s.split_resumed(line, &mut memo, unbroken),
                s.split(line),
                "{line:?}"
            );
        }
    }
}

proptest::proptest! {
    #[test]
    fn trim_brackets_same_as_trim_matches(h in "[\\[\\]a.:1\u{e9}\u{5b00}]{0,12}") {
        proptest::prop_assert_eq!(super::trim_brackets(&h), h.trim_matches(['[', ']']));
    }
}

#[test]
fn trim_brackets_edges() {
    for (h, want) in [
        ("", ""),
        ("[]", ""),
        ("]]", ""),
        ("[1.2.3.4]", "1.2.3.4"),
        ("[[::1]]", "::1"),
        ("a[b]c", "a[b]c"),
        ("[\u{e9}]", "\u{e9}"),
    ] {
        assert_eq!(super::trim_brackets(h), want, "{h:?}");
    }
}

proptest::proptest! {
    /// The one-pass reading answers as `from_utf8_lossy` and a newline
    /// search, on lines of every length around the word size, with newlines
    /// and non-ASCII bytes anywhere (the last word read again included).
    #[test]
    fn line_text_same_as_lossy(
        line in proptest::collection::vec(proptest::sample::select(vec![
            b'a', b' ', b'\n', b'\r', 0u8, 0x09, 0x0b, 0x7f, 0x80, 0xc3, 0xa9, 0xff,
        ]), 0..40),
    ) {
        let (text, unbroken) = super::line_text(&line);
        proptest::prop_assert_eq!(&text, &String::from_utf8_lossy(&line));
        proptest::prop_assert_eq!(unbroken, !line.contains(&b'\n'));
    }
}

/// Edge cases of the one-pass reading: a newline in each place of a short
/// line and of the overlapping last word, and a line of nothing.
#[test]
fn line_text_edges() {
    assert_eq!(super::line_text(b""), ("".into(), true));
    for len in 1..20 {
        let mut line = vec![b'x'; len];
        assert_eq!(super::line_text(&line), ("x".repeat(len).into(), true));
        for at in 0..len {
            line[at] = b'\n';
            assert!(!super::line_text(&line).1, "{len} {at}");
            line[at] = 0xe9;
            let (text, unbroken) = super::line_text(&line);
            assert!(unbroken && text.contains('\u{fffd}'), "{len} {at}");
            line[at] = b'x';
        }
    }
}

proptest::proptest! {
    /// A regex's carried groups and `alt_user` read by index are what
    /// reading every named group by name gives.
    #[test]
    fn named_by_index_same_as_by_name(
        names in proptest::strategy::Strategy::prop_shuffle(proptest::sample::subsequence(vec![
            "user", "alt_user", "alt_user_2", "alt_userx", "alt_user_", "ip4", "content",
            "mlfid", "nofail", "x",
        ], 0..10)),
        seps in proptest::collection::vec(proptest::sample::select(vec!["b", "x", ""]), 10),
        line in "[abx]{0,12}",
    ) {
        let body: String = names
            .iter()
            .zip(&seps)
            .map(|(n, sep)| format!("(?:(?P<{n}>a*){sep})?"))
            .collect();
        let re = F2bRegex::new(&format!("^(?:a|(b))?{body}")).unwrap();
        let named = Named::new(re.group_names());
        let Some(g) = re.captures(&line) else {
            return Ok(());
        };
        let want: Vec<(&str, &str)> = g.named().filter(|(n, _)| !MACHINERY.contains(n)).collect();
        let got: Vec<(&str, &str)> = named.carried(&g).map(|(n, v)| (&**n, v)).collect();
        proptest::prop_assert_eq!(got, want);
        let want = g
            .named()
            .find(|(n, v)| !v.is_empty() && is_alt_user(n))
            .map(|(_, v)| v);
        proptest::prop_assert_eq!(named.alt_user(&g), want);
    }
}

#[test]
fn named_skips_machinery_and_unnamed_groups() {
    let re =
        F2bRegex::new(r"^(?P<mlfid>a)(b)(?P<user>c)(?P<alt_user_1>d*)(?P<alt_user>e)(?P<ip4>f)$")
            .unwrap();
    let named = Named::new(re.group_names());
    let g = re.captures("abcef").unwrap();
    let carried: Vec<(&str, &str)> = named.carried(&g).map(|(n, v)| (&**n, v)).collect();
    assert_eq!(
        carried,
        vec![("user", "c"), ("alt_user_1", ""), ("alt_user", "e")]
    );
    // The first alt_user is empty: the next one answers.
    assert_eq!(named.alt_user(&g), Some("e"));
}

/// The session table as a plain model: every line updates its session as a
/// non-forgetting line would, then a forgetting line drops it. `note`'s
/// single look-up for forgetting lines must answer the same.
fn note_by_update(
    open: &mut std::collections::HashMap<String, (Option<String>, bool, SystemTime)>,
    id: &str,
    user: Option<&str>,
    forget: bool,
    at: SystemTime,
) -> bool {
    let fresh = |seen: SystemTime| {
        at.duration_since(seen)
            .map_or(true, |d| d <= SessionUsers::KEEP)
    };
    let several = match open.get_mut(id) {
        Some(e) if fresh(e.2) => {
            e.2 = at;
            match (&e.0, user) {
                (Some(first), Some(u)) if first != u => e.1 = true,
                (None, Some(u)) => e.0 = Some(u.to_owned()),
                _ => {}
            }
            e.1
        }
        _ => {
            open.insert(id.to_owned(), (user.map(str::to_owned), false, at));
            false
        }
    };
    if forget {
        open.remove(id);
    }
    several
}

proptest::proptest! {
    #[test]
    fn session_note_agrees_with_update_then_remove(
        steps in proptest::collection::vec((
            proptest::sample::select(vec!["1", "2", "3"]),
            proptest::option::of(proptest::sample::select(vec!["root", "admin", ""])),
            proptest::bool::weighted(0.3),
            0u64..400,
        ), 0..40),
    ) {
        let mut users = SessionUsers::default();
        let mut model = std::collections::HashMap::new();
        let mut at = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
        for (id, user, forget, gap) in steps {
            at += std::time::Duration::from_secs(gap);
            let got = users.note(id, user, forget, at);
            let want = note_by_update(&mut model, id, user, forget, at);
            proptest::prop_assert_eq!(got, want, "{} {:?} {}", id, user, forget);
            proptest::prop_assert_eq!(users.open.len(), model.len());
        }
    }
}

#[test]
fn a_forgetting_line_naming_a_second_user_counts_as_several_and_ends_the_session() {
    let mut users = SessionUsers::default();
    let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
    assert!(!users.note("7", Some("root"), false, at));
    assert!(users.note("7", Some("admin"), true, at));
    assert!(users.open.is_empty());
    // A stale session is not several: fail2ban had forgotten it.
    assert!(!users.note("8", Some("root"), false, at));
    let later = at + SessionUsers::KEEP + std::time::Duration::from_secs(1);
    assert!(!users.note("8", Some("admin"), true, later));
    assert!(users.open.is_empty());
}
