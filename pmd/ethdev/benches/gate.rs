//! What the per-queue gate costs on an empty poll.
//!
//! Four ways to make one empty RX poll, from the whole port API down to a plain call:
//! - `null_port/rx_burst_max0`: a started null port's [`RxQueue::rx_burst`] with `max = 0`: the
//!   port's dispatch, the queue's gate, and the null driver (which returns at once);
//! - `removed_dispatch/rx_burst`: the same handle with the dispatch swapped to "removed": the
//!   dispatch alone (no gate, no driver);
//! - `queue_slot/gated_poll`: a [`QueueSlot`] poll (gate enter, a one-field driver burst, gate
//!   leave), no dispatch;
//! - `plain/no_gate`: the same one-field driver burst called directly.
//!
//! Criterion reports ns per call; the table printed at the end gives TSC cycles and ns per call
//! (best of several runs of a fixed count) for the same four.
//!
//! Run with `cargo bench -p pmd-ethdev --bench gate`.
#![allow(missing_docs)] // criterion generates undocumented functions

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use pmd_ethdev::{Pkts, PortConf, QueueSlot, Registry, RxBurst, RxQueue, RxQueueStats, RxSlot};
use pmd_mempool::{HugePolicy, MbufPool, MbufPoolConfig, tsc};

/// A driver burst that touches its state and receives nothing.
struct Empty {
    polls: u64,
    stats: Arc<RxQueueStats>,
}

impl RxBurst for Empty {
    #[inline]
    fn rx_burst(&mut self, _out: &mut Pkts, _max: usize) -> usize {
        self.polls += 1;
        0
    }

    fn stats(&self) -> &Arc<RxQueueStats> {
        &self.stats
    }
}

fn empty() -> Empty {
    Empty { polls: 0, stats: Arc::default() }
}

/// The four subjects, each a closure making one empty poll.
struct Subjects {
    live: RxQueue,
    removed: RxQueue,
    slot: QueueSlot<Empty>,
    plain: Empty,
    out: Pkts,
    _ports: Vec<pmd_ethdev::Port>,
    _pool: MbufPool,
}

impl Subjects {
    fn new() -> Self {
        let mut c = MbufPoolConfig::new("bench-gate", 1023);
        c.huge = HugePolicy::Never;
        let pool = MbufPool::with_config(&c).unwrap();
        let mut reg = Registry::new();
        let mut started = |dispatch_removed: bool| {
            let p = reg.probe("null").unwrap().remove(0);
            p.configure(1, 1, &PortConf::default()).unwrap();
            p.rx_queue_setup(0, 512, &pool).unwrap();
            p.tx_queue_setup(0, 512).unwrap();
            p.start().unwrap();
            if dispatch_removed {
                p.dispatch().set_removed();
            }
            let q = p.rx_queue(0).unwrap();
            (p, q)
        };
        let (p1, live) = started(false);
        let (p2, removed) = started(true);
        Subjects {
            live,
            removed,
            slot: QueueSlot::new(empty(), false),
            plain: empty(),
            out: Pkts::new(),
            _ports: vec![p1, p2],
            _pool: pool,
        }
    }

    #[inline(always)]
    fn live(&mut self) -> usize {
        black_box(&mut self.live).rx_burst(black_box(&mut self.out), black_box(0))
    }

    #[inline(always)]
    fn removed(&mut self) -> usize {
        black_box(&mut self.removed).rx_burst(black_box(&mut self.out), black_box(0))
    }

    #[inline(always)]
    fn gated(&mut self) -> usize {
        let slot: &QueueSlot<Empty> = black_box(&self.slot);
        // SAFETY: this thread is the slot's only poller (the slot is this struct's, never shared).
        unsafe { RxSlot::burst(slot, black_box(&mut self.out), black_box(0)) }
    }

    #[inline(always)]
    fn plain(&mut self) -> usize {
        black_box(&mut self.plain).rx_burst(black_box(&mut self.out), black_box(0))
    }
}

/// One empty poll of a subject.
type Poll = fn(&mut Subjects) -> usize;

const CASES: [(&str, Poll); 4] = [
    ("null_port/rx_burst_max0", Subjects::live),
    ("removed_dispatch/rx_burst", Subjects::removed),
    ("queue_slot/gated_poll", Subjects::gated),
    ("plain/no_gate", Subjects::plain),
];

fn bench(c: &mut Criterion, s: &mut Subjects) {
    let mut g = c.benchmark_group("empty_poll");
    g.throughput(Throughput::Elements(1));
    g.warm_up_time(Duration::from_millis(500));
    g.measurement_time(Duration::from_secs(2));
    for (name, f) in CASES {
        g.bench_function(name, |b| b.iter(|| black_box(f(s))));
    }
    g.finish();
}

/// Best of `runs` runs of `n` calls: (cycles per call, ns per call).
fn per_call(s: &mut Subjects, f: Poll, n: u64, runs: u32) -> (f64, f64) {
    let mut best = (f64::MAX, f64::MAX);
    for _ in 0..runs {
        let (t0, c0) = (Instant::now(), tsc::rdtsc());
        for _ in 0..n {
            black_box(f(s));
        }
        let (c1, t1) = (tsc::rdtsc(), t0.elapsed());
        let cyc = (c1 - c0) as f64 / n as f64;
        let ns = t1.as_nanos() as f64 / n as f64;
        if cyc < best.0 {
            best = (cyc, ns);
        }
    }
    best
}

fn tsc_table(s: &mut Subjects) {
    let hz = tsc::hz();
    println!();
    println!("empty poll, best of 7 runs of 10M calls (TSC {:.2} GHz):", hz as f64 / 1e9);
    println!("{:<28} {:>10} {:>10} {:>12}", "case", "cycles", "ns", "ns (TSC)");
    for (name, f) in CASES {
        per_call(s, f, 1_000_000, 1); // warm up
        let (cyc, ns) = per_call(s, f, 10_000_000, 7);
        println!("{name:<28} {cyc:>10.2} {ns:>10.2} {:>12.2}", cyc * 1e9 / hz as f64);
    }
}

fn main() {
    let mut s = Subjects::new();
    // Every subject really polls: the live port's gate is open, and so is the slot's.
    assert_eq!(s.live(), 0);
    assert!(!s.live.stopped());
    s.gated();
    let polls = s.slot.exclusive(|_| {}).map(|mut e| {
        let n = e.with(|q| q.polls);
        e.open();
        n
    });
    assert_eq!(polls, Some(1), "the gated poll did not reach the queue");
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c, &mut s);
    c.final_summary();
    // `cargo test --benches` runs each benchmark once (criterion's test mode): no table then.
    if !std::env::args().any(|a| a == "--test") {
        tsc_table(&mut s);
    }
}
