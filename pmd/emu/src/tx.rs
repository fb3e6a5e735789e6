//! The TX path: send-queue WQEs become frames on the wire and completions on the SQ's CQ.
//!
//! Per WQE (§3, §4.4, §4.5 of the spec): the header gives the size; the WQE must lie within what
//! the doorbell announced; the OOB must name the SQ's own CQ (`vcq_num`), the SQ's `vsq_frame`
//! and the vport's TX offset; 1 to 30 SGEs, each with the device's memory key and inside mapped
//! memory, are gathered into a device-private frame; requested checksums are computed and a VLAN
//! tag inserted; frames over the MTU are dropped. Success writes no CQE when the WQE asked for
//! suppression; an error always writes one. A WQE the device cannot parse or gather (corrupt
//! header, SGE count, memory key, DMA address) completes with CQE_TX_GDMA_ERR and disables the
//! queue, as hardware does; it accepts nothing more until it is destroyed.

use gdma_defs::{
    CLIENT_OOB_8, CLIENT_OOB_32, CQE_TX_GDMA_ERR, CQE_TX_INVALID_OOB, CQE_TX_MTU_DROP, CQE_TX_OKAY,
    CQE_TX_SA_DROP, CQE_TX_VPORT_DISABLED, GDMA_WQE_BU_SIZE, MANA_SHORT_PKT_FMT,
    MAX_TX_WQE_SGL_ENTRIES, MAX_TX_WQE_SIZE, TxCompOffsets, TxCompOob, TxOob, TxShortOob,
    WqeHeader, WqeRef, vsq_frame,
};

use crate::device::{Core, MAX_FRAME};
use crate::frame::{self, IPPROTO_TCP, IPPROTO_UDP, VLAN_HLEN};
use crate::queues::Posted;
use crate::wire::Wire;

/// WQEs one SQ may process per device pass (then the next SQ gets its turn).
const BUDGET: usize = 64;

/// Processes every SQ with doorbelled work. True if anything was done.
pub(crate) fn process(core: &mut Core) -> bool {
    if core.obj.tx_ready.is_empty() {
        return false;
    }
    let mut i = 0;
    while i < core.obj.tx_ready.len() {
        let id = core.obj.tx_ready[i];
        if drain(core, id) {
            core.obj.tx_ready.swap_remove(i);
        } else {
            i += 1;
        }
    }
    true
}

/// What became of one WQE.
struct Outcome {
    /// CQE type to report, or `None` for a suppressed success.
    cqe: Option<u8>,
    /// Disable the queue after completing.
    disable: bool,
}

/// Processes up to [`BUDGET`] WQEs of SQ `id`; true when the SQ has nothing left (or is gone,
/// or disabled).
fn drain(core: &mut Core, id: u32) -> bool {
    for _ in 0..BUDGET {
        let Some(sq) = core.obj.sqs.get(id) else { return true };
        if sq.wq.disabled {
            return true;
        }
        let pending = sq.wq.pending();
        if pending == 0 {
            return true;
        }
        let cq_id = sq.wq.cq;
        if core.obj.cqs.get(cq_id).is_none_or(|cq| cq.stalled()) {
            // The consumer must ring its CQ doorbell before more completions can come.
            core.shared.stats.device.cq_stalls.inc();
            return false;
        }
        let (size, out) = one_wqe(core, id, pending);
        let sq = core.obj.sqs.get_mut(id).expect("looked up above");
        let head = sq.wq.head();
        sq.wq.advance(size);
        if out.disable {
            sq.wq.disabled = true;
            core.shared.stats.device.sq_disabled.inc();
        }
        let vport = sq.vport as usize;
        if let Some(t) = out.cqe {
            let vs = &core.shared.stats.vports[vport];
            if t != CQE_TX_OKAY {
                vs.tx_errors.inc();
            }
            vs.tx_cqes.inc();
            let mut oob = TxCompOob::new(t);
            oob.offsets = TxCompOffsets::ZERO.with_tx_wqe_offset(head / GDMA_WQE_BU_SIZE);
            post_cqe(core, cq_id, id, cqe_bytes(&oob));
        }
        if out.disable {
            return true;
        }
    }
    false
}

