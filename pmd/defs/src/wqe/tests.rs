//! Byte-level tests of the WQE formats (§3), values derived by hand from the spec tables.

use super::*;

#[test]
fn wqe_sizes_and_sgl_offsets() {
    assert_eq!(InlineOobSize::Small.sgl_offset(), 16);
    assert_eq!(InlineOobSize::Large.sgl_offset(), 32);
    assert_eq!(InlineOobSize::Oob32.sgl_offset(), 48);
    assert_eq!(wqe_size_bytes(InlineOobSize::Small, 1), 32);
    assert_eq!(wqe_size_bytes(InlineOobSize::Small, 2), 64);
    assert_eq!(wqe_size_bytes(InlineOobSize::Large, 1), 64);
    assert_eq!(wqe_size_bytes(InlineOobSize::Large, 2), 64);
    assert_eq!(wqe_size_bytes(InlineOobSize::Large, 3), 96);
    // Limits: 30 TX SGEs fit 512 B with either OOB; 15 RX SGEs fit 256 B.
    assert_eq!(wqe_size_bytes(InlineOobSize::Small, MAX_TX_WQE_SGL_ENTRIES), 512);
    assert_eq!(wqe_size_bytes(InlineOobSize::Large, MAX_TX_WQE_SGL_ENTRIES), 512);
    assert_eq!(wqe_size_bytes(InlineOobSize::Small, MAX_RX_WQE_SGL_ENTRIES), MAX_RX_WQE_SIZE);
    assert_eq!(wqe_size_bu(InlineOobSize::Large, 31), 17);
    assert_eq!(InlineOobSize::from_code(6), Some(InlineOobSize::Large));
    assert_eq!(InlineOobSize::from_code(3), None);
}

#[test]
fn wqe_header_dwords() {
    // TX WQE, 2 SGEs, short OOB: flags = 2 | (2 << 8).
    let h = WqeHeader::new(2, InlineOobSize::Small);
    assert_eq!(h.to_dwords(), [0, 0x0000_0202]);
    assert_eq!(h.size_bytes(), Some(64));
    // Long OOB, 2 SGEs.
    assert_eq!(WqeHeader::new(2, InlineOobSize::Large).to_dwords(), [0, 0x0000_0602]);
    // LSO: 3 SGEs, MSS 1460, 54-byte header SGE.
    let lso = WqeHeader::tx_lso(3, InlineOobSize::Small, 1460, 54).unwrap();
    assert_eq!(lso.to_dwords(), [0x3600_0000, 0x05B4_0A03]);
    assert_eq!(WqeHeader::from_dwords(lso.to_dwords()), lso);
    assert_eq!(
        (lso.last_vbytes(), lso.client_data_unit(), lso.client_oob_in_sgl()),
        (54, 1460, true)
    );
    assert!(WqeHeader::tx_lso(1, InlineOobSize::Small, 1460, 54).is_err());
    assert_eq!(
        WqeHeader::tx_lso(3, InlineOobSize::Small, 1 << 14, 54),
        Err(EncodeError::OutOfRange { field: "mss", value: 1 << 14, max: MAX_LSO_MSS as u64 })
    );
    assert!(WqeHeader(0x8000_0000_0000_0000).sgl_direct());
    assert_eq!(WqeHeader::new(1, InlineOobSize::Small).with_fence(true).to_dwords(), [0, 0x2201]);
}

#[test]
fn sge_and_empty_sgl_rule() {
    let s = Sge::new(0x0000_0001_2345_6000, 0x77, 2048);
    assert_eq!(s.to_dwords(), [0x2345_6000, 0x0000_0001, 0x77, 0x800]);
    assert_eq!(Sge::from_dwords(s.to_dwords()), s);
    assert_eq!(
        s.as_bytes(),
        &[0x00, 0x60, 0x45, 0x23, 0x01, 0, 0, 0, 0x77, 0, 0, 0, 0x00, 0x08, 0, 0]
    );
    assert_eq!(Sge::from_bytes(s.as_bytes()), Ok(s));
    assert!(Sge::from_bytes(&[0; 15]).is_err());
    assert_eq!(EMPTY_SGE.to_dwords(), [1, 0, 0, 0]);
    assert!(EMPTY_SGE.is_empty_marker());
    assert!(!s.is_empty_marker());
}

fn ipv4_tcp_spec() -> TxOobSpec {
    TxOobSpec {
        cq_id: 0x15,
        sq_id: 0x12345,
        vport_offset: 7,
        l3: TxL3::Ipv4,
        ip_csum: true,
        tcp_csum: true,
        trans_off: 34,
        ..TxOobSpec::default()
    }
}

