//! Work queue entries: header, SGE, Ethernet TX OOBs, RX WQE and the HWC TX OOB.
//!
//! Spec: §3.1 (layout and size rule `align32(8 + oob + 16 * nsge)`), §3.2 (header dwords and
//! the empty-SGL rule), §3.3 (SGE), §3.4 (TX short/long OOB, LSO rules, vport offset placement
//! per LNX), §3.5 (RX WQE), §3.6 (HWC WQEs and `hwc_tx_oob`), §10.1 (limits: 30 TX SGEs).

use crate::bits::bitfield;
use crate::error::{DecodeError, EncodeError, check_range, read_prefix};
use crate::queue::GDMA_WQE_BU_SIZE;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// WQE header size in bytes.
pub const WQE_HEADER_SIZE: u32 = 8;
/// SGE size in bytes.
pub const SGE_SIZE: u32 = 16;
/// Small inline OOB size in bytes (`INLINE_OOB_SMALL_SIZE`).
pub const INLINE_OOB_SMALL_SIZE: u32 = 8;
/// Large inline OOB size in bytes (`INLINE_OOB_LARGE_SIZE`).
pub const INLINE_OOB_LARGE_SIZE: u32 = 24;
/// `inline_client_oob_size` code for 8 bytes.
pub const CLIENT_OOB_8: u8 = 2;
/// `inline_client_oob_size` code for 24 bytes.
pub const CLIENT_OOB_24: u8 = 6;
/// `inline_client_oob_size` code for 32 bytes (OVMM; not used on Ethernet).
pub const CLIENT_OOB_32: u8 = 7;
/// Maximum SQ WQE size (`GDMA_MAX_SQE_SIZE`, `MAX_TX_WQE_SIZE`).
pub const MAX_TX_WQE_SIZE: u32 = 512;
/// Maximum RQ WQE size (`GDMA_MAX_RQE_SIZE`, `MAX_RX_WQE_SIZE`).
pub const MAX_RX_WQE_SIZE: u32 = 256;
/// Maximum SGEs in a TX WQE (LNX `MAX_TX_WQE_SGL_ENTRIES`; marked DISAGREE in §10.1: use 30).
pub const MAX_TX_WQE_SGL_ENTRIES: u32 = 30;
/// Maximum SGEs in an RX WQE (`MAX_RX_WQE_SGL_ENTRIES`).
pub const MAX_RX_WQE_SGL_ENTRIES: u32 = 15;
/// Size of a normal RX WQE (small OOB, 1 SGE): one BU.
pub const RX_WQE_SIZE: u32 = 32;
/// Size of an HWC SQ WQE (large OOB, 1 SGE): two BUs.
pub const HWC_SQ_WQE_SIZE: u32 = 64;
/// Maximum LSO header (SGE 0) size.
pub const MAX_LSO_HEADER_SIZE: u32 = 256;
/// Maximum MSS (`client_data_unit` is 14 bits).
pub const MAX_LSO_MSS: u32 = (1 << 14) - 1;
/// Maximum `trans_off` (10 bits).
pub const MAX_TRANS_OFF: u16 = (1 << 10) - 1;
/// Maximum vport offset in the short OOB (`MANA_SHORT_VPORT_OFFSET_MAX`).
pub const MANA_SHORT_VPORT_OFFSET_MAX: u16 = 255;
/// Maximum vport offset in the long OOB (12 bits).
pub const MANA_LONG_VPORT_OFFSET_MAX: u16 = 4095;
/// TX OOB `pkt_fmt` of the short (8-byte) form.
pub const MANA_SHORT_PKT_FMT: u8 = 0;
/// TX OOB `pkt_fmt` of the long (24-byte) form.
pub const MANA_LONG_PKT_FMT: u8 = 1;

/// Rounds `n` up to a multiple of the 32-byte basic unit.
#[inline]
pub const fn align_bu(n: u32) -> u32 {
    (n + GDMA_WQE_BU_SIZE - 1) & !(GDMA_WQE_BU_SIZE - 1)
}

/// Size of the inline client OOB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InlineOobSize {
    /// 8 bytes (code 2): RX WQEs, short TX OOB.
    Small,
    /// 24 bytes (code 6): long TX OOB, HWC TX OOB.
    Large,
    /// 32 bytes (code 7): OVMM only.
    Oob32,
}

