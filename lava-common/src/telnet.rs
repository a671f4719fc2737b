//! The telnet (RFC 854/855/856/857/858) and RFC 2217 codec: a pure state machine over bytes.
//!
//! Sockets live elsewhere: the caller feeds the bytes it read into `receive` and writes out what
//! the codec appended to its output buffers. Option negotiation follows RFC 1143's Q method, so
//! two peers never answer an answer and negotiation always reaches a fixed point. Subnegotiations
//! are capped at [`MAX_SUBNEGOTIATION`] bytes: garbage or an unterminated `IAC SB` never grows
//! memory.

/// Interpret As Command: starts every telnet command; doubled in data.
pub const IAC: u8 = 255;
/// End of subnegotiation parameters.
pub const SE: u8 = 240;
/// No operation.
pub const NOP: u8 = 241;
/// Data mark (the data stream part of a Synch).
pub const DM: u8 = 242;
/// NVT break: carried out as a serial break on the device.
pub const BRK: u8 = 243;
/// Interrupt process.
pub const IP: u8 = 244;
/// Abort output.
pub const AO: u8 = 245;
/// Are you there.
pub const AYT: u8 = 246;
/// Erase character.
pub const EC: u8 = 247;
/// Erase line.
pub const EL: u8 = 248;
/// Go ahead.
pub const GA: u8 = 249;
/// Start of subnegotiation.
pub const SB: u8 = 250;
/// The sender wants to enable (or confirms) an option on its side.
pub const WILL: u8 = 251;
/// The sender refuses (or disables) an option on its side.
pub const WONT: u8 = 252;
/// The sender asks the peer to enable (or confirms) an option on the peer's side.
pub const DO: u8 = 253;
/// The sender asks the peer to disable (or refuses) an option on the peer's side.
pub const DONT: u8 = 254;

/// Option: 8-bit transmission in one direction (RFC 856).
pub const BINARY: u8 = 0;
/// Option: the sender echoes what it receives (RFC 857).
pub const ECHO: u8 = 1;
/// Option: suppress go-ahead (RFC 858); with ECHO it puts a telnet client in character mode.
pub const SGA: u8 = 3;
/// Option: RFC 2217 COM-PORT-OPTION, remote control of the serial port.
pub const COM_PORT: u8 = 44;

/// Carriage return: in non-binary (NVT) mode it is always followed by LF or NUL on the wire.
const CR: u8 = b'\r';
const LF: u8 = b'\n';
const NUL: u8 = 0;

/// Longest subnegotiation kept (option byte included); longer ones are dropped whole, so a peer
/// sending garbage cannot make a connection grow without bound.
pub const MAX_SUBNEGOTIATION: usize = 256;

/// RFC 2217 command codes and values. Client-to-server commands use these codes; the server's
/// answers add [`rfc2217::SERVER_OFFSET`].
pub mod rfc2217 {
    /// Added to a command code in the server's answer.
    pub const SERVER_OFFSET: u8 = 100;
    /// SIGNATURE: free text identifying the port (empty = query).
    pub const SIGNATURE: u8 = 0;
    /// SET-BAUDRATE: 4 bytes, network order (0 = query).
    pub const SET_BAUDRATE: u8 = 1;
    /// SET-DATASIZE: 5..8 (0 = query).
    pub const SET_DATASIZE: u8 = 2;
    /// SET-PARITY: see the `PARITY_*` values.
    pub const SET_PARITY: u8 = 3;
    /// SET-STOPSIZE: see the `STOP_*` values.
    pub const SET_STOPSIZE: u8 = 4;
    /// SET-CONTROL: flow control, BREAK, DTR, RTS; see the `CONTROL_*` values.
    pub const SET_CONTROL: u8 = 5;
    /// NOTIFY-LINESTATE (server to client).
    pub const NOTIFY_LINESTATE: u8 = 6;
    /// NOTIFY-MODEMSTATE (server to client).
    pub const NOTIFY_MODEMSTATE: u8 = 7;
    /// FLOWCONTROL-SUSPEND: stop sending data.
    pub const FLOWCONTROL_SUSPEND: u8 = 8;
    /// FLOWCONTROL-RESUME: sending may go on.
    pub const FLOWCONTROL_RESUME: u8 = 9;
    /// SET-LINESTATE-MASK: which line state changes the client wants notified.
    pub const SET_LINESTATE_MASK: u8 = 10;
    /// SET-MODEMSTATE-MASK: which modem state changes the client wants notified.
    pub const SET_MODEMSTATE_MASK: u8 = 11;
    /// PURGE-DATA: see the `PURGE_*` values.
    pub const PURGE_DATA: u8 = 12;

    /// Parity query.
    pub const PARITY_QUERY: u8 = 0;
    /// No parity.
    pub const PARITY_NONE: u8 = 1;
    /// Odd parity.
    pub const PARITY_ODD: u8 = 2;
    /// Even parity.
    pub const PARITY_EVEN: u8 = 3;
    /// Mark parity.
    pub const PARITY_MARK: u8 = 4;
    /// Space parity.
    pub const PARITY_SPACE: u8 = 5;

    /// Stop size query.
    pub const STOP_QUERY: u8 = 0;
    /// One stop bit.
    pub const STOP_ONE: u8 = 1;
    /// Two stop bits.
    pub const STOP_TWO: u8 = 2;
    /// One and a half stop bits.
    pub const STOP_ONE_AND_HALF: u8 = 3;

    /// Query outbound flow control.
    pub const CONTROL_FLOW_QUERY: u8 = 0;
    /// No flow control (outbound, or both).
    pub const CONTROL_FLOW_NONE: u8 = 1;
    /// XON/XOFF flow control (outbound, or both).
    pub const CONTROL_FLOW_XONXOFF: u8 = 2;
    /// Hardware (RTS/CTS) flow control (outbound, or both).
    pub const CONTROL_FLOW_HARDWARE: u8 = 3;
    /// Query BREAK state.
    pub const CONTROL_BREAK_QUERY: u8 = 4;
    /// BREAK on.
    pub const CONTROL_BREAK_ON: u8 = 5;
    /// BREAK off.
    pub const CONTROL_BREAK_OFF: u8 = 6;
    /// Query DTR.
    pub const CONTROL_DTR_QUERY: u8 = 7;
    /// DTR on.
    pub const CONTROL_DTR_ON: u8 = 8;
    /// DTR off.
    pub const CONTROL_DTR_OFF: u8 = 9;
    /// Query RTS.
    pub const CONTROL_RTS_QUERY: u8 = 10;
    /// RTS on.
    pub const CONTROL_RTS_ON: u8 = 11;
    /// RTS off.
    pub const CONTROL_RTS_OFF: u8 = 12;
    /// Query inbound flow control.
    pub const CONTROL_INBOUND_FLOW_QUERY: u8 = 13;
    /// No inbound flow control.
    pub const CONTROL_INBOUND_FLOW_NONE: u8 = 14;
    /// XON/XOFF inbound flow control.
    pub const CONTROL_INBOUND_FLOW_XONXOFF: u8 = 15;
    /// Hardware inbound flow control.
    pub const CONTROL_INBOUND_FLOW_HARDWARE: u8 = 16;

    /// Purge the access server's receive buffer (data from the device).
    pub const PURGE_RX: u8 = 1;
    /// Purge the access server's transmit buffer (data to the device).
    pub const PURGE_TX: u8 = 2;
    /// Purge both buffers.
    pub const PURGE_BOTH: u8 = 3;
}

