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

    /// Moves the mbufs of `slots` (a driver's descriptor ring), in order, to the end of the
    /// burst, emptying their slots, until the burst is full; empty slots are skipped. Returns
    /// how many slots were consumed (taken or found empty).
    #[inline(always)]
    pub fn fill_from_slots(&mut self, slots: &mut [Option<Mbuf>]) -> usize {
        let n = slots.len().min(self.room());
        for s in &mut slots[..n] {
            if let Some(m) = s.take() {
                // Cannot fail: at most `room` slots are taken.
                let _ = self.v.try_push(m);
            }
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
