//! The session rules, driven line by line with an injected clock.

use std::net::IpAddr;

use crate::filter::Host;
use std::time::{Duration, SystemTime};

use super::*;

const W: Duration = Duration::from_secs(300);

fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000 + secs)
}

fn hit(addr: &str) -> Hit {
    Hit {
        host: Host::Addr(addr.parse::<IpAddr>().expect("address")),
        filter: FilterId(0),
        role: Role::Failure,
        regex: 0,
        time: None,
    }
}

/// Feeds `(pid, role, addr, second)` lines and returns the addresses counted,
/// deferred ones included, after `finish`.
fn run(s: &mut Sessions, lines: &[(Option<&str>, Role, &str, u64)]) -> Vec<IpAddr> {
    let mut out = Vec::new();
    for &(pid, role, addr, t) in lines {
        let key = pid.map(|p| s.key(FilterId(0), b"h", p.as_bytes()));
        out.extend(
            s.line(key, role, hit(addr), at(t), W)
                .and_then(|h| h.addr()),
        );
        while let Some(h) = s.take_deferred() {
            out.extend(h.addr());
        }
    }
    s.finish();
    while let Some(h) = s.take_deferred() {
        out.extend(h.addr());
    }
    out
}

fn addrs(list: &[&str]) -> Vec<IpAddr> {
    list.iter().map(|a| a.parse().expect("address")).collect()
}

use Role::*;

#[test]
fn pam_line_then_failed_password_is_one_attempt_and_each_password_counts() {
    let mut s = Sessions::default();
    let p = Some("h sshd[10]:");
    let got = run(
        &mut s,
        &[
            (p, Address, "192.0.2.1", 0),
            (p, Failure, "192.0.2.1", 2),
            (p, Address, "192.0.2.1", 3),
            (p, Failure, "192.0.2.1", 5),
            (p, End, "192.0.2.1", 6),
            (p, End, "192.0.2.1", 6),
        ],
    );
    assert_eq!(got, addrs(&["192.0.2.1", "192.0.2.1"]));
}

#[test]
fn address_alone_counts_once_at_the_end_line() {
    let mut s = Sessions::default();
    let p = Some("h sshd[11]:");
    let mut got = Vec::new();
    let key = Some(s.key(FilterId(0), b"h", b"h sshd[11]:"));
    assert_eq!(s.line(key, Address, hit("192.0.2.2"), at(0), W), None);
    assert_eq!(s.line(key, Address, hit("192.0.2.2"), at(1), W), None);
    got.extend(
        s.line(key, End, hit("192.0.2.2"), at(2), W)
            .and_then(|h| h.addr()),
    );
    // A second closing line of the same session adds nothing.
    got.extend(run(&mut s, &[(p, End, "192.0.2.2", 2)]));
    assert_eq!(got, addrs(&["192.0.2.2"]));
}

#[test]
fn success_drops_the_pending_address() {
    let mut s = Sessions::default();
    let p = Some("h sshd[12]:");
    let got = run(
        &mut s,
        &[
            (p, Address, "192.0.2.3", 0),
            (p, Success, "192.0.2.3", 1),
            (p, End, "192.0.2.3", 100),
        ],
    );
    assert_eq!(got, Vec::<IpAddr>::new());
}

#[test]
fn attempt_counts_once_per_session() {
    let mut s = Sessions::default();
    let p = Some("h sshd[13]:");
    let q = Some("h sshd[14]:");
    let got = run(
        &mut s,
        &[
            // After a counted failure, the pre-auth disconnects add nothing.
            (p, Failure, "192.0.2.4", 0),
            (p, Attempt, "192.0.2.4", 1),
            (p, Attempt, "192.0.2.4", 1),
            // A scanner's session: one offence for two closing lines.
            (q, Attempt, "198.51.100.4", 2),
            (q, Attempt, "198.51.100.4", 2),
        ],
    );
    assert_eq!(got, addrs(&["192.0.2.4", "198.51.100.4"]));
}

