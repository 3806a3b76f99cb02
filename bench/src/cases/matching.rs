//! Case 1, matching throughput. A generated auth.log (sshd attacks in the shapes
//! real servers see, among about 30% other syslog lines) through the sshd filter, by
//! log2drop and by the tools admins use today: sshguard's parser, `fail2ban-regex`
//! (on a slice, scaled: it is slow) and `grep -cE` as the floor of what a regex scan
//! over the file costs. Then a generated nginx access log through the
//! nginx-botsearch and http-4xx filters.
//!
//! log2drop is measured twice: as `log2drop test FILTER FILE`, a process like the
//! competitors (lines/s from wall time, CPU from the kernel's accounting), and
//! in-process the way the agent's source thread reads a file (the file follower and
//! the source matcher on one thread, its CPU time from `RUSAGE_THREAD`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Instant, SystemTime};

use anyhow::{Context, Result, bail};
use nix::sys::resource::{UsageWho, getrusage};

use log2drop::config::FilterConfig;
use log2drop::filter::builtin;
use log2drop::filter::{Outcome, Scratch, SourceMatcher};
use log2drop::source::file::{FileFollower, FollowOptions, StartAt};
use log2drop_bench::corpus;
use log2drop_bench::report::{self, CaseReport, Cell, Table};
use log2drop_bench::stats;

use super::{Ctx, RUNS};
use crate::proc;

/// sshguard's log parser (reads lines on stdin, prints one line per attack).
const SSHG_PARSER: &str = "/usr/libexec/sshguard/sshg-parser";

/// What grep looks for in auth.log: the sshd messages the built-in filter matches
/// in its normal mode, session lines (PAM, accepted logins, disconnects) included;
/// the key-exchange and banner scanners are its aggressive mode's.
const GREP_SSHD: &str = r"sshd(-session)?\[[0-9]+\]: (Failed [a-z-]+ for .* from [0-9a-f.:]+ port|[Ii]nvalid user .* from [0-9a-f.:]+|Connection (closed|reset) by .* port [0-9]+ \[preauth\]|Disconnected from .* port [0-9]+ \[preauth\]|pam_unix\(sshd:auth\): authentication failure|Received disconnect from [0-9a-f.:]+ port|Accepted [a-z-]+ for .* from [0-9a-f.:]+ port|Disconnected from user .* port [0-9]+|error: maximum authentication attempts exceeded|Disconnecting (authenticating|invalid) user)";

/// What grep looks for in the access log: 4xx answers.
const GREP_4XX: &str = r#"^[0-9a-f.:]+ \S+ \S+ \[[^]]+\] "[^"]*" 4[0-9][0-9] "#;

/// Seed of both corpora.
const SEED: u64 = 42;

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
    /// Offences, for the tools that tell them apart from matched lines
    /// (log2drop: one attempt, one offence).
    offences: Option<u64>,
}

impl Runs {
    fn new(lines: usize) -> Runs {
        Runs {
            rate: Vec::new(),
            cpu_per_m: Vec::new(),
            matched: 0,
            lines,
            offences: None,
        }
    }

    fn push(&mut self, wall_s: f64, cpu_s: f64, matched: u64) {
        self.rate.push(self.lines as f64 / wall_s.max(1e-9));
        self.cpu_per_m
            .push(cpu_s * 1_000_000.0 / (self.lines.max(1) as f64));
        self.matched = matched;
    }
}

/// A table of tools over one corpus, with log2drop's rate as the reference.
struct Comparison {
    table: Table,
    ours: f64,
}

impl Comparison {
    fn new(title: &str) -> Comparison {
        Comparison {
            table: Table::new(
                title,
                &[
                    "tool",
                    "lines per run",
                    "lines/s",
                    "CPU s per 1M lines",
                    "matched lines",
                    "log2drop test is faster by",
                ],
            ),
            ours: f64::NAN,
        }
    }

    /// Adds log2drop's reference row.
    fn ours(&mut self, tool: &str, r: &Runs) {
        self.ours = stats::median(&r.rate).unwrap_or(f64::NAN);
        self.add(tool, r, false);
    }

