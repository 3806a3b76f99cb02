//! Leak checks for kernel objects. A test records the ids of the maps, programs and
//! links pinned in its [`PinDir`] while they exist, and after tearing everything
//! down asserts that the kernel no longer has any of them: a leftover would be an
//! XDP program still attached somewhere, or kernel memory never returned.

use std::collections::BTreeSet;
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use aya::maps::MapInfo;
use aya::programs::{loaded_links, loaded_programs};

use crate::bpffs::PinDir;

/// Kernel ids of BPF objects, by kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KernelObjects {
    /// Map ids.
    pub maps: BTreeSet<u32>,
    /// Program ids.
    pub programs: BTreeSet<u32>,
    /// Link ids.
    pub links: BTreeSet<u32>,
}

impl KernelObjects {
    /// The ids of everything pinned below `pins`, plus the programs the pinned links
    /// hold.
    pub fn pinned_in(pins: &PinDir) -> KernelObjects {
        let mut out = KernelObjects::default();
        for path in pins.list() {
            let info = fdinfo_of_pin(&path);
            for line in info.lines() {
                let Some((key, value)) = line.split_once(':') else {
                    continue;
                };
                let Ok(id) = value.trim().parse::<u32>() else {
                    continue;
                };
                match key {
                    "map_id" => {
                        out.maps.insert(id);
                    }
                    "prog_id" => {
                        out.programs.insert(id);
                    }
                    "link_id" => {
                        out.links.insert(id);
                    }
                    _ => {}
                }
            }
        }
        out
    }

    /// The subset of these objects the kernel still has.
    pub fn still_loaded(&self) -> KernelObjects {
        let links: BTreeSet<u32> = loaded_links()
            .filter_map(Result::ok)
            .map(|l| l.id())
            .collect();
        let programs: BTreeSet<u32> = loaded_programs()
            .filter_map(Result::ok)
            .map(|p| p.id())
            .collect();
        KernelObjects {
            maps: self
                .maps
                .iter()
                .copied()
                .filter(|id| MapInfo::from_id(*id).is_ok())
                .collect(),
            programs: self.programs.intersection(&programs).copied().collect(),
            links: self.links.intersection(&links).copied().collect(),
        }
    }

    /// Whether there is no object at all.
    pub fn is_empty(&self) -> bool {
        self.maps.is_empty() && self.programs.is_empty() && self.links.is_empty()
    }
}

/// `/proc/self/fdinfo` of a pinned object, which names its kind and id whatever it
/// is (`map_id:`, `prog_id:`, `link_id:`).
fn fdinfo_of_pin(path: &Path) -> String {
    let fd = bpf_obj_get(path);
    let info = format!("/proc/self/fdinfo/{}", fd.as_raw_fd());
    std::fs::read_to_string(&info).unwrap_or_else(|e| panic!("cannot read {info}: {e}"))
}

/// `BPF_OBJ_GET`: opens a pinned object of any kind. aya only offers typed opens,
/// which misread an object of another kind.
fn bpf_obj_get(path: &Path) -> OwnedFd {
    const BPF_OBJ_GET: libc::c_long = 7;
    #[repr(C)]
    #[derive(Default)]
    struct ObjGetAttr {
        pathname: u64,
        bpf_fd: u32,
        file_flags: u32,
        path_fd: i32,
        _pad: u32,
    }
    let cpath = CString::new(path.as_os_str().as_bytes())
        .unwrap_or_else(|e| panic!("pin path {} has a NUL byte: {e}", path.display()));
    let attr = ObjGetAttr {
        pathname: cpath.as_ptr() as u64,
        ..ObjGetAttr::default()
    };
    // SAFETY: `attr` is a valid, zero-padded BPF_OBJ_GET attribute whose `pathname`
    // points to `cpath`, which outlives the call; the size passed is its size.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_OBJ_GET,
            &attr as *const ObjGetAttr,
            std::mem::size_of::<ObjGetAttr>(),
        )
    };
    if ret < 0 {
        panic!(
            "BPF_OBJ_GET {} failed: {}",
            path.display(),
            std::io::Error::last_os_error()
        );
    }
    let fd = i32::try_from(ret).unwrap_or_else(|_| panic!("bpf returned fd {ret}"));
    // SAFETY: the kernel just returned this new descriptor and nothing else owns it.
    unsafe { OwnedFd::from_raw_fd(fd) }
}
