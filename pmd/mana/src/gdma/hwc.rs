//! The hardware channel (HWC): the SMC handshake that creates it (§6.1 of the spec), its four
//! queues in one driver-owned segment, and one request/response at a time over them (§6.2,
//! §3.6, §4.5).
//!
//! Memory: one segment of six 4 KiB pages: HWC EQ, CQ, RQ, SQ (one page each, as ESTABLISH_HWC
//! gives one page frame number per queue), the request buffer and the response buffer. The
//! device writes the EQ, the CQ and the response buffer; those are only ever read through the
//! segment's [`Window`] (copies and atomic loads), never through references.
//!
//! A request is one SQ WQE (24-byte `hwc_tx_oob` + one SGE over the request buffer) and one RQ
//! WQE (one SGE over the response buffer). The device answers with an SQ CQE and then an RQ CQE
//! whose `hwc_rx_oob` names the RQ WQE (byte offset) and the response length. A bus that delivers
//! interrupts lets a wait sleep until the device signals: the CQ and the EQ are armed, the
//! device's event on the EQ raises the channel's MSI-X vector, and [`Irq`] wakes the waiting
//! thread (events other than completions are kept for [`Hwc::drain_eq`]). Queue depth is 1:
//! a request that timed out stays *pending* and the next request waits for (and discards) its
//! late answer before it is sent; the caller learns what the late answer said
//! ([`Hwc::take_late`]) so it can undo what that request created.

use std::sync::atomic::{Ordering, fence};
use std::sync::{Arc, Mutex};
use std::thread::Thread;
use std::time::{Duration, Instant};

use gdma_defs::{
    CQE_DATA_DWORDS, CqEqDoorbell, CqeInfo, DB_CQ, DB_EQ, DB_MAX_EQ_ID, DB_RQ, DB_SQ, EqeInfo,
    EstablishHwc, GDMA_CQE_SIZE, GDMA_EQE_COMPLETION, GDMA_EQE_HWC_INIT_DATA,
    GDMA_EQE_HWC_INIT_DONE, GDMA_EQE_HWC_INIT_EQ_ID_DB, GDMA_EQE_SIZE, GDMA_OWNER_MASK,
    GDMA_OWNER_SHIFT, GDMA_RESP_HDR_SIZE, GDMA_STATUS_MORE_ENTRIES, GDMA_STATUS_SUCCESS, GdmaDevId,
    GdmaReqHdr, GdmaRespHdr, HWC_INIT_DATA_CQID, HWC_INIT_DATA_GPA_MKEY, HWC_INIT_DATA_MAX_REQUEST,
    HWC_INIT_DATA_MAX_RESPONSE, HWC_INIT_DATA_QUEUE_DEPTH, HWC_INIT_DATA_RQID, HWC_INIT_DATA_SQID,
    HWC_MAX_REQUEST_SIZE, HWC_MAX_RESPONSE_SIZE, HwcInitEqIdDb, HwcInitTypeData, HwcRequest,
    HwcRxOob, HwcTxOob, OwnerRing, OwnerState, RequestIds, ResponseRef, SHMEM_VF_RESET_STATE,
    SMC_APERTURE_DWORDS, SMC_LAST_DWORD, SMC_MSG_TYPE_DESTROY_HWC,
    SMC_MSG_TYPE_DESTROY_HWC_VERSION, SMC_MSG_TYPE_ESTABLISH_HWC,
    SMC_MSG_TYPE_ESTABLISH_HWC_VERSION, SMC_PAGE_SHIFT, Sge, SmcError, SmcProtoHdr, WqDoorbell,
    WqRing, destroy_hwc_request, encode_request, hwc_sq_wqe, read_zero_extended, request_header,
    rx_wqe,
};
use pmd_mempool::shm::Window;

use super::shm::SegWindow;
use crate::cp::CpError;

/// Size of each HWC queue: one 4 KiB page (ESTABLISH_HWC carries one page frame per queue).
pub(super) const HWC_QUEUE_SIZE: u32 = 4096;
/// Offset of the HWC EQ in the HWC segment.
const EQ_OFF: usize = 0;
/// Offset of the HWC CQ.
const CQ_OFF: usize = 0x1000;
/// Offset of the HWC RQ.
const RQ_OFF: usize = 0x2000;
/// Offset of the HWC SQ.
const SQ_OFF: usize = 0x3000;
/// Offset of the request buffer.
const REQ_OFF: usize = 0x4000;
/// Offset of the response buffer.
const RESP_OFF: usize = 0x5000;
/// Bytes of HWC memory.
pub(super) const HWC_SEGMENT_LEN: usize = 0x6000;
/// Smallest max-request size accepted from INIT_DATA (VERIFY_VF_DRIVER_VERSION is 640 bytes).
const MIN_MAX_REQUEST: u32 = 1024;
/// Most events kept between two `drain_eq` calls (four laps of the EQ).
const STASH_MAX: usize = 4 * (HWC_QUEUE_SIZE / GDMA_EQE_SIZE) as usize;
/// The MSI-X vector of the channel's EQ (ESTABLISH_HWC).
pub(super) const HWC_MSIX: u16 = 0;
/// Longest sleep of a wait for an interrupt: the interrupt only wakes the waiter early, the
/// queues are what is read, so a lost or late one costs at most this.
const IRQ_SLEEP_MAX: Duration = Duration::from_millis(1);

/// What is called when the device signals an event nobody waits for.
pub(super) type EventWaker = Arc<dyn Fn() + Send + Sync>;

/// The channel's interrupt, as a wake-up: the device calls [`Irq::fire`] when it raises the
/// channel's MSI-X vector. That wakes the thread waiting for an answer, or, when none waits,
/// tells the channel's owner that an event came ([`Irq::notify`]).
#[derive(Default)]
pub(super) struct Irq {
    waiter: Mutex<Option<Thread>>,
    on_event: Mutex<Option<EventWaker>>,
}

impl Irq {
    /// The device raised the vector (on the device's thread; returns at once).
    pub(super) fn fire(&self) {
        let waiter = self.waiter.lock().unwrap_or_else(|e| e.into_inner()).clone();
        match waiter {
            // A wake-up it did not wait for (it may sleep for another reason) is harmless.
            Some(t) => t.unpark(),
            None => self.notify(),
        }
    }

    /// Tells the owner that events wait on the EQ.
    pub(super) fn notify(&self) {
        let f = self.on_event.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(f) = f {
            f();
        }
    }

    /// Who to tell about events nobody waits for.
    pub(super) fn set_event_waker(&self, wake: Option<EventWaker>) {
        *self.on_event.lock().unwrap_or_else(|e| e.into_inner()) = wake;
    }

