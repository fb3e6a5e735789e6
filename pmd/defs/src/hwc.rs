//! Hardware channel (HWC) message framing: message/request/response headers, message types,
//! status codes, device ids, and encode/parse helpers for whole messages.
//!
//! Spec: §6.2 (framing, `gdma_msg_hdr`, `gdma_req_hdr`, `gdma_resp_hdr`, status codes, 4 KiB
//! limit), §6.3/§6.4 (msg_type values). Bodies live in [`crate::msgs_gdma`] and
//! [`crate::msgs_mana`]; each body type implements [`HwcRequest`], which ties it to its
//! msg_type, versions and response body.

use crate::error::{DecodeError, EncodeError, read_prefix};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// `hdr_type` of a standard message (`GDMA_STANDARD_HEADER_TYPE`).
pub const GDMA_STANDARD_HEADER_TYPE: u32 = 0;
/// Message version 1.
pub const GDMA_MESSAGE_V1: u16 = 1;
/// Message version 2.
pub const GDMA_MESSAGE_V2: u16 = 2;
/// Message version 3.
pub const GDMA_MESSAGE_V3: u16 = 3;
/// Message version 4.
pub const GDMA_MESSAGE_V4: u16 = 4;
/// Maximum HWC request size (INIT_DATA 5).
pub const HWC_MAX_REQUEST_SIZE: usize = 4096;
/// Maximum HWC response size (INIT_DATA 6).
pub const HWC_MAX_RESPONSE_SIZE: usize = 4096;
/// Size of `gdma_req_hdr`.
pub const GDMA_REQ_HDR_SIZE: usize = 40;
/// Size of `gdma_resp_hdr`.
pub const GDMA_RESP_HDR_SIZE: usize = 32;

/// Status: success.
pub const GDMA_STATUS_SUCCESS: u32 = 0;
/// Status: more DMA-region pages expected (every ADD_PAGES message but the last).
pub const GDMA_STATUS_MORE_ENTRIES: u32 = 0x105;
/// Status: command not supported (LNX maps it to EOPNOTSUPP).
pub const GDMA_STATUS_CMD_UNSUPPORTED: u32 = 0xFFFF_FFFF;
/// Status: generic failure, as OVMM-emu reports errors.
pub const GDMA_STATUS_FAILURE: u32 = 1;

/// GDMA request: negotiate the protocol version and capabilities.
pub const GDMA_VERIFY_VF_DRIVER_VERSION: u32 = 1;
/// GDMA request: query resource limits.
pub const GDMA_QUERY_MAX_RESOURCES: u32 = 2;
/// GDMA request: list the devices behind the HWC.
pub const GDMA_LIST_DEVICES: u32 = 3;
/// GDMA request: register a device (get pdid, gpa_mkey, doorbell id).
pub const GDMA_REGISTER_DEVICE: u32 = 4;
/// GDMA request: deregister a device.
pub const GDMA_DEREGISTER_DEVICE: u32 = 5;
/// GDMA request: post a TEST_EVENT on an EQ.
pub const GDMA_GENERATE_TEST_EQE: u32 = 10;
/// GDMA request (OVMM test hook): post a RESET_REQUEST (135) on an EQ.
pub const GDMA_GENERATE_RESET_REQUEST_EQE: u32 = 11;
/// GDMA request: create a queue (EQ in practice).
pub const GDMA_CREATE_QUEUE: u32 = 12;
/// GDMA request: disable (destroy) a queue.
pub const GDMA_DISABLE_QUEUE: u32 = 13;
/// GDMA request: allocate a resource range.
pub const GDMA_ALLOCATE_RESOURCE_RANGE: u32 = 22;
/// GDMA request: destroy a resource range.
pub const GDMA_DESTROY_RESOURCE_RANGE: u32 = 24;
/// GDMA request: create a DMA region.
pub const GDMA_CREATE_DMA_REGION: u32 = 25;
/// GDMA request: add pages to a DMA region.
pub const GDMA_DMA_REGION_ADD_PAGES: u32 = 26;
/// GDMA request: destroy a DMA region.
pub const GDMA_DESTROY_DMA_REGION: u32 = 27;
/// GDMA request: create a protection domain (RDMA).
pub const GDMA_CREATE_PD: u32 = 29;
/// GDMA request: destroy a protection domain (RDMA).
pub const GDMA_DESTROY_PD: u32 = 30;
/// GDMA request: create a memory region (RDMA).
pub const GDMA_CREATE_MR: u32 = 31;
/// GDMA request: destroy a memory region (RDMA).
pub const GDMA_DESTROY_MR: u32 = 32;
/// GDMA request: change the MSI-X vector of an EQ (OVMM).
pub const GDMA_CHANGE_MSIX_FOR_EQ: u32 = 81;
/// GDMA request: query the HWC timeout.
pub const GDMA_QUERY_HWC_TIMEOUT: u32 = 84;

