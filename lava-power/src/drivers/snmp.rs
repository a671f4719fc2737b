//! The `snmp` driver (and `apc-snmp`, the same with the `apc` preset): switches an outlet with one
//! SNMP v1/v2c SET of an INTEGER and reads it back with a GET, over UDP. The BER encoding of the few
//! message shapes this needs is written here, sans-IO, so the wire format is tested on its own.

use std::net::SocketAddr;
use std::ops::Range;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use lava_common::{ConfigError, Source};
use tokio::net::UdpSocket;
use toml::Spanned;

use crate::config::Loaded;
use crate::driver::{DriverError, DriverFuture, OutletState, PowerDriver};

crate::pdu_keys! {
    /// The `snmp` / `apc-snmp` keys as written.
    struct Raw {
        host: Option<Spanned<String>>,
        port: Option<Spanned<i64>>,
        version: Option<Spanned<String>>,
        community: Option<Spanned<String>>,
        read_community: Option<Spanned<String>>,
        write_community: Option<Spanned<String>>,
        preset: Option<Spanned<String>>,
        oid: Option<Spanned<String>>,
        on_oid: Option<Spanned<String>>,
        off_oid: Option<Spanned<String>>,
        on_value: Option<Spanned<i64>>,
        off_value: Option<Spanned<i64>>,
        state_oid: Option<Spanned<String>>,
        state_on_value: Option<Spanned<i64>>,
        state_off_value: Option<Spanned<i64>>,
    }
}

/// A PDU family's OIDs and values, so a config only names the preset.
#[derive(Debug, Clone, Copy)]
pub struct Preset {
    pub name: &'static str,
    /// What the preset covers (shown in errors and docs).
    pub models: &'static str,
    pub on_oid: &'static str,
    pub on_value: i64,
    pub off_oid: &'static str,
    pub off_value: i64,
    pub state_oid: &'static str,
    pub state_on: i64,
    pub state_off: i64,
}

/// The built-in presets; OIDs are templates with `{outlet}`.
pub const PRESETS: &[Preset] = &[
    // PowerNet-MIB sPDUOutletCtl: immediateOn(1) immediateOff(2) immediateReboot(3); read: outletOn(1)
    // outletOff(2).
    Preset {
        name: "apc",
        models: "APC MasterSwitch / Switched Rack PDU AP79xx, AP78xx, AP92xx (PowerNet-MIB sPDUOutletCtl)",
        on_oid: "1.3.6.1.4.1.318.1.1.4.4.2.1.3.{outlet}",
        on_value: 1,
        off_oid: "1.3.6.1.4.1.318.1.1.4.4.2.1.3.{outlet}",
        off_value: 2,
        state_oid: "1.3.6.1.4.1.318.1.1.4.4.2.1.3.{outlet}",
        state_on: 1,
        state_off: 2,
    },
    // PowerNet-MIB rPDUOutletControlOutletCommand immediateOn(1) immediateOff(2);
    // rPDUOutletStatusOutletState outletStatusOn(1) outletStatusOff(2).
    Preset {
        name: "apc-rpdu",
        models: "APC Switched Rack PDU AP79xx/AP89xx with AOS rPDU tables (PowerNet-MIB rPDUOutletControl)",
        on_oid: "1.3.6.1.4.1.318.1.1.12.3.3.1.1.4.{outlet}",
        on_value: 1,
        off_oid: "1.3.6.1.4.1.318.1.1.12.3.3.1.1.4.{outlet}",
        off_value: 2,
        state_oid: "1.3.6.1.4.1.318.1.1.12.3.5.1.1.4.{outlet}",
        state_on: 1,
        state_off: 2,
    },
    // PDU2-MIB switchingOperation (pdu 1): off(0) on(1) cycle(2); outletSwitchingState: on(7) off(8).
    Preset {
        name: "raritan",
        models: "Raritan PX2/PX3 (PDU2-MIB switchingOperation / outletSwitchingState, PDU 1)",
        on_oid: "1.3.6.1.4.1.13742.6.4.1.2.1.2.1.{outlet}",
        on_value: 1,
        off_oid: "1.3.6.1.4.1.13742.6.4.1.2.1.2.1.{outlet}",
        off_value: 0,
        state_oid: "1.3.6.1.4.1.13742.6.4.1.2.1.3.1.{outlet}",
        state_on: 7,
        state_off: 8,
    },
    // EATON-EPDU-MIB outletControlOnCmd / outletControlOffCmd (unit 0): 0 = now;
    // outletControlStatus: off(0) on(1).
    Preset {
        name: "eaton",
        models: "Eaton G2/G3 switched ePDU (EATON-EPDU-MIB outletControlOnCmd/OffCmd, unit 0)",
        on_oid: "1.3.6.1.4.1.534.6.6.7.6.6.1.4.0.{outlet}",
        on_value: 0,
        off_oid: "1.3.6.1.4.1.534.6.6.7.6.6.1.3.0.{outlet}",
        off_value: 0,
        state_oid: "1.3.6.1.4.1.534.6.6.7.6.6.1.2.0.{outlet}",
        state_on: 1,
        state_off: 0,
    },
    // Sentry3-MIB outletControlAction (tower 1, infeed 1): on(1) off(2) reboot(3);
    // outletStatus: off(0) on(1).
    Preset {
        name: "sentry",
        models: "Server Technology Sentry CDU/Switched PDU, 3rd gen (Sentry3-MIB outletControlAction, tower A infeed A)",
        on_oid: "1.3.6.1.4.1.1718.3.2.3.1.11.1.1.{outlet}",
        on_value: 1,
        off_oid: "1.3.6.1.4.1.1718.3.2.3.1.11.1.1.{outlet}",
        off_value: 2,
        state_oid: "1.3.6.1.4.1.1718.3.2.3.1.5.1.1.{outlet}",
        state_on: 1,
        state_off: 0,
    },
];

