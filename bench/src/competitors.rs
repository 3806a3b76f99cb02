//! The tools log2drop is compared with, installed from Debian when missing. A
//! package that cannot be installed is recorded with the reason; the cases that need
//! it say so in their notes and still report log2drop's own figures.
//!
//! Installing must not start the packages' daemons (fail2ban and sshguard would
//! start banning on the host): while apt runs, a `policy-rc.d` that refuses every
//! service start is in place, as Debian's own image builders do, unless the admin
//! already has one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use log2drop_bench::report::ToolStatus;

/// Debian packages the cases use: the competitors; python3-pyinotify, which a
/// default (with recommends) fail2ban install brings and which its `backend = auto`
/// prefers to polling; and ethtool, which the flood case uses to turn on GRO and
/// read veth counters; valgrind, whose cachegrind counts instructions per line
/// where the machine (a VM) has no hardware counters for `perf stat`.
pub const PACKAGES: &[&str] = &[
    "ethtool",
    "fail2ban",
    "python3-pyinotify",
    "sshguard",
    "valgrind",
    "xdp-tools",
    "nftables",
    "iptables",
    "ipset",
];

/// Debian's hook that decides whether maintainer scripts may start services.
const POLICY_RC_D: &str = "/usr/sbin/policy-rc.d";

/// What is usable, by package.
#[derive(Debug, Clone, Default)]
pub struct Tools {
    by_package: BTreeMap<String, ToolStatus>,
}

impl Tools {
    /// Checks every package in [`PACKAGES`], installing the missing ones unless
    /// `install` is false.
    pub fn prepare(install: bool) -> Tools {
        let mut tools = Tools::default();
        let missing: Vec<&str> = PACKAGES
            .iter()
            .copied()
            .filter(|p| installed_version(p).is_none())
            .collect();
        let mut install_error = None;
        if !missing.is_empty() {
            if install {
                eprintln!("==> installing competitors: {}", missing.join(" "));
                if let Err(e) = apt_install(&missing) {
                    eprintln!("    {e}");
                    install_error = Some(e);
                }
            } else {
                install_error = Some("not installed, and --no-install was given".to_owned());
            }
        }
        for p in PACKAGES {
            let version = installed_version(p);
            let problem = match (&version, &install_error) {
                (Some(_), _) => None,
                (None, Some(e)) => Some(e.clone()),
                (None, None) => {
                    Some("apt-get reported success but the package is not installed".to_owned())
                }
            };
            tools.by_package.insert(
                (*p).to_owned(),
                ToolStatus {
                    package: (*p).to_owned(),
                    installed_now: version.is_some() && missing.contains(p),
                    version,
                    problem,
                },
            );
        }
        tools
    }

    /// Whether `package` can be used, or why not.
    pub fn check(&self, package: &str) -> Result<(), String> {
        match self.by_package.get(package) {
            Some(ToolStatus { problem: None, .. }) => Ok(()),
            Some(ToolStatus {
                problem: Some(p), ..
            }) => Err(format!("{package} is not available: {p}")),
            None => Err(format!("{package} was not checked")),
        }
    }

    /// Version of an installed package, for notes.
    pub fn version(&self, package: &str) -> String {
        self.by_package
            .get(package)
            .and_then(|t| t.version.clone())
            .unwrap_or_else(|| "?".to_owned())
    }

    /// Every package's status, for the report.
    pub fn statuses(&self) -> Vec<ToolStatus> {
        self.by_package.values().cloned().collect()
    }
}

/// The installed version of a Debian package, `None` when not installed (or not a
/// Debian system).
fn installed_version(package: &str) -> Option<String> {
    let out = Command::new("dpkg-query")
        .args(["-W", "-f=${Status}\t${Version}", package])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    parse_dpkg_status(&String::from_utf8_lossy(&out.stdout))
}

fn parse_dpkg_status(text: &str) -> Option<String> {
    let (status, version) = text.split_once('\t')?;
    (status.trim() == "install ok installed").then(|| version.trim().to_owned())
}

/// `apt-get install` with daemons kept from starting; on failure runs `apt-get
/// update` and tries once more (a fresh machine has no package lists).
fn apt_install(packages: &[&str]) -> Result<(), String> {
    if Command::new("dpkg-query")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_err()
    {
        return Err("not a Debian/Ubuntu system (no dpkg-query)".to_owned());
    }
    let _guard = NoServiceStart::install();
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(packages)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(Stdio::null())
            .status()
    };
    match install() {
        Ok(s) if s.success() => return Ok(()),
        Ok(_) => {}
        Err(e) => return Err(format!("cannot run apt-get: {e}")),
    }
    eprintln!("    apt-get install failed; running apt-get update and retrying");
    let _ = Command::new("apt-get")
        .args(["update", "-q"])
        .stdout(Stdio::null())
        .status();
    match install() {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => Err(format!(
            "`apt-get install {}` failed ({s})",
            packages.join(" ")
        )),
        Err(e) => Err(format!("cannot run apt-get: {e}")),
    }
}

/// A `policy-rc.d` that refuses service starts, removed on drop. Does nothing when
/// the admin already has one.
struct NoServiceStart {
    created: Option<PathBuf>,
}

impl NoServiceStart {
    fn install() -> NoServiceStart {
        let path = Path::new(POLICY_RC_D);
        if path.exists() {
            return NoServiceStart { created: None };
        }
        let ok = std::fs::write(
            path,
            "#!/bin/sh\n# log2drop bench: no daemons while installing competitors\nexit 101\n",
        )
        .and_then(|()| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        });
        match ok {
            Ok(()) => NoServiceStart {
                created: Some(path.to_path_buf()),
            },
            Err(e) => {
                eprintln!(
                    "    warning: cannot write {POLICY_RC_D} ({e}); installed daemons may start"
                );
                NoServiceStart { created: None }
            }
        }
    }
}

impl Drop for NoServiceStart {
    fn drop(&mut self) {
        if let Some(p) = &self.created
            && let Err(e) = std::fs::remove_file(p)
        {
            eprintln!("warning: cannot remove {}: {e}", p.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dpkg_status_lines() {
        assert_eq!(
            parse_dpkg_status("install ok installed\t1.0.2-2").as_deref(),
            Some("1.0.2-2")
        );
        assert_eq!(parse_dpkg_status("deinstall ok config-files\t1.0"), None);
        assert_eq!(parse_dpkg_status(""), None);
    }

    #[test]
    fn unknown_package_is_not_usable() {
        let tools = Tools::default();
        assert!(tools.check("fail2ban").is_err());
    }
}
