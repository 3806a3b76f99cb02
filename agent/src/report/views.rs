//! The aggregations a report shows (`--by`), each turned into a [`Table`] that
//! every output (terminal, JSON, CSV, HTML) prints the same way. Views count
//! events; they never read files or print.
//!
//! A ban is a `Ban` event. `Restore Ban` (fail2ban putting a ban back after a
//! restart) is not a new ban and is shown apart in the summary; `Found` lines are
//! offences, counted by `--by filter` only.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;

use ipnet::IpNet;

use super::model::{Civil, DAY, Event, Events, Kind, day_text, time_text};
use crate::addr::display_target;
use crate::filter::capture;

/// One view of `--by`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum View {
    /// Bans per address, most first.
    Ip,
    /// Bans per subnet (`--prefix`, `--prefix6`).
    Subnet,
    /// Bans and offences per address and jail: which services each address
    /// attacks, banned or not yet.
    Jail,
    /// Bans per day and jail, oldest day first (`--top N`: the last N days).
    Day,
    /// Addresses banned at least `--min` times.
    Offender,
    /// Offences (fail2ban `Found` lines, the agent's offence counts) per filter
    /// and address, before any ban; bans per filter where the source has no
    /// offences.
    Filter,
    /// Which accounts are being guessed: offences and bans per `user` capture
    /// (escaped: attacker-written text).
    User,
    /// Bans per autonomous system (`--geoip`).
    Asn,
    /// Bans per country (`--geoip`).
    Country,
}

impl View {
    /// The name used on the command line and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            View::Ip => "ip",
            View::Subnet => "subnet",
            View::Jail => "jail",
            View::Day => "day",
            View::Offender => "offender",
            View::Filter => "filter",
            View::User => "user",
            View::Asn => "asn",
            View::Country => "country",
        }
    }
}

/// A cell of a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cell {
    /// Text (escaped by each output as it needs).
    Text(String),
    /// A count.
    Count(u64),
}

impl Cell {
    /// The text shown.
    pub fn text(&self) -> String {
        match self {
            Cell::Text(t) => t.clone(),
            Cell::Count(n) => n.to_string(),
        }
    }
}

/// A column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    /// Name (header, JSON key, CSV header).
    pub name: &'static str,
    /// Right-aligned number.
    pub numeric: bool,
}

const fn text(name: &'static str) -> Column {
    Column {
        name,
        numeric: false,
    }
}

const fn count(name: &'static str) -> Column {
    Column {
        name,
        numeric: true,
    }
}

/// One view's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// Which view.
    pub view: View,
    /// A one-line description.
    pub title: String,
    /// The columns.
    pub columns: Vec<Column>,
    /// The rows shown (after `--top`).
    pub rows: Vec<Vec<Cell>>,
    /// Rows before `--top`.
    pub total_rows: usize,
    /// The column whose counts the bar chart draws.
    pub bar: Option<usize>,
    /// The column holding an address (for `--resolve`).
    pub address: Option<usize>,
}

impl Table {
    /// What `--top` left out, for a title: empty when nothing was.
    pub(crate) fn cut_note(&self) -> String {
        if self.total_rows <= self.rows.len() {
            String::new()
        } else if self.view == View::Day {
            format!(
                " (the latest days: {} of {} rows)",
                self.rows.len(),
                self.total_rows
            )
        } else {
            format!(" (top {} of {})", self.rows.len(), self.total_rows)
        }
    }
}

/// What the views need besides the events.
#[derive(Clone, Copy)]
pub struct Options<'a> {
    /// IPv4 prefix length of `--by subnet`.
    pub prefix4: u8,
    /// IPv6 prefix length of `--by subnet`.
    pub prefix6: u8,
    /// Rows kept per table (`None`: all).
    pub top: Option<usize>,
    /// `--by offender` threshold.
    pub min: u64,
    /// Looks up an address's (ASN, organisation) and (country code, name).
    pub geo: Option<&'a dyn GeoLookup>,
}

