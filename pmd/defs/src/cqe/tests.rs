//! Byte-level tests of the CQE formats (§4), values derived by hand from the spec tables.

use super::*;
use crate::queue::{OwnerRing, OwnerState};

#[test]
fn cqe_info_worked_example() {
    // Spec/issue: info dword of a first-lap CQE for SQ 0x12 on a 64-entry CQ.
    let ring = OwnerRing::new(64).unwrap();
    let tail = ring.initial_index();
    let info = CqeInfo::new(0x12, true, ring.owner_for_tail(tail));
    assert_eq!(info.0, 0x2100_0012);
    assert_eq!((info.wq_num(), info.is_sq(), info.owner_bits()), (0x12, true, 1));
    assert_eq!(info.last_byte(), 0x21);
    assert_eq!(ring.classify(tail, info.owner_bits()), OwnerState::Valid);
    // Second lap, RQ 0x34: owner 2, is_sq 0.
    assert_eq!(CqeInfo::new(0x34, false, ring.owner_for_tail(128)).0, 0x4000_0034);
    // Owner count 7 fills the top three bits.
    assert_eq!(CqeInfo::new(0xFF_FFFF, true, 7).0, 0xE1FF_FFFF);
    assert!(CqeInfo(0x2200_0005).cmpln());
}

#[test]
fn cqe_dwords_and_bytes() {
    let cqe = Cqe::new(&[0x60, 1, 2], CqeInfo(0x2100_0012));
    let d = cqe.to_dwords();
    assert_eq!(d[0], 0x60);
    assert_eq!(d[2], 2);
    assert_eq!(d[3..15], [0; 12]);
    assert_eq!(d[CQE_INFO_DWORD], 0x2100_0012);
    assert_eq!(Cqe::from_dwords(&d), cqe);
    let b = cqe.to_bytes();
    assert_eq!(b[CQE_INFO_OFFSET..], [0x12, 0x00, 0x00, 0x21]);
    assert_eq!(b[CQE_OWNER_BYTE_OFFSET] >> 5, 1);
    assert_eq!(Cqe::from_bytes(&b), Ok(cqe));
    assert_eq!(Cqe::from_bytes(&b[..63]), Err(DecodeError::Truncated { needed: 64, got: 63 }));
}

#[test]
fn rx_oob_two_coalesced_packets() {
    // CQE_RX_COALESCED_4 (type 2, client type 1 -> 0x42); TCP/IPv4 hash type (bit 1 -> 0x2 << 16),
    // IP csum ok (bit 25), TCP csum ok (bit 27); packets of 60 and 1514 bytes; third length 0.
    let mut data = [0u32; CQE_DATA_DWORDS];
    data[0] = 0x0000_0042;
    data[1] = 0x0A02_0000;
    data[2] = 60;
    data[4] = 0xDEAD_BEEF;
    data[5] = 1514;
    data[7] = 0x1234_5678;
    data[14] = 0x40;
    let oob = RxCompOob::from_cqe_data(&data);
    assert_eq!(oob.cqe_hdr.cqe_type(), CQE_RX_COALESCED_4);
    assert_eq!(oob.cqe_hdr.client_type(), MANA_CQE_COMPLETION);
    assert_eq!(oob.cqe_hdr.vendor_err(), 0);
    assert_eq!(oob.flags.rx_hashtype(), 0x002);
    assert!(oob.flags.rx_iphdr_csum_succeed() && oob.flags.rx_tcp_csum_succeed());
    assert!(!oob.flags.rx_tcp_csum_fail() && !oob.flags.rx_udp_csum_succeed());
    assert!(!oob.flags.rx_vlantag_present());
    assert_eq!(oob.packet_count(), 2);
    assert_eq!(oob.packets().collect::<Vec<_>>(), vec![(60, 0xDEAD_BEEF), (1514, 0x1234_5678)]);
    assert_eq!(oob.rx_wqe_offset, 0x40);
    assert_eq!(oob.to_cqe_data(), data);
    // Hot-path dword indices agree with the struct layout.
    assert_eq!(data[rx_ppi_len_dword(1)] & 0xFFFF, 1514);
    assert_eq!(data[rx_ppi_hash_dword(1)], 0x1234_5678);
}

