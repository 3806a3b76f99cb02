//! Privilege separation for the PF backend, as dhcpd and pftbld do it: a small
//! helper process holds `/dev/pf` and serves table requests over a socketpair, so
//! the agent itself can pledge(2) without the ioctls pledge("pf") forbids
//! (DIOCRADDADDRS, DIOCRDELADDRS, DIOCRGETADDRS, DIOCKILLSTATES; see the crate
//! documentation).
//!
//! - [`serve`] is the helper's loop, generic over the [`TableOps`] it drives and
//!   the stream it reads: on OpenBSD a [`crate::pf::Pf`] on `/dev/pf` and the
//!   socket on its stdin, in tests the fake device and a real socketpair.
//! - [`Client`] is the agent's side; it implements [`TableOps`] too, so the PF
//!   backend is written once against the trait.
//! - [`HelperOptions`] is the helper's command line; [`spawn`] starts it.
//! - `helper::run` (OpenBSD) opens `/dev/pf`, chroots, drops privileges, serves.
//!
//! The helper only answers for the tables in its [`Policy`], so an agent taken over
//! through a log line can still only change log2drop's own table.

#[cfg(target_os = "openbsd")]
pub mod helper;
pub mod wire;

use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::net::IpAddr;
#[cfg(unix)]
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
#[cfg(unix)]
use std::process::{Child, Stdio};
use std::time::Duration;

use ipnet::IpNet;

use crate::pf::{PfError, Replaced, TableName, TableOps};
use wire::{Failure, Request, Response, WireError};

/// The subcommand the agent's binary answers as the helper.
pub const SUBCOMMAND: &str = "pf-helper";

/// How long the agent waits for one answer before it reports the helper hung.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);

/// What the helper agrees to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// The only tables requests may name.
    pub tables: Vec<String>,
    /// Whether DIOCKILLSTATES is allowed (the backend's `kill_states` setting).
    pub kill_states: bool,
}

impl Policy {
    fn check(&self, req: &Request) -> Result<(), String> {
        if let Some(t) = req.table()
            && !self.tables.iter().any(|a| a == t)
        {
            return Err(format!(
                "table <{t}> is not one this helper serves ({})",
                self.tables.join(", ")
            ));
        }
        if matches!(req, Request::KillStates { .. }) && !self.kill_states {
            return Err("killing states is turned off (kill_states = false)".to_owned());
        }
        Ok(())
    }
}

