//! Mbuf: the packet buffer, with a DPDK-like header in front of its data.
//!
//! # Layout of one pool object
//! ```text
//! +0      MbufHdr (128 bytes, two cache lines)
//! +128    private area (priv_size bytes, for the application)
//! +128+p  buffer: headroom (128 bytes by default) then data room (2048 by default)
//! ```
//! The header's first line holds what RX touches and what tells whether an mbuf can go straight
//! back to its pool: buffer address and IOVA, data offset, refcount, segment count, port, offload
//! flags, packet type, packet and data lengths, VLAN TCI, RSS hash and the pool (at DPDK's offset,
//! 56). The second holds the next-segment link, user data, TX offload lengths and the rest.
//!
//! # Ownership
//! [`Mbuf`] is one pointer wide (`#[repr(transparent)]`), owns its header, and frees itself (and
//! its chained segments) to its own pool when dropped: exactly once, by construction. A clone made
//! with [`Mbuf::try_clone`] is an *indirect* mbuf: its own header pointing at the original's
//! buffer, whose refcount it holds; the buffer goes back to its pool when the last holder frees.
//! Data can be written only through an mbuf that is the buffer's sole user.
//!
//! Objects in the pool keep `refcnt == 1`, `nb_segs == 1`, `next == null` and their constant
//! fields, so a raw allocation (what RX refill uses) needs no reset.
//!
//! Header fields are reached through raw pointers, never through a `&`/`&mut` to the whole
//! header: an indirect clone on another thread may update the refcount of this header at any time.
#![allow(unsafe_code)]

use core::mem::{MaybeUninit, offset_of, size_of};
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicU16, Ordering};
use std::fmt;

use arrayvec::ArrayVec;

use crate::pool::{Mempool, MempoolConfig, MempoolError, ObjPtr, PoolInner};
use crate::segment::HugePolicy;

/// Bytes reserved in front of the data (DPDK `RTE_PKTMBUF_HEADROOM`).
pub const MBUF_HEADROOM: u16 = 128;
/// Default data room after the headroom (so the default buffer is DPDK's 2176 bytes).
pub const MBUF_DEFAULT_DATAROOM: u16 = 2048;
/// `port` of an mbuf that did not come from a port.
pub const MBUF_INVALID_PORT: u16 = u16::MAX;
/// Most segments a chain may have.
pub const MBUF_MAX_SEGS: u16 = u16::MAX;

/// Offload flags (`ol_flags`), with DPDK's bit positions (`RTE_MBUF_F_*`).
pub mod ol {
    /// RX: `vlan_tci` is valid.
    pub const MBUF_F_RX_VLAN: u64 = 1 << 0;
    /// RX: `rss_hash` is valid.
    pub const MBUF_F_RX_RSS_HASH: u64 = 1 << 1;
    /// RX: the L4 checksum is wrong.
    pub const MBUF_F_RX_L4_CKSUM_BAD: u64 = 1 << 3;
    /// RX: the IP header checksum is wrong.
    pub const MBUF_F_RX_IP_CKSUM_BAD: u64 = 1 << 4;
    /// RX: the outer IP header checksum is wrong.
    pub const MBUF_F_RX_OUTER_IP_CKSUM_BAD: u64 = 1 << 5;
    /// RX: the VLAN tag was stripped into `vlan_tci`.
    pub const MBUF_F_RX_VLAN_STRIPPED: u64 = 1 << 6;
    /// RX: the IP header checksum is right.
    pub const MBUF_F_RX_IP_CKSUM_GOOD: u64 = 1 << 7;
    /// RX: the L4 checksum is right.
    pub const MBUF_F_RX_L4_CKSUM_GOOD: u64 = 1 << 8;
    /// RX: both IP checksum bits.
    pub const MBUF_F_RX_IP_CKSUM_MASK: u64 = MBUF_F_RX_IP_CKSUM_BAD | MBUF_F_RX_IP_CKSUM_GOOD;
    /// RX: both L4 checksum bits.
    pub const MBUF_F_RX_L4_CKSUM_MASK: u64 = MBUF_F_RX_L4_CKSUM_BAD | MBUF_F_RX_L4_CKSUM_GOOD;
    /// TX: compute the TCP checksum.
    pub const MBUF_F_TX_TCP_CKSUM: u64 = 1 << 52;
    /// TX: compute the UDP checksum.
    pub const MBUF_F_TX_UDP_CKSUM: u64 = 3 << 52;
    /// TX: the L4 checksum request field.
    pub const MBUF_F_TX_L4_MASK: u64 = 3 << 52;
    /// TX: compute the IPv4 header checksum.
    pub const MBUF_F_TX_IP_CKSUM: u64 = 1 << 54;
    /// TX: the packet is IPv4.
    pub const MBUF_F_TX_IPV4: u64 = 1 << 55;
    /// TX: the packet is IPv6.
    pub const MBUF_F_TX_IPV6: u64 = 1 << 56;
    /// TX: insert `vlan_tci` as an 802.1Q tag.
    pub const MBUF_F_TX_VLAN: u64 = 1 << 57;
}

/// The mbuf header (DPDK `struct rte_mbuf`'s two cache lines, our field set).
#[repr(C, align(64))]
pub struct MbufHdr {
    // ---- cache line 0: what RX touches, and what a free checks ----
    buf_addr: *mut u8,
    buf_iova: u64,
    data_off: u16,
    refcnt: AtomicU16,
    nb_segs: u16,
    port: u16,
    ol_flags: u64,
    packet_type: u32,
    pkt_len: u32,
    data_len: u16,
    vlan_tci: u16,
    rss_hash: u32,
    hash_hi: u32,
    vlan_tci_outer: u16,
    buf_len: u16,
    pool: *const PoolInner,
    // ---- cache line 1: chain, TX, bookkeeping ----
    next: *mut MbufHdr,
    udata64: u64,
    tx_offload: u64,
    /// For an indirect mbuf: the mbuf whose buffer it uses (null when direct).
    direct: *mut MbufHdr,
    /// IOVA of this mbuf's own buffer (restored when an indirect mbuf detaches).
    own_buf_iova: u64,
    priv_size: u16,
    flags: u16,
    timesync: u32,
    dynfield: [u32; 4],
}

/// `flags`: this mbuf is attached to another's buffer.
const F_INDIRECT: u16 = 1;