/// Where an address is (GeoIP), for the `asn` and `country` views.
pub trait GeoLookup {
    /// (number, organisation) of the address's autonomous system.
    fn asn(&self, addr: IpAddr) -> Option<(u32, String)>;
    /// (ISO code, English name) of the address's country.
    fn country(&self, addr: IpAddr) -> Option<(String, String)>;
}

/// Why a view cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ViewError {
    /// `asn` and `country` need a database.
    #[error("--by {0} needs --geoip FILE.mmdb")]
    NeedsGeoip(&'static str),
}

/// The subnet of `target` at the given lengths (a wider ban stays as it is).
pub(crate) fn subnet_of(target: &IpNet, prefix4: u8, prefix6: u8) -> IpNet {
    let len = match target {
        IpNet::V4(_) => prefix4,
        IpNet::V6(_) => prefix6,
    };
    if target.prefix_len() <= len {
        return target.trunc();
    }
    IpNet::new(target.addr(), len)
        .map(|n| n.trunc())
        .unwrap_or(*target)
}

/// Builds one view.
pub fn build(view: View, events: &Events, opts: &Options<'_>) -> Result<Table, ViewError> {
    let bans = || events.of(Kind::Ban);
    let table = match view {
        View::Ip | View::Offender => {
            let min = if view == View::Offender { opts.min } else { 1 };
            let mut per: HashMap<IpNet, PerAddr> = HashMap::new();
            for e in bans() {
                per.entry(e.target)
                    .or_insert_with(|| PerAddr::new(e))
                    .add(e);
            }
            let mut rows: Vec<(IpNet, PerAddr)> =
                per.into_iter().filter(|(_, p)| p.bans >= min).collect();
            rows.sort_by(|a, b| b.1.bans.cmp(&a.1.bans).then(a.0.cmp(&b.0)));
            let title = if view == View::Ip {
                "Bans per address".to_owned()
            } else {
                format!("Repeat offenders: addresses banned at least {min} times")
            };
            finish(
                view,
                title,
                vec![
                    text("address"),
                    count("bans"),
                    text("jails"),
                    text("first"),
                    text("last"),
                ],
                rows.into_iter()
                    .map(|(t, p)| {
                        let mut jails: Vec<&str> =
                            p.jails.iter().map(|&j| events.jails.get(j)).collect();
                        jails.sort_unstable();
                        vec![
                            Cell::Text(display_target(&t)),
                            Cell::Count(p.bans),
                            Cell::Text(jails.join(",")),
                            Cell::Text(time_text(p.first)),
                            Cell::Text(time_text(p.last)),
                        ]
                    })
                    .collect(),
                Some(1),
                Some(0),
                opts,
            )
        }
        View::Subnet => {
            let mut per: HashMap<IpNet, (u64, HashSet<IpNet>)> = HashMap::new();
            for e in bans() {
                let s = per
                    .entry(subnet_of(&e.target, opts.prefix4, opts.prefix6))
                    .or_default();
                s.0 += 1;
                s.1.insert(e.target);
            }
            let mut rows: Vec<_> = per.into_iter().collect();
            rows.sort_by(|a, b| b.1.0.cmp(&a.1.0).then(a.0.cmp(&b.0)));
            finish(
                view,
                format!(
                    "Bans per subnet (/{} IPv4, /{} IPv6)",
                    opts.prefix4, opts.prefix6
                ),
                vec![text("subnet"), count("bans"), count("addresses")],
                rows.into_iter()
                    .map(|(net, (n, addrs))| {
                        vec![
                            Cell::Text(net.to_string()),
                            Cell::Count(n),
                            Cell::Count(addrs.len() as u64),
                        ]
                    })
                    .collect(),
                Some(1),
                None,
                opts,
            )
        }
        View::Jail => {
            // (bans, offences) per address and jail name. An offence count of
            // the state database names every jail its filter fed ("a,b").
            let mut per: HashMap<(IpNet, &str), (u64, u64)> = HashMap::new();
            let mut offences = false;
            for e in &events.events {
                match e.kind {
                    Kind::Ban => {
                        per.entry((e.target, events.jails.get(e.jail)))
                            .or_default()
                            .0 += 1
                    }
                    Kind::Found => {
                        offences = true;
                        for jail in events
                            .jails
                            .get(e.jail)
                            .split(',')
                            .filter(|j| !j.is_empty())
                        {
                            per.entry((e.target, jail)).or_default().1 += u64::from(e.count);
                        }
                    }
                    Kind::Unban | Kind::Restore => {}
                }
            }
            let mut rows: Vec<_> = per.into_iter().collect();
            rows.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.0.cmp(&b.0.0)).then(a.0.1.cmp(b.0.1)));
            let mut columns = vec![text("address"), text("jail"), count("bans")];
            if offences {
                columns.push(count("offences"));
            }
            finish(
                view,
                if offences {
                    "Bans and offences per address and jail".into()
                } else {
                    "Bans per address and jail".into()
                },
                columns,
                rows.into_iter()
                    .map(|((t, j), (b, o))| {
                        let mut row = vec![
                            Cell::Text(display_target(&t)),
                            Cell::Text(j.to_owned()),
                            Cell::Count(b),
                        ];
                        if offences {
                            row.push(Cell::Count(o));
                        }
                        row
                    })
                    .collect(),
                Some(if offences { 3 } else { 2 }),
                Some(0),
                opts,
            )
        }
        View::User => {
            // (offences, bans, addresses) per user name.
            let mut per: HashMap<u32, (u64, u64, HashSet<IpNet>)> = HashMap::new();
            for e in &events.events {
                let Some(u) = e.user else { continue };
                let entry = per.entry(u).or_default();
                match e.kind {
                    Kind::Found => entry.0 += u64::from(e.count),
                    Kind::Ban => entry.1 += 1,
                    Kind::Unban | Kind::Restore => continue,
                }
                entry.2.insert(e.target);
            }
            let mut rows: Vec<_> = per.into_iter().collect();
            rows.sort_by(|a, b| {
                (b.1.0 + b.1.1)
                    .cmp(&(a.1.0 + a.1.1))
                    .then(events.users.get(a.0).cmp(events.users.get(b.0)))
            });
            finish(
                view,
                "Accounts tried: offences and bans per user name".into(),
                vec![
                    text("user"),
                    count("offences"),
                    count("bans"),
                    count("addresses"),
                ],
                rows.into_iter()
                    .map(|(u, (o, b, a))| {
                        vec![
                            // Attacker-written: no control characters reach any
                            // output (terminal, CSV, HTML, JSON).
                            Cell::Text(capture::escape(events.users.get(u)).into_owned()),
                            Cell::Count(o),
                            Cell::Count(b),
                            Cell::Count(a.len() as u64),
                        ]
                    })
                    .collect(),
                Some(1),
                None,
                opts,
            )
        }
        View::Day => {
            let mut per: BTreeMap<(i64, &str), u64> = BTreeMap::new();
            for e in bans() {
                *per.entry((e.time.div_euclid(DAY), events.jails.get(e.jail)))
                    .or_default() += 1;
            }
            // A trend reads oldest first; --top keeps the latest N days, with
            // every jail of those days.
            let total_rows = per.len();
            let mut days: Vec<i64> = per.keys().map(|k| k.0).collect();
            days.dedup();
            let from = opts
                .top
                .and_then(|top| days.len().checked_sub(top).map(|i| days[i]))
                .unwrap_or(i64::MIN);
            let rows: Vec<Vec<Cell>> = per
                .into_iter()
                .filter(|((day, _), _)| *day >= from)
                .map(|((day, jail), n)| {
                    vec![
                        Cell::Text(day_text(day)),
                        Cell::Text(jail.to_owned()),
                        Cell::Count(n),
                    ]
                })
                .collect();
            Table {
                view,
                title: "Bans per day and jail".into(),
                columns: vec![text("day"), text("jail"), count("bans")],
                rows,
                total_rows,
                bar: Some(2),
                address: None,
            }
        }
        View::Filter => {
            let found = events.of(Kind::Found).next().is_some();
            let mut per: HashMap<(&str, IpNet), u64> = HashMap::new();
            let kind = if found { Kind::Found } else { Kind::Ban };
            for e in events.of(kind) {
                let name = match e.filter {
                    Some(f) => events.filters.get(f),
                    // fail2ban: the jail's filter, reported under the jail's name.
                    None if found => events.jails.get(e.jail),
                    None => "(none)",
                };
                *per.entry((name, e.target)).or_default() += if kind == Kind::Found {
                    u64::from(e.count)
                } else {
                    1
                };
            }
            let mut rows: Vec<_> = per.into_iter().collect();
            rows.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            finish(
                view,
                if found {
                    "Offences per filter and address (before any ban)".into()
                } else {
                    "Bans per filter and address (this source records no offences)".into()
                },
                vec![
                    text("filter"),
                    text("address"),
                    count(if found { "offences" } else { "bans" }),
                ],
                rows.into_iter()
                    .map(|((f, t), n)| {
                        vec![
                            Cell::Text(f.to_owned()),
                            Cell::Text(display_target(&t)),
                            Cell::Count(n),
                        ]
                    })
                    .collect(),
                Some(2),
                Some(1),
                opts,
            )
        }
        View::Asn | View::Country => {
            let geo = opts.geo.ok_or(ViewError::NeedsGeoip(view.name()))?;
            let mut per: HashMap<(String, String), (u64, HashSet<IpNet>)> = HashMap::new();
            let mut cache: HashMap<IpAddr, (String, String)> = HashMap::new();
            for e in bans() {
                let key = cache
                    .entry(e.addr())
                    .or_insert_with(|| {
                        if view == View::Asn {
                            geo.asn(e.addr()).map_or_else(
                                || ("?".into(), "(unknown)".into()),
                                |(n, o)| (format!("AS{n}"), o),
                            )
                        } else {
                            geo.country(e.addr())
                                .unwrap_or_else(|| ("??".into(), "(unknown)".into()))
                        }
                    })
                    .clone();
                let s = per.entry(key).or_default();
                s.0 += 1;
                s.1.insert(e.target);
            }
            let mut rows: Vec<_> = per.into_iter().collect();
            rows.sort_by(|a, b| b.1.0.cmp(&a.1.0).then(a.0.cmp(&b.0)));
            let (title, k, n) = if view == View::Asn {
                ("Bans per autonomous system", "asn", "organisation")
            } else {
                ("Bans per country", "country", "name")
            };
            finish(
                view,
                title.into(),
                vec![text(k), text(n), count("bans"), count("addresses")],
                rows.into_iter()
                    .map(|((code, name), (b, a))| {
                        vec![
                            Cell::Text(code),
                            Cell::Text(name),
                            Cell::Count(b),
                            Cell::Count(a.len() as u64),
                        ]
                    })
                    .collect(),
                Some(2),
                None,
                opts,
            )
        }
    };
    Ok(table)
}

