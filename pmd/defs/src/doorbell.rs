//! Doorbell register offsets and the 64-bit (and 32-bit "short") doorbell values.
//!
//! Spec: §2.2 (64-bit doorbells and their offsets in a doorbell page), §2.3 (32-bit short
//! doorbells), §2.4 (when each doorbell is written). The RQ `wqe_cnt` field is always written
//! as 0, per the spec's recommendation (marked DISAGREE in §2.2).

use crate::bits::bitfield;

/// Offset of the SQ doorbell in a doorbell page.
pub const DB_SQ: u32 = 0x000;
/// Offset of the RQ doorbell in a doorbell page.
pub const DB_RQ: u32 = 0x400;
/// Offset of the RQ "client data" doorbell (RDMA RC only; ignored by the Ethernet device).
pub const DB_RQ_CLIENT_DATA: u32 = 0x408;
/// Offset of the CQ doorbell in a doorbell page.
pub const DB_CQ: u32 = 0x800;
/// Offset of the DIM (interrupt moderation) doorbell (newest LNX only).
pub const DB_DIM: u32 = 0x820;
/// Offset of the EQ doorbell in a doorbell page.
pub const DB_EQ: u32 = 0xFF8;

/// Offset of the 32-bit short SQ doorbell (§2.3).
pub const DB_SQ_SHORT: u32 = 0x010;
/// Offset of the 32-bit short RQ doorbell.
pub const DB_RQ_SHORT: u32 = 0x410;
/// Offset of the 32-bit short CQ doorbell.
pub const DB_CQ_SHORT: u32 = 0x810;
/// Offset of the 32-bit short EQ doorbell.
pub const DB_EQ_SHORT: u32 = 0xFF0;

/// Size of one doorbell page as used by this project (and OVMM): 4 KiB.
pub const DB_PAGE_SIZE: u32 = 4096;
/// Largest queue id a doorbell can carry (24 bits).
pub const DB_MAX_QUEUE_ID: u32 = 0x00FF_FFFF;
/// Largest EQ id (LNX writes only 16 id bits in the EQ doorbell).
pub const DB_MAX_EQ_ID: u32 = 0xFFFF;
/// Width of the CQ/EQ doorbell consumer index (31 bits).
pub const DB_CQ_EQ_INDEX_MASK: u32 = 0x7FFF_FFFF;

bitfield! {
    /// 64-bit SQ/RQ doorbell value (§2.2): id, RQ `wqe_cnt`, producer byte offset.
    pub struct WqDoorbell(u64);
    /// Queue id (24 bits).
    field id, with_id: u32 [0, 24];
    /// RQ WQE count (`num_rwqe`); always written as 0.
    field wqe_cnt, with_wqe_cnt: u8 [24, 8];
    /// Producer position: `head_bu * 32`, unmasked, wrapping at 2^32.
    field tail, with_tail: u32 [32, 32];
}

impl WqDoorbell {
    /// SQ doorbell for queue `id` with producer byte offset `tail` (= `head_bu * 32`).
    #[inline]
    pub const fn sq(id: u32, tail: u32) -> Self {
        Self::ZERO.with_id(id).with_tail(tail)
    }

    /// RQ doorbell for queue `id` with producer byte offset `tail`; `wqe_cnt` = 0.
    #[inline]
    pub const fn rq(id: u32, tail: u32) -> Self {
        Self::ZERO.with_id(id).with_tail(tail)
    }
}

bitfield! {
    /// 64-bit CQ/EQ doorbell value (§2.2): id, consumer index `head mod (N*8)`, arm.
    pub struct CqEqDoorbell(u64);
    /// Queue id (24 bits for CQ; EQ ids are ≤ 0xFFFF, see [`DB_MAX_EQ_ID`]).
    field id, with_id: u32 [0, 24];
    /// Consumer index in entries, including the 3 generation bits (31 bits).
    field tail, with_tail: u32 [32, 31];
    /// Arm: request an event (CQ) or interrupt (EQ) for the next entry.
    flag arm, with_arm [63];
}

impl CqEqDoorbell {
    /// CQ doorbell for queue `id`, consumer index `index` (= `head mod (N*8)`), `arm`.
    #[inline]
    pub const fn cq(id: u32, index: u32, arm: bool) -> Self {
        Self::ZERO.with_id(id).with_tail(index).with_arm(arm)
    }

    /// EQ doorbell for queue `id` (≤ 0xFFFF), consumer index `index`, `arm`.
    #[inline]
    pub const fn eq(id: u32, index: u32, arm: bool) -> Self {
        Self::ZERO.with_id(id).with_tail(index).with_arm(arm)
    }
}

