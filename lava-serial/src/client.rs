//! One TCP client of a port: the hello line, telnet/RFC 2217 or raw bytes, writes to the board,
//! and board output with notices, read from the port's ring at the client's own offset. A client
//! that stops reading only falls behind on its own; when it falls behind by more than the ring
//! holds it loses its own oldest bytes and is told exactly how many.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use lava_common::telnet::{Event, Reply, TelnetServer};
use lava_common::{FlowControl, Parity, Protocol, StopBits};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::hello::{self, Hello, Replay};
use crate::port::{ClientId, Control, LineOp, LineState, PortHandle, WriteReq};
use crate::ring::{Cursor, Next};

/// How long a new client's output is held waiting for its hello line.
pub const HELLO_WAIT: Duration = Duration::from_millis(50);
/// How long a client that started a hello line has to finish it.
pub const HELLO_FINISH: Duration = Duration::from_secs(5);
/// Most board output taken from the ring into one socket write (a client that has fallen behind
/// catches up in writes of this size; it bounds the client's own buffer too).
const COALESCE: usize = 16 * 1024;
/// Socket read size.
const READ_SIZE: usize = 4096;

/// Serves one connection until it closes or the port shuts down. Errors are the client's own:
/// logged, never fatal to the port.
pub async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    id: ClientId,
    port: PortHandle,
    protocol: Protocol,
) {
    let board = port.board.clone();
    let mut c = Client {
        id,
        port,
        telnet: (protocol == Protocol::Telnet).then(TelnetServer::new),
        readonly: false,
        out: Vec::with_capacity(4096),
        out_pos: 0,
        cursor: Cursor {
            offset: 0,
            notice: 0,
        },
        data: Vec::new(),
        events: Vec::new(),
        suspended: false,
    };
    let attached = c.run(stream, peer).await;
    if attached {
        let _ = c.port.control.send(Control::Detach { id });
    }
    tracing::debug!(board = %board, client = id, %peer, "connection closed");
}

struct Client {
    id: ClientId,
    port: PortHandle,
    telnet: Option<TelnetServer>,
    readonly: bool,
    /// Bytes for the socket; `out[out_pos..]` is still to be written.
    out: Vec<u8>,
    out_pos: usize,
    /// Where this client is in the port's output.
    cursor: Cursor,
    /// Decoded client data (scratch).
    data: Vec<u8>,
    events: Vec<Event>,
    /// RFC 2217 FLOWCONTROL-SUSPEND in effect.
    suspended: bool,
}

enum Start {
    Plain,
    Hello(Hello),
}

impl Client {
    /// Returns whether the client got as far as attaching (so it must be detached).
    async fn run(&mut self, mut stream: TcpStream, peer: SocketAddr) -> bool {
        let Some(sub) = self.port.subscribe() else {
            return false;
        };
        let mut changes = sub.changes;
        self.cursor = sub.cursor;
        let (mut rd, mut wr) = stream.split();
        if let Some(t) = &mut self.telnet {
            t.greeting(&mut self.out);
            if wr.write_all(&self.out).await.is_err() {
                return false;
            }
            self.out.clear();
        }

        // The hello window: decoded client data is gathered until it is a hello line or cannot be.
        let mut first: Vec<u8> = Vec::new();
        let mut buf = vec![0u8; READ_SIZE];
        let window_end = Instant::now() + HELLO_WAIT;
        let finish_end = Instant::now() + HELLO_FINISH;
        let start = loop {
            if !first.is_empty() && !hello::may_be_hello(&first) {
                break Start::Plain;
            }
            if let Some(pos) = first.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = first.drain(..=pos).collect();
                let text = String::from_utf8_lossy(&line);
                match hello::parse(text.trim_end_matches(['\r', '\n'])) {
                    Ok(h) => break Start::Hello(h),
                    Err(reason) => {
                        tracing::info!(board = %self.port.board, %peer, %reason, "bad hello");
                        let _ = wr.write_all(hello::err_line(&reason).as_bytes()).await;
                        return false;
                    }
                }
            }
            if first.len() > hello::MAX_LEN {
                let _ = wr
                    .write_all(hello::err_line("hello line too long").as_bytes())
                    .await;
                return false;
            }
            let started = first.len() >= hello::TAG.len();
            let until = if started { finish_end } else { window_end };
            match tokio::time::timeout_at(until, rd.read(&mut buf)).await {
                Err(_) if started => {
                    let _ = wr
                        .write_all(hello::err_line("hello line not finished").as_bytes())
                        .await;
                    return false;
                }
                Err(_) => break Start::Plain,
                Ok(Ok(0)) | Ok(Err(_)) => return false,
                Ok(Ok(n)) => {
                    self.decode(&buf[..n]);
                    if first.is_empty() && self.data.is_empty() {
                        // Telnet negotiation and no data: a plain client answering our greeting
                        // (a hello is the start of a client's first write), so no more holding.
                        break Start::Plain;
                    }
                    first.append(&mut self.data);
                }
            }
        };