#[allow(clippy::too_many_arguments)]
fn finish(
    view: View,
    title: String,
    columns: Vec<Column>,
    mut rows: Vec<Vec<Cell>>,
    bar: Option<usize>,
    address: Option<usize>,
    opts: &Options<'_>,
) -> Table {
    let total_rows = rows.len();
    if let Some(top) = opts.top {
        rows.truncate(top);
    }
    Table {
        view,
        title,
        columns,
        rows,
        total_rows,
        bar,
        address,
    }
}

struct PerAddr {
    bans: u64,
    jails: Vec<u32>,
    first: Civil,
    last: Civil,
}

impl PerAddr {
    fn new(e: &Event) -> Self {
        PerAddr {
            bans: 0,
            jails: Vec::new(),
            first: e.time,
            last: e.time,
        }
    }

    fn add(&mut self, e: &Event) {
        self.bans += 1;
        if !self.jails.contains(&e.jail) {
            self.jails.push(e.jail);
        }
        self.first = self.first.min(e.time);
        self.last = self.last.max(e.time);
    }
}

/// Totals shown above the tables, and the per-day trend.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    /// Bans (new ones).
    pub bans: u64,
    /// Bans put back after a restart.
    pub restored: u64,
    /// Bans lifted.
    pub unbans: u64,
    /// Offences (fail2ban `Found`).
    pub offences: u64,
    /// Distinct banned targets.
    pub addresses: u64,
    /// Jails that banned.
    pub jails: u64,
    /// First and last ban.
    pub first: Option<String>,
    /// Last ban.
    pub last: Option<String>,
    /// Bans on the last day seen (`today` when the report runs on it).
    pub last_day: Option<DaySummary>,
    /// Bans per day, oldest first, every day between the first and last ban.
    pub per_day: Vec<DayCount>,
    /// Lines or rows read.
    pub lines: u64,
    /// Event lines that could not be read.
    pub malformed: u64,
}

