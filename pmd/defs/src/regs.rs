//! BAR0 register map and the shared-memory channel (SMC) used to bootstrap the HWC.
//!
//! Spec: §2.1 (BAR0 register map, PCI ids, doorbell page location) and §6.1 (SMC window,
//! protocol header dword, ESTABLISH_HWC / DESTROY_HWC encodings).

use crate::bits::bitfield;
use crate::error::{DecodeError, EncodeError, check_range, read_prefix};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// PCI vendor id of MANA (Microsoft).
pub const MANA_VENDOR_ID: u16 = 0x1414;
/// PCI device id of a MANA PF.
pub const MANA_PF_DEVICE_ID: u16 = 0x00B9;
/// PCI device id of a MANA VF (the one this project drives and emulates).
pub const MANA_VF_DEVICE_ID: u16 = 0x00BA;
/// PCI device id of the second-generation PF (newest LNX).
pub const MANA_PF2_DEVICE_ID: u16 = 0x00C1;

/// VF register: doorbell pages zone offset within BAR0 (u64).
pub const GDMA_REG_DB_PAGE_OFFSET: usize = 0x08;
/// VF register: doorbell page size (u16; LNX reads a u32 and masks 0xFFFF).
pub const GDMA_REG_DB_PAGE_SIZE: usize = 0x10;
/// VF register: shared-memory (SMC) window offset within BAR0 (u64).
pub const GDMA_REG_SHM_OFFSET: usize = 0x18;
/// VF register: shared-memory window size (u16).
pub const GDMA_REG_SHM_SIZE: usize = 0x20;
/// PF register: doorbell page size.
pub const GDMA_PF_REG_DB_PAGE_SIZE: usize = 0xD0;
/// PF register: doorbell page offset.
pub const GDMA_PF_REG_DB_PAGE_OFF: usize = 0xC8;
/// PF register: SR-IOV config base.
pub const GDMA_SRIOV_REG_CFG_BASE_OFF: usize = 0x108;
/// PF: SHM offset relative to the SR-IOV config base.
pub const GDMA_PF_REG_SHM_OFF: usize = 0x70;

/// Size of the VF register map at the start of BAR0.
pub const REG_MAP_SIZE: usize = 40;
/// Minimum doorbell page size.
pub const MIN_DB_PAGE_SIZE: u32 = 4096;
/// A read of all ones from BAR0/SMC means "device gone or in reset" (LNX `SHMEM_VF_RESET_STATE`).
pub const SHMEM_VF_RESET_STATE: u32 = 0xFFFF_FFFF;

/// The VF register map (first 40 bytes of BAR0, §2.1).
#[repr(C)]
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct RegMap {
    /// Micro version.
    pub micro_version: u16,
    /// Minor version.
    pub minor_version: u8,
    /// Major version (OVMM accepts 0 or 1).
    pub major_version: u8,
    /// Reserved.
    pub reserved: u32,
    /// Offset of the doorbell pages zone within BAR0.
    pub db_pages_offset: u64,
    /// Size of one doorbell page (≥ 4096).
    pub db_page_size: u16,
    /// Reserved.
    pub reserved2: u16,
    /// Reserved.
    pub reserved3: u32,
    /// Offset of the SMC window within BAR0.
    pub shm_offset: u64,
    /// Size of the SMC window (32).
    pub shm_size: u16,
    /// Reserved.
    pub reserved4: u16,
    /// Reserved.
    pub reserved5: u32,
}

const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(size_of::<RegMap>() == REG_MAP_SIZE);
    assert!(offset_of!(RegMap, micro_version) == 0x00);
    assert!(offset_of!(RegMap, minor_version) == 0x02);
    assert!(offset_of!(RegMap, major_version) == 0x03);
    assert!(offset_of!(RegMap, db_pages_offset) == GDMA_REG_DB_PAGE_OFFSET);
    assert!(offset_of!(RegMap, db_page_size) == GDMA_REG_DB_PAGE_SIZE);
    assert!(offset_of!(RegMap, shm_offset) == GDMA_REG_SHM_OFFSET);
    assert!(offset_of!(RegMap, shm_size) == GDMA_REG_SHM_SIZE);
};

