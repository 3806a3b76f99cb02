//! The fleet link's I/O: two tokio tasks talking to Redis through the `redis`
//! crate, so the engine never waits for the network.
//!
//! - The **publisher** takes events from a bounded queue (the engine task only
//!   `try_send`s: a full queue drops and counts, it never waits) and writes each
//!   batch in one `MULTI`: `XADD MAXLEN ~` to the stream, and the snapshot (a
//!   sorted set of active targets by deadline, a hash of their details). A batch
//!   that fails is retried with a backoff until Redis is back; the connection
//!   manager reconnects underneath.
//! - The **reader** follows the stream with blocking `XREAD` (push, not polling)
//!   on its own connection. Without a saved position, or when the entry at it
//!   was trimmed (`XINFO STREAM`: the first entry left is past it), it
//!   loads the snapshot together with the stream's last ID in one `MULTI`, then
//!   reads on from that ID: nothing between the two is missed, and what is seen
//!   twice is applied idempotently. Each batch goes to the engine task with the
//!   ID it reaches, which the engine task commits with the bans it caused.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::streams::{StreamMaxlen, StreamReadReply};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::config::FleetSettings;
use super::event::{BanEvent, Event};

/// How long one `XREAD` blocks before it is issued again.
const BLOCK: Duration = Duration::from_secs(5);
/// Most entries one `XREAD` returns.
const READ_COUNT: usize = 1000;
/// Most events one publishing `MULTI` carries.
const PUBLISH_BATCH: usize = 256;
/// First and longest wait between reconnection attempts.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Connecting and answering, except a blocking `XREAD`.
const TIMEOUT: Duration = Duration::from_secs(3);
/// How often expired snapshot entries are removed.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// What the reader hands the engine task.
#[derive(Debug)]
pub struct Incoming {
    /// Events from other nodes, in stream order (own events left out).
    pub events: Vec<Event>,
    /// The stream ID these events reach: saved with what they cause.
    pub last_id: String,
    /// The events are the whole snapshot: fleet bans not in it are gone.
    pub snapshot: bool,
}

/// Counters and state the tasks (and the engine task, for what it applies)
/// update, read by `fleet status` and the metrics.
#[derive(Debug, Clone, Default)]
pub struct LinkState {
    /// Whether the reader's connection is up and following the stream.
    pub connected: bool,
    /// Whether the last publish worked (or nothing was published yet).
    pub publishing: bool,
    /// The last stream ID read.
    pub last_id: Option<String>,
    /// The last connection or command error.
    pub last_error: Option<String>,
    /// Events written to Redis.
    pub published: u64,
    /// Events dropped because the outgoing queue was full.
    pub dropped: u64,
    /// Events taken from the queue and not yet acknowledged by Redis (the batch
    /// being sent or retried).
    pub in_flight: usize,
    /// Failed publishing attempts (each retried).
    pub publish_errors: u64,
    /// Events read from other nodes.
    pub received: u64,
    /// Snapshot loads (start without position, trimmed stream).
    pub resyncs: u64,
    /// Reader reconnections.
    pub reconnects: u64,
    /// Milliseconds between the last received entry's stream ID and its arrival.
    pub lag_ms: Option<u64>,
    /// Nodes seen on the stream, with when (ms since the epoch) they were last seen.
    pub peers: BTreeMap<String, u64>,
    /// Remote bans enforced here.
    pub applied: u64,
    /// Remote bans refused: they overlap the allowlist or own addresses.
    pub refused_allowlist: u64,
    /// Remote bans refused: prefix wider than `accept_max_prefix`.
    pub refused_prefix: u64,
    /// Remote bans lifted here by the fleet (unbans, snapshot resyncs).
    pub lifted: u64,
}

type Shared = Arc<Mutex<LinkState>>;

