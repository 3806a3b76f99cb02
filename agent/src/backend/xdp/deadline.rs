//! Ban deadlines in the kernel's clock. The engine thinks in wall-clock time
//! (`SystemTime`); the XDP program can only read `CLOCK_BOOTTIME`. A deadline is
//! converted as "boot time now + time left", so a wall-clock jump after the ban does
//! not stretch or cut it, and boot time keeps counting across suspend.

use std::time::{Duration, SystemTime};

use nix::time::{ClockId, clock_gettime};

use super::XdpError;

/// Two deadlines closer than this are the same deadline: the wall-to-boot offset
/// moves a little between two conversions (NTP slew, the time between the reads).
pub(crate) const TOLERANCE: Duration = Duration::from_secs(1);

/// `CLOCK_BOOTTIME` now, in nanoseconds, as `bpf_ktime_get_boot_ns` reads it.
pub(crate) fn boot_now_ns() -> Result<u64, XdpError> {
    let ts = clock_gettime(ClockId::CLOCK_BOOTTIME).map_err(|source| XdpError::Clock { source })?;
    let secs = u64::try_from(ts.tv_sec()).unwrap_or(0);
    let nanos = u64::try_from(ts.tv_nsec()).unwrap_or(0);
    Ok(secs.saturating_mul(1_000_000_000).saturating_add(nanos))
}

/// The kernel deadline for a ban ending at `until` (`None` = permanent, stored as 0),
/// given the wall clock `now` and the boot clock `boot_now_ns` read at the same
/// moment. A deadline already past maps to `boot_now_ns` (never 0, which would mean
/// permanent), so the ban is inactive at once.
pub(crate) fn to_boot_ns(until: Option<SystemTime>, now: SystemTime, boot_now_ns: u64) -> u64 {
    let Some(until) = until else {
        return 0;
    };
    let left = until.duration_since(now).unwrap_or(Duration::ZERO);
    let left_ns = u64::try_from(left.as_nanos()).unwrap_or(u64::MAX);
    boot_now_ns.saturating_add(left_ns).max(1)
}

/// Whether a stored deadline has passed: the program no longer drops for it.
pub(crate) fn expired(expires_ns: u64, boot_now_ns: u64) -> bool {
    expires_ns != 0 && expires_ns <= boot_now_ns
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

    const BOOT: u64 = 5_000_000_000;

    fn wall(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn permanent_is_zero() {
        assert_eq!(to_boot_ns(None, wall(100), BOOT), 0);
    }

    #[test]
    fn finite_is_boot_now_plus_time_left() {
        let got = to_boot_ns(Some(wall(160)), wall(100), BOOT);
        assert_eq!(got, BOOT + 60_000_000_000);
        assert!(!expired(got, BOOT));
        assert!(expired(got, got));
    }

    #[test]
    fn past_deadline_is_inactive_not_permanent() {
        let got = to_boot_ns(Some(wall(50)), wall(100), BOOT);
        assert_ne!(got, 0);
        assert!(expired(got, BOOT));
        // Even at boot time zero a past deadline is never the permanent marker.
        assert_eq!(to_boot_ns(Some(wall(50)), wall(100), 0), 1);
    }

    #[test]
    fn far_future_saturates() {
        let got = to_boot_ns(
            Some(SystemTime::UNIX_EPOCH + Duration::MAX / 2),
            wall(0),
            BOOT,
        );
        assert_eq!(got, u64::MAX);
    }

    #[test]
    fn sameness_tolerates_a_little_drift_only() {
        assert!(same(0, 0));
        assert!(!same(0, BOOT));
        assert!(!same(BOOT, 0));
        assert!(same(BOOT, BOOT + 999_999_999));
        assert!(!same(BOOT, BOOT + 1_000_000_000));
    }

    #[test]
    fn boot_clock_moves_forward() {
        let a = boot_now_ns().expect("CLOCK_BOOTTIME");
        let b = boot_now_ns().expect("CLOCK_BOOTTIME");
        assert!(a > 0 && b >= a);
    }

    proptest! {
        #[test]
        fn conversion_preserves_time_left(left in 0u64..10_000_000, boot in 1u64..1 << 62) {
            let now = wall(1_700_000_000);
            let got = to_boot_ns(Some(now + Duration::from_secs(left)), now, boot);
            prop_assert_eq!(got, boot + left * 1_000_000_000);
            prop_assert_eq!(expired(got, boot), left == 0);
        }
    }
}
