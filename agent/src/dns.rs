//! Host names where a log has them instead of addresses (`use_dns`), and the
//! reverse-then-forward check that tells a real crawler from an impostor
//! (`verify_rdns`, the `apache-fakegooglebot` filter).
//!
//! Matching never looks anything up: a filter reports the name it found and the
//! daemon hands it to a task that resolves it here, then gives the engine the
//! addresses. A name is weaker evidence than an address (whoever owns it chooses
//! what it resolves to, and an attacker owns the reverse zone of their own
//! addresses), so every lookup is bounded: a timeout, a limit on lookups in
//! flight, and a bounded cache that keeps answers (up to their TTL, at most
//! `max_ttl`) and failures (`negative_ttl`), so a slow or hostile name server
//! can neither stall the agent nor fill its memory.
//!
//! The resolver is hickory-resolver: an async stub resolver whose servers,
//! timeout and attempts are ours to set. `getaddrinfo` (tokio's `lookup_host`)
//! would block a thread per lookup, could not be cancelled at the timeout, knows
//! no reverse lookups and cannot be pointed at another server, which the tests
//! need (they start a DNS server on 127.0.0.1). With no `servers` configured,
//! hickory reads /etc/resolv.conf and /etc/hosts as the system does.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::hash::Hash;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

// tokio's clock: the tests pause and advance it.
use tokio::time::Instant;

use serde::Deserialize;

use crate::addr;
use crate::duration::HumanDuration;

/// `use_dns`: what a host name where `<HOST>` stands means.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UseDns {
    /// Lines with a name do not count (they are counted as ignored).
    No,
    /// Names are resolved and count for their addresses; each name is logged
    /// as a warning (at most once per cached answer). fail2ban's default, and
    /// ours.
    #[default]
    Warn,
    /// Names are resolved and count for their addresses, without a warning.
    Yes,
}

impl UseDns {
    /// The setting as written in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            UseDns::No => "no",
            UseDns::Warn => "warn",
            UseDns::Yes => "yes",
        }
    }

    /// Whether names are resolved at all.
    pub fn resolves(self) -> bool {
        self != UseDns::No
    }
}

/// `[dns]`: how host names are resolved, and the default `use_dns`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DnsConfig {
    /// Default `use_dns` of every jail (a jail may set its own). Default `warn`.
    pub use_dns: UseDns,
    /// Name servers to ask, `ADDRESS` or `ADDRESS:PORT` (`[V6]:PORT`). Default
    /// none: the system's /etc/resolv.conf (and /etc/hosts).
    pub servers: Vec<String>,
    /// How long one lookup may take. Default 3s.
    pub timeout: HumanDuration,
    /// Most answers (and failures) kept. Default 4096.
    pub cache_size: usize,
    /// Longest an answer is kept, whatever its TTL. Default 1h.
    pub max_ttl: HumanDuration,
    /// How long a failure (no such name, no answer in time) is kept. Default 5m.
    pub negative_ttl: HumanDuration,
    /// Most lookups under way at once; names that arrive while the queue behind
    /// them is full are dropped and counted. Default 16.
    pub max_in_flight: usize,
}

/// Default `[dns] cache_size`.
pub(crate) const DEFAULT_CACHE_SIZE: usize = 4096;
/// Largest `[dns] cache_size`: each entry holds a name and its addresses.
pub(crate) const MAX_CACHE_SIZE: usize = 1 << 20;
/// Largest `[dns] max_in_flight`.
pub(crate) const MAX_IN_FLIGHT: usize = 1024;

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            use_dns: UseDns::Warn,
            servers: Vec::new(),
            timeout: HumanDuration::from_secs(3),
            cache_size: DEFAULT_CACHE_SIZE,
            max_ttl: HumanDuration::from_secs(3600),
            negative_ttl: HumanDuration::from_secs(300),
            max_in_flight: 16,
        }
    }
}

impl DnsConfig {
    /// Every problem, with its key under `[dns]`.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        for s in &self.servers {
            if let Err(e) = parse_server(s) {
                out.push(("servers", e));
            }
        }
        if self.timeout.is_zero() {
            out.push(("timeout", "must be longer than 0s".into()));
        }
        if self.cache_size == 0 || self.cache_size > MAX_CACHE_SIZE {
            out.push(("cache_size", format!("must be 1 to {MAX_CACHE_SIZE}")));
        }
        if self.max_in_flight == 0 || self.max_in_flight > MAX_IN_FLIGHT {
            out.push(("max_in_flight", format!("must be 1 to {MAX_IN_FLIGHT}")));
        }
        out
    }

    /// The cache and concurrency bounds.
    pub(crate) fn limits(&self) -> Limits {
        Limits {
            timeout: self.timeout.get(),
            cache_size: self.cache_size,
            max_ttl: self.max_ttl.get(),
            negative_ttl: self.negative_ttl.get(),
            max_in_flight: self.max_in_flight,
        }
    }

    /// The resolver these settings describe, with its cache.
    pub fn build(&self) -> Result<Lookups<Hickory>, DnsError> {
        Ok(Lookups::new(Hickory::new(self)?, self.limits()))
    }
}