// Layout: the offsets DPDK applications and vector drivers rely on.
const _: () = {
    assert!(size_of::<MbufHdr>() == 128);
    assert!(offset_of!(MbufHdr, buf_addr) == 0);
    assert!(offset_of!(MbufHdr, buf_iova) == 8);
    assert!(offset_of!(MbufHdr, data_off) == 16);
    assert!(offset_of!(MbufHdr, refcnt) == 18);
    assert!(offset_of!(MbufHdr, nb_segs) == 20);
    assert!(offset_of!(MbufHdr, port) == 22);
    assert!(offset_of!(MbufHdr, ol_flags) == 24);
    assert!(offset_of!(MbufHdr, packet_type) == 32);
    assert!(offset_of!(MbufHdr, pkt_len) == 36);
    assert!(offset_of!(MbufHdr, data_len) == 40);
    assert!(offset_of!(MbufHdr, vlan_tci) == 42);
    assert!(offset_of!(MbufHdr, rss_hash) == 44);
    assert!(offset_of!(MbufHdr, vlan_tci_outer) == 52);
    assert!(offset_of!(MbufHdr, buf_len) == 54);
    assert!(offset_of!(MbufHdr, pool) == 56);
    assert!(offset_of!(MbufHdr, next) == 64);
    assert!(offset_of!(MbufHdr, udata64) == 72);
    assert!(offset_of!(MbufHdr, tx_offload) == 80);
    assert!(size_of::<Mbuf>() == size_of::<*mut u8>());
    assert!(size_of::<Option<Mbuf>>() == size_of::<*mut u8>());
};

/// Buffer geometry of an mbuf pool.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MbufGeometry {
    pub(crate) priv_size: u16,
    pub(crate) headroom: u16,
    pub(crate) buf_len: u16,
}

/// A packet buffer (one segment, or the first of a chain). Frees itself to its pool on drop.
#[repr(transparent)]
pub struct Mbuf(NonNull<MbufHdr>);

// SAFETY: an Mbuf owns its header and buffer (shared buffers are only read, and refcounts are
// atomic), and its pool is thread-safe; moving it to another thread is moving that ownership.
unsafe impl Send for Mbuf {}

/// Reads a header field through the raw pointer.
macro_rules! get {
    ($m:expr, $f:ident) => {
        // SAFETY: the header is valid while the Mbuf lives; a plain field read through the raw
        // pointer creates no reference to the header.
        unsafe { (*$m.0.as_ptr()).$f }
    };
}

/// Writes a header field through the raw pointer.
macro_rules! set {
    ($m:expr, $f:ident, $v:expr) => {
        // SAFETY: as for `get!`; the Mbuf owns its header, and only `refcnt` is ever touched by
        // another holder (atomically, and not through this macro).
        unsafe { (*$m.0.as_ptr()).$f = $v }
    };
}

impl Mbuf {
    /// The header pointer, for drivers that keep mbufs in their own descriptor rings.
    #[inline(always)]
    pub fn into_raw(self) -> NonNull<MbufHdr> {
        let p = self.0;
        core::mem::forget(self);
        p
    }

    /// Takes back ownership of a header pointer.
    ///
    /// # Safety
    /// `p` came from [`into_raw`](Self::into_raw) (or a raw allocation of an mbuf pool) and is
    /// not owned by anything else.
    #[inline(always)]
    pub unsafe fn from_raw(p: NonNull<MbufHdr>) -> Mbuf {
        Mbuf(p)
    }

    /// The header pointer without giving up ownership.
    #[inline(always)]
    pub fn as_raw(&self) -> NonNull<MbufHdr> {
        self.0
    }

    /// Bytes of data in this segment.
    #[inline(always)]
    pub fn data_len(&self) -> u16 {
        get!(self, data_len)
    }

    /// Bytes of data in the whole chain (meaningful on the first segment).
    #[inline(always)]
    pub fn pkt_len(&self) -> u32 {
        get!(self, pkt_len)
    }

    /// Offset of the data from the buffer start.
    #[inline(always)]
    pub fn data_off(&self) -> u16 {
        get!(self, data_off)
    }

    /// Buffer length (headroom + data room).
    #[inline(always)]
    pub fn buf_len(&self) -> u16 {
        get!(self, buf_len)
    }

    /// Segments in the chain.
    #[inline(always)]
    pub fn nb_segs(&self) -> u16 {
        get!(self, nb_segs)
    }

    /// Free bytes in front of the data.
    #[inline(always)]
    pub fn headroom(&self) -> u16 {
        self.data_off()
    }

    /// Free bytes after the data of this segment.
    #[inline(always)]
    pub fn tailroom(&self) -> u16 {
        self.buf_len() - self.data_off() - self.data_len()
    }

    /// The port the packet came from (or [`MBUF_INVALID_PORT`]).
    #[inline(always)]
    pub fn port(&self) -> u16 {
        get!(self, port)
    }

    /// Sets the port.
    #[inline(always)]
    pub fn set_port(&mut self, port: u16) {
        set!(self, port, port)
    }

    /// Offload flags ([`ol`]).
    #[inline(always)]
    pub fn ol_flags(&self) -> u64 {
        get!(self, ol_flags)
    }

    /// Sets the offload flags.
    #[inline(always)]
    pub fn set_ol_flags(&mut self, flags: u64) {
        set!(self, ol_flags, flags)
    }

    /// Packet type (DPDK `RTE_PTYPE_*` bits).
    #[inline(always)]
    pub fn packet_type(&self) -> u32 {
        get!(self, packet_type)
    }

    /// Sets the packet type.
    #[inline(always)]
    pub fn set_packet_type(&mut self, ptype: u32) {
        set!(self, packet_type, ptype)
    }

    /// RSS hash (valid with `MBUF_F_RX_RSS_HASH`).
    #[inline(always)]
    pub fn rss_hash(&self) -> u32 {
        get!(self, rss_hash)
    }

    /// Sets the RSS hash.
    #[inline(always)]
    pub fn set_rss_hash(&mut self, hash: u32) {
        set!(self, rss_hash, hash)
    }

    /// VLAN TCI (valid with `MBUF_F_RX_VLAN`; inserted on TX with `MBUF_F_TX_VLAN`).
    #[inline(always)]
    pub fn vlan_tci(&self) -> u16 {
        get!(self, vlan_tci)
    }

    /// Sets the VLAN TCI.
    #[inline(always)]
    pub fn set_vlan_tci(&mut self, tci: u16) {
        set!(self, vlan_tci, tci)
    }

    /// A 64-bit field free for drivers and applications.
    #[inline(always)]
    pub fn udata64(&self) -> u64 {
        get!(self, udata64)
    }

