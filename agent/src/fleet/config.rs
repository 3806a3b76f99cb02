//! `[fleet]`: the settings of the fleet link, their validation (pure, every
//! problem at once, each tied to its key) and the build step that turns them into
//! what the link runs on (the host name, the password read from its file, the
//! Redis connection details).

use std::path::PathBuf;

use serde::Deserialize;

use crate::config::locate::KeyPath;

/// Default `stream`.
pub const DEFAULT_STREAM: &str = "log2drop:bans";
/// Default `queue`: bans waiting to be published while Redis is unreachable.
pub const DEFAULT_QUEUE: usize = 10_000;
/// Most `queue` may be.
pub const MAX_QUEUE: usize = 1_000_000;
/// Default `maxlen`: stream entries Redis keeps (approximately, `MAXLEN ~`).
pub const DEFAULT_MAXLEN: u64 = 100_000;
/// Least `maxlen` may be: shorter streams make every restart a resync.
pub const MIN_MAXLEN: u64 = 1_000;

/// `[fleet]`. See docs/fleet.md.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetConfig {
    /// `redis://HOST[:PORT][/DB]`, or `rediss://` for TLS.
    pub redis: String,
    /// ACL user name. Default: none (the `default` user).
    #[serde(default)]
    pub user: Option<String>,
    /// File holding the password (first line), readable by root only.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// The stream key; the snapshot lives in `STREAM:active` (sorted set) and
    /// `STREAM:details` (hash). Default `log2drop:bans`.
    #[serde(default = "default_stream")]
    pub stream: String,
    /// Jails whose bans this host publishes. Default none.
    #[serde(default)]
    pub share: Vec<String>,
    /// Also publish manual bans (`log2drop ban`). Default false.
    #[serde(default)]
    pub share_manual: bool,
    /// Enforce the bans other hosts publish. Default true.
    #[serde(default = "yes")]
    pub accept: bool,
    /// This host's name in the fleet. Default: the host name.
    #[serde(default)]
    pub node: Option<String>,
    /// Backends that enforce remote bans. Default: every configured backend.
    #[serde(default)]
    pub backends: Vec<String>,
    /// Widest remote prefix accepted. Default `{ v4 = 24, v6 = 48 }`.
    #[serde(default)]
    pub accept_max_prefix: MaxPrefix,
    /// Bans kept for publishing while Redis is unreachable; past it they are
    /// dropped and counted. Default 10,000.
    #[serde(default = "default_queue")]
    pub queue: usize,
    /// Stream entries Redis keeps (`XADD MAXLEN ~`). Default 100,000.
    #[serde(default = "default_maxlen")]
    pub maxlen: u64,
    /// TLS files for `rediss://`. Default: the system's roots, no client
    /// certificate.
    #[serde(default)]
    pub tls: Option<TlsFiles>,
}

/// `tls = { ca = "...", cert = "...", key = "..." }`: PEM files, each optional,
/// `cert` and `key` together.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// CA certificates the server's certificate must chain to, instead of the
    /// system's roots (a private CA).
    #[serde(default)]
    pub ca: Option<PathBuf>,
    /// Client certificate (chain) presented to the server (`tls-auth-clients`).
    #[serde(default)]
    pub cert: Option<PathBuf>,
    /// The client certificate's private key (PKCS#8, PKCS#1 or SEC1), root only.
    #[serde(default)]
    pub key: Option<PathBuf>,
}

impl TlsFiles {
    fn named(&self) -> [(&'static str, Option<&PathBuf>); 3] {
        [
            ("ca", self.ca.as_ref()),
            ("cert", self.cert.as_ref()),
            ("key", self.key.as_ref()),
        ]
    }
}

/// `accept_max_prefix = { v4 = 24, v6 = 48 }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MaxPrefix {
    /// Shortest IPv4 prefix length accepted.
    pub v4: u8,
    /// Shortest IPv6 prefix length accepted.
    pub v6: u8,
}

impl Default for MaxPrefix {
    fn default() -> Self {
        MaxPrefix { v4: 24, v6: 48 }
    }
}

fn default_stream() -> String {
    DEFAULT_STREAM.to_owned()
}
fn yes() -> bool {
    true
}
fn default_queue() -> usize {
    DEFAULT_QUEUE
}
fn default_maxlen() -> u64 {
    DEFAULT_MAXLEN
}

