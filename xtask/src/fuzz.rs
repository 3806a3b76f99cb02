//! `cargo xtask fuzz`: runs the libFuzzer targets of `fuzz/libfuzzer` (nightly,
//! cargo-fuzz, installed on first use) for a fixed time each and reports the CPU
//! seconds each one fuzzed and any crash it left. The targets are built once, then
//! each binary is run directly, so the CPU time counted is fuzzing, not compiling.
//!
//! The seed corpus in `fuzz/corpus/<target>` is read, never written: what libFuzzer
//! finds goes to the scratch corpus `fuzz/libfuzzer/corpus/<target>` (ignored by
//! git), crashes to `fuzz/libfuzzer/artifacts/<target>`. A fixed crash's input is
//! kept in `fuzz/regressions/<target>`, which `cargo test` replays on stable.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use nix::sys::resource::{UsageWho, getrusage};

use crate::{build_ebpf, process, toolchain, workspace_root};

/// The targets, in the order they run; each is a `fuzz_targets/<name>.rs`.
const TARGETS: &[&str] = &[
    "config",
    "pattern",
    "matcher",
    "syslog",
    "control",
    "fail2ban",
    "compressed",
];

/// The cargo-fuzz release installed on first use.
const CARGO_FUZZ: &str = "cargo-fuzz";

#[derive(Debug, Args)]
pub struct Options {
    /// Seconds of fuzzing per target (wall clock; the CPU time is reported).
    #[arg(long, default_value_t = 60)]
    time: u64,
    /// Run only this target (repeatable); default all of them.
    #[arg(long = "target", value_name = "TARGET", value_parser = clap::builder::PossibleValuesParser::new(TARGETS))]
    targets: Vec<String>,
    /// libFuzzer's sanitizer (`cargo fuzz -s`): the agent is safe Rust, so the
    /// default `none` spends the time on inputs; `address` also checks the C
    /// libraries the readers link (zlib, liblzma, bzip2, zstd).
    #[arg(long, default_value = "none", value_parser = ["none", "address"])]
    sanitizer: String,
}

/// What one target's run left.
struct Outcome {
    target: String,
    cpu: Duration,
    runs: Option<u64>,
    crashes: Vec<PathBuf>,
}

pub fn run(opts: &Options) -> Result<()> {
    if opts.time == 0 {
        bail!("--time must be at least 1 second");
    }
    let nightly = toolchain::nightly_name()?;
    ensure_cargo_fuzz()?;
    let fuzz_dir = workspace_root().join("fuzz").join("libfuzzer");
    let targets: Vec<&str> = if opts.targets.is_empty() {
        TARGETS.to_vec()
    } else {
        opts.targets.iter().map(String::as_str).collect()
    };

    // The agent crate embeds the XDP object at build time, so a fresh checkout
    // needs it before the fuzz harness (which links the agent) can compile.
    build_ebpf::run(&build_ebpf::Options { debug: false })?;

    let what = "building the fuzz targets";
    process::announce(what);
    let t = std::time::Instant::now();
    let mut build = process::host_cargo();
    build
        .env_remove("RUSTUP_TOOLCHAIN")
        .arg(format!("+{nightly}"))
        .args(["fuzz", "build", "--fuzz-dir"])
        .arg(&fuzz_dir)
        .args(["-s", &opts.sanitizer]);
    // `cargo fuzz build` takes one target or none (all of them).
    if let [only] = targets.as_slice() {
        build.arg(only);
    }
    process::run(&mut build, "Fix the build error above.")?;
    process::finished(what, t);

    let bin_dir = fuzz_dir
        .join("target")
        .join(host_triple(&nightly)?)
        .join("release");
    let mut outcomes = Vec::new();
    for target in targets {
        outcomes.push(fuzz_one(&fuzz_dir, &bin_dir, target, opts.time)?);
    }

    println!(
        "\n{:<12} {:>12} {:>14}  crashes",
        "target", "CPU seconds", "runs"
    );
    let mut crashed = false;
    for o in &outcomes {
        let runs = o.runs.map_or_else(|| "?".to_owned(), |r| r.to_string());
        println!(
            "{:<12} {:>12.1} {:>14}  {}",
            o.target,
            o.cpu.as_secs_f64(),
            runs,
            o.crashes.len()
        );
        for c in &o.crashes {
            println!("    {}", c.display());
            crashed = true;
        }
    }
    let total: Duration = outcomes.iter().map(|o| o.cpu).sum();
    println!("total CPU seconds fuzzed: {:.1}", total.as_secs_f64());
    if crashed {
        bail!(
            "fuzzing found crashes (listed above). Reproduce one with the target's binary \
             and the file, fix it, and keep the input in fuzz/regressions/<target>/"
        );
    }
    Ok(())
}