/// MANA request: query device configuration.
pub const MANA_QUERY_DEV_CONFIG: u32 = 0x20001;
/// MANA request: query vport statistics (`MANA_QUERY_STATS` in OVMM).
pub const MANA_QUERY_GF_STAT: u32 = 0x20002;
/// MANA request: configure the vport for TX.
pub const MANA_CONFIG_VPORT_TX: u32 = 0x20003;
/// MANA request: create a WQ object (SQ or RQ with its CQ).
pub const MANA_CREATE_WQ_OBJ: u32 = 0x20004;
/// MANA request: destroy a WQ object.
pub const MANA_DESTROY_WQ_OBJ: u32 = 0x20005;
/// MANA request: fence an RQ (answered later by a CQE_RX_OBJECT_FENCE).
pub const MANA_FENCE_RQ: u32 = 0x20006;
/// MANA request: configure RX steering (RSS, default object, enable).
pub const MANA_CONFIG_VPORT_RX: u32 = 0x20007;
/// MANA request: query a vport's configuration.
pub const MANA_QUERY_VPORT_CONFIG: u32 = 0x20008;
/// MANA request: query link configuration (LNX).
pub const MANA_QUERY_LINK_CONFIG: u32 = 0x2000A;
/// MANA request: set bandwidth clamp (LNX).
pub const MANA_SET_BW_CLAMP: u32 = 0x2000B;
/// MANA request: query PHY statistics (LNX).
pub const MANA_QUERY_PHY_STAT: u32 = 0x2000C;

/// Device type: none (a hole in LIST_DEVICES).
pub const GDMA_DEVICE_NONE: u16 = 0;
/// Device type: the hardware channel.
pub const GDMA_DEVICE_HWC: u16 = 1;
/// Device type: MANA Ethernet.
pub const GDMA_DEVICE_MANA: u16 = 2;
/// Device type: MANA RDMA.
pub const GDMA_DEVICE_MANA_IB: u16 = 3;

/// A GDMA device id (`gdma_dev_id`): type and instance.
#[repr(C)]
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct GdmaDevId {
    /// Device type (`GDMA_DEVICE_*`).
    pub ty: u16,
    /// Instance.
    pub instance: u16,
}

/// The device id of the hardware channel itself, used for generic GDMA requests.
pub const HWC_DEV_ID: GdmaDevId = GdmaDevId { ty: GDMA_DEVICE_HWC, instance: 0 };

impl GdmaDevId {
    /// The id as one u32 (`as_uint32`).
    #[inline]
    pub const fn as_u32(self) -> u32 {
        self.ty as u32 | ((self.instance as u32) << 16)
    }
}

/// `gdma_msg_hdr` (16 bytes).
#[repr(C)]
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct GdmaMsgHdr {
    /// Header type (0 = standard).
    pub hdr_type: u32,
    /// Message type (`GDMA_*` / `MANA_*`).
    pub msg_type: u32,
    /// Message version.
    pub msg_version: u16,
    /// In-flight slot index, echoed in the response.
    pub hwc_msg_id: u16,
    /// Total message size in bytes, header included.
    pub msg_size: u32,
}

