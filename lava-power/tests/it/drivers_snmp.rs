//! The `snmp` driver against a real agent: net-snmp's snmpd on a free UDP port with the outlet
//! tables of tests/sim/snmp_outlets.py (pass_persist), each preset switched and read back with the
//! driver and with net-snmp's own `snmpget`; SNMPv3 users of every security level; and the faults a
//! PDU can show.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use lava_power::driver::{DriverError, OutletState, PowerDriver};
use lava_power::drivers::snmp;

use crate::drivers_support::{
    assert_refused, config_error, load, python3, sim_dir, sim_state, tool, Proc,
};

/// A running snmpd serving the simulated PDU.
struct Snmpd {
    _proc: Proc,
    port: u16,
    dir: tempfile::TempDir,
}

impl Snmpd {
    fn start() -> Snmpd {
        let snmpd = tool("snmpd", "snmpd");
        let python = python3();
        let dir = tempfile::tempdir().expect("tempdir");
        let conf = dir.path().join("snmpd.conf");
        std::fs::write(
            &conf,
            format!(
                "agentaddress udp:127.0.0.1:0\n\
                 rocommunity public 127.0.0.1\n\
                 rwcommunity private 127.0.0.1\n\
                 createUser lavanone\n\
                 createUser lavamd5 MD5 authpass123\n\
                 createUser lavasha SHA authpass123\n\
                 createUser lavaaes SHA authpass123 AES privpass123\n\
                 createUser lavades MD5 authpass123 DES privpass123\n\
                 rwuser lavanone noauth\n\
                 rwuser lavamd5 auth\n\
                 rwuser lavasha auth\n\
                 rwuser lavaaes priv\n\
                 rwuser lavades priv\n\
                 pass_persist .1.3.6.1.4.1 {} {} {}\n",
                python.display(),
                sim_dir().join("snmp_outlets.py").display(),
                dir.path().join("state.json").display(),
            ),
        )
        .expect("write snmpd.conf");
        let mut child = Proc(
            Command::new(snmpd)
                .args(["-f", "-Lo", "-C", "-I", "-smux", "-c"])
                .arg(&conf)
                .env("MIBS", "")
                .env("MIBDIRS", dir.path())
                .env("SNMP_PERSISTENT_DIR", dir.path().join("persist"))
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("start snmpd"),
        );
        // snmpd logs its version once its sockets are open.
        let mut lines = BufReader::new(child.0.stdout.take().expect("stdout")).lines();
        loop {
            match lines.next() {
                Some(Ok(line)) if line.contains("NET-SNMP version") => break,
                Some(Ok(_)) => {}
                _ => panic!("snmpd exited before it was ready"),
            }
        }
        std::thread::spawn(move || lines.map_while(Result::ok).for_each(drop));
        let port = udp_port_of(child.0.id());
        let agent = Snmpd {
            _proc: child,
            port,
            dir,
        };
        // snmpd starts the outlet tables on first use: use them once, checking the fresh PDU.
        assert_eq!(agent.snmpget(".1.3.6.1.4.1.318.1.1.4.4.2.1.3.1"), "2");
        agent
    }

    /// The PDU's outlet states as the simulator keeps them.
    fn state(&self) -> HashMap<String, String> {
        sim_state(self.dir.path())
    }

