//! Case 4, second half: how many packets per second one receiving core drops when
//! banned sources flood it, for log2drop's XDP program and nftables backend and for
//! the other ways to drop them (xdp-filter, an nftables set in the input chain and in a netdev ingress
//! chain, ipset + iptables, and one iptables rule per ban as fail2ban does), at
//! 1,000 and 10,000 bans; and how much traffic from sources that are not banned
//! still gets through each of them.
//!
//! Each method gets a fresh pair of namespaces ([`FloodLab`]), so nothing one
//! method installs can affect the next, and the namespace's removal cleans up
//! whatever a tool left behind.

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use ipnet::IpNet;

use log2drop::backend::nftables::NftablesBackend;
use log2drop::backend::nftables::config::{NftAction, NftHook, NftablesConfig};
use log2drop::backend::xdp::XdpBackend;
use log2drop::backend::xdp::config::{XdpConfig, XdpMode};
use log2drop_bench::report::{self, CaseReport, Cell, Table};
use log2drop_bench::stats;
use log2drop_tests::PinDir;

use super::{Ctx, RUNS};
use crate::addrs;
use crate::floodlab::{FloodLab, Sample};
use crate::proc;
use crate::xdplab::DAEMON_BATCH;

/// How the receiver drops banned sources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Nothing,
    Log2drop,
    Log2dropNftIngress,
    Log2dropNftInput,
    XdpFilter,
    NftInput,
    NftIngress,
    IpsetIptables,
    IptablesPerBan,
}

impl Method {
    fn label(self) -> &'static str {
        match self {
            Method::Nothing => "no filter, no bans (frames reach a closed UDP port)",
            Method::Log2drop => "log2drop XDP (native)",
            Method::Log2dropNftIngress => "log2drop nftables backend, netdev ingress",
            Method::Log2dropNftInput => "log2drop nftables backend, inet input",
            Method::XdpFilter => "xdp-filter (native, ipv4+ipv6)",
            Method::NftInput => "nftables set, inet input chain",
            Method::NftIngress => "nftables set, netdev ingress chain",
            Method::IpsetIptables => "ipset + one iptables rule",
            Method::IptablesPerBan => "one iptables rule per ban (fail2ban)",
        }
    }

    /// Short name for `LOG2DROP_BENCH_FLOOD`.
    fn key(self) -> &'static str {
        match self {
            Method::Nothing => "none",
            Method::Log2drop => "log2drop-xdp",
            Method::Log2dropNftIngress => "log2drop-nft-ingress",
            Method::Log2dropNftInput => "log2drop-nft-input",
            Method::XdpFilter => "xdp-filter",
            Method::NftInput => "nft-input",
            Method::NftIngress => "nft-ingress",
            Method::IpsetIptables => "ipset",
            Method::IptablesPerBan => "iptables-per-ban",
        }
    }

    /// The Debian package it needs, if any.
    fn package(self) -> Option<&'static str> {
        match self {
            Method::Nothing | Method::Log2drop => None,
            Method::Log2dropNftIngress | Method::Log2dropNftInput => None,
            Method::XdpFilter => Some("xdp-tools"),
            Method::NftInput | Method::NftIngress => Some("nftables"),
            Method::IpsetIptables => Some("ipset"),
            Method::IptablesPerBan => Some("iptables"),
        }
    }
}

/// The flooding sources that are banned: the 508 documentation addresses of
/// 198.51.100.0/24 and 203.0.113.0/24.
fn banned_sources() -> Vec<Ipv4Addr> {
    (254..addrs::DOC_V4_COUNT).map(addrs::doc_v4).collect()
}

/// Sources that are never banned: 192.0.2.2 to 192.0.2.254 (the receiver is .1).
fn unbanned_sources() -> Vec<Ipv4Addr> {
    (1..254).map(addrs::doc_v4).collect()
}

/// `n` banned addresses: the flooding sources spread evenly among filler keys, so a
/// linear rule list has them at every depth, not all at the top or bottom.
fn ban_list(n: usize) -> Vec<Ipv4Addr> {
    let src = banned_sources();
    let n = n.max(src.len());
    let mut out = Vec::with_capacity(n);
    let mut next_src = 0;
    let mut filler = 0;
    for i in 0..n {
        // Source k goes to position floor(k * n / len).
        if next_src < src.len() && i == next_src * n / src.len() {
            out.push(src[next_src]);
            next_src += 1;
        } else {
            out.push(addrs::filler_v4(filler));
            filler += 1;
        }
    }
    out
}

