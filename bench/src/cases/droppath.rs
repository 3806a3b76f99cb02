//! Case 4, the drop path. First the per-packet cost of log2drop's XDP program alone,
//! through `BPF_PROG_TEST_RUN` on the live maps, with no bans, a thousand and a
//! million (exact addresses and prefixes), for a banned source (hit) and another one
//! (miss), IPv4 and IPv6. That is a hot-cache figure: one frame run over and over.
//! Then the drop rate under a flood on a veth, side by side with the other ways to
//! drop (see [`super::flood`]).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use anyhow::{Result, bail};
use ipnet::IpNet;

use log2drop::backend::xdp::Verdict;
use log2drop_bench::report::{self, CaseReport, Cell, Table};

use super::{Ctx, RUNS};
use crate::addrs;
use crate::frames;
use crate::xdplab::{XdpLab, host};

/// Frames' destination MAC (test-run never looks at it).
const DST_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];

/// The four probes of a row.
struct Probes {
    v4_hit: Vec<u8>,
    v4_miss: Vec<u8>,
    v6_hit: Vec<u8>,
    v6_miss: Vec<u8>,
}

fn v4(src: Ipv4Addr) -> Vec<u8> {
    frames::udp_v4(DST_MAC, src, Ipv4Addr::new(198, 51, 100, 1))
}

fn v6(src: Ipv6Addr) -> Vec<u8> {
    frames::udp_v6(DST_MAC, src, addrs::doc_v6(0xffff))
}

pub fn run(ctx: &Ctx, rep: &mut CaseReport) -> Result<()> {
    // Iterating on the flood alone (see `LOG2DROP_BENCH_FLOOD` in `flood`).
    if std::env::var_os("LOG2DROP_BENCH_NO_TEST_RUN").is_none() {
        test_run(ctx, rep)?;
    }
    super::flood::run(ctx, rep)
}

fn test_run(ctx: &Ctx, rep: &mut CaseReport) -> Result<()> {
    let big = ctx.size(1_000_000, 100_000);
    let small = 1_000;
    let repeat = ctx.size(1_000_000, 200_000) as u32;
    let mut table = Table::new(
        &format!(
            "XDP program per packet, BPF_PROG_TEST_RUN (kernel's average over {repeat} runs \
             of one frame, median of {RUNS})"
        ),
        &[
            "bans in the maps",
            "IPv4 hit",
            "IPv4 miss",
            "IPv6 hit",
            "IPv6 miss",
        ],
    );
    rep.command(format!(
        "XdpBackend::test_run(frame, {repeat}) on the live maps; 60-byte IPv4 and 80-byte \
         IPv6 UDP frames"
    ));

    // Exact bans: the hit addresses first, then filler keys.
    let exact = Probes {
        v4_hit: v4(addrs::doc_v4(0)),
        v4_miss: v4(addrs::doc_v4(1)),
        v6_hit: v6(addrs::doc_v6(0)),
        v6_miss: v6(addrs::doc_v6(1)),
    };
    let exact_targets = |from: usize, to: usize| -> Vec<IpNet> {
        let mut t = Vec::with_capacity(2 * (to - from));
        for i in from..to {
            if i == 0 {
                t.push(host(addrs::doc_v4(0)));
                t.push(host(addrs::doc_v6(0)));
            } else {
                t.push(host(addrs::filler_v4(i)));
                t.push(host(addrs::doc_v6(i + 1)));
            }
        }
        t
    };
    {
        let mut lab = XdpLab::new(1 << 20, 1 << 20)?;
        let none = measure_row(&mut lab, &exact, repeat, false)?;
        table.row(row("none", none, false));
        lab.ban_all(&exact_targets(0, small))?;
        let r = measure_row(&mut lab, &exact, repeat, true)?;
        table.row(row(&format!("{small} exact per family"), r, true));
        lab.ban_all(&exact_targets(small, big))?;
        let r = measure_row(&mut lab, &exact, repeat, true)?;
        table.row(row(&format!("{big} exact per family"), r, true));
    }

    // Prefix bans: /24s and /64s, the hit prefix first.
    let hit_v4: IpNet = "203.0.113.0/24".parse()?;
    let hit_v6 = addrs::doc_v6_64(0);
    let cidr = Probes {
        v4_hit: v4(Ipv4Addr::new(203, 0, 113, 7)),
        v4_miss: v4(Ipv4Addr::new(198, 51, 100, 7)),
        v6_hit: v6(first_host(hit_v6.network())),
        v6_miss: v6(addrs::doc_v6(1)),
    };
    let cidr_targets = |from: usize, to: usize| -> Vec<IpNet> {
        let mut t = Vec::with_capacity(2 * (to - from));
        for i in from..to {
            if i == 0 {
                t.push(hit_v4);
                t.push(IpNet::V6(hit_v6));
            } else {
                t.push(IpNet::V4(addrs::filler_v4_24(i)));
                t.push(IpNet::V6(addrs::doc_v6_64(i)));
            }
        }
        t
    };
    {
        let mut lab = XdpLab::new(1 << 20, 1 << 20)?;
        lab.ban_all(&cidr_targets(0, small))?;
        let r = measure_row(&mut lab, &cidr, repeat, true)?;
        table.row(row(
            &format!("{small} prefixes per family (/24, /64)"),
            r,
            true,
        ));
        lab.ban_all(&cidr_targets(small, big))?;
        let r = measure_row(&mut lab, &cidr, repeat, true)?;
        table.row(row(
            &format!("{big} prefixes per family (/24, /64)"),
            r,
            true,
        ));
    }
    rep.tables.push(table);
    rep.note(
        "A hit is a frame from a banned source (dropped, counted per ban); a miss is a \
         frame from an unbanned one (passed). With prefix bans present a miss costs the \
         exact lookup plus the trie lookup. One frame repeated keeps every cache hot, so \
         real traffic costs more; the flood figures below show that.",
    );
    Ok(())
}

