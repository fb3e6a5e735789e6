//! Event queue entries: the 16-byte EQE, its info dword, event types and their data,
//! including the HWC INIT_DATA types.
//!
//! Spec: §5.1 (EQE layout, info dword with owner bits), §5.2 (event types 3, 64, 129–135, 176
//! and their data), §5.3 (HWC INIT_DATA types), §5.4 (reset request 135).

use crate::bits::bitfield;
use crate::error::{DecodeError, read_prefix};
use crate::queue::{GDMA_EQE_SIZE, GDMA_OWNER_SHIFT};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// Event data bytes in an EQE (`GDMA_EVENT_DATA_SIZE`).
pub const GDMA_EVENT_DATA_SIZE: usize = 0xC;
/// Dword index of the EQE info dword (byte offset 12).
pub const EQE_INFO_DWORD: usize = 3;
/// Byte offset of the EQE info dword.
pub const EQE_INFO_OFFSET: usize = 12;
/// Byte offset of the EQE byte carrying the owner bits (written last by the device).
pub const EQE_OWNER_BYTE_OFFSET: usize = 15;

/// Event: a CQ has new CQEs (data: CQ id).
pub const GDMA_EQE_COMPLETION: u8 = 3;
/// Event: answer to `GDMA_GENERATE_TEST_EQE`.
pub const GDMA_EQE_TEST_EVENT: u8 = 64;
/// Event: HWC EQ id and doorbell page id.
pub const GDMA_EQE_HWC_INIT_EQ_ID_DB: u8 = 129;
/// Event: one HWC INIT_DATA item.
pub const GDMA_EQE_HWC_INIT_DATA: u8 = 130;
/// Event: HWC initialisation done.
pub const GDMA_EQE_HWC_INIT_DONE: u8 = 131;
/// Event: FPGA reconfiguration (LNX; LNX-old calls it `GDMA_EQE_HWC_SOC_RECONFIG`).
pub const GDMA_EQE_HWC_FPGA_RECONFIG: u8 = 132;
/// Alias of [`GDMA_EQE_HWC_FPGA_RECONFIG`] (LNX-old name).
pub const GDMA_EQE_HWC_SOC_RECONFIG: u8 = 132;
/// Event: reconfiguration data (OVMM: `GDMA_EQE_HWC_RECONFIG_DATA`).
pub const GDMA_EQE_HWC_SOC_RECONFIG_DATA: u8 = 133;
/// Alias of [`GDMA_EQE_HWC_SOC_RECONFIG_DATA`] (OVMM name).
pub const GDMA_EQE_HWC_RECONFIG_DATA: u8 = 133;
/// Event: SoC service (RDMA suspend/resume).
pub const GDMA_EQE_HWC_SOC_SERVICE: u8 = 134;
/// Event: reset request; the driver must tear down and rebuild (§5.4).
pub const GDMA_EQE_HWC_RESET_REQUEST: u8 = 135;
/// Event: RDMA QP fatal (RDMA only).
pub const GDMA_EQE_RNIC_QP_FATAL: u8 = 176;

/// INIT_DATA type: HWC CQ id.
pub const HWC_INIT_DATA_CQID: u8 = 1;
/// INIT_DATA type: HWC RQ id.
pub const HWC_INIT_DATA_RQID: u8 = 2;
/// INIT_DATA type: HWC SQ id.
pub const HWC_INIT_DATA_SQID: u8 = 3;
/// INIT_DATA type: max in-flight HWC messages.
pub const HWC_INIT_DATA_QUEUE_DEPTH: u8 = 4;
/// INIT_DATA type: max request bytes.
pub const HWC_INIT_DATA_MAX_REQUEST: u8 = 5;
/// INIT_DATA type: max response bytes.
pub const HWC_INIT_DATA_MAX_RESPONSE: u8 = 6;
/// INIT_DATA type: size of the CQ-id space.
pub const HWC_INIT_DATA_MAX_NUM_CQS: u8 = 7;
/// INIT_DATA type: protection domain id of the HWC.
pub const HWC_INIT_DATA_PDID: u8 = 8;
/// INIT_DATA type: memory key for guest-physical addresses (used in HWC SGEs).
pub const HWC_INIT_DATA_GPA_MKEY: u8 = 9;
/// INIT_DATA type: PF destination RQ id (PF only).
pub const HWC_INIT_DATA_PF_DEST_RQ_ID: u8 = 10;
/// INIT_DATA type: PF destination CQ id (PF only).
pub const HWC_INIT_DATA_PF_DEST_CQ_ID: u8 = 11;

