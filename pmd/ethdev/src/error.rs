//! Errors of the port API: typed, with the numbers and names that explain them.

use thiserror::Error;

/// Why a port operation failed.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum EthError {
    /// A probe string that names no driver, or a driver argument it does not know.
    #[error("probe '{spec}': {why}")]
    BadProbe {
        /// The whole probe string.
        spec: String,
        /// What is wrong, naming the bad part.
        why: String,
    },
    /// An argument out of range or not supported by the port.
    #[error("port {port}: {what}: {why}")]
    BadArg {
        /// Port id.
        port: u16,
        /// The argument.
        what: &'static str,
        /// Why it is refused (the limits included).
        why: String,
    },
    /// The operation is not allowed in the port's current state.
    #[error("port {port}: cannot {op} while the port is {state}")]
    BadState {
        /// Port id.
        port: u16,
        /// The operation.
        op: &'static str,
        /// The state it is in.
        state: &'static str,
    },
    /// Another control operation is under way (or the device is recovering); try again later.
    #[error("port {port}: busy: {why}")]
    Busy {
        /// Port id.
        port: u16,
        /// What it is busy with.
        why: String,
    },
    /// The queue handle was already taken (one poller per queue).
    #[error("port {port}: {kind} queue {queue} is already taken by a poller")]
    QueueTaken {
        /// Port id.
        port: u16,
        /// "rx" or "tx".
        kind: &'static str,
        /// Queue index.
        queue: u16,
    },
    /// The port does not support the operation.
    #[error("port {port}: {op} is not supported by driver {driver}")]
    Unsupported {
        /// Port id.
        port: u16,
        /// The operation.
        op: &'static str,
        /// Driver name.
        driver: &'static str,
    },
    /// Out of memory or mbufs for the operation.
    #[error("port {port}: out of memory: {why}")]
    NoMem {
        /// Port id.
        port: u16,
        /// What could not be had.
        why: String,
    },
    /// The device failed the operation (with the device's own words).
    #[error("port {port}: device error: {why}")]
    Device {
        /// Port id.
        port: u16,
        /// What the device or driver reported.
        why: String,
    },
    /// The device is gone (hot-removed) or the port closed.
    #[error("port {port}: the device is gone")]
    Removed {
        /// Port id.
        port: u16,
    },
}

impl EthError {
    /// A [`EthError::BadArg`].
    pub fn bad_arg(port: u16, what: &'static str, why: impl Into<String>) -> Self {
        EthError::BadArg { port, what, why: why.into() }
    }

    /// The same error about port `id` (drivers may not know their port id).
    pub fn with_port(mut self, id: u16) -> Self {
        match &mut self {
            EthError::BadProbe { .. } => {}
            EthError::BadArg { port, .. }
            | EthError::BadState { port, .. }
            | EthError::Busy { port, .. }
            | EthError::QueueTaken { port, .. }
            | EthError::Unsupported { port, .. }
            | EthError::NoMem { port, .. }
            | EthError::Device { port, .. }
            | EthError::Removed { port } => *port = id,
        }
        self
    }

    /// A [`EthError::Device`].
    pub fn device(port: u16, why: impl Into<String>) -> Self {
        EthError::Device { port, why: why.into() }
    }
}

/// Result of port operations.
pub type EthResult<T> = Result<T, EthError>;
