//! Human durations in the config and CLI (`90s`, `10m`, `1h`, `2d`, `1w`, `1h30m`).
//!
//! One parser serves `findtime`/`bantime` in the config and `--for` on the command
//! line, so both accept and print the same forms. Durations have whole-second
//! resolution: nothing the agent times needs less, and it keeps the text form exact.
//! Whether zero is acceptable depends on the setting, so that check belongs to the
//! caller (config validation), not here.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// Units in descending size, with their length in seconds; [`fmt::Display`] walks
/// this to print the shortest exact form.
const UNITS: [(char, u64); 5] = [
    ('w', 7 * 24 * 3600),
    ('d', 24 * 3600),
    ('h', 3600),
    ('m', 60),
    ('s', 1),
];

/// Why a duration text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Nothing was written.
    #[error(
        "expected a duration such as \"30s\", \"10m\", \"1h\", \"2d\" or \"1w\", got an empty string"
    )]
    Empty,
    /// The text is not a sequence of `<number><unit>`.
    #[error("expected a number followed by s, m, h, d or w, got {input:?}")]
    Invalid {
        /// What was written.
        input: String,
    },
    /// The total does not fit.
    #[error("duration {input:?} is too long")]
    Overflow {
        /// What was written.
        input: String,
    },
}

/// Parses `30s`, `10m`, `1h`, `2d`, `1w` and compounds such as `1h30m` or `1d 12h`
/// (whitespace between parts is allowed). A bare number is refused: `600` could mean
/// seconds or minutes, and guessing wrong makes bans 60 times too long or short.
pub fn parse_duration(s: &str) -> Result<Duration, DurationError> {
    let text = s.trim();
    if text.is_empty() {
        return Err(DurationError::Empty);
    }
    let invalid = || DurationError::Invalid {
        input: s.to_owned(),
    };
    let overflow = || DurationError::Overflow {
        input: s.to_owned(),
    };
    let bytes = text.as_bytes();
    let mut i = 0;
    let mut total: u64 = 0;
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if start == i {
            return Err(invalid());
        }
        let digits = &text[start..i];
        let number: u64 = digits.parse().map_err(|_| overflow())?;
        let unit = bytes.get(i).copied().ok_or_else(invalid)?;
        let scale = UNITS
            .iter()
            .find(|(c, _)| *c as u32 == u32::from(unit))
            .map(|(_, secs)| *secs)
            .ok_or_else(invalid)?;
        i += 1;
        let part = number.checked_mul(scale).ok_or_else(overflow)?;
        total = total.checked_add(part).ok_or_else(overflow)?;
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
    }
    Ok(Duration::from_secs(total))
}

/// A duration written as `<number><unit>` with unit `s`, `m`, `h`, `d` or `w`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct HumanDuration(pub Duration);

impl HumanDuration {
    /// A duration of `secs` seconds.
    pub const fn from_secs(secs: u64) -> Self {
        Self(Duration::from_secs(secs))
    }

    /// The duration itself.
    pub const fn get(self) -> Duration {
        self.0
    }

    /// True for a zero duration, which most settings refuse.
    pub const fn is_zero(self) -> bool {
        self.0.is_zero()
    }
}

impl From<HumanDuration> for Duration {
    fn from(d: HumanDuration) -> Self {
        d.0
    }
}

impl From<Duration> for HumanDuration {
    fn from(d: Duration) -> Self {
        Self(d)
    }
}

impl FromStr for HumanDuration {
    type Err = DurationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_duration(s).map(Self)
    }
}

/// The shortest exact form (`1h`, `1h30m`, `0s`); sub-second parts are not shown.
impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0.as_secs();
        if rest == 0 {
            return f.write_str("0s");
        }
        for (unit, secs) in UNITS {
            let n = rest / secs;
            if n > 0 {
                write!(f, "{n}{unit}")?;
                rest -= n * secs;
            }
        }
        Ok(())
    }
}

impl<'de> serde::Deserialize<'de> for HumanDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(Visitor)
    }
}

