//! Case 1, matching throughput: a generated auth.log (sshd attacks among ordinary
//! syslog lines) through the sshd filter, by log2drop and by the tools admins use
//! today: sshguard's parser, `fail2ban-regex` (on a slice, scaled: it is slow) and
//! `grep -cE` as the floor of what a regex scan over the file costs.
//!
//! log2drop is measured in-process, the way the agent reads a file (the file
//! follower's reader and the source matcher, on one thread): lines/s and the CPU
//! time of that thread. The competitors are separate processes; their CPU time is
//! what the kernel charged to them.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use nix::sys::resource::{UsageWho, getrusage};

use log2drop::config::FilterConfig;
use log2drop::filter::SourceMatcher;
use log2drop::source::file::{FileFollower, FollowOptions, StartAt};
use log2drop_bench::report::{self, CaseReport, Cell, Table};
use log2drop_bench::stats;

use super::{Ctx, RUNS};
use crate::proc;

/// The example config shipped with log2drop; its `sshd` filter is what is measured
/// until the built-in filters land.
const EXAMPLE_CONFIG: &str = include_str!("../../../examples/log2drop.toml");

/// sshguard's log parser (reads lines on stdin, prints one line per attack).
const SSHG_PARSER: &str = "/usr/libexec/sshguard/sshg-parser";

/// What grep looks for: the same sshd messages the filter counts.
const GREP_PATTERN: &str = r"sshd(-session)?\[[0-9]+\]: (Failed password for .* from [0-9a-f.:]+ port|Invalid user .* from [0-9a-f.:]+ port|Connection closed by invalid user .* port [0-9]+ \[preauth\])";

/// One tool's runs.
struct Runs {
    /// Lines per second, per run.
    rate: Vec<f64>,
    /// CPU seconds per run, scaled to a million lines.
    cpu_per_m: Vec<f64>,
    /// Lines the tool counted as attacks (same in every run).
    matched: u64,
    /// Lines fed per run.
    lines: usize,
}

impl Runs {
    fn new(lines: usize) -> Runs {
        Runs {
            rate: Vec::new(),
            cpu_per_m: Vec::new(),
            matched: 0,
            lines,
        }
    }

    fn push(&mut self, wall_s: f64, cpu_s: f64, matched: u64) {
        self.rate.push(self.lines as f64 / wall_s.max(1e-9));
        self.cpu_per_m
            .push(cpu_s * 1_000_000.0 / (self.lines.max(1) as f64));
        self.matched = matched;
    }
}

