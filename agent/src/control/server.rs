//! The daemon side of the control socket.
//!
//! The server owns the socket file: it creates the parent directory, replaces a
//! stale socket left by a crashed agent (never a live one, never a non-socket),
//! publishes the socket with mode 0600 atomically (bound under a temporary name,
//! chmod, then renamed into place), and removes it on drop.
//!
//! Each connection is its own task. It checks the peer's uid (SO_PEERCRED), reads
//! bounded request lines, and hands each parsed request to the engine task through a
//! channel with a oneshot reply. Every failure on one connection ends up as an error
//! reply or a closed connection, never as an error of the daemon.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};

use super::protocol::{Command, MAX_REQUEST, Reply, Request};

/// How long a connection may take to send a request before it is closed.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the engine may take to answer one request.
const ENGINE_TIMEOUT: Duration = Duration::from_secs(30);

/// A request on its way to the engine task, with the way back.
#[derive(Debug)]
pub struct ControlRequest {
    /// What the client asked.
    pub cmd: Command,
    /// Where the answer goes.
    pub reply: oneshot::Sender<Reply>,
}

/// Errors setting up the socket.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The socket's directory could not be created.
    #[error("cannot create control socket directory {path}: {source}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Another agent answers on the socket.
    #[error("control socket {path} is in use: is another log2drop agent running?")]
    InUse {
        /// The socket.
        path: PathBuf,
    },
    /// Something that is not a socket sits at the path.
    #[error("{path} exists and is not a socket; refusing to replace it")]
    NotASocket {
        /// The path.
        path: PathBuf,
    },
    /// Binding, chmod or rename failed.
    #[error("cannot create control socket {path}: {source}")]
    Bind {
        /// The socket.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Who may use the socket.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Peer uids allowed to send commands. Production: root only.
    pub allowed_uids: Vec<u32>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            allowed_uids: vec![0],
        }
    }
}

/// A bound control socket.
#[derive(Debug)]
pub struct ControlServer {
    listener: UnixListener,
    path: PathBuf,
    options: ServerOptions,
}

