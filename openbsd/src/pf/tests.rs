//! The client's encoding run against the fake device's kernel rules.

use std::net::IpAddr;

use ipnet::IpNet;
use proptest::prelude::*;

use super::fake::FakePf;
use super::sys::{self, PfiocTable, PfrAddr};
use super::{Ioctl, Pf, PfError, Replaced};

const T: &str = "log2drop";

fn nets(list: &[&str]) -> Vec<IpNet> {
    list.iter().map(|s| s.parse().unwrap()).collect()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn pf() -> Pf<FakePf> {
    Pf::with_device(FakePf::new().with_table(T))
}

fn errno(e: &PfError) -> i32 {
    e.errno()
        .unwrap_or_else(|| panic!("not an ioctl error: {e}"))
}

#[test]
fn ensure_table_creates_once() {
    let mut pf = Pf::with_device(FakePf::new());
    assert!(pf.ensure_table(T).unwrap());
    assert!(!pf.ensure_table(T).unwrap());
    assert!(pf.device().has_table(T));
    assert_eq!(pf.device().count_calls(sys::DIOCRADDTABLES), 2);
}

#[test]
fn ensure_table_at_securelevel_2_accepts_a_declared_table() {
    // pf.conf declared the table; the kernel refuses DIOCRADDTABLES.
    let mut pf = pf();
    pf.device_mut().set_securelevel(2);
    assert!(!pf.ensure_table(T).unwrap());
    assert_eq!(pf.add(T, &nets(&["192.0.2.1/32"])).unwrap(), 1);
    // An undeclared table cannot be created then: the EPERM is reported.
    let e = pf.ensure_table("other").unwrap_err();
    assert_eq!(errno(&e), libc::EPERM);
    assert!(e.to_string().starts_with("DIOCRADDTABLES"), "{e}");
    let e = pf.kill_states(ip("192.0.2.1")).unwrap_err();
    assert_eq!(errno(&e), libc::EPERM);
}

#[test]
fn add_counts_new_entries_masks_host_bits_and_batches() {
    let mut pf = pf().with_batch_size(2);
    let n = nets(&[
        "192.0.2.1/32",
        "198.51.100.77/24",
        "2001:db8::1/128",
        "192.0.2.1/32",
        "2001:db8:1::/48",
    ]);
    // The duplicate counts once.
    assert_eq!(pf.add(T, &n).unwrap(), 4);
    assert_eq!(pf.device().count_calls(sys::DIOCRADDADDRS), 3);
    let mut got = pf.device().nets(T).unwrap();
    got.sort();
    let mut want = nets(&[
        "192.0.2.1/32",
        "198.51.100.0/24",
        "2001:db8::1/128",
        "2001:db8:1::/48",
    ]);
    want.sort();
    assert_eq!(got, want);
    // Adding again adds nothing.
    assert_eq!(pf.add(T, &n).unwrap(), 0);
}

#[test]
fn delete_counts_only_present_entries() {
    let mut pf = pf();
    pf.add(T, &nets(&["192.0.2.1/32", "203.0.113.0/24"]))
        .unwrap();
    let gone = pf
        .delete(
            T,
            &nets(&["192.0.2.1/32", "192.0.2.2/32", "203.0.113.9/24"]),
        )
        .unwrap();
    assert_eq!(gone, 2, "the /24 is found after masking its host bits");
    assert_eq!(pf.device().nets(T).unwrap(), vec![]);
}

#[test]
fn list_returns_entries_and_skips_negated_ones() {
    let mut pf = pf();
    pf.add(T, &nets(&["2001:db8::5/128", "192.0.2.9/32"]))
        .unwrap();
    pf.device_mut()
        .insert(T, "198.51.100.0/24".parse().unwrap(), true);
    let got = pf.list(T).unwrap();
    assert_eq!(got, nets(&["192.0.2.9/32", "2001:db8::5/128"]));
    let all = pf.list_entries(T).unwrap();
    assert_eq!(all.len(), 3);
    assert!(all.iter().any(|e| e.negated));
}

#[test]
fn list_grows_its_buffer_when_the_kernel_reports_a_larger_size() {
    let mut pf = pf();
    let many: Vec<IpNet> = (0..100u8)
        .map(|i| IpNet::from(IpAddr::from([192, 0, 2, i])))
        .collect();
    pf.add(T, &many).unwrap();
    // The first buffer holds 64: the kernel answers "100" and copies nothing.
    let got = pf.list(T).unwrap();
    assert_eq!(got.len(), 100);
    assert_eq!(pf.device().count_calls(sys::DIOCRGETADDRS), 2);
    // The next list is sized from this one.
    pf.list(T).unwrap();
    assert_eq!(pf.device().count_calls(sys::DIOCRGETADDRS), 3);
}

#[test]
fn list_retries_while_the_table_keeps_growing() {
    let mut pf = pf();
    let many: Vec<IpNet> = (0..64u8)
        .map(|i| IpNet::from(IpAddr::from([198, 51, 100, i])))
        .collect();
    pf.add(T, &many).unwrap();
    let late: Vec<IpNet> = (0..80u8)
        .map(|i| IpNet::from(IpAddr::from([203, 0, 113, i])))
        .collect();
    // One more entry arrives before each request: the sizes keep moving.
    pf.device_mut().grow_on_get(T, &late[..1]);
    let got = pf.list(T).unwrap();
    assert_eq!(got.len(), 65);
    assert_eq!(pf.device().count_calls(sys::DIOCRGETADDRS), 2);

    // A table that outgrows every buffer is reported, not looped on forever.
    let err = list_against_runaway_table();
    assert!(
        matches!(err, PfError::Unstable { attempts: 8, .. }),
        "{err}"
    );
}

/// A device whose table doubles before every DIOCRGETADDRS.
fn list_against_runaway_table() -> PfError {
    struct Runaway(usize);
    impl Ioctl for Runaway {
        unsafe fn ioctl(
            &mut self,
            request: core::ffi::c_ulong,
            arg: *mut core::ffi::c_void,
        ) -> std::io::Result<()> {
            assert_eq!(request, sys::DIOCRGETADDRS);
            self.0 *= 2;
            // SAFETY: the client passes a live PfiocTable.
            let io = unsafe { &mut *arg.cast::<PfiocTable>() };
            assert_eq!(io.pfrio_esize as usize, core::mem::size_of::<PfrAddr>());
            if self.0 > io.pfrio_size as usize {
                io.pfrio_size = self.0 as i32;
                return Ok(());
            }
            unreachable!("the table always outgrows the buffer");
        }
    }
    Pf::with_device(Runaway(64)).list(T).unwrap_err()
}

#[test]
fn replace_reports_added_deleted_and_drops_duplicates() {
    let mut pf = pf();
    pf.add(T, &nets(&["192.0.2.1/32", "192.0.2.2/32"])).unwrap();
    let r = pf
        .replace(
            T,
            &nets(&[
                "192.0.2.2/32",
                "2001:db8::/64",
                "2001:db8::1/64",
                "203.0.113.5/32",
            ]),
        )
        .unwrap();
    assert_eq!(
        r,
        Replaced {
            added: 2,
            deleted: 1,
            changed: 0
        }
    );
    let mut got = pf.list(T).unwrap();
    got.sort();
    assert_eq!(
        got,
        nets(&["192.0.2.2/32", "203.0.113.5/32", "2001:db8::/64"])
    );
    // Replacing with nothing empties the table.
    assert_eq!(pf.replace(T, &[]).unwrap().deleted, 3);
}

#[test]
fn replace_flips_a_negated_entry_and_counts_it_changed() {
    let mut pf = pf();
    pf.device_mut()
        .insert(T, "198.51.100.0/24".parse().unwrap(), true);
    let r = pf.replace(T, &nets(&["198.51.100.0/24"])).unwrap();
    assert_eq!(r.changed, 1);
    assert_eq!(pf.list(T).unwrap(), nets(&["198.51.100.0/24"]));
}

#[test]
fn clear_empties_with_a_zero_esize() {
    let mut pf = pf();
    pf.add(T, &nets(&["192.0.2.1/32", "2001:db8::1/128"]))
        .unwrap();
    assert_eq!(pf.clear(T).unwrap(), 2);
    assert_eq!(pf.list(T).unwrap(), vec![]);
    assert_eq!(pf.clear(T).unwrap(), 0);
}

#[test]
fn missing_table_is_esrch_with_the_ioctl_named() {
    let mut pf = Pf::with_device(FakePf::new());
    for e in [
        pf.add("absent", &nets(&["192.0.2.1/32"])).unwrap_err(),
        pf.delete("absent", &nets(&["192.0.2.1/32"])).unwrap_err(),
        pf.list("absent").unwrap_err(),
        pf.replace("absent", &[]).unwrap_err(),
        pf.clear("absent").unwrap_err(),
    ] {
        assert_eq!(errno(&e), libc::ESRCH, "{e}");
        assert!(e.to_string().contains("table <absent>"), "{e}");
        assert!(e.to_string().starts_with("DIOCR"), "{e}");
    }
}

#[test]
fn const_table_refuses_changes_with_eperm() {
    let mut pf = pf();
    pf.device_mut().make_const(T);
    let e = pf.add(T, &nets(&["192.0.2.1/32"])).unwrap_err();
    assert_eq!(errno(&e), libc::EPERM);
}

#[test]
fn wrong_esize_is_enodev() {
    // What an old or mis-laid-out client would send: one byte short per entry.
    let mut dev = FakePf::new().with_table(T);
    let mut buf = [super::addr::encode(&"192.0.2.1/32".parse().unwrap())];
    let mut io = PfiocTable::zeroed();
    io.pfrio_table.pfrt_name[..T.len()].copy_from_slice(T.as_bytes());
    io.pfrio_buffer = buf.as_mut_ptr().cast();
    io.pfrio_esize = 51;
    io.pfrio_size = 1;
    // SAFETY: `io` and the one-entry buffer it points at are live.
    let r = unsafe { dev.ioctl(sys::DIOCRADDADDRS, (&mut io as *mut PfiocTable).cast()) };
    assert_eq!(r.unwrap_err().raw_os_error(), Some(libc::ENODEV));
    // DIOCRCLRADDRS is the other way round: it wants 0.
    io.pfrio_esize = 52;
    // SAFETY: as above.
    let r = unsafe { dev.ioctl(sys::DIOCRCLRADDRS, (&mut io as *mut PfiocTable).cast()) };
    assert_eq!(r.unwrap_err().raw_os_error(), Some(libc::ENODEV));
}

#[test]
fn invalid_address_fails_the_whole_request_with_einval() {
    let mut dev = FakePf::new().with_table(T);
    let good = super::addr::encode(&"192.0.2.1/32".parse().unwrap());
    let mut bad = super::addr::encode(&"192.0.2.0/24".parse().unwrap());
    bad.pfra_u.0[3] = 7; // host bits set
    let mut buf = [good, bad];
    let mut io = PfiocTable::zeroed();
    io.pfrio_table.pfrt_name[..T.len()].copy_from_slice(T.as_bytes());
    io.pfrio_buffer = buf.as_mut_ptr().cast();
    io.pfrio_esize = 52;
    io.pfrio_size = 2;
    // SAFETY: `io` and the two-entry buffer it points at are live.
    let r = unsafe { dev.ioctl(sys::DIOCRADDADDRS, (&mut io as *mut PfiocTable).cast()) };
    assert_eq!(r.unwrap_err().raw_os_error(), Some(libc::EINVAL));
    assert_eq!(dev.nets(T).unwrap(), vec![], "nothing was added");
}

#[test]
fn table_names_are_checked_before_any_ioctl() {
    let mut pf = pf();
    for bad in ["", "a-name-that-is-longer-than-31-by", "two words", "nul\0"] {
        let e = pf.add(bad, &[]).unwrap_err();
        assert!(matches!(e, PfError::TableName { .. }), "{bad:?}: {e}");
    }
    assert_eq!(pf.device().calls(), &[] as &[core::ffi::c_ulong]);
    // 31 bytes is the longest the kernel's 32-byte field holds.
    let longest = "a".repeat(31);
    assert!(pf.ensure_table(&longest).unwrap());
}

#[test]
fn an_injected_kernel_error_is_reported_with_errno() {
    let mut pf = pf();
    pf.device_mut().fail_next(sys::DIOCRADDADDRS, libc::ENOMEM);
    let e = pf.add(T, &nets(&["192.0.2.1/32"])).unwrap_err();
    assert_eq!(errno(&e), libc::ENOMEM);
    assert!(
        e.to_string().contains("DIOCRADDADDRS on table <log2drop>"),
        "{e}"
    );
}

#[test]
fn kill_states_cuts_both_directions_of_one_host_only() {
    let mut pf = pf();
    let dev = pf.device_mut();
    dev.add_state(ip("192.0.2.7"), ip("198.51.100.1")); // from the host
    dev.add_state(ip("198.51.100.1"), ip("192.0.2.7")); // towards it
    dev.add_state(ip("192.0.2.8"), ip("198.51.100.1")); // a neighbour
    dev.add_state(ip("2001:db8::7"), ip("2001:db8::1"));
    assert_eq!(pf.kill_states(ip("192.0.2.7")).unwrap(), 2);
    assert_eq!(pf.device().states().len(), 2);
    assert_eq!(pf.kill_states(ip("2001:db8::7")).unwrap(), 1);
    assert_eq!(pf.kill_states(ip("203.0.113.1")).unwrap(), 0);
    assert_eq!(pf.device().states().len(), 1);
    assert_eq!(pf.device().count_calls(sys::DIOCKILLSTATES), 6);
}

fn arb_net() -> impl Strategy<Value = IpNet> {
    prop_oneof![
        (any::<[u8; 4]>(), 0u8..=32)
            .prop_map(|(a, p)| IpNet::V4(ipnet::Ipv4Net::new(a.into(), p).unwrap())),
        (any::<[u8; 16]>(), 0u8..=128)
            .prop_map(|(a, p)| IpNet::V6(ipnet::Ipv6Net::new(a.into(), p).unwrap())),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// replace(list()) changes nothing, and list() after replace(x) is x with host
    /// bits masked and duplicates dropped.
    #[test]
    fn replace_of_list_round_trips(start in prop::collection::vec(arb_net(), 0..150),
                                    batch in 1usize..64) {
        let mut pf = pf().with_batch_size(batch);
        pf.replace(T, &start).unwrap();
        let mut want: Vec<IpNet> = start.iter().map(|n| n.trunc()).collect();
        want.sort();
        want.dedup();
        let mut listed = pf.list(T).unwrap();
        listed.sort();
        prop_assert_eq!(&listed, &want);
        let r = pf.replace(T, &listed).unwrap();
        prop_assert_eq!(r, Replaced::default());
        let mut again = pf.list(T).unwrap();
        again.sort();
        prop_assert_eq!(again, want);
    }

    /// add then delete of the same blocks leaves the table as it was.
    #[test]
    fn add_then_delete_restores(base in prop::collection::vec(arb_net(), 0..40),
                                extra in prop::collection::vec(arb_net(), 0..40)) {
        let mut pf = pf().with_batch_size(7);
        pf.replace(T, &base).unwrap();
        let mut before = pf.list(T).unwrap();
        before.sort();
        let fresh: Vec<IpNet> = extra.iter().map(|n| n.trunc())
            .filter(|n| !before.contains(n)).collect();
        let mut unique = fresh.clone();
        unique.sort();
        unique.dedup();
        prop_assert_eq!(pf.add(T, &fresh).unwrap() as usize, unique.len());
        prop_assert_eq!(pf.delete(T, &fresh).unwrap() as usize, unique.len());
        let mut after = pf.list(T).unwrap();
        after.sort();
        prop_assert_eq!(after, before);
    }
}
