//! Running the external programs the harness drives (`ip`, `nsenter`, `ping`, the
//! agent's CLI). A failed setup command panics with the full command line and its
//! stderr, because a test that cannot build its network must stop right there with a
//! message that says why.

use std::ffi::OsStr;
use std::process::{Command, Output};

/// Runs `argv` and returns its output, whatever its exit status. Panics only when the
/// program cannot be started at all (missing binary).
pub fn output<S: AsRef<OsStr>>(argv: &[S]) -> Output {
    let (program, args) = argv
        .split_first()
        .expect("a command needs at least a program name");
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", describe(argv)))
}

/// Runs `argv` and panics with its stderr unless it exits with status 0.
pub fn checked<S: AsRef<OsStr>>(argv: &[S]) -> Output {
    let out = output(argv);
    assert!(
        out.status.success(),
        "`{}` failed ({}): {}",
        describe(argv),
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    out
}

/// The command line as one string, for messages.
pub fn describe<S: AsRef<OsStr>>(argv: &[S]) -> String {
    argv.iter()
        .map(|a| a.as_ref().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs `argv` inside the network namespace mounted at `ns_path` through `nsenter`,
/// which keeps the mount namespace (unlike `ip netns exec`, which remounts `/sys` and
/// hides `/sys/fs/bpf`).
pub fn in_netns<S: AsRef<OsStr>>(ns_path: &std::path::Path, argv: &[S]) -> Vec<std::ffi::OsString> {
    let mut full: Vec<std::ffi::OsString> = vec!["nsenter".into(), {
        let mut a = std::ffi::OsString::from("--net=");
        a.push(ns_path);
        a
    }];
    full.extend(argv.iter().map(|a| a.as_ref().to_owned()));
    full
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checked_reports_failure() {
        let r = std::panic::catch_unwind(|| checked(&["false"]));
        assert!(r.is_err());
        assert!(checked(&["true"]).status.success());
    }

    #[test]
    fn output_keeps_failure_status() {
        assert!(!output(&["false"]).status.success());
    }

    #[test]
    fn in_netns_prefixes_nsenter() {
        let argv = in_netns(std::path::Path::new("/run/netns/x"), &["ip", "link"]);
        assert_eq!(describe(&argv), "nsenter --net=/run/netns/x ip link");
    }
}
