//! One MANA device: its control worker, and the state of its ports.
//!
//! Every control operation of every port of a device runs on the device's control worker, one at
//! a time, in the order they arrive: the worker owns the control plane (and so the hardware
//! channel) and each port's configuration, queues and device objects. A port operation called
//! from another thread sends the work to the worker and waits for the answer with no lock held;
//! called from the worker itself (an event callback calling `stop` or `close`), it runs inline.
//! Events are raised by the worker after each piece of work, with no lock and no borrow held.
//!
//! Between the worker and the lcores there is only what the port API shares: the queue gates,
//! the burst dispatch and the counters.

use std::cell::RefCell;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::{JoinHandle, ThreadId};
use std::time::Duration;

use pmd_ethdev::conf::{rss, rx_offload};
use pmd_ethdev::event::EventType;
use pmd_ethdev::gate::QueueSlot;
use pmd_ethdev::port::PortContext;
use pmd_ethdev::queue::{RxBurst, TxBurst};
use pmd_ethdev::stats::{Counter, PortStats, RxQueueStats, TxQueueStats, XStat};
use pmd_ethdev::{EthError, EthResult, PortConf, RssConf};
use pmd_mempool::MbufPool;

mod recovery;

pub use recovery::Hooks;

use crate::cp::{CmdCounters, VportTx, WqKind, WqObj, WqSpec};
use crate::cp::{ControlPlane, CpError, DeviceCaps, DeviceEvent, Doorbells, RxSteer, VportInfo};
use crate::dma::DmaRanges;
use crate::qmem::{RingArena, pow2_at_least};
use crate::rxq::{ManaRxq, RxQueueIds, RxReport, RxXstats};
use crate::state::{DevState, StateCell};
use crate::txq::{ManaTxq, TxQueueIds, TxXstats};

/// The Toeplitz key a port starts with (the one Microsoft's verification examples use).
pub const DEFAULT_RSS_KEY: [u8; 40] = gdma_defs::MANA_DEFAULT_RSS_KEY;

/// Descriptor limits of MANA queues.
pub const MIN_DESC: u16 = 64;
/// Most descriptors per queue.
pub const MAX_DESC: u16 = 8192;
/// Bytes of SQ ring per TX descriptor: room for a long-OOB WQE with two SGEs.
const SQ_BYTES_PER_DESC: u32 = 64;

/// RX queue state in its slot: a queue while the port is started.
#[derive(Debug, Default)]
pub struct RxState(pub Option<ManaRxq>);

/// What starting a TX queue needs of its setup: size, slot, counters.
type TxParts = (u32, Arc<QueueSlot<TxState>>, Arc<TxQueueStats>, Arc<TxXstats>);
/// What starting an RX queue needs of its setup: size, pool, slot, counters.
type RxParts = (u32, MbufPool, Arc<QueueSlot<RxState>>, Arc<RxQueueStats>, Arc<RxXstats>);

impl RxBurst for RxState {
    #[inline(always)]
    fn rx_burst(&mut self, out: &mut pmd_ethdev::Pkts, max: usize) -> usize {
        match &mut self.0 {
            Some(q) => q.rx_burst(out, max),
            None => 0,
        }
    }

    fn stats(&self) -> &Arc<RxQueueStats> {
        static NONE: std::sync::OnceLock<Arc<RxQueueStats>> = std::sync::OnceLock::new();
        match &self.0 {
            Some(q) => q.stats(),
            None => NONE.get_or_init(Arc::default),
        }
    }
}

/// TX queue state in its slot.
#[derive(Debug, Default)]
pub struct TxState(pub Option<ManaTxq>);

impl TxBurst for TxState {
    #[inline(always)]
    fn tx_burst(&mut self, pkts: &mut pmd_ethdev::Pkts) -> usize {
        match &mut self.0 {
            Some(q) => q.tx_burst(pkts),
            None => 0,
        }
    }

    fn stats(&self) -> &Arc<TxQueueStats> {
        static NONE: std::sync::OnceLock<Arc<TxQueueStats>> = std::sync::OnceLock::new();
        match &self.0 {
            Some(q) => q.stats(),
            None => NONE.get_or_init(Arc::default),
        }
    }
}

/// An RX queue as set up.
struct RxSetup {
    nb_desc: u32,
    pool: MbufPool,
    slot: Arc<QueueSlot<RxState>>,
    stats: Arc<RxQueueStats>,
    x: Arc<RxXstats>,
}

/// A TX queue as set up.
struct TxSetup {
    nb_desc: u32,
    slot: Arc<QueueSlot<TxState>>,
    stats: Arc<TxQueueStats>,
    x: Arc<TxXstats>,
}

/// Device objects of a started port.
struct Running {
    arena: RingArena,
    arena_iova: u64,
    mem_key: u32,
    rx_objs: Vec<WqObj>,
    tx_objs: Vec<WqObj>,
}

/// Counters a port keeps outside its queues.
#[derive(Debug, Default)]
pub struct PortCounters {
    /// Starts.
    pub starts: Counter,
    /// Posted RX buffers freed at stop.
    pub rx_freed_at_stop: Counter,
    /// Unsent TX packets freed at stop.
    pub tx_freed_at_stop: Counter,
    /// Recovery episodes this port went through (ERR_RECOVERING raised).
    pub recoveries: Counter,
    /// Posted RX buffers freed by a recovery.
    pub rx_freed_at_reset: Counter,
    /// Unsent TX packets freed (dropped) by a recovery.
    pub tx_dropped_at_reset: Counter,
    /// Send queues recreated alone after the device disabled them.
    pub sq_recreated: Counter,
    /// Unsent TX packets freed (dropped) when their send queue was recreated.
    pub tx_dropped_at_sq_error: Counter,
}

