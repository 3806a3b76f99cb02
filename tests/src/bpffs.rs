//! A private bpffs directory per test, so the agent's pinned maps and links from
//! one test can never be picked up by another, and nothing is left pinned (which
//! would keep an XDP program attached and kernel memory held) after the test.

use std::path::{Path, PathBuf};

use nix::sys::statfs::{BPF_FS_MAGIC, statfs};

/// Where bpffs is conventionally mounted.
pub const BPFFS: &str = "/sys/fs/bpf";

/// A directory under `/sys/fs/bpf`, removed with everything pinned in it on drop.
/// Unpinning is what releases the maps and detaches pinned links; the kernel frees
/// them once nothing else (a running agent, the namespace) holds them.
#[derive(Debug)]
pub struct PinDir {
    path: PathBuf,
}

impl PinDir {
    /// Creates `/sys/fs/bpf/log2drop-test-<pid>-<n>`, mounting bpffs on
    /// `/sys/fs/bpf` first if it is not mounted there.
    pub fn new() -> PinDir {
        ensure_bpffs(Path::new(BPFFS));
        let pid = std::process::id();
        for n in 0..10_000u32 {
            let path = Path::new(BPFFS).join(format!("log2drop-test-{pid}-{n}"));
            match std::fs::create_dir(&path) {
                Ok(()) => return PinDir { path },
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => panic!("cannot create pin directory {}: {e}", path.display()),
            }
        }
        panic!("no free pin directory name under {BPFFS}");
    }

    /// The directory to give the agent as `pin_dir`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Finds a pinned object by file name anywhere below the directory (the pin
    /// layout has versioned subdirectories the test need not know).
    pub fn find(&self, name: &str) -> Option<PathBuf> {
        find_file(&self.path, name)
    }

    /// Every pinned object below the directory, for assertions and failure messages.
    pub fn list(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        walk(&self.path, &mut |p| out.push(p.to_owned()));
        out
    }
}

impl Default for PinDir {
    fn default() -> Self {
        PinDir::new()
    }
}

impl Drop for PinDir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            eprintln!("warning: could not remove {}: {e}", self.path.display());
        }
    }
}

/// Mounts bpffs on `dir` unless it already is a bpffs. The mount stays: other tests
/// and the agent itself expect it, as on a normally booted host.
pub fn ensure_bpffs(dir: &Path) {
    if is_bpffs(dir) {
        return;
    }
    nix::mount::mount(
        Some("bpf"),
        dir,
        Some("bpf"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    )
    .unwrap_or_else(|e| panic!("cannot mount bpffs on {}: {e}", dir.display()));
    assert!(
        is_bpffs(dir),
        "{} is still not a bpffs after mounting",
        dir.display()
    );
}

/// Whether `dir` is on a bpffs mount.
pub fn is_bpffs(dir: &Path) -> bool {
    statfs(dir).is_ok_and(|s| s.filesystem_type() == BPF_FS_MAGIC)
}

fn find_file(dir: &Path, name: &str) -> Option<PathBuf> {
    let mut found = None;
    walk(dir, &mut |p| {
        if found.is_none() && p.file_name().is_some_and(|f| f == name) {
            found = Some(p.to_owned());
        }
    });
    found
}

fn walk(dir: &Path, f: &mut dyn FnMut(&Path)) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            walk(&path, f);
        } else {
            f(&path);
        }
    }
}
