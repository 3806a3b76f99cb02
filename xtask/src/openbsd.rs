//! The OpenBSD step of `cargo xtask test`: no OpenBSD machine runs CI, so the crates
//! that build for OpenBSD are type-checked and linted for its two 64-bit targets with
//! the nightly toolchain (`-Z build-std`, since rustup ships no OpenBSD std). This
//! also evaluates the const assertions that pin the PF structure layouts on those
//! targets. Linking is not attempted: there are no OpenBSD libraries here.

use std::process::Command;
use std::time::Instant;

use anyhow::Result;

use crate::{process, toolchain, workspace_root};

/// The OpenBSD targets checked.
pub const TARGETS: &[&str] = &["x86_64-unknown-openbsd", "aarch64-unknown-openbsd"];

/// The packages checked for them (with their test code and the `fake` feature the
/// PF tests use).
pub const PACKAGES: &[&str] = &["log2drop-openbsd"];

/// `cargo +nightly clippy -Z build-std=std,core,alloc --target T -p P --all-targets
/// -- -D warnings` for every target.
pub fn check(nightly: &toolchain::Nightly) -> Result<()> {
    for target in TARGETS {
        let what = format!("cargo clippy for {target} (-Z build-std, nightly)");
        let started = Instant::now();
        process::announce(&what);
        let mut cmd = Command::new("cargo");
        process::clear_outer_build_env(&mut cmd);
        cmd.current_dir(workspace_root())
            .env_remove("RUSTUP_TOOLCHAIN")
            .arg(format!("+{}", nightly.name))
            .args([
                "clippy",
                "-Z",
                "build-std=std,core,alloc",
                "--target",
                target,
            ]);
        for p in PACKAGES {
            cmd.args(["-p", p]);
        }
        cmd.args(["--all-targets", "--features", "log2drop-openbsd/fake"])
            .args(["--", "-D", "warnings"]);
        process::run(
            &mut cmd,
            &format!(
                "Fix the {target} build or lint errors above (cfg(target_os = \"openbsd\") code)."
            ),
        )?;
        process::finished(&what, started);
    }
    Ok(())
}
