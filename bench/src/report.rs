//! What a bench run produces and how it is written down: the machine it ran on, one
//! section per case with tables of figures (each figure keeps its raw samples), the
//! notes that say what a figure means, and the commands that produced it. The same
//! [`Report`] is printed as aligned tables, written as `results.md` and serialised
//! as `results.json`, so the three never disagree.

use std::fmt::Write as _;

use serde::Serialize;

use crate::stats;

/// Version of the JSON layout; bump it when a field changes meaning.
pub const SCHEMA_VERSION: u32 = 1;

/// A whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// [`SCHEMA_VERSION`].
    pub schema: u32,
    /// `full` or `quick`.
    pub mode: String,
    /// When the run started, RFC 3339 UTC.
    pub started: String,
    /// How long the run took, in seconds.
    pub elapsed_secs: f64,
    /// The command that produced this report.
    pub command: String,
    /// Where it ran.
    pub machine: Machine,
    /// Competitor packages and whether they could be used.
    pub tools: Vec<ToolStatus>,
    /// One entry per case, in order.
    pub cases: Vec<CaseReport>,
}

/// The machine description written next to the figures.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Machine {
    /// CPU model name as `/proc/cpuinfo` says.
    pub cpu_model: String,
    /// Online CPUs.
    pub cores: usize,
    /// `uname -r`.
    pub kernel: String,
    /// `PRETTY_NAME` of `/etc/os-release`.
    pub os: String,
    /// Total memory in MiB.
    pub memory_mib: u64,
    /// Load averages (1, 5, 15 min) when the run started: other work on the machine
    /// disturbs the figures, and this says how much there was.
    pub load_at_start: String,
    /// The agent version the figures are for.
    pub log2drop_version: String,
}

/// One competitor package.
#[derive(Debug, Clone, Serialize)]
pub struct ToolStatus {
    /// Debian package name.
    pub package: String,
    /// Installed version, when usable.
    pub version: Option<String>,
    /// Whether this run installed it.
    pub installed_now: bool,
    /// Why it cannot be used, when it cannot.
    pub problem: Option<String>,
}

/// How a case ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum CaseStatus {
    /// Every part ran (some competitor rows may still say why they are missing).
    Ok,
    /// The case stopped with an error; the tables hold what was measured before it.
    Failed {
        /// The error, with its causes.
        error: String,
    },
    /// The case did not run.
    Skipped {
        /// Why.
        reason: String,
    },
}

/// One case's section.
#[derive(Debug, Clone, Serialize)]
pub struct CaseReport {
    /// Case number from the issue (1-6).
    pub id: u32,
    /// Short name, as `--only` takes it.
    pub name: String,
    /// Heading.
    pub title: String,
    /// How it ended.
    pub status: CaseStatus,
    /// Wall time of the case, in seconds.
    pub elapsed_secs: f64,
    /// Figures.
    pub tables: Vec<Table>,
    /// What the figures mean, caveats, missing competitors.
    pub notes: Vec<String>,
    /// The commands (or library calls) that were timed.
    pub commands: Vec<String>,
}

impl CaseReport {
    /// An empty section that is `Ok` until told otherwise.
    pub fn new(id: u32, name: &str, title: &str) -> CaseReport {
        CaseReport {
            id,
            name: name.to_owned(),
            title: title.to_owned(),
            status: CaseStatus::Ok,
            elapsed_secs: 0.0,
            tables: Vec::new(),
            notes: Vec::new(),
            commands: Vec::new(),
        }
    }

    /// Adds a note.
    pub fn note(&mut self, text: impl Into<String>) {
        self.notes.push(text.into());
    }

    /// Records a timed command.
    pub fn command(&mut self, text: impl Into<String>) {
        self.commands.push(text.into());
    }
}

/// A table of figures.
#[derive(Debug, Clone, Serialize)]
pub struct Table {
    /// Caption.
    pub title: String,
    /// Column headings.
    pub columns: Vec<String>,
    /// Rows, each as long as `columns`.
    pub rows: Vec<Vec<Cell>>,
}

