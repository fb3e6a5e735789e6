//! White-box tests of the GDMA control plane against the in-process device: what the channel
//! does with late answers, with completions and events the device never wrote, and with
//! requests that time out in the middle of `create_wq`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mana_emu::{Device, DeviceConfig, Fault, WireSpec};
use pmd_mempool::{HugePolicy, MemSegment};

use super::*;
use crate::bus::EmuBus;

fn device() -> Arc<Device> {
    Arc::new(Device::start(DeviceConfig::new(2, WireSpec::Pair)).expect("device"))
}

fn plane(dev: &Arc<Device>) -> GdmaControlPlane {
    GdmaControlPlane::new(Box::new(EmuBus::new(dev.clone())), GdmaConfig::default())
}

/// A hook that, when `cmd` is about to be sent, injects `faults` and shortens the command
/// timeout to 300 ms (every other command keeps the default 5 s, so a loaded machine does not
/// make them time out).
fn before(
    dev: &Arc<Device>,
    cmd: &'static str,
    faults: &'static [&'static str],
) -> Box<dyn FnMut(&'static str) -> Option<Duration> + Send> {
    let d = dev.clone();
    Box::new(move |c| {
        if c != cmd {
            return None;
        }
        for f in faults {
            d.inject(fault(f)).unwrap();
        }
        Some(Duration::from_millis(300))
    })
}

fn fault(s: &str) -> Fault {
    s.parse().expect("fault words")
}

fn req(dev: &Device, t: u32) -> u64 {
    dev.stats().requests(t)
}

/// Rings for one WQ object: a segment registered with the plane, WQ at 0, CQ at 16 KiB.
fn rings(cp: &mut GdmaControlPlane, vport: u64, kind: WqKind) -> (Arc<MemSegment>, WqSpec) {
    let seg =
        Arc::new(MemSegment::anonymous("gdma-ut-rings", 32 << 10, HugePolicy::Never).unwrap());
    cp.register_segment(&seg).unwrap();
    let base = seg.iova_base();
    let spec = WqSpec {
        vport,
        kind,
        wq: RingDesc { iova: base, size: 16 << 10 },
        cq: RingDesc { iova: base + (16 << 10), size: 16 << 10 },
    };
    (seg, spec)
}

#[test]
fn late_create_wq_obj_success_is_destroyed_later() {
    let dev = device();
    let mut cp = plane(&dev);
    cp.bring_up().unwrap();
    let v = cp.query_vport(0).unwrap();
    cp.config_vport_tx(v.handle).unwrap();
    let (_seg, spec) = rings(&mut cp, v.handle, WqKind::Sq);
    // The device answers CREATE_WQ_OBJ only after the driver gave up on it.
    cp.hook = Some(before(&dev, "CREATE_WQ_OBJ", &["hwc-delay 1000"]));
    let e = cp.create_wq(&spec).unwrap_err();
    assert_eq!(e, CpError::Timeout { cmd: "CREATE_WQ_OBJ", ms: 300 });
    cp.hook = None;
    cp.set_cmd_timeout(Duration::from_secs(5));
    {
        let up = cp.up.as_ref().unwrap();
        assert_eq!(up.orphan_regions.len(), 2, "regions kept until the answer is known");
        assert_eq!(up.orphan_pages.len(), 1);
        assert!(up.hwc.has_pending());
    }
    dev.inject(fault("clear")).unwrap();
    // The next command waits for the late answer first: it says the object was created.
    assert_eq!(cp.query_vport(1).unwrap().index, 1);
    {
        let up = cp.up.as_ref().unwrap();
        assert!(up.orphan_regions.is_empty(), "the object owns its regions");
        assert_eq!(up.orphan_objs.len(), 1);
        assert!(!up.hwc.has_pending());
    }
    assert_eq!(cp.counters().late_answers, 1);
    assert_eq!(cp.counters().timeouts, 1);
    cp.tear_down().unwrap();
    let s = dev.stats();
    assert_eq!(req(&dev, gdma_defs::MANA_CREATE_WQ_OBJ), 1);
    assert_eq!(req(&dev, gdma_defs::MANA_DESTROY_WQ_OBJ), 1, "the orphan object is destroyed");
    assert_eq!(
        req(&dev, gdma_defs::GDMA_ALLOCATE_RESOURCE_RANGE),
        req(&dev, gdma_defs::GDMA_DESTROY_RESOURCE_RANGE)
    );
    assert_eq!(req(&dev, gdma_defs::GDMA_DESTROY_DMA_REGION), 0);
    assert_eq!(s.device.hwc_errors.get(), 0, "nothing the device refused");
}

