//! The control protocol's messages, version 1.
//!
//! One request per line, one reply per line:
//!
//! ```text
//! {"v":1,"cmd":"status"}
//! {"v":1,"cmd":"bans"}                                         {"jail":"ssh"} filters
//! {"v":1,"cmd":"ban","target":"198.51.100.7","for":"1h"}        optional "jail", "force"
//! {"v":1,"cmd":"unban","target":"203.0.113.0/24"}               optional "jail"
//! {"v":1,"cmd":"unban","all":true,"jail":"ssh"}                 every ban (of the jail)
//! {"v":1,"cmd":"unban","target":"192.0.2.9","fleet":true}      on every fleet host
//! {"v":1,"cmd":"stats"}
//! {"v":1,"cmd":"fleet"}
//! {"v":1,"cmd":"reload"}
//! {"v":1,"cmd":"flush"}
//! ```
//!
//! Replies are `{"v":1,"ok":true,"data":...}` or `{"v":1,"ok":false,"error":"..."}`.
//! A request may carry an `"id"` (an unsigned integer); the reply then carries the
//! same `"id"`, so the client can tell a reply to its own request from whatever a
//! socket it should not have trusted sends (our client always sends one; a request
//! without it is answered without it, as before).
//! `bans` answers an array of [`BanEntry`], `ban` the entry made, `unban` an
//! array of the entries lifted, `status` a [`Status`], `stats` a [`Stats`],
//! `reload` a [`ReloadReport`], `flush` a [`FlushReport`], `fleet` a
//! [`crate::fleet::FleetStatus`].
//!
//! Fields are only ever added within a version, and readers ignore fields they do
//! not know in replies; requests with unknown fields or a key given twice are
//! refused, so a typo or a smuggled second `cmd` never turns into a silently
//! different command.

use crate::filter::Captures;
use std::cell::RefCell;
use std::time::SystemTime;

use serde::de::DeserializeOwned;
use serde::ser::SerializeSeq;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::engine::{Ban, Origin};
use crate::hooks::HookStats;

/// The protocol version this code speaks.
pub(crate) const VERSION: u32 = 1;

/// Largest request or reply line accepted, in bytes (the newline excluded).
pub(crate) const MAX_REQUEST: usize = 64 * 1024;

/// Largest reply line the client accepts: a ban list can be long.
pub(crate) const MAX_REPLY: usize = 256 * 1024 * 1024;

/// What the client asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "lowercase", deny_unknown_fields)]
pub enum Command {
    /// Agent status.
    Status,
    /// List active bans.
    Bans {
        /// Only this jail's bans.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        jail: Option<String>,
    },
    /// Ban a target (`ADDR` or `ADDR/LEN`).
    Ban {
        /// `ADDR` or `ADDR/LEN`.
        target: String,
        /// Duration such as `1h`; absent means the jail's `bantime` with `jail`,
        /// else permanent.
        #[serde(rename = "for", default, skip_serializing_if = "Option::is_none")]
        duration: Option<String>,
        /// File the ban under this configured jail (default `manual`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        jail: Option<String>,
        /// Ban even if the allowlist covers the target.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        force: bool,
    },
    /// Lift the ban on a target, or every ban (`all`), optionally only in one jail.
    Unban {
        /// `ADDR` or `ADDR/LEN`; absent with `all`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target: Option<String>,
        /// Lift every ban (of `jail`, if given).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        all: bool,
        /// Only bans of this jail.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        jail: Option<String>,
        /// Also lift the ban on every host of the fleet.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        fleet: bool,
    },
    /// Counters.
    Stats,
    /// The fleet link's state.
    Fleet,
    /// Re-read the config file (as SIGHUP does).
    Reload,
    /// Remove every kernel object of log2drop and stop the agent (uninstall).
    Flush,
}

impl Command {
    /// Whether the command only reads: members of `agent.socket_group` may send
    /// these; everything else needs root.
    pub(crate) fn is_read_only(&self) -> bool {
        matches!(
            self,
            Command::Status | Command::Bans { .. } | Command::Stats | Command::Fleet
        )
    }

