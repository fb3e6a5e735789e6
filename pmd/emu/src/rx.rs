//! The RX path: a frame arriving at a vport is steered to an RQ, written into its next WQE's
//! buffers, and completed on the RQ's CQ (§4.3, §8 of the spec).
//!
//! Steering: with RSS on, the Toeplitz hash of the IPv4/IPv6 tuple (ports included for TCP and
//! UDP) picks `table[hash & (n - 1)]`; frames that cannot be hashed, and all frames with RSS off,
//! go to the default RQ. An 802.1Q tag is stripped and reported; IPv4 header and TCP/UDP
//! checksums are verified and reported. A frame larger than the WQE's buffers consumes the WQE
//! with CQE_RX_TRUNCATED; with no WQE posted it is dropped and counted. With coalescing on, up
//! to four consecutive packets of an RQ that share their flags go in one CQE_RX_COALESCED_4.

use gdma_defs::{
    CQE_RX_COALESCED_4, CQE_RX_OBJECT_FENCE, CQE_RX_OKAY, CQE_RX_TRUNCATED,
    MANA_HASH_DEFAULT_TYPES, MAX_RX_WQE_SGL_ENTRIES, MAX_RX_WQE_SIZE, ManaCqeHeader, RssL4,
    RxCompFlags, RxCompOob, RxPerPktInfo, WqeHeader, align_bu, ndis_hash_type,
};

use crate::device::Core;
use crate::frame::{self, IPPROTO_TCP, IPPROTO_UDP};
use crate::objects::arrayvec_lite::Pending;
use crate::wire::Wire;

/// Frames taken from one external port per device pass.
const BUDGET: usize = 64;

/// Pulls waiting frames from external wires (generator, TAP, AF_PACKET) into the vports.
pub(crate) fn from_wire(core: &mut Core) -> bool {
    let Wire::Ports(ports) = &core.wire else { return false };
    let n = ports.len();
    let mut scratch = std::mem::take(&mut core.rx_scratch);
    let mut work = false;
    for vport in 0..n {
        if !has_room(core, vport as u16) {
            continue;
        }
        // Take the port out while frames are delivered (the delivery needs the whole device);
        // the placeholder is zero-sized, so this allocates nothing.
        let Wire::Ports(ports) = &mut core.wire else { break };
        let mut port = std::mem::replace(&mut ports[vport], Box::new(crate::wire::Unplugged));
        for _ in 0..BUDGET {
            let got = port.recv_with(&mut scratch, &mut |f| {
                deliver(core, vport as u16, f);
                true
            });
            if got.is_none() {
                break;
            }
            work = true;
            if !has_room(core, vport as u16) {
                break;
            }
        }
        if let Wire::Ports(ports) = &mut core.wire {
            ports[vport] = port;
        }
    }
    core.rx_scratch = scratch;
    work
}

/// Whether a frame arriving at `vport` now could be taken: the vport receives and its default
/// or first RSS queue has a WQE posted. Used to pull from the generator only as fast as the
/// driver posts buffers (a generator that outruns the driver would only count drops).
fn has_room(core: &Core, vport: u16) -> bool {
    let v = &core.obj.vports[vport as usize];
    if !v.rx_enabled {
        return false;
    }
    let rq = v.default_rq.or_else(|| v.table.first().copied());
    rq.and_then(|id| core.obj.rqs.get(id)).is_some_and(|r| r.wq.pending() != 0)
}

