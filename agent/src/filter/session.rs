//! Sessions: the lines one process writes about one attempt count once.
//!
//! A daemon often logs one login attempt over several lines: sshd writes a PAM
//! `authentication failure ... rhost=H` line and then `Failed password ... from H`
//! for the same password, then a disconnect line when the client goes. Counting
//! every line would make `maxretry = 5` ban after two or three attempts. So each
//! regex of a filter has a [`Role`], and the lines of one *session* (same host,
//! program and pid, no longer apart than the filter's `session_window`) are
//! counted together:
//!
//! | role | the line... |
//! |---|---|
//! | failure (`regex`) | is one failed attempt: it always counts |
//! | `attempt` | shows that the session failed: counts once, unless a line of the session already counted |
//! | `address` | only names the session's address: counts once when the session ends with no counted line |
//! | `end` | ends the session: a pending `address` counts now; never counts by itself |
//! | `success` | ends the session without an offence: a pending `address` is dropped |
//!
//! A pending `address` counts when an `end` line closes its session, when the
//! session has seen no line for `session_window` (checked as later lines of the
//! source arrive), when the table is full and it is the oldest session, or when
//! reading stops ([`Sessions::finish`], for `log2drop test`).
//!
//! Lines without a pid cannot be grouped: each is its own session, so failure and
//! `attempt` lines count and `address`, `end` and `success` lines do not (an
//! undercount, never a double count).
//!
//! This state belongs to one source (next to its matcher), not to the engine:
//! it is about lines, not addresses. It is bounded ([`MAX_SESSIONS`]), keyed by
//! a hash of the process bytes (no copy of the line), and a filter whose regexes
//! all have the failure role never touches it.

use std::collections::VecDeque;
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, SystemTime};

use hashbrown::HashMap;

use super::{FilterId, Hit};

/// Most sessions one source tracks at once. sshd itself admits at most 100
/// unauthenticated connections by default (`MaxStartups`); the bound is for
/// logs of many hosts and for attackers who open connections faster than they
/// end. When full, the oldest session ends (its pending address counts).
pub const MAX_SESSIONS: usize = 16_384;

/// Default `session_window`: as long as fail2ban keeps a multi-line id, longer
/// than sshd's `LoginGraceTime` (120 s), so a pre-auth session never outlives it.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(300);

/// What a line of a filter means for its session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// `regex`: one failed attempt; always counts.
    Failure,
    /// `attempt`: the session failed; counts once per session.
    Attempt,
    /// `address`: names the address; counts if the session ends uncounted.
    Address,
    /// `end`: the session is over; a pending address counts.
    End,
    /// `success`: the session is over, without an offence.
    Success,
}

impl Role {
    /// Every role, in the order a filter's lists are compiled.
    pub const ALL: [Role; 5] = [
        Role::Failure,
        Role::Attempt,
        Role::Address,
        Role::End,
        Role::Success,
    ];

    /// The filter key that lists the regexes of this role.
    pub fn key(self) -> &'static str {
        match self {
            Role::Failure => "regex",
            Role::Attempt => "attempt",
            Role::Address => "address",
            Role::End => "end",
            Role::Success => "success",
        }
    }
}

/// One open session.
#[derive(Debug, Clone, Copy)]
struct Session {
    /// When its last line was read.
    last: SystemTime,
    /// An `address` line waiting for the session's end.
    pending: Option<Hit>,
    /// A line of the session counted.
    counted: bool,
    /// An `end` or `success` line closed it; what follows is a new session (a
    /// reused pid) or a late line of this one.
    over: bool,
    /// It ended in a success.
    succeeded: bool,
    /// Its filter's window.
    window: Duration,
}

impl Session {
    fn new(now: SystemTime, window: Duration) -> Self {
        Session {
            last: now,
            pending: None,
            counted: false,
            over: false,
            succeeded: false,
            window,
        }
    }

    fn expired(&self, now: SystemTime) -> bool {
        now.duration_since(self.last)
            .is_ok_and(|idle| idle > self.window)
    }
}

/// The sessions of one source.
#[derive(Debug)]
pub struct Sessions {
    open: HashMap<u64, Session, foldhash::fast::FixedState>,
    /// Keys in the order they were (re)queued, with the session's last line
    /// and window then: the front is a candidate for expiry, checked against
    /// the table only when its queued time says it may be due (sessions only
    /// get younger, so a queued time that is not due proves the session is
    /// not). A key whose session went is skipped.
    order: VecDeque<(u64, SystemTime, Duration)>,
    /// Offences of sessions that ended without a line of their own (expiry,
    /// eviction, [`finish`](Self::finish)), for [`take_deferred`](Self::take_deferred).
    deferred: VecDeque<Hit>,
    hasher: foldhash::fast::FixedState,
    capacity: usize,
}

