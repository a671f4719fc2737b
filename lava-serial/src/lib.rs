//! lava-serial library.
