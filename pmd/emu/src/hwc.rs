//! The hardware channel: the SMC handshake that creates it, and the request/response service
//! over its four queues (§6.1, §6.2, §3.6 of the spec).
//!
//! ESTABLISH_HWC gives four page frame numbers. The device builds the HWC EQ, CQ, RQ and SQ on
//! them (ids 1 to 4: below the id range of data-path queues, so they never collide) and posts
//! INIT_EQ_ID_DB, INIT_DATA and INIT_DONE. Then, whenever the SQ holds a request and the RQ a
//! response buffer, it answers: the command handlers are in `cmds`. Queue depth is 1, as on
//! OpenVMM's emulator: one request in flight.

use std::time::Instant;

use gdma_defs::{
    CQE_DATA_DWORDS, DecodeError, EstablishHwc, GDMA_EQE_COMPLETION, GDMA_EQE_HWC_INIT_DATA,
    GDMA_EQE_HWC_INIT_DONE, GDMA_EQE_HWC_INIT_EQ_ID_DB, GDMA_STATUS_FAILURE, GdmaMsgHdr,
    GdmaRespHdr, HWC_INIT_DATA_CQID, HWC_INIT_DATA_GPA_MKEY, HWC_INIT_DATA_MAX_NUM_CQS,
    HWC_INIT_DATA_MAX_REQUEST, HWC_INIT_DATA_MAX_RESPONSE, HWC_INIT_DATA_PDID,
    HWC_INIT_DATA_QUEUE_DEPTH, HWC_INIT_DATA_RQID, HWC_INIT_DATA_SQID, HWC_MAX_REQUEST_SIZE,
    HWC_MAX_RESPONSE_SIZE, HwcInitEqIdDb, HwcInitTypeData, HwcRxOob, HwcTxOob, IntoBytes,
    MAX_RX_WQE_SIZE, MAX_TX_WQE_SIZE, RequestRef, SMC_MSG_TYPE_DESTROY_HWC,
    SMC_MSG_TYPE_ESTABLISH_HWC, SMC_PAGE_SHIFT, WqeRef,
};

use crate::device::{Core, Down};
use crate::dma::{PAGE, RingMem};
use crate::doorbell::post_eqe;
use crate::queues::{Cq, Eq, Posted, Wq};

/// HWC queue ids.
pub(crate) const HWC_EQ_ID: u32 = 1;
/// HWC CQ id.
pub(crate) const HWC_CQ_ID: u32 = 2;
/// HWC RQ id.
pub(crate) const HWC_RQ_ID: u32 = 3;
/// HWC SQ id.
pub(crate) const HWC_SQ_ID: u32 = 4;
/// Most CQs the device reports (INIT_DATA MAX_NUM_CQS).
pub(crate) const MAX_NUM_CQS: u32 = 1024;

/// The HWC queues and the request being delayed, if any.
pub(crate) struct Hwc {
    pub(crate) eq: Eq,
    pub(crate) cq: Cq,
    pub(crate) sq: Wq,
    pub(crate) rq: Wq,
    /// `hwc-delay`: the request at the SQ head is answered no sooner than this.
    not_before: Option<Instant>,
}

/// Serves the shared-memory channel: ESTABLISH_HWC and DESTROY_HWC. True if a request was
/// answered.
pub(crate) fn poll_smc(core: &mut Core) -> bool {
    let bar = &core.shared.bar;
    let hdr = bar.smc_header();
    // Idle (zero), a response the driver has not overwritten yet, or all ones: nothing to do.
    if hdr.0 == 0 || hdr.0 == u32::MAX || hdr.is_response() {
        return false;
    }
    bar.smc_take(hdr);
    let dwords = bar.smc_read();
    let status = match hdr.msg_type() {
        SMC_MSG_TYPE_ESTABLISH_HWC => match establish(core, EstablishHwc::decode(&dwords)) {
            Ok(()) => 0,
            Err(_) => 1,
        },
        SMC_MSG_TYPE_DESTROY_HWC => {
            core.hwc = None;
            0
        }
        _ => 1,
    };
    core.shared.bar.smc_respond(hdr.response_to(status));
    true
}

