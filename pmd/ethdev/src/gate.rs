//! The per-queue gate: how a control thread gets a queue's state away from its poller without a
//! lock on the fast path and without RCU.
//!
//! A [`QueueSlot`] holds a queue's state. Its one poller (the queue handle, `Send` but not
//! `Sync`, taken once) enters the gate around every burst; a controller (stop, recovery) closes
//! the gate and waits until the poller is out, after which it has the state to itself until it
//! opens the gate again. A burst that finds the gate closed does nothing and returns 0.
//!
//! The protocol is Dekker's, on two flags that each have one writer:
//!
//! | step | poller (every burst) | controller (close) |
//! |---|---|---|
//! | 1 | `busy = true` (SeqCst: one locked instruction on x86) | `closed = true` (SeqCst) |
//! | 2 | read `closed` (SeqCst); if set: `busy = false`, return 0 | read `busy` (SeqCst) until false |
//! | 3 | the burst; then `busy = false` (Release) | the state is the controller's |
//!
//! - G1 (SeqCst pair): in the single total order of SeqCst operations either the poller's read of
//!   `closed` comes after the controller's write (it backs out without touching the state), or the
//!   controller's read of `busy` comes after the poller's write (it waits for the leave).
//! - G2 (Release/Acquire): the poller's leave (Release) synchronises with the controller's read
//!   that sees `busy == false` (SeqCst, so Acquire): everything the burst wrote is visible to the
//!   controller.
//! - G3 (Release/Acquire): opening (`closed = false`, Release) synchronises with the next enter's
//!   read of `closed` (Acquire): everything the controller wrote is visible to the poller.
//!
//! Controllers exclude each other with an owner flag taken by compare-and-swap, never a lock, so
//! no lock is held while a controller waits for the poller. The wait has no time limit (freeing a
//! queue under a running burst would be a use-after-free); it spins, then yields, and reports each
//! second it has waited through the `on_slow` hook.
#![allow(unsafe_code)]

use std::time::{Duration, Instant};

#[cfg(loom)]
use loom::sync::atomic::{AtomicBool, AtomicU64, Ordering};
#[cfg(not(loom))]
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crossbeam_utils::CachePadded;

/// The ordering of the plain stores to `busy` and `closed` that end a G1 interval: the poller's
/// leave and back-out (`busy = false`) and the controller's open (`closed = false`). Release.
///
/// Under loom they are SeqCst, for the model's sake only. Loom treats SeqCst accesses as AcqRel
/// except for one rule: a SeqCst load never reads a SeqCst store older than the newest SeqCst
/// store to that location. It lets a SeqCst load read an older *non*-SeqCst store, which C11
/// forbids when that store happens before the newest SeqCst store preceding the load in the
/// total order S; here every such store does (the poller's leave is sequenced before its next
/// enter; an open happens before the next close through the owner flag; the initial values
/// happen before everything). With the shipped Release stores loom therefore reports G1
/// "violations" that C11 (and x86) rule out: a controller reading the `busy == false` of the
/// previous leave after the poller's newer SeqCst `busy = true`. As SeqCst stores they are
/// hidden exactly as C11 hides them, and for synchronisation loom still treats them as Release
/// stores, so G2 and G3 are modelled as shipped. `tests/loom.rs` relies on this.
#[cfg(not(loom))]
const END: Ordering = Ordering::Release;
#[cfg(loom)]
const END: Ordering = Ordering::SeqCst;

/// The flags of a gate.
#[derive(Debug)]
pub struct Gate {
    /// Written by the poller only: it is inside a burst.
    busy: CachePadded<AtomicBool>,
    /// Written by the owning controller only: pollers must stay out.
    closed: CachePadded<AtomicBool>,
    /// A controller owns the gate (taken by CAS; excludes other controllers).
    owned: AtomicBool,
    /// Bursts that found the gate closed (poller-written, read by anyone).
    refused: AtomicU64,
}

