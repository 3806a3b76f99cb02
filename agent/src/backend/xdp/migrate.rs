//! Upgrades from an older pin layout. The kernel cannot change a pinned map's key or
//! value size, so a new layout gets new maps in its own `maps-v<N>` directory (see
//! [`super::pins`]). On the first start after an upgrade the agent copies the bans
//! of the previous layout (version 2) into the fresh maps before it switches the
//! pinned links to the new program, so no packet from a banned source passes during
//! the upgrade; then it removes the old pins, which frees the old maps once the old
//! program is gone. Reconciliation with the store follows as on every start and puts
//! right anything the copy could not carry.
//!
//! What layout 2 held: exact bans in plain hashes with a `u64` `CLOCK_BOOTTIME`
//! deadline, prefix bans in tries with the same value as today, and every ban's
//! per-CPU drop counters in `DROPS`. Deadlines are moved to `CLOCK_MONOTONIC` with
//! the time left unchanged; expired bans are left behind; counters are carried CPU by
//! CPU. Pins of any other old version are only removed.

use std::path::{Path, PathBuf};

use aya::maps::lpm_trie::Key;
use aya::maps::{HashMap, LpmTrie, Map, MapData, MapError, PerCpuHashMap};
use log2drop_common::{CidrBanValue, CounterKey, DropCounter, PIN_LAYOUT_VERSION};

use super::maps::BanMaps;
use super::pins::PinLayout;
use super::target::Slot;
use super::{XdpError, attach, deadline, read_dir, remove_empty_dir};

/// The layout this module can copy from.
const FROM_VERSION: u32 = 2;

