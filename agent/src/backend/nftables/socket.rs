//! The netfilter netlink socket. nf_tables applies a transaction only when its batch
//! (begin, messages, end) arrives in one `sendmsg`, so a whole batch goes out as one
//! scatter-gather write, with the send buffer grown to fit it. The kernel processes
//! the batch inside that call, so every error it has to report is already queued
//! when `sendmsg` returns: [`Socket::transact`] drains the queue without waiting.
//! Dumps (listing tables, chains, set elements, rules) are request/response loops.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::error::NftError;

/// `NETLINK_NETFILTER` from `linux/netlink.h`.
const NETLINK_NETFILTER: libc::c_int = 12;
/// `NLMSG_ERROR`.
const NLMSG_ERROR: u16 = 2;
/// `NLMSG_DONE`.
const NLMSG_DONE: u16 = 3;
/// `NLM_F_REQUEST`.
pub(crate) const NLM_F_REQUEST: u16 = 0x1;
/// `NLM_F_DUMP` (`NLM_F_ROOT | NLM_F_MATCH`).
pub(crate) const NLM_F_DUMP: u16 = 0x300;
/// Size of `struct nlmsghdr`.
const NLMSG_HDRLEN: usize = 16;
/// Receive buffer for one `recv`: large enough for any nf_tables dump message.
const RECV_BUF: usize = 1 << 18;
/// Socket receive buffer, so a dump or a burst of error replies does not overflow.
const RCVBUF_BYTES: libc::c_int = 1 << 22;

/// An error reply of the kernel: the errno and the sequence number it answers.
#[derive(Debug)]
pub(crate) struct KernelError {
    /// Sequence number of the message that failed.
    pub seq: u32,
    /// The errno.
    pub error: io::Error,
}

/// A netfilter netlink socket of the current network namespace.
#[derive(Debug)]
pub(crate) struct Socket {
    fd: OwnedFd,
    sndbuf: usize,
    buf: Vec<u64>,
}

/// Whether an errno says the kernel has no nf_tables.
pub(crate) fn means_no_nftables(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EPROTONOSUPPORT | libc::EAFNOSUPPORT | libc::EOPNOTSUPP)
    )
}

/// Whether an errno says we lack CAP_NET_ADMIN.
pub(crate) fn means_not_permitted(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EPERM | libc::EACCES))
}

