//! Importing a hand-written fail2ban directory.

use super::*;

fn write(dir: &Path, name: &str, text: &str) {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

fn tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "paths-test.conf",
        "[DEFAULT]\nauth_log = /var/log/test-auth.log\nweb_log = /var/log/web/*.log\n",
    );
    write(
        d,
        "jail.conf",
        r#"[INCLUDES]
before = paths-test.conf

[DEFAULT]
ignoreip = 127.0.0.1/8 ::1
ignoreself = true
maxretry = 5
findtime = 10m
bantime = 1h
backend = auto
usedns = no
banaction = nftables-multiport
action = %(banaction)s[port="%(port)s"]
port = 0:65535
filter = %(__name__)s[mode=%(mode)s]
mode = normal
enabled = false

[authd]
logpath = %(auth_log)s

[webd]
port = http,https
logpath = %(web_log)s
          /srv/other/access.log tail

[journald]
backend = systemd
filter = authd

[disabled]
logpath = /var/log/x.log

[nofilterfile]
enabled = true
logpath = /var/log/x.log
"#,
    );
    write(
        d,
        "jail.d/10-enable.conf",
        "[authd]\nenabled = true\n[webd]\nenabled = true\n",
    );
    write(
        d,
        "jail.local",
        r#"[DEFAULT]
ignoreip = 127.0.0.1/8 ::1 192.0.2.0/24 admin.example.org file:%(here)s/allow.txt
here = HERE
bantime.increment = true
bantime.multipliers = 1 2 4 8
bantime.rndtime = 5m

[authd]
mode = aggressive
maxretry = 3
findtime = 1h30m
action = %(banaction)s[port="%(port)s"]
         sendmail-whois[name=authd]

[journald]
enabled = true
bantime = -1
"#,
    );
    write(d, "jail.d/20-late.local", "[webd]\nmaxretry = 7\n");
    write(
        d,
        "allow.txt",
        "# admins\n198.51.100.0/24\n203.0.113.5 # one host\n",
    );
    write(
        d,
        "filter.d/authd.conf",
        "[Definition]\nfailregex = ^auth fail from <HOST>$\n  <mdre-<mode>>\nmdre-normal =\nmdre-aggressive = ^probe from <HOST>$\njournalmatch = _SYSTEMD_UNIT=authd.service + _COMM=authd\n",
    );
    write(
        d,
        "filter.d/webd.conf",
        "[Definition]\nfailregex = ^<HOST> .* 401$\n",
    );
    write(
        d,
        "filter.d/disabled.conf",
        "[Definition]\nfailregex = ^x <HOST>$\n",
    );
    let text = std::fs::read_to_string(d.join("jail.local"))
        .unwrap()
        .replace("HERE", &d.display().to_string());
    write(d, "jail.local", &text);
    dir
}

fn notes_of<'a>(i: &'a Imported, jail: &str) -> Vec<&'a str> {
    i.notes
        .iter()
        .filter(|n| n.jail == jail)
        .map(|n| n.message.as_str())
        .collect()
}

