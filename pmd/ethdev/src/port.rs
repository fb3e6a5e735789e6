//! A port: what applications call. The generic checks (state, ranges against [`DevInfo`]) are
//! made here, the rest is the driver's ([`PortDriver`]).
//!
//! Control operations take `&self` and may come from any thread. The port's bookkeeping is under
//! a mutex held only for a few field updates, never across a driver call: an operation marks the
//! port busy, calls the driver with no lock held, then records the outcome. A second control
//! operation while one is under way gets [`EthError::Busy`].

use std::sync::{Arc, Mutex, MutexGuard};

use pmd_mempool::MbufPool;

use crate::conf::{DevInfo, Link, PortConf, RssConf, rx_offload};
use crate::error::{EthError, EthResult};
use crate::event::{Callback, CallbackId, EventType, Events};
use crate::queue::{Dispatch, RxQueue, RxSlot, TxQueue, TxSlot};
use crate::stats::{PortStats, XStat};

/// What the port API gives a driver when it becomes a port.
#[derive(Debug, Clone)]
pub struct PortContext {
    /// The port id (mbufs received get it in their `port` field).
    pub port: u16,
    /// The port's burst dispatch (recovery swaps it to the "removed" functions).
    pub dispatch: Arc<Dispatch>,
    /// The port's events (recovery raises them).
    pub events: Arc<Events>,
}

/// A driver's port. Every method takes `&self`: the driver serialises its own control work
/// (a mutex held inside one method, or its control worker) and must not hold a lock across a
/// wait, a callback or a device command.
///
/// Queue state lives in [`crate::gate::QueueSlot`]s the driver creates and keeps; the port API
/// hands their poller side to queue handles. `stop` must close every gate (waiting for the
/// pollers) before it touches queue state, and `start` open them when the queues are ready.
pub trait PortDriver: Send + Sync + 'static {
    /// Called once, before anything else.
    fn bind(&self, ctx: PortContext);
    /// Capabilities and limits.
    fn info(&self) -> DevInfo;
    /// MAC address.
    fn mac(&self) -> [u8; 6];
    /// Link state.
    fn link(&self) -> Link;
    /// Applies a configuration (checked against `info()` already). Queues set up before are
    /// released.
    fn configure(&self, nb_rxq: u16, nb_txq: u16, conf: &PortConf) -> EthResult<()>;
    /// Sets up RX queue `q` with `nb_desc` descriptors filled from `pool`.
    fn rx_queue_setup(&self, q: u16, nb_desc: u16, pool: &MbufPool) -> EthResult<Arc<dyn RxSlot>>;
    /// Sets up TX queue `q` with `nb_desc` descriptors.
    fn tx_queue_setup(&self, q: u16, nb_desc: u16) -> EthResult<Arc<dyn TxSlot>>;
    /// Starts the port (all queues are set up).
    fn start(&self) -> EthResult<()>;
    /// Stops the port: every gate closed, posted RX buffers and unsent TX packets freed.
    fn stop(&self) -> EthResult<()>;
    /// Releases everything (after `stop`).
    fn close(&self) -> EthResult<()>;
    /// Cumulative basic counters.
    fn stats(&self) -> EthResult<PortStats>;
    /// Cumulative named counters (device counters included).
    fn xstats(&self) -> EthResult<Vec<XStat>>;
    /// Replaces the RSS redirection table (queue indices, `info().reta_size` entries).
    fn reta_update(&self, _reta: &[u16]) -> EthResult<()> {
        Err(EthError::Unsupported { port: 0, op: "reta_update", driver: self.info().driver })
    }
    /// The RSS redirection table.
    fn reta_query(&self) -> EthResult<Vec<u16>> {
        Err(EthError::Unsupported { port: 0, op: "reta_query", driver: self.info().driver })
    }
    /// Changes the RSS key and/or hash types.
    fn rss_hash_update(&self, _rss: &RssConf) -> EthResult<()> {
        Err(EthError::Unsupported { port: 0, op: "rss_hash_update", driver: self.info().driver })
    }
    /// The RSS key and hash types in force.
    fn rss_hash_conf(&self) -> EthResult<RssConf> {
        Err(EthError::Unsupported { port: 0, op: "rss_hash_conf_get", driver: self.info().driver })
    }
    /// Changes the MTU.
    fn mtu_set(&self, _mtu: u16) -> EthResult<()> {
        Err(EthError::Unsupported { port: 0, op: "mtu_set", driver: self.info().driver })
    }
    /// Makes `pool`'s memory reachable by the device, for sending its mbufs. Drivers whose
    /// device does no DMA have nothing to do.
    fn register_pool(&self, _pool: &MbufPool) -> EthResult<()> {
        Ok(())
    }
}

