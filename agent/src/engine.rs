//! The engine: the single owner of per-address state. It turns offences into ban and
//! unban decisions (thresholds, windows, allowlist, expiry). It is synchronous, does
//! no I/O and takes `now` from its caller, so tests drive it with a fake clock.
//!
//! Memory is bounded whatever an attacker writes into a log: each (jail, address)
//! window keeps at most `maxretry` offence times, the number of tracked addresses
//! is capped (`agent.max_tracked`, least recently seen evicted first), windows that
//! aged out are swept, and banned addresses are not tracked at all (their offences
//! are ignored until the ban ends).

pub mod allowlist;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ipnet::IpNet;

use crate::addr::{self, AddrError};
use crate::config::Config;
pub use allowlist::Allowlist;

/// Why a ban exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// A jail's threshold was reached.
    Jail,
    /// `log2drop ban` from the control socket.
    Manual,
    /// Subnet escalation: enough addresses inside the prefix were banned.
    Subnet,
}

/// What led to a jail's ban, kept with the ban in the store (`bans` shows it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BanReason {
    /// The filter whose offence reached the threshold.
    pub filter: Arc<str>,
    /// The oldest offence still counted when the ban was decided.
    pub first_offence: SystemTime,
    /// The offence that reached the threshold.
    pub last_offence: SystemTime,
}

/// One earlier ban, as the store's history returns it (escalation counts these).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// The banned address or prefix.
    pub target: IpNet,
    /// The jail that banned it.
    pub jail: Arc<str>,
    /// When that ban started.
    pub since: SystemTime,
}

/// One active ban.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ban {
    /// Banned address (/32, /128) or prefix.
    pub target: IpNet,
    /// Jail that owns the ban (`manual` for manual bans).
    pub jail: Arc<str>,
    /// When the ban started.
    pub since: SystemTime,
    /// When it ends; `None` means permanent.
    pub until: Option<SystemTime>,
    /// Why it exists.
    pub origin: Origin,
    /// The offences behind a jail's ban; `None` for manual bans.
    pub reason: Option<BanReason>,
    /// Made with `log2drop ban --force` over the allowlist: kept on restore and
    /// reload even though the allowlist covers it.
    pub forced: bool,
}

/// A ban asked for by hand (`log2drop ban`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManualBan {
    /// Address or prefix.
    pub target: IpNet,
    /// How long; `None` means the jail's `bantime` when `jail` is given, else
    /// permanent.
    pub duration: Option<Duration>,
    /// File the ban under this configured jail (its backends enforce it); `None`
    /// files it under [`MANUAL_JAIL`].
    pub jail: Option<String>,
    /// Ban even though the allowlist covers (part of) the target.
    pub force: bool,
}

/// What the engine asks the backends and the store to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Enforce this ban (new, or extended: the target may already be banned).
    Ban(Ban),
    /// Lift the ban on this target.
    Unban(Ban),
}

/// The jail name manual bans (`log2drop ban`) are filed under; reserved in config.
pub const MANUAL_JAIL: &str = "manual";

/// How often [`Engine::expire`] sweeps out windows whose offences all aged out.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// Why the engine refused something.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// An `agent.allow` entry is not an address or prefix.
    #[error("agent.allow entry {entry:?}: {source}")]
    Allow {
        /// The entry as written.
        entry: String,
        /// Why it was refused.
        #[source]
        source: AddrError,
    },
    /// A manual ban would cover an allowlisted address.
    #[error("refusing to ban {target}: it overlaps the allowlist entry {entry}")]
    Allowlisted {
        /// The requested target.
        target: String,
        /// The allowlist entry it overlaps.
        entry: String,
    },
    /// A manual ban names a jail the config lacks.
    #[error("refusing to ban {target}: no jail {jail:?} (known: {known})")]
    UnknownJail {
        /// The requested target.
        target: String,
        /// The jail asked for.
        jail: String,
        /// The configured jails, comma-separated.
        known: String,
    },
    /// A manual ban of zero length would end before it began.
    #[error(
        "refusing to ban {target} for 0s; give a positive duration or none for a permanent ban"
    )]
    ZeroDuration {
        /// The requested target.
        target: String,
    },
}

