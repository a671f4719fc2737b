//! Located configuration errors: every problem found in a config file names the file, the line and
//! the key, and says how to fix it, so an admin with 200 boards never has to guess which one is wrong.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::DeserializeOwned;

/// A config file that could not be used, with enough context for the admin to fix it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read at all.
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file was read but something in it is wrong.
    #[error("{}", Located { path, line: *line, key, message, hint: hint.as_deref() })]
    Invalid {
        path: PathBuf,
        /// 1-based line number; 0 when the problem is the file as a whole.
        line: usize,
        /// Dotted key path, e.g. `boards.panda01.port`.
        key: String,
        message: String,
        hint: Option<String>,
    },
}

struct Located<'a> {
    path: &'a Path,
    line: usize,
    key: &'a str,
    message: &'a str,
    hint: Option<&'a str>,
}

impl fmt::Display for Located<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if self.line > 0 {
            write!(f, ":{}", self.line)?;
        }
        if !self.key.is_empty() {
            write!(f, ": key `{}`", self.key)?;
        }
        write!(f, ": {}", self.message)?;
        if let Some(hint) = self.hint {
            write!(f, " (fix: {hint})")?;
        }
        Ok(())
    }
}

impl ConfigError {
    /// The line the error points at (0 when it has none).
    pub fn line(&self) -> usize {
        match self {
            ConfigError::Read { .. } => 0,
            ConfigError::Invalid { line, .. } => *line,
        }
    }

    /// The dotted key the error points at ("" when it has none).
    pub fn key(&self) -> &str {
        match self {
            ConfigError::Read { .. } => "",
            ConfigError::Invalid { key, .. } => key,
        }
    }
}

/// The text of one config file, kept so that spans can be turned into lines and keys.
#[derive(Debug, Clone)]
pub struct Source {
    pub path: PathBuf,
    pub text: String,
}

impl Source {
    /// Reads a config file.
    pub fn read(path: &Path) -> Result<Source, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Ok(Source {
            path: path.to_owned(),
            text,
        })
    }

    /// Wraps text that did not come from disk (tests, built-in defaults).
    pub fn from_text(path: impl Into<PathBuf>, text: impl Into<String>) -> Source {
        Source {
            path: path.into(),
            text: text.into(),
        }
    }

    /// Deserializes the whole file, turning TOML and schema errors into located ones.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, ConfigError> {
        toml::from_str(&self.text).map_err(|e| self.from_toml(&e))
    }

    /// The 1-based line that a byte offset falls on.
    pub fn line_of(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    /// An error located at `span`, for a problem found after parsing (duplicate port, …).
    pub fn invalid(
        &self,
        span: Option<Range<usize>>,
        key: impl Into<String>,
        message: impl Into<String>,
        hint: Option<String>,
    ) -> ConfigError {
        ConfigError::Invalid {
            path: self.path.clone(),
            line: span.map_or(0, |s| self.line_of(s.start)),
            key: key.into(),
            message: message.into(),
            hint,
        }
    }

    /// Converts a TOML/serde error; the key is rebuilt from the table header above the span and the
    /// key text at the span, since the TOML error itself carries only a span.
    pub fn from_toml(&self, err: &toml::de::Error) -> ConfigError {
        let message = err.message().trim().to_owned();
        let span = err.span();
        let key = span.clone().map(|s| self.key_at(s)).unwrap_or_default();
        let hint = hint_for(&message);
        self.invalid(span, key, message, hint)
    }

    /// The dotted key path of the item at `span`: the nearest `[table]` header above it, plus the
    /// bare key written at the start of the span's line (or at the span itself).
    pub fn key_at(&self, span: Range<usize>) -> String {
        let start = span.start.min(self.text.len());
        let before = &self.text[..start];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let line_end = self.text[start..]
            .find('\n')
            .map_or(self.text.len(), |i| start + i);
        let line = &self.text[line_start..line_end];
        let table = self.text[..line_start]
            .lines()
            .rev()
            .find_map(header_name)
            .unwrap_or_default();
        let trimmed = line.trim_start();
        if let Some(header) = header_name(trimmed) {
            // The error is about the header itself.
            return header;
        }
        let spanned = self
            .text
            .get(span.clone())
            .unwrap_or("")
            .trim()
            .trim_matches('"');
        let line_key = trimmed
            .split('=')
            .next()
            .unwrap_or("")
            .trim()
            .trim_matches('"');
        let mut key = line_key.to_owned();
        // For an inline table (`adapter = { serail = "x" }`) the span points inside the line.
        if is_bare_key(spanned) && spanned != line_key && line.contains('{') {
            key = format!("{line_key}.{spanned}");
        }
        match (table.is_empty(), key.is_empty()) {
            (true, _) => key,
            (false, true) => table,
            (false, false) => format!("{table}.{key}"),
        }
    }
}

