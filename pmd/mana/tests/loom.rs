//! Loom model of the recovery protocol's fast-path side: the device state and a queue gate.
//!
//! Run with:
//! ```text
//! RUSTFLAGS="--cfg loom" cargo test -p mana-pmd --test loom --release
//! ```
//! Two event sources report a fault at once while the queue's poller runs bursts. Exactly one
//! source starts the episode (the `Active → Quiescing` compare-and-swap); that one, as the
//! worker, closes the gate, waits for the burst in flight, tears the queue down (a plain write
//! loom checks), rebuilds it, publishes `Active` and opens the gate. The poller's bursts either
//! are refused or see a whole queue, never a torn-down one, and a burst after the reopening sees
//! the rebuilt queue. Changing the CAS to a load-then-store lets both sources start an episode;
//! dropping the gate wait makes the teardown race the burst (a loom causality violation).
#![cfg(loom)]
#![allow(unsafe_code)]

use std::sync::Arc;

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;
use mana_pmd::state::{DevState, StateCell};
use pmd_ethdev::{Pkts, QueueSlot, RxBurst, RxQueueStats, RxSlot};

/// A queue: `generation` 0 = torn down, else the generation of the rebuilt queue.
#[derive(Default)]
struct Queue {
    generation: u64,
    stats: Arc<RxQueueStats>,
}

impl RxBurst for Queue {
    fn rx_burst(&mut self, _out: &mut Pkts, _max: usize) -> usize {
        // A burst on a torn-down queue is the use-after-free the gate exists to prevent.
        assert_ne!(self.generation, 0, "a burst ran on a torn-down queue");
        self.generation as usize
    }

    fn stats(&self) -> &Arc<RxQueueStats> {
        &self.stats
    }
}

fn burst(slot: &QueueSlot<Queue>) -> usize {
    let mut out = Pkts::new();
    // SAFETY: the model's poller thread is the slot's only poller.
    unsafe { RxSlot::burst(slot, &mut out, 1) }
}

fn check(f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(3);
    b.max_branches = 100_000;
    b.check(f);
}

/// The worker's episode, run by whichever source won the CAS.
fn episode(state: &StateCell, slot: &QueueSlot<Queue>) {
    let mut ex = slot.exclusive(|_| {}).expect("one controller");
    ex.with(|q| q.generation = 0);
    state.set(DevState::TornDown);
    state.set(DevState::Recovering);
    ex.with(|q| q.generation = 2);
    state.set(DevState::Active);
    ex.open();
}

#[test]
fn one_episode_per_fault_storm_and_no_burst_on_a_torn_down_queue() {
    check(|| {
        let state = Arc::new(StateCell::default());
        let slot = Arc::new(QueueSlot::new(Queue { generation: 1, ..Default::default() }, false));
        // The poller runs two bursts meanwhile: each sees a live queue (1 before, 2 after) or
        // is refused (0), never a torn-down one (the assert in `rx_burst`).
        let sl = slot.clone();
        let poller = thread::spawn(move || {
            let a = burst(&sl);
            let b = burst(&sl);
            assert!(a <= 2 && b <= 2);
            assert!(!(a == 2 && b == 1), "generations never go back");
        });
        // Two sources report the same fault; each posts to the worker only if it won the CAS.
        let posted = Arc::new(AtomicUsize::new(0));
        let sources: Vec<_> = (0..2)
            .map(|_| {
                let (state, posted) = (state.clone(), posted.clone());
                thread::spawn(move || {
                    if state.begin_episode() {
                        posted.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        for s in sources {
            s.join().unwrap();
        }
        assert_eq!(posted.load(Ordering::Relaxed), 1, "one episode per storm");
        assert_eq!(state.get(), DevState::Quiescing);
        // The worker runs it.
        episode(&state, &slot);
        poller.join().unwrap();
        assert_eq!(state.get(), DevState::Active);
        // After the episode, the poller sees the rebuilt queue.
        assert_eq!(burst(&slot), 2);
    });
}

#[test]
fn a_second_report_during_an_episode_does_not_start_another() {
    check(|| {
        let state = Arc::new(StateCell::default());
        let slot = Arc::new(QueueSlot::new(Queue { generation: 1, ..Default::default() }, false));
        assert!(state.begin_episode());
        let s2 = state.clone();
        let late = thread::spawn(move || s2.begin_episode());
        let (st, sl) = (state.clone(), slot.clone());
        let worker = thread::spawn(move || {
            let mut ex = sl.exclusive(|_| {}).expect("one controller");
            ex.with(|q| q.generation = 0);
            st.set(DevState::TornDown);
        });
        let seen = burst(&slot);
        assert!(seen == 0 || seen == 1);
        worker.join().unwrap();
        assert!(!late.join().unwrap(), "no second episode while one runs");
        assert_eq!(burst(&slot), 0, "the gate stays closed while torn down");
    });
}
