//! Loom models of the per-queue gate ([`pmd_ethdev::gate`]).
//!
//! Run with:
//! ```text
//! RUSTFLAGS="--cfg loom" cargo test -p pmd-ethdev --test loom --release
//! ```
//! Under `--cfg loom` the gate's flags are loom atomics and the slot's state sits in a loom
//! `UnsafeCell`, so loom checks every access to the state: a poller burst and a controller's
//! `Exclusive::with` that are not ordered by happens-before (both inside at once, or one not
//! seeing the other's writes) fail the model with a causality violation.
//!
//! The poller side is reached the way a queue handle reaches it: through [`RxSlot::burst`] on the
//! slot (the model thread is the slot's only poller).
//!
//! Loom treats SeqCst loads and stores as AcqRel, except that a SeqCst load never reads a SeqCst
//! store older than the newest one; the gate's Release stores that end a G1 interval are
//! therefore SeqCst under loom (see `END` in `gate.rs`), or loom reports overlaps C11 rules out.
//!
//! Each of these changes to `gate.rs` makes some model here fail (a causality violation on the
//! state): the enter store of `busy` Relaxed; the enter load of `closed` Acquire; the close store
//! of `closed` Release; the close load of `busy` Acquire; the leave store Relaxed (G2); the open
//! store of `closed` Relaxed (G3); the owner CAS Relaxed, or either owner release Relaxed; a
//! close that does not wait for the poller; an owner flag that is not checked; an enter that
//! ignores `closed`.
#![cfg(loom)]
#![allow(unsafe_code)]

use std::sync::Arc;

use loom::thread;
use pmd_ethdev::{Pkts, QueueSlot, RxBurst, RxQueueStats, RxSlot};

/// A queue state with plain (non-atomic) fields that both sides write.
#[derive(Default)]
struct State {
    /// Bursts that ran on the state (poller-written).
    polls: u64,
    /// Controller writes (controller-written, poller-read).
    ctrl: u64,
    stats: Arc<RxQueueStats>,
}

impl RxBurst for State {
    /// Counts itself and reports what it saw of the controller: `1 + ctrl` (never 0, so 0 means
    /// "refused by the gate").
    fn rx_burst(&mut self, _out: &mut Pkts, _max: usize) -> usize {
        self.polls += 1;
        1 + self.ctrl as usize
    }

    fn stats(&self) -> &Arc<RxQueueStats> {
        &self.stats
    }
}

/// One burst through the gate, as the queue's poller: 0 if the gate was closed, else `1 + ctrl`
/// as the burst saw it.
fn burst(slot: &QueueSlot<State>) -> usize {
    let mut out = Pkts::new();
    // SAFETY: each model has exactly one poller thread per slot, and only it calls `burst`.
    unsafe { RxSlot::burst(slot, &mut out, 1) }
}

/// Runs `f` under loom and prints how many executions it explored. The controller's wait loop
/// yields on every round, which multiplies branches, so preemptions are bounded (as in pmd-ring's
/// models; bugs almost always show within two or three).
fn check(name: &str, f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(3);
    builder.max_branches = 100_000;
    let runs = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = runs.clone();
    builder.check(move || {
        counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        f()
    });
    eprintln!("{name}: {} executions", runs.load(std::sync::atomic::Ordering::Relaxed));
}

#[test]
fn poller_and_closing_controller_exclude_each_other_and_see_each_others_writes() {
    // An open gate; the poller bursts once while the controller closes and writes the state.
    // Either the poller got in first (the controller waits for it and then sees its write), or
    // it came after the close and backed out without touching the state.
    check("poller_and_closing_controller_exclude_each_other_and_see_each_others_writes", || {
        let slot = loom::sync::Arc::new(QueueSlot::new(State::default(), false));
        let poller = {
            let slot = slot.clone();
            thread::spawn(move || burst(&slot))
        };
        let mut ex = slot.exclusive(|_| {}).expect("the only controller");
        let polls_seen = ex.with(|s| {
            s.ctrl += 1;
            s.polls
        });
        drop(ex); // keeps the gate closed
        let got = poller.join().unwrap();
        // A poller that entered ran before the controller took the state: it saw ctrl == 0, and
        // the controller saw its write.
        match got {
            0 => assert_eq!(polls_seen, 0, "a refused poller touched the state"),
            1 => assert_eq!(polls_seen, 1, "the controller missed the burst's write"),
            n => panic!("the burst saw a controller write made after it entered ({n})"),
        }
        assert!(slot.gate().is_closed());
        // Still closed: a later burst is refused.
        assert_eq!(burst(&slot), 0);
        let polls = slot.exclusive(|_| {}).unwrap().with(|s| s.polls);
        assert_eq!(polls, u64::from(got != 0));
    });
}

