//! Hook tests: templates, URLs, real processes (argv without a shell, timeouts that
//! kill), and a webhook server on 127.0.0.1 that checks what arrives.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};

use proptest::prelude::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;
use crate::engine::{Ban, BanReason};

fn ban(target: &str, jail: &str) -> Ban {
    let since = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    Ban {
        target: target.parse().expect("target"),
        jail: Arc::from(jail),
        since,
        until: Some(since + Duration::from_secs(3600)),
        origin: Origin::Jail,
        reason: Some(BanReason {
            filter: Arc::from("ssh-fail"),
            first_offence: since,
            last_offence: since,
            captures: Default::default(),
        }),
        forced: false,
    }
}

fn event() -> HookEvent {
    HookEvent::of(&Decision::Ban(ban("198.51.100.7/32", "ssh")))
}

#[test]
fn templates_accept_known_placeholders_and_escapes() {
    for ok in [
        "{address}",
        "--ip={address}/{jail}",
        "plain",
        "{{literal}}",
        "{event}{origin}{since}{until}{filter}",
        "{user} {captures}",
        "",
    ] {
        assert_eq!(check_template(ok), Ok(()), "{ok}");
    }
    let e = check_template("{adress}").expect_err("typo");
    assert!(e.contains("unknown placeholder {adress}"), "{e}");
    assert!(e.contains("{address}"), "lists the known ones: {e}");
    assert!(
        check_template("{address")
            .expect_err("unclosed")
            .contains("unclosed")
    );
    assert!(
        check_template("a}b")
            .expect_err("stray")
            .contains("unmatched")
    );
}

#[test]
fn render_replaces_inside_one_argument() {
    let ev = event();
    assert_eq!(render("{address}", &ev), "198.51.100.7");
    assert_eq!(
        render("--ban={address}@{jail}", &ev),
        "--ban=198.51.100.7@ssh"
    );
    assert_eq!(render("{{address}}", &ev), "{address}");
    assert_eq!(render("{until}", &ev), "2023-11-14T23:13:20Z");
    assert_eq!(
        render("{filter}:{event}:{origin}", &ev),
        "ssh-fail:ban:jail"
    );
    let mut permanent = ban("203.0.113.0/24", "manual");
    permanent.until = None;
    permanent.reason = None;
    permanent.origin = Origin::Manual;
    let ev = HookEvent::of(&Decision::Unban(permanent));
    assert_eq!(
        render("{address} {until} {event} [{filter}]", &ev),
        "203.0.113.0/24 permanent unban []"
    );
}

proptest! {
    /// Whatever a checked template holds, rendering terminates and only the
    /// placeholders change: the text outside them comes through unchanged.
    #[test]
    fn render_keeps_literal_text(prefix in "[a-z =/-]{0,12}", suffix in "[a-z =/-]{0,12}") {
        let t = format!("{prefix}{{jail}}{suffix}");
        prop_assert!(check_template(&t).is_ok());
        prop_assert_eq!(render(&t, &event()), format!("{prefix}ssh{suffix}"));
    }

    #[test]
    fn any_text_either_checks_or_is_refused(t in ".{0,40}") {
        if check_template(&t).is_ok() {
            let _ = render(&t, &event());
        }
    }
}

#[test]
fn webhook_urls() {
    let u = WebhookUrl::parse("http://127.0.0.1:8080/hooks/ban?x=1").expect("url");
    assert_eq!(
        (u.host.as_str(), u.port, u.path.as_str()),
        ("127.0.0.1", 8080, "/hooks/ban?x=1")
    );
    let u = WebhookUrl::parse("http://hooks.example").expect("url");
    assert_eq!((u.port, u.path.as_str()), (80, "/"));
    let u = WebhookUrl::parse("http://[::1]:9/x").expect("v6");
    assert_eq!(u.host, "::1");
    assert!(matches!(
        WebhookUrl::parse("https://hooks.example/"),
        Err(WebhookError::Scheme { .. })
    ));
    assert!(matches!(
        WebhookUrl::parse("ftp://hooks.example/"),
        Err(WebhookError::Scheme { .. })
    ));
    assert!(WebhookUrl::parse("/just/a/path").is_err());
    assert!(WebhookUrl::parse("not a url").is_err());
    assert!(WebhookUrl::parse("http://user@host/").is_err());
}

/// A script that writes its argument count and each argument on its own line to
/// `out`, so a test sees exactly the argv it got.
fn argv_recorder(dir: &Path) -> (PathBuf, PathBuf) {
    let script = dir.join("record.sh");
    let out = dir.join("argv.txt");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n{{ echo \"$#\"; for a in \"$@\"; do echo \"$a\"; done; echo \"PATH=$PATH HOME=${{HOME:-unset}}\"; }} > '{}'\n",
            out.display()
        ),
    )
    .expect("write script");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    (script, out)
}

