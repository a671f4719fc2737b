//! The TCP side of a port: binding (with errors that say what is wrong), the accept loop, client
//! socket options (TCP_NODELAY, keepalive that reaps a dead peer in under a minute), and `run`,
//! which ties the port owner, the console log and the clients together until shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::Duration;

use lava_common::Protocol;
use tokio::net::{TcpListener, TcpStream};

use crate::config::PortConfig;
use crate::consolelog::ConsoleLog;
use crate::port::{ClientId, Owner, PortHandle};
use crate::watch::{WatchError, Watcher};

/// Idle time before the first keepalive probe.
pub const KEEPALIVE_IDLE: u32 = 20;
/// Time between keepalive probes.
pub const KEEPALIVE_INTERVAL: u32 = 5;
/// Unanswered probes before the peer is declared dead (20 + 4 × 5 = 40 s).
pub const KEEPALIVE_COUNT: u32 = 4;
/// Unacknowledged data older than this closes the connection (a peer gone with data in flight).
pub const USER_TIMEOUT_MS: u32 = 45_000;

/// Why a port could not be served.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot watch for the device: {0}")]
    Watch(#[from] WatchError),
    #[error("cannot start the console log writer: {0}")]
    Log(std::io::Error),
}

/// Binds the listening socket; the error names the address and the reason (in use, not local...).
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, ServeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })
}

/// Serves `cfg` on `listener` until `shutdown` resolves. Tests call this in-process on a
/// listener bound to `127.0.0.1:0`.
pub async fn run(
    listener: TcpListener,
    cfg: PortConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    let watcher = Watcher::new(cfg.identity.clone())?;
    let (log, log_thread) = match cfg.log.clone() {
        Some(l) => {
            let (log, thread) = ConsoleLog::start(l).map_err(ServeError::Log)?;
            (Some(log), Some(thread))
        }
        None => (None, None),
    };
    let protocol = cfg.protocol;
    let cfg = Arc::new(cfg);
    let (owner, handle) = Owner::new(cfg.clone(), watcher, log);
    // The owner and the clients are tasks of one LocalSet: one of them waking another is a
    // plain queue push within the set's turn. (With the owner as the runtime's `block_on`
    // future, every wake from a client cost an extra zero-timeout epoll_wait.) Local tasks
    // need not be Send: the udev monitor is not.
    let local = tokio::task::LocalSet::new();
    local
        .run_until(async move {
            let mut owner = tokio::task::spawn_local(owner.run());
            tokio::select! {
                _ = shutdown => {
                    tracing::info!(board = %cfg.board, "shutting down");
                }
                _ = &mut owner => {}
                _ = accept_loop(&listener, handle, protocol) => {}
            }
            // Dropped (its console log sender with it) before the log thread is joined.
            owner.abort();
            let _ = owner.await;
        })
        .await;
    drop(local);
    if let Some(t) = log_thread {
        t.join();
    }
    Ok(())
}

async fn accept_loop(listener: &TcpListener, port: PortHandle, protocol: Protocol) {
    let mut next: ClientId = 1;
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                tune(&stream);
                let id = next;
                next += 1;
                tracing::debug!(board = %port.board, client = id, %peer, "connection");
                tokio::task::spawn_local(crate::client::serve(
                    stream,
                    peer,
                    id,
                    port.clone(),
                    protocol,
                ));
            }
            Err(e) => {
                // Out of file descriptors and the like: wait a little rather than spin.
                tracing::warn!(board = %port.board, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// TCP_NODELAY (every keystroke and every board byte goes out at once) and a keepalive that
/// notices a vanished peer within a minute.
fn tune(stream: &TcpStream) {
    use nix::sys::socket::{setsockopt, sockopt};
    let _ = stream.set_nodelay(true);
    let fd = stream.as_fd();
    let results = [
        setsockopt(&fd, sockopt::KeepAlive, &true),
        setsockopt(&fd, sockopt::TcpKeepIdle, &KEEPALIVE_IDLE),
        setsockopt(&fd, sockopt::TcpKeepInterval, &KEEPALIVE_INTERVAL),
        setsockopt(&fd, sockopt::TcpKeepCount, &KEEPALIVE_COUNT),
        setsockopt(&fd, sockopt::TcpUserTimeout, &USER_TIMEOUT_MS),
    ];
    for r in results {
        if let Err(e) = r {
            tracing::debug!(error = %e, "socket option not set");
        }
    }
}
