//! The CLI side of the control socket: connect, send one request, read one reply.
//! Blocking on purpose: a CLI command needs no runtime for one round trip.
//!
//! The socket is trusted only as far as it proves itself: whoever serves it must
//! be root (or the caller's own uid), as SO_PEERCRED tells, and the reply must
//! carry the request's random `id`. Someone who could bind a socket at that path
//! (a directory they own) thus gets neither the request answered in root's name
//! nor a stale or canned reply printed as the agent's.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::protocol::{Command, MAX_REPLY, Reply, Request, VERSION};

/// Default time allowed for one round trip.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Errors talking to the agent. Each names the socket.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing listens at the socket.
    #[error(
        "cannot reach the log2drop agent at {socket}: {source} (is `log2drop run` running, and is this the socket in its config?)"
    )]
    NotRunning {
        /// The socket path.
        socket: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The socket exists but this user may not open it.
    #[error(
        "permission denied on {socket}: the control socket is for root (and, for status, bans and stats, members of agent.socket_group)"
    )]
    PermissionDenied {
        /// The socket path.
        socket: PathBuf,
    },
    /// The agent took too long.
    #[error("the log2drop agent at {socket} did not answer within {timeout:?}")]
    Timeout {
        /// The socket path.
        socket: PathBuf,
        /// The limit.
        timeout: Duration,
    },
    /// Reading or writing failed.
    #[error("talking to the log2drop agent at {socket}: {source}")]
    Io {
        /// The socket path.
        socket: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The process serving the socket is not root's.
    #[error(
        "refusing the control socket {socket}: it is served by uid {uid}, not root; \
         another user may have put it there (check who owns its directory)"
    )]
    UntrustedPeer {
        /// The socket path.
        socket: PathBuf,
        /// The serving process's uid.
        uid: u32,
    },
    /// The reply was not a protocol message.
    #[error("the log2drop agent at {socket} sent a bad reply: {reason}")]
    BadReply {
        /// The socket path.
        socket: PathBuf,
        /// What was wrong.
        reason: String,
    },
}

/// Sends `cmd` to the agent at `socket` and returns its reply (which may itself
/// report a failure: check [`Reply::ok`]).
pub fn request(socket: &Path, cmd: &Command, timeout: Duration) -> Result<Reply, ClientError> {
    let io_err = |source: std::io::Error| {
        if matches!(
            source.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ) {
            ClientError::Timeout {
                socket: socket.to_path_buf(),
                timeout,
            }
        } else {
            ClientError::Io {
                socket: socket.to_path_buf(),
                source,
            }
        }
    };
    let mut stream = UnixStream::connect(socket).map_err(|source| {
        if source.kind() == std::io::ErrorKind::PermissionDenied {
            ClientError::PermissionDenied {
                socket: socket.to_path_buf(),
            }
        } else {
            ClientError::NotRunning {
                socket: socket.to_path_buf(),
                source,
            }
        }
    })?;
    let server_uid = peer_uid(&stream).map_err(io_err)?;
    if server_uid != 0 && server_uid != nix::unistd::geteuid().as_raw() {
        return Err(ClientError::UntrustedPeer {
            socket: socket.to_path_buf(),
            uid: server_uid,
        });
    }
    stream.set_read_timeout(Some(timeout)).map_err(io_err)?;
    stream.set_write_timeout(Some(timeout)).map_err(io_err)?;
    let id = request_id();
    let request = Request {
        id: Some(id),
        ..Request::new(cmd.clone())
    };
    let mut line = serde_json::to_vec(&request).map_err(|e| ClientError::BadReply {
        socket: socket.to_path_buf(),
        reason: format!("cannot encode request: {e}"),
    })?;
    line.push(b'\n');
    // A refusing agent may answer and close before the request is written: the
    // write then fails, but its reply (the reason) is still there to read.
    let written = stream.write_all(&line);
    let mut reader = BufReader::new(stream).take(MAX_REPLY as u64 + 1);
    let mut reply = Vec::new();
    let read = reader.read_until(b'\n', &mut reply);
    if reply.is_empty() {
        written.map_err(io_err)?;
    }
    read.map_err(io_err)?;
    if reply.last() != Some(&b'\n') {
        return Err(ClientError::BadReply {
            socket: socket.to_path_buf(),
            reason: if reply.is_empty() {
                "connection closed without a reply".into()
            } else {
                "reply cut short or too large".into()
            },
        });
    }
    let reply: Reply = serde_json::from_slice(&reply).map_err(|e| ClientError::BadReply {
        socket: socket.to_path_buf(),
        reason: e.to_string(),
    })?;
    if reply.v != VERSION {
        return Err(ClientError::BadReply {
            socket: socket.to_path_buf(),
            reason: format!(
                "protocol version {} (this log2drop speaks {VERSION})",
                reply.v
            ),
        });
    }
    // An error may come without the id: the agent sends some (a request too large
    // to read, a refused peer) before it has the request's id.
    let answers = match reply.id {
        Some(got) => got == id,
        None => !reply.ok,
    };
    if !answers {
        return Err(ClientError::BadReply {
            socket: socket.to_path_buf(),
            reason: match reply.id {
                Some(other) => format!("it answers request {other}, not this one ({id})"),
                None => format!("it does not say which request it answers (sent id {id})"),
            },
        });
    }
    Ok(reply)
}

