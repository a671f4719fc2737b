//! The `apc-telnet` driver against tests/sim/apc_console.py, a simulator of the APC Switched Rack
//! PDU's telnet Control Console (real telnet negotiation, the manual's menu text, login, one session
//! at a time, a log of what was done): switching and reading outlets through two firmware menu
//! layouts and the `apc>` command line of newer firmware, a refused login, and the faults.

use std::time::Duration;

use lava_power::driver::OutletState;
use lava_power::drivers::apc_telnet;

use crate::drivers_support::{
    assert_refused, config_error, load, spawn_sim, tcp_faults, Probe, Proc,
};
use crate::support::read_log;

struct Console {
    _proc: Proc,
    port: u16,
    dir: tempfile::TempDir,
}

impl Console {
    fn start(extra: &[&str]) -> Console {
        let (proc, port, dir) = spawn_sim("apc_console.py", "console.log", extra);
        Console {
            _proc: proc,
            port,
            dir,
        }
    }

    fn log(&self) -> Vec<String> {
        read_log(&self.dir.path().join("console.log"))
    }

    /// The log without the telnet negotiation lines.
    fn actions(&self) -> Vec<String> {
        self.log()
            .into_iter()
            .filter(|l| !l.starts_with("telnet "))
            .collect()
    }

    fn config(&self, rest: &str) -> String {
        format!(
            "driver = \"apc-telnet\"\nhost = \"127.0.0.1\"\nport = {}\n{rest}",
            self.port
        )
    }
}

#[tokio::test]
async fn switches_and_reads_an_outlet_through_the_menus() {
    let pdu = Console::start(&["--user", "device", "--password", "s3cret"]);
    let driver = load(
        apc_telnet::load,
        &pdu.config("username = \"device\"\npassword = \"s3cret\"\n"),
    );
    assert!(driver.can_read());
    assert_eq!(driver.get("5").await.expect("read"), OutletState::On);
    driver.set("5", OutletState::Off).await.expect("off");
    assert_eq!(driver.get("5").await.expect("read"), OutletState::Off);
    assert_eq!(driver.get("4").await.expect("read"), OutletState::On);
    driver.set("5", OutletState::On).await.expect("on");
    assert_eq!(driver.get("5").await.expect("read"), OutletState::On);
    let session = ["connect", "login device"];
    let mut want: Vec<String> = Vec::new();
    for action in [
        None,
        Some("outlet 5 off"),
        None,
        None,
        Some("outlet 5 on"),
        None,
    ] {
        want.extend(session.iter().map(|s| s.to_string()));
        want.extend(action.map(str::to_owned));
        want.extend(["logout".to_owned(), "disconnect".to_owned()]);
    }
    assert_eq!(
        pdu.actions(),
        want,
        "every session logs in, acts and logs out"
    );
    // The driver answered the console's negotiation as a telnet client does.
    let log = pdu.log();
    for line in ["telnet DO ECHO", "telnet DO SGA", "telnet WONT NAWS"] {
        assert!(log.iter().any(|l| l == line), "{line} missing from {log:?}");
    }
}

#[tokio::test]
async fn older_firmware_menu_numbering() {
    let pdu = Console::start(&["--firmware", "aos2", "--outlets", "16"]);
    let driver = load(apc_telnet::load, &pdu.config(""));
    driver.set("12", OutletState::Off).await.expect("off");
    assert_eq!(driver.get("12").await.expect("read"), OutletState::Off);
    assert!(pdu.actions().contains(&"outlet 12 off".to_owned()));
}

#[tokio::test]
async fn command_line_firmware() {
    let pdu = Console::start(&["--firmware", "cli", "--outlets", "24"]);
    let driver = load(apc_telnet::load, &pdu.config(""));
    assert_eq!(driver.get("17").await.expect("read"), OutletState::On);
    driver.set("17", OutletState::Off).await.expect("off");
    assert_eq!(driver.get("17").await.expect("read"), OutletState::Off);
    driver.set("17", OutletState::On).await.expect("on");
    let e = driver
        .set("30", OutletState::On)
        .await
        .expect_err("24 outlets");
    assert_refused(&e, &["E102"]);
    let actions = pdu.actions();
    assert_eq!(
        actions
            .iter()
            .filter(|l| l.starts_with("outlet "))
            .collect::<Vec<_>>(),
        ["outlet 17 off", "outlet 17 on"]
    );
    assert_eq!(
        actions.iter().filter(|l| *l == "logout").count(),
        5,
        "every session exits: {actions:?}"
    );
}

#[tokio::test]
async fn refusals() {
    let pdu = Console::start(&[]);
    let wrong = load(apc_telnet::load, &pdu.config("password = \"wrong\"\n"));
    let e = wrong
        .set("1", OutletState::Off)
        .await
        .expect_err("bad password");
    assert_refused(&e, &["login"]);

    let driver = load(apc_telnet::load, &pdu.config(""));
    let e = driver
        .set("9", OutletState::Off)
        .await
        .expect_err("8 outlets");
    assert_refused(&e, &["no outlet 9"]);
    assert!(
        !pdu.actions().iter().any(|l| l.starts_with("outlet ")),
        "nothing switched"
    );
    // The console still serves (the sessions were closed).
    driver.set("1", OutletState::Off).await.expect("off");
}

#[tokio::test]
async fn faults() {
    tcp_faults(
        apc_telnet::load,
        |port| format!("driver = \"apc-telnet\"\nhost = \"127.0.0.1\"\nport = {port}\n"),
        "console",
        Duration::from_millis(2500),
        &[
            &b"\xff\xfd\x18\xff\xfa\x00garbage"[..],
            b"SSH-2.0-OpenSSH_9.2\r\n",
            b"User Name : ",
        ],
        Probe::Get,
    )
    .await;
}

#[test]
fn config_errors_name_line_and_key() {
    let at = |text, line, key| config_error(apc_telnet::load, text, line, key);
    at(
        "driver = \"apc-telnet\"\nusername = \"apc\"\n",
        None,
        "host",
    );
    at(
        "driver = \"apc-telnet\"\nhost = \"pdu\"\nport = 0\n",
        Some(3),
        "port",
    );
    at(
        "driver = \"apc-telnet\"\nhost = \"pdu\"\npasword = \"x\"\n",
        Some(3),
        "pasword",
    );
    at(
        "driver = \"apc-telnet\"\nhost = \"pdu\"\noutlet_count = 8\n[outlets]\n\"9\" = \"x\"\n",
        None,
        "outlets.9",
    );
}
