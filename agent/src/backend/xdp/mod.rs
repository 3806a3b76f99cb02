//! The XDP backend: loads the embedded XDP program, pins its maps and links under the
//! configured bpffs directory, and writes bans into the maps. The kernel holds the
//! enforced set: pinned maps keep the bans and pinned links keep the program attached
//! while the agent is down, and [`XdpBackend::open`] picks both up again (a restart
//! neither drops bans nor re-applies them one by one).
//!
//! Submodules: [`target`] routes a ban to its map, [`deadline`] converts wall-clock
//! deadlines to the kernel's monotonic clock, [`maps`] owns typed map access,
//! [`pins`] the pin directory layout, [`migrate`] carries bans over from an older pin
//! layout and [`attach`] the links; [`config`] is `[backends.xdp]`.

mod attach;
pub mod config;
mod deadline;
mod error;
mod maps;
mod migrate;
mod pins;
mod target;

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use aya::maps::MapInfo;
use aya::programs::{TestRun, TestRunOptions, Xdp};
use aya::{Ebpf, EbpfLoader};
use ipnet::IpNet;
use log2drop_common::{
    MAP_BAN_V4, MAP_BAN_V6, MAP_CIDR_COUNT, MAP_CIDR_DROPS, MAP_CIDR_V4, MAP_CIDR_V6,
};

/// Every map the program pins, by name.
const PINNED_MAPS: [&str; 6] = [
    MAP_BAN_V4,
    MAP_BAN_V6,
    MAP_CIDR_V4,
    MAP_CIDR_V6,
    MAP_CIDR_COUNT,
    MAP_CIDR_DROPS,
];

/// The XDP program in a loaded object.
fn program_mut(ebpf: &mut Ebpf) -> Result<&mut Xdp, XdpError> {
    ebpf.program_mut(PROGRAM)
        .ok_or(XdpError::ObjectMissing {
            what: "program",
            name: PROGRAM,
        })?
        .try_into()
        .map_err(|source: aya::programs::ProgramError| XdpError::Program {
            action: "find",
            source: Box::new(source),
        })
}

pub use attach::Attachment;
pub use error::XdpError;
pub use migrate::Migrated;

use self::config::XdpConfig;
use self::maps::{BanMaps, MapSizes, is_not_found};
use self::pins::PinLayout;
use self::target::Slot;
use super::{Backend, BackendConfig, BackendError, Change, DropCounts, ReconcileReport};
use crate::config::locate::KeyPath;
use crate::engine::{Ban, Decision};

/// The compiled XDP program (`cargo xtask build-ebpf`), located by `build.rs`.
static XDP_OBJECT: &[u8] = aya::include_bytes_aligned!(env!("LOG2DROP_EBPF_OBJ"));

/// Name of the program (its function) inside the object.
const PROGRAM: &str = "log2drop_xdp";
/// The program's `.rodata` switch for per-ban drop counters (`counters`).
const GLOBAL_COUNT_DROPS: &str = "COUNT_DROPS";

/// `XDP_DROP` from the kernel's `enum xdp_action`.
const XDP_DROP: u32 = 1;
/// `XDP_PASS` from the kernel's `enum xdp_action`.
const XDP_PASS: u32 = 2;

/// What the program decided for a frame in [`XdpBackend::test_run`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// `XDP_DROP`: a ban matched.
    Drop,
    /// `XDP_PASS`: the frame goes on to the stack.
    Pass,
    /// Any other action (the program never returns one).
    Other(u32),
}

/// Result of [`XdpBackend::test_run`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TestVerdict {
    /// The program's decision.
    pub action: Verdict,
    /// Average time of one run, as the kernel measured it.
    pub per_run: Duration,
}

/// The XDP backend. Dropping it leaves the program attached and the bans in place:
/// that is the point. [`XdpBackend::detach_and_unpin`] removes everything.
pub struct XdpBackend {
    maps: BanMaps,
    /// Keeps the loaded program (and the links it took over) open while we run.
    _ebpf: Ebpf,
    pins: PinLayout,
    attachments: Vec<(String, Attachment)>,
    /// The configured mode, for re-attaching an interface whose link pin vanished.
    mode: self::config::XdpMode,
    load_time: Duration,
    migrated: Option<Migrated>,
    /// When [`Backend::gc`] last walked the maps for expired entries.
    last_sweep: Option<Instant>,
}

