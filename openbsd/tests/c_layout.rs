//! Two independent writings of the PF structures must agree: the Rust declarations
//! (src/pf/sys.rs) and tests/layout.c, both written from OpenBSD's pfvar.h. This
//! test turns every Rust size, alignment, offset and request number into a C
//! `_Static_assert` after layout.c and has clang type-check the result for OpenBSD on
//! amd64 and arm64. The Rust numbers come from this (64-bit Linux) build; the const
//! assertions in sys.rs pin them to the same values when `cargo check` builds the
//! crate for the OpenBSD targets.
//!
//! clang is a CI dependency (.ci/run installs it). Without it the test says so and
//! passes, except under CI=true, where a missing compiler is a failure.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use log2drop_openbsd::pf::sys;

const TARGETS: &[&str] = &["x86_64-unknown-openbsd", "aarch64-unknown-openbsd"];

fn asserts() -> String {
    let mut c = String::from("#include \"layout.c\"\n\n");
    for s in sys::STRUCTS {
        writeln!(
            c,
            "_Static_assert(sizeof(struct {0}) == {1}, \"sizeof(struct {0}) != {1} (Rust)\");",
            s.c_struct, s.size
        )
        .unwrap();
        writeln!(
            c,
            "_Static_assert(_Alignof(struct {0}) == {1}, \"_Alignof(struct {0}) != {1} (Rust)\");",
            s.c_struct, s.align
        )
        .unwrap();
    }
    for f in sys::FIELDS {
        writeln!(
            c,
            "_Static_assert(__builtin_offsetof(struct {0}, {1}) == {2}, \
             \"offsetof(struct {0}, {1}) != {2} (Rust)\");",
            f.c_struct, f.c_field, f.offset
        )
        .unwrap();
    }
    for (name, value) in [
        ("DIOCKILLSTATES", sys::DIOCKILLSTATES),
        ("DIOCRADDTABLES", sys::DIOCRADDTABLES),
        ("DIOCRCLRADDRS", sys::DIOCRCLRADDRS),
        ("DIOCRADDADDRS", sys::DIOCRADDADDRS),
        ("DIOCRDELADDRS", sys::DIOCRDELADDRS),
        ("DIOCRSETADDRS", sys::DIOCRSETADDRS),
        ("DIOCRGETADDRS", sys::DIOCRGETADDRS),
    ] {
        writeln!(
            c,
            "_Static_assert({name} == {value:#x}UL, \"{name} != {value:#x} (Rust)\");"
        )
        .unwrap();
    }
    c
}

fn clang_available() -> bool {
    Command::new("clang")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A directory holding a copy of layout.c, or None (after saying so) when clang is
/// missing outside CI. Under CI=true a missing clang fails the test.
fn scratch() -> Option<tempfile::TempDir> {
    if !clang_available() {
        let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
        assert!(
            !ci,
            "clang is not installed and CI=true forbids skipping the C layout check \
             (apt-get install clang)"
        );
        eprintln!("SKIPPED: clang is not installed; the C layout cross-check did not run");
        return None;
    }
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(manifest.join("tests/layout.c"), dir.path().join("layout.c")).unwrap();
    Some(dir)
}

fn check(target: &str, dir: &Path, file: &Path) -> Result<(), String> {
    let out = Command::new("clang")
        .args([&format!("--target={target}"), "-fsyntax-only", "-std=c11"])
        .args(["-Wall", "-Werror", "-ffreestanding", "-nostdinc", "-I"])
        .arg(dir)
        .arg(file)
        .output()
        .map_err(|e| format!("running clang: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "clang --target={target} disagrees with the Rust layout:\n{}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

#[test]
fn c_compiler_agrees_with_the_rust_layouts() {
    let Some(dir) = scratch() else { return };
    let file = dir.path().join("asserts.c");
    let text = asserts();
    std::fs::write(&file, &text).unwrap();
    // Every structure and field is asserted, not just a sample.
    let lines = text
        .lines()
        .filter(|l| l.starts_with("_Static_assert"))
        .count();
    assert_eq!(lines, 2 * sys::STRUCTS.len() + sys::FIELDS.len() + 7);
    let failures: Vec<String> = TARGETS
        .iter()
        .filter_map(|t| check(t, dir.path(), &file).err())
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn c_check_catches_a_wrong_offset() {
    // The check can fail: one offset off by one must be reported.
    let Some(dir) = scratch() else { return };
    let file = dir.path().join("asserts.c");
    std::fs::write(
        &file,
        "#include \"layout.c\"\n_Static_assert(__builtin_offsetof(struct pfr_addr, pfra_af) == 39, \"x\");\n",
    )
    .unwrap();
    let err = check(TARGETS[0], dir.path(), &file).unwrap_err();
    assert!(
        err.contains("static assertion failed") || err.contains("static_assert"),
        "{err}"
    );
}
