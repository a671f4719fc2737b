//! A small lab made of real processes: a board on a pty served by the lava-serial binary, PDUs
//! served by the lava-power binary with the command driver logging to a file, a boards.toml in a
//! tempdir, and lava-console spawned under a pty the way LAVA's pexpect does (setsid + controlling
//! terminal). Readiness comes from the services' sd_notify `READY=1`, never from sleeps.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::pty::openpty;
use nix::sys::signal::{kill, Signal};
use nix::sys::termios::{tcgetattr, Termios};
use nix::unistd::Pid;

/// Generous bound for anything the tests wait on (CI machines are slow and shared).
pub const WAIT: Duration = Duration::from_secs(20);

/// A binary of the workspace, built next to this test binary.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} not found: build them first: cargo build --workspace",
        path.display()
    );
    path
}

/// The directory of the workspace's binaries (for PATH).
pub fn bin_dir() -> PathBuf {
    bin("lava-console").parent().expect("bin dir").to_path_buf()
}

/// PATH with the workspace's binaries first.
pub fn path_env() -> String {
    format!(
        "{}:{}",
        bin_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// Bytes read from a file descriptor by a thread, waited on with a condition variable.
#[derive(Clone, Default)]
pub struct Collected(Arc<(Mutex<Vec<u8>>, Condvar)>);

impl Collected {
    /// Starts a thread copying everything readable from `reader`.
    pub fn spawn(reader: File) -> Collected {
        Collected::spawn_stoppable(reader, Arc::new(AtomicBool::new(false)))
    }

    /// Same, and the thread closes its handle once `stop` is set (to unplug a pty board).
    pub fn spawn_stoppable(mut reader: File, stop: Arc<AtomicBool>) -> Collected {
        let c = Collected::default();
        let c2 = c.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                let mut fds = [PollFd::new(reader.as_fd(), PollFlags::POLLIN)];
                let _ = poll(&mut fds, PollTimeout::from(20u16));
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let ready = fds[0].revents().is_some_and(|r| !r.is_empty());
                if !ready {
                    continue;
                }
                match reader.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let (m, cv) = &*c2.0;
                        m.lock().expect("lock").extend_from_slice(&buf[..n]);
                        cv.notify_all();
                    }
                }
            }
        });
        c
    }

    /// Everything so far.
    pub fn bytes(&self) -> Vec<u8> {
        self.0 .0.lock().expect("lock").clone()
    }

    /// Waits until the collected bytes contain `needle`, or panics with what was seen.
    pub fn expect(&self, needle: &[u8]) {
        let (m, cv) = &*self.0;
        let deadline = Instant::now() + WAIT;
        let mut g = m.lock().expect("lock");
        while find(&g, needle).is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let seen = String::from_utf8_lossy(&g).into_owned();
                drop(g);
                panic!(
                    "timed out waiting for {:?}; got {seen:?}",
                    String::from_utf8_lossy(needle)
                );
            }
            g = cv.wait_timeout(g, left).expect("lock").0;
        }
    }
}

/// Where `needle` starts in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A child process killed when dropped.
pub struct Service(pub Child);

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts a service with `NOTIFY_SOCKET` and waits for its `READY=1`; returns the STATUS text.
fn start_notified(mut cmd: Command, dir: &Path, tag: &str) -> (Service, String) {
    let sock_path = dir.join(format!("notify-{tag}.sock"));
    let sock = UnixDatagram::bind(&sock_path).expect("bind notify socket");
    sock.set_read_timeout(Some(WAIT)).expect("timeout");
    let child = cmd
        .env("NOTIFY_SOCKET", &sock_path)
        .env_remove("WATCHDOG_USEC")
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn service");
    let service = Service(child);
    let mut buf = [0u8; 1024];
    loop {
        let n = sock
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("{tag} never said READY=1: {e}"));
        let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
        if msg.lines().any(|l| l == "READY=1") {
            let status = msg
                .lines()
                .find_map(|l| l.strip_prefix("STATUS="))
                .unwrap_or("")
                .to_owned();
            return (service, status);
        }
    }
}

/// One PDU: a lava-power instance whose command driver appends `on N` / `off N` to a log.
pub struct Pdu {
    pub name: String,
    pub log: PathBuf,
    _service: Service,
}