    fn add(&mut self, tool: &str, r: &Runs, compare: bool) {
        let rate = stats::median(&r.rate).unwrap_or(f64::NAN);
        let faster = if compare {
            Cell::value(
                stats::ratio(self.ours, rate).unwrap_or(f64::NAN),
                "ratio",
                report::times(self.ours, rate),
            )
        } else {
            Cell::text("-")
        };
        self.table.row(vec![
            Cell::text(tool),
            Cell::text(r.lines.to_string()),
            Cell::median(&r.rate, "lines/s", report::rate),
            Cell::median(&r.cpu_per_m, "s", |s| format!("{s:.2}")),
            Cell::value(r.matched as f64, "lines", r.matched.to_string()),
            faster,
        ]);
    }

    fn missing(&mut self, tool: &str) {
        self.table
            .row(vec![Cell::text(tool), Cell::text("not available")]);
    }
}

pub fn run(ctx: &Ctx, rep: &mut CaseReport) -> Result<()> {
    auth_log(ctx, rep)?;
    nginx(ctx, rep)?;
    fail2ban_filter_file(ctx, rep)
}

/// fail2ban's own sshd filter file, read by log2drop (`log2drop test FILE`) and by
/// `fail2ban-regex`, on the same lines: the speed an admin gets by switching
/// without rewriting a filter. The tools take turns round by round (and a
/// `--baseline-agent` with them), so load changes hit them alike.
fn fail2ban_filter_file(ctx: &Ctx, rep: &mut CaseReport) -> Result<()> {
    const FILTER: &str = "/etc/fail2ban/filter.d/sshd.conf";
    if let Err(why) = ctx.tools.check("fail2ban") {
        rep.note(why);
        return Ok(());
    }
    let lines = ctx.size(100_000, 5_000);
    let path = ctx.scratch.join("auth-f2b.log");
    let text = corpus::auth_log(lines, SEED);
    std::fs::write(&path, &text).with_context(|| format!("writing {}", path.display()))?;
    let mut cmp = Comparison::new("auth.log through fail2ban's own sshd.conf, same file for both");
    let mut ours = Runs::new(lines);
    let mut base = ctx.baseline.as_ref().map(|_| Runs::new(lines));
    let mut theirs = Runs::new(lines);
    for _ in 0..RUNS {
        log2drop_test_once(&ctx.agent, FILTER, &path, &mut ours)?;
        if let (Some(b), Some(agent)) = (base.as_mut(), ctx.baseline.as_ref()) {
            log2drop_test_once(agent, FILTER, &path, b)?;
        }
        fail2ban_regex_once(&path, FILTER, &mut theirs)?;
    }
    rep.command(format!(
        "{} test {FILTER} {}",
        ctx.agent.display(),
        path.display()
    ));
    cmp.ours(&format!("log2drop test {FILTER}"), &ours);
    if let (Some(b), Some(agent)) = (&base, &ctx.baseline) {
        rep.command(format!(
            "{} test {FILTER} {}",
            agent.display(),
            path.display()
        ));
        cmp.add(&format!("baseline: log2drop test {FILTER}"), b, true);
    }
    rep.command(format!(
        "fail2ban-regex -r --print-no-missed {} {FILTER}",
        path.display()
    ));
    cmp.add(
        &format!(
            "fail2ban-regex {FILTER} ({})",
            ctx.tools.version("fail2ban")
        ),
        &theirs,
        true,
    );
    rep.tables.push(cmp.table);
    let cpu = |r: &Runs| stats::median(&r.cpu_per_m).unwrap_or(f64::NAN);
    rep.note(format!(
        "fail2ban filter file: both tools read {FILTER} (its includes, prefregex, failregex \
         and date detection) over all {lines} lines of log2drop_bench::corpus::auth_log({lines}, \
         {SEED}), in turns, {RUNS} rounds; CPU time per line: fail2ban-regex / log2drop = {:.1}x.",
        cpu(&theirs) / cpu(&ours)
    ));
    Ok(())
}

/// One `log2drop test FILTER FILE` run into `r`.
fn log2drop_test_once(agent: &Path, filter: &str, file: &Path, r: &mut Runs) -> Result<()> {
    let mut cmd = Command::new(agent);
    cmd.arg("test").arg(filter).arg(file);
    let t = proc::timed(&mut cmd, None)?;
    let out = String::from_utf8_lossy(&t.output.stdout);
    let (read, matched) = test_summary(&out)
        .with_context(|| format!("`log2drop test` printed no `lines:` summary:\n{out}"))?;
    if read != r.lines as u64 {
        bail!("log2drop test read {read} lines of {}", r.lines);
    }
    r.push(t.wall.as_secs_f64(), t.cpu.as_secs_f64(), matched);
    r.offences = test_offences(&out);
    Ok(())
}