/// Where a port is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortPhase {
    /// Probed, not configured.
    Unconfigured,
    /// Configured (queues may be set up), stopped.
    Stopped,
    /// Started: bursts move packets.
    Started,
    /// Closed: nothing more.
    Closed,
}

impl PortPhase {
    fn name(self) -> &'static str {
        match self {
            PortPhase::Unconfigured => "not configured",
            PortPhase::Stopped => "stopped",
            PortPhase::Started => "started",
            PortPhase::Closed => "closed",
        }
    }
}

#[derive(Default)]
struct Book {
    busy: Option<&'static str>,
    nb_rxq: u16,
    nb_txq: u16,
    conf: PortConf,
    rxq: Vec<Option<Arc<dyn RxSlot>>>,
    txq: Vec<Option<Arc<dyn TxSlot>>>,
    stats_base: PortStats,
    xstats_base: Vec<XStat>,
}

struct Inner {
    id: u16,
    info: DevInfo,
    driver: Box<dyn PortDriver>,
    dispatch: Arc<Dispatch>,
    events: Arc<Events>,
    phase: Mutex<PortPhase>,
    book: Mutex<Book>,
}

/// A port. Cheap to clone (all clones are the same port); `Send + Sync`.
#[derive(Clone)]
pub struct Port {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Port {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Port({}, {}, {})", self.inner.id, self.inner.info.driver, self.phase().name())
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section here is a few field assignments that cannot leave the data
    // inconsistent, so a poisoned lock still holds good data.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Port {
    /// Wraps a driver's port as port `id`.
    pub fn new(id: u16, driver: Box<dyn PortDriver>) -> Self {
        let dispatch = Arc::new(Dispatch::new());
        let events = Arc::new(Events::new(id));
        driver.bind(PortContext { port: id, dispatch: dispatch.clone(), events: events.clone() });
        let info = driver.info();
        Port {
            inner: Arc::new(Inner {
                id,
                info,
                driver,
                dispatch,
                events,
                phase: Mutex::new(PortPhase::Unconfigured),
                book: Mutex::new(Book::default()),
            }),
        }
    }

    /// Port id.
    pub fn id(&self) -> u16 {
        self.inner.id
    }

    /// Capabilities and limits.
    pub fn info(&self) -> &DevInfo {
        &self.inner.info
    }

    /// Where the port is in its life.
    pub fn phase(&self) -> PortPhase {
        *lock(&self.inner.phase)
    }

    /// MAC address.
    pub fn mac(&self) -> [u8; 6] {
        self.inner.driver.mac()
    }

    /// Link state.
    pub fn link(&self) -> Link {
        self.inner.driver.link()
    }

    /// The configuration in force.
    pub fn conf(&self) -> PortConf {
        lock(&self.inner.book).conf.clone()
    }

    /// Number of RX and TX queues configured.
    pub fn nb_queues(&self) -> (u16, u16) {
        let b = lock(&self.inner.book);
        (b.nb_rxq, b.nb_txq)
    }

    /// Runs a control operation: checks the phase, marks the port busy, calls `f` with no lock
    /// held, and clears the mark.
    fn op<R>(
        &self,
        name: &'static str,
        allowed: &[PortPhase],
        f: impl FnOnce() -> EthResult<R>,
    ) -> EthResult<R> {
        {
            self.expect_phase(name, allowed)?;
            let mut b = lock(&self.inner.book);
            if let Some(other) = b.busy {
                return Err(EthError::Busy {
                    port: self.id(),
                    why: format!("{other} is under way"),
                });
            }
            b.busy = Some(name);
        }
        let r = f().map_err(|e| e.with_port(self.id()));
        lock(&self.inner.book).busy = None;
        r
    }

