//! systemd socket activation for the gateway (sd_listen_fds(3), implemented directly): when
//! `LISTEN_PID` is this process and `LISTEN_FDS` is N ≥ 1, fds 3..3+N are listening TCP sockets
//! systemd opened for us (lava-power-gateway.socket), served instead of binding `--listen`.

use std::net::TcpListener;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use nix::sys::socket::{getsockopt, sockopt, SockType};

/// The first fd systemd passes (`SD_LISTEN_FDS_START`).
const LISTEN_FDS_START: RawFd = 3;

/// Why the passed sockets cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum ActivationError {
    #[error("LISTEN_FDS={0:?} is not a count of sockets")]
    BadCount(String),
    #[error("passed fd {fd} is not a listening TCP socket: {reason}")]
    NotListener { fd: RawFd, reason: String },
}

/// Takes the listening sockets systemd passed to this process, if any (`None`: not socket
/// activated, bind as usual). The `LISTEN_*` variables are removed either way so that no child
/// takes them for its own, and each taken fd is made close-on-exec. Call it before any thread
/// starts (it edits the environment).
pub fn take_listeners() -> Result<Option<Vec<TcpListener>>, ActivationError> {
    let pid = std::env::var("LISTEN_PID").ok();
    let fds = std::env::var("LISTEN_FDS").ok();
    for var in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
        std::env::remove_var(var);
    }
    let ours = pid
        .and_then(|p| p.trim().parse::<u32>().ok())
        .is_some_and(|p| p == std::process::id());
    let Some(fds) = fds.filter(|_| ours) else {
        return Ok(None);
    };
    let n: RawFd = match fds.trim().parse() {
        Ok(n) if (1..=1024).contains(&n) => n,
        Ok(0) => return Ok(None),
        _ => return Err(ActivationError::BadCount(fds)),
    };
    let mut listeners = Vec::new();
    for fd in LISTEN_FDS_START..LISTEN_FDS_START + n {
        // SAFETY: LISTEN_PID names this process, so by the sd_listen_fds(3) protocol fds
        // 3..3+LISTEN_FDS were opened by systemd for it and nothing else in this process owns
        // them; this runs once, before any other code could have taken or closed them.
        #[allow(unsafe_code)]
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        listeners.push(listener(fd, owned)?);
    }
    Ok(Some(listeners))
}

fn listener(fd: RawFd, owned: OwnedFd) -> Result<TcpListener, ActivationError> {
    let bad = |reason: String| ActivationError::NotListener { fd, reason };
    match getsockopt(&owned, sockopt::SockType) {
        Ok(SockType::Stream) => {}
        Ok(other) => return Err(bad(format!("socket type {other:?}, not a stream"))),
        Err(e) => return Err(bad(e.to_string())),
    }
    match getsockopt(&owned, sockopt::AcceptConn) {
        Ok(true) => {}
        Ok(false) => return Err(bad("not listening".to_owned())),
        Err(e) => return Err(bad(e.to_string())),
    }
    fcntl(&owned, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).map_err(|e| bad(e.to_string()))?;
    let listener = TcpListener::from(owned);
    // A unix stream socket passes the checks above; a TCP listener has an inet address.
    match listener.local_addr() {
        Ok(_) => {}
        Err(e) => return Err(bad(format!("not a TCP socket ({e})"))),
    }
    listener
        .set_nonblocking(true)
        .map_err(|e| bad(e.to_string()))?;
    Ok(listener)
}