/// How often [`Backend::gc`] walks every ban map. The engine lifts its own bans at
/// their deadlines and the program ignores an expired entry anyway, so the walk only
/// collects entries nobody lifted (an agent that was down at the deadline). At a
/// million bans one walk is a million lookups, which the agent used to run every
/// minute next to the cores dropping a flood; once an hour is enough for leftovers.
const SWEEP_EVERY: Duration = Duration::from_secs(3600);

impl std::fmt::Debug for XdpBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XdpBackend")
            .field("pin_dir", &self.pins.root)
            .field("attachments", &self.attachments)
            .field("load_time", &self.load_time)
            .finish_non_exhaustive()
    }
}

impl XdpBackend {
    /// Loads the embedded program, reusing the maps pinned under `cfg.pin_dir` (so
    /// bans survive restarts), and attaches it to every configured interface,
    /// reusing pinned links. Every interface is checked before anything is attached.
    pub fn open(cfg: &XdpConfig) -> Result<XdpBackend, XdpError> {
        if cfg.interfaces.is_empty() {
            return Err(XdpError::NoInterfaces);
        }
        if cfg.max_bans == 0 {
            return Err(XdpError::ZeroCapacity { key: "max_bans" });
        }
        if cfg.max_cidr_bans == 0 {
            return Err(XdpError::ZeroCapacity {
                key: "max_cidr_bans",
            });
        }
        let indexes = cfg
            .interfaces
            .iter()
            .map(|name| attach::if_index(name))
            .collect::<Result<Vec<_>, _>>()?;

        let pins = PinLayout::new(&cfg.pin_dir);
        pins.prepare()?;
        let sizes = effective_sizes(&pins, cfg)?;
        // An upgrade from an older layout copies its bans, but only into maps this
        // start creates: after a crash between the copy and the old pins' removal the
        // new maps are already filled (and hold counts the copy would add twice).
        let old_layouts = migrate::old_layouts(&pins)?;
        let fresh_maps = !pins.map(MAP_BAN_V4).exists();

        let started = Instant::now();
        let mut loader = EbpfLoader::new();
        loader.default_map_pin_directory(pins.maps_dir());
        for (name, n) in &sizes.0 {
            loader.map_max_entries(name, *n);
        }
        let count_drops = u8::from(cfg.counters);
        loader.override_global(GLOBAL_COUNT_DROPS, &count_drops, true);
        let mut ebpf = loader.load(XDP_OBJECT).map_err(|source| XdpError::Load {
            maps_dir: pins.maps_dir(),
            source: Box::new(source),
        })?;
        let mut maps = BanMaps::new(&mut ebpf, sizes)?;
        let mut migrated = None;
        for (version, dir) in &old_layouts {
            if !(fresh_maps && migrate::can_copy(*version)) {
                continue;
            }
            // A copy that fails is not fatal: reconciliation with the store refills
            // the maps, with a short gap for bans the copy did not reach.
            match migrate::copy_v2(dir, &mut maps) {
                Ok(m) => {
                    tracing::info!(from = %dir.display(), bans = m.bans, expired = m.expired,
                        counters = m.counters, "carried bans over from the previous pin layout");
                    migrated = Some(m);
                }
                Err(e) => tracing::warn!(from = %dir.display(), error = %attach::error_chain(&e),
                    "cannot carry bans over from the previous pin layout; the store's bans \
                     are written back at reconciliation"),
            }
        }
        let prog = program_mut(&mut ebpf)?;
        prog.load().map_err(|source| XdpError::Program {
            action: "load (verify)",
            source: Box::new(source),
        })?;
        let load_time = started.elapsed();
        tracing::info!(?load_time, pin_dir = %pins.root.display(), "XDP program loaded");

        let mut attachments = Vec::with_capacity(cfg.interfaces.len());
        for (name, index) in cfg.interfaces.iter().zip(indexes) {
            let how = attach::attach(prog, name, index, cfg.mode, &pins.link(name))?;
            tracing::info!(interface = %name, attachment = ?how, "XDP program attached");
            attachments.push((name.clone(), how));
        }
        // The links run the new program now; the old maps go with the last
        // reference to the old program once their pins are gone.
        for (_, dir) in &old_layouts {
            let n = migrate::remove(dir)?;
            tracing::info!(dir = %dir.display(), pins = n, "removed the previous pin layout");
        }
        Ok(XdpBackend {
            maps,
            _ebpf: ebpf,
            pins,
            attachments,
            mode: cfg.mode,
            load_time,
            migrated,
            last_sweep: None,
        })
    }