/// RECONFIG_DATA (133) type: HWC timeout in ms.
pub const HWC_DATA_CONFIG_HWC_TIMEOUT: u8 = 1;
/// RECONFIG_DATA (133) type: HW vport link connect.
pub const HWC_DATA_TYPE_HW_VPORT_LINK_CONNECT: u8 = 2;
/// RECONFIG_DATA (133) type: HW vport link disconnect (value = vport index per OVMM).
pub const HWC_DATA_TYPE_HW_VPORT_LINK_DISCONNECT: u8 = 3;
/// SOC_SERVICE (134) type: RDMA suspend.
pub const GDMA_SERVICE_TYPE_RDMA_SUSPEND: u8 = 1;
/// SOC_SERVICE (134) type: RDMA resume.
pub const GDMA_SERVICE_TYPE_RDMA_RESUME: u8 = 2;
/// RESET_REQUEST (135) data bit 0: revoke the VTL0 VF (OpenHCL-specific).
pub const RESET_REQUEST_REVOKE_VTL0_VF: u32 = 1;

bitfield! {
    /// The EQE info dword (byte offset 12, §5.1).
    pub struct EqeInfo(u32);
    /// Event type (`GDMA_EQE_*`).
    field event_type, with_event_type: u8 [0, 8];
    /// Client id (LNX; reserved in OVMM).
    field client_id, with_client_id: u8 [16, 2];
    /// 3-bit owner count (§1.4).
    field owner_bits, with_owner_bits: u8 [GDMA_OWNER_SHIFT, 3];
}

impl EqeInfo {
    /// Info dword of an event of `event_type` with owner count `owner`.
    #[inline]
    pub const fn new(event_type: u8, owner: u8) -> Self {
        Self::ZERO.with_event_type(event_type).with_owner_bits(owner)
    }

    /// The last byte of the EQE (carries the owner bits; the device writes it last).
    #[inline]
    pub const fn last_byte(self) -> u8 {
        (self.0 >> 24) as u8
    }
}

/// A 16-byte EQE (§5.1).
#[repr(C)]
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct Eqe {
    /// Event data.
    pub details: [u32; 3],
    /// Info dword.
    pub info: EqeInfo,
}

const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(size_of::<Eqe>() == GDMA_EQE_SIZE as usize);
    assert!(offset_of!(Eqe, details) == 0);
    assert!(offset_of!(Eqe, info) == EQE_INFO_OFFSET);
};

impl Eqe {
    /// The 4 dwords as stored in ring memory.
    #[inline]
    pub const fn to_dwords(&self) -> [u32; 4] {
        [self.details[0], self.details[1], self.details[2], self.info.0]
    }

    /// Builds an EQE from its 4 dwords.
    #[inline]
    pub const fn from_dwords(d: &[u32; 4]) -> Self {
        Self { details: [d[0], d[1], d[2]], info: EqeInfo(d[3]) }
    }

    /// The 16 bytes as stored in ring memory.
    pub fn to_bytes(&self) -> [u8; 16] {
        let mut out = [0u8; 16];
        out.copy_from_slice(self.as_bytes());
        out
    }