#[test]
fn rx_oob_single_packet_with_vlan() {
    // CQE_RX_OKAY, VLAN 100 stripped, UDP/IPv6 hash (bit 5), UDP csum ok (bit 29).
    let flags = RxCompFlags::ZERO
        .with_rx_vlan_id(100)
        .with_rx_vlantag_present(true)
        .with_rx_hashtype(crate::rss::NDIS_HASH_UDP_IPV6)
        .with_rx_udp_csum_succeed(true);
    assert_eq!(flags.0, 0x2020_1064);
    let mut oob =
        RxCompOob { cqe_hdr: ManaCqeHeader::new(CQE_RX_OKAY), flags, ..RxCompOob::default() };
    oob.ppi[0] = RxPerPktInfo { pkt_len: 98, reserved1: 0, reserved2: 0, pkt_hash: 0xCAFE };
    let d = oob.to_cqe_data();
    assert_eq!(d[..5], [0x41, 0x2020_1064, 98, 0, 0xCAFE]);
    assert_eq!(RxCompOob::from_cqe_data(&d).packet_count(), 1);
    // Fence and truncated CQEs carry no packet.
    let fence =
        RxCompOob { cqe_hdr: ManaCqeHeader::new(CQE_RX_OBJECT_FENCE), ..RxCompOob::default() };
    assert_eq!(fence.to_cqe_data()[0], 0x43);
    assert_eq!(fence.packet_count(), 0);
}

#[test]
fn tx_completion_oob() {
    assert_eq!(TxCompOob::new(CQE_TX_OKAY).to_cqe_data()[0], 0x60);
    let err = TxCompOob {
        cqe_hdr: ManaCqeHeader::new(CQE_TX_GDMA_ERR).with_vendor_err(0x201),
        ..TxCompOob::new(0)
    };
    assert_eq!(err.cqe_hdr.0, 0x0002_016A);
    let with_off = TxCompOob {
        offsets: TxCompOffsets::ZERO.with_tx_sgl_offset(3).with_tx_wqe_offset(0x40),
        ..err
    };
    let d = with_off.to_cqe_data();
    assert_eq!(d[..3], [0x0002_016A, 0, 0x0000_0803]);
    let back = TxCompOob::from_cqe_data(&d);
    assert_eq!(back, with_off);
    assert_eq!((back.offsets.tx_sgl_offset(), back.offsets.tx_wqe_offset()), (3, 0x40));
    assert!(is_tx_cqe_type(CQE_TX_OKAY) && !is_tx_error_cqe_type(CQE_TX_OKAY));
    assert!(is_tx_error_cqe_type(CQE_TX_SA_DROP) && is_tx_error_cqe_type(CQE_TX_GDMA_ERR));
    assert!(!is_tx_cqe_type(CQE_RX_OKAY) && !is_tx_cqe_type(43));
    assert_eq!(cqe_type_name(CQE_TX_GDMA_ERR), Some("CQE_TX_GDMA_ERR"));
    assert_eq!(cqe_type_name(CQE_RX_COALESCED_4), Some("CQE_RX_COALESCED_4"));
    assert_eq!(cqe_type_name(5), None);
}

#[test]
fn hwc_rx_oob_in_rq_cqe() {
    // Response of 44 bytes into the HWC RQ WQE at byte offset 0x20; HWC RQ id 3, first lap.
    let oob = HwcRxOob::response(0x20, 44);
    let cqe = Cqe { data: oob.to_cqe_data(), info: CqeInfo::new(3, false, 1) };
    assert_eq!(cqe.to_dwords(), [0, 0, 0, 0x20, 0, 0, 44, 0, 0, 0, 0, 0, 0, 0, 0, 0x2000_0003]);
    let back = HwcRxOob::from_cqe_data(&cqe.data);
    assert_eq!((back.wqe_offset, back.tx_oob_data_size), (0x20, 44));
    assert_eq!(back.wqe_offset / 32, 1); // LNX: WQE index = byte offset / 32
    let f = HwcRxOobFlags::ZERO.with_ty(5).with_eom(true).with_som(true).with_vendor_err(0x11);
    assert_eq!(f.0, 0x0000_11C5);
    assert_eq!(HwcRxOobSrc::ZERO.with_src_virt_wq(7).with_src_vfid(1).0, 0x0100_0007);
}
