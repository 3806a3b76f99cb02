//! What the running agent may still do once start-up has opened everything: on
//! OpenBSD, pledge(2) promises and unveil(2) paths, derived from the config so a
//! feature the config does not use leaves no promise behind. The agent parses text
//! attackers write; after this, a compromised agent can neither reach `/dev/pf`
//! (the backend's helper holds it) nor read or run anything the config does not
//! name.
//!
//! [`Sandbox::for_config`] is pure and tested everywhere; [`Sandbox::enter`] makes
//! the calls on OpenBSD and does nothing elsewhere. Consequences an admin sees:
//! a reload can read files only under directories the starting config unveiled,
//! and cannot start programs the starting config did not name (a new backend
//! helper among them); such changes need a restart.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::config::{Config, SourceKind};
use crate::engine::allowlist::{AllowEntry, parse_entry};

/// The directories OpenBSD's default PATH searches, for programs given by name.
const DEFAULT_PATH: &[&str] = &[
    "/bin",
    "/sbin",
    "/usr/bin",
    "/usr/sbin",
    "/usr/local/bin",
    "/usr/local/sbin",
];

/// The promises and paths the agent keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Sandbox {
    /// pledge(2) promises, space-separated.
    pub promises: String,
    /// unveil(2) paths with their permissions (`r`, `w`, `x`, `c`).
    pub paths: BTreeMap<PathBuf, String>,
}

impl Sandbox {
    /// What the agent running `cfg` (read from `config_path`) needs after start-up.
    pub(crate) fn for_config(cfg: &Config, config_path: &Path) -> Sandbox {
        // stdio: I/O on open descriptors, threads, time; rpath wpath cpath flock:
        // the state database (and its WAL), the socket, reading logs and the
        // config at reload; unix: the control socket.
        let mut promises = vec!["stdio", "rpath", "wpath", "cpath", "flock", "unix"];
        let mut paths = BTreeMap::new();
        let mut allow = |p: &Path, perm: &str| {
            let e: &mut String = paths.entry(p.to_path_buf()).or_default();
            for c in perm.chars() {
                if !e.contains(c) {
                    e.push(c);
                }
            }
        };
        allow(config_path, "r");
        allow(&cfg.agent.state_dir, "rwc");
        if let Some(dir) = cfg.agent.socket.parent() {
            allow(dir, "rwc");
        }
        // Local time zones of timestamps (jiff reads the zone database).
        allow(Path::new("/etc/localtime"), "r");
        allow(Path::new("/usr/share/zoneinfo"), "r");
        let mut programs = false;
        for src in cfg.sources.values() {
            match src.kind {
                // An auto source may follow its file once it appears (on
                // OpenBSD, where there is no journal, it always does).
                SourceKind::File | SourceKind::Auto => {
                    match crate::source::glob::Pattern::new(&src.path) {
                        // The directory, not the file: rotation creates new files.
                        Ok(p) => allow(&p.watch_dir(), "r"),
                        Err(_) => allow(&src.path, "r"),
                    }
                }
                SourceKind::Command => {
                    programs = true;
                    if let Some(program) = src.command.as_ref().and_then(|c| c.first()) {
                        allow_program(&mut allow, program);
                    }
                }
                SourceKind::Journal | SourceKind::Stdin => {}
            }
        }
        // The metrics endpoint accepts connections on its TCP listener.
        let mut network = cfg.metrics.listen.is_some();
        for jail in cfg.jails.values() {
            let Some(n) = &jail.notify else { continue };
            if let Some(program) = n.exec.first() {
                programs = true;
                allow_program(&mut allow, program);
            }
            network |= n.webhook.is_some();
        }
        // The fleet link reconnects to Redis (by name) for as long as it runs;
        // with TLS it reads the system's certificate roots at each connection.
        if cfg.fleet.is_some() {
            network = true;
            allow(Path::new("/etc/ssl"), "r");
        }
        let names = cfg
            .agent
            .allow
            .iter()
            .any(|e| matches!(parse_entry(e), Ok(AllowEntry::Host(_))));
        if programs {
            promises.extend(["proc", "exec"]);
            allow(Path::new("/dev/null"), "rw");
        }
        if network {
            promises.push("inet");
        }
        if network || names {
            promises.push("dns");
            allow(Path::new("/etc/resolv.conf"), "r");
            allow(Path::new("/etc/hosts"), "r");
        }
        if cfg.agent.allow_own_addresses {
            // getifaddrs(3) when the routing socket reports a change.
            promises.push("route");
        }
        if cfg.agent.socket_group.is_some() {
            // The peer's groups come from the group database on OpenBSD.
            promises.push("getpw");
            allow(Path::new("/etc/group"), "r");
            allow(Path::new("/etc/pwd.db"), "r");
        }
        Sandbox {
            promises: promises.join(" "),
            paths,
        }
    }