    /// Decodes an EQE from the first 16 bytes of `bytes`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        read_prefix(bytes)
    }

    /// Decodes the event carried by this EQE.
    #[inline]
    pub const fn event(&self) -> Event {
        Event::decode(self.info.event_type(), self.details)
    }
}

bitfield! {
    /// Data of GDMA_EQE_HWC_INIT_EQ_ID_DB (129).
    pub struct HwcInitEqIdDb(u32);
    /// HWC EQ id.
    field eq_id, with_eq_id: u16 [0, 16];
    /// Doorbell page id.
    field doorbell, with_doorbell: u16 [16, 16];
}

bitfield! {
    /// Data of GDMA_EQE_HWC_INIT_DATA (130) and GDMA_EQE_HWC_SOC_RECONFIG_DATA (133).
    pub struct HwcInitTypeData(u32);
    /// Value (24 bits).
    field value, with_value: u32 [0, 24];
    /// Type (`HWC_INIT_DATA_*` or `HWC_DATA_*`).
    field ty, with_ty: u8 [24, 8];
}

bitfield! {
    /// Data of GDMA_EQE_HWC_SOC_SERVICE (134).
    pub struct SocServiceData(u32);
    /// Value (28 bits).
    field value, with_value: u32 [0, 28];
    /// Type (`GDMA_SERVICE_TYPE_*`).
    field ty, with_ty: u8 [28, 4];
}

/// A decoded event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Event {
    /// 3: CQ `cq_id` has new CQEs.
    Completion {
        /// CQ id (24 bits).
        cq_id: u32,
    },
    /// 64: test event.
    Test,
    /// 129: HWC EQ id and doorbell page.
    HwcInitEqIdDb {
        /// HWC EQ id.
        eq_id: u16,
        /// Doorbell page id.
        doorbell: u16,
    },
    /// 130: one INIT_DATA item.
    HwcInitData {
        /// `HWC_INIT_DATA_*` type.
        ty: u8,
        /// Value (24 bits).
        value: u32,
    },
    /// 131: HWC initialisation done.
    HwcInitDone,
    /// 132: FPGA reconfiguration.
    HwcFpgaReconfig,
    /// 133: reconfiguration data.
    HwcReconfigData {
        /// `HWC_DATA_*` type.
        ty: u8,
        /// Value (24 bits).
        value: u32,
    },
    /// 134: SoC service.
    HwcSocService {
        /// `GDMA_SERVICE_TYPE_*` type.
        ty: u8,
        /// Value (28 bits).
        value: u32,
    },
    /// 135: reset request; `data` is dword 0 (bit 0 = revoke VTL0 VF, OVMM).
    HwcResetRequest {
        /// Data dword 0.
        data: u32,
    },
    /// 176: RDMA QP fatal.
    RnicQpFatal {
        /// RQ/QP id (24 bits).
        qp_id: u32,
    },
    /// Any other event type.
    Unknown {
        /// Event type.
        ty: u8,
        /// Raw event data.
        details: [u32; 3],
    },
}

impl Event {
    /// Decodes an event from its type and data dwords.
    pub const fn decode(ty: u8, details: [u32; 3]) -> Self {
        let d0 = details[0];
        match ty {
            GDMA_EQE_COMPLETION => Self::Completion { cq_id: d0 & 0x00FF_FFFF },
            GDMA_EQE_TEST_EVENT => Self::Test,
            GDMA_EQE_HWC_INIT_EQ_ID_DB => {
                let v = HwcInitEqIdDb(d0);
                Self::HwcInitEqIdDb { eq_id: v.eq_id(), doorbell: v.doorbell() }
            }
            GDMA_EQE_HWC_INIT_DATA => {
                let v = HwcInitTypeData(d0);
                Self::HwcInitData { ty: v.ty(), value: v.value() }
            }
            GDMA_EQE_HWC_INIT_DONE => Self::HwcInitDone,
            GDMA_EQE_HWC_FPGA_RECONFIG => Self::HwcFpgaReconfig,
            GDMA_EQE_HWC_SOC_RECONFIG_DATA => {
                let v = HwcInitTypeData(d0);
                Self::HwcReconfigData { ty: v.ty(), value: v.value() }
            }
            GDMA_EQE_HWC_SOC_SERVICE => {
                let v = SocServiceData(d0);
                Self::HwcSocService { ty: v.ty(), value: v.value() }
            }
            GDMA_EQE_HWC_RESET_REQUEST => Self::HwcResetRequest { data: d0 },
            GDMA_EQE_RNIC_QP_FATAL => Self::RnicQpFatal { qp_id: d0 & 0x00FF_FFFF },
            _ => Self::Unknown { ty, details },
        }
    }

