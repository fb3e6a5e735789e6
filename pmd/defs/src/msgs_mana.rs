//! MANA (Ethernet) request and response bodies (msg_type 0x2xxxx, sent to the MANA device id
//! from LIST_DEVICES).
//!
//! Spec: §6.4 (table of MANA requests, CONFIG_VPORT_RX layout and `indir_tab_offset`, message
//! versions), §6.5 (bring-up order), §8 (indirection table sizes), §10.1 (limits).
//! Layouts checked against LNX `include/net/mana/mana.h` and OVMM `gdma_defs/src/bnic.rs`.

use crate::error::{DecodeError, EncodeError, check_range};
use crate::hwc::*;
use crate::msgs_gdma::request;
use crate::queue::GdmaQueueType;
use crate::rss::MANA_HASH_KEY_SIZE;
use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout};

/// MANA protocol major version sent by LNX.
pub const MANA_MAJOR_VERSION: u32 = 0;
/// MANA protocol minor version sent by LNX.
pub const MANA_MINOR_VERSION: u32 = 1;
/// MANA protocol micro version sent by LNX.
pub const MANA_MICRO_VERSION: u32 = 1;
/// A MANA object handle that is never valid (`INVALID_MANA_HANDLE`).
pub const INVALID_MANA_HANDLE: u64 = u64::MAX;
/// `cq_parent_qid` meaning "no EQ" (`GDMA_CQ_NO_EQ`).
pub const GDMA_CQ_NO_EQ: u32 = 0xFFFF;
/// Default indirection table size (`MANA_INDIRECT_TABLE_DEF_SIZE`; mana_ib always uses 64).
pub const MANA_INDIRECT_TABLE_DEF_SIZE: usize = 64;
/// Maximum indirection table size (`MANA_INDIRECT_TABLE_MAX_SIZE`).
pub const MANA_INDIRECT_TABLE_MAX_SIZE: usize = 512;
/// Maximum queues per vport (`MANA_MAX_NUM_QUEUES`).
pub const MANA_MAX_NUM_QUEUES: u32 = 64;
/// Maximum ports per device (`MAX_PORTS_IN_MANA_DEV`).
pub const MAX_PORTS_IN_MANA_DEV: u32 = 256;
/// Adapter MTU to assume when QUERY_DEV_CONFIG reports 0 (old firmware).
pub const MANA_DEFAULT_ADAPTER_MTU: u16 = 1514;
/// Tri-state value "true".
pub const TRI_STATE_TRUE: u32 = 1;
/// Tri-state value "false".
pub const TRI_STATE_FALSE: u32 = 0;
/// Tri-state value "unchanged".
pub const TRI_STATE_UNKNOWN: u32 = 0xFFFF_FFFF;

/// Encodes a tri-state: `Some(b)` sets, `None` leaves unchanged.
#[inline]
pub const fn tristate(v: Option<bool>) -> u32 {
    match v {
        Some(true) => TRI_STATE_TRUE,
        Some(false) => TRI_STATE_FALSE,
        None => TRI_STATE_UNKNOWN,
    }
}

/// Decodes a tri-state; any value other than 0/1 means "unchanged".
#[inline]
pub const fn tristate_value(v: u32) -> Option<bool> {
    match v {
        TRI_STATE_TRUE => Some(true),
        TRI_STATE_FALSE => Some(false),
        _ => None,
    }
}

/// QUERY_DEV_CONFIG (0x20001) request body.
#[repr(C)]
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct ManaQueryDeviceCfgReq {
    /// MANA driver capability flags 1.
    pub mn_drv_cap_flags1: u64,
    /// MANA driver capability flags 2.
    pub mn_drv_cap_flags2: u64,
    /// MANA driver capability flags 3.
    pub mn_drv_cap_flags3: u64,
    /// MANA driver capability flags 4.
    pub mn_drv_cap_flags4: u64,
    /// Protocol major version.
    pub proto_major_ver: u32,
    /// Protocol minor version.
    pub proto_minor_ver: u32,
    /// Protocol micro version.
    pub proto_micro_ver: u32,
    /// Reserved.
    pub reserved: u32,
}

