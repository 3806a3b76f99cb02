//! What the in-process daemon tests share: running the agent on a config file
//! (dry-run backend, control socket in a temp dir) around a test body.

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use log2drop::control::server::ServerOptions;
use log2drop::daemon;

/// Starts the daemon on `config`, waits for its control `socket` and for the
/// sources to open their files, runs `body`, then stops the daemon cleanly.
pub async fn run_daemon<F: Future<Output = ()>>(
    config: &Path,
    socket: &Path,
    body: impl FnOnce() -> F,
) {
    let prepared = daemon::prepare(config).expect("prepare");
    let backends = daemon::open_backends(&prepared.config).expect("backends");
    let (stop, _reload, triggers) = daemon::Triggers::manual();
    let options = ServerOptions {
        admin_uids: vec![nix::unistd::geteuid().as_raw()],
        read_gid: None,
    };
    let task = tokio::spawn(daemon::run_prepared(
        prepared,
        backends,
        options,
        triggers,
        std::time::Instant::now(),
    ));
    for _ in 0..300 {
        if socket.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Let the sources open their files at the end before lines are written.
    tokio::time::sleep(Duration::from_millis(300)).await;
    body().await;
    stop.send(true).expect("stop");
    task.await.expect("join").expect("clean stop");
}
