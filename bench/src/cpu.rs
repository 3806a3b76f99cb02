//! Keeping the bench's own busy loops on one CPU so that what it measures (the agent,
//! a receiving NAPI thread) has the other one, and putting the thread back where it
//! was afterwards.

use nix::sched::{CpuSet, sched_getaffinity, sched_setaffinity};
use nix::unistd::Pid;

/// While alive, the calling thread runs on one CPU only; dropping it restores the
/// thread's previous CPU set. Best effort: a failure is reported and the figures are
/// still taken, just less steady.
pub struct Pinned {
    previous: Option<CpuSet>,
}

impl Pinned {
    /// Pins the calling thread to `cpu`.
    pub fn to(cpu: usize) -> Pinned {
        let me = Pid::from_raw(0);
        let previous = sched_getaffinity(me).ok();
        let mut set = CpuSet::new();
        let res = set.set(cpu).and_then(|()| sched_setaffinity(me, &set));
        if let Err(e) = res {
            eprintln!("    warning: cannot pin the bench thread to CPU {cpu}: {e}");
        }
        Pinned { previous }
    }
}

impl Drop for Pinned {
    fn drop(&mut self) {
        if let Some(set) = &self.previous
            && let Err(e) = sched_setaffinity(Pid::from_raw(0), set)
        {
            eprintln!("warning: cannot restore the bench thread's CPU set: {e}");
        }
    }
}