/// Builds the HWC on the four pages and announces it.
fn establish(core: &mut Core, e: EstablishHwc) -> Result<(), DecodeError> {
    let lap = core.shared.cfg.cq_lap_limit;
    let ring = |pfn: u64| -> Result<RingMem, DecodeError> {
        let iova = pfn.checked_shl(SMC_PAGE_SHIFT).unwrap_or(u64::MAX);
        RingMem::resolve(&core.space, &[iova], PAGE as u32)
            .map_err(|_| DecodeError::InvalidField { field: "pfn", value: pfn })
    };
    let bad = |field| DecodeError::InvalidField { field, value: 0 };
    let mut eq = Eq::new(HWC_EQ_ID, ring(e.eq_pfn)?, lap).ok_or(bad("eq"))?;
    eq.msix = e.msix_index as u32;
    let cq = Cq::new(HWC_CQ_ID, ring(e.cq_pfn)?, Some(HWC_EQ_ID), lap).ok_or(bad("cq"))?;
    let rq = Wq::new(HWC_RQ_ID, HWC_CQ_ID, ring(e.rq_pfn)?, 0).ok_or(bad("rq"))?;
    let sq = Wq::new(HWC_SQ_ID, HWC_CQ_ID, ring(e.sq_pfn)?, 0).ok_or(bad("sq"))?;
    let mut h = Hwc { eq, cq, sq, rq, not_before: None };
    let eq_db = HwcInitEqIdDb::ZERO.with_eq_id(HWC_EQ_ID as u16).with_doorbell(0);
    let shared = &*core.shared;
    post_eqe(shared, &mut h.eq, GDMA_EQE_HWC_INIT_EQ_ID_DB, [eq_db.0, 0, 0]);
    let obj = &core.obj;
    for (ty, value) in [
        (HWC_INIT_DATA_CQID, HWC_CQ_ID),
        (HWC_INIT_DATA_RQID, HWC_RQ_ID),
        (HWC_INIT_DATA_SQID, HWC_SQ_ID),
        (HWC_INIT_DATA_QUEUE_DEPTH, 1),
        (HWC_INIT_DATA_MAX_REQUEST, HWC_MAX_REQUEST_SIZE as u32),
        (HWC_INIT_DATA_MAX_RESPONSE, HWC_MAX_RESPONSE_SIZE as u32),
        (HWC_INIT_DATA_MAX_NUM_CQS, MAX_NUM_CQS),
        (HWC_INIT_DATA_PDID, obj.pdid),
        (HWC_INIT_DATA_GPA_MKEY, obj.gpa_mkey),
    ] {
        let d = HwcInitTypeData::ZERO.with_ty(ty).with_value(value);
        post_eqe(shared, &mut h.eq, GDMA_EQE_HWC_INIT_DATA, [d.0, 0, 0]);
    }
    post_eqe(shared, &mut h.eq, GDMA_EQE_HWC_INIT_DONE, [0; 3]);
    core.hwc = Some(h);
    Ok(())
}