impl Default for Sessions {
    fn default() -> Self {
        Self::with_capacity(MAX_SESSIONS)
    }
}

impl Sessions {
    /// A table that holds at most `capacity` sessions.
    pub fn with_capacity(capacity: usize) -> Self {
        Sessions {
            open: HashMap::default(),
            order: VecDeque::new(),
            deferred: VecDeque::new(),
            hasher: foldhash::fast::FixedState::default(),
            capacity: capacity.max(1),
        }
    }

    /// The key of the session of `process` (host, program and pid bytes) in
    /// filter `filter`.
    pub fn key(&self, filter: FilterId, process: &[u8]) -> u64 {
        let mut h = self.hasher.build_hasher();
        h.write_u16(filter.0);
        h.write(process);
        h.finish()
    }

    /// How many sessions are open.
    pub fn len(&self) -> usize {
        self.open.len()
    }

    /// Whether no session is open.
    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }

    /// What a line whose pattern has `role` and found `hit` counts, in the
    /// session `key` (`None`: the line has no pid). Returns the offence to count
    /// now, if any: the line's own, or a pending address its `end` releases.
    pub fn line(
        &mut self,
        key: Option<u64>,
        role: Role,
        hit: Hit,
        now: SystemTime,
        window: Duration,
    ) -> Option<Hit> {
        self.expire(now);
        let Some(key) = key else {
            return matches!(role, Role::Failure | Role::Attempt).then_some(hit);
        };
        let s = match role {
            // Ending lines do not open a session.
            Role::End | Role::Success => self.open.get_mut(&key)?,
            _ => self.entry(key, now, window),
        };
        s.last = now;
        match role {
            Role::Failure => {
                if s.over {
                    *s = Session::new(now, window);
                }
                s.pending = None;
                s.counted = true;
                Some(hit)
            }
            Role::Attempt => {
                if s.counted || s.succeeded {
                    return None;
                }
                s.pending = None;
                s.counted = true;
                Some(hit)
            }
            Role::Address => {
                if s.over {
                    *s = Session::new(now, window);
                }
                if !s.counted && s.pending.is_none() {
                    s.pending = Some(hit);
                }
                None
            }
            Role::End => {
                s.over = true;
                let pending = s.pending.take();
                if pending.is_some() {
                    s.counted = true;
                }
                pending
            }
            Role::Success => {
                s.over = true;
                s.succeeded = true;
                s.pending = None;
                None
            }
        }
    }

    /// The open session `key`, opened now if there is none; makes room first.
    fn entry(&mut self, key: u64, now: SystemTime, window: Duration) -> &mut Session {
        if !self.open.contains_key(&key) {
            while self.open.len() >= self.capacity {
                self.evict_oldest();
            }
            self.open.insert(key, Session::new(now, window));
            self.order.push_back((key, now, window));
        }
        self.open.get_mut(&key).expect("present or just inserted")
    }

    /// Ends the session idle longest; its pending address counts.
    fn evict_oldest(&mut self) {
        while let Some((key, _, _)) = self.order.pop_front() {
            if let Some(s) = self.open.remove(&key) {
                self.deferred.extend(s.pending);
                return;
            }
        }
    }

    /// Ends the sessions idle for longer than their window at `now`; their
    /// pending addresses count (see [`take_deferred`](Self::take_deferred)).
    /// Called for every line of the source, so it costs one comparison when
    /// nothing is due: sessions are checked in queue order, and the first one
    /// whose queued time is still within its window stops the check. One still
    /// active goes to the back with its newer time.
    pub fn expire(&mut self, now: SystemTime) {
        while let Some(&(key, queued, window)) = self.order.front() {
            if now.duration_since(queued).is_ok_and(|idle| idle <= window) || now < queued {
                return;
            }
            self.order.pop_front();
            match self.open.get(&key) {
                None => {}
                Some(s) if s.expired(now) => {
                    if let Some(s) = self.open.remove(&key) {
                        self.deferred.extend(s.pending);
                    }
                }
                Some(s) => self.order.push_back((key, s.last, s.window)),
            }
        }
    }

    /// Ends every open session, as when reading stops: pending addresses count.
    pub fn finish(&mut self) {
        for (key, _, _) in self.order.drain(..) {
            if let Some(s) = self.open.remove(&key) {
                self.deferred.extend(s.pending);
            }
        }
        self.open.clear();
    }

    /// The next offence of a session that ended without a line of its own.
    pub fn take_deferred(&mut self) -> Option<Hit> {
        self.deferred.pop_front()
    }
}

#[cfg(test)]
mod tests;
