//! Driver-side helpers for the device tests, on top of `testdrv`: a brought-up device with two
//! paired vports, raw WQEs, RX buffers at chosen addresses, a processing barrier, frames built
//! byte by byte with an independent RFC 1071 checksum, and a second minimal HWC client for the
//! tests that need to put malformed WQEs on the hardware channel itself.
//!
//! Everything here talks to the device the way `testdrv` does: BAR0 (SMC and doorbells) and DMA
//! memory only. Nothing uses `crate::frame` (the device's own checksum code), so the offload
//! tests check the device against an independent implementation.

use std::sync::atomic::Ordering;
use std::time::Instant;

use gdma_defs::*;

use crate::bar::{DB_PAGE_SIZE, DB_PAGES_OFFSET, SMC_OFFSET};
use crate::dma::PAGE;
use crate::shm::SegmentWindow;
use crate::testdrv::{Completion, QueuePair, Ring, TIMEOUT, TdError, TestDriver, WorkQueue};
use crate::{Device, DeviceConfig, WireSpec};

/// DMA memory of a test driver.
pub(crate) const MEM: usize = 16 << 20;

/// A device configuration: `vports` vports cabled in pairs, defaults otherwise.
pub(crate) fn config(vports: u16) -> DeviceConfig {
    DeviceConfig::new(vports, WireSpec::Pair)
}

/// Waits (bounded by the test driver's timeout) until `cond` holds.
pub(crate) fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + TIMEOUT;
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::yield_now();
    }
}

/// A vport as the driver sees it after QUERY_VPORT_CONFIG and CONFIG_VPORT_TX.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Port {
    /// Vport handle.
    pub handle: u64,
    /// MAC address.
    pub mac: [u8; 6],
    /// TX vport offset the OOBs must carry.
    pub tx_offset: u16,
}

/// Queries vport `index` and configures TX on it.
pub(crate) fn port(d: &mut TestDriver, index: u32) -> Port {
    let q = d
        .ok(
            "QUERY_VPORT_CONFIG",
            TestDriver::MANA,
            &ManaQueryVportCfgReq { vport_index: index },
            &[],
        )
        .unwrap();
    let tx = ManaConfigVportTxReq { vport: q.vport, pdid: d.pdid, doorbell_pageid: d.db_id };
    let r = d.ok("CONFIG_VPORT_TX", TestDriver::MANA, &tx, &[]).unwrap();
    Port { handle: q.vport, mac: q.mac_addr, tx_offset: r.tx_vport_offset }
}

/// A running device with its driver: HWC established, device registered, both vports of the
/// first pair queried and TX-configured.
pub(crate) struct Rig {
    /// The device (dropped last).
    pub d: TestDriver,
    /// Vports 0 and 1.
    pub p: [Port; 2],
    /// The device.
    pub dev: Device,
}

impl Rig {
    /// A two-vport pair device with default settings.
    pub(crate) fn new() -> Rig {
        Rig::with(config(2))
    }

    /// A device with `cfg` (at least two vports).
    pub(crate) fn with(cfg: DeviceConfig) -> Rig {
        let dev = Device::start(cfg).expect("device");
        let mut d = TestDriver::new(&dev, MEM);
        d.establish().unwrap();
        d.register().unwrap();
        let p = [port(&mut d, 0), port(&mut d, 1)];
        Rig { d, p, dev }
    }

    /// An SQ (4 KiB) with its CQ (4 KiB, no EQ) on vport `v`.
    pub(crate) fn sq(&mut self, v: usize) -> QueuePair {
        self.d.create_wq(self.p[v].handle, GdmaQueueType::Sq, 4096, 4096, None).unwrap()
    }

    /// An RQ (4 KiB) with its CQ (4 KiB, no EQ) on vport `v`.
    pub(crate) fn rq(&mut self, v: usize) -> QueuePair {
        self.d.create_wq(self.p[v].handle, GdmaQueueType::Rq, 4096, 4096, None).unwrap()
    }