/// What a port's stats() reads without asking the worker: its queues' counters.
#[derive(Default)]
pub struct StatsRefs {
    /// Per RX queue.
    pub rx: Vec<(Arc<RxQueueStats>, Arc<RxXstats>)>,
    /// Per TX queue.
    pub tx: Vec<(Arc<TxQueueStats>, Arc<TxXstats>)>,
}

/// A port's state, owned by the worker.
struct PortState {
    vport: VportInfo,
    ctx: Option<PortContext>,
    conf: PortConf,
    rxq: Vec<Option<RxSetup>>,
    txq: Vec<Option<TxSetup>>,
    running: Option<Running>,
    /// Ring memory of queues a recovery tore down while the device was in reset, still
    /// registered: the port's next start takes its rings from it again (zeroed) instead of
    /// allocating and registering new memory.
    spare: Option<RingArena>,
    tx_cfg: Option<VportTx>,
    reta: Vec<u16>,
    rss_key: [u8; 40],
    rss_hf: u64,
    counters: Arc<PortCounters>,
    stats_refs: Arc<Mutex<StatsRefs>>,
    /// The application wants the port started (kept through an episode: a recovered port is
    /// started again only if it was).
    admin_started: bool,
    /// Closed: no more events.
    closed: bool,
    /// MTU set by the application (MANA has no MTU command: TX frames are checked against it).
    mtu: u16,
    /// Per TX queue: the device-error count already acted on.
    tx_err_seen: Vec<u64>,
}

/// Driver options of a device.
#[derive(Debug, Clone)]
pub struct DeviceOpts {
    /// Test hook: new queue objects start near the 2^32 wrap of their positions, as a software
    /// device told the same does (`mana_emu::DeviceConfig::start_near_wrap`). Real MANA queues
    /// start at 0.
    pub start_near_wrap: bool,
    /// How long a recovery may try before it gives up (RECOVERY_FAILED). Default 10 minutes.
    pub recovery_budget: Duration,
    /// Test hooks shared by every device made with these options.
    pub hooks: Arc<Hooks>,
}

impl Default for DeviceOpts {
    fn default() -> Self {
        DeviceOpts {
            start_near_wrap: false,
            recovery_budget: Duration::from_secs(600),
            hooks: Arc::default(),
        }
    }
}

/// The worker's state.
pub(crate) struct Worker {
    cp: Box<dyn ControlPlane>,
    opts: DeviceOpts,
    caps: DeviceCaps,
    doorbells: Doorbells,
    ports: Vec<PortState>,
    /// Events to raise once the current piece of work is done (no borrow held).
    events: Vec<(Arc<pmd_ethdev::Events>, EventType, Option<u16>, String)>,
    device_events: Vec<DeviceEvent>,
    /// The device state (shared with the API side, which reads it without a lock).
    state: Arc<StateCell>,
    /// The recovery episode under way.
    episode: Option<recovery::Episode>,
    /// Queue states and ring memory (by port) a torn-down device might still have written when
    /// they were taken away: freed once it can no longer (it is back, fresh, or gone).
    deferred: Vec<(usize, Running)>,
    /// Device events seen, by kind.
    pub(crate) seen_resets: u64,
    pub(crate) seen_other: u64,
    /// Memory the device can reach (registered pools), which TX checks its SGEs against.
    dma: Arc<DmaRanges>,
    /// Pools the application registered for TX (`Port::register_pool`), registered again at
    /// every start in case the device was not up when they were given.
    tx_pools: Vec<MbufPool>,
}

type Job = Box<dyn FnOnce(&mut Worker) + Send>;

enum Msg {
    Run(Job),
    /// The device signalled an event: look at it now.
    Wake,
    Stop,
}

thread_local! {
    /// The worker state of the device whose worker this thread is (none elsewhere).
    static WORKER: RefCell<Option<(usize, Worker)>> = const { RefCell::new(None) };
}

/// The shared part of a device: how to reach its worker.
pub struct Device {
    tx: Mutex<Option<Sender<Msg>>>,
    worker: Mutex<Option<JoinHandle<()>>>,
    worker_id: ThreadId,
    key: usize,
    /// What the device offers.
    pub caps: DeviceCaps,
    /// Its vports.
    pub vports: Vec<VportInfo>,
    /// One line about it.
    pub describe: String,
    stats_refs: Vec<Arc<Mutex<StatsRefs>>>,
    counters: Vec<Arc<PortCounters>>,
    /// How the control plane's commands ended when the device did not answer.
    cmd_counters: Arc<CmdCounters>,
    state: Arc<StateCell>,
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "mana::Device({})", self.describe)
    }
}

fn cp_err(port: u16, e: CpError) -> EthError {
    match e {
        CpError::DeviceGone { .. } => EthError::Removed { port },
        e => EthError::device(port, e.to_string()),
    }
}

