//! A small, test-only MANA driver: just enough of the driver side to exercise the device
//! through BAR0 and DMA memory, as a real driver would (feature `testdrv`, and the crate's own
//! tests).
//!
//! It is deliberately simple and slow where the real driver is fast: one memory segment with a
//! bump allocator, one request at a time over the hardware channel, plain polling. What it must
//! get right is the protocol, because the device tests judge the device by it.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use gdma_defs::*;
use pmd_mempool::{HugePolicy, MemSegment};

use crate::bar::{DB_PAGE_SIZE, DB_PAGES_OFFSET, SMC_OFFSET};
use crate::device::Device;
use crate::dma::{Mapping, PAGE};
use crate::shm::{SegmentWindow, Window};

/// How long the test driver waits for the device before giving up.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// What went wrong on the driver side.
#[derive(Debug, thiserror::Error)]
pub enum TdError {
    /// The device did not answer in time.
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    /// The device answered with an error status.
    #[error("{what} failed with status {status:#x}")]
    Status {
        /// The request.
        what: &'static str,
        /// Its status.
        status: u32,
    },
    /// A malformed answer.
    #[error("bad answer: {0}")]
    Bad(String),
    /// The driver's memory ran out.
    #[error("test driver memory exhausted")]
    NoMemory,
}

/// Driver-side state of a CQ or EQ: its memory and consumer index.
#[derive(Debug, Clone, Copy)]
pub struct Ring {
    /// Queue id.
    pub id: u32,
    /// IOVA of the ring.
    pub iova: u64,
    /// Owner arithmetic.
    pub ring: OwnerRing,
    /// Entry size (64 CQE, 16 EQE).
    pub entry: u32,
    /// Consumer index (free-running, starts at N).
    pub head: u32,
}

/// Driver-side state of a work queue.
#[derive(Debug, Clone, Copy)]
pub struct WorkQueue {
    /// Queue id.
    pub id: u32,
    /// IOVA of the ring.
    pub iova: u64,
    /// Ring size in bytes.
    pub size: u32,
    /// Producer position in bytes (free-running).
    pub head: u32,
    /// Doorbell page used for this queue.
    pub db_page: u32,
}

/// A WQ object: the work queue, its CQ, and its handle.
#[derive(Debug, Clone, Copy)]
pub struct QueuePair {
    /// The SQ or RQ.
    pub wq: WorkQueue,
    /// Its CQ.
    pub cq: Ring,
    /// WQ-object handle.
    pub handle: u64,
}

/// A decoded completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Completion {
    /// Client data.
    pub data: [u32; CQE_DATA_DWORDS],
    /// Info dword.
    pub info: CqeInfo,
}

/// The test driver.
pub struct TestDriver {
    bar: Window,
    _bar_seg: SegmentWindow,
    _mem_win: SegmentWindow,
    mem_seg: Arc<MemSegment>,
    mem: Window,
    next: usize,
    /// HWC EQ, CQ, RQ, SQ.
    pub hwc_eq: Ring,
    /// HWC CQ.
    pub hwc_cq: Ring,
    hwc_rq: WorkQueue,
    hwc_sq: WorkQueue,
    req_buf: u64,
    resp_buf: u64,
    msg_id: u16,
    /// Events seen on the HWC EQ that were not INIT events (type, data).
    pub hwc_events: Vec<(u8, [u32; 3])>,
    /// From REGISTER_DEVICE.
    pub pdid: u32,
    /// From REGISTER_DEVICE (and INIT_DATA).
    pub gpa_mkey: u32,
    /// From REGISTER_DEVICE.
    pub db_id: u32,
}

fn status(what: &'static str, s: u32) -> Result<(), TdError> {
    if s == GDMA_STATUS_SUCCESS { Ok(()) } else { Err(TdError::Status { what, status: s }) }
}

