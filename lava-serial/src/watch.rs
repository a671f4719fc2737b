//! lava-serial: watch (being written).
