//! lava-serial: one board's serial line on a TCP port, shared by many clients, surviving its
//! adapter. A library so tests run the server in-process on a pre-bound listener; `main.rs` is a
//! thin wrapper around [`cli::main`].
//!
//! Layout: [`port`] owns the device (one task per port) and fills the output [`ring`] every
//! client reads, [`client`] serves one TCP client,
//! [`server`] binds and accepts, [`consolelog`] writes the always-on console log, [`config`]
//! resolves what to serve, [`cli`] is the command line, [`demo`] a simulated board on a pty.

pub mod cli;
pub mod client;
pub mod config;
pub mod consolelog;
pub mod demo;
pub mod device;
pub mod hello;
pub mod mem;
pub mod port;
pub mod ring;
pub mod server;
pub mod timefmt;
pub mod udev;
pub mod watch;

pub use cli::command;
pub use config::{Listen, PortConfig};
pub use server::{bind, run, ServeError};
