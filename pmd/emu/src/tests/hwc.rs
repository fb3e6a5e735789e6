//! The hardware channel: the SMC handshake (ESTABLISH/DESTROY_HWC and their error paths), the
//! INIT events, every command with its success and refusal cases, request counting by type,
//! multi-message DMA regions, and COMPLETION events of an armed HWC CQ.

use std::collections::BTreeMap;

use gdma_defs::*;

use super::util::*;
use crate::dma::PAGE;
use crate::fault::COMMAND_NAMES;
use crate::testdrv::{Ring, TestDriver};
use crate::{Device, DeviceConfig};

const FAIL: u32 = GDMA_STATUS_FAILURE;

/// Expected request counts by message type, checked against `Stats::requests` for every type
/// the device knows: proves what the driver did, and did not, ask for.
#[derive(Default)]
struct Counts(BTreeMap<u32, u64>);

impl Counts {
    fn add(&mut self, t: u32, n: u64) {
        *self.0.entry(t).or_default() += n;
    }

    fn check(&self, dev: &Device) {
        for (name, t) in COMMAND_NAMES {
            let want = self.0.get(t).copied().unwrap_or(0);
            assert_eq!(dev.stats().requests(*t), want, "{name} requests");
        }
    }
}

/// Status of a typed request that must be answered.
fn status<R: HwcRequest>(d: &mut TestDriver, dev: GdmaDevId, body: &R, trailing: &[u8]) -> u32 {
    d.request(dev, body, trailing).unwrap().0
}

#[test]
fn establish_posts_the_init_events_in_order() {
    let dev = Device::start(config(2)).unwrap();
    let mut d = TestDriver::new(&dev, MEM);
    let pages: Vec<u64> = (0..4).map(|_| d.alloc(PAGE, PAGE).unwrap()).collect();
    let e = EstablishHwc {
        eq_pfn: pages[0] >> 12,
        cq_pfn: pages[1] >> 12,
        rq_pfn: pages[2] >> 12,
        sq_pfn: pages[3] >> 12,
        msix_index: 0,
        reset_vf: false,
    };
    let bar = Bar::of(&dev);
    let h = bar.smc_request(&e.encode().unwrap());
    assert_eq!(h.check_response(SMC_MSG_TYPE_ESTABLISH_HWC, 0), Ok(()));
    let r = OwnerRing::for_eq_bytes(PAGE as u32).unwrap();
    let mut eq = Ring { id: 0, iova: pages[0], ring: r, entry: 16, head: r.initial_index() };
    let mut events = Vec::new();
    while events.last().map(|e: &(u8, [u32; 3])| e.0) != Some(GDMA_EQE_HWC_INIT_DONE) {
        wait_for("an INIT event", || match d.poll_eq(&mut eq).unwrap() {
            Some(ev) => {
                events.push(ev);
                true
            }
            None => false,
        });
    }
    assert_eq!(events.len(), 11, "{events:?}");
    let db = HwcInitEqIdDb(events[0].1[0]);
    assert_eq!((events[0].0, db.eq_id(), db.doorbell()), (GDMA_EQE_HWC_INIT_EQ_ID_DB, 1, 0));
    let data: Vec<(u8, u32)> = events[1..10]
        .iter()
        .map(|(t, x)| {
            assert_eq!(*t, GDMA_EQE_HWC_INIT_DATA);
            (HwcInitTypeData(x[0]).ty(), HwcInitTypeData(x[0]).value())
        })
        .collect();
    let (pdid, mkey) = (data[7].1, data[8].1);
    assert_eq!(
        data,
        [
            (HWC_INIT_DATA_CQID, 2),
            (HWC_INIT_DATA_RQID, 3),
            (HWC_INIT_DATA_SQID, 4),
            (HWC_INIT_DATA_QUEUE_DEPTH, 1),
            (HWC_INIT_DATA_MAX_REQUEST, 4096),
            (HWC_INIT_DATA_MAX_RESPONSE, 4096),
            (HWC_INIT_DATA_MAX_NUM_CQS, crate::hwc::MAX_NUM_CQS),
            (HWC_INIT_DATA_PDID, pdid),
            (HWC_INIT_DATA_GPA_MKEY, mkey),
        ]
    );
    assert_ne!(mkey, 0);
    // The registration reports the same protection domain.
    d.establish().unwrap();
    d.register().unwrap();
    assert_eq!(d.pdid, pdid);
}

#[test]
fn init_data_carries_the_registered_memory_key() {
    // §7: the gpa_mkey of REGISTER_DEVICE and the one INIT_DATA gives the HWC are the same key
    // covering all DMA space. INIT_DATA carries 24 bits, so the key must fit in them.
    let dev = Device::start(config(2)).unwrap();
    let mut d = TestDriver::new(&dev, MEM);
    d.establish().unwrap();
    let init_mkey = d.gpa_mkey;
    d.register().unwrap();
    assert_eq!(d.gpa_mkey, init_mkey);
    assert_eq!(d.gpa_mkey >> 24, 0);
}

