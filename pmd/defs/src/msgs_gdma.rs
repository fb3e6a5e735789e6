//! Generic GDMA request and response bodies (msg_type < 0x10000, sent to [`HWC_DEV_ID`]
//! unless noted).
//!
//! Spec: §6.3 (table of generic requests; DMA region rules and the 504-page limit), §5.4
//! (GENERATE_RESET_REQUEST_EQE test hook, capability flags), §1.1 (queue type codes).
//! Layouts checked against LNX `include/net/mana/gdma.h` and OVMM `gdma_defs`.
//!
//! [`HWC_DEV_ID`]: crate::hwc::HWC_DEV_ID

use crate::error::DecodeError;
use crate::hwc::*;
use crate::queue::GdmaQueueType;
use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout};

/// The only GDMA protocol version (`GDMA_PROTOCOL_V1`).
pub const GDMA_PROTOCOL_V1: u64 = 1;
/// OS type: Linux.
pub const GDMA_OS_TYPE_LINUX: u32 = 0x10;
/// OS type: Windows.
pub const GDMA_OS_TYPE_WINDOWS: u32 = 0x20;
/// OS type: other.
pub const GDMA_OS_TYPE_OTHER: u32 = 0x30;
/// OS type: OpenHCL.
pub const GDMA_OS_TYPE_OPENHCL: u32 = 0x60;

/// Driver cap flag 1: EQ sharing across vports.
pub const GDMA_DRV_CAP_FLAG_1_EQ_SHARING_MULTI_VPORT: u64 = 1 << 0;
/// Driver cap flag 1: NAPI work_done race fixed.
pub const GDMA_DRV_CAP_FLAG_1_NAPI_WKDONE_FIX: u64 = 1 << 2;
/// Driver cap flag 1: HWC timeout can be reconfigured (also checked in `pf_cap_flags1`).
pub const GDMA_DRV_CAP_FLAG_1_HWC_TIMEOUT_RECONFIG: u64 = 1 << 3;
/// Driver cap flag 1: variable-size indirection table.
pub const GDMA_DRV_CAP_FLAG_1_VARIABLE_INDIRECTION_TABLE_SUPPORT: u64 = 1 << 5;
/// Driver cap flag 1: HW vport link aware (OVMM).
pub const GDMA_DRV_CAP_FLAG_1_HW_VPORT_LINK_AWARE: u64 = 1 << 6;
/// Driver cap flag 1: the driver resets itself on EQE 135.
pub const GDMA_DRV_CAP_FLAG_1_SELF_RESET_ON_EQE: u64 = 1 << 14;
/// Driver cap flag 1: VTL2 revokes the subordinate VF on a reset EQE (OpenHCL).
pub const GDMA_DRV_CAP_FLAG_1_VTL2_REVOKE_SUB_ON_RESET_EQE: u64 = 1 << 16;
/// Driver cap flag 1: the driver handles reconfig EQEs.
pub const GDMA_DRV_CAP_FLAG_1_HANDLE_RECONFIG_EQE: u64 = 1 << 17;
/// Driver cap flag 1: reset on HWC timeout.
pub const GDMA_DRV_CAP_FLAG_1_HWC_TIMEOUT_RECOVERY: u64 = 1 << 25;
/// Driver cap flag 1: VTL2 selective revoke on reset EQE (OpenHCL).
pub const GDMA_DRV_CAP_FLAG_1_VTL2_SELECTIVE_REVOKE_SUB_ON_RESET_EQE: u64 = 1 << 27;
/// Driver cap flag 1: queue rings may be non-contiguous 4 KiB pages.
pub const GDMA_DRV_CAP_FLAG_1_NON_CONTIGUOUS_BUFFERS: u64 = 1 << 30;
/// PF cap flag 1: the PF can request a VF self reset by EQE 135.
pub const GDMA_PF_CAP_FLAG_1_EQE_REQUEST_VF_SELF_RESET: u64 = 0x80;