/// `ADDRESS`, `ADDRESS:PORT` or `[V6]:PORT`; port 53 by default.
pub(crate) fn parse_server(text: &str) -> Result<SocketAddr, String> {
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, 53));
    }
    text.parse::<SocketAddr>().map_err(|_| {
        format!("{text:?} is not a name server: write ADDRESS, ADDRESS:PORT or [IPV6]:PORT")
    })
}

/// Why the resolver could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    /// A `servers` entry is not an address.
    #[error("dns.servers: {0}")]
    Server(String),
    /// The system's resolver configuration could not be read.
    #[error("cannot read the system's resolver configuration (/etc/resolv.conf): {0}")]
    System(String),
}

/// Why a lookup gave no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    /// The name does not exist or has no address (or the address no PTR).
    #[error("{0}: no such name or no record")]
    NotFound(Box<str>),
    /// No answer within the timeout.
    #[error("{0}: no answer within {1:?}")]
    Timeout(Box<str>, Duration),
    /// The server failed (SERVFAIL, refused, unreachable).
    #[error("{0}: {1}")]
    Failed(Box<str>, Box<str>),
}

/// What a name server said about a name: its addresses, and for how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found<T> {
    /// The records (addresses, or names of a PTR lookup).
    pub records: Vec<T>,
    /// How long the answer may be kept.
    pub ttl: Duration,
}

/// Asks name servers. The real one is [`Hickory`]; unit tests use fakes.
pub trait Backend: Send + Sync + 'static {
    /// The addresses of `name` (A and AAAA), `name` in canonical form.
    fn forward(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Found<IpAddr>, LookupError>> + Send;
    /// The names of `addr` (PTR), canonical form.
    fn reverse(
        &self,
        addr: IpAddr,
    ) -> impl Future<Output = Result<Found<String>, LookupError>> + Send;
}

/// hickory-resolver over tokio.
#[derive(Clone)]
pub struct Hickory {
    resolver: hickory_resolver::TokioResolver,
}

impl std::fmt::Debug for Hickory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hickory").finish_non_exhaustive()
    }
}

impl Hickory {
    /// A resolver asking `cfg.servers`, or the system's servers.
    pub fn new(cfg: &DnsConfig) -> Result<Hickory, DnsError> {
        use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig};
        use hickory_resolver::net::runtime::TokioRuntimeProvider;
        let mut builder = if cfg.servers.is_empty() {
            hickory_resolver::TokioResolver::builder_tokio()
                .map_err(|e| DnsError::System(e.to_string()))?
        } else {
            let mut servers = Vec::new();
            for s in &cfg.servers {
                let at = parse_server(s).map_err(DnsError::Server)?;
                let mut ns = NameServerConfig::udp_and_tcp(at.ip());
                for c in &mut ns.connections {
                    c.port = at.port();
                }
                servers.push(ns);
            }
            let mut b = hickory_resolver::TokioResolver::builder_with_config(
                ResolverConfig::from_name_servers(servers),
                TokioRuntimeProvider::default(),
            );
            // Configured servers are the whole truth (tests rely on it).
            b.options_mut().use_hosts_file = ResolveHosts::Never;
            b
        };
        let opts = builder.options_mut();
        opts.timeout = cfg.timeout.get();
        opts.attempts = 1;
        // Our own cache is in front; hickory's stays small.
        opts.cache_size = 64;
        let resolver = builder
            .build()
            .map_err(|e| DnsError::System(e.to_string()))?;
        Ok(Hickory { resolver })
    }
}

fn lookup_error(what: &str, e: &hickory_resolver::net::NetError) -> LookupError {
    if e.is_no_records_found() {
        LookupError::NotFound(what.into())
    } else {
        LookupError::Failed(what.into(), e.to_string().into())
    }
}

fn ttl_until(until: std::time::Instant) -> Duration {
    until.saturating_duration_since(std::time::Instant::now())
}

