//! The always-on console log of a board: every byte from the device with a UTC timestamp (µs) at
//! the start of each line, plus events (clients, adapter gone/back, settings), rotated by size.
//!
//! Written by a thread of its own, fed through a bounded channel with `try_send`: a slow or full
//! disk drops log data (and says how much with a `[log: N bytes dropped]` line) instead of
//! stalling the port. A log error is reported through `tracing` and never stops the port.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;

use crate::timefmt::push_utc_micros;

/// Most bytes of board output waiting for the disk before new output is dropped: ~91 s of
/// output at 115200 baud while the disk stalls.
pub const QUEUE_BYTES: usize = 1 << 20;
/// After writing a batch of at least this many bytes, the memory it used is given back.
const TRIM_AFTER: usize = 256 << 10;
/// Most messages waiting for the disk.
const QUEUE_MESSAGES: usize = 4096;
/// After failing to open the log, wait this long before trying again.
const REOPEN_AFTER: Duration = Duration::from_secs(10);

/// Where and how big a console log is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    pub path: PathBuf,
    /// Rotate when the file reaches this many bytes.
    pub max_bytes: u64,
    /// How many rotated files (`board.log.1` … `board.log.N`) to keep.
    pub keep: usize,
}

enum Message {
    Data(SystemTime, Bytes),
    Event(SystemTime, String),
    Dropped(SystemTime, u64),
}

/// The port owner's end of the log: never blocks.
pub struct ConsoleLog {
    tx: SyncSender<Message>,
    queued: Arc<AtomicUsize>,
    dropped: u64,
}

/// The writer thread; join it at shutdown so the last lines reach the disk.
pub struct LogThread(JoinHandle<()>);

impl LogThread {
    /// Waits for the writer to flush and finish (after every `ConsoleLog` is dropped).
    pub fn join(self) {
        let _ = self.0.join();
    }
}

impl ConsoleLog {
    /// Starts the writer thread for `config`.
    pub fn start(config: LogConfig) -> io::Result<(ConsoleLog, LogThread)> {
        let (tx, rx) = sync_channel(QUEUE_MESSAGES);
        let queued = Arc::new(AtomicUsize::new(0));
        let q = queued.clone();
        let handle = std::thread::Builder::new()
            .name("console-log".into())
            .stack_size(64 * 1024)
            .spawn(move || Writer::new(config, q).run(rx))?;
        Ok((
            ConsoleLog {
                tx,
                queued,
                dropped: 0,
            },
            LogThread(handle),
        ))
    }

    /// Logs board output (copied: the writer thread takes it at its own pace).
    pub fn data(&mut self, bytes: &[u8]) {
        let now = SystemTime::now();
        let len = bytes.len();
        if self.queued.load(Ordering::Relaxed) + len > QUEUE_BYTES {
            self.dropped += len as u64;
            return;
        }
        if self.dropped > 0 {
            match self.tx.try_send(Message::Dropped(now, self.dropped)) {
                Ok(()) => self.dropped = 0,
                Err(_) => {
                    self.dropped += len as u64;
                    return;
                }
            }
        }
        self.queued.fetch_add(len, Ordering::Relaxed);
        if self
            .tx
            .try_send(Message::Data(now, Bytes::copy_from_slice(bytes)))
            .is_err()
        {
            self.queued.fetch_sub(len, Ordering::Relaxed);
            self.dropped += len as u64;
        }
    }

    /// Logs an event line, e.g. `client connected: alice@laptop (127.0.0.1:5555) rw`.
    pub fn event(&mut self, text: impl Into<String>) {
        match self
            .tx
            .try_send(Message::Event(SystemTime::now(), text.into()))
        {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => tracing::warn!("console log queue full: event dropped"),
            Err(TrySendError::Disconnected(_)) => {}
        }
    }
}

struct Writer {
    config: LogConfig,
    queued: Arc<AtomicUsize>,
    out: Option<BufWriter<File>>,
    size: u64,
    at_line_start: bool,
    failed_at: Option<Instant>,
    stamp: String,
}

impl Writer {
    fn new(config: LogConfig, queued: Arc<AtomicUsize>) -> Writer {
        Writer {
            config,
            queued,
            out: None,
            size: 0,
            at_line_start: true,
            failed_at: None,
            stamp: String::with_capacity(32),
        }
    }

    fn run(mut self, rx: Receiver<Message>) {
        while let Ok(first) = rx.recv() {
            let mut batch = self.handle(first);
            while let Ok(more) = rx.try_recv() {
                batch += self.handle(more);
            }
            if let Some(out) = &mut self.out {
                if let Err(e) = out.flush() {
                    self.fail(&e);
                }
            }
            if batch >= TRIM_AFTER {
                crate::mem::trim();
            }
        }
        if let Some(out) = &mut self.out {
            let _ = out.flush();
        }
    }

    /// Writes one message; returns how many bytes of board output it carried.
    fn handle(&mut self, msg: Message) -> usize {
        let mut len = 0;
        if let Message::Data(_, b) = &msg {
            len = b.len();
            self.queued.fetch_sub(len, Ordering::Relaxed);
        }
        if self.out.is_none() && !self.open() {
            return len;
        }
        let result = match msg {
            Message::Data(t, b) => self.write_data(t, &b),
            Message::Event(t, text) => self.write_event(t, &format!("[lava-serial: {text}]")),
            Message::Dropped(t, n) => self.write_event(t, &format!("[log: {n} bytes dropped]")),
        };
        if let Err(e) = result {
            self.fail(&e);
        }
        len
    }

