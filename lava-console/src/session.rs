//! One attached console session: dial the console, greet lava-serial (hello line, banner, replay),
//! then relay keyboard ⇄ board until the person quits, stdin ends, the peer closes or a signal
//! comes. Interactive sessions (stdin a terminal) run in raw mode with escapes; scripted ones are a
//! clean byte pipe with notices on stderr.

use std::io::Write;
use std::time::Duration;

use anyhow::{bail, Context};
use lava_common::telnet::TelnetClient;
use lava_common::Protocol;
use nix::sys::signal::Signal;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::cli::Verb;
use crate::escape::{display_escape, Action, Escaper};
use crate::hello::{self, AnswerError, NoticeFilter, Replay, Welcome};
use crate::power::{self, Outcome, PowerRoute};
use crate::target::Target;
use crate::term;

/// How long lava-serial gets to answer the hello line (it answers at once; this only catches a
/// port that is not lava-serial and says nothing).
const HELLO_TIMEOUT: Duration = Duration::from_secs(3);
/// Longest answer line accepted before deciding the port is not lava-serial.
const HELLO_MAX: usize = 4096;

/// How a session is run.
#[derive(Debug, Clone)]
pub struct SessionOptions {
    /// Escape character; `None`: no escapes.
    pub escape: Option<u8>,
    pub spy: bool,
    pub replay: Option<Replay>,
    pub linger: Duration,
    pub connect_timeout: Duration,
    /// How this client is named to others.
    pub client_name: String,
    pub quiet: bool,
    /// Where `~$hardreset` goes; the error says why there is none.
    pub power: Result<PowerRoute, String>,
    /// Force interactive (raw mode, escapes) or scripted; `None`: decided by stdin.
    pub interactive: Option<bool>,
}

/// How a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// `~.` typed.
    Quit,
    /// Scripted: stdin ended and the linger passed.
    InputDone,
    /// The console closed the connection.
    PeerClosed,
    /// The person's terminal went away.
    TerminalGone,
    /// SIGHUP, SIGTERM or SIGINT.
    Signal(i32),
}

impl End {
    /// The process exit status for this ending.
    pub fn exit_code(self, interactive: bool) -> u8 {
        match self {
            End::Quit | End::InputDone => 0,
            End::PeerClosed if !interactive => 0,
            End::PeerClosed | End::TerminalGone => 1,
            End::Signal(n) => 128u8.saturating_add(n as u8),
        }
    }
}

/// The telnet or raw layer between the socket and the session.
enum Wire {
    Raw,
    Telnet(Box<TelnetClient>),
}

impl Wire {
    fn decode(&mut self, input: &[u8], data: &mut Vec<u8>, reply: &mut Vec<u8>) {
        match self {
            Wire::Raw => data.extend_from_slice(input),
            Wire::Telnet(t) => t.receive(input, data, reply),
        }
    }

    fn encode(&self, data: &[u8], out: &mut Vec<u8>) {
        match self {
            Wire::Raw => out.extend_from_slice(data),
            Wire::Telnet(t) => t.encode_data(data, out),
        }
    }

    fn encode_break(&self, out: &mut Vec<u8>) -> bool {
        match self {
            Wire::Raw => false,
            Wire::Telnet(t) => {
                t.encode_break(out);
                true
            }
        }
    }
}

/// Where the session's own words go: stderr, with `\r\n` line ends when the terminal is raw.
struct Screen {
    raw: bool,
    filter: Option<NoticeFilter>,
}

impl Screen {
    fn board(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        let out_bytes;
        let bytes = match &mut self.filter {
            Some(f) => {
                let mut data = Vec::with_capacity(bytes.len());
                let mut notices = Vec::new();
                f.feed(bytes, &mut data, &mut notices);
                for n in notices {
                    self.line(&n);
                }
                out_bytes = data;
                &out_bytes[..]
            }
            None => bytes,
        };
        let mut out = std::io::stdout().lock();
        out.write_all(bytes)?;
        out.flush()
    }

    fn flush_held(&mut self) -> std::io::Result<()> {
        if let Some(f) = &mut self.filter {
            let mut data = Vec::new();
            f.flush(&mut data);
            let mut out = std::io::stdout().lock();
            out.write_all(&data)?;
            out.flush()?;
        }
        Ok(())
    }

    /// A line of our own, on a line of its own.
    fn line(&self, text: &str) {
        let mut err = std::io::stderr().lock();
        let _ = if self.raw {
            write!(err, "\r\n{}\r\n", text.replace('\n', "\r\n"))
        } else {
            writeln!(err, "{text}")
        };
        let _ = err.flush();
    }

