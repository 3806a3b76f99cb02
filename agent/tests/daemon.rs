//! The daemon end to end without root: the dry-run backend, a real log file, the
//! real control socket. Each test runs the daemon in its own temporary directory.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use log2drop::control::protocol::{BanEntry, Command, ReloadReport, Reply, Stats, Status};
use log2drop::control::server::ServerOptions;
use log2drop::daemon::{Triggers, open_backends, prepare, run_prepared};
use log2drop::store::{Batch, Store};

mod daemon_common;
use daemon_common::Running;

const BASE: &str = r#"
[agent]
state_dir = "{state}"
socket = "{socket}"
allow = ["127.0.0.0/8", "::1", "192.0.2.0/24"]

[backends.dry-run]

[filters.ssh-fail]
regex = ['Failed password for .* from <HOST> port \d+']

[sources.auth]
path = "{log}"
filters = ["ssh-fail"]

[jails.ssh]
filters = ["ssh-fail"]
maxretry = 3
findtime = "10m"
bantime = "1h"
"#;

struct Lab {
    dir: tempfile::TempDir,
}

fn line(addr: &str) -> String {
    format!("sshd[1]: Failed password for root from {addr} port 22 ssh2\n")
}

impl Lab {
    fn new() -> Lab {
        Lab::with_extra("")
    }

    /// The base config with `extra` appended (more tables, or jail keys).
    fn with_extra(extra: &str) -> Lab {
        let dir = tempfile::tempdir().expect("tempdir");
        let lab = Lab { dir };
        std::fs::write(lab.log(), b"").expect("create log");
        lab.write_config(extra);
        lab
    }

    fn write_config(&self, extra: &str) {
        let text = BASE
            .replace(
                "{state}",
                &self.dir.path().join("state").display().to_string(),
            )
            .replace("{socket}", &self.socket().display().to_string())
            .replace("{log}", &self.log().display().to_string())
            + extra;
        std::fs::write(self.config(), text).expect("write config");
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("log2drop.toml")
    }
    fn socket(&self) -> PathBuf {
        self.dir.path().join("run").join("ctl.sock")
    }
    fn log(&self) -> PathBuf {
        self.dir.path().join("auth.log")
    }
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    /// Writes `body` as an executable shell script `name` and gives jail ssh
    /// `notify = { NOTIFY }`, where `{script}` in `notify` stands for its path.
    fn exec_hook(&self, name: &str, body: &str, notify: &str) {
        let script = self.path(name);
        std::fs::write(&script, format!("#!/bin/sh\n{body}\n")).expect("script");
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
        let notify = notify.replace("{script}", &script.display().to_string());
        let config = std::fs::read_to_string(self.config())
            .expect("read")
            .replace(
                "bantime = \"1h\"\n",
                &format!("bantime = \"1h\"\nnotify = {{ {notify} }}\n"),
            );
        std::fs::write(self.config(), config).expect("write");
    }

    fn append(&self, text: &str) {
        daemon_common::append(&self.log(), text);
    }

    /// Starts the daemon and waits until its socket answers.
    async fn start(&self) -> Running {
        daemon_common::start(&self.config(), &self.socket()).await
    }

    async fn ask(&self, cmd: Command) -> Reply {
        daemon_common::ask(&self.socket(), cmd).await
    }

    async fn ok<T: serde::de::DeserializeOwned>(&self, cmd: Command) -> T {
        daemon_common::ok(&self.socket(), cmd).await
    }

    async fn bans(&self) -> Vec<BanEntry> {
        self.ok(Command::Bans { jail: None }).await
    }