impl Pdu {
    /// What the PDU was told, one action per line.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// The board: a pty whose master the test plays, served by lava-serial.
pub struct Board {
    pub port: u16,
    pub master: Option<File>,
    /// What the board received (what clients typed).
    pub input: Collected,
    reader_stop: Arc<AtomicBool>,
    slave: Option<OwnedFd>,
    /// The device path lava-serial serves: a symlink to the pty, removed on unplug.
    link: PathBuf,
    pub service: Service,
}

impl Board {
    /// Unplugs the board: every handle on the pty master is closed, the device hangs up.
    pub fn unplug(&mut self) {
        self.master = None;
        self.slave = None;
        self.reader_stop.store(true, Ordering::SeqCst);
        std::fs::remove_file(&self.link).expect("remove the device link");
    }

    /// The board prints something.
    pub fn say(&mut self, bytes: &[u8]) {
        let m = self.master.as_mut().expect("board plugged in");
        m.write_all(bytes).expect("write to the board pty");
        m.flush().expect("flush");
    }
}

/// The whole lab.
pub struct Lab {
    pub dir: tempfile::TempDir,
    pub boards_toml: PathBuf,
    pub runtime_dir: PathBuf,
    pub board: Board,
    pub pdu: Pdu,
    pub bad_pdu: Pdu,
}

impl Lab {
    /// panda01 on lava-serial (telnet), powered by `magic-hack` outlet 3; bad01 on the same
    /// console powered by `bad-pdu` (whose relay always fails); nopower01 powered by a PDU no
    /// lava-power serves.
    pub fn start() -> Lab {
        Lab::start_with("telnet")
    }

    /// Same, with the board served in `protocol` ("telnet" or "raw").
    pub fn start_with(protocol: &str) -> Lab {
        let dir = tempfile::tempdir().expect("tempdir");
        let runtime_dir = dir.path().join("run");
        std::fs::create_dir_all(&runtime_dir).expect("runtime dir");
        let board = start_board(dir.path(), protocol);
        let pdu = start_pdu(dir.path(), &runtime_dir, "magic-hack", true);
        let bad_pdu = start_pdu(dir.path(), &runtime_dir, "bad-pdu", false);
        let boards_toml = dir.path().join("boards.toml");
        let text = format!(
            r#"[defaults]
protocol = "{protocol}"

[boards.panda01]
port = {port}
adapter = {{ serial = "FTDI_TEST_PANDA01" }}
power = {{ pdu = "magic-hack", outlet = "3" }}
aliases = ["panda-1"]
description = "PandaBoard ES, test rack"

[boards.bad01]
console = "127.0.0.1:{port}"
power = {{ pdu = "bad-pdu", outlet = "7" }}

[boards.nopower01]
console = "127.0.0.1:{port}"
power = {{ pdu = "nowhere", outlet = "1" }}
"#,
            port = board.port
        );
        std::fs::write(&boards_toml, text).expect("write boards.toml");
        Lab {
            dir,
            boards_toml,
            runtime_dir,
            board,
            pdu,
            bad_pdu,
        }
    }

    /// A `lava-console` command aimed at this lab through the environment.
    pub fn console(&self) -> Command {
        let mut c = Command::new(bin("lava-console"));
        c.env("LAVA_BOARDS", &self.boards_toml)
            .env("LAVA_POWER_RUNTIME_DIR", &self.runtime_dir)
            .env_remove("LAVA_POWER_GATEWAY")
            .env("PATH", path_env());
        c
    }

    /// Runs lava-console with `args` and no stdin (a scripted run) to its end.
    pub fn run<const N: usize>(&self, args: [&str; N]) -> Output {
        self.console()
            .args(args)
            .output()
            .expect("run lava-console")
    }

    /// Starts lava-console with `args` and the given stdin, its stdout and stderr on pipes.
    pub fn spawn_piped(&self, args: &[&str], stdin: Stdio) -> Child {
        self.console()
            .args(args)
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn lava-console")
    }

