//! The RX path: CQEs polled by owner bits, one mbuf per RQ WQE, refilled in bulk with one RQ
//! doorbell per burst (§4.3, §4.5 of the spec).
//!
//! - A CQE (validated: queue id, RQ flag, type) carries one packet (CQE_RX_OKAY) or up to four
//!   (CQE_RX_COALESCED_4; a zero length ends the list). Each packet takes the next posted
//!   descriptor, in order. A CQE whose packets do not all fit the caller's burst is kept and
//!   continued by the next call.
//! - CQE_RX_TRUNCATED (and an unknown type) consumes one descriptor: its mbuf is dropped and
//!   counted. CQE_RX_OBJECT_FENCE consumes none.
//! - A packet length of 0 or larger than the posted buffer is dropped and counted: the device is
//!   not trusted.
//! - Refill: as many fresh mbufs as were consumed, allocated in bulk; a dry pool is counted
//!   (`rx_nombuf`) and the refill retried on the next burst.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use gdma_defs::{
    CQE_RX_COALESCED_4, CQE_RX_OBJECT_FENCE, CQE_RX_OKAY, CQE_RX_TRUNCATED, DB_RQ,
    GDMA_WQE_BU_SIZE, InlineOobSize, ManaCqeHeader, RxCompFlags, WqDoorbell, WqeHeader,
};
use pmd_ethdev::pkts::Pkts;
use pmd_ethdev::queue::RxBurst;
use pmd_ethdev::stats::{Counter, RxQueueStats};
use pmd_mempool::mbuf::ol::{
    MBUF_F_RX_IP_CKSUM_BAD, MBUF_F_RX_IP_CKSUM_GOOD, MBUF_F_RX_L4_CKSUM_BAD,
    MBUF_F_RX_L4_CKSUM_GOOD, MBUF_F_RX_RSS_HASH, MBUF_F_RX_VLAN, MBUF_F_RX_VLAN_STRIPPED,
};
use pmd_mempool::shm::{SlotRing32, Window};
use pmd_mempool::{Mbuf, MbufPool};

use crate::cq::{CqEntry, CqPoller, Peek};
use crate::qmem::Ring;

/// Counters of an RX queue beyond the basic ones (shown as xstats).
#[derive(Debug, Default)]
pub struct RxXstats {
    /// CQEs naming another queue, with the SQ flag, or of an unknown type.
    pub cqe_bad: Counter,
    /// CQEs with a corrupt owner count.
    pub cqe_bad_owner: Counter,
    /// Packets with a length of 0 or larger than their buffer.
    pub bad_len: Counter,
    /// Packets the device truncated (CQE_RX_TRUNCATED).
    pub truncated: Counter,
    /// CQEs that arrived with no descriptor posted.
    pub cqe_unexpected: Counter,
    /// Fence completions.
    pub fences: Counter,
    /// CQEs carrying more than one packet.
    pub coalesced: Counter,
    /// Doorbells written.
    pub doorbells: Counter,
    /// Stripped VLAN tags that could not be put back (no headroom).
    pub vlan_reinsert_failed: Counter,
    /// Descriptors skipped to follow the device after CQEs were lost (their mbufs dropped).
    pub resync_skipped: Counter,
    /// CQEs whose `rx_wqe_offset` names no posted WQE (dropped once offsets are trusted).
    pub cqe_bad_offset: Counter,
}

/// Whether CQEs' `rx_wqe_offset` can be trusted to name the first WQE they consumed (the spec
/// marks it unconfirmed). Learnt from the first completions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Offsets {
    /// Not known yet (counts completions whose offset did not match).
    Learning(u8),
    /// Offsets name WQEs: the driver follows them (skipping descriptors whose CQE was lost).
    Trusted,
    /// Offsets are meaningless: strict in-order consumption alone (what DPDK does).
    Ignored,
}

/// Completions without a matching offset after which offsets are ignored.
const LEARN_LIMIT: u8 = 8;

