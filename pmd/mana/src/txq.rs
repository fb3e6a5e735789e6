//! The TX path: WQEs built straight into the send queue ring, one doorbell per burst,
//! completions reaped before each burst.
//!
//! - WQE: header, inline OOB (8-byte short form; 24-byte long form when a VLAN tag is inserted or
//!   the vport offset does not fit the short form), one SGE per mbuf segment (at most 30). The OOB
//!   starts from a zeroed per-queue template (`vcq_num`, `vsq_frame`, vport offset, format) and
//!   gets the per-packet bits (checksum offloads, L4 offset, suppression).
//! - Suppression: every WQE is written with `suppress_txcqe_gen`. A burst's last WQE has its bit
//!   cleared before the doorbell once a quarter of the ring (at most 64 descriptors) was posted
//!   since the last WQE that asked, or when the ring is getting full; one CQE then completes all
//!   of them. So a CQE costs the device and the poller once per 64 packets, not once per burst
//!   (at ~7 packets a burst in io forwarding, this took the TX cost from about 59 to 36 cycles
//!   per packet), and at most 63 sent mbufs wait for a later completion (stop and close free
//!   them). Errors always get a CQE of their own (§10.2 pitfall 4).
//! - Completion walk (§4.5): descriptors are completed in order; a success CQE completes every
//!   suppressed descriptor up to the one it belongs to; an error CQE completes one descriptor.
//!   CQEs are validated (queue id, SQ flag, type, something outstanding); bad ones are counted and
//!   dropped.
//! - Freeing: sent mbufs wait in a `HeldRing`, which classifies each as it goes in from the
//!   header line the WQE was just built from. A completed run of plain mbufs (sole user of their
//!   own buffer, one segment, one pool) goes back to the pool cache as a copy of pointers, with
//!   no header read again; others take the general free. This took the TX cost at full bursts
//!   from about 33 to about 22 cycles per packet.
//! - Checksum offload: the driver seeds the L4 checksum field with the pseudo-header sum (the
//!   device completes it over the L4 header and payload).
//! - Packets the queue cannot take (ring or descriptors full, more than 30 segments) end the
//!   burst: the caller keeps them and everything after them.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use gdma_defs::{
    CQE_TX_GDMA_ERR, CQE_TX_INVALID_OOB, CQE_TX_MTU_DROP, CQE_TX_OKAY, CQE_TX_SA_DROP, DB_SQ,
    GDMA_WQE_BU_SIZE, InlineOobSize, MANA_LONG_PKT_FMT, MANA_SHORT_PKT_FMT, MAX_TX_WQE_SGL_ENTRIES,
    ManaCqeHeader, TxLongOob, TxShortOob, WqDoorbell, WqeHeader, is_tx_cqe_type, vsq_frame,
};
use pmd_ethdev::pkts::Pkts;
use pmd_ethdev::queue::TxBurst;
use pmd_ethdev::stats::{Counter, TxQueueStats};
use pmd_mempool::mbuf::ol::{
    MBUF_F_TX_IP_CKSUM, MBUF_F_TX_IPV4, MBUF_F_TX_IPV6, MBUF_F_TX_L4_MASK, MBUF_F_TX_TCP_CKSUM,
    MBUF_F_TX_UDP_CKSUM, MBUF_F_TX_VLAN,
};
use pmd_mempool::shm::{SlotRing32, Window};
use pmd_mempool::{HeldRing, Mbuf};

use crate::cq::{CqPoller, Peek};
use crate::dma::{DmaRanges, Range};
use crate::qmem::Ring;

/// Counters of a TX queue beyond the basic ones (shown as xstats).
#[derive(Debug, Default)]
pub struct TxXstats {
    /// CQEs naming another queue, with an unknown type, or with nothing outstanding.
    pub cqe_bad: Counter,
    /// CQEs with a corrupt owner count.
    pub cqe_bad_owner: Counter,
    /// Packets dropped by source-MAC enforcement.
    pub err_sa_drop: Counter,
    /// Packets dropped for the MTU.
    pub err_mtu_drop: Counter,
    /// Packets whose OOB the device refused.
    pub err_invalid_oob: Counter,
    /// WQEs the device found corrupt (the queue is then disabled by the device).
    pub err_gdma: Counter,
    /// Other error completions.
    pub err_other: Counter,
    /// CQEs whose `tx_wqe_offset` names no outstanding WQE (dropped once offsets are trusted).
    pub cqe_bad_offset: Counter,
    /// Bursts cut short because a packet had more than 30 segments.
    pub too_many_segs: Counter,
    /// Bursts cut short because a packet's data is in memory the device cannot reach (a pool
    /// not registered with it; see `crate::dma`).
    pub unreachable: Counter,
    /// Bursts cut short because the ring or the descriptors were full.
    pub ring_full: Counter,
    /// Doorbells written.
    pub doorbells: Counter,
    /// Completions taken (CQEs that completed descriptors, successes and errors).
    pub completions: Counter,
    /// The device's id of the SQ now in use (a gauge; changes when the queue is recreated).
    pub sq_id: std::sync::atomic::AtomicU64,
}