/// `gdma_req_hdr` (40 bytes).
#[repr(C)]
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct GdmaReqHdr {
    /// The request's own header.
    pub req: GdmaMsgHdr,
    /// The expected response: type, version, size.
    pub resp: GdmaMsgHdr,
    /// Target device.
    pub dev_id: GdmaDevId,
    /// Activity id, echoed in the response.
    pub activity_id: u32,
}

/// `gdma_resp_hdr` (32 bytes).
#[repr(C)]
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct GdmaRespHdr {
    /// The response header.
    pub response: GdmaMsgHdr,
    /// Echoed device id.
    pub dev_id: GdmaDevId,
    /// Echoed activity id.
    pub activity_id: u32,
    /// Status (`GDMA_STATUS_*`).
    pub status: u32,
    /// Reserved.
    pub reserved: u32,
}

const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(size_of::<GdmaDevId>() == 4);
    assert!(size_of::<GdmaMsgHdr>() == 16);
    assert!(offset_of!(GdmaMsgHdr, msg_type) == 4);
    assert!(offset_of!(GdmaMsgHdr, msg_version) == 8);
    assert!(offset_of!(GdmaMsgHdr, hwc_msg_id) == 10);
    assert!(offset_of!(GdmaMsgHdr, msg_size) == 12);
    assert!(size_of::<GdmaReqHdr>() == GDMA_REQ_HDR_SIZE);
    assert!(offset_of!(GdmaReqHdr, resp) == 16);
    assert!(offset_of!(GdmaReqHdr, dev_id) == 32);
    assert!(offset_of!(GdmaReqHdr, activity_id) == 36);
    assert!(size_of::<GdmaRespHdr>() == GDMA_RESP_HDR_SIZE);
    assert!(offset_of!(GdmaRespHdr, dev_id) == 16);
    assert!(offset_of!(GdmaRespHdr, activity_id) == 20);
    assert!(offset_of!(GdmaRespHdr, status) == 24);
};

impl GdmaRespHdr {
    /// Whether `status` is [`GDMA_STATUS_SUCCESS`].
    #[inline]
    pub const fn is_success(&self) -> bool {
        self.status == GDMA_STATUS_SUCCESS
    }

    /// Driver side: checks that this response answers `req` (type, `hwc_msg_id`, `dev_id`,
    /// `activity_id` echoed, as LNX verifies).
    pub fn matches(&self, req: &GdmaReqHdr) -> bool {
        self.response.msg_type == req.req.msg_type
            && self.response.hwc_msg_id == req.req.hwc_msg_id
            && self.dev_id == req.dev_id
            && self.activity_id == req.activity_id
    }
}

/// A request body type: ties it to its msg_type, message versions and response body.
pub trait HwcRequest: FromBytes + IntoBytes + KnownLayout + Immutable + Sized {
    /// The `msg_type` of the request.
    const MSG_TYPE: u32;
    /// Request message version sent.
    const REQ_VERSION: u16 = GDMA_MESSAGE_V1;
    /// Response message version expected.
    const RESP_VERSION: u16 = GDMA_MESSAGE_V1;
    /// The response body type (`()` when the response is the header alone).
    type Response: FromBytes + IntoBytes + KnownLayout + Immutable + Sized;
}

/// Per-message fields of a request header that are not fixed by the body type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestIds {
    /// Target device ([`HWC_DEV_ID`] for generic GDMA requests).
    pub dev_id: GdmaDevId,
    /// In-flight slot index.
    pub hwc_msg_id: u16,
    /// Activity id.
    pub activity_id: u32,
}