/// One method at one ban count.
struct Measured {
    bans: usize,
    /// Floods from banned sources.
    banned: Vec<Sample>,
    /// Floods from sources that are not banned (full runs only).
    unbanned: Vec<Sample>,
}

/// Picks the banned or the unbanned floods of a [`Measured`].
type Pick = fn(&Measured) -> &[Sample];

/// Results of one method.
struct Row {
    method: Method,
    cells: Vec<Measured>,
    problem: Option<String>,
}

pub fn run(ctx: &Ctx, rep: &mut CaseReport) -> Result<()> {
    let Some(object) = ctx.flood_object.clone() else {
        rep.note(
            "Flood part skipped: no flood sender object (build it with `cargo xtask \
             build-ebpf`; `cargo xtask bench` passes it).",
        );
        return Ok(());
    };
    let counts: Vec<usize> = if ctx.quick {
        vec![1_000]
    } else {
        vec![1_000, 10_000]
    };
    let big = ctx.size(1_000_000, 100_000);
    let window = Duration::from_millis(ctx.size(1000, 150) as u64);
    let with_unbanned = !ctx.quick;

    let methods = [
        Method::Log2drop,
        Method::XdpFilter,
        Method::Log2dropNftIngress,
        Method::Log2dropNftInput,
        Method::NftIngress,
        Method::NftInput,
        Method::IpsetIptables,
        Method::IptablesPerBan,
    ];
    // Iterating on one filter: LOG2DROP_BENCH_FLOOD=log2drop,xdp-filter runs only the
    // named methods (labels' first word, or `nft`, `ipset`, `iptables`) and skips the
    // no-filter baseline unless `none` is named.
    let only = std::env::var("LOG2DROP_BENCH_FLOOD").ok();
    let wanted = |m: Method| {
        only.as_deref().is_none_or(|list| {
            list.split(',')
                .any(|w| !w.is_empty() && m.key().starts_with(w.trim()))
        })
    };
    let methods: Vec<Method> = methods.into_iter().filter(|m| wanted(*m)).collect();
    let mut rows: Vec<Row> = Vec::new();

    // Baseline: nothing installed.
    if wanted(Method::Nothing) {
        let lab = FloodLab::new(&object)?;
        let banned = floods(&lab, &banned_sources(), window)?;
        rows.push(Row {
            method: Method::Nothing,
            cells: vec![Measured {
                bans: 0,
                banned,
                unbanned: Vec::new(),
            }],
            problem: None,
        });
    }
    for method in methods {
        let mut row = Row {
            method,
            cells: Vec::new(),
            problem: None,
        };
        if let Some(pkg) = method.package()
            && let Err(why) = ctx.tools.check(pkg)
        {
            row.problem = Some(why);
            rows.push(row);
            continue;
        }
        let mut sizes = counts.clone();
        if method == Method::Log2drop {
            sizes.push(big);
        }
        for &n in &sizes {
            match measure(ctx, &object, method, n, window, with_unbanned) {
                Ok(m) => row.cells.push(m),
                Err(e) => {
                    row.problem = Some(format!("failed at {n} bans: {e:#}"));
                    break;
                }
            }
        }
        rows.push(row);
    }

    let mut columns: Vec<String> = vec!["method".into()];
    for n in &counts {
        columns.push(format!("{n} bans"));
    }
    columns.push(format!("{big} bans"));
    columns.push(format!("log2drop is faster by (at {} bans)", counts[0]));
    let col_refs: Vec<&str> = columns.iter().map(String::as_str).collect();
    let ours_at = |rows: &[Row], pick: Pick| {
        rows.iter()
            .find(|r| r.method == Method::Log2drop)
            .and_then(|r| r.cells.iter().find(|c| c.bans == counts[0]))
            .and_then(|c| stats::median(&pps(pick(c))))
            .unwrap_or(f64::NAN)
    };

    let mut dropped = Table::new(
        &format!(
            "Flood from 508 banned sources: packets per second one receiving core handles \
             (median of {RUNS} floods of {})",
            report::secs(window.as_secs_f64())
        ),
        &col_refs,
    );
    let ours = ours_at(&rows, |c| &c.banned);
    for r in &rows {
        dropped.row(table_row(r, &counts, big, ours, |c| &c.banned));
    }
    rep.tables.push(dropped);
    if with_unbanned {
        let mut passed = Table::new(
            "Flood from 253 unbanned sources through the same filters: packets per second \
             per receiving core (the cost to traffic that is not banned)",
            &col_refs,
        );
        let ours = ours_at(&rows, |c| &c.unbanned);
        for r in rows.iter().filter(|r| r.method != Method::Nothing) {
            passed.row(table_row(r, &counts, big, ours, |c| &c.unbanned));
        }
        rep.tables.push(passed);
    }
    let busy: Vec<f64> = rows
        .iter()
        .flat_map(|r| r.cells.iter())
        .flat_map(|c| c.banned.iter().chain(c.unbanned.iter()))
        .map(|s| s.busy)
        .collect();
    if let Some(b) = stats::median(&busy) {
        rep.note(format!(
            "The receiving NAPI thread was on its CPU {:.0}% of the measured windows \
             (median over all floods); below 100% means it shared the CPU with other \
             work or was not saturated. The per-core figures divide by the CPU time it \
             actually had.",
            b * 100.0
        ));
    }
    for r in &rows {
        if let Some(p) = &r.problem {
            rep.note(format!("{}: {p}", r.method.label()));
        }
    }
    rep.command(format!(
        "sender: log2drop-flood XDP program, BPF_PROG_RUN live frames (batch 64) in the \
         attacker namespace on CPU {}, redirecting 60-byte UDP frames to the veth; \
         receiver: threaded NAPI pinned to CPU {}, GRO on; packets/s per core = frames \
         the receiver took / CPU time of its NAPI thread",
        crate::floodlab::SENDER_CPU,
        crate::floodlab::RECEIVER_CPU
    ));
    rep.note(
        "Figures are per receiving core: frames the receiving veth took off its ring \
         divided by the CPU time of its NAPI thread, which runs the filter. Frames a \
         saturated receiver could not take are not counted. Ratios divide log2drop's \
         figure by the method's.",
    );
    rep.note(format!(
        "Bans beyond the 508 flooding sources are filler addresses from 240.0.0.0/4; in \
         the per-ban iptables chain the flooding sources sit at evenly spread depths. \
         iptables is {}.",
        iptables_version()
    ));
    Ok(())
}

