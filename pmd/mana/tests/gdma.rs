//! The GDMA control plane against the in-process software device: bring-up, vports, WQ
//! objects, steering, statistics, injected faults (failed commands, a slow channel, a reset
//! request, hostile completions), and 100 bring-up/tear-down cycles that leave nothing behind.
//! The device's request counters prove what was sent and what was not.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use gdma_defs::*;
use mana_emu::{Device, DeviceConfig, Fault, WireSpec};
use mana_pmd::bus::EmuBus;
use mana_pmd::cp::{ControlPlane, CpError, DeviceEvent, RingDesc, RxSteer, WqKind, WqObj, WqSpec};
use mana_pmd::gdma::{GdmaConfig, GdmaControlPlane};
use pmd_mempool::{HugePolicy, MemSegment, Mempool, MempoolConfig};

fn device() -> Arc<Device> {
    Arc::new(Device::start(DeviceConfig::new(2, WireSpec::Pair)).expect("device starts"))
}

fn plane_with(dev: &Arc<Device>, cfg: GdmaConfig) -> GdmaControlPlane {
    GdmaControlPlane::new(Box::new(EmuBus::new(dev.clone())), cfg)
}

fn plane(dev: &Arc<Device>) -> GdmaControlPlane {
    plane_with(dev, GdmaConfig::default())
}

fn fault(s: &str) -> Fault {
    s.parse().expect("fault words")
}

/// Requests of `msg_type` the device received.
fn req(dev: &Device, msg_type: u32) -> u64 {
    dev.stats().requests(msg_type)
}

/// Every request type's count, to compare before and after.
fn all_requests(dev: &Device) -> Vec<(&'static str, u64)> {
    mana_emu::fault::COMMAND_NAMES.iter().map(|(n, t)| (*n, req(dev, *t))).collect()
}

/// The control plane's command counters: (full timeouts, short timeouts, refused, bring-ups).
fn cmd_counts(cp: &GdmaControlPlane) -> (u64, u64, u64, u64) {
    let c = cp.cmd_counters();
    let get = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    (get(&c.timeouts), get(&c.hung_timeouts), get(&c.refused_dead), get(&c.bring_ups))
}

/// Memory for rings: one segment, carved into 4 KiB-aligned rings.
struct Rings {
    seg: Arc<MemSegment>,
    next: u64,
}

impl Rings {
    fn new(len: usize) -> Self {
        let seg =
            Arc::new(MemSegment::anonymous("gdma-test-rings", len, HugePolicy::Never).unwrap());
        Rings { seg, next: 0 }
    }

    fn ring(&mut self, size: u32) -> RingDesc {
        let iova = self.seg.iova_base() + self.next;
        self.next += size as u64;
        assert!(self.next as usize <= self.seg.len(), "test ring memory exhausted");
        RingDesc { iova, size }
    }

    fn spec(&mut self, vport: u64, kind: WqKind) -> WqSpec {
        WqSpec { vport, kind, wq: self.ring(16 << 10), cq: self.ring(16 << 10) }
    }
}

/// Brought up, vport 0 configured for TX, a ring segment registered.
fn ready(dev: &Arc<Device>) -> (GdmaControlPlane, u64, Rings) {
    let mut cp = plane(dev);
    cp.bring_up().unwrap();
    let v = cp.query_vport(0).unwrap();
    cp.config_vport_tx(v.handle).unwrap();
    let rings = Rings::new(1 << 20);
    cp.register_segment(&rings.seg).unwrap();
    (cp, v.handle, rings)
}

