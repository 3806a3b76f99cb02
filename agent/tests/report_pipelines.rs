//! `log2drop report` against the pipelines admins run today: fail2ban logs in the
//! 0.8 and 1.x formats, plain and gzipped, counted by `zgrep | awk | sort |
//! uniq -c` and by `--by ip`, `--by subnet --prefix 16`, `--by jail` and
//! `--by day`, which must agree exactly; then the same views over the state
//! database and the log of a real agent (`log2drop run`, dry-run backend) that
//! banned addresses in two jails.

mod report_common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn log2drop() -> Command {
    Command::new(env!("CARGO_BIN_EXE_log2drop"))
}

/// `log2drop report ARGS --json`: the first view's rows as key -> count, the key
/// being the `key_cols` joined by a space.
fn report(args: &[&str], key_cols: &[&str], count_col: &str) -> BTreeMap<String, u64> {
    let mut args = args.to_vec();
    args.push("--json");
    let out = report_common::report_ok(&args);
    let v: serde_json::Value = serde_json::from_slice(&out).expect("report JSON");
    let mut map = BTreeMap::new();
    for row in v["views"][0]["rows"].as_array().expect("rows") {
        let key: Vec<&str> = key_cols
            .iter()
            .map(|c| row[*c].as_str().expect("key column"))
            .collect();
        let n = row[count_col].as_u64().expect("count column");
        assert!(
            map.insert(key.join(" "), n).is_none(),
            "duplicate row {row}"
        );
    }
    map
}

/// Runs a shell pipeline ending in `uniq -c` and reads it as key -> count.
fn pipeline(script: &str) -> BTreeMap<String, u64> {
    let out = Command::new("bash")
        .args(["-o", "pipefail", "-c", script])
        .env("LC_ALL", "C")
        .output()
        .expect("run bash");
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .lines()
        .map(|l| {
            let l = l.trim_start();
            let (n, key) = l.split_once(' ').expect("uniq -c line");
            (key.to_owned(), n.parse().expect("count"))
        })
        .collect()
}

