//! The real agent (release build) with a config the case writes, running in a
//! namespace the bench created, and what the cases read from it: `status` and
//! `stats` over its control socket, its memory from `/proc`. The process, its
//! directory, pins, veth and namespace go on drop (the harness's guards).
//!
//! With `L2D_BENCH_DEBUG` set, the agent's output is printed each time it stops
//! (combine with `RUST_LOG=info` to see its start-up steps and their times).

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use log2drop::control::client;
use log2drop::control::protocol::Command;
use log2drop_tests::{Agent, AgentDir, NetNs, PinDir, VethPair};

use crate::proc;

/// How long one control request may take (a million bans make `stats` slower).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Namespace, veth, pins, directory and (while running) the agent.
pub struct AgentLab {
    agent: Option<Agent>,
    dir: AgentDir,
    pins: PinDir,
    veth: VethPair,
    ns: NetNs,
    _peer: NetNs,
}

/// The parts of a config that differ between cases.
pub struct Spec<'a> {
    /// `[agent] max_tracked`.
    pub max_tracked: usize,
    /// Use the XDP backend on the lab's veth (else dry-run).
    pub xdp: bool,
    /// Extra TOML: filters, sources and jails. `{LOG}` stands for the watched log's
    /// path (quoted).
    pub body: &'a str,
}

impl AgentLab {
    /// Builds the lab and writes the config; the agent is not started yet.
    pub fn new(spec: &Spec<'_>) -> Result<AgentLab> {
        let ns = NetNs::new();
        let peer = NetNs::new();
        let veth = VethPair::new(&ns, &[], &peer, &[]);
        let pins = PinDir::new();
        let dir = AgentDir::new();
        let lab = AgentLab {
            agent: None,
            dir,
            pins,
            veth,
            ns,
            _peer: peer,
        };
        std::fs::write(lab.dir.config_path(), lab.render(spec))
            .with_context(|| format!("writing {}", lab.dir.config_path().display()))?;
        Ok(lab)
    }

    fn render(&self, spec: &Spec<'_>) -> String {
        let mut t = String::new();
        let _ = writeln!(t, "[agent]");
        let _ = writeln!(t, "state_dir = {}", quote(&self.dir.state_dir()));
        let _ = writeln!(t, "socket = {}", quote(&self.dir.socket_path()));
        let _ = writeln!(t, "allow = [\"127.0.0.0/8\", \"::1\"]");
        let _ = writeln!(t, "max_tracked = {}", spec.max_tracked);
        let _ = writeln!(t);
        if spec.xdp {
            let _ = writeln!(t, "[backends.xdp]");
            let _ = writeln!(t, "interfaces = [\"{}\"]", self.veth.a().ifname);
            let _ = writeln!(t, "pin_dir = {}", quote(self.pins.path()));
        } else {
            let _ = writeln!(t, "[backends.dry-run]");
        }
        let _ = writeln!(t);
        t.push_str(&spec.body.replace("{LOG}", &quote(&self.dir.watched_log())));
        t
    }

    /// The watched log (created empty).
    pub fn log(&self) -> std::path::PathBuf {
        self.dir.watched_log()
    }

    /// The agent's pin directory.
    pub fn pins(&self) -> &PinDir {
        &self.pins
    }

    /// The config file.
    pub fn config(&self) -> std::path::PathBuf {
        self.dir.config_path()
    }

    /// Starts the agent and returns once its socket answers `status`, with the time
    /// from spawn to that answer (at most 120 s).
    pub fn start(&mut self) -> Result<Duration> {
        self.start_within(Duration::from_secs(120))
    }

