//! Every fault kind, injected with `Device::inject` (parsed from the words `mana-emu ctl ...
//! inject` takes): reset-request, fatal, remove/readd, sq-error, hwc-delay, fail-cmd, hostile,
//! clear.

use std::time::{Duration, Instant};

use gdma_defs::*;

use super::util::*;
use crate::bar::Bar0;
use crate::fault::Fault;
use crate::testdrv::{Completion, QueuePair, Ring, TdError, TestDriver};
use crate::{Device, DeviceConfig};

const FAIL: u32 = GDMA_STATUS_FAILURE;

fn fault(words: &str) -> Fault {
    words.parse().unwrap()
}

fn resets(dev: &Device) -> u64 {
    dev.stats().device.resets.get()
}

/// A configuration with short down times.
fn quick() -> DeviceConfig {
    let mut c = config(2);
    c.reset_down_time = Duration::from_millis(50);
    c.fatal_down_time = Duration::from_millis(50);
    c
}

/// Waits for event `ty` on the test driver's HWC EQ (keeping the driver's consumer index).
fn hwc_event(d: &mut TestDriver, ty: u8) -> [u32; 3] {
    let mut eq = d.hwc_eq;
    let mut data = None;
    wait_for("an HWC event", || match d.poll_eq(&mut eq).unwrap() {
        Some((t, x)) if t == ty => {
            data = Some(x);
            true
        }
        _ => false,
    });
    d.hwc_eq = eq;
    data.expect("waited")
}

#[test]
fn reset_request_silences_the_hwc_until_a_new_establish() {
    let mut cfg = config(2);
    cfg.reset_down_time = Duration::from_millis(200);
    let dev = Device::start(cfg).unwrap();
    let mut d = TestDriver::new(&dev, MEM);
    let bar = Bar::of(&dev);
    let mut h = RawHwc::establish(&dev, &mut d).unwrap();
    let list = |id| typed_msg(HWC_DEV_ID, id, &GdmaListDevicesReq, &[]);
    assert_eq!(h.request(&d, &list(1)).0.status, 0);

    dev.inject(fault("reset-request")).unwrap();
    wait_for("EQE 135", || {
        h.poll_rq_cqe(&d);
        !h.events.is_empty()
    });
    assert_eq!(h.events, [(GDMA_EQE_HWC_RESET_REQUEST, [0, 0, 0])]);
    // Until the device is back, its register page reads all ones (the driver's "not yet").
    assert_eq!(bar.reg_map(), [0xff; 40]);
    assert_eq!(d.smc_header().0, SHMEM_VF_RESET_STATE);
    // The channel no longer answers: a request posted now is never served, before or after
    // the device comes back.
    h.post_msg(&d, &list(2));
    wait_for("the reset", || resets(&dev) == 1);
    wait_for("the stale doorbell to be gone", || bar.doorbell(0, DB_SQ) == 0);
    assert!(h.poll_answer(&d).is_none());
    assert_eq!(dev.stats().requests(GDMA_LIST_DEVICES), 1);
    assert_eq!(bar.reg_map(), Bar0::reg_map().to_bytes(), "BAR0 as at power-on");

    // A new ESTABLISH_HWC is accepted and the channel serves again.
    let mut h = RawHwc::establish(&dev, &mut d).unwrap();
    let (r, _) = h.request(&d, &list(3));
    assert_eq!((r.status, r.response.hwc_msg_id), (0, 3));
    assert_eq!(dev.stats().requests(GDMA_LIST_DEVICES), 2);
}

