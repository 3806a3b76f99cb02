//! The fleet end to end: a real `redis-server` started by each test on
//! 127.0.0.1 (a free port, a temporary directory, stopped by a guard), and two
//! or three agents in this process, each with its own state directory, log file
//! and control socket, the dry-run backend, sharing jail `ssh`.
//!
//! Without `redis-server` on PATH (or at /usr/bin) the tests say so and return;
//! under CI=true that is a failure (`.ci/run` installs it).

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Child, Command as Process, Stdio};
use std::time::{Duration, Instant};

use log2drop::control::protocol::{BanEntry, Command, Reply};
use log2drop::engine::Origin;
use log2drop::fleet::FleetStatus;

mod daemon_common;

const STREAM: &str = "test:bans";

/// A `redis-server` of this test's own; killed and reaped on drop.
struct Redis {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
    /// TLS only (`--port 0`), client certificates required.
    tls: bool,
}

/// Runs openssl in `dir`, failing the test with its stderr.
fn openssl(dir: &std::path::Path, args: &[&str]) {
    let out = Process::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A throwaway CA (`ca.pem`), a server certificate for 127.0.0.1
/// (`server.pem`, `server.key`) and a client certificate (`client.pem`,
/// `client.key`) in `dir`; P-256 keys, valid one day.
fn make_certificates(dir: &std::path::Path) {
    let key = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(key);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "1",
        "-subj",
        "/CN=log2drop test CA",
    ]);
    openssl(dir, &ca);
    for (name, ext) in [
        (
            "server",
            "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        ),
        (
            "client",
            "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
        ),
    ] {
        std::fs::write(dir.join(format!("{name}.ext")), ext).expect("ext file");
        let (k, csr, pem, extf) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.pem"),
            format!("{name}.ext"),
        );
        let subj = format!("/CN=log2drop test {name}");
        let mut req = vec!["req"];
        req.extend(key);
        req.extend(["-keyout", &k, "-out", &csr, "-subj", &subj]);
        openssl(dir, &req);
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "1",
                "-out",
                &pem,
                "-extfile",
                &extf,
            ],
        );
    }
}

fn redis_binary() -> Option<PathBuf> {
    let found = ["/usr/bin/redis-server", "/usr/local/bin/redis-server"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists());
    if found.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "redis-server is not installed; CI must install it (.ci/run APT_PACKAGES)"
        );
        eprintln!("SKIPPED: redis-server is not installed (apt-get install redis-server)");
    }
    found
}

impl Redis {
    /// Starts one, or `None` (test skipped) without the binary.
    fn start() -> Option<Redis> {
        Redis::start_with(false)
    }

    /// One that speaks TLS only and requires a client certificate signed by
    /// its CA (throwaway certificates in its directory).
    fn start_tls() -> Option<Redis> {
        Redis::start_with(true)
    }

    fn start_with(tls: bool) -> Option<Redis> {
        redis_binary()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let mut r = Redis {
            child: None,
            port,
            dir: tempfile::tempdir().expect("tempdir"),
            tls,
        };
        if tls {
            make_certificates(r.dir.path());
        }
        r.spawn();
        Some(r)
    }

