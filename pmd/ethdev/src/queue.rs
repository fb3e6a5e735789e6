//! Queues: what a driver implements ([`RxBurst`], [`TxBurst`]) and what a poller holds
//! ([`RxQueue`], [`TxQueue`]).
//!
//! A burst goes: the port's dispatch (live or "removed" functions, swapped atomically by the
//! control side) -> the queue's gate (see [`crate::gate`]) -> the driver's burst function. The
//! handles are `Send` but not `Sync`, and each queue has at most one: one poller per queue.
#![allow(unsafe_code)]

use std::cell::Cell;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use crate::gate::QueueSlot;
use crate::pkts::Pkts;
use crate::stats::{RxQueueStats, TxQueueStats};

/// A driver's RX queue state: the poller's side.
pub trait RxBurst: Send + 'static {
    /// Appends up to `max` received packets to `out` (never more than its room); returns how
    /// many.
    fn rx_burst(&mut self, out: &mut Pkts, max: usize) -> usize;
    /// The queue's counters (readable from any thread).
    fn stats(&self) -> &Arc<RxQueueStats>;
}

/// A driver's TX queue state: the poller's side.
pub trait TxBurst: Send + 'static {
    /// Takes packets from the front of `pkts` (a prefix: it stops at the first one it cannot
    /// send and never skips one); returns how many it took. The rest stay in `pkts`.
    fn tx_burst(&mut self, pkts: &mut Pkts) -> usize;
    /// The queue's counters (readable from any thread).
    fn stats(&self) -> &Arc<TxQueueStats>;
}

/// An RX slot as the port API sees it, whatever the driver's state type.
pub trait RxSlot: Send + Sync + 'static {
    /// Poller side: a burst inside the gate; 0 if the gate is closed.
    ///
    /// # Safety
    /// Only the one handle of this slot calls it.
    unsafe fn burst(&self, out: &mut Pkts, max: usize) -> usize;
    /// Marks the slot taken by a handle; false if it already was.
    fn take(&self) -> bool;
    /// The handle was dropped.
    fn untake(&self);
    /// Whether the gate is closed.
    fn closed(&self) -> bool;
}

/// A TX slot as the port API sees it.
pub trait TxSlot: Send + Sync + 'static {
    /// Poller side: a burst inside the gate; 0 if the gate is closed.
    ///
    /// # Safety
    /// Only the one handle of this slot calls it.
    unsafe fn burst(&self, pkts: &mut Pkts) -> usize;
    /// Marks the slot taken by a handle; false if it already was.
    fn take(&self) -> bool;
    /// The handle was dropped.
    fn untake(&self);
    /// Whether the gate is closed.
    fn closed(&self) -> bool;
}

impl<T: RxBurst> RxSlot for QueueSlot<T> {
    #[inline(always)]
    unsafe fn burst(&self, out: &mut Pkts, max: usize) -> usize {
        // SAFETY: forwarded: the caller is the slot's only poller.
        unsafe { self.poll(|q| q.rx_burst(out, max)) }.unwrap_or(0)
    }
    fn take(&self) -> bool {
        QueueSlot::take(self)
    }
    fn untake(&self) {
        QueueSlot::untake(self)
    }
    fn closed(&self) -> bool {
        self.gate().is_closed()
    }
}

impl<T: TxBurst> TxSlot for QueueSlot<T> {
    #[inline(always)]
    unsafe fn burst(&self, pkts: &mut Pkts) -> usize {
        // SAFETY: forwarded: the caller is the slot's only poller.
        unsafe { self.poll(|q| q.tx_burst(pkts)) }.unwrap_or(0)
    }
    fn take(&self) -> bool {
        QueueSlot::take(self)
    }
    fn untake(&self) {
        QueueSlot::untake(self)
    }
    fn closed(&self) -> bool {
        self.gate().is_closed()
    }
}

/// Burst functions of a port: the live ones or the "removed" ones.
#[derive(Debug)]
pub struct BurstOps {
    /// Name, for diagnostics.
    pub name: &'static str,
    /// RX.
    pub rx: unsafe fn(&dyn RxSlot, &mut Pkts, usize) -> usize,
    /// TX.
    pub tx: unsafe fn(&dyn TxSlot, &mut Pkts) -> usize,
}

/// Through the gate to the driver.
pub static LIVE: BurstOps = BurstOps { name: "live", rx: live_rx, tx: live_tx };

/// # Safety
/// The caller is the slot's only poller.
unsafe fn live_rx(s: &dyn RxSlot, out: &mut Pkts, max: usize) -> usize {
    // SAFETY: forwarded from the handle, the slot's only poller.
    unsafe { s.burst(out, max) }
}

