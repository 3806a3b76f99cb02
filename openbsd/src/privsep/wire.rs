//! The helper protocol's frames. The helper is the privileged side and the agent
//! parses attacker-written logs, so the helper trusts nothing in a frame: lengths
//! are bounded before anything is allocated, every count is checked against the
//! bytes that remain, prefix lengths against the family, and trailing bytes are an
//! error.
//!
//! A frame is a little-endian `u32` body length, then the body: the protocol
//! [`VERSION`], a tag, and the tag's fields. Strings are a `u8` length and UTF-8;
//! an address block is family (4 or 6), prefix length, then 4 or 16 bytes; a list
//! is a `u32` count and its items.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::pf::Replaced;

/// The protocol version every frame carries; the helper and the agent are the same
/// binary, so a mismatch means a half-upgraded install.
pub const VERSION: u8 = 1;

/// The largest frame body: 64 MiB, room for over three million IPv6 blocks.
pub const MAX_FRAME: usize = 64 << 20;

/// What the agent asks the helper to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// [`crate::pf::TableOps::ensure_table`].
    EnsureTable {
        /// The table.
        table: String,
    },
    /// [`crate::pf::TableOps::add`].
    Add {
        /// The table.
        table: String,
        /// The blocks.
        nets: Vec<IpNet>,
    },
    /// [`crate::pf::TableOps::delete`].
    Delete {
        /// The table.
        table: String,
        /// The blocks.
        nets: Vec<IpNet>,
    },
    /// [`crate::pf::TableOps::list`].
    List {
        /// The table.
        table: String,
    },
    /// [`crate::pf::TableOps::replace`].
    Replace {
        /// The table.
        table: String,
        /// The blocks.
        nets: Vec<IpNet>,
    },
    /// [`crate::pf::TableOps::clear`].
    Clear {
        /// The table.
        table: String,
    },
    /// [`crate::pf::TableOps::kill_states`].
    KillStates {
        /// The host.
        host: IpAddr,
    },
}

impl Request {
    /// The table the request names, if any (the helper's policy checks it).
    pub fn table(&self) -> Option<&str> {
        match self {
            Request::EnsureTable { table }
            | Request::Add { table, .. }
            | Request::Delete { table, .. }
            | Request::List { table }
            | Request::Replace { table, .. }
            | Request::Clear { table } => Some(table),
            Request::KillStates { .. } => None,
        }
    }
}

/// How a request failed in the helper.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The kernel refused the ioctl.
    Ioctl {
        /// The request's name (`DIOCRADDADDRS`, ...).
        ioctl: String,
        /// `table <log2drop>` or `host 192.0.2.1`.
        target: String,
        /// The errno.
        errno: i32,
    },
    /// The helper's policy does not allow the request.
    Refused(String),
    /// Anything else, as text.
    Other(String),
}

/// The helper's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    /// The table was created (true) or existed.
    Created(bool),
    /// Entries added, deleted, cleared, or states killed.
    Count(u32),
    /// A replacement's counts.
    Replaced(Replaced),
    /// A table's entries.
    List(Vec<IpNet>),
    /// The request failed.
    Failed(Failure),
}

/// A frame that does not follow the protocol.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// Reading or writing the socket failed.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The body length is over [`MAX_FRAME`].
    #[error("frame of {0} bytes exceeds the {MAX_FRAME}-byte limit")]
    TooLarge(usize),
    /// The peer speaks another version.
    #[error("protocol version {0}, expected {VERSION}")]
    Version(u8),
    /// The body is malformed.
    #[error("malformed frame: {0}")]
    Malformed(&'static str),
}

impl From<WireError> for io::Error {
    fn from(e: WireError) -> io::Error {
        match e {
            WireError::Io(e) => e,
            other => io::Error::new(io::ErrorKind::InvalidData, other),
        }
    }
}

mod tag {
    pub const ENSURE_TABLE: u8 = 1;
    pub const ADD: u8 = 2;
    pub const DELETE: u8 = 3;
    pub const LIST: u8 = 4;
    pub const REPLACE: u8 = 5;
    pub const CLEAR: u8 = 6;
    pub const KILL_STATES: u8 = 7;
    pub const CREATED: u8 = 0x81;
    pub const COUNT: u8 = 0x82;
    pub const REPLACED: u8 = 0x83;
    pub const LIST_OK: u8 = 0x84;
    pub const FAIL_IOCTL: u8 = 0xF1;
    pub const FAIL_REFUSED: u8 = 0xF2;
    pub const FAIL_OTHER: u8 = 0xF3;
}