pub fn run(ctx: &Ctx, rep: &mut CaseReport) -> Result<()> {
    let lines = ctx.size(1_000_000, 100_000);
    let slice_lines = ctx.size(100_000, 10_000);
    let corpus = ctx.scratch.join("auth.log");
    let slice = ctx.scratch.join("auth-slice.log");
    let text = corpus_text(lines);
    std::fs::write(&corpus, &text).with_context(|| format!("writing {}", corpus.display()))?;
    std::fs::write(&slice, first_lines(&text, slice_lines))
        .with_context(|| format!("writing {}", slice.display()))?;
    rep.note(format!(
        "Corpus: {lines} generated auth.log lines ({:.1} MB), sshd attacks among ordinary \
         syslog lines; the same file for every tool.",
        text.len() as f64 / 1e6
    ));

    let mut table = Table::new(
        "auth.log through the sshd filter",
        &[
            "tool",
            "lines per run",
            "lines/s",
            "CPU s per 1M lines",
            "matched lines",
            "log2drop is faster by",
        ],
    );

    let ours = measure_log2drop(&corpus, lines)?;
    rep.command(format!(
        "log2drop library: FileFollower (start at beginning) + SourceMatcher(sshd from \
         examples/log2drop.toml) over {}",
        corpus.display()
    ));
    let our_rate = stats::median(&ours.rate).unwrap_or(f64::NAN);
    table.row(row("log2drop (library, one thread)", &ours, our_rate));

    // sshguard's parser.
    match ctx.tools.check("sshguard") {
        Ok(()) => {
            let mut r = Runs::new(lines);
            for _ in 0..RUNS {
                let mut cmd = Command::new(SSHG_PARSER);
                let t = proc::timed(&mut cmd, Some(&corpus))?;
                let matched = count_lines(&t.output.stdout);
                r.push(t.wall.as_secs_f64(), t.cpu.as_secs_f64(), matched);
            }
            rep.command(format!("{SSHG_PARSER} < {}", corpus.display()));
            table.row(row(
                &format!("sshg-parser (sshguard {})", ctx.tools.version("sshguard")),
                &r,
                our_rate,
            ));
        }
        Err(why) => {
            rep.note(why);
            table.row(vec![Cell::text("sshg-parser"), Cell::text("not available")]);
        }
    }

    // fail2ban-regex on a slice.
    match ctx.tools.check("fail2ban") {
        Ok(()) => {
            let mut r = Runs::new(slice_lines);
            for _ in 0..RUNS {
                let mut cmd = Command::new("fail2ban-regex");
                cmd.args(["-r", "--print-no-missed"])
                    .arg(&slice)
                    .arg("sshd");
                let t = proc::timed(&mut cmd, None)?;
                let matched = fail2ban_matched(&String::from_utf8_lossy(&t.output.stdout))
                    .context("fail2ban-regex printed no `Lines:` summary")?;
                r.push(t.wall.as_secs_f64(), t.cpu.as_secs_f64(), matched);
            }
            rep.command(format!(
                "fail2ban-regex -r --print-no-missed {} sshd",
                slice.display()
            ));
            rep.note(format!(
                "fail2ban-regex ran on the first {slice_lines} lines (it is too slow for the \
                 whole corpus); its lines/s and CPU per 1M lines are scaled from that slice, \
                 and its matched count is for the slice. Its start-up (Python, filter \
                 loading) is included, as a user running it would see it."
            ));
            table.row(row(
                &format!("fail2ban-regex ({})", ctx.tools.version("fail2ban")),
                &r,
                our_rate,
            ));
        }
        Err(why) => {
            rep.note(why);
            table.row(vec![
                Cell::text("fail2ban-regex"),
                Cell::text("not available"),
            ]);
        }
    }

    // grep as the floor.
    let mut r = Runs::new(lines);
    for _ in 0..RUNS {
        let mut cmd = Command::new("grep");
        cmd.env("LC_ALL", "C")
            .args(["-cE", GREP_PATTERN])
            .arg(&corpus);
        let t = proc::timed(&mut cmd, None);
        // grep exits 1 when nothing matched; the corpus always has attacks.
        let t = t?;
        let matched = String::from_utf8_lossy(&t.output.stdout)
            .trim()
            .parse()
            .context("grep -c printed no count")?;
        r.push(t.wall.as_secs_f64(), t.cpu.as_secs_f64(), matched);
    }
    rep.command(format!(
        "LC_ALL=C grep -cE '{GREP_PATTERN}' {}",
        corpus.display()
    ));
    table.row(row("grep -cE (no address parsing)", &r, our_rate));
    rep.tables.push(table);
    rep.note(
        "grep only counts lines that look like attacks; it parses no address and decides \
         nothing, so it shows what a plain regex scan of the file costs.",
    );
    rep.note(
        "The nginx access-log corpus through the botsearch/4xx filters is not measured yet: \
         those built-in filters are not in this tree.",
    );
    Ok(())
}

fn row(tool: &str, r: &Runs, our_rate: f64) -> Vec<Cell> {
    let rate = stats::median(&r.rate).unwrap_or(f64::NAN);
    let faster = if tool.starts_with("log2drop") {
        Cell::text("-")
    } else {
        Cell::value(
            stats::ratio(our_rate, rate).unwrap_or(f64::NAN),
            "ratio",
            report::times(our_rate, rate),
        )
    };
    vec![
        Cell::text(tool),
        Cell::text(r.lines.to_string()),
        Cell::median(&r.rate, "lines/s", report::rate),
        Cell::median(&r.cpu_per_m, "s", |s| format!("{s:.2}")),
        Cell::value(r.matched as f64, "lines", r.matched.to_string()),
        faster,
    ]
}