/// Bans on one day.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DayCount {
    /// `YYYY-MM-DD`.
    pub day: String,
    /// Bans.
    pub bans: u64,
}

/// One day's activity.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DaySummary {
    /// `YYYY-MM-DD`.
    pub day: String,
    /// Bans.
    pub bans: u64,
    /// Distinct addresses banned.
    pub addresses: u64,
    /// The jail with most bans that day.
    pub top_jail: Option<String>,
}

/// Counts the totals.
pub fn summary(events: &Events) -> Summary {
    let mut s = Summary {
        bans: 0,
        restored: 0,
        unbans: 0,
        offences: 0,
        addresses: 0,
        jails: 0,
        first: None,
        last: None,
        last_day: None,
        per_day: Vec::new(),
        lines: events.lines,
        malformed: events.malformed,
    };
    let mut targets = HashSet::new();
    let mut jails = HashSet::new();
    let mut days: BTreeMap<i64, u64> = BTreeMap::new();
    let (mut first, mut last) = (i64::MAX, i64::MIN);
    for e in &events.events {
        match e.kind {
            Kind::Ban => {
                s.bans += 1;
                targets.insert(e.target);
                jails.insert(e.jail);
                *days.entry(e.time.div_euclid(DAY)).or_default() += 1;
                first = first.min(e.time);
                last = last.max(e.time);
            }
            Kind::Restore => s.restored += 1,
            Kind::Unban => s.unbans += 1,
            Kind::Found => s.offences += u64::from(e.count),
        }
    }
    s.addresses = targets.len() as u64;
    s.jails = jails.len() as u64;
    if s.bans > 0 {
        s.first = Some(time_text(first));
        s.last = Some(time_text(last));
        let (d0, d1) = (first.div_euclid(DAY), last.div_euclid(DAY));
        s.per_day = (d0..=d1)
            .map(|d| DayCount {
                day: day_text(d),
                bans: days.get(&d).copied().unwrap_or(0),
            })
            .collect();
        let mut addrs = HashSet::new();
        let mut per_jail: HashMap<u32, u64> = HashMap::new();
        for e in events
            .of(Kind::Ban)
            .filter(|e| e.time.div_euclid(DAY) == d1)
        {
            addrs.insert(e.target);
            *per_jail.entry(e.jail).or_default() += 1;
        }
        let top_jail = per_jail
            .into_iter()
            .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
            .map(|(j, _)| events.jails.get(j).to_owned());
        s.last_day = Some(DaySummary {
            day: day_text(d1),
            bans: days.get(&d1).copied().unwrap_or(0),
            addresses: addrs.len() as u64,
            top_jail,
        });
    }
    s
}

