//! The helper process on OpenBSD. It is the agent's own binary started as
//! `log2drop pf-helper ...` with the socketpair on stdin, before the agent pledges.
//! It opens `/dev/pf` read-write, chroots into an empty directory, becomes an
//! unprivileged user (the pf ioctls check the descriptor's write access, not the
//! caller's uid), proves it cannot become root again, then serves until the agent
//! closes the socket.
//!
//! It cannot pledge: every promise set restricts ioctl(2) to pledge's lists, and
//! DIOCRADDADDRS, DIOCRDELADDRS, DIOCRGETADDRS and DIOCKILLSTATES are on none. The
//! chroot, the dropped user, the table policy and the bounded decoder are its
//! confinement instead, as for dhcpd's pf table handler.

use std::ffi::CString;
use std::io;
use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixStream;
use std::path::Path;

use super::{HelperOptions, ServeError, serve};
use crate::pf::{Pf, PfError};

/// Why the helper stopped.
#[derive(Debug, thiserror::Error)]
pub enum HelperError {
    /// stdin is not the socketpair the agent passes.
    #[error("stdin is not a socket; the pf helper is started by the agent, not by hand")]
    NotASocket,
    /// `/dev/pf` could not be opened.
    #[error(transparent)]
    Open(#[from] PfError),
    /// The user to run as does not exist.
    #[error("user {0} does not exist (create it: useradd -s /sbin/nologin -d /var/empty {0})")]
    NoUser(String),
    /// A step of dropping privileges failed.
    #[error("{step}: {source}")]
    Privileges {
        /// What failed (`chroot /var/empty`, `setresuid`, ...).
        step: String,
        /// The errno.
        #[source]
        source: io::Error,
    },
    /// The serve loop broke.
    #[error(transparent)]
    Serve(#[from] ServeError),
}

/// Runs the helper: open, confine, serve. Returns when the agent hangs up.
pub fn run(opts: &HelperOptions) -> Result<(), HelperError> {
    let mut stream = stdin_socket()?;
    let mut pf = Pf::open(&opts.device)?;
    let (uid, gid) = lookup_user(&opts.user)?;
    drop_privileges(&opts.chroot, uid, gid)?;
    serve(&mut pf, &mut stream, &opts.policy)?;
    Ok(())
}

fn stdin_socket() -> Result<UnixStream, HelperError> {
    const STDIN: RawFd = 0;
    // SAFETY: fstat on a descriptor number only writes `st`.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(STDIN, &mut st) } == -1 || st.st_mode & libc::S_IFMT != libc::S_IFSOCK {
        return Err(HelperError::NotASocket);
    }
    // SAFETY: fd 0 is open (fstat succeeded) and this process hands it over for
    // good: nothing else in the helper reads stdin.
    Ok(unsafe { UnixStream::from_raw_fd(STDIN) })
}

fn lookup_user(name: &str) -> Result<(libc::uid_t, libc::gid_t), HelperError> {
    let cname = CString::new(name).map_err(|_| HelperError::NoUser(name.to_owned()))?;
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 4096];
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is to a live local; getpwnam_r writes at most
    // `buf.len()` bytes into `buf`.
    let rc = unsafe {
        libc::getpwnam_r(
            cname.as_ptr(),
            &mut pwd,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        )
    };
    if rc != 0 || result.is_null() {
        return Err(HelperError::NoUser(name.to_owned()));
    }
    Ok((pwd.pw_uid, pwd.pw_gid))
}

fn check(step: impl Into<String>, rc: libc::c_int) -> Result<(), HelperError> {
    if rc == -1 {
        Err(HelperError::Privileges {
            step: step.into(),
            source: io::Error::last_os_error(),
        })
    } else {
        Ok(())
    }
}

fn drop_privileges(root: &Path, uid: libc::uid_t, gid: libc::gid_t) -> Result<(), HelperError> {
    let croot = CString::new(root.as_os_str().as_bytes()).map_err(|_| HelperError::Privileges {
        step: format!("chroot {}", root.display()),
        source: io::Error::from(io::ErrorKind::InvalidInput),
    })?;
    // SAFETY: plain system calls on NUL-terminated paths and integer ids.
    unsafe {
        check(
            format!("chroot {}", root.display()),
            libc::chroot(croot.as_ptr()),
        )?;
        check("chdir /", libc::chdir(c"/".as_ptr()))?;
        check("setgroups", libc::setgroups(1, &gid))?;
        check("setresgid", libc::setresgid(gid, gid, gid))?;
        check("setresuid", libc::setresuid(uid, uid, uid))?;
        // As OpenSSH does: make sure the way back to root is closed.
        if uid != 0 && libc::setuid(0) != -1 {
            return Err(HelperError::Privileges {
                step: "dropping root (setuid(0) still succeeds)".to_owned(),
                source: io::Error::from(io::ErrorKind::PermissionDenied),
            });
        }
    }
    Ok(())
}

/// The whole `log2drop pf-helper ...` subcommand: parses `args` (the words after
/// `pf-helper`), runs the helper, and returns the exit status, with any error on
/// stderr (which the agent shares, so it reaches the agent's log). Call it from
/// `main` before anything starts threads.
pub fn main(args: impl IntoIterator<Item = std::ffi::OsString>) -> std::process::ExitCode {
    let opts = match HelperOptions::from_args(args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("log2drop {e}");
            return std::process::ExitCode::from(2);
        }
    };
    match run(&opts) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("log2drop {}: {e}", super::SUBCOMMAND);
            std::process::ExitCode::FAILURE
        }
    }
}