#[test]
fn smc_refuses_bad_requests_and_destroy_hwc_silences_the_channel() {
    let dev = Device::start(config(2)).unwrap();
    let mut d = TestDriver::new(&dev, MEM);
    let bar = Bar::of(&dev);
    // ESTABLISH_HWC naming pages outside every mapping: refused, nothing built.
    let bad = EstablishHwc { eq_pfn: 1, cq_pfn: 2, rq_pfn: 3, sq_pfn: 4, ..Default::default() };
    let h = bar.smc_request(&bad.encode().unwrap());
    assert_eq!((h.msg_type(), h.is_response(), h.status()), (SMC_MSG_TYPE_ESTABLISH_HWC, true, 1));
    // An SMC message type the device does not serve: refused.
    let mut other = [0u32; SMC_APERTURE_DWORDS];
    other[SMC_LAST_DWORD] = SmcProtoHdr::request(
        SMC_MSG_TYPE_REPORT_HWC_TIMEOUT,
        SMC_MSG_TYPE_REPORT_HWC_TIMEOUT_VERSION,
        false,
    )
    .0;
    let h = bar.smc_request(&other);
    assert_eq!(
        (h.msg_type(), h.is_response(), h.status()),
        (SMC_MSG_TYPE_REPORT_HWC_TIMEOUT, true, 1)
    );

    // A good channel works.
    let mut hwc = RawHwc::establish(&dev, &mut d).unwrap();
    let (r, _) = hwc.request(&d, &typed_msg(HWC_DEV_ID, 1, &GdmaListDevicesReq, &[]));
    assert_eq!(r.status, 0);

    // DESTROY_HWC: answered; afterwards the old HWC SQ id names nothing, so a request posted on
    // it is counted as a doorbell for an unknown queue and never answered.
    let mut destroy = [0u32; SMC_APERTURE_DWORDS];
    destroy[SMC_LAST_DWORD] = destroy_hwc_request(false).0;
    let h = bar.smc_request(&destroy);
    assert_eq!(h.check_response(SMC_MSG_TYPE_DESTROY_HWC, 0), Ok(()));
    // A barrier: the device serves the SMC before the doorbells of the same pass, so the CQ
    // doorbell of the last round trip may reach it, for a queue that is gone, just after the
    // DESTROY_HWC answer and count one more than the wait below expects (the likely cause of
    // a timeout CI hit once under load). One more SMC round trip, refused, is served in a later
    // pass.
    let h = bar.smc_request(&other);
    assert_eq!((h.msg_type(), h.status()), (SMC_MSG_TYPE_REPORT_HWC_TIMEOUT, 1));
    let unknown = dev.stats().device.doorbells_unknown_queue.get();
    hwc.post_msg(&d, &typed_msg(HWC_DEV_ID, 2, &GdmaListDevicesReq, &[]));
    wait_for("the stale doorbell", || {
        dev.stats().device.doorbells_unknown_queue.get() == unknown + 1
    });
    assert!(hwc.poll_answer(&d).is_none());
    assert_eq!(dev.stats().requests(GDMA_LIST_DEVICES), 1);

    // A new ESTABLISH_HWC brings the channel back.
    let mut hwc = RawHwc::establish(&dev, &mut d).unwrap();
    let (r, b) = hwc.request(&d, &typed_msg(HWC_DEV_ID, 3, &GdmaListDevicesReq, &[]));
    assert_eq!((r.status, r.response.hwc_msg_id), (0, 3));
    let list: GdmaListDevicesResp = read_zero_extended(&b);
    assert_eq!(list.num_of_devs, 2);
    assert_eq!(dev.stats().requests(GDMA_LIST_DEVICES), 2);
}

