//! The `lava-power` binary: bad configs stop `serve` at once with a located message, `check`,
//! the client commands' exit codes and one-line reasons, SIGTERM → exit 0.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt;

use crate::support::Lab;

fn bin() -> Command {
    Command::cargo_bin("lava-power").expect("binary")
}

#[test]
fn serve_with_a_bad_config_exits_at_once_naming_file_line_and_key() {
    let lab = Lab::new();
    let cases = [
        ("typo", "driver = \"command\"\non = [\"a\"]\noff = [\"b\"]\nretires = 3\n", ":4: key `retires`"),
        ("nodriver", "driver = \"telepathy\"\n", ":1: key `driver`: unknown driver `telepathy`"),
        ("range", "driver = \"command\"\non = [\"a\"]\noff = [\"b\"]\noutlet_count = 4\n[outlets]\n\"5\" = \"x\"\n", ":6: key `outlets.5`"),
    ];
    for (name, text, expect) in cases {
        let cfg = lab.config(name, text);
        let t0 = Instant::now();
        let out = bin()
            .args(["--runtime-dir"])
            .arg(&lab.runtime)
            .args(["serve", "--config"])
            .arg(&cfg)
            .output()
            .expect("run");
        assert!(t0.elapsed() < Duration::from_secs(5));
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&format!("{}{expect}", cfg.display())), "{err}");
        assert!(!lab.runtime.join(format!("{name}.sock")).exists());
    }
    let out = bin()
        .args(["serve", "--config-dir"])
        .arg(lab.dir.path())
        .arg("missing")
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.toml: cannot read"));
}

#[test]
fn check_validates_and_summarises() {
    let lab = Lab::new();
    let good = lab.command_pdu("good", "outlet_count = 8");
    let out = bin().arg("check").arg(&good).output().expect("run");
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok: PDU good, driver command"));
    let bad = lab.config("bad", "driver = \"command\"\n");
    let out = bin()
        .arg("check")
        .arg(&good)
        .arg(&bad)
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing field `on`"));
}

#[test]
fn serve_then_client_commands_then_sigterm() {
    let lab = Lab::new();
    let cfg = lab.command_pdu(
        "rack1",
        "reboot_delay = \"100ms\"\n[outlets]\n\"3\" = \"panda01\"",
    );
    let mut child = bin()
        .env("RUST_LOG", "info")
        .arg("--runtime-dir")
        .arg(&lab.runtime)
        .args(["serve", "--config"])
        .arg(&cfg)
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    // Ready when it logs "serving".
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut line = String::new();
    while !line.contains("serving") {
        line.clear();
        assert!(
            stderr.read_line(&mut line).expect("read") > 0,
            "exited early"
        );
    }
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    let run = |args: &[&str]| {
        bin()
            .arg("--runtime-dir")
            .arg(&lab.runtime)
            .args(args)
            .output()
            .expect("run")
    };
    let out = run(&["reboot", "rack1", "panda01"]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("rack1 outlet 3: reboot done (2 attempts")
    );
    let out = run(&["status", "rack1", "3"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "rack1 outlet 3 (panda01): on (remembered: the last state set here; this PDU cannot be read)\n"
    );
    let out = run(&["list"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("rack1: command driver, 0 queued"));
    let out = run(&["on", "nowhere", "1"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("is lava-power@nowhere running?"), "{err}");
    assert_eq!(lab.switched("rack1"), ["3 off", "3 on"]);

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("kill");
    let status = child.wait().expect("wait");
    assert!(status.success(), "{status:?}");
    assert!(!lab.runtime.join("rack1.sock").exists());
}

#[test]
fn import_pdudaemon_writes_loadable_configs() {
    let lab = Lab::new();
    let conf = lab.path("pdudaemon.conf");
    std::fs::write(
        &conf,
        r#"{"daemon":{"hostname":"0.0.0.0"},"pdus":{
            "test":{"driver":"localcmdline","cmd_on":"echo '%s on' >> /tmp/pdu","cmd_off":"echo '%s off' >> /tmp/pdu"},
            "usbhub":{"driver":"ykush"}}}"#,
    )
    .expect("write");
    let out_dir = lab.path("etc");
    let out = bin()
        .arg("import-pdudaemon")
        .arg(&conf)
        .arg("--out")
        .arg(&out_dir)
        .output()
        .expect("run");
    assert!(!out.status.success(), "one PDU could not be converted");
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("usbhub: not converted: pdudaemon's `ykush` driver"));
    let out = bin()
        .arg("check")
        .arg(out_dir.join("test.toml"))
        .output()
        .expect("run");
    assert!(out.status.success(), "{out:?}");
}