/// SNMP protocol version on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V2c,
}

impl Version {
    fn wire(self) -> i64 {
        match self {
            Version::V1 => 0,
            Version::V2c => 1,
        }
    }
}

/// The `snmp` driver: one agent, one OID template per action.
#[derive(Debug)]
pub struct SnmpDriver {
    kind: &'static str,
    host: String,
    port: u16,
    version: Version,
    read_community: Vec<u8>,
    write_community: Vec<u8>,
    on: (Template, i64),
    off: (Template, i64),
    state: Option<(Template, i64, i64)>,
    /// A request unanswered this long is sent once more (UDP may drop it).
    resend_after: Duration,
    next_id: AtomicI32,
}

/// An OID with `{outlet}` in it, checked at load.
#[derive(Debug, Clone)]
struct Template(String);

impl Template {
    fn render(&self, outlet: u32) -> Result<Vec<u32>, DriverError> {
        let text = self.0.replace("{outlet}", &outlet.to_string());
        parse_oid(&text).map_err(DriverError::Refused)
    }
}

/// Reads the `snmp` / `apc-snmp` keys.
pub fn load(src: &Source) -> Result<Loaded, ConfigError> {
    let raw: Raw = src.parse()?;
    let common = raw.common(src)?;
    let kind: &'static str = if raw.driver == "apc-snmp" {
        "apc-snmp"
    } else {
        "snmp"
    };

    let host = required(
        src,
        &raw.host,
        "host",
        "the PDU's address, e.g. host = \"pdu01.lab\"",
    )?;
    let port = match &raw.port {
        Some(p) => u16::try_from(*p.get_ref())
            .ok()
            .filter(|&p| p > 0)
            .ok_or_else(|| {
                src.invalid(
                    Some(p.span()),
                    "port",
                    format!("{} is not a UDP port", p.get_ref()),
                    Some("use 1..65535 (SNMP agents listen on 161)".into()),
                )
            })?,
        None => 161,
    };
    let version = match raw
        .version
        .as_ref()
        .map(|v| (v.get_ref().as_str(), v.span()))
    {
        None | Some(("1", _)) => Version::V1,
        Some(("2c", _)) | Some(("2", _)) => Version::V2c,
        Some(("3", span)) => {
            return Err(src.invalid(
                Some(span),
                "version",
                "SNMPv3 (USM) is not supported by this driver yet",
                Some("use version = \"1\" or \"2c\" and a write community".into()),
            ))
        }
        Some((other, span)) => {
            return Err(src.invalid(
                Some(span),
                "version",
                format!("unknown SNMP version `{other}`"),
                Some("use \"1\" or \"2c\"".into()),
            ))
        }
    };
    let community = raw.community.as_ref().map(|c| c.get_ref().clone());
    let read_community = raw
        .read_community
        .as_ref()
        .map(|c| c.get_ref().clone())
        .or_else(|| community.clone())
        .unwrap_or_else(|| "public".to_owned());
    let write_community = raw
        .write_community
        .as_ref()
        .map(|c| c.get_ref().clone())
        .or(community)
        .unwrap_or_else(|| "private".to_owned());

    let preset_name = match &raw.preset {
        Some(p) => Some((p.get_ref().as_str(), Some(p.span()))),
        None if kind == "apc-snmp" => Some(("apc", None)),
        None => None,
    };
    let preset = match preset_name {
        Some((name, span)) => Some(*PRESETS.iter().find(|p| p.name == name).ok_or_else(|| {
            let names: Vec<&str> = PRESETS.iter().map(|p| p.name).collect();
            src.invalid(
                span,
                "preset",
                format!("unknown preset `{name}`"),
                Some(format!(
                    "use one of {}, or give oid/on_value/off_value",
                    names.join(", ")
                )),
            )
        })?),
        None => None,
    };

    let template = |key: &str,
                    v: &Option<Spanned<String>>|
     -> Result<Option<Template>, ConfigError> {
        match v {
            None => Ok(None),
            Some(s) => {
                let t = s.get_ref().trim().trim_start_matches('.').to_owned();
                let probe = t.replace("{outlet}", "1");
                parse_oid(&probe).map_err(|e| {
                    src.invalid(
                        Some(s.span()),
                        key,
                        e,
                        Some("write a numeric OID such as \"1.3.6.1.4.1.318.1.1.4.4.2.1.3.{outlet}\"".into()),
                    )
                })?;
                Ok(Some(Template(t)))
            }
        }
    };
    let oid = template("oid", &raw.oid)?;
    let on_oid = template("on_oid", &raw.on_oid)?
        .or_else(|| oid.clone())
        .or_else(|| preset.map(|p| Template(p.on_oid.to_owned())));
    let off_oid = template("off_oid", &raw.off_oid)?
        .or_else(|| oid.clone())
        .or_else(|| preset.map(|p| Template(p.off_oid.to_owned())));
    let state_oid = template("state_oid", &raw.state_oid)?
        .or_else(|| preset.map(|p| Template(p.state_oid.to_owned())))
        .or_else(|| oid.clone());
    let hint_oid = || {
        Some("add oid = \"…{outlet}\" (or on_oid/off_oid), or preset = \"apc\" / \"apc-rpdu\" / \"raritan\" / \"eaton\" / \"sentry\"".to_owned())
    };
    let Some(on_oid) = on_oid else {
        return Err(src.invalid(None, "oid", "no OID to switch outlets on", hint_oid()));
    };
    let Some(off_oid) = off_oid else {
        return Err(src.invalid(None, "oid", "no OID to switch outlets off", hint_oid()));
    };
    let value = |key: &str, v: &Option<Spanned<i64>>, default: Option<i64>| match v {
        Some(v) => i32::try_from(*v.get_ref()).map(i64::from).map_err(|_| {
            src.invalid(
                Some(v.span()),
                key,
                format!("{} does not fit an SNMP INTEGER", v.get_ref()),
                Some("use a value between -2147483648 and 2147483647".into()),
            )
        }),
        None => default.ok_or_else(|| {
            src.invalid(
                None,
                key,
                format!("missing `{key}`"),
                Some(format!(
                    "add {key} = <integer the PDU expects>, or use a preset"
                )),
            )
        }),
    };
    let on_value = value("on_value", &raw.on_value, preset.map(|p| p.on_value))?;
    let off_value = value("off_value", &raw.off_value, preset.map(|p| p.off_value))?;
    // With a preset's state OID its own values; with the switching OID itself, the values written.
    let own_state = raw.state_oid.is_none() && preset.is_none();
    let state_on = value(
        "state_on_value",
        &raw.state_on_value,
        Some(if own_state {
            on_value
        } else {
            preset.map_or(on_value, |p| p.state_on)
        }),
    )?;
    let state_off = value(
        "state_off_value",
        &raw.state_off_value,
        Some(if own_state {
            off_value
        } else {
            preset.map_or(off_value, |p| p.state_off)
        }),
    )?;
    if state_on == state_off {
        return Err(src.invalid(
            raw.state_on_value.as_ref().map(Spanned::span),
            "state_on_value",
            format!("on and off read back as the same value {state_on}"),
            Some(
                "set state_oid, state_on_value and state_off_value to the PDU's status column"
                    .into(),
            ),
        ));
    }

    check_outlets(src, &raw, common.outlet_count)?;

    let driver = SnmpDriver {
        kind,
        host: host.clone(),
        port,
        version,
        read_community: read_community.into_bytes(),
        write_community: write_community.into_bytes(),
        on: (on_oid, on_value),
        off: (off_oid, off_value),
        state: state_oid.map(|t| (t, state_on, state_off)),
        resend_after: common.timeout / 2,
        next_id: AtomicI32::new(initial_request_id()),
    };
    Ok(Loaded {
        common,
        driver: Arc::new(driver),
    })
}

