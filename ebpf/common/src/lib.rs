//! The contract between the XDP program and the agent: map names, key and value
//! layouts. Both sides compile this crate (the kernel side as `no_std` for
//! `bpfel-unknown-none`, the agent with the `user` feature), so a layout change is a
//! compile-time change on both sides at once. Any change to a layout must bump
//! [`PIN_LAYOUT_VERSION`], because the kernel refuses to reuse a pinned map whose key
//! or value size differs.
#![no_std]

/// Version of the pinned map layout. Pins live under `<pin_dir>/maps-v<N>/` so that an
/// upgrade with a new layout never trips over the old pins.
///
/// History: 2 kept exact bans in plain hashes with a `CLOCK_BOOTTIME` deadline and
/// every drop counter in one per-CPU hash (`DROPS`); 3 holds the counters of exact
/// bans in the ban's own value and deadlines in `CLOCK_MONOTONIC`.
pub const PIN_LAYOUT_VERSION: u32 = 3;

/// Exact IPv4 bans: a hash keyed by the address in network byte order (`[u8; 4]`),
/// values [`BanValue`] (deadline and drop counters).
pub const MAP_BAN_V4: &str = "BAN_V4";
/// Exact IPv6 bans: as [`MAP_BAN_V4`], keyed by `[u8; 16]`.
pub const MAP_BAN_V6: &str = "BAN_V6";
/// IPv4 prefix bans. LPM trie keyed by `Key<[u8; 4]>`, values [`CidrBanValue`].
pub const MAP_CIDR_V4: &str = "CIDR_V4";
/// IPv6 prefix bans. LPM trie keyed by `Key<[u8; 16]>`, values [`CidrBanValue`].
pub const MAP_CIDR_V6: &str = "CIDR_V6";
/// Two `u32` slots: how many entries each trie holds. The program skips a trie
/// whose count is zero, so the common case (no prefix bans) costs one array load.
pub const MAP_CIDR_COUNT: &str = "CIDR_COUNT";
/// Per-CPU drop counters of prefix bans, keyed by [`CounterKey`]; per CPU so a flood
/// never makes cores fight over one cache line. Exact bans count in their own value.
pub const MAP_CIDR_DROPS: &str = "CIDR_DROPS";

/// Slot of [`MAP_CIDR_COUNT`] holding the IPv4 trie's entry count.
pub const CIDR_COUNT_V4: u32 = 0;
/// Slot of [`MAP_CIDR_COUNT`] holding the IPv6 trie's entry count.
pub const CIDR_COUNT_V6: u32 = 1;

/// An exact ban as the kernel sees it: the deadline and the drops charged to it.
/// The program adds to the counters atomically (every CPU counts into the same
/// value); the agent writes the deadline.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BanValue {
    /// `CLOCK_MONOTONIC` in nanoseconds after which the ban no longer applies; 0
    /// means permanent. A kernel clock (not wall time) so the program can compare it
    /// without the agent; monotonic because the program reads it cheaply
    /// (`bpf_ktime_get_coarse_ns`, no clocksource read).
    pub expires_ns: u64,
    /// Packets dropped for the ban.
    pub packets: u64,
    /// Bytes dropped for the ban (frame length as XDP saw it).
    pub bytes: u64,
}

impl BanValue {
    /// Whether the ban still applies at `now_ns` (`CLOCK_MONOTONIC`).
    #[inline(always)]
    pub fn active_at(&self, now_ns: u64) -> bool {
        self.expires_ns == 0 || now_ns < self.expires_ns
    }
}

/// A prefix ban as the kernel sees it. An LPM lookup returns only the value, not
/// which prefix matched, so the value repeats the prefix length: the program needs it
/// to charge the drop to the right [`CounterKey`]. Tries cannot be per-CPU, so the
/// counters of prefix bans live apart, in [`MAP_CIDR_DROPS`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CidrBanValue {
    /// Same meaning as [`BanValue::expires_ns`].
    pub expires_ns: u64,
    /// Prefix length of the trie key this value is stored under.
    pub prefix_len: u32,
    /// Keeps the layout explicit; always zero.
    pub _pad: u32,
}

impl CidrBanValue {
    /// Whether the ban still applies at `now_ns` (`CLOCK_MONOTONIC`).
    #[inline(always)]
    pub fn active_at(&self, now_ns: u64) -> bool {
        self.expires_ns == 0 || now_ns < self.expires_ns
    }
}

/// Address family tag of a [`CounterKey`].
pub const FAMILY_V4: u8 = 4;
/// Address family tag of a [`CounterKey`].
pub const FAMILY_V6: u8 = 6;

/// Identifies one prefix ban in [`MAP_CIDR_DROPS`]: family, prefix length and the
/// network address bytes (IPv4 uses the first four, the rest stay zero).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct CounterKey {
    /// [`FAMILY_V4`] or [`FAMILY_V6`].
    pub family: u8,
    /// Prefix length of the ban that dropped the packet.
    pub prefix_len: u8,
    /// Keeps the layout explicit; always zero.
    pub _pad: [u8; 2],
    /// Address bytes in network order, left-aligned.
    pub addr: [u8; 16],
}

/// Drops charged to one prefix ban on one CPU.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DropCounter {
    /// Packets dropped.
    pub packets: u64,
    /// Bytes dropped (frame length as XDP saw it).
    pub bytes: u64,
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: plain `repr(C)` integers and byte arrays, no padding left implicit.
    unsafe impl aya::Pod for super::BanValue {}
    unsafe impl aya::Pod for super::CidrBanValue {}
    unsafe impl aya::Pod for super::CounterKey {}
    unsafe impl aya::Pod for super::DropCounter {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::size_of;

    #[test]
    fn layouts_are_stable() {
        assert_eq!(size_of::<BanValue>(), 24);
        assert_eq!(size_of::<CidrBanValue>(), 16);
        assert_eq!(size_of::<CounterKey>(), 20);
        assert_eq!(size_of::<DropCounter>(), 16);
    }

    #[test]
    fn zero_deadline_is_permanent() {
        let v = BanValue {
            expires_ns: 0,
            ..BanValue::default()
        };
        assert!(v.active_at(u64::MAX));
        let v = BanValue {
            expires_ns: 10,
            ..BanValue::default()
        };
        assert!(v.active_at(9));
        assert!(!v.active_at(10));
    }

    #[test]
    fn cidr_deadline_matches_exact_semantics() {
        for (expires_ns, now, want) in [(0, u64::MAX, true), (10, 9, true), (10, 10, false)] {
            let c = CidrBanValue {
                expires_ns,
                prefix_len: 24,
                _pad: 0,
            };
            assert_eq!(c.active_at(now), want, "{expires_ns} at {now}");
            let exact = BanValue {
                expires_ns,
                ..BanValue::default()
            };
            assert_eq!(exact.active_at(now), want);
        }
    }
}
