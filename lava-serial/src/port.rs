//! The port owner: the one task that owns a board's serial device. It reads the device
//! continuously, puts its output (the scrollback too) in the ring every client reads, feeds the
//! console log, writes clients' bytes to the device, carries out line controls
//! (RFC 2217 settings, BREAK, modem lines, purge), and survives the adapter vanishing.
//!
//! Everything else talks to it through channels; there is no lock on the byte path. Output goes
//! into the port's [`Ring`] (shared by the port's tasks, which all run on one thread), and a
//! `watch` channel tells the clients there is more; each client reads the ring at its own offset,
//! so a client that fell behind knows exactly how many bytes it lost.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use lava_common::{FlowControl, Parity, SerialSettings, StopBits};
use tokio::sync::{mpsc, oneshot, watch};

use crate::config::PortConfig;
use crate::consolelog::ConsoleLog;
use crate::device::{Device, ModemStatus, WriteWaiter};
pub use crate::ring::Target;
use crate::ring::{Cursor, Ring, LAG_BYTES};
use crate::watch::Watcher;

/// A client's number, unique for the life of the process.
pub type ClientId = u64;

/// Most client writes queued for the device before clients' reads are held back.
pub const WRITE_QUEUE: usize = 64;
/// How long a BREAK lasts when a client sends `IAC BRK` (the kernel's tcsendbreak default).
pub const BREAK_LENGTH: Duration = Duration::from_millis(250);
/// Most bytes one device read takes (a USB adapter delivers far less at a time).
const READ_SIZE: usize = 4096;
/// After the device could not be opened although present, wait this long before trying again.
const REOPEN_BACKOFF: Duration = Duration::from_secs(1);

/// A new client's place in the port's output, taken atomically: its first byte is the board's
/// next one, and `changes` says when there is more.
pub struct Subscription {
    pub cursor: Cursor,
    pub changes: watch::Receiver<()>,
}

/// Another client, as a new client is told about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub name: String,
    pub writer: bool,
}

/// The port as an attaching client sees it.
#[derive(Debug, Clone)]
pub struct Attached {
    pub others: Vec<Peer>,
    pub adapter_present: bool,
}

/// A change a client asks of the line (RFC 2217), or a question about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineOp {
    Query,
    Baud(u32),
    DataBits(u8),
    Parity(Parity),
    StopBits(StopBits),
    Flow(FlowControl),
    /// BREAK on or off (SET-CONTROL 5/6).
    Break(bool),
    /// A BREAK of [`BREAK_LENGTH`] (`IAC BRK`).
    SendBreak,
    Dtr(bool),
    Rts(bool),
    Purge {
        input: bool,
        output: bool,
    },
}

/// The line as it is after a [`LineOp`]: what RFC 2217 answers report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineState {
    pub settings: SerialSettings,
    pub break_on: bool,
    pub dtr: bool,
    pub rts: bool,
    pub modem: ModemStatus,
    pub present: bool,
}

/// Requests to the port owner.
pub enum Control {
    /// A client has said who it is (after its hello, or as a plain client).
    Attach {
        id: ClientId,
        name: String,
        peer: SocketAddr,
        writer: bool,
        reply: oneshot::Sender<Attached>,
    },
    /// A client left.
    Detach { id: ClientId },
    /// A line change or query.
    Line {
        id: ClientId,
        op: LineOp,
        reply: oneshot::Sender<LineState>,
    },
}

/// Bytes a client wrote for the board.
pub struct WriteReq {
    pub id: ClientId,
    pub data: Bytes,
}

/// A client's handle on the port: cheap to clone. Used only on the port's thread (the ring is
/// shared without a lock).
#[derive(Clone)]
pub struct PortHandle {
    pub board: Arc<str>,
    pub control: mpsc::UnboundedSender<Control>,
    pub writes: mpsc::Sender<WriteReq>,
    /// The board's output and notices; clients only read it.
    pub ring: Rc<RefCell<Ring>>,
    changes: watch::Receiver<()>,
    /// The most a client may ask to replay (the configured scrollback).
    pub scrollback: usize,
}

impl PortHandle {
    /// Subscribes to the port's output from now on; `None` when the port is shutting down.
    pub fn subscribe(&self) -> Option<Subscription> {
        if self.control.is_closed() {
            return None;
        }
        let mut changes = self.changes.clone();
        changes.borrow_and_update();
        Some(Subscription {
            cursor: self.ring.borrow().cursor(),
            changes,
        })
    }