impl RequestIds {
    /// Ids for a generic GDMA request to the HWC.
    pub const fn hwc(hwc_msg_id: u16, activity_id: u32) -> Self {
        Self { dev_id: HWC_DEV_ID, hwc_msg_id, activity_id }
    }
}

/// Builds the request header for body type `R` with `trailing` bytes after the body.
pub fn request_header<R: HwcRequest>(ids: RequestIds, trailing: usize) -> GdmaReqHdr {
    let size = GDMA_REQ_HDR_SIZE + core::mem::size_of::<R>() + trailing;
    GdmaReqHdr {
        req: GdmaMsgHdr {
            hdr_type: GDMA_STANDARD_HEADER_TYPE,
            msg_type: R::MSG_TYPE,
            msg_version: R::REQ_VERSION,
            hwc_msg_id: ids.hwc_msg_id,
            msg_size: size as u32,
        },
        resp: GdmaMsgHdr {
            hdr_type: GDMA_STANDARD_HEADER_TYPE,
            msg_type: R::MSG_TYPE,
            msg_version: R::RESP_VERSION,
            hwc_msg_id: 0,
            msg_size: (GDMA_RESP_HDR_SIZE + core::mem::size_of::<R::Response>()) as u32,
        },
        dev_id: ids.dev_id,
        activity_id: ids.activity_id,
    }
}

/// Writes header + `body` + `trailing` into `out`; returns the message size.
fn write_message(out: &mut [u8], parts: [&[u8]; 3]) -> Result<usize, EncodeError> {
    let total: usize = parts.iter().map(|p| p.len()).sum();
    if out.len() < total {
        return Err(EncodeError::BufferTooSmall { needed: total, got: out.len() });
    }
    let mut off = 0;
    for p in parts {
        out[off..off + p.len()].copy_from_slice(p);
        off += p.len();
    }
    Ok(total)
}

/// Driver side: encodes a complete request (header, body, `trailing` bytes such as a page
/// list or an indirection table) into `out`; returns its size.
pub fn encode_request<R: HwcRequest>(
    out: &mut [u8],
    ids: RequestIds,
    body: &R,
    trailing: &[u8],
) -> Result<usize, EncodeError> {
    let hdr = request_header::<R>(ids, trailing.len());
    write_message(out, [hdr.as_bytes(), body.as_bytes(), trailing])
}

/// Builds the response header that answers `req` with `status` and `body_len` body bytes.
pub fn response_header(req: &GdmaReqHdr, status: u32, body_len: usize) -> GdmaRespHdr {
    GdmaRespHdr {
        response: GdmaMsgHdr {
            hdr_type: GDMA_STANDARD_HEADER_TYPE,
            msg_type: req.req.msg_type,
            msg_version: req.resp.msg_version,
            hwc_msg_id: req.req.hwc_msg_id,
            msg_size: (GDMA_RESP_HDR_SIZE + body_len) as u32,
        },
        dev_id: req.dev_id,
        activity_id: req.activity_id,
        status,
        reserved: 0,
    }
}

/// Device side: encodes a complete response to `req` (header echoing its ids, `body`,
/// `trailing`) into `out`; returns its size. Use `&()` for a header-only response.
pub fn encode_response<T: IntoBytes + Immutable>(
    out: &mut [u8],
    req: &GdmaReqHdr,
    status: u32,
    body: &T,
    trailing: &[u8],
) -> Result<usize, EncodeError> {
    let b = body.as_bytes();
    let hdr = response_header(req, status, b.len() + trailing.len());
    write_message(out, [hdr.as_bytes(), b, trailing])
}

/// Reads a `T` from `bytes`, zero-filling whatever `bytes` lacks (older/newer message versions
/// carry shorter/longer bodies; missing trailing fields read as 0).
pub fn read_zero_extended<T: FromBytes + IntoBytes>(bytes: &[u8]) -> T {
    let mut v = T::new_zeroed();
    let dst = v.as_mut_bytes();
    let n = dst.len().min(bytes.len());
    dst[..n].copy_from_slice(&bytes[..n]);
    v
}