#[test]
fn after_a_reset_every_queue_region_and_key_from_before_is_invalid() {
    let mut r = Rig::with(quick());
    let mut sq = r.sq(0);
    let mut rq = r.rq(1);
    r.d.config_rx(r.p[1].handle, &[rq.handle], None, false).unwrap();
    r.fill(&mut rq, 4, 2048);
    let spec = r.spec(&sq, 0);
    r.send(&mut sq, &raw_frame(r.p[1].mac, 64, 0), &spec);
    assert_eq!(cqe_type(&next(&r.d, &mut sq.cq)), CQE_TX_OKAY);
    let ring = r.d.alloc(4096, 4096).unwrap();
    let spare_region = r.d.dma_region(ring, 4096).unwrap();
    let spare_page = r.d.doorbell_page().unwrap();
    let (old_pdid, old_mkey, old_db) = (r.d.pdid, r.d.gpa_mkey, r.d.db_id);

    r.dev.inject(fault("reset-request")).unwrap();
    assert_eq!(hwc_event(&mut r.d, GDMA_EQE_HWC_RESET_REQUEST), [0, 0, 0]);
    wait_for("the reset", || resets(&r.dev) == 1);

    // A fresh channel and registration: a new protection domain and memory key.
    r.d.establish().unwrap();
    r.d.register().unwrap();
    assert_ne!(r.d.pdid, old_pdid);
    assert_ne!(r.d.gpa_mkey, old_mkey);
    assert_eq!(r.d.db_id, old_db, "the lowest free page again");

    // Queue ids from before name nothing.
    let unknown = r.dev.stats().device.doorbells_unknown_queue.get();
    let page = r.d.db_id;
    r.d.ring_doorbell(page, DB_SQ, WqDoorbell::sq(sq.wq.id, sq.wq.head + 32).0);
    r.d.ring_doorbell(page, DB_RQ, WqDoorbell::rq(rq.wq.id, rq.wq.head + 32).0);
    r.d.ring_doorbell(page, DB_CQ, CqEqDoorbell::cq(sq.cq.id, 0, true).0);
    settle(&mut r.d);
    assert_eq!(r.dev.stats().device.doorbells_unknown_queue.get(), unknown + 3);
    // Handles from before are unknown: region, WQ objects, doorbell page.
    let q = GdmaCreateQueueReq {
        queue_type: GDMA_EQ,
        pdid: r.d.pdid,
        doorbell_id: page,
        gdma_region: spare_region,
        queue_size: 4096,
        log2_throttle_limit: LOG2_EQ_THROTTLE,
        ..Default::default()
    };
    assert_eq!(r.d.request(HWC_DEV_ID, &q, &[]).unwrap().0, FAIL, "old region");
    let destroy = ManaDestroyWqObjReq { wq_type: GDMA_SQ, reserved: 0, wq_obj_handle: sq.handle };
    assert_eq!(r.d.request(TestDriver::MANA, &destroy, &[]).unwrap().0, FAIL, "old SQ object");
    let fence = ManaFenceRqReq { wq_obj_handle: rq.handle };
    assert_eq!(r.d.request(TestDriver::MANA, &fence, &[]).unwrap().0, FAIL, "old RQ object");
    let give_back = GdmaDestroyResourceRangeReq {
        resource_type: GDMA_RESOURCE_DOORBELL_PAGE,
        num_resources: 1,
        allocated_resources: spare_page,
    };
    assert_eq!(r.d.request(HWC_DEV_ID, &give_back, &[]).unwrap().0, FAIL, "old doorbell page");
    // Vport TX configuration is gone too: no SQ before CONFIG_VPORT_TX again.
    assert!(matches!(
        r.d.create_wq(r.p[0].handle, GdmaQueueType::Sq, 4096, 4096, None),
        Err(TdError::Status { status: FAIL, .. })
    ));
    assert_eq!(
        config_rx_table(&mut r.d, r.p[1].handle, rq.handle, &[rq.handle], None, false),
        FAIL,
        "old RQ object in steering"
    );

    // New queues work, and the old key is refused on them.
    r.p = [port(&mut r.d, 0), port(&mut r.d, 1)];
    let mut sq = r.sq(0);
    let spec = r.spec(&sq, 0);
    let buf = r.d.alloc(64, 64).unwrap();
    r.d.write(buf, &raw_frame(r.p[1].mac, 64, 1));
    r.d.put_wqe(
        &mut sq.wq,
        &tx_wqe(&TxOob::encode(&spec).unwrap(), &[Sge::new(buf, old_mkey, 64)]),
    );
    r.d.ring_sq(&sq.wq);
    assert_eq!(cqe_type(&next(&r.d, &mut sq.cq)), CQE_TX_GDMA_ERR, "old memory key");
    let mut sq = r.sq(0);
    let mut rq = r.rq(1);
    r.d.config_rx(r.p[1].handle, &[rq.handle], None, false).unwrap();
    let bufs = r.fill(&mut rq, 1, 2048);
    let f = raw_frame(r.p[1].mac, 64, 2);
    let spec = r.spec(&sq, 0);
    r.send(&mut sq, &f, &spec);
    assert_eq!(cqe_type(&next(&r.d, &mut sq.cq)), CQE_TX_OKAY);
    assert_eq!(rx_oob(&next(&r.d, &mut rq.cq)).cqe_hdr.cqe_type(), CQE_RX_OKAY);
    assert_eq!(read(&r.d, bufs[0], 64), f);
}

