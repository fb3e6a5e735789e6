//! ring-perf: the measurements of DPDK's `ring_perf_autotest` for pmd-ring, printed in its line
//! format so the two can be compared line by line (scripts/compare-dpdk.sh does).
//!
//! Cycles per element from the TSC: single element; burst and bulk of 8 and 32 on one core;
//! empty bulk dequeue of 8; producer and consumer on two cores, bulk 8 and 32 (enqueue cycles
//! per element + dequeue cycles per element). For SP/SC, MP/MC and HTS, with pointer-sized
//! elements and with 16-byte elements. Ring of 4096 slots as in DPDK.
#![forbid(unsafe_code)]

use std::hint::black_box;
use std::sync::Barrier;

use clap::Parser;
use pmd_mempool::tsc::rdtsc;
use pmd_ring::{Hts, Multi, RingBuilder, Single, SyncMode};

/// Slots in the ring under test (DPDK's `RING_SIZE`).
const RING_SIZE: u32 = 4096;
/// Largest burst.
const MAX_BURST: usize = 32;

#[derive(Parser, Debug)]
#[command(about = "pmd-ring performance in DPDK ring_perf_autotest's format")]
struct Args {
    /// log2 of the iterations of each single-core measurement (DPDK: 24 for single, 23 for bulk).
    #[arg(long, default_value_t = 23)]
    iter_shift: u32,
    /// Also measure 16-byte elements ("elem APIs: element size 16B").
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    elem16: bool,
    /// Skip the two-core measurements.
    #[arg(long)]
    single_core: bool,
    /// Cores available (found at start, before the main thread is pinned).
    #[arg(skip)]
    cores: usize,
}

/// An element type the benchmark moves.
trait Elem: Copy + Send + Default + 'static {
    /// Section prefix, as DPDK prints it.
    const PREFIX: &'static str;
}

impl Elem for u64 {
    const PREFIX: &'static str = "";
}

impl Elem for [u64; 2] {
    const PREFIX: &'static str = "elem APIs: element size 16B: ";
}

/// Pins the calling thread to CPU `core` (by number: the caller's own affinity mask, which a
/// pinned parent passes on, must not limit the choice).
fn pin(core: usize) {
    if !core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
        eprintln!("warning: could not pin a thread to CPU {core}");
    }
}

fn label<P: SyncMode>() -> &'static str {
    match P::NAME {
        "S" => "SP/SC",
        "M" => "MP/MC",
        _ => "MT_HTS",
    }
}

fn single<E: Elem, P: SyncMode>(iterations: u64) {
    let (tx, rx) = RingBuilder::new(RING_SIZE).build::<E, P, P>().unwrap();
    let v = E::default();
    let start = rdtsc();
    for _ in 0..iterations {
        let _ = tx.enqueue(black_box(v));
        black_box(rx.dequeue());
    }
    let cycles = rdtsc() - start;
    println!("{}{}: single: {:.2}", E::PREFIX, label::<P>(), cycles as f64 / iterations as f64);
}

fn burst_bulk<E: Elem, P: SyncMode>(iterations: u64, size: usize, bulk: bool) {
    let (tx, rx) = RingBuilder::new(RING_SIZE).build::<E, P, P>().unwrap();
    let mut buf = [E::default(); MAX_BURST];
    let start = rdtsc();
    for _ in 0..iterations {
        let b = black_box(&mut buf[..size]);
        if bulk {
            tx.enqueue_bulk(b);
            rx.dequeue_bulk(b);
        } else {
            tx.enqueue_burst(b);
            rx.dequeue_burst(b);
        }
    }
    let cycles = rdtsc() - start;
    let kind = if bulk { "bulk" } else { "burst" };
    println!(
        "{}{}: {kind} (size: {size}): {:.2}",
        E::PREFIX,
        label::<P>(),
        cycles as f64 / (iterations * size as u64) as f64
    );
}

