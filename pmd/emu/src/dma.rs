//! The device's view of memory: IOVA ranges the driver mapped for it, and queue rings built from
//! DMA-region page lists.
//!
//! A driver maps each of its memory segments before using it: in-process the device is handed
//! the segment itself (IOVA = the driver's virtual address = the device's pointer); the daemon
//! maps the file descriptor it is sent and records the IOVA range the driver gave. Every device
//! access goes through [`IovaSpace`] and is bounds-checked: an address outside every mapping, or a
//! range that runs off the end of one, is a [`DmaError`], which the caller turns into a device
//! error (an error completion, a disabled queue), never a fault of the device.
#![allow(unsafe_code)]

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use gdma_defs::GDMA_DMA_REGION_PAGE_SIZE;

use crate::shm::Window;

/// Page size of DMA-region page lists.
pub const PAGE: usize = GDMA_DMA_REGION_PAGE_SIZE as usize;

/// A DMA access outside the mapped IOVA space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("DMA to unmapped IOVA range {iova:#x}+{len}")]
pub struct DmaError {
    /// First address of the access.
    pub iova: u64,
    /// Length of the access.
    pub len: usize,
}

/// One mapped IOVA range and whatever keeps its memory mapped.
pub struct Mapping {
    iova: u64,
    win: Window,
    /// Keeps the memory mapped while the device may touch it (a segment, a mempool handle, the
    /// daemon's own mapping of a received fd).
    _owner: Box<dyn Any + Send + Sync>,
}

impl fmt::Debug for Mapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mapping({:#x}+{:#x})", self.iova, self.win.len())
    }
}

impl Mapping {
    /// A mapping of `len` bytes at `ptr` as IOVA `iova`, kept alive by `owner`.
    ///
    /// # Safety
    /// `[ptr, ptr + len)` is mapped readable and writable for as long as `owner` lives.
    pub unsafe fn new(
        iova: u64,
        ptr: *mut u8,
        len: usize,
        owner: Box<dyn Any + Send + Sync>,
    ) -> Self {
        // SAFETY: forwarded: the memory lives as long as `owner`, which the mapping holds.
        let win = unsafe { Window::new(ptr, len) };
        Mapping { iova, win, _owner: owner }
    }

    /// A mapping of a whole memory segment at its own IOVA, kept alive by the `Arc`.
    pub fn segment(seg: Arc<pmd_mempool::MemSegment>) -> Self {
        let (iova, ptr, len) = (seg.iova_base(), seg.base(), seg.len());
        // SAFETY: the segment is mapped for as long as the Arc lives, and the mapping holds it.
        unsafe { Mapping::new(iova, ptr, len, Box::new(seg)) }
    }

    /// Every segment of a mempool, each kept alive by a handle to the pool (a pool never unmaps
    /// its segments while a handle exists).
    pub fn pool(pool: &pmd_mempool::Mempool) -> Vec<Mapping> {
        pool.segments()
            .map(|seg| {
                let (iova, ptr, len) = (seg.iova_base(), seg.base(), seg.len());
                // SAFETY: the pool keeps its segments mapped while the handle in `owner` lives.
                unsafe { Mapping::new(iova, ptr, len, Box::new(pool.clone())) }
            })
            .collect()
    }

    /// Maps `len` bytes of `file` from offset 0 (a segment received from a driver process over
    /// a unix socket) as IOVA `iova`. The mapping owns the file and its memory mapping.
    pub fn from_file(iova: u64, file: std::fs::File, len: usize) -> std::io::Result<Self> {
        let map = memmap2::MmapOptions::new().len(len).map_raw(&file)?;
        let ptr = map.as_mut_ptr();
        // SAFETY: `map` keeps the range mapped; the mapping owns `map` (and the file).
        Ok(unsafe { Mapping::new(iova, ptr, len, Box::new((map, file))) })
    }

    /// First IOVA.
    pub fn iova(&self) -> u64 {
        self.iova
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.win.len()
    }

    /// Always false: mappings have at least one byte.
    pub fn is_empty(&self) -> bool {
        self.win.len() == 0
    }

    /// Offset of `[iova, iova + len)` inside this mapping, if it lies wholly inside.
    #[inline]
    fn offset_of(&self, iova: u64, len: usize) -> Option<usize> {
        let off = usize::try_from(iova.checked_sub(self.iova)?).ok()?;
        (off <= self.win.len() && len <= self.win.len() - off).then_some(off)
    }
}