impl Table {
    /// An empty table.
    pub fn new(title: &str, columns: &[&str]) -> Table {
        Table {
            title: title.to_owned(),
            columns: columns.iter().map(|c| (*c).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row, padding or cutting it to the column count.
    pub fn row(&mut self, mut cells: Vec<Cell>) {
        cells.resize_with(self.columns.len(), Cell::empty);
        self.rows.push(cells);
    }
}

/// One table cell: its text, and for a figure its value, unit and raw samples.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cell {
    /// What the table shows.
    pub text: String,
    /// The figure (the median when there are samples).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// Unit of `value` and `samples`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// Every run's value, in run order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub samples: Vec<f64>,
}

impl Cell {
    /// A text cell.
    pub fn text(text: impl Into<String>) -> Cell {
        Cell {
            text: text.into(),
            value: None,
            unit: None,
            samples: Vec::new(),
        }
    }

    /// An empty cell.
    pub fn empty() -> Cell {
        Cell::text("")
    }

    /// A single figure shown as `text`.
    pub fn value(value: f64, unit: &str, text: impl Into<String>) -> Cell {
        Cell {
            text: text.into(),
            value: Some(value),
            unit: Some(unit.to_owned()),
            samples: Vec::new(),
        }
    }

    /// The median of `samples`, formatted by `fmt`; "n/a" when there is none.
    pub fn median(samples: &[f64], unit: &str, fmt: impl Fn(f64) -> String) -> Cell {
        match stats::median(samples) {
            Some(m) => Cell {
                text: fmt(m),
                value: Some(m),
                unit: Some(unit.to_owned()),
                samples: samples.to_vec(),
            },
            None => Cell::text("n/a"),
        }
    }
}

/// `1.23 M`, `456 k`, `789`: three significant digits with an SI prefix.
pub fn si(x: f64) -> String {
    let (v, prefix) = if x.abs() >= 1e9 {
        (x / 1e9, " G")
    } else if x.abs() >= 1e6 {
        (x / 1e6, " M")
    } else if x.abs() >= 1e3 {
        (x / 1e3, " k")
    } else {
        (x, " ")
    };
    let digits = if v.abs() >= 100.0 {
        0
    } else if v.abs() >= 10.0 {
        1
    } else {
        2
    };
    format!("{v:.digits$}{prefix}").trim_end().to_owned()
}

/// A rate: `1.23 M/s`.
pub fn rate(per_sec: f64) -> String {
    format!("{}/s", si(per_sec))
}

/// A duration given in seconds, in the unit that reads best: `850 ns`, `12.3 µs`,
/// `4.56 ms`, `1.23 s`.
pub fn secs(s: f64) -> String {
    let a = s.abs();
    let (v, unit) = if a < 1e-6 {
        (s * 1e9, "ns")
    } else if a < 1e-3 {
        (s * 1e6, "µs")
    } else if a < 1.0 {
        (s * 1e3, "ms")
    } else {
        (s, "s")
    };
    let digits = if v.abs() >= 100.0 {
        0
    } else if v.abs() >= 10.0 {
        1
    } else {
        2
    };
    format!("{v:.digits$} {unit}")
}

/// Bytes in binary units: `512 B`, `1.5 KiB`, `84.0 MiB`, `1.02 GiB`.
pub fn bytes(b: f64) -> String {
    const K: f64 = 1024.0;
    if b < K {
        format!("{b:.0} B")
    } else if b < K * K {
        format!("{:.1} KiB", b / K)
    } else if b < K * K * K {
        format!("{:.1} MiB", b / (K * K))
    } else {
        format!("{:.2} GiB", b / (K * K * K))
    }
}

/// How many times faster (or slower) `ours` is than `theirs`, for throughput-like
/// figures where bigger is better: `12.3x`, or `0.50x` when ours is slower.
pub fn times(ours: f64, theirs: f64) -> String {
    match stats::ratio(ours, theirs) {
        Some(r) if r >= 10.0 => format!("{r:.0}x"),
        Some(r) => format!("{r:.2}x"),
        None => "n/a".to_owned(),
    }
}

impl Report {
    /// The report as Markdown: the machine, a summary table of the cases, then one
    /// section per case.
    pub fn to_markdown(&self) -> String {
        let mut md = String::new();
        let _ = writeln!(md, "# log2drop benchmarks");
        let _ = writeln!(md);
        let _ = writeln!(
            md,
            "Written by `{}` on {} ({} mode, {:.0} s). Every figure is the median of the \
             runs listed in results.json unless a column says otherwise; ratios compare \
             figures measured in this same run. Regenerate as root with `cargo xtask bench` \
             (full) or `cargo xtask bench --quick`.",
            self.command, self.started, self.mode, self.elapsed_secs
        );
        let _ = writeln!(md);
        let _ = writeln!(md, "## Machine");
        let _ = writeln!(md);
        let m = &self.machine;
        let _ = writeln!(md, "- CPU: {} ({} cores online)", m.cpu_model, m.cores);
        let _ = writeln!(md, "- Memory: {} MiB", m.memory_mib);
        let _ = writeln!(md, "- Kernel: {}", m.kernel);
        let _ = writeln!(md, "- OS: {}", m.os);
        let _ = writeln!(md, "- Load average at start: {}", m.load_at_start);
        let _ = writeln!(md, "- log2drop: {}", m.log2drop_version);
        let _ = writeln!(md);
        let _ = writeln!(md, "## Competitors");
        let _ = writeln!(md);
        let mut tools = Table::new("", &["package", "version", "note"]);
        for t in &self.tools {
            let note = match (&t.problem, t.installed_now) {
                (Some(p), _) => format!("not usable: {p}"),
                (None, true) => "installed by this run".to_owned(),
                (None, false) => String::new(),
            };
            tools.row(vec![
                Cell::text(&t.package),
                Cell::text(t.version.clone().unwrap_or_else(|| "-".to_owned())),
                Cell::text(note),
            ]);
        }
        md_table(&mut md, &tools);
        let _ = writeln!(md, "## Cases");
        let _ = writeln!(md);
        let mut summary = Table::new("", &["case", "status", "time"]);
        for c in &self.cases {
            summary.row(vec![
                Cell::text(format!("{}. {}", c.id, c.title)),
                Cell::text(status_text(&c.status)),
                Cell::text(format!("{:.1} s", c.elapsed_secs)),
            ]);
        }
        md_table(&mut md, &summary);
        for c in &self.cases {
            let _ = writeln!(md, "## {}. {}", c.id, c.title);
            let _ = writeln!(md);
            if c.status != CaseStatus::Ok {
                let _ = writeln!(md, "**{}**", status_text(&c.status));
                let _ = writeln!(md);
            }
            for t in &c.tables {
                if !t.title.is_empty() {
                    let _ = writeln!(md, "**{}**", t.title);
                    let _ = writeln!(md);
                }
                md_table(&mut md, t);
            }
            for n in &c.notes {
                let _ = writeln!(md, "- {n}");
            }
            if !c.notes.is_empty() {
                let _ = writeln!(md);
            }
            if !c.commands.is_empty() {
                let _ = writeln!(md, "Commands:");
                let _ = writeln!(md);
                let _ = writeln!(md, "```text");
                for cmd in &c.commands {
                    let _ = writeln!(md, "{cmd}");
                }
                let _ = writeln!(md, "```");
                let _ = writeln!(md);
            }
        }
        md
    }

    /// The report as aligned plain-text tables for the terminal.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let m = &self.machine;
        let _ = writeln!(
            out,
            "log2drop bench ({} mode, {:.0} s) on {} ({} cores), kernel {}, load {}",
            self.mode, self.elapsed_secs, m.cpu_model, m.cores, m.kernel, m.load_at_start
        );
        for c in &self.cases {
            let _ = writeln!(out);
            let _ = writeln!(
                out,
                "== {}. {} [{}, {:.1} s]",
                c.id,
                c.title,
                status_text(&c.status),
                c.elapsed_secs
            );
            for t in &c.tables {
                if !t.title.is_empty() {
                    let _ = writeln!(out, "-- {}", t.title);
                }
                text_table(&mut out, t);
            }
            for n in &c.notes {
                let _ = writeln!(out, "  * {n}");
            }
        }
        out
    }
}

fn status_text(s: &CaseStatus) -> String {
    match s {
        CaseStatus::Ok => "ok".to_owned(),
        CaseStatus::Failed { error } => format!("failed: {error}"),
        CaseStatus::Skipped { reason } => format!("skipped: {reason}"),
    }
}

/// Escapes what would break a Markdown table cell.
fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn md_table(md: &mut String, t: &Table) {
    let head: Vec<String> = t.columns.iter().map(|c| md_cell(c)).collect();
    let _ = writeln!(md, "| {} |", head.join(" | "));
    let _ = writeln!(
        md,
        "|{}|",
        t.columns
            .iter()
            .map(|_| "---")
            .collect::<Vec<_>>()
            .join("|")
    );
    for r in &t.rows {
        let cells: Vec<String> = r.iter().map(|c| md_cell(&c.text)).collect();
        let _ = writeln!(md, "| {} |", cells.join(" | "));
    }
    let _ = writeln!(md);
}

fn text_table(out: &mut String, t: &Table) {
    let mut widths: Vec<usize> = t.columns.iter().map(|c| c.chars().count()).collect();
    for r in &t.rows {
        for (i, c) in r.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(c.text.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| -> String {
        let mut s = String::from(" ");
        for (i, c) in cells.iter().enumerate() {
            let pad = widths[i].saturating_sub(c.chars().count());
            s.push(' ');
            s.push_str(c);
            s.push_str(&" ".repeat(pad));
            s.push_str("  ");
        }
        s.trim_end().to_owned()
    };
    let _ = writeln!(
        out,
        "{}",
        line(t.columns.iter().map(String::as_str).collect())
    );
    for r in &t.rows {
        let _ = writeln!(out, "{}", line(r.iter().map(|c| c.text.as_str()).collect()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_report() -> Report {
        let mut case = CaseReport::new(1, "matching", "Matching throughput");
        let mut t = Table::new("sshd", &["tool", "lines/s"]);
        t.row(vec![
            Cell::text("log2drop"),
            Cell::median(&[3e6, 2e6, 4e6], "lines/s", rate),
        ]);
        t.row(vec![Cell::text("a|b")]);
        case.tables.push(t);
        case.note("fail2ban ran on a 100k slice");
        case.command("log2drop test sshd corpus.log");
        Report {
            schema: SCHEMA_VERSION,
            mode: "quick".into(),
            started: "2026-11-21T10:00:00Z".into(),
            elapsed_secs: 12.0,
            command: "cargo xtask bench --quick".into(),
            machine: Machine {
                cpu_model: "Test CPU".into(),
                cores: 2,
                ..Machine::default()
            },
            tools: vec![ToolStatus {
                package: "sshguard".into(),
                version: None,
                installed_now: false,
                problem: Some("apt-get failed".into()),
            }],
            cases: vec![case],
        }
    }

    #[test]
    fn markdown_has_machine_tables_notes_and_commands() {
        let md = sample_report().to_markdown();
        assert!(md.contains("- CPU: Test CPU (2 cores online)"), "{md}");
        assert!(md.contains("| tool | lines/s |"), "{md}");
        assert!(md.contains("| log2drop | 3.00 M/s |"), "{md}");
        assert!(md.contains("a\\|b"), "pipes are escaped: {md}");
        assert!(md.contains("- fail2ban ran on a 100k slice"), "{md}");
        assert!(md.contains("log2drop test sshd corpus.log"), "{md}");
        assert!(md.contains("not usable: apt-get failed"), "{md}");
    }

    #[test]
    fn json_keeps_samples_and_median() {
        let v = serde_json::to_value(sample_report()).expect("serialises");
        let cell = &v["cases"][0]["tables"][0]["rows"][0][1];
        assert_eq!(cell["value"], 3e6);
        assert_eq!(cell["samples"].as_array().map(Vec::len), Some(3));
        assert_eq!(v["cases"][0]["status"]["state"], "ok");
    }

    #[test]
    fn rows_are_padded_to_the_columns() {
        let mut t = Table::new("", &["a", "b", "c"]);
        t.row(vec![Cell::text("x")]);
        assert_eq!(t.rows[0].len(), 3);
    }

    #[test]
    fn text_tables_align() {
        let text = sample_report().to_text();
        assert!(text.contains("== 1. Matching throughput [ok"), "{text}");
        let lines: Vec<&str> = text.lines().filter(|l| l.contains("log2drop")).collect();
        assert!(!lines.is_empty(), "{text}");
    }

    #[test]
    fn unit_formatting() {
        assert_eq!(si(1_234_567.0), "1.23 M");
        assert_eq!(si(45_600.0), "45.6 k");
        assert_eq!(si(789.0), "789");
        assert_eq!(rate(2.5e9), "2.50 G/s");
        assert_eq!(secs(850e-9), "850 ns");
        assert_eq!(secs(12.34e-6), "12.3 µs");
        assert_eq!(secs(4.567e-3), "4.57 ms");
        assert_eq!(secs(1.5), "1.50 s");
        assert_eq!(bytes(512.0), "512 B");
        assert_eq!(bytes(84.0 * 1024.0 * 1024.0), "84.0 MiB");
        assert_eq!(times(30.0, 2.0), "15x");
        assert_eq!(times(1.0, 2.0), "0.50x");
        assert_eq!(times(1.0, 0.0), "n/a");
    }

    #[test]
    fn empty_samples_show_na() {
        assert_eq!(Cell::median(&[], "x", rate).text, "n/a");
    }
}
