//! Case 3, ban insert rate and restore. log2drop's XDP and nftables backends take
//! bans in the daemon's batch shape through the library; the nftables and ipset
//! tools take them the fastest way each offers (`nft -f`, `ipset restore`) and the
//! way fail2ban applies them (one forked command per ban). Then the restart paths of
//! both backends: reopening with a million bans already in the kernel, and restoring
//! a million bans into empty maps or sets (after a reboot).
//!
//! Every competitor runs in a fresh network namespace, so nothing touches the host's
//! firewall.

use std::fmt::Write as _;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail};
use ipnet::IpNet;

use log2drop::backend::Backend;
use log2drop::backend::nftables::NftablesBackend;
use log2drop::backend::nftables::config::{NftAction, NftHook, NftablesConfig};
use log2drop::engine::{Ban, Decision};
use log2drop_bench::report::{self, CaseReport, Cell, Table};
use log2drop_bench::stats;
use log2drop_tests::NetNs;

use super::{Ctx, RUNS};
use crate::addrs;
use crate::proc;
use crate::xdplab::{DAEMON_BATCH, XdpLab, ban, host};

/// One method's runs: seconds per run for `bans` bans.
struct Method {
    label: String,
    bans: usize,
    secs: Vec<f64>,
}

impl Method {
    fn rate(&self) -> Vec<f64> {
        self.secs
            .iter()
            .map(|s| self.bans as f64 / s.max(1e-9))
            .collect()
    }
}

