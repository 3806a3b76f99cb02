//! A veth pair joining two test namespaces, the wire between "the server" running
//! the agent and "the attacker". Addresses come from the documentation ranges only
//! (198.51.100.0/24, 2001:db8:100::/64), and they exist only inside the two
//! namespaces, so test traffic can never leave the machine.
//!
//! Neighbours are static on both sides: once an address is banned the XDP program
//! drops its ARP/NDP-triggering IP packets as well, and a neighbour entry that expires
//! mid-test must not turn "the other address still gets replies" into a flake.

use std::net::IpAddr;
use std::time::Duration;

use crate::netns::NetNs;

/// The server (agent) end's IPv4 address.
pub const SERVER_V4: &str = "198.51.100.1";
/// The server (agent) end's IPv6 address.
pub const SERVER_V6: &str = "2001:db8:100::1";
/// The attacker address the tests ban.
pub const OFFENDER_V4: &str = "198.51.100.7";
/// A second attacker address that must keep working while the first is banned.
pub const BYSTANDER_V4: &str = "198.51.100.8";
/// The IPv6 attacker address the tests ban.
pub const OFFENDER_V6: &str = "2001:db8:100::7";
/// The IPv6 attacker address that must keep working.
pub const BYSTANDER_V6: &str = "2001:db8:100::8";

/// One end of the pair: its namespace, interface name, MAC and addresses.
#[derive(Debug, Clone)]
pub struct VethEnd {
    /// Name of the namespace holding this end.
    pub netns: String,
    /// Path of that namespace (`/run/netns/NAME`).
    pub netns_path: std::path::PathBuf,
    /// Interface name (at most 15 bytes).
    pub ifname: String,
    /// Locally administered MAC set at creation.
    pub mac: String,
    /// Addresses assigned, with their prefix lengths.
    pub addrs: Vec<(IpAddr, u8)>,
}

/// A veth pair with one end in each of two namespaces, deleted on drop. Drop it
/// before the namespaces (declare it after them), although deleting a namespace
/// removes its end as well.
#[derive(Debug)]
pub struct VethPair {
    a: VethEnd,
    b: VethEnd,
}

impl VethPair {
    /// The standard test wire: `server` gets [`SERVER_V4`]/24 and [`SERVER_V6`]/64,
    /// `attacker` gets the offender and bystander addresses of both families.
    pub fn server_attacker(server: &NetNs, attacker: &NetNs) -> VethPair {
        let v4 = |s: &str| -> (IpAddr, u8) { (parse(s), 24) };
        let v6 = |s: &str| -> (IpAddr, u8) { (parse(s), 64) };
        VethPair::new(
            server,
            &[v4(SERVER_V4), v6(SERVER_V6)],
            attacker,
            &[
                v4(OFFENDER_V4),
                v4(BYSTANDER_V4),
                v6(OFFENDER_V6),
                v6(BYSTANDER_V6),
            ],
        )
    }

