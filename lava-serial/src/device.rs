//! An open serial device (a USB adapter's tty or, in tests and demos, a pty slave): opened once in
//! raw mode, non-blocking on tokio's reactor, with the line controls the port owner needs (baud and
//! format, BREAK, modem lines, purge).

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use lava_common::{FlowControl, Format, Parity, SerialSettings, StopBits};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use nix::sys::termios::{
    self, BaudRate, ControlFlags, FlushArg, InputFlags, SetArg, SpecialCharacterIndices, Termios,
};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// What went wrong with a serial device, with the path an admin needs to find it.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("cannot open {}: {source}", path.display())]
    Open { path: PathBuf, source: io::Error },
    #[error("cannot configure {}: {source}", path.display())]
    Configure { path: PathBuf, source: io::Error },
    #[error("{}: baud rate {baud} is not possible (use 1 to 16000000; e.g. 115200, 921600, 1500000)", path.display())]
    Baud { path: PathBuf, baud: u32 },
    #[error("{}: {what} failed: {source}", path.display())]
    Control {
        path: PathBuf,
        what: &'static str,
        source: io::Error,
    },
}

impl DeviceError {
    /// The OS error underneath, when there is one (callers retry on EACCES/ENOENT after a udev event).
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            DeviceError::Open { source, .. }
            | DeviceError::Configure { source, .. }
            | DeviceError::Control { source, .. } => source.raw_os_error(),
            DeviceError::Baud { .. } => None,
        }
    }
}

/// The modem input lines of a serial port, as TIOCMGET reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ModemStatus {
    pub cts: bool,
    pub dsr: bool,
    pub ri: bool,
    pub dcd: bool,
}

/// An open serial device, kept open for the life of the adapter: the port owner reads it
/// continuously and writes clients' bytes to it. All methods take `&self`, so reads and writes can
/// be awaited in the same `select!`.
#[derive(Debug)]
pub struct Device {
    fd: AsyncFd<OwnedFd>,
    path: PathBuf,
}

/// A device's fd registered for writability: see [`Device::write_waiter`].
#[derive(Debug)]
pub struct WriteWaiter {
    fd: AsyncFd<OwnedFd>,
}

impl WriteWaiter {
    /// Waits until the device may take more. It may then still take nothing (another writer, a
    /// spurious edge): the caller writes, and on `WouldBlock` waits again, losing no wakeup
    /// (readiness is cleared here, before that write, so an edge after it is kept).
    pub async fn writable(&self) -> io::Result<()> {
        let mut guard = self.fd.writable().await?;
        guard.clear_ready();
        Ok(())
    }
}

fn errno_io(e: Errno) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

/// Standard Linux rates and their termios constants (termios can only name these).
const RATES: &[(u32, BaudRate)] = &[
    (50, BaudRate::B50),
    (75, BaudRate::B75),
    (110, BaudRate::B110),
    (134, BaudRate::B134),
    (150, BaudRate::B150),
    (200, BaudRate::B200),
    (300, BaudRate::B300),
    (600, BaudRate::B600),
    (1200, BaudRate::B1200),
    (1800, BaudRate::B1800),
    (2400, BaudRate::B2400),
    (4800, BaudRate::B4800),
    (9600, BaudRate::B9600),
    (19200, BaudRate::B19200),
    (38400, BaudRate::B38400),
    (57600, BaudRate::B57600),
    (115_200, BaudRate::B115200),
    (230_400, BaudRate::B230400),
    (460_800, BaudRate::B460800),
    (500_000, BaudRate::B500000),
    (576_000, BaudRate::B576000),
    (921_600, BaudRate::B921600),
    (1_000_000, BaudRate::B1000000),
    (1_152_000, BaudRate::B1152000),
    (1_500_000, BaudRate::B1500000),
    (2_000_000, BaudRate::B2000000),
    (2_500_000, BaudRate::B2500000),
    (3_000_000, BaudRate::B3000000),
    (3_500_000, BaudRate::B3500000),
    (4_000_000, BaudRate::B4000000),
];

/// The termios constant for a baud rate, if it is a standard one.
pub fn baud_rate(baud: u32) -> Option<BaudRate> {
    RATES.iter().find(|(n, _)| *n == baud).map(|(_, b)| *b)
}

