//! HWC command handlers: the generic GDMA requests (§6.3) and the MANA Ethernet requests (§6.4).
//!
//! Each handler validates its request against the object model and answers with a status and
//! a body; nothing a request carries can make the device panic or touch memory outside the
//! mapped IOVA space. Responses echo the request's message type, `hwc_msg_id`, device id and
//! activity id, and use the response version the request asked for.

use gdma_defs::{
    ConfigVportRx, GDMA_CQ_NO_EQ, GDMA_DEVICE_MANA, GDMA_PAGE_TYPE_4K,
    GDMA_PF_CAP_FLAG_1_EQE_REQUEST_VF_SELF_RESET, GDMA_PROTOCOL_V1, GDMA_RESOURCE_DOORBELL_PAGE,
    GDMA_STATUS_FAILURE, GDMA_STATUS_MORE_ENTRIES, GDMA_STATUS_SUCCESS,
    GdmaAllocateResourceRangeReq, GdmaAllocateResourceRangeResp, GdmaCreateDmaRegionReq,
    GdmaCreateDmaRegionResp, GdmaCreateQueueReq, GdmaCreateQueueResp, GdmaDestroyDmaRegionReq,
    GdmaDestroyResourceRangeReq, GdmaDevId, GdmaDisableQueueReq, GdmaDmaRegionAddPagesReq,
    GdmaGenerateResetRequestEqeReq, GdmaGenerateTestEventReq, GdmaQueryMaxResourcesResp,
    GdmaQueueType, GdmaRegisterDeviceResp, GdmaVerifyVerReq, GdmaVerifyVerResp, Immutable,
    IntoBytes, ManaCfgRxSteerResp, ManaConfigVportTxReq, ManaConfigVportTxResp, ManaCreateWqObjReq,
    ManaCreateWqObjResp, ManaDestroyWqObjReq, ManaFenceRqReq, ManaQueryDeviceCfgResp,
    ManaQueryGfStatReq, ManaQueryGfStatResp, ManaQueryVportCfgReq, ManaQueryVportCfgResp,
    RequestRef, encode_response, is_valid_page_addr, read_page_list, tristate_value,
};

use crate::bar::DB_PAGES;
use crate::device::Core;
use crate::dma::{PAGE, RingMem};
use crate::hwc::{HWC_EQ_ID, MAX_NUM_CQS};
use crate::objects::{DmaRegion, Rq, Sq, WqObj};
use crate::queues::{Cq, Eq, Wq};

/// The MANA Ethernet device id LIST_DEVICES reports.
pub(crate) const MANA_DEV_ID: GdmaDevId = GdmaDevId { ty: GDMA_DEVICE_MANA, instance: 0 };

/// A handler's answer: status and body bytes.
type Answer = (u32, Vec<u8>);

fn ok<T: IntoBytes + Immutable>(body: &T) -> Answer {
    (GDMA_STATUS_SUCCESS, body.as_bytes().to_vec())
}

fn fail() -> Answer {
    (GDMA_STATUS_FAILURE, Vec::new())
}

fn empty() -> Answer {
    (GDMA_STATUS_SUCCESS, Vec::new())
}

/// Answers request `req` into `out`; returns the response length.
pub(crate) fn handle(core: &mut Core, req: &RequestRef<'_>, out: &mut [u8]) -> usize {
    let t = req.msg_type();
    let (status, body) = if core.faults.fail_cmd == Some(t) {
        fail()
    } else {
        dispatch(core, req).unwrap_or_else(fail)
    };
    if status != GDMA_STATUS_SUCCESS && status != GDMA_STATUS_MORE_ENTRIES {
        core.shared.stats.device.hwc_errors.inc();
    }
    encode_response(out, &req.hdr, status, &(), &body).unwrap_or(0)
}