    /// Announces the client; `None` when the port is shutting down.
    pub async fn attach(
        &self,
        id: ClientId,
        name: String,
        peer: SocketAddr,
        writer: bool,
    ) -> Option<Attached> {
        let (reply, rx) = oneshot::channel();
        self.control
            .send(Control::Attach {
                id,
                name,
                peer,
                writer,
                reply,
            })
            .ok()?;
        rx.await.ok()
    }

    /// Changes or queries the line; `None` when the port is shutting down.
    pub async fn line(&self, id: ClientId, op: LineOp) -> Option<LineState> {
        let (reply, rx) = oneshot::channel();
        self.control.send(Control::Line { id, op, reply }).ok()?;
        rx.await.ok()
    }

    /// The notice line for `text`, as every client shows it.
    pub fn notice(&self, text: &str) -> Bytes {
        notice(&self.board, text)
    }
}

/// `\r\n[lava-serial: BOARD text]\r\n`.
pub fn notice(board: &str, text: &str) -> Bytes {
    Bytes::from(format!("\r\n[lava-serial: {board} {text}]\r\n"))
}

struct ClientEntry {
    name: String,
    peer: SocketAddr,
    writer: bool,
}

/// The port owner's state.
pub struct Owner {
    cfg: Arc<PortConfig>,
    ring: Rc<RefCell<Ring>>,
    changes: watch::Sender<()>,
    control: mpsc::UnboundedReceiver<Control>,
    writes: mpsc::Receiver<WriteReq>,
    watcher: Watcher,
    log: Option<ConsoleLog>,
    clients: BTreeMap<ClientId, ClientEntry>,
    /// Settings in effect (or to apply on reopen).
    settings: SerialSettings,
    /// Whether a client changed the settings: they are kept while clients stay attached.
    client_changed: bool,
    break_on: bool,
    dtr: bool,
    rts: bool,
    /// Bytes each client wrote while the adapter was gone and not yet reported to it.
    dropped: HashMap<ClientId, Dropped>,
}

/// Writes dropped for one client: reported at once, then at most once a second while the
/// adapter stays gone (so typing into a dead console is not a notice per key), and the rest when
/// it is back.
#[derive(Default)]
struct Dropped {
    unreported: u64,
    last_notice: Option<std::time::Instant>,
}

/// Least time between two dropped-writes notices to one client.
const DROPPED_NOTICE_EVERY: Duration = Duration::from_secs(1);

/// Why serving an open device ended.
enum End {
    Gone(String),
}

/// A client's write the device has not taken all of yet.
struct Pending {
    id: ClientId,
    data: Bytes,
}

impl Owner {
    /// Creates the owner and the handle clients use to reach it.
    pub fn new(
        cfg: Arc<PortConfig>,
        watcher: Watcher,
        log: Option<ConsoleLog>,
    ) -> (Owner, PortHandle) {
        let ring = Rc::new(RefCell::new(Ring::new(cfg.scrollback.max(LAG_BYTES))));
        let (changes, changes_rx) = watch::channel(());
        let (control_tx, control) = mpsc::unbounded_channel();
        let (writes_tx, writes) = mpsc::channel(WRITE_QUEUE);
        let handle = PortHandle {
            board: Arc::from(cfg.board.as_str()),
            control: control_tx,
            writes: writes_tx,
            ring: ring.clone(),
            changes: changes_rx,
            scrollback: cfg.scrollback,
        };
        let owner = Owner {
            settings: cfg.settings,
            cfg,
            ring,
            changes,
            control,
            writes,
            watcher,
            log,
            clients: BTreeMap::new(),
            client_changed: false,
            break_on: false,
            dtr: true,
            rts: true,
            dropped: HashMap::new(),
        };
        (owner, handle)
    }