    /// The keys this command takes besides `v` and `cmd`, as on the wire.
    pub fn fields(&self) -> &'static [&'static str] {
        match self {
            Command::Status
            | Command::Stats
            | Command::Reload
            | Command::Flush
            | Command::Fleet => &[],
            Command::Bans { .. } => &["jail"],
            Command::Ban { .. } => &["target", "for", "jail", "force"],
            Command::Unban { .. } => &["target", "all", "jail", "fleet"],
        }
    }

    /// The command's name as it appears in `"cmd"`.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Status => "status",
            Command::Bans { .. } => "bans",
            Command::Ban { .. } => "ban",
            Command::Unban { .. } => "unban",
            Command::Stats => "stats",
            Command::Reload => "reload",
            Command::Flush => "flush",
            Command::Fleet => "fleet",
        }
    }
}

/// A request line: the version plus the command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// Protocol version.
    pub v: u32,
    /// Chosen by the client, echoed in the reply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
    /// The command.
    #[serde(flatten)]
    pub cmd: Command,
}

impl Request {
    /// A request in the current version.
    pub fn new(cmd: Command) -> Self {
        Self {
            v: VERSION,
            id: None,
            cmd,
        }
    }

    /// The `id` of a request line that may not parse, for the error reply.
    pub fn id_of(line: &[u8]) -> Option<u64> {
        #[derive(Deserialize)]
        struct Id {
            id: Option<u64>,
        }
        serde_json::from_slice::<Id>(line).ok()?.id
    }

    /// Parses one request line. The version is checked before the command, so a
    /// client speaking another version gets told so rather than a shape error.
    ///
    /// Every request runs as root's command, so its text must mean exactly one
    /// thing: a key given twice (`{"cmd":"status","cmd":"flush"}`, where a plain
    /// JSON object keeps the last) and a key the command does not take are
    /// refused, commands without arguments included.
    pub fn parse(line: &[u8]) -> Result<Request, String> {
        let StrictObject(object) =
            serde_json::from_slice(line).map_err(|e| format!("malformed request: {e}"))?;
        let value = serde_json::Value::Object(object);
        match value.get("v").and_then(serde_json::Value::as_u64) {
            Some(v) if v == u64::from(VERSION) => {}
            Some(v) => {
                return Err(format!(
                    "unsupported protocol version {v} (this agent speaks {VERSION})"
                ));
            }
            None => return Err("malformed request: missing \"v\"".into()),
        }
        let request: Request =
            serde_json::from_value(value.clone()).map_err(|e| format!("bad request: {e}"))?;
        // `flatten` (version beside the command) makes serde accept unknown keys,
        // and unit variants of a tagged enum never refuse them: check here.
        let allowed = request.cmd.fields();
        if let Some(key) = value
            .as_object()
            .into_iter()
            .flat_map(|o| o.keys())
            .find(|k| !matches!(k.as_str(), "v" | "id" | "cmd") && !allowed.contains(&k.as_str()))
        {
            return Err(format!(
                "bad request: unknown field `{key}` for command {:?}{}",
                request.cmd.name(),
                if allowed.is_empty() {
                    ", which takes no arguments".to_owned()
                } else {
                    format!(", expected one of {}", allowed.join(", "))
                }
            ));
        }
        Ok(request)
    }
}

/// A JSON object whose keys are all distinct; the request parser's first step.
struct StrictObject(serde_json::Map<String, serde_json::Value>);

impl<'de> Deserialize<'de> for StrictObject {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = StrictObject;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<StrictObject, A::Error> {
                let mut object = serde_json::Map::new();
                while let Some(key) = map.next_key::<String>()? {
                    if object.contains_key(&key) {
                        return Err(serde::de::Error::custom(format_args!(
                            "duplicate field `{key}`"
                        )));
                    }
                    let value = map.next_value()?;
                    object.insert(key, value);
                }
                Ok(StrictObject(object))
            }
        }
        d.deserialize_map(Visitor)
    }
}

