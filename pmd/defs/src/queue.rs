//! Queue kinds, ring size rules, WQ producer/consumer arithmetic and CQ/EQ owner bits.
//!
//! Spec: §1.1 (queue kinds and `gdma_queue_type` codes), §1.2 (size rules), §1.3 (WQ head/tail
//! in 32-byte basic units, device-side doorbell acceptance), §1.4 (3-bit owner count of CQEs
//! and EQEs, consumer index `head mod (N*8)` for the doorbell), §10.2 pitfall 2 (CQ arm check).
//!
//! All indices are free-running `u32` counters that wrap at 2^32. CQ/EQ indices start at the
//! entry count N ([`OwnerRing::initial_index`]); because N is a power of two ≤ 2^26, 2^32 is a
//! multiple of 8N and the owner/lap arithmetic stays consistent across the wrap.

/// A test start position of a work queue of `ring_bytes` bytes near the 2^32 wrap: four laps
/// before it (real queues start at 0; the software device and the driver both start here when
/// told to, a test hook to prove the wrap).
pub const fn near_wrap_wq_start(ring_bytes: u32) -> u32 {
    0u32.wrapping_sub(ring_bytes.wrapping_mul(4))
}

/// `gdma_queue_type` code of a send work queue.
pub const GDMA_SQ: u32 = 1;
/// `gdma_queue_type` code of a receive work queue.
pub const GDMA_RQ: u32 = 2;
/// `gdma_queue_type` code of a completion queue.
pub const GDMA_CQ: u32 = 3;
/// `gdma_queue_type` code of an event queue.
pub const GDMA_EQ: u32 = 4;
/// `gdma_queue_type` code of the DIM pseudo-queue (LNX only, doorbell-only).
pub const GDMA_DIM: u32 = 5;

/// Queue kind (§1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum GdmaQueueType {
    /// Send work queue.
    Sq = GDMA_SQ,
    /// Receive work queue.
    Rq = GDMA_RQ,
    /// Completion queue.
    Cq = GDMA_CQ,
    /// Event queue.
    Eq = GDMA_EQ,
}

impl GdmaQueueType {
    /// Decodes a `gdma_queue_type` code.
    pub const fn from_u32(v: u32) -> Option<Self> {
        match v {
            GDMA_SQ => Some(Self::Sq),
            GDMA_RQ => Some(Self::Rq),
            GDMA_CQ => Some(Self::Cq),
            GDMA_EQ => Some(Self::Eq),
            _ => None,
        }
    }

    /// The wire code.
    pub const fn code(self) -> u32 {
        self as u32
    }
}

/// The DMA unit and minimum queue size (`MANA_PAGE_SIZE`).
pub const MANA_PAGE_SIZE: u32 = 4096;
/// Minimum ring size in bytes (`MANA_MIN_QSIZE`).
pub const MANA_MIN_QSIZE: u32 = 4096;
/// Maximum ring size accepted here (the largest power of two that fits a `u32`).
pub const MANA_MAX_QSIZE: u32 = 1 << 31;
/// WQ basic unit (BU) size in bytes (`GDMA_WQE_BU_SIZE`).
pub const GDMA_WQE_BU_SIZE: u32 = 32;
/// CQE size in bytes (`GDMA_CQE_SIZE`).
pub const GDMA_CQE_SIZE: u32 = 64;
/// EQE size in bytes (`GDMA_EQE_SIZE`).
pub const GDMA_EQE_SIZE: u32 = 16;
/// Number of owner bits in a CQE/EQE.
pub const GDMA_OWNER_BITS: u32 = 3;
/// Mask of the owner count (`GDMA_CQE_OWNER_MASK`, `GDMA_EQE_OWNER_MASK`).
pub const GDMA_OWNER_MASK: u32 = (1 << GDMA_OWNER_BITS) - 1;
/// Bit position of the owner count in the last dword of a CQE/EQE.
pub const GDMA_OWNER_SHIFT: u32 = 29;
/// Free bytes LNX/OVMM require in an SQ before posting a WQE.
pub const SQ_MIN_FREE_BYTES: u32 = 512;
/// Free bytes OVMM requires in an RQ before posting a WQE.
pub const RQ_MIN_FREE_BYTES: u32 = 256;

