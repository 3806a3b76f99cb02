//! Notification hooks: telling other programs about bans, per jail
//! (`[jails.NAME] notify = { exec = [...], webhook = "http://...", timeout = "5s" }`).
//!
//! Hooks are not backends: they run after a batch is enforced, each in its own
//! task with a timeout, and nothing waits for them, so a slow or failing hook never
//! delays a ban. How many run at once is bounded ([`MAX_RUNNING`]); an event that
//! finds every slot busy is dropped and counted rather than queued, so a flood of
//! bans cannot pile up processes or memory.
//!
//! - `exec`: the program is started directly with an argv built from the template,
//!   never through a shell. Placeholders (`{address}`, `{jail}`, ...) are replaced
//!   inside each argument and each argument stays exactly one argument, whatever
//!   the values hold. `{user}` and `{captures}` carry attacker-written text (the
//!   named captures of the offence that caused the ban): bounded, and escaped so
//!   that no control character reaches the program or its logs. The program runs in its own process group with an empty
//!   environment (plus a fixed `PATH`); on timeout the whole group is killed.
//! - `webhook`: an HTTP/1.1 POST of the event as JSON ([`HookEvent`]) to an
//!   `http://` URL, written by hand over a tokio `TcpStream` (one request, one
//!   status line read, `Connection: close`). `https://` is refused at config
//!   check: point the webhook at a local relay, or use `exec` with a TLS client.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Semaphore;

use crate::config::{Config, NotifyEvent};
use crate::engine::{Decision, Origin};
use crate::filter::{Captures, capture};

/// Most hooks running at once, over all jails.
pub(crate) const MAX_RUNNING: usize = 64;

/// Placeholders an `exec` argument may contain.
pub(crate) const PLACEHOLDERS: &[&str] = &[
    "address", "jail", "event", "origin", "since", "until", "filter", "user", "captures",
];

/// `PATH` given to hook programs (their environment is otherwise empty).
const HOOK_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Longest status line read from a webhook's answer.
const MAX_STATUS_LINE: usize = 1024;

/// A webhook URL that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// Not a URL at all.
    #[error("{url:?} is not a URL: {reason}")]
    Invalid {
        /// The URL as written.
        url: String,
        /// What the parser said.
        reason: String,
    },
    /// A scheme other than http.
    #[error(
        "{url:?}: only http:// webhooks are supported (no TLS client is built in); use a local relay or an exec hook"
    )]
    Scheme {
        /// The URL as written.
        url: String,
    },
    /// No host.
    #[error("{url:?} names no host")]
    NoHost {
        /// The URL as written.
        url: String,
    },
}

/// A parsed `http://HOST[:PORT]/PATH?QUERY` webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WebhookUrl {
    /// Host name or address, without IPv6 brackets.
    pub host: String,
    /// TCP port (80 unless given).
    pub port: u16,
    /// What goes on the request line: path and query, at least `/`.
    pub path: String,
    /// The `Host:` header: host and port as written.
    authority: String,
}