    /// The calling thread waits for an answer: the interrupt wakes it (`None`: nobody waits).
    fn set_waiter(&self, t: Option<Thread>) {
        let mut w = self.waiter.lock().unwrap_or_else(|e| e.into_inner());
        if w.as_ref().map(Thread::id) != t.as_ref().map(Thread::id) {
            *w = t;
        }
    }
}

/// Whether BAR0's register map still reads as a device (its first dword is not all ones).
pub(super) fn bar_alive(bar: &Window) -> bool {
    // Acquire: pairs with the device's writes of the register map (restored after a reset).
    bar.load_u32(0, Ordering::Acquire).is_some_and(|v| v != SHMEM_VF_RESET_STATE)
}

/// An event as the HWC EQ carries it: type and data.
pub(super) type RawEvent = (u8, [u32; 3]);

/// The BAR0 layout the channel needs.
#[derive(Debug, Clone, Copy)]
pub(super) struct BarLayout {
    /// Offset of the SMC window.
    pub(super) smc_offset: usize,
    /// Offset of doorbell page 0.
    pub(super) db_pages_offset: u64,
    /// Size of one doorbell page.
    pub(super) db_page_size: u32,
    /// Length of BAR0.
    pub(super) bar_len: usize,
}

impl BarLayout {
    /// BAR0 offset of doorbell page `page`, if the whole page lies inside BAR0.
    pub(super) fn page_offset(&self, page: u32) -> Option<usize> {
        let start = self.db_pages_offset.checked_add(self.db_page_size as u64 * page as u64)?;
        let end = start.checked_add(self.db_page_size as u64)?;
        (end <= self.bar_len as u64).then_some(start as usize)
    }
}

/// How long a wait spins before it sleeps: an answer from a device running on another CPU
/// arrives within it.
const SPIN_FOR: Duration = Duration::from_micros(20);
/// How long a wait sleeps short before its sleeps grow.
const SHORT_SLEEPS_FOR: Duration = Duration::from_millis(2);
/// A short sleep (the kernel's timer slack, 50 µs by default, comes on top).
const SHORT_SLEEP: Duration = Duration::from_micros(10);
/// The longest sleep of a long wait.
const LONG_SLEEP: Duration = Duration::from_millis(1);

/// Waits for the device: spin a few microseconds, then sleep short, then (a long wait: a slow or
/// dead channel) longer and longer, up to a millisecond.
///
/// It never yields: with more busy threads than CPUs (a spinning forwarder, the device thread,
/// this one), `sched_yield` hands the CPU to a spinning thread for the rest of its slice,
/// about a millisecond per wait, where a short sleep lets the device run at once and gets the
/// CPU back by wake-up preemption some 60 µs later.
pub(super) struct Backoff(Instant);

impl Default for Backoff {
    fn default() -> Self {
        Backoff(Instant::now())
    }
}

impl Backoff {
    /// One pause.
    pub(super) fn pause(&mut self) {
        let waited = self.0.elapsed();
        if waited < SPIN_FOR {
            std::hint::spin_loop();
        } else if waited < SHORT_SLEEPS_FOR {
            std::thread::sleep(SHORT_SLEEP);
        } else {
            std::thread::sleep((waited / 16).min(LONG_SLEEP));
        }
    }
}

/// Sends one SMC message (§6.1): waits for the window to be the driver's, writes the body
/// dwords in order and then the header with `owner_is_pf` set (that write hands the window to
/// the device), and waits for the device to hand it back with a response.
fn smc_send(
    bar: &Window,
    smc: usize,
    dwords: &[u32],
    hdr: SmcProtoHdr,
    what: &'static str,
    timeout: Duration,
) -> Result<(), CpError> {
    let deadline = Instant::now() + timeout;
    let hdr_off = smc + SMC_LAST_DWORD * 4;
    let load = || {
        // Acquire: pairs with the device's Release store of the response header, so what the
        // device did before answering (the HWC queues, its INIT events) is visible after it.
        SmcProtoHdr(bar.load_u32(hdr_off, Ordering::Acquire).unwrap_or(SHMEM_VF_RESET_STATE))
    };
    let mut backoff = Backoff::default();
    // The window must be ours before we write it.
    loop {
        let h = load();
        if h.0 == SHMEM_VF_RESET_STATE {
            return Err(CpError::DeviceGone {
                why: format!("{what}: the SMC window reads all ones"),
            });
        }
        if !h.owner_is_pf() {
            break;
        }
        if Instant::now() >= deadline {
            return Err(CpError::Timeout { cmd: what, ms: timeout.as_millis() as u64 });
        }
        backoff.pause();
    }
    for (i, d) in dwords.iter().take(SMC_LAST_DWORD).enumerate() {
        if !bar.store_u32(smc + 4 * i, *d, Ordering::Relaxed) {
            return Err(CpError::Bus(format!("{what}: SMC window outside BAR0")));
        }
    }
    // Release: the body dwords above are visible to the device before the header that hands it
    // the window (pairs with the device's Acquire load of the header).
    if !bar.store_u32(hdr_off, hdr.with_owner_is_pf(true).0, Ordering::Release) {
        return Err(CpError::Bus(format!("{what}: SMC window outside BAR0")));
    }
    let mut backoff = Backoff::default();
    loop {
        let h = load();
        match h.check_response(hdr.msg_type(), hdr.msg_version()) {
            Ok(()) => return Ok(()),
            Err(SmcError::Busy) => {}
            Err(SmcError::DeviceReset) => {
                return Err(CpError::DeviceGone {
                    why: format!("{what}: the SMC window reads all ones"),
                });
            }
            Err(SmcError::Status(s)) => {
                return Err(CpError::Status { cmd: what, status: s as u32 });
            }
            Err(SmcError::Mismatch { hdr }) => {
                return Err(CpError::BadAnswer {
                    cmd: what,
                    why: format!("SMC header {:#x} does not answer the request", hdr.0),
                });
            }
        }
        if Instant::now() >= deadline {
            return Err(CpError::Timeout { cmd: what, ms: timeout.as_millis() as u64 });
        }
        backoff.pause();
    }
}

/// SMC DESTROY_HWC: only the header dword is written (§6.1).
pub(super) fn destroy_hwc(bar: &Window, smc: usize, timeout: Duration) -> Result<(), CpError> {
    let hdr = destroy_hwc_request(false);
    debug_assert_eq!(
        (hdr.msg_type(), hdr.msg_version()),
        (SMC_MSG_TYPE_DESTROY_HWC, SMC_MSG_TYPE_DESTROY_HWC_VERSION)
    );
    smc_send(bar, smc, &[], hdr, "DESTROY_HWC", timeout)
}

/// A CQ or EQ the driver consumes: free-running head (starts at the entry count, §1.4).
#[derive(Debug, Clone, Copy)]
struct Consumer {
    id: u32,
    ring: OwnerRing,
    /// Offset of the ring in the HWC segment.
    off: usize,
    /// Entry size.
    entry: usize,
    head: u32,
}

