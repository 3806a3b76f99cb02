//! fail2ban's ban latency, for case 2: a private `fail2ban-server` (its own config
//! directory, socket and in-memory database) in a namespace the bench created, with
//! its stock sshd filter and default `iptables-multiport` action on a log the bench
//! writes. For each offending line, the time until fail2ban's iptables rule for the
//! address is in the kernel, found by listing the chain over and over (each listing
//! forks `iptables`, so the resolution is a few milliseconds; fail2ban's figures are
//! far larger).

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail};

use log2drop_tests::NetNs;

use crate::addrs;
use crate::proc;

/// Give up on one ban after this long.
const PER_BAN_TIMEOUT: Duration = Duration::from_secs(15);

/// What one pass measured.
pub struct F2bPass {
    /// Seconds from the write to the rule being listed, per ban.
    pub to_rule: Vec<f64>,
    /// Bans that never showed up in time.
    pub timeouts: usize,
}

/// A running fail2ban-server, stopped on drop.
struct Server {
    child: Child,
    conf: std::path::PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("fail2ban-client")
            .arg("-c")
            .arg(&self.conf)
            .arg("stop")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `bans` bans through fail2ban and times each until its rule is listed.
pub fn pass(bans: usize, commands: &mut Vec<String>) -> Result<F2bPass> {
    let ns = NetNs::new();
    let dir = tempfile::Builder::new()
        .prefix("log2drop-bench-f2b-")
        .tempdir()
        .context("creating fail2ban's directory")?;
    let conf = dir.path().join("etc");
    proc::run(&[
        "cp".as_ref(),
        "-a".as_ref(),
        Path::new("/etc/fail2ban").as_os_str(),
        conf.as_os_str(),
    ])?;
    let log = dir.path().join("auth.log");
    std::fs::write(&log, b"").with_context(|| format!("creating {}", log.display()))?;
    let d = dir.path().display();
    std::fs::write(
        conf.join("fail2ban.local"),
        format!(
            "[Definition]\nlogtarget = {d}/fail2ban.log\nsocket = {d}/fail2ban.sock\n\
             pidfile = {d}/fail2ban.pid\ndbfile = :memory:\n"
        ),
    )
    .context("writing fail2ban.local")?;
    let mut jail = String::new();
    let _ = write!(
        jail,
        "[DEFAULT]\nignoreip = 127.0.0.1/8 ::1\nbantime = 1h\nfindtime = 10m\nmaxretry = 1\n\
         banaction = iptables-multiport\n\n[sshd]\nenabled = true\nport = ssh\n\
         logpath = {}\nbackend = auto\n",
        log.display()
    );
    std::fs::write(conf.join("jail.local"), jail).context("writing jail.local")?;

    let out = std::fs::File::create(dir.path().join("server.out"))
        .context("creating fail2ban's output file")?;
    let err = out.try_clone().context("duplicating the output file")?;
    let mut net = std::ffi::OsString::from("--net=");
    net.push(ns.path());
    let child = Command::new("nsenter")
        .arg(net)
        .args(["fail2ban-server", "-f", "-x", "-c"])
        .arg(&conf)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .context("starting fail2ban-server")?;
    let server = Server {
        child,
        conf: conf.clone(),
    };
    commands.push(format!(
        "nsenter --net={} fail2ban-server -f -x -c {} (a copy of /etc/fail2ban plus \
         jail.local: sshd on the bench's log, maxretry 1, banaction iptables-multiport, \
         backend auto); then per ban: append a line, list `iptables -S f2b-sshd` until the \
         address appears",
        ns.path().display(),
        conf.display()
    ));

    // Ready when the sshd jail answers.
    let t0 = Instant::now();
    loop {
        let st = Command::new("fail2ban-client")
            .arg("-c")
            .arg(&conf)
            .args(["status", "sshd"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .context("running fail2ban-client")?;
        if st.success() {
            break;
        }
        if t0.elapsed() > Duration::from_secs(60) {
            let text = std::fs::read_to_string(dir.path().join("fail2ban.log")).unwrap_or_default();
            bail!("fail2ban's sshd jail did not start within 60 s:\n{text}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }

    let mut p = F2bPass {
        to_rule: Vec::with_capacity(bans),
        timeouts: 0,
    };
    let list = ns.command(&["iptables", "-w", "-S", "f2b-sshd"]);
    for i in 0..bans {
        let addr: Ipv4Addr = addrs::doc_v4(i);
        let line = format!(
            "{} web1 sshd[{}]: Failed password for root from {addr} port 50000 ssh2\n",
            humantime::format_rfc3339_micros(SystemTime::now()),
            1000 + i
        );
        let want = format!("-s {addr}/32 ");
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&log)
            .with_context(|| format!("opening {}", log.display()))?;
        let t0 = Instant::now();
        f.write_all(line.as_bytes())
            .with_context(|| format!("appending to {}", log.display()))?;
        drop(f);
        loop {
            let out = Command::new(&list[0])
                .args(&list[1..])
                .stderr(Stdio::null())
                .output()
                .context("listing fail2ban's chain")?;
            if String::from_utf8_lossy(&out.stdout).contains(&want) {
                p.to_rule.push(t0.elapsed().as_secs_f64());
                break;
            }
            if t0.elapsed() > PER_BAN_TIMEOUT {
                p.timeouts += 1;
                break;
            }
        }
    }
    drop(server);
    Ok(p)
}