impl TestDriver {
    /// A driver for `dev` with `mem_len` bytes of DMA memory (rings and buffers).
    pub fn new(dev: &Device, mem_len: usize) -> Self {
        let bar_seg = SegmentWindow::new(dev.bar0().clone());
        let bar = *bar_seg.win();
        let mem_seg = Arc::new(
            MemSegment::anonymous("testdrv", mem_len, HugePolicy::Never).expect("test memory"),
        );
        let mem_win = SegmentWindow::new(mem_seg.clone());
        let mem = *mem_win.win();
        dev.map(vec![Mapping::segment(mem_seg.clone())]).expect("map test memory");
        let z = Ring {
            id: 0,
            iova: 0,
            ring: OwnerRing::new(1).unwrap_or_else(|| unreachable!()),
            entry: 0,
            head: 0,
        };
        let w = WorkQueue { id: 0, iova: 0, size: 0, head: 0, db_page: 0 };
        TestDriver {
            bar,
            _bar_seg: bar_seg,
            _mem_win: mem_win,
            mem_seg,
            mem,
            next: 0,
            hwc_eq: z,
            hwc_cq: z,
            hwc_rq: w,
            hwc_sq: w,
            req_buf: 0,
            resp_buf: 0,
            msg_id: 0,
            hwc_events: Vec::new(),
            pdid: 0,
            gpa_mkey: 0,
            db_id: 0,
        }
    }

    /// The DMA memory segment (for tests that look at buffers).
    pub fn memory(&self) -> &Arc<MemSegment> {
        &self.mem_seg
    }

    /// Allocates `len` bytes aligned to `align` (a power of two); returns the IOVA.
    pub fn alloc(&mut self, len: usize, align: usize) -> Result<u64, TdError> {
        let start = self.next.next_multiple_of(align);
        if start + len > self.mem.len() {
            return Err(TdError::NoMemory);
        }
        self.next = start + len;
        self.mem.fill(start, len, 0);
        Ok(self.mem_seg.iova_base() + start as u64)
    }

    fn off(&self, iova: u64) -> usize {
        (iova - self.mem_seg.iova_base()) as usize
    }

    /// Writes bytes at an IOVA of the driver's memory.
    pub fn write(&self, iova: u64, bytes: &[u8]) {
        assert!(self.mem.write(self.off(iova), bytes), "write inside test memory");
    }

    /// Reads bytes at an IOVA of the driver's memory.
    pub fn read(&self, iova: u64, out: &mut [u8]) {
        assert!(self.mem.read(self.off(iova), out), "read inside test memory");
    }

    /// Writes a doorbell value to register `slot` of page `page` (Release: the ring writes
    /// before it are visible to the device first).
    pub fn ring_doorbell(&self, page: u32, slot: u32, value: u64) {
        let off = DB_PAGES_OFFSET + page as usize * DB_PAGE_SIZE + slot as usize;
        assert!(self.bar.store_u64(off, value, Ordering::Release), "doorbell inside BAR0");
    }

    /// Reads the SMC header dword.
    pub fn smc_header(&self) -> SmcProtoHdr {
        SmcProtoHdr(self.bar.load_u32(SMC_OFFSET + 28, Ordering::Acquire).unwrap_or(u32::MAX))
    }

    /// Pops the next entry of a CQ/EQ: `Ok(None)` when empty, `Err` on overflow.
    pub fn pop(&self, q: &mut Ring, out: &mut [u8]) -> Result<Option<()>, TdError> {
        let off = self.off(q.iova) + (q.ring.slot(q.head) * q.entry) as usize;
        let last = self.mem.load_u32(off + q.entry as usize - 4, Ordering::Acquire).unwrap_or(0);
        match q.ring.classify(q.head, (last >> 29) as u8) {
            OwnerState::Empty => Ok(None),
            OwnerState::Overflow => {
                Err(TdError::Bad(format!("queue {} overflowed at {}", q.id, q.head)))
            }
            OwnerState::Valid => {
                self.mem.read(off, &mut out[..q.entry as usize]);
                q.head = q.head.wrapping_add(1);
                Ok(Some(()))
            }
        }
    }

    /// Polls a CQ for one completion.
    pub fn poll_cq(&self, cq: &mut Ring) -> Result<Option<Completion>, TdError> {
        let mut e = [0u8; 64];
        Ok(self.pop(cq, &mut e)?.map(|()| {
            let mut d = [0u32; 16];
            for (w, c) in d.iter_mut().zip(e.chunks_exact(4)) {
                *w = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            }
            Completion { data: d[..15].try_into().unwrap_or([0; 15]), info: CqeInfo(d[15]) }
        }))
    }

