//! The lookup bounds (cache size, TTLs, timeout, slots) and forward-confirmed
//! reverse DNS, over a fake backend. The real resolver is tested against a DNS
//! server the tests start (agent/tests/dns.rs).

use super::*;
use std::sync::atomic::{AtomicU32, Ordering};

fn ip(s: &str) -> IpAddr {
    s.parse().expect("address")
}

/// Answers from a fixed table, counting calls, after `delay`.
#[derive(Default)]
struct Fake {
    forward: HashMap<String, Vec<IpAddr>>,
    reverse: HashMap<IpAddr, Vec<String>>,
    calls: Arc<AtomicU32>,
    delay: Duration,
    ttl: Duration,
    in_flight: Arc<AtomicU32>,
    most_in_flight: Arc<AtomicU32>,
}

impl Fake {
    fn new() -> Fake {
        Fake {
            ttl: Duration::from_secs(60),
            ..Fake::default()
        }
    }

    fn name(mut self, name: &str, addrs: &[&str]) -> Fake {
        self.forward
            .insert(name.into(), addrs.iter().map(|a| ip(a)).collect());
        self
    }

    fn ptr(mut self, addr: &str, name: &str) -> Fake {
        self.reverse.entry(ip(addr)).or_default().push(name.into());
        self
    }