#[test]
fn the_reset_request_command_resets_like_the_fault() {
    let mut r = Rig::with(quick());
    let eq = r.d.hwc_eq.id;
    let req = GdmaGenerateResetRequestEqeReq { eq_id: eq, data: RESET_REQUEST_REVOKE_VTL0_VF };
    // Answered, and EQE 135 (with the data) came before the answer.
    r.d.hwc_events.clear();
    r.d.ok("RESET_REQUEST_EQE", HWC_DEV_ID, &req, &[]).unwrap();
    assert_eq!(r.d.hwc_events, [(GDMA_EQE_HWC_RESET_REQUEST, [1, 0, 0])]);
    wait_for("the reset", || resets(&r.dev) == 1);
    let old_pdid = r.d.pdid;
    r.d.establish().unwrap();
    r.d.register().unwrap();
    assert_ne!(r.d.pdid, old_pdid);
    assert_eq!(
        r.dev.stats().requests(GDMA_GENERATE_RESET_REQUEST_EQE),
        1,
        "counters survive resets"
    );
}

#[test]
fn fatal_reads_all_ones_then_the_device_resets_itself() {
    let mut r = Rig::with(quick());
    let mut sq = r.sq(0);
    let bar = Bar::of(&r.dev);
    r.dev.inject(fault("fatal 100")).unwrap();
    // BAR0 reads all ones at once (register map and SMC).
    assert_eq!(bar.reg_map(), [0xff; 40]);
    assert_eq!(bar.u32(0), SHMEM_VF_RESET_STATE);
    assert_eq!(r.d.smc_header().0, SHMEM_VF_RESET_STATE);
    assert_eq!(
        r.d.smc_header().check_response(SMC_MSG_TYPE_ESTABLISH_HWC, 0),
        Err(SmcError::DeviceReset)
    );
    assert!(r.dev.present(), "fatal is not a removal");
    // Work posted now is never done: the device is dead, then forgets everything.
    let spec = r.spec(&sq, 0);
    r.send(&mut sq, &raw_frame(r.p[1].mac, 64, 0), &spec);
    wait_for("the self-reset", || resets(&r.dev) == 1);
    assert_eq!(bar.reg_map(), Bar0::reg_map().to_bytes());
    RegMap::from_bytes(&bar.reg_map()).unwrap().validate().unwrap();
    assert_eq!(bar.smc_header().0, 0);
    let old_pdid = r.d.pdid;
    r.d.establish().unwrap();
    r.d.register().unwrap();
    assert_ne!(r.d.pdid, old_pdid);
    settle(&mut r.d);
    assert_eq!(r.dev.stats().vports[0].tx_packets.get(), 0);
    assert_eq!(drain(&r.d, &mut sq.cq), []);
}

