//! log2drop's OpenBSD side: a PF table client that speaks the `DIOCR*` ioctls on
//! `/dev/pf` itself (the `pfctl` crate supports only macOS and has no table
//! ioctls), and the privilege separation the agent needs to use it under pledge(2).
//!
//! The crate compiles on every platform; only `pf::DevPf`, `pf::Pf::open` and
//! `privsep::helper` exist on OpenBSD. Everything else, including the structure
//! encoding and the helper protocol, is tested on Linux against
//! `pf::fake::FakePf`, an in-memory device with the kernel's rules.
//!
//! # pledge and the privileged helper
//!
//! `pledge("pf")` allows only a fixed list of pf ioctls (`pledge_ioctl` in
//! `sys/kern/kern_pledge.c`): DIOCADDRULE, DIOCGETSTATUS, DIOCNATLOOK,
//! DIOCRADDTABLES, DIOCRCLRADDRS, DIOCRCLRTABLES, DIOCRCLRTSTATS, DIOCRGETTSTATS,
//! DIOCRSETADDRS, DIOCXBEGIN, DIOCXCOMMIT and DIOCKILLSRCNODES. DIOCRADDADDRS,
//! DIOCRDELADDRS, DIOCRGETADDRS and DIOCKILLSTATES are not on it, and any pledge at
//! all restricts ioctls to such lists. A pledged agent could only replace the whole
//! table per change (relayd's way) and could never kill states.
//!
//! So log2drop does what dhcpd and pftbld do: a small helper process holds `/dev/pf`
//! and does nothing else. It is the same binary, started once at boot before the
//! agent pledges, with one end of a socketpair as its stdin. It opens `/dev/pf`,
//! chroots to an empty directory, drops to an unprivileged user, and then serves
//! [`privsep`] requests: only for the tables it was started with, with bounded frame
//! sizes. The agent, which parses attacker-written logs, can then pledge without
//! `pf` and has no `/dev/pf`; the helper, which cannot pledge, parses nothing but
//! the agent's fixed binary frames. docs/openbsd.md describes the agent's wiring.

pub mod pf;
pub mod privsep;
