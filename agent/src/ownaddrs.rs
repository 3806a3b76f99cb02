//! The host's own addresses, for the allowlist: banning one of them would cut the
//! host off from itself, and DHCP, SLAAC or an admin can change them at any time.
//! So they are read at start (one dump of every interface's addresses) and kept
//! current by a subscription to the kernel's address changes:
//! - Linux: rtnetlink, the address change groups (`RTNLGRP_IPV4_IFADDR`,
//!   `RTNLGRP_IPV6_IFADDR`);
//! - OpenBSD: `getifaddrs` for the dump, and a routing socket (`PF_ROUTE`)
//!   filtered to `RTM_NEWADDR` and `RTM_DELADDR` for the changes.
//!
//! The subscription is opened before the dump, so no change falls between them.
//! Each change (or burst of changes) triggers a fresh dump rather than patching a
//! copy, so a missed or reordered notification can never leave a stale set; the
//! watcher sends the whole set, and only when it differs from the last one sent.
//! Address changes are rare, so the extra dump costs nothing that matters.
//!
//! This module only does the kernel I/O; the engine receives plain address lists
//! through [`crate::engine::Engine::set_own_addresses`].

use std::net::IpAddr;

use tokio::sync::mpsc;

/// Why the host's addresses could not be read or watched.
#[derive(Debug, thiserror::Error)]
pub enum OwnAddrsError {
    /// The socket for address changes (rtnetlink, or the routing socket) could
    /// not be opened or subscribed.
    #[error("cannot open a socket for the host's address changes: {0}")]
    Connect(#[source] std::io::Error),
    /// The address dump failed.
    #[error("cannot list the host's addresses: {0}")]
    Dump(String),
    /// This platform has neither rtnetlink nor a routing socket we read.
    #[error(
        "reading the host's own addresses is not supported on this platform; set agent.allow_own_addresses = false and list them in agent.allow"
    )]
    Unsupported,
}

/// A running watcher; dropping it stops the watch.
#[derive(Debug)]
pub struct Watcher {
    task: tokio::task::JoinHandle<()>,
}

impl Watcher {
    /// True once the watcher stopped (its receiver was dropped or netlink failed).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads the host's addresses now, subscribes to their changes, and spawns a task
/// that sends the whole set to `updates` whenever it changes. Returns the set read
/// now (sorted, deduplicated) and the watcher. Must run inside a tokio runtime;
/// the socket belongs to the calling thread's network namespace.
pub async fn watch(
    updates: mpsc::Sender<Vec<IpAddr>>,
) -> Result<(Vec<IpAddr>, Watcher), OwnAddrsError> {
    imp::watch(updates).await
}

/// Reads the host's addresses once (sorted, deduplicated).
pub async fn current() -> Result<Vec<IpAddr>, OwnAddrsError> {
    imp::current().await
}

/// Sends the set read after a change when it differs from the last one sent
/// (a failed read keeps the last set). False once nobody listens any more.
#[cfg(any(target_os = "linux", target_os = "openbsd"))]
async fn publish(
    read: Result<std::collections::BTreeSet<IpAddr>, OwnAddrsError>,
    last: &mut std::collections::BTreeSet<IpAddr>,
    updates: &mpsc::Sender<Vec<IpAddr>>,
) -> bool {
    let now = match read {
        Ok(set) => set,
        Err(e) => {
            tracing::error!(error = %e, "cannot re-read the host's addresses; keeping the last known set");
            return true;
        }
    };
    if now == *last {
        return true;
    }
    tracing::info!(addresses = now.len(), "host addresses changed");
    *last = now.clone();
    updates.send(now.into_iter().collect()).await.is_ok()
}

#[cfg(target_os = "linux")]
mod imp {
    use std::collections::BTreeSet;
    use std::net::IpAddr;

    use futures_util::{FutureExt, StreamExt, TryStreamExt};
    use rtnetlink::packet_route::address::{AddressAttribute, AddressMessage};
    use rtnetlink::{Handle, MulticastGroup};
    use tokio::sync::mpsc;

    use super::{OwnAddrsError, Watcher};
    use crate::addr;