/// What the slot at a consumer's head holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pop {
    /// Nothing new.
    Empty,
    /// A new entry (copied into the caller's buffer); consumed.
    Entry,
    /// Owner bits of neither this lap nor the last: a corrupted entry (or lost ones); consumed
    /// so the consumer stays in step with the producer.
    BadOwner(u8),
}

impl Consumer {
    fn new(id: u32, ring: OwnerRing, off: usize, entry: u32) -> Self {
        Consumer { id, ring, off, entry: entry as usize, head: ring.initial_index() }
    }

    /// Takes the entry at the head into `out` (`entry` bytes), owner-bit algorithm of §1.4.
    fn pop(&mut self, mem: &Window, out: &mut [u8]) -> Pop {
        let off = self.off + self.ring.slot(self.head) as usize * self.entry;
        let last_off = off + self.entry - 4;
        // Acquire: pairs with the device's Release store of the entry's last dword (the owner
        // bits are written last), so the body read below is the one these owner bits validate.
        let Some(last) = mem.load_u32(last_off, Ordering::Acquire) else {
            return Pop::Empty;
        };
        let owner = ((last >> GDMA_OWNER_SHIFT) & GDMA_OWNER_MASK) as u8;
        match self.ring.classify(self.head, owner) {
            OwnerState::Empty => Pop::Empty,
            OwnerState::Valid => {
                let (body, tail) = out[..self.entry].split_at_mut(self.entry - 4);
                mem.read(off, body);
                tail.copy_from_slice(&last.to_le_bytes());
                self.head = self.head.wrapping_add(1);
                Pop::Entry
            }
            OwnerState::Overflow => {
                self.head = self.head.wrapping_add(1);
                Pop::BadOwner(owner)
            }
        }
    }

    /// Whether the slot at the head holds an entry (new, or one to discard): `pop` would not
    /// say empty.
    fn ready(&self, mem: &Window) -> bool {
        let off = self.off + self.ring.slot(self.head) as usize * self.entry + self.entry - 4;
        // Acquire: as in `pop`.
        mem.load_u32(off, Ordering::Acquire).is_some_and(|last| {
            let owner = ((last >> GDMA_OWNER_SHIFT) & GDMA_OWNER_MASK) as u8;
            self.ring.classify(self.head, owner) != OwnerState::Empty
        })
    }

    /// The doorbell value telling the device how far this CQ was consumed (`arm`: and that its
    /// next entry is to be signalled with an event on its EQ).
    fn doorbell(&self, arm: bool) -> u64 {
        CqEqDoorbell::cq(self.id, self.ring.doorbell_index(self.head), arm).0
    }
}

/// An SQ or RQ the driver produces into: free-running head in 32-byte units (§1.3).
#[derive(Debug, Clone, Copy)]
struct Producer {
    id: u32,
    ring: WqRing,
    /// Offset of the ring in the HWC segment.
    off: usize,
    head_bu: u32,
}

impl Producer {
    /// Writes `wqe` (a multiple of 32 bytes) at the head, wrapping at the end of the ring, and
    /// advances the head; returns the WQE's byte offset in the ring.
    fn put(&mut self, mem: &Window, wqe: &[u8]) -> u32 {
        let at = self.ring.byte_offset(self.head_bu);
        let first = wqe.len().min((self.ring.size_bytes() - at) as usize);
        mem.write(self.off + at as usize, &wqe[..first]);
        mem.write(self.off, &wqe[first..]);
        self.head_bu = self.head_bu.wrapping_add((wqe.len() / 32) as u32);
        at
    }

    /// Producer byte offset for the doorbell.
    fn tail(&self) -> u32 {
        gdma_defs::wq_doorbell_tail(self.head_bu)
    }
}

/// A request whose answer has not been seen yet.
#[derive(Debug, Clone)]
struct Pending {
    /// The request as sent (to learn, from a late answer, what it did).
    msg: Vec<u8>,
    hdr: GdmaReqHdr,
    /// Byte offset in the RQ ring of the WQE that receives the answer.
    rq_wqe_offset: u32,
}

/// An answer that arrived after its request had timed out, and was discarded.
#[derive(Debug, Clone)]
pub(super) struct Late {
    /// The request as it was sent.
    pub(super) msg: Vec<u8>,
    /// The answer: header and body, or why it could not be read.
    pub(super) answer: Result<(GdmaRespHdr, Vec<u8>), String>,
}

/// What one HWC CQE means for the request in flight.
#[derive(Debug, Clone, PartialEq, Eq)]
enum CqeVerdict {
    /// The SQ completion of a request (carries nothing).
    Sent,
    /// The answer: the response is this long.
    Answer(usize),
    /// The RQ completion of the request in flight, unusable.
    BadAnswer(String),
    /// Not a completion of the request in flight (wrong queue, wrong WQE, bad owner bits).
    Junk(String),
}

/// Judges a CQE read from the HWC CQ against the queues and the request in flight.
/// `rq_wqe_offset`: where the RQ WQE of the request in flight is (`None`: nothing in flight).
fn judge_cqe(
    cqe: &[u8; 64],
    sq_id: u32,
    rq_id: u32,
    rq_size: u32,
    rq_wqe_offset: Option<u32>,
    max_resp: usize,
) -> CqeVerdict {
    let mut data = [0u32; CQE_DATA_DWORDS];
    for (d, c) in data.iter_mut().zip(cqe.chunks_exact(4)) {
        *d = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
    }
    let info = CqeInfo(u32::from_le_bytes([cqe[60], cqe[61], cqe[62], cqe[63]]));
    if info.is_sq() {
        if info.wq_num() != sq_id {
            return CqeVerdict::Junk(format!(
                "completion for SQ {}, the HWC SQ is {sq_id}",
                info.wq_num()
            ));
        }
        return CqeVerdict::Sent;
    }
    if info.wq_num() != rq_id {
        return CqeVerdict::Junk(format!(
            "completion for RQ {}, the HWC RQ is {rq_id}",
            info.wq_num()
        ));
    }
    let oob = HwcRxOob::from_cqe_data(&data);
    let at = oob.wqe_offset & (rq_size - 1);
    match rq_wqe_offset {
        None => {
            CqeVerdict::Junk(format!("RQ completion (WQE at {at:#x}) with no request in flight"))
        }
        Some(want) if want != at => CqeVerdict::Junk(format!(
            "RQ completion for the WQE at {at:#x}, the request's is at {want:#x}"
        )),
        Some(_) => {
            let len = oob.tx_oob_data_size as usize;
            if !(GDMA_RESP_HDR_SIZE..=max_resp).contains(&len) {
                CqeVerdict::BadAnswer(format!(
                    "response length {len} outside {GDMA_RESP_HDR_SIZE}..={max_resp}"
                ))
            } else {
                CqeVerdict::Answer(len)
            }
        }
    }
}

