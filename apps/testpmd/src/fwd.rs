//! Forwarding: the modes, the streams that run them, and the loop of a forwarding core.
//!
//! A stream owns its RX queue handle and its TX queue handle (each queue is polled by exactly one
//! stream, so by one core) and counts what it did in single-writer counters the main thread reads.
//! The per-burst path allocates nothing, takes no lock and cannot panic; the only exception is the
//! per-packet dump of `--verbose` (DPDK prints there too), which writes to a locked stdout.

use std::io::Write;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use pmd_ethdev::{Counter, Pkts, RxQueue, TxQueue};
use pmd_mempool::mbuf::ol;
use pmd_mempool::{Mbuf, MbufPool, tsc};

use crate::pkt::{self, Echo, UdpTemplate};
use crate::topo::StreamSpec;

/// A forwarding mode (`--forward-mode`, `set fwd`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FwdMode {
    /// Packets out unchanged.
    Io,
    /// Destination MAC := the TX port's peer, source MAC := the TX port's.
    Mac,
    /// Source and destination MACs swapped.
    MacSwap,
    /// Receive and free.
    RxOnly,
    /// Send generated UDP packets; receive nothing.
    TxOnly,
    /// Send generated UDP packets over many flows (destination IPs); free what is received.
    FlowGen,
    /// Answer ICMP echo requests and ARP requests; drop the rest.
    IcmpEcho,
    /// MACs, IP addresses and L4 ports swapped.
    FiveTupleSwap,
}

impl FwdMode {
    /// Every mode, in DPDK's order.
    pub const ALL: [FwdMode; 8] = [
        FwdMode::Io,
        FwdMode::Mac,
        FwdMode::MacSwap,
        FwdMode::FlowGen,
        FwdMode::RxOnly,
        FwdMode::TxOnly,
        FwdMode::IcmpEcho,
        FwdMode::FiveTupleSwap,
    ];

    /// DPDK's name.
    pub fn name(self) -> &'static str {
        match self {
            FwdMode::Io => "io",
            FwdMode::Mac => "mac",
            FwdMode::MacSwap => "macswap",
            FwdMode::RxOnly => "rxonly",
            FwdMode::TxOnly => "txonly",
            FwdMode::FlowGen => "flowgen",
            FwdMode::IcmpEcho => "icmpecho",
            FwdMode::FiveTupleSwap => "5tswap",
        }
    }

    /// Whether CPU cycles/packet are counted per packet sent (the generators) rather than
    /// received.
    pub fn counts_tx(self) -> bool {
        matches!(self, FwdMode::TxOnly | FwdMode::FlowGen)
    }
}

impl FromStr for FwdMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        FwdMode::ALL.into_iter().find(|m| m.name() == s).ok_or_else(|| {
            let names: Vec<_> = FwdMode::ALL.iter().map(|m| m.name()).collect();
            format!("expected one of {}, got '{s}'", names.join(", "))
        })
    }
}

/// What a stream counted. One writer (the stream's core); read by anyone.
#[derive(Debug, Default)]
pub struct StreamStats {
    /// Packets received.
    pub rx_packets: Counter,
    /// Packets sent.
    pub tx_packets: Counter,
    /// Packets the TX queue did not take (freed).
    pub fwd_dropped: Counter,
    /// TSC cycles spent in bursts that moved packets (`--record-core-cycles`).
    pub busy_cycles: Counter,
}

/// txonly's addresses (DPDK: 198.18.0.1 -> 198.18.0.2, UDP 9 -> 9).
const TXONLY_IP_SRC: [u8; 4] = [198, 18, 0, 1];
const TXONLY_IP_DST: [u8; 4] = [198, 18, 0, 2];
const TXONLY_UDP_PORT: u16 = 9;
/// flowgen's addresses (DPDK: 10.254.0.0 -> 10.253.0.0 + flow, UDP 1000 -> 1001).
const FLOWGEN_IP_SRC: [u8; 4] = [10, 254, 0, 0];
const FLOWGEN_IP_DST: u32 = u32::from_be_bytes([10, 253, 0, 0]);

