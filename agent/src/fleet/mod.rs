//! Fleet: hosts that share bans through Redis. A ban a shared jail makes here is
//! published; bans other hosts publish are enforced here like any other
//! decision, except that the local allowlist always wins.
//!
//! The link is a source of decisions into the engine and a sink of the engine's
//! decisions, like the store, and never blocks the engine on the network:
//! - [`config`] owns `[fleet]`: validation and the build step;
//! - [`event`] is the wire format (stream entries, snapshot values);
//! - [`link`] does the I/O (publisher and reader tasks);
//! - [`Fleet`] is what the engine task holds: it picks the decisions to publish,
//!   feeds remote events to the engine, and keeps the counters `fleet status`
//!   shows.
//!
//! See docs/fleet.md for the design, the failure behaviour and the security model.

pub mod config;
pub mod event;
pub mod link;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::engine::{Ban, Decision, Engine, FleetRefusal, Origin};
use crate::source::SourcePosition;
pub use config::{FleetConfig, FleetSettings};
use event::{BanEvent, Event};
pub use link::{Incoming, Link, LinkProbe};

/// Capacity of the incoming channel, in reader batches.
const INCOMING_QUEUE: usize = 64;

/// `log2drop fleet status`, and the `fleet` part of `status` and `stats`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetStatus {
    /// This host's node name.
    pub node: String,
    /// The Redis URL (no credentials).
    pub redis: String,
    /// The stream key.
    pub stream: String,
    /// Whether the reader follows the stream right now.
    pub connected: bool,
    /// Whether the last publish worked.
    pub publishing: bool,
    /// The last error, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// The last stream ID read (saved in the store with what it caused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_id: Option<String>,
    /// Milliseconds from the last received entry's stream ID to its arrival.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag_ms: Option<u64>,
    /// Events published.
    pub published: u64,
    /// Events waiting to be published (the batch being retried included).
    pub queued: usize,
    /// Events dropped because the outgoing queue was full.
    pub dropped: u64,
    /// Failed publishing attempts (retried).
    pub publish_errors: u64,
    /// Events received from other nodes.
    pub received: u64,
    /// Remote bans enforced here.
    pub applied: u64,
    /// Remote bans refused: they overlap the allowlist or own addresses.
    pub refused_allowlist: u64,
    /// Remote bans refused: prefix wider than `accept_max_prefix`.
    pub refused_prefix: u64,
    /// Remote bans lifted here by the fleet (unbans, snapshot resyncs).
    pub lifted: u64,
    /// Snapshot loads.
    pub resyncs: u64,
    /// Reader reconnections.
    pub reconnects: u64,
    /// Fleet bans active here.
    pub bans_active: usize,
    /// Other nodes seen on the stream, with seconds since each was last seen.
    pub peers: Vec<Peer>,
}

/// A node seen on the stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Peer {
    /// Its node name.
    pub node: String,
    /// Seconds since its last event was read.
    pub seen_secs_ago: u64,
}

