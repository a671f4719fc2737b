//! The PDU drivers, and the dispatch from a config's `driver` key to the one that reads it.

pub mod apc_telnet;
pub mod command;
pub mod http;
pub mod modbus;
pub mod snmp;

use std::collections::BTreeMap;
use std::ops::Range;

use lava_common::{ConfigError, Source};
use toml::Spanned;

use crate::config::{key_span, Loaded};

/// Every value the `driver` key accepts.
pub const NAMES: &[&str] = &[
    "command",
    "snmp",
    "apc-snmp",
    "apc-telnet",
    "modbus-tcp",
    "http",
];

/// Builds the driver a config names; `span` is where the `driver` value is written.
pub fn load(driver: &str, span: Range<usize>, src: &Source) -> Result<Loaded, ConfigError> {
    match driver {
        "command" => command::load(src),
        "snmp" | "apc-snmp" => snmp::load(src),
        "apc-telnet" => apc_telnet::load(src),
        "modbus-tcp" => modbus::load(src),
        "http" => http::load(src),
        other => Err(src.invalid(
            Some(span),
            "driver",
            format!("unknown driver `{other}`"),
            Some(format!("use one of: {}", NAMES.join(", "))),
        )),
    }
}

/// A string key a driver cannot do without (`host`, SNMPv3's `username`): trimmed, not empty.
/// `hint` says what to write, for both the missing and the empty key.
pub(crate) fn required(
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

/// The `port` key of a network driver: 1..65535, `default` when absent; `transport` ("TCP",
/// "UDP") and `hint` (the protocol's usual port) go into the error.
pub(crate) fn port(
    src: &Source,
    v: &Option<Spanned<i64>>,
    default: u16,
    transport: &str,
    hint: &str,
) -> Result<u16, ConfigError> {
    let Some(p) = v else {
        return Ok(default);
    };
    u16::try_from(*p.get_ref())
        .ok()
        .filter(|&p| p > 0)
        .ok_or_else(|| {
            src.invalid(
                Some(p.span()),
                "port",
                format!("{} is not a {transport} port", p.get_ref()),
                Some(hint.into()),
            )
        })
}

/// An outlet as the API gives it ("3") → its number, for the drivers whose outlets are numbers.
pub(crate) fn outlet_number(outlet: &str) -> Result<u32, String> {
    match outlet.trim().parse::<u32>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("outlet `{outlet}` is not a number from 1 up")),
    }
}

/// An `[outlets]` key of a driver whose outlets are numbers, for the driver's own bounds.
pub(crate) struct NumberedOutlet<'a> {
    pub key: &'a str,
    pub number: u32,
    /// Where the key is written.
    pub span: Range<usize>,
}

/// For the drivers whose outlets are numbers: every `[outlets]` key must be one (`hint` says how
/// the PDU numbers them).
pub(crate) fn numbered_outlets<'a>(
    src: &Source,
    outlets: &'a Option<Spanned<BTreeMap<String, String>>>,
    hint: &str,
) -> Result<Vec<NumberedOutlet<'a>>, ConfigError> {
    let Some(outlets) = outlets else {
        return Ok(Vec::new());
    };
    outlets
        .get_ref()
        .keys()
        .map(|key| {
            let span = key_span(src, outlets.span(), key);
            match outlet_number(key) {
                Ok(number) => Ok(NumberedOutlet { key, number, span }),
                Err(e) => {
                    Err(src.invalid(Some(span), format!("outlets.{key}"), e, Some(hint.into())))
                }
            }
        })
        .collect()
}
