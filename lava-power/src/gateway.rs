//! The gateway (docs/protocols.md §3): one TCP port speaking pdudaemon 1.1.1's two protocols, byte
//! for byte, plus the suite's JSON routes, each request routed by PDU name to the instance socket
//! of that name in the runtime dir. TCP and HTTP are told apart by the first bytes a client sends.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UnixStream};

use crate::client::PowerClient;
use crate::config::valid_pdu_name;
use crate::http::{
    client_request, percent_encode, read_request_timeout, write_response, Request, Response,
    READ_TIMEOUT,
};
use crate::listen::serve_connections;
use crate::wire::{Action, PduEntry, PduList};

/// pdudaemon's TCP request ends at a newline, EOF, or this long a pause after its first bytes
/// (pduclient sends no terminator and keeps its side open).
pub const IDLE_GAP: Duration = Duration::from_millis(100);
/// pdudaemon reads at most this much of a TCP request.
pub const MAX_TCP_REQUEST: usize = 16384;
/// The longest pre-switch delay honoured for `on`/`off` (pdudaemon sleeps before switching).
pub const MAX_ON_OFF_DELAY: Duration = Duration::from_secs(3600);

/// What the gateway needs to route a request.
#[derive(Debug, Clone)]
pub struct Gateway {
    pub runtime_dir: PathBuf,
    /// This host's name, for "no instance named X on HOST".
    pub host: String,
}

impl Gateway {
    /// A gateway for the instances in `runtime_dir`.
    pub fn new(runtime_dir: &Path) -> Gateway {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_else(|_| "this host".to_owned());
        Gateway {
            runtime_dir: runtime_dir.to_owned(),
            host,
        }
    }

    fn socket(&self, pdu: &str) -> Option<PathBuf> {
        valid_pdu_name(pdu).ok()?;
        let path = crate::serve::socket_path(&self.runtime_dir, pdu);
        path.exists().then_some(path)
    }
}

/// Serves the gateway until `shutdown` resolves.
pub async fn serve(listener: TcpListener, gateway: Gateway, shutdown: impl Future<Output = ()>) {
    let gateway = Arc::new(gateway);
    serve_connections(
        listener,
        shutdown,
        |stream, peer| {
            let gateway = gateway.clone();
            async move { connection(stream, &gateway, &peer).await }
        },
        |e| tracing::warn!(error = %e, "gateway accept failed"),
    )
    .await;
}

/// What the first bytes of a connection say it is.
#[derive(Debug, PartialEq, Eq)]
enum Kind {
    Http,
    Tcp,
    Undecided,
}

/// An HTTP request starts with an upper-case method, a space and a `/` (or `*`); a pdudaemon
/// request with anything else (a PDU name is never followed by `/`).
fn classify(buf: &[u8]) -> Kind {
    for (i, &b) in buf.iter().enumerate() {
        if b.is_ascii_uppercase() && i < 10 {
            continue;
        }
        if b == b' ' && i > 0 {
            return match buf.get(i + 1) {
                Some(b'/') | Some(b'*') => Kind::Http,
                Some(_) => Kind::Tcp,
                None => Kind::Undecided,
            };
        }
        return Kind::Tcp;
    }
    Kind::Undecided
}

