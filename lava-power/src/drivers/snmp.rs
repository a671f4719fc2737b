//! The `snmp` driver (and `apc-snmp`, the same with the `apc` preset): switches an outlet with one
//! SNMP SET of an INTEGER and reads it back with a GET, over UDP: v1 and v2c with communities, v3
//! with the User-based Security Model (noAuthNoPriv, authNoPriv with HMAC-MD5-96/HMAC-SHA-96,
//! authPriv with DES-CBC or AES-128-CFB; RFC 3414, RFC 3826). The BER encoding of the few message
//! shapes this needs is written here, sans-IO, so the wire format is tested on its own.

use std::net::SocketAddr;
use std::ops::Range;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use lava_common::{ConfigError, Source};
use tokio::net::UdpSocket;
use toml::Spanned;

use crate::config::Loaded;
use crate::driver::{DriverError, DriverFuture, OutletState, PowerDriver};
use crate::drivers::{numbered_outlets, outlet_number, port, required};

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
        username: Option<Spanned<String>>,
        auth_protocol: Option<Spanned<String>>,
        auth_password: Option<Spanned<String>>,
        priv_protocol: Option<Spanned<String>>,
        priv_password: Option<Spanned<String>>,
        context: Option<Spanned<String>>,
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
    V3,
}

impl Version {
    fn wire(self) -> i64 {
        match self {
            Version::V1 => 0,
            Version::V2c => 1,
            Version::V3 => 3,
        }
    }
}

/// How requests are authorized.
#[derive(Debug)]
enum Security {
    /// v1/v2c.
    Community { read: Vec<u8>, write: Vec<u8> },
    /// v3.
    Usm(Usm),
}

/// A v3 user and the keys localized to the agent's engine (cached: deriving them hashes 1 MB).
#[derive(Debug)]
struct Usm {
    user: UsmUser,
    keys: std::sync::Mutex<Option<LocalKeys>>,
    salt: AtomicU64,
}

#[derive(Debug, Clone)]
struct LocalKeys {
    engine_id: Vec<u8>,
    auth: Option<Vec<u8>>,
    privacy: Option<Vec<u8>>,
}

impl Usm {
    fn keys(&self, engine_id: &[u8]) -> LocalKeys {
        if let Ok(cache) = self.keys.lock() {
            if let Some(k) = cache.as_ref().filter(|k| k.engine_id == engine_id) {
                return k.clone();
            }
        }
        let auth = self.user.auth.as_ref().map(|(proto, password)| {
            localize_key(*proto, &password_to_key(*proto, password), engine_id)
        });
        let privacy = match (&self.user.auth, &self.user.privacy) {
            (Some((proto, _)), Some((_, password))) => Some(localize_key(
                *proto,
                &password_to_key(*proto, password),
                engine_id,
            )),
            _ => None,
        };
        let keys = LocalKeys {
            engine_id: engine_id.to_vec(),
            auth,
            privacy,
        };
        if let Ok(mut cache) = self.keys.lock() {
            *cache = Some(keys.clone());
        }
        keys
    }
}

/// The `snmp` driver: one agent, one OID template per action.
#[derive(Debug)]
pub struct SnmpDriver {
    kind: &'static str,
    host: String,
    port: u16,
    version: Version,
    security: Security,
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
    let port = port(
        src,
        &raw.port,
        161,
        "UDP",
        "use 1..65535 (SNMP agents listen on 161)",
    )?;
    let version = match raw
        .version
        .as_ref()
        .map(|v| (v.get_ref().as_str(), v.span()))
    {
        None | Some(("1", _)) => Version::V1,
        Some(("2c", _)) | Some(("2", _)) => Version::V2c,
        Some(("3", _)) => Version::V3,
        Some((other, span)) => {
            return Err(src.invalid(
                Some(span),
                "version",
                format!("unknown SNMP version `{other}`"),
                Some("use \"1\", \"2c\" or \"3\"".into()),
            ))
        }
    };
    let security = if version == Version::V3 {
        Security::Usm(usm_keys(src, &raw)?)
    } else {
        forbid(
            src,
            [
                ("username", &raw.username),
                ("auth_protocol", &raw.auth_protocol),
                ("auth_password", &raw.auth_password),
                ("priv_protocol", &raw.priv_protocol),
                ("priv_password", &raw.priv_password),
                ("context", &raw.context),
            ],
            |key| format!("`{key}` is an SNMPv3 key"),
            "add version = \"3\", or remove the key",
        )?;
        let community = raw.community.as_ref().map(|c| c.get_ref().clone());
        let read = raw
            .read_community
            .as_ref()
            .map(|c| c.get_ref().clone())
            .or_else(|| community.clone())
            .unwrap_or_else(|| "public".to_owned());
        let write = raw
            .write_community
            .as_ref()
            .map(|c| c.get_ref().clone())
            .or(community)
            .unwrap_or_else(|| "private".to_owned());
        Security::Community {
            read: read.into_bytes(),
            write: write.into_bytes(),
        }
    };

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