/// A reply line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reply {
    /// Protocol version.
    pub v: u32,
    /// The request's `id`, when it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
    /// Whether the command succeeded.
    pub ok: bool,
    /// The result, when `ok`, as its JSON text: the agent encodes the typed value
    /// straight to text and the client decodes the type it expects from it, so a
    /// million-entry ban list is one string (~150 bytes a ban) on either side,
    /// never a `serde_json::Value` tree (~1 KB a ban).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Box<RawValue>>,
    /// What went wrong, when not `ok`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Reply {
    /// A success carrying `data`, encoded now; an error reply if it cannot be
    /// encoded (plain protocol types always can).
    ///
    /// The text goes through a `serde_json::Value`, whose objects print their keys
    /// sorted: that is the wire form since version 1 began, kept byte for byte.
    /// Data that can be long (ban lists) goes through [`Reply::ok_list`] instead.
    pub fn ok<T: Serialize + ?Sized>(data: &T) -> Self {
        Self::ok_raw(serde_json::to_value(data).and_then(|v| serde_json::value::to_raw_value(&v)))
    }

    /// A success whose data is the array of `items`, written as one text with each
    /// item passing through its own `serde_json::Value`: the same bytes as
    /// [`Reply::ok`] on the collected items, but never more than one item's tree
    /// at a time (a million bans as a tree would take ~1 GB for a moment).
    pub(crate) fn ok_list<I>(items: I) -> Self
    where
        I: IntoIterator,
        I::Item: Serialize,
    {
        Self::ok_raw(serde_json::value::to_raw_value(&ListOf(RefCell::new(
            Some(items.into_iter()),
        ))))
    }

    fn ok_raw(raw: Result<Box<RawValue>, serde_json::Error>) -> Self {
        match raw {
            Ok(raw) => Self {
                v: VERSION,
                id: None,
                ok: true,
                data: Some(raw),
                error: None,
            },
            Err(e) => Self::error(format!("internal error: cannot encode reply: {e}")),
        }
    }

    /// Decodes `data` as the type the command answers; absent data reads as
    /// `null` (so `Option<T>` accepts it).
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(self.data.as_deref().map_or("null", RawValue::get))
    }

    /// A failure with a message for the user.
    pub fn error(msg: impl Into<String>) -> Self {
        Self {
            v: VERSION,
            id: None,
            ok: false,
            data: None,
            error: Some(msg.into()),
        }
    }

    /// The reply as one line, newline included, made in the data's own buffer: a
    /// ban list's text is not copied again beside itself. Same bytes as
    /// [`Reply::to_line`].
    pub(crate) fn into_line(self) -> Vec<u8> {
        match self {
            Reply {
                v,
                id,
                ok: true,
                data: Some(raw),
                error: None,
            } => {
                let id = id.map(|id| format!(r#""id":{id},"#)).unwrap_or_default();
                let head = format!(r#"{{"v":{v},{id}"ok":true,"data":"#);
                let mut line = String::from(Box::<str>::from(raw)).into_bytes();
                line.reserve_exact(head.len() + 2);
                line.splice(0..0, head.bytes());
                line.extend_from_slice(b"}\n");
                line
            }
            other => other.to_line(),
        }
    }

    /// The reply as one line, newline included.
    pub(crate) fn to_line(&self) -> Vec<u8> {
        // Serialising these plain types cannot fail; fall back to a fixed error line
        // rather than panic if it ever does.
        let mut line = serde_json::to_vec(self).unwrap_or_else(|_| {
            br#"{"v":1,"ok":false,"error":"internal error: cannot encode reply"}"#.to_vec()
        });
        line.push(b'\n');
        line
    }
}

/// Items encoded as an array, each through a `serde_json::Value` (sorted keys, as
/// [`Reply::ok`] writes them). Encoded once: the iterator is taken on first use.
struct ListOf<I>(RefCell<Option<I>>);

impl<I> Serialize for ListOf<I>
where
    I: Iterator,
    I::Item: Serialize,
{
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let items = self.0.borrow_mut().take().into_iter().flatten();
        let mut seq = s.serialize_seq(None)?;
        for item in items {
            let v = serde_json::to_value(item).map_err(serde::ser::Error::custom)?;
            seq.serialize_element(&v)?;
        }
        seq.end()
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
    /// `jail`, `manual`, `subnet` or `fleet`.
    pub origin: Origin,
    /// The filter whose offence caused a jail's ban.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    /// The first offence counted for a jail's ban, RFC 3339 UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_offence: Option<String>,
    /// The offence that reached the threshold, RFC 3339 UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_offence: Option<String>,
    /// Made with `ban --force` over the allowlist.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub forced: bool,
    /// The fleet host a remote ban (origin `fleet`) came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// The named captures (`user`...) of the offence that reached the
    /// threshold, bounded; attacker text (JSON escapes it, the table escapes it).
    #[serde(default, skip_serializing_if = "Captures::is_empty")]
    pub captures: Captures,
}

impl BanEntry {
    /// The entry for a ban.
    pub(crate) fn from_ban(b: &Ban) -> Self {
        Self {
            address: display_target(&b.target),
            jail: b.jail.to_string(),
            since: rfc3339(b.since),
            until: b.until.map(rfc3339),
            origin: b.origin,
            filter: b.reason.as_ref().map(|r| r.filter.to_string()),
            first_offence: b.reason.as_ref().map(|r| rfc3339(r.first_offence)),
            last_offence: b.reason.as_ref().map(|r| rfc3339(r.last_offence)),
            forced: b.forced,
            node: b.node.as_deref().map(str::to_owned),
            captures: b
                .reason
                .as_ref()
                .map(|r| r.captures.clone())
                .unwrap_or_default(),
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
    /// The config file in use.
    #[serde(default)]
    pub config: String,
    /// Active bans.
    pub bans_active: usize,
    /// Followed sources.
    pub sources: Vec<SourceStatus>,
    /// Configured jails (and `manual` when it holds bans).
    #[serde(default)]
    pub jails: Vec<JailStatus>,
    /// Backends, in the order they apply decisions.
    pub backends: Vec<BackendStatus>,
    /// The fleet link, when `[fleet]` is configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fleet: Option<crate::fleet::FleetStatus>,
}

/// One source in `status` and `stats`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceStatus {
    /// Source name.
    pub name: String,
    /// Followed path.
    pub path: String,
    /// Lines read since the source started.
    pub lines: u64,
    /// Lines that matched a filter.
    pub offences: u64,
    /// Lines skipped for exceeding the length bound.
    pub long_lines: u64,
    /// A file source none of whose files exists yet (it reads them once one
    /// appears). Absent from older agents' replies.
    #[serde(default)]
    pub waiting: bool,
}

/// One jail in `status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JailStatus {
    /// Jail name.
    pub name: String,
    /// Its active bans.
    pub bans_active: usize,
}

/// One backend in `status` and `stats`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackendStatus {
    /// Backend name (`xdp`, `dry-run`, ...).
    pub name: String,
    /// False when the last operation on it failed.
    pub healthy: bool,
    /// The last failure, if the backend is unhealthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Ban decisions applied since start.
    pub bans_applied: u64,
    /// Unban decisions applied since start.
    pub unbans_applied: u64,
    /// Batches that failed (wholly or partly).
    pub failures: u64,
    /// What the last reconciliation (start or reload) did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconcile: Option<ReconcileStatus>,
}

/// What one reconciliation did and how long it took.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconcileStatus {
    /// Entries added.
    pub added: usize,
    /// Entries removed (expired or unknown).
    pub removed: usize,
    /// Entries whose deadline was rewritten.
    pub updated: usize,
    /// Entries left alone.
    pub kept: usize,
    /// Wall-clock time of the reconciliation, in microseconds.
    pub took_us: u64,
}

