//! `log2drop check` and `log2drop run` on broken configs, as admins and systemd see
//! them: exit status 78 (EX_CONFIG) or 66 (EX_NOINPUT), and every problem at
//! FILE:LINE:COL with its key.

use std::process::{Command, Output};

fn log2drop(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_log2drop"))
        .args(args)
        .env("RUST_LOG", "off")
        .output()
        .expect("run log2drop")
}

const BROKEN: &str = r#"[backends.dry-run]

[sources.auth]
path = "/var/log/auth.log"
filters = ["sshd"]

[jails.ssh]
filters = ["sshd"]
maxretry = 0
backends = ["xdp"]
"#;

#[test]
fn check_exits_78_with_every_error_at_file_line_col_and_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("broken.toml");
    std::fs::write(&path, BROKEN).expect("write");
    let file = path.to_str().expect("utf-8 path");
    let out = log2drop(&["check", "--config", file]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "stderr: {stderr}");
    assert!(out.stdout.is_empty(), "printed ok on a broken config");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "expected both problems, got: {stderr}");
    assert!(
        lines[0].starts_with(&format!("{file}:9:12: jails.ssh.maxretry: ")),
        "{stderr}"
    );
    assert!(
        lines[1].starts_with(&format!("{file}:10:")) && lines[1].contains("jails.ssh.backends"),
        "{stderr}"
    );
}

#[test]
fn check_exits_78_on_a_syntax_error_and_an_unknown_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("typo.toml");
    std::fs::write(&path, "[agent]\nstate_dri = \"/var/lib/log2drop\"\n").expect("write");
    let file = path.to_str().expect("utf-8 path");
    let out = log2drop(&["check", "-c", file]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "stderr: {stderr}");
    assert!(stderr.starts_with(&format!("{file}:2:1: ")), "{stderr}");
    assert!(stderr.contains("state_dri"), "{stderr}");

    std::fs::write(&path, "[agent\n").expect("write");
    let out = log2drop(&["check", "-c", file]);
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with(&format!("{file}:1:")));
}

#[test]
fn check_exits_66_when_the_file_is_missing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("absent.toml");
    let out = log2drop(&["check", "-c", path.to_str().expect("utf-8 path")]);
    assert_eq!(out.status.code(), Some(66));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read config file"));
}

#[test]
fn run_exits_78_on_a_config_error_before_touching_the_system() {
    // systemd's RestartPreventExitStatus=78 relies on this.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("broken.toml");
    std::fs::write(&path, BROKEN).expect("write");
    let out = log2drop(&["run", "-c", path.to_str().expect("utf-8 path")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "stderr: {stderr}");
    assert!(stderr.contains("jails.ssh.maxretry"), "{stderr}");
}

#[test]
fn default_config_checks_ok() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("log2drop.toml");
    let out = log2drop(&["config", "--default"]);
    assert!(out.status.success());
    std::fs::write(&path, &out.stdout).expect("write");
    let out = log2drop(&["check", "-c", path.to_str().expect("utf-8 path")]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn check_reads_the_fleet_tls_files_and_names_a_bad_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = dir.path().join("fleet-ca.pem");
    std::fs::write(&ca, "not a certificate\n").expect("write");
    let path = dir.path().join("fleet.toml");
    std::fs::write(
        &path,
        format!(
            "[agent]\nstate_dir = \"{state}\"\nsocket = \"{state}/ctl.sock\"\n\n\
             [backends.dry-run]\n\n\
             [fleet]\nredis = \"rediss://fleet.example.org:6380/0\"\nnode = \"web-1\"\n\
             tls = {{ ca = \"{ca}\" }}\n",
            state = dir.path().display(),
            ca = ca.display()
        ),
    )
    .expect("write");
    let file = path.to_str().expect("utf-8 path");
    let out = log2drop(&["check", "--config", file]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "stderr: {stderr}");
    assert!(
        stderr.contains(&format!("fleet.tls.ca {}: ", ca.display())),
        "{stderr}"
    );
}
