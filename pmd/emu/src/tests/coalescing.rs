//! RX CQE coalescing: up to four consecutive packets of an RQ that share their flags go in one
//! CQE_RX_COALESCED_4, in order, each with its own length and hash; a CQE is written when four
//! are in or at the end of the device pass; different flags or an error end a run.

use gdma_defs::*;

use super::util::*;
use crate::testdrv::QueuePair;

/// Coalescing on vport 1 (one RQ, 32 buffers of `buf_len`, RSS over a 64-entry table that
/// names it everywhere); an SQ on vport 0.
fn rig(buf_len: u32) -> (Rig, QueuePair, QueuePair, Vec<u64>) {
    let mut r = Rig::new();
    let sq = r.sq(0);
    let mut rq = r.rq(1);
    let bufs = r.fill(&mut rq, 32, buf_len);
    let table = [rq.handle; 64];
    let key = Some(MS_RSS_VERIFICATION_KEY);
    assert_eq!(config_rx_table(&mut r.d, r.p[1].handle, rq.handle, &table, key, true), 0);
    (r, sq, rq, bufs)
}

/// Posts every frame on `sq` and rings its doorbell once, so they are all processed in one
/// device pass; checks each TX completion.
fn burst(r: &mut Rig, sq: &mut QueuePair, frames: &[Vec<u8>]) {
    let spec = r.spec(sq, 0);
    for f in frames {
        r.d.post_tx(&mut sq.wq, f, 1, &spec).unwrap();
    }
    r.d.ring_sq(&sq.wq);
    for _ in frames {
        assert_eq!(cqe_type(&next(&r.d, &mut sq.cq)), CQE_TX_OKAY);
    }
    r.settle();
}

/// An RX completion in short: (type, (length, hash) of each packet, rx_wqe_offset).
type Short = (u8, Vec<(u16, u32)>, u32);

/// One IPv4 TCP flow: source, source port, destination, destination port, 4-tuple hash.
type Flow = ([u8; 4], u16, [u8; 4], u16, u32);

/// Every RX completion waiting on `rq`, in short.
fn cqes(r: &Rig, rq: &mut QueuePair) -> Vec<Short> {
    drain(&r.d, &mut rq.cq)
        .iter()
        .map(|c| {
            let o = rx_oob(c);
            (o.cqe_hdr.cqe_type(), o.packets().collect(), o.rx_wqe_offset)
        })
        .collect()
}

#[test]
fn four_back_to_back_frames_share_one_cqe_in_order() {
    let (mut r, mut sq, mut rq, bufs) = rig(2048);
    let mac = r.p[1].mac;
    let frames: Vec<Vec<u8>> = (0..4).map(|i| raw_frame(mac, 60 + i, i as u8)).collect();
    burst(&mut r, &mut sq, &frames);
    let got = cqes(&r, &mut rq);
    assert_eq!(got, [(CQE_RX_COALESCED_4, vec![(60, 0), (61, 0), (62, 0), (63, 0)], 0)]);
    for (f, b) in frames.iter().zip(&bufs) {
        assert_eq!(&read(&r.d, *b, f.len()), f);
    }
    let v = &r.dev.stats().vports[1];
    assert_eq!((v.rx_packets.get(), v.rx_cqes.get()), (4, 1));

    // Four TCP flows: one CQE, each entry with its own hash (Microsoft's 4-tuple values).
    let rows: [Flow; 4] = [
        ([66, 9, 149, 187], 2794, [161, 142, 100, 80], 1766, 0x51cc_c178),
        ([199, 92, 111, 2], 14230, [65, 69, 140, 83], 4739, 0xc626_b0ea),
        ([24, 19, 198, 95], 12898, [12, 22, 207, 184], 38024, 0x5c2b_394a),
        ([38, 27, 205, 30], 48228, [209, 142, 163, 6], 2217, 0xafc7_327f),
    ];
    let frames: Vec<Vec<u8>> = rows
        .iter()
        .enumerate()
        .map(|(i, (s, sp, d, dp, _))| ip_frame(mac, Ip::V4(*s, *d), TCP, (*sp, *dp), 10 + i))
        .collect();
    burst(&mut r, &mut sq, &frames);
    let c = drain(&r.d, &mut rq.cq);
    assert_eq!(c.len(), 1);
    let o = rx_oob(&c[0]);
    let want: Vec<(u16, u32)> =
        frames.iter().zip(&rows).map(|(f, row)| (f.len() as u16, row.4)).collect();
    assert_eq!((o.cqe_hdr.cqe_type(), o.packets().collect::<Vec<_>>()), (CQE_RX_COALESCED_4, want));
    assert_eq!(o.rx_wqe_offset, 4 * 32);
    assert_eq!(o.flags.rx_hashtype(), NDIS_HASH_TCP_IPV4);
    assert!(o.flags.rx_iphdr_csum_succeed() && o.flags.rx_tcp_csum_succeed());
}

