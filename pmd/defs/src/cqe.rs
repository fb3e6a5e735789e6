//! Completion queue entries: the 64-byte CQE, its info dword, the Ethernet CQE header, the
//! RX and TX completion OOBs and the HWC receive OOB.
//!
//! Spec: §4.1 (CQE layout, info dword with owner bits), §4.2 (Ethernet CQE header and
//! `cqe_type` values), §4.3 (RX completion OOB, coalescing), §4.4 (TX completion OOB),
//! §4.5 (`hwc_rx_oob`). The driver reads CQEs dword by dword from ring memory; the dword
//! index constants here tell it where each field lives.

use crate::bits::bitfield;
use crate::error::{DecodeError, read_prefix};
use crate::queue::{GDMA_CQE_SIZE, GDMA_OWNER_SHIFT};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// Client data bytes in a CQE (`GDMA_COMP_DATA_SIZE`).
pub const GDMA_COMP_DATA_SIZE: usize = 0x3C;
/// Client data dwords in a CQE.
pub const CQE_DATA_DWORDS: usize = GDMA_COMP_DATA_SIZE / 4;
/// Dword index of the CQE info dword (byte offset 60).
pub const CQE_INFO_DWORD: usize = 15;
/// Byte offset of the CQE info dword.
pub const CQE_INFO_OFFSET: usize = 60;
/// Byte offset of the CQE byte carrying the owner bits (written last by the device).
pub const CQE_OWNER_BYTE_OFFSET: usize = 63;

/// `client_type` of an Ethernet completion (`MANA_CQE_COMPLETION`).
pub const MANA_CQE_COMPLETION: u8 = 1;

/// `cqe_type`: invalid.
pub const CQE_INVALID: u8 = 0;
/// `cqe_type`: one packet received.
pub const CQE_RX_OKAY: u8 = 1;
/// `cqe_type`: up to 4 packets received in one CQE.
pub const CQE_RX_COALESCED_4: u8 = 2;
/// `cqe_type`: completion of `MANA_FENCE_RQ` (no packet, no WQE consumed).
pub const CQE_RX_OBJECT_FENCE: u8 = 3;
/// `cqe_type`: packet larger than the posted buffer; WQE consumed, packet dropped.
pub const CQE_RX_TRUNCATED: u8 = 4;
/// `cqe_type`: up to 8 packets, 2 per PPI entry (newest LNX only; layout unconfirmed).
pub const CQE_RX_COALESCED_8: u8 = 7;
/// `cqe_type`: packet sent.
pub const CQE_TX_OKAY: u8 = 32;
/// `cqe_type`: dropped by source MAC enforcement.
pub const CQE_TX_SA_DROP: u8 = 33;
/// `cqe_type`: dropped, larger than the MTU.
pub const CQE_TX_MTU_DROP: u8 = 34;
/// `cqe_type`: OOB metadata did not match the packet.
pub const CQE_TX_INVALID_OOB: u8 = 35;
/// `cqe_type`: invalid EtherType.
pub const CQE_TX_INVALID_ETH_TYPE: u8 = 36;
/// `cqe_type`: header processing error.
pub const CQE_TX_HDR_PROCESSING_ERROR: u8 = 37;
/// `cqe_type`: VF disabled.
pub const CQE_TX_VF_DISABLED: u8 = 38;
/// `cqe_type`: vport index out of range.
pub const CQE_TX_VPORT_IDX_OUT_OF_RANGE: u8 = 39;
/// `cqe_type`: vport disabled.
pub const CQE_TX_VPORT_DISABLED: u8 = 40;
/// `cqe_type`: VLAN tagging violation.
pub const CQE_TX_VLAN_TAGGING_VIOLATION: u8 = 41;
/// `cqe_type`: the hardware disabled the SQ (e.g. corrupt WQE); recreate the queue.
pub const CQE_TX_GDMA_ERR: u8 = 42;

/// Whether `cqe_type` is a TX type (32..=42).
#[inline]
pub const fn is_tx_cqe_type(t: u8) -> bool {
    t >= CQE_TX_OKAY && t <= CQE_TX_GDMA_ERR
}

/// Whether `cqe_type` is a TX error type (33..=42): such CQEs are generated per WQE even when
/// the WQE asked for CQE suppression (§4.5).
#[inline]
pub const fn is_tx_error_cqe_type(t: u8) -> bool {
    t > CQE_TX_OKAY && t <= CQE_TX_GDMA_ERR
}

