//! The benchmark's flood sender (not part of the agent): run by `cargo xtask bench`
//! through `BPF_PROG_RUN` in live-frames mode inside an attacker namespace, it
//! rewrites each frame's source to the next address of `FLOOD_SOURCES` (IPv4, and
//! then fixes the header checksum) or `FLOOD_SOURCES6` (IPv6) and redirects the
//! frame out of the veth named by `FLOOD_CONF`, so the receiving end sees a flood
//! from many sources at rates no socket sender reaches.
//!
//! `FLOOD_CONF[0]` is the number of sources (at least 1), `FLOOD_CONF[1]` the
//! ifindex to redirect to. The template frame is an untagged Ethernet + IPv4 (no
//! options) or Ethernet + IPv6 frame; its EtherType picks the source list. The IPv6
//! frame's UDP checksum is not fixed: the receiver's stack drops such a datagram
//! after every firewall hook, like a datagram to a closed port.
#![no_std]
#![no_main]

use aya_ebpf::{
    bindings::xdp_action,
    helpers::bpf_redirect,
    macros::{map, xdp},
    maps::{Array, PerCpuArray},
    programs::XdpContext,
};

/// Most sources one flood cycles through.
const MAX_SOURCES: u32 = 65536;

#[map]
static FLOOD_SOURCES: Array<[u8; 4]> = Array::with_max_entries(MAX_SOURCES, 0);

#[map]
static FLOOD_SOURCES6: Array<[u8; 16]> = Array::with_max_entries(MAX_SOURCES, 0);

#[map]
static FLOOD_CONF: Array<u32> = Array::with_max_entries(2, 0);

#[map]
static FLOOD_SEQ: PerCpuArray<u32> = PerCpuArray::with_max_entries(1, 0);

const ETH_LEN: usize = 14;
const IP_LEN: usize = 20;
const IPV6_LEN: usize = 40;
const IPV6_SRC_OFF: usize = 8;

#[xdp]
pub fn log2drop_flood(ctx: XdpContext) -> u32 {
    match rewrite(&ctx) {
        Some(ifindex) => {
            // SAFETY: helper call with plain integer arguments.
            unsafe { bpf_redirect(ifindex, 0) as u32 }
        }
        None => xdp_action::XDP_ABORTED,
    }
}

/// Puts the next source into the frame and returns the ifindex to send it to.
#[inline(always)]
fn rewrite(ctx: &XdpContext) -> Option<u32> {
    let count = *FLOOD_CONF.get(0)?;
    let ifindex = *FLOOD_CONF.get(1)?;
    if count == 0 {
        return None;
    }
    let seq = FLOOD_SEQ.get_ptr_mut(0)?;
    // SAFETY: this CPU's slot of a per-CPU array; nothing else writes it meanwhile.
    let n = unsafe {
        let n = *seq;
        *seq = n.wrapping_add(1);
        n
    };
    let start = ctx.data();
    if start + ETH_LEN + IPV6_LEN <= ctx.data_end() {
        // SAFETY: the EtherType (bytes 12..14) lies inside the frame, checked above.
        let ethertype = unsafe { *((start + 12) as *const [u8; 2]) };
        if ethertype == [0x86, 0xdd] {
            let src = *FLOOD_SOURCES6.get(n % count)?;
            let ip = (start + ETH_LEN + IPV6_SRC_OFF) as *mut [u8; 16];
            // SAFETY: the IPv6 header lies inside the frame, checked above.
            unsafe { *ip = src };
            return Some(ifindex);
        }
    }
    let src = *FLOOD_SOURCES.get(n % count)?;
    if start + ETH_LEN + IP_LEN > ctx.data_end() {
        return None;
    }
    let ip = (start + ETH_LEN) as *mut u8;
    // SAFETY: the 20 header bytes after the Ethernet header lie inside the frame,
    // checked above.
    unsafe {
        let mut i = 0;
        while i < 4 {
            *ip.add(12 + i) = src[i];
            i += 1;
        }
        *ip.add(10) = 0;
        *ip.add(11) = 0;
        let mut sum: u32 = 0;
        let mut w = 0;
        while w < IP_LEN {
            sum += (u32::from(*ip.add(w)) << 8) | u32::from(*ip.add(w + 1));
            w += 2;
        }
        sum = (sum & 0xffff) + (sum >> 16);
        sum = (sum & 0xffff) + (sum >> 16);
        let csum = !(sum as u16);
        *ip.add(10) = (csum >> 8) as u8;
        *ip.add(11) = csum as u8;
    }
    Some(ifindex)
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