#[test]
fn generic_commands_answer_and_refuse_as_specified() {
    let mut cfg = config(2);
    cfg.max_queues = 4;
    let dev = Device::start(cfg.clone()).unwrap();
    let mut d = TestDriver::new(&dev, MEM);
    let mut n = Counts::default();
    d.establish().unwrap();
    let (init_pdid, init_mkey) = (d.pdid, d.gpa_mkey);

    // VERIFY_VF_DRIVER_VERSION: protocol 1 and the self-reset capability; a driver that only
    // speaks version 2 is refused.
    let v = GdmaVerifyVerReq {
        protocol_ver_min: 1,
        protocol_ver_max: 1,
        os_type: GDMA_OS_TYPE_LINUX,
        ..Default::default()
    };
    let r = d.ok("VERIFY", HWC_DEV_ID, &v, &[]).unwrap();
    assert_eq!(r.gdma_protocol_ver, 1);
    assert_eq!(r.pf_cap_flags1 & GDMA_PF_CAP_FLAG_1_EQE_REQUEST_VF_SELF_RESET, 0x80);
    let v2 = GdmaVerifyVerReq { protocol_ver_min: 2, protocol_ver_max: 2, ..v };
    assert_eq!(status(&mut d, HWC_DEV_ID, &v2, &[]), FAIL);
    n.add(GDMA_VERIFY_VF_DRIVER_VERSION, 2);

    // LIST_DEVICES: the HWC and one MANA device.
    let l = d.ok("LIST_DEVICES", HWC_DEV_ID, &GdmaListDevicesReq, &[]).unwrap();
    assert_eq!(l.num_of_devs, 2);
    assert_eq!(l.find(GDMA_DEVICE_HWC), Some(HWC_DEV_ID));
    assert_eq!(l.find(GDMA_DEVICE_MANA), Some(TestDriver::MANA));
    n.add(GDMA_LIST_DEVICES, 1);

    // QUERY_MAX_RESOURCES: limits derived from the configuration.
    let m = d.ok("QUERY_MAX_RESOURCES", HWC_DEV_ID, &GdmaQueryMaxResourcesReq, &[]).unwrap();
    let qs = cfg.vports as u32 * cfg.max_queues;
    assert_eq!((m.max_sq, m.max_rq, m.max_cq), (qs, qs, 2 * qs));
    assert_eq!((m.max_eq, m.max_db, m.max_msix), (64, crate::bar::DB_PAGES, 65));
    n.add(GDMA_QUERY_MAX_RESOURCES, 1);

    // REGISTER_DEVICE: only for the MANA device; the INIT_DATA domain and key; idempotent.
    assert_eq!(status(&mut d, HWC_DEV_ID, &GdmaRegisterDeviceReq, &[]), FAIL);
    let reg = d.ok("REGISTER", TestDriver::MANA, &GdmaRegisterDeviceReq, &[]).unwrap();
    assert_eq!(reg.pdid, init_pdid);
    assert_eq!(reg.gpa_mkey & 0xff_ffff, init_mkey, "INIT_DATA carries the low 24 bits");
    assert_ne!(reg.db_id, 0, "page 0 belongs to the HWC");
    let again = d.ok("REGISTER", TestDriver::MANA, &GdmaRegisterDeviceReq, &[]).unwrap();
    assert_eq!(again, reg);
    (d.pdid, d.gpa_mkey, d.db_id) = (reg.pdid, reg.gpa_mkey, reg.db_id);
    n.add(GDMA_REGISTER_DEVICE, 3);

    // ALLOCATE / DESTROY_RESOURCE_RANGE: doorbell pages, one at a time.
    let alloc = |num, ty| GdmaAllocateResourceRangeReq {
        resource_type: ty,
        num_resources: num,
        alignment: 1,
        allocated_resources: 0,
    };
    let p = d.ok("ALLOC", HWC_DEV_ID, &alloc(1, GDMA_RESOURCE_DOORBELL_PAGE), &[]).unwrap();
    let page = p.allocated_resources;
    assert!(page != 0 && page != reg.db_id && page < crate::bar::DB_PAGES, "{page}");
    assert_eq!(status(&mut d, HWC_DEV_ID, &alloc(2, GDMA_RESOURCE_DOORBELL_PAGE), &[]), FAIL);
    assert_eq!(status(&mut d, HWC_DEV_ID, &alloc(1, 26), &[]), FAIL);
    n.add(GDMA_ALLOCATE_RESOURCE_RANGE, 3);
    let destroy = |p| GdmaDestroyResourceRangeReq {
        resource_type: GDMA_RESOURCE_DOORBELL_PAGE,
        num_resources: 1,
        allocated_resources: p,
    };
    assert_eq!(status(&mut d, HWC_DEV_ID, &destroy(page), &[]), 0);
    assert_eq!(status(&mut d, HWC_DEV_ID, &destroy(page), &[]), FAIL, "already free");
    assert_eq!(status(&mut d, HWC_DEV_ID, &destroy(0), &[]), FAIL, "the HWC's page");
    assert_eq!(status(&mut d, HWC_DEV_ID, &destroy(reg.db_id), &[]), FAIL, "the device's page");
    n.add(GDMA_DESTROY_RESOURCE_RANGE, 4);

    // CREATE / DESTROY_DMA_REGION.
    let buf = d.alloc(2 * PAGE, PAGE).unwrap();
    let region = |len: u64, count: u32, list: u32, ty: u32| GdmaCreateDmaRegionReq {
        length: len,
        offset_in_page: 0,
        gdma_page_type: ty,
        page_count: count,
        page_addr_list_len: list,
    };
    let pages = [buf, buf + PAGE as u64];
    let r = d.ok("REGION", HWC_DEV_ID, &region(8192, 2, 2, 0), pages.as_bytes()).unwrap();
    assert_ne!(r.dma_region_handle, GDMA_INVALID_DMA_REGION);
    for (bad, why) in [
        ((region(8192, 2, 2, 0), [buf + 8, buf + PAGE as u64]), "unaligned page"),
        ((region(8192, 2, 2, 1), pages), "page type"),
        ((region(0, 0, 0, 0), pages), "no pages"),
        ((region(8192, 1, 2, 0), pages), "more pages than the count"),
        ((region(3 * 4096, 2, 2, 0), pages), "longer than its pages"),
    ] {
        assert_eq!(status(&mut d, HWC_DEV_ID, &bad.0, bad.1.as_bytes()), FAIL, "{why}");
    }
    let destroy_region = GdmaDestroyDmaRegionReq { dma_region_handle: r.dma_region_handle };
    assert_eq!(status(&mut d, HWC_DEV_ID, &destroy_region, &[]), 0);
    assert_eq!(status(&mut d, HWC_DEV_ID, &destroy_region, &[]), FAIL, "gone");
    n.add(GDMA_CREATE_DMA_REGION, 6);
    n.add(GDMA_DESTROY_DMA_REGION, 2);

    // CREATE_QUEUE: EQs only, with this device's domain and an allocated doorbell page.
    let eq = d.create_eq(4096).unwrap();
    assert!(eq.id >= crate::objects::FIRST_QUEUE_ID);
    n.add(GDMA_CREATE_DMA_REGION, 1);
    n.add(GDMA_CREATE_QUEUE, 1);
    let ring = d.alloc(PAGE, PAGE).unwrap();
    let rh = d.dma_region(ring, PAGE).unwrap();
    n.add(GDMA_CREATE_DMA_REGION, 1);
    let q = GdmaCreateQueueReq {
        queue_type: GDMA_EQ,
        pdid: d.pdid,
        doorbell_id: d.db_id,
        gdma_region: rh,
        queue_size: 4096,
        log2_throttle_limit: LOG2_EQ_THROTTLE,
        ..Default::default()
    };
    for (bad, why) in [
        (GdmaCreateQueueReq { queue_type: GDMA_CQ, ..q }, "a CQ"),
        (GdmaCreateQueueReq { pdid: d.pdid + 1, ..q }, "another domain"),
        (GdmaCreateQueueReq { doorbell_id: 77, ..q }, "an unallocated doorbell page"),
        (GdmaCreateQueueReq { queue_size: 3000, ..q }, "not a power of two"),
        (GdmaCreateQueueReq { queue_size: 8192, ..q }, "larger than its region"),
        (GdmaCreateQueueReq { gdma_region: rh + 1000, ..q }, "an unknown region"),
    ] {
        assert_eq!(status(&mut d, HWC_DEV_ID, &bad, &[]), FAIL, "{why}");
    }
    // The refusals did not take the region: it still makes a queue.
    let eq2 = d.ok("CREATE_QUEUE", HWC_DEV_ID, &q, &[]).unwrap().queue_index;
    assert_ne!(eq2, eq.id);
    assert_eq!(status(&mut d, HWC_DEV_ID, &q, &[]), FAIL, "the region belongs to the queue now");
    n.add(GDMA_CREATE_QUEUE, 8);

    // GENERATE_TEST_EQE: a TEST_EVENT on the named EQ (data path or HWC); unknown EQs refused.
    let mut eqr = eq;
    d.ok("TEST_EQE", HWC_DEV_ID, &GdmaGenerateTestEventReq { queue_index: eq.id }, &[]).unwrap();
    wait_for("TEST_EVENT", || d.poll_eq(&mut eqr).unwrap() == Some((GDMA_EQE_TEST_EVENT, [0; 3])));
    d.hwc_events.clear();
    d.ok("TEST_EQE", HWC_DEV_ID, &GdmaGenerateTestEventReq { queue_index: d.hwc_eq.id }, &[])
        .unwrap();
    assert_eq!(d.hwc_events, [(GDMA_EQE_TEST_EVENT, [0; 3])]);
    assert_eq!(
        status(&mut d, HWC_DEV_ID, &GdmaGenerateTestEventReq { queue_index: 999 }, &[]),
        FAIL
    );
    n.add(GDMA_GENERATE_TEST_EQE, 3);

    // GENERATE_RESET_REQUEST_EQE naming another EQ than the HWC's: refused, nothing happens.
    let rr = GdmaGenerateResetRequestEqeReq { eq_id: eq.id, data: 0 };
    assert_eq!(status(&mut d, HWC_DEV_ID, &rr, &[]), FAIL);
    assert_eq!(dev.stats().device.resets.get(), 0);
    n.add(GDMA_GENERATE_RESET_REQUEST_EQE, 1);

    // DISABLE_QUEUE: EQs; twice or another type refused; a disabled EQ takes no test event.
    let dis = |t, id| GdmaDisableQueueReq {
        queue_type: t,
        queue_index: id,
        alloc_res_id_on_creation: GDMA_ALLOC_RES_ID_ON_CREATION,
    };
    assert_eq!(status(&mut d, HWC_DEV_ID, &dis(GDMA_CQ, eq2), &[]), FAIL);
    assert_eq!(status(&mut d, HWC_DEV_ID, &dis(GDMA_EQ, eq2), &[]), 0);
    assert_eq!(status(&mut d, HWC_DEV_ID, &dis(GDMA_EQ, eq2), &[]), FAIL);
    n.add(GDMA_DISABLE_QUEUE, 3);
    assert_eq!(
        status(&mut d, HWC_DEV_ID, &GdmaGenerateTestEventReq { queue_index: eq2 }, &[]),
        FAIL
    );
    n.add(GDMA_GENERATE_TEST_EQE, 1);

    // DEREGISTER_DEVICE: once; afterwards queues cannot be created.
    assert_eq!(status(&mut d, HWC_DEV_ID, &GdmaDeregisterDeviceReq, &[]), FAIL, "HWC device id");
    assert_eq!(status(&mut d, TestDriver::MANA, &GdmaDeregisterDeviceReq, &[]), 0);
    assert_eq!(status(&mut d, TestDriver::MANA, &GdmaDeregisterDeviceReq, &[]), FAIL);
    n.add(GDMA_DEREGISTER_DEVICE, 3);
    let ring = d.alloc(PAGE, PAGE).unwrap();
    let rh = d.dma_region(ring, PAGE).unwrap();
    assert_eq!(status(&mut d, HWC_DEV_ID, &GdmaCreateQueueReq { gdma_region: rh, ..q }, &[]), FAIL);
    n.add(GDMA_CREATE_DMA_REGION, 1);
    n.add(GDMA_CREATE_QUEUE, 1);

    n.check(&dev);
    assert_eq!(dev.stats().device.hwc_unknown.get(), 0);
}

