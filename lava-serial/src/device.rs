//! lava-serial: device (being written).
