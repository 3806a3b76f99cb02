//! Host names in `agent.allow` are resolved by the daemon and allow their
//! addresses. `localhost` resolves from /etc/hosts, so this needs no network.

use std::net::IpAddr;
use std::path::Path;

use ipnet::IpNet;
use log2drop::daemon;
use log2drop::engine::Engine;

const CONFIG: &str = r#"
[agent]
allow = ["localhost", "192.0.2.0/24"]
allow_own_addresses = false
[backends.dry-run]
[filters.f]
regex = ['f <HOST>$']
[sources.s]
path = "/var/log/s.log"
filters = ["f"]
[jails.j]
filters = ["f"]
maxretry = 1
"#;

#[tokio::test]
async fn localhost_resolves_and_only_host_names_are_resolved() {
    let cfg = log2drop::config::parse(CONFIG, Path::new("t.toml")).expect("config");
    let nets = daemon::resolve_allow_hosts(&cfg).await;
    let lo: IpNet = "127.0.0.1/32".parse().expect("net");
    assert!(nets.contains(&lo), "{nets:?}");
    let prefix: IpNet = "192.0.2.0/24".parse().expect("net");
    assert!(
        !nets.contains(&prefix),
        "prefixes are not resolved: {nets:?}"
    );

    // Handed to the engine, a resolved address is allowed like a configured one.
    let mut engine = Engine::from_config(&cfg).expect("engine");
    let own: IpNet = "198.51.100.5/32".parse().expect("net");
    engine.set_allow_hosts(vec![own], &mut Vec::new());
    let addr: IpAddr = "198.51.100.5".parse().expect("addr");
    let mut out = Vec::new();
    engine.offence("f", addr, std::time::SystemTime::now(), &mut out);
    assert!(out.is_empty());
    assert_eq!(engine.stats().allowlisted, 1);
}
