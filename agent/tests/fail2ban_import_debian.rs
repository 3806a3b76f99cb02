//! `import-fail2ban` on Debian's own `/etc/fail2ban` (the `fail2ban` package, in
//! CI's apt packages) with the `jail.local` an admin writes to enable sshd,
//! nginx-http-auth, postfix and recidive: the config passes `check`, and
//! `run` on it follows the logs and bans (issue 11).
//!
//! The tree is copied into a temporary directory at run time (never into the
//! project) to add the `jail.local`. `run` uses the dry-run backend (the
//! nftables one would change the host's firewall) and temporary files where the
//! jails' Debian log paths are. Without the package the test is skipped,
//! saying so; under `CI=true` that is a failure.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const DEBIAN: &str = "/etc/fail2ban";

const JAIL_LOCAL: &str = "[sshd]\nenabled = true\n\n[nginx-http-auth]\nenabled = true\n\n\
                          [postfix]\nenabled = true\n\n[recidive]\nenabled = true\n";

/// Debian's log paths of those jails (paths-debian.conf) and what stands for
/// each in the test.
const LOGS: [(&str, &str); 4] = [
    ("/var/log/auth.log", "auth.log"),
    ("/var/log/nginx/*error.log", "nginx-error.log"),
    ("/var/log/mail.log", "mail.log"),
    ("/var/log/fail2ban.log", "fail2ban.log"),
];

fn log2drop() -> Command {
    Command::new(env!("CARGO_BIN_EXE_log2drop"))
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir") {
        let e = e.expect("entry");
        let target = to.join(e.file_name());
        if e.file_type().expect("type").is_dir() {
            copy_tree(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).expect("copy");
        }
    }
}

/// Imports the tree with `extra` arguments; returns the config's text.
fn import(tree: &Path, out: &Path, extra: &[&str]) -> String {
    let o = log2drop()
        .arg("import-fail2ban")
        .args(extra)
        .arg("-o")
        .arg(out)
        .arg(tree)
        .output()
        .expect("runs import-fail2ban");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "import-fail2ban failed: {stderr}");
    assert!(stderr.contains("imported 4 jail(s)"), "{stderr}");
    std::fs::read_to_string(out).expect("the config")
}

fn check(config: &Path) {
    let o = log2drop()
        .arg("check")
        .arg("--config")
        .arg(config)
        .env("RUST_LOG", "off")
        .output()
        .expect("runs check");
    assert!(
        o.status.success(),
        "check failed on {}: {}",
        config.display(),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Kills the agent this test started, even when an assertion fails.
struct Agent(std::process::Child);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn debian_tree_with_four_jails_imports_checks_and_runs() {
    if !Path::new(DEBIAN).join("jail.conf").is_file() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{DEBIAN}/jail.conf is absent (Debian's fail2ban package); CI must not skip"
        );
        eprintln!("skipped: {DEBIAN}/jail.conf is absent (Debian's fail2ban package)");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let tree = dir.path().join("fail2ban");
    copy_tree(Path::new(DEBIAN), &tree);
    std::fs::write(tree.join("jail.local"), JAIL_LOCAL).expect("jail.local");

    // As the admin runs it: nftables, Debian's log paths.
    let config = dir.path().join("log2drop.toml");
    let text = import(&tree, &config, &[]);
    for jail in ["sshd", "nginx-http-auth", "postfix", "recidive"] {
        assert!(text.contains(&format!("[jails.{jail}]")), "{jail}:\n{text}");
        assert!(
            text.contains(&format!("filter.d/{jail}.conf\"")),
            "{jail} refers to its filter file:\n{text}"
        );
    }
    assert!(text.contains("[backends.nftables]"), "{text}");
    check(&config);

    // Run: dry-run, the logs in the temporary directory, its own state.
    let config = dir.path().join("dry-run.toml");
    let mut text = import(&tree, &config, &["--backend", "dry-run"]);
    for (debian, ours) in LOGS {
        let path = dir.path().join(ours);
        std::fs::write(&path, "").expect("log");
        let from = format!("path = \"{debian}\"");
        assert!(text.contains(&from), "{debian}:\n{text}");
        text = text.replace(&from, &format!("path = \"{}\"", path.display()));
    }
    let socket = dir.path().join("ctl.sock");
    text = text.replacen(
        "[agent]\n",
        &format!(
            "[agent]\nstate_dir = \"{}\"\nsocket = \"{}\"\n",
            dir.path().join("state").display(),
            socket.display()
        ),
        1,
    );
    std::fs::write(&config, text).expect("config");
    check(&config);
    let mut agent = Agent(
        log2drop()
            .arg("run")
            .arg("--config")
            .arg(&config)
            .env("RUST_LOG", "info")
            .stderr(Stdio::piped())
            .spawn()
            .expect("runs the agent"),
    );
    let stderr = agent.0.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    while !socket.exists() {
        assert!(Instant::now() < deadline, "the agent did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    // sshd's jail: maxretry 5.
    let mut auth = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.path().join("auth.log"))
        .expect("auth.log");
    // Lines of now, as syslog writes them (local time, no year).
    let now = jiff::Zoned::now().strftime("%b %e %H:%M:%S").to_string();
    for port in 0..6 {
        writeln!(
            auth,
            "{now} host sshd[4{port}]: Failed password for invalid user admin from 192.0.2.70 port 5000{port} ssh2"
        )
        .expect("append");
    }
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                if line.contains("192.0.2.70") && line.to_ascii_lowercase().contains("ban") {
                    break;
                }
                seen.push(line);
            }
            Err(_) => panic!("no ban of 192.0.2.70; the agent said:\n{}", seen.join("\n")),
        }
    }
    assert!(
        agent.0.try_wait().expect("status").is_none(),
        "the agent stopped"
    );
}