fn cat<'a>(a: &[&'a str], b: &[&'a str]) -> Vec<&'a str> {
    a.iter().chain(b).copied().collect()
}

/// A reproducible stream of numbers without a dependency.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

const ADDRS: [&str; 12] = [
    "192.0.2.10",
    "192.0.2.77",
    "192.0.2.200",
    "198.51.100.3",
    "198.51.100.4",
    "198.51.100.250",
    "203.0.113.9",
    "203.0.113.10",
    "203.0.113.99",
    "2001:db8::1",
    "2001:db8:0:1::7",
    "2001:db8:ffff::42",
];
const JAILS: [&str; 3] = ["sshd", "nginx-http-auth", "postfix"];

/// One file's lines: `bans` bans with what fail2ban writes around them, on days
/// from `first_day` of November 2026, in the old (0.8) or new (0.9+) format.
fn fail2ban_lines(rng: &mut Lcg, first_day: u32, bans: usize, old: bool) -> String {
    let mut out = String::new();
    let mut secs = 0u32;
    let put = |out: &mut String, secs: u32, logger: &str, level: &str, msg: &str| {
        let day = first_day + secs / 86_400;
        let s = secs % 86_400;
        let stamp = format!(
            "2026-11-{day:02} {:02}:{:02}:{:02},{:03}",
            s / 3600,
            s / 60 % 60,
            s % 60,
            secs % 1000
        );
        if old {
            // %(name)-16s: %(levelname)-6s
            out.push_str(&format!("{stamp} {logger:<16}: {level:<6} {msg}\n"));
        } else {
            // %(name)-24s[%(process)d]: %(levelname)-7s
            out.push_str(&format!("{stamp} {logger:<24}[4242]: {level:<7} {msg}\n"));
        }
    };
    let ban_level = if old { "WARNING" } else { "NOTICE" };
    put(
        &mut out,
        secs,
        "fail2ban.server",
        "INFO",
        "Starting Fail2ban",
    );
    for i in 0..bans {
        secs += 1 + rng.next(6000) as u32;
        let addr = ADDRS[rng.next(ADDRS.len() as u64) as usize];
        let jail = JAILS[rng.next(JAILS.len() as u64) as usize];
        for _ in 0..1 + rng.next(3) {
            let found = if old {
                format!("[{jail}] Found {addr}")
            } else {
                format!("[{jail}] Found {addr} - 2026-11-{:02} 00:00:00", first_day)
            };
            put(&mut out, secs, "fail2ban.filter", "INFO", &found);
        }
        put(
            &mut out,
            secs,
            "fail2ban.actions",
            ban_level,
            &format!("[{jail}] Ban {addr}"),
        );
        match i % 5 {
            0 => put(
                &mut out,
                secs,
                "fail2ban.actions",
                ban_level,
                &format!("[{jail}] {addr} already banned"),
            ),
            1 if !old => put(
                &mut out,
                secs,
                "fail2ban.observer",
                ban_level,
                &format!("[{jail}] Increase Ban {addr} (2 # 2:00:00 -> 2026-11-30 00:00:00)"),
            ),
            2 if !old => put(
                &mut out,
                secs,
                "fail2ban.actions",
                ban_level,
                &format!("[{jail}] Restore Ban {addr}"),
            ),
            3 => put(
                &mut out,
                secs + 600,
                "fail2ban.actions",
                ban_level,
                &format!("[{jail}] Unban {addr}"),
            ),
            _ => {}
        }
    }
    out
}

fn gzip(path: &Path, text: &str) {
    let f = std::fs::File::create(path).expect("create gz");
    let mut gz = flate2::write::GzEncoder::new(f, flate2::Compression::default());
    gz.write_all(text.as_bytes()).expect("write gz");
    gz.finish().expect("finish gz");
}

#[test]
fn fail2ban_logs_agree_with_the_admins_pipelines() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rng = Lcg(12);
    let files: Vec<PathBuf> = [
        "fail2ban.log.3.gz",
        "fail2ban.log.2.gz",
        "fail2ban.log.1",
        "fail2ban.log",
    ]
    .iter()
    .map(|n| dir.path().join(n))
    .collect();
    // Rotated weekly: the oldest two in 0.8's format (before an upgrade), gzipped.
    gzip(&files[0], &fail2ban_lines(&mut rng, 1, 90, true));
    gzip(&files[1], &fail2ban_lines(&mut rng, 8, 110, true));
    std::fs::write(&files[2], fail2ban_lines(&mut rng, 15, 120, false)).expect("write");
    std::fs::write(&files[3], fail2ban_lines(&mut rng, 22, 80, false)).expect("write");
    let names: Vec<&str> = files.iter().map(|f| report_common::arg(f)).collect();
    let list = names.join(" ");
    let mut args = vec!["--fail2ban-log"];
    args.extend(&names);
    // Ban lines only: `Restore Ban` and `Increase Ban` are not new bans.
    let bans = format!(r"zgrep -hE '\] Ban ' {list}");
    let jail = r#"j = $(NF-2); gsub(/[][]/, "", j)"#;

    let ours = report(&cat(&args, &["--by", "ip"]), &["address"], "bans");
    let theirs = pipeline(&format!("{bans} | awk '{{print $NF}}' | sort | uniq -c"));
    assert_eq!(ours, theirs, "--by ip");
    assert_eq!(theirs.values().sum::<u64>(), 400, "every ban line counted");

    let ours = report(
        &cat(&args, &["--by", "subnet", "--prefix", "16"]),
        &["subnet"],
        "bans",
    );
    let theirs = pipeline(&format!(
        r#"{bans} | awk '{{print $NF}}' | grep -v : | awk -F. '{{print $1"."$2".0.0/16"}}' | sort | uniq -c"#
    ));
    let ours_v4: BTreeMap<String, u64> = ours
        .clone()
        .into_iter()
        .filter(|(k, _)| !k.contains(':'))
        .collect();
    assert_eq!(ours_v4, theirs, "--by subnet --prefix 16 (IPv4)");
    let theirs_v6 = pipeline(&format!(
        r#"{bans} | awk '{{print $NF}}' | grep : | python3 -c 'import sys, ipaddress; [print(ipaddress.ip_network(l.strip() + "/64", strict=False)) for l in sys.stdin]' | sort | uniq -c"#
    ));
    let ours_v6: BTreeMap<String, u64> =
        ours.into_iter().filter(|(k, _)| k.contains(':')).collect();
    assert_eq!(ours_v6, theirs_v6, "--by subnet (IPv6 /64)");

    let ours = report(&cat(&args, &["--by", "jail"]), &["address", "jail"], "bans");
    let theirs = pipeline(&format!(
        "{bans} | awk '{{{jail}; print $NF, j}}' | sort | uniq -c"
    ));
    assert_eq!(ours, theirs, "--by jail");

    let ours = report(&cat(&args, &["--by", "day"]), &["day", "jail"], "bans");
    let theirs = pipeline(&format!(
        "{bans} | awk '{{{jail}; print $1, j}}' | sort | uniq -c"
    ));
    assert_eq!(ours, theirs, "--by day");
    assert!(theirs.len() > 20, "several days and jails: {theirs:?}");

    // A time range is the same cut of the pipeline's lines (dates sort as text).
    let ours = report(
        &cat(
            &args,
            &[
                "--by",
                "ip",
                "--since",
                "2026-11-10",
                "--until",
                "2026-11-20",
            ],
        ),
        &["address"],
        "bans",
    );
    let theirs = pipeline(&format!(
        r#"{bans} | awk '$1 >= "2026-11-10" && $1 < "2026-11-20" {{print $NF}}' | sort | uniq -c"#
    ));
    assert_eq!(ours, theirs, "--since/--until");
}

