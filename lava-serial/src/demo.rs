//! `lava-serial demo`: a simulated board on a pty, served like `--device`, so `telnet localhost
//! 7001` shows a real-looking console with no hardware: a U-Boot and kernel boot log, a login
//! prompt, a tiny shell (`uname -a`, `reboot`, ...). Power follows SIGUSR1 (power-cycle) or a
//! `--power-file` whose content is `on`/`off`, watched with inotify, so lava-power's `command`
//! driver can switch it.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use lava_common::{Protocol, SerialSettings};
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use nix::sys::termios;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::config::{Listen, PortConfig};
use crate::watch::Identity;

/// What `lava-serial demo` was asked for.
#[derive(Debug, Clone)]
pub struct DemoConfig {
    pub listen: Listen,
    pub name: String,
    pub power_file: Option<PathBuf>,
    pub protocol: Protocol,
    pub log: Option<PathBuf>,
}

/// A power change for the simulated board.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Power {
    On,
    Off,
    Cycle,
}

/// Runs the demo until SIGTERM/SIGINT.
pub async fn run(cfg: DemoConfig) -> anyhow::Result<()> {
    let pty = nix::pty::openpty(None, None).context("cannot create a pty")?;
    let mut t = termios::tcgetattr(&pty.slave).context("pty termios")?;
    termios::cfmakeraw(&mut t);
    termios::tcsetattr(&pty.slave, termios::SetArg::TCSANOW, &t).context("pty termios")?;
    let slave_path = std::fs::read_link(format!("/proc/self/fd/{}", pty.slave.as_raw_fd()))
        .context("cannot name the pty")?;
    let addr = cfg.listen.addr()?;
    let listener = crate::server::bind(addr).await?;
    let local = listener.local_addr().unwrap_or(addr);
    let (power_tx, power_rx) = mpsc::channel(8);
    let initially_on = match &cfg.power_file {
        Some(f) => read_power(f) != Some(Power::Off),
        None => true,
    };
    // One write, and a closed stdout is no reason to stop: a script may read the `connect:` line
    // and close the pipe before the rest is written.
    let banner = format!(
        "lava-serial demo: board {} on {} (a pty), serving {} on {local}\n\
         connect:       telnet {} {}\n\
         power-cycle:   kill -USR1 {}{}\n",
        cfg.name,
        slave_path.display(),
        cfg.protocol,
        if local.ip().is_loopback() {
            "localhost".to_owned()
        } else {
            local.ip().to_string()
        },
        local.port(),
        std::process::id(),
        cfg.power_file
            .as_ref()
            .map(|f| format!(
                "\npower on/off:  echo off > {0}; echo on > {0}",
                f.display()
            ))
            .unwrap_or_default(),
    );
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(banner.as_bytes()).and_then(|()| out.flush());
    }
    let port_cfg = PortConfig {
        board: cfg.name.clone(),
        identity: Identity::Path(slave_path),
        settings: SerialSettings::default(),
        protocol: cfg.protocol,
        scrollback: 64 * 1024,
        log: crate::config::device_log(cfg.log.clone(), 16, 5),
    };
    let board = SimBoard::new(pty.master, cfg.name.clone(), initially_on)?;
    let sig = sigusr1(power_tx.clone());
    let watch = async {
        if let Some(f) = &cfg.power_file {
            if let Err(e) = watch_power_file(f, power_tx.clone()).await {
                tracing::error!(file = %f.display(), error = %e, "cannot watch the power file");
            }
        }
        std::future::pending::<()>().await
    };
    let shutdown = lava_common::shutdown::signal();
    lava_common::notify::ready(&format!("demo {} on {local}", cfg.name));
    let _slave = pty.slave; // kept open: the pty stays usable while the server reopens it
    tokio::select! {
        r = crate::server::run(listener, port_cfg, shutdown) => r?,
        r = board.run(power_rx) => r?,
        _ = sig => {}
        _ = watch => {}
    }
    Ok(())
}

