//! Config parsing tests: good configs parse to the right data, and every bad
//! config names the file, line, column and key of the problem.

use std::path::Path;
use std::time::Duration;

use super::*;
use crate::backend::nftables::config::{NftAction, NftHook};
use crate::backend::xdp::config::XdpMode;

const GOOD: &str = r#"
[agent]
state_dir = "/var/lib/log2drop"
socket = "/run/log2drop/log2drop.sock"
allow = ["127.0.0.0/8", "::1", "192.0.2.0/24"]

[backends.xdp]
interfaces = ["eth0", "eth1"]

[filters.ssh-fail]
regex = ['Failed password for .* from <HOST> port \d+$']

[sources.auth]
path = "/var/log/auth.log"
filters = ["ssh-fail"]

[jails.ssh]
filters = ["ssh-fail"]
maxretry = 3
findtime = "10m"
bantime = "1h"
backends = ["xdp"]
"#;

fn ok(text: &str) -> Config {
    match parse(text, Path::new("log2drop.toml")) {
        Ok(cfg) => cfg,
        Err(e) => panic!("expected a valid config, got:\n{e}"),
    }
}

fn problems(text: &str) -> Vec<String> {
    match parse(text, Path::new("log2drop.toml")) {
        Ok(_) => panic!("expected errors for:\n{text}"),
        Err(e) => e.problems().iter().map(ToString::to_string).collect(),
    }
}

/// Asserts one problem is exactly at `line:col` for `key` and mentions `needle`.
fn assert_problem(all: &[String], line: usize, col: usize, key: &str, needle: &str) {
    let prefix = format!("log2drop.toml:{line}:{col}: {key}: ");
    assert!(
        all.iter()
            .any(|p| p.starts_with(&prefix) && p.contains(needle)),
        "no problem starting {prefix:?} containing {needle:?} in:\n{}",
        all.join("\n")
    );
}

/// Replaces the first `from` in GOOD with `to`, failing loudly if absent.
fn good_with(from: &str, to: &str) -> String {
    assert!(GOOD.contains(from), "GOOD lacks {from:?}");
    GOOD.replacen(from, to, 1)
}

#[test]
fn good_config_parses() {
    let cfg = ok(GOOD);
    assert_eq!(cfg.agent.allow.len(), 3);
    let xdp = cfg.backends.xdp.as_ref().expect("xdp");
    assert_eq!(xdp.interfaces, vec!["eth0", "eth1"]);
    assert_eq!(xdp.mode, XdpMode::Auto);
    assert_eq!(xdp.pin_dir, PathBuf::from("/sys/fs/bpf/log2drop"));
    let jail = &cfg.jails["ssh"];
    assert_eq!(jail.maxretry, 3);
    assert_eq!(jail.findtime.get(), Duration::from_secs(600));
    assert_eq!(jail.bantime.get(), Duration::from_secs(3600));
    assert_eq!(jail.backends, vec!["xdp"]);
    assert_eq!(cfg.sources["auth"].filters, vec!["ssh-fail"]);
    assert_eq!(cfg.agent.max_tracked, DEFAULT_MAX_TRACKED);
}

#[test]
fn defaults_apply() {
    let cfg = ok(r#"
[backends.dry-run]
[filters.f]
regex = ['x <HOST>$']
[sources.s]
path = "/var/log/x.log"
filters = ["f"]
[jails.j]
filters = ["f"]
"#);
    assert_eq!(cfg.agent, AgentConfig::default());
    let j = &cfg.jails["j"];
    assert_eq!(j.maxretry, 5);
    assert_eq!(j.findtime, HumanDuration::from_secs(600));
    assert_eq!(j.bantime, HumanDuration::from_secs(3600));
    assert!(j.backends.is_empty());
    assert_eq!(cfg.backends.names(), vec!["dry-run"]);
}

#[test]
fn example_config_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/log2drop.toml");
    let cfg = load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert!(cfg.backends.xdp.is_some());
    assert!(cfg.jails.contains_key("ssh"));
}

/// Regression (issue 10): the example defined its own `[filters.sshd]`, which
/// replaced the built-in with regexes that read any program's line and no
/// syslog prefix, so a fake sshd message in another program's line banned an
/// address.
#[test]
fn example_config_uses_the_built_in_filters() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/log2drop.toml");
    let cfg = load(&path).unwrap_or_else(|e| panic!("{e}"));
    for name in cfg.filters.keys() {
        assert!(
            !crate::filter::builtin::exists(name),
            "the example replaces the built-in filter {name}"
        );
    }
    let refs = &cfg.sources["auth"].filters;
    let resolved: Vec<(&str, FilterConfig)> = refs
        .iter()
        .map(|r| {
            (
                r.as_str(),
                crate::filter::resolve(&cfg.filters, r).expect("resolves"),
            )
        })
        .collect();
    assert_eq!(
        resolved[0].1,
        crate::filter::with_mode(
            &crate::filter::builtin::get("sshd").expect("built-in"),
            crate::filter::NORMAL_MODE
        )
        .expect("normal"),
        "the example's sshd is the built-in"
    );
    let list: Vec<(&str, &FilterConfig)> = resolved.iter().map(|(n, c)| (*n, c)).collect();
    let m = crate::filter::SourceMatcher::build(&list).expect("builds");
    let mut s = m.new_scratch();
    let now = std::time::SystemTime::now();
    for fake in [
        "May 19 10:00:00 web1 myapp[77]: sshd[1]: Failed password for root from 198.51.100.7 port 22 ssh2",
        "May 19 10:00:00 web1 nginx: sshd[1]: Failed password for root from 198.51.100.7 port 22 ssh2",
        "198.51.100.7 - - [19/May/2026:10:00:00 +0000] \"GET /sshd[1]: Failed password for root from 198.51.100.7 port 22 ssh2 HTTP/1.1\" 404 0",
    ] {
        assert_eq!(m.match_line(fake.as_bytes(), now, &mut s), None, "{fake}");
    }
    let real =
        "May 19 10:00:00 web1 sshd[1]: Failed password for root from 198.51.100.7 port 22 ssh2";
    assert!(m.match_line(real.as_bytes(), now, &mut s).is_some());
}