/// The agent as a process, killed on drop if the test fails before stopping it.
struct Agent {
    child: std::process::Child,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn bans_json(socket: &Path) -> Vec<serde_json::Value> {
    let out = log2drop()
        .args(["bans", "--json", "--socket"])
        .arg(socket)
        .output()
        .expect("bans");
    if !out.status.success() {
        return Vec::new();
    }
    serde_json::from_slice::<Vec<serde_json::Value>>(&out.stdout).unwrap_or_default()
}

fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_agents_store_and_log_give_the_same_views() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = |n: &str| dir.path().join(n);
    for log in ["auth.log", "web.log"] {
        std::fs::write(p(log), b"").expect("create log");
    }
    std::fs::write(
        p("log2drop.toml"),
        format!(
            r#"
[agent]
state_dir = "{state}"
socket = "{socket}"
allow_own_addresses = false

[backends.dry-run]

[filters.ssh-fail]
regex = ['sshd\[\d+\]: Failed password for (?P<user>.*) from <HOST> port \d+$']

[filters.web-probe]
regex = ['^<HOST> - - "GET /wp-login\.php HTTP/1\.1" 404$']

[sources.auth]
path = "{auth}"
filters = ["ssh-fail"]

[sources.web]
path = "{web}"
filters = ["web-probe"]

[jails.ssh]
filters = ["ssh-fail"]
maxretry = 2
findtime = "10m"
bantime = "1s"

[jails.web]
filters = ["web-probe"]
maxretry = 1
findtime = "10m"
bantime = "1h"
"#,
            state = p("state").display(),
            socket = p("ctl.sock").display(),
            auth = p("auth.log").display(),
            web = p("web.log").display(),
        ),
    )
    .expect("config");
    let log = std::fs::File::create(p("agent.log")).expect("agent log");
    let mut agent = Agent {
        child: log2drop()
            .arg("run")
            .arg("--config")
            .arg(p("log2drop.toml"))
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup"))
            .stderr(log)
            .spawn()
            .expect("start the agent"),
    };
    let socket = p("ctl.sock");
    wait_for("the control socket", || socket.exists());
    std::thread::sleep(Duration::from_millis(300));
    let append = |log: &str, line: &str| {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(p(log))
            .expect("open log");
        writeln!(f, "{line}").expect("append");
    };
    let ssh_as =
        |user: &str, a: &str| format!("sshd[7]: Failed password for {user} from {a} port 2222");
    let ssh = |a: &str| ssh_as("root", a);
    let web = |a: &str| format!("{a} - - \"GET /wp-login.php HTTP/1.1\" 404");
    let banned = |a: &str| bans_json(&socket).iter().any(|b| b["address"] == a);