impl Gate {
    /// An open gate (`closed == false`) or a closed one.
    pub fn new(closed: bool) -> Self {
        let g = Gate {
            busy: CachePadded::new(AtomicBool::new(false)),
            closed: CachePadded::new(AtomicBool::new(closed)),
            owned: AtomicBool::new(false),
            refused: AtomicU64::new(0),
        };
        // Loom records an atomic's initial value as a Release store; make it a SeqCst one for
        // the reason given at `END`.
        #[cfg(loom)]
        {
            g.busy.store(false, Ordering::SeqCst);
            g.closed.store(closed, Ordering::SeqCst);
        }
        g
    }

    /// Poller: tries to enter. False (and nothing entered) if the gate is closed.
    #[inline(always)]
    fn enter(&self) -> bool {
        // G1: the write of `busy` and the read of `closed` are both SeqCst.
        self.busy.store(true, Ordering::SeqCst);
        // G3 (Acquire part): sees what the controller wrote before it opened.
        if self.closed.load(Ordering::SeqCst) {
            self.busy.store(false, END);
            self.refused.store(self.refused.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// Poller: leaves (G2, Release: the burst's writes before it).
    #[inline(always)]
    fn leave(&self) {
        self.busy.store(false, END);
    }

    /// Whether the gate is closed now.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Bursts that found the gate closed.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Controller: takes ownership, closes, and waits until the poller is out. `None` if another
    /// controller owns the gate now. `on_slow(waited)` is called about once a second while the
    /// poller stays inside (a burst that does not return).
    fn close(&self, mut on_slow: impl FnMut(Duration)) -> Option<()> {
        if self.owned.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed).is_err() {
            return None;
        }
        // G1.
        self.closed.store(true, Ordering::SeqCst);
        let start = Instant::now();
        let mut next_report = Duration::from_secs(1);
        let mut spins = 0u32;
        // G1, and G2 (Acquire part) once it reads false.
        while self.busy.load(Ordering::SeqCst) {
            spins += 1;
            if spins < 1024 {
                core::hint::spin_loop();
                #[cfg(loom)]
                loom::thread::yield_now();
            } else {
                std::thread::yield_now();
                let waited = start.elapsed();
                if waited >= next_report {
                    on_slow(waited);
                    next_report += Duration::from_secs(1);
                }
            }
        }
        Some(())
    }

    /// Controller: opens (G3, Release) and gives up ownership.
    fn open(&self) {
        self.closed.store(false, END);
        self.owned.store(false, Ordering::Release);
    }

    /// Controller: gives up ownership, leaving the gate closed.
    fn release(&self) {
        self.owned.store(false, Ordering::Release);
    }
}

/// Interior storage of a slot: `std`'s `UnsafeCell`, or loom's (which checks the accesses).
#[derive(Debug)]
struct Cell<T> {
    #[cfg(not(loom))]
    v: std::cell::UnsafeCell<T>,
    #[cfg(loom)]
    v: loom::cell::UnsafeCell<T>,
}

impl<T> Cell<T> {
    fn new(v: T) -> Self {
        #[cfg(not(loom))]
        return Cell { v: std::cell::UnsafeCell::new(v) };
        #[cfg(loom)]
        return Cell { v: loom::cell::UnsafeCell::new(v) };
    }

    /// # Safety
    /// The caller has exclusive access for the duration of `f` (the gate protocol).
    #[inline(always)]
    unsafe fn with_mut<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        #[cfg(not(loom))]
        // SAFETY: exclusive access per the caller's contract.
        return f(unsafe { &mut *self.v.get() });
        #[cfg(loom)]
        // SAFETY: as above; loom checks it.
        return self.v.with_mut(|p| f(unsafe { &mut *p }));
    }
}

/// A queue's state behind its gate.
///
/// The driver that creates a slot keeps an `Arc` to reach the state from the control side
/// ([`QueueSlot::exclusive`]); the port API gives the poller side to exactly one queue handle.
#[derive(Debug)]
pub struct QueueSlot<T> {
    gate: Gate,
    data: Cell<T>,
    /// A queue handle exists for this slot (one poller per queue).
    taken: AtomicBool,
}

// SAFETY: the state is reached by the one poller inside the gate, or by the owning controller
// while the gate is closed and the poller out (module docs, G1-G3); never by both. `T: Send`
// because it moves between those threads.
unsafe impl<T: Send> Sync for QueueSlot<T> {}

impl<T> QueueSlot<T> {
    /// A slot with `state`, its gate open or closed.
    pub fn new(state: T, closed: bool) -> Self {
        QueueSlot { gate: Gate::new(closed), data: Cell::new(state), taken: AtomicBool::new(false) }
    }