/// Answers the request at the head of the HWC SQ, if there is one and a response buffer.
pub(crate) fn service(core: &mut Core) -> bool {
    let Some(h) = core.hwc.as_mut() else {
        return false;
    };
    if h.sq.pending() == 0 || h.rq.pending() == 0 {
        return false;
    }
    if let Some(delay) = core.faults.hwc_delay {
        let due = *h.not_before.get_or_insert_with(|| Instant::now() + delay);
        if Instant::now() < due {
            return false;
        }
    }
    h.not_before = None;

    // The request WQE (header, 24-byte hwc_tx_oob, one SGE) and the response WQE (one SGE).
    let mut sq_wqe = [0u8; MAX_TX_WQE_SIZE as usize];
    let sq_n = (h.sq.pending() as usize).min(sq_wqe.len());
    h.sq.read(0, &mut sq_wqe[..sq_n]);
    let mut rq_wqe = [0u8; MAX_RX_WQE_SIZE as usize];
    let rq_n = (h.rq.pending() as usize).min(rq_wqe.len());
    h.rq.read(0, &mut rq_wqe[..rq_n]);
    let req_wqe = WqeRef::parse(&sq_wqe[..sq_n], MAX_TX_WQE_SIZE);
    let resp_wqe = WqeRef::parse(&rq_wqe[..rq_n], MAX_RX_WQE_SIZE);
    let (sq_size, rq_size) = match (&req_wqe, &resp_wqe) {
        (Ok(a), Ok(b)) => (a.size_bytes(), b.size_bytes()),
        // A WQE that cannot even be sized: consume what the doorbell announced (the driver
        // broke the ring) and answer nothing, so the channel does not wedge on it.
        _ => {
            core.shared.stats.device.hwc_errors.inc();
            let (sp, rp) = (h.sq.pending(), h.rq.pending());
            h.sq.advance(if req_wqe.is_err() { sp } else { 0 });
            h.rq.advance(if resp_wqe.is_err() { rp } else { 0 });
            return true;
        }
    };
    let (req_wqe, resp_wqe) = (req_wqe.expect("checked"), resp_wqe.expect("checked"));
    let req_sge = req_wqe.sges().next().unwrap_or_default();
    let resp_sge = resp_wqe.sges().next().unwrap_or_default();
    let oob = HwcTxOob::read_from_bytes_or_default(req_wqe.oob());
    let rq_offset = h.rq.head() & (h.rq.size() - 1);

    // Read the request; a bad address or size, or an OOB naming other queues, is answered with
    // an error status.
    let mut req = [0u8; HWC_MAX_REQUEST_SIZE];
    let mut resp = [0u8; HWC_MAX_RESPONSE_SIZE];
    let req_len = req_sge.size as usize;
    let readable = req_len <= req.len()
        && oob.vscq.vscq_id() == HWC_CQ_ID
        && oob.vsq_id == HWC_SQ_ID
        && core.space.read(req_sge.address, &mut req[..req_len]).is_ok();
    let parsed = if readable {
        RequestRef::parse(&req[..req_len])
    } else {
        Err(DecodeError::Truncated { needed: 0, got: 0 })
    };
    let resp_len = match parsed {
        Ok(r) => {
            core.shared.stats.count_request(r.msg_type());
            crate::cmds::handle(core, &r, &mut resp)
        }
        Err(_) => {
            core.shared.stats.device.hwc_errors.inc();
            error_response(&mut resp)
        }
    };
    let resp_len = resp_len.min(resp_sge.size as usize);

    // Zero the response buffer, then write the response (forward compatibility, as OpenVMM's
    // emulator does); a bad response address is a device error: nothing is written.
    let zero = [0u8; HWC_MAX_RESPONSE_SIZE];
    let buf_len = (resp_sge.size as usize).min(zero.len());
    if core.space.write(resp_sge.address, &zero[..buf_len]).is_err()
        || core.space.write(resp_sge.address, &resp[..resp_len]).is_err()
    {
        core.shared.stats.device.dma_errors.inc();
    }

    let Some(h) = core.hwc.as_mut() else {
        // A handler reset the device (GENERATE_RESET_REQUEST_EQE): nothing left to complete.
        return true;
    };
    h.sq.advance(sq_size);
    h.rq.advance(rq_size);
    let mut sig =
        h.cq.post(&[0; CQE_DATA_DWORDS], HWC_SQ_ID, true) == (Posted::Done { signal: true });
    let oob = HwcRxOob::response(rq_offset, resp_len as u32);
    sig |= h.cq.post(&oob.to_cqe_data(), HWC_RQ_ID, false) == (Posted::Done { signal: true });
    if sig {
        post_eqe(&core.shared, &mut h.eq, GDMA_EQE_COMPLETION, [HWC_CQ_ID, 0, 0]);
    }
    true
}

/// A response for a request that could not be parsed: a header with a failure status.
fn error_response(out: &mut [u8]) -> usize {
    let hdr = GdmaRespHdr {
        response: GdmaMsgHdr {
            msg_size: core::mem::size_of::<GdmaRespHdr>() as u32,
            ..Default::default()
        },
        status: GDMA_STATUS_FAILURE,
        ..Default::default()
    };
    let b = hdr.as_bytes();
    out[..b.len()].copy_from_slice(b);
    b.len()
}

/// Posts EQE 135 on the HWC EQ and starts the reset: the channel goes silent, the register page
/// reads all ones (so a driver that probes too early sees that the device is not back, and an
/// ESTABLISH_HWC it writes then is lost), and every object is forgotten once the down time has
/// passed, when the register map comes back.
pub(crate) fn request_reset(core: &mut Core, data: u32) {
    // Poisoned first: the EQE's Release store of its owner bits then orders the poison before
    // the event, so a driver that has read the event sees the register page all ones.
    core.shared.bar.poison();
    if let Some(h) = core.hwc.as_mut() {
        post_eqe(&core.shared, &mut h.eq, gdma_defs::GDMA_EQE_HWC_RESET_REQUEST, [data, 0, 0]);
    }
    core.down = Down::ResetRequested(Instant::now() + core.shared.cfg.reset_down_time);
}

/// Reading a `T` from the start of `bytes`, or its default.
trait ReadOr: Sized {
    fn read_from_bytes_or_default(bytes: &[u8]) -> Self;
}

impl<T: gdma_defs::FromBytes + Default> ReadOr for T {
    fn read_from_bytes_or_default(bytes: &[u8]) -> T {
        T::read_from_prefix(bytes).map(|(t, _)| t).unwrap_or_default()
    }
}