fn pps(samples: &[Sample]) -> Vec<f64> {
    samples.iter().map(|s| s.per_core_pps).collect()
}

fn table_row(r: &Row, counts: &[usize], big: usize, ours: f64, pick: Pick) -> Vec<Cell> {
    let cell = |n: usize| -> Cell {
        // The baseline has no bans; it is shown once, in the first column.
        let found = if r.method == Method::Nothing {
            r.cells.first().filter(|_| n == counts[0])
        } else {
            r.cells.iter().find(|c| c.bans == n)
        };
        match found {
            Some(c) if !pick(c).is_empty() => Cell::median(&pps(pick(c)), "packets/s", |x| {
                format!("{} ({})", report::rate(x), report::secs(1.0 / x))
            }),
            _ if r.problem.is_some() => Cell::text("not available"),
            _ => Cell::text("-"),
        }
    };
    let mut cells = vec![Cell::text(r.method.label())];
    for &n in counts {
        cells.push(cell(n));
    }
    cells.push(if r.method == Method::Log2drop {
        cell(big)
    } else {
        Cell::text("-")
    });
    let theirs = r
        .cells
        .iter()
        .find(|c| r.method == Method::Nothing || c.bans == counts[0])
        .and_then(|c| stats::median(&pps(pick(c))));
    cells.push(match (r.method, theirs) {
        (Method::Log2drop, _) => Cell::text("-"),
        (_, Some(t)) => Cell::value(
            stats::ratio(ours, t).unwrap_or(f64::NAN),
            "ratio",
            report::times(ours, t),
        ),
        (_, None) => Cell::text("n/a"),
    });
    cells
}

/// One method at `n` bans in a fresh lab: banned floods, then (if asked) unbanned.
fn measure(
    ctx: &Ctx,
    object: &std::path::Path,
    method: Method,
    n: usize,
    window: Duration,
    with_unbanned: bool,
) -> Result<Measured> {
    let lab = FloodLab::new(object)?;
    let installed = install(ctx, &lab, method, &ban_list(n))
        .with_context(|| format!("installing {} with {n} bans", method.label()))?;
    let banned = floods(&lab, &banned_sources(), window)?;
    // A filter that silently passed the flood would look like the baseline; its own
    // counter must show the drops.
    let counted = dropped_by_filter(&lab, method, &installed)?;
    if counted == 0 {
        bail!(
            "{} counted no drops under a flood from banned sources",
            method.label()
        );
    }
    let unbanned = if with_unbanned {
        floods(&lab, &unbanned_sources(), window)?
    } else {
        Vec::new()
    };
    Ok(Measured {
        bans: n,
        banned,
        unbanned,
    })
}

