//! The `modbus-tcp` driver: relay boards that expose outlets as Modbus coils. Switching is one
//! Write Single Coil (function 05, 0xFF00 on / 0x0000 off), reading one Read Coils (function 01), each
//! over its own short TCP connection. The frames (MBAP header + PDU) are built and checked here.

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;

use lava_common::{ConfigError, Source};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use toml::Spanned;

use crate::config::Loaded;
use crate::driver::{DriverError, DriverFuture, OutletState, PowerDriver};
use crate::drivers::{numbered_outlets, outlet_number, port, required};

crate::pdu_keys! {
    /// The `modbus-tcp` keys as written.
    struct Raw {
        host: Option<Spanned<String>>,
        port: Option<Spanned<i64>>,
        unit: Option<Spanned<i64>>,
        coil_offset: Option<Spanned<i64>>,
        coils: Option<Spanned<i64>>,
    }
}

/// Function code: Read Coils.
pub const FC_READ_COILS: u8 = 0x01;
/// Function code: Write Single Coil.
pub const FC_WRITE_COIL: u8 = 0x05;

/// The `modbus-tcp` driver: outlet N is coil `N - 1 + coil_offset` of unit `unit`.
#[derive(Debug)]
pub struct ModbusDriver {
    host: String,
    port: u16,
    unit: u8,
    coil_offset: u32,
    coils: Option<u32>,
    next_tid: AtomicU16,
}

/// Reads the `modbus-tcp` keys.
pub fn load(src: &Source) -> Result<Loaded, ConfigError> {
    let raw: Raw = src.parse()?;
    let common = raw.common(src)?;
    let host = required(
        src,
        &raw.host,
        "host",
        "add host = \"relay01.lab\" (the relay board's address)",
    )?;
    let int = |key: &str,
               v: &Option<Spanned<i64>>,
               range: std::ops::RangeInclusive<i64>,
               default: i64,
               hint: &str| {
        match v {
            None => Ok(default),
            Some(v) if range.contains(v.get_ref()) => Ok(*v.get_ref()),
            Some(v) => Err(src.invalid(
                Some(v.span()),
                key,
                format!("{} is out of range", v.get_ref()),
                Some(hint.to_owned()),
            )),
        }
    };
    let port = port(
        src,
        &raw.port,
        502,
        "TCP",
        "use 1..65535 (Modbus/TCP is 502)",
    )?;
    let unit = int(
        "unit",
        &raw.unit,
        0..=255,
        1,
        "a unit (slave) id is 0..255, most boards use 1",
    )?;
    let coil_offset = int(
        "coil_offset",
        &raw.coil_offset,
        0..=65_535,
        0,
        "use 0..65535: outlet N is coil N-1+coil_offset",
    )?;
    let coils = match &raw.coils {
        None => common.outlet_count,
        Some(_) => Some(int(
            "coils",
            &raw.coils,
            1..=65_536,
            1,
            "the number of relay coils, 1..65536",
        )? as u32),
    };
    if let Some(count) = coils {
        if i64::from(count) - 1 + coil_offset > 65_535 {
            return Err(src.invalid(
                raw.coils
                    .as_ref()
                    .or(raw.coil_offset.as_ref())
                    .map(Spanned::span),
                "coils",
                format!("coils = {count} with coil_offset = {coil_offset} goes past coil 65535"),
                Some("lower coils or coil_offset".into()),
            ));
        }
    }
    let hint = match coils {
        Some(c) => format!("use outlets 1..{c} (outlet N is coil N-1+coil_offset)"),
        None => "outlets are 1, 2, 3, … (outlet N is coil N-1+coil_offset)".to_owned(),
    };
    for o in numbered_outlets(src, &raw.outlets, &hint)? {
        if let Some(c) = coils.filter(|&c| o.number > c) {
            return Err(src.invalid(
                Some(o.span),
                format!("outlets.{}", o.key),
                format!("outlet {} is beyond coils = {c}", o.number),
                Some(hint),
            ));
        }
    }
    let driver = ModbusDriver {
        host,
        port,
        unit: unit as u8,
        coil_offset: coil_offset as u32,
        coils,
        next_tid: AtomicU16::new(std::process::id() as u16),
    };
    Ok(Loaded {
        common,
        driver: Arc::new(driver),
    })
}

impl ModbusDriver {
    fn coil(&self, outlet: &str) -> Result<u16, DriverError> {
        let n = outlet_number(outlet).map_err(DriverError::Refused)?;
        if let Some(c) = self.coils {
            if n > c {
                return Err(DriverError::Refused(format!(
                    "outlet {n} is beyond the board's {c} coils"
                )));
            }
        }
        u16::try_from(n - 1 + self.coil_offset)
            .map_err(|_| DriverError::Refused(format!("outlet {n} maps past coil 65535")))
    }

    /// One request on a fresh connection; returns the response PDU (function code onwards).
    async fn transact(&self, pdu: &[u8]) -> Result<Vec<u8>, DriverError> {
        let tid = self.next_tid.fetch_add(1, Ordering::Relaxed);
        let frame = encode_frame(tid, self.unit, pdu);
        let mut stream = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| DriverError::Unreachable(format!("{}:{}: {e}", self.host, self.port)))?;
        let _ = stream.set_nodelay(true);
        stream
            .write_all(&frame)
            .await
            .map_err(|e| DriverError::Unreachable(format!("{}:{}: {e}", self.host, self.port)))?;
        loop {
            let mut header = [0u8; 7];
            stream.read_exact(&mut header).await.map_err(|e| {
                DriverError::BadAnswer(format!("connection ended before a full Modbus answer: {e}"))
            })?;
            let (got_tid, len) = parse_header(&header).map_err(DriverError::BadAnswer)?;
            let mut body = vec![0u8; len - 1];
            stream.read_exact(&mut body).await.map_err(|e| {
                DriverError::BadAnswer(format!("connection ended inside a Modbus answer: {e}"))
            })?;
            if got_tid != tid {
                tracing::debug!(pdu_host = %self.host, got_tid, tid, "ignoring a Modbus answer to another transaction");
                continue;
            }
            if header[6] != self.unit {
                return Err(DriverError::BadAnswer(format!(
                    "answer from unit {} instead of {}",
                    header[6], self.unit
                )));
            }
            return check_pdu(pdu[0], body);
        }
    }
}

