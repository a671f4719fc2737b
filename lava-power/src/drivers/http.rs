//! The `http` driver: the many HTTP relays and Tasmota/Shelly-style devices, switched by a templated
//! GET or POST (`{outlet}`, `{state}`, `{host}` placeholders) whose status is checked, and read by an
//! optional state URL whose JSON answer is looked up with a JSON pointer. Plain `http://` only (no TLS
//! stack here); a small HTTP/1.1 client over one short TCP connection per request.

use std::sync::Arc;

use lava_common::{ConfigError, Source};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use toml::Spanned;

use crate::config::Loaded;
use crate::driver::{DriverError, DriverFuture, OutletState, PowerDriver};

crate::pdu_keys! {
    /// The `http` keys as written.
    struct Raw {
        host: Option<Spanned<String>>,
        url: Option<Spanned<String>>,
        on_url: Option<Spanned<String>>,
        off_url: Option<Spanned<String>>,
        on_state: Option<Spanned<String>>,
        off_state: Option<Spanned<String>>,
        method: Option<Spanned<String>>,
        body: Option<Spanned<String>>,
        content_type: Option<Spanned<String>>,
        expect_status: Option<Spanned<i64>>,
        state_url: Option<Spanned<String>>,
        state_pointer: Option<Spanned<String>>,
        state_on_value: Option<Spanned<String>>,
        state_off_value: Option<Spanned<String>>,
        username: Option<Spanned<String>>,
        password: Option<Spanned<String>>,
    }
}

/// The largest answer read from a device.
const MAX_RESPONSE: usize = 1 << 20;

/// The `http` driver.
#[derive(Debug)]
pub struct HttpDriver {
    host: String,
    on_url: String,
    off_url: String,
    on_state: String,
    off_state: String,
    method: &'static str,
    body: Option<String>,
    content_type: String,
    expect_status: u16,
    state: Option<StateRead>,
    authorization: Option<String>,
}

#[derive(Debug)]
struct StateRead {
    url: String,
    pointer: Option<String>,
    on: String,
    off: String,
}

