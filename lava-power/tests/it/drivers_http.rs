//! The `http` driver against tests/sim/http_relay.py, a local HTTP relay that speaks Tasmota's
//! `/cm?cmnd=`, Shelly's `/relay/N?turn=` and a generic authenticated JSON POST API; each switch
//! checked in the relay's own state file and read back through the driver; and the faults.

use std::collections::HashMap;
use std::time::Duration;

use lava_power::driver::{DriverError, OutletState};
use lava_power::drivers::http;

use crate::drivers_support::{
    assert_refused, closed_tcp_port, config_error, load, load_err, sim_state, spawn_sim,
    tcp_faults, Probe, Proc,
};

struct Relay {
    _proc: Proc,
    port: u16,
    dir: tempfile::TempDir,
}

impl Relay {
    fn start() -> Relay {
        let (proc, port, dir) = spawn_sim("http_relay.py", "state.json", &[]);
        Relay {
            _proc: proc,
            port,
            dir,
        }
    }

    fn state(&self) -> HashMap<String, String> {
        sim_state(self.dir.path())
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("state.json.log")).unwrap_or_default()
    }
}

#[tokio::test]
async fn tasmota() {
    let relay = Relay::start();
    let driver = load(
        http::load,
        &format!(
            "driver = \"http\"\nhost = \"127.0.0.1:{}\"\n\
             url = \"http://{{host}}/cm?cmnd=Power{{outlet}}%20{{state}}\"\non_state = \"On\"\noff_state = \"Off\"\n\
             state_url = \"http://{{host}}/cm?cmnd=Power{{outlet}}\"\nstate_pointer = \"/POWER{{outlet}}\"\n",
            relay.port
        ),
    );
    assert!(driver.can_read());
    driver.set("2", OutletState::On).await.expect("on");
    assert_eq!(relay.state()["2"], "on");
    assert_eq!(driver.get("2").await.expect("get"), OutletState::On);
    assert_eq!(driver.get("1").await.expect("get"), OutletState::Off);
    driver.set("2", OutletState::Off).await.expect("off");
    assert_eq!(relay.state()["2"], "off");
    assert_eq!(driver.get("2").await.expect("get"), OutletState::Off);
    assert_eq!(relay.log(), "tasmota 2 on\ntasmota 2 off\n");
    // Tasmota says 200 {"Command":"Unknown"} for a relay it lacks: the state read notices.
    let e = driver.get("9").await.expect_err("no relay 9");
    assert!(matches!(e, DriverError::BadAnswer(_)), "{e}");
}

#[tokio::test]
async fn shelly() {
    let relay = Relay::start();
    let driver = load(
        http::load,
        &format!(
            "driver = \"http\"\n\
             url = \"http://127.0.0.1:{0}/relay/{{outlet}}?turn={{state}}\"\n\
             state_url = \"http://127.0.0.1:{0}/relay/{{outlet}}\"\nstate_pointer = \"/ison\"\n\
             state_on_value = \"true\"\nstate_off_value = \"false\"\n",
            relay.port
        ),
    );
    driver.set("0", OutletState::On).await.expect("on");
    assert_eq!(relay.state()["1"], "on", "Shelly relay 0 is the first");
    assert_eq!(driver.get("0").await.expect("get"), OutletState::On);
    driver.set("0", OutletState::Off).await.expect("off");
    assert_eq!(driver.get("0").await.expect("get"), OutletState::Off);
    let e = driver
        .set("7", OutletState::On)
        .await
        .expect_err("no relay 7");
    assert_refused(&e, &["404"]);
}

