//! lava-console library.