/// `stats` counters of host names where `<HOST>` stands (`use_dns`) and of
/// reverse-DNS checks (`allow_rdns`), since start.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NameStats {
    /// Lines whose `<HOST>` was a host name.
    pub matched: u64,
    /// ... ignored because every jail the filter feeds has `use_dns = "no"`.
    pub ignored: u64,
    /// ... dropped because the lookup queue was full.
    pub dropped: u64,
    /// ... that gave no address (no such name, no answer in time).
    pub unresolved: u64,
    /// Offences counted for the addresses names resolved to.
    pub offences: u64,
    /// Names that counted nowhere: they resolve to an allowlisted, own or
    /// special address.
    pub refused: u64,
    /// Lines of `allow_rdns` filters from genuine clients, not counted.
    pub genuine: u64,
}

/// `stats` data. `lines`, `offences`, `bans_active` and `bans_total` are stable
/// names for scripts and monitoring.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Seconds since the agent started.
    pub uptime_secs: u64,
    /// Lines read by every source since start.
    pub lines: u64,
    /// Offences seen (lines that matched a filter), since start.
    pub offences: u64,
    /// Offences ignored because the address is allowlisted.
    pub offences_allowlisted: u64,
    /// Offences ignored because the address is link-local, multicast, broadcast
    /// or unspecified: never a source worth banning.
    #[serde(default)]
    pub offences_special: u64,
    /// Offences ignored because the address was already banned.
    pub offences_already_banned: u64,
    /// Active bans.
    pub bans_active: usize,
    /// Bans issued since start (jails, subnets and manual).
    pub bans_total: u64,
    /// Bans that ended at their deadline since start.
    pub bans_expired: u64,
    /// Bans lifted by `unban` or a reload since start.
    pub bans_lifted: u64,
    /// Addresses whose offences are being tracked.
    pub tracked: usize,
    /// Tracked addresses forgotten because `max_tracked` was reached.
    pub evicted: u64,
    /// Rows in the ban history.
    pub history_rows: u64,
    /// Decision batches written to the state database, and failed writes.
    pub store_commits: u64,
    /// Failed writes to the state database.
    pub store_errors: u64,
    /// Per source.
    pub sources: Vec<SourceStatus>,
    /// Per backend.
    pub backends: Vec<BackendStatus>,
    /// Notification hooks.
    pub hooks: HookStats,
    /// Packets and bytes dropped per ban, by backends that count (XDP).
    pub drops: Vec<DropEntry>,
    /// The fleet link, when `[fleet]` is configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fleet: Option<crate::fleet::FleetStatus>,
    /// Host names in log lines (`use_dns`) and reverse-DNS checks.
    #[serde(default)]
    pub names: NameStats,
}