#[test]
fn poller_sees_the_controllers_writes_after_open() {
    // A closed gate (a stopped queue); the controller writes the state and opens. A burst that
    // gets in must see the write (G3); bursts before the open are refused.
    check("poller_sees_the_controllers_writes_after_open", || {
        let slot = loom::sync::Arc::new(QueueSlot::new(State::default(), true));
        let ctrl = {
            let slot = slot.clone();
            thread::spawn(move || {
                let mut ex = slot.exclusive(|_| {}).expect("the only controller");
                ex.with(|s| s.ctrl = 7);
                ex.open();
            })
        };
        let a = burst(&slot);
        let b = burst(&slot);
        ctrl.join().unwrap();
        for got in [a, b] {
            assert!(got == 0 || got == 8, "a burst saw the state before the controller's write");
        }
        // Once a burst got in, the gate stays open.
        assert!(!(a != 0 && b == 0), "a burst after an admitted one was refused");
        assert_eq!(burst(&slot), 8);
    });
}

#[test]
fn stop_start_cycle_against_a_polling_thread() {
    // The poller bursts twice while the controller closes, writes, and reopens (stop + start).
    // Every access to the state is checked by loom; the counts must add up.
    check("stop_start_cycle_against_a_polling_thread", || {
        let slot = loom::sync::Arc::new(QueueSlot::new(State::default(), false));
        let poller = {
            let slot = slot.clone();
            thread::spawn(move || [burst(&slot), burst(&slot)])
        };
        let mut ex = slot.exclusive(|_| {}).expect("the only controller");
        let polls_at_stop = ex.with(|s| {
            s.ctrl += 1;
            s.polls
        });
        ex.open();
        let got = poller.join().unwrap();
        let entered = got.iter().filter(|&&g| g != 0).count() as u64;
        // Bursts that entered before the stop saw ctrl == 0, later ones ctrl == 1, in order.
        let before = got.iter().filter(|&&g| g == 1).count() as u64;
        assert_eq!(before, polls_at_stop, "{got:?}");
        assert!(got.iter().all(|&g| g <= 2), "{got:?}");
        assert!(!(got[0] == 2 && got[1] == 1), "a burst went back in time: {got:?}");
        let polls = slot.exclusive(|_| {}).unwrap().with(|s| s.polls);
        assert_eq!(polls, entered);
    });
}

#[test]
fn two_controllers_exclude_each_other() {
    // Two controllers race for the state (no poller): at most one has it at a time; one that
    // finds it owned gets None and does not touch it. The one that gets it writes and opens.
    check("two_controllers_exclude_each_other", || {
        let slot = loom::sync::Arc::new(QueueSlot::new(State::default(), true));
        let other = {
            let slot = slot.clone();
            thread::spawn(move || match slot.exclusive(|_| {}) {
                Some(mut ex) => {
                    ex.with(|s| s.ctrl += 1);
                    ex.open();
                    1
                }
                None => 0,
            })
        };
        let mine = match slot.exclusive(|_| {}) {
            Some(mut ex) => {
                ex.with(|s| s.ctrl += 1);
                drop(ex);
                1
            }
            None => 0,
        };
        let theirs = other.join().unwrap();
        assert!(mine + theirs >= 1, "neither controller got the state");
        let ctrl = slot.exclusive(|_| {}).expect("both released it").with(|s| s.ctrl);
        assert_eq!(ctrl, mine + theirs);
    });
}

#[test]
fn poller_and_two_controllers() {
    // A poller bursting once against two controllers that each try to stop and restart the
    // queue: the state is never shared, and every write is seen by whoever comes next.
    check("poller_and_two_controllers", || {
        let slot = loom::sync::Arc::new(QueueSlot::new(State::default(), false));
        let poller = {
            let slot = slot.clone();
            thread::spawn(move || burst(&slot))
        };
        let other = {
            let slot = slot.clone();
            thread::spawn(move || match slot.exclusive(|_| {}) {
                Some(mut ex) => {
                    ex.with(|s| s.ctrl += 1);
                    ex.open();
                    1
                }
                None => 0,
            })
        };
        let mine = match slot.exclusive(|_| {}) {
            Some(mut ex) => {
                ex.with(|s| s.ctrl += 1);
                ex.open();
                1
            }
            None => 0,
        };
        let theirs = other.join().unwrap();
        let got = poller.join().unwrap();
        let (polls, ctrl) = slot.exclusive(|_| {}).unwrap().with(|s| (s.polls, s.ctrl));
        assert_eq!(ctrl, mine + theirs);
        assert_eq!(polls, u64::from(got != 0));
        assert!(got as u64 <= 1 + ctrl);
    });
}