    /// Polls an EQ for one event: (type, data).
    pub fn poll_eq(&self, eq: &mut Ring) -> Result<Option<(u8, [u32; 3])>, TdError> {
        let mut e = [0u8; 16];
        Ok(self.pop(eq, &mut e)?.map(|()| {
            let w =
                |i: usize| u32::from_le_bytes([e[4 * i], e[4 * i + 1], e[4 * i + 2], e[4 * i + 3]]);
            (EqeInfo(w(3)).event_type(), [w(0), w(1), w(2)])
        }))
    }

    /// Waits for the next completion of `cq`.
    pub fn wait_cq(&self, cq: &mut Ring) -> Result<Completion, TdError> {
        let end = Instant::now() + TIMEOUT;
        loop {
            if let Some(c) = self.poll_cq(cq)? {
                return Ok(c);
            }
            if Instant::now() > end {
                return Err(TdError::Timeout("a completion"));
            }
            std::thread::yield_now();
        }
    }

    /// Tells the device how far a CQ/EQ was consumed, optionally arming it.
    pub fn ring_cq(&self, cq: &Ring, page: u32, arm: bool) {
        self.ring_doorbell(
            page,
            DB_CQ,
            CqEqDoorbell::cq(cq.id, cq.ring.doorbell_index(cq.head), arm).0,
        );
    }

    /// Establishes the hardware channel: four pages, the SMC request, the INIT events, the
    /// response buffer posted.
    pub fn establish(&mut self) -> Result<(), TdError> {
        let pages: Vec<u64> = (0..4).map(|_| self.alloc(PAGE, PAGE)).collect::<Result<_, _>>()?;
        self.req_buf = self.alloc(HWC_MAX_REQUEST_SIZE, PAGE)?;
        self.resp_buf = self.alloc(HWC_MAX_RESPONSE_SIZE, PAGE)?;
        let e = EstablishHwc {
            eq_pfn: pages[0] >> 12,
            cq_pfn: pages[1] >> 12,
            rq_pfn: pages[2] >> 12,
            sq_pfn: pages[3] >> 12,
            msix_index: 0,
            reset_vf: false,
        };
        let mut dwords = e.encode().map_err(|e| TdError::Bad(e.to_string()))?;
        // Hand the window to the device with the last write (the hardware sets this bit on the
        // write; this device reads it as the request marker).
        dwords[SMC_LAST_DWORD] = SmcProtoHdr(dwords[SMC_LAST_DWORD]).with_owner_is_pf(true).0;
        for (i, d) in dwords.iter().enumerate() {
            self.bar.store_u32(SMC_OFFSET + 4 * i, *d, Ordering::Release);
        }
        let end = Instant::now() + TIMEOUT;
        loop {
            let h = self.smc_header();
            if !h.owner_is_pf() && h.is_response() {
                h.check_response(SMC_MSG_TYPE_ESTABLISH_HWC, SMC_MSG_TYPE_ESTABLISH_HWC_VERSION)
                    .map_err(|e| TdError::Bad(format!("{e:?}")))?;
                break;
            }
            if Instant::now() > end {
                return Err(TdError::Timeout("the SMC response"));
            }
            std::thread::yield_now();
        }
        let eq_ring = OwnerRing::for_eq_bytes(PAGE as u32).ok_or(TdError::NoMemory)?;
        let cq_ring = OwnerRing::for_cq_bytes(PAGE as u32).ok_or(TdError::NoMemory)?;
        self.hwc_eq =
            Ring { id: 0, iova: pages[0], ring: eq_ring, entry: 16, head: eq_ring.initial_index() };
        self.hwc_cq =
            Ring { id: 0, iova: pages[1], ring: cq_ring, entry: 64, head: cq_ring.initial_index() };
        self.hwc_rq = WorkQueue { id: 0, iova: pages[2], size: PAGE as u32, head: 0, db_page: 0 };
        self.hwc_sq = WorkQueue { id: 0, iova: pages[3], size: PAGE as u32, head: 0, db_page: 0 };
        let end = Instant::now() + TIMEOUT;
        let mut eq = self.hwc_eq;
        loop {
            match self.poll_eq(&mut eq)? {
                Some((GDMA_EQE_HWC_INIT_EQ_ID_DB, d)) => {
                    self.hwc_eq.id = HwcInitEqIdDb(d[0]).eq_id() as u32
                }
                Some((GDMA_EQE_HWC_INIT_DATA, d)) => {
                    let v = HwcInitTypeData(d[0]);
                    match v.ty() {
                        HWC_INIT_DATA_CQID => self.hwc_cq.id = v.value(),
                        HWC_INIT_DATA_RQID => self.hwc_rq.id = v.value(),
                        HWC_INIT_DATA_SQID => self.hwc_sq.id = v.value(),
                        HWC_INIT_DATA_GPA_MKEY => self.gpa_mkey = v.value(),
                        HWC_INIT_DATA_PDID => self.pdid = v.value(),
                        _ => {}
                    }
                }
                Some((GDMA_EQE_HWC_INIT_DONE, _)) => break,
                Some(other) => self.hwc_events.push(other),
                None if Instant::now() > end => return Err(TdError::Timeout("INIT_DONE")),
                None => std::thread::yield_now(),
            }
        }
        self.hwc_eq.head = eq.head;
        self.post_hwc_rq();
        Ok(())
    }

