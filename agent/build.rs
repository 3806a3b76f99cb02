//! Finds the compiled XDP object so the agent can embed it. The object is built by
//! `cargo xtask build-ebpf` (nightly + bpf-linker), never by this script: a host build
//! must not silently produce an agent without its kernel half, so a missing object is
//! a build error that says how to make it.

use std::env;
use std::path::{Path, PathBuf};

/// Overrides where the object is read from (for packagers and CI caches).
const OBJ_ENV: &str = "LOG2DROP_EBPF_OBJ";
/// Where `cargo xtask build-ebpf` writes the object, relative to the workspace root.
const DEFAULT_OBJ: &str = "target/ebpf/bpfel-unknown-none/release/log2drop-xdp";

fn main() {
    // Only Linux builds have the XDP backend; other systems need no object.
    if env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("linux") {
        return;
    }
    println!("cargo::rerun-if-env-changed={OBJ_ENV}");
    let obj = match env::var_os(OBJ_ENV) {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => {
            let manifest_dir = env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from);
            let workspace = manifest_dir
                .as_deref()
                .and_then(Path::parent)
                .unwrap_or(Path::new(".."));
            workspace.join(DEFAULT_OBJ)
        }
    };
    // Watching the path also catches the object appearing later: cargo reruns the
    // script when a watched file's mtime changes, including from absent to present.
    println!("cargo::rerun-if-changed={}", obj.display());
    if !obj.is_file() {
        println!(
            "cargo::error=the XDP object {} is missing: run `cargo xtask build-ebpf` first \
             (or point {OBJ_ENV} at a built log2drop-xdp object)",
            obj.display()
        );
        return;
    }
    println!("cargo::rustc-env={OBJ_ENV}={}", obj.display());
}
