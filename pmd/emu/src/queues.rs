//! Device-side queues: completion and event queues the device produces into, and work queues
//! it consumes from (§1 of the spec).
//!
//! Indices are free-running `u32` counters as on the driver side: CQ/EQ `tail` (entries posted)
//! starts at the entry count N, WQ `head` (bytes consumed) and `tail` (last doorbell) at 0. Owner
//! bits and doorbell comparisons are derived from them with `gdma_defs::OwnerRing`/`WqRing`.
//!
//! Entries are written body first, then the last dword (owner bits in its top three bits) with a
//! Release store, which pairs with the driver's Acquire load of the owner byte before it reads the
//! rest of the entry.

use core::sync::atomic::Ordering;
use std::collections::VecDeque;

use gdma_defs::{
    ArmOutcome, CQE_DATA_DWORDS, CqeInfo, EqeInfo, GDMA_CQE_SIZE, GDMA_EQE_SIZE, GDMA_OWNER_MASK,
    OwnerRing, WqRing,
};

use crate::dma::RingMem;

/// How far ahead of the head (bytes) the data paths prefetch WQEs: four cache lines, eight
/// one-SGE WQEs, so a line the driver wrote on another core is on its way before it is read.
pub(crate) const WQE_PREFETCH_AHEAD: u32 = 256;

/// What happened to an entry the device tried to post.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Posted {
    /// Written; `signal` when the queue was armed (a COMPLETION EQE or interrupt is due).
    Done {
        /// The queue was armed and is now disarmed.
        signal: bool,
    },
    /// Not written: the consumer has not rung the doorbell for too many laps (§10.2 pitfall 1).
    /// EQEs in that state are lost.
    Stalled,
    /// A CQE not written yet for the same reason: the CQ holds it and writes it, in order, at
    /// the doorbell that makes room.
    Held,
}

/// Shared producer logic of CQs and EQs.
#[derive(Debug)]
struct Producer {
    mem: RingMem,
    ring: OwnerRing,
    entry: u32,
    /// Entries posted (free-running, starts at N).
    tail: u32,
    /// Consumer index from the last doorbell (`head mod 8N`).
    db_index: u32,
    armed: bool,
    /// Most laps the device may run ahead of the last doorbell (0: no limit).
    lap_limit: u32,
}

impl Producer {
    fn new(mem: RingMem, entry: u32, lap_limit: u32, armed: bool) -> Option<Self> {
        let ring = OwnerRing::new(mem.size() / entry)?;
        let n = ring.initial_index();
        Some(Producer {
            mem,
            ring,
            entry,
            tail: n,
            db_index: ring.doorbell_index(n),
            armed,
            lap_limit,
        })
    }

    fn stalled(&self) -> bool {
        self.lap_limit != 0
            && self.ring.posted_beyond(self.tail, self.db_index)
                >= self.lap_limit * self.ring.entries()
    }

    /// Writes `body` (all but the last dword) and then the last dword built by `last(owner)`.
    #[inline(always)]
    fn post(&mut self, body: &[u8], last: impl FnOnce(u8) -> u32) -> Posted {
        if self.stalled() {
            return Posted::Stalled;
        }
        self.write(body, last)
    }

    /// [`post`](Self::post) without the lap-limit check (the caller made it).
    #[inline(always)]
    fn write(&mut self, body: &[u8], last: impl FnOnce(u8) -> u32) -> Posted {
        let off = self.ring.slot(self.tail) * self.entry;
        self.mem.write(off, body);
        let owner = self.ring.owner_for_tail(self.tail);
        // Release: the body above is visible before the owner bits that validate it (pairs with
        // the driver's Acquire load of the owner byte).
        self.mem.store_u32(off + self.entry - 4, last(owner), Ordering::Release);
        self.tail = self.tail.wrapping_add(1);
        Posted::Done { signal: core::mem::take(&mut self.armed) }
    }

