//! The hello line of docs/protocols.md §1: replay with no gap and no duplicate, read-only,
//! client names in the answer and in notices, and refusal of a bad hello.

use lava_common::Protocol;

use crate::util::*;

#[test]
fn replay_then_live_with_no_gap_and_no_duplicate() {
    let pty = Pty::new();
    let server = Server::start(config(&pty.slave_path, Protocol::Raw));
    // A plain client proves the port is reading before the board talks.
    let (mut first, answer) = Conn::hello(server.addr, "readonly client=first");
    assert!(
        answer.starts_with(
            "LAVA-SERIAL/1 OK board=b1 clients=0 writers=0 adapter=present replay=0 who=\r\n"
        ),
        "{answer:?}"
    );
    pty.write(b"0123456789");
    first.read_len(10);
    let (mut c, answer) = Conn::hello(server.addr, "replay=4 client=alice@laptop");
    assert_eq!(
        answer,
        "LAVA-SERIAL/1 OK board=b1 clients=1 writers=0 adapter=present replay=4 who=first:ro\r\n"
    );
    pty.write(b"abc");
    c.read_len(7);
    assert_eq!(c.got, b"6789abc");
    let (mut all, answer) = Conn::hello(server.addr, "replay=all readonly");
    assert!(answer.contains(" replay=13 "), "{answer:?}");
    assert!(
        answer.contains("who=first:ro,alice@laptop:rw"),
        "{answer:?}"
    );
    all.read_len(13);
    assert_eq!(all.got, b"0123456789abc");
}

#[test]
fn readonly_clients_cannot_write_and_writers_are_announced() {
    let pty = Pty::new();
    let server = Server::start(config(&pty.slave_path, Protocol::Raw));
    let (mut spy, _) = Conn::hello(server.addr, "readonly client=spy");
    spy.send(b"IGNORED");
    let (mut w, answer) = Conn::hello(server.addr, "client=bob");
    assert!(answer.contains("clients=1 writers=0"), "{answer:?}");
    spy.read_until_contains(&notice("writer attached: bob"));
    w.send(b"from-bob\r");
    let got = pty.read_contains(b"from-bob\r");
    assert_eq!(
        got, b"from-bob\r",
        "the read-only client's bytes never reached the board"
    );
    drop(w);
    spy.read_until_contains(&notice("writer left: bob"));
}

#[test]
fn plain_clients_are_read_write_and_get_no_answer_line() {
    let pty = Pty::new();
    let server = Server::start(config(&pty.slave_path, Protocol::Raw));
    let mut c = Conn::connect(server.addr);
    c.send(b"ls\r");
    assert_eq!(pty.read_exact(3), b"ls\r");
    pty.write(b"out");
    c.read_len(3);
    assert_eq!(c.got, b"out");
}

#[test]
fn a_bad_hello_is_refused_and_closed() {
    let pty = Pty::new();
    let server = Server::start(config(&pty.slave_path, Protocol::Raw));
    let mut c = Conn::connect(server.addr);
    c.send(b"LAVA-SERIAL/1 replay=lots\r\n");
    assert!(c.closed());
    let text = String::from_utf8_lossy(&c.got);
    assert!(
        text.starts_with("LAVA-SERIAL/1 ERR bad replay `lots`"),
        "{text:?}"
    );
}

#[test]
fn telnet_clients_may_send_a_hello_too() {
    let pty = Pty::new();
    let server = Server::start(config(&pty.slave_path, Protocol::Telnet));
    let (mut c, answer) = {
        let mut c = Conn::connect(server.addr);
        c.send(b"LAVA-SERIAL/1 client=tc\r\n");
        c.read_until_contains(b"LAVA-SERIAL/1 OK");
        c.read_until_contains(b"\r\n");
        let text = String::from_utf8_lossy(&c.got).into_owned();
        (c, text)
    };
    assert!(
        answer.contains("LAVA-SERIAL/1 OK board=b1 clients=0"),
        "{answer:?}"
    );
    c.got.clear();
    pty.write(b"hi");
    c.read_until_contains(b"hi");
}

/// A client whose first bytes are telnet negotiation only (Debian's telnet answering the greeting,
/// pyserial) is a plain client at once: its output is not held for a hello, and a hello-looking
/// line it types later is board input. How soon such a client gets its first byte is measured in
/// bench/serial.sh (Debian telnet's attach time).
#[test]
fn negotiation_first_makes_a_plain_client_at_once() {
    const IAC: u8 = 255;
    const DO: u8 = 253;
    const WONT: u8 = 252;
    const TIMING_MARK: u8 = 6;
    let pty = Pty::new();
    let server = Server::start(config(&pty.slave_path, Protocol::Telnet));
    let mut c = Conn::connect(server.addr);
    // An option the server refuses, so its answer proves it has read this negotiation-only write.
    c.send(&[IAC, DO, TIMING_MARK]);
    c.read_until_contains(&[IAC, WONT, TIMING_MARK]);
    c.send(b"LAVA-SERIAL/1 readonly\r\n");
    let got = pty.read_contains(b"LAVA-SERIAL/1 readonly");
    assert!(contains(&got, b"LAVA-SERIAL/1 readonly"), "{got:?}");
    assert!(
        !contains(&c.got, b"LAVA-SERIAL/1 OK"),
        "no answer line for a plain client"
    );
}
