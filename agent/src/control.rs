//! The control socket: how `log2drop bans|ban|unban|status` talk to the running
//! agent. JSON lines over a root-only unix socket; every message carries `"v": 1`.
//!
//! - [`protocol`]: the messages (shared by both sides).
//! - [`server`]: the daemon side; it forwards each request to the engine task and
//!   writes back its reply.
//! - [`client`]: the CLI side; one request, one reply, with a timeout.

pub mod client;
pub mod protocol;
pub mod server;
