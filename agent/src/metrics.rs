//! Prometheus metrics: the `[metrics]` table, the [`Metrics`] handle the daemon's
//! parts count into, and the HTTP endpoint that serves them ([`server`]).
//!
//! The handle is passed to whoever counts (engine task, commit thread, sources'
//! start); nothing here is global. What the hot paths already count stays where it
//! is counted and is read only when scraped:
//! - lines and bytes per source come from the sources' own counters, which each
//!   source thread publishes once per poll from thread-local tallies (no shared
//!   write per line);
//! - kernel drop counters are read from the backends by the commit thread when
//!   the endpoint is scraped, not kept up to date in between.
//!
//! The rest is counted where it happens, at most once per offence or decision:
//! offences per filter and jail, bans per jail and origin, expiries, backend
//! errors, reconcile and store-commit durations, and the lag from reading a line
//! to the engine's decision on it.
//!
//! The fleet link's figures (connection, lag, events published, received and
//! refused, the publishing queue, peers) are read from the link's shared state
//! on each scrape, like the sources' counters.
//!
//! Label values come from the config (source, filter, jail and backend names) or
//! from small fixed sets (origin, operation); banned addresses appear only in the
//! top-N drop counters, whose N is bounded by [`MAX_TOP`].

pub mod server;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};
use serde::Deserialize;

use crate::config::Config;
use crate::config::locate::KeyPath;
use crate::control::protocol::DropEntry;
use crate::engine::Decision;
use crate::fleet::FleetProbe;
use crate::source::SourceCounters;

/// Default `metrics.top`.
pub const DEFAULT_TOP: usize = 10;
/// Largest `metrics.top`: each listed address is one label value per backend.
pub const MAX_TOP: usize = 100;

/// `[metrics]`: the endpoint is off unless `listen` is set.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Address and port of the HTTP endpoint (`/metrics`). Default none: off.
    pub listen: Option<SocketAddr>,
    /// How many banned addresses get their own drop counters, per backend (the
    /// ones that dropped the most packets). Default 10, at most 100.
    pub top: usize,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            listen: None,
            top: DEFAULT_TOP,
        }
    }
}