    /// A doorbell: the consumer index, and whether it asks to be armed. True when the queue must
    /// signal at once (entries beyond the index exist).
    /// An arming doorbell whose index runs ahead of the device is rejected whole, index included
    /// (§10.2 pitfall 2).
    fn doorbell(&mut self, index: u32, arm: bool) -> bool {
        if !arm {
            self.db_index = index;
            return false;
        }
        match self.ring.arm_outcome(self.tail, index) {
            ArmOutcome::Armed => {
                self.db_index = index;
                self.armed = true;
                false
            }
            ArmOutcome::FireNow => {
                self.db_index = index;
                true
            }
            ArmOutcome::Rejected => false,
        }
    }
}

/// A CQE that could not be written yet (the consumer is at the lap limit): written, in order,
/// once a doorbell makes room.
#[derive(Debug, Clone, Copy)]
struct HeldCqe {
    body: [u8; 60],
    wq: u32,
    is_sq: bool,
    owner_skew: u8,
}

/// Most CQEs a CQ holds back. Producers stop consuming WQEs while anything is held, so only a
/// few completions (a coalesced run, then an error) are ever in flight here; the cap is a guard.
const MAX_HELD_CQES: usize = 64;

/// A completion queue.
#[derive(Debug)]
pub struct Cq {
    /// Queue id.
    pub id: u32,
    /// EQ that gets a COMPLETION EQE when an armed CQ receives an entry.
    pub parent_eq: Option<u32>,
    p: Producer,
    /// CQEs held back because the consumer stopped ringing the doorbell (counted once each).
    pub stalls: u64,
    /// CQEs due but held for room, oldest first. Empty (and unallocated) in normal running.
    held: VecDeque<HeldCqe>,
    /// CQEs dropped because more than [`MAX_HELD_CQES`] were held (never in a correct device).
    pub held_overflow: u64,
}

impl Cq {
    /// A CQ over `mem` (its size a power of two of at least 64 CQEs... any power of two count).
    pub fn new(id: u32, mem: RingMem, parent_eq: Option<u32>, lap_limit: u32) -> Option<Self> {
        Some(Cq {
            id,
            parent_eq,
            p: Producer::new(mem, GDMA_CQE_SIZE, lap_limit, false)?,
            stalls: 0,
            held: VecDeque::new(),
            held_overflow: 0,
        })
    }

    /// Entries in the ring.
    pub fn entries(&self) -> u32 {
        self.p.ring.entries()
    }

    /// Starts the (empty) CQ at the test position near the 2^32 wrap.
    pub fn start_near_wrap(&mut self) {
        let n = self.p.ring.near_wrap_index();
        self.p.tail = n;
        self.p.db_index = self.p.ring.doorbell_index(n);
    }

    /// Whether a new CQE would be held now (the consumer is at the lap limit, or older CQEs
    /// are waiting): producers consume no more WQEs until a doorbell.
    #[inline]
    pub fn stalled(&self) -> bool {
        !self.held.is_empty() || self.p.stalled()
    }

    /// Posts a CQE: 60 bytes of client data, then the info dword (`wq_num`, `is_sq`, owner).
    pub fn post(&mut self, data: &[u32; CQE_DATA_DWORDS], wq_num: u32, is_sq: bool) -> Posted {
        let mut body = [0u8; 60];
        for (chunk, d) in body.chunks_exact_mut(4).zip(data) {
            chunk.copy_from_slice(&d.to_le_bytes());
        }
        self.post_bytes(&body, wq_num, is_sq)
    }

    /// Posts a CQE from its 60 bytes of client data (what the data path uses: no conversion of
    /// the body); the info dword carries `wq_num`, `is_sq` and the owner count. At the lap limit
    /// the CQE is held, and written by the doorbell that makes room.
    #[inline(always)]
    pub fn post_bytes(&mut self, body: &[u8; 60], wq_num: u32, is_sq: bool) -> Posted {
        if self.stalled() {
            return self.hold(HeldCqe { body: *body, wq: wq_num, is_sq, owner_skew: 0 });
        }
        self.p.write(body, |owner| CqeInfo::new(wq_num, is_sq, owner).0)
    }

