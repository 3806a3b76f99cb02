//! The bpf-linker cache. rustc's BPF target links with bpf-linker, whose LLVM must be at
//! least as new as the nightly's; no distribution ships LLVM 22, so bpf-linker is built
//! from crates.io against the nightly toolchain's own libLLVM and cached per LLVM
//! version:
//!
//! ```text
//! ${LOG2DROP_TOOLCHAIN_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/log2drop}/
//!   bpf-linker/llvm-<full LLVM version>/
//!     bin/bpf-linker                 built by `cargo install --root`
//!     llvm/lib/libLLVM.so            -> <nightly sysroot>/lib/libLLVM.so.<...>
//!     llvm/lib/libLLVM.so.<...>      -> the same file, under its SONAME
//! ```
//!
//! `llvm/` is the `LLVM_PREFIX` the linker was built with; its run path points there,
//! so the prefix and the toolchain must stay in place. The linker is rebuilt only when
//! the LLVM version changes (a new directory) or when the cached one no longer runs.

use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::process;
use crate::toolchain::{self, LlvmVersion, Nightly};

/// Overrides the cache root (the directory holding `bpf-linker/`).
pub const TOOLCHAIN_DIR_ENV: &str = "LOG2DROP_TOOLCHAIN_DIR";

/// The bpf-linker release this project builds; 0.13 has the `llvm-21..23` features.
pub const LINKER_VERSION: &str = "0.13.0";

/// Chooses the cache root like the shell expression
/// `${LOG2DROP_TOOLCHAIN_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/log2drop}`; empty values
/// count as unset, and a relative `XDG_CACHE_HOME` is ignored as the XDG spec says.
pub fn cache_root(
    toolchain_dir: Option<OsString>,
    xdg_cache_home: Option<OsString>,
    home: Option<OsString>,
) -> Result<PathBuf> {
    let set = |v: Option<OsString>| v.filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(dir) = set(toolchain_dir) {
        return Ok(dir);
    }
    if let Some(xdg) = set(xdg_cache_home).filter(|p| p.is_absolute()) {
        return Ok(xdg.join("log2drop"));
    }
    if let Some(home) = set(home) {
        return Ok(home.join(".cache").join("log2drop"));
    }
    bail!("cannot place the bpf-linker cache: HOME is not set; set {TOOLCHAIN_DIR_ENV}=DIR")
}

/// The cache directory for one LLVM version.
pub fn linker_dir(root: &Path, llvm: &LlvmVersion) -> PathBuf {
    root.join("bpf-linker").join(format!("llvm-{}", llvm.full))
}

/// Makes sure a working bpf-linker for `nightly`'s LLVM exists and returns the
/// directory holding it (to be put first on PATH).
pub fn ensure(nightly: &Nightly) -> Result<PathBuf> {
    let root = cache_root(
        std::env::var_os(TOOLCHAIN_DIR_ENV),
        std::env::var_os("XDG_CACHE_HOME"),
        std::env::var_os("HOME"),
    )?;
    let root = std::path::absolute(&root)
        .with_context(|| format!("making the cache path {} absolute", root.display()))?;
    let dir = linker_dir(&root, &nightly.llvm);
    let bin_dir = dir.join("bin");
    let linker = bin_dir.join("bpf-linker");

    std::fs::create_dir_all(&dir)
        .with_context(|| format!("creating the bpf-linker cache {}", dir.display()))?;
    // Two builds at once would race on the same prefix; the second one waits and then
    // finds the first one's linker.
    let lock_path = dir.join(".lock");
    let lock = File::create(&lock_path)
        .with_context(|| format!("creating the lock file {}", lock_path.display()))?;
    if lock.try_lock().is_err() {
        eprintln!("    waiting for another build of {}", dir.display());
        lock.lock()
            .with_context(|| format!("locking {}", lock_path.display()))?;
    }

    let reason = match check_runs(&linker) {
        Ok(version) => {
            eprintln!(
                "    using cached {} (LLVM {}) from {}",
                version.trim(),
                nightly.llvm.full,
                linker.display()
            );
            return Ok(bin_dir);
        }
        Err(reason) => reason,
    };
    process::announce(&format!(
        "building bpf-linker {LINKER_VERSION} for LLVM {} into {} ({reason})",
        nightly.llvm.full,
        dir.display()
    ));
    let started = Instant::now();
    let prefix = dir.join("llvm");
    link_libllvm(&prefix, &toolchain::libllvm_path(nightly)?)?;
    install(nightly, &dir, &prefix)?;
    match check_runs(&linker) {
        Ok(version) => {
            process::finished(&format!("built {}", version.trim()), started);
            Ok(bin_dir)
        }
        Err(reason) => bail!(
            "bpf-linker was built at {} but does not run ({reason}). Remove {} and retry; \
             if it fails again, reinstall the nightly toolchain (`{}`)",
            linker.display(),
            dir.display(),
            toolchain::INSTALL_NIGHTLY
        ),
    }
}

