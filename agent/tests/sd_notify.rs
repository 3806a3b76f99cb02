//! The daemon's systemd notifications as systemd sees them: `log2drop run` with
//! NOTIFY_SOCKET pointing at a datagram socket this test binds, a dry-run backend and
//! every path in a temp dir, so it needs no root. READY comes once start-up is done,
//! RELOADING (with MONOTONIC_USEC) then READY on SIGHUP, STOPPING on SIGTERM.

use std::os::unix::net::UnixDatagram;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Kills the daemon if the test fails half-way.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn next_message(sock: &UnixDatagram) -> String {
    let mut buf = [0u8; 4096];
    let n = sock
        .recv(&mut buf)
        .expect("a notification within the timeout");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn run_notifies_ready_reloading_and_stopping() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("log2drop.toml");
    std::fs::write(
        &config,
        format!(
            r#"[agent]
state_dir = "{dir}/state"
socket = "{dir}/log2drop.sock"
allow_own_addresses = false

[backends.dry-run]

[sources.input]
type = "stdin"
filters = ["sshd"]

[jails.ssh]
filters = ["sshd"]
"#,
            dir = dir.path().display()
        ),
    )
    .expect("write config");
    let notify_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&notify_path).expect("bind the notify socket");
    sock.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");

    let child = Command::new(env!("CARGO_BIN_EXE_log2drop"))
        .args(["run", "--config"])
        .arg(&config)
        .env("NOTIFY_SOCKET", &notify_path)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("start log2drop run");
    let daemon = Daemon(child);
    let pid = Pid::from_raw(i32::try_from(daemon.0.id()).expect("pid"));

    assert_eq!(next_message(&sock), "READY=1\n");
    // Only now is the control socket there: READY comes after start-up.
    assert!(dir.path().join("log2drop.sock").exists());

    kill(pid, Signal::SIGHUP).expect("SIGHUP");
    let reloading = next_message(&sock);
    let mut lines = reloading.lines();
    assert_eq!(lines.next(), Some("RELOADING=1"), "{reloading}");
    let usec = lines
        .next()
        .and_then(|l| l.strip_prefix("MONOTONIC_USEC="))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no MONOTONIC_USEC in {reloading:?}"));
    assert!(usec > 0);
    assert_eq!(next_message(&sock), "READY=1\n");

    kill(pid, Signal::SIGTERM).expect("SIGTERM");
    assert_eq!(next_message(&sock), "STOPPING=1\n");
    let mut daemon = daemon;
    let status = daemon.0.wait().expect("wait");
    assert!(status.success(), "log2drop run exited with {status}");
}