/// What a fleet config is checked against: the rest of the config.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// Configured jail names.
    pub jails: &'a [&'a str],
    /// Configured backend names.
    pub backends: &'a [&'a str],
}

/// Why the fleet link cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum FleetConfigError {
    /// The password file could not be read.
    #[error("fleet.password_file {}: {source}", path.display())]
    Password {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The host name could not be read for `node`.
    #[error("fleet.node: cannot read the host name ({0}); set fleet.node")]
    HostName(#[source] std::io::Error),
    /// The URL was refused by the client.
    #[error("fleet.redis: {0}")]
    Url(#[source] redis::RedisError),
    /// A TLS file could not be read or holds no usable PEM data.
    #[error("fleet.tls.{key} {}: {reason}", path.display())]
    Tls {
        /// `ca`, `cert` or `key`.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

/// A built fleet config: what the link and the engine task run on.
#[derive(Clone)]
pub struct FleetSettings {
    /// This host's name in the fleet.
    pub node: String,
    /// Redis connection details (address, TLS, user, password, database).
    pub connection: redis::ConnectionInfo,
    /// The URL without credentials, for logs and `fleet status`.
    pub url: String,
    /// The stream key.
    pub stream: String,
    /// Jails whose bans are published.
    pub share: Vec<String>,
    /// Whether manual bans are published.
    pub share_manual: bool,
    /// Whether remote bans are enforced.
    pub accept: bool,
    /// Widest remote prefix accepted: (IPv4, IPv6) prefix lengths.
    pub max_prefix: (u8, u8),
    /// Outgoing queue bound.
    pub queue: usize,
    /// Stream length kept.
    pub maxlen: u64,
    /// The CA and client certificate of `tls`, read and checked.
    #[cfg(feature = "tls")]
    pub tls: Option<redis::TlsCertificates>,
}

impl FleetSettings {
    /// A client for these settings (with the `tls` files, when given).
    pub fn client(&self) -> redis::RedisResult<redis::Client> {
        #[cfg(feature = "tls")]
        if let Some(certs) = &self.tls {
            return redis::Client::build_with_tls(self.connection.clone(), certs.clone());
        }
        redis::Client::open(self.connection.clone())
    }
}

impl std::fmt::Debug for FleetSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // No password in logs.
        f.debug_struct("FleetSettings")
            .field("node", &self.node)
            .field("url", &self.url)
            .field("stream", &self.stream)
            .field("share", &self.share)
            .finish_non_exhaustive()
    }
}

impl FleetSettings {
    /// The snapshot's sorted set of active targets by deadline (ms).
    pub fn active_key(&self) -> String {
        format!("{}:active", self.stream)
    }
    /// The snapshot's hash of ban details by target.
    pub fn details_key(&self) -> String {
        format!("{}:details", self.stream)
    }
}

/// Whether `name` is a usable fleet node or stream name: printable, no spaces.
fn plain_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 128 && name.chars().all(|c| c.is_ascii_graphic())
}

impl FleetConfig {
    /// Checks the settings against the rest of the config; every problem, each
    /// with its key under `at`.
    pub fn check(&self, at: &KeyPath, cx: Context<'_>) -> Vec<(KeyPath, String)> {
        let mut out = Vec::new();
        match url_scheme(&self.redis) {
            Some("redis") => {}
            Some("rediss") => {
                if !cfg!(feature = "tls") {
                    out.push((
                        at.key("redis"),
                        "rediss:// needs TLS, and this log2drop was built without the `tls` feature"
                            .to_owned(),
                    ));
                }
            }
            _ => out.push((
                at.key("redis"),
                format!(
                    "{:?} is not a Redis URL: give redis://HOST[:PORT][/DB] or rediss:// for TLS",
                    self.redis
                ),
            )),
        }
        if self.redis.contains('#') {
            out.push((
                at.key("redis"),
                "a URL fragment (#insecure) is refused: certificates are always checked; \
                 give a private CA in tls.ca"
                    .to_owned(),
            ));
        } else if url_scheme(&self.redis).is_some() {
            if let Err(e) = redis::IntoConnectionInfo::into_connection_info(self.redis.as_str()) {
                out.push((at.key("redis"), format!("cannot use this URL: {e}")));
            } else if url_has_password(&self.redis) {
                out.push((
                    at.key("redis"),
                    "holds a password: put it in password_file (readable by root only), not in the config"
                        .to_owned(),
                ));
            }
        }
        if let Some(tls) = &self.tls {
            let at = at.key("tls");
            if url_scheme(&self.redis) == Some("redis") {
                out.push((
                    at.clone(),
                    "TLS files need a rediss:// URL in fleet.redis".to_owned(),
                ));
            }
            if tls.cert.is_some() != tls.key.is_some() {
                out.push((
                    at.clone(),
                    "cert and key go together (a client certificate and its private key)"
                        .to_owned(),
                ));
            }
            if tls.named().iter().all(|(_, p)| p.is_none()) {
                out.push((
                    at.clone(),
                    "names no file: give ca, or cert and key, or all three".to_owned(),
                ));
            }
            for (key, path) in tls.named() {
                if let Some(p) = path
                    && !p.is_absolute()
                {
                    out.push((at.key(key), "must be an absolute path".to_owned()));
                }
            }
        }
        if let Some(user) = &self.user
            && !plain_name(user)
        {
            out.push((at.key("user"), "must be a name without spaces".to_owned()));
        }
        if self.user.is_some() && self.password_file.is_none() {
            out.push((at.key("user"), "an ACL user needs password_file".to_owned()));
        }
        if let Some(p) = &self.password_file
            && !p.is_absolute()
        {
            out.push((
                at.key("password_file"),
                "must be an absolute path".to_owned(),
            ));
        }
        if !plain_name(&self.stream) {
            out.push((
                at.key("stream"),
                "must be a key name without spaces (at most 128 characters)".to_owned(),
            ));
        }
        if let Some(node) = &self.node
            && !plain_name(node)
        {
            out.push((
                at.key("node"),
                "must be a name without spaces (at most 128 characters)".to_owned(),
            ));
        }
        for (i, jail) in self.share.iter().enumerate() {
            if !cx.jails.contains(&jail.as_str()) {
                out.push((
                    at.key("share").index(i),
                    format!("no jail {jail:?} (jails: {})", cx.jails.join(", ")),
                ));
            }
        }
        for (i, b) in self.backends.iter().enumerate() {
            if !cx.backends.contains(&b.as_str()) {
                out.push((
                    at.key("backends").index(i),
                    format!(
                        "backend {b:?} is not configured (configured: {})",
                        cx.backends.join(", ")
                    ),
                ));
            }
        }
        let p = self.accept_max_prefix;
        if !(8..=32).contains(&p.v4) {
            out.push((
                at.key("accept_max_prefix").key("v4"),
                "must be 8 to 32".to_owned(),
            ));
        }
        if !(16..=128).contains(&p.v6) {
            out.push((
                at.key("accept_max_prefix").key("v6"),
                "must be 16 to 128".to_owned(),
            ));
        }
        if !(1..=MAX_QUEUE).contains(&self.queue) {
            out.push((at.key("queue"), format!("must be 1 to {MAX_QUEUE}")));
        }
        if self.maxlen < MIN_MAXLEN {
            out.push((at.key("maxlen"), format!("must be at least {MIN_MAXLEN}")));
        }
        if self.share.is_empty() && !self.share_manual && !self.accept {
            out.push((
                at.clone(),
                "shares nothing and accepts nothing: list jails in share, set share_manual, or accept = true"
                    .to_owned(),
            ));
        }
        out
    }

    /// Builds the settings: resolves `node`, reads the password file.
    pub fn build(&self) -> Result<FleetSettings, FleetConfigError> {
        let node = match &self.node {
            Some(n) => n.clone(),
            None => nix::unistd::gethostname()
                .map_err(|e| FleetConfigError::HostName(e.into()))?
                .to_string_lossy()
                .into_owned(),
        };
        let mut connection = redis::IntoConnectionInfo::into_connection_info(self.redis.as_str())
            .map_err(FleetConfigError::Url)?;
        let mut settings = connection.redis_settings().clone();
        if let Some(user) = &self.user {
            settings = settings.set_username(user);
        }
        if let Some(path) = &self.password_file {
            let text =
                std::fs::read_to_string(path).map_err(|source| FleetConfigError::Password {
                    path: path.clone(),
                    source,
                })?;
            let password = text.lines().next().unwrap_or_default().trim_end();
            settings = settings.set_password(password);
        }
        settings = settings.set_lib_name("log2drop", env!("CARGO_PKG_VERSION"));
        connection = connection.set_redis_settings(settings);
        #[cfg(feature = "tls")]
        let tls = self.tls.as_ref().map(tls::read).transpose()?;
        Ok(FleetSettings {
            node,
            connection,
            url: self.redis.clone(),
            stream: self.stream.clone(),
            share: self.share.clone(),
            share_manual: self.share_manual,
            accept: self.accept,
            max_prefix: (self.accept_max_prefix.v4, self.accept_max_prefix.v6),
            queue: self.queue,
            maxlen: self.maxlen,
            #[cfg(feature = "tls")]
            tls,
        })
    }
}

/// Reading the TLS files: each is read and parsed here, so a wrong file is
/// named at start (and by `log2drop check`), not found at the first handshake.
#[cfg(feature = "tls")]
mod tls {
    use std::path::Path;

    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    use super::{FleetConfigError, TlsFiles};

    fn bad(key: &'static str, path: &Path, reason: impl std::fmt::Display) -> FleetConfigError {
        FleetConfigError::Tls {
            key,
            path: path.to_owned(),
            reason: reason.to_string(),
        }
    }

    fn certificates(key: &'static str, path: &Path) -> Result<Vec<u8>, FleetConfigError> {
        let pem = std::fs::read(path).map_err(|e| bad(key, path, format!("cannot read: {e}")))?;
        let n = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad(key, path, format!("not PEM certificates: {e}")))?
            .len();
        if n == 0 {
            return Err(bad(
                key,
                path,
                "holds no PEM certificate (BEGIN CERTIFICATE)",
            ));
        }
        Ok(pem)
    }

    /// Reads and checks the files of `tls`.
    pub(super) fn read(tls: &TlsFiles) -> Result<redis::TlsCertificates, FleetConfigError> {
        let root_cert = tls
            .ca
            .as_deref()
            .map(|p| certificates("ca", p))
            .transpose()?;
        let client_tls = match (&tls.cert, &tls.key) {
            (Some(cert), Some(key)) => {
                let client_cert = certificates("cert", cert)?;
                let client_key =
                    std::fs::read(key).map_err(|e| bad("key", key, format!("cannot read: {e}")))?;
                PrivateKeyDer::from_pem_slice(&client_key)
                    .map_err(|e| bad("key", key, format!("no PEM private key: {e}")))?;
                Some(redis::ClientTlsConfig {
                    client_cert,
                    client_key,
                })
            }
            _ => None,
        };
        Ok(redis::TlsCertificates {
            client_tls,
            root_cert,
        })
    }
}

