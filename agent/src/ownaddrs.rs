//! The host's own addresses, for the allowlist: banning one of them would cut the
//! host off from itself, and DHCP, SLAAC or an admin can change them at any time.
//! So they are read over rtnetlink at start (one dump of every interface's
//! addresses) and kept current by a subscription to the kernel's address change
//! groups (`RTNLGRP_IPV4_IFADDR`, `RTNLGRP_IPV6_IFADDR`).
//!
//! The subscription is opened before the dump, so no change falls between them.
//! Each change (or burst of changes) triggers a fresh dump rather than patching a
//! copy, so a missed or reordered notification can never leave a stale set; the
//! watcher sends the whole set, and only when it differs from the last one sent.
//! Address changes are rare, so the extra dump costs nothing that matters.
//!
//! This module only does the netlink I/O; the engine receives plain address lists
//! through [`crate::engine::Engine::set_own_addresses`].

use std::net::IpAddr;

use tokio::sync::mpsc;

/// Why the host's addresses could not be read or watched.
#[derive(Debug, thiserror::Error)]
pub enum OwnAddrsError {
    /// The rtnetlink socket could not be opened or subscribed.
    #[error("cannot open an rtnetlink socket for address changes: {0}")]
    Connect(#[source] std::io::Error),
    /// The address dump failed.
    #[error("cannot list the host's addresses over rtnetlink: {0}")]
    Dump(String),
    /// This platform has no rtnetlink.
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
                let now = match dump(&handle).await {
                    Ok(set) => set,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot re-read the host's addresses; keeping the last known set");
                        continue;
                    }
                };
                if now == last {
                    continue;
                }
                tracing::info!(addresses = now.len(), "host addresses changed");
                last = now.clone();
                if updates.send(sorted(now)).await.is_err() {
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

#[cfg(not(target_os = "linux"))]
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
