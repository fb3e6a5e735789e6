//! The control plane, as the rest of the driver sees it: a small trait with one implementation
//! per way of reaching the device.
//!
//! - [`crate::gdma::GdmaControlPlane`]: the GDMA hardware channel over BAR0 (what the Linux kernel
//!   and OpenVMM speak), used with mana-emu and, in principle, a VF given to user space by vfio.
//! - Later, rdma-core (ibverbs + manadv) on Azure VMs, where the kernel owns the hardware channel
//!   and reports a reset as IBV_EVENT_DEVICE_FATAL.
//!
//! The data path does not depend on which one is in use: it gets ring memory descriptions,
//! queue ids, doorbell pages and a memory key from here, and writes WQEs and doorbells itself.
//! Every method is a control-path call that may wait on the device; callers never hold a lock
//! across one.

use std::sync::atomic::{AtomicU64, Ordering};

use thiserror::Error;

/// Why a control-plane call failed.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum CpError {
    /// The device did not answer in time.
    #[error("{cmd}: no answer from the device within {ms} ms")]
    Timeout {
        /// The command.
        cmd: &'static str,
        /// How long we waited.
        ms: u64,
    },
    /// The device answered with a failure status.
    #[error("{cmd}: the device answered status {status:#x}")]
    Status {
        /// The command.
        cmd: &'static str,
        /// The status word.
        status: u32,
    },
    /// The answer did not make sense (wrong size, wrong message id, out-of-range values).
    #[error("{cmd}: bad answer: {why}")]
    BadAnswer {
        /// The command.
        cmd: &'static str,
        /// What is wrong with it.
        why: String,
    },
    /// The device is resetting, dead (BAR reads all ones) or gone: commands fail at once.
    #[error("the device is not available: {why}")]
    DeviceGone {
        /// Reset requested, fatal, removed, connection lost.
        why: String,
    },
    /// The hardware channel is not established (call `bring_up`).
    #[error("the control plane is not up")]
    NotUp,
    /// The bus refused (DMA mapping, BAR access).
    #[error("bus: {0}")]
    Bus(String),
    /// Out of a resource (memory, doorbell pages, ids).
    #[error("out of {0}")]
    Exhausted(String),
    /// A bad argument from the driver (a bug in the caller).
    #[error("bad argument: {0}")]
    BadArg(String),
}

/// How commands to the device ended when it did not answer them: plain atomics, written by the
/// control plane's owner (the device's control worker), read by anyone. One set per device.
///
/// Once a command times out the channel is treated as unresponsive: later commands wait only a
/// short time until one is answered or the channel is brought up again, and once the device's
/// owner marks it gone (a recovery begins, a reset was requested, the registers read all ones)
/// commands are refused without being sent.
#[derive(Debug, Default)]
pub struct CmdCounters {
    /// Commands that waited their full timeout: the first to time out since the channel was
    /// brought up or last answered a command.
    pub timeouts: AtomicU64,
    /// Commands that timed out after the short wait of a channel already known unresponsive (an
    /// earlier command timed out and nothing was answered since).
    pub hung_timeouts: AtomicU64,
    /// Commands refused at once, not sent, because the channel was known dead or the device
    /// gone: asked for after the channel was marked gone, or left out of a teardown of a channel
    /// that no longer answers (one per command a teardown over a live channel would have sent).
    pub refused_dead: AtomicU64,
    /// Channels established (the first bring-up and every one after it): each starts out not
    /// known dead, so its first command waits the full timeout again.
    pub bring_ups: AtomicU64,
}