/// What a TX queue needs to know about its device objects.
#[derive(Debug, Clone, Copy)]
pub struct TxQueueIds {
    /// SQ id.
    pub sq_id: u32,
    /// CQ id.
    pub cq_id: u32,
    /// Doorbell page of the pair.
    pub db_page: u32,
    /// TX vport offset.
    pub vport_offset: u16,
    /// Whether the short OOB form may carry the offset.
    pub short_form_allowed: bool,
    /// Memory key of every SGE.
    pub mem_key: u32,
}

/// What the completion walk needs of a posted WQE (its mbuf is in a slot array of its own, so
/// completed runs go back to the pool straight from the slots).
///
/// Packed in one word (bits 0..32: SQ position of the WQE in basic units, free-running; 32..40:
/// its size in basic units; bit 40: its completion is suppressed), so that the TX loop writes
/// it with one store.
#[derive(Debug, Default, Clone, Copy)]
struct Meta(u64);

impl Meta {
    const SUPPRESSED: u64 = 1 << 40;

    #[inline(always)]
    fn new(pos: u32, bu: u32, suppressed: bool) -> Self {
        Meta(
            pos as u64 | ((bu & 0xff) as u64) << 32 | if suppressed { Self::SUPPRESSED } else { 0 },
        )
    }

    /// SQ position of the WQE (basic units, free-running).
    #[inline(always)]
    fn pos(self) -> u32 {
        self.0 as u32
    }

    /// WQE size in basic units.
    #[inline(always)]
    fn bu(self) -> u32 {
        (self.0 >> 32) as u8 as u32
    }

    /// Whether its completion is suppressed.
    #[inline(always)]
    fn suppressed(self) -> bool {
        self.0 & Self::SUPPRESSED != 0
    }
}

/// `tx_wqe_offset` is 27 bits wide (§4.4).
const TX_OFFSET_MASK: u32 = (1 << 27) - 1;

/// Whether CQEs' `tx_wqe_offset` can be trusted to name the WQE they complete (the spec marks
/// the unit unconfirmed: some devices write 0). Learnt from the first completions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Offsets {
    /// Not known yet (counts the completions whose offset did not match).
    Learning(u8),
    /// Offsets name WQEs: a CQE completes every descriptor up to the one it names.
    Trusted,
    /// Offsets are meaningless: the in-order walk alone decides (what DPDK does).
    Ignored,
}

/// Completions without a matching offset after which offsets are ignored.
const LEARN_LIMIT: u8 = 8;

/// A MANA TX queue's state (the poller's side).
pub struct ManaTxq {
    sq: Ring,
    /// The SQ as 32-byte slots (basic units).
    sq_slots: SlotRing32,
    /// SQ ring size in basic units (a power of two).
    sq_bu: u32,
    /// WQ positions in basic units, free-running: posted and completed.
    tail_bu: u32,
    head_bu: u32,
    cq: CqPoller,
    /// The mbuf of each outstanding descriptor (classified as it goes in, so that completed
    /// runs of plain mbufs go back to their pool without their headers being read again).
    held: HeldRing,
    meta: Box<[Meta]>,
    /// The last descriptor of each outstanding burst (free-running indices, oldest first): the
    /// WQE a burst's success CQE names.
    ends: Box<[u32]>,
    end_head: u32,
    end_tail: u32,
    /// The first descriptor posted since the last one that asked for a completion.
    comp_from: u32,
    /// Descriptors after which a completion is asked for (a quarter of the ring, at most 64).
    comp_every: u32,
    desc_mask: u32,
    desc_head: u32,
    desc_tail: u32,
    db: Window,
    db_off: usize,
    ids: TxQueueIds,
    short_tmpl: TxShortOob,
    long_tmpl: TxLongOob,
    stats: Arc<TxQueueStats>,
    x: Arc<TxXstats>,
    offsets: Offsets,
    /// Memory the device can reach, and the range the last packet's data was in.
    dma: Arc<DmaRanges>,
    reach: Range,
}