    /// Sets the free 64-bit field.
    #[inline(always)]
    pub fn set_udata64(&mut self, v: u64) {
        set!(self, udata64, v)
    }

    /// TX offload header lengths: (l2_len, l3_len, l4_len).
    #[inline(always)]
    pub fn tx_lens(&self) -> (u8, u16, u8) {
        let v = get!(self, tx_offload);
        ((v & 0x7f) as u8, ((v >> 7) & 0x1ff) as u16, ((v >> 16) & 0xff) as u8)
    }

    /// Sets the TX offload header lengths (l2 < 128, l3 < 512), as DPDK's bit-field packs them.
    #[inline(always)]
    pub fn set_tx_lens(&mut self, l2_len: u8, l3_len: u16, l4_len: u8) {
        let v = (l2_len as u64 & 0x7f) | ((l3_len as u64 & 0x1ff) << 7) | ((l4_len as u64) << 16);
        set!(self, tx_offload, v)
    }

    /// IOVA of the buffer start.
    #[inline(always)]
    pub fn buf_iova(&self) -> u64 {
        get!(self, buf_iova)
    }

    /// IOVA of the data (what a descriptor points the device at).
    #[inline(always)]
    pub fn data_iova(&self) -> u64 {
        self.buf_iova() + self.data_off() as u64
    }

    /// Address of the data in this process.
    #[inline(always)]
    pub fn data_addr(&self) -> *mut u8 {
        get!(self, buf_addr).wrapping_add(self.data_off() as usize)
    }

    /// Refcount of this header (1 unless indirect clones use this buffer).
    #[inline]
    pub fn refcnt(&self) -> u16 {
        // SAFETY: the header is valid; a shared reference to the atomic field alone.
        unsafe { (*self.0.as_ptr()).refcnt.load(Ordering::Acquire) }
    }

    /// Whether this mbuf uses another mbuf's buffer.
    #[inline]
    pub fn is_indirect(&self) -> bool {
        get!(self, flags) & F_INDIRECT != 0
    }

    /// Whether the buffer is this mbuf's alone (so its data may be written).
    #[inline]
    pub fn is_exclusive(&self) -> bool {
        !self.is_indirect() && self.refcnt() == 1
    }

    /// Name of the pool the header belongs to.
    pub fn pool_name(&self) -> &str {
        let pool = get!(self, pool);
        // SAFETY: mbufs keep their pool alive (a pool with objects in use is never freed).
        unsafe { (*pool).name() }
    }

    /// The data of this segment.
    #[inline]
    pub fn data(&self) -> &[u8] {
        // SAFETY: [data_off, data_off + data_len) lies inside the buffer (every setter checks),
        // and nothing writes it while this mbuf is borrowed: writers need an exclusive mbuf, and
        // the device writes only buffers posted to it, which no Mbuf handle owns meanwhile.
        unsafe { core::slice::from_raw_parts(self.data_addr(), self.data_len() as usize) }
    }

    /// The data of this segment, writable when the buffer is this mbuf's alone.
    #[inline]
    pub fn data_mut(&mut self) -> Option<&mut [u8]> {
        if !self.is_exclusive() {
            return None;
        }
        // SAFETY: as in `data`, and exclusive: no indirect mbuf shares the buffer (refcount 1,
        // read with Acquire after every other holder's Release decrement).
        Some(unsafe { core::slice::from_raw_parts_mut(self.data_addr(), self.data_len() as usize) })
    }

    /// Sets this segment's data length (checked against the buffer).
    pub fn set_data_len(&mut self, len: u16) -> bool {
        if len as u32 + self.data_off() as u32 > self.buf_len() as u32 {
            return false;
        }
        set!(self, data_len, len);
        true
    }

    /// Sets the whole chain's packet length.
    #[inline(always)]
    pub fn set_pkt_len(&mut self, len: u32) {
        set!(self, pkt_len, len)
    }

    /// Sets both lengths of a single-segment packet in one call (what RX does).
    #[inline(always)]
    pub fn set_lens(&mut self, len: u16) -> bool {
        if !self.set_data_len(len) {
            return false;
        }
        self.set_pkt_len(len as u32);
        true
    }

    /// Last segment of the chain.
    fn last_seg(&self) -> *mut MbufHdr {
        let mut m = self.0.as_ptr();
        // SAFETY: every `next` of a chain this mbuf owns is a valid header or null.
        unsafe {
            while !(*m).next.is_null() {
                m = (*m).next;
            }
        }
        m
    }

    /// Grows the data at the tail of the last segment by `len` bytes and returns them; `None` if
    /// the segment lacks the tailroom or the buffer is shared.
    pub fn append(&mut self, len: u16) -> Option<&mut [u8]> {
        let last = self.last_seg();
        // SAFETY: `last` is a segment this mbuf owns; fields read and written in place.
        unsafe {
            let (off, dlen, blen) = ((*last).data_off, (*last).data_len, (*last).buf_len);
            if (*last).flags & F_INDIRECT != 0 || (*last).refcnt.load(Ordering::Acquire) != 1 {
                return None;
            }
            if off as u32 + dlen as u32 + len as u32 > blen as u32 {
                return None;
            }
            let tail = (*last).buf_addr.add((off + dlen) as usize);
            (*last).data_len = dlen + len;
            (*self.0.as_ptr()).pkt_len += len as u32;
            Some(core::slice::from_raw_parts_mut(tail, len as usize))
        }
    }

    /// Grows the data at the front of the first segment by `len` bytes and returns them.
    pub fn prepend(&mut self, len: u16) -> Option<&mut [u8]> {
        if len > self.data_off() || !self.is_exclusive() {
            return None;
        }
        set!(self, data_off, self.data_off() - len);
        set!(self, data_len, self.data_len() + len);
        set!(self, pkt_len, self.pkt_len() + len as u32);
        // SAFETY: the new [data_off, data_off + len) is inside the buffer and exclusive.
        Some(unsafe { core::slice::from_raw_parts_mut(self.data_addr(), len as usize) })
    }

    /// Removes `len` bytes from the front of the first segment.
    pub fn adj(&mut self, len: u16) -> bool {
        if len > self.data_len() {
            return false;
        }
        set!(self, data_off, self.data_off() + len);
        set!(self, data_len, self.data_len() - len);
        set!(self, pkt_len, self.pkt_len() - len as u32);
        true
    }

    /// Removes `len` bytes from the end of the last segment.
    pub fn trim(&mut self, len: u16) -> bool {
        let last = self.last_seg();
        // SAFETY: a segment this mbuf owns.
        unsafe {
            if len > (*last).data_len {
                return false;
            }
            (*last).data_len -= len;
        }
        set!(self, pkt_len, self.pkt_len() - len as u32);
        true
    }

