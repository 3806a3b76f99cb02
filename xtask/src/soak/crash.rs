//! `cargo xtask soak --crash`: builds the agent and `log2drop-crash-soak` (debug:
//! the machine is shared, and what is measured is correctness, not speed) and runs
//! the soak as root. The full form kills the agent 100 times, the reduced form
//! (`--quick`, run by `cargo xtask test`) 10 times in well under a minute. What it
//! checks is described in `tests/src/bin/crash_soak/main.rs` and
//! docs/reliability.md ("Crash safety").

use std::process::Command;
use std::time::Instant;

use anyhow::{Result, bail};

use super::Options;
use crate::{build_ebpf, host_target_dir, process, test, workspace_root};

/// Cycles of the full and the reduced form.
const FULL_CYCLES: u32 = 100;
const QUICK_CYCLES: u32 = 10;

/// What to do when not root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WithoutRoot {
    /// Asked for directly: an error that says how to run it.
    Fail,
    /// Part of `cargo xtask test`: skip and say so, except under CI=true.
    SkipOutsideCi,
}

pub fn run(opts: &Options, without_root: WithoutRoot) -> Result<()> {
    let started = Instant::now();
    let cycles = opts.cycles.unwrap_or(if opts.quick {
        QUICK_CYCLES
    } else {
        FULL_CYCLES
    });
    let what = format!("soak: crash safety, {cycles} kill -9 cycles (XDP and nftables)");
    let euid = test::current_euid()?;
    if euid != 0 {
        let why = format!(
            "the crash soak needs root (network namespaces, veth, XDP, bpffs); running as uid {euid}"
        );
        match without_root {
            WithoutRoot::SkipOutsideCi if !test::is_ci(std::env::var("CI").ok().as_deref()) => {
                eprintln!(
                    "==> SKIPPED {what}: {why}. Run `sudo -E cargo xtask soak --crash --quick`."
                );
                return Ok(());
            }
            WithoutRoot::SkipOutsideCi => {
                bail!("{why}, and CI=true forbids skipping it. Run CI as root.")
            }
            WithoutRoot::Fail => bail!("{why}. Run `sudo -E cargo xtask soak --crash`."),
        }
    }
    process::announce(&what);
    build_ebpf::run(&build_ebpf::Options { debug: false })?;
    let build = "cargo build -p log2drop -p log2drop-tests (agent and crash soak)";
    process::announce(build);
    let mut cmd = process::host_cargo();
    cmd.current_dir(workspace_root()).args([
        "build",
        "-p",
        "log2drop",
        "-p",
        "log2drop-tests",
        "--bin",
        "log2drop",
        "--bin",
        "log2drop-crash-soak",
    ]);
    process::run(&mut cmd, "Fix the build error above.")?;
    std::fs::create_dir_all(host_target_dir().join("tmp"))?;

    let debug = std::path::absolute(host_target_dir().join("debug"))?;
    let mut soak = Command::new(debug.join("log2drop-crash-soak"));
    process::clear_outer_build_env(&mut soak);
    soak.env("LOG2DROP_BIN", debug.join("log2drop"))
        .arg("--cycles")
        .arg(cycles.to_string())
        .arg("--command-line")
        .arg(command_line(opts, cycles))
        .arg("--failed-output")
        .arg(host_target_dir().join("tmp/crash-soak-agent.out"));
    if std::env::var_os("RUST_LOG").is_none() {
        // The agent logs every ban at debug; info keeps its output file small.
        soak.env("RUST_LOG", "info");
    }
    if let Some(seed) = opts.seed {
        soak.arg("--seed").arg(seed.to_string());
    }
    process::run(
        &mut soak,
        "The crash soak found failures (listed above with the seed to reproduce them).",
    )?;
    process::finished(&what, started);
    Ok(())
}

/// The command as a user types it, for the report.
fn command_line(opts: &Options, cycles: u32) -> String {
    let mut s = String::from("cargo xtask soak --crash");
    if opts.quick {
        s.push_str(" --quick");
    }
    if opts.cycles.is_some() {
        s.push_str(&format!(" --cycles {cycles}"));
    }
    if let Some(seed) = opts.seed {
        s.push_str(&format!(" --seed {seed}"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(quick: bool, cycles: Option<u32>, seed: Option<u64>) -> Options {
        Options {
            quick,
            rotations: None,
            restarts: None,
            seed,
            keep: false,
            crash: true,
            cycles,
        }
    }

    #[test]
    fn command_line_names_what_was_asked() {
        assert_eq!(
            command_line(&opts(true, None, None), QUICK_CYCLES),
            "cargo xtask soak --crash --quick"
        );
        assert_eq!(
            command_line(&opts(false, Some(7), Some(3)), 7),
            "cargo xtask soak --crash --cycles 7 --seed 3"
        );
    }
}