bitfield! {
    /// 64-bit DIM (CQ interrupt moderation) doorbell value (§2.2, newest LNX only).
    pub struct DimDoorbell(u64);
    /// CQ id.
    field cq_id, with_cq_id: u32 [0, 24];
    /// Moderation time in microseconds.
    field mod_usec, with_mod_usec: u16 [32, 10];
    /// `mod_usec` is valid.
    flag mod_usec_valid, with_mod_usec_valid [47];
    /// Moderation completion count.
    field mod_comps, with_mod_comps: u8 [48, 8];
    /// `mod_comps` is valid.
    flag mod_comps_valid, with_mod_comps_valid [63];
}

bitfield! {
    /// 32-bit short doorbell value (§2.3): an *increment* (bytes for SQ/RQ, entries for CQ/EQ).
    pub struct ShortDoorbell(u32);
    /// Producer/consumer increment since the last doorbell.
    field tail_ptr_incr, with_tail_ptr_incr: u16 [0, 16];
    /// Queue id (12 bits: ids must be ≤ 0xFFF).
    field id, with_id: u16 [16, 12];
    /// Arm (CQ/EQ).
    flag arm, with_arm [31];
}

/// A decoded doorbell write, as seen by the device (offset within the page + 64-bit value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Doorbell {
    /// SQ producer update.
    Sq {
        /// Queue id.
        id: u32,
        /// Producer byte offset (unmasked).
        tail: u32,
    },
    /// RQ producer update.
    Rq {
        /// Queue id.
        id: u32,
        /// Producer byte offset (unmasked).
        tail: u32,
        /// The `wqe_cnt` byte (should be 0; the device ignores it).
        wqe_cnt: u8,
    },
    /// RQ client-data doorbell (RDMA only); raw value.
    RqClientData(u64),
    /// CQ consumer update / arm.
    Cq {
        /// Queue id.
        id: u32,
        /// Consumer index mod 8N.
        index: u32,
        /// Arm bit.
        arm: bool,
    },
    /// DIM doorbell.
    Dim(DimDoorbell),
    /// EQ consumer update / arm.
    Eq {
        /// Queue id.
        id: u32,
        /// Consumer index mod 8N.
        index: u32,
        /// Arm bit.
        arm: bool,
    },
}

impl Doorbell {
    /// Decodes a 64-bit write of `value` at `offset` within a doorbell page;
    /// `None` for an offset that is not a 64-bit doorbell register.
    pub const fn decode(offset: u32, value: u64) -> Option<Self> {
        Some(match offset {
            DB_SQ => {
                let v = WqDoorbell(value);
                Self::Sq { id: v.id(), tail: v.tail() }
            }
            DB_RQ => {
                let v = WqDoorbell(value);
                Self::Rq { id: v.id(), tail: v.tail(), wqe_cnt: v.wqe_cnt() }
            }
            DB_RQ_CLIENT_DATA => Self::RqClientData(value),
            DB_CQ => {
                let v = CqEqDoorbell(value);
                Self::Cq { id: v.id(), index: v.tail(), arm: v.arm() }
            }
            DB_DIM => Self::Dim(DimDoorbell(value)),
            DB_EQ => {
                let v = CqEqDoorbell(value);
                Self::Eq { id: v.id(), index: v.tail(), arm: v.arm() }
            }
            _ => return None,
        })
    }

    /// Encodes this doorbell as (offset within the page, 64-bit value).
    pub const fn encode(self) -> (u32, u64) {
        match self {
            Self::Sq { id, tail } => (DB_SQ, WqDoorbell::sq(id, tail).0),
            Self::Rq { id, tail, wqe_cnt } => {
                (DB_RQ, WqDoorbell::rq(id, tail).with_wqe_cnt(wqe_cnt).0)
            }
            Self::RqClientData(v) => (DB_RQ_CLIENT_DATA, v),
            Self::Cq { id, index, arm } => (DB_CQ, CqEqDoorbell::cq(id, index, arm).0),
            Self::Dim(v) => (DB_DIM, v.0),
            Self::Eq { id, index, arm } => (DB_EQ, CqEqDoorbell::eq(id, index, arm).0),
        }
    }
}