/// Reads the `http` keys.
pub fn load(src: &Source) -> Result<Loaded, ConfigError> {
    let raw: Raw = src.parse()?;
    let common = raw.common(src)?;
    let text = |v: &Option<Spanned<String>>| v.as_ref().map(|s| s.get_ref().clone());
    let host = text(&raw.host).unwrap_or_default();
    let on_state = text(&raw.on_state).unwrap_or_else(|| "on".to_owned());
    let off_state = text(&raw.off_state).unwrap_or_else(|| "off".to_owned());

    let check_url = |key: &str, v: &Spanned<String>| -> Result<String, ConfigError> {
        let t = v.get_ref().trim().to_owned();
        let sample = fill(&t, &host, "1", &on_state);
        check_placeholders(&t).and_then(|()| parse_url(&sample).map(|_| ())).map_err(|e| {
            src.invalid(
                Some(v.span()),
                key,
                e,
                Some(
                    "write e.g. \"http://{host}/cm?cmnd=Power{outlet}%20{state}\" (placeholders {host}, {outlet}, {state})"
                        .into(),
                ),
            )
        })?;
        if t.contains("{host}") && host.is_empty() {
            return Err(src.invalid(
                Some(v.span()),
                key,
                "uses {host} but no `host` is set",
                Some("add host = \"relay01.lab\" or write the address into the URL".into()),
            ));
        }
        Ok(t)
    };
    let url = raw.url.as_ref().map(|u| check_url("url", u)).transpose()?;
    let on_url = raw
        .on_url
        .as_ref()
        .map(|u| check_url("on_url", u))
        .transpose()?;
    let off_url = raw
        .off_url
        .as_ref()
        .map(|u| check_url("off_url", u))
        .transpose()?;
    let missing = |key: &str| {
        src.invalid(
            None,
            key,
            format!("missing `{key}` (or `url`)"),
            Some(
                "add url = \"http://{host}/relay/{outlet}?turn={state}\", or on_url and off_url"
                    .into(),
            ),
        )
    };
    let on_url = on_url
        .or_else(|| url.clone())
        .ok_or_else(|| missing("on_url"))?;
    let off_url = off_url.or(url).ok_or_else(|| missing("off_url"))?;

    let method = match raw
        .method
        .as_ref()
        .map(|m| (m.get_ref().to_ascii_uppercase(), m.span()))
    {
        None => "GET",
        Some((m, _)) if m == "GET" => "GET",
        Some((m, _)) if m == "POST" => "POST",
        Some((m, _)) if m == "PUT" => "PUT",
        Some((m, span)) => {
            return Err(src.invalid(
                Some(span),
                "method",
                format!("method `{m}` is not supported"),
                Some("use \"GET\", \"POST\" or \"PUT\"".into()),
            ))
        }
    };
    let body = text(&raw.body);
    if let (Some(b), "GET") = (&raw.body, method) {
        return Err(src.invalid(
            Some(b.span()),
            "body",
            "a body needs method = \"POST\" or \"PUT\"",
            Some("add method = \"POST\" or remove body".into()),
        ));
    }
    let content_type = text(&raw.content_type).unwrap_or_else(|| {
        match body.as_deref().map(str::trim_start) {
            Some(b) if b.starts_with('{') || b.starts_with('[') => "application/json",
            _ => "application/x-www-form-urlencoded",
        }
        .to_owned()
    });
    let expect_status = match &raw.expect_status {
        None => 200,
        Some(s) => u16::try_from(*s.get_ref())
            .ok()
            .filter(|c| (100..=599).contains(c))
            .ok_or_else(|| {
                src.invalid(
                    Some(s.span()),
                    "expect_status",
                    format!("{} is not an HTTP status", s.get_ref()),
                    Some("use e.g. 200 or 204".into()),
                )
            })?,
    };
    let state_url = raw
        .state_url
        .as_ref()
        .map(|u| check_url("state_url", u))
        .transpose()?;
    for (key, v) in [
        ("state_pointer", &raw.state_pointer),
        ("state_on_value", &raw.state_on_value),
        ("state_off_value", &raw.state_off_value),
    ] {
        if let (Some(v), None) = (v, &state_url) {
            return Err(src.invalid(
                Some(v.span()),
                key,
                format!("`{key}` without `state_url`"),
                Some("add state_url = \"http://…\" or remove the key".into()),
            ));
        }
    }
    if let Some(p) = &raw.state_pointer {
        let t = p.get_ref();
        if !(t.is_empty() || t.starts_with('/')) {
            return Err(src.invalid(
                Some(p.span()),
                "state_pointer",
                format!("`{t}` is not a JSON pointer"),
                Some("a JSON pointer starts with /, e.g. \"/POWER{outlet}\" or \"/ison\"".into()),
            ));
        }
    }
    let state = state_url.map(|url| StateRead {
        url,
        pointer: text(&raw.state_pointer),
        on: text(&raw.state_on_value).unwrap_or_else(|| on_state.clone()),
        off: text(&raw.state_off_value).unwrap_or_else(|| off_state.clone()),
    });
    if let Some(s) = &state {
        if s.on.eq_ignore_ascii_case(&s.off) {
            return Err(src.invalid(
                raw.state_on_value.as_ref().map(Spanned::span),
                "state_on_value",
                "on and off read back as the same value",
                Some("set state_on_value and state_off_value to what the device answers".into()),
            ));
        }
    }
    let authorization = match (&raw.username, &raw.password) {
        (None, None) => None,
        (Some(u), p) => Some(format!(
            "Basic {}",
            base64(
                format!("{}:{}", u.get_ref(), p.as_ref().map_or("", |p| p.get_ref())).as_bytes()
            )
        )),
        (None, Some(p)) => {
            return Err(src.invalid(
                Some(p.span()),
                "password",
                "`password` without `username`",
                Some("add username = \"admin\"".into()),
            ))
        }
    };
    if let Some(outlets) = &raw.outlets {
        for key in outlets.get_ref().keys() {
            if check_outlet(key).is_err() {
                return Err(src.invalid(
                    Some(crate::config::key_span(src, outlets.span(), key)),
                    format!("outlets.{key}"),
                    format!("outlet `{key}` cannot go into a URL"),
                    Some("name outlets with letters, digits, - _ . ~ (they go into URLs)".into()),
                ));
            }
        }
    }
    let driver = HttpDriver {
        host,
        on_url,
        off_url,
        on_state,
        off_state,
        method,
        body,
        content_type,
        expect_status,
        state,
        authorization,
    };
    Ok(Loaded {
        common,
        driver: Arc::new(driver),
    })
}