    /// [`EthError::BadState`] unless the port is in one of `allowed`. Operations whose argument
    /// checks depend on the configuration call it before them (and [`op`](Self::op) again), so a
    /// port in the wrong phase says so rather than naming an argument.
    fn expect_phase(&self, name: &'static str, allowed: &[PortPhase]) -> EthResult<()> {
        let phase = *lock(&self.inner.phase);
        if !allowed.contains(&phase) {
            return Err(EthError::BadState { port: self.id(), op: name, state: phase.name() });
        }
        Ok(())
    }

    fn set_phase(&self, p: PortPhase) {
        *lock(&self.inner.phase) = p;
    }

    fn check_conf(&self, nb_rxq: u16, nb_txq: u16, conf: &PortConf) -> EthResult<()> {
        let i = &self.inner.info;
        let id = self.id();
        if nb_rxq == 0 && nb_txq == 0 {
            return Err(EthError::bad_arg(id, "queues", "at least one RX or TX queue"));
        }
        if nb_rxq > i.max_rx_queues {
            return Err(EthError::bad_arg(
                id,
                "nb_rxq",
                format!("{nb_rxq} RX queues, at most {}", i.max_rx_queues),
            ));
        }
        if nb_txq > i.max_tx_queues {
            return Err(EthError::bad_arg(
                id,
                "nb_txq",
                format!("{nb_txq} TX queues, at most {}", i.max_tx_queues),
            ));
        }
        let bad_rx = conf.rx_offloads & !i.rx_offload_capa;
        if bad_rx != 0 {
            return Err(EthError::bad_arg(
                id,
                "rx_offloads",
                format!("{bad_rx:#x} not supported (capable of {:#x})", i.rx_offload_capa),
            ));
        }
        let bad_tx = conf.tx_offloads & !i.tx_offload_capa;
        if bad_tx != 0 {
            return Err(EthError::bad_arg(
                id,
                "tx_offloads",
                format!("{bad_tx:#x} not supported (capable of {:#x})", i.tx_offload_capa),
            ));
        }
        if let Some(rss) = &conf.rss {
            self.check_rss(rss)?;
        }
        if let Some(mtu) = conf.mtu {
            self.check_mtu(mtu)?;
        }
        Ok(())
    }

    fn check_rss(&self, rss: &RssConf) -> EthResult<()> {
        let i = &self.inner.info;
        let bad = rss.hf & !i.flow_type_rss_offloads;
        if bad != 0 {
            return Err(EthError::bad_arg(
                self.id(),
                "rss_hf",
                format!("{bad:#x} not supported (capable of {:#x})", i.flow_type_rss_offloads),
            ));
        }
        if let Some(k) = &rss.key {
            if k.len() != i.hash_key_size as usize {
                return Err(EthError::bad_arg(
                    self.id(),
                    "rss_key",
                    format!("{} bytes, the key is {} bytes", k.len(), i.hash_key_size),
                ));
            }
        }
        if rss.hf != 0 && i.reta_size == 0 {
            return Err(EthError::bad_arg(self.id(), "rss", "the port has no RSS"));
        }
        Ok(())
    }

    fn check_mtu(&self, mtu: u16) -> EthResult<()> {
        let i = &self.inner.info;
        if mtu < i.min_mtu || mtu > i.max_mtu {
            return Err(EthError::bad_arg(
                self.id(),
                "mtu",
                format!("{mtu}, allowed {}..={}", i.min_mtu, i.max_mtu),
            ));
        }
        Ok(())
    }