    /// Appends `tail` (a packet of one or more segments) after the last segment.
    /// Gives `tail` back if the chain would exceed [`MBUF_MAX_SEGS`].
    pub fn chain(&mut self, tail: Mbuf) -> Result<(), Mbuf> {
        let segs = self.nb_segs() as u32 + tail.nb_segs() as u32;
        if segs > MBUF_MAX_SEGS as u32 {
            return Err(tail);
        }
        let last = self.last_seg();
        let (tlen, tsegs) = (tail.pkt_len(), tail.nb_segs());
        let t = tail.into_raw().as_ptr();
        // SAFETY: `last` and `t` are owned by this chain now; the tail's per-packet fields are
        // reset to those of a non-first segment.
        unsafe {
            (*last).next = t;
            (*t).nb_segs = 1;
        }
        let (segs, len) = (self.nb_segs() + tsegs, self.pkt_len() + tlen);
        set!(self, nb_segs, segs);
        set!(self, pkt_len, len);
        Ok(())
    }

    /// The segments of the chain, first to last.
    pub fn segments(&self) -> Segments<'_> {
        Segments { next: self.0.as_ptr(), _m: core::marker::PhantomData }
    }

    /// Hints the CPU to fetch the header's first cache line (what RX fills), ahead of using it.
    #[inline(always)]
    pub fn prefetch(&self) {
        #[cfg(all(target_arch = "x86_64", not(miri)))]
        // SAFETY: a prefetch is a hint: it never faults and changes no memory; the header is
        // valid anyway.
        unsafe {
            core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(
                self.0.as_ptr().cast::<i8>(),
            )
        };
    }

    /// RX: sets the data offset, both lengths, the port and the offload flags of a fresh
    /// single-segment mbuf in one go (what a driver does for each received packet). False, and
    /// nothing changed, if `data_off + len` does not fit the buffer.
    #[inline(always)]
    pub fn rx_init(&mut self, data_off: u16, len: u16, port: u16, ol_flags: u64) -> bool {
        if data_off as u32 + len as u32 > self.buf_len() as u32 {
            return false;
        }
        set!(self, data_off, data_off);
        set!(self, data_len, len);
        set!(self, pkt_len, len as u32);
        set!(self, port, port);
        set!(self, ol_flags, ol_flags);
        set!(self, packet_type, 0);
        true
    }

    /// RX: [`Mbuf::rx_init`] for a driver that has already checked the length against its
    /// pool's data room, also clearing `vlan_tci` and setting `rss_hash` to `hash` (meaningful
    /// only with `MBUF_F_RX_RSS_HASH` in `ol_flags`). It never fails: an offset or length that
    /// would not fit is cut to the buffer (a wrong caller gets a short packet, never an access
    /// outside the buffer), so a landing loop has no drop path. The header is written in few,
    /// wide stores.
    #[inline(always)]
    pub fn rx_set(&mut self, data_off: u16, len: u16, port: u16, ol_flags: u64, hash: u32) {
        let buf_len = self.buf_len();
        let data_off = data_off.min(buf_len);
        let len = len.min(buf_len - data_off);
        set!(self, data_off, data_off);
        set!(self, port, port);
        set!(self, ol_flags, ol_flags);
        // packet_type 0 and pkt_len; data_len, vlan_tci 0 and rss_hash (native byte order,
        // field by field, whatever the target's endianness).
        let mut w0 = [0u8; 8];
        w0[4..].copy_from_slice(&(len as u32).to_ne_bytes());
        let mut w1 = [0u8; 8];
        w1[..2].copy_from_slice(&len.to_ne_bytes());
        w1[4..].copy_from_slice(&hash.to_ne_bytes());
        let h = self.0.as_ptr();
        // SAFETY: the Mbuf owns its header (valid while it lives). `packet_type` (offset 32)
        // and `pkt_len` (36) make up one 8-aligned word, as do `data_len` (40), `vlan_tci` (42)
        // and `rss_hash` (44) (offsets asserted above; the header is 64-aligned); none of them
        // is touched by another holder. Raw pointer writes create no reference.
        unsafe {
            ptr::addr_of_mut!((*h).packet_type).cast::<[u8; 8]>().write(w0);
            ptr::addr_of_mut!((*h).data_len).cast::<[u8; 8]>().write(w1);
        }
    }

    /// The first segment's data IOVA and length (what a one-segment TX descriptor needs).
    #[inline(always)]
    pub fn data_iova_len(&self) -> (u64, u16) {
        (get!(self, buf_iova) + get!(self, data_off) as u64, get!(self, data_len))
    }

    /// The chain's segments as (data IOVA, data length).
    #[inline(always)]
    pub fn segment_iovas(&self) -> SegmentIovas<'_> {
        SegmentIovas { next: self.0.as_ptr(), _m: core::marker::PhantomData }
    }

    /// Copies the whole packet's data into a vector (for tests and slow paths).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.pkt_len() as usize);
        for s in self.segments() {
            v.extend_from_slice(s);
        }
        v
    }

    /// An indirect clone: new headers from `pool` attached to this chain's buffers (no data is
    /// copied). Neither the original nor the clone can write the shared data until the other is
    /// freed.
    pub fn try_clone(&self, pool: &MbufPool) -> Result<Mbuf, MempoolError> {
        let mut head: Option<Mbuf> = None;
        for seg in self.segment_ptrs() {
            let mut mi = pool.alloc()?;
            // SAFETY: `seg` is a segment of this chain; `mi` is a fresh exclusive header.
            unsafe { attach(mi.0.as_ptr(), seg) };
            mi.set_pkt_len(mi.data_len() as u32);
            match head.as_mut() {
                None => head = Some(mi),
                Some(h) => {
                    // Cannot overflow: the clone has as many segments as the original.
                    let _ = h.chain(mi);
                }
            }
        }
        let mut head = head.expect("a chain has at least one segment");
        // SAFETY: both headers are valid; copy the packet-level fields.
        unsafe {
            let (src, dst) = (self.0.as_ptr(), head.0.as_ptr());
            (*dst).pkt_len = (*src).pkt_len;
            (*dst).port = (*src).port;
            (*dst).ol_flags = (*src).ol_flags;
            (*dst).packet_type = (*src).packet_type;
            (*dst).vlan_tci = (*src).vlan_tci;
            (*dst).rss_hash = (*src).rss_hash;
            (*dst).tx_offload = (*src).tx_offload;
        }
        head.set_pkt_len(self.pkt_len());
        Ok(head)
    }

    fn segment_ptrs(&self) -> impl Iterator<Item = *mut MbufHdr> + '_ {
        let mut p = self.0.as_ptr();
        core::iter::from_fn(move || {
            if p.is_null() {
                return None;
            }
            let cur = p;
            // SAFETY: a segment of this chain.
            p = unsafe { (*cur).next };
            Some(cur)
        })
    }

    /// Frees the mbufs held in `slots` (a driver's descriptor ring), leaving every slot empty;
    /// returns how many there were. Simple mbufs (sole holder, one segment, direct) of one pool
    /// go back in bulk straight from the slots, with a handful of loads and no stores to their
    /// headers (they already meet the pool invariants); any other takes the general path.
    #[inline]
    pub fn free_slots(slots: &mut [Option<Mbuf>]) -> usize {
        let mut n = 0;
        // The pool of the simple mbufs gathered in `objs`: the first mbuf's (so that a run of
        // one pool never takes the cold path); the cold path changes it.
        let mut pool: *const PoolInner = match slots.iter().flatten().next() {
            // SAFETY: a valid header of an mbuf we own; a plain read of its pool pointer.
            Some(m) => unsafe { (*m.0.as_ptr()).pool },
            None => return 0,
        };
        for chunk in slots.chunks_mut(64) {
            // Objects of simple mbufs of `pool`: `objs[..k]` are written, at most one per slot
            // of the chunk (so never more than 64). `k` is a local of its own, so it stays in a
            // register.
            let mut objs = [const { MaybeUninit::<ObjPtr>::uninit() }; 64];
            let mut k = 0usize;
            for s in chunk {
                let Some(m) = s.take() else { continue };
                n += 1;
                let h = m.into_raw().as_ptr();
                // SAFETY: a header we own (taken from the slot); only `refcnt` may be touched by
                // another holder, atomically.
                let simple = unsafe {
                    (*h).refcnt.load(Ordering::Acquire) == 1
                        && (*h).nb_segs == 1
                        && (*h).next.is_null()
                        && (*h).flags & F_INDIRECT == 0
                        && (*h).pool == pool
                };
                if simple {
                    // k < 64: one per slot of a chunk of at most 64 (the mask only spares the
                    // bounds check).
                    objs[k & 63].write(obj_of(h));
                    k += 1;
                } else {
                    // SAFETY: `objs[..k]` are written objects of `pool`, each freed once, and
                    // `h` is ours to free.
                    pool = unsafe { free_slot_slow(h, pool, &objs[..k.min(64)]) };
                    k = 0;
                }
            }
            // SAFETY: as above.
            unsafe { put_written(pool, &objs[..k.min(64)]) };
        }
        n
    }

    /// Whether no slot holds an mbuf. Written as a reduction over every slot rather than a
    /// search that stops early, so that it compiles to a few vector instructions per line of
    /// slots instead of a compare and branch per slot.
    #[inline(always)]
    pub fn slots_all_empty(slots: &[Option<Mbuf>]) -> bool {
        slots.iter().fold(0usize, |acc, s| acc | s.as_ref().map_or(0, |m| m.0.as_ptr() as usize))
            == 0
    }

    /// Whether every slot holds an mbuf (a reduction, as for [`Self::slots_all_empty`]).
    #[inline(always)]
    pub fn slots_all_full(slots: &[Option<Mbuf>]) -> bool {
        slots.iter().fold(true, |acc, s| acc & s.is_some())
    }

    /// Moves the mbufs of the first `min(slots.len(), room)` slots of a driver's descriptor ring
    /// to the end of `out`, emptying those slots, and returns how many slots that was. When all
    /// of them hold an mbuf (the RX landing case) the handles move as one copy and the slots
    /// are cleared as one fill; otherwise empty slots are skipped one by one.
    #[inline]
    pub fn take_slots_into<B: MbufBuf>(slots: &mut [Option<Mbuf>], out: &mut B) -> usize {
        let (dst, room) = out.spare(slots.len());
        let n = slots.len().min(room);
        let slots = &mut slots[..n];
        if Self::slots_all_full(slots) {
            // SAFETY: `dst` is valid for `room >= n` writes; the n slots each hold an mbuf, and
            // `Option<Mbuf>` is an `Mbuf` when `Some` (same one-pointer layout, asserted below),
            // so the copy moves n owned handles; writing zeroes then makes every slot `None`
            // (null is `None`) without dropping what moved; `commit` marks the n written.
            unsafe {
                ptr::copy_nonoverlapping(slots.as_ptr().cast::<Mbuf>(), dst, n);
                ptr::write_bytes(slots.as_mut_ptr(), 0, n);
                out.commit(n);
            }
        } else {
            let mut k = 0;
            for s in slots {
                if let Some(m) = s.take() {
                    // SAFETY: k < n <= room: inside the spare space; the handle moves there.
                    unsafe { dst.add(k).write(m) };
                    k += 1;
                }
            }
            // SAFETY: k handles were written.
            unsafe { out.commit(k) };
        }
        n
    }

    /// Frees many mbufs, returning runs of simple mbufs of one pool in bulk.
    pub fn free_bulk(mbufs: impl IntoIterator<Item = Mbuf>) {
        let mut batch = ArrayVec::<ObjPtr, 64>::new();
        let mut pool: *const PoolInner = ptr::null();
        for m in mbufs {
            // SAFETY: we own the chain and give it up; `batch` holds objects of `pool` only.
            unsafe { free_chain(m.into_raw().as_ptr(), &mut pool, &mut batch) };
        }
        // SAFETY: as above.
        unsafe { flush(pool, &mut batch) };
    }
}

