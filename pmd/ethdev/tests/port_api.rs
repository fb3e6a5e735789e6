//! The port API itself, through the null and ring ports (and two small test drivers where a
//! built-in port cannot reach a case): the state machine, queue handles, the dispatch swap,
//! events, stats baselines, the redirection table, configuration and probe errors.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use pmd_ethdev::conf::{rss, rx_offload, tx_offload};
use pmd_ethdev::*;
use pmd_mempool::{HugePolicy, MbufPool, MbufPoolConfig};

fn pool(name: &str, n: u32) -> MbufPool {
    let mut c = MbufPoolConfig::new(name, n);
    c.huge = HugePolicy::Never;
    c.cache_size = 32;
    MbufPool::with_config(&c).unwrap()
}

fn null(spec: &str) -> Port {
    Registry::new().probe(spec).unwrap().remove(0)
}

/// Configures one RX and one TX queue and sets them up.
fn setup(p: &Port, mp: &MbufPool) {
    p.configure(1, 1, &PortConf::default()).unwrap();
    p.rx_queue_setup(0, 128, mp).unwrap();
    p.tx_queue_setup(0, 128).unwrap();
}

/// A null port in `phase`.
fn null_in(phase: PortPhase, mp: &MbufPool) -> Port {
    let p = null("null");
    match phase {
        PortPhase::Unconfigured => {}
        PortPhase::Stopped => setup(&p, mp),
        PortPhase::Started => {
            setup(&p, mp);
            p.start().unwrap();
        }
        PortPhase::Closed => {
            setup(&p, mp);
            p.close().unwrap();
        }
    }
    assert_eq!(p.phase(), phase);
    p
}

const PHASES: [PortPhase; 4] =
    [PortPhase::Unconfigured, PortPhase::Stopped, PortPhase::Started, PortPhase::Closed];

type Op = fn(&Port, &MbufPool) -> EthResult<()>;

/// Every phase-checked operation (with arguments valid for a configured port), the phases it is
/// allowed in, and what it is called in the error.
fn ops() -> Vec<(&'static str, Op, &'static [PortPhase])> {
    use PortPhase::*;
    vec![
        ("configure", |p, _| p.configure(1, 1, &PortConf::default()), &[Unconfigured, Stopped]),
        ("rx_queue_setup", |p, mp| p.rx_queue_setup(0, 128, mp), &[Stopped]),
        ("tx_queue_setup", |p, _| p.tx_queue_setup(0, 128), &[Stopped]),
        ("start", |p, _| p.start(), &[Stopped]),
        ("stop", |p, _| p.stop(), &[Started, Stopped]),
        ("close", |p, _| p.close(), &[Unconfigured, Stopped, Started, Closed]),
        ("reta_update", |p, _| p.reta_update(&[0; 128]), &[Stopped, Started]),
        (
            "rss_hash_update",
            |p, _| p.rss_hash_update(&RssConf { key: None, hf: rss::IP }),
            &[Stopped, Started],
        ),
        ("mtu_set", |p, _| p.mtu_set(1500), &[Unconfigured, Stopped, Started]),
    ]
}

#[test]
fn every_operation_in_every_wrong_phase_is_bad_state_and_changes_nothing() {
    let mp = pool("api-phases", 1024);
    let mut checked = 0;
    for (name, op, allowed) in ops() {
        for phase in PHASES {
            let p = null_in(phase, &mp);
            let r = op(&p, &mp);
            if allowed.contains(&phase) {
                // (The null port has no rss_hash_update: past the phase check, the driver says so.)
                let unsupported = matches!(r, Err(EthError::Unsupported { op, .. }) if op == name);
                assert!(r.is_ok() || unsupported, "{name} while {phase:?}: {r:?}");
            } else {
                match r {
                    Err(EthError::BadState { op, port, .. }) => {
                        assert_eq!((op, port), (name, p.id()), "while {phase:?}")
                    }
                    other => panic!("{name} while {phase:?}: {other:?}, not BadState"),
                }
                assert_eq!(p.phase(), phase, "{name} failed but moved the port");
                checked += 1;
            }
            p.close().unwrap();
        }
    }
    assert_eq!(checked, 18);
    assert_eq!(mp.in_use_count(), 0);
}