#[test]
fn bring_up_reports_the_device() {
    let dev = device();
    let mut cp = plane(&dev);
    assert!(matches!(cp.query_vport(0), Err(CpError::NotUp)));
    assert!(matches!(cp.doorbells(), Err(CpError::NotUp)));
    let caps = cp.bring_up().unwrap();
    assert_eq!(caps.num_vports, 2);
    assert_eq!(caps.adapter_mtu, 1514);
    assert_eq!((caps.max_sq, caps.max_rq, caps.max_cq), (32, 32, 64));
    assert_eq!((caps.db_pages_offset, caps.db_page_size), (0x1000, 0x1000));
    assert!(caps.self_reset, "the device's PF cap flags offer EQE 135");
    assert_ne!(caps.mem_key, 0);
    assert!(cp.is_up() && cp.alive());
    for (t, n) in [
        (GDMA_VERIFY_VF_DRIVER_VERSION, 1),
        (GDMA_QUERY_MAX_RESOURCES, 1),
        (GDMA_LIST_DEVICES, 1),
        (GDMA_REGISTER_DEVICE, 1),
        (MANA_QUERY_DEV_CONFIG, 1),
        (GDMA_DEREGISTER_DEVICE, 0),
    ] {
        assert_eq!(req(&dev, t), n, "msg type {t:#x}");
    }
    let db = cp.doorbells().unwrap();
    assert_eq!((db.page_offset, db.page_size), (0x1000, 0x1000));
    assert_eq!(db.win.len(), dev.bar0().len());
    // Up already: the same answer, nothing sent.
    assert_eq!(cp.bring_up().unwrap(), caps);
    assert_eq!(req(&dev, GDMA_VERIFY_VF_DRIVER_VERSION), 1);
    cp.tear_down().unwrap();
    assert_eq!(req(&dev, GDMA_DEREGISTER_DEVICE), 1);
    assert!(!cp.is_up());
    cp.tear_down().unwrap(); // idempotent
    assert_eq!(req(&dev, GDMA_DEREGISTER_DEVICE), 1);
    assert_eq!(dev.stats().device.hwc_errors.get(), 0);
}

#[test]
fn query_vport_describes_each_vport() {
    let dev = device();
    let mut cp = plane(&dev);
    cp.bring_up().unwrap();
    let a = cp.query_vport(0).unwrap();
    let b = cp.query_vport(1).unwrap();
    for (i, v) in [a, b].iter().enumerate() {
        assert_eq!(v.index, i as u32);
        assert_eq!(v.mac, dev.config().mac(i as u16));
        assert_eq!((v.max_sq, v.max_rq, v.indir_entries), (16, 16, 64));
    }
    assert_ne!(a.handle, b.handle);
    // Out of range: refused without asking the device.
    assert!(matches!(cp.query_vport(2), Err(CpError::BadArg(_))));
    assert_eq!(req(&dev, MANA_QUERY_VPORT_CONFIG), 2);
    cp.tear_down().unwrap();
}

#[test]
fn config_vport_tx_gives_the_offset() {
    let dev = device();
    let mut cp = plane(&dev);
    cp.bring_up().unwrap();
    for i in 0..2 {
        let v = cp.query_vport(i).unwrap();
        let tx = cp.config_vport_tx(v.handle).unwrap();
        assert_eq!(tx.tx_vport_offset, i as u16);
        assert!(tx.short_form_allowed);
    }
    assert!(matches!(
        cp.config_vport_tx(0xdead),
        Err(CpError::Status { cmd: "CONFIG_VPORT_TX", status: GDMA_STATUS_FAILURE })
    ));
    cp.tear_down().unwrap();
}

#[test]
fn wq_objects_of_both_kinds_come_and_go() {
    let dev = device();
    let (mut cp, vport, mut rings) = ready(&dev);
    let mut objs: Vec<WqObj> = Vec::new();
    for kind in [WqKind::Sq, WqKind::Rq, WqKind::Sq, WqKind::Rq] {
        let o = cp.create_wq(&rings.spec(vport, kind)).unwrap();
        assert_eq!(o.kind, kind);
        assert!(o.wq_id >= 24 && o.cq_id >= 24, "{o:?}");
        assert!(o.db_page != 0, "page 0 is the hardware channel's");
        objs.push(o);
    }
    let mut pages: Vec<u32> = objs.iter().map(|o| o.db_page).collect();
    pages.sort_unstable();
    pages.dedup();
    assert_eq!(pages.len(), objs.len(), "one doorbell page per object");
    let mut handles: Vec<u64> = objs.iter().map(|o| o.handle).collect();
    handles.dedup();
    assert_eq!(handles.len(), 4);
    assert_eq!(cp.wq_objects().len(), 4);
    assert_eq!(req(&dev, GDMA_ALLOCATE_RESOURCE_RANGE), 4);
    assert_eq!(req(&dev, GDMA_CREATE_DMA_REGION), 8);
    assert_eq!(req(&dev, MANA_CREATE_WQ_OBJ), 4);
    for o in &objs {
        cp.destroy_wq(o).unwrap();
    }
    assert!(matches!(cp.destroy_wq(&objs[0]), Err(CpError::BadArg(_))), "destroyed already");
    assert_eq!(req(&dev, MANA_DESTROY_WQ_OBJ), 4);
    assert_eq!(req(&dev, GDMA_DESTROY_RESOURCE_RANGE), 4);
    // The regions belong to the objects and go with them (§6.3): never destroyed separately.
    assert_eq!(req(&dev, GDMA_DESTROY_DMA_REGION), 0);
    assert!(cp.wq_objects().is_empty());
    // The pages are free again: the next object gets one of them.
    let again = cp.create_wq(&rings.spec(vport, WqKind::Rq)).unwrap();
    assert!(pages.contains(&again.db_page));
    cp.tear_down().unwrap();
    assert_eq!(req(&dev, MANA_DESTROY_WQ_OBJ), 5, "tear_down destroys what is left");
    assert_eq!(req(&dev, GDMA_DESTROY_RESOURCE_RANGE), 5);
    assert_eq!(dev.stats().device.hwc_errors.get(), 0);
}