/// Runs the handler of the request's type. `None` (a body too short, an unknown object) becomes
/// a failure status.
fn dispatch(core: &mut Core, req: &RequestRef<'_>) -> Option<Answer> {
    use gdma_defs::*;
    Some(match req.msg_type() {
        GDMA_VERIFY_VF_DRIVER_VERSION => {
            verify_version(req.body_zero_extended::<GdmaVerifyVerReq>())
        }
        GDMA_QUERY_MAX_RESOURCES => query_max_resources(core),
        GDMA_LIST_DEVICES => ok(&GdmaListDevicesResp::from_devices(&[HWC_DEV_ID, MANA_DEV_ID])),
        GDMA_REGISTER_DEVICE => register_device(core, req.hdr.dev_id)?,
        GDMA_DEREGISTER_DEVICE => deregister_device(core, req.hdr.dev_id)?,
        GDMA_GENERATE_TEST_EQE => test_eqe(core, req.body().ok()?)?,
        GDMA_GENERATE_RESET_REQUEST_EQE => reset_request_eqe(core, req.body().ok()?)?,
        GDMA_CREATE_QUEUE => create_queue(core, req.body().ok()?)?,
        GDMA_DISABLE_QUEUE => disable_queue(core, req.body().ok()?)?,
        GDMA_ALLOCATE_RESOURCE_RANGE => allocate_range(core, req.body().ok()?)?,
        GDMA_DESTROY_RESOURCE_RANGE => destroy_range(core, req.body().ok()?)?,
        GDMA_CREATE_DMA_REGION => create_region(core, req)?,
        GDMA_DMA_REGION_ADD_PAGES => add_pages(core, req)?,
        GDMA_DESTROY_DMA_REGION => destroy_region(core, req.body().ok()?)?,
        MANA_QUERY_DEV_CONFIG => query_dev_config(core),
        MANA_QUERY_VPORT_CONFIG => query_vport_config(core, req.body().ok()?)?,
        MANA_CONFIG_VPORT_TX => config_vport_tx(core, req.body().ok()?)?,
        MANA_CREATE_WQ_OBJ => create_wq_obj(core, req.body_zero_extended())?,
        MANA_DESTROY_WQ_OBJ => destroy_wq_obj(core, req.body().ok()?)?,
        MANA_FENCE_RQ => fence_rq(core, req.body().ok()?)?,
        MANA_CONFIG_VPORT_RX => config_vport_rx(core, req)?,
        MANA_QUERY_GF_STAT => query_gf_stat(core, req.body_zero_extended()),
        _ => (GDMA_STATUS_CMD_UNSUPPORTED, Vec::new()),
    })
}

fn verify_version(r: GdmaVerifyVerReq) -> Answer {
    if r.protocol_ver_min > GDMA_PROTOCOL_V1 || r.protocol_ver_max < GDMA_PROTOCOL_V1 {
        return fail();
    }
    ok(&GdmaVerifyVerResp {
        gdma_protocol_ver: GDMA_PROTOCOL_V1,
        pf_cap_flags1: GDMA_PF_CAP_FLAG_1_EQE_REQUEST_VF_SELF_RESET,
        ..Default::default()
    })
}

fn query_max_resources(core: &Core) -> Answer {
    let c = &core.shared.cfg;
    let qs = c.vports as u32 * c.max_queues;
    ok(&GdmaQueryMaxResourcesResp {
        status: 0,
        max_sq: qs,
        max_rq: qs,
        max_cq: (2 * qs).min(MAX_NUM_CQS),
        max_eq: 64,
        max_db: DB_PAGES,
        max_mst: 0,
        max_cq_mod_ctx: 0,
        max_mod_cq: 0,
        max_msix: 65,
    })
}

fn register_device(core: &mut Core, dev: GdmaDevId) -> Option<Answer> {
    if dev != MANA_DEV_ID {
        return None;
    }
    let o = &mut core.obj;
    if !o.registered {
        o.db_id = o.alloc_db_page()?;
        o.registered = true;
    }
    Some(ok(&GdmaRegisterDeviceResp { pdid: o.pdid, gpa_mkey: o.gpa_mkey, db_id: o.db_id }))
}

fn deregister_device(core: &mut Core, dev: GdmaDevId) -> Option<Answer> {
    let o = &mut core.obj;
    if dev != MANA_DEV_ID || !o.registered {
        return None;
    }
    o.registered = false;
    o.free_db_page(o.db_id);
    Some(empty())
}