impl serde::Serialize for HumanDuration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

struct Visitor;

impl serde::de::Visitor<'_> for Visitor {
    type Value = HumanDuration;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a duration string such as \"10m\", \"1h\" or \"1h30m\"")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
        v.parse().map_err(E::custom)
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Err(E::custom(format_args!(
            "expected a duration string with a unit, such as \"{v}s\" or \"{v}m\", got the bare number {v}"
        )))
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Err(E::custom(format_args!(
            "expected a duration string with a unit, such as \"{v}s\" or \"{v}m\", got the bare number {v}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn secs(s: &str) -> u64 {
        parse_duration(s).expect("valid duration").as_secs()
    }

    #[test]
    fn single_units() {
        assert_eq!(secs("30s"), 30);
        assert_eq!(secs("10m"), 600);
        assert_eq!(secs("1h"), 3600);
        assert_eq!(secs("2d"), 172_800);
        assert_eq!(secs("1w"), 604_800);
        assert_eq!(secs("0s"), 0);
    }

    #[test]
    fn compounds_and_spacing() {
        assert_eq!(secs("1h30m"), 5400);
        assert_eq!(secs("1d 12h"), 129_600);
        assert_eq!(secs(" 1w1d1h1m1s "), 694_861);
        // Order is not enforced: 90s and 1m30s mean the same thing.
        assert_eq!(secs("30s1m"), 90);
    }

    #[test]
    fn refuses_bare_numbers_and_unknown_units() {
        for bad in [
            "600", "10x", "h", "1.5h", "-1h", "1h30", "1 h", "10M", "1hm",
        ] {
            let err = parse_duration(bad).expect_err(bad);
            assert_eq!(
                err.to_string(),
                format!("expected a number followed by s, m, h, d or w, got {bad:?}")
            );
        }
    }

    #[test]
    fn refuses_empty() {
        assert_eq!(parse_duration("  "), Err(DurationError::Empty));
    }

    #[test]
    fn refuses_overflow() {
        assert!(matches!(
            parse_duration("99999999999999999999s"),
            Err(DurationError::Overflow { .. })
        ));
        assert!(matches!(
            parse_duration("18446744073709551615w"),
            Err(DurationError::Overflow { .. })
        ));
    }

    #[test]
    fn display_is_shortest_form() {
        assert_eq!(HumanDuration::from_secs(3600).to_string(), "1h");
        assert_eq!(HumanDuration::from_secs(5400).to_string(), "1h30m");
        assert_eq!(HumanDuration::from_secs(90).to_string(), "1m30s");
        assert_eq!(HumanDuration::from_secs(0).to_string(), "0s");
        assert_eq!(HumanDuration::from_secs(8 * 86_400).to_string(), "1w1d");
    }

    #[test]
    fn deserialises_from_toml_string() {
        #[derive(serde::Deserialize)]
        struct T {
            d: HumanDuration,
        }
        let t: T = toml::from_str("d = \"1h30m\"").expect("valid");
        assert_eq!(t.d, HumanDuration::from_secs(5400));
    }

    #[test]
    fn deserialising_a_bare_number_says_what_to_write() {
        #[derive(Debug, serde::Deserialize)]
        struct T {
            #[allow(dead_code)]
            d: HumanDuration,
        }
        let err = toml::from_str::<T>("d = 600").expect_err("bare number");
        assert!(err.message().contains("\"600s\""), "{}", err.message());
    }

    proptest! {
        #[test]
        fn display_round_trips(s in 0u64..(1u64 << 40)) {
            let d = HumanDuration::from_secs(s);
            prop_assert_eq!(d.to_string().parse::<HumanDuration>(), Ok(d));
        }

        #[test]
        fn garbage_never_panics(s in "\\PC{0,24}") {
            let _ = parse_duration(&s);
        }

        #[test]
        fn duration_like_garbage_never_panics(s in "[0-9smhdw ]{0,24}") {
            let _ = parse_duration(&s);
        }
    }
}