/// The rate a termios CBAUD code stands for (0 for BOTHER or an unknown code: the real rate is
/// then in termios2's `c_ospeed`).
fn baud_number(code: libc::tcflag_t) -> u32 {
    RATES
        .iter()
        .find(|(_, b)| *b as libc::tcflag_t == code)
        .map(|(n, _)| *n)
        .unwrap_or(0)
}

/// Whether a baud rate can be asked of the driver: a standard one through termios, any other
/// up to 16 Mbaud through termios2's BOTHER (the driver picks the nearest it can do).
pub fn baud_supported(baud: u32) -> bool {
    (1..=16_000_000).contains(&baud)
}

/// termios2 (Linux): the exact line speed in `c_ospeed`, whatever CBAUD says.
#[allow(unsafe_code)]
fn tcgets2(fd: BorrowedFd<'_>) -> Result<libc::termios2, Errno> {
    // SAFETY: termios2 is a struct of plain integers, so all-zero is a valid value; TCGETS2
    // writes one termios2 through the pointer, which points at our live, exclusive local; `fd`
    // is open for the call.
    unsafe {
        let mut t: libc::termios2 = std::mem::zeroed();
        let r = libc::ioctl(fd.as_raw_fd(), libc::TCGETS2, &mut t as *mut libc::termios2);
        Errno::result(r).map(|_| t)
    }
}

#[allow(unsafe_code)]
fn tcsets2(fd: BorrowedFd<'_>, t: &libc::termios2) -> Result<(), Errno> {
    // SAFETY: TCSETS2 reads one termios2 through the pointer, which points at a live value
    // borrowed for the call; `fd` is open for the call.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TCSETS2, t as *const libc::termios2) };
    Errno::result(r).map(drop)
}

/// Applies a termios now: standard rates through tcsetattr, others through termios2 with
/// BOTHER and the exact rate, in one call either way.
fn set_line(fd: BorrowedFd<'_>, t: &Termios, baud: u32) -> Result<(), Errno> {
    if baud_rate(baud).is_some() {
        return termios::tcsetattr(fd, SetArg::TCSANOW, t);
    }
    let mut t2 = tcgets2(fd)?;
    // From the public fields: nix's `From<Termios> for libc::termios` returns a stale copy.
    t2.c_iflag = t.input_flags.bits();
    t2.c_oflag = t.output_flags.bits();
    t2.c_lflag = t.local_flags.bits();
    t2.c_cflag = (t.control_flags.bits() & !(libc::CBAUD | libc::CIBAUD)) | libc::BOTHER;
    t2.c_line = t.line_discipline;
    let n = t2.c_cc.len().min(t.control_chars.len());
    t2.c_cc[..n].copy_from_slice(&t.control_chars[..n]);
    t2.c_ispeed = baud;
    t2.c_ospeed = baud;
    tcsets2(fd, &t2)
}

/// Puts `settings` into a termios structure that is already raw.
fn encode(t: &mut Termios, settings: &SerialSettings) -> Result<(), Errno> {
    if let Some(rate) = baud_rate(settings.baud) {
        termios::cfsetspeed(t, rate)?;
    }
    let c = &mut t.control_flags;
    c.remove(ControlFlags::CSIZE | ControlFlags::PARENB | ControlFlags::PARODD);
    c.remove(ControlFlags::CMSPAR | ControlFlags::CSTOPB | ControlFlags::CRTSCTS);
    c.insert(match settings.format.data_bits {
        5 => ControlFlags::CS5,
        6 => ControlFlags::CS6,
        7 => ControlFlags::CS7,
        _ => ControlFlags::CS8,
    });
    match settings.format.parity {
        Parity::None => {}
        Parity::Even => c.insert(ControlFlags::PARENB),
        Parity::Odd => c.insert(ControlFlags::PARENB | ControlFlags::PARODD),
        Parity::Mark => {
            c.insert(ControlFlags::PARENB | ControlFlags::CMSPAR | ControlFlags::PARODD)
        }
        Parity::Space => c.insert(ControlFlags::PARENB | ControlFlags::CMSPAR),
    }
    // With 5 data bits, CSTOPB means 1.5 stop bits; with more it means 2.
    if settings.format.stop_bits != StopBits::One {
        c.insert(ControlFlags::CSTOPB);
    }
    // The line is ours: ignore carrier, enable the receiver, keep DTR up when the fd is closed.
    c.insert(ControlFlags::CLOCAL | ControlFlags::CREAD);
    c.remove(ControlFlags::HUPCL);
    let i = &mut t.input_flags;
    i.remove(InputFlags::IXON | InputFlags::IXOFF | InputFlags::IXANY);
    match settings.flow {
        FlowControl::None => {}
        FlowControl::Hardware => t.control_flags.insert(ControlFlags::CRTSCTS),
        FlowControl::Software => i.insert(InputFlags::IXON | InputFlags::IXOFF),
    }
    t.control_chars[SpecialCharacterIndices::VMIN as usize] = 1;
    t.control_chars[SpecialCharacterIndices::VTIME as usize] = 0;
    Ok(())
}

