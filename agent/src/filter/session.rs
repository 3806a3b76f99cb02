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
//! | `carry` | only names the session's address (fail2ban's `<F-NOFAIL>`): never counts by itself |
//!
//! A line may also carry no address at all (fail2ban filters whose `<F-MLFID>`
//! names the session and whose failure line has no `<HOST>`): it counts with the
//! address an earlier line of its session named, or, when none did yet, waits
//! for the first line of the session that names one (a *waiting* failure; a
//! `success` drops it, and it is lost if the session ends first, as in
//! fail2ban). An `address` line without an address (sshd's `User X not allowed
//! because account is locked`) likewise waits, and becomes the session's pending
//! address when a line names one (so an `end` line then counts it, a failure
//! replaces it). And a line may *end* its session whatever its role (fail2ban's
//! `<F-MLFFORGET>`): the session is forgotten after the line, a pending address
//! counting as with `end`; for such filters only that flag ends a session (a
//! `success` forgets the failures, and the session goes on). fail2ban's tags map
//! onto this one mechanism:
//!
//! | fail2ban | here |
//! |---|---|
//! | `<F-MLFID>` | the session key, with the syslog host (instead of host, program and pid) |
//! | failregex line | failure (with or without its own address) |
//! | `<F-NOFAIL>` | carry |
//! | `<F-MLFGAINED>` | success: waiting failures are dropped |
//! | `<F-MLFFORGET>` | the line ends its session |
//!
//! After an `end` or `success`, a failure, `address` or carry line of the same
//! process starts a new session (a reused pid), and so does an `attempt` that
//! names another address (a process that serves one client after another);
//! an `attempt` naming the same client is a late line of the ended session.
//! Before its end, a line naming another address than the session's (a log
//! that reuses pids, a daemon serving clients in turn without an `end` line)
//! ends the open session, settled as at its end (a pending address counts),
//! and opens a new one for its own client.
//!
//! A pending `address` counts when an `end` line closes its session, when the
//! session has seen no line for `session_window` (checked as later lines of the
//! source arrive), when the table is full and it is the oldest session, or when
//! reading stops ([`Sessions::finish`], for `log2drop test`).
//!
//! Lines without a session key stand alone: failure and `attempt` lines count,
//! the others do not (an undercount, never a double count). The matcher keys a
//! syslog line without a pid (`[sshd]:`) by its program alone: its lines still
//! form sessions, told apart only by the addresses they name (a line naming
//! another client ends the open session, as above), and a line without an
//! address, which could belong to any client, stands alone.
//!
//! This state belongs to one source (next to its matcher), not to the engine:
//! it is about lines, not addresses. It is bounded ([`MAX_SESSIONS`]), keyed by
//! a hash of the process bytes (no copy of the line), and a filter whose regexes
//! all have the failure role never touches it.

use std::collections::VecDeque;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::time::{Duration, SystemTime};

use hashbrown::HashMap;

use super::{FilterId, Hit, Host};

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
    /// `carry`: names the session's address and never counts by itself
    /// (fail2ban's `<F-NOFAIL>`, sshd's `Connection from H`), for the lines of
    /// the session that name none.
    Carry,
}

impl Role {
    /// Every role a log2drop filter lists regexes for, in the order its
    /// lists are compiled.
    pub const ALL: [Role; 6] = [
        Role::Failure,
        Role::Attempt,
        Role::Address,
        Role::End,
        Role::Success,
        Role::Carry,
    ];

    /// Its position in [`Role::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The filter key that lists the regexes of this role.
    pub fn key(self) -> &'static str {
        match self {
            Role::Failure => "regex",
            Role::Attempt => "attempt",
            Role::Address => "address",
            Role::End => "end",
            Role::Success => "success",
            Role::Carry => "carry",
        }
    }
}

