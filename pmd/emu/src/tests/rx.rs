//! The RX path: truncation and no-WQE drops (counted), scatter over several SGEs, corrupt RQ
//! WQEs, FENCE_RQ, bad buffer addresses, frames to a vport that does not receive, steering to a
//! destroyed RQ.

use gdma_defs::*;

use super::util::*;
use crate::testdrv::{QueuePair, TestDriver};

/// A rig with an RQ on vport 1 that receives everything (no buffers posted yet) and an SQ on
/// vport 0.
fn rig() -> (Rig, QueuePair, QueuePair) {
    let mut r = Rig::new();
    let sq = r.sq(0);
    let rq = r.rq(1);
    r.d.config_rx(r.p[1].handle, &[rq.handle], None, false).unwrap();
    (r, sq, rq)
}

/// Sends `f` from `sq` (vport 0) and checks its TX completion.
fn send_ok(r: &mut Rig, sq: &mut QueuePair, f: &[u8]) {
    let spec = r.spec(sq, 0);
    r.send(sq, f, &spec);
    assert_eq!(cqe_type(&next(&r.d, &mut sq.cq)), CQE_TX_OKAY);
}

/// An RX WQE (small OOB) with the given SGEs.
fn rx_wqe_sgl(sgl: &[Sge]) -> Vec<u8> {
    wqe_bytes(WqeHeader::new(sgl.len() as u8, InlineOobSize::Small), &[0; 8], sgl)
}

fn gf_stat(d: &mut TestDriver) -> ManaQueryGfStatResp {
    d.ok("GF_STAT", TestDriver::MANA, &ManaQueryGfStatReq { req_stats: STATISTICS_FLAGS_ALL }, &[])
        .unwrap()
}

#[test]
fn truncation_and_no_wqe_drops_are_counted() {
    let (mut r, mut sq, mut rq) = rig();
    let small = r.d.alloc(100, 64).unwrap();
    let big = r.d.alloc(2048, 64).unwrap();
    post_rx_at(&r.d, &mut rq.wq, small, 100);
    post_rx_at(&r.d, &mut rq.wq, big, 2048);
    r.d.ring_rq(&rq.wq);
    let mac = r.p[1].mac;

    // Too large for the first buffer: CQE_RX_TRUNCATED, the WQE consumed, nothing written.
    send_ok(&mut r, &mut sq, &raw_frame(mac, 200, 1));
    let c = next(&r.d, &mut rq.cq);
    let oob = rx_oob(&c);
    assert_eq!((oob.cqe_hdr.cqe_type(), oob.rx_wqe_offset), (CQE_RX_TRUNCATED, 0));
    assert_eq!((c.info.wq_num(), c.info.is_sq()), (rq.wq.id, false));
    assert_eq!(read(&r.d, small, 100), [0; 100]);
    // The next frame takes the next WQE.
    let f = raw_frame(mac, 150, 2);
    send_ok(&mut r, &mut sq, &f);
    let oob = rx_oob(&next(&r.d, &mut rq.cq));
    assert_eq!((oob.cqe_hdr.cqe_type(), oob.rx_wqe_offset), (CQE_RX_OKAY, 32));
    assert_eq!(read(&r.d, big, 150), f);

    // No WQE left: dropped and counted; it does not wait for the next buffer.
    send_ok(&mut r, &mut sq, &raw_frame(mac, 90, 3));
    r.settle();
    assert_eq!(drain(&r.d, &mut rq.cq), []);
    let third = r.d.post_rx(&mut rq.wq, 2048).unwrap();
    r.d.ring_rq(&rq.wq);
    let f = raw_frame(mac, 95, 4);
    send_ok(&mut r, &mut sq, &f);
    let oob = rx_oob(&next(&r.d, &mut rq.cq));
    assert_eq!(
        (oob.cqe_hdr.cqe_type(), oob.packets().collect::<Vec<_>>()),
        (CQE_RX_OKAY, vec![(95, 0)])
    );
    assert_eq!(read(&r.d, third, 95), f);

    let v = &r.dev.stats().vports[1];
    assert_eq!((v.rx_truncated.get(), v.rx_drops_no_wqe.get(), v.rx_packets.get()), (1, 1, 2));
    assert_eq!(v.rx_bytes.get(), 150 + 95);
    let g = gf_stat(&mut r.d);
    assert_eq!((g.rx_discards_nowqe, g.hc_rx_ucast_pkts, g.hc_rx_bytes), (1, 2, 245));
}