/// Puts an 802.1Q tag with `tci` back after the MAC addresses (the device always strips tags;
/// an application that did not ask for VLAN_STRIP gets the frame as it was on the wire).
fn reinsert_vlan(m: &mut Mbuf, tci: u16) -> bool {
    if m.data_len() < 12 || m.prepend(4).is_none() {
        return false;
    }
    let Some(d) = m.data_mut() else { return false };
    d.copy_within(4..16, 0);
    d[12..14].copy_from_slice(&0x8100u16.to_be_bytes());
    d[14..16].copy_from_slice(&tci.to_be_bytes());
    true
}

/// What an RX queue needs to know about its device objects.
#[derive(Debug, Clone, Copy)]
pub struct RxQueueIds {
    /// RQ id.
    pub rq_id: u32,
    /// CQ id.
    pub cq_id: u32,
    /// Memory key of every SGE.
    pub mem_key: u32,
    /// Port id for received mbufs.
    pub port: u16,
}

/// Which RX results to report in mbufs.
#[derive(Debug, Clone, Copy, Default)]
pub struct RxReport {
    /// RSS hash (`MBUF_F_RX_RSS_HASH`).
    pub rss_hash: bool,
    /// Checksum results.
    pub checksum: bool,
    /// Stripped VLAN tags in `vlan_tci` (VLAN_STRIP asked for). Without it, a tag the device
    /// stripped is put back into the packet.
    pub vlan_strip: bool,
}

impl RxReport {
    /// The mbuf flags of a packet whose CQE carries `flags`.
    #[inline(always)]
    fn ol_flags(self, flags: RxCompFlags) -> u64 {
        let mut ol = 0;
        if self.rss_hash && flags.rx_hashtype() != 0 {
            ol |= MBUF_F_RX_RSS_HASH;
        }
        if self.checksum {
            if flags.rx_iphdr_csum_succeed() {
                ol |= MBUF_F_RX_IP_CKSUM_GOOD;
            } else if flags.rx_iphdr_csum_fail() {
                ol |= MBUF_F_RX_IP_CKSUM_BAD;
            }
            if flags.rx_tcp_csum_succeed() || flags.rx_udp_csum_succeed() {
                ol |= MBUF_F_RX_L4_CKSUM_GOOD;
            } else if flags.rx_tcp_csum_fail() || flags.rx_udp_csum_fail() {
                ol |= MBUF_F_RX_L4_CKSUM_BAD;
            }
        }
        if self.vlan_strip && flags.rx_vlantag_present() {
            ol |= MBUF_F_RX_VLAN | MBUF_F_RX_VLAN_STRIPPED;
        }
        ol
    }
}

/// A CQE whose packets are not all delivered yet.
#[derive(Debug, Clone, Copy, Default)]
struct Pending {
    flags: u32,
    lens: [u16; 4],
    hashes: [u32; 4],
    count: u8,
    next: u8,
}

/// A MANA RX queue's state (the poller's side).
pub struct ManaRxq {
    rq: Ring,
    /// The RQ as 32-byte slots (one WQE each).
    rq_slots: SlotRing32,
    cq: CqPoller,
    descs: Box<[Option<Mbuf>]>,
    desc_mask: u32,
    /// Next descriptor to complete, next to post (free-running).
    desc_head: u32,
    desc_tail: u32,
    /// Descriptors before this one had their mbuf's header prefetched (free-running).
    pf_next: u32,
    /// RQ position in basic units (one per WQE).
    tail_bu: u32,
    pool: MbufPool,
    buf_len: u32,
    headroom: u64,
    /// Offset from an mbuf's address to its data IOVA, for IOVA-as-VA pools.
    data_off: Option<u64>,
    pending: Pending,
    ids: RxQueueIds,
    report: RxReport,
    db: Window,
    db_off: usize,
    /// A WQE template: header and zeroed OOB (the SGE is per mbuf).
    hdr: u64,
    stats: Arc<RxQueueStats>,
    x: Arc<RxXstats>,
    offsets: Offsets,
    /// Test hooks (a slow burst).
    hooks: Arc<crate::device::Hooks>,
}

impl std::fmt::Debug for ManaRxq {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManaRxq")
            .field("rq", &self.ids.rq_id)
            .field("posted", &self.desc_tail.wrapping_sub(self.desc_head))
            .finish()
    }
}

