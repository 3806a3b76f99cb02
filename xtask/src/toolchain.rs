//! Finding and preparing the nightly toolchain the eBPF side needs: which nightly is
//! installed, which LLVM it was built on (bpf-linker must match it), where its sysroot
//! and bundled libLLVM are, and that it has `rust-src` for `-Z build-std=core`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::process;

/// Environment variable that names the nightly toolchain to use instead of searching.
pub const NIGHTLY_ENV: &str = "LOG2DROP_NIGHTLY";

/// The command that installs what the eBPF build needs from rustup.
pub const INSTALL_NIGHTLY: &str =
    "rustup toolchain install nightly --profile minimal --component rust-src";

/// The LLVM a toolchain was built on, as printed by `rustc -vV`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LlvmVersion {
    /// The full version, e.g. `22.1.4`; names the bpf-linker cache directory.
    pub full: String,
    /// The major version, e.g. `22`; selects bpf-linker's `llvm-22` feature.
    pub major: u32,
}

impl LlvmVersion {
    /// The bpf-linker cargo feature that builds against this LLVM.
    pub fn linker_feature(&self) -> String {
        format!("llvm-{}", self.major)
    }
}

/// A nightly toolchain ready for the eBPF build.
#[derive(Debug, Clone)]
pub struct Nightly {
    /// The rustup toolchain name, used as `+NAME`.
    pub name: String,
    pub llvm: LlvmVersion,
    pub sysroot: PathBuf,
}

/// Extracts the LLVM version from `rustc -vV` output (the `LLVM version:` line).
pub fn parse_llvm_version(rustc_vv: &str) -> Result<LlvmVersion> {
    let line = rustc_vv
        .lines()
        .find_map(|l| l.trim().strip_prefix("LLVM version:"))
        .context("`rustc -vV` printed no `LLVM version:` line")?;
    let full = line.trim();
    if full.is_empty() || !full.chars().all(|c| c.is_ascii_digit() || c == '.') {
        bail!("`rustc -vV` printed an LLVM version I cannot read: {full:?}");
    }
    let major = full
        .split('.')
        .next()
        .and_then(|m| m.parse::<u32>().ok())
        .with_context(|| format!("LLVM version {full:?} has no numeric major version"))?;
    Ok(LlvmVersion {
        full: full.to_owned(),
        major,
    })
}

/// Picks a nightly toolchain from `rustup toolchain list` output: an undated
/// `nightly[-HOST]` first (it is what `+nightly` means), else the newest dated one.
pub fn pick_nightly(toolchain_list: &str) -> Option<String> {
    let names: Vec<&str> = toolchain_list
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| *n == "nightly" || n.starts_with("nightly-"))
        .collect();
    let undated = names.iter().find(|n| {
        n.strip_prefix("nightly-")
            .is_none_or(|rest| !rest.starts_with(|c: char| c.is_ascii_digit()))
    });
    undated
        .or_else(|| names.iter().max())
        .map(|n| (*n).to_owned())
}

/// Picks, among the files of a toolchain's `lib/` directory (name and size), the real
/// libLLVM shared object. The toolchain also ships a tiny linker script named
/// `libLLVM-NN-rust-*.so` that cannot be loaded at run time, hence the size.
pub fn pick_libllvm<'a>(files: impl IntoIterator<Item = (&'a str, u64)>) -> Option<&'a str> {
    files
        .into_iter()
        .filter(|(name, _)| name.starts_with("libLLVM") && name.contains(".so"))
        .filter(|(name, _)| *name != "libLLVM.so")
        .max_by_key(|(name, size)| (*size, name.starts_with("libLLVM.so.")))
        .map(|(name, _)| name)
}

