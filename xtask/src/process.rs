//! How xtask starts child processes: printing each step as it starts, timing it,
//! stripping the outer cargo's build environment from nested builds, and retrying steps
//! that failed because of the network (registry and rustup downloads sometimes fail once
//! with a DNS error).

use std::collections::VecDeque;
use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// How often a network step is tried before giving up.
pub const NETWORK_ATTEMPTS: u32 = 4;

/// How many trailing lines of a failed step's stderr are kept to decide whether to retry.
const KEPT_STDERR_LINES: usize = 200;

/// Prints a step header so that CI logs show which step is running.
pub fn announce(what: &str) {
    eprintln!("==> {what}");
}

/// Prints how long a finished step took.
pub fn finished(what: &str, started: Instant) {
    eprintln!(
        "==> {what}: done in {:.1}s",
        started.elapsed().as_secs_f64()
    );
}

/// Renders a command the way a user would type it, for logs and error messages.
pub fn display(cmd: &Command) -> String {
    let mut out = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        out.push(' ');
        let arg = arg.to_string_lossy();
        if arg.is_empty() || arg.contains([' ', '\'', '"']) {
            out.push_str(&format!("'{arg}'"));
        } else {
            out.push_str(&arg);
        }
    }
    out
}

/// Whether an environment variable belongs to the outer cargo invocation (`cargo xtask`
/// is itself `cargo run`) and would leak the outer toolchain, flags or target dir into a
/// nested build. Network, registry, terminal and home settings are kept.
pub fn is_outer_build_var(name: &str) -> bool {
    const EXACT: &[&str] = &[
        "CARGO",
        "RUSTC",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTDOC",
        "RUSTUP_TOOLCHAIN",
        "RUSTFLAGS",
        "RUSTDOCFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_ENCODED_RUSTDOCFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_BUILD_TARGET_DIR",
        "CARGO_BUILD_RUSTC",
        "CARGO_BUILD_RUSTC_WRAPPER",
        "CARGO_BUILD_RUSTC_WORKSPACE_WRAPPER",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_MAKEFLAGS",
        "CARGO_MANIFEST_DIR",
        "CARGO_MANIFEST_PATH",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_CRATE_NAME",
        "CARGO_BIN_NAME",
        "CARGO_RUSTC_CURRENT_DIR",
    ];
    const PREFIXES: &[&str] = &[
        "CARGO_PKG_",
        "CARGO_CFG_",
        "CARGO_FEATURE_",
        "CARGO_PROFILE_",
        "CARGO_TARGET_",
        "CARGO_BIN_EXE_",
        "CARGO_BUILD_",
    ];
    EXACT.contains(&name) || PREFIXES.iter().any(|p| name.starts_with(p))
}

/// Removes the outer cargo's build variables from `cmd` (see [`is_outer_build_var`]).
pub fn clear_outer_build_env(cmd: &mut Command) {
    for (name, _) in std::env::vars_os() {
        if let Some(name_str) = name.to_str()
            && is_outer_build_var(name_str)
        {
            cmd.env_remove(&name);
        }
    }
}

/// A `cargo` for host-side steps: the outer build variables are removed, but the
/// caller's toolchain choice (`cargo +TOOLCHAIN xtask ...`) is kept.
pub fn host_cargo() -> Command {
    let mut cmd = Command::new("cargo");
    clear_outer_build_env(&mut cmd);
    if let Some(toolchain) = std::env::var_os("RUSTUP_TOOLCHAIN") {
        cmd.env("RUSTUP_TOOLCHAIN", toolchain);
    }
    cmd
}

/// Whether a failed command's output points at a transient network problem (DNS,
/// download, connection) rather than at a build error, so that retrying makes sense.
pub fn looks_like_network_error(output: &str) -> bool {
    const PATTERNS: &[&str] = &[
        "could not resolve host",
        "couldn't resolve host",
        "temporary failure in name resolution",
        "name or service not known",
        "failed to lookup address",
        "dns error",
        "failed to download",
        "could not download",
        "failed to fetch",
        "failed to update registry",
        "failed to query replaced source registry",
        "failed to load source for dependency",
        "download of config.json failed",
        "spurious network error",
        "network is unreachable",
        "connection refused",
        "connection reset",
        "connection timed out",
        "operation timed out",
        "error sending request",
        "ssl connect error",
    ];
    let lower = output.to_lowercase();
    PATTERNS.iter().any(|p| lower.contains(p))
}

/// Runs `cmd` with inherited stdio and fails if it exits non-zero. `fix` is appended to
/// the error to tell the user what to do.
pub fn run(cmd: &mut Command, fix: &str) -> Result<()> {
    eprintln!("    $ {}", display(cmd));
    let status = cmd.status().with_context(|| {
        format!(
            "cannot start `{}`: is it installed and on PATH?",
            display(cmd)
        )
    })?;
    if !status.success() {
        bail!("`{}` failed ({status}). {fix}", display(cmd));
    }
    Ok(())
}

/// Runs `cmd`, capturing stdout (stderr is shown), and returns stdout as text.
pub fn output(cmd: &mut Command) -> Result<String> {
    let out = cmd.stderr(Stdio::inherit()).output().with_context(|| {
        format!(
            "cannot start `{}`: is it installed and on PATH?",
            display(cmd)
        )
    })?;
    if !out.status.success() {
        bail!("`{}` failed ({})", display(cmd), out.status);
    }
    String::from_utf8(out.stdout)
        .with_context(|| format!("`{}` printed output that is not UTF-8", display(cmd)))
}

