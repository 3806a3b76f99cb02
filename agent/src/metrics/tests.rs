//! The metrics set without the daemon: names, labels, counters that move, the
//! source tally across restarts, the top-N bound and the config checks.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use super::*;
use crate::engine::{Ban, Origin};

fn ban(jail: &str, origin: Origin) -> Ban {
    Ban {
        target: "192.0.2.7/32".parse().expect("net"),
        jail: Arc::from(jail),
        since: SystemTime::UNIX_EPOCH,
        until: None,
        origin,
        reason: None,
        forced: false,
        node: None,
    }
}

/// The value of the sample line `series` (name and labels as written), if any.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.parse().expect("number"))
}

#[test]
fn bans_count_by_jail_and_origin() {
    let m = Metrics::default();
    m.decided(&[
        Decision::Ban(ban("sshd", Origin::Jail)),
        Decision::Ban(ban("sshd", Origin::Jail)),
        Decision::Ban(ban("manual", Origin::Manual)),
        Decision::Unban(ban("sshd", Origin::Jail)),
    ]);
    let text = m.encode();
    assert_eq!(
        value(&text, r#"log2drop_bans_total{jail="sshd",origin="jail"}"#),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            r#"log2drop_bans_total{jail="manual",origin="manual"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        value(&text, r#"log2drop_unbans_total{jail="sshd"}"#),
        Some(1.0)
    );
    assert!(text.contains("# TYPE log2drop_bans counter"), "{text}");
    assert!(text.ends_with("# EOF\n"), "{text}");
}

#[test]
fn offences_count_per_jail_the_filter_feeds_and_lag_is_observed() {
    let text = "[sources.a]\npath = \"/var/log/a\"\nfilters = [\"sshd\"]\n[jails.j1]\nfilters = [\"sshd\"]\n[jails.j2]\nfilters = [\"sshd\"]\n";
    let cfg: Config = toml::from_str(text).expect("config");
    let m = Metrics::default();
    let c = m.offence_counters(&cfg);
    let read = SystemTime::now();
    c.offence("sshd", read, read + Duration::from_millis(3));
    c.offence("unknown", read, read);
    let text = m.encode();
    for jail in ["j1", "j2"] {
        let series = format!(r#"log2drop_offences_total{{filter="sshd",jail="{jail}"}}"#);
        assert_eq!(value(&text, &series), Some(1.0), "{text}");
    }
    assert_eq!(
        value(&text, "log2drop_decision_lag_seconds_count"),
        Some(2.0)
    );
    assert_eq!(
        value(
            &text,
            r#"log2drop_decision_lag_seconds_bucket{le="0.0005"}"#
        ),
        Some(1.0),
        "{text}"
    );
}

#[test]
fn source_counters_survive_a_restart_of_the_source() {
    let m = Metrics::default();
    let first = Arc::new(SourceCounters::default());
    m.add_source("auth", first.clone());
    first.lines.fetch_add(10, Ordering::Relaxed);
    first.bytes.fetch_add(500, Ordering::Relaxed);
    let text = m.encode();
    assert_eq!(
        value(&text, r#"log2drop_lines_total{source="auth"}"#),
        Some(10.0),
        "{text}"
    );
    assert_eq!(
        value(&text, r#"log2drop_bytes_total{source="auth"}"#),
        Some(500.0)
    );
    // A reload restarts the source: the first thread's counts stay in the sum.
    drop(first);
    let second = Arc::new(SourceCounters::default());
    m.add_source("auth", second.clone());
    second.lines.fetch_add(1, Ordering::Relaxed);
    let text = m.encode();
    assert_eq!(
        value(&text, r#"log2drop_lines_total{source="auth"}"#),
        Some(11.0),
        "{text}"
    );
    let tally = lock(&m.inner.live.sources);
    assert_eq!(
        tally.0["auth"].running.len(),
        1,
        "ended threads are folded in"
    );
}

fn drop_entry(address: &str, backend: &str, packets: u64) -> DropEntry {
    DropEntry {
        address: address.to_owned(),
        backend: backend.to_owned(),
        packets,
        bytes: packets * 60,
    }
}

#[test]
fn drops_have_totals_and_a_bounded_top() {
    let m = Metrics::new(2);
    let mut entries: Vec<DropEntry> = (1..=5)
        .map(|i| drop_entry(&format!("192.0.2.{i}"), "xdp", i))
        .collect();
    entries.push(drop_entry(DropEntry::ALL_BANS, "nftables", 40));
    m.set_drops(&entries);
    let text = m.encode();
    assert_eq!(
        value(&text, r#"log2drop_dropped_packets_total{backend="xdp"}"#),
        Some(15.0),
        "{text}"
    );
    assert_eq!(
        value(&text, r#"log2drop_dropped_bytes_total{backend="nftables"}"#),
        Some(2400.0)
    );
    assert_eq!(
        value(
            &text,
            r#"log2drop_top_dropped_packets_total{backend="xdp",address="192.0.2.5"}"#
        ),
        Some(5.0)
    );
    assert_eq!(
        text.matches("log2drop_top_dropped_packets_total{").count(),
        2
    );
    assert!(!text.contains(r#"address="192.0.2.3""#), "{text}");
}

#[test]
fn active_gauges_per_jail_and_backend() {
    let m = Metrics::default();
    m.set_active(
        [("sshd", 3), ("manual", 1)],
        ["sshd", "web"],
        |jail| {
            if jail == "sshd" {
                vec!["xdp"]
            } else {
                vec!["xdp", "nftables"]
            }
        },
        &["xdp", "nftables"],
    );
    let text = m.encode();
    assert_eq!(
        value(&text, r#"log2drop_bans_active{jail="sshd"}"#),
        Some(3.0)
    );
    assert_eq!(
        value(&text, r#"log2drop_bans_active{jail="web"}"#),
        Some(0.0)
    );
    assert_eq!(
        value(&text, r#"log2drop_backend_bans_active{backend="xdp"}"#),
        Some(4.0)
    );
    assert_eq!(
        value(&text, r#"log2drop_backend_bans_active{backend="nftables"}"#),
        Some(1.0)
    );
}

#[test]
fn durations_are_in_seconds() {
    let m = Metrics::default();
    m.reconciled("xdp", Duration::from_millis(20));
    m.store_commit(Duration::from_millis(2), false);
    m.expired(["sshd"]);
    m.backend_error("nftables", "apply");
    let text = m.encode();
    assert_eq!(
        value(
            &text,
            r#"log2drop_backend_reconcile_duration_seconds_sum{backend="xdp"}"#
        ),
        Some(0.02),
        "{text}"
    );
    assert_eq!(
        value(&text, "log2drop_store_commit_duration_seconds_count"),
        Some(1.0)
    );
    assert_eq!(value(&text, "log2drop_store_errors_total"), Some(1.0));
    assert_eq!(
        value(&text, r#"log2drop_expiries_total{jail="sshd"}"#),
        Some(1.0)
    );
    assert_eq!(
        value(
            &text,
            r#"log2drop_backend_errors_total{backend="nftables",operation="apply"}"#
        ),
        Some(1.0)
    );
}

#[test]
fn config_checks_top_and_port() {
    let at = KeyPath::of(&["metrics"]);
    let ok = MetricsConfig {
        listen: Some("127.0.0.1:9641".parse().expect("addr")),
        top: MAX_TOP,
    };
    assert!(ok.check(&at).is_empty());
    let bad = MetricsConfig {
        listen: Some(std::net::SocketAddr::new(IpAddr::from([127, 0, 0, 1]), 0)),
        top: MAX_TOP + 1,
    };
    let problems = bad.check(&at);
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems[0].1.contains("at most 100"), "{problems:?}");
}

#[test]
fn off_by_default() {
    let cfg: Config = toml::from_str("").expect("empty config");
    assert_eq!(cfg.metrics, MetricsConfig::default());
    assert!(cfg.metrics.listen.is_none());
}

/// Every series the Grafana dashboard queries is one the agent exports, so a
/// renamed metric cannot leave a panel silently empty.
#[test]
fn grafana_dashboard_queries_exported_series() {
    let m = Metrics::default();
    m.add_source("auth", Arc::new(SourceCounters::default()));
    let cfg: Config = toml::from_str("[jails.j]\nfilters = [\"sshd\"]\n").expect("config");
    m.offence_counters(&cfg)
        .offence("sshd", SystemTime::now(), SystemTime::now());
    m.decided(&[
        Decision::Ban(ban("j", Origin::Jail)),
        Decision::Unban(ban("j", Origin::Jail)),
    ]);
    m.expired(["j"]);
    m.set_active([("j", 1)], ["j"], |_| vec!["xdp"], &["xdp"]);
    m.backend_applied("xdp", 1, 1);
    m.backend_error("xdp", "apply");
    m.reconciled("xdp", Duration::from_millis(1));
    m.store_commit(Duration::from_millis(1), false);
    m.set_drops(&[drop_entry("192.0.2.1", "xdp", 3)]);
    let text = m.encode();
    let exported: std::collections::BTreeSet<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .collect();
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../contrib/grafana/log2drop.json");
    let dashboard = std::fs::read_to_string(&path).expect("dashboard");
    let json: serde_json::Value = serde_json::from_str(&dashboard).expect("valid JSON");
    assert!(json["panels"].as_array().is_some_and(|p| p.len() > 5));
    let series = regex::Regex::new(r"log2drop_[a-z_]+").expect("regex");
    let mut queried = 0;
    for m in series.find_iter(&dashboard) {
        queried += 1;
        assert!(
            exported.contains(m.as_str()),
            "the dashboard queries {} which the agent does not export:\n{text}",
            m.as_str()
        );
    }
    assert!(queried > 10);
}