fn required(
    src: &Source,
    v: &Option<Spanned<String>>,
    key: &str,
    hint: &str,
) -> Result<String, ConfigError> {
    match v {
        Some(s) if !s.get_ref().trim().is_empty() => Ok(s.get_ref().trim().to_owned()),
        Some(s) => Err(src.invalid(Some(s.span()), key, "must not be empty", Some(hint.into()))),
        None => Err(src.invalid(None, key, format!("missing `{key}`"), Some(hint.into()))),
    }
}

/// Outlets named in `[outlets]` must be numbers within `outlet_count`.
fn check_outlets(src: &Source, raw: &Raw, outlet_count: Option<u32>) -> Result<(), ConfigError> {
    let Some(outlets) = &raw.outlets else {
        return Ok(());
    };
    for key in outlets.get_ref().keys() {
        let span = key_span(src, outlets.span(), key);
        let n = outlet_number(key).map_err(|e| {
            src.invalid(
                Some(span.clone()),
                format!("outlets.{key}"),
                e,
                Some("SNMP outlets are numbered 1, 2, 3, …".into()),
            )
        })?;
        if let Some(count) = outlet_count {
            if n > count {
                return Err(src.invalid(
                    Some(span),
                    format!("outlets.{key}"),
                    format!("outlet {n} is beyond outlet_count = {count}"),
                    Some(format!(
                        "use an outlet between 1 and {count}, or raise outlet_count"
                    )),
                ));
            }
        }
    }
    Ok(())
}