/// Drops counted for one ban.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DropEntry {
    /// Bare address or `ADDR/LEN`; [`DropEntry::ALL_BANS`] for a backend that
    /// counts all its bans together (the nftables rule counter).
    pub address: String,
    /// The backend that counted.
    pub backend: String,
    /// Packets dropped.
    pub packets: u64,
    /// Bytes dropped.
    pub bytes: u64,
}

impl DropEntry {
    /// The address of an entry that counts every ban of its backend together.
    pub const ALL_BANS: &'static str = "*";
}

/// What a reload changed. Names are listed per kind of component.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadReport {
    /// Sources.
    pub sources: Changes,
    /// Jails (a changed jail starts counting offences afresh; its bans stay).
    pub jails: Changes,
    /// Backends (a changed backend is reopened and reconciled).
    pub backends: Changes,
    /// Bans lifted because the new allowlist covers them.
    pub lifted: usize,
    /// Settings that only take effect after a restart, and similar notes.
    pub notes: Vec<String>,
}

/// Added, removed, changed and unchanged names of one kind of component.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Changes {
    /// New in the config.
    pub added: Vec<String>,
    /// Gone from the config.
    pub removed: Vec<String>,
    /// Present in both, different: rebuilt.
    pub changed: Vec<String>,
    /// Present in both, identical: left running.
    pub kept: Vec<String>,
}