#[test]
fn mana_commands_answer_and_refuse_as_specified() {
    let mut cfg = config(2);
    cfg.max_queues = 2;
    let dev = Device::start(cfg.clone()).unwrap();
    let mut d = TestDriver::new(&dev, MEM);
    let mut n = Counts::default();
    d.establish().unwrap();
    d.register().unwrap();
    n.add(GDMA_VERIFY_VF_DRIVER_VERSION, 1);
    n.add(GDMA_LIST_DEVICES, 1);
    n.add(GDMA_REGISTER_DEVICE, 1);

    // QUERY_DEV_CONFIG.
    let c =
        d.ok("QUERY_DEV_CONFIG", TestDriver::MANA, &ManaQueryDeviceCfgReq::default(), &[]).unwrap();
    assert_eq!((c.max_num_vports, c.adapter_mtu), (2, 1514));
    assert_eq!(c.effective_adapter_mtu(), cfg.adapter_mtu);
    n.add(MANA_QUERY_DEV_CONFIG, 1);

    // QUERY_VPORT_CONFIG: each vport's MAC and handle; an index past the last refused.
    let mut handles = Vec::new();
    for i in 0..2u32 {
        let q = d
            .ok("QUERY_VPORT", TestDriver::MANA, &ManaQueryVportCfgReq { vport_index: i }, &[])
            .unwrap();
        assert_eq!(q.mac_addr, cfg.mac(i as u16));
        assert_eq!((q.max_num_sq, q.max_num_rq, q.num_indirection_ent), (2, 2, 64));
        handles.push(q.vport);
    }
    assert_ne!(handles[0], handles[1]);
    assert_eq!(
        status(&mut d, TestDriver::MANA, &ManaQueryVportCfgReq { vport_index: 2 }, &[]),
        FAIL
    );
    n.add(MANA_QUERY_VPORT_CONFIG, 3);

    // CONFIG_VPORT_TX: this device's domain and an allocated doorbell page; the offset the
    // OOBs must carry.
    let tx = ManaConfigVportTxReq { vport: handles[0], pdid: d.pdid, doorbell_pageid: d.db_id };
    for (bad, why) in [
        (ManaConfigVportTxReq { pdid: d.pdid + 1, ..tx }, "another domain"),
        (ManaConfigVportTxReq { doorbell_pageid: 99, ..tx }, "an unallocated doorbell page"),
        (ManaConfigVportTxReq { vport: 0x1234, ..tx }, "an unknown vport"),
    ] {
        assert_eq!(status(&mut d, TestDriver::MANA, &bad, &[]), FAIL, "{why}");
    }
    let r = d.ok("CONFIG_VPORT_TX", TestDriver::MANA, &tx, &[]).unwrap();
    assert_eq!((r.tx_vport_offset, r.short_form_allowed), (0, 1));
    n.add(MANA_CONFIG_VPORT_TX, 4);

    // CREATE_WQ_OBJ: an SQ needs CONFIG_VPORT_TX on its vport first.
    let sq_on_1 = d.create_wq(handles[1], GdmaQueueType::Sq, 4096, 4096, None);
    assert!(matches!(sq_on_1, Err(crate::testdrv::TdError::Status { status: FAIL, .. })));
    n.add(GDMA_CREATE_DMA_REGION, 2);
    n.add(MANA_CREATE_WQ_OBJ, 1);
    // Refusals of a hand-made request leave both regions free for the good one.
    let wq_ring = d.alloc(4096, PAGE).unwrap();
    let cq_ring = d.alloc(4096, PAGE).unwrap();
    let wq_region = d.dma_region(wq_ring, 4096).unwrap();
    let cq_region = d.dma_region(cq_ring, 4096).unwrap();
    n.add(GDMA_CREATE_DMA_REGION, 2);
    let w = ManaCreateWqObjReq {
        vport: handles[0],
        wq_type: GDMA_SQ,
        reserved: 0,
        wq_gdma_region: wq_region,
        cq_gdma_region: cq_region,
        wq_size: 4096,
        cq_size: 4096,
        cq_moderation_ctx_id: 0,
        cq_parent_qid: GDMA_CQ_NO_EQ,
    };
    for (bad, why) in [
        (ManaCreateWqObjReq { wq_type: GDMA_CQ, ..w }, "a CQ is not a WQ"),
        (ManaCreateWqObjReq { cq_parent_qid: 999, ..w }, "an unknown parent EQ"),
        (ManaCreateWqObjReq { wq_size: 6000, ..w }, "not a power of two"),
        (ManaCreateWqObjReq { cq_size: 8192, ..w }, "larger than its region"),
        (ManaCreateWqObjReq { vport: 0x1234, ..w }, "an unknown vport"),
    ] {
        assert_eq!(status(&mut d, TestDriver::MANA, &bad, &[]), FAIL, "{why}");
    }
    let sq = d.ok("CREATE_WQ_OBJ", TestDriver::MANA, &w, &[]).unwrap();
    assert!(sq.wq_id >= 24 && sq.cq_id >= 24, "{sq:?}");
    n.add(MANA_CREATE_WQ_OBJ, 6);
    // Queue limit per vport (max_queues = 2).
    let rq = d.create_wq(handles[0], GdmaQueueType::Rq, 4096, 4096, None).unwrap();
    let rq2 = d.create_wq(handles[0], GdmaQueueType::Rq, 4096, 4096, None).unwrap();
    let rq3 = d.create_wq(handles[0], GdmaQueueType::Rq, 4096, 4096, None);
    assert!(rq3.is_err(), "a third RQ on a vport with max_queues 2");
    n.add(GDMA_CREATE_DMA_REGION, 6);
    n.add(MANA_CREATE_WQ_OBJ, 3);
    n.add(GDMA_ALLOCATE_RESOURCE_RANGE, 2);

    // CONFIG_VPORT_RX: handles must be RQs of the vport being configured.
    assert_eq!(config_rx_table(&mut d, handles[1], rq.handle, &[rq.handle], None, false), FAIL);
    assert_eq!(config_rx_table(&mut d, handles[0], sq.wq_obj, &[rq.handle], None, false), FAIL);
    assert_eq!(config_rx_table(&mut d, handles[0], rq.handle, &[sq.wq_obj], None, false), FAIL);
    assert_eq!(
        config_rx_table(&mut d, handles[0], rq.handle, &[rq.handle, rq2.handle], None, false),
        0
    );
    n.add(MANA_CONFIG_VPORT_RX, 4);

    // FENCE_RQ: a CQE_RX_OBJECT_FENCE on the RQ's CQ; an SQ cannot be fenced.
    let mut rqc = rq.cq;
    d.ok("FENCE_RQ", TestDriver::MANA, &ManaFenceRqReq { wq_obj_handle: rq.handle }, &[]).unwrap();
    let f = next(&d, &mut rqc);
    assert_eq!(
        (cqe_type(&f), f.info.wq_num(), f.info.is_sq()),
        (CQE_RX_OBJECT_FENCE, rq.wq.id, false)
    );
    assert_eq!(
        status(&mut d, TestDriver::MANA, &ManaFenceRqReq { wq_obj_handle: sq.wq_obj }, &[]),
        FAIL
    );
    n.add(MANA_FENCE_RQ, 2);

    // QUERY_GF_STAT reports the device's counters.
    let g = d
        .ok(
            "GF_STAT",
            TestDriver::MANA,
            &ManaQueryGfStatReq { req_stats: STATISTICS_FLAGS_ALL },
            &[],
        )
        .unwrap();
    assert_eq!(g.reported_stats, STATISTICS_FLAGS_ALL);
    assert_eq!((g.hc_tx_ucast_pkts, g.hc_rx_ucast_pkts, g.tx_err_gdma), (0, 0, 0));
    n.add(MANA_QUERY_GF_STAT, 1);

    // DESTROY_WQ_OBJ: the type must match; once; afterwards the SQ id names nothing.
    let dw = |t, h| ManaDestroyWqObjReq { wq_type: t, reserved: 0, wq_obj_handle: h };
    assert_eq!(status(&mut d, TestDriver::MANA, &dw(GDMA_RQ, sq.wq_obj), &[]), FAIL);
    assert_eq!(status(&mut d, TestDriver::MANA, &dw(GDMA_SQ, sq.wq_obj), &[]), 0);
    assert_eq!(status(&mut d, TestDriver::MANA, &dw(GDMA_SQ, sq.wq_obj), &[]), FAIL);
    n.add(MANA_DESTROY_WQ_OBJ, 3);
    let unknown = dev.stats().device.doorbells_unknown_queue.get();
    d.ring_doorbell(d.db_id, DB_SQ, WqDoorbell::sq(sq.wq_id, 32).0);
    settle(&mut d);
    n.add(GDMA_QUERY_MAX_RESOURCES, 2);
    assert_eq!(dev.stats().device.doorbells_unknown_queue.get(), unknown + 1);

    n.check(&dev);
}