    async fn wait(&self) {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_in_flight.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(self.delay).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Backend for Fake {
    async fn forward(&self, name: &str) -> Result<Found<IpAddr>, LookupError> {
        self.wait().await;
        match self.forward.get(name) {
            Some(a) => Ok(Found {
                records: a.clone(),
                ttl: self.ttl,
            }),
            None => Err(LookupError::NotFound(name.into())),
        }
    }

    async fn reverse(&self, addr: IpAddr) -> Result<Found<String>, LookupError> {
        self.wait().await;
        match self.reverse.get(&addr) {
            Some(n) => Ok(Found {
                records: n.clone(),
                ttl: self.ttl,
            }),
            None => Err(LookupError::NotFound(addr.to_string().into())),
        }
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("runtime")
}

#[test]
fn answers_are_normalised_and_cached_per_canonical_name() {
    rt().block_on(async {
        let fake = Fake::new().name(
            "scan.example.org",
            &["203.0.113.7", "::ffff:203.0.113.7", "2001:db8::7"],
        );
        let calls = fake.calls.clone();
        let l = Lookups::new(fake, Limits::default());
        let r = l.addresses("Scan.Example.ORG.").await;
        assert!(r.first);
        assert_eq!(
            &*r.answer.expect("found"),
            &[ip("203.0.113.7"), ip("2001:db8::7")]
        );
        let again = l.addresses("scan.example.org").await;
        assert!(!again.first, "a cached answer is not news");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(
            l.addresses("nowhere.example.org").await.answer,
            Err(LookupError::NotFound("nowhere.example.org".into()))
        );
    });
}

#[test]
fn answers_expire_after_their_ttl_capped_and_failures_after_negative_ttl() {
    rt().block_on(async {
        let mut fake = Fake::new().name("a.example.org", &["192.0.2.1"]);
        fake.ttl = Duration::from_secs(86_400);
        let calls = fake.calls.clone();
        let l = Lookups::new(
            fake,
            Limits {
                max_ttl: Duration::from_secs(600),
                negative_ttl: Duration::from_secs(30),
                ..Limits::default()
            },
        );
        l.addresses("a.example.org").await.answer.expect("found");
        l.addresses("gone.example.org")
            .await
            .answer
            .expect_err("none");
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        tokio::time::advance(Duration::from_secs(31)).await;
        l.addresses("a.example.org").await.answer.expect("cached");
        l.addresses("gone.example.org")
            .await
            .answer
            .expect_err("asked again");
        assert_eq!(calls.load(Ordering::SeqCst), 3, "only the failure expired");
        tokio::time::advance(Duration::from_secs(600)).await;
        l.addresses("a.example.org").await.answer.expect("found");
        assert_eq!(
            calls.load(Ordering::SeqCst),
            4,
            "the day-long TTL was capped"
        );
    });
}

#[test]
fn the_cache_is_bounded_oldest_out_first() {
    rt().block_on(async {
        let mut fake = Fake::new();
        for i in 0..100 {
            fake = fake.name(&format!("h{i}.example.org"), &["192.0.2.1"]);
        }
        let calls = fake.calls.clone();
        let l = Lookups::new(
            fake,
            Limits {
                cache_size: 3,
                ..Limits::default()
            },
        );
        // An attacker spraying names cannot grow it past its bound.
        for i in 0..100 {
            l.addresses(&format!("h{i}.example.org")).await;
            assert!(l.cached().0 <= 3);
        }
        l.addresses("h99.example.org").await;
        assert_eq!(calls.load(Ordering::SeqCst), 100, "the newest is kept");
        l.addresses("h0.example.org").await;
        assert_eq!(calls.load(Ordering::SeqCst), 101, "the oldest went");
    });
}

#[test]
fn a_slow_server_times_out_and_the_failure_is_cached() {
    rt().block_on(async {
        let mut fake = Fake::new().name("slow.example.org", &["192.0.2.1"]);
        fake.delay = Duration::from_secs(30);
        let calls = fake.calls.clone();
        let l = Lookups::new(
            fake,
            Limits {
                timeout: Duration::from_secs(2),
                negative_ttl: Duration::from_secs(60),
                ..Limits::default()
            },
        );
        let started = tokio::time::Instant::now();
        let r = l.addresses("slow.example.org").await;
        assert_eq!(
            r.answer,
            Err(LookupError::Timeout(
                "slow.example.org".into(),
                Duration::from_secs(2)
            ))
        );
        assert_eq!(started.elapsed(), Duration::from_secs(2));
        // A name server that stalls on purpose is not asked again at once.
        l.addresses("slow.example.org")
            .await
            .answer
            .expect_err("cached");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    });
}

#[test]
fn lookups_in_flight_are_bounded() {
    rt().block_on(async {
        let mut fake = Fake::new();
        for i in 0..20 {
            fake = fake.name(&format!("h{i}.example.org"), &["192.0.2.1"]);
        }
        fake.delay = Duration::from_millis(100);
        let most = fake.most_in_flight.clone();
        let l = Arc::new(Lookups::new(
            fake,
            Limits {
                max_in_flight: 3,
                ..Limits::default()
            },
        ));
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..20 {
            let l = l.clone();
            tasks.spawn(async move { l.addresses(&format!("h{i}.example.org")).await });
        }
        while let Some(r) = tasks.join_next().await {
            r.expect("task").answer.expect("found");
        }
        assert_eq!(most.load(Ordering::SeqCst), 3);
    });
}

#[test]
fn reverse_then_forward_confirms_only_a_name_that_points_back() {
    rt().block_on(async {
        let google = ["googlebot.com".to_owned(), "google.com".to_owned()];
        let l = Lookups::new(
            Fake::new()
                // A real crawler: PTR in the domain, and the name points back.
                .ptr("203.0.113.4", "crawl-203-0-113-4.googlebot.com")
                .name("crawl-203-0-113-4.googlebot.com", &["203.0.113.4"])
                // The address owner's PTR claims a name in the domain that
                // does not point back to it.
                .ptr("198.51.100.8", "crawl-203-0-113-4.googlebot.com")
                // Looks like the domain, is not inside it.
                .ptr("198.51.100.9", "crawl.googlebot.com.example.net")
                .name("crawl.googlebot.com.example.net", &["198.51.100.9"])
                .ptr("198.51.100.10", "notgooglebot.com")
                .name("notgooglebot.com", &["198.51.100.10"]),
            Limits::default(),
        );
        assert_eq!(
            l.confirmed_name(ip("203.0.113.4"), &google).await,
            Ok(Some("crawl-203-0-113-4.googlebot.com".into()))
        );
        for fake in [
            "198.51.100.8",
            "198.51.100.9",
            "198.51.100.10",
            "192.0.2.77",
        ] {
            assert_eq!(
                l.confirmed_name(ip(fake), &google).await,
                Ok(None),
                "{fake}"
            );
        }
    });
}

#[test]
fn domains_match_at_label_boundaries() {
    assert!(in_domain("crawl-1.googlebot.com", "googlebot.com"));
    assert!(in_domain("googlebot.com", "GoogleBot.com."));
    assert!(!in_domain("notgooglebot.com", "googlebot.com"));
    assert!(!in_domain("googlebot.com.example.net", "googlebot.com"));
}

#[test]
fn config_checks_servers_and_bounds() {
    let good = DnsConfig {
        servers: vec![
            "192.0.2.53".into(),
            "127.0.0.1:5353".into(),
            "[2001:db8::53]:53".into(),
        ],
        ..DnsConfig::default()
    };
    assert_eq!(good.problems(), Vec::new());
    assert_eq!(
        parse_server("127.0.0.1:5353"),
        Ok("127.0.0.1:5353".parse().expect("addr"))
    );
    assert_eq!(
        parse_server("192.0.2.53"),
        Ok("192.0.2.53:53".parse().expect("addr"))
    );
    let bad = DnsConfig {
        servers: vec!["ns.example.org".into()],
        timeout: HumanDuration::from_secs(0),
        cache_size: 0,
        max_in_flight: 0,
        ..DnsConfig::default()
    };
    let keys: Vec<&str> = bad.problems().iter().map(|(k, _)| *k).collect();
    assert_eq!(keys, ["servers", "timeout", "cache_size", "max_in_flight"]);
}

#[test]
fn an_unavailable_resolver_fails_every_lookup_and_proves_nobody_genuine() {
    rt().block_on(async {
        let l = Lookups::new(Unavailable("no name server".into()), Limits::default());
        assert_eq!(
            l.addresses("scan.example.org").await.answer,
            Err(LookupError::Failed(
                "scan.example.org".into(),
                "no name server".into()
            ))
        );
        assert!(
            l.confirmed_name(ip("203.0.113.4"), &["googlebot.com".to_owned()])
                .await
                .is_err()
        );
    });
}