#[test]
fn late_create_wq_obj_failure_frees_the_regions() {
    let dev = device();
    let mut cp = plane(&dev);
    cp.bring_up().unwrap();
    let v = cp.query_vport(0).unwrap();
    cp.config_vport_tx(v.handle).unwrap();
    let (_seg, spec) = rings(&mut cp, v.handle, WqKind::Rq);
    cp.hook = Some(before(&dev, "CREATE_WQ_OBJ", &["fail-cmd CREATE_WQ_OBJ", "hwc-delay 1000"]));
    assert!(matches!(cp.create_wq(&spec), Err(CpError::Timeout { .. })));
    cp.hook = None;
    cp.set_cmd_timeout(Duration::from_secs(5));
    // CREATE_WQ_OBJ still fails when the device gets to it (its answer is due 1 s after it was
    // sent; later requests are not delayed). tear_down waits for that answer first.
    dev.inject(fault("hwc-delay 0")).unwrap();
    cp.tear_down().unwrap();
    assert_eq!(req(&dev, gdma_defs::MANA_DESTROY_WQ_OBJ), 0, "no object was created");
    assert_eq!(req(&dev, gdma_defs::GDMA_DESTROY_DMA_REGION), 2, "both regions given back");
    assert_eq!(
        req(&dev, gdma_defs::GDMA_ALLOCATE_RESOURCE_RANGE),
        req(&dev, gdma_defs::GDMA_DESTROY_RESOURCE_RANGE)
    );
    // The one refusal is the injected CREATE_WQ_OBJ failure.
    assert_eq!(dev.stats().device.hwc_errors.get(), 1);
}

#[test]
fn completions_of_requests_nobody_sent_are_discarded() {
    let dev = device();
    let mut cp = plane(&dev);
    cp.bring_up().unwrap();
    let before = req(&dev, gdma_defs::GDMA_QUERY_MAX_RESOURCES);
    // A request the channel does not know about: its SQ and RQ completions arrive unasked.
    cp.up.as_mut().unwrap().hwc.test_ghost(HWC_DEV_ID).unwrap();
    let end = Instant::now() + Duration::from_secs(2);
    while req(&dev, gdma_defs::GDMA_QUERY_MAX_RESOURCES) == before && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(1));
    }
    std::thread::sleep(Duration::from_millis(20));
    let v = cp.query_vport(1).unwrap();
    assert_eq!(v.mac, dev.config().mac(1));
    assert_eq!(cp.counters().bad_entries, 1, "the RQ completion nobody waited for");
    assert_eq!(cp.query_vport(0).unwrap().mac, dev.config().mac(0));
    cp.tear_down().unwrap();
    assert_eq!(dev.stats().device.cq_stalls.get(), 0);
}

#[test]
fn a_completion_of_another_request_fails_the_one_in_flight_and_its_answer_is_discarded_later() {
    let dev = device();
    let mut cp = plane(&dev);
    cp.bring_up().unwrap();
    dev.inject(fault("hwc-delay 200")).unwrap();
    // A request nobody waits for goes first; its RQ completion names another RQ WQE.
    cp.up.as_mut().unwrap().hwc.test_ghost(HWC_DEV_ID).unwrap();
    let e = cp.query_vport(0).unwrap_err();
    assert!(matches!(e, CpError::BadAnswer { cmd: "QUERY_VPORT_CONFIG", .. }), "{e}");
    // It failed on the stray answer (the ghost's, served first): its own is still to come.
    assert!(cp.up.as_ref().unwrap().hwc.has_pending());
    dev.inject(fault("clear")).unwrap();
    assert_eq!(cp.query_vport(1).unwrap().mac, dev.config().mac(1));
    assert_eq!(cp.counters().late_answers, 1);
    assert_eq!(cp.counters().bad_entries, 1);
    cp.tear_down().unwrap();
    // Two requests were in flight with one request buffer: the device read the ghost's request
    // after the real one overwrote it, and refused it (too short for its header). That refusal
    // is the one error.
    assert!(dev.stats().device.hwc_errors.get() <= 1);
    assert_eq!(dev.stats().device.cq_stalls.get(), 0);
}