/// Checks a response against the request it answers: header readable, `msg_size` within the
/// bytes received, `hwc_msg_id`, type, device and activity echoed. Returns status and body.
fn check_response(bytes: &[u8], req: &GdmaReqHdr) -> Result<(GdmaRespHdr, Vec<u8>), String> {
    let r = ResponseRef::parse(bytes).map_err(|e| format!("response: {e}"))?;
    if r.hdr.response.hwc_msg_id != req.req.hwc_msg_id {
        return Err(format!(
            "answer to message {}, the request was message {}",
            r.hdr.response.hwc_msg_id, req.req.hwc_msg_id
        ));
    }
    if !r.hdr.matches(req) {
        return Err(format!(
            "response (type {:#x}, device {:#x}, activity {:#x}) does not echo the request \
             (type {:#x}, device {:#x}, activity {:#x})",
            r.hdr.response.msg_type,
            r.hdr.dev_id.as_u32(),
            r.hdr.activity_id,
            req.req.msg_type,
            req.dev_id.as_u32(),
            req.activity_id
        ));
    }
    Ok((r.hdr, r.body.to_vec()))
}

/// Counters of one channel.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct HwcCounters {
    /// Requests sent.
    pub requests: u64,
    /// Requests that timed out.
    pub timeouts: u64,
    /// Late answers to timed-out requests, discarded.
    pub late_answers: u64,
    /// Completions and events that made no sense (wrong queue, wrong WQE, bad owner bits),
    /// discarded.
    pub bad_entries: u64,
}

impl HwcCounters {
    /// Adds `o` to `self`.
    pub(super) fn add(&mut self, o: &HwcCounters) {
        self.requests += o.requests;
        self.timeouts += o.timeouts;
        self.late_answers += o.late_answers;
        self.bad_entries += o.bad_entries;
    }
}

/// The established hardware channel.
pub(super) struct Hwc {
    mem: SegWindow,
    bar: Window,
    /// BAR0 offset of the channel's doorbell page.
    db: usize,
    /// Its index.
    db_page: u32,
    eq: Consumer,
    cq: Consumer,
    rq: Producer,
    sq: Producer,
    /// Memory key of the channel's SGEs (INIT_DATA GPA_MKEY).
    mkey: u32,
    max_req: usize,
    max_resp: usize,
    msg_id: u16,
    activity: u32,
    pending: Option<Pending>,
    late: Vec<Late>,
    /// The interrupt, when the bus delivers it (else waits poll).
    irq: Option<Arc<Irq>>,
    /// Events taken off the EQ while waiting (completions are dropped), for `drain_eq`.
    stash: Vec<Result<RawEvent, String>>,
    pub(super) counters: HwcCounters,
}

/// Values collected from the INIT events.
#[derive(Debug, Default)]
struct InitData {
    eq_db: Option<(u16, u16)>,
    cq: Option<u32>,
    rq: Option<u32>,
    sq: Option<u32>,
    depth: Option<u32>,
    max_req: Option<u32>,
    max_resp: Option<u32>,
    mkey: Option<u32>,
}

impl Hwc {
    /// Establishes the channel on `mem` (a zeroed segment of [`HWC_SEGMENT_LEN`] bytes, already
    /// mapped for the device): SMC ESTABLISH_HWC, then the INIT events on the HWC EQ. Returns the
    /// channel and the other events seen meanwhile (type, data). On an error after the device
    /// accepted the request, the channel is destroyed again (best effort).
    pub(super) fn establish(
        mem: SegWindow,
        bar: Window,
        layout: &BarLayout,
        smc_timeout: Duration,
        init_timeout: Duration,
    ) -> Result<(Hwc, Vec<RawEvent>), CpError> {
        let base = mem.segment().iova_base();
        if base % HWC_QUEUE_SIZE as u64 != 0 || mem.win().len() < HWC_SEGMENT_LEN {
            return Err(CpError::Bus(format!(
                "HWC memory at {base:#x} ({} bytes) is not page-aligned or too small",
                mem.win().len()
            )));
        }
        mem.win().fill(0, HWC_SEGMENT_LEN, 0);
        let pfn = |off: usize| (base + off as u64) >> SMC_PAGE_SHIFT;
        let req = EstablishHwc {
            eq_pfn: pfn(EQ_OFF),
            cq_pfn: pfn(CQ_OFF),
            rq_pfn: pfn(RQ_OFF),
            sq_pfn: pfn(SQ_OFF),
            msix_index: HWC_MSIX,
            reset_vf: false,
        };
        let dwords: [u32; SMC_APERTURE_DWORDS] = req
            .encode()
            .map_err(|e| CpError::Bus(format!("ESTABLISH_HWC: HWC memory not addressable: {e}")))?;
        let hdr = SmcProtoHdr(dwords[SMC_LAST_DWORD]);
        debug_assert_eq!(
            (hdr.msg_type(), hdr.msg_version()),
            (SMC_MSG_TYPE_ESTABLISH_HWC, SMC_MSG_TYPE_ESTABLISH_HWC_VERSION)
        );
        smc_send(&bar, layout.smc_offset, &dwords, hdr, "ESTABLISH_HWC", smc_timeout)?;
        match Self::init(mem, bar, layout, init_timeout) {
            Ok(r) => Ok(r),
            Err(e) => {
                if bar_alive(&bar) {
                    let _ = destroy_hwc(&bar, layout.smc_offset, smc_timeout);
                }
                Err(e)
            }
        }
    }

