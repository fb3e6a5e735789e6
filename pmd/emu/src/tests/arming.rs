//! CQ/EQ arming and completion events, and the CQ lap limit.
//!
//! An armed CQ that receives a CQE posts one COMPLETION EQE (data: the CQ id) on its parent EQ
//! and disarms; arming behind the device fires at once; arming ahead of the device is rejected
//! (§10.2 pitfall 2). An EQE on an armed EQ is an interrupt. A CQ whose consumer has not rung its
//! doorbell for `cq_lap_limit` laps stalls until it does (§10.2 pitfall 1).

use gdma_defs::*;

use super::util::*;
use crate::testdrv::{QueuePair, Ring, TestDriver};

/// A rig with an EQ and an SQ on vport 0 whose CQ has the EQ as parent.
fn rig() -> (Rig, Ring, QueuePair) {
    let mut r = Rig::new();
    let eq = r.d.create_eq(4096).unwrap();
    let sq = r.d.create_wq(r.p[0].handle, GdmaQueueType::Sq, 4096, 4096, Some(eq.id)).unwrap();
    (r, eq, sq)
}

/// Sends one frame and waits for its (successful) TX completion.
fn one(r: &mut Rig, sq: &mut QueuePair) {
    let spec = r.spec(sq, 0);
    r.send(sq, &raw_frame(r.p[1].mac, 64, 0), &spec);
    assert_eq!(cqe_type(&next(&r.d, &mut sq.cq)), CQE_TX_OKAY);
}

/// Waits for the next EQE of `eq`.
fn next_eqe(d: &TestDriver, eq: &mut Ring) -> (u8, [u32; 3]) {
    let mut ev = None;
    wait_for("an EQE", || {
        ev = d.poll_eq(eq).unwrap();
        ev.is_some()
    });
    ev.expect("waited")
}

/// After `settle`, the EQ holds nothing new.
fn no_eqe(r: &mut Rig, eq: &mut Ring) {
    r.settle();
    assert_eq!(r.d.poll_eq(eq).unwrap(), None);
}

#[test]
fn an_armed_cq_posts_one_completion_event_then_disarms() {
    let (mut r, mut eq, mut sq) = rig();
    let page = sq.wq.db_page;
    let completion = (GDMA_EQE_COMPLETION, [sq.cq.id, 0, 0]);
    let irqs0 = r.dev.stats().device.interrupts.get();
    // Not armed: CQEs but no event.
    one(&mut r, &mut sq);
    no_eqe(&mut r, &mut eq);
    for _ in 0..2 {
        // Armed with everything consumed: the next CQE posts one COMPLETION.
        r.d.ring_cq(&sq.cq, page, true);
        one(&mut r, &mut sq);
        assert_eq!(next_eqe(&r.d, &mut eq), completion);
        // Disarmed by it: the following CQEs post nothing, until re-armed.
        one(&mut r, &mut sq);
        one(&mut r, &mut sq);
        no_eqe(&mut r, &mut eq);
    }
    // The EQ starts armed (spec §11), so its first event was an interrupt; it was never
    // re-armed, so the others were not.
    assert_eq!(r.dev.stats().device.interrupts.get() - irqs0, 1);
}

#[test]
fn arming_behind_the_device_fires_at_once() {
    let (mut r, mut eq, mut sq) = rig();
    let page = sq.wq.db_page;
    let behind = sq.cq;
    one(&mut r, &mut sq);
    one(&mut r, &mut sq);
    // Arming with an index two CQEs behind the device: a COMPLETION now, without a new CQE.
    r.d.ring_cq(&behind, page, true);
    assert_eq!(next_eqe(&r.d, &mut eq), (GDMA_EQE_COMPLETION, [sq.cq.id, 0, 0]));
    // It fired instead of arming: the next CQE posts nothing.
    one(&mut r, &mut sq);
    no_eqe(&mut r, &mut eq);
}

#[test]
fn arming_ahead_of_the_device_does_not_arm() {
    let (mut r, mut eq, mut sq) = rig();
    let page = sq.wq.db_page;
    let ahead = Ring { head: sq.cq.head + 5, ..sq.cq };
    r.d.ring_cq(&ahead, page, true);
    r.settle();
    assert_eq!(r.d.poll_eq(&mut eq).unwrap(), None, "nothing fired");
    // A correct (unarmed) doorbell, then a CQE: no event, the arm was rejected.
    r.d.ring_cq(&sq.cq, page, false);
    one(&mut r, &mut sq);
    no_eqe(&mut r, &mut eq);
}

