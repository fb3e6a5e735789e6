//! The one place this crate creates [`Window`]s: over a whole [`MemSegment`] that an `Arc` keeps
//! mapped (BAR0, the hardware channel's memory). Everything else goes through the windows, which
//! are safe to call (bounds-checked copies and atomics, never references into device memory).
#![allow(unsafe_code)]

use std::sync::Arc;

use pmd_mempool::MemSegment;
use pmd_mempool::shm::Window;

/// A window over all of a segment, holding the segment so the memory stays mapped.
///
/// Copies of [`win`](Self::win) are only used by code that also holds this struct or another
/// `Arc` of the same segment (the data path gets one in [`crate::cp::Doorbells::keep`]).
pub(crate) struct SegWindow {
    win: Window,
    seg: Arc<MemSegment>,
}

impl SegWindow {
    /// A window over all of `seg`.
    pub(crate) fn new(seg: Arc<MemSegment>) -> Self {
        // SAFETY: a segment is mapped readable and writable from creation until it is dropped;
        // this struct holds an `Arc` of it, and copies of the window are only used alongside this
        // struct or another `Arc` of the segment (see the type's documentation).
        let win = unsafe { Window::new(seg.base(), seg.len()) };
        SegWindow { win, seg }
    }

    /// The window (a copy: use it only while this struct, or an `Arc` of the segment, lives).
    #[inline]
    pub(crate) fn win(&self) -> Window {
        self.win
    }

    /// The segment.
    #[inline]
    pub(crate) fn segment(&self) -> &Arc<MemSegment> {
        &self.seg
    }
}
