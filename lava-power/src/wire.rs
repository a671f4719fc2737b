//! Every JSON body the instance API and the gateway send or accept (docs/protocols.md §2–§3), in one
//! module so the server, the gateway and the client cannot drift apart.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::driver::OutletState;

/// What a caller asks an outlet to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    On,
    Off,
    /// off → delay → on, atomic for the outlet.
    Reboot,
}

impl Action {
    /// The word used on every wire (`on`, `off`, `reboot`).
    pub fn as_str(self) -> &'static str {
        match self {
            Action::On => "on",
            Action::Off => "off",
            Action::Reboot => "reboot",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Action {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "on" => Ok(Action::On),
            "off" => Ok(Action::Off),
            "reboot" => Ok(Action::Reboot),
            other => Err(format!("unknown action `{other}`: use on, off or reboot")),
        }
    }
}

/// The outcome of one power request, as the caller gets it and the log records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionResult {
    pub ok: bool,
    pub pdu: String,
    pub outlet: String,
    pub action: Action,
    /// Driver attempts made (all steps of a reboot counted).
    pub attempts: u32,
    pub duration_ms: u64,
    /// Why it failed, in the PDU's or the driver's words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// An outlet's state as reported: `unknown` when neither read nor remembered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StateReport {
    On,
    Off,
    Unknown,
}

impl From<OutletState> for StateReport {
    fn from(s: OutletState) -> Self {
        match s {
            OutletState::On => StateReport::On,
            OutletState::Off => StateReport::Off,
        }
    }
}

impl fmt::Display for StateReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StateReport::On => "on",
            StateReport::Off => "off",
            StateReport::Unknown => "unknown",
        })
    }
}

/// Where a reported state comes from: so nobody mistakes a remembered state for a measured one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StateSource {
    /// The PDU said so just now.
    Read,
    /// The last state this service set; the driver cannot read state (or the read failed).
    Remembered,
    /// Nothing known.
    None,
}

impl fmt::Display for StateSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StateSource::Read => "read",
            StateSource::Remembered => "remembered",
            StateSource::None => "none",
        })
    }
}

/// One outlet in `GET /v1/outlets`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutletEntry {
    pub outlet: String,
    #[serde(default)]
    pub name: Option<String>,
    pub state: StateReport,
    pub source: StateSource,
}

/// `GET /v1/outlets/{outlet}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutletStatus {
    pub pdu: String,
    pub outlet: String,
    #[serde(default)]
    pub name: Option<String>,
    pub state: StateReport,
    pub source: StateSource,
}

/// `GET /v1/outlets`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutletList {
    pub pdu: String,
    pub outlets: Vec<OutletEntry>,
}

/// `GET /v1/health`: is the instance up, and how busy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    pub pdu: String,
    pub driver: String,
    /// Requests waiting or running now.
    pub queued: usize,
    pub ok: bool,
}

/// The gateway's `GET /v1/pdus`: every instance it can see, with its health (or why not).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PduList {
    pub pdus: Vec<PduEntry>,
}

/// One instance seen by the gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PduEntry {
    pub pdu: String,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queued: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Every non-result error answer: `{"ok":false,"error":"..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub ok: bool,
    pub error: String,
}

/// The optional JSON body of a power request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionRequest {
    /// Reboot's off → on delay (`"5s"`, `"500ms"`, or seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<String>,
    /// Who asks, for the log (`lava-console alice@laptop`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
}