/// The nightly toolchain's rustup name: [`NIGHTLY_ENV`] if set, else the one
/// [`pick_nightly`] chooses among the installed toolchains.
pub fn nightly_name() -> Result<String> {
    match std::env::var(NIGHTLY_ENV) {
        Ok(name) if !name.is_empty() => Ok(name),
        _ => {
            let list = process::output(Command::new("rustup").args(["toolchain", "list"]))
                .context("listing rustup toolchains")?;
            pick_nightly(&list).with_context(|| {
                format!(
                    "no nightly toolchain is installed (the eBPF build and fuzzing need one). \
                     Install it with `{INSTALL_NIGHTLY}`, or name one with {NIGHTLY_ENV}=TOOLCHAIN"
                )
            })
        }
    }
}

/// Finds the nightly toolchain, reads its LLVM version and sysroot, and installs its
/// `rust-src` component if missing.
pub fn prepare_nightly() -> Result<Nightly> {
    if !process::program_exists("rustup") {
        bail!(
            "rustup is not on PATH. The eBPF build needs a rustup-managed nightly toolchain: \
             install rustup (https://rustup.rs), then run `{INSTALL_NIGHTLY}`"
        );
    }
    let name = nightly_name()?;
    let vv = process::output(
        Command::new("rustc")
            .arg(format!("+{name}"))
            .arg("-vV")
            .env_remove("RUSTUP_TOOLCHAIN"),
    )
    .with_context(|| {
        format!(
            "asking toolchain `{name}` for its version (`rustc +{name} -vV`); if it is not \
             installed, run `{INSTALL_NIGHTLY}` (or name another one with {NIGHTLY_ENV})"
        )
    })?;
    let llvm = parse_llvm_version(&vv)
        .with_context(|| format!("reading the LLVM version of toolchain `{name}`"))?;
    let sysroot = process::output(
        Command::new("rustc")
            .arg(format!("+{name}"))
            .args(["--print", "sysroot"])
            .env_remove("RUSTUP_TOOLCHAIN"),
    )
    .with_context(|| format!("asking toolchain `{name}` for its sysroot"))?;
    let sysroot = PathBuf::from(sysroot.trim());
    let nightly = Nightly {
        name,
        llvm,
        sysroot,
    };
    ensure_rust_src(&nightly)?;
    Ok(nightly)
}

/// The standard library sources `-Z build-std` compiles.
fn rust_src_dir(sysroot: &Path) -> PathBuf {
    sysroot.join("lib/rustlib/src/rust/library")
}

fn ensure_rust_src(nightly: &Nightly) -> Result<()> {
    if rust_src_dir(&nightly.sysroot).is_dir() {
        return Ok(());
    }
    process::announce(&format!(
        "installing rust-src for toolchain `{}`",
        nightly.name
    ));
    let fix = format!(
        "Install it by hand with `rustup component add rust-src --toolchain {}`.",
        nightly.name
    );
    process::run_with_network_retries(
        || {
            let mut cmd = Command::new("rustup");
            cmd.args(["component", "add", "rust-src", "--toolchain", &nightly.name])
                .env_remove("RUSTUP_TOOLCHAIN");
            cmd
        },
        &fix,
    )?;
    if !rust_src_dir(&nightly.sysroot).is_dir() {
        bail!(
            "rust-src was installed but {} still does not exist. {fix}",
            rust_src_dir(&nightly.sysroot).display()
        );
    }
    Ok(())
}