/// Frees the chain at `h`: each segment whose last hold this was joins `batch`, which is
/// flushed first when the segment belongs to another pool than `*pool` or the batch is full.
///
/// # Safety
/// The caller owns `h`'s chain and gives it up; `batch` holds objects of `*pool` only.
#[inline(always)]
unsafe fn free_chain(
    h: *mut MbufHdr,
    pool: &mut *const PoolInner,
    batch: &mut ArrayVec<ObjPtr, 64>,
) {
    let mut seg = h;
    while !seg.is_null() {
        // SAFETY: a segment we own.
        let next = unsafe { (*seg).next };
        // SAFETY: as above; prefree decides whether it goes back to its pool.
        if let Some(s) = unsafe { prefree_seg(seg) } {
            // SAFETY: valid header.
            let p = unsafe { (*s).pool };
            if p != *pool || batch.is_full() {
                // SAFETY: `batch` holds objects of `*pool`, each freed once.
                unsafe { flush(*pool, batch) };
                *pool = p;
            }
            batch.push(obj_of(s));
        }
        seg = next;
    }
}

/// Returns a batch of objects to `pool`.
///
/// # Safety
/// Every object in `batch` belongs to `pool` and is no longer used.
unsafe fn flush(pool: *const PoolInner, batch: &mut ArrayVec<ObjPtr, 64>) {
    if !batch.is_empty() {
        // SAFETY: pools outlive their objects; the batch is the caller's to give back.
        unsafe { (*pool).put_raw(batch.as_ptr(), batch.len()) };
        batch.clear();
    }
}