fn empty_dequeue<E: Elem, P: SyncMode>(iterations: u64) {
    let (_tx, rx) = RingBuilder::new(RING_SIZE).build::<E, P, P>().unwrap();
    let mut buf = [E::default(); MAX_BURST];
    let start = rdtsc();
    for _ in 0..iterations {
        black_box(rx.dequeue_bulk(black_box(&mut buf[..8])));
    }
    let cycles = rdtsc() - start;
    println!(
        "{}{}: bulk (size: 8): {:.2}",
        E::PREFIX,
        label::<P>(),
        cycles as f64 / iterations as f64
    );
}

/// Producer on core 0, consumer on core 1; returns enq + deq cycles per element.
fn two_cores<E: Elem, P: SyncMode>(iterations: u64, size: usize)
where
    pmd_ring::Producer<E, P>: Send,
    pmd_ring::Consumer<E, P>: Send,
{
    let (tx, rx) = RingBuilder::new(RING_SIZE).build::<E, P, P>().unwrap();
    let barrier = Barrier::new(2);
    let (enq, deq) = std::thread::scope(|s| {
        let b = &barrier;
        let producer = s.spawn(move || {
            pin(0);
            let buf = [E::default(); MAX_BURST];
            b.wait();
            let start = rdtsc();
            for _ in 0..iterations {
                while tx.enqueue_bulk(black_box(&buf[..size])) == 0 {
                    std::hint::spin_loop();
                }
            }
            rdtsc() - start
        });
        let consumer = s.spawn(move || {
            pin(1);
            let mut buf = [E::default(); MAX_BURST];
            b.wait();
            let start = rdtsc();
            for _ in 0..iterations {
                while rx.dequeue_bulk(black_box(&mut buf[..size])) == 0 {
                    std::hint::spin_loop();
                }
            }
            rdtsc() - start
        });
        (producer.join().unwrap(), consumer.join().unwrap())
    });
    let elems = (iterations * size as u64) as f64;
    println!(
        "{}{}: bulk (size: {size}): {:.2}",
        E::PREFIX,
        label::<P>(),
        enq as f64 / elems + deq as f64 / elems
    );
}

fn run<E: Elem>(args: &Args) {
    let iters = 1u64 << args.iter_shift;
    println!("\n### Testing single element enq/deq ###");
    single::<E, Single>(iters * 2);
    single::<E, Multi>(iters * 2);
    single::<E, Hts>(iters * 2);
    for bulk in [false, true] {
        println!("\n### Testing {} enq/deq ###", if bulk { "bulk" } else { "burst" });
        for (sizes, f) in [
            ([8, 32], burst_bulk::<E, Single> as fn(u64, usize, bool)),
            ([8, 32], burst_bulk::<E, Multi>),
            ([8, 32], burst_bulk::<E, Hts>),
        ] {
            for size in sizes {
                f(iters, size, bulk);
            }
        }
    }
    println!("\n### Testing empty bulk deq ###");
    empty_dequeue::<E, Single>(iters * 8);
    empty_dequeue::<E, Multi>(iters * 8);
    empty_dequeue::<E, Hts>(iters * 8);
    if !args.single_core && args.cores >= 2 {
        println!("\n### Testing using two physical cores ###");
        for size in [8, 32] {
            two_cores::<E, Single>(iters / 2, size);
            two_cores::<E, Multi>(iters / 2, size);
            two_cores::<E, Hts>(iters / 2, size);
        }
    }
}

fn main() {
    let mut args = Args::parse();
    args.cores = core_affinity::get_core_ids().map_or(0, |c| c.len());
    pin(0);
    println!(
        "ring-perf: pmd-ring, ring of {RING_SIZE} slots, TSC at {} MHz",
        pmd_mempool::tsc::hz() / 1_000_000
    );
    run::<u64>(&args);
    if args.elem16 {
        run::<[u64; 2]>(&args);
    }
}