#[test]
fn dma_regions_beyond_504_pages_take_add_pages_messages() {
    let dev = Device::start(config(2)).unwrap();
    let mut d = TestDriver::new(&dev, MEM);
    d.establish().unwrap();
    d.register().unwrap();
    // A 4 MiB region: 1024 pages = 504 in CREATE_DMA_REGION, then 505 and 15 in ADD_PAGES.
    let len = 1024 * PAGE;
    let base = d.alloc(len, PAGE).unwrap();
    let pages: Vec<u64> = (0..1024).map(|i| base + (i * PAGE) as u64).collect();
    let create = GdmaCreateDmaRegionReq {
        length: len as u64,
        offset_in_page: 0,
        gdma_page_type: GDMA_PAGE_TYPE_4K,
        page_count: 1024,
        page_addr_list_len: 504,
    };
    let (s, r) = d.request(HWC_DEV_ID, &create, pages[..504].as_bytes()).unwrap();
    assert_eq!(s, GDMA_STATUS_MORE_ENTRIES);
    let handle = r.dma_region_handle;
    let add = |n: usize| GdmaDmaRegionAddPagesReq {
        dma_region_handle: handle,
        page_addr_list_len: n as u32,
        reserved3: 0,
    };
    // An incomplete region cannot back a queue.
    let eq = GdmaCreateQueueReq {
        queue_type: GDMA_EQ,
        pdid: d.pdid,
        doorbell_id: d.db_id,
        gdma_region: handle,
        queue_size: len as u32,
        log2_throttle_limit: LOG2_EQ_THROTTLE,
        ..Default::default()
    };
    assert_eq!(d.request(HWC_DEV_ID, &eq, &[]).unwrap().0, FAIL);
    let (s, ()) = d.request(HWC_DEV_ID, &add(505), pages[504..1009].as_bytes()).unwrap();
    assert_eq!(s, GDMA_STATUS_MORE_ENTRIES);
    // More pages than announced: refused, the region unchanged.
    let (s, ()) = d.request(HWC_DEV_ID, &add(16), pages[..16].as_bytes()).unwrap();
    assert_eq!(s, FAIL);
    let (s, ()) = d.request(HWC_DEV_ID, &add(15), pages[1009..].as_bytes()).unwrap();
    assert_eq!(s, GDMA_STATUS_SUCCESS);
    let (s, ()) = d.request(HWC_DEV_ID, &add(1), pages[..1].as_bytes()).unwrap();
    assert_eq!(s, FAIL, "the region is complete");

    // The whole region backs a 4 MiB EQ: a test event lands in its first slot.
    let q = d.ok("CREATE_QUEUE", HWC_DEV_ID, &eq, &[]).unwrap();
    let ring = OwnerRing::for_eq_bytes(len as u32).unwrap();
    let mut ev =
        Ring { id: q.queue_index, iova: base, ring, entry: 16, head: ring.initial_index() };
    d.ok("TEST_EQE", HWC_DEV_ID, &GdmaGenerateTestEventReq { queue_index: ev.id }, &[]).unwrap();
    assert_eq!(d.poll_eq(&mut ev).unwrap(), Some((GDMA_EQE_TEST_EVENT, [0; 3])));
    // The queue owns the region now: destroying it is refused.
    let destroy = GdmaDestroyDmaRegionReq { dma_region_handle: handle };
    assert_eq!(d.request(HWC_DEV_ID, &destroy, &[]).unwrap().0, FAIL);

    // An incomplete region can be destroyed (the driver gave up half-way).
    let (s, r2) = d.request(HWC_DEV_ID, &create, pages[..504].as_bytes()).unwrap();
    assert_eq!(s, GDMA_STATUS_MORE_ENTRIES);
    let destroy2 = GdmaDestroyDmaRegionReq { dma_region_handle: r2.dma_region_handle };
    assert_eq!(d.request(HWC_DEV_ID, &destroy2, &[]).unwrap().0, 0);

    // The test driver's batching gives the same message counts: 1200 pages = 504 + 505 + 191.
    let big = d.alloc(1200 * PAGE, PAGE).unwrap();
    d.dma_region(big, 1200 * PAGE).unwrap();
    let st = dev.stats();
    assert_eq!(st.requests(GDMA_CREATE_DMA_REGION), 3);
    assert_eq!(st.requests(GDMA_DMA_REGION_ADD_PAGES), 4 + 2);
    assert_eq!(st.requests(GDMA_DESTROY_DMA_REGION), 2);
}