    /// [`post_bytes`](Self::post_bytes) with the owner count advanced by `owner_skew` (mod 8):
    /// the hostile mode's wrong owner bits.
    pub fn post_skewed(
        &mut self,
        body: &[u8; 60],
        wq_num: u32,
        is_sq: bool,
        owner_skew: u8,
    ) -> Posted {
        if self.stalled() {
            return self.hold(HeldCqe { body: *body, wq: wq_num, is_sq, owner_skew });
        }
        self.p.write(body, |owner| {
            CqeInfo::new(wq_num, is_sq, owner.wrapping_add(owner_skew) & GDMA_OWNER_MASK as u8).0
        })
    }

    /// Holds a CQE that cannot be written now.
    #[cold]
    #[inline(never)]
    fn hold(&mut self, cqe: HeldCqe) -> Posted {
        self.stalls += 1;
        if self.held.len() >= MAX_HELD_CQES {
            self.held_overflow += 1;
        } else {
            self.held.push_back(cqe);
        }
        Posted::Held
    }

    /// A CQ doorbell; true when the CQ must signal its EQ at once (an arm behind the device, or
    /// held CQEs written into an armed queue).
    pub fn doorbell(&mut self, index: u32, arm: bool) -> bool {
        let mut fire = self.p.doorbell(index, arm);
        while let Some(h) = self.held.front().copied() {
            if self.p.stalled() {
                break;
            }
            self.held.pop_front();
            let r = self.p.write(&h.body, |owner| {
                let owner = owner.wrapping_add(h.owner_skew) & GDMA_OWNER_MASK as u8;
                CqeInfo::new(h.wq, h.is_sq, owner).0
            });
            fire |= r == (Posted::Done { signal: true });
        }
        fire
    }

    /// Free-running count of CQEs posted (starts at the entry count).
    pub fn tail(&self) -> u32 {
        self.p.tail
    }
}

/// An event queue.
#[derive(Debug)]
pub struct Eq {
    /// Queue id.
    pub id: u32,
    p: Producer,
    /// The MSI-X vector it raises (ESTABLISH_HWC's for the channel's EQ, CREATE_QUEUE's
    /// `eq_pci_msix_index` for others).
    pub msix: u32,
    /// EQEs posted while armed (each raises the EQ's MSI-X vector).
    pub interrupts: u64,
    /// EQEs refused because the consumer stopped ringing the doorbell.
    pub stalls: u64,
}

impl Eq {
    /// An EQ over `mem`.
    pub fn new(id: u32, mem: RingMem, lap_limit: u32) -> Option<Self> {
        // An EQ starts armed (§11 of the spec: its first event raises the interrupt a driver that
        // waits for the HWC's INIT events relies on); a CQ starts unarmed, and drivers arm it.
        Some(Eq {
            id,
            p: Producer::new(mem, GDMA_EQE_SIZE, lap_limit, true)?,
            msix: 0,
            interrupts: 0,
            stalls: 0,
        })
    }

    /// Posts an EQE of `event_type` with 12 bytes of data.
    pub fn post(&mut self, event_type: u8, data: [u32; 3]) -> Posted {
        let mut body = [0u8; 12];
        for (chunk, d) in body.chunks_exact_mut(4).zip(data) {
            chunk.copy_from_slice(&d.to_le_bytes());
        }
        let r = self.p.post(&body, |owner| EqeInfo::new(event_type, owner).0);
        match r {
            Posted::Done { signal: true } => self.interrupts += 1,
            Posted::Stalled | Posted::Held => self.stalls += 1,
            Posted::Done { signal: false } => {}
        }
        r
    }

    /// An EQ doorbell; true when the EQ must signal at once.
    pub fn doorbell(&mut self, index: u32, arm: bool) -> bool {
        let fire = self.p.doorbell(index, arm);
        if fire {
            self.interrupts += 1;
        }
        fire
    }

    /// Free-running count of EQEs posted.
    pub fn tail(&self) -> u32 {
        self.p.tail
    }
}