#[test]
fn a_rejected_arm_doorbell_changes_nothing() {
    let (mut r, mut eq, mut sq) = rig();
    let page = sq.wq.db_page;
    let ahead = Ring { head: sq.cq.head + 5, ..sq.cq };
    r.d.ring_cq(&ahead, page, true);
    // With no other doorbell, the CQ must go on as before: the CQE comes, no event.
    let spec = r.spec(&sq, 0);
    r.send(&mut sq, &raw_frame(r.p[1].mac, 64, 0), &spec);
    r.settle();
    let got = drain(&r.d, &mut sq.cq);
    assert_eq!(got.len(), 1, "the CQE is not held back");
    assert_eq!(cqe_type(&got[0]), CQE_TX_OKAY);
    assert_eq!(r.dev.stats().device.cq_stalls.get(), 0);
    no_eqe(&mut r, &mut eq);
}

#[test]
fn an_armed_eq_counts_one_interrupt_per_arm() {
    let (mut r, mut eq, mut sq) = rig();
    let page = sq.wq.db_page;
    // Counted from here (the HWC's EQ, armed at creation, raised one for its first event).
    let irqs0 = r.dev.stats().device.interrupts.get();
    let irqs = |r: &Rig| r.dev.stats().device.interrupts.get() - irqs0;
    // EQ and CQ armed: the COMPLETION EQE is an interrupt.
    ring_eq(&r.d, &eq, page, true);
    r.d.ring_cq(&sq.cq, page, true);
    one(&mut r, &mut sq);
    assert_eq!(next_eqe(&r.d, &mut eq).0, GDMA_EQE_COMPLETION);
    r.settle();
    assert_eq!(irqs(&r), 1);
    // CQ re-armed, EQ not: the event comes, no interrupt.
    r.d.ring_cq(&sq.cq, page, true);
    one(&mut r, &mut sq);
    assert_eq!(next_eqe(&r.d, &mut eq).0, GDMA_EQE_COMPLETION);
    r.settle();
    assert_eq!(irqs(&r), 1);
    // Both re-armed: one more.
    ring_eq(&r.d, &eq, page, true);
    r.d.ring_cq(&sq.cq, page, true);
    one(&mut r, &mut sq);
    assert_eq!(next_eqe(&r.d, &mut eq).0, GDMA_EQE_COMPLETION);
    r.settle();
    assert_eq!(irqs(&r), 2);
    // Arming the EQ behind an unconsumed event fires at once.
    let behind = eq;
    r.d.ring_cq(&sq.cq, page, true);
    one(&mut r, &mut sq);
    assert_eq!(next_eqe(&r.d, &mut eq).0, GDMA_EQE_COMPLETION);
    ring_eq(&r.d, &behind, page, true);
    r.settle();
    assert_eq!(irqs(&r), 3);
}

#[test]
fn a_test_event_on_an_armed_eq_is_an_interrupt() {
    let (mut r, mut eq, sq) = rig();
    let irqs0 = r.dev.stats().device.interrupts.get();
    let test_eqe = GdmaGenerateTestEventReq { queue_index: eq.id };
    // A new EQ is armed: its first event is an interrupt, and disarms it.
    r.d.ok("TEST_EQE", HWC_DEV_ID, &test_eqe, &[]).unwrap();
    assert_eq!(next_eqe(&r.d, &mut eq), (GDMA_EQE_TEST_EVENT, [0; 3]));
    assert_eq!(r.dev.stats().device.interrupts.get() - irqs0, 1);
    r.d.ok("TEST_EQE", HWC_DEV_ID, &test_eqe, &[]).unwrap();
    assert_eq!(next_eqe(&r.d, &mut eq), (GDMA_EQE_TEST_EVENT, [0; 3]));
    assert_eq!(r.dev.stats().device.interrupts.get() - irqs0, 1, "disarmed");
    // Re-armed with everything consumed: the next one is an interrupt again.
    ring_eq(&r.d, &eq, sq.wq.db_page, true);
    r.settle();
    r.d.ok("TEST_EQE", HWC_DEV_ID, &test_eqe, &[]).unwrap();
    assert_eq!(next_eqe(&r.d, &mut eq), (GDMA_EQE_TEST_EVENT, [0; 3]));
    assert_eq!(r.dev.stats().device.interrupts.get() - irqs0, 2);
}