impl ManaRxq {
    /// A queue over `rq` and `cq` rings with `nb_desc` descriptors (a power of two, at most the
    /// ring's WQEs and the CQ's entries), buffers from `pool`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        rq: Ring,
        cq: Ring,
        nb_desc: u32,
        pool: MbufPool,
        ids: RxQueueIds,
        report: RxReport,
        bar: Window,
        db_page_off: usize,
        stats: Arc<RxQueueStats>,
        x: Arc<RxXstats>,
    ) -> Option<Self> {
        if !nb_desc.is_power_of_two() || nb_desc > rq.size() / GDMA_WQE_BU_SIZE {
            return None;
        }
        let rq_slots = rq.win.slot_ring32()?;
        let cq = CqPoller::new(cq, ids.cq_id, bar, db_page_off)?;
        // One CQE per packet at worst: the CQ must hold every posted descriptor's.
        if cq.entries() < nb_desc {
            return None;
        }
        let buf_len = pool.data_room() as u32;
        let headroom = pool.headroom() as u64;
        let data_off = pool.rx_data_offset();
        Some(ManaRxq {
            rq,
            rq_slots,
            cq,
            descs: (0..nb_desc).map(|_| None).collect(),
            desc_mask: nb_desc - 1,
            desc_head: 0,
            desc_tail: 0,
            pf_next: 0,
            tail_bu: 0,
            pool,
            buf_len,
            headroom,
            data_off,
            pending: Pending::default(),
            ids,
            report,
            db: bar,
            db_off: db_page_off + DB_RQ as usize,
            hdr: WqeHeader::new(1, InlineOobSize::Small).0,
            stats,
            x,
            hooks: Arc::default(),
            offsets: Offsets::Learning(0),
        })
    }

    /// Test hooks this queue obeys.
    pub fn set_hooks(&mut self, hooks: Arc<crate::device::Hooks>) {
        self.hooks = hooks;
    }

    /// The slow-burst test hook: sleeps inside the gate.
    #[cold]
    #[inline(never)]
    fn hook_delay(&self) {
        let us = self.hooks.rx_burst_delay_us.load(Ordering::Relaxed);
        std::thread::sleep(std::time::Duration::from_micros(us));
    }

    /// Descriptors posted and not completed.
    pub fn posted(&self) -> u32 {
        self.desc_tail.wrapping_sub(self.desc_head)
    }

    /// Starts the (new, nothing posted) queue at the test positions near the 2^32 wrap the
    /// software device uses when told to (`gdma_defs::near_wrap_wq_start`): RQ position,
    /// descriptor counter and CQ index all cross 2^32 within a few laps. Descriptor i sits at
    /// byte `32 * i` (mod 2^32), so the descriptor counter starts at the position / 32.
    pub fn start_near_wrap(&mut self) {
        let bu = gdma_defs::near_wrap_wq_start(self.rq.size()) / GDMA_WQE_BU_SIZE;
        (self.desc_head, self.desc_tail, self.tail_bu) = (bu, bu, bu);
        let c = self.cq.near_wrap_index();
        self.cq.set_head(c);
    }

    /// Posts fresh buffers into every free descriptor and rings the RQ doorbell; returns how
    /// many were posted (fewer when the pool runs dry, which is counted).
    ///
    /// The mbufs are allocated straight into the descriptor slots (in chunks of at most 64, all
    /// or none each) and their headers are not touched: the WQE needs only the buffer's IOVA,
    /// which for IOVA-as-VA pools is the mbuf's address plus a constant.
    pub fn refill(&mut self) -> u32 {
        let nb = self.descs.len() as u32;
        let want = nb - self.posted();
        let w0 = self.hdr;
        let w3 = self.ids.mem_key as u64 | (self.buf_len as u64) << 32;
        let (ring, data_off, headroom) = (self.rq_slots, self.data_off, self.headroom);
        let mut tb = self.tail_bu;
        let mut done = 0;
        while done < want {
            let t = self.desc_tail.wrapping_add(done) & self.desc_mask;
            let n = (want - done).min(64).min(nb - t);
            let chunk = &mut self.descs[t as usize..(t + n) as usize];
            if !self.pool.alloc_into_slots(chunk) {
                self.stats.nombuf.inc();
                break;
            }
            // All or none: every slot of the chunk holds its fresh mbuf.
            let before = tb;
            tb = post_wqes(ring, chunk, tb, [w0, w3], data_off, headroom);
            // As many WQEs as slots (the flatten skipped none; else stop where they agree).
            let wrote = tb.wrapping_sub(before);
            done += wrote;
            if wrote < n {
                break;
            }
        }
        self.desc_tail = self.desc_tail.wrapping_add(done);
        self.tail_bu = tb;
        if done > 0 {
            let v = WqDoorbell::rq(self.ids.rq_id, self.tail_bu.wrapping_mul(GDMA_WQE_BU_SIZE));
            // RQ-R1: Release: the WQEs written above are visible before the doorbell (pairs with
            // the device's Acquire load of the doorbell slot).
            self.db.store_u64(self.db_off, v.0, Ordering::Release);
            self.x.doorbells.inc();
        }
        done
    }

    /// Prefetches the headers of the mbufs the next `n` completions will land in (those not
    /// prefetched by an earlier burst), so that their lines arrive while the application works
    /// on this burst instead of stalling the next one.
    #[inline(always)]
    fn prefetch_headers(&mut self, n: u32) {
        let end = self.desc_head.wrapping_add(n.min(self.posted()));
        let mut i = if end.wrapping_sub(self.pf_next) <= n { self.pf_next } else { self.desc_head };
        let descs = &self.descs[..=self.desc_mask as usize];
        while i != end {
            if let Some(m) = &descs[(i & self.desc_mask) as usize] {
                m.prefetch();
            }
            i = i.wrapping_add(1);
        }
        self.pf_next = end;
    }

    /// Checks a CQE's `rx_wqe_offset` (byte position of the first WQE it consumed: descriptor i
    /// sits at `32 * i`) against the next descriptor. True if the CQE is to be used; skips
    /// descriptors the device consumed for CQEs we never got. False: drop the CQE.
    #[inline(always)]
    fn follow(&mut self, offset: u32) -> bool {
        let expected = self.desc_head.wrapping_mul(GDMA_WQE_BU_SIZE);
        if offset == expected {
            if self.offsets != Offsets::Trusted {
                self.offsets = Offsets::Trusted;
            }
            return true;
        }
        let ahead = offset.wrapping_sub(expected);
        let in_window = ahead % GDMA_WQE_BU_SIZE == 0 && ahead / GDMA_WQE_BU_SIZE < self.posted();
        match self.offsets {
            Offsets::Ignored => true,
            Offsets::Learning(misses) => {
                self.offsets = if misses + 1 >= LEARN_LIMIT {
                    Offsets::Ignored
                } else {
                    Offsets::Learning(misses + 1)
                };
                true
            }
            Offsets::Trusted if in_window => {
                let skip = ahead / GDMA_WQE_BU_SIZE;
                for _ in 0..skip {
                    drop(self.take_desc());
                }
                self.x.resync_skipped.add(skip as u64);
                true
            }
            Offsets::Trusted => {
                self.x.cqe_bad_offset.inc();
                false
            }
        }
    }

    /// A CQE that consumed a WQE but carries no packet to deliver (truncated, corrupt): with
    /// trusted offsets the next good CQE realigns the ring, so nothing is consumed here;
    /// otherwise one descriptor is, as every RX CQE but a fence consumes one.
    #[inline(always)]
    fn consume_one_unless_trusted(&mut self) {
        if self.offsets != Offsets::Trusted && self.take_desc().is_none() {
            self.x.cqe_unexpected.inc();
        }
    }

    /// Takes the mbuf of the next posted descriptor (None if nothing is posted).
    #[inline(always)]
    fn take_desc(&mut self) -> Option<Mbuf> {
        if self.desc_head == self.desc_tail {
            return None;
        }
        let m = self.descs[(self.desc_head & self.desc_mask) as usize].take();
        self.desc_head = self.desc_head.wrapping_add(1);
        m
    }

    /// Frees every posted buffer (the queue is stopped and the device no longer writes it);
    /// returns how many.
    pub fn drain(&mut self) -> u32 {
        let mut n = 0;
        while self.desc_head != self.desc_tail {
            if self.take_desc().is_some() {
                n += 1;
            }
        }
        self.pending = Pending::default();
        n
    }

    /// The mbuf fields of a packet from CQE flags.
    #[inline(always)]
    fn ol_flags(&self, flags: RxCompFlags) -> u64 {
        self.report.ol_flags(flags)
    }

    /// Delivers the pending CQE's packets into `out` until it is done or `got == max`. Their
    /// lengths were checked when the CQE was read (none is 0 or larger than a buffer).
    #[inline(always)]
    fn deliver(&mut self, out: &mut Pkts, got: &mut usize, max: usize, bytes: &mut u64) {
        let p = self.pending;
        let want = ((p.count - p.next) as usize).min(max - *got);
        let (head, posted) = (self.desc_head, self.posted() as usize);
        let n = want.min(posted);
        if n < want {
            // More packets than posted buffers: the rest of the CQE is unusable.
            self.x.cqe_unexpected.add((want - n) as u64);
        }
        let flags = RxCompFlags(p.flags);
        let ol = self.ol_flags(flags);
        let (headroom, port, mask) = (self.headroom as u16, self.ids.port, self.desc_mask);
        let rss = ol & MBUF_F_RX_RSS_HASH != 0;
        let before = out.len();
        let mut len_sum = 0u64;
        // Locals only in the loop: stores through the mbuf pointers could alias `self` as far
        // as the compiler knows, which would make it reload every field each packet.
        let descs = &mut self.descs[..];
        for j in 0..n as u32 {
            let k = (p.next as usize + j as usize) & 3;
            let i = head.wrapping_add(j);
            // The header of the mbuf a few packets on (written below when its turn comes).
            if let Some(m) = &descs[(i.wrapping_add(PREFETCH_AHEAD) & mask) as usize] {
                m.prefetch();
            }
            let Some(mut m) = descs[(i & mask) as usize].take() else {
                continue;
            };
            let len = p.lens[k];
            // The refill left the header alone: every per-packet field is set here. A length
            // that does not fit (not possible with this pool's geometry) drops the packet.
            if !m.rx_init(headroom, len, port, ol) {
                continue;
            }
            if rss {
                m.set_rss_hash(p.hashes[k]);
            }
            len_sum += len as u64;
            // `out` has room: `max` is at most its room.
            let _ = out.push(m);
        }
        self.desc_head = head.wrapping_add(n as u32);
        self.pending.next += want as u8;
        let delivered = out.len() - before;
        if delivered < n {
            // Empty slots (never posted) or lengths that did not fit.
            self.x.bad_len.add((n - delivered) as u64);
            self.stats.errors.add((n - delivered) as u64);
        }
        if flags.rx_vlantag_present() {
            for m in &mut out.as_mut_slice()[before..] {
                self.vlan(m, ol, flags);
            }
        }
        *got += delivered;
        *bytes += len_sum;
    }

    /// A packet whose tag the device stripped: report it, or put it back.
    #[cold]
    fn vlan(&self, m: &mut Mbuf, ol: u64, flags: RxCompFlags) {
        if ol & MBUF_F_RX_VLAN != 0 {
            m.set_vlan_tci(flags.rx_vlan_id());
        } else if !reinsert_vlan(m, flags.rx_vlan_id()) {
            self.x.vlan_reinsert_failed.inc();
        }
    }
}