fn first_host(net: Ipv6Addr) -> Ipv6Addr {
    Ipv6Addr::from(u128::from(net) | 7)
}

/// Median ns per packet of the four probes; hits are skipped when `with_hits` is
/// false (no bans).
fn measure_row(
    lab: &mut XdpLab,
    p: &Probes,
    repeat: u32,
    with_hits: bool,
) -> Result<[Vec<f64>; 4]> {
    let mut out: [Vec<f64>; 4] = Default::default();
    let probes = [
        (&p.v4_hit, Verdict::Drop),
        (&p.v4_miss, Verdict::Pass),
        (&p.v6_hit, Verdict::Drop),
        (&p.v6_miss, Verdict::Pass),
    ];
    for _ in 0..RUNS {
        for (i, (frame, want)) in probes.iter().enumerate() {
            let is_hit = *want == Verdict::Drop;
            if is_hit && !with_hits {
                continue;
            }
            let v = lab.backend().test_run(frame, repeat)?;
            if v.action != *want {
                bail!(
                    "the XDP program answered {:?} for a {} frame from {}, expected {want:?}",
                    v.action,
                    if is_hit { "banned" } else { "unbanned" },
                    source_of(frame)
                );
            }
            out[i].push(v.per_run.as_nanos() as f64);
        }
    }
    Ok(out)
}

fn source_of(frame: &[u8]) -> String {
    match frame.get(12..14) {
        Some([0x08, 0x00]) => frame
            .get(26..30)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(|b| IpAddr::from(b).to_string()),
        Some([0x86, 0xdd]) => frame
            .get(22..38)
            .and_then(|b| <[u8; 16]>::try_from(b).ok())
            .map(|b| IpAddr::from(b).to_string()),
        _ => None,
    }
    .unwrap_or_else(|| "?".to_owned())
}

fn row(label: &str, m: [Vec<f64>; 4], with_hits: bool) -> Vec<Cell> {
    let ns = |v: &Vec<f64>| Cell::median(v, "ns", |x| report::secs(x / 1e9));
    let [v4h, v4m, v6h, v6m] = m;
    vec![
        Cell::text(label),
        if with_hits { ns(&v4h) } else { Cell::text("-") },
        ns(&v4m),
        if with_hits { ns(&v6h) } else { Cell::text("-") },
        ns(&v6m),
    ]
}
