//! Loom models of the ring protocols on small rings.
//!
//! Run with:
//! ```text
//! RUSTFLAGS="--cfg loom" cargo test -p pmd-ring --test loom --release
//! ```
//! Loom explores the thread interleavings and the weak-memory outcomes the C11 model allows for
//! each Acquire/Release pair. The slots are loom `UnsafeCell`s, so a slot read that is not ordered
//! after its write (or a write racing a read) fails the model, as does a lost or duplicated value.
#![cfg(loom)]

use loom::thread;
use pmd_ring::{Consumer, Hts, Multi, Producer, RingBuilder, Single, SyncMode};

/// The model settings for the multi-thread models: the retry loops of the test and the ring's own
/// waits (in-order publish, HTS head wait) yield on every round, which multiplies branches, so the
/// branch limit is raised and preemptions are bounded (loom's recommended practice: bugs almost
/// always show with two or three preemptions).
fn model_builder() -> loom::model::Builder {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(2);
    builder.max_branches = 100_000;
    builder
}

/// Enqueues `vals` one by one, retrying while full.
fn push_all<S: SyncMode>(tx: &Producer<u32, S>, vals: &[u32]) {
    for &v in vals {
        while tx.enqueue(v).is_err() {
            thread::yield_now();
        }
    }
}

/// Dequeues exactly `n` values, retrying while empty.
fn pop_n<S: SyncMode>(rx: &Consumer<u32, S>, n: usize) -> Vec<u32> {
    let mut got = Vec::new();
    while got.len() < n {
        match rx.dequeue() {
            Some(v) => got.push(v),
            None => thread::yield_now(),
        }
    }
    got
}

#[test]
fn spsc_fifo_through_a_wrapping_ring() {
    loom::model(|| {
        // Two slots, capacity 1, indices starting just below the u32 wrap: every transfer reuses
        // a slot the consumer just released, so slot reuse is ordered by A1/R0 on both sides.
        let (tx, rx) =
            RingBuilder::new(2).start_index(u32::MAX).build::<u32, Single, Single>().unwrap();
        let producer = thread::spawn(move || push_all(&tx, &[1, 2, 3]));
        let got = pop_n(&rx, 3);
        producer.join().unwrap();
        assert_eq!(got, [1, 2, 3]);
    });
}

#[test]
fn spsc_bulk() {
    loom::model(|| {
        let (tx, rx) = RingBuilder::new(4).build::<u32, Single, Single>().unwrap();
        let producer = thread::spawn(move || {
            while tx.enqueue_bulk(&[1, 2]) == 0 {
                thread::yield_now();
            }
            while tx.enqueue_bulk(&[3, 4]) == 0 {
                thread::yield_now();
            }
        });
        let mut got = Vec::new();
        let mut buf = [0u32; 2];
        while got.len() < 4 {
            let n = rx.dequeue_burst(&mut buf);
            if n == 0 {
                thread::yield_now();
            }
            got.extend_from_slice(&buf[..n]);
        }
        producer.join().unwrap();
        assert_eq!(got, [1, 2, 3, 4]);
    });
}

/// Tries to dequeue once; what it got.
fn try_pop<S: SyncMode>(rx: &Consumer<u32, S>) -> Vec<u32> {
    rx.dequeue().into_iter().collect()
}

/// Two producers with one value each, two consumers that each try once while the producers run;
/// the rest is drained after the joins. Each value arrives exactly once. (Bounded attempts keep
/// the model finite: an unbounded retry loop multiplies the interleavings without testing more.)
fn two_by_two<P: SyncMode, C: SyncMode>()
where
    Producer<u32, P>: Clone + Send + 'static,
    Consumer<u32, C>: Clone + Send + 'static,
{
    model_builder().check(|| {
        let (tx, rx) = RingBuilder::new(4).build::<u32, P, C>().unwrap();
        let tx2 = tx.clone();
        let rx2 = rx.clone();
        let p1 = thread::spawn(move || tx.enqueue(1).unwrap());
        let p2 = thread::spawn(move || tx2.enqueue(2).unwrap());
        let c2 = thread::spawn(move || try_pop(&rx2));
        let mut got = try_pop(&rx);
        p1.join().unwrap();
        p2.join().unwrap();
        got.extend(c2.join().unwrap());
        while let Some(v) = rx.dequeue() {
            got.push(v);
        }
        got.sort_unstable();
        assert_eq!(got, [1, 2]);
    });
}