/// How many descriptors ahead of the one being delivered the RX path prefetches a header.
const PREFETCH_AHEAD: u32 = 8;

/// Writes an RQ WQE (header, zeroed small OOB, one SGE: address, memory key, length) for the
/// mbuf of each occupied slot, from RQ position `tb` on; returns the position after the last.
/// `w` holds the header word and the SGE's key-and-length word. The buffer's data IOVA is the
/// mbuf's address plus `data_off` for IOVA-as-VA pools (the header is not read), else read from
/// the header. Out of line, so the loop has the registers to itself.
#[inline(never)]
fn post_wqes(
    ring: SlotRing32,
    slots: &[Option<Mbuf>],
    mut tb: u32,
    w: [u64; 2],
    data_off: Option<u64>,
    headroom: u64,
) -> u32 {
    match data_off {
        Some(off) => {
            // Two at a time (a cache line of WQEs) while both slots are filled.
            let mut pairs = slots.chunks_exact(2);
            for pair in &mut pairs {
                if let [Some(a), Some(b)] = pair {
                    let ia = a.as_raw().as_ptr() as u64 + off;
                    let ib = b.as_raw().as_ptr() as u64 + off;
                    let at = tb.wrapping_mul(GDMA_WQE_BU_SIZE) as usize;
                    ring.write(at, [w[0], 0, ia, w[1]]);
                    ring.write(at + 32, [w[0], 0, ib, w[1]]);
                    tb = tb.wrapping_add(2);
                } else {
                    for m in pair.iter().flatten() {
                        let iova = m.as_raw().as_ptr() as u64 + off;
                        ring.write(
                            tb.wrapping_mul(GDMA_WQE_BU_SIZE) as usize,
                            [w[0], 0, iova, w[1]],
                        );
                        tb = tb.wrapping_add(1);
                    }
                }
            }
            for m in pairs.remainder().iter().flatten() {
                let iova = m.as_raw().as_ptr() as u64 + off;
                ring.write(tb.wrapping_mul(GDMA_WQE_BU_SIZE) as usize, [w[0], 0, iova, w[1]]);
                tb = tb.wrapping_add(1);
            }
        }
        None => {
            for m in slots.iter().flatten() {
                let iova = m.buf_iova() + headroom;
                ring.write(tb.wrapping_mul(GDMA_WQE_BU_SIZE) as usize, [w[0], 0, iova, w[1]]);
                tb = tb.wrapping_add(1);
            }
        }
    }
    tb
}