/// QUERY_DEV_CONFIG response body (up to response v4).
#[repr(C)]
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct ManaQueryDeviceCfgResp {
    /// PF capability flags 1.
    pub pf_cap_flags1: u64,
    /// PF capability flags 2.
    pub pf_cap_flags2: u64,
    /// PF capability flags 3.
    pub pf_cap_flags3: u64,
    /// PF capability flags 4.
    pub pf_cap_flags4: u64,
    /// Number of vports.
    pub max_num_vports: u16,
    /// Bare-metal host mode (response v3).
    pub bm_hostmode: u8,
    /// Reserved.
    pub reserved: u8,
    /// Max EQs.
    pub max_num_eqs: u32,
    /// Adapter L2 MTU (response v2; 0 from old firmware: assume 1514).
    pub adapter_mtu: u16,
    /// Reserved.
    pub reserved2: u16,
    /// Link speed in Mbit/s (OVMM, response v4; reserved in LNX).
    pub adapter_link_speed_mbps: u32,
}
request!(ManaQueryDeviceCfgReq = MANA_QUERY_DEV_CONFIG => ManaQueryDeviceCfgResp, resp GDMA_MESSAGE_V4);

impl ManaQueryDeviceCfgResp {
    /// The adapter MTU, with 0 (old firmware) mapped to [`MANA_DEFAULT_ADAPTER_MTU`].
    pub const fn effective_adapter_mtu(&self) -> u16 {
        if self.adapter_mtu == 0 { MANA_DEFAULT_ADAPTER_MTU } else { self.adapter_mtu }
    }
}

/// QUERY_VPORT_CONFIG (0x20008) request body.
#[repr(C)]
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct ManaQueryVportCfgReq {
    /// Vport index (0..max_num_vports).
    pub vport_index: u32,
}

/// QUERY_VPORT_CONFIG response body.
#[repr(C)]
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct ManaQueryVportCfgResp {
    /// Max SQs of the vport.
    pub max_num_sq: u32,
    /// Max RQs of the vport.
    pub max_num_rq: u32,
    /// Indirection table size.
    pub num_indirection_ent: u32,
    /// Reserved.
    pub reserved1: u32,
    /// MAC address.
    pub mac_addr: [u8; 6],
    /// Reserved.
    pub reserved2: [u8; 2],
    /// Vport handle.
    pub vport: u64,
}
request!(ManaQueryVportCfgReq = MANA_QUERY_VPORT_CONFIG => ManaQueryVportCfgResp);

/// CONFIG_VPORT_TX (0x20003) request body.
#[repr(C)]
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct ManaConfigVportTxReq {
    /// Vport handle.
    pub vport: u64,
    /// Protection domain id.
    pub pdid: u32,
    /// Doorbell page id.
    pub doorbell_pageid: u32,
}

/// CONFIG_VPORT_TX response body.
#[repr(C)]
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct ManaConfigVportTxResp {
    /// Vport offset to put in every TX OOB.
    pub tx_vport_offset: u16,
    /// Whether the short TX OOB format may be used.
    pub short_form_allowed: u8,
    /// Reserved.
    pub reserved: u8,
}
request!(ManaConfigVportTxReq = MANA_CONFIG_VPORT_TX => ManaConfigVportTxResp);

/// CREATE_WQ_OBJ (0x20004) request body (v1 layout).
#[repr(C)]
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct ManaCreateWqObjReq {
    /// Vport handle.
    pub vport: u64,
    /// `GDMA_SQ` or `GDMA_RQ`.
    pub wq_type: u32,
    /// Reserved.
    pub reserved: u32,
    /// DMA region of the WQ ring (consumed on success).
    pub wq_gdma_region: u64,
    /// DMA region of the CQ ring (consumed on success).
    pub cq_gdma_region: u64,
    /// WQ ring size in bytes.
    pub wq_size: u32,
    /// CQ ring size in bytes.
    pub cq_size: u32,
    /// CQ moderation context (0).
    pub cq_moderation_ctx_id: u32,
    /// Parent EQ id of the CQ ([`GDMA_CQ_NO_EQ`] for none).
    pub cq_parent_qid: u32,
}

impl ManaCreateWqObjReq {
    /// The WQ type, if valid.
    pub const fn wq_type(&self) -> Option<GdmaQueueType> {
        GdmaQueueType::from_u32(self.wq_type)
    }
}

/// CREATE_WQ_OBJ response body.
#[repr(C)]
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct ManaCreateWqObjResp {
    /// Id of the SQ/RQ.
    pub wq_id: u32,
    /// Id of its CQ.
    pub cq_id: u32,
    /// WQ object handle.
    pub wq_obj: u64,
}
request!(ManaCreateWqObjReq = MANA_CREATE_WQ_OBJ => ManaCreateWqObjResp);