impl Backend for Hickory {
    async fn forward(&self, name: &str) -> Result<Found<IpAddr>, LookupError> {
        // Fully qualified: a name from a log is never relative to our domain.
        let fqdn = format!("{name}.");
        match self.resolver.lookup_ip(fqdn.as_str()).await {
            Ok(l) => Ok(Found {
                records: l.iter().collect(),
                ttl: ttl_until(l.valid_until()),
            }),
            Err(e) => Err(lookup_error(name, &e)),
        }
    }

    async fn reverse(&self, addr: IpAddr) -> Result<Found<String>, LookupError> {
        use hickory_resolver::proto::rr::RData;
        let name = hickory_resolver::proto::rr::Name::from(addr);
        match self.resolver.reverse_lookup(name).await {
            Ok(l) => Ok(Found {
                records: l
                    .answers()
                    .iter()
                    .filter_map(|r| match &r.data {
                        RData::PTR(p) => Some(canonical(&p.0.to_ascii())),
                        _ => None,
                    })
                    .collect(),
                ttl: ttl_until(l.valid_until()),
            }),
            Err(e) => Err(lookup_error(&addr.to_string(), &e)),
        }
    }
}

/// A resolver that could not be set up (no /etc/resolv.conf, no name server
/// in it): every lookup fails with the reason, so names count for nothing and
/// `allow_rdns` proves no client genuine, while the agent runs on.
#[derive(Debug, Clone)]
pub struct Unavailable(pub Box<str>);

impl Backend for Unavailable {
    async fn forward(&self, name: &str) -> Result<Found<IpAddr>, LookupError> {
        Err(LookupError::Failed(name.into(), self.0.clone()))
    }

    async fn reverse(&self, addr: IpAddr) -> Result<Found<String>, LookupError> {
        Err(LookupError::Failed(addr.to_string().into(), self.0.clone()))
    }
}

/// Lower case, without the root's trailing dot.
pub(crate) fn canonical(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

/// Whether `name` (canonical) is `domain` or inside it, at a label boundary.
pub(crate) fn in_domain(name: &str, domain: &str) -> bool {
    let domain = canonical(domain);
    name == domain
        || name
            .strip_suffix(domain.as_str())
            .is_some_and(|head| head.ends_with('.'))
}

/// How [`Lookups`] bounds its work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// How long one lookup may take.
    pub timeout: Duration,
    /// Most entries in each cache (forward, reverse).
    pub cache_size: usize,
    /// Longest an answer is kept.
    pub max_ttl: Duration,
    /// How long a failure is kept.
    pub negative_ttl: Duration,
    /// Most lookups under way at once; more wait for a slot.
    pub max_in_flight: usize,
}

impl Default for Limits {
    fn default() -> Self {
        DnsConfig::default().limits()
    }
}

type Answer<T> = Result<Arc<[T]>, LookupError>;

struct Entry<T> {
    until: Instant,
    answer: Answer<T>,
    /// A warning was logged for this answer (`use_dns = "warn"`).
    warned: bool,
}

/// A bounded cache: the oldest entry goes first when it is full; an entry is
/// answered only until its deadline.
struct Cache<K, T> {
    map: HashMap<K, Entry<T>>,
    order: VecDeque<K>,
    cap: usize,
}

impl<K: Hash + Eq + Clone, T> Cache<K, T> {
    fn new(cap: usize) -> Self {
        Cache {
            map: HashMap::new(),
            order: VecDeque::new(),
            cap: cap.max(1),
        }
    }

    fn get(&mut self, key: &K, now: Instant) -> Option<&mut Entry<T>> {
        self.map.get_mut(key).filter(|e| e.until > now)
    }

    fn insert(&mut self, key: K, until: Instant, answer: Answer<T>) {
        let entry = Entry {
            until,
            answer,
            warned: false,
        };
        if self.map.insert(key.clone(), entry).is_none() {
            self.order.push_back(key);
        }
        while self.map.len() > self.cap {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            self.map.remove(&old);
        }
    }

    fn len(&self) -> usize {
        self.map.len()
    }
}

/// Lookups through a [`Backend`] within [`Limits`], answers cached. Shared
/// between tasks by reference.
pub struct Lookups<B> {
    backend: B,
    limits: Limits,
    forward: Mutex<Cache<String, IpAddr>>,
    reverse: Mutex<Cache<IpAddr, String>>,
    slots: tokio::sync::Semaphore,
}

