//! lava-power driver: apc_telnet (being written).
