//! Reports over what a real agent stored, as root: `log2drop run` in a network
//! namespace (dry-run backend) bans addresses in two jails from two filters with
//! `user` captures, one user name hostile (an escape sequence, a forged log line,
//! far too long); then `log2drop report --by filter`, `--by jail` and `--by
//! user` over its state database, and `--by user` over its own log, give the
//! counts the lines imply, offences before any ban included, escaped.
//!
//! Builds its own namespace and directory; both go when it ends. Run with
//! `--test-threads=1`.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use log2drop_tests::agent::{agent_binary, quote_path};
use log2drop_tests::{Agent, AgentDir, NetNs, require_root, wait_until};

/// The hostile user name: a terminal escape, a forged log line, and 200 bytes more.
fn hostile() -> String {
    format!(
        "x\x1b[2J 2026-12-06T00:00:00Z  INFO log2drop::daemon::enforcer: ban address=192.0.2.99 {}",
        "z".repeat(200)
    )
}

fn config(dir: &AgentDir) -> String {
    format!(
        r#"[agent]
state_dir = {state}
socket = {socket}
allow_own_addresses = false

[backends.dry-run]

[filters.ssh-user]
regex = ['sshd\[\d+\]: Failed password for (?P<user>.+) from <HOST> port \d+$']

[filters.imap-user]
regex = ['imapd: LOGIN FAILED user=<F-USER>\S+</F-USER> ip=\[<HOST>\]$']

[sources.auth]
path = {log}
filters = ["ssh-user", "imap-user"]

[jails.ssh]
filters = ["ssh-user"]
maxretry = 3
findtime = "10m"
bantime = "1h"

[jails.mail]
filters = ["imap-user"]
maxretry = 2
findtime = "10m"
bantime = "1h"
"#,
        state = quote_path(&dir.state_dir()),
        socket = quote_path(&dir.socket_path()),
        log = quote_path(&dir.watched_log()),
    )
}

/// `log2drop report ARGS --json`'s first view as key columns -> count column.
fn report(args: &[&str], keys: &[&str], count: &str) -> BTreeMap<String, u64> {
    let out = Command::new(agent_binary())
        .arg("report")
        .args(args)
        .arg("--json")
        .output()
        .expect("run log2drop report");
    assert!(
        out.status.success(),
        "report {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("report JSON");
    let mut map = BTreeMap::new();
    for row in v["views"][0]["rows"].as_array().expect("rows") {
        let key: Vec<&str> = keys
            .iter()
            .map(|k| row[*k].as_str().expect("key column"))
            .collect();
        let n = row[count].as_u64().expect("count column");
        assert!(map.insert(key.join(" "), n).is_none(), "duplicate {row}");
    }
    map
}

fn expect(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, n)| ((*k).to_owned(), *n)).collect()
}