/// Counters for `status` and `stats`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// Offences seen (all of them, counted or not).
    pub offences: u64,
    /// Offences ignored because the address is allowlisted.
    pub allowlisted: u64,
    /// Offences ignored because the address is already banned.
    pub already_banned: u64,
    /// Addresses tracked right now.
    pub tracked: usize,
    /// Addresses forgotten because `max_tracked` was reached.
    pub evicted: u64,
    /// Bans issued by jails since start.
    pub jail_bans: u64,
    /// Bans lifted because they expired.
    pub expired: u64,
}

/// One jail's policy, as the engine uses it.
#[derive(Debug)]
struct Jail {
    name: Arc<str>,
    maxretry: usize,
    findtime_ms: u64,
    bantime: Duration,
    backends: Vec<String>,
}

/// Offence times of one address in one jail, oldest first, at most `maxretry`.
#[derive(Debug)]
struct Window {
    jail: usize,
    times: VecDeque<u64>,
}

/// Everything the engine remembers about one address that is not banned.
#[derive(Debug)]
struct Tracked {
    /// Position in the recency order (higher = seen more recently).
    seq: u64,
    windows: Vec<Window>,
}

/// The decision maker. See the module docs.
#[derive(Debug)]
pub struct Engine {
    jails: Vec<Jail>,
    jails_by_filter: HashMap<String, Vec<usize>>,
    allow: Allowlist,
    max_tracked: usize,
    tracked: HashMap<IpAddr, Tracked>,
    /// Recency order of `tracked`: seq -> address; the first entry is evicted first.
    recency: BTreeMap<u64, IpAddr>,
    next_seq: u64,
    bans: HashMap<IpNet, Ban>,
    deadlines: BTreeSet<(SystemTime, IpNet)>,
    /// How many bans exist per (is IPv6, prefix length), so "is this address
    /// covered by a ban" tries only the prefix lengths in use.
    ban_lens: BTreeMap<(bool, u8), usize>,
    next_sweep: Option<SystemTime>,
    stats: EngineStats,
}

/// Milliseconds since the Unix epoch; times before it count as the epoch.
fn millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn host_net(addr: IpAddr) -> IpNet {
    IpNet::from(addr)
}

impl Engine {
    /// Builds the engine for a validated config. Loopback is always allowlisted,
    /// on top of `agent.allow`.
    pub fn from_config(cfg: &Config) -> Result<Engine, EngineError> {
        let mut allow = Vec::with_capacity(cfg.agent.allow.len());
        for entry in &cfg.agent.allow {
            let net = addr::parse_target(entry).map_err(|source| EngineError::Allow {
                entry: entry.clone(),
                source,
            })?;
            allow.push(net);
        }
        let mut jails = Vec::with_capacity(cfg.jails.len());
        let mut jails_by_filter: HashMap<String, Vec<usize>> = HashMap::new();
        for (name, jc) in &cfg.jails {
            let idx = jails.len();
            jails.push(Jail {
                name: Arc::from(name.as_str()),
                maxretry: usize::try_from(jc.maxretry.max(1)).unwrap_or(usize::MAX),
                findtime_ms: u64::try_from(jc.findtime.get().as_millis()).unwrap_or(u64::MAX),
                bantime: jc.bantime.get(),
                backends: jc.backends.clone(),
            });
            for f in &jc.filters {
                let list = jails_by_filter.entry(f.clone()).or_default();
                if !list.contains(&idx) {
                    list.push(idx);
                }
            }
        }
        Ok(Engine {
            jails,
            jails_by_filter,
            allow: Allowlist::with_loopback(allow),
            max_tracked: cfg.agent.max_tracked.max(1),
            tracked: HashMap::new(),
            recency: BTreeMap::new(),
            next_seq: 0,
            bans: HashMap::new(),
            deadlines: BTreeSet::new(),
            ban_lens: BTreeMap::new(),
            next_sweep: None,
            stats: EngineStats::default(),
        })
    }