async fn connection(mut stream: TcpStream, gw: &Gateway, peer: &str) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let wait = if buf.is_empty() {
            READ_TIMEOUT
        } else {
            IDLE_GAP
        };
        match tokio::time::timeout(wait, stream.read(&mut chunk)).await {
            Err(_) if buf.is_empty() => return,
            Err(_) | Ok(Ok(0)) => break,
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            Ok(Err(_)) => return,
        }
        match classify(&buf) {
            Kind::Http => return http_connection(stream, buf, gw, peer).await,
            Kind::Tcp | Kind::Undecided => {
                if buf.contains(&b'\n') || buf.len() >= MAX_TCP_REQUEST || complete(&buf) {
                    break;
                }
            }
        }
    }
    if buf.is_empty() {
        return;
    }
    buf.truncate(MAX_TCP_REQUEST);
    let answer = tcp_request(&String::from_utf8_lossy(&buf), gw, peer).await;
    let _ = stream.write_all(answer.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// Whether the bytes so far already form a whole request (`PDU PORT ACTION` or with a delay),
/// as pdudaemon, which takes its first read as the request, would see it: then there is no need
/// to wait for the idle gap.
fn complete(buf: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(buf) else {
        return false;
    };
    let parts: Vec<&str> = text.trim().split(' ').collect();
    match parts.as_slice() {
        [_, port, action] => py_int(port).is_ok() && action.parse::<Action>().is_ok(),
        [_, port, action, delay] => {
            py_int(port).is_ok() && action.parse::<Action>().is_ok() && py_int(delay).is_ok()
        }
        _ => false,
    }
}

/// Python's `int(str)` for the inputs pdudaemon feeds it.
fn py_int(s: &str) -> Result<i64, String> {
    let t = s.trim();
    let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
    let ok = !digits.is_empty()
        && !digits.starts_with('_')
        && !digits.ends_with('_')
        && !digits.contains("__")
        && digits.bytes().all(|b| b.is_ascii_digit() || b == b'_');
    let parsed = ok.then(|| t.replace('_', "").parse::<i64>().ok()).flatten();
    parsed.ok_or_else(|| format!("invalid literal for int() with base 10: '{s}'"))
}

/// One pdudaemon TCP request → its answer (`ack\n`, `nack\n`, or pdudaemon's exception text).
pub async fn tcp_request(data: &str, gw: &Gateway, peer: &str) -> String {
    let data = data.trim();
    tracing::info!(peer, request = data, "pdudaemon TCP request");
    let parts: Vec<&str> = data.split(' ').collect();
    if parts.len() < 3 || parts.len() > 4 {
        return "Unexpected data".to_owned();
    }
    let delay = match parts.get(3).map(|d| py_int(d)).transpose() {
        Ok(d) => d,
        Err(e) => return e,
    };
    let port = match py_int(parts[1]) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let ok = pdudaemon_request(gw, parts[0], &port.to_string(), parts[2], delay, peer).await;
    if ok { "ack\n" } else { "nack\n" }.to_owned()
}

/// Runs a request as pdudaemon would: reboot's delay is the off → on pause (default: the PDU's
/// `reboot_delay`), on/off's delay a pause before switching. True only when the PDU obeyed.
pub async fn pdudaemon_request(
    gw: &Gateway,
    pdu: &str,
    port: &str,
    request: &str,
    delay: Option<i64>,
    peer: &str,
) -> bool {
    let Ok(action) = request.parse::<Action>() else {
        tracing::info!(peer, pdu, request, "unknown request");
        return false;
    };
    if gw.socket(pdu).is_none() {
        tracing::info!(peer, pdu, "no lava-power instance of that name");
        return false;
    }
    let secs = |d: i64| Duration::from_secs(u64::try_from(d).unwrap_or(0));
    let mut reboot_delay = None;
    match (action, delay) {
        (Action::Reboot, d) => reboot_delay = d.map(secs),
        (_, Some(d)) if d > 0 => tokio::time::sleep(secs(d).min(MAX_ON_OFF_DELAY)).await,
        _ => {}
    }
    let client = PowerClient::instance(&gw.runtime_dir, pdu);
    match client
        .action(
            port,
            action,
            reboot_delay,
            &format!("pdudaemon-protocol {peer}"),
        )
        .await
    {
        Ok(r) if r.ok => true,
        Ok(r) => {
            tracing::info!(peer, pdu, port, %action, error = r.error.as_deref().unwrap_or(""), "failed");
            false
        }
        Err(e) => {
            tracing::info!(peer, pdu, port, %action, error = %e, "failed");
            false
        }
    }
}

async fn http_connection(mut stream: TcpStream, prefix: Vec<u8>, gw: &Gateway, peer: &str) {
    let resp = match read_request_timeout(&mut stream, prefix).await {
        Ok(req) => {
            let resp = http_request(&req, gw, peer).await;
            let _ = write_response(&mut stream, &resp, req.method == "HEAD").await;
            return;
        }
        Err(e) => match e.status() {
            Some(status) => Response::text(status, &format!("{e}\n")),
            None => return,
        },
    };
    let _ = write_response(&mut stream, &resp, false).await;
}

fn not_found() -> Response {
    Response::text(404, "404: Not Found")
}

/// Answers one HTTP request on the gateway.
pub async fn http_request(req: &Request, gw: &Gateway, peer: &str) -> Response {
    let segs = req.segments();
    match segs.as_slice() {
        ["power", "control", action @ ("on" | "off" | "reboot")] => {
            if req.method != "GET" {
                // pdudaemon 1.1.1 switched power on HEAD; here only GET does.
                let mut r = Response::text(405, "405: Method Not Allowed");
                r.extra.push(("Allow", "GET".into()));
                return r;
            }
            let invalid = || Response::text(500, "Invalid request\n");
            if req.param("alias").is_some() {
                return invalid();
            }
            let (Some(pdu), Some(port)) = (req.param("hostname"), req.param("port")) else {
                return invalid();
            };
            if pdu.is_empty() || port.is_empty() {
                return invalid();
            }
            let delay = match req.param("delay").map(py_int).transpose() {
                Ok(d) => d,
                Err(_) => return invalid(),
            };
            if pdudaemon_request(gw, pdu, port, action, delay, peer).await {
                Response::text(200, "OK - accepted request\n")
            } else {
                invalid()
            }
        }
        ["v1", "pdus"] if matches!(req.method.as_str(), "GET" | "HEAD") => {
            Response::json(200, &list(gw).await)
        }
        ["v1", "pdus", pdu, rest @ ..] if !rest.is_empty() => proxy(req, gw, pdu, rest, peer).await,
        ["v1", ..] => Response::error(404, format!("no route {} {}", req.method, req.path)),
        _ => not_found(),
    }
}

async fn proxy(req: &Request, gw: &Gateway, pdu: &str, rest: &[&str], peer: &str) -> Response {
    let Some(socket) = gw.socket(pdu) else {
        return Response::error(
            404,
            format!("no lava-power instance named {pdu} on {}", gw.host),
        );
    };
    let mut path = String::from("/v1");
    for seg in rest {
        path.push('/');
        path.push_str(&percent_encode(seg));
    }
    let mut query: Vec<String> = req
        .query
        .iter()
        .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
        .collect();
    if req.param("client").is_none() {
        query.push(format!(
            "client={}",
            percent_encode(&format!("gateway {peer}"))
        ));
    }
    path.push('?');
    path.push_str(&query.join("&"));
    let answer = async {
        let mut s = UnixStream::connect(&socket).await.map_err(|e| {
            (
                503,
                format!(
                    "lava-power instance {pdu} on {} is not running: {e}",
                    gw.host
                ),
            )
        })?;
        client_request(&mut s, &req.method, &path, Some(&req.body))
            .await
            .map_err(|e| (502, format!("lava-power instance {pdu}: {e}")))
    };
    match answer.await {
        Ok((status, body)) => Response {
            status,
            content_type: "application/json",
            body,
            extra: Vec::new(),
        },
        Err((status, message)) => Response::error(status, message),
    }
}

/// Every instance socket in the runtime dir, with its health.
pub async fn list(gw: &Gateway) -> PduList {
    let mut names: Vec<String> = std::fs::read_dir(&gw.runtime_dir)
        .map(|dir| {
            dir.filter_map(Result::ok)
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    name.strip_suffix(".sock").map(str::to_owned)
                })
                .filter(|n| valid_pdu_name(n).is_ok())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    let mut set = tokio::task::JoinSet::new();
    for (i, name) in names.iter().enumerate() {
        let client =
            PowerClient::instance(&gw.runtime_dir, name).with_timeout(Duration::from_secs(3));
        set.spawn(async move { (i, client.health().await) });
    }
    let mut entries: Vec<Option<PduEntry>> = vec![None; names.len()];
    while let Some(joined) = set.join_next().await {
        let Ok((i, health)) = joined else { continue };
        let Some(name) = names.get(i) else { continue };
        let entry = match health {
            Ok(h) => PduEntry {
                pdu: name.clone(),
                ok: h.ok,
                driver: Some(h.driver),
                queued: Some(h.queued),
                error: None,
            },
            Err(e) => PduEntry {
                pdu: name.clone(),
                ok: false,
                driver: None,
                queued: None,
                error: Some(e.to_string()),
            },
        };
        if let Some(slot) = entries.get_mut(i) {
            *slot = Some(entry);
        }
    }
    PduList {
        pdus: entries.into_iter().flatten().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_bytes() {
        assert_eq!(classify(b"GET /power"), Kind::Http);
        assert_eq!(classify(b"HEAD /"), Kind::Http);
        assert_eq!(classify(b"GET"), Kind::Undecided);
        assert_eq!(classify(b"GET "), Kind::Undecided);
        assert_eq!(classify(b"pdu01 3 on"), Kind::Tcp);
        assert_eq!(classify(b"PDU 3 on"), Kind::Tcp);
        assert_eq!(classify(b"\xff\x00"), Kind::Tcp);
    }

    #[test]
    fn python_ints() {
        assert_eq!(py_int("04"), Ok(4));
        assert_eq!(py_int(" +5 "), Ok(5));
        assert_eq!(py_int("1_0"), Ok(10));
        assert_eq!(
            py_int("x"),
            Err("invalid literal for int() with base 10: 'x'".to_owned())
        );
        assert!(py_int("").is_err());
        assert!(py_int("99999999999999999999999").is_err());
    }
}