#[test]
fn stop_twice_and_close_twice_are_fine() {
    let mp = pool("api-twice", 512);
    let p = null_in(PortPhase::Started, &mp);
    p.stop().unwrap();
    p.stop().unwrap();
    assert_eq!(p.phase(), PortPhase::Stopped);
    p.close().unwrap();
    p.close().unwrap();
    assert_eq!(p.phase(), PortPhase::Closed);
    // Closing a started port stops it first.
    let q = null_in(PortPhase::Started, &mp);
    let rx = q.rx_queue(0).unwrap();
    q.close().unwrap();
    assert!(rx.stopped());
    let e = q.start().unwrap_err().to_string();
    assert!(e.contains("cannot start while the port is closed"), "{e}");
}

#[test]
fn queue_handles_are_taken_once_and_again_after_drop() {
    let mp = pool("api-handles", 512);
    let p = null_in(PortPhase::Stopped, &mp);
    let rx = p.rx_queue(0).unwrap();
    let tx = p.tx_queue(0).unwrap();
    assert_eq!((rx.port(), rx.queue(), tx.port(), tx.queue()), (p.id(), 0, p.id(), 0));
    // Refused as often as asked while the handle lives (a refused take does not free the queue).
    for _ in 0..3 {
        assert_eq!(
            p.rx_queue(0).unwrap_err(),
            EthError::QueueTaken { port: p.id(), kind: "rx", queue: 0 }
        );
        assert_eq!(
            p.tx_queue(0).unwrap_err(),
            EthError::QueueTaken { port: p.id(), kind: "tx", queue: 0 }
        );
    }
    drop(rx);
    let rx = p.rx_queue(0).unwrap();
    assert!(p.tx_queue(0).is_err());
    drop(tx);
    let _tx = p.tx_queue(0).unwrap();
    // A handle moves to another thread (Send) and is given back when dropped there.
    std::thread::spawn(move || drop(rx)).join().unwrap();
    p.rx_queue(0).unwrap();
    let e = p.rx_queue(1).unwrap_err().to_string();
    assert!(e.contains("queue 1 is not set up"), "{e}");
    let e = p.tx_queue(7).unwrap_err().to_string();
    assert!(e.contains("queue 7 is not set up"), "{e}");
    // Configured but not set up.
    let q = null("null");
    q.configure(2, 1, &PortConf::default()).unwrap();
    q.rx_queue_setup(1, 64, &mp).unwrap();
    assert!(q.rx_queue(0).is_err());
    assert!(q.rx_queue(1).is_ok());
}

#[test]
fn handles_of_a_reconfigured_port_stop_working() {
    let mp = pool("api-reconf", 1024);
    let p = null_in(PortPhase::Started, &mp);
    let mut old_rx = p.rx_queue(0).unwrap();
    let mut old_tx = p.tx_queue(0).unwrap();
    let mut b = Pkts::new();
    assert_eq!(old_rx.rx_burst(&mut b, 8), 8);
    p.stop().unwrap();
    p.configure(2, 2, &PortConf::default()).unwrap();
    // The new queues are not set up yet: no handles.
    assert!(p.rx_queue(0).is_err());
    for q in 0..2 {
        p.rx_queue_setup(q, 64, &mp).unwrap();
        p.tx_queue_setup(q, 64).unwrap();
    }
    p.start().unwrap();
    // The old handles are not the new queues' handles, and reach nothing.
    let mut new_rx = p.rx_queue(0).unwrap();
    let mut new_tx = p.tx_queue(0).unwrap();
    assert!(old_rx.stopped() && old_tx.stopped());
    assert_eq!(old_rx.rx_burst(&mut b, 8), 0);
    assert_eq!(old_tx.tx_burst(&mut b), 0);
    assert_eq!(b.len(), 8);
    assert_eq!(new_rx.rx_burst(&mut b, 8), 8);
    assert_eq!(new_tx.tx_burst(&mut b), 16);
    // Setting a queue up again (without reconfiguring) also retires its handle.
    p.stop().unwrap();
    p.rx_queue_setup(0, 64, &mp).unwrap();
    p.start().unwrap();
    assert_eq!(new_rx.rx_burst(&mut b, 8), 0);
    assert_eq!(p.rx_queue(0).unwrap().rx_burst(&mut b, 4), 4);
    b.free_all();
    p.close().unwrap();
    assert_eq!(mp.in_use_count(), 0);
}

