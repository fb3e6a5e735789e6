//! Statistics in dpdk-testpmd's formats (DPDK 22.11, copied from its output), as pure functions
//! over numbers, so the formats are tested and parsers written for DPDK (LISA's `Rx-pps:` and
//! `TX-packets:` regexes, for one) read ours unchanged.

use std::fmt::Write as _;
use std::time::Instant;

use pmd_ethdev::PortStats;

use crate::topo::StreamSpec;

const NIC_BORDER: &str = "########################";
const FWD_BORDER: &str = "----------------------";
const ACC_BORDER: &str = "+++++++++++++++";
const STREAM_BORDER: &str = "-------";

/// Throughput since the previous show of a port.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rates {
    /// Packets received per second.
    pub rx_pps: u64,
    /// Bits received per second (frame bytes x 8, no preamble).
    pub rx_bps: u64,
    /// Packets sent per second.
    pub tx_pps: u64,
    /// Bits sent per second.
    pub tx_bps: u64,
}

/// The previous show of each port, for "Throughput (since last show)".
#[derive(Debug, Default)]
pub struct RateTracker {
    prev: Vec<Option<(Instant, PortStats)>>,
}

impl RateTracker {
    /// The rates of port `port` now that its counters are `s` (0 on its first show, as DPDK).
    pub fn update(&mut self, port: usize, s: &PortStats, now: Instant) -> Rates {
        if self.prev.len() <= port {
            self.prev.resize(port + 1, None);
        }
        let r = match &self.prev[port] {
            Some((t, p)) => {
                let ns = now.duration_since(*t).as_nanos() as f64;
                let per_s = |cur: u64, old: u64| {
                    if ns > 0.0 && cur > old { ((cur - old) as f64 / ns * 1e9) as u64 } else { 0 }
                };
                Rates {
                    rx_pps: per_s(s.ipackets, p.ipackets),
                    rx_bps: per_s(s.ibytes, p.ibytes) * 8,
                    tx_pps: per_s(s.opackets, p.opackets),
                    tx_bps: per_s(s.obytes, p.obytes) * 8,
                }
            }
            None => Rates::default(),
        };
        self.prev[port] = Some((now, s.clone()));
        r
    }
}

/// The screen clear and home sequence `print_stats` starts with.
pub const CLEAR_SCREEN: &str = "\x1b[2J\x1b[1;1H";

/// The line `--stats-period` prints before the ports' blocks.
pub const PORT_STATS_HEADER: &str = "\nPort statistics ====================================";

/// The block of `show port stats N` and of `--stats-period` (DPDK's `nic_stats_display`).
pub fn nic_stats_block(port: u16, s: &PortStats, r: &Rates) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "\n  {NIC_BORDER} NIC statistics for port {port:<2} {NIC_BORDER}");
    let _ = writeln!(
        o,
        "  RX-packets: {:<10} RX-missed: {:<10} RX-bytes:  {}",
        s.ipackets, s.imissed, s.ibytes
    );
    let _ = writeln!(o, "  RX-errors: {}", s.ierrors);
    let _ = writeln!(o, "  RX-nombuf:  {:<10}", s.rx_nombuf);
    let _ = writeln!(
        o,
        "  TX-packets: {:<10} TX-errors: {:<10} TX-bytes:  {}",
        s.opackets, s.oerrors, s.obytes
    );
    let _ = writeln!(o, "\n  Throughput (since last show)");
    let _ = writeln!(o, "  Rx-pps: {:>12}          Rx-bps: {:>12}", r.rx_pps, r.rx_bps);
    let _ = writeln!(o, "  Tx-pps: {:>12}          Tx-bps: {:>12}", r.tx_pps, r.tx_bps);
    let _ = writeln!(o, "  {NIC_BORDER}############################{NIC_BORDER}");
    o
}

/// One port's numbers for the forward statistics (deltas since forwarding started).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FwdPortStats {
    /// Packets received.
    pub rx_packets: u64,
    /// Packets the device dropped for want of buffers (`imissed`).
    pub rx_dropped: u64,
    /// Receive errors.
    pub rx_errors: u64,
    /// Refills that found the pool empty.
    pub rx_nombuf: u64,
    /// Packets sent.
    pub tx_packets: u64,
    /// Packets not sent: refused by the TX queue (forwarding drops) plus TX errors.
    pub tx_dropped: u64,
}