impl Device {
    /// Brings up the device through `cp` and starts its control worker.
    pub fn start(
        mut cp: Box<dyn ControlPlane>,
        describe: String,
        opts: DeviceOpts,
    ) -> Result<Arc<Self>, String> {
        let caps = cp.bring_up().map_err(|e| format!("bring-up: {e}"))?;
        let doorbells = cp.doorbells().map_err(|e| format!("doorbells: {e}"))?;
        let mut vports = Vec::new();
        for i in 0..caps.num_vports as u32 {
            vports.push(cp.query_vport(i).map_err(|e| format!("vport {i}: {e}"))?);
        }
        let ports: Vec<PortState> = vports
            .iter()
            .map(|v| PortState {
                vport: *v,
                ctx: None,
                conf: PortConf::default(),
                rxq: Vec::new(),
                txq: Vec::new(),
                running: None,
                spare: None,
                tx_cfg: None,
                reta: Vec::new(),
                rss_key: DEFAULT_RSS_KEY,
                rss_hf: 0,
                counters: Arc::default(),
                stats_refs: Arc::default(),
                admin_started: false,
                closed: false,
                mtu: 1500,
                tx_err_seen: Vec::new(),
            })
            .collect();
        let stats_refs = ports.iter().map(|p| p.stats_refs.clone()).collect();
        let counters = ports.iter().map(|p| p.counters.clone()).collect();
        let cmd_counters = cp.cmd_counters();
        let state = Arc::new(StateCell::default());
        let (tx, rx) = mpsc::channel::<Msg>();
        // An event the device signals (a reset request) is looked at at once, not at the next
        // tick.
        let waker = tx.clone();
        cp.set_event_waker(Some(Arc::new(move || {
            let _ = waker.send(Msg::Wake);
        })));
        let worker = Worker {
            cp,
            opts,
            caps: caps.clone(),
            doorbells,
            ports,
            events: Vec::new(),
            device_events: Vec::new(),
            state: state.clone(),
            episode: None,
            deferred: Vec::new(),
            seen_resets: 0,
            seen_other: 0,
            dma: Arc::default(),
            tx_pools: Vec::new(),
        };
        static NEXT_KEY: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(1);
        let key = NEXT_KEY.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let handle = std::thread::Builder::new()
            .name("mana-ctl".into())
            .spawn(move || worker_main(key, worker, rx))
            .map_err(|e| format!("cannot start the control worker: {e}"))?;
        let worker_id = handle.thread().id();
        Ok(Arc::new(Device {
            tx: Mutex::new(Some(tx)),
            worker: Mutex::new(Some(handle)),
            worker_id,
            key,
            caps,
            vports,
            describe,
            stats_refs,
            counters,
            cmd_counters,
            state,
        }))
    }

    /// The device state now.
    pub fn state(&self) -> DevState {
        self.state.get()
    }

    /// Runs `f` on the worker and returns its result: inline when called on the worker (an
    /// event callback), else as a message, waiting for the answer with no lock held.
    pub(crate) fn call<R: Send + 'static>(
        &self,
        port: u16,
        f: impl FnOnce(&mut Worker) -> R + Send + 'static,
    ) -> EthResult<R> {
        if std::thread::current().id() == self.worker_id {
            let r = WORKER.with(|w| {
                let mut w = w.borrow_mut();
                match w.as_mut() {
                    Some((k, worker)) if *k == self.key => Some(f(worker)),
                    _ => None,
                }
            });
            let r = r.ok_or(EthError::Removed { port })?;
            raise_pending(self.key);
            return Ok(r);
        }
        let (reply_tx, reply_rx) = mpsc::sync_channel::<R>(1);
        let job: Job = Box::new(move |w: &mut Worker| {
            let _ = reply_tx.send(f(w));
        });
        let sender = self.tx.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let sender = sender.ok_or(EthError::Removed { port })?;
        sender.send(Msg::Run(job)).map_err(|_| EthError::Removed { port })?;
        reply_rx.recv().map_err(|_| EthError::Removed { port })
    }

    /// The counters a port's stats read directly.
    pub(crate) fn stats_refs(&self, vport: usize) -> Arc<Mutex<StatsRefs>> {
        self.stats_refs[vport].clone()
    }

    /// A port's own counters.
    pub(crate) fn counters(&self, vport: usize) -> Arc<PortCounters> {
        self.counters[vport].clone()
    }

    /// How the device's control commands ended when it did not answer them: full timeouts,
    /// short timeouts of a channel known unresponsive, refusals of a channel known dead,
    /// bring-ups (ports show them as `hwc_*` xstats).
    pub fn cmd_counters(&self) -> &Arc<CmdCounters> {
        &self.cmd_counters
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        if let Some(tx) = self.tx.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = tx.send(Msg::Stop);
        }
        let handle = self.worker.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(h) = handle {
            // The last reference may go away on the worker itself (a callback dropping a port):
            // it then finishes on its own after this message; never join oneself.
            if std::thread::current().id() != self.worker_id {
                let _ = h.join();
            }
        }
    }
}

/// Raises the events the worker queued (on the worker thread, no borrow held).
fn raise_pending(key: usize) {
    let evs = WORKER.with(|w| match w.borrow_mut().as_mut() {
        Some((k, worker)) if *k == key => std::mem::take(&mut worker.events),
        _ => Vec::new(),
    });
    for (events, kind, queue, detail) in evs {
        events.raise(kind, queue, detail);
    }
}

/// How often the worker looks at device events and queue errors when no work arrives.
pub(crate) const EVENT_POLL: Duration = Duration::from_millis(5);

