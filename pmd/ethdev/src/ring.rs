//! The `ring` port (like DPDK's net_ring): ports cabled to each other, or to themselves, through
//! in-process lock-free rings. No device, no copy: an mbuf sent is the mbuf received.
//!
//! Probe: `ring:NAME[,queues=N][,size=N]` (queues: most RX and TX queues per port, 1..=64, default
//! 4; size: packets each ring holds, 1..=65536, default 1024).
//!
//! # Semantics
//! - Every port probed with the same NAME in the process shares one *ring set*; the factory keeps
//!   a registry of them by NAME. A set has two places: the first port probed with NAME takes place
//!   0, the second place 1; a third probe while both are held fails. A port gives its place up
//!   when it is closed or dropped, and a later probe may take it; the set itself goes when nothing
//!   uses it, and a probe after that makes a new one. `queues` and `size` are fixed by the probe
//!   that makes the set; a later probe may repeat them but not change them.
//! - Each place has one receive ring per RX queue index (`queues` of them). A port's peer is the
//!   port in the other place if there is one, else the port itself:
//!   - **two ports (cabled)**: what port A sends on TX queue `q` arrives at port B's RX queue
//!     `q % nb_rxq(B)`, and what B sends on its TX queue `q` arrives at A's RX queue
//!     `q % nb_rxq(A)`;
//!   - **one port (loopback)**: what it sends on TX queue `q` arrives at its own RX queue
//!     `q % nb_rxq`.
//!
//!   The peer and its RX queue count are read at every TX burst, so a port probed later is cabled
//!   from the next burst on, and a closed peer leaves its partner looped back.
//! - A port receives only while it is started: a TX burst towards a peer that is not started (not
//!   configured, stopped, closed, or without RX queues) takes the packets and frees them, counted
//!   as TX errors (`oerrors`), as a cable into a dead port loses frames. Packets that are in a
//!   port's rings when it stops, starts or closes (sent just before it stopped, not received yet)
//!   are freed and counted as missed (`imissed`). Nothing is lost otherwise.
//! - A full ring takes the prefix of the burst that fits; the rest stays with the caller (TX never
//!   skips a packet). Per-ring order is kept, so one TX queue's packets arrive in order.
//! - RX sets the mbuf's `port` field. No offload is done; there is no RSS (the RX queue is chosen
//!   by the TX queue index, as above).
//! - No mbuf is leaked: stop and close free what the port's rings hold, and what is sent to a
//!   port after it stopped is freed at its next start or close, or when the set goes.
//!
//! # Mechanism
//! The receive rings are [`pmd_ring`] rings of mbuf header addresses, multi-producer (every TX
//! queue of both ports may feed one ring: `q` and `q + nb_rxq` of the sender, and during a change
//! of peer the ports of both places) and single-consumer. The consumer end of a ring is held by
//! the RX queue that reads it, in the queue's gated state, while the port is started, and by the
//! set while it is stopped; so it is used by one thread at a time, the queue's poller or the
//! controller that closed the gate, and it moves between them through the gate (G2/G3 of
//! [`crate::gate`]) or the set's mutex.
#![allow(unsafe_code)]

use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};

use pmd_mempool::{Mbuf, MbufPool, mbuf::MbufHdr};
use pmd_ring::{MpProducer, RingBuilder, ScConsumer};

use crate::conf::{DescLim, DevInfo, ErrHandleMode, Link, PortConf, tx_offload};
use crate::error::{EthError, EthResult};
use crate::gate::QueueSlot;
use crate::pkts::{MAX_PKT_BURST, Pkts};
use crate::port::{PortContext, PortDriver};
use crate::probe::{DriverFactory, ProbeArgs};
use crate::queue::{RxBurst, RxSlot, TxBurst, TxSlot};
use crate::stats::{PortStats, RxQueueStats, TxQueueStats, XStat};

/// Default and largest number of queues per port.
const DEFAULT_QUEUES: u16 = 4;
const MAX_QUEUES: u16 = 64;
/// Default and largest ring size (packets).
const DEFAULT_SIZE: u32 = 1024;
const MAX_SIZE: u32 = 65536;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section here is a few assignments or a drain that frees what it took, so
    // a poisoned lock still holds consistent data.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

// ---------------------------------------------------------------------------------------------
// Mbufs through a ring of addresses.

/// The producer end of a receive ring: only [`send`](Self::send) puts anything in it, and what it
/// puts is an mbuf whose ownership it gives up.
struct MbufProducer(MpProducer<usize>);

