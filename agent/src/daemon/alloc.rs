//! How the daemon asks the C allocator to give memory back.
//!
//! The agent's lasting state is compact (see [`crate::engine`]), but a flood or a
//! restart moves a lot through it for a short while: decision batches on their way
//! to the store and the kernel, the bans gathered for a reconcile. With glibc's
//! defaults that memory stays with the process after it is freed: each thread that
//! allocates gets its own arena (up to eight per core), and after the first large
//! block is freed the threshold for serving blocks straight from `mmap` rises to
//! that block's size, so later batches of that size land in the arenas, where holes
//! between live blocks are never returned. Measured with 1,000,000 bans through the
//! agent (bench case 5), that kept about 80 MiB resident beyond the live state.
//!
//! So the daemon fixes the thresholds at glibc's own defaults (which turns off the
//! rising) and caps the arenas at two, before any thread starts; and it trims the
//! heap once after start-up, when the reconcile's copies are gone. Other libcs are
//! left alone.

/// Most arenas: the engine task and the commit thread allocate the most.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const ARENAS: libc::c_int = 2;

/// Blocks this large and larger come straight from `mmap` and go back on free
/// (glibc's default, fixed so it stops rising).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 128 * 1024;

/// Free memory at the top of a heap beyond this goes back to the system (glibc's
/// default, fixed so it stops rising with the threshold above).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIM_THRESHOLD: libc::c_int = 128 * 1024;

/// Sets the allocator up for a long-running daemon; call first thing in `main`,
/// before any thread is started.
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; called before other
    // threads exist, as glibc recommends for M_ARENA_MAX.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, ARENAS);
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
    }
}

/// Returns freed memory to the system now (after start-up's reconcile).
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free pages of the allocator's heaps.
    unsafe {
        libc::malloc_trim(0);
    }
}