fn worker_main(key: usize, worker: Worker, rx: mpsc::Receiver<Msg>) {
    WORKER.with(|w| *w.borrow_mut() = Some((key, worker)));
    let mut next_tick = std::time::Instant::now();
    loop {
        let now = std::time::Instant::now();
        if now >= next_tick {
            let next = WORKER.with(|w| match w.borrow_mut().as_mut() {
                Some((_, worker)) => worker.tick(),
                None => EVENT_POLL,
            });
            raise_pending(key);
            next_tick = std::time::Instant::now() + next;
        }
        let wait = next_tick.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(wait) {
            Ok(Msg::Run(job)) => {
                WORKER.with(|w| {
                    if let Some((_, worker)) = w.borrow_mut().as_mut() {
                        job(worker);
                    }
                });
            }
            Ok(Msg::Wake) => next_tick = std::time::Instant::now(),
            Ok(Msg::Stop) | Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => {}
        }
        raise_pending(key);
    }
    // Close every port still open, then the device.
    let worker = WORKER.with(|w| w.borrow_mut().take());
    if let Some((_, mut worker)) = worker {
        for p in 0..worker.ports.len() {
            let _ = worker.stop_port(p);
        }
        worker.free_deferred();
        let _ = worker.cp.tear_down();
        worker.state.set(DevState::Closed);
    }
}

impl Worker {
    /// Takes device events into `device_events`.
    fn poll_device(&mut self) {
        let mut evs = std::mem::take(&mut self.device_events);
        evs.clear();
        if self.cp.poll_events(&mut evs).is_err() {
            self.device_events = evs;
            return;
        }
        for e in &evs {
            match e {
                DeviceEvent::ResetRequest { .. } | DeviceEvent::Dead => self.seen_resets += 1,
                _ => self.seen_other += 1,
            }
        }
        self.device_events = evs;
    }

    fn port(&mut self, p: usize) -> &mut PortState {
        &mut self.ports[p]
    }

    /// Binds a port to its port-API context.
    pub(crate) fn bind(&mut self, p: usize, ctx: PortContext) {
        self.port(p).ctx = Some(ctx);
    }

    pub(crate) fn configure(
        &mut self,
        p: usize,
        nb_rxq: u16,
        nb_txq: u16,
        conf: &PortConf,
    ) -> EthResult<()> {
        let id = self.port_id(p);
        self.idle(p)?;
        let st = self.port(p);
        if st.running.is_some() {
            return Err(EthError::BadState { port: id, op: "configure", state: "started" });
        }
        st.conf = conf.clone();
        st.rxq = (0..nb_rxq).map(|_| None).collect();
        st.txq = (0..nb_txq).map(|_| None).collect();
        st.tx_err_seen = vec![0; nb_txq as usize];
        let n = st.vport.indir_entries.max(1) as u16;
        st.reta = (0..n).map(|i| i % nb_rxq.max(1)).collect();
        if let Some(r) = &conf.rss {
            if let Some(k) = &r.key {
                st.rss_key.copy_from_slice(k);
            }
            st.rss_hf = r.hf;
        } else {
            st.rss_hf = 0;
        }
        *st.stats_refs.lock().unwrap_or_else(|e| e.into_inner()) = StatsRefs::default();
        Ok(())
    }

    fn port_id(&self, p: usize) -> u16 {
        self.ports[p].ctx.as_ref().map_or(p as u16, |c| c.port)
    }

    pub(crate) fn rx_setup(
        &mut self,
        p: usize,
        q: u16,
        nb_desc: u16,
        pool: MbufPool,
    ) -> EthResult<Arc<QueueSlot<RxState>>> {
        self.idle(p)?;
        let st = self.port(p);
        let slot = Arc::new(QueueSlot::new(RxState(None), true));
        let stats = Arc::new(RxQueueStats::default());
        let x = Arc::new(RxXstats::default());
        st.rxq[q as usize] = Some(RxSetup {
            nb_desc: pow2_at_least(nb_desc as u32, MIN_DESC as u32),
            pool,
            slot: slot.clone(),
            stats: stats.clone(),
            x: x.clone(),
        });
        let mut refs = st.stats_refs.lock().unwrap_or_else(|e| e.into_inner());
        refs.rx.resize_with(st.rxq.len(), Default::default);
        refs.rx[q as usize] = (stats, x);
        Ok(slot)
    }

    pub(crate) fn tx_setup(
        &mut self,
        p: usize,
        q: u16,
        nb_desc: u16,
    ) -> EthResult<Arc<QueueSlot<TxState>>> {
        self.idle(p)?;
        let st = self.port(p);
        let slot = Arc::new(QueueSlot::new(TxState(None), true));
        let stats = Arc::new(TxQueueStats::default());
        let x = Arc::new(TxXstats::default());
        st.tx_err_seen.resize(st.txq.len(), 0);
        st.tx_err_seen[q as usize] = x.err_gdma.get();
        st.txq[q as usize] = Some(TxSetup {
            nb_desc: pow2_at_least(nb_desc as u32, MIN_DESC as u32),
            slot: slot.clone(),
            stats: stats.clone(),
            x: x.clone(),
        });
        let mut refs = st.stats_refs.lock().unwrap_or_else(|e| e.into_inner());
        refs.tx.resize_with(st.txq.len(), Default::default);
        refs.tx[q as usize] = (stats, x);
        Ok(slot)
    }

    /// Refuses control calls while a recovery episode runs, or after it failed.
    fn idle(&self, p: usize) -> EthResult<()> {
        let id = self.port_id(p);
        match self.state.get() {
            DevState::Active => Ok(()),
            DevState::Removed | DevState::Closed => Err(EthError::Removed { port: id }),
            s => Err(EthError::Busy { port: id, why: format!("the device is {}", s.name()) }),
        }
    }