/// The settings every stream of a run shares.
#[derive(Debug)]
pub struct FwdParams {
    /// The mode.
    pub mode: FwdMode,
    /// Packets per burst.
    pub burst: usize,
    /// Generated packet length.
    pub txpkts: u16,
    /// txonly varies the UDP source port.
    pub multi_flow: bool,
    /// flowgen's flow count.
    pub flows: u32,
    /// Count busy cycles.
    pub record_cycles: bool,
    /// Verbosity (changed at run time by `set verbose`).
    pub verbose: Arc<AtomicU8>,
}

/// One stream: an RX queue, the TX queue its packets go to, and its counters.
pub struct Stream {
    /// Ports and queues.
    pub spec: StreamSpec,
    /// Port ids of the RX and TX ports.
    pub ports: (u16, u16),
    rxq: RxQueue,
    txq: TxQueue,
    /// Counters of the current run.
    pub stats: Arc<StreamStats>,
    /// The TX port's MAC.
    tx_mac: [u8; 6],
    /// The TX port's peer MAC.
    peer: [u8; 6],
    pool: MbufPool,
    txonly: UdpTemplate,
    flowgen: UdpTemplate,
    /// txonly multi-flow: the varying byte of the UDP source port.
    src_var: u8,
    /// flowgen: the next flow.
    next_flow: u32,
    /// The low byte of the core's index, for multi-flow source ports.
    pub lcore: u8,
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Stream({:?})", self.spec)
    }
}

