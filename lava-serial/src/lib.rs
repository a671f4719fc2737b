//! lava-serial: one board's serial line on a TCP port, shared by many clients, surviving its adapter.

pub mod device;
pub mod udev;
pub mod watch;
