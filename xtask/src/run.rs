//! `cargo xtask run -- ARGS...`: builds the eBPF object and the agent, then replaces
//! itself with `log2drop ARGS...`, so signals reach the agent directly and its exit
//! status is the command's.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;

use crate::{build_ebpf, host_target_dir, process, workspace_root};

#[derive(Debug, Args)]
pub struct Options {
    /// Build and run the agent with the release profile.
    #[arg(long)]
    pub release: bool,
    /// Arguments for log2drop, after `--` (e.g. `-- run --config examples/log2drop.toml`).
    #[arg(last = true)]
    pub args: Vec<OsString>,
}

pub fn run(opts: &Options) -> Result<()> {
    build_ebpf::run(&build_ebpf::Options { debug: false })?;

    let started = Instant::now();
    process::announce("building log2drop");
    let mut build = process::host_cargo();
    build
        .current_dir(workspace_root())
        .args(["build", "-p", "log2drop"]);
    if opts.release {
        build.arg("--release");
    }
    process::run(&mut build, "Fix the build error above.")?;
    process::finished("building log2drop", started);

    let profile = if opts.release { "release" } else { "debug" };
    let bin = host_target_dir().join(profile).join("log2drop");
    let mut agent = Command::new(&bin);
    process::clear_outer_build_env(&mut agent);
    agent.args(&opts.args);
    process::announce(&format!("running {}", process::display(&agent)));
    // `exec` only returns on failure.
    let err = agent.exec();
    Err(err).with_context(|| format!("starting {}", bin.display()))
}
