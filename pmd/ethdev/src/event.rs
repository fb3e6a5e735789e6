//! Port events and their callbacks.
//!
//! Callbacks are called with no lock held (the list is copied under a short lock, then called),
//! so a callback may call any port operation, `stop` and `close` included.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// What happened (`RTE_ETH_EVENT_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    /// Link state changed.
    LinkChange,
    /// The device is gone (hot removal). Terminal: no recovery follows.
    IntrRmv,
    /// The device failed and the driver started recovering (bursts return 0 meanwhile).
    ErrRecovering,
    /// Recovery finished: the port works again, as configured.
    RecoverySuccess,
    /// Recovery gave up: the port is unusable until closed.
    RecoveryFailed,
    /// One queue failed (e.g. a send queue the device disabled) and is being recovered alone.
    QueueError,
}

impl EventType {
    /// DPDK's name for it.
    pub fn name(self) -> &'static str {
        match self {
            EventType::LinkChange => "LSC",
            EventType::IntrRmv => "INTR_RMV",
            EventType::ErrRecovering => "ERR_RECOVERING",
            EventType::RecoverySuccess => "RECOVERY_SUCCESS",
            EventType::RecoveryFailed => "RECOVERY_FAILED",
            EventType::QueueError => "QUEUE_ERROR",
        }
    }
}

/// One event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Port id.
    pub port: u16,
    /// Kind.
    pub kind: EventType,
    /// The queue concerned, for queue events.
    pub queue: Option<u16>,
    /// Free text (the cause, a count).
    pub detail: String,
}

/// A callback.
pub type Callback = Arc<dyn Fn(&Event) + Send + Sync>;

/// A registered callback's id (to unregister it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CallbackId(u64);

/// The callbacks of a port, and the way drivers raise events.
#[derive(Default)]
pub struct Events {
    port: u16,
    list: Mutex<Vec<(CallbackId, Option<EventType>, Callback)>>,
    next: AtomicU64,
    raised: AtomicU64,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Events(port {}, raised {})", self.port, self.raised.load(Ordering::Relaxed))
    }
}

impl Events {
    /// The events of port `port`.
    pub fn new(port: u16) -> Self {
        Events { port, ..Default::default() }
    }

    /// Registers `cb` for events of kind `kind` (all kinds if `None`).
    pub fn register(&self, kind: Option<EventType>, cb: Callback) -> CallbackId {
        let id = CallbackId(self.next.fetch_add(1, Ordering::Relaxed));
        self.lock().push((id, kind, cb));
        id
    }

    /// Unregisters a callback; false if it was not registered.
    pub fn unregister(&self, id: CallbackId) -> bool {
        let mut l = self.lock();
        let before = l.len();
        l.retain(|(i, _, _)| *i != id);
        before != l.len()
    }

    /// Raises an event: calls every matching callback, in registration order, on this thread,
    /// with no lock held.
    pub fn raise(&self, kind: EventType, queue: Option<u16>, detail: impl Into<String>) {
        let ev = Event { port: self.port, kind, queue, detail: detail.into() };
        self.raised.fetch_add(1, Ordering::Relaxed);
        let cbs: Vec<Callback> = self
            .lock()
            .iter()
            .filter(|(_, k, _)| k.is_none_or(|k| k == kind))
            .map(|(_, _, cb)| cb.clone())
            .collect();
        for cb in cbs {
            cb(&ev);
        }
    }

    /// Events raised so far.
    pub fn raised(&self) -> u64 {
        self.raised.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(CallbackId, Option<EventType>, Callback)>> {
        // A callback that panicked while registering cannot leave the list half-changed (each
        // change is one Vec operation), so a poisoned lock is still a good list.
        self.list.lock().unwrap_or_else(|e| e.into_inner())
    }
}