/// Something the client asked the port to do (server side) — RFC 2217 client→server commands and
/// telnet BREAK. The server answers each RFC 2217 command with [`TelnetServer::encode_reply`] once it
/// has applied it (pyserial waits for those answers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// `IAC BRK`: send a serial break.
    Break,
    /// SET-BAUDRATE; 0 = query current.
    SetBaud(u32),
    /// SET-DATASIZE; 0 = query.
    SetDataSize(u8),
    /// SET-PARITY, RFC 2217 codes: 0 query, 1 none, 2 odd, 3 even, 4 mark, 5 space.
    SetParity(u8),
    /// SET-STOPSIZE: 0 query, 1 one, 2 two, 3 1.5.
    SetStopSize(u8),
    /// SET-CONTROL values (flow, BREAK on/off 5/6, DTR 8/9, RTS 11/12, queries); see [`rfc2217`].
    SetControl(u8),
    /// PURGE-DATA: 1 rx, 2 tx, 3 both.
    Purge(u8),
    /// SIGNATURE; empty = query.
    Signature(Vec<u8>),
    /// SET-LINESTATE-MASK.
    SetLineStateMask(u8),
    /// SET-MODEMSTATE-MASK.
    SetModemStateMask(u8),
    /// FLOWCONTROL-SUSPEND: the client cannot take more data for now.
    FlowSuspend,
    /// FLOWCONTROL-RESUME: the client can take data again.
    FlowResume,
}

/// The server's RFC 2217 answers (encoded with code + 100).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// The port's signature.
    Signature(Vec<u8>),
    /// Baud rate now in effect.
    Baud(u32),
    /// Data size now in effect.
    DataSize(u8),
    /// Parity now in effect.
    Parity(u8),
    /// Stop size now in effect.
    StopSize(u8),
    /// Answer to SET-CONTROL (the value now in effect).
    Control(u8),
    /// Purge done.
    Purge(u8),
    /// NOTIFY-LINESTATE.
    LineState(u8),
    /// NOTIFY-MODEMSTATE.
    ModemState(u8),
    /// Line state mask now in effect.
    LineStateMask(u8),
    /// Modem state mask now in effect.
    ModemStateMask(u8),
    /// The server cannot take more data for now.
    FlowSuspend,
    /// The server can take data again.
    FlowResume,
}

impl Event {
    /// The RFC 2217 command code and value bytes (unescaped), or `None` for a telnet BREAK.
    fn com_port_parts(&self) -> Option<(u8, Vec<u8>)> {
        use rfc2217::*;
        Some(match self {
            Event::Break => return None,
            Event::SetBaud(b) => (SET_BAUDRATE, b.to_be_bytes().to_vec()),
            Event::SetDataSize(v) => (SET_DATASIZE, vec![*v]),
            Event::SetParity(v) => (SET_PARITY, vec![*v]),
            Event::SetStopSize(v) => (SET_STOPSIZE, vec![*v]),
            Event::SetControl(v) => (SET_CONTROL, vec![*v]),
            Event::Purge(v) => (PURGE_DATA, vec![*v]),
            Event::Signature(s) => (SIGNATURE, s.clone()),
            Event::SetLineStateMask(v) => (SET_LINESTATE_MASK, vec![*v]),
            Event::SetModemStateMask(v) => (SET_MODEMSTATE_MASK, vec![*v]),
            Event::FlowSuspend => (FLOWCONTROL_SUSPEND, Vec::new()),
            Event::FlowResume => (FLOWCONTROL_RESUME, Vec::new()),
        })
    }

    /// Parses a client's COM-PORT subnegotiation (the bytes after `IAC SB 44`, unescaped).
    /// Commands this server does not act on, and truncated ones, give `None`.
    fn decode(sub: &[u8]) -> Option<Event> {
        use rfc2217::*;
        let (&code, value) = sub.split_first()?;
        let byte = || value.first().copied();
        Some(match code {
            SIGNATURE => Event::Signature(value.to_vec()),
            SET_BAUDRATE => Event::SetBaud(u32::from_be_bytes(value.get(..4)?.try_into().ok()?)),
            SET_DATASIZE => Event::SetDataSize(byte()?),
            SET_PARITY => Event::SetParity(byte()?),
            SET_STOPSIZE => Event::SetStopSize(byte()?),
            SET_CONTROL => Event::SetControl(byte()?),
            FLOWCONTROL_SUSPEND => Event::FlowSuspend,
            FLOWCONTROL_RESUME => Event::FlowResume,
            SET_LINESTATE_MASK => Event::SetLineStateMask(byte()?),
            SET_MODEMSTATE_MASK => Event::SetModemStateMask(byte()?),
            PURGE_DATA => Event::Purge(byte()?),
            _ => return None,
        })
    }
}

impl Reply {
    /// The RFC 2217 answer code (command + 100) and value bytes (unescaped).
    fn parts(&self) -> (u8, Vec<u8>) {
        use rfc2217::*;
        let (code, value) = match self {
            Reply::Signature(s) => (SIGNATURE, s.clone()),
            Reply::Baud(b) => (SET_BAUDRATE, b.to_be_bytes().to_vec()),
            Reply::DataSize(v) => (SET_DATASIZE, vec![*v]),
            Reply::Parity(v) => (SET_PARITY, vec![*v]),
            Reply::StopSize(v) => (SET_STOPSIZE, vec![*v]),
            Reply::Control(v) => (SET_CONTROL, vec![*v]),
            Reply::Purge(v) => (PURGE_DATA, vec![*v]),
            Reply::LineState(v) => (NOTIFY_LINESTATE, vec![*v]),
            Reply::ModemState(v) => (NOTIFY_MODEMSTATE, vec![*v]),
            Reply::LineStateMask(v) => (SET_LINESTATE_MASK, vec![*v]),
            Reply::ModemStateMask(v) => (SET_MODEMSTATE_MASK, vec![*v]),
            Reply::FlowSuspend => (FLOWCONTROL_SUSPEND, Vec::new()),
            Reply::FlowResume => (FLOWCONTROL_RESUME, Vec::new()),
        };
        (code + SERVER_OFFSET, value)
    }

    /// Parses a server's COM-PORT subnegotiation (the bytes after `IAC SB 44`, unescaped).
    fn decode(sub: &[u8]) -> Option<Reply> {
        use rfc2217::*;
        let (&code, value) = sub.split_first()?;
        let byte = || value.first().copied();
        Some(match code.checked_sub(SERVER_OFFSET)? {
            SIGNATURE => Reply::Signature(value.to_vec()),
            SET_BAUDRATE => Reply::Baud(u32::from_be_bytes(value.get(..4)?.try_into().ok()?)),
            SET_DATASIZE => Reply::DataSize(byte()?),
            SET_PARITY => Reply::Parity(byte()?),
            SET_STOPSIZE => Reply::StopSize(byte()?),
            SET_CONTROL => Reply::Control(byte()?),
            NOTIFY_LINESTATE => Reply::LineState(byte()?),
            NOTIFY_MODEMSTATE => Reply::ModemState(byte()?),
            FLOWCONTROL_SUSPEND => Reply::FlowSuspend,
            FLOWCONTROL_RESUME => Reply::FlowResume,
            SET_LINESTATE_MASK => Reply::LineStateMask(byte()?),
            SET_MODEMSTATE_MASK => Reply::ModemStateMask(byte()?),
            PURGE_DATA => Reply::Purge(byte()?),
            _ => return None,
        })
    }
}

/// Writes `IAC SB COM-PORT code value(IAC doubled) IAC SE`.
fn encode_com_port(code: u8, value: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&[IAC, SB, COM_PORT, code]);
    escape_iac(value, out);
    out.extend_from_slice(&[IAC, SE]);
}

/// Doubles every IAC (for anything that just needs escaping).
pub fn escape_iac(data: &[u8], out: &mut Vec<u8>) {
    encode(data, false, out);
}

