//! emu-perf: how many packets per second the software MANA device moves on one core.
//!
//! The device thread is pinned to one CPU; the test-only driver runs on another and does as
//! little as it can: it keeps the receive queue full of buffers (reused), the send queue full of
//! the same pre-built WQE (pair wire), and drains completions in bulk. What is measured is the
//! device: packets it delivered into receive buffers per second, 64-byte frames by default.
//!
//! - `--wire gen`: the device's traffic generator feeds vport 0's RX (UDP/IPv4 flows, RSS on).
//! - `--wire pair`: the driver transmits on vport 0; the device delivers each frame into vport
//!   1's RX (one TX WQE read and gathered, one RX WQE filled, completions written).
#![forbid(unsafe_code)]

use std::time::{Duration, Instant};

use clap::Parser;
use gdma_defs::{GdmaQueueType, TxOobSpec};
use mana_emu::testdrv::TestDriver;
use mana_emu::{Device, DeviceConfig, GenSpec, WireSpec};

#[derive(Parser, Debug)]
#[command(about = "Throughput of the software MANA device alone")]
struct Args {
    /// gen or pair.
    #[arg(long, default_value = "pair")]
    wire: String,
    /// Frame size without FCS (60 = 64-byte frames).
    #[arg(long, default_value_t = 60)]
    size: u16,
    /// Seconds to measure.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// CPU of the device thread.
    #[arg(long, default_value_t = 1)]
    device_cpu: usize,
    /// CPU of the driver loop.
    #[arg(long, default_value_t = 0)]
    driver_cpu: usize,
    /// RX CQE coalescing (up to 4 packets per CQE, as the ibverbs path always enables).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    coalesce: bool,
    /// Receive-queue depth in WQEs.
    #[arg(long, default_value_t = 1024)]
    depth: u32,
    /// Yield the CPU every driver iteration (for running under valgrind, which runs one thread
    /// at a time).
    #[arg(long)]
    yield_cpu: bool,
}

fn fail(msg: impl std::fmt::Display) -> ! {
    eprintln!("emu-perf: {msg}");
    std::process::exit(1)
}