    fn post_hwc_rq(&mut self) {
        let wqe = rx_wqe(Sge::new(self.resp_buf, self.gpa_mkey, HWC_MAX_RESPONSE_SIZE as u32));
        let off = self.hwc_rq.head & (self.hwc_rq.size - 1);
        let bytes: Vec<u8> = wqe.iter().flat_map(|d| d.to_le_bytes()).collect();
        self.write(self.hwc_rq.iova + off as u64, &bytes);
        self.hwc_rq.head = self.hwc_rq.head.wrapping_add(32);
        self.ring_doorbell(0, DB_RQ, WqDoorbell::rq(self.hwc_rq.id, self.hwc_rq.head).0);
    }

    /// Sends one request over the hardware channel and waits for its response: (status,
    /// response body).
    pub fn raw_request(&mut self, msg: &[u8]) -> Result<(GdmaRespHdr, Vec<u8>), TdError> {
        self.write(self.req_buf, msg);
        let oob = HwcTxOob::vf(self.hwc_cq.id, self.hwc_sq.id);
        let wqe = hwc_sq_wqe(&oob, Sge::new(self.req_buf, self.gpa_mkey, msg.len() as u32));
        let bytes: Vec<u8> = wqe.iter().flat_map(|d| d.to_le_bytes()).collect();
        let off = self.hwc_sq.head & (self.hwc_sq.size - 1);
        self.write(self.hwc_sq.iova + off as u64, &bytes);
        self.hwc_sq.head = self.hwc_sq.head.wrapping_add(64);
        self.ring_doorbell(0, DB_SQ, WqDoorbell::sq(self.hwc_sq.id, self.hwc_sq.head).0);
        let mut cq = self.hwc_cq;
        let mut got_rq = None;
        let end = Instant::now() + TIMEOUT;
        while got_rq.is_none() {
            match self.poll_cq(&mut cq)? {
                Some(c) if !c.info.is_sq() => got_rq = Some(c),
                Some(_) => {}
                None if Instant::now() > end => return Err(TdError::Timeout("the HWC response")),
                None => std::thread::yield_now(),
            }
        }
        self.hwc_cq.head = cq.head;
        self.ring_cq(&self.hwc_cq, 0, false);
        let oob = HwcRxOob::from_cqe_data(&got_rq.expect("loop exit").data);
        let len = (oob.tx_oob_data_size as usize).min(HWC_MAX_RESPONSE_SIZE);
        let mut resp = vec![0u8; len];
        self.read(self.resp_buf, &mut resp);
        self.post_hwc_rq();
        // Drain HWC events (completions and any other event).
        let mut eq = self.hwc_eq;
        while let Some(ev) = self.poll_eq(&mut eq)? {
            if ev.0 != GDMA_EQE_COMPLETION {
                self.hwc_events.push(ev);
            }
        }
        self.hwc_eq.head = eq.head;
        let r = ResponseRef::parse(&resp).map_err(|e| TdError::Bad(e.to_string()))?;
        Ok((r.hdr, r.body.to_vec()))
    }