/// Escapes data for the wire: IAC doubled; when `nvt` (the sender is not in BINARY mode) a CR
/// not followed by LF in this chunk becomes CR NUL (RFC 854), so a CR LF stays as it is.
fn encode(data: &[u8], nvt: bool, out: &mut Vec<u8>) {
    out.reserve(data.len());
    let mut rest = data;
    loop {
        let stop = if nvt {
            rest.iter().position(|&b| b == IAC || b == CR)
        } else {
            rest.iter().position(|&b| b == IAC)
        };
        let Some(n) = stop else {
            out.extend_from_slice(rest);
            return;
        };
        out.extend_from_slice(&rest[..=n]);
        if rest[n] == IAC {
            out.push(IAC);
        } else if rest.get(n + 1) != Some(&LF) {
            out.push(NUL);
        }
        rest = &rest[n + 1..];
    }
}

/// RFC 1143 state of one side of one option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Q {
    No,
    Yes,
    /// We asked to disable; `opposite` = enable again once answered.
    WantNo {
        opposite: bool,
    },
    /// We asked to enable; `opposite` = disable again once answered.
    WantYes {
        opposite: bool,
    },
}

/// Where the parser is in the byte stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Data,
    Iac,
    /// Got `IAC WILL|WONT|DO|DONT`, waiting for the option byte.
    Verb(u8),
    Sb,
    SbIac,
}

/// Something other than data and negotiation that a role acts on.
enum Signal<'a> {
    /// `IAC <command>` (NOP, BRK, AYT…; never SB/SE/WILL/WONT/DO/DONT/IAC).
    Command(u8),
    /// A complete subnegotiation, IAC unescaped, starting with the option byte.
    Sub(&'a [u8]),
}

/// What both ends share: the parser and the RFC 1143 option table.
#[derive(Debug, Clone)]
struct Telnet {
    /// Options on our side (we WILL).
    us: [Q; 256],
    /// Options on the peer's side (he WILL).
    him: [Q; 256],
    /// Options below 64 we agree to enable on our side / on the peer's side; all others refused.
    accept_us: u64,
    accept_him: u64,
    state: State,
    /// The last data byte was a CR from a peer in NVT mode: a NUL right after it is dropped.
    cr_pending: bool,
    sb: Vec<u8>,
    sb_overflow: bool,
}

fn bit(opt: u8) -> u64 {
    if opt < 64 {
        1 << opt
    } else {
        0
    }
}

impl Telnet {
    fn new(accept_us: &[u8], accept_him: &[u8]) -> Self {
        Telnet {
            us: [Q::No; 256],
            him: [Q::No; 256],
            accept_us: accept_us.iter().fold(0, |m, &o| m | bit(o)),
            accept_him: accept_him.iter().fold(0, |m, &o| m | bit(o)),
            state: State::Data,
            cr_pending: false,
            sb: Vec::new(),
            sb_overflow: false,
        }
    }

    fn us_enabled(&self, opt: u8) -> bool {
        self.us[usize::from(opt)] == Q::Yes
    }

    fn him_enabled(&self, opt: u8) -> bool {
        self.him[usize::from(opt)] == Q::Yes
    }

    /// Asks for an option to be enabled on our side (`us`) or the peer's (RFC 1143 "ask to enable").
    fn request(&mut self, us: bool, opt: u8, out: &mut Vec<u8>) {
        let (q, verb) = if us {
            (&mut self.us[usize::from(opt)], WILL)
        } else {
            (&mut self.him[usize::from(opt)], DO)
        };
        match *q {
            Q::No => {
                *q = Q::WantYes { opposite: false };
                out.extend_from_slice(&[IAC, verb, opt]);
            }
            Q::WantNo { opposite: false } => *q = Q::WantNo { opposite: true },
            Q::WantYes { opposite: true } => *q = Q::WantYes { opposite: false },
            Q::Yes | Q::WantNo { opposite: true } | Q::WantYes { opposite: false } => {}
        }
    }

    /// Handles `IAC verb opt` by the Q method: answers only requests, never answers.
    fn negotiate(&mut self, verb: u8, opt: u8, out: &mut Vec<u8>) {
        let enable = verb == WILL || verb == DO;
        let (q, accept, yes, no) = if verb == WILL || verb == WONT {
            (
                &mut self.him[usize::from(opt)],
                self.accept_him & bit(opt) != 0,
                DO,
                DONT,
            )
        } else {
            (
                &mut self.us[usize::from(opt)],
                self.accept_us & bit(opt) != 0,
                WILL,
                WONT,
            )
        };
        let mut send = |v: u8| out.extend_from_slice(&[IAC, v, opt]);
        if enable {
            match *q {
                Q::No if accept => {
                    *q = Q::Yes;
                    send(yes);
                }
                Q::No => send(no),
                Q::Yes => {}
                Q::WantNo { opposite: false } => *q = Q::No,
                Q::WantNo { opposite: true } | Q::WantYes { opposite: false } => *q = Q::Yes,
                Q::WantYes { opposite: true } => {
                    *q = Q::WantNo { opposite: false };
                    send(no);
                }
            }
        } else {
            match *q {
                Q::No => {}
                Q::Yes => {
                    *q = Q::No;
                    send(no);
                }
                Q::WantNo { opposite: false } | Q::WantYes { .. } => *q = Q::No,
                Q::WantNo { opposite: true } => {
                    *q = Q::WantYes { opposite: false };
                    send(yes);
                }
            }
        }
    }

    fn sb_push(&mut self, b: u8) {
        if self.sb.len() < MAX_SUBNEGOTIATION {
            self.sb.push(b);
        } else {
            self.sb_overflow = true;
        }
    }

    /// Parses `input`: data to `data`, negotiation answers to `reply`, the rest to `on`.
    fn receive(
        &mut self,
        input: &[u8],
        data: &mut Vec<u8>,
        reply: &mut Vec<u8>,
        mut on: impl FnMut(Signal<'_>, &Telnet, &mut Vec<u8>),
    ) {
        let mut i = 0;
        while i < input.len() {
            match self.state {
                State::Data => {
                    if std::mem::take(&mut self.cr_pending) && input[i] == NUL {
                        i += 1;
                        continue;
                    }
                    let rest = &input[i..];
                    let stop = if self.him_enabled(BINARY) {
                        rest.iter().position(|&b| b == IAC)
                    } else {
                        rest.iter().position(|&b| b == IAC || b == CR)
                    };
                    let Some(n) = stop else {
                        data.extend_from_slice(rest);
                        return;
                    };
                    i += n + 1;
                    if rest[n] == IAC {
                        data.extend_from_slice(&rest[..n]);
                        self.state = State::Iac;
                    } else {
                        data.extend_from_slice(&rest[..=n]);
                        self.cr_pending = true;
                    }
                }
                State::Iac => {
                    let b = input[i];
                    i += 1;
                    self.state = State::Data;
                    match b {
                        IAC => data.push(IAC),
                        WILL | WONT | DO | DONT => self.state = State::Verb(b),
                        SB => {
                            self.sb.clear();
                            self.sb_overflow = false;
                            self.state = State::Sb;
                        }
                        SE => {} // stray end of subnegotiation
                        _ => on(Signal::Command(b), self, reply),
                    }
                }
                State::Verb(verb) => {
                    let opt = input[i];
                    i += 1;
                    self.state = State::Data;
                    self.negotiate(verb, opt, reply);
                }
                State::Sb => {
                    let rest = &input[i..];
                    let n = rest.iter().position(|&b| b == IAC).unwrap_or(rest.len());
                    let room = MAX_SUBNEGOTIATION - self.sb.len();
                    if n > room {
                        self.sb_overflow = true;
                    }
                    self.sb.extend_from_slice(&rest[..n.min(room)]);
                    i += n;
                    if i < input.len() {
                        i += 1;
                        self.state = State::SbIac;
                    }
                }
                State::SbIac => {
                    let b = input[i];
                    match b {
                        IAC => {
                            i += 1;
                            self.sb_push(IAC);
                            self.state = State::Sb;
                        }
                        _ => {
                            // IAC SE ends it; any other IAC command also ends it (a peer that
                            // forgot the SE, as BSD telnetd reads it) and is then handled as
                            // a command in its own right.
                            if b == SE {
                                i += 1;
                                self.state = State::Data;
                            } else {
                                self.state = State::Iac;
                            }
                            if !self.sb_overflow {
                                let sb = std::mem::take(&mut self.sb);
                                on(Signal::Sub(&sb), self, reply);
                                self.sb = sb;
                            }
                            self.sb.clear();
                            self.sb_overflow = false;
                        }
                    }
                }
            }
        }
    }
}

/// The server end of a telnet connection to a serial port: negotiates character mode and
/// BINARY, takes RFC 2217 port commands, escapes board output.
#[derive(Debug, Clone)]
pub struct TelnetServer {
    t: Telnet,
}

impl Default for TelnetServer {
    fn default() -> Self {
        Self::new()
    }
}

impl TelnetServer {
    /// A server codec for a new connection; send [`TelnetServer::greeting`] first.
    pub fn new() -> Self {
        TelnetServer {
            t: Telnet::new(&[ECHO, SGA, BINARY, COM_PORT], &[SGA, BINARY, COM_PORT]),
        }
    }