/// Reads the settings back out of a termios structure.
fn decode(t: &Termios) -> SerialSettings {
    let c = t.control_flags;
    let data_bits = match c & ControlFlags::CSIZE {
        x if x == ControlFlags::CS5 => 5,
        x if x == ControlFlags::CS6 => 6,
        x if x == ControlFlags::CS7 => 7,
        _ => 8,
    };
    let parity = if !c.contains(ControlFlags::PARENB) {
        Parity::None
    } else {
        match (
            c.contains(ControlFlags::CMSPAR),
            c.contains(ControlFlags::PARODD),
        ) {
            (false, false) => Parity::Even,
            (false, true) => Parity::Odd,
            (true, true) => Parity::Mark,
            (true, false) => Parity::Space,
        }
    };
    let stop_bits = match (c.contains(ControlFlags::CSTOPB), data_bits) {
        (false, _) => StopBits::One,
        (true, 5) => StopBits::OnePointFive,
        (true, _) => StopBits::Two,
    };
    let flow = if c.contains(ControlFlags::CRTSCTS) {
        FlowControl::Hardware
    } else if t.input_flags.contains(InputFlags::IXON) {
        FlowControl::Software
    } else {
        FlowControl::None
    };
    SerialSettings {
        baud: baud_number(t.control_flags.bits() & libc::CBAUD),
        format: Format {
            data_bits,
            parity,
            stop_bits,
        },
        flow,
    }
}

/// Registers an fd-owning object with the current tokio reactor. An error, not a panic, when
/// called outside a runtime.
pub(crate) fn register<T: AsRawFd>(inner: T, interest: Interest) -> io::Result<AsyncFd<T>> {
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(io::Error::other("not inside a tokio runtime"));
    }
    register_unchecked(inner, interest)
}

#[allow(unsafe_code)]
fn register_unchecked<T: AsRawFd>(inner: T, interest: Interest) -> io::Result<AsyncFd<T>> {
    // SAFETY: every `T` registered here (OwnedFd, the inotify wrapper, udev's monitor socket) owns
    // its descriptor: it stays open, and `as_raw_fd()` returns the same one, until `T` is dropped,
    // which happens only when the AsyncFd itself is dropped or unwrapped.
    unsafe { AsyncFd::register_with_interest(inner, interest) }.map_err(io::Error::from)
}

/// Modem-control ioctls that take a pointer to an int (TIOCMGET/TIOCMBIS/TIOCMBIC).
#[allow(unsafe_code)]
fn ioctl_int(
    fd: BorrowedFd<'_>,
    request: libc::Ioctl,
    value: &mut libc::c_int,
) -> Result<(), Errno> {
    // SAFETY: `fd` is an open descriptor borrowed for the duration of the call, and `value` is a
    // live, exclusively borrowed c_int: exactly the `int *` argument these requests read or write.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), request, value as *mut libc::c_int) };
    Errno::result(r).map(drop)
}

/// Ioctls without an argument (TIOCSBRK/TIOCCBRK).
#[allow(unsafe_code)]
fn ioctl_none(fd: BorrowedFd<'_>, request: libc::Ioctl) -> Result<(), Errno> {
    // SAFETY: `fd` is an open descriptor borrowed for the duration of the call; these requests
    // take no argument, so the kernel reads no memory from us.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), request) };
    Errno::result(r).map(drop)
}

/// Whether a modem-control errno just means "this tty has no modem lines" (ptys).
fn no_modem_lines(e: Errno) -> bool {
    matches!(e, Errno::ENOTTY | Errno::EINVAL)
}