impl std::fmt::Debug for ManaTxq {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManaTxq")
            .field("sq", &self.ids.sq_id)
            .field("tail_bu", &self.tail_bu)
            .field("head_bu", &self.head_bu)
            .field("outstanding", &self.desc_tail.wrapping_sub(self.desc_head))
            .finish()
    }
}

impl ManaTxq {
    /// A queue over `sq` and `cq` rings, `nb_desc` descriptors (a power of two), device objects
    /// `ids`, doorbells in `bar` at page offset `db_page_off`, sending only data inside `dma`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        sq: Ring,
        cq: Ring,
        nb_desc: u32,
        ids: TxQueueIds,
        bar: Window,
        db_page_off: usize,
        stats: Arc<TxQueueStats>,
        x: Arc<TxXstats>,
        dma: Arc<DmaRanges>,
    ) -> Option<Self> {
        if !nb_desc.is_power_of_two() || !sq.size().is_power_of_two() {
            return None;
        }
        let sq_slots = sq.win.slot_ring32()?;
        let cq = CqPoller::new(cq, ids.cq_id, bar, db_page_off)?;
        // Every descriptor may complete with an error CQE of its own: the CQ must hold them all.
        if cq.entries() < nb_desc {
            return None;
        }
        let short_tmpl = TxShortOob::ZERO
            .with_vcq_num(ids.cq_id)
            .with_vsq_frame(vsq_frame(ids.sq_id))
            .with_short_vp_offset(if ids.short_form_allowed { ids.vport_offset as u8 } else { 0 })
            .with_suppress_txcqe_gen(true);
        let long_tmpl = TxLongOob::ZERO.with_long_vp_offset(if ids.short_form_allowed {
            0
        } else {
            ids.vport_offset
        });
        Some(ManaTxq {
            sq_bu: sq.size() / GDMA_WQE_BU_SIZE,
            sq,
            sq_slots,
            tail_bu: 0,
            head_bu: 0,
            cq,
            held: HeldRing::new(nb_desc as usize),
            meta: vec![Meta::default(); nb_desc as usize].into_boxed_slice(),
            ends: vec![0; nb_desc as usize].into_boxed_slice(),
            end_head: 0,
            end_tail: 0,
            comp_from: 0,
            comp_every: (nb_desc / 4).clamp(1, 64),
            desc_mask: nb_desc - 1,
            desc_head: 0,
            desc_tail: 0,
            db: bar,
            db_off: db_page_off + DB_SQ as usize,
            ids,
            short_tmpl,
            long_tmpl,
            stats,
            x,
            offsets: Offsets::Learning(0),
            dma,
            reach: Range::default(),
        })
    }

    /// Whether the device can read `len` bytes at `iova`; moves `reach` to the range that holds
    /// them.
    #[cold]
    #[inline(never)]
    fn reachable(&self, reach: &mut Range, iova: u64, len: u64) -> bool {
        match self.dma.find(iova, len) {
            Some(r) => {
                *reach = r;
                true
            }
            None => false,
        }
    }

    /// The descriptor index (free-running) of the outstanding WQE at SQ position `o` (27-bit),
    /// if there is one.
    fn find_offset(&self, o: u32) -> Option<u32> {
        let mut i = self.desc_head;
        while i != self.desc_tail {
            if self.meta[(i & self.desc_mask) as usize].pos() & TX_OFFSET_MASK == o {
                return Some(i);
            }
            i = i.wrapping_add(1);
        }
        None
    }

    /// The oldest outstanding burst's last descriptor, if any burst is outstanding.
    #[inline(always)]
    fn first_end(&self) -> Option<u32> {
        (self.end_head != self.end_tail)
            .then(|| self.ends[(self.end_head & self.desc_mask) as usize])
    }

    /// The last descriptor a CQE of type `t` completes by the in-order rule (offsets unknown):
    /// a success belongs to the last WQE of a burst, so every suppressed one before it
    /// completed too; an error completes one.
    fn in_order_upto(&self, t: u8) -> u32 {
        if t != CQE_TX_OKAY {
            return self.desc_head;
        }
        let mut i = self.desc_head;
        loop {
            let m = self.meta[(i & self.desc_mask) as usize];
            // Never walk past what was posted.
            if !m.suppressed() || i.wrapping_add(1) == self.desc_tail {
                return i;
            }
            i = i.wrapping_add(1);
        }
    }

    /// Completes every descriptor up to and including `upto` (outstanding): their mbufs go back
    /// to the pool in bulk, straight from the slots.
    #[inline(always)]
    fn complete_upto(&mut self, upto: u32) {
        let n = upto.wrapping_sub(self.desc_head) as usize + 1;
        self.held.release((self.desc_head & self.desc_mask) as usize, n);
        let last = self.meta[(upto & self.desc_mask) as usize];
        self.head_bu = last.pos().wrapping_add(last.bu());
        self.desc_head = upto.wrapping_add(1);
        // Bursts ending at or before `upto` are done.
        while let Some(e) = self.first_end() {
            if (e.wrapping_sub(self.desc_head) as i32) >= 0 {
                break;
            }
            self.end_head = self.end_head.wrapping_add(1);
        }
    }

    /// Starts the (new, empty) queue at the test positions near the 2^32 wrap the software
    /// device uses when told to (`gdma_defs::near_wrap_wq_start`): SQ position, descriptor
    /// counter and CQ index all cross 2^32 within a few laps.
    pub fn start_near_wrap(&mut self) {
        let bu = gdma_defs::near_wrap_wq_start(self.sq.size()) / GDMA_WQE_BU_SIZE;
        (self.tail_bu, self.head_bu) = (bu, bu);
        let d = 0u32.wrapping_sub(3 * self.held.len() as u32);
        (self.desc_head, self.desc_tail, self.comp_from) = (d, d, d);
        let c = self.cq.near_wrap_index();
        self.cq.set_head(c);
    }

    /// The SQ and CQ rings (to recreate the queue on them).
    pub fn rings(&self) -> (Ring, Ring) {
        (self.sq, self.cq.ring())
    }

    /// Packets handed to the device and not completed yet.
    pub fn outstanding(&self) -> u32 {
        self.desc_tail.wrapping_sub(self.desc_head)
    }

    /// The SQ position in basic units (posted, completed).
    pub fn positions(&self) -> (u32, u32) {
        (self.tail_bu, self.head_bu)
    }

    /// Takes completions; frees the mbufs of completed packets.
    #[inline]
    pub fn reap(&mut self) {
        self.cq.prefetch(2);
        loop {
            // The common case, read in place: a success for the oldest burst's last WQE.
            let mut cq = self.cq.reader();
            let head = cq.peek();
            if let Peek::Empty = head {
                break;
            }
            if let Peek::Entry(off, info) = head
                && self.offsets == Offsets::Trusted
                && info.wq_num() == self.ids.sq_id
                && info.is_sq()
                && ManaCqeHeader(cq.dword(off, 0)).cqe_type() == CQE_TX_OKAY
                && let Some(end) = self.first_end()
                && self.meta[(end & self.desc_mask) as usize].pos() & TX_OFFSET_MASK
                    == cq.dword(off, 2) >> 5
            {
                cq.advance();
                self.cq.resume(cq);
                self.complete_upto(end);
                self.x.completions.inc();
                continue;
            }
            let Some(e) = self.cq.take(&self.x.cqe_bad_owner) else { break };
            let t = ManaCqeHeader(e.data[0]).cqe_type();
            if e.info.wq_num() != self.ids.sq_id
                || !e.info.is_sq()
                || !is_tx_cqe_type(t)
                || self.desc_head == self.desc_tail
            {
                self.x.cqe_bad.inc();
                continue;
            }
            // The WQE the CQE names (TxCompOffsets in dword 2: offset in bits 5..32). The common
            // case (a success for the oldest burst's last WQE) was taken above.
            let o = e.data[2] >> 5;
            let Some(upto) = self.slow_upto(t, o) else { continue };
            self.complete_upto(upto);
            self.x.completions.inc();
            if t != CQE_TX_OKAY {
                self.count_error(t);
            }
        }
        // At least one doorbell per lap (the device stalls a CQ not rung for several laps).
        let every = self.cq.entries();
        self.cq.ring_if(every);
    }

    /// The last descriptor a CQE completes when it is not the common case (an error, offsets
    /// not trusted, a CQE for another WQE); `None` to drop it.
    #[cold]
    #[inline(never)]
    fn slow_upto(&mut self, t: u8, o: u32) -> Option<u32> {
        match self.offsets {
            Offsets::Ignored => Some(self.in_order_upto(t)),
            Offsets::Trusted => match self.find_offset(o) {
                Some(k) => Some(k),
                None => {
                    // A CQE for no WQE we have outstanding: corrupt. The next good one
                    // completes whatever this one would have.
                    self.x.cqe_bad_offset.inc();
                    None
                }
            },
            Offsets::Learning(misses) => match self.find_offset(o) {
                Some(k) => {
                    self.offsets = Offsets::Trusted;
                    Some(k)
                }
                None => {
                    self.offsets = if misses + 1 >= LEARN_LIMIT {
                        Offsets::Ignored
                    } else {
                        Offsets::Learning(misses + 1)
                    };
                    Some(self.in_order_upto(t))
                }
            },
        }
    }

    #[cold]
    fn count_error(&self, t: u8) {
        self.stats.errors.inc();
        match t {
            CQE_TX_SA_DROP => self.x.err_sa_drop.inc(),
            CQE_TX_MTU_DROP => self.x.err_mtu_drop.inc(),
            CQE_TX_INVALID_OOB => self.x.err_invalid_oob.inc(),
            CQE_TX_GDMA_ERR => self.x.err_gdma.inc(),
            _ => self.x.err_other.inc(),
        }
    }

    /// Frees every packet not completed (the queue is stopped and the device no longer reads
    /// it); returns how many.
    pub fn drain(&mut self) -> u32 {
        let n = self.held.release_all() as u32;
        self.desc_head = self.desc_tail;
        self.end_head = self.end_tail;
        self.comp_from = self.desc_tail;
        self.head_bu = self.tail_bu;
        n
    }

    /// Writes `bytes` at WQ position `pos_bu` (wrapping at the end of the ring).
    #[inline(always)]
    fn write_wqe(&self, pos_bu: u32, bytes: &[u8]) {
        let size = self.sq.size() as usize;
        let off = ((pos_bu.wrapping_mul(GDMA_WQE_BU_SIZE)) as usize) & (size - 1);
        let first = bytes.len().min(size - off);
        self.sq.win.write(off, &bytes[..first]);
        if first < bytes.len() {
            self.sq.win.write(0, &bytes[first..]);
        }
    }

    /// Builds the WQE of `m` into `buf`; returns its length in bytes (a multiple of 32), or
    /// `None` if the packet cannot be sent (too many segments).
    #[inline(always)]
    fn build(&self, m: &mut Mbuf, buf: &mut [u8; 512]) -> Option<usize> {
        let nseg = m.nb_segs() as u32;
        if nseg == 0 || nseg > MAX_TX_WQE_SGL_ENTRIES {
            return None;
        }
        let fl = m.ol_flags();
        let mut short = self.short_tmpl;
        if fl & (MBUF_F_TX_IP_CKSUM | MBUF_F_TX_L4_MASK) != 0 {
            short = self.offloads(m, short, fl);
        }
        let long = fl & MBUF_F_TX_VLAN != 0 || !self.ids.short_form_allowed;
        let (oob_size, sgl_at) =
            if long { (InlineOobSize::Large, 32) } else { (InlineOobSize::Small, 16) };
        let len = (sgl_at + 16 * nseg as usize).next_multiple_of(GDMA_WQE_BU_SIZE as usize);
        buf[..8].copy_from_slice(&WqeHeader::new(nseg as u8, oob_size).0.to_le_bytes());
        if long {
            let tci = m.vlan_tci();
            let mut l = self.long_tmpl;
            if fl & MBUF_F_TX_VLAN != 0 {
                l = l
                    .with_inject_vlan_pri_tag(true)
                    .with_pcp((tci >> 13) as u8)
                    .with_dei(tci & 0x1000 != 0)
                    .with_vlan_id(tci & 0xfff);
            }
            short = short.with_pkt_fmt(MANA_LONG_PKT_FMT);
            buf[8..16].copy_from_slice(&short.0.to_le_bytes());
            buf[16..24].copy_from_slice(&l.0.to_le_bytes());
            buf[24..32].fill(0);
        } else {
            short = short.with_pkt_fmt(MANA_SHORT_PKT_FMT);
            buf[8..16].copy_from_slice(&short.0.to_le_bytes());
        }
        let mut at = sgl_at;
        for (iova, dlen) in m.segment_iovas() {
            buf[at..at + 8].copy_from_slice(&iova.to_le_bytes());
            buf[at + 8..at + 12].copy_from_slice(&self.ids.mem_key.to_le_bytes());
            buf[at + 12..at + 16].copy_from_slice(&(dlen as u32).to_le_bytes());
            at += 16;
        }
        buf[at..len].fill(0);
        Some(len)
    }

    /// Builds and writes the WQE of a packet that is not the common case (several segments,
    /// offloads, VLAN insertion, the long OOB form) at SQ position `tb`; returns its size in
    /// basic units, or `None` (counted) if it cannot go: more than 30 segments, or more basic
    /// units than `room_bu`.
    #[cold]
    #[inline(never)]
    fn post_slow(&self, m: &mut Mbuf, tb: u32, room_bu: u32) -> Option<u32> {
        let mut buf = [0u8; 512];
        let Some(len) = self.build(m, &mut buf) else {
            self.x.too_many_segs.inc();
            return None;
        };
        let bu = (len / GDMA_WQE_BU_SIZE as usize) as u32;
        if room_bu < bu {
            self.x.ring_full.inc();
            return None;
        }
        self.write_wqe(tb, &buf[..len]);
        Some(bu)
    }

    /// Checksum offload bits of a packet, and the pseudo-header seed in its L4 checksum field.
    #[cold]
    fn offloads(&self, m: &mut Mbuf, short: TxShortOob, fl: u64) -> TxShortOob {
        let (l2, l3, _) = m.tx_lens();
        let trans_off = l2 as u16 + l3;
        let ipv4 = fl & MBUF_F_TX_IPV4 != 0;
        let ipv6 = fl & MBUF_F_TX_IPV6 != 0;
        let mut s = short.with_is_outer_ipv4(ipv4).with_is_outer_ipv6(ipv6);
        if fl & MBUF_F_TX_IP_CKSUM != 0 {
            s = s.with_comp_iphdr_csum(true);
        }
        let l4 = fl & MBUF_F_TX_L4_MASK;
        if l4 == MBUF_F_TX_TCP_CKSUM || l4 == MBUF_F_TX_UDP_CKSUM {
            let tcp = l4 == MBUF_F_TX_TCP_CKSUM;
            s = s.with_trans_off(trans_off);
            s = if tcp { s.with_comp_tcp_csum(true) } else { s.with_comp_udp_csum(true) };
            let total = m.pkt_len();
            if let Some(d) = m.data_mut() {
                seed_pseudo_header(d, l2 as usize, l3 as usize, ipv6, tcp, total);
            }
        }
        s
    }
}