#[test]
fn rx_wqes_scatter_over_several_sges() {
    let (mut r, mut sq, mut rq) = rig();
    let key = r.d.gpa_mkey;
    let bufs: Vec<u64> = (0..7).map(|_| r.d.alloc(2048, 64).unwrap()).collect();
    // WQE 0 (64 bytes): 20 + 30 + 2000 bytes. WQE 1 (64 bytes): 30 + 30. WQE 2: 30 + 30.
    let w0 = rx_wqe_sgl(&[
        Sge::new(bufs[0], key, 20),
        Sge::new(bufs[1], key, 30),
        Sge::new(bufs[2], key, 2000),
    ]);
    let w1 = rx_wqe_sgl(&[Sge::new(bufs[3], key, 30), Sge::new(bufs[4], key, 30)]);
    let w2 = rx_wqe_sgl(&[Sge::new(bufs[5], key, 30), Sge::new(bufs[6], key, 30)]);
    assert_eq!((w0.len(), w1.len()), (64, 64));
    for w in [&w0, &w1, &w2] {
        r.d.put_wqe(&mut rq.wq, w);
    }
    r.d.ring_rq(&rq.wq);
    let mac = r.p[1].mac;
    let f = raw_frame(mac, 100, 1);
    send_ok(&mut r, &mut sq, &f);
    let oob = rx_oob(&next(&r.d, &mut rq.cq));
    assert_eq!((oob.cqe_hdr.cqe_type(), oob.rx_wqe_offset), (CQE_RX_OKAY, 0));
    assert_eq!(oob.packets().collect::<Vec<_>>(), [(100, 0)]);
    assert_eq!(read(&r.d, bufs[0], 20), f[..20]);
    assert_eq!(read(&r.d, bufs[1], 30), f[20..50]);
    assert_eq!(read(&r.d, bufs[2], 51), [&f[50..], &[0u8][..]].concat(), "50 bytes, nothing more");
    // Exactly the capacity of the WQE's SGEs fits; one byte more is truncated.
    let f = raw_frame(mac, 60, 2);
    send_ok(&mut r, &mut sq, &f);
    let oob = rx_oob(&next(&r.d, &mut rq.cq));
    assert_eq!((oob.cqe_hdr.cqe_type(), oob.rx_wqe_offset), (CQE_RX_OKAY, 64));
    assert_eq!([read(&r.d, bufs[3], 30), read(&r.d, bufs[4], 30)].concat(), f);
    send_ok(&mut r, &mut sq, &raw_frame(mac, 61, 3));
    let oob = rx_oob(&next(&r.d, &mut rq.cq));
    assert_eq!((oob.cqe_hdr.cqe_type(), oob.rx_wqe_offset), (CQE_RX_TRUNCATED, 128));
}

#[test]
fn corrupt_rx_wqes_give_an_error_completion() {
    let (mut r, mut sq, _) = rig();
    let key = r.d.gpa_mkey;
    let buf = r.d.alloc(2048, 64).unwrap();
    let mac = r.p[1].mac;
    let cases: [(Vec<u8>, &str); 4] = [
        (rx_wqe_sgl(&[Sge::new(buf, key, 16); 16]), "16 SGEs (272 bytes)"),
        (wqe_bytes(WqeHeader::new(0, InlineOobSize::Small), &[0; 8], &[]), "no SGE"),
        (rx_wqe_sgl(&[Sge::new(buf, key ^ 1, 2048)]), "another memory key"),
        (
            wqe_bytes(
                WqeHeader::new(1, InlineOobSize::Oob32),
                &[0; 32],
                &[Sge::new(buf, key, 2048)],
            ),
            "a 32-byte OOB",
        ),
    ];
    for (i, (w, why)) in cases.iter().enumerate() {
        // A fresh RQ per case: the error disables the queue.
        let mut rq = r.rq(1);
        r.d.config_rx(r.p[1].handle, &[rq.handle], None, false).unwrap();
        let pos = rq.wq.head;
        r.d.put_wqe(&mut rq.wq, w);
        let good = r.d.post_rx(&mut rq.wq, 2048).unwrap();
        r.d.ring_rq(&rq.wq);
        send_ok(&mut r, &mut sq, &raw_frame(mac, 64, i as u8));
        let oob = rx_oob(&next(&r.d, &mut rq.cq));
        assert_eq!((oob.cqe_hdr.cqe_type(), oob.rx_wqe_offset), (CQE_RX_TRUNCATED, pos), "{why}");
        assert_eq!(read(&r.d, buf, 64), [0; 64], "{why}");
        // Disabled: the good WQE behind it takes nothing; the frame is counted as dropped.
        let drops = r.dev.stats().vports[1].rx_drops_disabled.get();
        send_ok(&mut r, &mut sq, &raw_frame(mac, 64, 0x40 + i as u8));
        r.settle();
        assert_eq!(drain(&r.d, &mut rq.cq), [], "{why}");
        assert_eq!(read(&r.d, good, 64), [0; 64], "{why}");
        assert_eq!(r.dev.stats().vports[1].rx_drops_disabled.get(), drops + 1, "{why}");
    }
    assert_eq!(r.dev.stats().device.dma_errors.get(), 4);
    assert_eq!(r.dev.stats().vports[1].rx_packets.get(), 0);
    // A new RQ receives.
    let mut rq = r.rq(1);
    r.d.config_rx(r.p[1].handle, &[rq.handle], None, false).unwrap();
    let good = r.d.post_rx(&mut rq.wq, 2048).unwrap();
    r.d.ring_rq(&rq.wq);
    let f = raw_frame(mac, 64, 9);
    send_ok(&mut r, &mut sq, &f);
    assert_eq!(rx_oob(&next(&r.d, &mut rq.cq)).cqe_hdr.cqe_type(), CQE_RX_OKAY);
    assert_eq!(read(&r.d, good, 64), f);
}

