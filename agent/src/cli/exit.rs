//! Exit statuses from sysexits(3) for errors an admin must fix in a file, so scripts
//! and systemd (`RestartPreventExitStatus=78` in the unit) can tell a broken config
//! from a failure worth retrying.

use log2drop::config::ConfigError;
use log2drop::daemon::DaemonError;

/// EX_CONFIG: the config file is wrong.
pub const EX_CONFIG: u8 = 78;
/// EX_NOINPUT: the config file cannot be read.
pub const EX_NOINPUT: u8 = 66;

/// The sysexits status for `e` if it is the config's fault, else `None`.
pub fn for_daemon_error(e: &DaemonError) -> Option<u8> {
    match e {
        DaemonError::Config(ConfigError::Read { .. }) => Some(EX_NOINPUT),
        DaemonError::Config(ConfigError::Invalid { .. })
        | DaemonError::Engine { .. }
        | DaemonError::Filter { .. }
        | DaemonError::UnknownFilter { .. }
        | DaemonError::SocketGroup { .. }
        | DaemonError::Hooks { .. }
        | DaemonError::Fleet(log2drop::fleet::FleetError::Config(_)) => Some(EX_CONFIG),
        _ => None,
    }
}

/// The sysexits status for an error chain that holds a config error, else `None`.
pub fn for_error(e: &anyhow::Error) -> Option<u8> {
    e.chain()
        .find_map(|c| c.downcast_ref::<DaemonError>())
        .and_then(for_daemon_error)
}
