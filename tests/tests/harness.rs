//! Checks the harness itself, as root: what the end-to-end tests build works, and
//! what they build is gone afterwards. If these fail, an end-to-end failure says
//! nothing about the agent.

use std::time::Duration;

use log2drop_tests::netns::{current_netns_inode, listed_namespaces};
use log2drop_tests::veth::{
    BYSTANDER_V4, BYSTANDER_V6, OFFENDER_V4, OFFENDER_V6, SERVER_V4, SERVER_V6, link_exists,
};
use log2drop_tests::{NetNs, PinDir, VethPair, bpffs, ping, ping_with_timeout, require_root};

#[test]
fn namespace_is_listed_then_deleted_on_drop() {
    if !require_root("namespace_is_listed_then_deleted_on_drop") {
        return;
    }
    let ns = NetNs::new();
    let name = ns.name().to_owned();
    let path = ns.path().to_owned();
    assert!(listed_namespaces().contains(&name), "{name} not listed");
    assert!(path.exists());
    let lo = ns.exec_checked(&["ip", "-o", "link", "show", "dev", "lo"]);
    assert!(
        String::from_utf8_lossy(&lo.stdout).contains("UP"),
        "lo is not up in {name}"
    );
    drop(ns);
    assert!(!listed_namespaces().contains(&name), "{name} still listed");
    assert!(!path.exists(), "{} still exists", path.display());
}

#[test]
fn namespaces_get_distinct_names() {
    if !require_root("namespaces_get_distinct_names") {
        return;
    }
    let a = NetNs::new();
    let b = NetNs::new();
    assert_ne!(a.name(), b.name());
}

#[test]
fn enter_moves_the_thread_and_drop_moves_it_back() {
    if !require_root("enter_moves_the_thread_and_drop_moves_it_back") {
        return;
    }
    use std::os::unix::fs::MetadataExt;
    let ns = NetNs::new();
    let ns_inode = std::fs::metadata(ns.path()).map(|m| m.ino()).unwrap_or(0);
    let before = current_netns_inode();
    assert_ne!(before, ns_inode);
    {
        let _guard = ns.enter();
        assert_eq!(current_netns_inode(), ns_inode);
    }
    assert_eq!(current_netns_inode(), before);
}

#[test]
fn enter_guard_restores_on_panic() {
    if !require_root("enter_guard_restores_on_panic") {
        return;
    }
    let ns = NetNs::new();
    let before = current_netns_inode();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _guard = ns.enter();
        panic!("test panic inside the namespace");
    }));
    assert!(r.is_err());
    assert_eq!(current_netns_inode(), before);
}

#[test]
fn veth_pair_connects_both_families_and_is_deleted_on_drop() {
    if !require_root("veth_pair_connects_both_families_and_is_deleted_on_drop") {
        return;
    }
    let server = NetNs::new();
    let attacker = NetNs::new();
    let veth = VethPair::server_attacker(&server, &attacker);
    assert!(veth.a().ifname.len() <= 15 && veth.b().ifname.len() <= 15);
    for (from, to) in [
        (OFFENDER_V4, SERVER_V4),
        (BYSTANDER_V4, SERVER_V4),
        (OFFENDER_V6, SERVER_V6),
        (BYSTANDER_V6, SERVER_V6),
    ] {
        assert!(ping(&attacker, from, to), "no reply from {to} to {from}");
    }
    // An address nobody holds must not answer: proves `ping` can return false.
    assert!(!ping_with_timeout(
        &attacker,
        OFFENDER_V4,
        "198.51.100.99",
        Duration::from_millis(300)
    ));
    let (a, b) = (veth.a().clone(), veth.b().clone());
    assert!(link_exists(&a) && link_exists(&b));
    drop(veth);
    assert!(!link_exists(&a), "{} still exists", a.ifname);
    assert!(!link_exists(&b), "{} still exists", b.ifname);
}

#[test]
fn veth_goes_with_its_namespaces() {
    if !require_root("veth_goes_with_its_namespaces") {
        return;
    }
    let server = NetNs::new();
    let attacker = NetNs::new();
    let veth = VethPair::server_attacker(&server, &attacker);
    let name = veth.a().ifname.clone();
    // Dropped in the wrong order on purpose: the pair's Drop must cope.
    drop(server);
    drop(attacker);
    assert!(!veth.exists());
    drop(veth);
    let root_links = log2drop_tests::cmd::checked(&["ip", "-o", "link", "show"]);
    assert!(!String::from_utf8_lossy(&root_links.stdout).contains(&name));
}

#[test]
fn pin_dir_is_on_bpffs_and_removed_on_drop() {
    if !require_root("pin_dir_is_on_bpffs_and_removed_on_drop") {
        return;
    }
    let pins = PinDir::new();
    let path = pins.path().to_owned();
    assert!(bpffs::is_bpffs(&path));
    std::fs::create_dir(path.join("maps-v1")).expect("bpffs allows directories");
    assert!(
        pins.find("maps-v1").is_none(),
        "find only returns pinned objects"
    );
    drop(pins);
    assert!(!path.exists(), "{} still exists", path.display());
}
