//! Reading the XDP program's per-ban drop counters straight from the pinned
//! per-CPU maps, independently of the agent: a test can then check that packets were
//! really dropped by the kernel program, not just that the agent says it banned.
//! Exact bans count in their own value (`BAN_V4`/`BAN_V6`), prefix bans in the
//! per-CPU `CIDR_DROPS`.

use std::collections::BTreeSet;
use std::net::IpAddr;

use aya::maps::{HashMap, Map, MapData, PerCpuHashMap};
use ipnet::IpNet;
use log2drop_common::{
    BanValue, CounterKey, DropCounter, FAMILY_V4, FAMILY_V6, MAP_BAN_V4, MAP_BAN_V6, MAP_CIDR_DROPS,
};

use crate::bpffs::PinDir;

/// Packets and bytes dropped for one ban, summed over all CPUs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Drops {
    /// Packets dropped.
    pub packets: u64,
    /// Bytes dropped.
    pub bytes: u64,
}

/// The key the XDP program charges drops of the prefix ban `target` to in
/// `CIDR_DROPS`: family, prefix length and the network address, left-aligned in 16
/// bytes.
pub fn counter_key(target: IpNet) -> CounterKey {
    let mut addr = [0u8; 16];
    let family = match target.network() {
        IpAddr::V4(a) => {
            addr[..4].copy_from_slice(&a.octets());
            FAMILY_V4
        }
        IpAddr::V6(a) => {
            addr.copy_from_slice(&a.octets());
            FAMILY_V6
        }
    };
    CounterKey {
        family,
        prefix_len: target.prefix_len(),
        _pad: [0; 2],
        addr,
    }
}

/// Drops recorded for `target` ("198.51.100.7", "2001:db8::/48"): for an address,
/// `None` when it has no exact ban; for a prefix, `None` when nothing was counted
/// for it yet. Panics if the maps are not pinned under `pins` or cannot be read.
pub fn drops_for(pins: &PinDir, target: &str) -> Option<Drops> {
    let net = parse_target(target);
    if net.prefix_len() == net.max_prefix_len() {
        return ban_entry(pins, net.addr()).map(|v| Drops {
            packets: v.packets,
            bytes: v.bytes,
        });
    }
    let map = open_pinned(pins, MAP_CIDR_DROPS);
    let drops: PerCpuHashMap<MapData, CounterKey, DropCounter> = PerCpuHashMap::try_from(map)
        .unwrap_or_else(|e| panic!("{MAP_CIDR_DROPS} is not the expected per-CPU hash: {e}"));
    match drops.get(&counter_key(net), 0) {
        Ok(per_cpu) => Some(per_cpu.iter().fold(Drops::default(), |acc, c| Drops {
            packets: acc.packets + c.packets,
            bytes: acc.bytes + c.bytes,
        })),
        Err(aya::maps::MapError::KeyNotFound) => None,
        Err(e) => panic!("cannot read {MAP_CIDR_DROPS} for {target}: {e}"),
    }
}

/// The exact-address ban entry for `addr` in the pinned `BAN_V4`/`BAN_V6` map, as
/// the XDP program sees it (deadline and counters); `None` when absent. Lets a test time the agent down to the map write, without a ping's
/// granularity.
pub fn ban_entry(pins: &PinDir, addr: IpAddr) -> Option<BanValue> {
    let name = match addr {
        IpAddr::V4(_) => MAP_BAN_V4,
        IpAddr::V6(_) => MAP_BAN_V6,
    };
    let map = open_pinned(pins, name);
    let result = match addr {
        IpAddr::V4(a) => exact_map::<[u8; 4]>(name, map).get(&a.octets(), 0),
        IpAddr::V6(a) => exact_map::<[u8; 16]>(name, map).get(&a.octets(), 0),
    };
    match result {
        Ok(v) => Some(v),
        Err(aya::maps::MapError::KeyNotFound) => None,
        Err(e) => panic!("cannot read {name} for {addr}: {e}"),
    }
}

fn exact_map<K: aya::Pod>(name: &str, map: Map) -> HashMap<MapData, K, BanValue> {
    HashMap::try_from(map).unwrap_or_else(|e| panic!("{name} is not the expected hash map: {e}"))
}