/// Where `key` is written inside the `[outlets]` table (for the error's line).
fn key_span(src: &Source, table: Range<usize>, key: &str) -> Range<usize> {
    // The span may cover only the `[outlets]` header: look from it to the next table.
    let text = src.text.get(table.start..).unwrap_or("");
    let quoted = format!("\"{key}\"");
    let mut offset = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let t = line.trim_start();
        if i > 0 && t.starts_with('[') && !table.contains(&(table.start + offset)) {
            break;
        }
        if t.starts_with(&quoted) || t.split('=').next().map(str::trim) == Some(key) {
            let start = table.start + offset + (line.len() - t.len());
            return start..start + 1;
        }
        offset += line.len();
    }
    table
}

/// An outlet as the API gives it ("3") → its number.
fn outlet_number(outlet: &str) -> Result<u32, String> {
    match outlet.trim().parse::<u32>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("outlet `{outlet}` is not a number from 1 up")),
    }
}

fn initial_request_id() -> i32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    ((nanos ^ std::process::id().rotate_left(16)) & 0x3fff_ffff) as i32
}

impl SnmpDriver {
    fn request_id(&self) -> i32 {
        self.next_id.fetch_add(1, Ordering::Relaxed).wrapping_add(1) & 0x3fff_ffff
    }