#[test]
fn remove_makes_the_device_vanish_and_readd_brings_a_fresh_one() {
    let mut r = Rig::new();
    let bar = Bar::of(&r.dev);
    let old_pdid = r.d.pdid;
    r.dev.inject(fault("remove")).unwrap();
    assert!(!r.dev.present());
    assert_eq!(bar.reg_map(), [0xff; 40]);
    assert_eq!(r.d.smc_header().0, SHMEM_VF_RESET_STATE);
    // Gone means gone: nothing comes back by itself.
    std::thread::sleep(Duration::from_millis(20));
    assert!(!r.dev.present());
    assert_eq!(bar.u32(0), SHMEM_VF_RESET_STATE);
    assert_eq!(resets(&r.dev), 0);

    r.dev.inject(fault("readd")).unwrap();
    assert!(r.dev.present());
    assert_eq!(resets(&r.dev), 1);
    assert_eq!(bar.reg_map(), Bar0::reg_map().to_bytes());
    r.d.establish().unwrap();
    r.d.register().unwrap();
    assert_ne!(r.d.pdid, old_pdid);
    // A readd of a present device changes nothing.
    r.dev.inject(Fault::Readd).unwrap();
    assert_eq!(resets(&r.dev), 1);
    r.p = [port(&mut r.d, 0), port(&mut r.d, 1)];
    let mut sq = r.sq(0);
    let spec = r.spec(&sq, 0);
    r.send(&mut sq, &raw_frame(r.p[1].mac, 64, 0), &spec);
    assert_eq!(cqe_type(&next(&r.d, &mut sq.cq)), CQE_TX_OKAY);
}

#[test]
fn sq_error_disables_that_sq_only() {
    let mut r = Rig::new();
    let mut rq = r.rq(1);
    r.d.config_rx(r.p[1].handle, &[rq.handle], None, false).unwrap();
    let bufs = r.fill(&mut rq, 4, 2048);
    let mut bad = r.sq(0);
    let mut good = r.sq(0);
    let mac = r.p[1].mac;
    r.dev.inject(fault(&format!("sq-error {}", bad.wq.id))).unwrap();
    r.dev.inject(Fault::SqError { sq: 0x77_7777 }).unwrap(); // no such SQ: ignored
    let spec = r.spec(&bad, 0);
    let pos = r.send(&mut bad, &raw_frame(mac, 64, 0), &spec);
    let c = next(&r.d, &mut bad.cq);
    assert_eq!((cqe_type(&c), tx_pos(&c), c.info.wq_num()), (CQE_TX_GDMA_ERR, pos, bad.wq.id));
    r.send(&mut bad, &raw_frame(mac, 64, 1), &spec);
    r.settle();
    assert_eq!(drain(&r.d, &mut bad.cq), [], "disabled");
    // The other SQ keeps working.
    let f = raw_frame(mac, 64, 2);
    let spec = r.spec(&good, 0);
    r.send(&mut good, &f, &spec);
    assert_eq!(cqe_type(&next(&r.d, &mut good.cq)), CQE_TX_OKAY);
    assert_eq!(rx_oob(&next(&r.d, &mut rq.cq)).cqe_hdr.cqe_type(), CQE_RX_OKAY);
    assert_eq!(read(&r.d, bufs[0], 64), f);
    assert_eq!(r.dev.stats().device.sq_disabled.get(), 1);
    let g =
        r.d.ok(
            "GF_STAT",
            TestDriver::MANA,
            &ManaQueryGfStatReq { req_stats: STATISTICS_FLAGS_ALL },
            &[],
        )
        .unwrap();
    assert_eq!((g.tx_err_gdma, g.hc_tx_ucast_pkts), (1, 1));
}

#[test]
fn hwc_delay_answers_later_but_answers() {
    let dev = Device::start(config(2)).unwrap();
    let mut d = TestDriver::new(&dev, MEM);
    d.establish().unwrap();
    let delay = Duration::from_millis(150);
    dev.inject(fault("hwc-delay 150")).unwrap();
    for _ in 0..2 {
        // The device holds each answer back for the delay: a lower bound it guarantees.
        let t = Instant::now();
        let l = d.ok("LIST_DEVICES", HWC_DEV_ID, &GdmaListDevicesReq, &[]).unwrap();
        assert!(t.elapsed() >= delay, "{:?}", t.elapsed());
        assert_eq!(l.num_of_devs, 2);
    }
    dev.inject(fault("clear")).unwrap();
    d.register().unwrap();
    assert_eq!(dev.stats().requests(GDMA_LIST_DEVICES), 3);
    assert_eq!(dev.stats().device.hwc_errors.get(), 0);
}