#[test]
fn fence_rq_completes_without_consuming_a_wqe() {
    let (mut r, mut sq, mut rq) = rig();
    let bufs = r.fill(&mut rq, 2, 2048);
    r.d.ok("FENCE_RQ", TestDriver::MANA, &ManaFenceRqReq { wq_obj_handle: rq.handle }, &[])
        .unwrap();
    let c = next(&r.d, &mut rq.cq);
    assert_eq!(
        (cqe_type(&c), c.info.wq_num(), c.info.is_sq()),
        (CQE_RX_OBJECT_FENCE, rq.wq.id, false)
    );
    assert_eq!(rx_oob(&c).packet_count(), 0);
    let f = raw_frame(r.p[1].mac, 64, 1);
    send_ok(&mut r, &mut sq, &f);
    let oob = rx_oob(&next(&r.d, &mut rq.cq));
    assert_eq!((oob.cqe_hdr.cqe_type(), oob.rx_wqe_offset), (CQE_RX_OKAY, 0));
    assert_eq!(read(&r.d, bufs[0], 64), f);
}

#[test]
fn a_bad_rx_buffer_address_is_an_error_completion_not_a_crash() {
    let (mut r, mut sq, mut rq) = rig();
    let mem_end = r.d.memory().iova_base() + MEM as u64;
    let mac = r.p[1].mac;
    // Outside memory, then (on a new RQ: the first error disables the queue) running off its end.
    for (i, addr) in [0x10, mem_end - 32].into_iter().enumerate() {
        if i > 0 {
            rq = r.rq(1);
            r.d.config_rx(r.p[1].handle, &[rq.handle], None, false).unwrap();
        }
        post_rx_at(&r.d, &mut rq.wq, addr, 2048);
        r.d.ring_rq(&rq.wq);
        send_ok(&mut r, &mut sq, &raw_frame(mac, 64, i as u8));
        let oob = rx_oob(&next(&r.d, &mut rq.cq));
        assert_eq!((oob.cqe_hdr.cqe_type(), oob.rx_wqe_offset), (CQE_RX_TRUNCATED, 0));
        assert_eq!(r.dev.stats().device.dma_errors.get(), i as u64 + 1);
    }
    assert_eq!(r.dev.stats().vports[1].rx_packets.get(), 0);
    // The device goes on: the other direction works.
    let mut back = r.rq(0);
    r.d.config_rx(r.p[0].handle, &[back.handle], None, false).unwrap();
    let bufs = r.fill(&mut back, 1, 2048);
    let mut sq1 = r.sq(1);
    let spec = r.spec(&sq1, 1);
    let f = from_vport(raw_frame(r.p[0].mac, 64, 7), r.p[1].mac);
    r.send(&mut sq1, &f, &spec);
    assert_eq!(cqe_type(&next(&r.d, &mut sq1.cq)), CQE_TX_OKAY);
    assert_eq!(rx_oob(&next(&r.d, &mut back.cq)).cqe_hdr.cqe_type(), CQE_RX_OKAY);
    assert_eq!(read(&r.d, bufs[0], 64), f);
}