impl Device {
    /// Opens a serial device for the life of its adapter: `O_RDWR|O_NOCTTY|O_NONBLOCK|O_CLOEXEC`,
    /// raw mode, `settings` applied, HUPCL cleared (closing never drops DTR), DTR and RTS asserted
    /// once. Modem ioctls a pty does not have are ignored (logged at debug). Must be called inside
    /// a tokio runtime (the fd is registered with its reactor).
    pub fn open(path: &Path, settings: &SerialSettings) -> Result<Device, DeviceError> {
        let flags = OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
        let fd = nix::fcntl::open(path, flags, Mode::empty()).map_err(|e| DeviceError::Open {
            path: path.to_owned(),
            source: errno_io(e),
        })?;
        let configure = |e: Errno| DeviceError::Configure {
            path: path.to_owned(),
            source: errno_io(e),
        };
        let mut t = termios::tcgetattr(&fd).map_err(configure)?;
        termios::cfmakeraw(&mut t);
        if !baud_supported(settings.baud) {
            return Err(DeviceError::Baud {
                path: path.to_owned(),
                baud: settings.baud,
            });
        }
        encode(&mut t, settings).map_err(configure)?;
        set_line(fd.as_fd(), &t, settings.baud).map_err(configure)?;
        let fd = register(fd, Interest::READABLE).map_err(|source| DeviceError::Open {
            path: path.to_owned(),
            source,
        })?;
        let dev = Device {
            fd,
            path: path.to_owned(),
        };
        let mut lines = libc::TIOCM_DTR | libc::TIOCM_RTS;
        match ioctl_int(dev.raw(), libc::TIOCMBIS, &mut lines) {
            Ok(()) => {}
            Err(e) if no_modem_lines(e) => {
                tracing::debug!(path = %path.display(), error = %e, "no modem lines to assert (pty?)");
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot assert DTR/RTS");
            }
        }
        tracing::debug!(path = %path.display(), settings = %settings, "serial device open");
        Ok(dev)
    }