/// The IOVA ranges the driver mapped, sorted by address, never overlapping.
#[derive(Debug, Default)]
pub struct IovaSpace {
    maps: Vec<Arc<Mapping>>,
    /// Index of the mapping the last lookup found: packet buffers come from one or two pools,
    /// so the next lookup usually hits the same one.
    hint: core::cell::Cell<usize>,
    /// That mapping's IOVA range and window, for the read/write fast path.
    last: core::cell::Cell<Option<(u64, u64, Window)>>,
}

/// Why a mapping was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MapError {
    /// The range overlaps one already mapped.
    #[error("IOVA range {iova:#x}+{len:#x} overlaps a mapped range")]
    Overlap {
        /// First IOVA.
        iova: u64,
        /// Length.
        len: usize,
    },
    /// Empty or wrapping range.
    #[error("IOVA range {iova:#x}+{len:#x} is empty or wraps")]
    BadRange {
        /// First IOVA.
        iova: u64,
        /// Length.
        len: usize,
    },
    /// Nothing mapped at that address.
    #[error("no mapping starts at IOVA {iova:#x}")]
    NotMapped {
        /// The address asked for.
        iova: u64,
    },
}

impl IovaSpace {
    /// Adds a mapping.
    pub fn insert(&mut self, m: Mapping) -> Result<(), MapError> {
        let (iova, len) = (m.iova, m.len());
        let end = iova.checked_add(len as u64).filter(|_| len > 0);
        let Some(end) = end else {
            return Err(MapError::BadRange { iova, len });
        };
        let at = self.maps.partition_point(|x| x.iova < iova);
        let overlaps_prev =
            at > 0 && self.maps[at - 1].iova + self.maps[at - 1].len() as u64 > iova;
        let overlaps_next = at < self.maps.len() && self.maps[at].iova < end;
        if overlaps_prev || overlaps_next {
            return Err(MapError::Overlap { iova, len });
        }
        self.maps.insert(at, Arc::new(m));
        self.hint.set(0);
        self.last.set(None);
        Ok(())
    }

    /// Removes the mapping that starts at `iova`. Queues that still use its memory keep it
    /// mapped (they hold the `Arc`) until they are destroyed.
    pub fn remove(&mut self, iova: u64) -> Result<Arc<Mapping>, MapError> {
        match self.maps.binary_search_by_key(&iova, |m| m.iova) {
            Ok(i) => {
                self.hint.set(0);
                self.last.set(None);
                Ok(self.maps.remove(i))
            }
            Err(_) => Err(MapError::NotMapped { iova }),
        }
    }

    /// Drops every mapping (a device reset forgets them all).
    pub fn clear(&mut self) {
        self.maps.clear();
        self.last.set(None);
    }

    /// The window and offset of `[iova, iova + len)`, through the last mapping used when it
    /// covers the range.
    #[inline(always)]
    fn locate(&self, iova: u64, len: usize) -> Option<(Window, usize)> {
        if let Some((start, end, w)) = self.last.get() {
            if iova >= start && iova.checked_add(len as u64).is_some_and(|e| e <= end) {
                return Some((w, (iova - start) as usize));
            }
        }
        self.locate_slow(iova, len)
    }

    /// [`locate`](Self::locate) past the last-used mapping: searches, and remembers the result.
    #[cold]
    #[inline(never)]
    fn locate_slow(&self, iova: u64, len: usize) -> Option<(Window, usize)> {
        let (m, off) = self.find(iova, len)?;
        self.last.set(Some((m.iova, m.iova + m.len() as u64, m.win)));
        Some((m.win, off))
    }

    /// Mappings, in address order.
    pub fn mappings(&self) -> &[Arc<Mapping>] {
        &self.maps
    }

    /// The mapping holding all of `[iova, iova + len)`, and the offset into it.
    #[inline]
    pub fn find(&self, iova: u64, len: usize) -> Option<(&Arc<Mapping>, usize)> {
        if let Some(m) = self.maps.get(self.hint.get()) {
            if let Some(off) = m.offset_of(iova, len) {
                return Some((m, off));
            }
        }
        let at = self.maps.partition_point(|m| m.iova <= iova).checked_sub(1)?;
        let m = self.maps.get(at)?;
        let off = m.offset_of(iova, len)?;
        self.hint.set(at);
        Some((m, off))
    }

    /// Copies `dst.len()` bytes from IOVA `iova`.
    #[inline]
    pub fn read(&self, iova: u64, dst: &mut [u8]) -> Result<(), DmaError> {
        let err = DmaError { iova, len: dst.len() };
        let (w, off) = self.locate(iova, dst.len()).ok_or(err)?;
        w.read(off, dst).then_some(()).ok_or(err)
    }

