//! [`HeldRing`]: a driver's ring of mbufs it holds until the device is done with them (the TX
//! descriptors of a queue), freed in runs as completions arrive.
//!
//! Each mbuf is classified when it is put in, from its header's first cache line (which the
//! driver has just read to build its descriptor): a *plain* mbuf is the sole user of its own
//! buffer (refcount 1, one segment, direct) and belongs to the ring's pool. Releasing a run of
//! plain mbufs copies their pointers into the pool's per-lcore cache and clears the slots; no
//! header is read again, so a completion costs no cache misses on mbufs sent long ago. Any other
//! mbuf (chained, cloned, shared, of another pool) is freed by the general path.
//!
//! Why a classification made at put-in still holds at release: the ring owns the only handle of
//! each mbuf it holds. Nobody else can clone it (which raises the refcount), chain onto it or
//! attach it, so refcount, segment count and buffer address stay what they were.
//!
//! The ring's pool is learnt from the first simple mbuf put in while it holds no plain mbuf, and
//! forgotten when the last plain one is released: a held plain mbuf keeps its pool's memory
//! alive (a pool with objects in use is never freed), so the pointer the ring compares with is
//! never that of a pool that has gone.
#![allow(unsafe_code)]

use core::mem::size_of;
use core::ptr;
use core::sync::atomic::Ordering;

use arrayvec::ArrayVec;

use super::{F_INDIRECT, Mbuf, MbufHdr};
use crate::pool::{ObjPtr, PoolInner};

/// A ring of mbuf slots (a power of two) that remembers which slots hold plain mbufs.
pub struct HeldRing {
    slots: Box<[Option<Mbuf>]>,
    /// `plain[i]`: `slots[i]` holds a plain mbuf of `pool`. False for every empty slot.
    plain: Box<[bool]>,
    /// The pool of the plain mbufs held; null while none is held.
    pool: *const PoolInner,
    /// Offset from a direct mbuf of `pool` to the start of its buffer (header and private area).
    buf_off: usize,
    /// Plain mbufs held.
    nplain: usize,
    mask: usize,
}

// SAFETY: the ring owns its mbufs (Send); `pool` is only compared with, and written through
// by the pool's thread-safe put, as `Mbuf`'s own free does.
unsafe impl Send for HeldRing {}

impl std::fmt::Debug for HeldRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeldRing")
            .field("slots", &self.slots.len())
            .field("held", &self.slots.iter().flatten().count())
            .field("plain", &self.nplain)
            .finish()
    }
}

/// Whether `h` is a plain mbuf of `pool` (whose direct mbufs have their buffer `buf_off` bytes
/// after the header): refcount 1, one segment (so no next segment), of `pool`, and direct. All
/// four fields are in the header's first line.
///
/// Direct: an indirect mbuf's buffer address is inside another mbuf's object, and objects never
/// overlap, so it cannot equal the address of `h`'s own buffer.
///
/// # Safety
/// `h` is a valid header the caller owns.
#[inline(always)]
unsafe fn is_plain(h: *mut MbufHdr, pool: *const PoolInner, buf_off: usize) -> bool {
    // SAFETY: per the contract; plain field reads and an atomic load of the refcount (Acquire,
    // as in `prefree_seg`: a clone's last reads of the buffer happen before it is reused).
    // Non-short-circuit `&`: four loads from one line and no branch.
    unsafe {
        ((*h).refcnt.load(Ordering::Acquire) == 1)
            & ((*h).nb_segs == 1)
            & ptr::eq((*h).pool, pool)
            & ptr::eq((*h).buf_addr, h.cast::<u8>().wrapping_add(buf_off))
    }
}

/// Marks in `marks` (one per mbuf of `ms`) whether each mbuf of `ms` is plain; returns how many
/// are. Out of line, so that its loop has the registers to itself.
#[inline(never)]
fn classify(ms: &[Mbuf], marks: &mut [bool], pool: *const PoolInner, buf_off: usize) -> usize {
    let mut count = 0;
    for (m, mark) in ms.iter().zip(marks) {
        // SAFETY: a header of an mbuf in `ms`, which the caller owns.
        let p = unsafe { is_plain(m.0.as_ptr(), pool, buf_off) };
        *mark = p;
        count += p as usize;
    }
    count
}