#[test]
fn unreadable_file_names_the_path() {
    let err = load(Path::new("/nonexistent/log2drop.toml")).expect_err("missing");
    let text = err.to_string();
    assert!(
        text.starts_with("/nonexistent/log2drop.toml: cannot read"),
        "{text}"
    );
}

#[test]
fn unknown_filter_in_jail_has_position_and_key() {
    let text = good_with(
        "[jails.ssh]\nfilters = [\"ssh-fail\"]",
        "[jails.ssh]\nfilters = [\"ssh-fail\", \"ssh-fial\"]",
    );
    let all = problems(&text);
    assert_problem(
        &all,
        18,
        24,
        "jails.ssh.filters[1]",
        "unknown filter \"ssh-fial\" (defined: ssh-fail; built-in: ",
    );
}

#[test]
fn unknown_filter_in_source() {
    let text = good_with(
        "path = \"/var/log/auth.log\"\nfilters = [\"ssh-fail\"]",
        "path = \"/var/log/auth.log\"\nfilters = [\"sshd-typo\", \"ssh-fail\"]",
    );
    let all = problems(&text);
    assert_problem(
        &all,
        15,
        12,
        "sources.auth.filters[0]",
        "unknown filter \"sshd-typo\"",
    );
}

#[test]
fn unknown_key_is_an_error_with_its_position() {
    let text = good_with("maxretry = 3", "maxretry = 3\nmaxretries = 4");
    let all = problems(&text);
    assert_eq!(all.len(), 1, "{all:?}");
    assert_problem(
        &all,
        20,
        1,
        "jails.ssh.maxretries",
        "unknown field `maxretries`",
    );
}

#[test]
fn unknown_top_level_table_is_an_error() {
    let all = problems(&format!("{GOOD}\n[jail.ssh]\nfilters = []\n"));
    assert_problem(&all, 24, 2, "jail", "unknown field `jail`");
}

#[test]
fn unknown_key_in_agent() {
    let text = good_with("[agent]\n", "[agent]\nallowlist = []\n");
    let all = problems(&text);
    assert_problem(&all, 3, 1, "agent.allowlist", "unknown field `allowlist`");
}

#[test]
fn type_errors_have_position_and_key() {
    let all = problems(&good_with("maxretry = 3", "maxretry = \"3\""));
    assert_problem(&all, 19, 12, "jails.ssh.maxretry", "invalid type");
    let all = problems(&good_with("maxretry = 3", "maxretry = -1"));
    assert_problem(&all, 19, 12, "jails.ssh.maxretry", "-1");
}

#[test]
fn bad_duration_has_position_and_unit_hint() {
    let all = problems(&good_with(
        "findtime = \"10m\"",
        "findtime = \"10 minutes\"",
    ));
    assert_problem(
        &all,
        20,
        12,
        "jails.ssh.findtime",
        "expected a number followed by s, m, h, d or w, got \"10 minutes\"",
    );
    let all = problems(&good_with("bantime = \"1h\"", "bantime = 3600"));
    assert_problem(&all, 21, 11, "jails.ssh.bantime", "\"3600s\"");
}

#[test]
fn bad_xdp_mode() {
    let all = problems(&good_with(
        "interfaces = [\"eth0\", \"eth1\"]",
        "interfaces = [\"eth0\"]\nmode = \"fast\"",
    ));
    assert_problem(&all, 9, 8, "backends.xdp.mode", "unknown variant `fast`");
}

#[test]
fn syntax_errors_are_all_reported_with_positions() {
    let text = "[agent]\nstate_dir = \"/x\nsocket = 3 3\n";
    let all = problems(text);
    assert!(all.len() >= 2, "{all:?}");
    assert!(all[0].starts_with("log2drop.toml:2:"), "{all:?}");
}

#[test]
fn zero_thresholds_are_refused_together() {
    let text = good_with("maxretry = 3", "maxretry = 0")
        .replacen("findtime = \"10m\"", "findtime = \"0s\"", 1)
        .replacen("bantime = \"1h\"", "bantime = \"0m\"", 1);
    let all = problems(&text);
    assert_eq!(all.len(), 3, "{all:?}");
    assert_problem(&all, 19, 12, "jails.ssh.maxretry", "at least 1");
    assert_problem(&all, 20, 12, "jails.ssh.findtime", "longer than 0s");
    assert_problem(&all, 21, 11, "jails.ssh.bantime", "longer than 0s");
}

#[test]
fn huge_maxretry_is_refused() {
    let all = problems(&good_with("maxretry = 3", "maxretry = 1000000"));
    assert_problem(&all, 19, 12, "jails.ssh.maxretry", "at most 1000");
}

#[test]
fn bad_allow_entries() {
    let all = problems(&good_with(
        "\"192.0.2.0/24\"]",
        "\"192.0.2.1/24\", \"exampl_.org\", \"fe80::1%eth0\"]",
    ));
    assert_problem(&all, 5, 32, "agent.allow[2]", "did you mean 192.0.2.0/24?");
    assert_problem(&all, 5, 48, "agent.allow[3]", "neither an address");
    assert_problem(&all, 5, 63, "agent.allow[4]", "zone id");
}

#[test]
fn no_backend_configured() {
    let text = GOOD
        .replacen("[backends.xdp]\ninterfaces = [\"eth0\", \"eth1\"]\n", "", 1)
        .replacen("backends = [\"xdp\"]\n", "", 1);
    let all = problems(&text);
    assert_eq!(all.len(), 1, "{all:?}");
    assert_problem(&all, 1, 1, "backends", "no backend configured");
}

#[test]
fn unknown_and_unconfigured_backends() {
    let all = problems(&good_with(
        "backends = [\"xdp\"]",
        "backends = [\"xdp\", \"nft\", \"dry-run\", \"xdp\"]",
    ));
    assert_problem(
        &all,
        22,
        20,
        "jails.ssh.backends[1]",
        "unknown backend \"nft\" (known: xdp, nftables, dry-run)",
    );
    assert_problem(
        &all,
        22,
        27,
        "jails.ssh.backends[2]",
        "not configured: add a [backends.dry-run] table",
    );
    assert_problem(&all, 22, 38, "jails.ssh.backends[3]", "listed twice");
}

