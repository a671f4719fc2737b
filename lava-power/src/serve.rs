//! Running one instance: its socket claimed safely (a stale one removed, a live one refused), the
//! scheduler started, the API served on the socket and on `--listen`, until shutdown.

use std::future::Future;
use std::path::{Path, PathBuf};

use tokio::net::{TcpListener, UnixListener};

use crate::config::Loaded;
use crate::queue::Pdu;

/// Why an instance could not start serving.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot create the runtime dir {}: {source}", path.display())]
    RuntimeDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("another lava-power instance is already serving {pdu} at {} (stop it first, or use another --runtime-dir)", path.display())]
    InUse { pdu: String, path: PathBuf },
    #[error("cannot listen on {}: {source}", path.display())]
    Bind {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The socket path of an instance, `RUNTIME_DIR/PDU.sock`: named here only, for the instance, its
/// clients, the gateway and lava-console.
pub fn socket_path(runtime_dir: &Path, pdu: &str) -> PathBuf {
    runtime_dir.join(format!("{pdu}.sock"))
}

/// Binds `RUNTIME_DIR/PDU.sock` (mode 0660), removing a stale socket left by a crash and refusing
/// when a live instance answers on it.
pub fn bind_socket(runtime_dir: &Path, pdu: &str) -> Result<UnixListener, ServeError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(runtime_dir).map_err(|source| ServeError::RuntimeDir {
        path: runtime_dir.to_owned(),
        source,
    })?;
    let path = socket_path(runtime_dir, pdu);
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(&path).is_ok() {
            return Err(ServeError::InUse {
                pdu: pdu.to_owned(),
                path,
            });
        }
        tracing::info!(path = %path.display(), "removing a stale socket");
        let _ = std::fs::remove_file(&path);
    }
    let listener = UnixListener::bind(&path).map_err(|source| ServeError::Bind {
        path: path.clone(),
        source,
    })?;
    if let Err(e) = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o660)) {
        tracing::warn!(path = %path.display(), error = %e, "cannot set the socket's mode");
    }
    Ok(listener)
}

/// Serves one PDU on an already bound socket (and TCP listener) until `shutdown` resolves; the
/// PDU's scheduler runs on the current runtime. Tests run instances in-process with it.
pub async fn run(
    name: &str,
    loaded: Loaded,
    socket: UnixListener,
    tcp: Option<TcpListener>,
    shutdown: impl Future<Output = ()>,
) {
    let pdu = Pdu::start(name, loaded);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let unix = tokio::spawn(crate::api::serve(
        socket,
        pdu.clone(),
        stopped(stop_rx.clone()),
    ));
    let tcp = tcp.map(|l| tokio::spawn(crate::api::serve(l, pdu.clone(), stopped(stop_rx))));
    shutdown.await;
    let _ = stop_tx.send(true);
    let _ = unix.await;
    if let Some(t) = tcp {
        let _ = t.await;
    }
}
