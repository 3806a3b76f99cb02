//! The terminal form: a summary with a per-day sparkline, then each view as an
//! aligned table whose main count has an inline bar. Colour only when asked
//! (the caller decides: a terminal, and `NO_COLOR` unset).

use std::fmt::Write as _;

use super::super::Report;
use super::super::views::{Cell, Table};
use super::{bounded, sparkline};

/// Width of a full bar, in cells.
const BAR: usize = 24;

/// Eighths of a cell, for smooth bar ends.
const EIGHTHS: [char; 8] = [' ', '▏', '▎', '▍', '▌', '▋', '▊', '▉'];

struct Paint {
    on: bool,
}

impl Paint {
    fn wrap(&self, code: &str, text: &str) -> String {
        if self.on {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
}

/// The whole report as terminal text.
pub fn render(report: &Report, color: bool) -> String {
    let p = Paint { on: color };
    let mut out = String::new();
    let s = &report.summary;
    let _ = writeln!(
        out,
        "{}",
        p.wrap("1", &format!("log2drop report: {}", report.source))
    );
    if s.bans == 0 {
        let _ = writeln!(
            out,
            "no bans ({}; read {} lines{})",
            report.range,
            s.lines,
            if s.offences > 0 {
                format!(", {} offences", s.offences)
            } else {
                String::new()
            }
        );
    } else {
        let _ = writeln!(
            out,
            "{} bans of {} addresses by {} jails, {} .. {}",
            s.bans,
            s.addresses,
            s.jails,
            s.first.as_deref().unwrap_or("?"),
            s.last.as_deref().unwrap_or("?"),
        );
        let mut extra = Vec::new();
        if s.restored > 0 {
            extra.push(format!("{} restored after restarts", s.restored));
        }
        if s.unbans > 0 {
            extra.push(format!("{} unbans", s.unbans));
        }
        if s.offences > 0 {
            extra.push(format!("{} offences", s.offences));
        }
        if s.malformed > 0 {
            extra.push(format!("{} unreadable event lines skipped", s.malformed));
        }
        if !extra.is_empty() {
            let _ = writeln!(out, "{}", extra.join(", "));
        }
        if let Some(d) = &s.last_day {
            let _ = writeln!(
                out,
                "{} {}: {} bans of {} addresses{}",
                if d.day == report.today {
                    "today"
                } else {
                    "last day"
                },
                d.day,
                d.bans,
                d.addresses,
                d.top_jail
                    .as_ref()
                    .map(|j| format!(", most in {}", escape(j)))
                    .unwrap_or_default()
            );
        }
        let values: Vec<u64> = s.per_day.iter().map(|d| d.bans).collect();
        // The last 60 days fit a line.
        let shown = &values[values.len().saturating_sub(60)..];
        let max = shown.iter().max().copied().unwrap_or(0);
        let _ = writeln!(
            out,
            "bans per day: {} (max {max}/day)",
            p.wrap("36", &sparkline(shown))
        );
    }
    for t in &report.tables {
        out.push('\n');
        table(&mut out, t, &p);
    }
    if let Some(sug) = &report.suggestions {
        out.push('\n');
        let _ = writeln!(out, "{}", p.wrap("1", "Suggested prefix bans"));
        if sug.is_empty() {
            let _ = writeln!(out, "no cluster of banned addresses found");
        }
        for s in sug {
            let _ = writeln!(
                out,
                "log2drop ban {:<20} # {} bans from {} addresses",
                s.prefix.to_string(),
                s.bans,
                s.addresses
            );
        }
    }
    out
}

fn table(out: &mut String, t: &Table, p: &Paint) {
    let more = t.cut_note();
    let _ = writeln!(out, "{}", p.wrap("1", &format!("{}{more}", t.title)));
    if t.rows.is_empty() {
        let _ = writeln!(out, "(none)");
        return;
    }
    let cells: Vec<Vec<String>> = t
        .rows
        .iter()
        .map(|r| r.iter().map(|c| escape(&bounded(&c.text()))).collect())
        .collect();
    let mut widths: Vec<usize> = t.columns.iter().map(|c| c.name.len()).collect();
    for r in &cells {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let max = t
        .bar
        .map(|b| {
            t.rows
                .iter()
                .filter_map(|r| match r.get(b) {
                    Some(Cell::Count(n)) => Some(*n),
                    _ => None,
                })
                .max()
                .unwrap_or(0)
        })
        .unwrap_or(0);
    let mut header = String::new();
    for (i, c) in t.columns.iter().enumerate() {
        let name = c.name.to_uppercase();
        let _ = if c.numeric {
            write!(header, "{name:>w$}  ", w = widths[i])
        } else {
            write!(header, "{name:<w$}  ", w = widths[i])
        };
        if t.bar == Some(i) {
            let _ = write!(header, "{:BAR$}  ", "");
        }
    }
    let _ = writeln!(out, "{}", p.wrap("1;4", header.trim_end()));
    for (row, texts) in t.rows.iter().zip(&cells) {
        let mut line = String::new();
        for (i, c) in t.columns.iter().enumerate() {
            let text = &texts[i];
            let pad = widths[i].saturating_sub(text.chars().count());
            if c.numeric {
                line.push_str(&" ".repeat(pad));
                line.push_str(text);
            } else {
                line.push_str(text);
                line.push_str(&" ".repeat(pad));
            }
            line.push_str("  ");
            if t.bar == Some(i) {
                let n = match row.get(i) {
                    Some(Cell::Count(n)) => *n,
                    _ => 0,
                };
                let b = bar(n, max);
                let len = b.chars().count();
                line.push_str(&p.wrap("36", &b));
                line.push_str(&" ".repeat(BAR - len));
                line.push_str("  ");
            }
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
}

/// A bar of `n` against `max`, at most [`BAR`] cells, in eighths.
fn bar(n: u64, max: u64) -> String {
    if max == 0 || n == 0 {
        return String::new();
    }
    let eighths = ((n as u128 * (BAR as u128 * 8)) / max as u128).max(1) as usize;
    let mut s = "█".repeat(eighths / 8);
    if !eighths.is_multiple_of(8) {
        s.push(EIGHTHS[eighths % 8]);
    }
    s
}

/// Control characters (escape sequences an attacker could plant in a PTR
/// record or a log) shown as `\x..`, never sent to the terminal.
pub fn escape(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_owned();
    }
    text.chars()
        .map(|c| {
            if c.is_control() {
                format!("\\x{:02x}", u32::from(c))
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_and_end_in_eighths() {
        assert_eq!(bar(10, 10).chars().count(), BAR);
        assert_eq!(bar(0, 10), "");
        assert_eq!(bar(1, 1000), "▏");
        assert_eq!(bar(5, 10), "█".repeat(BAR / 2));
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(escape("a\x1b[31mb"), "a\\x1b[31mb");
        assert_eq!(escape("plain.example.org"), "plain.example.org");
    }
}