/// One `fail2ban-regex` run into `r`.
fn fail2ban_regex_once(file: &Path, filter: &str, r: &mut Runs) -> Result<()> {
    let mut cmd = Command::new("fail2ban-regex");
    cmd.args(["-r", "--print-no-missed"]).arg(file).arg(filter);
    let t = proc::timed(&mut cmd, None)?;
    let matched = fail2ban_matched(&String::from_utf8_lossy(&t.output.stdout))
        .context("fail2ban-regex printed no `Lines:` summary")?;
    r.push(t.wall.as_secs_f64(), t.cpu.as_secs_f64(), matched);
    Ok(())
}

fn auth_log(ctx: &Ctx, rep: &mut CaseReport) -> Result<()> {
    let lines = ctx.size(1_000_000, 100_000);
    let slice_lines = ctx.size(100_000, 5_000);
    let corpus_path = ctx.scratch.join("auth.log");
    let slice = ctx.scratch.join("auth-slice.log");
    let text = corpus::auth_log(lines, SEED);
    std::fs::write(&corpus_path, &text)
        .with_context(|| format!("writing {}", corpus_path.display()))?;
    std::fs::write(&slice, first_lines(&text, slice_lines))
        .with_context(|| format!("writing {}", slice.display()))?;
    rep.note(format!(
        "auth.log corpus: log2drop_bench::corpus::auth_log({lines}, {SEED}), {:.1} MB; the \
         same file for every tool.",
        text.len() as f64 / 1e6
    ));
    let mut cmp = Comparison::new("auth.log through the sshd filter");

    let ours = log2drop_test(ctx, rep, "sshd", &corpus_path, lines)?;
    cmp.ours("log2drop test sshd", &ours);
    let (lib, lib_offences) = library(&["sshd"], &corpus_path, lines)?;
    cmp.add(
        "log2drop library, one thread (the agent's reader)",
        &lib,
        true,
    );
    rep.note(offences_note(&ours, &lib, lib_offences));
    rep.command(format!(
        "log2drop library: FileFollower (start at beginning) + SourceMatcher(built-in sshd) \
         over {}",
        corpus_path.display()
    ));

    match ctx.tools.check("sshguard") {
        Ok(()) => {
            let mut r = Runs::new(lines);
            for _ in 0..RUNS {
                let mut cmd = Command::new(SSHG_PARSER);
                let t = proc::timed(&mut cmd, Some(&corpus_path))?;
                let matched = count_lines(&t.output.stdout);
                r.push(t.wall.as_secs_f64(), t.cpu.as_secs_f64(), matched);
            }
            rep.command(format!("{SSHG_PARSER} < {}", corpus_path.display()));
            cmp.add(
                &format!("sshg-parser (sshguard {})", ctx.tools.version("sshguard")),
                &r,
                true,
            );
        }
        Err(why) => {
            rep.note(why);
            cmp.missing("sshg-parser");
        }
    }

    match ctx.tools.check("fail2ban") {
        Ok(()) => {
            let r = fail2ban_regex(rep, &slice, "sshd", slice_lines)?;
            cmp.add(
                &format!("fail2ban-regex sshd ({})", ctx.tools.version("fail2ban")),
                &r,
                true,
            );
        }
        Err(why) => {
            rep.note(why);
            cmp.missing("fail2ban-regex");
        }
    }

    let r = grep(rep, GREP_SSHD, &corpus_path, lines)?;
    cmp.add("grep -cE (no address parsing)", &r, true);
    rep.tables.push(cmp.table);
    rep.note(format!(
        "fail2ban-regex ran on the first {slice_lines} lines (it is too slow for the whole \
         corpus); its lines/s and CPU per 1M lines are scaled from that slice and its matched \
         count is for the slice. Its start-up (Python, filter loading) is included, as a user \
         running it sees it."
    ));
    rep.note(
        "grep counts lines that look like sshd failures; it parses no address and decides \
         nothing, so it shows what a plain regex scan of the file costs. Matched counts differ \
         between tools because their sshd rules cover different messages.",
    );
    Ok(())
}