#[test]
fn large_rings_take_several_region_messages() {
    let dev = device();
    let (mut cp, vport, _) = ready(&dev);
    // 4 MiB: 1024 pages = CREATE_DMA_REGION (504) + 2 x DMA_REGION_ADD_PAGES (505 + 15).
    let big = Arc::new(MemSegment::anonymous("gdma-test-big", 5 << 20, HugePolicy::Never).unwrap());
    cp.register_segment(&big).unwrap();
    let base = big.iova_base().next_multiple_of(4096);
    let spec = WqSpec {
        vport,
        kind: WqKind::Rq,
        wq: RingDesc { iova: base, size: 4 << 20 },
        cq: RingDesc { iova: base + (4 << 20), size: 64 << 10 },
    };
    let o = cp.create_wq(&spec).unwrap();
    assert_eq!(req(&dev, GDMA_CREATE_DMA_REGION), 2);
    assert_eq!(req(&dev, GDMA_DMA_REGION_ADD_PAGES), 2);
    cp.destroy_wq(&o).unwrap();
    // Bad rings are refused before anything is sent.
    let before = all_requests(&dev);
    let odd = WqSpec { wq: RingDesc { iova: base + 8, size: 16 << 10 }, ..spec };
    assert!(matches!(cp.create_wq(&odd), Err(CpError::BadArg(_))));
    let small = WqSpec { cq: RingDesc { iova: base, size: 2048 }, ..spec };
    assert!(matches!(cp.create_wq(&small), Err(CpError::BadArg(_))));
    assert_eq!(all_requests(&dev), before);
    cp.tear_down().unwrap();
    assert_eq!(dev.stats().device.hwc_errors.get(), 0);
}

#[test]
fn config_vport_rx_steers_to_rq_objects() {
    let dev = device();
    let (mut cp, vport, mut rings) = ready(&dev);
    let rqs: Vec<WqObj> =
        (0..4).map(|_| cp.create_wq(&rings.spec(vport, WqKind::Rq)).unwrap()).collect();
    let sq = cp.create_wq(&rings.spec(vport, WqKind::Sq)).unwrap();
    let mut steer = RxSteer {
        vport,
        rx_enable: true,
        rss_enable: true,
        hash_key: MANA_DEFAULT_RSS_KEY,
        indir: (0..64).map(|i| rqs[i % 4].handle).collect(),
        default_rq: rqs[0].handle,
        cqe_coalescing: true,
    };
    cp.config_vport_rx(&steer).unwrap();
    assert_eq!(req(&dev, MANA_CONFIG_VPORT_RX), 1);
    // Refused before sending: an SQ in the table, a table not a power of two, RSS without one.
    let before = all_requests(&dev);
    steer.indir[5] = sq.handle;
    assert!(matches!(cp.config_vport_rx(&steer), Err(CpError::BadArg(_))));
    steer.indir.truncate(48);
    steer.indir[5] = rqs[1].handle;
    assert!(matches!(cp.config_vport_rx(&steer), Err(CpError::BadArg(_))));
    steer.indir.clear();
    assert!(matches!(cp.config_vport_rx(&steer), Err(CpError::BadArg(_))));
    assert_eq!(all_requests(&dev), before);
    // Everything to one queue, then RX off.
    steer.rss_enable = false;
    cp.config_vport_rx(&steer).unwrap();
    steer.rx_enable = false;
    steer.default_rq = 0;
    cp.config_vport_rx(&steer).unwrap();
    assert_eq!(req(&dev, MANA_CONFIG_VPORT_RX), 3);
    cp.tear_down().unwrap();
    assert_eq!(dev.stats().device.hwc_errors.get(), 0);
}

