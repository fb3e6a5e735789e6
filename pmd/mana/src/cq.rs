//! Completion-queue polling, shared by the RX and TX paths (§1.4 of the spec).
//!
//! The owner bits of the entry at `head` tell whether the device wrote it in this lap: the
//! driver loads the last dword of the entry with Acquire (pairs with the device's Release store
//! of that dword after the body: CQ-A1) and only then reads the body. An entry whose owner is
//! neither this lap's nor the last lap's is corrupt (or the device lapped us): once the entry
//! after it shows the device has moved on, it is counted and skipped, so one bad entry costs one
//! entry and is counted once.

use std::sync::atomic::Ordering;

use gdma_defs::{CqEqDoorbell, CqeInfo, DB_CQ, OwnerRing, OwnerState};
use pmd_ethdev::stats::Counter;
use pmd_mempool::shm::{SlotRing64, Window};

use crate::qmem::Ring;

/// How far past a corrupt owner count the poller looks for an entry of this lap.
const OVERFLOW_SCAN: u32 = 16;

/// A valid entry: client data and info dword.
#[derive(Clone, Copy, Debug)]
pub struct CqEntry {
    /// The 60 bytes of client data as 15 dwords.
    pub data: [u32; 15],
    /// The info dword (queue id, SQ flag, owner).
    pub info: CqeInfo,
}

/// What the entry at the head holds.
#[derive(Debug)]
pub enum Polled {
    /// Nothing new.
    Empty,
    /// An entry (the head moved past it).
    Entry(CqEntry),
    /// A corrupt owner count (the head moved past it).
    BadOwner,
}

/// What a look at the head entry found ([`CqReader::peek`]).
#[derive(Debug)]
pub enum Peek {
    /// An entry of this lap: its byte offset in the ring and its info dword.
    Entry(usize, CqeInfo),
    /// Nothing new.
    Empty,
    /// A corrupt owner count: [`CqPoller::poll`] sorts it out.
    Other,
}

/// The fast path's view of a CQ ([`CqPoller::reader`]): copied into locals for a burst.
#[derive(Clone, Copy, Debug)]
pub struct CqReader {
    slots: SlotRing64,
    owner: OwnerRing,
    /// Entries consumed (free-running).
    head: u32,
}

impl CqReader {
    /// The head entry: its byte offset in the ring and its info dword if the device wrote it
    /// in this lap. Nothing is consumed: read the body with [`Self::dword`], then
    /// [`Self::advance`].
    #[inline(always)]
    pub fn peek(&self) -> Peek {
        let off = (self.owner.slot(self.head) * 64) as usize;
        // CQ-A1: Acquire load of the info dword (owner bits); pairs with the device's Release
        // store of it after the body.
        let info = CqeInfo(self.slots.load_acquire(off, 15));
        match self.owner.classify(self.head, info.owner_bits()) {
            OwnerState::Valid => Peek::Entry(off, info),
            OwnerState::Empty => Peek::Empty,
            OwnerState::Overflow => Peek::Other,
        }
    }

    /// Dword `i` (0..15) of the client data of the entry at `off` (from [`Self::peek`]).
    #[inline(always)]
    pub fn dword(&self, off: usize, i: usize) -> u32 {
        self.slots.load(off, i)
    }

    /// Consumes the head entry (after [`Self::peek`] showed it valid).
    #[inline(always)]
    pub fn advance(&mut self) {
        self.head = self.head.wrapping_add(1);
    }
}

/// The driver side of a CQ.
#[derive(Debug)]
pub struct CqPoller {
    ring: Ring,
    /// The ring as 64-byte entries, for the fast path's dword reads.
    slots: SlotRing64,
    owner: OwnerRing,
    /// Entries consumed (free-running, starts at N).
    pub head: u32,
    /// `head` at the last doorbell.
    rung: u32,
    /// Queue id.
    pub id: u32,
    /// Doorbell register (page + DB_CQ) in the BAR window.
    db: Window,
    db_off: usize,
}

impl CqPoller {
    /// A poller over `ring` (64-byte entries) for CQ `id`, ringing doorbells at `db_page_off` in
    /// `bar`.
    pub fn new(ring: Ring, id: u32, bar: Window, db_page_off: usize) -> Option<Self> {
        let owner = OwnerRing::for_cq_bytes(ring.size())?;
        let slots = ring.win.slot_ring64()?;
        let head = owner.initial_index();
        Some(CqPoller {
            ring,
            slots,
            owner,
            head,
            rung: head,
            id,
            db: bar,
            db_off: db_page_off + DB_CQ as usize,
        })
    }

