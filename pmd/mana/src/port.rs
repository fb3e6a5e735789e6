//! A MANA port (one vport of a device) behind the port API.
//!
//! Every control operation runs on the device's control worker ([`crate::device::Device`]); the
//! port's stats read the queue counters directly and ask the device for its own counters.

use std::sync::{Arc, OnceLock};

use pmd_ethdev::conf::{DescLim, DevInfo, ErrHandleMode, Link, rss, rx_offload, tx_offload};
use pmd_ethdev::port::{PortContext, PortDriver};
use pmd_ethdev::queue::{RxSlot, TxSlot};
use pmd_ethdev::stats::{PortStats, XStat};
use pmd_ethdev::{EthError, EthResult, PortConf, RssConf};
use pmd_mempool::MbufPool;

use crate::device::{Device, MAX_DESC, MIN_DESC, port_stats, queue_xstats};

/// One vport of a MANA device.
pub struct ManaPort {
    dev: Arc<Device>,
    vport: usize,
    ctx: OnceLock<PortContext>,
}

impl std::fmt::Debug for ManaPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ManaPort(vport {} of {:?})", self.vport, self.dev)
    }
}

impl ManaPort {
    /// The port of vport `vport` of `dev`.
    pub fn new(dev: Arc<Device>, vport: usize) -> Self {
        ManaPort { dev, vport, ctx: OnceLock::new() }
    }

    fn id(&self) -> u16 {
        self.ctx.get().map_or(self.vport as u16, |c| c.port)
    }

    /// The device this port belongs to.
    pub fn device(&self) -> &Arc<Device> {
        &self.dev
    }
}

impl PortDriver for ManaPort {
    fn bind(&self, ctx: PortContext) {
        let _ = self.ctx.set(ctx.clone());
        let p = self.vport;
        let _ = self.dev.call(ctx.port, move |w| w.bind(p, ctx));
    }

    fn info(&self) -> DevInfo {
        let v = &self.dev.vports[self.vport];
        let caps = &self.dev.caps;
        let lim = DescLim { min: MIN_DESC, max: MAX_DESC, align: 1, pow2: true };
        let queues = v.max_sq.min(v.max_rq).clamp(1, 64) as u16;
        let max_frame = caps.adapter_mtu as u32;
        DevInfo {
            driver: "mana",
            device: self.dev.describe.clone(),
            max_rx_queues: queues,
            max_tx_queues: queues,
            rx_desc_lim: lim,
            tx_desc_lim: lim,
            max_rx_pktlen: max_frame + 4,
            min_mtu: 68,
            max_mtu: (max_frame as u16).saturating_sub(14).max(68),
            max_tx_segs: gdma_defs::MAX_TX_WQE_SGL_ENTRIES as u16,
            rx_offload_capa: rx_offload::CHECKSUM | rx_offload::RSS_HASH | rx_offload::VLAN_STRIP,
            tx_offload_capa: tx_offload::IPV4_CKSUM
                | tx_offload::TCP_CKSUM
                | tx_offload::UDP_CKSUM
                | tx_offload::VLAN_INSERT
                | tx_offload::MULTI_SEGS
                | tx_offload::MBUF_FAST_FREE,
            flow_type_rss_offloads: rss::MANA,
            reta_size: v.indir_entries as u16,
            hash_key_size: 40,
            err_handle_mode: ErrHandleMode::Proactive,
            default_burst: 32,
            default_desc: (1024, 1024),
        }
    }

    fn mac(&self) -> [u8; 6] {
        self.dev.vports[self.vport].mac
    }

    fn link(&self) -> Link {
        Link::up(200_000)
    }

    fn configure(&self, nb_rxq: u16, nb_txq: u16, conf: &PortConf) -> EthResult<()> {
        let (p, conf) = (self.vport, conf.clone());
        self.dev.call(self.id(), move |w| w.configure(p, nb_rxq, nb_txq, &conf))?
    }