    /// The application starts the port.
    pub(crate) fn start_port(&mut self, p: usize) -> EthResult<()> {
        self.idle(p)?;
        self.ports[p].admin_started = true;
        let r = self.bring_port_up(p);
        if r.is_err() {
            self.ports[p].admin_started = false;
        }
        r
    }

    /// Creates the port's device objects, posts RX buffers, sets steering, opens the gates.
    fn bring_port_up(&mut self, p: usize) -> EthResult<()> {
        let id = self.port_id(p);
        if self.ports[p].running.is_some() {
            return Ok(());
        }
        let r = self.try_start(p);
        if let Err(e) = r {
            // Undo what was made; the error is what the caller sees.
            let _ = self.halt_port(p);
            return Err(cp_err(id, e));
        }
        let st = self.port(p);
        st.counters.starts.inc();
        for s in st.rxq.iter().flatten() {
            if let Some(x) = s.slot.exclusive_logged("mana start") {
                x.open();
            }
        }
        for s in st.txq.iter().flatten() {
            if let Some(x) = s.slot.exclusive_logged("mana start") {
                x.open();
            }
        }
        if let Some(ctx) = &st.ctx {
            ctx.dispatch.set_live();
        }
        Ok(())
    }

    fn try_start(&mut self, p: usize) -> Result<(), CpError> {
        let port_id = self.port_id(p);
        let caps = self.caps.clone();
        let db = self.doorbells.clone();
        // Memory the device will touch: the RX pools and a ring arena.
        let pools: Vec<MbufPool> =
            self.ports[p].rxq.iter().flatten().map(|s| s.pool.clone()).collect();
        let mut mem_key = caps.mem_key;
        let tx_pools = self.tx_pools.clone();
        for pool in pools.iter().chain(&tx_pools) {
            mem_key = self.register_pool_mem(pool)?;
        }
        let st = &self.ports[p];
        let mut sizes = Vec::new();
        for s in st.txq.iter().flatten() {
            sizes.push(pow2_at_least(s.nb_desc * SQ_BYTES_PER_DESC, 4096));
            sizes.push(pow2_at_least(s.nb_desc * 64, 4096));
        }
        for s in st.rxq.iter().flatten() {
            sizes.push(pow2_at_least(s.nb_desc * 32, 4096));
            sizes.push(pow2_at_least(s.nb_desc * 64, 4096));
        }
        let mut sorted = sizes.clone();
        sorted.sort_unstable_by(|a, b| b.cmp(a));
        let name = format!("mana-v{}-rings", st.vport.index);
        let arena = match self.ports[p].spare.take() {
            Some(mut a) if a.made_for(&sorted) => {
                a.rewind();
                a
            }
            other => {
                if let Some(a) = other {
                    self.drop_arena(a);
                }
                RingArena::new(&name, &sorted).map_err(|e| CpError::Exhausted(e.to_string()))?
            }
        };
        let arena_iova = arena.segment().iova_base();
        self.cp.register_segment(arena.segment())?;
        self.ports[p].running =
            Some(Running { arena, arena_iova, mem_key, rx_objs: Vec::new(), tx_objs: Vec::new() });
        let vport = self.ports[p].vport.handle;
        let tx_cfg = self.cp.config_vport_tx(vport)?;
        self.ports[p].tx_cfg = Some(tx_cfg);

        // Rings are taken largest first (aligned to their size): collect (size, purpose).
        let st = &mut self.ports[p];
        let run = st.running.as_mut().ok_or(CpError::NotUp)?;
        let mut order: Vec<(u32, usize)> = sizes.iter().copied().zip(0..).collect();
        order.sort_unstable_by_key(|a| std::cmp::Reverse(a.0));
        let mut rings = vec![None; sizes.len()];
        for (size, i) in order {
            rings[i] = Some(run.arena.take(size).ok_or(CpError::Exhausted("ring memory".into()))?);
        }
        let mut rings = rings.into_iter().map(|r| r.ok_or(CpError::Exhausted("rings".into())));
        let report = RxReport {
            rss_hash: st.conf.rx_offloads & rx_offload::RSS_HASH != 0 || st.rss_hf != 0,
            checksum: st.conf.rx_offloads & rx_offload::CHECKSUM != 0,
            vlan_strip: st.conf.rx_offloads & rx_offload::VLAN_STRIP != 0,
        };
        let txs: Vec<TxParts> = st
            .txq
            .iter()
            .flatten()
            .map(|s| (s.nb_desc, s.slot.clone(), s.stats.clone(), s.x.clone()))
            .collect();
        let rxs: Vec<RxParts> = st
            .rxq
            .iter()
            .flatten()
            .map(|s| (s.nb_desc, s.pool.clone(), s.slot.clone(), s.stats.clone(), s.x.clone()))
            .collect();
        let mut tx_rings = Vec::new();
        for _ in &txs {
            let (sq, cq) =
                (rings.next().ok_or(CpError::NotUp)??, rings.next().ok_or(CpError::NotUp)??);
            tx_rings.push((sq, cq));
        }
        let mut rx_rings = Vec::new();
        for _ in &rxs {
            let (rq, cq) =
                (rings.next().ok_or(CpError::NotUp)??, rings.next().ok_or(CpError::NotUp)??);
            rx_rings.push((rq, cq));
        }

        for ((nb, slot, stats, x), (sq, cq)) in txs.into_iter().zip(tx_rings) {
            let obj =
                self.cp.create_wq(&WqSpec { vport, kind: WqKind::Sq, wq: sq.desc, cq: cq.desc })?;
            if let Some(run) = self.ports[p].running.as_mut() {
                run.tx_objs.push(obj);
            }
            let q = self.make_txq(&obj, tx_cfg, mem_key, (sq, cq), nb, stats, x)?;
            let mut ex = slot.exclusive_logged("mana start").ok_or(CpError::NotUp)?;
            ex.with(|s| s.0 = Some(q));
        }
        let mut rq_handles = Vec::new();
        for ((nb, pool, slot, stats, x), (rq, cq)) in rxs.into_iter().zip(rx_rings) {
            let obj =
                self.cp.create_wq(&WqSpec { vport, kind: WqKind::Rq, wq: rq.desc, cq: cq.desc })?;
            if let Some(run) = self.ports[p].running.as_mut() {
                run.rx_objs.push(obj);
            }
            rq_handles.push(obj.handle);
            let ids = RxQueueIds { rq_id: obj.wq_id, cq_id: obj.cq_id, mem_key, port: port_id };
            let db_off = (db.page_offset + obj.db_page as u64 * db.page_size as u64) as usize;
            let mut q = ManaRxq::new(rq, cq, nb, pool, ids, report, db.win, db_off, stats, x)
                .ok_or_else(|| CpError::BadArg("RX queue geometry".into()))?;
            if self.opts.start_near_wrap {
                q.start_near_wrap();
            }
            q.set_hooks(self.opts.hooks.clone());
            let mut ex = slot.exclusive_logged("mana start").ok_or(CpError::NotUp)?;
            ex.with(|s| {
                s.0 = Some(q);
                if let Some(q) = s.0.as_mut() {
                    q.refill();
                }
            });
        }
        if !rq_handles.is_empty() {
            self.steer(p, true)?;
        }
        Ok(())
    }

