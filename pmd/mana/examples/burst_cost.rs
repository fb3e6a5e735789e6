//! Driver cost per packet at full bursts, whatever the device's speed: fill a port's RX queue
//! through the device, then time RX bursts that find 32 packets each, then time TX bursts of
//! those packets (which find room). `cargo run --release -p mana-pmd --example burst_cost --
//! [ROUNDS] [BURST] [DESC] [CACHE]`.
//!
//! Two lines: the mean over all bursts, and the median of full bursts (robust to the host
//! preempting this VM, which inflates means by several cycles per packet).
//!
//! The phases (half a ring of TX, then as much RX) overflow a per-lcore pool cache smaller than
//! that: RX then refills with mbufs that come from the pool's ring, cold in cache, and at bursts
//! of 64 the header prefetches of such mbufs stall. CACHE (default 256, DPDK testpmd's 250
//! rounded) sets the pool's cache size to show it: at 512, burst 64 costs what burst 32 does.

use std::time::{Duration, Instant};

use mana_pmd::ManaFactory;
use pmd_ethdev::*;
use pmd_mempool::{HugePolicy, MbufPool, MbufPoolConfig, tsc};

/// One RX burst, kept out of line so a profiler (callgrind) can count its instructions alone.
#[inline(never)]
fn rx_once(q: &mut RxQueue, out: &mut Pkts, max: usize) -> usize {
    q.rx_burst(out, max)
}

/// One TX burst, kept out of line (see `rx_once`).
#[inline(never)]
fn tx_once(q: &mut TxQueue, pkts: &mut Pkts) -> usize {
    q.tx_burst(pkts)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rounds: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(2000);
    let burst: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(32);
    let desc: u16 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(1024);
    let cache: u32 = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(256);
    let mut reg = Registry::new();
    reg.add(Box::new(ManaFactory::new()));
    let ports = reg.probe("mana:emu,vports=2,wire=pair,any_source_mac=1").unwrap();
    core_affinity::set_for_current(core_affinity::CoreId { id: 0 });
    let mut c = MbufPoolConfig::new("burst-cost", 16384);
    c.huge = HugePolicy::Prefer;
    c.cache_size = cache;
    let mp = MbufPool::with_config(&c).unwrap();
    for p in &ports {
        p.configure(1, 1, &PortConf::default()).unwrap();
        p.rx_queue_setup(0, desc, &mp).unwrap();
        p.tx_queue_setup(0, desc).unwrap();
        p.start().unwrap();
    }
    let (a, b) = (&ports[0], &ports[1]);
    let mut txa = a.tx_queue(0).unwrap();
    let mut rxb = b.rx_queue(0).unwrap();
    let n_fill = (desc as usize / 2).max(burst);
    let mut pool_burst = Pkts::new();
    let (mut rx_cyc, mut rx_pkts, mut rx_calls) = (0u64, 0u64, 0u64);
    let (mut tx_cyc, mut tx_pkts, mut tx_calls) = (0u64, 0u64, 0u64);
    // Cycles per packet of each full burst, for medians (robust to preemption on a busy host).
    let mut rx_each: Vec<f64> = Vec::with_capacity(rounds * (n_fill / burst + 1));
    let mut tx_each: Vec<f64> = Vec::with_capacity(rounds * (n_fill / burst + 1));
    let mut held: Vec<Pkts> = Vec::new();
    for _ in 0..rounds {
        // Fill: n_fill frames from a to b (timed: TX bursts that find room).
        let mut left = n_fill;
        while left > 0 {
            let k = left.min(burst);
            let mut pk = match held.pop() {
                Some(p) => p,
                None => {
                    let mut pk = Pkts::new();
                    for _ in 0..k {
                        let mut m = mp.alloc().unwrap();
                        let d = m.append(60).unwrap();
                        d.fill(0);
                        d[..6].copy_from_slice(&b.mac());
                        d[6..12].copy_from_slice(&a.mac());
                        d[12..14].copy_from_slice(&[0x88, 0xb5]);
                        pk.push(m).unwrap();
                    }
                    pk
                }
            };
            let n = pk.len();
            let s = tsc::rdtsc();
            let sent = tx_once(&mut txa, &mut pk);
            let c = tsc::rdtsc() - s;
            tx_cyc += c;
            if sent == burst {
                tx_each.push(c as f64 / sent as f64);
            }
            tx_calls += 1;
            tx_pkts += sent as u64;
            pk.free_all();
            left -= n.min(left);
        }
        // Wait until the device delivered them all into b's RX ring.
        let end = Instant::now() + Duration::from_secs(2);
        std::thread::sleep(Duration::from_micros(200));
        // Drain b's RX in full bursts (timed).
        let mut got = 0;
        while got < n_fill && Instant::now() < end {
            let s = tsc::rdtsc();
            let n = rx_once(&mut rxb, &mut pool_burst, burst);
            let e = tsc::rdtsc();
            if n == 0 {
                std::thread::sleep(Duration::from_micros(50));
                continue;
            }
            rx_cyc += e - s;
            if n == burst {
                rx_each.push((e - s) as f64 / n as f64);
            }
            rx_calls += 1;
            rx_pkts += n as u64;
            got += n;
            let mut p2 = Pkts::new();
            p2.extend(pool_burst.take_front(n));
            // Reuse as TX input next round (frames are a -> b).
            held.push(p2);
        }
    }
    println!(
        "full-burst cost (burst {burst}, {desc} descriptors): rx {:.1} cycles/pkt ({:.1} pkts/call), tx {:.1} cycles/pkt ({:.1} pkts/call)",
        rx_cyc as f64 / rx_pkts.max(1) as f64,
        rx_pkts as f64 / rx_calls.max(1) as f64,
        tx_cyc as f64 / tx_pkts.max(1) as f64,
        tx_pkts as f64 / tx_calls.max(1) as f64,
    );
    let median = |v: &mut Vec<f64>| {
        v.sort_unstable_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(0.0)
    };
    let (rx_med, tx_med) = (median(&mut rx_each), median(&mut tx_each));
    println!(
        "median full burst: rx {rx_med:.1} cycles/pkt, tx {tx_med:.1} cycles/pkt, rx+tx {:.1} ({} and {} bursts)",
        rx_med + tx_med,
        rx_each.len(),
        tx_each.len()
    );
    for p in held.iter_mut() {
        p.free_all();
    }
    drop((txa, rxb));
    for p in &ports {
        p.close().unwrap();
    }
}
