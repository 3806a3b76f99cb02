//! Rate limits for log messages an attacker can make the agent repeat (one per
//! offence or per line): the first one is logged, then at most one per interval,
//! carrying how many were left out in between. What they report is counted
//! elsewhere (`stats`, metrics); the limit only keeps the log readable and its
//! volume bounded under a flood.

use std::time::{Duration, SystemTime};

/// Default interval between two messages of one kind.
pub(crate) const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);

/// One kind of message. Time is passed in, so tests drive it.
#[derive(Debug, Clone)]
pub(crate) struct LogLimit {
    interval: Duration,
    next: Option<SystemTime>,
    suppressed: u64,
}

impl Default for LogLimit {
    fn default() -> Self {
        Self::new(DEFAULT_INTERVAL)
    }
}

impl LogLimit {
    /// At most one message per `interval`.
    pub fn new(interval: Duration) -> LogLimit {
        LogLimit {
            interval,
            next: None,
            suppressed: 0,
        }
    }

    /// Whether a message may be logged at `now`: `Some(n)` with the number left
    /// out since the last one logged, or `None` (this one is counted as left out).
    pub fn allow(&mut self, now: SystemTime) -> Option<u64> {
        if self.next.is_some_and(|next| now < next) {
            self.suppressed += 1;
            return None;
        }
        self.next = now.checked_add(self.interval);
        Some(std::mem::take(&mut self.suppressed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_then_one_per_interval_with_the_count_left_out() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let mut l = LogLimit::new(Duration::from_secs(60));
        assert_eq!(l.allow(t0), Some(0));
        for s in 1..60 {
            assert_eq!(l.allow(t0 + Duration::from_secs(s)), None);
        }
        assert_eq!(l.allow(t0 + Duration::from_secs(60)), Some(59));
        assert_eq!(l.allow(t0 + Duration::from_secs(61)), None);
        assert_eq!(l.allow(t0 + Duration::from_secs(500)), Some(1));
    }

    #[test]
    fn a_clock_that_goes_back_does_not_silence_it_for_long() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let mut l = LogLimit::new(Duration::from_secs(60));
        assert_eq!(l.allow(t0), Some(0));
        assert_eq!(l.allow(t0 - Duration::from_secs(30)), None);
        assert_eq!(l.allow(t0 + Duration::from_secs(60)), Some(1));
    }
}
