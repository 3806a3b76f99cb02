//! Man pages and shell completions, generated from the clap definition so they can
//! never disagree with `--help`. `cargo xtask dist` runs the built binary's
//! `completions` and `manpage` commands to put them in the Debian package.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use clap_complete::Shell;

/// `log2drop completions SHELL`: the completion script on standard output.
pub fn completions(mut cmd: clap::Command, shell: Shell) -> Result<()> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "log2drop", &mut out);
    std::io::stdout()
        .lock()
        .write_all(&out)
        .context("cannot write the completions to standard output")
}

/// `log2drop manpage DIR`: `log2drop.1` and one `log2drop-SUBCOMMAND.1` per
/// visible subcommand, as `git` does, so `man log2drop-ban` shows every flag of `ban`.
pub fn manpages(cmd: clap::Command, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    clap_mangen::generate_to(cmd, dir)
        .with_context(|| format!("cannot write the man pages to {}", dir.display()))
}
