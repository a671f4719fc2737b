//! The hello line a client may send first (`LAVA-SERIAL/1 [readonly] [replay=N|replay=all]
//! [client=NAME]`) and the server's answer, as docs/protocols.md §1 defines them. Pure text: the
//! client task decides when a hello is present, this module only reads and writes the lines.

/// The protocol tag every hello and answer starts with.
pub const TAG: &str = "LAVA-SERIAL/1";
/// A hello longer than this is refused (it is one short line).
pub const MAX_LEN: usize = 512;

/// How much scrollback a client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replay {
    /// The last N bytes (capped by the board's scrollback).
    Last(usize),
    /// The whole scrollback.
    All,
}

/// What a client asked for in its hello.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hello {
    pub readonly: bool,
    pub replay: Option<Replay>,
    pub client: Option<String>,
}

/// Whether `data` could still become a hello line (it is a prefix of the tag, or starts with it).
pub fn may_be_hello(data: &[u8]) -> bool {
    let tag = TAG.as_bytes();
    let n = data.len().min(tag.len());
    data[..n] == tag[..n]
}

/// Parses one hello line (without its line ending).
pub fn parse(line: &str) -> Result<Hello, String> {
    let mut words = line.split_ascii_whitespace();
    match words.next() {
        Some(TAG) => {}
        Some(other) => {
            return Err(format!(
                "unsupported protocol `{other}`; this server speaks {TAG}"
            ))
        }
        None => return Err("empty hello".to_owned()),
    }
    let mut hello = Hello::default();
    for w in words {
        if w == "readonly" {
            hello.readonly = true;
        } else if let Some(v) = w.strip_prefix("replay=") {
            hello.replay = Some(if v == "all" {
                Replay::All
            } else {
                Replay::Last(v.parse().map_err(|_| {
                    format!("bad replay `{v}`; write replay=N (bytes) or replay=all")
                })?)
            });
        } else if let Some(v) = w.strip_prefix("client=") {
            if v.is_empty() || v.bytes().any(|b| b.is_ascii_control() || b == b',') {
                return Err(format!("bad client name `{v}`"));
            }
            hello.client = Some(v.to_owned());
        } else {
            return Err(format!("unknown hello word `{w}`"));
        }
    }
    Ok(hello)
}

/// One other client as the answer's `who=` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Who {
    pub name: String,
    pub writer: bool,
}

/// The `LAVA-SERIAL/1 OK ...` answer line, with its `\r\n`.
pub fn ok_line(board: &str, others: &[Who], adapter_present: bool, replay: usize) -> String {
    let writers = others.iter().filter(|w| w.writer).count();
    let who: Vec<String> = others
        .iter()
        .map(|w| format!("{}:{}", w.name, if w.writer { "rw" } else { "ro" }))
        .collect();
    format!(
        "{TAG} OK board={board} clients={} writers={writers} adapter={} replay={replay} who={}\r\n",
        others.len(),
        if adapter_present { "present" } else { "gone" },
        who.join(",")
    )
}

/// The `LAVA-SERIAL/1 ERR reason` answer line, with its `\r\n`.
pub fn err_line(reason: &str) -> String {
    let reason: String = reason.chars().filter(|c| !c.is_control()).collect();
    format!("{TAG} ERR {reason}\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_word() {
        assert_eq!(parse("LAVA-SERIAL/1"), Ok(Hello::default()));
        assert_eq!(
            parse("LAVA-SERIAL/1 readonly replay=1234 client=alice@laptop"),
            Ok(Hello {
                readonly: true,
                replay: Some(Replay::Last(1234)),
                client: Some("alice@laptop".into())
            })
        );
        assert_eq!(
            parse("LAVA-SERIAL/1 replay=all").map(|h| h.replay),
            Ok(Some(Replay::All))
        );
        assert!(parse("LAVA-SERIAL/1 replay=lots").is_err());
        assert!(parse("LAVA-SERIAL/1 bogus").is_err());
        assert!(parse("LAVA-SERIAL/2").is_err());
    }

    #[test]
    fn prefix_detection() {
        assert!(may_be_hello(b"LAVA"));
        assert!(may_be_hello(b"LAVA-SERIAL/1 readonly"));
        assert!(!may_be_hello(b"ls\r"));
        assert!(!may_be_hello(b"LAVX"));
    }

    #[test]
    fn answer_line() {
        let others = [
            Who {
                name: "alice@laptop".into(),
                writer: true,
            },
            Who {
                name: "127.0.0.1:51234".into(),
                writer: false,
            },
        ];
        assert_eq!(
            ok_line("panda01", &others, true, 12),
            "LAVA-SERIAL/1 OK board=panda01 clients=2 writers=1 adapter=present replay=12 who=alice@laptop:rw,127.0.0.1:51234:ro\r\n"
        );
        assert_eq!(err_line("bad\r\nthing"), "LAVA-SERIAL/1 ERR badthing\r\n");
    }
}