impl ControlServer {
    /// Binds the socket at `path` (see the module documentation). Must be called
    /// inside a tokio runtime.
    pub fn bind(path: &Path, options: ServerOptions) -> Result<ControlServer, ServerError> {
        let bind_err = |source| ServerError::Bind {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
            && !dir.exists()
        {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(dir)
                .map_err(|source| ServerError::CreateDir {
                    path: dir.to_path_buf(),
                    source,
                })?;
        }
        remove_stale(path)?;
        let tmp = {
            let mut name = path.as_os_str().to_os_string();
            name.push(format!(".{}.tmp", std::process::id()));
            PathBuf::from(name)
        };
        let _ = std::fs::remove_file(&tmp);
        let listener = UnixListener::bind(&tmp).map_err(bind_err)?;
        let publish = std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))
            .and_then(|()| std::fs::rename(&tmp, path));
        if let Err(e) = publish {
            let _ = std::fs::remove_file(&tmp);
            return Err(bind_err(e));
        }
        Ok(ControlServer {
            listener,
            path: path.to_path_buf(),
            options,
        })
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Accepts connections until `shutdown` fires, forwarding requests to `engine`.
    pub async fn serve(
        &self,
        engine: mpsc::Sender<ControlRequest>,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        loop {
            tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        let engine = engine.clone();
                        let allowed = self.options.allowed_uids.clone();
                        tokio::spawn(async move {
                            handle_connection(stream, &allowed, &engine).await;
                        });
                    }
                    Err(e) => {
                        tracing::warn!(socket = %self.path.display(), error = %e, "accept failed");
                        // Out of descriptors and the like: do not spin.
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
                changed = shutdown.changed() => {
                    if changed.is_err() || *shutdown.borrow() {
                        return;
                    }
                }
            }
        }
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

use std::os::unix::fs::DirBuilderExt;

/// Removes a socket file nobody answers on; refuses a live socket or a non-socket.
fn remove_stale(path: &Path) -> Result<(), ServerError> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(ServerError::Bind {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    if !meta.file_type().is_socket() {
        return Err(ServerError::NotASocket {
            path: path.to_path_buf(),
        });
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => Err(ServerError::InUse {
            path: path.to_path_buf(),
        }),
        Err(_) => std::fs::remove_file(path).map_err(|source| ServerError::Bind {
            path: path.to_path_buf(),
            source,
        }),
    }
}

async fn handle_connection(
    stream: UnixStream,
    allowed_uids: &[u32],
    engine: &mpsc::Sender<ControlRequest>,
) {
    let uid = match stream.peer_cred() {
        Ok(c) => c.uid(),
        Err(e) => {
            tracing::warn!(error = %e, "control: cannot read peer credentials");
            return;
        }
    };
    let (read, mut write) = stream.into_split();
    if !allowed_uids.contains(&uid) {
        tracing::warn!(uid, "control: refused a connection from a non-root user");
        let reply = Reply::error(format!(
            "permission denied: uid {uid} may not use the control socket (root only)"
        ));
        let _ = write.write_all(&reply.to_line()).await;
        return;
    }
    let mut reader = BufReader::new(read);
    let mut line = Vec::with_capacity(256);
    loop {
        line.clear();
        // One byte more than allowed tells "exactly at the limit" from "over it".
        let limit = (MAX_REQUEST + 1) as u64;
        let read = tokio::time::timeout(
            READ_TIMEOUT,
            (&mut reader).take(limit).read_until(b'\n', &mut line),
        )
        .await;
        let n = match read {
            Ok(Ok(n)) => n,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "control: read failed");
                return;
            }
            Err(_) => {
                let _ = write
                    .write_all(&Reply::error("timed out waiting for a request").to_line())
                    .await;
                return;
            }
        };
        if n == 0 {
            return;
        }
        let complete = line.last() == Some(&b'\n');
        if complete {
            line.pop();
        }
        if line.len() > MAX_REQUEST {
            let reply = Reply::error(format!("request larger than {MAX_REQUEST} bytes"));
            let _ = write.write_all(&reply.to_line()).await;
            return;
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            if complete {
                continue;
            }
            return;
        }
        let reply = match Request::parse(&line) {
            Ok(req) => ask_engine(engine, req.cmd).await,
            Err(msg) => Reply::error(msg),
        };
        if write.write_all(&reply.to_line()).await.is_err() || !complete {
            return;
        }
    }
}

