//! Ban deadlines in the kernel's clock. The engine thinks in wall-clock time
//! (`SystemTime`); the XDP program reads `CLOCK_MONOTONIC` (the coarse, per-tick
//! reading: see the program's docs for why). A deadline is converted as "monotonic
//! time now + time left", so a wall-clock jump after the ban does not stretch or cut
//! it.
//!
//! What the monotonic clock means for bans: time spent suspended does not count (a
//! suspend stretches every ban by its length), and the program sees the time of the
//! last tick, so a ban may hold up to one tick past its deadline. The agent reads the
//! same clock (`CLOCK_MONOTONIC`) for conversions and garbage collection; inside a
//! time namespace with a monotonic offset the two would disagree, so run the agent
//! in the host's time namespace.

use std::time::{Duration, SystemTime};

use nix::time::{ClockId, clock_gettime};

use super::XdpError;

/// Two deadlines closer than this are the same deadline: the wall-to-boot offset
/// moves a little between two conversions (NTP slew, the time between the reads).
pub(crate) const TOLERANCE: Duration = Duration::from_secs(1);

/// `CLOCK_MONOTONIC` now, in nanoseconds: the clock `bpf_ktime_get_coarse_ns`
/// reads (to within a tick).
pub(crate) fn kernel_now_ns() -> Result<u64, XdpError> {
    let ts =
        clock_gettime(ClockId::CLOCK_MONOTONIC).map_err(|source| XdpError::Clock { source })?;
    let secs = u64::try_from(ts.tv_sec()).unwrap_or(0);
    let nanos = u64::try_from(ts.tv_nsec()).unwrap_or(0);
    Ok(secs.saturating_mul(1_000_000_000).saturating_add(nanos))
}

/// `CLOCK_BOOTTIME` now, in nanoseconds: the clock of pin layout 2's deadlines, read
/// only to carry them over ([`super::migrate`]).
pub(crate) fn boot_now_ns() -> Result<u64, XdpError> {
    let ts = clock_gettime(ClockId::CLOCK_BOOTTIME).map_err(|source| XdpError::Clock { source })?;
    let secs = u64::try_from(ts.tv_sec()).unwrap_or(0);
    let nanos = u64::try_from(ts.tv_nsec()).unwrap_or(0);
    Ok(secs.saturating_mul(1_000_000_000).saturating_add(nanos))
}

/// Moves a deadline from one kernel clock to another, given both clocks read at the
/// same moment: the time left stays the same. `None` when it has already passed;
/// 0 (permanent) stays 0.
pub(crate) fn rebase(expires_ns: u64, from_now_ns: u64, to_now_ns: u64) -> Option<u64> {
    if expires_ns == 0 {
        return Some(0);
    }
    let left = expires_ns.checked_sub(from_now_ns).filter(|l| *l > 0)?;
    Some(to_now_ns.saturating_add(left).max(1))
}

/// The kernel deadline for a ban ending at `until` (`None` = permanent, stored as 0),
/// given the wall clock `now` and the kernel clock `kernel_now_ns` read at the same
/// moment. A deadline already past maps to `kernel_now_ns` (never 0, which would
/// mean permanent), so the ban is inactive at once.
pub(crate) fn to_kernel_ns(until: Option<SystemTime>, now: SystemTime, kernel_now_ns: u64) -> u64 {
    let Some(until) = until else {
        return 0;
    };
    let left = until.duration_since(now).unwrap_or(Duration::ZERO);
    let left_ns = u64::try_from(left.as_nanos()).unwrap_or(u64::MAX);
    kernel_now_ns.saturating_add(left_ns).max(1)
}

/// Whether a stored deadline has passed: the program no longer drops for it.
pub(crate) fn expired(expires_ns: u64, kernel_now_ns: u64) -> bool {
    expires_ns != 0 && expires_ns <= kernel_now_ns
}

/// Whether a stored deadline already says what `wanted` says: both permanent, or both
/// finite and within [`TOLERANCE`].
pub(crate) fn same(stored_ns: u64, wanted_ns: u64) -> bool {
    match (stored_ns, wanted_ns) {
        (0, 0) => true,
        (0, _) | (_, 0) => false,
        (a, b) => u128::from(a.abs_diff(b)) < TOLERANCE.as_nanos(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const KERNEL: u64 = 5_000_000_000;

    fn wall(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn permanent_is_zero() {
        assert_eq!(to_kernel_ns(None, wall(100), KERNEL), 0);
    }

    #[test]
    fn finite_is_boot_now_plus_time_left() {
        let got = to_kernel_ns(Some(wall(160)), wall(100), KERNEL);
        assert_eq!(got, KERNEL + 60_000_000_000);
        assert!(!expired(got, KERNEL));
        assert!(expired(got, got));
    }

    #[test]
    fn past_deadline_is_inactive_not_permanent() {
        let got = to_kernel_ns(Some(wall(50)), wall(100), KERNEL);
        assert_ne!(got, 0);
        assert!(expired(got, KERNEL));
        // Even at boot time zero a past deadline is never the permanent marker.
        assert_eq!(to_kernel_ns(Some(wall(50)), wall(100), 0), 1);
    }

    #[test]
    fn far_future_saturates() {
        let got = to_kernel_ns(
            Some(SystemTime::UNIX_EPOCH + Duration::MAX / 2),
            wall(0),
            KERNEL,
        );
        assert_eq!(got, u64::MAX);
    }

    #[test]
    fn sameness_tolerates_a_little_drift_only() {
        assert!(same(0, 0));
        assert!(!same(0, KERNEL));
        assert!(!same(KERNEL, 0));
        assert!(same(KERNEL, KERNEL + 999_999_999));
        assert!(!same(KERNEL, KERNEL + 1_000_000_000));
    }

    #[test]
    fn kernel_clock_moves_forward() {
        let a = kernel_now_ns().expect("CLOCK_MONOTONIC");
        let b = kernel_now_ns().expect("CLOCK_MONOTONIC");
        assert!(a > 0 && b >= a);
    }

    #[test]
    fn rebase_keeps_time_left_and_drops_the_past() {
        assert_eq!(rebase(0, 100, 5), Some(0));
        assert_eq!(rebase(160, 100, 5), Some(65));
        assert_eq!(rebase(100, 100, 5), None);
        assert_eq!(rebase(50, 100, 5), None);
        assert_eq!(rebase(u64::MAX, 0, 10), Some(u64::MAX));
    }

    proptest! {
        #[test]
        fn conversion_preserves_time_left(left in 0u64..10_000_000, boot in 1u64..1 << 62) {
            let now = wall(1_700_000_000);
            let got = to_kernel_ns(Some(now + Duration::from_secs(left)), now, boot);
            prop_assert_eq!(got, boot + left * 1_000_000_000);
            prop_assert_eq!(expired(got, boot), left == 0);
        }
    }
}