#[test]
fn reports_over_the_store_show_offences_jails_and_users() {
    if !require_root("reports_over_the_store_show_offences_jails_and_users") {
        return;
    }
    let ns = NetNs::new();
    let dir = AgentDir::new();
    std::fs::write(dir.config_path(), config(&dir)).expect("config");
    let mut agent = Agent::start(&ns, &dir);
    let ssh = |user: &str, addr: &str| {
        format!("sshd[42]: Failed password for {user} from {addr} port 2222")
    };
    let imap = |user: &str, addr: &str| format!("imapd: LOGIN FAILED user={user} ip=[{addr}]");
    let evil = hostile();
    dir.append_lines(&[
        // 192.0.2.10: three ssh failures (root, root, the hostile one): banned
        // in ssh with the hostile user as its reason.
        ssh("root", "192.0.2.10"),
        ssh("root", "192.0.2.10"),
        ssh(&evil, "192.0.2.10"),
        // 198.51.100.20: two imap failures: banned in mail.
        imap("info@example.org", "198.51.100.20"),
        imap("info@example.org", "198.51.100.20"),
        // 203.0.113.30: one ssh failure, one imap failure: never banned, but the
        // store knows what it did.
        ssh("admin", "203.0.113.30"),
        imap("admin", "203.0.113.30"),
    ]);
    let banned = wait_until(Duration::from_secs(10), Duration::from_millis(50), || {
        agent.ban_for("192.0.2.10").is_some() && agent.ban_for("198.51.100.20").is_some()
    });
    assert!(banned.is_some(), "no bans:\n{}", agent.output_text());
    let ssh_ban = agent.ban_for("192.0.2.10").expect("ssh ban");
    assert_eq!(ssh_ban["jail"], "ssh");
    let shown = ssh_ban["captures"]["user"].as_str().expect("user capture");
    assert!(shown.starts_with("x\x1b[2J 2026"), "raw in JSON: {shown:?}");
    assert!(
        shown.ends_with('…') && shown.len() < 80,
        "bounded: {shown:?}"
    );
    // The human table escapes it and keeps one row per ban.
    let table = agent.cli_checked(&["bans"]);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(!table.contains('\x1b'), "{table}");
    assert_eq!(table.lines().count(), 3, "{table}");
    // SIGTERM hands the last offence counts to the store.
    assert!(agent.terminate().success(), "{}", agent.output_text());

    let state = dir.state_dir();
    let store = ["--state-dir", state.to_str().expect("utf-8 path")];
    let with = |more: &[&'static str]| -> Vec<&str> { store.iter().chain(more).copied().collect() };
    assert_eq!(
        report(
            &with(&["--by", "filter"]),
            &["filter", "address"],
            "offences"
        ),
        expect(&[
            ("ssh-user 192.0.2.10", 3),
            ("imap-user 198.51.100.20", 2),
            ("ssh-user 203.0.113.30", 1),
            ("imap-user 203.0.113.30", 1),
        ]),
        "--by filter"
    );
    assert_eq!(
        report(&with(&["--by", "jail"]), &["address", "jail"], "offences"),
        expect(&[
            ("192.0.2.10 ssh", 3),
            ("198.51.100.20 mail", 2),
            ("203.0.113.30 ssh", 1),
            ("203.0.113.30 mail", 1),
        ]),
        "--by jail offences"
    );
    assert_eq!(
        report(&with(&["--by", "jail"]), &["address", "jail"], "bans"),
        expect(&[
            ("192.0.2.10 ssh", 1),
            ("198.51.100.20 mail", 1),
            ("203.0.113.30 ssh", 0),
            ("203.0.113.30 mail", 0),
        ]),
        "--by jail bans"
    );
    let evil_shown =
        log2drop::filter::capture::escape(&log2drop::filter::capture::bound(evil.as_bytes()))
            .into_owned();
    assert!(!evil_shown.contains('\x1b'));
    assert_eq!(
        report(&with(&["--by", "user"]), &["user"], "offences"),
        expect(&[
            ("root", 2),
            (&evil_shown, 1),
            ("info@example.org", 2),
            ("admin", 2),
        ]),
        "--by user offences"
    );
    assert_eq!(
        report(&with(&["--by", "user"]), &["user"], "bans"),
        expect(&[
            ("root", 0),
            (&evil_shown, 1),
            ("info@example.org", 1),
            ("admin", 0),
        ]),
        "--by user bans"
    );
    // The agent's own log gives the ban reasons' users, and the forged line in
    // the user name made no ban of 192.0.2.99.
    let log = dir.agent_output();
    let log = ["--log", log.to_str().expect("utf-8 path")];
    let users = |more: &[&'static str]| -> Vec<&str> { log.iter().chain(more).copied().collect() };
    assert_eq!(
        report(&users(&["--by", "user"]), &["user"], "bans"),
        expect(&[(&evil_shown, 1), ("info@example.org", 1)]),
        "--by user over the agent's log"
    );
    assert_eq!(
        report(&users(&["--by", "ip"]), &["address"], "bans"),
        expect(&[("192.0.2.10", 1), ("198.51.100.20", 1)]),
        "--by ip over the agent's log"
    );
}