fn nginx(ctx: &Ctx, rep: &mut CaseReport) -> Result<()> {
    let lines = ctx.size(1_000_000, 100_000);
    let slice_lines = ctx.size(100_000, 5_000);
    let corpus_path = ctx.scratch.join("access.log");
    let slice = ctx.scratch.join("access-slice.log");
    let text = corpus::nginx_access(lines, SEED);
    std::fs::write(&corpus_path, &text)
        .with_context(|| format!("writing {}", corpus_path.display()))?;
    std::fs::write(&slice, first_lines(&text, slice_lines))
        .with_context(|| format!("writing {}", slice.display()))?;
    rep.note(format!(
        "nginx corpus: log2drop_bench::corpus::nginx_access({lines}, {SEED}), {:.1} MB.",
        text.len() as f64 / 1e6
    ));
    let mut cmp =
        Comparison::new("nginx access log through the nginx-botsearch and http-4xx filters");
    let ours = log2drop_test(ctx, rep, "nginx-botsearch", &corpus_path, lines)?;
    cmp.ours("log2drop test nginx-botsearch", &ours);
    let r = log2drop_test(ctx, rep, "http-4xx", &corpus_path, lines)?;
    cmp.add("log2drop test http-4xx", &r, true);
    let (lib, _) = library(&["nginx-botsearch", "http-4xx"], &corpus_path, lines)?;
    cmp.add(
        "log2drop library, both filters on one source, one thread",
        &lib,
        true,
    );
    match ctx.tools.check("fail2ban") {
        Ok(()) => {
            let r = fail2ban_regex(rep, &slice, "nginx-botsearch", slice_lines)?;
            cmp.add(
                &format!(
                    "fail2ban-regex nginx-botsearch ({})",
                    ctx.tools.version("fail2ban")
                ),
                &r,
                true,
            );
        }
        Err(why) => {
            rep.note(why);
            cmp.missing("fail2ban-regex");
        }
    }
    let r = grep(rep, GREP_4XX, &corpus_path, lines)?;
    cmp.add("grep -cE 4xx (no address parsing)", &r, true);
    rep.tables.push(cmp.table);
    rep.note(
        "fail2ban ships no generic 4xx filter, so only its nginx-botsearch is compared; \
         sshguard does not read web logs.",
    );
    Ok(())
}

/// `log2drop test FILTER FILE`, timed as a process.
fn log2drop_test(
    ctx: &Ctx,
    rep: &mut CaseReport,
    filter: &str,
    file: &Path,
    lines: usize,
) -> Result<Runs> {
    let mut r = Runs::new(lines);
    for _ in 0..RUNS {
        log2drop_test_once(&ctx.agent, filter, file, &mut r)?;
    }
    rep.command(format!(
        "{} test {filter} {}",
        ctx.agent.display(),
        file.display()
    ));
    Ok(r)
}

/// `fail2ban-regex` over a slice.
fn fail2ban_regex(rep: &mut CaseReport, slice: &Path, filter: &str, lines: usize) -> Result<Runs> {
    let mut r = Runs::new(lines);
    for _ in 0..RUNS {
        fail2ban_regex_once(slice, filter, &mut r)?;
    }
    rep.command(format!(
        "fail2ban-regex -r --print-no-missed {} {filter}",
        slice.display()
    ));
    Ok(r)
}

/// `grep -cE PATTERN FILE` in the C locale.
fn grep(rep: &mut CaseReport, pattern: &str, file: &Path, lines: usize) -> Result<Runs> {
    let mut r = Runs::new(lines);
    for _ in 0..RUNS {
        let mut cmd = Command::new("grep");
        cmd.env("LC_ALL", "C").args(["-cE", pattern]).arg(file);
        // grep exits 1 when nothing matched; both corpora always have matches.
        let t = proc::timed(&mut cmd, None)?;
        let matched = String::from_utf8_lossy(&t.output.stdout)
            .trim()
            .parse()
            .context("grep -c printed no count")?;
        r.push(t.wall.as_secs_f64(), t.cpu.as_secs_f64(), matched);
    }
    rep.command(format!("LC_ALL=C grep -cE '{pattern}' {}", file.display()));
    Ok(r)
}