impl CmdCounters {
    /// A command timed out; `hung`: the channel was already known unresponsive (it waited the
    /// short time), else it waited its full timeout.
    pub fn timed_out(&self, hung: bool) {
        let c = if hung { &self.hung_timeouts } else { &self.timeouts };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// `n` commands were refused (not sent): the channel is known dead or the device gone.
    pub fn refused(&self, n: u64) {
        self.refused_dead.fetch_add(n, Ordering::Relaxed);
    }

    /// A channel was established.
    pub fn brought_up(&self) {
        self.bring_ups.fetch_add(1, Ordering::Relaxed);
    }

    /// The counters as xstats name them: `hwc_cmd_timeouts`, `hwc_cmd_hung_timeouts`,
    /// `hwc_cmd_refused_dead`, `hwc_bring_ups`.
    pub fn xstats(&self) -> [(&'static str, u64); 4] {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        [
            ("hwc_cmd_timeouts", get(&self.timeouts)),
            ("hwc_cmd_hung_timeouts", get(&self.hung_timeouts)),
            ("hwc_cmd_refused_dead", get(&self.refused_dead)),
            ("hwc_bring_ups", get(&self.bring_ups)),
        ]
    }
}

/// What the device offers, learnt at bring-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceCaps {
    /// Vports on this device.
    pub num_vports: u16,
    /// Most SQs, RQs, CQs on the device.
    pub max_sq: u32,
    /// Most RQs.
    pub max_rq: u32,
    /// Most CQs.
    pub max_cq: u32,
    /// Largest frame the adapter takes, without FCS (1514 for MTU 1500).
    pub adapter_mtu: u16,
    /// Protection domain of this driver.
    pub pdid: u32,
    /// Memory key for every SGE (GDMA: gpa_mkey; rdma-core: the MR's lkey).
    pub mem_key: u32,
    /// Offset of doorbell page 0 in BAR0.
    pub db_pages_offset: u64,
    /// Size of one doorbell page.
    pub db_page_size: u32,
    /// The device can ask the driver to reset itself (event 135).
    pub self_reset: bool,
}

/// A vport, as QUERY_VPORT_CONFIG describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VportInfo {
    /// Index on the device.
    pub index: u32,
    /// Handle for the commands that name it.
    pub handle: u64,
    /// MAC address.
    pub mac: [u8; 6],
    /// Most SQs.
    pub max_sq: u32,
    /// Most RQs.
    pub max_rq: u32,
    /// RSS indirection table size the vport supports.
    pub indir_entries: u32,
}

/// What CONFIG_VPORT_TX gives back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VportTx {
    /// The vport offset every TX OOB must carry.
    pub tx_vport_offset: u16,
    /// Whether the short OOB form may be used (the offset fits its 8 bits).
    pub short_form_allowed: bool,
}

/// A ring in memory the device can reach: IOVA-contiguous, `size` bytes, a power of two of at
/// least 4096, 4096-aligned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingDesc {
    /// First byte, as the device addresses it.
    pub iova: u64,
    /// Size in bytes.
    pub size: u32,
}

/// Send or receive work queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WqKind {
    /// Send queue.
    Sq,
    /// Receive queue.
    Rq,
}

/// A work queue object to create: the WQ and its completion queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WqSpec {
    /// The vport handle.
    pub vport: u64,
    /// SQ or RQ.
    pub kind: WqKind,
    /// The work queue ring.
    pub wq: RingDesc,
    /// The completion queue ring.
    pub cq: RingDesc,
}

/// A created work queue object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WqObj {
    /// SQ or RQ.
    pub kind: WqKind,
    /// Handle (to destroy it, and for RX steering).
    pub handle: u64,
    /// The WQ's queue id (doorbells, TX OOB `vsq_frame`).
    pub wq_id: u32,
    /// The CQ's queue id (doorbells, TX OOB `vcq_num`).
    pub cq_id: u32,
    /// Doorbell page for this WQ and its CQ (no other queue writes its slots).
    pub db_page: u32,
}

/// RX steering of a vport (CONFIG_VPORT_RX).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RxSteer {
    /// The vport handle.
    pub vport: u64,
    /// Receive at all.
    pub rx_enable: bool,
    /// Spread by RSS (else everything to `default_rq`).
    pub rss_enable: bool,
    /// Toeplitz key.
    pub hash_key: [u8; 40],
    /// Indirection table: RQ object handles (a power of two long).
    pub indir: Vec<u64>,
    /// Where frames RSS cannot hash (and all frames without RSS) go.
    pub default_rq: u64,
    /// Up to four packets per RX CQE.
    pub cqe_coalescing: bool,
}

/// Something the device told the driver unasked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceEvent {
    /// Event 135: the device will reset; the driver must tear down and come back.
    ResetRequest {
        /// The event's data word.
        data: u32,
    },
    /// The device's BAR reads all ones: fatal error or hot removal.
    Dead,
    /// A test event (GENERATE_TEST_EQE).
    Test,
    /// An event the driver does not act on (counted).
    Other {
        /// Its type.
        event_type: u8,
    },
}

