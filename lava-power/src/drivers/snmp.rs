//! lava-power driver: snmp (being written).
