//! The TX path: OOB validation, WQE parsing (SGE count, sizes, OOB size code, memory key),
//! multi-SGE gathering, WQEs wrapping the ring, the MTU, CQE suppression, and DMA errors.

use gdma_defs::*;

use super::util::*;
use crate::testdrv::{QueuePair, TestDriver};
use gdma_defs::GdmaQueueType;

/// A rig with RX on vport 1: one RQ with `n` buffers of 2048 bytes.
fn rig_with_rx(n: usize) -> (Rig, QueuePair, Vec<u64>) {
    let mut r = Rig::new();
    let mut rq = r.rq(1);
    r.d.config_rx(r.p[1].handle, &[rq.handle], None, false).unwrap();
    let bufs = r.fill(&mut rq, n, 2048);
    (r, rq, bufs)
}

/// Checks that the next RX completion of `rq` delivered `frame` into `buf`.
fn expect_rx(r: &Rig, rq: &mut QueuePair, buf: u64, frame: &[u8]) -> RxCompOob {
    let c = next(&r.d, &mut rq.cq);
    let oob = rx_oob(&c);
    assert_eq!(oob.cqe_hdr.cqe_type(), CQE_RX_OKAY);
    assert_eq!(oob.packets().map(|p| p.0 as usize).collect::<Vec<_>>(), [frame.len()]);
    assert_eq!(read(&r.d, buf, frame.len()), frame);
    oob
}

#[test]
fn oob_fields_are_validated_per_packet() {
    let (mut r, mut rq, bufs) = rig_with_rx(4);
    let mut sq = r.sq(0);
    let good = r.spec(&sq, 0);
    let mac = r.p[1].mac;
    let cases = [
        (TxOobSpec { cq_id: rq.cq.id, ..good }, "vcq_num naming another queue's CQ"),
        (TxOobSpec { sq_id: sq.wq.id + 1024, ..good }, "vsq_frame of another SQ"),
        (TxOobSpec { vport_offset: r.p[1].tx_offset, ..good }, "the other vport's offset"),
        (TxOobSpec { vport_offset: 300, ..good }, "a long-form vport offset"),
    ];
    for (i, (spec, why)) in cases.iter().enumerate() {
        let pos = r.send(&mut sq, &raw_frame(mac, 64, i as u8), spec);
        let c = next(&r.d, &mut sq.cq);
        assert_eq!(cqe_type(&c), CQE_TX_INVALID_OOB, "{why}");
        assert_eq!((c.info.wq_num(), c.info.is_sq(), tx_pos(&c)), (sq.wq.id, true, pos), "{why}");
    }
    // The queue goes on: short and long forms with the right fields are sent.
    let f1 = raw_frame(mac, 64, 0x10);
    let f2 = raw_frame(mac, 70, 0x20);
    for (f, spec) in [(&f1, good), (&f2, TxOobSpec { force_long: true, ..good })] {
        let pos = r.send(&mut sq, f, &spec);
        let c = next(&r.d, &mut sq.cq);
        assert_eq!((cqe_type(&c), tx_pos(&c)), (CQE_TX_OKAY, pos));
    }
    // Only those two reached the peer, in order.
    expect_rx(&r, &mut rq, bufs[0], &f1);
    expect_rx(&r, &mut rq, bufs[1], &f2);
    r.settle();
    assert_eq!(drain(&r.d, &mut rq.cq), []);
    let v = &r.dev.stats().vports[0];
    assert_eq!((v.tx_errors.get(), v.tx_packets.get(), v.tx_cqes.get()), (4, 2, 6));
    assert_eq!(r.dev.stats().device.sq_disabled.get(), 0);
}

