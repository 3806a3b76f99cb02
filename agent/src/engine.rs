//! The engine: the single owner of per-address state. It turns offences into ban and
//! unban decisions. It is synchronous, does no I/O and takes `now` from its caller,
//! so tests drive it with a fake clock; whatever needs I/O (the store's history,
//! resolved host names, the host's own addresses) is handed in through methods.
//!
//! What it decides:
//! - **Score**: each jail sums the weights of an address's offences within
//!   `findtime` (weight 1 unless the jail weighs a filter) and bans at `threshold`
//!   (`maxretry` when no threshold is set). Offences from every source that feeds a
//!   jail's filters add up, because counting is per address, not per source.
//! - **IPv6**: an IPv6 offender is counted and banned as its `ipv6_prefix` (a /64 by
//!   default: one host owns one), narrowed if that prefix holds an allowed address.
//! - **Escalation**: the ban length is `bantime * bantime_factor^n`, capped at
//!   `bantime_max`, where `n` counts earlier bans of the same target (by any jail,
//!   manual ones included) within the jail's `history`; with `permanent_after`
//!   earlier bans the ban is permanent. The engine keeps that history in memory,
//!   loaded from the store at start ([`Engine::restore_history`]).
//! - **Subnet escalation**: once `after` distinct targets inside one `/v4` (or
//!   `/v6`) prefix were banned within `within`, the prefix itself is banned (origin
//!   `subnet`). A subnet ban that would cover an allowed address is refused and
//!   logged; the single-address bans go on.
//! - **Timed access**: a jail with `ban_delay` schedules the ban that much later
//!   instead of banning at once; [`Engine::next_expiry`] and [`Engine::expire`] cover
//!   those scheduled bans too. Every change to the schedule is also handed out
//!   ([`Engine::take_schedule_changes`]) for the store, and a restart brings the
//!   schedule back ([`Engine::restore_scheduled`]).
//! - **Allowlist**: configured prefixes, resolved host names, the host's own
//!   addresses and loopback. Nothing allowed is ever banned by a jail or a subnet
//!   escalation, nor by a manual ban without `force`. When the allowlist grows, bans
//!   that now cover an allowed address are lifted, except forced ones.
//!
//! Memory is bounded whatever an attacker writes into a log: tracked addresses are
//! capped (`agent.max_tracked`, least recently seen evicted first, see
//! [`tracking`]), each keeps fewer hits per jail than the jail's threshold, banned
//! addresses are not tracked at all, and the ban history keeps at most
//! `max_tracked` entries and only as far back as some jail looks. Both per-address
//! tables are compact: about 40 bytes per tracked IPv4 address with one offence,
//! and a fixed-size record per ban (`bantable`: 32 bytes for IPv4) from which
//! [`Engine::bans`] rebuilds each [`Ban`] on demand.

pub mod allowlist;
mod bantable;
mod history;
mod tracking;

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ipnet::{IpNet, Ipv6Net};

use crate::addr;
use crate::config::{Config, JailConfig};
use crate::filter::Captures;
pub use allowlist::{AllowEntry, AllowEntryError, Allowlist};
use bantable::BanTable;
use history::History;
use tracking::{Hit, Tracker};

/// Why a ban exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// A jail's threshold was reached.
    Jail,
    /// `log2drop ban` from the control socket.
    Manual,
    /// A jail's subnet escalation: enough addresses inside the prefix were banned.
    Subnet,
    /// Another host of the fleet banned it and shared the ban through Redis
    /// (see [`crate::fleet`]); [`Ban::node`] names that host.
    Fleet,
}

impl Origin {
    /// The lowercase name used in the store, logs and the control protocol.
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Jail => "jail",
            Origin::Manual => "manual",
            Origin::Subnet => "subnet",
            Origin::Fleet => "fleet",
        }
    }

    /// The inverse of [`Origin::as_str`].
    pub fn parse(s: &str) -> Option<Origin> {
        [Origin::Jail, Origin::Manual, Origin::Subnet, Origin::Fleet]
            .into_iter()
            .find(|o| o.as_str() == s)
    }
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
    /// The offences behind a jail's ban; `None` for manual and subnet bans.
    pub reason: Option<BanReason>,
    /// Made with `log2drop ban --force` over the allowlist: the only kind of ban
    /// allowed to cover an allowed address. Kept on restore, reload and allowlist
    /// changes.
    pub forced: bool,
    /// The fleet host a remote ban came from (origin [`Origin::Fleet`]); `None`
    /// for this host's own bans.
    pub node: Option<Arc<str>>,
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
    /// That offence's named captures (the user tried...), bounded; attacker
    /// text, escaped wherever printed ([`crate::filter::capture`]).
    pub captures: Captures,
}

/// A ban asked for by hand (`log2drop ban`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ManualBan {
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

/// One past ban, as the store's history gives it back at start, so escalation
/// and subnet escalation remember bans from before a restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HistoryEntry {
    /// The banned address or prefix.
    pub target: IpNet,
    /// The jail that banned it (escalation counts bans by any jail).
    pub jail: Arc<str>,
    /// When the ban started.
    pub since: SystemTime,
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
pub(crate) const MANUAL_JAIL: &str = "manual";

/// The jail name bans received from the fleet are filed under; reserved in
/// config. Their backends are `fleet.backends`.
pub(crate) const FLEET_JAIL: &str = "fleet";

/// A ban another host published to the fleet, as it arrives here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteBan {
    /// Address or prefix.
    pub target: IpNet,
    /// The host that banned it.
    pub node: Arc<str>,
    /// When that host banned it.
    pub since: SystemTime,
    /// Its deadline there, kept here; `None` is permanent.
    pub until: Option<SystemTime>,
}

