//! The ring port: loopback and cabled pairs, the RX queue mapping, full rings, drains, stats,
//! probe rules, and that no mbuf is ever leaked.
//!
//! Every test uses its own ring names: the sets are shared by the whole process.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use pmd_ethdev::*;
use pmd_mempool::{HugePolicy, MbufPool, MbufPoolConfig};

fn pool(name: &str, n: u32) -> MbufPool {
    let mut c = MbufPoolConfig::new(name, n);
    c.huge = HugePolicy::Never;
    c.cache_size = 32;
    MbufPool::with_config(&c).unwrap()
}

fn probe(spec: &str) -> Port {
    Registry::new().probe(spec).unwrap().remove(0)
}

/// Configures `nrx` RX and `ntx` TX queues, sets them all up and starts the port.
fn up(p: &Port, nrx: u16, ntx: u16, mp: &MbufPool) {
    p.configure(nrx, ntx, &PortConf::default()).unwrap();
    for q in 0..nrx {
        p.rx_queue_setup(q, 256, mp).unwrap();
    }
    for q in 0..ntx {
        p.tx_queue_setup(q, 256).unwrap();
    }
    p.start().unwrap();
}

/// `n` packets of 60 + (seq % 40) bytes, tagged with their sequence numbers (udata64).
fn burst(mp: &MbufPool, seqs: std::ops::Range<u64>) -> Pkts {
    let mut b = Pkts::new();
    for s in seqs {
        let mut m = mp.alloc().unwrap();
        assert!(m.set_lens(60 + (s % 40) as u16));
        m.set_udata64(s);
        b.push(m).unwrap();
    }
    b
}

fn seqs(b: &Pkts) -> Vec<u64> {
    b.as_slice().iter().map(|m| m.udata64()).collect()
}

fn bytes(seqs: std::ops::Range<u64>) -> u64 {
    seqs.map(|s| 60 + s % 40).sum()
}

/// Receives everything queue `rx` has now (several bursts).
fn rx_all(rx: &mut RxQueue) -> Pkts {
    let mut b = Pkts::new();
    while rx.rx_burst(&mut b, 32) != 0 {}
    b
}

#[test]
fn a_port_alone_loops_tx_queue_q_back_to_its_rx_queue_q() {
    let mp = pool("ring-lb", 1024);
    let p = probe("ring:t-loopback,queues=2");
    up(&p, 2, 2, &mp);
    assert!(p.link().up);
    let mut rx0 = p.rx_queue(0).unwrap();
    let mut rx1 = p.rx_queue(1).unwrap();
    let mut tx0 = p.tx_queue(0).unwrap();
    let mut tx1 = p.tx_queue(1).unwrap();

    let mut b = burst(&mp, 0..10);
    assert_eq!(tx0.tx_burst(&mut b), 10);
    assert!(b.is_empty());
    let mut b = burst(&mp, 100..103);
    assert_eq!(tx1.tx_burst(&mut b), 3);

    let mut got0 = rx_all(&mut rx0);
    let mut got1 = rx_all(&mut rx1);
    assert_eq!(seqs(&got0), (0..10).collect::<Vec<_>>());
    assert_eq!(seqs(&got1), vec![100, 101, 102]);
    assert!(got0.as_slice().iter().chain(got1.as_slice()).all(|m| m.port() == p.id()));

    let s = p.stats().unwrap();
    assert_eq!((s.ipackets, s.opackets), (13, 13));
    assert_eq!((s.q_ipackets.clone(), s.q_opackets.clone()), (vec![10, 3], vec![10, 3]));
    assert_eq!(s.ibytes, bytes(0..10) + bytes(100..103));
    assert_eq!(s.obytes, s.ibytes);
    assert_eq!((s.imissed, s.oerrors), (0, 0));

    got0.free_all();
    got1.free_all();
    p.close().unwrap();
    assert!(!p.link().up);
    assert_eq!(mp.in_use_count(), 0);
}