#[test]
fn xdp_without_interfaces() {
    let all = problems(&good_with(
        "interfaces = [\"eth0\", \"eth1\"]",
        "interfaces = []",
    ));
    assert_problem(&all, 8, 14, "backends.xdp.interfaces", "lists no interface");
}

#[test]
fn xdp_missing_interfaces_key() {
    let all = problems(&good_with(
        "interfaces = [\"eth0\", \"eth1\"]",
        "mode = \"skb\"",
    ));
    assert_problem(&all, 7, 1, "backends.xdp", "missing field `interfaces`");
}

#[test]
fn duplicate_and_invalid_interfaces() {
    let all = problems(&good_with(
        "interfaces = [\"eth0\", \"eth1\"]",
        "interfaces = [\"eth0\", \"eth0\", \"a/b\", \"averyveryverylongname\"]",
    ));
    assert_problem(
        &all,
        8,
        23,
        "backends.xdp.interfaces[1]",
        "\"eth0\" is listed twice",
    );
    assert_problem(
        &all,
        8,
        31,
        "backends.xdp.interfaces[2]",
        "not a valid interface name",
    );
    assert_problem(
        &all,
        8,
        38,
        "backends.xdp.interfaces[3]",
        "not a valid interface name",
    );
}

#[test]
fn xdp_sizes_and_pin_dir() {
    let all = problems(&good_with(
        "interfaces = [\"eth0\", \"eth1\"]",
        "interfaces = [\"eth0\"]\nmax_bans = 0\nmax_cidr_bans = 0\npin_dir = \"bpf\"",
    ));
    assert_problem(&all, 9, 12, "backends.xdp.max_bans", "at least 1");
    assert_problem(&all, 10, 17, "backends.xdp.max_cidr_bans", "at least 1");
    assert_problem(&all, 11, 11, "backends.xdp.pin_dir", "absolute");
}

#[test]
fn regex_without_host_or_with_two() {
    let all = problems(&good_with(
        r"regex = ['Failed password for .* from <HOST> port \d+$']",
        r"regex = ['Failed password', '<HOST> and <HOST>']",
    ));
    assert_problem(&all, 11, 10, "filters.ssh-fail.regex[0]", "no <HOST>");
    assert_problem(&all, 11, 29, "filters.ssh-fail.regex[1]", "<HOST> 2 times");
}

#[test]
fn bad_regex_reports_the_regex_error() {
    let all = problems(&good_with(
        r"regex = ['Failed password for .* from <HOST> port \d+$']",
        r"regex = ['Failed (password from <HOST>']",
    ));
    assert_problem(
        &all,
        11,
        10,
        "filters.ssh-fail.regex[0]",
        "unclosed group at offset 7",
    );
}

#[test]
fn bad_ignore_regex() {
    let all = problems(&good_with(
        r"port \d+$']",
        r"port \d+$']
ignore = ['[unclosed']",
    ));
    assert_problem(&all, 12, 11, "filters.ssh-fail.ignore[0]", "invalid regex");
}

#[test]
fn filter_without_regex() {
    let all = problems(&good_with(
        r"regex = ['Failed password for .* from <HOST> port \d+$']",
        "regex = []",
    ));
    assert_problem(&all, 11, 9, "filters.ssh-fail.regex", "lists no regex");
}

#[test]
fn jail_whose_filter_no_source_feeds() {
    let text = good_with(
        "[sources.auth]",
        "[filters.other]\nregex = ['x <HOST>$']\n\n[sources.auth]",
    )
    .replacen(
        "[jails.ssh]\nfilters = [\"ssh-fail\"]",
        "[jails.ssh]\nfilters = [\"ssh-fail\", \"other\"]",
        1,
    );
    let all = problems(&text);
    assert_eq!(all.len(), 1, "{all:?}");
    assert_problem(
        &all,
        21,
        24,
        "jails.ssh.filters[1]",
        "not fed by any source",
    );
}

#[test]
fn source_filter_that_feeds_no_jail() {
    let text = good_with(
        "[sources.auth]",
        "[filters.other]\nregex = ['x <HOST>$']\n\n[sources.auth]",
    )
    .replacen(
        "path = \"/var/log/auth.log\"\nfilters = [\"ssh-fail\"]",
        "path = \"/var/log/auth.log\"\nfilters = [\"ssh-fail\", \"other\"]",
        1,
    );
    let all = problems(&text);
    assert_eq!(all.len(), 1, "{all:?}");
    assert_problem(&all, 18, 24, "sources.auth.filters[1]", "feeds no jail");
}

#[test]
fn no_jails_and_no_sources() {
    let all = problems("[backends.dry-run]\n");
    assert_eq!(all.len(), 1, "{all:?}");
    assert_problem(&all, 1, 1, "jails", "no jail configured");
}

#[test]
fn reserved_jail_name() {
    let all = problems(&good_with("[jails.ssh]", "[jails.manual]"));
    assert_problem(&all, 17, 1, "jails.manual", "reserved");
}

#[test]
fn source_paths_must_be_absolute_and_distinct() {
    let all = problems(&format!(
        "{GOOD}\n[sources.again]\npath = \"/var/log/auth.log\"\nfilters = [\"ssh-fail\"]\n[sources.rel]\npath = \"auth.log\"\nfilters = [\"ssh-fail\"]\n"
    ));
    // Sources are checked in name order, so "auth" is the one reported.
    assert_problem(
        &all,
        14,
        8,
        "sources.auth.path",
        "also followed by source \"again\"",
    );
    assert_problem(&all, 28, 8, "sources.rel.path", "absolute path");
}

#[test]
fn many_problems_are_reported_at_once_in_file_order() {
    let text = r#"
[agent]
allow = ["bogus!"]

[backends.xdp]
interfaces = []

[filters.f]
regex = ['no host here']

[sources.s]
path = "/var/log/s.log"
filters = ["f", "g"]

[jails.j]
filters = ["f"]
maxretry = 0
bantime = "0s"
"#;
    let all = problems(text);
    assert_eq!(all.len(), 6, "{}", all.join("\n"));
    assert_problem(&all, 3, 10, "agent.allow[0]", "neither an address");
    assert_problem(&all, 6, 14, "backends.xdp.interfaces", "lists no interface");
    assert_problem(&all, 9, 10, "filters.f.regex[0]", "no <HOST>");
    assert_problem(
        &all,
        13,
        17,
        "sources.s.filters[1]",
        "unknown filter \"g\" (defined: f; built-in: ",
    );
    assert_problem(&all, 17, 12, "jails.j.maxretry", "at least 1");
    assert_problem(&all, 18, 11, "jails.j.bantime", "longer than 0s");
    let lines: Vec<usize> = all
        .iter()
        .map(|p| {
            p.split(':')
                .nth(1)
                .and_then(|l| l.parse().ok())
                .expect("line")
        })
        .collect();
    let mut sorted = lines.clone();
    sorted.sort_unstable();
    assert_eq!(lines, sorted);
}