/// log2drop's reader and matcher on this thread, as a source thread runs them.
///
/// "Matched" counts what `log2drop test` counts: every line a regex matched, the
/// session lines that did not count on their own included. Counting the agent's
/// offences instead (`match_line`) made this row report 108,008 "matched lines"
/// beside `log2drop test`'s 544,732 on the same file: the same matching, another
/// quantity. The offences, the sessions that end without a line of their own
/// included (as the agent's source thread takes them), are returned beside.
fn library(filters: &[&str], corpus: &Path, lines: usize) -> Result<(Runs, u64)> {
    let cfgs: Vec<(&str, FilterConfig)> = filters
        .iter()
        .map(|f| {
            builtin::get(f)
                .map(|c| (*f, c))
                .with_context(|| format!("no built-in filter {f}"))
        })
        .collect::<Result<_>>()?;
    let refs: Vec<(&str, &FilterConfig)> = cfgs.iter().map(|(n, c)| (*n, c)).collect();
    let matcher = SourceMatcher::build(&refs).context("building the filters")?;
    let mut r = Runs::new(lines);
    let mut offences = 0;
    for _ in 0..RUNS {
        let mut scratch = matcher.new_scratch();
        let mut follower = FileFollower::new(
            PathBuf::from(corpus),
            FollowOptions {
                start_at: StartAt::Beginning,
                ..FollowOptions::default()
            },
            None,
        );
        let mut n = LibraryCounts::default();
        let cpu0 = thread_cpu()?;
        let t0 = Instant::now();
        // The agent reads `now` once per read, not per line.
        let now = SystemTime::now();
        loop {
            let more = follower
                .poll(&mut |line| n.line(&matcher, &mut scratch, line.bytes, line.truncated, now))
                .with_context(|| format!("reading {}", corpus.display()))?;
            if !more {
                break;
            }
        }
        n.finish(&matcher, &mut scratch);
        let wall = t0.elapsed().as_secs_f64();
        let cpu = thread_cpu()? - cpu0;
        if n.seen != lines as u64 {
            bail!("the follower handed out {} lines of {lines}", n.seen);
        }
        r.push(wall, cpu, n.matched);
        offences = n.offences;
    }
    Ok((r, offences))
}

/// What [`library`] counts, the way `log2drop test` and the agent count it.
#[derive(Debug, Default, PartialEq, Eq)]
struct LibraryCounts {
    seen: u64,
    /// Lines a regex matched (offence or session line), as `log2drop test`.
    matched: u64,
    /// Offences, as the agent's source thread sends them to the engine.
    offences: u64,
}

impl LibraryCounts {
    fn line(
        &mut self,
        m: &SourceMatcher,
        s: &mut Scratch,
        line: &[u8],
        truncated: bool,
        now: SystemTime,
    ) {
        self.seen += 1;
        // A cut line is never matched by the agent.
        if !truncated {
            match m.examine(line, now, s) {
                Outcome::Hit(_) | Outcome::Ended { .. } => {
                    self.matched += 1;
                    self.offences += 1;
                }
                Outcome::Held(_) => self.matched += 1,
                Outcome::Ignored { .. } | Outcome::Miss => {}
            }
        }
        while m.take_deferred(s).is_some() {
            self.offences += 1;
        }
    }