#[test]
fn an_armed_hwc_cq_signals_one_completion_event() {
    let dev = Device::start(config(2)).unwrap();
    let mut d = TestDriver::new(&dev, MEM);
    let mut h = RawHwc::establish(&dev, &mut d).unwrap();
    let list = |id| typed_msg(HWC_DEV_ID, id, &GdmaListDevicesReq, &[]);
    // Not armed: no COMPLETION event (the next answer proves the previous one was complete).
    h.request(&d, &list(1));
    h.request(&d, &list(2));
    assert_eq!(h.completions, []);
    // Armed: one COMPLETION naming the HWC CQ, then disarmed.
    d.ring_cq(&h.cq, 0, true);
    h.request(&d, &list(3));
    wait_for("the COMPLETION event", || {
        h.poll_answer(&d);
        !h.completions.is_empty()
    });
    assert_eq!(h.completions, [h.cq.id]);
    h.request(&d, &list(4));
    h.request(&d, &list(5));
    assert_eq!(h.completions, [h.cq.id]);
    // Arming behind the device (CQEs not yet consumed) fires at once.
    let behind = h.cq;
    h.post_msg(&d, &list(6));
    let (_, r, _) = h.wait_answer(&d);
    assert_eq!(r.response.hwc_msg_id, 6);
    d.ring_cq(&behind, 0, true);
    wait_for("the immediate COMPLETION event", || {
        h.poll_answer(&d);
        h.completions.len() == 2
    });
    assert_eq!(h.completions, [h.cq.id, h.cq.id]);
    assert_eq!(h.events, []);
}

