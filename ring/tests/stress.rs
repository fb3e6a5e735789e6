//! Multi-thread stress: every element sent by N producers arrives exactly once.
//!
//! Producer `p` sends the values `p << 32 | 0..PER_PRODUCER`. Consumers record every value they
//! receive. At the end the test checks the count, the sum, that each value was seen exactly once,
//! and that each consumer saw each producer's values in increasing order (the ring is FIFO and a
//! producer enqueues in order, so any single consumer's view of one producer is increasing).
#![cfg(not(loom))]

use std::sync::Barrier;
use std::thread;

use pmd_ring::{Consumer, Hts, Multi, Producer, RingBuilder, Single, SyncMode};

const PER_PRODUCER: u64 = 200_000;

/// Sizes of the batches the threads use, cycled so bulk and burst of many sizes interleave.
const BATCHES: [usize; 6] = [1, 3, 8, 32, 5, 17];

fn produce<S: SyncMode>(tx: &Producer<u64, S>, p: u64, bulk: bool) {
    let mut next = 0u64;
    let mut buf = [0u64; 32];
    let mut k = 0;
    while next < PER_PRODUCER {
        let want = BATCHES[k % BATCHES.len()].min((PER_PRODUCER - next) as usize);
        k += 1;
        for (i, slot) in buf[..want].iter_mut().enumerate() {
            *slot = (p << 32) | (next + i as u64);
        }
        let n = if bulk { tx.enqueue_bulk(&buf[..want]) } else { tx.enqueue_burst(&buf[..want]) };
        assert!(n == 0 || n == want || !bulk, "bulk moved {n} of {want}");
        next += n as u64;
        if n == 0 {
            std::hint::spin_loop();
            thread::yield_now();
        }
    }
}

/// Consumes until `total` elements have been taken by all consumers together.
fn consume<S: SyncMode>(
    rx: &Consumer<u64, S>,
    taken: &std::sync::atomic::AtomicU64,
    total: u64,
    bulk: bool,
) -> Vec<u64> {
    use std::sync::atomic::Ordering::Relaxed;
    let mut got = Vec::new();
    let mut buf = [0u64; 32];
    let mut k = 0;
    while taken.load(Relaxed) < total {
        let want = BATCHES[k % BATCHES.len()];
        k += 1;
        let n = if bulk {
            rx.dequeue_bulk(&mut buf[..want])
        } else {
            rx.dequeue_burst(&mut buf[..want])
        };
        if n == 0 {
            // A bulk request may never be satisfiable near the end; fall back to singles.
            if let Some(v) = rx.dequeue() {
                got.push(v);
                taken.fetch_add(1, Relaxed);
            } else {
                thread::yield_now();
            }
            continue;
        }
        got.extend_from_slice(&buf[..n]);
        taken.fetch_add(n as u64, Relaxed);
    }
    got
}

fn verify(producers: u64, per_consumer: Vec<Vec<u64>>) {
    let total = producers * PER_PRODUCER;
    let all: usize = per_consumer.iter().map(Vec::len).sum();
    assert_eq!(all as u64, total, "element count");
    let expected_sum: u128 = (0..producers)
        .map(|p| {
            (p as u128) * ((1u128 << 32) * PER_PRODUCER as u128)
                + (PER_PRODUCER as u128 * (PER_PRODUCER as u128 - 1) / 2)
        })
        .sum();
    let sum: u128 = per_consumer.iter().flatten().map(|&v| v as u128).sum();
    assert_eq!(sum, expected_sum, "element sum");
    let mut seen = vec![false; total as usize];
    for got in &per_consumer {
        let mut last = vec![None::<u64>; producers as usize];
        for &v in got {
            let (p, i) = (v >> 32, v & 0xffff_ffff);
            assert!(p < producers && i < PER_PRODUCER, "foreign value {v:#x}");
            let idx = (p * PER_PRODUCER + i) as usize;
            assert!(!seen[idx], "value {v:#x} delivered twice");
            seen[idx] = true;
            if let Some(prev) = last[p as usize] {
                assert!(i > prev, "producer {p}: {i} after {prev}");
            }
            last[p as usize] = Some(i);
        }
    }
    assert!(seen.iter().all(|&s| s), "every value delivered");
}

fn run<P: SyncMode, C: SyncMode>(producers: u64, consumers: usize, count: u32, bulk: bool)
where
    Producer<u64, P>: Clone,
    Consumer<u64, C>: Clone,
{
    let (tx, rx) =
        RingBuilder::new(count).start_index(u32::MAX - 5000).build::<u64, P, C>().unwrap();
    let total = producers * PER_PRODUCER;
    let taken = std::sync::atomic::AtomicU64::new(0);
    let barrier = Barrier::new(producers as usize + consumers);
    let results = thread::scope(|s| {
        for p in 0..producers {
            let tx = tx.clone();
            let barrier = &barrier;
            s.spawn(move || {
                barrier.wait();
                produce(&tx, p, bulk);
            });
        }
        let handles: Vec<_> = (0..consumers)
            .map(|_| {
                let rx = rx.clone();
                let (barrier, taken) = (&barrier, &taken);
                s.spawn(move || {
                    barrier.wait();
                    consume(&rx, taken, total, bulk)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect::<Vec<_>>()
    });
    verify(producers, results);
    assert!(rx.is_empty());
}

#[test]
fn spsc_exactly_once() {
    for bulk in [false, true] {
        let (tx, rx) = RingBuilder::new(64)
            .start_index(u32::MAX - 100)
            .build::<u64, Single, Single>()
            .unwrap();
        let taken = std::sync::atomic::AtomicU64::new(0);
        let got = thread::scope(|s| {
            s.spawn(move || produce(&tx, 0, bulk));
            let taken = &taken;
            s.spawn(move || consume(&rx, taken, PER_PRODUCER, bulk)).join().unwrap()
        });
        verify(1, vec![got]);
    }
}

#[test]
fn mpmc_exactly_once() {
    run::<Multi, Multi>(4, 4, 256, false);
    run::<Multi, Multi>(3, 2, 64, true);
}

#[test]
fn hts_exactly_once() {
    run::<Hts, Hts>(3, 3, 128, false);
    run::<Hts, Hts>(2, 2, 64, true);
}

#[test]
fn mixed_modes_exactly_once() {
    run::<Multi, Hts>(3, 2, 128, false);
    run::<Hts, Multi>(2, 3, 128, true);
}

#[test]
fn mp_with_single_consumer_exactly_once() {
    let (tx, rx) = RingBuilder::new(128).build::<u64, Multi, Single>().unwrap();
    let taken = std::sync::atomic::AtomicU64::new(0);
    let got = thread::scope(|s| {
        for p in 0..3 {
            let tx = tx.clone();
            s.spawn(move || produce(&tx, p, false));
        }
        let taken = &taken;
        s.spawn(move || consume(&rx, taken, 3 * PER_PRODUCER, false)).join().unwrap()
    });
    verify(3, vec![got]);
}