    fn note(&self, text: &str) {
        self.line(&format!("[lava-console: {text}]"));
    }

    fn echo(&self, bytes: &[u8]) {
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(bytes);
        let _ = err.flush();
    }
}

/// The help shown by `~?`.
pub fn escape_help(esc: u8) -> String {
    let e = display_escape(esc);
    format!(
        "lava-console escapes (at the start of a line):\n\
         \x20 {e}.           quit\n\
         \x20 {e}B           send a BREAK; the next key goes to the board (sysrq)\n\
         \x20 {e}$hardreset  power-cycle the board through its PDU (also {e}$on, {e}$off, {e}$status)\n\
         \x20 {e}$help       the power commands\n\
         \x20 {e}?           this help\n\
         \x20 {e}{e}           a literal {e}"
    )
}

const POWER_HELP: &str = "power commands (type after ~$, then Enter):\n\
  hardreset  off, the PDU's delay, on (also: reset, reboot)\n\
  on, off    switch the outlet\n\
  status     the outlet's state";

/// Attaches to a console and runs the session until it ends.
pub async fn attach(target: &Target, opts: SessionOptions) -> anyhow::Result<End> {
    let interactive = opts.interactive.unwrap_or_else(term::stdin_is_tty);
    // Watched from the start, so a hang-up while connecting also ends us cleanly.
    let mut hup = signal(SignalKind::hangup()).context("cannot watch SIGHUP")?;
    let mut term_sig = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    let endpoint = target.endpoint();
    let stream = tokio::time::timeout(
        opts.connect_timeout,
        TcpStream::connect((target.host.as_str(), target.port)),
    )
    .await
    .map_err(|_| {
        anyhow::anyhow!(
            "{}: no answer from {endpoint} within {:?}",
            target.label,
            opts.connect_timeout
        )
    })?
    .with_context(|| {
        format!(
            "{}: cannot connect to {endpoint}{}",
            target.label,
            if target.lava_serial {
                format!(" (is lava-serial@{} running?)", target.label)
            } else {
                String::new()
            }
        )
    })?;
    let _ = stream.set_nodelay(true);
    let (mut rd, mut wr) = stream.into_split();
    let mut wire = match target.protocol {
        Protocol::Telnet => Wire::Telnet(Box::default()),
        Protocol::Raw => Wire::Raw,
    };

    let mut screen = Screen {
        raw: false,
        filter: (!interactive && target.lava_serial).then(NoticeFilter::default),
    };
    let mut first = Vec::new();
    let mut welcome = None;
    if target.lava_serial {
        // The hello and (telnet) our request for 8-bit go in the first write, before anything is
        // read: lava-serial takes a hello only at the start of a client's first bytes, and with
        // BINARY asked up front it sends the answer line and the board's bytes 8-bit clean.
        let mut first_write =
            hello::hello_line(opts.spy, opts.replay, &opts.client_name).into_bytes();
        if let Wire::Telnet(t) = &mut wire {
            t.open(&mut first_write);
        }
        wr.write_all(&first_write)
            .await
            .with_context(|| format!("{}: writing to {endpoint}", target.label))?;
        match greet(&mut rd, &mut wr, &mut wire, opts.replay).await {
            Ok((w, rest)) => {
                welcome = Some(w);
                first = rest;
            }
            Err(Greeting::Refused(reason)) => bail!("{}: {reason}", target.label),
            Err(Greeting::Closed) => bail!(
                "{}: {endpoint} closed the connection before answering",
                target.label
            ),
            Err(Greeting::Io(e)) => {
                return Err(e).with_context(|| format!("{}: reading {endpoint}", target.label))
            }
            Err(Greeting::NotLavaSerial(rest)) => {
                screen.note(&format!(
                    "{endpoint} did not answer as lava-serial; relaying it as a plain console"
                ));
                screen.filter = None;
                first = rest;
            }
        }
    }

    // Raw mode from here: the guard restores the terminal however this function returns.
    let _raw = if interactive {
        Some(term::RawMode::enable().context("cannot put the terminal in raw mode")?)
    } else {
        None
    };
    screen.raw = interactive;
    if !opts.quiet {
        screen.note(&banner(target, welcome.as_ref(), &opts, interactive));
    }
    screen.board(&first)?;

    let (key_tx, mut keys) = mpsc::channel::<Vec<u8>>(16);
    spawn_stdin(key_tx);
    let (power_tx, mut power_rx) = mpsc::channel::<Outcome>(1);
    let mut power_busy = false;

    let mut escaper = Escaper::new(if interactive { opts.escape } else { None });
    let mut stdin_open = true;
    let mut linger_until: Option<Instant> = None;
    let mut warned_spy = false;
    let mut buf = vec![0u8; 16 * 1024];
    let mut data = Vec::with_capacity(16 * 1024);
    let mut reply = Vec::new();
    let mut out = Vec::new();
    let mut actions = Vec::new();

    let end = loop {
        tokio::select! {
            r = rd.read(&mut buf) => match r {
                Ok(0) => break End::PeerClosed,
                Ok(n) => {
                    data.clear();
                    reply.clear();
                    wire.decode(&buf[..n], &mut data, &mut reply);
                    if !reply.is_empty() {
                        wr.write_all(&reply).await.context("writing to the console")?;
                    }
                    if let Err(e) = screen.board(&data) {
                        if interactive {
                            break End::TerminalGone;
                        }
                        return Err(e).context("writing to stdout");
                    }
                }
                Err(e) => {
                    screen.note(&format!("{}: connection lost: {e}", target.label));
                    break End::PeerClosed;
                }
            },
            k = keys.recv(), if stdin_open => match k {
                None => {
                    stdin_open = false;
                    if interactive {
                        break End::TerminalGone;
                    }
                    linger_until = Some(Instant::now() + opts.linger);
                }
                Some(bytes) => {
                    actions.clear();
                    escaper.feed(&bytes, &mut actions);
                    let mut quit = false;
                    for a in actions.drain(..) {
                        match a {
                            Action::Send(b) => {
                                if opts.spy {
                                    if !warned_spy && interactive {
                                        screen.note("read-only (--spy): keys are not sent; ~. quits");
                                        warned_spy = true;
                                    }
                                    continue;
                                }
                                out.clear();
                                wire.encode(&b, &mut out);
                                wr.write_all(&out).await.context("writing to the console")?;
                            }
                            Action::Quit => {
                                quit = true;
                                break;
                            }
                            Action::Help => screen.line(&escape_help(opts.escape.unwrap_or(b'~'))),
                            Action::Break => {
                                out.clear();
                                if opts.spy {
                                    screen.note("read-only (--spy): no BREAK");
                                } else if wire.encode_break(&mut out) {
                                    wr.write_all(&out).await.context("writing to the console")?;
                                    screen.note("BREAK sent; the next key goes to the board");
                                } else {
                                    screen.note("this console speaks raw TCP: it cannot carry a BREAK");
                                }
                            }
                            Action::Echo(b) => screen.echo(&b),
                            Action::Command(word) => {
                                if word.eq_ignore_ascii_case("help") {
                                    screen.line(POWER_HELP);
                                    continue;
                                }
                                let Some(verb) = Verb::from_word(&word) else {
                                    screen.note(&format!("unknown command `{word}`; ~$help lists them"));
                                    continue;
                                };
                                match &opts.power {
                                    Err(why) => screen.note(why),
                                    Ok(_) if power_busy => screen.note("a power request is already running"),
                                    Ok(route) => {
                                        power_busy = true;
                                        screen.note(&format!("{}: {} via {}…", route.board, verb.word(), route.client.describe()));
                                        let route = route.clone();
                                        let tx = power_tx.clone();
                                        let name = opts.client_name.clone();
                                        tokio::spawn(async move {
                                            let outcome = power::run(&route, verb, &format!("lava-console {name}")).await;
                                            let _ = tx.send(outcome).await;
                                        });
                                    }
                                }
                            }
                        }
                    }
                    if quit {
                        break End::Quit;
                    }
                }
            },
            () = sleep_until_opt(linger_until) => break End::InputDone,
            Some(outcome) = power_rx.recv() => {
                power_busy = false;
                screen.note(&outcome.line);
            }
            _ = hup.recv() => break End::Signal(Signal::SIGHUP as i32),
            _ = term_sig.recv() => break End::Signal(Signal::SIGTERM as i32),
            _ = int.recv() => break End::Signal(Signal::SIGINT as i32),
        }
    };
    let _ = screen.flush_held();
    if !opts.quiet && interactive {
        let why = match end {
            End::Quit => "detached".to_owned(),
            End::PeerClosed => format!("connection to {endpoint} closed"),
            End::Signal(_) => "stopped by a signal".to_owned(),
            _ => "detached".to_owned(),
        };
        screen.note(&format!("{}: {why}", target.label));
    } else if end == End::PeerClosed {
        screen.note(&format!(
            "{}: {endpoint} closed the connection",
            target.label
        ));
    }
    Ok(end)
}

