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