#[test]
fn the_removed_dispatch_moves_nothing_and_leaves_tx_packets_with_the_caller() {
    let mp = pool("api-dispatch", 512);
    let p = null_in(PortPhase::Started, &mp);
    let mut rx = p.rx_queue(0).unwrap();
    let mut tx = p.tx_queue(0).unwrap();
    let mut b = Pkts::new();
    assert_eq!(rx.rx_burst(&mut b, 10), 10);
    let before = p.stats().unwrap();
    assert_eq!(p.dispatch().ops().name, "live");
    p.dispatch().set_removed();
    assert_eq!(p.dispatch().ops().name, "removed");
    assert_eq!(rx.rx_burst(&mut b, 10), 0);
    assert_eq!(mp.in_use_count(), 10, "the removed RX allocated mbufs");
    assert_eq!(tx.tx_burst(&mut b), 0);
    assert_eq!(b.len(), 10, "the removed TX took packets");
    assert_eq!(p.stats().unwrap(), before);
    // The port is still started, and swapping back resumes.
    assert!(!rx.stopped());
    p.dispatch().set_live();
    assert_eq!(tx.tx_burst(&mut b), 10);
    assert_eq!(mp.in_use_count(), 0);
    // Closing leaves the removed functions in place.
    p.close().unwrap();
    assert_eq!(p.dispatch().ops().name, "removed");
}

#[test]
fn callbacks_get_the_events_they_registered_for_until_unregistered() {
    let p = null("null");
    let all: Arc<Mutex<Vec<Event>>> = Arc::default();
    let lsc = Arc::new(AtomicUsize::new(0));
    let id_all = {
        let all = all.clone();
        p.on_event(None, Arc::new(move |e: &Event| all.lock().unwrap().push(e.clone())))
    };
    let id_lsc = {
        let lsc = lsc.clone();
        p.on_event(
            Some(EventType::LinkChange),
            Arc::new(move |e: &Event| {
                assert_eq!(e.kind, EventType::LinkChange);
                lsc.fetch_add(1, Ordering::Relaxed);
            }),
        )
    };
    p.events().raise(EventType::LinkChange, None, "down");
    p.events().raise(EventType::QueueError, Some(3), "sq 3 disabled");
    p.events().raise(EventType::LinkChange, None, "up");
    assert_eq!(lsc.load(Ordering::Relaxed), 2);
    let got = all.lock().unwrap().clone();
    assert_eq!(
        got,
        [
            Event { port: p.id(), kind: EventType::LinkChange, queue: None, detail: "down".into() },
            Event {
                port: p.id(),
                kind: EventType::QueueError,
                queue: Some(3),
                detail: "sq 3 disabled".into(),
            },
            Event { port: p.id(), kind: EventType::LinkChange, queue: None, detail: "up".into() },
        ]
    );
    assert!(p.off_event(id_lsc));
    assert!(!p.off_event(id_lsc), "unregistered twice");
    p.events().raise(EventType::LinkChange, None, "down");
    assert_eq!(lsc.load(Ordering::Relaxed), 2, "an unregistered callback was called");
    assert_eq!(all.lock().unwrap().len(), 4);
    assert!(p.off_event(id_all));
    p.events().raise(EventType::IntrRmv, None, "gone");
    assert_eq!(all.lock().unwrap().len(), 4);
    assert_eq!(p.events().raised(), 5);
    assert_eq!(EventType::RecoveryFailed.name(), "RECOVERY_FAILED");
}

