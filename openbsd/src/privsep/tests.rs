//! The helper loop and the client over real sockets: a socketpair with the helper
//! in a thread, and the helper in a child process started by [`spawn`].

use std::ffi::OsString;
use std::net::IpAddr;
use std::os::unix::net::UnixStream;
use std::thread;

use ipnet::IpNet;

use super::*;
use crate::pf::fake::FakePf;
use crate::pf::{Pf, sys};

const T: &str = "log2drop";

fn nets(list: &[&str]) -> Vec<IpNet> {
    list.iter().map(|s| s.parse().unwrap()).collect()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn policy() -> Policy {
    Policy {
        tables: vec![T.to_owned()],
        kill_states: true,
    }
}

/// A client whose helper runs `serve` on a fake device in a thread; join the
/// handle (after dropping the client) to get the device back.
fn pair(dev: FakePf, policy: Policy) -> (Client<UnixStream>, thread::JoinHandle<FakePf>) {
    let (ours, mut theirs) = UnixStream::pair().unwrap();
    let handle = thread::spawn(move || {
        let mut pf = Pf::with_device(dev);
        serve(&mut pf, &mut theirs, &policy).expect("helper loop");
        std::mem::take(pf.device_mut())
    });
    (Client::new(ours), handle)
}

#[test]
fn every_operation_goes_through_the_socketpair() {
    let mut dev = FakePf::new();
    dev.add_state(ip("192.0.2.7"), ip("198.51.100.1"));
    let (mut c, helper) = pair(dev, policy());
    assert!(c.ensure_table(T).unwrap());
    assert!(!c.ensure_table(T).unwrap());
    assert_eq!(
        c.add(T, &nets(&["192.0.2.7/32", "2001:db8::/48"])).unwrap(),
        2
    );
    assert_eq!(c.list(T).unwrap(), nets(&["192.0.2.7/32", "2001:db8::/48"]));
    assert_eq!(c.delete(T, &nets(&["2001:db8::/48"])).unwrap(), 1);
    let r = c.replace(T, &nets(&["203.0.113.0/24"])).unwrap();
    assert_eq!((r.added, r.deleted, r.changed), (1, 1, 0));
    assert_eq!(c.kill_states(ip("192.0.2.7")).unwrap(), 1);
    assert_eq!(c.clear(T).unwrap(), 1);
    drop(c);
    // Closing the agent's end ends the helper cleanly.
    let dev = helper.join().unwrap();
    assert_eq!(dev.nets(T).unwrap(), vec![]);
    assert!(dev.states().is_empty());
    assert_eq!(dev.count_calls(sys::DIOCKILLSTATES), 2);
}

#[test]
fn kernel_errors_arrive_with_ioctl_and_errno() {
    let (mut c, helper) = pair(FakePf::new(), policy());
    let e = c.add(T, &nets(&["192.0.2.1/32"])).unwrap_err();
    assert_eq!(e.errno(), Some(libc::ESRCH), "{e}");
    assert_eq!(
        e.to_string(),
        format!(
            "DIOCRADDADDRS on table <log2drop>: {}",
            std::io::Error::from_raw_os_error(libc::ESRCH)
        )
    );
    drop(c);
    helper.join().unwrap();
}

#[test]
fn the_policy_confines_the_agent_to_its_tables() {
    let strict = Policy {
        tables: vec![T.to_owned()],
        kill_states: false,
    };
    let dev = FakePf::new().with_table(T).with_table("admins");
    let (mut c, helper) = pair(dev, strict);
    for e in [
        c.clear("admins").unwrap_err(),
        c.replace("admins", &[]).unwrap_err(),
        c.kill_states(ip("192.0.2.1")).unwrap_err(),
    ] {
        assert!(matches!(e, PfError::Refused(_)), "{e}");
    }
    // Still serving after refusals.
    assert_eq!(c.add(T, &nets(&["192.0.2.1/32"])).unwrap(), 1);
    drop(c);
    let dev = helper.join().unwrap();
    assert!(
        !dev.calls().contains(&sys::DIOCRCLRADDRS),
        "nothing reached the device"
    );
    assert!(!dev.calls().contains(&sys::DIOCKILLSTATES));
}

#[test]
fn a_malformed_frame_ends_the_helper_with_an_error() {
    let (mut ours, mut theirs) = UnixStream::pair().unwrap();
    let helper = thread::spawn(move || {
        let mut pf = Pf::with_device(FakePf::new().with_table(T));
        serve(&mut pf, &mut theirs, &policy())
    });
    wire::write_frame(&mut ours, &[wire::VERSION, 0x42]).unwrap();
    let mut buf = Vec::new();
    assert!(wire::read_frame(&mut ours, &mut buf).unwrap());
    assert!(matches!(
        wire::decode_response(&buf).unwrap(),
        Response::Failed(Failure::Other(_))
    ));
    assert!(helper.join().unwrap().is_err());
}

#[test]
fn a_dead_helper_is_a_helper_error_not_a_hang() {
    let (ours, theirs) = UnixStream::pair().unwrap();
    drop(theirs);
    let mut c = Client::new(ours);
    let e = c.add(T, &nets(&["192.0.2.1/32"])).unwrap_err();
    assert!(matches!(e, PfError::Helper { .. }), "{e}");
}

#[test]
fn a_timed_out_answer_poisons_the_client_instead_of_desyncing_it() {
    // A helper that reads the request and answers only after the client gave up.
    let (ours, mut theirs) = UnixStream::pair().unwrap();
    ours.set_read_timeout(Some(std::time::Duration::from_millis(50)))
        .unwrap();
    let helper = thread::spawn(move || {
        let mut buf = Vec::new();
        assert!(wire::read_frame(&mut theirs, &mut buf).unwrap());
        thread::sleep(std::time::Duration::from_millis(200));
        let late = wire::encode_response(&Response::Count(7));
        let _ = wire::write_frame(&mut theirs, &late);
        theirs
    });
    let mut c = Client::new(ours);
    let e = c.add(T, &nets(&["192.0.2.1/32"])).unwrap_err();
    assert!(matches!(e, PfError::Helper { .. }), "{e}");
    let _theirs = helper.join().unwrap();
    // The late "7" must not be taken as the answer to the next request.
    let e = c.clear(T).unwrap_err();
    assert!(e.to_string().contains("failed earlier"), "{e}");
}

#[test]
fn helper_options_round_trip_and_refuse_nonsense() {
    let o = HelperOptions {
        policy: Policy {
            tables: vec!["log2drop".into(), "log2drop6".into()],
            kill_states: true,
        },
        ..HelperOptions::default()
    };
    assert_eq!(HelperOptions::from_args(o.to_args()).unwrap(), o);
    let args = |a: &[&str]| a.iter().map(OsString::from).collect::<Vec<_>>();
    assert!(HelperOptions::from_args(args(&[])).is_err(), "no table");
    assert!(HelperOptions::from_args(args(&["--table"])).is_err());
    assert!(HelperOptions::from_args(args(&["--table", "bad name"])).is_err());
    assert!(HelperOptions::from_args(args(&["--tables", "x"])).is_err());
    let cmd = o.command(std::path::Path::new("/usr/local/bin/log2drop"));
    assert_eq!(cmd.get_args().next().unwrap(), SUBCOMMAND);
}

/// Not a test of its own: the body of the helper process that
/// `helper_in_a_child_process` starts (this test binary, filtered to this
/// function, with the socket on stdin).
#[test]
fn fake_helper_process_entry() {
    if std::env::var_os("LOG2DROP_FAKE_PF_HELPER").is_none() {
        return;
    }
    use std::os::fd::FromRawFd;
    // SAFETY: fd 0 is the socketpair end `spawn` gave this process; nothing else
    // in this process uses stdin.
    let mut stream = unsafe { UnixStream::from_raw_fd(0) };
    let args: Vec<OsString> = std::env::var("LOG2DROP_FAKE_PF_HELPER_ARGS")
        .unwrap()
        .split(' ')
        .map(OsString::from)
        .collect();
    let opts = HelperOptions::from_args(args).unwrap();
    let mut pf = Pf::with_device(FakePf::new());
    serve(&mut pf, &mut stream, &opts.policy).unwrap();
}

#[test]
fn helper_in_a_child_process() {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = std::process::Command::new(exe);
    cmd.args([
        "--exact",
        "privsep::tests::fake_helper_process_entry",
        "--test-threads=1",
        "--quiet",
    ])
    .env("LOG2DROP_FAKE_PF_HELPER", "1")
    .env("LOG2DROP_FAKE_PF_HELPER_ARGS", "--table log2drop")
    .stdout(std::process::Stdio::null());
    let (mut c, mut child) = spawn(cmd).unwrap();
    assert!(c.ensure_table(T).unwrap());
    assert_eq!(c.add(T, &nets(&["198.51.100.9/32"])).unwrap(), 1);
    assert_eq!(c.list(T).unwrap(), nets(&["198.51.100.9/32"]));
    // kill_states was not granted on its command line.
    assert!(matches!(
        c.kill_states(ip("198.51.100.9")),
        Err(PfError::Refused(_))
    ));
    drop(c);
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "the helper exits cleanly when the agent hangs up"
    );
}