/// Spec name of a `cqe_type` value, or `None` if unknown.
pub const fn cqe_type_name(t: u8) -> Option<&'static str> {
    Some(match t {
        CQE_INVALID => "CQE_INVALID",
        CQE_RX_OKAY => "CQE_RX_OKAY",
        CQE_RX_COALESCED_4 => "CQE_RX_COALESCED_4",
        CQE_RX_OBJECT_FENCE => "CQE_RX_OBJECT_FENCE",
        CQE_RX_TRUNCATED => "CQE_RX_TRUNCATED",
        CQE_RX_COALESCED_8 => "CQE_RX_COALESCED_8",
        CQE_TX_OKAY => "CQE_TX_OKAY",
        CQE_TX_SA_DROP => "CQE_TX_SA_DROP",
        CQE_TX_MTU_DROP => "CQE_TX_MTU_DROP",
        CQE_TX_INVALID_OOB => "CQE_TX_INVALID_OOB",
        CQE_TX_INVALID_ETH_TYPE => "CQE_TX_INVALID_ETH_TYPE",
        CQE_TX_HDR_PROCESSING_ERROR => "CQE_TX_HDR_PROCESSING_ERROR",
        CQE_TX_VF_DISABLED => "CQE_TX_VF_DISABLED",
        CQE_TX_VPORT_IDX_OUT_OF_RANGE => "CQE_TX_VPORT_IDX_OUT_OF_RANGE",
        CQE_TX_VPORT_DISABLED => "CQE_TX_VPORT_DISABLED",
        CQE_TX_VLAN_TAGGING_VIOLATION => "CQE_TX_VLAN_TAGGING_VIOLATION",
        CQE_TX_GDMA_ERR => "CQE_TX_GDMA_ERR",
        _ => return None,
    })
}

bitfield! {
    /// The CQE info dword (byte offset 60, §4.1).
    pub struct CqeInfo(u32);
    /// Id of the SQ/RQ that completed.
    field wq_num, with_wq_num: u32 [0, 24];
    /// 1 = send queue.
    flag is_sq, with_is_sq [24];
    /// `cmpln` (OVMM only; reserved elsewhere).
    flag cmpln, with_cmpln [25];
    /// 3-bit owner count (§1.4).
    field owner_bits, with_owner_bits: u8 [GDMA_OWNER_SHIFT, 3];
}

impl CqeInfo {
    /// Info dword for a completion of WQ `wq_num`, with owner count `owner`.
    #[inline]
    pub const fn new(wq_num: u32, is_sq: bool, owner: u8) -> Self {
        Self::ZERO.with_wq_num(wq_num).with_is_sq(is_sq).with_owner_bits(owner)
    }

    /// The last byte of the CQE (carries the owner bits; the device writes it last).
    #[inline]
    pub const fn last_byte(self) -> u8 {
        (self.0 >> 24) as u8
    }
}

/// A 64-byte CQE (§4.1).
#[repr(C)]
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct Cqe {
    /// Client data: Ethernet RX/TX completion OOB or `hwc_rx_oob`.
    pub data: [u32; CQE_DATA_DWORDS],
    /// Info dword.
    pub info: CqeInfo,
}

const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(size_of::<Cqe>() == GDMA_CQE_SIZE as usize);
    assert!(offset_of!(Cqe, data) == 0);
    assert!(offset_of!(Cqe, info) == CQE_INFO_OFFSET);
};

impl Cqe {
    /// A CQE with `data` (zero-extended to 15 dwords; extra dwords ignored) and `info`.
    pub fn new(data: &[u32], info: CqeInfo) -> Self {
        let mut d = [0u32; CQE_DATA_DWORDS];
        for (o, i) in d.iter_mut().zip(data) {
            *o = *i;
        }
        Self { data: d, info }
    }

    /// The 16 dwords as stored in ring memory.
    #[inline]
    pub const fn to_dwords(&self) -> [u32; 16] {
        let mut out = [0u32; 16];
        let mut i = 0;
        while i < CQE_DATA_DWORDS {
            out[i] = self.data[i];
            i += 1;
        }
        out[CQE_INFO_DWORD] = self.info.0;
        out
    }