/// Why a remote ban was not enforced here. Each is counted by the fleet link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum FleetRefusal {
    /// It covers an allowlisted address or one of this host's own addresses.
    #[error("it overlaps the allowlist")]
    Allowlisted,
    /// Its prefix is wider than `fleet.accept_max_prefix`.
    #[error("its prefix is wider than fleet.accept_max_prefix")]
    TooWide,
}

/// How often [`Engine::expire`] sweeps out aged offence windows and old history.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// Longest ban escalation produces when a jail sets no `bantime_max`.
const MAX_BANTIME: Duration = Duration::from_secs(100 * 365 * 86_400);

/// Why the engine refused something.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// An `agent.allow` entry is neither an address, a prefix nor a host name.
    #[error("agent.allow entry {entry:?}: {source}")]
    Allow {
        /// The entry as written.
        entry: String,
        /// Why it was refused.
        #[source]
        source: AllowEntryError,
    },
    /// A manual ban would cover an allowlisted address.
    #[error(
        "refusing to ban {target}: it overlaps the allowlist entry {entry} (use --force to ban it anyway)"
    )]
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
    /// A ban on every address (`0.0.0.0/0`, `::/0`) would cut the host off.
    #[error(
        "refusing to ban {target}: it covers every address (the host would drop all its traffic)"
    )]
    Everything {
        /// The requested target.
        target: String,
    },
    /// `force` over the allowlist covers single addresses only: a prefix would hide
    /// more allowed hosts than the one the admin had in mind, and a forced prefix
    /// in a swapped database must not come back on restart.
    #[error(
        "refusing to ban {target}: it overlaps the allowlist entry {entry}, and --force bans \
         over the allowlist only single addresses, not prefixes"
    )]
    ForcedPrefix {
        /// The requested target.
        target: String,
        /// The allowlist entry it overlaps.
        entry: String,
    },
    /// More jails than offence records can name.
    #[error("{count} jails configured; at most {max} are supported")]
    TooManyJails {
        /// Jails configured.
        count: usize,
        /// The limit.
        max: usize,
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
    /// Offences ignored because the address is link-local, multicast, broadcast
    /// or unspecified ([`addr::never_banned`]).
    pub special_addresses: u64,
    /// Addresses (IPv6: prefixes) tracked right now.
    pub tracked: usize,
    /// Addresses forgotten because `max_tracked` was reached.
    pub evicted: u64,
    /// Bans issued by jails since start (subnet bans not included).
    pub jail_bans: u64,
    /// Subnet bans issued since start.
    pub subnet_bans: u64,
    /// Subnet bans refused because the prefix holds an allowed address.
    pub subnet_refused: u64,
    /// Jail and subnet bans made longer than `bantime` by earlier bans.
    pub escalated: u64,
    /// Jail and subnet bans made permanent by `permanent_after`.
    pub permanent: u64,
    /// Bans scheduled by `ban_delay` since start.
    pub delayed: u64,
    /// Bans scheduled by `ban_delay` and not yet in force.
    pub pending: usize,
    /// Bans lifted because the allowlist grew to cover them.
    pub allow_lifted: u64,
    /// Offences by host names, each counted once per address the name has.
    pub name_offences: u64,
    /// Offences by host names that counted nowhere: the name resolves to an
    /// allowlisted, own or special address.
    pub names_refused: u64,
    /// Bans lifted because they expired.
    pub expired: u64,
    /// Past bans remembered for escalation right now.
    pub history: usize,
    /// Past bans forgotten early because the history reached its cap.
    pub history_dropped: u64,
}

/// Subnet escalation of one jail.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Subnet {
    v4: u8,
    v6: u8,
    after: u32,
    within: Duration,
}

/// One jail's policy, as the engine uses it.
#[derive(Debug)]
struct Jail {
    name: Arc<str>,
    threshold: u32,
    findtime: u32,
    v6_len: u8,
    bantime: Duration,
    factor: f64,
    bantime_max: Option<Duration>,
    permanent_after: Option<u32>,
    history: Duration,
    subnet: Option<Subnet>,
    ban_delay: Option<Duration>,
    backends: Vec<String>,
    /// Offences by host names count here (`use_dns` is not `no`).
    names: bool,
}

impl Jail {
    fn build(name: &str, jc: &JailConfig, use_dns: crate::dns::UseDns) -> Jail {
        let threshold = jc.threshold.unwrap_or(jc.maxretry).max(1);
        let findtime = secs_of(jc.findtime.get());
        let v6_len = jc.ipv6_prefix.min(128);
        Jail {
            name: Arc::from(name),
            threshold,
            findtime,
            v6_len,
            bantime: jc.ban_length(),
            factor: if jc.bantime_factor.is_finite() {
                jc.bantime_factor.max(1.0)
            } else {
                1.0
            },
            bantime_max: jc.bantime_max.map(|d| d.get()),
            permanent_after: jc.permanent_after,
            history: jc.history.get(),
            subnet: jc.subnet.as_ref().map(|s| Subnet {
                v4: s.v4.min(32),
                v6: s.v6.min(128),
                after: s.after.max(1),
                within: s.within.get(),
            }),
            ban_delay: jc.delay(),
            backends: jc.backends.clone(),
            names: jc.use_dns.unwrap_or(use_dns).resolves(),
        }
    }

    fn escalates(&self) -> bool {
        self.factor > 1.0 || self.permanent_after.is_some()
    }

    /// The key this jail counts `addr` under: IPv6 truncated to `ipv6_prefix`.
    fn key(&self, addr: IpAddr) -> IpAddr {
        match addr {
            IpAddr::V6(a) => Ipv6Net::new(a, self.v6_len).map_or(addr, |n| IpAddr::V6(n.network())),
            v4 => v4,
        }
    }

