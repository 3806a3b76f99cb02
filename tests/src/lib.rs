//! Test harness for log2drop's privileged end-to-end tests: throwaway network
//! namespaces, veth pairs, bpffs pin directories and a running agent, each an RAII
//! type that removes what it created when it is dropped, also when the test panics.
//!
//! The tests need root (or CAP_SYS_ADMIN + CAP_NET_ADMIN + CAP_BPF): every test starts
//! with [`require_root`], which skips with a message outside CI and fails under
//! `CI=true`, so CI can never pass by skipping. Run them one at a time
//! (`--test-threads=1`): [`NetNs::enter`] moves the calling thread between
//! namespaces, and the tests share the machine's bpffs mount.
//!
//! Traffic stays inside the namespaces a test created and uses documentation
//! addresses only (see [`veth`]).

pub mod agent;
pub mod bpffs;
pub mod cmd;
pub mod counters;
pub mod kobjects;
pub mod lab;
pub mod netns;
pub mod privilege;
pub mod probe;
pub mod unprivileged;
pub mod veth;

pub use agent::{Agent, AgentDir, JailSpec};
pub use bpffs::PinDir;
pub use counters::{Drops, ban_entry, drops_for, exact_bans, plant_exact_ban, try_exact_entries};
pub use kobjects::KernelObjects;
pub use lab::{AgentLab, WireLab};
pub use netns::{NetNs, NetNsGuard};
pub use privilege::require_root;
pub use probe::{ping, ping_with_timeout, wait_until};
pub use veth::VethPair;
