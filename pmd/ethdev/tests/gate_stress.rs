//! The per-queue gate under real threads: one poller bursting in a loop while a controller stops
//! and starts the port and takes the queue's state for itself, both of them writing the same
//! plain (non-atomic) fields of that state.
//!
//! A gate that let both in at once would show as lost updates of `total` (each side reads it,
//! waits a little, and writes it back plus one, so an overlap loses an increment), as a controller
//! that finds the poller `inside`, or as bursts that entered but were not counted (or the
//! reverse). The run is bounded (about a second, or a number of rounds); the assertions are exact
//! counts, not timings.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pmd_ethdev::*;
use pmd_mempool::{HugePolicy, MbufPool, MbufPoolConfig};

/// A queue state both sides write without atomics.
#[derive(Default)]
struct Work {
    /// Bumped slowly by both sides.
    total: u64,
    /// Bursts that ran (poller).
    polls: u64,
    /// Times a controller had the state.
    ctrl: u64,
    /// The poller is inside a burst.
    inside: bool,
    /// A controller found the poller inside.
    overlaps: u64,
    stats: Arc<RxQueueStats>,
}

/// `v + 1`, slowly: a read, a pause the compiler cannot remove, a write. Two threads doing this
/// at once on the same field lose increments.
fn slow_inc(v: &mut u64) {
    let x = black_box(*v);
    for _ in 0..20 {
        std::hint::spin_loop();
    }
    *v = black_box(x + 1);
}

impl Work {
    /// What a controller does with the state while it holds it.
    fn control(&mut self) {
        if black_box(self.inside) {
            self.overlaps += 1;
        }
        slow_inc(&mut self.total);
        self.ctrl += 1;
    }
}

impl RxBurst for Work {
    fn rx_burst(&mut self, _out: &mut Pkts, _max: usize) -> usize {
        self.inside = true;
        black_box(&mut self.inside); // the store happens before the work
        self.polls += 1;
        slow_inc(&mut self.total);
        self.inside = false;
        0
    }

    fn stats(&self) -> &Arc<RxQueueStats> {
        &self.stats
    }
}

type Shared = Arc<Mutex<Option<Arc<QueueSlot<Work>>>>>;

/// A driver with one gated RX queue of [`Work`]; stop and start take the state like a real
/// driver's would (stop also writes it).
struct WorkPort {
    slot: Shared,
}

impl WorkPort {
    fn slot(&self) -> EthResult<Arc<QueueSlot<Work>>> {
        self.slot.lock().unwrap().clone().ok_or(EthError::device(0, "no queue"))
    }
}

impl PortDriver for WorkPort {
    fn bind(&self, _ctx: PortContext) {}
    fn info(&self) -> DevInfo {
        let mut i = Registry::new().probe("null,queues=1").unwrap()[0].info().clone();
        i.driver = "work";
        i
    }
    fn mac(&self) -> [u8; 6] {
        [2, 0, 0, 0, 0, 1]
    }
    fn link(&self) -> Link {
        Link::up(1)
    }
    fn configure(&self, _: u16, _: u16, _: &PortConf) -> EthResult<()> {
        Ok(())
    }
    fn rx_queue_setup(&self, _: u16, _: u16, _: &MbufPool) -> EthResult<Arc<dyn RxSlot>> {
        let s = Arc::new(QueueSlot::new(Work::default(), true));
        *self.slot.lock().unwrap() = Some(s.clone());
        Ok(s)
    }
    fn tx_queue_setup(&self, _: u16, _: u16) -> EthResult<Arc<dyn TxSlot>> {
        Err(EthError::device(0, "no TX"))
    }
    fn start(&self) -> EthResult<()> {
        let s = self.slot()?;
        s.exclusive(|_| {}).ok_or(EthError::device(0, "owned"))?.open();
        Ok(())
    }
    fn stop(&self) -> EthResult<()> {
        let s = self.slot()?;
        let mut ex = s.exclusive(|_| {}).ok_or(EthError::device(0, "owned"))?;
        ex.with(Work::control);
        Ok(())
    }
    fn close(&self) -> EthResult<()> {
        Ok(())
    }
    fn stats(&self) -> EthResult<PortStats> {
        Ok(PortStats::default())
    }
    fn xstats(&self) -> EthResult<Vec<XStat>> {
        Ok(vec![])
    }
}