/// Only `{host}`, `{outlet}` and `{state}` may appear.
fn check_placeholders(template: &str) -> Result<(), String> {
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let close = after
            .find('}')
            .ok_or_else(|| format!("unclosed `{{` in `{template}`"))?;
        let name = &after[..close];
        if !matches!(name, "host" | "outlet" | "state") {
            return Err(format!(
                "unknown placeholder `{{{name}}}` in `{template}` (known: {{host}}, {{outlet}}, {{state}})"
            ));
        }
        rest = &after[close + 1..];
    }
    Ok(())
}

fn fill(template: &str, host: &str, outlet: &str, state: &str) -> String {
    template
        .replace("{host}", host)
        .replace("{outlet}", outlet)
        .replace("{state}", state)
}

/// A parsed `http://` URL: where to connect and what to ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// Host as written (brackets kept off for IPv6).
    pub host: String,
    pub port: u16,
    /// `Host:` header value.
    pub authority: String,
    /// Path and query, at least "/".
    pub target: String,
}

/// Parses an `http://host[:port][/path][?query]` URL.
pub fn parse_url(url: &str) -> Result<Url, String> {
    let rest = if let Some(r) = url.strip_prefix("http://") {
        r
    } else if url.starts_with("https://") {
        return Err(format!(
            "`{url}`: https is not supported (no TLS stack in lava-power); use the device's http:// address"
        ));
    } else {
        return Err(format!("`{url}` is not an http:// URL"));
    };
    let (authority, target) = match rest.find(['/', '?']) {
        Some(i) if rest.as_bytes()[i] == b'/' => (&rest[..i], rest[i..].to_owned()),
        Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
        None => (rest, "/".to_owned()),
    };
    if authority.contains('@') {
        return Err(format!(
            "`{url}`: put credentials in username/password, not in the URL"
        ));
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, p) = v6
            .split_once(']')
            .ok_or_else(|| format!("`{url}`: unclosed [ in the address"))?;
        (h.to_owned(), p.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_owned(), Some(p)),
            None => (authority.to_owned(), None),
        }
    };
    let port = match port {
        None => 80,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|&p| p > 0)
            .ok_or_else(|| format!("`{url}`: bad port `{p}`"))?,
    };
    if host.is_empty() || target.contains(char::is_whitespace) {
        return Err(format!("`{url}` has no host or contains spaces"));
    }
    Ok(Url {
        host,
        port,
        authority: authority.to_owned(),
        target,
    })
}

/// Standard base64 with padding (for Basic authorization).
fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A device's answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub reason: String,
    pub body: Vec<u8>,
}

impl Answer {
    fn summary(&self) -> String {
        let body = String::from_utf8_lossy(&self.body);
        let body = body.trim();
        let cut: String = body.chars().take(200).collect();
        if cut.is_empty() {
            format!("HTTP {} {}", self.status, self.reason)
        } else {
            format!("HTTP {} {}: {cut}", self.status, self.reason)
        }
    }
}

/// One request over a fresh connection (`Connection: close`).
pub async fn request(
    method: &str,
    url: &Url,
    authorization: Option<&str>,
    body: Option<(&str, &[u8])>,
) -> Result<Answer, DriverError> {
    let mut stream = TcpStream::connect((url.host.as_str(), url.port))
        .await
        .map_err(|e| DriverError::Unreachable(format!("{}: {e}", url.authority)))?;
    let mut head = format!(
        "{method} {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: lava-power\r\nAccept: */*\r\nConnection: close\r\n",
        url.target, url.authority
    );
    if let Some(a) = authorization {
        head.push_str(&format!("Authorization: {a}\r\n"));
    }
    match body {
        Some((content_type, b)) => head.push_str(&format!(
            "Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
            b.len()
        )),
        None if method != "GET" => head.push_str("Content-Length: 0\r\n\r\n"),
        None => head.push_str("\r\n"),
    }
    let mut out = head.into_bytes();
    if let Some((_, b)) = body {
        out.extend_from_slice(b);
    }
    stream
        .write_all(&out)
        .await
        .map_err(|e| DriverError::Unreachable(format!("{}: {e}", url.authority)))?;
    read_answer(&mut stream).await
}

