//! Service notifications to systemd (`Type=notify` in contrib/systemd): READY once
//! the start-up reconcile is done and bans are enforced, RELOADING/READY around each
//! reload, STOPPING when shutdown begins. Each call is a no-op without
//! `NOTIFY_SOCKET` (not started by systemd) and a failure to notify is only logged:
//! the daemon never stops because the service manager is unreachable.

use sd_notify::NotifyState;

/// Start-up is done: the backends are reconciled and sources are read.
pub(crate) fn ready() {
    send(&[NotifyState::Ready], "READY");
}

/// A reload begins. systemd wants MONOTONIC_USEC with it (since v253) to match it to
/// the reload request; a clock error just leaves it out.
pub(crate) fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[NotifyState::Reloading, now], "RELOADING"),
        Err(_) => send(&[NotifyState::Reloading], "RELOADING"),
    }
}

/// Shutdown begins.
pub(crate) fn stopping() {
    send(&[NotifyState::Stopping], "STOPPING");
}

fn send(states: &[NotifyState<'_>], what: &str) {
    // `false`: keep NOTIFY_SOCKET, later states are sent through it too.
    if let Err(e) = sd_notify::notify(false, states) {
        tracing::warn!(error = %e, "cannot tell systemd {what}");
    }
}