impl Socket {
    /// Opens and binds a socket in the calling thread's network namespace.
    pub(crate) fn open() -> Result<Socket, NftError> {
        // SAFETY: plain socket(2); the result is checked before use.
        let raw = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                NETLINK_NETFILTER,
            )
        };
        if raw < 0 {
            let e = io::Error::last_os_error();
            return Err(if means_no_nftables(&e) {
                NftError::NoNfTables { source: e }
            } else {
                NftError::Socket {
                    action: "open",
                    source: e,
                }
            });
        }
        // SAFETY: `raw` is a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: a zeroed sockaddr_nl is valid; nl_pid 0 lets the kernel pick.
        let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        // SAFETY: addr is a valid sockaddr_nl of the given size.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&raw const addr).cast(),
                size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(NftError::Socket {
                action: "bind",
                source: io::Error::last_os_error(),
            });
        }
        let mut sock = Socket {
            fd,
            sndbuf: 0,
            buf: vec![0u64; RECV_BUF / 8],
        };
        sock.set_buf(libc::SO_RCVBUFFORCE, libc::SO_RCVBUF, RCVBUF_BYTES);
        Ok(sock)
    }

    /// Sets a buffer size, forcing past the sysctl limit where allowed.
    fn set_buf(&mut self, force: libc::c_int, plain: libc::c_int, bytes: libc::c_int) {
        for opt in [force, plain] {
            // SAFETY: setsockopt with a c_int value of the right size.
            let rc = unsafe {
                libc::setsockopt(
                    self.fd.as_raw_fd(),
                    libc::SOL_SOCKET,
                    opt,
                    (&raw const bytes).cast(),
                    size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
            if rc == 0 {
                return;
            }
        }
    }

    /// Sends one batch (its pages, in order) in one `sendmsg` and returns the errors
    /// the kernel replied with (empty: the transaction was committed).
    pub(crate) fn transact(&mut self, pages: &[&[u8]]) -> io::Result<Vec<KernelError>> {
        let total: usize = pages.iter().map(|p| p.len()).sum();
        if total + 4096 > self.sndbuf {
            let want = (total + 65536).min(i32::MAX as usize / 2);
            self.set_buf(
                libc::SO_SNDBUFFORCE,
                libc::SO_SNDBUF,
                libc::c_int::try_from(want).unwrap_or(i32::MAX / 2),
            );
            self.sndbuf = want;
        }
        let iov: Vec<libc::iovec> = pages
            .iter()
            .map(|p| libc::iovec {
                iov_base: p.as_ptr().cast_mut().cast(),
                iov_len: p.len(),
            })
            .collect();
        // SAFETY: zeroed sockaddr_nl (kernel, pid 0) and msghdr are valid.
        let mut dest: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        dest.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        // SAFETY: as above.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_name = (&raw mut dest).cast();
        msg.msg_namelen = size_of::<libc::sockaddr_nl>() as libc::socklen_t;
        msg.msg_iov = iov.as_ptr().cast_mut();
        msg.msg_iovlen = iov.len();
        // SAFETY: msg points at live iovecs and address for the duration of the call.
        let sent = unsafe { libc::sendmsg(self.fd.as_raw_fd(), &raw const msg, 0) };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        if usize::try_from(sent).ok() != Some(total) {
            return Err(io::Error::other("sendmsg sent part of the batch"));
        }
        let mut errors = Vec::new();
        loop {
            let n = match self.recv(libc::MSG_DONTWAIT) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            };
            for msg in Messages::new(self.bytes(n)) {
                let msg = msg?;
                if msg.kind == NLMSG_ERROR
                    && let Some(errno) = msg.error_code()
                    && errno != 0
                {
                    errors.push(KernelError {
                        seq: msg.seq,
                        error: io::Error::from_raw_os_error(-errno),
                    });
                }
            }
        }
        Ok(errors)
    }

    /// Sends a dump request and hands every reply message (header included) to `each`.
    pub(crate) fn dump(
        &mut self,
        request: &[u8],
        mut each: impl FnMut(&[u8]) -> io::Result<()>,
    ) -> io::Result<()> {
        // SAFETY: zeroed sockaddr_nl (kernel, pid 0) is valid.
        let mut dest: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        dest.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        // SAFETY: request and dest outlive the call.
        let sent = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                request.as_ptr().cast(),
                request.len(),
                0,
                (&raw const dest).cast(),
                size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        loop {
            let n = self.recv(0)?;
            let mut done = false;
            let mut failure = None;
            {
                let bytes = self.bytes(n);
                for msg in Messages::new(bytes) {
                    let msg = msg?;
                    match msg.kind {
                        NLMSG_DONE => done = true,
                        NLMSG_ERROR => match msg.error_code() {
                            Some(0) => done = true,
                            Some(errno) => failure = Some(io::Error::from_raw_os_error(-errno)),
                            None => failure = Some(io::Error::other("short netlink error")),
                        },
                        _ => each(msg.whole)?,
                    }
                }
            }
            if let Some(e) = failure {
                // Drain what is left of this dump so the next request starts clean.
                while !done {
                    match self.recv(libc::MSG_DONTWAIT) {
                        Ok(n) => {
                            done = Messages::new(self.bytes(n)).any(|m| {
                                m.is_ok_and(|m| m.kind == NLMSG_DONE || m.kind == NLMSG_ERROR)
                            });
                        }
                        Err(_) => break,
                    }
                }
                return Err(e);
            }
            if done {
                return Ok(());
            }
        }
    }

    fn recv(&mut self, flags: libc::c_int) -> io::Result<usize> {
        loop {
            // SAFETY: buf is a live, writable buffer of the given length.
            let n = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    self.buf.as_mut_ptr().cast(),
                    self.buf.len() * 8,
                    flags,
                )
            };
            if n >= 0 {
                return Ok(usize::try_from(n).unwrap_or(0));
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }

    fn bytes(&self, n: usize) -> &[u8] {
        // SAFETY: the u64 buffer is viewed as bytes; n was bounded by its byte length.
        unsafe { std::slice::from_raw_parts(self.buf.as_ptr().cast::<u8>(), n) }
    }
}

