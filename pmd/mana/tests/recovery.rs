//! Recovery against the in-process software device: reset requests, fatal errors, removal, a
//! disabled send queue, under traffic, with callbacks that stop and close ports. Every test runs
//! under a watchdog, so a deadlock fails instead of hanging.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mana_pmd::{Hooks, ManaFactory};
use pmd_ethdev::conf::rss;
use pmd_ethdev::event::{Event, EventType};
use pmd_ethdev::*;
use pmd_mempool::{HugePolicy, MbufPool, MbufPoolConfig};

/// Runs `f` on a thread; fails if it has not finished within `secs`.
fn watchdog(secs: u64, f: impl FnOnce() + Send + 'static) {
    let (tx, rx) = mpsc::channel();
    let h = std::thread::spawn(move || {
        f();
        let _ = tx.send(());
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(()) => h.join().unwrap(),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            if let Err(e) = h.join() {
                std::panic::resume_unwind(e);
            }
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("watchdog: not finished after {secs} s (a deadlock or a hang)")
        }
    }
}

fn pool(name: &str, n: u32) -> MbufPool {
    let mut c = MbufPoolConfig::new(name, n);
    c.huge = HugePolicy::Prefer;
    MbufPool::with_config(&c).unwrap()
}

/// Events of one port, counted, with their order.
#[derive(Default)]
struct Seen {
    log: Mutex<Vec<(EventType, Option<u16>, String)>>,
}

impl Seen {
    fn count(&self, k: EventType) -> usize {
        self.log.lock().unwrap().iter().filter(|e| e.0 == k).count()
    }

    fn terminal(&self) -> usize {
        self.count(EventType::RecoverySuccess)
            + self.count(EventType::RecoveryFailed)
            + self.count(EventType::IntrRmv)
    }

    fn kinds(&self) -> Vec<EventType> {
        self.log.lock().unwrap().iter().map(|e| e.0).collect()
    }

    /// Waits until `k` was seen `n` times.
    fn wait(&self, k: EventType, n: usize, secs: u64) {
        let end = Instant::now() + Duration::from_secs(secs);
        while self.count(k) < n {
            assert!(
                Instant::now() < end,
                "waited {secs} s for {} #{n}: {:?}",
                k.name(),
                self.kinds()
            );
            std::thread::sleep(Duration::from_micros(200));
        }
    }
}

struct Rig {
    dev: Arc<mana_emu::Device>,
    ports: Vec<Arc<Port>>,
    seen: Vec<Arc<Seen>>,
    hooks: Arc<Hooks>,
    pool: MbufPool,
}

fn cfg() -> mana_emu::DeviceConfig {
    let mut c = mana_emu::DeviceConfig::new(2, mana_emu::WireSpec::Pair);
    c.reset_down_time = Duration::from_millis(1);
    c.fatal_down_time = Duration::from_millis(5);
    c
}

fn rig_with(cfg: mana_emu::DeviceConfig, f: ManaFactory, name: &str) -> Rig {
    let dev = Arc::new(mana_emu::Device::start(cfg).unwrap());
    let hooks = f.opts.hooks.clone();
    let mut reg = Registry::new();
    reg.add(Box::new(f.with_device(dev.clone())));
    let ports: Vec<Arc<Port>> = reg.probe("mana:emu").unwrap().into_iter().map(Arc::new).collect();
    let seen: Vec<Arc<Seen>> = ports
        .iter()
        .map(|p| {
            let s = Arc::new(Seen::default());
            let s2 = s.clone();
            p.on_event(
                None,
                Arc::new(move |e: &Event| {
                    s2.log.lock().unwrap().push((e.kind, e.queue, e.detail.clone()));
                }),
            );
            s
        })
        .collect();
    Rig { dev, ports, seen, hooks, pool: pool(name, 8192) }
}

fn rig(name: &str) -> Rig {
    rig_with(cfg(), ManaFactory::new(), name)
}

fn setup(r: &Rig, nq: u16) {
    for p in &r.ports {
        let hf = (rss::IP | rss::UDP) & p.info().flow_type_rss_offloads;
        let conf = PortConf { rss: Some(RssConf { key: None, hf }), ..Default::default() };
        p.configure(nq, nq, &conf).unwrap();
        for q in 0..nq {
            p.rx_queue_setup(q, 256, &r.pool).unwrap();
            p.tx_queue_setup(q, 256).unwrap();
        }
        p.start().unwrap();
    }
}