fn main() {
    let args = Args::parse();
    let wire = match args.wire.as_str() {
        "gen" => WireSpec::Gen(GenSpec { frame_size: args.size, flows: 1024 }),
        "pair" => WireSpec::Pair,
        w => fail(format!("--wire must be gen or pair, got '{w}'")),
    };
    if !args.depth.is_power_of_two() || args.depth < 128 {
        fail("--depth must be a power of two >= 128");
    }
    let mut cfg = DeviceConfig::new(2, wire.clone());
    cfg.cpu = Some(args.device_cpu);
    let dev = Device::start(cfg).unwrap_or_else(|e| fail(e));
    core_affinity::set_for_current(core_affinity::CoreId { id: args.driver_cpu });
    let mut d = TestDriver::new(&dev, 64 << 20);
    d.establish().unwrap_or_else(|e| fail(e));
    d.register().unwrap_or_else(|e| fail(e));
    let (v0, mac0) = d.vport(0).unwrap_or_else(|e| fail(e));
    let (v1, mac1) = d.vport(1).unwrap_or_else(|e| fail(e));
    let (rx_vport, rx_index, tx) =
        if wire == WireSpec::Pair { (v1, 1, true) } else { (v0, 0, false) };

    let rq_bytes = args.depth * 32;
    let cq_bytes = args.depth * 64;
    let mut rq = d
        .create_wq(rx_vport, GdmaQueueType::Rq, rq_bytes, cq_bytes, None)
        .unwrap_or_else(|e| fail(e));
    d.config_rx(rx_vport, &[rq.handle], None, args.coalesce).unwrap_or_else(|e| fail(e));
    let bufs: Vec<u64> = (0..256).map(|_| d.alloc(2048, 64).unwrap_or_else(|e| fail(e))).collect();
    let mut rx_done = 0u32;
    d.refill_rx(&mut rq.wq, &bufs, 2048, rx_done, args.depth as usize);

    // Pair: one pre-built TX WQE (64-byte frame in one SGE), re-posted; every 32nd signalled.
    let mut sq = tx.then(|| {
        d.create_wq(v0, GdmaQueueType::Sq, 32 * 1024, 64 * 1024, None).unwrap_or_else(|e| fail(e))
    });
    let mut tx_wqe = Vec::new();
    let mut tx_done = 0u32;
    const SIGNAL_EVERY: u32 = 32;
    if let Some(sq) = sq.as_mut() {
        let mut frame = vec![0u8; args.size as usize];
        frame[..6].copy_from_slice(&mac1);
        // The sending vport's own MAC: the device enforces source MACs, as Azure does.
        frame[6..12].copy_from_slice(&mac0);
        frame[12..14].copy_from_slice(&[0x88, 0xb5]);
        let spec = TxOobSpec {
            cq_id: sq.cq.id,
            sq_id: sq.wq.id,
            vport_offset: 0,
            suppress_cqe: true,
            ..Default::default()
        };
        let start = sq.wq.head;
        let n = d.post_tx(&mut sq.wq, &frame, 1, &spec).unwrap_or_else(|e| fail(e));
        // Read back the WQE just written as the template, and take it back out of the ring.
        let mut w = vec![0u8; n as usize];
        d.read(sq.wq.iova + (start & (sq.wq.size - 1)) as u64, &mut w);
        sq.wq.head = start;
        tx_wqe = w;
    }

    let stats = dev.stats();
    let measure = Duration::from_secs_f64(args.seconds);
    let warmup = Duration::from_millis(500);
    let t0 = Instant::now();
    let (mut pkts, mut cqes) = (0u64, 0u64);
    let mut moved0 = 0u64;
    let mut base: Option<(Instant, u64, u64, u64)> = None;
    let dev_moved =
        |s: &mana_emu::Stats| -> u64 { s.vports.iter().map(|v| v.rx_packets.get()).sum() };
    let mut since_ring = 0u32;
    loop {
        let (c, p) = d.reap(&mut rq.cq, 256);
        cqes += c as u64;
        pkts += p as u64;
        rx_done = rx_done.wrapping_add(p as u32 * 32);
        since_ring += c as u32;
        if since_ring >= args.depth / 4 {
            d.ring_cq(&rq.cq, rq.wq.db_page, false);
            since_ring = 0;
        }
        d.refill_rx(&mut rq.wq, &bufs, 2048, rx_done, p.max(if c == 0 { 32 } else { 0 }));
        if let Some(sq) = sq.as_mut() {
            let (tc, _) = d.reap(&mut sq.cq, 64);
            tx_done = tx_done.wrapping_add(tc as u32 * SIGNAL_EVERY * tx_wqe.len() as u32);
            if tc > 0 {
                d.ring_cq(&sq.cq, sq.wq.db_page, false);
            }
            // Post whole signalling groups only, so every posted WQE is covered by a CQE.
            let size = tx_wqe.len() as u32;
            let room = (sq.wq.size - sq.wq.head.wrapping_sub(tx_done)) / size;
            let groups = room / SIGNAL_EVERY;
            if groups > 0 {
                d.refill_tx(
                    &mut sq.wq,
                    &tx_wqe,
                    tx_done,
                    (groups * SIGNAL_EVERY) as usize,
                    SIGNAL_EVERY,
                );
            }
        }
        if args.yield_cpu {
            std::thread::yield_now();
        }
        let now = Instant::now();
        match base {
            None if now - t0 >= warmup => {
                let _ = rx_index;
                base = Some((now, pkts, cqes, stats.device.busy_cycles.get()));
                moved0 = dev_moved(stats);
            }
            Some((b, bp, bc, cyc0)) if now - b >= measure => {
                let cycles = stats.device.busy_cycles.get() - cyc0;
                let moved = dev_moved(stats) - moved0;
                let secs = (now - b).as_secs_f64();
                let mpps = (pkts - bp) as f64 / secs / 1e6;
                let per_cqe = (pkts - bp) as f64 / (cqes - bc).max(1) as f64;
                println!(
                    "emu-perf: wire={} frame={}B coalesce={} depth={}: {:.2} Mpps delivered ({:.2} packets per CQE, {:.2} s)",
                    args.wire,
                    args.size + 4,
                    args.coalesce,
                    args.depth,
                    mpps,
                    per_cqe,
                    secs
                );
                println!(
                    "emu-perf: device {:.1} cycles per packet in busy passes ({} packets, {} MHz TSC)",
                    cycles as f64 / moved.max(1) as f64,
                    moved,
                    pmd_mempool::tsc::hz() / 1_000_000
                );
                let dv = &stats.device;
                println!(
                    "emu-perf: device loops {} (busy {}), cq stalls {}, rx drops no-wqe {}",
                    dv.loops.get(),
                    dv.busy_loops.get(),
                    dv.cq_stalls.get(),
                    stats.vports.iter().map(|v| v.rx_drops_no_wqe.get()).sum::<u64>()
                );
                break;
            }
            _ => {}
        }
    }
}
