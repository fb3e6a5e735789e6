//! Raw windows into memory shared with another agent (a device and its driver, two processes):
//! the one way both the software device and the driver touch such memory.
//!
//! The other side writes this memory behind the compiler's back (from another thread or another
//! process), so no `&`/`&mut` into it is ever formed. A [`Window`] copies bytes in and out
//! with raw-pointer copies and reads or writes single words with atomics (Acquire/Release where
//! the protocol needs an ordering edge). Every access is bounds-checked against the window: a bad
//! offset or length is reported to the caller, never an access outside the window.
#![allow(unsafe_code)]

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// Copies `n` bytes: descriptors and small frames (up to 128 bytes) inline as a fixed number of
/// possibly overlapping 16-, 8- or 4-byte words (no loop the compiler would turn into a `memcpy`
/// call), larger ones with `memcpy`.
///
/// # Safety
/// `src` valid for `n` reads, `dst` for `n` writes, the ranges do not overlap.
#[inline(always)]
unsafe fn copy_bytes(dst: *mut u8, src: *const u8, n: usize) {
    /// Copies one unaligned `T` at byte offset `at`.
    ///
    /// # Safety
    /// `[at, at + size_of::<T>())` is inside both ranges.
    #[inline(always)]
    unsafe fn word<T: Copy>(dst: *mut u8, src: *const u8, at: usize) {
        // SAFETY: forwarded; unaligned accesses.
        unsafe { dst.add(at).cast::<T>().write_unaligned(src.add(at).cast::<T>().read_unaligned()) }
    }
    if n > 128 {
        // SAFETY: forwarded.
        unsafe { core::ptr::copy_nonoverlapping(src, dst, n) };
    } else if n > 64 {
        // 65..=128: four words from the front and four ending at the back (overlapping).
        // SAFETY: n > 64, so every [at, at + 16) below is inside both ranges.
        unsafe {
            for at in [0, 16, 32, 48, n - 64, n - 48, n - 32, n - 16] {
                word::<u128>(dst, src, at);
            }
        }
    } else if n > 32 {
        // SAFETY: 32 < n <= 64, so every [at, at + 16) below is inside both ranges.
        unsafe {
            for at in [0, 16, n - 32, n - 16] {
                word::<u128>(dst, src, at);
            }
        }
    } else if n >= 16 {
        // SAFETY: 16 <= n <= 32: [0, 16) and [n - 16, n) are inside both ranges.
        unsafe {
            word::<u128>(dst, src, 0);
            word::<u128>(dst, src, n - 16);
        }
    } else if n >= 8 {
        // SAFETY: 8 <= n < 16: [0, 8) and [n - 8, n) are inside both ranges.
        unsafe {
            word::<u64>(dst, src, 0);
            word::<u64>(dst, src, n - 8);
        }
    } else if n >= 4 {
        // SAFETY: 4 <= n < 8: [0, 4) and [n - 4, n) are inside both ranges.
        unsafe {
            word::<u32>(dst, src, 0);
            word::<u32>(dst, src, n - 4);
        }
    } else {
        for i in 0..n {
            // SAFETY: i < n.
            unsafe { word::<u8>(dst, src, i) };
        }
    }
}

/// A window of shared memory: `len` bytes at `ptr`.
///
/// `Copy` and without a lifetime: whoever creates one (see [`Window::new`]) guarantees that the
/// memory stays mapped while any copy is in use. In this crate that guarantee comes from an
/// `Arc` of the mapping (or segment) held next to every window.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: a window is an address range; all accesses through it are raw copies or atomics, which
// are fine from any thread (the memory is shared with other agents by design).
unsafe impl Send for Window {}
// SAFETY: as above.
unsafe impl Sync for Window {}

impl Window {
    /// A window over `[ptr, ptr + len)`.
    ///
    /// # Safety
    /// The range is mapped readable and writable and stays mapped for as long as this window or
    /// any copy of it (or any sub-window) is used.
    pub unsafe fn new(ptr: *mut u8, len: usize) -> Self {
        Window { ptr, len }
    }

    /// Length in bytes.
    #[inline(always)]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the window is empty.
    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Address of the first byte (for address arithmetic and diagnostics only).
    #[inline(always)]
    pub fn addr(&self) -> usize {
        self.ptr as usize
    }

    #[inline(always)]
    fn fits(&self, off: usize, len: usize) -> bool {
        off <= self.len && len <= self.len - off
    }

    /// The window `[off, off + len)` of this one.
    #[inline]
    pub fn sub(&self, off: usize, len: usize) -> Option<Window> {
        // SAFETY: inside this window, so mapped as long as it is.
        self.fits(off, len).then(|| Window { ptr: self.ptr.wrapping_add(off), len })
    }