    // A number beyond outlet_count was refused by the common keys' check.
    numbered_outlets(src, &raw.outlets, "SNMP outlets are numbered 1, 2, 3, …")?;

    let driver = SnmpDriver {
        kind,
        host: host.clone(),
        port,
        version,
        security,
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

/// The v3 keys: a user, and the passwords that choose the security level.
fn usm_keys(src: &Source, raw: &Raw) -> Result<Usm, ConfigError> {
    forbid(
        src,
        [
            ("community", &raw.community),
            ("read_community", &raw.read_community),
            ("write_community", &raw.write_community),
        ],
        |_| "SNMPv3 has no communities".to_owned(),
        "use username (and auth_password, priv_password)",
    )?;
    let name = required(
        src,
        &raw.username,
        "username",
        "the SNMPv3 user, e.g. username = \"lava\"",
    )?;
    let password = |key: &str, v: &Spanned<String>| {
        if v.get_ref().len() < 8 {
            Err(src.invalid(
                Some(v.span()),
                key,
                "SNMPv3 passwords have at least 8 characters",
                Some("use the password configured on the PDU".into()),
            ))
        } else {
            Ok(v.get_ref().clone())
        }
    };
    let auth_protocol = keyword(
        src,
        &raw.auth_protocol,
        "auth_protocol",
        AuthProtocol::Md5,
        &[
            (&["MD5"], AuthProtocol::Md5),
            (&["SHA", "SHA1", "SHA-1"], AuthProtocol::Sha1),
        ],
        "authentication protocol",
        "use \"MD5\" or \"SHA\"",
    )?;
    let priv_protocol = keyword(
        src,
        &raw.priv_protocol,
        "priv_protocol",
        PrivProtocol::Des,
        &[
            (&["DES"], PrivProtocol::Des),
            (&["AES", "AES128", "AES-128"], PrivProtocol::Aes128),
        ],
        "privacy protocol",
        "use \"DES\" or \"AES\" (AES-128)",
    )?;
    // A password chooses the level; its protocol alone is a mistake.
    let secret = |key: &str,
                  v: &Option<Spanned<String>>,
                  proto_key: &str,
                  proto: &Option<Spanned<String>>,
                  what: &str| {
        match (v, proto) {
            (Some(p), _) => password(key, p).map(Some),
            (None, Some(p)) => Err(src.invalid(
                Some(p.span()),
                proto_key,
                format!("{what} without {key}"),
                Some(format!("add {key}")),
            )),
            (None, None) => Ok(None),
        }
    };
    let auth = secret(
        "auth_password",
        &raw.auth_password,
        "auth_protocol",
        &raw.auth_protocol,
        "an authentication protocol",
    )?
    .map(|p| (auth_protocol, p));
    if let (Some(p), None) = (&raw.priv_password, &auth) {
        return Err(src.invalid(
            Some(p.span()),
            "priv_password",
            "privacy needs authentication too (authPriv)",
            Some("add auth_password (and auth_protocol)".into()),
        ));
    }
    let privacy = secret(
        "priv_password",
        &raw.priv_password,
        "priv_protocol",
        &raw.priv_protocol,
        "a privacy protocol",
    )?
    .map(|p| (priv_protocol, p));
    Ok(Usm {
        user: UsmUser {
            name: name.into_bytes(),
            auth,
            privacy,
            context: raw
                .context
                .as_ref()
                .map(|c| c.get_ref().clone().into_bytes())
                .unwrap_or_default(),
        },
        keys: std::sync::Mutex::new(None),
        salt: AtomicU64::new(u64::from(initial_request_id() as u32) << 20),
    })
}

/// Keys that must not be set here: the first one that is, is the error `message(key)` with `hint`.
fn forbid<const N: usize>(
    src: &Source,
    keys: [(&str, &Option<Spanned<String>>); N],
    message: impl Fn(&str) -> String,
    hint: &str,
) -> Result<(), ConfigError> {
    match keys
        .into_iter()
        .find_map(|(key, v)| Some((key, v.as_ref()?)))
    {
        Some((key, v)) => Err(src.invalid(Some(v.span()), key, message(key), Some(hint.into()))),
        None => Ok(()),
    }
}

/// A key naming one of a few choices, in any case (`"sha"`, `"SHA-1"`): `default` when absent.
fn keyword<T: Copy>(
    src: &Source,
    v: &Option<Spanned<String>>,
    key: &str,
    default: T,
    choices: &[(&[&str], T)],
    what: &str,
    hint: &str,
) -> Result<T, ConfigError> {
    let Some(v) = v else {
        return Ok(default);
    };
    let word = v.get_ref().to_ascii_uppercase();
    choices
        .iter()
        .find(|(names, _)| names.contains(&word.as_str()))
        .map(|&(_, choice)| choice)
        .ok_or_else(|| {
            src.invalid(
                Some(v.span()),
                key,
                format!("unknown {what} `{word}`"),
                Some(hint.into()),
            )
        })
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

    /// One GET or SET of one variable, by the configured version.
    async fn exchange(
        &self,
        pdu_tag: u8,
        write: bool,
        oid: &[u32],
        value: Option<i64>,
    ) -> Result<VarValue, DriverError> {
        let (socket, target) = self.socket().await?;
        match &self.security {
            Security::Community { read, write: w } => {
                let community = if write { w } else { read };
                let id = self.request_id();
                let request = encode_request(self.version, community, pdu_tag, id, oid, value);
                let response = self
                    .roundtrip(&socket, target, &request, |d| {
                        let m = decode(d)
                            .map_err(|e| DriverError::BadAnswer(format!("{target}: {e}")))?;
                        if m.pdu_tag != TAG_RESPONSE {
                            return Err(DriverError::BadAnswer(format!(
                                "{target}: expected a Response PDU (0xa2), got 0x{:02x}",
                                m.pdu_tag
                            )));
                        }
                        Ok((m.request_id == id).then_some(m))
                    })
                    .await?;
                check_response(&response, oid)
            }
            Security::Usm(usm) => {
                self.exchange_v3(usm, &socket, target, pdu_tag, oid, value)
                    .await
            }
        }
    }

    async fn socket(&self) -> Result<(UdpSocket, SocketAddr), DriverError> {
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
        Ok((socket, target))
    }

    /// Sends `request` and waits for the datagram `accept` takes (`Ok(None)`: a stray answer to
    /// another request, ignored). Unanswered, the request is sent once more after `resend_after`.
    async fn roundtrip<T>(
        &self,
        socket: &UdpSocket,
        target: SocketAddr,
        request: &[u8],
        mut accept: impl FnMut(&[u8]) -> Result<Option<T>, DriverError>,
    ) -> Result<T, DriverError> {
        let mut buf = vec![0u8; 65_536];
        let mut sends = 0;
        loop {
            socket
                .send(request)
                .await
                .map_err(|e| DriverError::Unreachable(format!("{target}: {e}")))?;
            sends += 1;
            let deadline = tokio::time::sleep(self.resend_after.max(Duration::from_millis(100)));
            tokio::pin!(deadline);
            loop {
                tokio::select! {
                    r = socket.recv(&mut buf) => {
                        let n = r.map_err(|e| recv_error(target, e))?;
                        match accept(&buf[..n])? {
                            Some(t) => return Ok(t),
                            None => {
                                tracing::debug!(pdu_host = %self.host, "ignoring a stray SNMP answer");
                            }
                        }
                    }
                    _ = &mut deadline, if sends < 2 => break,
                }
            }
        }
    }

    /// A v3 exchange: engine discovery, then the authenticated (and encrypted) request; a
    /// notInTimeWindows report (the agent rebooted or its clock moved) gets one more try.
    async fn exchange_v3(
        &self,
        usm: &Usm,
        socket: &UdpSocket,
        target: SocketAddr,
        pdu_tag: u8,
        oid: &[u32],
        value: Option<i64>,
    ) -> Result<VarValue, DriverError> {
        let bad = |e: String| DriverError::BadAnswer(format!("{target}: {e}"));
        let disc_id = self.request_id();
        let discovery = encode_v3(
            &V3Header {
                msg_id: disc_id,
                flags: FLAG_REPORTABLE,
                ..V3Header::default()
            },
            &encode_scoped(&[], &[], &encode_pdu(TAG_GET, disc_id, &[])),
        );
        let mut header = self
            .roundtrip(socket, target, &discovery, |d| {
                let m = decode_v3(d).map_err(bad)?;
                if m.header.msg_id != disc_id {
                    return Ok(None);
                }
                if m.header.engine_id.is_empty() {
                    return Err(bad("engine discovery answered without an engine id".into()));
                }
                Ok(Some(m.header))
            })
            .await?;
        let keys = usm.keys(&header.engine_id);
        let user = &usm.user;
        for _ in 0..2 {
            let id = self.request_id();
            let varbind = (
                oid.to_vec(),
                value.map_or(VarValue::Null, VarValue::Integer),
            );
            let scoped = encode_scoped(
                &header.engine_id,
                &user.context,
                &encode_pdu(pdu_tag, id, &[varbind]),
            );
            let salt = usm.salt.fetch_add(1, Ordering::Relaxed);
            let request = seal_v3(user, &keys, &header, id, &scoped, salt);
            let (reply_header, pdu) = self
                .roundtrip(socket, target, &request, |d| {
                    let m = decode_v3(d).map_err(bad)?;
                    if m.header.msg_id != id {
                        return Ok(None);
                    }
                    open_v3(user, &keys, d, m).map(Some).map_err(bad)
                })
                .await?;
            if pdu.pdu_tag == TAG_REPORT {
                let report = pdu
                    .varbinds
                    .first()
                    .map(|(o, _)| o.as_slice())
                    .unwrap_or(&[]);
                match usm_report(report) {
                    Some(UsmReport::NotInTimeWindows) => {
                        header.boots = reply_header.boots;
                        header.time = reply_header.time;
                        continue;
                    }
                    Some(r) => return Err(DriverError::Refused(format!("SNMPv3: {}", r.text()))),
                    None => {
                        return Err(DriverError::Refused(format!(
                            "SNMPv3 report {}",
                            format_oid(report)
                        )))
                    }
                }
            }
            if pdu.pdu_tag != TAG_RESPONSE {
                return Err(bad(format!(
                    "expected a Response PDU, got 0x{:02x}",
                    pdu.pdu_tag
                )));
            }
            return check_response(&pdu, oid);
        }
        Err(DriverError::Refused(
            "SNMPv3: the agent keeps reporting notInTimeWindows".into(),
        ))
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
            self.exchange(TAG_SET, true, &oid, Some(*value))
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
            match self.exchange(TAG_GET, false, &oid, None).await? {
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
    let pdu = pdu_bytes(
        m.pdu_tag,
        m.request_id,
        m.error_status,
        m.error_index,
        &m.varbinds,
    );
    tlv(
        TAG_SEQUENCE,
        &[integer(m.version), tlv(TAG_OCTETS, &m.community), pdu].concat(),
    )
}

/// Any PDU: request id, error status and index, variable bindings (v1, v2c and v3 alike).
fn pdu_bytes(
    tag: u8,
    request_id: i32,
    error_status: i64,
    error_index: i64,
    varbinds: &[(Vec<u32>, VarValue)],
) -> Vec<u8> {
    let mut list = Vec::new();
    for (oid, value) in varbinds {
        let value = match value {
            VarValue::Integer(v) => integer(*v),
            VarValue::Octets(o) => tlv(TAG_OCTETS, o),
            VarValue::Null => tlv(TAG_NULL, &[]),
            VarValue::Exception(tag) | VarValue::Other(tag) => tlv(*tag, &[]),
        };
        list.extend(tlv(TAG_SEQUENCE, &[oid_bytes(oid), value].concat()));
    }
    tlv(
        tag,
        &[
            integer(i64::from(request_id)),
            integer(error_status),
            integer(error_index),
            tlv(TAG_SEQUENCE, &list),
        ]
        .concat(),
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
    decode_pdu(version, community, pdu_tag, pdu)
}

/// Decodes a PDU's content (request id, error status and index, variables).
fn decode_pdu(
    version: i64,
    community: Vec<u8>,
    pdu_tag: u8,
    pdu: &[u8],
) -> Result<Message, String> {
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

// ---- SNMPv3 USM (RFC 3412, 3414, 3826), sans-IO ----

/// Report-PDU.
pub const TAG_REPORT: u8 = 0xa8;
/// msgFlags bits.
pub const FLAG_AUTH: u8 = 0x01;
pub const FLAG_PRIV: u8 = 0x02;
pub const FLAG_REPORTABLE: u8 = 0x04;
/// The largest message this side accepts (as net-snmp announces).
const MAX_MESSAGE: i64 = 65_507;
/// HMAC-MD5-96 / HMAC-SHA-96 truncate to 12 bytes.
const AUTH_LEN: usize = 12;

/// The authentication protocol of a v3 user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthProtocol {
    /// HMAC-MD5-96.
    Md5,
    /// HMAC-SHA-96.
    Sha1,
}

/// The privacy protocol of a v3 user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrivProtocol {
    /// CBC-DES (RFC 3414 §8).
    Des,
    /// CFB128-AES-128 (RFC 3826).
    Aes128,
}

/// A v3 user: no auth, auth, or auth and privacy.
#[derive(Debug, Clone)]
pub struct UsmUser {
    pub name: Vec<u8>,
    pub auth: Option<(AuthProtocol, String)>,
    pub privacy: Option<(PrivProtocol, String)>,
    pub context: Vec<u8>,
}

impl AuthProtocol {
    /// The protocol's hash of what `feed` hands to the update function it is given.
    fn hash_with(self, feed: impl FnOnce(&mut dyn FnMut(&[u8]))) -> Vec<u8> {
        fn run<D: md5::Digest>(feed: impl FnOnce(&mut dyn FnMut(&[u8]))) -> Vec<u8> {
            let mut h = D::new();
            feed(&mut |part| h.update(part));
            h.finalize().to_vec()
        }
        match self {
            AuthProtocol::Md5 => run::<md5::Md5>(feed),
            AuthProtocol::Sha1 => run::<sha1::Sha1>(feed),
        }
    }

    /// The protocol's hash of `parts` one after the other.
    fn hash(self, parts: &[&[u8]]) -> Vec<u8> {
        self.hash_with(|update| parts.iter().for_each(|p| update(p)))
    }
}

/// RFC 3414 A.2: a password stretched to 1 MiB and hashed.
pub fn password_to_key(proto: AuthProtocol, password: &str) -> Vec<u8> {
    let pw = password.as_bytes();
    let mut chunk = [0u8; 64];
    let mut at = 0usize;
    let mut fill = |chunk: &mut [u8; 64]| {
        for b in chunk.iter_mut() {
            *b = pw[at % pw.len()];
            at += 1;
        }
    };
    if pw.is_empty() {
        return proto.hash(&[]);
    }
    proto.hash_with(|update| {
        for _ in 0..(1_048_576 / 64) {
            fill(&mut chunk);
            update(&chunk);
        }
    })
}

/// RFC 3414 A.2: a key localized to one agent's engine id.
pub fn localize_key(proto: AuthProtocol, key: &[u8], engine_id: &[u8]) -> Vec<u8> {
    proto.hash(&[key, engine_id, key])
}

/// HMAC (RFC 2104) truncated to 96 bits.
pub fn hmac96(proto: AuthProtocol, key: &[u8], message: &[u8]) -> [u8; AUTH_LEN] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        let h = proto.hash(&[key]);
        k[..h.len()].copy_from_slice(&h);
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let ipad: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
    let opad: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
    let inner = proto.hash(&[&ipad, message]);
    let outer = proto.hash(&[&opad, &inner]);
    let mut out = [0u8; AUTH_LEN];
    out.copy_from_slice(&outer[..AUTH_LEN]);
    out
}

fn des_cbc(key: &[u8], iv: [u8; 8], data: &[u8], encrypt: bool) -> Result<Vec<u8>, String> {
    use des::cipher::{generic_array::GenericArray, BlockDecrypt, BlockEncrypt, KeyInit};
    let cipher = des::Des::new_from_slice(key.get(..8).ok_or("DES key too short")?)
        .map_err(|_| "bad DES key".to_owned())?;
    let mut out = data.to_vec();
    if encrypt {
        out.resize(data.len().div_ceil(8) * 8, 0);
    } else if data.len() % 8 != 0 {
        return Err("encrypted data is not a whole number of DES blocks".into());
    }
    let mut prev = iv;
    for block in out.chunks_mut(8) {
        if encrypt {
            block.iter_mut().zip(prev).for_each(|(b, p)| *b ^= p);
            cipher.encrypt_block(GenericArray::from_mut_slice(block));
            prev.copy_from_slice(block);
        } else {
            let mut this = [0u8; 8];
            this.copy_from_slice(block);
            cipher.decrypt_block(GenericArray::from_mut_slice(block));
            block.iter_mut().zip(prev).for_each(|(b, p)| *b ^= p);
            prev = this;
        }
    }
    Ok(out)
}

fn aes_cfb(key: &[u8], iv: [u8; 16], data: &[u8], encrypt: bool) -> Result<Vec<u8>, String> {
    use aes::cipher::{generic_array::GenericArray, BlockEncrypt, KeyInit};
    let cipher = aes::Aes128::new_from_slice(key.get(..16).ok_or("AES key too short")?)
        .map_err(|_| "bad AES key".to_owned())?;
    let mut out = data.to_vec();
    let mut register = iv;
    for segment in out.chunks_mut(16) {
        let mut stream = GenericArray::clone_from_slice(&register);
        cipher.encrypt_block(&mut stream);
        let mut next = [0u8; 16];
        for (i, b) in segment.iter_mut().enumerate() {
            let c = if encrypt { *b ^ stream[i] } else { *b };
            *b ^= stream[i];
            next[i] = c;
        }
        register = next;
    }
    Ok(out)
}

/// Encrypts or decrypts a scopedPDU with the IV the protocol builds from the key, the engine's
/// boots and time (`header`) and the message's 8-byte salt (msgPrivacyParameters).
fn crypt(
    proto: PrivProtocol,
    key: &[u8],
    header: &V3Header,
    salt: &[u8; 8],
    data: &[u8],
    encrypt: bool,
) -> Result<Vec<u8>, String> {
    match proto {
        PrivProtocol::Des => {
            let mut iv = [0u8; 8];
            for (i, b) in iv.iter_mut().enumerate() {
                *b = key.get(8 + i).copied().unwrap_or(0) ^ salt[i];
            }
            des_cbc(key, iv, data, encrypt)
        }
        PrivProtocol::Aes128 => {
            let mut iv = [0u8; 16];
            iv[..4].copy_from_slice(&(header.boots as u32).to_be_bytes());
            iv[4..8].copy_from_slice(&(header.time as u32).to_be_bytes());
            iv[8..].copy_from_slice(salt);
            aes_cfb(key, iv, data, encrypt)
        }
    }
}

/// The v3 header and USM security parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct V3Header {
    pub msg_id: i32,
    pub flags: u8,
    pub engine_id: Vec<u8>,
    pub boots: i64,
    pub time: i64,
    pub user: Vec<u8>,
    pub auth_params: Vec<u8>,
    pub priv_params: Vec<u8>,
}

/// A decoded v3 message.
#[derive(Debug, Clone)]
pub struct V3Message {
    pub header: V3Header,
    /// Where msgAuthenticationParameters' content sits in the message.
    pub auth_at: Range<usize>,
    /// The scopedPDU's bytes, or the encrypted ones.
    pub data: Vec<u8>,
    pub encrypted: bool,
}

/// A PDU with its request id and variables (a request's: no error status).
pub fn encode_pdu(tag: u8, request_id: i32, varbinds: &[(Vec<u32>, VarValue)]) -> Vec<u8> {
    pdu_bytes(tag, request_id, 0, 0, varbinds)
}

/// ScopedPDU ::= SEQUENCE { contextEngineID, contextName, data }.
pub fn encode_scoped(context_engine: &[u8], context_name: &[u8], pdu: &[u8]) -> Vec<u8> {
    tlv(
        TAG_SEQUENCE,
        &[
            tlv(TAG_OCTETS, context_engine),
            tlv(TAG_OCTETS, context_name),
            pdu.to_vec(),
        ]
        .concat(),
    )
}

/// A v3 message around `data` (a scopedPDU, or with FLAG_PRIV the encrypted one).
pub fn encode_v3(h: &V3Header, data: &[u8]) -> Vec<u8> {
    let global = tlv(
        TAG_SEQUENCE,
        &[
            integer(i64::from(h.msg_id)),
            integer(MAX_MESSAGE),
            tlv(TAG_OCTETS, &[h.flags]),
            integer(3),
        ]
        .concat(),
    );
    let usm = tlv(
        TAG_SEQUENCE,
        &[
            tlv(TAG_OCTETS, &h.engine_id),
            integer(h.boots),
            integer(h.time),
            tlv(TAG_OCTETS, &h.user),
            tlv(TAG_OCTETS, &h.auth_params),
            tlv(TAG_OCTETS, &h.priv_params),
        ]
        .concat(),
    );
    let data = if h.flags & FLAG_PRIV != 0 {
        tlv(TAG_OCTETS, data)
    } else {
        data.to_vec()
    };
    tlv(
        TAG_SEQUENCE,
        &[integer(3), global, tlv(TAG_OCTETS, &usm), data].concat(),
    )
}

fn offset_in(outer: &[u8], inner: &[u8]) -> usize {
    (inner.as_ptr() as usize).saturating_sub(outer.as_ptr() as usize)
}

/// Decodes a v3 message (not its scopedPDU, which may be encrypted).
pub fn decode_v3(data: &[u8]) -> Result<V3Message, String> {
    let mut top = Reader { data };
    let message = top.expect(TAG_SEQUENCE, "SNMP message")?;
    let mut m = Reader { data: message };
    let version = m.integer("version")?;
    if version != 3 {
        return Err(format!("expected an SNMPv3 answer, got version {version}"));
    }
    let global = m.expect(TAG_SEQUENCE, "msgGlobalData")?;
    let mut g = Reader { data: global };
    let msg_id = i32::try_from(g.integer("msgID")?).map_err(|_| "msgID out of range")?;
    let _max = g.integer("msgMaxSize")?;
    let flags = *g
        .expect(TAG_OCTETS, "msgFlags")?
        .first()
        .ok_or("empty msgFlags")?;
    let model = g.integer("msgSecurityModel")?;
    if model != 3 {
        return Err(format!("security model {model} is not USM"));
    }
    let sec = m.expect(TAG_OCTETS, "msgSecurityParameters")?;
    let mut s = Reader { data: sec };
    let usm = s.expect(TAG_SEQUENCE, "UsmSecurityParameters")?;
    let mut u = Reader { data: usm };
    let engine_id = u.expect(TAG_OCTETS, "msgAuthoritativeEngineID")?.to_vec();
    let boots = u.integer("msgAuthoritativeEngineBoots")?;
    let time = u.integer("msgAuthoritativeEngineTime")?;
    let user = u.expect(TAG_OCTETS, "msgUserName")?.to_vec();
    let auth = u.expect(TAG_OCTETS, "msgAuthenticationParameters")?;
    let auth_start = offset_in(data, auth);
    let auth_at = auth_start..auth_start + auth.len();
    let priv_params = u.expect(TAG_OCTETS, "msgPrivacyParameters")?.to_vec();
    let encrypted = flags & FLAG_PRIV != 0;
    let body = if encrypted {
        m.expect(TAG_OCTETS, "encryptedPDU")?.to_vec()
    } else {
        let (tag, content) = m.read()?;
        if tag != TAG_SEQUENCE {
            return Err(format!("expected a scopedPDU, got 0x{tag:02x}"));
        }
        tlv(TAG_SEQUENCE, content)
    };
    Ok(V3Message {
        header: V3Header {
            msg_id,
            flags,
            engine_id,
            boots,
            time,
            user,
            auth_params: auth.to_vec(),
            priv_params,
        },
        auth_at,
        data: body,
        encrypted,
    })
}

/// Decodes a scopedPDU into its PDU (as a [`Message`] with version 3 and no community).
pub fn decode_scoped(data: &[u8]) -> Result<Message, String> {
    let mut top = Reader { data };
    let scoped = top.expect(TAG_SEQUENCE, "scopedPDU")?;
    let mut s = Reader { data: scoped };
    let _engine = s.expect(TAG_OCTETS, "contextEngineID")?;
    let _name = s.expect(TAG_OCTETS, "contextName")?;
    let (pdu_tag, pdu) = s.read()?;
    decode_pdu(3, Vec::new(), pdu_tag, pdu)
}

/// Builds an authenticated (and encrypted) request.
fn seal_v3(
    user: &UsmUser,
    keys: &LocalKeys,
    header: &V3Header,
    msg_id: i32,
    scoped: &[u8],
    salt: u64,
) -> Vec<u8> {
    let mut h = V3Header {
        msg_id,
        flags: FLAG_REPORTABLE,
        engine_id: header.engine_id.clone(),
        boots: header.boots,
        time: header.time,
        user: user.name.clone(),
        auth_params: Vec::new(),
        priv_params: Vec::new(),
    };
    let mut data = scoped.to_vec();
    if let (Some((proto, _)), Some(key)) = (&user.privacy, &keys.privacy) {
        h.flags |= FLAG_PRIV;
        // DES's salt is the engine boots and a counter (RFC 3414 §8.1.1.1), AES's a counter.
        let salt = match proto {
            PrivProtocol::Des => (u64::from(header.boots as u32) << 32) | u64::from(salt as u32),
            PrivProtocol::Aes128 => salt,
        }
        .to_be_bytes();
        h.priv_params = salt.to_vec();
        // The keys are 16+ bytes by construction, so encryption cannot fail here.
        data = crypt(*proto, key, header, &salt, scoped, true).unwrap_or_default();
    }
    if let (Some((proto, _)), Some(key)) = (&user.auth, &keys.auth) {
        h.flags |= FLAG_AUTH;
        h.auth_params = vec![0; AUTH_LEN];
        let mut message = encode_v3(&h, &data);
        if let Ok(m) = decode_v3(&message) {
            let mac = hmac96(*proto, key, &message);
            message[m.auth_at].copy_from_slice(&mac);
        }
        return message;
    }
    encode_v3(&h, &data)
}

/// Checks (and decrypts) an answer; returns its header and PDU.
fn open_v3(
    user: &UsmUser,
    keys: &LocalKeys,
    raw: &[u8],
    m: V3Message,
) -> Result<(V3Header, Message), String> {
    if m.header.flags & FLAG_AUTH != 0 {
        let (Some((proto, _)), Some(key)) = (&user.auth, &keys.auth) else {
            return Err("an authenticated answer to a user without authentication".into());
        };
        if m.auth_at.len() != AUTH_LEN {
            return Err("authentication parameters of the wrong size".into());
        }
        let mut zeroed = raw.to_vec();
        zeroed[m.auth_at.clone()].fill(0);
        if hmac96(*proto, key, &zeroed)[..] != raw[m.auth_at.clone()] {
            return Err(
                "the answer's authentication does not verify (wrong auth_password?)".into(),
            );
        }
    }
    let plain = if m.encrypted {
        if m.header.flags & FLAG_AUTH == 0 {
            return Err("an encrypted answer without authentication".into());
        }
        let (Some((proto, _)), Some(key)) = (&user.privacy, &keys.privacy) else {
            return Err("an encrypted answer to a user without privacy".into());
        };
        let salt: [u8; 8] = m
            .header
            .priv_params
            .as_slice()
            .try_into()
            .map_err(|_| "privacy parameters of the wrong size")?;
        crypt(*proto, key, &m.header, &salt, &m.data, false)?
    } else {
        m.data.clone()
    };
    let pdu = decode_scoped(&plain)?;
    // A Response must be as protected as the request was; reports may come unauthenticated.
    if pdu.pdu_tag == TAG_RESPONSE && user.auth.is_some() && m.header.flags & FLAG_AUTH == 0 {
        return Err("an unauthenticated answer to an authenticated request".into());
    }
    Ok((m.header, pdu))
}

/// The USM statistics a Report names (RFC 3414 usmStats, 1.3.6.1.6.3.15.1.1.N.0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UsmReport {
    UnsupportedSecLevels,
    NotInTimeWindows,
    UnknownUserNames,
    UnknownEngineIds,
    WrongDigests,
    DecryptionErrors,
}

impl UsmReport {
    fn text(self) -> &'static str {
        match self {
            UsmReport::UnsupportedSecLevels => {
                "usmStatsUnsupportedSecLevels (the user does not allow this security level)"
            }
            UsmReport::NotInTimeWindows => "usmStatsNotInTimeWindows",
            UsmReport::UnknownUserNames => "usmStatsUnknownUserNames (no such user on the agent)",
            UsmReport::UnknownEngineIds => "usmStatsUnknownEngineIDs",
            UsmReport::WrongDigests => {
                "usmStatsWrongDigests (wrong auth_password or auth_protocol)"
            }
            UsmReport::DecryptionErrors => {
                "usmStatsDecryptionErrors (wrong priv_password or priv_protocol)"
            }
        }
    }
}

