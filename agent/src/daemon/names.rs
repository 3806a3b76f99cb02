//! The name task: host names (`use_dns`) and reverse-DNS checks (`allow_rdns`)
//! resolved off the source threads, before the engine.
//!
//! A source thread that matched a name (or an address its filter wants
//! checked) puts a [`Request`] on a bounded queue without waiting: if the
//! queue is full the request is dropped and counted, so a flood of names never
//! slows reading. This task runs at most `[dns] max_in_flight` lookups at once
//! through the cache of `crate::dns`, and hands the engine task an [`Answer`]
//! with addresses only: the engine decides, as for any offence, and refuses a
//! name that resolves to an allowlisted address.
//!
//! Offences by names reach the engine after the lines around them: a name is
//! never counted twice, but one in flight when the agent stops is lost (offence
//! counts are in memory only anyway).

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::dns::{Backend, LookupError, Lookups, UseDns};
use crate::filter::Captures;

/// Requests waiting for a lookup slot; more are dropped (and counted).
pub(super) const QUEUE: usize = 1024;

/// What a source thread asks.
#[derive(Debug)]
pub(super) enum Request {
    /// A filter matched this host name.
    Name {
        filter: Arc<str>,
        name: Box<str>,
        at: SystemTime,
        /// Some jail the filter feeds has `use_dns = "warn"`.
        warn: bool,
        /// The line's named captures, for each address the name resolves to.
        captures: Captures,
    },
    /// A filter with `allow_rdns` matched this address: it counts unless its
    /// forward-confirmed reverse name is in one of `domains`.
    Verify {
        filter: Arc<str>,
        addr: IpAddr,
        domains: Arc<[String]>,
        at: SystemTime,
        captures: Captures,
    },
}

/// What the engine task is told.
#[derive(Debug)]
pub(super) enum Answer {
    /// `name` resolved to `addrs`.
    Name {
        filter: Arc<str>,
        name: Box<str>,
        addrs: Arc<[IpAddr]>,
        at: SystemTime,
        captures: Captures,
    },
    /// An address that did not prove to be a genuine client: an offence.
    Offence {
        filter: Arc<str>,
        addr: IpAddr,
        at: SystemTime,
        captures: Captures,
    },
}

/// Counters of the name path, shared with the source threads.
#[derive(Debug, Default)]
pub(crate) struct NameCounters {
    /// Lines whose `<HOST>` was a host name.
    pub(crate) names: AtomicU64,
    /// ... of which no jail wanted (`use_dns = "no"`).
    pub(crate) ignored: AtomicU64,
    /// Requests dropped because the queue was full.
    pub(crate) dropped: AtomicU64,
    /// Names that gave no address (no such name, no answer in time).
    pub(crate) unresolved: AtomicU64,
    /// `allow_rdns` hits from genuine clients, not counted.
    pub(crate) genuine: AtomicU64,
}

/// The sending side, one clone per source.
#[derive(Debug, Clone)]
pub(super) struct NameQueue {
    tx: mpsc::Sender<Request>,
    pub(super) counters: Arc<NameCounters>,
}

impl NameQueue {
    /// A queue and its receiving end.
    pub(super) fn new(counters: Arc<NameCounters>) -> (NameQueue, mpsc::Receiver<Request>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        (NameQueue { tx, counters }, rx)
    }

    /// Queues `req` without waiting.
    pub(super) fn offer(&self, req: Request) {
        if self.tx.try_send(req).is_err() {
            let n = self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            if n.is_power_of_two() {
                tracing::warn!(
                    dropped = n + 1,
                    "host name lookups are behind: names dropped ([dns] max_in_flight, timeout)"
                );
            }
        }
    }
}

/// How a filter's host names are handled, from the jails it feeds.
#[derive(Debug, Clone, Default)]
pub(super) struct NamePolicy {
    /// The strongest `use_dns` of those jails: names are resolved unless all
    /// say `no`; warned about if any says `warn`.
    pub(super) resolve: bool,
    pub(super) warn: bool,
    /// The filter's `allow_rdns` domains.
    pub(super) allow_rdns: Option<Arc<[String]>>,
}