fn test_eqe(core: &mut Core, r: GdmaGenerateTestEventReq) -> Option<Answer> {
    let eq = match core.hwc.as_mut() {
        Some(h) if r.queue_index == HWC_EQ_ID => &mut h.eq,
        _ => core.obj.eqs.get_mut(r.queue_index)?,
    };
    crate::doorbell::post_eqe(&core.shared, eq, gdma_defs::GDMA_EQE_TEST_EVENT, [0; 3]);
    Some(empty())
}

fn reset_request_eqe(core: &mut Core, r: GdmaGenerateResetRequestEqeReq) -> Option<Answer> {
    if r.eq_id != HWC_EQ_ID {
        return None;
    }
    // The test hook starts a real reset episode, as the `reset-request` fault does: the answer
    // to this request is the last thing the channel says.
    let answer = empty();
    crate::hwc::request_reset(core, r.data);
    Some(answer)
}

/// Takes a complete, unused region and resolves `size` bytes of it as a ring.
fn ring_of(core: &mut Core, handle: u64, size: u32) -> Option<RingMem> {
    if !size.is_power_of_two() || (size as usize) < PAGE {
        return None;
    }
    let r = core.obj.regions.get(&handle)?;
    if r.in_use || !r.complete() || r.offset_in_page != 0 || r.length < size as u64 {
        return None;
    }
    let mem = RingMem::resolve(&core.space, &r.pages, size).ok()?;
    core.obj.regions.get_mut(&handle)?.in_use = true;
    Some(mem)
}

/// Gives a region back after a creation that failed half-way.
fn release_region(core: &mut Core, handle: u64) {
    if let Some(r) = core.obj.regions.get_mut(&handle) {
        r.in_use = false;
    }
}

fn create_queue(core: &mut Core, r: GdmaCreateQueueReq) -> Option<Answer> {
    // Only EQs are created this way (CQs, SQs and RQs come with CREATE_WQ_OBJ).
    if r.queue_type() != Some(GdmaQueueType::Eq) || !core.obj.registered || r.pdid != core.obj.pdid
    {
        return None;
    }
    if !core.obj.page_in_use(r.doorbell_id) {
        return None;
    }
    let mem = ring_of(core, r.gdma_region, r.queue_size)?;
    let lap = core.shared.cfg.cq_lap_limit;
    let msix = r.eq_pci_msix_index;
    let eq = |id| -> Result<Eq, ()> {
        let mut eq = Eq::new(id, mem, lap).ok_or(())?;
        eq.msix = msix;
        Ok(eq)
    };
    match core.obj.eqs.insert_with(eq) {
        Ok(id) => {
            core.obj.regions.remove(&r.gdma_region);
            Some(ok(&GdmaCreateQueueResp { queue_index: id }))
        }
        Err(_) => {
            release_region(core, r.gdma_region);
            None
        }
    }
}

fn disable_queue(core: &mut Core, r: GdmaDisableQueueReq) -> Option<Answer> {
    match GdmaQueueType::from_u32(r.queue_type)? {
        GdmaQueueType::Eq => {
            core.obj.eqs.remove(r.queue_index)?;
            // CQs that pointed at it lose their parent.
            for (_, cq) in core.obj.cqs.iter_mut() {
                if cq.parent_eq == Some(r.queue_index) {
                    cq.parent_eq = None;
                }
            }
        }
        _ => return None,
    }
    Some(empty())
}

fn allocate_range(core: &mut Core, r: GdmaAllocateResourceRangeReq) -> Option<Answer> {
    if r.resource_type != GDMA_RESOURCE_DOORBELL_PAGE || r.num_resources != 1 {
        return None;
    }
    let page = core.obj.alloc_db_page()?;
    Some(ok(&GdmaAllocateResourceRangeResp { allocated_resources: page }))
}

fn destroy_range(core: &mut Core, r: GdmaDestroyResourceRangeReq) -> Option<Answer> {
    let p = r.allocated_resources;
    if r.resource_type != GDMA_RESOURCE_DOORBELL_PAGE || r.num_resources != 1 {
        return None;
    }
    // The registration's own page goes with DEREGISTER_DEVICE.
    if core.obj.registered && p == core.obj.db_id {
        return None;
    }
    core.obj.free_db_page(p).then(empty)
}

