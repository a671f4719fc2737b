//! The udev side of lava-serial: `udev-identify`, `adapters`, and adapter property look-ups.

use std::path::PathBuf;

use lava_common::{AdapterProps, Registry};

/// Why the adapters could not be listed.
#[derive(Debug, thiserror::Error)]
pub enum UdevError {
    #[error("udev: {0}")]
    Udev(#[source] std::io::Error),
    #[error("cannot read {}: {source}", path.display())]
    Sysfs {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What `lava-serial udev-identify` prints: `LAVA_BOARD=<name>\n` when the registry knows the
/// adapter on this host.
pub fn identify(registry: &Registry, props: &AdapterProps, host: &str) -> Option<String> {
    registry
        .board_for_adapter(props, host)
        .map(|b| format!("LAVA_BOARD={}\n", b.name))
}

/// One USB serial adapter plugged in now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AdapterInfo {
    pub devnode: PathBuf,
    pub by_id: Vec<PathBuf>,
    pub props: AdapterProps,
    pub vendor: Option<String>,
    pub model: Option<String>,
    pub board: Option<String>,
}

/// The USB serial adapters plugged in now.
pub fn list_adapters(
    registry: Option<&Registry>,
    host: &str,
) -> Result<Vec<AdapterInfo>, UdevError> {
    let _ = (registry, host);
    Ok(Vec::new())
}

/// The listing as a table for `lava-serial adapters`.
pub fn format_adapters(list: &[AdapterInfo]) -> String {
    let _ = list;
    String::new()
}
