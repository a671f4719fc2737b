//! Scripted sessions: stdin not a terminal, a clean byte pipe (`printf 'help\n' | lava-console`).

use std::io::Write;
use std::process::Stdio;

use crate::harness::{wait_child, Lab};

/// Runs lava-console with `input` on a pipe while the board answers `help` with `answer`.
fn pipe_session(lab: &mut Lab, args: &[&str], input: &[u8], answer: &[u8]) -> std::process::Output {
    let mut child = lab.spawn_piped(args, Stdio::piped());
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(input).expect("write stdin");
    drop(stdin);
    lab.board.input.expect(b"help\n");
    lab.board.say(answer);
    child.wait_with_output().expect("wait")
}

#[test]
fn printf_help_is_a_clean_pipe() {
    let mut lab = Lab::start();
    let answer = b"help - print command description\r\n\xff\x00=> ";
    let out = pipe_session(&mut lab, &["panda01"], b"help\n", answer);
    assert_eq!(out.status.code(), Some(0), "stdin EOF + linger ends with 0");
    assert_eq!(out.stdout, answer, "stdout carries the board's bytes only");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("panda01 on 127.0.0.1:"),
        "banner on stderr: {err}"
    );
    assert_eq!(
        lab.board.input.bytes(),
        b"help\n",
        "no hello or escape bytes reach the board"
    );
}

#[test]
fn notices_go_to_stderr_in_a_pipe() {
    let mut lab = Lab::start();
    // A second writer joins while a scripted session runs: lava-serial announces it in-band.
    let mut child = lab.spawn_piped(&["--linger", "2s", "panda01"], Stdio::piped());
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(b"first\n").expect("write");
    lab.board.input.expect(b"first\n");
    let second = lab.run(["--name", "bob@desk", "panda01"]);
    assert_eq!(second.status.code(), Some(0));
    lab.board.say(b"after\r\n");
    drop(stdin);
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        out.stdout, b"after\r\n",
        "stdout: board bytes only, no notices"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("[lava-serial: panda01 writer attached: bob@desk]"),
        "{err}"
    );
}

#[test]
fn peer_close_ends_a_pipe_session() {
    let mut lab = Lab::start();
    let mut child = lab.spawn_piped(&["--linger", "60s", "panda01"], Stdio::null());
    // The session is up once lava-serial counts it: a second client sees it in its banner.
    let mut seen = String::new();
    for _ in 0..100 {
        let probe = lab.run(["--spy", "--linger", "0s", "panda01"]);
        seen = String::from_utf8_lossy(&probe.stderr).into_owned();
        if seen.contains("1 other attached") {
            break;
        }
    }
    assert!(seen.contains("1 other attached"), "{seen}");
    let _ = lab.board.service.0.kill();
    let status = wait_child(&mut child);
    assert_eq!(
        status.code(),
        Some(0),
        "the peer closing ends a scripted session"
    );
}

#[test]
fn terminal_server_console_gets_no_hello() {
    // bad01's console is a plain host:port (here lava-serial's port, reached as a plain client).
    let mut lab = Lab::start();
    let out = pipe_session(&mut lab, &["bad01"], b"help\n", b"ok\r\n");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(out.stdout, b"ok\r\n");
    assert_eq!(
        lab.board.input.bytes(),
        b"help\n",
        "no LAVA-SERIAL hello sent"
    );
}

#[test]
fn replay_shows_the_last_lines() {
    let mut lab = Lab::start();
    // The board prints before anyone attaches; lava-serial keeps it in its scrollback.
    lab.board.say(b"line1\r\nline2\r\nline3\r\n");
    // Wait until lava-serial has read it: an --replay all session shows it.
    let replay_all = || lab.run(["--replay", "all", "--linger", "0s", "panda01"]);
    let mut all = replay_all();
    for _ in 0..50 {
        if String::from_utf8_lossy(&all.stdout).contains("line3") {
            break;
        }
        all = replay_all();
    }
    assert_eq!(all.stdout, b"line1\r\nline2\r\nline3\r\n");
    let two = lab.run(["--replay", "2", "--linger", "0s", "panda01"]);
    assert_eq!(two.stdout, b"line2\r\nline3\r\n");
}
