//! Interactive sessions, as a person or LAVA's pexpect sees them: lava-console on a pty.

use nix::sys::signal::Signal;

use crate::harness::{find, Lab};

#[test]
fn board_output_shows_typed_lines_reach_the_board_and_tilde_dot_restores_the_terminal() {
    let mut lab = Lab::start();
    let mut con = lab.attach(&["panda01"]);
    let before = con.initial.clone();
    con.output.expect(b"panda01 on 127.0.0.1:");
    con.output.expect(b"PandaBoard ES, test rack");

    lab.board.say(b"U-Boot 2024.01\r\n=> ");
    con.output.expect(b"U-Boot 2024.01\r\n=> ");

    // In raw mode ^C is a byte for the board, not a signal for lava-console.
    con.send(b"sleep 10\x03");
    lab.board.input.expect(b"sleep 10\x03");
    con.send(b"printenv\r");
    lab.board.input.expect(b"printenv\r");
    // A tilde inside a line is data.
    con.send(b"echo a~.b\r");
    lab.board.input.expect(b"echo a~.b\r");

    con.send(b"~.");
    let status = con.wait();
    assert_eq!(status.code(), Some(0), "~. exits 0");
    assert_eq!(con.termios(), before, "terminal settings restored after ~.");
    let typed = lab.board.input.bytes();
    assert_eq!(
        typed, b"sleep 10\x03printenv\recho a~.b\r",
        "the escape never reached the board"
    );
}

#[test]
fn alias_attaches_and_break_escape_passes_the_next_key() {
    let lab = Lab::start();
    let mut con = lab.attach(&["panda-1"]);
    con.output.expect(b"panda01 on");
    con.send(b"~Bh");
    con.output.expect(b"BREAK sent");
    lab.board.input.expect(b"h");
    con.send(b"\r~?");
    con.output.expect(b"~$hardreset");
    con.send(b"~~x\r~.");
    assert_eq!(con.wait().code(), Some(0));
    lab.board.input.expect(b"~x\r");
    assert_eq!(
        lab.board.input.bytes(),
        b"h\r~x\r",
        "~B and ~? are not sent; ~~ is one ~"
    );
}

#[test]
fn every_byte_from_the_board_arrives_intact_with_escapes_off() {
    let mut lab = Lab::start();
    let mut con = lab.attach(&["-e", "none", "panda01"]);
    let before = con.initial.clone();
    con.output.expect(b"no escapes");
    let all: Vec<u8> = (0..=255u8).collect();
    let mut frame = b"<<".to_vec();
    frame.extend_from_slice(&all);
    frame.extend_from_slice(b">>");
    lab.board.say(&frame);
    con.output.expect(b">>");
    let out = con.output.bytes();
    let at = find(&out, b"<<").expect("frame start");
    assert_eq!(
        &out[at..at + frame.len()],
        &frame[..],
        "0x00..0xFF through telnet and the pty"
    );

    // With escapes off, ~. is data.
    con.send(b"\r~.\r");
    lab.board.input.expect(b"\r~.\r");
    con.signal(Signal::SIGTERM);
    let status = con.wait();
    assert_eq!(status.code(), Some(128 + 15), "SIGTERM ends the session");
    assert_eq!(con.termios(), before, "terminal restored after SIGTERM");
}

#[test]
fn sighup_restores_the_terminal() {
    let lab = Lab::start();
    let mut con = lab.attach(&["panda01"]);
    let before = con.initial.clone();
    con.output.expect(b"panda01 on");
    assert_ne!(con.termios(), before, "raw mode is on during the session");
    con.signal(Signal::SIGHUP);
    assert_eq!(con.wait().code(), Some(128 + 1));
    assert_eq!(con.termios(), before);
}

#[test]
fn lost_connection_ends_the_session_and_restores_the_terminal() {
    let mut lab = Lab::start();
    let mut con = lab.attach(&["panda01"]);
    let before = con.initial.clone();
    con.output.expect(b"panda01 on");
    let _ = lab.board.service.0.kill();
    let _ = lab.board.service.0.wait();
    let status = con.wait();
    assert_eq!(
        status.code(),
        Some(1),
        "a lost console is an error for a person"
    );
    con.output.expect(b"closed");
    assert_eq!(con.termios(), before);
}

#[test]
fn adapter_gone_is_shown_and_the_session_stays() {
    let mut lab = Lab::start();
    let mut con = lab.attach(&["panda01"]);
    con.output.expect(b"panda01 on");
    // Unplug: close every handle on the pty master; lava-serial sees the device hang up.
    lab.board.unplug();
    con.output.expect(b"[lava-serial: panda01 adapter gone]");
    con.send(b"~.");
    assert_eq!(
        con.wait().code(),
        Some(0),
        "the session was still there after the unplug"
    );
}

#[test]
fn hardreset_escape_powers_the_board_and_reports_in_the_session() {
    let lab = Lab::start();
    let mut con = lab.attach(&["panda01"]);
    con.output.expect(b"panda01 on");
    con.send(b"~$hardreset\r");
    con.output
        .expect(b"panda01: hardreset done (PDU magic-hack outlet 3");
    assert_eq!(lab.pdu.log(), "off 3\non 3\n");
    con.send(b"~$status\r");
    con.output.expect(b"panda01: power is on");
    con.send(b"~$bogus\r");
    con.output.expect(b"unknown command `bogus`");
    con.send(b"~.");
    assert_eq!(con.wait().code(), Some(0));
    assert!(
        lab.board.input.bytes().is_empty(),
        "power escapes never reach the board"
    );
}

#[test]
fn spy_cannot_write() {
    let lab = Lab::start();
    let mut spy = lab.attach(&["--spy", "panda01"]);
    spy.output.expect(b"read-only");
    spy.send(b"reboot\r");
    spy.output.expect(b"keys are not sent");
    spy.send(b"~.");
    assert_eq!(spy.wait().code(), Some(0));
    // A writer afterwards: its line arrives, the spy's never did.
    let mut w = lab.attach(&["panda01"]);
    w.output.expect(b"panda01 on");
    w.send(b"marker\r~.");
    lab.board.input.expect(b"marker\r");
    assert_eq!(w.wait().code(), Some(0));
    assert_eq!(lab.board.input.bytes(), b"marker\r");
}

#[test]
fn raw_protocol_board_relays_bytes_untouched() {
    let mut lab = Lab::start_with("raw");
    let mut con = lab.attach(&["-e", "none", "panda01"]);
    con.output.expect(b"panda01 on");
    lab.board.say(b"\xff\xfb\x01raw\r\n");
    con.output.expect(b"\xff\xfb\x01raw\r\n");
    con.send(b"\xff\xff");
    lab.board.input.expect(b"\xff\xff");
    con.signal(Signal::SIGTERM);
    con.wait();
    assert_eq!(lab.board.input.bytes(), b"\xff\xff", "raw: no IAC doubling");
}