/// DESTROY_WQ_OBJ (0x20005) request body.
#[repr(C)]
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct ManaDestroyWqObjReq {
    /// `GDMA_SQ` or `GDMA_RQ`.
    pub wq_type: u32,
    /// Reserved.
    pub reserved: u32,
    /// WQ object handle.
    pub wq_obj_handle: u64,
}
request!(ManaDestroyWqObjReq = MANA_DESTROY_WQ_OBJ => ());

/// FENCE_RQ (0x20006) request body; a CQE_RX_OBJECT_FENCE follows on the RQ's CQ.
#[repr(C)]
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct ManaFenceRqReq {
    /// RQ object handle.
    pub wq_obj_handle: u64,
}
request!(ManaFenceRqReq = MANA_FENCE_RQ => ());

/// CONFIG_VPORT_RX (0x20007) request body, v2 layout (80 bytes); the indirection table
/// (`num_indir_entries` u64 RQ object handles) follows at `indir_tab_offset`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct ManaCfgRxSteerReqV2 {
    /// Vport handle.
    pub vport: u64,
    /// Number of indirection table entries.
    pub num_indir_entries: u16,
    /// Byte offset of the table from the start of the whole request (header included).
    pub indir_tab_offset: u16,
    /// Tri-state RX enable.
    pub rx_enable: u32,
    /// Tri-state RSS enable.
    pub rss_enable: u32,
    /// Update the default RX object.
    pub update_default_rxobj: u8,
    /// Update the hash key.
    pub update_hashkey: u8,
    /// Update the indirection table.
    pub update_indir_tab: u8,
    /// Reserved.
    pub reserved: u8,
    /// RX object for packets that cannot be hashed.
    pub default_rxobj: u64,
    /// Toeplitz key.
    pub hashkey: [u8; MANA_HASH_KEY_SIZE],
    /// Enable CQE_RX_COALESCED_4 (v2).
    pub cqe_coalescing_enable: u8,
    /// Reserved (v2).
    pub reserved2: [u8; 7],
}

impl Default for ManaCfgRxSteerReqV2 {
    fn default() -> Self {
        Self::new_zeroed()
    }
}

/// CONFIG_VPORT_RX response body (v2; a v1 response is the header alone and reads as 0).
#[repr(C)]
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct ManaCfgRxSteerResp {
    /// Coalescing timeout in ns.
    pub cqe_coalescing_timeout_ns: u32,
    /// Reserved.
    pub reserved: u32,
}
request!(ManaCfgRxSteerReqV2 = MANA_CONFIG_VPORT_RX => ManaCfgRxSteerResp, req GDMA_MESSAGE_V2, resp GDMA_MESSAGE_V2);

/// Size of the v1 CONFIG_VPORT_RX body (without the coalescing bytes).
pub const MANA_CFG_RX_STEER_V1_SIZE: usize = 72;
/// `indir_tab_offset` of a v2 request: 40 + 80.
pub const MANA_CFG_RX_STEER_V2_TABLE_OFFSET: usize =
    GDMA_REQ_HDR_SIZE + core::mem::size_of::<ManaCfgRxSteerReqV2>();

/// Driver side: encodes a CONFIG_VPORT_RX request with `table` appended; sets
/// `num_indir_entries` and `indir_tab_offset` (120) from the table.
pub fn encode_config_vport_rx(
    out: &mut [u8],
    ids: RequestIds,
    body: &ManaCfgRxSteerReqV2,
    table: &[u64],
) -> Result<usize, EncodeError> {
    check_range("num_indir_entries", table.len() as u64, MANA_INDIRECT_TABLE_MAX_SIZE as u64)?;
    let body = ManaCfgRxSteerReqV2 {
        num_indir_entries: table.len() as u16,
        indir_tab_offset: MANA_CFG_RX_STEER_V2_TABLE_OFFSET as u16,
        ..*body
    };
    encode_request(out, ids, &body, table.as_bytes())
}

/// A decoded CONFIG_VPORT_RX request (device side).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigVportRx {
    /// The fixed fields; v2-only fields read as 0 in a v1 request.
    pub req: ManaCfgRxSteerReqV2,
    /// The indirection table (empty unless `num_indir_entries` > 0).
    pub table: Vec<u64>,
}