#[test]
fn display_joins_problems_one_per_line() {
    let err = parse(
        "[backends.dry-run]\n[jails.j]\nfilters = []\n",
        Path::new("c.toml"),
    )
    .expect_err("invalid");
    let text = err.to_string();
    assert_eq!(text.lines().count(), err.problems().len());
    assert!(text.lines().all(|l| l.starts_with("c.toml:")), "{text}");
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    fn check_positions(text: &str) {
        if let Err(e) = parse(text, Path::new("f.toml")) {
            let lines = text.split('\n').count();
            for p in e.problems() {
                assert!(
                    p.line >= 1 && p.line <= lines,
                    "{p} (file has {lines} lines)"
                );
                assert!(p.column >= 1, "{p}");
            }
            assert!(!e.problems().is_empty());
        }
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
            check_positions(&text);
        }

        #[test]
        fn damaged_good_config_reports_positions_inside_the_file(
            start in 0usize..GOOD.len(),
            len in 1usize..12,
            insert in "[\\[\\]=\"', a-z0-9\n]{0,4}",
        ) {
            let mut text = GOOD.to_owned();
            let mut s = start;
            while !text.is_char_boundary(s) { s -= 1; }
            let mut end = (s + len).min(text.len());
            while !text.is_char_boundary(end) { end -= 1; }
            text.replace_range(s..end, &insert);
            check_positions(&text);
        }
    }
}

#[test]
fn nftables_defaults_and_keys() {
    let cfg = ok(&good_with(
        "[backends.xdp]",
        "[backends.nftables]\n\n[backends.xdp]",
    ));
    let nft = cfg.backends.nftables.as_ref().expect("nftables");
    assert_eq!(nft.table, "log2drop");
    assert_eq!(nft.hook, NftHook::Input);
    assert_eq!(nft.priority, -10);
    assert_eq!(nft.action, NftAction::Drop);
    assert!(!nft.counter);
    assert_eq!(cfg.backends.names(), ["xdp", "nftables"]);

    let cfg = ok(&good_with(
        "[backends.xdp]",
        "[backends.nftables]\ntable = \"bans\"\nhook = \"ingress\"\ninterfaces = [\"eth0\"]\n\
         priority = -500\naction = \"reject\"\ncounter = true\n\n[backends.xdp]",
    ));
    let nft = cfg.backends.nftables.as_ref().expect("nftables");
    assert_eq!(nft.table, "bans");
    assert_eq!(nft.hook, NftHook::Ingress);
    assert_eq!(nft.interfaces, ["eth0"]);
    assert_eq!(nft.priority, -500);
    assert_eq!(nft.action, NftAction::Reject);
    assert!(nft.counter);

    for (hook, want) in [
        ("forward", NftHook::Forward),
        ("prerouting", NftHook::Prerouting),
    ] {
        let cfg = ok(&good_with(
            "[backends.xdp]",
            &format!("[backends.nftables]\nhook = \"{hook}\"\n\n[backends.xdp]"),
        ));
        assert_eq!(cfg.backends.nftables.as_ref().expect("nftables").hook, want);
        let all = problems(&good_with(
            "[backends.xdp]",
            &format!(
                "[backends.nftables]\nhook = \"{hook}\"\ninterfaces = [\"eth0\"]\n\n[backends.xdp]"
            ),
        ));
        assert!(
            all.iter()
                .any(|p| p.contains("backends.nftables.interfaces")
                    && p.contains(&format!("the {hook} hook sees every interface"))),
            "{all:?}"
        );
    }
}

#[test]
fn nftables_problems_are_positioned() {
    let text = good_with(
        "[backends.xdp]",
        "[backends.nftables]\ntable = \"\"\nhook = \"ingress\"\n\n[backends.xdp]",
    );
    let all = problems(&text);
    assert_problem(&all, 8, 9, "backends.nftables.table", "must not be empty");
    assert_problem(
        &all,
        7,
        1,
        "backends.nftables.interfaces",
        "hook = \"ingress\" needs",
    );

    let text = good_with(
        "[backends.xdp]",
        "[backends.nftables]\ninterfaces = [\"eth0\"]\n\n[backends.xdp]",
    );
    let all = problems(&text);
    assert_problem(
        &all,
        8,
        14,
        "backends.nftables.interfaces",
        "only used with",
    );

    let text = good_with(
        "[backends.xdp]",
        "[backends.nftables]\nhook = \"ingress\"\ninterfaces = [\"eth0\", \"a/b\", \"eth0\"]\n\n[backends.xdp]",
    );
    let all = problems(&text);
    assert_problem(
        &all,
        9,
        23,
        "backends.nftables.interfaces[1]",
        "not a valid interface",
    );
    assert_problem(
        &all,
        9,
        30,
        "backends.nftables.interfaces[2]",
        "listed twice",
    );

    let text = good_with(
        "[backends.xdp]",
        "[backends.nftables]\nhook = \"output\"\n\n[backends.xdp]",
    );
    let all = problems(&text);
    assert_problem(&all, 8, 8, "backends.nftables.hook", "unknown variant");
}

#[test]
fn jails_may_name_the_nftables_backend() {
    let text = good_with("backends = [\"xdp\"]", "backends = [\"xdp\", \"nftables\"]");
    let all = problems(&text);
    assert_problem(&all, 22, 20, "jails.ssh.backends[1]", "not configured");
    let text = text.replace("[backends.xdp]", "[backends.nftables]\n\n[backends.xdp]");
    ok(&text);
}

