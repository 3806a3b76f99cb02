//! Developer entry point (`cargo xtask ...`): builds the eBPF object, runs the agent,
//! runs the benchmarks and runs everything CI runs, so that a fresh machine needs no manual step and CI and
//! developers use the same commands.
//!
//! One module per subcommand, each with its own `Options`; the helper modules own the
//! toolchain probing (`toolchain`), the bpf-linker cache (`bpf_linker`) and the way
//! child processes are spawned and retried (`process`).

mod bench;
mod bpf_linker;
mod build_ebpf;
mod dist;
mod fuzz;
mod openbsd;
mod process;
mod run;
mod soak;
mod test;
mod toolchain;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Build, run and test log2drop.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build the XDP object (installs rust-src and builds a cached bpf-linker when needed).
    BuildEbpf(build_ebpf::Options),
    /// Build the eBPF object and the agent, then run `log2drop ARGS...`.
    Run(run::Options),
    /// Everything CI runs: eBPF build, fmt, clippy, unit tests, privileged end-to-end
    /// tests, quick bench.
    Test(test::Options),
    /// Run the benchmark cases as root and write bench/results.md and results.json.
    Bench(bench::Options),
    /// Rotation torture against the agent binary (dry-run backend): every line
    /// written must be read once; prints written/read/duplicates/lost per rotation style.
    /// With --crash: kill -9 the agent (XDP and nftables, root) at random moments
    /// during an offence flood; no applied ban lost, no expired ban kept, no banned
    /// packet passed, store intact.
    Soak(soak::Options),
    /// Build the release binary, its man pages and completions, and the Debian
    /// package (target/debian/log2drop_VERSION_ARCH.deb) with cargo-deb.
    Dist(dist::Options),
    /// Fuzz the parsers with libFuzzer (nightly; installs cargo-fuzz on first use)
    /// for --time seconds per target, and report CPU seconds fuzzed and crashes.
    Fuzz(fuzz::Options),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::BuildEbpf(opts) => build_ebpf::run(&opts).map(|_| ()),
        Command::Run(opts) => run::run(&opts),
        Command::Test(opts) => test::run(&opts),
        Command::Bench(opts) => bench::run(&opts),
        Command::Dist(opts) => dist::run(&opts),
        Command::Soak(opts) => soak::run(&opts),
        Command::Fuzz(opts) => fuzz::run(&opts),
    }
}

/// The host workspace root; xtask lives one level below it, so this does not depend on
/// the directory `cargo xtask` was started from.
fn workspace_root() -> PathBuf {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .map(PathBuf::from)
        .unwrap_or(manifest_dir)
}

/// Where the host build puts its binaries: `CARGO_TARGET_DIR` if the caller set one,
/// else `<workspace>/target`.
fn host_target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                workspace_root().join(dir)
            }
        }
        _ => workspace_root().join("target"),
    }
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
    fn run_takes_agent_arguments_after_double_dash() {
        let cli = Cli::try_parse_from([
            "xtask",
            "run",
            "--release",
            "--",
            "run",
            "--config",
            "examples/log2drop.toml",
        ])
        .expect("valid command line");
        let Command::Run(opts) = cli.command else {
            panic!("expected the run subcommand, got {:?}", cli.command);
        };
        assert!(opts.release);
        assert_eq!(opts.args, ["run", "--config", "examples/log2drop.toml"]);
    }

    #[test]
    fn build_ebpf_debug_flag_parses() {
        let cli = Cli::try_parse_from(["xtask", "build-ebpf", "--debug"]).expect("valid");
        let Command::BuildEbpf(opts) = cli.command else {
            panic!("expected build-ebpf, got {:?}", cli.command);
        };
        assert!(opts.debug);
    }

    #[test]
    fn workspace_root_holds_the_workspace_manifest() {
        assert!(workspace_root().join("Cargo.toml").is_file());
        assert!(workspace_root().join("xtask").is_dir());
    }
}