    /// One request/response exchange: the request is resent once if unanswered, answers with
    /// another request id are ignored, an undecodable datagram is a bad answer.
    async fn exchange(
        &self,
        pdu_tag: u8,
        community: &[u8],
        oid: &[u32],
        value: Option<i64>,
    ) -> Result<VarValue, DriverError> {
        let target = resolve(&self.host, self.port).await?;
        let bind: SocketAddr = if target.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let socket = UdpSocket::bind(bind)
            .await
            .map_err(|e| DriverError::Unreachable(format!("cannot open a UDP socket: {e}")))?;
        socket
            .connect(target)
            .await
            .map_err(|e| DriverError::Unreachable(format!("{target}: {e}")))?;
        let id = self.request_id();
        let request = encode_request(self.version, community, pdu_tag, id, oid, value);
        let mut buf = vec![0u8; 65_536];
        let mut sends = 0;
        loop {
            socket
                .send(&request)
                .await
                .map_err(|e| DriverError::Unreachable(format!("{target}: {e}")))?;
            sends += 1;
            let deadline = tokio::time::sleep(self.resend_after.max(Duration::from_millis(100)));
            tokio::pin!(deadline);
            loop {
                tokio::select! {
                    r = socket.recv(&mut buf) => {
                        let n = r.map_err(|e| recv_error(target, e))?;
                        let response = decode(&buf[..n])
                            .and_then(|m| if m.pdu_tag == TAG_RESPONSE { Ok(m) } else {
                                Err(format!("expected a Response PDU (0xa2), got 0x{:02x}", m.pdu_tag))
                            })
                            .map_err(|e| DriverError::BadAnswer(format!("{target}: {e}")))?;
                        if response.request_id != id {
                            tracing::debug!(pdu_host = %self.host, got = response.request_id, want = id, "ignoring a stray SNMP response");
                            continue;
                        }
                        return check_response(&response, oid);
                    }
                    _ = &mut deadline, if sends < 2 => break,
                }
            }
        }
    }
}

fn recv_error(target: SocketAddr, e: std::io::Error) -> DriverError {
    if e.kind() == std::io::ErrorKind::ConnectionRefused {
        DriverError::Unreachable(format!("{target}: no SNMP agent (port unreachable)"))
    } else {
        DriverError::Unreachable(format!("{target}: {e}"))
    }
}

async fn resolve(host: &str, port: u16) -> Result<SocketAddr, DriverError> {
    let mut addrs = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| DriverError::Unreachable(format!("cannot resolve {host}: {e}")))?;
    addrs
        .next()
        .ok_or_else(|| DriverError::Unreachable(format!("{host} has no address")))
}

fn check_response(response: &Message, oid: &[u32]) -> Result<VarValue, DriverError> {
    if response.error_status != 0 {
        return Err(DriverError::Refused(format!(
            "SNMP error {} (index {})",
            error_status_name(response.error_status),
            response.error_index
        )));
    }
    let Some((got_oid, value)) = response.varbinds.first() else {
        return Err(DriverError::BadAnswer(
            "SNMP response without a variable".into(),
        ));
    };
    if got_oid != oid {
        return Err(DriverError::BadAnswer(format!(
            "SNMP response names {} instead of {}",
            format_oid(got_oid),
            format_oid(oid)
        )));
    }
    match value {
        VarValue::Exception(tag) => Err(DriverError::Refused(format!(
            "{} for {}",
            match tag {
                0x80 => "noSuchObject",
                0x81 => "noSuchInstance",
                _ => "endOfMibView",
            },
            format_oid(oid)
        ))),
        v => Ok(v.clone()),
    }
}

impl PowerDriver for SnmpDriver {
    fn kind(&self) -> &'static str {
        self.kind
    }

    fn set(&self, outlet: &str, state: OutletState) -> DriverFuture<'_, ()> {
        let outlet = outlet.to_owned();
        Box::pin(async move {
            let n = outlet_number(&outlet).map_err(DriverError::Refused)?;
            let (template, value) = match state {
                OutletState::On => &self.on,
                OutletState::Off => &self.off,
            };
            let oid = template.render(n)?;
            tracing::debug!(pdu_host = %self.host, outlet = n, oid = %format_oid(&oid), value, "SNMP SET");
            self.exchange(TAG_SET, &self.write_community, &oid, Some(*value))
                .await
                .map(|_| ())
        })
    }

    fn get(&self, outlet: &str) -> DriverFuture<'_, OutletState> {
        let outlet = outlet.to_owned();
        Box::pin(async move {
            let Some((template, on, off)) = &self.state else {
                return Err(DriverError::CannotRead);
            };
            let n = outlet_number(&outlet).map_err(DriverError::Refused)?;
            let oid = template.render(n)?;
            match self
                .exchange(TAG_GET, &self.read_community, &oid, None)
                .await?
            {
                VarValue::Integer(v) if v == *on => Ok(OutletState::On),
                VarValue::Integer(v) if v == *off => Ok(OutletState::Off),
                VarValue::Integer(v) => Err(DriverError::BadAnswer(format!(
                    "outlet {n} reads {v}, neither on ({on}) nor off ({off})"
                ))),
                other => Err(DriverError::BadAnswer(format!(
                    "outlet {n} reads {other:?}, not an INTEGER"
                ))),
            }
        })
    }

    fn can_read(&self) -> bool {
        self.state.is_some()
    }
}