/// The 60 client-data bytes of a CQE body type.
#[inline(always)]
pub(crate) fn cqe_bytes<T: gdma_defs::IntoBytes + gdma_defs::Immutable>(oob: &T) -> &[u8; 60] {
    oob.as_bytes().try_into().expect("CQE client data is 60 bytes (asserted in gdma-defs)")
}

/// Writes a CQE for SQ `sq` on `cq`, signalling the CQ's EQ when it was armed; the hostile mode
/// may corrupt it.
pub(crate) fn post_cqe(core: &mut Core, cq_id: u32, wq: u32, body: &[u8; 60]) {
    post_any(core, cq_id, wq, true, body);
}

/// Writes a CQE (SQ or RQ) with the hostile mode applied.
#[inline]
pub(crate) fn post_any(core: &mut Core, cq_id: u32, wq: u32, is_sq: bool, body: &[u8; 60]) {
    let hostile = core.faults.hostile_per_million;
    if hostile != 0 && (core.faults.next_random() % 1_000_000) < hostile as u64 {
        post_corrupted(core, cq_id, wq, is_sq, body);
        return;
    }
    let Some(cq) = core.obj.cqs.get_mut(cq_id) else { return };
    let r = cq.post_bytes(body, wq, is_sq);
    posted(core, cq_id, r);
}

/// What follows a CQE post: the EQ signal of an armed CQ, or a stall counted.
#[inline]
fn posted(core: &mut Core, cq_id: u32, r: Posted) {
    match r {
        Posted::Done { signal: true } => {
            let parent = core.obj.cqs.get(cq_id).and_then(|c| c.parent_eq);
            crate::doorbell::signal_eq(core, parent, cq_id);
        }
        Posted::Done { signal: false } => {}
        Posted::Held | Posted::Stalled => core.shared.stats.device.cq_stalls.inc(),
    }
}

/// The hostile mode: writes the CQE with one kind of corruption, chosen at random. Every kind is
/// one a validating driver can detect (a queue id not its own, a type outside the set for the
/// queue kind, a length larger than any buffer, a WQE offset naming nothing posted, the wrong
/// SQ/RQ flag, an owner count of neither this lap nor the last), so a test can require the
/// driver's count of bad completions to equal the device's count of corruptions.
#[cold]
#[inline(never)]
fn post_corrupted(core: &mut Core, cq_id: u32, wq: u32, is_sq: bool, body: &[u8; 60]) {
    core.shared.stats.device.hostile_corruptions.inc();
    let r = core.faults.next_random();
    let mut copy = *body;
    let (mut info_wq, mut info_sq, mut owner_skew) = (wq, is_sq, 0u8);
    fn set16(b: &mut [u8; 60], at: usize, v: u16) {
        b[at..at + 2].copy_from_slice(&v.to_le_bytes());
    }
    core.shared.stats.hostile_by_kind[(r % 7) as usize + if is_sq { 7 } else { 0 }].inc();
    match r % 7 {
        // A queue id that names nothing of this CQ.
        0 => info_wq = wq ^ (1 + ((r >> 8) as u32 & 0xff_ffff)),
        // A CQE type from outside the valid set (bits 0..6 of the first byte).
        1 => copy[0] = (copy[0] & !0x3f) | ((r >> 8) as u8 & 0x0f) | 0x10,
        // RX: a packet length larger than any buffer (first per-packet entry). TX: the same
        // bytes hold the WQE offset: one far from anything posted.
        2 if is_sq => {
            let o = u32::from_le_bytes([copy[8], copy[9], copy[10], copy[11]]);
            copy[8..12].copy_from_slice(&(o ^ (1 << 30)).to_le_bytes());
        }
        2 => set16(&mut copy, 8, 0xfff0),
        // A coalesced CQE with every slot a garbage length.
        3 => {
            copy[0] = (copy[0] & !0x3f) | gdma_defs::CQE_RX_COALESCED_4;
            for i in 0..4 {
                set16(&mut copy, 8 + 12 * i, (r >> (16 * i)) as u16);
            }
            // The first larger than any buffer, so the CQE is always recognisably bad.
            copy[9] |= 0x80;
        }
        // The send/receive flag flipped.
        4 => info_sq = !is_sq,
        // Owner bits of neither this lap nor the last (2..=6 laps ahead: what an overflowed CQ
        // looks like; never 7 ahead, the previous lap's count, which would read as "not yet
        // written" and wedge the consumer).
        5 => owner_skew = 2 + ((r >> 8) % 5) as u8,
        // Random client data altogether, with a type valid for neither RX nor TX.
        _ => {
            for (i, b) in copy.iter_mut().enumerate() {
                *b = r.rotate_left(i as u32 * 5) as u8;
            }
            copy[0] = (copy[0] & !0x3f) | 0x10 | ((r >> 3) as u8 & 0x0f);
        }
    }
    let Some(cq) = core.obj.cqs.get_mut(cq_id) else { return };
    let r = cq.post_skewed(&copy, info_wq, info_sq, owner_skew);
    posted(core, cq_id, r);
}