    /// The OOB description every WQE of `sq` (on vport `v`) must carry.
    pub(crate) fn spec(&self, sq: &QueuePair, v: usize) -> TxOobSpec {
        TxOobSpec {
            cq_id: sq.cq.id,
            sq_id: sq.wq.id,
            vport_offset: self.p[v].tx_offset,
            ..Default::default()
        }
    }

    /// Posts `frame` (one SGE) on `sq` and rings its doorbell; returns the WQE's byte position.
    pub(crate) fn send(&mut self, sq: &mut QueuePair, frame: &[u8], spec: &TxOobSpec) -> u32 {
        let pos = sq.wq.head;
        self.d.post_tx(&mut sq.wq, frame, 1, spec).unwrap();
        self.d.ring_sq(&sq.wq);
        pos
    }

    /// Posts `n` receive buffers of `len` bytes on `rq` and rings its doorbell.
    pub(crate) fn fill(&mut self, rq: &mut QueuePair, n: usize, len: u32) -> Vec<u64> {
        let bufs = (0..n).map(|_| self.d.post_rx(&mut rq.wq, len).unwrap()).collect();
        self.d.ring_rq(&rq.wq);
        bufs
    }

    /// Everything doorbelled before this call has been processed (see [`settle`]).
    pub(crate) fn settle(&mut self) {
        settle(&mut self.d);
    }
}

/// A processing barrier: two HWC round trips (QUERY_MAX_RESOURCES).
///
/// The device thread runs passes of: SMC, doorbells, HWC service, TX (with pair RX), coalescing
/// flush. The first answer is written in a pass that has taken every doorbell rung before the
/// request (page 0 is polled after the pages of earlier doorbells, or in a later pass); the
/// second request can only be taken in a later pass, after that pass's TX work and flushes. So
/// after `settle`, every WQE doorbelled before it (up to the per-pass budget of 64 per SQ) has
/// been processed and completed.
pub(crate) fn settle(d: &mut TestDriver) {
    for _ in 0..2 {
        d.ok("QUERY_MAX_RESOURCES", HWC_DEV_ID, &GdmaQueryMaxResourcesReq, &[]).unwrap();
    }
}

/// Every completion waiting in `cq` now (non-blocking).
pub(crate) fn drain(d: &TestDriver, cq: &mut Ring) -> Vec<Completion> {
    let mut out = Vec::new();
    while let Some(c) = d.poll_cq(cq).unwrap() {
        out.push(c);
    }
    out
}

/// Waits for the next completion of `cq`.
pub(crate) fn next(d: &TestDriver, cq: &mut Ring) -> Completion {
    d.wait_cq(cq).unwrap()
}

/// The Ethernet `cqe_type` of a completion.
pub(crate) fn cqe_type(c: &Completion) -> u8 {
    ManaCqeHeader(c.data[0]).cqe_type()
}

/// The RX completion OOB of a completion.
pub(crate) fn rx_oob(c: &Completion) -> RxCompOob {
    RxCompOob::from_cqe_data(&c.data)
}

/// The byte position of the WQE a TX completion reports (`tx_wqe_offset` is in 32-byte units).
pub(crate) fn tx_pos(c: &Completion) -> u32 {
    TxCompOffsets(c.data[2]).tx_wqe_offset() * GDMA_WQE_BU_SIZE
}

/// CONFIG_VPORT_RX with an explicit default object and table (RSS on when the table has more
/// than one entry); returns the status.
pub(crate) fn config_rx_table(
    d: &mut TestDriver,
    vport: u64,
    default: u64,
    table: &[u64],
    key: Option<[u8; 40]>,
    coalescing: bool,
) -> u32 {
    let body = ManaCfgRxSteerReqV2 {
        vport,
        rx_enable: TRI_STATE_TRUE,
        rss_enable: if table.len() > 1 { TRI_STATE_TRUE } else { TRI_STATE_FALSE },
        update_default_rxobj: 1,
        update_hashkey: key.is_some() as u8,
        update_indir_tab: 1,
        default_rxobj: default,
        hashkey: key.unwrap_or(MANA_DEFAULT_RSS_KEY),
        cqe_coalescing_enable: coalescing as u8,
        ..Default::default()
    };
    let mut msg = vec![0u8; HWC_MAX_REQUEST_SIZE];
    let ids = RequestIds { dev_id: TestDriver::MANA, hwc_msg_id: 0x4242, activity_id: 7 };
    let n = encode_config_vport_rx(&mut msg, ids, &body, table).unwrap();
    let (hdr, _) = d.raw_request(&msg[..n]).unwrap();
    assert_eq!((hdr.response.msg_type, hdr.response.hwc_msg_id), (MANA_CONFIG_VPORT_RX, 0x4242));
    hdr.status
}