/// # Safety
/// The caller is the slot's only poller.
unsafe fn live_tx(s: &dyn TxSlot, pkts: &mut Pkts) -> usize {
    // SAFETY: forwarded from the handle, the slot's only poller.
    unsafe { s.burst(pkts) }
}

/// A removed or failed device: nothing is received, nothing is taken (the caller keeps its
/// packets), the queue state is not touched.
pub static REMOVED: BurstOps = BurstOps { name: "removed", rx: |_, _, _| 0, tx: |_, _| 0 };

const DISPATCH: [&BurstOps; 2] = [&LIVE, &REMOVED];

/// A port's burst dispatch: which [`BurstOps`] its queues go through.
#[derive(Debug, Default)]
pub struct Dispatch(AtomicU8);

impl Dispatch {
    /// Live functions.
    pub fn new() -> Self {
        Dispatch(AtomicU8::new(0))
    }

    /// Swaps to the "removed" functions (bursts return 0 without entering a queue).
    pub fn set_removed(&self) {
        self.0.store(1, Ordering::Release);
    }

    /// Swaps back to the live functions.
    pub fn set_live(&self) {
        self.0.store(0, Ordering::Release);
    }

    /// The functions in force.
    #[inline(always)]
    pub fn ops(&self) -> &'static BurstOps {
        DISPATCH[(self.0.load(Ordering::Acquire) & 1) as usize]
    }
}

/// The poller's handle to an RX queue. `Send`, not `Sync`; one per queue.
pub struct RxQueue {
    slot: Arc<dyn RxSlot>,
    dispatch: Arc<Dispatch>,
    port: u16,
    queue: u16,
    _not_sync: PhantomData<Cell<()>>,
}

impl RxQueue {
    /// Takes the handle of `slot`; `None` if it already has one.
    pub(crate) fn take(
        slot: Arc<dyn RxSlot>,
        dispatch: Arc<Dispatch>,
        port: u16,
        queue: u16,
    ) -> Option<Self> {
        // `then`, not `then_some`: a handle built for a refused take would un-take the slot
        // when dropped, letting a second poller in.
        slot.take().then(|| RxQueue { slot, dispatch, port, queue, _not_sync: PhantomData })
    }

    /// Receives up to `max` packets into `out` (appended); returns how many.
    #[inline(always)]
    pub fn rx_burst(&mut self, out: &mut Pkts, max: usize) -> usize {
        let max = max.min(out.room());
        // SAFETY: this handle is the slot's only poller (taken once; not Sync, and `&mut self`).
        unsafe { (self.dispatch.ops().rx)(&*self.slot, out, max) }
    }

    /// Port id.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Queue index.
    pub fn queue(&self) -> u16 {
        self.queue
    }

    /// Whether the queue is stopped (its gate closed).
    pub fn stopped(&self) -> bool {
        self.slot.closed()
    }
}

impl Drop for RxQueue {
    fn drop(&mut self) {
        self.slot.untake();
    }
}

impl std::fmt::Debug for RxQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RxQueue(port {}, queue {})", self.port, self.queue)
    }
}

/// The poller's handle to a TX queue. `Send`, not `Sync`; one per queue.
pub struct TxQueue {
    slot: Arc<dyn TxSlot>,
    dispatch: Arc<Dispatch>,
    port: u16,
    queue: u16,
    _not_sync: PhantomData<Cell<()>>,
}

impl TxQueue {
    /// Takes the handle of `slot`; `None` if it already has one.
    pub(crate) fn take(
        slot: Arc<dyn TxSlot>,
        dispatch: Arc<Dispatch>,
        port: u16,
        queue: u16,
    ) -> Option<Self> {
        // `then`, not `then_some`: a handle built for a refused take would un-take the slot
        // when dropped, letting a second poller in.
        slot.take().then(|| TxQueue { slot, dispatch, port, queue, _not_sync: PhantomData })
    }

    /// Sends packets from the front of `pkts`; returns how many were taken (a prefix). The
    /// rest stay in `pkts`: send them later or free them.
    #[inline(always)]
    pub fn tx_burst(&mut self, pkts: &mut Pkts) -> usize {
        // SAFETY: this handle is the slot's only poller.
        unsafe { (self.dispatch.ops().tx)(&*self.slot, pkts) }
    }

    /// Port id.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Queue index.
    pub fn queue(&self) -> u16 {
        self.queue
    }

    /// Whether the queue is stopped (its gate closed).
    pub fn stopped(&self) -> bool {
        self.slot.closed()
    }
}

impl Drop for TxQueue {
    fn drop(&mut self) {
        self.slot.untake();
    }
}

impl std::fmt::Debug for TxQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TxQueue(port {}, queue {})", self.port, self.queue)
    }
}
