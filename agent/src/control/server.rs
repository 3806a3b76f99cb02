//! The daemon side of the control socket.
//!
//! The server owns the socket file: it creates the parent directory (0700, or 0750
//! with the socket group; one another user owns or can write is refused), replaces a
//! stale socket left by a crashed agent (never a live one, never a non-socket),
//! publishes the socket atomically (bound under a temporary name, chmod/chown, then
//! renamed into place), and removes it on drop. The socket is mode 0600 (root
//! only), or 0660 with the group of `agent.socket_group` when one is configured.
//!
//! Connections are capped before any work is done for them: at most
//! [`MAX_PER_UID`] open at once per peer uid, [`MAX_OTHERS`] from all users but
//! the admins together, and [`ADMIN_RESERVE`] more kept for the admins (root).
//! One over a cap is closed at once with an error line. A connection that sends
//! nothing is closed after [`READ_TIMEOUT`]. So the control socket holds at most
//! `MAX_OTHERS + ADMIN_RESERVE` descriptors whatever a socket-group member does,
//! root's `status` always finds a slot, and the sources keep theirs.
//!
//! Each connection is its own task. It checks the peer's credentials (SO_PEERCRED
//! for the uid and primary gid, SO_PEERGROUPS for the supplementary groups, both
//! as the kernel recorded them at connect time): root may send every command, a
//! member of the socket group only the read-only ones ([`Command::is_read_only`]),
//! anyone else is refused. It reads bounded request lines and hands each parsed
//! request to the engine task through a channel with a oneshot reply. Every failure
//! on one connection ends up as an error reply or a closed connection, never as an
//! error of the daemon.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};

use super::protocol::{Command, MAX_REQUEST, Reply, Request};

/// How long a connection may take to send a request before it is closed.
pub(crate) const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections one non-admin uid may hold open at once.
pub(crate) const MAX_PER_UID: usize = 8;

/// Connections all non-admin uids together may hold open at once.
pub(crate) const MAX_OTHERS: usize = 32;

/// Connections kept for the admins (root), whatever the others hold.
pub(crate) const ADMIN_RESERVE: usize = 16;

/// Open connections by peer uid, shared by the accept loop and the connections'
/// guards.
#[derive(Debug, Default)]
struct Slots {
    by_uid: std::collections::HashMap<u32, usize>,
    admins: usize,
    others: usize,
    refused: u64,
}

/// One connection's place in [`Slots`], given back on drop.
struct SlotGuard {
    slots: std::sync::Arc<std::sync::Mutex<Slots>>,
    uid: u32,
    admin: bool,
}

impl SlotGuard {
    /// Takes a slot for `uid`, or says why there is none.
    fn take(
        slots: &std::sync::Arc<std::sync::Mutex<Slots>>,
        uid: u32,
        admin: bool,
    ) -> Result<SlotGuard, &'static str> {
        let mut s = slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let per_uid = s.by_uid.get(&uid).copied().unwrap_or(0);
        let refusal = if admin {
            (s.admins >= ADMIN_RESERVE + MAX_OTHERS.saturating_sub(s.others))
                .then_some("too many connections from root")
        } else if per_uid >= MAX_PER_UID {
            Some("too many connections from this user")
        } else if s.others >= MAX_OTHERS {
            Some("too many connections")
        } else {
            None
        };
        if let Some(why) = refusal {
            s.refused += 1;
            return Err(why);
        }
        *s.by_uid.entry(uid).or_default() += 1;
        if admin {
            s.admins += 1;
        } else {
            s.others += 1;
        }
        Ok(SlotGuard {
            slots: slots.clone(),
            uid,
            admin,
        })
    }
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        let mut s = self
            .slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = s.by_uid.get_mut(&self.uid) {
            *n -= 1;
            if *n == 0 {
                s.by_uid.remove(&self.uid);
            }
        }
        if self.admin {
            s.admins -= 1;
        } else {
            s.others -= 1;
        }
    }
}

/// How long the engine may take to answer one request.
const ENGINE_TIMEOUT: Duration = Duration::from_secs(30);

