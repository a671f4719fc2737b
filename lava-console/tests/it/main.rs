//! lava-console's integration tests: every one runs the real binaries (lava-serial on a pty
//! board, lava-power with the command driver, lava-console on a pty or a pipe).

mod harness;

mod commands;
mod interactive;
mod pipe;
mod power;
