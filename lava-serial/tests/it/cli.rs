//! The binary: located config errors, a clean error for a bad port number, a port already in use,
//! SIGTERM, `check` and `udev-identify`.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::prelude::*;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_lava-serial"));
    c.env_remove("LAVA_BOARDS")
        .env("LAVA_HOSTNAME", "worker01")
        .env("RUST_LOG", "info");
    c
}

fn registry(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::Builder::new()
        .suffix(".toml")
        .tempfile()
        .expect("temp file");
    f.write_all(text.as_bytes()).expect("write");
    f
}

fn fails_naming(text: &str, line: usize, key: &str, words: &str) {
    let f = registry(text);
    let path = f.path().display().to_string();
    for args in [
        vec!["check", path.as_str()],
        vec!["b1", "--boards", path.as_str()],
    ] {
        let out = bin().args(&args).output().expect("runs");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} must fail");
        assert_eq!(out.status.code(), Some(2), "config errors exit 2: {err}");
        let located = format!("{path}:{line}: key `{key}`");
        assert!(
            err.contains(&located),
            "{args:?}: expected `{located}` in {err}"
        );
        assert!(err.contains(words), "{args:?}: expected `{words}` in {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn unknown_key_is_named_with_file_and_line() {
    fails_naming(
        "[boards.b1]\nport = 7001\nadapter = { serial = \"A1\" }\nbaudrate = 9600\n",
        4,
        "boards.b1.baudrate",
        "unknown field",
    );
}

#[test]
fn duplicate_port_is_named_with_file_and_line() {
    fails_naming(
        "[boards.b1]\nport = 7001\nadapter = { serial = \"A1\" }\n\n[boards.b2]\nport = 7001\nadapter = { serial = \"A2\" }\n",
        6,
        "boards.b2.port",
        "already used by board `b1`",
    );
}

#[test]
fn board_without_adapter_or_console_is_named() {
    fails_naming(
        "[boards.b1]\nport = 7001\nadapter = { serial = \"A1\" }\n\n[boards.b2]\nport = 7002\n",
        5,
        "boards.b2",
        "neither `adapter` nor `console`",
    );
}

#[test]
fn out_of_range_port_is_a_clean_usage_error() {
    let out = bin()
        .args(["--device", "/dev/null", "--port", "99999"])
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("99999") && err.contains("--port"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn a_port_in_use_fails_at_once() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = busy.local_addr().expect("addr").port().to_string();
    let started = Instant::now();
    let out = bin()
        .args(["--device", "/nonexistent/tty", "--port", &port])
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        err.contains(&format!("cannot listen on 127.0.0.1:{port}")) && err.contains("in use"),
        "{err}"
    );
}

#[test]
fn an_address_that_cannot_be_bound_fails_at_once() {
    let out = bin()
        .args([
            "--device",
            "/nonexistent/tty",
            "--port",
            "0",
            "--bind",
            "192.0.2.1",
        ])
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("cannot listen on 192.0.2.1:0"), "{err}");
}

#[test]
fn sigterm_is_a_clean_exit_after_ready() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sock_path = dir.path().join("notify");
    let sock = std::os::unix::net::UnixDatagram::bind(&sock_path).expect("notify socket");
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut child = bin()
        .args(["--device", "/nonexistent/tty", "--port", "0"])
        .env("NOTIFY_SOCKET", &sock_path)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut buf = [0u8; 512];
    let n = sock.recv(&mut buf).expect("READY=1 from the service");
    let msg = String::from_utf8_lossy(&buf[..n]);
    assert!(
        msg.contains("READY=1") && msg.contains("STATUS=serving tty on 127.0.0.1:"),
        "{msg}"
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("kill");
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(0), "SIGTERM exits 0");
}

#[test]
fn check_prints_what_each_board_resolves_to() {
    let f = registry(
        "[defaults]\nbaud = 115200\n[boards.panda01]\nhost = \"worker01\"\nport = 7001\nadapter = { serial = \"FTDI_A601\" }\npower = { pdu = \"magic-hack\", outlet = \"3\" }\n[boards.juno01]\nconsole = \"ts01.lab:7010\"\n",
    );
    let out = bin().arg("check").arg(f.path()).assert().success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(text.contains("ok, 2 boards"), "{text}");
    assert!(text.contains("panda01 (line 3)"), "{text}");
    assert!(
        text.contains("serves:   127.0.0.1:7001 (telnet) adapter serial=FTDI_A601"),
        "{text}"
    );
    assert!(text.contains("power:    pdu magic-hack outlet 3"), "{text}");
    assert!(text.contains("console:  ts01.lab:7010"), "{text}");
}

#[test]
fn udev_identify_prints_the_board_or_nothing() {
    let f = registry(
        "[boards.panda01]\nport = 7001\nadapter = { serial = \"FTDI_A601\", interface = 2 }\n",
    );
    bin()
        .args(["udev-identify", "--boards"])
        .arg(f.path())
        .env("ID_SERIAL_SHORT", "FTDI_A601")
        .env("ID_USB_INTERFACE_NUM", "02")
        .assert()
        .success()
        .stdout("LAVA_BOARD=panda01\n");
    bin()
        .args(["udev-identify", "--boards"])
        .arg(f.path())
        .env("ID_SERIAL_SHORT", "SOMETHING_ELSE")
        .assert()
        .success()
        .stdout("");
}

#[test]
fn no_board_and_no_device_is_a_usage_error() {
    let out = bin().output().expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("give a BOARD"));
}

#[test]
fn unknown_board_suggests_names() {
    let f = registry("[boards.panda01]\nport = 7001\nadapter = { serial = \"X\" }\n");
    let out = bin()
        .arg("pand01")
        .arg("--boards")
        .arg(f.path())
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("no board `pand01`") && err.contains("panda01"),
        "{err}"
    );
}