#[test]
fn corrupt_wqes_complete_with_gdma_err_and_disable_the_sq() {
    let (mut r, mut rq, bufs) = rig_with_rx(4);
    let mac = r.p[1].mac;
    let buf = r.d.alloc(2048, 64).unwrap();
    r.d.write(buf, &raw_frame(mac, 64, 1));
    let key = r.d.gpa_mkey;
    let sge = Sge::new(buf, key, 64);
    type Make = fn(&TxOob, Sge) -> (Vec<u8>, u32);
    let cases: [(Make, &str); 7] = [
        (|o, _| (wqe_bytes(WqeHeader::new(0, o.size()), &oob_bytes(o), &[]), 0), "no SGE"),
        (|o, s| (tx_wqe(o, &[Sge { size: 2, ..s }; 31]), 0), "31 SGEs"),
        (|o, s| (tx_wqe(o, &[Sge { size: 2, ..s }; 32]), 0), "32 SGEs (528 bytes)"),
        (
            |o, s| {
                let h = WqeHeader::new(1, InlineOobSize::Small).with_inline_client_oob_size(3);
                (wqe_bytes(h, &oob_bytes(o), &[s]), 0)
            },
            "OOB size code 3",
        ),
        (
            |o, s| {
                // A 32-byte OOB: header and OOB run past the first 32 bytes (§11 checklist).
                let h = WqeHeader::new(1, InlineOobSize::Oob32);
                let mut oob = oob_bytes(o);
                oob.resize(32, 0);
                (wqe_bytes(h, &oob, &[s]), 0)
            },
            "OOB size code 7 (32 bytes)",
        ),
        (|o, s| (tx_wqe(o, &[Sge { mem_key: s.mem_key ^ 1, ..s }]), 0), "another memory key"),
        (|o, s| (tx_wqe(o, &[s; 5]), 32), "a 96-byte WQE of which the doorbell announced 32 bytes"),
    ];
    for (i, (make, why)) in cases.iter().enumerate() {
        let mut sq = r.sq(0);
        let oob = TxOob::encode(&r.spec(&sq, 0)).unwrap();
        let (w, announce) = make(&oob, sge);
        let pos = sq.wq.head;
        r.d.put_wqe(&mut sq.wq, &w);
        let tail = if announce != 0 { pos + announce } else { sq.wq.head };
        r.d.ring_doorbell(sq.wq.db_page, DB_SQ, WqDoorbell::sq(sq.wq.id, tail).0);
        let c = next(&r.d, &mut sq.cq);
        assert_eq!(cqe_type(&c), CQE_TX_GDMA_ERR, "{why}");
        assert_eq!((c.info.wq_num(), tx_pos(&c)), (sq.wq.id, pos), "{why}");
        assert_eq!(r.dev.stats().device.sq_disabled.get(), i as u64 + 1, "{why}");
        // Disabled: a good WQE after it is neither sent nor completed.
        sq.wq.head = tail;
        let spec = r.spec(&sq, 0);
        r.send(&mut sq, &raw_frame(mac, 64, 2), &spec);
        r.settle();
        assert_eq!(drain(&r.d, &mut sq.cq), [], "{why}");
    }
    assert_eq!(r.dev.stats().vports[0].tx_packets.get(), 0);
    assert_eq!(r.dev.stats().vports[1].rx_packets.get(), 0);
    // Other SQs keep working.
    let mut sq = r.sq(0);
    let spec = r.spec(&sq, 0);
    let f = raw_frame(mac, 64, 3);
    r.send(&mut sq, &f, &spec);
    assert_eq!(cqe_type(&next(&r.d, &mut sq.cq)), CQE_TX_OKAY);
    expect_rx(&r, &mut rq, bufs[0], &f);
    let g =
        r.d.ok(
            "GF_STAT",
            TestDriver::MANA,
            &ManaQueryGfStatReq { req_stats: STATISTICS_FLAGS_ALL },
            &[],
        )
        .unwrap();
    assert_eq!(g.tx_err_gdma, 7);
}

#[test]
fn multi_sge_frames_are_gathered_in_sgl_order() {
    let (mut r, mut rq, bufs) = rig_with_rx(4);
    let mut sq = r.sq(0);
    let spec = r.spec(&sq, 0);
    let f = raw_frame(r.p[1].mac, 300, 7);
    for (i, segs) in [3usize, 30].into_iter().enumerate() {
        let n = r.d.post_tx(&mut sq.wq, &f, segs, &spec).unwrap();
        assert_eq!(n, wqe_size_bytes(InlineOobSize::Small, segs as u32));
        r.d.ring_sq(&sq.wq);
        assert_eq!(cqe_type(&next(&r.d, &mut sq.cq)), CQE_TX_OKAY, "{segs} SGEs");
        expect_rx(&r, &mut rq, bufs[i], &f);
    }
    // Pieces in three separate buffers, the SGL naming them out of address order.
    let a = r.d.alloc(64, 64).unwrap();
    let b = r.d.alloc(64, 64).unwrap();
    let c = r.d.alloc(64, 64).unwrap();
    let f = raw_frame(r.p[1].mac, 100, 9);
    r.d.write(c, &f[..20]);
    r.d.write(a, &f[20..50]);
    r.d.write(b, &f[50..]);
    let key = r.d.gpa_mkey;
    let sgl = [Sge::new(c, key, 20), Sge::new(a, key, 30), Sge::new(b, key, 50)];
    r.d.put_wqe(&mut sq.wq, &tx_wqe(&TxOob::encode(&spec).unwrap(), &sgl));
    r.d.ring_sq(&sq.wq);
    assert_eq!(cqe_type(&next(&r.d, &mut sq.cq)), CQE_TX_OKAY);
    expect_rx(&r, &mut rq, bufs[2], &f);
}

