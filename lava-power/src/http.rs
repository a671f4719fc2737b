//! The small HTTP/1.1 both sides of the API speak: one request per connection, bounded heads and
//! bodies, `Connection: close`. Enough for curl, python-requests and our own client, with nothing a
//! peer can send able to make it allocate without bound or panic.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest request or response head accepted.
pub const MAX_HEAD: usize = 16 * 1024;
/// Largest request body accepted (a power request's body is a few dozen bytes).
pub const MAX_BODY: usize = 64 * 1024;
/// Largest response body the client accepts.
pub const MAX_RESPONSE: usize = 4 * 1024 * 1024;
/// How long a peer may take to send its whole request.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a request could not be read; each maps to the status code the peer gets, if any.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("connection closed before a whole request")]
    Closed,
    #[error("malformed request: {0}")]
    Malformed(String),
    #[error("request head larger than {MAX_HEAD} bytes")]
    HeadTooLarge,
    #[error("request body larger than {MAX_BODY} bytes")]
    BodyTooLarge,
    #[error("request not received within {READ_TIMEOUT:?}")]
    Timeout,
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl HttpError {
    /// The status to answer with, when the peer is still worth answering.
    pub fn status(&self) -> Option<u16> {
        match self {
            HttpError::Malformed(_) => Some(400),
            HttpError::HeadTooLarge => Some(431),
            HttpError::BodyTooLarge => Some(413),
            HttpError::Timeout => Some(408),
            HttpError::Closed | HttpError::Io(_) => None,
        }
    }
}

/// One parsed request.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// The path, percent-decoded, without the query.
    pub path: String,
    /// Query parameters, percent-decoded, in order.
    pub query: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// The first value of a query parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The path split on `/`, without empty segments.
    pub fn segments(&self) -> Vec<&str> {
        self.path.split('/').filter(|s| !s.is_empty()).collect()
    }
}

/// Reads one request; `prefix` holds bytes already read (the gateway sniffs the first bytes).
/// The caller bounds the whole read with a timeout (see [`read_request_timeout`]).
pub async fn read_request<S: AsyncRead + Unpin>(
    stream: &mut S,
    prefix: Vec<u8>,
) -> Result<Request, HttpError> {
    let mut buf = prefix;
    let mut chunk = [0u8; 4096];
    let (head_len, method, target, content_length) = loop {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf) {
            Ok(httparse::Status::Complete(n)) => {
                let method = req.method.unwrap_or("").to_owned();
                let target = req.path.unwrap_or("/").to_owned();
                let mut len = 0usize;
                for h in req.headers.iter() {
                    if h.name.eq_ignore_ascii_case("content-length") {
                        len = std::str::from_utf8(h.value)
                            .ok()
                            .and_then(|v| v.trim().parse().ok())
                            .ok_or_else(|| HttpError::Malformed("bad Content-Length".into()))?;
                    } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                        return Err(HttpError::Malformed(
                            "chunked bodies are not supported; send Content-Length".into(),
                        ));
                    }
                }
                break (n, method, target, len);
            }
            Ok(httparse::Status::Partial) => {
                if buf.len() >= MAX_HEAD {
                    return Err(HttpError::HeadTooLarge);
                }
            }
            Err(e) => return Err(HttpError::Malformed(e.to_string())),
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(HttpError::Closed);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    if content_length > MAX_BODY {
        return Err(HttpError::BodyTooLarge);
    }
    let mut body = buf.split_off(head_len.min(buf.len()));
    while body.len() < content_length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(HttpError::Closed);
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(content_length);
    let (raw_path, raw_query) = target.split_once('?').unwrap_or((&target, ""));
    Ok(Request {
        method,
        path: percent_decode(raw_path),
        query: parse_query(raw_query),
        body,
    })
}

/// [`read_request`] bounded by [`READ_TIMEOUT`].
pub async fn read_request_timeout<S: AsyncRead + Unpin>(
    stream: &mut S,
    prefix: Vec<u8>,
) -> Result<Request, HttpError> {
    tokio::time::timeout(READ_TIMEOUT, read_request(stream, prefix))
        .await
        .unwrap_or(Err(HttpError::Timeout))
}

/// One answer.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    pub extra: Vec<(&'static str, String)>,
}

impl Response {
    /// A JSON answer.
    pub fn json<T: serde::Serialize>(status: u16, value: &T) -> Response {
        let body = serde_json::to_vec(value).unwrap_or_else(|e| {
            format!("{{\"ok\":false,\"error\":\"cannot encode answer: {e}\"}}").into_bytes()
        });
        Response {
            status,
            content_type: "application/json",
            body,
            extra: Vec::new(),
        }
    }