    /// What the server sends on connect: WILL ECHO, WILL SGA, DO SGA, WILL BINARY, DO BINARY.
    pub fn greeting(&mut self, out: &mut Vec<u8>) {
        self.t.request(true, ECHO, out);
        self.t.request(true, SGA, out);
        self.t.request(false, SGA, out);
        self.t.request(true, BINARY, out);
        self.t.request(false, BINARY, out);
    }

    /// Bytes from the client: plain data appended to `data` (IAC IAC -> 0xFF; CR NUL -> CR when the
    /// client is not sending BINARY), negotiation answers appended to `reply` (send them back), port
    /// commands pushed to `events`. Never panics on any input; partial sequences across calls are
    /// kept. RFC 2217 commands count only once COM-PORT is negotiated.
    pub fn receive(
        &mut self,
        input: &[u8],
        data: &mut Vec<u8>,
        reply: &mut Vec<u8>,
        events: &mut Vec<Event>,
    ) {
        self.t
            .receive(input, data, reply, |signal, t, reply| match signal {
                Signal::Command(BRK) => events.push(Event::Break),
                Signal::Command(AYT) => reply.extend_from_slice(b"\r\n[yes]\r\n"),
                Signal::Command(_) => {}
                Signal::Sub(sub) => {
                    if let Some((&COM_PORT, rest)) = sub.split_first() {
                        if t.us_enabled(COM_PORT) || t.him_enabled(COM_PORT) {
                            if let Some(e) = Event::decode(rest) {
                                events.push(e);
                            }
                        }
                    }
                }
            });
    }

    /// Board output for this client: IAC doubled (and CR -> CR NUL when we are not sending BINARY;
    /// a CR LF stays CR LF). Called for every chunk to every client: copies runs, not bytes.
    pub fn encode_data(&self, data: &[u8], out: &mut Vec<u8>) {
        encode(data, !self.t.us_enabled(BINARY), out);
    }

    /// Encodes an RFC 2217 answer as IAC SB 44 <code+100> <value, IAC-escaped> IAC SE.
    pub fn encode_reply(&self, reply: &Reply, out: &mut Vec<u8>) {
        let (code, value) = reply.parts();
        encode_com_port(code, &value, out);
    }

    /// Whether the client speaks RFC 2217: it did WILL COM-PORT and we said DO, or it did DO and
    /// we said WILL (pyserial does both; accepting either is what pyserial's own server does).
    pub fn com_port_enabled(&self) -> bool {
        self.t.us_enabled(COM_PORT) || self.t.him_enabled(COM_PORT)
    }

    /// Whether the client agreed to send 8-bit data (RFC 856); until then a CR NUL it sends is a CR.
    pub fn client_binary(&self) -> bool {
        self.t.him_enabled(BINARY)
    }

    /// Whether we send 8-bit data (RFC 856); until then a bare CR we send goes out as CR NUL.
    pub fn server_binary(&self) -> bool {
        self.t.us_enabled(BINARY)
    }
}

/// Client side, for lava-console and PDU menus reached over telnet.
#[derive(Debug, Clone)]
pub struct TelnetClient {
    t: Telnet,
}

impl Default for TelnetClient {
    fn default() -> Self {
        Self::new()
    }
}

impl TelnetClient {
    /// A client codec for a new connection. It does not start negotiating: it answers the server.
    pub fn new() -> Self {
        TelnetClient {
            t: Telnet::new(&[BINARY, SGA], &[ECHO, SGA, BINARY]),
        }
    }

    /// Accepts the server's WILL ECHO/SGA/BINARY and DO BINARY/SGA; refuses everything else
    /// (DONT/WONT). Subnegotiations (RFC 2217 answers) are dropped; see
    /// [`TelnetClient::receive_with_replies`].
    pub fn receive(&mut self, input: &[u8], data: &mut Vec<u8>, reply: &mut Vec<u8>) {
        self.receive_with_replies(input, data, reply, &mut Vec::new());
    }

    /// Like [`TelnetClient::receive`], and collects the server's RFC 2217 answers and
    /// notifications in `replies`.
    pub fn receive_with_replies(
        &mut self,
        input: &[u8],
        data: &mut Vec<u8>,
        reply: &mut Vec<u8>,
        replies: &mut Vec<Reply>,
    ) {
        self.t.receive(input, data, reply, |signal, _, _| {
            if let Signal::Sub(sub) = signal {
                if let Some((&COM_PORT, rest)) = sub.split_first() {
                    if let Some(r) = Reply::decode(rest) {
                        replies.push(r);
                    }
                }
            }
        });
    }

    /// Keyboard or script data for the server: IAC doubled (+ CR NUL when not BINARY).
    pub fn encode_data(&self, data: &[u8], out: &mut Vec<u8>) {
        encode(data, !self.t.us_enabled(BINARY), out);
    }

    /// A telnet BREAK (`IAC BRK`), which lava-serial carries out as a serial break.
    pub fn encode_break(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&[IAC, BRK]);
    }

    /// Asks up front for what a console client wants: BINARY both ways, and the server to echo and
    /// suppress go-ahead. Sent in the client's first write, the server knows the line is 8-bit
    /// before it sends any data (so no CR NUL reaches an 8-bit client), with no round trip to wait.
    pub fn open(&mut self, out: &mut Vec<u8>) {
        self.t.request(false, BINARY, out);
        self.t.request(true, BINARY, out);
        self.t.request(false, SGA, out);
        self.t.request(false, ECHO, out);
    }

    /// Offers RFC 2217 as pyserial does (WILL COM-PORT and DO COM-PORT), so port commands can follow.
    pub fn request_com_port(&mut self, out: &mut Vec<u8>) {
        self.t.accept_us |= bit(COM_PORT);
        self.t.accept_him |= bit(COM_PORT);
        self.t.request(true, COM_PORT, out);
        self.t.request(false, COM_PORT, out);
    }

    /// Whether the server accepted RFC 2217.
    pub fn com_port_enabled(&self) -> bool {
        self.t.us_enabled(COM_PORT) || self.t.him_enabled(COM_PORT)
    }

    /// Encodes an RFC 2217 command (`IAC SB 44 code value IAC SE`; [`Event::Break`] as `IAC BRK`).
    pub fn encode_command(&self, command: &Event, out: &mut Vec<u8>) {
        match command.com_port_parts() {
            Some((code, value)) => encode_com_port(code, &value, out),
            None => self.encode_break(out),
        }
    }

    /// Whether the server echoes (telnet character mode): then the client should not echo locally.
    pub fn server_echoes(&self) -> bool {
        self.t.him_enabled(ECHO)
    }

    /// Whether we send 8-bit data (RFC 856).
    pub fn client_binary(&self) -> bool {
        self.t.us_enabled(BINARY)
    }

