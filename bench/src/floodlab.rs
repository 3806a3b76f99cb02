//! A flood on a veth, measured at the receiver. The sender is the project's own
//! `log2drop-flood` XDP program run through `BPF_PROG_RUN` in live-frames mode in
//! the attacker namespace: each frame gets the next source address from a list and
//! is redirected out of the attacker's veth end, many millions of frames a second
//! from one CPU (trafgen over AF_PACKET reaches about 1 Mpps here, and its skbs hide
//! most of XDP's advantage).
//!
//! The receiving veth end runs its NAPI poll in a kernel thread (`threaded` NAPI,
//! GRO on so the veth uses NAPI even without XDP), pinned to the CPU the sender does
//! not use. Whatever filter is installed on the receiver runs in that thread, so its
//! CPU time (`/proc/<pid>/schedstat`) divided by the frames it took off the ring is
//! the cost per packet, and its inverse the packets one core can drop per second.
//! The frames it took are the receiving end's `rx_queue_N_xdp_packets` (`ethtool
//! -S`). Frames the sender offers beyond that are refused at the ring and never
//! counted, so a receiver that other work keeps off its CPU still gets a fair
//! per-packet figure.
//!
//! Some kernels refuse live frames before running anything (this project's 6.18
//! VMs: EPERM for the sender program, EINVAL for a bare `XDP_PASS` one, whatever the
//! batch size, namespace or capabilities); the sender then relays through a second
//! veth pair (see [`SenderKind::Relay`]), so the receiver still gets XDP frames.
//!
//! The sender syscall runs until a signal interrupts it; the bench keeps signalling
//! until the thread reports back, so a signal that lands before the syscall starts
//! cannot leave it running. The frame count per call is bounded as well.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::unix::thread::JoinHandleExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use aya::Ebpf;
use aya::maps::{Array, MapData};
use aya::programs::{TestRun, TestRunAttrs, TestRunOptions, Xdp};
use nix::sched::{CpuSet, sched_setaffinity};
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
use nix::unistd::Pid;

use log2drop_tests::{NetNs, VethPair};

use crate::cpu::Pinned;
use crate::frames;
use crate::proc;

/// The sender's program name inside the object.
const PROGRAM: &str = "log2drop_flood";
/// The CPU the sender runs on; the receiver's NAPI thread gets the other one.
pub const SENDER_CPU: usize = 0;
/// The CPU the receiver's NAPI thread is pinned to.
pub const RECEIVER_CPU: usize = 1;
/// The receiver's address (its veth end), a documentation address.
pub const RECEIVER_V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// The IPv6 floods' destination (the frames reach the receiver by MAC; nothing
/// listens there).
pub const RECEIVER_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, 1);
/// Upper bound of frames per sender call (about 10 s at the fastest rates seen).
const MAX_FRAMES: u32 = 200_000_000;
/// Most sources one flood cycles through (the sender's `FLOOD_SOURCES` size).
pub const MAX_SOURCES: usize = 65_536;
/// Frames per live-frames batch.
const BATCH: u32 = 64;
/// How long the flood runs before the measurement window opens.
const WARMUP: Duration = Duration::from_millis(100);

/// A sender namespace, a receiver namespace and the veth between them.
pub struct FloodLab {
    veth: VethPair,
    /// The relay's veth pair inside the sender namespace (see [`SenderKind::Relay`]).
    relay: VethPair,
    rx: NetNs,
    tx: NetNs,
    object: Vec<u8>,
    dst_mac: [u8; 6],
    /// The errno the kernel refused live frames with, once it has, so later floods
    /// go straight to the fallback sender.
    live_refused: std::cell::Cell<Option<i32>>,
}

/// What one flood measured at the receiver.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Frames the receiver took off the ring per second of its CPU time.
    pub per_core_pps: f64,
    /// Share of the window the receiver's thread was on the CPU (1.0 = saturated).
    pub busy: f64,
    /// Which sender produced the flood.
    pub sender: SenderKind,
}

/// How the frames were sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SenderKind {
    /// The XDP sender program in live-frames mode: frames arrive as XDP frames, at
    /// rates that saturate the receiver.
    LiveFrames,
    /// The fallback where the kernel refuses live frames (on some kernels even for
    /// a program that only returns `XDP_PASS`): an `AF_PACKET` socket
    /// writes the template frame into a second veth pair inside the sender
    /// namespace, whose far end runs the same sender program natively; it rewrites
    /// the source and redirects the frame to the attacker veth. The receiver still
    /// gets XDP frames (not skbs), as with live frames, so its per-packet cost is
    /// the same; only the rate is lower (the relay runs on the sender CPU).
    Relay {
        /// The errno the kernel refused live frames with.
        refused: i32,
    },
}

