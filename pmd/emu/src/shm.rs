//! Shared-memory windows: [`pmd_mempool::shm::Window`] (raw, bounds-checked access to memory the
//! driver shares with the device), and a window that keeps its segment mapped.

#![allow(unsafe_code)]

pub(crate) use pmd_mempool::shm::Window;

/// A window over a whole memory segment, holding the segment so the memory stays mapped.
pub(crate) struct SegmentWindow {
    win: Window,
    seg: std::sync::Arc<pmd_mempool::MemSegment>,
}

impl SegmentWindow {
    /// A window over all of `seg`.
    pub(crate) fn new(seg: std::sync::Arc<pmd_mempool::MemSegment>) -> Self {
        // SAFETY: the segment stays mapped while the Arc lives, and this struct holds it; copies
        // of the window are only used by code that holds this struct (or the Arc) too.
        let win = unsafe { Window::new(seg.base(), seg.len()) };
        SegmentWindow { win, seg }
    }

    /// The window.
    #[inline(always)]
    pub(crate) fn win(&self) -> &Window {
        &self.win
    }

    /// The segment.
    pub(crate) fn segment(&self) -> &std::sync::Arc<pmd_mempool::MemSegment> {
        &self.seg
    }
}