/// Reads `n` page addresses after the fixed body `T`; all must be 4 KiB aligned.
fn pages_after<T>(req: &RequestRef<'_>, n: u32) -> Option<Vec<u64>> {
    let pages: Vec<u64> = read_page_list(req.trailing::<T>(), n).ok()?.collect();
    pages.iter().all(|&p| is_valid_page_addr(p)).then_some(pages)
}

fn create_region(core: &mut Core, req: &RequestRef<'_>) -> Option<Answer> {
    let r: GdmaCreateDmaRegionReq = req.body().ok()?;
    if r.gdma_page_type != GDMA_PAGE_TYPE_4K
        || r.page_count == 0
        || r.page_addr_list_len > r.page_count
        || r.length > r.page_count as u64 * PAGE as u64
        || r.offset_in_page as usize >= PAGE
    {
        return None;
    }
    let pages = pages_after::<GdmaCreateDmaRegionReq>(req, r.page_addr_list_len)?;
    let handle = core.obj.next_region;
    core.obj.next_region += 1;
    let region = DmaRegion {
        length: r.length,
        offset_in_page: r.offset_in_page,
        page_count: r.page_count,
        pages,
        in_use: false,
    };
    let status = if region.complete() { GDMA_STATUS_SUCCESS } else { GDMA_STATUS_MORE_ENTRIES };
    core.obj.regions.insert(handle, region);
    Some((status, GdmaCreateDmaRegionResp { dma_region_handle: handle }.as_bytes().to_vec()))
}

fn add_pages(core: &mut Core, req: &RequestRef<'_>) -> Option<Answer> {
    let r: GdmaDmaRegionAddPagesReq = req.body().ok()?;
    let pages = pages_after::<GdmaDmaRegionAddPagesReq>(req, r.page_addr_list_len)?;
    let region = core.obj.regions.get_mut(&r.dma_region_handle)?;
    if region.in_use || region.pages.len() + pages.len() > region.page_count as usize {
        return None;
    }
    region.pages.extend(pages);
    let status = if region.complete() { GDMA_STATUS_SUCCESS } else { GDMA_STATUS_MORE_ENTRIES };
    Some((status, Vec::new()))
}

fn destroy_region(core: &mut Core, r: GdmaDestroyDmaRegionReq) -> Option<Answer> {
    // A region owned by a queue goes with the queue; destroying it is refused.
    if core.obj.regions.get(&r.dma_region_handle)?.in_use {
        return None;
    }
    core.obj.regions.remove(&r.dma_region_handle);
    Some(empty())
}

fn query_dev_config(core: &Core) -> Answer {
    let c = &core.shared.cfg;
    ok(&ManaQueryDeviceCfgResp {
        max_num_vports: c.vports,
        max_num_eqs: 64,
        adapter_mtu: c.adapter_mtu,
        adapter_link_speed_mbps: 100_000,
        ..Default::default()
    })
}

fn vport_by_handle(core: &Core, handle: u64) -> Option<u16> {
    core.obj.vports.iter().find(|v| v.handle == handle).map(|v| v.index)
}

fn query_vport_config(core: &Core, r: ManaQueryVportCfgReq) -> Option<Answer> {
    let v = core.obj.vports.get(r.vport_index as usize)?;
    Some(ok(&ManaQueryVportCfgResp {
        max_num_sq: core.shared.cfg.max_queues,
        max_num_rq: core.shared.cfg.max_queues,
        num_indirection_ent: core.shared.cfg.indirection_entries,
        mac_addr: v.mac,
        vport: v.handle,
        ..Default::default()
    }))
}

fn config_vport_tx(core: &mut Core, r: ManaConfigVportTxReq) -> Option<Answer> {
    let vi = vport_by_handle(core, r.vport)?;
    let db_ok = core.obj.page_in_use(r.doorbell_pageid);
    if !core.obj.registered || r.pdid != core.obj.pdid || !db_ok {
        return None;
    }
    let v = &mut core.obj.vports[vi as usize];
    v.tx_configured = true;
    // One offset per vport; all fit the short OOB form.
    v.tx_offset = vi;
    Some(ok(&ManaConfigVportTxResp { tx_vport_offset: vi, short_form_allowed: 1, reserved: 0 }))
}