    /// `bantime * factor^previous`, capped at `bantime_max` (or 100 years).
    fn ban_length(&self, previous: u32) -> Duration {
        let cap = self.bantime_max.unwrap_or(MAX_BANTIME).max(self.bantime);
        if previous == 0 || self.factor <= 1.0 {
            return self.bantime.min(cap);
        }
        let exp = i32::try_from(previous).unwrap_or(i32::MAX);
        let secs = self.bantime.as_secs_f64() * self.factor.powi(exp);
        if !secs.is_finite() || secs >= cap.as_secs_f64() {
            return cap;
        }
        // Whole milliseconds: finite, non-negative and below the cap here.
        Duration::from_millis((secs * 1000.0).round() as u64)
    }
}

/// A ban `ban_delay` scheduled for later, as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduledBan {
    /// The tracking key: the address, or its IPv6 prefix's first address.
    pub key: IpAddr,
    /// The jail that scheduled it.
    pub jail: Arc<str>,
    /// When it goes into force.
    pub due: SystemTime,
    /// What it will ban.
    pub target: IpNet,
    /// Why.
    pub reason: BanReason,
}

/// A change to the schedule of delayed bans, in the order it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScheduleChange {
    /// A ban was scheduled.
    Add(ScheduledBan),
    /// The ban scheduled for this key in this jail went into force or was
    /// dropped.
    Remove {
        /// Tracking key.
        key: IpAddr,
        /// Jail name.
        jail: Arc<str>,
    },
}

/// A ban `ban_delay` scheduled for later.
#[derive(Debug, Clone)]
struct Pending {
    due: SystemTime,
    target: IpNet,
    reason: BanReason,
}

/// The jails one filter feeds.
#[derive(Debug)]
struct Feeds {
    /// The filter's name, shared by the reasons of the bans it causes.
    name: Arc<str>,
    /// (jail index, weight) of every jail it feeds.
    jails: Vec<(u16, u16)>,
}

/// The parts of a config the engine runs on, built once per load or reload.
struct Settings {
    jails: Vec<Jail>,
    jails_by_filter: HashMap<String, Feeds>,
    static_allow: Vec<IpNet>,
    host_names: Vec<String>,
    own_enabled: bool,
    max_tracked: usize,
    max_findtime: u32,
    history_keep: Option<Duration>,
}

impl Settings {
    fn build(cfg: &Config) -> Result<Settings, EngineError> {
        let mut static_allow = Vec::with_capacity(cfg.agent.allow.len());
        let mut host_names = Vec::new();
        for entry in &cfg.agent.allow {
            match allowlist::parse_entry(entry) {
                Ok(AllowEntry::Net(net)) => static_allow.push(net),
                // Resolved by the daemon and handed in with `set_allow_hosts`.
                Ok(AllowEntry::Host(name)) => host_names.push(name),
                Err(source) => {
                    return Err(EngineError::Allow {
                        entry: entry.clone(),
                        source,
                    });
                }
            }
        }
        if cfg.jails.len() > usize::from(u16::MAX) {
            return Err(EngineError::TooManyJails {
                count: cfg.jails.len(),
                max: usize::from(u16::MAX),
            });
        }
        let mut jails = Vec::with_capacity(cfg.jails.len());
        let mut jails_by_filter: HashMap<String, Feeds> = HashMap::new();
        for (name, jc) in &cfg.jails {
            let idx = u16::try_from(jails.len()).unwrap_or(u16::MAX);
            for f in &jc.filters {
                let weight = jc
                    .weight
                    .get(f)
                    .copied()
                    .unwrap_or(1)
                    .clamp(1, u32::from(u16::MAX));
                let feeds = jails_by_filter.entry(f.clone()).or_insert_with(|| Feeds {
                    name: Arc::from(f.as_str()),
                    jails: Vec::new(),
                });
                if !feeds.jails.iter().any(|&(j, _)| j == idx) {
                    feeds
                        .jails
                        .push((idx, u16::try_from(weight).unwrap_or(u16::MAX)));
                }
            }
            jails.push(Jail::build(name, jc, cfg.dns.use_dns));
        }
        let max_findtime = jails.iter().map(|j| j.findtime).max().unwrap_or(0);
        let history_keep = jails
            .iter()
            .flat_map(|j| {
                let esc = j.escalates().then_some(j.history);
                let sub = j.subnet.map(|s| s.within);
                esc.into_iter().chain(sub)
            })
            .max();
        Ok(Settings {
            jails,
            jails_by_filter,
            static_allow,
            host_names,
            own_enabled: cfg.agent.allow_own_addresses,
            max_tracked: cfg.agent.max_tracked.max(1),
            max_findtime,
            history_keep,
        })
    }
}

/// The decision maker. See the module docs.
#[derive(Debug)]
pub struct Engine {
    jails: Vec<Jail>,
    /// Filter name -> the jails it feeds.
    jails_by_filter: HashMap<String, Feeds>,
    static_allow: Vec<IpNet>,
    /// The host names in `agent.allow`, as configured.
    host_names: Vec<String>,
    host_allow: Vec<IpNet>,
    /// Whether `set_allow_hosts` was called (reload carries old addresses if not).
    hosts_set: bool,
    own_allow: Vec<IpNet>,
    own_enabled: bool,
    allow: Allowlist,
    tracker: Tracker,
    max_findtime: u32,
    bans: BanTable,
    /// Scheduled bans by (tracking key, jail).
    pending: HashMap<(IpAddr, u16), Pending>,
    pending_due: BTreeSet<(SystemTime, IpAddr, u16)>,
    /// Changes to `pending` not yet taken for the store.
    schedule_changes: Vec<ScheduleChange>,
    history: History,
    /// How far back any jail looks; `None` keeps no history at all.
    history_keep: Option<Duration>,
    next_sweep: Option<SystemTime>,
    stats: EngineStats,
    /// Refused subnet bans can repeat with every ban in the prefix (a flood):
    /// logged at most once a minute, counted in `stats` every time.
    subnet_refused_log: crate::log_limit::LogLimit,
}

