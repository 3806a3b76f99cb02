//! What the kernel enforced, as seen from outside the agent: a watcher polls the
//! pinned exact-address maps and the nftables address sets and records, per
//! address, when its ban was first seen in force and its kernel deadline. Those
//! observations are the "applied bans" every later check holds the agent to, and a
//! ban that vanishes from the kernel before its deadline, moves its deadline, or
//! comes back after it ended is a failure recorded the moment it is seen, whatever
//! the agent was doing.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;

/// Slack on a kernel deadline before a difference counts: the agent converts a wall
/// deadline to `CLOCK_MONOTONIC` from two clock readings that a loaded machine can
/// take apart. This tolerates a skewed conversion; it is not a speed requirement.
pub const TOLERANCE_NS: u64 = 1_000_000_000;

/// `CLOCK_MONOTONIC` now, in nanoseconds: the clock of the program's deadlines.
pub fn mono_ns() -> u64 {
    let ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .expect("CLOCK_MONOTONIC is always readable");
    u64::try_from(ts.tv_sec()).unwrap_or(0) * 1_000_000_000
        + u64::try_from(ts.tv_nsec()).unwrap_or(0)
}

/// Whether a deadline (0 = permanent) is still ahead of `now_ns`.
pub fn live(deadline_ns: u64, now_ns: u64) -> bool {
    deadline_ns == 0 || deadline_ns > now_ns
}

/// One address's ban as the kernel held it.
#[derive(Debug, Clone, Copy)]
pub struct Seen {
    /// When the watcher first saw it in force (at or after it was applied).
    pub first_seen_ns: u64,
    /// Its kernel deadline then (0 = permanent).
    pub deadline_ns: u64,
    /// Whether it has left the map (or expired) since.
    pub gone: bool,
}

/// Where the agent was when something happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Phase {
    /// Spawned, not answering on its socket yet.
    Starting,
    /// Answering on its socket.
    Running,
    /// Killed, not restarted yet.
    Dead,
}

impl Phase {
    pub fn from_u8(v: u8) -> Phase {
        match v {
            0 => Phase::Starting,
            1 => Phase::Running,
            _ => Phase::Dead,
        }
    }
    pub fn as_u8(self) -> u8 {
        match self {
            Phase::Starting => 0,
            Phase::Running => 1,
            Phase::Dead => 2,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Phase::Starting => "starting",
            Phase::Running => "running",
            Phase::Dead => "dead",
        }
    }
}

/// A failure, with where it was seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Failure {
    /// A ban in force left the kernel map before its deadline.
    LostFromKernel,
    /// A ban in force before a kill is missing from the crashed database.
    LostFromStoreAtCrash,
    /// A ban in force is missing from the database after a restart.
    LostFromStore,
    /// A ban in force is missing from `bans --json` after a restart.
    LostFromListing,
    /// A ban's kernel deadline moved by more than the tolerance.
    DeadlineMoved,
    /// The database's deadline differs from the kernel's by more than the tolerance.
    StoreDeadlineDiffers,
    /// A database row whose deadline passed before the agent started.
    KeptExpiredStore,
    /// An address listed by `bans --json` although its ban ended before the start.
    KeptExpiredListing,
    /// A kernel entry whose deadline passed before the agent started, still in the
    /// map once the agent answered (reconciliation removes those).
    KeptExpiredKernel,
    /// A ban came back after it had ended: its lines were read twice.
    BannedAgain,
    /// An address with fewer offences than `maxretry` was banned.
    FalseBan,
    /// An address given `maxretry` offences after the agent first answered was
    /// never banned: its lines were lost.
    NeverBanned,
    /// A packet from an address banned in the kernel reached the server's socket.
    PacketPassed,
    /// `PRAGMA integrity_check` did not say `ok`.
    IntegrityCheck,
    /// The agent exited on its own, or never answered, or a client command failed.
    AgentFailed,
}