impl Sample {
    /// Receiver CPU time per frame, in nanoseconds.
    pub fn ns_per_packet(&self) -> f64 {
        1e9 / self.per_core_pps
    }
}

/// The source addresses a flood cycles through, one family per flood.
#[derive(Debug, Clone)]
pub enum Sources {
    /// 60-byte Ethernet + IPv4 + UDP frames.
    V4(Vec<Ipv4Addr>),
    /// 80-byte Ethernet + IPv6 + UDP frames.
    V6(Vec<Ipv6Addr>),
}

impl Sources {
    /// How many distinct addresses the flood cycles through.
    pub fn len(&self) -> usize {
        match self {
            Sources::V4(v) => v.len(),
            Sources::V6(v) => v.len(),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl FloodLab {
    /// Builds the namespaces and veth and prepares the receiver's NAPI thread.
    pub fn new(object_path: &Path) -> Result<FloodLab> {
        let object = std::fs::read(object_path)
            .with_context(|| format!("reading the flood sender {}", object_path.display()))?;
        install_signal_handler()?;
        let tx = NetNs::new();
        let rx = NetNs::new();
        let veth = VethPair::new(&tx, &[], &rx, &[(RECEIVER_V4.into(), 24)]);
        let relay = VethPair::new(&tx, &[], &tx, &[]);
        let dst_mac = frames::parse_mac(&veth.b().mac)
            .with_context(|| format!("veth MAC {:?} does not parse", veth.b().mac))?;
        let lab = FloodLab {
            veth,
            relay,
            rx,
            tx,
            object,
            dst_mac,
            live_refused: std::cell::Cell::new(None),
        };
        let ifname = lab.rx_if().to_owned();
        proc::run(&lab.rx.command(&["ethtool", "-K", &ifname, "gro", "on"]))?;
        // The fallback sender's skbs reach the receiver's NAPI (rather than the
        // sender CPU's backlog) only when veth finds them eligible for GRO: no TSO
        // on the sending end, or UDP GRO forwarding on the receiving one.
        let tx_if = lab.veth.a().ifname.clone();
        proc::run(
            &lab.rx
                .command(&["ethtool", "-K", &ifname, "rx-udp-gro-forwarding", "on"]),
        )?;
        proc::run(&lab.tx.command(&["ethtool", "-K", &tx_if, "tso", "off"]))?;
        let relay_in = lab.relay.a().ifname.clone();
        proc::run(&lab.tx.command(&["ethtool", "-K", &relay_in, "tso", "off"]))?;
        proc::run(&[
            "ip",
            "netns",
            "exec",
            lab.rx.name(),
            "sh",
            "-c",
            &format!("echo 1 > /sys/class/net/{ifname}/threaded"),
        ])?;
        Ok(lab)
    }

    /// The receiver's namespace.
    pub fn rx(&self) -> &NetNs {
        &self.rx
    }

    /// The receiving interface's name (inside [`FloodLab::rx`]).
    pub fn rx_if(&self) -> &str {
        &self.veth.b().ifname
    }

    /// Floods the receiver from `sources` (cycled) for `window` after a short warm-up.
    pub fn flood(&self, sources: &Sources, window: Duration) -> Result<Sample> {
        if sources.is_empty() {
            bail!("a flood needs at least one source");
        }
        if sources.len() > MAX_SOURCES {
            bail!(
                "a flood cycles through at most {MAX_SOURCES} sources, not {}",
                sources.len()
            );
        }
        let napi = napi_threads(self.rx_if())?;
        if napi.is_empty() {
            bail!("no NAPI thread for {} (is threaded NAPI on?)", self.rx_if());
        }
        for &pid in &napi {
            let mut set = CpuSet::new();
            set.set(RECEIVER_CPU)?;
            sched_setaffinity(Pid::from_raw(pid as i32), &set)
                .with_context(|| format!("pinning NAPI thread {pid} to CPU {RECEIVER_CPU}"))?;
        }
        let tx_if = self.veth.a().ifname.clone();
        let frame = match sources {
            Sources::V4(a) => frames::udp_v4(self.dst_mac, a[0], RECEIVER_V4),
            Sources::V6(a) => frames::udp_v6(self.dst_mac, a[0], RECEIVER_V6),
        };
        let relay = (self.relay.a().ifname.clone(), self.relay.b().ifname.clone());
        let sources = sources.clone();
        let object = self.object.clone();
        let tx_path = self.tx.path().to_path_buf();
        let done = Arc::new(AtomicBool::new(false));
        let started = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let (d, s, st) = (done.clone(), started.clone(), stop.clone());
        let refused = self.live_refused.get();
        let sender = std::thread::Builder::new()
            .name("flood-sender".into())
            .spawn(move || -> Result<SenderKind> {
                let r = send(
                    &object, &tx_path, &tx_if, &relay, &frame, &sources, refused, &s, &st,
                );
                d.store(true, Ordering::Release);
                r
            })
            .context("starting the sender thread")?;

        let t_start = Instant::now();
        while !started.load(Ordering::Acquire) && !done.load(Ordering::Acquire) {
            if t_start.elapsed() > Duration::from_secs(10) {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(WARMUP);
        let before = (self.accepted()?, cpu_ns(&napi)?, Instant::now());
        std::thread::sleep(window);
        let after = (self.accepted()?, cpu_ns(&napi)?, Instant::now());

        // Stop the sender: signal until it has returned.
        stop.store(true, Ordering::Release);
        let tid = sender.as_pthread_t();
        while !done.load(Ordering::Acquire) {
            // SAFETY: the thread is still running (it sets `done` as its last act
            // before returning, and is joined only below), so its pthread_t is valid.
            unsafe {
                libc::pthread_kill(tid, libc::SIGUSR1);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let kind = match sender.join() {
            Ok(r) => r?,
            Err(_) => bail!("the sender thread panicked"),
        };
        if let SenderKind::Relay { refused } = kind {
            self.live_refused.set(Some(refused));
        }

        let frames = after.0.saturating_sub(before.0) as f64;
        let cpu = after.1.saturating_sub(before.1) as f64 / 1e9;
        let wall = (after.2 - before.2).as_secs_f64();
        if frames == 0.0 {
            bail!("the receiver took no frames during the window");
        }
        Ok(Sample {
            per_core_pps: frames / cpu.max(1e-9),
            busy: cpu / wall,
            sender: kind,
        })
    }

    /// Frames an XDP program on the receiving end dropped so far
    /// (`rx_queue_N_xdp_drops`), whoever counts them.
    pub fn xdp_drops(&self) -> Result<u64> {
        let out = proc::run(&self.rx.command(&["ethtool", "-S", self.rx_if()]))?;
        Ok(sum_stat(&out, "_xdp_drops"))
    }

    /// Frames the receiving end's NAPI took off its ring so far, whatever happened
    /// to them next (`rx_queue_N_xdp_packets`: the redirected frames arrive on the
    /// veth's XDP ring whether or not a program is attached).
    fn accepted(&self) -> Result<u64> {
        let out = proc::run(&self.rx.command(&["ethtool", "-S", self.rx_if()]))?;
        Ok(sum_stat(&out, "_xdp_packets"))
    }
}

/// Sum of the `ethtool -S` counters whose name ends with `suffix`.
fn sum_stat(ethtool_s: &str, suffix: &str) -> u64 {
    ethtool_s
        .lines()
        .filter_map(|l| l.trim().split_once(':'))
        .filter(|(k, _)| k.trim().ends_with(suffix))
        .filter_map(|(_, v)| v.trim().parse::<u64>().ok())
        .sum()
}

/// The sender thread: enter the attacker namespace, pin to the sender CPU, load the
/// sender program with its sources, then run it in live-frames mode, or through
/// the relay where the kernel refuses live frames (or an earlier flood found it
/// did: `refused`).
#[allow(clippy::too_many_arguments)]
fn send(
    object: &[u8],
    tx_ns: &Path,
    tx_if: &str,
    relay: &(String, String),
    frame: &[u8],
    sources: &Sources,
    refused: Option<i32>,
    started: &AtomicBool,
    stop: &AtomicBool,
) -> Result<SenderKind> {
    let ns = std::fs::File::open(tx_ns).with_context(|| format!("opening {}", tx_ns.display()))?;
    // This thread ends after the flood, so it never needs to move back.
    nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)
        .context("entering the sender namespace")?;
    let _pinned = Pinned::to(SENDER_CPU);
    let ifindex = nix::net::if_::if_nametoindex(tx_if)
        .with_context(|| format!("no interface {tx_if} in the sender namespace"))?;
    let mut ebpf = load_sender(object, ifindex, sources)?;
    let prog: &mut Xdp = ebpf
        .program_mut(PROGRAM)
        .context("program missing from the flood object")?
        .try_into()?;
    let refused = match refused {
        Some(errno) => errno,
        None => {
            let mut opts = TestRunOptions::new();
            opts.data_in = Some(frame);
            opts.repeat = MAX_FRAMES;
            opts.attrs = TestRunAttrs::new().xdp_live_frames(BATCH);
            started.store(true, Ordering::Release);
            match prog.test_run(opts) {
                Ok(_) => return Ok(SenderKind::LiveFrames),
                Err(e) if os_errno(&e) == Some(libc::EINTR) => return Ok(SenderKind::LiveFrames),
                Err(e) => live_refusal(prog, frame, e)?,
            }
        }
    };
    let (relay_in, relay_out) = relay;
    let link = prog
        .attach(relay_out, aya::programs::XdpMode::Driver)
        .with_context(|| format!("attaching the flood sender to the relay {relay_out}"))?;
    let relay_index = nix::net::if_::if_nametoindex(relay_in.as_str())
        .with_context(|| format!("no relay interface {relay_in}"))?;
    let sent = send_af_packet(relay_index, frame, started, stop);
    prog.detach(link)
        .context("detaching the flood sender from the relay")?;
    sent?;
    Ok(SenderKind::Relay { refused })
}

/// The errno of `live`, the live-frames run's error, if it is the kernel refusing
/// live frames rather than a fault of the bench: the same program and frame run
/// once without the live-frames flag must then succeed. Otherwise the error.
fn live_refusal(prog: &Xdp, frame: &[u8], live: aya::programs::ProgramError) -> Result<i32> {
    let Some(errno) = os_errno(&live) else {
        return Err(live).context("running the flood sender (BPF_PROG_RUN, live frames)");
    };
    let mut plain = TestRunOptions::new();
    plain.data_in = Some(frame);
    match prog.test_run(plain) {
        Ok(_) => Ok(errno),
        Err(e) => Err(e).with_context(|| {
            format!(
                "running the flood sender: live frames failed ({live}) and so did one \
                 plain BPF_PROG_RUN of the same frame"
            )
        }),
    }
}

/// The OS error number in `e` or one of its sources.
fn os_errno(e: &(dyn std::error::Error + 'static)) -> Option<i32> {
    let mut cur = Some(e);
    while let Some(c) = cur {
        if let Some(io) = c.downcast_ref::<std::io::Error>()
            && let Some(n) = io.raw_os_error()
        {
            return Some(n);
        }
        if let Some(sys) = c.downcast_ref::<aya::sys::SyscallError>()
            && let Some(n) = sys.io_error.raw_os_error()
        {
            return Some(n);
        }
        cur = c.source();
    }
    None
}

/// The sender program, loaded, with its configuration and sources filled in.
fn load_sender(object: &[u8], ifindex: u32, sources: &Sources) -> Result<Ebpf> {
    let mut ebpf = Ebpf::load(object).context("loading the flood sender object")?;
    {
        let mut conf: Array<&mut MapData, u32> = Array::try_from(
            ebpf.map_mut("FLOOD_CONF")
                .context("FLOOD_CONF missing from the flood object")?,
        )?;
        conf.set(0, sources.len() as u32, 0)?;
        conf.set(1, ifindex, 0)?;
    }
    match sources {
        Sources::V4(addrs) => {
            let mut srcs: Array<&mut MapData, [u8; 4]> = Array::try_from(
                ebpf.map_mut("FLOOD_SOURCES")
                    .context("FLOOD_SOURCES missing from the flood object")?,
            )?;
            for (i, a) in addrs.iter().enumerate() {
                srcs.set(i as u32, a.octets(), 0)?;
            }
        }
        Sources::V6(addrs) => {
            let mut srcs: Array<&mut MapData, [u8; 16]> = Array::try_from(
                ebpf.map_mut("FLOOD_SOURCES6")
                    .context("FLOOD_SOURCES6 missing from the flood object (rebuild it)")?,
            )?;
            for (i, a) in addrs.iter().enumerate() {
                srcs.set(i as u32, a.octets(), 0)?;
            }
        }
    }
    let prog: &mut Xdp = ebpf
        .program_mut(PROGRAM)
        .context("program missing from the flood object")?
        .try_into()?;
    prog.load().context("verifying the flood sender")?;
    Ok(ebpf)
}

/// The relay's input: `sendmmsg` batches of the template frame on a raw
/// `AF_PACKET` socket bound to the relay veth, bypassing the qdisc, until `stop`. A
/// full veth ring refuses frames (ENOBUFS); they never reach the receiver.
fn send_af_packet(
    ifindex: u32,
    frame: &[u8],
    started: &AtomicBool,
    stop: &AtomicBool,
) -> Result<()> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    // SAFETY: plain socket(2); the descriptor is owned right below.
    let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(std::io::Error::last_os_error()).context("creating an AF_PACKET socket");
    }
    // SAFETY: `raw` is a fresh descriptor nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let one: libc::c_int = 1;
    // SAFETY: the option value is a live c_int of the size passed.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_QDISC_BYPASS,
            (&raw const one).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error()).context("PACKET_QDISC_BYPASS");
    }
    // SAFETY: all-zero is a valid sockaddr_ll; the fields that matter are set below.
    let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    addr.sll_family = libc::AF_PACKET as u16;
    addr.sll_ifindex = ifindex as i32;
    // SAFETY: `addr` is a valid sockaddr_ll of the size passed.
    let r = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&raw const addr).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error()).context("binding the AF_PACKET socket");
    }
    const N: usize = 64;
    let mut iov = libc::iovec {
        iov_base: frame.as_ptr() as *mut libc::c_void,
        iov_len: frame.len(),
    };
    started.store(true, Ordering::Release);
    while !stop.load(Ordering::Acquire) {
        // SAFETY: all-zero mmsghdrs are valid; each gets the one iovec below.
        let mut msgs: [libc::mmsghdr; N] = unsafe { std::mem::zeroed() };
        for m in msgs.iter_mut() {
            m.msg_hdr.msg_iov = &raw mut iov;
            m.msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: every mmsghdr points at one live iovec over a live frame.
        let r = unsafe { libc::sendmmsg(fd.as_raw_fd(), msgs.as_mut_ptr(), N as u32, 0) };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::ENOBUFS | libc::EAGAIN | libc::EINTR) => continue,
                _ => return Err(e).context("sending on the AF_PACKET socket"),
            }
        }
    }
    Ok(())
}

