//! `log2drop test` as users run it: the built binary over sample files, stdin and
//! gzip, checking its output and exit status.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const AUTH_LOG: &str = "\
May 19 10:00:00 web1 sshd[1]: Failed password for root from 203.0.113.4 port 52311 ssh2
May 19 10:00:01 web1 CRON[2]: pam_unix(cron:session): session opened for user root(uid=0) by root(uid=0)
May 19 10:00:02 web1 sshd[3]: Invalid user admin from 198.51.100.7 port 40000
May 19 10:00:02 web1 sshd[3]: Connection closed by invalid user admin 198.51.100.7 port 40000 [preauth]
May 19 10:00:03 web1 sshd[5]: Accepted publickey for alice from 192.0.2.50 port 5100 ssh2: ED25519 SHA256:abc
May 19 10:00:04 web1 sshd[4]: Failed password for invalid user backup from 203.0.113.4 port 52312 ssh2
";

fn log2drop(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_log2drop"))
        .arg("test")
        .args(args)
        .env("TZ", "UTC")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run log2drop");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin");
        pipe.write_all(input).expect("write stdin");
    }
    child.wait_with_output().expect("wait")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn write(dir: &Path, name: &str, content: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, content).expect("write sample");
    path
}

fn arg(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

#[test]
fn json_prints_one_object_per_matched_line_and_nothing_else() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = write(dir.path(), "auth.log", AUTH_LOG.as_bytes());
    let out = log2drop(&["--json", "sshd", arg(&log)], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}")))
        .collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    let hosts: Vec<(u64, &str)> = lines
        .iter()
        .map(|v| {
            (
                v["line"].as_u64().expect("line"),
                v["host"].as_str().expect("host"),
            )
        })
        .collect();
    assert_eq!(
        hosts,
        [(1, "203.0.113.4"), (4, "198.51.100.7"), (6, "203.0.113.4")]
    );
    assert!(lines.iter().all(|v| v["filter"] == "sshd"));
    // Syslog lines carry their own time; the year is the one before now.
    let time = lines[0]["time"].as_str().expect("time");
    assert!(time.ends_with("-05-19T10:00:00Z"), "{time}");
}

#[test]
fn json_time_is_null_without_a_timestamp() {
    let out = log2drop(
        &["--json", "--regex", "^login failed from <HOST>$", "-"],
        Some(b"login failed from 192.0.2.9\nlogin ok from 192.0.2.8\n"),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "{\"line\":1,\"host\":\"192.0.2.9\",\"addresses\":[\"192.0.2.9\"],\"filter\":\"--regex\",\"time\":null}\n"
    );
}

#[test]
fn human_summary_counts_regexes_and_addresses() {
    let out = log2drop(&["sshd", "-"], Some(AUTH_LOG.as_bytes()));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    assert!(
        s.contains("lines: 6 read, 5 matched, 0 ignored, 1 missed"),
        "{s}"
    );
    // The invalid user's line and the line that closed its session are one
    // attempt; the login counts nothing.
    assert!(
        s.contains("offences: 3 (2 matched session lines did not count on their own"),
        "{s}"
    );
    // Failed passwords twice; the invalid user, the close and the login once.
    // Which regex of a role took the line depends on the filter's order, so
    // only the role and the count are checked.
    for (role, n) in [
        ("regex", "2"),
        ("address", "1"),
        ("end", "1"),
        ("success", "1"),
    ] {
        let hit = s.lines().any(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            l.starts_with("  ") && cols.len() > 3 && cols[0] == role && cols[2] == n
        });
        assert!(hit, "no {role} row counting {n} in {s}");
    }
    assert!(s.contains("2 distinct"), "{s}");
    assert!(s.contains("         2  203.0.113.4"), "{s}");
    assert!(s.contains("lines/s"), "{s}");
}

