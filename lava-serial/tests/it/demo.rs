//! `lava-serial demo`, the README's first command: a simulated board that boots, logs in `root`,
//! answers `uname -a`, and boots again when its power file goes off and on.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::util::*;

struct Demo(std::process::Child);

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.0.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.0.wait();
    }
}

#[test]
fn demo_boots_logs_in_and_follows_its_power_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let power = dir.path().join("power");
    std::fs::write(&power, "on\n").expect("power on");
    let mut child = Command::new(env!("CARGO_BIN_EXE_lava-serial"))
        .args(["demo", "--port", "0", "--protocol", "raw", "--power-file"])
        .arg(&power)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn demo");
    let stdout = child.stdout.take().expect("stdout");
    let demo = Demo(child);
    let mut port = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("demo output");
        if let Some(p) = line.trim().strip_prefix("connect:") {
            port = p
                .split_whitespace()
                .nth(2)
                .and_then(|p| p.parse::<u16>().ok());
            break;
        }
    }
    let port = port.expect("the demo prints how to connect");
    let mut c = Conn::connect(([127, 0, 0, 1], port).into());
    // Replay is not asked for: the boot log arrives live (it takes about 1.5 s).
    c.read_until_contains(b"panda01 login: ");
    assert!(contains(&c.got, b"Starting kernel") || contains(&c.got, b"Welcome to Debian"));
    c.send(b"root\r");
    c.read_until_contains(b"root@panda01:~# ");
    c.send(b"uname -a\r");
    c.read_until_contains(b"Linux panda01 6.1.0-lava");
    // Power off: silence; power on: the boot log again.
    std::fs::write(&power, "off\n").expect("power off");
    // Off is silence: Enter no longer gets a prompt (it does until the demo saw the file).
    let end = std::time::Instant::now() + DEADLINE;
    loop {
        assert!(std::time::Instant::now() < end, "the board never went off");
        c.got.clear();
        c.send(b"\r");
        let quiet = !c.read_some() && !c.read_some();
        if quiet {
            break;
        }
    }
    std::fs::write(&power, "on\n").expect("power on");
    c.got.clear();
    c.read_until_contains(b"U-Boot");
    c.read_until_contains(b"panda01 login: ");
    drop(demo);
}