/// Line and column (from 1) of the first `needle` in `text`.
fn pos_of(text: &str, needle: &str) -> (usize, usize) {
    let at = text.find(needle).expect("needle in text");
    let line = text[..at].matches('\n').count() + 1;
    let col = at - text[..at].rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, col)
}

#[test]
fn source_types_and_their_keys_parse() {
    let text = good_with(
        "[sources.auth]\npath = \"/var/log/auth.log\"\nfilters = [\"ssh-fail\"]",
        "[sources.auth]\npath = \"/var/log/nginx/*access.log\"\nstart = \"beginning\"\nmax_line_bytes = 4096\nfilters = [\"ssh-fail\"]\n\n\
         [sources.journal]\ntype = \"journal\"\nmatch = [\"_SYSTEMD_UNIT=ssh.service\", \"+\", \"SYSLOG_IDENTIFIER=sshd\"]\njournalctl = \"/opt/bin/journalctl\"\nfilters = [\"ssh-fail\"]\n\n\
         [sources.cmd]\ntype = \"command\"\ncommand = [\"/usr/bin/tail\", \"-F\", \"/var/log/x\"]\nfilters = [\"ssh-fail\"]\n\n\
         [sources.pipe]\ntype = \"stdin\"\nfilters = [\"ssh-fail\"]",
    );
    let cfg = ok(&text);
    let auth = &cfg.sources["auth"];
    assert_eq!(auth.kind, SourceKind::File);
    assert_eq!(auth.start_at(), crate::source::file::StartAt::Beginning);
    assert_eq!(auth.max_line_bytes, 4096);
    let j = &cfg.sources["journal"];
    assert_eq!(j.kind, SourceKind::Journal);
    assert_eq!(j.journalctl_program(), PathBuf::from("/opt/bin/journalctl"));
    assert_eq!(j.matches.as_ref().map(Vec::len), Some(3));
    assert_eq!(j.max_line_bytes, DEFAULT_MAX_LINE_BYTES);
    assert_eq!(j.start_at(), crate::source::file::StartAt::End);
    assert_eq!(cfg.sources["cmd"].command.as_ref().map(Vec::len), Some(3));
    assert_eq!(cfg.sources["pipe"].kind, SourceKind::Stdin);
    let defaults = ok(GOOD);
    assert_eq!(
        defaults.sources["auth"].journalctl_program(),
        PathBuf::from("journalctl")
    );
}

#[test]
fn source_problems_have_positions() {
    let text = good_with(
        "[sources.auth]\npath = \"/var/log/auth.log\"\nfilters = [\"ssh-fail\"]",
        "[sources.auth]\npath = \"/var/log/[bad.log\"\nmax_line_bytes = 10\nfilters = [\"ssh-fail\"]\n\n\
         [sources.j]\ntype = \"journal\"\nmatch = [\"_SYSTEMD_UNIT=ssh.service\", \"lower=x\", \"nofield\"]\ncommand = [\"x\"]\nfilters = [\"ssh-fail\"]\n\n\
         [sources.c]\ntype = \"command\"\ncommand = [\"\"]\nstart = \"end\"\nfilters = [\"ssh-fail\"]\n\n\
         [sources.nocmd]\ntype = \"command\"\npath = \"/var/log/x\"\nfilters = [\"ssh-fail\"]\n\n\
         [sources.in1]\ntype = \"stdin\"\nfilters = [\"ssh-fail\"]\n\n\
         [sources.in2]\ntype = \"stdin\"\nfilters = [\"ssh-fail\"]",
    );
    let all = problems(&text);
    let at = |needle: &str| pos_of(&text, needle);
    let (l, c) = at("\"/var/log/[bad.log\"");
    assert_problem(&all, l, c, "sources.auth.path", "not a valid glob");
    let (l, c) = at("10\n");
    assert_problem(&all, l, c, "sources.auth.max_line_bytes", "between 256 and");
    let (l, c) = at("\"lower=x\"");
    assert_problem(&all, l, c, "sources.j.match[1]", "not a journal field name");
    let (l, c) = at("\"nofield\"");
    assert_problem(&all, l, c, "sources.j.match[2]", "FIELD=value");
    let (l, c) = at("[\"x\"]");
    assert_problem(
        &all,
        l,
        c,
        "sources.j.command",
        "only applies to type = \"command\"",
    );
    let (l, c) = at("\"\"]");
    assert_problem(&all, l, c, "sources.c.command[0]", "must not be empty");
    let (l, c) = at("\"end\"");
    assert_problem(
        &all,
        l,
        c,
        "sources.c.start",
        "only applies to type = \"file\"",
    );
    let (l, c) = at("\"/var/log/x\"");
    assert_problem(
        &all,
        l,
        c,
        "sources.nocmd.path",
        "only applies to type = \"file\"",
    );
    assert!(
        all.iter()
            .any(|p| p.contains("sources.nocmd: a command source needs command")),
        "{all:?}"
    );
    assert!(
        all.iter()
            .any(|p| p.contains("sources.in2.type")
                && p.contains("source \"in1\" already reads stdin")),
        "{all:?}"
    );
}

#[test]
fn file_source_without_path_says_how_to_fix_it() {
    let text = good_with("path = \"/var/log/auth.log\"\n", "");
    let all = problems(&text);
    assert!(
        all.iter()
            .any(|p| p.contains("sources.auth: a file source needs path")),
        "{all:?}"
    );
}

// ---- issue 4: score model, escalation, subnet, timed access, allowlist ----

