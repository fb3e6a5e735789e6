//! The IOVA ranges the device can reach: pool memory registered through the control plane.
//!
//! The device refuses DMA outside registered memory with a GDMA error and then disables the send
//! queue, losing everything queued on it. So TX checks every SGE it builds against this table
//! first, and a packet whose buffer the device cannot reach ends the burst (counted) instead. The
//! worker adds ranges as it registers pools (RX pools at start, pools the application registers
//! for TX with `Port::register_pool`); registrations outlive device resets (the DMA mappings are
//! kept) and end only with the device, so ranges are never removed.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Most ranges a device keeps (a pool has one per memory segment).
pub const MAX_DMA_RANGES: usize = 64;

/// A table of reachable IOVA ranges: one writer (the device's worker), any number of readers.
#[derive(Debug)]
pub struct DmaRanges {
    base: [AtomicU64; MAX_DMA_RANGES],
    len: [AtomicU64; MAX_DMA_RANGES],
    /// Entries published.
    n: AtomicUsize,
}

impl Default for DmaRanges {
    fn default() -> Self {
        DmaRanges {
            base: std::array::from_fn(|_| AtomicU64::new(0)),
            len: std::array::from_fn(|_| AtomicU64::new(0)),
            n: AtomicUsize::new(0),
        }
    }
}

/// One reachable range, as a TX queue caches the last one it hit: `[base, base + len)`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Range {
    /// First IOVA.
    pub base: u64,
    /// Bytes (0: no range, nothing is inside).
    pub len: u64,
}

impl Range {
    /// Whether `[iova, iova + len)` lies inside the range.
    #[inline(always)]
    pub fn holds(self, iova: u64, len: u64) -> bool {
        let off = iova.wrapping_sub(self.base);
        off < self.len && len <= self.len - off
    }
}

impl Range {
    /// Whether `iova` lies inside the range: enough for the data of a one-segment mbuf, which
    /// lies inside its buffer, inside one pool object, inside one segment, and whole segments
    /// are what ranges are made of.
    #[inline(always)]
    pub fn holds_start(self, iova: u64) -> bool {
        iova.wrapping_sub(self.base) < self.len
    }
}

impl DmaRanges {
    /// Adds `[base, base + len)` (the worker only); false if the table is full. A range already
    /// in the table is not added twice.
    pub fn add(&self, base: u64, len: u64) -> bool {
        let n = self.n.load(Ordering::Relaxed);
        if self.find(base, len).is_some() {
            return true;
        }
        if n == MAX_DMA_RANGES {
            return false;
        }
        self.base[n].store(base, Ordering::Relaxed);
        self.len[n].store(len, Ordering::Relaxed);
        // DMA-R1: Release: the entry is written before it is counted (pairs with the Acquire
        // load of `n` in `find`).
        self.n.store(n + 1, Ordering::Release);
        true
    }

    /// The range holding `[iova, iova + len)`, if any.
    pub fn find(&self, iova: u64, len: u64) -> Option<Range> {
        // DMA-R1: Acquire: entries below `n` are complete.
        let n = self.n.load(Ordering::Acquire);
        (0..n.min(MAX_DMA_RANGES))
            .map(|i| Range {
                base: self.base[i].load(Ordering::Relaxed),
                len: self.len[i].load(Ordering::Relaxed),
            })
            .find(|r| r.holds(iova, len))
    }

    /// Ranges in the table.
    pub fn count(&self) -> usize {
        self.n.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_is_reachable_only_wholly_inside_one_range() {
        let t = DmaRanges::default();
        assert!(t.add(0x1000, 0x1000) && t.add(0x8000, 0x100));
        assert!(t.add(0x1000, 0x1000), "a range already there is not added again");
        assert_eq!(t.count(), 2);
        assert_eq!(t.find(0x1000, 0x1000), Some(Range { base: 0x1000, len: 0x1000 }));
        assert_eq!(t.find(0x80f0, 0x10).map(|r| r.base), Some(0x8000));
        // Straddling an end, before, after, past a range's end by one byte.
        for (iova, len) in [(0xff0, 0x20), (0x1ff0, 0x20), (0x0, 0x10), (0x80f1, 0x10)] {
            assert_eq!(t.find(iova, len), None, "{iova:#x}+{len:#x}");
        }
        // An IOVA just below a range, whose end lies inside it (the wrapping offset is huge).
        assert!(!Range { base: 0x1000, len: 0x1000 }.holds(0xff8, 0x10));
        assert!(!Range::default().holds(0, 0), "the empty range holds nothing");
        let r = Range { base: 0x1000, len: 0x1000 };
        assert!(r.holds_start(0x1000) && r.holds_start(0x1fff));
        assert!(
            !r.holds_start(0xfff) && !r.holds_start(0x2000) && !Range::default().holds_start(0)
        );
    }

    #[test]
    fn the_table_fills_up_and_says_so() {
        let t = DmaRanges::default();
        for i in 0..MAX_DMA_RANGES as u64 {
            assert!(t.add(i << 20, 4096));
        }
        assert!(!t.add(1 << 40, 4096));
        assert_eq!(t.find((MAX_DMA_RANGES as u64 - 1) << 20, 64).map(|r| r.len), Some(4096));
    }
}
