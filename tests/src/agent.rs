//! The agent under test as a real process: its working directory (config, watched
//! log, state, socket), the `log2drop run` daemon started inside the server
//! namespace, and its client commands. The process is killed on drop, and its output
//! is printed when the test is failing, so a red test shows what the agent said.

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::netns::NetNs;
use crate::probe::wait_until;

/// One jail of the generated config. Every jail uses the `ssh-fail` filter on the
/// watched file.
#[derive(Debug, Clone)]
pub struct JailSpec {
    /// Jail name, as `bans --json` reports it.
    pub name: String,
    /// Offences that cause a ban.
    pub maxretry: u32,
    /// Counting window, in the config's duration syntax (`10m`).
    pub findtime: String,
    /// Ban length, in the config's duration syntax (`1h`, `3s`).
    pub bantime: String,
    /// The jail's `ipv6_prefix`. The lab's IPv6 offender, bystander and server
    /// share one /64, so tests that ban single addresses use 128; the agent's
    /// default is 64.
    pub ipv6_prefix: u8,
}

impl JailSpec {
    /// An `ssh` jail banning after `maxretry` offences for `bantime`.
    pub fn ssh(maxretry: u32, bantime: &str) -> JailSpec {
        JailSpec {
            name: "ssh".into(),
            maxretry,
            findtime: "10m".into(),
            bantime: bantime.into(),
            ipv6_prefix: 128,
        }
    }

    /// The same jail with another `ipv6_prefix`.
    pub fn with_ipv6_prefix(mut self, len: u8) -> JailSpec {
        self.ipv6_prefix = len;
        self
    }
}

/// An sshd line the `ssh-fail` filter counts as an offence by `addr`.
pub fn ssh_fail_line(addr: &str) -> String {
    format!("Nov 21 10:00:00 host sshd[123]: Failed password for root from {addr} port 50000 ssh2")
}

/// A temporary directory holding everything one agent instance reads and writes
/// except its pins: config, watched log, state directory, control socket, and the
/// agent's own output. Removed on drop.
#[derive(Debug)]
pub struct AgentDir {
    dir: tempfile::TempDir,
}

impl AgentDir {
    /// Creates the directory with an empty watched log and an empty state directory.
    pub fn new() -> AgentDir {
        let dir = tempfile::Builder::new()
            .prefix("l2d-e2e-")
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot create a temporary directory: {e}"));
        let me = AgentDir { dir };
        create_file(&me.watched_log());
        std::fs::create_dir(me.state_dir())
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", me.state_dir().display()));
        me
    }

    /// The directory itself.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
    /// The config file the agent runs with.
    pub fn config_path(&self) -> PathBuf {
        self.path().join("log2drop.toml")
    }
    /// The log file the agent follows (`[sources.auth]`).
    pub fn watched_log(&self) -> PathBuf {
        self.path().join("auth.log")
    }
    /// The agent's `state_dir`.
    pub fn state_dir(&self) -> PathBuf {
        self.path().join("state")
    }
    /// The agent's control socket.
    pub fn socket_path(&self) -> PathBuf {
        self.path().join("log2drop.sock")
    }
    /// Where the agent's stdout and stderr go.
    pub fn agent_output(&self) -> PathBuf {
        self.path().join("agent.out")
    }

    /// Writes the config: XDP on `interfaces` with pins under `pin_dir`, the
    /// `ssh-fail` filter on the watched log, and `jails`.
    pub fn write_config(&self, interfaces: &[&str], pin_dir: &Path, jails: &[JailSpec]) {
        let text = render_config(self, interfaces, pin_dir, jails);
        std::fs::write(self.config_path(), text)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", self.config_path().display()));
    }

    /// Appends `lines` to the watched log in one write, as a logger would.
    pub fn append_lines<S: AsRef<str>>(&self, lines: &[S]) {
        let mut buf = String::new();
        for l in lines {
            buf.push_str(l.as_ref());
            buf.push('\n');
        }
        let path = self.watched_log();
        let mut f = OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
        f.write_all(buf.as_bytes())
            .unwrap_or_else(|e| panic!("cannot append to {}: {e}", path.display()));
    }

