//! The gateway against the real pduclient (TCP and `-H` HTTP) and curl: exact answers and exit
//! codes, outlets really switched in order, HEAD never switching, JSON routes proxied, and 1000
//! concurrent requests over 20 PDUs all answered with each PDU strictly serial.

use std::process::{Command, Output};
use std::time::Duration;

use lava_power::client::{Action, PowerClient};

use crate::support::{assert_serial, pdudaemon_port, tool, Lab};

/// Runs a client tool off the runtime (the gateway under test runs on it).
async fn run(name: &str, package: &str, args: &[&str]) -> Output {
    let bin = tool(name, package);
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || Command::new(bin).args(&args).output())
        .await
        .expect("join")
        .unwrap_or_else(|e| panic!("run {name}: {e}"))
}

async fn pduclient(args: &[&str]) -> (i32, String) {
    let out = run("pduclient", "pdudaemon-client", args).await;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

async fn curl(args: &[&str]) -> String {
    let out = run("curl", "curl", args).await;
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn setup() -> (Lab, String, tokio::sync::oneshot::Sender<()>) {
    let lab = Lab::new();
    let cfg = lab.command_pdu("magic-hack", "reboot_delay = \"5s\"");
    let (stop, _) = lab.start(&cfg).await;
    let (listener, host) = pdudaemon_port().await;
    lab.gateway(listener);
    (lab, host, stop)
}

/// pduclient asking for `command` on outlet `port` of `pdu` (then `extra` flags, e.g. `--delay 1`)
/// by way of `via`: `--daemon HOST`, with `-H` in front for its HTTP protocol.
async fn ask(via: &[&str], pdu: &str, port: &str, command: &str, extra: &[&str]) -> (i32, String) {
    let request = ["--hostname", pdu, "--port", port, "--command", command];
    pduclient(&[via, &request[..], extra].concat()).await
}

#[tokio::test]
async fn pduclient_tcp_switches_outlets_in_order() {
    let (lab, host, _stop) = setup().await;
    let via = ["--daemon", host.as_str()];
    let (code, out) = ask(&via, "magic-hack", "3", "on", &[]).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Command sent successfully."), "{out}");
    let (code, out) = ask(&via, "magic-hack", "04", "off", &[]).await;
    assert_eq!(code, 0, "{out}");
    let t0 = std::time::Instant::now();
    let (code, out) = ask(&via, "magic-hack", "3", "reboot", &["--delay", "1"]).await;
    assert_eq!(code, 0, "{out}");
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(4),
        "{took:?}"
    );
    assert_eq!(
        lab.switched("magic-hack"),
        ["3 on", "4 off", "3 off", "3 on"]
    );

    let (code, out) = ask(&via, "nope", "3", "on", &[]).await;
    assert_eq!(code, 127, "{out}");
    assert!(out.contains("replied: nack"), "{out}");
    assert_eq!(lab.switched("magic-hack").len(), 4);
}

#[tokio::test]
async fn pduclient_http_switches_outlets_in_order() {
    let (lab, host, _stop) = setup().await;
    let via = ["-H", "--daemon", host.as_str()];
    let (code, out) = ask(&via, "magic-hack", "5", "on", &[]).await;
    assert_eq!(
        code, 0,
        "{out} (pduclient -H needs the Debian package python3-requests)"
    );
    let (code, out) = ask(&via, "magic-hack", "5", "reboot", &["--delay", "1"]).await;
    assert_eq!(code, 0, "{out}");
    let (code, out) = ask(&via, "magic-hack", "6", "off", &[]).await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        lab.switched("magic-hack"),
        ["5 on", "5 off", "5 on", "6 off"]
    );
    let (code, out) = ask(&via, "nope", "3", "on", &[]).await;
    assert_eq!(code, 127, "{out}");
}

