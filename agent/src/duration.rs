//! Human durations in the config and CLI (`90s`, `10m`, `1h`, `2d`, `1w`).
//!
//! OWNER NOTE (skeleton): parsing to be completed.

use std::time::Duration;

/// A duration written as `<number><unit>` with unit `s`, `m`, `h`, `d` or `w`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HumanDuration(pub Duration);

impl HumanDuration {
    /// A duration of `secs` seconds.
    pub const fn from_secs(secs: u64) -> Self {
        Self(Duration::from_secs(secs))
    }
}

impl<'de> serde::Deserialize<'de> for HumanDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let _ = d;
        todo!("skeleton")
    }
}