#[test]
fn two_ports_are_cabled_tx_q_to_the_peers_rx_q_mod_its_rx_queues() {
    let mp = pool("ring-pair", 2048);
    let a = probe("ring:t-pair,queues=4");
    let b = probe("ring:t-pair");
    assert_ne!(a.mac(), b.mac());
    up(&a, 4, 4, &mp);
    up(&b, 2, 3, &mp);
    let mut a_rx: Vec<RxQueue> = (0..4).map(|q| a.rx_queue(q).unwrap()).collect();
    let mut a_tx: Vec<TxQueue> = (0..4).map(|q| a.tx_queue(q).unwrap()).collect();
    let mut b_rx: Vec<RxQueue> = (0..2).map(|q| b.rx_queue(q).unwrap()).collect();
    let mut b_tx: Vec<TxQueue> = (0..3).map(|q| b.tx_queue(q).unwrap()).collect();

    // A's TX queue q carries sequence numbers 1000 * q ..
    for (q, tx) in a_tx.iter_mut().enumerate() {
        let base = 1000 * q as u64;
        let mut p = burst(&mp, base..base + 5);
        assert_eq!(tx.tx_burst(&mut p), 5);
    }
    for (q, tx) in b_tx.iter_mut().enumerate() {
        let base = 10_000 + 1000 * q as u64;
        let mut p = burst(&mp, base..base + 2);
        assert_eq!(tx.tx_burst(&mut p), 2);
    }
    // Nothing loops back to the sender.
    // B has 2 RX queues: A's TX 0 and 2 arrive at B's RX 0, TX 1 and 3 at B's RX 1 (per-queue
    // order kept, queues in the order they were sent).
    let mut got: Vec<Vec<u64>> = Vec::new();
    for rx in &mut b_rx {
        let mut p = rx_all(rx);
        assert!(p.as_slice().iter().all(|m| m.port() == b.id()));
        got.push(seqs(&p));
        p.free_all();
    }
    assert_eq!(got[0], [0, 1, 2, 3, 4, 2000, 2001, 2002, 2003, 2004]);
    assert_eq!(got[1], [1000, 1001, 1002, 1003, 1004, 3000, 3001, 3002, 3003, 3004]);
    // A has 4 RX queues: B's TX q arrives at A's RX q.
    for (q, rx) in a_rx.iter_mut().enumerate() {
        let mut p = rx_all(rx);
        assert!(p.as_slice().iter().all(|m| m.port() == a.id()));
        let want: Vec<u64> = if q < 3 {
            let base = 10_000 + 1000 * q as u64;
            (base..base + 2).collect()
        } else {
            vec![]
        };
        assert_eq!(seqs(&p), want, "A RX queue {q}");
        p.free_all();
    }
    let (sa, sb) = (a.stats().unwrap(), b.stats().unwrap());
    assert_eq!((sa.opackets, sa.ipackets, sb.opackets, sb.ipackets), (20, 6, 6, 20));
    assert_eq!(sb.q_ipackets, [10, 10]);
    assert_eq!(sa.q_ipackets, [2, 2, 2, 0]);
    assert_eq!(sa.obytes, sb.ibytes);
    assert_eq!(sb.obytes, sa.ibytes);
    a.close().unwrap();
    b.close().unwrap();
    assert_eq!(mp.in_use_count(), 0);
}

#[test]
fn a_full_ring_takes_the_prefix_that_fits_and_the_caller_keeps_the_rest_in_order() {
    let mp = pool("ring-full", 256);
    let p = probe("ring:t-full,queues=1,size=8");
    up(&p, 1, 1, &mp);
    let mut rx = p.rx_queue(0).unwrap();
    let mut tx = p.tx_queue(0).unwrap();
    let mut b = burst(&mp, 0..20);
    assert_eq!(tx.tx_burst(&mut b), 8);
    assert_eq!(seqs(&b), (8..20).collect::<Vec<_>>());
    // Still full: nothing taken, nothing skipped.
    assert_eq!(tx.tx_burst(&mut b), 0);
    assert_eq!(b.len(), 12);
    let mut got = Pkts::new();
    assert_eq!(rx.rx_burst(&mut got, 3), 3);
    assert_eq!(tx.tx_burst(&mut b), 3);
    assert_eq!(seqs(&b), (11..20).collect::<Vec<_>>());
    let mut rest = rx_all(&mut rx);
    got.extend(rest.take_front(rest.len()));
    assert_eq!(seqs(&got), (0..11).collect::<Vec<_>>());
    let s = p.stats().unwrap();
    assert_eq!((s.opackets, s.obytes), (11, bytes(0..11)));
    got.free_all();
    b.free_all();
    p.close().unwrap();
    assert_eq!(mp.in_use_count(), 0);
}