/// Why [`serve`] stopped other than by the agent closing the socket.
#[derive(Debug, thiserror::Error)]
#[error("pf helper: {0}")]
pub struct ServeError(#[from] pub WireError);

/// The helper's loop: reads a request, checks it against `policy`, runs it on
/// `ops`, answers; until the agent closes its end (`Ok`). A frame that breaks the
/// protocol ends the loop with an error: the two sides are out of step.
pub fn serve<T: TableOps, S: Read + Write>(
    ops: &mut T,
    stream: &mut S,
    policy: &Policy,
) -> Result<(), ServeError> {
    let mut buf = Vec::new();
    while wire::read_frame(stream, &mut buf)? {
        let resp = match wire::decode_request(&buf) {
            Ok(req) => match policy.check(&req) {
                Ok(()) => run(ops, req),
                Err(why) => Response::Failed(Failure::Refused(why)),
            },
            Err(e) => {
                let msg = e.to_string();
                // Tell the agent why before hanging up; it may not be listening.
                let _ = wire::write_frame(
                    stream,
                    &wire::encode_response(&Response::Failed(Failure::Other(msg))),
                );
                return Err(e.into());
            }
        };
        wire::write_frame(stream, &wire::encode_response(&resp))?;
    }
    Ok(())
}

fn run<T: TableOps>(ops: &mut T, req: Request) -> Response {
    let result = match req {
        Request::EnsureTable { table } => ops.ensure_table(&table).map(Response::Created),
        Request::Add { table, nets } => ops.add(&table, &nets).map(Response::Count),
        Request::Delete { table, nets } => ops.delete(&table, &nets).map(Response::Count),
        Request::List { table } => ops.list(&table).map(Response::List),
        Request::Replace { table, nets } => ops.replace(&table, &nets).map(Response::Replaced),
        Request::Clear { table } => ops.clear(&table).map(Response::Count),
        Request::KillStates { host } => ops.kill_states(host).map(Response::Count),
    };
    result.unwrap_or_else(|e| Response::Failed(failure(e)))
}

fn failure(e: PfError) -> Failure {
    match e {
        PfError::Ioctl {
            ioctl,
            target,
            source,
        } => Failure::Ioctl {
            ioctl: ioctl.to_owned(),
            target,
            errno: source.raw_os_error().unwrap_or(0),
        },
        PfError::Refused(why) => Failure::Refused(why),
        other => Failure::Other(other.to_string()),
    }
}

/// The agent's side of the socketpair.
#[derive(Debug)]
pub struct Client<S> {
    stream: S,
    buf: Vec<u8>,
    /// A transport error left the stream mid-frame: every later call fails
    /// instead of reading a stale answer as the next one.
    broken: bool,
}

impl<S: Read + Write> Client<S> {
    /// A client over a connected stream.
    pub fn new(stream: S) -> Self {
        Client {
            stream,
            buf: Vec::new(),
            broken: false,
        }
    }

    /// The stream (to close it, which ends the helper).
    pub fn into_inner(self) -> S {
        self.stream
    }

    fn call(&mut self, req: &Request, what: &str) -> Result<Response, PfError> {
        let helper = |stage: &str, source: io::Error| PfError::Helper {
            what: format!("{stage} {what}"),
            source,
        };
        if self.broken {
            return Err(helper(
                "sending",
                io::Error::new(
                    io::ErrorKind::BrokenPipe,
                    "the connection to the helper failed earlier",
                ),
            ));
        }
        // Until a whole answer is read, a failure leaves the stream out of step.
        self.broken = true;
        wire::write_frame(&mut self.stream, &wire::encode_request(req))
            .map_err(|e| helper("sending", e.into()))?;
        match wire::read_frame(&mut self.stream, &mut self.buf) {
            Ok(true) => {}
            Ok(false) => {
                return Err(helper(
                    "awaiting the answer to",
                    io::Error::new(io::ErrorKind::UnexpectedEof, "the helper exited"),
                ));
            }
            Err(e) => return Err(helper("awaiting the answer to", e.into())),
        }
        self.broken = false;
        let resp = wire::decode_response(&self.buf)
            .map_err(|e| helper("decoding the answer to", e.into()))?;
        match resp {
            Response::Failed(Failure::Ioctl {
                ioctl,
                target,
                errno,
            }) => Err(PfError::Ioctl {
                ioctl: crate::pf::sys::request_name_str(&ioctl),
                target,
                source: io::Error::from_raw_os_error(errno),
            }),
            Response::Failed(Failure::Refused(why)) => Err(PfError::Refused(why)),
            Response::Failed(Failure::Other(msg)) => Err(helper("running", io::Error::other(msg))),
            ok => Ok(ok),
        }
    }

    fn unexpected(what: &str, resp: Response) -> PfError {
        PfError::Helper {
            what: format!("answering {what}"),
            source: io::Error::new(
                io::ErrorKind::InvalidData,
                format!("unexpected answer {resp:?}"),
            ),
        }
    }
}

impl<S: Read + Write> TableOps for Client<S> {
    fn ensure_table(&mut self, name: &str) -> Result<bool, PfError> {
        TableName::new(name)?;
        let req = Request::EnsureTable {
            table: name.to_owned(),
        };
        match self.call(&req, "DIOCRADDTABLES")? {
            Response::Created(c) => Ok(c),
            r => Err(Self::unexpected("DIOCRADDTABLES", r)),
        }
    }

    fn add(&mut self, table: &str, nets: &[IpNet]) -> Result<u32, PfError> {
        TableName::new(table)?;
        let req = Request::Add {
            table: table.to_owned(),
            nets: nets.to_vec(),
        };
        count(self.call(&req, "DIOCRADDADDRS")?, "DIOCRADDADDRS")
    }

    fn delete(&mut self, table: &str, nets: &[IpNet]) -> Result<u32, PfError> {
        TableName::new(table)?;
        let req = Request::Delete {
            table: table.to_owned(),
            nets: nets.to_vec(),
        };
        count(self.call(&req, "DIOCRDELADDRS")?, "DIOCRDELADDRS")
    }

    fn list(&mut self, table: &str) -> Result<Vec<IpNet>, PfError> {
        TableName::new(table)?;
        let req = Request::List {
            table: table.to_owned(),
        };
        match self.call(&req, "DIOCRGETADDRS")? {
            Response::List(nets) => Ok(nets),
            r => Err(Self::unexpected("DIOCRGETADDRS", r)),
        }
    }

    fn replace(&mut self, table: &str, nets: &[IpNet]) -> Result<Replaced, PfError> {
        TableName::new(table)?;
        let req = Request::Replace {
            table: table.to_owned(),
            nets: nets.to_vec(),
        };
        match self.call(&req, "DIOCRSETADDRS")? {
            Response::Replaced(r) => Ok(r),
            r => Err(Self::unexpected("DIOCRSETADDRS", r)),
        }
    }

    fn clear(&mut self, table: &str) -> Result<u32, PfError> {
        TableName::new(table)?;
        let req = Request::Clear {
            table: table.to_owned(),
        };
        count(self.call(&req, "DIOCRCLRADDRS")?, "DIOCRCLRADDRS")
    }

    fn kill_states(&mut self, host: IpAddr) -> Result<u32, PfError> {
        count(
            self.call(&Request::KillStates { host }, "DIOCKILLSTATES")?,
            "DIOCKILLSTATES",
        )
    }
}

fn count(resp: Response, what: &str) -> Result<u32, PfError> {
    match resp {
        Response::Count(n) => Ok(n),
        r => Err(Client::<io::Empty>::unexpected(what, r)),
    }
}

/// The helper's command line, after the [`SUBCOMMAND`] word.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HelperOptions {
    /// The pf device.
    pub device: PathBuf,
    /// The empty directory the helper chroots into.
    pub chroot: PathBuf,
    /// The unprivileged user it runs as once `/dev/pf` is open.
    pub user: String,
    /// What it serves.
    pub policy: Policy,
}