/// Gives objects of simple mbufs of `pool` back to it.
///
/// # Safety
/// Every entry is written with an object of `pool` that the caller frees (once).
#[inline(always)]
unsafe fn put_written(pool: *const PoolInner, objs: &[MaybeUninit<ObjPtr>]) {
    if !objs.is_empty() {
        // SAFETY: written entries are `ObjPtr`s (`MaybeUninit` has its layout); pools outlive
        // their objects.
        unsafe { (*pool).put_raw(objs.as_ptr().cast::<ObjPtr>(), objs.len()) };
    }
}

/// `Mbuf::free_slots`' cold path: gives back the simple mbufs gathered so far (`objs`, of
/// `pool`), frees `h` by the general path, and returns the pool the next simple mbufs must
/// belong to (`h`'s, when it was one).
///
/// # Safety
/// As for [`put_written`]; `h` is an mbuf the caller owns and gives up.
#[cold]
#[inline(never)]
unsafe fn free_slot_slow(
    h: *mut MbufHdr,
    pool: *const PoolInner,
    objs: &[MaybeUninit<ObjPtr>],
) -> *const PoolInner {
    // SAFETY: per the contract.
    unsafe { put_written(pool, objs) };
    let mut pool = pool;
    let mut batch = ArrayVec::<ObjPtr, 64>::new();
    // SAFETY: `h` is ours; the batch starts empty.
    unsafe {
        free_chain(h, &mut pool, &mut batch);
        flush(pool, &mut batch);
    }
    pool
}

/// The pool object a header starts.
#[inline(always)]
fn obj_of(h: *mut MbufHdr) -> ObjPtr {
    // SAFETY: callers pass headers of live mbufs: non-null starts of pool objects.
    unsafe { crate::pool::obj_from_ptr(h.cast()) }
}

/// Attaches header `mi` to the buffer of segment `m` (or of `m`'s direct mbuf).
///
/// # Safety
/// `mi` is a fresh, exclusively owned, direct header; `m` is a valid segment kept alive by the
/// caller.
unsafe fn attach(mi: *mut MbufHdr, m: *mut MbufHdr) {
    // SAFETY: per the contract.
    unsafe {
        let md = if (*m).flags & F_INDIRECT != 0 { (*m).direct } else { m };
        (*md).refcnt.fetch_add(1, Ordering::AcqRel);
        (*mi).buf_addr = (*m).buf_addr;
        (*mi).buf_iova = (*m).buf_iova;
        (*mi).buf_len = (*m).buf_len;
        (*mi).data_off = (*m).data_off;
        (*mi).data_len = (*m).data_len;
        (*mi).direct = md;
        (*mi).flags |= F_INDIRECT;
    }
}

/// Gives an indirect header its own buffer back and drops its hold on the direct one; returns
/// the direct header if this was the last hold on it.
///
/// # Safety
/// `mi` is an indirect header being freed by its only owner.
unsafe fn detach(mi: *mut MbufHdr) -> Option<*mut MbufHdr> {
    // SAFETY: per the contract; the pool geometry is constant.
    unsafe {
        let md = (*mi).direct;
        let geo = (*(*mi).pool).mbuf.expect("mbufs come from mbuf pools");
        (*mi).buf_addr = mi.cast::<u8>().add(size_of::<MbufHdr>() + (*mi).priv_size as usize);
        (*mi).buf_iova = (*mi).own_buf_iova;
        (*mi).buf_len = geo.buf_len;
        (*mi).data_off = geo.headroom.min(geo.buf_len);
        (*mi).data_len = 0;
        (*mi).direct = ptr::null_mut();
        (*mi).flags &= !F_INDIRECT;
        prefree_seg(md)
    }
}

/// Drops one hold on segment `m`; returns it, restored to the pool invariants, when it is free.
///
/// # Safety
/// The caller owns one hold on `m` and gives it up.
#[inline]
unsafe fn prefree_seg(m: *mut MbufHdr) -> Option<*mut MbufHdr> {
    // SAFETY: per the contract.
    unsafe {
        let rc = &(*m).refcnt;
        // Sole holder (the common case): no atomic read-modify-write, as in DPDK.
        if rc.load(Ordering::Acquire) != 1 {
            // AcqRel: our earlier reads of the shared buffer happen before the last holder frees.
            if rc.fetch_sub(1, Ordering::AcqRel) != 1 {
                return None;
            }
            rc.store(1, Ordering::Relaxed);
        }
        if (*m).flags & F_INDIRECT != 0 {
            if let Some(md) = detach(m) {
                (*md).next = ptr::null_mut();
                (*md).nb_segs = 1;
                flush_one(md);
            }
        }
        (*m).next = ptr::null_mut();
        (*m).nb_segs = 1;
        Some(m)
    }
}

/// Returns one header to its pool.
///
/// # Safety
/// `m` is free (prefree returned it) and meets the pool invariants.
unsafe fn flush_one(m: *mut MbufHdr) {
    let obj = obj_of(m);
    // SAFETY: the header belongs to its pool and is free.
    unsafe { (*(*m).pool).put_raw(&obj, 1) };
}

impl Drop for Mbuf {
    fn drop(&mut self) {
        let mut seg = self.0.as_ptr();
        while !seg.is_null() {
            // SAFETY: this Mbuf owns its chain; each segment is freed once.
            unsafe {
                let next = (*seg).next;
                if let Some(s) = prefree_seg(seg) {
                    flush_one(s);
                }
                seg = next;
            }
        }
    }
}

impl fmt::Debug for Mbuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mbuf")
            .field("addr", &self.0)
            .field("pkt_len", &self.pkt_len())
            .field("data_len", &self.data_len())
            .field("nb_segs", &self.nb_segs())
            .field("port", &self.port())
            .field("ol_flags", &format_args!("{:#x}", self.ol_flags()))
            .finish()
    }
}