#[test]
fn mpmc_exactly_once() {
    two_by_two::<Multi, Multi>();
}

#[test]
fn hts_exactly_once() {
    two_by_two::<Hts, Hts>();
}

#[test]
fn mp_in_order_publish_reaches_a_single_consumer() {
    // Two producers claim adjacent slots; the second must not publish before the first, and a
    // consumer that sees the second producer's tail must also see the first producer's slot
    // write (the A4 -> R0 chain). The consumer runs concurrently and reads whatever is published.
    model_builder().check(|| {
        let (tx, rx) = RingBuilder::new(4).build::<u32, Multi, Single>().unwrap();
        let tx2 = tx.clone();
        let p1 = thread::spawn(move || tx.enqueue(10).unwrap());
        let p2 = thread::spawn(move || tx2.enqueue(20).unwrap());
        let mut buf = [0u32; 2];
        let n = rx.dequeue_burst(&mut buf);
        let mut got = buf[..n].to_vec();
        p1.join().unwrap();
        p2.join().unwrap();
        while let Some(v) = rx.dequeue() {
            got.push(v);
        }
        got.sort_unstable();
        assert_eq!(got, [10, 20]);
    });
}

#[test]
fn spsc_slot_reuse_with_concurrent_consumer() {
    // A full ring: the producer's next enqueue reuses the slot the consumer is reading. A1/R0 on
    // the consumer tail must order the read before the overwrite.
    loom::model(|| {
        let (tx, rx) = RingBuilder::new(2).start_index(7).build::<u32, Single, Single>().unwrap();
        tx.enqueue(1).unwrap();
        let consumer = thread::spawn(move || {
            let first = rx.dequeue();
            let second = rx.dequeue();
            (first, second, rx)
        });
        let second_ok = tx.enqueue(2).is_ok();
        let (first, second, rx) = consumer.join().unwrap();
        assert_eq!(first, Some(1));
        let mut rest: Vec<u32> = second.into_iter().collect();
        rest.extend(rx.dequeue());
        assert_eq!(rest, if second_ok { vec![2] } else { vec![] });
    });
}

#[test]
fn a_shared_mp_handle_passes_the_consumer_release_through_its_tail_copy() {
    // Two producer threads share one handle, and so its copy of the consumer tail. In a
    // one-slot ring the slot a consumer reads is written again two enqueues later; when producer
    // X refreshes the copy and producer Y claims with it, Y's write must still be ordered after
    // the consumer's read (A5/R5). Bounded retries keep the model finite.
    let mut builder = model_builder();
    builder.preemption_bound = Some(2);
    builder.check(|| {
        let (tx, rx) = RingBuilder::new(2).build::<u32, Multi, Single>().unwrap();
        let tx = loom::sync::Arc::new(tx);
        tx.enqueue(1).unwrap();
        let consumer = thread::spawn(move || {
            let mut got = Vec::new();
            for _ in 0..3 {
                got.extend(rx.dequeue());
            }
            (got, rx)
        });
        let x = {
            let tx = tx.clone();
            thread::spawn(move || {
                [2, 4].into_iter().filter(|&v| tx.enqueue(v).is_ok()).collect::<Vec<_>>()
            })
        };
        let y_ok: Vec<u32> = [3, 5].into_iter().filter(|&v| tx.enqueue(v).is_ok()).collect();
        let x_ok = x.join().unwrap();
        let (mut got, rx) = consumer.join().unwrap();
        while let Some(v) = rx.dequeue() {
            got.push(v);
        }
        let mut want = vec![1];
        want.extend(x_ok);
        want.extend(y_ok);
        want.sort_unstable();
        got.sort_unstable();
        assert_eq!(got, want);
    });
}
