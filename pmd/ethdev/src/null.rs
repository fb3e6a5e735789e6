//! The `null` port (like DPDK's net_null): RX returns fresh mbufs of `size` bytes from the queue's
//! pool (contents not written), TX frees what it is given. The cost of a burst is the mbuf pool
//! and the port API itself, which is what it is for: measuring them.
//!
//! Probe: `null[,size=N][,queues=N]` (size: frame length, default 64; queues: most queues, default
//! 16).

use std::sync::{Arc, Mutex, OnceLock};

use pmd_mempool::{Mbuf, MbufPool};

use crate::conf::{DescLim, DevInfo, ErrHandleMode, Link, PortConf, rss, rx_offload, tx_offload};
use crate::error::{EthError, EthResult};
use crate::gate::QueueSlot;
use crate::pkts::Pkts;
use crate::port::{PortContext, PortDriver};
use crate::probe::{DriverFactory, ProbeArgs};
use crate::queue::{RxBurst, RxSlot, TxBurst, TxSlot};
use crate::stats::{PortStats, RxQueueStats, TxQueueStats, XStat};

/// Probes `null` ports.
#[derive(Debug)]
pub struct NullFactory;

impl DriverFactory for NullFactory {
    fn name(&self) -> &'static str {
        "null"
    }

    fn usage(&self) -> &'static str {
        "null[,size=N][,queues=N]: RX returns fresh N-byte mbufs, TX frees"
    }

    fn probe(&self, args: &ProbeArgs) -> EthResult<Vec<Box<dyn PortDriver>>> {
        args.only(&["size", "queues"])?;
        if let Some(h) = &args.head {
            return Err(args.error(format!("null takes no name ('{h}')")));
        }
        let size: u16 = args.parse_or("size", 64)?;
        if !(14..=9000).contains(&size) {
            return Err(args.error(format!("size={size}: a frame of 14..=9000 bytes")));
        }
        let queues: u16 = args.parse_or("queues", 16)?;
        if !(1..=1024).contains(&queues) {
            return Err(args.error(format!("queues={queues}: 1..=1024")));
        }
        Ok(vec![Box::new(NullPort::new(size, queues, args.spec.clone()))])
    }
}

/// An RX queue of a null port.
#[derive(Debug)]
pub struct NullRxq {
    pool: MbufPool,
    size: u16,
    port: u16,
    stats: Arc<RxQueueStats>,
}

impl RxBurst for NullRxq {
    #[inline]
    fn rx_burst(&mut self, out: &mut Pkts, max: usize) -> usize {
        if max == 0 {
            return 0; // an empty poll, not an allocation failure
        }
        let start = out.len();
        if self.pool.alloc_bulk(out, max).is_err() {
            self.stats.nombuf.inc();
            return 0;
        }
        for m in &mut out.as_mut_slice()[start..] {
            m.set_lens(self.size);
            m.set_port(self.port);
        }
        self.stats.packets.add(max as u64);
        self.stats.bytes.add(max as u64 * self.size as u64);
        max
    }

    fn stats(&self) -> &Arc<RxQueueStats> {
        &self.stats
    }
}

/// A TX queue of a null port.
#[derive(Debug, Default)]
pub struct NullTxq {
    stats: Arc<TxQueueStats>,
}

impl TxBurst for NullTxq {
    #[inline]
    fn tx_burst(&mut self, pkts: &mut Pkts) -> usize {
        let n = pkts.len();
        let bytes: u64 = pkts.as_slice().iter().map(|m| m.pkt_len() as u64).sum();
        Mbuf::free_bulk(pkts.take_front(n));
        self.stats.packets.add(n as u64);
        self.stats.bytes.add(bytes);
        n
    }

    fn stats(&self) -> &Arc<TxQueueStats> {
        &self.stats
    }
}

#[derive(Default)]
struct NullState {
    rxq: Vec<Option<Arc<QueueSlot<NullRxq>>>>,
    txq: Vec<Option<Arc<QueueSlot<NullTxq>>>>,
    rx_stats: Vec<Arc<RxQueueStats>>,
    tx_stats: Vec<Arc<TxQueueStats>>,
    reta: Vec<u16>,
}

/// A null port.
pub struct NullPort {
    size: u16,
    queues: u16,
    spec: String,
    mac: [u8; 6],
    ctx: OnceLock<PortContext>,
    st: Mutex<NullState>,
}

impl NullPort {
    fn new(size: u16, queues: u16, spec: String) -> Self {
        NullPort {
            size,
            queues,
            spec,
            mac: [0x02, 0, 0, 0, 0, 0],
            ctx: OnceLock::new(),
            st: Mutex::new(NullState::default()),
        }
    }