/// A request id no other process can predict: the standard library seeds each
/// `RandomState` from the OS's random source.
fn request_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    // JSON readers other than ours may hold numbers as doubles: stay exact there.
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
        & ((1 << 53) - 1)
}

/// The uid of the process serving the socket: SO_PEERCRED on Linux,
/// getpeereid(2) on the BSDs.
fn peer_uid(stream: &std::os::unix::net::UnixStream) -> std::io::Result<u32> {
    #[cfg(target_os = "linux")]
    let uid = nix::sys::socket::getsockopt(stream, nix::sys::socket::sockopt::PeerCredentials)
        .map(|c| c.uid());
    #[cfg(not(target_os = "linux"))]
    let uid = nix::unistd::getpeereid(stream).map(|(uid, _)| uid.as_raw());
    uid.map_err(std::io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_agent_error_names_the_socket() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sock = dir.path().join("none.sock");
        let err = request(&sock, &Command::Bans { jail: None }, Duration::from_secs(1))
            .expect_err("no agent");
        assert!(matches!(err, ClientError::NotRunning { .. }));
        assert!(err.to_string().contains(&*sock.to_string_lossy()), "{err}");
    }

    #[test]
    fn a_refusal_sent_before_the_request_is_read_still_arrives() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sock = dir.path().join("refuse.sock");
        let listener = std::os::unix::net::UnixListener::bind(&sock).expect("bind");
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().expect("accept");
            s.write_all(b"{\"v\":1,\"ok\":false,\"error\":\"permission denied\"}\n")
                .expect("answer");
            // Closed with the request unread.
        });
        // Larger than the socket buffer, so the write is still going on when the
        // other side closes.
        let cmd = Command::Ban {
            target: "x".repeat(8 << 20),
            duration: None,
            jail: None,
            force: false,
        };
        let reply = request(&sock, &cmd, Duration::from_secs(5)).expect("the reason, not EPIPE");
        assert_eq!(reply.error.as_deref(), Some("permission denied"));
        server.join().expect("server");
    }

    /// Issue 16, item 4: a reply that does not answer this request (another id, or
    /// a success without one, as a canned fake would send) is refused.
    #[test]
    fn a_reply_to_another_request_is_refused() {
        for canned in [
            &b"{\"v\":1,\"ok\":true,\"data\":[]}\n"[..],
            b"{\"v\":1,\"id\":7,\"ok\":true,\"data\":[]}\n",
            b"{\"v\":1,\"id\":7,\"ok\":false,\"error\":\"x\"}\n",
        ] {
            let dir = tempfile::tempdir().expect("tempdir");
            let sock = dir.path().join("fake.sock");
            let listener = std::os::unix::net::UnixListener::bind(&sock).expect("bind");
            let server = std::thread::spawn(move || {
                let (s, _) = listener.accept().expect("accept");
                let mut line = Vec::new();
                BufReader::new(&s)
                    .read_until(b'\n', &mut line)
                    .expect("read");
                let sent: Request = serde_json::from_slice(&line[..line.len() - 1]).expect("req");
                (&s).write_all(canned).expect("answer");
                sent.id
            });
            let err = request(&sock, &Command::Bans { jail: None }, Duration::from_secs(5))
                .expect_err("not our reply");
            let sent = server.join().expect("server");
            assert!(sent.is_some(), "the client sends an id");
            assert!(
                matches!(err, ClientError::BadReply { .. }) && err.to_string().contains("request"),
                "{err}"
            );
        }
    }

    #[test]
    fn silent_agent_times_out() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sock = dir.path().join("mute.sock");
        // Accepts (the backlog does it) but never answers.
        let _listener = std::os::unix::net::UnixListener::bind(&sock).expect("bind");
        let err = request(
            &sock,
            &Command::Bans { jail: None },
            Duration::from_millis(200),
        )
        .expect_err("timeout");
        assert!(matches!(err, ClientError::Timeout { .. }), "{err}");
    }
}