/// Bans per day and jail for the stacked chart: the days (oldest first), the
/// jails, and `counts[day][jail]`.
pub(crate) fn per_day_by_jail(events: &Events) -> (Vec<String>, Vec<String>, Vec<Vec<u64>>) {
    let mut per: BTreeMap<i64, HashMap<u32, u64>> = BTreeMap::new();
    let mut jails: Vec<u32> = Vec::new();
    for e in events.of(Kind::Ban) {
        *per.entry(e.time.div_euclid(DAY))
            .or_default()
            .entry(e.jail)
            .or_default() += 1;
        if !jails.contains(&e.jail) {
            jails.push(e.jail);
        }
    }
    jails.sort_by_key(|&j| events.jails.get(j));
    let (Some(&d0), Some(&d1)) = (per.keys().next(), per.keys().next_back()) else {
        return (Vec::new(), Vec::new(), Vec::new());
    };
    let days: Vec<String> = (d0..=d1).map(day_text).collect();
    let counts = (d0..=d1)
        .map(|d| {
            jails
                .iter()
                .map(|j| per.get(&d).and_then(|m| m.get(j)).copied().unwrap_or(0))
                .collect()
        })
        .collect();
    let names = jails
        .iter()
        .map(|&j| events.jails.get(j).to_owned())
        .collect();
    (days, names, counts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::model::{Range, days_from_civil};

    fn events(list: &[(&str, &str, &str, Kind)]) -> Events {
        let mut ev = Events::default();
        for (day, addr, jail, kind) in list {
            let (y, m, d) = (
                day[0..4].parse().expect("y"),
                day[5..7].parse().expect("m"),
                day[8..10].parse().expect("d"),
            );
            let jail = ev.jails.intern(jail);
            ev.push(
                &Range::default(),
                Event {
                    time: days_from_civil(y, m, d) * DAY + 3600,
                    kind: *kind,
                    target: crate::addr::parse_target(addr).expect("addr"),
                    jail,
                    filter: None,
                    user: None,
                    count: 1,
                },
            );
        }
        ev
    }

    fn opts() -> Options<'static> {
        Options {
            prefix4: 24,
            prefix6: 64,
            top: None,
            min: 2,
            geo: None,
        }
    }

    fn texts(t: &Table) -> Vec<Vec<String>> {
        t.rows
            .iter()
            .map(|r| r.iter().map(Cell::text).collect())
            .collect()
    }

    #[test]
    fn ip_counts_bans_only_most_first() {
        let ev = events(&[
            ("2026-01-01", "192.0.2.1", "ssh", Kind::Ban),
            ("2026-01-02", "192.0.2.1", "web", Kind::Ban),
            ("2026-01-02", "192.0.2.1", "web", Kind::Restore),
            ("2026-01-02", "192.0.2.9", "ssh", Kind::Found),
            ("2026-01-02", "198.51.100.2", "ssh", Kind::Ban),
        ]);
        let t = build(View::Ip, &ev, &opts()).expect("view");
        let rows = texts(&t);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0][..3], ["192.0.2.1", "2", "ssh,web"]);
        assert_eq!(rows[1][..2], ["198.51.100.2", "1"]);
        let t = build(View::Offender, &ev, &opts()).expect("view");
        assert_eq!(t.rows.len(), 1);
    }

    #[test]
    fn subnet_day_jail_and_top() {
        let ev = events(&[
            ("2026-01-01", "192.0.2.1", "ssh", Kind::Ban),
            ("2026-01-01", "192.0.2.200", "ssh", Kind::Ban),
            ("2026-01-03", "2001:db8:1:2::5", "web", Kind::Ban),
            ("2026-01-03", "2001:db8:1:2::6", "web", Kind::Ban),
            ("2026-01-03", "2001:db8:1:2::6", "web", Kind::Ban),
            ("2026-01-03", "203.0.113.0/24", "manual", Kind::Ban),
        ]);
        let t = build(View::Subnet, &ev, &opts()).expect("view");
        assert_eq!(
            texts(&t),
            [
                ["2001:db8:1:2::/64", "3", "2"],
                ["192.0.2.0/24", "2", "2"],
                ["203.0.113.0/24", "1", "1"]
            ]
        );
        let mut o = opts();
        o.prefix4 = 16;
        let t = build(View::Subnet, &ev, &o).expect("view");
        assert_eq!(texts(&t)[1], ["192.0.0.0/16", "2", "2"]);
        let t = build(View::Day, &ev, &opts()).expect("view");
        assert_eq!(
            texts(&t),
            [
                ["2026-01-01", "ssh", "2"],
                ["2026-01-03", "manual", "1"],
                ["2026-01-03", "web", "3"]
            ]
        );
        o.top = Some(1);
        let t = build(View::Day, &ev, &o).expect("view");
        assert_eq!(
            texts(&t),
            [["2026-01-03", "manual", "1"], ["2026-01-03", "web", "3"]],
            "--top 1 keeps the last day whole"
        );
        let t = build(View::Jail, &ev, &o).expect("view");
        assert_eq!(texts(&t), [["2001:db8:1:2::6", "web", "2"]]);
        assert_eq!(t.total_rows, 5);
        let s = summary(&ev);
        assert_eq!(s.bans, 6);
        let per_day: Vec<(&str, u64)> =
            s.per_day.iter().map(|d| (d.day.as_str(), d.bans)).collect();
        assert_eq!(
            per_day,
            [("2026-01-01", 2), ("2026-01-02", 0), ("2026-01-03", 4)]
        );
        assert_eq!(s.last_day.as_ref().map(|d| d.bans), Some(4));
        assert_eq!(s.last_day.and_then(|d| d.top_jail).as_deref(), Some("web"));
    }

    /// Offence counts (the state database's `Found` rows) with users, next to
    /// bans: what each address did before any ban, and the accounts tried.
    fn with_offences() -> Events {
        let mut ev = events(&[
            ("2026-01-01", "192.0.2.1", "ssh", Kind::Ban),
            ("2026-01-01", "192.0.2.2", "web", Kind::Ban),
        ]);
        let root = ev.users.intern("root");
        let hostile = ev.users.intern("adm\n\x1b[31min");
        ev.events[0].user = Some(root);
        let sshd = ev.filters.intern("sshd");
        let both = ev.jails.intern("ssh,ssh-long");
        for (addr, user, count) in [
            ("192.0.2.1", Some(root), 5),
            ("192.0.2.1", Some(hostile), 2),
            // Never banned: only its offences tell what it did.
            ("198.51.100.3", Some(root), 7),
            ("198.51.100.3", None, 1),
        ] {
            ev.events.push(Event {
                time: days_from_civil(2026, 1, 1) * DAY,
                kind: Kind::Found,
                target: crate::addr::parse_target(addr).expect("addr"),
                jail: both,
                filter: Some(sshd),
                user,
                count,
            });
        }
        ev
    }

    #[test]
    fn filter_view_sums_offence_counts_before_any_ban() {
        let t = build(View::Filter, &with_offences(), &opts()).expect("view");
        assert_eq!(
            texts(&t),
            [["sshd", "198.51.100.3", "8"], ["sshd", "192.0.2.1", "7"]]
        );
        assert_eq!(summary(&with_offences()).offences, 15);
    }

    #[test]
    fn jail_view_shows_offences_in_every_jail_the_filter_fed() {
        let t = build(View::Jail, &with_offences(), &opts()).expect("view");
        assert_eq!(
            t.columns.iter().map(|c| c.name).collect::<Vec<_>>(),
            ["address", "jail", "bans", "offences"]
        );
        assert_eq!(
            texts(&t),
            [
                ["192.0.2.1", "ssh", "1", "7"],
                ["192.0.2.2", "web", "1", "0"],
                ["198.51.100.3", "ssh", "0", "8"],
                ["198.51.100.3", "ssh-long", "0", "8"],
                ["192.0.2.1", "ssh-long", "0", "7"],
            ]
        );
    }

    #[test]
    fn user_view_counts_accounts_tried_and_escapes_them() {
        let t = build(View::User, &with_offences(), &opts()).expect("view");
        assert_eq!(
            texts(&t),
            [
                ["root", "12", "1", "2"],
                ["adm\\u{a}\\u{1b}[31min", "2", "0", "1"],
            ]
        );
    }

    #[test]
    fn geo_views_need_a_database() {
        assert_eq!(
            build(View::Asn, &Events::default(), &opts()),
            Err(ViewError::NeedsGeoip("asn"))
        );
    }
}