/// A work queue (SQ or RQ) the device consumes.
#[derive(Debug)]
pub struct Wq {
    /// Queue id.
    pub id: u32,
    /// The CQ its completions go to.
    pub cq: u32,
    mem: RingMem,
    ring: WqRing,
    /// Bytes consumed by the device (free-running).
    head: u32,
    /// Producer position from the last accepted doorbell (bytes, free-running).
    tail: u32,
    /// Disabled by an error: accepts no more work until destroyed.
    pub disabled: bool,
    /// Doorbells refused (moving backwards or by more than the ring).
    pub bad_doorbells: u64,
}

impl Wq {
    /// A work queue over `mem`, completing to `cq`, starting at position `start` (0 for a new
    /// queue; a recreated queue may start where the old one stopped).
    pub fn new(id: u32, cq: u32, mem: RingMem, start: u32) -> Option<Self> {
        let ring = WqRing::new(mem.size()).ok()?;
        Some(Wq { id, cq, mem, ring, head: start, tail: start, disabled: false, bad_doorbells: 0 })
    }

    /// A doorbell with producer position `tail`; false (and counted) when refused. Ringing the
    /// same position again is accepted and changes nothing.
    pub fn doorbell(&mut self, tail: u32) -> bool {
        if tail == self.tail {
            return true;
        }
        match self.ring.accept_doorbell(self.head, self.tail, tail) {
            Some(_backlog) => {
                self.tail = tail;
                true
            }
            None => {
                self.bad_doorbells += 1;
                false
            }
        }
    }

    /// Bytes posted and not yet consumed.
    #[inline]
    pub fn pending(&self) -> u32 {
        self.tail.wrapping_sub(self.head)
    }

    /// Device consumer position (bytes, free-running).
    #[inline]
    pub fn head(&self) -> u32 {
        self.head
    }

    /// Copies `dst.len()` bytes at `head + off` (wrapping at the ring end).
    #[inline]
    pub fn read(&self, off: u32, dst: &mut [u8]) {
        self.mem.read(self.head.wrapping_add(off), dst);
    }

    /// Prefetch hint for the WQE bytes `ahead` bytes past the head (only where the driver has
    /// already posted: the hint must not pull in a line the driver is still writing).
    #[inline(always)]
    pub fn prefetch_ahead(&self, ahead: u32) {
        if ahead < self.pending() {
            self.mem.prefetch(self.head.wrapping_add(ahead));
        }
    }

    /// Consumes `bytes` (a whole WQE).
    #[inline]
    pub fn advance(&mut self, bytes: u32) {
        self.head = self.head.wrapping_add(bytes);
    }