/// An IPv4/UDP frame from `src` to `dst`, flow `flow` (source port).
fn udp(dst: [u8; 6], src: [u8; 6], flow: u16) -> Vec<u8> {
    let mut f = vec![0u8; 64];
    f[..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&src);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    f[14] = 0x45;
    f[16..18].copy_from_slice(&50u16.to_be_bytes());
    f[22] = 64;
    f[23] = 17;
    f[26..30].copy_from_slice(&[10, 0, 0, 1]);
    f[30..34].copy_from_slice(&[10, 0, 0, 2]);
    f[34..36].copy_from_slice(&1000u16.wrapping_add(flow).to_be_bytes());
    f[36..38].copy_from_slice(&4791u16.to_be_bytes());
    f[38..40].copy_from_slice(&30u16.to_be_bytes());
    f
}

/// Bidirectional traffic over every queue of the two ports until stopped: what arrives on a
/// port goes back out of it (MACs rewritten), fresh packets replace lost ones.
struct Traffic {
    stop: Arc<AtomicBool>,
    received: Arc<AtomicU64>,
    handle: Option<JoinHandle<()>>,
}

impl Traffic {
    fn start(r: &Rig, nq: u16) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let received = Arc::new(AtomicU64::new(0));
        let mut qs = Vec::new();
        for (i, p) in r.ports.iter().enumerate() {
            let other = r.ports[1 - i].mac();
            for q in 0..nq {
                qs.push((p.rx_queue(q).unwrap(), p.tx_queue(q).unwrap(), p.mac(), other, q));
            }
        }
        let (s, rc, mp) = (stop.clone(), received.clone(), r.pool.clone());
        let handle = std::thread::spawn(move || {
            let mut burst = Pkts::new();
            let mut idle = vec![0u32; qs.len()];
            let mut flow = 0u16;
            while !s.load(Ordering::Relaxed) {
                for (k, (rx, tx, me, peer, q)) in qs.iter_mut().enumerate() {
                    let n = rx.rx_burst(&mut burst, 32);
                    rc.fetch_add(n as u64, Ordering::Relaxed);
                    for m in burst.as_mut_slice() {
                        if let Some(d) = m.data_mut() {
                            d[..6].copy_from_slice(peer);
                            d[6..12].copy_from_slice(me);
                        }
                    }
                    idle[k] = if n == 0 { idle[k] + 1 } else { 0 };
                    if idle[k] > 2000 {
                        // Nothing flows on this queue (lost in a reset, or never primed).
                        idle[k] = 0;
                        for _ in 0..16 {
                            flow = flow.wrapping_add(1);
                            let Ok(mut m) = mp.alloc() else { break };
                            let f = udp(*peer, *me, flow ^ *q);
                            m.append(f.len() as u16).unwrap().copy_from_slice(&f);
                            let _ = burst.push(m);
                        }
                    }
                    tx.tx_burst(&mut burst);
                    burst.free_all();
                }
            }
        });
        Traffic { stop, received, handle: Some(handle) }
    }

    /// Waits until at least `n` more packets arrived.
    fn wait_flowing(&self, n: u64, secs: u64) {
        let start = self.received.load(Ordering::Relaxed);
        let end = Instant::now() + Duration::from_secs(secs);
        while self.received.load(Ordering::Relaxed) < start + n {
            assert!(Instant::now() < end, "traffic does not flow again");
            std::thread::yield_now();
        }
    }

    fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            h.join().unwrap();
        }
    }
}

fn close_all(r: &Rig) {
    for p in &r.ports {
        p.close().unwrap();
    }
    assert_eq!(r.pool.in_use_count(), 0, "every mbuf is back in the pool");
}

fn xstat(p: &Port, name: &str) -> u64 {
    p.xstats().unwrap().iter().find(|x| x.name == name).map_or(0, |x| x.value)
}