pub fn run(ctx: &Ctx, rep: &mut CaseReport) -> Result<()> {
    let sizes = [ctx.size(100_000, 10_000), ctx.size(1_000_000, 50_000)];
    let per_ban = ctx.size(1_000, 50);
    let mut methods: Vec<Method> = Vec::new();

    for &n in &sizes {
        let targets: Vec<IpNet> = (0..n).map(|i| host(addrs::filler_v4(i))).collect();
        let mut m = Method {
            label: format!("log2drop XDP backend, batches of {DAEMON_BATCH}"),
            bans: n,
            secs: Vec::new(),
        };
        for _ in 0..RUNS {
            let mut lab = XdpLab::new(1 << 20, 1 << 16)?;
            let t0 = Instant::now();
            lab.ban_all(&targets)?;
            m.secs.push(t0.elapsed().as_secs_f64());
        }
        methods.push(m);
    }
    rep.command(
        "XdpBackend::apply(&[Decision::Ban; 4096]) until every ban is in; a fresh pin \
         directory per run",
    );
    for &n in &sizes {
        let targets: Vec<IpNet> = (0..n).map(|i| host(addrs::filler_v4(i))).collect();
        let mut m = Method {
            label: format!("log2drop nftables backend, batches of {DAEMON_BATCH}"),
            bans: n,
            secs: Vec::new(),
        };
        for _ in 0..RUNS {
            let ns = NetNs::new();
            let _inside = ns.enter();
            let mut backend =
                NftablesBackend::open(&nft_config()).context("opening the nftables backend")?;
            let t0 = Instant::now();
            apply_all(&mut backend, &targets)?;
            m.secs.push(t0.elapsed().as_secs_f64());
        }
        methods.push(m);
    }
    rep.command(
        "NftablesBackend::apply(&[Decision::Ban; 4096]) (table inet log2drop, input hook) \
         until every ban is in; a fresh namespace per run",
    );

    let nft = ctx.tools.check("nftables");
    let ipset = ctx.tools.check("ipset");
    let iptables = ctx.tools.check("iptables");
    for &n in &sizes {
        match &nft {
            Ok(()) => methods.push(nft_bulk(ctx, rep, n)?),
            Err(why) => unavailable(rep, &mut methods, "nft -f", n, why),
        }
        match &ipset {
            Ok(()) => methods.push(ipset_bulk(ctx, rep, n)?),
            Err(why) => unavailable(rep, &mut methods, "ipset restore", n, why),
        }
    }
    match &nft {
        Ok(()) => methods.push(per_ban_command(
            rep,
            "one `nft add element` per ban (fail2ban's nftables action)",
            per_ban,
            &["nft", "add", "table", "inet", "bench"],
            &[
                "nft",
                "add",
                "set",
                "inet",
                "bench",
                "banned",
                "{ type ipv4_addr; }",
            ],
            |a| {
                vec![
                    "nft".into(),
                    "add".into(),
                    "element".into(),
                    "inet".into(),
                    "bench".into(),
                    "banned".into(),
                    format!("{{ {a} }}"),
                ]
            },
        )?),
        Err(why) => unavailable(rep, &mut methods, "nft add element", per_ban, why),
    }
    match &ipset {
        Ok(()) => methods.push(per_ban_command(
            rep,
            "one `ipset add` per ban",
            per_ban,
            &["ipset", "create", "banned", "hash:ip"],
            &["true"],
            |a| vec!["ipset".into(), "add".into(), "banned".into(), a],
        )?),
        Err(why) => unavailable(rep, &mut methods, "ipset add", per_ban, why),
    }
    match &iptables {
        Ok(()) => methods.push(per_ban_command(
            rep,
            "one `iptables -I` per ban (fail2ban's default action)",
            per_ban,
            &["iptables", "-w", "-N", "f2b-bench"],
            &["iptables", "-w", "-I", "INPUT", "-j", "f2b-bench"],
            |a| {
                vec![
                    "iptables".into(),
                    "-w".into(),
                    "-I".into(),
                    "f2b-bench".into(),
                    "1".into(),
                    "-s".into(),
                    a,
                    "-j".into(),
                    "DROP".into(),
                ]
            },
        )?),
        Err(why) => unavailable(rep, &mut methods, "iptables -I", per_ban, why),
    }

    let ours_at = |prefix: &str, n: usize| {
        methods
            .iter()
            .find(|m| m.bans == n && m.label.starts_with(prefix))
            .and_then(|m| stats::median(&m.rate()))
            .unwrap_or(f64::NAN)
    };
    let mut table = Table::new(
        "Bans into the kernel",
        &[
            "method",
            "bans",
            "time",
            "bans/s",
            "log2drop XDP is faster by",
            "log2drop nftables is faster by",
        ],
    );
    for m in &methods {
        let rate = m.rate();
        // Per-ban commands run on fewer bans; compare their rates with the smaller
        // bulk size.
        let n = if sizes.contains(&m.bans) {
            m.bans
        } else {
            sizes[0]
        };
        let theirs = stats::median(&rate).unwrap_or(f64::NAN);
        let vs = |prefix: &str| {
            if m.label.starts_with("log2drop") {
                Cell::text("-")
            } else if m.secs.is_empty() {
                Cell::text("n/a")
            } else {
                let ours = ours_at(prefix, n);
                Cell::value(
                    stats::ratio(ours, theirs).unwrap_or(f64::NAN),
                    "ratio",
                    report::times(ours, theirs),
                )
            }
        };
        table.row(vec![
            Cell::text(&m.label),
            Cell::text(m.bans.to_string()),
            Cell::median(&m.secs, "s", report::secs),
            Cell::median(&rate, "bans/s", report::rate),
            vs("log2drop XDP"),
            vs("log2drop nftables"),
        ]);
    }
    rep.tables.push(table);
    rep.note(format!(
        "IPv4 bans. The XDP keys beyond the documentation ranges are filler addresses from \
         240.0.0.0/4 (reserved, never a host); the nft and ipset sets get the same \
         addresses. Per-ban commands ran {per_ban} bans; their ratio compares with \
         log2drop's rate at {} bans.",
        sizes[0]
    ));
    rep.note(
        "log2drop's bans carry deadlines (1 h here): the XDP maps store them, the nftables \
         backend writes them as element timeouts. The competitors' sets hold plain \
         addresses without timeouts.",
    );

    restore(ctx, rep, sizes[1])
}

fn unavailable(rep: &mut CaseReport, methods: &mut Vec<Method>, what: &str, n: usize, why: &str) {
    rep.note(format!("{what}: {why}"));
    methods.push(Method {
        label: format!("{what} (not available)"),
        bans: n,
        secs: Vec::new(),
    });
}

/// `nft -f` adding `n` elements to an existing set, in a fresh namespace per run.
fn nft_bulk(ctx: &Ctx, rep: &mut CaseReport, n: usize) -> Result<Method> {
    let file = ctx.scratch.join(format!("nft-{n}.nft"));
    let mut text = String::with_capacity(n * 16);
    text.push_str("add element inet bench banned {\n");
    for i in 0..n {
        let _ = writeln!(text, "{},", addrs::filler_v4(i));
    }
    text.push_str("}\n");
    std::fs::write(&file, text).with_context(|| format!("writing {}", file.display()))?;
    let mut m = Method {
        label: "nft -f (one transaction)".to_owned(),
        bans: n,
        secs: Vec::new(),
    };
    for run in 0..RUNS {
        let ns = NetNs::new();
        proc::run(&ns.command(&[
            "nft",
            "add table inet bench; add set inet bench banned { type ipv4_addr; size 2000000; }",
        ]))?;
        let argv = ns.command(&["nft", "-f", &file.to_string_lossy()]);
        let t = proc::timed(&mut command(&argv), None)?;
        m.secs.push(t.wall.as_secs_f64());
        if run == 0 {
            check_count(&ns, "nft", n)?;
        }
    }
    rep.command(format!(
        "nft 'add table inet bench; add set inet bench banned {{ type ipv4_addr; size \
         2000000; }}'; time nft -f {} ({n} elements)",
        file.display()
    ));
    Ok(m)
}

