//! Shared pieces of the lava-serial suite: the board registry and its located errors, serial line
//! settings, the telnet/RFC 2217 codec, logging, systemd notification and the shutdown signal.

pub mod config;
pub mod logging;
pub mod notify;
pub mod registry;
pub mod serial;
pub mod shutdown;
pub mod telnet;

pub use config::{ConfigError, Source};
pub use registry::{Adapter, AdapterProps, Board, Power, Registry};
pub use serial::{FlowControl, Format, Parity, Protocol, SerialSettings, StopBits};