#[test]
fn a_wqe_may_wrap_around_the_end_of_the_ring() {
    let mut r = Rig::new();
    let mut sq = r.sq(0);
    let spec = r.spec(&sq, 0);
    let buf = r.d.alloc(64, 64).unwrap();
    r.d.write(buf, &raw_frame(r.p[1].mac, 60, 0));
    // 126 one-BU WQEs (all but the last suppressed) bring the producer to 4032 of 4096.
    let quiet = TxOob::encode(&TxOobSpec { suppress_cqe: true, ..spec }).unwrap();
    let loud = TxOob::encode(&spec).unwrap();
    let sge = Sge::new(buf, r.d.gpa_mkey, 60);
    for i in 0..126 {
        let w = tx_wqe(if i == 125 { &loud } else { &quiet }, &[sge]);
        r.d.put_wqe(&mut sq.wq, &w);
    }
    r.d.ring_sq(&sq.wq);
    let c = next(&r.d, &mut sq.cq);
    assert_eq!((cqe_type(&c), tx_pos(&c)), (CQE_TX_OKAY, 125 * 32));
    assert_eq!(sq.wq.head, 4032);
    // Vport 1 was not receiving yet: all 126 frames dropped and counted.
    r.settle();
    assert_eq!(r.dev.stats().vports[1].rx_drops_disabled.get(), 126);
    let mut rq = r.rq(1);
    r.d.config_rx(r.p[1].handle, &[rq.handle], None, false).unwrap();
    let bufs = r.fill(&mut rq, 1, 2048);
    // A 512-byte WQE at 4032: header and OOB before the end, most of the SGL after the wrap.
    let f = raw_frame(r.p[1].mac, 300, 5);
    let n = r.d.post_tx(&mut sq.wq, &f, 30, &spec).unwrap();
    assert_eq!((n, sq.wq.head), (512, 4032 + 512));
    r.d.ring_sq(&sq.wq);
    let c = next(&r.d, &mut sq.cq);
    assert_eq!((cqe_type(&c), tx_pos(&c)), (CQE_TX_OKAY, 4032));
    expect_rx(&r, &mut rq, bufs[0], &f);
}

#[test]
fn the_mtu_is_enforced_with_mtu_drop() {
    let (mut r, mut rq, bufs) = rig_with_rx(4);
    let mut sq = r.sq(0);
    let spec = r.spec(&sq, 0);
    let vlan = TxOobSpec { vlan: Some(VlanTag { pcp: 0, dei: false, vid: 5 }), ..spec };
    let mac = r.p[1].mac;
    let max = raw_frame(mac, 1514, 1);
    let over = raw_frame(mac, 1515, 2);
    for (f, s, want) in [
        (&max, spec, CQE_TX_OKAY),
        (&over, spec, CQE_TX_MTU_DROP),
        (&max, vlan, CQE_TX_OKAY),
        (&over, vlan, CQE_TX_MTU_DROP),
    ] {
        let pos = r.send(&mut sq, f, &s);
        let c = next(&r.d, &mut sq.cq);
        assert_eq!((cqe_type(&c), tx_pos(&c)), (want, pos), "{} bytes, {:?}", f.len(), s.vlan);
    }
    expect_rx(&r, &mut rq, bufs[0], &max);
    let tagged = expect_rx(&r, &mut rq, bufs[1], &max);
    assert!(tagged.flags.rx_vlantag_present());
    r.settle();
    assert_eq!(drain(&r.d, &mut rq.cq), []);
    let v = &r.dev.stats().vports[0];
    assert_eq!((v.tx_drops_mtu.get(), v.tx_packets.get(), v.tx_errors.get()), (2, 2, 2));
    let g =
        r.d.ok(
            "GF_STAT",
            TestDriver::MANA,
            &ManaQueryGfStatReq { req_stats: STATISTICS_FLAGS_ALL },
            &[],
        )
        .unwrap();
    assert_eq!((g.tx_err_mtu_violation, g.hc_tx_ucast_pkts), (2, 2));
}