impl Failure {
    pub fn name(self) -> &'static str {
        match self {
            Failure::LostFromKernel => "applied ban left the kernel before its deadline",
            Failure::LostFromStoreAtCrash => "applied ban missing from the crashed database",
            Failure::LostFromStore => "applied ban missing from the database after restart",
            Failure::LostFromListing => "applied ban missing from `bans --json` after restart",
            Failure::DeadlineMoved => "kernel deadline moved",
            Failure::StoreDeadlineDiffers => "database deadline differs from the kernel's",
            Failure::KeptExpiredStore => "expired ban kept in the database",
            Failure::KeptExpiredListing => "expired ban kept in `bans --json`",
            Failure::KeptExpiredKernel => "expired ban kept in the kernel map",
            Failure::BannedAgain => "ban applied again after it ended (lines read twice)",
            Failure::FalseBan => "address banned below maxretry",
            Failure::NeverBanned => "ban never applied (offence lines lost)",
            Failure::PacketPassed => "packet from a banned address passed",
            Failure::IntegrityCheck => "store integrity check not ok",
            Failure::AgentFailed => "agent failed (exited, no answer, client error)",
        }
    }
}

/// One failure instance, kept for the report.
#[derive(Debug, Clone)]
pub struct Event {
    pub failure: Failure,
    pub cycle: u32,
    pub phase: Phase,
    pub detail: String,
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cycle {} ({}): {}: {}",
            self.cycle,
            self.phase.name(),
            self.failure.name(),
            self.detail
        )
    }
}

/// Every ban the kernel was seen holding, and what went wrong with them.
#[derive(Debug, Default)]
pub struct Ledger {
    pub seen: HashMap<IpAddr, Seen>,
    /// Bans seen to reach their deadline (in the map or not).
    pub expired: u64,
    /// Of those, while the agent was dead.
    pub expired_while_dead: u64,
    /// Map polls done.
    pub polls: u64,
}

impl Ledger {
    /// Takes one poll of the map (`entries`, read at about `now_ns`) into account,
    /// returning the failures it shows.
    pub fn observe(
        &mut self,
        entries: &[(IpAddr, u64)],
        now_ns: u64,
        cycle: u32,
        phase: Phase,
    ) -> Vec<Event> {
        self.polls += 1;
        let mut events = Vec::new();
        let mut present: HashMap<IpAddr, u64> = HashMap::with_capacity(entries.len());
        for &(addr, deadline) in entries {
            if live(deadline, now_ns) {
                present.insert(addr, deadline);
            }
        }
        for (&addr, &deadline) in &present {
            match self.seen.get_mut(&addr) {
                None => {
                    self.seen.insert(
                        addr,
                        Seen {
                            first_seen_ns: now_ns,
                            deadline_ns: deadline,
                            gone: false,
                        },
                    );
                }
                // Back with its own deadline: restored after a loss (reported
                // when it left), not a new ban.
                Some(s) if s.gone && s.deadline_ns.abs_diff(deadline) <= TOLERANCE_NS => {
                    s.gone = false;
                }
                Some(s) if s.gone => {
                    events.push(Event {
                        failure: Failure::BannedAgain,
                        cycle,
                        phase,
                        detail: format!(
                            "{addr}: in force again with {} s left, its first ban ended",
                            secs_left(deadline, now_ns)
                        ),
                    });
                    *s = Seen {
                        first_seen_ns: now_ns,
                        deadline_ns: deadline,
                        gone: false,
                    };
                }
                Some(s) if s.deadline_ns.abs_diff(deadline) > TOLERANCE_NS => {
                    events.push(Event {
                        failure: Failure::DeadlineMoved,
                        cycle,
                        phase,
                        detail: format!(
                            "{addr}: deadline moved by {:+.3} s",
                            (deadline as f64 - s.deadline_ns as f64) / 1e9
                        ),
                    });
                    s.deadline_ns = deadline;
                }
                Some(_) => {}
            }
        }
        for (addr, s) in self.seen.iter_mut().filter(|(_, s)| !s.gone) {
            if present.contains_key(addr) {
                continue;
            }
            s.gone = true;
            if s.deadline_ns != 0 && s.deadline_ns <= now_ns + TOLERANCE_NS {
                self.expired += 1;
                if phase == Phase::Dead {
                    self.expired_while_dead += 1;
                }
            } else {
                events.push(Event {
                    failure: Failure::LostFromKernel,
                    cycle,
                    phase,
                    detail: format!(
                        "{addr}: gone from the map {} s before its deadline",
                        secs_left(s.deadline_ns, now_ns)
                    ),
                });
            }
        }
        events
    }