/// Reads one frame's body into `buf`; `Ok(false)` on a clean end of stream (the
/// peer closed the socket between frames).
pub fn read_frame(r: &mut impl Read, buf: &mut Vec<u8>) -> Result<bool, WireError> {
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match r.read(&mut len[got..]) {
            Ok(0) if got == 0 => return Ok(false),
            Ok(0) => return Err(WireError::Malformed("stream ended inside a length")),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(WireError::TooLarge(len));
    }
    buf.clear();
    buf.resize(len, 0);
    r.read_exact(buf).map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            WireError::Malformed("stream ended inside a frame")
        } else {
            WireError::Io(e)
        }
    })?;
    Ok(true)
}

/// Writes `body` as one frame.
pub fn write_frame(w: &mut impl Write, body: &[u8]) -> Result<(), WireError> {
    if body.len() > MAX_FRAME {
        return Err(WireError::TooLarge(body.len()));
    }
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&(body.len() as u32).to_le_bytes());
    frame.extend_from_slice(body);
    w.write_all(&frame)?;
    w.flush()?;
    Ok(())
}

/// The body of `req`.
pub fn encode_request(req: &Request) -> Vec<u8> {
    let mut b = vec![VERSION];
    match req {
        Request::EnsureTable { table } => put_tagged_str(&mut b, tag::ENSURE_TABLE, table),
        Request::Add { table, nets } => put_nets_req(&mut b, tag::ADD, table, nets),
        Request::Delete { table, nets } => put_nets_req(&mut b, tag::DELETE, table, nets),
        Request::List { table } => put_tagged_str(&mut b, tag::LIST, table),
        Request::Replace { table, nets } => put_nets_req(&mut b, tag::REPLACE, table, nets),
        Request::Clear { table } => put_tagged_str(&mut b, tag::CLEAR, table),
        Request::KillStates { host } => {
            b.push(tag::KILL_STATES);
            put_net(&mut b, &IpNet::from(*host));
        }
    }
    b
}

/// The request in `body`.
pub fn decode_request(body: &[u8]) -> Result<Request, WireError> {
    let mut r = Reader::new(body)?;
    let req = match r.u8()? {
        tag::ENSURE_TABLE => Request::EnsureTable { table: r.str()? },
        tag::ADD => Request::Add {
            table: r.str()?,
            nets: r.nets()?,
        },
        tag::DELETE => Request::Delete {
            table: r.str()?,
            nets: r.nets()?,
        },
        tag::LIST => Request::List { table: r.str()? },
        tag::REPLACE => Request::Replace {
            table: r.str()?,
            nets: r.nets()?,
        },
        tag::CLEAR => Request::Clear { table: r.str()? },
        tag::KILL_STATES => {
            let net = r.net()?;
            if net.prefix_len() != net.max_prefix_len() {
                return Err(WireError::Malformed("kill_states needs a host address"));
            }
            Request::KillStates { host: net.addr() }
        }
        _ => return Err(WireError::Malformed("unknown request tag")),
    };
    r.end()?;
    Ok(req)
}

/// The body of `resp`.
pub fn encode_response(resp: &Response) -> Vec<u8> {
    let mut b = vec![VERSION];
    match resp {
        Response::Created(c) => {
            b.push(tag::CREATED);
            b.push(u8::from(*c));
        }
        Response::Count(n) => {
            b.push(tag::COUNT);
            b.extend_from_slice(&n.to_le_bytes());
        }
        Response::Replaced(r) => {
            b.push(tag::REPLACED);
            for n in [r.added, r.deleted, r.changed] {
                b.extend_from_slice(&n.to_le_bytes());
            }
        }
        Response::List(nets) => {
            b.push(tag::LIST_OK);
            put_nets(&mut b, nets);
        }
        Response::Failed(Failure::Ioctl {
            ioctl,
            target,
            errno,
        }) => {
            b.push(tag::FAIL_IOCTL);
            put_str(&mut b, ioctl);
            put_str(&mut b, target);
            b.extend_from_slice(&errno.to_le_bytes());
        }
        Response::Failed(Failure::Refused(m)) => put_tagged_str(&mut b, tag::FAIL_REFUSED, m),
        Response::Failed(Failure::Other(m)) => put_tagged_str(&mut b, tag::FAIL_OTHER, m),
    }
    b
}