async fn read_answer(stream: &mut TcpStream) -> Result<Answer, DriverError> {
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 8192];
    loop {
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(|e| DriverError::BadAnswer(format!("reading the answer: {e}")))?;
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > MAX_RESPONSE {
            return Err(DriverError::BadAnswer("answer larger than 1 MiB".into()));
        }
        let eof = n == 0;
        match parse_answer(&buf, eof)? {
            Some(answer) => return Ok(answer),
            None if eof => {
                return Err(DriverError::BadAnswer(if buf.is_empty() {
                    "connection closed without an answer".into()
                } else {
                    "connection closed inside the answer".into()
                }))
            }
            None => {}
        }
    }
}

/// Parses a complete answer from `buf`, or says more is needed (None).
fn parse_answer(buf: &[u8], eof: bool) -> Result<Option<Answer>, DriverError> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    let head_len = match response.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => {
            let start: String = String::from_utf8_lossy(&buf[..buf.len().min(60)]).into();
            return Err(DriverError::BadAnswer(format!(
                "not an HTTP answer ({e}): {start:?}"
            )));
        }
    };
    let status = response.code.unwrap_or(0);
    let reason = response.reason.unwrap_or("").to_owned();
    let mut length = None;
    let mut chunked = false;
    for h in response.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            length = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok());
            if length.is_none() {
                return Err(DriverError::BadAnswer("bad Content-Length".into()));
            }
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = String::from_utf8_lossy(h.value)
                .to_ascii_lowercase()
                .contains("chunked");
        }
    }
    let rest = &buf[head_len..];
    let body = if chunked {
        match dechunk(rest)? {
            Some(b) => b,
            None => return Ok(None),
        }
    } else if let Some(len) = length {
        if rest.len() < len {
            return Ok(None);
        }
        rest[..len].to_vec()
    } else if status == 204 || status == 304 || (100..200).contains(&status) {
        Vec::new()
    } else if eof {
        rest.to_vec()
    } else {
        return Ok(None);
    };
    Ok(Some(Answer {
        status,
        reason,
        body,
    }))
}

/// Decodes a chunked body; None while incomplete.
fn dechunk(mut data: &[u8]) -> Result<Option<Vec<u8>>, DriverError> {
    let mut body = Vec::new();
    loop {
        let Some(line_end) = data.windows(2).position(|w| w == b"\r\n") else {
            return Ok(None);
        };
        let size_text = String::from_utf8_lossy(&data[..line_end]);
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| DriverError::BadAnswer(format!("bad chunk size {size_text:?}")))?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(Some(body));
        }
        if data.len() < size + 2 {
            return Ok(None);
        }
        body.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

/// Outlets go into URLs: only URL-safe names.
fn check_outlet(outlet: &str) -> Result<(), DriverError> {
    if !outlet.is_empty()
        && outlet
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.~".contains(&b))
    {
        Ok(())
    } else {
        Err(DriverError::Refused(format!(
            "outlet `{outlet}` cannot go into a URL (letters, digits, - _ . ~ only)"
        )))
    }
}