#[test]
fn tx_short_oob_with_checksums() {
    // dw0: ipv4 (bit 2) | ip csum (bit 4) | tcp csum (bit 5) = 0x34, vcq 0x15 << 8.
    // dw1: trans_off 34 | vsq_frame ((0x12345 >> 10) = 0x48) << 10 | vp offset 7 << 24.
    let oob = TxOob::encode(&ipv4_tcp_spec()).unwrap();
    assert!(!oob.is_long());
    assert_eq!(oob.size(), InlineOobSize::Small);
    assert_eq!(oob.to_dwords()[..2], [0x0000_1534, 0x0701_2022]);
    assert_eq!(oob.long, TxLongOob::ZERO);
    assert_eq!(vsq_frame(0x12345), 0x48);
    assert_eq!(oob.short.vcq_num(), 0x15);
    assert_eq!(oob.short.trans_off(), 34);
    assert_eq!(oob.vport_offset(), 7);
    // Suppressed CQE sets bit 7.
    let s = TxOob::encode(&TxOobSpec { suppress_cqe: true, ..ipv4_tcp_spec() }).unwrap();
    assert_eq!(s.to_dwords()[0], 0x0000_15B4);
}

#[test]
fn tx_long_oob_with_vlan() {
    // VLAN 100, PCP 5: dw2 = inject (bit 3) | 5 << 16 | 100 << 20 = 0x0645_0008; pkt_fmt = 1.
    let spec =
        TxOobSpec { vlan: Some(VlanTag { pcp: 5, dei: false, vid: 100 }), ..ipv4_tcp_spec() };
    let oob = TxOob::encode(&spec).unwrap();
    assert!(oob.is_long());
    assert_eq!(oob.size(), InlineOobSize::Large);
    // LNX placement: offset 7 (≤ 255) stays in short_vp_offset even in long format.
    assert_eq!(oob.to_dwords(), [0x0000_1535, 0x0701_2022, 0x0645_0008, 0, 0, 0]);
    assert_eq!(
        oob.as_bytes(),
        &[
            0x35, 0x15, 0, 0, 0x22, 0x20, 0x01, 0x07, 0x08, 0, 0x45, 0x06, 0, 0, 0, 0, 0, 0, 0, 0,
            0, 0, 0, 0
        ]
    );
    let dei =
        TxOob::encode(&TxOobSpec { vlan: Some(VlanTag { pcp: 0, dei: true, vid: 4095 }), ..spec })
            .unwrap();
    assert_eq!(dei.to_dwords()[2], 0xFFF8_0008);
}

#[test]
fn tx_long_oob_for_large_vport_offset() {
    // IPv6/UDP, vport offset 300: long format, long_vp_offset = 300 << 16 in dw3, short 0.
    let spec = TxOobSpec {
        cq_id: 0x15,
        sq_id: 0x12345,
        vport_offset: 300,
        l3: TxL3::Ipv6,
        udp_csum: true,
        ..TxOobSpec::default()
    };
    let oob = TxOob::encode(&spec).unwrap();
    assert_eq!(oob.to_dwords(), [0x0000_1549, 0x0001_2000, 0, 0x012C_0000, 0, 0]);
    assert_eq!(oob.vport_offset(), 300);
    // OVMM placement (only long_vp_offset) decodes to the same offset.
    let ovmm = TxOob {
        long: TxLongOob::ZERO.with_long_vp_offset(7),
        ..TxOob::encode(&TxOobSpec { force_long: true, vport_offset: 0, ..spec }).unwrap()
    };
    assert_eq!(ovmm.vport_offset(), 7);
    // Encapsulation forces the long format.
    let enc = TxOob::encode(&TxOobSpec {
        vport_offset: 1,
        encap: Some(TxEncap {
            inner_is_ipv6: true,
            inner_tcp_opt: false,
            inner_frame_offset: 50,
            inner_ip_rel_offset: 14,
        }),
        ..spec
    })
    .unwrap();
    assert_eq!(enc.to_dwords()[2..4], [0x0000_0003, 0x0000_3832]);
}

#[test]
fn tx_oob_rejects_out_of_range_fields() {
    let bad = |s: TxOobSpec| TxOob::encode(&s).unwrap_err();
    assert_eq!(
        bad(TxOobSpec { vport_offset: 4096, ..ipv4_tcp_spec() }),
        EncodeError::OutOfRange { field: "vport_offset", value: 4096, max: 4095 }
    );
    assert_eq!(
        bad(TxOobSpec { trans_off: 1024, ..ipv4_tcp_spec() }),
        EncodeError::OutOfRange { field: "trans_off", value: 1024, max: 1023 }
    );
    assert_eq!(
        bad(TxOobSpec { cq_id: 1 << 24, ..ipv4_tcp_spec() }),
        EncodeError::OutOfRange { field: "vcq_num", value: 1 << 24, max: 0xFF_FFFF }
    );
    assert_eq!(
        bad(TxOobSpec { vlan: Some(VlanTag { pcp: 8, dei: false, vid: 1 }), ..ipv4_tcp_spec() }),
        EncodeError::OutOfRange { field: "pcp", value: 8, max: 7 }
    );
}

