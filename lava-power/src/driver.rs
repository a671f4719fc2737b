//! The one trait every PDU driver implements, and the errors a driver reports: the queue, retries
//! and deadlines live above it, so a driver only says how to switch and read one outlet once.

use std::future::Future;
use std::pin::Pin;

/// A boxed future returned by drivers (the trait is used as `dyn PowerDriver`).
pub type DriverFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, DriverError>> + Send + 'a>>;

/// The state of an outlet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutletState {
    On,
    Off,
}

impl OutletState {
    pub fn as_str(self) -> &'static str {
        match self {
            OutletState::On => "on",
            OutletState::Off => "off",
        }
    }
}

impl std::fmt::Display for OutletState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why one attempt against the PDU failed; the text is what the caller and the log see.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DriverError {
    /// The PDU could not be reached (connection refused, no route, DNS).
    #[error("PDU unreachable: {0}")]
    Unreachable(String),
    /// The PDU answered, but said no (SNMP error status, HTTP 500, command exit 1, menu error).
    #[error("PDU refused: {0}")]
    Refused(String),
    /// The PDU answered something this driver does not understand.
    #[error("unexpected answer from PDU: {0}")]
    BadAnswer(String),
    /// The attempt outlived its timeout (the queue applies it; a driver may report it too).
    #[error("PDU did not answer within {0:?}")]
    Timeout(std::time::Duration),
    /// This driver cannot read outlet state.
    #[error("this driver cannot read outlet state")]
    CannotRead,
}

impl DriverError {
    /// Whether trying again may help (everything but a driver that cannot read state).
    pub fn is_retryable(&self) -> bool {
        !matches!(self, DriverError::CannotRead)
    }
}

/// One PDU model's way of switching outlets. Each call is one attempt: it must not retry on its own
/// and must finish or fail; the caller wraps it in the per-attempt timeout (so a future dropped at
/// any await point must leave nothing behind but a closed connection or a killed process).
pub trait PowerDriver: Send + Sync + 'static {
    /// The driver's name as written in the config (`command`, `snmp`, …).
    fn kind(&self) -> &'static str;

    /// Switches one outlet on or off.
    fn set(&self, outlet: &str, state: OutletState) -> DriverFuture<'_, ()>;

    /// Reads one outlet's state; `Err(DriverError::CannotRead)` when the driver cannot.
    fn get(&self, outlet: &str) -> DriverFuture<'_, OutletState>;

    /// Whether `get` can work at all (so status can say "remembered" without trying).
    fn can_read(&self) -> bool;
}
