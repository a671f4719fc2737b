//! The command driver with real processes, through a real instance socket: a command that exits 1,
//! one that hangs past its timeout (its whole process group killed), a program that does not exist,
//! a status command; each answered within the deadline while the instance keeps serving.

use std::time::{Duration, Instant};

use lava_power::client::{Action, ActionResult, PowerClient, StateReport, StateSource};

use crate::support::Lab;

/// A power request that must be answered (whether it succeeded or not).
async fn act(c: &PowerClient, outlet: &str, action: Action) -> ActionResult {
    c.action(outlet, action, None, "test")
        .await
        .expect("answer")
}

#[tokio::test]
async fn a_failing_command_is_a_failure_with_its_own_words() {
    let lab = Lab::new();
    let cfg = lab.config(
        "bad",
        "driver = \"command\"\non = [\"sh\", \"-c\", \"echo port {outlet}: no such relay >&2; exit 1\"]\noff = [\"true\"]\nretries = 1\nretry_delay = \"10ms\"\n",
    );
    let (_stop, c) = lab.start(&cfg).await;
    let r = act(&c, "3", Action::On).await;
    assert!(!r.ok);
    assert_eq!(r.attempts, 2);
    let why = r.error.expect("reason");
    assert!(why.contains("exited with status 1"), "{why}");
    assert!(why.contains("port 3: no such relay"), "{why}");
    // still serving
    let r = act(&c, "3", Action::Off).await;
    assert!(r.ok, "{r:?}");
}

fn alive(pid: i32) -> bool {
    // A zombie still "exists"; look at its state.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s.split(") ").nth(1).is_some_and(|r| r.starts_with('Z')),
        Err(_) => false,
    }
}

#[tokio::test]
async fn a_hanging_command_is_killed_with_its_children_and_the_caller_answered_in_time() {
    let lab = Lab::new();
    let pids = lab.path("pids");
    let cfg = lab.config(
        "hang",
        &format!(
            "driver = \"command\"\non = [\"sh\", \"-c\", \"sleep 300 & echo $! >> {p}; echo $$ >> {p}; wait\"]\noff = [\"true\"]\ntimeout = \"500ms\"\nretries = 1\nretry_delay = \"100ms\"\ndeadline = \"3s\"\nreboot_delay = \"1s\"\n",
            p = pids.display()
        ),
    );
    let (_stop, c) = lab.start(&cfg).await;
    let t0 = Instant::now();
    let r = act(&c, "1", Action::On).await;
    assert!(!r.ok);
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    assert!(
        r.error
            .as_deref()
            .unwrap_or("")
            .contains("did not answer within 500ms"),
        "{r:?}"
    );
    assert_eq!(r.attempts, 2);
    // Every process of both attempts (the shell and its sleep) is gone.
    let text = std::fs::read_to_string(&pids).expect("pids written");
    let pids: Vec<i32> = text.lines().filter_map(|l| l.trim().parse().ok()).collect();
    assert_eq!(pids.len(), 4, "{text}");
    let deadline = Instant::now() + Duration::from_secs(2);
    while pids.iter().any(|&p| alive(p)) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for p in pids {
        assert!(!alive(p), "process {p} survived its timeout");
    }
    let r = act(&c, "1", Action::Off).await;
    assert!(r.ok, "{r:?}");
}

#[tokio::test]
async fn an_unreachable_pdu_fails_and_the_status_code_says_so() {
    let lab = Lab::new();
    let cfg = lab.config(
        "gone",
        "driver = \"command\"\non = [\"/nonexistent/relayctl\", \"{outlet}\"]\noff = [\"true\"]\nretries = 0\n",
    );
    let (_stop, c) = lab.start(&cfg).await;
    let r = act(&c, "1", Action::On).await;
    assert!(!r.ok);
    assert!(
        r.error.as_deref().unwrap_or("").contains("PDU unreachable"),
        "{r:?}"
    );
    assert_eq!(c.health().await.expect("health").queued, 0);
}