    /// Builds a CQE from its 16 dwords.
    #[inline]
    pub const fn from_dwords(d: &[u32; 16]) -> Self {
        let mut data = [0u32; CQE_DATA_DWORDS];
        let mut i = 0;
        while i < CQE_DATA_DWORDS {
            data[i] = d[i];
            i += 1;
        }
        Self { data, info: CqeInfo(d[CQE_INFO_DWORD]) }
    }

    /// The 64 bytes as stored in ring memory.
    pub fn to_bytes(&self) -> [u8; 64] {
        let mut out = [0u8; 64];
        out.copy_from_slice(self.as_bytes());
        out
    }

    /// Decodes a CQE from the first 64 bytes of `bytes`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        read_prefix(bytes)
    }
}

bitfield! {
    /// Ethernet CQE header: client data dword 0 (§4.2).
    pub struct ManaCqeHeader(u32);
    /// `cqe_type` (`CQE_*`).
    field cqe_type, with_cqe_type: u8 [0, 6];
    /// `client_type` (1 = [`MANA_CQE_COMPLETION`]).
    field client_type, with_client_type: u8 [6, 2];
    /// Vendor error code.
    field vendor_err, with_vendor_err: u32 [8, 24];
}

impl ManaCqeHeader {
    /// Header of an Ethernet completion of type `cqe_type` (client type 1, no vendor error).
    #[inline]
    pub const fn new(cqe_type: u8) -> Self {
        Self::ZERO.with_cqe_type(cqe_type).with_client_type(MANA_CQE_COMPLETION)
    }
}

/// Dword index of the RX OOB flags dword.
pub const RX_OOB_FLAGS_DWORD: usize = 1;
/// Dword index of `rx_wqe_offset`.
pub const RX_OOB_WQE_OFFSET_DWORD: usize = 14;
/// Number of per-packet info entries (`MANA_RXCOMP_OOB_NUM_PPI`).
pub const MANA_RXCOMP_OOB_NUM_PPI: usize = 4;

/// Dword index of `ppi[i].pkt_len` (low 16 bits) in the CQE data.
#[inline]
pub const fn rx_ppi_len_dword(i: usize) -> usize {
    2 + 3 * i
}

/// Dword index of `ppi[i].pkt_hash` in the CQE data.
#[inline]
pub const fn rx_ppi_hash_dword(i: usize) -> usize {
    4 + 3 * i
}

bitfield! {
    /// RX completion OOB flags dword (byte 4, §4.3).
    pub struct RxCompFlags(u32);
    /// VLAN id of a stripped tag.
    field rx_vlan_id, with_rx_vlan_id: u16 [0, 12];
    /// A VLAN tag was stripped.
    flag rx_vlantag_present, with_rx_vlantag_present [12];
    /// Outer IPv4 header checksum good.
    flag rx_outer_iphdr_csum_succeed, with_rx_outer_iphdr_csum_succeed [13];
    /// Outer IPv4 header checksum bad.
    flag rx_outer_iphdr_csum_fail, with_rx_outer_iphdr_csum_fail [14];
    /// NDIS hash type bits (§8, `NDIS_HASH_*`).
    field rx_hashtype, with_rx_hashtype: u16 [16, 9];
    /// IPv4 header checksum good.
    flag rx_iphdr_csum_succeed, with_rx_iphdr_csum_succeed [25];
    /// IPv4 header checksum bad.
    flag rx_iphdr_csum_fail, with_rx_iphdr_csum_fail [26];
    /// TCP checksum good.
    flag rx_tcp_csum_succeed, with_rx_tcp_csum_succeed [27];
    /// TCP checksum bad.
    flag rx_tcp_csum_fail, with_rx_tcp_csum_fail [28];
    /// UDP checksum good.
    flag rx_udp_csum_succeed, with_rx_udp_csum_succeed [29];
    /// UDP checksum bad.
    flag rx_udp_csum_fail, with_rx_udp_csum_fail [30];
}

/// Per-packet info of an RX completion (12 bytes).
#[repr(C)]
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct RxPerPktInfo {
    /// Packet length (0 terminates the list in a coalesced CQE).
    pub pkt_len: u16,
    /// Reserved.
    pub reserved1: u16,
    /// Reserved.
    pub reserved2: u32,
    /// RSS hash value.
    pub pkt_hash: u32,
}