    /// Sends a typed request; returns the status and typed response body.
    pub fn request<R: HwcRequest>(
        &mut self,
        dev: GdmaDevId,
        body: &R,
        trailing: &[u8],
    ) -> Result<(u32, R::Response), TdError> {
        self.msg_id = self.msg_id.wrapping_add(1);
        let mut msg = vec![0u8; HWC_MAX_REQUEST_SIZE];
        let ids = RequestIds {
            dev_id: dev,
            hwc_msg_id: self.msg_id,
            activity_id: 0x5a00_0000 | self.msg_id as u32,
        };
        let n = encode_request(&mut msg, ids, body, trailing)
            .map_err(|e| TdError::Bad(e.to_string()))?;
        let req_hdr = request_header::<R>(ids, trailing.len());
        let (hdr, body) = self.raw_request(&msg[..n])?;
        if !hdr.matches(&req_hdr) {
            return Err(TdError::Bad(format!("response does not echo the request: {hdr:?}")));
        }
        Ok((hdr.status, read_zero_extended(&body)))
    }

    /// A typed request that must succeed.
    pub fn ok<R: HwcRequest>(
        &mut self,
        what: &'static str,
        dev: GdmaDevId,
        body: &R,
        trailing: &[u8],
    ) -> Result<R::Response, TdError> {
        let (s, r) = self.request(dev, body, trailing)?;
        status(what, s)?;
        Ok(r)
    }

    /// The MANA device id.
    pub const MANA: GdmaDevId = GdmaDevId { ty: GDMA_DEVICE_MANA, instance: 0 };

    /// Version check, device list, registration.
    pub fn register(&mut self) -> Result<(), TdError> {
        let v = GdmaVerifyVerReq {
            protocol_ver_min: 1,
            protocol_ver_max: 1,
            os_type: GDMA_OS_TYPE_LINUX,
            ..Default::default()
        };
        self.ok("VERIFY_VF_DRIVER_VERSION", HWC_DEV_ID, &v, &[])?;
        let list = self.ok("LIST_DEVICES", HWC_DEV_ID, &GdmaListDevicesReq, &[])?;
        if list.find(GDMA_DEVICE_MANA).is_none() {
            return Err(TdError::Bad("no MANA device listed".into()));
        }
        let r = self.ok("REGISTER_DEVICE", Self::MANA, &GdmaRegisterDeviceReq, &[])?;
        (self.pdid, self.gpa_mkey, self.db_id) = (r.pdid, r.gpa_mkey, r.db_id);
        Ok(())
    }

    /// Registers a DMA region of `len` bytes at `iova` (4 KiB pages; ADD_PAGES beyond 504).
    pub fn dma_region(&mut self, iova: u64, len: usize) -> Result<u64, TdError> {
        let pages: Vec<u64> =
            (0..len.div_ceil(PAGE) as u64).map(|i| iova + i * PAGE as u64).collect();
        let (first, rest) = dma_region_batches(&pages);
        let req = GdmaCreateDmaRegionReq {
            length: len as u64,
            offset_in_page: 0,
            gdma_page_type: GDMA_PAGE_TYPE_4K,
            page_count: pages.len() as u32,
            page_addr_list_len: first.len() as u32,
        };
        let (s, r) = self.request(HWC_DEV_ID, &req, first.as_bytes())?;
        let more = rest.len() != 0;
        if s != if more { GDMA_STATUS_MORE_ENTRIES } else { GDMA_STATUS_SUCCESS } {
            return Err(TdError::Status { what: "CREATE_DMA_REGION", status: s });
        }
        let n = rest.len();
        for (i, chunk) in rest.enumerate() {
            let add = GdmaDmaRegionAddPagesReq {
                dma_region_handle: r.dma_region_handle,
                page_addr_list_len: chunk.len() as u32,
                reserved3: 0,
            };
            let (s, ()) = self.request(HWC_DEV_ID, &add, chunk.as_bytes())?;
            let last = i + 1 == n;
            if s != if last { GDMA_STATUS_SUCCESS } else { GDMA_STATUS_MORE_ENTRIES } {
                return Err(TdError::Status { what: "DMA_REGION_ADD_PAGES", status: s });
            }
        }
        Ok(r.dma_region_handle)
    }

