//! What the `log2drop report` tests share: running the command.

use std::process::{Command, Output};

/// `log2drop report ARGS`, whatever its exit status.
pub fn report_output(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_log2drop"))
        .arg("report")
        .args(args)
        .output()
        .expect("run log2drop report")
}

/// `log2drop report ARGS`, which must succeed; its stdout.
pub fn report_ok(args: &[&str]) -> Vec<u8> {
    let out = report_output(args);
    assert!(
        out.status.success(),
        "log2drop report {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A path as an argument (test paths are UTF-8).
pub fn arg(path: &std::path::Path) -> &str {
    path.to_str().expect("UTF-8 test path")
}