    fn sorted(set: BTreeSet<IpAddr>) -> Vec<IpAddr> {
        set.into_iter().collect()
    }

    /// Aborts the netlink connection task when the watcher ends, however it ends.
    struct AbortOnDrop(tokio::task::JoinHandle<()>);

    impl Drop for AbortOnDrop {
        fn drop(&mut self) {
            self.0.abort();
        }
    }

    pub(super) async fn watch(
        updates: mpsc::Sender<Vec<IpAddr>>,
    ) -> Result<(Vec<IpAddr>, Watcher), OwnAddrsError> {
        let (conn, handle, mut messages) = rtnetlink::new_multicast_connection(&[
            MulticastGroup::Ipv4Ifaddr,
            MulticastGroup::Ipv6Ifaddr,
        ])
        .map_err(OwnAddrsError::Connect)?;
        let conn = AbortOnDrop(tokio::spawn(conn));
        let initial = dump(&handle).await?;
        let mut last = initial.clone();
        let task = tokio::spawn(async move {
            let _conn = conn;
            while messages.next().await.is_some() {
                // Fold a burst of notifications into one dump.
                while let Some(Some(_)) = messages.next().now_or_never() {}
                if !super::publish(dump(&handle).await, &mut last, &updates).await {
                    return;
                }
            }
            tracing::error!(
                "rtnetlink address subscription ended; own addresses are no longer watched"
            );
        });
        Ok((sorted(initial), Watcher { task }))
    }

    pub(super) async fn current() -> Result<Vec<IpAddr>, OwnAddrsError> {
        let (conn, handle, _) = rtnetlink::new_connection().map_err(OwnAddrsError::Connect)?;
        let _conn = AbortOnDrop(tokio::spawn(conn));
        dump(&handle).await.map(sorted)
    }

    async fn dump(handle: &Handle) -> Result<BTreeSet<IpAddr>, OwnAddrsError> {
        let mut stream = handle.address().get().execute();
        let mut set = BTreeSet::new();
        while let Some(msg) = stream
            .try_next()
            .await
            .map_err(|e| OwnAddrsError::Dump(e.to_string()))?
        {
            set.extend(addresses_of(&msg));
        }
        Ok(set)
    }

    /// The host's own address(es) in one address message: `IFA_LOCAL` where
    /// present (on point-to-point links `IFA_ADDRESS` is the peer), else
    /// `IFA_ADDRESS`.
    pub(super) fn addresses_of(msg: &AddressMessage) -> impl Iterator<Item = IpAddr> + '_ {
        let has_local = msg
            .attributes
            .iter()
            .any(|a| matches!(a, AddressAttribute::Local(_)));
        msg.attributes
            .iter()
            .filter_map(move |a| match a {
                AddressAttribute::Local(ip) => Some(*ip),
                AddressAttribute::Address(ip) if !has_local => Some(*ip),
                _ => None,
            })
            .map(addr::normalise)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn msg(attrs: Vec<AddressAttribute>) -> AddressMessage {
            let mut m = AddressMessage::default();
            m.attributes = attrs;
            m
        }

        fn ip(s: &str) -> IpAddr {
            s.parse().expect("test address")
        }

        #[test]
        fn local_wins_over_peer_address() {
            let m = msg(vec![
                AddressAttribute::Address(ip("198.51.100.2")),
                AddressAttribute::Local(ip("198.51.100.1")),
            ]);
            assert_eq!(
                addresses_of(&m).collect::<Vec<_>>(),
                vec![ip("198.51.100.1")]
            );
        }

        #[test]
        fn address_alone_is_used() {
            let m = msg(vec![
                AddressAttribute::Address(ip("2001:db8::1")),
                AddressAttribute::Label("eth0".into()),
            ]);
            assert_eq!(
                addresses_of(&m).collect::<Vec<_>>(),
                vec![ip("2001:db8::1")]
            );
        }

        #[test]
        fn mapped_addresses_become_ipv4() {
            let m = msg(vec![AddressAttribute::Address(ip("::ffff:192.0.2.1"))]);
            assert_eq!(addresses_of(&m).collect::<Vec<_>>(), vec![ip("192.0.2.1")]);
        }