    fn file(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    /// The `tls` line of an agent's `[fleet]`: the CA, and with `client` the
    /// client certificate and key.
    fn tls_config(&self, client: bool) -> String {
        match (self.tls, client) {
            (false, _) => String::new(),
            (true, false) => format!("tls = {{ ca = \"{}\" }}", self.file("ca.pem")),
            (true, true) => format!(
                "tls = {{ ca = \"{}\", cert = \"{}\", key = \"{}\" }}",
                self.file("ca.pem"),
                self.file("client.pem"),
                self.file("client.key")
            ),
        }
    }

    /// Runs the server: every acknowledged write is on disk (append-only file,
    /// fsync always), as a fleet deployment that must not lose bans would run it.
    fn spawn(&mut self) {
        let bin = redis_binary().expect("redis-server");
        let mut cmd = Process::new(bin);
        if self.tls {
            cmd.args(["--port", "0", "--tls-port", &self.port.to_string()])
                .args(["--tls-cert-file", &self.file("server.pem")])
                .args(["--tls-key-file", &self.file("server.key")])
                .args(["--tls-ca-cert-file", &self.file("ca.pem")])
                .args(["--tls-auth-clients", "yes"]);
        } else {
            cmd.args(["--port", &self.port.to_string()]);
        }
        let child = cmd
            .args(["--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(self.dir.path())
            .args([
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
            ])
            .args(["--daemonize", "no", "--protected-mode", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(mut c) = self.client().get_connection()
                && redis::cmd("PING").query::<String>(&mut c).is_ok()
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server did not answer on port {}", self.port);
    }

    /// SIGKILL, as a crash would.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn url(&self) -> String {
        let scheme = if self.tls { "rediss" } else { "redis" };
        format!("{scheme}://127.0.0.1:{}/0", self.port)
    }

    fn client(&self) -> redis::Client {
        if !self.tls {
            return redis::Client::open(self.url()).expect("client");
        }
        let read = |name: &str| std::fs::read(self.dir.path().join(name)).expect("certificate");
        redis::Client::build_with_tls(
            self.url(),
            redis::TlsCertificates {
                client_tls: Some(redis::ClientTlsConfig {
                    client_cert: read("client.pem"),
                    client_key: read("client.key"),
                }),
                root_cert: Some(read("ca.pem")),
            },
        )
        .expect("TLS client")
    }

    fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> T {
        let mut c = self.client().get_connection().expect("connect");
        cmd.query(&mut c).expect("query")
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One agent: its directory, config and, while running, its task.
struct Agent {
    dir: tempfile::TempDir,
    running: Option<daemon_common::Running>,
}

fn line(addr: &str) -> String {
    format!("sshd[1]: Failed password for root from {addr} port 22 ssh2\n")
}

impl Agent {
    /// An agent named `node`; `allow` is added to its allowlist. Against a TLS
    /// Redis it has the CA and a client certificate.
    fn new(redis: &Redis, node: &str, allow: &str) -> Agent {
        Agent::with_tls(redis, node, allow, &redis.tls_config(true))
    }

    /// [`Agent::new`] with `tls` as the `[fleet]` table's `tls` line.
    fn with_tls(redis: &Redis, node: &str, allow: &str, tls: &str) -> Agent {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = Agent { dir, running: None };
        std::fs::write(a.log(), b"").expect("log");
        let config = format!(
            r#"
[agent]
state_dir = "{state}"
socket = "{socket}"
allow = ["127.0.0.0/8", "::1"{allow}]

[backends.dry-run]

[filters.ssh-fail]
regex = ['Failed password for .* from <HOST> port \d+']

[sources.auth]
path = "{log}"
filters = ["ssh-fail"]

[jails.ssh]
filters = ["ssh-fail"]
maxretry = 1
bantime = "1h"

[fleet]
redis = "{url}"
node = "{node}"
stream = "{STREAM}"
share = ["ssh"]
share_manual = true
{tls}
"#,
            state = a.dir.path().join("state").display(),
            socket = a.socket().display(),
            log = a.log().display(),
            url = redis.url(),
        );
        std::fs::write(a.config(), config).expect("config");
        a
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("log2drop.toml")
    }

    /// Adds `[metrics]` on a free port to the config (before the start); returns
    /// the endpoint's address.
    fn with_metrics(&self) -> std::net::SocketAddr {
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port");
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(self.config())
            .expect("config");
        writeln!(f, "\n[metrics]\nlisten = \"{addr}\"").expect("append");
        addr
    }
    fn socket(&self) -> PathBuf {
        self.dir.path().join("ctl.sock")
    }
    fn log(&self) -> PathBuf {
        self.dir.path().join("auth.log")
    }

    async fn start(&mut self) {
        self.running = Some(daemon_common::start(&self.config(), &self.socket()).await);
    }

    async fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            running.stop().await;
        }
    }

    fn offend(&self, addr: &str) {
        daemon_common::append(&self.log(), &line(addr));
    }

    async fn ask(&self, cmd: Command) -> Reply {
        daemon_common::ask(&self.socket(), cmd).await
    }

    async fn bans(&self) -> Vec<BanEntry> {
        daemon_common::ok(&self.socket(), Command::Bans { jail: None }).await
    }

    async fn fleet(&self) -> FleetStatus {
        daemon_common::ok(&self.socket(), Command::Fleet).await
    }

    /// Polls until `check` holds for this agent's bans, or gives up after 20 s;
    /// returns the last list.
    async fn wait(&self, check: impl Fn(&[BanEntry]) -> bool) -> Vec<BanEntry> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let bans = self.bans().await;
            if check(&bans) || Instant::now() > deadline {
                return bans;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until exactly `want` (sorted addresses) are banned.
    async fn wait_for(&self, want: &[String]) -> Vec<String> {
        let addrs = |b: &[BanEntry]| {
            let mut a: Vec<String> = b.iter().map(|e| e.address.clone()).collect();
            a.sort();
            a
        };
        addrs(&self.wait(|b| addrs(b) == want).await)
    }
}

fn sorted(v: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut v: Vec<String> = v.into_iter().collect();
    v.sort();
    v
}

/// Agents `a` and `b`, started; `allow_b` is added to b's allowlist.
async fn pair(redis: &Redis, allow_b: &str) -> (Agent, Agent) {
    let mut a = Agent::new(redis, "a", "");
    let mut b = Agent::new(redis, "b", allow_b);
    a.start().await;
    b.start().await;
    (a, b)
}

fn ban(target: &str, duration: &str) -> Command {
    Command::Ban {
        target: target.into(),
        duration: Some(duration.into()),
        jail: None,
        force: false,
    }
}

fn unban(target: &str, fleet: bool) -> Command {
    Command::Unban {
        target: Some(target.into()),
        all: false,
        jail: None,
        fleet,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ban_reaches_every_agent_with_its_node_and_is_not_published_again() {
    let Some(redis) = Redis::start() else { return };
    let mut a = Agent::new(&redis, "a", "");
    let mut b = Agent::new(&redis, "b", "");
    let mut c = Agent::new(&redis, "c", "");
    for x in [&mut a, &mut b, &mut c] {
        x.start().await;
    }
    a.offend("198.51.100.7");
    let want = vec!["198.51.100.7".to_owned()];
    for x in [&b, &c] {
        assert_eq!(x.wait_for(&want).await, want);
        let ban = &x.bans().await[0];
        assert_eq!(ban.origin, Origin::Fleet);
        assert_eq!(ban.node.as_deref(), Some("a"));
        assert_eq!(ban.jail, "fleet");
        let mine = &a.bans().await[0];
        assert_eq!(ban.until, mine.until, "the remote deadline is kept");
    }
    let sb = b.fleet().await;
    assert!(sb.connected, "{sb:?}");
    assert_eq!((sb.received, sb.applied, sb.published), (1, 1, 0), "{sb:?}");
    assert_eq!(
        sb.peers.iter().map(|p| p.node.as_str()).collect::<Vec<_>>(),
        ["a"]
    );
    assert_eq!(a.fleet().await.published, 1);

    // A manual ban on c (share_manual) reaches a and b.
    let r = c.ask(ban("203.0.113.44", "10m")).await;
    assert!(r.ok, "{r:?}");
    let want = sorted(["198.51.100.7".to_owned(), "203.0.113.44".to_owned()]);
    for x in [&a, &b, &c] {
        assert_eq!(x.wait_for(&want).await, want);
    }

    // `unban` of a remote ban lifts it here only; `--fleet` everywhere.
    let r = b.ask(unban("203.0.113.44", false)).await;
    assert!(r.ok, "{r:?}");
    assert_eq!(b.wait_for(&want[..1]).await, want[..1]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        a.bans().await.len(),
        2,
        "a plain unban of a remote ban stays local"
    );
    let r = b.ask(unban("198.51.100.7", true)).await;
    assert!(r.ok, "{r:?}");
    let only = vec!["203.0.113.44".to_owned()];
    assert_eq!(a.wait_for(&only).await, only, "the owner lifts it too");
    assert_eq!(c.wait_for(&only).await, only);
    assert_eq!(b.wait_for(&[]).await, Vec::<String>::new());

    // Every agent published only what it banned or lifted itself.
    let published: Vec<u64> = [
        a.fleet().await.published,
        b.fleet().await.published,
        c.fleet().await.published,
    ]
    .into();
    assert_eq!(
        published,
        [1, 1, 1],
        "a: ban; b: unban --fleet; c: manual ban"
    );
    for x in [&mut a, &mut b, &mut c] {
        x.stop().await;
    }
}

/// One scrape of the metrics endpoint at `addr`: the body.
async fn scrape(addr: std::net::SocketAddr) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .await
        .expect("request");
    let mut text = String::new();
    s.read_to_string(&mut text).await.expect("response");
    let (head, body) = text.split_once("\r\n\r\n").expect("headers");
    assert!(
        head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"),
        "{head}"
    );
    body.to_owned()
}

/// The value of sample `series` (name and labels as written) in `body`.
fn sample(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.parse().expect("number"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_bans_over_the_allowlist_or_too_wide_are_refused_and_counted() {
    let Some(redis) = Redis::start() else { return };
    let mut a = Agent::new(&redis, "a", "");
    let mut b = Agent::new(&redis, "b", ", \"203.0.113.0/28\"");
    let (ma, mb) = (a.with_metrics(), b.with_metrics());
    a.start().await;
    b.start().await;
    a.offend("203.0.113.5");
    for (target, dur) in [("198.51.100.0/23", "1h"), ("203.0.113.128/25", "1h")] {
        let r = a.ask(ban(target, dur)).await;
        assert!(r.ok, "{r:?}");
    }
    let want = vec!["203.0.113.128/25".to_owned()];
    assert_eq!(b.wait_for(&want).await, want);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut s = b.fleet().await;
    while s.received < 3 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
        s = b.fleet().await;
    }
    assert_eq!(
        (s.received, s.applied, s.refused_allowlist, s.refused_prefix),
        (3, 1, 1, 1),
        "{s:?}"
    );

    // The same figures on the metrics endpoints.
    let body = scrape(mb).await;
    for (series, want) in [
        ("log2drop_fleet_connected", 1.0),
        ("log2drop_fleet_publishing", 1.0),
        ("log2drop_fleet_received_total", 3.0),
        ("log2drop_fleet_applied_total", 1.0),
        (r#"log2drop_fleet_refused_total{reason="allowlist"}"#, 1.0),
        (r#"log2drop_fleet_refused_total{reason="prefix"}"#, 1.0),
        ("log2drop_fleet_published_total", 0.0),
        ("log2drop_fleet_queued", 0.0),
        ("log2drop_fleet_dropped_total", 0.0),
        ("log2drop_fleet_peers", 1.0),
        ("log2drop_fleet_resyncs_total", 1.0),
        (r#"log2drop_bans_active{jail="fleet"}"#, 1.0),
        (r#"log2drop_bans_total{jail="fleet",origin="fleet"}"#, 1.0),
    ] {
        assert_eq!(sample(&body, series), Some(want), "{series} in\n{body}");
    }
    for series in [
        "log2drop_fleet_lag_seconds",
        "log2drop_fleet_last_id_age_seconds",
    ] {
        let v = sample(&body, series);
        assert!(
            v.is_some_and(|v| (0.0..60.0).contains(&v)),
            "{series} in\n{body}"
        );
    }
    let body = scrape(ma).await;
    assert_eq!(
        sample(&body, "log2drop_fleet_published_total"),
        Some(3.0),
        "{body}"
    );
    assert_eq!(
        sample(&body, "log2drop_fleet_received_total"),
        Some(0.0),
        "{body}"
    );

    // Redis gone: the link says so, and a ban made meanwhile (outside the
    // /23 banned above) waits in the queue.
    drop(redis);
    a.offend("192.0.2.77");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut body = scrape(ma).await;
    while !(sample(&body, "log2drop_fleet_connected") == Some(0.0)
        && sample(&body, "log2drop_fleet_queued").is_some_and(|q| q >= 1.0))
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
        body = scrape(ma).await;
    }
    assert_eq!(
        sample(&body, "log2drop_fleet_connected"),
        Some(0.0),
        "{body}"
    );
    assert!(
        sample(&body, "log2drop_fleet_queued").is_some_and(|q| q >= 1.0),
        "{body}"
    );
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_redis_during_a_stream_of_bans_loses_none() {
    let Some(mut redis) = Redis::start() else {
        return;
    };
    let (mut a, mut b) = pair(&redis, "").await;
    let addrs: Vec<String> = (1..=60).map(|i| format!("198.51.100.{i}")).collect();
    for (i, addr) in addrs.iter().enumerate() {
        a.offend(addr);
        tokio::time::sleep(Duration::from_millis(10)).await;
        if i == 20 {
            redis.kill();
        }
        if i == 40 {
            // Enforcement went on while Redis was down.
            assert!(a.bans().await.len() > 21);
            let s = a.fleet().await;
            assert!(!s.connected && !s.publishing, "{s:?}");
            redis.spawn();
        }
    }
    let want = sorted(addrs.clone());
    assert_eq!(a.wait_for(&want).await, want);
    assert_eq!(b.wait_for(&want).await, want, "every ban reached b");
    let s = b.fleet().await;
    assert!(s.reconnects >= 1, "{s:?}");
    let sa = a.fleet().await;
    assert!(sa.publish_errors >= 1 && sa.dropped == 0, "{sa:?}");
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_agent_catches_up_from_its_saved_position() {
    let Some(redis) = Redis::start() else { return };
    let (mut a, mut b) = pair(&redis, "").await;
    a.offend("198.51.100.1");
    let first = vec!["198.51.100.1".to_owned()];
    assert_eq!(b.wait_for(&first).await, first);
    b.stop().await;
    for i in 2..=5 {
        a.offend(&format!("198.51.100.{i}"));
    }
    let want = sorted((1..=5).map(|i| format!("198.51.100.{i}")));
    assert_eq!(a.wait_for(&want).await, want);
    b.start().await;
    assert_eq!(b.wait_for(&want).await, want);
    let s = b.fleet().await;
    assert_eq!(
        s.resyncs, 0,
        "read on from the saved ID, no snapshot: {s:?}"
    );
    assert_eq!(s.received, 4, "{s:?}");
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trimmed_stream_resyncs_from_the_snapshot() {
    let Some(redis) = Redis::start() else { return };
    let (mut a, mut b) = pair(&redis, "").await;
    a.offend("198.51.100.1");
    a.offend("198.51.100.2");
    let first = sorted(["198.51.100.1".to_owned(), "198.51.100.2".to_owned()]);
    assert_eq!(b.wait_for(&first).await, first);
    b.stop().await;
    for i in 3..=6 {
        a.offend(&format!("198.51.100.{i}"));
    }
    // Lifted while b is away: the snapshot no longer has it.
    let want = sorted((2..=6).map(|i| format!("198.51.100.{i}")));
    let r = a.ask(unban("198.51.100.1", false)).await;
    assert!(r.ok, "{r:?}");
    assert_eq!(a.wait_for(&want).await, want);
    // Give the publisher a moment, then trim everything b has not read.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let trimmed: i64 = redis.query(redis::cmd("XTRIM").arg(STREAM).arg("MAXLEN").arg(0));
    assert!(trimmed >= 5, "trimmed {trimmed}");
    b.start().await;
    assert_eq!(b.wait_for(&want).await, want);
    let s = b.fleet().await;
    assert_eq!(s.resyncs, 1, "{s:?}");
    assert_eq!(s.lifted, 1, "the ban lifted meanwhile went: {s:?}");
    // And it follows the stream again after the resync.
    a.offend("198.51.100.9");
    let mut more = want.clone();
    more.push("198.51.100.9".to_owned());
    let more = sorted(more);
    assert_eq!(b.wait_for(&more).await, more);
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_a_client_certificate_carries_the_bans() {
    let Some(redis) = Redis::start_tls() else {
        return;
    };
    let (mut a, mut b) = pair(&redis, "").await;
    a.offend("198.51.100.7");
    let want = vec!["198.51.100.7".to_owned()];
    assert_eq!(b.wait_for(&want).await, want);
    let s = b.fleet().await;
    assert!(s.connected && s.redis.starts_with("rediss://"), "{s:?}");
    assert_eq!(a.fleet().await.published, 1);

    // Without a client certificate the server refuses the agent: it never
    // connects, says why, and enforces its own bans all the same.
    let mut c = Agent::with_tls(&redis, "c", "", &redis.tls_config(false));
    c.start().await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut s = c.fleet().await;
    while s.last_error.is_none() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        s = c.fleet().await;
    }
    assert!(!s.connected && s.last_error.is_some(), "{s:?}");
    c.offend("203.0.113.9");
    let own = vec!["203.0.113.9".to_owned()];
    assert_eq!(c.wait_for(&own).await, own);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(b.bans().await.len(), 1, "nothing from c reached b");
    for x in [&mut a, &mut b, &mut c] {
        x.stop().await;
    }
}