/// Delivers a frame arriving at `vport`.
pub(crate) fn deliver(core: &mut Core, vport: u16, frame_in: &[u8]) {
    let stats = &core.shared.stats.vports[vport as usize];
    let v = &core.obj.vports[vport as usize];
    if !v.rx_enabled {
        stats.rx_drops_disabled.inc();
        return;
    }
    // Strip a VLAN tag into a private copy (rare: keep the common path copy-free).
    let mut tagged = None;
    let mut f = frame_in;
    let mut vlan = None;
    if f.len() >= 18 && f[12] == 0x81 && f[13] == 0x00 {
        let mut copy = f.to_vec();
        if let Some((n, tci)) = frame::strip_vlan(&mut copy, f.len()) {
            copy.truncate(n);
            vlan = Some(tci);
            tagged = Some(copy);
        }
    }
    if let Some(c) = &tagged {
        f = c;
    }
    let l = frame::parse(f);

    // Steering.
    let (mut hash, mut hash_type) = (0u32, 0u16);
    let rq_id = if v.rss_enabled && !v.table.is_empty() && l.ip != 0 {
        let l4 = frame::rss_l4(&l);
        hash_type = ndis_hash_type(l.ip == 6, l4, MANA_HASH_DEFAULT_TYPES);
        let mut input = [0u8; 36];
        let n = frame::rss_input(f, &l, l4 != RssL4::Other, &mut input);
        hash = v.toeplitz.hash(&input[..n]);
        Some(v.table[hash as usize & (v.table.len() - 1)])
    } else {
        v.default_rq
    };
    let Some(rq_id) = rq_id else {
        stats.rx_drops_disabled.inc();
        return;
    };
    let coalescing = v.coalescing;
    // A queue of another vport (steering left naming an id that was destroyed and reused) or a
    // queue the device disabled after an error takes nothing.
    let Some(rq) = core.obj.rqs.get_mut(rq_id).filter(|r| r.vport == vport && !r.wq.disabled)
    else {
        stats.rx_drops_disabled.inc();
        return;
    };
    if rq.wq.pending() == 0 {
        stats.rx_drops_no_wqe.inc();
        return;
    }
    let cq_id = rq.wq.cq;
    if core.obj.cqs.get(cq_id).is_none_or(|c| c.stalled()) {
        core.shared.stats.device.cq_stalls.inc();
        stats.rx_drops_no_wqe.inc();
        return;
    }

    // The WQE: header, 8-byte OOB, 1..=15 SGEs. The first 32 bytes (a whole one-SGE WQE, the
    // common case) in one read.
    let mut small = [0u8; 32];
    rq.wq.read(0, &mut small);
    rq.wq.prefetch_ahead(crate::queues::WQE_PREFETCH_AHEAD);
    let header = WqeHeader(u64::from_le_bytes(small[..8].try_into().unwrap_or_default()));
    // The SGL follows the header and the inline OOB: 8 or 24 bytes (a 32-byte OOB would run
    // past the first 32 bytes: a corrupt WQE, as is an unknown size code).
    let nsge = header.num_sgl_entries() as u32;
    let (size, sgl_at) = match header.inline_client_oob_size() {
        gdma_defs::CLIENT_OOB_8 => (align_bu(16 + 16 * nsge), 16),
        gdma_defs::CLIENT_OOB_24 => (align_bu(32 + 16 * nsge), 32),
        _ => (0, 0),
    };
    let wqe_offset = rq.wq.head();
    if size == 0
        || size > MAX_RX_WQE_SIZE
        || size > rq.wq.pending()
        || nsge == 0
        || nsge > MAX_RX_WQE_SGL_ENTRIES
    {
        // A corrupt RQ WQE: consume what was announced, report an error completion and disable
        // the queue (the packet is lost; nothing after a corrupt WQE can be trusted).
        let n = rq.wq.pending();
        rq.wq.advance(n);
        rq.wq.disabled = true;
        core.shared.stats.device.dma_errors.inc();
        complete_error(core, rq_id, cq_id, wqe_offset);
        return;
    }
    let mut big;
    let wqe: &[u8] = if size <= 32 {
        &small
    } else {
        big = [0u8; MAX_RX_WQE_SIZE as usize];
        big[..32].copy_from_slice(&small);
        rq.wq.read(32, &mut big[32..size as usize]);
        &big
    };
    rq.wq.advance(size);
    // Inside the WQE: `size` covers the SGL.
    let sgl = &wqe[sgl_at..sgl_at + nsge as usize * 16];
    let capacity: u64 =
        sgl.chunks_exact(16).map(|c| u32::from_le_bytes([c[12], c[13], c[14], c[15]]) as u64).sum();
    if f.len() as u64 > capacity {
        core.shared.stats.vports[vport as usize].rx_truncated.inc();
        complete_error(core, rq_id, cq_id, wqe_offset);
        return;
    }
    // Scatter.
    let mkey = core.obj.gpa_mkey;
    let mut at = 0usize;
    for c in sgl.chunks_exact(16) {
        if at == f.len() {
            break;
        }
        let addr = u64::from_le_bytes(c[..8].try_into().unwrap_or_default());
        let key = u32::from_le_bytes([c[8], c[9], c[10], c[11]]);
        let n = (u32::from_le_bytes([c[12], c[13], c[14], c[15]]) as usize).min(f.len() - at);
        if key != mkey || core.space.write(addr, &f[at..at + n]).is_err() {
            // A buffer the device may not write: an error completion, and the queue is disabled
            // (as a DMA fault on a send queue disables it).
            core.shared.stats.device.dma_errors.inc();
            if let Some(rq) = core.obj.rqs.get_mut(rq_id) {
                rq.wq.disabled = true;
            }
            complete_error(core, rq_id, cq_id, wqe_offset);
            return;
        }
        at += n;
    }

    // Flags.
    let mut flags = RxCompFlags::ZERO.with_rx_hashtype(hash_type);
    if let Some(tci) = vlan {
        flags = flags.with_rx_vlantag_present(true).with_rx_vlan_id(tci & 0xfff);
    }
    if l.ip == 4 {
        let good = frame::ipv4_header_sum(f, l.l3) == 0xffff;
        flags = flags.with_rx_iphdr_csum_succeed(good).with_rx_iphdr_csum_fail(!good);
    }
    if l.l4 != 0 && (l.proto == IPPROTO_TCP || l.proto == IPPROTO_UDP) {
        let good = frame::l4_checksum_ok(f, &l);
        flags = if l.proto == IPPROTO_TCP {
            flags.with_rx_tcp_csum_succeed(good).with_rx_tcp_csum_fail(!good)
        } else {
            flags.with_rx_udp_csum_succeed(good).with_rx_udp_csum_fail(!good)
        };
    }
    let stats = &core.shared.stats.vports[vport as usize];
    stats.rx_packets.inc();
    stats.rx_bytes.add(f.len() as u64);

    let rq = core.obj.rqs.get_mut(rq_id).expect("looked up above");
    let p = &mut rq.pending;
    if p.len != 0 && p.flags != flags.0 {
        flush(core, rq_id);
    }
    let rq = core.obj.rqs.get_mut(rq_id).expect("looked up above");
    let p = &mut rq.pending;
    if p.len == 0 {
        p.flags = flags.0;
        p.wqe_offset = wqe_offset;
        if coalescing && !std::mem::replace(&mut rq.listed, true) {
            core.obj.rx_pending.push(rq_id);
        }
    }
    p.pkts[p.len] = (f.len() as u16, hash);
    p.len += 1;
    if !coalescing || p.len == 4 {
        flush(core, rq_id);
    }
}

