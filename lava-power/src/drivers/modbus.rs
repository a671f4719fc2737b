//! lava-power driver: modbus (being written).
