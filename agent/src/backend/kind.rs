//! The backends this build has, and `[backends]`, the table that composes their
//! settings. This is the one place that lists backends: a backend is an arm of
//! [`BackendKind`] (compiled only for the systems whose kernel it drives) and a
//! field of [`BackendsConfig`]; the daemon asks these two for everything else
//! (names, opening, flushing, what a reload takes), so adding a backend touches
//! its own folder and this file.
//!
//! A config may name a backend another system has (`[backends.pf]` on Linux). It
//! parses, and validation says plainly that the backend is not available here,
//! rather than calling it unknown.

use std::fmt;

use serde::{Deserialize, Deserializer};

use super::dry_run::config::DryRunConfig;
#[cfg(target_os = "linux")]
use super::nftables::config::NftablesConfig;
#[cfg(target_os = "openbsd")]
use super::pf::config::PfConfig;
#[cfg(target_os = "linux")]
use super::xdp::config::XdpConfig;
use super::{Backend, BackendConfig, BackendError, Change};
use crate::config::locate::KeyPath;

/// A backend this build can drive, in the order decisions are applied to them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BackendKind {
    /// `xdp`: an eBPF hash map read by an XDP program (Linux).
    #[cfg(target_os = "linux")]
    Xdp,
    /// `nftables`: sets in a table of our own, written over netlink (Linux).
    #[cfg(target_os = "linux")]
    Nftables,
    /// `pf`: a PF table, written through `/dev/pf` (OpenBSD).
    #[cfg(target_os = "openbsd")]
    Pf,
    /// `dry-run`: logs decisions and enforces nothing.
    DryRun,
}

impl BackendKind {
    /// Every backend of this build, in the order decisions are applied to them.
    pub const ALL: &'static [BackendKind] = &[
        #[cfg(target_os = "linux")]
        BackendKind::Xdp,
        #[cfg(target_os = "linux")]
        BackendKind::Nftables,
        #[cfg(target_os = "openbsd")]
        BackendKind::Pf,
        BackendKind::DryRun,
    ];

    /// The name config files, jails' `backends` lists and `status` use.
    pub fn name(self) -> &'static str {
        match self {
            #[cfg(target_os = "linux")]
            BackendKind::Xdp => "xdp",
            #[cfg(target_os = "linux")]
            BackendKind::Nftables => "nftables",
            #[cfg(target_os = "openbsd")]
            BackendKind::Pf => "pf",
            BackendKind::DryRun => "dry-run",
        }
    }

    /// The backend of this build called `name`.
    pub(crate) fn from_name(name: &str) -> Option<BackendKind> {
        BackendKind::ALL.iter().copied().find(|k| k.name() == name)
    }

    /// Whether this backend enforces anything (every one but `dry-run`).
    fn enforces(self) -> bool {
        self != BackendKind::DryRun
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Backends of other systems, with the system they need: named in messages, so a
/// config written for another host gets "not available here", not "unknown".
const ELSEWHERE: &[(&str, &str)] = &[
    #[cfg(not(target_os = "linux"))]
    ("xdp", "Linux"),
    #[cfg(not(target_os = "linux"))]
    ("nftables", "Linux"),
    #[cfg(not(target_os = "openbsd"))]
    ("pf", "OpenBSD"),
];

/// Why a name a jail lists is not a backend of this build.
pub(crate) fn unknown_backend(name: &str) -> String {
    match ELSEWHERE.iter().find(|(n, _)| *n == name) {
        Some((_, system)) => format!(
            "the {name} backend is only available on {system} (this build has: {})",
            known_names()
        ),
        None => format!("unknown backend {name:?} (known: {})", known_names()),
    }
}

fn known_names() -> String {
    let names: Vec<&str> = BackendKind::ALL.iter().map(|k| k.name()).collect();
    names.join(", ")
}

/// The table of a backend this system does not have. Its keys are not read (they
/// belong to another system's backend); validation refuses the table with a
/// message that says so.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Unavailable;

impl<'de> Deserialize<'de> for Unavailable {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(d)?;
        Ok(Unavailable)
    }
}

#[cfg(not(target_os = "linux"))]
type XdpConfig = Unavailable;
#[cfg(not(target_os = "linux"))]
type NftablesConfig = Unavailable;
#[cfg(not(target_os = "openbsd"))]
type PfConfig = Unavailable;

/// `[backends]`: each present table enables that backend.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendsConfig {
    /// `[backends.xdp]` (Linux).
    pub xdp: Option<XdpConfig>,
    /// `[backends.nftables]` (Linux).
    pub nftables: Option<NftablesConfig>,
    /// `[backends.pf]` (OpenBSD).
    pub pf: Option<PfConfig>,
    /// `[backends.dry-run]`: logs decisions only.
    #[serde(rename = "dry-run")]
    pub dry_run: Option<DryRunConfig>,
}