    /// Rotates the watched log the way logrotate does by default: rename it to
    /// `auth.log.1` and create a new, empty `auth.log`.
    pub fn rotate(&self) {
        let path = self.watched_log();
        let rotated = self.path().join("auth.log.1");
        std::fs::rename(&path, &rotated)
            .unwrap_or_else(|e| panic!("cannot rename {}: {e}", path.display()));
        create_file(&path);
    }
}

impl Default for AgentDir {
    fn default() -> Self {
        AgentDir::new()
    }
}

fn create_file(path: &Path) {
    File::create(path).unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
}

/// TOML basic string: the paths here come from `tempfile` and the test's own names,
/// but quote them properly anyway. Public for the bench's configs.
pub fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// [`quote`] for a path.
pub fn quote_path(p: &Path) -> String {
    quote(&p.to_string_lossy())
}

fn render_config(
    dir: &AgentDir,
    interfaces: &[&str],
    pin_dir: &Path,
    jails: &[JailSpec],
) -> String {
    let ifaces: Vec<String> = interfaces.iter().map(|i| quote(i)).collect();
    let mut t = String::new();
    let _ = writeln!(t, "[agent]");
    let _ = writeln!(t, "state_dir = {}", quote_path(&dir.state_dir()));
    let _ = writeln!(t, "socket = {}", quote_path(&dir.socket_path()));
    let _ = writeln!(t, "allow = [\"127.0.0.0/8\", \"::1\"]");
    let _ = writeln!(t);
    let _ = writeln!(t, "[backends.xdp]");
    let _ = writeln!(t, "interfaces = [{}]", ifaces.join(", "));
    let _ = writeln!(t, "pin_dir = {}", quote_path(pin_dir));
    let _ = writeln!(t, "mode = \"auto\"");
    let _ = writeln!(t);
    let _ = writeln!(t, "[filters.ssh-fail]");
    let _ = writeln!(
        t,
        "regex = ['Failed password for .* from <HOST> port \\d+']"
    );
    let _ = writeln!(t);
    let _ = writeln!(t, "[sources.auth]");
    let _ = writeln!(t, "path = {}", quote_path(&dir.watched_log()));
    let _ = writeln!(t, "filters = [\"ssh-fail\"]");
    for j in jails {
        let _ = writeln!(t);
        let _ = writeln!(t, "[jails.{}]", quote(&j.name));
        let _ = writeln!(t, "filters = [\"ssh-fail\"]");
        let _ = writeln!(t, "maxretry = {}", j.maxretry);
        let _ = writeln!(t, "findtime = {}", quote(&j.findtime));
        let _ = writeln!(t, "bantime = {}", quote(&j.bantime));
        let _ = writeln!(t, "ipv6_prefix = {}", j.ipv6_prefix);
        let _ = writeln!(t, "backends = [\"xdp\"]");
    }
    t
}

/// The `log2drop` binary under test: `$LOG2DROP_BIN`, else `target/debug/log2drop`
/// of this workspace (`$CARGO_TARGET_DIR` honoured). Panics with the build command
/// if it is missing, since the test crate cannot build another package's binary.
pub fn agent_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("LOG2DROP_BIN") {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "LOG2DROP_BIN={} does not exist", p.display());
        return p;
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let p = target.join("debug/log2drop");
    assert!(
        p.is_file(),
        "agent binary {} is missing: run `cargo build -p log2drop` first (or set LOG2DROP_BIN)",
        p.display()
    );
    p
}

/// A running `log2drop run` inside a namespace. Killed (SIGKILL) on drop if still
/// running; its output is printed to stderr when the test is panicking.
#[derive(Debug)]
pub struct Agent {
    child: Option<Child>,
    bin: PathBuf,
    socket: PathBuf,
    output: PathBuf,
}