#[test]
fn source_mac_enforcement_drops_other_macs_with_sa_drop() {
    let (mut r, mut rq, bufs) = rig_with_rx(4);
    let mut sq = r.sq(0);
    let spec = r.spec(&sq, 0);
    let mac = r.p[1].mac;
    let spoofed = from_vport(raw_frame(mac, 64, 1), [0x02, 0x00, 0x5e, 0x00, 0x00, 0x01]);
    let peer_mac = from_vport(raw_frame(mac, 64, 2), r.p[1].mac);
    let mut runt = mac.to_vec();
    runt.extend_from_slice(&[0x00, 0x15, 0x5d, 0x00]);
    let good = raw_frame(mac, 64, 3);
    for (f, want, why) in [
        (&spoofed, CQE_TX_SA_DROP, "a foreign source MAC"),
        (&peer_mac, CQE_TX_SA_DROP, "the other vport's MAC"),
        (&runt, CQE_TX_SA_DROP, "a 10-byte frame (no whole source MAC)"),
        (&good, CQE_TX_OKAY, "the vport's own MAC"),
    ] {
        let pos = r.send(&mut sq, f, &spec);
        let c = next(&r.d, &mut sq.cq);
        assert_eq!((cqe_type(&c), tx_pos(&c)), (want, pos), "{why}");
    }
    // Only the good frame arrived; the drops are counted, and GF_STAT reports them.
    expect_rx(&r, &mut rq, bufs[0], &good);
    r.settle();
    assert_eq!(drain(&r.d, &mut rq.cq), []);
    let v = &r.dev.stats().vports[0];
    assert_eq!((v.tx_drops_sa.get(), v.tx_packets.get()), (3, 1));
    let g: ManaQueryGfStatResp =
        r.d.ok(
            "GF_STAT",
            TestDriver::MANA,
            &ManaQueryGfStatReq { req_stats: STATISTICS_FLAGS_ALL },
            &[],
        )
        .unwrap();
    assert_eq!(g.tx_err_sa_enforcement, 3);

    // With enforcement off, the same foreign frame goes through.
    let mut cfg = config(2);
    cfg.source_mac_check = false;
    let mut r = Rig::with(cfg);
    let mut rq = r.rq(1);
    r.d.config_rx(r.p[1].handle, &[rq.handle], None, false).unwrap();
    let bufs = r.fill(&mut rq, 1, 2048);
    let mut sq = r.sq(0);
    let spec = r.spec(&sq, 0);
    r.send(&mut sq, &spoofed, &spec);
    assert_eq!(cqe_type(&next(&r.d, &mut sq.cq)), CQE_TX_OKAY);
    expect_rx(&r, &mut rq, bufs[0], &spoofed);
}

