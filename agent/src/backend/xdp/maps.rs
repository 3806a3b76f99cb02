//! The agent's handle on the program's pinned maps: typed access to the four ban maps,
//! the trie counts and the drop counters. It keeps `CIDR_COUNT` equal to the number of
//! entries in each trie (the program skips an empty trie), and turns the kernel's
//! "map full" errno into an error that names the map and its size.
//!
//! An exact ban's value holds its deadline and its drop counters (see the program's
//! docs for why). Changing the deadline of a ban that exists is a read-modify-write
//! that keeps the counters: drops the program counts between the read and the write
//! are lost (the kernel offers no per-field update, and replaces the whole value).
//! That window is one syscall long and only opens when a ban is extended or
//! shortened, so at most a few packets' worth of counts go missing; the drops
//! themselves are never affected.

use std::io;

use aya::Ebpf;
use aya::maps::lpm_trie::Key;
use aya::maps::{Array, HashMap, LpmTrie, Map, MapData, MapError, PerCpuHashMap, PerCpuValues};
use log2drop_common::{
    BanValue, CIDR_COUNT_V4, CIDR_COUNT_V6, CidrBanValue, CounterKey, DropCounter, MAP_BAN_V4,
    MAP_BAN_V6, MAP_CIDR_COUNT, MAP_CIDR_DROPS, MAP_CIDR_V4, MAP_CIDR_V6,
};

use super::XdpError;

/// `BPF_NOEXIST` from the kernel's uapi: insert only.
const BPF_NOEXIST: u64 = 1;

use super::target::Slot;
use crate::backend::DropCounts;

/// Capacities the maps were created (or found pinned) with, by map name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MapSizes(pub(crate) Vec<(&'static str, u32)>);

impl MapSizes {
    /// Capacity of the named map (0 for a map it does not know).
    pub(crate) fn of(&self, map: &str) -> u32 {
        self.0
            .iter()
            .find(|(name, _)| *name == map)
            .map_or(0, |(_, n)| *n)
    }
}

/// The pinned maps, typed.
pub(crate) struct BanMaps {
    v4: HashMap<MapData, [u8; 4], BanValue>,
    v6: HashMap<MapData, [u8; 16], BanValue>,
    cidr_v4: LpmTrie<MapData, [u8; 4], CidrBanValue>,
    cidr_v6: LpmTrie<MapData, [u8; 16], CidrBanValue>,
    cidr_count: Array<MapData, u32>,
    cidr_drops: PerCpuHashMap<MapData, CounterKey, DropCounter>,
    /// Possible CPUs: how many copies of a per-CPU value (`CIDR_DROPS`) the kernel
    /// keeps.
    cpus: usize,
    /// Entries per trie (v4, v6), mirrored into `CIDR_COUNT`.
    counts: [u32; 2],
    sizes: MapSizes,
}

fn take(ebpf: &mut Ebpf, name: &'static str) -> Result<Map, XdpError> {
    ebpf.take_map(name)
        .ok_or(XdpError::ObjectMissing { what: "map", name })
}

fn layout(map: &'static str) -> impl FnOnce(MapError) -> XdpError {
    move |source| XdpError::MapLayout {
        map,
        source: Box::new(source),
    }
}

fn errno(e: &MapError) -> Option<i32> {
    match e {
        MapError::SyscallError(s) => s.io_error.raw_os_error(),
        _ => None,
    }
}