/// Why the greeting did not end in a welcome.
enum Greeting {
    Refused(String),
    Closed,
    Io(std::io::Error),
    /// Not lava-serial: the bytes read so far are the console's output.
    NotLavaSerial(Vec<u8>),
}

/// Reads lava-serial's answer to the hello, and the scrollback that follows when only its last
/// lines were asked for. Returns the welcome and the board bytes to show first.
async fn greet(
    rd: &mut OwnedReadHalf,
    wr: &mut OwnedWriteHalf,
    wire: &mut Wire,
    replay: Option<Replay>,
) -> Result<(Welcome, Vec<u8>), Greeting> {
    let mut pending = Vec::new();
    let deadline = Instant::now() + HELLO_TIMEOUT;
    let mut buf = vec![0u8; 16 * 1024];
    let tag = hello::TAG.as_bytes();
    let (welcome, mut rest) = loop {
        if let Some(nl) = pending.iter().position(|&b| b == b'\n') {
            let line = String::from_utf8_lossy(&pending[..nl]).into_owned();
            match hello::parse_answer(&line) {
                Ok(w) => break (w, pending.split_off(nl + 1)),
                Err(AnswerError::Refused(r)) => return Err(Greeting::Refused(r)),
                Err(AnswerError::NotLavaSerial) => return Err(Greeting::NotLavaSerial(pending)),
            }
        }
        let k = pending.len().min(tag.len());
        if pending[..k] != tag[..k] || pending.len() > HELLO_MAX {
            return Err(Greeting::NotLavaSerial(pending));
        }
        if !read_more(rd, wr, wire, &mut buf, deadline, &mut pending).await? {
            return Err(Greeting::NotLavaSerial(pending));
        }
    };
    if let Some(Replay::Lines(n)) = replay {
        while rest.len() < welcome.replay {
            if !read_more(rd, wr, wire, &mut buf, deadline, &mut rest).await? {
                break;
            }
        }
        let cut = welcome.replay.min(rest.len());
        let live = rest.split_off(cut);
        let mut shown = hello::last_lines(&rest, n).to_vec();
        shown.extend_from_slice(&live);
        rest = shown;
    }
    Ok((welcome, rest))
}