#[test]
fn every_config_value_is_reported_back() {
    // Non-default configuration values are what the commands report.
    let mut cfg = DeviceConfig::new(4, crate::WireSpec::Pair);
    cfg.max_queues = 8;
    cfg.adapter_mtu = 9014;
    cfg.indirection_entries = 128;
    let dev = Device::start(cfg.clone()).unwrap();
    let mut d = TestDriver::new(&dev, MEM);
    d.establish().unwrap();
    d.register().unwrap();
    let c =
        d.ok("QUERY_DEV_CONFIG", TestDriver::MANA, &ManaQueryDeviceCfgReq::default(), &[]).unwrap();
    assert_eq!((c.max_num_vports, c.adapter_mtu), (4, 9014));
    for i in 0..4u32 {
        let q = d
            .ok("QUERY_VPORT", TestDriver::MANA, &ManaQueryVportCfgReq { vport_index: i }, &[])
            .unwrap();
        assert_eq!(q.mac_addr, cfg.mac(i as u16));
        assert_eq!((q.max_num_sq, q.num_indirection_ent), (8, 128));
    }
    let m = d.ok("QUERY_MAX_RESOURCES", HWC_DEV_ID, &GdmaQueryMaxResourcesReq, &[]).unwrap();
    assert_eq!((m.max_sq, m.max_rq), (32, 32));
}