impl WebhookUrl {
    /// Parses and checks a webhook URL.
    pub fn parse(url: &str) -> Result<WebhookUrl, WebhookError> {
        let uri: http::Uri =
            url.parse()
                .map_err(|e: http::uri::InvalidUri| WebhookError::Invalid {
                    url: url.to_owned(),
                    reason: e.to_string(),
                })?;
        if uri.scheme() != Some(&http::uri::Scheme::HTTP) {
            return Err(WebhookError::Scheme {
                url: url.to_owned(),
            });
        }
        let authority = uri.authority().ok_or_else(|| WebhookError::NoHost {
            url: url.to_owned(),
        })?;
        if authority.as_str().contains('@') {
            return Err(WebhookError::Invalid {
                url: url.to_owned(),
                reason: "user info (user@host) is not supported".into(),
            });
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        if host.is_empty() {
            return Err(WebhookError::NoHost {
                url: url.to_owned(),
            });
        }
        let path = uri
            .path_and_query()
            .map_or("/", http::uri::PathAndQuery::as_str);
        Ok(WebhookUrl {
            host,
            port: authority.port_u16().unwrap_or(80),
            path: if path.is_empty() { "/" } else { path }.to_owned(),
            authority: authority.as_str().to_owned(),
        })
    }
}

/// Checks an `exec` argument template: every `{NAME}` is a known placeholder;
/// `{{` and `}}` stand for literal braces.
pub(crate) fn check_template(arg: &str) -> Result<(), String> {
    let mut rest = arg;
    while let Some(i) = rest.find(['{', '}']) {
        let after = &rest[i + 1..];
        if rest[i..].starts_with("{{") || rest[i..].starts_with("}}") {
            rest = &after[1..];
            continue;
        }
        if rest.as_bytes()[i] == b'}' {
            return Err(format!(
                "{arg:?}: unmatched '}}' (write '}}}}' for a literal brace)"
            ));
        }
        let Some(end) = after.find('}') else {
            return Err(format!(
                "{arg:?}: unclosed '{{' (write '{{{{' for a literal brace)"
            ));
        };
        let name = &after[..end];
        if !PLACEHOLDERS.contains(&name) {
            return Err(format!(
                "{arg:?}: unknown placeholder {{{name}}} (known: {})",
                PLACEHOLDERS
                    .iter()
                    .map(|p| format!("{{{p}}}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        rest = &after[end + 1..];
    }
    Ok(())
}

/// Fills a checked template with an event's values. The result is one argument.
pub fn render(template: &str, ev: &HookEvent) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(i) = rest.find(['{', '}']) {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if rest[i..].starts_with("{{") || rest[i..].starts_with("}}") {
            out.push(rest.as_bytes()[i] as char);
            rest = &after[1..];
            continue;
        }
        match after.find('}') {
            Some(end) if rest.as_bytes()[i] == b'{' => {
                out.push_str(&ev.placeholder(&after[..end]));
                rest = &after[end + 1..];
            }
            // Unreachable for a checked template; keep the text as it is.
            _ => {
                out.push(rest.as_bytes()[i] as char);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// What a hook is told: the webhook's JSON body, and the values of the exec
/// placeholders.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HookEvent {
    /// Body format version.
    pub v: u32,
    /// `ban` or `unban`.
    pub event: NotifyEvent,
    /// Bare address for a host, `ADDR/LEN` for a prefix.
    pub address: String,
    /// The jail that owns the ban.
    pub jail: String,
    /// `jail`, `manual` or `subnet`.
    pub origin: Origin,
    /// Start of the ban, RFC 3339 UTC.
    pub since: String,
    /// End of the ban, RFC 3339 UTC; `null` when permanent.
    pub until: Option<String>,
    /// The filter whose offence caused the ban, for jail bans.
    pub filter: Option<String>,
    /// That offence's named captures (`user`...), bounded, raw: attacker text
    /// (JSON escapes it; the exec placeholders `{user}` and `{captures}` give
    /// it escaped).
    #[serde(skip_serializing_if = "Captures::is_empty")]
    pub captures: Captures,
}

impl HookEvent {
    /// The event for a decision.
    pub fn of(d: &Decision) -> HookEvent {
        let (event, b) = match d {
            Decision::Ban(b) => (NotifyEvent::Ban, b),
            Decision::Unban(b) => (NotifyEvent::Unban, b),
        };
        HookEvent {
            v: 1,
            event,
            address: crate::addr::display_target(&b.target),
            jail: b.jail.to_string(),
            origin: b.origin,
            since: crate::control::protocol::rfc3339(b.since),
            until: b.until.map(crate::control::protocol::rfc3339),
            filter: b.reason.as_ref().map(|r| r.filter.to_string()),
            captures: b
                .reason
                .as_ref()
                .map(|r| r.captures.clone())
                .unwrap_or_default(),
        }
    }

    fn placeholder(&self, name: &str) -> String {
        match name {
            "address" => self.address.clone(),
            "jail" => self.jail.clone(),
            "event" => match self.event {
                NotifyEvent::Ban => "ban".into(),
                NotifyEvent::Unban => "unban".into(),
            },
            "origin" => self.origin.as_str().into(),
            "since" => self.since.clone(),
            "until" => self.until.clone().unwrap_or_else(|| "permanent".into()),
            "filter" => self.filter.clone().unwrap_or_default(),
            // Attacker text, escaped (no control characters); the argument stays
            // one argument whatever it holds.
            "user" => self
                .captures
                .user()
                .map(|u| capture::escape(u).into_owned())
                .unwrap_or_default(),
            "captures" => self.captures.to_fields(),
            _ => String::new(),
        }
    }
}

/// One jail's hooks, ready to run.
#[derive(Debug)]
struct JailHooks {
    exec: Vec<String>,
    webhook: Option<WebhookUrl>,
    timeout: Duration,
    events: Vec<NotifyEvent>,
}

/// How hooks fared since start (`stats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct HookStats {
    /// Hooks started.
    pub started: u64,
    /// Hooks that finished successfully (exit 0, HTTP 2xx).
    pub succeeded: u64,
    /// Hooks that failed (could not start, non-zero exit, refused, non-2xx).
    pub failed: u64,
    /// Hooks killed or abandoned at their timeout.
    pub timed_out: u64,
    /// Events not run because [`MAX_RUNNING`] hooks were already running.
    pub dropped: u64,
}

#[derive(Debug, Default)]
struct Counters {
    started: AtomicU64,
    succeeded: AtomicU64,
    failed: AtomicU64,
    timed_out: AtomicU64,
    dropped: AtomicU64,
}

/// How one hook run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Exit status 0, or an HTTP 2xx status.
    Ok,
    /// Anything else, with the reason.
    Failed(String),
    /// The timeout passed first.
    TimedOut,
}

/// The hooks of every jail, and the runtime they run on.
#[derive(Debug)]
pub struct Hooks {
    jails: HashMap<String, Arc<JailHooks>>,
    permits: Arc<Semaphore>,
    counters: Arc<Counters>,
    runtime: tokio::runtime::Handle,
}

impl Hooks {
    /// Builds the hooks of a validated config; they run on `runtime`.
    pub fn from_config(
        cfg: &Config,
        runtime: tokio::runtime::Handle,
    ) -> Result<Hooks, WebhookError> {
        let mut jails = HashMap::new();
        for (name, jail) in &cfg.jails {
            let Some(n) = &jail.notify else {
                continue;
            };
            let webhook = n.webhook.as_deref().map(WebhookUrl::parse).transpose()?;
            jails.insert(
                name.clone(),
                Arc::new(JailHooks {
                    exec: n.exec.clone(),
                    webhook,
                    timeout: n.timeout.get(),
                    events: n.events.clone(),
                }),
            );
        }
        Ok(Hooks {
            jails,
            permits: Arc::new(Semaphore::new(MAX_RUNNING)),
            counters: Arc::new(Counters::default()),
            runtime,
        })
    }

    /// The hooks of a new config (reload) sharing this one's counters and its
    /// bound on running hooks, so hooks still running count against it.
    pub(crate) fn with_config(&self, cfg: &Config) -> Result<Hooks, WebhookError> {
        let fresh = Hooks::from_config(cfg, self.runtime.clone())?;
        Ok(Hooks {
            jails: fresh.jails,
            permits: self.permits.clone(),
            counters: self.counters.clone(),
            runtime: self.runtime.clone(),
        })
    }

    /// Starts the hooks for the decisions of an enforced batch and returns at once.
    pub fn notify(&self, decisions: &[Decision]) {
        if self.jails.is_empty() {
            return;
        }
        for d in decisions {
            let (event, ban) = match d {
                Decision::Ban(b) => (NotifyEvent::Ban, b),
                Decision::Unban(b) => (NotifyEvent::Unban, b),
            };
            let Some(hooks) = self.jails.get(&*ban.jail) else {
                continue;
            };
            if !hooks.events.contains(&event) {
                continue;
            }
            let ev = HookEvent::of(d);
            if !hooks.exec.is_empty() {
                let argv: Vec<String> = hooks.exec.iter().map(|a| render(a, &ev)).collect();
                self.spawn(&ev, "exec", run_exec(argv, hooks.timeout));
            }
            if let Some(url) = &hooks.webhook {
                let body = serde_json::to_vec(&ev).unwrap_or_default();
                self.spawn(
                    &ev,
                    "webhook",
                    post_webhook(url.clone(), body, hooks.timeout),
                );
            }
        }
    }

    fn spawn<F>(&self, ev: &HookEvent, kind: &'static str, run: F)
    where
        F: std::future::Future<Output = Outcome> + Send + 'static,
    {
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(hook = kind, address = %ev.address, jail = %ev.jail,
                "{MAX_RUNNING} hooks already running; this one is skipped");
            return;
        };
        self.counters.started.fetch_add(1, Ordering::Relaxed);
        let counters = self.counters.clone();
        let (address, jail) = (ev.address.clone(), ev.jail.clone());
        self.runtime.spawn(async move {
            let outcome = run.await;
            drop(permit);
            match outcome {
                Outcome::Ok => {
                    counters.succeeded.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(hook = kind, %address, %jail, "hook done");
                }
                Outcome::Failed(why) => {
                    counters.failed.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(hook = kind, %address, %jail, error = %why, "hook failed");
                }
                Outcome::TimedOut => {
                    counters.timed_out.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(hook = kind, %address, %jail, "hook timed out");
                }
            }
        });
    }

    /// Counters since start.
    pub fn stats(&self) -> HookStats {
        let c = &self.counters;
        HookStats {
            started: c.started.load(Ordering::Relaxed),
            succeeded: c.succeeded.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            timed_out: c.timed_out.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
        }
    }
}

/// Runs `argv` without a shell, in its own process group, killing the group at
/// the timeout.
pub(crate) async fn run_exec(argv: Vec<String>, timeout: Duration) -> Outcome {
    let Some((program, args)) = argv.split_first() else {
        return Outcome::Failed("empty argv".into());
    };
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .env_clear()
        .env("PATH", HOOK_PATH)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return Outcome::Failed(format!("cannot start {program}: {e}")),
    };
    let pgid = child.id();
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) if status.success() => Outcome::Ok,
        Ok(Ok(status)) => Outcome::Failed(format!("{program} exited with {status}")),
        Ok(Err(e)) => Outcome::Failed(format!("waiting for {program}: {e}")),
        Err(_) => {
            if let Some(pgid) = pgid.and_then(|p| i32::try_from(p).ok()) {
                // The whole group: a script's own children go too.
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pgid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            let _ = child.wait().await;
            Outcome::TimedOut
        }
    }
}

/// POSTs `body` (JSON) to `url`; 2xx is success. Bounded by `timeout` as a whole.
pub(crate) async fn post_webhook(url: WebhookUrl, body: Vec<u8>, timeout: Duration) -> Outcome {
    match tokio::time::timeout(timeout, post(&url, &body)).await {
        Ok(Ok(status)) if (200..300).contains(&status) => Outcome::Ok,
        Ok(Ok(status)) => Outcome::Failed(format!(
            "http://{}{} answered HTTP {status}",
            url.authority, url.path
        )),
        Ok(Err(e)) => Outcome::Failed(format!("http://{}{}: {e}", url.authority, url.path)),
        Err(_) => Outcome::TimedOut,
    }
}

async fn post(url: &WebhookUrl, body: &[u8]) -> std::io::Result<u16> {
    let mut last = None;
    let mut stream = None;
    for addr in tokio::net::lookup_host((url.host.as_str(), url.port)).await? {
        match tokio::net::TcpStream::connect(addr).await {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = Some(e),
        }
    }
    let Some(mut stream) = stream else {
        return Err(last.unwrap_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::NotFound, "host has no address")
        }));
    };
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: log2drop/{}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        url.path,
        url.authority,
        env!("CARGO_PKG_VERSION"),
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    stream.flush().await?;
    let mut buf = Vec::with_capacity(128);
    let mut chunk = [0u8; 256];
    while !buf.windows(2).any(|w| w == b"\r\n") {
        if buf.len() >= MAX_STATUS_LINE {
            return Err(bad_answer("status line too long"));
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(bad_answer("connection closed before a status line"));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    parse_status_line(&buf).ok_or_else(|| bad_answer("not an HTTP/1.x status line"))
}

fn bad_answer(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned())
}

/// The status code of `HTTP/1.x NNN ...`.
fn parse_status_line(buf: &[u8]) -> Option<u16> {
    let line = buf.split(|&b| b == b'\n').next()?;
    let rest = line
        .strip_prefix(b"HTTP/1.1 ")
        .or_else(|| line.strip_prefix(b"HTTP/1.0 "))?;
    let code = rest.get(..3)?;
    if !code.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(code).ok()?.parse().ok()
}

#[cfg(test)]
mod tests;