#[tokio::test]
async fn http_answers_are_pdudaemons_to_the_byte() {
    let lab = Lab::new();
    let _stop = lab.start(&lab.command_pdu("p1", "")).await;
    let _stop2 = lab.serve(&lab.config(
        "broken",
        "driver = \"command\"\non = [\"false\"]\noff = [\"false\"]\nretries = 0\n",
    ));
    let base = format!("http://{}", lab.gateway_on_free_port().await);
    // The body, then `|` and the status code.
    let get = |path: &str| {
        let url = format!("{base}{path}");
        async move { curl(&["-s", "-w", "|%{http_code}", &url]).await }
    };
    let post = |path: &str| {
        let url = format!("{base}{path}");
        async move { curl(&["-s", "-X", "POST", "-w", "|%{http_code}", &url]).await }
    };
    assert_eq!(
        get("/power/control/on?hostname=p1&port=1").await,
        "OK - accepted request\n|200"
    );
    assert_eq!(
        get("/power/control/off?hostname=p1&port=1").await,
        "OK - accepted request\n|200"
    );
    assert_eq!(
        get("/power/control/on?hostname=nope&port=1").await,
        "Invalid request\n|500"
    );
    assert_eq!(
        get("/power/control/on?hostname=p1").await,
        "Invalid request\n|500"
    );
    assert_eq!(
        get("/power/control/on?port=1").await,
        "Invalid request\n|500"
    );
    assert_eq!(
        get("/power/control/reboot?hostname=p1&port=1&delay=x").await,
        "Invalid request\n|500"
    );
    assert_eq!(
        get("/power/control/on?hostname=broken&port=1").await,
        "Invalid request\n|500"
    );
    assert_eq!(
        get("/power/control/dance?hostname=p1&port=1").await,
        "404: Not Found|404"
    );
    assert_eq!(get("/").await, "404: Not Found|404");
    assert_eq!(lab.switched("p1"), ["1 on", "1 off"]);

    // HEAD never switches power.
    let head = curl(&[
        "-s",
        "-I",
        "-w",
        "|%{http_code}",
        &format!("{base}/power/control/on?hostname=p1&port=2"),
    ])
    .await;
    assert!(head.ends_with("|405"), "{head}");
    assert_eq!(lab.switched("p1"), ["1 on", "1 off"]);

    // The suite's JSON routes.
    let pdus = curl(&["-s", &format!("{base}/v1/pdus")]).await;
    assert!(
        pdus.contains(r#"{"pdu":"p1","ok":true,"driver":"command","queued":0}"#),
        "{pdus}"
    );
    let r = post("/v1/pdus/p1/outlets/7/reboot?delay=10ms").await;
    assert!(
        r.starts_with(r#"{"ok":true,"pdu":"p1","outlet":"7","action":"reboot","attempts":2,"#),
        "{r}"
    );
    assert!(r.ends_with("|200"), "{r}");
    let r = post("/v1/pdus/broken/outlets/7/on").await;
    assert!(r.contains(r#""ok":false"#) && r.ends_with("|502"), "{r}");
    let r = get("/v1/pdus/nope/health").await;
    assert!(
        r.starts_with(r#"{"ok":false,"error":"no lava-power instance named nope on "#)
            && r.ends_with("|404"),
        "{r}"
    );
    let r = post("/v1/pdus/p1/outlets/7/explode").await;
    assert!(r.ends_with("|400"), "{r}");

    // Through the client library, as lava-console on another host would.
    let c = PowerClient::gateway(&base.replace("http://", ""), "p1");
    let r = c
        .action("8", Action::On, None, "alice@laptop")
        .await
        .expect("answer");
    assert!(r.ok, "{r:?}");
    assert_eq!(
        c.status("8").await.expect("status").state,
        lava_power::wire::StateReport::On
    );
}

#[tokio::test]
async fn tcp_requests_end_at_newline_eof_or_a_pause_and_garbage_gets_pdudaemons_answer() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let lab = Lab::new();
    let _stop = lab.start(&lab.command_pdu("p1", "")).await;
    let addr = lab.gateway_on_free_port().await;
    async fn ask(addr: std::net::SocketAddr, req: &[u8], half_close: bool) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
        s.write_all(req).await.expect("write");
        if half_close {
            s.shutdown().await.expect("shutdown");
        }
        let mut out = String::new();
        s.read_to_string(&mut out).await.expect("read");
        out
    }
    assert_eq!(ask(addr, b"p1 1 on\n", false).await, "ack\n");
    assert_eq!(ask(addr, b"p1 2 on", true).await, "ack\n");
    assert_eq!(ask(addr, b"p1 3 on", false).await, "ack\n");
    assert_eq!(ask(addr, b"p1 3", false).await, "Unexpected data");
    assert_eq!(
        ask(addr, b"p1 x on", false).await,
        "invalid literal for int() with base 10: 'x'"
    );
    assert_eq!(ask(addr, b"p1 3 explode", false).await, "nack\n");
    assert_eq!(ask(addr, b"\xff\xfe\x00 1 on\n", false).await, "nack\n");
    assert_eq!(lab.switched("p1"), ["1 on", "2 on", "3 on"]);
}

#[tokio::test]
async fn a_thousand_concurrent_requests_over_twenty_pdus_are_all_answered() {
    let lab = Lab::new();
    let mut stops = Vec::new();
    for i in 0..20 {
        stops.push(lab.start(&lab.command_pdu(&format!("pdu{i:02}"), "")).await);
    }
    let addr = lab.gateway_on_free_port().await.to_string();
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..1000u32 {
        let pdu = format!("pdu{:02}", n % 20);
        let outlet = (n / 20 % 8 + 1).to_string();
        // Half through the gateway, half straight to the instance socket.
        let c = if n % 2 == 0 {
            PowerClient::gateway(&addr, &pdu)
        } else {
            PowerClient::instance(&lab.runtime, &pdu)
        };
        let action = if n % 3 == 0 { Action::Off } else { Action::On };
        tasks.spawn(async move { c.action(&outlet, action, None, "load").await });
    }
    let mut ok = 0;
    while let Some(r) = tasks.join_next().await {
        let r = r.expect("join").expect("answered");
        assert!(r.ok, "{r:?}");
        ok += 1;
    }
    assert_eq!(ok, 1000);
    let mut total = 0;
    for i in 0..20 {
        let name = format!("pdu{i:02}");
        let lines = crate::support::read_log(&lab.log_path(&name));
        assert_serial(&lines);
        total += lab.switched(&name).len();
    }
    assert_eq!(total, 1000, "every request ran exactly once");
}