/// Writes the pseudo-header sum (not complemented) into the TCP/UDP checksum field, as the
/// device expects when it completes the checksum. Headers must be in the first segment; nothing
/// is written if they are not.
fn seed_pseudo_header(d: &mut [u8], l2: usize, l3: usize, ipv6: bool, tcp: bool, total: u32) {
    let l4 = l2 + l3;
    let field = l4 + if tcp { 16 } else { 6 };
    if d.len() < field + 2 || total < l4 as u32 {
        return;
    }
    let l4_len = total - l4 as u32;
    let (addrs, proto) = if ipv6 {
        if d.len() < l2 + 40 {
            return;
        }
        (&d[l2 + 8..l2 + 40], d[l2 + 6])
    } else {
        if d.len() < l2 + 20 {
            return;
        }
        (&d[l2 + 12..l2 + 20], d[l2 + 9])
    };
    let mut sum: u32 = 0;
    for c in addrs.chunks_exact(2) {
        sum += u16::from_be_bytes([c[0], c[1]]) as u32;
    }
    sum += proto as u32 + (l4_len & 0xffff) + (l4_len >> 16);
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    d[field..field + 2].copy_from_slice(&(sum as u16).to_be_bytes());
}

/// Whether `m` takes the common path: `fast_segs` segments (1, or 0 when the short OOB form is
/// not allowed, so that no packet does) and no offload.
#[inline(always)]
fn is_common(m: &Mbuf, fast_segs: u16) -> bool {
    m.nb_segs() == fast_segs
        && m.ol_flags() & (MBUF_F_TX_IP_CKSUM | MBUF_F_TX_L4_MASK | MBUF_F_TX_VLAN) == 0
}

