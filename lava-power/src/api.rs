//! The instance API (docs/protocols.md §2): JSON over HTTP on the instance's unix socket and on
//! `--listen`, mapping each route onto the PDU's queue. Every connection is its own task, bounded
//! in what it may send and how long it may take to send it.

use std::future::Future;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};

use crate::http::{read_request_timeout, write_response, Request, Response};
use crate::listen::{serve_connections, Listener};
use crate::queue::{Ending, Pdu, ReadOutcome};
use crate::wire::{
    Action, ActionRequest, Health, OutletEntry, OutletList, OutletStatus, StateReport, StateSource,
};

/// Serves the API on the instance's unix socket or on TCP (`--listen`) until `shutdown` resolves.
pub async fn serve<L: Listener>(listener: L, pdu: Pdu, shutdown: impl Future<Output = ()>) {
    let name = pdu.name().to_owned();
    serve_connections(
        listener,
        shutdown,
        |stream, peer| {
            let pdu = pdu.clone();
            async move { serve_connection(stream, &pdu, &peer).await }
        },
        |e| tracing::warn!(pdu = %name, error = %e, "accept failed"),
    )
    .await;
}

/// Reads one request from a connection, answers it, closes.
pub async fn serve_connection<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    pdu: &Pdu,
    peer: &str,
) {
    let resp = match read_request_timeout(&mut stream, Vec::new()).await {
        Ok(req) => {
            let head = req.method == "HEAD";
            let resp = handle(pdu, &req, peer).await;
            let _ = write_response(&mut stream, &resp, head).await;
            return;
        }
        Err(e) => {
            tracing::debug!(pdu = %pdu.name(), peer, error = %e, "bad request");
            match e.status() {
                Some(status) => Response::error(status, e.to_string()),
                None => return,
            }
        }
    };
    let _ = write_response(&mut stream, &resp, false).await;
}

/// Answers one API request.
pub async fn handle(pdu: &Pdu, req: &Request, peer: &str) -> Response {
    let segs = req.segments();
    let method = if req.method == "HEAD" {
        "GET"
    } else {
        req.method.as_str()
    };
    match (method, segs.as_slice()) {
        ("GET", ["v1", "health"]) => Response::json(200, &health(pdu)),
        ("GET", ["v1", "outlets"]) => Response::json(200, &outlets(pdu, peer).await),
        ("GET", ["v1", "outlets", outlet]) => status(pdu, outlet, peer).await,
        ("POST", ["v1", "outlets", outlet, action]) => power(pdu, req, outlet, action, peer).await,
        (_, ["v1", "health"] | ["v1", "outlets"] | ["v1", "outlets", _]) => {
            let mut r = Response::error(405, format!("{} is not allowed here", req.method));
            r.extra.push(("Allow", "GET, HEAD".into()));
            r
        }
        (_, ["v1", "outlets", _, _]) => {
            let mut r = Response::error(405, "power requests are POSTs");
            r.extra.push(("Allow", "POST".into()));
            r
        }
        _ => Response::error(404, format!("no route {} {}", req.method, req.path)),
    }
}

/// The instance's health.
pub fn health(pdu: &Pdu) -> Health {
    Health {
        pdu: pdu.name().to_owned(),
        driver: pdu.driver_kind().to_owned(),
        queued: pdu.queued(),
        ok: true,
    }
}

fn remembered(pdu: &Pdu, outlet: &str) -> (StateReport, StateSource) {
    match pdu.remembered(outlet) {
        Some(s) => (s.into(), StateSource::Remembered),
        None => (StateReport::Unknown, StateSource::None),
    }
}

/// An outlet's state: read through the queue when the driver can read, else as remembered. A
/// failed read is the caller's to judge (the list falls back to memory, one outlet's GET fails).
async fn current(
    pdu: &Pdu,
    outlet: &str,
    peer: &str,
) -> Result<(StateReport, StateSource), (String, Ending)> {
    if !pdu.can_read() {
        return Ok(remembered(pdu, outlet));
    }
    match pdu.read(outlet, peer).await {
        ReadOutcome::Read(s) => Ok((s.into(), StateSource::Read)),
        ReadOutcome::Failed { error, ending } => Err((error, ending)),
    }
}

async fn outlets(pdu: &Pdu, peer: &str) -> OutletList {
    let mut ids = pdu.common().known_outlets();
    // Outlets switched through this instance, even if unnamed and uncounted.
    for id in pdu.remembered_outlets() {
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    let mut entries = Vec::with_capacity(ids.len());
    for outlet in ids {
        let (state, source) = current(pdu, &outlet, peer)
            .await
            .unwrap_or_else(|_| remembered(pdu, &outlet));
        entries.push(OutletEntry {
            name: pdu.common().outlets.get(&outlet).cloned(),
            outlet,
            state,
            source,
        });
    }
    OutletList {
        pdu: pdu.name().to_owned(),
        outlets: entries,
    }
}

async fn status(pdu: &Pdu, outlet: &str, peer: &str) -> Response {
    let outlet = match pdu.common().resolve(outlet) {
        Ok(o) => o,
        Err(e) => return Response::error(404, e),
    };
    let (state, source) = match current(pdu, &outlet, peer).await {
        Ok(s) => s,
        Err((error, ending)) => {
            let code = if ending == Ending::Deadline { 504 } else { 502 };
            return Response::error(code, format!("reading outlet {outlet} failed: {error}"));
        }
    };
    Response::json(
        200,
        &OutletStatus {
            pdu: pdu.name().to_owned(),
            name: pdu.common().outlets.get(&outlet).cloned(),
            outlet,
            state,
            source,
        },
    )
}

/// Parses a delay as the API accepts it: `"5s"`, `"500ms"`, or a bare number of seconds.
pub fn parse_delay(text: &str) -> Result<Duration, String> {
    lava_common::config::parse_duration(text).map_err(|e| format!("bad delay: {e}"))
}

async fn power(pdu: &Pdu, req: &Request, outlet: &str, action: &str, peer: &str) -> Response {
    let action: Action = match action.parse() {
        Ok(a) => a,
        Err(e) => return Response::error(400, e),
    };
    let outlet = match pdu.common().resolve(outlet) {
        Ok(o) => o,
        Err(e) => return Response::error(404, e),
    };
    let body: ActionRequest = if req.body.iter().all(u8::is_ascii_whitespace) {
        ActionRequest::default()
    } else {
        match serde_json::from_slice(&req.body) {
            Ok(b) => b,
            Err(e) => return Response::error(400, format!("bad JSON body: {e}")),
        }
    };
    let delay_text = body.delay.as_deref().or(req.param("delay"));
    let delay = match delay_text.map(parse_delay).transpose() {
        Ok(d) => d,
        Err(e) => return Response::error(400, e),
    };
    let client = body
        .client
        .as_deref()
        .or(req.param("client"))
        .map(|c| c.chars().take(200).collect::<String>())
        .unwrap_or_else(|| peer.to_owned());
    let (result, ending) = pdu.action(&outlet, action, delay, &client).await;
    let code = match ending {
        Ending::Done => 200,
        Ending::Failed => 502,
        Ending::Deadline => 504,
    };
    Response::json(code, &result)
}