    /// Configures `nb_rxq` RX and `nb_txq` TX queues (`rte_eth_dev_configure`). The port must be
    /// stopped; queues set up before are released (their handles stop working), and the counters
    /// ([`stats`](Self::stats), [`xstats`](Self::xstats)) start again from zero.
    pub fn configure(&self, nb_rxq: u16, nb_txq: u16, conf: &PortConf) -> EthResult<()> {
        self.check_conf(nb_rxq, nb_txq, conf)?;
        self.op("configure", &[PortPhase::Unconfigured, PortPhase::Stopped], || {
            self.inner.driver.configure(nb_rxq, nb_txq, conf)
        })?;
        // Drivers may start their counters again with the new queues: a baseline taken before
        // would then exceed them, and every count would wrap. Take new baselines.
        let stats_base = self.inner.driver.stats().unwrap_or_default();
        let xstats_base = self.inner.driver.xstats().unwrap_or_default();
        {
            let mut b = lock(&self.inner.book);
            b.stats_base = stats_base;
            b.xstats_base = xstats_base;
            b.nb_rxq = nb_rxq;
            b.nb_txq = nb_txq;
            b.conf = conf.clone();
            b.rxq = (0..nb_rxq).map(|_| None).collect();
            b.txq = (0..nb_txq).map(|_| None).collect();
        }
        self.set_phase(PortPhase::Stopped);
        Ok(())
    }

    /// Sets up RX queue `q` (`rte_eth_rx_queue_setup`): `nb_desc` receive descriptors, buffers
    /// from `pool`. The port must be configured and stopped.
    pub fn rx_queue_setup(&self, q: u16, nb_desc: u16, pool: &MbufPool) -> EthResult<()> {
        self.expect_phase("rx_queue_setup", &[PortPhase::Stopped])?;
        let i = &self.inner.info;
        let (nb_rxq, mtu) = {
            let b = lock(&self.inner.book);
            (b.nb_rxq, b.conf.mtu.unwrap_or(1500))
        };
        if q >= nb_rxq {
            return Err(EthError::bad_arg(
                self.id(),
                "rx queue",
                format!("queue {q}, {nb_rxq} configured"),
            ));
        }
        if !i.rx_desc_lim.accepts(nb_desc) {
            return Err(EthError::bad_arg(
                self.id(),
                "nb_rx_desc",
                format!("{nb_desc}, allowed {}", i.rx_desc_lim),
            ));
        }
        // Without scatter, one buffer must hold the largest frame the MTU allows (Ethernet
        // header and one VLAN tag included).
        let frame = (mtu as u32 + 18).min(i.max_rx_pktlen);
        let scatter = lock(&self.inner.book).conf.rx_offloads & rx_offload::SCATTER != 0;
        if !scatter && (pool.data_room() as u32) < frame {
            return Err(EthError::bad_arg(
                self.id(),
                "mempool",
                format!(
                    "data room {} bytes cannot hold a {frame}-byte frame (MTU {mtu}) without \
                     scatter",
                    pool.data_room()
                ),
            ));
        }
        let slot = self.op("rx_queue_setup", &[PortPhase::Stopped], || {
            self.inner.driver.rx_queue_setup(q, nb_desc, pool)
        })?;
        lock(&self.inner.book).rxq[q as usize] = Some(slot);
        Ok(())
    }

    /// Sets up TX queue `q` (`rte_eth_tx_queue_setup`) with `nb_desc` descriptors.
    pub fn tx_queue_setup(&self, q: u16, nb_desc: u16) -> EthResult<()> {
        self.expect_phase("tx_queue_setup", &[PortPhase::Stopped])?;
        let i = &self.inner.info;
        let nb_txq = lock(&self.inner.book).nb_txq;
        if q >= nb_txq {
            return Err(EthError::bad_arg(
                self.id(),
                "tx queue",
                format!("queue {q}, {nb_txq} configured"),
            ));
        }
        if !i.tx_desc_lim.accepts(nb_desc) {
            return Err(EthError::bad_arg(
                self.id(),
                "nb_tx_desc",
                format!("{nb_desc}, allowed {}", i.tx_desc_lim),
            ));
        }
        let slot = self.op("tx_queue_setup", &[PortPhase::Stopped], || {
            self.inner.driver.tx_queue_setup(q, nb_desc)
        })?;
        lock(&self.inner.book).txq[q as usize] = Some(slot);
        Ok(())
    }