#[tokio::test]
async fn generic_post_with_basic_auth() {
    let relay = Relay::start();
    let config = |user: &str| {
        format!(
            "driver = \"http\"\nhost = \"127.0.0.1:{}\"\nmethod = \"POST\"\n\
             url = \"http://{{host}}/api/relay/{{outlet}}\"\nbody = '{{\"state\":\"{{state}}\"}}'\n\
             expect_status = 204\nusername = \"{user}\"\npassword = \"secret\"\n\
             state_url = \"http://{{host}}/api/relay/{{outlet}}\"\n",
            relay.port
        )
    };
    let driver = load(http::load, &config("admin"));
    driver.set("3", OutletState::On).await.expect("on");
    assert_eq!(relay.state()["3"], "on");
    assert_eq!(driver.get("3").await.expect("get"), OutletState::On);
    driver.set("3", OutletState::Off).await.expect("off");
    assert_eq!(driver.get("3").await.expect("get"), OutletState::Off);

    let intruder = load(http::load, &config("mallory"));
    let e = intruder.set("3", OutletState::On).await.expect_err("401");
    assert_refused(&e, &["401"]);
    assert_eq!(relay.state()["3"], "off");
    // Outlets that cannot go into a URL are refused before anything is sent.
    let e = driver
        .set("3/../4", OutletState::On)
        .await
        .expect_err("bad outlet");
    assert!(matches!(e, DriverError::Refused(_)), "{e}");
}

#[tokio::test]
async fn error_status_and_garbage_state() {
    let relay = Relay::start();
    let driver = load(
        http::load,
        &format!(
            "driver = \"http\"\nurl = \"http://127.0.0.1:{0}/error?o={{outlet}}\"\n\
             state_url = \"http://127.0.0.1:{0}/garbage\"\nstate_pointer = \"/on\"\n",
            relay.port
        ),
    );
    let e = driver.set("1", OutletState::On).await.expect_err("500");
    assert_refused(&e, &["500", "relay fault"]);
    let e = driver.get("1").await.expect_err("not json");
    assert!(matches!(e, DriverError::BadAnswer(_)), "{e}");
}

#[tokio::test]
async fn faults() {
    let url = |port: u16| {
        format!("driver = \"http\"\nurl = \"http://127.0.0.1:{port}/r/{{outlet}}/{{state}}\"\n")
    };
    // Without a state_url nothing is read, reachable or not.
    let driver = load(http::load, &url(closed_tcp_port()));
    assert!(matches!(
        driver.get("1").await,
        Err(DriverError::CannotRead)
    ));
    tcp_faults(
        http::load,
        url,
        "relay",
        Duration::from_millis(300),
        &[
            &b"\x00\xff\x13garbage\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nshort",
            b"",
        ],
        Probe::Set,
    )
    .await;
}

#[test]
fn config_errors_name_line_and_key() {
    let at = |text, line, key| config_error(http::load, text, line, key);
    let e = at(
        "driver = \"http\"\nurl = \"https://relay/{outlet}\"\n",
        Some(2),
        "url",
    );
    assert!(e.to_string().contains("https is not supported"), "{e}");
    at(
        "driver = \"http\"\n\nurl = \"http://relay/{port}\"\n",
        Some(3),
        "url",
    );
    at(
        "driver = \"http\"\nurl = \"http://{host}/x\"\n",
        Some(2),
        "url",
    );
    at(
        "driver = \"http\"\non_url = \"http://relay/on\"\n",
        None,
        "off_url",
    );
    at(
        "driver = \"http\"\nurl = \"http://relay/\"\nmethod = \"DELETE\"\n",
        Some(3),
        "method",
    );
    at(
        "driver = \"http\"\nurl = \"http://relay/\"\nstate_pointer = \"/ison\"\n",
        Some(3),
        "state_pointer",
    );
    at(
        "driver = \"http\"\nurl = \"http://relay/\"\nexpect_status = 42\n",
        Some(3),
        "expect_status",
    );
    at(
        "driver = \"http\"\nurl = \"http://relay/\"\nbody = \"x\"\n",
        Some(3),
        "body",
    );
    let e = load_err(
        http::load,
        "driver = \"http\"\nurl = \"http://relay/{outlet}\"\n[outlets]\n\"1\" = \"a\"\n\"x/y\" = \"b\"\n",
    );
    assert_eq!(e.line(), 5, "{e}");
}
