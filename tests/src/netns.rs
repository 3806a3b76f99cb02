//! Throwaway network namespaces. Each [`NetNs`] gets a name no other test (or test
//! process) uses, is mounted under `/run/netns/` so `ip -n` and `nsenter` find it,
//! and is deleted when dropped, panics included. [`NetNsGuard`] moves the current
//! thread into a namespace for code that must run there in-process (loading XDP
//! through the library, for instance) and moves it back when dropped.

use std::fs::File;
use std::marker::PhantomData;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::Output;

use nix::sched::{CloneFlags, setns};

use crate::cmd;

/// Where `ip netns` mounts named namespaces.
const NETNS_DIR: &str = "/run/netns";

/// A named network namespace, deleted on drop. Anything created inside it (veth
/// ends, XDP attachments) goes with it once no process holds it any more.
#[derive(Debug)]
pub struct NetNs {
    name: String,
    path: PathBuf,
}

impl NetNs {
    /// Creates a fresh namespace named `l2d-<pid>-<n>` with `lo` up. The name is
    /// picked by trying: `ip netns add` refuses an existing name, so two tests (or a
    /// stale namespace left by a killed run whose pid came back) never share one.
    pub fn new() -> NetNs {
        let pid = std::process::id();
        for n in 0..10_000u32 {
            let name = format!("l2d-{pid}-{n}");
            let path = Path::new(NETNS_DIR).join(&name);
            if path.exists() {
                continue;
            }
            let out = cmd::output(&["ip", "netns", "add", &name]);
            if !out.status.success() {
                // Another test thread of this process took the name between the
                // check above and the add: try the next one.
                if path.exists() {
                    continue;
                }
                panic!(
                    "`ip netns add {name}` failed ({}): {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
            let ns = NetNs { name, path };
            cmd::checked(&ns.command(&["ip", "link", "set", "dev", "lo", "up"]));
            return ns;
        }
        panic!("no free namespace name l2d-{pid}-N under {NETNS_DIR}");
    }

    /// The namespace's name, as `ip netns list` and `ip -n` know it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The bind mount that keeps the namespace alive (`/run/netns/NAME`).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The argv that runs `argv` inside this namespace (through `nsenter`, keeping
    /// the mount namespace so `/sys/fs/bpf` stays visible).
    pub fn command(&self, argv: &[&str]) -> Vec<std::ffi::OsString> {
        cmd::in_netns(&self.path, argv)
    }

    /// Runs `argv` inside this namespace and returns its output, whatever its status.
    pub fn exec(&self, argv: &[&str]) -> Output {
        cmd::output(&self.command(argv))
    }

    /// Runs `argv` inside this namespace and panics with its stderr if it fails.
    pub fn exec_checked(&self, argv: &[&str]) -> Output {
        cmd::checked(&self.command(argv))
    }

    /// Moves the current thread into this namespace until the guard is dropped.
    pub fn enter(&self) -> NetNsGuard<'_> {
        NetNsGuard::enter(self)
    }
}

impl Default for NetNs {
    fn default() -> Self {
        NetNs::new()
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let out = cmd::output(&["ip", "netns", "delete", &self.name]);
        if !out.status.success() {
            eprintln!(
                "warning: could not delete network namespace {}: {}",
                self.name,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
    }
}

/// The current thread is inside a [`NetNs`] while this guard lives; dropping it
/// moves the thread back to the namespace it came from. Not `Send`: a namespace is a
/// property of one thread, so the guard must be dropped on the thread that entered.
///
/// ```compile_fail
/// fn needs_send<T: Send>(_: T) {}
/// let ns = log2drop_tests::NetNs::new();
/// needs_send(ns.enter());
/// ```
#[derive(Debug)]
pub struct NetNsGuard<'ns> {
    original: File,
    ns: &'ns NetNs,
    _not_send: PhantomData<*const ()>,
}

impl<'ns> NetNsGuard<'ns> {
    fn enter(ns: &'ns NetNs) -> NetNsGuard<'ns> {
        let original = File::open("/proc/thread-self/ns/net")
            .unwrap_or_else(|e| panic!("cannot open this thread's network namespace: {e}"));
        let target = File::open(&ns.path)
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", ns.path.display()));
        setns(target.as_fd(), CloneFlags::CLONE_NEWNET)
            .unwrap_or_else(|e| panic!("setns into {} failed: {e}", ns.name));
        NetNsGuard {
            original,
            ns,
            _not_send: PhantomData,
        }
    }

    /// The namespace the thread is in.
    pub fn netns(&self) -> &NetNs {
        self.ns
    }
}

impl Drop for NetNsGuard<'_> {
    fn drop(&mut self) {
        if let Err(e) = setns(self.original.as_fd(), CloneFlags::CLONE_NEWNET) {
            // A thread left in the test namespace would run the rest of the test in
            // the wrong place; stop rather than produce confusing results.
            if std::thread::panicking() {
                eprintln!("cannot leave network namespace {}: {e}", self.ns.name);
            } else {
                panic!("cannot leave network namespace {}: {e}", self.ns.name);
            }
        }
    }
}

/// The inode of a thread's network namespace, which identifies it.
pub fn current_netns_inode() -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/thread-self/ns/net")
        .unwrap_or_else(|e| panic!("cannot stat this thread's network namespace: {e}"))
        .ino()
}

/// Names of the namespaces `ip netns list` shows.
pub fn listed_namespaces() -> Vec<String> {
    let out = cmd::checked(&["ip", "netns", "list"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: test threads of one process raced for `l2d-<pid>-0` (both saw it
    /// free, the second `ip netns add` failed and panicked the test).
    #[test]
    fn threads_creating_namespaces_at_once_get_distinct_ones() {
        if !crate::require_root("threads_creating_namespaces_at_once_get_distinct_ones") {
            return;
        }
        let made: Vec<NetNs> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8).map(|_| s.spawn(NetNs::new)).collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("no thread panicked"))
                .collect()
        });
        let mut names: Vec<&str> = made.iter().map(NetNs::name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), 8);
    }
}