/// Resource type of a doorbell page (ALLOCATE_RESOURCE_RANGE).
pub const GDMA_RESOURCE_DOORBELL_PAGE: u32 = 27;
/// DMA region page type: 4 KiB pages.
pub const GDMA_PAGE_TYPE_4K: u32 = 0;
/// The invalid DMA region handle.
pub const GDMA_INVALID_DMA_REGION: u64 = 0;
/// DMA region page size.
pub const GDMA_DMA_REGION_PAGE_SIZE: u64 = 4096;
/// Pages one CREATE_DMA_REGION can carry in a 4 KiB request: (4096 − 40 − 24) / 8.
pub const CREATE_DMA_REGION_MAX_PAGES: usize =
    (HWC_MAX_REQUEST_SIZE - GDMA_REQ_HDR_SIZE - core::mem::size_of::<GdmaCreateDmaRegionReq>()) / 8;
/// Pages one DMA_REGION_ADD_PAGES can carry in a 4 KiB request: (4096 − 40 − 16) / 8.
pub const DMA_REGION_ADD_PAGES_MAX_PAGES: usize =
    (HWC_MAX_REQUEST_SIZE - GDMA_REQ_HDR_SIZE - core::mem::size_of::<GdmaDmaRegionAddPagesReq>())
        / 8;
/// `alloc_res_id_on_creation` value of DISABLE_QUEUE (always 1).
pub const GDMA_ALLOC_RES_ID_ON_CREATION: u32 = 1;
/// `log2_throttle_limit` LNX uses for EQs.
pub const LOG2_EQ_THROTTLE: u32 = 3;

/// Declares a header-only (empty) request body type.
macro_rules! empty_request {
    ($(#[$m:meta])* $name:ident = $code:expr => $resp:ty) => {
        $(#[$m])*
        #[repr(C)]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Default, FromBytes, IntoBytes, KnownLayout, Immutable)]
        pub struct $name;

        impl HwcRequest for $name {
            const MSG_TYPE: u32 = $code;
            type Response = $resp;
        }
    };
}

/// Implements [`HwcRequest`] for a body type.
macro_rules! request {
    ($name:ident = $code:expr => $resp:ty $(, req $rv:expr)? $(, resp $pv:expr)?) => {
        impl HwcRequest for $name {
            const MSG_TYPE: u32 = $code;
            $(const REQ_VERSION: u16 = $rv;)?
            $(const RESP_VERSION: u16 = $pv;)?
            type Response = $resp;
        }
    };
}
pub(crate) use request;

/// VERIFY_VF_DRIVER_VERSION (1) request body (600 bytes).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct GdmaVerifyVerReq {
    /// Lowest protocol version supported (1).
    pub protocol_ver_min: u64,
    /// Highest protocol version supported (1).
    pub protocol_ver_max: u64,
    /// Driver capability flags 1 (`GDMA_DRV_CAP_FLAG_1_*`).
    pub gd_drv_cap_flags1: u64,
    /// Driver capability flags 2.
    pub gd_drv_cap_flags2: u64,
    /// Driver capability flags 3.
    pub gd_drv_cap_flags3: u64,
    /// Driver capability flags 4.
    pub gd_drv_cap_flags4: u64,
    /// Driver version (advisory).
    pub drv_ver: u64,
    /// OS type (`GDMA_OS_TYPE_*`).
    pub os_type: u32,
    /// Reserved.
    pub reserved: u32,
    /// OS major version.
    pub os_ver_major: u32,
    /// OS minor version.
    pub os_ver_minor: u32,
    /// OS build.
    pub os_ver_build: u32,
    /// OS platform.
    pub os_ver_platform: u32,
    /// Reserved.
    pub reserved_2: u64,
    /// OS version string 1.
    pub os_ver_str1: [u8; 128],
    /// OS version string 2.
    pub os_ver_str2: [u8; 128],
    /// OS version string 3.
    pub os_ver_str3: [u8; 128],
    /// OS version string 4.
    pub os_ver_str4: [u8; 128],
}

impl Default for GdmaVerifyVerReq {
    fn default() -> Self {
        Self::new_zeroed()
    }
}

/// VERIFY_VF_DRIVER_VERSION response body.
#[repr(C)]
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct GdmaVerifyVerResp {
    /// Negotiated protocol version (must be 1).
    pub gdma_protocol_ver: u64,
    /// PF capability flags 1.
    pub pf_cap_flags1: u64,
    /// PF capability flags 2.
    pub pf_cap_flags2: u64,
    /// PF capability flags 3.
    pub pf_cap_flags3: u64,
    /// PF capability flags 4.
    pub pf_cap_flags4: u64,
}
request!(GdmaVerifyVerReq = GDMA_VERIFY_VF_DRIVER_VERSION => GdmaVerifyVerResp);

empty_request!(
    /// QUERY_MAX_RESOURCES (2) request (no body).
    GdmaQueryMaxResourcesReq = GDMA_QUERY_MAX_RESOURCES => GdmaQueryMaxResourcesResp
);

/// QUERY_MAX_RESOURCES response body.
#[repr(C)]
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct GdmaQueryMaxResourcesResp {
    /// Status.
    pub status: u32,
    /// Max SQs.
    pub max_sq: u32,
    /// Max RQs.
    pub max_rq: u32,
    /// Max CQs.
    pub max_cq: u32,
    /// Max EQs.
    pub max_eq: u32,
    /// Max doorbell pages.
    pub max_db: u32,
    /// Max MSTs.
    pub max_mst: u32,
    /// Max CQ moderation contexts.
    pub max_cq_mod_ctx: u32,
    /// Max moderated CQs.
    pub max_mod_cq: u32,
    /// Max MSI-X vectors.
    pub max_msix: u32,
}

empty_request!(
    /// LIST_DEVICES (3) request (no body).
    GdmaListDevicesReq = GDMA_LIST_DEVICES => GdmaListDevicesResp
);

/// Maximum number of entries in a LIST_DEVICES response.
pub const GDMA_MAX_LIST_DEVICES: usize = 64;

/// LIST_DEVICES response body.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct GdmaListDevicesResp {
    /// Number of entries used in `devs`.
    pub num_of_devs: u32,
    /// Reserved.
    pub reserved: u32,
    /// Device ids (type 0 entries are holes).
    pub devs: [GdmaDevId; GDMA_MAX_LIST_DEVICES],
}