    /// [`AgentLab::start`] with a chosen limit.
    pub fn start_within(&mut self, limit: Duration) -> Result<Duration> {
        if self.agent.is_some() {
            bail!("the agent is already running");
        }
        let t0 = Instant::now();
        self.agent = Some(Agent::spawn(&self.ns, &self.dir));
        loop {
            if let Some(a) = self.agent.as_mut()
                && let Some(st) = a.exit_status()
            {
                bail!(
                    "the agent exited during start-up ({st}):\n{}",
                    a.output_text()
                );
            }
            if self
                .request(&Command::Status, Duration::from_secs(1))
                .is_ok()
            {
                return Ok(t0.elapsed());
            }
            if t0.elapsed() > limit {
                bail!(
                    "the agent's socket did not answer within {} s",
                    limit.as_secs()
                );
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Stops the agent with SIGTERM and waits for it.
    pub fn stop(&mut self) -> Result<()> {
        if let Some(mut a) = self.agent.take() {
            let st = a.terminate();
            if std::env::var_os("L2D_BENCH_DEBUG").is_some() {
                eprintln!("{}", a.output_text());
            }
            if !st.success() {
                bail!(
                    "the agent exited with {st} on SIGTERM:\n{}",
                    a.output_text()
                );
            }
        }
        Ok(())
    }

    /// Forgets what earlier runs left (the agent must be stopped): an empty state
    /// directory (no saved positions, bans or history) and no pinned maps, so the
    /// next start is a first start.
    pub fn forget_state(&mut self) -> Result<()> {
        if self.agent.is_some() {
            bail!("the agent is running");
        }
        let state = self.dir.state_dir();
        std::fs::remove_dir_all(&state)
            .and_then(|()| std::fs::create_dir(&state))
            .with_context(|| format!("emptying {}", state.display()))?;
        log2drop::backend::xdp::XdpBackend::detach_and_unpin(self.pins.path())
            .with_context(|| format!("unpinning {}", self.pins.path().display()))?;
        Ok(())
    }

    /// The agent's pid while it runs.
    pub fn pid(&self) -> Result<u32> {
        self.agent
            .as_ref()
            .and_then(Agent::pid)
            .context("the agent is not running")
    }

    /// `VmRSS` and `VmHWM` of the agent, in bytes.
    pub fn memory(&self) -> Result<(u64, u64)> {
        let pid = self.pid()?;
        Ok((
            proc::status_kib(pid, "VmRSS")? * 1024,
            proc::status_kib(pid, "VmHWM")? * 1024,
        ))
    }

    /// One control request; its `data` on success.
    pub fn request(&self, cmd: &Command, timeout: Duration) -> Result<serde_json::Value> {
        let reply =
            client::request(&self.dir.socket_path(), cmd, timeout).context("control request")?;
        if !reply.ok {
            bail!(
                "the agent refused {cmd:?}: {}",
                reply.error.unwrap_or_default()
            );
        }
        reply.decode().context("reply data")
    }

    /// `status` data.
    pub fn status(&self) -> Result<serde_json::Value> {
        self.request(&Command::Status, REQUEST_TIMEOUT)
    }

    /// `stats` data.
    pub fn stats(&self) -> Result<serde_json::Value> {
        self.request(&Command::Stats, REQUEST_TIMEOUT)
    }

    /// Polls `status` every `every` until `done` holds, for at most `limit`; returns
    /// how long it took.
    pub fn wait_status(
        &mut self,
        limit: Duration,
        every: Duration,
        done: impl Fn(&serde_json::Value) -> bool,
    ) -> Result<Duration> {
        let t0 = Instant::now();
        loop {
            if let Some(a) = self.agent.as_mut()
                && let Some(st) = a.exit_status()
            {
                bail!("the agent exited ({st}):\n{}", a.output_text());
            }
            if let Ok(s) = self.status()
                && done(&s)
            {
                return Ok(t0.elapsed());
            }
            if t0.elapsed() > limit {
                bail!(
                    "the agent did not get there within {}s; last status: {}",
                    limit.as_secs(),
                    self.status().map(|s| s.to_string()).unwrap_or_default()
                );
            }
            std::thread::sleep(every);
        }
    }
}

impl Drop for AgentLab {
    fn drop(&mut self) {
        drop(self.agent.take());
        if let Err(e) = log2drop::backend::xdp::XdpBackend::detach_and_unpin(self.pins.path()) {
            eprintln!("warning: cannot unpin {}: {e}", self.pins.path().display());
        }
    }
}

/// A TOML basic string holding `p`.
pub fn quote(p: &Path) -> String {
    log2drop_tests::agent::quote_path(p)
}

/// `bans_active` of a status.
pub fn bans_active(status: &serde_json::Value) -> u64 {
    status["bans_active"].as_u64().unwrap_or(0)
}

/// Lines read by every source of a status.
pub fn lines_read(status: &serde_json::Value) -> u64 {
    status["sources"]
        .as_array()
        .map_or(0, |s| s.iter().filter_map(|x| x["lines"].as_u64()).sum())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_paths_for_toml() {
        assert_eq!(quote(Path::new("/tmp/a b")), "\"/tmp/a b\"");
        assert_eq!(quote(Path::new("/tmp/a\"b")), "\"/tmp/a\\\"b\"");
    }

    #[test]
    fn status_fields() {
        let s = serde_json::json!({
            "bans_active": 7,
            "sources": [{"lines": 3}, {"lines": 4}]
        });
        assert_eq!(bans_active(&s), 7);
        assert_eq!(lines_read(&s), 7);
        assert_eq!(bans_active(&serde_json::json!({})), 0);
    }
}