    /// Creates the pair (`l2dA<pid><n>` in `a`, `l2dB<pid><n>` in `b`), assigns the
    /// addresses (IPv6 without duplicate address detection, so they are usable at
    /// once), brings both ends up and installs permanent neighbour entries for every
    /// address of the other end.
    pub fn new(
        a: &NetNs,
        a_addrs: &[(IpAddr, u8)],
        b: &NetNs,
        b_addrs: &[(IpAddr, u8)],
    ) -> VethPair {
        let pid = std::process::id() % 100_000;
        let mut n = 0u32;
        let (a_name, b_name, a_mac, b_mac) = loop {
            assert!(n < 100, "no free veth name l2dA{pid}N in {}", a.name());
            let a_name = format!("l2dA{pid}{n}");
            let b_name = format!("l2dB{pid}{n}");
            let a_mac = format!("02:6c:32:64:{:02x}:0a", n % 256);
            let b_mac = format!("02:6c:32:64:{:02x}:0b", n % 256);
            let argv = [
                "ip",
                "link",
                "add",
                &a_name,
                "address",
                &a_mac,
                "netns",
                a.name(),
                "type",
                "veth",
                "peer",
                "name",
                &b_name,
                "address",
                &b_mac,
                "netns",
                b.name(),
            ];
            let out = crate::cmd::output(&argv);
            if out.status.success() {
                break (a_name, b_name, a_mac, b_mac);
            }
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                err.contains("File exists"),
                "`{}` failed: {}",
                crate::cmd::describe(&argv),
                err.trim()
            );
            n += 1;
        };
        let pair = VethPair {
            a: end(a, a_name, a_mac, a_addrs),
            b: end(b, b_name, b_mac, b_addrs),
        };
        pair.configure(a, &pair.a, &pair.b);
        pair.configure(b, &pair.b, &pair.a);
        pair.wait_up();
        pair
    }

    /// Waits until both ends report carrier (`state UP`). A veth reports it a moment
    /// after `ip link set up`, and a test that pings before that sees a spurious
    /// "no reply", more often on a loaded machine.
    fn wait_up(&self) {
        let up = |end: &VethEnd| {
            let out = crate::cmd::output(&crate::cmd::in_netns(
                &end.netns_path,
                &["ip", "-o", "link", "show", "dev", &end.ifname],
            ));
            String::from_utf8_lossy(&out.stdout).contains("state UP")
        };
        let ready = crate::wait_until(Duration::from_secs(10), Duration::from_millis(20), || {
            up(&self.a) && up(&self.b)
        });
        assert!(
            ready.is_some(),
            "veth {} / {} did not come up within 10 s",
            self.a.ifname,
            self.b.ifname
        );
    }

    fn configure(&self, ns: &NetNs, this: &VethEnd, peer: &VethEnd) {
        for (addr, len) in &this.addrs {
            let cidr = format!("{addr}/{len}");
            let mut argv = vec!["ip", "addr", "add", &cidr, "dev", &this.ifname];
            if addr.is_ipv6() {
                argv.push("nodad");
            }
            ns.exec_checked(&argv);
        }
        ns.exec_checked(&["ip", "link", "set", "dev", &this.ifname, "up"]);
        for (addr, _) in &peer.addrs {
            let addr = addr.to_string();
            ns.exec_checked(&[
                "ip",
                "neigh",
                "replace",
                &addr,
                "lladdr",
                &peer.mac,
                "dev",
                &this.ifname,
                "nud",
                "permanent",
            ]);
        }
    }

    /// The first end (in the first namespace given to [`VethPair::new`]).
    pub fn a(&self) -> &VethEnd {
        &self.a
    }

    /// The second end.
    pub fn b(&self) -> &VethEnd {
        &self.b
    }

    /// Whether the first end still exists in its namespace.
    pub fn exists(&self) -> bool {
        link_exists(&self.a)
    }
}

impl Drop for VethPair {
    fn drop(&mut self) {
        // Deleting one end deletes its peer. A namespace already gone took it along.
        if self.a.netns_path.exists() && link_exists(&self.a) {
            let out = crate::cmd::output(&crate::cmd::in_netns(
                &self.a.netns_path,
                &["ip", "link", "delete", "dev", &self.a.ifname],
            ));
            if !out.status.success() {
                eprintln!(
                    "warning: could not delete veth {}: {}",
                    self.a.ifname,
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
        }
    }
}

/// Whether `end`'s interface exists in its namespace.
pub fn link_exists(end: &VethEnd) -> bool {
    if !end.netns_path.exists() {
        return false;
    }
    crate::cmd::output(&crate::cmd::in_netns(
        &end.netns_path,
        &["ip", "link", "show", "dev", &end.ifname],
    ))
    .status
    .success()
}

fn end(ns: &NetNs, ifname: String, mac: String, addrs: &[(IpAddr, u8)]) -> VethEnd {
    VethEnd {
        netns: ns.name().to_owned(),
        netns_path: ns.path().to_owned(),
        ifname,
        mac,
        addrs: addrs.to_vec(),
    }
}

fn parse(s: &str) -> IpAddr {
    s.parse()
        .unwrap_or_else(|e| panic!("bad address constant {s}: {e}"))
}