/// One read during the greeting, decoded into `into`; `false` when the deadline passed.
async fn read_more(
    rd: &mut OwnedReadHalf,
    wr: &mut OwnedWriteHalf,
    wire: &mut Wire,
    buf: &mut [u8],
    deadline: Instant,
    into: &mut Vec<u8>,
) -> Result<bool, Greeting> {
    let n = match tokio::time::timeout_at(deadline, rd.read(buf)).await {
        Err(_) => return Ok(false),
        Ok(Err(e)) => return Err(Greeting::Io(e)),
        Ok(Ok(0)) => return Err(Greeting::Closed),
        Ok(Ok(n)) => n,
    };
    let mut reply = Vec::new();
    wire.decode(&buf[..n], into, &mut reply);
    if !reply.is_empty() {
        wr.write_all(&reply).await.map_err(Greeting::Io)?;
    }
    Ok(true)
}

/// The one-line banner: board, where, who else is attached.
fn banner(
    target: &Target,
    welcome: Option<&Welcome>,
    opts: &SessionOptions,
    interactive: bool,
) -> String {
    let mut s = format!("{} on {}", target.label, target.endpoint());
    if let Some(d) = target.board.as_ref().and_then(|b| b.description.as_deref()) {
        s.push_str(&format!(" ({d})"));
    }
    match welcome {
        Some(w) => {
            s.push_str(&format!("; {}", w.others()));
            if !w.adapter_present {
                s.push_str("; ADAPTER GONE (unplugged?), waiting for it");
            }
        }
        None if target.lava_serial => {}
        None => s.push_str(&format!("; {} console, not lava-serial", target.protocol)),
    }
    if opts.spy {
        s.push_str("; read-only");
    }
    if interactive {
        match opts.escape {
            Some(e) => {
                let e = display_escape(e);
                s.push_str(&format!("; {e}. quits, {e}? for help"));
            }
            None => s.push_str("; no escapes: end with a signal"),
        }
    }
    s
}

/// Reads stdin on a thread of its own (a blocking read is the only portable way on a terminal,
/// and a thread does not hold the process up at exit).
fn spawn_stdin(tx: mpsc::Sender<Vec<u8>>) {
    let spawned = std::thread::Builder::new()
        .name("stdin".into())
        .spawn(move || {
            use std::io::Read;
            let mut stdin = std::io::stdin().lock();
            let mut buf = [0u8; 4096];
            loop {
                match stdin.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        if tx.blocking_send(buf[..n].to_vec()).is_err() {
                            break;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(_) => break,
                }
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the stdin reader");
    }
}

async fn sleep_until_opt(when: Option<Instant>) {
    match when {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}