/// The consumer end of a receive ring: every address it takes out is an mbuf it now owns.
struct MbufConsumer(ScConsumer<usize>);

/// A receive ring of `size` packets.
fn mbuf_ring(size: u32) -> Result<(MbufProducer, MbufConsumer), pmd_ring::RingError> {
    let (p, c) = RingBuilder::new(size).exact_size(true).build()?;
    Ok((MbufProducer(p), MbufConsumer(c)))
}

impl MbufProducer {
    /// Enqueues the longest prefix of `pkts` that fits; returns (packets, bytes) taken. `addrs`
    /// and `cum` are scratch space of at least `pkts.len()` and `pkts.len() + 1` entries.
    #[inline]
    fn send(&self, pkts: &mut Pkts, addrs: &mut [usize], cum: &mut [u64]) -> (usize, u64) {
        let n = pkts.len().min(addrs.len()).min(cum.len().saturating_sub(1));
        let mut bytes = 0u64;
        for (i, m) in pkts.as_slice()[..n].iter().enumerate() {
            addrs[i] = m.as_raw().as_ptr().expose_provenance();
            cum[i] = bytes;
            bytes += u64::from(m.pkt_len());
        }
        cum[n] = bytes;
        // The lengths were read before the enqueue: once in the ring an mbuf may be received,
        // freed and reused at once.
        let k = self.0.enqueue_burst(&addrs[..n]);
        // The ring owns the first `k` now: give up ownership without touching them.
        for m in pkts.take_front(k) {
            let _ = m.into_raw();
        }
        (k, cum[k])
    }
}

impl MbufConsumer {
    /// Dequeues up to `addrs.len()` mbufs, calling `f` on each (in ring order); returns how many.
    #[inline]
    fn recv(&self, addrs: &mut [usize], mut f: impl FnMut(Mbuf)) -> usize {
        let n = self.0.dequeue_burst(addrs);
        for &a in &addrs[..n] {
            let Some(p) = NonNull::new(std::ptr::with_exposed_provenance_mut::<MbufHdr>(a)) else {
                continue; // never enqueued: `send` only enqueues header addresses
            };
            // SAFETY: every address in the ring was put there by `MbufProducer::send` (the only
            // way in: both ends are wrapped when the ring is made), from an mbuf whose ownership
            // it gave up right after the enqueue, without touching it again; the ring hands each
            // element to exactly one dequeue, and this consumer is its ring's only one. So the
            // mbuf is live and owned by nothing else.
            f(unsafe { Mbuf::from_raw(p) });
        }
        n
    }