    /// The ring.
    pub fn ring(&self) -> Ring {
        self.ring
    }

    /// Entries in the ring.
    pub fn entries(&self) -> u32 {
        self.owner.entries()
    }

    /// Takes the entry at the head, if the device wrote one.
    #[inline(always)]
    pub fn poll(&mut self) -> Polled {
        match self.reader().peek() {
            Peek::Empty => Polled::Empty,
            Peek::Other => self.overflow(),
            Peek::Entry(off, info) => {
                let data = core::array::from_fn(|i| self.slots.load(off, i));
                self.head = self.head.wrapping_add(1);
                Polled::Entry(CqEntry { data, info })
            }
        }
    }

    /// Takes the next entry, skipping (and counting in `bad_owner`) entries with a corrupt
    /// owner count; `None` when there is nothing new.
    #[inline(always)]
    pub fn take(&mut self, bad_owner: &Counter) -> Option<CqEntry> {
        loop {
            match self.poll() {
                Polled::Empty => return None,
                Polled::BadOwner => bad_owner.inc(),
                Polled::Entry(e) => return Some(e),
            }
        }
    }

    /// A copy of what the fast path needs to read entries (ring, owner geometry, head), to
    /// work on in locals: stores through raw pointers elsewhere in a burst (into mbuf headers)
    /// would otherwise make the compiler reload these fields after each one. Hand the head
    /// back with [`Self::resume`].
    #[inline(always)]
    pub fn reader(&self) -> CqReader {
        CqReader { slots: self.slots, owner: self.owner, head: self.head }
    }

    /// Takes back the head of a reader made by [`Self::reader`] (entries it consumed).
    #[inline(always)]
    pub fn resume(&mut self, r: CqReader) {
        self.head = r.head;
    }

    /// The entry at the head has an owner count of neither this lap nor the last. Either the
    /// device wrote it corrupt in this lap, or it is a corrupt entry of an earlier lap that the
    /// device has not overwritten yet (we are ahead of it). The entries after it tell which: if
    /// one of the next few was written in this lap (past any more corrupt ones), the head entry
    /// was this lap's and is skipped (and counted, once); otherwise nothing is consumed and
    /// nothing counted, as if the queue were empty.
    #[cold]
    #[inline(never)]
    fn overflow(&mut self) -> Polled {
        for ahead in 1..=OVERFLOW_SCAN.min(self.entries() - 1) {
            // CQ-A1 again (in `peek`), for a later entry.
            let later = CqReader { head: self.head.wrapping_add(ahead), ..self.reader() };
            match later.peek() {
                Peek::Entry(..) => {
                    self.head = self.head.wrapping_add(1);
                    return Polled::BadOwner;
                }
                Peek::Empty => return Polled::Empty,
                Peek::Other => {}
            }
        }
        Polled::Empty
    }

    /// Prefetches the lines of the next `n` entries (each 64 bytes: one line), so the misses of
    /// a burst's CQEs overlap instead of following each other.
    #[inline(always)]
    pub fn prefetch(&self, n: u32) {
        for i in 0..n {
            let off = (self.owner.slot(self.head.wrapping_add(i)) * 64) as usize;
            self.ring.win.prefetch(off);
        }
    }

    /// Rings the doorbell (consumer index, not armed) if at least `every` entries were consumed
    /// since the last one. The device needs one at least every few laps (§10.2 pitfall 1).
    #[inline(always)]
    pub fn ring_if(&mut self, every: u32) {
        if self.head.wrapping_sub(self.rung) >= every {
            self.ring_doorbell();
        }
    }

    /// Rings the doorbell now.
    pub fn ring_doorbell(&mut self) {
        let v = CqEqDoorbell::cq(self.id, self.owner.doorbell_index(self.head), false);
        // CQ-R1: Release: our reads of the consumed entries happen before the device may reuse
        // their slots (pairs with the device's Acquire load of the doorbell).
        self.db.store_u64(self.db_off, v.0, Ordering::Release);
        self.rung = self.head;
    }

    /// The test start index near the 2^32 wrap (`OwnerRing::near_wrap_index`).
    pub fn near_wrap_index(&self) -> u32 {
        self.owner.near_wrap_index()
    }

    /// Starts the indices at `head` (a queue recreated where an old one stopped).
    pub fn set_head(&mut self, head: u32) {
        self.head = head;
        self.rung = head;
    }
}