#[tokio::test]
async fn exec_gets_exactly_the_rendered_argv_and_no_environment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (script, out) = argv_recorder(dir.path());
    let ev = event();
    let argv: Vec<String> = [
        script.to_string_lossy().into_owned(),
        "{address}".into(),
        "jail {jail}; rm -rf /".into(),
        "$(id)".into(),
    ]
    .iter()
    .map(|a| render(a, &ev))
    .collect();
    assert_eq!(run_exec(argv, Duration::from_secs(5)).await, Outcome::Ok);
    let got = std::fs::read_to_string(&out).expect("script output");
    let lines: Vec<&str> = got.lines().collect();
    assert_eq!(
        lines[..4],
        ["3", "198.51.100.7", "jail ssh; rm -rf /", "$(id)"],
        "{got}"
    );
    assert_eq!(lines[4], format!("PATH={HOOK_PATH} HOME=unset"));
}

#[tokio::test]
async fn user_placeholder_is_one_escaped_argument_whatever_the_user_wrote() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (script, out) = argv_recorder(dir.path());
    let mut b = ban("198.51.100.7/32", "ssh");
    let hostile = format!(
        "root\n--flag $(id) `id`; rm -rf / \x1b[31m{}",
        "y".repeat(1000)
    );
    if let Some(r) = b.reason.as_mut() {
        r.captures.push_named("user", hostile.as_bytes());
    }
    let ev = HookEvent::of(&Decision::Ban(b));
    let argv: Vec<String> = [
        script.to_string_lossy().into_owned(),
        "{user}".into(),
        "--who={captures}".into(),
    ]
    .iter()
    .map(|a| render(a, &ev))
    .collect();
    assert_eq!(run_exec(argv, Duration::from_secs(5)).await, Outcome::Ok);
    let got = std::fs::read_to_string(&out).expect("script output");
    let lines: Vec<&str> = got.lines().collect();
    // Two arguments, each on one line: the newline and the escape arrive escaped.
    assert_eq!(lines[0], "2", "{got}");
    assert!(
        lines[1].starts_with("root\\u{a}--flag $(id) `id`; rm -rf / \\u{1b}[31myyy"),
        "{got}"
    );
    assert!(
        lines[1].ends_with('…') && lines[1].len() < 120,
        "bounded: {got}"
    );
    assert!(
        lines[2].starts_with("--who=user=root\\u{a}--flag\\u{20}"),
        "{got}"
    );
    assert!(!got.contains('\x1b'));
    // The webhook's JSON carries the bounded raw value, escaped by JSON itself.
    let json = serde_json::to_string(&ev).expect("json");
    assert!(
        json.contains(r#""captures":{"user":"root\n--flag"#),
        "{json}"
    );
    assert!(!json.contains('\x1b'));
}

#[tokio::test]
async fn exec_failures_and_timeouts_are_reported() {
    assert!(matches!(
        run_exec(vec!["/bin/false".into()], Duration::from_secs(5)).await,
        Outcome::Failed(_)
    ));
    match run_exec(vec!["/nonexistent/hook".into()], Duration::from_secs(5)).await {
        Outcome::Failed(why) => assert!(why.contains("/nonexistent/hook"), "{why}"),
        other => panic!("expected a failure, got {other:?}"),
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let marker = dir.path().join("child-survived");
    // The script's own child must die with it: the group is killed.
    let script = dir.path().join("slow.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n(sleep 1; touch '{}') &\nsleep 10\n",
            marker.display()
        ),
    )
    .expect("script");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let started = Instant::now();
    let outcome = run_exec(
        vec![script.to_string_lossy().into_owned()],
        Duration::from_millis(300),
    )
    .await;
    assert_eq!(outcome, Outcome::TimedOut);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the 10 s hook was not cut at its timeout: {:?}",
        started.elapsed()
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!marker.exists(), "the hook's child outlived the timeout");
}

/// A one-shot HTTP server on 127.0.0.1: answers `status` and hands back the raw
/// request it received.
async fn one_shot_server(status: u16) -> (String, tokio::task::JoinHandle<Vec<u8>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let task = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.expect("accept");
        let mut req = Vec::new();
        let mut buf = [0u8; 4096];
        // Read the head, then Content-Length bytes of body.
        loop {
            let n = s.read(&mut buf).await.expect("read");
            req.extend_from_slice(&buf[..n]);
            if let Some(end) = find(&req, b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&req[..end]).to_lowercase();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length: "))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                if req.len() >= end + 4 + len {
                    break;
                }
            }
            if n == 0 {
                break;
            }
        }
        let answer = format!("HTTP/1.1 {status} X\r\nContent-Length: 0\r\n\r\n");
        s.write_all(answer.as_bytes()).await.expect("answer");
        req
    });
    (format!("http://127.0.0.1:{port}/hooks/ban"), task)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[tokio::test]