impl NamePolicy {
    /// The policy of filter reference `filter` in `config`.
    pub(super) fn of(config: &crate::config::Config, filter: &str) -> NamePolicy {
        let mut p = NamePolicy::default();
        for j in config
            .jails
            .values()
            .filter(|j| j.filters.iter().any(|f| f == filter))
        {
            match j.use_dns.unwrap_or(config.dns.use_dns) {
                UseDns::No => {}
                UseDns::Warn => {
                    p.resolve = true;
                    p.warn = true;
                }
                UseDns::Yes => p.resolve = true,
            }
        }
        if let Ok(cfg) = crate::filter::resolve(&config.filters, filter)
            && !cfg.allow_rdns.is_empty()
        {
            p.allow_rdns = Some(cfg.allow_rdns.into());
        }
        p
    }
}

/// Serves `rx` until every sender is gone, answering on `out`.
pub(super) async fn run<B: Backend>(
    lookups: Arc<Lookups<B>>,
    mut rx: mpsc::Receiver<Request>,
    out: mpsc::Sender<Answer>,
    counters: Arc<NameCounters>,
) {
    let limit = lookups.limits().max_in_flight.max(1);
    let mut running = JoinSet::new();
    loop {
        if running.len() >= limit {
            running.join_next().await;
            continue;
        }
        tokio::select! {
            req = rx.recv() => {
                let Some(req) = req else { break };
                let (l, out, c) = (lookups.clone(), out.clone(), counters.clone());
                running.spawn(async move {
                    if let Some(answer) = serve(&l, req, &c).await {
                        let _ = out.send(answer).await;
                    }
                });
            }
            Some(_) = running.join_next(), if !running.is_empty() => {}
        }
    }
    while running.join_next().await.is_some() {}
}

/// One request: the answer for the engine, if any.
async fn serve<B: Backend>(
    lookups: &Lookups<B>,
    req: Request,
    counters: &NameCounters,
) -> Option<Answer> {
    match req {
        Request::Name {
            filter,
            name,
            at,
            warn,
            captures,
        } => {
            let r = lookups.addresses(&name).await;
            match r.answer {
                Ok(addrs) => {
                    if warn && r.first {
                        tracing::warn!(
                            filter = %filter,
                            name = %name,
                            addresses = ?addrs,
                            "a log line names a host, not an address: counted for the addresses it resolves to (use_dns = \"warn\"; \"yes\" silences this, \"no\" ignores such lines)"
                        );
                    }
                    Some(Answer::Name {
                        filter,
                        name,
                        addrs,
                        at,
                        captures,
                    })
                }
                Err(e) => {
                    counters.unresolved.fetch_add(1, Ordering::Relaxed);
                    if r.first {
                        tracing::info!(filter = %filter, "host name not counted: {e}");
                    }
                    None
                }
            }
        }
        Request::Verify {
            filter,
            addr,
            domains,
            at,
            captures,
        } => match lookups.confirmed_name(addr, &domains).await {
            Ok(Some(name)) => {
                counters.genuine.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(filter = %filter, %addr, %name, "genuine client (forward-confirmed reverse name): not counted");
                None
            }
            // No confirmed name, or no answer: the claim is not proven. The
            // address owner controls its reverse zone, so a lookup that fails
            // must not excuse the line.
            Ok(None) | Err(LookupError::NotFound(_)) => Some(Answer::Offence {
                filter,
                addr,
                at,
                captures,
            }),
            Err(e) => {
                tracing::debug!(filter = %filter, %addr, "reverse DNS check failed, counted: {e}");
                Some(Answer::Offence {
                    filter,
                    addr,
                    at,
                    captures,
                })
            }
        },
    }
}