    /// Puts back what another process removed from the pin directory: a map whose
    /// pin vanished is pinned again (the agent still holds it, so no ban is lost),
    /// and an interface whose link pin vanished (which detached the program) is
    /// attached again. The directories are re-checked first, so a pin directory
    /// that became unsafe is reported rather than trusted. Returns the pins put
    /// back; each is logged as a warning, since only root can remove them.
    pub(crate) fn restore_pins(&mut self) -> Result<Vec<PathBuf>, XdpError> {
        self.pins.prepare()?;
        let mut restored = Vec::new();
        let prog = program_mut(&mut self._ebpf)?;
        let info = prog.info().map_err(|source| XdpError::Program {
            action: "inspect",
            source: Box::new(source),
        })?;
        let ids = info
            .map_ids()
            .map_err(|source| XdpError::Program {
                action: "list the maps of",
                source: Box::new(source),
            })?
            .unwrap_or_default();
        for id in ids {
            let restore_err = |source: aya::maps::MapError| XdpError::RestorePin {
                path: self.pins.maps_dir(),
                source: Box::new(source),
            };
            let data = aya::maps::MapData::from_id(id).map_err(restore_err)?;
            let map_info = data.info().map_err(restore_err)?;
            let Some(name) = map_info.name_as_str().filter(|n| PINNED_MAPS.contains(n)) else {
                continue;
            };
            let path = self.pins.map(name);
            if path.exists() {
                continue;
            }
            data.pin(&path).map_err(|source| XdpError::RestorePin {
                path: path.clone(),
                source: Box::new(source),
            })?;
            tracing::warn!(pin = %path.display(), "a pinned map vanished (removed by another process?); pinned it again");
            restored.push(path);
        }
        for (name, how) in &mut self.attachments {
            let pin = self.pins.link(name);
            if pin.exists() {
                continue;
            }
            let index = attach::if_index(name)?;
            *how = attach::attach(prog, name, index, self.mode, &pin)?;
            tracing::warn!(interface = %name, pin = %pin.display(), attachment = ?how,
                "the pinned XDP link vanished (removed by another process?), which detached \
                 the program; attached it again");
            restored.push(pin);
        }
        Ok(restored)
    }

    /// How each configured interface got attached.
    pub fn attachments(&self) -> &[(String, Attachment)] {
        &self.attachments
    }

    /// How long loading (parsing, map creation and the verifier) took.
    pub fn load_time(&self) -> Duration {
        self.load_time
    }

    /// What this start carried over from an older pin layout, if it found one.
    pub fn migrated(&self) -> Option<Migrated> {
        self.migrated
    }

    /// Entries in the IPv4 and IPv6 prefix tries, as the program sees them.
    pub fn cidr_counts(&self) -> [u32; 2] {
        self.maps.cidr_counts()
    }

    /// Runs the loaded program once per `repeat` on `frame` (an Ethernet frame) with the
    /// live maps, through `BPF_PROG_TEST_RUN`, without any interface. For tests of
    /// frame shapes no local interface can produce (VLAN stacks, truncated headers)
    /// and for measuring the per-packet cost. Drops it decides are counted as usual.
    pub fn test_run(&self, frame: &[u8], repeat: u32) -> Result<TestVerdict, XdpError> {
        let prog: &Xdp = self
            ._ebpf
            .program(PROGRAM)
            .ok_or(XdpError::ObjectMissing {
                what: "program",
                name: PROGRAM,
            })?
            .try_into()
            .map_err(|source: aya::programs::ProgramError| XdpError::Program {
                action: "find",
                source: Box::new(source),
            })?;
        let mut opts = TestRunOptions::new();
        opts.data_in = Some(frame);
        opts.repeat = repeat.max(1);
        let res = prog.test_run(opts).map_err(|source| XdpError::Program {
            action: "test-run",
            source: Box::new(source),
        })?;
        Ok(TestVerdict {
            action: match res.return_value {
                XDP_DROP => Verdict::Drop,
                XDP_PASS => Verdict::Pass,
                other => Verdict::Other(other),
            },
            per_run: res.duration,
        })
    }

