//! The directories the agent trusts: its state directory, its control socket's
//! directory and its bpffs pin directory. Whoever can write one of them can swap the
//! ban database, bind a fake control socket, or delete the pins that keep enforcement
//! alive, so the agent creates them itself with an explicit mode (whatever the umask)
//! and refuses one that another user owns or can write.
//!
//! The rule, for every component of the path once symlinks are resolved:
//! - the directory itself, and each directory the agent creates, is owned by root (or
//!   the agent's own uid) and writable by nobody else;
//! - each ancestor is owned by root (or the agent's uid) and either writable by nobody
//!   else or sticky, like `/tmp` or the 1777 `/sys/fs/bpf`: in a sticky directory
//!   another user may create names but cannot rename or delete ours, and a name they
//!   created first is refused by the owner check.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Why a directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DirError {
    /// A filesystem call failed.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The directory or one of its ancestors is not safe to trust.
    #[error(
        "refusing {path}: {why} (owner uid {uid}, mode {mode:04o}); it must be owned by root \
         and writable by no other user (fix it with chown root and chmod go-w, or choose \
         another directory)"
    )]
    Unsafe {
        /// The offending directory (the configured one or an ancestor).
        path: PathBuf,
        /// Its owner.
        uid: u32,
        /// Its permission bits.
        mode: u32,
        /// What is wrong with it.
        why: &'static str,
    },
}

/// Makes sure `path` is a directory only root (or the agent's uid) controls. Missing
/// components are created: `path` itself with `mode` (and group `gid`, if given),
/// intermediate ones with 0755; the modes are set explicitly so the umask does not
/// matter. An existing `path` keeps its mode if it is safe.
pub fn ensure(path: &Path, mode: u32, gid: Option<u32>) -> Result<(), DirError> {
    let io = |action, path: &Path| {
        let path = path.to_path_buf();
        move |source| DirError::Io {
            action,
            path,
            source,
        }
    };
    let path = std::path::absolute(path).map_err(io("resolve", path))?;
    // Missing components, deepest first.
    let mut missing = Vec::new();
    let mut existing = path.as_path();
    loop {
        match fs::symlink_metadata(existing) {
            Ok(_) => break,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                missing.push(existing.to_path_buf());
                existing = existing.parent().unwrap_or(Path::new("/"));
            }
            Err(e) => return Err(io("inspect", existing)(e)),
        }
    }
    let canonical = fs::canonicalize(existing).map_err(io("resolve", existing))?;
    let trusted_end = missing.is_empty();
    for dir in canonical.ancestors() {
        let last = dir == canonical && trusted_end;
        check(dir, !last)?;
    }
    for dir in missing.iter().rev() {
        let is_target = *dir == path;
        let want = if is_target { mode } else { 0o755 };
        match fs::DirBuilder::new().mode(want).create(dir) {
            Ok(()) => {
                fs::set_permissions(dir, fs::Permissions::from_mode(want))
                    .map_err(io("set the mode of", dir))?;
                if is_target && gid.is_some() {
                    std::os::unix::fs::chown(dir, None, gid)
                        .map_err(io("set the group of", dir))?;
                }
            }
            // Someone made it between our look and now: the check below judges it.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io("create", dir)(e)),
        }
        check(dir, !is_target)?;
    }
    Ok(())
}

/// Checks one directory; `ancestor` allows a sticky directory others may write.
fn check(dir: &Path, ancestor: bool) -> Result<(), DirError> {
    let meta = fs::metadata(dir).map_err(|source| DirError::Io {
        action: "inspect",
        path: dir.to_path_buf(),
        source,
    })?;
    let mode = meta.mode() & 0o7777;
    let unsafe_ = |why| DirError::Unsafe {
        path: dir.to_path_buf(),
        uid: meta.uid(),
        mode,
        why,
    };
    if !meta.is_dir() {
        return Err(unsafe_("not a directory"));
    }
    if !trusted_uid(meta.uid()) {
        return Err(unsafe_("another user owns it"));
    }
    let sticky = mode & 0o1000 != 0;
    if mode & 0o022 != 0 && !(ancestor && sticky) {
        return Err(unsafe_("other users can write to it"));
    }
    Ok(())
}

fn trusted_uid(uid: u32) -> bool {
    uid == 0 || uid == nix::unistd::geteuid().as_raw()
}

