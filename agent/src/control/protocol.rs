//! The control protocol's messages, version 1.
//!
//! One request per line, one reply per line:
//!
//! ```text
//! {"v":1,"cmd":"bans"}
//! {"v":1,"cmd":"ban","target":"198.51.100.7","for":"1h"}     ("for" omitted = permanent)
//! {"v":1,"cmd":"unban","target":"203.0.113.0/24"}
//! {"v":1,"cmd":"status"}
//! ```
//!
//! Replies are `{"v":1,"ok":true,"data":...}` or `{"v":1,"ok":false,"error":"..."}`.
//! `bans` answers an array of [`BanEntry`], `ban` and `unban` the one entry
//! concerned, `status` a [`Status`].

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::engine::{Ban, Origin};

/// The protocol version this code speaks.
pub const VERSION: u32 = 1;

/// Largest request or reply line accepted, in bytes (the newline excluded).
pub const MAX_REQUEST: usize = 64 * 1024;

/// Largest reply line the client accepts: a ban list can be long.
pub const MAX_REPLY: usize = 256 * 1024 * 1024;

/// What the client asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "lowercase", deny_unknown_fields)]
pub enum Command {
    /// List active bans.
    Bans,
    /// Ban a target (`ADDR` or `ADDR/LEN`) for a duration (`None` = permanent).
    Ban {
        /// `ADDR` or `ADDR/LEN`.
        target: String,
        /// Duration such as `1h`; absent means permanent.
        #[serde(rename = "for", default, skip_serializing_if = "Option::is_none")]
        duration: Option<String>,
    },
    /// Lift the ban on a target.
    Unban {
        /// `ADDR` or `ADDR/LEN`.
        target: String,
    },
    /// Agent status.
    Status,
}

/// A request line: the version plus the command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// Protocol version.
    pub v: u32,
    /// The command.
    #[serde(flatten)]
    pub cmd: Command,
}

impl Request {
    /// A request in the current version.
    pub fn new(cmd: Command) -> Self {
        Self { v: VERSION, cmd }
    }

    /// Parses one request line. The version is checked before the command, so a
    /// client speaking another version gets told so rather than a shape error.
    pub fn parse(line: &[u8]) -> Result<Request, String> {
        let value: serde_json::Value =
            serde_json::from_slice(line).map_err(|e| format!("malformed request: {e}"))?;
        match value.get("v").and_then(serde_json::Value::as_u64) {
            Some(v) if v == u64::from(VERSION) => {}
            Some(v) => {
                return Err(format!(
                    "unsupported protocol version {v} (this agent speaks {VERSION})"
                ));
            }
            None => return Err("malformed request: missing \"v\"".into()),
        }
        serde_json::from_value(value).map_err(|e| format!("bad request: {e}"))
    }
}

/// A reply line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    /// Protocol version.
    pub v: u32,
    /// Whether the command succeeded.
    pub ok: bool,
    /// The result, when `ok`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
    /// What went wrong, when not `ok`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Reply {
    /// A success carrying `data`.
    pub fn ok(data: serde_json::Value) -> Self {
        Self {
            v: VERSION,
            ok: true,
            data: Some(data),
            error: None,
        }
    }

    /// A failure with a message for the user.
    pub fn error(msg: impl Into<String>) -> Self {
        Self {
            v: VERSION,
            ok: false,
            data: None,
            error: Some(msg.into()),
        }
    }

    /// The reply as one line, newline included.
    pub fn to_line(&self) -> Vec<u8> {
        // Serialising these plain types cannot fail; fall back to a fixed error line
        // rather than panic if it ever does.
        let mut line = serde_json::to_vec(self).unwrap_or_else(|_| {
            br#"{"v":1,"ok":false,"error":"internal error: cannot encode reply"}"#.to_vec()
        });
        line.push(b'\n');
        line
    }
}

/// One ban as shown by `bans` (and `bans --json`, which prints these verbatim).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BanEntry {
    /// Bare address for a single host, `ADDR/LEN` for a prefix.
    pub address: String,
    /// Owning jail (`manual` for manual bans).
    pub jail: String,
    /// Start, RFC 3339 UTC.
    pub since: String,
    /// End, RFC 3339 UTC; `null` when permanent.
    pub until: Option<String>,
    /// `jail` or `manual`.
    pub origin: Origin,
}