/// log2drop's reader and matcher on this thread, as a source thread runs them.
fn measure_log2drop(corpus: &Path, lines: usize) -> Result<Runs> {
    let cfg = log2drop::config::parse(EXAMPLE_CONFIG, Path::new("examples/log2drop.toml"))
        .context("parsing examples/log2drop.toml")?;
    let sshd: &FilterConfig = cfg
        .filters
        .get("sshd")
        .context("examples/log2drop.toml has no sshd filter")?;
    let matcher = SourceMatcher::build(&[("sshd", sshd)]).context("building the sshd filter")?;
    let mut scratch = matcher.new_scratch();
    let mut r = Runs::new(lines);
    for _ in 0..RUNS {
        let mut follower = FileFollower::new(
            PathBuf::from(corpus),
            FollowOptions {
                start_at: StartAt::Beginning,
                ..FollowOptions::default()
            },
            None,
        );
        let mut seen = 0u64;
        let mut matched = 0u64;
        let cpu0 = thread_cpu()?;
        let t0 = Instant::now();
        loop {
            let more = follower
                .poll(&mut |line| {
                    seen += 1;
                    if !line.truncated
                        && matcher
                            .match_line(line.bytes, std::time::SystemTime::now(), &mut scratch)
                            .is_some()
                    {
                        matched += 1;
                    }
                })
                .with_context(|| format!("reading {}", corpus.display()))?;
            if !more {
                break;
            }
        }
        let wall = t0.elapsed().as_secs_f64();
        let cpu = thread_cpu()? - cpu0;
        if seen != lines as u64 {
            bail!("the follower handed out {seen} lines of {lines}");
        }
        r.push(wall, cpu, matched);
    }
    Ok(r)
}

/// CPU seconds (user + system) of the calling thread.
fn thread_cpu() -> Result<f64> {
    let u = getrusage(UsageWho::RUSAGE_THREAD).context("getrusage(RUSAGE_THREAD)")?;
    let s = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
    Ok(s(u.user_time()) + s(u.system_time()))
}

fn count_lines(b: &[u8]) -> u64 {
    b.iter().filter(|&&c| c == b'\n').count() as u64
}

/// The first `n` lines of `text`.
fn first_lines(text: &[u8], n: usize) -> &[u8] {
    let mut seen = 0;
    for (i, &c) in text.iter().enumerate() {
        if c == b'\n' {
            seen += 1;
            if seen == n {
                return &text[..=i];
            }
        }
    }
    text
}

/// The matched count of fail2ban-regex's `Lines: N lines, I ignored, M matched, X
/// missed` summary.
fn fail2ban_matched(out: &str) -> Option<u64> {
    let line = out.lines().find(|l| l.starts_with("Lines:"))?;
    line.split(',')
        .find_map(|part| part.trim().strip_suffix(" matched"))
        .and_then(|n| n.trim().parse().ok())
}

/// The corpus text. Temporary generator until `log2drop_bench::corpus::auth_log`
/// lands (the filters engineer owns it); replace the body with that call.
fn corpus_text(lines: usize) -> Vec<u8> {
    tmp_corpus::auth_log(lines, 42)
}

mod tmp_corpus {
    //! A stand-in auth.log generator: deterministic, about 70% sshd lines of the
    //! kinds attacks produce and 30% other syslog lines.
    use std::fmt::Write as _;

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            // xorshift64*
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    const USERS: &[&str] = &[
        "admin", "oracle", "test", "ubuntu", "git", "postgres", "user",
    ];

