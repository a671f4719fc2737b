//! Bytes end to end: all 256 values both ways (raw and telnet), fan-out of a megabyte to 8
//! clients, and a stalled client that loses only its own bytes and is told exactly how many.

use lava_common::telnet::TelnetClient;
use lava_common::Protocol;

use crate::util::*;

fn all_bytes(times: usize) -> Vec<u8> {
    (0..times).flat_map(|_| 0..=255u8).collect()
}

#[test]
fn raw_mode_carries_all_256_byte_values_both_ways() {
    let pty = Pty::new();
    let server = Server::start(config(&pty.slave_path, Protocol::Raw));
    let mut c = Conn::connect(server.addr);
    // Client -> board first: its arrival also proves the client is subscribed.
    let up = all_bytes(4);
    c.send(&up);
    assert_eq!(pty.read_exact(up.len()), up);
    let down = all_bytes(4);
    pty.write(&down);
    c.read_len(down.len());
    assert_eq!(c.got, down);
}

#[test]
fn telnet_mode_carries_all_256_byte_values_both_ways() {
    let pty = Pty::new();
    let server = Server::start(config(&pty.slave_path, Protocol::Telnet));
    let mut c = Conn::connect(server.addr);
    let mut t = TelnetClient::new();
    // The greeting: WILL ECHO, WILL SGA, DO SGA, WILL BINARY, DO BINARY.
    c.read_until("the telnet greeting", |g| g.len() >= 15);
    assert_eq!(
        &c.got[..15],
        &[255, 251, 1, 255, 251, 3, 255, 253, 3, 255, 251, 0, 255, 253, 0]
    );
    let (mut data, mut reply) = (Vec::new(), Vec::new());
    t.receive(&std::mem::take(&mut c.got), &mut data, &mut reply);
    assert!(data.is_empty());
    c.send(&reply);
    assert!(t.client_binary() && t.server_binary(), "BINARY both ways");
    // Client -> board: 0xFF doubled on the wire, single at the board.
    let up = all_bytes(4);
    let mut wire = Vec::new();
    t.encode_data(&up, &mut wire);
    assert_eq!(wire.len(), up.len() + 4, "each 0xFF doubled");
    c.send(&wire);
    assert_eq!(pty.read_exact(up.len()), up);
    // Board -> client: every 0xFF arrives doubled and decodes back.
    let down = all_bytes(4);
    pty.write(&down);
    c.read_len(down.len() + 4);
    let iac_pairs = c.got.windows(2).filter(|w| w == &[255, 255]).count();
    assert!(iac_pairs >= 4);
    let (mut data, mut reply) = (Vec::new(), Vec::new());
    t.receive(&c.got, &mut data, &mut reply);
    assert_eq!(data, down);
}

/// A pattern with no `[` or `\r` in it, so notices can be told apart, and position-dependent.
fn pattern(offset: usize, len: usize) -> Vec<u8> {
    (offset..offset + len)
        .map(|i| b'a' + ((i * 7 + i / 251) % 26) as u8)
        .collect()
}

#[test]
fn eight_clients_all_get_the_same_megabyte() {
    let pty = Pty::new();
    let server = Server::start(config(&pty.slave_path, Protocol::Raw));
    // Read-only clients: no "writer attached" notices, so each stream is exactly the data.
    let clients: Vec<Conn> = (0..8)
        .map(|i| Conn::hello(server.addr, &format!("readonly client=c{i}")).0)
        .collect();
    let total = 1 << 20;
    let data = pattern(0, total);
    let readers: Vec<_> = clients
        .into_iter()
        .map(|mut c| {
            std::thread::spawn(move || {
                c.read_len(total);
                c.got
            })
        })
        .collect();
    pty.write(&data);
    for r in readers {
        let got = r.join().expect("reader");
        assert!(got == data, "every client gets every byte, in order");
    }
}

/// Whether `got` is the pattern from `offset` on (no allocation: runs on megabytes).
fn is_pattern(offset: usize, got: &[u8]) -> bool {
    got.iter()
        .enumerate()
        .all(|(k, &b)| b == b'a' + (((offset + k) * 7 + (offset + k) / 251) % 26) as u8)
}