#[test]
fn sessions_are_told_apart_by_process() {
    let mut s = Sessions::default();
    let got = run(
        &mut s,
        &[
            (Some("h sshd[20]:"), Address, "192.0.2.5", 0),
            (Some("h sshd[21]:"), Address, "192.0.2.6", 0),
            (Some("h sshd[21]:"), Failure, "192.0.2.6", 1),
            (Some("h sshd[20]:"), End, "192.0.2.5", 2),
            (Some("h sshd[21]:"), End, "192.0.2.6", 2),
        ],
    );
    assert_eq!(got, addrs(&["192.0.2.6", "192.0.2.5"]));
}

#[test]
fn without_a_pid_each_line_stands_alone() {
    let mut s = Sessions::default();
    let got = run(
        &mut s,
        &[
            (None, Address, "192.0.2.7", 0),
            (None, Failure, "192.0.2.7", 1),
            (None, Attempt, "192.0.2.7", 1),
            (None, End, "192.0.2.7", 2),
            (None, Success, "192.0.2.7", 2),
        ],
    );
    assert_eq!(got, addrs(&["192.0.2.7", "192.0.2.7"]));
    assert!(s.is_empty());
}

#[test]
fn an_idle_session_expires_and_its_address_counts_then() {
    let mut s = Sessions::default();
    let key = Some(s.key(FilterId(0), b"h", b"h sshd[30]:"));
    assert_eq!(s.line(key, Address, hit("192.0.2.8"), at(0), W), None);
    s.expire(at(300));
    assert_eq!(s.take_deferred(), None, "still within the window");
    s.expire(at(301));
    assert_eq!(
        s.take_deferred().and_then(|h| h.addr()),
        Some(addrs(&["192.0.2.8"])[0])
    );
    assert!(s.is_empty());
    // A late line of that pid starts afresh and counts on its own.
    assert!(s.line(key, Failure, hit("192.0.2.8"), at(302), W).is_some());
}

#[test]
fn a_reused_pid_after_the_end_is_a_new_session() {
    let mut s = Sessions::default();
    let p = Some("h sshd[40]:");
    let got = run(
        &mut s,
        &[
            (p, Failure, "192.0.2.9", 0),
            (p, End, "192.0.2.9", 1),
            (p, Address, "198.51.100.9", 10),
            (p, End, "198.51.100.9", 11),
        ],
    );
    assert_eq!(got, addrs(&["192.0.2.9", "198.51.100.9"]));
}

#[test]
fn the_table_is_bounded_and_evicted_pending_addresses_count() {
    let mut s = Sessions::with_capacity(8);
    let mut counted = 0;
    for pid in 0..1000u32 {
        let key = Some(s.key(FilterId(0), b"h", format!("h sshd[{pid}]:").as_bytes()));
        assert_eq!(s.line(key, Address, hit("203.0.113.1"), at(0), W), None);
        assert!(s.len() <= 8);
        while s.take_deferred().is_some() {
            counted += 1;
        }
    }
    s.finish();
    while s.take_deferred().is_some() {
        counted += 1;
    }
    assert_eq!(counted, 1000, "every session ended exactly once");
}

#[test]
fn a_long_session_does_not_lose_its_state_while_active() {
    let mut s = Sessions::default();
    let key = Some(s.key(FilterId(0), b"h", b"h sshd[50]:"));
    s.line(key, Address, hit("192.0.2.10"), at(0), W);
    s.line(key, Failure, hit("192.0.2.10"), at(200), W);
    // 400 s after the start but 200 s after the last line: still open, so
    // its end does not count the (consumed) address.
    assert_eq!(s.line(key, End, hit("192.0.2.10"), at(400), W), None);
    assert_eq!(s.take_deferred(), None);
}

/// A fail2ban-style line: role, address or none, whether it ends the session.
fn f2b(
    s: &mut Sessions,
    pid: &str,
    role: Role,
    addr: Option<&str>,
    ends: bool,
    t: u64,
) -> Option<IpAddr> {
    let key = Some(s.key(FilterId(0), b"h", pid.as_bytes()));
    let facts = LineFacts {
        has_addr: addr.is_some(),
        ends,
        only_flag_ends: true,
    };
    let h = hit(addr.unwrap_or("::"));
    s.line_with(key, role, h, facts, at(t), W)
        .and_then(|h| h.addr())
}

