//! Shared pieces of the driver tests: finding external tools (failing with the package to install),
//! the simulators under tests/sim, child processes that die with the test, free ports read back.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use lava_power::config::Loaded;
use lava_power::driver::PowerDriver;

/// The directory of the simulators (tests/sim).
pub fn sim_dir() -> PathBuf {
    let dir = std::env::var_os("LAVA_POWER_SIM_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sim"));
    assert!(
        dir.join("snmp_outlets.py").is_file(),
        "simulators not found in {} (set LAVA_POWER_SIM_DIR)",
        dir.display()
    );
    dir
}

/// An executable on PATH (or in /usr/sbin), or a failed test naming the package that provides it.
pub fn tool(name: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::env::split_paths(&path).chain(["/usr/sbin".into(), "/sbin".into()]);
    for dir in dirs {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!("`{name}` not found on PATH: install the Debian package `{package}`");
}

/// The test venv's python (`$LAVA_TEST_VENV`, default /work/main/build/venv), with `module`
/// importable, or a failed test saying how to get it.
pub fn venv_python(module: &str, pip_package: &str) -> PathBuf {
    let venv = std::env::var_os("LAVA_TEST_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/work/main/build/venv"));
    let python = venv.join("bin/python");
    assert!(
        python.is_file(),
        "no python venv at {} (set LAVA_TEST_VENV): `python3 -m venv {0}` (Debian package python3-venv), then `{0}/bin/pip install {pip_package}`",
        venv.display()
    );
    let ok = Command::new(&python)
        .args(["-c", &format!("import {module}")])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "python module `{module}` missing in {}: `{}/bin/pip install {pip_package}`",
        venv.display(),
        venv.display()
    );
    python
}

/// The system python3 for the simulators that need only the standard library.
pub fn python3() -> PathBuf {
    tool("python3", "python3")
}

/// A child process killed (and reaped) when the test ends, pass or fail.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts a simulator that prints `READY <port>` on stdout once it listens; returns it and the port.
/// Its further output is drained (and echoed to the test's stderr) so it never blocks.
pub fn spawn_ready(mut cmd: Command) -> (Proc, u16) {
    cmd.stdout(Stdio::piped()).stderr(Stdio::inherit());
    let mut child = Proc(cmd.spawn().expect("start simulator"));
    let stdout = child.0.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let port = loop {
        match lines.next() {
            Some(Ok(line)) => {
                if let Some(p) = line.strip_prefix("READY ") {
                    break p.trim().parse::<u16>().expect("READY <port>");
                }
                eprintln!("sim: {line}");
            }
            _ => {
                let status = child.0.wait().ok();
                panic!("simulator exited before it was ready ({status:?}): {cmd:?}");
            }
        }
    };
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            eprintln!("sim: {line}");
        }
    });
    (child, port)
}

/// Loads a driver from config text, panicking with the located error.
pub fn load(
    loader: fn(&lava_common::Source) -> Result<Loaded, lava_common::ConfigError>,
    text: &str,
) -> Arc<dyn PowerDriver> {
    let src = lava_common::Source::from_text("test-pdu.toml", text);
    match loader(&src) {
        Ok(l) => l.driver,
        Err(e) => panic!("config did not load: {e}"),
    }
}

/// Loads a config that must fail, returning the error text.
pub fn load_err(
    loader: fn(&lava_common::Source) -> Result<Loaded, lava_common::ConfigError>,
    text: &str,
) -> lava_common::ConfigError {
    let src = lava_common::Source::from_text("test-pdu.toml", text);
    match loader(&src) {
        Ok(_) => panic!("config loaded but must not:\n{text}"),
        Err(e) => e,
    }
}

/// A TCP port nobody listens on (bound, read back, closed).
pub fn closed_tcp_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// A TCP listener that accepts and then never says anything (a hung PDU).
pub async fn silent_tcp_peer() -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = l.local_addr().expect("addr").port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = l.accept().await {
            held.push(s);
        }
    });
    port
}

/// A TCP listener that answers every connection with `garbage` and closes.
pub async fn garbage_tcp_peer(garbage: &'static [u8]) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = l.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 512];
                let _ = s.read(&mut buf).await;
                let _ = s.write_all(garbage).await;
                let _ = s.shutdown().await;
            });
        }
    });
    port
}