#[test]
fn a_partial_run_is_written_at_the_end_of_the_pass() {
    let (mut r, mut sq, mut rq, _) = rig(2048);
    let mac = r.p[1].mac;
    let f = |n: usize, s: u8| raw_frame(mac, n, s);
    // Five: four in one CQE, the fifth alone.
    burst(&mut r, &mut sq, &[f(64, 0), f(65, 1), f(66, 2), f(67, 3), f(68, 4)]);
    assert_eq!(
        cqes(&r, &mut rq),
        [
            (CQE_RX_COALESCED_4, vec![(64, 0), (65, 0), (66, 0), (67, 0)], 0),
            (CQE_RX_OKAY, vec![(68, 0)], 128),
        ]
    );
    // Three: one CQE with three entries.
    burst(&mut r, &mut sq, &[f(70, 5), f(71, 6), f(72, 7)]);
    assert_eq!(cqes(&r, &mut rq), [(CQE_RX_COALESCED_4, vec![(70, 0), (71, 0), (72, 0)], 160)]);
    // One: a plain CQE.
    burst(&mut r, &mut sq, &[f(73, 8)]);
    assert_eq!(cqes(&r, &mut rq), [(CQE_RX_OKAY, vec![(73, 0)], 256)]);
    assert_eq!(r.dev.stats().vports[1].rx_cqes.get(), 4);
}

#[test]
fn frames_with_different_flags_are_not_coalesced() {
    let (mut r, mut sq, mut rq, bufs) = rig(2048);
    let mac = r.p[1].mac;
    // UDP with no hashable difference in flags: same hash type, same checksum results.
    let v4 = Ip::V4([10, 0, 0, 1], [10, 0, 0, 2]);
    let good = |sp| ip_frame(mac, v4, UDP, (sp, 9), 20);
    let mut bad = good(3);
    let at = bad.len() - 1;
    bad[at] ^= 0xff;
    let plain = raw_frame(mac, 70, 0);
    let frames = vec![
        good(1),
        good(2),
        bad.clone(),
        good(4),
        plain.clone(),
        tagged(&plain, 7),
        tagged(&plain, 7),
        tagged(&plain, 8),
    ];
    burst(&mut r, &mut sq, &frames);
    let got = cqes(&r, &mut rq);
    let runs: Vec<(u8, usize, u32)> = got.iter().map(|(t, p, off)| (*t, p.len(), *off)).collect();
    assert_eq!(
        runs,
        [
            (CQE_RX_COALESCED_4, 2, 0),   // two good UDP frames
            (CQE_RX_OKAY, 1, 64),         // bad UDP checksum
            (CQE_RX_OKAY, 1, 96),         // good again: a new run
            (CQE_RX_OKAY, 1, 128),        // not IP: no checksum flags
            (CQE_RX_COALESCED_4, 2, 160), // VLAN 7 twice
            (CQE_RX_OKAY, 1, 224),        // VLAN 8
        ]
    );
    // Every frame is in its own buffer, in order (tags stripped).
    let delivered: Vec<Vec<u8>> = frames
        .iter()
        .map(|f| if f[12] == 0x81 { [&f[..12], &f[16..]].concat() } else { f.clone() })
        .collect();
    for (f, b) in delivered.iter().zip(&bufs) {
        assert_eq!(&read(&r.d, *b, f.len()), f);
    }
    // The hashes of the coalesced UDP pair are their own.
    let (h1, h2) = (got[0].1[0].1, got[0].1[1].1);
    assert_ne!(h1, h2);
    assert!(h1 != 0 && h2 != 0);
}

#[test]
fn an_error_ends_a_run_and_keeps_the_order() {
    let (mut r, mut sq, mut rq, _) = rig(100);
    let mac = r.p[1].mac;
    // The third frame does not fit a 100-byte buffer.
    burst(
        &mut r,
        &mut sq,
        &[
            raw_frame(mac, 64, 0),
            raw_frame(mac, 65, 1),
            raw_frame(mac, 200, 2),
            raw_frame(mac, 66, 3),
        ],
    );
    assert_eq!(
        cqes(&r, &mut rq),
        [
            (CQE_RX_COALESCED_4, vec![(64, 0), (65, 0)], 0),
            (CQE_RX_TRUNCATED, vec![], 64),
            (CQE_RX_OKAY, vec![(66, 0)], 96),
        ]
    );
}