/// Updates the shared state.
pub(super) fn update(state: &Shared, f: impl FnOnce(&mut LinkState)) {
    f(&mut state.lock().unwrap_or_else(PoisonError::into_inner));
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A stream ID as (milliseconds, sequence).
pub fn parse_id(id: &str) -> Option<(u64, u64)> {
    let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
    Some((ms.parse().ok()?, seq.parse().ok()?))
}

/// The running link: its queue, its state and its tasks.
pub struct Link {
    out: mpsc::Sender<Event>,
    state: Shared,
    /// `None` once [`Link::stop`] took it.
    publisher: Option<JoinHandle<()>>,
    reader: Option<JoinHandle<()>>,
}

impl Link {
    /// Starts both tasks. `cursor` is the last stream ID saved in the store;
    /// incoming events go to `incoming` (no reader when `accept` is off).
    pub fn start(
        settings: &FleetSettings,
        cursor: Option<String>,
        incoming: mpsc::Sender<Incoming>,
    ) -> Result<Link, redis::RedisError> {
        let client = settings.client()?;
        let state: Shared = Arc::new(Mutex::new(LinkState {
            publishing: true,
            last_id: cursor.clone(),
            ..LinkState::default()
        }));
        let (out, rx) = mpsc::channel(settings.queue);
        let manager = ConnectionManager::new_lazy_with_config(
            client.clone(),
            ConnectionManagerConfig::new()
                .set_min_delay(BACKOFF_MIN)
                .set_max_delay(BACKOFF_MAX)
                .set_connection_timeout(Some(TIMEOUT))
                .set_response_timeout(Some(TIMEOUT)),
        )?;
        let publisher = tokio::spawn(publish_loop(settings.clone(), manager, rx, state.clone()));
        let reader = settings.accept.then(|| {
            tokio::spawn(read_loop(
                settings.clone(),
                client,
                cursor,
                incoming,
                state.clone(),
            ))
        });
        tracing::info!(url = %settings.url, stream = %settings.stream, node = %settings.node,
            accept = settings.accept, "fleet link started");
        Ok(Link {
            out,
            state,
            publisher: Some(publisher),
            reader,
        })
    }

    /// Queues `event` for publishing without waiting; a full queue drops it
    /// (counted). Returns whether it was queued.
    pub fn publish(&self, event: Event) -> bool {
        match self.out.try_send(event) {
            Ok(()) => true,
            Err(e) => {
                update(&self.state, |s| s.dropped += 1);
                tracing::warn!(target = %e.into_inner().target(),
                    "fleet: outgoing queue full, event dropped (Redis unreachable?)");
                false
            }
        }
    }

    /// A handle that reads the state and the queue without holding the link
    /// open (the metrics read it on each scrape).
    pub fn probe(&self) -> LinkProbe {
        LinkProbe {
            out: self.out.downgrade(),
            state: self.state.clone(),
        }
    }

    /// Counts what the engine task did with a batch.
    pub fn count(&self, f: impl FnOnce(&mut LinkState)) {
        update(&self.state, f);
    }

    /// Stops reading, and gives the publisher up to `grace` to send what is
    /// queued (a clean stop publishes the last bans when Redis is up).
    pub async fn stop(mut self, grace: Duration) {
        if let Some(r) = self.reader.take() {
            r.abort();
        }
        let Some(publisher) = self.publisher.take() else {
            return;
        };
        // The publisher ends once the queue is empty and every sender is gone.
        let (closed, _) = mpsc::channel(1);
        drop(std::mem::replace(&mut self.out, closed));
        let abort = publisher.abort_handle();
        if tokio::time::timeout(grace, publisher).await.is_err() {
            abort.abort();
            tracing::warn!("fleet: stopped with events still queued for publishing");
        }
    }
}

/// Reads a link's state from elsewhere (see [`Link::probe`]).
#[derive(Debug, Clone)]
pub struct LinkProbe {
    out: mpsc::WeakSender<Event>,
    state: Shared,
}

impl LinkProbe {
    /// The state now.
    pub fn state(&self) -> LinkState {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Events waiting to be published: queued, and the batch being retried.
    pub fn queued(&self) -> usize {
        let waiting = self
            .out
            .upgrade()
            .map_or(0, |s| s.max_capacity() - s.capacity());
        waiting + self.state().in_flight
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        if let Some(p) = &self.publisher {
            p.abort();
        }
        if let Some(r) = &self.reader {
            r.abort();
        }
    }
}

async fn publish_loop(
    s: FleetSettings,
    mut conn: ConnectionManager,
    mut rx: mpsc::Receiver<Event>,
    state: Shared,
) {
    let active = s.active_key();
    let details = s.details_key();
    let mut batch = Vec::with_capacity(PUBLISH_BATCH);
    let mut next_prune = tokio::time::Instant::now();
    while rx.recv_many(&mut batch, PUBLISH_BATCH).await > 0 {
        update(&state, |st| st.in_flight = batch.len());
        let mut delay = BACKOFF_MIN;
        loop {
            let mut p = redis::pipe();
            p.atomic();
            for e in &batch {
                p.xadd_maxlen(
                    &s.stream,
                    StreamMaxlen::Approx(s.maxlen as usize),
                    "*",
                    &e.fields(),
                )
                .ignore();
                let target = e.target().to_string();
                match e {
                    Event::Ban(b) => {
                        let json = serde_json::to_string(b).unwrap_or_default();
                        p.zadd(&active, &target, b.score()).ignore();
                        p.hset(&details, &target, json).ignore();
                    }
                    Event::Unban { .. } => {
                        p.zrem(&active, &target).ignore();
                        p.hdel(&details, &target).ignore();
                    }
                }
            }
            match p.query_async::<()>(&mut conn).await {
                Ok(()) => {
                    update(&state, |st| {
                        st.published += batch.len() as u64;
                        st.in_flight = 0;
                        st.publishing = true;
                    });
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, events = batch.len(), retry_ms = delay.as_millis() as u64,
                        "fleet: cannot publish; retrying");
                    update(&state, |st| {
                        st.publish_errors += 1;
                        st.publishing = false;
                        st.last_error = Some(format!("publish: {e}"));
                    });
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(BACKOFF_MAX);
                }
            }
        }
        batch.clear();
        if tokio::time::Instant::now() >= next_prune {
            if let Err(e) = prune(&mut conn, &active, &details).await {
                tracing::debug!(error = %e, "fleet: cannot prune the snapshot");
            }
            next_prune = tokio::time::Instant::now() + PRUNE_EVERY;
        }
    }
}

/// Removes expired bans from the snapshot.
async fn prune(
    conn: &mut ConnectionManager,
    active: &str,
    details: &str,
) -> redis::RedisResult<()> {
    let now = now_ms();
    let gone: Vec<String> = conn.zrangebyscore(active, "-inf", now).await?;
    if gone.is_empty() {
        return Ok(());
    }
    let mut p = redis::pipe();
    p.atomic()
        .hdel(details, &gone)
        .ignore()
        .zrembyscore(active, "-inf", now)
        .ignore();
    p.query_async::<()>(conn).await
}

async fn read_loop(
    s: FleetSettings,
    client: redis::Client,
    mut last: Option<String>,
    tx: mpsc::Sender<Incoming>,
    state: Shared,
) {
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(TIMEOUT))
        .set_response_timeout(Some(BLOCK + TIMEOUT));
    let mut delay = BACKOFF_MIN;
    let mut first = true;
    loop {
        let result = match client
            .get_multiplexed_async_connection_with_config(&config)
            .await
        {
            Ok(mut conn) => {
                if !first {
                    update(&state, |st| st.reconnects += 1);
                }
                first = false;
                follow(&s, &mut conn, &mut last, &tx, &state, &mut delay).await
            }
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => return, // the engine task is gone
            Err(e) => {
                tracing::warn!(error = %e, retry_ms = delay.as_millis() as u64,
                    "fleet: connection to Redis lost; reconnecting");
                update(&state, |st| {
                    st.connected = false;
                    st.last_error = Some(format!("read: {e}"));
                });
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(BACKOFF_MAX);
            }
        }
    }
}