impl BanMaps {
    /// Takes the maps out of a loaded object and syncs the trie counts with the tries
    /// (a crash between a trie write and the count write leaves them apart).
    pub(crate) fn new(ebpf: &mut Ebpf, sizes: MapSizes) -> Result<Self, XdpError> {
        let mut maps = BanMaps {
            v4: HashMap::try_from(take(ebpf, MAP_BAN_V4)?).map_err(layout(MAP_BAN_V4))?,
            v6: HashMap::try_from(take(ebpf, MAP_BAN_V6)?).map_err(layout(MAP_BAN_V6))?,
            cidr_v4: LpmTrie::try_from(take(ebpf, MAP_CIDR_V4)?).map_err(layout(MAP_CIDR_V4))?,
            cidr_v6: LpmTrie::try_from(take(ebpf, MAP_CIDR_V6)?).map_err(layout(MAP_CIDR_V6))?,
            cidr_count: Array::try_from(take(ebpf, MAP_CIDR_COUNT)?)
                .map_err(layout(MAP_CIDR_COUNT))?,
            cidr_drops: PerCpuHashMap::try_from(take(ebpf, MAP_CIDR_DROPS)?)
                .map_err(layout(MAP_CIDR_DROPS))?,
            cpus: aya::util::nr_cpus()
                .map_err(|(path, source)| XdpError::PossibleCpus { path, source })?,
            counts: [0; 2],
            sizes,
        };
        maps.recount()?;
        Ok(maps)
    }

    fn op_error(&self, map: &'static str, op: &'static str, e: MapError) -> XdpError {
        match errno(&e) {
            // Hash maps say E2BIG when full, LPM tries ENOSPC.
            Some(libc::E2BIG) | Some(libc::ENOSPC) if op == "insert" => XdpError::MapFull {
                map,
                max_entries: self.sizes.of(map),
            },
            _ => XdpError::Map {
                map,
                op,
                source: Box::new(e),
            },
        }
    }

    /// Writes a ban (insert or overwrite). An exact ban that exists keeps its
    /// counters. The trie count grows only for a new prefix.
    pub(crate) fn put(&mut self, slot: Slot, expires_ns: u64) -> Result<(), XdpError> {
        let map = slot.map_name();
        let res = match slot {
            Slot::V4(a) => put_exact(&mut self.v4, &a, expires_ns),
            Slot::V6(a) => put_exact(&mut self.v6, &a, expires_ns),
            Slot::CidrV4 { prefix_len, addr } => {
                let key = Key::new(u32::from(prefix_len), addr);
                // A trie lookup is longest-prefix: the hit is this very prefix only
                // when the stored value carries the same length.
                let existed = matches!(self.cidr_v4.get(&key, 0), Ok(v) if v.prefix_len == u32::from(prefix_len));
                let value = cidr_value(expires_ns, prefix_len);
                let res = self.cidr_v4.insert(&key, value, 0);
                if res.is_ok() && !existed {
                    self.bump(CIDR_COUNT_V4, 1)?;
                }
                res
            }
            Slot::CidrV6 { prefix_len, addr } => {
                let key = Key::new(u32::from(prefix_len), addr);
                let existed = matches!(self.cidr_v6.get(&key, 0), Ok(v) if v.prefix_len == u32::from(prefix_len));
                let value = cidr_value(expires_ns, prefix_len);
                let res = self.cidr_v6.insert(&key, value, 0);
                if res.is_ok() && !existed {
                    self.bump(CIDR_COUNT_V6, 1)?;
                }
                res
            }
        };
        res.map_err(|e| self.op_error(map, "insert", e))
    }

    /// Removes a ban and its drop counters. Removing what is not there is fine;
    /// returns whether the ban was there.
    pub(crate) fn remove(&mut self, slot: &Slot) -> Result<bool, XdpError> {
        let res = match *slot {
            Slot::V4(a) => self.v4.remove(&a),
            Slot::V6(a) => self.v6.remove(&a),
            Slot::CidrV4 { prefix_len, addr } => {
                let r = self.cidr_v4.remove(&Key::new(u32::from(prefix_len), addr));
                if r.is_ok() {
                    self.bump(CIDR_COUNT_V4, -1)?;
                }
                r
            }
            Slot::CidrV6 { prefix_len, addr } => {
                let r = self.cidr_v6.remove(&Key::new(u32::from(prefix_len), addr));
                if r.is_ok() {
                    self.bump(CIDR_COUNT_V6, -1)?;
                }
                r
            }
        };
        let existed = match res {
            Ok(()) => true,
            Err(e) if errno(&e) == Some(libc::ENOENT) => false,
            Err(e) => return Err(self.op_error(slot.map_name(), "remove", e)),
        };
        // Exact bans count in their own value, gone with it.
        if let Some(key) = slot.counter_key() {
            match self.cidr_drops.remove(&key) {
                Ok(()) => {}
                Err(e) if errno(&e) == Some(libc::ENOENT) => {}
                Err(e) => return Err(self.op_error(MAP_CIDR_DROPS, "remove", e)),
            }
        }
        Ok(existed)
    }