/// MBAP header + PDU.
pub fn encode_frame(tid: u16, unit: u8, pdu: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(7 + pdu.len());
    f.extend_from_slice(&tid.to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(&((pdu.len() + 1) as u16).to_be_bytes());
    f.push(unit);
    f.extend_from_slice(pdu);
    f
}

/// Checks an MBAP header; returns the transaction id and the length (unit id + PDU).
pub fn parse_header(h: &[u8; 7]) -> Result<(u16, usize), String> {
    let tid = u16::from_be_bytes([h[0], h[1]]);
    let protocol = u16::from_be_bytes([h[2], h[3]]);
    let len = usize::from(u16::from_be_bytes([h[4], h[5]]));
    if protocol != 0 {
        return Err(format!("not a Modbus answer (protocol id {protocol})"));
    }
    if !(2..=254).contains(&len) {
        return Err(format!("Modbus answer with impossible length {len}"));
    }
    Ok((tid, len))
}

/// The Modbus exception names (Modbus Application Protocol v1.1b3 §7).
pub fn exception_name(code: u8) -> String {
    match code {
        1 => "ILLEGAL FUNCTION".into(),
        2 => "ILLEGAL DATA ADDRESS".into(),
        3 => "ILLEGAL DATA VALUE".into(),
        4 => "SERVER DEVICE FAILURE".into(),
        5 => "ACKNOWLEDGE".into(),
        6 => "SERVER DEVICE BUSY".into(),
        8 => "MEMORY PARITY ERROR".into(),
        10 => "GATEWAY PATH UNAVAILABLE".into(),
        11 => "GATEWAY TARGET DEVICE FAILED TO RESPOND".into(),
        other => format!("exception {other}"),
    }
}

fn check_pdu(function: u8, body: Vec<u8>) -> Result<Vec<u8>, DriverError> {
    match body.first() {
        Some(&f) if f == function => Ok(body),
        Some(&f) if f == function | 0x80 => Err(DriverError::Refused(format!(
            "Modbus exception {}",
            body.get(1)
                .map_or_else(|| "without a code".to_owned(), |&c| exception_name(c))
        ))),
        Some(&f) => Err(DriverError::BadAnswer(format!(
            "Modbus answer with function {f:#04x} to a request with {function:#04x}"
        ))),
        None => Err(DriverError::BadAnswer("empty Modbus answer".into())),
    }
}

impl PowerDriver for ModbusDriver {
    fn kind(&self) -> &'static str {
        "modbus-tcp"
    }

    fn set(&self, outlet: &str, state: OutletState) -> DriverFuture<'_, ()> {
        let coil = self.coil(outlet);
        Box::pin(async move {
            let coil = coil?;
            let value: u16 = match state {
                OutletState::On => 0xff00,
                OutletState::Off => 0x0000,
            };
            let mut pdu = vec![FC_WRITE_COIL];
            pdu.extend_from_slice(&coil.to_be_bytes());
            pdu.extend_from_slice(&value.to_be_bytes());
            tracing::debug!(pdu_host = %self.host, coil, %state, "Modbus write coil");
            let answer = self.transact(&pdu).await?;
            if answer != pdu {
                return Err(DriverError::BadAnswer(format!(
                    "write coil answer {answer:02x?} does not echo the request {pdu:02x?}"
                )));
            }
            Ok(())
        })
    }

    fn get(&self, outlet: &str) -> DriverFuture<'_, OutletState> {
        let coil = self.coil(outlet);
        Box::pin(async move {
            let coil = coil?;
            let mut pdu = vec![FC_READ_COILS];
            pdu.extend_from_slice(&coil.to_be_bytes());
            pdu.extend_from_slice(&1u16.to_be_bytes());
            let answer = self.transact(&pdu).await?;
            match answer.as_slice() {
                [_, 1, bits] => Ok(if bits & 1 == 1 {
                    OutletState::On
                } else {
                    OutletState::Off
                }),
                other => Err(DriverError::BadAnswer(format!(
                    "read coils answer {other:02x?} is not one byte of coil status"
                ))),
            }
        })
    }

    fn can_read(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames() {
        assert_eq!(
            encode_frame(0x0102, 1, &[FC_WRITE_COIL, 0, 4, 0xff, 0]),
            [1, 2, 0, 0, 0, 6, 1, 5, 0, 4, 0xff, 0]
        );
        assert_eq!(parse_header(&[1, 2, 0, 0, 0, 6, 1]), Ok((0x0102, 6)));
        assert!(parse_header(&[1, 2, 0, 1, 0, 6, 1]).is_err());
        assert!(parse_header(&[1, 2, 0, 0, 0xff, 0xff, 1]).is_err());
        assert!(parse_header(&[1, 2, 0, 0, 0, 1, 1]).is_err());
    }

    #[test]
    fn exceptions_are_refusals() {
        let e = check_pdu(FC_WRITE_COIL, vec![0x85, 2]).expect_err("exception");
        assert!(e.to_string().contains("ILLEGAL DATA ADDRESS"), "{e}");
        assert!(matches!(
            check_pdu(FC_WRITE_COIL, vec![0x03, 0]),
            Err(DriverError::BadAnswer(_))
        ));
    }
}