/// Splits a message into header and body, honouring `msg_size` (which must lie between the
/// header size and `bytes.len()`).
fn split_message<H: FromBytes>(
    bytes: &[u8],
    msg_size: u32,
    hdr_len: usize,
) -> Result<(H, &[u8]), DecodeError> {
    let hdr: H = read_prefix(bytes)?;
    let size = msg_size as usize;
    if size < hdr_len {
        return Err(DecodeError::InvalidField { field: "msg_size", value: msg_size as u64 });
    }
    match bytes.get(hdr_len..size) {
        Some(body) => Ok((hdr, body)),
        None => Err(DecodeError::Truncated { needed: size, got: bytes.len() }),
    }
}

/// A request received by the device: header plus body bytes (bounded by `msg_size`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestRef<'a> {
    /// The request header.
    pub hdr: GdmaReqHdr,
    /// Everything after the header up to `msg_size`.
    pub body: &'a [u8],
}

impl<'a> RequestRef<'a> {
    /// Parses a request buffer (device side). Never panics.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        let size = read_prefix::<GdmaReqHdr>(bytes)?.req.msg_size;
        let (hdr, body) = split_message(bytes, size, GDMA_REQ_HDR_SIZE)?;
        Ok(Self { hdr, body })
    }

    /// The request's msg_type.
    #[inline]
    pub const fn msg_type(&self) -> u32 {
        self.hdr.req.msg_type
    }

    /// The body as `T`; error if the body is shorter than `T`.
    pub fn body<T: FromBytes>(&self) -> Result<T, DecodeError> {
        read_prefix(self.body)
    }

    /// The body as `T`, zero-extending a short body.
    pub fn body_zero_extended<T: FromBytes + IntoBytes>(&self) -> T {
        read_zero_extended(self.body)
    }

    /// Bytes of the request at absolute offset `offset` (header included) for `len` bytes,
    /// e.g. the CONFIG_VPORT_RX indirection table at `indir_tab_offset`.
    pub fn bytes_at(&self, offset: usize, len: usize) -> Result<&'a [u8], DecodeError> {
        let start = offset
            .checked_sub(GDMA_REQ_HDR_SIZE)
            .ok_or(DecodeError::InvalidField { field: "offset", value: offset as u64 })?;
        let end = start
            .checked_add(len)
            .ok_or(DecodeError::InvalidField { field: "len", value: len as u64 })?;
        self.body.get(start..end).ok_or(DecodeError::Truncated {
            needed: GDMA_REQ_HDR_SIZE.saturating_add(end),
            got: GDMA_REQ_HDR_SIZE + self.body.len(),
        })
    }

    /// Bytes following a fixed body of type `T` (e.g. a DMA region page list).
    pub fn trailing<T>(&self) -> &'a [u8] {
        self.body.get(core::mem::size_of::<T>()..).unwrap_or(&[])
    }
}

/// A response received by the driver: header plus body bytes (bounded by `msg_size`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseRef<'a> {
    /// The response header.
    pub hdr: GdmaRespHdr,
    /// Everything after the header up to `msg_size`.
    pub body: &'a [u8],
}

impl<'a> ResponseRef<'a> {
    /// Parses a response buffer (driver side). Never panics.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        let size = read_prefix::<GdmaRespHdr>(bytes)?.response.msg_size;
        let (hdr, body) = split_message(bytes, size, GDMA_RESP_HDR_SIZE)?;
        Ok(Self { hdr, body })
    }

    /// The body as `R::Response`, zero-extending a short body (older response versions).
    pub fn body_for<R: HwcRequest>(&self) -> R::Response {
        read_zero_extended(self.body)
    }

    /// The body as `T`; error if the body is shorter than `T`.
    pub fn body<T: FromBytes>(&self) -> Result<T, DecodeError> {
        read_prefix(self.body)
    }
}

#[cfg(test)]
mod tests;