#[test]
fn a_cq_stalls_after_the_lap_limit_and_resumes_after_a_doorbell() {
    let mut cfg = config(2);
    cfg.cq_lap_limit = 2;
    let mut r = Rig::with(cfg);
    // A 64-entry CQ and an SQ with room for 256 one-BU WQEs.
    let mut sq = r.d.create_wq(r.p[0].handle, GdmaQueueType::Sq, 8192, 4096, None).unwrap();
    assert_eq!(sq.cq.ring.entries(), 64);
    let spec = r.spec(&sq, 0);
    let buf = r.d.alloc(64, 64).unwrap();
    r.d.write(buf, &raw_frame(r.p[1].mac, 64, 0));
    let wqe = tx_wqe(&TxOob::encode(&spec).unwrap(), &[Sge::new(buf, r.d.gpa_mkey, 64)]);
    let batch = |r: &mut Rig, sq: &mut QueuePair, n: usize| {
        for _ in 0..n {
            r.d.put_wqe(&mut sq.wq, &wqe);
        }
        r.d.ring_sq(&sq.wq);
    };
    // Two laps consumed without a CQ doorbell.
    for _ in 0..2 {
        batch(&mut r, &mut sq, 64);
        for _ in 0..64 {
            assert_eq!(cqe_type(&next(&r.d, &mut sq.cq)), CQE_TX_OKAY);
        }
    }
    // The third lap waits for the doorbell: nothing is completed (or sent) meanwhile.
    batch(&mut r, &mut sq, 10);
    r.settle();
    assert!(r.dev.stats().device.cq_stalls.get() > 0);
    assert_eq!(drain(&r.d, &mut sq.cq), []);
    assert_eq!(r.dev.stats().vports[0].tx_packets.get(), 128);
    // The doorbell (no arm) releases it.
    r.d.ring_cq(&sq.cq, sq.wq.db_page, false);
    for i in 0..10 {
        let c = next(&r.d, &mut sq.cq);
        assert_eq!((cqe_type(&c), tx_pos(&c)), (CQE_TX_OKAY, (128 + i) * 32));
    }
    r.settle();
    assert_eq!(drain(&r.d, &mut sq.cq), []);
    assert_eq!(r.dev.stats().vports[0].tx_packets.get(), 138);
}

#[test]
fn an_rx_cq_at_the_lap_limit_drops_frames_until_its_doorbell() {
    let mut cfg = config(2);
    cfg.cq_lap_limit = 2;
    let mut r = Rig::with(cfg);
    let mut sq = r.d.create_wq(r.p[0].handle, GdmaQueueType::Sq, 8192, 4096, None).unwrap();
    let mut rq = r.d.create_wq(r.p[1].handle, GdmaQueueType::Rq, 8192, 4096, None).unwrap();
    r.d.config_rx(r.p[1].handle, &[rq.handle], None, false).unwrap();
    let rxbuf = r.d.alloc(2048, 64).unwrap();
    for _ in 0..200 {
        post_rx_at(&r.d, &mut rq.wq, rxbuf, 2048);
    }
    r.d.ring_rq(&rq.wq);
    let spec = TxOobSpec { suppress_cqe: true, ..r.spec(&sq, 0) };
    let buf = r.d.alloc(64, 64).unwrap();
    r.d.write(buf, &raw_frame(r.p[1].mac, 64, 0));
    let wqe = tx_wqe(&TxOob::encode(&spec).unwrap(), &[Sge::new(buf, r.d.gpa_mkey, 64)]);
    let batch = |r: &mut Rig, sq: &mut QueuePair, n: usize| {
        for _ in 0..n {
            r.d.put_wqe(&mut sq.wq, &wqe);
        }
        r.d.ring_sq(&sq.wq);
        r.settle();
    };
    for _ in 0..2 {
        batch(&mut r, &mut sq, 64);
        assert_eq!(drain(&r.d, &mut rq.cq).len(), 64);
    }
    // Two laps without an RX CQ doorbell: the next frames are dropped, not completed.
    batch(&mut r, &mut sq, 5);
    assert_eq!(drain(&r.d, &mut rq.cq), []);
    let v = &r.dev.stats().vports[1];
    assert_eq!((v.rx_packets.get(), v.rx_drops_no_wqe.get()), (128, 5));
    // After the doorbell, frames are received again (into the WQEs the drops did not use).
    r.d.ring_cq(&rq.cq, rq.wq.db_page, false);
    batch(&mut r, &mut sq, 3);
    let got = drain(&r.d, &mut rq.cq);
    let offsets: Vec<u32> = got.iter().map(|c| rx_oob(c).rx_wqe_offset).collect();
    assert_eq!(offsets, [128 * 32, 129 * 32, 130 * 32]);
}

