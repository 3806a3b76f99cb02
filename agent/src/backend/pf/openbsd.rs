//! The PF backend's OpenBSD wiring: the privileged helper that holds `/dev/pf`
//! (started from the agent's own binary, see docs/openbsd.md) and the settings'
//! [`BackendConfig`] implementation.

use std::os::unix::net::UnixStream;
use std::process::Child;

use ipnet::IpNet;
use log2drop_openbsd::pf::{Pf, PfError, Replaced, TableOps};
use log2drop_openbsd::privsep::{self, Client, HelperOptions, Policy};

use super::config::PfConfig;
use super::{PfBackend, PfBackendError};
use crate::backend::{Backend, BackendConfig, BackendError, Change};
use crate::config::locate::KeyPath;

/// The helper process and the client that talks to it. Dropping it closes the
/// socket, which ends the helper, and reaps it.
struct Helper {
    client: Option<Client<UnixStream>>,
    child: Child,
}

impl Helper {
    fn client(&mut self) -> &mut Client<UnixStream> {
        self.client.as_mut().expect("the client lives until drop")
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        drop(self.client.take());
        if let Err(e) = self.child.wait() {
            tracing::warn!(error = %e, "cannot reap the PF helper");
        }
    }
}

impl TableOps for Helper {
    fn ensure_table(&mut self, name: &str) -> Result<bool, PfError> {
        self.client().ensure_table(name)
    }
    fn add(&mut self, table: &str, nets: &[IpNet]) -> Result<u32, PfError> {
        self.client().add(table, nets)
    }
    fn delete(&mut self, table: &str, nets: &[IpNet]) -> Result<u32, PfError> {
        self.client().delete(table, nets)
    }
    fn list(&mut self, table: &str) -> Result<Vec<IpNet>, PfError> {
        self.client().list(table)
    }
    fn replace(&mut self, table: &str, nets: &[IpNet]) -> Result<Replaced, PfError> {
        self.client().replace(table, nets)
    }
    fn clear(&mut self, table: &str) -> Result<u32, PfError> {
        self.client().clear(table)
    }
    fn kill_states(&mut self, host: std::net::IpAddr) -> Result<u32, PfError> {
        self.client().kill_states(host)
    }
}

impl BackendConfig for PfConfig {
    fn check(&self, at: &KeyPath) -> Vec<(KeyPath, String)> {
        self.problems(at)
    }

    /// Starts the helper (it opens the device, then drops to `_log2drop` in a
    /// chroot) and creates the table if it is missing.
    fn open(&self) -> Result<Box<dyn Backend>, BackendError> {
        let opts = HelperOptions {
            device: self.device.clone(),
            policy: Policy {
                tables: vec![self.table.clone()],
                kill_states: self.kill_states,
            },
            ..HelperOptions::default()
        };
        let spawn_error = |exe: std::path::PathBuf, source| {
            BackendError::Pf(PfBackendError::Spawn { exe, source })
        };
        let exe = std::env::current_exe()
            .map_err(|e| spawn_error(std::path::PathBuf::from("log2drop"), e))?;
        let (client, child) =
            privsep::spawn(opts.command(&exe)).map_err(|e| spawn_error(exe.clone(), e))?;
        let helper = Helper {
            client: Some(client),
            child,
        };
        Ok(Box::new(PfBackend::new(
            helper,
            &self.table,
            self.kill_states,
        )?))
    }

    /// Empties the table (`log2drop flush`, run as root without the agent's
    /// pledge): through `/dev/pf` directly. The table itself stays, since
    /// pf.conf names it.
    fn flush(&self) -> Result<usize, BackendError> {
        let mut pf = Pf::open(&self.device)?;
        match pf.clear(&self.table) {
            Ok(n) => Ok(usize::try_from(n).unwrap_or(usize::MAX)),
            Err(e) if e.errno() == Some(libc::ESRCH) => Ok(0),
            Err(e) => Err(e.into()),
        }
    }

    /// A new table or kill_states setting needs a new helper (it serves only what
    /// it was started with), and the sandboxed agent cannot start one: forking
    /// without the `proc` promise would get it killed.
    fn change_to(&self, new: &Self) -> Change {
        if self == new {
            Change::Keep
        } else {
            Change::Restart
        }
    }

    /// For the same reason, a reload cannot add the backend.
    fn opens_while_running(&self) -> bool {
        false
    }
}