    /// Copies `src` to IOVA `iova`.
    #[inline]
    pub fn write(&self, iova: u64, src: &[u8]) -> Result<(), DmaError> {
        let err = DmaError { iova, len: src.len() };
        let (w, off) = self.locate(iova, src.len()).ok_or(err)?;
        w.write(off, src).then_some(()).ok_or(err)
    }
}

/// A queue's ring, resolved from its DMA-region page list once, at creation.
///
/// IOVA-contiguous pages inside one mapping (what hugepage memory gives) become a single window;
/// otherwise the ring keeps one window per 4 KiB page. Offsets are taken modulo the ring size.
pub struct RingMem {
    /// The whole ring when it is contiguous.
    flat: Option<Window>,
    /// One window per page otherwise.
    pages: Box<[Window]>,
    size: u32,
    /// Keeps the memory mapped while the queue exists, even if the driver unmaps it.
    _keep: Vec<Arc<Mapping>>,
}

impl fmt::Debug for RingMem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RingMem")
            .field("size", &self.size)
            .field("contiguous", &self.flat.is_some())
            .finish()
    }
}

impl RingMem {
    /// Resolves a ring of `size` bytes (a power of two, at least one page) from page addresses.
    pub fn resolve(space: &IovaSpace, pages: &[u64], size: u32) -> Result<Self, DmaError> {
        let needed = (size as usize).div_ceil(PAGE);
        let bad = DmaError { iova: pages.first().copied().unwrap_or(0), len: size as usize };
        if pages.len() < needed || size == 0 {
            return Err(bad);
        }
        let pages = &pages[..needed];
        let contiguous = pages.windows(2).all(|w| w[1] == w[0].wrapping_add(PAGE as u64));
        if contiguous {
            if let Some((m, off)) = space.find(pages[0], size as usize) {
                let flat = m.win.sub(off, size as usize).ok_or(bad)?;
                return Ok(RingMem {
                    flat: Some(flat),
                    pages: Box::new([]),
                    size,
                    _keep: vec![m.clone()],
                });
            }
        }
        let mut wins = Vec::with_capacity(needed);
        let mut keep: Vec<Arc<Mapping>> = Vec::new();
        for &p in pages {
            let (m, off) = space.find(p, PAGE).ok_or(DmaError { iova: p, len: PAGE })?;
            wins.push(m.win.sub(off, PAGE).ok_or(DmaError { iova: p, len: PAGE })?);
            if !keep.iter().any(|k| Arc::ptr_eq(k, m)) {
                keep.push(m.clone());
            }
        }
        Ok(RingMem { flat: None, pages: wins.into_boxed_slice(), size, _keep: keep })
    }

    /// Ring size in bytes.
    #[inline(always)]
    pub fn size(&self) -> u32 {
        self.size
    }

    /// Copies `dst.len()` bytes starting at ring offset `off`, wrapping at the end of the ring.
    #[inline(always)]
    pub fn read(&self, off: u32, dst: &mut [u8]) {
        // Fast path: a contiguous ring and a range that does not wrap.
        if let Some(w) = &self.flat {
            let pos = (off & (self.size - 1)) as usize;
            if pos + dst.len() <= self.size as usize {
                w.read(pos, dst);
                return;
            }
        }
        self.read_pieces(off, dst);
    }

    /// [`read`](Self::read) of a range that wraps or spans pages.
    #[cold]
    #[inline(never)]
    fn read_pieces(&self, off: u32, dst: &mut [u8]) {
        self.each_piece(off, dst.len(), |w, woff, at, n| {
            w.read(woff, &mut dst[at..at + n]);
        });
    }

    /// Copies `src` to ring offset `off`, wrapping at the end of the ring.
    #[inline(always)]
    pub fn write(&self, off: u32, src: &[u8]) {
        if let Some(w) = &self.flat {
            let pos = (off & (self.size - 1)) as usize;
            if pos + src.len() <= self.size as usize {
                w.write(pos, src);
                return;
            }
        }
        self.write_pieces(off, src);
    }

    /// [`write`](Self::write) of a range that wraps or spans pages.
    #[cold]
    #[inline(never)]
    fn write_pieces(&self, off: u32, src: &[u8]) {
        self.each_piece(off, src.len(), |w, woff, at, n| {
            w.write(woff, &src[at..at + n]);
        });
    }

    /// Prefetch hint for the cache line at ring offset `off`.
    #[inline(always)]
    pub(crate) fn prefetch(&self, off: u32) {
        let off = (off & (self.size - 1)) as usize;
        match &self.flat {
            Some(w) => w.prefetch(off),
            None => self.pages[off / PAGE].prefetch(off % PAGE),
        }
    }