/// Rings the EQ doorbell of `eq` on doorbell page `page`.
pub(crate) fn ring_eq(d: &TestDriver, eq: &Ring, page: u32, arm: bool) {
    d.ring_doorbell(page, DB_EQ, CqEqDoorbell::eq(eq.id, eq.ring.doorbell_index(eq.head), arm).0);
}

/// Encodes a TX WQE by hand: header (`num_sgl_entries` = `sgl.len()`, no limit), the OOB in its
/// own size, the SGL, padding to 32 bytes.
pub(crate) fn tx_wqe(oob: &TxOob, sgl: &[Sge]) -> Vec<u8> {
    wqe_bytes(WqeHeader::new(sgl.len() as u8, oob.size()), &oob_bytes(oob), sgl)
}

/// The inline bytes of a TX OOB (8 or 24).
pub(crate) fn oob_bytes(oob: &TxOob) -> Vec<u8> {
    let n = oob.size().bytes() as usize / 4;
    oob.to_dwords()[..n].iter().flat_map(|d| d.to_le_bytes()).collect()
}

/// A WQE with an arbitrary header: `header`, `oob` at byte 8, the SGL at the offset the header's
/// OOB size gives (16 if the code is invalid), padded to 32 bytes.
pub(crate) fn wqe_bytes(header: WqeHeader, oob: &[u8], sgl: &[Sge]) -> Vec<u8> {
    let sgl_at = header.oob_size().map_or(16, |o| o.sgl_offset()) as usize;
    let mut w = vec![0u8; (sgl_at + 16 * sgl.len()).next_multiple_of(32)];
    w[..8].copy_from_slice(&header.0.to_le_bytes());
    w[8..8 + oob.len()].copy_from_slice(oob);
    for (i, s) in sgl.iter().enumerate() {
        w[sgl_at + 16 * i..sgl_at + 16 * (i + 1)].copy_from_slice(s.as_bytes());
    }
    w
}

/// Posts a receive WQE for an existing buffer (no doorbell).
pub(crate) fn post_rx_at(d: &TestDriver, rq: &mut WorkQueue, buf: u64, len: u32) {
    let wqe = rx_wqe(Sge::new(buf, d.gpa_mkey, len));
    let bytes: Vec<u8> = wqe.iter().flat_map(|w| w.to_le_bytes()).collect();
    d.put_wqe(rq, &bytes);
}

/// Reads `len` bytes of driver memory at `iova`.
pub(crate) fn read(d: &TestDriver, iova: u64, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    d.read(iova, &mut v);
    v
}

/// A window on BAR0, for reading the register map, the SMC and doorbell slots directly.
pub(crate) struct Bar(SegmentWindow);

impl Bar {
    /// BAR0 of `dev`.
    pub(crate) fn of(dev: &Device) -> Bar {
        Bar(SegmentWindow::new(dev.bar0().clone()))
    }

    /// The dword at `off`.
    pub(crate) fn u32(&self, off: usize) -> u32 {
        self.0.win().load_u32(off, Ordering::Acquire).expect("inside BAR0")
    }

    /// The first 40 bytes: the register map.
    pub(crate) fn reg_map(&self) -> [u8; 40] {
        let mut b = [0u8; 40];
        assert!(self.0.win().read(0, &mut b));
        b
    }

    /// The doorbell register `slot` of page `page` (0 once the device has taken the value).
    pub(crate) fn doorbell(&self, page: u32, slot: u32) -> u64 {
        let off = DB_PAGES_OFFSET + page as usize * DB_PAGE_SIZE + slot as usize;
        self.0.win().load_u64(off, Ordering::Acquire).expect("inside BAR0")
    }