async fn webhook_posts_the_event_as_json() {
    let (url, server) = one_shot_server(204).await;
    let ev = event();
    let body = serde_json::to_vec(&ev).expect("json");
    let outcome = post_webhook(
        WebhookUrl::parse(&url).expect("url"),
        body,
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(outcome, Outcome::Ok);
    let req = server.await.expect("server");
    let end = find(&req, b"\r\n\r\n").expect("head");
    let head = String::from_utf8_lossy(&req[..end]);
    assert!(head.starts_with("POST /hooks/ban HTTP/1.1\r\n"), "{head}");
    assert!(
        head.contains("\r\nContent-Type: application/json"),
        "{head}"
    );
    let json: serde_json::Value = serde_json::from_slice(&req[end + 4..]).expect("json body");
    assert_eq!(
        json,
        serde_json::json!({
            "v": 1, "event": "ban", "address": "198.51.100.7", "jail": "ssh",
            "origin": "jail", "since": "2023-11-14T22:13:20Z",
            "until": "2023-11-14T23:13:20Z", "filter": "ssh-fail"
        })
    );
}

#[tokio::test]
async fn webhook_errors_and_silence_are_reported() {
    let (url, _server) = one_shot_server(500).await;
    match post_webhook(
        WebhookUrl::parse(&url).expect("url"),
        b"{}".to_vec(),
        Duration::from_secs(5),
    )
    .await
    {
        Outcome::Failed(why) => assert!(why.contains("HTTP 500"), "{why}"),
        other => panic!("expected a failure, got {other:?}"),
    }
    // Accepts but never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let _hold = tokio::spawn(async move {
        let _conn = listener.accept().await;
        tokio::time::sleep(Duration::from_secs(30)).await;
    });
    let url = WebhookUrl::parse(&format!("http://127.0.0.1:{port}/")).expect("url");
    assert_eq!(
        post_webhook(url, b"{}".to_vec(), Duration::from_millis(300)).await,
        Outcome::TimedOut
    );
    // Nothing listens.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let url = WebhookUrl::parse(&format!("http://127.0.0.1:{closed}/")).expect("url");
    assert!(matches!(
        post_webhook(url, b"{}".to_vec(), Duration::from_secs(5)).await,
        Outcome::Failed(_)
    ));
}

#[test]
fn status_lines() {
    assert_eq!(parse_status_line(b"HTTP/1.1 200 OK\r\n"), Some(200));
    assert_eq!(parse_status_line(b"HTTP/1.0 404 Not Found\r\n"), Some(404));
    assert_eq!(parse_status_line(b"HTTP/2 200\r\n"), None);
    assert_eq!(parse_status_line(b"SSH-2.0-OpenSSH\r\n"), None);
    assert_eq!(parse_status_line(b"HTTP/1.1 2x0\r\n"), None);
}

fn config_with_notify(notify: &str) -> Config {
    let text = format!(
        r#"
[backends.dry-run]
[filters.f]
regex = ['f <HOST>$']
[sources.s]
path = "/var/log/s.log"
filters = ["f"]
[jails.ssh]
filters = ["f"]
notify = {notify}
"#
    );
    crate::config::parse(&text, Path::new("t.toml")).unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_returns_at_once_and_drops_what_exceeds_the_bound() {
    let cfg = config_with_notify(r#"{ exec = ["/bin/sleep", "3"], timeout = "10s" }"#);
    let hooks = Hooks::from_config(&cfg, tokio::runtime::Handle::current()).expect("hooks");
    let n = MAX_RUNNING + 6;
    let decisions: Vec<Decision> = (0..n)
        .map(|i| Decision::Ban(ban(&format!("198.51.100.{}/32", i % 250), "ssh")))
        .collect();
    let started = Instant::now();
    hooks.notify(&decisions);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "notify waited for the hooks: {:?}",
        started.elapsed()
    );
    let s = hooks.stats();
    assert_eq!((s.started, s.dropped), (MAX_RUNNING as u64, 6));
    // Unbans are not among this jail's events; other jails have no hooks.
    hooks.notify(&[
        Decision::Unban(ban("198.51.100.1/32", "ssh")),
        Decision::Ban(ban("198.51.100.1/32", "web")),
    ]);
    assert_eq!(hooks.stats().started + hooks.stats().dropped, n as u64);
}