impl Default for GdmaListDevicesResp {
    fn default() -> Self {
        Self::new_zeroed()
    }
}

impl GdmaListDevicesResp {
    /// The listed devices, skipping holes; at most 64 whatever `num_of_devs` says.
    pub fn devices(&self) -> impl Iterator<Item = GdmaDevId> + '_ {
        let n = (self.num_of_devs as usize).min(GDMA_MAX_LIST_DEVICES);
        self.devs[..n].iter().copied().filter(|d| d.ty != GDMA_DEVICE_NONE)
    }

    /// The first listed device of type `ty` (e.g. [`GDMA_DEVICE_MANA`]).
    pub fn find(&self, ty: u16) -> Option<GdmaDevId> {
        self.devices().find(|d| d.ty == ty)
    }

    /// A response listing `devs` (at most 64 are kept).
    pub fn from_devices(devs: &[GdmaDevId]) -> Self {
        let mut r = Self::default();
        let n = devs.len().min(GDMA_MAX_LIST_DEVICES);
        r.devs[..n].copy_from_slice(&devs[..n]);
        r.num_of_devs = n as u32;
        r
    }
}

empty_request!(
    /// REGISTER_DEVICE (4) request (no body; `dev_id` = the MANA device).
    GdmaRegisterDeviceReq = GDMA_REGISTER_DEVICE => GdmaRegisterDeviceResp
);

/// REGISTER_DEVICE response body.
#[repr(C)]
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct GdmaRegisterDeviceResp {
    /// Protection domain id.
    pub pdid: u32,
    /// Memory key covering guest-physical (IOVA) space.
    pub gpa_mkey: u32,
    /// Doorbell page id.
    pub db_id: u32,
}

empty_request!(
    /// DEREGISTER_DEVICE (5) request (no body; `dev_id` = the MANA device).
    GdmaDeregisterDeviceReq = GDMA_DEREGISTER_DEVICE => ()
);

