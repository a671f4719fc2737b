//! One PDU's config file, `/etc/lava-power/NAME.toml`: the keys every driver shares (delays, retries,
//! timeouts, outlet names) and the dispatch to the driver that reads its own keys, all validated at
//! load with errors naming file, line and key.

use std::collections::BTreeMap;
use std::time::Duration;

use std::path::Path;
use std::sync::Arc;

use lava_common::config::ConfigDuration;
use lava_common::{ConfigError, Source};
use toml::Spanned;

/// The keys every driver's config has, as written (see `pdu_keys!`).
#[derive(Debug, Clone)]
pub struct Common {
    /// off → delay → on.
    pub reboot_delay: Duration,
    /// Extra attempts after the first failed one.
    pub retries: u32,
    pub retry_delay: Duration,
    /// One attempt's limit.
    pub timeout: Duration,
    /// The whole request's limit (attempts, retries and a reboot's delay included).
    pub deadline: Duration,
    /// Outlet numbers/names this PDU has, when known (`outlet_count` or the driver's own).
    pub outlet_count: Option<u32>,
    /// Optional names of outlets: outlet → name.
    pub outlets: BTreeMap<String, String>,
}

/// Declares a driver's raw config struct: the common keys plus the driver's own, with unknown keys
/// rejected (so a typo names its line). Use `raw.common(src)` to validate the common part.
#[macro_export]
macro_rules! pdu_keys {
    ($(#[$meta:meta])* $vis:vis struct $name:ident { $($(#[$fmeta:meta])* $fvis:vis $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        $vis struct $name {
            /// Read by the dispatch before this struct; kept so the key is not "unknown".
            #[allow(dead_code)]
            pub driver: String,
            pub reboot_delay: Option<toml::Spanned<lava_common::config::ConfigDuration>>,
            pub retries: Option<toml::Spanned<i64>>,
            pub retry_delay: Option<toml::Spanned<lava_common::config::ConfigDuration>>,
            pub timeout: Option<toml::Spanned<lava_common::config::ConfigDuration>>,
            pub deadline: Option<toml::Spanned<lava_common::config::ConfigDuration>>,
            pub outlet_count: Option<toml::Spanned<i64>>,
            pub outlets: Option<toml::Spanned<std::collections::BTreeMap<String, String>>>,
            $($(#[$fmeta])* $fvis $field: $ty),*
        }

        impl $name {
            /// Validates the keys every driver shares.
            pub fn common(
                &self,
                src: &lava_common::Source,
            ) -> Result<$crate::config::Common, lava_common::ConfigError> {
                $crate::config::common(
                    src,
                    $crate::config::CommonRaw {
                        reboot_delay: self.reboot_delay.as_ref(),
                        retries: self.retries.as_ref(),
                        retry_delay: self.retry_delay.as_ref(),
                        timeout: self.timeout.as_ref(),
                        deadline: self.deadline.as_ref(),
                        outlet_count: self.outlet_count.as_ref(),
                        outlets: self.outlets.as_ref(),
                    },
                )
            }
        }
    };
}

/// Borrowed common keys, as `pdu_keys!` structs hold them.
pub struct CommonRaw<'a> {
    pub reboot_delay: Option<&'a Spanned<ConfigDuration>>,
    pub retries: Option<&'a Spanned<i64>>,
    pub retry_delay: Option<&'a Spanned<ConfigDuration>>,
    pub timeout: Option<&'a Spanned<ConfigDuration>>,
    pub deadline: Option<&'a Spanned<ConfigDuration>>,
    pub outlet_count: Option<&'a Spanned<i64>>,
    pub outlets: Option<&'a Spanned<BTreeMap<String, String>>>,
}

/// Default off → on delay of a reboot.
pub const DEFAULT_REBOOT_DELAY: Duration = Duration::from_secs(5);
/// Default number of extra attempts after a failed one.
pub const DEFAULT_RETRIES: u32 = 2;
/// Default pause between attempts.
pub const DEFAULT_RETRY_DELAY: Duration = Duration::from_secs(1);
/// Default per-attempt timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default request deadline: answers before LAVA's 30 s pdu-reboot timeout.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(25);

/// A loaded PDU: the shared keys and the driver built from its own keys.
pub struct Loaded {
    pub common: Common,
    pub driver: Arc<dyn crate::driver::PowerDriver>,
}

/// The largest `outlet_count` accepted.
pub const MAX_OUTLETS: i64 = 4096;

/// Validates the keys every driver shares; each error names the file, the line and the key.
pub fn common(src: &Source, raw: CommonRaw) -> Result<Common, ConfigError> {
    let dur = |v: Option<&Spanned<ConfigDuration>>, default: Duration| {
        v.map_or(default, |d| d.get_ref().0)
    };
    let reboot_delay = dur(raw.reboot_delay, DEFAULT_REBOOT_DELAY);
    let retry_delay = dur(raw.retry_delay, DEFAULT_RETRY_DELAY);
    let timeout = dur(raw.timeout, DEFAULT_TIMEOUT);
    let deadline = dur(raw.deadline, DEFAULT_DEADLINE);
    let retries = match raw.retries {
        None => DEFAULT_RETRIES,
        Some(r) => match u32::try_from(*r.get_ref()) {
            Ok(n) if n <= 100 => n,
            _ => {
                return Err(src.invalid(
                    Some(r.span()),
                    "retries",
                    format!("{} is not a number of retries", r.get_ref()),
                    Some("use 0 to 100".into()),
                ))
            }
        },
    };
    if let Some(t) = raw.timeout {
        if timeout.is_zero() {
            return Err(src.invalid(
                Some(t.span()),
                "timeout",
                "a zero timeout would fail every attempt",
                Some("use e.g. \"10s\"".into()),
            ));
        }
    }
    if deadline <= reboot_delay {
        let (span, key) = match raw.deadline {
            Some(d) => (Some(d.span()), "deadline"),
            None => (raw.reboot_delay.map(Spanned::span), "reboot_delay"),
        };
        return Err(src.invalid(
            span,
            key,
            format!(
                "the request deadline ({deadline:?}) must be longer than reboot_delay ({reboot_delay:?}), or no reboot could finish"
            ),
            Some("shorten reboot_delay or lengthen deadline".into()),
        ));
    }
    if deadline.is_zero() {
        return Err(src.invalid(
            raw.deadline.map(Spanned::span),
            "deadline",
            "a zero deadline would fail every request",
            Some("use e.g. \"25s\"".into()),
        ));
    }
    let outlet_count = match raw.outlet_count {
        None => None,
        Some(c) => {
            let n = *c.get_ref();
            if !(1..=MAX_OUTLETS).contains(&n) {
                return Err(src.invalid(
                    Some(c.span()),
                    "outlet_count",
                    format!("{n} outlets is not a PDU"),
                    Some(format!("use 1 to {MAX_OUTLETS}")),
                ));
            }
            u32::try_from(n).ok()
        }
    };
    let mut outlets = BTreeMap::new();
    if let Some(map) = raw.outlets {
        for (outlet, name) in map.get_ref() {
            let at = |msg: String, hint: &str| {
                let span = key_span(src, map.span(), outlet);
                src.invalid(
                    Some(span),
                    format!("outlets.{outlet}"),
                    msg,
                    Some(hint.to_owned()),
                )
            };
            let id = normalize_outlet(outlet)
                .map_err(|e| at(e, "outlets are numbers or short names"))?;
            if let (Some(count), Ok(n)) = (outlet_count, id.parse::<u64>()) {
                if n == 0 || n > u64::from(count) {
                    return Err(at(
                        format!("outlet {id} is out of range: this PDU has outlets 1 to {count}"),
                        "fix the outlet number or outlet_count",
                    ));
                }
            }
            if name.trim().is_empty() {
                return Err(at(
                    "an outlet name cannot be empty".into(),
                    "name it or remove the line",
                ));
            }
            outlets.insert(id, name.clone());
        }
    }
    Ok(Common {
        reboot_delay,
        retries,
        retry_delay,
        timeout,
        deadline,
        outlet_count,
        outlets,
    })
}

/// The span of `key = ...` inside a table's span (for errors about one outlet line), or the
/// table's span when the key's line cannot be found; the drivers that check outlet keys use it too.
pub(crate) fn key_span(
    src: &Source,
    table: std::ops::Range<usize>,
    key: &str,
) -> std::ops::Range<usize> {
    // `key = …`, the key bare or quoted.
    let assigns = |text: &str| {
        text.split_once('=')
            .is_some_and(|(k, _)| k.trim().trim_matches(['"', '\'']) == key)
    };
    let start = table.start.min(src.text.len());
    let mut offset = start;
    for line in src.text[start..].split_inclusive('\n') {
        // A line of its own, or one entry of an inline table: `outlets = { "3" = "x" }`.
        if assigns(line) || line.split([',', '{']).any(assigns) {
            return offset..offset + line.len();
        }
        offset += line.len();
    }
    table
}

/// The canonical form of an outlet id: numbers lose leading zeros (`04` is `4`, as pdudaemon's
/// TCP protocol reads it), names are limited to letters, digits, `.`, `_`, `-` (they end up in
/// command lines and URLs).
pub fn normalize_outlet(outlet: &str) -> Result<String, String> {
    let o = outlet.trim();
    if o.is_empty() {
        return Err("an outlet cannot be empty".into());
    }
    if o.len() > 64 {
        return Err(format!("outlet `{o}` is longer than 64 characters"));
    }
    if o.bytes().all(|b| b.is_ascii_digit()) {
        return match o.parse::<u64>() {
            Ok(n) => Ok(n.to_string()),
            Err(_) => Err(format!("outlet `{o}` is out of range")),
        };
    }
    if !o
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(format!(
            "outlet `{o}` has characters other than letters, digits, `.`, `_` and `-`"
        ));
    }
    Ok(o.to_owned())
}