        let name = match &start {
            Start::Hello(Hello {
                client: Some(name), ..
            }) => name.clone(),
            _ => peer.to_string(),
        };
        if let Start::Hello(h) = &start {
            self.readonly = h.readonly;
        }
        let Some(attached) = self.port.attach(self.id, name, peer, !self.readonly).await else {
            return false;
        };
        if let Start::Hello(h) = &start {
            // The scrollback is the ring's last bytes before this client's first live one.
            let at = sub.cursor.offset;
            let held = {
                let ring = self.port.ring.borrow();
                at.saturating_sub(ring.start())
                    .min(self.port.scrollback as u64) as usize
            };
            let n = match h.replay {
                None => 0,
                Some(Replay::All) => held,
                Some(Replay::Last(n)) => n.min(held),
            };
            let others: Vec<hello::Who> = attached
                .others
                .iter()
                .map(|p| hello::Who {
                    name: p.name.clone(),
                    writer: p.writer,
                })
                .collect();
            let line = hello::ok_line(&self.port.board, &others, attached.adapter_present, n);
            self.out.extend_from_slice(line.as_bytes());
            let ring = self.port.ring.clone();
            let ring = ring.borrow();
            let (a, b) = ring.range(at - n as u64, at);
            self.encode(a);
            self.encode(b);
        }
        let mut to_board: Option<Bytes> = None;
        if !first.is_empty() && !self.readonly {
            to_board = Some(Bytes::from(first));
        }
        if !self.handle_events().await {
            return true;
        }