/// What `flush` removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlushReport {
    /// Per backend: name and kernel objects removed.
    pub backends: Vec<(String, usize)>,
    /// True: the agent stops after a flush (a running agent would recreate it).
    pub stopping: bool,
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

    /// Issue 16, item 4: the id a client sends comes back in the reply; a request
    /// without one (an older client) is answered without one.
    #[test]
    fn the_request_id_is_optional_and_echoed() {
        let req = Request::parse(br#"{"v":1,"id":42,"cmd":"bans","jail":"ssh"}"#).expect("id");
        assert_eq!(req.id, Some(42));
        assert_eq!(
            req.cmd,
            Command::Bans {
                jail: Some("ssh".into())
            }
        );
        assert_eq!(
            Request::parse(br#"{"v":1,"cmd":"status"}"#)
                .expect("no id")
                .id,
            None
        );
        assert!(Request::parse(br#"{"v":1,"id":"x","cmd":"status"}"#).is_err());
        assert!(Request::parse(br#"{"v":1,"id":1,"id":2,"cmd":"status"}"#).is_err());
        assert_eq!(Request::id_of(br#"{"v":1,"id":9,"cmd":"nope"}"#), Some(9));
        assert_eq!(Request::id_of(b"{broken"), None);
        let ok = Reply {
            id: Some(42),
            ..Reply::ok(&[1, 2])
        };
        assert_eq!(ok.clone().into_line(), ok.to_line());
        assert_eq!(
            String::from_utf8(ok.into_line()).expect("utf-8"),
            "{\"v\":1,\"id\":42,\"ok\":true,\"data\":[1,2]}\n"
        );
        assert_eq!(
            String::from_utf8(Reply::ok(&[1]).into_line()).expect("utf-8"),
            "{\"v\":1,\"ok\":true,\"data\":[1]}\n"
        );
    }

    #[test]
    fn requests_parse_in_the_documented_shapes() {
        assert_eq!(
            Request::parse(br#"{"v":1,"cmd":"bans"}"#),
            Ok(Request::new(Command::Bans { jail: None }))
        );
        assert_eq!(
            Request::parse(br#"{"v":1,"cmd":"bans","jail":"ssh"}"#),
            Ok(Request::new(Command::Bans {
                jail: Some("ssh".into())
            }))
        );
        assert_eq!(
            Request::parse(
                br#"{"v":1,"cmd":"ban","target":"192.0.2.1","jail":"ssh","force":true}"#
            ),
            Ok(Request::new(Command::Ban {
                target: "192.0.2.1".into(),
                duration: None,
                jail: Some("ssh".into()),
                force: true,
            }))
        );
        assert_eq!(
            Request::parse(br#"{"v":1,"cmd":"unban","all":true,"jail":"ssh"}"#),
            Ok(Request::new(Command::Unban {
                target: None,
                all: true,
                jail: Some("ssh".into()),
                fleet: false,
            }))
        );
        for (line, cmd) in [
            (&br#"{"v":1,"cmd":"stats"}"#[..], Command::Stats),
            (br#"{"v":1,"cmd":"reload"}"#, Command::Reload),
            (br#"{"v":1,"cmd":"flush"}"#, Command::Flush),
            (br#"{"v":1,"cmd":"status"}"#, Command::Status),
        ] {
            assert_eq!(Request::parse(line), Ok(Request::new(cmd)));
        }
        assert_eq!(
            Request::parse(br#"{"v":1,"cmd":"ban","target":"198.51.100.7","for":"1h"}"#),
            Ok(Request::new(Command::Ban {
                target: "198.51.100.7".into(),
                duration: Some("1h".into()),
                jail: None,
                force: false,
            }))
        );
        assert_eq!(
            Request::parse(br#"{"v":1,"cmd":"ban","target":"203.0.113.0/24"}"#),
            Ok(Request::new(Command::Ban {
                target: "203.0.113.0/24".into(),
                duration: None,
                jail: None,
                force: false,
            }))
        );
        assert_eq!(
            Request::parse(br#"{"cmd":"unban","v":1,"target":"2001:db8::1"}"#),
            Ok(Request::new(Command::Unban {
                target: Some("2001:db8::1".into()),
                all: false,
                jail: None,
                fleet: false,
            }))
        );
    }

    #[test]
    fn requests_round_trip_through_json() {
        for cmd in [
            Command::Ban {
                target: "192.0.2.1".into(),
                duration: Some("30m".into()),
                jail: Some("ssh".into()),
                force: true,
            },
            Command::Unban {
                target: None,
                all: true,
                jail: None,
                fleet: false,
            },
            Command::Bans { jail: None },
            Command::Flush,
        ] {
            let req = Request::new(cmd);
            let line = serde_json::to_vec(&req).expect("encode");
            assert_eq!(Request::parse(&line), Ok(req));
        }
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
        let e = Request::parse(br#"{"v":1,"cmd":"ban"}"#).expect_err("missing field");
        assert!(e.contains("target"), "{e}");
        let e = Request::parse(br#"{"v":1,"cmd":"bans","jial":"ssh"}"#).expect_err("typo");
        assert!(e.contains("jial"), "{e}");
        let e = Request::parse(br#"{"v":1,"cmd":"ban","target":"192.0.2.1","force":"yes"}"#)
            .expect_err("wrong type");
        assert!(e.starts_with("bad request"), "{e}");
    }

    /// Regression (hardening item 6): a JSON object keeps the last of two equal
    /// keys, so `status` with a second `cmd` ran `flush` as root.
    #[test]
    fn duplicate_keys_are_refused() {
        for line in [
            &br#"{"v":1,"cmd":"status","cmd":"flush"}"#[..],
            br#"{"v":1,"v":1,"cmd":"status"}"#,
            br#"{"v":1,"cmd":"ban","target":"192.0.2.1","target":"198.51.100.1"}"#,
        ] {
            let e = Request::parse(line).expect_err("duplicate key");
            assert!(e.contains("duplicate field"), "{e}");
        }
    }

    /// Regression (hardening item 6): commands without arguments took any field.
    #[test]
    fn unknown_fields_are_refused_on_every_command() {
        for line in [
            &br#"{"v":1,"cmd":"status","all":true}"#[..],
            br#"{"v":1,"cmd":"flush","force":true}"#,
            br#"{"v":1,"cmd":"stats","jail":"ssh"}"#,
            br#"{"v":1,"cmd":"reload","x":1}"#,
            br#"{"v":1,"cmd":"unban","target":"192.0.2.1","for":"1h"}"#,
        ] {
            let e = Request::parse(line).expect_err("unknown field");
            assert!(e.contains("unknown field"), "{e}");
        }
    }

    /// `Command::fields` is the wire shape: every key a fully populated command
    /// serialises to is listed, so the check above never refuses a real field.
    #[test]
    fn fields_cover_every_serialised_key() {
        let full = [
            Command::Status,
            Command::Bans {
                jail: Some("ssh".into()),
            },
            Command::Ban {
                target: "192.0.2.1".into(),
                duration: Some("1h".into()),
                jail: Some("ssh".into()),
                force: true,
            },
            Command::Unban {
                target: Some("192.0.2.1".into()),
                all: true,
                jail: Some("ssh".into()),
                fleet: true,
            },
            Command::Stats,
            Command::Reload,
            Command::Flush,
            Command::Fleet,
        ];
        for cmd in full {
            let value = serde_json::to_value(Request::new(cmd.clone())).expect("encode");
            let mut keys: Vec<&str> = value
                .as_object()
                .expect("object")
                .keys()
                .map(String::as_str)
                .filter(|k| !matches!(*k, "v" | "cmd"))
                .collect();
            keys.sort_unstable();
            let mut fields = cmd.fields().to_vec();
            fields.sort_unstable();
            assert_eq!(keys, fields, "{}", cmd.name());
        }
    }

    #[test]
    fn only_status_bans_stats_and_fleet_are_read_only() {
        let ro: Vec<&str> = [
            Command::Status,
            Command::Bans { jail: None },
            Command::Stats,
            Command::Ban {
                target: String::new(),
                duration: None,
                jail: None,
                force: false,
            },
            Command::Unban {
                target: None,
                all: true,
                jail: None,
                fleet: false,
            },
            Command::Reload,
            Command::Flush,
            Command::Fleet,
        ]
        .iter()
        .filter(|c| c.is_read_only())
        .map(Command::name)
        .collect();
        assert_eq!(ro, ["status", "bans", "stats", "fleet"]);
    }

    #[test]
    fn replies_have_the_documented_shape() {
        let ok = String::from_utf8(Reply::ok(&[0u8; 0]).to_line()).expect("utf8");
        assert_eq!(ok, "{\"v\":1,\"ok\":true,\"data\":[]}\n");
        let err = String::from_utf8(Reply::error("nope").to_line()).expect("utf8");
        assert_eq!(err, "{\"v\":1,\"ok\":false,\"error\":\"nope\"}\n");
    }

    /// The raw-text `data` must put the same bytes on the wire as encoding the
    /// value inside the reply did when `data` was a `serde_json::Value`.
    #[test]
    fn raw_data_is_byte_identical_to_encoding_the_value() {
        let since = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let entries: Vec<BanEntry> = ["198.51.100.7/32", "2001:db8::/48"]
            .iter()
            .map(|t| {
                BanEntry::from_ban(&Ban {
                    target: t.parse().expect("net"),
                    jail: Arc::from("ssh \"quoted\" é"),
                    since,
                    until: Some(since + Duration::from_secs(3600)),
                    origin: Origin::Manual,
                    reason: None,
                    forced: true,
                    node: None,
                })
            })
            .collect();
        let old_wire = |data: serde_json::Value| {
            let mut line = br#"{"v":1,"ok":true,"data":"#.to_vec();
            line.extend(serde_json::to_vec(&data).expect("encode"));
            line.extend(b"}\n");
            line
        };
        let value = serde_json::to_value(&entries).expect("value");
        let line = Reply::ok_list(&entries).to_line();
        assert_eq!(
            String::from_utf8_lossy(&line),
            String::from_utf8_lossy(&old_wire(value.clone()))
        );
        assert_eq!(Reply::ok(&entries).to_line(), line);
        assert_eq!(Reply::ok_list(&entries).into_line(), line);
        for r in [Reply::error("nope"), Reply::ok(&()), Reply::ok("x")] {
            assert_eq!(r.to_line(), r.clone().into_line());
        }
        assert_eq!(
            Reply::ok_list([0u8; 0]).to_line(),
            Reply::ok(&[0u8; 0]).to_line()
        );
        let stats = Stats {
            uptime_secs: 1,
            lines: 2,
            offences: 3,
            offences_allowlisted: 4,
            offences_special: 0,
            offences_already_banned: 5,
            bans_active: 6,
            bans_total: 7,
            bans_expired: 8,
            bans_lifted: 9,
            tracked: 10,
            evicted: 11,
            history_rows: 12,
            store_commits: 13,
            store_errors: 14,
            sources: Vec::new(),
            backends: Vec::new(),
            hooks: HookStats::default(),
            drops: Vec::new(),
            fleet: None,
            names: NameStats::default(),
        };
        assert_eq!(
            Reply::ok(&stats).to_line(),
            old_wire(serde_json::to_value(&stats).expect("value"))
        );
        let back: Reply = serde_json::from_slice(&line).expect("decode");
        assert_eq!(back.decode::<Vec<BanEntry>>().expect("entries"), entries);
        assert_eq!(
            Reply::error("x").decode::<Option<u8>>().expect("null"),
            None
        );
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
            node: None,
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
        let b = Ban {
            target: "198.51.100.7/32".parse().expect("net"),
            reason: Some(crate::engine::BanReason {
                filter: Arc::from("ssh-fail"),
                first_offence: since,
                last_offence: since + Duration::from_secs(60),
                captures: Default::default(),
            }),
            forced: true,
            node: None,
            ..b
        };
        let v = serde_json::to_value(BanEntry::from_ban(&b)).expect("encode");
        assert_eq!(v["address"], "198.51.100.7");
        assert_eq!(v["filter"], "ssh-fail");
        assert_eq!(v["first_offence"], "2023-11-14T22:13:20Z");
        assert_eq!(v["last_offence"], "2023-11-14T22:14:20Z");
        assert_eq!(v["forced"], true);
    }
}