/// Whether the file at `path` belongs to root (or the agent's uid) and no other
/// user may write it. Used for files inside a checked directory that another
/// process could have created before the directory was made safe.
pub(crate) fn check_file(path: &Path) -> Result<(), DirError> {
    let meta = fs::symlink_metadata(path).map_err(|source| DirError::Io {
        action: "inspect",
        path: path.to_path_buf(),
        source,
    })?;
    let mode = meta.mode() & 0o7777;
    let unsafe_ = |why| DirError::Unsafe {
        path: path.to_path_buf(),
        uid: meta.uid(),
        mode,
        why,
    };
    if meta.file_type().is_symlink() {
        return Err(unsafe_("it is a symbolic link"));
    }
    if !trusted_uid(meta.uid()) {
        return Err(unsafe_("another user owns it"));
    }
    if mode & 0o022 != 0 {
        return Err(unsafe_("other users can write to it"));
    }
    Ok(())
}

/// The umask is per process and the test harness runs tests on threads: a test
/// that needs `umask 000` reruns itself alone in a child process that has it.
#[cfg(test)]
pub(crate) fn run_under_umask_000(test: &str) -> bool {
    use std::os::unix::process::CommandExt;
    const CHILD: &str = "LOG2DROP_TEST_UMASK_CHILD";
    if std::env::var_os(CHILD).is_some() {
        assert_eq!(
            nix::sys::stat::umask(nix::sys::stat::Mode::empty()).bits(),
            0,
            "the child runs under umask 000"
        );
        return true;
    }
    let mut cmd = std::process::Command::new(std::env::current_exe().expect("test binary"));
    cmd.args(["--exact", test, "--test-threads=1"])
        .env(CHILD, "1");
    // SAFETY: umask(2) is async-signal-safe and cannot fail.
    unsafe {
        cmd.pre_exec(|| {
            libc::umask(0);
            Ok(())
        });
    }
    let out = cmd.output().expect("rerun the test binary");
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("1 passed"),
        "{test} under umask 000:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode_of(p: &Path) -> u32 {
        fs::metadata(p).expect("stat").mode() & 0o7777
    }

    #[test]
    fn creates_the_whole_path_with_explicit_modes_whatever_the_umask() {
        // A umask that would leave everything open to everyone.
        if !run_under_umask_000(
            "private_dir::tests::creates_the_whole_path_with_explicit_modes_whatever_the_umask",
        ) {
            return;
        }
        let tmp = tempfile::tempdir().expect("tempdir");
        std::fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o700)).expect("chmod");
        let target = tmp.path().join("a/b/state");
        ensure(&target, 0o700, None).expect("ensure");
        assert_eq!(mode_of(&target), 0o700);
        assert_eq!(mode_of(&tmp.path().join("a")), 0o755);
        assert_eq!(mode_of(&tmp.path().join("a/b")), 0o755);
        // Idempotent.
        ensure(&target, 0o700, None).expect("again");
    }

    #[test]
    fn refuses_a_directory_others_can_write_naming_it() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let open = tmp.path().join("open");
        fs::create_dir(&open).expect("mkdir");
        fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).expect("chmod");
        let err = ensure(&open, 0o700, None).expect_err("0777 is refused");
        let text = err.to_string();
        assert!(text.contains(&open.display().to_string()), "{text}");
        assert!(
            text.contains("0777") && text.contains("can write"),
            "{text}"
        );
        // As an ancestor too, unless it is sticky.
        let below = open.join("state");
        assert!(ensure(&below, 0o700, None).is_err());
        assert!(
            !below.exists(),
            "nothing is created below an unsafe ancestor"
        );
        fs::set_permissions(&open, fs::Permissions::from_mode(0o1777)).expect("chmod");
        ensure(&below, 0o700, None).expect("a sticky root-owned ancestor is fine");
        // But the sticky directory itself is not a private directory.
        assert!(ensure(&open, 0o700, None).is_err());
    }

    #[test]
    fn refuses_a_file_in_place_of_the_directory() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let f = tmp.path().join("f");
        fs::write(&f, b"").expect("write");
        let err = ensure(&f, 0o700, None).expect_err("file");
        assert!(err.to_string().contains("not a directory"), "{err}");
    }
}
