//! The running sources: starting one with its compiled matcher and saved position,
//! stopping some (reload) or all (shutdown) without losing a line, and their
//! counters for `status` and `stats`.
//!
//! Stopping joins the source threads, and a thread blocked on a full offence
//! channel only finishes once the engine has received from it, so every stop here
//! drains the channel while it waits; the events drained (offences and the final
//! positions) are handed to the caller.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;

use super::names::{NamePolicy, NameQueue, Request};
use crate::config::Config;
use crate::control::protocol::SourceStatus;
use crate::filter::age::AgeCheck;
use crate::filter::{Captures, Host, Outcome, Scratch, SourceMatcher};
use crate::source::{
    LineMatcher, Positions, SourceError, SourceEvent, SourceHandle, spawn_configured,
};

/// The sources that are running, in config order.
#[derive(Debug)]
pub(super) struct SourceSet {
    running: Vec<SourceHandle>,
    /// Reads each source's counters when scraped.
    metrics: crate::metrics::Metrics,
    /// Where host names and reverse-DNS checks go (`None`: nowhere, they are
    /// not counted).
    pub(super) names: Option<NameQueue>,
}

impl SourceSet {
    /// No sources yet; those started count into `metrics`.
    pub(super) fn new(metrics: crate::metrics::Metrics) -> SourceSet {
        SourceSet {
            running: Vec::new(),
            metrics,
            names: None,
        }
    }

    /// Starts source `name` as `config` describes it, with `matcher`, resuming
    /// from what it saved. A source the config lacks is skipped.
    pub(super) fn start(
        &mut self,
        name: &str,
        config: &Config,
        saved: &Positions,
        matcher: SourceMatcher,
        tx: mpsc::Sender<SourceEvent>,
    ) -> Result<(), SourceError> {
        let Some(cfg) = config.sources.get(name) else {
            return Ok(());
        };
        let mut matcher = FilterMatcher::new(matcher, filter_windows(config, name));
        if let Some(q) = &self.names {
            let policies = cfg
                .filters
                .iter()
                .map(|f| NamePolicy::of(config, f))
                .collect();
            matcher.names = Some((q.clone(), policies));
        }
        let handle = spawn_configured(name, cfg, saved, matcher, tx)?;
        self.metrics.add_source(name, handle.counters());
        self.running.push(handle);
        Ok(())
    }

    /// Takes the named sources out of the set (to stop them).
    pub(super) fn take(&mut self, names: &[String]) -> Vec<SourceHandle> {
        let (out, keep) = std::mem::take(&mut self.running)
            .into_iter()
            .partition(|h| names.iter().any(|n| n == h.name()));
        self.running = keep;
        out
    }

    /// Takes every source out of the set.
    pub(super) fn take_all(&mut self) -> Vec<SourceHandle> {
        std::mem::take(&mut self.running)
    }

    /// Counters of every running source.
    pub(super) fn statuses(&self) -> Vec<SourceStatus> {
        self.running
            .iter()
            .map(|h| {
                let c = h.counters();
                SourceStatus {
                    name: h.name().to_owned(),
                    path: h.path().display().to_string(),
                    lines: c.lines.load(Ordering::Relaxed),
                    offences: c.offences.load(Ordering::Relaxed),
                    long_lines: c.long_lines.load(Ordering::Relaxed),
                    waiting: h.waiting(),
                }
            })
            .collect()
    }
}

/// Stops `handles`, passing every event that arrives meanwhile to `take`; returns
/// once the threads have ended and everything they sent has been taken.
pub(super) async fn stop_draining(
    handles: Vec<SourceHandle>,
    rx: &mut mpsc::Receiver<SourceEvent>,
    mut take: impl FnMut(SourceEvent),
) {
    if handles.is_empty() {
        return;
    }
    for h in &handles {
        h.request_stop();
    }
    let mut join = tokio::task::spawn_blocking(move || {
        for h in handles {
            h.stop();
        }
    });
    loop {
        tokio::select! {
            joined = &mut join => {
                if joined.is_err() {
                    tracing::error!("a source thread could not be joined");
                }
                break;
            }
            ev = rx.recv() => match ev {
                Some(ev) => take(ev),
                None => break,
            },
        }
    }
    // Whatever the threads sent before they ended is queued by now.
    while let Ok(ev) = rx.try_recv() {
        take(ev);
    }
}

/// The filter module's matcher with its per-thread scratch space.
struct FilterMatcher {
    matcher: SourceMatcher,
    scratch: Scratch,
    /// Per filter of the source (in its order): the longest `findtime` of the
    /// jails it feeds. A line whose own time is older cannot count anywhere.
    windows: Vec<Option<Duration>>,
    /// Tells such lines before any regex runs, when every filter of the source
    /// reads the line's own time (a backlog is then mostly skipped unmatched).
    age: Option<AgeCheck>,
    /// Filter names, shared with every offence (made on a filter's first hit).
    filter_names: Vec<Option<Arc<str>>>,
    /// Where host names go, and per filter how they are handled.
    names: Option<(NameQueue, Vec<NamePolicy>)>,
    /// The captures of the line last matched, until the source takes them.
    captures: Captures,
}