    /// Serves the port until every handle is gone (the server shut down).
    pub async fn run(mut self) {
        let mut first = true;
        loop {
            // Clients are told when the adapter comes back, and when it first appears after a
            // start without it (they were told `adapter=gone` in their hello answer).
            let announce = !first || self.watcher.current().is_none();
            let Some(dev) = self.wait_for_device(first).await else {
                return;
            };
            if announce {
                self.event("adapter back");
                self.broadcast_notice("adapter back", Target::All);
                self.report_dropped();
            }
            first = false;
            match self.serve(&dev).await {
                None => return,
                Some(End::Gone(why)) => {
                    tracing::warn!(board = %self.cfg.board, path = %dev.path().display(), reason = %why, "adapter gone");
                    drop(dev);
                    self.break_on = false;
                    self.event(&format!("adapter gone ({why})"));
                    self.broadcast_notice("adapter gone", Target::All);
                }
            }
        }
    }

    /// Waits until the device is there and opens it (the watcher retries a node udev is still
    /// setting up). `None`: shut down. Clients are served meanwhile: their writes are dropped
    /// and counted, line changes are remembered for the open.
    async fn wait_for_device(&mut self, first: bool) -> Option<Device> {
        if first && self.watcher.current().is_none() {
            tracing::info!(board = %self.cfg.board, "adapter absent; listening, clients wait for it");
            self.event("adapter absent at start");
        }
        loop {
            tokio::select! {
                r = self.watcher.open(&self.settings) => match r {
                    Ok(dev) => {
                        tracing::info!(board = %self.cfg.board, path = %dev.path().display(), settings = %self.settings, "device open");
                        self.restore_modem_lines(&dev);
                        return Some(dev);
                    }
                    Err(e) => {
                        tracing::warn!(board = %self.cfg.board, error = %e, "cannot open the device; retrying");
                        if !self.idle_for(REOPEN_BACKOFF).await {
                            return None;
                        }
                    }
                },
                c = self.control.recv() => match c {
                    Some(c) => self.handle_control(None, c),
                    None => return None,
                },
                w = self.writes.recv() => match w {
                    Some(w) => self.drop_write(w),
                    None => return None,
                },
            }
        }
    }