#[test]
fn stop_start_and_close_free_what_the_rings_hold_as_missed() {
    let mp = pool("ring-drain", 512);
    let p = probe("ring:t-drain,queues=2,size=64");
    up(&p, 2, 2, &mp);
    let mut tx = p.tx_queue(1).unwrap();
    let mut rx = p.rx_queue(1).unwrap();
    let mut b = burst(&mp, 0..40);
    assert_eq!(tx.tx_burst(&mut b), 40);
    assert_eq!(mp.in_use_count(), 40);
    p.stop().unwrap();
    assert_eq!(mp.in_use_count(), 0, "stop left mbufs in the rings");
    assert_eq!(p.stats().unwrap().imissed, 40);
    // Stopped: the handles do nothing; nothing is delivered to a stopped port either.
    let mut b = burst(&mp, 0..5);
    assert_eq!(tx.tx_burst(&mut b), 0);
    assert_eq!(b.len(), 5);
    b.free_all();
    p.start().unwrap();
    assert_eq!(rx_all(&mut rx).len(), 0, "packets from before the stop were received");
    let mut b = burst(&mp, 0..7);
    assert_eq!(tx.tx_burst(&mut b), 7);
    p.close().unwrap();
    assert_eq!(mp.in_use_count(), 0, "close left mbufs in the rings");
    assert_eq!(p.stats().unwrap().imissed, 47);
    let x = p.xstats().unwrap();
    assert!(x.contains(&XStat::new("rx_missed_errors", 47)), "{x:?}");
}

#[test]
fn packets_sent_to_a_peer_that_is_not_started_are_freed_and_counted_as_tx_errors() {
    let mp = pool("ring-dead", 256);
    let a = probe("ring:t-dead");
    let b = probe("ring:t-dead");
    up(&a, 1, 1, &mp);
    let mut tx = a.tx_queue(0).unwrap();
    // B is probed (so A is cabled to it) but not configured.
    let mut p = burst(&mp, 0..9);
    assert_eq!(tx.tx_burst(&mut p), 9);
    assert_eq!(mp.in_use_count(), 0);
    let s = a.stats().unwrap();
    assert_eq!((s.opackets, s.oerrors), (0, 9));
    assert!(a.xstats().unwrap().contains(&XStat::new("tx_q0_errors", 9)));
    // Configured and stopped: the same.
    b.configure(1, 1, &PortConf::default()).unwrap();
    b.rx_queue_setup(0, 64, &mp).unwrap();
    b.tx_queue_setup(0, 64).unwrap();
    let mut p = burst(&mp, 0..2);
    assert_eq!(tx.tx_burst(&mut p), 2);
    assert_eq!(a.stats().unwrap().oerrors, 11);
    // Started: delivered.
    b.start().unwrap();
    let mut p = burst(&mp, 0..4);
    assert_eq!(tx.tx_burst(&mut p), 4);
    let mut got = rx_all(&mut b.rx_queue(0).unwrap());
    assert_eq!(seqs(&got), [0, 1, 2, 3]);
    got.free_all();
    a.close().unwrap();
    b.close().unwrap();
    assert_eq!(mp.in_use_count(), 0);
}

