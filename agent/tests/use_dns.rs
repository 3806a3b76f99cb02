//! Host names in log lines (`use_dns`) and forward-confirmed reverse DNS
//! (`apache-fakegooglebot`) against a real DNS server: each test starts
//! Debian's `dnsmasq` on 127.0.0.1 at a free port, answering only from a hosts
//! file it writes (A, AAAA and PTR records of documentation addresses) and
//! `--ptr-record`s, and points the resolver at it. Nothing reaches the real
//! DNS. Without dnsmasq a test says so and returns, except under CI=true
//! (.ci/run installs it), where that is a failure.

use std::net::{TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use log2drop::control::protocol::{BanEntry, Command as Ctl, Stats};

mod daemon_common;

/// The test zone: names with A/AAAA and PTR records (dnsmasq reads it as an
/// /etc/hosts file: each line's first name is the address's PTR).
const HOSTS: &str = "\
203.0.113.7    scan.example.org
2001:db8::7    scan.example.org
192.0.2.9      inside.example.org
203.0.113.8    inside.example.org
203.0.113.4    crawl-203-0-113-4.googlebot.com
198.51.100.9   crawl.googlebot.com.example.net
";

/// A dnsmasq answering from [`HOSTS`] on 127.0.0.1, stopped on drop.
struct Dns {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Dns {
    /// Starts one, or `None` (with a message) when dnsmasq is not installed.
    fn start() -> Option<Dns> {
        let program = ["/usr/sbin/dnsmasq", "/usr/bin/dnsmasq"]
            .into_iter()
            .find(|p| Path::new(p).exists());
        let Some(program) = program else {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "dnsmasq is missing under CI=true (.ci/run installs dnsmasq-base)"
            );
            eprintln!("skipping: dnsmasq is not installed (apt-get install dnsmasq-base)");
            return None;
        };
        // A free port: bound and released; retried if another process takes it.
        for _ in 0..5 {
            let dir = tempfile::tempdir().expect("tempdir");
            let hosts = dir.path().join("hosts");
            std::fs::write(&hosts, HOSTS).expect("hosts file");
            let port = UdpSocket::bind("127.0.0.1:0")
                .expect("bind")
                .local_addr()
                .expect("addr")
                .port();
            let child = Command::new(program)
                .args([
                    "--no-daemon",
                    "--conf-file=/dev/null",
                    "--no-resolv",
                    "--no-hosts",
                    "--no-poll",
                    "--bind-interfaces",
                    "--listen-address=127.0.0.1",
                    "--pid-file=",
                    "--user=root",
                    "--local-ttl=60",
                    // A PTR in googlebot.com whose name does not point back.
                    "--ptr-record=8.100.51.198.in-addr.arpa,crawl-203-0-113-4.googlebot.com",
                ])
                .arg(format!("--port={port}"))
                .arg(format!("--addn-hosts={}", hosts.display()))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start dnsmasq");
            let mut dns = Dns {
                child,
                port,
                _dir: dir,
            };
            if dns.ready() {
                return Some(dns);
            }
        }
        panic!("dnsmasq did not start on a free port");
    }

    /// Waits until it accepts connections on its TCP port.
    fn ready(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    fn server(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Dns {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn now_prefix() -> String {
    format!("{} web1", jiff::Timestamp::now())
}

/// `log2drop test ARGS` on `log`, its standard output.
fn log2drop_test(log: &str, args: &[&str]) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("x.log");
    std::fs::write(&file, log).expect("log");
    let out = Command::new(env!("CARGO_BIN_EXE_log2drop"))
        .arg("test")
        .args(args)
        .arg(&file)
        .output()
        .expect("run log2drop");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect()
}

const SSHD_NAMES: &str = "\
May 19 10:04:03 web1 sshd[5002]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=scan.example.org
May 19 10:04:04 web1 sshd[5002]: Connection closed by authenticating user root 203.0.113.7 port 40101 [preauth]
May 19 10:04:05 web1 sshd[5003]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=nowhere.example.org
May 19 10:04:06 web1 sshd[5003]: Connection closed by authenticating user root 203.0.113.66 port 40102 [preauth]
May 19 10:04:07 web1 sshd[5004]: Failed password for root from 198.51.100.4 port 40103 ssh2
";

#[test]
fn log2drop_test_json_reports_the_name_and_its_addresses() {
    let Some(dns) = Dns::start() else { return };
    let server = dns.server();
    let out = log2drop_test(SSHD_NAMES, &["sshd", "--json", "--dns-server", &server]);
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 3, "{out}");
    assert_eq!(lines[0]["host"], "scan.example.org");
    let mut addrs: Vec<&str> = lines[0]["addresses"]
        .as_array()
        .expect("addresses")
        .iter()
        .map(|a| a.as_str().expect("address"))
        .collect();
    addrs.sort_unstable();
    assert_eq!(addrs, ["2001:db8::7", "203.0.113.7"]);
    assert_eq!(lines[0]["line"], 2, "counted where its session ended");
    assert_eq!(lines[1]["host"], "nowhere.example.org");
    assert_eq!(lines[1]["addresses"], serde_json::json!([]), "{out}");
    assert_eq!(lines[2]["host"], "198.51.100.4");
    assert_eq!(lines[2]["addresses"], serde_json::json!(["198.51.100.4"]));

    // --no-dns shows the names without looking them up; use_dns = no drops them.
    let out = log2drop_test(SSHD_NAMES, &["sshd", "--json", "--no-dns"]);
    let lines = json_lines(&out);
    assert_eq!(lines[0]["host"], "scan.example.org");
    assert_eq!(lines[0]["addresses"], serde_json::json!([]));
    let out = log2drop_test(
        SSHD_NAMES,
        &["sshd", "--json", "--use-dns", "no", "--dns-server", &server],
    );
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 1, "{out}");
    assert_eq!(lines[0]["host"], "198.51.100.4");
    // The summary says what happened to names.
    let text = log2drop_test(SSHD_NAMES, &["sshd", "--dns-server", &server]);
    assert!(
        text.contains("host names: 2 offences by names (1 gave no address, so no ban)"),
        "{text}"
    );
}

const GOOGLEBOT: &str = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";

#[test]
fn log2drop_test_json_gives_a_names_captures() {
    // Captures (issue 12) come with an offence by a host name as with one by an
    // address; --no-dns needs no name server.
    let log = "\
May 19 10:05:01 web1 sshd[6001]: Failed password for invalid user oracle from bot.example.org port 40200 ssh2
May 19 10:05:02 web1 sshd[6002]: Failed password for invalid user admin from 203.0.113.9 port 40201 ssh2
";
    let out = log2drop_test(log, &["sshd", "--json", "--no-dns"]);
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 2, "{out}");
    assert_eq!(lines[0]["host"], "bot.example.org");
    assert_eq!(lines[0]["captures"]["user"], "oracle", "{out}");
    assert_eq!(lines[1]["host"], "203.0.113.9");
    assert_eq!(lines[1]["captures"]["user"], "admin", "{out}");
}

fn access(addr: &str, agent: &str) -> String {
    // Now: the agent skips lines older than the jails' findtime.
    let at = jiff::Timestamp::now().strftime("%d/%b/%Y:%H:%M:%S +0000");
    format!(r#"{addr} - - [{at}] "GET / HTTP/1.1" 200 612 "-" "{agent}""#)
}

#[test]
fn fakegooglebot_counts_every_claim_but_the_forward_confirmed_ones() {
    let Some(dns) = Dns::start() else { return };
    let server = dns.server();
    let log = [
        // Genuine: PTR in googlebot.com, and that name resolves back.
        access("203.0.113.4", GOOGLEBOT),
        // PTR claims Google's crawler name; the name points elsewhere.
        access("198.51.100.8", GOOGLEBOT),
        // PTR outside the domain that merely starts like it.
        access("198.51.100.9", GOOGLEBOT),
        // No PTR at all.
        access("203.0.113.10", GOOGLEBOT),
        // No claim.
        access("203.0.113.11", "curl/8.5.0"),
    ]
    .join("\n");
    let out = log2drop_test(
        &log,
        &["apache-fakegooglebot", "--json", "--dns-server", &server],
    );
    let hosts: Vec<String> = json_lines(&out)
        .iter()
        .map(|l| l["host"].as_str().expect("host").to_owned())
        .collect();
    assert_eq!(
        hosts,
        ["198.51.100.8", "198.51.100.9", "203.0.113.10"],
        "{out}"
    );
    let text = log2drop_test(&log, &["apache-fakegooglebot", "--dns-server", &server]);
    assert!(text.contains("genuine clients: 1 lines"), "{text}");
    // Without lookups every claim counts.
    let out = log2drop_test(&log, &["apache-fakegooglebot", "--json", "--no-dns"]);
    assert_eq!(json_lines(&out).len(), 4, "{out}");
}

/// A daemon on a dry-run backend with its control socket in a temp dir, the
/// resolver pointed at the test DNS server.
struct Lab {
    dir: tempfile::TempDir,
}

impl Lab {
    fn new(dns: &Dns, extra_jail: &str) -> Lab {
        let dir = tempfile::tempdir().expect("tempdir");
        let lab = Lab { dir };
        std::fs::write(lab.path("auth.log"), b"").expect("log");
        std::fs::write(lab.path("access.log"), b"").expect("log");
        let config = format!(
            r#"
[agent]
state_dir = "{state}"
socket = "{socket}"
allow = ["127.0.0.0/8", "::1", "192.0.2.0/24"]
allow_own_addresses = false

[dns]
servers = ["{server}"]
timeout = "2s"

[backends.dry-run]

[sources.auth]
path = "{auth}"
filters = ["sshd"]

[sources.web]
path = "{access}"
filters = ["apache-fakegooglebot"]

[jails.ssh]
filters = ["sshd"]
maxretry = 1
{extra_jail}

[jails.fake]
filters = ["apache-fakegooglebot"]
maxretry = 1
"#,
            state = lab.path("state").display(),
            socket = lab.socket().display(),
            server = dns.server(),
            auth = lab.path("auth.log").display(),
            access = lab.path("access.log").display(),
        );
        std::fs::write(lab.path("log2drop.toml"), config).expect("config");
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

    async fn ask<T: serde::de::DeserializeOwned>(&self, cmd: Ctl) -> T {
        daemon_common::ok(&self.socket(), cmd).await
    }

    async fn bans(&self) -> Vec<String> {
        let bans: Vec<BanEntry> = self.ask(Ctl::Bans { jail: None }).await;
        let mut out: Vec<String> = bans.into_iter().map(|b| b.address).collect();
        out.sort();
        out
    }

    /// Waits until `done` holds for the stats (at most 10 s).
    async fn wait_stats(&self, done: impl Fn(&Stats) -> bool) -> Stats {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let s: Stats = self.ask(Ctl::Stats).await;
            if done(&s) || Instant::now() > deadline {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn run<F: std::future::Future<Output = ()>>(&self, body: impl FnOnce() -> F) {
        daemon_common::run_daemon(&self.path("log2drop.toml"), &self.socket(), body).await;
    }
}

fn pam(pid: u32, host: &str) -> String {
    format!(
        "{} sshd[{pid}]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost={host}",
        now_prefix()
    )
}

fn closed(pid: u32, addr: &str) -> String {
    format!(
        "{} sshd[{pid}]: Connection closed by authenticating user root {addr} port 40000 [preauth]",
        now_prefix()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_bans_a_names_addresses_and_never_through_an_allowlisted_one() {
    let Some(dns) = Dns::start() else { return };
    let lab = Lab::new(&dns, "");
    lab.run(|| async {
        // A name that resolves partly into the allowlist (192.0.2.9): refused
        // whole, nobody banned.
        lab.append("auth.log", &pam(10, "inside.example.org"));
        lab.append("auth.log", &closed(10, "203.0.113.8"));
        let s = lab.wait_stats(|s| s.names.refused >= 1).await;
        assert_eq!(s.names.refused, 1, "{:?}", s.names);
        assert_eq!(lab.bans().await, Vec::<String>::new());

        // A name of an attacker: both its addresses are banned (IPv6 as /64).
        lab.append("auth.log", &pam(11, "scan.example.org"));
        lab.append("auth.log", &closed(11, "203.0.113.7"));
        let s = lab.wait_stats(|s| s.bans_active >= 2).await;
        assert_eq!(lab.bans().await, ["2001:db8::/64", "203.0.113.7"], "{s:?}");
        assert_eq!(s.names.matched, 2);
        assert_eq!(s.names.offences, 2);

        // A name without an address bans nothing and is counted.
        lab.append("auth.log", &pam(12, "nowhere.example.org"));
        lab.append("auth.log", &closed(12, "203.0.113.66"));
        let s = lab.wait_stats(|s| s.names.unresolved >= 1).await;
        assert_eq!(s.names.unresolved, 1, "{:?}", s.names);

        // apache-fakegooglebot: the genuine crawler passes, the impostor is banned.
        lab.append("access.log", &access("203.0.113.4", GOOGLEBOT));
        lab.append("access.log", &access("198.51.100.8", GOOGLEBOT));
        let s = lab
            .wait_stats(|s| s.bans_active >= 3 && s.names.genuine >= 1)
            .await;
        assert_eq!(s.names.genuine, 1, "{:?}", s.names);
        assert_eq!(
            lab.bans().await,
            ["198.51.100.8", "2001:db8::/64", "203.0.113.7"]
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jail_with_use_dns_no_ignores_names() {
    let Some(dns) = Dns::start() else { return };
    let lab = Lab::new(&dns, "use_dns = \"no\"");
    lab.run(|| async {
        lab.append("auth.log", &pam(20, "scan.example.org"));
        lab.append("auth.log", &closed(20, "203.0.113.7"));
        let s = lab.wait_stats(|s| s.names.ignored >= 1).await;
        assert_eq!(s.names.ignored, 1, "{:?}", s.names);
        // An address line still counts.
        lab.append(
            "auth.log",
            &format!(
                "{} sshd[21]: Failed password for root from 198.51.100.4 port 40103 ssh2",
                now_prefix()
            ),
        );
        lab.wait_stats(|s| s.bans_active >= 1).await;
        assert_eq!(lab.bans().await, ["198.51.100.4"]);
    })
    .await;
}