#[test]
fn gzip_input_gives_the_same_hits_as_plain() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plain = write(dir.path(), "auth.log", AUTH_LOG.as_bytes());
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(AUTH_LOG.as_bytes()).expect("gzip");
    let gz = write(dir.path(), "auth.log.2.gz", &gz.finish().expect("gzip"));
    let a = log2drop(&["--json", "sshd", arg(&plain)], None);
    let b = log2drop(&["--json", "sshd", arg(&gz)], None);
    assert!(b.status.success(), "{}", text(&b.stderr));
    assert_eq!(text(&a.stdout), text(&b.stdout));
    assert_eq!(text(&b.stdout).lines().count(), 3);
}

#[test]
fn xz_and_bzip2_input_give_the_same_hits_as_plain_whatever_the_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plain = write(dir.path(), "auth.log", AUTH_LOG.as_bytes());
    let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 6);
    xz.write_all(AUTH_LOG.as_bytes()).expect("xz");
    let xz = xz.finish().expect("xz");
    let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
    bz.write_all(AUTH_LOG.as_bytes()).expect("bzip2");
    let bz = bz.finish().expect("bzip2");
    let want = log2drop(&["--json", "sshd", arg(&plain)], None);
    assert_eq!(text(&want.stdout).lines().count(), 3);
    for path in [
        write(dir.path(), "auth.log.2.xz", &xz),
        write(dir.path(), "auth.log.3", &xz),
        write(dir.path(), "auth.log.4.bz2", &bz),
        write(dir.path(), "auth.log.5", &bz),
    ] {
        let out = log2drop(&["--json", "sshd", arg(&path)], None);
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert_eq!(text(&out.stdout), text(&want.stdout), "{}", path.display());
    }
    // Through stdin too: the format is told by the bytes.
    let out = log2drop(&["--json", "sshd", "-"], Some(&bz));
    assert_eq!(text(&out.stdout), text(&want.stdout));
}

#[test]
fn binary_or_unreadable_compressed_input_fails_clearly_and_prints_no_garbage() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Binary data (no known magic) under a log's name.
    let mut binary = b"\x7fELF\x02\x01\x01\x00".to_vec();
    binary.extend((0..2048u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8));
    binary.extend_from_slice(AUTH_LOG.as_bytes());
    let bin = write(dir.path(), "auth.log.1", &binary);
    let out = log2drop(&["sshd", arg(&bin)], None);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("auth.log.1"), "{err}");
    assert!(err.contains("not a text log"), "{err}");
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    // A compressed format log2drop recognises but does not read.
    let lz4 = write(
        dir.path(),
        "auth.log.2.lz4",
        b"\x04\x22\x4d\x18\x64\x40\xa7data",
    );
    let out = log2drop(&["--json", "sshd", arg(&lz4)], None);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("lz4 data, which log2drop does not read"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn print_missed_and_ignored() {
    let out = log2drop(
        &[
            "--regex",
            "from <HOST> port",
            "--ignore",
            "for root ",
            "--print-missed",
            "--print-ignored",
            "-",
        ],
        Some(AUTH_LOG.as_bytes()),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    assert!(s.contains("ignored 1: May 19 10:00:00"), "{s}");
    assert!(s.contains("missed 2: May 19 10:00:01 web1 CRON"), "{s}");
    assert!(!s.contains("missed 3:"), "{s}");
    assert!(
        s.contains("missed 4: May 19 10:00:02 web1 sshd[3]: Connection"),
        "{s}"
    );
    assert!(
        s.contains("lines: 6 read, 3 matched, 1 ignored, 2 missed"),
        "{s}"
    );
}

#[test]
fn filters_from_a_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write(
        dir.path(),
        "log2drop.toml",
        br#"
[backends.dry-run]

[filters.app-login]
regex = ['^\S+ login failed for \S+ from <HOST>$']
datepattern = "iso8601"
timezone = "UTC"

[sources.app]
path = "/var/log/app.log"
filters = ["app-login"]

[jails.app]
filters = ["app-login"]
"#,
    );
    let out = log2drop(
        &["--json", "--config", arg(&config), "app-login", "-"],
        Some(b"2026-05-19T10:00:00Z login failed for bob from 2001:db8::3\n"),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "{\"line\":1,\"host\":\"2001:db8::3\",\"addresses\":[\"2001:db8::3\"],\"filter\":\"app-login\",\"time\":\"2026-05-19T10:00:00Z\"}\n"
    );
}

#[test]
fn bad_regex_fails_with_its_position() {
    let out = log2drop(&["--regex", "from <HOST> port (\\d+", "-"], Some(b""));
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("unclosed group at offset 17"), "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn unreadable_file_and_unknown_filter_fail_clearly() {
    let out = log2drop(&["sshd", "/nonexistent/auth.log"], None);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("/nonexistent/auth.log"), "{err}");

    let out = log2drop(&["no-such-filter", "-"], Some(b""));
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("unknown filter \"no-such-filter\""), "{err}");
    assert!(err.contains("sshd"), "lists the built-in filters: {err}");
}