    /// Frees everything in the ring; returns how many packets.
    fn drain(&self) -> u64 {
        let mut addrs = [0usize; 64];
        let mut total = 0u64;
        loop {
            let mut batch = arrayvec::ArrayVec::<Mbuf, 64>::new();
            let n = self.recv(&mut addrs, |m| {
                if let Err(e) = batch.try_push(m) {
                    drop(e.element());
                }
            });
            Mbuf::free_bulk(batch);
            total += n as u64;
            if n == 0 {
                return total;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The ring sets.

/// One place of a ring set: the receive rings of the port that holds it.
struct Place {
    /// Producer ends of the receive rings (one per RX queue index), shared by every sender.
    prod: Vec<MbufProducer>,
    /// Consumer ends the RX queues do not hold now (all of them while the port is stopped).
    cons: Mutex<Vec<Option<MbufConsumer>>>,
    /// RX queues receiving: the port's RX queue count while it is started, else 0.
    rx_live: AtomicU16,
    /// A port holds this place.
    taken: AtomicBool,
    /// Packets freed from this place's rings by stop, start or close (the holder's `imissed`).
    missed: AtomicU64,
}

/// The rings shared by the ports probed with one NAME.
struct RingSet {
    name: String,
    queues: u16,
    size: u32,
    places: [Place; 2],
}

impl RingSet {
    fn new(name: &str, queues: u16, size: u32) -> Result<Self, pmd_ring::RingError> {
        let place = || -> Result<Place, pmd_ring::RingError> {
            let mut prod = Vec::with_capacity(queues as usize);
            let mut cons = Vec::with_capacity(queues as usize);
            for _ in 0..queues {
                let (p, c) = mbuf_ring(size)?;
                prod.push(p);
                cons.push(Some(c));
            }
            Ok(Place {
                prod,
                cons: Mutex::new(cons),
                rx_live: AtomicU16::new(0),
                taken: AtomicBool::new(false),
                missed: AtomicU64::new(0),
            })
        };
        Ok(RingSet { name: name.to_owned(), queues, size, places: [place()?, place()?] })
    }

    fn place(&self, p: usize) -> &Place {
        &self.places[p & 1]
    }

    /// Where a port in place `p` sends: the other place if a port holds it, else `p`.
    #[inline(always)]
    fn peer(&self, p: usize) -> usize {
        let other = (p & 1) ^ 1;
        if self.places[other].taken.load(Ordering::Acquire) { other } else { p & 1 }
    }

    /// Frees what the rings of place `p` whose consumers the set holds contain; counts it missed.
    fn drain_place(&self, p: usize) -> u64 {
        let place = self.place(p);
        let n: u64 = lock(&place.cons).iter().flatten().map(MbufConsumer::drain).sum();
        place.missed.fetch_add(n, Ordering::Relaxed);
        n
    }
}

impl Drop for RingSet {
    fn drop(&mut self) {
        // The last user is gone (every RX queue gave its consumer back when it was dropped, and
        // the producers go with the set): free what is left.
        for p in 0..2 {
            self.drain_place(p);
        }
    }
}

/// The ring sets of the process, by NAME (dead entries are swept at each probe).
static SETS: Mutex<Vec<(String, Weak<RingSet>)>> = Mutex::new(Vec::new());

/// Probes `ring` ports.
#[derive(Debug, Default)]
pub struct RingFactory;

impl DriverFactory for RingFactory {
    fn name(&self) -> &'static str {
        "ring"
    }

    fn usage(&self) -> &'static str {
        "ring:NAME[,queues=N][,size=N]: the first two ports probed with NAME are cabled to each \
         other (TX queue q -> the peer's RX queue q mod its RX queues); a port alone loops back"
    }

    fn probe(&self, args: &ProbeArgs) -> EthResult<Vec<Box<dyn PortDriver>>> {
        args.only(&["queues", "size"])?;
        let name = match args.head.as_deref() {
            Some(n) if !n.is_empty() => n,
            _ => return Err(args.error("ring needs a name: ring:NAME")),
        };
        let queues: u16 = args.parse_or("queues", DEFAULT_QUEUES)?;
        if !(1..=MAX_QUEUES).contains(&queues) {
            return Err(args.error(format!("queues={queues}: 1..={MAX_QUEUES}")));
        }
        let size: u32 = args.parse_or("size", DEFAULT_SIZE)?;
        if !(1..=MAX_SIZE).contains(&size) {
            return Err(args.error(format!("size={size}: 1..={MAX_SIZE} packets")));
        }
        let mut sets = lock(&SETS);
        sets.retain(|(_, w)| w.strong_count() > 0);
        let existing = sets.iter().find(|(n, _)| n == name).and_then(|(_, w)| w.upgrade());
        let (set, place) = match existing {
            Some(set) => {
                let q_given = args.get("queues").is_some();
                let s_given = args.get("size").is_some();
                if (q_given && queues != set.queues) || (s_given && size != set.size) {
                    return Err(args.error(format!(
                        "ring:{name} exists with queues={},size={}",
                        set.queues, set.size
                    )));
                }
                let Some(place) = (0..2).find(|&p| !set.places[p].taken.load(Ordering::Acquire))
                else {
                    return Err(args.error(format!(
                        "ring:{name} already has two ports (close one, or use another name)"
                    )));
                };
                (set, place)
            }
            None => {
                let set = RingSet::new(name, queues, size)
                    .map_err(|e| args.error(format!("ring:{name}: {e}")))?;
                let set = Arc::new(set);
                sets.push((name.to_owned(), Arc::downgrade(&set)));
                (set, 0)
            }
        };
        // Probes are serialised by SETS, so the place is still free.
        set.places[place].missed.store(0, Ordering::Relaxed);
        set.places[place].taken.store(true, Ordering::Release);
        Ok(vec![Box::new(RingPort::new(set, place, args.spec.clone()))])
    }
}

// ---------------------------------------------------------------------------------------------
// Queues.

/// An RX queue of a ring port: the consumer end of its receive ring while the port is started.
pub struct RingRxq {
    set: Arc<RingSet>,
    place: usize,
    queue: u16,
    port: u16,
    cons: Option<MbufConsumer>,
    addrs: Box<[usize]>,
    stats: Arc<RxQueueStats>,
}

impl std::fmt::Debug for RingRxq {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RingRxq({} place {} queue {})", self.set.name, self.place, self.queue)
    }
}

impl RxBurst for RingRxq {
    #[inline]
    fn rx_burst(&mut self, out: &mut Pkts, max: usize) -> usize {
        let Some(cons) = &self.cons else { return 0 };
        let max = max.min(out.room()).min(self.addrs.len());
        let (port, mut bytes, mut lost) = (self.port, 0u64, 0u64);
        let n = cons.recv(&mut self.addrs[..max], |mut m| {
            m.set_port(port);
            bytes += u64::from(m.pkt_len());
            if out.push(m).is_err() {
                lost += 1; // cannot happen: n <= max <= room; the mbuf was freed
            }
        });
        let n = n - lost as usize;
        self.stats.packets.add(n as u64);
        self.stats.bytes.add(bytes);
        if lost != 0 {
            self.stats.errors.add(lost);
        }
        n
    }

