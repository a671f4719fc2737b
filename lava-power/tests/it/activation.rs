//! The real `lava-power gateway` socket-activated by Debian's systemd-socket-activate (the
//! sd_listen_fds(3) protocol lava-power-gateway.socket speaks): it serves the socket it was
//! passed, and never binds `--listen` itself (the same port given there would not bind).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use crate::support::{tool, Lab};

/// Kills the activated gateway when the test ends, however it ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn serves_the_socket_systemd_passes() {
    let activate = tool("systemd-socket-activate", "systemd");
    let curl = tool("curl", "curl");
    let lab = Lab::new();
    let cfg = lab.command_pdu("rack1", "");
    let (_stop, _) = lab.start(&cfg).await;

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut child = Command::new(activate)
        .args(["-l", &addr, "--"])
        .arg(env!("CARGO_BIN_EXE_lava-power"))
        .args(["--runtime-dir"])
        .arg(&lab.runtime)
        // The very port systemd holds: binding it would fail, so an answer proves the gateway
        // served the passed socket.
        .args(["gateway", "--listen", &addr])
        .env_remove("NOTIFY_SOCKET")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("systemd-socket-activate");
    let stderr = child.stderr.take().expect("stderr");
    let child = Killed(child);
    // Readiness: systemd-socket-activate says it listens before it starts the gateway.
    let mut lines = BufReader::new(stderr).lines();
    let listening = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|l| l.contains("Listening on"));
    assert!(
        listening.is_some(),
        "systemd-socket-activate did not listen"
    );
    let log = std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<_>>());

    let out = tokio::task::spawn_blocking(move || {
        Command::new(curl)
            .args(["-sS", "--max-time", "20"])
            .arg(format!("http://{addr}/v1/pdus"))
            .output()
    })
    .await
    .expect("join")
    .expect("curl");
    let body = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "curl: {body}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(list["pdus"][0]["pdu"], "rack1", "{body}");
    assert_eq!(list["pdus"][0]["ok"], true, "{body}");

    // The gateway holds the inherited listener as fd 3, close-on-exec.
    let pid = child.0.id();
    let fdinfo = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/3")).expect("fd 3");
    let flags = fdinfo
        .lines()
        .find_map(|l| l.strip_prefix("flags:"))
        .and_then(|f| u32::from_str_radix(f.trim(), 8).ok())
        .expect("flags");
    assert_ne!(flags & 0o2000000, 0, "fd 3 not close-on-exec: {fdinfo}");
    let link = std::fs::read_link(format!("/proc/{pid}/fd/3")).expect("fd 3 link");
    assert!(link.to_string_lossy().starts_with("socket:"), "{link:?}");
    let environ = std::fs::read(format!("/proc/{pid}/environ")).expect("environ");
    // (the initial environment: the gateway removed LISTEN_* from its own afterwards)
    assert!(String::from_utf8_lossy(&environ).contains("LISTEN_FDS=1"));

    drop(child);
    let log = log.join().expect("log").join("\n");
    assert!(log.contains("serving a socket systemd passed"), "{log}");
    assert!(!log.contains("cannot listen"), "{log}");
}