        let writes = self.port.writes.clone();
        loop {
            if self.out_pos == self.out.len() && !self.suspended {
                // Marked seen before looking, so output published after the look wakes us.
                changes.borrow_and_update();
                self.fill();
            }
            let flushing = self.out_pos < self.out.len();
            tokio::select! {
                r = rd.read(&mut buf), if to_board.is_none() => match r {
                    Ok(0) | Err(_) => return true,
                    Ok(n) => {
                        self.decode(&buf[..n]);
                        if !self.data.is_empty() && !self.readonly {
                            to_board = Some(Bytes::copy_from_slice(&self.data));
                        }
                        self.data.clear();
                        if !self.handle_events().await {
                            return true;
                        }
                    }
                },
                permit = writes.reserve(), if to_board.is_some() => match permit {
                    Ok(permit) => {
                        if let Some(data) = to_board.take() {
                            permit.send(WriteReq { id: self.id, data });
                        }
                    }
                    Err(_) => return true,
                },
                r = changes.changed(), if !flushing && !self.suspended => {
                    if r.is_err() {
                        // The port is gone.
                        return true;
                    }
                }
                r = wr.write(&self.out[self.out_pos..]), if flushing => match r {
                    Ok(0) | Err(_) => return true,
                    Ok(n) => {
                        self.out_pos += n;
                        if self.out_pos == self.out.len() {
                            self.out.clear();
                            self.out_pos = 0;
                        }
                    }
                },
            }
        }
    }

    /// Telnet-decodes (or copies) client bytes into `self.data`; negotiation answers go to `out`.
    fn decode(&mut self, input: &[u8]) {
        match &mut self.telnet {
            Some(t) => t.receive(input, &mut self.data, &mut self.out, &mut self.events),
            None => self.data.extend_from_slice(input),
        }
    }

    /// Telnet-encodes (or copies) bytes for the client into `out`.
    fn encode(&mut self, data: &[u8]) {
        match &self.telnet {
            Some(t) => t.encode_data(data, &mut self.out),
            None => self.out.extend_from_slice(data),
        }
    }

    /// Takes what is new in the ring (board output, notices, and a notice of what it lost if
    /// it fell behind) into `out`, up to [`COALESCE`] bytes of output.
    fn fill(&mut self) {
        let ring = self.port.ring.clone();
        let ring = ring.borrow();
        let mut budget = COALESCE;
        while budget > 0 {
            match ring.next(&mut self.cursor, budget) {
                Next::Data(a, b) => {
                    budget -= a.len() + b.len();
                    self.encode(a);
                    self.encode(b);
                }
                Next::Lost(lost) => {
                    tracing::debug!(board = %self.port.board, client = self.id, lost, "client too slow");
                    let n = self
                        .port
                        .notice(&format!("lost {lost} bytes (client too slow)"));
                    self.encode(&n);
                }
                Next::Notice(n) => {
                    if n.to.includes(self.id) {
                        self.encode(&n.text);
                    }
                }
                Next::Idle => break,
            }
        }
    }

    /// Carries out the RFC 2217 commands the client sent; false when the port is gone.
    async fn handle_events(&mut self) -> bool {
        let events = std::mem::take(&mut self.events);
        for ev in &events {
            let Some(reply) = self.event(ev).await else {
                return false;
            };
            if let (Some(reply), Some(t)) = (reply, &self.telnet) {
                t.encode_reply(&reply, &mut self.out);
            }
        }
        self.events = events;
        self.events.clear();
        true
    }

    async fn line(&self, op: LineOp) -> Option<LineState> {
        self.port.line(self.id, op).await
    }

    /// One command: `None` when the port is gone, `Some(answer)` otherwise.
    async fn event(&mut self, ev: &Event) -> Option<Option<Reply>> {
        let ro = self.readonly;
        let change = |op: LineOp| if ro { LineOp::Query } else { op };
        Some(match *ev {
            Event::Break => {
                if !ro {
                    self.line(LineOp::SendBreak).await?;
                }
                None
            }
            Event::SetBaud(b) => {
                let op = if b == 0 {
                    LineOp::Query
                } else {
                    change(LineOp::Baud(b))
                };
                Some(Reply::Baud(self.line(op).await?.settings.baud))
            }
            Event::SetDataSize(d) => {
                let op = match d {
                    5..=8 => change(LineOp::DataBits(d)),
                    _ => LineOp::Query,
                };
                Some(Reply::DataSize(
                    self.line(op).await?.settings.format.data_bits,
                ))
            }
            Event::SetParity(p) => {
                let op = match parity_from_code(p) {
                    Some(p) => change(LineOp::Parity(p)),
                    None => LineOp::Query,
                };
                let st = self.line(op).await?;
                Some(Reply::Parity(parity_code(st.settings.format.parity)))
            }
            Event::SetStopSize(s) => {
                let op = match s {
                    1 => change(LineOp::StopBits(StopBits::One)),
                    2 => change(LineOp::StopBits(StopBits::Two)),
                    3 => change(LineOp::StopBits(StopBits::OnePointFive)),
                    _ => LineOp::Query,
                };
                let st = self.line(op).await?;
                Some(Reply::StopSize(match st.settings.format.stop_bits {
                    StopBits::One => 1,
                    StopBits::Two => 2,
                    StopBits::OnePointFive => 3,
                }))
            }
            Event::SetControl(v) => Some(Reply::Control(self.control(v, change).await?)),
            Event::Purge(p) => {
                if (1..=3).contains(&p) {
                    self.line(change(LineOp::Purge {
                        input: p & 1 != 0,
                        output: p & 2 != 0,
                    }))
                    .await?;
                }
                Some(Reply::Purge(p))
            }
            Event::Signature(ref s) => {
                if s.is_empty() {
                    Some(Reply::Signature(
                        format!("lava-serial {}", self.port.board).into_bytes(),
                    ))
                } else {
                    tracing::debug!(board = %self.port.board, client = self.id, signature = %String::from_utf8_lossy(s), "client signature");
                    None
                }
            }
            Event::SetLineStateMask(m) => Some(Reply::LineStateMask(m)),
            Event::SetModemStateMask(m) => Some(Reply::ModemStateMask(m)),
            Event::FlowSuspend => {
                self.suspended = true;
                None
            }
            Event::FlowResume => {
                self.suspended = false;
                None
            }
        })
    }

    /// SET-CONTROL: flow control, BREAK, DTR, RTS and their queries; answers the value in effect.
    async fn control(&self, v: u8, change: impl Fn(LineOp) -> LineOp) -> Option<u8> {
        let flow_code = |f: FlowControl| match f {
            FlowControl::None => 1,
            FlowControl::Software => 2,
            FlowControl::Hardware => 3,
        };
        Some(match v {
            0..=3 => {
                let op = match v {
                    1 => change(LineOp::Flow(FlowControl::None)),
                    2 => change(LineOp::Flow(FlowControl::Software)),
                    3 => change(LineOp::Flow(FlowControl::Hardware)),
                    _ => LineOp::Query,
                };
                flow_code(self.line(op).await?.settings.flow)
            }
            // BREAK, DTR and RTS: a query code, then the "on" and "off" codes.
            4..=12 => {
                type Switch = (u8, fn(bool) -> LineOp, fn(&LineState) -> bool);
                let (query, op, get): Switch = match v {
                    4..=6 => (4, LineOp::Break, |s| s.break_on),
                    7..=9 => (7, LineOp::Dtr, |s| s.dtr),
                    _ => (10, LineOp::Rts, |s| s.rts),
                };
                let (on, off) = (query + 1, query + 2);
                let op = match v {
                    x if x == on => change(op(true)),
                    x if x == off => change(op(false)),
                    _ => LineOp::Query,
                };
                if get(&self.line(op).await?) {
                    on
                } else {
                    off
                }
            }
            // Inbound flow control follows the outbound setting on a Linux tty: 14 = none.
            13 => 14,
            other => other,
        })
    }
}

fn parity_from_code(p: u8) -> Option<Parity> {
    Some(match p {
        1 => Parity::None,
        2 => Parity::Odd,
        3 => Parity::Even,
        4 => Parity::Mark,
        5 => Parity::Space,
        _ => return None,
    })
}

fn parity_code(p: Parity) -> u8 {
    match p {
        Parity::None => 1,
        Parity::Odd => 2,
        Parity::Even => 3,
        Parity::Mark => 4,
        Parity::Space => 5,
    }
}