    /// Reads the INIT events and builds the channel.
    fn init(
        mem: SegWindow,
        bar: Window,
        layout: &BarLayout,
        timeout: Duration,
    ) -> Result<(Hwc, Vec<RawEvent>), CpError> {
        const CMD: &str = "ESTABLISH_HWC";
        let bad = |why: String| CpError::BadAnswer { cmd: CMD, why };
        let eq_ring =
            OwnerRing::for_eq_bytes(HWC_QUEUE_SIZE).ok_or_else(|| bad("EQ size".into()))?;
        let cq_ring =
            OwnerRing::for_cq_bytes(HWC_QUEUE_SIZE).ok_or_else(|| bad("CQ size".into()))?;
        let wq_ring = WqRing::new(HWC_QUEUE_SIZE).map_err(|e| bad(format!("WQ size: {e:?}")))?;
        let mut eq = Consumer::new(0, eq_ring, EQ_OFF, GDMA_EQE_SIZE);
        let mut init = InitData::default();
        let mut others = Vec::new();
        let deadline = Instant::now() + timeout;
        let mut backoff = Backoff::default();
        let win = mem.win();
        let mut e = [0u8; 16];
        loop {
            match eq.pop(&win, &mut e) {
                Pop::Entry => {
                    let w = |i: usize| {
                        u32::from_le_bytes([e[4 * i], e[4 * i + 1], e[4 * i + 2], e[4 * i + 3]])
                    };
                    let ty = EqeInfo(w(3)).event_type();
                    match ty {
                        GDMA_EQE_HWC_INIT_EQ_ID_DB => {
                            let v = HwcInitEqIdDb(w(0));
                            init.eq_db = Some((v.eq_id(), v.doorbell()));
                        }
                        GDMA_EQE_HWC_INIT_DATA => {
                            let v = HwcInitTypeData(w(0));
                            let value = Some(v.value());
                            match v.ty() {
                                HWC_INIT_DATA_CQID => init.cq = value,
                                HWC_INIT_DATA_RQID => init.rq = value,
                                HWC_INIT_DATA_SQID => init.sq = value,
                                HWC_INIT_DATA_QUEUE_DEPTH => init.depth = value,
                                HWC_INIT_DATA_MAX_REQUEST => init.max_req = value,
                                HWC_INIT_DATA_MAX_RESPONSE => init.max_resp = value,
                                HWC_INIT_DATA_GPA_MKEY => init.mkey = value,
                                // PDID, MAX_NUM_CQS, PF-only types: not needed by a VF.
                                _ => {}
                            }
                        }
                        GDMA_EQE_HWC_INIT_DONE => break,
                        _ => others.push((ty, [w(0), w(1), w(2)])),
                    }
                }
                Pop::BadOwner(o) => {
                    return Err(bad(format!(
                        "HWC EQ entry {} has owner bits {o}, neither this lap's nor the last",
                        eq.head.wrapping_sub(1)
                    )));
                }
                Pop::Empty => {
                    if !bar_alive(&bar) {
                        return Err(CpError::DeviceGone {
                            why: "BAR0 reads all ones while waiting for the HWC INIT events".into(),
                        });
                    }
                    if Instant::now() >= deadline {
                        return Err(CpError::Timeout {
                            cmd: "HWC INIT_DONE",
                            ms: timeout.as_millis() as u64,
                        });
                    }
                    backoff.pause();
                }
            }
        }
        let missing: Vec<&str> = [
            ("INIT_EQ_ID_DB", init.eq_db.is_some()),
            ("CQID", init.cq.is_some()),
            ("RQID", init.rq.is_some()),
            ("SQID", init.sq.is_some()),
            ("GPA_MKEY", init.mkey.is_some()),
        ]
        .into_iter()
        .filter(|(_, have)| !have)
        .map(|(n, _)| n)
        .collect();
        if !missing.is_empty() {
            return Err(bad(format!("INIT_DONE without {}", missing.join(", "))));
        }
        let (eq_id, db_page) = init.eq_db.unwrap_or_default();
        let (cq_id, rq_id, sq_id) =
            (init.cq.unwrap_or_default(), init.rq.unwrap_or_default(), init.sq.unwrap_or_default());
        if eq_id as u32 > DB_MAX_EQ_ID || [cq_id, rq_id, sq_id].contains(&0) {
            return Err(bad(format!("HWC queue ids EQ {eq_id} CQ {cq_id} RQ {rq_id} SQ {sq_id}")));
        }
        let db = layout
            .page_offset(db_page as u32)
            .ok_or_else(|| bad(format!("HWC doorbell page {db_page} is outside BAR0")))?;
        if init.depth == Some(0) {
            return Err(bad("queue depth 0".into()));
        }
        let max_req = init.max_req.unwrap_or(HWC_MAX_REQUEST_SIZE as u32);
        if max_req < MIN_MAX_REQUEST {
            return Err(bad(format!("max request size {max_req} is below {MIN_MAX_REQUEST}")));
        }
        let max_resp = init.max_resp.unwrap_or(HWC_MAX_RESPONSE_SIZE as u32);
        if (max_resp as usize) < GDMA_RESP_HDR_SIZE {
            return Err(bad(format!("max response size {max_resp}")));
        }
        eq.id = eq_id as u32;
        let hwc = Hwc {
            mem,
            bar,
            db,
            db_page: db_page as u32,
            eq,
            cq: Consumer::new(cq_id, cq_ring, CQ_OFF, GDMA_CQE_SIZE),
            rq: Producer { id: rq_id, ring: wq_ring, off: RQ_OFF, head_bu: 0 },
            sq: Producer { id: sq_id, ring: wq_ring, off: SQ_OFF, head_bu: 0 },
            mkey: init.mkey.unwrap_or_default(),
            max_req: (max_req as usize).min(HWC_MAX_REQUEST_SIZE),
            max_resp: (max_resp as usize).min(HWC_MAX_RESPONSE_SIZE),
            msg_id: 0,
            activity: 0,
            pending: None,
            late: Vec::new(),
            irq: None,
            stash: Vec::new(),
            counters: HwcCounters::default(),
        };
        // The INIT events are consumed: tell the device (keeps it below its lap limit).
        hwc.ring_eq()?;
        Ok((hwc, others))
    }

    /// The IOVA of the channel's memory (to unmap it).
    pub(super) fn iova(&self) -> u64 {
        self.mem.segment().iova_base()
    }

    /// The channel's memory, for a later channel (once the device can no longer write it: it
    /// reset, dropping this channel).
    pub(super) fn into_mem(self) -> SegWindow {
        self.mem
    }

    /// Writes a 64-bit doorbell into the channel's page.
    fn ring(&self, reg: u32, value: u64) -> Result<(), CpError> {
        // Release: every WQE, request byte and consumed entry written before this doorbell is
        // visible to the device before the doorbell value (pairs with the device's Acquire load
        // of the doorbell slot). A 64-bit store, as the hardware requires.
        fence(Ordering::Release);
        if self.bar.store_u64(self.db + reg as usize, value, Ordering::Relaxed) {
            Ok(())
        } else {
            Err(CpError::Bus(format!("doorbell {reg:#x} outside BAR0")))
        }
    }

    /// Tells the device how far the EQ was consumed; with interrupts, arms it too (its next
    /// event raises the interrupt).
    pub(super) fn ring_eq(&self) -> Result<(), CpError> {
        let arm = self.irq.is_some();
        let v = CqEqDoorbell::eq(self.eq.id, self.eq.ring.doorbell_index(self.eq.head), arm);
        self.ring(DB_EQ, v.0)
    }

    /// Whether the channel's waits are woken by its interrupt.
    pub(super) fn has_irq(&self) -> bool {
        self.irq.is_some()
    }

    fn ring_cq(&self) -> Result<(), CpError> {
        self.ring(DB_CQ, self.cq.doorbell(false))
    }

    /// Wakes waits by the interrupt `irq` from now on.
    pub(super) fn set_irq(&mut self, irq: Arc<Irq>) {
        self.irq = Some(irq);
    }