/// One open session.
///
/// Laid out (`repr(C)`) with what every line reads first (`last`, `known`,
/// the flags) and the held line, which few lines touch, after them, and kept
/// small: the table is probed for every matched line with a session key, and
/// with hundreds to thousands of sessions open a bucket that spans fewer cache
/// lines misses less (a bucket was 144 bytes, three lines; now 96).
#[derive(Debug, Clone, Copy)]
#[repr(C)]
struct Session {
    /// When its last line was read.
    last: SystemTime,
    /// The address the last line that named one named, for the lines that
    /// name none.
    known: Option<Host>,
    /// A line of the session counted.
    counted: bool,
    /// An `end` or `success` line closed it; what follows is a new session (a
    /// reused pid) or a late line of this one.
    over: bool,
    /// It ended in a success.
    succeeded: bool,
    /// `held` is a waiting failure (or `address`), not a pending address. A
    /// flag beside an `Option<Hit>`, not an enum of two hits: the enum's tag
    /// would not fit in `Hit`'s padding and makes a bucket 104 bytes.
    waits: bool,
    /// The session's pending `address` line, waiting for its end, or (with
    /// `waits`) a line without an address waiting for one that names it. One
    /// slot holds both: a pending address needs a known address (it is set
    /// only by a line that names one, which sets `known`, and `known` is never
    /// unset but by a new session), and a line waits only while no address is
    /// known (the first line that names one takes it).
    held: Option<Hit>,
    // Its filter's window is not kept here: the expiry queue holds it (as
    // `due - at`), and every line brings it. A smaller session is less to
    // write for every line that opens or renews one.
}

/// What a matched line is to its session, beyond its role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineFacts {
    /// The line named the address (the hit's `addr`); if not, the hit's
    /// `addr` is a placeholder and the session's address stands in.
    pub has_addr: bool,
    /// The session ends after this line (fail2ban's `<F-MLFFORGET>`).
    pub ends: bool,
    /// Only `ends` ends the session: a `success` forgets the session's
    /// failures but the session goes on (fail2ban's `<F-MLFGAINED>` without
    /// `<F-MLFFORGET>`).
    pub only_flag_ends: bool,
}

impl LineFacts {
    /// A line of a log2drop filter: it names its address and ends its
    /// session only by its role.
    pub const PLAIN: LineFacts = LineFacts {
        has_addr: true,
        ends: false,
        only_flag_ends: false,
    };
}

/// What a line counts now in its session ([`Sessions::line_expired`]): a
/// `Hit`'s worth of answer only when it is another line's offence, so the
/// common line hands back an address, not a copy of its own hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Counted {
    /// Nothing counts now.
    Nothing,
    /// The line itself counts, under this address: its own, or its
    /// session's when it names none. Only a failure or an attempt does.
    Own(Host),
    /// Another line's offence counts: the pending address an `end` releases,
    /// or a failure that waited for the address this line names.
    Other(Hit),
}

impl Counted {
    /// The offence to count, given the line's own `hit`.
    pub(crate) fn hit(self, hit: &Hit) -> Option<Hit> {
        match self {
            Counted::Nothing => None,
            Counted::Own(host) => Some(Hit { host, ..*hit }),
            Counted::Other(other) => Some(other),
        }
    }
}

impl Session {
    fn new(now: SystemTime) -> Self {
        Session {
            last: now,
            known: None,
            counted: false,
            over: false,
            succeeded: false,
            waits: false,
            held: None,
        }
    }

    fn expired(&self, now: SystemTime, window: Duration) -> bool {
        now.duration_since(self.last)
            .is_ok_and(|idle| idle > window)
    }

    /// The pending address, if one is held.
    fn pending(&self) -> Option<Hit> {
        self.held.filter(|_| !self.waits)
    }

    /// Takes the pending address, leaving a waiting line alone.
    fn take_pending(&mut self) -> Option<Hit> {
        if self.waits { None } else { self.held.take() }
    }

    /// Holds `hit` as the pending address. Only a line that names an address
    /// sets one, and that line has taken any waiting one first.
    fn set_pending(&mut self, hit: Hit) {
        debug_assert!(
            !self.waits || self.held.is_none(),
            "pending over a waiting line"
        );
        self.held = Some(hit);
        self.waits = false;
    }

    /// The line waiting for an address, if one is held.
    fn waiting(&self) -> Option<Hit> {
        self.held.filter(|_| self.waits)
    }

    /// Takes the waiting line, leaving a pending address alone.
    fn take_waiting(&mut self) -> Option<Hit> {
        if self.waits {
            self.waits = false;
            self.held.take()
        } else {
            None
        }
    }

    /// Holds `hit` as the line waiting for an address. A line waits only
    /// while no address is known, so no pending address is held.
    fn set_waiting(&mut self, hit: Hit) {
        debug_assert!(
            self.waits || self.held.is_none(),
            "waiting over a pending address"
        );
        self.held = Some(hit);
        self.waits = true;
    }
}

