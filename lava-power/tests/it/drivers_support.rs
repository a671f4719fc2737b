//! Shared pieces of the driver tests: finding external tools (failing with the package to install),
//! the simulators under tests/sim, child processes that die with the test, free ports read back.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use lava_common::ConfigError;
use lava_power::config::Loaded;
use lava_power::driver::{DriverError, OutletState, PowerDriver};

pub use crate::support::tool;

/// A driver's config loader (`snmp::load`, `http::load`, …).
pub type Loader = fn(&lava_common::Source) -> Result<Loaded, ConfigError>;

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

/// Starts the simulator `script` from tests/sim with the system python3, its state or log file
/// `file` in a fresh temp dir as the first argument, then `extra`; returns it, its port and the dir.
pub fn spawn_sim(script: &str, file: &str, extra: &[&str]) -> (Proc, u16, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cmd = Command::new(python3());
    cmd.arg(sim_dir().join(script))
        .arg(dir.path().join(file))
        .args(extra);
    let (proc, port) = spawn_ready(cmd);
    (proc, port, dir)
}

/// The outlet states a simulator keeps in `state.json` in its dir.
pub fn sim_state(dir: &Path) -> HashMap<String, String> {
    let text = std::fs::read_to_string(dir.join("state.json")).expect("state");
    serde_json::from_str(&text).expect("state json")
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
pub fn load(loader: Loader, text: &str) -> Arc<dyn PowerDriver> {
    let src = lava_common::Source::from_text("test-pdu.toml", text);
    match loader(&src) {
        Ok(l) => l.driver,
        Err(e) => panic!("config did not load: {e}"),
    }
}

/// Loads a config that must fail, returning the error.
pub fn load_err(loader: Loader, text: &str) -> ConfigError {
    let src = lava_common::Source::from_text("test-pdu.toml", text);
    match loader(&src) {
        Ok(_) => panic!("config loaded but must not:\n{text}"),
        Err(e) => e,
    }
}

/// Loads a config that must fail on `key`, at `line` when given; returns the error for more checks.
pub fn config_error(loader: Loader, text: &str, line: Option<usize>, key: &str) -> ConfigError {
    let e = load_err(loader, text);
    match line {
        Some(line) => assert_eq!((e.line(), e.key()), (line, key), "{e}"),
        None => assert_eq!(e.key(), key, "{e}"),
    }
    e
}

/// The driver refused, in words that contain each of `words` (the PDU's own reason).
pub fn assert_refused(e: &DriverError, words: &[&str]) {
    assert!(
        matches!(e, DriverError::Refused(m) if words.iter().all(|w| m.contains(w))),
        "{e}"
    );
}

/// What a fault is probed with: switching outlet 1 on, or reading it.
#[derive(Debug, Clone, Copy)]
pub enum Probe {
    Set,
    Get,
}

impl Probe {
    async fn run(self, driver: &dyn PowerDriver) -> Result<(), DriverError> {
        match self {
            Probe::Set => driver.set("1", OutletState::On).await,
            Probe::Get => driver.get("1").await.map(drop),
        }
    }
}

/// The faults every TCP driver meets alike, `config(port)` being its config for a peer on
/// 127.0.0.1:`port`: nobody listening is Unreachable; a `peer` that accepts and never answers
/// leaves the attempt to the timeout (no answer within `silent_for`); each of `garbage` as the
/// answer is a BadAnswer (probed with `garbage_probe`).
pub async fn tcp_faults(
    loader: Loader,
    config: impl Fn(u16) -> String,
    peer: &str,
    silent_for: Duration,
    garbage: &[&'static [u8]],
    garbage_probe: Probe,
) {
    let driver = load(loader, &config(closed_tcp_port()));
    let e = Probe::Set.run(&*driver).await.expect_err("closed");
    assert!(matches!(e, DriverError::Unreachable(_)), "{e}");

    let driver = load(loader, &config(silent_tcp_peer().await));
    let r = tokio::time::timeout(silent_for, Probe::Set.run(&*driver)).await;
    assert!(
        r.is_err(),
        "a silent {peer} leaves the attempt to the timeout: {r:?}"
    );

    for &garbage in garbage {
        let driver = load(loader, &config(garbage_tcp_peer(garbage).await));
        let e = garbage_probe.run(&*driver).await.expect_err("garbage");
        assert!(matches!(e, DriverError::BadAnswer(_)), "{garbage:?}: {e}");
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