impl FwdPortStats {
    /// Adds another port's numbers.
    pub fn add(&mut self, o: &FwdPortStats) {
        self.rx_packets += o.rx_packets;
        self.rx_dropped += o.rx_dropped;
        self.rx_errors += o.rx_errors;
        self.rx_nombuf += o.rx_nombuf;
        self.tx_packets += o.tx_packets;
        self.tx_dropped += o.tx_dropped;
    }
}

/// A stream's block at stop, printed when there are more streams than ports (nothing when the
/// stream moved nothing).
pub fn fwd_stream_block(
    s: &StreamSpec,
    ports: (u16, u16),
    rx: u64,
    tx: u64,
    dropped: u64,
) -> String {
    if rx == 0 && tx == 0 && dropped == 0 {
        return String::new();
    }
    let mut o = String::new();
    let _ = writeln!(
        o,
        "\n  {STREAM_BORDER} Forward Stats for RX Port={:>2}/Queue={:>2} -> TX Port={:>2}/Queue={:>2} \
         {STREAM_BORDER}",
        ports.0, s.rx_queue, ports.1, s.tx_queue
    );
    let _ = writeln!(o, "  RX-packets: {rx:<14} TX-packets: {tx:<14} TX-dropped: {dropped:<14}");
    o
}

/// A port's block at stop (`Forward statistics for port N`).
pub fn fwd_port_block(port: u16, s: &FwdPortStats) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "\n  {FWD_BORDER} Forward statistics for port {port:<2} {FWD_BORDER}");
    let _ = writeln!(
        o,
        "  RX-packets: {:<14} RX-dropped: {:<14}RX-total: {}",
        s.rx_packets,
        s.rx_dropped,
        s.rx_packets + s.rx_dropped
    );
    if s.rx_errors + s.rx_nombuf > 0 {
        let _ = writeln!(o, "  RX-error: {}", s.rx_errors);
        let _ = writeln!(o, "  RX-nombufs: {:<14}", s.rx_nombuf);
    }
    let _ = writeln!(
        o,
        "  TX-packets: {:<14} TX-dropped: {:<14}TX-total: {}",
        s.tx_packets,
        s.tx_dropped,
        s.tx_packets + s.tx_dropped
    );
    let _ = writeln!(o, "  {FWD_BORDER}--------------------------------{FWD_BORDER}");
    o
}

/// The accumulated block at stop.
pub fn accumulated_block(t: &FwdPortStats) -> String {
    let mut o = String::new();
    let _ =
        writeln!(o, "\n  {ACC_BORDER} Accumulated forward statistics for all ports{ACC_BORDER}");
    let _ = writeln!(
        o,
        "  RX-packets: {:<14} RX-dropped: {:<14}RX-total: {}",
        t.rx_packets,
        t.rx_dropped,
        t.rx_packets + t.rx_dropped
    );
    let _ = writeln!(
        o,
        "  TX-packets: {:<14} TX-dropped: {:<14}TX-total: {}",
        t.tx_packets,
        t.tx_dropped,
        t.tx_packets + t.tx_dropped
    );
    if t.rx_nombuf > 0 {
        let _ = writeln!(o, "  RX-nombufs: {:<14}", t.rx_nombuf);
    }
    let _ = writeln!(o, "  {ACC_BORDER}++++++++++++++++++++++++++++++++++++++++++++++{ACC_BORDER}");
    o
}

