//! `log2drop run --log-format json` as a process: every line it writes to stderr
//! is a JSON object, a ban made from a log line is one of them, and `log2drop
//! report --log` reads that file back (the recidive filter's reading of these
//! lines is tested with the filter's sample logs and the subscriber itself).

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_log2drop")
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "timed out: {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn json_log_lines_carry_the_ban_and_report_reads_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("auth.log");
    std::fs::write(&log, b"").expect("log");
    let config = dir.path().join("log2drop.toml");
    std::fs::write(
        &config,
        format!(
            r#"[agent]
state_dir = "{state}"
socket = "{socket}"
allow_own_addresses = false

[backends.dry-run]

[filters.ssh-fail]
regex = ['Failed password for .* from <HOST> port \d+']

[sources.auth]
path = "{log}"
filters = ["ssh-fail"]

[jails.ssh]
filters = ["ssh-fail"]
maxretry = 2
bantime = "1h"
"#,
            state = dir.path().join("state").display(),
            socket = dir.path().join("ctl.sock").display(),
            log = log.display(),
        ),
    )
    .expect("config");
    let stderr_path = dir.path().join("agent.json");
    let stderr = std::fs::File::create(&stderr_path).expect("stderr file");
    let mut agent = Command::new(bin())
        .args(["run", "--log-format", "json", "--config"])
        .arg(&config)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("agent");
    let written = || std::fs::read_to_string(&stderr_path).unwrap_or_default();
    wait_for("log2drop running", || {
        written().contains("log2drop running")
    });
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .expect("open log");
    for _ in 0..2 {
        f.write_all(b"sshd[1]: Failed password for root from 198.51.100.30 port 22 ssh2\n")
            .expect("append");
    }
    wait_for("the ban line", || written().contains(r#""message":"ban""#));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(agent.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("SIGTERM");
    assert!(agent.wait().expect("wait").success());

    let text = written();
    let mut bans = 0;
    for line in text.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(
            v["timestamp"].is_string() && v["level"].is_string(),
            "{line}"
        );
        assert!(line.starts_with(r#"{"timestamp":""#), "{line}");
        if v["message"] == "ban" {
            bans += 1;
            assert_eq!(v["address"], "198.51.100.30", "{line}");
            assert_eq!(v["jail"], "ssh", "{line}");
            assert_eq!(v["origin"], "jail", "{line}");
            assert_eq!(v["target"], "log2drop::daemon::enforcer", "{line}");
        }
    }
    assert_eq!(bans, 1, "{text}");

    let report = Command::new(bin())
        .args(["report", "--json", "--log"])
        .arg(&stderr_path)
        .output()
        .expect("report");
    assert!(report.status.success(), "{report:?}");
    let out = String::from_utf8_lossy(&report.stdout);
    assert!(out.contains("198.51.100.30"), "{out}");
}