/// Splits a stalled client's stream into data runs and lost-byte notices, checking that every
/// data byte sits at its place in the board's stream; returns (data bytes, lost bytes).
fn account(g: &[u8]) -> (usize, usize) {
    const LOST: &[u8] = b"\r\n[lava-serial: b1 lost ";
    let (mut data, mut lost, mut i) = (0usize, 0usize, 0usize);
    while i < g.len() {
        if g[i..].starts_with(LOST) {
            let Some(len) = g[i..].windows(3).position(|w| w == b"]\r\n") else {
                break; // an incomplete notice: read more
            };
            let line = String::from_utf8_lossy(&g[i..i + len + 3]).into_owned();
            assert!(line.ends_with(" bytes (client too slow)]\r\n"), "{line:?}");
            let n: usize = line
                .split_whitespace()
                .nth(3)
                .and_then(|w| w.parse().ok())
                .unwrap_or_else(|| panic!("bad notice {line:?}"));
            lost += n;
            i += len + 3;
        } else {
            let run = g[i..]
                .iter()
                .position(|&b| b == b'\r')
                .unwrap_or(g.len() - i);
            if run == 0 {
                break; // the start of a notice not complete yet
            }
            assert!(
                is_pattern(data + lost, &g[i..i + run]),
                "stalled client's data at stream offset {} is wrong",
                data + lost
            );
            data += run;
            i += run;
        }
    }
    (data, lost)
}

#[test]
fn a_stalled_client_loses_only_its_own_bytes_and_is_told_exactly_how_many() {
    use std::io::Read;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    let pty = Pty::new();
    let server = Server::start(config(&pty.slave_path, Protocol::Raw));
    let (mut stalled, _) = Conn::hello(server.addr, "readonly client=stalled");
    let (reader, _) = Conn::hello(server.addr, "readonly client=reader");
    let total = 48 << 20;
    let step = 256 << 10;
    let progress = Arc::new(AtomicUsize::new(0));
    let seen = progress.clone();
    let reading = std::thread::spawn(move || {
        let mut reader = reader;
        let mut n = 0usize;
        let mut buf = vec![0u8; 1 << 16];
        while n < total {
            match reader.s.read(&mut buf) {
                Ok(0) => panic!("closed"),
                Ok(k) => {
                    assert!(
                        is_pattern(n, &buf[..k]),
                        "the reading client's bytes at {n} are exact"
                    );
                    n += k;
                    seen.store(n, Ordering::Release);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("reader: {e}"),
            }
        }
    });
    // The board writes 48 MiB, each step only once the reading client has the previous one: the
    // reading client keeps pace with the board while the other reads nothing at all.
    let data = pattern(0, total);
    let end = std::time::Instant::now() + std::time::Duration::from_secs(120);
    for (i, chunk) in data.chunks(step).enumerate() {
        pty.write(chunk);
        while progress.load(Ordering::Acquire) < (i + 1) * step.min(total) {
            assert!(
                std::time::Instant::now() < end,
                "the reading client stalled at {} bytes",
                progress.load(Ordering::Acquire)
            );
            std::thread::yield_now();
        }
    }
    reading
        .join()
        .expect("the reading client got every byte, exactly");
    // The stalled client now reads: its data plus the losses it was told of add up exactly.
    // (Accounted whenever the stream pauses: parsing megabytes on every read would be slow.)
    let end = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        if !stalled.read_some() {
            let (d, l) = account(&stalled.got);
            if d + l >= total {
                break;
            }
        }
        assert!(
            std::time::Instant::now() < end,
            "the stalled client never caught up"
        );
    }
    let (d, l) = account(&stalled.got);
    assert!(l > 0, "the stalled client must have lost bytes");
    assert_eq!(
        d + l,
        total,
        "data received + lost reported = everything the board wrote"
    );
}

/// A board that reads nothing for a while holds the device's writes off: the client's bytes wait
/// (none lost, none reordered), and meanwhile the board's own output still reaches the client (a
/// held-off write does not stall the port).
#[test]
fn a_board_that_reads_late_gets_every_byte_and_keeps_talking_meanwhile() {
    use std::io::Write;
    let pty = Pty::new();
    let server = Server::start(config(&pty.slave_path, Protocol::Raw));
    let mut c = Conn::connect(server.addr);
    // 4 MiB: far more than the pty and the port's write queue hold.
    let total = 4 << 20;
    let up = pattern(0, total);
    let mut s = c.s.try_clone().expect("clone the socket");
    let sending = {
        let up = up.clone();
        std::thread::spawn(move || s.write_all(&up).expect("upload"))
    };
    // The device takes the first bytes, then fills: the board has not read anything.
    let mut fds = [nix::poll::PollFd::new(
        std::os::fd::AsFd::as_fd(&pty.master),
        nix::poll::PollFlags::POLLIN,
    )];
    let ready = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(5000u16)).expect("poll");
    assert_eq!(ready, 1, "the client's bytes reach the board's side");
    pty.write(b"[still talking]");
    c.read_until_contains(b"[still talking]");
    let got = pty.read_exact(total);
    assert!(got == up, "every byte the client wrote, in order");
    sending.join().expect("upload thread");
}
