//! The `modbus-tcp` driver against pymodbus's real Modbus/TCP server (tests/sim/modbus_server.py),
//! each coil read back with pymodbus's client; exceptions, an unreachable board, a silent one and
//! garbage answers.

use std::process::Command;
use std::time::Duration;

use lava_power::driver::{DriverError, OutletState};
use lava_power::drivers::modbus;

use crate::drivers_support::{
    assert_refused, config_error, load, sim_dir, spawn_ready, tcp_faults, venv_python, Probe, Proc,
};

/// pymodbus's server with 16 coils.
fn board() -> (Proc, u16) {
    let python = venv_python("pymodbus", "pymodbus");
    let mut cmd = Command::new(python);
    cmd.arg(sim_dir().join("modbus_server.py")).arg("16");
    spawn_ready(cmd)
}

/// Coils 0..16 as pymodbus's client reads them ("0 1 0 …").
fn coils(port: u16, unit: u8) -> String {
    let out = Command::new(venv_python("pymodbus", "pymodbus"))
        .arg(sim_dir().join("modbus_read.py"))
        .args([port.to_string(), unit.to_string(), "0".into(), "16".into()])
        .output()
        .expect("run modbus_read.py");
    assert!(out.status.success(), "modbus_read.py: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[tokio::test]
async fn switches_and_reads_coils_on_pymodbus() {
    let (_board, port) = board();
    let driver = load(
        modbus::load,
        &format!("driver = \"modbus-tcp\"\nhost = \"127.0.0.1\"\nport = {port}\ncoils = 16\n"),
    );
    assert!(driver.can_read());
    driver.set("3", OutletState::On).await.expect("on");
    assert_eq!(
        coils(port, 1),
        "0 0 1 0 0 0 0 0 0 0 0 0 0 0 0 0",
        "outlet 3 is coil 2"
    );
    assert_eq!(driver.get("3").await.expect("get"), OutletState::On);
    assert_eq!(driver.get("4").await.expect("get"), OutletState::Off);
    driver.set("16", OutletState::On).await.expect("on");
    driver.set("3", OutletState::Off).await.expect("off");
    assert_eq!(coils(port, 1), "0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 1");
    assert_eq!(driver.get("3").await.expect("get"), OutletState::Off);
    assert_eq!(driver.get("16").await.expect("get"), OutletState::On);
}

#[tokio::test]
async fn coil_offset_and_unit() {
    let (_board, port) = board();
    let driver = load(
        modbus::load,
        &format!(
            "driver = \"modbus-tcp\"\nhost = \"127.0.0.1\"\nport = {port}\nunit = 7\ncoil_offset = 8\ncoils = 8\n"
        ),
    );
    driver.set("1", OutletState::On).await.expect("on");
    assert_eq!(
        coils(port, 7),
        "0 0 0 0 0 0 0 0 1 0 0 0 0 0 0 0",
        "outlet 1 is coil 8"
    );
    assert_eq!(driver.get("1").await.expect("get"), OutletState::On);
    let e = driver
        .set("9", OutletState::On)
        .await
        .expect_err("beyond coils");
    assert!(matches!(e, DriverError::Refused(_)), "{e}");
}

#[tokio::test]
async fn exceptions_are_refused_with_their_name() {
    let (_board, port) = board();
    // The board has 16 coils; the config claims more.
    let driver = load(
        modbus::load,
        &format!("driver = \"modbus-tcp\"\nhost = \"127.0.0.1\"\nport = {port}\ncoils = 64\n"),
    );
    let e = driver
        .set("40", OutletState::On)
        .await
        .expect_err("no coil 39");
    assert_refused(&e, &["ILLEGAL DATA ADDRESS"]);
    let e = driver.get("40").await.expect_err("no coil 39");
    assert_refused(&e, &["ILLEGAL DATA ADDRESS"]);
    // The board keeps serving.
    driver.set("2", OutletState::On).await.expect("on");
}

#[tokio::test]
async fn faults() {
    tcp_faults(
        modbus::load,
        |port| format!("driver = \"modbus-tcp\"\nhost = \"127.0.0.1\"\nport = {port}\n"),
        "board",
        Duration::from_millis(300),
        &[
            &b"HTTP/1.1 400 Bad Request\r\n\r\n"[..],
            b"\x00\x01\x00\x00\x00\x03\x01\x05",
            b"",
        ],
        Probe::Get,
    )
    .await;
}

#[test]
fn config_errors_name_line_and_key() {
    let at = |text, line, key| config_error(modbus::load, text, line, key);
    let e = at(
        "driver = \"modbus-tcp\"\nhost = \"relay\"\ncoils = 8\n[outlets]\n\"1\" = \"a\"\n\"9\" = \"b\"\n",
        Some(6),
        "outlets.9",
    );
    assert!(e.to_string().contains("beyond coils = 8"), "{e}");
    at(
        "driver = \"modbus-tcp\"\nhost = \"relay\"\nunit = 300\n",
        Some(3),
        "unit",
    );
    at("driver = \"modbus-tcp\"\n", None, "host");
    at(
        "driver = \"modbus-tcp\"\nhost = \"relay\"\ncoil = 3\n",
        Some(3),
        "coil",
    );
}