fn ip(a: &str) -> Option<IpAddr> {
    Some(a.parse().expect("address"))
}

#[test]
fn a_failure_without_an_address_counts_with_the_one_its_session_named() {
    let mut s = Sessions::default();
    assert_eq!(
        f2b(&mut s, "d[1]", Carry, Some("192.0.2.1"), false, 0),
        None
    );
    assert_eq!(
        f2b(&mut s, "d[1]", Failure, None, false, 1),
        ip("192.0.2.1")
    );
    // Each failure counts, as in fail2ban.
    assert_eq!(
        f2b(&mut s, "d[1]", Failure, None, false, 2),
        ip("192.0.2.1")
    );
    // The carrier that ends the session counts nothing; after it the address
    // is forgotten.
    assert_eq!(f2b(&mut s, "d[1]", Carry, Some("192.0.2.1"), true, 3), None);
    assert_eq!(f2b(&mut s, "d[1]", Failure, None, false, 4), None);
    s.finish();
    assert_eq!(
        s.take_deferred(),
        None,
        "a waiting failure is lost at the end"
    );
}

#[test]
fn a_waiting_failure_counts_once_when_an_address_comes() {
    let mut s = Sessions::default();
    assert_eq!(f2b(&mut s, "d[2]", Failure, None, false, 0), None);
    assert_eq!(f2b(&mut s, "d[2]", Failure, None, false, 1), None);
    // Two failures waited: one offence, at the carrier.
    assert_eq!(
        f2b(&mut s, "d[2]", Carry, Some("198.51.100.2"), false, 2),
        ip("198.51.100.2")
    );
    assert_eq!(
        f2b(&mut s, "d[2]", Failure, None, false, 3),
        ip("198.51.100.2")
    );
    // A failure that names an address itself absorbs a waiting one.
    assert_eq!(f2b(&mut s, "d[3]", Failure, None, false, 4), None);
    assert_eq!(
        f2b(&mut s, "d[3]", Failure, Some("192.0.2.3"), false, 5),
        ip("192.0.2.3")
    );
    assert_eq!(s.take_deferred(), None);
}

#[test]
fn gained_drops_waiting_failures_and_only_forget_ends_the_session() {
    let mut s = Sessions::default();
    assert_eq!(f2b(&mut s, "d[4]", Failure, None, false, 0), None);
    assert_eq!(f2b(&mut s, "d[4]", Success, None, false, 1), None);
    assert_eq!(
        f2b(&mut s, "d[4]", Carry, Some("192.0.2.4"), false, 2),
        None
    );
    // Gained without forget: the session goes on and keeps its address.
    assert_eq!(f2b(&mut s, "d[4]", Success, None, false, 3), None);
    assert_eq!(
        f2b(&mut s, "d[4]", Failure, None, false, 4),
        ip("192.0.2.4")
    );
    // Gained with forget ends it.
    assert_eq!(
        f2b(&mut s, "d[4]", Success, Some("192.0.2.4"), true, 5),
        None
    );
    assert_eq!(f2b(&mut s, "d[4]", Failure, None, false, 6), None);
}

#[test]
fn a_forgotten_session_keeps_one_queue_entry_and_still_expires() {
    let mut s = Sessions::default();
    for t in 0..100 {
        f2b(&mut s, "d[5]", Carry, Some("192.0.2.5"), true, t);
    }
    assert_eq!(s.len(), 1);
    assert!(s.order.len() <= 2, "{} queue entries", s.order.len());
    s.expire(at(1000));
    assert!(s.is_empty());
}

#[test]
fn native_success_still_ends_the_session() {
    // A log2drop `success` (PLAIN facts) ends its session: a later attempt of
    // that pid does not count.
    let mut s = Sessions::default();
    let p = Some("h sshd[60]:");
    let got = run(
        &mut s,
        &[
            (p, Address, "192.0.2.60", 0),
            (p, Success, "192.0.2.60", 1),
            (p, Attempt, "192.0.2.60", 2),
        ],
    );
    assert_eq!(got, Vec::<IpAddr>::new());
}