/// The response in `body`.
pub fn decode_response(body: &[u8]) -> Result<Response, WireError> {
    let mut r = Reader::new(body)?;
    let resp = match r.u8()? {
        tag::CREATED => match r.u8()? {
            0 => Response::Created(false),
            1 => Response::Created(true),
            _ => return Err(WireError::Malformed("created flag is neither 0 nor 1")),
        },
        tag::COUNT => Response::Count(r.u32()?),
        tag::REPLACED => Response::Replaced(Replaced {
            added: r.u32()?,
            deleted: r.u32()?,
            changed: r.u32()?,
        }),
        tag::LIST_OK => Response::List(r.nets()?),
        tag::FAIL_IOCTL => Response::Failed(Failure::Ioctl {
            ioctl: r.str()?,
            target: r.str()?,
            errno: r.u32()? as i32,
        }),
        tag::FAIL_REFUSED => Response::Failed(Failure::Refused(r.str()?)),
        tag::FAIL_OTHER => Response::Failed(Failure::Other(r.str()?)),
        _ => return Err(WireError::Malformed("unknown response tag")),
    };
    r.end()?;
    Ok(resp)
}

fn put_str(b: &mut Vec<u8>, s: &str) {
    // Strings are table names, ioctl names and short messages: cut at 255 bytes on
    // a character boundary.
    let mut end = s.len().min(255);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    b.push(end as u8);
    b.extend_from_slice(&s.as_bytes()[..end]);
}

fn put_tagged_str(b: &mut Vec<u8>, tag: u8, s: &str) {
    b.push(tag);
    put_str(b, s);
}

fn put_net(b: &mut Vec<u8>, net: &IpNet) {
    match net {
        IpNet::V4(n) => {
            b.extend_from_slice(&[4, n.prefix_len()]);
            b.extend_from_slice(&n.addr().octets());
        }
        IpNet::V6(n) => {
            b.extend_from_slice(&[6, n.prefix_len()]);
            b.extend_from_slice(&n.addr().octets());
        }
    }
}

fn put_nets(b: &mut Vec<u8>, nets: &[IpNet]) {
    b.extend_from_slice(&(nets.len() as u32).to_le_bytes());
    for n in nets {
        put_net(b, n);
    }
}

fn put_nets_req(b: &mut Vec<u8>, tag: u8, table: &str, nets: &[IpNet]) {
    b.push(tag);
    put_str(b, table);
    put_nets(b, nets);
}

struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(body: &'a [u8]) -> Result<Self, WireError> {
        let mut r = Reader { rest: body };
        match r.u8()? {
            VERSION => Ok(r),
            v => Err(WireError::Version(v)),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if self.rest.len() < n {
            return Err(WireError::Malformed("truncated"));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, WireError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn str(&mut self) -> Result<String, WireError> {
        let n = self.u8()? as usize;
        let b = self.take(n)?;
        String::from_utf8(b.to_vec()).map_err(|_| WireError::Malformed("string is not UTF-8"))
    }

    fn net(&mut self) -> Result<IpNet, WireError> {
        let family = self.u8()?;
        let prefix = self.u8()?;
        let bad = WireError::Malformed("prefix too long for the family");
        match family {
            4 => {
                let b = self.take(4)?;
                let a = Ipv4Addr::new(b[0], b[1], b[2], b[3]);
                Ipv4Net::new(a, prefix).map(IpNet::V4).map_err(|_| bad)
            }
            6 => {
                let mut o = [0u8; 16];
                o.copy_from_slice(self.take(16)?);
                Ipv6Net::new(Ipv6Addr::from(o), prefix)
                    .map(IpNet::V6)
                    .map_err(|_| bad)
            }
            _ => Err(WireError::Malformed("address family is neither 4 nor 6")),
        }
    }

    fn nets(&mut self) -> Result<Vec<IpNet>, WireError> {
        let n = self.u32()? as usize;
        // The smallest entry is 6 bytes: refuse counts the frame cannot hold
        // before allocating for them.
        if n > self.rest.len() / 6 {
            return Err(WireError::Malformed("address count exceeds the frame"));
        }
        (0..n).map(|_| self.net()).collect()
    }

    fn end(&self) -> Result<(), WireError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(WireError::Malformed("trailing bytes"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_net() -> impl Strategy<Value = IpNet> + Clone {
        prop_oneof![
            (any::<[u8; 4]>(), 0u8..=32)
                .prop_map(|(a, p)| IpNet::V4(Ipv4Net::new(a.into(), p).unwrap())),
            (any::<[u8; 16]>(), 0u8..=128)
                .prop_map(|(a, p)| IpNet::V6(Ipv6Net::new(a.into(), p).unwrap())),
        ]
    }

    fn arb_request() -> impl Strategy<Value = Request> {
        let table = "[a-z_]{1,31}";
        let nets = prop::collection::vec(arb_net(), 0..20);
        prop_oneof![
            table.prop_map(|table| Request::EnsureTable { table }),
            (table, nets.clone()).prop_map(|(table, nets)| Request::Add { table, nets }),
            (table, nets.clone()).prop_map(|(table, nets)| Request::Delete { table, nets }),
            table.prop_map(|table| Request::List { table }),
            (table, nets).prop_map(|(table, nets)| Request::Replace { table, nets }),
            table.prop_map(|table| Request::Clear { table }),
            arb_net().prop_map(|n| Request::KillStates { host: n.addr() }),
        ]
    }

    proptest! {
        #[test]
        fn requests_round_trip(req in arb_request()) {
            prop_assert_eq!(decode_request(&encode_request(&req)).unwrap(), req);
        }

        #[test]
        fn responses_round_trip(nets in prop::collection::vec(arb_net(), 0..20),
                                n in any::<u32>(), errno in any::<i32>(), s in ".{0,40}") {
            for resp in [
                Response::Created(n % 2 == 0),
                Response::Count(n),
                Response::Replaced(Replaced { added: n, deleted: n / 2, changed: 1 }),
                Response::List(nets.clone()),
                Response::Failed(Failure::Ioctl { ioctl: "DIOCRADDADDRS".into(),
                    target: s.clone(), errno }),
                Response::Failed(Failure::Refused(s.clone())),
                Response::Failed(Failure::Other(s.clone())),
            ] {
                prop_assert_eq!(decode_response(&encode_response(&resp)).unwrap(), resp);
            }
        }

        /// Arbitrary bytes never panic the helper's decoder.
        #[test]
        fn garbage_is_an_error_not_a_panic(body in prop::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode_request(&body);
            let _ = decode_response(&body);
        }
    }

    #[test]
    fn hostile_frames_are_refused_before_allocating() {
        // A count of four billion addresses in a 10-byte frame.
        let mut b = vec![VERSION, tag::ADD, 1, b't'];
        b.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(decode_request(&b), Err(WireError::Malformed(_))));
        // A frame length over the limit.
        let mut stream: &[u8] = &(MAX_FRAME as u32 + 1).to_le_bytes();
        let mut buf = Vec::new();
        assert!(matches!(
            read_frame(&mut stream, &mut buf),
            Err(WireError::TooLarge(_))
        ));
        // Another version; a /33; a network address for kill_states; trailing bytes.
        assert!(matches!(
            decode_request(&[2, tag::LIST, 0]),
            Err(WireError::Version(2))
        ));
        let mut b = vec![VERSION, tag::KILL_STATES, 4, 33, 192, 0, 2, 1];
        assert!(matches!(decode_request(&b), Err(WireError::Malformed(_))));
        b[3] = 24;
        assert!(matches!(decode_request(&b), Err(WireError::Malformed(_))));
        let mut b = encode_request(&Request::List { table: "t".into() });
        b.push(0);
        assert!(matches!(decode_request(&b), Err(WireError::Malformed(_))));
        // A clean end of stream between frames is not an error.
        let mut empty: &[u8] = &[];
        assert!(!read_frame(&mut empty, &mut buf).unwrap());
    }
}