    fn stats(&self) -> &Arc<RxQueueStats> {
        &self.stats
    }
}

impl Drop for RingRxq {
    fn drop(&mut self) {
        // Give the consumer back so the set can drain the ring.
        if let Some(c) = self.cons.take() {
            let mut cons = lock(&self.set.place(self.place).cons);
            match cons.get_mut(self.queue as usize) {
                Some(slot @ None) => *slot = Some(c),
                _ => {
                    c.drain();
                }
            }
        }
    }
}

/// A TX queue of a ring port.
pub struct RingTxq {
    set: Arc<RingSet>,
    place: usize,
    queue: u16,
    addrs: Box<[usize]>,
    cum: Box<[u64]>,
    stats: Arc<TxQueueStats>,
}

impl std::fmt::Debug for RingTxq {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RingTxq({} place {} queue {})", self.set.name, self.place, self.queue)
    }
}

impl TxBurst for RingTxq {
    #[inline]
    fn tx_burst(&mut self, pkts: &mut Pkts) -> usize {
        let n = pkts.len();
        if n == 0 {
            return 0;
        }
        let to = self.set.place(self.set.peer(self.place));
        let nrx = to.rx_live.load(Ordering::Acquire);
        let ring = if nrx == 0 { None } else { to.prod.get((self.queue % nrx) as usize) };
        let Some(ring) = ring else {
            // Nobody receives: the packets are lost on the wire.
            pkts.free_all();
            self.stats.errors.add(n as u64);
            return n;
        };
        let (k, bytes) = ring.send(pkts, &mut self.addrs, &mut self.cum);
        self.stats.packets.add(k as u64);
        self.stats.bytes.add(bytes);
        k
    }

    fn stats(&self) -> &Arc<TxQueueStats> {
        &self.stats
    }
}

// ---------------------------------------------------------------------------------------------
// The port.

#[derive(Default)]
struct RingState {
    rxq: Vec<Option<Arc<QueueSlot<RingRxq>>>>,
    txq: Vec<Option<Arc<QueueSlot<RingTxq>>>>,
    rx_stats: Vec<Arc<RxQueueStats>>,
    tx_stats: Vec<Arc<TxQueueStats>>,
}

/// A ring port: one place of a ring set.
pub struct RingPort {
    set: Arc<RingSet>,
    place: usize,
    /// This port still holds its place (until close or drop).
    holds: AtomicBool,
    started: AtomicBool,
    spec: String,
    ctx: OnceLock<PortContext>,
    st: Mutex<RingState>,
}

impl std::fmt::Debug for RingPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RingPort({} place {})", self.set.name, self.place)
    }
}

impl RingPort {
    fn new(set: Arc<RingSet>, place: usize, spec: String) -> Self {
        RingPort {
            set,
            place,
            holds: AtomicBool::new(true),
            started: AtomicBool::new(false),
            spec,
            ctx: OnceLock::new(),
            st: Mutex::new(RingState::default()),
        }
    }

    fn port(&self) -> u16 {
        self.ctx.get().map_or(0, |c| c.port)
    }

    fn my(&self) -> &Place {
        self.set.place(self.place)
    }

    fn busy(&self) -> EthError {
        EthError::Busy { port: self.port(), why: "a queue is being changed".into() }
    }