/// A session's place in the expiry queue.
#[derive(Debug, Clone, Copy)]
struct Queued {
    key: u64,
    /// Its last line when it was queued.
    at: SystemTime,
    /// `at` plus its window (`None`: past what the clock can hold, never due):
    /// computed once, so the check run for every line is two comparisons.
    due: Option<SystemTime>,
}

impl Queued {
    fn new(key: u64, at: SystemTime, window: Duration) -> Queued {
        Queued {
            key,
            at,
            due: at.checked_add(window),
        }
    }

    /// Its session's window, if it can ever be due.
    fn window(&self) -> Option<Duration> {
        self.due?.duration_since(self.at).ok()
    }

    /// Whether the session may have expired at `now`: idle for longer than its
    /// window since `at` (a `now` before `at`, from lines out of order, is not).
    #[inline]
    fn may_be_due(&self, now: SystemTime) -> bool {
        now >= self.at && self.due.is_some_and(|due| now > due)
    }
}

/// `host sshd(pam_unix)[PID]` as `host sshd[PID]`: Linux-PAM before 0.78
/// wrote the module into the tag of the process it ran in, so its line and
/// the program's own lines are one session. `None` (the common case, found
/// from the tag's end) when the tag names no module.
#[inline]
fn without_module(process: &[u8]) -> Option<([u8; 128], usize)> {
    // A module needs a ')': most tags have none, told a word at a time
    // instead of by a byte loop back to the '['.
    if !has_close_paren(process) {
        return None;
    }
    let open_pid = process.iter().rposition(|c| *c == b'[')?;
    let close = open_pid.checked_sub(1)?;
    if process[close] != b')' || process.len() > 128 {
        return None;
    }
    let open = process[..close].iter().rposition(|c| *c == b'(')?;
    let mut buf = [0u8; 128];
    buf[..open].copy_from_slice(&process[..open]);
    let pid = &process[open_pid..];
    buf[open..open + pid.len()].copy_from_slice(pid);
    Some((buf, open + pid.len()))
}

/// Whether `bytes` holds a `)`: eight bytes at a time (the classic test for a
/// zero byte, on the bytes xor `)`), so a tag costs a few instructions.
fn has_close_paren(bytes: &[u8]) -> bool {
    let any = |w: u64| super::syslog::byte_flags(w, b')') != 0;
    let word = |c: &[u8; 8]| u64::from_ne_bytes(*c);
    let Some(last) = bytes.last_chunk::<8>() else {
        return bytes.contains(&b')');
    };
    // Whole words from the start, then the last eight bytes (overlapping).
    let mut rest = bytes;
    while let Some((c, tail)) = rest.split_first_chunk::<8>() {
        if any(word(c)) {
            return true;
        }
        rest = tail;
    }
    any(word(last))
}

/// The host a session key hashes on its own: `host`, unless it is empty or
/// the process bytes start with it already (see [`Sessions::key`]). One test,
/// made once on each path to [`Sessions::key_of`] (`key_tagged` had its own
/// copy of it, and its general path then made it again in `key`).
#[inline(always)]
fn apart<'a>(host: &'a [u8], process: &[u8]) -> Option<&'a [u8]> {
    (!host.is_empty() && host.as_ptr() != process.as_ptr()).then_some(host)
}

/// The hasher of the session table: its keys are hashes already (see
/// [`Sessions::key`]), so hashing them again is work for nothing.
#[derive(Debug, Default)]
struct KeyHash(u64);

impl Hasher for KeyHash {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `u64` keys reach this table; anything else still hashes.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, key: u64) {
        self.0 = key;
    }
}