#[test]
fn decision_keys_parse_with_defaults() {
    let cfg = ok(GOOD);
    let jail = &cfg.jails["ssh"];
    assert!(jail.weight.is_empty());
    assert_eq!(jail.threshold, None);
    assert_eq!(jail.bantime_factor, 1.0);
    assert_eq!(jail.bantime_max, None);
    assert_eq!(jail.permanent_after, None);
    assert_eq!(jail.history.get(), Duration::from_secs(90 * 86_400));
    assert_eq!(jail.subnet, None);
    assert_eq!(jail.ipv6_prefix, 64);
    assert_eq!(jail.ban_delay, None);
    assert!(cfg.agent.allow_own_addresses);

    let cfg = ok(&good_with(
        "backends = [\"xdp\"]",
        "backends = [\"xdp\"]\nweight = { ssh-fail = 3 }\nthreshold = 9\nbantime_factor = 2\nbantime_max = \"30d\"\npermanent_after = 5\nhistory = \"180d\"\nsubnet = { after = 4 }\nipv6_prefix = 56\nban_delay = \"1h\"",
    ));
    let jail = &cfg.jails["ssh"];
    assert_eq!(jail.weight["ssh-fail"], 3);
    assert_eq!(jail.threshold, Some(9));
    assert_eq!(jail.bantime_factor, 2.0);
    assert_eq!(
        jail.bantime_max.map(|d| d.get()),
        Some(Duration::from_secs(30 * 86_400))
    );
    assert_eq!(jail.permanent_after, Some(5));
    let sub = jail.subnet.as_ref().expect("subnet");
    assert_eq!((sub.v4, sub.v6, sub.after), (24, 48, 4));
    assert_eq!(sub.within.get(), Duration::from_secs(3600));
    assert_eq!(jail.ipv6_prefix, 56);
    assert_eq!(
        jail.ban_delay.map(|d| d.get()),
        Some(Duration::from_secs(3600))
    );
}

#[test]
fn bad_decision_keys_are_reported_with_their_place() {
    let text = good_with(
        "backends = [\"xdp\"]",
        "backends = [\"xdp\"]\nweight = { ssh-fail = 0, other = 2 }\nthreshold = 0\nbantime_factor = 0.5\nbantime_max = \"10m\"\npermanent_after = 0\nhistory = \"0s\"\nsubnet = { v4 = 32, v6 = 64, after = 1, within = \"0s\" }\nipv6_prefix = 40\nban_delay = \"0s\"",
    );
    let all = problems(&text);
    let line = |key: &str| {
        1 + text
            .lines()
            .position(|l| l.starts_with(key))
            .unwrap_or_else(|| panic!("no line for {key}"))
    };
    let w = line("weight");
    assert_problem(
        &all,
        w,
        23,
        "jails.ssh.weight.ssh-fail",
        "must be 1 to 1000",
    );
    assert_problem(
        &all,
        w,
        34,
        "jails.ssh.weight.other",
        "not in this jail's filters",
    );
    assert_problem(
        &all,
        line("threshold"),
        13,
        "jails.ssh.threshold",
        "must be 1 to",
    );
    assert_problem(
        &all,
        line("bantime_factor"),
        18,
        "jails.ssh.bantime_factor",
        "from 1",
    );
    assert_problem(
        &all,
        line("bantime_max"),
        15,
        "jails.ssh.bantime_max",
        "shorter than bantime",
    );
    assert_problem(
        &all,
        line("permanent_after"),
        19,
        "jails.ssh.permanent_after",
        "at least 1",
    );
    assert_problem(
        &all,
        line("history"),
        11,
        "jails.ssh.history",
        "longer than 0s",
    );
    let s = line("subnet");
    assert_problem(&all, s, 17, "jails.ssh.subnet.v4", "8 to 31");
    assert_problem(
        &all,
        s,
        26,
        "jails.ssh.subnet.v6",
        "shorter than ipv6_prefix",
    );
    assert_problem(&all, s, 38, "jails.ssh.subnet.after", "2 to");
    assert_problem(&all, s, 50, "jails.ssh.subnet.within", "longer than 0s");
    assert_problem(
        &all,
        line("ipv6_prefix"),
        15,
        "jails.ssh.ipv6_prefix",
        "48 to 128",
    );
    assert_problem(
        &all,
        line("ban_delay"),
        13,
        "jails.ssh.ban_delay",
        "longer than 0s",
    );
}

#[test]
fn allow_takes_host_names_but_not_broken_addresses() {
    let cfg = ok(&good_with(
        "allow = [\"127.0.0.0/8\", \"::1\", \"192.0.2.0/24\"]",
        "allow = [\"admin.example.org\", \"localhost\", \"192.0.2.0/24\"]\nallow_own_addresses = false",
    ));
    assert_eq!(cfg.agent.allow[0], "admin.example.org");
    assert!(!cfg.agent.allow_own_addresses);
    let all = problems(&good_with(
        "allow = [\"127.0.0.0/8\", \"::1\", \"192.0.2.0/24\"]",
        "allow = [\"192.0.2.7/24\", \"-bad-.example\", \"10.0.0\"]",
    ));
    assert_problem(&all, 5, 10, "agent.allow[0]", "did you mean 192.0.2.0/24");
    assert_problem(&all, 5, 26, "agent.allow[1]", "neither an address");
    assert_problem(&all, 5, 43, "agent.allow[2]", "not an IPv4 or IPv6 address");
}

#[test]
fn builtin_filters_need_no_table() {
    let text = good_with(
        "filters = [\"ssh-fail\"]\n\n[jails",
        "filters = [\"ssh-fail\", \"sshd\"]\n\n[jails",
    )
    .replace(
        "[jails.ssh]\nfilters = [\"ssh-fail\"]",
        "[jails.ssh]\nfilters = [\"ssh-fail\", \"sshd\"]",
    );
    let cfg = ok(&text);
    assert_eq!(cfg.sources["auth"].filters, ["ssh-fail", "sshd"]);
    assert!(!cfg.filters.contains_key("sshd"));
}

#[test]
fn filter_settings_are_checked_with_their_keys() {
    let text = good_with(
        "regex = ['Failed password for .* from <HOST> port \\d+$']",
        "regex = ['Failed password for .* from <HOST> port \\d+$']\nprograms = [\"sshd\"]\ndatepattern = \"%Q\"\ntimezone = \"Mars/Olympus\"",
    );
    let all = problems(&text);
    assert_problem(
        &all,
        12,
        12,
        "filters.ssh-fail.programs",
        "prefix = \"syslog\"",
    );
    assert_problem(
        &all,
        13,
        15,
        "filters.ssh-fail.datepattern",
        "%Q is not supported",
    );
    assert_problem(
        &all,
        14,
        12,
        "filters.ssh-fail.timezone",
        "unknown time zone",
    );
    let text = good_with(
        "regex = ['Failed password for .* from <HOST> port \\d+$']",
        "regex = ['Failed password for .* from <HOST> port \\d+$']\nprefix = \"syslog\"\nprograms = [\"sshd\"]\ndatepattern = \"iso8601\"\ntimezone = \"UTC\"",
    );
    // With a syslog prefix, `datepattern` reads the message's own time where
    // the prefix has none (Dovecot 1.x's `dovecot: TIME ...`).
    ok(&text);
    let text = good_with(
        "regex = ['Failed password for .* from <HOST> port \\d+$']",
        "regex = ['Failed password for .* from <HOST> port \\d+$']\nprefix = \"syslog\"\nprograms = [\"sshd\"]\ndatepattern = \"iso8601\\n%Q\"",
    );
    let all = problems(&text);
    assert_eq!(all.len(), 1, "{all:?}");
    assert_problem(&all, 14, 15, "filters.ssh-fail.datepattern", "line 2: ");
}