    /// Closes every gate (waiting for the pollers) and takes the RX rings' consumers back into
    /// the set; then frees what the rings hold. Used by stop, close and drop.
    fn quiesce(&self) -> EthResult<()> {
        self.started.store(false, Ordering::Relaxed);
        self.my().rx_live.store(0, Ordering::Release);
        let (rx, tx) = {
            let st = lock(&self.st);
            (st.rxq.clone(), st.txq.clone())
        };
        for (q, s) in rx.iter().enumerate() {
            let Some(s) = s else { continue };
            let mut ex = s.exclusive_logged("ring stop").ok_or_else(|| self.busy())?;
            if let Some(c) = ex.with(|rxq| rxq.cons.take()) {
                let mut cons = lock(&self.my().cons);
                match cons.get_mut(q) {
                    Some(slot @ None) => *slot = Some(c),
                    _ => {
                        c.drain();
                    }
                }
            }
            // Dropping the ownership keeps the gate closed.
        }
        for s in tx.iter().flatten() {
            drop(s.exclusive_logged("ring stop").ok_or_else(|| self.busy())?);
        }
        self.set.drain_place(self.place);
        Ok(())
    }

    /// Start: frees what was sent while stopped, hands each RX queue its ring's consumer and
    /// opens every gate, then lets the peers deliver.
    fn open_queues(&self) -> EthResult<()> {
        let (rx, tx) = {
            let st = lock(&self.st);
            (st.rxq.clone(), st.txq.clone())
        };
        // What was sent while the port was stopped is not received.
        self.set.drain_place(self.place);
        for (q, s) in rx.iter().enumerate() {
            let Some(s) = s else { continue };
            let mut ex = s.exclusive_logged("ring start").ok_or_else(|| self.busy())?;
            let c = lock(&self.my().cons).get_mut(q).and_then(Option::take);
            let Some(c) = c else {
                return Err(EthError::device(
                    self.port(),
                    format!("ring:{} RX ring {q} is held by another queue", self.set.name),
                ));
            };
            ex.with(|rxq| rxq.cons = Some(c));
            ex.open();
        }
        for s in tx.iter().flatten() {
            s.exclusive_logged("ring start").ok_or_else(|| self.busy())?.open();
        }
        self.started.store(true, Ordering::Relaxed);
        self.my().rx_live.store(rx.len() as u16, Ordering::Release);
        Ok(())
    }

    /// Gives up the place (once).
    fn leave_place(&self) {
        if self.holds.swap(false, Ordering::AcqRel) {
            self.my().rx_live.store(0, Ordering::Release);
            self.my().taken.store(false, Ordering::Release);
        }
    }
}

impl Drop for RingPort {
    fn drop(&mut self) {
        if self.holds.load(Ordering::Acquire) {
            // Dropped without close: stop the queues so the RX rings' consumers go back to the
            // set (a queue handle may outlive the port), then free the place.
            let _ = self.quiesce();
            self.leave_place();
        }
    }
}

impl PortDriver for RingPort {
    fn bind(&self, ctx: PortContext) {
        let _ = self.ctx.set(ctx);
    }

    fn info(&self) -> DevInfo {
        // Descriptor counts are accepted and ignored: the rings' size is the set's.
        let lim = DescLim { min: 1, max: u16::MAX, align: 1, pow2: false };
        DevInfo {
            driver: "ring",
            device: self.spec.clone(),
            max_rx_queues: self.set.queues,
            max_tx_queues: self.set.queues,
            rx_desc_lim: lim,
            tx_desc_lim: lim,
            max_rx_pktlen: u32::from(u16::MAX),
            min_mtu: 68,
            max_mtu: 9000,
            max_tx_segs: u16::MAX,
            rx_offload_capa: 0,
            tx_offload_capa: tx_offload::MULTI_SEGS | tx_offload::MBUF_FAST_FREE,
            flow_type_rss_offloads: 0,
            reta_size: 0,
            hash_key_size: 0,
            err_handle_mode: ErrHandleMode::None,
            default_burst: 32,
            default_desc: (1024, 1024),
        }
    }

    fn mac(&self) -> [u8; 6] {
        [0x02, b'R', 0, 0, self.place as u8, self.port() as u8]
    }

    fn link(&self) -> Link {
        if self.started.load(Ordering::Relaxed) { Link::up(10_000) } else { Link::DOWN }
    }