#[test]
fn device_stats_are_named() {
    let dev = device();
    let mut cp = plane(&dev);
    cp.bring_up().unwrap();
    let s = cp.device_stats().unwrap();
    assert_eq!(s.len(), 27);
    let names: Vec<&str> = s.iter().map(|(n, _)| *n).collect();
    for n in ["rx_discards_nowqe", "hc_rx_ucast_pkts", "hc_tx_bytes", "tx_err_gdma"] {
        assert!(names.contains(&n), "{n} in {names:?}");
    }
    assert!(s.iter().all(|(_, v)| *v == 0), "no traffic yet: {s:?}");
    assert_eq!(req(&dev, MANA_QUERY_GF_STAT), 1);
    cp.tear_down().unwrap();
}

#[test]
fn pools_and_segments_are_registered_with_the_memory_key() {
    let dev = device();
    let mut cp = plane(&dev);
    let caps = cp.bring_up().unwrap();
    let pool = Mempool::create(
        &MempoolConfig::new("gdma-test-pool", 256, 2048).cache_size(0).huge(HugePolicy::Never),
    )
    .unwrap();
    let iova = pool.segments().next().unwrap().iova_base();
    assert_eq!(cp.register_pool(&pool).unwrap(), caps.mem_key);
    assert_eq!(cp.register_pool(&pool).unwrap(), caps.mem_key, "twice is harmless");
    cp.unregister(iova).unwrap();
    assert!(matches!(cp.unregister(iova), Err(CpError::BadArg(_))));
    let seg = Arc::new(MemSegment::anonymous("gdma-test-seg", 8192, HugePolicy::Never).unwrap());
    assert_eq!(cp.register_segment(&seg).unwrap(), caps.mem_key);
    // tear_down unmaps what is still registered: mapping it again afterwards works.
    cp.tear_down().unwrap();
    dev.map(vec![mana_emu::Mapping::segment(seg.clone())]).unwrap();
    dev.unmap(seg.iova_base()).unwrap();
}

#[test]
fn a_failed_command_is_a_status_error() {
    let dev = device();
    let (mut cp, vport, mut rings) = ready(&dev);
    dev.inject(fault("fail-cmd QUERY_VPORT_CONFIG")).unwrap();
    let e = cp.query_vport(1).unwrap_err();
    assert_eq!(e, CpError::Status { cmd: "QUERY_VPORT_CONFIG", status: GDMA_STATUS_FAILURE });
    dev.inject(fault("clear")).unwrap();
    assert_eq!(cp.query_vport(1).unwrap().index, 1);

    // A failed CREATE_WQ_OBJ gives back what was made for it: both regions and the page.
    dev.inject(fault("fail-cmd CREATE_WQ_OBJ")).unwrap();
    let e = cp.create_wq(&rings.spec(vport, WqKind::Sq)).unwrap_err();
    assert_eq!(e, CpError::Status { cmd: "CREATE_WQ_OBJ", status: GDMA_STATUS_FAILURE });
    assert_eq!(req(&dev, GDMA_DESTROY_DMA_REGION), 2);
    assert_eq!(req(&dev, GDMA_ALLOCATE_RESOURCE_RANGE), req(&dev, GDMA_DESTROY_RESOURCE_RANGE));
    assert!(cp.wq_objects().is_empty());

    // A failed second region: the first is destroyed, the page freed.
    dev.inject(fault("fail-cmd DMA_REGION_ADD_PAGES")).unwrap();
    let big =
        Arc::new(MemSegment::anonymous("gdma-test-big2", 3 << 20, HugePolicy::Never).unwrap());
    cp.register_segment(&big).unwrap();
    let base = big.iova_base().next_multiple_of(4096);
    let spec = WqSpec {
        vport,
        kind: WqKind::Rq,
        wq: RingDesc { iova: base, size: 16 << 10 },
        cq: RingDesc { iova: base + (1 << 20), size: 2 << 20 },
    };
    let e = cp.create_wq(&spec).unwrap_err();
    assert_eq!(e, CpError::Status { cmd: "DMA_REGION_ADD_PAGES", status: GDMA_STATUS_FAILURE });
    assert_eq!(req(&dev, GDMA_DESTROY_DMA_REGION), 4);
    assert_eq!(req(&dev, GDMA_ALLOCATE_RESOURCE_RANGE), req(&dev, GDMA_DESTROY_RESOURCE_RANGE));
    dev.inject(fault("clear")).unwrap();

    // A failing destroy keeps the object recorded; tear_down tries again.
    let o = cp.create_wq(&rings.spec(vport, WqKind::Rq)).unwrap();
    dev.inject(fault("fail-cmd DESTROY_WQ_OBJ")).unwrap();
    assert!(matches!(cp.destroy_wq(&o), Err(CpError::Status { cmd: "DESTROY_WQ_OBJ", .. })));
    assert_eq!(cp.wq_objects(), [o]);
    dev.inject(fault("clear")).unwrap();
    cp.tear_down().unwrap();
    assert_eq!(req(&dev, MANA_CREATE_WQ_OBJ), 2);
    assert_eq!(req(&dev, MANA_DESTROY_WQ_OBJ), 2, "one refused, one done");
    assert_eq!(req(&dev, GDMA_ALLOCATE_RESOURCE_RANGE), req(&dev, GDMA_DESTROY_RESOURCE_RANGE));
    assert_eq!(req(&dev, GDMA_REGISTER_DEVICE), req(&dev, GDMA_DEREGISTER_DEVICE));
}