/// Why the fast path stopped.
enum Stop {
    /// The CQ is empty.
    Empty,
    /// Fewer than four packets of room left, or offsets still being learnt: the general path
    /// takes the next CQE.
    Full,
    /// The head CQE is not a plain one (left in the CQ): the general path takes it.
    Other,
}

impl ManaRxq {
    /// The fast path of a burst: takes completions while each is a plain one (CQE_RX_OKAY or
    /// CQE_RX_COALESCED_4 of this RQ, no VLAN tag, every length valid, naming the next
    /// descriptor when offsets are trusted, all of its packets fitting `room` and the posted
    /// buffers). Only the dwords it uses are read, straight from the ring, and each packet's
    /// header is set in place in the mbuf of the next posted descriptor (the refill left it
    /// untouched); at the end, the handles of all of them move to `out` as one copy. A CQE it
    /// does not take stays at the head of the CQ.
    #[inline(always)]
    fn fast(&mut self, out: &mut Pkts, room: usize, got: &mut usize, bytes: &mut u64) -> Stop {
        let check_offset = match self.offsets {
            Offsets::Trusted => true,
            Offsets::Ignored => false,
            Offsets::Learning(_) => return Stop::Full,
        };
        let posted = self.posted() as usize;
        let (rq_id, buf_len, report) = (self.ids.rq_id, self.buf_len, self.report);
        let (headroom, port, mask) = (self.headroom as u16, self.ids.port, self.desc_mask);
        let head = self.desc_head;
        let (rq_slots, tail_bu) = (self.rq_slots, self.tail_bu);
        // The CQ's reading state in locals (see `CqPoller::reader`), handed back below.
        let mut cq = self.cq.reader();
        // One slot per descriptor (`new`): masked indices need no bounds check.
        let descs = &mut self.descs[..=mask as usize];
        let (mut n, mut len_sum, mut coalesced) = (0usize, 0u64, 0u64);
        let (mut last_flags, mut last_ol) = (0, report.ol_flags(RxCompFlags(0)));
        let stop = loop {
            if n + 4 > room {
                break Stop::Full;
            }
            let (off, info) = match cq.peek() {
                Peek::Entry(off, info) => (off, info),
                Peek::Empty => break Stop::Empty,
                Peek::Other => break Stop::Other,
            };
            let t = ManaCqeHeader(cq.dword(off, 0)).cqe_type();
            let flags = RxCompFlags(cq.dword(off, 1));
            let next = head.wrapping_add(n as u32);
            if info.wq_num() != rq_id
                || info.is_sq()
                || !(t == CQE_RX_OKAY || t == CQE_RX_COALESCED_4)
                || (check_offset && cq.dword(off, 14) != next.wrapping_mul(GDMA_WQE_BU_SIZE))
                || flags.rx_vlantag_present()
            {
                break Stop::Other;
            }
            // Per-packet info k: dwords 2+3k (length in the low 16 bits) and 4+3k (hash); a
            // zero length ends a coalesced list. All four lengths are read (inside the entry
            // whatever its type); only the first `c` count.
            let lens = [2, 5, 8, 11].map(|d| cq.dword(off, d) & 0xffff);
            // How many packets (a zero length ends the list) and the longest of them.
            let (c, longest) = if t == CQE_RX_OKAY {
                ((lens[0] != 0) as usize, lens[0])
            } else if lens.iter().all(|&x| x != 0) {
                (4, lens[0].max(lens[1]).max(lens[2].max(lens[3])))
            } else {
                let c = lens.iter().take_while(|&&x| x != 0).count();
                (c, lens[..c].iter().copied().max().unwrap_or(0))
            };
            if c == 0 || longest > buf_len || n + c > posted {
                break Stop::Other;
            }
            // Most CQEs carry the flags of the one before.
            if flags.0 != last_flags {
                (last_flags, last_ol) = (flags.0, report.ol_flags(flags));
            }
            let ol = last_ol;
            let hashed = ol & MBUF_F_RX_RSS_HASH != 0;
            // Packet k lands in `slot` (checked above against the posted count: it holds its
            // mbuf).
            let mut land = |slot: &mut Option<Mbuf>, k: usize| {
                if let Some(m) = slot {
                    let hash = if hashed { cq.dword(off, 4 + 3 * k) } else { 0 };
                    m.rx_set(headroom, lens[k & 3] as u16, port, ol, hash);
                    len_sum += lens[k & 3] as u64;
                }
            };
            // The packets take the next `c` posted descriptors: one run of slots unless the
            // ring wraps inside it; a full coalesced CQE (the common case) as a fixed-length,
            // unrolled loop.
            let at = (next & mask) as usize;
            if let Some(run) = descs.get_mut(at..at + 4).filter(|_| c == 4)
                && let Ok(run) = <&mut [Option<Mbuf>; 4]>::try_from(run)
            {
                for (k, slot) in run.iter_mut().enumerate() {
                    land(slot, k);
                }
            } else if let Some(run) = descs.get_mut(at..at + c) {
                for (k, slot) in run.iter_mut().enumerate() {
                    land(slot, k);
                }
            } else {
                for k in 0..c {
                    land(&mut descs[(next.wrapping_add(k as u32) & mask) as usize], k);
                }
            }
            // The refill at the end of the burst posts a WQE for each of these packets into
            // RQ slots the device has read already (it completed WQEs up to these): ask for
            // their lines (two WQEs each) exclusive now, so that the ownership transfers
            // overlap the rest of the burst instead of stalling the refill's stores. Never
            // further: slots ahead are ones the device is about to read.
            let first = tail_bu.wrapping_add(n as u32).wrapping_mul(GDMA_WQE_BU_SIZE) as usize;
            rq_slots.prefetch_write(first);
            rq_slots.prefetch_write(first + (c - 1) * 32);
            cq.advance();
            coalesced += (c > 1) as u64;
            n += c;
        };
        self.cq.resume(cq);
        if n > 0 {
            let before = out.len();
            let start = (head & mask) as usize;
            let first = n.min(descs.len() - start);
            let mut consumed = Mbuf::take_slots_into(&mut descs[start..start + first], out);
            if consumed == first && first < n {
                consumed += Mbuf::take_slots_into(&mut descs[..n - first], out);
            }
            self.desc_head = head.wrapping_add(consumed as u32);
            let delivered = out.len() - before;
            if delivered < n {
                // Empty slots or a full burst (impossible: both were checked).
                self.x.cqe_unexpected.add((n - delivered) as u64);
            }
            *got += delivered;
            *bytes += len_sum;
            if coalesced > 0 {
                self.x.coalesced.add(coalesced);
            }
        }
        stop
    }