    /// Allocates a doorbell page.
    pub fn doorbell_page(&mut self) -> Result<u32, TdError> {
        let req = GdmaAllocateResourceRangeReq {
            resource_type: GDMA_RESOURCE_DOORBELL_PAGE,
            num_resources: 1,
            alignment: 1,
            allocated_resources: 0,
        };
        Ok(self.ok("ALLOCATE_RESOURCE_RANGE", HWC_DEV_ID, &req, &[])?.allocated_resources)
    }

    /// Creates an EQ of `bytes` bytes.
    pub fn create_eq(&mut self, bytes: u32) -> Result<Ring, TdError> {
        let iova = self.alloc(bytes as usize, PAGE)?;
        let region = self.dma_region(iova, bytes as usize)?;
        let req = GdmaCreateQueueReq {
            queue_type: GdmaQueueType::Eq.code(),
            pdid: self.pdid,
            doorbell_id: self.db_id,
            gdma_region: region,
            queue_size: bytes,
            log2_throttle_limit: LOG2_EQ_THROTTLE,
            ..Default::default()
        };
        let r = self.ok("CREATE_QUEUE", HWC_DEV_ID, &req, &[])?;
        let ring = OwnerRing::for_eq_bytes(bytes).ok_or(TdError::NoMemory)?;
        Ok(Ring { id: r.queue_index, iova, ring, entry: 16, head: ring.initial_index() })
    }

    /// Vport `index`: (handle, MAC); configures TX on it.
    pub fn vport(&mut self, index: u32) -> Result<(u64, [u8; 6]), TdError> {
        let q = self.ok(
            "QUERY_VPORT_CONFIG",
            Self::MANA,
            &ManaQueryVportCfgReq { vport_index: index },
            &[],
        )?;
        let tx =
            ManaConfigVportTxReq { vport: q.vport, pdid: self.pdid, doorbell_pageid: self.db_id };
        self.ok("CONFIG_VPORT_TX", Self::MANA, &tx, &[])?;
        Ok((q.vport, q.mac_addr))
    }

    /// Creates an SQ or RQ of `wq_bytes` with a CQ of `cq_bytes` on `vport`, each on its own
    /// doorbell page.
    pub fn create_wq(
        &mut self,
        vport: u64,
        kind: GdmaQueueType,
        wq_bytes: u32,
        cq_bytes: u32,
        eq: Option<u32>,
    ) -> Result<QueuePair, TdError> {
        let wq_iova = self.alloc(wq_bytes as usize, PAGE)?;
        let cq_iova = self.alloc(cq_bytes as usize, PAGE)?;
        let wq_region = self.dma_region(wq_iova, wq_bytes as usize)?;
        let cq_region = self.dma_region(cq_iova, cq_bytes as usize)?;
        let req = ManaCreateWqObjReq {
            vport,
            wq_type: kind.code(),
            reserved: 0,
            wq_gdma_region: wq_region,
            cq_gdma_region: cq_region,
            wq_size: wq_bytes,
            cq_size: cq_bytes,
            cq_moderation_ctx_id: 0,
            cq_parent_qid: eq.unwrap_or(GDMA_CQ_NO_EQ),
        };
        let r = self.ok("CREATE_WQ_OBJ", Self::MANA, &req, &[])?;
        let db_page = self.doorbell_page()?;
        let ring = OwnerRing::for_cq_bytes(cq_bytes).ok_or(TdError::NoMemory)?;
        Ok(QueuePair {
            wq: WorkQueue { id: r.wq_id, iova: wq_iova, size: wq_bytes, head: 0, db_page },
            cq: Ring { id: r.cq_id, iova: cq_iova, ring, entry: 64, head: ring.initial_index() },
            handle: r.wq_obj,
        })
    }