/// Runs `$body` with `$c` bound to the settings of `$kind` in `$cfg`, if that
/// backend is configured: `Some(result)`, else `None`.
macro_rules! with_settings {
    ($cfg:expr, $kind:expr, |$c:ident| $body:expr) => {
        match $kind {
            #[cfg(target_os = "linux")]
            BackendKind::Xdp => $cfg.xdp.as_ref().map(|$c| $body),
            #[cfg(target_os = "linux")]
            BackendKind::Nftables => $cfg.nftables.as_ref().map(|$c| $body),
            #[cfg(target_os = "openbsd")]
            BackendKind::Pf => $cfg.pf.as_ref().map(|$c| $body),
            BackendKind::DryRun => $cfg.dry_run.as_ref().map(|$c| $body),
        }
    };
}

/// Like `with_settings`, for the settings of `$kind` in two configs, when both
/// have that backend.
macro_rules! with_both {
    ($old:expr, $new:expr, $kind:expr, |$a:ident, $b:ident| $body:expr) => {
        match $kind {
            #[cfg(target_os = "linux")]
            BackendKind::Xdp => $old
                .xdp
                .as_ref()
                .zip($new.xdp.as_ref())
                .map(|($a, $b)| $body),
            #[cfg(target_os = "linux")]
            BackendKind::Nftables => $old
                .nftables
                .as_ref()
                .zip($new.nftables.as_ref())
                .map(|($a, $b)| $body),
            #[cfg(target_os = "openbsd")]
            BackendKind::Pf => $old.pf.as_ref().zip($new.pf.as_ref()).map(|($a, $b)| $body),
            BackendKind::DryRun => $old
                .dry_run
                .as_ref()
                .zip($new.dry_run.as_ref())
                .map(|($a, $b)| $body),
        }
    };
}

/// How one backend moves from the running config to a new one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Only the new config has it: open it.
    Add,
    /// Only the running config has it: remove its kernel state.
    Remove,
    /// Both have it, with the same settings.
    Keep,
    /// Its settings changed; see [`Change::Reopen`].
    Reopen,
    /// Its settings changed; see [`Change::Replace`].
    Replace,
    /// Added or changed, but it can only be opened at start: see
    /// [`Change::Restart`].
    Restart,
}

impl BackendsConfig {
    /// How each backend either config has moves from these settings to `new`, in
    /// the order decisions are applied to them.
    pub fn steps(&self, new: &BackendsConfig) -> Vec<(BackendKind, Step)> {
        let mut out = Vec::new();
        for &kind in BackendKind::ALL {
            let step = match (self.has(kind), new.has(kind)) {
                (false, false) => continue,
                (false, true) => match with_settings!(new, kind, |c| c.opens_while_running()) {
                    Some(false) => Step::Restart,
                    _ => Step::Add,
                },
                (true, false) => Step::Remove,
                (true, true) => match with_both!(self, new, kind, |a, b| a.change_to(b)) {
                    Some(Change::Keep) | None => Step::Keep,
                    Some(Change::Reopen) => Step::Reopen,
                    Some(Change::Replace) => Step::Replace,
                    Some(Change::Restart) => Step::Restart,
                },
            };
            out.push((kind, step));
        }
        out
    }

    /// The configured backends, in the order decisions are applied to them.
    pub(crate) fn kinds(&self) -> Vec<BackendKind> {
        BackendKind::ALL
            .iter()
            .copied()
            .filter(|&k| self.has(k))
            .collect()
    }