    /// The event type code.
    pub const fn event_type(&self) -> u8 {
        match self {
            Self::Completion { .. } => GDMA_EQE_COMPLETION,
            Self::Test => GDMA_EQE_TEST_EVENT,
            Self::HwcInitEqIdDb { .. } => GDMA_EQE_HWC_INIT_EQ_ID_DB,
            Self::HwcInitData { .. } => GDMA_EQE_HWC_INIT_DATA,
            Self::HwcInitDone => GDMA_EQE_HWC_INIT_DONE,
            Self::HwcFpgaReconfig => GDMA_EQE_HWC_FPGA_RECONFIG,
            Self::HwcReconfigData { .. } => GDMA_EQE_HWC_SOC_RECONFIG_DATA,
            Self::HwcSocService { .. } => GDMA_EQE_HWC_SOC_SERVICE,
            Self::HwcResetRequest { .. } => GDMA_EQE_HWC_RESET_REQUEST,
            Self::RnicQpFatal { .. } => GDMA_EQE_RNIC_QP_FATAL,
            Self::Unknown { ty, .. } => *ty,
        }
    }

    /// The event data dwords (values masked to their field widths).
    pub const fn details(&self) -> [u32; 3] {
        let d0 = match *self {
            Self::Completion { cq_id } => cq_id & 0x00FF_FFFF,
            Self::Test | Self::HwcInitDone | Self::HwcFpgaReconfig => 0,
            Self::HwcInitEqIdDb { eq_id, doorbell } => {
                HwcInitEqIdDb::ZERO.with_eq_id(eq_id).with_doorbell(doorbell).0
            }
            Self::HwcInitData { ty, value } | Self::HwcReconfigData { ty, value } => {
                HwcInitTypeData::ZERO.with_ty(ty).with_value(value).0
            }
            Self::HwcSocService { ty, value } => {
                SocServiceData::ZERO.with_ty(ty).with_value(value).0
            }
            Self::HwcResetRequest { data } => data,
            Self::RnicQpFatal { qp_id } => qp_id & 0x00FF_FFFF,
            Self::Unknown { details, .. } => return details,
        };
        [d0, 0, 0]
    }

