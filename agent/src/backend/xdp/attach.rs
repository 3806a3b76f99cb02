//! Attaching the program to interfaces through pinned BPF links. A pinned link keeps
//! the program attached after the agent exits, so on start an existing pin is reused
//! and atomically switched to the newly loaded program (an upgrade takes effect with
//! no window where packets pass). A pin whose interface went away (the link is
//! defunct) is replaced by a fresh attachment.

use std::fs;
use std::path::Path;

use aya::programs::links::{FdLink, PinnedLink};
use aya::programs::xdp::XdpLink;
use aya::programs::{Xdp, XdpMode as AyaMode};

use super::XdpError;
use super::config::XdpMode;
use super::maps::is_not_found;

/// How an interface ended up attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attachment {
    /// An existing pinned link now runs the new program (its mode is unchanged).
    Reused,
    /// Newly attached in native (driver) mode.
    Native,
    /// Newly attached in generic (skb) mode.
    Generic,
}

/// Checks an interface exists, returning its index.
pub(crate) fn if_index(interface: &str) -> Result<u32, XdpError> {
    nix::net::if_::if_nametoindex(interface).map_err(|source| XdpError::UnknownInterface {
        interface: interface.to_owned(),
        source,
    })
}

/// Attaches `prog` to `interface`, reusing the link pinned at `pin` when there is a
/// live one, otherwise attaching in `mode` and pinning the new link at `pin`.
pub(crate) fn attach(
    prog: &mut Xdp,
    interface: &str,
    if_index: u32,
    mode: XdpMode,
    pin: &Path,
) -> Result<Attachment, XdpError> {
    if reuse(prog, interface, pin)? {
        return Ok(Attachment::Reused);
    }
    let (link_id, how) = match mode {
        XdpMode::Native => (
            attach_in(prog, interface, if_index, AyaMode::Driver)?,
            Attachment::Native,
        ),
        XdpMode::Skb => (
            attach_in(prog, interface, if_index, AyaMode::Skb)?,
            Attachment::Generic,
        ),
        XdpMode::Auto => match attach_in(prog, interface, if_index, AyaMode::Driver) {
            Ok(id) => (id, Attachment::Native),
            Err(native) => {
                tracing::warn!(
                    interface,
                    error = %error_chain(&native),
                    "native XDP is not available on this interface; falling back to generic \
                     (skb) mode, which drops later in the stack and costs more per packet"
                );
                (
                    attach_in(prog, interface, if_index, AyaMode::Skb)?,
                    Attachment::Generic,
                )
            }
        },
    };
    let link = prog.take_link(link_id).map_err(|source| XdpError::Attach {
        interface: interface.to_owned(),
        mode: mode_name(how),
        source: Box::new(source),
    })?;
    let fd_link = FdLink::try_from(link).map_err(|_| XdpError::NoBpfLink {
        interface: interface.to_owned(),
    })?;
    // Dropping the returned `PinnedLink` only closes our fd; the pin keeps it alive.
    fd_link.pin(pin).map_err(|source| XdpError::PinLink {
        interface: interface.to_owned(),
        path: pin.to_path_buf(),
        source: Box::new(source),
    })?;
    Ok(how)
}

fn mode_name(how: Attachment) -> &'static str {
    match how {
        Attachment::Generic => "skb",
        Attachment::Native | Attachment::Reused => "native",
    }
}

fn attach_in(
    prog: &mut Xdp,
    interface: &str,
    if_index: u32,
    mode: AyaMode,
) -> Result<aya::programs::xdp::XdpLinkId, XdpError> {
    prog.attach_to_if_index(if_index, mode)
        .map_err(|source| XdpError::Attach {
            interface: interface.to_owned(),
            mode: if mode == AyaMode::Skb {
                "skb"
            } else {
                "native"
            },
            source: Box::new(source),
        })
}

/// Switches a live pinned link to `prog`. Returns false (after removing the pin)
/// when there is no pin or the pinned link is dead, so the caller attaches afresh.
fn reuse(prog: &mut Xdp, interface: &str, pin: &Path) -> Result<bool, XdpError> {
    if !pin.exists() {
        return Ok(false);
    }
    let stale = |why: &dyn std::fmt::Display| -> Result<bool, XdpError> {
        tracing::info!(interface, pin = %pin.display(), %why, "pinned XDP link is unusable; attaching afresh");
        remove_pin(pin)?;
        Ok(false)
    };
    let pinned = match PinnedLink::from_pin(pin) {
        Ok(p) => p,
        Err(e) => return stale(&e),
    };
    let link = match XdpLink::try_from(FdLink::from(pinned)) {
        Ok(l) => l,
        Err(e) => return stale(&e),
    };
    match prog.attach_to_link(link) {
        Ok(id) => {
            // Let the pin be the link's only holder, as for a fresh attachment, so a
            // pin that vanishes while we run shows as a detached interface that
            // [`super::XdpBackend::restore_pins`] re-attaches (were the program
            // holding it too, a second attachment would fail with EBUSY).
            if let Ok(held) = prog.take_link(id) {
                drop(held);
            }
            tracing::info!(interface, pin = %pin.display(), "reused pinned XDP link; it now runs the new program");
            Ok(true)
        }
        // The kernel says ENOLINK when the link's interface is gone.
        Err(e) if os_error(&e) == Some(libc::ENOLINK) => stale(&error_chain(&e)),
        Err(source) => Err(XdpError::ReuseLink {
            interface: interface.to_owned(),
            path: pin.to_path_buf(),
            source: Box::new(source),
        }),
    }
}

/// Removes a pin file; already gone is fine.
pub(crate) fn remove_pin(pin: &Path) -> Result<(), XdpError> {
    match fs::remove_file(pin) {
        Ok(()) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(source) => Err(XdpError::PinDir {
            action: "remove",
            path: pin.to_path_buf(),
            source,
        }),
    }
}

/// The errno at the bottom of an error chain, if any.
fn os_error(e: &(dyn std::error::Error + 'static)) -> Option<i32> {
    let mut cur = Some(e);
    while let Some(c) = cur {
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            return io.raw_os_error();
        }
        if let Some(sys) = c.downcast_ref::<aya::sys::SyscallError>() {
            return sys.io_error.raw_os_error();
        }
        cur = c.source();
    }
    None
}

/// An error and its sources on one line, for logs.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
