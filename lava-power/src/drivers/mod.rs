//! The PDU drivers, and the dispatch from a config's `driver` key to the one that reads it.

pub mod apc_telnet;
pub mod http;
pub mod modbus;
pub mod snmp;