    // 198.51.100.7: banned in ssh, the 1 s ban expires, banned again.
    append("auth.log", &ssh("198.51.100.7"));
    append("auth.log", &ssh("198.51.100.7"));
    wait_for("the first ban", || banned("198.51.100.7"));
    wait_for("the first ban to expire", || !banned("198.51.100.7"));
    append("auth.log", &ssh("198.51.100.7"));
    append("auth.log", &ssh("198.51.100.7"));
    wait_for("the second ban", || banned("198.51.100.7"));
    // Its ban's reason carries the user of the offence that reached the
    // threshold: attacker text with an escape sequence.
    append("auth.log", &ssh_as("admin", "198.51.100.8"));
    append("auth.log", &ssh_as(HOSTILE, "198.51.100.8"));
    append("web.log", &web("203.0.113.5"));
    append("web.log", &web("2001:db8::9"));
    wait_for("every ban", || {
        let b = bans_json(&socket);
        ["203.0.113.5", "2001:db8::/64"]
            .iter()
            .all(|a| b.iter().any(|x| x["address"] == *a))
    });
    // The second ssh ban of 198.51.100.8 may already have expired; it was stored.
    std::thread::sleep(Duration::from_millis(200));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(agent.child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("SIGTERM");
    let status = agent.child.wait().expect("wait");
    assert!(status.success(), "agent exit {status}");

    let today = Command::new("date").arg("+%F").output().expect("date");
    let today = String::from_utf8_lossy(&today.stdout).trim().to_owned();
    let expect = |pairs: &[(&str, u64)]| -> BTreeMap<String, u64> {
        pairs.iter().map(|(k, n)| ((*k).to_owned(), *n)).collect()
    };
    let state = p("state");
    let agent_log = p("agent.log");
    for source in [
        vec!["--state-dir", report_common::arg(&state)],
        vec!["--log", report_common::arg(&agent_log)],
    ] {
        assert_eq!(
            report(&cat(&source, &["--by", "ip"]), &["address"], "bans"),
            expect(&[
                ("198.51.100.7", 2),
                ("198.51.100.8", 1),
                ("203.0.113.5", 1),
                ("2001:db8::/64", 1)
            ]),
            "{source:?} --by ip"
        );
        assert_eq!(
            report(
                &cat(&source, &["--by", "jail"]),
                &["address", "jail"],
                "bans"
            ),
            {
                let mut e = expect(&[
                    ("198.51.100.7 ssh", 2),
                    ("198.51.100.8 ssh", 1),
                    ("203.0.113.5 web", 1),
                    ("2001:db8::/64 web", 1),
                ]);
                if from_store(&source) {
                    // The store's offence counts name the offender itself,
                    // banned as its /64.
                    e.insert("2001:db8::9 web".into(), 0);
                }
                e
            },
            "{source:?} --by jail"
        );
        // Which accounts were guessed: the ban reasons' users (both sources),
        // and in the store every offence's user.
        let mut users = expect(&[("root", 2), (HOSTILE_SHOWN, 1)]);
        if from_store(&source) {
            users.insert("admin".into(), 0);
        }
        assert_eq!(
            report(&cat(&source, &["--by", "user"]), &["user"], "bans"),
            users,
            "{source:?} --by user"
        );
        let out = report_common::report_ok(&cat(&source, &["--by", "user"]));
        assert!(!out.contains(&0x1b), "escaped on the terminal too");
        assert_eq!(
            report(
                &cat(&source, &["--by", "subnet", "--prefix", "16"]),
                &["subnet"],
                "bans"
            ),
            expect(&[
                ("198.51.0.0/16", 3),
                ("203.0.0.0/16", 1),
                ("2001:db8::/64", 1)
            ]),
            "{source:?} --by subnet"
        );
        assert_eq!(
            report(&cat(&source, &["--by", "day"]), &["day", "jail"], "bans"),
            expect(&[(&format!("{today} ssh"), 3), (&format!("{today} web"), 2)]),
            "{source:?} --by day"
        );
        assert_eq!(
            report(
                &cat(&source, &["--by", "offender", "--min", "2"]),
                &["address"],
                "bans"
            ),
            expect(&[("198.51.100.7", 2)]),
            "{source:?} --by offender"
        );
    }

    // What each address did before any ban: the store's offence counts.
    let store = ["--state-dir", report_common::arg(&state)];
    assert_eq!(
        report(
            &cat(&store, &["--by", "filter"]),
            &["filter", "address"],
            "offences"
        ),
        expect(&[
            ("ssh-fail 198.51.100.7", 4),
            ("ssh-fail 198.51.100.8", 2),
            ("web-probe 203.0.113.5", 1),
            ("web-probe 2001:db8::9", 1),
        ]),
        "--by filter over the store"
    );
    assert_eq!(
        report(
            &cat(&store, &["--by", "jail"]),
            &["address", "jail"],
            "offences"
        ),
        expect(&[
            ("198.51.100.7 ssh", 4),
            ("198.51.100.8 ssh", 2),
            ("203.0.113.5 web", 1),
            ("2001:db8::/64 web", 0),
            ("2001:db8::9 web", 1),
        ]),
        "--by jail offences over the store"
    );
    assert_eq!(
        report(&cat(&store, &["--by", "user"]), &["user"], "offences"),
        expect(&[("root", 4), ("admin", 1), (HOSTILE_SHOWN, 1)]),
        "--by user offences over the store"
    );
}

/// A user name with an escape sequence and spaces, as an attacker may send it.
const HOSTILE: &str = "evil \x1b[2J user";

/// [`HOSTILE`] as reports show it.
const HOSTILE_SHOWN: &str = "evil \\u{1b}[2J user";

fn from_store(source: &[&str]) -> bool {
    source.first() == Some(&"--state-dir")
}