    /// Registers `pool`'s memory with the device and records its ranges as reachable for TX;
    /// returns the memory key.
    fn register_pool_mem(&mut self, pool: &pmd_mempool::Mempool) -> Result<u32, CpError> {
        let key = self.cp.register_pool(pool)?;
        for seg in pool.segments() {
            if !self.dma.add(seg.iova_base(), seg.len() as u64) {
                return Err(CpError::Exhausted(format!(
                    "more than {} registered memory ranges (pool {})",
                    crate::dma::MAX_DMA_RANGES,
                    pool.name()
                )));
            }
        }
        Ok(key)
    }

    /// Makes `pool` reachable by the device for TX: now if the device is up, and again at every
    /// start (an RX pool of any port of the device already is).
    pub(crate) fn register_tx_pool(&mut self, p: usize, pool: MbufPool) -> EthResult<()> {
        if !self.tx_pools.iter().any(|t| t.same_pool(&pool)) {
            self.tx_pools.push(pool.clone());
        }
        match self.register_pool_mem(&pool) {
            Ok(_) | Err(CpError::NotUp) => Ok(()),
            Err(e) => Err(cp_err(self.port_id(p), e)),
        }
    }

    /// A TX queue over a created SQ object.
    #[allow(clippy::too_many_arguments)]
    fn make_txq(
        &self,
        obj: &WqObj,
        tx_cfg: VportTx,
        mem_key: u32,
        (sq, cq): (crate::qmem::Ring, crate::qmem::Ring),
        nb: u32,
        stats: Arc<TxQueueStats>,
        x: Arc<TxXstats>,
    ) -> Result<ManaTxq, CpError> {
        let db = &self.doorbells;
        let ids = TxQueueIds {
            sq_id: obj.wq_id,
            cq_id: obj.cq_id,
            db_page: obj.db_page,
            vport_offset: tx_cfg.tx_vport_offset,
            short_form_allowed: tx_cfg.short_form_allowed,
            mem_key,
        };
        let db_off = (db.page_offset + obj.db_page as u64 * db.page_size as u64) as usize;
        x.sq_id.store(obj.wq_id as u64, std::sync::atomic::Ordering::Relaxed);
        let mut q = ManaTxq::new(sq, cq, nb, ids, db.win, db_off, stats, x, self.dma.clone())
            .ok_or_else(|| CpError::BadArg("TX queue geometry".into()))?;
        if self.opts.start_near_wrap {
            q.start_near_wrap();
        }
        Ok(q)
    }

    /// Sends the port's RX steering (enabled or not) to the device.
    fn steer(&mut self, p: usize, rx_enable: bool) -> Result<(), CpError> {
        let st = &self.ports[p];
        let Some(run) = &st.running else { return Ok(()) };
        if run.rx_objs.is_empty() {
            return Ok(());
        }
        let handles: Vec<u64> = run.rx_objs.iter().map(|o| o.handle).collect();
        let indir: Vec<u64> =
            st.reta.iter().map(|&q| handles[(q as usize).min(handles.len() - 1)]).collect();
        let steer = RxSteer {
            vport: st.vport.handle,
            rx_enable,
            rss_enable: st.rss_hf != 0 && handles.len() > 1,
            hash_key: st.rss_key,
            indir,
            default_rq: handles[0],
            cqe_coalescing: true,
        };
        self.cp.config_vport_rx(&steer)
    }

    /// Unregisters and frees ring memory nothing uses any more.
    pub(crate) fn drop_arena(&mut self, arena: RingArena) {
        // Not registered any more (a teardown unmapped it) is fine.
        let _ = self.cp.unregister(arena.segment().iova_base());
        drop(arena);
    }