#[test]
fn a_process_serving_one_client_after_another_has_a_session_per_client() {
    // Postfix's smtpd: connection 1 fails SASL (counted), drops (attempt, held),
    // disconnects (end); connection 2 of another client drops mid-AUTH.
    let mut s = Sessions::default();
    let p = Some("mx postfix/smtpd[70]:");
    let got = run(
        &mut s,
        &[
            (p, Failure, "192.0.2.70", 0),
            (p, Attempt, "192.0.2.70", 1),
            (p, End, "192.0.2.70", 1),
            // A late line of the ended session: same client, nothing.
            (p, Attempt, "192.0.2.70", 2),
            (p, Attempt, "198.51.100.71", 3),
            (p, Attempt, "198.51.100.71", 3),
            (p, End, "198.51.100.71", 4),
        ],
    );
    assert_eq!(got, addrs(&["192.0.2.70", "198.51.100.71"]));
}

#[test]
fn a_line_naming_another_client_ends_the_open_session_and_starts_one() {
    // One pid, two clients, no end line between them (a log that reuses pids):
    // the first client's pending address is settled as at its end, and the
    // second client's session counts on its own.
    let mut s = Sessions::default();
    let p = Some("h sshd[80]:");
    let got = run(
        &mut s,
        &[
            (p, Address, "192.0.2.80", 0),
            (p, Address, "198.51.100.81", 1),
            (p, End, "198.51.100.81", 2),
        ],
    );
    assert_eq!(got, addrs(&["192.0.2.80", "198.51.100.81"]));
}

#[test]
fn a_counted_session_is_not_counted_again_when_another_client_comes() {
    let mut s = Sessions::default();
    let p = Some("h sshd[81]:");
    let got = run(
        &mut s,
        &[
            (p, Address, "192.0.2.82", 0),
            (p, Failure, "192.0.2.82", 1),
            // The new client's first line: the old session counted already.
            (p, Address, "198.51.100.83", 2),
            (p, Attempt, "198.51.100.83", 3),
            (p, Success, "198.51.100.84", 4),
        ],
    );
    assert_eq!(got, addrs(&["192.0.2.82", "198.51.100.83"]));
}

#[test]
fn an_address_line_without_an_address_waits_then_is_the_pending_address() {
    let mut s = Sessions::default();
    // `User X not allowed because account is locked`, then the close: one.
    assert_eq!(f2b(&mut s, "d[5]", Address, None, false, 0), None);
    assert_eq!(
        f2b(&mut s, "d[5]", End, Some("192.0.2.5"), false, 1),
        ip("192.0.2.5")
    );
    // The same, then the `Failed` line: that line is the attempt, once.
    assert_eq!(f2b(&mut s, "d[6]", Address, None, false, 2), None);
    assert_eq!(
        f2b(&mut s, "d[6]", Failure, Some("192.0.2.6"), false, 3),
        ip("192.0.2.6")
    );
    assert_eq!(f2b(&mut s, "d[6]", End, Some("192.0.2.6"), false, 4), None);
    // A failure without an address outranks a waiting address line.
    assert_eq!(f2b(&mut s, "d[7]", Address, None, false, 5), None);
    assert_eq!(f2b(&mut s, "d[7]", Attempt, None, false, 6), None);
    assert_eq!(
        f2b(&mut s, "d[7]", Carry, Some("192.0.2.7"), false, 7),
        ip("192.0.2.7")
    );
    assert_eq!(f2b(&mut s, "d[7]", End, Some("192.0.2.7"), false, 8), None);
    // A login drops it.
    assert_eq!(f2b(&mut s, "d[8]", Address, None, false, 9), None);
    assert_eq!(
        f2b(&mut s, "d[8]", Success, Some("192.0.2.8"), false, 10),
        None
    );
    s.finish();
    assert_eq!(s.take_deferred(), None);
}