    /// Detaches the program from every interface and deletes every pin under
    /// `pin_dir` (links, maps of every layout version), then the directories if they
    /// are empty. Drop any open [`XdpBackend`] on the same directory first: its open
    /// descriptors would keep the program alive. Returns how many pins went.
    pub fn detach_and_unpin(pin_dir: &Path) -> Result<usize, XdpError> {
        let pins = PinLayout::new(pin_dir);
        let mut removed = 0;
        let mut dirs = vec![pins.links_dir()];
        for entry in read_dir(pin_dir)? {
            let is_maps = entry
                .file_name()
                .to_str()
                .is_some_and(|n| n.starts_with("maps-v"));
            if is_maps {
                dirs.push(entry.path());
            }
        }
        for dir in &dirs {
            for entry in read_dir(dir)? {
                attach::remove_pin(&entry.path())?;
                removed += 1;
            }
            remove_empty_dir(dir)?;
        }
        remove_empty_dir(pin_dir)?;
        Ok(removed)
    }

    /// Detaches the program from `interface` by removing its pinned link under
    /// `pin_dir` (reload, when an interface left the config). Drop any open
    /// [`XdpBackend`] attached to it first: its descriptor would keep the link.
    /// Returns whether a pin was there.
    pub(crate) fn detach_interface(pin_dir: &Path, interface: &str) -> Result<bool, XdpError> {
        let pin = PinLayout::new(pin_dir).link(interface);
        let existed = pin.exists();
        attach::remove_pin(&pin)?;
        Ok(existed)
    }

    fn apply_one(
        &mut self,
        decision: &Decision,
        now: SystemTime,
        kernel_ns: u64,
    ) -> Result<(), XdpError> {
        match decision {
            Decision::Ban(ban) => {
                let expires_ns = deadline::to_kernel_ns(ban.until, now, kernel_ns);
                self.maps.put(Slot::of(&ban.target), expires_ns)
            }
            Decision::Unban(ban) => self.maps.remove(&Slot::of(&ban.target)).map(|_| ()),
        }
    }
}

/// Entries of a directory; a missing directory has none.
fn read_dir(dir: &Path) -> Result<Vec<fs::DirEntry>, XdpError> {
    let list_err = |source| XdpError::PinDir {
        action: "list",
        path: dir.to_path_buf(),
        source,
    };
    match fs::read_dir(dir) {
        Ok(rd) => rd.collect::<Result<Vec<_>, _>>().map_err(list_err),
        Err(e) if is_not_found(&e) => Ok(Vec::new()),
        Err(e) => Err(list_err(e)),
    }
}

/// Removes a directory if it exists and is empty; leaves anything else alone.
fn remove_empty_dir(dir: &Path) -> Result<(), XdpError> {
    match fs::remove_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if is_not_found(&e) || e.raw_os_error() == Some(libc::ENOTEMPTY) => Ok(()),
        Err(source) => Err(XdpError::PinDir {
            action: "remove",
            path: dir.to_path_buf(),
            source,
        }),
    }
}

/// The capacities to create the maps with. A map already pinned keeps its size: the
/// kernel cannot resize a map, and replacing it would drop its bans. A config change
/// of `max_bans` therefore takes effect after `log2drop flush` (and says so).
fn effective_sizes(pins: &PinLayout, cfg: &XdpConfig) -> Result<MapSizes, XdpError> {
    let wanted = [
        (MAP_BAN_V4, cfg.max_bans),
        (MAP_BAN_V6, cfg.max_bans),
        (MAP_CIDR_V4, cfg.max_cidr_bans),
        (MAP_CIDR_V6, cfg.max_cidr_bans),
        // Both tries' bans.
        (MAP_CIDR_DROPS, cfg.max_cidr_bans.saturating_mul(2)),
        (MAP_CIDR_COUNT, 2),
    ];
    let mut sizes = Vec::with_capacity(wanted.len());
    for (name, want) in wanted {
        let path = pins.map(name);
        let have = if path.exists() {
            let info = MapInfo::from_pin(&path).map_err(|source| XdpError::PinnedMapInfo {
                path: path.clone(),
                source: Box::new(source),
            })?;
            Some(info.max_entries())
        } else {
            None
        };
        let size = match have {
            Some(have) if have != want => {
                tracing::warn!(
                    map = name,
                    pinned = have,
                    configured = want,
                    pin = %path.display(),
                    "pinned map keeps its size; the new size applies after `log2drop flush`"
                );
                have
            }
            _ => want,
        };
        sizes.push((name, size));
    }
    Ok(MapSizes(sizes))
}