/// GENERATE_TEST_EQE (10) request body.
#[repr(C)]
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct GdmaGenerateTestEventReq {
    /// EQ id to post the TEST_EVENT on.
    pub queue_index: u32,
}
request!(GdmaGenerateTestEventReq = GDMA_GENERATE_TEST_EQE => ());

/// GENERATE_RESET_REQUEST_EQE (11) request body (OVMM test hook: post EQE 135).
#[repr(C)]
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct GdmaGenerateResetRequestEqeReq {
    /// EQ id to post the event on.
    pub eq_id: u32,
    /// Event data dword 0 (bit 0: revoke VTL0 VF).
    pub data: u32,
}
request!(GdmaGenerateResetRequestEqeReq = GDMA_GENERATE_RESET_REQUEST_EQE => ());

/// CREATE_QUEUE (12) request body (56 bytes).
#[repr(C)]
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct GdmaCreateQueueReq {
    /// Queue type code (`GDMA_EQ` in practice).
    pub queue_type: u32,
    /// Reserved.
    pub reserved1: u32,
    /// Protection domain id.
    pub pdid: u32,
    /// Doorbell page id.
    pub doorbell_id: u32,
    /// DMA region of the ring (consumed by the queue on success).
    pub gdma_region: u64,
    /// Reserved.
    pub reserved2: u32,
    /// Ring size in bytes.
    pub queue_size: u32,
    /// log2 of the EQ throttle limit (LNX: 3).
    pub log2_throttle_limit: u32,
    /// MSI-X vector of the EQ.
    pub eq_pci_msix_index: u32,
    /// CQ moderation context.
    pub cq_mod_ctx_id: u32,
    /// Parent EQ of a CQ.
    pub cq_parent_eq_id: u32,
    /// RQ: drop on overrun.
    pub rq_drop_on_overrun: u8,
    /// RQ: error on WQE overflow.
    pub rq_err_on_wqe_overflow: u8,
    /// RQ: chain receive WQEs.
    pub rq_chain_rec_wqes: u8,
    /// SQ: hardware doorbell.
    pub sq_hw_db: u8,
    /// Reserved.
    pub reserved3: u32,
}

impl GdmaCreateQueueReq {
    /// The queue type, if valid.
    pub const fn queue_type(&self) -> Option<GdmaQueueType> {
        GdmaQueueType::from_u32(self.queue_type)
    }
}

/// CREATE_QUEUE response body.
#[repr(C)]
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct GdmaCreateQueueResp {
    /// Id of the created queue.
    pub queue_index: u32,
}
request!(GdmaCreateQueueReq = GDMA_CREATE_QUEUE => GdmaCreateQueueResp);

/// DISABLE_QUEUE (13) request body.
#[repr(C)]
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct GdmaDisableQueueReq {
    /// Queue type code.
    pub queue_type: u32,
    /// Queue id.
    pub queue_index: u32,
    /// Always 1 ([`GDMA_ALLOC_RES_ID_ON_CREATION`]).
    pub alloc_res_id_on_creation: u32,
}
request!(GdmaDisableQueueReq = GDMA_DISABLE_QUEUE => ());

/// CREATE_DMA_REGION (25) request body, followed by `page_addr_list_len` u64 page addresses.
#[repr(C)]
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct GdmaCreateDmaRegionReq {
    /// Total size of the region in bytes.
    pub length: u64,
    /// Offset of the data in the first page.
    pub offset_in_page: u32,
    /// Page type ([`GDMA_PAGE_TYPE_4K`]).
    pub gdma_page_type: u32,
    /// Total number of pages.
    pub page_count: u32,
    /// Pages carried in this message (the rest follow in DMA_REGION_ADD_PAGES).
    pub page_addr_list_len: u32,
}

/// CREATE_DMA_REGION response body.
#[repr(C)]
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct GdmaCreateDmaRegionResp {
    /// Region handle (0 = invalid).
    pub dma_region_handle: u64,
}
request!(GdmaCreateDmaRegionReq = GDMA_CREATE_DMA_REGION => GdmaCreateDmaRegionResp);