async fn sigusr1(tx: mpsc::Sender<Power>) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut s) = signal(SignalKind::user_defined1()) else {
        return std::future::pending().await;
    };
    while s.recv().await.is_some() {
        let _ = tx.send(Power::Cycle).await;
    }
    std::future::pending().await
}

fn read_power(f: &Path) -> Option<Power> {
    let text = std::fs::read_to_string(f).ok()?;
    match text.trim().to_ascii_lowercase().as_str() {
        "on" | "1" => Some(Power::On),
        "off" | "0" => Some(Power::Off),
        _ => None,
    }
}

/// Sends the power file's state every time it is written (inotify on its directory, so the file
/// may be created, replaced or rewritten).
async fn watch_power_file(f: &Path, tx: mpsc::Sender<Power>) -> anyhow::Result<()> {
    let dir = match f.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    let name = f
        .file_name()
        .map(|n| n.to_owned())
        .context("power file has no name")?;
    let ino = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)?;
    ino.add_watch(
        &dir,
        AddWatchFlags::IN_CLOSE_WRITE | AddWatchFlags::IN_MOVED_TO | AddWatchFlags::IN_CREATE,
    )
    .with_context(|| format!("cannot watch {}", dir.display()))?;
    let fd = crate::device::register(ino.as_fd().try_clone_to_owned()?, Interest::READABLE)?;
    let mut last = read_power(f);
    loop {
        let mut guard = fd.readable().await?;
        match guard.try_io(|_| ino.read_events().map_err(std::io::Error::from)) {
            Ok(Ok(events)) => {
                if events
                    .iter()
                    .any(|e| e.name.as_deref() == Some(name.as_os_str()))
                {
                    let now = read_power(f);
                    if now.is_some() && now != last {
                        last = now;
                        if let Some(p) = now {
                            let _ = tx.send(p).await;
                        }
                    }
                }
            }
            Ok(Err(e)) => return Err(e.into()),
            Err(_would_block) => {}
        }
    }
}

