//! lava-power driver: http (being written).