/// Reads, checks, gathers and sends one WQE; returns its size in bytes and what to report.
fn one_wqe(core: &mut Core, id: u32, pending: u32) -> (u32, Outcome) {
    let gdma_err = |size: u32| (size, Outcome { cqe: Some(CQE_TX_GDMA_ERR), disable: true });
    let sq = core.obj.sqs.get(id).expect("caller checked");
    // The first 32 bytes (a whole short-OOB one-SGE WQE, the common case) in one read; a
    // larger WQE (long OOB, several SGEs) continues into a bigger buffer.
    let mut small = [0u8; 32];
    sq.wq.read(0, &mut small);
    sq.wq.prefetch_ahead(crate::queues::WQE_PREFETCH_AHEAD);
    let header = WqeHeader(u64::from_le_bytes(small[..8].try_into().unwrap_or_default()));
    let Some(size) = header.size_bytes() else { return gdma_err(pending) };
    // Header and inline OOB must fit the first 32 bytes (a 32-byte OOB does not: OVMM's HWC-only
    // form, never valid on an Ethernet queue).
    if size > MAX_TX_WQE_SIZE
        || header.inline_client_oob_size() == CLIENT_OOB_32
        || size > pending
        || header.num_sgl_entries() as u32 > MAX_TX_WQE_SGL_ENTRIES
    {
        return gdma_err(pending.min(size.max(GDMA_WQE_BU_SIZE)));
    }
    let mut big;
    let bytes: &[u8] = if size <= 32 {
        &small[..size as usize]
    } else {
        big = [0u8; MAX_TX_WQE_SIZE as usize];
        big[..32].copy_from_slice(&small);
        sq.wq.read(32, &mut big[32..size as usize]);
        &big[..size as usize]
    };
    if sq.inject_error {
        return gdma_err(size);
    }
    // The common WQE (short OOB, one SGE: 32 bytes) is decoded in place; anything else goes
    // through the general parser.
    let (oob, sgl): (TxOob, &[u8]) =
        if header.inline_client_oob_size() == CLIENT_OOB_8 && header.num_sgl_entries() == 1 {
            let short = TxShortOob(u64::from_le_bytes(bytes[8..16].try_into().unwrap_or_default()));
            if short.pkt_fmt() != MANA_SHORT_PKT_FMT {
                return gdma_err(size);
            }
            (TxOob { short, ..TxOob::default() }, &bytes[16..32])
        } else {
            let Ok(wqe) = WqeRef::parse(bytes, MAX_TX_WQE_SIZE) else {
                return gdma_err(size);
            };
            let Ok(oob) = TxOob::from_oob_bytes(wqe.oob()) else { return gdma_err(size) };
            (oob, wqe.sgl_bytes())
        };
    let sq = core.obj.sqs.get(id).expect("caller checked");
    let vport = sq.vport;
    let cq_id = sq.wq.cq;
    let v = &core.obj.vports[vport as usize];
    let suppress = oob.short.suppress_txcqe_gen();
    let report =
        |t: u8| -> Option<u8> { if t == CQE_TX_OKAY && suppress { None } else { Some(t) } };
    if !v.tx_configured {
        return (size, Outcome { cqe: Some(CQE_TX_VPORT_DISABLED), disable: false });
    }
    let s = oob.short;
    if s.vcq_num() != cq_id || s.vsq_frame() != vsq_frame(id) || oob.vport_offset() != v.tx_offset {
        return (size, Outcome { cqe: Some(CQE_TX_INVALID_OOB), disable: false });
    }

    // Gather into the device's frame buffer, leaving room for a VLAN tag. SGEs are 16-byte
    // records after the OOB: address, memory key, size.
    let mkey = core.obj.gpa_mkey;
    let mut len = 0usize;
    for sge in sgl.chunks_exact(16) {
        let address = u64::from_le_bytes(sge[..8].try_into().unwrap_or_default());
        let key = u32::from_le_bytes([sge[8], sge[9], sge[10], sge[11]]);
        let n = u32::from_le_bytes([sge[12], sge[13], sge[14], sge[15]]) as usize;
        if key != mkey || len + n > MAX_FRAME - VLAN_HLEN {
            return gdma_err(size);
        }
        if core.space.read(address, &mut core.frame[len..len + n]).is_err() {
            core.shared.stats.device.dma_errors.inc();
            return gdma_err(size);
        }
        len += n;
    }

    // Offloads.
    let want_ip = s.comp_iphdr_csum();
    let (want_tcp, want_udp) = (s.comp_tcp_csum(), s.comp_udp_csum());
    if want_ip || want_tcp || want_udp {
        let f = &mut core.frame[..len];
        let l = frame::parse(f);
        let l4_ok = |p| l.l4 != 0 && l.proto == p;
        if (want_ip && l.ip != 4)
            || (want_tcp && !l4_ok(IPPROTO_TCP))
            || (want_udp && !l4_ok(IPPROTO_UDP))
        {
            return (size, Outcome { cqe: Some(CQE_TX_INVALID_OOB), disable: false });
        }
        if want_ip {
            frame::fill_ipv4_checksum(f, &l);
        }
        if want_tcp || want_udp {
            frame::fill_l4_checksum(f, &l);
        }
    }
    let mut max = core.shared.cfg.adapter_mtu as usize;
    if oob.is_long() && oob.long.inject_vlan_pri_tag() {
        let tci =
            ((oob.long.pcp() as u16) << 13) | ((oob.long.dei() as u16) << 12) | oob.long.vlan_id();
        match frame::insert_vlan(&mut core.frame, len, tci) {
            Some(n) => len = n,
            None => return (size, Outcome { cqe: Some(CQE_TX_INVALID_OOB), disable: false }),
        }
        max += VLAN_HLEN;
    }
    let vs = &core.shared.stats.vports[vport as usize];
    // A frame too short to carry a source MAC has none that could match.
    if core.shared.cfg.source_mac_check && (len < 12 || !source_is(&core.frame, v_mac(core, vport)))
    {
        vs.tx_drops_sa.inc();
        return (size, Outcome { cqe: Some(CQE_TX_SA_DROP), disable: false });
    }
    if len > max {
        vs.tx_drops_mtu.inc();
        return (size, Outcome { cqe: Some(CQE_TX_MTU_DROP), disable: false });
    }
    vs.tx_packets.inc();
    vs.tx_bytes.add(len as u64);
    send(core, vport, len);
    (size, Outcome { cqe: report(CQE_TX_OKAY), disable: false })
}