impl ConfigVportRx {
    /// Decodes a CONFIG_VPORT_RX request of either layout (v1: table at offset 112, v2: 120),
    /// locating the table through `indir_tab_offset`. Never panics.
    pub fn decode(req: &RequestRef<'_>) -> Result<Self, DecodeError> {
        if req.body.len() < MANA_CFG_RX_STEER_V1_SIZE {
            return Err(DecodeError::Truncated {
                needed: GDMA_REQ_HDR_SIZE + MANA_CFG_RX_STEER_V1_SIZE,
                got: GDMA_REQ_HDR_SIZE + req.body.len(),
            });
        }
        let mut body: ManaCfgRxSteerReqV2 = req.body_zero_extended();
        let v2_fields_present = req.hdr.req.msg_version >= GDMA_MESSAGE_V2
            && req.body.len() >= core::mem::size_of::<ManaCfgRxSteerReqV2>()
            && (body.num_indir_entries == 0
                || body.indir_tab_offset as usize >= MANA_CFG_RX_STEER_V2_TABLE_OFFSET);
        if !v2_fields_present {
            body.cqe_coalescing_enable = 0;
            body.reserved2 = [0; 7];
        }
        let n = body.num_indir_entries as usize;
        if n > MANA_INDIRECT_TABLE_MAX_SIZE {
            return Err(DecodeError::InvalidField { field: "num_indir_entries", value: n as u64 });
        }
        let mut table = Vec::with_capacity(n);
        if n > 0 {
            let bytes = req.bytes_at(body.indir_tab_offset as usize, n * 8)?;
            for c in bytes.chunks_exact(8) {
                let mut a = [0u8; 8];
                a.copy_from_slice(c);
                table.push(u64::from_le_bytes(a));
            }
        }
        Ok(Self { req: body, table })
    }
}

/// QUERY_GF_STAT (0x20002) request body.
#[repr(C)]
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct ManaQueryGfStatReq {
    /// Requested counters (`STATISTICS_FLAGS_*`).
    pub req_stats: u64,
}

/// QUERY_GF_STAT response body: the reported bitmap and 27 counters, in LNX order.
#[repr(C)]
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct ManaQueryGfStatResp {
    /// Reported counters (`STATISTICS_FLAGS_*`).
    pub reported_stats: u64,
    /// RX discards: no WQE posted.
    pub rx_discards_nowqe: u64,
    /// RX errors: vport disabled.
    pub rx_err_vport_disabled: u64,
    /// RX bytes.
    pub hc_rx_bytes: u64,
    /// RX unicast packets.
    pub hc_rx_ucast_pkts: u64,
    /// RX unicast bytes.
    pub hc_rx_ucast_bytes: u64,
    /// RX broadcast packets.
    pub hc_rx_bcast_pkts: u64,
    /// RX broadcast bytes.
    pub hc_rx_bcast_bytes: u64,
    /// RX multicast packets.
    pub hc_rx_mcast_pkts: u64,
    /// RX multicast bytes.
    pub hc_rx_mcast_bytes: u64,
    /// TX errors: GF disabled.
    pub tx_err_gf_disabled: u64,
    /// TX errors: vport disabled.
    pub tx_err_vport_disabled: u64,
    /// TX errors: invalid vport offset.
    pub tx_err_inval_vport_offset_pkt: u64,
    /// TX errors: VLAN enforcement.
    pub tx_err_vlan_enforcement: u64,
    /// TX errors: EtherType enforcement.
    pub tx_err_ethtype_enforcement: u64,
    /// TX errors: source MAC enforcement.
    pub tx_err_sa_enforcement: u64,
    /// TX errors: SQ PD id enforcement.
    pub tx_err_sqpdid_enforcement: u64,
    /// TX errors: CQ PD id enforcement.
    pub tx_err_cqpdid_enforcement: u64,
    /// TX errors: MTU violation.
    pub tx_err_mtu_violation: u64,
    /// TX errors: invalid OOB.
    pub tx_err_inval_oob: u64,
    /// TX bytes.
    pub hc_tx_bytes: u64,
    /// TX unicast packets.
    pub hc_tx_ucast_pkts: u64,
    /// TX unicast bytes.
    pub hc_tx_ucast_bytes: u64,
    /// TX broadcast packets.
    pub hc_tx_bcast_pkts: u64,
    /// TX broadcast bytes.
    pub hc_tx_bcast_bytes: u64,
    /// TX multicast packets.
    pub hc_tx_mcast_pkts: u64,
    /// TX multicast bytes.
    pub hc_tx_mcast_bytes: u64,
    /// TX errors: GDMA error (queue disabled).
    pub tx_err_gdma: u64,
}
request!(ManaQueryGfStatReq = MANA_QUERY_GF_STAT => ManaQueryGfStatResp);