#[test]
fn a_failed_bring_up_leaves_nothing_and_can_be_retried() {
    let dev = device();
    let mut cp = plane(&dev);
    dev.inject(fault("fail-cmd QUERY_DEV_CONFIG")).unwrap();
    let e = cp.bring_up().unwrap_err();
    assert_eq!(e, CpError::Status { cmd: "QUERY_DEV_CONFIG", status: GDMA_STATUS_FAILURE });
    assert!(!cp.is_up());
    assert_eq!(req(&dev, GDMA_DEREGISTER_DEVICE), 1, "the registration was undone");
    dev.inject(fault("fail-cmd VERIFY_VF_DRIVER_VERSION")).unwrap();
    assert!(matches!(cp.bring_up(), Err(CpError::Status { cmd: "VERIFY_VF_DRIVER_VERSION", .. })));
    assert_eq!(req(&dev, GDMA_REGISTER_DEVICE), 1, "stopped before registering");
    dev.inject(fault("clear")).unwrap();
    cp.bring_up().unwrap();
    cp.tear_down().unwrap();
    assert_eq!(req(&dev, GDMA_REGISTER_DEVICE), req(&dev, GDMA_DEREGISTER_DEVICE));
}

#[test]
fn a_slow_channel_times_out_and_still_works_afterwards() {
    let dev = device();
    let mut cp = plane(&dev);
    cp.bring_up().unwrap();
    let short = Duration::from_millis(300);
    cp.set_cmd_timeout(short);
    dev.inject(fault("hwc-delay 1000")).unwrap();
    let t0 = Instant::now();
    let e = cp.query_vport(0).unwrap_err();
    assert_eq!(e, CpError::Timeout { cmd: "QUERY_VPORT_CONFIG", ms: 300 });
    assert!(t0.elapsed() >= short);
    // Still slow: the next command waits for the late answer, which has not come either, and
    // is not sent (queue depth 1).
    let sent = cp.counters().requests;
    let e = cp.query_vport(1).unwrap_err();
    assert!(matches!(e, CpError::Timeout { .. }), "{e}");
    assert_eq!(cp.counters().requests, sent, "not sent while the first is unanswered");
    dev.inject(fault("clear")).unwrap();
    cp.set_cmd_timeout(Duration::from_secs(5));
    // The late answer (vport 0) is discarded; vport 1's answer is the one returned.
    let v = cp.query_vport(1).unwrap();
    assert_eq!(v.mac, dev.config().mac(1));
    assert_eq!(req(&dev, MANA_QUERY_VPORT_CONFIG), 2);
    let c = cp.counters();
    assert_eq!((c.timeouts, c.late_answers, c.bad_entries), (1, 1, 0));

    // A timed-out allocation is undone when its late answer says it happened.
    let v0 = cp.query_vport(0).unwrap();
    cp.config_vport_tx(v0.handle).unwrap();
    let mut rings = Rings::new(1 << 20);
    cp.register_segment(&rings.seg).unwrap();
    cp.set_cmd_timeout(short);
    dev.inject(fault("hwc-delay 1000")).unwrap();
    let e = cp.create_wq(&rings.spec(v0.handle, WqKind::Sq)).unwrap_err();
    assert_eq!(e, CpError::Timeout { cmd: "ALLOCATE_RESOURCE_RANGE", ms: 300 });
    dev.inject(fault("clear")).unwrap();
    cp.set_cmd_timeout(Duration::from_secs(5));
    let o = cp.create_wq(&rings.spec(v0.handle, WqKind::Sq)).unwrap();
    cp.destroy_wq(&o).unwrap();
    cp.tear_down().unwrap();
    assert_eq!(req(&dev, GDMA_ALLOCATE_RESOURCE_RANGE), 2);
    assert_eq!(req(&dev, GDMA_DESTROY_RESOURCE_RANGE), 2, "the late page was freed too");
    assert_eq!(dev.stats().device.hwc_errors.get(), 0);
}

