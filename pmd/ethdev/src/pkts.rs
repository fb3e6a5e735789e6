//! The burst buffer: up to [`MAX_PKT_BURST`] mbufs, owned. RX appends to it; TX takes packets from
//! its front (a prefix: the ones it could send), and what it leaves stays with the caller.
#![allow(unsafe_code)]

use arrayvec::ArrayVec;
use pmd_mempool::{HeldRing, Mbuf, MbufBuf};

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

    /// Moves the first `n` packets (all of them if fewer) into `held`'s slots from `start` on,
    /// wrapping (see [`HeldRing::hold_front`]); the rest move to the front. Returns how many
    /// moved.
    #[inline(always)]
    pub fn move_front_to_held(&mut self, n: usize, held: &mut HeldRing, start: usize) -> usize {
        held.hold_front(&mut self.v, n, start)
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
    fn the_front_moves_into_held_slots_wrapping_and_the_rest_stays_in_order() {
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
        let addrs: Vec<usize> = p.as_slice().iter().map(|m| m.as_raw().as_ptr() as usize).collect();
        let mut held = HeldRing::new(4);
        // An mbuf left in a slot is freed, not leaked.
        let mut first = Pkts::new();
        first.push(mp.alloc().unwrap()).unwrap();
        assert_eq!(first.move_front_to_held(1, &mut held, 3), 1);
        assert_eq!(p.move_front_to_held(3, &mut held, 3), 3);
        let at: Vec<Option<usize>> = (0..4).map(|i| held.addr_of(i)).collect();
        assert_eq!(at, vec![Some(addrs[1]), Some(addrs[2]), None, Some(addrs[0])]);
        assert_eq!(p.as_slice().iter().map(|m| m.port()).collect::<Vec<_>>(), vec![3, 4, 5]);
        assert_eq!(mp.in_use_count(), 6);
        drop(held);
        p.free_all();
        assert!(mp.audit().is_complete());
    }
}