// ---- BER, sans-IO ----

const TAG_INTEGER: u8 = 0x02;
const TAG_OCTETS: u8 = 0x04;
const TAG_NULL: u8 = 0x05;
const TAG_OID: u8 = 0x06;
const TAG_SEQUENCE: u8 = 0x30;
/// GetRequest-PDU.
pub const TAG_GET: u8 = 0xa0;
/// GetResponse / Response-PDU.
pub const TAG_RESPONSE: u8 = 0xa2;
/// SetRequest-PDU.
pub const TAG_SET: u8 = 0xa3;

/// A variable's value in a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VarValue {
    Integer(i64),
    Octets(Vec<u8>),
    Null,
    /// noSuchObject (0x80), noSuchInstance (0x81), endOfMibView (0x82).
    Exception(u8),
    /// Any other type, by tag.
    Other(u8),
}

/// A v1/v2c message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// 0 for v1, 1 for v2c.
    pub version: i64,
    pub community: Vec<u8>,
    /// `TAG_GET`, `TAG_SET`, `TAG_RESPONSE`, …
    pub pdu_tag: u8,
    pub request_id: i32,
    pub error_status: i64,
    pub error_index: i64,
    pub varbinds: Vec<(Vec<u32>, VarValue)>,
}

/// Parses a dotted numeric OID ("1.3.6.1…", a leading dot allowed).
pub fn parse_oid(text: &str) -> Result<Vec<u32>, String> {
    let t = text.trim().trim_start_matches('.');
    let arcs: Result<Vec<u32>, _> = t.split('.').map(str::parse::<u32>).collect();
    match arcs {
        Ok(a) if a.len() >= 2 && a[0] <= 2 && (a[0] == 2 || a[1] < 40) => Ok(a),
        _ => Err(format!(
            "`{text}` is not a numeric OID (dotted numbers, starting 1.3.6.1…)"
        )),
    }
}

/// Dotted form of an OID.
pub fn format_oid(oid: &[u32]) -> String {
    oid.iter().map(u32::to_string).collect::<Vec<_>>().join(".")
}

fn push_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 4);
    out.push(tag);
    push_len(&mut out, content.len());
    out.extend_from_slice(content);
    out
}

fn integer(v: i64) -> Vec<u8> {
    let bytes = v.to_be_bytes();
    let mut start = 0;
    while start < 7 {
        let (b, next) = (bytes[start], bytes[start + 1]);
        if (b == 0 && next & 0x80 == 0) || (b == 0xff && next & 0x80 != 0) {
            start += 1;
        } else {
            break;
        }
    }
    tlv(TAG_INTEGER, &bytes[start..])
}

fn oid_bytes(oid: &[u32]) -> Vec<u8> {
    let mut content = Vec::new();
    let first = oid.first().copied().unwrap_or(0);
    let second = oid.get(1).copied().unwrap_or(0);
    let mut arcs = vec![first * 40 + second];
    arcs.extend_from_slice(oid.get(2..).unwrap_or(&[]));
    for arc in arcs {
        let mut chunk = [0u8; 5];
        let mut n = 0;
        let mut v = arc;
        loop {
            chunk[n] = (v & 0x7f) as u8;
            n += 1;
            v >>= 7;
            if v == 0 {
                break;
            }
        }
        for i in (0..n).rev() {
            content.push(chunk[i] | if i > 0 { 0x80 } else { 0 });
        }
    }
    tlv(TAG_OID, &content)
}

/// Encodes a v1/v2c GetRequest (`value` None) or SetRequest of one INTEGER.
pub fn encode_request(
    version: Version,
    community: &[u8],
    pdu_tag: u8,
    request_id: i32,
    oid: &[u32],
    value: Option<i64>,
) -> Vec<u8> {
    let value = value.map_or(VarValue::Null, VarValue::Integer);
    encode(&Message {
        version: version.wire(),
        community: community.to_vec(),
        pdu_tag,
        request_id,
        error_status: 0,
        error_index: 0,
        varbinds: vec![(oid.to_vec(), value)],
    })
}