impl Common {
    /// The outlet a request names: its canonical id, or the outlet whose name it is. Outlets
    /// beyond `outlet_count` are refused; without `outlet_count` any well-formed id goes to the
    /// driver.
    pub fn resolve(&self, outlet: &str) -> Result<String, String> {
        if let Some((id, _)) = self
            .outlets
            .iter()
            .find(|(_, name)| name.as_str() == outlet)
        {
            return Ok(id.clone());
        }
        let id = normalize_outlet(outlet)?;
        if let Some(count) = self.outlet_count {
            match id.parse::<u64>() {
                Ok(n) if n >= 1 && n <= u64::from(count) => {}
                Ok(_) => return Err(format!("no outlet {id}: this PDU has outlets 1 to {count}")),
                Err(_) if self.outlets.contains_key(&id) => {}
                Err(_) => return Err(format!("no outlet named `{id}` on this PDU")),
            }
        }
        Ok(id)
    }

    /// The outlets to list: 1..=outlet_count and every named one.
    pub fn known_outlets(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.outlets.keys().cloned().collect();
        if let Some(count) = self.outlet_count {
            for n in 1..=count {
                let id = n.to_string();
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
        }
        ids.sort_by(|a, b| match (a.parse::<u64>(), b.parse::<u64>()) {
            (Ok(x), Ok(y)) => x.cmp(&y),
            (Ok(_), Err(_)) => std::cmp::Ordering::Less,
            (Err(_), Ok(_)) => std::cmp::Ordering::Greater,
            (Err(_), Err(_)) => a.cmp(b),
        });
        ids
    }
}

/// The one key read before the driver is known.
#[derive(serde::Deserialize)]
struct DriverKey {
    driver: Option<Spanned<String>>,
}

/// Loads `/etc/lava-power/NAME.toml`: the PDU's name (the file's stem) and its driver.
pub fn load(path: &Path) -> Result<(String, Loaded), ConfigError> {
    let src = Source::read(path)?;
    let name = pdu_name(&src)?;
    Ok((name, load_source(&src)?))
}

/// The PDU name a config file gives: its stem, which must be usable as a socket name.
pub fn pdu_name(src: &Source) -> Result<String, ConfigError> {
    let stem = src
        .path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    valid_pdu_name(&stem).map_err(|e| {
        src.invalid(
            None,
            "",
            format!("the file name gives the PDU's name, and {e}"),
            Some("rename the file, e.g. pdu01.toml".into()),
        )
    })?;
    Ok(stem)
}

/// Whether a PDU name can be a socket file name and a URL segment.
pub fn valid_pdu_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 100 {
        return Err(format!("`{name}` is not 1 to 100 characters"));
    }
    if name.starts_with('.')
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(format!(
            "`{name}` may only have letters, digits, `.`, `_`, `-` (and not start with `.`)"
        ));
    }
    Ok(())
}

/// Loads a PDU config from text already read: reads `driver` and hands the file to that driver.
pub fn load_source(src: &Source) -> Result<Loaded, ConfigError> {
    let key: DriverKey = toml::from_str(&src.text).map_err(|e| src.from_toml(&e))?;
    let Some(driver) = key.driver else {
        return Err(src.invalid(
            None,
            "driver",
            "missing field `driver`",
            Some(format!(
                "add e.g. `driver = \"command\"`; drivers: {}",
                crate::drivers::NAMES.join(", ")
            )),
        ));
    };
    crate::drivers::load(driver.get_ref(), driver.span(), src).map_err(missing_key)
}

/// A missing key is reported by the TOML parser at the top of the file under whatever key is
/// written there; name the missing key itself instead.
fn missing_key(e: ConfigError) -> ConfigError {
    match e {
        ConfigError::Invalid {
            path,
            message,
            hint,
            ..
        } if message.starts_with("missing field `") => {
            let key = message
                .trim_start_matches("missing field `")
                .split('`')
                .next()
                .unwrap_or("")
                .to_owned();
            ConfigError::Invalid {
                path,
                line: 0,
                key,
                message,
                hint,
            }
        }
        other => other,
    }
}
