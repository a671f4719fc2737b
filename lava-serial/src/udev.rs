//! lava-serial: udev (being written).
