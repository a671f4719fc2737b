//! The accept loop every server of the crate runs (the instance API on its unix socket and on
//! `--listen`, the gateway): a task per connection, a bound on how many are served at once, an
//! accept error never fatal, until shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio::sync::Semaphore;

/// The most connections served at once; more wait in the listen backlog.
pub const MAX_CONNECTIONS: usize = 8192;

/// How long to back off after a failed accept (e.g. out of file descriptors), so a persistent
/// error does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// A listening socket the servers accept from, so one loop serves unix and TCP alike.
pub trait Listener {
    /// What a connection is.
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;

    /// The next connection, ready to use, and how the peer is named in logs and replies.
    fn accept(&self) -> impl Future<Output = std::io::Result<(Self::Stream, String)>> + Send;
}

impl Listener for UnixListener {
    type Stream = UnixStream;

    async fn accept(&self) -> std::io::Result<(UnixStream, String)> {
        let (stream, _) = UnixListener::accept(self).await?;
        Ok((stream, "local".to_owned()))
    }
}

impl Listener for TcpListener {
    type Stream = TcpStream;

    /// Requests and replies are single small writes: send them at once.
    async fn accept(&self) -> std::io::Result<(TcpStream, String)> {
        let (stream, peer) = TcpListener::accept(self).await?;
        let _ = stream.set_nodelay(true);
        Ok((stream, peer.to_string()))
    }
}

/// Accepts connections until `shutdown` resolves, each served by `serve(stream, peer)` in a task
/// of its own, at most [`MAX_CONNECTIONS`] at once. A failed accept is handed to `accept_failed`
/// (to log it with the server's fields) and retried after a short pause.
pub async fn serve_connections<L, F, Fut>(
    listener: L,
    shutdown: impl Future<Output = ()>,
    serve: F,
    accept_failed: impl Fn(&std::io::Error),
) where
    L: Listener,
    F: Fn(L::Stream, String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    tokio::pin!(shutdown);
    loop {
        let Ok(permit) = limit.clone().acquire_owned().await else {
            return;
        };
        tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let connection = serve(stream, peer);
                    tokio::spawn(async move {
                        connection.await;
                        drop(permit);
                    });
                }
                Err(e) => {
                    accept_failed(&e);
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            }
        }
    }
}