#[test]
fn suppressed_successes_have_no_cqe_but_errors_always_do() {
    let (mut r, mut rq, bufs) = rig_with_rx(8);
    let mut sq = r.sq(0);
    let spec = r.spec(&sq, 0);
    let quiet = TxOobSpec { suppress_cqe: true, ..spec };
    let mac = r.p[1].mac;
    let frames: Vec<Vec<u8>> = (0..3).map(|i| raw_frame(mac, 80 + i, i as u8)).collect();
    // Two suppressed successes, then one that asks for a CQE: only its CQE comes.
    r.d.post_tx(&mut sq.wq, &frames[0], 1, &quiet).unwrap();
    r.d.post_tx(&mut sq.wq, &frames[1], 1, &quiet).unwrap();
    r.d.post_tx(&mut sq.wq, &frames[2], 1, &spec).unwrap();
    r.d.ring_sq(&sq.wq);
    let c = next(&r.d, &mut sq.cq);
    assert_eq!((cqe_type(&c), tx_pos(&c)), (CQE_TX_OKAY, 64));
    for (f, b) in frames.iter().zip(&bufs) {
        expect_rx(&r, &mut rq, *b, f);
    }
    r.settle();
    assert_eq!(drain(&r.d, &mut sq.cq), []);

    // Suppressed WQEs that fail: a CQE each, in order.
    let bad_oob = TxOobSpec { cq_id: rq.cq.id, ..quiet };
    let p0 = sq.wq.head;
    r.d.post_tx(&mut sq.wq, &frames[0], 1, &bad_oob).unwrap();
    r.d.post_tx(&mut sq.wq, &raw_frame(mac, 1515, 0), 1, &quiet).unwrap();
    let oob = TxOob::encode(&quiet).unwrap();
    r.d.put_wqe(&mut sq.wq, &wqe_bytes(WqeHeader::new(0, oob.size()), &oob_bytes(&oob), &[]));
    r.d.ring_sq(&sq.wq);
    for (i, want) in [CQE_TX_INVALID_OOB, CQE_TX_MTU_DROP, CQE_TX_GDMA_ERR].into_iter().enumerate()
    {
        let c = next(&r.d, &mut sq.cq);
        assert_eq!((cqe_type(&c), tx_pos(&c)), (want, p0 + 32 * i as u32));
    }
    r.settle();
    assert_eq!(drain(&r.d, &mut sq.cq), []);
    let v = &r.dev.stats().vports[0];
    assert_eq!((v.tx_packets.get(), v.tx_cqes.get(), v.tx_errors.get()), (3, 4, 3));
}

#[test]
fn dma_errors_disable_only_the_faulty_sq() {
    let (mut r, mut rq, bufs) = rig_with_rx(4);
    let mem_end = r.d.memory().iova_base() + MEM as u64;
    let key = r.d.gpa_mkey;
    let mac = r.p[1].mac;
    for (i, (sge, why)) in [
        (Sge::new(0x10, key, 60), "an address outside every mapping"),
        (Sge::new(mem_end - 16, key, 64), "a range crossing the end of the mapping"),
        (Sge::new(u64::MAX - 8, key, 64), "a range wrapping the address space"),
    ]
    .into_iter()
    .enumerate()
    {
        let mut sq = r.sq(0);
        let spec = r.spec(&sq, 0);
        let pos = sq.wq.head;
        r.d.put_wqe(&mut sq.wq, &tx_wqe(&TxOob::encode(&spec).unwrap(), &[sge]));
        r.d.ring_sq(&sq.wq);
        let c = next(&r.d, &mut sq.cq);
        assert_eq!((cqe_type(&c), tx_pos(&c)), (CQE_TX_GDMA_ERR, pos), "{why}");
        let dev = &r.dev.stats().device;
        assert_eq!((dev.dma_errors.get(), dev.sq_disabled.get()), (i as u64 + 1, i as u64 + 1));
        // The queue is disabled.
        r.send(&mut sq, &raw_frame(mac, 64, 0), &spec);
        r.settle();
        assert_eq!(drain(&r.d, &mut sq.cq), [], "{why}");
    }
    // The device goes on serving other queues.
    let mut sq = r.sq(0);
    let spec = r.spec(&sq, 0);
    let f = raw_frame(mac, 64, 4);
    r.send(&mut sq, &f, &spec);
    assert_eq!(cqe_type(&next(&r.d, &mut sq.cq)), CQE_TX_OKAY);
    expect_rx(&r, &mut rq, bufs[0], &f);
    assert_eq!(r.dev.stats().vports[0].tx_packets.get(), 1);
}

#[test]
fn the_vport_offset_may_sit_in_either_long_form_field() {
    let mut r = Rig::new();
    let mut sq = r.sq(1);
    let spec = r.spec(&sq, 1);
    assert_eq!(spec.vport_offset, 1);
    let f = from_vport(raw_frame(r.p[0].mac, 64, 0), r.p[1].mac);
    // Short form, long form with the offset in short_vp_offset (LNX), long form with it only in
    // long_vp_offset (OVMM): all accepted; a long_vp_offset naming another vport is not.
    let lnx = TxOob::encode(&TxOobSpec { force_long: true, ..spec }).unwrap();
    let mut ovmm = lnx;
    ovmm.short = ovmm.short.with_short_vp_offset(0);
    ovmm.long = ovmm.long.with_long_vp_offset(1);
    let mut wrong = ovmm;
    wrong.long = wrong.long.with_long_vp_offset(2);
    let short = TxOob::encode(&spec).unwrap();
    let buf = r.d.alloc(64, 64).unwrap();
    r.d.write(buf, &f);
    for (oob, want) in
        [(short, CQE_TX_OKAY), (lnx, CQE_TX_OKAY), (ovmm, CQE_TX_OKAY), (wrong, CQE_TX_INVALID_OOB)]
    {
        r.d.put_wqe(&mut sq.wq, &tx_wqe(&oob, &[Sge::new(buf, r.d.gpa_mkey, 64)]));
        r.d.ring_sq(&sq.wq);
        assert_eq!(cqe_type(&next(&r.d, &mut sq.cq)), want, "{oob:?}");
    }
}