/// The libLLVM shared object the nightly toolchain ships (bpf-linker links against it).
pub fn libllvm_path(nightly: &Nightly) -> Result<PathBuf> {
    let lib = nightly.sysroot.join("lib");
    let entries = std::fs::read_dir(&lib)
        .with_context(|| format!("listing the toolchain libraries in {}", lib.display()))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("listing {}", lib.display()))?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let size = std::fs::metadata(entry.path())
            .map(|m| m.len())
            .unwrap_or(0);
        files.push((name, size));
    }
    let picked = pick_libllvm(files.iter().map(|(n, s)| (n.as_str(), *s))).with_context(|| {
        format!(
            "toolchain `{}` has no libLLVM shared library in {}; reinstall it with \
             `rustup toolchain uninstall {0} && {INSTALL_NIGHTLY}`",
            nightly.name,
            lib.display()
        )
    })?;
    Ok(lib.join(picked))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NIGHTLY_VV: &str = "rustc 1.97.0-nightly (e50aa6fba 2026-05-19)\n\
        binary: rustc\n\
        commit-hash: e50aa6fba4e63ab34c72bf9acfd2c307c1155d1a\n\
        commit-date: 2026-05-19\n\
        host: x86_64-unknown-linux-gnu\n\
        release: 1.97.0-nightly\n\
        LLVM version: 22.1.4\n";

    #[test]
    fn llvm_version_is_read_from_rustc_vv() {
        let v = parse_llvm_version(NIGHTLY_VV).expect("has an LLVM line");
        assert_eq!(v.full, "22.1.4");
        assert_eq!(v.major, 22);
        assert_eq!(v.linker_feature(), "llvm-22");
    }

    #[test]
    fn llvm_major_follows_the_toolchain() {
        let v = parse_llvm_version("release: 1.80.0\nLLVM version: 18.1.7\n").expect("ok");
        assert_eq!(v.linker_feature(), "llvm-18");
        let v = parse_llvm_version("LLVM version: 23\n").expect("ok");
        assert_eq!((v.full.as_str(), v.major), ("23", 23));
    }

    #[test]
    fn missing_llvm_line_is_an_error() {
        let text = NIGHTLY_VV.replace("LLVM version: 22.1.4\n", "");
        let err = parse_llvm_version(&text).expect_err("no LLVM line");
        assert!(err.to_string().contains("LLVM version"), "{err}");
    }

    #[test]
    fn odd_llvm_version_is_rejected() {
        // The version names a cache directory: nothing path-like may get through.
        for bad in [
            "LLVM version: ../22\n",
            "LLVM version: \n",
            "LLVM version: x.1\n",
        ] {
            assert!(parse_llvm_version(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn undated_nightly_is_preferred() {
        let list = "stable-x86_64-unknown-linux-gnu (active, default)\n\
                    nightly-2026-01-01-x86_64-unknown-linux-gnu\n\
                    nightly-x86_64-unknown-linux-gnu\n\
                    1.95.0-x86_64-unknown-linux-gnu\n";
        assert_eq!(
            pick_nightly(list).as_deref(),
            Some("nightly-x86_64-unknown-linux-gnu")
        );
    }

    #[test]
    fn newest_dated_nightly_is_used_when_no_undated_one() {
        let list = "stable-x86_64-unknown-linux-gnu (default)\n\
                    nightly-2025-12-01-x86_64-unknown-linux-gnu\n\
                    nightly-2026-03-15-x86_64-unknown-linux-gnu\n";
        assert_eq!(
            pick_nightly(list).as_deref(),
            Some("nightly-2026-03-15-x86_64-unknown-linux-gnu")
        );
    }

    #[test]
    fn no_nightly_gives_none() {
        let list =
            "stable-x86_64-unknown-linux-gnu (active, default)\n1.95.0-x86_64-unknown-linux-gnu\n";
        assert_eq!(pick_nightly(list), None);
        assert_eq!(pick_nightly(""), None);
    }

    #[test]
    fn real_libllvm_is_picked_over_the_linker_script() {
        let files = [
            ("libLLVM-22-rust-1.97.0-nightly.so", 43),
            ("libLLVM.so.22.1-rust-1.97.0-nightly", 199_500_656),
            ("librustc_driver-b5a965480ee51f9a.so", 157_939_536),
            ("rustlib", 4096),
        ];
        assert_eq!(
            pick_libllvm(files),
            Some("libLLVM.so.22.1-rust-1.97.0-nightly")
        );
    }

    #[test]
    fn older_toolchain_naming_is_accepted() {
        let files = [
            ("libLLVM-17-rust-1.75.0-nightly.so", 120_000_000),
            ("rustlib", 4096),
        ];
        assert_eq!(
            pick_libllvm(files),
            Some("libLLVM-17-rust-1.75.0-nightly.so")
        );
    }

    #[test]
    fn no_libllvm_gives_none() {
        let files = [("librustc_driver-x.so", 1_000), ("libLLVM.so", 5)];
        assert_eq!(pick_libllvm(files), None);
    }
}