/// Encodes any v1/v2c message (requests here; responses in tests and simulators).
pub fn encode(m: &Message) -> Vec<u8> {
    let mut list = Vec::new();
    for (oid, value) in &m.varbinds {
        let value = match value {
            VarValue::Integer(v) => integer(*v),
            VarValue::Octets(o) => tlv(TAG_OCTETS, o),
            VarValue::Null => tlv(TAG_NULL, &[]),
            VarValue::Exception(tag) | VarValue::Other(tag) => tlv(*tag, &[]),
        };
        list.extend(tlv(TAG_SEQUENCE, &[oid_bytes(oid), value].concat()));
    }
    let pdu = tlv(
        m.pdu_tag,
        &[
            integer(i64::from(m.request_id)),
            integer(m.error_status),
            integer(m.error_index),
            tlv(TAG_SEQUENCE, &list),
        ]
        .concat(),
    );
    tlv(
        TAG_SEQUENCE,
        &[integer(m.version), tlv(TAG_OCTETS, &m.community), pdu].concat(),
    )
}

/// A cursor over BER bytes; every read is bounds-checked.
struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    fn read(&mut self) -> Result<(u8, &'a [u8]), String> {
        let [tag, first, ..] = *self.data else {
            return Err("truncated BER element".into());
        };
        let (len, header) = if first < 0x80 {
            (usize::from(first), 2)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 {
                return Err(format!("unsupported BER length form 0x{first:02x}"));
            }
            let bytes = self.data.get(2..2 + n).ok_or("truncated BER length")?;
            (
                bytes
                    .iter()
                    .fold(0usize, |acc, &b| acc << 8 | usize::from(b)),
                2 + n,
            )
        };
        let content = self
            .data
            .get(header..header.saturating_add(len))
            .ok_or_else(|| format!("BER element 0x{tag:02x} claims {len} bytes, fewer remain"))?;
        self.data = &self.data[header + len..];
        Ok((tag, content))
    }

    fn expect(&mut self, want: u8, what: &str) -> Result<&'a [u8], String> {
        let (tag, content) = self.read()?;
        if tag != want {
            return Err(format!("expected {what} (0x{want:02x}), got 0x{tag:02x}"));
        }
        Ok(content)
    }

    fn integer(&mut self, what: &str) -> Result<i64, String> {
        let content = self.expect(TAG_INTEGER, what)?;
        decode_integer(content, true).ok_or_else(|| format!("bad {what}"))
    }
}

fn decode_integer(content: &[u8], signed: bool) -> Option<i64> {
    if content.is_empty() || content.len() > 9 {
        return None;
    }
    let negative = signed && content[0] & 0x80 != 0;
    let mut v: i64 = if negative { -1 } else { 0 };
    for &b in content {
        v = v.checked_shl(8)? | i64::from(b);
    }
    Some(v)
}

fn decode_oid(content: &[u8]) -> Result<Vec<u32>, String> {
    let mut arcs = Vec::new();
    let mut v: u32 = 0;
    for &b in content {
        v = v.checked_mul(128).ok_or("OID arc too large")? | u32::from(b & 0x7f);
        if b & 0x80 == 0 {
            if arcs.is_empty() {
                let first = (v / 40).min(2);
                arcs.push(first);
                arcs.push(v - first * 40);
            } else {
                arcs.push(v);
            }
            v = 0;
        }
    }
    if arcs.is_empty() {
        return Err("empty OID".into());
    }
    Ok(arcs)
}

/// Decodes a v1/v2c message.
pub fn decode(data: &[u8]) -> Result<Message, String> {
    let mut top = Reader { data };
    let message = top.expect(TAG_SEQUENCE, "SNMP message")?;
    let mut m = Reader { data: message };
    let version = m.integer("version")?;
    let community = m.expect(TAG_OCTETS, "community")?.to_vec();
    let (pdu_tag, pdu) = m.read()?;
    if !(0xa0..=0xa8).contains(&pdu_tag) {
        return Err(format!("expected an SNMP PDU, got tag 0x{pdu_tag:02x}"));
    }
    let mut p = Reader { data: pdu };
    let request_id = p.integer("request-id")?;
    let request_id = i32::try_from(request_id).map_err(|_| "request-id out of range")?;
    let error_status = p.integer("error-status")?;
    let error_index = p.integer("error-index")?;
    let list = p.expect(TAG_SEQUENCE, "variable bindings")?;
    let mut l = Reader { data: list };
    let mut varbinds = Vec::new();
    while !l.data.is_empty() {
        let vb = l.expect(TAG_SEQUENCE, "variable binding")?;
        let mut v = Reader { data: vb };
        let oid = decode_oid(v.expect(TAG_OID, "OID")?)?;
        let (tag, content) = v.read()?;
        let value = match tag {
            TAG_INTEGER => VarValue::Integer(decode_integer(content, true).ok_or("bad INTEGER")?),
            // Counter32, Gauge32, TimeTicks: unsigned.
            0x41..=0x43 => VarValue::Integer(decode_integer(content, false).ok_or("bad unsigned")?),
            TAG_OCTETS => VarValue::Octets(content.to_vec()),
            TAG_NULL => VarValue::Null,
            0x80..=0x82 => VarValue::Exception(tag),
            other => VarValue::Other(other),
        };
        varbinds.push((oid, value));
    }
    Ok(Message {
        version,
        community,
        pdu_tag,
        request_id,
        error_status,
        error_index,
        varbinds,
    })
}