/// Iterator over a chain's segment data.
pub struct Segments<'a> {
    next: *mut MbufHdr,
    _m: core::marker::PhantomData<&'a Mbuf>,
}

impl<'a> Iterator for Segments<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.next.is_null() {
            return None;
        }
        let m = self.next;
        // SAFETY: a segment of the borrowed chain; the data range is inside its buffer and not
        // written while the chain is borrowed (see `Mbuf::data`).
        unsafe {
            self.next = (*m).next;
            let data = (*m).buf_addr.add((*m).data_off as usize);
            Some(core::slice::from_raw_parts(data, (*m).data_len as usize))
        }
    }
}

/// Iterator over a chain's segments as (data IOVA, data length): what a driver puts in its
/// scatter-gather entries.
pub struct SegmentIovas<'a> {
    next: *mut MbufHdr,
    _m: core::marker::PhantomData<&'a Mbuf>,
}

impl Iterator for SegmentIovas<'_> {
    type Item = (u64, u16);

    #[inline(always)]
    fn next(&mut self) -> Option<(u64, u16)> {
        if self.next.is_null() {
            return None;
        }
        let m = self.next;
        // SAFETY: a segment header of the borrowed chain (valid while the chain is borrowed).
        unsafe {
            self.next = (*m).next;
            Some(((*m).buf_iova + (*m).data_off as u64, (*m).data_len))
        }
    }
}

/// Containers an mbuf pool can allocate into in bulk: `Vec<Mbuf>` and `ArrayVec<Mbuf, N>`.
///
/// # Safety
/// `spare` returns a pointer valid for writes of the returned number of `Mbuf`s just past the
/// initialised elements, and `commit(n)` with `n` at most that number marks them initialised.
pub unsafe trait MbufBuf {
    /// Room for at least `n` more, if possible; returns (pointer past the end, room).
    fn spare(&mut self, n: usize) -> (*mut Mbuf, usize);
    /// Marks `n` more elements initialised.
    ///
    /// # Safety
    /// The `n` slots after the current length were written.
    unsafe fn commit(&mut self, n: usize);
}

// SAFETY: spare capacity of a Vec is writable; set_len after writing.
unsafe impl MbufBuf for Vec<Mbuf> {
    fn spare(&mut self, n: usize) -> (*mut Mbuf, usize) {
        self.reserve(n);
        let len = self.len();
        // SAFETY: len <= capacity.
        (unsafe { self.as_mut_ptr().add(len) }, self.capacity() - len)
    }
    unsafe fn commit(&mut self, n: usize) {
        // SAFETY: caller wrote the n slots.
        unsafe { self.set_len(self.len() + n) }
    }
}

// SAFETY: as for Vec, within the fixed capacity.
unsafe impl<const N: usize> MbufBuf for ArrayVec<Mbuf, N> {
    fn spare(&mut self, _: usize) -> (*mut Mbuf, usize) {
        let len = self.len();
        // SAFETY: len <= N.
        (unsafe { self.as_mut_ptr().add(len) }, N - len)
    }
    unsafe fn commit(&mut self, n: usize) {
        // SAFETY: caller wrote the n slots.
        unsafe { self.set_len(self.len() + n) }
    }
}

/// How to build an mbuf pool.
#[derive(Debug, Clone)]
pub struct MbufPoolConfig {
    /// Pool name.
    pub name: String,
    /// Number of mbufs.
    pub n: u32,
    /// Per-lcore cache size.
    pub cache_size: u32,
    /// Application-private bytes between header and buffer.
    pub priv_size: u16,
    /// Data room after the headroom.
    pub data_room: u16,
    /// Headroom in front of the data.
    pub headroom: u16,
    /// Hugepage policy.
    pub huge: HugePolicy,
}

impl MbufPoolConfig {
    /// `n` mbufs with DPDK's defaults: cache 256, no private area, 128 headroom, 2048 data room.
    pub fn new(name: &str, n: u32) -> Self {
        MbufPoolConfig {
            name: name.to_owned(),
            n,
            cache_size: crate::pool::DEFAULT_CACHE_SIZE,
            priv_size: 0,
            data_room: MBUF_DEFAULT_DATAROOM,
            headroom: MBUF_HEADROOM,
            huge: HugePolicy::Prefer,
        }
    }
}

/// A pool of mbufs (DPDK `rte_pktmbuf_pool_create`). Derefs to its [`Mempool`].
#[derive(Debug, Clone)]
pub struct MbufPool {
    pool: Mempool,
    geo: MbufGeometry,
}

impl core::ops::Deref for MbufPool {
    type Target = Mempool;
    fn deref(&self) -> &Mempool {
        &self.pool
    }
}

impl MbufPool {
    /// A pool of `n` mbufs of `data_room` bytes after the default headroom.
    pub fn create(
        name: &str,
        n: u32,
        cache_size: u32,
        data_room: u16,
    ) -> Result<Self, MempoolError> {
        let mut cfg = MbufPoolConfig::new(name, n);
        cfg.cache_size = cache_size;
        cfg.data_room = data_room;
        Self::with_config(&cfg)
    }

    /// A pool as configured.
    pub fn with_config(cfg: &MbufPoolConfig) -> Result<Self, MempoolError> {
        let buf_len = cfg.headroom as u32 + cfg.data_room as u32;
        let elt = size_of::<MbufHdr>() + cfg.priv_size as usize + buf_len as usize;
        let pcfg =
            MempoolConfig::new(&cfg.name, cfg.n, elt).cache_size(cfg.cache_size).huge(cfg.huge);
        if buf_len > u16::MAX as u32 {
            return Err(MempoolError::BadObjectSize {
                name: cfg.name.clone(),
                size: elt,
                max: size_of::<MbufHdr>() + cfg.priv_size as usize + u16::MAX as usize,
            });
        }
        let geo = MbufGeometry {
            priv_size: cfg.priv_size,
            headroom: cfg.headroom,
            buf_len: buf_len as u16,
        };
        let pool = Mempool::create_with(&pcfg, Some(geo), |inner, obj, _| {
            let h = obj.as_ptr().cast::<MbufHdr>();
            let buf = obj.as_ptr().wrapping_add(size_of::<MbufHdr>() + geo.priv_size as usize);
            let iova = inner.va_to_iova(buf as usize).unwrap_or(buf as u64);
            // SAFETY: `obj` is the start of a fresh, 64-byte aligned pool object large enough for
            // the header; nobody else can see it yet.
            unsafe {
                h.write(MbufHdr {
                    buf_addr: buf,
                    buf_iova: iova,
                    data_off: geo.headroom.min(geo.buf_len),
                    refcnt: AtomicU16::new(1),
                    nb_segs: 1,
                    port: MBUF_INVALID_PORT,
                    ol_flags: 0,
                    packet_type: 0,
                    pkt_len: 0,
                    data_len: 0,
                    vlan_tci: 0,
                    rss_hash: 0,
                    hash_hi: 0,
                    vlan_tci_outer: 0,
                    buf_len: geo.buf_len,
                    udata64: 0,
                    next: ptr::null_mut(),
                    pool: inner,
                    tx_offload: 0,
                    direct: ptr::null_mut(),
                    own_buf_iova: iova,
                    priv_size: geo.priv_size,
                    flags: 0,
                    timesync: 0,
                    dynfield: [0; 4],
                })
            };
        })?;
        Ok(MbufPool { pool, geo })
    }