    /// Every ban in the kernel with its deadline (monotonic ns, 0 = permanent).
    pub(crate) fn entries(&self) -> Result<Vec<(Slot, u64)>, XdpError> {
        let mut out = Vec::new();
        for item in self.v4.iter() {
            let (k, v) = item.map_err(read_error(MAP_BAN_V4))?;
            out.push((Slot::V4(k), v.expires_ns));
        }
        for item in self.v6.iter() {
            let (k, v) = item.map_err(read_error(MAP_BAN_V6))?;
            out.push((Slot::V6(k), v.expires_ns));
        }
        for item in self.cidr_v4.iter() {
            let (k, v) = item.map_err(read_error(MAP_CIDR_V4))?;
            if let Some(slot) = Slot::from_trie_v4(k.prefix_len(), k.data()) {
                out.push((slot, v.expires_ns));
            }
        }
        for item in self.cidr_v6.iter() {
            let (k, v) = item.map_err(read_error(MAP_CIDR_V6))?;
            if let Some(slot) = Slot::from_trie_v6(k.prefix_len(), k.data()) {
                out.push((slot, v.expires_ns));
            }
        }
        Ok(out)
    }

    /// Drop counters summed over CPUs, per ban that dropped anything.
    pub(crate) fn counters(&self) -> Result<Vec<(Slot, DropCounts)>, XdpError> {
        let mut out = Vec::new();
        for item in self.v4.iter() {
            let (k, v) = item.map_err(read_error(MAP_BAN_V4))?;
            push_nonzero(&mut out, Slot::V4(k), [(v.packets, v.bytes)].into_iter());
        }
        for item in self.v6.iter() {
            let (k, v) = item.map_err(read_error(MAP_BAN_V6))?;
            push_nonzero(&mut out, Slot::V6(k), [(v.packets, v.bytes)].into_iter());
        }
        for item in self.cidr_drops.iter() {
            let (key, per_cpu) = item.map_err(read_error(MAP_CIDR_DROPS))?;
            if let Some(slot) = Slot::from_counter_key(&key) {
                push_nonzero(&mut out, slot, per_cpu.iter().map(|c| (c.packets, c.bytes)));
            }
        }
        Ok(out)
    }

    /// Adds drops counted elsewhere (an older pin layout) to a ban's counters:
    /// `per_cpu[i]` is CPU i's `(packets, bytes)`. The ban must be in already.
    pub(crate) fn add_counts(
        &mut self,
        slot: &Slot,
        per_cpu: &[(u64, u64)],
    ) -> Result<(), XdpError> {
        let res = match *slot {
            Slot::V4(a) => add_exact(&mut self.v4, &a, per_cpu),
            Slot::V6(a) => add_exact(&mut self.v6, &a, per_cpu),
            Slot::CidrV4 { .. } | Slot::CidrV6 { .. } => {
                let Some(key) = slot.counter_key() else {
                    return Ok(());
                };
                let mut values = vec![DropCounter::default(); self.cpus];
                for (v, (packets, bytes)) in values.iter_mut().zip(per_cpu) {
                    v.packets = *packets;
                    v.bytes = *bytes;
                }
                let values = PerCpuValues::try_from(values).map_err(per_cpu_error);
                values.and_then(|v| self.cidr_drops.insert(key, v, 0))
            }
        };
        let map = match slot.counter_key() {
            Some(_) => MAP_CIDR_DROPS,
            None => slot.map_name(),
        };
        res.map_err(|e| self.op_error(map, "insert", e))
    }

