//! `--json`: one JSON object with the summary, each view's rows as objects keyed
//! by column name (counts as numbers), and the suggestions when asked for.

use serde_json::{Map, Value, json};

use super::super::Report;
use super::super::views::{Cell, Table};

/// The report as one JSON value.
pub fn render(report: &Report) -> Value {
    let mut v = json!({
        "source": report.source,
        "range": report.range,
        "summary": report.summary,
        "views": report.tables.iter().map(table).collect::<Vec<_>>(),
    });
    if let Some(s) = &report.suggestions {
        v["suggestions"] = s
            .iter()
            .map(|s| {
                json!({
                    "prefix": s.prefix.to_string(),
                    "bans": s.bans,
                    "addresses": s.addresses,
                    "command": format!("log2drop ban {}", s.prefix),
                })
            })
            .collect();
    }
    v
}

fn table(t: &Table) -> Value {
    let rows: Vec<Value> = t
        .rows
        .iter()
        .map(|r| {
            let mut m = Map::new();
            for (c, cell) in t.columns.iter().zip(r) {
                let v = match cell {
                    Cell::Count(n) => json!(n),
                    Cell::Text(s) => json!(s),
                };
                m.insert(c.name.to_owned(), v);
            }
            Value::Object(m)
        })
        .collect();
    json!({
        "view": t.view.name(),
        "title": t.title,
        "total_rows": t.total_rows,
        "rows": rows,
    })
}