/// Why the fleet link did not start.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// The settings could not be built.
    #[error(transparent)]
    Config(#[from] config::FleetConfigError),
    /// The client refused the connection details.
    #[error("fleet.redis: {0}")]
    Client(#[source] redis::RedisError),
}

/// The engine task's end of the fleet link. See the module docs.
pub struct Fleet {
    settings: FleetSettings,
    node: Arc<str>,
    link: Link,
    incoming: mpsc::Receiver<Incoming>,
}

impl Fleet {
    /// Builds the settings and starts the link; `cursor` is the stream ID saved
    /// in the store (a [`SourcePosition::Fleet`]).
    pub fn start(cfg: &FleetConfig, cursor: Option<String>) -> Result<Fleet, FleetError> {
        let settings = cfg.build()?;
        Self::start_with(settings, cursor)
    }

    /// [`Fleet::start`] with built settings.
    pub fn start_with(
        settings: FleetSettings,
        cursor: Option<String>,
    ) -> Result<Fleet, FleetError> {
        let (tx, incoming) = mpsc::channel(INCOMING_QUEUE);
        let link = Link::start(&settings, cursor, tx).map_err(FleetError::Client)?;
        Ok(Fleet {
            node: Arc::from(settings.node.as_str()),
            settings,
            link,
            incoming,
        })
    }

    /// The settings in force.
    pub fn settings(&self) -> &FleetSettings {
        &self.settings
    }

    /// Takes the publishing choices of a reloaded config (`share`,
    /// `share_manual`, `accept_max_prefix`); the connection stays.
    pub fn reconfigure(&mut self, cfg: &FleetConfig) {
        self.settings.share = cfg.share.clone();
        self.settings.share_manual = cfg.share_manual;
        self.settings.max_prefix = (cfg.accept_max_prefix.v4, cfg.accept_max_prefix.v6);
    }

    /// Whether this host publishes `ban`: its own bans from a shared jail (subnet
    /// escalations of it included), manual ones with `share_manual`; never a ban
    /// that came from the fleet.
    fn shares(&self, ban: &Ban) -> bool {
        match ban.origin {
            Origin::Fleet => false,
            Origin::Manual => self.settings.share_manual,
            Origin::Jail | Origin::Subnet => self.settings.share.iter().any(|j| **j == *ban.jail),
        }
    }

    /// Queues the bans among `decisions` that this host shares (unbans at a
    /// deadline are not published: every host expires a ban by itself).
    pub fn publish_bans(&self, decisions: &[Decision]) {
        for d in decisions {
            if let Decision::Ban(b) = d
                && self.shares(b)
            {
                self.link.publish(Event::Ban(BanEvent::of(b, &self.node)));
            }
        }
    }

    /// Tells the fleet about a ban lifted here by hand: a shared ban is lifted
    /// wherever it went; with `everywhere` (`unban --fleet`) every host lifts
    /// whatever ban it has on `target`.
    pub fn publish_unban(&self, target: IpNet, lifted: Option<&Ban>, everywhere: bool) {
        if everywhere || lifted.is_some_and(|b| self.shares(b)) {
            self.link.publish(Event::Unban {
                target,
                node: self.node.clone(),
                all: everywhere,
            });
        }
    }

    /// Waits for the next batch from the reader; pending forever when the link
    /// has no reader (`accept = false`).
    pub async fn next(&mut self) -> Option<Incoming> {
        self.incoming.recv().await
    }

    /// Applies a reader batch to the engine: remote bans and unbans go to `out`;
    /// returns the position (the stream ID reached) to commit with them.
    pub fn apply(
        &mut self,
        engine: &mut Engine,
        batch: Incoming,
        now: SystemTime,
        out: &mut Vec<Decision>,
    ) -> SourcePosition {
        let mut in_snapshot = BTreeSet::new();
        let (mut applied, mut refused_allowlist, mut refused_prefix, mut lifted) = (0, 0, 0, 0);
        for event in batch.events {
            match event {
                Event::Ban(b) => {
                    if batch.snapshot {
                        in_snapshot.insert(b.target.trunc());
                    }
                    match engine.fleet_ban(&b.remote(), self.settings.max_prefix, now) {
                        Ok(Some(d)) => {
                            applied += 1;
                            out.push(d);
                        }
                        Ok(None) => {}
                        Err(why) => {
                            match why {
                                FleetRefusal::Allowlisted => refused_allowlist += 1,
                                FleetRefusal::TooWide => refused_prefix += 1,
                            }
                            tracing::warn!(target = %crate::addr::display_target(&b.target),
                                node = %b.node, "fleet: remote ban refused: {why}");
                        }
                    }
                }
                Event::Unban { target, node, all } => {
                    let from = if all { None } else { Some(&*node) };
                    if let Some(d) = engine.fleet_unban(target, from) {
                        lifted += 1;
                        out.push(d);
                    }
                }
            }
        }
        if batch.snapshot {
            // Bans lifted while this host was not following (and trimmed from
            // the stream since) are absent from the snapshot.
            let gone: Vec<IpNet> = engine
                .bans()
                .filter(|b| b.origin == Origin::Fleet && !in_snapshot.contains(&b.target))
                .map(|b| b.target)
                .collect();
            for t in gone {
                if let Some(d) = engine.fleet_unban(t, None) {
                    lifted += 1;
                    out.push(d);
                }
            }
        }
        self.link.count(|st| {
            st.applied += applied;
            st.refused_allowlist += refused_allowlist;
            st.refused_prefix += refused_prefix;
            st.lifted += lifted;
        });
        SourcePosition::Fleet {
            stream: self.settings.stream.clone(),
            id: batch.last_id,
        }
    }

    /// A handle the metrics read the link's status through.
    pub fn probe(&self) -> FleetProbe {
        FleetProbe {
            node: self.settings.node.clone(),
            url: self.settings.url.clone(),
            stream: self.settings.stream.clone(),
            link: self.link.probe(),
        }
    }

    /// The status `fleet status` shows.
    pub fn status(&self, engine: &Engine) -> FleetStatus {
        let mut status = self.probe().status();
        status.bans_active = engine
            .bans_per_jail()
            .find(|(j, _)| *j == crate::engine::FLEET_JAIL)
            .map_or(0, |(_, n)| n);
        status
    }

    /// Stops the link, giving queued events a moment to go out.
    pub async fn stop(self) {
        self.link.stop(Duration::from_secs(2)).await;
    }
}

/// The fleet link's status, readable outside the engine task (the metrics
/// endpoint reads it on each scrape); everything but the engine's ban count.
#[derive(Debug, Clone)]
pub struct FleetProbe {
    node: String,
    url: String,
    stream: String,
    link: LinkProbe,
}

impl FleetProbe {
    /// The status now; `bans_active` is 0 (the engine task knows it).
    pub fn status(&self) -> FleetStatus {
        let st = self.link.state();
        let now = link_now_ms();
        FleetStatus {
            node: self.node.clone(),
            redis: self.url.clone(),
            stream: self.stream.clone(),
            connected: st.connected,
            publishing: st.publishing,
            last_error: st.last_error,
            last_id: st.last_id,
            lag_ms: st.lag_ms,
            published: st.published,
            queued: self.link.queued(),
            dropped: st.dropped,
            publish_errors: st.publish_errors,
            received: st.received,
            applied: st.applied,
            refused_allowlist: st.refused_allowlist,
            refused_prefix: st.refused_prefix,
            lifted: st.lifted,
            resyncs: st.resyncs,
            reconnects: st.reconnects,
            bans_active: 0,
            peers: st
                .peers
                .into_iter()
                .map(|(node, seen)| Peer {
                    node,
                    seen_secs_ago: now.saturating_sub(seen) / 1000,
                })
                .collect(),
        }
    }
}

fn link_now_ms() -> u64 {
    SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