    /// Writes a WQE at the producer position of `wq` and advances it (no doorbell).
    pub fn put_wqe(&self, wq: &mut WorkQueue, wqe: &[u8]) {
        let off = wq.head & (wq.size - 1);
        let first = (wq.size - off) as usize;
        if wqe.len() <= first {
            self.write(wq.iova + off as u64, wqe);
        } else {
            self.write(wq.iova + off as u64, &wqe[..first]);
            self.write(wq.iova, &wqe[first..]);
        }
        wq.head = wq.head.wrapping_add(wqe.len() as u32);
    }

    /// Rings the SQ doorbell of `wq`.
    pub fn ring_sq(&self, wq: &WorkQueue) {
        self.ring_doorbell(wq.db_page, DB_SQ, WqDoorbell::sq(wq.id, wq.head).0);
    }

    /// Rings the RQ doorbell of `wq`.
    pub fn ring_rq(&self, wq: &WorkQueue) {
        self.ring_doorbell(wq.db_page, DB_RQ, WqDoorbell::rq(wq.id, wq.head).0);
    }

    /// Posts one receive buffer of `len` bytes; returns its IOVA.
    pub fn post_rx(&mut self, rq: &mut WorkQueue, len: u32) -> Result<u64, TdError> {
        let buf = self.alloc(len as usize, 64)?;
        let wqe = rx_wqe(Sge::new(buf, self.gpa_mkey, len));
        let bytes: Vec<u8> = wqe.iter().flat_map(|d| d.to_le_bytes()).collect();
        self.put_wqe(rq, &bytes);
        Ok(buf)
    }

    /// Builds a TX WQE for `frame` (copied into a new buffer, split into `segs` SGEs) with the
    /// OOB `spec` and writes it; returns its size in bytes.
    pub fn post_tx(
        &mut self,
        sq: &mut WorkQueue,
        frame: &[u8],
        segs: usize,
        spec: &TxOobSpec,
    ) -> Result<u32, TdError> {
        let buf = self.alloc(frame.len().max(1), 64)?;
        self.write(buf, frame);
        let segs = segs.clamp(1, frame.len().max(1));
        let per = frame.len().div_ceil(segs);
        let sgl: Vec<Sge> = (0..segs)
            .map(|i| {
                let start = (i * per).min(frame.len());
                let end = ((i + 1) * per).min(frame.len());
                Sge::new(buf + start as u64, self.gpa_mkey, (end - start) as u32)
            })
            .collect();
        let oob = TxOob::encode(spec).map_err(|e| TdError::Bad(e.to_string()))?;
        let oob_bytes: Vec<u8> = oob.to_dwords()[..oob.size().bytes() as usize / 4]
            .iter()
            .flat_map(|d| d.to_le_bytes())
            .collect();
        let mut w = [0u8; MAX_TX_WQE_SIZE as usize];
        let n = encode_wqe(&mut w, WqeHeader::ZERO, &oob_bytes, &sgl)
            .map_err(|e| TdError::Bad(e.to_string()))?;
        self.put_wqe(sq, &w[..n]);
        Ok(n as u32)
    }

    /// Configures RX steering of a vport.
    pub fn config_rx(
        &mut self,
        vport: u64,
        rqs: &[u64],
        key: Option<[u8; 40]>,
        coalescing: bool,
    ) -> Result<(), TdError> {
        let body = ManaCfgRxSteerReqV2 {
            vport,
            rx_enable: TRI_STATE_TRUE,
            rss_enable: if rqs.len() > 1 { TRI_STATE_TRUE } else { TRI_STATE_FALSE },
            update_default_rxobj: 1,
            update_hashkey: key.is_some() as u8,
            update_indir_tab: 1,
            default_rxobj: rqs[0],
            hashkey: key.unwrap_or(MANA_DEFAULT_RSS_KEY),
            cqe_coalescing_enable: coalescing as u8,
            ..Default::default()
        };
        let table: Vec<u64> = (0..64).map(|i| rqs[i % rqs.len()]).collect();
        let mut msg = vec![0u8; HWC_MAX_REQUEST_SIZE];
        self.msg_id = self.msg_id.wrapping_add(1);
        let ids = RequestIds { dev_id: Self::MANA, hwc_msg_id: self.msg_id, activity_id: 1 };
        let n = encode_config_vport_rx(&mut msg, ids, &body, &table)
            .map_err(|e| TdError::Bad(e.to_string()))?;
        let (hdr, _) = self.raw_request(&msg[..n])?;
        status("CONFIG_VPORT_RX", hdr.status)
    }
}

