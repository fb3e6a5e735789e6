//! The device: its thread, its control handle, and the loop that ties BAR0, the hardware
//! channel, the queues and the wire together.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pmd_mempool::MemSegment;

use crate::bar::{Bar0, DB_SLOTS};
use crate::config::{DeviceConfig, ParseError};
use crate::dma::{IovaSpace, MapError, Mapping};
use crate::fault::Fault;
use crate::hwc::Hwc;
use crate::objects::Objects;
use crate::stats::Stats;
use crate::wire::{Wire, WireError};

/// Largest frame the device handles (a 9000-byte MTU jumbo frame with a VLAN tag, rounded up).
pub const MAX_FRAME: usize = 9216 + 64;

/// Why a device could not start or refused a control request.
#[derive(Debug, thiserror::Error)]
pub enum EmuError {
    /// Bad configuration.
    #[error("configuration: {0}")]
    Config(#[from] ParseError),
    /// BAR0 memory could not be had.
    #[error("BAR0: {0}")]
    Bar(#[from] pmd_mempool::SegmentError),
    /// The wire could not be opened.
    #[error(transparent)]
    Wire(#[from] WireError),
    /// A DMA mapping request was refused.
    #[error(transparent)]
    Map(#[from] MapError),
    /// The device thread is gone.
    #[error("the device thread has stopped")]
    Stopped,
    /// The device thread could not be started.
    #[error("cannot start the device thread: {0}")]
    Thread(std::io::Error),
}

/// A control request to the device thread, with where to send the answer.
enum Ctl {
    Map(Vec<Mapping>, mpsc::Sender<Result<(), MapError>>),
    Unmap(u64, mpsc::Sender<Result<(), MapError>>),
    Inject(Fault, mpsc::Sender<()>),
    Stop,
}

/// What the device thread and its handles share.
pub(crate) struct Shared {
    pub(crate) cfg: DeviceConfig,
    pub(crate) bar: Bar0,
    pub(crate) stats: Stats,
    /// Control requests waiting (checked every loop pass before touching the channel).
    ctl_pending: AtomicU32,
    /// False between `remove` and `readd`.
    present: AtomicBool,
    /// When the device last came out of a reset (its register map readable again).
    powered_on: std::sync::Mutex<Option<Instant>>,
    /// Interrupt handlers by MSI-X vector (what a VFIO user registers eventfds for).
    irq: std::sync::Mutex<Vec<(u32, InterruptHandler)>>,
    /// Some handler is registered (raising an interrupt takes no lock otherwise).
    irq_any: AtomicBool,
}

/// What the device calls, on its own thread, when it raises an MSI-X vector: it must return
/// at once (wake a thread, write an eventfd).
pub type InterruptHandler = Arc<dyn Fn() + Send + Sync>;

impl Shared {
    /// Raises MSI-X vector `vector`: calls its handler, if one is registered.
    pub(crate) fn raise(&self, vector: u32) {
        if !self.irq_any.load(Ordering::Acquire) {
            return;
        }
        let handler = {
            let irq = self.irq.lock().unwrap_or_else(|e| e.into_inner());
            irq.iter().find(|(v, _)| *v == vector).map(|(_, h)| h.clone())
        };
        if let Some(h) = handler {
            h();
        }
    }
}

/// A running software MANA device. Dropping it stops the device thread.
pub struct Device {
    shared: Arc<Shared>,
    ctl: mpsc::Sender<Ctl>,
    thread: Option<JoinHandle<()>>,
}

impl Device {
    /// Starts a device thread.
    pub fn start(cfg: DeviceConfig) -> Result<Device, EmuError> {
        cfg.validate()?;
        let macs: Vec<[u8; 6]> = (0..cfg.vports).map(|i| cfg.mac(i)).collect();
        let wire = Wire::open(&cfg.wire, &macs)?;
        let bar = Bar0::new(&format!("{}-bar0", cfg.name))?;
        let shared = Arc::new(Shared {
            stats: Stats::new(cfg.vports),
            cfg,
            bar,
            ctl_pending: AtomicU32::new(0),
            present: AtomicBool::new(true),
            powered_on: std::sync::Mutex::new(None),
            irq: std::sync::Mutex::new(Vec::new()),
            irq_any: AtomicBool::new(false),
        });
        let (tx, rx) = mpsc::channel();
        let core = Core::new(shared.clone(), wire, macs);
        let thread = std::thread::Builder::new()
            .name(format!("{}-dev", shared.cfg.name))
            .spawn(move || {
                if let Some(cpu) = core.shared.cfg.cpu {
                    core_affinity::set_for_current(core_affinity::CoreId { id: cpu });
                }
                core.run(rx)
            })
            .map_err(EmuError::Thread)?;
        Ok(Device { shared, ctl: tx, thread: Some(thread) })
    }

    /// The configuration.
    pub fn config(&self) -> &DeviceConfig {
        &self.shared.cfg
    }

    /// BAR0: map it (in-process it is the same mapping) or pass its fd to another process.
    pub fn bar0(&self) -> &Arc<MemSegment> {
        self.shared.bar.segment()
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.shared.stats
    }

    /// False while the device is hot-removed.
    pub fn present(&self) -> bool {
        self.shared.present.load(Ordering::Acquire)
    }

    /// Registers `handler` for MSI-X vector `vector` (replacing any), or removes it (`None`).
    /// The device calls it, on its own thread, whenever it raises the vector: an event posted
    /// on an armed EQ of that vector. Handlers stay across device resets.
    pub fn set_interrupt_handler(&self, vector: u32, handler: Option<InterruptHandler>) {
        let mut irq = self.shared.irq.lock().unwrap_or_else(|e| e.into_inner());
        irq.retain(|(v, _)| *v != vector);
        if let Some(h) = handler {
            irq.push((vector, h));
        }
        self.shared.irq_any.store(!irq.is_empty(), Ordering::Release);
    }

    /// When the device last came back from a reset (its register map published again): what a
    /// benchmark measures a driver's recovery from. `None` before the first reset.
    pub fn last_power_on(&self) -> Option<Instant> {
        *self.shared.powered_on.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn request<T>(&self, make: impl FnOnce(mpsc::Sender<T>) -> Ctl) -> Result<T, EmuError> {
        let (tx, rx) = mpsc::channel();
        self.ctl.send(make(tx)).map_err(|_| EmuError::Stopped)?;
        self.shared.ctl_pending.fetch_add(1, Ordering::Release);
        if let Some(t) = &self.thread {
            t.thread().unpark();
        }
        rx.recv().map_err(|_| EmuError::Stopped)
    }

    /// Maps memory for device DMA (all mappings or none).
    pub fn map(&self, maps: Vec<Mapping>) -> Result<(), EmuError> {
        Ok(self.request(|tx| Ctl::Map(maps, tx))??)
    }

    /// Unmaps the mapping that starts at `iova`.
    pub fn unmap(&self, iova: u64) -> Result<(), EmuError> {
        Ok(self.request(|tx| Ctl::Unmap(iova, tx))??)
    }

    /// Commits a fault (returns once the device thread has taken it).
    pub fn inject(&self, fault: Fault) -> Result<(), EmuError> {
        self.request(|tx| Ctl::Inject(fault, tx))
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        let _ = self.ctl.send(Ctl::Stop);
        self.shared.ctl_pending.fetch_add(1, Ordering::Release);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

/// Why the device is not serving.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Down {
    /// Serving.
    Up,
    /// Reset requested: HWC silent until then, then power-on state.
    ResetRequested(Instant),
    /// Fatal: BAR0 all ones until then, then power-on state.
    Fatal(Instant),
    /// Hot-removed until re-added.
    Removed,
}

/// Fault settings in force.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    pub(crate) hwc_delay: Option<Duration>,
    pub(crate) fail_cmd: Option<u32>,
    pub(crate) hostile_per_million: u32,
    pub(crate) rng: u64,
}

impl Faults {
    /// A pseudo-random number (xorshift), for the hostile mode.
    pub(crate) fn next_random(&mut self) -> u64 {
        let mut x = self.rng | 1;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }
}

/// The device thread's state.
pub(crate) struct Core {
    pub(crate) shared: Arc<Shared>,
    pub(crate) space: IovaSpace,
    pub(crate) obj: Objects,
    pub(crate) hwc: Option<Hwc>,
    pub(crate) wire: Wire,
    pub(crate) faults: Faults,
    pub(crate) down: Down,
    /// Resets so far (varies keys and handles between incarnations).
    pub(crate) epoch: u32,
    /// The last work was the control channel's (or a reset), not the data path's: idle
    /// spinning yields now and then (`DeviceConfig::spin_yield_every`).
    polite: bool,
    macs: Vec<[u8; 6]>,
    /// Device-private frame buffer (TX gather).
    pub(crate) frame: Box<[u8]>,
    /// Device-private buffer for frames read from external ports.
    pub(crate) rx_scratch: Box<[u8]>,
}

impl Core {
    fn new(shared: Arc<Shared>, wire: Wire, macs: Vec<[u8; 6]>) -> Self {
        Core {
            obj: Objects::new(&macs, 0),
            shared,
            space: IovaSpace::default(),
            hwc: None,
            wire,
            faults: Faults { rng: 0x9e37_79b9_7f4a_7c15, ..Default::default() },
            down: Down::Up,
            epoch: 0,
            polite: false,
            macs,
            frame: vec![0u8; MAX_FRAME].into_boxed_slice(),
            rx_scratch: vec![0u8; MAX_FRAME].into_boxed_slice(),
        }
    }

    fn run(mut self, rx: mpsc::Receiver<Ctl>) {
        let mut idle: u32 = 0;
        loop {
            if self.shared.ctl_pending.load(Ordering::Acquire) != 0 {
                while let Ok(msg) = rx.try_recv() {
                    self.shared.ctl_pending.fetch_sub(1, Ordering::AcqRel);
                    if !self.control(msg) {
                        return;
                    }
                }
            }
            let shared = self.shared.clone();
            let stats = &shared.stats.device;
            stats.loops.inc();
            let t0 = pmd_mempool::tsc::rdtsc();
            if self.pass() {
                stats.busy_loops.inc();
                stats.busy_cycles.add(pmd_mempool::tsc::rdtsc().wrapping_sub(t0));
                idle = 0;
            } else {
                idle = idle.saturating_add(1);
                self.idle(idle);
            }
        }
    }

    /// Backs off while there is nothing to do: spin (yielding now and then while it serves the
    /// control channel), then yield, then nap (doubling up to the configured maximum). A
    /// control request unparks the thread.
    fn idle(&self, idle: u32) {
        let spin = self.shared.cfg.spin_passes;
        let every = self.shared.cfg.spin_yield_every;
        if idle < spin {
            if self.polite && every != 0 && idle % every == 0 {
                std::thread::yield_now();
            } else {
                core::hint::spin_loop();
            }
        } else if idle < spin + 64 {
            std::thread::yield_now();
        } else {
            let naps = (idle - spin - 64).min(10);
            let nap = Duration::from_micros(10u64 << naps).min(self.shared.cfg.max_nap);
            std::thread::park_timeout(nap);
        }
    }

    /// Handles a control request; false to stop.
    fn control(&mut self, msg: Ctl) -> bool {
        match msg {
            Ctl::Map(maps, reply) => {
                let mut added = Vec::new();
                let mut result = Ok(());
                for m in maps {
                    let iova = m.iova();
                    match self.space.insert(m) {
                        Ok(()) => {
                            self.shared.stats.device.dma_maps.inc();
                            added.push(iova);
                        }
                        Err(e) => {
                            result = Err(e);
                            break;
                        }
                    }
                }
                if result.is_err() {
                    for iova in added {
                        if self.space.remove(iova).is_ok() {
                            self.shared.stats.device.dma_unmaps.inc();
                        }
                    }
                }
                let _ = reply.send(result);
            }
            Ctl::Unmap(iova, reply) => {
                let r = self.space.remove(iova).map(drop);
                if r.is_ok() {
                    self.shared.stats.device.dma_unmaps.inc();
                }
                let _ = reply.send(r);
            }
            Ctl::Inject(fault, reply) => {
                self.inject(fault);
                let _ = reply.send(());
            }
            Ctl::Stop => return false,
        }
        true
    }

    /// Applies a fault.
    fn inject(&mut self, fault: Fault) {
        let now = Instant::now();
        match fault {
            Fault::ResetRequest => {
                if self.down == Down::Up {
                    crate::hwc::request_reset(self, 0);
                }
            }
            Fault::Fatal { down } => {
                self.shared.bar.poison();
                self.down = Down::Fatal(now + down.unwrap_or(self.shared.cfg.fatal_down_time));
            }
            Fault::Remove => {
                self.shared.bar.poison();
                self.shared.present.store(false, Ordering::Release);
                self.down = Down::Removed;
            }
            Fault::Readd => {
                if self.down == Down::Removed {
                    self.power_on();
                    self.shared.present.store(true, Ordering::Release);
                }
            }
            Fault::SqError { sq } => {
                if let Some(q) = self.obj.sqs.get_mut(sq) {
                    q.inject_error = true;
                    if !self.obj.tx_ready.contains(&sq) {
                        self.obj.tx_ready.push(sq);
                    }
                }
            }
            Fault::HwcDelay(d) => self.faults.hwc_delay = Some(d),
            Fault::FailCmd(t) => self.faults.fail_cmd = Some(t),
            Fault::Hostile { per_million } => self.faults.hostile_per_million = per_million,
            Fault::Clear => {
                self.faults.hwc_delay = None;
                self.faults.fail_cmd = None;
                self.faults.hostile_per_million = 0;
            }
        }
    }

    /// Back to the power-on state: every object, queue, key and pending doorbell forgotten.
    /// DMA mappings are kept: they describe the driver's memory, not device state.
    pub(crate) fn power_on(&mut self) {
        self.epoch = self.epoch.wrapping_add(1);
        self.obj = Objects::new(&self.macs, self.epoch);
        self.hwc = None;
        let at = self.shared.bar.restore();
        *self.shared.powered_on.lock().unwrap_or_else(|e| e.into_inner()) = Some(at);
        self.down = Down::Up;
        self.shared.stats.device.resets.inc();
    }

    /// One pass over everything; true if any work was done.
    fn pass(&mut self) -> bool {
        match self.down {
            Down::Up => {}
            Down::ResetRequested(until) | Down::Fatal(until) => {
                if Instant::now() >= until {
                    self.power_on();
                    self.polite = true;
                    return true;
                }
                return false;
            }
            Down::Removed => return false,
        }
        let mut control = crate::hwc::poll_smc(self);
        let doorbells = self.poll_doorbells();
        control |= crate::hwc::service(self);
        let mut data = crate::tx::process(self);
        data |= crate::rx::from_wire(self);
        data |= crate::rx::flush_coalesced(self);
        if data {
            self.polite = false;
        } else if control {
            self.polite = true;
        }
        control || doorbells || data
    }

    /// Takes every pending doorbell of every page in use and dispatches it.
    fn poll_doorbells(&mut self) -> bool {
        let mut work = false;
        for i in 0..self.obj.active_pages.len() {
            let Some(&page) = self.obj.active_pages.get(i) else { break };
            for slot in DB_SLOTS {
                if let Some(v) = self.shared.bar.take_doorbell(page, slot) {
                    self.shared.stats.device.doorbells.inc();
                    crate::doorbell::dispatch(self, slot, v);
                    work = true;
                }
            }
        }
        work
    }
}