/// Writes RQ `rq_id`'s pending completion, if any.
fn flush(core: &mut Core, rq_id: u32) {
    let Some(rq) = core.obj.rqs.get_mut(rq_id) else { return };
    let p: Pending = std::mem::take(&mut rq.pending);
    if p.len == 0 {
        return;
    }
    let vport = rq.vport;
    let cq_id = rq.wq.cq;
    let t = if p.len == 1 { CQE_RX_OKAY } else { CQE_RX_COALESCED_4 };
    let mut oob = RxCompOob {
        cqe_hdr: ManaCqeHeader::new(t),
        flags: RxCompFlags(p.flags),
        ppi: [RxPerPktInfo::default(); 4],
        rx_wqe_offset: p.wqe_offset,
    };
    for (slot, &(len, hash)) in oob.ppi.iter_mut().zip(&p.pkts[..p.len]) {
        *slot = RxPerPktInfo { pkt_len: len, reserved1: 0, reserved2: 0, pkt_hash: hash };
    }
    core.shared.stats.vports[vport as usize].rx_cqes.inc();
    crate::tx::post_any(core, cq_id, rq_id, false, crate::tx::cqe_bytes(&oob));
}

/// A consumed WQE that carries no packet (truncation, a bad buffer): pending packets first,
/// then a CQE_RX_TRUNCATED, so the ring stays in order.
fn complete_error(core: &mut Core, rq_id: u32, cq_id: u32, wqe_offset: u32) {
    flush(core, rq_id);
    let oob = RxCompOob {
        cqe_hdr: ManaCqeHeader::new(CQE_RX_TRUNCATED),
        rx_wqe_offset: wqe_offset,
        ..Default::default()
    };
    let vport = core.obj.rqs.get(rq_id).map_or(0, |r| r.vport as usize);
    core.shared.stats.vports[vport].rx_cqes.inc();
    crate::tx::post_any(core, cq_id, rq_id, false, crate::tx::cqe_bytes(&oob));
}

/// End of a device pass: writes every pending coalesced CQE, then any requested fence CQE.
pub(crate) fn flush_coalesced(core: &mut Core) -> bool {
    if core.obj.rx_pending.is_empty() {
        return false;
    }
    let ids = std::mem::take(&mut core.obj.rx_pending);
    for &id in &ids {
        flush(core, id);
        let Some(rq) = core.obj.rqs.get_mut(id) else { continue };
        rq.listed = false;
        if std::mem::take(&mut rq.fence) {
            let cq_id = rq.wq.cq;
            let oob = RxCompOob {
                cqe_hdr: ManaCqeHeader::new(CQE_RX_OBJECT_FENCE),
                ..Default::default()
            };
            crate::tx::post_any(core, cq_id, id, false, crate::tx::cqe_bytes(&oob));
        }
    }
    // Give the list's buffer back (it holds no ids now) so steady state allocates nothing.
    let mut ids = ids;
    ids.clear();
    if core.obj.rx_pending.is_empty() {
        core.obj.rx_pending = ids;
    }
    true
}