/// Fast paths for benchmarks: WQEs built once and re-posted, CQs drained in bulk.
impl TestDriver {
    /// Posts up to `n` receive WQEs (as many as fit the ring, given `consumed_to`, the position
    /// the device has completed up to) over the buffers `bufs` in turn, then rings once.
    /// Returns how many were posted.
    pub fn refill_rx(
        &self,
        rq: &mut WorkQueue,
        bufs: &[u64],
        len: u32,
        consumed_to: u32,
        n: usize,
    ) -> usize {
        let room = ((rq.size - rq.head.wrapping_sub(consumed_to)) / 32) as usize;
        let n = n.min(room);
        for i in 0..n {
            let buf = bufs[(rq.head as usize / 32 + i) % bufs.len()];
            let wqe = rx_wqe(Sge::new(buf, self.gpa_mkey, len));
            let mut b = [0u8; 32];
            for (c, d) in b.chunks_exact_mut(4).zip(wqe) {
                c.copy_from_slice(&d.to_le_bytes());
            }
            let off = rq.head & (rq.size - 1);
            self.write(rq.iova + off as u64, &b);
            rq.head = rq.head.wrapping_add(32);
        }
        if n > 0 {
            self.ring_rq(rq);
        }
        n
    }

    /// Posts up to `n` copies of the pre-encoded TX WQE `wqe` (as many as fit, given
    /// `consumed_to`), every `signal_every`-th one unsuppressed (bit 7 of OOB dword 0 cleared),
    /// then rings once. Returns how many were posted.
    pub fn refill_tx(
        &self,
        sq: &mut WorkQueue,
        wqe: &[u8],
        consumed_to: u32,
        n: usize,
        signal_every: u32,
    ) -> usize {
        let size = wqe.len() as u32;
        let room = ((sq.size - sq.head.wrapping_sub(consumed_to)) / size) as usize;
        let n = n.min(room);
        let mut w = [0u8; MAX_TX_WQE_SIZE as usize];
        let w = &mut w[..wqe.len()];
        w.copy_from_slice(wqe);
        for _ in 0..n {
            let index = sq.head / size;
            let suppress = signal_every == 0 || (index + 1) % signal_every != 0;
            w[8] = if suppress { w[8] | 0x80 } else { w[8] & !0x80 };
            self.put_wqe(sq, w);
        }
        if n > 0 {
            self.ring_sq(sq);
        }
        n
    }

    /// Drains up to `max` CQEs; returns (CQEs, packets they carry: 1, or the coalesced count).
    pub fn reap(&self, cq: &mut Ring, max: usize) -> (usize, usize) {
        let (mut cqes, mut pkts) = (0, 0);
        while cqes < max {
            let off = self.off(cq.iova) + (cq.ring.slot(cq.head) * 64) as usize;
            let last = self.mem.load_u32(off + 60, Ordering::Acquire).unwrap_or(0);
            if cq.ring.classify(cq.head, (last >> 29) as u8) != OwnerState::Valid {
                break;
            }
            let hdr = self.mem.load_u32(off, Ordering::Relaxed).unwrap_or(0);
            pkts += if ManaCqeHeader(hdr).cqe_type() == CQE_RX_COALESCED_4 {
                (0..4)
                    .take_while(|&i| {
                        self.mem.load_u32(off + 8 + 12 * i, Ordering::Relaxed).unwrap_or(0) & 0xffff
                            != 0
                    })
                    .count()
            } else {
                1
            };
            cq.head = cq.head.wrapping_add(1);
            cqes += 1;
        }
        (cqes, pkts)
    }
}