    /// The general path for one CQE: any type, offsets being learnt or followed past lost
    /// CQEs, packets that do not all fit (kept pending), corrupt entries.
    #[inline(never)]
    fn handle(&mut self, e: CqEntry, out: &mut Pkts, got: &mut usize, max: usize, bytes: &mut u64) {
        if e.info.wq_num() != self.ids.rq_id || e.info.is_sq() {
            self.x.cqe_bad.inc();
            return;
        }
        let t = ManaCqeHeader(e.data[0]).cqe_type();
        if matches!(t, CQE_RX_OKAY | CQE_RX_COALESCED_4 | CQE_RX_TRUNCATED)
            && !self.follow(e.data[14])
        {
            return;
        }
        match t {
            CQE_RX_OKAY | CQE_RX_COALESCED_4 => {
                let mut p = Pending { flags: e.data[1], ..Default::default() };
                let n = if t == CQE_RX_OKAY { 1 } else { 4 };
                let mut bad = false;
                for k in 0..n {
                    // Per-packet info k: dwords 2+3k (length in the low 16 bits) and 4+3k
                    // (hash).
                    let len = (e.data[2 + 3 * k] & 0xffff) as u16;
                    if len == 0 {
                        break;
                    }
                    bad |= len as u32 > self.buf_len;
                    p.lens[k] = len;
                    p.hashes[k] = e.data[4 + 3 * k];
                    p.count += 1;
                }
                if p.count == 0 || bad {
                    // No packet, or a length no posted buffer has: the whole CQE is corrupt
                    // (how many WQEs it stands for is unknown; the next good CQE tells).
                    self.x.bad_len.inc();
                    self.stats.errors.inc();
                    self.consume_one_unless_trusted();
                    return;
                }
                if p.count > 1 {
                    self.x.coalesced.inc();
                }
                self.pending = p;
            }
            CQE_RX_TRUNCATED => {
                // Its offset was just checked: it names the next descriptor.
                self.x.truncated.inc();
                self.stats.errors.inc();
                if self.take_desc().is_none() {
                    self.x.cqe_unexpected.inc();
                }
            }
            CQE_RX_OBJECT_FENCE => self.x.fences.inc(),
            _ => {
                self.x.cqe_bad.inc();
                self.stats.errors.inc();
                self.consume_one_unless_trusted();
            }
        }
        if self.pending.next < self.pending.count {
            self.deliver(out, got, max, bytes);
        }
    }
}

