//! Packets across the kill and the restart: from the attacker namespace, UDP
//! datagrams with the source address of banned hosts (any address, through
//! `IP_TRANSPARENT` and a `PKTINFO` source per datagram), and from an unbanned
//! control address; in the server namespace, a socket that counts what arrives.
//!
//! Each datagram carries its send time. A datagram from an address whose ban the
//! watcher had seen in force before it was sent, arriving before that ban's kernel
//! deadline (less the tolerance), went through XDP while the ban was in force: that
//! is a pass, a failure. Late reading only makes the receiver more lenient (the
//! arrival time it takes is after XDP looked at the frame), so load cannot fake one.
//! The control address proves the path works: if none of its datagrams arrive in a
//! cycle, the probe could not see a pass and the run fails.

use std::collections::BTreeMap;
use std::io::IoSlice;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::Duration;

use nix::sys::socket::{ControlMessage, MsgFlags, SockaddrIn, SockaddrIn6, sendmsg};

use crate::Shared;
use crate::ledger::{Event, Failure, Phase, TOLERANCE_NS, live, mono_ns};

/// The server's UDP port the probes go to (inside the test namespace only).
pub const PORT: u16 = 47_016;
/// Pause between rounds of probes.
const TICK: Duration = Duration::from_millis(5);
/// Banned addresses probed per round (round-robin over all in force).
const PER_TICK: usize = 16;

/// Counts by phase of the agent at the time the datagram was sent or received.
#[derive(Debug, Default, Clone)]
pub struct Counts {
    /// Datagrams sent from addresses banned in the kernel, by phase at sending.
    pub probes_sent: BTreeMap<Phase, u64>,
    /// Of those that arrived: sent before the ban was seen or arriving after its
    /// deadline, so not a pass.
    pub arrived_outside_ban: u64,
    /// Passes (failures), by phase at arrival.
    pub passed: BTreeMap<Phase, u64>,
    /// Control datagrams sent and received.
    pub control_sent: u64,
    pub control_received: u64,
    /// Control datagrams received per cycle.
    pub control_by_cycle: BTreeMap<u32, u64>,
}

/// A socket in the attacker namespace that may send from any address.
pub struct Sender {
    v4: UdpSocket,
    v6: UdpSocket,
    server_v4: SocketAddr,
    server_v6: SocketAddr,
}

impl Sender {
    /// Must be called on a thread inside the attacker namespace.
    pub fn new(server_v4: IpAddr, server_v6: IpAddr) -> std::io::Result<Sender> {
        let v4 = UdpSocket::bind("0.0.0.0:0")?;
        let v6 = UdpSocket::bind("[::]:0")?;
        set_int(&v4, libc::SOL_IP, libc::IP_TRANSPARENT, 1)?;
        set_int(&v6, libc::SOL_IPV6, libc::IPV6_TRANSPARENT, 1)?;
        Ok(Sender {
            v4,
            v6,
            server_v4: SocketAddr::new(server_v4, PORT),
            server_v6: SocketAddr::new(server_v6, PORT),
        })
    }

    /// Sends one datagram from `from`, carrying the send time and the cycle.
    pub fn send(&self, from: IpAddr, cycle: u32) -> nix::Result<()> {
        let mut payload = [0u8; 12];
        payload[..8].copy_from_slice(&mono_ns().to_le_bytes());
        payload[8..].copy_from_slice(&cycle.to_le_bytes());
        let iov = [IoSlice::new(&payload)];
        match from {
            IpAddr::V4(a) => {
                let info = libc::in_pktinfo {
                    ipi_ifindex: 0,
                    ipi_spec_dst: libc::in_addr {
                        s_addr: u32::from_ne_bytes(a.octets()),
                    },
                    ipi_addr: libc::in_addr { s_addr: 0 },
                };
                let SocketAddr::V4(to) = self.server_v4 else {
                    unreachable!("server_v4 is IPv4")
                };
                sendmsg(
                    self.v4.as_raw_fd(),
                    &iov,
                    &[ControlMessage::Ipv4PacketInfo(&info)],
                    MsgFlags::empty(),
                    Some(&SockaddrIn::from(to)),
                )?;
            }
            IpAddr::V6(a) => {
                let info = libc::in6_pktinfo {
                    ipi6_addr: libc::in6_addr {
                        s6_addr: a.octets(),
                    },
                    ipi6_ifindex: 0,
                };
                let SocketAddr::V6(to) = self.server_v6 else {
                    unreachable!("server_v6 is IPv6")
                };
                sendmsg(
                    self.v6.as_raw_fd(),
                    &iov,
                    &[ControlMessage::Ipv6PacketInfo(&info)],
                    MsgFlags::empty(),
                    Some(&SockaddrIn6::from(to)),
                )?;
            }
        }
        Ok(())
    }
}