/// Runs `bpf-linker --version`: fails when the binary is missing or cannot load its
/// libLLVM (e.g. the nightly was updated and the library moved).
fn check_runs(linker: &Path) -> std::result::Result<String, String> {
    if !linker.exists() {
        return Err("no cached linker".to_owned());
    }
    match Command::new(linker)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
    {
        Ok(out) if out.status.success() => Ok(String::from_utf8_lossy(&out.stdout).into_owned()),
        Ok(out) => Err(format!(
            "cached linker does not run: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => Err(format!("cached linker does not start: {e}")),
    }
}

/// Builds the `LLVM_PREFIX` bpf-linker links against: `lib/libLLVM.so` for the link
/// step and `lib/<SONAME>` for the run-time loader, both pointing at the toolchain's
/// library. Stale links from an earlier toolchain are replaced.
fn link_libllvm(prefix: &Path, libllvm: &Path) -> Result<()> {
    let lib = prefix.join("lib");
    std::fs::create_dir_all(&lib).with_context(|| format!("creating {}", lib.display()))?;
    for entry in std::fs::read_dir(&lib).with_context(|| format!("listing {}", lib.display()))? {
        let entry = entry.with_context(|| format!("listing {}", lib.display()))?;
        if entry.file_name().to_string_lossy().starts_with("libLLVM") {
            std::fs::remove_file(entry.path())
                .with_context(|| format!("removing the stale link {}", entry.path().display()))?;
        }
    }
    let own_name = libllvm
        .file_name()
        .with_context(|| format!("{} has no file name", libllvm.display()))?;
    for name in [OsString::from("libLLVM.so"), own_name.to_owned()] {
        let link = lib.join(&name);
        std::os::unix::fs::symlink(libllvm, &link)
            .with_context(|| format!("linking {} -> {}", link.display(), libllvm.display()))?;
    }
    Ok(())
}

fn install(nightly: &Nightly, dir: &Path, prefix: &Path) -> Result<()> {
    let feature = nightly.llvm.linker_feature();
    let fix = format!(
        "bpf-linker {LINKER_VERSION} is built with the stable toolchain and a C toolchain \
         (`apt-get install build-essential`) against {}; check that its feature `{feature}` \
         exists for LLVM {} (https://crates.io/crates/bpf-linker), or install a working \
         `bpf-linker` at {}",
        prefix.join("lib/libLLVM.so").display(),
        nightly.llvm.full,
        dir.join("bin/bpf-linker").display()
    );
    process::run_with_network_retries(
        || {
            let mut cmd = Command::new("cargo");
            process::clear_outer_build_env(&mut cmd);
            cmd.current_dir(dir)
                .env("LLVM_PREFIX", prefix)
                .arg("install")
                .arg(format!("bpf-linker@{LINKER_VERSION}"))
                .args(["--locked", "--force", "--no-default-features", "--features"])
                .arg(&feature)
                .arg("--root")
                .arg(dir);
            cmd
        },
        &fix,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(s: &str) -> Option<OsString> {
        Some(OsString::from(s))
    }

    #[test]
    fn explicit_dir_wins() {
        let root = cache_root(os("/opt/l2d"), os("/xdg"), os("/home/u")).expect("ok");
        assert_eq!(root, PathBuf::from("/opt/l2d"));
    }

    #[test]
    fn xdg_cache_home_is_used_next() {
        let root = cache_root(None, os("/xdg"), os("/home/u")).expect("ok");
        assert_eq!(root, PathBuf::from("/xdg/log2drop"));
    }

    #[test]
    fn home_cache_is_the_default() {
        let root = cache_root(None, None, os("/root")).expect("ok");
        assert_eq!(root, PathBuf::from("/root/.cache/log2drop"));
    }

    #[test]
    fn empty_and_relative_values_count_as_unset() {
        let root = cache_root(os(""), os(""), os("/home/u")).expect("ok");
        assert_eq!(root, PathBuf::from("/home/u/.cache/log2drop"));
        let root = cache_root(None, os("rel/cache"), os("/home/u")).expect("ok");
        assert_eq!(root, PathBuf::from("/home/u/.cache/log2drop"));
    }

    #[test]
    fn no_home_is_an_error_naming_the_override() {
        let err = cache_root(None, None, None).expect_err("nowhere to cache");
        assert!(err.to_string().contains(TOOLCHAIN_DIR_ENV), "{err}");
    }

    #[test]
    fn cache_dir_is_per_full_llvm_version() {
        let llvm = LlvmVersion {
            full: "22.1.4".to_owned(),
            major: 22,
        };
        assert_eq!(
            linker_dir(Path::new("/root/.cache/log2drop"), &llvm),
            PathBuf::from("/root/.cache/log2drop/bpf-linker/llvm-22.1.4")
        );
        let newer = LlvmVersion {
            full: "22.1.5".to_owned(),
            major: 22,
        };
        assert_ne!(
            linker_dir(Path::new("/c"), &llvm),
            linker_dir(Path::new("/c"), &newer)
        );
    }

    /// A fresh directory under the system temp dir, removed by the caller.
    fn scratch_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("xtask-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        dir
    }

    #[test]
    fn prefix_links_both_names_and_replaces_stale_links() {
        let dir = scratch_dir("prefix");
        let old = dir.join("libLLVM.so.21.1-rust-old");
        let new = dir.join("libLLVM.so.22.1-rust-new");
        std::fs::write(&old, b"old").expect("write");
        std::fs::write(&new, b"new").expect("write");
        let prefix = dir.join("llvm");
        link_libllvm(&prefix, &old).expect("first link");
        link_libllvm(&prefix, &new).expect("relink");
        let lib = prefix.join("lib");
        let mut names: Vec<String> = std::fs::read_dir(&lib)
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["libLLVM.so", "libLLVM.so.22.1-rust-new"]);
        for name in &names {
            assert_eq!(std::fs::read_link(lib.join(name)).expect("symlink"), new);
        }
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn missing_linker_is_reported_as_not_running() {
        let err = check_runs(Path::new("/nonexistent/bpf-linker")).expect_err("missing");
        assert!(err.contains("no cached linker"), "{err}");
    }

    #[test]
    fn failing_linker_is_reported_as_not_running() {
        // `false` starts but exits non-zero, like a linker whose libLLVM vanished.
        let err = check_runs(Path::new("/bin/false")).expect_err("fails");
        assert!(err.contains("does not run"), "{err}");
    }
}