impl Agent {
    /// Starts `log2drop run --config <dir>/log2drop.toml` in `ns` (through `nsenter`,
    /// which execs the agent, so the child's pid is the agent's). Output is appended
    /// to [`AgentDir::agent_output`], so restarts keep one history.
    pub fn spawn(ns: &NetNs, dir: &AgentDir) -> Agent {
        Agent::spawn_with(ns, dir, None, &[])
    }

    /// [`Agent::spawn`], then [`Agent::wait_ready`]: an agent whose socket answers.
    pub fn start(ns: &NetNs, dir: &AgentDir) -> Agent {
        let mut agent = Agent::spawn(ns, dir);
        agent.wait_ready();
        agent
    }

    /// [`Agent::spawn`] with the open-file limit (soft and hard) set to `nofile`,
    /// for tests of descriptor exhaustion that should not need thousands of them.
    pub fn spawn_with_nofile(ns: &NetNs, dir: &AgentDir, nofile: Option<u64>) -> Agent {
        Agent::spawn_with(ns, dir, nofile, &[])
    }

    /// [`Agent::spawn`] with `wrapper` (a program and its arguments that execs the
    /// rest, such as `setpriv --bounding-set=...`) between `nsenter` and the agent.
    pub fn spawn_wrapped(ns: &NetNs, dir: &AgentDir, wrapper: &[&str]) -> Agent {
        Agent::spawn_with(ns, dir, None, wrapper)
    }