    /// Writes the SMC window: dwords 0..8 in order, the header (with `owner_is_pf`) last.
    pub(crate) fn smc_write(&self, dwords: &[u32; SMC_APERTURE_DWORDS]) {
        for (i, d) in dwords.iter().enumerate() {
            let v = if i == SMC_LAST_DWORD { SmcProtoHdr(*d).with_owner_is_pf(true).0 } else { *d };
            self.0.win().store_u32(SMC_OFFSET + 4 * i, v, Ordering::Release);
        }
    }

    /// The SMC header dword.
    pub(crate) fn smc_header(&self) -> SmcProtoHdr {
        SmcProtoHdr(self.u32(SMC_OFFSET + 4 * SMC_LAST_DWORD))
    }

    /// Sends an SMC request and waits for the window to come back with a response.
    pub(crate) fn smc_request(&self, dwords: &[u32; SMC_APERTURE_DWORDS]) -> SmcProtoHdr {
        self.smc_write(dwords);
        let mut h = SmcProtoHdr(0);
        wait_for("the SMC response", || {
            h = self.smc_header();
            !h.owner_is_pf() && h.is_response()
        });
        h
    }
}

/// A complete HWC request message with an arbitrary `msg_type` and body bytes.
pub(crate) fn raw_msg(msg_type: u32, dev_id: GdmaDevId, msg_id: u16, body: &[u8]) -> Vec<u8> {
    let hdr = GdmaReqHdr {
        req: GdmaMsgHdr {
            hdr_type: GDMA_STANDARD_HEADER_TYPE,
            msg_type,
            msg_version: GDMA_MESSAGE_V1,
            hwc_msg_id: msg_id,
            msg_size: (GDMA_REQ_HDR_SIZE + body.len()) as u32,
        },
        resp: GdmaMsgHdr {
            hdr_type: GDMA_STANDARD_HEADER_TYPE,
            msg_type,
            msg_version: GDMA_MESSAGE_V1,
            hwc_msg_id: 0,
            msg_size: GDMA_RESP_HDR_SIZE as u32,
        },
        dev_id,
        activity_id: 0x7e57_0000 | msg_id as u32,
    };
    let mut m = hdr.as_bytes().to_vec();
    m.extend_from_slice(body);
    m
}

/// A typed request message (header, body, trailing bytes).
pub(crate) fn typed_msg<R: HwcRequest>(
    dev: GdmaDevId,
    id: u16,
    body: &R,
    trailing: &[u8],
) -> Vec<u8> {
    let mut m = vec![0u8; HWC_MAX_REQUEST_SIZE];
    let ids = RequestIds { dev_id: dev, hwc_msg_id: id, activity_id: 0x7e57_0000 | id as u32 };
    let n = encode_request(&mut m, ids, body, trailing).unwrap();
    m.truncate(n);
    m
}

/// A second, minimal HWC client that owns its queues, so tests can put any WQE on the HWC SQ
/// and RQ and see what comes back without waiting for a specific answer. Memory comes from a
/// `TestDriver` whose own HWC is not used.
pub(crate) struct RawHwc {
    /// HWC EQ.
    pub eq: Ring,
    /// HWC CQ.
    pub cq: Ring,
    /// HWC RQ.
    pub rq: WorkQueue,
    /// HWC SQ.
    pub sq: WorkQueue,
    /// Request buffer.
    pub req_buf: u64,
    /// Response buffer (one RQ WQE at a time points at it).
    pub resp_buf: u64,
    /// Memory key from INIT_DATA.
    pub gpa_mkey: u32,
    /// Events other than INIT and COMPLETION seen on the EQ.
    pub events: Vec<(u8, [u32; 3])>,
    /// COMPLETION events seen on the EQ (their CQ ids).
    pub completions: Vec<u32>,
    /// Post a new response buffer after each response (default).
    pub repost: bool,
}

