//! Memory for queue rings: one segment per port start, carved into rings aligned to their size,
//! and the views the data path uses to read and write them. A recovery uses the segment of the
//! rings it tore down again (rewound: every ring taken again is zeroed).
//!
//! The device reads WQ rings and writes CQ rings; the driver only ever touches them through
//! [`pmd_mempool::shm::Window`] (copies and atomics, no references), as it does BAR0.

use std::sync::Arc;

use pmd_mempool::shm::{SegmentWindow, Window};
use pmd_mempool::{HugePolicy, MemSegment, SegmentError};

use crate::cp::RingDesc;

/// Smallest ring (one 4 KiB page: the DMA region granule).
pub const MIN_RING: u32 = 4096;

/// A ring in a [`RingArena`].
#[derive(Clone, Copy, Debug)]
pub struct Ring {
    /// The whole ring.
    pub win: Window,
    /// Where the device finds it.
    pub desc: RingDesc,
}

impl Ring {
    /// Size in bytes (a power of two).
    #[inline(always)]
    pub fn size(&self) -> u32 {
        self.desc.size
    }
}

/// A segment holding the rings of one port, allocated at start for the sizes it needs.
#[derive(Debug)]
pub struct RingArena {
    mem: SegmentWindow,
    next: usize,
    /// The ring sizes it was made for.
    sizes: Vec<u32>,
}

impl RingArena {
    /// An arena for rings of `sizes` bytes (each a power of two ≥ [`MIN_RING`]).
    pub fn new(name: &str, sizes: &[u32]) -> Result<Self, SegmentError> {
        let total: usize = sizes.iter().map(|&s| s as usize).sum::<usize>().max(MIN_RING as usize);
        let seg = Arc::new(MemSegment::anonymous(name, total, HugePolicy::Prefer)?);
        Ok(RingArena { mem: SegmentWindow::new(seg), next: 0, sizes: sizes.to_vec() })
    }

    /// Whether it was made for rings of `sizes` bytes (in the same order).
    pub fn made_for(&self, sizes: &[u32]) -> bool {
        self.sizes == sizes
    }

    /// Gives every ring back, to be taken again (and zeroed again by [`take`](Self::take)). Only
    /// once nothing uses the old rings: no queue of ours, and no device object (the device
    /// destroyed them, or reset).
    pub fn rewind(&mut self) {
        self.next = 0;
    }

    /// The segment (to register it with the device).
    pub fn segment(&self) -> &Arc<MemSegment> {
        self.mem.segment()
    }

    /// Takes the next ring of `size` bytes. Rings must be taken largest first, so that each is
    /// aligned to its size. `None` if the arena is full or the size is not a power of two.
    pub fn take(&mut self, size: u32) -> Option<Ring> {
        if !size.is_power_of_two() || size < MIN_RING || self.next % size as usize != 0 {
            return None;
        }
        let win = self.mem.win().sub(self.next, size as usize)?;
        let iova = self.mem.segment().iova_base() + self.next as u64;
        self.next += size as usize;
        // Fresh rings read as zero: WQEs nobody posted, CQEs with owner 0 (the "previous lap"
        // of the first lap, §1.4), so nothing is mistaken for a completion.
        win.fill(0, size as usize, 0);
        Some(Ring { win, desc: RingDesc { iova, size } })
    }
}

/// Rounds `n` up to a power of two, at least `min`.
pub fn pow2_at_least(n: u32, min: u32) -> u32 {
    n.max(min).checked_next_power_of_two().unwrap_or(1 << 31)
}
