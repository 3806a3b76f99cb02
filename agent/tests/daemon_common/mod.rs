//! What the in-process daemon tests share: running the agent on a config file
//! (dry-run backend, control socket in a temp dir), asking it over its control
//! socket, and appending to the logs it follows.
// Each test binary includes this module and uses part of it.
#![allow(dead_code)]

use std::future::Future;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use log2drop::control::client;
use log2drop::control::protocol::{Command, Reply};
use log2drop::control::server::ServerOptions;
use log2drop::daemon::{self, DaemonError};

/// A daemon started by [`start`]: its reload trigger (SIGHUP) and what stops it.
pub struct Running {
    stop: watch::Sender<bool>,
    /// Sending on it reloads the config, as SIGHUP does.
    pub reload: mpsc::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), DaemonError>>,
}

impl Running {
    /// Stops the daemon and checks that it stopped cleanly.
    pub async fn stop(self) {
        self.stop.send(true).expect("stop");
        self.task.await.expect("join").expect("clean stop");
    }

    /// Waits up to `limit` for the daemon to stop by itself (after `flush`),
    /// and checks that it stopped cleanly.
    pub async fn stopped(self, limit: Duration) {
        tokio::time::timeout(limit, self.task)
            .await
            .expect("the daemon stops by itself")
            .expect("join")
            .expect("clean stop");
    }
}

/// Starts the daemon on `config` and waits for its control `socket` and for
/// the sources to open their files.
pub async fn start(config: &Path, socket: &Path) -> Running {
    let prepared = daemon::prepare(config).expect("prepare");
    let backends = daemon::open_backends(&prepared.config).expect("backends");
    let (stop, reload, triggers) = daemon::Triggers::manual();
    let options = ServerOptions {
        admin_uids: vec![nix::unistd::geteuid().as_raw()],
        read_gid: None,
    };
    let task = tokio::spawn(daemon::run_prepared(
        prepared,
        backends,
        options,
        triggers,
        Instant::now(),
    ));
    for _ in 0..500 {
        if socket.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Let the sources open their files at the end before lines are written.
    tokio::time::sleep(Duration::from_millis(300)).await;
    Running { stop, reload, task }
}

/// Starts the daemon on `config` (see [`start`]), runs `body`, then stops the
/// daemon cleanly.
pub async fn run_daemon<F: Future<Output = ()>>(
    config: &Path,
    socket: &Path,
    body: impl FnOnce() -> F,
) {
    let running = start(config, socket).await;
    body().await;
    running.stop().await;
}

/// Sends `cmd` to the daemon at `socket` and returns its reply, whatever it is.
pub async fn ask(socket: &Path, cmd: Command) -> Reply {
    let socket = socket.to_owned();
    tokio::task::spawn_blocking(move || client::request(&socket, &cmd, Duration::from_secs(10)))
        .await
        .expect("join")
        .expect("reply")
}

/// [`ask`] for a command that must succeed: its reply's data, decoded.
pub async fn ok<T: serde::de::DeserializeOwned>(socket: &Path, cmd: Command) -> T {
    let reply = ask(socket, cmd).await;
    assert!(reply.ok, "{reply:?}");
    reply.decode().expect("reply shape")
}

/// Appends `text` to the log at `path`, as a logger would.
pub fn append(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .expect("open log");
    f.write_all(text.as_bytes()).expect("append");
}