    /// Device side: the EQE carrying this event with owner count `owner`.
    pub const fn to_eqe(&self, owner: u8) -> Eqe {
        Eqe { details: self.details(), info: EqeInfo::new(self.event_type(), owner) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::{OwnerRing, OwnerState};

    #[test]
    fn eqe_129_init_eq_id_db_decoded() {
        // HWC EQ id 3, doorbell page 5, first lap of a 256-entry (4 KiB) EQ: owner 1.
        let eqe = Eqe::from_dwords(&[0x0005_0003, 0, 0, 0x2000_0081]);
        assert_eq!(eqe.info.event_type(), GDMA_EQE_HWC_INIT_EQ_ID_DB);
        assert_eq!(eqe.info.owner_bits(), 1);
        assert_eq!(eqe.event(), Event::HwcInitEqIdDb { eq_id: 3, doorbell: 5 });
        let ring = OwnerRing::for_eq_bytes(4096).unwrap();
        assert_eq!(ring.classify(ring.initial_index(), eqe.info.owner_bits()), OwnerState::Valid);
        // Device side encodes the same dwords.
        let posted =
            Event::HwcInitEqIdDb { eq_id: 3, doorbell: 5 }.to_eqe(ring.owner_for_tail(256));
        assert_eq!(posted, eqe);
        assert_eq!(
            posted.to_bytes(),
            [0x03, 0x00, 0x05, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0x81, 0x00, 0x00, 0x20]
        );
        assert_eq!(Eqe::from_bytes(&posted.to_bytes()), Ok(eqe));
        assert_eq!(Eqe::from_bytes(&[0; 15]), Err(DecodeError::Truncated { needed: 16, got: 15 }));
    }

    #[test]
    fn init_data_and_done_events() {
        // INIT_DATA: GPA mkey (type 9) = 0x123456 -> data 0x0912_3456.
        let e = Event::HwcInitData { ty: HWC_INIT_DATA_GPA_MKEY, value: 0x12_3456 };
        assert_eq!(e.details(), [0x0912_3456, 0, 0]);
        assert_eq!(e.to_eqe(2).to_dwords(), [0x0912_3456, 0, 0, 0x4000_0082]);
        assert_eq!(
            Eqe::from_dwords(&[0x0400_0001, 0, 0, 0x2000_0082]).event(),
            Event::HwcInitData { ty: HWC_INIT_DATA_QUEUE_DEPTH, value: 1 }
        );
        assert_eq!(Eqe::from_dwords(&[0, 0, 0, 0x2000_0083]).event(), Event::HwcInitDone);
        assert_eq!(Event::HwcInitDone.to_eqe(1).info.0, 0x2000_0083);
    }

    #[test]
    fn completion_test_and_reset_events() {
        assert_eq!(
            Event::Completion { cq_id: 0x12 }.to_eqe(1).to_dwords(),
            [0x12, 0, 0, 0x2000_0003]
        );
        assert_eq!(
            Eqe::from_dwords(&[0xFF00_0012, 0, 0, 0x3]).event(),
            Event::Completion { cq_id: 0x12 }
        );
        assert_eq!(Event::Test.to_eqe(0).to_dwords(), [0, 0, 0, 0x40]);
        // Reset request with OVMM's revoke bit, owner 7.
        let r = Event::HwcResetRequest { data: RESET_REQUEST_REVOKE_VTL0_VF }.to_eqe(7);
        assert_eq!(r.to_dwords(), [1, 0, 0, 0xE000_0087]);
        assert_eq!(r.event(), Event::HwcResetRequest { data: 1 });
        assert_eq!(r.info.last_byte(), 0xE0);
    }

    #[test]
    fn reconfig_service_and_unknown_events() {
        // HWC timeout reconfiguration to 5000 ms.
        let e = Eqe::from_dwords(&[0x0100_1388, 0, 0, 0x85]).event();
        assert_eq!(e, Event::HwcReconfigData { ty: HWC_DATA_CONFIG_HWC_TIMEOUT, value: 5000 });
        // SoC service: RDMA resume, value 0.
        assert_eq!(
            Eqe::from_dwords(&[0x2000_0000, 0, 0, 0x86]).event(),
            Event::HwcSocService { ty: GDMA_SERVICE_TYPE_RDMA_RESUME, value: 0 }
        );
        assert_eq!(Event::HwcFpgaReconfig.event_type(), 132);
        assert_eq!(Eqe::from_dwords(&[7, 0, 0, 176]).event(), Event::RnicQpFatal { qp_id: 7 });
        let u = Eqe::from_dwords(&[1, 2, 3, 0x2000_0063]).event();
        assert_eq!(u, Event::Unknown { ty: 99, details: [1, 2, 3] });
        assert_eq!(u.to_eqe(1).to_dwords(), [1, 2, 3, 0x2000_0063]);
        assert_eq!(EqeInfo::ZERO.with_client_id(3).0, 0x0003_0000);
    }
}