/// `RUNS` floods from `sources`.
fn floods(lab: &FloodLab, sources: &[Ipv4Addr], window: Duration) -> Result<Vec<Sample>> {
    (0..RUNS).map(|_| lab.flood(sources, window)).collect()
}

/// What a method installed; dropping it removes what the namespace would not.
enum Installed {
    Nothing,
    Log2drop {
        backend: Option<Box<XdpBackend>>,
        pins: PinDir,
    },
    /// The table stays in the namespace and goes with it.
    Log2dropNft(Box<NftablesBackend>),
    XdpFilter {
        rx: std::path::PathBuf,
        ifname: String,
    },
}

impl Drop for Installed {
    fn drop(&mut self) {
        match self {
            Installed::Nothing | Installed::Log2dropNft(_) => {}
            Installed::Log2drop { backend, pins } => {
                // Close our descriptors first, or they keep the program alive.
                drop(backend.take());
                if let Err(e) = XdpBackend::detach_and_unpin(pins.path()) {
                    eprintln!("warning: cannot unpin {}: {e}", pins.path().display());
                }
            }
            Installed::XdpFilter { rx, ifname } => {
                let argv =
                    log2drop_tests::cmd::in_netns(rx, &["xdp-filter", "unload", ifname.as_str()]);
                let out = log2drop_tests::cmd::output(&argv);
                if !out.status.success() {
                    eprintln!(
                        "warning: xdp-filter unload {ifname} failed: {}",
                        String::from_utf8_lossy(&out.stderr).trim()
                    );
                }
            }
        }
    }
}

