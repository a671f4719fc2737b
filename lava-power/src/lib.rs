//! lava-power: one PDU per instance behind one small API, with a queue per PDU, real drivers, and a
//! gateway that speaks pdudaemon's protocols.

pub mod activation;
pub mod api;
pub mod cli;
pub mod client;
pub mod config;
pub mod driver;
pub mod drivers;
pub mod gateway;
pub mod http;
pub mod import;
pub mod listen;
pub mod queue;
pub mod serve;
pub mod wire;

pub use cli::command;
