//! lava-power's integration tests, one binary: the queue (paused time), the command driver and its
//! faults with real processes, the instance API and the gateway against real clients (pduclient,
//! curl), the command line (assert_cmd), and each driver against its real peer.

mod activation;
mod cli;
mod faults;
mod gateway;
mod load;
mod queueing;
mod support;

mod drivers_apc_telnet;
mod drivers_http;
mod drivers_modbus;
mod drivers_snmp;
mod drivers_support;