impl FilterMatcher {
    fn new(matcher: SourceMatcher, windows: Vec<Option<Duration>>) -> Self {
        Self {
            filter_names: vec![None; matcher.filter_count()],
            names: None,
            captures: Captures::new(),
            scratch: matcher.new_scratch(),
            age: matcher.age_check(&windows),
            matcher,
            windows,
        }
    }
}

impl LineMatcher for FilterMatcher {
    fn match_line(&mut self, line: &[u8], now: SystemTime) -> Option<(Arc<str>, std::net::IpAddr)> {
        if let Some(age) = &mut self.age
            && age.is_stale(line, now)
        {
            return None;
        }
        // `own` is what this line matched; `hit` the offence it makes count
        // (an `end` line releases its session's address).
        let (hit, own) = match self.matcher.examine(line, now, &mut self.scratch) {
            Outcome::Hit(h) => (h, h),
            Outcome::Ended { line, counted } => (counted, line),
            Outcome::Held(_) | Outcome::Ignored { .. } | Outcome::Miss => return None,
        };
        let found = self.named(hit, now, Some((line, &own)))?;
        // Only matched lines get here: the capturing search runs for them alone.
        self.matcher
            .captures_into(line, &own, &mut self.scratch, &mut self.captures);
        Some(found)
    }

    fn take_captures(&mut self) -> Captures {
        std::mem::take(&mut self.captures)
    }

    fn deferred(&mut self) -> Option<(Arc<str>, std::net::IpAddr)> {
        // Only sessions that ended late (a backlog) are skipped; the rest count.
        while let Some(hit) = self.matcher.take_deferred(&mut self.scratch) {
            let now = SystemTime::now();
            if let Some(found) = self.named(hit, now, None) {
                return Some(found);
            }
        }
        None
    }
}

impl FilterMatcher {
    /// The filter name and address of `hit`, unless its line is older than
    /// every window it could count in. A host name, or an address its filter
    /// wants checked, goes to the name task instead, with the captures of
    /// `line` (the line and what it matched itself; `None` for a session
    /// released without a line of its own).
    fn named(
        &mut self,
        hit: crate::filter::Hit,
        now: SystemTime,
        line: Option<(&[u8], &crate::filter::Hit)>,
    ) -> Option<(Arc<str>, std::net::IpAddr)> {
        if let (Some(at), Some(Some(window))) = (hit.time, self.windows.get(hit.filter.index()))
            && now.duration_since(at).is_ok_and(|age| age > *window)
        {
            // An old line (a backlog, a rotated file read late): not an offence now.
            return None;
        }
        let matcher = &self.matcher;
        let filter = self
            .filter_names
            .get_mut(hit.filter.index())?
            .get_or_insert_with(|| Arc::from(matcher.filter_name(hit.filter)))
            .clone();
        let policy = self
            .names
            .as_ref()
            .and_then(|(q, p)| Some((q, p.get(hit.filter.index())?)));
        match hit.host {
            Host::Addr(addr) => match policy {
                // The filter wants the address checked first (apache-fakegooglebot).
                Some((
                    q,
                    NamePolicy {
                        allow_rdns: Some(domains),
                        ..
                    },
                )) => {
                    let captures = captures_of(&self.matcher, &mut self.scratch, line);
                    q.offer(Request::Verify {
                        filter,
                        addr,
                        domains: domains.clone(),
                        at: now,
                        captures,
                    });
                    None
                }
                _ => Some((filter, addr)),
            },
            Host::Name(r) => {
                let (q, policy) = policy?;
                q.counters.names.fetch_add(1, Ordering::Relaxed);
                let Some(name) = self.scratch.host_name(r) else {
                    // Overwritten while its session waited: too many names.
                    q.counters.dropped.fetch_add(1, Ordering::Relaxed);
                    return None;
                };
                // A filter that checks reverse names (allow_rdns) takes no
                // names: a name in an access log is the client's unverified PTR,
                // whose forward addresses its owner may point anywhere.
                if !policy.resolve || policy.allow_rdns.is_some() {
                    q.counters.ignored.fetch_add(1, Ordering::Relaxed);
                    return None;
                }
                let name: Box<str> = name.into();
                let captures = captures_of(&self.matcher, &mut self.scratch, line);
                q.offer(Request::Name {
                    filter,
                    name,
                    at: now,
                    warn: policy.warn,
                    captures,
                });
                None
            }
        }
    }
}

