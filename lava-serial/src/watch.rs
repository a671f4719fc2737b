//! Knowing when a board's device is there: inotify on a `--device` path's directories, or a udev
//! monitor on the registry's adapter identity. Event-driven only: while idle the process sleeps.

use std::path::PathBuf;

/// What identifies a board's device, whatever node the kernel gives it.
#[derive(Debug, Clone)]
pub enum Identity {
    /// `--device PATH`: the path itself (often a symlink).
    Path(PathBuf),
    /// `lava-serial BOARD`: the registry's adapter, matched on udev properties.
    Adapter {
        board: String,
        adapter: lava_common::Adapter,
    },
}

/// Why watching failed.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("cannot watch {}: {source}", path.display())]
    Inotify {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("udev: {0}")]
    Udev(std::io::Error),
}

/// Watches one identity.
#[derive(Debug)]
pub struct Watcher {
    identity: Identity,
}

impl Watcher {
    /// Starts watching.
    pub fn new(identity: Identity) -> Result<Watcher, WatchError> {
        Ok(Watcher { identity })
    }

    /// The device node to open now, if present.
    pub fn current(&self) -> Option<PathBuf> {
        match &self.identity {
            Identity::Path(p) => std::fs::canonicalize(p).ok(),
            Identity::Adapter { .. } => None,
        }
    }

    /// Waits until the identity appears and returns the node to open. Cancel-safe.
    pub async fn appeared(&mut self) -> Result<PathBuf, WatchError> {
        loop {
            if let Some(p) = self.current() {
                return Ok(p);
            }
            std::future::pending::<()>().await;
        }
    }

    /// Waits until the identity disappears. Cancel-safe.
    pub async fn vanished(&mut self) -> Result<(), WatchError> {
        std::future::pending::<()>().await;
        Ok(())
    }
}
