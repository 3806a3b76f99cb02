//! The layout of the pin directory and the bpffs under it. Pins are what let bans
//! outlive the agent, so this module decides where each one lives:
//!
//! ```text
//! <pin_dir>/maps-v<PIN_LAYOUT_VERSION>/<MAP>   pinned maps, reused on restart
//! <pin_dir>/links/<interface>                 pinned XDP links
//! ```
//!
//! The layout version is in the path so a new map layout never trips over old pins.
//! If the bpffs is missing and the pin directory is under `/sys/fs/bpf`, it mounts
//! one there (some minimal systems do not), and says so. The directories are created
//! root-only (0700) and refused when another user owns or can write them
//! ([`crate::private_dir`]).

use std::fs;
use std::path::{Path, PathBuf};

use log2drop_common::PIN_LAYOUT_VERSION;
use nix::mount::{MsFlags, mount};
use nix::sys::statfs::{BPF_FS_MAGIC, statfs};

use super::XdpError;

/// Where bpffs is conventionally mounted; the only place we mount it ourselves.
pub(crate) const BPFFS_ROOT: &str = "/sys/fs/bpf";

/// Paths under one pin directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PinLayout {
    /// The configured pin directory.
    pub(crate) root: PathBuf,
}

impl PinLayout {
    /// The layout under `root`.
    pub(crate) fn new(root: &Path) -> Self {
        PinLayout {
            root: root.to_path_buf(),
        }
    }

    /// Directory of the current layout's pinned maps.
    pub(crate) fn maps_dir(&self) -> PathBuf {
        self.root.join(format!("maps-v{PIN_LAYOUT_VERSION}"))
    }

    /// Pin path of one map.
    pub(crate) fn map(&self, name: &str) -> PathBuf {
        self.maps_dir().join(name)
    }

    /// Directory of pinned links.
    pub(crate) fn links_dir(&self) -> PathBuf {
        self.root.join("links")
    }

    /// Pin path of an interface's link. Interface names never contain `/` (the
    /// kernel refuses them), and callers check the interface exists first.
    pub(crate) fn link(&self, interface: &str) -> PathBuf {
        self.links_dir().join(interface)
    }

    /// Makes sure the pin directory is on a bpffs (mounting one at `/sys/fs/bpf` when
    /// the directory is below it and nothing is mounted there), then creates the map
    /// and link directories.
    pub(crate) fn prepare(&self) -> Result<(), XdpError> {
        if !on_bpffs(&self.root)? {
            if !self.root.starts_with(BPFFS_ROOT) {
                return Err(XdpError::BpffsNotMounted {
                    pin_dir: self.root.clone(),
                });
            }
            let root = Path::new(BPFFS_ROOT);
            fs::create_dir_all(root).map_err(|source| XdpError::PinDir {
                action: "create",
                path: root.to_path_buf(),
                source,
            })?;
            mount(
                Some("bpf"),
                root,
                Some("bpf"),
                MsFlags::empty(),
                None::<&str>,
            )
            .map_err(|source| XdpError::MountBpffs {
                path: root.to_path_buf(),
                source,
            })?;
            tracing::info!(path = BPFFS_ROOT, "bpffs was not mounted; mounted it");
            if !on_bpffs(&self.root)? {
                return Err(XdpError::BpffsNotMounted {
                    pin_dir: self.root.clone(),
                });
            }
        }
        // Only root may write below the pin directory: a user who could would be
        // able to delete the pins, and with them the bans and the attachment.
        for dir in [self.root.clone(), self.maps_dir(), self.links_dir()] {
            crate::private_dir::ensure(&dir, 0o700, None)?;
        }
        Ok(())
    }
}

/// Whether `path` (or, if it does not exist yet, its nearest existing ancestor) is on
/// a bpffs.
fn on_bpffs(path: &Path) -> Result<bool, XdpError> {
    let existing = path
        .ancestors()
        .find(|p| p.exists())
        .unwrap_or(Path::new("/"));
    let st = statfs(existing).map_err(|source| XdpError::Statfs {
        path: existing.to_path_buf(),
        source,
    })?;
    Ok(st.filesystem_type() == BPF_FS_MAGIC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_versioned_and_per_interface() {
        let l = PinLayout::new(Path::new("/sys/fs/bpf/log2drop"));
        assert_eq!(
            l.map("BAN_V4"),
            PathBuf::from(format!(
                "/sys/fs/bpf/log2drop/maps-v{PIN_LAYOUT_VERSION}/BAN_V4"
            ))
        );
        assert_eq!(
            l.link("eth0"),
            PathBuf::from("/sys/fs/bpf/log2drop/links/eth0")
        );
    }

    #[test]
    fn refuses_a_pin_dir_outside_bpffs_without_touching_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("pins");
        let err = PinLayout::new(&root)
            .prepare()
            .expect_err("tmp is not bpffs");
        assert!(matches!(err, XdpError::BpffsNotMounted { .. }), "{err}");
        assert!(!root.exists());
    }
}