/// Where the data path writes doorbells: a window onto the doorbell pages, kept mapped by
/// `keep`.
#[derive(Clone)]
pub struct Doorbells {
    /// The register space (BAR0 for GDMA).
    pub win: pmd_mempool::shm::Window,
    /// Keeps `win` mapped.
    pub keep: std::sync::Arc<dyn std::any::Any + Send + Sync>,
    /// Offset of doorbell page 0 in `win`.
    pub page_offset: u64,
    /// Size of one doorbell page.
    pub page_size: u32,
}

impl std::fmt::Debug for Doorbells {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Doorbells(page 0 at {:#x}, {} bytes each)", self.page_offset, self.page_size)
    }
}

/// The control plane of one device.
pub trait ControlPlane: Send {
    /// Brings the device up to where vports can be used: channel, version, device list,
    /// registration, device configuration.
    fn bring_up(&mut self) -> Result<DeviceCaps, CpError>;
    /// The doorbell pages (after `bring_up`).
    fn doorbells(&self) -> Result<Doorbells, CpError>;
    /// Makes the objects of `pool` reachable by the device (DMA); returns the memory key SGEs
    /// that point into it must carry. Registering the same pool twice is harmless.
    fn register_pool(&mut self, pool: &pmd_mempool::Mempool) -> Result<u32, CpError>;
    /// Makes a driver segment (queue rings) reachable by the device; returns its memory key.
    fn register_segment(
        &mut self,
        seg: &std::sync::Arc<pmd_mempool::MemSegment>,
    ) -> Result<u32, CpError>;
    /// Undoes a registration (by the first IOVA of the pool's segments or the segment).
    fn unregister(&mut self, iova: u64) -> Result<(), CpError>;
    /// Describes vport `index`.
    fn query_vport(&mut self, index: u32) -> Result<VportInfo, CpError>;
    /// Enables TX on a vport.
    fn config_vport_tx(&mut self, vport: u64) -> Result<VportTx, CpError>;
    /// Creates a WQ and its CQ on rings the driver allocated (and made reachable by the device).
    fn create_wq(&mut self, spec: &WqSpec) -> Result<WqObj, CpError>;
    /// Destroys a WQ object and everything `create_wq` made for it.
    fn destroy_wq(&mut self, obj: &WqObj) -> Result<(), CpError>;
    /// Sets RX steering.
    fn config_vport_rx(&mut self, steer: &RxSteer) -> Result<(), CpError>;
    /// Device counters (GF_STAT), named as xstats show them.
    fn device_stats(&mut self) -> Result<Vec<(&'static str, u64)>, CpError>;
    /// Takes the events that arrived since the last call (never waits).
    fn poll_events(&mut self, out: &mut Vec<DeviceEvent>) -> Result<(), CpError>;
    /// Has `wake` called when the device signals that events wait for `poll_events` (by
    /// interrupt, on another thread; it must return at once), where the control plane can
    /// tell; events are found by calling `poll_events` regularly either way.
    fn set_event_waker(&mut self, wake: Option<std::sync::Arc<dyn Fn() + Send + Sync>>) {
        let _ = wake;
    }
    /// Whether the device still looks alive (its registers do not read all ones).
    fn alive(&self) -> bool;
    /// Whether the device is there at all (false after a hot removal, or when the daemon that
    /// serves it went away).
    fn present(&self) -> bool;
    /// Whether a command timed out since the last bring-up (the channel is then treated as dead
    /// until the device is brought up again).
    fn hung(&self) -> bool;
    /// How commands ended when the device did not answer (shared: readable from any thread).
    fn cmd_counters(&self) -> std::sync::Arc<CmdCounters>;
    /// From now on fail commands at once (a reset was requested: the channel is dead).
    fn mark_gone(&mut self, why: &str);
    /// Undoes `bring_up`: deregisters and closes the channel, freeing what it made. Best effort
    /// when the device is gone.
    fn tear_down(&mut self) -> Result<(), CpError>;
    /// `tear_down` for a device in a reset (its registers read all ones): it drops the channel
    /// and every object itself, so nothing is sent and everything is forgotten, but memory
    /// registrations stay (a reset empties the device, not its DMA mappings), so registering
    /// the same memory after the reset costs nothing, and the channel's memory is used again.
    /// A device that is not in a reset (any more), or gone, is torn down as by `tear_down`.
    fn tear_down_reset(&mut self) -> Result<(), CpError> {
        self.tear_down()
    }
}
