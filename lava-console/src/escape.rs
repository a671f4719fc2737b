//! The escape sequences a person types at the console (`~.`, `~$hardreset`, `~B`, `~?`, `~~`): a
//! pure state machine over the bytes read from the keyboard, so every rule is unit-tested without a
//! terminal. Escapes are recognised only at the start of an input line, as ssh and conmux do, so
//! a `~` inside a command line reaches the board untouched.

/// What the session must do with a piece of keyboard input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Bytes for the board.
    Send(Vec<u8>),
    /// `~.`: leave the session.
    Quit,
    /// `~?`: show the escape help.
    Help,
    /// `~B`: send a BREAK; the next key goes to the board as typed (sysrq).
    Break,
    /// `~$WORD⏎`: run a power command (`hardreset`, `on`, `off`, `status`, `help`).
    Command(String),
    /// Bytes to show locally (the command being typed after `~$`), not sent anywhere.
    Echo(Vec<u8>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of a line: the escape character starts an escape.
    LineStart,
    /// Inside a line: everything goes to the board until Enter.
    Normal,
    /// The escape character was typed at line start; waiting for the command letter.
    Escape,
    /// Typing the word of a `~$` command.
    Word,
}

/// Longest `~$` command word kept; a person never types more, a stuck key is cut off.
const MAX_WORD: usize = 64;

/// The keyboard-side escape recogniser of one session.
#[derive(Debug, Clone)]
pub struct Escaper {
    escape: Option<u8>,
    state: State,
    word: Vec<u8>,
}

impl Escaper {
    /// A recogniser for this escape character; `None` turns escapes off (binary-clean input).
    pub fn new(escape: Option<u8>) -> Escaper {
        Escaper {
            escape,
            state: State::LineStart,
            word: Vec::new(),
        }
    }

    /// Feeds keyboard bytes, appending what to do, in order, to `out`. Consecutive board bytes
    /// are merged into one `Send`.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<Action>) {
        let Some(esc) = self.escape else {
            if !input.is_empty() {
                push_send(out, input);
            }
            return;
        };
        for &b in input {
            match self.state {
                State::LineStart if b == esc => self.state = State::Escape,
                State::LineStart | State::Normal => {
                    push_send(out, &[b]);
                    self.state = after(b);
                }
                State::Escape => self.escape_key(esc, b, out),
                State::Word => self.word_key(b, out),
            }
        }
    }

    /// The key after the escape character at line start.
    fn escape_key(&mut self, esc: u8, b: u8, out: &mut Vec<Action>) {
        self.state = match b {
            b'.' => {
                out.push(Action::Quit);
                State::LineStart
            }
            b'?' => {
                out.push(Action::Help);
                State::LineStart
            }
            b'B' | b'b' => {
                out.push(Action::Break);
                // The key after a BREAK is the sysrq key: it goes to the board as is.
                State::Normal
            }
            b'$' => {
                self.word.clear();
                out.push(Action::Echo(vec![esc, b'$']));
                State::Word
            }
            _ if b == esc => {
                push_send(out, &[esc]);
                State::Normal
            }
            _ => {
                // Not an escape after all: both keys go to the board, as ssh does.
                push_send(out, &[esc, b]);
                after(b)
            }
        };
    }

    /// A key while typing the word of a `~$` command.
    fn word_key(&mut self, b: u8, out: &mut Vec<Action>) {
        match b {
            b'\r' | b'\n' => {
                let word = String::from_utf8_lossy(&self.word).trim().to_owned();
                self.word.clear();
                out.push(Action::Echo(b"\r\n".to_vec()));
                if !word.is_empty() {
                    out.push(Action::Command(word));
                }
                self.state = State::LineStart;
            }
            // Backspace / DEL: rub out one character.
            0x7f | 0x08 if !self.word.is_empty() => {
                self.word.pop();
                out.push(Action::Echo(b"\x08 \x08".to_vec()));
            }
            // ^C, ^U, ESC: abandon the command.
            0x03 | 0x15 | 0x1b => {
                self.word.clear();
                out.push(Action::Echo(b" [cancelled]\r\n".to_vec()));
                self.state = State::LineStart;
            }
            _ if (0x20..0x7f).contains(&b) && self.word.len() < MAX_WORD => {
                self.word.push(b);
                out.push(Action::Echo(vec![b]));
            }
            _ => {}
        }
    }
}

/// The state after sending a byte to the board: Enter (or a line kill) starts a new line.
fn after(b: u8) -> State {
    match b {
        b'\r' | b'\n' | 0x03 | 0x04 | 0x15 => State::LineStart,
        _ => State::Normal,
    }
}

fn push_send(out: &mut Vec<Action>, bytes: &[u8]) {
    if let Some(Action::Send(v)) = out.last_mut() {
        v.extend_from_slice(bytes);
    } else {
        out.push(Action::Send(bytes.to_vec()));
    }
}

