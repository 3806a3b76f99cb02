//! The control socket and CLI against a real agent, as root: who may use the socket
//! (a child process really running as `nobody`, with and without the socket group),
//! what malformed and oversized requests get, `reload` with a broken and with a good
//! config (over the CLI and by SIGHUP), `status` and `stats` over the CLI, and
//! `flush` removing every kernel object (XDP pins and links, the nftables table),
//! with and without a running agent.
//!
//! Each test builds its own namespaces, pin directory and agent; everything is
//! removed when it ends, also when it fails. Run with `--test-threads=1`.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Output};
use std::time::Duration;

use log2drop_tests::agent::{agent_binary, ssh_fail_line};
use log2drop_tests::veth::{BYSTANDER_V4, OFFENDER_V4, SERVER_V4};
use log2drop_tests::{
    Agent, AgentDir, AgentLab, JailSpec, KernelObjects, NetNs, drops_for, ping_with_timeout,
    require_root, wait_until,
};

const DROP_PROBE: Duration = Duration::from_millis(150);
const REPLY_PROBE: Duration = Duration::from_secs(1);
/// `nobody` and `nogroup` on Debian.
const NOBODY: u32 = 65_534;
const NOGROUP: u32 = 65_534;
/// Another group `nobody` is not in (`daemon`).
const OTHER_GROUP: u32 = 1;

log2drop_tests::agent_lab!(
    /// The harness's [`AgentLab`] (XDP, jail ssh: 3 offences, 1h) and this file's
    /// probes and clients.
    Lab
);

impl Lab {
    /// The harness config, edited by `edit`, with the agent running.
    fn start(test: &str, edit: impl Fn(String) -> String) -> Option<Lab> {
        if !require_root(test) {
            return None;
        }
        let mut lab = Lab(AgentLab::new(&[JailSpec::ssh(3, "1h")]));
        lab.edit_config(edit);
        lab.spawn_agent();
        assert!(lab.replies(OFFENDER_V4), "no reply before any ban");
        Some(lab)
    }

    fn replies(&self, from: &str) -> bool {
        ping_with_timeout(&self.wire.attacker, from, SERVER_V4, REPLY_PROBE)
    }

    fn dropped(&self, from: &str) -> bool {
        !ping_with_timeout(&self.wire.attacker, from, SERVER_V4, DROP_PROBE)
    }

    #[track_caller]
    fn ban_by_log(&self, addr: &str) {
        let lines: Vec<String> = (0..3).map(|_| ssh_fail_line(addr)).collect();
        self.dir.append_lines(&lines);
        let found = wait_until(Duration::from_secs(3), Duration::from_millis(5), || {
            self.dropped(addr)
        });
        assert!(
            found.is_some(),
            "{addr} still answered after its lines:\n{}",
            self.agent().output_text()
        );
    }