/// Map directories of layouts other than the current one, with their versions
/// (`None` for a name that is not a number).
pub(crate) fn old_layouts(pins: &PinLayout) -> Result<Vec<(Option<u32>, PathBuf)>, XdpError> {
    let mut out = Vec::new();
    for entry in read_dir(&pins.root)? {
        let name = entry.file_name();
        let Some(version) = name.to_str().and_then(|n| n.strip_prefix("maps-v")) else {
            continue;
        };
        let version = version.parse::<u32>().ok();
        if version != Some(PIN_LAYOUT_VERSION) {
            out.push((version, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// What [`copy_v2`] carried over.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Migrated {
    /// Bans copied.
    pub bans: usize,
    /// Bans left behind because they had expired.
    pub expired: usize,
    /// Bans whose drop counters came along.
    pub counters: usize,
}

/// Copies layout 2's bans and counters from `dir` into `maps`.
pub(crate) fn copy_v2(dir: &Path, maps: &mut BanMaps) -> Result<Migrated, XdpError> {
    let boot_now = deadline::boot_now_ns()?;
    let mono_now = deadline::kernel_now_ns()?;
    let mut out = Migrated::default();
    let mut carry = |slot: Slot, old_ns: u64, out: &mut Migrated| -> Result<(), XdpError> {
        match deadline::rebase(old_ns, boot_now, mono_now) {
            Some(ns) => {
                maps.put(slot, ns)?;
                out.bans += 1;
            }
            None => out.expired += 1,
        }
        Ok(())
    };
    if let Some(map) = open(dir, "BAN_V4")? {
        let map: HashMap<MapData, [u8; 4], u64> = typed(dir, "BAN_V4", map)?;
        for item in map.iter() {
            let (k, ns) = item.map_err(read_error(dir, "BAN_V4"))?;
            carry(Slot::V4(k), ns, &mut out)?;
        }
    }
    if let Some(map) = open(dir, "BAN_V6")? {
        let map: HashMap<MapData, [u8; 16], u64> = typed(dir, "BAN_V6", map)?;
        for item in map.iter() {
            let (k, ns) = item.map_err(read_error(dir, "BAN_V6"))?;
            carry(Slot::V6(k), ns, &mut out)?;
        }
    }
    if let Some(map) = open(dir, "CIDR_V4")? {
        let map: LpmTrie<MapData, [u8; 4], CidrBanValue> = typed(dir, "CIDR_V4", map)?;
        for item in map.iter() {
            let (k, v): (Key<[u8; 4]>, _) = item.map_err(read_error(dir, "CIDR_V4"))?;
            if let Some(slot) = Slot::from_trie_v4(k.prefix_len(), k.data()) {
                carry(slot, v.expires_ns, &mut out)?;
            }
        }
    }
    if let Some(map) = open(dir, "CIDR_V6")? {
        let map: LpmTrie<MapData, [u8; 16], CidrBanValue> = typed(dir, "CIDR_V6", map)?;
        for item in map.iter() {
            let (k, v): (Key<[u8; 16]>, _) = item.map_err(read_error(dir, "CIDR_V6"))?;
            if let Some(slot) = Slot::from_trie_v6(k.prefix_len(), k.data()) {
                carry(slot, v.expires_ns, &mut out)?;
            }
        }
    }
    maps.recount()?;
    // Counters only for bans that came along: a counter whose ban expired would
    // have nothing to count into.
    let carried: std::collections::HashSet<Slot> =
        maps.entries()?.into_iter().map(|(slot, _)| slot).collect();
    if let Some(map) = open(dir, "DROPS")? {
        let map: PerCpuHashMap<MapData, CounterKey, DropCounter> = typed(dir, "DROPS", map)?;
        for item in map.iter() {
            let (key, per_cpu) = item.map_err(read_error(dir, "DROPS"))?;
            let Some(slot) = Slot::from_counter_key(&key) else {
                continue;
            };
            if !carried.contains(&slot) {
                continue;
            }
            let counts: Vec<(u64, u64)> = per_cpu.iter().map(|c| (c.packets, c.bytes)).collect();
            maps.add_counts(&slot, &counts)?;
            out.counters += 1;
        }
    }
    Ok(out)
}

/// Whether [`copy_v2`] knows how to read a layout.
pub(crate) fn can_copy(version: Option<u32>) -> bool {
    version == Some(FROM_VERSION)
}

/// Removes every pin in an old layout's directory, then the directory.
pub(crate) fn remove(dir: &Path) -> Result<usize, XdpError> {
    let mut removed = 0;
    for entry in read_dir(dir)? {
        attach::remove_pin(&entry.path())?;
        removed += 1;
    }
    remove_empty_dir(dir)?;
    Ok(removed)
}

/// Opens a pinned map of an old layout; `None` when it is not there.
fn open(dir: &Path, name: &'static str) -> Result<Option<Map>, XdpError> {
    let path = dir.join(name);
    if !path.exists() {
        return Ok(None);
    }
    let err = |source: MapError| XdpError::PinnedMapInfo {
        path: path.clone(),
        source: Box::new(source),
    };
    let data = MapData::from_pin(&path).map_err(err)?;
    Map::from_map_data(data).map(Some).map_err(err)
}

fn typed<T: TryFrom<Map, Error = MapError>>(
    dir: &Path,
    name: &'static str,
    map: Map,
) -> Result<T, XdpError> {
    T::try_from(map).map_err(|source| XdpError::PinnedMapInfo {
        path: dir.join(name),
        source: Box::new(source),
    })
}

fn read_error(dir: &Path, name: &'static str) -> impl Fn(MapError) -> XdpError {
    let path = dir.join(name);
    move |source| XdpError::PinnedMapInfo {
        path: path.clone(),
        source: Box::new(source),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn finds_other_layouts_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pins = PinLayout::new(dir.path());
        for name in ["maps-v1", "maps-v2", "maps-vx", "links", "other"] {
            fs::create_dir_all(dir.path().join(name)).expect("mkdir");
        }
        fs::create_dir_all(pins.maps_dir()).expect("mkdir");
        let found = old_layouts(&pins).expect("list");
        let versions: Vec<_> = found.iter().map(|(v, _)| *v).collect();
        assert_eq!(versions, vec![None, Some(1), Some(2)]);
        assert!(can_copy(Some(2)));
        assert!(!can_copy(Some(1)) && !can_copy(None));
    }

    #[test]
    fn removing_an_old_layout_takes_its_pins_and_dir() {
        let dir = tempfile::tempdir().expect("tempdir");
        let old = dir.path().join("maps-v2");
        fs::create_dir_all(&old).expect("mkdir");
        fs::write(old.join("BAN_V4"), b"").expect("write");
        fs::write(old.join("DROPS"), b"").expect("write");
        assert_eq!(remove(&old).expect("remove"), 2);
        assert!(!old.exists());
    }
}