    /// The application stops the port (allowed during an episode: the port then stays stopped
    /// when the device comes back).
    pub(crate) fn stop_port(&mut self, p: usize) -> EthResult<()> {
        self.ports[p].admin_started = false;
        if let Some(a) = self.ports[p].spare.take() {
            self.drop_arena(a);
        }
        if self.state.get() != DevState::Active {
            // The device objects are gone or going: close the gates and free what the queues
            // hold if the device can no longer write it.
            self.close_gates(p);
            if self.episode.is_none() || !self.cp.alive() {
                self.free_deferred();
            }
            let _ = self.halt_port(p);
            return Ok(());
        }
        self.halt_port(p)
    }

    /// Closes the gates, turns RX off, destroys the device objects, frees every buffer.
    fn halt_port(&mut self, p: usize) -> EthResult<()> {
        let id = self.port_id(p);
        let busy = || EthError::Busy {
            port: id,
            why: "a queue is held by another control operation".into(),
        };
        // Gates first: no burst runs while the queues go away (each close waits for its poller).
        let st = &self.ports[p];
        let rx_slots: Vec<_> = st.rxq.iter().flatten().map(|s| s.slot.clone()).collect();
        let tx_slots: Vec<_> = st.txq.iter().flatten().map(|s| s.slot.clone()).collect();
        let mut excl_rx = Vec::new();
        for s in &rx_slots {
            excl_rx.push(s.exclusive_logged("mana stop").ok_or_else(busy)?);
        }
        let mut excl_tx = Vec::new();
        for s in &tx_slots {
            excl_tx.push(s.exclusive_logged("mana stop").ok_or_else(busy)?);
        }
        if self.ports[p].running.is_none() {
            return Ok(());
        }
        let mut first_err = None;
        if let Err(e) = self.steer(p, false) {
            first_err.get_or_insert(e);
        }
        let Some(run) = self.ports[p].running.take() else { return Ok(()) };
        for o in run.tx_objs.iter().chain(run.rx_objs.iter()) {
            if let Err(e) = self.cp.destroy_wq(o) {
                first_err.get_or_insert(e);
            }
        }
        // The device no longer reads or writes the rings or the posted buffers: free them.
        let c = self.ports[p].counters.clone();
        for ex in excl_rx.iter_mut() {
            ex.with(|s| {
                if let Some(mut q) = s.0.take() {
                    c.rx_freed_at_stop.add(q.drain() as u64);
                }
            });
        }
        for ex in excl_tx.iter_mut() {
            ex.with(|s| {
                if let Some(mut q) = s.0.take() {
                    q.reap();
                    c.tx_freed_at_stop.add(q.drain() as u64);
                }
            });
        }
        if let Err(e) = self.cp.unregister(run.arena_iova) {
            first_err.get_or_insert(e);
        }
        drop(run);
        match first_err {
            // A device that is gone, or whose channel no longer answers (the first command
            // waited its timeout, the rest failed at once), has dropped everything or will on
            // its reset: the port is stopped and its buffers are back.
            Some(CpError::DeviceGone { .. } | CpError::Timeout { .. }) | None => Ok(()),
            Some(e) => Err(cp_err(id, e)),
        }
    }

    pub(crate) fn close_port(&mut self, p: usize) -> EthResult<()> {
        self.stop_port(p)?;
        // Whatever the queues still hold goes back to its pool (the device objects are gone).
        self.drain_slots(p);
        let st = self.port(p);
        st.rxq.clear();
        st.txq.clear();
        st.closed = true;
        Ok(())
    }

    pub(crate) fn device_xstats(&mut self, p: usize) -> EthResult<Vec<(&'static str, u64)>> {
        let id = self.port_id(p);
        if self.state.get() != DevState::Active {
            // No device to ask: the queue counters alone.
            return Ok(Vec::new());
        }
        self.cp.device_stats().map_err(|e| cp_err(id, e))
    }

    pub(crate) fn reta_update(&mut self, p: usize, reta: &[u16]) -> EthResult<()> {
        let id = self.port_id(p);
        self.idle(p)?;
        self.port(p).reta = reta.to_vec();
        self.steer(p, true).map_err(|e| cp_err(id, e))
    }

    pub(crate) fn reta(&mut self, p: usize) -> Vec<u16> {
        self.port(p).reta.clone()
    }

    pub(crate) fn rss_update(&mut self, p: usize, rss_conf: &RssConf) -> EthResult<()> {
        let id = self.port_id(p);
        self.idle(p)?;
        let st = self.port(p);
        if let Some(k) = &rss_conf.key {
            st.rss_key.copy_from_slice(k);
        }
        st.rss_hf = rss_conf.hf & rss::MANA;
        self.steer(p, true).map_err(|e| cp_err(id, e))
    }

    pub(crate) fn rss_conf(&mut self, p: usize) -> RssConf {
        let st = self.port(p);
        RssConf { key: Some(st.rss_key.to_vec()), hf: st.rss_hf }
    }

    /// Sets the MTU (kept, and restored by a recovery).
    pub(crate) fn mtu_set(&mut self, p: usize, mtu: u16) -> EthResult<()> {
        self.idle(p)?;
        self.port(p).mtu = mtu;
        Ok(())
    }