/// Whether entries after `id` may have been trimmed away: then reading on from
/// it could skip some, and only the snapshot is complete. `MAXLEN` trims from the
/// oldest end, so once the entry at `id` (one this host read) is gone, whatever
/// followed it up to the first entry left may be gone too. An empty stream
/// whose last ID is past `id` was trimmed past it. Entries removed with `XDEL`
/// count too (`max-deleted-entry-id`).
async fn trimmed_past(
    conn: &mut MultiplexedConnection,
    stream: &str,
    id: &str,
) -> redis::RedisResult<bool> {
    let info: redis::RedisResult<BTreeMap<String, redis::Value>> = redis::cmd("XINFO")
        .arg("STREAM")
        .arg(stream)
        .query_async(conn)
        .await;
    let info = match info {
        Ok(i) => i,
        // No stream yet (or Redis lost it): nothing to miss; new entries have
        // newer IDs than the saved one.
        Err(e) if e.code() == Some("ERR") => return Ok(false),
        Err(e) => return Err(e),
    };
    let id_of = |key: &str| {
        info.get(key)
            .and_then(|v| redis::from_redis_value_ref::<String>(v).ok())
            .and_then(|d| parse_id(&d))
    };
    let Some(mine) = parse_id(id) else {
        return Ok(true);
    };
    let length = info
        .get("length")
        .and_then(|v| redis::from_redis_value_ref::<u64>(v).ok())
        .unwrap_or(0);
    let first = match id_of("recorded-first-entry-id") {
        Some(f) => Some(f),
        // Before Redis 7: the first entry itself.
        None => info
            .get("first-entry")
            .and_then(|v| redis::from_redis_value_ref::<(String, redis::Value)>(v).ok())
            .and_then(|(f, _)| parse_id(&f)),
    };
    let deleted = id_of("max-deleted-entry-id").is_some_and(|d| d > mine);
    let trimmed = if length == 0 {
        id_of("last-generated-id").is_some_and(|last| last > mine)
    } else {
        first.is_some_and(|f| f > mine)
    };
    Ok(deleted || trimmed)
}