    /// lava-console with `args` on a pty, as a person (or pexpect) attaches.
    pub fn attach(&self, args: &[&str]) -> OnPty {
        let mut c = self.console();
        c.args(args);
        OnPty::spawn(&c)
    }
}

fn start_board(dir: &Path, protocol: &str) -> Board {
    let pty = openpty(None, None).expect("openpty");
    let slave_path =
        std::fs::read_link(format!("/proc/self/fd/{}", pty.slave.as_raw_fd())).expect("slave path");
    let link = dir.join("board-serial");
    std::os::unix::fs::symlink(&slave_path, &link).expect("device link");
    let mut cmd = Command::new(bin("lava-serial"));
    cmd.arg("--device")
        .arg(&link)
        .args(["--port", "0", "--name", "panda01", "--protocol", protocol])
        .arg("--log")
        .arg(dir.join("panda01.log"));
    let (service, status) = start_notified(cmd, dir, "lava-serial");
    let port = status
        .rsplit(':')
        .next()
        .and_then(|p| p.trim().parse::<u16>().ok())
        .unwrap_or_else(|| panic!("no port in lava-serial's status {status:?}"));
    let master = File::from(pty.master);
    let reader_stop = Arc::new(AtomicBool::new(false));
    let input = Collected::spawn_stoppable(
        master.try_clone().expect("clone master"),
        reader_stop.clone(),
    );
    Board {
        port,
        master: Some(master),
        input,
        reader_stop,
        slave: Some(pty.slave),
        link,
        service,
    }
}

fn start_pdu(dir: &Path, runtime_dir: &Path, name: &str, works: bool) -> Pdu {
    let log = dir.join(format!("{name}.log"));
    let act = |verb: &str| {
        if works {
            format!(
                r#"["sh", "-c", "echo {verb} {{outlet}} >> '{}'"]"#,
                log.display()
            )
        } else {
            r#"["sh", "-c", "echo relay {outlet} is jammed >&2; exit 1"]"#.to_owned()
        }
    };
    let config = dir.join(format!("{name}.toml"));
    std::fs::write(
        &config,
        format!(
            "driver = \"command\"\non = {}\noff = {}\nreboot_delay = \"100ms\"\nretries = 1\nretry_delay = \"10ms\"\ntimeout = \"5s\"\n",
            act("on"),
            act("off")
        ),
    )
    .expect("pdu config");
    let mut cmd = Command::new(bin("lava-power"));
    cmd.arg("serve")
        .arg("--config")
        .arg(&config)
        .arg("--runtime-dir")
        .arg(runtime_dir);
    let (service, _) = start_notified(cmd, dir, name);
    Pdu {
        name: name.to_owned(),
        log,
        _service: service,
    }
}

/// lava-console (or any command) on a pty, as LAVA's pexpect runs it: a new session whose
/// controlling terminal is the pty, which is its stdin, stdout and stderr.
pub struct OnPty {
    /// The pty's settings before the command started.
    pub initial: Termios,
    pub master: File,
    pub output: Collected,
    pub slave: OwnedFd,
    pub child: Child,
}

impl OnPty {
    /// Spawns `cmd` (program and args taken from it) under a fresh pty.
    pub fn spawn(cmd: &Command) -> OnPty {
        let pty = openpty(None, None).expect("openpty");
        let initial = tcgetattr(&pty.slave).expect("tcgetattr");
        let mut c = Command::new("setsid");
        c.arg("--ctty").arg("--wait").arg(cmd.get_program());
        c.args(cmd.get_args());
        for (k, v) in cmd.get_envs() {
            match v {
                Some(v) => c.env(k, v),
                None => c.env_remove(k),
            };
        }
        let fd = |f: &OwnedFd| Stdio::from(f.try_clone().expect("dup slave"));
        let child = c
            .stdin(fd(&pty.slave))
            .stdout(fd(&pty.slave))
            .stderr(fd(&pty.slave))
            .spawn()
            .expect("spawn under setsid (util-linux)");
        let master = File::from(pty.master);
        let output = Collected::spawn(master.try_clone().expect("clone master"));
        OnPty {
            initial,
            master,
            output,
            slave: pty.slave,
            child,
        }
    }

    /// The pty's settings as seen from the slave side.
    pub fn termios(&self) -> Termios {
        tcgetattr(&self.slave).expect("tcgetattr")
    }

    /// Types bytes.
    pub fn send(&mut self, bytes: &[u8]) {
        self.master.write_all(bytes).expect("type");
        self.master.flush().expect("flush");
    }

    /// Waits for the process to end.
    pub fn wait(&mut self) -> ExitStatus {
        wait_child(&mut self.child)
    }

    /// Sends the process a signal (as a closing terminal or an init system would).
    pub fn signal(&self, signal: Signal) {
        let pid = i32::try_from(self.child.id()).expect("pid");
        kill(Pid::from_raw(pid), signal).expect("kill");
    }
}

/// Waits for a child with the test's bound, killing it (and failing) past it.
pub fn wait_child(child: &mut Child) -> ExitStatus {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(s) = child.try_wait().expect("wait") {
            return s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("process did not exit within {WAIT:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