#[test]
fn closing_leaves_the_peer_looped_back_and_frees_the_place_for_a_new_port() {
    let mp = pool("ring-places", 512);
    let a = probe("ring:t-places,queues=2");
    let b = probe("ring:t-places");
    let e = Registry::new().probe("ring:t-places").unwrap_err().to_string();
    assert!(e.contains("already has two ports"), "{e}");
    up(&a, 1, 1, &mp);
    up(&b, 1, 1, &mp);
    let mut a_tx = a.tx_queue(0).unwrap();
    let mut a_rx = a.rx_queue(0).unwrap();
    let mut p = burst(&mp, 0..3);
    assert_eq!(a_tx.tx_burst(&mut p), 3);
    assert_eq!(rx_all(&mut a_rx).len(), 0, "cabled, yet A received its own packets");
    b.close().unwrap();
    assert_eq!(mp.in_use_count(), 0, "B's close left A's packets in B's ring");
    // Alone again: loopback, from the next burst on.
    let mut p = burst(&mp, 10..12);
    assert_eq!(a_tx.tx_burst(&mut p), 2);
    let mut got = rx_all(&mut a_rx);
    assert_eq!(seqs(&got), [10, 11]);
    got.free_all();
    // The place is free: a new port takes it and is cabled to A (from A's next burst).
    let c = probe("ring:t-places");
    up(&c, 1, 1, &mp);
    let mut p = burst(&mp, 20..22);
    assert_eq!(a_tx.tx_burst(&mut p), 2);
    assert_eq!(rx_all(&mut a_rx).len(), 0);
    let mut got = rx_all(&mut c.rx_queue(0).unwrap());
    assert_eq!(seqs(&got), [20, 21]);
    assert!(got.as_slice().iter().all(|m| m.port() == c.id()));
    got.free_all();
    a.close().unwrap();
    c.close().unwrap();
    assert_eq!(mp.in_use_count(), 0);
}

#[test]
fn a_set_keeps_its_geometry_while_used_and_goes_when_its_ports_do() {
    let a = probe("ring:t-geo,queues=2,size=16");
    assert_eq!(a.info().max_rx_queues, 2);
    let e = Registry::new().probe("ring:t-geo,size=32").unwrap_err().to_string();
    assert!(e.contains("exists with queues=2,size=16"), "{e}");
    let b = probe("ring:t-geo,queues=2");
    assert_eq!(b.info().max_tx_queues, 2);
    drop((a, b));
    // Nothing uses the set now: a new one with other values.
    let c = probe("ring:t-geo,queues=3,size=32");
    assert_eq!(c.info().max_rx_queues, 3);
}

#[test]
fn ring_probe_errors_name_the_bad_part() {
    let mut r = Registry::new();
    for (spec, part) in [
        ("ring", "ring needs a name"),
        ("ring:", "ring needs a name"),
        ("ring,size=4", "ring needs a name"),
        ("ring:x,queues=0", "queues=0: 1..=64"),
        ("ring:x,queues=65", "queues=65: 1..=64"),
        ("ring:x,queues=q", "queues=q: not a valid u16"),
        ("ring:x,size=0", "size=0: 1..=65536"),
        ("ring:x,size=65537", "size=65537: 1..=65536"),
        ("ring:x,speed=1", "unknown argument 'speed' for driver ring (known: queues, size)"),
    ] {
        let e = r.probe(spec).unwrap_err();
        assert!(matches!(e, EthError::BadProbe { .. }), "{spec}: {e:?}");
        assert!(e.to_string().contains(part), "{spec}: {e}");
    }
}

#[test]
fn a_port_probed_later_is_cabled_from_the_next_burst() {
    let mp = pool("ring-later", 256);
    let a = probe("ring:t-later");
    up(&a, 1, 1, &mp);
    let mut tx = a.tx_queue(0).unwrap();
    let mut rx = a.rx_queue(0).unwrap();
    let mut p = burst(&mp, 0..2);
    assert_eq!(tx.tx_burst(&mut p), 2);
    let mut got = rx_all(&mut rx);
    assert_eq!(seqs(&got), [0, 1]);
    got.free_all();
    let b = probe("ring:t-later");
    up(&b, 1, 1, &mp);
    let mut p = burst(&mp, 5..7);
    assert_eq!(tx.tx_burst(&mut p), 2);
    assert_eq!(rx_all(&mut rx).len(), 0);
    let mut got = rx_all(&mut b.rx_queue(0).unwrap());
    assert_eq!(seqs(&got), [5, 6]);
    got.free_all();
    drop((a, b)); // dropped without close: nothing may leak either
    assert_eq!(mp.in_use_count(), 0);
}

