//! log2drop's XDP backend, opened through the library on a throwaway veth inside a
//! namespace the bench created, with its pins in a private bpffs directory. The map
//! cases (insert rate, restore, per-packet cost, kernel memory) drive it directly,
//! the way the daemon's engine task does: batches of decisions.
//!
//! Everything goes on drop, in order: the backend's descriptors, the pins (which
//! detaches the program), the pin directory, the veth and the namespace.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::{Context, Result};
use ipnet::IpNet;

use log2drop::backend::Backend;
use log2drop::backend::xdp::XdpBackend;
use log2drop::backend::xdp::config::{XdpConfig, XdpMode};
use log2drop::engine::{Ban, Decision, Origin};
use log2drop_tests::{NetNs, PinDir, VethPair};

/// The batch size the daemon folds offences into (its `MAX_BATCH`), so the bench
/// applies decisions in the same shape the agent does.
pub const DAEMON_BATCH: usize = 4096;

/// A namespace with a veth whose one end runs log2drop's XDP program.
pub struct XdpLab {
    backend: Option<XdpBackend>,
    cfg: XdpConfig,
    pins: PinDir,
    /// Held for its lifetime: the program's interface.
    _veth: VethPair,
    ns: NetNs,
}

impl XdpLab {
    /// Creates the namespace and veth and opens the backend with these capacities.
    pub fn new(max_bans: u32, max_cidr_bans: u32) -> Result<XdpLab> {
        let ns = NetNs::new();
        let veth = VethPair::new(&ns, &[], &ns, &[]);
        let pins = PinDir::new();
        let cfg = XdpConfig {
            interfaces: vec![veth.a().ifname.clone()],
            pin_dir: pins.path().to_path_buf(),
            mode: XdpMode::Auto,
            max_bans,
            max_cidr_bans,
            counters: true,
        };
        let mut lab = XdpLab {
            backend: None,
            cfg,
            pins,
            _veth: veth,
            ns,
        };
        lab.reopen()?;
        Ok(lab)
    }

    /// Drops the backend and opens it again on the same pins, as an agent restart
    /// does. Returns nothing; the pinned maps keep their contents.
    pub fn reopen(&mut self) -> Result<()> {
        self.backend = None;
        let _inside = self.ns.enter();
        let backend = XdpBackend::open(&self.cfg)
            .with_context(|| format!("opening the XDP backend on {}", self.cfg.interfaces[0]))?;
        self.backend = Some(backend);
        Ok(())
    }

    /// The open backend.
    pub fn backend(&mut self) -> &mut XdpBackend {
        self.backend
            .as_mut()
            .expect("the lab always holds an open backend outside reopen")
    }

    /// Applies bans for `targets` in daemon-sized batches.
    pub fn ban_all(&mut self, targets: &[IpNet]) -> Result<()> {
        let now = SystemTime::now();
        let jail: Arc<str> = Arc::from("bench");
        for chunk in targets.chunks(DAEMON_BATCH) {
            let batch: Vec<Decision> = chunk
                .iter()
                .map(|t| Decision::Ban(ban(*t, &jail, now)))
                .collect();
            self.backend()
                .apply(&batch, now)
                .context("applying a batch of bans")?;
        }
        Ok(())
    }
}

impl Drop for XdpLab {
    fn drop(&mut self) {
        self.backend = None;
        if let Err(e) = XdpBackend::detach_and_unpin(self.pins.path()) {
            eprintln!("warning: cannot unpin {}: {e}", self.pins.path().display());
        }
    }
}

/// A permanent ban of `target` by `jail` (the one place the bench builds a [`Ban`]).
pub fn ban(target: IpNet, jail: &Arc<str>, now: SystemTime) -> Ban {
    Ban {
        target,
        jail: jail.clone(),
        since: now,
        until: None,
        origin: Origin::Manual,
        reason: None,
        forced: false,
        node: None,
    }
}

/// `addr` as a host prefix (/32 or /128).
pub fn host(addr: impl Into<IpAddr>) -> IpNet {
    IpNet::from(addr.into())
}