    /// The end of the file ends every open session.
    fn finish(&mut self, m: &SourceMatcher, s: &mut Scratch) {
        m.finish(s);
        while m.take_deferred(s).is_some() {
            self.offences += 1;
        }
    }
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

/// Lines read and matched from `log2drop test`'s `lines: N read, M matched, ...`.
fn test_summary(out: &str) -> Option<(u64, u64)> {
    let line = out.lines().find_map(|l| l.strip_prefix("lines:"))?;
    let field = |suffix: &str| {
        line.split(',')
            .find_map(|part| part.trim().strip_suffix(suffix))
            .and_then(|n| n.trim().parse().ok())
    };
    Some((field(" read")?, field(" matched")?))
}

/// The offences of `log2drop test`'s `offences: N (...)` line.
fn test_offences(out: &str) -> Option<u64> {
    let rest = out.lines().find_map(|l| l.strip_prefix("offences:"))?;
    rest.split_whitespace().next()?.parse().ok()
}

/// Says what the library row's "matched lines" are, and whether its offences are
/// those of `log2drop test`: both run the same matcher, so they must agree.
fn offences_note(test: &Runs, lib: &Runs, lib_offences: u64) -> String {
    let agree = match test.offences {
        Some(t) if t == lib_offences && test.matched == lib.matched => "the same as".to_string(),
        Some(t) => format!(
            "DIFFERENT FROM {t} offences and {} matched lines of",
            test.matched
        ),
        None => "not compared with".to_string(),
    };
    format!(
        "The library row counts matched lines as `log2drop test` does (session lines \
         included); its offences, counted as the agent's source thread counts them (sessions \
         ended by their window or the end of the file included): {lib_offences}, {agree} \
         `log2drop test`."
    )
}

/// The matched count of fail2ban-regex's `Lines: N lines, I ignored, M matched, X
/// missed` summary.
fn fail2ban_matched(out: &str) -> Option<u64> {
    let line = out.lines().find(|l| l.starts_with("Lines:"))?;
    line.split(',')
        .find_map(|part| part.trim().strip_suffix(" matched"))
        .and_then(|n| n.trim().parse().ok())
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
    fn log2drop_test_summary() {
        let out = "filter sshd\nlines: 3 read, 2 matched, 0 ignored, 1 missed\nregexes:\n";
        assert_eq!(test_summary(out), Some((3, 2)));
        assert_eq!(test_summary("lines: x read"), None);
    }

    #[test]
    fn library_row_counts_what_log2drop_test_counts() {
        // Regression: the row once counted offences (`match_line`) as matched lines,
        // about a fifth of what `log2drop test` reports on the same sshd log.
        let text = corpus::auth_log(5_000, 7);
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("auth.log");
        std::fs::write(&path, &text).expect("write corpus");
        let (lib, offences) = library(&["sshd"], &path, 5_000).expect("library row");

        // The same file split here rather than by the follower, counted as
        // `log2drop test` counts (cli/test.rs): matched lines and offences.
        let cfg = builtin::get("sshd").expect("built-in");
        let m = SourceMatcher::build(&[("sshd", &cfg)]).expect("builds");
        let mut s = m.new_scratch();
        let now = SystemTime::now();
        let (mut matched, mut counted) = (0u64, 0u64);
        for line in text.split(|&c| c == b'\n').filter(|l| !l.is_empty()) {
            let outcome = m.examine(line, now, &mut s);
            matched += u64::from(!matches!(outcome, Outcome::Miss | Outcome::Ignored { .. }));
            counted += u64::from(matches!(outcome, Outcome::Hit(_) | Outcome::Ended { .. }));
            while m.take_deferred(&mut s).is_some() {
                counted += 1;
            }
        }
        m.finish(&mut s);
        while m.take_deferred(&mut s).is_some() {
            counted += 1;
        }
        assert_eq!(lib.matched, matched);
        assert_eq!(offences, counted);
        assert!(
            matched > offences,
            "sessions hold lines: {matched} vs {offences}"
        );
    }

    #[test]
    fn reads_test_offences() {
        let out = "lines: 3 read, 2 matched, 0 ignored, 1 missed\noffences: 1 (1 matched session lines did not count on their own: one attempt, one offence)\n";
        assert_eq!(test_offences(out), Some(1));
        assert_eq!(test_offences("offences: x"), None);
    }

    #[test]
    fn slices_whole_lines() {
        assert_eq!(first_lines(b"a\nb\nc\n", 2), b"a\nb\n");
        assert_eq!(first_lines(b"a\nb\n", 5), b"a\nb\n");
    }

    #[test]
    fn grep_patterns_find_what_the_filters_find() {
        // The grep floor must count roughly what the filter counts, or it is not a
        // like-for-like floor.
        let now = SystemTime::now();
        for (text, filter, pattern) in [
            (corpus::auth_log(5_000, 7), "sshd", GREP_SSHD),
            (corpus::nginx_access(5_000, 7), "http-4xx", GREP_4XX),
        ] {
            let cfg = builtin::get(filter).expect("built-in");
            let m = SourceMatcher::build(&[(filter, &cfg)]).expect("builds");
            let mut s = m.new_scratch();
            let re = regex_automata::meta::Regex::new(pattern).expect("valid regex");
            let (mut ours, mut greps) = (0usize, 0usize);
            for line in text.split(|&c| c == b'\n').filter(|l| !l.is_empty()) {
                // Lines the filter matched, offences or not: a session holds some
                // (sshd's PAM line beside its `Failed password`), grep cannot.
                ours += usize::from(!matches!(
                    m.examine(line, now, &mut s),
                    Outcome::Miss | Outcome::Ignored { .. }
                ));
                greps += usize::from(re.is_match(line));
            }
            assert!(ours > 500, "{filter}: the corpus has attacks ({ours})");
            let diff = ours.abs_diff(greps) as f64 / ours as f64;
            assert!(diff < 0.05, "{filter}: filter {ours} vs grep {greps}");
        }
    }
}