    /// Next request ids for `dev`: message id (never 0) and activity id.
    pub(super) fn next_ids(&mut self, dev: GdmaDevId) -> RequestIds {
        self.msg_id = self.msg_id.wrapping_add(1).max(1);
        self.activity = self.activity.wrapping_add(1);
        RequestIds { dev_id: dev, hwc_msg_id: self.msg_id, activity_id: self.activity }
    }

    /// Whether a timed-out request still waits for its answer.
    pub(super) fn has_pending(&self) -> bool {
        self.pending.is_some()
    }

    /// Late answers seen since the last call.
    pub(super) fn take_late(&mut self) -> Vec<Late> {
        std::mem::take(&mut self.late)
    }

    /// Reads the CQEs available now. Completions of the request in flight end it (`Some`);
    /// anything else is discarded and counted (its description is returned in `junk`).
    fn reap(
        &mut self,
        junk: &mut Option<String>,
    ) -> Option<Result<(GdmaRespHdr, Vec<u8>), String>> {
        let win = self.mem.win();
        let mut done = None;
        let mut consumed = false;
        let mut e = [0u8; 64];
        while done.is_none() {
            let verdict = match self.cq.pop(&win, &mut e) {
                Pop::Empty => break,
                Pop::BadOwner(o) => CqeVerdict::Junk(format!(
                    "HWC CQ entry {} has owner bits {o}, neither this lap's nor the last",
                    self.cq.head.wrapping_sub(1)
                )),
                Pop::Entry => judge_cqe(
                    &e,
                    self.sq.id,
                    self.rq.id,
                    self.rq.ring.size_bytes(),
                    self.pending.as_ref().map(|p| p.rq_wqe_offset),
                    self.max_resp,
                ),
            };
            consumed = true;
            match verdict {
                CqeVerdict::Sent => {}
                CqeVerdict::Junk(why) => {
                    self.counters.bad_entries += 1;
                    junk.get_or_insert(why);
                }
                CqeVerdict::BadAnswer(why) => done = Some(Err(why)),
                CqeVerdict::Answer(len) => {
                    let mut resp = vec![0u8; len];
                    win.read(RESP_OFF, &mut resp);
                    let hdr = self.pending.as_ref().map(|p| p.hdr).unwrap_or_default();
                    done = Some(check_response(&resp, &hdr));
                }
            }
        }
        if consumed {
            // Consumed entries are reported at once, so the device never nears its lap limit.
            let _ = self.ring_cq();
        }
        done
    }

    /// Waits until the request in flight is answered (or `deadline`). With `fail_on_junk`, a
    /// completion that makes no sense ends the wait with `BadAnswer` (the request stays in
    /// flight: its answer is discarded later). On a timeout the request stays in flight too.
    fn wait(
        &mut self,
        cmd: &'static str,
        deadline: Instant,
        timeout: Duration,
        fail_on_junk: bool,
    ) -> Result<Result<(GdmaRespHdr, Vec<u8>), String>, CpError> {
        let r = self.wait_for_answer(cmd, deadline, timeout, fail_on_junk);
        if let Some(irq) = self.irq.clone() {
            irq.set_waiter(None);
            // Events that came while this thread waited (their interrupt woke it): the owner
            // takes them now (`drain_eq`), not at its next look.
            self.pump_eq();
            if !self.stash.is_empty() {
                irq.notify();
            }
        }
        r
    }

    fn wait_for_answer(
        &mut self,
        cmd: &'static str,
        deadline: Instant,
        timeout: Duration,
        fail_on_junk: bool,
    ) -> Result<Result<(GdmaRespHdr, Vec<u8>), String>, CpError> {
        let mut backoff = Backoff::default();
        loop {
            let mut junk = None;
            if let Some(answer) = self.reap(&mut junk) {
                self.pending = None;
                return Ok(answer);
            }
            if let (Some(why), true) = (junk, fail_on_junk) {
                return Err(CpError::BadAnswer { cmd, why });
            }
            if !bar_alive(&self.bar) {
                return Err(CpError::DeviceGone {
                    why: format!("BAR0 reads all ones while waiting for {cmd}"),
                });
            }
            if Instant::now() >= deadline {
                return Err(CpError::Timeout { cmd, ms: timeout.as_millis() as u64 });
            }
            match self.irq.clone() {
                Some(irq) => self.sleep_until_signalled(&irq, deadline),
                None => backoff.pause(),
            }
        }
    }

