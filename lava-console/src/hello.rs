//! What lava-console says to lava-serial and reads back (docs/protocols.md §1): the hello line,
//! its `OK` answer, and the in-band `[lava-serial: ...]` notices, which a scripted (non-tty)
//! session moves from stdout to stderr so stdout carries only the board's bytes.

/// The protocol tag of every hello and answer line.
pub const TAG: &str = "LAVA-SERIAL/1";

/// How much scrollback to ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replay {
    /// The last N lines of the scrollback.
    Lines(usize),
    /// The whole scrollback.
    All,
}

impl std::str::FromStr for Replay {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "all" {
            return Ok(Replay::All);
        }
        s.parse::<usize>()
            .map(Replay::Lines)
            .map_err(|_| format!("`{s}` is not a number of lines; give e.g. `50`, or `all`"))
    }
}

/// The hello line: first bytes on the connection.
pub fn hello_line(readonly: bool, replay: Option<Replay>, client: &str) -> String {
    let mut line = TAG.to_owned();
    if readonly {
        line.push_str(" readonly");
    }
    match replay {
        // lava-serial replays bytes; lines are cut from the whole scrollback on this side.
        Some(Replay::Lines(0)) | None => {}
        Some(_) => line.push_str(" replay=all"),
    }
    let name: String = client
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(64)
        .collect();
    if !name.is_empty() {
        line.push_str(" client=");
        line.push_str(&name);
    }
    line.push_str("\r\n");
    line
}

/// One other client of the board, from the `who=` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub name: String,
    pub writer: bool,
}

/// lava-serial's answer to a hello.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Welcome {
    pub board: String,
    /// Other clients attached (this one excluded).
    pub clients: usize,
    /// Other read-write clients.
    pub writers: usize,
    /// `false` when lava-serial says the adapter is unplugged.
    pub adapter_present: bool,
    /// Number of scrollback bytes that follow the answer.
    pub replay: usize,
    pub who: Vec<Peer>,
}

/// The answer line could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    /// lava-serial refused the hello.
    #[error("lava-serial refused the connection: {0}")]
    Refused(String),
    /// The line is not a lava-serial answer at all: the port is something else.
    #[error("not a lava-serial answer")]
    NotLavaSerial,
}

/// Parses the answer line (without its line end).
pub fn parse_answer(line: &str) -> Result<Welcome, AnswerError> {
    let line = line.trim_end_matches(['\r', '\n']);
    let rest = line
        .strip_prefix(TAG)
        .and_then(|r| r.strip_prefix(' '))
        .ok_or(AnswerError::NotLavaSerial)?;
    if let Some(reason) = rest.strip_prefix("ERR") {
        return Err(AnswerError::Refused(reason.trim().to_owned()));
    }
    let fields = rest.strip_prefix("OK").ok_or(AnswerError::NotLavaSerial)?;
    let mut w = Welcome {
        adapter_present: true,
        ..Welcome::default()
    };
    for field in fields.split_whitespace() {
        let Some((k, v)) = field.split_once('=') else {
            continue;
        };
        match k {
            "board" => w.board = v.to_owned(),
            "clients" => w.clients = v.parse().unwrap_or(0),
            "writers" => w.writers = v.parse().unwrap_or(0),
            "adapter" => w.adapter_present = v != "gone",
            "replay" => w.replay = v.parse().unwrap_or(0),
            "who" => {
                w.who = v
                    .split(',')
                    .filter(|p| !p.is_empty())
                    .map(|p| {
                        // `name:rw` / `name:ro`; a bare name is taken as a writer.
                        let (name, writer) = match p.rsplit_once(':') {
                            Some((name, "rw")) => (name, true),
                            Some((name, "ro")) => (name, false),
                            _ => (p, true),
                        };
                        Peer {
                            name: name.to_owned(),
                            writer,
                        }
                    })
                    .collect()
            }
            _ => {}
        }
    }
    Ok(w)
}

impl Welcome {
    /// Who else is attached, for the banner: `2 others: alice@laptop (rw), 10.0.0.5:4242 (ro)`.
    pub fn others(&self) -> String {
        if self.clients == 0 && self.who.is_empty() {
            return "nobody else attached".to_owned();
        }
        let n = self.clients.max(self.who.len());
        let list: Vec<String> = self
            .who
            .iter()
            .map(|p| format!("{} ({})", p.name, if p.writer { "rw" } else { "ro" }))
            .collect();
        let noun = if n == 1 { "other" } else { "others" };
        if list.is_empty() {
            format!("{n} {noun} attached")
        } else {
            format!("{n} {noun} attached: {}", list.join(", "))
        }
    }
}

/// The last `n` lines of `bytes` (a line ends with `\n`; an unfinished last line counts).
pub fn last_lines(bytes: &[u8], n: usize) -> &[u8] {
    if n == 0 {
        return &bytes[bytes.len()..];
    }
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    let mut seen = 0;
    for (i, &b) in body.iter().enumerate().rev() {
        if b == b'\n' {
            seen += 1;
            if seen == n {
                return &bytes[i + 1..];
            }
        }
    }
    bytes
}

const NOTICE_START: &[u8] = b"\r\n[lava-serial: ";
/// A notice longer than this is not a notice: give the bytes back to the board's stream.
const NOTICE_MAX: usize = 512;