impl RegMap {
    /// Decodes the register map from the first 40 bytes of `bytes`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        read_prefix(bytes)
    }

    /// Encodes the register map as it appears in BAR0.
    pub fn to_bytes(&self) -> [u8; REG_MAP_SIZE] {
        let mut out = [0u8; REG_MAP_SIZE];
        out.copy_from_slice(self.as_bytes());
        out
    }

    /// BAR0 offset of doorbell page `index`, or `None` on arithmetic overflow.
    pub const fn db_page_bar_offset(&self, index: u32) -> Option<u64> {
        match (self.db_page_size as u64).checked_mul(index as u64) {
            Some(off) => self.db_pages_offset.checked_add(off),
            None => None,
        }
    }

    /// Checks the constraints of §2.1 (page size ≥ 4096, SMC size 32, major version ≤ 1).
    pub fn validate(&self) -> Result<(), DecodeError> {
        if (self.db_page_size as u32) < MIN_DB_PAGE_SIZE {
            return Err(DecodeError::InvalidField {
                field: "db_page_size",
                value: self.db_page_size as u64,
            });
        }
        if self.shm_size as usize != SMC_SIZE {
            return Err(DecodeError::InvalidField {
                field: "shm_size",
                value: self.shm_size as u64,
            });
        }
        if self.major_version > 1 {
            return Err(DecodeError::InvalidField {
                field: "major_version",
                value: self.major_version as u64,
            });
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Shared-memory channel (§6.1)
// ---------------------------------------------------------------------------------------

/// Size of the SMC window in bytes.
pub const SMC_SIZE: usize = 32;
/// Number of dwords in the SMC window.
pub const SMC_APERTURE_DWORDS: usize = 8;
/// Index of the protocol-header dword (byte 28).
pub const SMC_LAST_DWORD: usize = SMC_APERTURE_DWORDS - 1;

/// SMC message type: establish the hardware channel.
pub const SMC_MSG_TYPE_ESTABLISH_HWC: u8 = 1;
/// SMC message type: destroy the hardware channel.
pub const SMC_MSG_TYPE_DESTROY_HWC: u8 = 2;
/// SMC message type: report an HWC timeout (OVMM).
pub const SMC_MSG_TYPE_REPORT_HWC_TIMEOUT: u8 = 4;
/// Message version of ESTABLISH_HWC.
pub const SMC_MSG_TYPE_ESTABLISH_HWC_VERSION: u8 = 0;
/// Message version of DESTROY_HWC.
pub const SMC_MSG_TYPE_DESTROY_HWC_VERSION: u8 = 0;
/// Message version of REPORT_HWC_TIMEOUT.
pub const SMC_MSG_TYPE_REPORT_HWC_TIMEOUT_VERSION: u8 = 1;
/// Direction bit value of a request.
pub const SMC_MSG_DIRECTION_REQUEST: bool = false;
/// Direction bit value of a response.
pub const SMC_MSG_DIRECTION_RESPONSE: bool = true;

/// Width of the low part of a page frame number in the ESTABLISH_HWC body.
pub const SMC_PFN_LOW_BITS: u32 = 48;
/// Largest page frame number ESTABLISH_HWC can carry (48 + 4 bits).
pub const SMC_MAX_PFN: u64 = (1 << 52) - 1;
/// Page size used by the SMC page frame numbers.
pub const SMC_PAGE_SHIFT: u32 = 12;

bitfield! {
    /// SMC protocol header: the last dword (byte 28) of the SMC window (§6.1).
    pub struct SmcProtoHdr(u32);
    /// Message type (`SMC_MSG_TYPE_*`).
    field msg_type, with_msg_type: u8 [0, 3];
    /// Message version.
    field msg_version, with_msg_version: u8 [3, 3];
    /// Direction: 0 request, 1 response.
    flag is_response, with_is_response [7];
    /// Status (0 = success).
    field status, with_status: u8 [8, 8];
    /// Request a VF reset (FLR).
    flag reset_vf, with_reset_vf [24];
    /// Set while the PF/device owns the window.
    flag owner_is_pf, with_owner_is_pf [31];
}

/// Why an SMC response is not a success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmcError {
    /// The window still belongs to the PF (bit 31 set).
    Busy,
    /// The window reads all ones: device gone or in reset.
    DeviceReset,
    /// The header is not a response to the request that was sent.
    Mismatch {
        /// The header read back.
        hdr: SmcProtoHdr,
    },
    /// The device answered with a non-zero status.
    Status(u8),
}

impl SmcProtoHdr {
    /// A request header for `msg_type`/`msg_version` (owner bit clear; the device sets it).
    #[inline]
    pub const fn request(msg_type: u8, msg_version: u8, reset_vf: bool) -> Self {
        Self::ZERO.with_msg_type(msg_type).with_msg_version(msg_version).with_reset_vf(reset_vf)
    }

    /// The response header the device writes back for this request, with `status`.
    #[inline]
    pub const fn response_to(self, status: u8) -> Self {
        Self::ZERO
            .with_msg_type(self.msg_type())
            .with_msg_version(self.msg_version())
            .with_is_response(true)
            .with_status(status)
    }

    /// Driver side: checks a header read back after ownership returned (§6.1).
    pub const fn check_response(self, msg_type: u8, msg_version: u8) -> Result<(), SmcError> {
        if self.0 == SHMEM_VF_RESET_STATE {
            return Err(SmcError::DeviceReset);
        }
        if self.owner_is_pf() {
            return Err(SmcError::Busy);
        }
        if self.msg_type() != msg_type || self.msg_version() != msg_version || !self.is_response() {
            return Err(SmcError::Mismatch { hdr: self });
        }
        if self.status() != 0 {
            return Err(SmcError::Status(self.status()));
        }
        Ok(())
    }
}

/// ESTABLISH_HWC request body (§6.1): one 4 KiB page for each HWC queue and the MSI-X vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EstablishHwc {
    /// Page frame number (address >> 12) of the HWC EQ page.
    pub eq_pfn: u64,
    /// Page frame number of the HWC CQ page.
    pub cq_pfn: u64,
    /// Page frame number of the HWC RQ page.
    pub rq_pfn: u64,
    /// Page frame number of the HWC SQ page.
    pub sq_pfn: u64,
    /// MSI-X vector of the HWC EQ.
    pub msix_index: u16,
    /// Request a VF reset as part of the establish.
    pub reset_vf: bool,
}

