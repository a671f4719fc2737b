//! Where a board's console is: a registry name or alias, or a `HOST:PORT` typed directly, turned
//! into the TCP endpoint to dial, how it speaks, and whether lava-serial serves it.

use std::path::{Path, PathBuf};

use lava_common::{Board, ConfigError, Protocol, Registry};

/// A console to attach to.
#[derive(Debug, Clone)]
pub struct Target {
    /// What to call it in messages: the board's name, or the endpoint typed.
    pub label: String,
    /// The registry entry, when there is one (power, description).
    pub board: Option<Board>,
    /// Host name or address to dial.
    pub host: String,
    pub port: u16,
    pub protocol: Protocol,
    /// Served by lava-serial: speak the hello line (spy, replay, who is attached).
    pub lava_serial: bool,
}

impl Target {
    /// `host:port` as typed or configured (IPv6 in brackets).
    pub fn endpoint(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Why a board could not be found.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error("no board named `{name}` in {}{}", path.display(), did_you_mean(suggestions))]
    Unknown {
        name: String,
        path: PathBuf,
        suggestions: Vec<String>,
    },
    #[error(
        "board `{0}` has no console (neither a lava-serial port nor `console = \"host:port\"`)"
    )]
    NoConsole(String),
    #[error("board `{name}`: `{endpoint}` is not host:port")]
    BadEndpoint { name: String, endpoint: String },
    #[error(transparent)]
    Registry(#[from] ConfigError),
}

fn did_you_mean(s: &[String]) -> String {
    match s {
        [] => " (`lava-console --list` shows every board)".to_owned(),
        [one] => format!("; did you mean `{one}`?"),
        many => format!(
            "; did you mean one of: {}?",
            many.iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Splits `host:port` (`[v6]:port` too).
pub fn split_endpoint(text: &str) -> Option<(String, u16)> {
    let (host, port) = text.rsplit_once(':')?;
    let port: u16 = port.parse().ok().filter(|p| *p > 0)?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty() || host.contains(char::is_whitespace) {
        return None;
    }
    Some((host.to_owned(), port))
}

/// The target of a registry board.
pub fn for_board(board: &Board) -> Result<Target, LookupError> {
    if let Some(console) = &board.console {
        let (host, port) = split_endpoint(console).ok_or_else(|| LookupError::BadEndpoint {
            name: board.name.clone(),
            endpoint: console.clone(),
        })?;
        return Ok(Target {
            label: board.name.clone(),
            board: Some(board.clone()),
            host,
            port,
            protocol: board.protocol,
            lava_serial: false,
        });
    }
    let port = board
        .port
        .ok_or_else(|| LookupError::NoConsole(board.name.clone()))?;
    let host = if board.is_on_host(&lava_common::registry::this_host()) {
        // lava-serial listens on its bind address only; wildcard binds answer on loopback.
        match board.bind.as_str() {
            "0.0.0.0" | "" => "127.0.0.1".to_owned(),
            "::" => "::1".to_owned(),
            b => b.to_owned(),
        }
    } else {
        board.host.clone().unwrap_or_else(|| "localhost".to_owned())
    };
    Ok(Target {
        label: board.name.clone(),
        board: Some(board.clone()),
        host,
        port,
        protocol: board.protocol,
        lava_serial: true,
    })
}

/// Loads the registry, or explains which file and why.
pub fn load_registry(path: &Path) -> Result<Registry, LookupError> {
    Ok(Registry::load(path)?)
}

/// Finds what `name` means: a board or alias of the registry, else a `HOST:PORT`.
///
/// A `HOST:PORT` that is some board's endpoint is that board; any other is taken as a lava-serial
/// port unless `plain` says it is something else (a terminal server: no hello line sent). `None`
/// as the registry (it could not be loaded) still lets a `HOST:PORT` through.
pub fn resolve(
    registry: Option<&Registry>,
    registry_path: &Path,
    name: &str,
    plain: bool,
    protocol: Option<Protocol>,
) -> Result<Target, LookupError> {
    let adjust = |mut t: Target| {
        if let Some(p) = protocol {
            t.protocol = p;
        }
        if plain {
            t.lava_serial = false;
        }
        t
    };
    if let Some(board) = registry.and_then(|r| r.board(name)) {
        return for_board(board).map(adjust);
    }
    if let Some((host, port)) = split_endpoint(name) {
        let hit = registry.and_then(|reg| {
            reg.boards().find(|b| {
                b.console_endpoint()
                    .and_then(|e| split_endpoint(&e))
                    .is_some_and(|(h, p)| {
                        p == port && (h == host || lava_common::registry::same_host(&h, &host))
                    })
            })
        });
        if let Some(board) = hit {
            let mut t = for_board(board)?;
            t.host = host;
            return Ok(adjust(t));
        }
        return Ok(adjust(Target {
            label: name.to_owned(),
            board: None,
            host,
            port,
            protocol: Protocol::Telnet,
            lava_serial: true,
        }));
    }
    Err(LookupError::Unknown {
        name: name.to_owned(),
        path: registry_path.to_owned(),
        suggestions: registry.map(|r| r.suggest(name)).unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use lava_common::Source;

    const REG: &str = r#"
[boards.panda01]
port = 7001
adapter = { serial = "A" }
aliases = ["panda-1"]
power = { pdu = "magic-hack", outlet = "3" }

[boards.juno01]
console = "ts01.lab:7010"
protocol = "raw"

[boards.far01]
host = "worker99.example"
port = 7002
adapter = { serial = "B" }
"#;

    fn reg() -> Registry {
        Registry::parse(&Source::from_text("boards.toml", REG)).expect("valid")
    }

    fn find(name: &str) -> Result<Target, LookupError> {
        let r = reg();
        resolve(Some(&r), Path::new("boards.toml"), name, false, None)
    }

    #[test]
    fn by_name_and_alias() {
        let t = find("panda-1").expect("alias");
        assert_eq!(t.label, "panda01");
        assert_eq!((t.host.as_str(), t.port), ("127.0.0.1", 7001));
        assert!(t.lava_serial);
        let j = find("juno01").expect("terminal server");
        assert_eq!(j.endpoint(), "ts01.lab:7010");
        assert!(!j.lava_serial);
        assert_eq!(j.protocol, Protocol::Raw);
        let f = find("far01").expect("remote");
        assert_eq!(f.endpoint(), "worker99.example:7002");
    }

    #[test]
    fn unknown_suggests() {
        let e = find("pand01").expect_err("unknown").to_string();
        assert!(e.contains("did you mean one of: `panda01`"), "{e}");
        let e = find("zzzzzzzzzzz").expect_err("unknown").to_string();
        assert!(e.contains("--list"), "{e}");
    }

    #[test]
    fn direct_endpoints() {
        let t = find("localhost:9999").expect("direct");
        assert!(t.board.is_none());
        assert!(t.lava_serial);
        let t = find("[::1]:9999").expect("v6");
        assert_eq!(t.endpoint(), "[::1]:9999");
        let t = find("ts01.lab:7010").expect("a board's endpoint");
        assert_eq!(t.label, "juno01");
        assert!(split_endpoint("x:0").is_none());
        assert!(split_endpoint(":80").is_none());
    }
}