#[test]
fn tx_oob_device_decode() {
    let long = TxOob::encode(&TxOobSpec {
        vlan: Some(VlanTag { pcp: 5, dei: false, vid: 100 }),
        ..ipv4_tcp_spec()
    })
    .unwrap();
    assert_eq!(TxOob::from_oob_bytes(long.as_bytes()), Ok(long));
    let short = TxOob::encode(&ipv4_tcp_spec()).unwrap();
    assert_eq!(TxOob::from_oob_bytes(&short.as_bytes()[..8]), Ok(short));
    assert!(TxOob::from_oob_bytes(&[0; 7]).is_err());
}

#[test]
fn rx_and_hwc_wqes() {
    let rx = rx_wqe(Sge::new(0x0000_0001_2345_6000, 0x77, 2048));
    assert_eq!(rx, [0, 0x0000_0201, 0, 0, 0x2345_6000, 0x0000_0001, 0x77, 0x800]);
    let hwc = hwc_sq_wqe(&HwcTxOob::vf(5, 6), Sge::new(0x1_0000, 0x99, 44));
    assert_eq!(hwc, [0, 0x0000_0601, 0, 0, 0, 0, 5, 6, 0x1_0000, 0, 0x99, 44, 0, 0, 0, 0]);
    let o = HwcTxOob::vf(5, 6);
    assert_eq!((o.vscq.vscq_id(), o.vsq_id, o.vscq.loopback()), (5, 6, false));
    let pf = HwcTxOobVscq::ZERO.with_vscq_id(1).with_dest_pf(true).with_loopback(true);
    assert_eq!(pf.0, 0x0500_0001);
    assert_eq!(HwcTxOobVrq::ZERO.with_vrq_id(0x10).with_dest_vfid(2).0, 0x0200_0010);
}

#[test]
fn encode_and_parse_round_trip() {
    let oob = TxOob::encode(&TxOobSpec {
        vlan: Some(VlanTag { pcp: 1, dei: false, vid: 2 }),
        ..ipv4_tcp_spec()
    })
    .unwrap();
    let sgl = [Sge::new(0x1000, 1, 64), Sge::new(0x2000, 1, 1400)];
    let mut buf = [0xAAu8; 512];
    let n = encode_wqe(&mut buf, WqeHeader::ZERO, oob.as_bytes(), &sgl).unwrap();
    assert_eq!(n, 64);
    assert_eq!(&buf[..8], &[0, 0, 0, 0, 0x02, 0x06, 0, 0]);
    assert_eq!(buf[64], 0xAA); // nothing written past the WQE
    let w = WqeRef::parse(&buf, MAX_TX_WQE_SIZE).unwrap();
    assert_eq!((w.size_bytes(), w.size_bu()), (64, 2));
    assert_eq!(w.oob(), oob.as_bytes());
    assert_eq!(w.sges().collect::<Vec<_>>(), sgl.to_vec());
    assert_eq!(TxOob::from_oob_bytes(w.oob()), Ok(oob));

    // RX WQE bytes parse as one SGE with a zero small OOB.
    let rx = rx_wqe(Sge::new(0xABC000, 9, 2048));
    let rx_bytes: Vec<u8> = rx.iter().flat_map(|d| d.to_le_bytes()).collect();
    let w = WqeRef::parse(&rx_bytes, MAX_RX_WQE_SIZE).unwrap();
    assert_eq!((w.size_bytes(), w.oob(), w.sges().len()), (32, &[0u8; 8][..], 1));

    // Empty SGL gets the dummy SGE.
    let mut buf = [0u8; 64];
    assert_eq!(encode_wqe(&mut buf, WqeHeader::ZERO, &[0; 8], &[]), Ok(32));
    assert_eq!(WqeRef::parse(&buf, 512).unwrap().sges().next(), Some(EMPTY_SGE));
    assert_eq!(
        encode_wqe(&mut buf[..16], WqeHeader::ZERO, &[0; 8], &sgl),
        Err(EncodeError::BufferTooSmall { needed: 64, got: 16 })
    );
}

#[test]
fn parse_rejects_bad_wqes() {
    let mut b = [0u8; 512];
    // num_sgl_entries = 0.
    b[4] = 0;
    b[5] = CLIENT_OOB_8;
    assert_eq!(
        WqeRef::parse(&b, 512),
        Err(DecodeError::InvalidField { field: "num_sgl_entries", value: 0 })
    );
    // Invalid OOB code 3.
    b[4] = 1;
    b[5] = 3;
    assert_eq!(
        WqeRef::parse(&b, 512),
        Err(DecodeError::InvalidField { field: "inline_client_oob_size", value: 3 })
    );
    // 16 SGEs on an RQ: 16 + 256 -> 288 > 256.
    b[4] = 16;
    b[5] = CLIENT_OOB_8;
    assert_eq!(
        WqeRef::parse(&b, MAX_RX_WQE_SIZE),
        Err(DecodeError::InvalidField { field: "wqe size", value: 288 })
    );
    // Longer than the bytes available.
    assert_eq!(
        WqeRef::parse(&b[..100], 512),
        Err(DecodeError::Truncated { needed: 288, got: 100 })
    );
    assert_eq!(WqeRef::parse(&b[..4], 512), Err(DecodeError::Truncated { needed: 8, got: 4 }));
}