/// Why a ring size is not acceptable (§1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueSizeError {
    /// Smaller than 4096 bytes.
    TooSmall(u32),
    /// Not a power of two.
    NotPowerOfTwo(u32),
    /// Entry count not a power of two, or too large for the owner arithmetic.
    BadEntryCount(u32),
}

/// Checks a ring size in bytes: power of two, ≥ 4096 (§1.2).
pub const fn validate_queue_size(bytes: u32) -> Result<(), QueueSizeError> {
    if bytes < MANA_MIN_QSIZE {
        Err(QueueSizeError::TooSmall(bytes))
    } else if !bytes.is_power_of_two() {
        Err(QueueSizeError::NotPowerOfTwo(bytes))
    } else {
        Ok(())
    }
}

/// Number of entries of a CQ ring of `bytes` bytes, if the size is valid.
pub const fn cq_entries(bytes: u32) -> Result<u32, QueueSizeError> {
    match validate_queue_size(bytes) {
        Ok(()) => Ok(bytes / GDMA_CQE_SIZE),
        Err(e) => Err(e),
    }
}

/// Number of entries of an EQ ring of `bytes` bytes, if the size is valid.
pub const fn eq_entries(bytes: u32) -> Result<u32, QueueSizeError> {
    match validate_queue_size(bytes) {
        Ok(()) => Ok(bytes / GDMA_EQE_SIZE),
        Err(e) => Err(e),
    }
}

/// Result of checking a CQE/EQE owner count against the consumer index (§1.4 step 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerState {
    /// Owner equals the previous lap's value: no new entry.
    Empty,
    /// Owner equals the current lap's value: a new entry (read it after an acquire).
    Valid,
    /// Any other value: the device has lapped the consumer.
    Overflow,
}

/// Owner-bit arithmetic of a CQ or EQ with N entries (N a power of two, 1 ≤ N ≤ 2^26).
///
/// Everything is derived from a free-running `u32` index: the driver's `head` (consumed
/// entries) or the device's `tail` (posted entries); both start at [`Self::initial_index`] = N.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OwnerRing {
    shift: u32,
}

impl OwnerRing {
    /// Largest entry count supported (a 4 GiB ring of 64-byte CQEs).
    pub const MAX_ENTRIES: u32 = 1 << 26;

    /// A ring of `entries` entries; `None` unless a power of two in `1..=2^26`.
    pub const fn new(entries: u32) -> Option<Self> {
        if entries.is_power_of_two() && entries <= Self::MAX_ENTRIES {
            Some(Self { shift: entries.trailing_zeros() })
        } else {
            None
        }
    }

    /// A CQ ring of `bytes` bytes (64-byte entries).
    pub const fn for_cq_bytes(bytes: u32) -> Option<Self> {
        match cq_entries(bytes) {
            Ok(n) => Self::new(n),
            Err(_) => None,
        }
    }

    /// An EQ ring of `bytes` bytes (16-byte entries).
    pub const fn for_eq_bytes(bytes: u32) -> Option<Self> {
        match eq_entries(bytes) {
            Ok(n) => Self::new(n),
            Err(_) => None,
        }
    }

    /// Entry count N.
    #[inline]
    pub const fn entries(self) -> u32 {
        1 << self.shift
    }

    /// Initial value of the driver's `head` and the device's `tail`: N.
    #[inline]
    pub const fn initial_index(self) -> u32 {
        self.entries()
    }

    /// A test position near the 2^32 wrap with the lap count of [`Self::initial_index`]:
    /// `N - 8N` (mod 2^32), so the free-running index crosses 2^32 after 7 laps. Real queues
    /// start at `initial_index`; the software device and the driver both start here when told to
    /// (a test hook), to prove the wrap.
    #[inline]
    pub const fn near_wrap_index(self) -> u32 {
        self.initial_index().wrapping_sub(self.entries() << 3)
    }

    /// Slot of `index`: `index mod N`.
    #[inline]
    pub const fn slot(self, index: u32) -> u32 {
        index & (self.entries() - 1)
    }

    /// Owner count a new entry at `index` carries: `(index / N) & 7`.
    #[inline]
    pub const fn expected_owner(self, index: u32) -> u8 {
        ((index >> self.shift) & GDMA_OWNER_MASK) as u8
    }