    /// `log2drop ARGS --socket SOCK` as root, stdout parsed as JSON.
    fn json(&self, args: &[&str]) -> serde_json::Value {
        let out = self.agent().cli_checked(args);
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "`log2drop {}` printed no JSON ({e}): {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// `log2drop SUB --socket SOCK ARGS` run as uid `nobody` with primary group
    /// `gid` and supplementary `groups` (a real unprivileged process).
    fn cli_as(&self, gid: u32, groups: &[u32], args: &[&str]) -> Output {
        let (sub, rest) = args.split_first().expect("a subcommand");
        let groups = groups.to_vec();
        let mut cmd = Command::new(agent_binary());
        cmd.arg(sub)
            .arg("--socket")
            .arg(self.dir.socket_path())
            .args(rest);
        // SAFETY: only async-signal-safe syscalls run between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                let set = |rc: libc::c_int| {
                    if rc == 0 {
                        Ok(())
                    } else {
                        Err(std::io::Error::last_os_error())
                    }
                };
                set(libc::setgroups(groups.len(), groups.as_ptr()))?;
                set(libc::setgid(gid))?;
                set(libc::setuid(NOBODY))
            });
        }
        cmd.output()
            .unwrap_or_else(|e| panic!("cannot run the CLI as nobody: {e}"))
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Sends raw bytes to the socket (as root) and returns what came back.
fn raw(socket: &std::path::Path, bytes: &[u8]) -> String {
    let mut s = std::os::unix::net::UnixStream::connect(socket).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    // The agent may close before reading all of an oversized request.
    let _ = s.write_all(bytes);
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

#[test]
fn peers_that_are_not_root_are_refused_and_the_socket_group_only_reads() {
    let Some(lab) = Lab::start(
        "peers_that_are_not_root_are_refused_and_the_socket_group_only_reads",
        |t| t.replacen("[agent]\n", "[agent]\nsocket_group = \"nogroup\"\n", 1),
    ) else {
        return;
    };
    // Let `nobody` reach the socket's directory; the socket's own mode decides.
    std::fs::set_permissions(lab.dir.path(), std::fs::Permissions::from_mode(0o755))
        .expect("chmod dir");
    let socket = lab.dir.socket_path();
    let meta = std::fs::metadata(&socket).expect("socket");
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);
    assert_eq!(std::os::unix::fs::MetadataExt::gid(&meta), NOGROUP);

    // A member of the group (primary, then supplementary only) may read.
    for (gid, groups) in [(NOGROUP, vec![]), (OTHER_GROUP, vec![NOGROUP])] {
        for args in [
            &["status", "--json"][..],
            &["stats", "--json"],
            &["bans", "--json"],
        ] {
            let out = lab.cli_as(gid, &groups, args);
            assert!(
                out.status.success(),
                "`{}` as nobody (gid {gid}, groups {groups:?}): {}",
                args.join(" "),
                stderr(&out)
            );
        }
        // ... and nothing else.
        for args in [
            &["ban", "203.0.113.9"][..],
            &["reload"],
            &["unban", "--all"],
            &["flush"],
        ] {
            let out = lab.cli_as(gid, &groups, args);
            assert!(
                !out.status.success(),
                "`{}` as a group member",
                args.join(" ")
            );
            assert!(
                stderr(&out).contains("needs root"),
                "`{}`: {}",
                args.join(" "),
                stderr(&out)
            );
        }
    }
    // Not in the group: the socket's mode keeps it out.
    let out = lab.cli_as(OTHER_GROUP, &[], &["status"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("permission denied"),
        "{}",
        stderr(&out)
    );

    // Even with the socket opened to everyone by mistake, the agent checks the
    // peer's credentials and refuses.
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let out = lab.cli_as(OTHER_GROUP, &[], &["ban", "203.0.113.9"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("uid 65534 may not use the control socket"),
        "{}",
        stderr(&out)
    );
    assert!(lab.agent().ban_for("203.0.113.9").is_none());

    // Malformed and oversized requests get error replies; the agent goes on.
    let reply = raw(&socket, b"{this is not json\n");
    assert!(
        reply.contains("\"ok\":false") && reply.contains("malformed"),
        "{reply}"
    );
    let mut big = br#"{"v":1,"cmd":"ban","target":""#.to_vec();
    big.extend(std::iter::repeat_n(b'9', 200 * 1024));
    big.extend(b"\"}\n");
    let reply = raw(&socket, &big);
    assert!(reply.contains("larger than"), "{reply}");
    let reply = raw(
        &socket,
        b"{\"v\":1,\"cmd\":\"ban\",\"target\":\"not-an-address\"}\n",
    );
    assert!(reply.contains("\"ok\":false"), "{reply}");
    let status = lab.json(&["status", "--json"]);
    assert_eq!(status["bans_active"], 0, "{status}");
}

#[test]
fn reload_keeps_the_old_config_on_errors_and_applies_good_ones() {
    let Some(mut lab) = Lab::start(
        "reload_keeps_the_old_config_on_errors_and_applies_good_ones",
        |t| t,
    ) else {
        return;
    };
    let good = std::fs::read_to_string(lab.dir.config_path()).expect("read");

    // Two mistakes: the CLI prints both with their places, the agent keeps going.
    std::fs::write(
        lab.dir.config_path(),
        good.replacen("maxretry = 3", "maxretry = 0", 1).replacen(
            "bantime = \"1h\"",
            "bantime = \"soon\"",
            1,
        ),
    )
    .expect("break the config");
    let out = lab.agent().cli(&["reload"]);
    assert!(!out.status.success(), "a broken config must not reload");
    let err = stderr(&out);
    assert!(err.contains("the running config stays in force"), "{err}");
    assert!(
        err.contains("log2drop.toml:"),
        "errors carry the file: {err}"
    );
    assert!(
        err.contains("jails.ssh.bantime") || err.contains("jails.ssh.maxretry"),
        "{err}"
    );
    // The old config still bans at 3 offences.
    lab.ban_by_log(OFFENDER_V4);
    assert!(lab.replies(BYSTANDER_V4));

    // A good change: ssh rebuilt, a new jail added, the ban kept.
    let changed = good.replacen("bantime = \"1h\"", "bantime = \"2h\"", 1)
        + "\n[jails.web]\nfilters = [\"ssh-fail\"]\nmaxretry = 50\nbackends = [\"xdp\"]\n";
    std::fs::write(lab.dir.config_path(), &changed).expect("write");
    let out = lab.agent().cli_checked(&["reload"]);
    let text = stdout(&out);
    assert!(text.starts_with("config reloaded\n"), "{text}");
    assert!(text.contains("jails: added web; rebuilt ssh"), "{text}");
    assert!(text.contains("sources: unchanged auth"), "{text}");
    assert!(text.contains("backends: unchanged xdp"), "{text}");
    assert!(
        lab.agent().ban_for(OFFENDER_V4).is_some(),
        "the ban survives"
    );
    assert!(lab.dropped(OFFENDER_V4));

    // SIGHUP does the same.
    std::fs::write(
        lab.dir.config_path(),
        changed + "\n[jails.third]\nfilters = [\"ssh-fail\"]\nmaxretry = 60\n",
    )
    .expect("write");
    let pid = lab.agent().pid().expect("pid");
    let pid = nix::unistd::Pid::from_raw(i32::try_from(pid).expect("pid"));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).expect("SIGHUP");
    let seen = wait_until(Duration::from_secs(5), Duration::from_millis(20), || {
        let status = lab.json(&["status", "--json"]);
        status["jails"]
            .as_array()
            .is_some_and(|j| j.iter().any(|j| j["name"] == "third"))
    });
    assert!(
        seen.is_some(),
        "SIGHUP did not reload:\n{}",
        lab.agent().output_text()
    );
    assert!(lab.agent().ban_for(OFFENDER_V4).is_some());
    let mut agent = lab.agent.take().expect("agent");
    assert!(agent.terminate().success(), "{}", agent.output_text());
}

#[test]
fn status_and_stats_over_the_cli_count_what_happened() {
    let Some(lab) = Lab::start("status_and_stats_over_the_cli_count_what_happened", |t| t) else {
        return;
    };
    lab.dir
        .append_lines(&["Nov 21 10:00:00 host sshd[1]: Accepted publickey for a"]);
    lab.ban_by_log(OFFENDER_V4);
    for _ in 0..3 {
        assert!(lab.dropped(OFFENDER_V4));
    }
    let kernel = drops_for(&lab.pins, OFFENDER_V4).expect("counted in the kernel");
    assert!(kernel.packets > 0);

    let stats = lab.json(&["stats", "--json"]);
    assert_eq!(stats["lines"], 4, "{stats}");
    assert_eq!(stats["offences"], 3, "{stats}");
    assert_eq!(stats["bans_active"], 1, "{stats}");
    assert_eq!(stats["bans_total"], 1, "{stats}");
    let drop = stats["drops"]
        .as_array()
        .and_then(|d| d.iter().find(|d| d["address"] == OFFENDER_V4))
        .unwrap_or_else(|| panic!("no drop counter for {OFFENDER_V4}: {stats}"));
    assert_eq!(drop["backend"], "xdp");
    let packets = drop["packets"].as_u64().expect("packets");
    assert!(packets >= kernel.packets, "{packets} < {}", kernel.packets);
    let xdp = &stats["backends"][0];
    assert_eq!(
        (xdp["name"].as_str(), xdp["bans_applied"].as_u64()),
        (Some("xdp"), Some(1))
    );

    let out = lab.agent().cli_checked(&["stats"]);
    let text = stdout(&out);
    assert!(text.contains("lines read                4\n"), "{text}");
    assert!(text.contains(OFFENDER_V4), "{text}");

    let status = lab.json(&["status", "--json"]);
    assert_eq!(status["bans_active"], 1);
    assert_eq!(status["backends"][0]["healthy"], true, "{status}");
    assert!(
        status["backends"][0]["reconcile"]["took_us"].is_u64(),
        "{status}"
    );
    let out = lab.agent().cli_checked(&["status"]);
    let text = stdout(&out);
    assert!(text.contains("jail ssh: 1 active bans"), "{text}");
    assert!(text.contains("backend xdp: ok"), "{text}");
    assert!(text.contains("source auth:"), "{text}");

    let out = lab.agent().cli_checked(&["bans", "--jail", "ssh"]);
    assert!(stdout(&out).contains("jail:ssh-fail"), "{}", stdout(&out));
}

/// The harness config with an nftables backend next to XDP, for both jails.
fn with_nftables(text: String) -> String {
    text.replace("backends = [\"xdp\"]", "backends = [\"xdp\", \"nftables\"]")
        + "\n[backends.nftables]\ntable = \"log2drop\"\n"
}

fn nft_tables(ns: &NetNs) -> String {
    String::from_utf8_lossy(&ns.exec_checked(&["nft", "list", "tables"]).stdout).into_owned()
}

fn xdp_attached(ns: &NetNs, ifname: &str) -> bool {
    let out = ns.exec_checked(&["ip", "-d", "link", "show", "dev", ifname]);
    String::from_utf8_lossy(&out.stdout).contains("prog/xdp")
}

#[test]
fn flush_removes_every_kernel_object_with_or_without_an_agent() {
    let Some(mut lab) = Lab::start(
        "flush_removes_every_kernel_object_with_or_without_an_agent",
        with_nftables,
    ) else {
        return;
    };
    let ifname = lab.wire.veth.a().ifname.clone();
    lab.ban_by_log(OFFENDER_V4);
    assert!(nft_tables(&lab.wire.server).contains("log2drop"));
    assert!(xdp_attached(&lab.wire.server, &ifname));
    let objects = KernelObjects::pinned_in(&lab.pins);
    assert!(!objects.is_empty());

    // With the agent running: it removes everything and stops.
    let out = lab.agent().cli_checked(&["flush"]);
    let text = stdout(&out);
    assert!(
        text.contains("xdp:") && text.contains("nftables: 1 objects removed"),
        "{text}"
    );
    assert!(text.contains("the agent is stopping"), "{text}");
    let mut agent = lab.agent.take().expect("agent");
    let exited = wait_until(Duration::from_secs(10), Duration::from_millis(20), || {
        agent.exit_status().is_some()
    });
    assert!(exited.is_some(), "the agent kept running after flush");
    assert_eq!(agent.exit_status().map(|s| s.success()), Some(true));
    // Issue 16, item 7: it used to say "kernel state left in place" after flush.
    let log = agent.output_text();
    assert!(
        !log.contains("kernel state left in place") && log.contains("stopped after flush"),
        "{log}"
    );
    assert!(
        lab.pins.list().is_empty(),
        "pins left: {:?}",
        lab.pins.list()
    );
    assert!(!nft_tables(&lab.wire.server).contains("log2drop"));
    assert!(!xdp_attached(&lab.wire.server, &ifname));
    let gone = wait_until(Duration::from_secs(5), Duration::from_millis(20), || {
        objects.still_loaded().is_empty()
    });
    assert!(gone.is_some(), "still loaded: {:?}", objects.still_loaded());
    assert!(
        lab.replies(OFFENDER_V4),
        "the offender is let through again"
    );
    drop(agent);

    // Without an agent: the CLI reads the config and removes what it names.
    lab.spawn_agent();
    assert!(
        lab.dropped(OFFENDER_V4),
        "the stored ban comes back on start"
    );
    lab.agent.as_mut().expect("agent").kill9();
    let out = Command::new(agent_binary())
        .args(["flush", "--config"])
        .arg(lab.dir.config_path())
        .output()
        .expect("run flush");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("no agent was running"),
        "{}",
        stdout(&out)
    );
    assert!(
        lab.pins.list().is_empty(),
        "pins left: {:?}",
        lab.pins.list()
    );
    assert!(!xdp_attached(&lab.wire.server, &ifname));
}