#[test]
fn control_and_history_keys_have_defaults_and_are_checked() {
    let cfg = ok(GOOD);
    assert_eq!(cfg.agent.socket_group, None);
    assert_eq!(
        cfg.agent.history_retention.get(),
        Duration::from_secs(365 * 86_400)
    );
    let cfg = ok(&good_with(
        "[agent]\n",
        "[agent]\nsocket_group = \"log2drop-ro\"\nhistory_retention = \"30d\"\n",
    ));
    assert_eq!(cfg.agent.socket_group.as_deref(), Some("log2drop-ro"));
    assert_eq!(
        cfg.agent.history_retention.get(),
        Duration::from_secs(30 * 86_400)
    );
    let all = problems(&good_with(
        "[agent]\n",
        "[agent]\nsocket_group = \"bad group\"\nhistory_retention = \"0s\"\n",
    ));
    assert_problem(&all, 3, 16, "agent.socket_group", "not a valid group name");
    assert_problem(&all, 4, 21, "agent.history_retention", "longer than 0s");
    // Escalation looks further back than the history is kept.
    let text = good_with("[agent]\n", "[agent]\nhistory_retention = \"30d\"\n").replace(
        "backends = [\"xdp\"]",
        "backends = [\"xdp\"]\nbantime_factor = 2\nhistory = \"90d\"",
    );
    let all = problems(&text);
    assert!(
        all.iter().any(|p| p
            .contains("jails.ssh.history: 12w6d is longer than agent.history_retention (4w2d)")),
        "{all:?}"
    );
    ok(&text.replace("history = \"90d\"", "history = \"30d\""));
}

#[test]
fn notify_hooks_parse_with_defaults() {
    let cfg = ok(&good_with(
        "backends = [\"xdp\"]\n",
        "backends = [\"xdp\"]\nnotify = { exec = [\"/usr/local/bin/x\", \"{address}\", \"{jail}\"], webhook = \"http://127.0.0.1:9000/ban\" }\n",
    ));
    let n = cfg.jails["ssh"].notify.as_ref().expect("notify");
    assert_eq!(n.exec, ["/usr/local/bin/x", "{address}", "{jail}"]);
    assert_eq!(n.webhook.as_deref(), Some("http://127.0.0.1:9000/ban"));
    assert_eq!(n.timeout.get(), Duration::from_secs(5));
    assert_eq!(n.events, [NotifyEvent::Ban]);
}

#[test]
fn bad_notify_hooks_are_reported_each_with_its_key() {
    let all = problems(&good_with(
        "backends = [\"xdp\"]\n",
        "backends = [\"xdp\"]\n[jails.ssh.notify]\nexec = [\"notify-send\", \"{adress}\"]\nwebhook = \"https://hooks.example/ban\"\ntimeout = \"0s\"\nevents = []\n",
    ));
    assert_problem(&all, 24, 9, "jails.ssh.notify.exec[0]", "absolute path");
    assert_problem(
        &all,
        24,
        24,
        "jails.ssh.notify.exec[1]",
        "unknown placeholder {adress}",
    );
    assert_problem(&all, 25, 11, "jails.ssh.notify.webhook", "only http://");
    assert_problem(&all, 26, 11, "jails.ssh.notify.timeout", "longer than 0s");
    assert_problem(&all, 27, 10, "jails.ssh.notify.events", "lists no event");
    let all = problems(&good_with(
        "backends = [\"xdp\"]\n",
        "backends = [\"xdp\"]\nnotify = { timeout = \"1s\" }\n",
    ));
    assert!(
        all.iter()
            .any(|p| p.contains("jails.ssh.notify: sets neither exec nor webhook")),
        "{all:?}"
    );
}

#[test]
fn filter_modes_are_named_in_the_reference_and_unknown_ones_list_the_modes() {
    let text = GOOD.replace(
        "filters = [\"ssh-fail\"]",
        "filters = [\"sshd[mode=aggressive]\"]",
    );
    let cfg = ok(&text);
    assert_eq!(cfg.sources["auth"].filters, vec!["sshd[mode=aggressive]"]);

    let text = GOOD
        .replacen(
            "filters = [\"ssh-fail\"]",
            "filters = [\"sshd[mode=agressive]\"]",
            1,
        )
        .replacen(
            "filters = [\"ssh-fail\"]",
            "filters = [\"sshd[aggressive]\"]",
            1,
        );
    let all = problems(&text);
    assert_problem(
        &all,
        15,
        12,
        "sources.auth.filters[0]",
        "filter \"sshd\" has no mode \"agressive\" (its modes: normal, aggressive)",
    );
    assert_problem(
        &all,
        18,
        12,
        "jails.ssh.filters[0]",
        "write NAME or NAME[mode=MODE]",
    );
}

#[test]
fn session_roles_and_modes_of_a_filter_table_are_checked() {
    let text = good_with(
        "regex = ['Failed password for .* from <HOST> port \\d+$']",
        "regex = ['Failed password for .* from <HOST> port \\d+$']\naddress = ['no host here']\nsession_window = \"0s\"\n[filters.ssh-fail.modes.normal]\nend = ['x']",
    );
    let all = problems(&text);
    // A filter with session roles may have regexes without <HOST> (their lines
    // take the session's address): not a problem.
    assert!(!all.iter().any(|p| p.contains("no <HOST>")), "{all:?}");
    assert!(
        all.iter()
            .any(|p| p.contains("filters.ssh-fail.session_window") && p.contains("longer than 0s")),
        "{all:?}"
    );
    assert!(
        all.iter()
            .any(|p| p.contains("filters.ssh-fail.modes") && p.contains("not a mode name")),
        "{all:?}"
    );
    // Without session roles, a regex without <HOST> could never count.
    let text = good_with(
        "regex = ['Failed password for .* from <HOST> port \\d+$']",
        "regex = ['Failed password for .* from <HOST> port \\d+$', 'no host here']",
    );
    let all = problems(&text);
    assert!(
        all.iter()
            .any(|p| p.contains("filters.ssh-fail.regex[1]") && p.contains("no <HOST>")),
        "{all:?}"
    );
}