#[test]
fn a_callback_may_stop_and_close_its_port() {
    let mp = pool("api-cb-close", 512);
    let p = null_in(PortPhase::Started, &mp);
    let rx = p.rx_queue(0).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let id = {
        let port = p.clone();
        let seen = seen.clone();
        p.on_event(
            Some(EventType::IntrRmv),
            Arc::new(move |_e: &Event| {
                let r = (port.stop(), port.phase(), port.close(), port.phase());
                seen.lock().unwrap().push(r);
            }),
        )
    };
    // Raised on another thread so that a deadlock fails the test instead of hanging it.
    let (done_tx, done_rx) = mpsc::channel();
    let raiser = {
        let p = p.clone();
        std::thread::spawn(move || {
            p.events().raise(EventType::IntrRmv, None, "device removed");
            done_tx.send(()).unwrap();
        })
    };
    done_rx.recv_timeout(Duration::from_secs(20)).expect("a callback that stops and closes hung");
    raiser.join().unwrap();
    assert_eq!(*seen.lock().unwrap(), [(Ok(()), PortPhase::Stopped, Ok(()), PortPhase::Closed)]);
    assert!(rx.stopped());
    assert!(p.off_event(id)); // breaks the port -> callback -> port cycle
}

#[test]
fn stats_and_xstats_reset_to_a_baseline() {
    let mp = pool("api-stats", 1024);
    let p = null("null,size=100");
    setup(&p, &mp);
    p.start().unwrap();
    let mut rx = p.rx_queue(0).unwrap();
    let mut tx = p.tx_queue(0).unwrap();
    let mut b = Pkts::new();
    let mut cycle = |n: usize| {
        assert_eq!(rx.rx_burst(&mut b, n), n);
        assert_eq!(tx.tx_burst(&mut b), n);
    };
    cycle(30);
    let s = p.stats().unwrap();
    assert_eq!((s.ipackets, s.opackets, s.ibytes, s.obytes), (30, 30, 3000, 3000));
    p.stats_reset().unwrap();
    let s = p.stats().unwrap();
    assert_eq!(
        s,
        PortStats {
            q_ipackets: vec![0],
            q_opackets: vec![0],
            q_ibytes: vec![0],
            q_obytes: vec![0],
            q_errors: vec![0],
            ..Default::default()
        }
    );
    // xstats have their own baseline: not reset by stats_reset.
    let xget = |n: &str| p.xstats().unwrap().into_iter().find(|x| x.name == n).unwrap().value;
    assert_eq!(xget("rx_good_packets"), 30);
    cycle(5);
    assert_eq!(p.stats().unwrap().q_ipackets, [5]);
    assert_eq!(xget("tx_good_bytes"), 3500);
    p.xstats_reset().unwrap();
    assert!(p.xstats().unwrap().iter().all(|x| x.value == 0));
    cycle(7);
    assert_eq!(xget("rx_q0_packets"), 7);
    assert_eq!(p.stats().unwrap().opackets, 12);
    assert_eq!(mp.in_use_count(), 0);
}

#[test]
fn an_empty_poll_is_not_an_allocation_failure() {
    let mp = pool("api-empty-poll", 1024);
    let p = null_in(PortPhase::Started, &mp);
    let mut rx = p.rx_queue(0).unwrap();
    let mut b = Pkts::new();
    assert_eq!(rx.rx_burst(&mut b, 0), 0);
    // A full burst buffer leaves no room: also an empty poll.
    while b.room() > 0 {
        rx.rx_burst(&mut b, 64);
    }
    assert_eq!(rx.rx_burst(&mut b, 32), 0);
    let s = p.stats().unwrap();
    assert_eq!((s.ipackets, s.rx_nombuf), (MAX_PKT_BURST as u64, 0));
    b.free_all();
}

#[test]
fn reconfiguring_after_a_stats_reset_does_not_wrap_the_counters() {
    // The null port's counters start again at configure; the baselines must not outlive them.
    let mp = pool("api-stats-reconf", 512);
    let p = null_in(PortPhase::Started, &mp);
    let mut rx = p.rx_queue(0).unwrap();
    let mut b = Pkts::new();
    assert_eq!(rx.rx_burst(&mut b, 20), 20);
    b.free_all();
    p.stats_reset().unwrap();
    p.xstats_reset().unwrap();
    p.stop().unwrap();
    p.configure(1, 1, &PortConf::default()).unwrap();
    p.rx_queue_setup(0, 64, &mp).unwrap();
    p.tx_queue_setup(0, 64).unwrap();
    p.start().unwrap();
    let mut rx = p.rx_queue(0).unwrap();
    assert_eq!(rx.rx_burst(&mut b, 3), 3);
    b.free_all();
    let s = p.stats().unwrap();
    assert_eq!((s.ipackets, s.ibytes, s.q_ipackets.clone()), (3, 3 * 64, vec![3]));
    let x = p.xstats().unwrap();
    assert!(x.contains(&XStat::new("rx_good_packets", 3)), "{x:?}");
}

