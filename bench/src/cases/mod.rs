//! The benchmark cases, numbered as in the issue, and what they share: the run
//! context (quick or full, the binaries, usable competitors, a scratch directory)
//! and the selection by `--only`.
//!
//! A case fills its [`CaseReport`] as it goes, so the figures measured before an
//! error are still written down.

mod attacks;
mod coldstart;
mod droppath;
mod f2b;
mod flood;
mod inserts;
mod latency;
mod matching;
mod memory;
mod offences;
mod report;

use std::path::PathBuf;

use anyhow::{Result, bail};

pub use attacks::baseline as baseline_agent;

use crate::competitors::Tools;
use log2drop_bench::report::CaseReport;

/// Runs per figure: every quoted figure is the median of this many runs.
pub const RUNS: usize = 5;

/// What every case gets.
#[derive(Debug)]
pub struct Ctx {
    /// Reduced sizes for CI.
    pub quick: bool,
    /// The release `log2drop` binary.
    pub agent: PathBuf,
    /// A second `log2drop` binary to run beside `agent` where a case supports
    /// it (the attacks case): a change measured against the build before it.
    pub baseline: Option<PathBuf>,
    /// The flood sender's XDP object, if built.
    pub flood_object: Option<PathBuf>,
    /// The baseline XDP program's object, if built.
    pub minimal_object: Option<PathBuf>,
    /// Which competitors are usable.
    pub tools: Tools,
    /// Scratch space, removed after the run.
    pub scratch: PathBuf,
}

impl Ctx {
    /// `full` normally, `quick` with `--quick`.
    pub fn size(&self, full: usize, quick: usize) -> usize {
        if self.quick { quick } else { full }
    }
}

/// One case.
pub struct Case {
    /// Number in the issue.
    pub id: u32,
    /// Name for `--only`.
    pub name: &'static str,
    /// Heading.
    pub title: &'static str,
    /// Runs the case, filling the report.
    pub run: fn(&Ctx, &mut CaseReport) -> Result<()>,
}

/// Every case, in order.
pub fn all() -> Vec<Case> {
    vec![
        Case {
            id: 1,
            name: "matching",
            title: "Matching throughput",
            run: matching::run,
        },
        Case {
            id: 2,
            name: "latency",
            title: "Ban-to-drop latency",
            run: latency::run,
        },
        Case {
            id: 3,
            name: "inserts",
            title: "Ban insert rate and restore",
            run: inserts::run,
        },
        Case {
            id: 4,
            name: "droppath",
            title: "Drop path: per-packet cost and drop rate under a flood",
            run: droppath::run,
        },
        Case {
            id: 5,
            name: "memory",
            title: "Memory: agent RSS and kernel maps",
            run: memory::run,
        },
        Case {
            id: 6,
            name: "coldstart",
            title: "Cold start on a 1 GB log",
            run: coldstart::run,
        },
        Case {
            id: 7,
            name: "report",
            title: "log2drop report over 1M fail2ban log lines",
            run: report::run,
        },
        Case {
            id: 8,
            name: "attacks",
            title: "sshd under attack: log2drop against sshg-parser",
            run: attacks::run,
        },
        Case {
            id: 9,
            name: "offences",
            title: "Offence counting: its cost on a log of offences (on vs off)",
            run: offences::run,
        },
    ]
}

/// The cases `--only` names (by name or number), or all of them.
pub fn select(only: &[String]) -> Result<Vec<Case>> {
    let all = all();
    if only.is_empty() {
        return Ok(all);
    }
    for o in only {
        if !all.iter().any(|c| c.name == o || c.id.to_string() == *o) {
            let names: Vec<&str> = all.iter().map(|c| c.name).collect();
            bail!("unknown case {o:?}; cases are {}", names.join(", "));
        }
    }
    Ok(all
        .into_iter()
        .filter(|c| only.iter().any(|o| c.name == o || c.id.to_string() == *o))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection_by_name_or_number() {
        let picked = select(&["1".to_owned()]).expect("known");
        assert_eq!(picked.len(), 1);
        assert_eq!(picked[0].name, "matching");
        assert_eq!(select(&[]).expect("all").len(), all().len());
        assert!(select(&["nope".to_owned()]).is_err());
    }

    #[test]
    fn ids_and_names_are_unique() {
        let all = all();
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert_ne!(a.id, b.id);
                assert_ne!(a.name, b.name);
            }
        }
    }
}