    /// Starts the port (`rte_eth_dev_start`). Every configured queue must be set up.
    pub fn start(&self) -> EthResult<()> {
        {
            let b = lock(&self.inner.book);
            if let Some(q) = b.rxq.iter().position(|s| s.is_none()) {
                return Err(EthError::bad_arg(
                    self.id(),
                    "start",
                    format!("RX queue {q} not set up"),
                ));
            }
            if let Some(q) = b.txq.iter().position(|s| s.is_none()) {
                return Err(EthError::bad_arg(
                    self.id(),
                    "start",
                    format!("TX queue {q} not set up"),
                ));
            }
        }
        self.op("start", &[PortPhase::Stopped], || self.inner.driver.start())?;
        self.set_phase(PortPhase::Started);
        Ok(())
    }

    /// Stops the port (`rte_eth_dev_stop`): bursts return 0 from now on, received and unsent
    /// packets go back to their pools. Stopping a stopped port does nothing.
    pub fn stop(&self) -> EthResult<()> {
        if self.phase() == PortPhase::Stopped {
            return Ok(());
        }
        self.op("stop", &[PortPhase::Started], || self.inner.driver.stop())?;
        self.set_phase(PortPhase::Stopped);
        Ok(())
    }

    /// Closes the port (`rte_eth_dev_close`), stopping it first. Closing twice does nothing.
    pub fn close(&self) -> EthResult<()> {
        match self.phase() {
            PortPhase::Closed => return Ok(()),
            PortPhase::Started => self.stop()?,
            _ => {}
        }
        self.op("close", &[PortPhase::Unconfigured, PortPhase::Stopped], || {
            self.inner.driver.close()
        })?;
        {
            let mut b = lock(&self.inner.book);
            b.rxq.clear();
            b.txq.clear();
        }
        self.inner.dispatch.set_removed();
        self.set_phase(PortPhase::Closed);
        Ok(())
    }

    /// The poller handle of RX queue `q` (one per queue; dropping it lets it be taken again).
    pub fn rx_queue(&self, q: u16) -> EthResult<RxQueue> {
        let slot = lock(&self.inner.book).rxq.get(q as usize).cloned().flatten();
        let slot = slot.ok_or_else(|| {
            EthError::bad_arg(self.id(), "rx queue", format!("queue {q} is not set up"))
        })?;
        RxQueue::take(slot, self.inner.dispatch.clone(), self.id(), q).ok_or(EthError::QueueTaken {
            port: self.id(),
            kind: "rx",
            queue: q,
        })
    }

    /// The poller handle of TX queue `q`.
    pub fn tx_queue(&self, q: u16) -> EthResult<TxQueue> {
        let slot = lock(&self.inner.book).txq.get(q as usize).cloned().flatten();
        let slot = slot.ok_or_else(|| {
            EthError::bad_arg(self.id(), "tx queue", format!("queue {q} is not set up"))
        })?;
        TxQueue::take(slot, self.inner.dispatch.clone(), self.id(), q).ok_or(EthError::QueueTaken {
            port: self.id(),
            kind: "tx",
            queue: q,
        })
    }

    /// Basic counters since the last reset (`rte_eth_stats_get`).
    pub fn stats(&self) -> EthResult<PortStats> {
        let now = self.inner.driver.stats().map_err(|e| e.with_port(self.id()))?;
        Ok(now.since(&lock(&self.inner.book).stats_base))
    }

    /// Resets the basic counters (`rte_eth_stats_reset`).
    pub fn stats_reset(&self) -> EthResult<()> {
        let now = self.inner.driver.stats().map_err(|e| e.with_port(self.id()))?;
        lock(&self.inner.book).stats_base = now;
        Ok(())
    }

    /// Named counters since the last reset (`rte_eth_xstats_get` with names).
    pub fn xstats(&self) -> EthResult<Vec<XStat>> {
        let now = self.inner.driver.xstats().map_err(|e| e.with_port(self.id()))?;
        let b = lock(&self.inner.book);
        Ok(now
            .into_iter()
            .map(|x| {
                let base = b.xstats_base.iter().find(|y| y.name == x.name).map_or(0, |y| y.value);
                XStat { value: x.value.wrapping_sub(base), name: x.name }
            })
            .collect())
    }

    /// Resets the named counters.
    pub fn xstats_reset(&self) -> EthResult<()> {
        let now = self.inner.driver.xstats().map_err(|e| e.with_port(self.id()))?;
        lock(&self.inner.book).xstats_base = now;
        Ok(())
    }

