//! `--html FILE`: one self-contained page (inline CSS and SVG, no script, no
//! fetch of anything) with the summary, charts and every table: bans per day
//! stacked by jail, the top subnets, and the ASN and country breakdown when a
//! GeoIP database was given. Every text is escaped.

use std::fmt::Write as _;

use super::super::Report;
use super::super::views::{Cell, Table};
use super::bounded;

/// Colours of jails in the stacked chart, reused in turn.
const PALETTE: [&str; 10] = [
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
    "#9c755f", "#bab0ac",
];

/// Escapes text for HTML content and attribute values.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => {
                let _ = write!(out, "&#xFFFD;");
            }
            c => out.push(c),
        }
    }
    out
}

/// The page.
pub fn render(report: &Report) -> String {
    let mut h = String::new();
    let s = &report.summary;
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>log2drop report: {}</title>\n<style>{CSS}</style>\n</head>\n<body>\n",
        esc(&report.source)
    );
    let _ = writeln!(h, "<h1>log2drop report</h1>");
    let _ = writeln!(
        h,
        "<p class=\"meta\">{} &middot; {} &middot; generated {}</p>",
        esc(&report.source),
        esc(&report.range),
        esc(&report.generated)
    );
    let _ = writeln!(h, "<section class=\"cards\">");
    for (label, value) in [
        ("bans", s.bans.to_string()),
        ("addresses", s.addresses.to_string()),
        ("jails", s.jails.to_string()),
        ("restored", s.restored.to_string()),
        ("offences", s.offences.to_string()),
    ] {
        let _ = writeln!(
            h,
            "<div class=\"card\"><div class=\"v\">{}</div><div class=\"l\">{label}</div></div>",
            esc(&value)
        );
    }
    if let Some(d) = &s.last_day {
        let _ = writeln!(
            h,
            "<div class=\"card\"><div class=\"v\">{}</div><div class=\"l\">bans on {}</div></div>",
            d.bans,
            esc(&d.day)
        );
    }
    let _ = writeln!(h, "</section>");
    let (days, jails, counts) = &report.per_day_by_jail;
    let _ = writeln!(h, "<h2>Bans per day, by jail</h2>");
    h.push_str(&stacked(days, jails, counts));
    if let Some(t) = &report.chart_subnets {
        let _ = writeln!(h, "<h2>Top subnets</h2>");
        h.push_str(&hbars(t, 0, 1, "subnets"));
    }
    for t in &report.chart_geo {
        let _ = writeln!(h, "<h2>{}</h2>", esc(&t.title));
        h.push_str(&hbars(t, 1, 2, t.view.name()));
    }
    for t in &report.tables {
        table(&mut h, t);
    }
    if let Some(sug) = &report.suggestions {
        let _ = writeln!(h, "<h2>Suggested prefix bans</h2>\n<pre>");
        for s in sug {
            let _ = writeln!(
                h,
                "log2drop ban {}   # {} bans from {} addresses",
                esc(&s.prefix.to_string()),
                s.bans,
                s.addresses
            );
        }
        let _ = writeln!(h, "</pre>");
    }
    h.push_str("</body>\n</html>\n");
    h
}

fn table(h: &mut String, t: &Table) {
    let more = t.cut_note();
    let _ = writeln!(
        h,
        "<h2>{}{}</h2>\n<table class=\"view-{}\">\n<thead><tr>",
        esc(&t.title),
        esc(&more),
        t.view.name()
    );
    for c in &t.columns {
        let _ = write!(
            h,
            "<th{}>{}</th>",
            if c.numeric { " class=\"n\"" } else { "" },
            esc(c.name)
        );
    }
    let _ = writeln!(h, "</tr></thead>\n<tbody>");
    for r in &t.rows {
        h.push_str("<tr>");
        for (c, cell) in t.columns.iter().zip(r) {
            let _ = write!(
                h,
                "<td{}>{}</td>",
                if c.numeric { " class=\"n\"" } else { "" },
                esc(&bounded(&cell.text()))
            );
        }
        h.push_str("</tr>\n");
    }
    let _ = writeln!(h, "</tbody>\n</table>");
}