/// `ipset restore` of `n` adds into an existing set, in a fresh namespace per run.
fn ipset_bulk(ctx: &Ctx, rep: &mut CaseReport, n: usize) -> Result<Method> {
    let file = ctx.scratch.join(format!("ipset-{n}.txt"));
    let mut text = String::with_capacity(n * 24);
    for i in 0..n {
        let _ = writeln!(text, "add banned {}", addrs::filler_v4(i));
    }
    std::fs::write(&file, text).with_context(|| format!("writing {}", file.display()))?;
    let mut m = Method {
        label: "ipset restore".to_owned(),
        bans: n,
        secs: Vec::new(),
    };
    for run in 0..RUNS {
        let ns = NetNs::new();
        proc::run(&ns.command(&["ipset", "create", "banned", "hash:ip", "maxelem", "2000000"]))?;
        let argv = ns.command(&["ipset", "restore"]);
        let t = proc::timed(&mut command(&argv), Some(&file))?;
        m.secs.push(t.wall.as_secs_f64());
        if run == 0 {
            check_count(&ns, "ipset", n)?;
        }
        // ipset sets live in the namespace and go with it.
    }
    rep.command(format!(
        "ipset create banned hash:ip maxelem 2000000; time ipset restore < {} ({n} adds)",
        file.display()
    ));
    Ok(m)
}

/// One forked command per ban, after two setup commands, in a fresh namespace per
/// run. This is how fail2ban applies each ban.
fn per_ban_command(
    rep: &mut CaseReport,
    label: &str,
    n: usize,
    setup1: &[&str],
    setup2: &[&str],
    each: impl Fn(String) -> Vec<String>,
) -> Result<Method> {
    let mut m = Method {
        label: label.to_owned(),
        bans: n,
        secs: Vec::new(),
    };
    for _ in 0..RUNS {
        let ns = NetNs::new();
        proc::run(&ns.command(setup1))?;
        proc::run(&ns.command(setup2))?;
        let argvs: Vec<Vec<std::ffi::OsString>> = (0..n)
            .map(|i| {
                let a = each(addrs::filler_v4(i).to_string());
                let refs: Vec<&str> = a.iter().map(String::as_str).collect();
                ns.command(&refs)
            })
            .collect();
        let t0 = Instant::now();
        for argv in &argvs {
            let st = command(argv)
                .stdout(std::process::Stdio::null())
                .status()
                .context("starting a per-ban command")?;
            if !st.success() {
                bail!("`{}` failed ({st})", describe(argv));
            }
        }
        m.secs.push(t0.elapsed().as_secs_f64());
    }
    let example = each(addrs::filler_v4(0).to_string()).join(" ");
    rep.command(format!(
        "{} ; {} ; then {n}x `{example}` (each through nsenter into the namespace)",
        setup1.join(" "),
        setup2.join(" ")
    ));
    Ok(m)
}