    /// Atomic 32-bit store at ring offset `off` (4-aligned; owner words of CQEs/EQEs).
    #[inline]
    pub(crate) fn store_u32(&self, off: u32, v: u32, order: core::sync::atomic::Ordering) {
        let off = (off & (self.size - 1)) as usize;
        match &self.flat {
            Some(w) => w.store_u32(off, v, order),
            None => self.pages[off / PAGE].store_u32(off % PAGE, v, order),
        };
    }

    /// Calls `f(window, offset in window, offset in the caller's buffer, length)` for each
    /// contiguous piece of `[off, off + len)` (mod the ring size).
    #[inline(always)]
    fn each_piece(&self, off: u32, len: usize, mut f: impl FnMut(&Window, usize, usize, usize)) {
        let size = self.size as usize;
        let mut pos = off as usize & (size - 1);
        let mut at = 0;
        let mut left = len.min(size);
        while left > 0 {
            let (w, woff, room) = match &self.flat {
                Some(w) => (w, pos, size - pos),
                None => (&self.pages[pos / PAGE], pos % PAGE, PAGE - pos % PAGE),
            };
            let n = left.min(room);
            f(w, woff, at, n);
            at += n;
            left -= n;
            pos = (pos + n) & (size - 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pmd_mempool::{HugePolicy, MemSegment};

    fn seg(len: usize) -> Arc<MemSegment> {
        Arc::new(MemSegment::anonymous("dma-test", len, HugePolicy::Never).unwrap())
    }

    #[test]
    fn accesses_outside_the_mappings_are_errors() {
        let s = seg(8192);
        let base = s.iova_base();
        let mut space = IovaSpace::default();
        space.insert(Mapping::segment(s.clone())).unwrap();
        space.write(base + 8190, &[1, 2]).unwrap();
        assert_eq!(space.write(base + 8191, &[1, 2]), Err(DmaError { iova: base + 8191, len: 2 }));
        assert!(space.read(base - 1, &mut [0]).is_err());
        assert!(space.read(0, &mut [0]).is_err());
        assert!(space.read(u64::MAX, &mut [0; 4]).is_err());
        let mut b = [0u8; 2];
        space.read(base + 8190, &mut b).unwrap();
        assert_eq!(b, [1, 2]);
        assert!(matches!(space.insert(Mapping::segment(s.clone())), Err(MapError::Overlap { .. })));
        space.remove(base).unwrap();
        assert!(space.read(base, &mut b).is_err());
        assert_eq!(space.remove(base).unwrap_err(), MapError::NotMapped { iova: base });
    }

    #[test]
    fn rings_wrap_and_span_scattered_pages() {
        let s = seg(4 * PAGE);
        let base = s.iova_base();
        let mut space = IovaSpace::default();
        space.insert(Mapping::segment(s)).unwrap();
        // Contiguous: one window.
        let flat = RingMem::resolve(&space, &[base, base + PAGE as u64], 2 * PAGE as u32).unwrap();
        assert!(flat.flat.is_some());
        // Scattered: pages 3 and 1 make an 8 KiB ring.
        let ring = RingMem::resolve(
            &space,
            &[base + 3 * PAGE as u64, base + PAGE as u64],
            2 * PAGE as u32,
        )
        .unwrap();
        assert!(ring.flat.is_none());
        let data: Vec<u8> = (0..100).collect();
        // Write across the page boundary and across the ring end.
        ring.write(PAGE as u32 - 50, &data);
        ring.write(2 * PAGE as u32 - 30, &data);
        let mut back = vec![0u8; 100];
        ring.read(PAGE as u32 - 50, &mut back);
        assert_eq!(back, data);
        ring.read(2 * PAGE as u32 - 30, &mut back);
        assert_eq!(back, data);
        // The bytes landed in the right pages: offset 0 of the ring is page 3's start.
        let mut first = [0u8; 70];
        space.read(base + 3 * PAGE as u64, &mut first).unwrap();
        assert_eq!(&first[..], &data[30..]);
        assert!(RingMem::resolve(&space, &[base + 4 * PAGE as u64], PAGE as u32).is_err());
        assert!(RingMem::resolve(&space, &[base], 2 * PAGE as u32).is_err(), "too few pages");
    }

    #[test]
    fn a_ring_keeps_its_memory_after_unmap() {
        let s = seg(PAGE);
        let base = s.iova_base();
        let mut space = IovaSpace::default();
        space.insert(Mapping::segment(s)).unwrap();
        let ring = RingMem::resolve(&space, &[base], PAGE as u32).unwrap();
        drop(space.remove(base).unwrap());
        ring.write(10, &[9]);
        let mut b = [0u8];
        ring.read(10, &mut b);
        assert_eq!(b, [9]);
    }
}