    fn port(&self) -> u16 {
        self.ctx.get().map_or(0, |c| c.port)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, NullState> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl PortDriver for NullPort {
    fn bind(&self, ctx: PortContext) {
        let _ = self.ctx.set(ctx);
    }

    fn info(&self) -> DevInfo {
        let lim = DescLim { min: 1, max: u16::MAX, align: 1, pow2: false };
        DevInfo {
            driver: "null",
            device: self.spec.clone(),
            max_rx_queues: self.queues,
            max_tx_queues: self.queues,
            rx_desc_lim: lim,
            tx_desc_lim: lim,
            max_rx_pktlen: u32::from(u16::MAX),
            min_mtu: 68,
            max_mtu: 9000,
            max_tx_segs: u16::MAX,
            rx_offload_capa: rx_offload::RSS_HASH,
            tx_offload_capa: tx_offload::MULTI_SEGS | tx_offload::MBUF_FAST_FREE,
            flow_type_rss_offloads: rss::IP | rss::TCP | rss::UDP,
            reta_size: 128,
            hash_key_size: 40,
            err_handle_mode: ErrHandleMode::None,
            default_burst: 32,
            default_desc: (1024, 1024),
        }
    }

    fn mac(&self) -> [u8; 6] {
        let mut m = self.mac;
        m[5] = self.port() as u8;
        m
    }

    fn link(&self) -> Link {
        Link::up(10_000)
    }

    fn configure(&self, nb_rxq: u16, nb_txq: u16, _conf: &PortConf) -> EthResult<()> {
        let mut st = self.state();
        st.rxq = (0..nb_rxq).map(|_| None).collect();
        st.txq = (0..nb_txq).map(|_| None).collect();
        st.rx_stats = (0..nb_rxq).map(|_| Arc::default()).collect();
        st.tx_stats = (0..nb_txq).map(|_| Arc::default()).collect();
        st.reta = (0..128).map(|i| i % nb_rxq.max(1)).collect();
        Ok(())
    }

    fn rx_queue_setup(&self, q: u16, _nb_desc: u16, pool: &MbufPool) -> EthResult<Arc<dyn RxSlot>> {
        let mut st = self.state();
        let stats = st.rx_stats[q as usize].clone();
        let rxq = NullRxq { pool: pool.clone(), size: self.size, port: self.port(), stats };
        let slot = Arc::new(QueueSlot::new(rxq, true));
        st.rxq[q as usize] = Some(slot.clone());
        Ok(slot)
    }

    fn tx_queue_setup(&self, q: u16, _nb_desc: u16) -> EthResult<Arc<dyn TxSlot>> {
        let mut st = self.state();
        let stats = st.tx_stats[q as usize].clone();
        let slot = Arc::new(QueueSlot::new(NullTxq { stats }, true));
        st.txq[q as usize] = Some(slot.clone());
        Ok(slot)
    }

    fn start(&self) -> EthResult<()> {
        let (rx, tx) = {
            let st = self.state();
            (st.rxq.clone(), st.txq.clone())
        };
        let busy = || EthError::Busy { port: self.port(), why: "a queue is being changed".into() };
        for s in rx.iter().flatten() {
            s.exclusive_logged("null start").ok_or_else(busy)?.open();
        }
        for s in tx.iter().flatten() {
            s.exclusive_logged("null start").ok_or_else(busy)?.open();
        }
        Ok(())
    }

    fn stop(&self) -> EthResult<()> {
        let (rx, tx) = {
            let st = self.state();
            (st.rxq.clone(), st.txq.clone())
        };
        let busy = || EthError::Busy { port: self.port(), why: "a queue is being changed".into() };
        // Closing waits for each poller to leave; dropping the ownership keeps the gate closed.
        for s in rx.iter().flatten() {
            drop(s.exclusive_logged("null stop").ok_or_else(busy)?);
        }
        for s in tx.iter().flatten() {
            drop(s.exclusive_logged("null stop").ok_or_else(busy)?);
        }
        Ok(())
    }

    fn close(&self) -> EthResult<()> {
        let mut st = self.state();
        st.rxq.clear();
        st.txq.clear();
        Ok(())
    }

    fn stats(&self) -> EthResult<PortStats> {
        let st = self.state();
        let mut s = PortStats::default();
        for q in &st.rx_stats {
            s.ipackets += q.packets.get();
            s.ibytes += q.bytes.get();
            s.rx_nombuf += q.nombuf.get();
            s.ierrors += q.errors.get();
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
        let mut v = vec![
            XStat::new("rx_good_packets", s.ipackets),
            XStat::new("tx_good_packets", s.opackets),
            XStat::new("rx_good_bytes", s.ibytes),
            XStat::new("tx_good_bytes", s.obytes),
            XStat::new("rx_mbuf_allocation_errors", s.rx_nombuf),
        ];
        for (i, p) in s.q_ipackets.iter().enumerate() {
            v.push(XStat::new(format!("rx_q{i}_packets"), *p));
        }
        for (i, p) in s.q_opackets.iter().enumerate() {
            v.push(XStat::new(format!("tx_q{i}_packets"), *p));
        }
        Ok(v)
    }

    fn reta_update(&self, reta: &[u16]) -> EthResult<()> {
        self.state().reta = reta.to_vec();
        Ok(())
    }

    fn reta_query(&self) -> EthResult<Vec<u16>> {
        Ok(self.state().reta.clone())
    }

    fn mtu_set(&self, _mtu: u16) -> EthResult<()> {
        Ok(())
    }
}