#[test]
fn reta_update_checks_its_size_and_queues_and_reta_query_returns_it() {
    let mp = pool("api-reta", 512);
    let p = null("null");
    p.configure(4, 1, &PortConf::default()).unwrap();
    for q in 0..4 {
        p.rx_queue_setup(q, 64, &mp).unwrap();
    }
    p.tx_queue_setup(0, 64).unwrap();
    assert_eq!(p.info().reta_size, 128);
    let default = p.reta_query().unwrap();
    assert_eq!(default.len(), 128);
    assert!(default.iter().all(|&q| q < 4));
    for len in [0, 1, 127, 129, 256] {
        let e = p.reta_update(&vec![0; len]).unwrap_err();
        assert!(matches!(e, EthError::BadArg { what: "reta", .. }), "{e:?}");
        assert!(e.to_string().contains(&format!("{len} entries, the table has 128")), "{e}");
    }
    let mut reta: Vec<u16> = (0..128).map(|i| 3 - (i % 4)).collect();
    reta[77] = 4;
    let e = p.reta_update(&reta).unwrap_err().to_string();
    assert!(e.contains("entry 77 names queue 4, 4 RX queues configured"), "{e}");
    assert_eq!(p.reta_query().unwrap(), default, "a refused update changed the table");
    reta[77] = 1;
    p.reta_update(&reta).unwrap();
    assert_eq!(p.reta_query().unwrap(), reta);
    p.start().unwrap();
    reta[0] = 2;
    p.reta_update(&reta).unwrap();
    assert_eq!(p.reta_query().unwrap(), reta);
}

/// A driver with settable capabilities and no queues: for configuration checks that the built-in
/// ports cannot reach, and for a control operation that blocks.
struct Plain {
    info: DevInfo,
    /// `mtu_set` says it began on the first channel, then waits for a message on the second.
    hold_mtu: Mutex<Option<(mpsc::Sender<()>, mpsc::Receiver<()>)>>,
}

impl Plain {
    fn new(f: impl FnOnce(&mut DevInfo)) -> Self {
        let mut info = null("null").info().clone();
        info.driver = "plain";
        f(&mut info);
        Plain { info, hold_mtu: Mutex::new(None) }
    }
}

impl PortDriver for Plain {
    fn bind(&self, _ctx: PortContext) {}
    fn info(&self) -> DevInfo {
        self.info.clone()
    }
    fn mac(&self) -> [u8; 6] {
        [2, 0, 0, 0, 0, 9]
    }
    fn link(&self) -> Link {
        Link::DOWN
    }
    fn configure(&self, _: u16, _: u16, _: &PortConf) -> EthResult<()> {
        Ok(())
    }
    fn rx_queue_setup(&self, _: u16, _: u16, _: &MbufPool) -> EthResult<Arc<dyn RxSlot>> {
        Err(EthError::device(0, "no queues"))
    }
    fn tx_queue_setup(&self, _: u16, _: u16) -> EthResult<Arc<dyn TxSlot>> {
        Err(EthError::device(0, "no queues"))
    }
    fn start(&self) -> EthResult<()> {
        Ok(())
    }
    fn stop(&self) -> EthResult<()> {
        Ok(())
    }
    fn close(&self) -> EthResult<()> {
        Ok(())
    }
    fn stats(&self) -> EthResult<PortStats> {
        Ok(PortStats::default())
    }
    fn xstats(&self) -> EthResult<Vec<XStat>> {
        Ok(vec![])
    }
    fn mtu_set(&self, _mtu: u16) -> EthResult<()> {
        if let Some((began, go)) = self.hold_mtu.lock().unwrap().take() {
            began.send(()).unwrap();
            go.recv().unwrap();
        }
        Ok(())
    }
}