    /// Owner count of an entry left over from the previous lap: `(index / N - 1) & 7`.
    #[inline]
    pub const fn old_owner(self, index: u32) -> u8 {
        ((index >> self.shift).wrapping_sub(1) & GDMA_OWNER_MASK) as u8
    }

    /// Classifies the owner count read from slot `slot(head)` (§1.4 step 3).
    #[inline]
    pub const fn classify(self, head: u32, owner: u8) -> OwnerState {
        if owner == self.old_owner(head) {
            OwnerState::Empty
        } else if owner == self.expected_owner(head) {
            OwnerState::Valid
        } else {
            OwnerState::Overflow
        }
    }

    /// Device side: owner count to write for the entry posted at free-running `tail`.
    #[inline]
    pub const fn owner_for_tail(self, tail: u32) -> u8 {
        self.expected_owner(tail)
    }

    /// Consumer index for the CQ/EQ doorbell: `head mod (N * 8)`.
    #[inline]
    pub const fn doorbell_index(self, head: u32) -> u32 {
        head & ((8u32 << self.shift) - 1)
    }

    /// Device side (§10.2 pitfall 2): how many entries the device has posted beyond the
    /// consumer index `db_index` carried by a doorbell, `(tail - db_index) mod 8N`.
    #[inline]
    pub const fn posted_beyond(self, tail: u32, db_index: u32) -> u32 {
        tail.wrapping_sub(db_index) & ((8u32 << self.shift) - 1)
    }

    /// Device side: what an arm request with consumer index `db_index` means when the
    /// device's free-running tail is `tail` (OVMM-emu semantics, §10.2 pitfall 2).
    pub const fn arm_outcome(self, tail: u32, db_index: u32) -> ArmOutcome {
        let d = self.posted_beyond(tail, db_index);
        if d == 0 {
            ArmOutcome::Armed
        } else if d <= self.entries() {
            ArmOutcome::FireNow
        } else {
            ArmOutcome::Rejected
        }
    }
}

/// Device-side interpretation of an armed CQ/EQ doorbell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArmOutcome {
    /// The consumer has seen every entry: arm and wait for the next one.
    Armed,
    /// Unconsumed entries exist: signal immediately.
    FireNow,
    /// The index runs ahead of the device (or is more than a lap behind): reject the doorbell.
    Rejected,
}

/// A SQ/RQ ring of `size` bytes, tracked in 32-byte basic units (§1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WqRing {
    size: u32,
}

impl WqRing {
    /// A work-queue ring of `bytes` bytes (power of two, ≥ 4096).
    pub const fn new(bytes: u32) -> Result<Self, QueueSizeError> {
        match validate_queue_size(bytes) {
            Ok(()) => Ok(Self { size: bytes }),
            Err(e) => Err(e),
        }
    }

    /// Size in bytes.
    #[inline]
    pub const fn size_bytes(self) -> u32 {
        self.size
    }

    /// Size in basic units.
    #[inline]
    pub const fn size_bu(self) -> u32 {
        self.size / GDMA_WQE_BU_SIZE
    }

    /// Byte offset in the ring of the WQE at free-running BU index `head_bu`.
    #[inline]
    pub const fn byte_offset(self, head_bu: u32) -> u32 {
        head_bu.wrapping_mul(GDMA_WQE_BU_SIZE) & (self.size - 1)
    }

    /// Free space in BUs given the driver's producer `head_bu` and consumer `tail_bu`.
    /// Saturates at 0 if the counters are inconsistent.
    #[inline]
    pub const fn free_bu(self, head_bu: u32, tail_bu: u32) -> u32 {
        self.size_bu().saturating_sub(head_bu.wrapping_sub(tail_bu))
    }

    /// Whether a WQE of `wqe_bu` BUs can be posted.
    #[inline]
    pub const fn can_post(self, head_bu: u32, tail_bu: u32, wqe_bu: u32) -> bool {
        self.free_bu(head_bu, tail_bu) >= wqe_bu
    }

