//! The burst buffer: up to [`MAX_PKT_BURST`] mbufs, owned. RX appends to it; TX takes packets from
//! its front (a prefix: the ones it could send), and what it leaves stays with the caller.
#![allow(unsafe_code)]

use arrayvec::ArrayVec;
use pmd_mempool::{Mbuf, MbufBuf};

/// Most packets in one burst (DPDK testpmd's `MAX_PKT_BURST`).
pub const MAX_PKT_BURST: usize = 512;

/// A burst of packets.
#[derive(Debug, Default)]
pub struct Pkts {
    v: ArrayVec<Mbuf, MAX_PKT_BURST>,
}

impl Pkts {
    /// An empty burst.
    pub fn new() -> Self {
        Pkts { v: ArrayVec::new() }
    }

    /// Number of packets.
    #[inline(always)]
    pub fn len(&self) -> usize {
        self.v.len()
    }

    /// Whether there are none.
    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.v.is_empty()
    }

    /// Room left.
    #[inline(always)]
    pub fn room(&self) -> usize {
        MAX_PKT_BURST - self.v.len()
    }

    /// Appends a packet; gives it back if full.
    #[inline(always)]
    pub fn push(&mut self, m: Mbuf) -> Result<(), Mbuf> {
        self.v.try_push(m).map_err(|e| e.element())
    }

    /// Moves the first `n` packets (all of them if fewer) into `slots`, in order, one per slot
    /// from `start` on, wrapping at the end (a driver's descriptor ring; `slots.len()` must be
    /// at least `n`); the rest move to the front. Slots are expected empty: an mbuf still in one
    /// is freed. Returns how many moved.
    #[inline]
    pub fn move_front_to_slots(
        &mut self,
        n: usize,
        slots: &mut [Option<Mbuf>],
        start: usize,
    ) -> usize {
        let n = n.min(self.v.len()).min(slots.len());
        if n == 0 {
            return 0;
        }
        let start = start % slots.len();
        let first = n.min(slots.len() - start);
        let (low, high) = slots.split_at_mut(start);
        let (a, b) = (&mut high[..first], &mut low[..n - first]);
        if !(Mbuf::slots_all_empty(a) && Mbuf::slots_all_empty(b)) {
            for s in a.iter_mut().chain(b.iter_mut()) {
                drop(s.take());
            }
        }
        let len = self.v.len();
        // SAFETY: the first n handles are copied into n empty slots (`Option<Mbuf>` has
        // `Mbuf`'s layout, `Some` for a non-null handle), so they move there; the remaining
        // len - n handles then move down to the front, and the length is set to what is left,
        // so every handle is owned exactly once and none is dropped.
        unsafe {
            let src = self.v.as_ptr();
            let dst = slots.as_mut_ptr().cast::<Mbuf>();
            core::ptr::copy_nonoverlapping(src, dst.add(start), first);
            core::ptr::copy_nonoverlapping(src.add(first), dst, n - first);
            let p = self.v.as_mut_ptr();
            core::ptr::copy(p.add(n), p, len - n);
            self.v.set_len(len - n);
        }
        n
    }

    /// The packets.
    #[inline(always)]
    pub fn as_slice(&self) -> &[Mbuf] {
        &self.v
    }

    /// The packets, mutably (to rewrite headers in place).
    #[inline(always)]
    pub fn as_mut_slice(&mut self) -> &mut [Mbuf] {
        &mut self.v
    }

    /// Takes the first `n` packets (all of them if fewer); the rest move to the front.
    #[inline]
    pub fn take_front(&mut self, n: usize) -> arrayvec::Drain<'_, Mbuf, MAX_PKT_BURST> {
        let n = n.min(self.v.len());
        self.v.drain(..n)
    }

    /// Removes and returns the last packet.
    #[inline]
    pub fn pop(&mut self) -> Option<Mbuf> {
        self.v.pop()
    }

    /// Frees every packet (in bulk) and empties the burst.
    pub fn free_all(&mut self) {
        Mbuf::free_bulk(self.v.drain(..));
    }

    /// Frees the packets from index `from` on.
    pub fn free_from(&mut self, from: usize) {
        let from = from.min(self.v.len());
        Mbuf::free_bulk(self.v.drain(from..));
    }

    /// Keeps the packets `keep` says yes to (in order), freeing the others.
    pub fn retain(&mut self, mut keep: impl FnMut(&mut Mbuf) -> bool) {
        self.v.retain(|m| keep(m));
    }
}

impl Extend<Mbuf> for Pkts {
    /// Appends packets until full; the ones that do not fit are freed.
    fn extend<I: IntoIterator<Item = Mbuf>>(&mut self, iter: I) {
        for m in iter {
            let _ = self.push(m);
        }
    }
}

// SAFETY: forwards to the ArrayVec implementation: spare capacity is writable, `commit` marks
// written slots initialised.
unsafe impl MbufBuf for Pkts {
    #[inline(always)]
    fn spare(&mut self, n: usize) -> (*mut Mbuf, usize) {
        self.v.spare(n)
    }

    #[inline(always)]
    unsafe fn commit(&mut self, n: usize) {
        // SAFETY: forwarded contract.
        unsafe { self.v.commit(n) }
    }
}

#[cfg(test)]
mod slot_tests {
    use super::*;
    use pmd_mempool::{HugePolicy, MbufPool, MbufPoolConfig};

    #[test]
    fn the_front_moves_into_ring_slots_wrapping_and_the_rest_stays_in_order() {
        let mut c = MbufPoolConfig::new("pkts-slots", 32);
        c.cache_size = 0;
        c.huge = HugePolicy::Never;
        let mp = MbufPool::with_config(&c).unwrap();
        let mut p = Pkts::new();
        for i in 0..6u16 {
            let mut m = mp.alloc().unwrap();
            m.set_port(i);
            p.push(m).unwrap();
        }
        let mut slots: Vec<Option<Mbuf>> = (0..4).map(|_| None).collect();
        // An mbuf left in a slot is freed, not leaked.
        slots[3] = Some(mp.alloc().unwrap());
        assert_eq!(p.move_front_to_slots(3, &mut slots, 3), 3);
        let ports: Vec<Option<u16>> = slots.iter().map(|s| s.as_ref().map(|m| m.port())).collect();
        assert_eq!(ports, vec![Some(1), Some(2), None, Some(0)]);
        assert_eq!(p.as_slice().iter().map(|m| m.port()).collect::<Vec<_>>(), vec![3, 4, 5]);
        assert_eq!(mp.in_use_count(), 6);
        drop(slots);
        p.free_all();
        assert!(mp.audit().is_complete());
    }
}
