//! How fast forwarding resumes after a device reset: io forwarding over an emulated pair while
//! the device is told to reset (event 135) again and again.
//!
//! For each reset: from the request to ERR_RECOVERING; from the device being ready again (the
//! instant its register map is readable again, as the device records it) to RECOVERY_SUCCESS and
//! to the first packet forwarded; and the packets lost (sent and never received).
//!
//! The forwarder's packets are all lost in a reset (the pair wire brings none from outside), so
//! it sends a new population of 256 packets per direction when a port tells it that it recovered
//! (RECOVERY_SUCCESS, as an application that reacts to the event would), and whenever nothing
//! has arrived for 5 ms. With `timer` as the fourth argument it waits for the 5 ms timer only
//! (what this benchmark did at first): the first packet then comes up to 5 ms after the port is
//! usable again.
//!
//! `cargo run --release -p mana-pmd --example reset_time -- [RESETS] [DOWN_MS] [NAP_US] [timer]`

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mana_pmd::ManaFactory;
use pmd_ethdev::event::{Event, EventType};
use pmd_ethdev::*;
use pmd_mempool::{HugePolicy, MbufPool, MbufPoolConfig};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let resets: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(50);
    let down_ms: u64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(100);
    // How long the idle device thread naps between passes (the software device's own latency:
    // a command that arrives while it naps waits for its next pass).
    let nap_us: u64 = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(1000);
    let timer_only = args.get(4).is_some_and(|a| a == "timer");
    let mut cfg = mana_emu::DeviceConfig::new(2, mana_emu::WireSpec::Pair);
    cfg.reset_down_time = Duration::from_millis(down_ms);
    cfg.max_nap = Duration::from_micros(nap_us);
    let dev = Arc::new(mana_emu::Device::start(cfg).unwrap());
    let mut reg = Registry::new();
    reg.add(Box::new(ManaFactory::new().with_device(dev.clone())));
    let ports = reg.probe("mana:emu").unwrap();
    let mut c = MbufPoolConfig::new("reset-time", 8192);
    c.huge = HugePolicy::Prefer;
    let mp = MbufPool::with_config(&c).unwrap();
    let events: Arc<Mutex<Vec<(EventType, Instant)>>> = Arc::default();
    for p in &ports {
        p.configure(1, 1, &PortConf::default()).unwrap();
        p.rx_queue_setup(0, 1024, &mp).unwrap();
        p.tx_queue_setup(0, 1024).unwrap();
        p.start().unwrap();
    }
    let ev = events.clone();
    ports[0].on_event(
        None,
        Arc::new(move |e: &Event| ev.lock().unwrap().push((e.kind, Instant::now()))),
    );
    // One flag per port: it recovered, send a new population.
    let reprime: Arc<[AtomicBool; 2]> = Arc::default();
    for (i, p) in ports.iter().enumerate() {
        let r = reprime.clone();
        p.on_event(
            Some(EventType::RecoverySuccess),
            Arc::new(move |_: &Event| {
                if !timer_only {
                    r[i].store(true, Ordering::Relaxed);
                }
            }),
        );
    }

    // The forwarder: a population of 256 packets per direction, sent again when a port recovered
    // or when nothing flowed for 5 ms. It notes when packets arrive after a pause of 1 ms.
    let stop = Arc::new(AtomicBool::new(false));
    let (sent, recvd) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let resumed: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let mut qs = Vec::new();
    for (i, p) in ports.iter().enumerate() {
        qs.push((p.rx_queue(0).unwrap(), p.tx_queue(0).unwrap(), p.mac(), ports[1 - i].mac()));
    }
    let fwd = {
        let (stop, sent, recvd, resumed, reprime, mp) = (
            stop.clone(),
            sent.clone(),
            recvd.clone(),
            resumed.clone(),
            reprime.clone(),
            mp.clone(),
        );
        std::thread::spawn(move || {
            let mut b = Pkts::new();
            let mut last_rx = [Instant::now(); 2];
            let mut last_any = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                for (k, (rx, tx, me, peer)) in qs.iter_mut().enumerate() {
                    let n = rx.rx_burst(&mut b, 32);
                    recvd.fetch_add(n as u64, Ordering::Relaxed);
                    if n > 0 {
                        let now = Instant::now();
                        if now - last_any > Duration::from_millis(1) {
                            resumed.lock().unwrap().push(now);
                        }
                        last_any = now;
                        last_rx[k] = now;
                    } else if reprime[k].swap(false, Ordering::Relaxed)
                        || last_rx[k].elapsed() > Duration::from_millis(5)
                    {
                        // The population was lost (a reset): a new one.
                        last_rx[k] = Instant::now();
                        for _ in 0..256 {
                            let Ok(mut m) = mp.alloc() else { break };
                            let f = m.append(60).unwrap();
                            f.fill(0);
                            f[..6].copy_from_slice(peer);
                            f[6..12].copy_from_slice(me);
                            f[12..14].copy_from_slice(&[0x88, 0xb5]);
                            if b.push(m).is_err() {
                                break;
                            }
                            if b.len() == 32 {
                                sent.fetch_add(tx.tx_burst(&mut b) as u64, Ordering::Relaxed);
                                b.free_all();
                            }
                        }
                    }
                    for m in b.as_mut_slice() {
                        if let Some(d) = m.data_mut() {
                            d[..6].copy_from_slice(peer);
                            d[6..12].copy_from_slice(me);
                        }
                    }
                    sent.fetch_add(tx.tx_burst(&mut b) as u64, Ordering::Relaxed);
                    b.free_all();
                }
            }
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    let (mut to_notice, mut to_success, mut to_first, mut success_to_first, mut lost) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..resets {
        let resets_before = dev.stats().device.resets.get();
        let n_ev = events.lock().unwrap().len();
        let loss_before = sent.load(Ordering::Relaxed) - recvd.load(Ordering::Relaxed);
        let t0 = Instant::now();
        dev.inject("reset-request".parse().unwrap()).unwrap();
        // Wait for the episode's end and the first packet after the device's power-on.
        let end = Instant::now() + Duration::from_secs(30);
        let (back, success, first) = loop {
            assert!(Instant::now() < end, "no recovery");
            std::thread::sleep(Duration::from_micros(100));
            if dev.stats().device.resets.get() == resets_before {
                continue;
            }
            let back = dev.last_power_on().unwrap();
            let success = events.lock().unwrap()[n_ev..]
                .iter()
                .find(|e| e.0 == EventType::RecoverySuccess)
                .map(|e| e.1);
            let first = resumed.lock().unwrap().iter().copied().find(|&t| t > back);
            if let (Some(s), Some(f)) = (success, first) {
                break (back, s, f);
            }
        };
        let evs = events.lock().unwrap()[n_ev..].to_vec();
        let noticed = evs.iter().find(|e| e.0 == EventType::ErrRecovering).unwrap().1;
        to_notice.push(noticed - t0);
        to_success.push(success.saturating_duration_since(back));
        to_first.push(first.saturating_duration_since(back));
        success_to_first.push(first.saturating_duration_since(success));
        std::thread::sleep(Duration::from_millis(100));
        let loss_after = sent.load(Ordering::Relaxed) - recvd.load(Ordering::Relaxed);
        lost.push(loss_after.saturating_sub(loss_before));
    }
    stop.store(true, Ordering::Relaxed);
    fwd.join().unwrap();
    for p in &ports {
        p.close().unwrap();
    }
    assert_eq!(mp.in_use_count(), 0, "every mbuf back");
    fn stats(name: &str, v: &mut [Duration]) {
        v.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!(
            "{name:<44} median {:7.2} ms  p90 {:7.2} ms  max {:7.2} ms",
            ms(v[v.len() / 2]),
            ms(v[v.len() * 9 / 10]),
            ms(v[v.len() - 1])
        );
    }
    println!(
        "{resets} resets, device down {down_ms} ms each, device nap {nap_us} us, io forwarding \
         on a pair, new population {}",
        if timer_only { "after 5 ms without traffic" } else { "on RECOVERY_SUCCESS" }
    );
    stats("reset request -> ERR_RECOVERING", &mut to_notice);
    stats("device ready -> RECOVERY_SUCCESS", &mut to_success);
    stats("device ready -> first packet forwarded", &mut to_first);
    stats("RECOVERY_SUCCESS -> first packet forwarded", &mut success_to_first);
    lost.sort();
    println!(
        "{:<44} median {} p90 {} max {} (population 2 x 256)",
        "packets lost per reset",
        lost[lost.len() / 2],
        lost[lost.len() * 9 / 10],
        lost[lost.len() - 1]
    );
}