fn create_wq_obj(core: &mut Core, r: ManaCreateWqObjReq) -> Option<Answer> {
    let vi = vport_by_handle(core, r.vport)?;
    let kind = r.wq_type()?;
    let queues = |core: &Core| match kind {
        GdmaQueueType::Sq => core.obj.sqs.iter().filter(|(_, q)| q.vport == vi).count(),
        _ => core.obj.rqs.iter().filter(|(_, q)| q.vport == vi).count(),
    };
    if !core.obj.registered
        || !matches!(kind, GdmaQueueType::Sq | GdmaQueueType::Rq)
        || (kind == GdmaQueueType::Sq && !core.obj.vports[vi as usize].tx_configured)
        || queues(core) >= core.shared.cfg.max_queues as usize
    {
        return None;
    }
    let parent = match r.cq_parent_qid {
        GDMA_CQ_NO_EQ => None,
        eq if core.obj.eqs.get(eq).is_some() => Some(eq),
        _ => return None,
    };
    let wq_mem = ring_of(core, r.wq_gdma_region, r.wq_size)?;
    let Some(cq_mem) = ring_of(core, r.cq_gdma_region, r.cq_size) else {
        release_region(core, r.wq_gdma_region);
        return None;
    };
    let lap = core.shared.cfg.cq_lap_limit;
    let near_wrap = core.shared.cfg.start_near_wrap;
    let start = if near_wrap { gdma_defs::near_wrap_wq_start(r.wq_size) } else { 0 };
    let Ok(cq_id) = core.obj.cqs.insert_with(|id| {
        let mut cq = Cq::new(id, cq_mem, parent, lap).ok_or(())?;
        if near_wrap {
            cq.start_near_wrap();
        }
        Ok::<_, ()>(cq)
    }) else {
        release_region(core, r.wq_gdma_region);
        release_region(core, r.cq_gdma_region);
        return None;
    };
    let wq_id = match kind {
        GdmaQueueType::Sq => core.obj.sqs.insert_with(|id| {
            Wq::new(id, cq_id, wq_mem, start)
                .map(|wq| Sq { wq, vport: vi, inject_error: false })
                .ok_or(())
        }),
        _ => core.obj.rqs.insert_with(|id| {
            Wq::new(id, cq_id, wq_mem, start)
                .map(|wq| Rq {
                    wq,
                    vport: vi,
                    pending: Default::default(),
                    fence: false,
                    listed: false,
                })
                .ok_or(())
        }),
    };
    let Ok(wq_id) = wq_id else {
        core.obj.cqs.remove(cq_id);
        release_region(core, r.wq_gdma_region);
        release_region(core, r.cq_gdma_region);
        return None;
    };
    core.obj.regions.remove(&r.wq_gdma_region);
    core.obj.regions.remove(&r.cq_gdma_region);
    let handle = core.obj.next_wq_obj;
    core.obj.next_wq_obj += 1;
    core.obj.wq_objs.insert(handle, WqObj { vport: vi, kind, wq_id, cq_id });
    Some(ok(&ManaCreateWqObjResp { wq_id, cq_id, wq_obj: handle }))
}

fn destroy_wq_obj(core: &mut Core, r: ManaDestroyWqObjReq) -> Option<Answer> {
    let o = *core.obj.wq_objs.get(&r.wq_obj_handle)?;
    if GdmaQueueType::from_u32(r.wq_type) != Some(o.kind) {
        return None;
    }
    core.obj.wq_objs.remove(&r.wq_obj_handle);
    match o.kind {
        GdmaQueueType::Sq => {
            core.obj.sqs.remove(o.wq_id);
            core.obj.tx_ready.retain(|&q| q != o.wq_id);
        }
        _ => {
            core.obj.rqs.remove(o.wq_id);
            // Steering that still names it drops frames (counted) until it is reconfigured,
            // even if a new queue later gets the same id.
            for v in core.obj.vports.iter_mut() {
                v.forget_rq(o.wq_id);
            }
        }
    }
    core.obj.cqs.remove(o.cq_id);
    Some(empty())
}