    /// Device side (§1.3): accept a WQ doorbell `db_tail` when the device consumer is at byte
    /// `dev_head` and the last accepted doorbell was `last_tail`. Returns the number of bytes
    /// now available to the device, or `None` if the doorbell must be ignored.
    pub const fn accept_doorbell(self, dev_head: u32, last_tail: u32, db_tail: u32) -> Option<u32> {
        let new_backlog = db_tail.wrapping_sub(dev_head);
        let cur_backlog = last_tail.wrapping_sub(dev_head);
        if new_backlog > cur_backlog && new_backlog <= self.size && dev_head % GDMA_WQE_BU_SIZE == 0
        {
            Some(new_backlog)
        } else {
            None
        }
    }
}

/// WQ doorbell value (producer byte offset) for a free-running BU index: `head_bu * 32`.
#[inline]
pub const fn wq_doorbell_tail(head_bu: u32) -> u32 {
    head_bu.wrapping_mul(GDMA_WQE_BU_SIZE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_size_rules() {
        assert_eq!(validate_queue_size(4096), Ok(()));
        assert_eq!(validate_queue_size(1 << 31), Ok(()));
        assert_eq!(validate_queue_size(2048), Err(QueueSizeError::TooSmall(2048)));
        assert_eq!(validate_queue_size(12288), Err(QueueSizeError::NotPowerOfTwo(12288)));
        assert_eq!(cq_entries(4096), Ok(64));
        assert_eq!(eq_entries(32768), Ok(2048));
        assert_eq!(GdmaQueueType::from_u32(4), Some(GdmaQueueType::Eq));
        assert_eq!(GdmaQueueType::from_u32(5), None);
        assert_eq!(GdmaQueueType::Rq.code(), 2);
    }

    #[test]
    fn owner_ring_construction() {
        assert!(OwnerRing::new(0).is_none());
        assert!(OwnerRing::new(48).is_none());
        assert!(OwnerRing::new(1 << 27).is_none());
        assert_eq!(OwnerRing::new(64).unwrap().entries(), 64);
        assert_eq!(OwnerRing::for_cq_bytes(4096), OwnerRing::new(64));
        assert_eq!(OwnerRing::for_eq_bytes(4096), OwnerRing::new(256));
        assert_eq!(OwnerRing::for_cq_bytes(1000), None);
    }

    #[test]
    fn owner_bits_first_laps() {
        let r = OwnerRing::new(64).unwrap();
        let head = r.initial_index();
        assert_eq!(head, 64);
        assert_eq!((r.slot(head), r.expected_owner(head), r.old_owner(head)), (0, 1, 0));
        // Zeroed ring memory reads as empty on the first lap.
        assert_eq!(r.classify(head, 0), OwnerState::Empty);
        assert_eq!(r.classify(head, 1), OwnerState::Valid);
        assert_eq!(r.classify(head, 2), OwnerState::Overflow);
        // Last slot of lap 1, then lap 2.
        assert_eq!((r.slot(127), r.expected_owner(127), r.old_owner(127)), (63, 1, 0));
        assert_eq!((r.slot(128), r.expected_owner(128), r.old_owner(128)), (0, 2, 1));
        assert_eq!(r.classify(128, 1), OwnerState::Empty);
        // Lap 8 wraps the 3-bit count: new 0, old 7.
        assert_eq!((r.expected_owner(512), r.old_owner(512)), (0, 7));
        assert_eq!(r.classify(512, 7), OwnerState::Empty);
        assert_eq!(r.classify(512, 0), OwnerState::Valid);
        // Device writes owner (tail / N) & 7 for the entry at tail.
        assert_eq!(r.owner_for_tail(64 + 5), 1);
        assert_eq!(r.owner_for_tail(64 * 7 + 63), 7);
    }

    #[test]
    fn owner_bits_across_u32_wrap() {
        let r = OwnerRing::new(64).unwrap();
        let h = u32::MAX - 1; // 2^32 - 2: lap 2^26 - 1
        assert_eq!((r.slot(h), r.expected_owner(h), r.old_owner(h)), (62, 7, 6));
        assert_eq!((r.slot(u32::MAX), r.expected_owner(u32::MAX)), (63, 7));
        let h = u32::MAX.wrapping_add(1); // 0: the lap after lap 7 mod 8
        assert_eq!((r.slot(h), r.expected_owner(h), r.old_owner(h)), (0, 0, 7));
        assert_eq!(r.classify(0, 7), OwnerState::Empty);
        assert_eq!(r.classify(0, 0), OwnerState::Valid);
        assert_eq!(r.classify(0, 6), OwnerState::Overflow);
        // A producer and consumer that straddle the wrap agree slot by slot.
        let mut tail = u32::MAX - 3;
        let mut head = tail;
        for _ in 0..8 {
            let owner = r.owner_for_tail(tail);
            assert_eq!(r.classify(head, owner), OwnerState::Valid);
            assert_eq!(r.slot(head), r.slot(tail));
            tail = tail.wrapping_add(1);
            head = head.wrapping_add(1);
        }
        assert_eq!(head, 4);
        // The doorbell index is continuous mod 8N = 512 across the wrap.
        assert_eq!(r.doorbell_index(u32::MAX), 511);
        assert_eq!(r.doorbell_index(0), 0);
        assert_eq!(r.doorbell_index(64 + 69), 133);
        assert_eq!(r.doorbell_index(512 + 69), 69);
        // Largest ring: 8N = 2^29.
        let big = OwnerRing::new(1 << 26).unwrap();
        assert_eq!(big.doorbell_index(u32::MAX), (1 << 29) - 1);
        assert_eq!(big.expected_owner(u32::MAX), 7);
        assert_eq!(big.old_owner(0), 7);
    }

    #[test]
    fn device_arm_semantics() {
        let r = OwnerRing::new(64).unwrap();
        // Device posted up to tail 64 + 10; consumer index 74 (= 64 + 10 mod 512): caught up.
        assert_eq!(r.arm_outcome(74, 74), ArmOutcome::Armed);
        assert_eq!(r.arm_outcome(74, 70), ArmOutcome::FireNow);
        assert_eq!(r.arm_outcome(74, 10), ArmOutcome::FireNow); // exactly N behind
        // Consumer index ahead of the device (rdma-core PR #1796): rejected.
        assert_eq!(r.arm_outcome(74, 75), ArmOutcome::Rejected);
        // Across the u32 wrap: tail 2 (wrapped), consumer index (2^32 - 1) mod 512 = 511.
        assert_eq!(r.posted_beyond(2, 511), 3);
        assert_eq!(r.arm_outcome(2, 511), ArmOutcome::FireNow);
        assert_eq!(r.arm_outcome(0, r.doorbell_index(0)), ArmOutcome::Armed);
    }

    #[test]
    fn wq_ring_arithmetic() {
        let wq = WqRing::new(4096).unwrap();
        assert_eq!(wq.size_bu(), 128);
        assert_eq!(wq.byte_offset(0), 0);
        assert_eq!(wq.byte_offset(10), 320);
        assert_eq!(wq.byte_offset(130), 64);
        assert_eq!(wq.byte_offset(u32::MAX), 4096 - 32);
        assert_eq!(wq.free_bu(10, 0), 118);
        assert_eq!(wq.free_bu(3, u32::MAX - 4), 120); // head wrapped, 8 BUs in flight
        assert!(wq.can_post(10, 0, 16));
        assert!(!wq.can_post(128, 0, 1));
        assert_eq!(wq.free_bu(200, 0), 0);
        assert_eq!(wq_doorbell_tail(10), 0x140);
        assert_eq!(wq_doorbell_tail(0x0800_0001), 0x20);
        assert_eq!(WqRing::new(100), Err(QueueSizeError::TooSmall(100)));
    }

    #[test]
    fn wq_device_doorbell_acceptance() {
        let wq = WqRing::new(4096).unwrap();
        assert_eq!(wq.accept_doorbell(0, 0, 64), Some(64));
        assert_eq!(wq.accept_doorbell(0, 64, 64), None); // no progress
        assert_eq!(wq.accept_doorbell(0, 64, 32), None); // backwards
        assert_eq!(wq.accept_doorbell(0, 0, 4096), Some(4096));
        assert_eq!(wq.accept_doorbell(0, 0, 4128), None); // more than the ring
        assert_eq!(wq.accept_doorbell(u32::MAX - 31, u32::MAX - 31, 32), Some(64)); // across 2^32
        assert_eq!(wq.accept_doorbell(16, 16, 48), None); // misaligned device head
    }
}
