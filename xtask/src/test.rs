//! `cargo xtask test`: everything CI runs, in order, stopping at the first failure:
//! eBPF build, formatting, clippy, clippy for the OpenBSD targets (nightly),
//! unprivileged unit tests, agent build, then the privileged end-to-end tests (root
//! only; under CI=true they must not be skipped), the reduced rotation soak
//! (`cargo xtask soak --quick`, unprivileged), the reduced crash soak
//! (`cargo xtask soak --crash --quick`, root, skipped like the end-to-end tests),
//! then the quick benchmark run,
//! which keeps the benches compiling and working and asserts nothing about speed,
//! then the Debian package check (`cargo xtask dist --check`: build, `dpkg -i`,
//! `log2drop check` on the installed config, purge).

use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;

use crate::{
    bench, build_ebpf, dist, host_target_dir, openbsd, process, soak, toolchain, workspace_root,
};

#[derive(Debug, Args)]
pub struct Options {
    /// Skip `cargo fmt --check` and clippy.
    #[arg(long)]
    pub skip_lint: bool,
    /// Run only the unprivileged steps (no end-to-end tests, no bench).
    #[arg(long)]
    pub unit_only: bool,
    /// Skip the quick benchmark run at the end.
    #[arg(long)]
    pub skip_bench: bool,
    /// Skip the Debian package check (build, install, check, purge) at the end.
    #[arg(long)]
    pub skip_package: bool,
}

pub fn run(opts: &Options) -> Result<()> {
    let started = Instant::now();
    build_ebpf::run(&build_ebpf::Options { debug: false })?;

    if opts.skip_lint {
        eprintln!("==> skipping fmt and clippy (--skip-lint)");
    } else {
        cargo_step(
            "cargo fmt --all --check",
            &["fmt", "--all", "--check"],
            "Run `cargo fmt --all` and commit the result.",
        )?;
        cargo_step(
            "cargo clippy --workspace --all-targets -- -D warnings",
            &[
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ],
            "Fix the clippy findings above.",
        )?;
        openbsd::check(&toolchain::prepare_nightly()?)?;
    }
    cargo_step(
        "cargo test (unit tests)",
        &["test"],
        "Fix the failing tests above.",
    )?;
    cargo_step(
        "cargo build -p log2drop",
        &["build", "-p", "log2drop"],
        "Fix the build error above.",
    )?;

    if opts.unit_only {
        eprintln!("==> skipping the privileged end-to-end tests (--unit-only)");
        eprintln!("==> skipping the reduced soak (--unit-only)");
    } else {
        privileged_tests()?;
        // Needs no privilege (dry-run backend), so nothing lets it skip.
        soak::run(&soak::Options {
            quick: true,
            rotations: None,
            restarts: None,
            seed: None,
            keep: false,
            crash: false,
            cycles: None,
        })?;
        // Root (XDP): skips outside CI only, and says so.
        soak::crash(
            &soak::Options {
                quick: true,
                rotations: None,
                restarts: None,
                seed: None,
                keep: false,
                crash: true,
                cycles: None,
            },
            soak::WithoutRoot::SkipOutsideCi,
        )?;
    }
    if opts.unit_only || opts.skip_bench {
        eprintln!("==> skipping the quick bench (--unit-only or --skip-bench)");
    } else if current_euid()? != 0 {
        eprintln!("==> SKIPPED the quick bench: it needs root");
    } else {
        bench::run(&bench::Options {
            quick: true,
            only: Vec::new(),
            out_dir: None,
            no_install: false,
            baseline_agent: None,
        })?;
    }
    if opts.unit_only || opts.skip_package {
        eprintln!("==> skipping the package check (--unit-only or --skip-package)");
    } else {
        package_check()?;
    }
    process::finished("cargo xtask test", started);
    Ok(())
}

