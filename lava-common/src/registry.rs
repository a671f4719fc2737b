//! The lab registry, `/etc/lava/boards.toml`: which boards exist, where their consoles are, which
//! adapter is which board, and which PDU outlet powers each. Loaded and validated here once for every
//! component, with errors that name file, line and key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::config::{ConfigError, Source};
use crate::serial::{FlowControl, Format, Protocol, SerialSettings};

/// Where the registry lives unless `--boards` or `LAVA_BOARDS` say otherwise.
pub const DEFAULT_PATH: &str = "/etc/lava/boards.toml";
/// The environment variable that points at another registry.
pub const ENV_VAR: &str = "LAVA_BOARDS";
/// Default scrollback kept per board, in KiB.
pub const DEFAULT_SCROLLBACK_KIB: usize = 64;
/// Default console log size before rotation, in MiB.
pub const DEFAULT_LOG_SIZE_MIB: u64 = 16;
/// Default number of rotated console logs kept.
pub const DEFAULT_LOG_KEEP: usize = 5;

/// The registry file to use: the explicit one, else `$LAVA_BOARDS`, else `/etc/lava/boards.toml`.
pub fn resolve_path(explicit: Option<&Path>) -> PathBuf {
    if let Some(p) = explicit {
        return p.to_owned();
    }
    match std::env::var_os(ENV_VAR) {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => PathBuf::from(DEFAULT_PATH),
    }
}

/// This machine's host name (short form), or `$LAVA_HOSTNAME` when set (tests, containers).
pub fn this_host() -> String {
    if let Some(h) = std::env::var_os("LAVA_HOSTNAME").filter(|h| !h.is_empty()) {
        return h.to_string_lossy().into_owned();
    }
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "localhost".to_owned())
}

/// How a USB serial adapter is recognised, whatever ttyUSBn it gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Adapter {
    /// udev `ID_SERIAL` or `ID_SERIAL_SHORT`, and for multi-port chips `ID_USB_INTERFACE_NUM`.
    Serial {
        serial: String,
        interface: Option<u8>,
    },
    /// udev `ID_PATH`: the USB port it is plugged into, for adapters without a serial number.
    Path { path: String, interface: Option<u8> },
}

/// The udev properties of one tty device, as udev passes them to `IMPORT{program}` or as read
/// from the udev database.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AdapterProps {
    pub id_serial: Option<String>,
    pub id_serial_short: Option<String>,
    /// `ID_USB_INTERFACE_NUM`, two hex digits as udev writes it ("00", "02").
    pub interface_num: Option<String>,
    pub id_path: Option<String>,
}

impl AdapterProps {
    /// Reads the properties from the process environment (how udev's `IMPORT{program}` passes them).
    pub fn from_env() -> AdapterProps {
        let get = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        AdapterProps {
            id_serial: get("ID_SERIAL"),
            id_serial_short: get("ID_SERIAL_SHORT"),
            interface_num: get("ID_USB_INTERFACE_NUM"),
            id_path: get("ID_PATH"),
        }
    }

    fn interface(&self) -> Option<u8> {
        self.interface_num
            .as_deref()
            .and_then(|n| u8::from_str_radix(n.trim(), 16).ok())
    }
}

impl Adapter {
    /// Whether a device with these udev properties is this adapter.
    pub fn matches(&self, props: &AdapterProps) -> bool {
        let iface_ok = |want: &Option<u8>| match want {
            None => true,
            Some(n) => props.interface() == Some(*n),
        };
        match self {
            Adapter::Serial { serial, interface } => {
                let hit = props.id_serial.as_deref() == Some(serial.as_str())
                    || props.id_serial_short.as_deref() == Some(serial.as_str());
                hit && iface_ok(interface)
            }
            Adapter::Path { path, interface } => {
                props.id_path.as_deref() == Some(path.as_str()) && iface_ok(interface)
            }
        }
    }
}

impl std::fmt::Display for Adapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Adapter::Serial { serial, interface } => {
                write!(f, "serial={serial}")?;
                if let Some(i) = interface {
                    write!(f, " interface={i}")?;
                }
                Ok(())
            }
            Adapter::Path { path, interface } => {
                write!(f, "path={path}")?;
                if let Some(i) = interface {
                    write!(f, " interface={i}")?;
                }
                Ok(())
            }
        }
    }
}

