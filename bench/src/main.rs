//! `log2drop-bench`: runs the benchmark cases side by side with the tools admins
//! would otherwise use, and writes the figures down (`results.md`, `results.json`).
//! `cargo xtask bench` builds everything and starts this as root; running it by
//! hand works too (see `--help`).
//!
//! Every case runs even when an earlier one failed, and a case whose competitor is
//! missing still reports log2drop's figures. A case that panics (the namespace
//! harness panics on a failed setup command) is recorded as failed; its Drop guards
//! have already removed what it created.

mod addrs;
mod agentlab;
mod cases;
mod competitors;
mod cpu;
mod floodlab;
mod frames;
mod machine;
mod minimal;
mod packet;
mod pinned;
mod proc;
mod xdplab;

use std::path::PathBuf;
use std::time::{Instant, SystemTime};

use anyhow::{Context, Result, bail};
use clap::Parser;

use log2drop_bench::report::{self, CaseReport, CaseStatus, Report};

/// Runs log2drop's benchmark cases and writes results.md and results.json.
#[derive(Debug, Parser)]
#[command(name = "log2drop-bench")]
struct Cli {
    /// Reduced sizes and run counts, for CI (about 2 minutes).
    #[arg(long)]
    quick: bool,
    /// Run only these cases (names or numbers, comma separated):
    /// matching, latency, inserts, droppath, memory, coldstart, report, attacks, offences.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// The log2drop binary to measure (a release build).
    #[arg(long, value_name = "PATH")]
    agent: PathBuf,
    /// A second log2drop binary (the build before a change) that the attacks
    /// case runs in the same rounds as --agent.
    #[arg(long, value_name = "PATH")]
    baseline_agent: Option<PathBuf>,
    /// The flood sender's XDP object (built by `cargo xtask build-ebpf`).
    #[arg(long, value_name = "PATH")]
    flood_object: Option<PathBuf>,
    /// The baseline XDP program the flood case compares log2drop with (built by
    /// `cargo xtask build-ebpf` as `log2drop-minimal`).
    #[arg(long, value_name = "PATH")]
    minimal_object: Option<PathBuf>,
    /// Directory for results.md and results.json.
    #[arg(long, value_name = "DIR")]
    out_dir: PathBuf,
    /// Do not install missing competitors.
    #[arg(long)]
    no_install: bool,
    /// The command line to quote in the report (xtask passes its own).
    #[arg(long, value_name = "TEXT")]
    command_line: Option<String>,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    if !nix::unistd::geteuid().is_root() {
        bail!("the bench needs root (namespaces, XDP, nftables, apt); run it with sudo");
    }
    let selected = cases::select(&cli.only)?;
    let agent = std::path::absolute(&cli.agent)
        .with_context(|| format!("making {} absolute", cli.agent.display()))?;
    if !agent.is_file() {
        bail!(
            "{} does not exist: build it with `cargo build --release -p log2drop`",
            agent.display()
        );
    }
    // SAFETY: still single-threaded here (no case has started a thread yet), so no
    // other thread can read the environment while it changes. The harness's `Agent`
    // starts the binary named by LOG2DROP_BIN; warnings only, so logging does not
    // weigh on the figures.
    unsafe {
        std::env::set_var("LOG2DROP_BIN", &agent);
        if std::env::var_os("RUST_LOG").is_none() {
            std::env::set_var("RUST_LOG", "warn");
        }
    }
    let started_wall = SystemTime::now();
    let started = Instant::now();
    let machine = machine::describe(&agent);
    let tools = competitors::Tools::prepare(!cli.no_install);
    let scratch = tempfile::Builder::new()
        .prefix("log2drop-bench-")
        .tempdir()
        .context("creating a scratch directory")?;
    let ctx = cases::Ctx {
        quick: cli.quick,
        agent,
        baseline: cli
            .baseline_agent
            .as_deref()
            .map(cases::baseline_agent)
            .transpose()?,
        flood_object: cli.flood_object.clone(),
        minimal_object: cli.minimal_object.clone(),
        tools: tools.clone(),
        scratch: scratch.path().to_path_buf(),
    };

    let mut reports = Vec::new();
    for case in selected {
        eprintln!("==> case {}: {}", case.id, case.title);
        let t0 = Instant::now();
        let mut rep = CaseReport::new(case.id, case.name, case.title);
        let outcome =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (case.run)(&ctx, &mut rep)));
        rep.status = match outcome {
            Ok(Ok(())) => CaseStatus::Ok,
            Ok(Err(e)) => CaseStatus::Failed {
                error: format!("{e:#}"),
            },
            Err(panic) => CaseStatus::Failed {
                error: panic_text(&panic),
            },
        };
        rep.elapsed_secs = t0.elapsed().as_secs_f64();
        // Corpora and logs are large (a 1 GB log for case 6); free the disk at once.
        if let Err(e) = clear_dir(&ctx.scratch) {
            eprintln!("    warning: cannot empty {}: {e}", ctx.scratch.display());
        }
        if let CaseStatus::Failed { error } = &rep.status {
            eprintln!("    case {} failed: {error}", case.name);
        }
        eprintln!("    done in {:.1}s", rep.elapsed_secs);
        reports.push(rep);
    }

    let report = Report {
        schema: report::SCHEMA_VERSION,
        mode: if cli.quick { "quick" } else { "full" }.to_owned(),
        started: humantime::format_rfc3339_seconds(started_wall).to_string(),
        elapsed_secs: started.elapsed().as_secs_f64(),
        command: cli
            .command_line
            .unwrap_or_else(|| std::env::args().collect::<Vec<_>>().join(" ")),
        machine,
        tools: tools.statuses(),
        cases: reports,
    };
    print!("{}", report.to_text());
    std::fs::create_dir_all(&cli.out_dir)
        .with_context(|| format!("creating {}", cli.out_dir.display()))?;
    let md = cli.out_dir.join("results.md");
    let json = cli.out_dir.join("results.json");
    std::fs::write(&md, report.to_markdown())
        .with_context(|| format!("writing {}", md.display()))?;
    let text = serde_json::to_string_pretty(&report).context("serialising the report")?;
    std::fs::write(&json, text + "\n").with_context(|| format!("writing {}", json.display()))?;
    eprintln!("==> wrote {} and {}", md.display(), json.display());
    Ok(())
}

/// Removes everything inside `dir`, keeping `dir`.
fn clear_dir(dir: &std::path::Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            std::fs::remove_dir_all(&path)?;
        } else {
            std::fs::remove_file(&path)?;
        }
    }
    Ok(())
}

fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    let msg = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("non-text panic");
    format!("panicked: {msg}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn only_takes_a_list() {
        let cli = Cli::try_parse_from([
            "b",
            "--agent",
            "a",
            "--out-dir",
            "o",
            "--only",
            "matching,4",
        ])
        .expect("parses");
        assert_eq!(cli.only, ["matching", "4"]);
    }
}