/// The .deb installed for real, as an admin would install it. It installs into the
/// host and purges afterwards, so it never runs over a log2drop package that is
/// already installed there: that one belongs to the admin.
fn package_check() -> Result<()> {
    let ci = is_ci(std::env::var("CI").ok().as_deref());
    let why = if current_euid()? != 0 {
        Some("it installs a package (dpkg -i), which needs root".to_string())
    } else if package_installed("log2drop") {
        Some(
            "a log2drop package is already installed on this host, and the check would \
             replace and then purge it"
                .to_string(),
        )
    } else {
        None
    };
    match why {
        Some(why) if ci => {
            bail!("the package check cannot run: {why}; CI=true forbids skipping it")
        }
        Some(why) => {
            eprintln!(
                "==> SKIPPED the package check: {why}. Run `cargo xtask dist --check` where it can."
            );
            Ok(())
        }
        None => dist::run(&dist::Options { check: true }),
    }
}

/// Whether dpkg knows `name` as installed (false where dpkg is absent).
fn package_installed(name: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", name])
        .output()
        .is_ok_and(|o| o.status.success() && o.stdout.ends_with(b" installed"))
}

fn privileged_tests() -> Result<()> {
    let ci = is_ci(std::env::var("CI").ok().as_deref());
    let euid = current_euid()?;
    if euid != 0 {
        let why = format!(
            "the privileged end-to-end tests need root (network namespaces, veth, XDP); \
             running as uid {euid}"
        );
        if ci {
            bail!("{why}, and CI=true forbids skipping them. Run CI as root.");
        }
        eprintln!(
            "==> SKIPPED privileged end-to-end tests: {why}. Run `sudo -E cargo xtask test` to include them."
        );
        return Ok(());
    }
    let bin = host_target_dir().join("debug/log2drop");
    let bin =
        std::path::absolute(&bin).with_context(|| format!("making {} absolute", bin.display()))?;
    let started = Instant::now();
    let what = "cargo test -p log2drop-tests -- --test-threads=1 (privileged end-to-end)";
    process::announce(what);
    let mut cmd = cargo();
    cmd.env("LOG2DROP_BIN", &bin)
        .args(["test", "-p", "log2drop-tests", "--", "--test-threads=1"]);
    eprintln!("    LOG2DROP_BIN={}", bin.display());
    process::run(&mut cmd, "Fix the failing end-to-end tests above.")?;
    process::finished(what, started);
    Ok(())
}

/// This process's effective uid.
pub fn current_euid() -> Result<u32> {
    let status = std::fs::read_to_string("/proc/self/status")
        .context("reading /proc/self/status to find out whether we are root")?;
    effective_uid(&status).context("/proc/self/status has no readable Uid line")
}

fn cargo() -> Command {
    let mut cmd = process::host_cargo();
    cmd.current_dir(workspace_root());
    cmd
}

fn cargo_step(what: &str, args: &[&str], fix: &str) -> Result<()> {
    let started = Instant::now();
    process::announce(what);
    process::run(cargo().args(args), fix)?;
    process::finished(what, started);
    Ok(())
}

/// Whether the CI variable asks for CI behaviour (`true` or `1`, any case).
pub fn is_ci(value: Option<&str>) -> bool {
    value.is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// The effective uid from the `Uid:` line of `/proc/self/status` (real, effective,
/// saved, filesystem).
fn effective_uid(proc_status: &str) -> Option<u32> {
    proc_status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .and_then(|euid| euid.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ci_values() {
        assert!(is_ci(Some("true")));
        assert!(is_ci(Some("TRUE")));
        assert!(is_ci(Some("1")));
        assert!(!is_ci(Some("false")));
        assert!(!is_ci(Some("")));
        assert!(!is_ci(None));
    }

    #[test]
    fn effective_uid_is_the_second_field() {
        let status = "Name:\tcargo\nUmask:\t0022\nUid:\t1000\t0\t0\t0\nGid:\t0\t0\t0\t0\n";
        assert_eq!(effective_uid(status), Some(0));
        let status = "Uid:\t0\t1000\t1000\t1000\n";
        assert_eq!(effective_uid(status), Some(1000));
    }

    #[test]
    fn unreadable_uid_is_none() {
        assert_eq!(effective_uid("Name:\tx\n"), None);
        assert_eq!(effective_uid("Uid:\t0\n"), None);
    }
}