/// What the kernel should hold for `active` at `now`: one deadline per target, the
/// latest one when several bans cover the same target (0, permanent, wins).
fn desired(active: &[Ban], now: SystemTime, kernel_ns: u64) -> HashMap<Slot, u64> {
    let mut out: HashMap<Slot, u64> = HashMap::with_capacity(active.len());
    for ban in active {
        if ban.until.is_some_and(|u| u <= now) {
            continue;
        }
        let ns = deadline::to_kernel_ns(ban.until, now, kernel_ns);
        out.entry(Slot::of(&ban.target))
            .and_modify(|cur| {
                if *cur != 0 && (ns == 0 || ns > *cur) {
                    *cur = ns;
                }
            })
            .or_insert(ns);
    }
    out
}

impl BackendConfig for XdpConfig {
    fn check(&self, at: &KeyPath) -> Vec<(KeyPath, String)> {
        self.problems(at)
    }

    fn open(&self) -> Result<Box<dyn Backend>, BackendError> {
        Ok(Box::new(XdpBackend::open(self)?))
    }

    fn flush(&self) -> Result<usize, BackendError> {
        Ok(XdpBackend::detach_and_unpin(&self.pin_dir)?)
    }

    /// A new pin directory cannot attach while the old one holds the interfaces,
    /// so its kernel state goes first; any other change reopens in place.
    fn change_to(&self, new: &Self) -> Change {
        if self == new {
            Change::Keep
        } else if self.pin_dir != new.pin_dir {
            Change::Replace
        } else {
            Change::Reopen
        }
    }

    /// Detaches the program from interfaces that left the config (their pinned
    /// links would keep it attached).
    fn release(&self, new: &Self) {
        if self.pin_dir != new.pin_dir {
            return;
        }
        for iface in self
            .interfaces
            .iter()
            .filter(|i| !new.interfaces.contains(i))
        {
            match XdpBackend::detach_interface(&self.pin_dir, iface) {
                Ok(_) => {
                    tracing::info!(interface = %iface, "XDP program detached (interface left the config)")
                }
                Err(e) => {
                    tracing::warn!(interface = %iface, error = %attach::error_chain(&e), "cannot detach the XDP program")
                }
            }
        }
    }
}

impl Backend for XdpBackend {
    /// Applies every decision even if one fails (a full map must not block unbans),
    /// then reports the first failure.
    fn apply(&mut self, batch: &[Decision], now: SystemTime) -> Result<(), BackendError> {
        let kernel_ns = deadline::kernel_now_ns()?;
        let mut first = None;
        let mut failed = 0usize;
        for d in batch {
            if let Err(e) = self.apply_one(d, now, kernel_ns) {
                failed += 1;
                if first.is_none() {
                    first = Some(e);
                } else {
                    tracing::warn!(error = %attach::error_chain(&e), "XDP map update failed");
                }
            }
        }
        match first {
            None => Ok(()),
            Some(e) => {
                if failed > 1 {
                    tracing::warn!(
                        failed,
                        total = batch.len(),
                        "several XDP map updates failed"
                    );
                }
                Err(e.into())
            }
        }
    }

    fn reconcile(
        &mut self,
        active: &[Ban],
        now: SystemTime,
    ) -> Result<ReconcileReport, BackendError> {
        let kernel_ns = deadline::kernel_now_ns()?;
        let mut want = desired(active, now, kernel_ns);
        let mut report = ReconcileReport::default();
        for (slot, stored) in self.maps.entries()? {
            match want.remove(&slot) {
                None => {
                    self.maps.remove(&slot)?;
                    report.removed += 1;
                }
                Some(ns) if deadline::same(stored, ns) => report.kept += 1,
                Some(ns) => {
                    // A wrong deadline is rewritten in place: no gap in enforcement.
                    self.maps.put(slot, ns)?;
                    report.updated += 1;
                }
            }
        }
        let mut missing: Vec<_> = want.into_iter().collect();
        missing.sort_unstable();
        for (slot, ns) in missing {
            self.maps.put(slot, ns)?;
            report.added += 1;
        }
        self.maps.recount()?;
        Ok(report)
    }