impl InlineOobSize {
    /// Size in bytes.
    #[inline]
    pub const fn bytes(self) -> u32 {
        match self {
            Self::Small => INLINE_OOB_SMALL_SIZE,
            Self::Large => INLINE_OOB_LARGE_SIZE,
            Self::Oob32 => 32,
        }
    }

    /// The `inline_client_oob_size` code (size in dwords).
    #[inline]
    pub const fn code(self) -> u8 {
        match self {
            Self::Small => CLIENT_OOB_8,
            Self::Large => CLIENT_OOB_24,
            Self::Oob32 => CLIENT_OOB_32,
        }
    }

    /// Decodes an `inline_client_oob_size` code.
    #[inline]
    pub const fn from_code(code: u8) -> Option<Self> {
        match code {
            CLIENT_OOB_8 => Some(Self::Small),
            CLIENT_OOB_24 => Some(Self::Large),
            CLIENT_OOB_32 => Some(Self::Oob32),
            _ => None,
        }
    }

    /// Byte offset of the SGL from the start of the WQE: `align16(8 + oob)` (16 or 32).
    #[inline]
    pub const fn sgl_offset(self) -> u32 {
        (WQE_HEADER_SIZE + self.bytes() + 15) & !15
    }
}

/// Total WQE size in bytes: `align32(sgl_offset + 16 * num_sge)`.
#[inline]
pub const fn wqe_size_bytes(oob: InlineOobSize, num_sge: u32) -> u32 {
    align_bu(oob.sgl_offset() + SGE_SIZE * num_sge)
}

/// Total WQE size in basic units.
#[inline]
pub const fn wqe_size_bu(oob: InlineOobSize, num_sge: u32) -> u32 {
    wqe_size_bytes(oob, num_sge) / GDMA_WQE_BU_SIZE
}

bitfield! {
    /// The 8-byte WQE header (§3.2) as one little-endian u64: dword 0 in bits 0..32,
    /// dword 1 (`flags`) in bits 32..64.
    pub struct WqeHeader(u64);
    /// LSO: size of SGE 0 (the packet headers) when the client OOB is in the SGL.
    field last_vbytes, with_last_vbytes: u8 [24, 8];
    /// Number of SGEs (≥ 1).
    field num_sgl_entries, with_num_sgl_entries: u8 [32, 8];
    /// Inline OOB size code (2, 6 or 7).
    field inline_client_oob_size, with_inline_client_oob_size: u8 [40, 3];
    /// Client OOB in SGL (TX LSO).
    flag client_oob_in_sgl, with_client_oob_in_sgl [43];
    /// Consume credit (DPDK/rdma-core; reserved elsewhere).
    flag consume_credit, with_consume_credit [44];
    /// Fence (DPDK/rdma-core; reserved elsewhere).
    flag fence, with_fence [45];
    /// Client data unit (14 bits): the MSS for TX LSO, else 0.
    field client_data_unit, with_client_data_unit: u16 [48, 14];
    /// Check SN (DPDK/rdma-core; reserved elsewhere).
    flag check_sn, with_check_sn [62];
    /// SGL direct: data inline in the SGL area (OVMM HWC only).
    flag sgl_direct, with_sgl_direct [63];
}

impl WqeHeader {
    /// Header for a WQE with `num_sge` SGEs and an inline OOB of `oob` size.
    #[inline]
    pub const fn new(num_sge: u8, oob: InlineOobSize) -> Self {
        Self::ZERO.with_num_sgl_entries(num_sge).with_inline_client_oob_size(oob.code())
    }

    /// Header of a TX LSO WQE: client OOB in SGL, `last_vbytes` = header SGE size, MSS.
    pub const fn tx_lso(
        num_sge: u8,
        oob: InlineOobSize,
        mss: u32,
        header_len: u32,
    ) -> Result<Self, EncodeError> {
        if let Err(e) = check_range("mss", mss as u64, MAX_LSO_MSS as u64) {
            return Err(e);
        }
        if let Err(e) = check_range("last_vbytes", header_len as u64, 255) {
            return Err(e);
        }
        if let Err(e) =
            check_range("num_sgl_entries", num_sge as u64, MAX_TX_WQE_SGL_ENTRIES as u64)
        {
            return Err(e);
        }
        if num_sge < 2 {
            return Err(EncodeError::OutOfRange {
                field: "lso num_sgl_entries (min 2)",
                value: num_sge as u64,
                max: 0,
            });
        }
        Ok(Self::new(num_sge, oob)
            .with_client_oob_in_sgl(true)
            .with_last_vbytes(header_len as u8)
            .with_client_data_unit(mss as u16))
    }

