//! A real unprivileged user for local-attacker tests: commands run as `nobody`
//! (through `setpriv`, so no fork happens inside the multi-threaded test process),
//! and a guard that removes what such a command left behind.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `nobody` on Debian.
pub const NOBODY: u32 = 65_534;
/// `nogroup` on Debian.
pub const NOGROUP: u32 = 65_534;

/// Runs `program args` as uid `nobody`, primary group `gid`, supplementary `groups`.
pub fn run_as_nobody(gid: u32, groups: &[u32], program: &Path, args: &[&str]) -> Output {
    let groups = if groups.is_empty() {
        "--clear-groups".to_owned()
    } else {
        format!(
            "--groups={}",
            groups
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(",")
        )
    };
    Command::new("setpriv")
        .arg(format!("--reuid={NOBODY}"))
        .arg(format!("--regid={gid}"))
        .arg(groups)
        .arg("--")
        .arg(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run setpriv (util-linux): {e}"))
}

/// `mkdir -p path` as `nobody`; panics if it fails.
pub fn mkdir_as_nobody(path: &Path) {
    let out = run_as_nobody(
        NOGROUP,
        &[],
        Path::new("mkdir"),
        &["-p", path.to_str().expect("utf-8 path")],
    );
    assert!(
        out.status.success(),
        "mkdir -p {} as nobody: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Removes a directory tree on drop (as root), even when the test panics.
#[derive(Debug)]
pub struct RemoveOnDrop(pub PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