/// Writes the WQEs of the leading common packets of `pkts` (one segment, no offload, data inside
/// `reach`: header, `w[1]` as the short OOB, one SGE) at consecutive SQ positions from `tb` on;
/// returns how many it wrote and their bytes. `w` holds the header word, the OOB word and the
/// memory key. Out of line, so that the loop has the registers to itself (inline, the OOB word,
/// the key and the byte count lived on the stack).
#[inline(never)]
fn post_common(
    ring: SlotRing32,
    pkts: &[Mbuf],
    tb: u32,
    w: [u64; 3],
    fast_segs: u16,
    reach: Range,
) -> (u32, u64) {
    let mut bytes = 0u64;
    let mut at = tb.wrapping_mul(GDMA_WQE_BU_SIZE) as usize;
    for (k, m) in pkts.iter().enumerate() {
        let (iova, dlen) = m.data_iova_len();
        if !is_common(m, fast_segs) || !reach.holds_start(iova) {
            return (k as u32, bytes);
        }
        ring.write(at, [w[0], w[1], iova, w[2] | (dlen as u64) << 32]);
        // One segment: what goes on the wire is its data.
        bytes += dlen as u64;
        at = at.wrapping_add(GDMA_WQE_BU_SIZE as usize);
    }
    (pkts.len() as u32, bytes)
}