/// A request on its way to the engine task, with the way back.
#[derive(Debug)]
pub(crate) struct ControlRequest {
    /// What the client asked.
    pub cmd: Command,
    /// Where the answer goes.
    pub reply: oneshot::Sender<Reply>,
}

/// Errors setting up the socket.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The socket's directory could not be created, or another user owns or can
    /// write it.
    #[error("control socket directory: {0}")]
    Dir(#[from] crate::private_dir::DirError),
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
    /// Peer uids allowed every command. Production: root only.
    pub admin_uids: Vec<u32>,
    /// Group whose members may send read-only commands; the socket is then made
    /// mode 0660 with this group.
    pub read_gid: Option<u32>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            admin_uids: vec![0],
            read_gid: None,
        }
    }
}

/// What a peer may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Every command.
    Admin,
    /// Read-only commands.
    ReadOnly,
}

impl ServerOptions {
    /// The role of a peer with `uid`, primary group `gid` and supplementary
    /// `groups`, or `None` when it is refused.
    pub fn role(&self, uid: u32, gid: u32, groups: &[u32]) -> Option<Role> {
        if self.admin_uids.contains(&uid) {
            return Some(Role::Admin);
        }
        match self.read_gid {
            Some(g) if gid == g || groups.contains(&g) => Some(Role::ReadOnly),
            _ => None,
        }
    }
}

/// A bound control socket.
#[derive(Debug)]
pub(crate) struct ControlServer {
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
        // Whoever can write the directory could bind a socket of their own there.
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            let mode = if options.read_gid.is_some() {
                0o750
            } else {
                0o700
            };
            crate::private_dir::ensure(dir, mode, options.read_gid)?;
        }
        remove_stale(path)?;
        let tmp = {
            let mut name = path.as_os_str().to_os_string();
            name.push(format!(".{}.tmp", std::process::id()));
            PathBuf::from(name)
        };
        let _ = std::fs::remove_file(&tmp);
        let listener = UnixListener::bind(&tmp).map_err(bind_err)?;
        let mode = if options.read_gid.is_some() {
            0o660
        } else {
            0o600
        };
        let publish = std::os::unix::fs::chown(&tmp, None, options.read_gid)
            .and_then(|()| std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode)))
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
    pub(crate) async fn serve(
        &self,
        engine: mpsc::Sender<ControlRequest>,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        let slots = std::sync::Arc::new(std::sync::Mutex::new(Slots::default()));
        let mut last_warned: Option<std::time::Instant> = None;
        loop {
            tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        let Ok(cred) = stream.peer_cred() else {
                            continue;
                        };
                        let uid = cred.uid();
                        let admin = self.options.admin_uids.contains(&uid);
                        let slot = match SlotGuard::take(&slots, uid, admin) {
                            Ok(slot) => slot,
                            Err(why) => {
                                // Never wait on a peer we refuse: one try, then close.
                                let line = Reply::error(format!("{why}; try again later")).to_line();
                                let _ = stream.try_write(&line);
                                if last_warned.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
                                    let refused = slots.lock().map(|s| s.refused).unwrap_or(0);
                                    tracing::warn!(uid, refused_so_far = refused, reason = why,
                                        "control: refusing connections over the cap");
                                    last_warned = Some(std::time::Instant::now());
                                }
                                continue;
                            }
                        };
                        let engine = engine.clone();
                        let options = self.options.clone();
                        tokio::spawn(async move {
                            let _slot = slot;
                            handle_connection(stream, &options, &engine).await;
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

/// The peer's supplementary groups as the kernel recorded them at connect time
/// (SO_PEERGROUPS, Linux 4.13+).
#[cfg(target_os = "linux")]
fn peer_groups(stream: &UnixStream, _uid: u32, _gid: u32) -> std::io::Result<Vec<u32>> {
    use std::os::fd::AsRawFd;
    let fd = stream.as_raw_fd();
    let mut groups: Vec<libc::gid_t> = vec![0; 64];
    loop {
        let mut len = libc::socklen_t::try_from(groups.len() * std::mem::size_of::<libc::gid_t>())
            .map_err(std::io::Error::other)?;
        // SAFETY: `groups` is a live buffer of `len` bytes; the kernel writes at
        // most `len` bytes and sets `len` to what it wrote (or needs, on ERANGE).
        let rc = unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_PEERGROUPS,
                groups.as_mut_ptr().cast(),
                &raw mut len,
            )
        };
        let n = usize::try_from(len).unwrap_or(0) / std::mem::size_of::<libc::gid_t>();
        if rc == 0 {
            groups.truncate(n);
            return Ok(groups);
        }
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::ERANGE) && n > groups.len() && n <= 65_536 {
            groups.resize(n, 0);
            continue;
        }
        return Err(err);
    }
}

