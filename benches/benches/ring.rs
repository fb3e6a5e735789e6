//! pmd-ring against crossbeam's ArrayQueue (the standard Rust bounded MPMC queue).
//!
//! One thread, enqueue then dequeue, per element: single elements, and bursts of 8 and 32 (which
//! ArrayQueue does one element at a time, having no bulk API).
#![forbid(unsafe_code)]
#![allow(missing_docs)] // criterion_group! generates undocumented functions

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use crossbeam_queue::ArrayQueue;
use pmd_ring::{RingBuilder, SyncMode};

fn ours<P: SyncMode>(c: &mut Criterion, name: &str) {
    let mut g = c.benchmark_group(format!("ring/{name}"));
    let (tx, rx) = RingBuilder::new(4096).build::<u64, P, P>().unwrap();
    g.throughput(Throughput::Elements(1));
    g.bench_function("single", |b| {
        b.iter(|| {
            let _ = tx.enqueue(black_box(7));
            black_box(rx.dequeue())
        })
    });
    for n in [8usize, 32] {
        let mut buf = [0u64; 32];
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::new("bulk", n), &n, |b, &n| {
            b.iter(|| {
                tx.enqueue_bulk(black_box(&buf[..n]));
                rx.dequeue_bulk(black_box(&mut buf[..n]))
            })
        });
    }
    g.finish();
}

fn array_queue(c: &mut Criterion) {
    let mut g = c.benchmark_group("ring/crossbeam-ArrayQueue");
    let q = ArrayQueue::<u64>::new(4096);
    g.throughput(Throughput::Elements(1));
    g.bench_function("single", |b| {
        b.iter(|| {
            let _ = q.push(black_box(7));
            black_box(q.pop())
        })
    });
    for n in [8usize, 32] {
        let mut buf = [0u64; 32];
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::new("bulk", n), &n, |b, &n| {
            b.iter(|| {
                for v in black_box(&buf[..n]) {
                    let _ = q.push(*v);
                }
                for slot in black_box(&mut buf[..n]).iter_mut() {
                    *slot = q.pop().unwrap_or(0);
                }
            })
        });
    }
    g.finish();
}

fn benches(c: &mut Criterion) {
    ours::<pmd_ring::Single>(c, "SP-SC");
    ours::<pmd_ring::Multi>(c, "MP-MC");
    ours::<pmd_ring::Hts>(c, "HTS");
    array_queue(c);
}

criterion_group!(ring, benches);
criterion_main!(ring);