#[test]
fn handles_of_a_reconfigured_ring_port_stop_working() {
    let mp = pool("ring-reconf", 256);
    let p = probe("ring:t-reconf");
    up(&p, 1, 1, &mp);
    let mut old_rx = p.rx_queue(0).unwrap();
    let mut old_tx = p.tx_queue(0).unwrap();
    p.stop().unwrap();
    p.configure(1, 1, &PortConf::default()).unwrap();
    p.rx_queue_setup(0, 64, &mp).unwrap();
    p.tx_queue_setup(0, 64).unwrap();
    p.start().unwrap();
    // The old handles reach released queues: they do nothing, and the new ones work.
    let mut b = burst(&mp, 0..3);
    assert_eq!(old_tx.tx_burst(&mut b), 0);
    assert!(old_tx.stopped() && old_rx.stopped());
    let mut new_tx = p.tx_queue(0).unwrap();
    let mut new_rx = p.rx_queue(0).unwrap();
    assert_eq!(new_tx.tx_burst(&mut b), 3);
    assert_eq!(rx_all(&mut old_rx).len(), 0);
    let mut got = rx_all(&mut new_rx);
    assert_eq!(seqs(&got), [0, 1, 2]);
    got.free_all();
    p.close().unwrap();
    assert_eq!(mp.in_use_count(), 0);
}

#[test]
fn a_queue_handle_outliving_its_dropped_port_holds_no_packets() {
    let mp = pool("ring-orphan", 256);
    let a = probe("ring:t-orphan");
    let b = probe("ring:t-orphan");
    up(&a, 1, 1, &mp);
    up(&b, 1, 1, &mp);
    let mut b_rx = b.rx_queue(0).unwrap();
    drop(b); // started, not closed, its RX handle still alive
    let mut tx = a.tx_queue(0).unwrap();
    let mut p = burst(&mp, 0..4);
    assert_eq!(tx.tx_burst(&mut p), 4);
    // A is alone now: its packets loop back; B's orphan handle gets nothing.
    assert_eq!(rx_all(&mut b_rx).len(), 0);
    let mut got = rx_all(&mut a.rx_queue(0).unwrap());
    assert_eq!(seqs(&got), [0, 1, 2, 3]);
    got.free_all();
    drop(b_rx);
    a.close().unwrap();
    assert_eq!(mp.in_use_count(), 0);
}

#[test]
fn xstats_name_every_queue_and_reset_to_zero() {
    let mp = pool("ring-xstats", 256);
    let p = probe("ring:t-xstats,queues=2");
    up(&p, 2, 2, &mp);
    let mut tx = p.tx_queue(1).unwrap();
    let mut b = burst(&mp, 0..6);
    assert_eq!(tx.tx_burst(&mut b), 6);
    let x = p.xstats().unwrap();
    let get = |x: &[XStat], n: &str| x.iter().find(|s| s.name == n).map(|s| s.value);
    for name in [
        "rx_good_packets",
        "tx_good_packets",
        "rx_good_bytes",
        "tx_good_bytes",
        "rx_missed_errors",
        "rx_errors",
        "tx_errors",
        "rx_q0_packets",
        "rx_q1_bytes",
        "tx_q1_packets",
        "tx_q0_bytes",
        "tx_q1_errors",
    ] {
        assert!(get(&x, name).is_some(), "no {name} in {x:?}");
    }
    assert_eq!(get(&x, "tx_q1_packets"), Some(6));
    assert_eq!(get(&x, "tx_good_bytes"), Some(bytes(0..6)));
    p.xstats_reset().unwrap();
    assert!(p.xstats().unwrap().iter().all(|s| s.value == 0));
    let mut got = rx_all(&mut p.rx_queue(1).unwrap());
    assert_eq!(got.len(), 6);
    let x = p.xstats().unwrap();
    assert_eq!((get(&x, "rx_q1_packets"), get(&x, "tx_q1_packets")), (Some(6), Some(0)));
    got.free_all();
    p.close().unwrap();
    assert_eq!(mp.in_use_count(), 0);
}