impl Default for HelperOptions {
    fn default() -> Self {
        HelperOptions {
            device: PathBuf::from("/dev/pf"),
            chroot: PathBuf::from("/var/empty"),
            user: "_log2drop".to_owned(),
            policy: Policy {
                tables: Vec::new(),
                kill_states: false,
            },
        }
    }
}

impl HelperOptions {
    /// The arguments that follow [`SUBCOMMAND`]:
    /// `--device D --chroot D --user U --table T... [--kill-states]`.
    pub fn to_args(&self) -> Vec<OsString> {
        let mut a: Vec<OsString> = vec![
            "--device".into(),
            self.device.clone().into(),
            "--chroot".into(),
            self.chroot.clone().into(),
            "--user".into(),
            self.user.clone().into(),
        ];
        for t in &self.policy.tables {
            a.push("--table".into());
            a.push(t.into());
        }
        if self.policy.kill_states {
            a.push("--kill-states".into());
        }
        a
    }

    /// Parses what [`HelperOptions::to_args`] wrote. At least one `--table` is
    /// required, and every table name must be valid.
    pub fn from_args(args: impl IntoIterator<Item = OsString>) -> Result<Self, String> {
        let mut o = HelperOptions::default();
        let mut args = args.into_iter();
        while let Some(flag) = args.next() {
            let flag = flag.to_string_lossy().into_owned();
            if flag == "--kill-states" {
                o.policy.kill_states = true;
                continue;
            }
            let value = args
                .next()
                .ok_or_else(|| format!("{SUBCOMMAND}: {flag} needs a value"))?;
            match flag.as_str() {
                "--device" => o.device = value.into(),
                "--chroot" => o.chroot = value.into(),
                "--user" => {
                    o.user = value
                        .into_string()
                        .map_err(|_| format!("{SUBCOMMAND}: --user is not UTF-8"))?
                }
                "--table" => {
                    let t = value.to_string_lossy().into_owned();
                    TableName::new(&t).map_err(|e| format!("{SUBCOMMAND}: {e}"))?;
                    o.policy.tables.push(t);
                }
                _ => return Err(format!("{SUBCOMMAND}: unknown option {flag}")),
            }
        }
        if o.policy.tables.is_empty() {
            return Err(format!("{SUBCOMMAND}: at least one --table is required"));
        }
        Ok(o)
    }

    /// `exe pf-helper <args>` with an empty environment.
    pub fn command(&self, exe: &Path) -> Command {
        let mut cmd = Command::new(exe);
        cmd.arg(SUBCOMMAND).args(self.to_args()).env_clear();
        cmd
    }
}

/// Starts `cmd` (normally [`HelperOptions::command`]) with one end of a fresh
/// socketpair as its stdin and returns a client on the other end, which times out
/// after [`ANSWER_TIMEOUT`]. stdout and stderr are inherited, so the helper's
/// errors reach the agent's log.
#[cfg(unix)]
pub fn spawn(mut cmd: Command) -> io::Result<(Client<UnixStream>, Child)> {
    let (ours, theirs) = UnixStream::pair()?;
    cmd.stdin(Stdio::from(std::os::fd::OwnedFd::from(theirs)));
    let child = cmd.spawn()?;
    ours.set_read_timeout(Some(ANSWER_TIMEOUT))?;
    ours.set_write_timeout(Some(ANSWER_TIMEOUT))?;
    Ok((Client::new(ours), child))
}

#[cfg(test)]
mod tests;