/// The PDU outlet that powers a board.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Power {
    /// The lava-power instance name (`/etc/lava-power/<pdu>.toml`).
    pub pdu: String,
    pub outlet: String,
    /// The host whose lava-power serves this PDU; `None`: the board's host.
    pub host: Option<String>,
}

/// One board, with every default applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Board {
    pub name: String,
    /// The host its adapter is plugged into; `None`: whichever host reads the registry.
    pub host: Option<String>,
    /// Its console's TCP port on that host (boards served by lava-serial).
    pub port: Option<u16>,
    pub adapter: Option<Adapter>,
    /// `host:port` of a console already on the network (terminal server).
    pub console: Option<String>,
    pub power: Option<Power>,
    pub aliases: Vec<String>,
    pub description: Option<String>,
    pub serial: SerialSettings,
    pub protocol: Protocol,
    /// lava-serial's listen address.
    pub bind: String,
    pub log_dir: PathBuf,
    pub scrollback_kib: usize,
    pub log_size_mib: u64,
    pub log_keep: usize,
    /// The line of the registry where the board is defined.
    pub line: usize,
}

impl Board {
    /// Whether the board's adapter is plugged into `host` (this machine when its host is unset).
    pub fn is_on_host(&self, host: &str) -> bool {
        match &self.host {
            None => true,
            Some(h) => same_host(h, host),
        }
    }

    /// The console's network endpoint `host:port`, as a client elsewhere reaches it.
    pub fn console_endpoint(&self) -> Option<String> {
        if let Some(c) = &self.console {
            return Some(c.clone());
        }
        let port = self.port?;
        let host = match &self.host {
            Some(h) => h.clone(),
            None => "localhost".to_owned(),
        };
        Some(format!("{host}:{port}"))
    }

    /// The console log file of this board.
    pub fn log_file(&self) -> PathBuf {
        self.log_dir.join(format!("{}.log", self.name))
    }
}

/// Whether two host names name the same machine (short names and `localhost` accepted).
pub fn same_host(a: &str, b: &str) -> bool {
    let short = |h: &str| h.split('.').next().unwrap_or(h).to_ascii_lowercase();
    let local = |h: &str| matches!(h, "localhost" | "127.0.0.1" | "::1");
    if local(a) && local(b) {
        return true;
    }
    if local(a) || local(b) {
        let this = short(&this_host());
        let other = if local(a) { b } else { a };
        return short(other) == this;
    }
    a.eq_ignore_ascii_case(b) || short(a) == short(b)
}

/// The validated registry.
#[derive(Debug, Clone)]
pub struct Registry {
    pub path: PathBuf,
    boards: BTreeMap<String, Board>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    defaults: Option<Spanned<RawBoard>>,
    #[serde(default)]
    boards: BTreeMap<String, Spanned<RawBoard>>,
}