/// The captures of `line` (the line and what it matched itself) for a request
/// to the name task: none for a session released without a line of its own.
fn captures_of(
    matcher: &SourceMatcher,
    scratch: &mut Scratch,
    line: Option<(&[u8], &crate::filter::Hit)>,
) -> Captures {
    let mut captures = Captures::new();
    if let Some((text, own)) = line {
        matcher.captures_into(text, own, scratch, &mut captures);
    }
    captures
}

/// For each filter of source `source`, in its order, the longest `findtime` of
/// the jails that list it.
fn filter_windows(config: &Config, source: &str) -> Vec<Option<Duration>> {
    let Some(src) = config.sources.get(source) else {
        return Vec::new();
    };
    src.filters
        .iter()
        .map(|f| {
            config
                .jails
                .values()
                .filter(|j| j.filters.iter().any(|x| x == f))
                .map(|j| j.findtime.get())
                .max()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_older_than_findtime_do_not_count() {
        let sshd = crate::filter::builtin::get("sshd").expect("built-in");
        let matcher = SourceMatcher::build(&[("sshd", &sshd)]).expect("builds");
        let mut m = FilterMatcher::new(matcher, vec![Some(Duration::from_secs(600))]);
        let line = |age: Duration| {
            let at = jiff::Timestamp::try_from(SystemTime::now() - age).expect("time");
            format!(
                "{at} web1 sshd[1]: Failed password for invalid user a from 192.0.2.1 port 22 ssh2"
            )
        };
        let fresh = line(Duration::from_secs(5));
        assert!(
            m.match_line(fresh.as_bytes(), SystemTime::now()).is_some(),
            "{fresh}"
        );
        let old = line(Duration::from_secs(3600));
        assert!(
            m.match_line(old.as_bytes(), SystemTime::now()).is_none(),
            "{old}"
        );
    }

    /// A host name goes to the name task with the line's captures, which the
    /// engine task then gives to each address the name resolves to.
    #[test]
    fn a_name_goes_to_the_name_task_with_its_captures() {
        let sshd = crate::filter::builtin::get("sshd").expect("built-in");
        let matcher = SourceMatcher::build(&[("sshd", &sshd)]).expect("builds");
        let mut m = FilterMatcher::new(matcher, vec![None]);
        let (q, mut rx) = NameQueue::new(Arc::default());
        let policy = NamePolicy {
            resolve: true,
            ..NamePolicy::default()
        };
        m.names = Some((q, vec![policy]));
        let line = "May 19 10:05:01 web1 sshd[6001]: Failed password for invalid user oracle from bot.example.org port 40200 ssh2";
        assert!(m.match_line(line.as_bytes(), SystemTime::now()).is_none());
        match rx.try_recv() {
            Ok(Request::Name { name, captures, .. }) => {
                assert_eq!(&*name, "bot.example.org");
                assert_eq!(captures.user(), Some("oracle"));
            }
            other => panic!("a name request, got {other:?}"),
        }
    }

    /// The journal source's lines carry the entry's own time, so the same rule
    /// holds for them (a journal backlog read after a restart).
    #[test]
    fn journal_lines_older_than_findtime_do_not_count() {
        let sshd = crate::filter::builtin::get("sshd").expect("built-in");
        let matcher = SourceMatcher::build(&[("sshd", &sshd)]).expect("builds");
        let mut m = FilterMatcher::new(matcher, vec![Some(Duration::from_secs(600))]);
        let mut buf = Vec::new();
        let mut entry = |age: Duration| {
            let us = (SystemTime::now() - age)
                .duration_since(SystemTime::UNIX_EPOCH)
                .expect("after the epoch")
                .as_micros();
            let json = format!(
                r#"{{"__REALTIME_TIMESTAMP":"{us}","SYSLOG_IDENTIFIER":"sshd","_PID":"1","MESSAGE":"Failed password for invalid user a from 192.0.2.1 port 22 ssh2"}}"#
            );
            let line = crate::source::journal::parse(json.as_bytes(), 1024, &mut buf)
                .expect("entry")
                .line;
            m.match_line(line.bytes, SystemTime::now()).is_some()
        };
        assert!(entry(Duration::from_secs(5)));
        assert!(!entry(Duration::from_secs(3600)));
    }

    #[test]
    fn filter_windows_take_the_longest_findtime() {
        let text = "[sources.a]\npath = \"/var/log/a\"\nfilters = [\"sshd\", \"x\"]\n[filters.x]\nregex = ['x <HOST>']\n[jails.j1]\nfilters = [\"sshd\"]\nfindtime = \"10m\"\n[jails.j2]\nfilters = [\"sshd\", \"x\"]\nfindtime = \"1h\"\n";
        // Plain config data: the windows need no validation (nor a backend).
        let cfg: Config = toml::from_str(text).expect("valid");
        assert_eq!(
            filter_windows(&cfg, "a"),
            vec![
                Some(Duration::from_secs(3600)),
                Some(Duration::from_secs(3600))
            ]
        );
    }
}