#[test]
fn fail_cmd_fails_that_command_only() {
    let mut r = Rig::new();
    r.dev.inject(fault("fail-cmd create_wq_obj")).unwrap();
    let e = r.d.create_wq(r.p[0].handle, GdmaQueueType::Sq, 4096, 4096, None);
    assert!(matches!(e, Err(TdError::Status { status: FAIL, .. })), "{e:?}");
    assert_eq!(r.dev.stats().requests(MANA_CREATE_WQ_OBJ), 1, "received and counted");
    // Everything else is answered normally.
    r.d.doorbell_page().unwrap();
    port(&mut r.d, 0);
    settle(&mut r.d);
    // By number, replacing the previous one.
    r.dev.inject(fault(&format!("fail-cmd {GDMA_LIST_DEVICES}"))).unwrap();
    let (s, _) = r.d.request(HWC_DEV_ID, &GdmaListDevicesReq, &[]).unwrap();
    assert_eq!(s, FAIL);
    let sq = r.d.create_wq(r.p[0].handle, GdmaQueueType::Sq, 4096, 4096, None).unwrap();
    assert!(sq.wq.id >= 24);
    // Clear: all commands work again.
    r.dev.inject(fault("clear")).unwrap();
    let l = r.d.ok("LIST_DEVICES", HWC_DEV_ID, &GdmaListDevicesReq, &[]).unwrap();
    assert_eq!(l.num_of_devs, 2);
    assert_eq!(r.dev.stats().device.hwc_errors.get(), 2);
}

/// The honest completions of frame `k` of a batch: (TX data, RX data).
fn expected(
    tx_pos: u32,
    rx_pos: u32,
    len: u16,
) -> ([u32; CQE_DATA_DWORDS], [u32; CQE_DATA_DWORDS]) {
    let mut tx = TxCompOob::new(CQE_TX_OKAY);
    tx.offsets = TxCompOffsets::ZERO.with_tx_wqe_offset(tx_pos / 32);
    let mut rx = RxCompOob {
        cqe_hdr: ManaCqeHeader::new(CQE_RX_OKAY),
        rx_wqe_offset: rx_pos,
        ..Default::default()
    };
    rx.ppi[0].pkt_len = len;
    (tx.to_cqe_data(), rx.to_cqe_data())
}

/// A pair with one SQ and one RQ (RSS off), a TX buffer holding a 64-byte non-IP frame and 32
/// RX buffers; returns (rig, sq, rq, tx WQE, rx buffers).
fn traffic_rig() -> (Rig, QueuePair, QueuePair, Vec<u8>, Vec<u64>) {
    let mut r = Rig::new();
    let sq = r.sq(0);
    let rq = r.rq(1);
    r.d.config_rx(r.p[1].handle, &[rq.handle], None, false).unwrap();
    let buf = r.d.alloc(64, 64).unwrap();
    r.d.write(buf, &raw_frame(r.p[1].mac, 64, 0));
    let spec = r.spec(&sq, 0);
    let wqe = tx_wqe(&TxOob::encode(&spec).unwrap(), &[Sge::new(buf, r.d.gpa_mkey, 64)]);
    let rxbufs = (0..32).map(|_| r.d.alloc(2048, 64).unwrap()).collect();
    (r, sq, rq, wqe, rxbufs)
}

