//! One fleet event as it is written to the stream (field/value pairs) and to the
//! snapshot (one JSON value per target), and read back. Pure code: the link does
//! the I/O, the engine task applies what this decodes.
//!
//! Fields of a stream entry: `v` (format, `1`), `op` (`ban` or `unban`), `target`
//! (`ADDR/LEN`), `node` (who published), and for a ban `jail`, `origin`, `since`
//! and `until` (milliseconds since the epoch; `until` empty for a permanent ban).
//! An unban with `scope = all` (`log2drop unban --fleet`) lifts any ban on the
//! target everywhere; otherwise only the bans `node` shared.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::engine::{Ban, RemoteBan};

/// Format version written in `v`.
pub const VERSION: &str = "1";

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// `node` banned `target` until `until`.
    Ban(BanEvent),
    /// `node` lifted its ban on `target`, or (with `all`) asks every host to
    /// lift any ban on it.
    Unban {
        /// Address or prefix.
        target: IpNet,
        /// Who published.
        node: Arc<str>,
        /// `unban --fleet`: every host lifts whatever ban it has on `target`.
        all: bool,
    },
}

/// A published ban.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BanEvent {
    /// Address or prefix.
    pub target: IpNet,
    /// Who published.
    pub node: String,
    /// The jail that banned it there (or `manual`).
    pub jail: String,
    /// `jail`, `manual` or `subnet`, there.
    pub origin: String,
    /// Milliseconds since the epoch.
    pub since: u64,
    /// Milliseconds since the epoch; `None` is permanent.
    pub until: Option<u64>,
}

/// Why an entry could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// A field is missing.
    #[error("no field {0:?}")]
    Missing(&'static str),
    /// A field does not parse.
    #[error("bad {field}: {value:?}")]
    Bad {
        /// The field.
        field: &'static str,
        /// What it held.
        value: String,
    },
    /// Written by a newer format.
    #[error("format version {0:?} is not known here")]
    Version(String),
}