fn install(ctx: &Ctx, lab: &FloodLab, method: Method, bans: &[Ipv4Addr]) -> Result<Installed> {
    let rx = lab.rx();
    let ifname = lab.rx_if();
    match method {
        Method::Nothing => Ok(Installed::Nothing),
        Method::Log2drop => {
            let pins = PinDir::new();
            let cfg = XdpConfig {
                interfaces: vec![ifname.to_owned()],
                pin_dir: pins.path().to_path_buf(),
                mode: XdpMode::Native,
                max_bans: (bans.len() as u32).max(1 << 16).next_power_of_two(),
                max_cidr_bans: 1 << 16,
            };
            let mut backend = {
                let _inside = rx.enter();
                XdpBackend::open(&cfg).context("opening log2drop's XDP backend")?
            };
            let targets: Vec<IpNet> = bans
                .iter()
                .map(|a| IpNet::from(std::net::IpAddr::V4(*a)))
                .collect();
            let now = std::time::SystemTime::now();
            let jail: std::sync::Arc<str> = std::sync::Arc::from("bench");
            for chunk in targets.chunks(DAEMON_BATCH) {
                let batch: Vec<_> = chunk
                    .iter()
                    .map(|t| log2drop::engine::Decision::Ban(crate::xdplab::ban(*t, &jail, now)))
                    .collect();
                log2drop::backend::Backend::apply(&mut backend, &batch, now)?;
            }
            Ok(Installed::Log2drop {
                backend: Some(Box::new(backend)),
                pins,
            })
        }
        Method::Log2dropNftIngress | Method::Log2dropNftInput => {
            let ingress = method == Method::Log2dropNftIngress;
            let cfg = NftablesConfig {
                table: "log2drop".into(),
                hook: if ingress {
                    NftHook::Ingress
                } else {
                    NftHook::Input
                },
                priority: -10,
                interfaces: if ingress {
                    vec![ifname.to_owned()]
                } else {
                    Vec::new()
                },
                action: NftAction::Drop,
                counter: true,
            };
            let mut backend = {
                let _inside = rx.enter();
                NftablesBackend::open(&cfg).context("opening log2drop's nftables backend")?
            };
            let now = std::time::SystemTime::now();
            let jail: std::sync::Arc<str> = std::sync::Arc::from("bench");
            let targets: Vec<IpNet> = bans
                .iter()
                .map(|a| IpNet::from(std::net::IpAddr::V4(*a)))
                .collect();
            for chunk in targets.chunks(DAEMON_BATCH) {
                let batch: Vec<_> = chunk
                    .iter()
                    .map(|t| {
                        let mut b = crate::xdplab::ban(*t, &jail, now);
                        b.until = Some(now + std::time::Duration::from_secs(3600));
                        log2drop::engine::Decision::Ban(b)
                    })
                    .collect();
                log2drop::backend::Backend::apply(&mut backend, &batch, now)?;
            }
            Ok(Installed::Log2dropNft(Box::new(backend)))
        }
        Method::XdpFilter => {
            proc::run(&rx.command(&[
                "xdp-filter",
                "load",
                "-m",
                "native",
                "-f",
                "ipv4,ipv6",
                ifname,
            ]))?;
            let installed = Installed::XdpFilter {
                rx: rx.path().to_path_buf(),
                ifname: ifname.to_owned(),
            };
            for a in bans {
                proc::run(&rx.command(&["xdp-filter", "ip", "-m", "src", &a.to_string()]))?;
            }
            Ok(installed)
        }
        Method::NftInput | Method::NftIngress => {
            let mut text = String::new();
            if method == Method::NftInput {
                text.push_str(
                    "table inet l2dbench {\n  set banned { type ipv4_addr; size 2000000; }\n  \
                     chain input { type filter hook input priority 0; policy accept; \
                     ip saddr @banned counter drop; }\n}\n",
                );
                text.push_str("add element inet l2dbench banned {\n");
            } else {
                let _ = write!(
                    text,
                    "table netdev l2dbench {{\n  set banned {{ type ipv4_addr; size 2000000; }}\n  \
                     chain ingress {{ type filter hook ingress device \"{ifname}\" priority 0; \
                     policy accept; ip saddr @banned counter drop; }}\n}}\n"
                );
                text.push_str("add element netdev l2dbench banned {\n");
            }
            for a in bans {
                let _ = writeln!(text, "{a},");
            }
            text.push_str("}\n");
            let file = ctx.scratch.join("flood-ruleset.nft");
            std::fs::write(&file, text).with_context(|| format!("writing {}", file.display()))?;
            proc::run(&rx.command(&["nft", "-f", &file.to_string_lossy()]))?;
            Ok(Installed::Nothing)
        }
        Method::IpsetIptables => {
            proc::run(
                &rx.command(&["ipset", "create", "banned", "hash:ip", "maxelem", "2000000"]),
            )?;
            let mut text = String::new();
            for a in bans {
                let _ = writeln!(text, "add banned {a}");
            }
            let file = ctx.scratch.join("flood-ipset.txt");
            std::fs::write(&file, text).with_context(|| format!("writing {}", file.display()))?;
            proc::timed(
                &mut command(&rx.command(&["ipset", "restore"])),
                Some(&file),
            )?;
            proc::run(&rx.command(&[
                "iptables",
                "-w",
                "-I",
                "INPUT",
                "-m",
                "set",
                "--match-set",
                "banned",
                "src",
                "-j",
                "DROP",
            ]))?;
            Ok(Installed::Nothing)
        }
        Method::IptablesPerBan => {
            let mut text = String::from("*filter\n:f2b-bench - [0:0]\n-A INPUT -j f2b-bench\n");
            // fail2ban inserts each new ban at the top of its chain.
            for a in bans.iter().rev() {
                let _ = writeln!(text, "-A f2b-bench -s {a}/32 -j DROP");
            }
            text.push_str("COMMIT\n");
            let file = ctx.scratch.join("flood-iptables.rules");
            std::fs::write(&file, text).with_context(|| format!("writing {}", file.display()))?;
            proc::timed(
                &mut command(&rx.command(&["iptables-restore", "-w", "--noflush"])),
                Some(&file),
            )?;
            let rules = proc::run(&rx.command(&["iptables", "-w", "-S", "f2b-bench"]))?;
            let n = rules.lines().filter(|l| l.starts_with("-A")).count();
            if n != bans.len() {
                bail!("iptables holds {n} rules after restoring {}", bans.len());
            }
            Ok(Installed::Nothing)
        }
    }
}