fn url_scheme(url: &str) -> Option<&str> {
    let (scheme, rest) = url.split_once("://")?;
    (matches!(scheme, "redis" | "rediss") && !rest.is_empty()).then_some(scheme)
}

/// `redis://user:secret@host`: the authority part holds a password.
fn url_has_password(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or(rest);
    authority
        .rsplit_once('@')
        .is_some_and(|(userinfo, _)| userinfo.contains(':'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> FleetConfig {
        toml::from_str(text).expect("fleet table")
    }

    fn problems(cfg: &FleetConfig) -> Vec<String> {
        let cx = Context {
            jails: &["ssh", "web"],
            backends: &["dry-run", "nftables"],
        };
        cfg.check(&KeyPath::of(&["fleet"]), cx)
            .into_iter()
            .map(|(k, m)| format!("{k}: {m}"))
            .collect()
    }

    #[test]
    fn defaults_are_documented_ones() {
        let c = parse("redis = \"redis://127.0.0.1:6379/0\"");
        assert_eq!(c.stream, DEFAULT_STREAM);
        assert!(c.accept);
        assert!(!c.share_manual);
        assert_eq!(c.accept_max_prefix, MaxPrefix { v4: 24, v6: 48 });
        assert_eq!(c.queue, DEFAULT_QUEUE);
        assert_eq!(c.maxlen, DEFAULT_MAXLEN);
        assert!(problems(&c).is_empty(), "{:?}", problems(&c));
    }

    #[test]
    fn every_problem_is_reported_with_its_key() {
        let c = parse(
            r#"
            redis = "http://example.org"
            user = "log2drop"
            stream = "has space"
            share = ["ssh", "mail"]
            backends = ["xdp"]
            accept_max_prefix = { v4 = 4, v6 = 8 }
            queue = 0
            maxlen = 10
            node = ""
            "#,
        );
        let p = problems(&c);
        for want in [
            "fleet.redis: ",
            "fleet.user: an ACL user needs password_file",
            "fleet.stream: ",
            "fleet.share[1]: no jail \"mail\"",
            "fleet.backends[0]: backend \"xdp\" is not configured",
            "fleet.accept_max_prefix.v4: ",
            "fleet.accept_max_prefix.v6: ",
            "fleet.queue: ",
            "fleet.maxlen: ",
            "fleet.node: ",
        ] {
            assert!(
                p.iter().any(|m| m.starts_with(want)),
                "{want} not in {p:#?}"
            );
        }
    }

    #[test]
    fn a_password_in_the_url_is_refused() {
        let c = parse("redis = \"redis://u:secret@fleet.example.org:6379/0\"");
        let p = problems(&c);
        assert!(p.iter().any(|m| m.contains("password_file")), "{p:?}");
        let c = parse("redis = \"redis://fleet.example.org:6379/0\"");
        assert!(problems(&c).is_empty());
    }

    #[test]
    fn a_link_that_does_nothing_is_refused() {
        let c = parse("redis = \"redis://127.0.0.1\"\naccept = false");
        assert!(problems(&c).iter().any(|m| m.contains("shares nothing")));
    }

    #[test]
    fn build_reads_the_password_and_takes_the_host_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pass = dir.path().join("fleet.pass");
        std::fs::write(&pass, "s3cret\n").expect("write");
        let c = parse(&format!(
            "redis = \"redis://127.0.0.1:6390/2\"\nuser = \"agent\"\npassword_file = \"{}\"",
            pass.display()
        ));
        let s = c.build().expect("build");
        assert_eq!(s.connection.redis_settings().username(), Some("agent"));
        assert_eq!(s.connection.redis_settings().password(), Some("s3cret"));
        assert_eq!(s.connection.redis_settings().db(), 2);
        assert!(!s.node.is_empty());
        assert!(!format!("{s:?}").contains("s3cret"));
        let missing =
            parse("redis = \"redis://127.0.0.1\"\npassword_file = \"/nonexistent/log2drop.pass\"");
        let e = missing.build().expect_err("no file");
        assert!(e.to_string().contains("/nonexistent/log2drop.pass"), "{e}");
    }

    #[test]
    fn tls_files_are_checked_with_their_keys() {
        for (text, want) in [
            (
                "redis = \"redis://127.0.0.1\"\ntls = { ca = \"/etc/log2drop/ca.pem\" }",
                "fleet.tls: TLS files need a rediss:// URL",
            ),
            (
                "redis = \"rediss://fleet.example.org\"\ntls = { cert = \"/etc/log2drop/c.pem\" }",
                "fleet.tls: cert and key go together",
            ),
            (
                "redis = \"rediss://fleet.example.org\"\ntls = { ca = \"ca.pem\" }",
                "fleet.tls.ca: must be an absolute path",
            ),
            (
                "redis = \"rediss://fleet.example.org:6380/0#insecure\"",
                "fleet.redis: a URL fragment (#insecure) is refused",
            ),
            (
                "redis = \"rediss://fleet.example.org\"\ntls = {}",
                "fleet.tls: names no file",
            ),
        ] {
            let p = problems(&parse(text));
            assert!(p.iter().any(|m| m.starts_with(want)), "{want}: {p:?}");
        }
    }

    #[cfg(feature = "tls")]
    #[test]
    fn build_names_a_tls_file_it_cannot_use() {
        let dir = tempfile::tempdir().expect("tempdir");
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate\n").expect("write");
        let cfg = |ca: &std::path::Path| {
            parse(&format!(
                "redis = \"rediss://127.0.0.1:6380\"\nnode = \"a\"\ntls = {{ ca = \"{}\" }}",
                ca.display()
            ))
        };
        let e = cfg(&junk).build().expect_err("no certificate").to_string();
        assert!(
            e.starts_with(&format!("fleet.tls.ca {}: ", junk.display())) && e.contains("no PEM"),
            "{e}"
        );
        let missing = dir.path().join("missing.pem");
        let e = cfg(&missing).build().expect_err("no file").to_string();
        assert!(
            e.starts_with(&format!("fleet.tls.ca {}: cannot read", missing.display())),
            "{e}"
        );
    }

    #[test]
    fn tls_urls_are_accepted_with_the_feature() {
        let c = parse("redis = \"rediss://fleet.example.org:6380/0\"");
        assert_eq!(problems(&c).is_empty(), cfg!(feature = "tls"));
    }
}
