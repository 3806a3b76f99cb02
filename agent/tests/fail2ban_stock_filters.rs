//! Every stock fail2ban filter that has a test log, run by log2drop exactly as
//! an admin switching would run it, catches what `fail2ban-regex` catches,
//! line by line, with the same host (issue 11).
//!
//! Read at run time from Debian's `fail2ban` package (in CI's apt packages),
//! never copied into the project: the filters in `/etc/fail2ban/filter.d` and
//! the test logs in `fail2ban/tests/files/logs`, whose `# failJSON:` comments
//! say what each line must give. `fail2ban_corpus.py` reads those logs the way
//! fail2ban's own `samplestestcase.py` does (one job per filter and
//! `# filterOptions:` set) and runs each job's lines through fail2ban-regex's
//! own class in one Python process. log2drop runs the same lines the way the
//! issue says: `log2drop import-fail2ban --all` to a config, then
//! `log2drop test --config imported.toml 'NAME[options]' FILE --json`.
//!
//! Per line: what fail2ban-regex reports, log2drop reports with the same
//! address; log2drop reports nothing fail2ban-regex does not; and on the lines
//! a failJSON covers, what it says. The table and totals are printed
//! (`cargo test -p log2drop --test fail2ban_stock_filters -- --nocapture`).
//!
//! Without fail2ban the test is skipped, saying so; under `CI=true` that is a
//! failure.

mod fail2ban_common;

use std::collections::BTreeMap;

use fail2ban_common::{
    Row, compare, corpus, fail2ban_or_skip, import_all, log2drop_hits, only_filters, table,
};

/// Filters where log2drop does not catch every line fail2ban catches, with the
/// least it must still catch of their must-count lines (a regression fails).
/// Every other filter must agree with fail2ban-regex exactly.
///
/// mysqld-auth: `'root'@'localhost'`: fail2ban resolves the single-label name
/// to 127.0.0.1 (which its `ignoreself` never bans); log2drop takes only names
/// of two labels or more (docs/filters.md, "Host names").
const FLOORS: &[(&str, usize)] = &[("mysqld-auth", 16)];

#[test]
fn stock_filters_catch_what_fail2ban_regex_catches() {
    let Some(python) = fail2ban_or_skip() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let (filters, base_file) = import_all(dir.path());
    let corpus = corpus("fail2ban_corpus.py", &python, &base_file, &only_filters());

    let mut rows: BTreeMap<String, Row> = BTreeMap::new();
    for job in &corpus.jobs {
        let hits = log2drop_hits(&filters, job);
        compare(job, &hits, rows.entry(job.filter.clone()).or_default());
    }
    let title = format!(
        "fail2ban {}: {} filters, {} option sets",
        corpus.version,
        rows.len(),
        corpus.jobs.len()
    );
    eprintln!("{}", table(&title, &rows));
    for r in rows.values() {
        for n in &r.notes {
            eprintln!("{n}");
        }
    }

    let mut failures = Vec::new();
    for (name, r) in &rows {
        if r.wrong_host > 0 || r.extra > 0 {
            failures.push(format!(
                "{name}: {} wrong host(s), {} extra",
                r.wrong_host, r.extra
            ));
        }
        match FLOORS.iter().find(|(f, _)| f == name) {
            Some((_, floor)) if r.l2d_caught < *floor => failures.push(format!(
                "{name}: log2drop catches {} of its must-count lines, below its floor {floor}",
                r.l2d_caught
            )),
            Some(_) => {}
            None if r.missed > 0 => failures.push(format!(
                "{name}: misses {} line(s) fail2ban-regex catches",
                r.missed
            )),
            None => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