impl RawHwc {
    /// Establishes a hardware channel on four new pages of `d`'s memory and posts one response
    /// buffer.
    pub(crate) fn establish(dev: &Device, d: &mut TestDriver) -> Result<RawHwc, TdError> {
        let pages: Vec<u64> = (0..4).map(|_| d.alloc(PAGE, PAGE)).collect::<Result<_, _>>()?;
        let req_buf = d.alloc(HWC_MAX_REQUEST_SIZE, PAGE)?;
        let resp_buf = d.alloc(HWC_MAX_RESPONSE_SIZE, PAGE)?;
        let e = EstablishHwc {
            eq_pfn: pages[0] >> 12,
            cq_pfn: pages[1] >> 12,
            rq_pfn: pages[2] >> 12,
            sq_pfn: pages[3] >> 12,
            msix_index: 0,
            reset_vf: false,
        };
        let bar = Bar::of(dev);
        let h = bar.smc_request(&e.encode().unwrap());
        h.check_response(SMC_MSG_TYPE_ESTABLISH_HWC, SMC_MSG_TYPE_ESTABLISH_HWC_VERSION)
            .map_err(|e| TdError::Bad(format!("{e:?}")))?;
        let eqr = OwnerRing::for_eq_bytes(PAGE as u32).unwrap();
        let cqr = OwnerRing::for_cq_bytes(PAGE as u32).unwrap();
        let wq = |id, iova| WorkQueue { id, iova, size: PAGE as u32, head: 0, db_page: 0 };
        let mut me = RawHwc {
            eq: Ring { id: 0, iova: pages[0], ring: eqr, entry: 16, head: eqr.initial_index() },
            cq: Ring { id: 0, iova: pages[1], ring: cqr, entry: 64, head: cqr.initial_index() },
            rq: wq(0, pages[2]),
            sq: wq(0, pages[3]),
            req_buf,
            resp_buf,
            gpa_mkey: 0,
            events: Vec::new(),
            completions: Vec::new(),
            repost: true,
        };
        let end = Instant::now() + TIMEOUT;
        loop {
            match d.poll_eq(&mut me.eq)? {
                Some((GDMA_EQE_HWC_INIT_EQ_ID_DB, x)) => {
                    me.eq.id = HwcInitEqIdDb(x[0]).eq_id() as u32
                }
                Some((GDMA_EQE_HWC_INIT_DATA, x)) => {
                    let v = HwcInitTypeData(x[0]);
                    match v.ty() {
                        HWC_INIT_DATA_CQID => me.cq.id = v.value(),
                        HWC_INIT_DATA_RQID => me.rq.id = v.value(),
                        HWC_INIT_DATA_SQID => me.sq.id = v.value(),
                        HWC_INIT_DATA_GPA_MKEY => me.gpa_mkey = v.value(),
                        _ => {}
                    }
                }
                Some((GDMA_EQE_HWC_INIT_DONE, _)) => break,
                Some(other) => me.events.push(other),
                None if Instant::now() > end => return Err(TdError::Timeout("INIT_DONE")),
                None => std::thread::yield_now(),
            }
        }
        me.post_resp_buf(d, resp_buf, HWC_MAX_RESPONSE_SIZE as u32);
        Ok(me)
    }

    /// Posts one response buffer (RQ WQE) and rings the RQ doorbell.
    pub(crate) fn post_resp_buf(&mut self, d: &TestDriver, buf: u64, len: u32) {
        let w: Vec<u8> = rx_wqe(Sge::new(buf, self.gpa_mkey, len))
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        d.put_wqe(&mut self.rq, &w);
        d.ring_doorbell(0, DB_RQ, WqDoorbell::rq(self.rq.id, self.rq.head).0);
    }

    /// Puts `wqe` on the HWC SQ and rings the SQ doorbell.
    pub(crate) fn post_wqe(&mut self, d: &TestDriver, wqe: &[u8]) {
        d.put_wqe(&mut self.sq, wqe);
        d.ring_doorbell(0, DB_SQ, WqDoorbell::sq(self.sq.id, self.sq.head).0);
    }

    /// The standard request WQE (VF `hwc_tx_oob`, one SGE) for `len` bytes at `addr`.
    pub(crate) fn request_wqe(&self, addr: u64, len: u32) -> Vec<u8> {
        let oob = HwcTxOob::vf(self.cq.id, self.sq.id);
        hwc_sq_wqe(&oob, Sge::new(addr, self.gpa_mkey, len))
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect()
    }