/// Whether the source MAC of frame `f` (at least 12 bytes) is `mac` (two word compares, not a
/// call to `bcmp`).
#[inline(always)]
fn source_is(f: &[u8], mac: [u8; 6]) -> bool {
    let (Some(a), Some(b)) = (f.get(6..10), f.get(10..12)) else { return false };
    u32::from_ne_bytes([a[0], a[1], a[2], a[3]])
        == u32::from_ne_bytes([mac[0], mac[1], mac[2], mac[3]])
        && u16::from_ne_bytes([b[0], b[1]]) == u16::from_ne_bytes([mac[4], mac[5]])
}

/// The MAC of `vport`.
#[inline]
fn v_mac(core: &Core, vport: u16) -> [u8; 6] {
    core.obj.vports[vport as usize].mac
}

/// Puts the frame in the device buffer (`len` bytes) on the wire of `vport`.
fn send(core: &mut Core, vport: u16, len: usize) {
    match &mut core.wire {
        Wire::Pair => {
            let peer = Wire::pair_peer(vport, core.shared.cfg.vports);
            let frame = std::mem::take(&mut core.frame);
            crate::rx::deliver(core, peer, &frame[..len]);
            core.frame = frame;
        }
        Wire::Ports(ports) => {
            if !ports[vport as usize].send(&core.frame[..len]) {
                core.shared.stats.vports[vport as usize].wire_tx_drops.inc();
            }
        }
    }
}