/// The peer's supplementary groups from the group database: systems without
/// SO_PEERGROUPS only give the peer's uid and gid with the connection.
#[cfg(not(target_os = "linux"))]
fn peer_groups(_stream: &UnixStream, uid: u32, gid: u32) -> std::io::Result<Vec<u32>> {
    use nix::unistd::{Gid, Uid, User, getgrouplist};
    let user = User::from_uid(Uid::from_raw(uid))
        .map_err(std::io::Error::from)?
        .ok_or_else(|| std::io::Error::other(format!("no user with uid {uid}")))?;
    let name = std::ffi::CString::new(user.name).map_err(std::io::Error::other)?;
    let groups = getgrouplist(&name, Gid::from_raw(gid)).map_err(std::io::Error::from)?;
    Ok(groups.into_iter().map(Gid::as_raw).collect())
}

async fn handle_connection(
    stream: UnixStream,
    options: &ServerOptions,
    engine: &mpsc::Sender<ControlRequest>,
) {
    let (uid, gid) = match stream.peer_cred() {
        Ok(c) => (c.uid(), c.gid()),
        Err(e) => {
            tracing::warn!(error = %e, "control: cannot read peer credentials");
            return;
        }
    };
    let groups = if options.admin_uids.contains(&uid) || options.read_gid.is_none() {
        Vec::new()
    } else {
        peer_groups(&stream, uid, gid).unwrap_or_else(|e| {
            tracing::warn!(uid, error = %e, "control: cannot read the peer's groups");
            Vec::new()
        })
    };
    let role = options.role(uid, gid, &groups);
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let Some(role) = role else {
        tracing::warn!(
            uid,
            gid,
            "control: refused a connection from an unauthorised user"
        );
        // Take the request first (bounded, briefly): closing with it unread would
        // make the client's write fail before it sees the reason.
        let mut request = Vec::new();
        let _ = tokio::time::timeout(
            Duration::from_secs(1),
            (&mut reader)
                .take((MAX_REQUEST + 1) as u64)
                .read_until(b'\n', &mut request),
        )
        .await;
        let who = if options.read_gid.is_some() {
            "root, or members of the socket group for read-only commands"
        } else {
            "root only"
        };
        let reply = Reply {
            id: Request::id_of(&request),
            ..Reply::error(format!(
                "permission denied: uid {uid} may not use the control socket ({who})"
            ))
        };
        let _ = write.write_all(&reply.to_line()).await;
        return;
    };
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
        let parsed = Request::parse(&line);
        let id = match &parsed {
            Ok(req) => req.id,
            Err(_) => Request::id_of(&line),
        };
        let reply = match parsed {
            Ok(req) if role == Role::ReadOnly && !req.cmd.is_read_only() => {
                tracing::warn!(
                    uid,
                    cmd = req.cmd.name(),
                    "control: refused a command that needs root"
                );
                Reply::error(format!(
                    "permission denied: `{}` needs root (the socket group may only use status, bans and stats)",
                    req.cmd.name()
                ))
            }
            Ok(req) => ask_engine(engine, req.cmd).await,
            Err(msg) => Reply::error(msg),
        };
        let reply = Reply { id, ..reply };
        if write.write_all(&reply.into_line()).await.is_err() || !complete {
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

    /// Issue 16, item 5: per-uid and total caps for non-admins, with a reserve
    /// for root that the others cannot take.
    #[test]
    fn connection_caps_keep_a_reserve_for_root() {
        let slots = std::sync::Arc::new(std::sync::Mutex::new(Slots::default()));
        let mut held = Vec::new();
        for _ in 0..MAX_PER_UID {
            held.push(SlotGuard::take(&slots, 1000, false).expect("under the per-uid cap"));
        }
        assert!(SlotGuard::take(&slots, 1000, false).is_err(), "per-uid cap");
        for uid in 2000.. {
            match SlotGuard::take(&slots, uid, false) {
                Ok(g) => held.push(g),
                Err(_) => break,
            }
        }
        assert_eq!(held.len(), MAX_OTHERS, "total cap for non-admins");
        let root: Vec<_> = (0..ADMIN_RESERVE)
            .map(|_| SlotGuard::take(&slots, 0, true).expect("root's reserve"))
            .collect();
        assert!(
            SlotGuard::take(&slots, 0, true).is_err(),
            "root is capped too"
        );
        drop(root);
        held.truncate(0);
        let s = slots.lock().expect("lock");
        assert_eq!(
            (s.admins, s.others, s.by_uid.len()),
            (0, 0, 0),
            "all given back"
        );
    }

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
                admin_uids: allowed,
                read_gid: None,
            },
        )
        .expect("bind");
        let (tx, mut rx) = mpsc::channel::<ControlRequest>(8);
        tokio::spawn(async move {
            while let Some(req) = rx.recv().await {
                let _ = req.reply.send(Reply::ok(&req.cmd));
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
                    target: Some("198.51.100.7".into()),
                    all: false,
                    jail: None,
                    fleet: false,
                },
                Duration::from_secs(5),
            )
        })
        .await
        .expect("join")
        .expect("reply");
        assert!(reply.ok);
        assert_eq!(
            reply.decode::<serde_json::Value>().expect("data"),
            serde_json::json!({"cmd": "unban", "target": "198.51.100.7"})
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

    #[test]
    fn roles_follow_uid_then_groups() {
        let root_only = ServerOptions::default();
        assert_eq!(root_only.role(0, 0, &[]), Some(Role::Admin));
        assert_eq!(root_only.role(1000, 1000, &[4, 27]), None);
        let with_group = ServerOptions {
            admin_uids: vec![0],
            read_gid: Some(4242),
        };
        assert_eq!(with_group.role(0, 0, &[]), Some(Role::Admin));
        assert_eq!(with_group.role(1000, 4242, &[]), Some(Role::ReadOnly));
        assert_eq!(
            with_group.role(1000, 1000, &[27, 4242]),
            Some(Role::ReadOnly)
        );
        assert_eq!(with_group.role(1000, 1000, &[27]), None);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn socket_group_members_may_only_read_and_the_socket_is_0660() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ctl.sock");
        let my_gid = nix::unistd::getegid().as_raw();
        // Not an admin, but in the read group.
        let server = ControlServer::bind(
            &path,
            ServerOptions {
                admin_uids: vec![my_uid().wrapping_add(4242)],
                read_gid: Some(my_gid),
            },
        )
        .expect("bind");
        let meta = std::fs::metadata(&path).expect("meta");
        assert_eq!(meta.permissions().mode() & 0o777, 0o660);
        assert_eq!(std::os::unix::fs::MetadataExt::gid(&meta), my_gid);
        let (tx, mut rx) = mpsc::channel::<ControlRequest>(8);
        tokio::spawn(async move {
            while let Some(req) = rx.recv().await {
                let _ = req.reply.send(Reply::ok(req.cmd.name()));
            }
        });
        let (_stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move { server.serve(tx, stop_rx).await });
        let out = raw(
            &path,
            b"{\"v\":1,\"cmd\":\"stats\"}\n{\"v\":1,\"cmd\":\"ban\",\"target\":\"198.51.100.7\"}\n{\"v\":1,\"cmd\":\"bans\"}\n".to_vec(),
        )
        .await;
        let replies: Vec<Reply> = out
            .lines()
            .map(|l| serde_json::from_str(l).expect("reply json"))
            .collect();
        assert_eq!(replies.len(), 3, "{out}");
        assert_eq!(replies[0].decode::<String>().expect("data"), "stats");
        assert!(!replies[1].ok);
        assert!(
            replies[1]
                .error
                .as_deref()
                .unwrap_or_default()
                .contains("`ban` needs root"),
            "{:?}",
            replies[1]
        );
        assert_eq!(replies[2].decode::<String>().expect("data"), "bans");
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