/// RX completion OOB (§4.3): the 60 bytes of client data of an RX CQE.
#[repr(C)]
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct RxCompOob {
    /// CQE header.
    pub cqe_hdr: ManaCqeHeader,
    /// Flags dword.
    pub flags: RxCompFlags,
    /// Per-packet info.
    pub ppi: [RxPerPktInfo; MANA_RXCOMP_OOB_NUM_PPI],
    /// Position of the (first) RQ WQE consumed.
    pub rx_wqe_offset: u32,
}

const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(size_of::<RxPerPktInfo>() == 12);
    assert!(offset_of!(RxPerPktInfo, pkt_hash) == 8);
    assert!(size_of::<RxCompOob>() == GDMA_COMP_DATA_SIZE);
    assert!(offset_of!(RxCompOob, flags) == 4 * RX_OOB_FLAGS_DWORD);
    assert!(offset_of!(RxCompOob, ppi) == 8);
    assert!(offset_of!(RxCompOob, rx_wqe_offset) == 4 * RX_OOB_WQE_OFFSET_DWORD);
    assert!(offset_of!(RxCompOob, ppi) + 12 * 3 == 4 * rx_ppi_len_dword(3));
    assert!(offset_of!(RxCompOob, ppi) + 12 * 3 + 8 == 4 * rx_ppi_hash_dword(3));
};

/// Converts CQE data dwords to a client-data struct of up to 60 bytes.
fn from_data<T: FromBytes>(d: &[u32; CQE_DATA_DWORDS]) -> T {
    let mut b = [0u8; GDMA_COMP_DATA_SIZE];
    for (c, w) in b.chunks_exact_mut(4).zip(d) {
        c.copy_from_slice(&w.to_le_bytes());
    }
    // Every client-data struct is ≤ 60 bytes (asserted at compile time), so this succeeds.
    T::read_from_prefix(&b).map(|(v, _)| v).unwrap_or_else(|_| T::new_zeroed())
}

/// Converts a client-data struct of up to 60 bytes to CQE data dwords (zero-extended).
fn to_data<T: IntoBytes + Immutable>(v: &T) -> [u32; CQE_DATA_DWORDS] {
    let mut b = [0u8; GDMA_COMP_DATA_SIZE];
    let src = v.as_bytes();
    let n = src.len().min(GDMA_COMP_DATA_SIZE);
    b[..n].copy_from_slice(&src[..n]);
    let mut d = [0u32; CQE_DATA_DWORDS];
    for (w, c) in d.iter_mut().zip(b.chunks_exact(4)) {
        *w = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
    }
    d
}

impl RxCompOob {
    /// Decodes from the client data of a CQE.
    #[inline]
    pub fn from_cqe_data(d: &[u32; CQE_DATA_DWORDS]) -> Self {
        from_data(d)
    }

    /// Encodes as CQE client data.
    #[inline]
    pub fn to_cqe_data(&self) -> [u32; CQE_DATA_DWORDS] {
        to_data(self)
    }

    /// Number of packets described: entries up to the first `pkt_len == 0` (at most 4).
    pub fn packet_count(&self) -> usize {
        self.ppi.iter().take_while(|p| p.pkt_len != 0).count()
    }

    /// `(pkt_len, pkt_hash)` of each described packet, in order.
    pub fn packets(&self) -> impl Iterator<Item = (u16, u32)> + '_ {
        self.ppi.iter().take_while(|p| p.pkt_len != 0).map(|p| (p.pkt_len, p.pkt_hash))
    }
}

bitfield! {
    /// TX completion OOB dword 2 (byte 8, §4.4).
    pub struct TxCompOffsets(u32);
    /// SGL offset (5 bits).
    field tx_sgl_offset, with_tx_sgl_offset: u8 [0, 5];
    /// SQ position of the completed WQE (27 bits).
    field tx_wqe_offset, with_tx_wqe_offset: u32 [5, 27];
}

/// TX completion OOB (§4.4): the 60 bytes of client data of a TX CQE.
#[repr(C)]
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct TxCompOob {
    /// CQE header.
    pub cqe_hdr: ManaCqeHeader,
    /// TX data offset.
    pub tx_data_offset: u32,
    /// SGL and WQE offsets.
    pub offsets: TxCompOffsets,
    /// Reserved.
    pub reserved: [u32; 12],
}