/// The dotted name of a `[table]` or `[[array]]` header line, quotes and spaces removed.
fn header_name(line: &str) -> Option<String> {
    let t = line.trim();
    t.starts_with('[').then(|| {
        t.trim_start_matches('[')
            .split(']')
            .next()
            .unwrap_or("")
            .trim()
            .replace(['"', ' '], "")
    })
}

fn is_bare_key(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn hint_for(message: &str) -> Option<String> {
    if let Some(rest) = message.strip_prefix("unknown field") {
        let expected = rest.split("expected").nth(1).map(str::trim);
        return Some(match expected {
            Some(list) => format!("remove it or use one of the known keys: {list}"),
            None => "remove it".to_owned(),
        });
    }
    if message.starts_with("missing field") {
        return Some("add the key".to_owned());
    }
    if message.starts_with("invalid type") {
        return Some("check the value's type (quotes for strings, none for numbers)".to_owned());
    }
    None
}

/// Parses a human duration: `500ms`, `5s`, `2m`, `1h`, or a bare number of seconds (`5`, `0.5`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num.parse().map_err(|_| {
        format!("`{text}` is not a duration; write e.g. \"500ms\", \"5s\" or \"2m\"")
    })?;
    let scale = match unit.trim() {
        "ms" => 0.001,
        "" | "s" | "sec" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        other => {
            return Err(format!(
                "unknown unit `{other}` in `{text}`; use ms, s, m or h"
            ))
        }
    };
    let secs = value * scale;
    if !secs.is_finite() || !(0.0..=86_400.0 * 365.0).contains(&secs) {
        return Err(format!("`{text}` is out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// A duration read from TOML either as a string (`"5s"`) or a number of seconds (`5`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigDuration(pub Duration);

impl<'de> serde::Deserialize<'de> for ConfigDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = ConfigDuration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as \"5s\" or \"500ms\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                parse_duration(v).map(ConfigDuration).map_err(E::custom)
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
                u64::try_from(v)
                    .map(|s| ConfigDuration(Duration::from_secs(s)))
                    .map_err(|_| E::custom("a duration cannot be negative"))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Self::Value, E> {
                parse_duration(&v.to_string())
                    .map(ConfigDuration)
                    .map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Doc {
        a: Option<u32>,
        t: Option<Inner>,
    }
    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        x: Option<u32>,
        i: Option<Leaf>,
    }
    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Leaf {
        y: Option<u32>,
    }

    #[test]
    fn unknown_key_names_line_and_table() {
        let src = Source::from_text("f.toml", "a = 1\n[t]\nx = 2\nzz = 3\n");
        let e = src.parse::<Doc>().expect_err("must fail");
        assert_eq!(e.line(), 4);
        assert_eq!(e.key(), "t.zz");
        let text = e.to_string();
        assert!(
            text.starts_with("f.toml:4: key `t.zz`: unknown field"),
            "{text}"
        );
        assert!(text.contains("fix:"), "{text}");
    }

    #[test]
    fn unknown_key_in_inline_table() {
        let src = Source::from_text("f.toml", "[t]\ni = { y = 1, q = 2 }\n");
        let e = src.parse::<Doc>().expect_err("must fail");
        assert_eq!(e.line(), 2);
        assert_eq!(e.key(), "t.i.q");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("five").is_err());
        assert!(parse_duration("5 fortnights").is_err());
    }
}
