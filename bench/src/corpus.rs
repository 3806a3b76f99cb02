//! Synthetic, deterministic log corpora for benchmarks: an attacked server's
//! auth.log and an nginx access log.
//!
//! The same `(lines, seed)` always gives the same bytes, so figures from different
//! runs and tools are comparable. Addresses are documentation addresses only.
//!
//! The auth.log is what a public SSH server sees: about 30% noise from cron,
//! systemd, sudo and logind, the rest sshd, mostly brute-force and scanner
//! sessions (invalid users, failed passwords, PAM failures, pre-auth disconnects,
//! banner and key-exchange scanners) with some successful logins in between. Each
//! sshd session writes its lines in the order sshd does, interleaved with noise.

use std::io::Write as _;

/// A small deterministic generator (SplitMix64): enough for picking corpus lines,
/// and the same on every platform.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// True with probability `percent`%.
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const DAYS_IN_MONTH: [u64; 12] = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/// Seconds since 2026-01-01 00:00:00 as (month index, day, hh, mm, ss).
fn civil(secs: u64) -> (usize, u64, u64, u64, u64) {
    let mut day = secs / 86_400;
    let rem = secs % 86_400;
    let mut month = 0;
    while month < 11 && day >= DAYS_IN_MONTH[month] {
        day -= DAYS_IN_MONTH[month];
        month += 1;
    }
    (month, day + 1, rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Seconds from 2026-01-01 to 2026-05-19, where the corpora start.
const START: u64 = (31 + 28 + 31 + 30 + 18) * 86_400;

const USERS: &[&str] = &[
    "admin",
    "test",
    "user",
    "oracle",
    "postgres",
    "ubuntu",
    "guest",
    "pi",
    "git",
    "ftpuser",
    "support",
    "deploy",
    "mysql",
    "hadoop",
    "nagios",
    "www-data",
    "jenkins",
    "ansible",
    "minecraft",
    "teamspeak",
    "user1",
    "administrator",
    "dev",
    "tomcat",
];

const LEGIT_USERS: &[&str] = &["alice", "bob", "deploy-ci"];

/// An attacker's address: mostly IPv4 from the documentation ranges, some IPv6.
fn attacker(rng: &mut Rng) -> String {
    match rng.below(20) {
        0 => format!("2001:db8:{:x}::{:x}", rng.below(4096), 1 + rng.below(65535)),
        1..=7 => format!("192.0.2.{}", 1 + rng.below(254)),
        8..=13 => format!("198.51.100.{}", 1 + rng.below(254)),
        _ => format!("203.0.113.{}", 1 + rng.below(254)),
    }
}

fn port(rng: &mut Rng) -> u64 {
    1024 + rng.below(64_000)
}

/// A client that says goodbye before authenticating: sshd's two lines, the
/// second naming the user as the release writes it (`who` ends with a space, or
/// is empty).
fn bye_preauth(out: &mut Vec<String>, host: &str, p: u64, who: &str) {
    out.push(format!(
        "Received disconnect from {host} port {p}:11: Bye Bye [preauth]"
    ));
    out.push(format!("Disconnected from {who}{host} port {p} [preauth]"));
}

/// The message lines one sshd session writes, in order.
fn sshd_session(rng: &mut Rng, out: &mut Vec<String>) {
    let host = attacker(rng);
    let p = port(rng);
    match rng.below(100) {
        // Brute force with a user that does not exist.
        0..=39 => {
            let user = rng.pick(USERS);
            out.push(format!("Invalid user {user} from {host} port {p}"));
            out.push("pam_unix(sshd:auth): check pass; user unknown".into());
            out.push(format!(
                "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost={host}"
            ));
            out.push(format!(
                "Failed password for invalid user {user} from {host} port {p} ssh2"
            ));
            if rng.chance(70) {
                bye_preauth(out, &host, p, &format!("invalid user {user} "));
            } else {
                out.push(format!(
                    "Connection closed by invalid user {user} {host} port {p} [preauth]"
                ));
            }
        }
        // Brute force against root.
        60..=79 => {
            out.push(format!(
                "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost={host}  user=root"
            ));
            out.push(format!("Failed password for root from {host} port {p} ssh2"));
            if rng.chance(30) {
                out.push(format!(
                    "error: maximum authentication attempts exceeded for root from {host} port {p} ssh2 [preauth]"
                ));
                out.push(format!(
                    "Disconnecting authenticating user root {host} port {p}: Too many authentication failures [preauth]"
                ));
            } else {
                bye_preauth(out, &host, p, "authenticating user root ");
            }
        }
        // Scanners: banner grabs, key-exchange probes, dropped connections.
        40..=59 => match rng.below(4) {
            0 => out.push(format!("Connection closed by {host} port {p} [preauth]")),
            1 => out.push(format!(
                "Did not receive identification string from {host} port {p}"
            )),
            2 => out.push(format!(
                "banner exchange: Connection from {host} port {p}: invalid format"
            )),
            _ => out.push(format!(
                "Unable to negotiate with {host} port {p}: no matching key exchange method found. Their offer: diffie-hellman-group1-sha1,diffie-hellman-group14-sha1 [preauth]"
            )),
        },
        // Legitimate logins.
        _ => {
            let user = rng.pick(LEGIT_USERS);
            let host = format!("198.51.100.{}", 200 + rng.below(50));
            out.push(format!(
                "Accepted publickey for {user} from {host} port {p} ssh2: ED25519 SHA256:kq3Jf0cVh4bYV5x8Wf6yP2mZr1u9N7aQe0tGdLsBcXo"
            ));
            out.push(format!(
                "pam_unix(sshd:session): session opened for user {user}(uid=1000) by {user}(uid=0)"
            ));
            out.push(format!(
                "Received disconnect from {host} port {p}:11: disconnected by user"
            ));
            out.push(format!("Disconnected from user {user} {host} port {p}"));
            out.push(format!("pam_unix(sshd:session): session closed for user {user}"));
        }
    }
}

/// One noise line (program tag and message).
fn noise(rng: &mut Rng) -> (String, String) {
    let pid = 1000 + rng.below(60_000);
    match rng.below(8) {
        0 => (
            format!("CRON[{pid}]"),
            "pam_unix(cron:session): session opened for user root(uid=0) by root(uid=0)".into(),
        ),
        1 => (
            format!("CRON[{pid}]"),
            "(root) CMD (command -v debian-sa1 > /dev/null && debian-sa1 1 1)".into(),
        ),
        2 => (
            format!("CRON[{pid}]"),
            "pam_unix(cron:session): session closed for user root".into(),
        ),
        3 => (
            "systemd[1]".into(),
            format!("Started session-{}.scope - Session {} of User alice.", pid, pid),
        ),
        4 => (
            format!("systemd-logind[{}]", 400 + rng.below(50)),
            format!("New session {pid} of user alice."),
        ),
        5 => (
            format!("sudo[{pid}]"),
            "   alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/systemctl status nginx".into(),
        ),
        6 => (
            format!("sudo[{pid}]"),
            "pam_unix(sudo:session): session opened for user root(uid=0) by alice(uid=1000)".into(),
        ),
        _ => (
            "systemd[1]".into(),
            "Starting sysstat-collect.service - system activity accounting tool...".into(),
        ),
    }
}

/// `lines` lines of an attacked server's auth.log (BSD syslog format), about 30%
/// noise, from 2026-05-19 on. Deterministic in `seed`.
pub fn auth_log(lines: usize, seed: u64) -> Vec<u8> {
    auth_log_stamped(lines, seed, &mut |out, clock, _| {
        let (m, d, hh, mm, ss) = civil(START + clock);
        let _ = write!(out, "{} {d:>2} {hh:02}:{mm:02}:{ss:02}", MONTHS[m]);
    })
}

/// The lines of [`auth_log`] with timestamps of the caller's choosing: `stamp`
/// writes the time of each line, given the corpus clock (seconds since the
/// first line; it advances by 0 or 1 a line) and the line's index, so a case can
/// place a log anywhere relative to its own clock.
pub fn auth_log_stamped(
    lines: usize,
    seed: u64,
    stamp: &mut dyn FnMut(&mut Vec<u8>, u64, usize),
) -> Vec<u8> {
    let mut rng = Rng(seed);
    let mut out = Vec::with_capacity(lines * 110);
    let mut clock = 0;
    let mut pending: Vec<String> = Vec::new();
    let mut pid = 0;
    for i in 0..lines {
        clock += rng.below(3) / 2;
        let (tag, msg) = if rng.chance(30) {
            noise(&mut rng)
        } else {
            if pending.is_empty() {
                sshd_session(&mut rng, &mut pending);
                pending.reverse();
                pid = 10_000 + rng.below(50_000);
            }
            let msg = pending.pop().unwrap_or_default();
            (format!("sshd[{pid}]"), msg)
        };
        stamp(&mut out, clock, i);
        // Writing to a Vec cannot fail.
        let _ = writeln!(out, " web1 {tag}: {msg}");
    }
    out
}

/// One OpenSSH release family, as its sshd words a session's lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ssh {
    /// OpenSSH 7.4 (RHEL/CentOS 7): `input_userauth_request` lines, disconnects
    /// without the user, `Did not receive identification string`.
    V7,
    /// OpenSSH 8.2 (Ubuntu 20.04): the user in disconnect lines,
    /// `kex_exchange_identification` for scanners.
    V8,
    /// OpenSSH 9.2 (Debian 12): `pam_unix` session lines with uids, `banner
    /// exchange` errors.
    V9,
    /// OpenSSH 9.8 and later (Debian 13): the per-connection process is
    /// `sshd-session`.
    V98,
}

/// The servers whose sshd logs reach one central log host: name, release,
/// and whether their syslog daemon writes ISO 8601 stamps (rsyslog's
/// high-precision format) instead of BSD ones.
const SERVERS: &[(&str, Ssh, bool)] = &[
    ("web1", Ssh::V7, false),
    ("db2", Ssh::V8, false),
    ("edge3", Ssh::V9, false),
    ("gw4", Ssh::V98, true),
];

/// An attacker's address for the attack corpus: two thirds IPv4 from the three
/// documentation /24s (762 hosts, so most come back), one third IPv6 from
/// 2001:db8::/32 (nearly every one new).
fn source(rng: &mut Rng) -> String {
    match rng.below(3) {
        0 => format!(
            "2001:db8:{:x}:{:x}::{:x}",
            rng.below(65_536),
            rng.below(65_536),
            1 + rng.below(65_535)
        ),
        _ => {
            let net = ["192.0.2", "198.51.100", "203.0.113"][rng.below(3) as usize];
            format!("{net}.{}", 1 + rng.below(254))
        }
    }
}

/// The message lines of one sshd connection of an attacked server, in the order
/// `v` writes them: what OpenSSH's auth.c, auth2.c, auth-pam.c, sshd.c and
/// packet.c log, with pam_unix's lines in between.
fn attack_session(rng: &mut Rng, v: Ssh, out: &mut Vec<String>) {
    let host = source(rng);
    let p = port(rng);
    let pam_fail = |user: Option<&str>| {
        let tail = user.map_or(String::new(), |u| format!("  user={u}"));
        format!(
            "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost={host}{tail}"
        )
    };
    match rng.below(100) {
        // Password guessing with a user that does not exist, one to three
        // passwords per connection.
        0..=34 => {
            let user = rng.pick(USERS);
            out.push(format!("Invalid user {user} from {host} port {p}"));
            if v == Ssh::V7 {
                out.push(format!("input_userauth_request: invalid user {user} [preauth]"));
            }
            for _ in 0..1 + rng.below(3) {
                out.push("pam_unix(sshd:auth): check pass; user unknown".into());
                out.push(pam_fail(None));
                out.push(format!(
                    "Failed password for invalid user {user} from {host} port {p} ssh2"
                ));
            }
            match (v, rng.below(2)) {
                (Ssh::V7, 0) => {
                    bye_preauth(out, &host, p, "");
                }
                (Ssh::V7, _) => out.push(format!("Connection closed by {host} port {p} [preauth]")),
                (_, 0) => {
                    bye_preauth(out, &host, p, &format!("invalid user {user} "));
                }
                _ => out.push(format!(
                    "Connection closed by invalid user {user} {host} port {p} [preauth]"
                )),
            }
        }
        // A user-name probe: no password tried.
        35..=44 => {
            let user = rng.pick(USERS);
            out.push(format!("Invalid user {user} from {host} port {p}"));
            if v == Ssh::V7 {
                out.push(format!("input_userauth_request: invalid user {user} [preauth]"));
                out.push(format!("Connection closed by {host} port {p} [preauth]"));
            } else {
                out.push(format!(
                    "Connection closed by invalid user {user} {host} port {p} [preauth]"
                ));
            }
        }
        // Password guessing against root, up to sshd's MaxAuthTries (6).
        45..=69 => {
            let tries = 1 + rng.below(6);
            for _ in 0..tries {
                out.push(pam_fail(Some("root")));
                out.push(format!("Failed password for root from {host} port {p} ssh2"));
            }
            if tries == 6 {
                out.push(format!(
                    "error: maximum authentication attempts exceeded for root from {host} port {p} ssh2 [preauth]"
                ));
                out.push(if v == Ssh::V7 {
                    "Disconnecting: Too many authentication failures [preauth]".to_owned()
                } else {
                    format!(
                        "Disconnecting authenticating user root {host} port {p}: Too many authentication failures [preauth]"
                    )
                });
                out.push(format!(
                    "PAM 5 more authentication failures; logname= uid=0 euid=0 tty=ssh ruser= rhost={host}  user=root"
                ));
                out.push("PAM service(sshd) ignoring max retries; 6 > 3".into());
            } else if v == Ssh::V7 {
                bye_preauth(out, &host, p, "");
            } else {
                bye_preauth(out, &host, p, "authenticating user root ");
            }
        }
        // An attacker's key offered for root, refused, then the client leaves.
        70..=72 => {
            out.push(format!(
                "Failed publickey for root from {host} port {p} ssh2: RSA SHA256:Xq2vNw8hYt5LrB0cKpD3sFgZ7uE1mJ6aW9iOyQ4nVxT"
            ));
            out.push(format!("Connection closed by authenticating user root {host} port {p} [preauth]"));
        }
        // Scanners: no identification, bad banners, old key exchanges.
        73..=87 => match (v, rng.below(3)) {
            (Ssh::V7, 0) => out.push(format!(
                "Did not receive identification string from {host} port {p}"
            )),
            (Ssh::V7, 1) => out.push(format!(
                "Bad protocol version identification 'GET / HTTP/1.1' from {host} port {p}"
            )),
            (_, 0) => {
                out.push("error: kex_exchange_identification: Connection closed by remote host".into());
                out.push(format!("Connection closed by {host} port {p}"));
            }
            (_, 1) => {
                out.push("error: kex_exchange_identification: banner line contains invalid characters".into());
                out.push(format!(
                    "banner exchange: Connection from {host} port {p}: invalid format"
                ));
            }
            _ => out.push(format!(
                "Unable to negotiate with {host} port {p}: no matching key exchange method found. Their offer: diffie-hellman-group1-sha1,diffie-hellman-group14-sha1 [preauth]"
            )),
        },
        // Staff logins, one in four after a mistyped password.
        _ => {
            let user = rng.pick(LEGIT_USERS);
            let host = format!("198.51.100.{}", 200 + rng.below(50));
            let by = if matches!(v, Ssh::V9 | Ssh::V98) {
                format!("{user}(uid=1000) by {user}(uid=0)")
            } else {
                format!("{user} by (uid=0)")
            };
            if rng.chance(25) {
                out.push(format!(
                    "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost={host}  user={user}"
                ));
                out.push(format!("Failed password for {user} from {host} port {p} ssh2"));
                out.push(format!("Accepted password for {user} from {host} port {p} ssh2"));
            } else {
                out.push(format!(
                    "Accepted publickey for {user} from {host} port {p} ssh2: ED25519 SHA256:kq3Jf0cVh4bYV5x8Wf6yP2mZr1u9N7aQe0tGdLsBcXo"
                ));
            }
            out.push(format!("pam_unix(sshd:session): session opened for user {by}"));
            out.push(format!(
                "Received disconnect from {host} port {p}:11: disconnected by user"
            ));
            if v == Ssh::V7 {
                out.push(format!("Disconnected from {host} port {p}"));
            } else {
                out.push(format!("Disconnected from user {user} {host} port {p}"));
            }
            out.push(format!("pam_unix(sshd:session): session closed for user {user}"));
        }
    }
}

/// One open connection of the attack corpus.
struct Open {
    server: usize,
    pid: u64,
    /// Its remaining lines, last first.
    lines: Vec<String>,
}

/// `lines` lines of an sshd log under attack, as a central log host collects it
/// from four servers running OpenSSH 7.4, 8.2, 9.2 and 9.8 (their own syslog
/// prefixes, BSD and ISO 8601): whole connections (invalid users, password
/// guessing with PAM's lines, root brute force up to MaxAuthTries, refused
/// keys, scanners, staff logins), up to eight of them open at once and their
/// lines interleaved, from thousands of documentation addresses, and 5% other
/// programs' lines. Most lines report a failure. Deterministic in `seed`.
pub fn sshd_attacks(lines: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng(seed);
    let mut out = Vec::with_capacity(lines * 120);
    let mut clock = 0;
    let mut open: Vec<Open> = Vec::new();
    let mut pids: Vec<u64> = (0..SERVERS.len() as u64)
        .map(|i| 2_000 + 7_919 * i)
        .collect();
    for _ in 0..lines {
        clock += rng.below(3) / 2;
        let (server, tag, msg) = if rng.chance(5) {
            let (tag, msg) = noise(&mut rng);
            (rng.below(SERVERS.len() as u64) as usize, tag, msg)
        } else {
            if open.is_empty() || (open.len() < 8 && rng.chance(20)) {
                let server = rng.below(SERVERS.len() as u64) as usize;
                pids[server] += 1 + rng.below(40);
                let mut lines = Vec::new();
                attack_session(&mut rng, SERVERS[server].1, &mut lines);
                lines.reverse();
                open.push(Open {
                    server,
                    pid: pids[server],
                    lines,
                });
            }
            let k = rng.below(open.len() as u64) as usize;
            let msg = open[k].lines.pop().unwrap_or_default();
            let (server, pid) = (open[k].server, open[k].pid);
            if open[k].lines.is_empty() {
                open.swap_remove(k);
            }
            let prog = if SERVERS[server].1 == Ssh::V98 {
                "sshd-session"
            } else {
                "sshd"
            };
            (server, format!("{prog}[{pid}]"), msg)
        };
        let (name, _, iso) = SERVERS[server];
        let (m, d, hh, mm, ss) = civil(START + clock);
        // Writing to a Vec cannot fail.
        let _ = if iso {
            writeln!(
                out,
                "2026-{:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}.{:06}+00:00 {name} {tag}: {msg}",
                m + 1,
                rng.below(1_000_000)
            )
        } else {
            writeln!(
                out,
                "{} {d:>2} {hh:02}:{mm:02}:{ss:02} {name} {tag}: {msg}",
                MONTHS[m]
            )
        };
    }
    out
}

const PAGES: &[&str] = &[
    "/",
    "/index.html",
    "/about/",
    "/blog/2026/05/release-notes/",
    "/css/site.css",
    "/js/app.js",
    "/images/logo.png",
    "/feed.xml",
    "/contact/",
    "/favicon.ico",
];

const PROBES: &[&str] = &[
    "/wp-login.php",
    "/.env",
    "/phpmyadmin/index.php",
    "/admin/config.php",
    "/.git/config",
    "/wp-admin/setup-config.php",
    "/xmlrpc.php",
    "/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php",
    "/cgi-bin/luci/;stok=/locale",
    "/boaform/admin/formLogin",
    "/pma/",
    "/mysql/admin/",
];

const AGENTS: &[&str] = &[
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
    "curl/8.5.0",
    "python-requests/2.31.0",
    "Mozilla/5.0 zgrab/0.x",
];

/// `lines` lines of an nginx access log (the default `combined` format): page
/// views, scanners probing for well-known paths (404), WordPress login attempts,
/// failed basic auth (401) and rate-limited clients (503). Deterministic in `seed`.
pub fn nginx_access(lines: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng(seed);
    let mut out = Vec::with_capacity(lines * 170);
    let mut clock = START;
    for _ in 0..lines {
        clock += rng.below(2);
        let (m, d, hh, mm, ss) = civil(clock);
        let agent = rng.pick(AGENTS);
        let (client, method, path, status, size) = match rng.below(100) {
            0..=59 => (
                format!("198.51.100.{}", 1 + rng.below(254)),
                "GET",
                (*rng.pick(PAGES)).to_owned(),
                200,
                500 + rng.below(40_000),
            ),
            60..=84 => (
                attacker(&mut rng),
                "GET",
                (*rng.pick(PROBES)).to_owned(),
                404,
                153,
            ),
            85..=91 => (
                attacker(&mut rng),
                "POST",
                "/wp-login.php".to_owned(),
                200,
                4_500,
            ),
            92..=96 => (attacker(&mut rng), "GET", "/private/".to_owned(), 401, 179),
            _ => (
                attacker(&mut rng),
                "GET",
                "/api/search?q=x".to_owned(),
                503,
                197,
            ),
        };
        // Writing to a Vec cannot fail.
        let _ = writeln!(
            out,
            "{client} - - [{d:02}/{}/2026:{hh:02}:{mm:02}:{ss:02} +0000] \"{method} {path} HTTP/1.1\" {status} {size} \"-\" \"{agent}\"",
            MONTHS[m]
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_sized() {
        let a = auth_log(1000, 7);
        assert_eq!(a, auth_log(1000, 7));
        assert_ne!(a, auth_log(1000, 8));
        assert_eq!(a.iter().filter(|b| **b == b'\n').count(), 1000);
        let n = nginx_access(500, 1);
        assert_eq!(n, nginx_access(500, 1));
        assert_eq!(n.iter().filter(|b| **b == b'\n').count(), 500);
    }

    #[test]
    fn attack_log_is_deterministic_sized_and_mixed() {
        let a = sshd_attacks(5_000, 3);
        assert_eq!(a, sshd_attacks(5_000, 3));
        assert_ne!(a, sshd_attacks(5_000, 4));
        let text = String::from_utf8(a).expect("ascii");
        assert_eq!(text.lines().count(), 5_000);
        for needle in [
            " web1 sshd[",
            " db2 sshd[",
            " edge3 sshd[",
            " gw4 sshd-session[",
            "input_userauth_request: invalid user",
            "Disconnected from invalid user",
            "maximum authentication attempts exceeded for root",
            "Accepted publickey for",
        ] {
            assert!(text.contains(needle), "{needle}");
        }
        assert!(text.lines().any(|l| l.starts_with("2026-05-")));
        assert!(text.contains("2001:db8:"));
    }

    #[test]
    fn about_thirty_percent_noise() {
        let a = auth_log(20_000, 1);
        let text = String::from_utf8(a).expect("ascii");
        let sshd = text.lines().filter(|l| l.contains(" sshd[")).count();
        let share = sshd as f64 / 20_000.0;
        assert!((0.65..0.75).contains(&share), "sshd share {share}");
    }

    #[test]
    fn stamps_are_the_callers() {
        let plain = auth_log(300, 3);
        let stamped = auth_log_stamped(300, 3, &mut |out, clock, _| {
            let (m, d, hh, mm, ss) = civil(START + clock);
            let _ = write!(out, "{} {d:>2} {hh:02}:{mm:02}:{ss:02}", MONTHS[m]);
        });
        assert_eq!(plain, stamped);
        let fixed = auth_log_stamped(300, 3, &mut |out, _, i| {
            let _ = write!(out, "L{i}");
        });
        let text = String::from_utf8(fixed).expect("ascii");
        assert!(
            text.lines()
                .enumerate()
                .all(|(i, l)| l.starts_with(&format!("L{i} web1 ")))
        );
    }

    #[test]
    fn dates_roll_over() {
        assert_eq!(civil(START), (4, 19, 0, 0, 0));
        assert_eq!(civil(START + 13 * 86_400), (5, 1, 0, 0, 0));
    }
}