extern "C" fn on_sigusr1(_: libc::c_int) {}

/// SIGUSR1 interrupts the sender's syscall; without SA_RESTART it returns EINTR.
fn install_signal_handler() -> Result<()> {
    let action = SigAction::new(
        SigHandler::Handler(on_sigusr1),
        SaFlags::empty(),
        SigSet::empty(),
    );
    // SAFETY: the handler does nothing, so it is async-signal-safe.
    unsafe { sigaction(Signal::SIGUSR1, &action) }.context("installing a SIGUSR1 handler")?;
    Ok(())
}

/// Kernel threads running `ifname`'s NAPI (`napi/<ifname>-<id>`, cut to 15 bytes).
fn napi_threads(ifname: &str) -> Result<Vec<u32>> {
    let prefix: String = format!("napi/{ifname}-").chars().take(15).collect();
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").context("listing /proc")? {
        let Ok(entry) = entry else { continue };
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(comm) = std::fs::read_to_string(format!("/proc/{pid}/comm")) else {
            continue;
        };
        if comm.trim_end().starts_with(&prefix) {
            out.push(pid);
        }
    }
    Ok(out)
}

/// Nanoseconds the threads have run on a CPU (first field of schedstat).
fn cpu_ns(pids: &[u32]) -> Result<u64> {
    let mut total = 0;
    for pid in pids {
        let path = format!("/proc/{pid}/schedstat");
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        total += text
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<u64>().ok())
            .with_context(|| format!("{path} does not start with a number"))?;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ethtool_counters_sum_over_queues() {
        let out = "NIC statistics:\n     peer_ifindex: 2\n     rx_queue_0_xdp_packets: 53392\n     \
                   rx_queue_1_xdp_packets: 8\n     rx_queue_0_xdp_drops: 5\n     \
                   tx_queue_0_xdp_xmit: 0\n";
        assert_eq!(sum_stat(out, "_xdp_packets"), 53400);
        assert_eq!(sum_stat(out, "_xdp_drops"), 5);
        assert_eq!(sum_stat(out, "_nothing"), 0);
    }
}