/// BAR0 offset of register `reg` in doorbell page `page`, given the register map's
/// doorbell zone offset and page size; `None` on overflow.
pub const fn doorbell_bar_offset(
    db_pages_offset: u64,
    db_page_size: u32,
    page: u32,
    reg: u32,
) -> Option<u64> {
    match (db_page_size as u64).checked_mul(page as u64) {
        Some(p) => match db_pages_offset.checked_add(p) {
            Some(base) => base.checked_add(reg as u64),
            None => None,
        },
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sq_doorbell_worked_example() {
        // Spec/issue: SQ doorbell for queue 0x12 at byte offset 0x140.
        let db = WqDoorbell::sq(0x12, 0x140);
        assert_eq!(db.0, 0x0000_0140_0000_0012);
        assert_eq!(db.id(), 0x12);
        assert_eq!(db.tail(), 0x140);
        assert_eq!(db.wqe_cnt(), 0);
    }

    #[test]
    fn cq_doorbell_worked_example() {
        // Spec/issue: CQ doorbell for queue 9, consumer index 69, armed.
        let db = CqEqDoorbell::cq(9, 69, true);
        assert_eq!(db.0, 0x8000_0045_0000_0009);
        assert_eq!((db.id(), db.tail(), db.arm()), (9, 69, true));
        assert_eq!(CqEqDoorbell::cq(9, 69, false).0, 0x0000_0045_0000_0009);
    }

    #[test]
    fn rq_doorbell_writes_zero_wqe_cnt() {
        // RQ 7 after posting three 1-BU receive WQEs: head_bu = 3, tail = 3 * 32 = 0x60.
        let db = WqDoorbell::rq(7, 3 * 32);
        assert_eq!(db.0, 0x0000_0060_0000_0007);
        // Producer offset wraps at 2^32 like the free-running head.
        let wrapped = WqDoorbell::sq(0xAB_CDEF, 0x7FFF_FFFFu32.wrapping_mul(32));
        assert_eq!(wrapped.0, 0xFFFF_FFE0_00AB_CDEF);
        // Field masking: an id wider than 24 bits does not leak into wqe_cnt.
        assert_eq!(WqDoorbell::rq(0x0100_0001, 0).0, 0x0000_0000_0000_0001);
    }

    #[test]
    fn eq_doorbell_example() {
        // EQ 2 of 2048 entries, head = 2048 + 5 -> index (head mod 16384) = 2053 = 0x805, armed.
        let db = CqEqDoorbell::eq(2, 2053, true);
        assert_eq!(db.0, 0x8000_0805_0000_0002);
        // Index is 31 bits: bit 31 of the index never reaches the arm bit.
        assert_eq!(CqEqDoorbell::eq(2, 0x8000_0000, false).0, 0x0000_0000_0000_0002);
    }

    #[test]
    fn device_decodes_doorbells() {
        assert_eq!(
            Doorbell::decode(DB_SQ, 0x0000_0140_0000_0012),
            Some(Doorbell::Sq { id: 0x12, tail: 0x140 })
        );
        assert_eq!(
            Doorbell::decode(DB_RQ, 0x0000_0060_0500_0007),
            Some(Doorbell::Rq { id: 7, tail: 0x60, wqe_cnt: 5 })
        );
        assert_eq!(
            Doorbell::decode(DB_CQ, 0x8000_0045_0000_0009),
            Some(Doorbell::Cq { id: 9, index: 69, arm: true })
        );
        assert_eq!(
            Doorbell::decode(DB_EQ, 0x0000_0805_0000_0002),
            Some(Doorbell::Eq { id: 2, index: 0x805, arm: false })
        );
        assert_eq!(Doorbell::decode(0x100, 0), None);
        assert_eq!(Doorbell::decode(DB_RQ_CLIENT_DATA, 7), Some(Doorbell::RqClientData(7)));
        let e = Doorbell::Cq { id: 9, index: 69, arm: true };
        assert_eq!(e.encode(), (DB_CQ, 0x8000_0045_0000_0009));
        assert_eq!(Doorbell::decode(e.encode().0, e.encode().1), Some(e));
    }

    #[test]
    fn dim_and_short_doorbells() {
        let d = DimDoorbell::ZERO.with_cq_id(9).with_mod_usec(100).with_mod_usec_valid(true);
        assert_eq!(d.0, 0x0000_8064_0000_0009);
        let d = d.with_mod_comps(4).with_mod_comps_valid(true);
        assert_eq!(d.0, 0x8004_8064_0000_0009);
        // Short CQ doorbell: +3 entries on CQ 0x12, armed.
        let s = ShortDoorbell::ZERO.with_tail_ptr_incr(3).with_id(0x12).with_arm(true);
        assert_eq!(s.0, 0x8012_0003);
        assert_eq!((s.tail_ptr_incr(), s.id(), s.arm()), (3, 0x12, true));
    }

    #[test]
    fn doorbell_addresses() {
        assert_eq!(doorbell_bar_offset(4096, 4096, 0, DB_EQ), Some(4096 + 0xFF8));
        assert_eq!(doorbell_bar_offset(0x10_0000, 4096, 2, DB_RQ), Some(0x10_2400));
        assert_eq!(doorbell_bar_offset(u64::MAX, 4096, 1, 0), None);
    }
}
