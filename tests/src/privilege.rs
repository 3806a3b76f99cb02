//! Whether a privileged test may run. Outside CI a test without root skips with a
//! message, so `cargo test` as a normal user stays green; under `CI=true` it fails
//! instead, so a CI run can never pass by silently skipping everything.

/// Returns `true` when the process runs as root. Otherwise panics under `CI=true`, or
/// prints why `test_name` is skipped and returns `false`.
pub fn require_root(test_name: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    assert!(
        !under_ci(std::env::var_os("CI").as_deref()),
        "{test_name}: privileged test cannot skip under CI (CI=true): run it as root"
    );
    eprintln!("skipping {test_name}: needs root (network namespaces, veth, XDP, bpffs)");
    false
}

/// `CI` counts as set when it is `true` or `1` (case-insensitive), as CI systems set it.
fn under_ci(value: Option<&std::ffi::OsStr>) -> bool {
    value
        .and_then(|v| v.to_str())
        .is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

#[cfg(test)]
mod tests {
    use super::under_ci;
    use std::ffi::OsStr;

    #[test]
    fn ci_detection() {
        assert!(under_ci(Some(OsStr::new("true"))));
        assert!(under_ci(Some(OsStr::new("TRUE"))));
        assert!(under_ci(Some(OsStr::new("1"))));
        assert!(!under_ci(Some(OsStr::new("false"))));
        assert!(!under_ci(Some(OsStr::new(""))));
        assert!(!under_ci(None));
    }
}