/// The `--record-core-cycles` line (nothing when no packet moved).
pub fn core_cycles_line(cycles: u64, mode: &str, packets: u64, hz: u64) -> String {
    if packets == 0 {
        return String::new();
    }
    format!(
        "\n  CPU cycles/packet={:.2} (total cycles={cycles} / total {mode} packets={packets}) at {} \
         MHz Clock\n",
        cycles as f64 / packets as f64,
        hz / 1_000_000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Blocks printed by dpdk-testpmd 22.11 (`--vdev=net_null0 --vdev=net_null1`), copied from its
    /// output; ours must match them byte for byte.
    const DPDK_NIC_BLOCK: &str = "
  ######################## NIC statistics for port 0  ########################
  RX-packets: 30653056   RX-missed: 0          RX-bytes:  0
  RX-errors: 0
  RX-nombuf:  0         
  TX-packets: 30275168   TX-errors: 0          TX-bytes:  0

  Throughput (since last show)
  Rx-pps:     30269676          Rx-bps:            0
  Tx-pps:     30269676          Tx-bps:            0
  ############################################################################
";

    const DPDK_FWD_BLOCKS: &str = "
  ---------------------- Forward statistics for port 0  ----------------------
  RX-packets: 92017152       RX-dropped: 0             RX-total: 92017152
  TX-packets: 92017152       TX-dropped: 0             TX-total: 92017152
  ----------------------------------------------------------------------------

  +++++++++++++++ Accumulated forward statistics for all ports+++++++++++++++
  RX-packets: 184034304      RX-dropped: 0             RX-total: 184034304
  TX-packets: 184034304      TX-dropped: 0             TX-total: 184034304
  ++++++++++++++++++++++++++++++++++++++++++++++++++++++++++++++++++++++++++++

  CPU cycles/packet=40.97 (total cycles=7539155313 / total io packets=184034304) at 2600 MHz Clock
";

    const DPDK_STREAM_BLOCK: &str = "
  ------- Forward Stats for RX Port= 0/Queue= 1 -> TX Port= 1/Queue= 1 -------
  RX-packets: 1376           TX-packets: 1408           TX-dropped: 0             
";

    #[test]
    fn nic_block_matches_dpdk() {
        let s = PortStats { ipackets: 30653056, opackets: 30275168, ..PortStats::default() };
        let r = Rates { rx_pps: 30269676, tx_pps: 30269676, ..Rates::default() };
        assert_eq!(nic_stats_block(0, &s, &r), DPDK_NIC_BLOCK);
    }

    #[test]
    fn forward_blocks_and_cycles_match_dpdk() {
        let p = FwdPortStats { rx_packets: 92017152, tx_packets: 92017152, ..Default::default() };
        let mut t = FwdPortStats::default();
        t.add(&p);
        t.add(&p);
        let out = fwd_port_block(0, &p)
            + &accumulated_block(&t)
            + &core_cycles_line(7539155313, "io", 184034304, 2_600_000_000);
        assert_eq!(out, DPDK_FWD_BLOCKS);
        let spec = StreamSpec { rx_port: 0, rx_queue: 1, tx_port: 1, tx_queue: 1 };
        assert_eq!(fwd_stream_block(&spec, (0, 1), 1376, 1408, 0), DPDK_STREAM_BLOCK);
        assert_eq!(fwd_stream_block(&spec, (0, 1), 0, 0, 0), "");
        assert_eq!(core_cycles_line(5, "io", 0, 1), "");
    }

    #[test]
    fn errors_and_nombufs_show_only_when_nonzero() {
        let p = FwdPortStats { rx_packets: 5, rx_nombuf: 2, tx_dropped: 3, ..Default::default() };
        let b = fwd_port_block(3, &p);
        assert!(b.contains("  RX-error: 0\n  RX-nombufs: 2             \n"), "{b}");
        assert!(b.contains("TX-dropped: 3             TX-total: 3\n"), "{b}");
        assert!(accumulated_block(&p).contains("  RX-nombufs: 2 "));
        assert!(!fwd_port_block(3, &FwdPortStats::default()).contains("RX-error"));
        assert!(!accumulated_block(&FwdPortStats::default()).contains("RX-nombufs"));
    }

    #[test]
    fn rates_are_deltas_over_time() {
        let mut t = RateTracker::default();
        let t0 = Instant::now();
        let s0 = PortStats {
            ipackets: 100,
            ibytes: 6400,
            opackets: 50,
            obytes: 3200,
            ..Default::default()
        };
        assert_eq!(t.update(1, &s0, t0), Rates::default(), "first show: zero, as DPDK");
        let s1 = PortStats {
            ipackets: 600,
            ibytes: 38400,
            opackets: 50,
            obytes: 3200,
            ..Default::default()
        };
        let r = t.update(1, &s1, t0 + std::time::Duration::from_millis(500));
        assert_eq!(r, Rates { rx_pps: 1000, rx_bps: 512_000, tx_pps: 0, tx_bps: 0 });
        // Counters that went down (a reset) give 0, not a wrapped number.
        let r = t.update(1, &s0, t0 + std::time::Duration::from_secs(1));
        assert_eq!(r, Rates::default());
    }
}