impl EstablishHwc {
    /// Encodes the 8 SMC dwords, to be written in order 0..8 (the last write hands the
    /// window to the device). Fails if a PFN does not fit in 52 bits.
    pub fn encode(&self) -> Result<[u32; SMC_APERTURE_DWORDS], EncodeError> {
        let pfns = [self.eq_pfn, self.cq_pfn, self.rq_pfn, self.sq_pfn];
        let names = ["eq_pfn", "cq_pfn", "rq_pfn", "sq_pfn"];
        let mut bytes = [0u8; SMC_SIZE];
        let mut high: u16 = 0;
        for (i, (&pfn, name)) in pfns.iter().zip(names).enumerate() {
            check_range(name, pfn, SMC_MAX_PFN)?;
            let low = pfn.to_le_bytes();
            bytes[i * 6..i * 6 + 6].copy_from_slice(&low[..6]);
            high |= (((pfn >> SMC_PFN_LOW_BITS) & 0xF) as u16) << (4 * i);
        }
        bytes[24..26].copy_from_slice(&high.to_le_bytes());
        bytes[26..28].copy_from_slice(&self.msix_index.to_le_bytes());
        let hdr = SmcProtoHdr::request(
            SMC_MSG_TYPE_ESTABLISH_HWC,
            SMC_MSG_TYPE_ESTABLISH_HWC_VERSION,
            self.reset_vf,
        );
        bytes[28..32].copy_from_slice(&hdr.0.to_le_bytes());
        Ok(smc_bytes_to_dwords(&bytes))
    }

    /// Device side: decodes the body of an ESTABLISH_HWC request from the 8 SMC dwords.
    /// The header dword is not checked here (see [`SmcProtoHdr`]).
    pub fn decode(dwords: &[u32; SMC_APERTURE_DWORDS]) -> Self {
        let bytes = smc_dwords_to_bytes(dwords);
        let high = u16::from_le_bytes([bytes[24], bytes[25]]);
        let pfn = |i: usize| {
            let mut b = [0u8; 8];
            b[..6].copy_from_slice(&bytes[i * 6..i * 6 + 6]);
            u64::from_le_bytes(b) | ((((high >> (4 * i)) & 0xF) as u64) << SMC_PFN_LOW_BITS)
        };
        Self {
            eq_pfn: pfn(0),
            cq_pfn: pfn(1),
            rq_pfn: pfn(2),
            sq_pfn: pfn(3),
            msix_index: u16::from_le_bytes([bytes[26], bytes[27]]),
            reset_vf: SmcProtoHdr(dwords[SMC_LAST_DWORD]).reset_vf(),
        }
    }
}

/// The single header dword of a DESTROY_HWC request (§6.1); only dword 7 is written.
#[inline]
pub const fn destroy_hwc_request(reset_vf: bool) -> SmcProtoHdr {
    SmcProtoHdr::request(SMC_MSG_TYPE_DESTROY_HWC, SMC_MSG_TYPE_DESTROY_HWC_VERSION, reset_vf)
}

/// Converts a 32-byte SMC image to its 8 little-endian dwords.
pub fn smc_bytes_to_dwords(bytes: &[u8; SMC_SIZE]) -> [u32; SMC_APERTURE_DWORDS] {
    let mut out = [0u32; SMC_APERTURE_DWORDS];
    for (d, c) in out.iter_mut().zip(bytes.chunks_exact(4)) {
        *d = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
    }
    out
}