/// setsockopt(2) of an int option (`IPV6_TRANSPARENT` has no typed wrapper in nix).
pub fn set_int(sock: &UdpSocket, level: i32, opt: i32, value: libc::c_int) -> std::io::Result<()> {
    // SAFETY: a valid socket and a c_int option value of the size passed.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            level,
            opt,
            (&raw const value).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The sending loop: every tick, the control address, the sentinels and the next
/// few banned addresses in force. Runs until `shared.stop`.
pub fn send_loop(shared: &Shared, sender: &Sender, control: &[IpAddr]) {
    let mut next = 0usize;
    while !shared.stop.load(Ordering::SeqCst) {
        let cycle = shared.cycle.load(Ordering::SeqCst);
        let phase = Phase::from_u8(shared.phase.load(Ordering::SeqCst));
        let now = mono_ns();
        let banned: Vec<IpAddr> = {
            let ledger = shared.ledger.lock().expect("ledger lock");
            let mut all: Vec<IpAddr> = ledger
                .seen
                .iter()
                .filter(|(_, s)| !s.gone && live(s.deadline_ns, now))
                .map(|(a, _)| *a)
                .collect();
            all.sort_unstable();
            if all.len() <= PER_TICK {
                all
            } else {
                next %= all.len();
                let picked: Vec<IpAddr> = all
                    .iter()
                    .cycle()
                    .skip(next)
                    .take(PER_TICK)
                    .copied()
                    .collect();
                next += PER_TICK;
                picked
            }
        };
        let mut sent = 0u64;
        for addr in &banned {
            if sender.send(*addr, cycle).is_ok() {
                sent += 1;
            }
        }
        let mut control_sent = 0u64;
        for addr in control {
            if sender.send(*addr, cycle).is_ok() {
                control_sent += 1;
            }
        }
        {
            let mut c = shared.counts.lock().expect("counts lock");
            *c.probes_sent.entry(phase).or_default() += sent;
            c.control_sent += control_sent;
        }
        std::thread::sleep(TICK);
    }
}

/// The receiving loop for one socket (bound in the server namespace).
pub fn receive_loop(
    shared: &Shared,
    sock: &UdpSocket,
    control: &[IpAddr],
    events: &Mutex<Vec<Event>>,
) {
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .expect("a read timeout can be set");
    let mut buf = [0u8; 64];
    while !shared.stop.load(Ordering::SeqCst) {
        let Ok((n, from)) = sock.recv_from(&mut buf) else {
            continue;
        };
        let arrived = mono_ns();
        if n < 12 {
            continue;
        }
        let sent = u64::from_le_bytes(buf[..8].try_into().expect("8 bytes"));
        let cycle = u32::from_le_bytes(buf[8..12].try_into().expect("4 bytes"));
        let src = canonical(from.ip());
        let phase = Phase::from_u8(shared.phase.load(Ordering::SeqCst));
        if control.contains(&src) {
            let mut c = shared.counts.lock().expect("counts lock");
            c.control_received += 1;
            *c.control_by_cycle.entry(cycle).or_default() += 1;
            continue;
        }
        let seen = shared
            .ledger
            .lock()
            .expect("ledger lock")
            .seen
            .get(&src)
            .copied();
        let in_force = seen.is_some_and(|s| {
            s.first_seen_ns <= sent
                && (s.deadline_ns == 0 || arrived + TOLERANCE_NS < s.deadline_ns)
        });
        let mut c = shared.counts.lock().expect("counts lock");
        if in_force {
            *c.passed.entry(phase).or_default() += 1;
            drop(c);
            events.lock().expect("events lock").push(Event {
                failure: Failure::PacketPassed,
                cycle,
                phase,
                detail: format!(
                    "from {src}, sent {:.3} s after its ban was seen in force",
                    (sent - seen.map_or(0, |s| s.first_seen_ns)) as f64 / 1e9
                ),
            });
        } else {
            c.arrived_outside_ban += 1;
        }
    }
}

fn canonical(a: IpAddr) -> IpAddr {
    match a {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(a, IpAddr::V4),
        v4 => v4,
    }
}