    /// net-snmp's own reading of an OID (value only).
    fn snmpget(&self, oid: &str) -> String {
        let out = Command::new(tool("snmpget", "snmp"))
            .args(["-v2c", "-c", "public", "-On", "-Oqv", "-t", "2", "-r", "1"])
            .arg(format!("127.0.0.1:{}", self.port))
            .arg(oid)
            .env("MIBS", "")
            .env("MIBDIRS", self.dir.path())
            .output()
            .expect("run snmpget");
        assert!(out.status.success(), "snmpget {oid}: {out:?}");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    fn config(&self, rest: &str) -> String {
        format!("host = \"127.0.0.1\"\nport = {}\n{rest}", self.port)
    }
}

/// The UDP port a process listens on, read from /proc (snmpd was told port 0).
fn udp_port_of(pid: u32) -> u16 {
    let mut inodes = Vec::new();
    for fd in std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("fds")
        .flatten()
    {
        if let Ok(target) = std::fs::read_link(fd.path()) {
            let t = target.to_string_lossy().into_owned();
            if let Some(i) = t.strip_prefix("socket:[").and_then(|s| s.strip_suffix(']')) {
                inodes.push(i.to_owned());
            }
        }
    }
    let table = std::fs::read_to_string("/proc/net/udp").expect("/proc/net/udp");
    for line in table.lines().skip(1) {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() > 9 && inodes.iter().any(|i| i == cols[9]) {
            if let Some(port) = cols[1].strip_prefix("0100007F:") {
                return u16::from_str_radix(port, 16).expect("port");
            }
        }
    }
    panic!("snmpd (pid {pid}) has no UDP socket on 127.0.0.1");
}

/// Switches outlet 5 on and off through a preset, checking each step with the driver's GET, the
/// simulator's state file and net-snmp's snmpget of `external_oid` (on/off values given).
async fn switch_and_read_back(config: &str, external_oid: &str, on: &str, off: &str) {
    let agent = Snmpd::start();
    let driver = load(snmp::load, &agent.config(config));
    assert!(driver.can_read());
    for (state, word, value) in [
        (OutletState::On, "on", on),
        (OutletState::Off, "off", off),
        (OutletState::On, "on", on),
    ] {
        driver.set("5", state).await.expect("set");
        assert_eq!(agent.state()["5"], word, "the PDU's outlet 5");
        assert_eq!(agent.state()["4"], "off", "outlet 4 untouched");
        assert_eq!(agent.snmpget(&format!("{external_oid}.5")), value);
        assert_eq!(driver.get("5").await.expect("get"), state);
    }
}

#[tokio::test]
async fn apc_snmp_driver_switches_spduoutletctl() {
    switch_and_read_back(
        "driver = \"apc-snmp\"\ncommunity = \"private\"\n",
        ".1.3.6.1.4.1.318.1.1.4.4.2.1.3",
        "1",
        "2",
    )
    .await;
}

#[tokio::test]
async fn apc_rpdu_preset_reads_the_status_table() {
    switch_and_read_back(
        "driver = \"snmp\"\npreset = \"apc-rpdu\"\nversion = \"2c\"\nread_community = \"public\"\nwrite_community = \"private\"\n",
        ".1.3.6.1.4.1.318.1.1.12.3.5.1.1.4",
        "1",
        "2",
    )
    .await;
}

#[tokio::test]
async fn raritan_preset() {
    switch_and_read_back(
        "driver = \"snmp\"\npreset = \"raritan\"\nversion = \"2c\"\ncommunity = \"private\"\n",
        ".1.3.6.1.4.1.13742.6.4.1.2.1.3.1",
        "7",
        "8",
    )
    .await;
}

#[tokio::test]
async fn eaton_preset_uses_separate_on_and_off_objects() {
    switch_and_read_back(
        "driver = \"snmp\"\npreset = \"eaton\"\ncommunity = \"private\"\n",
        ".1.3.6.1.4.1.534.6.6.7.6.6.1.2.0",
        "1",
        "0",
    )
    .await;
}

#[tokio::test]
async fn sentry_preset() {
    switch_and_read_back(
        "driver = \"snmp\"\npreset = \"sentry\"\ncommunity = \"private\"\n",
        ".1.3.6.1.4.1.1718.3.2.3.1.5.1.1",
        "1",
        "0",
    )
    .await;
}

#[tokio::test]
async fn explicit_oid_template_and_values() {
    switch_and_read_back(
        "driver = \"snmp\"\nversion = \"2c\"\nwrite_community = \"private\"\n\
         oid = \".1.3.6.1.4.1.318.1.1.4.4.2.1.3.{outlet}\"\non_value = 1\noff_value = 2\n",
        ".1.3.6.1.4.1.318.1.1.4.4.2.1.3",
        "1",
        "2",
    )
    .await;
}

/// SNMPv3 users of every security level (snmpd's createUser), switched through the apc preset.
#[tokio::test]
async fn snmpv3_security_levels() {
    let agent = Snmpd::start();
    let mut outlet = 0;
    for keys in [
        "username = \"lavanone\"\n",
        "username = \"lavamd5\"\nauth_password = \"authpass123\"\n",
        "username = \"lavasha\"\nauth_protocol = \"SHA\"\nauth_password = \"authpass123\"\n",
        "username = \"lavaaes\"\nauth_protocol = \"SHA\"\nauth_password = \"authpass123\"\n\
         priv_protocol = \"AES\"\npriv_password = \"privpass123\"\n",
        "username = \"lavades\"\nauth_protocol = \"MD5\"\nauth_password = \"authpass123\"\n\
         priv_protocol = \"DES\"\npriv_password = \"privpass123\"\n",
    ] {
        outlet += 1;
        let driver = load(
            snmp::load,
            &agent.config(&format!("driver = \"apc-snmp\"\nversion = \"3\"\n{keys}")),
        );
        let o = outlet.to_string();
        driver
            .set(&o, OutletState::On)
            .await
            .unwrap_or_else(|e| panic!("{keys}: {e}"));
        assert_eq!(agent.state()[&o], "on", "{keys}");
        assert_eq!(
            agent.snmpget(&format!(".1.3.6.1.4.1.318.1.1.4.4.2.1.3.{o}")),
            "1",
            "{keys}"
        );
        assert_eq!(
            driver.get(&o).await.expect("get"),
            OutletState::On,
            "{keys}"
        );
        driver.set(&o, OutletState::Off).await.expect("off");
        assert_eq!(
            driver.get(&o).await.expect("get"),
            OutletState::Off,
            "{keys}"
        );
    }
}

#[tokio::test]
async fn snmpv3_refusals_name_the_problem() {
    let agent = Snmpd::start();
    for (keys, want) in [
        ("username = \"nobody\"\n", "UnknownUserNames"),
        (
            "username = \"lavamd5\"\nauth_password = \"wrongpass1\"\n",
            "WrongDigests",
        ),
        // A user that needs privacy, asked without it.
        (
            "username = \"lavaaes\"\nauth_protocol = \"SHA\"\nauth_password = \"authpass123\"\n",
            "",
        ),
    ] {
        let driver = load(
            snmp::load,
            &agent.config(&format!("driver = \"apc-snmp\"\nversion = \"3\"\n{keys}")),
        );
        let e = tokio::time::timeout(Duration::from_secs(5), driver.set("2", OutletState::On))
            .await
            .unwrap_or_else(|_| panic!("{keys}: no answer"))
            .expect_err(keys);
        assert!(
            matches!(&e, DriverError::Refused(m) if m.contains(want)),
            "{keys}: {e}"
        );
    }
    // net-snmp drops a request it cannot decrypt without a report: the attempt is left to the
    // queue's timeout (and the outlet untouched).
    let driver = load(
        snmp::load,
        &agent.config(
            "driver = \"apc-snmp\"\nversion = \"3\"\nusername = \"lavaaes\"\n\
             auth_protocol = \"SHA\"\nauth_password = \"authpass123\"\n\
             priv_protocol = \"AES\"\npriv_password = \"wrongpass2\"\ntimeout = \"1s\"\n",
        ),
    );
    let r = tokio::time::timeout(Duration::from_secs(2), driver.set("2", OutletState::On)).await;
    assert!(r.is_err(), "undecryptable request answered: {r:?}");
    assert_eq!(agent.state()["2"], "off", "nothing switched");
}

#[tokio::test]
async fn agent_errors_are_refusals_with_their_names() {
    let agent = Snmpd::start();
    // v1: an outlet the PDU does not have is noSuchName.
    let apc = load(
        snmp::load,
        &agent.config("driver = \"apc-snmp\"\ncommunity = \"private\"\n"),
    );
    let e = apc.set("30", OutletState::On).await.expect_err("outlet 30");
    assert_refused(&e, &["noSuchName"]);
    // v2c GET of a missing instance.
    let v2 = load(
        snmp::load,
        &agent.config(
            "driver = \"snmp\"\npreset = \"apc\"\nversion = \"2c\"\ncommunity = \"private\"\n",
        ),
    );
    let e = v2.get("30").await.expect_err("outlet 30");
    assert_refused(&e, &["noSuchInstance"]);
    // Writing a read-only status column.
    let ro = load(
        snmp::load,
        &agent.config(
            "driver = \"snmp\"\nversion = \"2c\"\ncommunity = \"private\"\n\
             oid = \"1.3.6.1.4.1.318.1.1.12.3.5.1.1.4.{outlet}\"\non_value = 1\noff_value = 2\n",
        ),
    );
    let e = ro.set("3", OutletState::On).await.expect_err("read-only");
    assert_refused(&e, &["notWritable"]);
    // A read-only community cannot SET (v2c: noAccess / authorizationError / notWritable).
    let readonly = load(
        snmp::load,
        &agent.config(
            "driver = \"snmp\"\npreset = \"apc\"\nversion = \"2c\"\ncommunity = \"public\"\n",
        ),
    );
    let e = readonly
        .set("3", OutletState::On)
        .await
        .expect_err("public");
    assert!(matches!(e, DriverError::Refused(_)), "{e}");
    assert_eq!(agent.state()["3"], "off");
}

#[tokio::test]
async fn unreachable_agent() {
    let closed = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let driver = load(
        snmp::load,
        &format!("driver = \"apc-snmp\"\nhost = \"127.0.0.1\"\nport = {port}\n"),
    );
    let e = tokio::time::timeout(Duration::from_secs(5), driver.set("1", OutletState::On))
        .await
        .expect("an answer, not a hang")
        .expect_err("nobody there");
    assert!(matches!(e, DriverError::Unreachable(_)), "{e}");
    let e = load(
        snmp::load,
        "driver = \"apc-snmp\"\nhost = \"no-such-host.invalid\"\n",
    )
    .get("1")
    .await
    .expect_err("no such host");
    assert!(matches!(e, DriverError::Unreachable(_)), "{e}");
}

/// A UDP socket the test answers from as it likes, and an `apc-snmp` driver (with `extra` keys)
/// aimed at it.
async fn fake_agent(extra: &str) -> (tokio::net::UdpSocket, Arc<dyn PowerDriver>) {
    let peer = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = peer.local_addr().expect("addr").port();
    let driver = load(
        snmp::load,
        &format!("driver = \"apc-snmp\"\nhost = \"127.0.0.1\"\nport = {port}\n{extra}"),
    );
    (peer, driver)
}

#[tokio::test]
async fn silent_agent_is_left_to_the_timeout_and_resent_once() {
    let (peer, driver) = fake_agent("timeout = \"400ms\"\n").await;
    let attempt = tokio::time::timeout(
        Duration::from_millis(1500),
        driver.set("1", OutletState::On),
    );
    let (r, seen) = tokio::join!(attempt, async {
        let mut buf = [0u8; 1500];
        let mut seen = Vec::new();
        while let Ok(Ok(n)) =
            tokio::time::timeout(Duration::from_millis(1200), peer.recv(&mut buf)).await
        {
            seen.push(buf[..n].to_vec());
        }
        seen
    });
    assert!(
        r.is_err(),
        "a silent agent must not produce an answer: {r:?}"
    );
    assert_eq!(seen.len(), 2, "the request is sent, then resent once");
    assert_eq!(
        seen[0], seen[1],
        "the resend is the same request (same request-id)"
    );
}

#[tokio::test]
async fn garbage_and_stray_answers() {
    let (peer, driver) = fake_agent("").await;
    // Garbage → a bad answer.
    let agent = async {
        let mut buf = [0u8; 1500];
        let (_, from) = peer.recv_from(&mut buf).await.expect("request");
        peer.send_to(b"\x30\x03garbage", from).await.expect("send");
    };
    let (r, ()) = tokio::join!(driver.set("1", OutletState::On), agent);
    assert!(matches!(r, Err(DriverError::BadAnswer(_))), "{r:?}");

    // A stray response (another request id) is ignored; the right one is taken.
    let agent = async {
        let mut buf = [0u8; 1500];
        let (n, from) = peer.recv_from(&mut buf).await.expect("request");
        let request = snmp::decode(&buf[..n]).expect("a request");
        assert_eq!(request.pdu_tag, snmp::TAG_GET);
        let mut answer = snmp::Message {
            pdu_tag: snmp::TAG_RESPONSE,
            request_id: request.request_id.wrapping_add(1),
            ..request.clone()
        };
        answer.varbinds[0].1 = snmp::VarValue::Integer(1);
        peer.send_to(&snmp::encode(&answer), from)
            .await
            .expect("stray");
        answer.request_id = request.request_id;
        answer.varbinds[0].1 = snmp::VarValue::Integer(2);
        peer.send_to(&snmp::encode(&answer), from)
            .await
            .expect("answer");
    };
    let (r, ()) = tokio::join!(driver.get("1"), agent);
    assert_eq!(r.expect("the matching answer"), OutletState::Off);
}

#[test]
fn config_errors_name_line_and_key() {
    let at = |text, line, key| config_error(snmp::load, text, line, key);
    at(
        "driver = \"snmp\"\nhost = \"pdu\"\npreset = \"acp\"\n",
        Some(3),
        "preset",
    );
    at("driver = \"apc-snmp\"\ncommunity = \"x\"\n", None, "host");
    at(
        "driver = \"apc-snmp\"\nhost = \"pdu\"\ncomunity = \"x\"\n",
        Some(3),
        "comunity",
    );
    at(
        "driver = \"apc-snmp\"\nhost = \"pdu\"\noutlet_count = 24\n\n[outlets]\n\"3\" = \"panda01\"\n\"30\" = \"imx8\"\n",
        Some(7),
        "outlets.30",
    );
    at(
        "driver = \"snmp\"\nhost = \"pdu\"\noid = \"1.3.6.x.{outlet}\"\non_value = 1\noff_value = 2\n",
        Some(3),
        "oid",
    );
    at(
        "driver = \"snmp\"\nhost = \"pdu\"\noid = \"1.3.6.1.{outlet}\"\non_value = 1\n",
        None,
        "off_value",
    );
    at(
        "driver = \"apc-snmp\"\nhost = \"pdu\"\nversion = \"3\"\nusername = \"u\"\nauth_password = \"short\"\n",
        Some(5),
        "auth_password",
    );
    at(
        "driver = \"apc-snmp\"\nhost = \"pdu\"\nversion = \"3\"\nusername = \"u\"\npriv_password = \"longenough\"\n",
        Some(5),
        "priv_password",
    );
    at(
        "driver = \"apc-snmp\"\nhost = \"pdu\"\nusername = \"u\"\n",
        Some(3),
        "username",
    );
    at(
        "driver = \"apc-snmp\"\nhost = \"pdu\"\nversion = \"3\"\ncommunity = \"private\"\nusername = \"u\"\n",
        Some(4),
        "community",
    );
    at(
        "driver = \"apc-snmp\"\nhost = \"pdu\"\nversion = \"3\"\nusername = \"u\"\nauth_protocol = \"SHA256\"\nauth_password = \"longenough\"\n",
        Some(5),
        "auth_protocol",
    );
    let e = at(
        "driver = \"snmp\"\nhost = \"pdu\"\nversion = \"4\"\npreset = \"apc\"\n",
        Some(3),
        "version",
    );
    assert!(
        e.to_string().starts_with("test-pdu.toml:3: key `version`"),
        "{e}"
    );
}