        #[tokio::test]
        async fn current_reads_without_privileges() {
            // Every Linux namespace this runs in has at least `lo`; whether it is
            // up varies, so only the call itself is checked here. The privileged
            // test adds and removes addresses in a namespace of its own.
            current().await.expect("address dump");
        }
    }
}

/// What a routing socket message means for the address set. Pure, so the parsing
/// is tested on every system.
#[cfg(any(target_os = "openbsd", test))]
mod route {
    /// `RTM_VERSION` of OpenBSD's `<net/route.h>`.
    pub(super) const RTM_VERSION: u8 = 5;
    /// An address was added.
    pub(super) const RTM_NEWADDR: u8 = 0x0c;
    /// An address was deleted.
    pub(super) const RTM_DELADDR: u8 = 0x0d;
    /// The kernel dropped messages for this socket (its buffer was full): the
    /// set must be read again.
    pub(super) const RTM_DESYNC: u8 = 0x10;

    /// Whether one message read from the routing socket calls for a fresh read of
    /// the addresses. Every message starts with `msglen` (u16), `version` (u8)
    /// and `type` (u8), in `rt_msghdr` and `ifa_msghdr` alike.
    pub(super) fn calls_for_reread(msg: &[u8]) -> bool {
        match msg {
            [_, _, version, kind, ..] => {
                *version == RTM_VERSION && matches!(*kind, RTM_NEWADDR | RTM_DELADDR | RTM_DESYNC)
            }
            _ => false,
        }
    }

    /// KAME's IPv6 stack (OpenBSD's) keeps a link-local address's interface index
    /// in its third and fourth bytes, and `getifaddrs` shows it so: clear it to
    /// get the address as it appears on the wire and in logs.
    pub(super) fn without_embedded_scope(a: std::net::Ipv6Addr) -> std::net::Ipv6Addr {
        let mut seg = a.segments();
        if seg[0] & 0xffc0 == 0xfe80 {
            seg[1] = 0;
        }
        std::net::Ipv6Addr::from(seg)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn address_changes_and_desyncs_call_for_a_reread() {
            for kind in [RTM_NEWADDR, RTM_DELADDR, RTM_DESYNC] {
                assert!(calls_for_reread(&[16, 0, RTM_VERSION, kind, 0, 0]));
            }
            // RTM_ADD (a route), a future header version, a truncated read.
            assert!(!calls_for_reread(&[16, 0, RTM_VERSION, 0x1, 0, 0]));
            assert!(!calls_for_reread(&[16, 0, RTM_VERSION + 1, RTM_NEWADDR]));
            assert!(!calls_for_reread(&[16, 0, RTM_VERSION]));
        }

        #[test]
        fn link_local_scope_is_cleared_and_other_addresses_kept() {
            let embedded: std::net::Ipv6Addr = "fe80:2::1".parse().expect("addr");
            assert_eq!(
                without_embedded_scope(embedded),
                "fe80::1".parse::<std::net::Ipv6Addr>().expect("addr")
            );
            let global: std::net::Ipv6Addr = "2001:db8:2::1".parse().expect("addr");
            assert_eq!(without_embedded_scope(global), global);
        }
    }
}

#[cfg(target_os = "openbsd")]
mod imp {
    use std::collections::BTreeSet;
    use std::io;
    use std::net::IpAddr;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    use tokio::io::Interest;
    use tokio::io::unix::AsyncFd;
    use tokio::sync::mpsc;

    use super::route::{
        RTM_DELADDR, RTM_DESYNC, RTM_NEWADDR, calls_for_reread, without_embedded_scope,
    };
    use super::{OwnAddrsError, Watcher};
    use crate::addr;

    /// `ROUTE_MSGFILTER` of `<net/route.h>`: a socket option (level `AF_ROUTE`)
    /// holding a bitmask of the message types the socket receives.
    const ROUTE_MSGFILTER: libc::c_int = 1;

    fn sorted(set: BTreeSet<IpAddr>) -> Vec<IpAddr> {
        set.into_iter().collect()
    }