/// Bans per day, one stacked column per day, one colour per jail, with a legend.
fn stacked(days: &[String], jails: &[String], counts: &[Vec<u64>]) -> String {
    if days.is_empty() {
        return "<p>no bans</p>\n".into();
    }
    let (w, hgt, left, bottom, top) = (900.0f64, 300.0f64, 50.0, 40.0, 10.0);
    let plot_w = w - left - 10.0;
    let plot_h = hgt - bottom - top;
    let max = nice_max(
        counts
            .iter()
            .map(|d| d.iter().sum::<u64>())
            .max()
            .unwrap_or(1),
    );
    let step = plot_w / days.len() as f64;
    let bw = (step * 0.8).max(1.0);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<svg class=\"chart\" id=\"chart-days\" xmlns=\"http://www.w3.org/2000/svg\" \
         viewBox=\"0 0 {w} {}\" role=\"img\" aria-label=\"bans per day by jail\">",
        hgt + 20.0 * jails.len().div_ceil(6) as f64
    );
    // Axis and a few gridlines.
    for i in 0..=4 {
        let v = max * f64::from(i) / 4.0;
        let y = top + plot_h - plot_h * f64::from(i) / 4.0;
        let _ = writeln!(
            s,
            "<line x1=\"{left}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" class=\"grid\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" class=\"axis\" text-anchor=\"end\">{}</text>",
            w - 10.0,
            left - 4.0,
            y + 4.0,
            v.round()
        );
    }
    for (d, (day, per_jail)) in days.iter().zip(counts).enumerate() {
        let x = left + step * d as f64 + (step - bw) / 2.0;
        let mut y = top + plot_h;
        for (j, &n) in per_jail.iter().enumerate() {
            if n == 0 {
                continue;
            }
            let bh = plot_h * n as f64 / max;
            y -= bh;
            let _ = writeln!(
                s,
                "<rect class=\"bar\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{bw:.1}\" height=\"{bh:.1}\" \
                 fill=\"{}\"><title>{} {}: {n}</title></rect>",
                PALETTE[j % PALETTE.len()],
                esc(day),
                esc(&jails[j])
            );
        }
        // Label about ten days along the axis.
        let every = days.len().div_ceil(10).max(1);
        if d % every == 0 {
            let _ = writeln!(
                s,
                "<text x=\"{:.1}\" y=\"{:.1}\" class=\"axis\" text-anchor=\"middle\">{}</text>",
                x + bw / 2.0,
                top + plot_h + 16.0,
                esc(day.get(5..).unwrap_or(day))
            );
        }
    }
    for (j, name) in jails.iter().enumerate() {
        let (col, row) = (j % 6, j / 6);
        let x = left + 140.0 * col as f64;
        let y = hgt - 8.0 + 20.0 * row as f64;
        let _ = writeln!(
            s,
            "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"12\" height=\"12\" fill=\"{}\"/>\
             <text x=\"{:.1}\" y=\"{y:.1}\" class=\"legend\">{}</text>",
            y - 10.0,
            PALETTE[j % PALETTE.len()],
            x + 16.0,
            esc(&bounded(name))
        );
    }
    s.push_str("</svg>\n");
    s
}

/// The axis maximum: `n` rounded up to 1, 2, 4, 5 or 8 times a power of ten, so
/// the four gridlines fall on round numbers.
fn nice_max(n: u64) -> f64 {
    let n = n.max(1) as f64;
    let mag = 10f64.powf(n.log10().floor());
    [1.0, 2.0, 4.0, 5.0, 8.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|&v| v >= n)
        .unwrap_or(n)
}

/// Horizontal bars of a table: label column, count column.
fn hbars(t: &Table, label: usize, value: usize, id: &str) -> String {
    let rows: Vec<(String, u64)> = t
        .rows
        .iter()
        .filter_map(|r| match (r.get(label), r.get(value)) {
            (Some(l), Some(Cell::Count(n))) => Some((l.text(), *n)),
            _ => None,
        })
        .collect();
    if rows.is_empty() {
        return "<p>no bans</p>\n".into();
    }
    let max = rows.iter().map(|r| r.1).max().unwrap_or(1).max(1) as f64;
    let (w, row_h, left) = (900.0f64, 22.0f64, 230.0f64);
    let plot_w = w - left - 60.0;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<svg class=\"chart\" id=\"chart-{}\" xmlns=\"http://www.w3.org/2000/svg\" \
         viewBox=\"0 0 {w} {:.0}\" role=\"img\" aria-label=\"{}\">",
        esc(id),
        row_h * rows.len() as f64 + 10.0,
        esc(&t.title)
    );
    for (i, (l, n)) in rows.iter().enumerate() {
        let y = 5.0 + row_h * i as f64;
        let bw = (plot_w * *n as f64 / max).max(1.0);
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" class=\"label\" text-anchor=\"end\">{}</text>\
             <rect class=\"bar\" x=\"{left}\" y=\"{y:.1}\" width=\"{bw:.1}\" height=\"{:.1}\" fill=\"{}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" class=\"axis\">{n}</text>",
            left - 6.0,
            y + 15.0,
            esc(&bounded(l)),
            row_h - 6.0,
            PALETTE[0],
            left + bw + 4.0,
            y + 15.0
        );
    }
    s.push_str("</svg>\n");
    s
}

const CSS: &str = "
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2em auto;max-width:960px;color:#222;background:#fff;padding:0 1em}
h1{margin-bottom:.2em}h2{margin-top:1.6em;font-size:1.15em;border-bottom:1px solid #ddd;padding-bottom:.2em}
.meta{color:#666}
.cards{display:flex;flex-wrap:wrap;gap:.8em}
.card{border:1px solid #ddd;border-radius:6px;padding:.5em 1em;min-width:6em}
.card .v{font-size:1.6em;font-weight:600}.card .l{color:#666;font-size:.9em}
svg.chart{width:100%;height:auto;display:block}
.grid{stroke:#e5e5e5;stroke-width:1}
.axis,.legend,.label{font-size:11px;fill:#444;font-family:system-ui,sans-serif}
table{border-collapse:collapse;width:100%;font-size:.92em}
th,td{padding:.25em .6em;border-bottom:1px solid #eee;text-align:left;font-variant-numeric:tabular-nums}
th{background:#f6f6f6}.n{text-align:right}
pre{background:#f6f6f6;padding:.8em;overflow-x:auto}
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_text_is_escaped() {
        assert_eq!(esc("<script>&\"'"), "&lt;script&gt;&amp;&quot;&#39;");
        assert_eq!(esc("a\x1bb"), "a&#xFFFD;b");
    }

    #[test]
    fn stacked_chart_has_a_rect_per_nonzero_jail_day() {
        let svg = stacked(
            &["2026-01-01".into(), "2026-01-02".into()],
            &["ssh".into(), "web".into()],
            &[vec![3, 1], vec![0, 2]],
        );
        assert_eq!(svg.matches("class=\"bar\"").count(), 3);
        assert!(svg.starts_with("<svg"));
    }
}