    /// Whether the server sends 8-bit data (RFC 856).
    pub fn server_binary(&self) -> bool {
        self.t.him_enabled(BINARY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Feeds `input` to a server, returns (data, reply, events).
    fn srv(s: &mut TelnetServer, input: &[u8]) -> (Vec<u8>, Vec<u8>, Vec<Event>) {
        let (mut d, mut r, mut e) = (Vec::new(), Vec::new(), Vec::new());
        s.receive(input, &mut d, &mut r, &mut e);
        (d, r, e)
    }

    /// Feeds `input` to a client, returns (data, reply, replies).
    fn cli(c: &mut TelnetClient, input: &[u8]) -> (Vec<u8>, Vec<u8>, Vec<Reply>) {
        let (mut d, mut r, mut rs) = (Vec::new(), Vec::new(), Vec::new());
        c.receive_with_replies(input, &mut d, &mut r, &mut rs);
        (d, r, rs)
    }

    /// Runs server and client against each other until neither has anything to say; returns
    /// the number of messages exchanged (panics if they do not settle: a negotiation loop).
    fn settle(s: &mut TelnetServer, c: &mut TelnetClient, mut to_client: Vec<u8>) -> usize {
        let mut to_server = Vec::new();
        for round in 0..20 {
            if to_client.is_empty() && to_server.is_empty() {
                return round;
            }
            let (d, r, _) = cli(c, &std::mem::take(&mut to_client));
            assert!(d.is_empty(), "negotiation leaked into data: {d:?}");
            to_server.extend(r);
            let (d, r, e) = srv(s, &std::mem::take(&mut to_server));
            assert!(d.is_empty() && e.is_empty());
            to_client.extend(r);
        }
        panic!("negotiation does not settle");
    }

    /// A server and client after the greeting has been negotiated.
    fn pair() -> (TelnetServer, TelnetClient) {
        let mut s = TelnetServer::new();
        let mut c = TelnetClient::new();
        let mut g = Vec::new();
        s.greeting(&mut g);
        settle(&mut s, &mut c, g);
        (s, c)
    }

    fn com_pair() -> (TelnetServer, TelnetClient) {
        let (mut s, mut c) = pair();
        let mut req = Vec::new();
        c.request_com_port(&mut req);
        let (_, r, _) = srv(&mut s, &req);
        assert_eq!(r, [IAC, DO, COM_PORT, IAC, WILL, COM_PORT]);
        let (_, r, _) = cli(&mut c, &r);
        assert!(r.is_empty(), "client answered an answer: {r:?}");
        assert!(s.com_port_enabled() && c.com_port_enabled());
        (s, c)
    }

    #[test]
    fn greeting_asks_for_character_mode_and_binary() {
        let mut s = TelnetServer::new();
        let mut g = Vec::new();
        s.greeting(&mut g);
        assert_eq!(
            g,
            [IAC, WILL, ECHO, IAC, WILL, SGA, IAC, DO, SGA, IAC, WILL, BINARY, IAC, DO, BINARY]
        );
        // Asking again while the answers are pending sends nothing.
        let mut again = Vec::new();
        s.greeting(&mut again);
        assert!(again.is_empty());
    }

    #[test]
    fn debian_telnet_answers_settle_without_replies() {
        // What `telnet host port` answers to the greeting.
        let mut s = TelnetServer::new();
        s.greeting(&mut Vec::new());
        let answers = [
            IAC, DO, ECHO, IAC, DO, SGA, IAC, WILL, SGA, IAC, DO, BINARY, IAC, WILL, BINARY,
        ];
        let (d, r, e) = srv(&mut s, &answers);
        assert!(d.is_empty() && r.is_empty() && e.is_empty(), "{r:?}");
        assert!(s.server_binary() && s.client_binary());
        assert!(!s.com_port_enabled());
    }

    #[test]
    fn pyserial_open_sequence() {
        // pyserial's rfc2217 client sends its requests without waiting for our greeting.
        let mut s = TelnetServer::new();
        let mut g = Vec::new();
        s.greeting(&mut g);
        let py = [
            IAC, DO, ECHO, IAC, WILL, SGA, IAC, DO, SGA, IAC, DO, COM_PORT, IAC, WILL, COM_PORT,
        ];
        let (_, r, _) = srv(&mut s, &py);
        assert_eq!(r, [IAC, WILL, COM_PORT, IAC, DO, COM_PORT]);
        assert!(s.com_port_enabled());
        // Its answers to our WILL BINARY / DO BINARY (it has them INACTIVE: it agrees).
        let (_, r, _) = srv(&mut s, &[IAC, DO, BINARY, IAC, WILL, BINARY]);
        assert!(r.is_empty());
        // Then the port settings; each must come back as an event to answer.
        let c = TelnetClient::new();
        let mut cmds = Vec::new();
        for e in [
            Event::SetBaud(115_200),
            Event::SetDataSize(8),
            Event::SetParity(rfc2217::PARITY_NONE),
            Event::SetStopSize(rfc2217::STOP_ONE),
            Event::SetControl(rfc2217::CONTROL_FLOW_NONE),
            Event::SetControl(rfc2217::CONTROL_DTR_ON),
            Event::SetControl(rfc2217::CONTROL_RTS_ON),
            Event::Purge(rfc2217::PURGE_RX),
            Event::Purge(rfc2217::PURGE_TX),
        ] {
            c.encode_command(&e, &mut cmds);
        }
        // pyserial's exact bytes for SET-BAUDRATE 115200.
        assert_eq!(
            &cmds[..10],
            [IAC, SB, COM_PORT, 1, 0x00, 0x01, 0xc2, 0x00, IAC, SE]
        );
        let (d, r, e) = srv(&mut s, &cmds);
        assert!(d.is_empty() && r.is_empty());
        assert_eq!(e.len(), 9);
        assert_eq!(e[0], Event::SetBaud(115_200));
        assert_eq!(e[8], Event::Purge(rfc2217::PURGE_TX));
    }

    #[test]
    fn server_refuses_unknown_options_and_never_answers_answers() {
        let mut s = TelnetServer::new();
        for (input, want) in [
            ([IAC, DO, 24], [IAC, WONT, 24]),       // TERMINAL-TYPE
            ([IAC, WILL, 31], [IAC, DONT, 31]),     // NAWS
            ([IAC, WILL, ECHO], [IAC, DONT, ECHO]), // the client must not echo
            ([IAC, DO, 200], [IAC, WONT, 200]),
            ([IAC, WILL, 255], [IAC, DONT, 255]),
        ] {
            let (_, r, _) = srv(&mut s, &input);
            assert_eq!(r, want, "for {input:?}");
        }
        // Disabling what is already off is an answer: silence.
        for input in [[IAC, DONT, 24], [IAC, WONT, 31], [IAC, WONT, ECHO]] {
            let (_, r, _) = srv(&mut s, &input);
            assert!(r.is_empty(), "for {input:?}");
        }
    }

    #[test]
    fn echo_option() {
        let mut s = TelnetServer::new();
        // Unsolicited DO ECHO: we agree once.
        assert_eq!(srv(&mut s, &[IAC, DO, ECHO]).1, [IAC, WILL, ECHO]);
        assert!(srv(&mut s, &[IAC, DO, ECHO]).1.is_empty());
        // DONT ECHO: we confirm with WONT once.
        assert_eq!(srv(&mut s, &[IAC, DONT, ECHO]).1, [IAC, WONT, ECHO]);
        assert!(srv(&mut s, &[IAC, DONT, ECHO]).1.is_empty());
        // Client side: accepts the server's WILL ECHO, refuses DO ECHO.
        let mut c = TelnetClient::new();
        assert_eq!(cli(&mut c, &[IAC, WILL, ECHO]).1, [IAC, DO, ECHO]);
        assert!(c.server_echoes());
        assert_eq!(cli(&mut c, &[IAC, DO, ECHO]).1, [IAC, WONT, ECHO]);
        assert_eq!(cli(&mut c, &[IAC, WONT, ECHO]).1, [IAC, DONT, ECHO]);
        assert!(!c.server_echoes());
    }

    #[test]
    fn sga_option_both_ways() {
        let mut s = TelnetServer::new();
        assert_eq!(srv(&mut s, &[IAC, DO, SGA]).1, [IAC, WILL, SGA]);
        assert_eq!(srv(&mut s, &[IAC, WILL, SGA]).1, [IAC, DO, SGA]);
        let mut c = TelnetClient::new();
        assert_eq!(cli(&mut c, &[IAC, DO, SGA]).1, [IAC, WILL, SGA]);
        assert_eq!(cli(&mut c, &[IAC, WILL, SGA]).1, [IAC, DO, SGA]);
        assert!(cli(&mut c, &[IAC, WILL, SGA]).1.is_empty());
    }

    #[test]
    fn binary_is_per_direction() {
        let mut s = TelnetServer::new();
        s.greeting(&mut Vec::new());
        // The client agrees to receive binary but not to send it.
        srv(&mut s, &[IAC, DO, BINARY, IAC, WONT, BINARY]);
        assert!(s.server_binary());
        assert!(!s.client_binary());
        let mut out = Vec::new();
        s.encode_data(b"a\rb", &mut out);
        assert_eq!(out, b"a\rb", "binary output: CR untouched");
        // Client input in NVT mode: CR NUL is CR, CR LF stays.
        let (d, _, _) = srv(&mut s, b"ls\r\0pwd\r\nx\r");
        assert_eq!(d, b"ls\rpwd\r\nx\r");
        let (d, _, _) = srv(&mut s, b"\0y");
        assert_eq!(d, b"y", "NUL after a CR split across reads is dropped");
        let (d, _, _) = srv(&mut s, b"\0z");
        assert_eq!(d, b"\0z", "a NUL not after CR is data");
        // Now the client sends binary: CR NUL is two data bytes.
        srv(&mut s, &[IAC, WILL, BINARY]);
        assert!(s.client_binary());
        let (d, _, _) = srv(&mut s, b"\r\0");
        assert_eq!(d, b"\r\0");
    }

    #[test]
    fn nvt_output_escapes_bare_cr_only() {
        let s = TelnetServer::new(); // nothing negotiated: NVT both ways
        let mut out = Vec::new();
        s.encode_data(b"a\r\nb\rc\r", &mut out);
        assert_eq!(out, b"a\r\nb\r\0c\r\0");
        let mut out = Vec::new();
        s.encode_data(&[b'\r', IAC, b'\r', b'\r', b'\n'], &mut out);
        assert_eq!(out, [b'\r', 0, IAC, IAC, b'\r', 0, b'\r', b'\n']);
    }

    #[test]
    fn escape_iac_doubles_only_iac() {
        let mut out = Vec::new();
        escape_iac(&[1, IAC, b'\r', IAC, IAC], &mut out);
        assert_eq!(out, [1, IAC, IAC, b'\r', IAC, IAC, IAC, IAC]);
    }

    #[test]
    fn com_port_is_accepted_both_ways() {
        let mut s = TelnetServer::new();
        assert_eq!(srv(&mut s, &[IAC, WILL, COM_PORT]).1, [IAC, DO, COM_PORT]);
        assert!(s.com_port_enabled());
        let mut s = TelnetServer::new();
        assert_eq!(srv(&mut s, &[IAC, DO, COM_PORT]).1, [IAC, WILL, COM_PORT]);
        assert!(s.com_port_enabled());
        // The client refuses COM-PORT until it asked for it.
        let mut c = TelnetClient::new();
        assert_eq!(cli(&mut c, &[IAC, WILL, COM_PORT]).1, [IAC, DONT, COM_PORT]);
    }

    #[test]
    fn com_port_commands_are_ignored_until_negotiated() {
        let mut s = TelnetServer::new();
        let (d, _, e) = srv(&mut s, &[IAC, SB, COM_PORT, 2, 7, IAC, SE, b'x']);
        assert!(e.is_empty());
        assert_eq!(d, b"x");
    }

    fn all_events() -> Vec<Event> {
        use rfc2217::*;
        let mut v = vec![
            Event::SetBaud(0),
            Event::SetBaud(9600),
            Event::SetBaud(115_200),
            Event::SetBaud(u32::MAX), // every byte an IAC
            Event::SetBaud(0x00ff_00ff),
            Event::SetDataSize(0),
            Event::SetDataSize(7),
            Event::SetDataSize(8),
            Event::Signature(Vec::new()),
            Event::Signature(b"lava \xff board\xff".to_vec()),
            Event::SetLineStateMask(0xff),
            Event::SetModemStateMask(0x30),
            Event::FlowSuspend,
            Event::FlowResume,
            Event::Purge(PURGE_RX),
            Event::Purge(PURGE_TX),
            Event::Purge(PURGE_BOTH),
        ];
        v.extend((0..=5).map(Event::SetParity));
        v.extend((0..=3).map(Event::SetStopSize));
        v.extend((0..=19).map(Event::SetControl));
        v
    }

    #[test]
    fn every_rfc2217_command_client_to_server() {
        let (mut s, c) = com_pair();
        for e in all_events() {
            let mut wire = Vec::new();
            c.encode_command(&e, &mut wire);
            let (d, r, got) = srv(&mut s, &wire);
            assert!(d.is_empty() && r.is_empty(), "{e:?}");
            assert_eq!(got, std::slice::from_ref(&e), "wire {wire:?}");
        }
        let mut wire = Vec::new();
        c.encode_command(&Event::Break, &mut wire);
        assert_eq!(wire, [IAC, BRK]);
        assert_eq!(srv(&mut s, &wire).2, [Event::Break]);
    }

    fn all_replies() -> Vec<Reply> {
        vec![
            Reply::Signature(Vec::new()),
            Reply::Signature(b"lava-serial board-1 \xff".to_vec()),
            Reply::Baud(115_200),
            Reply::Baud(u32::MAX),
            Reply::DataSize(8),
            Reply::Parity(3),
            Reply::StopSize(2),
            Reply::Control(5),
            Reply::Control(255),
            Reply::Purge(3),
            Reply::LineState(0x60),
            Reply::ModemState(0xff),
            Reply::LineStateMask(0),
            Reply::ModemStateMask(255),
            Reply::FlowSuspend,
            Reply::FlowResume,
        ]
    }

    #[test]
    fn every_rfc2217_reply_server_to_client() {
        let (s, mut c) = com_pair();
        for rep in all_replies() {
            let mut wire = Vec::new();
            s.encode_reply(&rep, &mut wire);
            assert_eq!(wire[..4], [IAC, SB, COM_PORT, wire[3]]);
            assert!(wire[3] >= 100 && wire[3] <= 112);
            let (d, r, got) = cli(&mut c, &wire);
            assert!(d.is_empty() && r.is_empty());
            assert_eq!(got, std::slice::from_ref(&rep), "wire {wire:?}");
        }
        // pyserial compares the answer's value bytes with what it sent: exact encoding.
        let mut wire = Vec::new();
        s.encode_reply(&Reply::Baud(115_200), &mut wire);
        assert_eq!(wire, [IAC, SB, COM_PORT, 101, 0, 1, 0xc2, 0, IAC, SE]);
        let mut wire = Vec::new();
        s.encode_reply(&Reply::Control(8), &mut wire);
        assert_eq!(wire, [IAC, SB, COM_PORT, 105, 8, IAC, SE]);
    }

    #[test]
    fn malformed_com_port_commands_are_dropped() {
        let (mut s, _) = com_pair();
        for sub in [
            &[IAC, SB, COM_PORT, IAC, SE][..],              // no code
            &[IAC, SB, COM_PORT, 1, 0, 1, IAC, SE],         // short baud
            &[IAC, SB, COM_PORT, 2, IAC, SE],               // no value
            &[IAC, SB, COM_PORT, 99, 1, IAC, SE],           // unknown code
            &[IAC, SB, COM_PORT, 101, 0, 0, 0, 1, IAC, SE], // a server answer
            &[IAC, SB, 24, 1, IAC, SE],                     // another option
            &[IAC, SB, IAC, SE],                            // empty
        ] {
            let (d, r, e) = srv(&mut s, sub);
            assert!(d.is_empty() && r.is_empty() && e.is_empty(), "{sub:?}");
        }
        // Extra value bytes are tolerated.
        assert_eq!(
            srv(&mut s, &[IAC, SB, COM_PORT, 2, 8, 9, IAC, SE]).2,
            [Event::SetDataSize(8)]
        );
    }

    #[test]
    fn oversized_subnegotiation_is_dropped_and_bounded() {
        let (mut s, _) = com_pair();
        let mut input = vec![IAC, SB, COM_PORT, 0];
        input.extend(std::iter::repeat_n(b'A', 10_000));
        s.receive(&input, &mut Vec::new(), &mut Vec::new(), &mut Vec::new());
        assert!(s.t.sb.capacity() <= 2 * MAX_SUBNEGOTIATION);
        // Terminate it: dropped whole, the stream goes on.
        let (d, _, e) = srv(&mut s, &[IAC, SE, b'o', b'k']);
        assert!(e.is_empty());
        assert_eq!(d, b"ok");
        // A signature of exactly what fits is kept.
        let mut input = vec![IAC, SB, COM_PORT, 0];
        input.extend(std::iter::repeat_n(b'B', MAX_SUBNEGOTIATION - 2));
        input.extend([IAC, SE]);
        assert_eq!(
            srv(&mut s, &input).2,
            [Event::Signature(vec![b'B'; MAX_SUBNEGOTIATION - 2])]
        );
    }

    #[test]
    fn subnegotiation_ended_by_another_command() {
        let (mut s, _) = com_pair();
        let (d, _, e) = srv(&mut s, &[IAC, SB, COM_PORT, 2, 7, IAC, BRK, b'x']);
        assert_eq!(e, [Event::SetDataSize(7), Event::Break]);
        assert_eq!(d, b"x");
    }

    #[test]
    fn other_commands() {
        let mut s = TelnetServer::new();
        let (d, r, e) = srv(
            &mut s,
            &[
                b'a', IAC, NOP, b'b', IAC, DM, IAC, GA, IAC, IP, IAC, AO, IAC, EC, IAC, EL, IAC,
                SE, b'c',
            ],
        );
        assert_eq!(d, b"abc");
        assert!(r.is_empty() && e.is_empty());
        let (_, r, _) = srv(&mut s, &[IAC, AYT]);
        assert_eq!(r, b"\r\n[yes]\r\n");
        assert_eq!(
            srv(&mut s, &[IAC, BRK, IAC, BRK]).2,
            [Event::Break, Event::Break]
        );
    }

    /// A stream mixing everything the server parses, and what it must make of it.
    fn mixed_stream() -> (Vec<u8>, Vec<u8>, Vec<u8>, Vec<Event>) {
        let input = [
            &b"he\r\0llo"[..],
            &[IAC, IAC, IAC, DO, ECHO, IAC, WILL, COM_PORT, b'\r', b'\n'],
            &[IAC, SB, COM_PORT, 1, 0, 0, IAC, IAC, IAC, IAC, IAC, SE],
            &[
                IAC, BRK, b'x', IAC, SB, COM_PORT, 0, b's', IAC, IAC, IAC, SE, b'\r',
            ],
            &[
                IAC, DO, 24, 0xfe, IAC, SB, 99, 1, 2, 3, IAC, SE, b'!', b'\r', 0,
            ],
        ]
        .concat();
        let data = [
            &b"he\rllo"[..],
            &[IAC, b'\r', b'\n', b'x', b'\r', 0xfe, b'!', b'\r'],
        ]
        .concat();
        let reply = vec![IAC, WILL, ECHO, IAC, DO, COM_PORT, IAC, WONT, 24];
        let events = vec![
            Event::SetBaud(0xffff),
            Event::Break,
            Event::Signature(vec![b's', IAC]),
        ];
        (input, data, reply, events)
    }

    #[test]
    fn mixed_stream_whole() {
        let (input, data, reply, events) = mixed_stream();
        let mut s = TelnetServer::new();
        assert_eq!(srv(&mut s, &input), (data, reply, events));
    }

    #[test]
    fn sequences_split_at_every_position() {
        let (input, data, reply, events) = mixed_stream();
        for cut in 0..=input.len() {
            let mut s = TelnetServer::new();
            let (mut d, mut r, mut e) = srv(&mut s, &input[..cut]);
            let (d2, r2, e2) = srv(&mut s, &input[cut..]);
            d.extend(d2);
            r.extend(r2);
            e.extend(e2);
            assert_eq!((&d, &r, &e), (&data, &reply, &events), "cut at {cut}");
        }
        // And byte by byte.
        let mut s = TelnetServer::new();
        let (mut d, mut r, mut e) = (Vec::new(), Vec::new(), Vec::new());
        for b in &input {
            s.receive(std::slice::from_ref(b), &mut d, &mut r, &mut e);
        }
        assert_eq!((d, r, e), (data, reply, events));
    }

    #[test]
    fn client_splits_at_every_position() {
        let s = TelnetServer::new();
        let mut input = vec![IAC, WILL, ECHO, b'a', IAC, IAC];
        s.encode_reply(&Reply::Baud(u32::MAX), &mut input);
        input.extend([b'\r', 0, IAC, DO, 24, b'z']);
        for cut in 0..=input.len() {
            let mut c = TelnetClient::new();
            c.request_com_port(&mut Vec::new());
            let (mut d, mut r, mut rs) = cli(&mut c, &input[..cut]);
            let (d2, r2, rs2) = cli(&mut c, &input[cut..]);
            d.extend(d2);
            r.extend(r2);
            rs.extend(rs2);
            assert_eq!(d, [b'a', IAC, b'\r', b'z'], "cut at {cut}");
            assert_eq!(r, [IAC, DO, ECHO, IAC, WONT, 24]);
            assert_eq!(rs, [Reply::Baud(u32::MAX)]);
        }
    }

    fn all_bytes() -> Vec<u8> {
        (0..=255u8)
            .chain((0..=255u8).rev())
            .chain([b'\r', 0, b'\r', b'\r', b'\n', b'\r'])
            .collect()
    }

    #[test]
    fn all_byte_values_round_trip_negotiated() {
        let (mut s, mut c) = pair();
        assert!(s.server_binary() && s.client_binary());
        assert!(c.server_binary() && c.client_binary() && c.server_echoes());
        let bytes = all_bytes();
        let mut wire = Vec::new();
        s.encode_data(&bytes, &mut wire);
        assert_eq!(cli(&mut c, &wire), (bytes.clone(), vec![], vec![]));
        let mut wire = Vec::new();
        c.encode_data(&bytes, &mut wire);
        assert_eq!(srv(&mut s, &wire), (bytes, vec![], vec![]));
    }

    #[test]
    fn all_byte_values_round_trip_nvt() {
        // Nothing negotiated: NVT both ways, CR NUL on the wire.
        let mut s = TelnetServer::new();
        let mut c = TelnetClient::new();
        let bytes = all_bytes();
        let mut wire = Vec::new();
        s.encode_data(&bytes, &mut wire);
        assert!(wire.windows(2).any(|w| w == [b'\r', 0]));
        assert_eq!(cli(&mut c, &wire).0, bytes);
        let mut wire = Vec::new();
        c.encode_data(&bytes, &mut wire);
        assert_eq!(srv(&mut s, &wire).0, bytes);
    }

    #[test]
    fn negotiation_reaches_a_fixed_point() {
        let mut s = TelnetServer::new();
        let mut c = TelnetClient::new();
        let mut g = Vec::new();
        s.greeting(&mut g);
        // Greeting, answers, done.
        assert_eq!(settle(&mut s, &mut c, g), 1);
        // Two servers greeting each other at once (every request crosses another) also settle.
        let mut a = TelnetServer::new();
        let mut b = TelnetServer::new();
        let (mut to_b, mut to_a) = (Vec::new(), Vec::new());
        a.greeting(&mut to_b);
        b.greeting(&mut to_a);
        for round in 0.. {
            assert!(round < 10, "servers loop");
            if to_a.is_empty() && to_b.is_empty() {
                break;
            }
            let ra = srv(&mut a, &std::mem::take(&mut to_a)).1;
            let rb = srv(&mut b, &std::mem::take(&mut to_b)).1;
            to_b = ra;
            to_a = rb;
        }
        assert!(a.server_binary() && a.client_binary() && b.server_binary());
    }

    /// A console client that asks for 8-bit in its first write while the server's greeting is on
    /// its way (the requests cross): both ends settle on BINARY both ways without a loop, and the
    /// server already sends 8-bit once it has read the client's first write.
    #[test]
    fn client_open_crossing_the_greeting_settles_8_bit() {
        let mut s = TelnetServer::new();
        let mut c = TelnetClient::new();
        let (mut greeting, mut open) = (Vec::new(), Vec::new());
        s.greeting(&mut greeting);
        c.open(&mut open);
        let mut hello = b"LAVA-SERIAL/1 replay=all\r\n".to_vec();
        hello.extend_from_slice(&open);
        let (data, to_client, _) = srv(&mut s, &hello);
        assert_eq!(data, b"LAVA-SERIAL/1 replay=all\r\n");
        assert!(s.server_binary() && s.client_binary());
        let mut wire = Vec::new();
        s.encode_data(b"a\rb", &mut wire);
        assert_eq!(wire, b"a\rb", "8-bit before the client's answer arrives");
        let (_, to_server, _) = cli(&mut c, &greeting);
        assert!(c.server_binary() && c.client_binary() && c.server_echoes());
        let (_, more, _) = cli(&mut c, &to_client);
        let (_, back, _) = srv(&mut s, &[to_server, more].concat());
        assert!(back.is_empty(), "no answer to an answer: {back:?}");
    }

    /// A peer that refuses every request: the refusals are answers, so the server says nothing
    /// more and the options stay off.
    #[test]
    fn refusing_peer_gets_no_answer() {
        let mut s = TelnetServer::new();
        let mut g = Vec::new();
        s.greeting(&mut g);
        let refusals: Vec<u8> = g
            .chunks(3)
            .flat_map(|c| [IAC, if c[1] == WILL { DONT } else { WONT }, c[2]])
            .collect();
        let (d, r, e) = srv(&mut s, &refusals);
        assert!(d.is_empty() && r.is_empty() && e.is_empty(), "{r:?}");
        assert!(!s.server_binary() && !s.client_binary());
        // A later change of mind is a new request and is answered once.
        assert_eq!(srv(&mut s, &[IAC, DO, BINARY]).1, [IAC, WILL, BINARY]);
        assert!(s.server_binary());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn arbitrary_input_never_panics_and_stays_bounded(
            chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..12),
            com in any::<bool>(),
        ) {
            let mut s = TelnetServer::new();
            let mut c = TelnetClient::new();
            s.greeting(&mut Vec::new());
            if com {
                srv(&mut s, &[IAC, WILL, COM_PORT]);
                c.request_com_port(&mut Vec::new());
            }
            for chunk in &chunks {
                let (d, r, e) = srv(&mut s, chunk);
                prop_assert!(d.len() <= chunk.len());
                prop_assert!(r.len() <= 3 * chunk.len() + 16);
                prop_assert!(e.len() <= chunk.len());
                prop_assert!(s.t.sb.len() <= MAX_SUBNEGOTIATION);
                let (d, r, _) = cli(&mut c, chunk);
                prop_assert!(d.len() <= chunk.len());
                prop_assert!(r.len() <= 3 * chunk.len());
                prop_assert!(c.t.sb.len() <= MAX_SUBNEGOTIATION);
            }
        }

        /// Any mix of requests from both ends, crossing on the wire, settles with both ends
        /// agreeing on every option; and a peer's command is answered at most once.
        #[test]
        fn negotiation_settles_and_agrees(
            reqs in proptest::collection::vec(
                (any::<bool>(), any::<bool>(), prop::sample::select(vec![BINARY, ECHO, SGA, COM_PORT, 24, 200])),
                0..24,
            ),
            cmds in proptest::collection::vec(
                (WILL..=DONT, prop::sample::select(vec![BINARY, ECHO, SGA, COM_PORT, 24, 200])),
                0..24,
            ),
        ) {
            // A fresh server answers a burst of commands with at most one answer each.
            let input: Vec<u8> = cmds.iter().flat_map(|&(v, o)| [IAC, v, o]).collect();
            let (_, r, _) = srv(&mut TelnetServer::new(), &input);
            prop_assert!(r.len() <= input.len());

            let mut s = TelnetServer::new();
            let mut c = TelnetClient::new();
            let (mut to_c, mut to_s) = (Vec::new(), Vec::new());
            c.request_com_port(&mut to_s);
            s.greeting(&mut to_c);
            for (i, &(server_side, us, opt)) in reqs.iter().enumerate() {
                if server_side {
                    s.t.request(us, opt, &mut to_c);
                } else {
                    c.t.request(us, opt, &mut to_s);
                }
                // Deliver some of the time, so requests cross on the wire.
                if i % 3 == 0 {
                    srv(&mut s, &std::mem::take(&mut to_s)).1.into_iter().for_each(|b| to_c.push(b));
                }
            }
            let (_, r, _) = srv(&mut s, &to_s);
            to_c.extend(r);
            settle(&mut s, &mut c, to_c);
            for o in 0..=255usize {
                prop_assert_eq!(s.t.us[o] == Q::Yes, c.t.him[o] == Q::Yes, "option {}", o);
                prop_assert_eq!(s.t.him[o] == Q::Yes, c.t.us[o] == Q::Yes, "option {}", o);
                prop_assert!(matches!(s.t.us[o], Q::Yes | Q::No) && matches!(c.t.us[o], Q::Yes | Q::No));
                prop_assert!(matches!(s.t.him[o], Q::Yes | Q::No) && matches!(c.t.him[o], Q::Yes | Q::No));
            }
        }

        #[test]
        fn escaping_round_trips(
            data in proptest::collection::vec(any::<u8>(), 0..2000),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..6),
            negotiated in any::<bool>(),
        ) {
            let (mut s, mut c) = if negotiated {
                pair()
            } else {
                (TelnetServer::new(), TelnetClient::new())
            };
            // Encoding in chunks is what a server does with board reads.
            let mut pieces: Vec<usize> = cuts.iter().map(|i| i.index(data.len() + 1)).collect();
            pieces.sort_unstable();
            let mut wire = Vec::new();
            let mut from = 0;
            for &to in pieces.iter().chain([data.len()].iter()) {
                s.encode_data(&data[from..to], &mut wire);
                from = to;
            }
            // ...and decoding in other chunks what a client gets from the socket.
            let mut got = Vec::new();
            for part in wire.chunks(97) {
                let (d, r, rs) = cli(&mut c, part);
                prop_assert!(r.is_empty() && rs.is_empty());
                got.extend(d);
            }
            prop_assert_eq!(&got, &data);

            let mut wire = Vec::new();
            c.encode_data(&data, &mut wire);
            let mut got = Vec::new();
            for part in wire.chunks(61) {
                let (d, r, e) = srv(&mut s, part);
                prop_assert!(r.is_empty() && e.is_empty());
                got.extend(d);
            }
            prop_assert_eq!(&got, &data);

            let mut esc = Vec::new();
            escape_iac(&data, &mut esc);
            prop_assert_eq!(esc.len(), data.len() + data.iter().filter(|&&b| b == IAC).count());
        }
    }
}