#[test]
fn vports_are_cabled_two_by_two() {
    let mut r = Rig::with(config(4));
    let p = [r.p[0], r.p[1], port(&mut r.d, 2), port(&mut r.d, 3)];
    let mut rqs: Vec<QueuePair> = (0..4)
        .map(|v| r.d.create_wq(p[v].handle, GdmaQueueType::Rq, 4096, 4096, None).unwrap())
        .collect();
    let mut bufs = Vec::new();
    for (v, rq) in rqs.iter_mut().enumerate() {
        r.d.config_rx(p[v].handle, &[rq.handle], None, false).unwrap();
        bufs.push(r.fill(rq, 4, 2048));
    }
    // A frame from each vport arrives at its peer (0 <-> 1, 2 <-> 3) and nowhere else.
    for v in 0..4usize {
        let mut sq = r.d.create_wq(p[v].handle, GdmaQueueType::Sq, 4096, 4096, None).unwrap();
        let spec = TxOobSpec {
            cq_id: sq.cq.id,
            sq_id: sq.wq.id,
            vport_offset: p[v].tx_offset,
            ..Default::default()
        };
        let f = from_vport(raw_frame(p[v ^ 1].mac, 64 + v, v as u8), p[v].mac);
        r.send(&mut sq, &f, &spec);
        assert_eq!(cqe_type(&next(&r.d, &mut sq.cq)), CQE_TX_OKAY);
        r.settle();
        for (w, rq) in rqs.iter_mut().enumerate() {
            let got = drain(&r.d, &mut rq.cq);
            assert_eq!(got.len(), (w == v ^ 1) as usize, "frame from {v} seen on {w}");
        }
        assert_eq!(read(&r.d, bufs[v ^ 1][0], f.len()), f);
    }
}

#[test]
fn buffers_in_memory_unmapped_later_are_dma_errors() {
    use std::sync::Arc;

    use pmd_mempool::{HugePolicy, MemSegment};

    let (mut r, mut rq, bufs) = rig_with_rx(4);
    // A second memory segment mapped for DMA, holding the frame.
    let seg = Arc::new(MemSegment::anonymous("tx-extra", 1 << 16, HugePolicy::Never).unwrap());
    let win = crate::shm::SegmentWindow::new(seg.clone());
    let f = raw_frame(r.p[1].mac, 64, 3);
    assert!(win.win().write(0, &f));
    r.dev.map(vec![crate::dma::Mapping::segment(seg.clone())]).unwrap();
    let sge = Sge::new(seg.iova_base(), r.d.gpa_mkey, 64);
    let mut sq = r.sq(0);
    let oob = TxOob::encode(&r.spec(&sq, 0)).unwrap();
    r.d.put_wqe(&mut sq.wq, &tx_wqe(&oob, &[sge]));
    r.d.ring_sq(&sq.wq);
    assert_eq!(cqe_type(&next(&r.d, &mut sq.cq)), CQE_TX_OKAY);
    expect_rx(&r, &mut rq, bufs[0], &f);
    // Unmapped: the same buffer is now outside the device's view.
    r.dev.unmap(seg.iova_base()).unwrap();
    r.d.put_wqe(&mut sq.wq, &tx_wqe(&oob, &[sge]));
    r.d.ring_sq(&sq.wq);
    assert_eq!(cqe_type(&next(&r.d, &mut sq.cq)), CQE_TX_GDMA_ERR);
    assert_eq!(r.dev.stats().device.dma_errors.get(), 1);
    assert!(r.dev.unmap(seg.iova_base()).is_err(), "unmapped once");
}
