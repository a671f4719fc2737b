//! lava-serial's integration tests: real ptys as adapters (the test plays the board on the
//! master), real TCP clients, Debian's `telnet`, pyserial's rfc2217 client, and the binary itself.

mod adapter;
mod cli;
mod data;
mod demo;
mod hello;
mod log;
mod real_clients;
mod util;
