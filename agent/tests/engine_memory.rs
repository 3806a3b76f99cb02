//! Memory per tracked address, measured with a counting allocator (this test
//! binary's own global allocator; nothing else runs in it). It bounds what an
//! attacker spraying addresses into a log can make the engine hold: the figure is
//! printed, and the test fails if it grows past a generous bound, or if memory
//! keeps growing past `max_tracked`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::IpAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, UNIX_EPOCH};

use log2drop::engine::Engine;

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator and only counts sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size, Ordering::Relaxed);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn engine(max_tracked: usize) -> Engine {
    let text = format!(
        r#"
[agent]
max_tracked = {max_tracked}
allow_own_addresses = false
[backends.dry-run]
[filters.f]
regex = ['f <HOST>$']
[sources.s]
path = "/var/log/s.log"
filters = ["f"]
[jails.ssh]
filters = ["f"]
maxretry = 5
"#
    );
    let cfg = log2drop::config::parse(&text, Path::new("mem.toml")).expect("config");
    Engine::from_config(&cfg).expect("engine")
}

fn spray(e: &mut Engine, n: u32, offences_each: u32) {
    let mut out = Vec::new();
    for k in 0..offences_each {
        for i in 0..n {
            let addr = IpAddr::from((0xc600_0000u32 | i).to_be_bytes());
            let at = UNIX_EPOCH + Duration::from_secs(1_750_000_000 + u64::from(k));
            e.offence("f", addr, at, &mut out);
        }
    }
    assert!(out.is_empty(), "below maxretry nothing is banned");
}

/// One test, because the allocation counter is shared by the whole binary: tests
/// running in parallel would count each other's allocations.
#[test]
fn tracking_memory_is_small_and_capped() {
    bytes_per_tracked_address_are_bounded();
    memory_stops_growing_at_max_tracked();
}

fn bytes_per_tracked_address_are_bounded() {
    const N: u32 = 200_000;
    for offences_each in [1, 2, 4] {
        let before = LIVE.load(Ordering::Relaxed);
        let mut e = engine(1_000_000);
        spray(&mut e, N, offences_each);
        assert_eq!(e.stats().tracked, N as usize);
        let bytes = LIVE.load(Ordering::Relaxed) - before;
        let per = bytes as f64 / f64::from(N);
        println!(
            "{offences_each} offence(s) per address: {per:.0} bytes per tracked address ({N} addresses, {bytes} bytes)"
        );
        assert!(
            per < 200.0,
            "{per:.0} bytes per tracked address with {offences_each} offences each"
        );
        drop(e);
    }
}

fn memory_stops_growing_at_max_tracked() {
    let before = LIVE.load(Ordering::Relaxed);
    let mut e = engine(50_000);
    spray(&mut e, 50_000, 1);
    let at_cap = LIVE.load(Ordering::Relaxed) - before;
    // Rounds of 200k new addresses each: evictions, not growth. The hash table
    // may settle at a larger capacity once (removed slots), then stays put.
    let mut out = Vec::new();
    let mut rounds = Vec::new();
    for round in 0..3u32 {
        for i in 0..200_000u32 {
            let addr = IpAddr::from((0xcb00_0000u32 | (round << 18) | i).to_be_bytes());
            e.offence(
                "f",
                addr,
                UNIX_EPOCH + Duration::from_secs(1_750_000_100),
                &mut out,
            );
        }
        rounds.push(LIVE.load(Ordering::Relaxed) - before);
    }
    let stats = e.stats();
    println!(
        "at cap: {at_cap} bytes; after each 200k more addresses: {rounds:?} bytes; evicted {}",
        stats.evicted
    );
    assert_eq!(stats.tracked, 50_000);
    assert_eq!(stats.evicted, 600_000);
    assert!(
        rounds[0] <= at_cap * 3 / 2,
        "grew from {at_cap} to {} bytes",
        rounds[0]
    );
    assert!(
        rounds[2] <= rounds[1] + rounds[1] / 100,
        "memory still grows at the cap: {rounds:?}"
    );
}
