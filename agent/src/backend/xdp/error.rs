//! Errors of the XDP backend. Each variant names what it was working on (interface,
//! map, pin path) so a failure at start-up reads as an instruction, not a puzzle.

use std::io;
use std::path::PathBuf;

/// Errors of the XDP backend.
#[derive(Debug, thiserror::Error)]
pub enum XdpError {
    /// `[backends.xdp] interfaces` is empty.
    #[error("no interface to attach the XDP program to: set [backends.xdp] interfaces")]
    NoInterfaces,

    /// A map capacity of zero: the kernel refuses such maps, and it bans nothing.
    #[error("[backends.xdp] {key} must be at least 1")]
    ZeroCapacity {
        /// The config key.
        key: &'static str,
    },

    /// An interface in the config does not exist (or its name is not valid).
    #[error("interface `{interface}` does not exist")]
    UnknownInterface {
        /// The configured name.
        interface: String,
        /// Why the lookup failed.
        #[source]
        source: nix::Error,
    },

    /// The pin directory is not on a bpffs and we may not mount one for it.
    #[error(
        "pin directory {} is not on a bpf filesystem; mount one (mount -t bpf bpf /sys/fs/bpf) \
         or set [backends.xdp] pin_dir under /sys/fs/bpf",
        pin_dir.display()
    )]
    BpffsNotMounted {
        /// The configured pin directory.
        pin_dir: PathBuf,
    },

    /// Mounting bpffs failed.
    #[error("cannot mount bpffs at {}", path.display())]
    MountBpffs {
        /// Where the mount was attempted.
        path: PathBuf,
        /// The mount(2) error.
        #[source]
        source: nix::Error,
    },

    /// Checking what filesystem a path is on failed.
    #[error("cannot statfs {}", path.display())]
    Statfs {
        /// The path checked.
        path: PathBuf,
        /// The statfs(2) error.
        #[source]
        source: nix::Error,
    },

    /// The pin directory (or a directory on its path) is not root's alone: another
    /// user who can write there could delete the pins and so disable enforcement.
    #[error("pin directory: {0}")]
    UnsafePinDir(#[from] crate::private_dir::DirError),

    /// Creating, listing or removing something under the pin directory failed.
    #[error("cannot {action} {}", path.display())]
    PinDir {
        /// What was being done (`create`, `remove`, `list`).
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },

    /// Reading a pinned map's description failed.
    #[error("cannot inspect pinned map {}", path.display())]
    PinnedMapInfo {
        /// The pin path.
        path: PathBuf,
        /// aya's error.
        #[source]
        source: Box<aya::maps::MapError>,
    },

    /// Loading the object (maps, relocations) failed.
    #[error("cannot load the XDP object (maps pinned under {})", maps_dir.display())]
    Load {
        /// Directory of the pinned maps.
        maps_dir: PathBuf,
        /// aya's error.
        #[source]
        source: Box<aya::EbpfError>,
    },

    /// The embedded object lacks something it must have: built from another source.
    #[error(
        "the embedded XDP object has no {what} `{name}`: rebuild with `cargo xtask build-ebpf`"
    )]
    ObjectMissing {
        /// `map` or `program`.
        what: &'static str,
        /// Its name.
        name: &'static str,
    },

    /// Re-pinning a map whose pin vanished failed.
    #[error("cannot restore the pin of map {path}")]
    RestorePin {
        /// The map's pin path.
        path: PathBuf,
        /// aya's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// A map in the object has another type or key/value size than the agent expects.
    #[error("map {map} does not have the expected type or layout")]
    MapLayout {
        /// The map.
        map: &'static str,
        /// aya's error.
        #[source]
        source: Box<aya::maps::MapError>,
    },

    /// The verifier rejected the program, or another program-level step failed.
    #[error("cannot {action} the XDP program")]
    Program {
        /// What was being done (`load`, ...).
        action: &'static str,
        /// aya's error (its Display includes the verifier log).
        #[source]
        source: Box<aya::programs::ProgramError>,
    },

    /// Attaching to an interface failed.
    #[error("cannot attach the XDP program to `{interface}` in {mode} mode")]
    Attach {
        /// The interface.
        interface: String,
        /// `native` or `skb`.
        mode: &'static str,
        /// aya's error.
        #[source]
        source: Box<aya::programs::ProgramError>,
    },

    /// The kernel attached through netlink instead of a BPF link, which cannot be
    /// pinned; drops would stop when the agent exits.
    #[error(
        "the kernel attached XDP to `{interface}` without a BPF link (kernel older than 5.9?); \
         log2drop needs pinnable links so drops survive a restart"
    )]
    NoBpfLink {
        /// The interface.
        interface: String,
    },

    /// Pinning a link failed.
    #[error("cannot pin the XDP link of `{interface}` at {}", path.display())]
    PinLink {
        /// The interface.
        interface: String,
        /// The pin path.
        path: PathBuf,
        /// aya's error.
        #[source]
        source: Box<aya::pin::PinError>,
    },

    /// A pinned link exists but could not be reused.
    #[error("cannot reuse the pinned XDP link of `{interface}` at {}", path.display())]
    ReuseLink {
        /// The interface.
        interface: String,
        /// The pin path.
        path: PathBuf,
        /// aya's error.
        #[source]
        source: Box<aya::programs::ProgramError>,
    },

    /// A map holds as many entries as it may.
    #[error(
        "map {map} is full ({max_entries} entries); raise [backends.xdp] max_bans or max_cidr_bans"
    )]
    MapFull {
        /// The map.
        map: &'static str,
        /// Its capacity.
        max_entries: u32,
    },

    /// A map operation failed for another reason.
    #[error("cannot {op} in map {map}")]
    Map {
        /// The map.
        map: &'static str,
        /// `insert`, `remove`, `read`.
        op: &'static str,
        /// aya's error.
        #[source]
        source: Box<aya::maps::MapError>,
    },

    /// How many CPUs the kernel keeps per-CPU values for could not be read.
    #[error("cannot read the possible CPUs from {path}")]
    PossibleCpus {
        /// The sysfs file.
        path: &'static str,
        /// The I/O error.
        #[source]
        source: io::Error,
    },

    /// Reading `CLOCK_MONOTONIC` (or, migrating old pins, `CLOCK_BOOTTIME`) failed.
    #[error("cannot read the kernel clock")]
    Clock {
        /// The clock_gettime(2) error.
        #[source]
        source: nix::Error,
    },
}