/// Stat flag: RX discards, no WQE.
pub const STATISTICS_FLAGS_RX_DISCARDS_NO_WQE: u64 = 1 << 0;
/// Stat flag: RX errors, vport disabled.
pub const STATISTICS_FLAGS_RX_ERRORS_VPORT_DISABLED: u64 = 1 << 1;
/// Stat flag: RX bytes.
pub const STATISTICS_FLAGS_HC_RX_BYTES: u64 = 1 << 2;
/// Stat flag: RX unicast packets.
pub const STATISTICS_FLAGS_HC_RX_UCAST_PACKETS: u64 = 1 << 3;
/// Stat flag: RX unicast bytes.
pub const STATISTICS_FLAGS_HC_RX_UCAST_BYTES: u64 = 1 << 4;
/// Stat flag: RX multicast packets.
pub const STATISTICS_FLAGS_HC_RX_MCAST_PACKETS: u64 = 1 << 5;
/// Stat flag: RX multicast bytes.
pub const STATISTICS_FLAGS_HC_RX_MCAST_BYTES: u64 = 1 << 6;
/// Stat flag: RX broadcast packets.
pub const STATISTICS_FLAGS_HC_RX_BCAST_PACKETS: u64 = 1 << 7;
/// Stat flag: RX broadcast bytes.
pub const STATISTICS_FLAGS_HC_RX_BCAST_BYTES: u64 = 1 << 8;
/// Stat flag: TX errors, GF disabled.
pub const STATISTICS_FLAGS_TX_ERRORS_GF_DISABLED: u64 = 1 << 9;
/// Stat flag: TX errors, vport disabled.
pub const STATISTICS_FLAGS_TX_ERRORS_VPORT_DISABLED: u64 = 1 << 10;
/// Stat flag: TX errors, invalid vport offset.
pub const STATISTICS_FLAGS_TX_ERRORS_INVAL_VPORT_OFFSET_PACKETS: u64 = 1 << 11;
/// Stat flag: TX errors, VLAN enforcement.
pub const STATISTICS_FLAGS_TX_ERRORS_VLAN_ENFORCEMENT: u64 = 1 << 12;
/// Stat flag: TX errors, EtherType enforcement.
pub const STATISTICS_FLAGS_TX_ERRORS_ETH_TYPE_ENFORCEMENT: u64 = 1 << 13;
/// Stat flag: TX errors, source MAC enforcement.
pub const STATISTICS_FLAGS_TX_ERRORS_SA_ENFORCEMENT: u64 = 1 << 14;
/// Stat flag: TX errors, SQ PD id enforcement.
pub const STATISTICS_FLAGS_TX_ERRORS_SQPDID_ENFORCEMENT: u64 = 1 << 15;
/// Stat flag: TX errors, CQ PD id enforcement.
pub const STATISTICS_FLAGS_TX_ERRORS_CQPDID_ENFORCEMENT: u64 = 1 << 16;
/// Stat flag: TX errors, MTU violation.
pub const STATISTICS_FLAGS_TX_ERRORS_MTU_VIOLATION: u64 = 1 << 17;
/// Stat flag: TX errors, invalid OOB.
pub const STATISTICS_FLAGS_TX_ERRORS_INVALID_OOB: u64 = 1 << 18;
/// Stat flag: TX bytes.
pub const STATISTICS_FLAGS_HC_TX_BYTES: u64 = 1 << 19;
/// Stat flag: TX unicast packets.
pub const STATISTICS_FLAGS_HC_TX_UCAST_PACKETS: u64 = 1 << 20;
/// Stat flag: TX unicast bytes.
pub const STATISTICS_FLAGS_HC_TX_UCAST_BYTES: u64 = 1 << 21;
/// Stat flag: TX multicast packets.
pub const STATISTICS_FLAGS_HC_TX_MCAST_PACKETS: u64 = 1 << 22;
/// Stat flag: TX multicast bytes.
pub const STATISTICS_FLAGS_HC_TX_MCAST_BYTES: u64 = 1 << 23;
/// Stat flag: TX broadcast packets.
pub const STATISTICS_FLAGS_HC_TX_BCAST_PACKETS: u64 = 1 << 24;
/// Stat flag: TX broadcast bytes.
pub const STATISTICS_FLAGS_HC_TX_BCAST_BYTES: u64 = 1 << 25;
/// Stat flag: TX errors, GDMA error.
pub const STATISTICS_FLAGS_TX_ERRORS_GDMA_ERROR: u64 = 1 << 26;
/// All 27 stat flags.
pub const STATISTICS_FLAGS_ALL: u64 = (1 << 27) - 1;