#[test]
fn a_new_bring_up_forgets_that_the_last_channel_stopped_answering() {
    let dev = device();
    let full = Duration::from_millis(200);
    let mut cp = plane_with(&dev, GdmaConfig { cmd_timeout: full, ..Default::default() });
    cp.bring_up().unwrap();
    assert_eq!(cmd_counts(&cp), (0, 0, 0, 1));
    dev.inject(fault("hwc-delay 60000")).unwrap();
    // The first command into the silence waits its full timeout; the channel is then hung.
    let e = cp.query_vport(0).unwrap_err();
    assert_eq!(e, CpError::Timeout { cmd: "QUERY_VPORT_CONFIG", ms: 200 });
    assert!(cp.hung());
    // The next one waits only the short timeout (for the first one's answer; it is not sent).
    match cp.query_vport(1).unwrap_err() {
        CpError::Timeout { ms, .. } => assert!(ms < 200, "waited {ms} ms"),
        e => panic!("{e}"),
    }
    assert_eq!(cmd_counts(&cp), (1, 1, 0, 1));
    // Teardown: the late answer is not awaited in full either, then the channel is dead and
    // DEREGISTER_DEVICE is not sent.
    assert!(matches!(cp.tear_down(), Err(CpError::Timeout { cmd: "tear_down", .. })));
    assert_eq!(cmd_counts(&cp), (1, 2, 1, 1));
    assert!(cp.hung(), "hung until the next bring-up");

    // A bring-up while the device is still silent: a new channel, not known dead, so its first
    // command waits the full timeout again (not the short one of the old channel).
    let e = cp.bring_up().unwrap_err();
    assert_eq!(e, CpError::Timeout { cmd: "VERIFY_VF_DRIVER_VERSION", ms: 200 });
    assert_eq!(cmd_counts(&cp), (2, 3, 1, 2));

    // The channel comes back: the next bring-up works and the channel is not hung any more.
    dev.inject(fault("clear")).unwrap();
    cp.bring_up().unwrap();
    assert!(!cp.hung());
    assert!(cp.gone_reason().is_none());
    assert_eq!(cp.query_vport(0).unwrap().mac, dev.config().mac(0));
    cp.tear_down().unwrap();
    assert_eq!(cmd_counts(&cp), (2, 3, 1, 3));
}

/// Polls events until `want` shows up (or 2 s).
fn wait_event(cp: &mut GdmaControlPlane, want: impl Fn(&DeviceEvent) -> bool) -> Vec<DeviceEvent> {
    let mut ev = Vec::new();
    let end = Instant::now() + Duration::from_secs(2);
    while !ev.iter().any(&want) {
        assert!(Instant::now() < end, "event not seen: {ev:?}");
        cp.poll_events(&mut ev).unwrap();
        std::thread::sleep(Duration::from_millis(1));
    }
    ev
}

