//! Doorbell validation: WQ doorbells are accepted only when they move forward by at most the
//! ring size (refusals counted), a full ring in one doorbell is fine, doorbells naming unknown
//! queues are counted, and pages the driver does not own are not served.

use gdma_defs::*;

use super::util::*;

#[test]
fn sq_doorbells_move_forward_by_at_most_the_ring_size() {
    let mut r = Rig::new();
    let mut sq = r.sq(0);
    let spec = r.spec(&sq, 0);
    let f = raw_frame(r.p[1].mac, 64, 0);
    let refused = |r: &Rig| r.dev.stats().device.doorbells_refused.get();
    let ring = |r: &Rig, sq: &crate::testdrv::QueuePair, tail: u32| {
        r.d.ring_doorbell(sq.wq.db_page, DB_SQ, WqDoorbell::sq(sq.wq.id, tail).0)
    };

    // One WQE posted, but the doorbell claims one BU more than the whole ring: refused.
    r.d.post_tx(&mut sq.wq, &f, 1, &spec).unwrap();
    ring(&r, &sq, 32 + 4096);
    r.settle();
    assert_eq!(refused(&r), 1);
    assert_eq!(drain(&r.d, &mut sq.cq), []);
    // The right doorbell.
    ring(&r, &sq, 32);
    let c = next(&r.d, &mut sq.cq);
    assert_eq!((cqe_type(&c), tx_pos(&c)), (CQE_TX_OKAY, 0));
    // Backwards: refused.
    ring(&r, &sq, 0);
    r.settle();
    assert_eq!(refused(&r), 2);
    // The same position again: accepted, nothing to do.
    ring(&r, &sq, 32);
    r.settle();
    assert_eq!(refused(&r), 2);
    assert_eq!(drain(&r.d, &mut sq.cq), []);

    // A whole ring (128 one-BU WQEs, all but the last suppressed) in one doorbell: accepted.
    let quiet = TxOobSpec { suppress_cqe: true, ..spec };
    for i in 0..128 {
        r.d.post_tx(&mut sq.wq, &f, 1, if i == 127 { &spec } else { &quiet }).unwrap();
    }
    assert_eq!(sq.wq.head, 32 + 4096);
    r.d.ring_sq(&sq.wq);
    let c = next(&r.d, &mut sq.cq);
    assert_eq!((cqe_type(&c), tx_pos(&c)), (CQE_TX_OKAY, 32 + 127 * 32));
    assert_eq!(refused(&r), 2);
    r.settle();
    assert_eq!(drain(&r.d, &mut sq.cq), []);
    assert_eq!(r.dev.stats().vports[0].tx_packets.get(), 129);
}

#[test]
fn rq_doorbells_move_forward_by_at_most_the_ring_size() {
    let mut r = Rig::new();
    let mut sq = r.sq(0);
    let mut rq = r.rq(1);
    r.d.config_rx(r.p[1].handle, &[rq.handle], None, false).unwrap();
    let spec = r.spec(&sq, 0);
    let refused = |r: &Rig| r.dev.stats().device.doorbells_refused.get();
    let ring = |r: &Rig, rq: &crate::testdrv::QueuePair, tail: u32| {
        r.d.ring_doorbell(rq.wq.db_page, DB_RQ, WqDoorbell::rq(rq.wq.id, tail).0)
    };
    let buf = r.d.post_rx(&mut rq.wq, 2048).unwrap();
    ring(&r, &rq, 32 + 4096);
    r.settle();
    assert_eq!(refused(&r), 1);
    // The refused doorbell gave the device no buffer: the frame is dropped.
    let f = raw_frame(r.p[1].mac, 64, 1);
    r.send(&mut sq, &f, &spec);
    next(&r.d, &mut sq.cq);
    r.settle();
    assert_eq!(r.dev.stats().vports[1].rx_drops_no_wqe.get(), 1);
    // The right doorbell: the next frame is received.
    ring(&r, &rq, 32);
    let f = raw_frame(r.p[1].mac, 64, 2);
    r.send(&mut sq, &f, &spec);
    next(&r.d, &mut sq.cq);
    assert_eq!(rx_oob(&next(&r.d, &mut rq.cq)).cqe_hdr.cqe_type(), CQE_RX_OKAY);
    assert_eq!(read(&r.d, buf, 64), f);
    // Backwards: refused.
    ring(&r, &rq, 0);
    r.settle();
    assert_eq!(refused(&r), 2);
}

#[test]
fn doorbells_for_unknown_queues_are_counted() {
    let mut r = Rig::new();
    let mut sq = r.sq(0);
    let spec = r.spec(&sq, 0);
    let page = r.d.db_id;
    let unknown = |r: &Rig| r.dev.stats().device.doorbells_unknown_queue.get();
    let before = unknown(&r);
    r.d.ring_doorbell(page, DB_SQ, WqDoorbell::sq(0x12_3456, 32).0);
    r.d.ring_doorbell(page, DB_RQ, WqDoorbell::rq(0x12_3456, 32).0);
    r.d.ring_doorbell(page, DB_CQ, CqEqDoorbell::cq(0x65_4321, 64, true).0);
    r.d.ring_doorbell(page, DB_EQ, CqEqDoorbell::eq(0x4321, 64, true).0);
    r.settle();
    assert_eq!(unknown(&r), before + 4);
    // Ids are per kind: the SQ's id on the RQ register names no RQ (no RQ exists).
    r.d.ring_doorbell(page, DB_RQ, WqDoorbell::rq(sq.wq.id, 32).0);
    r.settle();
    assert_eq!(unknown(&r), before + 5);
    assert_eq!(r.dev.stats().device.doorbells_refused.get(), 0);

    // A page the driver was never given is not served; the SQ's own page is.
    r.d.post_tx(&mut sq.wq, &raw_frame(r.p[1].mac, 64, 0), 1, &spec).unwrap();
    r.d.ring_doorbell(200, DB_SQ, WqDoorbell::sq(sq.wq.id, sq.wq.head).0);
    r.settle();
    assert_eq!(drain(&r.d, &mut sq.cq), []);
    assert_eq!(unknown(&r), before + 5);
    r.d.ring_sq(&sq.wq);
    assert_eq!(cqe_type(&next(&r.d, &mut sq.cq)), CQE_TX_OKAY);
    // Any page the driver owns serves any of its queues.
    r.d.post_tx(&mut sq.wq, &raw_frame(r.p[1].mac, 64, 1), 1, &spec).unwrap();
    r.d.ring_doorbell(page, DB_SQ, WqDoorbell::sq(sq.wq.id, sq.wq.head).0);
    assert_eq!(cqe_type(&next(&r.d, &mut sq.cq)), CQE_TX_OKAY);
}