#[test]
fn a_thousand_reset_requests_under_bidirectional_traffic_on_two_queues() {
    let episodes: usize =
        std::env::var("RESET_EPISODES").ok().and_then(|v| v.parse().ok()).unwrap_or(1000);
    watchdog(600, move || {
        let r = rig("rec-1000");
        setup(&r, 2);
        let t = Traffic::start(&r, 2);
        t.wait_flowing(10_000, 10);
        // At most what the rings hold plus a burst per queue in the forwarder's hands.
        let bound = 2 * 2 * (256 + 256) + 4 * 32 + 64;
        for i in 1..=episodes {
            r.dev.inject("reset-request".parse().unwrap()).unwrap();
            for s in &r.seen {
                s.wait(EventType::RecoverySuccess, i, 20);
            }
            t.wait_flowing(64, 20);
            let in_use = r.pool.in_use_count();
            assert!(in_use <= bound, "episode {i}: {in_use} mbufs out, at most {bound} expected");
        }
        t.stop();
        for (p, s) in r.ports.iter().zip(&r.seen) {
            assert_eq!(s.count(EventType::ErrRecovering), episodes, "{:?}", p.id());
            assert_eq!(s.terminal(), episodes, "exactly one terminal event per episode");
            assert_eq!(s.count(EventType::RecoveryFailed), 0);
            assert_eq!(xstat(p, "recoveries"), episodes as u64);
        }
        assert_eq!(r.dev.stats().device.resets.get(), episodes as u64);
        close_all(&r);
    });
}