    fn rx_queue_setup(&self, q: u16, nb_desc: u16, pool: &MbufPool) -> EthResult<Arc<dyn RxSlot>> {
        let (p, pool) = (self.vport, pool.clone());
        let slot = self.dev.call(self.id(), move |w| w.rx_setup(p, q, nb_desc, pool))??;
        Ok(slot)
    }

    fn tx_queue_setup(&self, q: u16, nb_desc: u16) -> EthResult<Arc<dyn TxSlot>> {
        let p = self.vport;
        let slot = self.dev.call(self.id(), move |w| w.tx_setup(p, q, nb_desc))??;
        Ok(slot)
    }

    fn register_pool(&self, pool: &MbufPool) -> EthResult<()> {
        let (p, pool) = (self.vport, pool.clone());
        self.dev.call(self.id(), move |w| w.register_tx_pool(p, pool))?
    }

    fn start(&self) -> EthResult<()> {
        let p = self.vport;
        self.dev.call(self.id(), move |w| w.start_port(p))?
    }

    fn stop(&self) -> EthResult<()> {
        let p = self.vport;
        self.dev.call(self.id(), move |w| w.stop_port(p))?
    }

    fn close(&self) -> EthResult<()> {
        let p = self.vport;
        self.dev.call(self.id(), move |w| w.close_port(p))?
    }

    fn stats(&self) -> EthResult<PortStats> {
        let p = self.vport;
        let dev = self.dev.call(self.id(), move |w| w.device_xstats(p))?;
        let imissed = dev
            .as_ref()
            .ok()
            .and_then(|v| v.iter().find(|(n, _)| *n == "rx_discards_nowqe").map(|(_, v)| *v))
            .unwrap_or(0);
        let refs = self.dev.stats_refs(self.vport);
        let refs = refs.lock().unwrap_or_else(|e| e.into_inner());
        Ok(port_stats(&refs, imissed))
    }

    fn xstats(&self) -> EthResult<Vec<XStat>> {
        let s = self.stats()?;
        let mut v = s.basic_xstats();
        v.push(XStat::new("rx_mbuf_allocation_errors", s.rx_nombuf));
        {
            let refs = self.dev.stats_refs(self.vport);
            let refs = refs.lock().unwrap_or_else(|e| e.into_inner());
            queue_xstats(&refs, &self.dev.counters(self.vport), &mut v);
        }
        let p = self.vport;
        let cmd = self.dev.cmd_counters().clone();
        // The channel counters are read on the worker, between two of its steps: a snapshot never
        // falls inside a command (a bring-up counted without the timeout its first command hit).
        if let Ok((dev, cmd)) =
            self.dev.call(self.id(), move |w| (w.device_xstats(p), cmd.xstats()))
        {
            for (n, val) in cmd {
                v.push(XStat::new(n, val));
            }
            for (n, val) in dev.into_iter().flatten() {
                v.push(XStat::new(format!("dev_{n}"), val));
            }
        }
        Ok(v)
    }

    fn reta_update(&self, reta: &[u16]) -> EthResult<()> {
        let (p, reta) = (self.vport, reta.to_vec());
        self.dev.call(self.id(), move |w| w.reta_update(p, &reta))?
    }

    fn reta_query(&self) -> EthResult<Vec<u16>> {
        let p = self.vport;
        self.dev.call(self.id(), move |w| w.reta(p))
    }

    fn rss_hash_update(&self, rss_conf: &RssConf) -> EthResult<()> {
        let (p, r) = (self.vport, rss_conf.clone());
        self.dev.call(self.id(), move |w| w.rss_update(p, &r))?
    }

    fn rss_hash_conf(&self) -> EthResult<RssConf> {
        let p = self.vport;
        self.dev.call(self.id(), move |w| w.rss_conf(p))
    }

    fn mtu_set(&self, mtu: u16) -> EthResult<()> {
        let max = self.info().max_mtu;
        if mtu > max {
            return Err(EthError::bad_arg(self.id(), "mtu", format!("{mtu}, at most {max}")));
        }
        let p = self.vport;
        self.dev.call(self.id(), move |w| w.mtu_set(p, mtu))?
    }
}