const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(size_of::<TxCompOob>() == GDMA_COMP_DATA_SIZE);
    assert!(offset_of!(TxCompOob, tx_data_offset) == 4);
    assert!(offset_of!(TxCompOob, offsets) == 8);
    assert!(offset_of!(TxCompOob, reserved) == 12);
};

impl TxCompOob {
    /// A TX completion of type `cqe_type` with all offsets 0 (as OVMM-emu writes).
    #[inline]
    pub const fn new(cqe_type: u8) -> Self {
        Self {
            cqe_hdr: ManaCqeHeader::new(cqe_type),
            tx_data_offset: 0,
            offsets: TxCompOffsets::ZERO,
            reserved: [0; 12],
        }
    }

    /// Decodes from the client data of a CQE.
    #[inline]
    pub fn from_cqe_data(d: &[u32; CQE_DATA_DWORDS]) -> Self {
        from_data(d)
    }

    /// Encodes as CQE client data.
    #[inline]
    pub fn to_cqe_data(&self) -> [u32; CQE_DATA_DWORDS] {
        to_data(self)
    }
}

bitfield! {
    /// `hwc_rx_oob` dword 0.
    pub struct HwcRxOobFlags(u32);
    /// Type (6 bits).
    field ty, with_ty: u8 [0, 6];
    /// End of message.
    flag eom, with_eom [6];
    /// Start of message.
    flag som, with_som [7];
    /// Vendor error.
    field vendor_err, with_vendor_err: u8 [8, 8];
}

bitfield! {
    /// `hwc_rx_oob` dword 1.
    pub struct HwcRxOobSrc(u32);
    /// Source virtual WQ.
    field src_virt_wq, with_src_virt_wq: u32 [0, 24];
    /// Source VF id.
    field src_vfid, with_src_vfid: u8 [24, 8];
}

/// `hwc_rx_oob` (32 bytes, §4.5): client data of the HWC RQ CQE that delivers a response.
#[repr(C)]
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct HwcRxOob {
    /// Dword 0.
    pub flags: HwcRxOobFlags,
    /// Dword 1.
    pub src: HwcRxOobSrc,
    /// Dword 2, reserved.
    pub reserved2: u32,
    /// Dword 3: byte offset of the RQ WQE that received the response (`wqe_addr_low`).
    pub wqe_offset: u32,
    /// Dword 4: `wqe_addr_high`.
    pub wqe_addr_high: u32,
    /// Dword 5: `client_data_unit` in bits 0..14.
    pub client_data_unit: u32,
    /// Dword 6: response length in bytes.
    pub tx_oob_data_size: u32,
    /// Dword 7: `chunk_offset` in bits 0..21.
    pub chunk_offset: u32,
}

const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(size_of::<HwcRxOob>() == 32);
    assert!(offset_of!(HwcRxOob, src) == 4);
    assert!(offset_of!(HwcRxOob, wqe_offset) == 12);
    assert!(offset_of!(HwcRxOob, wqe_addr_high) == 16);
    assert!(offset_of!(HwcRxOob, client_data_unit) == 20);
    assert!(offset_of!(HwcRxOob, tx_oob_data_size) == 24);
    assert!(offset_of!(HwcRxOob, chunk_offset) == 28);
};

impl HwcRxOob {
    /// The OOB the device writes for a response of `len` bytes received by the RQ WQE at byte
    /// offset `wqe_offset` (unmasked, as OVMM-emu writes it).
    #[inline]
    pub const fn response(wqe_offset: u32, len: u32) -> Self {
        Self {
            flags: HwcRxOobFlags::ZERO,
            src: HwcRxOobSrc::ZERO,
            reserved2: 0,
            wqe_offset,
            wqe_addr_high: 0,
            client_data_unit: 0,
            tx_oob_data_size: len,
            chunk_offset: 0,
        }
    }

    /// Decodes from the client data of a CQE.
    #[inline]
    pub fn from_cqe_data(d: &[u32; CQE_DATA_DWORDS]) -> Self {
        from_data(d)
    }

    /// Encodes as CQE client data (zero-extended).
    #[inline]
    pub fn to_cqe_data(&self) -> [u32; CQE_DATA_DWORDS] {
        to_data(self)
    }
}

#[cfg(test)]
mod tests;
