//! The other commands: lookup errors, --list/--json, --lava-dict run the way LAVA runs it, --help.

use std::process::{Command, Stdio};

use crate::harness::{bin, path_env, Lab, OnPty};

#[test]
fn unknown_board_suggests_the_closest() {
    let lab = Lab::start();
    let out = lab.run(["pand01"]);
    assert_ne!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no board named `pand01`"), "{err}");
    assert!(
        err.contains("did you mean") && err.contains("`panda01`"),
        "{err}"
    );
}

#[test]
fn missing_registry_is_named() {
    let out = Command::new(bin("lava-console"))
        .args(["--boards", "/nonexistent/boards.toml", "panda01"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/boards.toml"));
}

#[test]
fn list_shows_every_board_and_json_too() {
    let lab = Lab::start();
    let reg = lab.dir.path().join("list.toml");
    let text = std::fs::read_to_string(&lab.boards_toml).expect("read")
        + "\n[boards.dead01]\nconsole = \"127.0.0.1:1\"\npower = { pdu = \"apc\", outlet = \"9\" }\n";
    std::fs::write(&reg, text).expect("write");
    let out = lab
        .console()
        .arg("--boards")
        .arg(&reg)
        .arg("--list")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0));
    let table = String::from_utf8_lossy(&out.stdout);
    for name in ["panda01 (panda-1)", "bad01", "nopower01", "dead01"] {
        assert!(table.contains(name), "{name} in {table}");
    }
    assert!(table.contains("magic-hack/3"), "{table}");
    let panda = table
        .lines()
        .find(|l| l.starts_with("panda01"))
        .expect("row");
    assert!(panda.contains("up, adapter present"), "{panda}");
    let dead = table
        .lines()
        .find(|l| l.starts_with("dead01"))
        .expect("row");
    assert!(dead.contains("DOWN"), "{dead}");

    let out = lab
        .console()
        .arg("--boards")
        .arg(&reg)
        .args(["--list", "--json"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let rows = v.as_array().expect("array");
    assert_eq!(rows.len(), 4);
    let row = |n: &str| rows.iter().find(|r| r["board"] == n).expect("row").clone();
    assert_eq!(row("panda01")["reachable"], true);
    assert_eq!(row("panda01")["adapter"], "present");
    assert_eq!(row("panda01")["served_by"], "lava-serial");
    assert_eq!(row("panda01")["pdu"], "magic-hack");
    assert_eq!(row("panda01")["outlet"], "3");
    assert_eq!(row("dead01")["reachable"], false);
    assert_eq!(row("bad01")["served_by"], "terminal-server");
}

/// Splits a command line the way LAVA does (Python's shlex).
fn shlex(cmd: &str) -> Vec<String> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import json, shlex, sys; print(json.dumps(shlex.split(sys.argv[1])))",
            cmd,
        ])
        .output()
        .expect("python3 is needed (Debian package python3)");
    assert!(out.status.success());
    serde_json::from_slice(&out.stdout).expect("argv")
}

#[test]
fn lava_dict_commands_run_as_lava_runs_them() {
    let lab = Lab::start();
    let out = lab.run(["--lava-dict", "panda01"]);
    assert_eq!(out.status.code(), Some(0));
    let dict = String::from_utf8_lossy(&out.stdout).into_owned();
    let value = |k: &str| {
        lava_console::dict::dict_value(&dict, k).unwrap_or_else(|| panic!("{k} in {dict}"))
    };
    let connect = shlex(&value("connection_command"));
    let reset = shlex(&value("hard_reset_command"));
    assert_eq!(connect.first().map(String::as_str), Some("lava-console"));
    assert!(
        connect.contains(&"--boards".to_owned()),
        "a non-default registry is named: {connect:?}"
    );
    assert!(reset.contains(&"--hardreset".to_owned()));
    assert!(!value("power_on_command").is_empty() && !value("power_off_command").is_empty());

    // LAVA's dispatcher has none of our environment: only PATH.
    let clean = |argv: &[String]| {
        let mut c = Command::new(&argv[0]);
        c.args(&argv[1..]).env_clear().env("PATH", path_env());
        c
    };
    let mut con = OnPty::spawn(&clean(&connect));
    con.output.expect(b"panda01 on 127.0.0.1:");
    con.send(b"~.");
    assert_eq!(con.wait().code(), Some(0));

    let out = clean(&reset)
        .stdin(Stdio::null())
        .output()
        .expect("hard reset");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(lab.pdu.log(), "off 3\non 3\n");
}

#[test]
fn lava_dict_via_pduclient() {
    let lab = Lab::start();
    let out = lab.run(["--lava-dict", "--lava-dict-via", "pduclient", "panda01"]);
    let dict = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        lava_console::dict::dict_value(&dict, "hard_reset_command").as_deref(),
        Some("pduclient --daemon localhost --hostname magic-hack --port 3 --command reboot")
    );
}

#[test]
fn help_and_man_page_definition() {
    let out = Command::new(bin("lava-console"))
        .arg("--help")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--spy",
        "--hardreset",
        "--list",
        "--lava-dict",
        "--replay",
        "--escape",
    ] {
        assert!(help.contains(flag), "{flag}");
    }
    lava_console::command().debug_assert();
}