    /// Copies `dst.len()` bytes from offset `off` into `dst`. False if out of bounds.
    #[inline]
    pub fn read(&self, off: usize, dst: &mut [u8]) -> bool {
        if !self.fits(off, dst.len()) {
            return false;
        }
        // SAFETY: the source range is inside the mapped window; `dst` is private memory, so the
        // ranges cannot overlap. A concurrent writer on the other side can only make the copied
        // bytes stale or torn; the copy itself stays inside mapped memory.
        unsafe { copy_bytes(dst.as_mut_ptr(), self.ptr.add(off), dst.len()) };
        true
    }

    /// Copies `src` to offset `off`. False if out of bounds.
    #[inline]
    pub fn write(&self, off: usize, src: &[u8]) -> bool {
        if !self.fits(off, src.len()) {
            return false;
        }
        // SAFETY: the destination range is inside the mapped window; `src` is private memory.
        unsafe { copy_bytes(self.ptr.add(off), src.as_ptr(), src.len()) };
        true
    }

    /// Hints the CPU to fetch the cache line holding offset `off` for reading (an entry the other
    /// side will have written by the time we get there). Nothing happens out of bounds or off
    /// x86-64.
    #[inline(always)]
    pub fn prefetch(&self, off: usize) {
        #[cfg(all(target_arch = "x86_64", not(miri)))]
        if off < self.len {
            use core::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
            // SAFETY: a prefetch is a hint: it never faults and changes no memory; the address is
            // inside the mapped window anyway.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(self.ptr.add(off).cast::<i8>()) };
        }
        #[cfg(any(not(target_arch = "x86_64"), miri))]
        let _ = off;
    }

    /// Fills `[off, off + len)` with `byte`. False if out of bounds.
    pub fn fill(&self, off: usize, len: usize, byte: u8) -> bool {
        if !self.fits(off, len) {
            return false;
        }
        // SAFETY: inside the mapped window.
        unsafe { core::ptr::write_bytes(self.ptr.add(off), byte, len) };
        true
    }

    #[inline(always)]
    fn atomic_u32(&self, off: usize) -> Option<&AtomicU32> {
        if off % 4 != 0 || !self.fits(off, 4) || self.addr() % 4 != 0 {
            return None;
        }
        // SAFETY: 4-aligned, inside the mapped window; an AtomicU32 has u32's layout, and every
        // access to this word through the device is atomic. The reference lives no longer than
        // this call's caller uses it (it is not stored).
        Some(unsafe { AtomicU32::from_ptr(self.ptr.add(off).cast()) })
    }

    #[inline(always)]
    fn atomic_u64(&self, off: usize) -> Option<&AtomicU64> {
        if off % 8 != 0 || !self.fits(off, 8) || self.addr() % 8 != 0 {
            return None;
        }
        // SAFETY: as for `atomic_u32`, 8-aligned.
        Some(unsafe { AtomicU64::from_ptr(self.ptr.add(off).cast()) })
    }

    /// Atomic 32-bit load.
    #[inline]
    pub fn load_u32(&self, off: usize, order: Ordering) -> Option<u32> {
        self.atomic_u32(off).map(|a| a.load(order))
    }

    /// Atomic 32-bit store. False if out of bounds or misaligned.
    #[inline]
    pub fn store_u32(&self, off: usize, v: u32, order: Ordering) -> bool {
        self.atomic_u32(off).map(|a| a.store(v, order)).is_some()
    }

    /// Atomic 64-bit load.
    #[inline]
    pub fn load_u64(&self, off: usize, order: Ordering) -> Option<u64> {
        self.atomic_u64(off).map(|a| a.load(order))
    }

    /// Atomic 64-bit store. False if out of bounds or misaligned.
    #[inline]
    pub fn store_u64(&self, off: usize, v: u64, order: Ordering) -> bool {
        self.atomic_u64(off).map(|a| a.store(v, order)).is_some()
    }

    /// Atomic 64-bit swap.
    #[inline]
    pub fn swap_u64(&self, off: usize, v: u64, order: Ordering) -> Option<u64> {
        self.atomic_u64(off).map(|a| a.swap(v, order))
    }
}

/// A window used as a ring of 32-byte descriptor slots: its length is a power of two of at
/// least 32 bytes (checked once, by [`Window::slot_ring32`]), so a masked offset is always a
/// whole slot inside it and a write needs no bounds check. The hot descriptor writes of RX
/// refill and TX go through it.
#[derive(Clone, Copy, Debug)]
pub struct SlotRing32 {
    ptr: *mut u8,
    mask: usize,
}

// SAFETY: as for Window: an address range accessed with raw copies only.
unsafe impl Send for SlotRing32 {}
// SAFETY: as above.
unsafe impl Sync for SlotRing32 {}