    /// A non-blocking routing socket that receives address changes only.
    fn route_socket() -> io::Result<OwnedFd> {
        // SAFETY: plain socket(2); the descriptor is owned right below.
        let fd = unsafe {
            libc::socket(
                libc::AF_ROUTE,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                libc::AF_UNSPEC,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just opened and nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let filter: libc::c_uint = [RTM_NEWADDR, RTM_DELADDR, RTM_DESYNC]
            .iter()
            .fold(0, |m, &t| m | (1 << t));
        // SAFETY: `filter` is a live c_uint and its size is passed with it.
        let rc = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::AF_ROUTE,
                ROUTE_MSGFILTER,
                (&raw const filter).cast(),
                std::mem::size_of::<libc::c_uint>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(fd)
    }

    /// Every address of every interface, through getifaddrs(3).
    fn dump() -> Result<BTreeSet<IpAddr>, OwnAddrsError> {
        let list = nix::ifaddrs::getifaddrs().map_err(|e| OwnAddrsError::Dump(e.to_string()))?;
        let mut set = BTreeSet::new();
        for ifa in list {
            let Some(a) = ifa.address else { continue };
            if let Some(v4) = a.as_sockaddr_in() {
                set.insert(IpAddr::V4(v4.ip()));
            } else if let Some(v6) = a.as_sockaddr_in6() {
                set.insert(addr::normalise(IpAddr::V6(without_embedded_scope(v6.ip()))));
            }
        }
        Ok(set)
    }

    /// Reads every message waiting on the socket; whether any calls for a re-read.
    fn drain(fd: &OwnedFd, buf: &mut [u8]) -> io::Result<bool> {
        let mut reread = false;
        loop {
            // SAFETY: `buf` is a live, writable buffer of `buf.len()` bytes.
            let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n < 0 {
                let e = io::Error::last_os_error();
                return if e.kind() == io::ErrorKind::WouldBlock {
                    Ok(reread)
                } else {
                    Err(e)
                };
            }
            let n = usize::try_from(n).unwrap_or(0);
            if n == 0 {
                return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
            }
            reread |= calls_for_reread(&buf[..n]);
        }
    }

    pub(super) async fn watch(
        updates: mpsc::Sender<Vec<IpAddr>>,
    ) -> Result<(Vec<IpAddr>, Watcher), OwnAddrsError> {
        let fd = route_socket().map_err(OwnAddrsError::Connect)?;
        // SAFETY: an OwnedFd always reports the descriptor it owns, and it stays
        // open until the AsyncFd that owns it is dropped.
        let sock = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }
            .map_err(|e| OwnAddrsError::Connect(e.into_parts().1))?;
        let initial = dump()?;
        let mut last = initial.clone();
        let task = tokio::spawn(async move {
            // Routing messages are small; 2 KiB holds any address message.
            let mut buf = vec![0u8; 2048];
            loop {
                let mut ready = match sock.readable().await {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::error!(error = %e, "routing socket failed; own addresses are no longer watched");
                        return;
                    }
                };
                let reread = match drain(sock.get_ref(), &mut buf) {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::error!(error = %e, "routing socket failed; own addresses are no longer watched");
                        return;
                    }
                };
                ready.clear_ready();
                if !reread {
                    continue;
                }
                if !super::publish(dump(), &mut last, &updates).await {
                    return;
                }
            }
        });
        Ok((sorted(initial), Watcher { task }))
    }

    pub(super) async fn current() -> Result<Vec<IpAddr>, OwnAddrsError> {
        dump().map(sorted)
    }
}

#[cfg(not(any(target_os = "linux", target_os = "openbsd")))]
mod imp {
    use std::net::IpAddr;

    use tokio::sync::mpsc;

    use super::{OwnAddrsError, Watcher};

    pub(super) async fn watch(
        _updates: mpsc::Sender<Vec<IpAddr>>,
    ) -> Result<(Vec<IpAddr>, Watcher), OwnAddrsError> {
        Err(OwnAddrsError::Unsupported)
    }

    pub(super) async fn current() -> Result<Vec<IpAddr>, OwnAddrsError> {
        Err(OwnAddrsError::Unsupported)
    }
}