impl BanEntry {
    /// The entry for a ban.
    pub fn from_ban(b: &Ban) -> Self {
        Self {
            address: display_target(&b.target),
            jail: b.jail.to_string(),
            since: rfc3339(b.since),
            until: b.until.map(rfc3339),
            origin: b.origin,
        }
    }
}

/// `status` data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// Agent version.
    pub version: String,
    /// Seconds since the agent started.
    pub uptime_secs: u64,
    /// Active bans.
    pub bans_active: usize,
    /// Followed sources.
    pub sources: Vec<SourceStatus>,
    /// Backend names, in the order they apply decisions.
    pub backends: Vec<String>,
}

/// One source in `status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceStatus {
    /// Source name.
    pub name: String,
    /// Followed path.
    pub path: String,
    /// Lines read since start.
    pub lines: u64,
    /// Lines that matched a filter.
    pub offences: u64,
    /// Lines skipped for exceeding the length bound.
    pub long_lines: u64,
}

/// RFC 3339 UTC with whole seconds, the form every timestamp in the protocol uses.
pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// Bare address for /32 and /128, `ADDR/LEN` otherwise.
pub fn display_target(net: &ipnet::IpNet) -> String {
    crate::addr::display_target(net)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn requests_parse_in_the_documented_shapes() {
        assert_eq!(
            Request::parse(br#"{"v":1,"cmd":"bans"}"#),
            Ok(Request::new(Command::Bans))
        );
        assert_eq!(
            Request::parse(br#"{"v":1,"cmd":"ban","target":"198.51.100.7","for":"1h"}"#),
            Ok(Request::new(Command::Ban {
                target: "198.51.100.7".into(),
                duration: Some("1h".into())
            }))
        );
        assert_eq!(
            Request::parse(br#"{"v":1,"cmd":"ban","target":"203.0.113.0/24"}"#),
            Ok(Request::new(Command::Ban {
                target: "203.0.113.0/24".into(),
                duration: None
            }))
        );
        assert_eq!(
            Request::parse(br#"{"cmd":"unban","v":1,"target":"2001:db8::1"}"#),
            Ok(Request::new(Command::Unban {
                target: "2001:db8::1".into()
            }))
        );
    }

    #[test]
    fn requests_round_trip_through_json() {
        let req = Request::new(Command::Ban {
            target: "192.0.2.1".into(),
            duration: Some("30m".into()),
        });
        let line = serde_json::to_vec(&req).expect("encode");
        assert_eq!(Request::parse(&line), Ok(req));
    }

    #[test]
    fn bad_requests_say_what_is_wrong() {
        let e = Request::parse(br#"{"v":2,"cmd":"bans"}"#).expect_err("version");
        assert!(e.contains("unsupported protocol version 2"), "{e}");
        let e = Request::parse(br#"{"cmd":"bans"}"#).expect_err("no version");
        assert!(e.contains("\"v\""), "{e}");
        let e = Request::parse(b"{not json").expect_err("malformed");
        assert!(e.starts_with("malformed request"), "{e}");
        let e = Request::parse(br#"{"v":1,"cmd":"explode"}"#).expect_err("unknown cmd");
        assert!(e.contains("explode"), "{e}");
        let e = Request::parse(br#"{"v":1,"cmd":"unban"}"#).expect_err("missing field");
        assert!(e.contains("target"), "{e}");
    }

    #[test]
    fn replies_have_the_documented_shape() {
        let ok = String::from_utf8(Reply::ok(serde_json::json!([])).to_line()).expect("utf8");
        assert_eq!(ok, "{\"v\":1,\"ok\":true,\"data\":[]}\n");
        let err = String::from_utf8(Reply::error("nope").to_line()).expect("utf8");
        assert_eq!(err, "{\"v\":1,\"ok\":false,\"error\":\"nope\"}\n");
    }

    #[test]
    fn ban_entry_has_the_cli_json_fields() {
        let since = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let b = Ban {
            target: "203.0.113.0/24".parse().expect("net"),
            jail: Arc::from("ssh"),
            since,
            until: None,
            origin: Origin::Jail,
            reason: None,
            forced: false,
        };
        let v = serde_json::to_value(BanEntry::from_ban(&b)).expect("encode");
        assert_eq!(
            v,
            serde_json::json!({
                "address": "203.0.113.0/24",
                "jail": "ssh",
                "since": "2023-11-14T22:13:20Z",
                "until": null,
                "origin": "jail",
            })
        );
    }
}