    /// Inline OOB size, if the code is valid.
    #[inline]
    pub const fn oob_size(self) -> Option<InlineOobSize> {
        InlineOobSize::from_code(self.inline_client_oob_size())
    }

    /// Total WQE size in bytes, if the OOB code is valid.
    #[inline]
    pub const fn size_bytes(self) -> Option<u32> {
        match self.oob_size() {
            Some(oob) => Some(wqe_size_bytes(oob, self.num_sgl_entries() as u32)),
            None => None,
        }
    }

    /// The two header dwords as stored in ring memory.
    #[inline]
    pub const fn to_dwords(self) -> [u32; 2] {
        [self.0 as u32, (self.0 >> 32) as u32]
    }

    /// Builds a header from its two dwords.
    #[inline]
    pub const fn from_dwords(d: [u32; 2]) -> Self {
        Self(d[0] as u64 | ((d[1] as u64) << 32))
    }
}

/// A scatter-gather entry (§3.3), 16 bytes.
#[repr(C)]
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct Sge {
    /// IOVA of the buffer.
    pub address: u64,
    /// Memory key (mkey/lkey).
    pub mem_key: u32,
    /// Byte count.
    pub size: u32,
}

const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(size_of::<Sge>() == SGE_SIZE as usize);
    assert!(offset_of!(Sge, address) == 0);
    assert!(offset_of!(Sge, mem_key) == 8);
    assert!(offset_of!(Sge, size) == 12);
};

/// The dummy SGE of a WQE without buffers (empty-SGL rule, §3.2): address 1, mkey 0, size 0.
pub const EMPTY_SGE: Sge = Sge { address: 1, mem_key: 0, size: 0 };

impl Sge {
    /// An SGE.
    #[inline]
    pub const fn new(address: u64, mem_key: u32, size: u32) -> Self {
        Self { address, mem_key, size }
    }

    /// The four dwords as stored in ring memory.
    #[inline]
    pub const fn to_dwords(self) -> [u32; 4] {
        [self.address as u32, (self.address >> 32) as u32, self.mem_key, self.size]
    }

    /// Builds an SGE from its four dwords.
    #[inline]
    pub const fn from_dwords(d: [u32; 4]) -> Self {
        Self { address: d[0] as u64 | ((d[1] as u64) << 32), mem_key: d[2], size: d[3] }
    }

    /// Decodes an SGE from the first 16 bytes of `bytes`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        read_prefix(bytes)
    }

    /// Whether this is the empty-SGL dummy entry.
    #[inline]
    pub const fn is_empty_marker(self) -> bool {
        self.address == 1 && self.mem_key == 0 && self.size == 0
    }
}

bitfield! {
    /// Ethernet TX short OOB (§3.4), dwords 0–1 as one little-endian u64.
    pub struct TxShortOob(u64);
    /// 0 = short, 1 = long.
    field pkt_fmt, with_pkt_fmt: u8 [0, 2];
    /// Outer header is IPv4.
    flag is_outer_ipv4, with_is_outer_ipv4 [2];
    /// Outer header is IPv6.
    flag is_outer_ipv6, with_is_outer_ipv6 [3];
    /// Compute the IPv4 header checksum.
    flag comp_iphdr_csum, with_comp_iphdr_csum [4];
    /// Compute the TCP checksum.
    flag comp_tcp_csum, with_comp_tcp_csum [5];
    /// Compute the UDP checksum.
    flag comp_udp_csum, with_comp_udp_csum [6];
    /// No CQE on success.
    flag suppress_txcqe_gen, with_suppress_txcqe_gen [7];
    /// Id of this SQ's completion queue (24 bits).
    field vcq_num, with_vcq_num: u32 [8, 24];
    /// L4 header offset from the frame start (10 bits).
    field trans_off, with_trans_off: u16 [32, 10];
    /// Bits 10..24 of the SQ id.
    field vsq_frame, with_vsq_frame: u16 [42, 14];
    /// TX vport offset when ≤ 255.
    field short_vp_offset, with_short_vp_offset: u8 [56, 8];
}