#[test]
fn an_armed_rx_cq_signals_its_eq_and_a_disabled_eq_is_forgotten() {
    let (mut r, mut eq, mut sq) = rig();
    let mut rq = r.d.create_wq(r.p[1].handle, GdmaQueueType::Rq, 4096, 4096, Some(eq.id)).unwrap();
    r.d.config_rx(r.p[1].handle, &[rq.handle], None, false).unwrap();
    r.fill(&mut rq, 4, 2048);
    r.d.ring_cq(&rq.cq, rq.wq.db_page, true);
    one(&mut r, &mut sq);
    assert_eq!(rx_oob(&next(&r.d, &mut rq.cq)).cqe_hdr.cqe_type(), CQE_RX_OKAY);
    assert_eq!(next_eqe(&r.d, &mut eq), (GDMA_EQE_COMPLETION, [rq.cq.id, 0, 0]));
    // The EQ goes away: its CQs lose their parent but keep completing.
    let dis = GdmaDisableQueueReq {
        queue_type: GDMA_EQ,
        queue_index: eq.id,
        alloc_res_id_on_creation: GDMA_ALLOC_RES_ID_ON_CREATION,
    };
    r.d.ok("DISABLE_QUEUE", HWC_DEV_ID, &dis, &[]).unwrap();
    r.d.ring_cq(&rq.cq, rq.wq.db_page, true);
    r.d.ring_cq(&sq.cq, sq.wq.db_page, true);
    one(&mut r, &mut sq);
    assert_eq!(rx_oob(&next(&r.d, &mut rq.cq)).cqe_hdr.cqe_type(), CQE_RX_OKAY);
    no_eqe(&mut r, &mut eq);
}

#[test]
fn a_cqe_due_at_the_lap_limit_is_held_not_lost() {
    let mut cfg = config(2);
    cfg.cq_lap_limit = 1;
    let mut r = Rig::with(cfg);
    let mut sq = r.sq(0);
    let mut rq = r.d.create_wq(r.p[1].handle, GdmaQueueType::Rq, 8192, 4096, None).unwrap();
    assert_eq!(config_rx_table(&mut r.d, r.p[1].handle, rq.handle, &[rq.handle], None, true), 0);
    let big = r.d.alloc(2048, 64).unwrap();
    let small = r.d.alloc(100, 64).unwrap();
    for _ in 0..64 {
        post_rx_at(&r.d, &mut rq.wq, big, 2048);
    }
    post_rx_at(&r.d, &mut rq.wq, small, 100);
    for _ in 0..4 {
        post_rx_at(&r.d, &mut rq.wq, big, 2048);
    }
    r.d.ring_rq(&rq.wq);
    let spec = r.spec(&sq, 0);
    let mac = r.p[1].mac;
    // 63 CQEs, one frame at a time (each completes in its own device pass), consumed without
    // a CQ doorbell: one short of the lap limit.
    for i in 0..63 {
        r.send(&mut sq, &raw_frame(mac, 64, i), &spec);
        assert_eq!(cqe_type(&next(&r.d, &mut sq.cq)), CQE_TX_OKAY);
        assert_eq!(rx_oob(&next(&r.d, &mut rq.cq)).rx_wqe_offset, 32 * i as u32);
    }
    r.d.ring_cq(&sq.cq, sq.wq.db_page, false);
    // In one pass: a frame that is held for coalescing, then one too large for its buffer. The
    // held CQE takes the last slot before the limit; the truncation's CQE must wait, not vanish.
    r.d.post_tx(&mut sq.wq, &raw_frame(mac, 64, 100), 1, &spec).unwrap();
    r.d.post_tx(&mut sq.wq, &raw_frame(mac, 200, 101), 1, &spec).unwrap();
    r.d.ring_sq(&sq.wq);
    next(&r.d, &mut sq.cq);
    next(&r.d, &mut sq.cq);
    r.settle();
    let got = drain(&r.d, &mut rq.cq);
    assert_eq!(got.len(), 1);
    assert_eq!(rx_oob(&got[0]).rx_wqe_offset, 63 * 32);
    // After the doorbell, every consumed RQ WQE has its CQE, in order.
    r.d.ring_cq(&rq.cq, rq.wq.db_page, false);
    r.send(&mut sq, &raw_frame(mac, 64, 102), &spec);
    next(&r.d, &mut sq.cq);
    r.settle();
    let offsets: Vec<u32> =
        drain(&r.d, &mut rq.cq).iter().map(|c| rx_oob(c).rx_wqe_offset).collect();
    assert_eq!(offsets.first(), Some(&(64 * 32)), "the WQE after the last completed one");
    let contiguous = offsets.windows(2).all(|w| w[1] == w[0] + 32);
    assert!(contiguous, "{offsets:?}");
}
