//! `cargo xtask bench [--quick]`: builds the eBPF objects, the release agent and the
//! bench runner, then runs every benchmark case as root and writes the results.
//! The full run writes `bench/results.md` and `bench/results.json` (committed); the
//! quick run (CI) writes to `target/bench-quick/` so it never dirties the tree. It
//! asserts nothing about speed: it fails only when the bench itself cannot run.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;

use crate::{build_ebpf, host_target_dir, process, workspace_root};

/// The flood sender's object, next to the XDP program's.
const FLOOD_OBJECT: &str = "log2drop-flood";
/// The baseline XDP program's object (one hash lookup, `XDP_DROP`), next to it too.
const MINIMAL_OBJECT: &str = "log2drop-minimal";

#[derive(Debug, Args)]
pub struct Options {
    /// Reduced sizes (about 2 minutes); writes to target/bench-quick/ unless --out-dir.
    #[arg(long)]
    pub quick: bool,
    /// Run only these cases (names or numbers, comma separated): matching, latency,
    /// inserts, droppath, memory, coldstart, report, attacks, offences.
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Where to write results.md and results.json (default: bench/ for a full run).
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
    /// Do not install missing competitors from apt.
    #[arg(long)]
    pub no_install: bool,
    /// A log2drop binary built before a change (e.g. a copy of
    /// target/release/log2drop); the attacks case runs it in the same rounds as
    /// the fresh build, so the change is measured against it under the same load.
    #[arg(long, value_name = "PATH")]
    pub baseline_agent: Option<PathBuf>,
}

pub fn run(opts: &Options) -> Result<()> {
    let started = Instant::now();
    let euid = crate::test::current_euid()?;
    if euid != 0 {
        bail!(
            "the bench needs root (network namespaces, XDP, nftables, apt); running as uid \
             {euid}. Run `sudo -E cargo xtask bench`."
        );
    }
    let object = build_ebpf::run(&build_ebpf::Options { debug: false })?;

    let what = "cargo build --release -p log2drop -p log2drop-bench";
    process::announce(what);
    let t = Instant::now();
    let mut build = process::host_cargo();
    build.current_dir(workspace_root()).args([
        "build",
        "--release",
        "-p",
        "log2drop",
        "-p",
        "log2drop-bench",
    ]);
    process::run(&mut build, "Fix the build error above.")?;
    process::finished(what, t);

    let release = host_target_dir().join("release");
    let out_dir = match &opts.out_dir {
        Some(d) => d.clone(),
        None if opts.quick => host_target_dir().join("bench-quick"),
        None => workspace_root().join("bench"),
    };
    let flood = object.with_file_name(FLOOD_OBJECT);
    let mut cmd = Command::new(release.join("log2drop-bench"));
    process::clear_outer_build_env(&mut cmd);
    cmd.arg("--agent")
        .arg(release.join("log2drop"))
        .arg("--out-dir")
        .arg(&out_dir)
        .arg("--command-line")
        .arg(command_line(opts));
    if flood.is_file() {
        cmd.arg("--flood-object").arg(&flood);
    } else {
        eprintln!(
            "    {} is missing: the flood cases will say so",
            flood.display()
        );
    }
    let minimal = object.with_file_name(MINIMAL_OBJECT);
    if minimal.is_file() {
        cmd.arg("--minimal-object").arg(&minimal);
    } else {
        eprintln!(
            "    {} is missing: the flood case will have no baseline",
            minimal.display()
        );
    }
    if opts.quick {
        cmd.arg("--quick");
    }
    if opts.no_install {
        cmd.arg("--no-install");
    }
    if let Some(b) = &opts.baseline_agent {
        cmd.arg("--baseline-agent").arg(b);
    }
    if !opts.only.is_empty() {
        cmd.arg("--only").arg(opts.only.join(","));
    }
    let what = "log2drop-bench";
    process::announce(what);
    process::run(&mut cmd, "The bench runner failed; see its output above.")
        .context("running the benchmark cases")?;
    process::finished("cargo xtask bench", started);
    Ok(())
}

/// The command as a user types it, for the report.
fn command_line(opts: &Options) -> String {
    let mut s = String::from("cargo xtask bench");
    if opts.quick {
        s.push_str(" --quick");
    }
    if !opts.only.is_empty() {
        s.push_str(" --only ");
        s.push_str(&opts.only.join(","));
    }
    if let Some(b) = &opts.baseline_agent {
        s.push_str(" --baseline-agent ");
        s.push_str(&b.display().to_string());
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_quotes_the_options() {
        let opts = Options {
            quick: true,
            only: vec!["matching".into(), "4".into()],
            out_dir: None,
            no_install: false,
            baseline_agent: None,
        };
        assert_eq!(
            command_line(&opts),
            "cargo xtask bench --quick --only matching,4"
        );
    }
}