bitfield! {
    /// Ethernet TX long OOB extension (§3.4), dwords 2–3 as one little-endian u64.
    pub struct TxLongOob(u64);
    /// Encapsulated packet.
    flag is_encap, with_is_encap [0];
    /// Inner header is IPv6.
    flag inner_is_ipv6, with_inner_is_ipv6 [1];
    /// Inner TCP options present.
    flag inner_tcp_opt, with_inner_tcp_opt [2];
    /// Insert an 802.1Q tag.
    flag inject_vlan_pri_tag, with_inject_vlan_pri_tag [3];
    /// 802.1Q priority.
    field pcp, with_pcp: u8 [16, 3];
    /// 802.1Q drop eligible.
    flag dei, with_dei [19];
    /// 802.1Q VLAN id.
    field vlan_id, with_vlan_id: u16 [20, 12];
    /// Inner frame offset (10 bits).
    field inner_frame_offset, with_inner_frame_offset: u16 [32, 10];
    /// Inner IP header offset relative to the inner frame (6 bits).
    field inner_ip_rel_offset, with_inner_ip_rel_offset: u8 [42, 6];
    /// TX vport offset when > 255 (12 bits).
    field long_vp_offset, with_long_vp_offset: u16 [48, 12];
}

/// Outer L3 protocol of a TX packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TxL3 {
    /// Neither IPv4 nor IPv6.
    #[default]
    Other,
    /// IPv4.
    Ipv4,
    /// IPv6.
    Ipv6,
}

/// An 802.1Q tag to insert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct VlanTag {
    /// Priority (0..=7).
    pub pcp: u8,
    /// Drop eligible.
    pub dei: bool,
    /// VLAN id (0..=4095).
    pub vid: u16,
}

/// Inner-header description of an encapsulated packet (long format only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TxEncap {
    /// Inner header is IPv6.
    pub inner_is_ipv6: bool,
    /// Inner TCP options present.
    pub inner_tcp_opt: bool,
    /// Inner frame offset (0..=1023).
    pub inner_frame_offset: u16,
    /// Inner IP header offset relative to the inner frame (0..=63).
    pub inner_ip_rel_offset: u8,
}

/// Typed description of an Ethernet TX OOB; [`TxOob::encode`] turns it into dwords.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TxOobSpec {
    /// Id of the SQ's completion queue (`vcq_num`).
    pub cq_id: u32,
    /// Id of the SQ (gives `vsq_frame`).
    pub sq_id: u32,
    /// TX vport offset from CONFIG_VPORT_TX (0..=4095).
    pub vport_offset: u16,
    /// Outer L3 protocol.
    pub l3: TxL3,
    /// Compute the IPv4 header checksum.
    pub ip_csum: bool,
    /// Compute the TCP checksum.
    pub tcp_csum: bool,
    /// Compute the UDP checksum.
    pub udp_csum: bool,
    /// L4 header offset (0..=1023).
    pub trans_off: u16,
    /// Suppress the CQE on success.
    pub suppress_cqe: bool,
    /// VLAN tag to insert (forces the long format).
    pub vlan: Option<VlanTag>,
    /// Encapsulation description (forces the long format).
    pub encap: Option<TxEncap>,
    /// Use the long format even when not otherwise needed (e.g. short form not allowed).
    pub force_long: bool,
}

/// A complete Ethernet TX OOB (24 bytes); the short form uses only the first 8 bytes.
#[repr(C)]
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct TxOob {
    /// Dwords 0–1.
    pub short: TxShortOob,
    /// Dwords 2–3 (long form only).
    pub long: TxLongOob,
    /// Dwords 4–5, reserved (0).
    pub reserved: [u32; 2],
}

const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(size_of::<TxShortOob>() == INLINE_OOB_SMALL_SIZE as usize);
    assert!(size_of::<TxOob>() == INLINE_OOB_LARGE_SIZE as usize);
    assert!(offset_of!(TxOob, short) == 0);
    assert!(offset_of!(TxOob, long) == 8);
    assert!(offset_of!(TxOob, reserved) == 16);
};

/// `vsq_frame` of an SQ id: `(sq_id >> 10) & 0x3FFF`.
#[inline]
pub const fn vsq_frame(sq_id: u32) -> u16 {
    ((sq_id >> 10) & 0x3FFF) as u16
}