/// Packets the installed filter says it dropped (its own counters).
fn dropped_by_filter(lab: &FloodLab, method: Method, installed: &Installed) -> Result<u64> {
    let rx = lab.rx();
    Ok(match (method, installed) {
        (
            Method::Log2drop,
            Installed::Log2drop {
                backend: Some(b), ..
            },
        ) => log2drop::backend::Backend::counters(b.as_ref())?
            .iter()
            .map(|(_, c)| c.packets)
            .sum(),
        // Read over the backend's own socket, in the namespace it was opened in.
        (Method::Log2dropNftIngress | Method::Log2dropNftInput, Installed::Log2dropNft(b)) => {
            b.rule_counter()?.map_or(0, |c| c.packets)
        }
        (Method::NftInput, _) => counter_sum(&proc::run(
            &rx.command(&["nft", "list", "table", "inet", "l2dbench"]),
        )?),
        (Method::NftIngress, _) => counter_sum(&proc::run(
            &rx.command(&["nft", "list", "table", "netdev", "l2dbench"]),
        )?),
        (Method::IpsetIptables, _) => iptables_sum(&proc::run(
            &rx.command(&["iptables", "-w", "-L", "INPUT", "-v", "-n", "-x"]),
        )?),
        (Method::IptablesPerBan, _) => iptables_sum(&proc::run(&rx.command(&[
            "iptables",
            "-w",
            "-L",
            "f2b-bench",
            "-v",
            "-n",
            "-x",
        ]))?),
        (Method::XdpFilter, _) => {
            let out = proc::run(&rx.command(&["xdp-filter", "status"]))?;
            xdp_filter_drops(&out)
        }
        _ => 0,
    })
}

/// Sum of `counter packets N` in an nft listing.
fn counter_sum(listing: &str) -> u64 {
    let words: Vec<&str> = listing.split_whitespace().collect();
    words
        .windows(3)
        .filter(|w| w[0] == "counter" && w[1] == "packets")
        .filter_map(|w| w[2].parse::<u64>().ok())
        .sum()
}

/// Sum of the packet counts of DROP rules in `iptables -L -v -n -x`.
fn iptables_sum(listing: &str) -> u64 {
    listing
        .lines()
        .filter(|l| l.split_whitespace().nth(2) == Some("DROP"))
        .filter_map(|l| l.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// The packet count on xdp-filter's `XDP_DROP` status line.
fn xdp_filter_drops(status: &str) -> u64 {
    status
        .lines()
        .find(|l| l.trim_start().starts_with("XDP_DROP"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn command(argv: &[std::ffi::OsString]) -> std::process::Command {
    let mut c = std::process::Command::new(&argv[0]);
    c.args(&argv[1..]);
    c
}

fn iptables_version() -> String {
    proc::run(&["iptables", "-V"])
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "not installed".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ban_lists_hold_every_source_once_spread_out() {
        for n in [508, 1000, 10_000] {
            let list = ban_list(n);
            assert_eq!(list.len(), n);
            let set: HashSet<_> = list.iter().collect();
            assert_eq!(set.len(), n, "no duplicates");
            let srcs = banned_sources();
            let positions: Vec<usize> = srcs
                .iter()
                .map(|s| {
                    list.iter()
                        .position(|a| a == s)
                        .expect("every source is banned")
                })
                .collect();
            assert!(positions.windows(2).all(|w| w[0] < w[1]));
            assert!(positions[0] < n / 100 + 1);
            assert!(*positions.last().expect("non-empty") > n - n / 100 - 2);
        }
    }

    #[test]
    fn filter_counters_parse() {
        let nft = "table inet l2dbench {\n\tchain input {\n\t\tip saddr @banned counter packets 1234 bytes 74040 drop\n\t}\n}\n";
        assert_eq!(counter_sum(nft), 1234);
        let ipt = "Chain INPUT (policy ACCEPT 0 packets, 0 bytes)\n    pkts      bytes target     prot opt in     out     source               destination\n  987654 59259240 DROP       0    --  *      *       0.0.0.0/0            0.0.0.0/0            match-set banned src\n";
        assert_eq!(iptables_sum(ipt), 987_654);
        let xf = "  XDP_PASS      0 pkts  0 KiB\n  XDP_DROP      4321 pkts  253 KiB\n";
        assert_eq!(xdp_filter_drops(xf), 4321);
    }

    #[test]
    fn unbanned_sources_are_not_banned_and_exclude_the_receiver() {
        let banned: HashSet<_> = ban_list(10_000).into_iter().collect();
        let un = unbanned_sources();
        assert_eq!(un.len(), 253);
        assert!(un.iter().all(|a| !banned.contains(a)));
        assert!(!un.contains(&crate::floodlab::RECEIVER_V4));
    }
}
