//! The adapter coming and going: unplugged with clients attached (they stay, are told, and data
//! flows both ways once it is back under the same name), and a start without it.

use std::os::unix::fs::symlink;

use lava_common::Protocol;

use crate::util::*;

#[test]
fn unplug_and_replug_keeps_clients_and_data_flows_both_ways() {
    let dir = tempfile::tempdir().expect("tempdir");
    let link = dir.path().join("board-serial");
    let pty = Pty::new();
    symlink(&pty.slave_path, &link).expect("symlink");
    let server = Server::start(config(&link, Protocol::Raw));
    let (mut c, answer) = Conn::hello(server.addr, "client=lab");
    assert!(answer.contains("adapter=present"), "{answer:?}");
    pty.write(b"before");
    c.read_until_contains(b"before");

    // Unplug: the board's end closes and the device node goes.
    drop(pty);
    std::fs::remove_file(&link).expect("rm symlink");
    c.read_until_contains(&notice("adapter gone"));
    // Writes while gone are dropped, counted, and the writer is told.
    c.send(b"lost-keys");
    c.read_until_contains(&notice(
        "9 bytes written while the adapter was gone were dropped",
    ));

    // Replug: a new pty under the same name.
    let pty2 = Pty::new();
    symlink(&pty2.slave_path, &link).expect("symlink again");
    c.read_until_contains(&notice("adapter back"));
    pty2.write(b"after");
    c.read_until_contains(b"after");
    c.send(b"typed");
    let got = pty2.read_contains(b"typed");
    assert_eq!(
        got, b"typed",
        "nothing written while gone reaches the new device"
    );
}

#[test]
fn starting_without_the_device_listens_and_serves_once_it_appears() {
    let dir = tempfile::tempdir().expect("tempdir");
    let link = dir.path().join("later");
    let server = Server::start(config(&link, Protocol::Raw));
    let (mut c, answer) = Conn::hello(server.addr, "client=early");
    assert!(answer.contains("adapter=gone"), "{answer:?}");
    let pty = Pty::new();
    symlink(&pty.slave_path, &link).expect("symlink");
    c.read_until_contains(&notice("adapter back"));
    pty.write(b"booting");
    c.read_until_contains(b"booting");
    c.send(b"x");
    assert_eq!(pty.read_exact(1), b"x");
}