    /// `{"ok":false,"error":...}`.
    pub fn error(status: u16, message: impl Into<String>) -> Response {
        Response::json(
            status,
            &crate::wire::ErrorBody {
                ok: false,
                error: message.into(),
            },
        )
    }

    /// A plain-text answer (pdudaemon's routes).
    pub fn text(status: u16, body: &str) -> Response {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.as_bytes().to_vec(),
            extra: Vec::new(),
        }
    }
}

/// The reason phrase of the status codes this crate uses.
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Payload Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Unknown",
    }
}

/// Writes an answer and shuts the write side; `head_only` for HEAD requests.
pub async fn write_response<S: AsyncWrite + Unpin>(
    stream: &mut S,
    resp: &Response,
    head_only: bool,
) -> std::io::Result<()> {
    let mut out = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
        resp.status,
        reason(resp.status),
        resp.content_type,
        resp.body.len()
    );
    for (k, v) in &resp.extra {
        out.push_str(k);
        out.push_str(": ");
        out.push_str(v);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    if !head_only {
        bytes.extend_from_slice(&resp.body);
    }
    stream.write_all(&bytes).await?;
    stream.flush().await?;
    let _ = stream.shutdown().await;
    Ok(())
}

/// Sends one request and reads the whole answer (status, body); the server closes after it.
pub async fn client_request<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    method: &str,
    path_and_query: &str,
    body: Option<&[u8]>,
) -> Result<(u16, Vec<u8>), String> {
    let body = body.unwrap_or(b"");
    let head = format!(
        "{method} {path_and_query} HTTP/1.1\r\nHost: lava-power\r\nUser-Agent: lava-power\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let mut req = head.into_bytes();
    req.extend_from_slice(body);
    stream
        .write_all(&req)
        .await
        .map_err(|e| format!("sending the request: {e}"))?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(|e| format!("reading the answer: {e}"))?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > MAX_RESPONSE {
            return Err(format!("answer larger than {MAX_RESPONSE} bytes"));
        }
        if let Some(done) = response_complete(&buf) {
            buf.truncate(done);
            break;
        }
    }
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut headers);
    match resp.parse(&buf) {
        Ok(httparse::Status::Complete(n)) => {
            let status = resp.code.unwrap_or(0);
            Ok((status, buf[n..].to_vec()))
        }
        Ok(httparse::Status::Partial) => Err("the connection closed before a whole answer".into()),
        Err(e) => Err(format!("malformed answer: {e}")),
    }
}

/// The total length of a response once its head and Content-Length body are all in `buf`.
fn response_complete(buf: &[u8]) -> Option<usize> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut headers);
    let Ok(httparse::Status::Complete(n)) = resp.parse(buf) else {
        return None;
    };
    let len = resp
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .and_then(|h| {
            std::str::from_utf8(h.value)
                .ok()?
                .trim()
                .parse::<usize>()
                .ok()
        })?;
    (buf.len() >= n + len).then_some(n + len)
}

/// Splits `a=1&b=x%20y` into decoded pairs (`+` is a space, as browsers and requests send it).
pub fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                percent_decode(&k.replace('+', " ")),
                percent_decode(&v.replace('+', " ")),
            )
        })
        .collect()
}

/// Decodes `%XX` escapes; invalid escapes stay as written, invalid UTF-8 becomes U+FFFD.
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(v) = hex {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Encodes a query or path component (everything but unreserved characters).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &c in s.as_bytes() {
        if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'~') {
            out.push(c as char);
        } else {
            out.push_str(&format!("%{c:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding() {
        assert_eq!(percent_decode("a%20b%2"), "a b%2");
        assert_eq!(percent_decode("%zz%41"), "%zzA");
        assert_eq!(percent_decode("%"), "%");
        assert_eq!(
            parse_query("hostname=pdu+1&port=3&x"),
            vec![
                ("hostname".into(), "pdu 1".into()),
                ("port".into(), "3".into()),
                ("x".into(), "".into())
            ]
        );
        assert_eq!(percent_decode(&percent_encode("a b/ü")), "a b/ü");
    }

    #[tokio::test]
    async fn garbage_requests_do_not_panic() {
        for input in [
            &b"\x00\xff\xfe garbage\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n",
            b"GET / HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n",
            b"GET /%ff%fe?%%%=%% HTTP/1.1\r\n\r\n",
            b"GET",
        ] {
            let mut r = input;
            let _ = read_request(&mut r, Vec::new()).await;
        }
    }
}
