//! Counters: per queue, written by the queue's poller only and read by anyone, so an increment is
//! a relaxed load and store, not a locked read-modify-write. Resetting keeps a baseline on the
//! reader's side instead of writing the poller's counters.

use std::sync::atomic::{AtomicU64, Ordering};

/// A counter with one writer.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds `n` (the counter's one writer only).
    #[inline(always)]
    pub fn add(&self, n: u64) {
        self.0.store(self.0.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
    }

    /// Adds one (the counter's one writer only).
    #[inline(always)]
    pub fn inc(&self) {
        self.add(1);
    }

    /// The value.
    #[inline]
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Counters of one RX queue.
#[derive(Debug, Default)]
pub struct RxQueueStats {
    /// Packets received.
    pub packets: Counter,
    /// Bytes received.
    pub bytes: Counter,
    /// Packets dropped for an error (bad CQE, truncation, device-reported error).
    pub errors: Counter,
    /// Times a refill could not get mbufs from the pool.
    pub nombuf: Counter,
}

/// Counters of one TX queue.
#[derive(Debug, Default)]
pub struct TxQueueStats {
    /// Packets sent (handed to the device).
    pub packets: Counter,
    /// Bytes sent.
    pub bytes: Counter,
    /// Packets the device completed with an error.
    pub errors: Counter,
}

/// A snapshot of a port's basic counters (`rte_eth_stats`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortStats {
    /// Packets received.
    pub ipackets: u64,
    /// Packets sent.
    pub opackets: u64,
    /// Bytes received.
    pub ibytes: u64,
    /// Bytes sent.
    pub obytes: u64,
    /// Packets the device dropped for want of a buffer (no RX WQE posted).
    pub imissed: u64,
    /// Erroneous received packets.
    pub ierrors: u64,
    /// Failed transmissions.
    pub oerrors: u64,
    /// RX refills that found the pool empty.
    pub rx_nombuf: u64,
    /// Per RX queue packets.
    pub q_ipackets: Vec<u64>,
    /// Per TX queue packets.
    pub q_opackets: Vec<u64>,
    /// Per RX queue bytes.
    pub q_ibytes: Vec<u64>,
    /// Per TX queue bytes.
    pub q_obytes: Vec<u64>,
    /// Per RX queue errors.
    pub q_errors: Vec<u64>,
}

impl PortStats {
    /// The port-wide extended statistics every driver that counts errors reports first, DPDK's
    /// names: good packets and bytes each way, missed, RX and TX errors.
    pub fn basic_xstats(&self) -> Vec<XStat> {
        vec![
            XStat::new("rx_good_packets", self.ipackets),
            XStat::new("tx_good_packets", self.opackets),
            XStat::new("rx_good_bytes", self.ibytes),
            XStat::new("tx_good_bytes", self.obytes),
            XStat::new("rx_missed_errors", self.imissed),
            XStat::new("rx_errors", self.ierrors),
            XStat::new("tx_errors", self.oerrors),
        ]
    }

    /// `self - base`, field by field (a reset keeps `base`).
    pub fn since(&self, base: &PortStats) -> PortStats {
        let v = |a: &[u64], b: &[u64]| -> Vec<u64> {
            a.iter()
                .enumerate()
                .map(|(i, x)| x.wrapping_sub(b.get(i).copied().unwrap_or(0)))
                .collect()
        };
        PortStats {
            ipackets: self.ipackets.wrapping_sub(base.ipackets),
            opackets: self.opackets.wrapping_sub(base.opackets),
            ibytes: self.ibytes.wrapping_sub(base.ibytes),
            obytes: self.obytes.wrapping_sub(base.obytes),
            imissed: self.imissed.wrapping_sub(base.imissed),
            ierrors: self.ierrors.wrapping_sub(base.ierrors),
            oerrors: self.oerrors.wrapping_sub(base.oerrors),
            rx_nombuf: self.rx_nombuf.wrapping_sub(base.rx_nombuf),
            q_ipackets: v(&self.q_ipackets, &base.q_ipackets),
            q_opackets: v(&self.q_opackets, &base.q_opackets),
            q_ibytes: v(&self.q_ibytes, &base.q_ibytes),
            q_obytes: v(&self.q_obytes, &base.q_obytes),
            q_errors: v(&self.q_errors, &base.q_errors),
        }
    }
}

/// A named extended counter (`rte_eth_xstat` with its name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XStat {
    /// Name, DPDK style (`rx_good_packets`, `rx_q0_packets`, `mana_cqe_bad_type`).
    pub name: String,
    /// Value.
    pub value: u64,
}

impl XStat {
    /// A named value.
    pub fn new(name: impl Into<String>, value: u64) -> Self {
        XStat { name: name.into(), value }
    }
}