fn ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn time(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

impl BanEvent {
    /// The event for a local ban, published as `node`.
    pub fn of(ban: &Ban, node: &Arc<str>) -> BanEvent {
        BanEvent {
            target: ban.target,
            node: node.to_string(),
            jail: ban.jail.to_string(),
            origin: ban.origin.as_str().to_owned(),
            since: ms(ban.since),
            until: ban.until.map(ms),
        }
    }

    /// What the engine gets.
    pub fn remote(&self) -> RemoteBan {
        RemoteBan {
            target: self.target,
            node: Arc::from(self.node.as_str()),
            since: time(self.since),
            until: self.until.map(time),
        }
    }

    /// The snapshot's score: the deadline in ms, `+inf` when permanent.
    pub fn score(&self) -> f64 {
        self.until.map_or(f64::INFINITY, |u| u as f64)
    }
}

impl Event {
    /// The target.
    pub fn target(&self) -> IpNet {
        match self {
            Event::Ban(b) => b.target,
            Event::Unban { target, .. } => *target,
        }
    }

    /// The publishing node.
    pub fn node(&self) -> &str {
        match self {
            Event::Ban(b) => &b.node,
            Event::Unban { node, .. } => node,
        }
    }

    /// The stream entry's field/value pairs.
    pub fn fields(&self) -> Vec<(&'static str, String)> {
        let mut f = vec![("v", VERSION.to_owned())];
        match self {
            Event::Ban(b) => {
                f.push(("op", "ban".into()));
                f.push(("target", b.target.to_string()));
                f.push(("node", b.node.to_string()));
                f.push(("jail", b.jail.clone()));
                f.push(("origin", b.origin.clone()));
                f.push(("since", b.since.to_string()));
                f.push(("until", b.until.map(|u| u.to_string()).unwrap_or_default()));
            }
            Event::Unban { target, node, all } => {
                f.push(("op", "unban".into()));
                f.push(("target", target.to_string()));
                f.push(("node", node.to_string()));
                if *all {
                    f.push(("scope", "all".into()));
                }
            }
        }
        f
    }

    /// Reads a stream entry; `get` looks a field up.
    pub fn parse<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Result<Event, EventError> {
        let need = |k: &'static str| get(k).ok_or(EventError::Missing(k));
        let v = need("v")?;
        if v != VERSION {
            return Err(EventError::Version(v.to_owned()));
        }
        let target_s = need("target")?;
        let target: IpNet = target_s.parse().map_err(|_| EventError::Bad {
            field: "target",
            value: target_s.to_owned(),
        })?;
        let node = need("node")?;
        if node.is_empty() {
            return Err(EventError::Bad {
                field: "node",
                value: String::new(),
            });
        }
        let node: Arc<str> = Arc::from(node);
        let number = |k: &'static str, s: &str| {
            s.parse::<u64>().map_err(|_| EventError::Bad {
                field: k,
                value: s.to_owned(),
            })
        };
        match need("op")? {
            "ban" => {
                let until = match need("until")? {
                    "" => None,
                    s => Some(number("until", s)?),
                };
                Ok(Event::Ban(BanEvent {
                    target,
                    node: node.to_string(),
                    jail: get("jail").unwrap_or_default().to_owned(),
                    origin: get("origin").unwrap_or_default().to_owned(),
                    since: number("since", need("since")?)?,
                    until,
                }))
            }
            "unban" => Ok(Event::Unban {
                target,
                node,
                all: get("scope") == Some("all"),
            }),
            other => Err(EventError::Bad {
                field: "op",
                value: other.to_owned(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn round_trip(e: &Event) -> Result<Event, EventError> {
        let fields: HashMap<&str, String> = e.fields().into_iter().collect();
        Event::parse(|k| fields.get(k).map(String::as_str))
    }

    #[test]
    fn events_round_trip() {
        let ban = Event::Ban(BanEvent {
            target: "192.0.2.7/32".parse().expect("net"),
            node: "web-1".into(),
            jail: "ssh".into(),
            origin: "jail".into(),
            since: 1_700_000_000_123,
            until: Some(1_700_003_600_123),
        });
        let permanent = Event::Ban(BanEvent {
            until: None,
            target: "2001:db8::/64".parse().expect("net"),
            ..match &ban {
                Event::Ban(b) => b.clone(),
                Event::Unban { .. } => unreachable!(),
            }
        });
        let unban = Event::Unban {
            target: "198.51.100.0/24".parse().expect("net"),
            node: Arc::from("web-2"),
            all: true,
        };
        for e in [ban, permanent, unban] {
            assert_eq!(round_trip(&e).as_ref(), Ok(&e));
        }
    }

    #[test]
    fn bad_entries_are_refused_not_guessed() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("op", "ban")], "no field \"v\""),
            (&[("v", "2"), ("op", "ban")], "version"),
            (
                &[
                    ("v", "1"),
                    ("op", "ban"),
                    ("target", "example.org"),
                    ("node", "a"),
                ],
                "bad target",
            ),
            (
                &[
                    ("v", "1"),
                    ("op", "ban"),
                    ("target", "192.0.2.1/32"),
                    ("node", "a"),
                    ("since", "x"),
                    ("until", ""),
                ],
                "bad since",
            ),
            (
                &[
                    ("v", "1"),
                    ("op", "drop"),
                    ("target", "192.0.2.1/32"),
                    ("node", "a"),
                ],
                "bad op",
            ),
            (
                &[
                    ("v", "1"),
                    ("op", "unban"),
                    ("target", "192.0.2.1/32"),
                    ("node", ""),
                ],
                "bad node",
            ),
        ];
        for (fields, want) in cases {
            let map: HashMap<&str, &str> = fields.iter().copied().collect();
            let e = Event::parse(|k| map.get(k).copied()).expect_err("refused");
            assert!(e.to_string().contains(want), "{e} vs {want}");
        }
    }

    #[test]
    fn the_snapshot_score_is_the_deadline() {
        let b = BanEvent {
            target: "192.0.2.1/32".parse().expect("net"),
            node: "a".into(),
            jail: String::new(),
            origin: String::new(),
            since: 1,
            until: Some(5000),
        };
        assert_eq!(b.score(), 5000.0);
        assert!(BanEvent { until: None, ..b }.score().is_infinite());
    }
}
