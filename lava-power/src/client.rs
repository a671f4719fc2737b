//! The client of the instance API (docs/protocols.md §2), straight to an instance's unix socket or
//! through a gateway's `/v1/pdus/{pdu}/…` routes: what lava-console and the `lava-power on|off|…`
//! commands use, with errors that tell an admin what to check.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::DeserializeOwned;
use tokio::net::{TcpStream, UnixStream};

use crate::http::{client_request, percent_encode};
pub use crate::wire::{
    Action, ActionResult, Health, OutletList, OutletStatus, PduList, StateReport, StateSource,
};
use crate::wire::{ActionRequest, ErrorBody};

/// Default runtime dir of instance sockets.
pub const DEFAULT_RUNTIME_DIR: &str = "/run/lava-power";
/// Default gateway port (pdudaemon's).
pub const GATEWAY_PORT: u16 = 16421;
/// How long the client waits for any answer: a backstop only, since the service answers every
/// request within its deadline (25 s by default).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// Why a request did not get an answer from lava-power. A PDU that failed is not an error here:
/// [`PowerClient::action`] returns its [`ActionResult`] with `ok: false`.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing listening (instance not running, gateway down, wrong host).
    #[error("cannot reach {what}: {source} ({hint})")]
    Unreachable {
        what: String,
        source: std::io::Error,
        hint: String,
    },
    /// The service answered with an error (unknown outlet, bad delay, unknown PDU…).
    #[error("{what} answered {status}: {message}")]
    Refused {
        what: String,
        status: u16,
        message: String,
    },
    /// The answer was not what the protocol says.
    #[error("bad answer from {what}: {message}")]
    Protocol { what: String, message: String },
    /// No answer in time.
    #[error("no answer from {what} within {after:?}")]
    Timeout { what: String, after: Duration },
}

