//! `--csv`: one view as RFC 4180 CSV, a header line of column names first.

use super::super::views::Table;

/// The table as CSV text.
pub fn render(t: &Table) -> String {
    let mut out = String::new();
    let header: Vec<String> = t.columns.iter().map(|c| field(c.name)).collect();
    out.push_str(&header.join(","));
    out.push_str("\r\n");
    for r in &t.rows {
        let cells: Vec<String> = r.iter().map(|c| field(&c.text())).collect();
        out.push_str(&cells.join(","));
        out.push_str("\r\n");
    }
    out
}

/// A field quoted when it holds a comma, quote or line break.
fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_quoted_when_needed() {
        assert_eq!(field("ssh,web"), "\"ssh,web\"");
        assert_eq!(field("a\"b"), "\"a\"\"b\"");
        assert_eq!(field("192.0.2.1"), "192.0.2.1");
    }
}