impl<B> std::fmt::Debug for Lookups<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lookups")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// A forward answer, and whether this caller is the first to see it (so a
/// `warn` jail logs each name once per cached answer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The addresses (normalised, without duplicates), or why there are none.
    pub answer: Answer<IpAddr>,
    /// No one was told about this answer before.
    pub first: bool,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl<B: Backend> Lookups<B> {
    /// Lookups through `backend` within `limits`.
    pub fn new(backend: B, limits: Limits) -> Lookups<B> {
        Lookups {
            backend,
            forward: Mutex::new(Cache::new(limits.cache_size)),
            reverse: Mutex::new(Cache::new(limits.cache_size)),
            slots: tokio::sync::Semaphore::new(limits.max_in_flight.max(1)),
            limits,
        }
    }

    /// The bounds in force.
    pub(crate) fn limits(&self) -> Limits {
        self.limits
    }

    /// Entries in the forward and the reverse cache.
    pub fn cached(&self) -> (usize, usize) {
        (lock(&self.forward).len(), lock(&self.reverse).len())
    }

    /// The addresses of `name`, from the cache while the answer is fresh.
    pub async fn addresses(&self, name: &str) -> Resolved {
        let key = canonical(name);
        if let Some(e) = lock(&self.forward).get(&key, Instant::now()) {
            let first = !e.warned;
            e.warned = true;
            return Resolved {
                answer: e.answer.clone(),
                first,
            };
        }
        let found = self.bounded(&key, self.backend.forward(&key)).await;
        let (until, answer) = self.settle(found, |addrs| {
            let mut out: Vec<IpAddr> = Vec::with_capacity(addrs.len());
            for a in addrs {
                let a = addr::normalise(a);
                if !out.contains(&a) {
                    out.push(a);
                }
            }
            out
        });
        let answer = match answer {
            Ok(a) if a.is_empty() => Err(LookupError::NotFound(key.as_str().into())),
            other => other,
        };
        let mut cache = lock(&self.forward);
        cache.insert(key.clone(), until, answer.clone());
        if let Some(e) = cache.get(&key, Instant::now()) {
            e.warned = true;
        }
        Resolved {
            answer,
            first: true,
        }
    }

    /// The names of `addr` (PTR), cached like forward answers.
    pub async fn names(&self, addr: IpAddr) -> Answer<String> {
        let addr = addr::normalise(addr);
        if let Some(e) = lock(&self.reverse).get(&addr, Instant::now()) {
            return e.answer.clone();
        }
        let label = addr.to_string();
        let found = self.bounded(&label, self.backend.reverse(addr)).await;
        let (until, answer) = self.settle(found, |names| names);
        lock(&self.reverse).insert(addr, until, answer.clone());
        answer
    }

    /// The name of `addr` when one of its reverse names lies in one of
    /// `domains` and resolves forward to `addr` again (forward-confirmed
    /// reverse DNS). `Ok(None)`: no such name, so not confirmed. The reverse
    /// zone belongs to whoever holds the address and can say anything; only the
    /// forward zone of the domain proves the claim.
    pub async fn confirmed_name(
        &self,
        addr: IpAddr,
        domains: &[String],
    ) -> Result<Option<String>, LookupError> {
        let addr = addr::normalise(addr);
        let names = match self.names(addr).await {
            Ok(n) => n,
            Err(LookupError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        for name in names.iter() {
            if !domains.iter().any(|d| in_domain(name, d)) {
                continue;
            }
            match self.addresses(name).await.answer {
                Ok(addrs) if addrs.contains(&addr) => return Ok(Some(name.clone())),
                Ok(_) | Err(LookupError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }

    /// Runs `lookup` once a slot is free, for at most the timeout.
    async fn bounded<T>(
        &self,
        what: &str,
        lookup: impl Future<Output = Result<Found<T>, LookupError>>,
    ) -> Result<Found<T>, LookupError> {
        let timeout = self.limits.timeout;
        let Ok(_slot) = self.slots.acquire().await else {
            return Err(LookupError::Failed(what.into(), "resolver closed".into()));
        };
        match tokio::time::timeout(timeout, lookup).await {
            Ok(r) => r,
            Err(_) => Err(LookupError::Timeout(what.into(), timeout)),
        }
    }

    /// The deadline and cached form of an answer: answers for their TTL (at
    /// most `max_ttl`), failures for `negative_ttl`.
    fn settle<T, U>(
        &self,
        found: Result<Found<T>, LookupError>,
        shape: impl FnOnce(Vec<T>) -> Vec<U>,
    ) -> (Instant, Answer<U>) {
        let now = Instant::now();
        match found {
            Ok(f) => (
                now + f.ttl.min(self.limits.max_ttl),
                Ok(Arc::from(shape(f.records))),
            ),
            Err(e) => (now + self.limits.negative_ttl, Err(e)),
        }
    }
}

#[cfg(test)]
mod tests;
