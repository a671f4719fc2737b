//! Serial line settings as an admin writes them (`115200`, `"8N1"`, `"rtscts"`), shared by the
//! registry, the RFC 2217 codec's users and the port owner.

use std::fmt;
use std::str::FromStr;

/// Parity of a serial line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Parity {
    #[default]
    None,
    Odd,
    Even,
    Mark,
    Space,
}

/// Stop bits of a serial line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StopBits {
    #[default]
    One,
    OnePointFive,
    Two,
}

/// Flow control of a serial line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FlowControl {
    #[default]
    None,
    /// XON/XOFF in band.
    Software,
    /// RTS/CTS.
    Hardware,
}

/// Data bits, parity and stop bits, written `8N1`, `7E1`, `8N2`…
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Format {
    pub data_bits: u8,
    pub parity: Parity,
    pub stop_bits: StopBits,
}

impl Default for Format {
    fn default() -> Self {
        Format {
            data_bits: 8,
            parity: Parity::None,
            stop_bits: StopBits::One,
        }
    }
}

impl FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            format!("`{s}` is not a serial format; write data bits, parity (N/E/O/M/S) and stop bits, e.g. \"8N1\" or \"7E1\"")
        };
        let b = s.trim().as_bytes();
        if b.len() != 3 {
            return Err(bad());
        }
        let data_bits = match b[0] {
            b'5' => 5,
            b'6' => 6,
            b'7' => 7,
            b'8' => 8,
            _ => return Err(bad()),
        };
        let parity = match b[1].to_ascii_uppercase() {
            b'N' => Parity::None,
            b'E' => Parity::Even,
            b'O' => Parity::Odd,
            b'M' => Parity::Mark,
            b'S' => Parity::Space,
            _ => return Err(bad()),
        };
        let stop_bits = match b[2] {
            b'1' => StopBits::One,
            b'2' => StopBits::Two,
            _ => return Err(bad()),
        };
        Ok(Format {
            data_bits,
            parity,
            stop_bits,
        })
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = match self.parity {
            Parity::None => 'N',
            Parity::Odd => 'O',
            Parity::Even => 'E',
            Parity::Mark => 'M',
            Parity::Space => 'S',
        };
        let s = match self.stop_bits {
            StopBits::One => "1",
            StopBits::OnePointFive => "1.5",
            StopBits::Two => "2",
        };
        write!(f, "{}{}{}", self.data_bits, p, s)
    }
}

impl FromStr for FlowControl {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "none" | "" => Ok(FlowControl::None),
            "rtscts" | "hardware" => Ok(FlowControl::Hardware),
            "xonxoff" | "software" => Ok(FlowControl::Software),
            _ => Err(format!(
                "`{s}` is not a flow control; use \"none\", \"rtscts\" or \"xonxoff\""
            )),
        }
    }
}

impl fmt::Display for FlowControl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FlowControl::None => "none",
            FlowControl::Software => "xonxoff",
            FlowControl::Hardware => "rtscts",
        })
    }
}

/// Everything needed to configure a serial line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SerialSettings {
    pub baud: u32,
    pub format: Format,
    pub flow: FlowControl,
}

impl Default for SerialSettings {
    fn default() -> Self {
        SerialSettings {
            baud: 115_200,
            format: Format::default(),
            flow: FlowControl::None,
        }
    }
}

impl fmt::Display for SerialSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.baud, self.format)?;
        if self.flow != FlowControl::None {
            write!(f, " {}", self.flow)?;
        }
        Ok(())
    }
}

/// How a lava-serial port speaks to its TCP clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// RFC 854 telnet with RFC 2217 serial control; IAC escaped both ways.
    #[default]
    Telnet,
    /// Bytes untouched.
    Raw,
}

impl FromStr for Protocol {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "telnet" => Ok(Protocol::Telnet),
            "raw" => Ok(Protocol::Raw),
            _ => Err(format!(
                "`{s}` is not a protocol; use \"telnet\" or \"raw\""
            )),
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Telnet => "telnet",
            Protocol::Raw => "raw",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_round_trip() {
        for s in ["8N1", "7E1", "8O2", "5M1", "6S2"] {
            let f: Format = s.parse().expect("valid");
            assert_eq!(f.to_string(), s);
        }
        assert!("9N1".parse::<Format>().is_err());
        assert!("8X1".parse::<Format>().is_err());
        assert!("8N".parse::<Format>().is_err());
    }
}