/// Seconds since the Unix epoch, saturating (offence times are kept in 32 bits).
fn secs(t: SystemTime) -> u32 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX))
}

fn secs_of(d: Duration) -> u32 {
    u32::try_from(d.as_secs()).unwrap_or(u32::MAX)
}

impl Engine {
    /// Builds the engine for a validated config. Loopback is always allowlisted,
    /// on top of `agent.allow`; host names in `agent.allow` allow nothing until
    /// [`Engine::set_allow_hosts`] hands in their addresses, and the host's own
    /// addresses nothing until [`Engine::set_own_addresses`].
    pub fn from_config(cfg: &Config) -> Result<Engine, EngineError> {
        let s = Settings::build(cfg)?;
        Ok(Engine {
            allow: Allowlist::with_loopback(s.static_allow.iter().copied()),
            jails: s.jails,
            jails_by_filter: s.jails_by_filter,
            static_allow: s.static_allow,
            host_names: s.host_names,
            host_allow: Vec::new(),
            hosts_set: false,
            own_allow: Vec::new(),
            own_enabled: s.own_enabled,
            tracker: Tracker::new(s.max_tracked),
            max_findtime: s.max_findtime,
            bans: BanTable::new(),
            pending: HashMap::new(),
            pending_due: BTreeSet::new(),
            schedule_changes: Vec::new(),
            history: History::new(s.max_tracked),
            history_keep: s.history_keep,
            next_sweep: None,
            stats: EngineStats::default(),
            subnet_refused_log: crate::log_limit::LogLimit::default(),
        })
    }

    /// Takes over the live state of `old`, the engine of the previous config, into
    /// this one, freshly built from the new config (reload). Every ban and the ban
    /// history are kept, except bans the new allowlist now covers (not forced):
    /// their unbans go to `out`. Offence counts are kept for the jails named in
    /// `keep_jails` (their config did not change) and dropped for the others;
    /// scheduled bans follow their jail by name; counters carry on. The host's own
    /// addresses carry over (when still wanted), and so do resolved host names if
    /// the new config names the same hosts and [`Engine::set_allow_hosts`] was not
    /// called on this engine yet.
    pub(crate) fn carry_over(
        &mut self,
        old: Engine,
        keep_jails: &BTreeSet<String>,
        out: &mut Vec<Decision>,
    ) {
        let Engine {
            jails: old_jails,
            mut tracker,
            bans: old_bans,
            pending: old_pending,
            schedule_changes: old_changes,
            mut history,
            host_names: old_host_names,
            host_allow: old_host_allow,
            own_allow: old_own_allow,
            stats,
            ..
        } = old;
        self.stats = stats;
        // The table moves over whole; the new config's allowlist applies to it
        // below (rebuild_allow).
        if self.bans.len() == 0 {
            self.bans = old_bans;
        } else {
            for ban in old_bans.iter() {
                self.insert_ban(&ban);
            }
        }
        // Old jail index -> new index: for hits only if the jail is kept, for
        // scheduled bans whenever the name still exists.
        let by_name = |keep: bool| -> Vec<Option<u16>> {
            old_jails
                .iter()
                .map(|o| {
                    if keep && !keep_jails.contains(&*o.name) {
                        return None;
                    }
                    self.jails
                        .iter()
                        .position(|n| n.name == o.name)
                        .and_then(|i| u16::try_from(i).ok())
                })
                .collect()
        };
        let hits_map = by_name(true);
        let pending_map = by_name(false);
        tracker.retain_hits(
            |h| match hits_map.get(usize::from(h.jail)).copied().flatten() {
                Some(j) => {
                    h.jail = j;
                    true
                }
                None => false,
            },
        );
        tracker.set_cap(self.tracker.cap());
        self.tracker = tracker;
        self.schedule_changes = old_changes;
        for ((key, j), p) in old_pending {
            if let Some(nj) = pending_map.get(usize::from(j)).copied().flatten() {
                self.pending_due.insert((p.due, key, nj));
                self.pending.insert((key, nj), p);
            } else if let Some(old) = old_jails.get(usize::from(j)) {
                self.schedule_changes.push(ScheduleChange::Remove {
                    key,
                    jail: old.name.clone(),
                });
            }
        }
        if self.history_keep.is_some() {
            history.set_cap(self.history.cap());
            self.history = history;
        }
        if self.own_enabled {
            self.own_allow = old_own_allow;
        }
        if !self.hosts_set && self.host_names == old_host_names {
            self.host_allow = old_host_allow;
        }
        self.rebuild_allow(out);
    }

    /// Records that `filter` saw `addr` misbehave at `now`; pushes a ban decision
    /// to `out` when a jail's threshold is reached (and, for jails with subnet
    /// escalation, the prefix ban it may cause). Allowlisted and already banned
    /// addresses are ignored.
    pub fn offence(
        &mut self,
        filter: &str,
        addr: IpAddr,
        now: SystemTime,
        out: &mut Vec<Decision>,
    ) {
        self.offence_with(filter, addr, now, &Captures::new(), out);
    }

    /// [`Engine::offence`] with the line's named captures: a ban this offence
    /// causes carries them in its reason. They are cloned only when a ban fires.
    pub(crate) fn offence_with(
        &mut self,
        filter: &str,
        addr: IpAddr,
        now: SystemTime,
        captures: &Captures,
        out: &mut Vec<Decision>,
    ) {
        self.offence_by(filter, addr, false, now, captures, out);
    }