    /// What `new` needs that this sandbox does not give: promises, and paths no
    /// unveiled path (or directory above them) covers with the permissions asked.
    pub fn missing(&self, new: &Sandbox) -> Vec<String> {
        let held: Vec<&str> = self.promises.split(' ').collect();
        let mut out: Vec<String> = new
            .promises
            .split(' ')
            .filter(|p| !held.contains(p))
            .map(|p| format!("pledge {p}"))
            .collect();
        for (path, perm) in &new.paths {
            let covered = path.ancestors().any(|a| {
                self.paths
                    .get(a)
                    .is_some_and(|have| perm.chars().all(|c| have.contains(c)))
            });
            if !covered {
                out.push(format!("unveil {} {perm}", path.display()));
            }
        }
        out
    }

    /// Whether a running agent in this sandbox can take a config needing `new`:
    /// a forbidden call would get it killed (pledge) or fail (unveil). Always
    /// fine where there is no sandbox.
    pub(crate) fn admits(&self, new: &Sandbox) -> Result<(), String> {
        let missing = if cfg!(target_os = "openbsd") {
            self.missing(new)
        } else {
            Vec::new()
        };
        if missing.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "it needs what the sandboxed agent gave up at start ({})",
                missing.join(", ")
            ))
        }
    }

    /// Applies the sandbox: unveils every path, locks unveil, then pledges. Call
    /// once everything the agent keeps open is open.
    #[cfg(target_os = "openbsd")]
    pub fn enter(&self) -> std::io::Result<()> {
        use std::ffi::CString;
        use std::os::unix::ffi::OsStrExt;
        let c = |s: &[u8]| CString::new(s).map_err(std::io::Error::other);
        for (path, perm) in &self.paths {
            let p = c(path.as_os_str().as_bytes())?;
            let m = c(perm.as_bytes())?;
            // SAFETY: both are NUL-terminated strings that outlive the call.
            if unsafe { libc::unveil(p.as_ptr(), m.as_ptr()) } != 0 {
                let e = std::io::Error::last_os_error();
                // A path that does not exist (no zone database, say) is skipped.
                if e.kind() != std::io::ErrorKind::NotFound {
                    return Err(std::io::Error::new(
                        e.kind(),
                        format!("unveil {} {perm}: {e}", path.display()),
                    ));
                }
            }
        }
        // SAFETY: null pointers lock unveil, as unveil(2) documents.
        if unsafe { libc::unveil(std::ptr::null(), std::ptr::null()) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let promises = c(self.promises.as_bytes())?;
        // SAFETY: a NUL-terminated promise string; null keeps execpromises as is.
        if unsafe { libc::pledge(promises.as_ptr(), std::ptr::null()) } != 0 {
            let e = std::io::Error::last_os_error();
            return Err(std::io::Error::new(
                e.kind(),
                format!("pledge {:?}: {e}", self.promises),
            ));
        }
        Ok(())
    }

    /// Nothing to do on systems without pledge and unveil.
    #[cfg(not(target_os = "openbsd"))]
    pub fn enter(&self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A program run by path, or looked up in the default PATH.
fn allow_program(allow: &mut impl FnMut(&Path, &str), program: &str) {
    let p = Path::new(program);
    if p.is_absolute() {
        allow(p, "rx");
    } else {
        for dir in DEFAULT_PATH {
            allow(Path::new(dir), "rx");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sandbox(extra: &str) -> Sandbox {
        let text = format!(
            "[agent]\nstate_dir = \"/var/db/log2drop\"\nsocket = \"/var/run/log2drop/log2drop.sock\"\n\
             allow_own_addresses = false\n{extra}\n\
             [sources.auth]\npath = \"/var/log/authlog\"\nfilters = [\"sshd\"]\n\
             [jails.ssh]\nfilters = [\"sshd\"]\n"
        );
        let cfg: Config = toml::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
        Sandbox::for_config(&cfg, Path::new("/etc/log2drop/log2drop.toml"))
    }

    fn perm<'a>(s: &'a Sandbox, path: &str) -> Option<&'a str> {
        s.paths.get(Path::new(path)).map(String::as_str)
    }

    #[test]
    fn a_plain_config_keeps_files_and_the_socket_only() {
        let s = sandbox("");
        assert_eq!(s.promises, "stdio rpath wpath cpath flock unix");
        assert_eq!(perm(&s, "/etc/log2drop/log2drop.toml"), Some("r"));
        assert_eq!(perm(&s, "/var/db/log2drop"), Some("rwc"));
        assert_eq!(perm(&s, "/var/run/log2drop"), Some("rwc"));
        // The log's directory (rotation makes new files), never the device.
        assert_eq!(perm(&s, "/var/log"), Some("r"));
        assert_eq!(perm(&s, "/dev/pf"), None);
        assert!(!s.paths.keys().any(|p| p.starts_with("/dev")));
    }

    #[test]
    fn each_feature_adds_only_its_promises() {
        let s = sandbox(
            "[jails.web]\nfilters = [\"sshd\"]\nnotify = { webhook = \"http://198.51.100.1/hook\" }\n",
        );
        assert_eq!(s.promises, "stdio rpath wpath cpath flock unix inet dns");
        assert_eq!(perm(&s, "/etc/resolv.conf"), Some("r"));

        let s = sandbox(
            "[jails.web]\nfilters = [\"sshd\"]\nnotify = { exec = [\"/usr/local/bin/notify\", \"{address}\"] }\n",
        );
        assert_eq!(s.promises, "stdio rpath wpath cpath flock unix proc exec");
        assert_eq!(perm(&s, "/usr/local/bin/notify"), Some("rx"));

        let s = sandbox("").promises;
        assert!(!s.contains("route") && !s.contains("getpw") && !s.contains("dns"));
    }

    #[test]
    fn a_reload_needing_more_is_told_what() {
        let start = sandbox("");
        assert!(start.missing(&sandbox("")).is_empty());
        let hooks = sandbox(
            "[jails.web]\nfilters = [\"sshd\"]\nnotify = { exec = [\"/usr/local/bin/notify\"] }\n",
        );
        let missing = start.missing(&hooks);
        assert!(missing.contains(&"pledge proc".to_owned()), "{missing:?}");
        assert!(
            missing.contains(&"unveil /usr/local/bin/notify rx".to_owned()),
            "{missing:?}"
        );
        // A file under an unveiled directory is covered by it.
        let mut below = start.clone();
        below
            .paths
            .insert(PathBuf::from("/var/log/daemon"), "r".to_owned());
        assert!(start.missing(&below).is_empty());
    }

    #[test]
    fn host_names_own_addresses_and_a_socket_group_are_covered() {
        let text = "[agent]\nallow = [\"gw.example.org\"]\nsocket_group = \"_log2drop\"\n\
                    [sources.a]\npath = \"/var/www/logs/*access.log\"\nfilters = [\"f\"]\n\
                    [jails.j]\nfilters = [\"f\"]\n";
        let cfg: Config = toml::from_str(text).expect("config");
        let s = Sandbox::for_config(&cfg, Path::new("/etc/log2drop.toml"));
        assert_eq!(
            s.promises,
            "stdio rpath wpath cpath flock unix dns route getpw"
        );
        assert_eq!(perm(&s, "/var/www/logs"), Some("r"));
        assert_eq!(perm(&s, "/etc/group"), Some("r"));
    }
}