/// One `[boards.X]` table or the `[defaults]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBoard {
    host: Option<String>,
    port: Option<Spanned<i64>>,
    adapter: Option<Spanned<RawAdapter>>,
    console: Option<Spanned<String>>,
    power: Option<Spanned<RawPower>>,
    aliases: Option<Vec<Spanned<String>>>,
    description: Option<String>,
    baud: Option<Spanned<i64>>,
    format: Option<Spanned<String>>,
    flow: Option<Spanned<String>>,
    protocol: Option<Protocol>,
    bind: Option<String>,
    log_dir: Option<PathBuf>,
    scrollback_kib: Option<Spanned<i64>>,
    log_size_mib: Option<Spanned<i64>>,
    log_keep: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAdapter {
    serial: Option<String>,
    path: Option<String>,
    interface: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPower {
    pdu: String,
    outlet: OutletName,
    host: Option<String>,
}

/// An outlet written as a string (`"3"`, `"A1"`) or a number (`3`).
#[derive(Debug)]
struct OutletName(String);

impl<'de> Deserialize<'de> for OutletName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = OutletName;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an outlet name or number")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<OutletName, E> {
                Ok(OutletName(v.to_owned()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<OutletName, E> {
                Ok(OutletName(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// Whether a name can be used for a board, alias or PDU: it appears in unit names and paths.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && !name.starts_with('.')
        && !name.starts_with('-')
}

impl Registry {
    /// Loads and validates a registry file.
    pub fn load(path: &Path) -> Result<Registry, ConfigError> {
        Registry::parse(&Source::read(path)?)
    }

    /// Validates a registry from its text.
    pub fn parse(src: &Source) -> Result<Registry, ConfigError> {
        let raw: RawFile = src.parse()?;
        let defaults = match &raw.defaults {
            Some(d) => {
                check_defaults(src, d)?;
                d.get_ref()
            }
            None => &RawBoard::default(),
        };
        let mut boards = BTreeMap::new();
        for (name, spanned) in &raw.boards {
            let board = resolve_board(src, name, spanned, defaults)?;
            boards.insert(name.clone(), board);
        }
        let reg = Registry {
            path: src.path.clone(),
            boards,
        };
        reg.check_unique(src, &raw)?;
        Ok(reg)
    }

    /// Every board, by name.
    pub fn boards(&self) -> impl Iterator<Item = &Board> {
        self.boards.values()
    }

    /// The board with this name or alias.
    pub fn board(&self, name: &str) -> Option<&Board> {
        self.boards.get(name).or_else(|| {
            self.boards
                .values()
                .find(|b| b.aliases.iter().any(|a| a == name))
        })
    }

    /// The names (and aliases) closest to a mistyped one, best first, at most three.
    pub fn suggest(&self, name: &str) -> Vec<String> {
        let mut scored: Vec<(usize, String)> = self
            .boards
            .values()
            .flat_map(|b| std::iter::once(&b.name).chain(b.aliases.iter()))
            .map(|n| {
                (
                    edit_distance(&name.to_lowercase(), &n.to_lowercase()),
                    n.clone(),
                )
            })
            .filter(|(d, n)| *d <= (n.len().max(name.len()) / 2).max(2) || n.contains(name))
            .collect();
        scored.sort();
        scored.into_iter().take(3).map(|(_, n)| n).collect()
    }

    /// The board of this host whose adapter has these udev properties.
    pub fn board_for_adapter(&self, props: &AdapterProps, host: &str) -> Option<&Board> {
        self.boards
            .values()
            .find(|b| b.is_on_host(host) && b.adapter.as_ref().is_some_and(|a| a.matches(props)))
    }

    fn check_unique(&self, src: &Source, raw: &RawFile) -> Result<(), ConfigError> {
        let list: Vec<&Board> = self.boards.values().collect();
        for (i, a) in list.iter().enumerate() {
            for b in &list[..i] {
                let same_host = match (&a.host, &b.host) {
                    (Some(x), Some(y)) => same_host(x, y),
                    _ => true,
                };
                if let (Some(pa), Some(pb)) = (a.port, b.port) {
                    if pa == pb && same_host {
                        let span = raw.boards[&a.name]
                            .get_ref()
                            .port
                            .as_ref()
                            .map(Spanned::span);
                        return Err(src.invalid(
                            span,
                            format!("boards.{}.port", a.name),
                            format!(
                                "port {pa} is already used by board `{}` (line {}) on the same host",
                                b.name, b.line
                            ),
                            Some("give every board of a host its own port".to_owned()),
                        ));
                    }
                }
                if let (Some(x), Some(y)) = (&a.adapter, &b.adapter) {
                    if x == y && same_host {
                        let span = raw.boards[&a.name]
                            .get_ref()
                            .adapter
                            .as_ref()
                            .map(Spanned::span);
                        return Err(src.invalid(
                            span,
                            format!("boards.{}.adapter", a.name),
                            format!(
                                "adapter {x} is already board `{}` (line {}) on the same host",
                                b.name, b.line
                            ),
                            Some("an adapter serves one board; add `interface = N` for multi-port chips".to_owned()),
                        ));
                    }
                }
            }
        }
        let mut names: BTreeMap<&str, &str> = self
            .boards
            .keys()
            .map(|k| (k.as_str(), k.as_str()))
            .collect();
        for b in self.boards.values() {
            let raw_aliases = raw.boards[&b.name]
                .get_ref()
                .aliases
                .as_deref()
                .unwrap_or(&[]);
            for alias in raw_aliases {
                if let Some(owner) = names.insert(alias.get_ref(), &b.name) {
                    return Err(src.invalid(
                        Some(alias.span()),
                        format!("boards.{}.aliases", b.name),
                        format!(
                            "alias `{}` is already the name or an alias of board `{owner}`",
                            alias.get_ref()
                        ),
                        Some("choose an alias that no other board uses".to_owned()),
                    ));
                }
            }
        }
        Ok(())
    }
}

const BOARD_ONLY: &[&str] = &[
    "port",
    "adapter",
    "console",
    "power",
    "aliases",
    "description",
];

fn check_defaults(src: &Source, d: &Spanned<RawBoard>) -> Result<(), ConfigError> {
    let r = d.get_ref();
    let set = [
        r.port.is_some(),
        r.adapter.is_some(),
        r.console.is_some(),
        r.power.is_some(),
        r.aliases.is_some(),
        r.description.is_some(),
    ];
    if let Some(i) = set.iter().position(|s| *s) {
        return Err(src.invalid(
            Some(d.span()),
            format!("defaults.{}", BOARD_ONLY[i]),
            format!(
                "`{}` belongs to one board, not to [defaults]",
                BOARD_ONLY[i]
            ),
            Some("move it into a [boards.NAME] table".to_owned()),
        ));
    }
    Ok(())
}

fn resolve_board(
    src: &Source,
    name: &str,
    spanned: &Spanned<RawBoard>,
    d: &RawBoard,
) -> Result<Board, ConfigError> {
    let r = spanned.get_ref();
    let line = board_line(src, name).unwrap_or_else(|| src.line_of(spanned.span().start));
    let key = |k: &str| format!("boards.{name}.{k}");
    let at_line = |k: &str, msg: String, hint: &str| ConfigError::Invalid {
        path: src.path.clone(),
        line,
        key: if k.is_empty() {
            format!("boards.{name}")
        } else {
            key(k)
        },
        message: msg,
        hint: Some(hint.to_owned()),
    };
    if !valid_name(name) {
        return Err(at_line(
            "",
            format!("`{name}` is not a usable board name"),
            "use letters, digits, `-`, `_` and `.` (it becomes a unit and file name)",
        ));
    }
    let int_in = |v: &Option<Spanned<i64>>,
                  dv: &Option<Spanned<i64>>,
                  k: &str,
                  lo: i64,
                  hi: i64|
     -> Result<Option<i64>, ConfigError> {
        match v.as_ref().or(dv.as_ref()) {
            None => Ok(None),
            Some(s) if (lo..=hi).contains(s.get_ref()) => Ok(Some(*s.get_ref())),
            Some(s) => {
                let where_ = if v.is_some() {
                    key(k)
                } else {
                    format!("defaults.{k}")
                };
                Err(src.invalid(
                    Some(s.span()),
                    where_,
                    format!("{} is out of range", s.get_ref()),
                    Some(format!("use a value from {lo} to {hi}")),
                ))
            }
        }
    };
    let port = match &r.port {
        None => None,
        Some(p) if (1..=65535).contains(p.get_ref()) => Some(*p.get_ref() as u16),
        Some(p) => {
            return Err(src.invalid(
                Some(p.span()),
                key("port"),
                format!("{} is not a TCP port", p.get_ref()),
                Some("use a port from 1 to 65535, unique on its host".to_owned()),
            ))
        }
    };
    let adapter = match &r.adapter {
        None => None,
        Some(a) => Some(resolve_adapter(src, name, a)?),
    };
    let console = match &r.console {
        None => None,
        Some(c) => {
            let text = c.get_ref();
            let ok = text
                .rsplit_once(':')
                .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
            if !ok {
                return Err(src.invalid(
                    Some(c.span()),
                    key("console"),
                    format!("`{text}` is not a network console"),
                    Some("write it as \"host:port\", e.g. \"ts01.lab:7010\"".to_owned()),
                ));
            }
            Some(text.clone())
        }
    };
    match (&adapter, &console) {
        (None, None) => {
            return Err(at_line(
                "",
                "board has neither `adapter` nor `console`".to_owned(),
                "add `adapter = { serial = \"...\" }` for a USB adapter served by lava-serial, or `console = \"host:port\"` for a terminal server",
            ))
        }
        (Some(_), Some(_)) => {
            return Err(at_line(
                "console",
                "board has both `adapter` and `console`".to_owned(),
                "keep `adapter` when lava-serial serves it, `console` when a terminal server does",
            ))
        }
        (Some(_), None) if port.is_none() => {
            return Err(at_line(
                "port",
                "board with an adapter has no `port`".to_owned(),
                "add `port = N`: the TCP port lava-serial serves its console on",
            ))
        }
        _ => {}
    }
    let power = match &r.power {
        None => None,
        Some(p) => {
            let raw = p.get_ref();
            if !valid_name(&raw.pdu) {
                return Err(src.invalid(
                    Some(p.span()),
                    key("power.pdu"),
                    format!("`{}` is not a usable PDU name", raw.pdu),
                    Some("name the lava-power instance: /etc/lava-power/<pdu>.toml".to_owned()),
                ));
            }
            if raw.outlet.0.trim().is_empty() {
                return Err(src.invalid(
                    Some(p.span()),
                    key("power.outlet"),
                    "the outlet is empty".to_owned(),
                    Some("name the outlet, e.g. `outlet = \"3\"`".to_owned()),
                ));
            }
            Some(Power {
                pdu: raw.pdu.clone(),
                outlet: raw.outlet.0.trim().to_owned(),
                host: raw.host.clone(),
            })
        }
    };
    let mut aliases = Vec::new();
    for a in r.aliases.as_deref().unwrap_or(&[]) {
        if !valid_name(a.get_ref()) {
            return Err(src.invalid(
                Some(a.span()),
                key("aliases"),
                format!("`{}` is not a usable alias", a.get_ref()),
                Some("use letters, digits, `-`, `_` and `.`".to_owned()),
            ));
        }
        aliases.push(a.get_ref().clone());
    }
    let baud = int_in(&r.baud, &d.baud, "baud", 50, 16_000_000)?.unwrap_or(115_200) as u32;
    let format = match r.format.as_ref().or(d.format.as_ref()) {
        None => Format::default(),
        Some(f) => f.get_ref().parse::<Format>().map_err(|m| {
            let k = if r.format.is_some() {
                key("format")
            } else {
                "defaults.format".into()
            };
            src.invalid(Some(f.span()), k, m, None)
        })?,
    };
    let flow = match r.flow.as_ref().or(d.flow.as_ref()) {
        None => FlowControl::None,
        Some(f) => f.get_ref().parse::<FlowControl>().map_err(|m| {
            let k = if r.flow.is_some() {
                key("flow")
            } else {
                "defaults.flow".into()
            };
            src.invalid(Some(f.span()), k, m, None)
        })?,
    };
    let scrollback_kib = int_in(
        &r.scrollback_kib,
        &d.scrollback_kib,
        "scrollback_kib",
        0,
        65_536,
    )?
    .map_or(DEFAULT_SCROLLBACK_KIB, |v| v as usize);
    let log_size_mib = int_in(&r.log_size_mib, &d.log_size_mib, "log_size_mib", 1, 1 << 20)?
        .map_or(DEFAULT_LOG_SIZE_MIB, |v| v as u64);
    let log_keep = int_in(&r.log_keep, &d.log_keep, "log_keep", 0, 1000)?
        .map_or(DEFAULT_LOG_KEEP, |v| v as usize);
    Ok(Board {
        name: name.to_owned(),
        host: r.host.clone().or_else(|| d.host.clone()),
        port,
        adapter,
        console,
        power,
        aliases,
        description: r.description.clone(),
        serial: SerialSettings { baud, format, flow },
        protocol: r.protocol.or(d.protocol).unwrap_or_default(),
        bind: r
            .bind
            .clone()
            .or_else(|| d.bind.clone())
            .unwrap_or_else(|| "127.0.0.1".to_owned()),
        log_dir: r
            .log_dir
            .clone()
            .or_else(|| d.log_dir.clone())
            .unwrap_or_else(|| PathBuf::from("/var/log/lava-serial")),
        scrollback_kib,
        log_size_mib,
        log_keep,
        line,
    })
}

fn resolve_adapter(
    src: &Source,
    name: &str,
    a: &Spanned<RawAdapter>,
) -> Result<Adapter, ConfigError> {
    let raw = a.get_ref();
    let key = format!("boards.{name}.adapter");
    let interface = match raw.interface {
        None => None,
        Some(i) if (0..=255).contains(&i) => Some(i as u8),
        Some(i) => {
            return Err(src.invalid(
                Some(a.span()),
                format!("{key}.interface"),
                format!("{i} is not a USB interface number"),
                Some("use the port's ID_USB_INTERFACE_NUM, e.g. 0 to 3 on an FT4232".to_owned()),
            ))
        }
    };
    match (&raw.serial, &raw.path) {
        (Some(s), None) if !s.trim().is_empty() => Ok(Adapter::Serial {
            serial: s.trim().to_owned(),
            interface,
        }),
        (None, Some(p)) if !p.trim().is_empty() => Ok(Adapter::Path {
            path: p.trim().to_owned(),
            interface,
        }),
        (Some(_), Some(_)) => Err(src.invalid(
            Some(a.span()),
            key,
            "adapter has both `serial` and `path`".to_owned(),
            Some("use `serial` when the adapter has a serial number, `path` otherwise".to_owned()),
        )),
        _ => Err(src.invalid(
            Some(a.span()),
            key,
            "adapter names neither a `serial` nor a `path`".to_owned(),
            Some("write `adapter = { serial = \"<udev ID_SERIAL>\" }`; `lava-serial adapters` lists what is plugged in".to_owned()),
        )),
    }
}

/// The line of the `[boards.NAME]` header, when the board is written as a table.
fn board_line(src: &Source, name: &str) -> Option<usize> {
    src.text
        .lines()
        .position(|l| {
            let t: String = l
                .chars()
                .filter(|c| !c.is_whitespace() && *c != '"')
                .collect();
            t == format!("[boards.{name}]")
        })
        .map(|i| i + 1)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[defaults]
baud = 115200
protocol = "telnet"
bind = "127.0.0.1"
log_dir = "/var/log/lava-serial"

[boards.panda01]
host = "worker01"
port = 7001
adapter = { serial = "FTDI_FT232R_USB_UART_A601EGHT" }
power = { pdu = "magic-hack", outlet = "3" }
aliases = ["panda-1"]
description = "PandaBoard ES, rack 2"

[boards.juno01]
console = "ts01.lab:7010"
power = { pdu = "apc-rack1", outlet = 5 }

[boards.quad02]
port = 7002
format = "7E1"
adapter = { path = "pci-0000:00:14.0-usb-0:2:1.0", interface = 2 }
"#;

    fn load(text: &str) -> Result<Registry, ConfigError> {
        Registry::parse(&Source::from_text("boards.toml", text))
    }

    #[test]
    fn design_example_loads() {
        let r = load(GOOD).expect("valid registry");
        let p = r.board("panda-1").expect("alias resolves");
        assert_eq!(p.name, "panda01");
        assert_eq!(p.port, Some(7001));
        assert_eq!(p.serial.baud, 115_200);
        assert_eq!(p.line, 8);
        assert_eq!(p.console_endpoint().as_deref(), Some("worker01:7001"));
        let j = r.board("juno01").expect("juno");
        assert_eq!(j.power.as_ref().map(|p| p.outlet.as_str()), Some("5"));
        assert_eq!(j.console_endpoint().as_deref(), Some("ts01.lab:7010"));
        let q = r.board("quad02").expect("quad");
        assert_eq!(q.serial.format.to_string(), "7E1");
        assert_eq!(q.scrollback_kib, 64);
    }

    #[test]
    fn adapter_matching() {
        let r = load(GOOD).expect("valid");
        let props = AdapterProps {
            id_serial_short: Some("FTDI_FT232R_USB_UART_A601EGHT".into()),
            ..Default::default()
        };
        assert_eq!(
            r.board_for_adapter(&props, "worker01")
                .map(|b| b.name.as_str()),
            Some("panda01")
        );
        assert!(r.board_for_adapter(&props, "worker02").is_none());
        let quad = AdapterProps {
            id_path: Some("pci-0000:00:14.0-usb-0:2:1.0".into()),
            interface_num: Some("02".into()),
            ..Default::default()
        };
        assert_eq!(
            r.board_for_adapter(&quad, "any").map(|b| b.name.as_str()),
            Some("quad02")
        );
        let other_iface = AdapterProps {
            interface_num: Some("01".into()),
            ..quad
        };
        assert!(r.board_for_adapter(&other_iface, "any").is_none());
    }

    fn err(text: &str) -> ConfigError {
        load(text).expect_err("must be rejected")
    }

    #[test]
    fn unknown_key_is_located() {
        let e = err("[boards.a]\nport = 7001\nadapter = { serial = \"x\" }\nbaudrate = 9600\n");
        assert_eq!((e.line(), e.key()), (4, "boards.a.baudrate"));
        assert!(e.to_string().contains("unknown field"), "{e}");
    }

    #[test]
    fn duplicate_port_is_located() {
        let e = err("[boards.a]\nport = 7001\nadapter = { serial = \"x\" }\n\n[boards.b]\nport = 7001\nadapter = { serial = \"y\" }\n");
        assert_eq!((e.line(), e.key()), (6, "boards.b.port"));
        assert!(e.to_string().contains("already used by board `a`"), "{e}");
    }

    #[test]
    fn same_port_on_other_hosts_is_fine() {
        load("[boards.a]\nhost=\"w1\"\nport = 7001\nadapter = { serial = \"x\" }\n[boards.b]\nhost=\"w2\"\nport = 7001\nadapter = { serial = \"y\" }\n")
            .expect("ports are per host");
    }

    #[test]
    fn board_without_console_is_located() {
        let e = err("[boards.a]\nport = 7001\n\n[boards.b]\ndescription = \"x\"\n");
        assert_eq!(e.line(), 1);
        assert_eq!(e.key(), "boards.a");
        assert!(
            e.to_string().contains("neither `adapter` nor `console`"),
            "{e}"
        );
    }

    #[test]
    fn power_without_outlet_is_located() {
        let e = err("[boards.a]\nconsole = \"ts:1\"\npower = { pdu = \"p\" }\n");
        assert_eq!(e.line(), 3);
        assert!(e.key().starts_with("boards.a.power"), "{}", e.key());
        assert!(e.to_string().contains("outlet"), "{e}");
    }

    #[test]
    fn bad_values_are_located() {
        let e = err("[boards.a]\nport = 99999\nadapter = { serial = \"x\" }\n");
        assert_eq!((e.line(), e.key()), (2, "boards.a.port"));
        let e = err("[boards.a]\nport = 1\nformat = \"8Q1\"\nadapter = { serial = \"x\" }\n");
        assert_eq!((e.line(), e.key()), (3, "boards.a.format"));
        let e = err("[boards.a]\nport = 1\nprotocol = \"ssh\"\nadapter = { serial = \"x\" }\n");
        assert_eq!(e.line(), 3);
        let e = err("[defaults]\nport = 1\n");
        assert_eq!(e.key(), "defaults.port");
        let e = err("[boards.a]\nport = 1\nadapter = { serial = \"x\", serail = \"y\" }\n");
        assert_eq!((e.line(), e.key()), (3, "boards.a.adapter.serail"));
    }

    #[test]
    fn alias_clash() {
        let e = err(
            "[boards.a]\nconsole = \"t:1\"\n[boards.b]\nconsole = \"t:2\"\naliases = [\"a\"]\n",
        );
        assert_eq!((e.line(), e.key()), (5, "boards.b.aliases"));
    }

    #[test]
    fn suggestions() {
        let r = load(GOOD).expect("valid");
        assert_eq!(
            r.suggest("pand01").first().map(String::as_str),
            Some("panda01")
        );
        assert!(r.suggest("zzzzzzzzzz").is_empty());
    }
}