    /// Serves clients without a device for `d`; false when shutting down.
    async fn idle_for(&mut self, d: Duration) -> bool {
        let sleep = tokio::time::sleep(d);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                _ = &mut sleep => return true,
                c = self.control.recv() => match c {
                    Some(c) => self.handle_control(None, c),
                    None => return false,
                },
                w = self.writes.recv() => match w {
                    Some(w) => self.drop_write(w),
                    None => return false,
                },
            }
        }
    }

    /// Serves an open device until it goes (`Some`) or the port shuts down (`None`).
    async fn serve(&mut self, dev: &Device) -> Option<End> {
        let mut buf = vec![0u8; READ_SIZE];
        // A client's write the device has not taken all of, and (only while there is one, or
        // more are queued) a registration to learn when it takes more.
        let mut pending: Option<Pending> = None;
        let mut waiter: Option<WriteWaiter> = None;
        let break_timer = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(break_timer);
        let mut break_pending = false;
        let end = loop {
            tokio::select! {
                r = dev.read(&mut buf) => match r {
                    Ok(0) => break Some(End::Gone("end of file".into())),
                    Ok(n) => self.publish(&buf[..n]),
                    Err(e) => break Some(End::Gone(e.to_string())),
                },
                r = async { waiter.as_ref().expect("guarded").writable().await }, if pending.is_some() && waiter.is_some() => {
                    if let Err(e) = r {
                        break Some(End::Gone(format!("waiting to write: {e}")));
                    }
                    self.write_out(dev, &mut pending);
                }
                w = self.writes.recv(), if pending.is_none() => match w {
                    Some(w) => {
                        pending = Some(Pending { id: w.id, data: w.data });
                        self.write_out(dev, &mut pending);
                    }
                    None => break None,
                },
                c = self.control.recv() => match c {
                    Some(Control::Line { op: LineOp::SendBreak, reply, .. }) => {
                        if self.set_break(dev, true) {
                            break_timer.as_mut().reset(tokio::time::Instant::now() + BREAK_LENGTH);
                            break_pending = true;
                        }
                        let _ = reply.send(self.state(Some(dev)));
                    }
                    Some(c) => self.handle_control(Some(dev), c),
                    None => break None,
                },
                _ = &mut break_timer, if break_pending => {
                    break_pending = false;
                    self.set_break(dev, false);
                }
                r = self.watcher.vanished() => {
                    break Some(End::Gone(match r {
                        Ok(()) => "device node removed".into(),
                        Err(e) => format!("watch failed: {e}"),
                    }));
                }
            }
            if pending.is_some() {
                if waiter.is_none() {
                    match dev.write_waiter() {
                        Ok(w) => waiter = Some(w),
                        Err(e) => break Some(End::Gone(format!("cannot wait to write: {e}"))),
                    }
                }
            } else if waiter.is_some() && self.writes.is_empty() {
                // Back-pressure is over: stop hearing about writability.
                waiter = None;
            }
        };
        if let Some(p) = pending {
            // The device went with this write half done: the rest is dropped, and counted.
            self.dropped.entry(p.id).or_default().unreported += p.data.len() as u64;
        }
        end
    }

    /// Writes the pending client write, and the ones queued after it, until the device takes no
    /// more (`pending` keeps the rest) or the queue is empty (`pending` is `None`). A write the
    /// device refuses is dropped and counted for its client.
    fn write_out(&mut self, dev: &Device, pending: &mut Option<Pending>) {
        while let Some(p) = pending {
            match dev.try_write(&p.data) {
                Ok(n) if n < p.data.len() && n > 0 => {
                    bytes::Buf::advance(&mut p.data, n);
                    continue;
                }
                Ok(n) if n == p.data.len() => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                r => {
                    let e = r.map_or_else(|e| e.to_string(), |_| "device took nothing".into());
                    tracing::warn!(board = %self.cfg.board, client = p.id, error = %e, bytes = p.data.len(), "device write failed");
                    self.dropped.entry(p.id).or_default().unreported += p.data.len() as u64;
                }
            }
            *pending = match self.writes.try_recv() {
                Ok(w) => Some(Pending {
                    id: w.id,
                    data: w.data,
                }),
                Err(_) => None,
            };
        }
    }

    fn publish(&mut self, data: &[u8]) {
        tracing::trace!(board = %self.cfg.board, bytes = data.len(), "board output");
        self.ring.borrow_mut().push(data);
        if let Some(log) = &mut self.log {
            log.data(data);
        }
        self.changes.send_replace(());
    }

    fn broadcast_notice(&self, text: &str, to: Target) {
        self.ring
            .borrow_mut()
            .notice(notice(&self.cfg.board, text), to);
        self.changes.send_replace(());
    }

    fn event(&mut self, text: &str) {
        if let Some(log) = &mut self.log {
            log.event(format!("{} {text}", self.cfg.board));
        }
    }

    fn drop_write(&mut self, w: WriteReq) {
        let d = self.dropped.entry(w.id).or_default();
        d.unreported += w.data.len() as u64;
        let due = d
            .last_notice
            .is_none_or(|t| t.elapsed() >= DROPPED_NOTICE_EVERY);
        if due {
            let n = std::mem::take(&mut d.unreported);
            d.last_notice = Some(std::time::Instant::now());
            self.dropped_notice(w.id, n);
        }
    }

    fn dropped_notice(&self, id: ClientId, n: u64) {
        if n > 0 && self.clients.contains_key(&id) {
            self.broadcast_notice(
                &format!("{n} bytes written while the adapter was gone were dropped"),
                Target::Only(id),
            );
        }
    }

    /// When the adapter is back: the dropped bytes not reported yet.
    fn report_dropped(&mut self) {
        for (id, d) in std::mem::take(&mut self.dropped) {
            self.dropped_notice(id, d.unreported);
        }
    }

    fn restore_modem_lines(&mut self, dev: &Device) {
        // Device::open asserts DTR and RTS; re-apply a client's explicit choice.
        if !self.dtr {
            let _ = dev.set_dtr(false);
        }
        if !self.rts {
            let _ = dev.set_rts(false);
        }
    }

    fn set_break(&mut self, dev: &Device, on: bool) -> bool {
        match dev.set_break(on) {
            Ok(()) => {
                self.break_on = on;
                tracing::info!(board = %self.cfg.board, on, "break");
                true
            }
            Err(e) => {
                tracing::warn!(board = %self.cfg.board, error = %e, "break failed");
                false
            }
        }
    }

    fn state(&self, dev: Option<&Device>) -> LineState {
        LineState {
            settings: self.settings,
            break_on: self.break_on,
            dtr: self.dtr,
            rts: self.rts,
            modem: dev.and_then(|d| d.modem_status().ok()).unwrap_or_default(),
            present: dev.is_some(),
        }
    }

    fn handle_control(&mut self, dev: Option<&Device>, c: Control) {
        match c {
            Control::Attach {
                id,
                name,
                peer,
                writer,
                reply,
            } => {
                let others = self
                    .clients
                    .values()
                    .map(|c| Peer {
                        name: c.name.clone(),
                        writer: c.writer,
                    })
                    .collect::<Vec<_>>();
                let mode = if writer { "rw" } else { "ro" };
                tracing::info!(board = %self.cfg.board, client = %name, %peer, mode, "client attached");
                self.event(&format!("client connected: {name} ({peer}) {mode}"));
                if writer && !others.is_empty() {
                    self.broadcast_notice(&format!("writer attached: {name}"), Target::AllBut(id));
                }
                self.clients.insert(id, ClientEntry { name, peer, writer });
                let _ = reply.send(Attached {
                    others,
                    adapter_present: dev.is_some(),
                });
            }
            Control::Detach { id } => {
                self.dropped.remove(&id);
                // What the client's buffers used goes back to the system.
                crate::mem::trim();
                if let Some(c) = self.clients.remove(&id) {
                    tracing::info!(board = %self.cfg.board, client = %c.name, peer = %c.peer, "client left");
                    self.event(&format!("client disconnected: {} ({})", c.name, c.peer));
                    if c.writer && !self.clients.is_empty() {
                        self.broadcast_notice(
                            &format!("writer left: {}", c.name),
                            Target::AllBut(id),
                        );
                    }
                }
                if self.clients.is_empty() && self.client_changed {
                    self.client_changed = false;
                    self.settings = self.cfg.settings;
                    if let Some(dev) = dev {
                        if let Err(e) = dev.apply(&self.settings) {
                            tracing::warn!(board = %self.cfg.board, error = %e, "cannot restore the configured settings");
                        }
                    }
                    self.event(&format!(
                        "last client left: settings restored to {}",
                        self.settings
                    ));
                }
            }
            Control::Line { id, op, reply } => {
                self.line_op(dev, id, op);
                let _ = reply.send(self.state(dev));
            }
        }
    }

    fn line_op(&mut self, dev: Option<&Device>, id: ClientId, op: LineOp) {
        let mut new = self.settings;
        match op {
            LineOp::Query => return,
            LineOp::Baud(b) => new.baud = b,
            LineOp::DataBits(d) => new.format.data_bits = d,
            LineOp::Parity(p) => new.format.parity = p,
            LineOp::StopBits(s) => new.format.stop_bits = s,
            LineOp::Flow(f) => new.flow = f,
            LineOp::Break(_) | LineOp::SendBreak if dev.is_some() => {
                if let Some(dev) = dev {
                    // SendBreak is timed by `serve`; here it only happens with no timer (absent).
                    self.set_break(dev, matches!(op, LineOp::Break(true)));
                }
                return;
            }
            LineOp::Break(_) | LineOp::SendBreak => return,
            LineOp::Dtr(on) => {
                self.dtr = on;
                if let Some(Err(e)) = dev.map(|d| d.set_dtr(on)) {
                    tracing::debug!(board = %self.cfg.board, error = %e, "DTR");
                }
                return;
            }
            LineOp::Rts(on) => {
                self.rts = on;
                if let Some(Err(e)) = dev.map(|d| d.set_rts(on)) {
                    tracing::debug!(board = %self.cfg.board, error = %e, "RTS");
                }
                return;
            }
            LineOp::Purge { input, output } => {
                if let Some(Err(e)) = dev.map(|d| d.purge(input, output)) {
                    tracing::warn!(board = %self.cfg.board, error = %e, "purge failed");
                }
                return;
            }
        }
        if new == self.settings {
            return;
        }
        let who = self
            .clients
            .get(&id)
            .map_or_else(|| format!("client {id}"), |c| c.name.clone());
        if let Some(dev) = dev {
            if let Err(e) = dev.apply(&new) {
                tracing::warn!(board = %self.cfg.board, client = %who, error = %e, "settings refused");
                return;
            }
        } else if crate::device::baud_rate(new.baud).is_none() {
            return;
        }
        tracing::info!(board = %self.cfg.board, client = %who, from = %self.settings, to = %new, "settings changed");
        self.event(&format!(
            "settings changed by {who}: {} -> {new}",
            self.settings
        ));
        self.settings = new;
        self.client_changed = true;
    }
}