    /// Records an offence by a host name (a filter's `<HOST>` matched a name,
    /// `use_dns`) that resolved to `addrs`: one offence for each address, in the
    /// jails whose `use_dns` is not `no`, each carrying the line's `captures`.
    /// The name's owner chooses what it resolves to, so if any address is
    /// allowlisted (loopback, the host's own, `agent.allow`) or never banned
    /// (link-local, multicast...), none counts: a name pointing at us and at a
    /// victim must get nobody banned. Returns that address, if any.
    pub(crate) fn offence_by_name(
        &mut self,
        filter: &str,
        addrs: &[IpAddr],
        now: SystemTime,
        captures: &Captures,
        out: &mut Vec<Decision>,
    ) -> Option<IpAddr> {
        let refused = addrs
            .iter()
            .map(|a| addr::normalise(*a))
            .find(|a| addr::never_banned(*a).is_some() || self.allow.contains(*a));
        if let Some(a) = refused {
            self.stats.offences += 1;
            self.stats.names_refused += 1;
            return Some(a);
        }
        for a in addrs {
            self.stats.name_offences += 1;
            self.offence_by(filter, *a, true, now, captures, out);
        }
        None
    }

    fn offence_by(
        &mut self,
        filter: &str,
        addr: IpAddr,
        by_name: bool,
        now: SystemTime,
        captures: &Captures,
        out: &mut Vec<Decision>,
    ) {
        self.stats.offences += 1;
        let addr = addr::normalise(addr);
        if addr::never_banned(addr).is_some() {
            self.stats.special_addresses += 1;
            return;
        }
        if self.allow.contains(addr) {
            self.stats.allowlisted += 1;
            return;
        }
        if self.is_banned(addr) {
            self.stats.already_banned += 1;
            return;
        }
        let Some(feeds) = self.jails_by_filter.get(filter) else {
            return;
        };
        let t = secs(now);
        let mut fire = None;
        for &(j, weight) in &feeds.jails {
            let Some(jail) = self.jails.get(usize::from(j)) else {
                continue;
            };
            if by_name && !jail.names {
                continue;
            }
            let key = jail.key(addr);
            if !self.pending.is_empty() && self.pending.contains_key(&(key, j)) {
                continue;
            }
            let horizon = t.saturating_sub(jail.findtime);
            let hit = Hit {
                time: t,
                jail: j,
                weight,
            };
            let (score, first) = self.tracker.record(key, hit, horizon);
            if score < jail.threshold {
                continue;
            }
            let reason = BanReason {
                filter: feeds.name.clone(),
                first_offence: UNIX_EPOCH + Duration::from_secs(u64::from(first)),
                last_offence: now,
                captures: captures.clone(),
            };
            let Some(delay) = jail.ban_delay else {
                fire = Some((j, key, reason));
                break;
            };
            self.tracker.clear_jail(&key, j);
            let target = ban_target(jail, addr, &self.allow);
            let due = now.checked_add(delay).unwrap_or(now);
            self.schedule_changes
                .push(ScheduleChange::Add(ScheduledBan {
                    key,
                    jail: jail.name.clone(),
                    due,
                    target,
                    reason: reason.clone(),
                }));
            self.pending.insert(
                (key, j),
                Pending {
                    due,
                    target,
                    reason,
                },
            );
            self.pending_due.insert((due, key, j));
            self.stats.delayed += 1;
        }
        if let Some((j, key, reason)) = fire {
            // The address starts from zero after its ban, in every jail.
            self.tracker.remove(&key);
            if key != addr {
                self.tracker.remove(&addr);
            }
            let target = ban_target(&self.jails[usize::from(j)], addr, &self.allow);
            self.jail_ban(usize::from(j), target, Some(reason), now, out);
        }
    }

