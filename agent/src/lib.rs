//! log2drop's library: everything the `log2drop` binary does, split one concept per
//! module so each can be tested on its own. Data flows one way:
//!
//! ```text
//! source ──lines──▶ filter ──offences──▶ engine ──decisions──▶ backend / store
//! ```
//!
//! `source`, `control` and `daemon` do I/O (tokio); `filter` and `engine` are plain
//! synchronous code with no I/O and an injected `now`, so unit tests drive them
//! directly.
#![warn(missing_docs)]

pub mod addr;
pub mod backend;
pub mod config;
pub mod control;
pub mod daemon;
pub mod dns;
pub mod duration;
pub mod engine;
pub mod fail2ban;
pub mod filter;
pub mod fleet;
pub mod hooks;
pub(crate) mod log_limit;
pub mod metrics;
pub mod ownaddrs;
pub mod private_dir;
pub mod report;
pub(crate) mod sandbox;
pub mod source;
pub mod store;
mod systemd;