/// Every address in the pinned exact-address maps (`BAN_V4` and `BAN_V6`), expired
/// entries included: what the kernel holds, to compare with what the agent says.
pub fn exact_bans(pins: &PinDir) -> BTreeSet<IpAddr> {
    let mut out = BTreeSet::new();
    let v4 = exact_map::<[u8; 4]>(MAP_BAN_V4, open_pinned(pins, MAP_BAN_V4));
    for k in v4.keys() {
        let k = k.unwrap_or_else(|e| panic!("cannot list {MAP_BAN_V4}: {e}"));
        out.insert(IpAddr::from(k));
    }
    let v6 = exact_map::<[u8; 16]>(MAP_BAN_V6, open_pinned(pins, MAP_BAN_V6));
    for k in v6.keys() {
        let k = k.unwrap_or_else(|e| panic!("cannot list {MAP_BAN_V6}: {e}"));
        out.insert(IpAddr::from(k));
    }
    out
}

/// Every exact-address entry with its deadline (`expires_ns`, `CLOCK_MONOTONIC`, 0 =
/// permanent), expired ones included; `None` while the maps are not pinned yet (an
/// agent killed before its first load). Unlike [`exact_bans`] it never panics on a
/// missing pin, for observers that run across agent crashes. Entries deleted during the walk are skipped.
pub fn try_exact_entries(pins: &PinDir) -> Option<Vec<(IpAddr, u64)>> {
    let open = |name: &str| -> Option<Map> {
        let data = MapData::from_pin(pins.find(name)?).ok()?;
        Map::from_map_data(data).ok()
    };
    let (v4, v6) = (open(MAP_BAN_V4)?, open(MAP_BAN_V6)?);
    let mut out = Vec::new();
    // An entry deleted between the key walk and its lookup is skipped.
    for (k, v) in exact_map::<[u8; 4]>(MAP_BAN_V4, v4).iter().flatten() {
        out.push((IpAddr::from(k), v.expires_ns));
    }
    // An entry deleted between the key walk and its lookup is skipped.
    for (k, v) in exact_map::<[u8; 16]>(MAP_BAN_V6, v6).iter().flatten() {
        out.push((IpAddr::from(k), v.expires_ns));
    }
    Some(out)
}

/// Writes an exact-address entry straight into the pinned map, behind the agent's
/// back (`expires_ns` in `CLOCK_MONOTONIC`, 0 = permanent): how a test plants a
/// stale or unknown ban for the agent's reconciliation to find.
pub fn plant_exact_ban(pins: &PinDir, addr: IpAddr, expires_ns: u64) {
    let value = || BanValue {
        expires_ns,
        ..BanValue::default()
    };
    match addr {
        IpAddr::V4(a) => {
            let mut m = exact_map::<[u8; 4]>(MAP_BAN_V4, open_pinned(pins, MAP_BAN_V4));
            m.insert(a.octets(), value(), 0)
                .unwrap_or_else(|e| panic!("cannot write {MAP_BAN_V4}: {e}"));
        }
        IpAddr::V6(a) => {
            let mut m = exact_map::<[u8; 16]>(MAP_BAN_V6, open_pinned(pins, MAP_BAN_V6));
            m.insert(a.octets(), value(), 0)
                .unwrap_or_else(|e| panic!("cannot write {MAP_BAN_V6}: {e}"));
        }
    }
}

fn open_pinned(pins: &PinDir, name: &str) -> Map {
    let path = pins.find(name).unwrap_or_else(|| {
        panic!(
            "no pinned {name} map under {} (pinned: {:?})",
            pins.path().display(),
            pins.list()
        )
    });
    let data = MapData::from_pin(&path)
        .unwrap_or_else(|e| panic!("cannot open pinned map {}: {e}", path.display()));
    Map::from_map_data(data)
        .unwrap_or_else(|e| panic!("unsupported map type at {}: {e}", path.display()))
}

fn parse_target(s: &str) -> IpNet {
    if let Ok(net) = s.parse::<IpNet>() {
        return net;
    }
    let addr: IpAddr = s
        .parse()
        .unwrap_or_else(|e| panic!("{s} is neither an address nor a prefix: {e}"));
    IpNet::from(addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v4_key_is_left_aligned() {
        let k = counter_key(parse_target("198.51.100.7"));
        assert_eq!(k.family, FAMILY_V4);
        assert_eq!(k.prefix_len, 32);
        assert_eq!(&k.addr[..4], &[198, 51, 100, 7]);
        assert!(k.addr[4..].iter().all(|&b| b == 0));
    }

    #[test]
    fn v6_prefix_key_uses_the_network() {
        let k = counter_key(parse_target("2001:db8:1::/48"));
        assert_eq!(k.family, FAMILY_V6);
        assert_eq!(k.prefix_len, 48);
        assert_eq!(&k.addr[..6], &[0x20, 0x01, 0x0d, 0xb8, 0, 1]);
    }
}
