//! The baseline XDP program (`log2drop-minimal`, built with the other eBPF objects)
//! attached to a flood lab's receiver: one preallocated hash per family holding the
//! banned addresses, `XDP_DROP` on a hit, a per-CPU drop counter. The flood case
//! measures log2drop against it in the same run, so the figures say what log2drop's
//! features cost over the least any XDP filter must do.
//!
//! The program detaches when this value is dropped (its link belongs to the loaded
//! object, which is not pinned).

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;

use anyhow::{Context, Result};
use aya::maps::{HashMap, MapData, PerCpuArray};
use aya::programs::{Xdp, XdpMode};
use aya::{Ebpf, EbpfLoader};

use log2drop_tests::NetNs;

const PROGRAM: &str = "log2drop_minimal";
const MAP_V4: &str = "MIN_V4";
const MAP_V6: &str = "MIN_V6";
const MAP_DROPS: &str = "MIN_DROPS";

/// The minimal program, loaded and attached (native mode) to one interface.
pub struct MinimalXdp {
    ebpf: Ebpf,
}

impl MinimalXdp {
    /// Loads the object at `object` with room for `capacity` addresses per family,
    /// fills the maps and attaches the program to `ifname` inside `ns`.
    pub fn attach(
        object: &Path,
        ns: &NetNs,
        ifname: &str,
        v4: &[Ipv4Addr],
        v6: &[Ipv6Addr],
    ) -> Result<MinimalXdp> {
        let bytes = std::fs::read(object)
            .with_context(|| format!("reading the baseline program {}", object.display()))?;
        let capacity = (v4.len().max(v6.len()).max(1) as u32).next_power_of_two();
        let mut ebpf = EbpfLoader::new()
            .map_max_entries(MAP_V4, capacity)
            .map_max_entries(MAP_V6, capacity)
            .load(&bytes)
            .with_context(|| format!("loading {}", object.display()))?;
        {
            let mut map: HashMap<&mut MapData, [u8; 4], u32> =
                HashMap::try_from(ebpf.map_mut(MAP_V4).context("MIN_V4 missing")?)?;
            for a in v4 {
                map.insert(a.octets(), 0, 0)
                    .with_context(|| format!("banning {a} in the baseline map"))?;
            }
        }
        {
            let mut map: HashMap<&mut MapData, [u8; 16], u32> =
                HashMap::try_from(ebpf.map_mut(MAP_V6).context("MIN_V6 missing")?)?;
            for a in v6 {
                map.insert(a.octets(), 0, 0)
                    .with_context(|| format!("banning {a} in the baseline map"))?;
            }
        }
        let prog: &mut Xdp = ebpf
            .program_mut(PROGRAM)
            .context("program missing from the baseline object")?
            .try_into()?;
        prog.load().context("verifying the baseline program")?;
        {
            let _inside = ns.enter();
            prog.attach(ifname, XdpMode::Driver)
                .with_context(|| format!("attaching the baseline program to {ifname}"))?;
        }
        Ok(MinimalXdp { ebpf })
    }

    /// The loaded program's kernel info (sizes, verifier figures).
    pub fn info(&self) -> Result<aya::programs::ProgramInfo> {
        let prog: &Xdp = self
            .ebpf
            .program(PROGRAM)
            .context("program missing from the baseline object")?
            .try_into()?;
        Ok(prog.info()?)
    }

    /// Frames the program dropped so far, over all CPUs.
    pub fn drops(&self) -> Result<u64> {
        let map: PerCpuArray<&MapData, u64> =
            PerCpuArray::try_from(self.ebpf.map(MAP_DROPS).context("MIN_DROPS missing")?)?;
        let mut total = 0;
        for slot in 0..2 {
            total += map.get(&slot, 0)?.iter().sum::<u64>();
        }
        Ok(total)
    }
}