impl TxOob {
    /// Encodes a TX OOB from a zeroed start (§3.4). Long format when a VLAN tag, an
    /// encapsulation, a vport offset > 255 or `force_long` requires it; the vport offset goes
    /// in `short_vp_offset` when ≤ 255 and in `long_vp_offset` otherwise (LNX placement).
    pub const fn encode(spec: &TxOobSpec) -> Result<Self, EncodeError> {
        macro_rules! chk {
            ($f:expr, $v:expr, $m:expr) => {
                if let Err(e) = check_range($f, $v as u64, $m as u64) {
                    return Err(e);
                }
            };
        }
        chk!("vcq_num", spec.cq_id, 0x00FF_FFFF);
        chk!("sq_id", spec.sq_id, 0x00FF_FFFF);
        chk!("trans_off", spec.trans_off, MAX_TRANS_OFF);
        chk!("vport_offset", spec.vport_offset, MANA_LONG_VPORT_OFFSET_MAX);
        let long = spec.force_long
            || spec.vlan.is_some()
            || spec.encap.is_some()
            || spec.vport_offset > MANA_SHORT_VPORT_OFFSET_MAX;
        let mut short = TxShortOob::ZERO
            .with_pkt_fmt(if long { MANA_LONG_PKT_FMT } else { MANA_SHORT_PKT_FMT })
            .with_is_outer_ipv4(matches!(spec.l3, TxL3::Ipv4))
            .with_is_outer_ipv6(matches!(spec.l3, TxL3::Ipv6))
            .with_comp_iphdr_csum(spec.ip_csum)
            .with_comp_tcp_csum(spec.tcp_csum)
            .with_comp_udp_csum(spec.udp_csum)
            .with_suppress_txcqe_gen(spec.suppress_cqe)
            .with_vcq_num(spec.cq_id)
            .with_trans_off(spec.trans_off)
            .with_vsq_frame(vsq_frame(spec.sq_id));
        let mut ext = TxLongOob::ZERO;
        if spec.vport_offset <= MANA_SHORT_VPORT_OFFSET_MAX {
            short = short.with_short_vp_offset(spec.vport_offset as u8);
        } else {
            ext = ext.with_long_vp_offset(spec.vport_offset);
        }
        if let Some(v) = spec.vlan {
            chk!("pcp", v.pcp, 7);
            chk!("vlan_id", v.vid, 4095);
            ext = ext
                .with_inject_vlan_pri_tag(true)
                .with_pcp(v.pcp)
                .with_dei(v.dei)
                .with_vlan_id(v.vid);
        }
        if let Some(e) = spec.encap {
            chk!("inner_frame_offset", e.inner_frame_offset, 1023);
            chk!("inner_ip_rel_offset", e.inner_ip_rel_offset, 63);
            ext = ext
                .with_is_encap(true)
                .with_inner_is_ipv6(e.inner_is_ipv6)
                .with_inner_tcp_opt(e.inner_tcp_opt)
                .with_inner_frame_offset(e.inner_frame_offset)
                .with_inner_ip_rel_offset(e.inner_ip_rel_offset);
        }
        Ok(Self { short, long: ext, reserved: [0; 2] })
    }

    /// Whether this OOB uses the long (24-byte) format.
    #[inline]
    pub const fn is_long(&self) -> bool {
        self.short.pkt_fmt() == MANA_LONG_PKT_FMT
    }

    /// Inline OOB size to put in the WQE header.
    #[inline]
    pub const fn size(&self) -> InlineOobSize {
        if self.is_long() { InlineOobSize::Large } else { InlineOobSize::Small }
    }

    /// All six dwords; write the first `size().bytes() / 4` of them.
    #[inline]
    pub const fn to_dwords(&self) -> [u32; 6] {
        [
            self.short.0 as u32,
            (self.short.0 >> 32) as u32,
            self.long.0 as u32,
            (self.long.0 >> 32) as u32,
            self.reserved[0],
            self.reserved[1],
        ]
    }

    /// Device side: decodes the inline OOB bytes of a TX WQE (8 or 24 bytes; a short OOB
    /// leaves the long part zero).
    pub fn from_oob_bytes(oob: &[u8]) -> Result<Self, DecodeError> {
        if oob.len() >= INLINE_OOB_LARGE_SIZE as usize {
            read_prefix(oob)
        } else {
            let short: TxShortOob = read_prefix(oob)?;
            Ok(Self { short, ..Self::default() })
        }
    }

