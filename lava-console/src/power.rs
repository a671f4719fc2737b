//! Powering a board through its PDU outlet (docs/protocols.md §4): the local lava-power instance
//! socket when this host has one for the PDU, else the gateway of the PDU's host. Every request
//! ends in one line saying what happened, and a success flag the exit code follows.

use std::path::{Path, PathBuf};
use std::time::Duration;

use lava_common::Board;
use lava_power::client::{Action, ClientError, PowerClient};

use crate::cli::Verb;

/// Default runtime dir of lava-power's instance sockets.
pub const DEFAULT_RUNTIME_DIR: &str = lava_power::client::DEFAULT_RUNTIME_DIR;

/// Where power requests of one board go.
#[derive(Debug, Clone)]
pub struct PowerRoute {
    pub board: String,
    pub pdu: String,
    pub outlet: String,
    pub client: PowerClient,
}

/// Settings that decide the route, from flags and environment.
#[derive(Debug, Clone, Default)]
pub struct PowerSettings {
    pub runtime_dir: Option<PathBuf>,
    pub gateway: Option<String>,
    pub timeout: Duration,
}

impl PowerSettings {
    /// The runtime dir in use (flag, `LAVA_POWER_RUNTIME_DIR`, or `/run/lava-power`).
    pub fn runtime_dir(&self) -> &Path {
        self.runtime_dir
            .as_deref()
            .unwrap_or(Path::new(DEFAULT_RUNTIME_DIR))
    }
}

/// A board that cannot be powered.
#[derive(Debug, thiserror::Error)]
#[error("{0}: no `power = {{ pdu = \"...\", outlet = \"...\" }}` in the registry, so lava-console cannot power it")]
pub struct NoPower(pub String);

/// The route of a board's power requests.
pub fn route(board: &Board, settings: &PowerSettings) -> Result<PowerRoute, NoPower> {
    let power = board
        .power
        .as_ref()
        .ok_or_else(|| NoPower(board.name.clone()))?;
    let socket = lava_power::serve::socket_path(settings.runtime_dir(), &power.pdu);
    let client = if socket.exists() {
        PowerClient::instance(settings.runtime_dir(), &power.pdu)
    } else {
        PowerClient::gateway(&gateway_addr(board, settings), &power.pdu)
    };
    Ok(PowerRoute {
        board: board.name.clone(),
        pdu: power.pdu.clone(),
        outlet: power.outlet.clone(),
        client: client.with_timeout(settings.timeout),
    })
}

/// The gateway for a board: `LAVA_POWER_GATEWAY`/`--power-gateway`, else the PDU's host (or the
/// board's host) on lava-power's gateway port.
pub fn gateway_addr(board: &Board, settings: &PowerSettings) -> String {
    if let Some(g) = &settings.gateway {
        return g.clone();
    }
    format!(
        "{}:{}",
        gateway_host(board),
        lava_power::client::GATEWAY_PORT
    )
}

/// The host whose lava-power gateway serves the board's PDU.
pub fn gateway_host(board: &Board) -> String {
    board
        .power
        .as_ref()
        .and_then(|p| p.host.clone())
        .or_else(|| board.host.clone())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// What a power request came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub ok: bool,
    /// One line for a person (no line end).
    pub line: String,
}

/// Runs one power verb and describes the result.
pub async fn run(route: &PowerRoute, verb: Verb, client_name: &str) -> Outcome {
    let what = format!("PDU {} outlet {}", route.pdu, route.outlet);
    let action = match verb {
        Verb::Hardreset => Action::Reboot,
        Verb::On => Action::On,
        Verb::Off => Action::Off,
        Verb::Status => {
            return match route.client.status(&route.outlet).await {
                Ok(s) => Outcome {
                    ok: true,
                    line: format!(
                        "{}: power is {} ({what}, {})",
                        route.board,
                        s.state,
                        match s.source {
                            lava_power::client::StateSource::Read => "read from the PDU",
                            lava_power::client::StateSource::Remembered =>
                                "as last set; the PDU cannot be read",
                            lava_power::client::StateSource::None => "nothing known",
                        }
                    ),
                },
                Err(e) => failed(route, verb, &what, &e),
            };
        }
    };
    match route
        .client
        .action(&route.outlet, action, None, client_name)
        .await
    {
        Ok(r) if r.ok => Outcome {
            ok: true,
            line: format!(
                "{}: {} done ({what}, {:.1} s{})",
                route.board,
                verb.word(),
                r.duration_ms as f64 / 1000.0,
                if r.attempts > 1 + u32::from(verb == Verb::Hardreset) {
                    format!(", {} attempts", r.attempts)
                } else {
                    String::new()
                }
            ),
        },
        Ok(r) => Outcome {
            ok: false,
            line: format!(
                "{}: {} FAILED ({what}, {} attempts, {:.1} s): {}",
                route.board,
                verb.word(),
                r.attempts,
                r.duration_ms as f64 / 1000.0,
                r.error.as_deref().unwrap_or("the PDU gave no reason")
            ),
        },
        Err(e) => failed(route, verb, &what, &e),
    }
}

/// A request that got no result: `what` names the PDU outlet.
fn failed(route: &PowerRoute, verb: Verb, what: &str, e: &ClientError) -> Outcome {
    Outcome {
        ok: false,
        line: format!("{}: {} FAILED ({what}): {e}", route.board, verb.word()),
    }
}