    fn configure(&self, nb_rxq: u16, nb_txq: u16, _conf: &PortConf) -> EthResult<()> {
        // The queues set up before are released: make sure none holds a ring.
        self.quiesce()?;
        let mut st = lock(&self.st);
        st.rxq = (0..nb_rxq).map(|_| None).collect();
        st.txq = (0..nb_txq).map(|_| None).collect();
        st.rx_stats = (0..nb_rxq).map(|_| Arc::default()).collect();
        st.tx_stats = (0..nb_txq).map(|_| Arc::default()).collect();
        Ok(())
    }

    fn rx_queue_setup(
        &self,
        q: u16,
        _nb_desc: u16,
        _pool: &MbufPool,
    ) -> EthResult<Arc<dyn RxSlot>> {
        let mut st = lock(&self.st);
        let stats = st.rx_stats.get(q as usize).cloned().unwrap_or_default();
        let rxq = RingRxq {
            set: self.set.clone(),
            place: self.place,
            queue: q,
            port: self.port(),
            cons: None, // given at start
            addrs: vec![0; MAX_PKT_BURST].into_boxed_slice(),
            stats,
        };
        let slot = Arc::new(QueueSlot::new(rxq, true));
        if let Some(s) = st.rxq.get_mut(q as usize) {
            *s = Some(slot.clone());
        }
        Ok(slot)
    }

    fn tx_queue_setup(&self, q: u16, _nb_desc: u16) -> EthResult<Arc<dyn TxSlot>> {
        let mut st = lock(&self.st);
        let stats = st.tx_stats.get(q as usize).cloned().unwrap_or_default();
        let txq = RingTxq {
            set: self.set.clone(),
            place: self.place,
            queue: q,
            addrs: vec![0; MAX_PKT_BURST].into_boxed_slice(),
            cum: vec![0; MAX_PKT_BURST + 1].into_boxed_slice(),
            stats,
        };
        let slot = Arc::new(QueueSlot::new(txq, true));
        if let Some(s) = st.txq.get_mut(q as usize) {
            *s = Some(slot.clone());
        }
        Ok(slot)
    }

    fn start(&self) -> EthResult<()> {
        let r = self.open_queues();
        if r.is_err() {
            // Take back what was handed out; the port stays stopped.
            let _ = self.quiesce();
        }
        r
    }

    fn stop(&self) -> EthResult<()> {
        self.quiesce()
    }

    fn close(&self) -> EthResult<()> {
        self.quiesce()?;
        {
            let mut st = lock(&self.st);
            st.rxq.clear();
            st.txq.clear();
        }
        self.leave_place();
        Ok(())
    }

    fn stats(&self) -> EthResult<PortStats> {
        let st = lock(&self.st);
        let mut s =
            PortStats { imissed: self.my().missed.load(Ordering::Relaxed), ..Default::default() };
        for q in &st.rx_stats {
            s.ipackets += q.packets.get();
            s.ibytes += q.bytes.get();
            s.ierrors += q.errors.get();
            s.rx_nombuf += q.nombuf.get();
            s.q_ipackets.push(q.packets.get());
            s.q_ibytes.push(q.bytes.get());
            s.q_errors.push(q.errors.get());
        }
        for q in &st.tx_stats {
            s.opackets += q.packets.get();
            s.obytes += q.bytes.get();
            s.oerrors += q.errors.get();
            s.q_opackets.push(q.packets.get());
            s.q_obytes.push(q.bytes.get());
        }
        Ok(s)
    }

    fn xstats(&self) -> EthResult<Vec<XStat>> {
        let s = self.stats()?;
        let tx_err: Vec<u64> = lock(&self.st).tx_stats.iter().map(|q| q.errors.get()).collect();
        let mut v = s.basic_xstats();
        for (i, (p, b)) in s.q_ipackets.iter().zip(&s.q_ibytes).enumerate() {
            v.push(XStat::new(format!("rx_q{i}_packets"), *p));
            v.push(XStat::new(format!("rx_q{i}_bytes"), *b));
        }
        for (i, (p, b)) in s.q_opackets.iter().zip(&s.q_obytes).enumerate() {
            v.push(XStat::new(format!("tx_q{i}_packets"), *p));
            v.push(XStat::new(format!("tx_q{i}_bytes"), *b));
            v.push(XStat::new(format!("tx_q{i}_errors"), tx_err.get(i).copied().unwrap_or(0)));
        }
        Ok(v)
    }

    fn mtu_set(&self, _mtu: u16) -> EthResult<()> {
        Ok(())
    }
}