impl Stream {
    /// A stream over the given queue handles. `txpkts` is the length of generated packets.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        spec: StreamSpec,
        ports: (u16, u16),
        rxq: RxQueue,
        txq: TxQueue,
        tx_mac: [u8; 6],
        peer: [u8; 6],
        pool: MbufPool,
        txpkts: u16,
    ) -> Self {
        let txonly = UdpTemplate::new(
            peer,
            tx_mac,
            TXONLY_IP_SRC,
            TXONLY_IP_DST,
            TXONLY_UDP_PORT,
            TXONLY_UDP_PORT,
            txpkts,
        );
        let flowgen = UdpTemplate::new(
            peer,
            tx_mac,
            FLOWGEN_IP_SRC,
            FLOWGEN_IP_DST.to_be_bytes(),
            1000,
            1001,
            txpkts,
        );
        Stream {
            spec,
            ports,
            rxq,
            txq,
            stats: Arc::default(),
            tx_mac,
            peer,
            pool,
            txonly,
            flowgen,
            src_var: 0,
            next_flow: 0,
            lcore: 0,
        }
    }

    /// The peer MAC packets of this stream are sent to (mac, txonly, flowgen).
    pub fn peer(&self) -> [u8; 6] {
        self.peer
    }

    /// Starts counting afresh (a new run).
    pub fn reset_stats(&mut self) {
        self.stats = Arc::default();
    }

    /// One burst of the mode.
    #[inline]
    pub fn forward(&mut self, p: &FwdParams, buf: &mut Pkts) {
        let t0 = if p.record_cycles { tsc::rdtsc() } else { 0 };
        let busy = match p.mode {
            FwdMode::Io => {
                let n = self.receive(p, buf);
                if n > 0 {
                    self.send(buf);
                }
                n > 0
            }
            FwdMode::Mac => {
                let (peer, src) = (self.peer, self.tx_mac);
                self.relay(p, buf, true, |d| {
                    pkt::set_macs(d, peer, src);
                })
            }
            FwdMode::MacSwap => self.relay(p, buf, false, |d| {
                pkt::swap_macs(d);
            }),
            FwdMode::FiveTupleSwap => self.relay(p, buf, false, |d| {
                pkt::swap_5tuple(d);
            }),
            FwdMode::RxOnly => {
                let n = self.receive(p, buf);
                buf.free_all();
                n > 0
            }
            FwdMode::TxOnly => self.generate(p, buf, false),
            FwdMode::FlowGen => {
                self.receive(p, buf);
                buf.free_all();
                self.generate(p, buf, true)
            }
            FwdMode::IcmpEcho => self.icmp_echo(p, buf),
        };
        if p.record_cycles && busy {
            self.stats.busy_cycles.add(tsc::rdtsc().wrapping_sub(t0));
        }
    }

    /// One txonly burst whatever the mode (`--tx-first`, `start tx_first`).
    pub fn tx_first(&mut self, p: &FwdParams, buf: &mut Pkts) {
        self.generate(p, buf, false);
    }

    /// Receives a burst into the empty `buf`, counting and (verbose) dumping it.
    #[inline]
    fn receive(&mut self, p: &FwdParams, buf: &mut Pkts) -> usize {
        let n = self.rxq.rx_burst(buf, p.burst);
        if n > 0 {
            self.stats.rx_packets.add(n as u64);
            if p.verbose.load(Ordering::Relaxed) > 0 {
                dump_burst(self.ports.0, self.spec.rx_queue, buf.as_slice(), true);
            }
        }
        n
    }

    /// Sends `buf`; what the queue did not take is counted dropped and freed.
    #[inline]
    fn send(&mut self, buf: &mut Pkts) {
        let sent = self.txq.tx_burst(buf);
        self.stats.tx_packets.add(sent as u64);
        if !buf.is_empty() {
            self.stats.fwd_dropped.add(buf.len() as u64);
            buf.free_all();
        }
    }

    /// Receive, rewrite each packet's data (when the buffer is the mbuf's alone: a shared one is
    /// forwarded unchanged), clear the offload flags if asked (mac mode, as DPDK), send.
    #[inline]
    fn relay(
        &mut self,
        p: &FwdParams,
        buf: &mut Pkts,
        clear_flags: bool,
        rewrite: impl Fn(&mut [u8]),
    ) -> bool {
        if self.receive(p, buf) == 0 {
            return false;
        }
        for m in buf.as_mut_slice() {
            if let Some(d) = m.data_mut() {
                rewrite(d);
            }
            if clear_flags {
                m.set_ol_flags(0);
            }
        }
        self.send(buf);
        true
    }

    /// Builds and sends a burst of generated UDP packets.
    fn generate(&mut self, p: &FwdParams, buf: &mut Pkts, flows: bool) -> bool {
        if self.pool.alloc_bulk(buf, p.burst).is_err() {
            return false;
        }
        let first_flow = self.next_flow;
        for m in buf.as_mut_slice() {
            let Some(d) = m.append(p.txpkts) else { continue };
            if flows {
                self.flowgen.write(d);
                pkt::set_ipv4_dst(d, FLOWGEN_IP_DST.wrapping_add(self.next_flow));
                self.next_flow = (self.next_flow + 1) % p.flows.max(1);
            } else {
                self.txonly.write(d);
                if p.multi_flow {
                    let port = u16::from_be_bytes([self.src_var | 0xc0, self.lcore]);
                    self.src_var = self.src_var.wrapping_add(1);
                    pkt::set_udp_sport(d, port);
                }
            }
        }
        let sent = self.txq.tx_burst(buf) as u32;
        self.stats.tx_packets.add(u64::from(sent));
        if !buf.is_empty() {
            self.stats.fwd_dropped.add(buf.len() as u64);
            buf.free_all();
            if flows {
                // The flows not sent come first next time (DPDK's flowgen does the same).
                let f = p.flows.max(1);
                self.next_flow = (first_flow + sent % f) % f;
            }
        }
        true
    }

    fn icmp_echo(&mut self, p: &FwdParams, buf: &mut Pkts) -> bool {
        if self.receive(p, buf) == 0 {
            return false;
        }
        let mac = self.tx_mac;
        buf.retain(|m| match m.data_mut() {
            Some(d) => pkt::icmp_echo(d, mac) != Echo::Drop,
            None => false,
        });
        if !buf.is_empty() {
            self.send(buf);
        }
        true
    }
}

