//! Logging setup for every binary of the suite: `tracing` events go to journald (with their fields
//! as journal fields) when systemd started the process, and to stderr otherwise.
//!
//! The journald side is `tracing-journald`, the `tracing` subscriber layer that writes the native
//! journal protocol; no `log` bridge is involved.

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

/// Whether stderr is connected to the journal (systemd sets `JOURNAL_STREAM` to its device:inode).
pub fn stderr_is_journal() -> bool {
    use std::os::unix::fs::MetadataExt;
    let Some(stream) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = stream.to_str().and_then(|s| s.split_once(':')) else {
        return false;
    };
    match std::fs::metadata("/proc/self/fd/2") {
        Ok(m) => m.dev().to_string() == dev && m.ino().to_string() == ino,
        Err(_) => false,
    }
}

/// Installs the global subscriber. `RUST_LOG` overrides `default_filter` (e.g. `"info"`).
/// Calling it twice is harmless (the second call does nothing).
pub fn init(component: &'static str, default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let registry = tracing_subscriber::registry().with(filter);
    if stderr_is_journal() {
        if let Ok(journald) = tracing_journald::layer() {
            // Our field names (board, client, pdu, outlet, ...) clash with no journal field, so
            // they go in as BOARD=, CLIENT=, ... without the layer's default `F_` prefix.
            let journald = journald
                .with_syslog_identifier(component.to_owned())
                .with_field_prefix(None);
            let _ = registry.with(journald).try_init();
            return;
        }
    }
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = registry.with(fmt).try_init();
}