/// A JSON value as text for comparing with the configured on/off values.
fn json_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl PowerDriver for HttpDriver {
    fn kind(&self) -> &'static str {
        "http"
    }

    fn set(&self, outlet: &str, state: OutletState) -> DriverFuture<'_, ()> {
        let outlet = outlet.to_owned();
        Box::pin(async move {
            check_outlet(&outlet)?;
            let (template, word) = match state {
                OutletState::On => (&self.on_url, &self.on_state),
                OutletState::Off => (&self.off_url, &self.off_state),
            };
            let url = parse_url(&fill(template, &self.host, &outlet, word))
                .map_err(DriverError::Refused)?;
            let body = self
                .body
                .as_ref()
                .map(|b| fill(b, &self.host, &outlet, word));
            tracing::debug!(url = %url.target, method = self.method, %state, "HTTP relay request");
            let answer = request(
                self.method,
                &url,
                self.authorization.as_deref(),
                body.as_deref()
                    .map(|b| (self.content_type.as_str(), b.as_bytes())),
            )
            .await?;
            if answer.status != self.expect_status {
                return Err(DriverError::Refused(format!(
                    "{} (expected {})",
                    answer.summary(),
                    self.expect_status
                )));
            }
            Ok(())
        })
    }

    fn get(&self, outlet: &str) -> DriverFuture<'_, OutletState> {
        let outlet = outlet.to_owned();
        Box::pin(async move {
            let Some(read) = &self.state else {
                return Err(DriverError::CannotRead);
            };
            check_outlet(&outlet)?;
            let url = parse_url(&fill(&read.url, &self.host, &outlet, ""))
                .map_err(DriverError::Refused)?;
            let answer = request("GET", &url, self.authorization.as_deref(), None).await?;
            if !(200..300).contains(&answer.status) {
                return Err(DriverError::Refused(answer.summary()));
            }
            let value = match &read.pointer {
                None => String::from_utf8_lossy(&answer.body).trim().to_owned(),
                Some(p) => {
                    let pointer = fill(p, &self.host, &outlet, "");
                    let json: serde_json::Value =
                        serde_json::from_slice(&answer.body).map_err(|e| {
                            DriverError::BadAnswer(format!("state answer is not JSON ({e})"))
                        })?;
                    json.pointer(&pointer).map(json_text).ok_or_else(|| {
                        DriverError::BadAnswer(format!(
                            "state answer has nothing at {pointer}: {}",
                            answer.summary()
                        ))
                    })?
                }
            };
            if value.eq_ignore_ascii_case(&read.on) {
                Ok(OutletState::On)
            } else if value.eq_ignore_ascii_case(&read.off) {
                Ok(OutletState::Off)
            } else {
                Err(DriverError::BadAnswer(format!(
                    "outlet {outlet} reads `{value}`, neither on (`{}`) nor off (`{}`)",
                    read.on, read.off
                )))
            }
        })
    }

    fn can_read(&self) -> bool {
        self.state.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = parse_url("http://10.0.0.5/cm?cmnd=Power1%20On").expect("url");
        assert_eq!((u.host.as_str(), u.port), ("10.0.0.5", 80));
        assert_eq!(u.target, "/cm?cmnd=Power1%20On");
        let u = parse_url("http://[::1]:8080?x=1").expect("url");
        assert_eq!(
            (u.host.as_str(), u.port, u.target.as_str()),
            ("::1", 8080, "/?x=1")
        );
        assert_eq!(parse_url("http://relay").expect("url").target, "/");
        assert!(parse_url("https://relay/").is_err());
        assert!(parse_url("ftp://relay/").is_err());
        assert!(parse_url("http://relay:99999/").is_err());
        assert!(parse_url("http://u:p@relay/").is_err());
    }

    #[test]
    fn placeholders() {
        assert!(check_placeholders("http://{host}/relay/{outlet}?turn={state}").is_ok());
        assert!(check_placeholders("http://{host}/{port}").is_err());
        assert!(check_placeholders("http://{host").is_err());
    }

    #[test]
    fn base64_matches_rfc4648() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
        assert_eq!(base64(b"admin:secret"), "YWRtaW46c2VjcmV0");
    }

    #[test]
    fn answers() {
        let a = parse_answer(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false)
            .expect("parse")
            .expect("complete");
        assert_eq!((a.status, a.body.as_slice()), (200, &b"ok"[..]));
        assert!(
            parse_answer(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nok", false)
                .expect("parse")
                .is_none()
        );
        let a = parse_answer(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n3;x\r\n!!!\r\n0\r\n\r\n",
            false,
        )
        .expect("parse")
        .expect("complete");
        assert_eq!(a.body, b"ok!!!");
        let a = parse_answer(b"HTTP/1.0 404 Not Found\r\n\r\nnope", true)
            .expect("parse")
            .expect("complete");
        assert_eq!((a.status, a.body.as_slice()), (404, &b"nope"[..]));
        assert!(parse_answer(b"SSH-2.0-OpenSSH\r\n\r\n", true).is_err());
    }
}