/// The sessions of one source.
#[derive(Debug)]
pub struct Sessions {
    /// Keyed by [`key`](Self::key), already a hash: the table takes it as is.
    open: HashMap<u64, Session, BuildHasherDefault<KeyHash>>,
    /// Keys in the order they were (re)queued, with the session's last line
    /// then and when it expires counted from that line: the front is a
    /// candidate for expiry, checked against the table only when its queued
    /// time says it may be due (sessions only get younger, so a queued time
    /// that is not due proves the session is not). A key whose session went is
    /// skipped.
    order: VecDeque<Queued>,
    /// The `due` of `order`'s front (`None`: the queue is empty or its front
    /// is never due), kept beside the queue so the check made for every line
    /// is one comparison, not a look into the queue. A front is due exactly
    /// when `now` is past it: `due` is `at` plus a window, never before `at`.
    next_due: Option<SystemTime>,
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
            next_due: None,
            deferred: VecDeque::new(),
            hasher: foldhash::fast::FixedState::default(),
            capacity: capacity.max(1),
        }
    }

    /// The key of the session of `process` (program and pid bytes, mostly
    /// with the host before them) on the machine `host` (the line's syslog
    /// host, empty when it names none) in filter `filter`. Both are slices of
    /// the line, and `process` starts where `host` does in every form but
    /// busybox's `HOST FACILITY.LEVEL TAG`, which leaves the host out of it
    /// (see [`crate::filter::syslog::Prefix::process`]), and a pid-less line's
    /// program: only those hash the host on its own, so the common line costs
    /// a pointer comparison.
    pub fn key(&self, filter: FilterId, host: &[u8], process: &[u8]) -> u64 {
        let stripped = without_module(process);
        let tag = stripped.as_ref().map_or(process, |(buf, len)| &buf[..*len]);
        self.key_of(filter, apart(host, process), tag)
    }

    /// [`key`](Self::key) for a syslog prefix's `process` whose tag names
    /// `program` (both slices of one line, as [`crate::filter::syslog::Prefix`]
    /// has them). Where the program is followed by its pid's `[`, the tag
    /// names no PAM module: the parser takes a tag's `[` only as
    /// `[digits]` at its end, and a program name holds no `)`. So the scan
    /// for one ([`without_module`]), a few words per line, is skipped for the
    /// common `sshd[PID]`; anything else takes the general path. Inlined:
    /// the matcher calls it for nearly every line that matched.
    #[inline]
    pub(crate) fn key_tagged(
        &self,
        filter: FilterId,
        host: &[u8],
        process: &[u8],
        program: &[u8],
    ) -> u64 {
        let after = (program.as_ptr() as usize)
            .checked_sub(process.as_ptr() as usize)
            .and_then(|start| process.get(start + program.len()));
        if after == Some(&b'[') && program.last().is_some_and(|c| *c != b')') {
            self.key_of(filter, apart(host, process), process)
        } else {
            self.key(filter, host, process)
        }
    }

    /// The hash of `filter`, the machine `host` where it is not part of the
    /// process bytes already ([`apart`]), and the process bytes `tag`.
    #[inline(always)]
    fn key_of(&self, filter: FilterId, host: Option<&[u8]>, tag: &[u8]) -> u64 {
        let mut h = self.hasher.build_hasher();
        h.write_u16(filter.0);
        if let Some(host) = host {
            h.write_usize(host.len());
            h.write(host);
        }
        h.write(tag);
        h.finish()
    }

    /// The key of the session a line's `<F-MLFID>` capture `id` names in
    /// filter `filter`, on the machine `host` (its syslog host, empty when the
    /// line names none). The host is part of the key because the id is only
    /// unique on one machine: two slapd servers logging into one file count
    /// connections from the same numbers. The program and pid are not: a
    /// daemon's processes share its ids (Dovecot's `session=` is written by
    /// its `auth` and `imap-login` processes, under their own tags).
    pub fn key_on(&self, filter: FilterId, host: &[u8], id: &[u8]) -> u64 {
        let mut h = self.hasher.build_hasher();
        h.write_u16(filter.0);
        h.write_usize(host.len());
        h.write(host);
        h.write(id);
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
        self.line_with(key, role, hit, LineFacts::PLAIN, now, window)
    }

    /// [`line`](Self::line) for a line that may name no address or may end its
    /// session whatever its role (see the module doc).
    pub fn line_with(
        &mut self,
        key: Option<u64>,
        role: Role,
        hit: Hit,
        facts: LineFacts,
        now: SystemTime,
        window: Duration,
    ) -> Option<Hit> {
        self.expire(now);
        self.line_expired(key, role, &hit, facts, now, window)
            .hit(&hit)
    }

    /// [`line_with`](Self::line_with) for a caller that has just called
    /// [`expire`](Self::expire) with this `now` (the matcher does, before it
    /// searches the line): the check is not made twice per line. The line's
    /// hit is lent, not moved in and back out: the caller keeps it for its
    /// outcome, and most lines count themselves or nothing, which takes no
    /// copy of a `Hit` at all ([`Counted`]).
    pub(crate) fn line_expired(
        &mut self,
        key: Option<u64>,
        role: Role,
        hit: &Hit,
        facts: LineFacts,
        now: SystemTime,
        window: Duration,
    ) -> Counted {
        let Some(key) = key else {
            return if facts.has_addr && matches!(role, Role::Failure | Role::Attempt) {
                Counted::Own(hit.host)
            } else {
                Counted::Nothing
            };
        };
        let s = match role {
            // Ending lines do not open a session.
            Role::End | Role::Success => match self.open.get_mut(&key) {
                Some(s) => s,
                None => return Counted::Nothing,
            },
            _ => self.entry(key, now, window),
        };
        s.last = now;
        // The address the line counts under: its own, or its session's.
        let mut host = hit.host;
        // A line naming another client than the open session's: the process
        // now serves someone else (a log that reuses pids, a daemon that
        // serves clients in turn), so the old session ends here, settled as
        // at its end (a pending address counts), and the line opens a new one.
        // Its pending address was never counted, so nothing counts twice. Only
        // two addresses tell clients apart: a host name (`UseDNS yes`) and an
        // address may be the same client, and two lines' names are two
        // references even when the text is the same.
        let mut settled = None;
        if facts.has_addr
            && !s.over
            && let (Some(Host::Addr(known)), Host::Addr(now_addr)) = (s.known, host)
            && known != now_addr
        {
            settled = s.take_pending();
            *s = Session::new(now);
        }
        // After its end, a line that opens sessions starts a new one (a reused
        // pid). So does an `attempt` naming another client: a daemon process
        // that serves one connection after another (Postfix's smtpd) is a new
        // session per client, while the late lines of an ended session name
        // its own client and still count nothing.
        if s.over
            && (matches!(role, Role::Failure | Role::Address | Role::Carry)
                || role == Role::Attempt && facts.has_addr && s.known != Some(host))
        {
            *s = Session::new(now);
        }
        // A waiting failure counts with the first address its session names,
        // unless the line counts itself (one attempt) or is a success.
        let mut waiting = None;
        if role == Role::Success {
            s.take_waiting();
        }
        if facts.has_addr {
            s.known = Some(host);
            waiting = s.take_waiting().map(|w| Hit { host, ..w });
            // A waiting `address` line is now the session's pending address.
            if let Some(w) = waiting.take_if(|w| w.role == Role::Address)
                && !s.counted
                && s.pending().is_none()
            {
                s.set_pending(w);
            }
        } else if let Some(a) = s.known {
            host = a;
        } else if matches!(role, Role::Failure | Role::Attempt | Role::Address) {
            // A failure or attempt outranks a waiting `address`.
            let free = s
                .waiting()
                .is_none_or(|w| w.role == Role::Address && role != Role::Address);
            if free && !(role == Role::Attempt && (s.counted || s.succeeded)) {
                s.set_waiting(*hit);
            }
            return self.after_line(key, facts, Counted::Nothing);
        } else if matches!(role, Role::Address | Role::Carry) {
            // Nothing to name.
            return self.after_line(key, facts, Counted::Nothing);
        }
        let own = match role {
            Role::Failure => {
                s.take_pending();
                s.counted = true;
                Counted::Own(host)
            }
            Role::Attempt => {
                if s.counted || s.succeeded {
                    Counted::Nothing
                } else {
                    s.take_pending();
                    s.counted = true;
                    Counted::Own(host)
                }
            }
            Role::Address => {
                if !s.counted && s.pending().is_none() && waiting.is_none() {
                    s.set_pending(Hit { host, ..*hit });
                }
                Counted::Nothing
            }
            Role::Carry => Counted::Nothing,
            Role::End => {
                s.over = true;
                match s.take_pending() {
                    Some(pending) => {
                        s.counted = true;
                        Counted::Other(pending)
                    }
                    None => Counted::Nothing,
                }
            }
            Role::Success => {
                s.over = !facts.only_flag_ends;
                s.succeeded = true;
                s.take_pending();
                Counted::Nothing
            }
        };
        let counted = match (own, waiting) {
            (Counted::Nothing, Some(w)) => {
                s.take_pending();
                s.counted = true;
                Counted::Other(w)
            }
            (own, _) => own,
        };
        if let Some(h) = settled {
            self.deferred.push_back(h);
        }
        self.after_line(key, facts, counted)
    }

    /// Forgets the session `key` if the line ends it; a pending address counts.
    /// The entry stays (as after an `end`) until its window passes, so the
    /// expiry queue never holds a key twice; the next line starts afresh.
    ///
    /// Inlined, with the forgetting kept out of line ([`Self::forget`]): only
    /// fail2ban's `<F-MLFFORGET>` lines end a session here, and for every
    /// other line a call (which hands `counted` back through memory) cost
    /// more than the test.
    #[inline(always)]
    fn after_line(&mut self, key: u64, facts: LineFacts, counted: Counted) -> Counted {
        if !facts.ends {
            return counted;
        }
        self.forget(key, counted)
    }

    /// [`Self::after_line`] of a line that ends its session.
    #[inline(never)]
    fn forget(&mut self, key: u64, counted: Counted) -> Counted {
        let Some(s) = self.open.get_mut(&key) else {
            return counted;
        };
        let pending = s.take_pending();
        *s = Session {
            over: true,
            ..Session::new(s.last)
        };
        match (counted, pending) {
            (Counted::Nothing, Some(p)) => Counted::Other(p),
            (counted, pending) => {
                self.deferred.extend(pending);
                counted
            }
        }
    }

    /// The open session `key`, opened now if there is none; makes room first.
    /// One look-up in the table, unless it is full.
    fn entry(&mut self, key: u64, now: SystemTime, window: Duration) -> &mut Session {
        if self.open.len() >= self.capacity && !self.open.contains_key(&key) {
            while self.open.len() >= self.capacity {
                self.evict_oldest();
            }
        }
        match self.open.entry(key) {
            hashbrown::hash_map::Entry::Occupied(o) => o.into_mut(),
            hashbrown::hash_map::Entry::Vacant(v) => {
                let queued = Queued::new(key, now, window);
                if self.order.is_empty() {
                    self.next_due = queued.due;
                }
                self.order.push_back(queued);
                v.insert(Session::new(now))
            }
        }
    }

    /// Ends the session idle longest; its pending address counts.
    fn evict_oldest(&mut self) {
        while let Some(Queued { key, .. }) = self.order.pop_front() {
            if let Some(s) = self.open.remove(&key) {
                self.deferred.extend(s.pending());
                break;
            }
        }
        self.queue_changed();
    }

    /// Reads [`next_due`](Self::next_due) again after the queue's front went.
    fn queue_changed(&mut self) {
        self.next_due = self.order.front().and_then(|q| q.due);
    }

    /// Ends the sessions idle for longer than their window at `now`; their
    /// pending addresses count (see [`take_deferred`](Self::take_deferred)).
    /// Called for every line of the source, so it costs one comparison when
    /// nothing is due: sessions are checked in queue order, and the first one
    /// whose queued time is still within its window stops the check. One still
    /// active goes to the back with its newer time.
    #[inline]
    pub fn expire(&mut self, now: SystemTime) {
        // Inlined, so the usual case (nothing due, and the matcher asks again
        // for the line it hands to `line_with`) is a comparison, not a call.
        if self.next_due.is_some_and(|due| now > due) {
            self.expire_due(now);
        }
    }

    #[inline(never)]
    fn expire_due(&mut self, now: SystemTime) {
        while let Some(&q) = self.order.front() {
            if !q.may_be_due(now) {
                break;
            }
            self.order.pop_front();
            // A due entry has a window (`may_be_due`).
            let Some(window) = q.window() else {
                continue;
            };
            match self.open.get(&q.key) {
                None => {}
                Some(s) if s.expired(now, window) => {
                    if let Some(s) = self.open.remove(&q.key) {
                        self.deferred.extend(s.pending());
                    }
                }
                Some(s) => self.order.push_back(Queued::new(q.key, s.last, window)),
            }
        }
        self.queue_changed();
    }

    /// Ends every open session, as when reading stops: pending addresses count.
    pub fn finish(&mut self) {
        for Queued { key, .. } in self.order.drain(..) {
            if let Some(s) = self.open.remove(&key) {
                self.deferred.extend(s.pending());
            }
        }
        self.open.clear();
        self.next_due = None;
    }

    /// The next offence of a session that ended without a line of its own.
    #[inline]
    pub fn take_deferred(&mut self) -> Option<Hit> {
        self.deferred.pop_front()
    }
}

#[cfg(test)]
mod tests;
