//! lava-power: one PDU per instance behind one small API, with a queue per PDU, real drivers, and a
//! gateway that speaks pdudaemon's protocols.

pub mod client;
pub mod config;
pub mod driver;
pub mod drivers;
pub mod http;
pub mod wire;