/// Prints a burst as DPDK's `--verbose` does: a header line, then one line per packet with its
/// MACs, pool, EtherType, length, segments, RSS hash and queue (when the hash is valid), and the
/// queue.
pub fn dump_burst(port: u16, queue: u16, pkts: &[Mbuf], rx: bool) {
    let out = std::io::stdout();
    let mut w = out.lock();
    let _ = write_burst(&mut w, port, queue, pkts, rx);
}

/// [`dump_burst`] into any writer.
pub fn write_burst(
    w: &mut impl Write,
    port: u16,
    queue: u16,
    pkts: &[Mbuf],
    rx: bool,
) -> std::io::Result<()> {
    writeln!(
        w,
        "port {port}/queue {queue}: {} {} packets",
        if rx { "received" } else { "sent" },
        pkts.len()
    )?;
    for m in pkts {
        write_pkt_line(w, m, queue, rx)?;
    }
    Ok(())
}

/// One packet's line of the verbose dump.
pub fn write_pkt_line(w: &mut impl Write, m: &Mbuf, queue: u16, rx: bool) -> std::io::Result<()> {
    let d = m.data();
    let (src, dst) = pkt::macs(d).unwrap_or(([0; 6], [0; 6]));
    write!(
        w,
        "  src={} - dst={} - pool={} - type=0x{:04x} - length={} - nb_segs={}",
        MacFmt(src),
        MacFmt(dst),
        m.pool_name(),
        pkt::ether_type(d),
        m.pkt_len(),
        m.nb_segs()
    )?;
    if m.ol_flags() & ol::MBUF_F_RX_RSS_HASH != 0 {
        write!(w, " - RSS hash=0x{:x} - RSS queue=0x{:x}", m.rss_hash(), queue)?;
    }
    if m.ol_flags() & ol::MBUF_F_RX_VLAN_STRIPPED != 0 {
        write!(w, " - VLAN tci=0x{:x}", m.vlan_tci())?;
    }
    writeln!(w, " - {} queue=0x{:x}", if rx { "Receive" } else { "Send" }, queue)
}

/// A MAC written as DPDK writes it (`AA:BB:CC:DD:EE:FF`), without allocating.
pub struct MacFmt(pub [u8; 6]);

impl std::fmt::Display for MacFmt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let m = self.0;
        write!(f, "{:02X}:{:02X}:{:02X}:{:02X}:{:02X}:{:02X}", m[0], m[1], m[2], m[3], m[4], m[5])
    }
}

/// A forwarding core's loop: `tx_first` txonly bursts on each stream, then the mode on every
/// stream in turn until `stop` is set.
pub fn lcore_loop(streams: &mut [Stream], p: &FwdParams, stop: &AtomicBool, tx_first: u32) {
    let mut buf = Pkts::new();
    for _ in 0..tx_first {
        for s in streams.iter_mut() {
            s.tx_first(p, &mut buf);
        }
    }
    while !stop.load(Ordering::Relaxed) {
        for s in streams.iter_mut() {
            s.forward(p, &mut buf);
        }
    }
    // Nothing stays in the burst buffer between bursts; this is for certainty.
    buf.free_all();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_names_round_trip() {
        for m in FwdMode::ALL {
            assert_eq!(m.name().parse::<FwdMode>(), Ok(m));
        }
        let e = "bogus".parse::<FwdMode>().unwrap_err();
        assert!(e.contains("io, mac, macswap, flowgen, rxonly, txonly, icmpecho, 5tswap"), "{e}");
        assert!(FwdMode::TxOnly.counts_tx() && FwdMode::FlowGen.counts_tx());
        assert!(!FwdMode::Io.counts_tx());
    }
}