impl RxBurst for ManaRxq {
    #[inline]
    fn rx_burst(&mut self, out: &mut Pkts, max: usize) -> usize {
        if self.hooks.rx_burst_delay_us.load(Ordering::Relaxed) != 0 {
            self.hook_delay();
        }
        let max = max.min(out.room());
        let mut got = 0usize;
        let mut bytes = 0u64;
        // Up to a burst's worth of CQEs (four packets each when coalesced, one at worst).
        self.cq.prefetch((max as u32).div_ceil(4).clamp(1, 16));
        while got < max {
            if self.pending.next < self.pending.count {
                self.deliver(out, &mut got, max, &mut bytes);
                continue;
            }
            if let Stop::Empty = self.fast(out, max - got, &mut got, &mut bytes) {
                break;
            }
            if got == max {
                break;
            }
            // The general path takes the next CQE (partly delivered if need be).
            let Some(e) = self.cq.take(&self.x.cqe_bad_owner) else { break };
            self.handle(e, out, &mut got, max, &mut bytes);
        }
        if self.posted() < self.descs.len() as u32 {
            self.refill();
        }
        self.prefetch_headers(max as u32);
        // At least one CQ doorbell per lap.
        let every = self.cq.entries();
        self.cq.ring_if(every);
        if got > 0 {
            self.stats.packets.add(got as u64);
            self.stats.bytes.add(bytes);
        }
        got
    }

    fn stats(&self) -> &Arc<RxQueueStats> {
        &self.stats
    }
}