    /// Records that `filter` saw `addr` misbehave at `now`; pushes a ban decision
    /// to `out` when a jail's threshold is reached. Allowlisted and already banned
    /// addresses are ignored.
    pub fn offence(
        &mut self,
        filter: &str,
        addr: IpAddr,
        now: SystemTime,
        out: &mut Vec<Decision>,
    ) {
        self.stats.offences += 1;
        let addr = addr::normalise(addr);
        if self.allow.contains(addr) {
            self.stats.allowlisted += 1;
            return;
        }
        if self.is_banned(addr) {
            self.stats.already_banned += 1;
            return;
        }
        if !self.jails_by_filter.contains_key(filter) {
            return;
        }
        let now_ms = millis(now);
        self.touch(addr);
        let (Some(jail_ids), Some(entry)) = (
            self.jails_by_filter.get(filter),
            self.tracked.get_mut(&addr),
        ) else {
            return;
        };
        let mut banned_by = None;
        for &j in jail_ids {
            let jail = &self.jails[j];
            let window = match entry.windows.iter_mut().position(|w| w.jail == j) {
                Some(i) => &mut entry.windows[i],
                None => {
                    entry.windows.push(Window {
                        jail: j,
                        times: VecDeque::with_capacity(jail.maxretry.min(16)),
                    });
                    let last = entry.windows.len() - 1;
                    &mut entry.windows[last]
                }
            };
            prune(&mut window.times, now_ms, jail.findtime_ms);
            window.times.push_back(now_ms);
            while window.times.len() > jail.maxretry {
                window.times.pop_front();
            }
            if window.times.len() >= jail.maxretry {
                banned_by = Some((j, window.times.front().copied().unwrap_or(now_ms)));
                break;
            }
        }
        if let Some((j, first_ms)) = banned_by {
            self.forget(addr);
            let jail = &self.jails[j];
            let ban = Ban {
                target: host_net(addr),
                jail: jail.name.clone(),
                since: now,
                until: now.checked_add(jail.bantime),
                origin: Origin::Jail,
                reason: Some(BanReason {
                    filter: Arc::from(filter),
                    first_offence: UNIX_EPOCH + Duration::from_millis(first_ms),
                    last_offence: now,
                }),
                forced: false,
            };
            self.insert_ban(ban.clone());
            self.stats.jail_bans += 1;
            out.push(Decision::Ban(ban));
        }
    }

    /// Bans `target` by hand (jail `manual`), for `duration` or permanently when
    /// `None`. Refused if any address in `target` is allowlisted. Banning a target
    /// that is already banned replaces that ban.
    pub fn ban(
        &mut self,
        target: IpNet,
        duration: Option<Duration>,
        now: SystemTime,
    ) -> Result<Decision, EngineError> {
        self.manual_ban(
            &ManualBan {
                target,
                duration,
                jail: None,
                force: false,
            },
            now,
        )
    }

    /// Bans by hand, optionally under a configured jail (its `bantime` is the
    /// default length and its backends enforce it) and optionally over the
    /// allowlist (`force`, logged). Banning a target that is already banned replaces
    /// that ban.
    pub fn manual_ban(
        &mut self,
        req: &ManualBan,
        now: SystemTime,
    ) -> Result<Decision, EngineError> {
        let target = normalise_net(req.target);
        let shown = || addr::display_target(&target);
        let (jail, default_len) = match req.jail.as_deref() {
            None | Some(MANUAL_JAIL) => (Arc::from(MANUAL_JAIL), None),
            Some(name) => match self.jails.iter().find(|j| &*j.name == name) {
                Some(j) => (j.name.clone(), Some(j.bantime)),
                None => {
                    let known: Vec<&str> = self.jails.iter().map(|j| &*j.name).collect();
                    return Err(EngineError::UnknownJail {
                        target: shown(),
                        jail: name.to_owned(),
                        known: known.join(", "),
                    });
                }
            },
        };
        if let Some(entry) = self.allow.entry_intersecting(&target) {
            if !req.force {
                return Err(EngineError::Allowlisted {
                    target: shown(),
                    entry: addr::display_target(&entry),
                });
            }
            tracing::warn!(
                target = %shown(),
                allow = %addr::display_target(&entry),
                "forced ban over the allowlist"
            );
        }
        let duration = req.duration.or(default_len);
        if duration.is_some_and(|d| d.is_zero()) {
            return Err(EngineError::ZeroDuration { target: shown() });
        }
        let ban = Ban {
            target,
            jail,
            since: now,
            until: duration.and_then(|d| now.checked_add(d)),
            origin: Origin::Manual,
            reason: None,
            forced: req.force && self.allow.entry_intersecting(&target).is_some(),
        };
        if target.prefix_len() == target.max_prefix_len() {
            self.forget(target.addr());
        }
        self.insert_ban(ban.clone());
        Ok(Decision::Ban(ban))
    }

    /// Lifts the ban on exactly `target`, if there is one.
    pub fn unban(&mut self, target: IpNet) -> Option<Decision> {
        self.remove_ban(&normalise_net(target)).map(Decision::Unban)
    }