    /// The vport offset carried by this OOB: `long_vp_offset` if the long form carries one,
    /// else `short_vp_offset` (accepts both the LNX and the OVMM placement).
    #[inline]
    pub const fn vport_offset(&self) -> u16 {
        if self.is_long() && self.long.long_vp_offset() != 0 {
            self.long.long_vp_offset()
        } else {
            self.short.short_vp_offset() as u16
        }
    }
}

/// Encodes a normal RX WQE (§3.5): small zero OOB, one SGE; 32 bytes (1 BU).
#[inline]
pub const fn rx_wqe(sge: Sge) -> [u32; 8] {
    let h = WqeHeader::new(1, InlineOobSize::Small).to_dwords();
    let s = sge.to_dwords();
    [h[0], h[1], 0, 0, s[0], s[1], s[2], s[3]]
}

bitfield! {
    /// `hwc_tx_oob` dword 2: destination RQ and VF.
    pub struct HwcTxOobVrq(u32);
    /// Destination RQ id (PF only).
    field vrq_id, with_vrq_id: u32 [0, 24];
    /// Destination VF id.
    field dest_vfid, with_dest_vfid: u8 [24, 8];
}

bitfield! {
    /// `hwc_tx_oob` dword 4: source CQ and flags.
    pub struct HwcTxOobVscq(u32);
    /// Source CQ id (the HWC CQ).
    field vscq_id, with_vscq_id: u32 [0, 24];
    /// Loopback.
    flag loopback, with_loopback [24];
    /// LSO override.
    flag lso_override, with_lso_override [25];
    /// Destination is the PF.
    flag dest_pf, with_dest_pf [26];
}

/// `hwc_tx_oob` (§3.6): the 24-byte inline OOB of an HWC SQ WQE.
#[repr(C)]
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct HwcTxOob {
    /// Dwords 0–1, reserved.
    pub reserved: [u32; 2],
    /// Dword 2.
    pub vrq: HwcTxOobVrq,
    /// Dword 3: `vrcq_id` in bits 0..24.
    pub vrcq_id: u32,
    /// Dword 4.
    pub vscq: HwcTxOobVscq,
    /// Dword 5: `vsq_id` in bits 0..24.
    pub vsq_id: u32,
}

const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(size_of::<HwcTxOob>() == INLINE_OOB_LARGE_SIZE as usize);
    assert!(offset_of!(HwcTxOob, vrq) == 8);
    assert!(offset_of!(HwcTxOob, vrcq_id) == 12);
    assert!(offset_of!(HwcTxOob, vscq) == 16);
    assert!(offset_of!(HwcTxOob, vsq_id) == 20);
};

impl HwcTxOob {
    /// The OOB a VF sends: `vscq_id` = HWC CQ id, `vsq_id` = HWC SQ id, everything else 0.
    #[inline]
    pub const fn vf(hwc_cq_id: u32, hwc_sq_id: u32) -> Self {
        Self {
            reserved: [0; 2],
            vrq: HwcTxOobVrq::ZERO,
            vrcq_id: 0,
            vscq: HwcTxOobVscq::ZERO.with_vscq_id(hwc_cq_id),
            vsq_id: hwc_sq_id & 0x00FF_FFFF,
        }
    }

    /// The six dwords.
    #[inline]
    pub const fn to_dwords(&self) -> [u32; 6] {
        [self.reserved[0], self.reserved[1], self.vrq.0, self.vrcq_id, self.vscq.0, self.vsq_id]
    }
}

/// Encodes an HWC SQ WQE (§3.6): large OOB = `hwc_tx_oob`, one SGE; 64 bytes (2 BUs).
pub const fn hwc_sq_wqe(oob: &HwcTxOob, sge: Sge) -> [u32; 16] {
    let h = WqeHeader::new(1, InlineOobSize::Large).to_dwords();
    let o = oob.to_dwords();
    let s = sge.to_dwords();
    [h[0], h[1], o[0], o[1], o[2], o[3], o[4], o[5], s[0], s[1], s[2], s[3], 0, 0, 0, 0]
}