impl TxBurst for ManaTxq {
    #[inline]
    fn tx_burst(&mut self, pkts: &mut Pkts) -> usize {
        if self.desc_head != self.desc_tail {
            self.reap();
        }
        let size = self.sq.size() as usize;
        let nb = self.held.len() as u32;
        let free_desc = nb - self.desc_tail.wrapping_sub(self.desc_head);
        let want = pkts.len().min(free_desc as usize);
        if want < pkts.len() {
            self.x.ring_full.inc();
        }
        let mut room_bu = self.sq_bu - self.tail_bu.wrapping_sub(self.head_bu);
        let (start_desc, mask) = (self.desc_tail, self.desc_mask);
        let mut tb = self.tail_bu;
        let mut bytes = 0u64;
        // The common WQE: header (one SGE, small OOB), the queue's short OOB, one SGE.
        let w0 = WqeHeader::new(1, InlineOobSize::Small).0;
        let w1 = self.short_tmpl.with_pkt_fmt(MANA_SHORT_PKT_FMT).0;
        let key = self.ids.mem_key as u64;
        // The fast path takes one-segment packets, or none when the short form is not allowed
        // (no packet has 0 segments).
        let fast_segs = self.ids.short_form_allowed as u16;
        let ring = self.sq_slots;
        // Out of `self` while the loop writes it, so the slow path may borrow `self`; one slot
        // per descriptor, so masked indices need no bounds check.
        let mut meta = std::mem::take(&mut self.meta);
        let metas = &mut meta[..=mask as usize];
        let slice = &mut pkts.as_mut_slice()[..want];
        let mut n = 0usize;
        let mut reach = self.reach;
        while n < slice.len() {
            // A run of common packets: one segment, no offload, data in the memory range of the
            // one before, 32 bytes and one basic unit each, as many as there is room for.
            let run_start = n;
            let run_end = n + (slice.len() - n).min(room_bu as usize);
            let run = &slice[run_start..run_end];
            let (k, run_bytes) = post_common(ring, run, tb, [w0, w1, key], fast_segs, reach);
            bytes += run_bytes;
            // The run's WQEs are one basic unit each, at consecutive positions.
            let d0 = start_desc.wrapping_add(run_start as u32);
            for j in 0..k {
                metas[(d0.wrapping_add(j) & mask) as usize] =
                    Meta::new(tb.wrapping_add(j), 1, true);
            }
            tb = tb.wrapping_add(k);
            n += k as usize;
            room_bu -= (n - run_start) as u32;
            if n == slice.len() {
                break;
            }
            let m = &mut slice[n];
            // Every SGE must point into memory the device can reach: else the device would
            // fail the WQE and disable the queue.
            if !m.segment_iovas().all(|(iova, len)| {
                reach.holds(iova, len as u64) || self.reachable(&mut reach, iova, len as u64)
            }) {
                self.x.unreachable.inc();
                break;
            }
            if is_common(m, fast_segs) {
                if room_bu == 0 {
                    // A common packet the ring has no room for.
                    self.x.ring_full.inc();
                    break;
                }
                // Its data is in another memory range than the packet before's (`reach` now):
                // a new run.
                continue;
            }
            // Several segments, offloads, or the short form not allowed.
            let Some(bu) = self.post_slow(m, tb, room_bu) else { break };
            bytes += m.pkt_len() as u64;
            metas[(start_desc.wrapping_add(n as u32) & mask) as usize] = Meta::new(tb, bu, true);
            tb = tb.wrapping_add(bu);
            room_bu -= bu;
            n += 1;
        }
        self.meta = meta;
        self.reach = reach;
        if n == 0 {
            return 0;
        }
        pkts.move_front_to_held(n, &mut self.held, (start_desc & mask) as usize);
        self.tail_bu = tb;
        self.desc_tail = start_desc.wrapping_add(n as u32);
        // A completion is asked for once at least `comp_every` descriptors were posted since the
        // last one that asked (one CQE then completes them all, in order), or when the ring is
        // getting full; so never more than `comp_every - 1` descriptors wait without one, far
        // fewer than the ring holds. A CQE costs the poller a line the device just wrote.
        let free_after = nb - self.desc_tail.wrapping_sub(self.desc_head);
        if self.desc_tail.wrapping_sub(self.comp_from) >= self.comp_every
            || free_after < self.comp_every
        {
            let last = self.desc_tail.wrapping_sub(1);
            self.ends[(self.end_tail & mask) as usize] = last;
            self.end_tail = self.end_tail.wrapping_add(1);
            self.comp_from = self.desc_tail;
            // The burst's last WQE asks for a completion: clear its suppression bit (the OOB's
            // first byte, bit 7) in the ring, before the doorbell makes it visible.
            let m = &mut self.meta[(last & mask) as usize];
            m.0 &= !Meta::SUPPRESSED;
            let last_pos = m.pos();
            let oob_off = ((last_pos.wrapping_mul(GDMA_WQE_BU_SIZE) as usize) & (size - 1)) + 8;
            let mut b = [0u8; 1];
            self.sq.win.read(oob_off, &mut b);
            self.sq.win.write(oob_off, &[b[0] & !0x80]);
        }
        let v = WqDoorbell::sq(self.ids.sq_id, self.tail_bu.wrapping_mul(GDMA_WQE_BU_SIZE));
        // SQ-R1: Release: the WQEs written above are visible before the doorbell that announces
        // them (pairs with the device's Acquire load of the doorbell slot).
        self.db.store_u64(self.db_off, v.0, Ordering::Release);
        self.x.doorbells.inc();
        // The ring lines the next burst will write (one BU per WQE in the common case; as many
        // as this one) were last read by the device a lap ago: ask for them exclusive now, so
        // that they are ours by the time it comes. Not a line this burst's last WQE shares:
        // the device is about to read that one.
        let end = self.tail_bu.wrapping_mul(GDMA_WQE_BU_SIZE) as usize;
        let room = (self.sq_bu - self.tail_bu.wrapping_sub(self.head_bu)) as usize;
        let start = end.next_multiple_of(64);
        for k in (start - end..(n.min(room) * 32).min(size)).step_by(64) {
            ring.prefetch_write(end + k);
        }
        self.stats.packets.add(n as u64);
        self.stats.bytes.add(bytes);
        n
    }

