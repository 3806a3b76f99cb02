//! `log2drop report`: who attacked, from where, what and when, from the agent's
//! state database, fail2ban's logs or log2drop's own logs, without
//! `zgrep | awk | sort | uniq -c`.
//!
//! One direction, as everywhere: [`sources`] turn files and rows into
//! [`model::Event`]s, [`views`] count them into tables, [`enrich`] adds
//! suggestions, names and GeoIP, and [`output`] prints. Only the sources do I/O.

pub mod enrich;
pub mod model;
pub mod output;
pub mod sources;
pub mod views;

use std::net::IpAddr;

use enrich::suggest::{self, Suggestion};
use model::{Events, Kind};
use views::{Table, View, ViewError};

use crate::engine::allowlist::Allowlist;

/// A report ready to print.
#[derive(Debug, Clone)]
pub struct Report {
    /// What was read ("fail2ban logs (3 files)", "state database /var/lib/...").
    pub source: String,
    /// The time range, as text.
    pub range: String,
    /// Today's date (local), to tell "today" from the last day seen.
    pub today: String,
    /// When the report was made (local time).
    pub generated: String,
    /// Totals.
    pub summary: views::Summary,
    /// The views asked for.
    pub tables: Vec<Table>,
    /// `--suggest` results.
    pub suggestions: Option<Vec<Suggestion>>,
    /// Bans per day stacked by jail (HTML chart).
    pub per_day_by_jail: (Vec<String>, Vec<String>, Vec<Vec<u64>>),
    /// Top subnets (HTML chart).
    pub chart_subnets: Option<Table>,
    /// ASN and country breakdowns (HTML charts, with GeoIP).
    pub chart_geo: Vec<Table>,
}

/// What to build.
pub struct Request<'a> {
    /// Views, in order.
    pub views: Vec<View>,
    /// Their options.
    pub opts: views::Options<'a>,
    /// `--suggest`: the allowlist and how to group.
    pub suggest: Option<(Allowlist, suggest::Params)>,
    /// Build the HTML charts too.
    pub charts: bool,
    /// Describes the source.
    pub source: String,
    /// Describes the range.
    pub range: String,
    /// Today (local) as `YYYY-MM-DD`.
    pub today: String,
    /// Now, local, as text.
    pub generated: String,
}

/// The views shown when `--by` is not given.
pub const DEFAULT_VIEWS: [View; 3] = [View::Ip, View::Subnet, View::Day];

/// Builds the report.
pub fn build(events: &Events, req: Request<'_>) -> Result<Report, ViewError> {
    let tables = req
        .views
        .iter()
        .map(|&v| views::build(v, events, &req.opts))
        .collect::<Result<Vec<_>, _>>()?;
    let suggestions = req.suggest.as_ref().map(|(allow, params)| {
        let mut per: std::collections::HashMap<IpAddr, u64> = Default::default();
        for e in events.of(Kind::Ban) {
            if e.target.prefix_len() == e.target.max_prefix_len() {
                *per.entry(e.addr()).or_default() += 1;
            }
        }
        let banned: Vec<(IpAddr, u64)> = per.into_iter().collect();
        let mut s = suggest::suggest(&banned, allow, params);
        if let Some(top) = req.opts.top {
            s.truncate(top);
        }
        s
    });
    let mut chart_subnets = None;
    let mut chart_geo = Vec::new();
    let per_day_by_jail = if req.charts {
        let mut o = req.opts;
        o.top = Some(o.top.unwrap_or(15).min(15));
        chart_subnets = Some(views::build(View::Subnet, events, &o)?);
        if o.geo.is_some() {
            chart_geo.push(views::build(View::Country, events, &o)?);
            chart_geo.push(views::build(View::Asn, events, &o)?);
        }
        views::per_day_by_jail(events)
    } else {
        Default::default()
    };
    Ok(Report {
        source: req.source,
        range: req.range,
        today: req.today,
        generated: req.generated,
        summary: views::summary(events),
        tables,
        suggestions,
        per_day_by_jail,
        chart_subnets,
        chart_geo,
    })
}

/// Adds a `name` column after the address column of every table that has one,
/// from `names` (reverse DNS); addresses without a name get an empty cell.
pub fn add_names(report: &mut Report, names: &std::collections::HashMap<IpAddr, String>) {
    for t in &mut report.tables {
        let Some(col) = t.address else { continue };
        t.columns.insert(
            col + 1,
            views::Column {
                name: "name",
                numeric: false,
            },
        );
        if let Some(b) = t.bar.as_mut().filter(|b| **b > col) {
            *b += 1;
        }
        for row in &mut t.rows {
            let name = row
                .get(col)
                .and_then(|c| match c {
                    views::Cell::Text(a) => a.parse::<IpAddr>().ok(),
                    views::Cell::Count(_) => None,
                })
                .and_then(|a| names.get(&a).cloned())
                .unwrap_or_default();
            row.insert(col + 1, views::Cell::Text(name));
        }
    }
}

/// The single-host addresses the tables show (what `--resolve` looks up).
pub fn shown_addresses(report: &Report) -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = report
        .tables
        .iter()
        .filter_map(|t| t.address.map(|c| (t, c)))
        .flat_map(|(t, c)| {
            t.rows.iter().filter_map(move |r| match r.get(c) {
                Some(views::Cell::Text(a)) => a.parse::<IpAddr>().ok(),
                _ => None,
            })
        })
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}