#[test]
fn poll_events_sees_test_events_and_a_reset_request() {
    let dev = device();
    let (mut cp, vport, mut rings) = ready(&dev);
    let mut ev = Vec::new();
    cp.poll_events(&mut ev).unwrap();
    assert!(ev.is_empty(), "{ev:?}");
    cp.generate_test_event().unwrap();
    assert_eq!(wait_event(&mut cp, |e| *e == DeviceEvent::Test), [DeviceEvent::Test]);
    let o = cp.create_wq(&rings.spec(vport, WqKind::Rq)).unwrap();
    let key = cp.doorbells().unwrap();
    drop(key);

    dev.inject(fault("reset-request")).unwrap();
    let ev = wait_event(&mut cp, |e| matches!(e, DeviceEvent::ResetRequest { .. }));
    assert!(ev.contains(&DeviceEvent::ResetRequest { data: 0 }), "{ev:?}");
    assert!(!ev.contains(&DeviceEvent::Dead), "a reset is not reported as death too: {ev:?}");
    assert!(cp.gone_reason().is_some());
    // Commands fail at once, nothing reaches the device.
    let before = all_requests(&dev);
    let (timeouts, hung, refused, bring_ups) = cmd_counts(&cp);
    assert!(matches!(cp.query_vport(0), Err(CpError::DeviceGone { .. })));
    assert!(matches!(cp.destroy_wq(&o), Err(CpError::DeviceGone { .. })));
    // Refused, not waited for: no timeout of either kind.
    assert_eq!(cmd_counts(&cp), (timeouts, hung, refused + 2, bring_ups), "no wait for a timeout");
    cp.tear_down().unwrap();
    assert_eq!(all_requests(&dev), before, "no teardown command on a resetting device");
    assert!(cp.wq_objects().is_empty());

    // The device comes back; a new bring-up works, with new keys.
    let end = Instant::now() + Duration::from_secs(2);
    while !cp.alive() {
        assert!(Instant::now() < end, "device did not come back");
        std::thread::sleep(Duration::from_millis(5));
    }
    let caps = cp.bring_up().unwrap();
    let v = cp.query_vport(0).unwrap();
    cp.config_vport_tx(v.handle).unwrap();
    cp.register_segment(&rings.seg).unwrap();
    let o2 = cp.create_wq(&rings.spec(v.handle, WqKind::Rq)).unwrap();
    assert_eq!(o2.kind, WqKind::Rq);
    assert_ne!(caps.mem_key, 0);
    cp.tear_down().unwrap();
    assert_eq!(dev.stats().device.resets.get(), 1);
}

#[test]
fn a_dead_device_is_reported_once() {
    let dev = device();
    let mut cp = plane(&dev);
    cp.bring_up().unwrap();
    dev.inject(fault("fatal 100")).unwrap();
    assert!(!cp.alive());
    let ev = wait_event(&mut cp, |e| *e == DeviceEvent::Dead);
    assert_eq!(ev, [DeviceEvent::Dead]);
    let mut more = Vec::new();
    cp.poll_events(&mut more).unwrap();
    assert!(more.is_empty());
    assert!(matches!(cp.query_vport(0), Err(CpError::DeviceGone { .. })));
    cp.tear_down().unwrap();
    assert!(matches!(cp.bring_up(), Err(CpError::DeviceGone { .. })), "still dead");
    std::thread::sleep(Duration::from_millis(200));
    cp.bring_up().unwrap();
    cp.tear_down().unwrap();
}

#[test]
fn mark_gone_fails_commands_at_once() {
    let dev = device();
    let (mut cp, vport, mut rings) = ready(&dev);
    let o = cp.create_wq(&rings.spec(vport, WqKind::Sq)).unwrap();
    cp.mark_gone("the test says so");
    let before = all_requests(&dev);
    for _ in 0..100 {
        assert!(
            matches!(cp.query_vport(0), Err(CpError::DeviceGone { why }) if why == "the test says so")
        );
    }
    assert!(matches!(
        cp.create_wq(&rings.spec(vport, WqKind::Rq)),
        Err(CpError::DeviceGone { .. })
    ));
    assert!(matches!(cp.device_stats(), Err(CpError::DeviceGone { .. })));
    assert!(matches!(cp.destroy_wq(&o), Err(CpError::DeviceGone { .. })));
    // 100 QUERY_VPORT_CONFIG, CREATE_WQ_OBJ, QUERY_GF_STAT, DESTROY_WQ_OBJ: refused, no timeout.
    assert_eq!(cmd_counts(&cp), (0, 0, 103, 1));
    cp.tear_down().unwrap();
    // The teardown leaves out what it would send: DEREGISTER_DEVICE (the object went with the
    // refused destroy).
    assert_eq!(cmd_counts(&cp), (0, 0, 104, 1));
    assert_eq!(all_requests(&dev), before, "nothing was sent");
    assert!(cp.gone_reason().is_none(), "tear_down ends the incarnation");
}