/// RFC 3416's names for error-status values.
pub fn error_status_name(status: i64) -> String {
    const NAMES: [&str; 19] = [
        "noError",
        "tooBig",
        "noSuchName",
        "badValue",
        "readOnly",
        "genErr",
        "noAccess",
        "wrongType",
        "wrongLength",
        "wrongEncoding",
        "wrongValue",
        "noCreation",
        "inconsistentValue",
        "resourceUnavailable",
        "commitFailed",
        "undoFailed",
        "authorizationError",
        "notWritable",
        "inconsistentName",
    ];
    usize::try_from(status)
        .ok()
        .and_then(|i| NAMES.get(i))
        .map_or_else(|| format!("status {status}"), |n| (*n).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_a_set_like_net_snmp() {
        // snmpset -v1 -c private HOST 1.3.6.1.4.1.318.1.1.4.4.2.1.3.5 i 1, request-id 0x1234.
        let oid = parse_oid("1.3.6.1.4.1.318.1.1.4.4.2.1.3.5").expect("oid");
        let got = encode_request(Version::V1, b"private", TAG_SET, 0x1234, &oid, Some(1));
        let want: Vec<u8> = [
            &[0x30, 0x30, 0x02, 0x01, 0x00, 0x04, 0x07][..],
            b"private",
            &[
                0xa3, 0x22, 0x02, 0x02, 0x12, 0x34, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00,
            ],
            &[0x30, 0x16, 0x30, 0x14, 0x06, 0x0f],
            &[0x2b, 6, 1, 4, 1, 0x82, 0x3e, 1, 1, 4, 4, 2, 1, 3, 5],
            &[0x02, 0x01, 0x01],
        ]
        .concat();
        assert_eq!(got, want);
    }

    #[test]
    fn integers_round_trip() {
        for v in [
            0i64,
            1,
            127,
            128,
            255,
            256,
            -1,
            -128,
            -129,
            2_147_483_647,
            -2_147_483_648,
        ] {
            let enc = integer(v);
            let mut r = Reader { data: &enc };
            assert_eq!(r.integer("v"), Ok(v), "{v}: {enc:02x?}");
        }
    }

    #[test]
    fn decodes_a_response_and_rejects_garbage() {
        let oid = parse_oid("1.3.6.1.4.1.318.1.1.4.4.2.1.3.200").expect("oid");
        let mut msg = encode_request(Version::V2c, b"public", TAG_GET, 77, &oid, Some(2));
        // Turn the request into a response.
        let pdu_at = msg.iter().position(|&b| b == TAG_GET).expect("pdu");
        msg[pdu_at] = TAG_RESPONSE;
        let r = decode(&msg).expect("decode");
        assert_eq!(r.pdu_tag, TAG_RESPONSE);
        assert_eq!(r.request_id, 77);
        assert_eq!(r.version, 1);
        assert_eq!(r.varbinds, vec![(oid, VarValue::Integer(2))]);
        for bad in [
            &b""[..],
            b"hello",
            &[0x30, 0x84, 0xff, 0xff, 0xff, 0xff],
            &msg[..msg.len() - 1],
        ] {
            assert!(decode(bad).is_err(), "{bad:02x?}");
        }
        for cut in 0..msg.len() {
            let _ = decode(&msg[..cut]);
        }
    }

    #[test]
    fn error_names() {
        assert_eq!(error_status_name(2), "noSuchName");
        assert_eq!(error_status_name(17), "notWritable");
        assert_eq!(error_status_name(99), "status 99");
    }
}