#[tokio::test]
async fn status_reads_through_the_command_or_says_remembered() {
    let lab = Lab::new();
    let state = lab.path("state");
    std::fs::write(&state, "OFF\n").expect("write");
    let cfg = lab.config(
        "readable",
        &format!(
            "driver = \"command\"\non = [\"sh\", \"-c\", \"echo on > {s}\"]\noff = [\"sh\", \"-c\", \"echo off > {s}\"]\nstatus = [\"cat\", \"{s}\"]\noutlet_count = 8\n[outlets]\n\"2\" = \"panda01\"\n",
            s = state.display()
        ),
    );
    let (_stop, c) = lab.start(&cfg).await;
    let s = c.status("panda01").await.expect("status");
    assert_eq!(
        (s.outlet.as_str(), s.state, s.source),
        ("2", StateReport::Off, StateSource::Read)
    );
    assert_eq!(s.name.as_deref(), Some("panda01"));
    assert!(act(&c, "2", Action::On).await.ok);
    assert_eq!(c.status("02").await.expect("status").state, StateReport::On);
    let list = c.outlets().await.expect("outlets");
    assert_eq!(list.outlets.len(), 8);
    // outlet 9 does not exist on an 8-outlet PDU
    let e = c.status("9").await.expect_err("no outlet 9");
    assert_eq!(e.status(), Some(404), "{e}");
    let e = c
        .action("9", Action::On, None, "t")
        .await
        .expect_err("no outlet 9");
    assert_eq!(e.status(), Some(404), "{e}");
    std::fs::write(&state, "garbage\n").expect("write");
    let e = c.status("1").await.expect_err("garbage");
    assert_eq!(e.status(), Some(502), "{e}");
    assert!(e.to_string().contains("garbage"), "{e}");

    let cfg = lab.command_pdu("blind", "");
    let (_stop2, c) = lab.start(&cfg).await;
    let s = c.status("4").await.expect("status");
    assert_eq!(
        (s.state, s.source),
        (StateReport::Unknown, StateSource::None)
    );
    assert!(act(&c, "4", Action::Off).await.ok);
    let s = c.status("4").await.expect("status");
    assert_eq!(
        (s.state, s.source),
        (StateReport::Off, StateSource::Remembered)
    );
}

#[tokio::test]
async fn a_missing_instance_is_a_clear_error() {
    let lab = Lab::new();
    let c = PowerClient::instance(&lab.runtime, "ghost");
    let e = c.health().await.expect_err("nobody there");
    let text = e.to_string();
    assert!(
        text.starts_with("cannot reach lava-power instance ghost at "),
        "{text}"
    );
    assert!(text.contains("is lava-power@ghost running?"), "{text}");
}

#[tokio::test]
async fn a_live_socket_is_refused_and_a_stale_one_replaced() {
    let lab = Lab::new();
    let cfg = lab.command_pdu("dup", "");
    let (stop, _c) = lab.start(&cfg).await;
    let e = lava_power::serve::bind_socket(&lab.runtime, "dup").expect_err("in use");
    assert!(e.to_string().contains("already serving dup"), "{e}");
    drop(stop);
    // a socket file nobody listens on
    let path = lab.runtime.join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&path).expect("bind"));
    assert!(path.exists());
    lava_power::serve::bind_socket(&lab.runtime, "stale").expect("stale socket replaced");
}

#[tokio::test]
async fn garbage_on_the_api_socket_gets_an_error_not_a_crash() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let lab = Lab::new();
    let cfg = lab.command_pdu("g", "");
    let (_stop, c) = lab.start(&cfg).await;
    for garbage in [
        &b"\x00\x01\x02\xff\r\n\r\n"[..],
        b"POST /v1/outlets/1/on HTTP/1.1\r\nContent-Length: 5\r\n\r\n{{{{{",
    ] {
        let mut s = tokio::net::UnixStream::connect(lab.runtime.join("g.sock"))
            .await
            .expect("connect");
        s.write_all(garbage).await.expect("write");
        let mut out = Vec::new();
        s.read_to_end(&mut out).await.expect("read");
        assert!(
            out.starts_with(b"HTTP/1.1 400 "),
            "{}",
            String::from_utf8_lossy(&out)
        );
    }
    assert!(c.health().await.expect("still up").ok);
}