    /// Writes `msg` into the request buffer and posts it (no wait).
    pub(crate) fn post_msg(&mut self, d: &TestDriver, msg: &[u8]) {
        d.write(self.req_buf, msg);
        let w = self.request_wqe(self.req_buf, msg.len() as u32);
        self.post_wqe(d, &w);
    }

    /// Consumes what the device completed so far (ringing the CQ doorbell for it) and drains the
    /// EQ; returns the OOB of the first RQ completion (a delivered response), if any.
    pub(crate) fn poll_rq_cqe(&mut self, d: &TestDriver) -> Option<HwcRxOob> {
        let (mut got, mut consumed) = (None, false);
        while got.is_none() {
            match d.poll_cq(&mut self.cq).unwrap() {
                Some(c) if !c.info.is_sq() => got = Some(c),
                Some(_) => {}
                None => break,
            }
            consumed = true;
        }
        if consumed {
            d.ring_cq(&self.cq, 0, false);
        }
        while let Some((ty, x)) = d.poll_eq(&mut self.eq).unwrap() {
            if ty == GDMA_EQE_COMPLETION {
                self.completions.push(x[0]);
            } else {
                self.events.push((ty, x));
            }
        }
        got.map(|c| HwcRxOob::from_cqe_data(&c.data))
    }

    /// The next response, if one was delivered: header and body read from the response buffer;
    /// a fresh response buffer is posted when `repost` is set.
    pub(crate) fn poll_answer(
        &mut self,
        d: &TestDriver,
    ) -> Option<(HwcRxOob, GdmaRespHdr, Vec<u8>)> {
        let oob = self.poll_rq_cqe(d)?;
        let mut resp = vec![0u8; (oob.tx_oob_data_size as usize).min(HWC_MAX_RESPONSE_SIZE)];
        d.read(self.resp_buf, &mut resp);
        if self.repost {
            self.post_resp_buf(d, self.resp_buf, HWC_MAX_RESPONSE_SIZE as u32);
        }
        let r = ResponseRef::parse(&resp).expect("a well-formed response header");
        Some((oob, r.hdr, r.body.to_vec()))
    }

    /// Waits for the next response.
    pub(crate) fn wait_answer(&mut self, d: &TestDriver) -> (HwcRxOob, GdmaRespHdr, Vec<u8>) {
        let mut out = None;
        wait_for("an HWC response", || {
            out = self.poll_answer(d);
            out.is_some()
        });
        out.expect("waited")
    }

    /// Sends `msg` and waits for its response.
    pub(crate) fn request(&mut self, d: &TestDriver, msg: &[u8]) -> (GdmaRespHdr, Vec<u8>) {
        self.post_msg(d, msg);
        let (_, h, b) = self.wait_answer(d);
        (h, b)
    }
}

// ---------------------------------------------------------------------------------------------
// Frames and an independent checksum
// ---------------------------------------------------------------------------------------------

/// Source MAC of test frames: vport 0's (the default configuration's `mac(0)`), which most tests
/// send from; frames sent from another vport take its MAC with [`from_vport`].
pub(crate) const SRC_MAC: [u8; 6] = [0x00, 0x15, 0x5d, 0x00, 0x00, 0x10];
/// IP protocol numbers.
pub(crate) const TCP: u8 = 6;
/// UDP.
pub(crate) const UDP: u8 = 17;
/// ICMP (an L4 protocol RSS does not hash ports of).
pub(crate) const ICMP: u8 = 1;

/// Addresses of an IP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ip {
    /// IPv4 source and destination.
    V4([u8; 4], [u8; 4]),
    /// IPv6 source and destination.
    V6([u8; 16], [u8; 16]),
}

impl Ip {
    /// IPv6 addresses from text.
    pub(crate) fn v6(src: &str, dst: &str) -> Ip {
        let p = |s: &str| s.parse::<std::net::Ipv6Addr>().unwrap().octets();
        Ip::V6(p(src), p(dst))
    }

    fn hlen(&self) -> usize {
        match self {
            Ip::V4(..) => 20,
            Ip::V6(..) => 40,
        }
    }
}