#[test]
fn a_bad_rx_buffer_address_disables_the_rq() {
    let (mut r, mut sq, mut rq) = rig();
    post_rx_at(&r.d, &mut rq.wq, 0x10, 2048);
    let good = r.d.post_rx(&mut rq.wq, 2048).unwrap();
    r.d.ring_rq(&rq.wq);
    let mac = r.p[1].mac;
    send_ok(&mut r, &mut sq, &raw_frame(mac, 64, 1));
    assert_eq!(rx_oob(&next(&r.d, &mut rq.cq)).cqe_hdr.cqe_type(), CQE_RX_TRUNCATED);
    // Disabled: the next frame is not delivered into the good buffer behind it.
    send_ok(&mut r, &mut sq, &raw_frame(mac, 64, 2));
    r.settle();
    assert_eq!(drain(&r.d, &mut rq.cq), []);
    assert_eq!(read(&r.d, good, 64), [0; 64]);
    assert_eq!(r.dev.stats().vports[1].rx_packets.get(), 0);
}

#[test]
fn rx_wqe_sgl_follows_the_inline_oob_size() {
    let (mut r, mut sq, mut rq) = rig();
    let key = r.d.gpa_mkey;
    let decoy = r.d.alloc(2048, 64).unwrap();
    let real = r.d.alloc(2048, 64).unwrap();
    // A 24-byte OOB whose bytes 8..24 look like an SGE; the real SGE is at byte 32 (§3.1).
    let mut oob = [0u8; 24];
    oob[8..].copy_from_slice(Sge::new(decoy, key, 2048).as_bytes());
    let w = wqe_bytes(WqeHeader::new(1, InlineOobSize::Large), &oob, &[Sge::new(real, key, 2048)]);
    assert_eq!(w.len(), 64);
    r.d.put_wqe(&mut rq.wq, &w);
    r.d.ring_rq(&rq.wq);
    let f = raw_frame(r.p[1].mac, 64, 1);
    send_ok(&mut r, &mut sq, &f);
    let oob = rx_oob(&next(&r.d, &mut rq.cq));
    assert_eq!(read(&r.d, decoy, 64), [0; 64], "nothing is written where no SGE points");
    if oob.cqe_hdr.cqe_type() == CQE_RX_OKAY {
        assert_eq!(read(&r.d, real, 64), f);
    }
}

#[test]
fn frames_to_a_vport_that_does_not_receive_are_dropped() {
    let mut r = Rig::new();
    let mut sq = r.sq(0);
    let rq = r.rq(1);
    let mac = r.p[1].mac;
    for i in 0..3 {
        send_ok(&mut r, &mut sq, &raw_frame(mac, 64, i));
    }
    r.settle();
    let mut cq = rq.cq;
    assert_eq!(drain(&r.d, &mut cq), []);
    let v = &r.dev.stats().vports[1];
    assert_eq!((v.rx_drops_disabled.get(), v.rx_packets.get()), (3, 0));
    assert_eq!(gf_stat(&mut r.d).rx_err_vport_disabled, 3);
}

#[test]
fn steering_to_a_destroyed_rq_drops_even_after_its_id_is_reused() {
    let (mut r, mut sq, rq) = rig();
    let destroy = ManaDestroyWqObjReq { wq_type: GDMA_RQ, reserved: 0, wq_obj_handle: rq.handle };
    r.d.ok("DESTROY_WQ_OBJ", TestDriver::MANA, &destroy, &[]).unwrap();
    let mac = r.p[1].mac;
    send_ok(&mut r, &mut sq, &raw_frame(mac, 64, 1));
    r.settle();
    assert_eq!(r.dev.stats().vports[1].rx_drops_disabled.get(), 1);
    // An RQ of vport 0 takes the freed id.
    let mut other = r.rq(0);
    assert_eq!(other.wq.id, rq.wq.id);
    let buf = r.fill(&mut other, 1, 2048)[0];
    send_ok(&mut r, &mut sq, &raw_frame(mac, 64, 2));
    r.settle();
    assert_eq!(drain(&r.d, &mut other.cq), [], "vport 1's frame must not reach vport 0's RQ");
    assert_eq!(read(&r.d, buf, 64), [0; 64]);
    assert_eq!(r.dev.stats().vports[1].rx_drops_disabled.get(), 2);
}