/// Counts the set's elements, so a silently failed load cannot pass as fast (on the
/// first run: listing a million elements takes seconds).
fn check_count(ns: &NetNs, tool: &str, want: usize) -> Result<()> {
    let have = match tool {
        "nft" => {
            let out =
                proc::run(&ns.command(&["nft", "-j", "list", "set", "inet", "bench", "banned"]))?;
            let v: serde_json::Value = serde_json::from_str(&out).context("nft -j output")?;
            v["nftables"]
                .as_array()
                .and_then(|a| a.iter().find_map(|o| o["set"]["elem"].as_array()))
                .map_or(0, Vec::len)
        }
        _ => {
            let out = proc::run(&ns.command(&["ipset", "list", "banned", "-terse"]))?;
            out.lines()
                .find_map(|l| l.strip_prefix("Number of entries:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0)
        }
    };
    if have != want {
        bail!("{tool} holds {have} elements after loading {want}");
    }
    Ok(())
}

fn command(argv: &[std::ffi::OsString]) -> Command {
    let mut c = Command::new(&argv[0]);
    c.args(&argv[1..]);
    c
}

fn describe(argv: &[std::ffi::OsString]) -> String {
    argv.iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// log2drop's nftables backend on the input hook, default table name.
fn nft_config() -> NftablesConfig {
    NftablesConfig {
        table: "log2drop".into(),
        hook: NftHook::Input,
        priority: -10,
        interfaces: Vec::new(),
        action: NftAction::Drop,
        counter: false,
    }
}

/// One-hour bans of `targets`, applied in daemon-sized batches.
fn apply_all(backend: &mut dyn Backend, targets: &[IpNet]) -> Result<()> {
    let now = SystemTime::now();
    let jail: Arc<str> = Arc::from("bench");
    for chunk in targets.chunks(DAEMON_BATCH) {
        let batch: Vec<Decision> = chunk
            .iter()
            .map(|t| Decision::Ban(hour_ban(*t, &jail, now)))
            .collect();
        backend
            .apply(&batch, now)
            .context("applying a batch of bans")?;
    }
    Ok(())
}

fn hour_ban(target: IpNet, jail: &Arc<str>, now: SystemTime) -> Ban {
    let mut b = ban(target, jail, now);
    b.until = Some(now + Duration::from_secs(3600));
    b
}

/// The backends' restart paths with `n` active bans.
fn restore(_ctx: &Ctx, rep: &mut CaseReport, n: usize) -> Result<()> {
    let now = SystemTime::now();
    let jail: Arc<str> = Arc::from("bench");
    let active: Vec<Ban> = (0..n)
        .map(|i| hour_ban(host(addrs::filler_v4(i)), &jail, now))
        .collect();
    let mut warm = Vec::new();
    let mut cold = Vec::new();
    for _ in 0..RUNS {
        // After a reboot: nothing pinned, every ban restored from the store's list.
        let mut lab = XdpLab::new(1 << 20, 1 << 16)?;
        let t0 = Instant::now();
        let r = lab.backend().reconcile(&active, SystemTime::now())?;
        cold.push(t0.elapsed().as_secs_f64());
        if r.added != n {
            bail!("restore into empty maps added {} of {n}", r.added);
        }
        // Agent restart: the bans are still pinned; reopen and reconcile.
        let t0 = Instant::now();
        lab.reopen()?;
        let r = lab.backend().reconcile(&active, SystemTime::now())?;
        warm.push(t0.elapsed().as_secs_f64());
        if r.kept != n || r.added != 0 {
            bail!("reconcile after reopen: {r:?}, expected {n} kept");
        }
    }
    let mut nft_warm = Vec::new();
    let mut nft_cold = Vec::new();
    for _ in 0..RUNS {
        let ns = NetNs::new();
        let _inside = ns.enter();
        let mut backend = NftablesBackend::open(&nft_config())?;
        let t0 = Instant::now();
        let r = backend.reconcile(&active, SystemTime::now())?;
        nft_cold.push(t0.elapsed().as_secs_f64());
        if r.added != n {
            bail!(
                "nftables restore into an empty set added {} of {n}",
                r.added
            );
        }
        drop(backend);
        let t0 = Instant::now();
        let mut backend = NftablesBackend::open(&nft_config())?;
        let r = backend.reconcile(&active, SystemTime::now())?;
        nft_warm.push(t0.elapsed().as_secs_f64());
        if r.added != 0 || r.removed != 0 {
            bail!("nftables reconcile after reopen changed the set: {r:?}");
        }
    }
    let mut t = Table::new(
        &format!("Restoring {n} bans"),
        &["backend", "path", "time", "bans/s", "target"],
    );
    let rate = |v: &[f64]| -> Vec<f64> { v.iter().map(|s| n as f64 / s.max(1e-9)).collect() };
    for (backend, path, v, target) in [
        (
            "XDP",
            "agent restart: reopen pinned maps + reconcile (all kept)",
            &warm,
            "1M under 5 s",
        ),
        (
            "XDP",
            "after reboot: reconcile into empty maps (all added)",
            &cold,
            "",
        ),
        (
            "nftables",
            "agent restart: reopen table + reconcile (all kept)",
            &nft_warm,
            "",
        ),
        (
            "nftables",
            "after reboot: reconcile into an empty set (all added)",
            &nft_cold,
            "",
        ),
    ] {
        t.row(vec![
            Cell::text(backend),
            Cell::text(path),
            Cell::median(v, "s", report::secs),
            Cell::median(&rate(v), "bans/s", report::rate),
            Cell::text(target),
        ]);
    }
    rep.tables.push(t);
    rep.command(format!(
        "XdpBackend::open + reconcile(&[Ban; {n}]) on pinned maps; reconcile into fresh \
         maps; the same with NftablesBackend in a fresh namespace"
    ));
    rep.note(
        "Restore here is the backend alone (program load, map reads, writes). The whole \
         agent's restart with its store is measured in the memory case.",
    );
    Ok(())
}