    /// Lifts every ban whose deadline is at or before `now`, and now and then
    /// forgets offence windows that aged out.
    pub fn expire(&mut self, now: SystemTime, out: &mut Vec<Decision>) {
        while let Some(&(deadline, target)) = self.deadlines.first() {
            if deadline > now {
                break;
            }
            if let Some(ban) = self.remove_ban(&target) {
                self.stats.expired += 1;
                out.push(Decision::Unban(ban));
            } else {
                self.deadlines.pop_first();
            }
        }
        if self.next_sweep.is_none_or(|t| now >= t) {
            self.sweep(now);
            self.next_sweep = now.checked_add(SWEEP_EVERY);
        }
    }

    /// The earliest ban deadline, so the caller knows when to call [`Engine::expire`].
    pub fn next_expiry(&self) -> Option<SystemTime> {
        self.deadlines.first().map(|(t, _)| *t)
    }

    /// Every active ban, in no particular order.
    pub fn bans(&self) -> impl Iterator<Item = &Ban> {
        self.bans.values()
    }

    /// Loads bans from the store at start. Expired bans are dropped, and so are
    /// bans that overlap the allowlist (the allowlist may have grown since); the
    /// caller reconciles backends with [`Engine::bans`] afterwards, which removes
    /// those from the kernel too. No decisions are produced.
    pub fn restore(&mut self, bans: Vec<Ban>, now: SystemTime) {
        for mut ban in bans {
            if ban.until.is_some_and(|u| u <= now) {
                continue;
            }
            ban.target = normalise_net(ban.target);
            if !ban.forced
                && let Some(entry) = self.allow.entry_intersecting(&ban.target)
            {
                tracing::warn!(
                    target = %addr::display_target(&ban.target),
                    allow = %addr::display_target(&entry),
                    "dropping a stored ban that overlaps the allowlist"
                );
                continue;
            }
            if let Some(existing) = self.bans.get(&ban.target) {
                let longer = match (existing.until, ban.until) {
                    (None, _) => false,
                    (Some(_), None) => true,
                    (Some(a), Some(b)) => b > a,
                };
                if !longer {
                    continue;
                }
            }
            if ban.target.prefix_len() == ban.target.max_prefix_len() {
                self.forget(ban.target.addr());
            }
            self.insert_ban(ban);
        }
    }

    /// Takes over the live state of `old`, the engine of the previous config, into
    /// this one, freshly built from the new config (reload). Every ban is kept,
    /// except those the new allowlist now covers (not forced): their unbans go to
    /// `out`. Offence windows are kept for the jails named in `keep_jails` (their
    /// config did not change) and dropped for the others; counters carry on.
    pub fn carry_over(
        &mut self,
        old: Engine,
        keep_jails: &BTreeSet<String>,
        out: &mut Vec<Decision>,
    ) {
        let Engine {
            jails: old_jails,
            tracked: mut old_tracked,
            recency: old_recency,
            bans: old_bans,
            stats,
            ..
        } = old;
        self.stats = stats;
        for (_, ban) in old_bans {
            if !ban.forced
                && let Some(entry) = self.allow.entry_intersecting(&ban.target)
            {
                tracing::info!(
                    target = %addr::display_target(&ban.target),
                    allow = %addr::display_target(&entry),
                    "lifting a ban the new allowlist covers"
                );
                out.push(Decision::Unban(ban));
                continue;
            }
            self.insert_ban(ban);
        }
        // Old jail index -> new jail index, for kept jails only.
        let remap: HashMap<usize, usize> = old_jails
            .iter()
            .enumerate()
            .filter(|(_, j)| keep_jails.contains(&*j.name))
            .filter_map(|(i, j)| {
                let new = self.jails.iter().position(|n| n.name == j.name)?;
                Some((i, new))
            })
            .collect();
        // Oldest first, so the recency order (and eviction) carries over.
        for (_, addr) in old_recency {
            let Some(t) = old_tracked.remove(&addr) else {
                continue;
            };
            if self.allow.contains(addr) || self.is_banned(addr) {
                continue;
            }
            let windows: Vec<Window> = t
                .windows
                .into_iter()
                .filter_map(|w| {
                    let jail = *remap.get(&w.jail)?;
                    let mut times = w.times;
                    while times.len() > self.jails[jail].maxretry {
                        times.pop_front();
                    }
                    Some(Window { jail, times })
                })
                .collect();
            if windows.is_empty() {
                continue;
            }
            self.touch(addr);
            if let Some(entry) = self.tracked.get_mut(&addr) {
                entry.windows = windows;
            }
        }
    }