    /// Bans seen in force that must still be in force at `now_ns` (their deadline
    /// more than the tolerance away), seen before `seen_before_ns`.
    pub fn must_hold(&self, now_ns: u64, seen_before_ns: u64) -> Vec<(IpAddr, Seen)> {
        self.seen
            .iter()
            .filter(|(_, s)| {
                !s.gone
                    && s.first_seen_ns < seen_before_ns
                    && (s.deadline_ns == 0 || s.deadline_ns > now_ns + TOLERANCE_NS)
            })
            .map(|(a, s)| (*a, *s))
            .collect()
    }
}

fn secs_left(deadline_ns: u64, now_ns: u64) -> String {
    if deadline_ns == 0 {
        return "inf".into();
    }
    format!("{:.3}", (deadline_ns as f64 - now_ns as f64) / 1e9)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn a(s: &str) -> IpAddr {
        s.parse().expect("address")
    }

    #[test]
    fn a_ban_leaving_before_its_deadline_is_lost_and_one_at_it_expired() {
        let mut l = Ledger::default();
        let e = l.observe(
            &[(a("192.0.2.1"), 10 * S), (a("192.0.2.2"), 3 * S)],
            S,
            1,
            Phase::Running,
        );
        assert!(e.is_empty());
        // .2 reached its deadline; .1 vanished 6 s early.
        let e = l.observe(&[], 4 * S, 1, Phase::Dead);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].failure, Failure::LostFromKernel);
        assert!(e[0].detail.contains("192.0.2.1"));
        assert_eq!((l.expired, l.expired_while_dead), (1, 1));
    }

    #[test]
    fn an_expired_entry_left_in_the_map_is_not_in_force() {
        let mut l = Ledger::default();
        l.observe(&[(a("192.0.2.1"), 3 * S)], S, 1, Phase::Running);
        let e = l.observe(&[(a("192.0.2.1"), 3 * S)], 5 * S, 1, Phase::Running);
        assert!(e.is_empty());
        assert_eq!(l.expired, 1);
        assert!(l.must_hold(5 * S, 6 * S).is_empty());
    }

    #[test]
    fn a_moved_deadline_and_a_second_ban_are_failures() {
        let mut l = Ledger::default();
        l.observe(&[(a("2001:db8::1"), 5 * S)], S, 1, Phase::Running);
        let e = l.observe(&[(a("2001:db8::1"), 9 * S)], 2 * S, 2, Phase::Starting);
        assert_eq!(e[0].failure, Failure::DeadlineMoved);
        // Small skew is tolerated.
        assert!(
            l.observe(
                &[(a("2001:db8::1"), 9 * S + 1000)],
                3 * S,
                2,
                Phase::Running
            )
            .is_empty()
        );
        l.observe(&[], 10 * S, 2, Phase::Running);
        let e = l.observe(&[(a("2001:db8::1"), 20 * S)], 11 * S, 3, Phase::Running);
        assert_eq!(e[0].failure, Failure::BannedAgain);
    }

    #[test]
    fn a_lost_ban_put_back_with_its_deadline_is_not_a_second_ban() {
        let mut l = Ledger::default();
        l.observe(&[(a("192.0.2.1"), 10 * S)], S, 1, Phase::Running);
        assert_eq!(
            l.observe(&[], 2 * S, 1, Phase::Dead)[0].failure,
            Failure::LostFromKernel
        );
        assert!(
            l.observe(&[(a("192.0.2.1"), 10 * S)], 3 * S, 2, Phase::Starting)
                .is_empty()
        );
        assert_eq!(l.must_hold(3 * S, 4 * S).len(), 1);
    }

    #[test]
    fn must_hold_skips_bans_about_to_end_and_later_ones() {
        let mut l = Ledger::default();
        l.observe(
            &[(a("192.0.2.1"), 0), (a("192.0.2.2"), 2 * S)],
            S,
            1,
            Phase::Running,
        );
        let hold = l.must_hold(S + S / 2, 2 * S);
        assert_eq!(hold.len(), 1);
        assert_eq!(hold[0].0, a("192.0.2.1"));
        assert!(l.must_hold(S, S).is_empty());
    }
}
