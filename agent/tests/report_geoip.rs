//! `log2drop report --geoip` on a MaxMind DB the test writes itself (the format
//! is public: a binary search tree over the address bits, a data section of
//! typed fields, a metadata map after a marker), so no downloaded database is
//! needed. Networks are documentation prefixes with made-up ASNs and countries.

mod report_common;

use std::collections::BTreeMap;

use report_common::{arg, report_ok, report_output};

/// A value of the MaxMind DB data section.
enum V<'a> {
    Str(&'a str),
    U16(u16),
    U32(u32),
    U64(u64),
    Map(Vec<(&'a str, V<'a>)>),
    Array(Vec<V<'a>>),
}

fn control(out: &mut Vec<u8>, kind: u8, size: usize) {
    let (low, extra): (u8, Vec<u8>) = match size {
        0..=28 => (size as u8, vec![]),
        29..=284 => (29, vec![(size - 29) as u8]),
        _ => (30, ((size - 285) as u16).to_be_bytes().to_vec()),
    };
    if kind <= 7 {
        out.push(kind << 5 | low);
    } else {
        out.push(low);
        out.push(kind - 7);
    }
    out.extend(extra);
}

fn encode(out: &mut Vec<u8>, v: &V<'_>) {
    let uint = |out: &mut Vec<u8>, kind: u8, n: u64| {
        let bytes = n.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        control(out, kind, 8 - skip);
        out.extend(&bytes[skip..]);
    };
    match v {
        V::Str(s) => {
            control(out, 2, s.len());
            out.extend(s.as_bytes());
        }
        V::U16(n) => uint(out, 5, u64::from(*n)),
        V::U32(n) => uint(out, 6, u64::from(*n)),
        V::U64(n) => uint(out, 9, *n),
        V::Map(pairs) => {
            control(out, 7, pairs.len());
            for (k, v) in pairs {
                encode(out, &V::Str(k));
                encode(out, v);
            }
        }
        V::Array(items) => {
            control(out, 11, items.len());
            for v in items {
                encode(out, v);
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Rec {
    Empty,
    Node(usize),
    Data(usize),
}

/// An IPv6 tree (IPv4 under ::/96) of 24-bit records.
fn database(networks: &[(&str, V<'_>)]) -> Vec<u8> {
    let mut nodes: Vec<[Rec; 2]> = vec![[Rec::Empty; 2]];
    let mut data = Vec::new();
    for (net, value) in networks {
        let net: ipnet::IpNet = net.parse().expect("network");
        let (bits, len) = match net {
            ipnet::IpNet::V4(n) => (u128::from(u32::from(n.network())), 96 + n.prefix_len()),
            ipnet::IpNet::V6(n) => (u128::from(n.network()), n.prefix_len()),
        };
        let offset = data.len();
        encode(&mut data, value);
        let mut node = 0;
        for i in 0..len {
            let bit = ((bits >> (127 - i)) & 1) as usize;
            if i + 1 == len {
                nodes[node][bit] = Rec::Data(offset);
            } else {
                node = match nodes[node][bit] {
                    Rec::Node(n) => n,
                    _ => {
                        nodes.push([Rec::Empty; 2]);
                        let n = nodes.len() - 1;
                        nodes[node][bit] = Rec::Node(n);
                        n
                    }
                };
            }
        }
    }
    let count = nodes.len();
    let mut out = Vec::new();
    for node in &nodes {
        for r in node {
            let v = match *r {
                Rec::Empty => count,
                Rec::Node(n) => n,
                Rec::Data(off) => count + 16 + off,
            };
            out.extend(&(v as u32).to_be_bytes()[1..]);
        }
    }
    out.extend([0u8; 16]);
    out.extend(&data);
    out.extend(b"\xAB\xCD\xEFMaxMind.com");
    encode(
        &mut out,
        &V::Map(vec![
            ("node_count", V::U32(count as u32)),
            ("record_size", V::U16(24)),
            ("ip_version", V::U16(6)),
            ("database_type", V::Str("log2drop-test")),
            ("languages", V::Array(vec![V::Str("en")])),
            ("binary_format_major_version", V::U16(2)),
            ("binary_format_minor_version", V::U16(0)),
            ("build_epoch", V::U64(1_764_547_200)),
            ("description", V::Map(vec![("en", V::Str("test"))])),
        ]),
    );
    out
}

fn record<'a>(asn: u32, org: &'a str, code: &'a str, name: &'a str) -> V<'a> {
    V::Map(vec![
        ("autonomous_system_number", V::U32(asn)),
        ("autonomous_system_organization", V::Str(org)),
        (
            "country",
            V::Map(vec![
                ("iso_code", V::Str(code)),
                ("names", V::Map(vec![("en", V::Str(name))])),
            ]),
        ),
    ])
}

fn rows(out: &[u8], cols: &[&str], count: &str) -> BTreeMap<String, u64> {
    let v: serde_json::Value = serde_json::from_slice(out).expect("json");
    v["views"][0]["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            let key: Vec<&str> = cols.iter().map(|c| r[*c].as_str().expect("key")).collect();
            (key.join(" "), r[count].as_u64().expect("count"))
        })
        .collect()
}

#[test]
fn asn_and_country_views_read_a_maxmind_db() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("test.mmdb");
    std::fs::write(
        &db,
        database(&[
            (
                "192.0.2.0/24",
                record(64500, "Example Net", "ZZ", "Testland"),
            ),
            (
                "198.51.100.0/25",
                record(64501, "Other Org", "ZY", "Otherland"),
            ),
            (
                "2001:db8::/32",
                record(64500, "Example Net", "ZZ", "Testland"),
            ),
        ]),
    )
    .expect("write db");
    let log = dir.path().join("fail2ban.log");
    let mut text = String::new();
    for (i, addr) in [
        "192.0.2.1",
        "192.0.2.2",
        "192.0.2.1",
        "198.51.100.5",
        "198.51.100.200",
        "2001:db8::7",
    ]
    .iter()
    .enumerate()
    {
        text.push_str(&format!(
            "2026-11-02 10:00:0{i},000 fail2ban.actions        [9]: NOTICE  [sshd] Ban {addr}\n"
        ));
    }
    std::fs::write(&log, text).expect("write log");
    let run = |by: &str| {
        report_ok(&[
            "--json",
            "--by",
            by,
            "--geoip",
            arg(&db),
            "--fail2ban-log",
            arg(&log),
        ])
    };
    let want = |pairs: &[(&str, u64)]| -> BTreeMap<String, u64> {
        pairs.iter().map(|(k, n)| ((*k).to_owned(), *n)).collect()
    };
    assert_eq!(
        rows(&run("asn"), &["asn", "organisation"], "bans"),
        want(&[
            ("AS64500 Example Net", 4),
            ("AS64501 Other Org", 1),
            ("? (unknown)", 1)
        ])
    );
    assert_eq!(
        rows(&run("country"), &["country", "name"], "bans"),
        want(&[("ZZ Testland", 4), ("ZY Otherland", 1), ("?? (unknown)", 1)])
    );
    // Without a database the view says what it needs.
    let out = report_output(&["--by", "asn", "--fail2ban-log", arg(&log)]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--by asn needs --geoip FILE.mmdb"));
    // The HTML page gets the breakdown charts.
    let page = dir.path().join("r.html");
    report_ok(&[
        "--html",
        arg(&page),
        "--geoip",
        arg(&db),
        "--fail2ban-log",
        arg(&log),
    ]);
    let html = std::fs::read_to_string(&page).expect("page");
    assert!(html.contains("id=\"chart-country\"") && html.contains("id=\"chart-asn\""));
    assert!(html.contains("Testland"));
}
