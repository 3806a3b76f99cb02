//! `type = "auto"` against a real systemd-journald: the Debian 12 host without
//! rsyslog, where sshd's lines exist only in the journal. A private journald runs in
//! its own mount namespace (tmpfs over /run/systemd, /run/log and /var/log/journal,
//! so the machine's own logging is never touched); sshd-like lines are written to
//! it with `systemd-cat -t sshd`, and the agent, run in the same mount namespace
//! with a source whose file does not exist, reads them through the real journalctl
//! and bans. Entries written that way carry no `_SYSTEMD_UNIT` (that field comes
//! from the sender's cgroup, which a test must not invent), so the source matches
//! `SYSLOG_IDENTIFIER=sshd`. Run with `--test-threads=1`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use log2drop_tests::agent::{agent_binary, quote_path};
use log2drop_tests::{require_root, wait_until};

const JOURNALD: &str = "/lib/systemd/systemd-journald";

/// A systemd-journald in a mount namespace of its own; killed on drop (the
/// namespace and its tmpfs mounts go with its last process).
struct PrivateJournal {
    journald: Child,
}

impl PrivateJournal {
    fn start() -> PrivateJournal {
        let script = "set -e\n\
            mkdir -p /run/systemd /run/log /var/log/journal\n\
            for d in /run/systemd /run/log /var/log/journal; do mount -t tmpfs l2d-test-journal \"$d\"; done\n\
            mkdir -p /run/systemd/journal\n\
            exec /lib/systemd/systemd-journald";
        let journald = Command::new("unshare")
            .args([
                "--mount",
                "--propagation",
                "private",
                "--",
                "sh",
                "-c",
                script,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("unshare starts");
        let me = PrivateJournal { journald };
        let socket = me.root().join("run/systemd/journal/stdout");
        assert!(
            wait_until(Duration::from_secs(10), Duration::from_millis(20), || {
                socket.exists()
            })
            .is_some(),
            "the private journald did not create {}",
            socket.display()
        );
        me
    }

    /// The namespace's root as seen from outside.
    fn root(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root", self.journald.id()))
    }

    /// `argv` run inside the journal's mount namespace.
    fn command(&self, argv: &[&str]) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--mount=/proc/{}/ns/mnt", self.journald.id()))
            .arg("--")
            .args(argv);
        cmd
    }

    /// Logs `line` as program `sshd` (stdout transport, as a service would).
    fn log_as_sshd(&self, line: &str) {
        let mut child = self
            .command(&["systemd-cat", "-t", "sshd"])
            .stdin(Stdio::piped())
            .spawn()
            .expect("systemd-cat");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(format!("{line}\n").as_bytes())
            .expect("write");
        assert!(child.wait().expect("wait").success(), "systemd-cat failed");
    }
}

impl Drop for PrivateJournal {
    fn drop(&mut self) {
        let _ = self.journald.kill();
        let _ = self.journald.wait();
    }
}

/// Kills the agent on drop and prints its output when the test fails.
struct Running {
    child: Child,
    output: PathBuf,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "agent output:\n{}",
                std::fs::read_to_string(&self.output).unwrap_or_default()
            );
        }
    }
}

fn bans(config: &Path) -> Vec<String> {
    let out = Command::new(agent_binary())
        .args(["bans", "--json", "--config"])
        .arg(config)
        .output()
        .expect("log2drop bans");
    if !out.status.success() {
        return Vec::new();
    }
    let list: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap_or_default();
    list.iter()
        .filter_map(|b| b["address"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn auto_source_reads_sshd_from_a_real_journal_when_the_file_is_missing() {
    if !require_root("auto_source_reads_sshd_from_a_real_journal_when_the_file_is_missing") {
        return;
    }
    if !Path::new(JOURNALD).exists() {
        assert!(
            std::env::var("CI").is_err(),
            "{JOURNALD} is missing: CI installs the systemd package"
        );
        eprintln!("skipping: {JOURNALD} is missing (apt install systemd)");
        return;
    }
    let journal = PrivateJournal::start();
    let dir = tempfile::Builder::new()
        .prefix("l2d-journal-")
        .tempdir()
        .expect("tempdir");
    let missing = dir.path().join("auth.log");
    let config = dir.path().join("log2drop.toml");
    std::fs::write(
        &config,
        format!(
            r#"[agent]
state_dir = {state}
socket = {socket}
allow_own_addresses = false

[backends.dry-run]

[filters.ssh-fail]
regex = ['Failed password for .* from <HOST> port \d+']

[sources.sshd]
type = "auto"
path = {missing}
match = ["SYSLOG_IDENTIFIER=sshd"]
start = "beginning"
filters = ["ssh-fail"]

[jails.ssh]
filters = ["ssh-fail"]
maxretry = 3
bantime = "1h"
"#,
            state = quote_path(&dir.path().join("state")),
            socket = quote_path(&dir.path().join("ctl.sock")),
            missing = quote_path(&missing),
        ),
    )
    .expect("config");
    for _ in 0..3 {
        journal.log_as_sshd("Failed password for root from 203.0.113.44 port 50000 ssh2");
    }
    // Something else in the journal, which the match leaves out.
    let mut other = journal
        .command(&["systemd-cat", "-t", "not-sshd"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("systemd-cat");
    other
        .stdin
        .take()
        .expect("stdin")
        .write_all(
            b"Failed password for root from 203.0.113.45 port 50000 ssh2\n"
                .repeat(3)
                .as_slice(),
        )
        .expect("write");
    other.wait().expect("wait");

    let output = dir.path().join("agent.out");
    let out = std::fs::File::create(&output).expect("output");
    let child = journal
        .command(&[
            agent_binary().to_str().expect("utf-8 path"),
            "run",
            "--config",
        ])
        .arg(&config)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("dup"))
        .stderr(out)
        .spawn()
        .expect("agent");
    let agent = Running {
        child,
        output: output.clone(),
    };
    let banned = wait_until(Duration::from_secs(20), Duration::from_millis(100), || {
        bans(&config) == ["203.0.113.44"]
    });
    assert!(banned.is_some(), "not banned: {:?}", bans(&config));
    let log = std::fs::read_to_string(&output).expect("output");
    assert!(
        log.contains("type auto: no such file, reading the journal instead"),
        "{log}"
    );
    drop(agent);
}