    /// Polls `bans` until `want` addresses are listed (sorted), or gives up.
    async fn wait_bans(&self, want: &[&str]) -> Vec<String> {
        let mut got = Vec::new();
        for _ in 0..500 {
            got = self.bans().await.into_iter().map(|b| b.address).collect();
            got.sort();
            if got == want {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        got
    }
}

fn ban_cmd(target: &str, duration: Option<&str>) -> Command {
    Command::Ban {
        target: target.into(),
        duration: duration.map(str::to_owned),
        jail: None,
        force: false,
    }
}

fn unban_cmd(target: &str) -> Command {
    Command::Unban {
        target: Some(target.into()),
        all: false,
        jail: None,
        fleet: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offences_in_the_log_ban_and_bans_survive_a_restart() {
    let lab = Lab::new();
    let agent = lab.start().await;
    lab.append(&line("198.51.100.7").repeat(3));
    lab.append(&line("192.0.2.9").repeat(5));
    assert_eq!(lab.wait_bans(&["198.51.100.7"]).await, ["198.51.100.7"]);
    let bans = lab.bans().await;
    assert_eq!(bans[0].jail, "ssh");
    assert_eq!(bans[0].filter.as_deref(), Some("ssh-fail"));
    assert!(bans[0].until.is_some());

    let reply = lab.ask(ban_cmd("203.0.113.0/24", None)).await;
    assert!(reply.ok, "{reply:?}");
    let reply = lab.ask(ban_cmd("192.0.2.1", Some("1h"))).await;
    assert!(!reply.ok, "allowlisted target must be refused");
    let reply = lab.ask(ban_cmd("198.51.100.9", Some("soon"))).await;
    assert!(reply.error.unwrap_or_default().contains("duration"));
    agent.stop().await;
    assert!(!lab.socket().exists(), "socket removed on stop");

    // Written while the agent is down: must be read after the restart (the
    // saved position), so 198.51.100.8 reaches maxretry.
    lab.append(&line("198.51.100.8").repeat(3));
    let agent = lab.start().await;
    let want = ["198.51.100.7", "198.51.100.8", "203.0.113.0/24"];
    assert_eq!(lab.wait_bans(&want).await, want);

    let reply = lab.ask(unban_cmd("198.51.100.7")).await;
    assert!(reply.ok, "{reply:?}");
    let reply = lab.ask(unban_cmd("198.51.100.7")).await;
    assert!(reply.error.unwrap_or_default().contains("not banned"));
    let status: Status = lab.ok(Command::Status).await;
    assert_eq!(status.bans_active, 2);
    assert_eq!(status.backends.len(), 1);
    assert_eq!(status.backends[0].name, "dry-run");
    assert!(status.backends[0].healthy);
    let reconcile = status.backends[0].reconcile.expect("reconciled at start");
    // The two bans stored before the restart; the third came from the log after.
    assert_eq!(reconcile.added + reconcile.kept, 2, "{reconcile:?}");
    assert_eq!(status.sources.len(), 1);
    let ssh = status.jails.iter().find(|j| j.name == "ssh").expect("jail");
    assert_eq!(ssh.bans_active, 1);
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_count_lines_offences_and_bans() {
    let lab = Lab::new();
    let agent = lab.start().await;
    lab.append("unrelated line\n");
    lab.append(&line("198.51.100.7").repeat(3));
    lab.append(&line("198.51.100.7"));
    lab.wait_bans(&["198.51.100.7"]).await;
    let mut stats: Stats = lab.ok(Command::Stats).await;
    for _ in 0..300 {
        if stats.lines == 5 && stats.offences == 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        stats = lab.ok(Command::Stats).await;
    }
    assert_eq!((stats.lines, stats.offences), (5, 4), "{stats:?}");
    assert_eq!(stats.offences_already_banned, 1);
    assert_eq!((stats.bans_active, stats.bans_total), (1, 1));
    assert!(stats.store_commits >= 1);
    assert_eq!(stats.history_rows, 1);
    assert_eq!(stats.backends[0].bans_applied, 1);
    // The documented key names.
    let raw: serde_json::Value = lab.ask(Command::Stats).await.decode().expect("data");
    for key in ["lines", "offences", "bans_active", "bans_total"] {
        assert!(
            raw.get(key).is_some_and(serde_json::Value::is_u64),
            "{key}: {raw}"
        );
    }
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bans_by_jail_ban_under_a_jail_and_unban_all() {
    let lab = Lab::new();
    let agent = lab.start().await;
    let reply = lab
        .ask(Command::Ban {
            target: "198.51.100.1".into(),
            duration: None,
            jail: Some("ssh".into()),
            force: false,
        })
        .await;
    assert!(reply.ok, "{reply:?}");
    let entry: BanEntry = reply.decode().expect("entry");
    assert_eq!(entry.jail, "ssh");
    assert!(entry.until.is_some(), "the jail's bantime applies");
    lab.ask(ban_cmd("198.51.100.2", None)).await;
    lab.ask(ban_cmd("198.51.100.3", Some("1h"))).await;
    let reply = lab
        .ask(Command::Ban {
            target: "192.0.2.5".into(),
            duration: Some("1h".into()),
            jail: None,
            force: true,
        })
        .await;
    assert!(reply.ok, "--force bans over the allowlist: {reply:?}");

    let ssh: Vec<BanEntry> = lab
        .ok(Command::Bans {
            jail: Some("ssh".into()),
        })
        .await;
    assert_eq!(ssh.len(), 1);
    let reply = lab
        .ask(Command::Unban {
            target: Some("198.51.100.2".into()),
            all: false,
            jail: Some("ssh".into()),
            fleet: false,
        })
        .await;
    assert!(
        reply
            .error
            .unwrap_or_default()
            .contains("banned by jail manual")
    );
    let lifted: Vec<BanEntry> = lab
        .ok(Command::Unban {
            target: None,
            all: true,
            jail: Some("manual".into()),
            fleet: false,
        })
        .await;
    assert_eq!(lifted.len(), 3);
    assert_eq!(lab.wait_bans(&["198.51.100.1"]).await, ["198.51.100.1"]);
    let reply = lab
        .ask(Command::Unban {
            target: None,
            all: false,
            jail: None,
            fleet: false,
        })
        .await;
    assert!(!reply.ok);
    let lifted: Vec<BanEntry> = lab
        .ok(Command::Unban {
            target: None,
            all: true,
            jail: None,
            fleet: false,
        })
        .await;
    assert_eq!(lifted.len(), 1);
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_with_a_broken_config_keeps_the_old_one() {
    let lab = Lab::new();
    let agent = lab.start().await;
    lab.append(&line("198.51.100.7").repeat(2));
    let mut stats: Stats = lab.ok(Command::Stats).await;
    for _ in 0..300 {
        if stats.offences == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        stats = lab.ok(Command::Stats).await;
    }
    assert_eq!(stats.offences, 2);

    // Two mistakes: both are reported, with their lines.
    let good = std::fs::read_to_string(lab.config()).expect("read");
    std::fs::write(
        lab.config(),
        good.replace("maxretry = 3", "maxretry = 0")
            .replace("bantime = \"1h\"", "bantime = \"0s\""),
    )
    .expect("break config");
    let reply = lab.ask(Command::Reload).await;
    assert!(!reply.ok);
    let err = reply.error.unwrap_or_default();
    assert!(err.contains("the running config stays"), "{err}");
    assert!(err.contains("jails.ssh.maxretry"), "{err}");
    assert!(err.contains("jails.ssh.bantime"), "{err}");
    // Still the old config: the third offence bans, as maxretry = 3 says.
    lab.append(&line("198.51.100.7"));
    assert_eq!(lab.wait_bans(&["198.51.100.7"]).await, ["198.51.100.7"]);

    // A syntax error through SIGHUP's path: logged, nothing changes.
    std::fs::write(lab.config(), "[agent\n").expect("garbage");
    agent.reload.send(()).await.expect("sighup");
    let status: Status = lab.ok(Command::Status).await;
    assert_eq!(status.bans_active, 1);
    assert_eq!(status.sources.len(), 1);
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_keeps_bans_and_counters_of_unchanged_jails_and_rebuilds_the_rest() {
    let lab = Lab::with_extra(
        r#"
[filters.web-fail]
regex = ['web denied <HOST>$']

[sources.web]
path = "{web}"
filters = ["web-fail"]

[jails.web]
filters = ["web-fail"]
maxretry = 3
"#,
    );
    let web = lab.path("web.log");
    std::fs::write(&web, b"").expect("web log");
    let with_web = std::fs::read_to_string(lab.config())
        .expect("read")
        .replace("{web}", &web.display().to_string());
    std::fs::write(lab.config(), &with_web).expect("write");
    let agent = lab.start().await;
    lab.append(&line("198.51.100.1").repeat(3));
    lab.append(&line("198.51.100.2").repeat(2));
    let web_line = |a: &str| {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&web)
            .expect("open");
        f.write_all(format!("web denied {a}\n").as_bytes())
            .expect("write");
    };
    web_line("203.0.113.5");
    web_line("203.0.113.5");
    lab.wait_bans(&["198.51.100.1"]).await;
    let mut stats: Stats = lab.ok(Command::Stats).await;
    for _ in 0..300 {
        if stats.offences == 7 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        stats = lab.ok(Command::Stats).await;
    }
    assert_eq!(stats.offences, 7, "{stats:?}");

    // ssh: maxretry 3 -> 4 (rebuilt, its counts start afresh); web unchanged.
    std::fs::write(
        lab.config(),
        with_web.replacen("maxretry = 3", "maxretry = 4", 1),
    )
    .expect("edit");
    let report: ReloadReport = lab.ok(Command::Reload).await;
    assert_eq!(report.jails.changed, ["ssh"]);
    assert_eq!(report.jails.kept, ["web"]);
    assert_eq!(report.sources.kept, ["auth", "web"]);
    assert_eq!(report.backends.kept, ["dry-run"]);
    assert_eq!(lab.bans().await.len(), 1, "bans survive a reload");
    let stats: Stats = lab.ok(Command::Stats).await;
    assert_eq!(stats.offences, 7, "counters carry on");

    // web kept its two offences: the third bans.
    web_line("203.0.113.5");
    // ssh forgot 198.51.100.2's two: two more do not reach 4.
    lab.append(&line("198.51.100.2").repeat(2));
    assert_eq!(
        lab.wait_bans(&["198.51.100.1", "203.0.113.5"]).await,
        ["198.51.100.1", "203.0.113.5"]
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(lab.bans().await.len(), 2);

    // A changed filter rebuilds its source, which resumes where it stopped.
    std::fs::write(
        lab.config(),
        with_web
            .replacen("maxretry = 3", "maxretry = 4", 1)
            .replace("web denied <HOST>$", "web (?:denied|refused) <HOST>$"),
    )
    .expect("edit");
    let report: ReloadReport = lab.ok(Command::Reload).await;
    assert_eq!(report.sources.changed, ["web"]);
    assert_eq!(report.sources.kept, ["auth"]);
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&web)
        .expect("open");
    f.write_all(b"web refused 203.0.113.6\n".repeat(3).as_slice())
        .expect("write");
    assert_eq!(
        lab.wait_bans(&["198.51.100.1", "203.0.113.5", "203.0.113.6"])
            .await,
        ["198.51.100.1", "203.0.113.5", "203.0.113.6"]
    );
    agent.stop().await;
}

/// A reload that lifts a ban records the lift, and what the stopped sources
/// read, in one store commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_that_lifts_a_ban_commits_to_the_store_once() {
    let lab = Lab::new();
    let agent = lab.start().await;
    lab.append(&line("198.51.100.7").repeat(3));
    assert_eq!(lab.wait_bans(&["198.51.100.7"]).await, ["198.51.100.7"]);
    // Settled: the commit count no longer moves.
    let mut commits = u64::MAX;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let stats: Stats = lab.ok(Command::Stats).await;
        if stats.store_commits == commits {
            break;
        }
        commits = stats.store_commits;
    }

    let config = std::fs::read_to_string(lab.config()).expect("read");
    std::fs::write(
        lab.config(),
        config.replace(
            "\"192.0.2.0/24\"]",
            "\"192.0.2.0/24\", \"198.51.100.0/24\"]",
        ),
    )
    .expect("edit");
    let report: ReloadReport = lab.ok(Command::Reload).await;
    assert_eq!(report.lifted, 1, "{report:?}");
    let stats: Stats = lab.ok(Command::Stats).await;
    assert_eq!(stats.store_commits, commits + 1, "{stats:?}");
    agent.stop().await;

    // The lift is in the store.
    let store = Store::open(&lab.dir.path().join("state")).expect("store");
    assert_eq!(store.active_bans(SystemTime::now()).expect("bans").len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_hooks_never_delay_a_ban_and_the_webhook_gets_the_event() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let lab = Lab::new();
    let marker = lab.path("hook-ran");
    lab.exec_hook(
        "slow-hook.sh",
        &format!("echo \"$1 $2\" > '{}'\nsleep 10", marker.display()),
        &format!(
            "exec = [\"{{script}}\", \"{{address}}\", \"{{jail}}\"], webhook = \"http://127.0.0.1:{port}/ban\", timeout = \"20s\""
        ),
    );
    let server = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.expect("accept");
        let mut req = Vec::new();
        let mut buf = [0u8; 4096];
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        loop {
            let n = s.read(&mut buf).await.expect("read");
            req.extend_from_slice(&buf[..n]);
            if n == 0 || req.ends_with(b"}") {
                break;
            }
        }
        s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            .await
            .expect("answer");
        req
    });
    let agent = lab.start().await;
    let started = Instant::now();
    let reply = lab
        .ask(Command::Ban {
            target: "198.51.100.7".into(),
            duration: None,
            jail: Some("ssh".into()),
            force: false,
        })
        .await;
    let took = started.elapsed();
    assert!(reply.ok, "{reply:?}");
    // The reply comes after the ban is enforced; the hook sleeps 10 s.
    assert!(
        took < Duration::from_secs(5),
        "the ban waited for the hook: {took:?}"
    );
    let req = tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("webhook in time")
        .expect("server");
    let text = String::from_utf8_lossy(&req);
    let body = &text[text.find("\r\n\r\n").expect("head end") + 4..];
    let json: serde_json::Value = serde_json::from_str(body).expect("json body");
    assert_eq!(json["event"], "ban");
    assert_eq!(json["address"], "198.51.100.7");
    assert_eq!(json["jail"], "ssh");
    assert_eq!(json["origin"], "manual");
    for _ in 0..500 {
        if marker.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        std::fs::read_to_string(&marker).expect("the exec hook ran"),
        "198.51.100.7 ssh\n"
    );
    let stats: Stats = lab.ok(Command::Stats).await;
    assert_eq!(stats.hooks.started, 2, "{:?}", stats.hooks);
    agent.stop().await;
}

/// Issue 16, item 7: a ban whose deadline passed while the agent was down was
/// pruned at start without its unban hook.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bans_that_ended_while_down_run_their_unban_hooks_at_start() {
    let lab = Lab::new();
    let marker = lab.path("unbanned");
    lab.exec_hook(
        "hook.sh",
        &format!("echo \"$1 $2\" >> '{}'", marker.display()),
        "exec = [\"{script}\", \"{event}\", \"{address}\"], events = [\"unban\"]",
    );
    {
        let mut store = Store::open(&lab.dir.path().join("state")).expect("store");
        let now = SystemTime::now();
        let ban = |target: &str, since: u64, until: u64| log2drop::engine::Ban {
            target: target.parse().expect("net"),
            jail: std::sync::Arc::from("ssh"),
            since: now - Duration::from_secs(since),
            until: Some(now - Duration::from_secs(until)),
            origin: log2drop::engine::Origin::Jail,
            reason: None,
            forced: false,
            node: None,
        };
        store
            .write(Batch::at(now - Duration::from_secs(7200)).decisions(&[
                log2drop::engine::Decision::Ban(ban("198.51.100.7/32", 7200, 3600)),
                log2drop::engine::Decision::Ban(ban("203.0.113.9/32", 100, 0)),
            ]))
            .expect("commit");
    }
    let agent = lab.start().await;
    let mut text = String::new();
    for _ in 0..500 {
        text = std::fs::read_to_string(&marker).unwrap_or_default();
        if text.lines().count() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut lines: Vec<&str> = text.lines().collect();
    lines.sort_unstable();
    assert_eq!(lines, ["unban 198.51.100.7", "unban 203.0.113.9"]);
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_stops_the_agent_and_keeps_the_stored_bans() {
    let lab = Lab::new();
    let agent = lab.start().await;
    lab.ask(ban_cmd("198.51.100.7", None)).await;
    let reply = lab.ask(Command::Flush).await;
    assert!(reply.ok, "{reply:?}");
    let report: log2drop::control::protocol::FlushReport = reply.decode().expect("report");
    assert!(report.stopping);
    assert_eq!(report.backends, [("dry-run".to_owned(), 0)]);
    agent.stopped(Duration::from_secs(10)).await;
    let store = Store::open(&lab.dir.path().join("state")).expect("store");
    assert_eq!(store.active_bans(SystemTime::now()).expect("bans").len(), 1);
}

/// Issue 11: `fail2ban = "relative.conf"` is the file next to the config, and
/// a reload notices an edit of that file (the config itself unchanged) and
/// rebuilds only the source that runs it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_notices_an_edited_fail2ban_filter_file_next_to_the_config() {
    let lab = Lab::with_extra(
        r#"
[filters.f2b]
fail2ban = "filters/demo.conf"

[sources.demo]
path = "{demo}"
filters = ["f2b"]

[sources.builtin]
path = "{ssh}"
filters = ["sshd"]

[jails.demo]
filters = ["f2b"]
maxretry = 1

[jails.builtin]
filters = ["sshd"]
"#,
    );
    let demo = lab.path("demo.log");
    std::fs::write(&demo, b"").expect("demo log");
    let ssh = lab.path("ssh.log");
    std::fs::write(&ssh, b"").expect("ssh log");
    std::fs::create_dir(lab.path("filters")).expect("dir");
    let filter = lab.path("filters/demo.conf");
    let write_filter = |word: &str| {
        std::fs::write(
            &filter,
            format!("[Definition]\nfailregex = ^{word} <HOST>$\ndatepattern = {{NONE}}\n"),
        )
        .expect("filter")
    };
    write_filter("denied");
    let text = std::fs::read_to_string(lab.config())
        .expect("read")
        .replace("{demo}", &demo.display().to_string())
        .replace("{ssh}", &ssh.display().to_string());
    std::fs::write(lab.config(), &text).expect("write");
    // The working directory is not the config's: the path is still found.
    assert_ne!(std::env::current_dir().expect("cwd"), lab.dir.path());
    let agent = lab.start().await;
    let demo_line = |l: &str| {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&demo)
            .expect("open");
        f.write_all(format!("{l}\n").as_bytes()).expect("write");
    };
    demo_line("denied 203.0.113.20");
    assert_eq!(lab.wait_bans(&["203.0.113.20"]).await, ["203.0.113.20"]);

    // A reload with nothing edited rebuilds nothing.
    let report: ReloadReport = lab.ok(Command::Reload).await;
    assert!(report.sources.changed.is_empty(), "{report:?}");

    // The filter file changes, the config does not.
    write_filter("refused");
    let report: ReloadReport = lab.ok(Command::Reload).await;
    assert_eq!(report.sources.changed, ["demo"]);
    assert_eq!(
        report.sources.kept,
        ["auth", "builtin"],
        "built-ins unaffected"
    );
    demo_line("refused 203.0.113.21");
    assert_eq!(
        lab.wait_bans(&["203.0.113.20", "203.0.113.21"]).await,
        ["203.0.113.20", "203.0.113.21"]
    );
    agent.stop().await;
}

#[test]
fn prepare_reports_config_problems_with_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "[agent]\nstate_dirr = 1\n").expect("write");
    let err = prepare(&path).err().expect("must fail");
    assert!(err.to_string().contains("bad.toml"), "{err}");
}

#[test]
fn an_unknown_socket_group_stops_prepare() {
    let lab = Lab::new();
    let text = std::fs::read_to_string(lab.config())
        .expect("read")
        .replace(
            "[agent]\n",
            "[agent]\nsocket_group = \"no-such-group-l2d\"\n",
        );
    std::fs::write(lab.config(), &text).expect("write");
    let err = prepare(&lab.config()).err().expect("must fail");
    let (line, col) = text
        .lines()
        .enumerate()
        .find_map(|(i, l)| {
            l.starts_with("socket_group")
                .then(|| (i + 1, l.find('"').expect("value") + 1))
        })
        .expect("the line");
    assert!(
        err.to_string().contains("no group \"no-such-group-l2d\""),
        "{err}"
    );
    // Issue 16, item 7: with its place, like every other config error.
    let at = format!(
        "{}:{line}:{col}: agent.socket_group",
        lab.config().display()
    );
    assert!(err.to_string().contains(&at), "{err}");
}

/// A port nothing listens on right now (the daemon binds it right after).
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// `curl` on the endpoint: the headers and the body.
async fn curl(url: String) -> (String, String) {
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("curl")
            .args(["-sS", "--max-time", "10", "-D", "-", &url])
            .output()
    })
    .await
    .expect("join")
    .expect("curl runs (it is in CI's APT_PACKAGES)");
    assert!(out.status.success(), "curl {:?}", out);
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let (head, body) = text.split_once("\r\n\r\n").expect("headers");
    (head.to_owned(), body.to_owned())
}

