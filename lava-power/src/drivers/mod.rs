//! The PDU drivers, and the dispatch from a config's `driver` key to the one that reads it.

pub mod apc_telnet;
pub mod command;
pub mod http;
pub mod modbus;
pub mod snmp;

use lava_common::{ConfigError, Source};

use crate::config::Loaded;

/// Every value the `driver` key accepts.
pub const NAMES: &[&str] = &[
    "command",
    "snmp",
    "apc-snmp",
    "apc-telnet",
    "modbus-tcp",
    "http",
];

/// Builds the driver a config names; `span` is where the `driver` value is written.
pub fn load(
    driver: &str,
    span: std::ops::Range<usize>,
    src: &Source,
) -> Result<Loaded, ConfigError> {
    match driver {
        "command" => command::load(src),
        "snmp" | "apc-snmp" => snmp::load(src),
        "apc-telnet" => apc_telnet::load(src),
        "modbus-tcp" => modbus::load(src),
        "http" => http::load(src),
        other => Err(src.invalid(
            Some(span),
            "driver",
            format!("unknown driver `{other}`"),
            Some(format!("use one of: {}", NAMES.join(", "))),
        )),
    }
}