impl ClientError {
    /// The HTTP status the service answered with, when it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Refused { status, .. } => Some(*status),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
enum Target {
    Instance { socket: PathBuf },
    Gateway { addr: String },
}

/// A handle on one PDU's API, direct or through a gateway. Cheap; holds no connection (each
/// request opens its own, as the API closes after each answer).
#[derive(Debug, Clone)]
pub struct PowerClient {
    target: Target,
    pdu: String,
    timeout: Duration,
}

impl PowerClient {
    /// The instance of `pdu` on this host: `RUNTIME_DIR/PDU.sock`.
    pub fn instance(runtime_dir: &Path, pdu: &str) -> PowerClient {
        PowerClient {
            target: Target::Instance {
                socket: crate::serve::socket_path(runtime_dir, pdu),
            },
            pdu: pdu.to_owned(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// `pdu` through the gateway at `addr` (`host:port`; a bare host gets port 16421).
    pub fn gateway(addr: &str, pdu: &str) -> PowerClient {
        let addr = if addr
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
            && !addr.ends_with(']')
        {
            addr.to_owned()
        } else {
            format!("{addr}:{GATEWAY_PORT}")
        };
        PowerClient {
            target: Target::Gateway { addr },
            pdu: pdu.to_owned(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Changes how long to wait for an answer.
    pub fn with_timeout(mut self, timeout: Duration) -> PowerClient {
        self.timeout = timeout;
        self
    }

    /// The PDU this client talks to.
    pub fn pdu(&self) -> &str {
        &self.pdu
    }

    /// Where requests go, in words (for messages).
    pub fn describe(&self) -> String {
        match &self.target {
            Target::Instance { socket } => {
                format!("lava-power instance {} at {}", self.pdu, socket.display())
            }
            Target::Gateway { addr } => {
                format!("lava-power gateway at {addr} (PDU {})", self.pdu)
            }
        }
    }

    fn hint(&self) -> String {
        match &self.target {
            Target::Instance { .. } => format!("is lava-power@{} running?", self.pdu),
            Target::Gateway { .. } => {
                "is lava-power-gateway running on that host, and reachable from here?".to_owned()
            }
        }
    }

    fn path(&self, rest: &str) -> String {
        match &self.target {
            Target::Instance { .. } => format!("/v1/{rest}"),
            Target::Gateway { .. } => format!("/v1/pdus/{}/{rest}", percent_encode(&self.pdu)),
        }
    }

    /// Switches an outlet and waits until done. `Ok` carries the result whether the PDU obeyed
    /// (`ok: true`) or failed (`ok: false`, with the reason); `Err` means no result was had.
    pub async fn action(
        &self,
        outlet: &str,
        action: Action,
        delay: Option<Duration>,
        client: &str,
    ) -> Result<ActionResult, ClientError> {
        let body = ActionRequest {
            delay: delay.map(|d| format!("{}ms", d.as_millis())),
            client: (!client.is_empty()).then(|| client.to_owned()),
        };
        let body = serde_json::to_vec(&body).map_err(|e| self.protocol(e.to_string()))?;
        let path = self.path(&format!("outlets/{}/{}", percent_encode(outlet), action));
        let (status, bytes) = self.round_trip("POST", &path, Some(&body)).await?;
        match status {
            200 | 502 | 504 => serde_json::from_slice(&bytes)
                .map_err(|e| self.protocol(format!("{e}: {}", String::from_utf8_lossy(&bytes)))),
            _ => Err(self.refused(status, &bytes)),
        }
    }

    /// One outlet's state (read from the PDU, or remembered when the driver cannot read).
    pub async fn status(&self, outlet: &str) -> Result<OutletStatus, ClientError> {
        self.get(&self.path(&format!("outlets/{}", percent_encode(outlet))))
            .await
    }

    /// Every known outlet with its name and state.
    pub async fn outlets(&self) -> Result<OutletList, ClientError> {
        self.get(&self.path("outlets")).await
    }

    /// Whether the instance is up, and its queue length.
    pub async fn health(&self) -> Result<Health, ClientError> {
        self.get(&self.path("health")).await
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let (status, bytes) = self.round_trip("GET", path, None).await?;
        if status != 200 {
            return Err(self.refused(status, &bytes));
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| self.protocol(format!("{e}: {}", String::from_utf8_lossy(&bytes))))
    }

    async fn round_trip(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<(u16, Vec<u8>), ClientError> {
        let work = async {
            match &self.target {
                Target::Instance { socket } => {
                    let mut s = UnixStream::connect(socket)
                        .await
                        .map_err(|e| self.unreachable(e))?;
                    client_request(&mut s, method, path, body)
                        .await
                        .map_err(|m| self.protocol(m))
                }
                Target::Gateway { addr } => {
                    let mut s = TcpStream::connect(addr.as_str())
                        .await
                        .map_err(|e| self.unreachable(e))?;
                    let _ = s.set_nodelay(true);
                    client_request(&mut s, method, path, body)
                        .await
                        .map_err(|m| self.protocol(m))
                }
            }
        };
        tokio::time::timeout(self.timeout, work)
            .await
            .unwrap_or_else(|_| {
                Err(ClientError::Timeout {
                    what: self.describe(),
                    after: self.timeout,
                })
            })
    }

    fn unreachable(&self, source: std::io::Error) -> ClientError {
        ClientError::Unreachable {
            what: self.describe(),
            source,
            hint: self.hint(),
        }
    }

    fn protocol(&self, message: String) -> ClientError {
        ClientError::Protocol {
            what: self.describe(),
            message,
        }
    }

    fn refused(&self, status: u16, bytes: &[u8]) -> ClientError {
        let message = serde_json::from_slice::<ErrorBody>(bytes)
            .map(|e| e.error)
            .unwrap_or_else(|_| String::from_utf8_lossy(bytes).trim().to_owned());
        ClientError::Refused {
            what: self.describe(),
            status,
            message,
        }
    }
}

/// Every instance a gateway sees (`GET /v1/pdus`).
pub async fn gateway_pdus(addr: &str) -> Result<PduList, ClientError> {
    let c = PowerClient::gateway(addr, "");
    c.get("/v1/pdus").await
}
