//! Matching speed: the built-in filters over the synthetic corpora, one core, full
//! address extraction. `cargo bench -p log2drop-bench --bench matching`.
//!
//! Figures are reported by criterion as lines per second ("elements"); nothing
//! here asserts a time.

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::SystemTime;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use log2drop::filter::{SourceMatcher, builtin};
use log2drop_bench::corpus;

/// Lines of the corpora the whole-corpus benches run over.
const CORPUS_LINES: usize = 1_000_000;

fn matcher(names: &[&str]) -> SourceMatcher {
    let cfgs: Vec<_> = names
        .iter()
        .map(|n| {
            let mut c = builtin::get(n).unwrap_or_else(|| panic!("no built-in filter {n}"));
            // Fixed zone: the bench must not depend on the machine's.
            c.timezone = Some("UTC".into());
            c
        })
        .collect();
    let filters: Vec<_> = names.iter().copied().zip(cfgs.iter()).collect();
    SourceMatcher::build(&filters).unwrap_or_else(|e| panic!("{e}"))
}

/// Matches every line of `corpus`; returns the number of hits.
fn run(m: &SourceMatcher, corpus: &[u8], now: SystemTime) -> usize {
    let mut scratch = m.new_scratch();
    let mut hits = 0;
    for line in corpus.split(|b| *b == b'\n') {
        if m.match_line(line, now, &mut scratch).is_some() {
            hits += 1;
        }
    }
    hits
}

fn whole_corpus(c: &mut Criterion) {
    let now = SystemTime::now();
    let auth = corpus::auth_log(CORPUS_LINES, 1);
    let sshd = matcher(&["sshd"]);
    eprintln!(
        "auth.log corpus: {} lines, {} hits",
        CORPUS_LINES,
        run(&sshd, &auth, now)
    );
    let mut g = c.benchmark_group("corpus");
    g.sample_size(10);
    g.throughput(Throughput::Elements(CORPUS_LINES as u64));
    g.bench_function("auth.log/sshd", |b| {
        b.iter(|| run(&sshd, black_box(&auth), now))
    });
    let nginx = corpus::nginx_access(CORPUS_LINES, 1);
    let web = matcher(&["nginx-botsearch", "wordpress", "http-4xx"]);
    eprintln!(
        "nginx access corpus: {} lines, {} hits",
        CORPUS_LINES,
        run(&web, &nginx, now)
    );
    g.bench_function("access.log/botsearch+wordpress+4xx", |b| {
        b.iter(|| run(&web, black_box(&nginx), now))
    });
    g.finish();
}

fn single_lines(c: &mut Criterion) {
    let now = SystemTime::now();
    let sshd = matcher(&["sshd"]);
    let mut scratch = sshd.new_scratch();
    let mut g = c.benchmark_group("line");
    g.throughput(Throughput::Elements(1));
    for (name, line) in [
        ("noise", &b"May 19 10:00:00 web1 CRON[4242]: pam_unix(cron:session): session opened for user root(uid=0) by root(uid=0)"[..]),
        ("sshd-miss", b"May 19 10:00:00 web1 sshd[4242]: pam_unix(sshd:auth): check pass; user unknown"),
        ("sshd-failed-password", b"May 19 10:00:00 web1 sshd[4242]: Failed password for invalid user admin from 203.0.113.4 port 52311 ssh2"),
        ("sshd-invalid-user", b"May 19 10:00:00 web1 sshd[4242]: Invalid user admin from 203.0.113.4 port 52311"),
        ("sshd-preauth", b"May 19 10:00:00 web1 sshd[4242]: Disconnected from invalid user admin 203.0.113.4 port 52311 [preauth]"),
        ("sshd-pam", b"May 19 10:00:00 web1 sshd[4242]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.4  user=root"),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| sshd.match_line(black_box(line), now, &mut scratch))
        });
    }
    g.finish();
}

criterion_group!(benches, whole_corpus, single_lines);
criterion_main!(benches);
