//! lava-power library.