async fn ask_engine(engine: &mpsc::Sender<ControlRequest>, cmd: Command) -> Reply {
    let (tx, rx) = oneshot::channel();
    if engine
        .send(ControlRequest { cmd, reply: tx })
        .await
        .is_err()
    {
        return Reply::error("the agent is shutting down");
    }
    match tokio::time::timeout(ENGINE_TIMEOUT, rx).await {
        Ok(Ok(reply)) => reply,
        Ok(Err(_)) => Reply::error("the agent dropped the request"),
        Err(_) => Reply::error("the agent did not answer in time"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::client;

    fn my_uid() -> u32 {
        nix::unistd::geteuid().as_raw()
    }

    /// Starts a server in `dir` whose "engine" answers every request with its
    /// command echoed back, and returns the socket path.
    async fn start(
        dir: &Path,
        allowed: Vec<u32>,
    ) -> (
        PathBuf,
        tokio::sync::watch::Sender<bool>,
        tokio::task::JoinHandle<()>,
    ) {
        let path = dir.join("sub").join("ctl.sock");
        let server = ControlServer::bind(
            &path,
            ServerOptions {
                allowed_uids: allowed,
            },
        )
        .expect("bind");
        let (tx, mut rx) = mpsc::channel::<ControlRequest>(8);
        tokio::spawn(async move {
            while let Some(req) = rx.recv().await {
                let data = serde_json::to_value(&req.cmd).expect("encode");
                let _ = req.reply.send(Reply::ok(data));
            }
        });
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(async move { server.serve(tx, stop_rx).await });
        (path, stop_tx, task)
    }

    async fn raw(path: &Path, bytes: Vec<u8>) -> String {
        let path = path.to_path_buf();
        tokio::task::spawn_blocking(move || {
            use std::io::{Read, Write};
            let mut s = std::os::unix::net::UnixStream::connect(&path).expect("connect");
            s.set_read_timeout(Some(Duration::from_secs(5)))
                .expect("timeout");
            // The server may close before reading everything (oversize): ignore.
            let _ = s.write_all(&bytes);
            let _ = s.shutdown(std::net::Shutdown::Write);
            let mut out = String::new();
            let _ = s.read_to_string(&mut out);
            out
        })
        .await
        .expect("join")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn round_trip_and_socket_is_private() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (path, stop, task) = start(dir.path(), vec![my_uid()]).await;
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let p = path.clone();
        let reply = tokio::task::spawn_blocking(move || {
            client::request(
                &p,
                &Command::Unban {
                    target: "198.51.100.7".into(),
                },
                Duration::from_secs(5),
            )
        })
        .await
        .expect("join")
        .expect("reply");
        assert!(reply.ok);
        assert_eq!(
            reply.data,
            Some(serde_json::json!({"cmd": "unban", "target": "198.51.100.7"}))
        );
        stop.send(true).expect("stop");
        task.await.expect("server task");
        assert!(!path.exists(), "socket removed on shutdown");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn malformed_oversized_and_wrong_version_get_error_replies() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (path, _stop, _task) = start(dir.path(), vec![my_uid()]).await;

        let out = raw(&path, b"{oops\n".to_vec()).await;
        let reply: Reply = serde_json::from_str(out.trim()).expect("reply json");
        assert!(!reply.ok);
        assert!(reply.error.unwrap_or_default().contains("malformed"));

        let out = raw(&path, b"{\"v\":7,\"cmd\":\"bans\"}\n".to_vec()).await;
        let reply: Reply = serde_json::from_str(out.trim()).expect("reply json");
        assert!(reply.error.unwrap_or_default().contains("version 7"));

        let mut big = br#"{"v":1,"cmd":"ban","target":""#.to_vec();
        big.extend(std::iter::repeat_n(b'x', MAX_REQUEST + 10));
        big.extend(b"\"}\n");
        let out = raw(&path, big).await;
        let reply: Reply = serde_json::from_str(out.trim()).expect("reply json");
        assert!(reply.error.unwrap_or_default().contains("larger than"));

        // The server still answers after all that, several requests on one line each.
        let out = raw(
            &path,
            b"{\"v\":1,\"cmd\":\"bans\"}\n{\"v\":1,\"cmd\":\"status\"}\n".to_vec(),
        )
        .await;
        let replies: Vec<Reply> = out
            .lines()
            .map(|l| serde_json::from_str(l).expect("reply json"))
            .collect();
        assert_eq!(replies.len(), 2);
        assert!(replies.iter().all(|r| r.ok));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn other_users_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let someone_else = my_uid().wrapping_add(4242);
        let (path, _stop, _task) = start(dir.path(), vec![someone_else]).await;
        let out = raw(&path, b"{\"v\":1,\"cmd\":\"bans\"}\n".to_vec()).await;
        let reply: Reply = serde_json::from_str(out.trim()).expect("reply json");
        assert!(!reply.ok);
        assert!(
            reply
                .error
                .unwrap_or_default()
                .contains("permission denied")
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stale_socket_is_replaced_but_live_one_and_plain_file_are_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ctl.sock");
        // A stale socket: bound, then its listener gone.
        drop(std::os::unix::net::UnixListener::bind(&path).expect("bind stale"));
        let server = ControlServer::bind(&path, ServerOptions::default()).expect("replace stale");
        let err = ControlServer::bind(&path, ServerOptions::default()).expect_err("live");
        assert!(matches!(err, ServerError::InUse { .. }), "{err}");
        drop(server);
        let plain = dir.path().join("plain");
        std::fs::write(&plain, b"keep me").expect("write");
        let err = ControlServer::bind(&plain, ServerOptions::default()).expect_err("not a socket");
        assert!(matches!(err, ServerError::NotASocket { .. }), "{err}");
        assert_eq!(std::fs::read(&plain).expect("read"), b"keep me");
    }
}