/// Runs one target for `secs` seconds; its CPU time is that of the children this
/// process waited for, before and after.
fn fuzz_one(fuzz_dir: &Path, bin_dir: &Path, target: &str, secs: u64) -> Result<Outcome> {
    let seeds = workspace_root().join("fuzz").join("corpus").join(target);
    let scratch = fuzz_dir.join("corpus").join(target);
    let artifacts = fuzz_dir.join("artifacts").join(target);
    let logs = fuzz_dir.join("logs");
    for dir in [&scratch, &artifacts, &logs] {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let before_crashes = crash_files(&artifacts)?;
    let log_path = logs.join(format!("{target}.log"));
    let log =
        fs::File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;

    let what = format!("fuzzing {target} for {secs}s");
    process::announce(&what);
    let t = std::time::Instant::now();
    let before = children_cpu()?;
    let mut cmd = Command::new(bin_dir.join(target));
    cmd.arg(&scratch)
        .arg(&seeds)
        .arg(format!("-max_total_time={secs}"))
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .arg("-print_final_stats=1")
        .stderr(log.try_clone().context("duplicating the log handle")?)
        .stdout(log);
    eprintln!("    $ {}", process::display(&cmd));
    let status = cmd
        .status()
        .with_context(|| format!("starting {}", bin_dir.join(target).display()))?;
    let cpu = children_cpu()?.saturating_sub(before);
    process::finished(&what, t);

    let text = fs::read_to_string(&log_path).unwrap_or_default();
    let runs = final_runs(&text);
    let crashes: Vec<PathBuf> = crash_files(&artifacts)?
        .into_iter()
        .filter(|p| !before_crashes.contains(p))
        .collect();
    if !status.success() && crashes.is_empty() {
        bail!(
            "{target} exited with {status} and left no crash file; see {}",
            log_path.display()
        );
    }
    Ok(Outcome {
        target: target.to_owned(),
        cpu,
        runs,
        crashes,
    })
}

/// The `stat::number_of_executed_units` line of `-print_final_stats`.
fn final_runs(log: &str) -> Option<u64> {
    log.lines()
        .rev()
        .find_map(|l| l.strip_prefix("stat::number_of_executed_units:"))
        .and_then(|n| n.trim().parse().ok())
}

fn crash_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry
            .with_context(|| format!("reading {}", dir.display()))?
            .path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if ["crash-", "leak-", "timeout-", "oom-"]
            .iter()
            .any(|p| name.starts_with(p))
        {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// User plus system CPU time of the children waited for so far.
fn children_cpu() -> Result<Duration> {
    let usage = getrusage(UsageWho::RUSAGE_CHILDREN).context("getrusage(RUSAGE_CHILDREN)")?;
    let tv = |t: nix::sys::time::TimeVal| {
        Duration::from_secs(t.tv_sec().max(0) as u64)
            + Duration::from_micros(t.tv_usec().max(0) as u64)
    };
    Ok(tv(usage.user_time()) + tv(usage.system_time()))
}

/// The host triple of `nightly` (cargo-fuzz builds for it explicitly).
fn host_triple(nightly: &str) -> Result<String> {
    let vv = process::output(
        Command::new("rustc")
            .arg(format!("+{nightly}"))
            .arg("-vV")
            .env_remove("RUSTUP_TOOLCHAIN"),
    )?;
    vv.lines()
        .find_map(|l| l.strip_prefix("host:"))
        .map(|h| h.trim().to_owned())
        .with_context(|| format!("`rustc +{nightly} -vV` printed no host line"))
}

/// Installs cargo-fuzz with `cargo install --locked` unless `cargo fuzz` runs.
fn ensure_cargo_fuzz() -> Result<()> {
    let present = Command::new("cargo")
        .args(["fuzz", "--version"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if present {
        return Ok(());
    }
    process::run_with_network_retries(
        || {
            let mut cmd = process::host_cargo();
            cmd.args(["install", "--locked", CARGO_FUZZ]);
            cmd
        },
        "Install it by hand with `cargo install --locked cargo-fuzz`.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn final_runs_reads_the_last_stats_line() {
        let log = "#2 INITED\nDone 1234 runs in 5 second(s)\n\
                   stat::number_of_executed_units: 1234\nstat::peak_rss_mb: 40\n";
        assert_eq!(final_runs(log), Some(1234));
        assert_eq!(final_runs("crashed before the stats"), None);
    }

    #[test]
    fn every_target_has_a_harness_and_a_seed_corpus() {
        let root = workspace_root().join("fuzz");
        for t in TARGETS {
            let harness = root.join("libfuzzer/fuzz_targets").join(format!("{t}.rs"));
            assert!(harness.is_file(), "{} is missing", harness.display());
            let seeds = root.join("corpus").join(t);
            assert!(seeds.is_dir(), "{} is missing", seeds.display());
        }
    }
}