impl Window {
    /// This window as a ring of 32-byte slots, if its length is a power of two of at least 32.
    /// The memory must stay mapped while the ring (or a copy) is used, as for the window.
    pub fn slot_ring32(&self) -> Option<SlotRing32> {
        (self.len.is_power_of_two() && self.len >= 32)
            .then_some(SlotRing32 { ptr: self.ptr, mask: (self.len - 1) & !31 })
    }
}

impl SlotRing32 {
    /// Hints the CPU to fetch for writing (`prefetchw`) the cache line holding byte offset
    /// `off` (taken modulo the ring's length): a slot about to be written that the other side
    /// read last. Nothing happens off x86-64.
    #[inline(always)]
    pub fn prefetch_write(&self, off: usize) {
        #[cfg(all(target_arch = "x86_64", not(miri)))]
        // SAFETY: `prefetchw` is a hint: it never faults, changes no memory and no register;
        // the masked address is inside the mapped window anyway.
        unsafe {
            core::arch::asm!(
                "prefetchw [{p}]",
                p = in(reg) self.ptr.add(off & self.mask),
                options(nostack, preserves_flags, readonly)
            )
        };
        #[cfg(any(not(target_arch = "x86_64"), miri))]
        let _ = off;
    }

    /// Writes four 64-bit words, little-endian, into the slot holding byte offset `off` (taken
    /// modulo the ring's length and rounded down to a slot).
    #[inline(always)]
    pub fn write(&self, off: usize, w: [u64; 4]) {
        let off = off & self.mask;
        let w = w.map(u64::to_le);
        // SAFETY: `off` is a multiple of 32 below the window's length (a power of two >= 32),
        // so the 32 bytes are inside the mapped window, which outlives this ring by the
        // window's contract; plain unaligned stores, as for `Window::write`.
        unsafe { self.ptr.add(off).cast::<[u64; 4]>().write_unaligned(w) };
    }
}

/// A window seen as a ring of 64-byte entries the other side writes (completion and event
/// queues): every read is an atomic load of one aligned dword, at an offset masked into the
/// window, so it needs no bounds check and never makes a reference to a whole entry. The fast
/// completion paths read only the dwords they use through it.
#[derive(Clone, Copy, Debug)]
pub struct SlotRing64 {
    ptr: *mut u8,
    mask: usize,
}

// SAFETY: as for Window: an address range accessed with atomic loads only.
unsafe impl Send for SlotRing64 {}
// SAFETY: as above.
unsafe impl Sync for SlotRing64 {}

impl Window {
    /// This window as a ring of 64-byte entries, if its length is a power of two of at least 64
    /// and it starts 4-byte aligned. The memory must stay mapped while the ring (or a copy) is
    /// used, as for the window.
    pub fn slot_ring64(&self) -> Option<SlotRing64> {
        (self.len.is_power_of_two() && self.len >= 64 && self.addr() % 4 == 0)
            .then_some(SlotRing64 { ptr: self.ptr, mask: (self.len - 1) & !63 })
    }
}

impl SlotRing64 {
    #[inline(always)]
    fn dword(&self, off: usize, i: usize) -> &AtomicU32 {
        let at = (off & self.mask) + (i & 15) * 4;
        // SAFETY: `off & mask` is a multiple of 64 below the window's length (a power of two of
        // at least 64) and `(i & 15) * 4 <= 60`, so the 4 bytes are inside the mapped window,
        // which outlives this ring by the window's contract; the start is 4-aligned (checked
        // when the ring was made) and so is `at`. An AtomicU32 has u32's layout, and the other
        // side's accesses to ring memory are atomic or happen before ours by the queue's
        // protocol. The reference does not outlive the caller's single load.
        unsafe { AtomicU32::from_ptr(self.ptr.add(at).cast()) }
    }

    /// Loads dword `i` (taken modulo 16) of the entry holding byte offset `off` (taken modulo
    /// the ring's length, rounded down to an entry) with Acquire: the load that checks an
    /// entry's owner bits before its body is read.
    #[inline(always)]
    pub fn load_acquire(&self, off: usize, i: usize) -> u32 {
        u32::from_le(self.dword(off, i).load(Ordering::Acquire))
    }

    /// Loads dword `i` of the entry at `off` (as for [`Self::load_acquire`]) with no ordering
    /// of its own: a body dword, read after the Acquire load of the owner bits.
    #[inline(always)]
    pub fn load(&self, off: usize, i: usize) -> u32 {
        u32::from_le(self.dword(off, i).load(Ordering::Relaxed))
    }
}

/// A window over a whole memory segment that holds the segment, so the memory stays mapped for
/// as long as the window (or a clone) exists. The safe way to get a [`Window`].
#[derive(Clone, Debug)]
pub struct SegmentWindow {
    win: Window,
    seg: std::sync::Arc<crate::MemSegment>,
}