/// Issue 16, item 7: a key given twice was reported as "duplicate key" alone.
#[test]
fn a_duplicate_key_is_named() {
    let p = problems("[agent]\nstate_dir = \"/srv/a\"\nstate_dir = \"/srv/b\"\n");
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].contains("3:1") && p[0].contains("duplicate key `state_dir`"),
        "{p:?}"
    );
}

#[test]
fn a_relative_fail2ban_path_is_relative_to_the_config_file() {
    // Regression (issue 11): it was read relative to the working directory.
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("filters")).expect("dir");
    std::fs::write(
        dir.path().join("filters/demo.conf"),
        "[Definition]\nfailregex = ^denied <HOST>$\n",
    )
    .expect("filter");
    let path = dir.path().join("log2drop.toml");
    std::fs::write(
        &path,
        "[backends.dry-run]\n\n[filters.demo]\nfail2ban = \"filters/demo.conf\"\n\n[sources.s]\npath = \"/var/log/x.log\"\nfilters = [\"demo\"]\n\n[jails.j]\nfilters = [\"demo\"]\n",
    )
    .expect("config");
    assert_ne!(std::env::current_dir().expect("cwd"), dir.path());
    let cfg = load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        cfg.filters["demo"].fail2ban.as_deref(),
        Some(dir.path().join("filters/demo.conf").as_path())
    );
    // An absolute path stays as written.
    let mut cfg: Config =
        toml::from_str("[filters.demo]\nfail2ban = \"/etc/fail2ban/filter.d/sshd.conf\"\n")
            .expect("toml");
    resolve_relative_paths(&mut cfg, Path::new("/nowhere/log2drop.toml"));
    assert_eq!(
        cfg.filters["demo"].fail2ban.as_deref(),
        Some(Path::new("/etc/fail2ban/filter.d/sshd.conf"))
    );
}

#[test]
fn auto_source_needs_path_and_match() {
    let text = good_with(
        "[sources.auth]\npath = \"/var/log/auth.log\"\nfilters = [\"ssh-fail\"]",
        "[sources.auth]\ntype = \"auto\"\npath = \"/var/log/auth.log\"\nmatch = [\"_SYSTEMD_UNIT=ssh.service\"]\nstart = \"beginning\"\nfilters = [\"ssh-fail\"]",
    );
    let cfg = ok(&text);
    assert_eq!(cfg.sources["auth"].kind, SourceKind::Auto);
    let no_match = good_with(
        "[sources.auth]\npath = \"/var/log/auth.log\"\nfilters = [\"ssh-fail\"]",
        "[sources.auth]\ntype = \"auto\"\npath = \"/var/log/auth.log\"\nfilters = [\"ssh-fail\"]",
    );
    let all = problems(&no_match);
    assert!(
        all.iter()
            .any(|p| p.contains("sources.auth") && p.contains("needs both path")),
        "{all:?}"
    );
    let bad = good_with(
        "[sources.auth]\npath = \"/var/log/auth.log\"\nfilters = [\"ssh-fail\"]",
        "[sources.auth]\ntype = \"auto\"\npath = \"auth.log\"\nmatch = [\"unit=x\"]\nfilters = [\"ssh-fail\"]",
    );
    let all = problems(&bad);
    assert!(
        all.iter()
            .any(|p| p.contains("sources.auth.path") && p.contains("absolute")),
        "{all:?}"
    );
    assert!(
        all.iter().any(|p| p.contains("sources.auth.match[0]")),
        "{all:?}"
    );
}

#[test]
fn auto_source_resolves_to_the_file_when_it_exists_else_the_journal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("auth.log");
    let src: SourceConfig = toml::from_str(&format!(
        "type = \"auto\"\npath = \"{}\"\nmatch = [\"_SYSTEMD_UNIT=ssh.service\"]\nfilters = [\"sshd\"]\n",
        log.display()
    ))
    .expect("source");
    let without = if cfg!(target_os = "linux") {
        SourceKind::Journal
    } else {
        SourceKind::File
    };
    assert_eq!(src.resolved_kind(), without);
    std::fs::write(&log, b"").expect("create");
    assert_eq!(src.resolved_kind(), SourceKind::File);
    // A glob counts when any file matches it.
    let glob: SourceConfig = toml::from_str(&format!(
        "type = \"auto\"\npath = \"{}/*.log\"\nmatch = [\"_SYSTEMD_UNIT=ssh.service\"]\nfilters = [\"sshd\"]\n",
        dir.path().display()
    ))
    .expect("source");
    assert_eq!(glob.resolved_kind(), SourceKind::File);
    std::fs::remove_file(&log).expect("remove");
    assert_eq!(glob.resolved_kind(), without);
}

#[test]
fn timed_access_sets_the_delay_and_the_ban_length() {
    let cfg = ok(&good_with(
        "backends = [\"xdp\"]",
        "backends = [\"xdp\"]\naccess = { allow = \"1h\", block = \"2h\" }",
    ));
    let jail = &cfg.jails["ssh"];
    assert_eq!(jail.delay(), Some(Duration::from_secs(3600)));
    assert_eq!(jail.ban_length(), Duration::from_secs(7200));
    let all = problems(&good_with(
        "backends = [\"xdp\"]",
        "backends = [\"xdp\"]\nban_delay = \"1h\"\naccess = { allow = \"0s\", block = \"0s\" }",
    ));
    let text = all.join("\n");
    assert!(text.contains("jails.ssh.access: set either"), "{text}");
    assert!(
        text.contains("jails.ssh.access.allow: must be longer"),
        "{text}"
    );
    assert!(
        text.contains("jails.ssh.access.block: must be longer"),
        "{text}"
    );
}