    /// The backends that enforce `jail`'s bans; empty means every backend (also
    /// for manual bans and jails no longer configured).
    pub fn jail_backends(&self, jail: &str) -> &[String] {
        self.jails
            .iter()
            .find(|j| &*j.name == jail)
            .map_or(&[], |j| j.backends.as_slice())
    }

    /// The allowlist in force.
    pub fn allowlist(&self) -> &Allowlist {
        &self.allow
    }

    /// Counters for `status` and `stats`.
    pub fn stats(&self) -> EngineStats {
        EngineStats {
            tracked: self.tracked.len(),
            ..self.stats
        }
    }

    /// True if a ban covers `addr` (its own, or a prefix containing it).
    pub fn is_banned(&self, addr: IpAddr) -> bool {
        let addr = addr::normalise(addr);
        let v6 = addr.is_ipv6();
        self.ban_lens
            .range((v6, 0)..=(v6, u8::MAX))
            .any(|(&(_, len), _)| {
                IpNet::new(addr, len)
                    .map(|n| self.bans.contains_key(&n.trunc()))
                    .unwrap_or(false)
            })
    }

    /// Marks `addr` as just seen, creating its entry (and evicting the least
    /// recently seen address if the cap is reached).
    fn touch(&mut self, addr: IpAddr) {
        let seq = self.next_seq;
        self.next_seq += 1;
        if let Some(t) = self.tracked.get_mut(&addr) {
            self.recency.remove(&t.seq);
            t.seq = seq;
            self.recency.insert(seq, addr);
            return;
        }
        while self.tracked.len() >= self.max_tracked {
            let Some((_, oldest)) = self.recency.pop_first() else {
                break;
            };
            self.tracked.remove(&oldest);
            self.stats.evicted += 1;
        }
        self.tracked.insert(
            addr,
            Tracked {
                seq,
                windows: Vec::new(),
            },
        );
        self.recency.insert(seq, addr);
    }

    fn forget(&mut self, addr: IpAddr) {
        if let Some(t) = self.tracked.remove(&addr) {
            self.recency.remove(&t.seq);
        }
    }

    fn sweep(&mut self, now: SystemTime) {
        let now_ms = millis(now);
        let jails = &self.jails;
        let recency = &mut self.recency;
        self.tracked.retain(|_, t| {
            t.windows.retain_mut(|w| {
                prune(&mut w.times, now_ms, jails[w.jail].findtime_ms);
                !w.times.is_empty()
            });
            if t.windows.is_empty() {
                recency.remove(&t.seq);
                false
            } else {
                true
            }
        });
    }

    fn insert_ban(&mut self, ban: Ban) {
        self.remove_ban(&ban.target);
        if let Some(until) = ban.until {
            self.deadlines.insert((until, ban.target));
        }
        *self
            .ban_lens
            .entry((ban.target.addr().is_ipv6(), ban.target.prefix_len()))
            .or_default() += 1;
        self.bans.insert(ban.target, ban);
    }

    fn remove_ban(&mut self, target: &IpNet) -> Option<Ban> {
        let ban = self.bans.remove(target)?;
        if let Some(until) = ban.until {
            self.deadlines.remove(&(until, ban.target));
        }
        let key = (ban.target.addr().is_ipv6(), ban.target.prefix_len());
        if let Some(n) = self.ban_lens.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                self.ban_lens.remove(&key);
            }
        }
        Some(ban)
    }
}

/// Drops offence times older than the window.
fn prune(times: &mut VecDeque<u64>, now_ms: u64, findtime_ms: u64) {
    let horizon = now_ms.saturating_sub(findtime_ms);
    while times.front().is_some_and(|&t| t < horizon) {
        times.pop_front();
    }
}

/// Host bits cleared, IPv4-mapped prefixes as IPv4: one target, one key.
fn normalise_net(net: IpNet) -> IpNet {
    if let IpNet::V6(n) = net
        && let Some(v4) = n.network().to_ipv4_mapped()
        && n.prefix_len() >= 96
        && let Ok(v4net) = ipnet::Ipv4Net::new(v4, n.prefix_len() - 96)
    {
        return IpNet::V4(v4net);
    }
    net.trunc()
}

#[cfg(test)]
mod tests;