/// DMA_REGION_ADD_PAGES (26) request body, followed by `page_addr_list_len` page addresses.
#[repr(C)]
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct GdmaDmaRegionAddPagesReq {
    /// Region handle.
    pub dma_region_handle: u64,
    /// Pages carried in this message.
    pub page_addr_list_len: u32,
    /// Reserved.
    pub reserved3: u32,
}
request!(GdmaDmaRegionAddPagesReq = GDMA_DMA_REGION_ADD_PAGES => ());

/// DESTROY_DMA_REGION (27) request body.
#[repr(C)]
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct GdmaDestroyDmaRegionReq {
    /// Region handle.
    pub dma_region_handle: u64,
}
request!(GdmaDestroyDmaRegionReq = GDMA_DESTROY_DMA_REGION => ());

/// CHANGE_MSIX_FOR_EQ (81) request body (OVMM).
#[repr(C)]
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct GdmaChangeMsixForEqReq {
    /// EQ id.
    pub queue_index: u32,
    /// New MSI-X vector.
    pub msix: u32,
    /// Reserved.
    pub reserved1: u32,
    /// Reserved.
    pub reserved2: u32,
}
request!(GdmaChangeMsixForEqReq = GDMA_CHANGE_MSIX_FOR_EQ => ());

/// ALLOCATE_RESOURCE_RANGE request (§6.3): `num_resources` of `resource_type` (27: doorbell
/// pages) with the given alignment.
#[repr(C)]
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct GdmaAllocateResourceRangeReq {
    /// Resource type (`GDMA_RESOURCE_DOORBELL_PAGE`).
    pub resource_type: u32,
    /// Number of resources.
    pub num_resources: u32,
    /// Alignment of the first resource index.
    pub alignment: u32,
    /// Reserved in the request (the response carries the value).
    pub allocated_resources: u32,
}

/// ALLOCATE_RESOURCE_RANGE response: the first allocated index.
#[repr(C)]
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct GdmaAllocateResourceRangeResp {
    /// First allocated index.
    pub allocated_resources: u32,
}

request!(GdmaAllocateResourceRangeReq = GDMA_ALLOCATE_RESOURCE_RANGE => GdmaAllocateResourceRangeResp);

/// DESTROY_RESOURCE_RANGE request: gives back `num_resources` starting at `allocated_resources`.
#[repr(C)]
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct GdmaDestroyResourceRangeReq {
    /// Resource type.
    pub resource_type: u32,
    /// Number of resources.
    pub num_resources: u32,
    /// First index being given back.
    pub allocated_resources: u32,
}

request!(GdmaDestroyResourceRangeReq = GDMA_DESTROY_RESOURCE_RANGE => ());

/// QUERY_HWC_TIMEOUT (84) request and response body.
#[repr(C)]
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct GdmaQueryHwcTimeout {
    /// Timeout in milliseconds.
    pub timeout_ms: u32,
    /// Reserved.
    pub reserved: u32,
}
request!(GdmaQueryHwcTimeout = GDMA_QUERY_HWC_TIMEOUT => GdmaQueryHwcTimeout);