/// `log2drop ARGS...` (any subcommand), without stdin.
fn log2drop_cmd(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_log2drop"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run log2drop")
}

/// The built-in filters shipped in the source tree, by file name.
fn shipped_filters() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/filter/builtin");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("builtin dir")
        .filter_map(|e| {
            let name = e.expect("entry").file_name().into_string().expect("utf-8");
            name.strip_suffix(".toml").map(str::to_owned)
        })
        .collect();
    names.sort();
    names
}

#[test]
fn filters_lists_every_builtin_with_services_and_modes() {
    let out = log2drop_cmd(&["filters", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let all: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("JSON array");
    let names: Vec<&str> = all
        .iter()
        .map(|f| f["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, shipped_filters());
    for f in &all {
        assert!(!f["description"].as_str().expect("description").is_empty());
        assert!(!f["log"].as_str().expect("log").is_empty(), "{f}");
        let services = f["services"].as_array().expect("services");
        assert!(!services.is_empty(), "{f}");
        let modes: Vec<&str> = f["modes"]
            .as_array()
            .expect("modes")
            .iter()
            .map(|m| m["name"].as_str().expect("mode name"))
            .collect();
        assert_eq!(modes.first(), Some(&"normal"), "{f}");
        // Every mode the shipped file defines is listed.
        let name = f["name"].as_str().expect("name");
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("src/filter/builtin/{name}.toml"));
        let file: toml::Table =
            toml::from_str(&std::fs::read_to_string(path).expect("file")).expect("TOML");
        let shipped: Vec<&str> = file["filter"]
            .get("modes")
            .and_then(|m| m.as_table())
            .map(|t| t.keys().map(String::as_str).collect())
            .unwrap_or_default();
        assert_eq!(&modes[1..], shipped.as_slice(), "{f}");
    }
    // The text listing names each filter once at the start of a line, with its
    // services under it.
    let out = log2drop_cmd(&["filters"]);
    assert!(out.status.success());
    let listing = text(&out.stdout);
    for name in shipped_filters() {
        assert!(
            listing.lines().any(|l| l.starts_with(&format!("{name} "))),
            "{name} missing from:\n{listing}"
        );
    }
    assert!(listing.contains("services: OpenSSH"), "{listing}");
    assert!(listing.contains("modes: normal, aggressive"), "{listing}");
    assert!(
        listing.contains(&format!("\n{} built-in filters.", shipped_filters().len())),
        "{listing}"
    );
    assert!(listing.contains("filters show NAME"), "{listing}");
}

#[test]
fn filters_show_prints_regexes_settings_and_samples() {
    let out = log2drop_cmd(&["filters", "show", "sshd", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let f: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON object");
    assert_eq!(f["name"], "sshd");
    assert_eq!(f["settings"]["prefix"], "syslog");
    assert!(
        f["settings"]["programs"]
            .as_array()
            .expect("programs")
            .iter()
            .any(|p| p == "sshd")
    );
    // The regexes are the shipped file's.
    assert_eq!(json_list(&f["regex"]), shipped_list("sshd", None, "regex"));
    let samples = f["samples"].as_array().expect("samples");
    assert!(samples.iter().any(|s| s["host"].is_string()));
    assert!(samples.iter().any(|s| s["host"].is_null()));
    assert!(samples.iter().any(|s| s["inject"] == true));

    let out = log2drop_cmd(&["filters", "show", "mysqld-auth"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    for part in [
        "mysqld-auth: MySQL",
        "services: MySQL",
        "datepattern = \"iso8601\"",
        "regex (each line is one failed attempt: it always counts):\n   0  ^",
        "samples that match",
        "      -> 203.0.113.4",
        "samples that must not match:",
        "injection attempts",
    ] {
        assert!(shown.contains(part), "{part:?} missing from:\n{shown}");
    }
}

/// The list `key` of the `[filter]` table (or of `[filter.modes.MODE]`) of a
/// shipped built-in file.
fn shipped_list(name: &str, mode: Option<&str>, key: &str) -> Vec<String> {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("src/filter/builtin/{name}.toml"));
    let file: toml::Table =
        toml::from_str(&std::fs::read_to_string(&path).expect("built-in file")).expect("TOML");
    let mut table = &file["filter"];
    if let Some(m) = mode {
        table = &table["modes"][m];
    }
    table
        .get(key)
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .map(|r| r.as_str().expect("str").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn json_list(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .expect("list")
        .iter()
        .map(|r| r.as_str().expect("str").to_owned())
        .collect()
}

#[test]
fn filters_show_prints_every_session_role_and_what_a_mode_adds() {
    let roles = [
        "regex", "attempt", "address", "end", "success", "carry", "ignore",
    ];
    let out = log2drop_cmd(&["filters", "show", "sshd", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let f: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON object");
    assert_eq!(f["mode"], "normal");
    for key in roles {
        assert_eq!(json_list(&f[key]), shipped_list("sshd", None, key), "{key}");
    }
    assert!(!json_list(&f["carry"]).is_empty(), "sshd has carry lines");
    assert!(f["settings"]["session_window"].is_string(), "{f}");
    // `Disconnecting: Too many authentication failures` names no client.
    let hostless = json_list(&f["hostless"]);
    assert!(!hostless.is_empty(), "{f}");
    for h in &hostless {
        let (key, i) = h.trim_end_matches(']').split_once('[').expect("ROLE[I]");
        let re = &json_list(&f[key])[i.parse::<usize>().expect("index")];
        assert!(!re.contains("<HOST>"), "{h}: {re}");
    }
    let aggressive = f["modes"]
        .as_array()
        .expect("modes")
        .iter()
        .find(|m| m["name"] == "aggressive")
        .expect("sshd has mode aggressive");
    assert!(
        !aggressive["description"]
            .as_str()
            .expect("description")
            .is_empty()
    );
    assert_eq!(
        json_list(&aggressive["adds"]["attempt"]),
        shipped_list("sshd", Some("aggressive"), "attempt")
    );

    // The text names every role and marks the hostless regexes.
    let out = log2drop_cmd(&["filters", "show", "sshd"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    for part in [
        "\nregex (each line is one failed attempt",
        "\nattempt (",
        "\naddress (",
        "\nend (",
        "\nsuccess (",
        "\ncarry (",
        "Connection from <HOST> port",
        "(no <HOST>: the address its session named)",
        "Disconnecting: Too many authentication failures",
        "session_window = ",
        "programs = [\"sshd\"",
        "(line time from the syslog prefix)",
        "\nmode aggressive adds",
        "kex_exchange_identification",
        "[mode aggressive] ",
        "(held: ",
    ] {
        assert!(shown.contains(part), "{part:?} missing from:\n{shown}");
    }

    // --mode: the mode's regexes (marked +) in front of the filter's own, and
    // only that mode's samples.
    let out = log2drop_cmd(&["filters", "show", "sshd", "--mode", "aggressive", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let f: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON object");
    assert_eq!(f["mode"], "aggressive");
    for key in roles {
        let mut want = shipped_list("sshd", Some("aggressive"), key);
        want.extend(shipped_list("sshd", None, key));
        assert_eq!(json_list(&f[key]), want, "{key}");
    }
    let samples = f["samples"].as_array().expect("samples");
    assert!(!samples.is_empty());
    assert!(samples.iter().all(|s| s["mode"] == "aggressive"), "{f}");
    let out = log2drop_cmd(&["filters", "show", "sshd", "--mode", "aggressive"]);
    let shown = text(&out.stdout);
    assert!(shown.contains("aggressive (shown)"), "{shown}");
    assert!(shown.contains("regexes in mode aggressive"), "{shown}");
    assert!(shown.contains(" + 0  ^drop connection"), "{shown}");
    assert!(!shown.contains("[mode "), "{shown}");

    let out = log2drop_cmd(&["filters", "show", "sshd", "--mode", "paranoid"]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("no mode \"paranoid\""), "{err}");
    assert!(err.contains("normal, aggressive"), "{err}");

    // A plain filter: failure regexes only, no session, no modes.
    let out = log2drop_cmd(&["filters", "show", "mysqld-auth", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let f: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON object");
    assert_eq!(
        json_list(&f["regex"]),
        shipped_list("mysqld-auth", None, "regex")
    );
    for key in ["attempt", "address", "end", "success", "carry"] {
        assert!(json_list(&f[key]).is_empty(), "{key}: {f}");
    }
    assert!(f["settings"]["session_window"].is_null(), "{f}");
    assert_eq!(f["modes"].as_array().expect("modes").len(), 1);
    let out = log2drop_cmd(&["filters", "show", "mysqld-auth"]);
    let shown = text(&out.stdout);
    for absent in [
        "attempt (",
        "carry (",
        "session_window",
        "mode aggressive",
        "(no <HOST>",
    ] {
        assert!(!shown.contains(absent), "{absent:?} in:\n{shown}");
    }
}

#[test]
fn filters_show_toml_is_the_shipped_file_and_unknown_names_fail_clearly() {
    let out = log2drop_cmd(&["filters", "show", "dovecot", "--toml"]);
    assert!(out.status.success());
    let shipped = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("src/filter/builtin/dovecot.toml"),
    )
    .expect("dovecot.toml");
    assert_eq!(text(&out.stdout), shipped);

    let out = log2drop_cmd(&["filters", "show", "no-such-filter"]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("no built-in filter \"no-such-filter\""),
        "{err}"
    );
    assert!(err.contains("sshd"), "lists the built-ins: {err}");
    assert!(out.stdout.is_empty());

    let out = log2drop_cmd(&["filters", "--help"]);
    assert!(out.status.success());
    let help = text(&out.stdout);
    assert!(help.contains("show"), "{help}");
    assert!(help.contains("--json"), "{help}");

    let out = log2drop_cmd(&["filters", "show", "--help"]);
    assert!(out.status.success());
    let help = text(&out.stdout);
    for part in [
        "--mode",
        "attempt",
        "carry",
        "session_window",
        "ignore",
        "sample",
    ] {
        assert!(help.contains(part), "{part:?} missing from:\n{help}");
    }
}

#[test]
fn summary_counts_each_capture_name_apart_most_seen_first() {
    let log = "\
Failed password for root from 203.0.113.4 port 1
Failed password for admin from 203.0.113.4 port 2
Failed publickey for root from 198.51.100.7 port 3
Failed password for root from 198.51.100.7 port 4
Failed password for bad\x1b[31muser from 198.51.100.7 port 5
";
    let out = log2drop(
        &[
            "--regex",
            r"^Failed (?P<method>\S+) for (?P<user>\S+) from <HOST> port \d+$",
            "-",
        ],
        Some(log.as_bytes()),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let expected = "\
captures method: 2 distinct; top 2:
           4  password
           1  publickey
captures user: 3 distinct; top 3:
           3  root
           1  admin
           1  bad\\u{1b}[31muser
";
    assert!(stdout.contains(expected), "{stdout}");
}
