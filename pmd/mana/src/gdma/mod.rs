//! The GDMA control plane: the hardware channel (HWC) over BAR0 and DMA memory, as the Linux
//! kernel and OpenVMM speak it to a MANA virtual function (`shared/spec/gdma.md` §6).
//!
//! [`GdmaControlPlane`] implements [`ControlPlane`]:
//!
//! - `bring_up` (§6.5): reads the BAR0 register map, establishes the channel over the
//!   shared-memory channel (SMC ESTABLISH_HWC, then the INIT events on the HWC EQ), and sends
//!   VERIFY_VF_DRIVER_VERSION, QUERY_MAX_RESOURCES, LIST_DEVICES, REGISTER_DEVICE and
//!   QUERY_DEV_CONFIG.
//! - Work queue objects: each gets its own doorbell page (ALLOCATE_RESOURCE_RANGE), DMA regions
//!   for its two rings (CREATE_DMA_REGION, DMA_REGION_ADD_PAGES) and CREATE_WQ_OBJ; a table of
//!   everything created lets `destroy_wq` and `tear_down` give it all back.
//! - Every answer is checked (CQE queue ids and WQE offsets, response length, message id, type,
//!   device, activity, status, body size, ids and handles in range); a bad one is
//!   [`CpError::BadAnswer`], never a panic. A command that times out stays in flight (the
//!   channel's queue depth is 1): the next command first waits for its late answer and
//!   discards it, and undoes what that answer says was created.
//!
//! No lock is involved: the control plane is owned by the device's control worker (`&mut self`
//! everywhere), and it waits only on device memory.

mod hwc;
mod shm;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gdma_defs::{
    DB_MAX_QUEUE_ID, GDMA_ALLOCATE_RESOURCE_RANGE, GDMA_CQ_NO_EQ, GDMA_CREATE_DMA_REGION,
    GDMA_DEREGISTER_DEVICE, GDMA_DESTROY_DMA_REGION, GDMA_DESTROY_RESOURCE_RANGE, GDMA_DEVICE_MANA,
    GDMA_DMA_REGION_PAGE_SIZE, GDMA_DRV_CAP_FLAG_1_SELF_RESET_ON_EQE, GDMA_INVALID_DMA_REGION,
    GDMA_OS_TYPE_LINUX, GDMA_PAGE_TYPE_4K, GDMA_PF_CAP_FLAG_1_EQE_REQUEST_VF_SELF_RESET,
    GDMA_PROTOCOL_V1, GDMA_REGISTER_DEVICE, GDMA_RESOURCE_DOORBELL_PAGE, GDMA_RQ, GDMA_SQ,
    GDMA_STATUS_MORE_ENTRIES, GDMA_STATUS_SUCCESS, GdmaAllocateResourceRangeReq,
    GdmaAllocateResourceRangeResp, GdmaCreateDmaRegionReq, GdmaCreateDmaRegionResp,
    GdmaDeregisterDeviceReq, GdmaDestroyDmaRegionReq, GdmaDestroyResourceRangeReq, GdmaDevId,
    GdmaDmaRegionAddPagesReq, GdmaGenerateTestEventReq, GdmaListDevicesReq,
    GdmaQueryMaxResourcesReq, GdmaRegisterDeviceReq, GdmaRegisterDeviceResp, GdmaVerifyVerReq,
    HWC_DEV_ID, HWC_MAX_REQUEST_SIZE, HwcRequest, INVALID_MANA_HANDLE, IntoBytes,
    MANA_CREATE_WQ_OBJ, MANA_DESTROY_WQ_OBJ, MANA_LONG_VPORT_OFFSET_MAX, MANA_MAJOR_VERSION,
    MANA_MICRO_VERSION, MANA_MINOR_VERSION, MANA_SHORT_VPORT_OFFSET_MAX, MAX_PORTS_IN_MANA_DEV,
    ManaCfgRxSteerReqV2, ManaConfigVportTxReq, ManaCreateWqObjReq, ManaCreateWqObjResp,
    ManaDestroyWqObjReq, ManaQueryDeviceCfgReq, ManaQueryGfStatReq, ManaQueryGfStatResp,
    ManaQueryVportCfgReq, REG_MAP_SIZE, RegMap, RequestRef, SMC_SIZE, STATISTICS_FLAGS_ALL,
    dma_region_batches, encode_config_vport_rx, read_zero_extended, request_header, tristate,
    validate_queue_size,
};
use pmd_mempool::{HugePolicy, MemSegment, Mempool};

use crate::bus::Bus;
use crate::cp::{
    CmdCounters, ControlPlane, CpError, DeviceCaps, DeviceEvent, Doorbells, RingDesc, RxSteer,
    VportInfo, VportTx, WqKind, WqObj, WqSpec,
};
pub use hwc::HwcCounters;
use hwc::{BarLayout, HWC_MSIX, HWC_SEGMENT_LEN, Hwc, Irq};
use shm::SegWindow;

/// Settings of a [`GdmaControlPlane`].
#[derive(Debug, Clone)]
pub struct GdmaConfig {
    /// How long one HWC command may take before it fails with [`CpError::Timeout`]; also how
    /// long bring-up waits for the HWC INIT events. Default 5 s.
    pub cmd_timeout: Duration,
    /// How long an SMC request (ESTABLISH_HWC, DESTROY_HWC) may take. Default 5 s.
    pub smc_timeout: Duration,
    /// Hugepage policy of the channel's memory. Default [`HugePolicy::Never`]: it is 24 KiB
    /// of control memory, off the fast path, so a 2 MiB page would be wasted.
    pub hwc_hugepages: HugePolicy,
    /// Name of the channel's memory segment.
    pub segment_name: String,
    /// Driver version reported in VERIFY_VF_DRIVER_VERSION (advisory).
    pub driver_version: u64,
    /// Sleep until the device's interrupt while waiting for an answer, when the bus delivers
    /// interrupts (else, and when false, waits poll with short sleeps). Default true.
    pub interrupts: bool,
}

impl Default for GdmaConfig {
    fn default() -> Self {
        GdmaConfig {
            cmd_timeout: Duration::from_secs(5),
            smc_timeout: Duration::from_secs(5),
            hwc_hugepages: HugePolicy::Never,
            segment_name: "mana-hwc".to_owned(),
            driver_version: 1,
            interrupts: true,
        }
    }
}

/// What `create_wq` made for one WQ object, and what of it is still alive.
#[derive(Debug, Clone, Copy)]
struct WqRecord {
    obj: WqObj,
    /// The object still exists on the device (its DMA regions belong to it).
    alive: bool,
    /// The object's doorbell page, until it is freed.
    db_page: Option<u32>,
}

/// Everything that exists while the channel is up.
struct Up {
    layout: BarLayout,
    hwc: Hwc,
    /// Doorbell page of the channel (INIT_EQ_ID_DB).
    hwc_db_page: u32,
    /// The MANA Ethernet device (LIST_DEVICES).
    mana: Option<GdmaDevId>,
    /// REGISTER_DEVICE's answer, until DEREGISTER_DEVICE.
    registered: Option<GdmaRegisterDeviceResp>,
    /// Set once bring-up completed.
    caps: Option<DeviceCaps>,
    /// WQ objects by handle.
    wqs: BTreeMap<u64, WqRecord>,
    /// WQ objects nobody holds (created by a request that timed out): destroyed later.
    orphan_objs: Vec<(WqKind, u64)>,
    /// DMA regions created but neither owned by an object nor destroyed yet.
    orphan_regions: Vec<u64>,
    /// Doorbell pages allocated but not recorded nor freed yet.
    orphan_pages: Vec<u32>,
    /// Events seen outside `poll_events` (during bring-up), delivered by the next call.
    events: Vec<DeviceEvent>,
}