    /// Names of the configured backends, as jails list them.
    pub fn names(&self) -> Vec<&'static str> {
        self.kinds().into_iter().map(BackendKind::name).collect()
    }

    /// Whether backend `kind` is configured.
    pub fn has(&self, kind: BackendKind) -> bool {
        with_settings!(self, kind, |_c| ()).is_some()
    }

    /// Opens backend `kind`; `None` when it is not configured.
    pub fn open(&self, kind: BackendKind) -> Option<Result<Box<dyn Backend>, BackendError>> {
        with_settings!(self, kind, |c| c.open())
    }

    /// Removes the kernel objects of backend `kind`; `None` when it is not
    /// configured.
    pub fn flush(&self, kind: BackendKind) -> Option<Result<usize, BackendError>> {
        with_settings!(self, kind, |c| c.flush())
    }

    /// After backend `kind` was reopened with `new`'s settings: lets it remove what
    /// these settings set up that the new ones no longer use.
    pub fn release(&self, new: &BackendsConfig, kind: BackendKind) {
        with_both!(self, new, kind, |a, b| a.release(b));
    }

    /// Takes backend `kind` out of these settings.
    pub fn remove(&mut self, kind: BackendKind) {
        match kind {
            #[cfg(target_os = "linux")]
            BackendKind::Xdp => self.xdp = None,
            #[cfg(target_os = "linux")]
            BackendKind::Nftables => self.nftables = None,
            #[cfg(target_os = "openbsd")]
            BackendKind::Pf => self.pf = None,
            BackendKind::DryRun => self.dry_run = None,
        }
    }

    /// Every problem of `[backends]` (at `at`), each with its key path: no backend
    /// at all, a backend this system lacks, and each backend's own checks.
    pub fn check(&self, at: &KeyPath) -> Vec<(KeyPath, String)> {
        let mut out = Vec::new();
        let unavailable = self.unavailable();
        if self.kinds().is_empty() && unavailable.is_empty() {
            let enforcing: Vec<String> = BackendKind::ALL
                .iter()
                .filter(|k| k.enforces())
                .map(|k| format!("[backends.{k}]"))
                .collect();
            out.push((
                at.clone(),
                format!(
                    "no backend configured: add {} (or [backends.dry-run] to only log decisions)",
                    enforcing.join(" or ")
                ),
            ));
        }
        for (name, system) in unavailable {
            out.push((
                at.key(name),
                format!(
                    "the {name} backend is only available on {system}; on this system use {}",
                    known_names()
                ),
            ));
        }
        for kind in self.kinds() {
            let table = at.key(kind.name());
            out.extend(with_settings!(self, kind, |c| c.check(&table)).unwrap_or_default());
        }
        out
    }

    /// The tables of other systems' backends these settings have, with the
    /// system each needs.
    fn unavailable(&self) -> Vec<(&'static str, &'static str)> {
        let tables: &[(&str, &str, bool)] = &[
            #[cfg(not(target_os = "linux"))]
            ("xdp", "Linux", self.xdp.is_some()),
            #[cfg(not(target_os = "linux"))]
            ("nftables", "Linux", self.nftables.is_some()),
            #[cfg(not(target_os = "openbsd"))]
            ("pf", "OpenBSD", self.pf.is_some()),
        ];
        tables
            .iter()
            .filter(|t| t.2)
            .map(|&(name, system, _)| (name, system))
            .collect()
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    const BASE: &str = "[dry-run]\n[xdp]\ninterfaces = [\"eth0\"]\n";

    fn cfg(text: &str) -> BackendsConfig {
        toml::from_str(text).unwrap_or_else(|e| panic!("{e}"))
    }

    fn of(steps: &[(BackendKind, Step)], step: Step) -> Vec<&'static str> {
        steps
            .iter()
            .filter(|(_, s)| *s == step)
            .map(|(k, _)| k.name())
            .collect()
    }

    #[test]
    fn names_round_trip_in_apply_order() {
        for &k in BackendKind::ALL {
            assert_eq!(BackendKind::from_name(k.name()), Some(k));
        }
        assert_eq!(cfg(BASE).names(), ["xdp", "dry-run"]);
    }

    #[test]
    fn identical_configs_keep_every_backend() {
        let steps = cfg(BASE).steps(&cfg(BASE));
        assert_eq!(of(&steps, Step::Keep), ["xdp", "dry-run"]);
        assert_eq!(steps.len(), 2);
    }

    #[test]
    fn added_and_removed_backends_are_listed() {
        let new = cfg(&BASE.replacen("[dry-run]\n", "", 1));
        let steps = cfg(BASE).steps(&new);
        assert_eq!(of(&steps, Step::Remove), ["dry-run"]);
        assert_eq!(of(&steps, Step::Keep), ["xdp"]);
        assert_eq!(of(&new.steps(&cfg(BASE)), Step::Add), ["dry-run"]);
    }

    #[test]
    fn each_backend_says_what_its_change_takes() {
        let more = cfg(&BASE.replace("[\"eth0\"]", "[\"eth0\", \"eth1\"]"));
        assert_eq!(of(&cfg(BASE).steps(&more), Step::Reopen), ["xdp"]);
        let moved = cfg(&format!("{BASE}pin_dir = \"/sys/fs/bpf/other\"\n"));
        assert_eq!(of(&cfg(BASE).steps(&moved), Step::Replace), ["xdp"]);
        let nft = cfg("[nftables]\n");
        let reject = cfg("[nftables]\naction = \"reject\"\n");
        assert_eq!(of(&nft.steps(&reject), Step::Replace), ["nftables"]);
    }

    #[test]
    fn another_systems_backend_is_not_available_rather_than_unknown() {
        let c = cfg("[pf]\ntable = \"log2drop\"\n");
        assert!(c.kinds().is_empty());
        assert_eq!(BackendKind::from_name("pf"), None);
        let problems = c.check(&KeyPath::of(&["backends"]));
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].0.to_string(), "backends.pf");
        assert!(
            problems[0].1.contains("only available on OpenBSD"),
            "{problems:?}"
        );
        assert!(unknown_backend("pf").contains("only available on OpenBSD"));
    }

    #[test]
    fn unknown_backends_list_the_known_ones() {
        assert_eq!(
            unknown_backend("nft"),
            "unknown backend \"nft\" (known: xdp, nftables, dry-run)"
        );
    }
}
