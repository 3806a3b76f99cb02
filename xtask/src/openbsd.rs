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

/// The packages checked for them with their test code and the `fake` feature the
/// PF tests use.
pub const PACKAGES: &[&str] = &["log2drop-openbsd"];

/// The packages checked without their test code: the agent's tests drive Linux
/// backends and the journal, which do not exist on OpenBSD.
pub const PACKAGES_NO_TESTS: &[&str] = &["log2drop"];

/// `cargo +nightly clippy -Z build-std=std,core,alloc --target T -p P --all-targets
/// -- -D warnings` for every target, then the same for the agent without
/// `--all-targets`.
pub fn check(nightly: &toolchain::Nightly) -> Result<()> {
    for target in TARGETS {
        let what = format!("cargo clippy for {target} (-Z build-std, nightly)");
        let started = Instant::now();
        process::announce(&what);
        for (packages, extra) in [
            (
                PACKAGES,
                &["--all-targets", "--features", "log2drop-openbsd/fake"][..],
            ),
            (PACKAGES_NO_TESTS, &[][..]),
        ] {
            let mut cmd = Command::new("cargo");
            process::clear_outer_build_env(&mut cmd);
            cmd.current_dir(workspace_root())
                .env_remove("RUSTUP_TOOLCHAIN")
                .arg(format!("+{}", nightly.name))
                .args(clippy_args(target, packages, extra));
            process::run(
                &mut cmd,
                &format!(
                    "Fix the {target} build or lint errors above (code for one system only goes \
                     behind #[cfg(target_os = ...)])."
                ),
            )?;
        }
        process::finished(&what, started);
    }
    Ok(())
}

/// The cargo arguments that lint `packages` for `target`.
fn clippy_args<'a>(target: &'a str, packages: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "clippy",
        "-Z",
        "build-std=std,core,alloc",
        "--target",
        target,
    ];
    for p in packages {
        args.extend(["-p", p]);
    }
    args.extend(extra);
    args.extend(["--", "-D", "warnings"]);
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_agent_is_linted_for_openbsd_without_its_linux_tests() {
        let args = clippy_args("aarch64-unknown-openbsd", PACKAGES_NO_TESTS, &[]);
        assert_eq!(
            args.join(" "),
            "clippy -Z build-std=std,core,alloc --target aarch64-unknown-openbsd -p log2drop \
             -- -D warnings"
        );
    }
}
