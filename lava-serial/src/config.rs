//! What one lava-serial instance serves, resolved from the registry (`lava-serial BOARD`) or from
//! flags (`lava-serial --device PATH --port N`): the validated config the library runs on.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};

use lava_common::registry::{self, Registry};
use lava_common::{ConfigError, Protocol, SerialSettings};

use crate::consolelog::LogConfig;
use crate::watch::Identity;

/// Everything the port owner and the server need.
#[derive(Debug, Clone)]
pub struct PortConfig {
    /// The board's name, as notices and the log show it.
    pub board: String,
    /// How its device is found.
    pub identity: Identity,
    /// Settings applied at open (and restored when the last client leaves).
    pub settings: SerialSettings,
    pub protocol: Protocol,
    /// Scrollback kept for `replay=`, in bytes.
    pub scrollback: usize,
    pub log: Option<LogConfig>,
}

/// Where to listen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listen {
    pub bind: String,
    pub port: u16,
}

impl Listen {
    /// The socket address to bind (names are resolved once, at start).
    pub fn addr(&self) -> Result<SocketAddr, ResolveError> {
        let host = self.bind.trim_start_matches('[').trim_end_matches(']');
        (host, self.port)
            .to_socket_addrs()
            .map_err(|e| ResolveError::Bind {
                bind: self.bind.clone(),
                reason: e.to_string(),
            })?
            .next()
            .ok_or_else(|| ResolveError::Bind {
                bind: self.bind.clone(),
                reason: "no address".into(),
            })
    }
}

/// Why an instance's config could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{path}: no board `{name}`{suggest}")]
    NoBoard {
        path: String,
        name: String,
        suggest: String,
    },
    #[error("{path}:{line}: board `{name}` is on host `{host}`, not on this host (`{this}`); run it there, or set LAVA_HOSTNAME")]
    OtherHost {
        path: String,
        line: usize,
        name: String,
        host: String,
        this: String,
    },
    #[error("{path}:{line}: board `{name}` has no local adapter and port (its console is `{console}`): nothing for lava-serial to serve")]
    NotServed {
        path: String,
        line: usize,
        name: String,
        console: String,
    },
    #[error("cannot use bind address `{bind}`: {reason}")]
    Bind { bind: String, reason: String },
}

/// Resolves `lava-serial BOARD` from the registry at `registry_path`.
pub fn from_registry(
    registry_path: &Path,
    name: &str,
    host: &str,
) -> Result<(PortConfig, Listen), ResolveError> {
    let reg = Registry::load(registry_path)?;
    board_config(&reg, name, host)
}

/// Resolves one board of a loaded registry.
pub fn board_config(
    reg: &Registry,
    name: &str,
    host: &str,
) -> Result<(PortConfig, Listen), ResolveError> {
    let path = reg.path.display().to_string();
    let Some(b) = reg.board(name) else {
        let s = reg.suggest(name);
        return Err(ResolveError::NoBoard {
            path,
            name: name.to_owned(),
            suggest: if s.is_empty() {
                String::new()
            } else {
                format!(" (did you mean {}?)", s.join(", "))
            },
        });
    };
    if !b.is_on_host(host) {
        return Err(ResolveError::OtherHost {
            path,
            line: b.line,
            name: b.name.clone(),
            host: b.host.clone().unwrap_or_default(),
            this: host.to_owned(),
        });
    }
    let (Some(adapter), Some(port)) = (b.adapter.clone(), b.port) else {
        return Err(ResolveError::NotServed {
            path,
            line: b.line,
            name: b.name.clone(),
            console: b.console.clone().unwrap_or_else(|| "none".into()),
        });
    };
    let cfg = PortConfig {
        board: b.name.clone(),
        identity: Identity::Adapter {
            board: b.name.clone(),
            adapter,
        },
        settings: b.serial,
        protocol: b.protocol,
        scrollback: b.scrollback_kib * 1024,
        log: Some(LogConfig {
            path: b.log_file(),
            max_bytes: b.log_size_mib.saturating_mul(1 << 20),
            keep: b.log_keep,
        }),
    };
    Ok((
        cfg,
        Listen {
            bind: b.bind.clone(),
            port,
        },
    ))
}

/// The board name a `--device` instance uses when `--name` is not given: the device's file name.
pub fn name_for_device(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "serial".to_owned())
}

/// The console log of a `--device` instance given `--log FILE`.
pub fn device_log(path: Option<PathBuf>, size_mib: u64, keep: usize) -> Option<LogConfig> {
    path.map(|path| LogConfig {
        path,
        max_bytes: size_mib.saturating_mul(1 << 20),
        keep,
    })
}

/// Defaults shared with the registry.
pub use registry::{DEFAULT_LOG_KEEP, DEFAULT_LOG_SIZE_MIB, DEFAULT_SCROLLBACK_KIB};