    /// The underlying mempool.
    pub fn mempool(&self) -> &Mempool {
        &self.pool
    }

    /// Data room after the headroom.
    pub fn data_room(&self) -> u16 {
        self.geo.buf_len - self.geo.headroom
    }

    /// Headroom of a fresh mbuf.
    pub fn headroom(&self) -> u16 {
        self.geo.headroom
    }

    /// Buffer length (headroom + data room).
    pub fn buf_len(&self) -> u16 {
        self.geo.buf_len
    }

    #[inline(always)]
    fn reset(&self, m: &mut Mbuf) {
        let p = m.0.as_ptr();
        // SAFETY: a freshly allocated header this pool owns exclusively.
        unsafe {
            (*p).data_off = self.geo.headroom.min(self.geo.buf_len);
            (*p).data_len = 0;
            (*p).pkt_len = 0;
            (*p).port = MBUF_INVALID_PORT;
            (*p).ol_flags = 0;
            (*p).packet_type = 0;
            (*p).vlan_tci = 0;
            (*p).vlan_tci_outer = 0;
            (*p).rss_hash = 0;
            (*p).tx_offload = 0;
        }
    }

    /// Allocates one mbuf with its per-packet fields reset.
    #[inline]
    pub fn alloc(&self) -> Result<Mbuf, MempoolError> {
        let obj = self.pool.get()?;
        let mut m = Mbuf(obj_to_hdr(obj));
        self.reset(&mut m);
        Ok(m)
    }

    /// Allocates `n` mbufs (reset) into `out`, all or none.
    #[inline]
    pub fn alloc_bulk<B: MbufBuf>(&self, out: &mut B, n: usize) -> Result<(), MempoolError> {
        let (dst, room) = out.spare(n);
        if room < n {
            return Err(MempoolError::TableFull { len: 0, capacity: room, wanted: n });
        }
        // SAFETY: `dst` is valid for n writes.
        if !unsafe { self.alloc_bulk_raw(dst, n) } {
            return Err(self.pool.inner().exhausted(n));
        }
        for i in 0..n {
            // SAFETY: just written, exclusively ours.
            self.reset(unsafe { &mut *dst.add(i) });
        }
        // SAFETY: n slots written.
        unsafe { out.commit(n) };
        Ok(())
    }

    /// Fills every slot of `slots` (a driver's descriptor ring) with a fresh mbuf, without
    /// resetting its per-packet fields (lengths, offset, flags are what the previous user left;
    /// refcount 1, one segment, no next, as always): all or none. For a driver's RX refill,
    /// which sets every field when a packet arrives and so need not touch the headers now. False, with nothing
    /// allocated and no error value built (the RX refill path must not allocate), when the pool
    /// cannot give `slots.len()` objects.
    ///
    /// The slots must be empty: an mbuf still in one would be overwritten, never freed (a leak,
    /// which pool audits report; debug builds assert instead). Checking every slot here would
    /// cost the refill path a load and a branch per packet.
    #[inline]
    pub fn alloc_into_slots(&self, slots: &mut [Option<Mbuf>]) -> bool {
        debug_assert!(slots.iter().all(Option::is_none), "alloc_into_slots: a slot is in use");
        // SAFETY: `Option<Mbuf>` is one pointer with null as `None` (Mbuf is a transparent
        // NonNull; asserted below), so writing an object pointer into a slot makes it
        // `Some(mbuf)`. Overwriting a `Some` would only leak that mbuf (no double free, no
        // dangling handle); on `false` nothing was written.
        unsafe { self.alloc_bulk_raw(slots.as_mut_ptr().cast::<Mbuf>(), slots.len()) }
    }

    /// Where the data of a fresh mbuf starts, as an offset from the mbuf's address (its header),
    /// when the IOVA of every object is its address (IOVA-as-VA, what segments give): a driver
    /// can then post a buffer without reading its header. `None` otherwise.
    pub fn rx_data_offset(&self) -> Option<u64> {
        let iova_is_va = self.pool.segments().all(|s| s.iova_base() == s.base_addr() as u64);
        iova_is_va.then_some(
            (size_of::<MbufHdr>() + self.geo.priv_size as usize + self.geo.headroom as usize)
                as u64,
        )
    }

    /// Allocates `n` mbufs into `dst` without resetting them (the pool invariants hold:
    /// refcount 1, one segment, no next; lengths, offset and flags are whatever the previous user
    /// left). All or none. What a driver's RX refill uses.
    ///
    /// # Safety
    /// `dst` is valid for writes of `n` `Mbuf`s; on `true` the caller owns them.
    #[inline]
    pub unsafe fn alloc_bulk_raw(&self, dst: *mut Mbuf, n: usize) -> bool {
        // SAFETY: Mbuf and ObjPtr are both one non-null pointer to the object start.
        unsafe { self.pool.inner().get_raw(dst.cast::<ObjPtr>(), n) }
    }
}

#[inline(always)]
fn obj_to_hdr(obj: ObjPtr) -> NonNull<MbufHdr> {
    // The header sits at the start of its object, which is 64-byte aligned.
    NonNull::new(obj.as_ptr().cast()).expect("objects are non-null")
}

// Mbuf and ObjPtr must stay interchangeable for `alloc_bulk_raw`.
const _: () = assert!(size_of::<Mbuf>() == size_of::<ObjPtr>());
// And `Option<Mbuf>` with them, for `alloc_into_slots`.
const _: () = assert!(size_of::<Option<Mbuf>>() == size_of::<ObjPtr>());

pub mod held;

#[cfg(test)]
mod tests;