impl MetricsConfig {
    /// The table's problems, each with its key under `at`.
    pub fn check(&self, at: &KeyPath) -> Vec<(KeyPath, String)> {
        let mut out = Vec::new();
        if self.top > MAX_TOP {
            out.push((
                at.key("top"),
                format!(
                    "at most {MAX_TOP} (each address is a label value per backend), got {}",
                    self.top
                ),
            ));
        }
        if let Some(addr) = self.listen
            && addr.port() == 0
        {
            out.push((
                at.key("listen"),
                "needs a fixed port for Prometheus to scrape (the usual one is 9641)".into(),
            ));
        }
        out
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FilterJail {
    filter: String,
    jail: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JailOrigin {
    jail: String,
    origin: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JailLabel {
    jail: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BackendLabel {
    backend: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BackendAction {
    backend: &'static str,
    action: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BackendOp {
    backend: &'static str,
    operation: &'static str,
}

fn reconcile_histogram() -> Histogram {
    // 1 ms .. about 4 minutes (a million bans on a slow host).
    Histogram::new(exponential_buckets(0.001, 4.0, 10))
}

/// The agent's metrics. Cloning is cheap: every clone counts into the same set.
#[derive(Clone, Debug)]
pub struct Metrics {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    registry: Registry,
    offences: Family<FilterJail, Counter>,
    bans: Family<JailOrigin, Counter>,
    unbans: Family<JailLabel, Counter>,
    expiries: Family<JailLabel, Counter>,
    bans_active: Family<JailLabel, Gauge>,
    backend_bans_active: Family<BackendLabel, Gauge>,
    backend_decisions: Family<BackendAction, Counter>,
    backend_errors: Family<BackendOp, Counter>,
    reconcile: Family<BackendLabel, Histogram, fn() -> Histogram>,
    decision_lag: Histogram,
    store_commit: Histogram,
    store_errors: Counter,
    live: Arc<Live>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new(DEFAULT_TOP)
    }
}

impl Metrics {
    /// A fresh set; `top` is `metrics.top` (clamped to [`MAX_TOP`]).
    pub fn new(top: usize) -> Metrics {
        let mut registry = Registry::with_prefix("log2drop");
        let offences = Family::<FilterJail, Counter>::default();
        registry.register(
            "offences",
            "Offences the engine received, by the filter that matched and each jail it feeds",
            offences.clone(),
        );
        let bans = Family::<JailOrigin, Counter>::default();
        registry.register(
            "bans",
            "Ban decisions recorded (new bans and extensions), by jail and origin (jail, manual, subnet, fleet)",
            bans.clone(),
        );
        let unbans = Family::<JailLabel, Counter>::default();
        registry.register(
            "unbans",
            "Bans lifted (expired, by hand, or by an allowlist change), by jail",
            unbans.clone(),
        );
        let expiries = Family::<JailLabel, Counter>::default();
        registry.register(
            "expiries",
            "Bans that ended at their deadline, by jail",
            expiries.clone(),
        );
        let bans_active = Family::<JailLabel, Gauge>::default();
        registry.register("bans_active", "Bans in force, by jail", bans_active.clone());
        let backend_bans_active = Family::<BackendLabel, Gauge>::default();
        registry.register(
            "backend_bans_active",
            "Bans in force that a backend enforces (a jail's `backends`, all when empty)",
            backend_bans_active.clone(),
        );
        let backend_decisions = Family::<BackendAction, Counter>::default();
        registry.register(
            "backend_decisions",
            "Bans and unbans handed to a backend, by backend and action",
            backend_decisions.clone(),
        );
        let backend_errors = Family::<BackendOp, Counter>::default();
        registry.register(
            "backend_errors",
            "Backend operations that failed, by backend and operation",
            backend_errors.clone(),
        );
        let reconcile = Family::<BackendLabel, Histogram, fn() -> Histogram>::new_with_constructor(
            reconcile_histogram,
        );
        registry.register_with_unit(
            "backend_reconcile_duration",
            "Time a backend took to reconcile the kernel with the active bans (start, reload)",
            Unit::Seconds,
            reconcile.clone(),
        );
        // 0.5 ms .. about 12 s: a line's offence normally reaches the engine in
        // well under a millisecond; a backed-up engine shows in the upper buckets.
        let decision_lag = Histogram::new(exponential_buckets(0.0005, 2.5, 12));
        registry.register_with_unit(
            "decision_lag",
            "Time from reading a line that matched to the engine's decision on its offence",
            Unit::Seconds,
            decision_lag.clone(),
        );
        // 0.1 ms .. about 6 s (one fsync'd transaction per group of batches).
        let store_commit = Histogram::new(exponential_buckets(0.0001, 3.0, 11));
        registry.register_with_unit(
            "store_commit_duration",
            "Time one state-database transaction (decisions and positions) took, sync included",
            Unit::Seconds,
            store_commit.clone(),
        );
        let store_errors = Counter::default();
        registry.register(
            "store_errors",
            "State-database transactions that failed",
            store_errors.clone(),
        );
        let live = Arc::new(Live {
            top: top.min(MAX_TOP),
            sources: Mutex::default(),
            drops: Mutex::default(),
            fleet: Mutex::default(),
        });
        registry.register_collector(Box::new(live.clone()));
        Metrics {
            inner: Arc::new(Inner {
                registry,
                offences,
                bans,
                unbans,
                expiries,
                bans_active,
                backend_bans_active,
                backend_decisions,
                backend_errors,
                reconcile,
                decision_lag,
                store_commit,
                store_errors,
                live,
            }),
        }
    }

    /// The text exposition (OpenMetrics), ending in `# EOF`.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail; the encoders only pass fmt errors on.
        if prometheus_client::encoding::text::encode(&mut out, &self.inner.registry).is_err() {
            tracing::warn!("cannot encode the metrics");
        }
        out
    }

    /// Starts reading a source's counters (at its start, and at each restart by a
    /// reload: the counts of its earlier runs are kept, so the counters never go
    /// back).
    pub fn add_source(&self, name: &str, counters: Arc<SourceCounters>) {
        lock(&self.inner.live.sources).add(name, counters);
    }

    /// Counters for the offences of each filter of `config`, one per jail it
    /// feeds, for the engine task to keep (one atomic add per jail per offence).
    pub fn offence_counters(&self, config: &Config) -> OffenceCounters {
        let mut by_filter: HashMap<Arc<str>, Vec<Counter>> = HashMap::new();
        for (jail, j) in &config.jails {
            for filter in &j.filters {
                let counter = self
                    .inner
                    .offences
                    .get_or_create(&FilterJail {
                        filter: filter.clone(),
                        jail: jail.clone(),
                    })
                    .clone();
                by_filter
                    .entry(Arc::from(filter.as_str()))
                    .or_default()
                    .push(counter);
            }
        }
        OffenceCounters {
            by_filter,
            lag: self.inner.decision_lag.clone(),
        }
    }

    /// Counts decisions recorded and enforced by the commit thread.
    pub fn decided(&self, decisions: &[Decision]) {
        for d in decisions {
            match d {
                Decision::Ban(b) => self
                    .inner
                    .bans
                    .get_or_create(&JailOrigin {
                        jail: b.jail.to_string(),
                        origin: b.origin.as_str(),
                    })
                    .inc(),
                Decision::Unban(b) => self
                    .inner
                    .unbans
                    .get_or_create(&JailLabel {
                        jail: b.jail.to_string(),
                    })
                    .inc(),
            };
        }
    }

    /// Counts bans that ended at their deadline.
    pub fn expired<'a>(&self, jails: impl IntoIterator<Item = &'a str>) {
        for jail in jails {
            self.inner
                .expiries
                .get_or_create(&JailLabel {
                    jail: jail.to_owned(),
                })
                .inc();
        }
    }

    /// Sets the active-ban gauges: `per_jail` as the engine counts them (jails
    /// in `jails` without a ban read 0), and per backend through `backends_of`
    /// (the backends a jail's bans go to).
    pub fn set_active<'a>(
        &self,
        per_jail: impl IntoIterator<Item = (&'a str, usize)>,
        jails: impl IntoIterator<Item = &'a str>,
        backends_of: impl Fn(&str) -> Vec<&'static str>,
        all_backends: &[&'static str],
    ) {
        let mut by_jail: BTreeMap<&str, i64> = jails.into_iter().map(|j| (j, 0)).collect();
        let mut by_backend: BTreeMap<&'static str, i64> =
            all_backends.iter().map(|b| (*b, 0)).collect();
        for (jail, n) in per_jail {
            let n = i64::try_from(n).unwrap_or(i64::MAX);
            for b in backends_of(jail) {
                *by_backend.entry(b).or_default() += n;
            }
            *by_jail.entry(jail).or_default() += n;
        }
        // Jails gone from the config (a reload) lose their gauge.
        self.inner.bans_active.clear();
        for (jail, n) in by_jail {
            self.inner
                .bans_active
                .get_or_create(&JailLabel {
                    jail: jail.to_owned(),
                })
                .set(n);
        }
        self.inner.backend_bans_active.clear();
        for (backend, n) in by_backend {
            self.inner
                .backend_bans_active
                .get_or_create(&BackendLabel { backend })
                .set(n);
        }
    }

    /// Counts decisions one backend was handed.
    pub fn backend_applied(&self, backend: &'static str, bans: u64, unbans: u64) {
        for (action, n) in [("ban", bans), ("unban", unbans)] {
            if n > 0 {
                self.inner
                    .backend_decisions
                    .get_or_create(&BackendAction { backend, action })
                    .inc_by(n);
            }
        }
    }

    /// Counts a failed backend operation (`apply`, `gc`, `read counters`, ...).
    pub fn backend_error(&self, backend: &'static str, operation: &'static str) {
        self.inner
            .backend_errors
            .get_or_create(&BackendOp { backend, operation })
            .inc();
    }

    /// Records how long a backend's reconcile took.
    pub fn reconciled(&self, backend: &'static str, took: Duration) {
        self.inner
            .reconcile
            .get_or_create(&BackendLabel { backend })
            .observe(took.as_secs_f64());
    }

    /// Records one store transaction.
    pub fn store_commit(&self, took: Duration, ok: bool) {
        self.inner.store_commit.observe(took.as_secs_f64());
        if !ok {
            self.inner.store_errors.inc();
        }
    }

    /// Reads the fleet link's figures through `probe` on each scrape from now on.
    pub fn watch_fleet(&self, probe: FleetProbe) {
        *lock(&self.inner.live.fleet) = Some(probe);
    }

    /// Replaces the kernel drop counters with what the backends report now.
    pub fn set_drops(&self, entries: &[DropEntry]) {
        *lock(&self.inner.live.drops) = Drops::from_entries(entries, self.inner.live.top);
    }
}

/// The engine task's counters: offences per filter and jail, and the lag from
/// reading a line to the decision on its offence.
#[derive(Debug)]
pub struct OffenceCounters {
    by_filter: HashMap<Arc<str>, Vec<Counter>>,
    lag: Histogram,
}

impl OffenceCounters {
    /// Counts one offence of `filter`, read at `read_at`, decided at `now`.
    pub fn offence(&self, filter: &str, read: std::time::SystemTime, now: std::time::SystemTime) {
        if let Some(list) = self.by_filter.get(filter) {
            for c in list {
                c.inc();
            }
        }
        self.lag
            .observe(now.duration_since(read).unwrap_or_default().as_secs_f64());
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What is read only when scraped: sources' counters and the kernel's drops.
#[derive(Debug)]
struct Live {
    top: usize,
    sources: Mutex<SourceTally>,
    drops: Mutex<Drops>,
    fleet: Mutex<Option<FleetProbe>>,
}

/// Per source name: the counters of its running thread, and what the threads
/// before it (restarted by a reload) had counted.
#[derive(Debug, Default)]
struct SourceTally(BTreeMap<String, SourceEntry>);

#[derive(Debug, Default)]
struct SourceEntry {
    retired: [u64; 3],
    running: Vec<Arc<SourceCounters>>,
}

fn read(c: &SourceCounters) -> [u64; 3] {
    use std::sync::atomic::Ordering::Relaxed;
    [
        c.lines.load(Relaxed),
        c.bytes.load(Relaxed),
        c.long_lines.load(Relaxed),
    ]
}

impl SourceTally {
    fn add(&mut self, name: &str, counters: Arc<SourceCounters>) {
        let entry = self.0.entry(name.to_owned()).or_default();
        // Threads that ended (only this tally still holds their counters) are
        // folded into the retired sums, so the list stays as long as the threads.
        let (done, running): (Vec<_>, Vec<_>) = std::mem::take(&mut entry.running)
            .into_iter()
            .partition(|c| Arc::strong_count(c) == 1);
        for c in done {
            for (sum, v) in entry.retired.iter_mut().zip(read(&c)) {
                *sum += v;
            }
        }
        entry.running = running;
        entry.running.push(counters);
    }

    fn totals(&self) -> Vec<(&str, [u64; 3])> {
        self.0
            .iter()
            .map(|(name, e)| {
                let mut sum = e.retired;
                for c in &e.running {
                    for (s, v) in sum.iter_mut().zip(read(c)) {
                        *s += v;
                    }
                }
                (name.as_str(), sum)
            })
            .collect()
    }
}

/// The kernel's drop counters as last read: totals per backend, and the top
/// addresses per backend by packets.
#[derive(Debug, Default)]
struct Drops {
    totals: Vec<(String, u64, u64)>,
    top: Vec<(String, String, u64, u64)>,
}

impl Drops {
    fn from_entries(entries: &[DropEntry], top: usize) -> Drops {
        let mut totals: BTreeMap<&str, (u64, u64, bool)> = BTreeMap::new();
        let mut per_backend: BTreeMap<&str, Vec<&DropEntry>> = BTreeMap::new();
        for e in entries {
            let t = totals.entry(&e.backend).or_default();
            if e.address == DropEntry::ALL_BANS {
                // A backend that counts only in total: that is its total.
                *t = (e.packets, e.bytes, true);
            } else {
                if !t.2 {
                    t.0 += e.packets;
                    t.1 += e.bytes;
                }
                per_backend.entry(&e.backend).or_default().push(e);
            }
        }
        let mut out = Drops {
            totals: totals
                .into_iter()
                .map(|(b, (p, by, _))| (b.to_owned(), p, by))
                .collect(),
            top: Vec::new(),
        };
        for (backend, mut list) in per_backend {
            list.sort_by(|a, b| b.packets.cmp(&a.packets).then(a.address.cmp(&b.address)));
            out.top.extend(
                list.into_iter()
                    .filter(|e| e.packets > 0)
                    .take(top)
                    .map(|e| (backend.to_owned(), e.address.clone(), e.packets, e.bytes)),
            );
        }
        out
    }
}

impl Collector for Live {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let tally = lock(&self.sources);
        let sources = tally.totals();
        let names = ["lines", "bytes", "long_lines"];
        let help = [
            "Lines read, by source (cut lines included)",
            "Bytes of the lines read, by source (line ends not counted)",
            "Lines cut at the source's max_line_bytes and never matched, by source",
        ];
        for (i, (name, help)) in names.iter().zip(help).enumerate() {
            let counter = ConstCounter::new(0u64);
            let mut family = encoder.encode_descriptor(name, help, None, counter.metric_type())?;
            for (source, values) in &sources {
                let labels = [("source", *source)];
                ConstCounter::new(values[i]).encode(family.encode_family(&labels)?)?;
            }
        }
        let drops = lock(&self.drops);
        let totals = [
            (
                "dropped_packets",
                "Packets the kernel dropped from banned addresses, by backend",
            ),
            (
                "dropped_bytes",
                "Bytes of the packets dropped from banned addresses, by backend",
            ),
        ];
        for (i, (name, help)) in totals.into_iter().enumerate() {
            let counter = ConstCounter::new(0u64);
            let mut family = encoder.encode_descriptor(name, help, None, counter.metric_type())?;
            for (backend, packets, bytes) in &drops.totals {
                let v = if i == 0 { *packets } else { *bytes };
                ConstCounter::new(v)
                    .encode(family.encode_family(&[("backend", backend.as_str())])?)?;
            }
        }
        let top = [
            (
                "top_dropped_packets",
                "Packets dropped from each of the metrics.top banned addresses that dropped the most, by backend",
            ),
            (
                "top_dropped_bytes",
                "Bytes dropped from each of the metrics.top banned addresses that dropped the most, by backend",
            ),
        ];
        for (i, (name, help)) in top.into_iter().enumerate() {
            let counter = ConstCounter::new(0u64);
            let mut family = encoder.encode_descriptor(name, help, None, counter.metric_type())?;
            for (backend, address, packets, bytes) in &drops.top {
                let v = if i == 0 { *packets } else { *bytes };
                let labels = [("backend", backend.as_str()), ("address", address.as_str())];
                ConstCounter::new(v).encode(family.encode_family(&labels)?)?;
            }
        }
        let fleet = lock(&self.fleet).clone();
        if let Some(probe) = fleet {
            encode_fleet(&probe.status(), &mut encoder)?;
        }
        Ok(())
    }
}

/// The fleet link's metrics (see docs/fleet.md). No per-peer labels: a fleet
/// may have thousands of hosts.
fn encode_fleet(
    st: &crate::fleet::FleetStatus,
    encoder: &mut DescriptorEncoder,
) -> Result<(), std::fmt::Error> {
    use prometheus_client::metrics::gauge::ConstGauge;
    let gauge = |e: &mut DescriptorEncoder, name: &str, help: &str, v: i64| {
        ConstGauge::new(v).encode(e.encode_descriptor(name, help, None, MetricType::Gauge)?)
    };
    let seconds = |e: &mut DescriptorEncoder, name: &str, help: &str, ms: Option<u64>| {
        let Some(ms) = ms else {
            return Ok(());
        };
        ConstGauge::new(ms as f64 / 1000.0).encode(e.encode_descriptor(
            name,
            help,
            Some(&Unit::Seconds),
            MetricType::Gauge,
        )?)
    };
    let counter = |e: &mut DescriptorEncoder, name: &str, help: &str, v: u64| {
        ConstCounter::new(v).encode(e.encode_descriptor(name, help, None, MetricType::Counter)?)
    };
    let flag = |b: bool| i64::from(b);
    gauge(
        encoder,
        "fleet_connected",
        "1 while the fleet reader follows the Redis stream, 0 while it is disconnected",
        flag(st.connected),
    )?;
    gauge(
        encoder,
        "fleet_publishing",
        "1 while publishing to Redis works (or nothing failed yet), 0 while it fails and retries",
        flag(st.publishing),
    )?;
    seconds(
        encoder,
        "fleet_lag",
        "Time from the last stream entry's ID (Redis's clock) to its arrival here; includes clock skew",
        st.lag_ms,
    )?;
    let id_age = st
        .last_id
        .as_deref()
        .and_then(crate::fleet::link::parse_id)
        .map(|(ms, _)| now_ms().saturating_sub(ms));
    seconds(
        encoder,
        "fleet_last_id_age",
        "Age of the last stream entry read (by its ID); grows while the fleet publishes nothing or the reader is stuck",
        id_age,
    )?;
    counter(
        encoder,
        "fleet_published",
        "Events (bans, unbans) this host wrote to the fleet stream",
        st.published,
    )?;
    counter(
        encoder,
        "fleet_publish_errors",
        "Failed attempts to publish a batch (each retried)",
        st.publish_errors,
    )?;
    gauge(
        encoder,
        "fleet_queued",
        "Events waiting to be published (Redis slow or unreachable)",
        i64::try_from(st.queued).unwrap_or(i64::MAX),
    )?;
    counter(
        encoder,
        "fleet_dropped",
        "Events dropped because the publishing queue (fleet.queue) was full",
        st.dropped,
    )?;
    counter(
        encoder,
        "fleet_received",
        "Events read from other hosts",
        st.received,
    )?;
    counter(
        encoder,
        "fleet_applied",
        "Remote bans enforced here",
        st.applied,
    )?;
    let mut family = encoder.encode_descriptor(
        "fleet_refused",
        "Remote bans refused, by reason: allowlist (overlaps the allowlist or own addresses), prefix (wider than accept_max_prefix)",
        None,
        MetricType::Counter,
    )?;
    for (reason, v) in [
        ("allowlist", st.refused_allowlist),
        ("prefix", st.refused_prefix),
    ] {
        ConstCounter::new(v).encode(family.encode_family(&[("reason", reason)])?)?;
    }
    counter(
        encoder,
        "fleet_lifted",
        "Remote bans lifted here by the fleet (unbans, snapshot resyncs)",
        st.lifted,
    )?;
    counter(
        encoder,
        "fleet_resyncs",
        "Snapshot loads (first start, stream trimmed past the last ID read)",
        st.resyncs,
    )?;
    counter(
        encoder,
        "fleet_reconnects",
        "Reconnections of the fleet reader",
        st.reconnects,
    )?;
    gauge(
        encoder,
        "fleet_peers",
        "Other hosts seen on the fleet stream since this agent started",
        i64::try_from(st.peers.len()).unwrap_or(i64::MAX),
    )
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests;
