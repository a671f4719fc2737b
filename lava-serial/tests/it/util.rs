//! Test fixtures: a pty playing the board, the server on its own thread (as in production: one
//! current-thread runtime), blocking TCP clients with deadlines, and tool lookup that fails with
//! the package to install.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use lava_common::{Protocol, SerialSettings};
use lava_serial::consolelog::LogConfig;
use lava_serial::watch::Identity;
use lava_serial::PortConfig;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::termios;

/// How long any single expectation may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// A pty pair: the test is the board on `master`; lava-serial opens `slave_path`.
pub struct Pty {
    pub master: OwnedFd,
    pub slave: OwnedFd,
    pub slave_path: PathBuf,
}

impl Pty {
    pub fn new() -> Pty {
        let p = nix::pty::openpty(None, None).expect("openpty");
        let mut t = termios::tcgetattr(&p.slave).expect("tcgetattr");
        termios::cfmakeraw(&mut t);
        termios::tcsetattr(&p.slave, termios::SetArg::TCSANOW, &t).expect("tcsetattr");
        let slave_path =
            std::fs::read_link(format!("/proc/self/fd/{}", p.slave.as_raw_fd())).expect("pty name");
        Pty {
            master: p.master,
            slave: p.slave,
            slave_path,
        }
    }

    /// The board writes (blocking until the pty takes it all).
    pub fn write(&self, mut data: &[u8]) {
        while !data.is_empty() {
            match nix::unistd::write(&self.master, data) {
                Ok(n) => data = &data[n..],
                Err(nix::errno::Errno::EINTR) => {}
                Err(e) => panic!("board write failed: {e}"),
            }
        }
    }

    /// Reads what the board received until `pred` holds on all of it, or panics at the deadline.
    pub fn read_until(&self, what: &str, pred: impl Fn(&[u8]) -> bool) -> Vec<u8> {
        let mut got = Vec::new();
        let end = Instant::now() + DEADLINE;
        while !pred(&got) {
            let left = end.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "board did not receive {what}; got {:?}",
                String::from_utf8_lossy(&got)
            );
            let mut fds = [PollFd::new(self.master.as_fd(), PollFlags::POLLIN)];
            let ms = PollTimeout::try_from(left.as_millis().min(1000) as u32).expect("timeout");
            if poll(&mut fds, ms).expect("poll") == 0 {
                continue;
            }
            let mut buf = [0u8; 65536];
            match nix::unistd::read(&self.master, &mut buf) {
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => {}
                Err(e) => panic!("board read failed: {e}"),
            }
        }
        got
    }

    /// Reads exactly `n` bytes the board received.
    pub fn read_exact(&self, n: usize) -> Vec<u8> {
        self.read_until(&format!("{n} bytes"), |g| g.len() >= n)
    }

    /// Reads until the board received `needle`.
    pub fn read_contains(&self, needle: &[u8]) -> Vec<u8> {
        self.read_until(&String::from_utf8_lossy(needle), |g| contains(g, needle))
    }
}

/// A read that found nothing yet (the socket's read timeout), as opposed to a broken connection.
fn nothing_yet(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock
            | std::io::ErrorKind::TimedOut
            | std::io::ErrorKind::Interrupted
    )
}

pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

/// A port config serving `device` under the board name `b1`.
pub fn config(device: &Path, protocol: Protocol) -> PortConfig {
    PortConfig {
        board: "b1".into(),
        identity: Identity::Path(device.to_owned()),
        settings: SerialSettings::default(),
        protocol,
        scrollback: 64 * 1024,
        log: None,
    }
}

/// A config with a console log.
pub fn with_log(mut cfg: PortConfig, path: &Path, max_bytes: u64) -> PortConfig {
    cfg.log = Some(LogConfig {
        path: path.to_owned(),
        max_bytes,
        keep: 2,
    });
    cfg
}