    /// Sleeps until the device signals a completion (or [`IRQ_SLEEP_MAX`], or the deadline):
    /// arms the CQ (its next entry posts an event on the EQ) and the EQ (its next event raises
    /// the interrupt), and does not sleep when an entry is there already. No spinning first:
    /// a device thread that shares this CPU could not answer while it spun.
    fn sleep_until_signalled(&mut self, irq: &Irq, deadline: Instant) {
        // Events on the EQ first: an EQ armed behind unconsumed events signals at once.
        self.pump_eq();
        irq.set_waiter(Some(std::thread::current()));
        let eq = CqEqDoorbell::eq(self.eq.id, self.eq.ring.doorbell_index(self.eq.head), true);
        let armed = self.ring(DB_CQ, self.cq.doorbell(true)).and_then(|()| self.ring(DB_EQ, eq.0));
        if armed.is_err() {
            std::thread::sleep(SHORT_SLEEP);
            return;
        }
        if self.cq.ready(&self.mem.win()) {
            return;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        std::thread::park_timeout(left.min(IRQ_SLEEP_MAX));
    }

    /// Waits (until `deadline`) for the answer of a request that timed out earlier, and files it
    /// as a [`Late`] answer. Ok when nothing is in flight any more.
    pub(super) fn settle(
        &mut self,
        cmd: &'static str,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<(), CpError> {
        let Some(p) = self.pending.clone() else {
            return Ok(());
        };
        let answer = self.wait(cmd, deadline, timeout, false)?;
        self.counters.late_answers += 1;
        self.late.push(Late { msg: p.msg, answer });
        Ok(())
    }

    /// Writes the request, posts the RQ WQE for its answer and the SQ WQE that sends it, and
    /// rings both doorbells. With `hdr`, the request becomes the one in flight.
    fn post(&mut self, msg: &[u8], hdr: Option<GdmaReqHdr>) -> Result<(), CpError> {
        let win = self.mem.win();
        win.write(REQ_OFF, msg);
        let base = self.mem.segment().iova_base();
        let resp = Sge::new(base + RESP_OFF as u64, self.mkey, self.max_resp as u32);
        let rq_wqe: Vec<u8> = rx_wqe(resp).iter().flat_map(|d| d.to_le_bytes()).collect();
        let rq_wqe_offset = self.rq.put(&win, &rq_wqe);
        self.ring(DB_RQ, WqDoorbell::rq(self.rq.id, self.rq.tail()).0)?;
        let oob = HwcTxOob::vf(self.cq.id, self.sq.id);
        let req = Sge::new(base + REQ_OFF as u64, self.mkey, msg.len() as u32);
        let sq_wqe: Vec<u8> = hwc_sq_wqe(&oob, req).iter().flat_map(|d| d.to_le_bytes()).collect();
        self.sq.put(&win, &sq_wqe);
        if let Some(hdr) = hdr {
            self.pending = Some(Pending { msg: msg.to_vec(), hdr, rq_wqe_offset });
        }
        self.counters.requests += 1;
        self.ring(DB_SQ, WqDoorbell::sq(self.sq.id, self.sq.tail()).0)
    }

    /// Test hook: sends a request nobody waits for (its completions then look, to the
    /// channel, like completions the device made up).
    #[cfg(test)]
    pub(super) fn test_ghost(&mut self, dev: GdmaDevId) -> Result<(), CpError> {
        let ids = self.next_ids(dev);
        let mut buf = [0u8; 64];
        let n = encode_request(&mut buf, ids, &gdma_defs::GdmaQueryMaxResourcesReq, &[])
            .map_err(|e| CpError::Exhausted(e.to_string()))?;
        self.post(&buf[..n], None)
    }

    /// Sends `msg` (a complete request with header `hdr`) and waits for its answer: status and
    /// body bytes. A request still in flight from before is waited for first (its answer is
    /// filed as [`Late`]); if it does not come by the deadline, this request is not sent.
    pub(super) fn transact(
        &mut self,
        cmd: &'static str,
        msg: &[u8],
        hdr: GdmaReqHdr,
        timeout: Duration,
    ) -> Result<(u32, Vec<u8>), CpError> {
        let deadline = Instant::now() + timeout;
        if !bar_alive(&self.bar) {
            return Err(CpError::DeviceGone { why: format!("BAR0 reads all ones before {cmd}") });
        }
        if msg.len() > self.max_req {
            return Err(CpError::Exhausted(format!(
                "{cmd}: a request of {} bytes exceeds the channel's {} bytes",
                msg.len(),
                self.max_req
            )));
        }
        self.settle(cmd, deadline, timeout)?;
        // Completions nobody waits for (none unless the device misbehaves): out of the way.
        let mut junk = None;
        let _ = self.reap(&mut junk);

        self.post(msg, Some(hdr))?;

        match self.wait(cmd, deadline, timeout, true) {
            Ok(Ok((h, body))) => Ok((h.status, body)),
            Ok(Err(why)) => Err(CpError::BadAnswer { cmd, why }),
            Err(e) => {
                if matches!(e, CpError::Timeout { .. }) {
                    self.counters.timeouts += 1;
                }
                Err(e)
            }
        }
    }

    /// Sends a typed request and returns the status and the typed body. A successful answer
    /// (status 0 or MORE_ENTRIES) must carry at least `min_body` body bytes; a shorter body
    /// (an older response version) reads as zero-extended.
    pub(super) fn call<R: HwcRequest>(
        &mut self,
        cmd: &'static str,
        dev: GdmaDevId,
        body: &R,
        trailing: &[u8],
        min_body: usize,
        timeout: Duration,
    ) -> Result<(u32, R::Response), CpError> {
        let ids = self.next_ids(dev);
        let mut buf = [0u8; HWC_MAX_REQUEST_SIZE];
        let n = encode_request(&mut buf, ids, body, trailing)
            .map_err(|e| CpError::Exhausted(format!("{cmd}: request does not fit: {e}")))?;
        let hdr = request_header::<R>(ids, trailing.len());
        let (status, resp) = self.transact(cmd, &buf[..n], hdr, timeout)?;
        if (status == GDMA_STATUS_SUCCESS || status == GDMA_STATUS_MORE_ENTRIES)
            && resp.len() < min_body
        {
            return Err(CpError::BadAnswer {
                cmd,
                why: format!("response body of {} bytes, at least {min_body} expected", resp.len()),
            });
        }
        Ok((status, read_zero_extended(&resp)))
    }

    /// Takes up to one lap of events from the HWC EQ, after those taken while waiting: each
    /// valid EQE as (type, data), or why an entry was unusable. Returns how many entries were
    /// consumed now.
    pub(super) fn drain_eq(&mut self, out: &mut Vec<Result<RawEvent, String>>) -> usize {
        let n = self.pump_eq();
        out.append(&mut self.stash);
        n
    }

    /// Takes up to one lap of events from the HWC EQ into the stash `drain_eq` empties; the
    /// completion events of the channel's own CQ (the signal a wait armed for) are dropped.
    /// Returns how many entries were consumed.
    fn pump_eq(&mut self) -> usize {
        let win = self.mem.win();
        let mut e = [0u8; 16];
        let mut n = 0;
        while n < self.eq.ring.entries() as usize {
            let ev = match self.eq.pop(&win, &mut e) {
                Pop::Empty => break,
                Pop::Entry => {
                    let w = |i: usize| {
                        u32::from_le_bytes([e[4 * i], e[4 * i + 1], e[4 * i + 2], e[4 * i + 3]])
                    };
                    let ty = EqeInfo(w(3)).event_type();
                    (ty != GDMA_EQE_COMPLETION || w(0) != self.cq.id)
                        .then(|| Ok((ty, [w(0), w(1), w(2)])))
                }
                Pop::BadOwner(o) => {
                    self.counters.bad_entries += 1;
                    Some(Err(format!(
                        "HWC EQ entry {} has owner bits {o}, neither this lap's nor the last",
                        self.eq.head.wrapping_sub(1)
                    )))
                }
            };
            n += 1;
            match ev {
                // Nobody took the events for a long while: the oldest are kept.
                Some(_) if self.stash.len() >= STASH_MAX => self.counters.bad_entries += 1,
                Some(ev) => self.stash.push(ev),
                None => {}
            }
        }
        n
    }

    /// The HWC EQ id.
    pub(super) fn eq_id(&self) -> u32 {
        self.eq.id
    }

    /// The channel's doorbell page.
    pub(super) fn db_page(&self) -> u32 {
        self.db_page
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gdma_defs::{GDMA_QUERY_MAX_RESOURCES, IntoBytes, RequestIds, response_header};

    /// A xorshift generator for the fuzz tests.
    fn rng(seed: &mut u64) -> u64 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        *seed
    }

    fn cqe(data: &[u32], info: CqeInfo) -> [u8; 64] {
        gdma_defs::Cqe::new(data, info).to_bytes()
    }

    #[test]
    fn cqes_are_judged_by_queue_and_wqe() {
        let (sq, rq) = (4, 3);
        let sent = cqe(&[], CqeInfo::new(sq, true, 1));
        assert_eq!(judge_cqe(&sent, sq, rq, 4096, Some(0x40), 4096), CqeVerdict::Sent);
        let other_sq = cqe(&[], CqeInfo::new(7, true, 1));
        assert!(matches!(judge_cqe(&other_sq, sq, rq, 4096, Some(0), 4096), CqeVerdict::Junk(_)));
        let answer = |off: u32, len: u32| {
            cqe(&HwcRxOob::response(off, len).to_cqe_data(), CqeInfo::new(rq, false, 1))
        };
        assert_eq!(
            judge_cqe(&answer(0x40, 72), sq, rq, 4096, Some(0x40), 4096),
            CqeVerdict::Answer(72)
        );
        // Unmasked offsets (OVMM writes them so) are accepted.
        assert_eq!(
            judge_cqe(&answer(0x1040, 72), sq, rq, 4096, Some(0x40), 4096),
            CqeVerdict::Answer(72)
        );
        assert!(matches!(
            judge_cqe(&answer(0x60, 72), sq, rq, 4096, Some(0x40), 4096),
            CqeVerdict::Junk(_)
        ));
        assert!(matches!(
            judge_cqe(&answer(0x40, 72), sq, rq, 4096, None, 4096),
            CqeVerdict::Junk(_)
        ));
        assert!(matches!(
            judge_cqe(&answer(0x40, 4097), sq, rq, 4096, Some(0x40), 4096),
            CqeVerdict::BadAnswer(_)
        ));
        assert!(matches!(
            judge_cqe(&answer(0x40, 8), sq, rq, 4096, Some(0x40), 4096),
            CqeVerdict::BadAnswer(_)
        ));
        let wrong_rq = cqe(&HwcRxOob::response(0x40, 72).to_cqe_data(), CqeInfo::new(9, false, 1));
        assert!(matches!(
            judge_cqe(&wrong_rq, sq, rq, 4096, Some(0x40), 4096),
            CqeVerdict::Junk(_)
        ));
    }

    #[test]
    fn random_cqes_never_panic_and_never_answer_without_a_request() {
        let mut seed = 0x1234_5678_9abc_def1u64;
        for _ in 0..200_000 {
            let mut e = [0u8; 64];
            for c in e.chunks_exact_mut(8) {
                c.copy_from_slice(&rng(&mut seed).to_le_bytes());
            }
            let in_flight = (seed & 1 == 0).then_some((seed >> 8) as u32 & 0xfe0);
            let v = judge_cqe(&e, 4, 3, 4096, in_flight, 4096);
            if let CqeVerdict::Answer(len) = v {
                assert!(in_flight.is_some());
                assert!((GDMA_RESP_HDR_SIZE..=4096).contains(&len));
            }
        }
    }

    #[test]
    fn owner_bits_decide_what_a_slot_holds() {
        use pmd_mempool::{HugePolicy, MemSegment};
        let seg = MemSegment::anonymous("hwc-ut", 4096, HugePolicy::Never).unwrap();
        let mem = SegWindow::new(std::sync::Arc::new(seg));
        let win = mem.win();
        let ring = OwnerRing::for_eq_bytes(4096).unwrap();
        let mut eq = Consumer::new(1, ring, 0, GDMA_EQE_SIZE);
        let mut e = [0u8; 16];
        let put = |index: u32, owner: u8| {
            let at = ring.slot(index) as usize * 16;
            assert!(win.write(at, &[7; 12]));
            assert!(win.store_u32(at + 12, EqeInfo::new(64, owner).0, Ordering::Release));
        };
        // Zeroed memory: empty on the first lap.
        assert_eq!(eq.pop(&win, &mut e), Pop::Empty);
        let h = eq.head;
        put(h, ring.expected_owner(h));
        assert_eq!(eq.pop(&win, &mut e), Pop::Entry);
        assert_eq!(
            (e[0], EqeInfo(u32::from_le_bytes([e[12], e[13], e[14], e[15]])).event_type()),
            (7, 64)
        );
        assert_eq!(eq.head, h + 1);
        // Three laps ahead: consumed as bad, the head moves on.
        let bad = (ring.expected_owner(h + 1) + 3) & 7;
        put(h + 1, bad);
        assert_eq!(eq.pop(&win, &mut e), Pop::BadOwner(bad));
        assert_eq!(eq.head, h + 2);
        assert_eq!(eq.pop(&win, &mut e), Pop::Empty);
        // The doorbell reports the consumer index mod 8N.
        let db = CqEqDoorbell(eq.doorbell(false));
        assert_eq!((db.id(), db.tail(), db.arm()), (1, ring.doorbell_index(h + 2), false));
        // A whole lap later the same slot is judged by the next lap's owner count.
        let mut late = Consumer { head: h + ring.entries(), ..eq };
        put(h + ring.entries(), ring.expected_owner(h + ring.entries()));
        assert_eq!(late.pop(&win, &mut e), Pop::Entry);
    }

    #[test]
    fn responses_must_echo_the_request() {
        let ids = RequestIds::hwc(7, 0x55);
        let req = request_header::<gdma_defs::GdmaQueryMaxResourcesReq>(ids, 0);
        assert_eq!(req.req.msg_type, GDMA_QUERY_MAX_RESOURCES);
        let body = [1u8; 40];
        let good = response_header(&req, 0, body.len());
        let mut bytes = good.as_bytes().to_vec();
        bytes.extend_from_slice(&body);
        let (h, b) = check_response(&bytes, &req).unwrap();
        assert_eq!((h.status, b.len()), (0, 40));
        // Another message id, another activity, a size past the bytes, a truncated header.
        let mut other = good;
        other.response.hwc_msg_id = 8;
        let mut o = other.as_bytes().to_vec();
        o.extend_from_slice(&body);
        assert!(check_response(&o, &req).unwrap_err().contains("message 8"));
        let mut other = good;
        other.activity_id ^= 1;
        let mut o = other.as_bytes().to_vec();
        o.extend_from_slice(&body);
        assert!(check_response(&o, &req).is_err());
        let mut other = good;
        other.response.msg_size = 4000;
        let mut o = other.as_bytes().to_vec();
        o.extend_from_slice(&body);
        assert!(check_response(&o, &req).is_err());
        assert!(check_response(&bytes[..20], &req).is_err());
    }

    #[test]
    fn random_responses_never_panic() {
        let ids = RequestIds::hwc(7, 0x55);
        let req = request_header::<gdma_defs::GdmaQueryMaxResourcesReq>(ids, 0);
        let mut seed = 0xdead_beef_0bad_cafeu64;
        for i in 0..50_000 {
            let len = (rng(&mut seed) % 300) as usize;
            let mut b: Vec<u8> = (0..len).map(|_| rng(&mut seed) as u8).collect();
            if i % 2 == 0 && len >= 32 {
                // A plausible header with random fields.
                let mut h = response_header(&req, 0, len - 32);
                h.response.msg_size = (rng(&mut seed) % 400) as u32;
                b[..32].copy_from_slice(h.as_bytes());
            }
            let _ = check_response(&b, &req);
        }
    }
}
