//! Power from the command line: `--hardreset`, `--on`, `--off`, `--status` through lava-power.

use std::net::TcpListener;

use crate::harness::Lab;

#[test]
fn hardreset_switches_off_then_on_and_says_so() {
    let lab = Lab::start();
    let out = lab.run(["--hardreset", "panda01"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(lab.pdu.log(), "off 3\non 3\n");
    assert_eq!(stdout.lines().count(), 1, "one line: {stdout}");
    assert!(
        stdout.starts_with("panda01: hardreset done (PDU magic-hack outlet 3"),
        "{stdout}"
    );
}

#[test]
fn on_off_status() {
    let lab = Lab::start();
    let run = |verb: &str| {
        let out = lab.run([verb, "panda-1"]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{verb}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    run("--off");
    assert!(run("--status").contains("power is off"));
    run("--on");
    assert!(run("--status").contains("power is on"));
    assert_eq!(lab.pdu.log(), "off 3\non 3\n");
}

#[test]
fn failing_pdu_exits_non_zero_with_the_reason() {
    let lab = Lab::start();
    let out = lab.run(["--hardreset", "bad01"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad01: hardreset FAILED"), "{err}");
    assert!(
        err.contains("relay 7 is jammed"),
        "the PDU's reason is shown: {err}"
    );
    assert!(out.stdout.is_empty());
    assert_eq!(lab.bad_pdu.name, "bad-pdu");
}

#[test]
fn unreachable_lava_power_is_a_clear_error() {
    let lab = Lab::start();
    // A port with nothing listening: bind, read it, close.
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let out = lab
        .console()
        .env("LAVA_POWER_GATEWAY", format!("127.0.0.1:{port}"))
        .args(["--hardreset", "nopower01"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nopower01: hardreset FAILED"), "{err}");
    assert!(
        err.contains(&format!(
            "cannot reach lava-power gateway at 127.0.0.1:{port}"
        )),
        "{err}"
    );
}

#[test]
fn board_without_power_says_why() {
    let lab = Lab::start();
    let reg = lab.dir.path().join("nopower.toml");
    std::fs::write(&reg, "[boards.lonely]\nconsole = \"127.0.0.1:9\"\n").expect("write");
    let out = lab
        .console()
        .arg("--boards")
        .arg(&reg)
        .args(["--on", "lonely"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no `power"));
}