fn usm_report(oid: &[u32]) -> Option<UsmReport> {
    match oid {
        [1, 3, 6, 1, 6, 3, 15, 1, 1, n, ..] => Some(match n {
            1 => UsmReport::UnsupportedSecLevels,
            2 => UsmReport::NotInTimeWindows,
            3 => UsmReport::UnknownUserNames,
            4 => UsmReport::UnknownEngineIds,
            5 => UsmReport::WrongDigests,
            6 => UsmReport::DecryptionErrors,
            _ => return None,
        }),
        _ => None,
    }
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

    fn hex(s: &str) -> Vec<u8> {
        s.split_whitespace()
            .map(|b| u8::from_str_radix(b, 16).expect("hex"))
            .collect()
    }

    #[test]
    fn rfc3414_key_localization() {
        let engine = hex("00 00 00 00 00 00 00 00 00 00 00 02");
        let ku = password_to_key(AuthProtocol::Md5, "maplesyrup");
        assert_eq!(ku, hex("9f af 32 83 88 4e 92 83 4e bc 98 47 d8 ed d9 63"));
        assert_eq!(
            localize_key(AuthProtocol::Md5, &ku, &engine),
            hex("52 6f 5e ed 9f cc e2 6f 89 64 c2 93 07 87 d8 2b")
        );
        let ku = password_to_key(AuthProtocol::Sha1, "maplesyrup");
        assert_eq!(
            ku,
            hex("9f b5 cc 03 81 49 7b 37 93 52 89 39 ff 78 8d 5d 79 14 52 11")
        );
        assert_eq!(
            localize_key(AuthProtocol::Sha1, &ku, &engine),
            hex("66 95 fe bc 92 88 e3 62 82 23 5f c7 15 1f 12 84 97 b3 8f 3f")
        );
    }

    #[test]
    fn rfc2104_hmac() {
        let mac = hmac96(AuthProtocol::Md5, &[0x0b; 16], b"Hi There");
        assert_eq!(mac.to_vec(), hex("92 94 72 7a 36 38 bb 1c 13 f4 8e f8"));
        // RFC 2202 test case 2 for HMAC-SHA-1.
        let mac = hmac96(AuthProtocol::Sha1, b"Jefe", b"what do ya want for nothing?");
        assert_eq!(mac.to_vec(), hex("ef fc df 6a e5 eb 2f a2 d2 74 16 d5"));
    }

    #[test]
    fn ciphers_round_trip() {
        let key = [7u8; 16];
        let data: Vec<u8> = (0..37).collect();
        let enc = des_cbc(&key, [1; 8], &data, true).expect("des");
        assert_eq!(enc.len(), 40);
        let dec = des_cbc(&key, [1; 8], &enc, false).expect("des");
        assert_eq!(&dec[..37], &data[..]);
        let enc = aes_cfb(&key, [2; 16], &data, true).expect("aes");
        assert_eq!(enc.len(), 37);
        assert_ne!(enc, data);
        assert_eq!(aes_cfb(&key, [2; 16], &enc, false).expect("aes"), data);
    }

    #[test]
    fn v3_messages_round_trip() {
        let h = V3Header {
            msg_id: 99,
            flags: FLAG_AUTH | FLAG_REPORTABLE,
            engine_id: vec![0x80, 0, 0x1f, 0x88, 4],
            boots: 3,
            time: 1234,
            user: b"lava".to_vec(),
            auth_params: vec![0; 12],
            priv_params: Vec::new(),
        };
        let scoped = encode_scoped(b"e", b"", &encode_pdu(TAG_GET, 5, &[]));
        let msg = encode_v3(&h, &scoped);
        let m = decode_v3(&msg).expect("decode");
        assert_eq!(m.header, h);
        assert_eq!(&msg[m.auth_at.clone()], &[0u8; 12]);
        assert_eq!(decode_scoped(&m.data).expect("scoped").request_id, 5);
        for cut in 0..msg.len() {
            let _ = decode_v3(&msg[..cut]);
        }
    }

    #[test]
    fn error_names() {
        assert_eq!(error_status_name(2), "noSuchName");
        assert_eq!(error_status_name(17), "notWritable");
        assert_eq!(error_status_name(99), "status 99");
    }
}