    fn stats(&self) -> &Arc<TxQueueStats> {
        &self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rfc1071(b: &[u8]) -> u16 {
        let mut s = 0u32;
        for c in b.chunks(2) {
            s += u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u32;
        }
        while s >> 16 != 0 {
            s = (s & 0xffff) + (s >> 16);
        }
        s as u16
    }

    #[test]
    fn the_pseudo_header_seed_completes_to_a_correct_checksum() {
        // Ethernet + IPv4 + UDP, 11 bytes of payload.
        let mut f = vec![0u8; 14 + 20 + 8 + 11];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        f[14] = 0x45;
        f[14 + 9] = 17;
        f[14 + 12..14 + 16].copy_from_slice(&[10, 0, 0, 1]);
        f[14 + 16..14 + 20].copy_from_slice(&[192, 168, 7, 9]);
        f[34 + 4..34 + 6].copy_from_slice(&19u16.to_be_bytes());
        for (i, b) in f[42..].iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(37);
        }
        let total = f.len() as u32;
        seed_pseudo_header(&mut f, 14, 20, false, false, total);
        // What the device does: checksum over the L4 bytes, seed included, complemented.
        let c = !rfc1071(&f[34..]);
        f[40..42].copy_from_slice(&c.to_be_bytes());
        let mut pseudo = f[26..34].to_vec();
        pseudo.extend_from_slice(&[0, 17]);
        pseudo.extend_from_slice(&19u16.to_be_bytes());
        pseudo.extend_from_slice(&f[34..]);
        assert_eq!(rfc1071(&pseudo), 0xffff, "verifies as a whole");
    }
}