#[test]
fn every_configuration_check_names_the_argument_and_the_limits() {
    let p = null("null,queues=4");
    let err = |nrx: u16, ntx: u16, conf: PortConf| -> (&'static str, String) {
        match p.configure(nrx, ntx, &conf).unwrap_err() {
            e @ EthError::BadArg { what, .. } => (what, e.to_string()),
            e => panic!("{e:?} is not BadArg"),
        }
    };
    let d = PortConf::default;
    let cases: Vec<(u16, u16, PortConf, &str, &str)> = vec![
        (0, 0, d(), "queues", "at least one RX or TX queue"),
        (5, 1, d(), "nb_rxq", "5 RX queues, at most 4"),
        (1, 9, d(), "nb_txq", "9 TX queues, at most 4"),
        (
            1,
            1,
            PortConf { rx_offloads: rx_offload::VLAN_STRIP | rx_offload::RSS_HASH, ..d() },
            "rx_offloads",
            "0x1 not supported (capable of 0x80000)",
        ),
        (
            1,
            1,
            PortConf { tx_offloads: tx_offload::TCP_TSO, ..d() },
            "tx_offloads",
            "0x20 not supported (capable of 0x18000)",
        ),
        (
            1,
            1,
            PortConf { rss: Some(RssConf { key: None, hf: 1 << 40 }), ..d() },
            "rss_hf",
            "0x10000000000 not supported (capable of",
        ),
        (
            1,
            1,
            PortConf { rss: Some(RssConf { key: Some(vec![1; 52]), hf: rss::IP }), ..d() },
            "rss_key",
            "52 bytes, the key is 40 bytes",
        ),
        (1, 1, PortConf { mtu: Some(67), ..d() }, "mtu", "67, allowed 68..=9000"),
        (1, 1, PortConf { mtu: Some(9001), ..d() }, "mtu", "9001, allowed 68..=9000"),
    ];
    for (nrx, ntx, conf, what, msg) in cases {
        let (w, e) = err(nrx, ntx, conf.clone());
        assert_eq!(w, what, "{conf:?}: {e}");
        assert!(e.contains(msg), "{conf:?}: {e}");
        assert!(e.starts_with(&format!("port {}: {what}: ", p.id())), "{e}");
    }
    assert_eq!(p.phase(), PortPhase::Unconfigured, "a refused configuration configured");
    // Zero RX or zero TX queues alone is fine; an RSS conf without a key keeps the default.
    p.configure(0, 1, &d()).unwrap();
    p.configure(1, 0, &PortConf { rss: Some(RssConf { key: None, hf: rss::IP }), ..d() }).unwrap();
    // "No RSS" is reached only by a port that claims hash types but has no table.
    let q = Port::new(
        90,
        Box::new(Plain::new(|i| {
            i.reta_size = 0;
            i.flow_type_rss_offloads = rss::IP;
        })),
    );
    let e = q
        .configure(1, 1, &PortConf { rss: Some(RssConf { key: None, hf: rss::IP }), ..d() })
        .unwrap_err()
        .to_string();
    assert_eq!(e, "port 90: rss: the port has no RSS");
    q.configure(1, 1, &PortConf { rss: Some(RssConf { key: None, hf: 0 }), ..d() }).unwrap();
}