/// Loads the snapshot and the stream ID it is consistent with, in one `MULTI`.
async fn load_snapshot(
    s: &FleetSettings,
    conn: &mut MultiplexedConnection,
) -> redis::RedisResult<(String, Vec<Event>)> {
    let now = now_ms();
    let mut p = redis::pipe();
    p.atomic()
        .xrevrange_count(&s.stream, "+", "-", 1)
        .hgetall(s.details_key())
        .zrangebyscore(s.active_key(), format!("({now}"), "+inf");
    let (last, details, active): (
        redis::streams::StreamRangeReply,
        BTreeMap<String, String>,
        Vec<String>,
    ) = p.query_async(conn).await?;
    let id = last
        .ids
        .first()
        .map_or_else(|| "0-0".to_owned(), |e| e.id.clone());
    let mut events = Vec::with_capacity(active.len());
    for target in active {
        let Some(json) = details.get(&target) else {
            continue;
        };
        match serde_json::from_str::<BanEvent>(json) {
            Ok(b) => events.push(Event::Ban(b)),
            Err(e) => {
                tracing::warn!(target = %target, error = %e, "fleet: unreadable snapshot entry skipped")
            }
        }
    }
    Ok((id, events))
}

/// Follows the stream on one connection until it fails (`Err`) or the engine
/// task is gone (`Ok`).
async fn follow(
    s: &FleetSettings,
    conn: &mut MultiplexedConnection,
    last: &mut Option<String>,
    tx: &mpsc::Sender<Incoming>,
    state: &Shared,
    delay: &mut Duration,
) -> redis::RedisResult<()> {
    let mut check = true;
    loop {
        let resync = match (check, last.as_deref()) {
            (_, None) => true,
            (true, Some(id)) => trimmed_past(conn, &s.stream, id).await?,
            (false, Some(_)) => false,
        };
        if resync {
            let (id, events) = load_snapshot(s, conn).await?;
            tracing::info!(bans = events.len(), from = %id,
                saved = last.as_deref().unwrap_or("none"),
                "fleet: loaded the snapshot; following the stream from it");
            let events = events.into_iter().filter(|e| e.node() != s.node).collect();
            update(state, |st| st.resyncs += 1);
            if tx
                .send(Incoming {
                    events,
                    last_id: id.clone(),
                    snapshot: true,
                })
                .await
                .is_err()
            {
                return Ok(());
            }
            *last = Some(id);
        }
        update(state, |st| {
            st.connected = true;
            st.last_id = last.clone();
        });
        *delay = BACKOFF_MIN;
        let from = last.clone().unwrap_or_else(|| "0-0".to_owned());
        let reply: Option<StreamReadReply> = redis::cmd("XREAD")
            .arg("COUNT")
            .arg(READ_COUNT)
            .arg("BLOCK")
            .arg(BLOCK.as_millis() as u64)
            .arg("STREAMS")
            .arg(&s.stream)
            .arg(&from)
            .query_async(conn)
            .await?;
        let entries: Vec<_> = reply
            .into_iter()
            .flat_map(|r| r.keys)
            .flat_map(|k| k.ids)
            .collect();
        // A full batch means this reader is far behind: check that nothing it
        // has not read yet was trimmed.
        check = entries.len() >= READ_COUNT;
        let Some(newest) = entries.last().map(|e| e.id.clone()) else {
            continue;
        };
        let now = now_ms();
        let mut events = Vec::with_capacity(entries.len());
        let mut peers = Vec::new();
        for entry in &entries {
            let text: BTreeMap<&str, String> = entry
                .map
                .iter()
                .filter_map(|(k, v)| {
                    redis::from_redis_value_ref::<String>(v)
                        .ok()
                        .map(|v| (k.as_str(), v))
                })
                .collect();
            match Event::parse(|k| text.get(k).map(String::as_str)) {
                Ok(e) if e.node() == s.node => {}
                Ok(e) => {
                    peers.push(e.node().to_owned());
                    events.push(e);
                }
                Err(e) => tracing::warn!(id = %entry.id, error = %e, "fleet: stream entry skipped"),
            }
        }
        let lag = parse_id(&newest).map(|(ms, _)| now.saturating_sub(ms));
        update(state, |st| {
            st.received += events.len() as u64;
            st.lag_ms = lag;
            st.last_id = Some(newest.clone());
            for p in peers {
                st.peers.insert(p, now);
            }
        });
        if tx
            .send(Incoming {
                events,
                last_id: newest.clone(),
                snapshot: false,
            })
            .await
            .is_err()
        {
            return Ok(());
        }
        *last = Some(newest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_ids_order_by_time_then_sequence() {
        assert_eq!(parse_id("1700000000000-3"), Some((1_700_000_000_000, 3)));
        assert_eq!(parse_id("5"), Some((5, 0)));
        assert!(parse_id("5-0") < parse_id("5-1"));
        assert!(parse_id("5-9") < parse_id("6-0"));
        assert_eq!(parse_id("x-1"), None);
    }
}
