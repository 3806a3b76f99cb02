//! The agent's pinned maps, read by the bench on its own descriptors: whether an
//! address is in the ban map, how many packets the program dropped for it, and how
//! much kernel memory each map holds (`memlock` in the map descriptor's fdinfo,
//! which on current kernels is the map's real usage).

use std::net::IpAddr;
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use aya::maps::{HashMap, Map, MapData, MapError};
use log2drop_common::{BanValue, MAP_BAN_V4, MAP_BAN_V6};
use log2drop_tests::PinDir;

/// Read handles on the exact ban maps (which hold their drop counters) under one
/// pin directory.
pub struct PinnedMaps {
    v4: HashMap<MapData, [u8; 4], BanValue>,
    v6: HashMap<MapData, [u8; 16], BanValue>,
}

fn open(pins: &PinDir, name: &str) -> Result<MapData> {
    let path = pins
        .find(name)
        .with_context(|| format!("{name} is not pinned under {}", pins.path().display()))?;
    MapData::from_pin(&path).with_context(|| format!("opening {}", path.display()))
}

impl PinnedMaps {
    /// Opens the maps the agent pinned under `pins`.
    pub fn open(pins: &PinDir) -> Result<PinnedMaps> {
        Ok(PinnedMaps {
            v4: HashMap::try_from(Map::HashMap(open(pins, MAP_BAN_V4)?))
                .context("BAN_V4 layout")?,
            v6: HashMap::try_from(Map::HashMap(open(pins, MAP_BAN_V6)?))
                .context("BAN_V6 layout")?,
        })
    }

    /// Whether an exact ban for `addr` is in the kernel map.
    pub fn banned(&self, addr: IpAddr) -> Result<bool> {
        let r = match addr {
            IpAddr::V4(a) => self.v4.get(&a.octets(), 0).map(|_| ()),
            IpAddr::V6(a) => self.v6.get(&a.octets(), 0).map(|_| ()),
        };
        match r {
            Ok(()) => Ok(true),
            Err(MapError::KeyNotFound) => Ok(false),
            Err(e) => Err(e).context("reading the ban map"),
        }
    }

    /// Entries in the exact-address IPv4 ban map.
    pub fn count_v4(&self) -> Result<u64> {
        let mut n = 0;
        for k in self.v4.keys() {
            k.context("reading the ban map's keys")?;
            n += 1;
        }
        Ok(n)
    }

    /// Packets the program dropped for the exact ban of `addr`, over all CPUs.
    pub fn dropped(&self, addr: IpAddr) -> Result<u64> {
        let r = match addr {
            IpAddr::V4(a) => self.v4.get(&a.octets(), 0),
            IpAddr::V6(a) => self.v6.get(&a.octets(), 0),
        };
        match r {
            Ok(v) => Ok(v.packets),
            Err(MapError::KeyNotFound) => Ok(0),
            Err(e) => Err(e).context("reading the drop counters"),
        }
    }
}

/// Every map pinned below `dir` (any depth) with its kernel memory in bytes.
pub fn map_memory(dir: &Path) -> Result<Vec<(String, u64)>> {
    let mut out = Vec::new();
    for path in pinned_files(dir)? {
        let Ok(map) = MapData::from_pin(&path) else {
            continue; // a link or program pin
        };
        let fd = map.fd().as_fd().as_raw_fd();
        let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}"))
            .with_context(|| format!("reading fdinfo of {}", path.display()))?;
        let memlock = fdinfo_field(&info, "memlock").unwrap_or(0);
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        out.push((name, memlock));
    }
    out.sort();
    Ok(out)
}

fn pinned_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).with_context(|| format!("listing {}", d.display()))? {
            let entry = entry.with_context(|| format!("listing {}", d.display()))?;
            let p = entry.path();
            if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                todo.push(p);
            } else {
                out.push(p);
            }
        }
    }
    Ok(out)
}

fn fdinfo_field(info: &str, field: &str) -> Option<u64> {
    info.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fdinfo_fields() {
        let info = "pos:\t0\nflags:\t02000002\nmap_type:\t1\nmax_entries:\t1048576\nmemlock:\t84017152\nmap_id:\t42\n";
        assert_eq!(fdinfo_field(info, "memlock"), Some(84_017_152));
        assert_eq!(fdinfo_field(info, "max_entries"), Some(1_048_576));
        assert_eq!(fdinfo_field(info, "map_extra"), None);
    }
}
