//! The console log through the running server: timestamped lines, client and adapter events,
//! rotation by size.

use std::os::unix::fs::symlink;

use lava_common::Protocol;

use crate::util::*;

fn is_stamped(line: &str) -> bool {
    let b = line.as_bytes();
    b.len() >= 28
        && b[4] == b'-'
        && b[10] == b'T'
        && b[19] == b'.'
        && b[26] == b'Z'
        && b[27] == b' '
        && line[20..26].bytes().all(|c| c.is_ascii_digit())
}

#[test]
fn log_holds_stamped_lines_and_events() {
    let dir = tempfile::tempdir().expect("tempdir");
    let link = dir.path().join("dev");
    let log = dir.path().join("logs/b1.log");
    let pty = Pty::new();
    symlink(&pty.slave_path, &link).expect("symlink");
    let server = Server::start(with_log(config(&link, Protocol::Raw), &log, 1 << 20));
    let (mut c, _) = Conn::hello(server.addr, "client=alice@laptop");
    pty.write(b"U-Boot 2024.01\r\nStarting kernel ...\r\n");
    c.read_until_contains(b"kernel ...\r\n");
    drop(pty);
    std::fs::remove_file(&link).expect("rm");
    c.read_until_contains(&notice("adapter gone"));
    drop(c);
    // Wait until the port has seen the client leave: a new client is then told it is alone.
    let end = std::time::Instant::now() + DEADLINE;
    while !Conn::hello(server.addr, "readonly").1.contains("clients=0") {
        assert!(std::time::Instant::now() < end, "the client never left");
    }
    drop(server); // joins the log writer: everything is on disk
    let text = std::fs::read_to_string(&log).expect("log written");
    let lines: Vec<&str> = text.split_terminator('\n').collect();
    for l in &lines {
        assert!(is_stamped(l), "unstamped line {l:?} in\n{text}");
    }
    let bodies: Vec<&str> = lines.iter().map(|l| &l[28..]).collect();
    assert!(
        bodies.iter().any(|b| b
            .starts_with("[lava-serial: b1 client connected: alice@laptop (127.0.0.1:")
            && b.ends_with(") rw]")),
        "{text}"
    );
    assert!(bodies.contains(&"U-Boot 2024.01\r"), "{text}");
    assert!(bodies.contains(&"Starting kernel ...\r"), "{text}");
    assert!(
        bodies
            .iter()
            .any(|b| b.starts_with("[lava-serial: b1 adapter gone")),
        "{text}"
    );
    assert!(
        bodies
            .iter()
            .any(|b| b.starts_with("[lava-serial: b1 client disconnected: alice@laptop")),
        "{text}"
    );
}

#[test]
fn log_rotates_by_size() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("b1.log");
    let pty = Pty::new();
    let server = Server::start(with_log(
        config(&pty.slave_path, Protocol::Raw),
        &log,
        64 * 1024,
    ));
    let (mut c, _) = Conn::hello(server.addr, "readonly");
    let line = b"[    1.234567] a kernel line of about sixty bytes...........\r\n";
    let mut all = Vec::new();
    for _ in 0..4000 {
        all.extend_from_slice(line);
    }
    all.extend_from_slice(b"LAST LINE\r\n");
    pty.write(&all);
    c.read_until_contains(b"LAST LINE\r\n");
    drop(c);
    drop(server);
    let cur = std::fs::read_to_string(&log).expect("current");
    let one = std::fs::read_to_string(dir.path().join("b1.log.1")).expect("rotated .1");
    let two = std::fs::read_to_string(dir.path().join("b1.log.2")).expect("rotated .2");
    assert!(
        !dir.path().join("b1.log.3").exists(),
        "only `keep` rotated files are kept"
    );
    assert!(cur.contains("LAST LINE"));
    for f in [&cur, &one, &two] {
        assert!(
            f.len() < 64 * 1024 + 200,
            "a file outgrew the rotation size: {}",
            f.len()
        );
        assert!(f.lines().all(is_stamped));
    }
}