const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(size_of::<ManaQueryDeviceCfgReq>() == 48);
    assert!(offset_of!(ManaQueryDeviceCfgReq, proto_major_ver) == 32);
    assert!(size_of::<ManaQueryDeviceCfgResp>() == 48);
    assert!(offset_of!(ManaQueryDeviceCfgResp, max_num_vports) == 32);
    assert!(offset_of!(ManaQueryDeviceCfgResp, bm_hostmode) == 34);
    assert!(offset_of!(ManaQueryDeviceCfgResp, max_num_eqs) == 36);
    assert!(offset_of!(ManaQueryDeviceCfgResp, adapter_mtu) == 40);
    assert!(offset_of!(ManaQueryDeviceCfgResp, adapter_link_speed_mbps) == 44);
    assert!(size_of::<ManaQueryVportCfgReq>() == 4);
    assert!(size_of::<ManaQueryVportCfgResp>() == 32);
    assert!(offset_of!(ManaQueryVportCfgResp, mac_addr) == 16);
    assert!(offset_of!(ManaQueryVportCfgResp, vport) == 24);
    assert!(size_of::<ManaConfigVportTxReq>() == 16);
    assert!(offset_of!(ManaConfigVportTxReq, doorbell_pageid) == 12);
    assert!(size_of::<ManaConfigVportTxResp>() == 4);
    assert!(offset_of!(ManaConfigVportTxResp, short_form_allowed) == 2);
    assert!(size_of::<ManaCreateWqObjReq>() == 48);
    assert!(offset_of!(ManaCreateWqObjReq, wq_gdma_region) == 16);
    assert!(offset_of!(ManaCreateWqObjReq, cq_gdma_region) == 24);
    assert!(offset_of!(ManaCreateWqObjReq, wq_size) == 32);
    assert!(offset_of!(ManaCreateWqObjReq, cq_parent_qid) == 44);
    assert!(size_of::<ManaCreateWqObjResp>() == 16);
    assert!(offset_of!(ManaCreateWqObjResp, wq_obj) == 8);
    assert!(size_of::<ManaDestroyWqObjReq>() == 16);
    assert!(offset_of!(ManaDestroyWqObjReq, wq_obj_handle) == 8);
    assert!(size_of::<ManaFenceRqReq>() == 8);
    assert!(size_of::<ManaCfgRxSteerReqV2>() == 80);
    assert!(offset_of!(ManaCfgRxSteerReqV2, num_indir_entries) == 8);
    assert!(offset_of!(ManaCfgRxSteerReqV2, indir_tab_offset) == 10);
    assert!(offset_of!(ManaCfgRxSteerReqV2, rx_enable) == 12);
    assert!(offset_of!(ManaCfgRxSteerReqV2, rss_enable) == 16);
    assert!(offset_of!(ManaCfgRxSteerReqV2, update_default_rxobj) == 20);
    assert!(offset_of!(ManaCfgRxSteerReqV2, update_indir_tab) == 22);
    assert!(offset_of!(ManaCfgRxSteerReqV2, default_rxobj) == 24);
    assert!(offset_of!(ManaCfgRxSteerReqV2, hashkey) == 32);
    assert!(offset_of!(ManaCfgRxSteerReqV2, cqe_coalescing_enable) == MANA_CFG_RX_STEER_V1_SIZE);
    assert!(MANA_CFG_RX_STEER_V2_TABLE_OFFSET == 120);
    assert!(size_of::<ManaCfgRxSteerResp>() == 8);
    assert!(size_of::<ManaQueryGfStatReq>() == 8);
    assert!(size_of::<ManaQueryGfStatResp>() == 8 * 28);
    assert!(offset_of!(ManaQueryGfStatResp, hc_rx_bcast_pkts) == 8 * 6);
    assert!(offset_of!(ManaQueryGfStatResp, tx_err_gf_disabled) == 8 * 10);
    assert!(offset_of!(ManaQueryGfStatResp, hc_tx_bytes) == 8 * 20);
    assert!(offset_of!(ManaQueryGfStatResp, tx_err_gdma) == 8 * 27);
};

#[cfg(test)]
mod tests;