    fn fail(&mut self, e: &io::Error) {
        tracing::error!(path = %self.config.path.display(), error = %e, "console log write failed; the port keeps serving");
        self.out = None;
        self.failed_at = Some(Instant::now());
    }

    /// Opens (appending) the log; false when it cannot, tried again after a while.
    fn open(&mut self) -> bool {
        if let Some(t) = self.failed_at {
            if t.elapsed() < REOPEN_AFTER {
                return false;
            }
        }
        match open_append(&self.config.path) {
            Ok((f, size)) => {
                self.out = Some(BufWriter::with_capacity(16 * 1024, f));
                self.size = size;
                self.failed_at = None;
                true
            }
            Err(e) => {
                tracing::error!(path = %self.config.path.display(), error = %e, "cannot open console log; the port keeps serving");
                self.failed_at = Some(Instant::now());
                false
            }
        }
    }

    fn start_line(&mut self, t: SystemTime) -> io::Result<()> {
        if self.size >= self.config.max_bytes {
            self.rotate()?;
        }
        self.stamp.clear();
        push_utc_micros(t, &mut self.stamp);
        self.stamp.push(' ');
        self.put(&self.stamp.clone().into_bytes())?;
        self.at_line_start = false;
        Ok(())
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        match &mut self.out {
            Some(out) => {
                out.write_all(bytes)?;
                self.size += bytes.len() as u64;
                Ok(())
            }
            None => Ok(()),
        }
    }

    fn write_data(&mut self, t: SystemTime, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            if self.at_line_start {
                self.start_line(t)?;
            }
            match data.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    self.put(&data[..=i])?;
                    self.at_line_start = true;
                    data = &data[i + 1..];
                }
                None => {
                    self.put(data)?;
                    data = &[];
                }
            }
        }
        Ok(())
    }

    fn write_event(&mut self, t: SystemTime, line: &str) -> io::Result<()> {
        if !self.at_line_start {
            self.put(b"\n")?;
            self.at_line_start = true;
        }
        self.start_line(t)?;
        self.put(line.as_bytes())?;
        self.put(b"\n")?;
        self.at_line_start = true;
        Ok(())
    }

    /// `board.log` → `board.log.1` → … → `board.log.N` (the oldest is removed), then a new file.
    fn rotate(&mut self) -> io::Result<()> {
        if let Some(mut out) = self.out.take() {
            out.flush()?;
        }
        let path = &self.config.path;
        let numbered = |n: usize| {
            let mut p = path.as_os_str().to_owned();
            p.push(format!(".{n}"));
            PathBuf::from(p)
        };
        if self.config.keep == 0 {
            let _ = std::fs::remove_file(path);
        } else {
            let _ = std::fs::remove_file(numbered(self.config.keep));
            for n in (1..self.config.keep).rev() {
                let _ = std::fs::rename(numbered(n), numbered(n + 1));
            }
            std::fs::rename(path, numbered(1))?;
        }
        let (f, size) = open_append(path)?;
        self.out = Some(BufWriter::with_capacity(16 * 1024, f));
        self.size = size;
        Ok(())
    }
}

fn open_append(path: &Path) -> io::Result<(File, u64)> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let f = OpenOptions::new().create(true).append(true).open(path)?;
    let size = f.metadata()?.len();
    Ok((f, size))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(p: &Path) -> String {
        std::fs::read_to_string(p).expect("log readable")
    }

    #[test]
    fn lines_are_stamped_and_events_are_lines() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("b.log");
        let (mut log, thread) = ConsoleLog::start(LogConfig {
            path: path.clone(),
            max_bytes: 1 << 20,
            keep: 2,
        })
        .expect("start");
        log.data(&Bytes::from_static(b"U-Boot 2024\r\nker"));
        log.data(&Bytes::from_static(b"nel\r\n"));
        log.data(&Bytes::from_static(b"login: "));
        log.event("client connected: alice");
        log.data(&Bytes::from_static(b"root\r\n"));
        drop(log);
        thread.join();
        let text = read(&path);
        let lines: Vec<&str> = text.split_terminator('\n').collect();
        assert_eq!(lines.len(), 5, "{text}");
        let bodies: Vec<&str> = lines
            .iter()
            .map(|l| {
                assert_eq!(&l[26..28], "Z ", "{l}");
                assert_eq!(&l[4..5], "-");
                &l[28..]
            })
            .collect();
        assert_eq!(
            bodies,
            [
                "U-Boot 2024\r",
                "kernel\r",
                "login: ",
                "[lava-serial: client connected: alice]",
                "root\r"
            ]
        );
    }

    #[test]
    fn rotates_by_size_and_keeps_n() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("b.log");
        let (mut log, thread) = ConsoleLog::start(LogConfig {
            path: path.clone(),
            max_bytes: 200,
            keep: 2,
        })
        .expect("start");
        for i in 0..40 {
            log.data(&Bytes::from(format!(
                "line {i:03} ........................\n"
            )));
        }
        drop(log);
        thread.join();
        let cur = read(&path);
        let one = read(&dir.path().join("b.log.1"));
        let two = read(&dir.path().join("b.log.2"));
        assert!(!dir.path().join("b.log.3").exists());
        assert!(cur.contains("line 039"), "{cur}");
        assert!(one.len() <= 200 + 80 && two.len() <= 200 + 80);
        // Rotation happens at line starts: every file starts with a timestamp.
        for f in [&cur, &one, &two] {
            assert!(f.starts_with("20"), "{f}");
        }
        let first_in_one: u32 = one[33..36].parse().expect("number");
        let first_in_cur: u32 = cur[33..36].parse().expect("number");
        assert!(first_in_one < first_in_cur);
    }
}