    fn raw(&self) -> BorrowedFd<'_> {
        self.fd.get_ref().as_fd()
    }

    fn control_err(&self, what: &'static str, e: Errno) -> DeviceError {
        DeviceError::Control {
            path: self.path.clone(),
            what,
            source: errno_io(e),
        }
    }

    /// The path it was opened by (for logs and notices).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads what the device has now (waiting until it has something) into `buf`, returning how
    /// many bytes. `Ok(0)` is end of file (what a pty slave reads once its master closed).
    /// EIO/ENXIO/ENODEV (a USB adapter unplugged) mean the adapter is gone and come back as
    /// `Err`, like any other read error. Cancel-safe: nothing is consumed unless it is returned.
    ///
    /// A read that returns less than asked drained the tty (the line discipline hands out all it
    /// holds, wrapping included), so the fd's readiness is cleared at once instead of by a
    /// further read failing with EAGAIN; data arriving after it is a new edge, seen as usual.
    pub async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let mut guard = self.fd.readable().await?;
            let res = guard.try_io(|fd| nix::unistd::read(fd.get_ref(), buf).map_err(errno_io));
            match res {
                Ok(Ok(n)) => {
                    if n > 0 && n < buf.len() {
                        guard.clear_ready();
                    }
                    return Ok(n);
                }
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
    }

    /// Writes what the device takes now, without waiting: `Err(WouldBlock)` when it takes
    /// nothing (then wait on a [`WriteWaiter`]).
    pub fn try_write(&self, data: &[u8]) -> io::Result<usize> {
        loop {
            match nix::unistd::write(self.raw(), data) {
                Ok(n) => return Ok(n),
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(errno_io(e)),
            }
        }
    }

    /// Something to wait on for the device to take writes again. The device's own registration
    /// is for reading only, so a device written to without back-pressure (the usual case: a
    /// keystroke, a command line) costs no writable events; this registers a duplicate of the fd
    /// for writability, for as long as the caller keeps it.
    pub fn write_waiter(&self) -> io::Result<WriteWaiter> {
        let fd = self.fd.get_ref().try_clone()?;
        Ok(WriteWaiter {
            fd: register(fd, Interest::WRITABLE)?,
        })
    }

    /// Writes all of `data`, waiting for the device to take it. A device that never drains (flow
    /// control held off) makes this wait forever: the caller bounds it.
    pub async fn write_all(&self, mut data: &[u8]) -> io::Result<()> {
        let mut waiter: Option<WriteWaiter> = None;
        while !data.is_empty() {
            match self.try_write(data) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => data = &data[n..],
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let w = match &waiter {
                        Some(w) => w,
                        None => waiter.insert(self.write_waiter()?),
                    };
                    w.writable().await?;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Changes baud rate, format and flow control now (TCSANOW), as an RFC 2217 client asks.
    pub fn apply(&self, settings: &SerialSettings) -> Result<(), DeviceError> {
        if !baud_supported(settings.baud) {
            return Err(DeviceError::Baud {
                path: self.path.clone(),
                baud: settings.baud,
            });
        }
        let configure = |e: Errno| DeviceError::Configure {
            path: self.path.clone(),
            source: errno_io(e),
        };
        let mut t = termios::tcgetattr(self.raw()).map_err(configure)?;
        encode(&mut t, settings).map_err(configure)?;
        set_line(self.raw(), &t, settings.baud).map_err(configure)
    }

    /// The settings the driver has now, read back from termios; the baud rate is termios2's
    /// exact `c_ospeed`, so a non-standard rate (BOTHER) reads back as the driver has it.
    pub fn settings(&self) -> Result<SerialSettings, DeviceError> {
        let configure = |e: Errno| DeviceError::Configure {
            path: self.path.clone(),
            source: errno_io(e),
        };
        let t = termios::tcgetattr(self.raw()).map_err(configure)?;
        let mut settings = decode(&t);
        if let Ok(t2) = tcgets2(self.raw()) {
            if t2.c_ospeed != 0 {
                settings.baud = t2.c_ospeed;
            }
        }
        Ok(settings)
    }

    /// Starts (`true`) or ends (`false`) a BREAK condition on the line (TIOCSBRK/TIOCCBRK), for
    /// RFC 2217's SET-CONTROL break on/off. Returns the kernel's answer; a pty's driver has no
    /// break operation and the kernel answers success without doing anything.
    pub fn set_break(&self, on: bool) -> Result<(), DeviceError> {
        let (req, what) = if on {
            (libc::TIOCSBRK, "TIOCSBRK")
        } else {
            (libc::TIOCCBRK, "TIOCCBRK")
        };
        ioctl_none(self.raw(), req).map_err(|e| self.control_err(what, e))
    }

    /// Sends a BREAK of the kernel's default length (`tcsendbreak(fd, 0)`: 250 ms on Linux).
    /// Blocks the calling thread for that long on a real UART. Returns the kernel's answer; on a
    /// pty it succeeds at once and nothing reaches the master (a pty cannot carry a break).
    pub fn send_break(&self) -> Result<(), DeviceError> {
        termios::tcsendbreak(self.raw(), 0).map_err(|e| self.control_err("tcsendbreak", e))
    }

    fn modem_lines(
        &self,
        lines: libc::c_int,
        on: bool,
        what: &'static str,
    ) -> Result<(), DeviceError> {
        let mut lines = lines;
        let req = if on { libc::TIOCMBIS } else { libc::TIOCMBIC };
        ioctl_int(self.raw(), req, &mut lines).map_err(|e| self.control_err(what, e))
    }

    /// Raises or drops DTR (TIOCMBIS/TIOCMBIC), when a client asks explicitly. A pty has no modem
    /// lines: the kernel's error comes back.
    pub fn set_dtr(&self, on: bool) -> Result<(), DeviceError> {
        self.modem_lines(libc::TIOCM_DTR, on, "set DTR")
    }

    /// Raises or drops RTS (TIOCMBIS/TIOCMBIC). A pty has no modem lines: the kernel's error
    /// comes back.
    pub fn set_rts(&self, on: bool) -> Result<(), DeviceError> {
        self.modem_lines(libc::TIOCM_RTS, on, "set RTS")
    }

    /// The modem input lines (TIOCMGET), for RFC 2217's NOTIFY-MODEMSTATE. A pty has none: the
    /// kernel's error comes back.
    pub fn modem_status(&self) -> Result<ModemStatus, DeviceError> {
        let mut bits: libc::c_int = 0;
        ioctl_int(self.raw(), libc::TIOCMGET, &mut bits)
            .map_err(|e| self.control_err("TIOCMGET", e))?;
        Ok(ModemStatus {
            cts: bits & libc::TIOCM_CTS != 0,
            dsr: bits & libc::TIOCM_DSR != 0,
            ri: bits & libc::TIOCM_RI != 0,
            dcd: bits & libc::TIOCM_CD != 0,
        })
    }

    /// Discards what the driver holds unread (`input`) and/or unsent (`output`) (tcflush), for
    /// RFC 2217's PURGE-DATA.
    pub fn purge(&self, input: bool, output: bool) -> Result<(), DeviceError> {
        let arg = match (input, output) {
            (true, true) => FlushArg::TCIOFLUSH,
            (true, false) => FlushArg::TCIFLUSH,
            (false, true) => FlushArg::TCOFLUSH,
            (false, false) => return Ok(()),
        };
        termios::tcflush(self.raw(), arg).map_err(|e| self.control_err("tcflush", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::pty::{openpty, OpenptyResult};
    use std::fs::File;
    use std::io::{Read, Write};

    /// A pty pair: the test plays the board on `master`; `path` is the slave's node.
    struct Pty {
        master: File,
        slave: OwnedFd,
        path: PathBuf,
    }

    fn pty() -> Pty {
        let OpenptyResult { master, slave } = openpty(None, None).expect("openpty");
        let path = nix::unistd::ttyname(&slave).expect("ttyname");
        Pty {
            master: File::from(master),
            slave,
            path,
        }
    }

    fn all_bytes() -> Vec<u8> {
        (0..=255u8).collect()
    }

    async fn read_exactly(dev: &Device, n: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = [0u8; 64];
        while out.len() < n {
            let got = tokio::time::timeout(std::time::Duration::from_secs(5), dev.read(&mut buf))
                .await
                .expect("device read timed out")
                .expect("device read");
            assert!(got > 0, "unexpected EOF");
            out.extend_from_slice(&buf[..got]);
        }
        out
    }

    #[tokio::test]
    async fn all_byte_values_pass_both_ways_in_raw_mode() {
        let mut p = pty();
        let dev = Device::open(&p.path, &SerialSettings::default()).expect("open");
        assert_eq!(dev.path(), p.path);

        // Board → device: every byte value, unchanged (no CR/NL mapping, no signals, no echo).
        p.master.write_all(&all_bytes()).expect("write master");
        assert_eq!(read_exactly(&dev, 256).await, all_bytes());

        // Device → board.
        dev.write_all(&all_bytes()).await.expect("write device");
        let mut got = vec![0u8; 256];
        p.master.read_exact(&mut got).expect("read master");
        assert_eq!(got, all_bytes());
    }

    #[tokio::test]
    async fn raw_mode_and_line_flags_are_set_at_open() {
        let p = pty();
        let _dev = Device::open(&p.path, &SerialSettings::default()).expect("open");
        let t = termios::tcgetattr(&p.slave).expect("tcgetattr");
        assert!(t
            .control_flags
            .contains(ControlFlags::CLOCAL | ControlFlags::CREAD));
        assert!(
            !t.control_flags.contains(ControlFlags::HUPCL),
            "HUPCL must be cleared"
        );
        assert!(!t.local_flags.contains(termios::LocalFlags::ICANON));
        assert!(!t.local_flags.contains(termios::LocalFlags::ECHO));
        assert!(!t.local_flags.contains(termios::LocalFlags::ISIG));
        assert!(!t.output_flags.contains(termios::OutputFlags::OPOST));
        assert!(!t.input_flags.contains(InputFlags::ICRNL));
    }

    #[tokio::test]
    async fn applied_settings_show_on_the_pty_and_read_back() {
        let p = pty();
        let dev = Device::open(&p.path, &SerialSettings::default()).expect("open");
        assert_eq!(dev.settings().expect("settings"), SerialSettings::default());

        let cases = [
            SerialSettings {
                baud: 9600,
                format: "7E1".parse().expect("format"),
                flow: FlowControl::None,
            },
            SerialSettings {
                baud: 1_500_000,
                format: "8O2".parse().expect("format"),
                flow: FlowControl::Hardware,
            },
            SerialSettings {
                baud: 57600,
                format: "8M1".parse().expect("format"),
                flow: FlowControl::Software,
            },
            SerialSettings {
                baud: 300,
                format: "6S1".parse().expect("format"),
                flow: FlowControl::None,
            },
        ];
        for asked in cases {
            dev.apply(&asked).expect("apply");
            // The pty driver forces CS8 and clears PARENB on every termios change (drivers/tty/
            // pty.c, pty_set_termios); baud, stop bits and flow control stay as asked. A UART
            // driver keeps all of it.
            let want = SerialSettings {
                format: Format {
                    data_bits: 8,
                    parity: Parity::None,
                    ..asked.format
                },
                ..asked
            };
            assert_eq!(dev.settings().expect("settings"), want);
            // What anyone else sees: the slave's termios through another descriptor, and the
            // master's view of it (a pty master reports its slave's termios).
            let slave = termios::tcgetattr(&p.slave).expect("tcgetattr slave");
            assert_eq!(decode(&slave), want);
            let master = termios::tcgetattr(&p.master).expect("tcgetattr master");
            assert_eq!(
                termios::cfgetospeed(&master),
                baud_rate(want.baud).expect("rate")
            );
            assert_eq!(decode(&master), want);
        }
    }

    /// Data bits and parity round-trip through termios (a pty cannot show them, a UART does).
    #[test]
    fn every_format_round_trips_through_termios() {
        let p = pty();
        let mut t = termios::tcgetattr(&p.slave).expect("tcgetattr");
        termios::cfmakeraw(&mut t);
        for data in ["5", "6", "7", "8"] {
            for parity in ["N", "E", "O", "M", "S"] {
                for stop in ["1", "2"] {
                    for flow in [
                        FlowControl::None,
                        FlowControl::Hardware,
                        FlowControl::Software,
                    ] {
                        let mut format: Format =
                            format!("{data}{parity}{stop}").parse().expect("format");
                        if data == "5" && stop == "2" {
                            format.stop_bits = StopBits::OnePointFive;
                        }
                        let want = SerialSettings {
                            baud: 230_400,
                            format,
                            flow,
                        };
                        encode(&mut t, &want).expect("encode");
                        assert_eq!(decode(&t), want);
                    }
                }
            }
        }
        for (n, _) in RATES {
            let s = SerialSettings {
                baud: *n,
                ..SerialSettings::default()
            };
            encode(&mut t, &s).expect("encode");
            assert_eq!(decode(&t).baud, *n);
        }
    }

    /// Non-standard rates go through termios2 (BOTHER + exact speed) and read back exactly,
    /// from the device and from the master's view; standard ones still use the CBAUD codes.
    #[tokio::test]
    async fn nonstandard_baud_goes_through_termios2() {
        let p = pty();
        let odd = SerialSettings {
            baud: 250_000,
            ..SerialSettings::default()
        };
        let dev = Device::open(&p.path, &odd).expect("open at 250000");
        assert_eq!(dev.settings().expect("settings"), odd);
        let master = tcgets2(p.master.as_fd()).expect("TCGETS2 master");
        assert_eq!(master.c_ospeed, 250_000);
        assert_eq!(master.c_cflag & libc::CBAUD, libc::BOTHER);
        // The raw mode survived the termios2 call.
        let t = termios::tcgetattr(&p.slave).expect("tcgetattr");
        assert!(!t.local_flags.contains(termios::LocalFlags::ICANON));
        assert!(t.control_flags.contains(ControlFlags::CLOCAL));
        // decode() of a BOTHER termios does not panic and says "not a standard code".
        assert_eq!(decode(&t).baud, 0);

        // Back to a standard rate: CBAUD code again.
        dev.apply(&SerialSettings::default()).expect("apply");
        assert_eq!(dev.settings().expect("settings"), SerialSettings::default());
        let master = termios::tcgetattr(&p.master).expect("tcgetattr master");
        assert_eq!(decode(&master).baud, 115_200);

        dev.apply(&SerialSettings {
            baud: 123_457,
            ..odd
        })
        .expect("apply odd");
        assert_eq!(dev.settings().expect("settings").baud, 123_457);
    }

    #[tokio::test]
    async fn impossible_baud_is_refused_with_the_path() {
        let p = pty();
        let zero = SerialSettings {
            baud: 0,
            ..SerialSettings::default()
        };
        let err = Device::open(&p.path, &zero).expect_err("must refuse");
        assert!(matches!(err, DeviceError::Baud { baud: 0, .. }), "{err}");
        assert!(
            err.to_string().contains(&p.path.display().to_string()),
            "{err}"
        );
        let dev = Device::open(&p.path, &SerialSettings::default()).expect("open");
        assert!(matches!(dev.apply(&zero), Err(DeviceError::Baud { .. })));
        assert_eq!(dev.settings().expect("settings").baud, 115_200);
    }

    #[tokio::test]
    async fn missing_device_is_an_open_error_naming_it() {
        let err = Device::open(
            Path::new("/dev/lava-no-such-tty"),
            &SerialSettings::default(),
        )
        .expect_err("absent");
        assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
        assert!(err.to_string().contains("/dev/lava-no-such-tty"), "{err}");
    }

    /// A pty's driver has no break operation: the kernel accepts TIOCSBRK, TIOCCBRK and
    /// TCSBRK (tcsendbreak) on it and returns success without a break reaching the master.
    /// On a real UART the same calls drive the line; either way the kernel's answer is returned.
    #[tokio::test]
    async fn break_ioctls_are_issued_and_the_kernel_answers() {
        let mut p = pty();
        let dev = Device::open(&p.path, &SerialSettings::default()).expect("open");
        dev.set_break(true).expect("TIOCSBRK on a pty");
        dev.set_break(false).expect("TIOCCBRK on a pty");
        let t0 = std::time::Instant::now();
        dev.send_break().expect("tcsendbreak on a pty");
        assert!(
            t0.elapsed() < std::time::Duration::from_millis(200),
            "no 250 ms wait on a pty"
        );
        // Nothing arrived on the master: a pty carries no break (and no NUL byte stands in for it).
        dev.write_all(b"x").await.expect("write");
        let mut got = [0u8; 1];
        p.master.read_exact(&mut got).expect("read master");
        assert_eq!(&got, b"x");
    }

    /// A pty has no modem lines: the kernel refuses TIOCMGET/TIOCMBIS and the error says which.
    #[tokio::test]
    async fn modem_lines_on_a_pty_give_the_kernels_answer() {
        let p = pty();
        let dev = Device::open(&p.path, &SerialSettings::default()).expect("open");
        let err = dev.modem_status().expect_err("a pty has no modem lines");
        assert!(
            matches!(
                err,
                DeviceError::Control {
                    what: "TIOCMGET",
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(err.raw_os_error(), Some(libc::ENOTTY), "{err}");
        assert!(dev.set_dtr(true).is_err());
        assert!(dev.set_rts(false).is_err());
    }

    #[tokio::test]
    async fn purge_input_discards_unread_bytes() {
        let mut p = pty();
        let dev = Device::open(&p.path, &SerialSettings::default()).expect("open");
        p.master.write_all(b"stale").expect("write");
        // Wait until the bytes are in the slave's input queue before purging.
        let mut pending: libc::c_int = 0;
        let ready = tokio::time::timeout(std::time::Duration::from_secs(5), dev.fd.readable());
        ready
            .await
            .expect("bytes reach the slave")
            .expect("readable")
            .retain_ready();
        for _ in 0..1000 {
            ioctl_int(dev.raw(), libc::FIONREAD, &mut pending).expect("FIONREAD");
            if pending == 5 {
                break;
            }
            std::thread::yield_now();
        }
        assert_eq!(pending, 5);
        dev.purge(true, false).expect("purge");
        ioctl_int(dev.raw(), libc::FIONREAD, &mut pending).expect("FIONREAD");
        assert_eq!(pending, 0);
        p.master.write_all(b"fresh").expect("write");
        assert_eq!(read_exactly(&dev, 5).await, b"fresh");
        dev.purge(false, true).expect("purge output");
        dev.purge(true, true).expect("purge both");
    }

    /// Closing the master (the adapter unplugged) makes the slave read end of file (`Ok(0)` on
    /// Linux; a vanished USB adapter reads EIO instead), which the port owner takes as "gone".
    #[tokio::test]
    async fn closing_the_master_ends_reads() {
        let p = pty();
        let dev = Device::open(&p.path, &SerialSettings::default()).expect("open");
        drop(p.master);
        let mut buf = [0u8; 64];
        let res = tokio::time::timeout(std::time::Duration::from_secs(5), dev.read(&mut buf))
            .await
            .expect("read must end when the master closes");
        match res {
            Ok(0) => {}
            other => panic!("a hung-up pty slave must read EOF, got {other:?}"),
        }
    }
}