    pub fn auth_log(lines: usize, seed: u64) -> Vec<u8> {
        let mut rng = Rng(seed | 1);
        let mut out = String::with_capacity(lines * 110);
        for i in 0..lines {
            let s = i / 20;
            let ts = format!(
                "Nov 21 {:02}:{:02}:{:02}",
                (s / 3600) % 24,
                (s / 60) % 60,
                s % 60
            );
            let pid = 1000 + rng.below(60000);
            let ip = format!(
                "{}.{}",
                ["192.0.2", "198.51.100", "203.0.113"][rng.below(3) as usize],
                1 + rng.below(254)
            );
            let user = USERS[rng.below(USERS.len() as u64) as usize];
            let port = 1024 + rng.below(64000);
            let _ = match rng.below(100) {
                0..=24 => writeln!(
                    out,
                    "{ts} web1 sshd[{pid}]: Failed password for root from {ip} port {port} ssh2"
                ),
                25..=39 => writeln!(
                    out,
                    "{ts} web1 sshd[{pid}]: Failed password for invalid user {user} from {ip} port {port} ssh2"
                ),
                40..=49 => writeln!(
                    out,
                    "{ts} web1 sshd[{pid}]: Invalid user {user} from {ip} port {port}"
                ),
                50..=54 => writeln!(
                    out,
                    "{ts} web1 sshd[{pid}]: Connection closed by invalid user {user} {ip} port {port} [preauth]"
                ),
                55..=59 => writeln!(
                    out,
                    "{ts} web1 sshd[{pid}]: Received disconnect from {ip} port {port}:11: Bye Bye [preauth]"
                ),
                60..=64 => writeln!(
                    out,
                    "{ts} web1 sshd[{pid}]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost={ip}  user=root"
                ),
                65..=69 => writeln!(
                    out,
                    "{ts} web1 sshd[{pid}]: Accepted publickey for deploy from 192.0.2.50 port {port} ssh2: ED25519 SHA256:Xq3LkV1"
                ),
                70..=84 => writeln!(
                    out,
                    "{ts} web1 CRON[{pid}]: pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)"
                ),
                85..=94 => writeln!(
                    out,
                    "{ts} web1 systemd[1]: Started session-{pid}.scope - Session {pid} of User deploy."
                ),
                _ => writeln!(
                    out,
                    "{ts} web1 kernel: [{pid}.{port}] audit: type=1400 apparmor=\"ALLOWED\" operation=\"open\""
                ),
            };
        }
        out.into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fail2ban_summary() {
        let out = "Results\n=======\n\nLines: 100000 lines, 0 ignored, 54321 matched, 45679 missed\n[processed in 9.12 sec]\n";
        assert_eq!(fail2ban_matched(out), Some(54321));
        assert_eq!(fail2ban_matched("nothing"), None);
    }

    #[test]
    fn slices_whole_lines() {
        assert_eq!(first_lines(b"a\nb\nc\n", 2), b"a\nb\n");
        assert_eq!(first_lines(b"a\nb\n", 5), b"a\nb\n");
    }

    #[test]
    fn grep_pattern_agrees_with_the_example_filter_on_the_corpus() {
        // The grep floor must count what the filter counts, or the comparison is
        // not like for like.
        let text = corpus_text(2000);
        let cfg = log2drop::config::parse(EXAMPLE_CONFIG, Path::new("x.toml")).expect("parses");
        let m = SourceMatcher::build(&[("sshd", &cfg.filters["sshd"])]).expect("builds");
        let mut s = m.new_scratch();
        let re = regex_lite(GREP_PATTERN);
        let mut ours = 0;
        let mut greps = 0;
        for line in text.split(|&c| c == b'\n').filter(|l| !l.is_empty()) {
            ours += usize::from(
                m.match_line(line, std::time::SystemTime::now(), &mut s)
                    .is_some(),
            );
            greps += usize::from(re.is_match(line));
        }
        assert!(ours > 500, "the corpus has attacks: {ours}");
        assert_eq!(ours, greps);
    }

    fn regex_lite(p: &str) -> regex_automata::meta::Regex {
        regex_automata::meta::Regex::new(p).expect("grep pattern is a valid regex")
    }
}
