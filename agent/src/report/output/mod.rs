//! How a report is printed: aligned terminal tables with bar charts and a
//! sparkline, JSON and CSV for scripts, and one self-contained HTML page.
//!
//! Text from logs, DNS and GeoIP databases is not trusted: every output escapes
//! it for its own medium (control characters on a terminal, quotes in CSV,
//! markup in HTML; JSON escapes by itself).

pub mod csv;
pub mod html;
pub mod json;
pub mod terminal;

/// Eight levels of a sparkline, lowest first.
const SPARKS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// One character per value, scaled to the largest; zero is a space.
pub(crate) fn sparkline(values: &[u64]) -> String {
    let max = values.iter().copied().max().unwrap_or(0);
    values
        .iter()
        .map(|&v| {
            if v == 0 || max == 0 {
                ' '
            } else {
                let i = ((v * 8 - 1) / max).min(7) as usize;
                SPARKS[i]
            }
        })
        .collect()
}

/// Longest text cell printed; longer (attacker-influenced) text is cut with `…`.
pub(crate) const MAX_CELL: usize = 64;

/// `text` cut to [`MAX_CELL`] characters.
pub fn bounded(text: &str) -> std::borrow::Cow<'_, str> {
    if text.chars().count() <= MAX_CELL {
        return text.into();
    }
    let mut s: String = text.chars().take(MAX_CELL - 1).collect();
    s.push('…');
    s.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparkline_scales_to_the_largest() {
        assert_eq!(sparkline(&[0, 1, 4, 8]), " ▁▄█");
        assert_eq!(sparkline(&[]), "");
        assert_eq!(sparkline(&[5, 5]), "██");
    }

    #[test]
    fn long_text_is_cut() {
        let long = "a".repeat(100);
        assert_eq!(bounded(&long).chars().count(), MAX_CELL);
        assert_eq!(bounded("short"), "short");
    }
}