    /// Ring size in bytes.
    pub fn size(&self) -> u32 {
        self.ring.size_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dma::{IovaSpace, Mapping, PAGE};
    use gdma_defs::{CQE_OWNER_BYTE_OFFSET, OwnerState};
    use pmd_mempool::{HugePolicy, MemSegment};
    use std::sync::Arc;

    fn ring(bytes: usize) -> (IovaSpace, u64) {
        let s = Arc::new(MemSegment::anonymous("q-test", bytes, HugePolicy::Never).unwrap());
        let base = s.iova_base();
        let mut space = IovaSpace::default();
        space.insert(Mapping::segment(s)).unwrap();
        (space, base)
    }

    fn pages(base: u64, n: usize) -> Vec<u64> {
        (0..n as u64).map(|i| base + i * PAGE as u64).collect()
    }

    #[test]
    fn cq_entries_carry_the_lap_owner_and_stall_after_the_lap_limit() {
        let (space, base) = ring(PAGE);
        let mem = RingMem::resolve(&space, &pages(base, 1), PAGE as u32).unwrap();
        let mut cq = Cq::new(30, mem, None, 2).unwrap();
        assert_eq!(cq.entries(), 64);
        let ring = OwnerRing::new(64).unwrap();
        let mut head = ring.initial_index();
        let data = [0x1234_5678u32; CQE_DATA_DWORDS];
        for i in 0..128u32 {
            assert_eq!(cq.post(&data, 0x12, true), Posted::Done { signal: false }, "cqe {i}");
            // Driver side: the entry at head is valid with the expected owner.
            let mut owner = [0u8];
            space
                .read(
                    base + (ring.slot(head) * 64) as u64 + CQE_OWNER_BYTE_OFFSET as u64,
                    &mut owner,
                )
                .unwrap();
            assert_eq!(ring.classify(head, owner[0] >> 5), OwnerState::Valid);
            head += 1;
        }
        // Two laps without a doorbell: the next post is held, and so is the one after it.
        assert_eq!(cq.post(&data, 0x12, true), Posted::Held);
        assert_eq!(cq.post(&data, 0x12, true), Posted::Held);
        assert!(cq.stalled());
        assert_eq!(cq.stalls, 2);
        // The doorbell makes room: both are written, in order, before anything new.
        cq.doorbell(ring.doorbell_index(head), false);
        assert!(!cq.stalled());
        assert_eq!(cq.tail(), ring.initial_index() + 130);
        assert_eq!(cq.post(&data, 0x12, true), Posted::Done { signal: false });
        // First-lap info dword of the spec's example: SQ 0x12, 64-entry CQ.
        let mut info = [0u8; 4];
        space.read(base + 60, &mut info).unwrap();
        let lap3_owner = ring.owner_for_tail(3 * 64);
        assert_eq!(u32::from_le_bytes(info), CqeInfo::new(0x12, true, lap3_owner).0);
    }

    #[test]
    fn arming_signals_once() {
        let (space, base) = ring(PAGE);
        let mem = RingMem::resolve(&space, &pages(base, 1), PAGE as u32).unwrap();
        let mut cq = Cq::new(31, mem, Some(5), 0).unwrap();
        let n = cq.entries();
        assert!(!cq.doorbell(n, true), "armed, nothing pending");
        assert_eq!(cq.post(&[0; CQE_DATA_DWORDS], 1, false), Posted::Done { signal: true });
        assert_eq!(cq.post(&[0; CQE_DATA_DWORDS], 1, false), Posted::Done { signal: false });
        // Arming with an index behind the tail fires at once.
        assert!(cq.doorbell(n + 1, true));
        // An index ahead of the device is rejected (§10.2 pitfall 2): no arm, no fire.
        assert!(!cq.doorbell(n + 5, true));
        assert_eq!(cq.post(&[0; CQE_DATA_DWORDS], 1, false), Posted::Done { signal: false });
    }

    #[test]
    fn wq_doorbells_move_forward_by_at_most_the_ring() {
        let (space, base) = ring(PAGE);
        let mem = RingMem::resolve(&space, &pages(base, 1), PAGE as u32).unwrap();
        let mut wq = Wq::new(40, 41, mem, u32::MAX - 63).unwrap();
        assert!(wq.doorbell(u32::MAX - 31), "forward across nothing");
        assert!(wq.doorbell(32), "forward across the u32 wrap");
        assert_eq!(wq.pending(), 96);
        assert!(!wq.doorbell(31), "backwards");
        assert!(!wq.doorbell((u32::MAX - 63).wrapping_add(4096 + 32)), "more than the ring");
        assert_eq!(wq.bad_doorbells, 2);
        wq.advance(96);
        assert_eq!(wq.pending(), 0);
    }

    #[test]
    fn eq_entries_are_written_owner_last() {
        let (space, base) = ring(PAGE);
        let mem = RingMem::resolve(&space, &pages(base, 1), PAGE as u32).unwrap();
        let mut eq = Eq::new(2, mem, 0).unwrap();
        eq.doorbell(256, true);
        assert_eq!(eq.post(64, [1, 2, 3]), Posted::Done { signal: true });
        assert_eq!(eq.interrupts, 1);
        let mut e = [0u8; 16];
        space.read(base, &mut e).unwrap();
        assert_eq!(&e[..4], &1u32.to_le_bytes());
        assert_eq!(u32::from_le_bytes(e[12..].try_into().unwrap()), EqeInfo::new(64, 1).0);
    }
}
