//! The slot table: the only unsafe code of the ring.
//!
//! A table of `size` (a power of two) element slots. The ring's head/tail protocol hands each
//! thread an exclusive claim on a range of free-running indices `[start, start + n)`; this module
//! copies elements into and out of the slots of such a range, wrapping at the end of the table.
//! It does no synchronisation of its own: the Acquire/Release pairs that make a slot's contents
//! visible to the other side live in `lib.rs`.
//!
//! In normal builds the table is one allocation, aligned to 128 bytes and followed by a guard of
//! 128 bytes so that the last slots never share an adjacent-line prefetch pair with whatever the
//! allocator puts next. Under `--cfg loom` every slot is a `loom::cell::UnsafeCell`, so the model
//! checker proves that no two threads ever touch the same slot without a happens-before edge.
#![allow(unsafe_code)]

use core::mem::MaybeUninit;

/// Alignment of the table and size of the trailing guard.
#[cfg(not(loom))]
const TABLE_ALIGN: usize = 128;

/// Copies `n` elements from `src` to `dst`, inline.
///
/// The copy of a burst (a handful to a few dozen pointers) is done in fixed-size chunks: four
/// elements at a time (two 16-byte moves for pointers), and the remainder as one more chunk that
/// overlaps the previous one (copying a few elements twice is harmless and avoids a branchy
/// tail). There is no loop the compiler could turn into a `memcpy` call, whose call and size
/// dispatch would cost more than the copy itself. The mempool caches use the same copy.
///
/// # Safety
/// `src` is valid for reads and `dst` for writes of `n` elements, and the ranges do not overlap.
#[inline(always)]
pub unsafe fn copy_small<T: Copy>(dst: *mut T, src: *const T, n: usize) {
    /// Copies `K` elements at offset `i`.
    ///
    /// # Safety
    /// `i + K <= n` for the caller's ranges.
    #[inline(always)]
    unsafe fn chunk<T: Copy, const K: usize>(dst: *mut T, src: *const T, i: usize) {
        // SAFETY: the caller keeps [i, i + K) inside both ranges; unaligned array accesses need no
        // alignment beyond T's own, which both pointers have.
        unsafe {
            dst.add(i)
                .cast::<[T; K]>()
                .write_unaligned(src.add(i).cast::<[T; K]>().read_unaligned())
        }
    }
    // SAFETY: in every call below the offsets keep the chunk inside [0, n).
    unsafe {
        if n >= 4 {
            let mut i = 0;
            while i + 4 < n {
                chunk::<T, 4>(dst, src, i);
                i += 4;
            }
            chunk::<T, 4>(dst, src, n - 4);
        } else if n >= 2 {
            chunk::<T, 2>(dst, src, 0);
            chunk::<T, 2>(dst, src, n - 2);
        } else if n == 1 {
            chunk::<T, 1>(dst, src, 0);
        }
    }
}

/// A power-of-two table of element slots.
#[cfg(not(loom))]
pub(crate) struct SlotTable<T> {
    base: core::ptr::NonNull<MaybeUninit<T>>,
    mask: u32,
    layout: std::alloc::Layout,
}

#[cfg(loom)]
pub(crate) struct SlotTable<T> {
    cells: Vec<loom::cell::UnsafeCell<MaybeUninit<T>>>,
    mask: u32,
}

// SAFETY: the table only stores `T: Send` values; which thread may touch which slot is decided by
// the ring protocol, and every access below is an `unsafe fn` whose contract carries that claim.
unsafe impl<T: Send> Send for SlotTable<T> {}
// SAFETY: as for Send: shared access is sound because callers hold disjoint claims.
unsafe impl<T: Send> Sync for SlotTable<T> {}

impl<T: Copy> SlotTable<T> {
    /// Allocates `size` slots (a power of two). Returns `None` when the allocation fails.
    #[cfg(not(loom))]
    pub(crate) fn new(size: u32) -> Option<Self> {
        debug_assert!(size.is_power_of_two());
        let bytes = (size as usize).checked_mul(size_of::<T>())?;
        let bytes = bytes.checked_next_multiple_of(TABLE_ALIGN)?.checked_add(TABLE_ALIGN)?;
        let layout = std::alloc::Layout::from_size_align(bytes, TABLE_ALIGN).ok()?;
        // SAFETY: the layout has a non-zero size (at least the guard).
        let raw = unsafe { std::alloc::alloc(layout) };
        let base = core::ptr::NonNull::new(raw.cast::<MaybeUninit<T>>())?;
        Some(SlotTable { base, mask: size - 1, layout })
    }

    /// Allocates `size` slots (a power of two).
    #[cfg(loom)]
    pub(crate) fn new(size: u32) -> Option<Self> {
        let cells = (0..size).map(|_| loom::cell::UnsafeCell::new(MaybeUninit::uninit())).collect();
        Some(SlotTable { cells, mask: size - 1 })
    }

    /// Number of slots.
    #[inline(always)]
    pub(crate) fn size(&self) -> u32 {
        self.mask + 1
    }