#[test]
fn queue_setup_and_start_checks_name_the_queue_and_the_limits() {
    let mp = pool("api-setup", 512);
    let p = null("null");
    p.configure(2, 1, &PortConf::default()).unwrap();
    let e = p.rx_queue_setup(2, 64, &mp).unwrap_err().to_string();
    assert!(e.contains("rx queue: queue 2, 2 configured"), "{e}");
    let e = p.tx_queue_setup(1, 64).unwrap_err().to_string();
    assert!(e.contains("tx queue: queue 1, 1 configured"), "{e}");
    let e = p.rx_queue_setup(0, 0, &mp).unwrap_err().to_string();
    assert!(e.contains("nb_rx_desc: 0, allowed 1..=65535"), "{e}");
    let e = p.tx_queue_setup(0, 0).unwrap_err().to_string();
    assert!(e.contains("nb_tx_desc: 0, allowed 1..=65535"), "{e}");
    p.rx_queue_setup(0, 64, &mp).unwrap();
    let e = p.start().unwrap_err().to_string();
    assert!(e.contains("start: RX queue 1 not set up"), "{e}");
    p.rx_queue_setup(1, 64, &mp).unwrap();
    let e = p.start().unwrap_err().to_string();
    assert!(e.contains("start: TX queue 0 not set up"), "{e}");
    p.tx_queue_setup(0, 64).unwrap();
    p.start().unwrap();
    // A pool whose buffers cannot hold a frame of the MTU, unless scatter is on.
    let small = {
        let mut c = MbufPoolConfig::new("api-setup-small", 64);
        c.cache_size = 0;
        c.huge = HugePolicy::Never;
        c.data_room = 1000;
        MbufPool::with_config(&c).unwrap()
    };
    p.stop().unwrap();
    let conf = PortConf { mtu: Some(1200), ..Default::default() };
    p.configure(1, 1, &conf).unwrap();
    let e = p.rx_queue_setup(0, 64, &small).unwrap_err().to_string();
    assert!(e.contains("data room 1000 bytes cannot hold a 1218-byte frame (MTU 1200)"), "{e}");
    p.configure(1, 1, &PortConf { mtu: Some(900), ..Default::default() }).unwrap();
    p.rx_queue_setup(0, 64, &small).unwrap();
    // Descriptor limits of the port apply (a ring port's are 1..=65535 as well).
    let r = Registry::new().probe("ring:api-setup").unwrap().remove(0);
    r.configure(1, 1, &PortConf::default()).unwrap();
    assert!(r.rx_queue_setup(0, 0, &mp).unwrap_err().to_string().contains("nb_rx_desc"));
}

#[test]
fn a_second_control_operation_while_one_is_under_way_is_busy() {
    let (began_tx, began_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel();
    let plain = Plain::new(|_| {});
    *plain.hold_mtu.lock().unwrap() = Some((began_tx, go_rx));
    let p = Port::new(92, Box::new(plain));
    let slow = {
        let p = p.clone();
        std::thread::spawn(move || p.mtu_set(2000))
    };
    began_rx.recv().unwrap();
    // mtu_set is under way (inside the driver, no lock held): others are refused, not blocked.
    let e = p.mtu_set(1400).unwrap_err();
    assert_eq!(e, EthError::Busy { port: 92, why: "mtu_set is under way".into() });
    let e = p.close().unwrap_err();
    assert!(matches!(e, EthError::Busy { .. }), "{e:?}");
    // Queries are not control operations.
    assert_eq!(p.phase(), PortPhase::Unconfigured);
    assert!(p.stats().is_ok());
    go_tx.send(()).unwrap();
    slow.join().unwrap().unwrap();
    assert_eq!(p.conf().mtu, Some(2000));
    p.mtu_set(1400).unwrap();
    p.close().unwrap();
}

#[test]
fn probe_errors_name_the_bad_part() {
    let mut r = Registry::new();
    for (spec, part) in [
        ("", "is not a driver name"),
        ("mana:emu", "no driver 'mana' (drivers: null, ring)"),
        ("null:x", "null takes no name ('x')"),
        ("null,size=13", "size=13: a frame of 14..=9000 bytes"),
        ("null,size=9001", "size=9001: a frame of 14..=9000 bytes"),
        ("null,size=big", "size=big: not a valid u16"),
        ("null,queues=0", "queues=0: 1..=1024"),
        ("null,queues=1025", "queues=1025: 1..=1024"),
        ("null,sizes=64", "unknown argument 'sizes' for driver null (known: size, queues)"),
        ("null,,", "'' is not KEY=VALUE"),
    ] {
        let e = r.probe(spec).unwrap_err();
        assert!(matches!(&e, EthError::BadProbe { spec: s, .. } if s == spec), "{spec}: {e:?}");
        assert!(e.to_string().contains(part), "{spec}: {e}");
    }
    // Failed probes use no port ids.
    let ports = r.probe("null").unwrap();
    assert_eq!(ports[0].id(), 0);
    assert_eq!(r.probe("null").unwrap()[0].id(), 1);
    assert_eq!(r.usage().len(), 2);
}