/// The value of sample `series` (name and labels as written) in `body`.
fn sample(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.parse().expect("number"))
}

/// Scrapes until `series` reads `want` (counters published per poll), or gives up
/// and returns the last body.
async fn scrape_until(url: &str, series: &str, want: f64) -> String {
    let mut body = String::new();
    for _ in 0..100 {
        body = curl(url.to_owned()).await.1;
        if sample(&body, series) == Some(want) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_endpoint_counts_lines_offences_and_bans() {
    let port = free_port();
    let lab = Lab::with_extra(&format!("\n[metrics]\nlisten = \"127.0.0.1:{port}\"\n"));
    let running = lab.start().await;
    let url = format!("http://127.0.0.1:{port}/metrics");

    let (head, body) = curl(url.clone()).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("application/openmetrics-text"), "{head}");
    assert!(body.ends_with("# EOF\n"), "{body}");
    assert_eq!(
        sample(&body, r#"log2drop_bans_active{jail="ssh"}"#),
        Some(0.0),
        "{body}"
    );
    assert_eq!(
        sample(&body, r#"log2drop_bans_total{jail="ssh",origin="jail"}"#),
        None
    );

    lab.append(&line("198.51.100.7").repeat(3));
    assert_eq!(lab.wait_bans(&["198.51.100.7"]).await, ["198.51.100.7"]);
    let body = scrape_until(&url, r#"log2drop_lines_total{source="auth"}"#, 3.0).await;
    for (series, want) in [
        (r#"log2drop_lines_total{source="auth"}"#, 3.0),
        (
            r#"log2drop_bytes_total{source="auth"}"#,
            (line("198.51.100.7").len() as f64 - 1.0) * 3.0,
        ),
        (
            r#"log2drop_offences_total{filter="ssh-fail",jail="ssh"}"#,
            3.0,
        ),
        (r#"log2drop_bans_total{jail="ssh",origin="jail"}"#, 1.0),
        (r#"log2drop_bans_active{jail="ssh"}"#, 1.0),
        (r#"log2drop_backend_bans_active{backend="dry-run"}"#, 1.0),
        (
            r#"log2drop_backend_decisions_total{backend="dry-run",action="ban"}"#,
            1.0,
        ),
        ("log2drop_decision_lag_seconds_count", 3.0),
    ] {
        assert_eq!(sample(&body, series), Some(want), "{series} in\n{body}");
    }
    assert!(
        sample(&body, "log2drop_store_commit_duration_seconds_count").is_some_and(|n| n >= 1.0),
        "{body}"
    );

    // A manual ban moves its own series; an unban counts too.
    let _: BanEntry = lab.ok(ban_cmd("203.0.113.9", Some("1h"))).await;
    let _: Vec<BanEntry> = lab.ok(unban_cmd("198.51.100.7")).await;
    let body = curl(url.clone()).await.1;
    assert_eq!(
        sample(
            &body,
            r#"log2drop_bans_total{jail="manual",origin="manual"}"#
        ),
        Some(1.0),
        "{body}"
    );
    assert_eq!(
        sample(&body, r#"log2drop_unbans_total{jail="ssh"}"#),
        Some(1.0),
        "{body}"
    );
    assert_eq!(
        sample(&body, r#"log2drop_bans_active{jail="ssh"}"#),
        Some(0.0),
        "{body}"
    );
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_port_in_use_stops_start_up_naming_it() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let lab = Lab::with_extra(&format!("\n[metrics]\nlisten = \"127.0.0.1:{port}\"\n"));
    let prepared = prepare(&lab.config()).expect("prepare");
    let backends = open_backends(&prepared.config).expect("backends");
    let (_stop, _reload, triggers) = Triggers::manual();
    let options = ServerOptions {
        admin_uids: vec![nix::unistd::geteuid().as_raw()],
        read_gid: None,
    };
    let err = run_prepared(prepared, backends, options, triggers, Instant::now())
        .await
        .expect_err("the port is taken");
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("metrics.listen 127.0.0.1:{port}")),
        "{msg}"
    );
}

/// `type = "auto"` without its file reads the journal with its `match` (through a
/// fake journalctl that records its arguments and prints sshd entries); a file
/// source whose file does not exist yet is shown as waiting until it appears.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_source_without_its_file_reads_the_journal_and_missing_files_wait() {
    let lab = Lab::new();
    let args = lab.path("journalctl.args");
    let script = lab.path("journalctl");
    let mut entries = String::new();
    for i in 0..3 {
        entries.push_str(&format!(
            "{{\"__REALTIME_TIMESTAMP\":\"$(date +%s)000000\",\"__CURSOR\":\"c{i}\",\"SYSLOG_IDENTIFIER\":\"sshd\",\"_PID\":\"7\",\"MESSAGE\":\"Failed password for root from 198.51.100.20 port 22 ssh2\"}}\n"
        ));
    }
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$@\" > {}\ncat <<EOF\n{entries}EOF\nexec sleep 600\n",
            args.display()
        ),
    )
    .expect("script");
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let missing = lab.path("no-such-auth.log");
    let later = lab.path("later.log");
    lab.write_config(&format!(
        "\n[sources.sshd]\ntype = \"auto\"\npath = \"{}\"\nmatch = [\"_SYSTEMD_UNIT=ssh.service\", \"+\", \"_SYSTEMD_UNIT=sshd.service\"]\njournalctl = \"{}\"\nfilters = [\"ssh-fail\"]\n\n[sources.later]\npath = \"{}\"\nfilters = [\"ssh-fail\"]\n",
        missing.display(),
        script.display(),
        later.display()
    ));
    let running = lab.start().await;
    assert_eq!(lab.wait_bans(&["198.51.100.20"]).await, ["198.51.100.20"]);
    let recorded = std::fs::read_to_string(&args).expect("journalctl ran");
    assert!(
        recorded.contains("_SYSTEMD_UNIT=ssh.service + _SYSTEMD_UNIT=sshd.service"),
        "{recorded}"
    );

    let status: Status = lab.ok(Command::Status).await;
    let source = |name: &str| {
        status
            .sources
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("{name} in {status:?}"))
            .clone()
    };
    assert_eq!(source("sshd").path, "journal");
    assert!(!source("sshd").waiting);
    assert!(!source("auth").waiting, "its file exists");
    assert!(source("later").waiting, "{status:?}");

    std::fs::write(&later, b"").expect("create");
    let status: Status = lab.ok(Command::Status).await;
    assert!(!status.sources.iter().any(|s| s.waiting), "{status:?}");
    running.stop().await;
}

/// With its file present, `type = "auto"` follows the file and never runs journalctl.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_source_with_its_file_follows_the_file() {
    let lab = Lab::new();
    let config = std::fs::read_to_string(lab.config()).expect("read");
    let config = config.replace(
        "[sources.auth]\n",
        "[sources.auth]\ntype = \"auto\"\nmatch = [\"_SYSTEMD_UNIT=ssh.service\"]\njournalctl = \"/nonexistent/journalctl\"\n",
    );
    std::fs::write(lab.config(), config).expect("write");
    let running = lab.start().await;
    lab.append(&line("198.51.100.21").repeat(3));
    assert_eq!(lab.wait_bans(&["198.51.100.21"]).await, ["198.51.100.21"]);
    let status: Status = lab.ok(Command::Status).await;
    assert_eq!(status.sources[0].path, lab.log().display().to_string());
    running.stop().await;
}

/// Issue 16, item 7: a ban `ban_delay` scheduled while the agent runs was
/// forgotten by a restart. It is in the store when the agent stops, comes back
/// at the next start with its due time, and goes into force then.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ban_scheduled_by_ban_delay_survives_a_restart() {
    let lab = Lab::new();
    let config = std::fs::read_to_string(lab.config())
        .expect("read")
        .replace(
            "bantime = \"1h\"\n",
            "bantime = \"1h\"\nban_delay = \"3s\"\n",
        );
    std::fs::write(lab.config(), config).expect("write");
    let agent = lab.start().await;
    lab.append(&line("198.51.100.7").repeat(3));
    let state = lab.dir.path().join("state");
    let mut scheduled = Vec::new();
    for _ in 0..300 {
        scheduled = Store::open(&state)
            .expect("store")
            .scheduled_bans()
            .expect("scheduled");
        if !scheduled.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    agent.stop().await;
    assert_eq!(scheduled.len(), 1, "scheduled while running");
    assert_eq!(scheduled[0].target.to_string(), "198.51.100.7/32");

    let agent = lab.start().await;
    // Due 3 s after the offence: up to 15 s on a loaded machine.
    let mut got = Vec::new();
    for _ in 0..3 {
        got = lab.wait_bans(&["198.51.100.7"]).await;
        if got == ["198.51.100.7"] {
            break;
        }
    }
    assert_eq!(got, ["198.51.100.7"], "restored and put into force");
    agent.stop().await;
    let left = Store::open(&state)
        .expect("store")
        .scheduled_bans()
        .expect("scheduled");
    assert!(left.is_empty(), "in force: no longer scheduled: {left:?}");
}
