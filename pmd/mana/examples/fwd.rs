//! io forwarding (packets unchanged) between two ports on one core, for profiling: `cargo run --release -p mana-pmd
//! --example fwd -- [PROBE] [SECONDS] [BURST]` (PROBE: default `mana:emu,vports=2,wire=pair`; a
//! `null` probe string makes two null ports).

use std::time::{Duration, Instant};

use mana_pmd::ManaFactory;
use pmd_ethdev::*;
use pmd_mempool::{HugePolicy, MbufPool, MbufPoolConfig, tsc};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let spec = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| "mana:emu,vports=2,wire=pair,any_source_mac=1".into());
    let secs: f64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(3.0);
    let burst: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(32);
    let mut reg = Registry::new();
    reg.add(Box::new(ManaFactory::new()));
    let mut ports = reg.probe(&spec).unwrap();
    if ports.len() < 2 {
        ports.extend(reg.probe(&spec).unwrap());
    }
    core_affinity::set_for_current(core_affinity::CoreId { id: 0 });
    let mut c = MbufPoolConfig::new("fwd", 16384);
    c.huge = HugePolicy::Prefer;
    let mp = MbufPool::with_config(&c).unwrap();
    for p in &ports[..2] {
        p.configure(1, 1, &PortConf::default()).unwrap();
        p.rx_queue_setup(0, 1024, &mp).unwrap();
        p.tx_queue_setup(0, 1024).unwrap();
        p.start().unwrap();
    }
    let (a, b) = (&ports[0], &ports[1]);
    let mut rx = [a.rx_queue(0).unwrap(), b.rx_queue(0).unwrap()];
    let mut tx = [b.tx_queue(0).unwrap(), a.tx_queue(0).unwrap()];
    let macs = [a.mac(), b.mac()];
    // tx_first: prime each direction with bursts of 64-byte frames.
    for (i, t) in tx.iter_mut().enumerate() {
        for _ in 0..16 {
            let mut pk = Pkts::new();
            for _ in 0..burst {
                let mut m = mp.alloc().unwrap();
                let d = m.append(60).unwrap();
                d.fill(0);
                // Port i^1's TX goes to port i's RX... tx[0] is b's TX (to a), tx[1] a's (to b).
                let (src, dst) = if i == 0 { (macs[1], macs[0]) } else { (macs[0], macs[1]) };
                d[..6].copy_from_slice(&dst);
                d[6..12].copy_from_slice(&src);
                d[12..14].copy_from_slice(&[0x88, 0xb5]);
                pk.push(m).unwrap();
            }
            while !pk.is_empty() {
                t.tx_burst(&mut pk);
            }
        }
    }
    let mut b0 = Pkts::new();
    let (mut rx_cyc, mut tx_cyc, mut pkts, mut polls, mut busy_polls) =
        (0u64, 0u64, 0u64, 0u64, 0u64);
    let t0 = Instant::now();
    let end = t0 + Duration::from_secs_f64(secs);
    let c0 = tsc::rdtsc();
    while Instant::now() < end {
        for _ in 0..1000 {
            for dir in 0..2 {
                let s = tsc::rdtsc();
                let n = rx[dir].rx_burst(&mut b0, burst);
                let m = tsc::rdtsc();
                polls += 1;
                if n == 0 {
                    // As DPDK's --record-core-cycles: empty polls are not counted.
                    continue;
                }
                busy_polls += 1;
                rx_cyc += m - s;
                let sent = tx[dir].tx_burst(&mut b0);
                let e = tsc::rdtsc();
                tx_cyc += e - m;
                pkts += sent as u64;
                b0.free_all();
            }
        }
    }
    let _ = c0;
    let el = t0.elapsed().as_secs_f64();
    println!(
        "{spec}: {:.2} Mpps forwarded, burst {burst}: {:.1} cycles/pkt in busy polls ({:.1} rx + \
         {:.1} tx), {:.1} packets per busy poll, {:.0}% of polls empty",
        pkts as f64 / el / 1e6,
        (rx_cyc + tx_cyc) as f64 / pkts.max(1) as f64,
        rx_cyc as f64 / pkts.max(1) as f64,
        tx_cyc as f64 / pkts.max(1) as f64,
        pkts as f64 / busy_polls.max(1) as f64,
        100.0 * (polls - busy_polls) as f64 / polls.max(1) as f64
    );
    if std::env::var("FWD_XSTATS").is_ok() {
        for p in &ports[..2] {
            for x in p.xstats().unwrap() {
                if x.value != 0 {
                    println!("port {} {} = {}", p.id(), x.name, x.value);
                }
            }
        }
    }
    drop((rx, tx));
    for p in &ports {
        p.close().unwrap();
    }
}