impl HeldRing {
    /// A ring of `n` empty slots (`n` is rounded up to a power of two, at least 1).
    pub fn new(n: usize) -> Self {
        let n = n.max(1).next_power_of_two();
        HeldRing {
            slots: (0..n).map(|_| None).collect(),
            plain: vec![false; n].into_boxed_slice(),
            pool: ptr::null(),
            buf_off: 0,
            nplain: 0,
            mask: n - 1,
        }
    }

    /// Number of slots.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether the ring has no slots (never: it has at least one).
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The header address of the mbuf in slot `i` (taken modulo the ring's size), if the slot
    /// holds one. An address, not a reference: through `&Mbuf` a caller could clone a held plain
    /// mbuf, raising its refcount after it was classified.
    pub fn addr_of(&self, i: usize) -> Option<usize> {
        self.slots[i & self.mask].as_ref().map(|m| m.0.as_ptr() as usize)
    }

    /// Plain mbufs held.
    pub fn plain_held(&self) -> usize {
        self.nplain
    }

    /// Learns the pool from the first simple mbuf of `ms` (refcount 1, one segment, direct).
    #[cold]
    #[inline(never)]
    fn learn(&mut self, ms: &[Mbuf]) {
        for m in ms {
            let h = m.0.as_ptr();
            // SAFETY: a header of an mbuf the caller owns; plain field reads.
            let (simple, pool, priv_size) = unsafe {
                (
                    (*h).refcnt.load(Ordering::Acquire) == 1
                        && (*h).nb_segs == 1
                        && (*h).flags & F_INDIRECT == 0,
                    (*h).pool,
                    (*h).priv_size,
                )
            };
            if simple && !pool.is_null() {
                self.pool = pool;
                self.buf_off = size_of::<MbufHdr>() + priv_size as usize;
                return;
            }
        }
    }

    /// Moves the first `n` mbufs of `src` (all of them if fewer; at most the ring's size) into
    /// the slots from `start` on (taken modulo the size), wrapping at the end; the rest of
    /// `src` moves to its front. Slots are expected empty: an mbuf still in one is freed first.
    /// Returns how many moved.
    #[inline]
    pub fn hold_front<const N: usize>(
        &mut self,
        src: &mut ArrayVec<Mbuf, N>,
        n: usize,
        start: usize,
    ) -> usize {
        let n = n.min(src.len()).min(self.slots.len());
        if n == 0 {
            return 0;
        }
        let start = start & self.mask;
        let first = n.min(self.slots.len() - start);
        if !(Mbuf::slots_all_empty(&self.slots[start..start + first])
            && Mbuf::slots_all_empty(&self.slots[..n - first]))
        {
            self.release(start, n);
        }
        if self.nplain == 0 {
            self.learn(&src[..n]);
        }
        let (pool, off) = (self.pool, self.buf_off);
        let (low, high) = self.plain.split_at_mut(start);
        self.nplain += classify(&src[..first], &mut high[..first], pool, off)
            + classify(&src[first..n], &mut low[..n - first], pool, off);
        if self.nplain == 0 {
            self.pool = ptr::null();
        }
        let len = src.len();
        // SAFETY: the first n handles are copied into n empty slots (`Option<Mbuf>` has `Mbuf`'s
        // layout, `Some` for a non-null handle), so they move there; the remaining len - n
        // handles then move down to the front, and the length is set to what is left, so every
        // handle is owned exactly once and none is dropped.
        unsafe {
            let s = src.as_ptr();
            let dst = self.slots.as_mut_ptr().cast::<Mbuf>();
            ptr::copy_nonoverlapping(s, dst.add(start), first);
            ptr::copy_nonoverlapping(s.add(first), dst, n - first);
            let p = src.as_mut_ptr();
            ptr::copy(p.add(n), p, len - n);
            src.set_len(len - n);
        }
        n
    }

    /// Frees the mbufs of the `n` slots from `start` on (taken modulo the size, wrapping; at
    /// most the ring's size) and empties them; returns how many mbufs that was.
    #[inline]
    pub fn release(&mut self, start: usize, n: usize) -> usize {
        let n = n.min(self.slots.len());
        let start = start & self.mask;
        let first = n.min(self.slots.len() - start);
        let freed = self.release_run(start, first) + self.release_run(0, n - first);
        if self.nplain == 0 {
            self.pool = ptr::null();
        }
        freed
    }

    /// Frees every mbuf held; returns how many.
    pub fn release_all(&mut self) -> usize {
        self.release(0, self.slots.len())
    }

    /// `release` for one run of slots that does not wrap.
    #[inline(always)]
    fn release_run(&mut self, at: usize, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        let plain = &mut self.plain[at..at + n];
        let slots = &mut self.slots[at..at + n];
        if plain.iter().fold(true, |a, &p| a & p) {
            // SAFETY: every slot of the run holds a plain mbuf of `pool` (the invariant of
            // `plain`), which the ring owns and gives up: it meets the pool invariants
            // (refcount 1, one segment, no next, direct), so its object goes back as it is. An
            // occupied `Option<Mbuf>` slot is the header pointer, which is the object pointer
            // (`obj_of`), so the slots are the objects. Writing zeroes then makes each slot
            // `None` without dropping what was given back.
            unsafe {
                (*self.pool).put_raw(slots.as_ptr().cast::<ObjPtr>(), n);
                ptr::write_bytes(slots.as_mut_ptr(), 0, n);
            }
            plain.fill(false);
            self.nplain -= n;
            return n;
        }
        self.release_mixed(at, n)
    }

    /// `release_run` when some slot is empty or holds an mbuf that is not plain: the general
    /// free of the whole run (it gathers the simple mbufs of a pool into bulk puts itself).
    #[cold]
    #[inline(never)]
    fn release_mixed(&mut self, at: usize, n: usize) -> usize {
        let plain = &mut self.plain[at..at + n];
        self.nplain -= plain.iter().filter(|&&p| p).count();
        plain.fill(false);
        Mbuf::free_slots(&mut self.slots[at..at + n])
    }
}

impl Drop for HeldRing {
    fn drop(&mut self) {
        self.release_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mbuf::{MbufPool, MbufPoolConfig};
    use crate::segment::HugePolicy;

    fn pool(name: &str, n: u32, cache: u32) -> MbufPool {
        let mut cfg = MbufPoolConfig::new(name, n);
        cfg.cache_size = cache;
        cfg.huge = HugePolicy::Never;
        MbufPool::with_config(&cfg).unwrap()
    }

    fn burst(p: &MbufPool, n: usize) -> ArrayVec<Mbuf, 64> {
        (0..n)
            .map(|i| {
                let mut m = p.alloc().unwrap();
                m.set_port(i as u16);
                m
            })
            .collect()
    }

    #[test]
    fn plain_mbufs_wrap_around_the_ring_and_go_back_in_runs() {
        for cache in [0, 32] {
            let p = pool("held-plain", 64, cache);
            let mut r = HeldRing::new(16);
            let mut src = burst(&p, 12);
            let addrs: Vec<usize> = src.iter().map(|m| m.as_raw().as_ptr() as usize).collect();
            // 10 of the 12 into slots 12..16 and 0..6; the last two move to the front.
            assert_eq!(r.hold_front(&mut src, 10, 12), 10);
            assert_eq!(src.len(), 2);
            assert_eq!(src.iter().map(|m| m.port()).collect::<Vec<_>>(), vec![10, 11]);
            assert_eq!(r.plain_held(), 10);
            for (k, &addr) in addrs[..10].iter().enumerate() {
                assert_eq!(r.addr_of(12 + k), Some(addr));
            }
            assert!(r.addr_of(6).is_none() && r.addr_of(11).is_none());
            assert_eq!(p.in_use_count(), 12);
            // A run that wraps, then the rest.
            assert_eq!(r.release(14, 5), 5);
            assert_eq!((r.plain_held(), p.in_use_count()), (5, 7));
            assert!(r.addr_of(15).is_none() && r.addr_of(2).is_none() && r.addr_of(3).is_some());
            assert_eq!(r.release(12, 2) + r.release(3, 3), 5);
            assert_eq!(r.plain_held(), 0);
            drop(src);
            assert!(p.audit().is_complete(), "{}", p.audit());
        }
    }

    #[test]
    fn only_sole_direct_single_segment_mbufs_of_the_learnt_pool_are_plain() {
        let (p1, p2) = (pool("held-p1", 32, 0), pool("held-p2", 32, 0));
        let mut r = HeldRing::new(16);
        let mut src: ArrayVec<Mbuf, 64> = ArrayVec::new();
        // 0: plain (the pool is learnt from it).
        src.push(p1.alloc().unwrap());
        // 1: a chain of two.
        let mut c = p1.alloc().unwrap();
        c.chain(p1.alloc().unwrap()).unwrap();
        src.push(c);
        // 2: a clone (indirect) of an mbuf of p1, in p1; 3: that mbuf (refcount 2).
        let d = p1.alloc().unwrap();
        src.push(d.try_clone(&p1).unwrap());
        src.push(d);
        // 4: an mbuf of the other pool; 5: a clone kept outside, of a held mbuf's buffer.
        src.push(p2.alloc().unwrap());
        let shared = p1.alloc().unwrap();
        let outside = shared.try_clone(&p2).unwrap();
        src.push(shared);
        // 6, 7: plain.
        src.push(p1.alloc().unwrap());
        src.push(p1.alloc().unwrap());
        assert_eq!(r.hold_front(&mut src, 8, 0), 8);
        assert_eq!(r.plain_held(), 3, "slots 0, 6 and 7");
        // The clone outside goes: its buffer's mbuf is held, and freed by the general path.
        drop(outside);
        assert_eq!(r.release(0, 8), 8);
        assert_eq!(r.plain_held(), 0);
        assert!(p1.audit().is_complete(), "{}", p1.audit());
        assert!(p2.audit().is_complete(), "{}", p2.audit());
    }

    #[test]
    fn the_pool_is_forgotten_with_its_last_plain_mbuf_and_learnt_again() {
        let (p1, p2) = (pool("held-l1", 16, 0), pool("held-l2", 16, 0));
        let mut r = HeldRing::new(8);
        let mut a = burst(&p1, 2);
        r.hold_front(&mut a, 2, 0);
        // p1 is the ring's pool: p2's mbufs are not plain while p1's are held.
        let mut b = burst(&p2, 2);
        r.hold_front(&mut b, 2, 2);
        assert_eq!(r.plain_held(), 2);
        assert_eq!(r.release(0, 4), 4);
        // Nothing plain held: the next mbufs teach the pool again.
        let mut b = burst(&p2, 3);
        r.hold_front(&mut b, 3, 4);
        assert_eq!(r.plain_held(), 3);
        drop(r);
        assert!(p1.audit().is_complete() && p2.audit().is_complete());
    }

    #[test]
    fn runs_with_gaps_and_occupied_slots_lose_nothing() {
        let p = pool("held-gaps", 32, 8);
        let mut r = HeldRing::new(8);
        let mut a = burst(&p, 8);
        r.hold_front(&mut a, 8, 0);
        // Slots 2..4 emptied; a run over them frees the 4 others, one empty slot at each end of
        // the hole.
        assert_eq!(r.release(2, 2), 2);
        assert_eq!(r.release(1, 4), 2);
        assert_eq!(r.plain_held(), 4);
        // Putting into occupied slots (6, 7, 0) frees what was there first: slot 5 and the
        // three new ones are held.
        let mut b = burst(&p, 3);
        assert_eq!(r.hold_front(&mut b, 3, 6), 3);
        assert_eq!(p.in_use_count(), 4);
        assert_eq!((r.plain_held(), r.release_all()), (4, 4));
        assert!(p.audit().is_complete(), "{}", p.audit());
    }
}