#[test]
fn hand_written_jail_tree() {
    let dir = tree();
    let i = import(&ImportOptions {
        dir: dir.path().to_owned(),
        all: false,
        inline: false,
        enforce: Enforce::Nftables,
    })
    .unwrap();
    let cfg: toml::Table = toml::from_str(&i.toml).unwrap();
    let jails = cfg["jails"].as_table().unwrap();
    let names: Vec<&String> = jails.keys().collect();
    assert_eq!(names, ["authd", "journald", "webd"], "{}", i.toml);
    assert_eq!(i.jails, 3);

    let authd = &jails["authd"];
    assert_eq!(authd["maxretry"].as_integer(), Some(3));
    assert_eq!(authd["findtime"].as_str(), Some("90m"));
    assert_eq!(authd["bantime"].as_str(), Some("1h"));
    assert_eq!(authd["bantime_factor"].as_float(), Some(2.0));
    assert_eq!(authd["bantime_max"].as_str(), Some("8h"));
    assert_eq!(jails["webd"]["maxretry"].as_integer(), Some(7));
    // usedns = no: host names in the jail's lines do not count.
    assert_eq!(authd["use_dns"].as_str(), Some("no"));
    // bantime = -1: as long as it gets, then permanent.
    assert_eq!(jails["journald"]["permanent_after"].as_integer(), Some(1));

    // Filters by path; the aggressive authd and the journal authd differ in
    // options, so they are two filters.
    let filters = cfg["filters"].as_table().unwrap();
    let authd_f = &filters["authd"];
    assert!(
        authd_f["fail2ban"]
            .as_str()
            .unwrap()
            .ends_with("filter.d/authd.conf")
    );
    assert_eq!(authd_f["options"]["mode"].as_str(), Some("aggressive"));
    let journal_f = &filters["authd-journald"];
    assert_eq!(journal_f["options"]["logtype"].as_str(), Some("journal"));

    // Sources: the file, the glob plus the second path, and the journal match.
    let sources = cfg["sources"].as_table().unwrap();
    assert_eq!(
        sources["authd"]["path"].as_str(),
        Some("/var/log/test-auth.log")
    );
    assert_eq!(sources["webd"]["path"].as_str(), Some("/var/log/web/*.log"));
    assert_eq!(
        sources["webd-2"]["path"].as_str(),
        Some("/srv/other/access.log")
    );
    assert_eq!(sources["journald"]["type"].as_str(), Some("journal"));
    let m: Vec<&str> = sources["journald"]["match"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(m, ["_SYSTEMD_UNIT=authd.service", "+", "_COMM=authd"]);

    // Allowlist: addresses, CIDRs, names and the file's entries.
    let allow: Vec<&str> = cfg["agent"]["allow"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for a in [
        "192.0.2.0/24",
        "admin.example.org",
        "198.51.100.0/24",
        "203.0.113.5",
    ] {
        assert!(allow.contains(&a), "{a} in {allow:?}");
    }
    assert!(cfg["backends"].get("nftables").is_some());

    // What did not carry over is said, per jail.
    let a = notes_of(&i, "authd");
    assert!(a.iter().any(|n| n.contains("sendmail-whois")), "{a:?}");
    assert!(a.iter().any(|n| n.contains("rndtime")), "{a:?}");
    let w = notes_of(&i, "webd");
    assert!(w.iter().any(|n| n.contains("every port")), "{w:?}");
    assert!(w.iter().any(|n| n.contains("\"tail\"")), "{w:?}");
    assert!(
        notes_of(&i, "nofilterfile")
            .iter()
            .any(|n| n.contains("does not exist"))
    );
    assert!(
        notes_of(&i, "DEFAULT")
            .iter()
            .any(|n| n.contains("allow.txt"))
    );

    // The config loads and validates like any other.
    let out = dir.path().join("imported.toml");
    std::fs::write(&out, &i.toml).unwrap();
    crate::config::load(&out).unwrap();
}

#[test]
fn all_takes_disabled_jails_and_inline_copies_definitions() {
    let dir = tree();
    let i = import(&ImportOptions {
        dir: dir.path().to_owned(),
        all: true,
        inline: true,
        enforce: Enforce::DryRun,
    })
    .unwrap();
    let cfg: toml::Table = toml::from_str(&i.toml).unwrap();
    assert!(cfg["jails"].get("disabled").is_some());
    let f = &cfg["filters"]["authd"];
    assert!(f.get("fail2ban").is_none(), "{:?}", i.notes);
    let text = f["fail2ban_inline"].as_str().unwrap();
    assert!(text.contains("^probe from <HOST>$"), "{text}");
    assert!(cfg["backends"].get("dry-run").is_some());
    let out = dir.path().join("inline.toml");
    std::fs::write(&out, &i.toml).unwrap();
    crate::config::load(&out).unwrap();
}

#[test]
fn nothing_to_import() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        import(&ImportOptions {
            dir: dir.path().to_owned(),
            all: false,
            inline: false,
            enforce: Enforce::Nftables,
        }),
        Err(ImportError::NoJails(_))
    ));
}

#[test]
fn fail2ban_times() {
    assert_eq!(parse_time("600").unwrap(), Some(600));
    assert_eq!(parse_time("10m").unwrap(), Some(600));
    assert_eq!(parse_time("1h30m").unwrap(), Some(5400));
    assert_eq!(parse_time("1w").unwrap(), Some(604_800));
    assert_eq!(parse_time("-1").unwrap(), None);
    assert!(parse_time("ten").is_err());
    assert_eq!(dur(5400), "90m");
    assert_eq!(dur(604_800), "1w");
    assert_eq!(dur(61), "61s");
}