#[test]
fn old_pam_tag_is_the_same_process() {
    // Linux-PAM before 0.78: `sshd(pam_unix)[12]` is sshd's process 12.
    let s = Sessions::default();
    let k = |p: &str| s.key(FilterId(0), b"h", p.as_bytes());
    assert_eq!(k("h sshd(pam_unix)[12]:"), k("h sshd[12]:"));
    assert_eq!(k("h sshd(pam_unix)[12]"), k("h sshd[12]"));
    assert_ne!(k("h sshd(pam_unix)[12]:"), k("h sshd[13]:"));
    assert_ne!(k("h sshd(pam_unix)[12]:"), k("h2 sshd[12]:"));
    // No pid, or no module: as written.
    assert_ne!(k("h sshd(pam_unix):"), k("h sshd:"));
    assert_ne!(k("h sshd[12]:"), k("h sshd[12]"));
}

proptest::proptest! {
    /// The word-at-a-time test is `contains`, at every length and place.
    #[test]
    fn has_close_paren_is_contains(
        bytes in proptest::collection::vec(proptest::prop_oneof![
            proptest::strategy::Just(b')'),
            proptest::strategy::Just(b'('),
            proptest::strategy::Just(b'['),
            0u8..=255,
        ], 0..40),
    ) {
        proptest::prop_assert_eq!(has_close_paren(&bytes), bytes.contains(&b')'));
    }

    /// The quick refusal keeps `without_module` what the byte loop made it:
    /// tags with a module lose it, others stay as written.
    #[test]
    fn without_module_strips_only_a_module(
        host in "[a-z0-9]{0,12}",
        prog in "[a-z()-]{1,10}",
        module in proptest::option::of("[a-z_]{0,10}"),
        pid in proptest::option::of(0u32..100_000),
    ) {
        let mut tag = format!("{host} {prog}");
        if let Some(m) = &module {
            tag.push_str(&format!("({m})"));
        }
        if let Some(pid) = pid {
            tag.push_str(&format!("[{pid}]"));
        }
        let got = without_module(tag.as_bytes()).map(|(buf, len)| buf[..len].to_vec());
        // The rule, written out: `(...)` right before the last `[`.
        let want = tag.rfind('[').and_then(|open_pid| {
            let before = tag[..open_pid].strip_suffix(')')?;
            let open = before.rfind('(')?;
            Some(format!("{}{}", &tag[..open], &tag[open_pid..]).into_bytes())
        });
        proptest::prop_assert_eq!(got, want);
    }

    /// The matcher's key for a syslog line (`key_tagged`, which skips the
    /// module search when the program is followed by its pid) is `key`'s, on
    /// every prefix form the parser reads: hosts and tags with and without
    /// parentheses, modules, pids, colons, busybox's facility.level, RFC 5424.
    #[test]
    fn key_tagged_is_key(
        host in proptest::option::of("[a-z0-9().\\[\\]-]{1,10}"),
        level in proptest::option::of(proptest::strategy::Just("auth.info")),
        prog in "[a-z()\\[\\]-]{1,10}",
        module in proptest::option::of("[a-z_()]{0,6}"),
        pid in proptest::option::of("[0-9]{1,6}|[0-9a-z\\[]{1,4}"),
        colon in proptest::bool::ANY,
        rfc5424 in proptest::bool::ANY,
    ) {
        let mut tag = prog.clone();
        if let Some(m) = &module {
            tag.push_str(&format!("({m})"));
        }
        if let Some(pid) = &pid {
            tag.push_str(&format!("[{pid}]"));
        }
        if colon {
            tag.push(':');
        }
        let mut head = String::new();
        for word in [host.as_deref(), level].into_iter().flatten() {
            head.push_str(word);
            head.push(' ');
        }
        let line = if rfc5424 {
            let pid = pid.as_deref().unwrap_or("-");
            format!("<38>1 2024-05-19T10:00:00Z {} {prog} {pid} - - x", host.as_deref().unwrap_or("-"))
        } else {
            format!("May 19 10:00:00 {head}{tag} x")
        };
        let s = Sessions::default();
        if let Some(p) = crate::filter::syslog::parse(line.as_bytes()) {
            let process = p.process.unwrap_or(p.program);
            proptest::prop_assert_eq!(
                s.key_tagged(FilterId(1), p.host, process, p.program),
                s.key(FilterId(1), p.host, process),
                "{}", line
            );
        }
    }

    /// The matcher's path (`expire` once as the line comes in, then
    /// `line_expired`) counts exactly what `line_with` counts, deferred
    /// offences and their order included, over random sessions, clocks that
    /// pass windows and a table small enough to evict.
    #[test]
    fn line_expired_after_expire_is_line_with(
        lines in proptest::collection::vec(
            (
                proptest::option::of(0u8..6),
                0usize..6,
                0u8..4,
                proptest::bool::ANY,
                proptest::bool::ANY,
                0u64..200,
            ),
            0..80,
        ),
    ) {
        let mut plain = Sessions::with_capacity(4);
        let mut split = Sessions::with_capacity(4);
        let mut t = 0;
        let mut got = (Vec::new(), Vec::new());
        for (pid, role, a, has_addr, ends, step) in lines {
            t += step;
            let role = Role::ALL[role];
            let mut h = hit(&format!("192.0.2.{a}"));
            h.role = role;
            let facts = LineFacts { has_addr, ends, only_flag_ends: ends };
            let key = pid.map(|p| plain.key(FilterId(0), b"h", &[b'p', p]));
            got.0.push(plain.line_with(key, role, h, facts, at(t), W));
            split.expire(at(t));
            got.1.push(split.line_expired(key, role, &h, facts, at(t), W).hit(&h));
            // The one slot that holds a pending address or a waiting line
            // relies on this: a pending address has a known address, a
            // waiting line has none.
            for s in plain.open.values() {
                proptest::prop_assert!(!(s.waits && s.known.is_some()), "{:?}", s);
                proptest::prop_assert!(s.pending().is_none() || s.known.is_some(), "{:?}", s);
            }
            while let Some(d) = plain.take_deferred() {
                got.0.push(Some(d));
            }
            while let Some(d) = split.take_deferred() {
                got.1.push(Some(d));
            }
        }
        proptest::prop_assert_eq!(got.0, got.1);
    }

    /// The cached deadline (`next_due`) is the queue front's `due` after
    /// every line, expiry, eviction and `finish`, and the one comparison
    /// `expire` makes on it says what the front's own check says, over
    /// clocks that pass windows or go back (lines out of order), windows too
    /// long to ever be due, and a table small enough to evict.
    #[test]
    fn cached_deadline_is_the_queue_front(
        lines in proptest::collection::vec(
            (
                proptest::option::of(0u8..6),
                0usize..6,
                0u8..4,
                -50i64..400,
                0usize..4,
                proptest::bool::weighted(0.05),
            ),
            0..120,
        ),
    ) {
        let windows = [W, Duration::ZERO, Duration::from_secs(20), Duration::MAX];
        let mut s = Sessions::with_capacity(3);
        let mut t: u64 = 1000;
        for (pid, role, a, step, window, finish) in lines {
            t = t.saturating_add_signed(step);
            let now = at(t);
            let front = |s: &Sessions| s.order.front().and_then(|q| q.due);
            proptest::prop_assert_eq!(s.next_due, front(&s));
            proptest::prop_assert_eq!(
                s.next_due.is_some_and(|due| now > due),
                s.order.front().is_some_and(|q| q.may_be_due(now))
            );
            if finish {
                s.finish();
                proptest::prop_assert_eq!(s.next_due, front(&s));
                continue;
            }
            let role = Role::ALL[role];
            let mut h = hit(&format!("192.0.2.{a}"));
            h.role = role;
            let key = pid.map(|p| s.key(FilterId(0), b"h", &[b'p', p]));
            s.line_with(key, role, h, LineFacts::PLAIN, now, windows[window]);
            proptest::prop_assert_eq!(s.next_due, front(&s));
            while s.take_deferred().is_some() {}
        }
    }
}

/// The table is probed for every line with a session key: a bucket that spans
/// three cache lines (144 bytes, when a pending address and a waiting line had
/// a slot each) missed measurably more. This keeps it at two at most.
#[test]
fn a_table_bucket_fits_in_96_bytes() {
    let bucket = std::mem::size_of::<(u64, Session)>();
    assert!(bucket <= 96, "{bucket} bytes");
}