    /// Sets `CIDR_COUNT` from the tries' real contents.
    pub(crate) fn recount(&mut self) -> Result<(), XdpError> {
        let n4 = self.cidr_v4.keys().filter(Result::is_ok).count();
        let n6 = self.cidr_v6.keys().filter(Result::is_ok).count();
        self.counts = [
            u32::try_from(n4).unwrap_or(u32::MAX),
            u32::try_from(n6).unwrap_or(u32::MAX),
        ];
        self.write_count(CIDR_COUNT_V4)?;
        self.write_count(CIDR_COUNT_V6)
    }

    fn bump(&mut self, slot: u32, delta: i32) -> Result<(), XdpError> {
        let i = slot as usize;
        self.counts[i] = self.counts[i].saturating_add_signed(delta);
        self.write_count(slot)
    }

    fn write_count(&mut self, slot: u32) -> Result<(), XdpError> {
        self.cidr_count
            .set(slot, self.counts[slot as usize], 0)
            .map_err(|source| XdpError::Map {
                map: MAP_CIDR_COUNT,
                op: "insert",
                source: Box::new(source),
            })
    }

    /// Trie entry counts as last written to `CIDR_COUNT` (v4, v6).
    pub(crate) fn cidr_counts(&self) -> [u32; 2] {
        self.counts
    }
}

/// Inserts an exact ban, or rewrites the deadline of one that exists while keeping
/// its counters (a read-modify-write; see the module docs for its window).
fn put_exact<K: aya::Pod>(
    map: &mut HashMap<MapData, K, BanValue>,
    key: &K,
    expires_ns: u64,
) -> Result<(), MapError> {
    let fresh = BanValue {
        expires_ns,
        packets: 0,
        bytes: 0,
    };
    match map.insert(key, fresh, BPF_NOEXIST) {
        Err(e) if errno(&e) == Some(libc::EEXIST) => {}
        other => return other,
    }
    let mut value = map.get(key, 0)?;
    if value.expires_ns == expires_ns {
        return Ok(());
    }
    value.expires_ns = expires_ns;
    map.insert(key, value, 0)
}

/// Adds `(packets, bytes)` counted elsewhere, per CPU, to an exact ban's counters.
fn add_exact<K: aya::Pod>(
    map: &mut HashMap<MapData, K, BanValue>,
    key: &K,
    counts: &[(u64, u64)],
) -> Result<(), MapError> {
    let mut value = map.get(key, 0)?;
    for (packets, bytes) in counts {
        value.packets = value.packets.saturating_add(*packets);
        value.bytes = value.bytes.saturating_add(*bytes);
    }
    map.insert(key, value, 0)
}

/// aya builds per-CPU values only for exactly as many CPUs as are possible.
fn per_cpu_error(io_error: io::Error) -> MapError {
    MapError::SyscallError(aya::sys::SyscallError {
        call: "per-CPU values",
        io_error,
    })
}

/// Sums `(packets, bytes)` (one per CPU, or one in all) and keeps the ban only if
/// it dropped something.
fn push_nonzero(
    out: &mut Vec<(Slot, DropCounts)>,
    slot: Slot,
    per_cpu: impl Iterator<Item = (u64, u64)>,
) {
    let mut sum = DropCounts::default();
    for (packets, bytes) in per_cpu {
        sum.packets = sum.packets.saturating_add(packets);
        sum.bytes = sum.bytes.saturating_add(bytes);
    }
    if sum.packets != 0 {
        out.push((slot, sum));
    }
}

fn cidr_value(expires_ns: u64, prefix_len: u8) -> CidrBanValue {
    CidrBanValue {
        expires_ns,
        prefix_len: u32::from(prefix_len),
        _pad: 0,
    }
}

/// Whether an I/O error says "not found".
pub(crate) fn is_not_found(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound
}

/// How a failed read of `map` while iterating it is reported.
fn read_error(map: &'static str) -> impl Fn(MapError) -> XdpError {
    move |source| XdpError::Map {
        map,
        op: "read",
        source: Box::new(source),
    }
}
