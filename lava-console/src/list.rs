//! `lava-console --list`: every board of the registry with its console endpoint, its PDU outlet,
//! and whether its console answers right now — all boards probed at once with a short timeout,
//! so a lab of 200 boards lists in about the time of the slowest one.

use std::time::Duration;

use lava_common::telnet::TelnetClient;
use lava_common::{Protocol, Registry};
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::hello;
use crate::target::{self, Target};

/// How long one console gets to answer during `--list`.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// One board as `--list --json` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub board: String,
    pub aliases: Vec<String>,
    /// `host:port` of its console, if it has one.
    pub console: Option<String>,
    /// `lava-serial` or `terminal-server`.
    pub served_by: &'static str,
    pub protocol: String,
    pub pdu: Option<String>,
    pub outlet: Option<String>,
    pub description: Option<String>,
    /// The console accepted a connection (and, for lava-serial, answered the hello).
    pub reachable: bool,
    /// lava-serial's word on the adapter: `present` or `gone`.
    pub adapter: Option<String>,
    /// Clients attached now (lava-serial only).
    pub clients: Option<usize>,
    /// Why it is not reachable.
    pub error: Option<String>,
}

/// What a probe found.
#[derive(Debug, Default)]
struct Probe {
    reachable: bool,
    welcome: Option<hello::Welcome>,
    error: Option<String>,
}

/// Probes every board in parallel and returns the rows in registry order.
pub async fn rows(registry: &Registry, timeout: Duration) -> Vec<Row> {
    let boards: Vec<_> = registry.boards().cloned().collect();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, b) in boards.iter().enumerate() {
        if let Ok(t) = target::for_board(b) {
            tasks.spawn(async move { (i, probe(&t, timeout).await) });
        }
    }
    let mut probes: Vec<Option<Probe>> = boards.iter().map(|_| None).collect();
    while let Some(res) = tasks.join_next().await {
        if let Ok((i, p)) = res {
            probes[i] = Some(p);
        }
    }
    boards
        .iter()
        .zip(probes)
        .map(|(b, p)| {
            let p = p.unwrap_or_else(|| Probe {
                error: Some("no console endpoint".to_owned()),
                ..Probe::default()
            });
            let lava_serial = b.console.is_none();
            Row {
                board: b.name.clone(),
                aliases: b.aliases.clone(),
                console: b.console_endpoint(),
                served_by: if lava_serial {
                    "lava-serial"
                } else {
                    "terminal-server"
                },
                protocol: b.protocol.to_string(),
                pdu: b.power.as_ref().map(|p| p.pdu.clone()),
                outlet: b.power.as_ref().map(|p| p.outlet.clone()),
                description: b.description.clone(),
                reachable: p.reachable,
                adapter: p.welcome.as_ref().map(|w| {
                    if w.adapter_present {
                        "present".to_owned()
                    } else {
                        "gone".to_owned()
                    }
                }),
                clients: p.welcome.as_ref().map(|w| w.clients),
                error: p.error,
            }
        })
        .collect()
}

/// Connects to one console. For lava-serial, says a read-only hello (so no "writer attached"
/// notice disturbs anyone) and reads the answer: whether the adapter is there and who is on.
async fn probe(t: &Target, timeout: Duration) -> Probe {
    let work = async {
        let mut s = TcpStream::connect((t.host.as_str(), t.port))
            .await
            .map_err(|e| e.to_string())?;
        if !t.lava_serial {
            return Ok(None);
        }
        s.write_all(hello::hello_line(true, None, "lava-console-list").as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut telnet = (t.protocol == Protocol::Telnet).then(TelnetClient::new);
        let (mut data, mut reply, mut buf) = (Vec::new(), Vec::new(), [0u8; 2048]);
        loop {
            let n = s.read(&mut buf).await.map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("closed the connection".to_owned());
            }
            match &mut telnet {
                Some(tc) => tc.receive(&buf[..n], &mut data, &mut reply),
                None => data.extend_from_slice(&buf[..n]),
            }
            if let Some(nl) = data.iter().position(|&b| b == b'\n') {
                let line = String::from_utf8_lossy(&data[..nl]).into_owned();
                return match hello::parse_answer(&line) {
                    Ok(w) => Ok(Some(w)),
                    Err(e) => Err(e.to_string()),
                };
            }
            if data.len() > 4096 {
                return Err("not a lava-serial answer".to_owned());
            }
        }
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(Ok(welcome)) => Probe {
            reachable: true,
            welcome,
            error: None,
        },
        Ok(Err(e)) => Probe {
            error: Some(e),
            ..Probe::default()
        },
        Err(_) => Probe {
            error: Some(format!("no answer within {timeout:?}")),
            ..Probe::default()
        },
    }
}

/// The human table.
pub fn table(rows: &[Row]) -> String {
    let cells: Vec<[String; 4]> = rows
        .iter()
        .map(|r| {
            let status = if r.reachable {
                let mut s = "up".to_owned();
                if let Some(a) = &r.adapter {
                    s.push_str(if a == "present" {
                        ", adapter present"
                    } else {
                        ", ADAPTER GONE"
                    });
                }
                if let Some(c) = r.clients {
                    s.push_str(&format!(", {c} attached"));
                }
                s
            } else {
                format!("DOWN: {}", r.error.as_deref().unwrap_or("unreachable"))
            };
            let name = if r.aliases.is_empty() {
                r.board.clone()
            } else {
                format!("{} ({})", r.board, r.aliases.join(", "))
            };
            let console = match &r.console {
                Some(c) if r.served_by == "lava-serial" => c.clone(),
                Some(c) => format!("{c} (terminal server)"),
                None => "-".to_owned(),
            };
            let power = match (&r.pdu, &r.outlet) {
                (Some(p), Some(o)) => format!("{p}/{o}"),
                _ => "-".to_owned(),
            };
            [name, console, power, status]
        })
        .collect();
    let head = [
        "BOARD".to_owned(),
        "CONSOLE".to_owned(),
        "PDU/OUTLET".to_owned(),
        "STATUS".to_owned(),
    ];
    let mut width = [0usize; 3];
    for row in std::iter::once(&head).chain(cells.iter()) {
        for (w, c) in width.iter_mut().zip(row.iter()) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&head).chain(cells.iter()) {
        out.push_str(&format!(
            "{:w0$}  {:w1$}  {:w2$}  {}\n",
            row[0],
            row[1],
            row[2],
            row[3],
            w0 = width[0],
            w1 = width[1],
            w2 = width[2]
        ));
    }
    out
}