#[test]
fn callbacks_that_stop_and_close_on_every_event_do_not_deadlock() {
    watchdog(60, || {
        // Port 0 is stopped and closed from its ERR_RECOVERING callback, port 1 from its
        // RECOVERY_SUCCESS callback: both on the worker, inline.
        let r = rig("rec-cb");
        setup(&r, 1);
        let t = Traffic::start(&r, 1);
        t.wait_flowing(1000, 10);
        let done: Vec<Arc<Mutex<Vec<String>>>> = (0..2).map(|_| Arc::default()).collect();
        for (i, kind) in [(0usize, EventType::ErrRecovering), (1, EventType::RecoverySuccess)] {
            let p = r.ports[i].clone();
            let d = done[i].clone();
            r.ports[i].on_event(
                Some(kind),
                Arc::new(move |_e: &Event| {
                    let s = p.stop().map(|_| "stopped").unwrap_or_else(|e| {
                        d.lock().unwrap().push(format!("stop: {e}"));
                        "stop failed"
                    });
                    let c = p.close().map(|_| "closed").unwrap_or("close failed");
                    d.lock().unwrap().push(format!("{s} {c}"));
                }),
            );
        }
        r.dev.inject("reset-request".parse().unwrap()).unwrap();
        r.seen[1].wait(EventType::RecoverySuccess, 1, 20);
        t.stop();
        // The callbacks after the counting one run next on the worker.
        let end = Instant::now() + Duration::from_secs(10);
        while done.iter().any(|d| d.lock().unwrap().is_empty()) {
            assert!(Instant::now() < end, "the stop/close callbacks did not finish");
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(*done[0].lock().unwrap(), ["stopped closed"], "{:?}", r.seen[0].kinds());
        assert_eq!(*done[1].lock().unwrap(), ["stopped closed"]);
        // Port 0 was closed during the episode: no terminal event reaches it afterwards.
        assert_eq!(r.seen[0].kinds(), [EventType::ErrRecovering]);
        assert_eq!(r.pool.in_use_count(), 0, "closing from callbacks freed everything");
        // A second reset on a device whose ports are closed changes nothing.
        r.dev.inject("reset-request".parse().unwrap()).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(r.pool.in_use_count(), 0);
    });
}

#[test]
fn stop_and_close_from_two_other_threads_during_an_episode() {
    watchdog(60, || {
        let mut c = cfg();
        c.reset_down_time = Duration::from_millis(300);
        let r = rig_with(c, ManaFactory::new(), "rec-threads");
        setup(&r, 2);
        let t = Traffic::start(&r, 2);
        t.wait_flowing(1000, 10);
        r.dev.inject("reset-request".parse().unwrap()).unwrap();
        r.seen[0].wait(EventType::ErrRecovering, 1, 10);
        t.stop();
        // Other calls are refused while the episode runs.
        let e = r.ports[0].rss_hash_update(&RssConf { key: None, hf: 0 }).unwrap_err();
        assert!(matches!(e, EthError::Busy { .. }), "{e}");
        let hs: Vec<_> = r
            .ports
            .iter()
            .map(|p| {
                let p = p.clone();
                std::thread::spawn(move || {
                    p.stop().unwrap();
                    p.close().unwrap();
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(r.pool.in_use_count(), 0);
        // The device itself still comes back; closed ports hear nothing more.
        std::thread::sleep(Duration::from_millis(400));
        for s in &r.seen {
            assert_eq!(s.kinds(), [EventType::ErrRecovering]);
        }
    });
}

#[test]
fn a_second_fault_in_each_phase_still_ends_in_exactly_one_terminal_event() {
    watchdog(120, || {
        let mut c = cfg();
        c.reset_down_time = Duration::from_millis(50);
        let r = rig_with(c, ManaFactory::new(), "rec-second");
        setup(&r, 1);
        let t = Traffic::start(&r, 1);
        t.wait_flowing(1000, 10);
        let mut episodes = 0;
        // Quiescing: a fatal error right behind the reset request (a storm: one episode).
        r.dev.inject("reset-request".parse().unwrap()).unwrap();
        r.dev.inject("fatal 20".parse().unwrap()).unwrap();
        episodes += 1;
        r.seen[0].wait(EventType::RecoverySuccess, episodes, 20);
        t.wait_flowing(100, 20);
        // Torn down, waiting: a fatal error while the device is down.
        r.dev.inject("reset-request".parse().unwrap()).unwrap();
        r.seen[0].wait(EventType::ErrRecovering, episodes + 1, 10);
        std::thread::sleep(Duration::from_millis(10));
        r.dev.inject("fatal 30".parse().unwrap()).unwrap();
        episodes += 1;
        r.seen[0].wait(EventType::RecoverySuccess, episodes, 20);
        t.wait_flowing(100, 20);
        // Recovering: the device is back and the driver is bringing it up (held there by a
        // hook) when it fails again.
        r.hooks.rebuild_delay_us.store(100_000, Ordering::Relaxed);
        let resets = r.dev.stats().device.resets.get();
        r.dev.inject("reset-request".parse().unwrap()).unwrap();
        let end = Instant::now() + Duration::from_secs(10);
        while r.dev.stats().device.resets.get() == resets {
            assert!(Instant::now() < end);
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(Duration::from_millis(30));
        r.dev.inject("fatal 10".parse().unwrap()).unwrap();
        r.hooks.rebuild_delay_us.store(0, Ordering::Relaxed);
        episodes += 1;
        r.seen[0].wait(EventType::RecoverySuccess, episodes, 20);
        t.wait_flowing(100, 20);
        t.stop();
        for s in &r.seen {
            assert_eq!(s.count(EventType::ErrRecovering), episodes, "{:?}", s.kinds());
            assert_eq!(s.terminal(), episodes, "{:?}", s.kinds());
        }
        close_all(&r);
    });
}

#[test]
fn event_135_right_after_bring_up_is_not_lost() {
    watchdog(60, || {
        let r = rig("rec-early");
        // Before anything is configured: the episode runs with no queues; calls meanwhile
        // are Busy, and work again after it.
        r.dev.inject("reset-request".parse().unwrap()).unwrap();
        for s in &r.seen {
            s.wait(EventType::RecoverySuccess, 1, 10);
        }
        setup(&r, 1);
        // Right after start.
        r.dev.inject("reset-request".parse().unwrap()).unwrap();
        for s in &r.seen {
            s.wait(EventType::RecoverySuccess, 2, 10);
        }
        let t = Traffic::start(&r, 1);
        t.wait_flowing(1000, 10);
        t.stop();
        close_all(&r);
    });
}

/// The device's channel counters, as one port's xstats show them (one snapshot):
/// [full timeouts, short timeouts of a channel known unresponsive, refusals, bring-ups].
fn hwc_counters(p: &Port) -> [u64; 4] {
    let x = p.xstats().unwrap();
    let get = |name: &str| {
        x.iter().find(|x| x.name == name).unwrap_or_else(|| panic!("no xstat {name}")).value
    };
    [
        get("hwc_cmd_timeouts"),
        get("hwc_cmd_hung_timeouts"),
        get("hwc_cmd_refused_dead"),
        get("hwc_bring_ups"),
    ]
}

#[test]
fn a_dead_hardware_channel_during_teardown_waits_one_timeout_only() {
    watchdog(60, || {
        let mut f = ManaFactory::new();
        f.gdma.cmd_timeout = Duration::from_millis(500);
        let r = rig_with(cfg(), f, "rec-deadhwc");
        // 2 ports x (2 RX + 2 TX queues): 8 WQ objects on the device.
        setup(&r, 2);
        let [t0, h0, r0, b0] = hwc_counters(&r.ports[0]);
        // The channel stops answering (the register page still reads fine).
        r.dev.inject("hwc-delay 60000".parse().unwrap()).unwrap();
        let start = Instant::now();
        for p in &r.ports {
            p.close().unwrap();
        }
        eprintln!("closing two ports over a dead channel took {:?}", start.elapsed());
        let [t1, h1, r1, b1] = hwc_counters(&r.ports[0]);
        let (timeouts, hung, refused, bring_ups) = (t1 - t0, h1 - h0, r1 - r0, b1 - b0);
        eprintln!(
            "timeouts {timeouts}, short timeouts {hung}, refused {refused}, bring-ups {bring_ups}"
        );
        // Port 0's stop sends CONFIG_VPORT_RX first: it waits its full timeout, and the channel
        // is known unresponsive from then on. Nothing is answered any more, so no later command
        // on that channel waits the full timeout again; only a new channel does: a recovery
        // attempt that ran meanwhile (the worker sees the timeout, starts a recovery, and tries
        // to bring the device back) sends its first command into the same silence. Hence exactly
        // one full timeout per channel, and without a recovery attempt exactly one in all (not
        // 2 ports x 4 objects x 500 ms).
        assert_eq!(timeouts, 1 + bring_ups, "one full timeout per channel");
        // Later commands on the silent channel wait only the short timeout: port 0's four
        // DESTROY_WQ_OBJ (in the same stop, before the worker looks again), and per recovery
        // attempt its teardown's wait for its late first answer.
        assert!(hung <= 4 + bring_ups, "{hung} short timeouts");
        // Then the worker marks the channel dead and every teardown command left is refused,
        // unsent: at least one DESTROY_WQ_OBJ for each of the 8 objects (port 0's timed out short
        // and are left; port 1's are refused when asked, or left by the recovery's teardown).
        // Typically 17: the recovery's teardown leaves out DESTROY_WQ_OBJ and
        // DESTROY_RESOURCE_RANGE for all 8 objects, and DEREGISTER_DEVICE.
        assert!(refused >= 8, "{refused} refused");
        assert_eq!(r.pool.in_use_count(), 0);
    });
}

#[test]
fn removal_gives_intr_rmv_and_no_recovery_and_a_readded_device_probes_again() {
    watchdog(60, || {
        let r = rig("rec-rmv");
        setup(&r, 1);
        let t = Traffic::start(&r, 1);
        t.wait_flowing(1000, 10);
        r.dev.inject("remove".parse().unwrap()).unwrap();
        for s in &r.seen {
            s.wait(EventType::IntrRmv, 1, 10);
        }
        std::thread::sleep(Duration::from_millis(100));
        t.stop();
        for s in &r.seen {
            assert_eq!(s.kinds(), [EventType::ErrRecovering, EventType::IntrRmv]);
        }
        // Nothing recovered: the buffers are back already, calls say removed.
        assert_eq!(r.pool.in_use_count(), 0);
        let e = r.ports[0].rss_hash_update(&RssConf { key: None, hf: 0 }).unwrap_err();
        assert!(matches!(e, EthError::Removed { .. }), "{e}");
        close_all(&r);
        // Back: a new probe finds it and it works.
        r.dev.inject("readd".parse().unwrap()).unwrap();
        let mut reg = Registry::new();
        reg.add(Box::new(ManaFactory::new().with_device(r.dev.clone())));
        let ports: Vec<Arc<Port>> =
            reg.probe("mana:emu").unwrap().into_iter().map(Arc::new).collect();
        let r2 = Rig {
            dev: r.dev.clone(),
            ports,
            seen: vec![Arc::default(), Arc::default()],
            hooks: r.hooks.clone(),
            pool: r.pool.clone(),
        };
        setup(&r2, 1);
        let t = Traffic::start(&r2, 1);
        t.wait_flowing(1000, 10);
        t.stop();
        close_all(&r2);
    });
}

#[test]
fn a_send_queue_error_recovers_that_queue_while_the_others_forward() {
    watchdog(60, || {
        let r = rig("rec-sqerr");
        setup(&r, 2);
        let t = Traffic::start(&r, 2);
        t.wait_flowing(5000, 10);
        let p = &r.ports[0];
        let sq = xstat(p, "tx_q0_sq_id");
        let tx1_before = p.stats().unwrap().q_opackets[1];
        r.dev.inject(format!("sq-error {sq}").parse().unwrap()).unwrap();
        r.seen[0].wait(EventType::QueueError, 1, 10);
        t.wait_flowing(5000, 10);
        let s = p.stats().unwrap();
        let tx0 = s.q_opackets[0];
        t.wait_flowing(5000, 10);
        let tx0_after = p.stats().unwrap().q_opackets[0];
        t.stop();
        assert!(s.q_opackets[1] > tx1_before, "queue 1 kept sending");
        assert!(tx0_after > tx0, "queue 0 sends again on its new SQ");
        assert_eq!(xstat(p, "sq_recreated"), 1);
        assert_eq!(xstat(&r.ports[1], "sq_recreated"), 0);
        let log = r.seen[0].log.lock().unwrap().clone();
        assert_eq!(log.len(), 1, "{log:?}");
        assert_eq!(log[0].1, Some(0));
        // No port reset.
        assert_eq!(xstat(p, "recoveries"), 0);
        assert!(r.seen[1].kinds().is_empty());
        close_all(&r);
    });
}

#[test]
fn a_reset_waits_for_a_slow_burst() {
    watchdog(60, || {
        let r = rig("rec-slow");
        setup(&r, 1);
        let t = Traffic::start(&r, 1);
        t.wait_flowing(1000, 10);
        // Every RX burst now sleeps 200 ms inside its gate; the reset must wait for it before
        // freeing the queue under it (a use-after-free would corrupt or crash).
        r.hooks.set_rx_burst_delay(Duration::from_millis(200));
        std::thread::sleep(Duration::from_millis(20));
        r.dev.inject("reset-request".parse().unwrap()).unwrap();
        for s in &r.seen {
            s.wait(EventType::RecoverySuccess, 1, 20);
        }
        r.hooks.set_rx_burst_delay(Duration::ZERO);
        t.wait_flowing(1000, 10);
        t.stop();
        close_all(&r);
    });
}

#[test]
fn recreated_queues_near_the_2_to_the_32_wrap_after_resets() {
    watchdog(120, || {
        let mut c = cfg();
        c.start_near_wrap = true;
        let r = rig_with(c, ManaFactory::new().start_near_wrap(), "rec-wrap");
        setup(&r, 2);
        let t = Traffic::start(&r, 2);
        for _ in 0..5 {
            // Each recovery recreates every queue object near the wrap; traffic crosses it.
            t.wait_flowing(50_000, 20);
            let n = r.seen[0].count(EventType::RecoverySuccess);
            r.dev.inject("reset-request".parse().unwrap()).unwrap();
            r.seen[0].wait(EventType::RecoverySuccess, n + 1, 20);
        }
        // And a send queue recreated alone.
        let sq = xstat(&r.ports[1], "tx_q1_sq_id");
        r.dev.inject(format!("sq-error {sq}").parse().unwrap()).unwrap();
        r.seen[1].wait(EventType::QueueError, 1, 10);
        t.wait_flowing(50_000, 20);
        t.stop();
        for p in &r.ports {
            let bad: u64 = p
                .xstats()
                .unwrap()
                .iter()
                .filter(|x| x.name.contains("cqe_bad") || x.name.ends_with("bad_len"))
                .map(|x| x.value)
                .sum();
            assert_eq!(bad, 0, "{:?}", p.xstats().unwrap());
        }
        assert_eq!(r.dev.stats().device.doorbells_refused.get(), 0);
        close_all(&r);
    });
}

#[test]
fn recovery_that_cannot_succeed_ends_in_recovery_failed() {
    watchdog(60, || {
        let mut f = ManaFactory::new();
        f.opts.recovery_budget = Duration::from_millis(700);
        let r = rig_with(cfg(), f, "rec-fail");
        setup(&r, 1);
        // Every CREATE_WQ_OBJ fails from now on: bring-up works, the queues cannot be rebuilt.
        r.dev.inject("fail-cmd CREATE_WQ_OBJ".parse().unwrap()).unwrap();
        r.dev.inject("reset-request".parse().unwrap()).unwrap();
        for s in &r.seen {
            s.wait(EventType::RecoveryFailed, 1, 20);
            assert_eq!(s.kinds(), [EventType::ErrRecovering, EventType::RecoveryFailed]);
        }
        let e = r.ports[0].start().unwrap_err();
        assert!(matches!(e, EthError::Busy { .. } | EthError::BadState { .. }), "{e}");
        let summary: HashMap<_, _> =
            r.seen[0].log.lock().unwrap().iter().map(|e| (e.0, e.2.clone())).collect();
        assert!(summary[&EventType::RecoveryFailed].contains("attempt"), "{summary:?}");
        close_all(&r);
    });
}

#[test]
fn recoveries_from_resets_map_no_memory_and_reuse_the_rings_zeroed() {
    watchdog(120, || {
        // Down long enough that the teardown always sees the device in its reset (one that is
        // already back may never have reset: its memory is unmapped and not used again).
        let mut c = cfg();
        c.reset_down_time = Duration::from_millis(20);
        let r = rig_with(c, ManaFactory::new(), "rec-reuse");
        setup(&r, 2);
        let t = Traffic::start(&r, 2);
        t.wait_flowing(1000, 10);
        let s = r.dev.stats();
        let maps = (s.device.dma_maps.get(), s.device.dma_unmaps.get());
        for i in 1..=20 {
            r.dev.inject("reset-request".parse().unwrap()).unwrap();
            for s in &r.seen {
                s.wait(EventType::RecoverySuccess, i, 20);
            }
            t.wait_flowing(64, 20);
        }
        // The channel's memory, the rings and the pools stay registered across a reset and are
        // used again: nothing is allocated, mapped or unmapped.
        let s = r.dev.stats();
        assert_eq!((s.device.dma_maps.get(), s.device.dma_unmaps.get()), maps);
        t.stop();
        // Rings used again were zeroed: no old completion passed for a new one.
        for p in &r.ports {
            for q in 0..2 {
                assert_eq!(xstat(p, &format!("rx_q{q}_cqe_bad_owner")), 0);
                assert_eq!(xstat(p, &format!("tx_q{q}_cqe_bad_owner")), 0);
            }
        }
        close_all(&r);
        // Once the ports are gone, so is every mapping.
        let Rig { dev, ports, .. } = r;
        drop(ports);
        let s = dev.stats();
        assert_eq!(s.device.dma_maps.get(), s.device.dma_unmaps.get());
    });
}

#[test]
fn resets_are_recovered_by_polling_when_the_channel_takes_no_interrupts() {
    watchdog(120, || {
        let mut f = ManaFactory::new();
        f.gdma.interrupts = false;
        let r = rig_with(cfg(), f, "rec-poll");
        setup(&r, 1);
        let t = Traffic::start(&r, 1);
        t.wait_flowing(1000, 10);
        let irqs = r.dev.stats().device.interrupts.get();
        let episodes = 50;
        for i in 1..=episodes {
            r.dev.inject("reset-request".parse().unwrap()).unwrap();
            for s in &r.seen {
                s.wait(EventType::RecoverySuccess, i, 20);
            }
            t.wait_flowing(64, 20);
        }
        t.stop();
        // Nothing was armed: the only interrupt of each bring-up is the INIT events' (the
        // channel's EQ starts armed).
        assert_eq!(r.dev.stats().device.interrupts.get() - irqs, episodes as u64);
        for s in &r.seen {
            assert_eq!(s.terminal(), episodes);
            assert_eq!(s.count(EventType::RecoveryFailed), 0);
        }
        close_all(&r);
    });
}