/// Sends `batches` bursts of 32 frames; returns how many completions differed from the honest
/// ones (owner bits are not corrupted, so every completion is found where it belongs).
/// The next completion of `cq`, or `None` for an entry whose owner count is neither this lap's
/// nor the last (skipped, as a hardened driver skips it).
fn next_or_skip(d: &TestDriver, cq: &mut Ring) -> Option<Completion> {
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        match d.poll_cq(cq) {
            Ok(Some(c)) => return Some(c),
            Ok(None) => {
                assert!(Instant::now() < end, "no completion");
                std::thread::yield_now();
            }
            Err(_) => {
                cq.head = cq.head.wrapping_add(1);
                return None;
            }
        }
    }
}

fn run_traffic(
    r: &mut Rig,
    sq: &mut QueuePair,
    rq: &mut QueuePair,
    wqe: &[u8],
    rxbufs: &[u64],
    batches: usize,
) -> u64 {
    let mut corrupted = 0;
    for _ in 0..batches {
        let (tx0, rx0) = (sq.wq.head, rq.wq.head);
        for b in rxbufs {
            post_rx_at(&r.d, &mut rq.wq, *b, 2048);
        }
        r.d.ring_rq(&rq.wq);
        for _ in rxbufs {
            r.d.put_wqe(&mut sq.wq, wqe);
        }
        r.d.ring_sq(&sq.wq);
        for k in 0..rxbufs.len() as u32 {
            let (tx, rx) = expected(tx0 + 32 * k, rx0 + 32 * k, 64);
            corrupted += match next_or_skip(&r.d, &mut sq.cq) {
                Some(c) => (c.data != tx || c.info.wq_num() != sq.wq.id || !c.info.is_sq()) as u64,
                None => 1,
            };
            corrupted += match next_or_skip(&r.d, &mut rq.cq) {
                Some(c) => (c.data != rx || c.info.wq_num() != rq.wq.id || c.info.is_sq()) as u64,
                None => 1,
            };
        }
        r.d.ring_cq(&sq.cq, sq.wq.db_page, false);
        r.d.ring_cq(&rq.cq, rq.wq.db_page, false);
    }
    corrupted
}

#[test]
fn hostile_mode_corruptions_are_counted_and_the_device_keeps_running() {
    let (mut r, mut sq, mut rq, wqe, rxbufs) = traffic_rig();
    r.dev.inject(fault("hostile 100000")).unwrap();
    let corrupted = run_traffic(&mut r, &mut sq, &mut rq, &wqe, &rxbufs, 32);
    r.settle();
    let counted = r.dev.stats().device.hostile_corruptions.get();
    assert_eq!(corrupted, counted, "every corrupted CQE is counted, and only those");
    assert!(counted > 0);
    // The device itself was not affected: every frame went through.
    let st = r.dev.stats();
    assert_eq!((st.vports[0].tx_packets.get(), st.vports[1].rx_packets.get()), (1024, 1024));
    assert_eq!(st.device.dma_errors.get(), 0);
    // Clear: honest completions again.
    r.dev.inject(fault("clear")).unwrap();
    assert_eq!(run_traffic(&mut r, &mut sq, &mut rq, &wqe, &rxbufs, 2), 0);
    assert_eq!(r.dev.stats().device.hostile_corruptions.get(), counted);
}

#[test]
fn hostile_mode_also_corrupts_owner_bits() {
    let (mut r, mut sq, _, wqe, _) = traffic_rig();
    r.dev.inject(fault("hostile 1000000")).unwrap();
    for _ in 0..32 {
        r.d.put_wqe(&mut sq.wq, &wqe);
    }
    r.d.ring_sq(&sq.wq);
    r.settle();
    assert_eq!(r.dev.stats().device.hostile_corruptions.get(), 32);
    // Look at the 32 slots directly: some owner count must be neither this lap's nor the last.
    let ring = sq.cq.ring;
    let bad = (0..32u32)
        .filter(|i| {
            let head = ring.initial_index() + i;
            let mut info = [0u8; 4];
            r.d.read(sq.cq.iova + (ring.slot(head) * 64 + 60) as u64, &mut info);
            ring.classify(head, (u32::from_le_bytes(info) >> 29) as u8) != OwnerState::Valid
        })
        .count();
    assert!(bad > 0);
}