    /// Queues an event for raising after the current work (none for a closed port).
    pub(crate) fn queue_event(&mut self, p: usize, kind: EventType, queue: Option<u16>, d: String) {
        let st = &self.ports[p];
        if st.closed {
            return;
        }
        if let Some(ctx) = &st.ctx {
            self.events.push((ctx.events.clone(), kind, queue, d));
        }
    }
}

/// Basic stats of a port from its queue counters and the device's.
pub(crate) fn port_stats(refs: &StatsRefs, imissed: u64) -> PortStats {
    let mut s = PortStats { imissed, ..Default::default() };
    for (q, _) in &refs.rx {
        s.ipackets += q.packets.get();
        s.ibytes += q.bytes.get();
        s.ierrors += q.errors.get();
        s.rx_nombuf += q.nombuf.get();
        s.q_ipackets.push(q.packets.get());
        s.q_ibytes.push(q.bytes.get());
        s.q_errors.push(q.errors.get());
    }
    for (q, _) in &refs.tx {
        s.opackets += q.packets.get();
        s.obytes += q.bytes.get();
        s.oerrors += q.errors.get();
        s.q_opackets.push(q.packets.get());
        s.q_obytes.push(q.bytes.get());
    }
    s
}

/// Named counters of a port's queues.
pub(crate) fn queue_xstats(refs: &StatsRefs, c: &PortCounters, out: &mut Vec<XStat>) {
    for (i, (q, x)) in refs.rx.iter().enumerate() {
        out.push(XStat::new(format!("rx_q{i}_packets"), q.packets.get()));
        out.push(XStat::new(format!("rx_q{i}_bytes"), q.bytes.get()));
        out.push(XStat::new(format!("rx_q{i}_errors"), q.errors.get()));
        out.push(XStat::new(format!("rx_q{i}_mbuf_allocation_errors"), q.nombuf.get()));
        out.push(XStat::new(format!("rx_q{i}_cqe_bad"), x.cqe_bad.get()));
        out.push(XStat::new(format!("rx_q{i}_cqe_bad_owner"), x.cqe_bad_owner.get()));
        out.push(XStat::new(format!("rx_q{i}_bad_len"), x.bad_len.get()));
        out.push(XStat::new(format!("rx_q{i}_truncated"), x.truncated.get()));
        out.push(XStat::new(format!("rx_q{i}_cqe_unexpected"), x.cqe_unexpected.get()));
        out.push(XStat::new(format!("rx_q{i}_coalesced_cqes"), x.coalesced.get()));
        out.push(XStat::new(format!("rx_q{i}_doorbells"), x.doorbells.get()));
        out.push(XStat::new(format!("rx_q{i}_vlan_reinsert_failed"), x.vlan_reinsert_failed.get()));
        out.push(XStat::new(format!("rx_q{i}_resync_skipped"), x.resync_skipped.get()));
        out.push(XStat::new(format!("rx_q{i}_cqe_bad_offset"), x.cqe_bad_offset.get()));
    }
    for (i, (q, x)) in refs.tx.iter().enumerate() {
        out.push(XStat::new(format!("tx_q{i}_packets"), q.packets.get()));
        out.push(XStat::new(format!("tx_q{i}_bytes"), q.bytes.get()));
        out.push(XStat::new(format!("tx_q{i}_errors"), q.errors.get()));
        out.push(XStat::new(format!("tx_q{i}_completions"), x.completions.get()));
        out.push(XStat::new(format!("tx_q{i}_cqe_bad"), x.cqe_bad.get()));
        out.push(XStat::new(format!("tx_q{i}_cqe_bad_owner"), x.cqe_bad_owner.get()));
        out.push(XStat::new(format!("tx_q{i}_cqe_bad_offset"), x.cqe_bad_offset.get()));
        out.push(XStat::new(format!("tx_q{i}_err_sa_drop"), x.err_sa_drop.get()));
        out.push(XStat::new(format!("tx_q{i}_err_mtu_drop"), x.err_mtu_drop.get()));
        out.push(XStat::new(format!("tx_q{i}_err_invalid_oob"), x.err_invalid_oob.get()));
        out.push(XStat::new(format!("tx_q{i}_err_gdma"), x.err_gdma.get()));
        out.push(XStat::new(format!("tx_q{i}_err_other"), x.err_other.get()));
        out.push(XStat::new(format!("tx_q{i}_too_many_segs"), x.too_many_segs.get()));
        out.push(XStat::new(format!("tx_q{i}_unreachable"), x.unreachable.get()));
        let sq_id = x.sq_id.load(std::sync::atomic::Ordering::Relaxed);
        out.push(XStat::new(format!("tx_q{i}_sq_id"), sq_id));
        out.push(XStat::new(format!("tx_q{i}_ring_full"), x.ring_full.get()));
        out.push(XStat::new(format!("tx_q{i}_doorbells"), x.doorbells.get()));
    }
    out.push(XStat::new("port_starts", c.starts.get()));
    out.push(XStat::new("rx_buffers_freed_at_stop", c.rx_freed_at_stop.get()));
    out.push(XStat::new("tx_packets_freed_at_stop", c.tx_freed_at_stop.get()));
    out.push(XStat::new("recoveries", c.recoveries.get()));
    out.push(XStat::new("rx_buffers_freed_at_reset", c.rx_freed_at_reset.get()));
    out.push(XStat::new("tx_packets_dropped_at_reset", c.tx_dropped_at_reset.get()));
    out.push(XStat::new("sq_recreated", c.sq_recreated.get()));
    out.push(XStat::new("tx_packets_dropped_at_sq_error", c.tx_dropped_at_sq_error.get()));
}