/// Parses the `-e` argument: one character, `^X` for a control character, or `none`.
pub fn parse_escape(text: &str) -> Result<Option<u8>, String> {
    let bytes = text.as_bytes();
    match bytes {
        b"none" => Ok(None),
        [c] if c.is_ascii() => Ok(Some(*c)),
        [b'^', c] if c.is_ascii_alphabetic() || b"[\\]^_@".contains(c) => {
            Ok(Some(c.to_ascii_uppercase() & 0x1f))
        }
        _ => Err(format!(
            "`{text}` is not an escape character; give one character (`~`), `^]` for a control character, or `none`"
        )),
    }
}

/// How the escape character is written for a person (`~`, `^]`).
pub fn display_escape(c: u8) -> String {
    if c < 0x20 {
        format!("^{}", (c | 0x40) as char)
    } else {
        (c as char).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(esc: Option<u8>, chunks: &[&[u8]]) -> Vec<Action> {
        let mut e = Escaper::new(esc);
        let mut out = Vec::new();
        for c in chunks {
            e.feed(c, &mut out);
        }
        out
    }

    fn send(b: &[u8]) -> Action {
        Action::Send(b.to_vec())
    }

    #[test]
    fn plain_text_passes() {
        assert_eq!(run(Some(b'~'), &[b"ls -l\r"]), vec![send(b"ls -l\r")]);
    }

    #[test]
    fn quit_at_line_start_only() {
        assert_eq!(run(Some(b'~'), &[b"~."]), vec![Action::Quit]);
        assert_eq!(
            run(Some(b'~'), &[b"a~."]),
            vec![send(b"a~.")],
            "mid-line tilde is data"
        );
        assert_eq!(
            run(Some(b'~'), &[b"echo\r~."]),
            vec![send(b"echo\r"), Action::Quit]
        );
        assert_eq!(
            run(Some(b'~'), &[b"x\n", b"~", b"."]),
            vec![send(b"x\n"), Action::Quit]
        );
    }

    #[test]
    fn double_escape_is_literal() {
        assert_eq!(run(Some(b'~'), &[b"~~."]), vec![send(b"~.")]);
    }

    #[test]
    fn unknown_escape_sends_both() {
        assert_eq!(
            run(Some(b'~'), &[b"~x\r~."]),
            vec![send(b"~x\r"), Action::Quit]
        );
    }

    #[test]
    fn break_then_sysrq_key_goes_through() {
        assert_eq!(
            run(Some(b'~'), &[b"~B~"]),
            vec![Action::Break, send(b"~")],
            "the key after BREAK is data, even the escape character"
        );
        assert_eq!(run(Some(b'~'), &[b"~bh"]), vec![Action::Break, send(b"h")]);
    }

    #[test]
    fn help() {
        assert_eq!(run(Some(b'~'), &[b"~?"]), vec![Action::Help]);
    }

    #[test]
    fn power_command_word() {
        let out = run(Some(b'~'), &[b"~$hard", b"rx\x7fe", b"set\r"]);
        let cmd: Vec<_> = out
            .iter()
            .filter(|a| !matches!(a, Action::Echo(_)))
            .cloned()
            .collect();
        assert_eq!(cmd, vec![Action::Command("hardreset".into())]);
        assert!(out.iter().all(|a| !matches!(a, Action::Send(_))));
        // After the command we are at line start again.
        let out = run(Some(b'~'), &[b"~$on\r~."]);
        assert_eq!(out.last(), Some(&Action::Quit));
    }

    #[test]
    fn power_command_cancel() {
        let out = run(Some(b'~'), &[b"~$hardre\x03ls\r"]);
        assert!(!out.iter().any(|a| matches!(a, Action::Command(_))));
        assert_eq!(out.last(), Some(&send(b"ls\r")));
    }

    #[test]
    fn empty_command_does_nothing() {
        let out = run(Some(b'~'), &[b"~$\r"]);
        assert!(!out
            .iter()
            .any(|a| matches!(a, Action::Command(_) | Action::Send(_))));
    }

    #[test]
    fn escapes_off_is_binary_clean() {
        let all: Vec<u8> = (0..=255u8).chain(b"\r~.\n~.".iter().copied()).collect();
        assert_eq!(run(None, &[&all]), vec![send(&all)]);
    }

    #[test]
    fn other_escape_char() {
        let ctrl = parse_escape("^]").expect("valid");
        assert_eq!(ctrl, Some(0x1d));
        assert_eq!(display_escape(0x1d), "^]");
        assert_eq!(
            run(ctrl, &[b"~.\r\x1d."]),
            vec![send(b"~.\r"), Action::Quit]
        );
        assert_eq!(parse_escape("none"), Ok(None));
        assert_eq!(parse_escape("&"), Ok(Some(b'&')));
        assert!(parse_escape("ab").is_err());
    }

    #[test]
    fn ctrl_c_starts_a_line() {
        assert_eq!(
            run(Some(b'~'), &[b"sleep 10\x03~."]),
            vec![send(b"sleep 10\x03"), Action::Quit]
        );
    }
}