#[test]
fn ring_ports_have_no_rss() {
    let p = probe("ring:t-norss");
    p.configure(1, 1, &PortConf::default()).unwrap();
    let conf =
        PortConf { rss: Some(RssConf { key: None, hf: conf::rss::IP }), ..Default::default() };
    let e = p.configure(1, 1, &conf).unwrap_err().to_string();
    assert!(e.contains("rss_hf") && e.contains("not supported"), "{e}");
    let e = p.reta_update(&[]).unwrap_err().to_string();
    assert!(e.contains("0 entries, the table has 0"), "{e}");
    assert!(matches!(p.reta_query(), Err(EthError::Unsupported { op: "reta_query", .. })));
}

#[test]
fn senders_on_several_threads_feed_one_rx_queue_exactly_once_and_in_order_per_queue() {
    // A's TX queues 0 and 1 both map to B's only RX queue (MP ring): two sender threads, one
    // receiver thread. Bounded by the packet count.
    const PER_QUEUE: u64 = 50_000;
    let mp = pool("ring-mt", 4096);
    let a = probe("ring:t-mt,queues=2,size=256");
    let b = probe("ring:t-mt");
    up(&a, 1, 2, &mp);
    up(&b, 1, 1, &mp);
    let done = Arc::new(AtomicBool::new(false));
    let senders: Vec<_> = (0..2u16)
        .map(|q| {
            let mut tx = a.tx_queue(q).unwrap();
            let mp = mp.clone();
            std::thread::spawn(move || {
                let base = u64::from(q) << 32;
                let mut next = 0u64;
                let mut b = Pkts::new();
                while next < PER_QUEUE || !b.is_empty() {
                    while next < PER_QUEUE && b.len() < 32 {
                        match mp.alloc() {
                            Ok(mut m) => {
                                m.set_lens(64);
                                m.set_udata64(base | next);
                                b.push(m).unwrap();
                                next += 1;
                            }
                            Err(_) => break, // the receiver will free some
                        }
                    }
                    if tx.tx_burst(&mut b) == 0 {
                        std::thread::yield_now();
                    }
                }
            })
        })
        .collect();
    let receiver = {
        let mut rx = b.rx_queue(0).unwrap();
        let done = done.clone();
        std::thread::spawn(move || {
            // Next sequence number expected from each TX queue; packets that break the order.
            let (mut want, mut bad, mut total) = ([0u64; 2], 0u64, 0u64);
            let mut got = Pkts::new();
            while total < 2 * PER_QUEUE {
                // Read before the burst: once the senders are done, an empty burst means empty.
                let finished = done.load(Ordering::Acquire);
                if rx.rx_burst(&mut got, 64) == 0 {
                    if finished {
                        break;
                    }
                    std::thread::yield_now();
                }
                for m in got.as_slice() {
                    let (q, s) = ((m.udata64() >> 32) as usize & 1, m.udata64() & 0xffff_ffff);
                    bad += u64::from(s != want[q]);
                    want[q] = s + 1;
                    total += 1;
                }
                got.free_all();
            }
            (want, bad, total)
        })
    };
    for s in senders {
        s.join().unwrap();
    }
    done.store(true, Ordering::Release);
    let (want, bad, total) = receiver.join().unwrap();
    assert_eq!((want, bad, total), ([PER_QUEUE, PER_QUEUE], 0, 2 * PER_QUEUE));
    assert_eq!(a.stats().unwrap().opackets, 2 * PER_QUEUE);
    assert_eq!(b.stats().unwrap().ipackets, 2 * PER_QUEUE);
    a.close().unwrap();
    b.close().unwrap();
    assert_eq!(mp.in_use_count(), 0);
}