#[test]
fn a_poller_and_a_controller_never_hold_the_queue_state_at_once() {
    const RUN: Duration = Duration::from_secs(1);
    const MAX_ROUNDS: u64 = 1_000_000;
    let mut c = MbufPoolConfig::new("gate-stress", 64);
    c.huge = HugePolicy::Never;
    c.cache_size = 0;
    let mp = MbufPool::with_config(&c).unwrap();
    let shared: Shared = Arc::default();
    let port = Port::new(7, Box::new(WorkPort { slot: shared.clone() }));
    port.configure(1, 0, &PortConf::default()).unwrap();
    port.rx_queue_setup(0, 64, &mp).unwrap();
    port.start().unwrap();
    let slot = shared.lock().unwrap().clone().unwrap();

    let quit = Arc::new(AtomicBool::new(false));
    // Bursts tried so far (the poller's progress, for the controller to let it in now and then).
    let tried = Arc::new(AtomicU64::new(0));
    let poller = {
        let mut rx = port.rx_queue(0).unwrap();
        let (quit, tried) = (quit.clone(), tried.clone());
        std::thread::spawn(move || {
            let mut out = Pkts::new();
            let mut attempts = 0u64;
            while !quit.load(Ordering::Relaxed) {
                rx.rx_burst(&mut out, 32);
                attempts += 1;
                tried.store(attempts, Ordering::Relaxed);
            }
            attempts
        })
    };
    // After opening, give the poller a chance to get in (bounded spins) so that the next close
    // often finds it inside and must wait for it. Bursts that got in: tried minus refused (read
    // in that order: the poller counts a refusal before the try).
    let entered = || tried.load(Ordering::Relaxed).saturating_sub(slot.gate().refused());
    let let_in = || {
        let before = entered();
        for _ in 0..20_000 {
            if entered() > before {
                break;
            }
            std::hint::spin_loop();
        }
    };
    let start = Instant::now();
    let (mut rounds, mut api_cycles, mut refusals_seen) = (0u64, 0u64, 0u64);
    while rounds < MAX_ROUNDS && start.elapsed() < RUN {
        rounds += 1;
        if rounds % 8 == 0 {
            // Through the port API: the driver's stop writes the state, start opens the gate.
            port.stop().unwrap();
            port.start().unwrap();
            api_cycles += 1;
            let_in();
        } else {
            let mut ex = slot.exclusive(|_| {}).expect("the only controller");
            ex.with(Work::control);
            if rounds % 64 == 1 {
                // Hold the queue until the poller has been turned away at least once (bounded),
                // so that the run surely covers bursts against a closed gate.
                let before = slot.gate().refused();
                let until = Instant::now() + Duration::from_millis(50);
                while slot.gate().refused() == before && Instant::now() < until {
                    std::thread::yield_now();
                }
                refusals_seen += u64::from(slot.gate().refused() != before);
                ex.with(Work::control);
            }
            ex.open();
            let_in();
        }
    }
    quit.store(true, Ordering::Relaxed);
    let attempts = poller.join().unwrap();

    let refused = slot.gate().refused();
    let (total, polls, ctrl, overlaps) =
        slot.exclusive(|_| {}).unwrap().with(|w| (w.total, w.polls, w.ctrl, w.overlaps));
    eprintln!(
        "{rounds} controller rounds ({api_cycles} stop/start), {attempts} bursts: {polls} entered, \
         {refused} refused; total {total}"
    );
    assert_eq!(overlaps, 0, "a controller found the poller inside the burst");
    assert_eq!(total, polls + ctrl, "increments were lost: both sides wrote at once");
    assert_eq!(polls + refused, attempts, "a burst neither entered nor was refused");
    assert!(rounds > 0 && api_cycles > 0 && polls > 0, "the run did nothing");
    assert!(refusals_seen > 0, "the poller was never turned away by a closed gate");
    port.close().unwrap();
}