impl SegmentWindow {
    /// A window over all of `seg`.
    pub fn new(seg: std::sync::Arc<crate::MemSegment>) -> Self {
        // SAFETY: the segment stays mapped while the Arc lives, and this struct holds it; the
        // window is only reachable through this struct (`win()` borrows it).
        let win = unsafe { Window::new(seg.base(), seg.len()) };
        SegmentWindow { win, seg }
    }

    /// The window. Copies of it must not outlive this `SegmentWindow` (or another holder of
    /// the segment).
    #[inline(always)]
    pub fn win(&self) -> &Window {
        &self.win
    }

    /// The segment.
    pub fn segment(&self) -> &std::sync::Arc<crate::MemSegment> {
        &self.seg
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_of_every_small_length_are_exact() {
        // Every length through the word-copy paths and past the memcpy threshold, at every
        // alignment: the destination gets exactly the source bytes and nothing around them.
        let mut mem = vec![0u64; 64];
        // SAFETY: `mem` outlives the window and is not otherwise used while the window is.
        let w = unsafe { Window::new(mem.as_mut_ptr().cast(), 512) };
        let src: Vec<u8> = (0..200u32).map(|i| (i * 7 + 3) as u8).collect();
        for n in 0..=200usize {
            for off in [0usize, 1, 7, 8, 15] {
                assert!(w.fill(0, 512, 0xee));
                assert!(w.write(off + 16, &src[..n]));
                let mut back = vec![0u8; n + 32];
                assert!(w.read(off, &mut back));
                assert!(back[..16].iter().all(|&b| b == 0xee), "before, n {n} off {off}");
                assert_eq!(&back[16..16 + n], &src[..n], "n {n} off {off}");
                assert!(back[16 + n..].iter().all(|&b| b == 0xee), "after, n {n} off {off}");
            }
        }
        drop(mem);
    }

    #[test]
    fn accesses_are_bounds_checked() {
        let mut mem = vec![0u64; 8];
        // SAFETY: `mem` outlives the window and is not otherwise used while the window is.
        let w = unsafe { Window::new(mem.as_mut_ptr().cast(), 64) };
        assert!(w.write(60, &[1, 2, 3, 4]));
        assert!(!w.write(61, &[1, 2, 3, 4]), "runs off the end");
        let mut b = [0u8; 4];
        assert!(w.read(60, &mut b));
        assert_eq!(b, [1, 2, 3, 4]);
        assert!(!w.read(usize::MAX, &mut b), "no overflow in the check");
        assert_eq!(w.load_u32(60, Ordering::Acquire), Some(u32::from_le_bytes([1, 2, 3, 4])));
        assert_eq!(w.load_u32(62, Ordering::Acquire), None, "misaligned");
        assert_eq!(w.load_u64(64, Ordering::Acquire), None, "out of bounds");
        assert!(w.store_u64(8, 0x1122, Ordering::Release));
        assert_eq!(w.swap_u64(8, 0, Ordering::AcqRel), Some(0x1122));
        assert_eq!(w.load_u64(8, Ordering::Relaxed), Some(0));
        assert!(w.sub(60, 5).is_none());
        let s = w.sub(56, 8).unwrap();
        assert_eq!(s.len(), 8);
        assert!(s.fill(0, 8, 0xff));
        drop(mem);
    }

    #[test]
    fn slot_ring64_reads_masked_dwords_of_whole_entries() {
        let mut mem = vec![0u32; 64]; // 256 bytes: four entries
        for (i, d) in mem.iter_mut().enumerate() {
            *d = (i as u32).to_le();
        }
        // SAFETY: `mem` outlives the windows and is not otherwise used while they are.
        let w = unsafe { Window::new(mem.as_mut_ptr().cast(), 256) };
        let r = w.slot_ring64().unwrap();
        assert_eq!(r.load_acquire(0, 15), 15);
        assert_eq!(r.load(64, 0), 16);
        // Offsets wrap at the ring's length and round down to an entry; dword indices wrap at 16.
        assert_eq!(r.load(256 + 64 + 5, 2), 18);
        assert_eq!(r.load(3 * 64, 17), 49);
        assert_eq!(r.load(usize::MAX, 15), 63);
        // Not a power of two, too short, or misaligned: no ring.
        // SAFETY: as above (sub-ranges of the same memory).
        let (odd, short, skew) = unsafe {
            (
                Window::new(mem.as_mut_ptr().cast(), 192),
                Window::new(mem.as_mut_ptr().cast(), 32),
                Window::new(mem.as_mut_ptr().cast::<u8>().add(2), 128),
            )
        };
        assert!(odd.slot_ring64().is_none());
        assert!(short.slot_ring64().is_none());
        assert!(skew.slot_ring64().is_none());
        drop(mem);
    }
}
