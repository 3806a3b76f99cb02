//! The benchmark's baseline (not part of the agent): the least an XDP program can do
//! to drop banned sources. One hash lookup on the source address, `XDP_DROP` on a
//! hit, one per-CPU counter; no deadline, no per-ban counters, no prefixes, no VLAN
//! tags. `cargo xtask bench` floods it and log2drop's program in the same run, so
//! the difference between the two is what log2drop's features cost.
//!
//! The maps are preallocated hashes with the kernel's default flags, as a program
//! written in a hurry would declare them; the bench sets their size at load time.
#![no_std]
#![no_main]

use aya_ebpf::{
    bindings::xdp_action,
    macros::{map, xdp},
    maps::{HashMap, PerCpuArray},
    programs::XdpContext,
};

#[map]
static MIN_V4: HashMap<[u8; 4], u32> = HashMap::with_max_entries(1024, 0);

#[map]
static MIN_V6: HashMap<[u8; 16], u32> = HashMap::with_max_entries(1024, 0);

/// Frames dropped on this CPU: slot 0 IPv4, slot 1 IPv6.
#[map]
static MIN_DROPS: PerCpuArray<u64> = PerCpuArray::with_max_entries(2, 0);

const ETH_P_IP: [u8; 2] = [0x08, 0x00];
const ETH_P_IPV6: [u8; 2] = [0x86, 0xdd];

#[xdp]
pub fn log2drop_minimal(ctx: XdpContext) -> u32 {
    let start = ctx.data();
    let end = ctx.data_end();
    // Ethernet (14) + the IPv4 source ends at 30, the IPv6 source at 38.
    if start + 30 > end {
        return xdp_action::XDP_PASS;
    }
    // SAFETY: 30 bytes are inside the frame, checked above.
    let ethertype = unsafe { *((start + 12) as *const [u8; 2]) };
    // The key is read by the helper straight from the packet, as a C program
    // passing `&iph->saddr` does. Each family counts into its own slot so the two
    // lookups stay two call sites: merged into one, the verifier could not inline
    // either (it inlines a hash lookup only when the call site sees one map).
    if ethertype == ETH_P_IP {
        // SAFETY: bytes 26..30 are inside the frame; the value is only tested for
        // presence.
        let src = unsafe { &*((start + 26) as *const [u8; 4]) };
        if unsafe { MIN_V4.get(src) }.is_some() {
            return drop_counted(0);
        }
    } else if ethertype == ETH_P_IPV6 && start + 38 <= end {
        // SAFETY: bytes 22..38 are inside the frame, checked just above.
        let src = unsafe { &*((start + 22) as *const [u8; 16]) };
        if unsafe { MIN_V6.get(src) }.is_some() {
            return drop_counted(1);
        }
    }
    xdp_action::XDP_PASS
}

#[inline(always)]
fn drop_counted(slot: u32) -> u32 {
    if let Some(n) = MIN_DROPS.get_ptr_mut(slot) {
        // SAFETY: this CPU's slot; nothing else writes it meanwhile.
        unsafe { *n += 1 };
    }
    xdp_action::XDP_DROP
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