fn fence_rq(core: &mut Core, r: ManaFenceRqReq) -> Option<Answer> {
    let o = *core.obj.wq_objs.get(&r.wq_obj_handle)?;
    if o.kind != GdmaQueueType::Rq {
        return None;
    }
    let rq = core.obj.rqs.get_mut(o.wq_id)?;
    rq.fence = true;
    if !std::mem::replace(&mut rq.listed, true) {
        core.obj.rx_pending.push(o.wq_id);
    }
    Some(empty())
}

/// Longest RSS indirection table accepted (what Linux allows with a variable-size table).
const MAX_INDIRECTION_ENTRIES: usize = 512;

fn config_vport_rx(core: &mut Core, req: &RequestRef<'_>) -> Option<Answer> {
    let c = ConfigVportRx::decode(req).ok()?;
    let vi = vport_by_handle(core, c.req.vport)?;
    // Handles must name RQs of this vport.
    let rq_of = |core: &Core, h: u64| -> Option<u32> {
        let o = core.obj.wq_objs.get(&h)?;
        (o.kind == GdmaQueueType::Rq && o.vport == vi).then_some(o.wq_id)
    };
    let default_rq = if c.req.update_default_rxobj != 0 {
        Some(rq_of(core, c.req.default_rxobj)?)
    } else {
        None
    };
    // Tables are a power of two long (the hash's low bits index them), at most 512 entries.
    if c.req.update_indir_tab != 0
        && (!c.table.len().is_power_of_two() || c.table.len() > MAX_INDIRECTION_ENTRIES)
    {
        return None;
    }
    let table = if c.req.update_indir_tab != 0 {
        Some(c.table.iter().map(|&h| rq_of(core, h)).collect::<Option<Vec<u32>>>()?)
    } else {
        None
    };
    let (rx_enable, rss_enable) =
        (tristate_value(c.req.rx_enable), tristate_value(c.req.rss_enable));
    let v = &mut core.obj.vports[vi as usize];
    if let Some(d) = default_rq {
        v.default_rq = Some(d);
    }
    if let Some(t) = table {
        v.table = t;
    }
    if c.req.update_hashkey != 0 {
        v.set_key(c.req.hashkey);
    }
    if let Some(e) = rx_enable {
        v.rx_enabled = e;
    }
    if let Some(e) = rss_enable {
        v.rss_enabled = e;
    }
    v.coalescing = c.req.cqe_coalescing_enable != 0;
    Some(ok(&ManaCfgRxSteerResp { cqe_coalescing_timeout_ns: 0, reserved: 0 }))
}

fn query_gf_stat(core: &Core, r: ManaQueryGfStatReq) -> Answer {
    let sum = |f: fn(&crate::stats::VportStats) -> u64| {
        core.shared.stats.vports.iter().map(f).sum::<u64>()
    };
    ok(&ManaQueryGfStatResp {
        reported_stats: r.req_stats,
        rx_discards_nowqe: sum(|v| v.rx_drops_no_wqe.get()),
        rx_err_vport_disabled: sum(|v| v.rx_drops_disabled.get()),
        hc_rx_bytes: sum(|v| v.rx_bytes.get()),
        hc_rx_ucast_pkts: sum(|v| v.rx_packets.get()),
        hc_rx_ucast_bytes: sum(|v| v.rx_bytes.get()),
        tx_err_mtu_violation: sum(|v| v.tx_drops_mtu.get()),
        tx_err_sa_enforcement: sum(|v| v.tx_drops_sa.get()),
        hc_tx_bytes: sum(|v| v.tx_bytes.get()),
        hc_tx_ucast_pkts: sum(|v| v.tx_packets.get()),
        hc_tx_ucast_bytes: sum(|v| v.tx_bytes.get()),
        tx_err_gdma: core.shared.stats.device.sq_disabled.get(),
        ..<ManaQueryGfStatResp as gdma_defs::FromZeros>::new_zeroed()
    })
}