const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(size_of::<GdmaVerifyVerReq>() == 600);
    assert!(offset_of!(GdmaVerifyVerReq, drv_ver) == 48);
    assert!(offset_of!(GdmaVerifyVerReq, os_type) == 56);
    assert!(offset_of!(GdmaVerifyVerReq, os_ver_platform) == 76);
    assert!(offset_of!(GdmaVerifyVerReq, reserved_2) == 80);
    assert!(offset_of!(GdmaVerifyVerReq, os_ver_str1) == 88);
    assert!(offset_of!(GdmaVerifyVerReq, os_ver_str4) == 472);
    assert!(size_of::<GdmaVerifyVerResp>() == 40);
    assert!(size_of::<GdmaQueryMaxResourcesReq>() == 0);
    assert!(size_of::<GdmaQueryMaxResourcesResp>() == 40);
    assert!(offset_of!(GdmaQueryMaxResourcesResp, max_msix) == 36);
    assert!(size_of::<GdmaListDevicesResp>() == 8 + 4 * GDMA_MAX_LIST_DEVICES);
    assert!(offset_of!(GdmaListDevicesResp, devs) == 8);
    assert!(size_of::<GdmaRegisterDeviceResp>() == 12);
    assert!(offset_of!(GdmaRegisterDeviceResp, db_id) == 8);
    assert!(size_of::<GdmaGenerateTestEventReq>() == 4);
    assert!(size_of::<GdmaGenerateResetRequestEqeReq>() == 8);
    assert!(size_of::<GdmaCreateQueueReq>() == 56);
    assert!(offset_of!(GdmaCreateQueueReq, pdid) == 8);
    assert!(offset_of!(GdmaCreateQueueReq, doorbell_id) == 12);
    assert!(offset_of!(GdmaCreateQueueReq, gdma_region) == 16);
    assert!(offset_of!(GdmaCreateQueueReq, queue_size) == 28);
    assert!(offset_of!(GdmaCreateQueueReq, log2_throttle_limit) == 32);
    assert!(offset_of!(GdmaCreateQueueReq, eq_pci_msix_index) == 36);
    assert!(offset_of!(GdmaCreateQueueReq, cq_parent_eq_id) == 44);
    assert!(offset_of!(GdmaCreateQueueReq, rq_drop_on_overrun) == 48);
    assert!(offset_of!(GdmaCreateQueueReq, sq_hw_db) == 51);
    assert!(offset_of!(GdmaCreateQueueReq, reserved3) == 52);
    assert!(size_of::<GdmaCreateQueueResp>() == 4);
    assert!(size_of::<GdmaDisableQueueReq>() == 12);
    assert!(size_of::<GdmaCreateDmaRegionReq>() == 24);
    assert!(offset_of!(GdmaCreateDmaRegionReq, page_count) == 16);
    assert!(offset_of!(GdmaCreateDmaRegionReq, page_addr_list_len) == 20);
    assert!(size_of::<GdmaDmaRegionAddPagesReq>() == 16);
    assert!(size_of::<GdmaDestroyDmaRegionReq>() == 8);
    assert!(size_of::<GdmaChangeMsixForEqReq>() == 16);
    assert!(size_of::<GdmaQueryHwcTimeout>() == 8);
    assert!(size_of::<GdmaAllocateResourceRangeReq>() == 16);
    assert!(size_of::<GdmaAllocateResourceRangeResp>() == 4);
    assert!(size_of::<GdmaDestroyResourceRangeReq>() == 12);
    assert!(CREATE_DMA_REGION_MAX_PAGES == 504);
    assert!(DMA_REGION_ADD_PAGES_MAX_PAGES == 505);
};

/// Driver side: splits a region's page list into the pages of the CREATE_DMA_REGION message
/// and the batches of the DMA_REGION_ADD_PAGES messages that follow.
pub fn dma_region_batches(pages: &[u64]) -> (&[u64], core::slice::Chunks<'_, u64>) {
    let (first, rest) = pages.split_at(pages.len().min(CREATE_DMA_REGION_MAX_PAGES));
    (first, rest.chunks(DMA_REGION_ADD_PAGES_MAX_PAGES))
}

/// Device side: reads `count` little-endian u64 page addresses from the start of `bytes`
/// (the bytes after a CREATE_DMA_REGION / ADD_PAGES body).
pub fn read_page_list(
    bytes: &[u8],
    count: u32,
) -> Result<impl ExactSizeIterator<Item = u64> + '_, DecodeError> {
    let needed = (count as usize).saturating_mul(8);
    let Some(list) = bytes.get(..needed) else {
        return Err(DecodeError::Truncated { needed, got: bytes.len() });
    };
    Ok(list.chunks_exact(8).map(|c| {
        let mut a = [0u8; 8];
        a.copy_from_slice(c);
        u64::from_le_bytes(a)
    }))
}

/// Whether a DMA region page address is valid (4 KiB aligned).
#[inline]
pub const fn is_valid_page_addr(addr: u64) -> bool {
    addr % GDMA_DMA_REGION_PAGE_SIZE == 0
}

#[cfg(test)]
mod tests;
