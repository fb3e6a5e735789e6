//! Forwarding topology: which port each port's packets go out of, the streams (one per RX port
//! and queue), and how streams are spread over the forwarding cores, all as DPDK's testpmd does
//! (`rss_fwd_config_setup`, `setup_fwd_config_of_each_lcore`).

use std::ops::Range;
use std::str::FromStr;

/// How ports are paired (`--port-topology`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topology {
    /// 0<->1, 2<->3, ...; an odd last port forwards to itself.
    Paired,
    /// 0->1->2->...->0.
    Chained,
    /// Every port to itself.
    Loop,
}

impl FromStr for Topology {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "paired" => Ok(Topology::Paired),
            "chained" => Ok(Topology::Chained),
            "loop" => Ok(Topology::Loop),
            _ => Err(format!("expected paired, chained or loop, got '{s}'")),
        }
    }
}

/// The port (index) that packets received on port `rxp` go out of.
pub fn tx_port_of(rxp: usize, nb_ports: usize, topo: Topology) -> usize {
    match topo {
        Topology::Paired if rxp % 2 == 0 => {
            if rxp + 1 < nb_ports {
                rxp + 1
            } else {
                rxp
            }
        }
        Topology::Paired => rxp - 1,
        Topology::Chained => (rxp + 1) % nb_ports.max(1),
        Topology::Loop => rxp,
    }
}

/// One forwarding stream: what one RX queue's packets do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamSpec {
    /// RX port (index).
    pub rx_port: u16,
    /// RX queue.
    pub rx_queue: u16,
    /// TX port (index).
    pub tx_port: u16,
    /// TX queue.
    pub tx_queue: u16,
}

/// The streams of `nb_ports` ports with `nb_q` queues each (the smaller of the RX and TX queue
/// counts): queue-major, as DPDK numbers them, so stream `q * nb_ports + p` is port `p`, queue
/// `q`. Each TX queue is used by exactly one stream.
pub fn streams(nb_ports: usize, nb_q: u16, topo: Topology) -> Vec<StreamSpec> {
    let mut v = Vec::with_capacity(nb_ports * nb_q as usize);
    for q in 0..nb_q {
        for p in 0..nb_ports {
            v.push(StreamSpec {
                rx_port: p as u16,
                rx_queue: q,
                tx_port: tx_port_of(p, nb_ports, topo) as u16,
                tx_queue: q,
            });
        }
    }
    v
}

/// Spreads `nb_streams` streams over at most `nb_cores` cores: consecutive runs, the last cores
/// taking one more when it does not divide evenly. Fewer cores are used than asked when there
/// are fewer streams.
pub fn spread(nb_streams: usize, nb_cores: usize) -> Vec<Range<usize>> {
    let cores = nb_cores.min(nb_streams).max(1);
    if nb_streams == 0 {
        return Vec::new();
    }
    let per = nb_streams / cores;
    let extra = nb_streams % cores;
    let mut out = Vec::with_capacity(cores);
    let mut at = 0;
    for c in 0..cores {
        let n = if c < cores - extra { per } else { per + 1 };
        out.push(at..at + n);
        at += n;
    }
    out
}

/// Parses an lcore list: `0,1`, `0-3`, `1-3,6`. Sorted, no duplicates.
pub fn parse_lcores(s: &str) -> Result<Vec<usize>, String> {
    let mut v = Vec::new();
    let bad = |why: &str| format!("expected a list of CPUs such as 0,1 or 0-3, got '{s}': {why}");
    for part in s.split(',') {
        let part = part.trim();
        let num = |x: &str| -> Result<usize, String> {
            x.trim().parse::<usize>().map_err(|_| bad(&format!("'{x}' is not a CPU number")))
        };
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (num(a)?, num(b)?);
                if a > b {
                    return Err(bad(&format!("range {a}-{b} goes backwards")));
                }
                v.extend(a..=b);
            }
            None => v.push(num(part)?),
        }
    }
    if let Some(c) = v.iter().find(|&&c| c >= 1024) {
        return Err(bad(&format!("CPU {c} is out of range")));
    }
    v.sort_unstable();
    v.dedup();
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topologies_pair_chain_and_loop_like_dpdk() {
        let t = |n, topo| (0..n).map(|p| tx_port_of(p, n, topo)).collect::<Vec<_>>();
        assert_eq!(t(2, Topology::Paired), [1, 0]);
        assert_eq!(t(4, Topology::Paired), [1, 0, 3, 2]);
        assert_eq!(t(3, Topology::Paired), [1, 0, 2]);
        assert_eq!(t(1, Topology::Paired), [0]);
        assert_eq!(t(3, Topology::Chained), [1, 2, 0]);
        assert_eq!(t(2, Topology::Loop), [0, 1]);
    }

    #[test]
    fn streams_are_queue_major_and_use_each_tx_queue_once() {
        let s = streams(2, 2, Topology::Paired);
        let got: Vec<_> =
            s.iter().map(|s| (s.rx_port, s.rx_queue, s.tx_port, s.tx_queue)).collect();
        assert_eq!(got, [(0, 0, 1, 0), (1, 0, 0, 0), (0, 1, 1, 1), (1, 1, 0, 1)]);
        for topo in [Topology::Paired, Topology::Chained, Topology::Loop] {
            let s = streams(3, 4, topo);
            let mut tx: Vec<_> = s.iter().map(|s| (s.tx_port, s.tx_queue)).collect();
            tx.sort_unstable();
            tx.dedup();
            assert_eq!(tx.len(), 12, "{topo:?}");
        }
    }

    #[test]
    fn spreading_gives_the_last_cores_the_extra_streams() {
        assert_eq!(spread(2, 1), vec![std::ops::Range { start: 0, end: 2 }]);
        assert_eq!(spread(4, 2), [0..2, 2..4]);
        assert_eq!(spread(5, 2), [0..2, 2..5]);
        assert_eq!(spread(7, 3), [0..2, 2..4, 4..7]);
        assert_eq!(spread(2, 4), [0..1, 1..2]);
        assert!(spread(0, 2).is_empty());
    }

    #[test]
    fn lcore_lists() {
        assert_eq!(parse_lcores("0,1").unwrap(), [0, 1]);
        assert_eq!(parse_lcores("1-3,6").unwrap(), [1, 2, 3, 6]);
        assert_eq!(parse_lcores("3,1,1").unwrap(), [1, 3]);
        assert!(parse_lcores("3-1").unwrap_err().contains("backwards"));
        assert!(parse_lcores("a").unwrap_err().contains("'a' is not a CPU number"));
        assert!(parse_lcores("").is_err());
        assert!(parse_lcores("5000").unwrap_err().contains("out of range"));
    }
}