/// RFC 1071 (computed here, independently of the device): the ones'-complement of the
/// ones'-complement sum of the 16-bit big-endian words of `data`, an odd last byte padded with
/// a zero byte. Data that carries a correct checksum sums to 0.
pub(crate) fn rfc1071(data: &[u8]) -> u16 {
    let mut sum: u64 = 0;
    let mut i = 0;
    while i + 1 < data.len() {
        sum += ((data[i] as u64) << 8) | data[i + 1] as u64;
        i += 2;
    }
    if i < data.len() {
        sum += (data[i] as u64) << 8;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Where the pieces of an untagged IP frame built by [`ip_frame`] are.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Layout {
    /// IP version (4 or 6).
    pub v: u8,
    /// L4 protocol.
    pub proto: u8,
    /// L4 header offset.
    pub l4: usize,
    /// L4 length (header + payload) from the IP header.
    pub l4_len: usize,
}

/// Reads the layout of an untagged IPv4 (IHL 5) or IPv6 (no extension headers) frame.
pub(crate) fn layout(f: &[u8]) -> Layout {
    match u16::from_be_bytes([f[12], f[13]]) {
        0x0800 => {
            let ihl = (f[14] & 0xf) as usize * 4;
            let total = u16::from_be_bytes([f[16], f[17]]) as usize;
            Layout { v: 4, proto: f[23], l4: 14 + ihl, l4_len: total - ihl }
        }
        0x86dd => {
            let plen = u16::from_be_bytes([f[18], f[19]]) as usize;
            Layout { v: 6, proto: f[20], l4: 54, l4_len: plen }
        }
        t => panic!("not an IP frame: ethertype {t:#x}"),
    }
}

/// The pseudo header of the frame's L4 segment (RFC 793/768 for IPv4, RFC 8200 §8.1 for IPv6).
pub(crate) fn pseudo_header(f: &[u8]) -> Vec<u8> {
    let l = layout(f);
    let mut p = Vec::new();
    if l.v == 4 {
        p.extend_from_slice(&f[26..34]);
        p.extend_from_slice(&[0, l.proto]);
        p.extend_from_slice(&(l.l4_len as u16).to_be_bytes());
    } else {
        p.extend_from_slice(&f[22..54]);
        p.extend_from_slice(&(l.l4_len as u32).to_be_bytes());
        p.extend_from_slice(&[0, 0, 0, l.proto]);
    }
    p
}

/// Offset of the L4 checksum field.
pub(crate) fn l4_csum_at(f: &[u8]) -> usize {
    let l = layout(f);
    l.l4 + if l.proto == TCP { 16 } else { 6 }
}

/// Whether the IPv4 header checksum is right (RFC 1071 over the header gives 0).
pub(crate) fn ipv4_header_ok(f: &[u8]) -> bool {
    let ihl = (f[14] & 0xf) as usize * 4;
    rfc1071(&f[14..14 + ihl]) == 0
}

/// Whether the TCP/UDP checksum is right (pseudo header + segment sums to 0).
pub(crate) fn l4_ok(f: &[u8]) -> bool {
    let l = layout(f);
    let mut all = pseudo_header(f);
    all.extend_from_slice(&f[l.l4..l.l4 + l.l4_len]);
    rfc1071(&all) == 0
}

/// An untagged Ethernet/IPv4 or IPv6 frame to `dst` with an L4 header for `proto` (TCP: 20
/// bytes with data offset 5; UDP: 8 bytes with length; anything else: none) and `payload`
/// patterned bytes, every checksum correct (IPv4 header, TCP/UDP).
pub(crate) fn ip_frame(
    dst: [u8; 6],
    ip: Ip,
    proto: u8,
    ports: (u16, u16),
    payload: usize,
) -> Vec<u8> {
    let l4h = match proto {
        TCP => 20,
        UDP => 8,
        _ => 0,
    };
    let l4_len = l4h + payload;
    let mut f = vec![0u8; 14 + ip.hlen() + l4_len];
    f[..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&SRC_MAC);
    match ip {
        Ip::V4(s, d) => {
            f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
            let h = &mut f[14..34];
            h[0] = 0x45;
            h[2..4].copy_from_slice(&((20 + l4_len) as u16).to_be_bytes());
            h[4..6].copy_from_slice(&0x1c46u16.to_be_bytes());
            h[6] = 0x40; // don't fragment
            h[8] = 64;
            h[9] = proto;
            h[12..16].copy_from_slice(&s);
            h[16..20].copy_from_slice(&d);
            let c = rfc1071(h);
            h[10..12].copy_from_slice(&c.to_be_bytes());
        }
        Ip::V6(s, d) => {
            f[12..14].copy_from_slice(&0x86ddu16.to_be_bytes());
            let h = &mut f[14..54];
            h[0] = 0x60;
            h[4..6].copy_from_slice(&(l4_len as u16).to_be_bytes());
            h[6] = proto;
            h[7] = 64;
            h[8..24].copy_from_slice(&s);
            h[24..40].copy_from_slice(&d);
        }
    }
    let l4 = 14 + ip.hlen();
    if l4h != 0 {
        f[l4..l4 + 2].copy_from_slice(&ports.0.to_be_bytes());
        f[l4 + 2..l4 + 4].copy_from_slice(&ports.1.to_be_bytes());
    }
    if proto == TCP {
        f[l4 + 4..l4 + 8].copy_from_slice(&0x0102_0304u32.to_be_bytes());
        f[l4 + 12] = 5 << 4;
        f[l4 + 13] = 0x18; // PSH ACK
        f[l4 + 14..l4 + 16].copy_from_slice(&0xfaf0u16.to_be_bytes());
    } else if proto == UDP {
        f[l4 + 4..l4 + 6].copy_from_slice(&(l4_len as u16).to_be_bytes());
    }
    for (i, b) in f[l4 + l4h..].iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(7).wrapping_add(0x31);
    }
    if proto == TCP || proto == UDP {
        set_l4_checksum(&mut f);
    }
    f
}

/// Computes and stores the correct TCP/UDP checksum (a UDP result of 0 is sent as 0xffff).
pub(crate) fn set_l4_checksum(f: &mut [u8]) {
    let at = l4_csum_at(f);
    f[at..at + 2].copy_from_slice(&[0, 0]);
    let l = layout(f);
    let mut all = pseudo_header(f);
    all.extend_from_slice(&f[l.l4..l.l4 + l.l4_len]);
    let mut c = rfc1071(&all);
    if c == 0 && l.proto == UDP {
        c = 0xffff;
    }
    f[at..at + 2].copy_from_slice(&c.to_be_bytes());
}

/// Prepares a correct frame for checksum offload the way DPDK and Linux do: the IPv4 header
/// checksum zeroed, the L4 checksum field seeded with the folded pseudo-header sum.
pub(crate) fn seed_for_offload(f: &mut [u8]) {
    if layout(f).v == 4 {
        f[24..26].copy_from_slice(&[0, 0]);
    }
    let seed = !rfc1071(&pseudo_header(f));
    let at = l4_csum_at(f);
    f[at..at + 2].copy_from_slice(&seed.to_be_bytes());
}

/// A frame that is not IP: `len` bytes with a local-experimental EtherType and a pattern.
pub(crate) fn raw_frame(dst: [u8; 6], len: usize, seed: u8) -> Vec<u8> {
    let mut f: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_add(seed)).collect();
    f[..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&SRC_MAC);
    f[12..14].copy_from_slice(&0x88b5u16.to_be_bytes());
    f
}

/// `f` with the source MAC `mac` (a frame sent from the vport that has it).
pub(crate) fn from_vport(mut f: Vec<u8>, mac: [u8; 6]) -> Vec<u8> {
    f[6..12].copy_from_slice(&mac);
    f
}

/// The frame with an 802.1Q tag (`tci`) inserted after the MAC addresses.
pub(crate) fn tagged(f: &[u8], tci: u16) -> Vec<u8> {
    let mut t = f[..12].to_vec();
    t.extend_from_slice(&0x8100u16.to_be_bytes());
    t.extend_from_slice(&tci.to_be_bytes());
    t.extend_from_slice(&f[12..]);
    t
}