#[test]
fn many_commands_never_reach_the_lap_limit() {
    let dev = device();
    let mut cp = plane(&dev);
    cp.bring_up().unwrap();
    // 300 requests = 600 HWC CQEs, over 9 laps of the 64-entry HWC CQ; 300 test events over a
    // lap of the 256-entry EQ.
    let mut tests = 0;
    for i in 0..300 {
        cp.generate_test_event().unwrap();
        if i % 50 == 49 {
            let mut ev = Vec::new();
            let end = Instant::now() + Duration::from_secs(2);
            while tests + ev.len() < i + 1 && Instant::now() < end {
                cp.poll_events(&mut ev).unwrap();
            }
            assert!(ev.iter().all(|e| *e == DeviceEvent::Test));
            tests += ev.len();
        }
    }
    assert_eq!(tests, 300);
    assert_eq!(dev.stats().device.cq_stalls.get(), 0, "no CQE or EQE held back");
    cp.tear_down().unwrap();
}

#[test]
fn bring_up_and_tear_down_100_times_leave_nothing_behind() {
    let dev = device();
    let mut cp = plane(&dev);
    let mut rings = Rings::new(16 << 20);
    let t0 = Instant::now();
    for cycle in 0..100 {
        cp.bring_up().unwrap();
        cp.register_segment(&rings.seg).unwrap();
        rings.next = 0;
        let v = cp.query_vport((cycle % 2) as u32).unwrap();
        cp.config_vport_tx(v.handle).unwrap();
        let sq = cp.create_wq(&rings.spec(v.handle, WqKind::Sq)).unwrap();
        let rq = cp.create_wq(&rings.spec(v.handle, WqKind::Rq)).unwrap();
        let rq2 = cp.create_wq(&rings.spec(v.handle, WqKind::Rq)).unwrap();
        cp.config_vport_rx(&RxSteer {
            vport: v.handle,
            rx_enable: true,
            rss_enable: true,
            hash_key: MANA_DEFAULT_RSS_KEY,
            indir: (0..64).map(|i| if i % 2 == 0 { rq.handle } else { rq2.handle }).collect(),
            default_rq: rq.handle,
            cqe_coalescing: false,
        })
        .unwrap();
        cp.destroy_wq(&sq).unwrap();
        // rq and rq2 are left for tear_down.
        cp.tear_down().unwrap();
    }
    eprintln!("100 cycles in {:?}", t0.elapsed());
    let pairs = [
        (GDMA_REGISTER_DEVICE, GDMA_DEREGISTER_DEVICE, 100),
        (MANA_CREATE_WQ_OBJ, MANA_DESTROY_WQ_OBJ, 300),
        (GDMA_ALLOCATE_RESOURCE_RANGE, GDMA_DESTROY_RESOURCE_RANGE, 300),
    ];
    for (create, destroy, n) in pairs {
        assert_eq!(req(&dev, create), n, "{create:#x}");
        assert_eq!(req(&dev, destroy), n, "{destroy:#x}");
    }
    // Every region went to an object, and with it.
    assert_eq!(req(&dev, GDMA_CREATE_DMA_REGION), 600);
    assert_eq!(req(&dev, GDMA_DESTROY_DMA_REGION), 0);
    let s = dev.stats();
    assert_eq!(s.device.hwc_errors.get(), 0, "every command succeeded");
    assert_eq!(s.device.cq_stalls.get(), 0);
    // 300 doorbell pages and 100 registrations went through a device with 255 pages, 150 SQs and
    // 150 RQs through vports that take 16 each: none could have leaked.
    assert_eq!(cp.counters().timeouts, 0);
}

#[test]
fn hostile_completions_never_panic() {
    let dev = device();
    dev.inject(fault("hostile 1000000")).unwrap();
    for _ in 0..3 {
        let mut cp = plane(&dev);
        let Ok(_) = cp.bring_up() else { continue };
        let mut rings = Rings::new(1 << 20);
        let _ = cp.register_segment(&rings.seg);
        for i in 0..2 {
            if let Ok(v) = cp.query_vport(i) {
                let _ = cp.config_vport_tx(v.handle);
                if let Ok(o) = cp.create_wq(&rings.spec(v.handle, WqKind::Rq)) {
                    let _ = cp.destroy_wq(&o);
                }
            }
        }
        let _ = cp.device_stats();
        let mut ev = Vec::new();
        let _ = cp.poll_events(&mut ev);
        let _ = cp.tear_down();
    }
    // This device corrupts data-path CQEs only (its HWC completions are never touched), so the
    // channel stays correct; the unit tests of `gdma::hwc` feed it corrupted entries directly.
    assert_eq!(dev.stats().device.hwc_errors.get(), 0);
}