    /// Replaces the RSS redirection table (`rte_eth_dev_rss_reta_update`): `reta_size` queue
    /// indices, each below the number of RX queues.
    pub fn reta_update(&self, reta: &[u16]) -> EthResult<()> {
        self.expect_phase("reta_update", &[PortPhase::Stopped, PortPhase::Started])?;
        let size = self.inner.info.reta_size as usize;
        let nb_rxq = lock(&self.inner.book).nb_rxq;
        if size == 0 || reta.len() != size {
            return Err(EthError::bad_arg(
                self.id(),
                "reta",
                format!("{} entries, the table has {size}", reta.len()),
            ));
        }
        if let Some((i, q)) = reta.iter().enumerate().find(|(_, q)| **q >= nb_rxq) {
            return Err(EthError::bad_arg(
                self.id(),
                "reta",
                format!("entry {i} names queue {q}, {nb_rxq} RX queues configured"),
            ));
        }
        self.op("reta_update", &[PortPhase::Stopped, PortPhase::Started], || {
            self.inner.driver.reta_update(reta)
        })
    }

    /// The RSS redirection table.
    pub fn reta_query(&self) -> EthResult<Vec<u16>> {
        self.inner.driver.reta_query().map_err(|e| e.with_port(self.id()))
    }

    /// Changes the RSS key and/or hash types (`rte_eth_dev_rss_hash_update`).
    pub fn rss_hash_update(&self, rss: &RssConf) -> EthResult<()> {
        self.check_rss(rss)?;
        self.op("rss_hash_update", &[PortPhase::Stopped, PortPhase::Started], || {
            self.inner.driver.rss_hash_update(rss)
        })?;
        let mut b = lock(&self.inner.book);
        let key = rss.key.clone().or_else(|| b.conf.rss.as_ref().and_then(|r| r.key.clone()));
        b.conf.rss = Some(RssConf { key, hf: rss.hf });
        Ok(())
    }

    /// The RSS key and hash types in force (`rte_eth_dev_rss_hash_conf_get`).
    pub fn rss_hash_conf(&self) -> EthResult<RssConf> {
        self.inner.driver.rss_hash_conf().map_err(|e| e.with_port(self.id()))
    }

    /// Changes the MTU (`rte_eth_dev_set_mtu`).
    pub fn mtu_set(&self, mtu: u16) -> EthResult<()> {
        self.check_mtu(mtu)?;
        self.op(
            "mtu_set",
            &[PortPhase::Unconfigured, PortPhase::Stopped, PortPhase::Started],
            || self.inner.driver.mtu_set(mtu),
        )?;
        lock(&self.inner.book).conf.mtu = Some(mtu);
        Ok(())
    }

    /// Makes `pool`'s memory reachable by the device for sending mbufs of it (DPDK's mana
    /// registers memory for TX on first use; here the application says which pools it sends
    /// from). The pools of RX queues need not be registered: their queues do it. A packet whose
    /// data the device cannot reach ends a TX burst and is counted (`tx_qN_unreachable`) rather
    /// than sent. Registrations last until the port's device is closed.
    pub fn register_pool(&self, pool: &MbufPool) -> EthResult<()> {
        self.op(
            "register_pool",
            &[PortPhase::Unconfigured, PortPhase::Stopped, PortPhase::Started],
            || self.inner.driver.register_pool(pool),
        )
    }

    /// Registers a callback for events of `kind` (every kind if `None`). Callbacks run with no
    /// lock held and may call any port operation.
    pub fn on_event(&self, kind: Option<EventType>, cb: Callback) -> CallbackId {
        self.inner.events.register(kind, cb)
    }

    /// Unregisters a callback.
    pub fn off_event(&self, id: CallbackId) -> bool {
        self.inner.events.unregister(id)
    }

    /// The port's events (to raise one from outside the driver, e.g. in tests).
    pub fn events(&self) -> &Arc<Events> {
        &self.inner.events
    }

    /// The port's burst dispatch.
    pub fn dispatch(&self) -> &Arc<Dispatch> {
        &self.inner.dispatch
    }
}
