//! The binary: located config errors, a clean error for a bad port number, a port already in use,
//! SIGTERM, `check`, `udev-identify`, `list-local`, and the boot-time generator script that runs it.

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

/// `list-local` on this registry text, as host `worker01`: (exit code, stdout, stderr).
fn list_local(text: &str) -> (Option<i32>, String, String) {
    let f = registry(text);
    let out = bin()
        .args(["list-local", "--boards"])
        .arg(f.path())
        .output()
        .expect("runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn list_local_prints_the_boards_this_host_serves() {
    let (code, out, err) = list_local(
        "# the lab\n\
         [boards.here]\nhost = \"worker01\"\nport = 7001\nadapter = { serial = \"A1\" }\n\
         [boards.fqdn]\nhost = \"WORKER01.lab.example\"\nport = 7002\nadapter = { serial = \"A2\" }\n\
         [boards.anywhere]\nport = 7003\nadapter = { serial = \"A3\" } # host unset: every host\n\
         [boards.elsewhere]\nhost = \"worker02\"\nport = 7004\nadapter = { serial = \"A4\" }\n\
         [boards.ts]\nconsole = \"ts01.lab:7010\"\n\
         [boards.\"quoted.name\"]\nport = 7005\n[boards.\"quoted.name\".adapter]\nserial = \"A5\"\n\
         [boards.dotted]\nport = 7006\nadapter.serial = \"A6\"\naliases = [\n  \"d1\",\n  \"d2\",\n]\n",
    );
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out, "anywhere\ndotted\nfqdn\nhere\nquoted.name\n");
    assert_eq!(err, "");
}

#[test]
fn list_local_applies_the_default_host() {
    let text = "[defaults]\nhost = \"worker02\"\n\
                [boards.theirs]\nport = 7001\nadapter = { serial = \"A1\" }\n\
                [boards.ours]\nhost = \"worker01\"\nport = 7002\nadapter = { serial = \"A2\" }\n";
    let (code, out, err) = list_local(text);
    assert_eq!((code, out.as_str()), (Some(0), "ours\n"), "{err}");
    let f = registry(text);
    bin()
        .args(["list-local", "--boards"])
        .arg(f.path())
        .env("LAVA_HOSTNAME", "worker02.lab")
        .assert()
        .success()
        .stdout("theirs\n");
}

#[test]
fn list_local_without_a_registry_prints_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("boards.toml");
    bin()
        .arg("list-local")
        .env("LAVA_BOARDS", &missing)
        .assert()
        .success()
        .stdout("")
        .stderr("");
    // A file named on the command line must exist: a typo is not an empty lab.
    let out = bin()
        .args(["list-local", "--boards"])
        .arg(&missing)
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(&missing.display().to_string()), "{err}");
}

#[test]
fn list_local_refuses_an_invalid_registry_with_its_location() {
    let f = registry("[boards.b1]\nport = 7001\nadapter = { serial = \"A1\" }\nspeed = 9600\n");
    let out = bin()
        .arg("list-local")
        .env("LAVA_BOARDS", f.path())
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "", "nothing listed");
    let located = format!("{}:4: key `boards.b1.speed`", f.path().display());
    assert!(err.contains(&located), "expected `{located}` in {err}");
}

/// Runs the boot-time generator script on `text` as host `worker01` with the built binary; returns
/// the names in `lava-serial.target.wants` (each checked to link to the template) and its stderr.
fn generate(text: &str) -> (Vec<String>, String) {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../systemd/lava-serial-generator"
    );
    let f = registry(text);
    let dir = tempfile::tempdir().expect("tempdir");
    let unit = dir.path().join("lava-serial@.service");
    std::fs::write(&unit, "[Service]\n").expect("template");
    let normal = dir.path().join("normal");
    let (early, late) = (dir.path().join("early"), dir.path().join("late"));
    for d in [&normal, &early, &late] {
        std::fs::create_dir(d).expect("output dir");
    }
    let out = Command::new("sh")
        .arg(script)
        .args([&normal, &early, &late])
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("LAVA_SERIAL", env!("CARGO_BIN_EXE_lava-serial"))
        .env("LAVA_SERIAL_UNIT", &unit)
        .env("LAVA_BOARDS", f.path())
        .env("LAVA_HOSTNAME", "worker01")
        .output()
        .expect("runs sh");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "a generator never fails: {err}");
    for d in [&early, &late] {
        let n = std::fs::read_dir(d).expect("read").count();
        assert_eq!(n, 0, "{} written to", d.display());
    }
    let wants = normal.join("lava-serial.target.wants");
    let mut names = Vec::new();
    if let Ok(entries) = std::fs::read_dir(&wants) {
        for e in entries {
            let e = e.expect("entry");
            let target = std::fs::read_link(e.path()).expect("a symlink");
            assert_eq!(target, unit, "{:?} links elsewhere", e.file_name());
            names.push(e.file_name().to_string_lossy().into_owned());
        }
    }
    names.sort();
    (names, err)
}

#[test]
fn the_generator_wants_an_instance_for_every_local_board() {
    let (names, err) = generate(
        "[defaults]\nhost = \"worker01\"\n\
         [boards.\"panda-01\"]\nport = 7001\nadapter = { serial = \"A1\" }\n\
         [boards.beagle_02]\nport = 7002\n[boards.beagle_02.adapter]\nserial = \"A2\"\n\
         [boards.far]\nhost = \"worker02\"\nport = 7003\nadapter = { serial = \"A3\" }\n\
         [boards.ts]\nconsole = \"ts01.lab:7010\"\n",
    );
    assert_eq!(
        names,
        [
            "lava-serial@beagle_02.service",
            "lava-serial@panda-01.service"
        ],
        "{err}"
    );
    assert_eq!(err, "");
}

#[test]
fn the_generator_makes_nothing_for_an_invalid_registry_and_says_why() {
    let (names, err) = generate(
        "[boards.b1]\nport = 7001\nadapter = { serial = \"A1\" }\n\n[boards.b2]\nport = 7001\nadapter = { serial = \"A2\" }\n",
    );
    assert!(names.is_empty(), "{names:?}");
    assert!(
        err.starts_with("lava-serial-generator: ")
            && err.contains(":6: key `boards.b2.port`")
            && err.contains("already used by board `b1`"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "one log record: {err}");
}
