//! The XDP backend: loads the embedded XDP program, pins its maps and links under
//! the configured bpffs directory, and writes bans into the maps.
//!
//! OWNER NOTE (skeleton): to be implemented.

/// Errors of the XDP backend.
#[derive(Debug, thiserror::Error)]
pub enum XdpError {
    /// Placeholder until the backend lands.
    #[error("xdp backend not built yet")]
    NotBuilt,
}
