//! `cargo xtask build-ebpf`: builds the XDP program (ebpf/xdp, its own workspace) with
//! the nightly toolchain for `bpfel-unknown-none`, after preparing the toolchain and the
//! bpf-linker cache. The agent embeds the resulting object at build time.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;

use crate::{bpf_linker, process, toolchain, workspace_root};

/// The eBPF crate's package and binary name.
const PACKAGE: &str = "log2drop-xdp";
const TARGET: &str = "bpfel-unknown-none";
/// BTF is what lets aya create typed maps from the object.
const RUSTFLAGS: &str = "-C debuginfo=2 -C link-arg=--btf";

#[derive(Debug, Args)]
pub struct Options {
    /// Build the dev profile (target/ebpf/bpfel-unknown-none/debug) instead of release.
    /// The agent embeds only the release object.
    #[arg(long)]
    pub debug: bool,
}

/// The object `build-ebpf` writes for the given profile.
pub fn object_path(root: &Path, debug: bool) -> PathBuf {
    let profile = if debug { "debug" } else { "release" };
    root.join("target/ebpf")
        .join(TARGET)
        .join(profile)
        .join(PACKAGE)
}

/// Builds the eBPF object and returns its path.
pub fn run(opts: &Options) -> Result<PathBuf> {
    let started = Instant::now();
    process::announce("build-ebpf: preparing the nightly toolchain");
    let nightly = toolchain::prepare_nightly()?;
    eprintln!(
        "    toolchain {} (LLVM {}), sysroot {}",
        nightly.name,
        nightly.llvm.full,
        nightly.sysroot.display()
    );
    let linker_bin = bpf_linker::ensure(&nightly)?;

    let root = workspace_root();
    let crate_dir = root.join("ebpf/xdp");
    if !crate_dir.join("Cargo.toml").is_file() {
        bail!(
            "{} is missing: the XDP program's crate is not in this tree",
            crate_dir.join("Cargo.toml").display()
        );
    }
    process::announce(&format!(
        "build-ebpf: building {PACKAGE} with {}",
        nightly.name
    ));
    let path = prepend_path(&linker_bin)?;
    let target_dir = root.join("target/ebpf");
    let fix = format!(
        "The eBPF build runs in {} as `cargo +{} build --release --target {TARGET} \
         -Z build-std=core` with {} first on PATH and RUSTFLAGS=\"{RUSTFLAGS}\"",
        crate_dir.display(),
        nightly.name,
        linker_bin.display()
    );
    process::run_with_network_retries(
        || {
            let mut cmd = Command::new("cargo");
            process::clear_outer_build_env(&mut cmd);
            cmd.current_dir(&crate_dir)
                .env("PATH", &path)
                .env("RUSTFLAGS", RUSTFLAGS)
                .arg(format!("+{}", nightly.name))
                .arg("build");
            if !opts.debug {
                cmd.arg("--release");
            }
            cmd.args(["--target", TARGET, "-Z", "build-std=core", "--target-dir"])
                .arg(&target_dir);
            cmd
        },
        &fix,
    )?;
    let object = object_path(&root, opts.debug);
    let size = std::fs::metadata(&object)
        .with_context(|| {
            format!(
                "the build succeeded but {} was not written (is the binary still named {PACKAGE}?)",
                object.display()
            )
        })?
        .len();
    process::finished("build-ebpf", started);
    eprintln!("==> eBPF object: {} ({size} bytes)", object.display());
    Ok(object)
}

/// PATH with `dir` first, so rustc's BPF target finds our bpf-linker.
fn prepend_path(dir: &Path) -> Result<OsString> {
    let mut dirs = vec![dir.to_path_buf()];
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    std::env::join_paths(dirs).context("building PATH for the eBPF build")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_object_is_where_the_agent_looks() {
        assert_eq!(
            object_path(Path::new("/w"), false),
            PathBuf::from("/w/target/ebpf/bpfel-unknown-none/release/log2drop-xdp")
        );
        assert_eq!(
            object_path(Path::new("/w"), true),
            PathBuf::from("/w/target/ebpf/bpfel-unknown-none/debug/log2drop-xdp")
        );
    }

    #[test]
    fn linker_dir_comes_first_on_path() {
        let path = prepend_path(Path::new("/cache/bpf-linker/llvm-22.1.4/bin")).expect("ok");
        let first = std::env::split_paths(&path).next();
        assert_eq!(
            first,
            Some(PathBuf::from("/cache/bpf-linker/llvm-22.1.4/bin"))
        );
    }
}