/// lava-serial running in-process on its own thread, on a listener bound to 127.0.0.1:0.
pub struct Server {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    pub fn start(cfg: PortConfig) -> Server {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                lava_serial::run(listener, cfg, async {
                    let _ = stopped.await;
                })
                .await
                .expect("server runs");
            });
        });
        Server {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A blocking TCP client with deadlines.
pub struct Conn {
    pub s: TcpStream,
    pub got: Vec<u8>,
}

impl Conn {
    pub fn connect(addr: SocketAddr) -> Conn {
        let s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        s.set_nodelay(true).expect("nodelay");
        Conn { s, got: Vec::new() }
    }

    /// Connects and sends a hello line, returns once the answer line arrived (so the client is
    /// subscribed and attached).
    pub fn hello(addr: SocketAddr, words: &str) -> (Conn, String) {
        let mut c = Conn::connect(addr);
        c.send(format!("LAVA-SERIAL/1 {words}\r\n").as_bytes());
        c.read_until_contains(b"\r\n");
        let pos = c.got.windows(2).position(|w| w == b"\r\n").expect("line") + 2;
        let line: Vec<u8> = c.got.drain(..pos).collect();
        (c, String::from_utf8(line).expect("ascii answer"))
    }

    pub fn send(&mut self, data: &[u8]) {
        self.s.write_all(data).expect("client write");
    }

    /// Reads more; false when nothing came within the read timeout; panics on EOF.
    pub fn read_some(&mut self) -> bool {
        let mut buf = [0u8; 65536];
        match self.s.read(&mut buf) {
            Ok(0) => panic!(
                "server closed the connection; got {:?}",
                String::from_utf8_lossy(&self.got)
            ),
            Ok(n) => {
                self.got.extend_from_slice(&buf[..n]);
                true
            }
            Err(e) if nothing_yet(&e) => false,
            Err(e) => panic!("client read: {e}"),
        }
    }

    pub fn read_until(&mut self, what: &str, pred: impl Fn(&[u8]) -> bool) {
        let end = Instant::now() + DEADLINE;
        while !pred(&self.got) {
            assert!(
                Instant::now() < end,
                "client did not get {what}; got {:?}",
                String::from_utf8_lossy(&self.got[self.got.len().saturating_sub(2000)..])
            );
            self.read_some();
        }
    }

    pub fn read_until_contains(&mut self, needle: &[u8]) {
        self.read_until(&String::from_utf8_lossy(needle), |g| contains(g, needle));
    }

    pub fn read_len(&mut self, n: usize) {
        self.read_until(&format!("{n} bytes"), |g| g.len() >= n);
    }

    /// Whether the peer closed the connection (within the deadline).
    pub fn closed(&mut self) -> bool {
        let end = Instant::now() + DEADLINE;
        let mut buf = [0u8; 4096];
        while Instant::now() < end {
            match self.s.read(&mut buf) {
                Ok(0) => return true,
                Ok(n) => self.got.extend_from_slice(&buf[..n]),
                Err(e) if nothing_yet(&e) => {}
                Err(_) => return true,
            }
        }
        false
    }
}

/// A tool from PATH, or a failure naming the Debian package that provides it.
pub fn tool(name: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let p = dir.join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!("`{name}` not found on PATH: install the Debian package `{package}` (apt-get install {package})");
}

/// The python of the test venv with pyserial, or a failure saying how to make it.
pub fn venv_python() -> PathBuf {
    let venv = std::env::var_os("LAVA_TEST_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../build/venv")));
    let py = venv.join("bin/python");
    assert!(
        py.is_file(),
        "no python venv at {}: create it with `python3 -m venv {0}` and `{0}/bin/pip install pyserial` (Debian: python3-venv), or set LAVA_TEST_VENV",
        venv.display()
    );
    let ok = std::process::Command::new(&py)
        .args(["-c", "import serial.rfc2217"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "pyserial missing in {}: `{}/bin/pip install pyserial`",
        venv.display(),
        venv.display()
    );
    py
}

/// The notice line as clients see it.
pub fn notice(text: &str) -> Vec<u8> {
    format!("\r\n[lava-serial: b1 {text}]\r\n").into_bytes()
}