/// Moves lava-serial's notices out of the board's byte stream. Streaming: a notice may arrive
/// split over any number of reads.
#[derive(Debug, Default)]
pub struct NoticeFilter {
    held: Vec<u8>,
    in_notice: bool,
}

impl NoticeFilter {
    /// Feeds bytes from lava-serial; the board's bytes go to `data`, whole notices (the text
    /// between the brackets, brackets included) to `notices`.
    pub fn feed(&mut self, input: &[u8], data: &mut Vec<u8>, notices: &mut Vec<String>) {
        for &b in input {
            if self.in_notice {
                self.held.push(b);
                if self.held.ends_with(b"]\r\n") {
                    let text = &self.held[2..self.held.len() - 2];
                    notices.push(String::from_utf8_lossy(text).into_owned());
                    self.held.clear();
                    self.in_notice = false;
                } else if self.held.len() > NOTICE_MAX {
                    data.append(&mut self.held);
                    self.in_notice = false;
                }
                continue;
            }
            if NOTICE_START.get(self.held.len()) == Some(&b) {
                self.held.push(b);
                if self.held.len() == NOTICE_START.len() {
                    self.in_notice = true;
                }
                continue;
            }
            // Mismatch: what was held is board data; `\r` only starts the pattern, so the byte
            // itself may begin a new match.
            data.append(&mut self.held);
            if b == NOTICE_START[0] {
                self.held.push(b);
            } else {
                data.push(b);
            }
        }
    }

    /// Gives back whatever is held (at the end of the session).
    pub fn flush(&mut self, data: &mut Vec<u8>) {
        data.append(&mut self.held);
        self.in_notice = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_lines() {
        assert_eq!(
            hello_line(false, None, "alice@laptop"),
            "LAVA-SERIAL/1 client=alice@laptop\r\n"
        );
        assert_eq!(
            hello_line(true, Some(Replay::Lines(20)), "a b"),
            "LAVA-SERIAL/1 readonly replay=all client=ab\r\n"
        );
        assert_eq!(
            hello_line(false, Some(Replay::All), ""),
            "LAVA-SERIAL/1 replay=all\r\n"
        );
    }

    #[test]
    fn answer_parsing() {
        let w = parse_answer("LAVA-SERIAL/1 OK board=panda01 clients=3 writers=2 adapter=present replay=1234 who=alice@laptop:rw,127.0.0.1:51234:rw,bob:ro\r\n")
            .expect("ok");
        assert_eq!(w.board, "panda01");
        assert_eq!((w.clients, w.writers, w.replay), (3, 2, 1234));
        assert!(w.adapter_present);
        assert_eq!(w.who.len(), 3);
        assert_eq!(w.who[1].name, "127.0.0.1:51234");
        assert!(!w.who[2].writer);
        assert!(w
            .others()
            .starts_with("3 others attached: alice@laptop (rw)"));
        let gone =
            parse_answer("LAVA-SERIAL/1 OK board=x clients=0 writers=0 adapter=gone replay=0 who=")
                .expect("ok");
        assert!(!gone.adapter_present);
        assert_eq!(gone.others(), "nobody else attached");
        assert_eq!(
            parse_answer("LAVA-SERIAL/1 ERR bad option `x`"),
            Err(AnswerError::Refused("bad option `x`".into()))
        );
        assert_eq!(
            parse_answer("U-Boot 2024.01"),
            Err(AnswerError::NotLavaSerial)
        );
    }

    #[test]
    fn replay_parse_and_trim() {
        assert_eq!("all".parse(), Ok(Replay::All));
        assert_eq!("12".parse(), Ok(Replay::Lines(12)));
        assert!("x".parse::<Replay>().is_err());
        let text = b"one\r\ntwo\r\nthree\r\n";
        assert_eq!(last_lines(text, 2), b"two\r\nthree\r\n");
        assert_eq!(last_lines(text, 5), text);
        assert_eq!(last_lines(b"a\nb\nprompt# ", 1), b"prompt# ");
        assert_eq!(last_lines(text, 0), b"");
    }

    fn filter(chunks: &[&[u8]]) -> (Vec<u8>, Vec<String>) {
        let mut f = NoticeFilter::default();
        let (mut data, mut notices) = (Vec::new(), Vec::new());
        for c in chunks {
            f.feed(c, &mut data, &mut notices);
        }
        f.flush(&mut data);
        (data, notices)
    }

    #[test]
    fn notices_are_moved_out() {
        let stream = b"boot\r\n\r\n[lava-serial: panda01 adapter gone]\r\nlogin: ";
        for split in 0..stream.len() {
            let (a, b) = stream.split_at(split);
            let (data, notices) = filter(&[a, b]);
            assert_eq!(data, b"boot\r\nlogin: ", "split at {split}");
            assert_eq!(notices, vec!["[lava-serial: panda01 adapter gone]"]);
        }
    }

    #[test]
    fn lookalikes_stay_data() {
        let all: Vec<u8> = (0..=255u8).collect();
        assert_eq!(filter(&[&all]).0, all);
        let (d, n) = filter(&[b"\r\r\n[lava-x]\r\n\r\n[lava-serial"]);
        assert_eq!(d, b"\r\r\n[lava-x]\r\n\r\n[lava-serial");
        assert!(n.is_empty());
        let long: Vec<u8> = b"\r\n[lava-serial: "
            .iter()
            .copied()
            .chain(std::iter::repeat_n(b'x', 600))
            .collect();
        assert_eq!(filter(&[&long]).0, long);
    }
}