/// One netlink message in a receive buffer.
pub(crate) struct Message<'a> {
    kind: u16,
    seq: u32,
    /// The whole message, header included.
    whole: &'a [u8],
}

impl<'a> Message<'a> {
    /// The whole message, header included.
    #[cfg(test)]
    pub(crate) fn whole(&self) -> &'a [u8] {
        self.whole
    }

    /// The errno of an `NLMSG_ERROR` (negative, 0 for an ack).
    fn error_code(&self) -> Option<i32> {
        let b = self.whole.get(NLMSG_HDRLEN..NLMSG_HDRLEN + 4)?;
        Some(i32::from_ne_bytes(b.try_into().ok()?))
    }
}

/// Iterates the netlink messages in a buffer, checking every length.
pub(crate) struct Messages<'a> {
    rest: &'a [u8],
}

impl<'a> Messages<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Messages<'a> {
        Messages { rest: bytes }
    }
}

impl<'a> Iterator for Messages<'a> {
    type Item = io::Result<Message<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.len() < NLMSG_HDRLEN {
            return None;
        }
        let len = u32::from_ne_bytes(self.rest[0..4].try_into().ok()?) as usize;
        if len < NLMSG_HDRLEN || len > self.rest.len() {
            self.rest = &[];
            return Some(Err(io::Error::other("truncated netlink message")));
        }
        let kind = u16::from_ne_bytes(self.rest[4..6].try_into().ok()?);
        let seq = u32::from_ne_bytes(self.rest[8..12].try_into().ok()?);
        let whole = &self.rest[..len];
        let aligned = (len + 3) & !3;
        self.rest = self.rest.get(aligned..).unwrap_or(&[]);
        Some(Ok(Message { kind, seq, whole }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(len: u32, kind: u16, seq: u32) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&len.to_ne_bytes());
        v.extend_from_slice(&kind.to_ne_bytes());
        v.extend_from_slice(&0u16.to_ne_bytes());
        v.extend_from_slice(&seq.to_ne_bytes());
        v.extend_from_slice(&0u32.to_ne_bytes());
        v
    }

    #[test]
    fn messages_walks_aligned_and_reads_errors() {
        let mut buf = header(20, NLMSG_ERROR, 7);
        buf.extend_from_slice(&(-libc::EPERM).to_ne_bytes());
        let mut second = header(18, 100, 8);
        second.extend_from_slice(&[1, 2, 0, 0]);
        buf.extend_from_slice(&second);
        let msgs: Vec<_> = Messages::new(&buf)
            .collect::<Result<_, _>>()
            .expect("parse");
        assert_eq!(msgs.len(), 2);
        assert_eq!(msgs[0].seq, 7);
        assert_eq!(msgs[0].error_code(), Some(-libc::EPERM));
        assert_eq!(msgs[1].kind, 100);
        assert_eq!(msgs[1].whole.len(), 18);
    }

    #[test]
    fn a_lying_length_is_an_error_not_a_panic() {
        let buf = header(4000, 100, 1);
        let got: Vec<_> = Messages::new(&buf).collect();
        assert_eq!(got.len(), 1);
        assert!(got[0].is_err());
        let short = header(8, 100, 1);
        assert!(Messages::new(&short).next().expect("one").is_err());
    }
}