    /// Expiry is judged by the kernel's monotonic clock, as the program judges it, so
    /// `now` is not needed here. The walk runs at most every [`SWEEP_EVERY`]; pins
    /// are checked on every call.
    fn gc(&mut self, _now: SystemTime) -> Result<usize, BackendError> {
        // The periodic pass is also where a vanished pin is noticed and put back.
        self.restore_pins()?;
        if self.last_sweep.is_some_and(|t| t.elapsed() < SWEEP_EVERY) {
            return Ok(0);
        }
        self.last_sweep = Some(Instant::now());
        let kernel_ns = deadline::kernel_now_ns()?;
        let mut removed = 0;
        for (slot, stored) in self.maps.entries()? {
            if deadline::expired(stored, kernel_ns) && self.maps.remove(&slot)? {
                removed += 1;
            }
        }
        Ok(removed)
    }

    fn counters(&self) -> Result<Vec<(IpNet, DropCounts)>, BackendError> {
        let mut out: Vec<_> = self
            .maps
            .counters()?
            .into_iter()
            .map(|(slot, c)| (slot.net(), c))
            .collect();
        out.sort_unstable_by_key(|(net, _)| *net);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use crate::engine::Origin;

    fn wall(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn ban(target: &str, until: Option<u64>) -> Ban {
        Ban {
            target: target.parse().expect("test literal"),
            jail: Arc::from("ssh"),
            since: wall(0),
            until: until.map(wall),
            origin: Origin::Jail,
            reason: None,
            forced: false,
            node: None,
        }
    }

    const KERNEL: u64 = 7_000_000_000;

    #[test]
    fn desired_skips_expired_and_routes_each_target() {
        let now = wall(100);
        let want = desired(
            &[
                ban("198.51.100.7/32", Some(160)),
                ban("203.0.113.0/24", None),
                ban("192.0.2.1/32", Some(100)),
            ],
            now,
            KERNEL,
        );
        assert_eq!(want.len(), 2);
        assert_eq!(want[&Slot::V4([198, 51, 100, 7])], KERNEL + 60_000_000_000);
        let cidr = Slot::of(&"203.0.113.0/24".parse().expect("lit"));
        assert_eq!(want[&cidr], 0);
    }

    #[test]
    fn desired_keeps_the_longest_of_overlapping_bans() {
        let now = wall(100);
        let want = desired(
            &[
                ban("198.51.100.7/32", Some(130)),
                ban("198.51.100.7/32", Some(200)),
            ],
            now,
            KERNEL,
        );
        assert_eq!(want[&Slot::V4([198, 51, 100, 7])], KERNEL + 100_000_000_000);
        let want = desired(
            &[
                ban("198.51.100.7/32", None),
                ban("198.51.100.7/32", Some(200)),
            ],
            now,
            KERNEL,
        );
        assert_eq!(want[&Slot::V4([198, 51, 100, 7])], 0, "permanent wins");
    }

    #[test]
    fn removing_pins_of_a_missing_dir_is_a_no_op() {
        let dir = tempfile::tempdir().expect("tempdir");
        let gone = dir.path().join("nothing-here");
        assert_eq!(XdpBackend::detach_and_unpin(&gone).expect("no-op"), 0);
    }

    #[test]
    fn unpin_removes_known_layout_only() {
        // Plain files stand in for pins: removal is the same unlink.
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("pins");
        let layout = PinLayout::new(&root);
        fs::create_dir_all(layout.maps_dir()).expect("mkdir");
        fs::create_dir_all(layout.links_dir()).expect("mkdir");
        fs::write(layout.map(MAP_BAN_V4), b"").expect("write");
        fs::write(layout.link("veth0"), b"").expect("write");
        fs::write(root.join("keep-me"), b"").expect("write");
        assert_eq!(XdpBackend::detach_and_unpin(&root).expect("unpin"), 2);
        assert!(!layout.maps_dir().exists());
        assert!(!layout.links_dir().exists());
        assert!(root.join("keep-me").exists(), "unknown files stay");
    }
}
