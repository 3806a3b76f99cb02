//! Consolidation through the whole daemon: one address misbehaving in two logs,
//! each followed by its own source with its own filter, adds up in a jail that
//! takes both filters; a jail with weights scores across the logs the same way.
//! Runs unprivileged (dry-run backend, control socket in a temp dir).

use std::path::PathBuf;
use std::time::Duration;

use log2drop::control::protocol::{BanEntry, Command};

mod daemon_common;

struct Lab {
    dir: tempfile::TempDir,
}

impl Lab {
    fn new(jails: &str) -> Lab {
        let dir = tempfile::tempdir().expect("tempdir");
        let lab = Lab { dir };
        for log in ["auth.log", "web.log"] {
            std::fs::write(lab.path(log), b"").expect("create log");
        }
        let config = format!(
            r#"
[agent]
state_dir = "{state}"
socket = "{socket}"
allow_own_addresses = false

[backends.dry-run]

[filters.ssh-fail]
regex = ['sshd\[\d+\]: Failed password for \S+ from <HOST> port \d+$']

[filters.web-probe]
regex = ['^<HOST> - - "GET /wp-login\.php HTTP/1\.1" 404$']

[sources.auth]
path = "{auth}"
filters = ["ssh-fail"]

[sources.web]
path = "{web}"
filters = ["web-probe"]

{jails}
"#,
            state = lab.path("state").display(),
            socket = lab.socket().display(),
            auth = lab.path("auth.log").display(),
            web = lab.path("web.log").display(),
        );
        std::fs::write(lab.path("log2drop.toml"), config).expect("write config");
        lab
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn socket(&self) -> PathBuf {
        self.path("ctl.sock")
    }

    fn append(&self, log: &str, line: &str) {
        daemon_common::append(&self.path(log), &format!("{line}\n"));
    }

    async fn bans(&self) -> Vec<BanEntry> {
        daemon_common::ok(&self.socket(), Command::Bans { jail: None }).await
    }

    async fn wait_for_bans(&self, n: usize) -> Vec<BanEntry> {
        let mut bans = Vec::new();
        for _ in 0..300 {
            bans = self.bans().await;
            if bans.len() >= n {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        bans
    }
}

fn ssh(addr: &str) -> String {
    format!("sshd[7]: Failed password for root from {addr} port 2222")
}

fn web(addr: &str) -> String {
    format!("{addr} - - \"GET /wp-login.php HTTP/1.1\" 404")
}

async fn run<F: std::future::Future<Output = ()>>(lab: &Lab, body: impl FnOnce() -> F) {
    daemon_common::run_daemon(&lab.path("log2drop.toml"), &lab.socket(), body).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offences_in_two_logs_add_up_in_one_jail() {
    let lab = Lab::new(
        "[jails.both]\nfilters = [\"ssh-fail\", \"web-probe\"]\nmaxretry = 4\nfindtime = \"10m\"\nbantime = \"1h\"\n",
    );
    run(&lab, || async {
        // Two offences in each log: neither log alone reaches 4.
        lab.append("auth.log", &ssh("198.51.100.7"));
        lab.append("web.log", &web("198.51.100.7"));
        lab.append("auth.log", &ssh("198.51.100.7"));
        // Another address with 3 offences across both logs stays below.
        lab.append("auth.log", &ssh("198.51.100.8"));
        lab.append("web.log", &web("198.51.100.8"));
        lab.append("web.log", &web("198.51.100.8"));
        lab.append("web.log", &web("198.51.100.7"));
        let bans = lab.wait_for_bans(1).await;
        assert_eq!(bans.len(), 1, "{bans:?}");
        assert_eq!(bans[0].address, "198.51.100.7");
        assert_eq!(bans[0].jail, "both");
        // Give the other address's lines time to be read: still not banned.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let bans = lab.bans().await;
        assert!(bans.iter().all(|b| b.address != "198.51.100.8"), "{bans:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weighted_offences_score_across_logs() {
    let lab = Lab::new(
        "[jails.score]\nfilters = [\"ssh-fail\", \"web-probe\"]\nweight = { ssh-fail = 3 }\nthreshold = 5\n",
    );
    run(&lab, || async {
        lab.append("web.log", &web("2001:db8:7::1"));
        lab.append("web.log", &web("2001:db8:7::2"));
        // 1 + 1 from two addresses of one /64, then a heavy 3 from a third.
        lab.append("auth.log", &ssh("2001:db8:7::3"));
        let bans = lab.wait_for_bans(1).await;
        assert_eq!(bans.len(), 1, "{bans:?}");
        assert_eq!(bans[0].address, "2001:db8:7::/64");
    })
    .await;
}