/// Runs the command built by `make` up to [`NETWORK_ATTEMPTS`] times, retrying (after a
/// growing pause) only while the failure looks like a network problem. Stdout is
/// inherited; stderr is shown live and its tail kept to classify the failure.
pub fn run_with_network_retries(make: impl Fn() -> Command, fix: &str) -> Result<()> {
    for attempt in 1..=NETWORK_ATTEMPTS {
        let mut cmd = make();
        eprintln!("    $ {}", display(&cmd));
        let (success, status, tail) = run_teeing_stderr(&mut cmd)?;
        if success {
            return Ok(());
        }
        if looks_like_network_error(&tail) && attempt < NETWORK_ATTEMPTS {
            let pause = Duration::from_secs(5 * u64::from(attempt));
            eprintln!(
                "    network error (attempt {attempt}/{NETWORK_ATTEMPTS}); retrying in {}s",
                pause.as_secs()
            );
            thread::sleep(pause);
            continue;
        }
        let network = if looks_like_network_error(&tail) {
            format!(
                " It looked like a network error on all {NETWORK_ATTEMPTS} attempts: check DNS and access to the registry."
            )
        } else {
            String::new()
        };
        bail!("`{}` failed ({status}).{network} {fix}", display(&cmd));
    }
    unreachable!("the last attempt always returns")
}

/// Spawns `cmd` with stderr piped, echoes stderr line by line and returns whether it
/// succeeded, its status text and the last lines of stderr.
fn run_teeing_stderr(cmd: &mut Command) -> Result<(bool, String, String)> {
    let mut child = cmd.stderr(Stdio::piped()).spawn().with_context(|| {
        format!(
            "cannot start `{}`: is it installed and on PATH?",
            display(cmd)
        )
    })?;
    let stderr = child
        .stderr
        .take()
        .context("child stderr was not captured")?;
    let reader = thread::spawn(move || {
        let mut tail: VecDeque<String> = VecDeque::with_capacity(KEPT_STDERR_LINES);
        let mut reader = BufReader::new(stderr);
        let mut line = Vec::new();
        let mut err = std::io::stderr();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    // A closed terminal must not stop the child; ignore write errors.
                    let _ = err.write_all(&line);
                    if tail.len() == KEPT_STDERR_LINES {
                        tail.pop_front();
                    }
                    tail.push_back(String::from_utf8_lossy(&line).into_owned());
                }
            }
        }
        tail.into_iter().collect::<String>()
    });
    let status = child
        .wait()
        .with_context(|| format!("waiting for `{}`", display(cmd)))?;
    let tail = reader.join().unwrap_or_default();
    Ok((status.success(), status.to_string(), tail))
}

/// Whether a program can be found and started (used for clear "missing" messages).
pub fn program_exists(program: impl AsRef<OsStr>) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outer_toolchain_and_flags_are_removed() {
        for name in [
            "RUSTC",
            "RUSTC_WRAPPER",
            "RUSTUP_TOOLCHAIN",
            "CARGO_TARGET_DIR",
            "RUSTFLAGS",
            "CARGO_ENCODED_RUSTFLAGS",
            "CARGO_MANIFEST_DIR",
            "CARGO_PKG_NAME",
            "CARGO_PROFILE_RELEASE_LTO",
            "CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER",
            "CARGO_BUILD_JOBS",
        ] {
            assert!(is_outer_build_var(name), "{name} should be removed");
        }
    }

    #[test]
    fn network_and_home_settings_are_kept() {
        for name in [
            "CARGO_HOME",
            "RUSTUP_HOME",
            "CARGO_NET_RETRY",
            "CARGO_HTTP_TIMEOUT",
            "CARGO_REGISTRIES_CRATES_IO_PROTOCOL",
            "CARGO_TERM_COLOR",
            "PATH",
            "HOME",
        ] {
            assert!(!is_outer_build_var(name), "{name} should be kept");
        }
    }

    #[test]
    fn dns_failures_are_network_errors() {
        let cargo = "error: failed to query replaced source registry `crates-io`\n\
                     Caused by: [6] Could not resolve host: index.crates.io";
        assert!(looks_like_network_error(cargo));
        let rustup =
            "error: could not download file from 'https://static.rust-lang.org/x' to '/tmp/y'";
        assert!(looks_like_network_error(rustup));
    }

    #[test]
    fn compile_errors_are_not_network_errors() {
        let text = "error[E0425]: cannot find value `x` in this scope\n\
                    error: could not compile `log2drop-xdp` (bin \"log2drop-xdp\")";
        assert!(!looks_like_network_error(text));
    }

    #[test]
    fn display_quotes_arguments_with_spaces() {
        let mut cmd = Command::new("cargo");
        cmd.args(["build", "-C debuginfo=2"]);
        assert_eq!(display(&cmd), "cargo build '-C debuginfo=2'");
    }

    #[test]
    fn run_reports_failure_with_fix() {
        let mut cmd = Command::new("false");
        let err = run(&mut cmd, "do X").expect_err("false fails");
        let text = err.to_string();
        assert!(text.contains("`false` failed"), "{text}");
        assert!(text.contains("do X"), "{text}");
    }

    #[test]
    fn non_network_failure_is_not_retried() {
        let started = Instant::now();
        let err =
            run_with_network_retries(|| Command::new("false"), "fix it").expect_err("false fails");
        assert!(err.to_string().contains("fix it"));
        // A retry would have paused at least 5 s.
        assert!(started.elapsed() < Duration::from_secs(4));
    }
}