    /// The gate (to read its flags and counters).
    pub fn gate(&self) -> &Gate {
        &self.gate
    }

    /// Marks the slot taken by a poller; false if it already was.
    pub(crate) fn take(&self) -> bool {
        !self.taken.swap(true, Ordering::AcqRel)
    }

    /// The poller handle was dropped: the slot may be taken again.
    pub(crate) fn untake(&self) {
        self.taken.store(false, Ordering::Release);
    }

    /// Poller side: runs `f` on the state inside the gate; `None` if the gate is closed.
    ///
    /// # Safety
    /// Only the one poller of this slot calls it (the handle that took it), never two threads at
    /// once.
    #[inline(always)]
    pub(crate) unsafe fn poll<R>(&self, f: impl FnOnce(&mut T) -> R) -> Option<R> {
        if !self.gate.enter() {
            return None;
        }
        // Leaves on every path, unwinding included.
        struct Leave<'a>(&'a Gate);
        impl Drop for Leave<'_> {
            #[inline(always)]
            fn drop(&mut self) {
                self.0.leave();
            }
        }
        let _leave = Leave(&self.gate);
        // SAFETY: inside the gate (G1): no controller has the state; the caller is the only
        // poller.
        Some(unsafe { self.data.with_mut(f) })
    }

    /// Controller side: closes the gate and waits for the poller to leave, then gives the state
    /// to the caller. `None` if another controller has it now. `on_slow` is told about a poller
    /// that stays inside for seconds.
    pub fn exclusive(&self, on_slow: impl FnMut(Duration)) -> Option<Exclusive<'_, T>> {
        self.gate.close(on_slow)?;
        Some(Exclusive { slot: self, open: false })
    }

    /// [`exclusive`](Self::exclusive) with slow waits reported on stderr.
    pub fn exclusive_logged(&self, what: &str) -> Option<Exclusive<'_, T>> {
        self.exclusive(|waited| {
            eprintln!("{what}: still waiting for a burst to leave after {:.0?}", waited)
        })
    }
}

/// The state of a queue, owned by one controller while the gate is closed. Dropping it keeps the
/// gate closed (a stopped queue); [`Exclusive::open`] lets the poller in again.
#[derive(Debug)]
pub struct Exclusive<'a, T> {
    slot: &'a QueueSlot<T>,
    open: bool,
}

impl<T> Exclusive<'_, T> {
    /// Runs `f` on the state.
    pub fn with<R>(&mut self, f: impl FnOnce(&mut T) -> R) -> R {
        // SAFETY: the gate is closed and the poller out (G1, G2); controllers exclude each other
        // through the owner flag, and `self` is that ownership.
        unsafe { self.slot.data.with_mut(f) }
    }

    /// Opens the gate: the poller may enter again.
    pub fn open(mut self) {
        self.open = true;
    }
}

impl<T> Drop for Exclusive<'_, T> {
    fn drop(&mut self) {
        if self.open {
            self.slot.gate.open();
        } else {
            self.slot.gate.release();
        }
    }
}