/// The GDMA control plane of one device, over a [`Bus`].
///
/// Dropping it tears the device down (best effort).
pub struct GdmaControlPlane {
    bus: Box<dyn Bus>,
    cfg: GdmaConfig,
    /// BAR0 (register map, SMC, doorbell pages), kept mapped by the window's segment.
    bar: SegWindow,
    up: Option<Up>,
    /// Why commands fail at once (set by `mark_gone`, a reset request, BAR0 all ones).
    gone: Option<String>,
    /// A command timed out since the last bring-up.
    hung: bool,
    /// Counters of channels torn down.
    past: HwcCounters,
    /// How commands ended when the device did not answer (every bring-up so far).
    cmd: Arc<CmdCounters>,
    /// Memory registered through this control plane: key IOVA -> every mapped IOVA. Kept
    /// across a device reset ([`ControlPlane::tear_down_reset`]): a reset empties the device,
    /// not the DMA mappings.
    mappings: BTreeMap<u64, Vec<u64>>,
    /// Channel memory of a channel that ended in a device reset, still mapped: the next
    /// bring-up uses it again (zeroed) instead of allocating and mapping new memory.
    spare_hwc: Option<SegWindow>,
    /// The channel's interrupt, and whether the bus delivers it (registered once, it stays
    /// across device resets).
    irq: Arc<Irq>,
    irq_on: bool,
    /// Test hook: called with the command name before each typed command is sent; may set a
    /// new command timeout.
    #[cfg(test)]
    hook: Option<Box<dyn FnMut(&'static str) -> Option<Duration> + Send>>,
}

/// The `gdma_queue_type` code of a WQ kind.
fn kind_code(kind: WqKind) -> u32 {
    match kind {
        WqKind::Sq => GDMA_SQ,
        WqKind::Rq => GDMA_RQ,
    }
}

fn kind_of(code: u32) -> Option<WqKind> {
    match code {
        GDMA_SQ => Some(WqKind::Sq),
        GDMA_RQ => Some(WqKind::Rq),
        _ => None,
    }
}

/// Whether an error means the channel cannot be used any more (for now).
/// How long a command waits once an earlier one timed out (until one is answered again).
const HUNG_TIMEOUT: Duration = Duration::from_millis(20);

fn channel_dead(e: &CpError) -> bool {
    matches!(e, CpError::Timeout { .. } | CpError::DeviceGone { .. })
}

fn bad(cmd: &'static str, why: impl Into<String>) -> CpError {
    CpError::BadAnswer { cmd, why: why.into() }
}

/// Checks a ring the driver describes: 4 KiB aligned, a power of two of at least 4 KiB.
fn check_ring(what: &str, r: &RingDesc) -> Result<(), CpError> {
    validate_queue_size(r.size).map_err(|e| CpError::BadArg(format!("{what} ring: {e:?}")))?;
    if r.iova % GDMA_DMA_REGION_PAGE_SIZE != 0 || r.iova.checked_add(r.size as u64).is_none() {
        return Err(CpError::BadArg(format!("{what} ring at {:#x} is not 4 KiB aligned", r.iova)));
    }
    Ok(())
}

/// The GF_STAT counters: (name, flag, value), in the order of the response.
fn gf_stats(r: &ManaQueryGfStatResp) -> [(&'static str, u64, u64); 27] {
    use gdma_defs::*;
    [
        ("rx_discards_nowqe", STATISTICS_FLAGS_RX_DISCARDS_NO_WQE, r.rx_discards_nowqe),
        (
            "rx_err_vport_disabled",
            STATISTICS_FLAGS_RX_ERRORS_VPORT_DISABLED,
            r.rx_err_vport_disabled,
        ),
        ("hc_rx_bytes", STATISTICS_FLAGS_HC_RX_BYTES, r.hc_rx_bytes),
        ("hc_rx_ucast_pkts", STATISTICS_FLAGS_HC_RX_UCAST_PACKETS, r.hc_rx_ucast_pkts),
        ("hc_rx_ucast_bytes", STATISTICS_FLAGS_HC_RX_UCAST_BYTES, r.hc_rx_ucast_bytes),
        ("hc_rx_bcast_pkts", STATISTICS_FLAGS_HC_RX_BCAST_PACKETS, r.hc_rx_bcast_pkts),
        ("hc_rx_bcast_bytes", STATISTICS_FLAGS_HC_RX_BCAST_BYTES, r.hc_rx_bcast_bytes),
        ("hc_rx_mcast_pkts", STATISTICS_FLAGS_HC_RX_MCAST_PACKETS, r.hc_rx_mcast_pkts),
        ("hc_rx_mcast_bytes", STATISTICS_FLAGS_HC_RX_MCAST_BYTES, r.hc_rx_mcast_bytes),
        ("tx_err_gf_disabled", STATISTICS_FLAGS_TX_ERRORS_GF_DISABLED, r.tx_err_gf_disabled),
        (
            "tx_err_vport_disabled",
            STATISTICS_FLAGS_TX_ERRORS_VPORT_DISABLED,
            r.tx_err_vport_disabled,
        ),
        (
            "tx_err_inval_vport_offset_pkt",
            STATISTICS_FLAGS_TX_ERRORS_INVAL_VPORT_OFFSET_PACKETS,
            r.tx_err_inval_vport_offset_pkt,
        ),
        (
            "tx_err_vlan_enforcement",
            STATISTICS_FLAGS_TX_ERRORS_VLAN_ENFORCEMENT,
            r.tx_err_vlan_enforcement,
        ),
        (
            "tx_err_ethtype_enforcement",
            STATISTICS_FLAGS_TX_ERRORS_ETH_TYPE_ENFORCEMENT,
            r.tx_err_ethtype_enforcement,
        ),
        (
            "tx_err_sa_enforcement",
            STATISTICS_FLAGS_TX_ERRORS_SA_ENFORCEMENT,
            r.tx_err_sa_enforcement,
        ),
        (
            "tx_err_sqpdid_enforcement",
            STATISTICS_FLAGS_TX_ERRORS_SQPDID_ENFORCEMENT,
            r.tx_err_sqpdid_enforcement,
        ),
        (
            "tx_err_cqpdid_enforcement",
            STATISTICS_FLAGS_TX_ERRORS_CQPDID_ENFORCEMENT,
            r.tx_err_cqpdid_enforcement,
        ),
        ("tx_err_mtu_violation", STATISTICS_FLAGS_TX_ERRORS_MTU_VIOLATION, r.tx_err_mtu_violation),
        ("tx_err_inval_oob", STATISTICS_FLAGS_TX_ERRORS_INVALID_OOB, r.tx_err_inval_oob),
        ("hc_tx_bytes", STATISTICS_FLAGS_HC_TX_BYTES, r.hc_tx_bytes),
        ("hc_tx_ucast_pkts", STATISTICS_FLAGS_HC_TX_UCAST_PACKETS, r.hc_tx_ucast_pkts),
        ("hc_tx_ucast_bytes", STATISTICS_FLAGS_HC_TX_UCAST_BYTES, r.hc_tx_ucast_bytes),
        ("hc_tx_bcast_pkts", STATISTICS_FLAGS_HC_TX_BCAST_PACKETS, r.hc_tx_bcast_pkts),
        ("hc_tx_bcast_bytes", STATISTICS_FLAGS_HC_TX_BCAST_BYTES, r.hc_tx_bcast_bytes),
        ("hc_tx_mcast_pkts", STATISTICS_FLAGS_HC_TX_MCAST_PACKETS, r.hc_tx_mcast_pkts),
        ("hc_tx_mcast_bytes", STATISTICS_FLAGS_HC_TX_MCAST_BYTES, r.hc_tx_mcast_bytes),
        ("tx_err_gdma", STATISTICS_FLAGS_TX_ERRORS_GDMA_ERROR, r.tx_err_gdma),
    ]
}

impl GdmaControlPlane {
    /// A control plane for the device behind `bus` (nothing is sent before `bring_up`).
    pub fn new(bus: Box<dyn Bus>, cfg: GdmaConfig) -> Self {
        let bar = SegWindow::new(bus.bar0().clone());
        GdmaControlPlane {
            bus,
            cfg,
            bar,
            up: None,
            gone: None,
            hung: false,
            past: HwcCounters::default(),
            cmd: Arc::default(),
            mappings: BTreeMap::new(),
            spare_hwc: None,
            irq: Arc::default(),
            irq_on: false,
            #[cfg(test)]
            hook: None,
        }
    }

    /// The settings.
    pub fn config(&self) -> &GdmaConfig {
        &self.cfg
    }

    /// Changes the command timeout from now on (e.g. after the device announced another one).
    pub fn set_cmd_timeout(&mut self, timeout: Duration) {
        self.cfg.cmd_timeout = timeout;
        self.hung = false;
    }

    /// Whether `bring_up` completed and `tear_down` has not run since.
    pub fn is_up(&self) -> bool {
        self.up.as_ref().is_some_and(|u| u.caps.is_some())
    }

    /// Why commands fail at once, if they do.
    pub fn gone_reason(&self) -> Option<&str> {
        self.gone.as_deref()
    }

    /// Channel counters, over every bring-up so far.
    pub fn counters(&self) -> HwcCounters {
        let mut c = self.past;
        if let Some(up) = &self.up {
            c.add(&up.hwc.counters);
        }
        c
    }

    /// WQ objects created and not destroyed yet.
    pub fn wq_objects(&self) -> Vec<WqObj> {
        self.up.as_ref().map(|u| u.wqs.values().map(|r| r.obj).collect()).unwrap_or_default()
    }

    /// Asks the device for a test event on the HWC EQ (GENERATE_TEST_EQE); `poll_events`
    /// reports it as [`DeviceEvent::Test`].
    pub fn generate_test_event(&mut self) -> Result<(), CpError> {
        let eq = self.up.as_ref().ok_or(CpError::NotUp)?.hwc.eq_id();
        let req = GdmaGenerateTestEventReq { queue_index: eq };
        self.ok("GENERATE_TEST_EQE", HWC_DEV_ID, &req, &[], 0).map(drop)
    }

    fn check_gone(&self) -> Result<(), CpError> {
        match &self.gone {
            Some(why) => Err(CpError::DeviceGone { why: why.clone() }),
            None => Ok(()),
        }
    }

    /// `check_gone` before a command: a refusal is counted.
    fn refuse_if_gone(&self) -> Result<(), CpError> {
        self.check_gone().inspect_err(|_| self.cmd.refused(1))
    }

    /// `ready` before a command: a refusal because the device is gone is counted.
    fn ready_to_send(&self) -> Result<&Up, CpError> {
        self.refuse_if_gone()?;
        self.ready()
    }

    /// The commands a teardown over a live channel would still send: DESTROY_WQ_OBJ and
    /// DESTROY_RESOURCE_RANGE for each WQ object, one for each orphan, DEREGISTER_DEVICE.
    fn teardown_commands_left(&self) -> u64 {
        let Some(up) = &self.up else { return 0 };
        let objs: u64 = up.wqs.values().map(|r| r.alive as u64 + r.db_page.is_some() as u64).sum();
        let orphans = up.orphan_objs.len() + up.orphan_regions.len() + up.orphan_pages.len();
        objs + orphans as u64 + up.registered.is_some() as u64
    }

    /// Runs `f` on the channel: fails at once when the device is gone, remembers a device found
    /// gone, and files late answers.
    fn with_hwc<T>(
        &mut self,
        f: impl FnOnce(&mut Hwc, Duration) -> Result<T, CpError>,
    ) -> Result<T, CpError> {
        self.refuse_if_gone()?;
        let hung = self.hung;
        let timeout =
            if hung { self.cfg.cmd_timeout.min(HUNG_TIMEOUT) } else { self.cfg.cmd_timeout };
        let up = self.up.as_mut().ok_or(CpError::NotUp)?;
        let r = f(&mut up.hwc, timeout);
        match &r {
            Err(CpError::DeviceGone { why }) => {
                self.gone.get_or_insert_with(|| why.clone());
            }
            Err(CpError::Timeout { .. }) => {
                // Once one command timed out, later ones wait only HUNG_TIMEOUT (as the Linux
                // driver drops its timeout after the first), until one is answered again; the
                // device's owner sees `hung` and recovers the device.
                self.cmd.timed_out(hung);
                self.hung = true;
            }
            Ok(_) => self.hung = false,
            _ => {}
        }
        self.file_late_answers();
        r
    }

    /// Sends a typed request: (status, body).
    fn call<R: HwcRequest>(
        &mut self,
        cmd: &'static str,
        dev: GdmaDevId,
        body: &R,
        trailing: &[u8],
        min_body: usize,
    ) -> Result<(u32, R::Response), CpError> {
        #[cfg(test)]
        if let Some(t) = self.hook.as_mut().and_then(|hook| hook(cmd)) {
            self.cfg.cmd_timeout = t;
        }
        self.with_hwc(|h, t| h.call(cmd, dev, body, trailing, min_body, t))
    }

    /// Sends a typed request that must succeed (status 0).
    fn ok<R: HwcRequest>(
        &mut self,
        cmd: &'static str,
        dev: GdmaDevId,
        body: &R,
        trailing: &[u8],
        min_body: usize,
    ) -> Result<R::Response, CpError> {
        let (status, resp) = self.call(cmd, dev, body, trailing, min_body)?;
        if status != GDMA_STATUS_SUCCESS {
            return Err(CpError::Status { cmd, status });
        }
        Ok(resp)
    }

    /// The MANA device id (after LIST_DEVICES).
    fn mana(&self) -> Result<GdmaDevId, CpError> {
        self.up.as_ref().ok_or(CpError::NotUp)?.mana.ok_or(CpError::NotUp)
    }

    /// Up, brought up completely, and not gone.
    fn ready(&self) -> Result<&Up, CpError> {
        self.check_gone()?;
        match &self.up {
            Some(up) if up.caps.is_some() => Ok(up),
            _ => Err(CpError::NotUp),
        }
    }

    /// Applies what late answers say was done: what they created becomes an orphan to destroy,
    /// what they destroyed is forgotten.
    fn file_late_answers(&mut self) {
        let Some(up) = self.up.as_mut() else { return };
        for late in up.hwc.take_late() {
            let (Ok(req), Ok((hdr, body))) = (RequestRef::parse(&late.msg), &late.answer) else {
                continue;
            };
            let ok = hdr.status == GDMA_STATUS_SUCCESS;
            match req.msg_type() {
                MANA_CREATE_WQ_OBJ if ok => {
                    let r: ManaCreateWqObjReq = req.body_zero_extended();
                    let resp: ManaCreateWqObjResp = read_zero_extended(body);
                    // The object owns its regions now.
                    up.orphan_regions.retain(|&h| h != r.wq_gdma_region && h != r.cq_gdma_region);
                    if let Some(kind) = kind_of(r.wq_type) {
                        if resp.wq_obj != 0 && resp.wq_obj != INVALID_MANA_HANDLE {
                            up.orphan_objs.push((kind, resp.wq_obj));
                        }
                    }
                }
                GDMA_CREATE_DMA_REGION if ok || hdr.status == GDMA_STATUS_MORE_ENTRIES => {
                    let resp: GdmaCreateDmaRegionResp = read_zero_extended(body);
                    if resp.dma_region_handle != GDMA_INVALID_DMA_REGION {
                        up.orphan_regions.push(resp.dma_region_handle);
                    }
                }
                GDMA_ALLOCATE_RESOURCE_RANGE if ok => {
                    let r: GdmaAllocateResourceRangeReq = req.body_zero_extended();
                    let resp: GdmaAllocateResourceRangeResp = read_zero_extended(body);
                    if r.resource_type == GDMA_RESOURCE_DOORBELL_PAGE {
                        up.orphan_pages.push(resp.allocated_resources);
                    }
                }
                GDMA_REGISTER_DEVICE if ok && up.registered.is_none() => {
                    up.registered = Some(read_zero_extended(body));
                }
                MANA_DESTROY_WQ_OBJ if ok => {
                    let r: ManaDestroyWqObjReq = req.body_zero_extended();
                    if let Some(rec) = up.wqs.get_mut(&r.wq_obj_handle) {
                        rec.alive = false;
                    }
                    up.orphan_objs.retain(|&(_, h)| h != r.wq_obj_handle);
                }
                GDMA_DESTROY_RESOURCE_RANGE if ok => {
                    let r: GdmaDestroyResourceRangeReq = req.body_zero_extended();
                    for rec in up.wqs.values_mut() {
                        if rec.db_page == Some(r.allocated_resources) {
                            rec.db_page = None;
                        }
                    }
                    up.orphan_pages.retain(|&p| p != r.allocated_resources);
                }
                GDMA_DESTROY_DMA_REGION if ok => {
                    let r: GdmaDestroyDmaRegionReq = req.body_zero_extended();
                    up.orphan_regions.retain(|&h| h != r.dma_region_handle);
                }
                GDMA_DEREGISTER_DEVICE if ok => up.registered = None,
                _ => {}
            }
            up.wqs.retain(|_, r| r.alive || r.db_page.is_some());
        }
    }

    /// Reads and checks the BAR0 register map.
    fn read_layout(&self) -> Result<(RegMap, BarLayout), CpError> {
        const CMD: &str = "BAR0 register map";
        let win = self.bar.win();
        let mut b = [0u8; REG_MAP_SIZE];
        // The first dword first, with Acquire (pairs with the device's Release store of it,
        // which it writes last when it comes back from a reset): the rest of the map read after
        // it is the map that dword belongs to.
        let first = win.load_u32(0, std::sync::atomic::Ordering::Acquire);
        let Some(first) = first.filter(|_| win.read(4, &mut b[4..])) else {
            return Err(CpError::Bus(format!("BAR0 of {} bytes has no register map", win.len())));
        };
        if first == gdma_defs::SHMEM_VF_RESET_STATE {
            return Err(CpError::DeviceGone { why: "BAR0 reads all ones".into() });
        }
        b[..4].copy_from_slice(&first.to_le_bytes());
        let regs = RegMap::from_bytes(&b).map_err(|e| bad(CMD, e.to_string()))?;
        regs.validate().map_err(|e| bad(CMD, e.to_string()))?;
        let smc = usize::try_from(regs.shm_offset).unwrap_or(usize::MAX);
        if smc % 4 != 0 || smc.checked_add(SMC_SIZE).is_none_or(|e| e > win.len()) {
            return Err(bad(CMD, format!("SMC window at {:#x} outside BAR0", regs.shm_offset)));
        }
        let layout = BarLayout {
            smc_offset: smc,
            db_pages_offset: regs.db_pages_offset,
            db_page_size: regs.db_page_size as u32,
            bar_len: win.len(),
        };
        let aligned = regs.db_pages_offset % 8 == 0 && regs.db_page_size % 8 == 0;
        if layout.page_offset(0).is_none() || !aligned {
            return Err(bad(
                CMD,
                format!("doorbell pages at {:#x} outside BAR0", regs.db_pages_offset),
            ));
        }
        Ok((regs, layout))
    }

    /// The commands of bring-up after the channel is established (§6.5 steps 5–9).
    fn bring_up_commands(&mut self, regs: &RegMap) -> Result<DeviceCaps, CpError> {
        let mut ver = GdmaVerifyVerReq {
            protocol_ver_min: GDMA_PROTOCOL_V1,
            protocol_ver_max: GDMA_PROTOCOL_V1,
            gd_drv_cap_flags1: GDMA_DRV_CAP_FLAG_1_SELF_RESET_ON_EQE,
            drv_ver: self.cfg.driver_version,
            os_type: GDMA_OS_TYPE_LINUX,
            ..Default::default()
        };
        let name = b"mana-pmd";
        ver.os_ver_str1[..name.len()].copy_from_slice(name);
        let v = self.ok("VERIFY_VF_DRIVER_VERSION", HWC_DEV_ID, &ver, &[], 40)?;
        if v.gdma_protocol_ver != GDMA_PROTOCOL_V1 {
            return Err(bad(
                "VERIFY_VF_DRIVER_VERSION",
                format!(
                    "protocol version {}, only {GDMA_PROTOCOL_V1} is spoken",
                    v.gdma_protocol_ver
                ),
            ));
        }
        let self_reset = v.pf_cap_flags1 & GDMA_PF_CAP_FLAG_1_EQE_REQUEST_VF_SELF_RESET != 0;

        let max = self.ok("QUERY_MAX_RESOURCES", HWC_DEV_ID, &GdmaQueryMaxResourcesReq, &[], 40)?;

        let list = self.ok("LIST_DEVICES", HWC_DEV_ID, &GdmaListDevicesReq, &[], 8)?;
        if list.num_of_devs as usize > gdma_defs::GDMA_MAX_LIST_DEVICES {
            return Err(bad(
                "LIST_DEVICES",
                format!("{} devices listed, at most 64", list.num_of_devs),
            ));
        }
        let mana = list
            .find(GDMA_DEVICE_MANA)
            .ok_or_else(|| bad("LIST_DEVICES", "no MANA Ethernet device listed"))?;
        self.up.as_mut().ok_or(CpError::NotUp)?.mana = Some(mana);

        let reg = self.ok("REGISTER_DEVICE", mana, &GdmaRegisterDeviceReq, &[], 12)?;
        let up = self.up.as_mut().ok_or(CpError::NotUp)?;
        up.registered = Some(reg);
        if up.layout.page_offset(reg.db_id).is_none() {
            return Err(bad(
                "REGISTER_DEVICE",
                format!("doorbell page {} outside BAR0", reg.db_id),
            ));
        }

        let cfg_req = ManaQueryDeviceCfgReq {
            proto_major_ver: MANA_MAJOR_VERSION,
            proto_minor_ver: MANA_MINOR_VERSION,
            proto_micro_ver: MANA_MICRO_VERSION,
            ..Default::default()
        };
        // 40 bytes: the response v1 (LNX's oldest layout); newer fields read as 0 if absent.
        let dev = self.ok("QUERY_DEV_CONFIG", mana, &cfg_req, &[], 40)?;
        if dev.max_num_vports == 0 || dev.max_num_vports as u32 > MAX_PORTS_IN_MANA_DEV {
            return Err(bad("QUERY_DEV_CONFIG", format!("{} vports", dev.max_num_vports)));
        }
        Ok(DeviceCaps {
            num_vports: dev.max_num_vports,
            max_sq: max.max_sq,
            max_rq: max.max_rq,
            max_cq: max.max_cq,
            adapter_mtu: dev.effective_adapter_mtu(),
            pdid: reg.pdid,
            mem_key: reg.gpa_mkey,
            db_pages_offset: regs.db_pages_offset,
            db_page_size: regs.db_page_size as u32,
            self_reset,
        })
    }

    /// ALLOCATE_RESOURCE_RANGE of one doorbell page, checked against BAR0 and the pages in use.
    fn alloc_db_page(&mut self) -> Result<u32, CpError> {
        const CMD: &str = "ALLOCATE_RESOURCE_RANGE";
        let req = GdmaAllocateResourceRangeReq {
            resource_type: GDMA_RESOURCE_DOORBELL_PAGE,
            num_resources: 1,
            alignment: 1,
            allocated_resources: 0,
        };
        let page = self.ok(CMD, HWC_DEV_ID, &req, &[], 4)?.allocated_resources;
        let up = self.up.as_ref().ok_or(CpError::NotUp)?;
        let in_use = page == up.hwc_db_page
            || up.registered.is_some_and(|r| r.db_id == page)
            || up.wqs.values().any(|r| r.db_page == Some(page))
            || up.orphan_pages.contains(&page);
        if in_use {
            return Err(bad(CMD, format!("doorbell page {page} is already in use")));
        }
        if up.layout.page_offset(page).is_none() {
            let e = bad(CMD, format!("doorbell page {page} is outside BAR0"));
            self.discard_page(page, &e);
            return Err(e);
        }
        Ok(page)
    }

    fn free_db_page(&mut self, page: u32) -> Result<(), CpError> {
        let req = GdmaDestroyResourceRangeReq {
            resource_type: GDMA_RESOURCE_DOORBELL_PAGE,
            num_resources: 1,
            allocated_resources: page,
        };
        self.ok("DESTROY_RESOURCE_RANGE", HWC_DEV_ID, &req, &[], 0).map(drop)
    }

    fn destroy_region(&mut self, handle: u64) -> Result<(), CpError> {
        let req = GdmaDestroyDmaRegionReq { dma_region_handle: handle };
        self.ok("DESTROY_DMA_REGION", HWC_DEV_ID, &req, &[], 0).map(drop)
    }

    fn destroy_obj(&mut self, kind: WqKind, handle: u64) -> Result<(), CpError> {
        let mana = self.mana()?;
        let req =
            ManaDestroyWqObjReq { wq_type: kind_code(kind), reserved: 0, wq_obj_handle: handle };
        self.ok("DESTROY_WQ_OBJ", mana, &req, &[], 0).map(drop)
    }

    /// Gives back a doorbell page after a failed creation: now if the channel works, else later.
    fn discard_page(&mut self, page: u32, cause: &CpError) {
        if channel_dead(cause) || self.free_db_page(page).is_err_and(|e| channel_dead(&e)) {
            if let Some(up) = self.up.as_mut() {
                up.orphan_pages.push(page);
            }
        }
    }

    /// Destroys a DMA region after a failed creation: now if the channel works, else later.
    fn discard_region(&mut self, handle: u64, cause: &CpError) {
        if channel_dead(cause) || self.destroy_region(handle).is_err_and(|e| channel_dead(&e)) {
            if let Some(up) = self.up.as_mut() {
                up.orphan_regions.push(handle);
            }
        }
    }

    /// CREATE_DMA_REGION (and DMA_REGION_ADD_PAGES beyond one message) for a ring.
    fn create_region(&mut self, ring: &RingDesc) -> Result<u64, CpError> {
        const CMD: &str = "CREATE_DMA_REGION";
        let pages: Vec<u64> = (0..ring.size as u64 / GDMA_DMA_REGION_PAGE_SIZE)
            .map(|i| ring.iova + i * GDMA_DMA_REGION_PAGE_SIZE)
            .collect();
        let (first, rest) = dma_region_batches(&pages);
        let batches = rest.len();
        let req = GdmaCreateDmaRegionReq {
            length: ring.size as u64,
            offset_in_page: 0,
            gdma_page_type: GDMA_PAGE_TYPE_4K,
            page_count: pages.len() as u32,
            page_addr_list_len: first.len() as u32,
        };
        let (status, resp) = self.call(CMD, HWC_DEV_ID, &req, first.as_bytes(), 8)?;
        let want = if batches > 0 { GDMA_STATUS_MORE_ENTRIES } else { GDMA_STATUS_SUCCESS };
        let handle = resp.dma_region_handle;
        if status != want {
            if status != GDMA_STATUS_SUCCESS && status != GDMA_STATUS_MORE_ENTRIES {
                return Err(CpError::Status { cmd: CMD, status });
            }
            let e = bad(CMD, format!("status {status:#x} for a region of {} pages", pages.len()));
            if handle != GDMA_INVALID_DMA_REGION {
                self.discard_region(handle, &e);
            }
            return Err(e);
        }
        if handle == GDMA_INVALID_DMA_REGION {
            return Err(bad(CMD, "region handle 0"));
        }
        for (i, chunk) in rest.enumerate() {
            const ADD: &str = "DMA_REGION_ADD_PAGES";
            let add = GdmaDmaRegionAddPagesReq {
                dma_region_handle: handle,
                page_addr_list_len: chunk.len() as u32,
                reserved3: 0,
            };
            let want =
                if i + 1 == batches { GDMA_STATUS_SUCCESS } else { GDMA_STATUS_MORE_ENTRIES };
            let r = match self.call(ADD, HWC_DEV_ID, &add, chunk.as_bytes(), 0) {
                Ok((s, ())) if s == want => Ok(()),
                Ok((s, ())) if s == GDMA_STATUS_SUCCESS || s == GDMA_STATUS_MORE_ENTRIES => {
                    Err(bad(ADD, format!("status {s:#x} for batch {} of {batches}", i + 1)))
                }
                Ok((s, ())) => Err(CpError::Status { cmd: ADD, status: s }),
                Err(e) => Err(e),
            };
            if let Err(e) = r {
                self.discard_region(handle, &e);
                return Err(e);
            }
        }
        Ok(handle)
    }

    /// Destroys what is left of WQ object `handle`: the object, then its doorbell page.
    fn destroy_record(&mut self, handle: u64) -> Result<(), CpError> {
        let rec = self.up.as_ref().and_then(|u| u.wqs.get(&handle).copied());
        let Some(rec) = rec else { return Ok(()) };
        if rec.alive {
            self.destroy_obj(rec.obj.kind, handle)?;
            if let Some(r) = self.up.as_mut().and_then(|u| u.wqs.get_mut(&handle)) {
                r.alive = false;
            }
        }
        // A late answer may have changed the record meanwhile: read it again.
        let page = self.up.as_ref().and_then(|u| u.wqs.get(&handle)).and_then(|r| r.db_page);
        if let Some(p) = page {
            self.free_db_page(p)?;
        }
        if let Some(up) = self.up.as_mut() {
            up.wqs.remove(&handle);
        }
        Ok(())
    }

    /// Destroys the orphans (objects, then regions, then doorbell pages). Stops at the first
    /// error that means the channel is dead; an orphan the device refuses to destroy is
    /// forgotten (retrying would not help) and the refusal returned.
    fn clean_orphans(&mut self) -> Result<(), CpError> {
        let mut first = None;
        loop {
            let Some(up) = self.up.as_mut() else { return Ok(()) };
            let r = if let Some((kind, h)) = up.orphan_objs.pop() {
                self.destroy_obj(kind, h).inspect_err(|e| {
                    if channel_dead(e) {
                        if let Some(up) = self.up.as_mut() {
                            up.orphan_objs.push((kind, h));
                        }
                    }
                })
            } else if let Some(h) = up.orphan_regions.pop() {
                self.destroy_region(h).inspect_err(|e| {
                    if channel_dead(e) {
                        if let Some(up) = self.up.as_mut() {
                            up.orphan_regions.push(h);
                        }
                    }
                })
            } else if let Some(p) = up.orphan_pages.pop() {
                self.free_db_page(p).inspect_err(|e| {
                    if channel_dead(e) {
                        if let Some(up) = self.up.as_mut() {
                            up.orphan_pages.push(p);
                        }
                    }
                })
            } else {
                break;
            };
            if let Err(e) = r {
                let dead = channel_dead(&e);
                first.get_or_insert(e);
                if dead {
                    break;
                }
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// Unmaps the channel's memory and every registration, and forgets the channel.
    fn drop_up(&mut self, first: &mut Option<CpError>) {
        if let Some(up) = self.up.take() {
            self.past.add(&up.hwc.counters);
            if let Err(e) = self.bus.unmap(up.hwc.iova()) {
                first.get_or_insert(CpError::Bus(format!("unmapping the HWC memory: {e}")));
            }
        }
        if let Some(mem) = self.spare_hwc.take() {
            if let Err(e) = self.bus.unmap(mem.segment().iova_base()) {
                first.get_or_insert(CpError::Bus(format!("unmapping the HWC memory: {e}")));
            }
        }
        for iova in std::mem::take(&mut self.mappings).into_values().flatten() {
            if let Err(e) = self.bus.unmap(iova) {
                first.get_or_insert(CpError::Bus(format!("unmapping {iova:#x}: {e}")));
            }
        }
    }

    /// Channel memory for a bring-up: the spare of a channel that ended in a reset, or new
    /// memory mapped for the device. Zeroed by `Hwc::establish`.
    fn hwc_memory(&mut self) -> Result<SegWindow, CpError> {
        if let Some(mem) = self.spare_hwc.take() {
            return Ok(mem);
        }
        let seg =
            MemSegment::anonymous(&self.cfg.segment_name, HWC_SEGMENT_LEN, self.cfg.hwc_hugepages)
                .map_err(|e| CpError::Exhausted(format!("HWC memory: {e}")))?;
        let seg = Arc::new(seg);
        self.bus
            .map_segment(&seg)
            .map_err(|e| CpError::Bus(format!("mapping the HWC memory: {e}")))?;
        Ok(SegWindow::new(seg))
    }
}

impl ControlPlane for GdmaControlPlane {
    fn bring_up(&mut self) -> Result<DeviceCaps, CpError> {
        if let Some(caps) = self.up.as_ref().and_then(|u| u.caps.clone()) {
            return Ok(caps);
        }
        if self.up.is_some() {
            let _ = self.tear_down();
        }
        self.gone = None;
        self.hung = false;
        if !self.bus.present() {
            return Err(CpError::DeviceGone {
                why: format!("{}: not present", self.bus.describe()),
            });
        }
        let (regs, layout) = self.read_layout()?;
        let mem = self.hwc_memory()?;
        let iova = mem.segment().iova_base();
        let (hwc, others) = match Hwc::establish(
            mem,
            self.bar.win(),
            &layout,
            self.cfg.smc_timeout,
            self.cfg.cmd_timeout,
        ) {
            Ok(r) => r,
            Err(e) => {
                let _ = self.bus.unmap(iova);
                return Err(e);
            }
        };
        self.cmd.brought_up();
        let mut hwc = hwc;
        if self.cfg.interrupts && !self.irq_on {
            let irq = self.irq.clone();
            self.irq_on =
                self.bus.set_interrupt(HWC_MSIX as u32, Some(Arc::new(move || irq.fire())));
        }
        if self.irq_on {
            hwc.set_irq(self.irq.clone());
        }
        let hwc_db_page = hwc.db_page();
        let mut events = Vec::new();
        let mut reset = false;
        for (ty, d) in others {
            let ev = map_event(ty, d);
            reset |= matches!(ev, DeviceEvent::ResetRequest { .. });
            events.push(ev);
        }
        self.up = Some(Up {
            layout,
            hwc,
            hwc_db_page,
            mana: None,
            registered: None,
            caps: None,
            wqs: BTreeMap::new(),
            orphan_objs: Vec::new(),
            orphan_regions: Vec::new(),
            orphan_pages: Vec::new(),
            events,
        });
        let r = if reset {
            Err(CpError::DeviceGone { why: "the device requested a reset during bring-up".into() })
        } else {
            self.bring_up_commands(&regs)
        };
        match r {
            Ok(caps) => {
                if let Some(up) = self.up.as_mut() {
                    up.caps = Some(caps.clone());
                }
                Ok(caps)
            }
            Err(e) => {
                if reset {
                    self.gone = Some("the device requested a reset".into());
                }
                let _ = self.tear_down();
                Err(e)
            }
        }
    }

    fn doorbells(&self) -> Result<Doorbells, CpError> {
        let up = self.ready()?;
        let keep: Arc<dyn std::any::Any + Send + Sync> = self.bar.segment().clone();
        Ok(Doorbells {
            win: self.bar.win(),
            keep,
            page_offset: up.layout.db_pages_offset,
            page_size: up.layout.db_page_size,
        })
    }

    fn register_pool(&mut self, pool: &Mempool) -> Result<u32, CpError> {
        let key = self.ready()?.registered.map(|r| r.gpa_mkey).ok_or(CpError::NotUp)?;
        let iovas: Vec<u64> = pool.segments().map(|s| s.iova_base()).collect();
        let first =
            *iovas.first().ok_or_else(|| CpError::BadArg("a pool without memory".into()))?;
        if self.mappings.get(&first) != Some(&iovas) {
            self.bus
                .map_pool(pool)
                .map_err(|e| CpError::Bus(format!("mapping pool {}: {e}", pool.name())))?;
            self.mappings.insert(first, iovas);
        }
        Ok(key)
    }

    fn register_segment(&mut self, seg: &Arc<MemSegment>) -> Result<u32, CpError> {
        let key = self.ready()?.registered.map(|r| r.gpa_mkey).ok_or(CpError::NotUp)?;
        let iova = seg.iova_base();
        if !self.mappings.contains_key(&iova) {
            self.bus
                .map_segment(seg)
                .map_err(|e| CpError::Bus(format!("mapping segment {}: {e}", seg.name())))?;
            self.mappings.insert(iova, vec![iova]);
        }
        Ok(key)
    }

    fn unregister(&mut self, iova: u64) -> Result<(), CpError> {
        let iovas = self
            .mappings
            .remove(&iova)
            .ok_or_else(|| CpError::BadArg(format!("nothing registered at {iova:#x}")))?;
        let mut first = None;
        for i in iovas {
            if let Err(e) = self.bus.unmap(i) {
                first.get_or_insert(CpError::Bus(format!("unmapping {i:#x}: {e}")));
            }
        }
        first.map_or(Ok(()), Err)
    }

    fn query_vport(&mut self, index: u32) -> Result<VportInfo, CpError> {
        const CMD: &str = "QUERY_VPORT_CONFIG";
        let vports = self.ready_to_send()?.caps.as_ref().map_or(0, |c| c.num_vports);
        if index >= vports as u32 {
            return Err(CpError::BadArg(format!("vport {index} (the device has {vports})")));
        }
        let mana = self.mana()?;
        let r = self.ok(CMD, mana, &ManaQueryVportCfgReq { vport_index: index }, &[], 32)?;
        if r.vport == 0 || r.vport == INVALID_MANA_HANDLE {
            return Err(bad(CMD, format!("vport handle {:#x}", r.vport)));
        }
        Ok(VportInfo {
            index,
            handle: r.vport,
            mac: r.mac_addr,
            max_sq: r.max_num_sq,
            max_rq: r.max_num_rq,
            indir_entries: r.num_indirection_ent,
        })
    }

    fn config_vport_tx(&mut self, vport: u64) -> Result<VportTx, CpError> {
        const CMD: &str = "CONFIG_VPORT_TX";
        let reg = self.ready_to_send()?.registered.ok_or(CpError::NotUp)?;
        let mana = self.mana()?;
        let req = ManaConfigVportTxReq { vport, pdid: reg.pdid, doorbell_pageid: reg.db_id };
        let r = self.ok(CMD, mana, &req, &[], 3)?;
        if r.tx_vport_offset > MANA_LONG_VPORT_OFFSET_MAX {
            return Err(bad(CMD, format!("tx vport offset {}", r.tx_vport_offset)));
        }
        Ok(VportTx {
            tx_vport_offset: r.tx_vport_offset,
            short_form_allowed: r.short_form_allowed != 0
                && r.tx_vport_offset <= MANA_SHORT_VPORT_OFFSET_MAX,
        })
    }

    fn create_wq(&mut self, spec: &WqSpec) -> Result<WqObj, CpError> {
        const CMD: &str = "CREATE_WQ_OBJ";
        self.ready_to_send()?;
        check_ring("work queue", &spec.wq)?;
        check_ring("completion queue", &spec.cq)?;
        let mana = self.mana()?;
        // Leftovers of earlier failures first (they hold doorbell pages and regions).
        let _ = self.clean_orphans();
        let db_page = self.alloc_db_page()?;
        let wq_region = match self.create_region(&spec.wq) {
            Ok(h) => h,
            Err(e) => {
                self.discard_page(db_page, &e);
                return Err(e);
            }
        };
        let cq_region = match self.create_region(&spec.cq) {
            Ok(h) => h,
            Err(e) => {
                self.discard_region(wq_region, &e);
                self.discard_page(db_page, &e);
                return Err(e);
            }
        };
        let req = ManaCreateWqObjReq {
            vport: spec.vport,
            wq_type: kind_code(spec.kind),
            reserved: 0,
            wq_gdma_region: wq_region,
            cq_gdma_region: cq_region,
            wq_size: spec.wq.size,
            cq_size: spec.cq.size,
            cq_moderation_ctx_id: 0,
            // Poll mode: the CQ signals no EQ.
            cq_parent_qid: GDMA_CQ_NO_EQ,
        };
        let r = match self.ok(CMD, mana, &req, &[], 16) {
            Ok(r) => r,
            Err(e) => {
                // Not created (or not known to be): the regions are still the driver's.
                self.discard_region(wq_region, &e);
                self.discard_region(cq_region, &e);
                self.discard_page(db_page, &e);
                return Err(e);
            }
        };
        // From here the object owns both regions.
        let usable = r.wq_obj != 0 && r.wq_obj != INVALID_MANA_HANDLE;
        let known = self.up.as_ref().is_some_and(|u| u.wqs.contains_key(&r.wq_obj));
        let ids_ok =
            (1..=DB_MAX_QUEUE_ID).contains(&r.wq_id) && (1..=DB_MAX_QUEUE_ID).contains(&r.cq_id);
        if !usable || known || !ids_ok {
            let e = bad(
                CMD,
                format!("object {:#x} with WQ id {} and CQ id {}", r.wq_obj, r.wq_id, r.cq_id),
            );
            if usable && !known {
                if let Err(d) = self.destroy_obj(spec.kind, r.wq_obj) {
                    if channel_dead(&d) {
                        if let Some(up) = self.up.as_mut() {
                            up.orphan_objs.push((spec.kind, r.wq_obj));
                        }
                    }
                }
            }
            self.discard_page(db_page, &e);
            return Err(e);
        }
        let obj =
            WqObj { kind: spec.kind, handle: r.wq_obj, wq_id: r.wq_id, cq_id: r.cq_id, db_page };
        let up = self.up.as_mut().ok_or(CpError::NotUp)?;
        up.wqs.insert(obj.handle, WqRecord { obj, alive: true, db_page: Some(db_page) });
        Ok(obj)
    }

    fn destroy_wq(&mut self, obj: &WqObj) -> Result<(), CpError> {
        let up = self.up.as_mut().ok_or(CpError::NotUp)?;
        match up.wqs.get(&obj.handle) {
            Some(r) if r.obj.kind == obj.kind => {}
            _ => {
                return Err(CpError::BadArg(format!(
                    "WQ object {:#x} ({:?}) was not created here or is destroyed",
                    obj.handle, obj.kind
                )));
            }
        }
        if let Some(why) = &self.gone {
            // The device forgets everything when it resets: nothing left to give back.
            up.wqs.remove(&obj.handle);
            self.cmd.refused(1);
            return Err(CpError::DeviceGone { why: why.clone() });
        }
        self.destroy_record(obj.handle)
    }

    fn config_vport_rx(&mut self, steer: &RxSteer) -> Result<(), CpError> {
        const CMD: &str = "CONFIG_VPORT_RX";
        let up = self.ready_to_send()?;
        let is_rq = |h: u64| up.wqs.get(&h).is_some_and(|r| r.obj.kind == WqKind::Rq && r.alive);
        let n = steer.indir.len();
        if n != 0 && (!n.is_power_of_two() || n > gdma_defs::MANA_INDIRECT_TABLE_MAX_SIZE) {
            return Err(CpError::BadArg(format!("an indirection table of {n} entries")));
        }
        if steer.rss_enable && n == 0 {
            return Err(CpError::BadArg("RSS without an indirection table".into()));
        }
        if let Some(h) = steer.indir.iter().find(|&&h| !is_rq(h)) {
            return Err(CpError::BadArg(format!("indirection entry {h:#x} is not an RQ object")));
        }
        if steer.default_rq != 0 && !is_rq(steer.default_rq) {
            return Err(CpError::BadArg(format!(
                "default RQ {:#x} is not an RQ object",
                steer.default_rq
            )));
        }
        let mana = self.mana()?;
        let body = ManaCfgRxSteerReqV2 {
            vport: steer.vport,
            rx_enable: tristate(Some(steer.rx_enable)),
            rss_enable: tristate(Some(steer.rss_enable)),
            update_default_rxobj: (steer.default_rq != 0) as u8,
            update_hashkey: 1,
            update_indir_tab: (n != 0) as u8,
            default_rxobj: steer.default_rq,
            hashkey: steer.hash_key,
            cqe_coalescing_enable: steer.cqe_coalescing as u8,
            ..Default::default()
        };
        let (status, _) = self.with_hwc(|h, t| {
            let ids = h.next_ids(mana);
            let mut buf = [0u8; HWC_MAX_REQUEST_SIZE];
            let len = encode_config_vport_rx(&mut buf, ids, &body, &steer.indir)
                .map_err(|e| CpError::Exhausted(format!("{CMD}: request does not fit: {e}")))?;
            let hdr = request_header::<ManaCfgRxSteerReqV2>(ids, n * 8);
            h.transact(CMD, &buf[..len], hdr, t)
        })?;
        if status != GDMA_STATUS_SUCCESS {
            return Err(CpError::Status { cmd: CMD, status });
        }
        Ok(())
    }

    fn device_stats(&mut self) -> Result<Vec<(&'static str, u64)>, CpError> {
        self.ready_to_send()?;
        let mana = self.mana()?;
        let req = ManaQueryGfStatReq { req_stats: STATISTICS_FLAGS_ALL };
        let r =
            self.ok("QUERY_GF_STAT", mana, &req, &[], core::mem::size_of::<ManaQueryGfStatResp>())?;
        Ok(gf_stats(&r)
            .into_iter()
            .filter(|(_, flag, _)| r.reported_stats & flag != 0)
            .map(|(name, _, v)| (name, v))
            .collect())
    }

    fn poll_events(&mut self, out: &mut Vec<DeviceEvent>) -> Result<(), CpError> {
        let up = self.up.as_mut().ok_or(CpError::NotUp)?;
        out.append(&mut up.events);
        let mut raw = Vec::new();
        let consumed = up.hwc.drain_eq(&mut raw);
        let mut first_bad = None;
        let mut reset = false;
        for r in raw {
            match r {
                Ok((ty, d)) => {
                    // EQE 133 type 1: the device sets the HWC timeout (LNX does the same; a 0
                    // is ignored, §10.2 pitfall 19).
                    if let gdma_defs::Event::HwcReconfigData {
                        ty: gdma_defs::HWC_DATA_CONFIG_HWC_TIMEOUT,
                        value,
                    } = gdma_defs::Event::decode(ty, d)
                    {
                        if value != 0 {
                            self.cfg.cmd_timeout = Duration::from_millis(value as u64);
                        }
                    }
                    let ev = map_event(ty, d);
                    reset |= matches!(ev, DeviceEvent::ResetRequest { .. });
                    out.push(ev);
                }
                Err(why) => {
                    first_bad.get_or_insert(why);
                }
            }
        }
        // With interrupts the EQ is armed again each time (its next event raises the interrupt).
        if (consumed > 0 || up.hwc.has_irq()) && !reset && self.gone.is_none() {
            // Consumed entries are reported, so the device never nears its lap limit.
            up.hwc.ring_eq()?;
        }
        if reset {
            // §10.2 pitfall 17: after EQE 135 the channel is dead; skip teardown commands.
            self.gone.get_or_insert_with(|| "the device requested a reset (EQE 135)".into());
        } else if self.gone.is_none() && !hwc::bar_alive(&self.bar.win()) {
            out.push(DeviceEvent::Dead);
            self.gone = Some("BAR0 reads all ones".into());
        }
        match first_bad {
            Some(why) => Err(bad("HWC EQ", why)),
            None => Ok(()),
        }
    }

    fn alive(&self) -> bool {
        hwc::bar_alive(&self.bar.win()) && self.bus.present()
    }

    fn present(&self) -> bool {
        self.bus.present()
    }

    fn hung(&self) -> bool {
        self.hung
    }

    fn cmd_counters(&self) -> Arc<CmdCounters> {
        self.cmd.clone()
    }

    fn set_event_waker(&mut self, wake: Option<Arc<dyn Fn() + Send + Sync>>) {
        self.irq.set_event_waker(wake);
    }

    fn mark_gone(&mut self, why: &str) {
        if self.up.is_some() && self.gone.is_none() {
            self.gone = Some(why.to_owned());
        }
    }

    fn tear_down(&mut self) -> Result<(), CpError> {
        if self.up.is_none() {
            // Nothing on the device; memory kept from a reset is given back.
            let mut first = None;
            self.drop_up(&mut first);
            self.gone = None;
            return first.map_or(Ok(()), Err);
        }
        let mut first: Option<CpError> = None;
        if self.gone.is_none() && !(hwc::bar_alive(&self.bar.win()) && self.bus.present()) {
            self.gone = Some("the device is not there".into());
        }
        let mut dead = self.gone.is_some();
        // Dead because one of the teardown's own commands failed (what it was to undo is still
        // there, so it is among the commands left).
        let mut failed_cmd = false;
        if !dead {
            // A request still in flight: its answer may say it created something.
            let pending = self.up.as_ref().is_some_and(|u| u.hwc.has_pending());
            if pending {
                let timeout = self.cfg.cmd_timeout;
                let r = self.with_hwc(|h, t| h.settle("tear_down", Instant::now() + timeout, t));
                if let Err(e) = r {
                    dead = true;
                    first.get_or_insert(e);
                }
            }
        }
        if !dead {
            let handles: Vec<u64> =
                self.up.as_ref().map(|u| u.wqs.keys().copied().collect()).unwrap_or_default();
            for h in handles {
                if let Err(e) = self.destroy_record(h) {
                    dead = channel_dead(&e);
                    failed_cmd = dead;
                    first.get_or_insert(e);
                    if dead {
                        break;
                    }
                }
            }
        }
        if !dead {
            if let Err(e) = self.clean_orphans() {
                dead = channel_dead(&e);
                failed_cmd = dead;
                first.get_or_insert(e);
            }
        }
        let registered = self.up.as_ref().is_some_and(|u| u.registered.is_some());
        if !dead && registered {
            if let Ok(mana) = self.mana() {
                match self.ok("DEREGISTER_DEVICE", mana, &GdmaDeregisterDeviceReq, &[], 0) {
                    Ok(()) => {
                        if let Some(up) = self.up.as_mut() {
                            up.registered = None;
                        }
                    }
                    Err(e) => {
                        first.get_or_insert(e);
                    }
                }
            }
        }
        if dead {
            // Not sent: the channel no longer answers, or the device is gone.
            let left = self.teardown_commands_left();
            self.cmd.refused(left.saturating_sub(failed_cmd as u64));
        }
        // The SMC is its own path: a silent channel does not stop DESTROY_HWC, a dead device
        // does (§10.2 pitfall 17).
        if self.gone.is_none() && hwc::bar_alive(&self.bar.win()) {
            if let Some(up) = &self.up {
                if let Err(e) =
                    hwc::destroy_hwc(&self.bar.win(), up.layout.smc_offset, self.cfg.smc_timeout)
                {
                    first.get_or_insert(e);
                }
            }
        }
        self.drop_up(&mut first);
        self.gone = None;
        first.map_or(Ok(()), Err)
    }

    fn tear_down_reset(&mut self) -> Result<(), CpError> {
        if self.up.is_none() {
            self.gone = None;
            return Ok(());
        }
        if hwc::bar_alive(&self.bar.win()) || !self.bus.present() {
            // Not (or no longer visibly) in a reset: the device may still hold the channel and
            // the objects, so their memory goes away as in any teardown.
            return self.tear_down();
        }
        // In a reset: the device drops the channel and every object itself and answers
        // nothing, so nothing is sent; what they lived in can no longer be written by it.
        if let Some(up) = self.up.take() {
            self.past.add(&up.hwc.counters);
            self.spare_hwc = Some(up.hwc.into_mem());
        }
        self.gone = None;
        Ok(())
    }
}

/// What an HWC event means to the rest of the driver.
fn map_event(ty: u8, d: [u32; 3]) -> DeviceEvent {
    match gdma_defs::Event::decode(ty, d) {
        gdma_defs::Event::HwcResetRequest { data } => DeviceEvent::ResetRequest { data },
        gdma_defs::Event::Test => DeviceEvent::Test,
        _ => DeviceEvent::Other { event_type: ty },
    }
}

impl Drop for GdmaControlPlane {
    fn drop(&mut self) {
        let _ = self.tear_down();
        if self.irq_on {
            self.bus.set_interrupt(HWC_MSIX as u32, None);
        }
    }
}

#[cfg(test)]
mod tests;