    /// The jails `filter` feeds, comma separated (empty when none).
    pub(crate) fn jails_of(&self, filter: &str) -> String {
        self.jails_by_filter
            .get(filter)
            .map(|f| {
                f.jails
                    .iter()
                    .filter_map(|&(j, _)| self.jails.get(usize::from(j)))
                    .map(|j| &*j.name)
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default()
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
    /// allowlist (`force`, logged; the ban is marked `forced`). Banning a target
    /// that is already banned replaces that ban. Manual bans count as earlier bans
    /// for escalation.
    pub(crate) fn manual_ban(
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
        if target.prefix_len() == 0 {
            return Err(EngineError::Everything { target: shown() });
        }
        let mut forced = false;
        if self.allow.intersects(&target) {
            let entry = self.allow.entry_intersecting(&target).unwrap_or(target);
            if req.force && target.prefix_len() != target.max_prefix_len() {
                return Err(EngineError::ForcedPrefix {
                    target: shown(),
                    entry: addr::display_target(&entry),
                });
            }
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
            forced = true;
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
            forced,
            node: None,
        };
        if target.prefix_len() == target.max_prefix_len() {
            self.tracker.remove(&target.addr());
        }
        self.insert_ban(&ban);
        self.remember(target, now);
        Ok(Decision::Ban(ban))
    }

    /// Lifts the ban on exactly `target`, if there is one.
    pub fn unban(&mut self, target: IpNet) -> Option<Decision> {
        self.remove_ban(&normalise_net(target)).map(Decision::Unban)
    }

    /// Enforces a ban another host shared, under [`FLEET_JAIL`] with origin
    /// [`Origin::Fleet`] and the remote deadline. Refused when it overlaps the
    /// allowlist (own addresses and loopback included) or is wider than
    /// `max_prefix` (IPv4, IPv6 prefix lengths). `Ok(None)` when nothing changes:
    /// already expired, already covered by a ban at least as long, or banned here
    /// by this host itself (a local ban is never replaced by a remote one).
    pub(crate) fn fleet_ban(
        &mut self,
        remote: &RemoteBan,
        max_prefix: (u8, u8),
        now: SystemTime,
    ) -> Result<Option<Decision>, FleetRefusal> {
        let target = normalise_net(remote.target);
        let limit = if target.addr().is_ipv4() {
            max_prefix.0
        } else {
            max_prefix.1
        };
        if target.prefix_len() < limit || target.prefix_len() == 0 {
            return Err(FleetRefusal::TooWide);
        }
        if self.allow.intersects(&target) {
            return Err(FleetRefusal::Allowlisted);
        }
        if remote.until.is_some_and(|u| u <= now) {
            return Ok(None);
        }
        if let Some(existing) = self.bans.get(&target) {
            let longer = match (existing.until, remote.until) {
                (None, _) => false,
                (Some(_), None) => true,
                (Some(a), Some(b)) => b > a,
            };
            if existing.origin != Origin::Fleet || !longer {
                return Ok(None);
            }
        } else if self.covered(&target) {
            return Ok(None);
        }
        let ban = Ban {
            target,
            jail: Arc::from(FLEET_JAIL),
            since: remote.since,
            until: remote.until,
            origin: Origin::Fleet,
            reason: None,
            forced: false,
            node: Some(remote.node.clone()),
        };
        if target.prefix_len() == target.max_prefix_len() {
            self.tracker.remove(&target.addr());
        }
        self.insert_ban(&ban);
        Ok(Some(Decision::Ban(ban)))
    }

    /// Lifts the fleet's ban on exactly `target` when `node` shared it; with
    /// `node` `None` (`unban --fleet` somewhere in the fleet) lifts whatever ban
    /// is on `target`, this host's own included.
    pub(crate) fn fleet_unban(&mut self, target: IpNet, node: Option<&str>) -> Option<Decision> {
        let target = normalise_net(target);
        let ban = self.bans.get(&target)?;
        let lift = match node {
            None => true,
            Some(n) => ban.origin == Origin::Fleet && ban.node.as_deref() == Some(n),
        };
        if !lift {
            return None;
        }
        self.remove_ban(&target).map(Decision::Unban)
    }

    /// Puts bans scheduled by `ban_delay` that are due into force, lifts every ban
    /// whose deadline is at or before `now`, and now and then forgets offence
    /// windows and history that aged out.
    pub fn expire(&mut self, now: SystemTime, out: &mut Vec<Decision>) {
        while let Some(&(due, key, j)) = self.pending_due.first() {
            if due > now {
                break;
            }
            self.pending_due.pop_first();
            let Some(p) = self.pending.remove(&(key, j)) else {
                continue;
            };
            if let Some(jail) = self.jails.get(usize::from(j)) {
                self.schedule_changes.push(ScheduleChange::Remove {
                    key,
                    jail: jail.name.clone(),
                });
            }
            if self.allow.intersects(&p.target) {
                tracing::info!(
                    target = %addr::display_target(&p.target),
                    "dropping a delayed ban: the address is allowlisted now"
                );
                continue;
            }
            if self.covered(&p.target) || usize::from(j) >= self.jails.len() {
                continue;
            }
            self.jail_ban(usize::from(j), p.target, Some(p.reason), now, out);
        }
        for target in self.bans.due(now) {
            if let Some(ban) = self.remove_ban(&target) {
                self.stats.expired += 1;
                out.push(Decision::Unban(ban));
            }
        }
        if self.next_sweep.is_none_or(|t| now >= t) {
            self.sweep(now);
            self.next_sweep = now.checked_add(SWEEP_EVERY);
        }
    }

    /// When [`Engine::expire`] next has something to do: the earliest ban
    /// deadline or scheduled ban.
    pub(crate) fn next_expiry(&self) -> Option<SystemTime> {
        let deadline = self.bans.next_deadline();
        let due = self.pending_due.first().map(|(t, _, _)| *t);
        match (deadline, due) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Every active ban, in no particular order. The engine keeps bans compact
    /// and rebuilds each one as it is yielded.
    pub fn bans(&self) -> impl Iterator<Item = Ban> + '_ {
        self.bans.iter()
    }

    /// How many bans are active.
    pub fn ban_count(&self) -> usize {
        self.bans.len()
    }

    /// Active bans per jail name (manual bans under [`MANUAL_JAIL`]); jails with
    /// none are absent.
    pub(crate) fn bans_per_jail(&self) -> impl Iterator<Item = (&str, usize)> {
        self.bans.per_jail()
    }

    /// The active ban on exactly `target`, if any.
    pub(crate) fn ban_on(&self, target: IpNet) -> Option<Ban> {
        self.bans.get(&normalise_net(target))
    }

    /// Loads bans from the store at start, one at a time (the store streams them).
    /// Expired bans are dropped, and so are bans that overlap the allowlist (the
    /// allowlist may have grown since) unless they were forced: those are
    /// returned, so the caller can record that they ended. The caller reconciles
    /// backends with [`Engine::bans`] afterwards, which removes them from the
    /// kernel too. No decisions are produced.
    pub fn restore(&mut self, bans: impl IntoIterator<Item = Ban>, now: SystemTime) -> Vec<Ban> {
        let mut refused = Vec::new();
        for ban in bans {
            if let Some(b) = self.restore_one(ban, now) {
                refused.push(b);
            }
        }
        refused
    }

    /// [`Engine::restore`] for one ban; returns it if the allowlist refused it.
    pub(crate) fn restore_one(&mut self, mut ban: Ban, now: SystemTime) -> Option<Ban> {
        if ban.until.is_some_and(|u| u <= now) {
            return None;
        }
        let stored = ban.target;
        ban.target = normalise_net(ban.target);
        // The store is trusted no further than the engine would trust a request:
        // a ban on everything is never restored, and one over the allowlist only
        // when it is a forced single address (what `ban --force` can make).
        if ban.target.prefix_len() == 0 {
            tracing::warn!(
                target = %addr::display_target(&ban.target),
                "dropping a stored ban on every address"
            );
            ban.target = stored;
            return Some(ban);
        }
        let single = ban.target.prefix_len() == ban.target.max_prefix_len();
        if !(ban.forced && single)
            && let Some(entry) = self.allow.entry_intersecting(&ban.target)
        {
            tracing::warn!(
                target = %addr::display_target(&ban.target),
                allow = %addr::display_target(&entry),
                forced = ban.forced,
                "dropping a stored ban that overlaps the allowlist"
            );
            ban.target = stored;
            return Some(ban);
        }
        if let Some(existing) = self.bans.until_of(&ban.target) {
            let longer = match (existing, ban.until) {
                (None, _) => false,
                (Some(_), None) => true,
                (Some(a), Some(b)) => b > a,
            };
            if !longer {
                return None;
            }
        }
        if ban.target.prefix_len() == ban.target.max_prefix_len() {
            self.tracker.remove(&ban.target.addr());
        }
        self.insert_ban(&ban);
        None
    }

    /// Whether schedule changes wait for [`Engine::take_schedule_changes`].
    pub fn has_schedule_changes(&self) -> bool {
        !self.schedule_changes.is_empty()
    }

    /// Changes to the schedule of delayed bans since the last call, for the
    /// store: recorded with the decisions of the same batch, so a restart
    /// neither forgets a scheduled ban nor brings back one already in force.
    pub(crate) fn take_schedule_changes(&mut self) -> Vec<ScheduleChange> {
        std::mem::take(&mut self.schedule_changes)
    }

    /// Brings back bans scheduled before a restart. One whose jail is gone or
    /// no longer delays is dropped (and its removal handed out for the store);
    /// one that fell due while the agent was down goes into force at the next
    /// [`Engine::expire`]. The allowlist is applied then too.
    pub(crate) fn restore_scheduled(&mut self, list: Vec<ScheduledBan>) {
        for b in list {
            let j = self
                .jails
                .iter()
                .position(|j| j.name == b.jail && j.ban_delay.is_some())
                .and_then(|j| u16::try_from(j).ok());
            let Some(j) = j else {
                self.schedule_changes.push(ScheduleChange::Remove {
                    key: b.key,
                    jail: b.jail,
                });
                continue;
            };
            self.pending_due.insert((b.due, b.key, j));
            self.pending.insert(
                (b.key, j),
                Pending {
                    due: b.due,
                    target: b.target,
                    reason: b.reason,
                },
            );
        }
    }

    /// Loads past bans (from the store's history) so escalation and subnet
    /// escalation count bans from before a restart. Entries older than any jail
    /// looks back are skipped; call once at start, before offences arrive.
    pub(crate) fn restore_history(&mut self, mut entries: Vec<HistoryEntry>, now: SystemTime) {
        let Some(keep) = self.history_keep else {
            return;
        };
        let horizon = now.checked_sub(keep).unwrap_or(UNIX_EPOCH);
        entries.retain(|e| e.since >= horizon);
        entries.sort_by_key(|e| e.since);
        for e in entries {
            self.history.record(normalise_net(e.target), secs(e.since));
        }
    }

    /// How far back the engine needs ban history: the longest `history` of a jail
    /// that escalates, or `within` of a subnet escalation; `None` when no jail
    /// looks back (the daemon then need not load any).
    pub(crate) fn history_window(&self) -> Option<Duration> {
        self.history_keep
    }

    /// Replaces the host's own addresses in the allowlist (from rtnetlink, see
    /// [`crate::ownaddrs`]); ignored when `agent.allow_own_addresses = false`.
    /// Bans now covering an own address are lifted into `out` (forced ones stay).
    pub(crate) fn set_own_addresses(&mut self, addrs: Vec<IpAddr>, out: &mut Vec<Decision>) {
        if !self.own_enabled {
            return;
        }
        let mut nets: Vec<IpNet> = addrs
            .into_iter()
            .map(|a| IpNet::from(addr::normalise(a)))
            .collect();
        nets.sort_unstable();
        nets.dedup();
        if nets == self.own_allow {
            return;
        }
        self.own_allow = nets;
        self.rebuild_allow(out);
    }

    /// Replaces the resolved addresses of `agent.allow` host names (the daemon
    /// resolves them at start and reload). Bans now covering one are lifted into
    /// `out` (forced ones stay).
    pub fn set_allow_hosts(&mut self, nets: Vec<IpNet>, out: &mut Vec<Decision>) {
        self.host_allow = nets.into_iter().map(normalise_net).collect();
        self.hosts_set = true;
        self.rebuild_allow(out);
    }

    /// The backends that enforce `jail`'s bans; empty means every backend (also
    /// for manual bans and jails no longer configured).
    pub(crate) fn jail_backends(&self, jail: &str) -> &[String] {
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
            tracked: self.tracker.len(),
            evicted: self.tracker.evicted(),
            pending: self.pending.len(),
            history: self.history.len(),
            history_dropped: self.history.dropped(),
            ..self.stats
        }
    }

    /// True if a ban covers `addr` (its own, or a prefix containing it).
    pub(crate) fn is_banned(&self, addr: IpAddr) -> bool {
        self.covered(&IpNet::from(addr::normalise(addr)))
    }

    /// True if one ban covers all of `net` (the same target or a wider one).
    fn covered(&self, net: &IpNet) -> bool {
        let v6 = net.addr().is_ipv6();
        self.bans.lens_up_to(v6, net.prefix_len()).any(|len| {
            IpNet::new(net.addr(), len)
                .map(|n| self.bans.contains(&n.trunc()))
                .unwrap_or(false)
        })
    }

    /// Issues a ban of `target` by jail `j`, escalated by the target's history:
    /// a jail ban when there is a `reason`, a subnet ban when not. After a jail
    /// ban, checks the jail's subnet escalation.
    fn jail_ban(
        &mut self,
        j: usize,
        target: IpNet,
        reason: Option<BanReason>,
        now: SystemTime,
        out: &mut Vec<Decision>,
    ) {
        let origin = if reason.is_some() {
            Origin::Jail
        } else {
            Origin::Subnet
        };
        let Some(jail) = self.jails.get(j) else {
            return;
        };
        let previous = if jail.escalates() {
            let since = now.checked_sub(jail.history).unwrap_or(UNIX_EPOCH);
            self.history.count(&target, secs(since))
        } else {
            0
        };
        let permanent = jail.permanent_after.is_some_and(|n| previous >= n);
        let until = if permanent {
            None
        } else {
            let length = jail.ban_length(previous);
            if length > jail.bantime {
                self.stats.escalated += 1;
            }
            now.checked_add(length)
        };
        if permanent {
            self.stats.permanent += 1;
        }
        if previous > 0 {
            tracing::debug!(
                target = %addr::display_target(&target),
                jail = %jail.name,
                previous,
                permanent,
                "repeat offender: ban escalated"
            );
        }
        let ban = Ban {
            target,
            jail: jail.name.clone(),
            since: now,
            until,
            origin,
            reason,
            forced: false,
            node: None,
        };
        match origin {
            Origin::Subnet => self.stats.subnet_bans += 1,
            _ => self.stats.jail_bans += 1,
        }
        self.insert_ban(&ban);
        self.remember(target, now);
        out.push(Decision::Ban(ban));
        if origin == Origin::Jail {
            self.subnet_escalation(j, target, now, out);
        }
    }

    /// Bans the jail's subnet around `target` if enough addresses inside it were
    /// banned lately; refuses (and logs) a prefix that holds an allowed address.
    fn subnet_escalation(
        &mut self,
        j: usize,
        target: IpNet,
        now: SystemTime,
        out: &mut Vec<Decision>,
    ) {
        let Some(sub) = self.jails.get(j).and_then(|jail| jail.subnet) else {
            return;
        };
        let len = if target.addr().is_ipv4() {
            sub.v4
        } else {
            sub.v6
        };
        if target.prefix_len() <= len {
            return;
        }
        let Ok(prefix) = IpNet::new(target.addr(), len).map(|n| n.trunc()) else {
            return;
        };
        if self.covered(&prefix) {
            return;
        }
        let since = secs(now.checked_sub(sub.within).unwrap_or(UNIX_EPOCH));
        let banned = self.history.distinct_inside(&prefix, since, sub.after);
        if banned < sub.after {
            return;
        }
        if self.allow.intersects(&prefix) {
            let entry = self.allow.entry_intersecting(&prefix).unwrap_or(prefix);
            if let Some(left_out) = self.subnet_refused_log.allow(now) {
                tracing::warn!(
                    prefix = %addr::display_target(&prefix),
                    allow = %addr::display_target(&entry),
                    banned,
                    left_out,
                    "refusing a subnet ban: the prefix holds an allowlisted address; its addresses stay banned one by one (logged at most once a minute; left_out counts the others)"
                );
            }
            self.stats.subnet_refused += 1;
            return;
        }
        self.jail_ban(j, prefix, None, now, out);
    }

    /// Adds a ban to the history, if any jail looks back.
    fn remember(&mut self, target: IpNet, now: SystemTime) {
        if self.history_keep.is_some() {
            self.history.record(target, secs(now));
        }
    }

    /// Rebuilds the allowlist from its parts and lifts the bans (and drops the
    /// scheduled bans) it now covers; forced bans stay.
    fn rebuild_allow(&mut self, out: &mut Vec<Decision>) {
        let nets = self
            .static_allow
            .iter()
            .chain(&self.host_allow)
            .chain(&self.own_allow)
            .copied();
        self.allow = Allowlist::with_loopback(nets);
        let allow = &self.allow;
        let mut lifted: Vec<IpNet> = self
            .bans
            .targets_where(|target, forced| !forced && allow.intersects(target));
        lifted.sort_unstable();
        for target in lifted {
            if let Some(ban) = self.remove_ban(&target) {
                let entry = self.allow.entry_intersecting(&target).unwrap_or(target);
                tracing::warn!(
                    target = %addr::display_target(&target),
                    allow = %addr::display_target(&entry),
                    jail = %ban.jail,
                    "lifting a ban: the allowlist covers it now"
                );
                self.stats.allow_lifted += 1;
                out.push(Decision::Unban(ban));
            }
        }
        let allow = &self.allow;
        let due = &mut self.pending_due;
        let jails = &self.jails;
        let changes = &mut self.schedule_changes;
        self.pending.retain(|&(key, j), p| {
            let keep = !allow.intersects(&p.target);
            if !keep {
                due.remove(&(p.due, key, j));
                if let Some(jail) = jails.get(usize::from(j)) {
                    changes.push(ScheduleChange::Remove {
                        key,
                        jail: jail.name.clone(),
                    });
                }
            }
            keep
        });
    }

    fn sweep(&mut self, now: SystemTime) {
        self.tracker
            .sweep(secs(now).saturating_sub(self.max_findtime));
        if let Some(keep) = self.history_keep {
            let horizon = now.checked_sub(keep).unwrap_or(UNIX_EPOCH);
            self.history.prune(secs(horizon));
        }
    }

    fn insert_ban(&mut self, ban: &Ban) {
        self.bans.insert(ban);
    }

    fn remove_ban(&mut self, target: &IpNet) -> Option<Ban> {
        self.bans.remove(target)
    }
}

/// What a jail bans for an offence by `addr`: IPv4 as is; IPv6 as its
/// `ipv6_prefix`, narrowed just enough to leave allowed neighbours out.
fn ban_target(jail: &Jail, addr: IpAddr, allow: &Allowlist) -> IpNet {
    match addr {
        IpAddr::V4(_) => IpNet::from(addr),
        IpAddr::V6(_) => allow
            .widest_clear_prefix(addr, jail.v6_len)
            .unwrap_or_else(|| IpNet::from(addr)),
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
mod decision_tests;
#[cfg(test)]
mod tests;