/// Converts 8 SMC dwords to the 32-byte little-endian image.
pub fn smc_dwords_to_bytes(dwords: &[u32; SMC_APERTURE_DWORDS]) -> [u8; SMC_SIZE] {
    let mut out = [0u8; SMC_SIZE];
    for (c, d) in out.chunks_exact_mut(4).zip(dwords) {
        c.copy_from_slice(&d.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reg_map_decodes_ovmm_layout() {
        // OVMM-emu BAR0: version 1.0.0, DB pages at 4096 (size 4096), SMC at 40 (size 32).
        let mut b = [0u8; 48];
        b[3] = 1;
        b[8..16].copy_from_slice(&4096u64.to_le_bytes());
        b[0x10..0x12].copy_from_slice(&4096u16.to_le_bytes());
        b[0x18..0x20].copy_from_slice(&40u64.to_le_bytes());
        b[0x20..0x22].copy_from_slice(&32u16.to_le_bytes());
        let r = RegMap::from_bytes(&b).unwrap();
        assert_eq!(r.major_version, 1);
        assert_eq!(r.db_pages_offset, 4096);
        assert_eq!(r.db_page_size, 4096);
        assert_eq!(r.shm_offset, 40);
        assert_eq!(r.shm_size, 32);
        assert_eq!(r.validate(), Ok(()));
        assert_eq!(r.db_page_bar_offset(0), Some(4096));
        assert_eq!(r.db_page_bar_offset(3), Some(4 * 4096));
        assert_eq!(&r.to_bytes()[..], &b[..40]);
        assert_eq!(
            RegMap::from_bytes(&b[..39]),
            Err(DecodeError::Truncated { needed: 40, got: 39 })
        );
        let bad = RegMap { db_page_size: 512, ..r };
        assert_eq!(
            bad.validate(),
            Err(DecodeError::InvalidField { field: "db_page_size", value: 512 })
        );
    }

    #[test]
    fn establish_hwc_word_sequence() {
        // EQ page at PFN 0xA_0000_0000_1234 (uses the high nibble), CQ/RQ/SQ at 0x1235..0x1237,
        // MSI-X vector 3. Bytes: [34 12 00 00 00 00][35 12 00 00 00 00][36 12 ..][37 12 ..]
        // [0A 00][03 00][hdr 01 00 00 00].
        let req = EstablishHwc {
            eq_pfn: 0xA_0000_0000_1234,
            cq_pfn: 0x1235,
            rq_pfn: 0x1236,
            sq_pfn: 0x1237,
            msix_index: 3,
            reset_vf: false,
        };
        let words = req.encode().unwrap();
        assert_eq!(
            words,
            [
                0x0000_1234,
                0x1235_0000,
                0x0000_0000,
                0x0000_1236,
                0x1237_0000,
                0x0000_0000,
                0x0003_000A,
                0x0000_0001
            ]
        );
        assert_eq!(EstablishHwc::decode(&words), req);

        let with_reset = EstablishHwc { reset_vf: true, ..req }.encode().unwrap();
        assert_eq!(with_reset[7], 0x0100_0001);

        let too_big = EstablishHwc { sq_pfn: 1 << 52, ..req };
        assert_eq!(
            too_big.encode(),
            Err(EncodeError::OutOfRange { field: "sq_pfn", value: 1 << 52, max: SMC_MAX_PFN })
        );
    }

    #[test]
    fn smc_header_bits_and_response_check() {
        assert_eq!(destroy_hwc_request(false).0, 0x0000_0002);
        let req = SmcProtoHdr::request(SMC_MSG_TYPE_ESTABLISH_HWC, 0, false);
        let resp = req.response_to(0);
        assert_eq!(resp.0, 0x0000_0081);
        assert_eq!(resp.check_response(SMC_MSG_TYPE_ESTABLISH_HWC, 0), Ok(()));
        assert_eq!(SmcProtoHdr(0x8000_0001).check_response(1, 0), Err(SmcError::Busy));
        assert_eq!(
            SmcProtoHdr(SHMEM_VF_RESET_STATE).check_response(1, 0),
            Err(SmcError::DeviceReset)
        );
        assert_eq!(req.response_to(5).check_response(1, 0), Err(SmcError::Status(5)));
        assert_eq!(req.response_to(5).0, 0x0000_0581);
        assert_eq!(req.check_response(1, 0), Err(SmcError::Mismatch { hdr: req }));
        assert_eq!(
            resp.check_response(SMC_MSG_TYPE_DESTROY_HWC, 0),
            Err(SmcError::Mismatch { hdr: resp })
        );
        let t = SmcProtoHdr::request(
            SMC_MSG_TYPE_REPORT_HWC_TIMEOUT,
            SMC_MSG_TYPE_REPORT_HWC_TIMEOUT_VERSION,
            false,
        );
        assert_eq!(t.0, 0x0000_000C);
        assert!(SmcProtoHdr(0x8000_0000).owner_is_pf());
    }
}