const BOOT_LOG: &[(u64, &str)] = &[
    (0, "\r\nU-Boot SPL 2024.01 (Jan 08 2024 - 14:02:11 +0000)\r\n"),
    (30, "OMAP4460-GP ES1.1\r\nTrying to boot from MMC1\r\n"),
    (120, "\r\n\r\nU-Boot 2024.01 (Jan 08 2024 - 14:02:11 +0000)\r\n\r\n"),
    (20, "CPU  : OMAP4460-GP ES1.1\r\nBoard: OMAP4 Panda\r\nI2C:   ready\r\nDRAM:  1 GiB\r\n"),
    (40, "Core:  87 devices, 11 uclasses, devicetree: separate\r\nMMC:   OMAP SD/MMC: 0\r\n"),
    (30, "Loading Environment from FAT... OK\r\nNet:   No ethernet found.\r\n"),
    (60, "Hit any key to stop autoboot:  0 \r\n"),
    (80, "switch to partitions #0, OK\r\nmmc0 is current device\r\nScanning mmc 0:1...\r\n"),
    (60, "Found /extlinux/extlinux.conf\r\nRetrieving file: /zImage\r\nRetrieving file: /omap4-panda-es.dtb\r\n"),
    (100, "Kernel image @ 0x82000000 [ 0x000000 - 0x6a2e00 ]\r\n## Flattened Device Tree blob at 88000000\r\n   Loading Device Tree to 8fff1000, end 8ffff7c1 ... OK\r\n\r\nStarting kernel ...\r\n\r\n"),
    (150, "[    0.000000] Booting Linux on physical CPU 0x0\r\n[    0.000000] Linux version 6.1.0-lava (builder@lava) (gcc 12.2.0) #1 SMP PREEMPT Mon Jan  8 14:00:00 UTC 2024\r\n"),
    (20, "[    0.000000] CPU: ARMv7 Processor [412fc09a] revision 10 (ARMv7), cr=10c5387d\r\n[    0.000000] OF: fdt: Machine model: TI OMAP4 PandaBoard-ES\r\n"),
    (20, "[    0.000000] Memory: 1011476K/1046528K available\r\n[    0.000000] Kernel command line: console=ttyS2,115200n8 root=/dev/mmcblk0p2 rw rootwait\r\n"),
    (60, "[    0.412331] omap_uart 48020000.serial: no wakeirq for uart2\r\n[    0.413020] 48020000.serial: ttyS2 at MMIO 0x48020000 (irq = 75, base_baud = 3000000) is a 8250\r\n[    0.413200] printk: console [ttyS2] enabled\r\n"),
    (80, "[    1.622870] mmc0: new high speed SDHC card at address 1234\r\n[    1.630094] mmcblk0: mmc0:1234 SA08G 7.29 GiB\r\n[    1.639812]  mmcblk0: p1 p2\r\n"),
    (100, "[    2.114532] EXT4-fs (mmcblk0p2): mounted filesystem with ordered data mode.\r\n[    2.121770] VFS: Mounted root (ext4 filesystem) on device 179:2.\r\n[    2.140210] Run /sbin/init as init process\r\n"),
    (120, "\r\nWelcome to Debian GNU/Linux 12 (bookworm)!\r\n\r\n"),
    (80, "[  OK  ] Reached target Local File Systems.\r\n[  OK  ] Started Journal Service.\r\n[  OK  ] Reached target Network.\r\n[  OK  ] Started Serial Getty on ttyS2.\r\n[  OK  ] Reached target Multi-User System.\r\n"),
    (100, "\r\nDebian GNU/Linux 12 {name} ttyS2\r\n\r\n"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Off,
    Booting(usize),
    Login,
    Shell,
}

/// The simulated board on the pty master.
struct SimBoard {
    fd: AsyncFd<OwnedFd>,
    name: String,
    state: State,
    line: Vec<u8>,
    next: Instant,
    /// The last byte was a CR: a following LF (or NUL) is part of the same line end.
    after_cr: bool,
}

impl SimBoard {
    fn new(master: OwnedFd, name: String, on: bool) -> anyhow::Result<SimBoard> {
        let flags = fcntl(master.as_fd(), FcntlArg::F_GETFL)?;
        fcntl(
            master.as_fd(),
            FcntlArg::F_SETFL(OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK),
        )?;
        Ok(SimBoard {
            fd: crate::device::register(master, Interest::READABLE | Interest::WRITABLE)?,
            name,
            state: if on { State::Booting(0) } else { State::Off },
            line: Vec::new(),
            next: Instant::now(),
            after_cr: false,
        })
    }

    async fn run(mut self, mut power: mpsc::Receiver<Power>) -> anyhow::Result<()> {
        let mut buf = [0u8; 1024];
        loop {
            let booting = matches!(self.state, State::Booting(_));
            tokio::select! {
                _ = tokio::time::sleep_until(self.next), if booting => self.boot_step().await?,
                p = power.recv() => match p {
                    Some(Power::Off) => self.state = State::Off,
                    Some(Power::On) => if self.state == State::Off { self.power_on() },
                    Some(Power::Cycle) => {
                        self.state = State::Off;
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        self.power_on();
                    }
                    None => std::future::pending::<()>().await,
                },
                r = self.read(&mut buf) => {
                    let n = r?;
                    let input = buf[..n].to_vec();
                    self.input(&input).await?;
                }
            }
        }
    }

    fn power_on(&mut self) {
        self.line.clear();
        self.state = State::Booting(0);
        self.next = Instant::now();
    }

    async fn boot_step(&mut self) -> anyhow::Result<()> {
        let State::Booting(i) = self.state else {
            return Ok(());
        };
        let text = BOOT_LOG[i].1.replace("{name}", &self.name);
        self.write(text.as_bytes()).await?;
        if i + 1 < BOOT_LOG.len() {
            self.state = State::Booting(i + 1);
            self.next = Instant::now() + Duration::from_millis(BOOT_LOG[i + 1].0);
        } else {
            self.state = State::Login;
            self.prompt().await?;
        }
        Ok(())
    }

    async fn prompt(&mut self) -> anyhow::Result<()> {
        let p = match self.state {
            State::Login => format!("{} login: ", self.name),
            State::Shell => format!("root@{}:~# ", self.name),
            _ => return Ok(()),
        };
        self.write(p.as_bytes()).await
    }

    async fn input(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        if !matches!(self.state, State::Login | State::Shell) {
            return Ok(()); // off or booting: typed bytes go nowhere
        }
        for &b in bytes {
            let after_cr = std::mem::replace(&mut self.after_cr, b == b'\r');
            if after_cr && (b == b'\n' || b == 0) {
                continue;
            }
            match b {
                b'\r' | b'\n' => {
                    self.write(b"\r\n").await?;
                    let line = String::from_utf8_lossy(&std::mem::take(&mut self.line))
                        .trim()
                        .to_owned();
                    self.command(&line).await?;
                }
                0x7f | 0x08 if !self.line.is_empty() => {
                    self.line.pop();
                    self.write(b"\x08 \x08").await?;
                }
                0x7f | 0x08 => {}
                0x03 => {
                    self.line.clear();
                    self.write(b"^C\r\n").await?;
                    self.prompt().await?;
                }
                b if b >= 0x20 || b == b'\t' => {
                    self.line.push(b);
                    self.write(&[b]).await?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    async fn command(&mut self, line: &str) -> anyhow::Result<()> {
        match self.state {
            State::Login => {
                if line.is_empty() {
                } else if line == "root" {
                    let motd = format!(
                        "Linux {} 6.1.0-lava #1 SMP PREEMPT Mon Jan  8 14:00:00 UTC 2024 armv7l\r\n\r\n\
                         The programs included with the Debian GNU/Linux system are free software.\r\n",
                        self.name
                    );
                    self.write(motd.as_bytes()).await?;
                    self.state = State::Shell;
                } else {
                    self.write(b"\r\nLogin incorrect\r\n").await?;
                }
            }
            State::Shell => {
                let out = match line.split_whitespace().next().unwrap_or("") {
                    "" => String::new(),
                    "uname" if line.contains("-a") => format!(
                        "Linux {} 6.1.0-lava #1 SMP PREEMPT Mon Jan  8 14:00:00 UTC 2024 armv7l GNU/Linux\r\n",
                        self.name
                    ),
                    "uname" => "Linux\r\n".to_owned(),
                    "hostname" => format!("{}\r\n", self.name),
                    "echo" => format!("{}\r\n", line.trim_start_matches("echo").trim()),
                    "uptime" => " 12:00:01 up 1 min,  1 user,  load average: 0.08, 0.03, 0.01\r\n".to_owned(),
                    "exit" | "logout" => {
                        self.state = State::Login;
                        "\r\n".to_owned()
                    }
                    "reboot" => {
                        self.write(b"[   42.000000] reboot: Restarting system\r\n").await?;
                        self.power_on();
                        self.next = Instant::now() + Duration::from_millis(300);
                        return Ok(());
                    }
                    other => format!("-bash: {other}: command not found\r\n"),
                };
                self.write(out.as_bytes()).await?;
            }
            _ => return Ok(()),
        }
        self.prompt().await
    }

    async fn read(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let mut guard = self.fd.readable().await?;
            match guard
                .try_io(|fd| nix::unistd::read(fd.get_ref(), buf).map_err(std::io::Error::from))
            {
                Ok(r) => return r,
                Err(_would_block) => continue,
            }
        }
    }

    async fn write(&self, mut data: &[u8]) -> anyhow::Result<()> {
        if self.state == State::Off {
            return Ok(());
        }
        while !data.is_empty() {
            let mut guard = self.fd.writable().await?;
            match guard
                .try_io(|fd| nix::unistd::write(fd.get_ref(), data).map_err(std::io::Error::from))
            {
                Ok(Ok(n)) => data = &data[n..],
                Ok(Err(e)) => return Err(e.into()),
                Err(_would_block) => {}
            }
        }
        Ok(())
    }
}
