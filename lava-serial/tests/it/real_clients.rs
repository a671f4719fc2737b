//! Real clients against the real binary or server: Debian's `telnet` driven through a pty, as
//! LAVA's dispatcher (pexpect) drives it, and pyserial's `rfc2217://` client changing the baud
//! rate and sending a BREAK, with `strace` showing the BREAK ioctls the server issued.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::symlink;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lava_common::Protocol;
use nix::sys::termios::{self, BaudRate};

use crate::util::*;

/// A process on a pty of its own, read and typed at like pexpect does.
struct Spawned {
    child: std::process::Child,
    term: Pty,
}

impl Spawned {
    fn spawn(cmd: &mut Command) -> Spawned {
        let term = Pty::new();
        // A terminal as telnet expects it: cooked, echoing; telnet switches it to raw itself.
        let mut t = termios::tcgetattr(&term.slave).expect("tcgetattr");
        t.local_flags |=
            termios::LocalFlags::ICANON | termios::LocalFlags::ECHO | termios::LocalFlags::ISIG;
        t.input_flags |= termios::InputFlags::ICRNL;
        t.output_flags |= termios::OutputFlags::OPOST | termios::OutputFlags::ONLCR;
        termios::tcsetattr(&term.slave, termios::SetArg::TCSANOW, &t).expect("tcsetattr");
        let io = |fd: &OwnedFd| Stdio::from(fd.try_clone().expect("dup"));
        let child = cmd
            .stdin(io(&term.slave))
            .stdout(io(&term.slave))
            .stderr(io(&term.slave))
            .spawn()
            .expect("spawn");
        Spawned { child, term }
    }

    fn expect(&self, needle: &str) -> Vec<u8> {
        self.term.read_contains(needle.as_bytes())
    }

    fn send(&self, text: &[u8]) {
        self.term.write(text);
    }

    fn wait_exit(&mut self) -> Option<i32> {
        let end = Instant::now() + DEADLINE;
        loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                return s.code();
            }
            assert!(Instant::now() < end, "the client did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn debian_telnet_sees_the_prompt_types_a_line_and_quits() {
    let telnet = tool("telnet", "telnet");
    let board = Pty::new();
    let server = Server::start(config(&board.slave_path, Protocol::Telnet));
    let mut t = Spawned::spawn(
        Command::new(telnet)
            .arg("127.0.0.1")
            .arg(server.addr.port().to_string()),
    );
    t.expect("Escape character is '^]'.");
    // Like LAVA, press Enter to wake the console; the board answers with its prompt.
    t.send(b"\r");
    board.read_contains(b"\r");
    board.write(b"\r\npanda01 login: ");
    t.expect("panda01 login: ");
    t.send(b"root\r");
    let got = board.read_contains(b"root\r");
    assert!(
        !got.contains(&0xff),
        "no telnet negotiation leaked into the board's input: {got:?}"
    );
    // Ctrl-] then `quit` ends telnet cleanly.
    t.send(&[0x1d]);
    t.expect("telnet>");
    t.send(b"quit\r");
    assert_eq!(t.wait_exit(), Some(0));
}

/// strace and the process it traces; dropping it stops both. (strace blocks fatal signals when
/// it runs a program with `-o`, so the traced lava-serial is the one sent SIGTERM.)
struct Traced(std::process::Child);

impl Drop for Traced {
    fn drop(&mut self) {
        let strace = self.0.id();
        let children = std::fs::read_to_string(format!("/proc/{strace}/task/{strace}/children"))
            .unwrap_or_default();
        for pid in children
            .split_whitespace()
            .filter_map(|p| p.parse::<i32>().ok())
        {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        let end = Instant::now() + DEADLINE;
        while Instant::now() < end {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn ospeed(fd: &impl AsFd) -> BaudRate {
    termios::cfgetospeed(&termios::tcgetattr(fd).expect("tcgetattr"))
}

/// pyserial's rfc2217 client against the binary run under `strace -e trace=ioctl`: the baud
/// change shows in the pty's termios, and the BREAK shows as the TIOCSBRK/TIOCCBRK ioctls the
/// server issued (a pty cannot carry a break itself; the kernel answers the ioctls with success).
#[test]
fn pyserial_rfc2217_changes_the_baud_rate_and_sends_a_break() {
    let strace = tool("strace", "strace");
    let python = venv_python();
    let dir = tempfile::tempdir().expect("tempdir");
    let board = Pty::new();
    let link = dir.path().join("dev");
    symlink(&board.slave_path, &link).expect("symlink");
    let trace = dir.path().join("trace");
    let notify_path = dir.path().join("notify");
    let notify = std::os::unix::net::UnixDatagram::bind(&notify_path).expect("notify");
    notify.set_read_timeout(Some(DEADLINE)).expect("timeout");
    let server = Command::new(strace)
        .args(["-f", "-qq", "-e", "trace=ioctl", "-o"])
        .arg(&trace)
        .arg(env!("CARGO_BIN_EXE_lava-serial"))
        .arg("--device")
        .arg(&link)
        .args(["--port", "0", "--name", "b1"])
        .env("NOTIFY_SOCKET", &notify_path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn strace");
    let server = Traced(server);
    let mut buf = [0u8; 512];
    let n = notify
        .recv(&mut buf)
        .expect("READY from lava-serial under strace");
    let status = String::from_utf8_lossy(&buf[..n]).into_owned();
    let port: u16 = status
        .rsplit(':')
        .next()
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("no port in {status:?}"));
    assert_eq!(ospeed(&board.slave), BaudRate::B115200);

    // pyserial sets the baud, says so, and waits for the test to look at the pty's termios.
    let script = format!(
        r#"
import serial, sys, time
s = serial.serial_for_url("rfc2217://127.0.0.1:{port}", baudrate=115200, timeout=3)
s.baudrate = 19200
print("baud set", flush=True)
sys.stdin.readline()
s.send_break(0.1)
s.write(b"ping")
s.flush()
time.sleep(0.2)
s.close()
print("done", flush=True)
"#
    );
    let mut py = Command::new(python)
        .args(["-c", &script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python");
    let mut out = std::io::BufReader::new(py.stdout.take().expect("stdout"));
    let mut line = String::new();
    use std::io::{BufRead, Write};
    out.read_line(&mut line).expect("read");
    assert_eq!(line, "baud set\n", "pyserial could not set the baud rate");
    assert_eq!(
        ospeed(&board.slave),
        BaudRate::B19200,
        "the pty's termios shows the new baud rate"
    );
    py.stdin
        .take()
        .expect("stdin")
        .write_all(b"go\n")
        .expect("write");
    line.clear();
    out.read_line(&mut line).expect("read");
    assert_eq!(line, "done\n", "pyserial failed after the baud change");
    assert!(py.wait().expect("wait").success());
    assert_eq!(board.read_exact(4), b"ping");
    // The last client left: the configured settings are back.
    let end = Instant::now() + DEADLINE;
    while ospeed(&board.slave) != BaudRate::B115200 {
        assert!(
            Instant::now() < end,
            "settings were not restored after the last client left"
        );
        std::thread::sleep(Duration::from_millis(10));
    }

    drop(server);
    let trace = std::fs::read_to_string(&trace).expect("strace output");
    let on = trace
        .find("TIOCSBRK")
        .unwrap_or_else(|| panic!("no TIOCSBRK ioctl in\n{trace}"));
    let off = trace
        .find("TIOCCBRK")
        .unwrap_or_else(|| panic!("no TIOCCBRK ioctl in\n{trace}"));
    assert!(on < off, "break set, then cleared");
}