/// Encodes a complete WQE into `out` (header, OOB zero-padded to its size, SGL, zero padding to
/// 32 bytes) and returns its size. `num_sgl_entries` and the OOB size code are set from
/// `sgl` and `oob`; other header fields come from `header`. An empty `sgl` gets [`EMPTY_SGE`].
pub fn encode_wqe(
    out: &mut [u8],
    header: WqeHeader,
    oob: &[u8],
    sgl: &[Sge],
) -> Result<usize, EncodeError> {
    let oob_size = match oob.len() {
        0..=8 => InlineOobSize::Small,
        9..=24 => InlineOobSize::Large,
        n => {
            return Err(EncodeError::OutOfRange { field: "inline oob", value: n as u64, max: 24 });
        }
    };
    check_range("num_sgl_entries", sgl.len() as u64, MAX_TX_WQE_SGL_ENTRIES as u64)?;
    let empty = [EMPTY_SGE];
    let sgl = if sgl.is_empty() { &empty[..] } else { sgl };
    let size = wqe_size_bytes(oob_size, sgl.len() as u32) as usize;
    if out.len() < size {
        return Err(EncodeError::BufferTooSmall { needed: size, got: out.len() });
    }
    let out = &mut out[..size];
    out.fill(0);
    let h =
        header.with_num_sgl_entries(sgl.len() as u8).with_inline_client_oob_size(oob_size.code());
    out[..8].copy_from_slice(&h.0.to_le_bytes());
    out[8..8 + oob.len()].copy_from_slice(oob);
    let base = oob_size.sgl_offset() as usize;
    for (chunk, sge) in out[base..].chunks_exact_mut(SGE_SIZE as usize).zip(sgl) {
        chunk.copy_from_slice(sge.as_bytes());
    }
    Ok(size)
}

/// A parsed WQE borrowed from a local copy of ring memory (device side).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WqeRef<'a> {
    header: WqeHeader,
    oob_size: InlineOobSize,
    bytes: &'a [u8],
}

impl<'a> WqeRef<'a> {
    /// Parses the WQE at the start of `bytes`, rejecting it if it has no SGE, an invalid OOB
    /// size code, is larger than `max_size` (512 for SQ, 256 for RQ) or than `bytes`.
    pub fn parse(bytes: &'a [u8], max_size: u32) -> Result<Self, DecodeError> {
        let header = WqeHeader(read_prefix::<u64>(bytes)?);
        let code = header.inline_client_oob_size();
        let Some(oob_size) = InlineOobSize::from_code(code) else {
            return Err(DecodeError::InvalidField {
                field: "inline_client_oob_size",
                value: code as u64,
            });
        };
        let nsge = header.num_sgl_entries();
        if nsge == 0 {
            return Err(DecodeError::InvalidField { field: "num_sgl_entries", value: 0 });
        }
        let size = wqe_size_bytes(oob_size, nsge as u32);
        if size > max_size {
            return Err(DecodeError::InvalidField { field: "wqe size", value: size as u64 });
        }
        let Some(bytes) = bytes.get(..size as usize) else {
            return Err(DecodeError::Truncated { needed: size as usize, got: bytes.len() });
        };
        Ok(Self { header, oob_size, bytes })
    }

    /// The header.
    #[inline]
    pub const fn header(&self) -> WqeHeader {
        self.header
    }

    /// Total size in bytes (a multiple of 32).
    #[inline]
    pub const fn size_bytes(&self) -> u32 {
        self.bytes.len() as u32
    }

    /// Total size in basic units.
    #[inline]
    pub const fn size_bu(&self) -> u32 {
        self.size_bytes() / GDMA_WQE_BU_SIZE
    }

    /// The inline OOB bytes (8, 24 or 32).
    #[inline]
    pub fn oob(&self) -> &'a [u8] {
        let start = WQE_HEADER_SIZE as usize;
        &self.bytes[start..start + self.oob_size.bytes() as usize]
    }

    /// The raw SGL area (for `sgl_direct` WQEs this holds inline data).
    #[inline]
    pub fn sgl_bytes(&self) -> &'a [u8] {
        let start = self.oob_size.sgl_offset() as usize;
        let len = self.header.num_sgl_entries() as usize * SGE_SIZE as usize;
        &self.bytes[start..start + len]
    }

    /// The SGEs.
    pub fn sges(&self) -> impl ExactSizeIterator<Item = Sge> + 'a {
        let area: &'a [u8] = self.sgl_bytes();
        area.chunks_exact(SGE_SIZE as usize).map(|c| Sge::read_from_bytes(c).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests;