    fn spawn_with(ns: &NetNs, dir: &AgentDir, nofile: Option<u64>, wrapper: &[&str]) -> Agent {
        let bin = agent_binary();
        let output = dir.agent_output();
        let out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&output)
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", output.display()));
        let err = out
            .try_clone()
            .unwrap_or_else(|e| panic!("cannot duplicate {}: {e}", output.display()));
        let mut net = std::ffi::OsString::from("--net=");
        net.push(ns.path());
        let mut cmd = Command::new("nsenter");
        cmd.arg(net)
            .args(wrapper)
            .arg(&bin)
            .arg("run")
            .arg("--config")
            .arg(dir.config_path())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "info,log2drop=debug");
        }
        if let Some(n) = nofile {
            use std::os::unix::process::CommandExt;
            let limit = libc::rlimit {
                rlim_cur: n,
                rlim_max: n,
            };
            // SAFETY: setrlimit(2) is async-signal-safe; `limit` is a plain copy.
            unsafe {
                cmd.pre_exec(move || {
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                        Ok(())
                    } else {
                        Err(std::io::Error::last_os_error())
                    }
                });
            }
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start nsenter {}: {e}", bin.display()));
        Agent {
            child: Some(child),
            bin,
            socket: dir.socket_path(),
            output,
        }
    }

    /// The agent's pid, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process is still running (reaps it if it exited).
    pub fn is_running(&mut self) -> bool {
        self.exit_status().is_none() && self.child.is_some()
    }

    /// The exit status if the process has exited (reaping it), `None` while it runs.
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Kills the agent with SIGKILL, like a crash or the OOM killer, and reaps it.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Sends SIGTERM and waits up to 10 s for a clean exit. Returns the exit status;
    /// panics (after SIGKILL) if the agent does not stop in time.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut c = self.child.take().expect("the agent is not running");
        let pid = Pid::from_raw(i32::try_from(c.id()).expect("pid fits in i32"));
        let _ = kill(pid, Signal::SIGTERM);
        let mut status = None;
        wait_until(Duration::from_secs(10), Duration::from_millis(20), || {
            status = c.try_wait().ok().flatten();
            status.is_some()
        });
        match status {
            Some(s) => s,
            None => {
                let _ = c.kill();
                let _ = c.wait();
                panic!("the agent did not exit within 10 s of SIGTERM");
            }
        }
    }

    /// Runs a client command against this agent's socket:
    /// `log2drop SUBCOMMAND --socket SOCK ARGS...`.
    pub fn cli(&self, args: &[&str]) -> Output {
        let (sub, rest) = args.split_first().expect("cli needs a subcommand");
        Command::new(&self.bin)
            .arg(sub)
            .arg("--socket")
            .arg(&self.socket)
            .args(rest)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.bin.display()))
    }

    /// [`Agent::cli`], panicking with stderr unless it succeeds.
    pub fn cli_checked(&self, args: &[&str]) -> Output {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "`log2drop {}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
        out
    }

    /// `bans --json`, parsed: one JSON object per ban.
    pub fn bans(&self) -> Vec<serde_json::Value> {
        let out = self.cli_checked(&["bans", "--json"]);
        match serde_json::from_slice(&out.stdout) {
            Ok(serde_json::Value::Array(v)) => v,
            Ok(other) => panic!("`bans --json` printed a non-array: {other}"),
            Err(e) => panic!(
                "`bans --json` printed invalid JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            ),
        }
    }

    /// The ban entry whose `address` is `addr`, if listed.
    pub fn ban_for(&self, addr: &str) -> Option<serde_json::Value> {
        self.bans()
            .into_iter()
            .find(|b| b.get("address").and_then(|a| a.as_str()) == Some(addr))
    }

    /// Waits (up to 15 s: the first XDP load and verifier run take a moment) until
    /// the control socket answers `bans --json` with a JSON array. Panics with the agent's output if it
    /// exits or never answers.
    pub fn wait_ready(&mut self) -> Duration {
        let mut last = String::new();
        let mut exited = None;
        let took = wait_until(Duration::from_secs(15), Duration::from_millis(20), || {
            exited = self.exit_status();
            if exited.is_some() {
                return true;
            }
            let out = self.cli(&["bans", "--json"]);
            last = String::from_utf8_lossy(&out.stderr).trim().to_owned();
            // An answer counts only if it is the promised JSON array: a client that
            // exits 0 without talking to the daemon must not pass for ready.
            out.status.success()
                && matches!(
                    serde_json::from_slice(&out.stdout),
                    Ok(serde_json::Value::Array(_))
                )
        });
        if let Some(status) = exited {
            panic!(
                "the agent exited during start-up ({status}):\n{}",
                self.output_text()
            );
        }
        took.unwrap_or_else(|| {
            panic!(
                "the agent's socket {} did not answer within 15 s (last error: {last}):\n{}",
                self.socket.display(),
                self.output_text()
            )
        })
    }

    /// Everything the agent printed so far.
    pub fn output_text(&self) -> String {
        std::fs::read_to_string(&self.output)
            .unwrap_or_else(|e| format!("(cannot read {}: {e})", self.output.display()))
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.kill9();
        if std::thread::panicking() {
            eprintln!(
                "---- agent output ({}) ----\n{}---- end of agent output ----",
                self.output.display(),
                self.output_text()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_escapes() {
        assert_eq!(quote(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(quote("x\ny"), "\"x\\u000Ay\"");
    }

    #[test]
    fn offending_line_names_the_address() {
        let l = ssh_fail_line("2001:db8:100::7");
        assert!(l.contains("from 2001:db8:100::7 port 50000"));
    }

    #[test]
    fn config_lists_jails_and_paths() {
        let dir = AgentDir::new();
        let text = render_config(
            &dir,
            &["l2dA1"],
            Path::new("/sys/fs/bpf/x"),
            &[JailSpec::ssh(3, "3s")],
        );
        assert!(text.contains("interfaces = [\"l2dA1\"]"));
        assert!(text.contains("pin_dir = \"/sys/fs/bpf/x\""));
        assert!(text.contains("[jails.\"ssh\"]"));
        assert!(text.contains("maxretry = 3"));
        assert!(text.contains("bantime = \"3s\""));
        assert!(text.contains(&dir.watched_log().to_string_lossy().into_owned()));
        assert!(dir.watched_log().is_file());
        assert!(dir.state_dir().is_dir());
    }

    #[test]
    fn rotate_leaves_a_fresh_file() {
        let dir = AgentDir::new();
        dir.append_lines(&["one"]);
        dir.rotate();
        assert_eq!(
            std::fs::read_to_string(dir.watched_log()).unwrap_or_default(),
            ""
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("auth.log.1")).unwrap_or_default(),
            "one\n"
        );
    }
}