    /// Copies `n` elements from `src` into the slots of indices `[start, start + n)`.
    ///
    /// # Safety
    /// - The caller holds an exclusive claim on those indices (no other thread reads or writes
    ///   them until the claim is published), and `n <= self.size()`.
    /// - `src` is valid for reads of `n` elements.
    #[cfg(not(loom))]
    #[inline(always)]
    pub(crate) unsafe fn write(&self, start: u32, src: *const T, n: u32) {
        let (idx, n, size) = ((start & self.mask) as usize, n as usize, self.size() as usize);
        let base = self.base.as_ptr().cast::<T>();
        // SAFETY: the windows [idx, idx + first) and [0, n - first) are inside the table (n <=
        // size); `src` covers n elements; the claim makes the slots ours alone.
        unsafe {
            if idx + n <= size {
                copy_small(base.add(idx), src, n);
            } else {
                let first = size - idx;
                copy_small(base.add(idx), src, first);
                copy_small(base, src.add(first), n - first);
            }
        }
    }

    /// Copies the slots of indices `[start, start + n)` into `dst`.
    ///
    /// # Safety
    /// - The caller holds an exclusive claim on those indices, every one of them was written by a
    ///   `write` that happens-before this call, and `n <= self.size()`.
    /// - `dst` is valid for writes of `n` elements.
    #[cfg(not(loom))]
    #[inline(always)]
    pub(crate) unsafe fn read(&self, start: u32, dst: *mut T, n: u32) {
        let (idx, n, size) = ((start & self.mask) as usize, n as usize, self.size() as usize);
        let base = self.base.as_ptr().cast::<T>().cast_const();
        // SAFETY: as in `write`; the slots were initialised by the producer whose claim covered
        // them, and the Acquire on its tail makes those writes visible.
        unsafe {
            if idx + n <= size {
                copy_small(dst, base.add(idx), n);
            } else {
                let first = size - idx;
                copy_small(dst, base.add(idx), first);
                copy_small(dst.add(first), base, n - first);
            }
        }
    }

    /// Loom model of `write`: one checked cell access per slot.
    ///
    /// # Safety
    /// As for the normal build.
    #[cfg(loom)]
    pub(crate) unsafe fn write(&self, start: u32, src: *const T, n: u32) {
        for i in 0..n {
            let slot = &self.cells[(start.wrapping_add(i) & self.mask) as usize];
            // SAFETY: the caller covers `src` for n reads and holds the claim on the slot.
            slot.with_mut(|p| unsafe { p.write(MaybeUninit::new(src.add(i as usize).read())) });
        }
    }

    /// Loom model of `read`.
    ///
    /// # Safety
    /// As for the normal build.
    #[cfg(loom)]
    pub(crate) unsafe fn read(&self, start: u32, dst: *mut T, n: u32) {
        for i in 0..n {
            let slot = &self.cells[(start.wrapping_add(i) & self.mask) as usize];
            // SAFETY: the slot was initialised under the producer's claim; `dst` covers n writes.
            slot.with(|p| unsafe { dst.add(i as usize).write((*p).assume_init()) });
        }
    }
}

#[cfg(not(loom))]
impl<T> Drop for SlotTable<T> {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with exactly this layout; elements are `Copy` (no drop glue).
        unsafe { std::alloc::dealloc(self.base.as_ptr().cast(), self.layout) };
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn write_and_read_across_the_end_of_the_table() {
        let t = SlotTable::<u64>::new(8).unwrap();
        let src: Vec<u64> = (100..106).collect();
        let mut dst = [0u64; 6];
        // Start at index 5: slots 5, 6, 7 then 0, 1, 2.
        // SAFETY: single thread, so the claim is trivially exclusive; 6 <= 8.
        unsafe {
            t.write(5, src.as_ptr(), 6);
            t.read(5, dst.as_mut_ptr(), 6);
        }
        assert_eq!(dst.to_vec(), src);
        let mut low = [0u64; 3];
        // SAFETY: slots 0..3 were written above.
        unsafe { t.read(8, low.as_mut_ptr(), 3) };
        assert_eq!(low, [103, 104, 105]);
    }

    #[test]
    fn sixteen_byte_elements_and_odd_lengths() {
        let t = SlotTable::<[u64; 2]>::new(16).unwrap();
        for n in 0..=16u32 {
            let src: Vec<[u64; 2]> = (0..n as u64).map(|i| [i, !i]).collect();
            let mut dst = vec![[0u64; 2]; n as usize];
            let start = u32::MAX - 3; // crosses both the table end and the u32 wrap
            // SAFETY: single thread; n <= 16.
            unsafe {
                t.write(start, src.as_ptr(), n);
                t.read(start, dst.as_mut_ptr(), n);
            }
            assert_eq!(dst, src, "n = {n}");
        }
    }

    #[test]
    fn copy_small_copies_every_length_exactly() {
        let src: Vec<u64> = (1..=40).collect();
        for n in 0..=40 {
            let mut dst = [0u64; 42];
            // SAFETY: src has 40 >= n elements, dst has 42 > n; distinct buffers.
            unsafe { copy_small(dst[1..].as_mut_ptr(), src.as_ptr(), n) };
            assert_eq!(dst[0], 0, "n = {n}: nothing before");
            assert_eq!(&dst[1..=n], &src[..n], "n = {n}");
            assert!(dst[n + 1..].iter().all(|&v| v == 0), "n = {n}: nothing after");
        }
    }

    #[test]
    fn table_is_aligned_and_guarded() {
        let t = SlotTable::<u64>::new(4).unwrap();
        assert_eq!(t.base.as_ptr() as usize % TABLE_ALIGN, 0);
        assert!(t.layout.size() >= 4 * 8 + TABLE_ALIGN);
    }
}