/// Holds `n` idle connections to `socket` as `nobody` (group `nogroup`) for `secs`
/// seconds, reopening any the agent closes, like a hostile socket-group member.
const IDLE_FLOOD: &str = r#"
import select, socket, sys, time
path, n, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
socks, opened, end = [], 0, time.time() + secs
while time.time() < end:
    while len(socks) < n and time.time() < end:
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(0.2)
        try:
            s.connect(path)
        except OSError:
            s.close()
            break
        socks.append(s)
        opened += 1
    ready = select.select(socks, [], [], 0.05)[0] if socks else []
    for s in ready:
        socks.remove(s)
        s.close()
    if not socks:
        time.sleep(0.05)
print(opened, flush=True)
"#;

/// Issue 16, item 5: idle connections from a socket-group member exhausted the
/// agent's descriptors, root's `status` timed out and sources failed with "Too
/// many open files". Now the group's connections are capped with a reserve for
/// root: `status` as root answers, and a source still bans, while `nobody` holds
/// as many connections as it can (an agent limited to 128 descriptors, so the
/// flood of 300 would exhaust it without the caps).
#[test]
fn idle_connections_from_the_socket_group_do_not_starve_root_or_sources() {
    let Some(mut lab) = Lab::start(
        "idle_connections_from_the_socket_group_do_not_starve_root_or_sources",
        |t| t.replacen("[agent]\n", "[agent]\nsocket_group = \"nogroup\"\n", 1),
    ) else {
        return;
    };
    lab.agent.take().expect("agent").terminate();
    let mut agent = log2drop_tests::Agent::spawn_with_nofile(&lab.wire.server, &lab.dir, Some(128));
    agent.wait_ready();
    lab.agent = Some(agent);
    std::fs::set_permissions(lab.dir.path(), std::fs::Permissions::from_mode(0o755))
        .expect("chmod dir");
    let socket = lab.dir.socket_path();
    let flood = Command::new("setpriv")
        .args([
            format!("--reuid={NOBODY}"),
            format!("--regid={NOGROUP}"),
            "--clear-groups".to_owned(),
            "--".to_owned(),
            "/usr/bin/python3".to_owned(),
            "-c".to_owned(),
            IDLE_FLOOD.to_owned(),
            socket.display().to_string(),
            "300".to_owned(),
            "25".to_owned(),
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start the flood as nobody (setpriv, python3)");
    struct Reap(std::process::Child);
    impl Drop for Reap {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut flood = Reap(flood);
    // Let the flood fill whatever it can.
    std::thread::sleep(Duration::from_secs(2));
    for _ in 0..3 {
        let status = lab.json(&["status", "--json"]);
        assert!(status.get("bans_active").is_some(), "{status}");
    }
    lab.ban_by_log(OFFENDER_V4);
    let out = lab.agent().output_text();
    assert!(
        !out.contains("Too many open files"),
        "the agent ran out of descriptors:\n{out}"
    );
    assert!(out.contains("refusing connections over the cap"), "{out}");
    let _ = flood.0.kill();
    let _ = flood.0.wait();
}

/// Issue 16, item 4: a user who owns the socket's directory can bind a socket of
/// their own there; the client used to print whatever it answered. It now refuses
/// a socket not served by root, naming the uid.
#[test]
fn the_client_refuses_a_socket_another_user_serves() {
    if !require_root("the_client_refuses_a_socket_another_user_serves") {
        return;
    }
    let dir = AgentDir::new();
    let fake_dir = dir.path().join("run");
    std::fs::create_dir(&fake_dir).expect("mkdir");
    std::os::unix::fs::chown(&fake_dir, Some(NOBODY), Some(NOGROUP)).expect("chown");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let socket = fake_dir.join("log2drop.sock");
    // A fake agent that answers every request with a canned ban list.
    let fake = r#"
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1])
s.listen(4)
print("ready", flush=True)
while True:
    c, _ = s.accept()
    try:
        c.recv(65536)
        c.sendall(b'{"v":1,"ok":true,"data":[]}\n')
    except OSError:
        pass
    c.close()
"#;
    let mut child = Command::new("setpriv")
        .args([
            format!("--reuid={NOBODY}"),
            format!("--regid={NOGROUP}"),
            "--clear-groups".to_owned(),
            "--".to_owned(),
            "/usr/bin/python3".to_owned(),
            "-c".to_owned(),
            fake.to_owned(),
            socket.display().to_string(),
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start the fake agent as nobody");
    let mut ready = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().expect("stdout")),
        &mut ready,
    )
    .expect("fake ready");
    let out = Command::new(agent_binary())
        .args(["bans", "--json", "--socket"])
        .arg(&socket)
        .output()
        .expect("run the CLI");
    let _ = child.kill();
    let _ = child.wait();
    assert!(!out.status.success(), "accepted: {}", stdout(&out));
    assert!(
        stderr(&out).contains("served by uid 65534, not root"),
        "{}",
        stderr(&out)
    );
}

/// Issue 16, item 4: a state directory another user owns (who could swap the
/// database) stops the agent at start, with the directory and its owner named.
#[test]
fn a_state_dir_another_user_owns_stops_the_agent() {
    if !require_root("a_state_dir_another_user_owns_stops_the_agent") {
        return;
    }
    let lab = AgentLab::new(&[JailSpec::ssh(3, "1h")]);
    let dir = &lab.dir;
    std::os::unix::fs::chown(dir.state_dir(), Some(NOBODY), Some(NOGROUP)).expect("chown");
    let mut agent = Agent::spawn(&lab.wire.server, dir);
    let exited = wait_until(Duration::from_secs(15), Duration::from_millis(20), || {
        agent.exit_status().is_some()
    });
    assert!(
        exited.is_some(),
        "the agent started:\n{}",
        agent.output_text()
    );
    let out = agent.output_text();
    assert!(
        out.contains(&dir.state_dir().display().to_string())
            && out.contains("another user owns it")
            && out.contains("uid 65534"),
        "{out}"
    );
}
