//! The per-line path allocates nothing for lines that do not match, and captures
//! are extracted for matching lines only: a counting allocator around what the
//! daemon's source threads run per line (`SourceMatcher::examine`, then
//! `captures_into` for a line that matched).
//!
//! Its own test binary, because it installs a global allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use log2drop::filter::{Captures, Outcome, SourceMatcher, builtin};

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: the caller upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller upholds `dealloc`'s contract.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: the caller upholds `realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made on this thread while `f` runs.
fn allocations(f: impl FnOnce()) -> u64 {
    let before = ALLOCS.load(Ordering::Relaxed);
    COUNTING.with(|c| c.set(true));
    f();
    COUNTING.with(|c| c.set(false));
    ALLOCS.load(Ordering::Relaxed) - before
}

/// What the daemon's matcher does per line: examine, and captures only on a
/// match.
fn per_line(
    m: &SourceMatcher,
    scratch: &mut log2drop::filter::Scratch,
    caps: &mut Captures,
    line: &[u8],
    now: SystemTime,
) -> bool {
    let own = match m.examine(line, now, scratch) {
        Outcome::Hit(h) => h,
        Outcome::Ended { line, .. } => line,
        _ => return false,
    };
    m.captures_into(line, &own, scratch, caps);
    true
}

#[test]
fn lines_that_miss_allocate_nothing_and_captures_only_for_matches() {
    // The counter counts.
    assert!(allocations(|| drop(std::hint::black_box(vec![1u8; 64]))) >= 1);
    let sshd = builtin::get("sshd").expect("built-in sshd");
    let m = SourceMatcher::build(&[("sshd", &sshd)]).expect("builds");
    let mut scratch = m.new_scratch();
    let mut caps = Captures::new();
    let now = SystemTime::now();
    let misses: Vec<String> = (0..500)
        .map(|i| {
            [
                format!(
                    "Dec  6 04:00:{:02} web1 CRON[{i}]: (root) CMD (run-parts /etc/cron.hourly)",
                    i % 60
                ),
                format!(
                    "Dec  6 04:00:{:02} web1 sshd[{i}]: Server listening on 0.0.0.0 port 22.",
                    i % 60
                ),
                format!(
                    "Dec  6 04:00:{:02} web1 kernel: [UFW BLOCK] SRC=192.0.2.{} DST=198.51.100.1",
                    i % 60,
                    i % 250
                ),
            ][i % 3]
                .clone()
        })
        .collect();
    let hit = |i: usize| {
        format!(
            "Dec  6 04:01:{:02} web1 sshd[{}]: Failed password for invalid user guest{i} from 203.0.113.{} port 22 ssh2",
            i % 60,
            5000 + i,
            i % 250
        )
    };
    // Warm the caches (regex caches, time memo, syslog stamp cache).
    for l in &misses {
        per_line(&m, &mut scratch, &mut caps, l.as_bytes(), now);
    }
    for i in 0..50 {
        per_line(&m, &mut scratch, &mut caps, hit(i).as_bytes(), now);
    }
    let n = allocations(|| {
        for l in &misses {
            assert!(!per_line(&m, &mut scratch, &mut caps, l.as_bytes(), now));
        }
    });
    assert_eq!(n, 0, "{n} allocations for {} lines that miss", misses.len());

    // A match with a user: the capture is kept (bounded), which allocates a few
    // times per matching line, never per byte of the line.
    let lines: Vec<String> = (100..200).map(hit).collect();
    let n = allocations(|| {
        for l in &lines {
            assert!(per_line(&m, &mut scratch, &mut caps, l.as_bytes(), now));
            assert!(caps.user().is_some_and(|u| u.starts_with("guest")));
        }
    });
    assert!(
        n <= 4 * lines.len() as u64,
        "{n} allocations for {} matches",
        lines.len()
    );
}
