//! The application: ports and pool set up from a [`Config`], forwarding started and stopped on
//! pinned cores, statistics shown, commands run, everything closed at the end.
//!
//! The main thread owns the ports, the pool and, while forwarding is stopped, the streams (with
//! their queue handles). `start` hands each forwarding core its streams; `stop` joins the cores
//! and takes the streams back, so queue handles are taken once for the whole run.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pmd_ethdev::conf::{ErrHandleMode, rx_offload, tx_offload};
use pmd_ethdev::{
    EthError, Event, EventType, Port, PortConf, PortPhase, PortStats, Registry, RssConf,
};
use pmd_mempool::{Audit, HugePolicy, MbufPool, MbufPoolConfig, MempoolError};

use crate::cmd::{self, CmdError, Command, PortSel, RSS_TYPES};
use crate::fwd::{FwdMode, FwdParams, MacFmt, Stream, StreamStats, lcore_loop};
use crate::opts::Config;
use crate::stats::{
    self, FwdPortStats, RateTracker, accumulated_block, core_cycles_line, fwd_port_block,
    fwd_stream_block, nic_stats_block,
};
use crate::topo::{StreamSpec, spread, streams};

/// The pool's name, as DPDK names its first pool.
pub const POOL_NAME: &str = "mb_pool_0";
/// Per-lcore mbuf cache (DPDK's `DEF_MBUF_CACHE`).
const MBUF_CACHE: u32 = 250;

/// Why the application could not run (or did not end cleanly).
#[derive(Debug)]
pub enum AppError {
    /// The lcores given cannot run the configuration.
    Lcores(String),
    /// A probe string was refused.
    Probe(EthError),
    /// A port operation failed during setup or shutdown.
    Port {
        /// The operation, DPDK's words ("configure", "rx queue setup", ...).
        op: &'static str,
        /// The error (it names the port).
        source: EthError,
    },
    /// An option does not fit the ports (queues, --eth-peer).
    Config(String),
    /// The mbuf pool could not be made.
    Pool(MempoolError),
    /// A forwarding core died.
    Core(String),
    /// Mbufs were still out of the pool after the ports closed.
    Leak(Audit),
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AppError::Lcores(why) => write!(f, "lcores: {why}"),
            AppError::Probe(e) => write!(f, "{e}"),
            AppError::Port { op, source } => write!(f, "{op} failed: {source}"),
            AppError::Config(why) => write!(f, "{why}"),
            AppError::Pool(e) => write!(f, "cannot create mbuf pool {POOL_NAME}: {e}"),
            AppError::Core(why) => write!(f, "{why}"),
            AppError::Leak(a) => {
                write!(f, "mbuf pool {POOL_NAME}: {} mbufs not returned ({a})", a.in_use())
            }
        }
    }
}

impl std::error::Error for AppError {}

fn port_err(op: &'static str) -> impl FnOnce(EthError) -> AppError {
    move |source| AppError::Port { op, source }
}

/// DPDK's words for an event (`eth_event_desc`).
pub fn event_desc(kind: EventType) -> &'static str {
    match kind {
        EventType::LinkChange => "link state change",
        EventType::IntrRmv => "device removal",
        EventType::ErrRecovering => "error recovering",
        EventType::RecoverySuccess => "error recovery successful",
        EventType::RecoveryFailed => "error recovery failed",
        EventType::QueueError => "queue state",
    }
}

/// The line printed for an event, as DPDK's `eth_event_callback` prints it.
pub fn event_line(ev: &Event) -> String {
    let mut s = format!("\nPort {}: {} event", ev.port, event_desc(ev.kind));
    if let Some(q) = ev.queue {
        s.push_str(&format!(" (queue {q})"));
    }
    if !ev.detail.is_empty() {
        s.push_str(&format!(": {}", ev.detail));
    }
    s
}

/// The forwarding lcores and the main one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lcores {
    /// The main lcore (prompt, statistics, and the ports' own threads).
    pub main: usize,
    /// The forwarding lcores, in order.
    pub fwd: Vec<usize>,
}

/// The lcores from `-l` (first is main) or, without it, every CPU this process may use.
pub fn lcores(given: Option<&[usize]>, available: &[usize]) -> Result<Lcores, String> {
    match given {
        Some(l) => match l {
            [] => Err("no lcore given".into()),
            [_] => Err(format!(
                "-l {}: testpmd needs two lcores at least, the main one and a forwarding one",
                l[0]
            )),
            [main, fwd @ ..] => Ok(Lcores { main: *main, fwd: fwd.to_vec() }),
        },
        None => match available {
            [] => Ok(Lcores { main: 0, fwd: vec![0] }),
            // One CPU: the main lcore mostly sleeps, so the forwarding core may share it.
            [only] => Ok(Lcores { main: *only, fwd: vec![*only] }),
            [main, fwd @ ..] => Ok(Lcores { main: *main, fwd: fwd.to_vec() }),
        },
    }
}

/// Mbufs enough for every queue, the cores' caches and bursts in flight (DPDK computes its own
/// larger default the same way).
pub fn default_mbufs(nb_ports: usize, rxq: u16, txq: u16, rxd: u16, txd: u16, cores: usize) -> u32 {
    let per_port = rxq as usize * (rxd as usize + 1024) + txq as usize * txd as usize;
    let n = nb_ports * per_port
        + (cores + 2) * (MBUF_CACHE as usize * 3 / 2 + pmd_ethdev::MAX_PKT_BURST)
        + 4096;
    n.clamp(8192, 1 << 24) as u32
}

struct Running {
    stop: Arc<AtomicBool>,
    cores: Vec<(usize, JoinHandle<Vec<Stream>>)>,
    base: Vec<PortStats>,
    stats: Vec<(StreamSpec, (u16, u16), Arc<StreamStats>)>,
    mode: FwdMode,
}

/// The running application.
pub struct App {
    cfg: Config,
    ports: Vec<Port>,
    pool: MbufPool,
    lcores: Lcores,
    specs: Vec<StreamSpec>,
    idle: Vec<Stream>,
    running: Option<Running>,
    mode: FwdMode,
    burst: usize,
    verbose: Arc<AtomicU8>,
    rates: RateTracker,
    peers: Vec<[u8; 6]>,
    descs: Vec<(u16, u16)>,
    tsc_hz: u64,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "App({} ports, {} streams)", self.ports.len(), self.specs.len())
    }
}

fn flush() {
    let _ = std::io::stdout().flush();
}

impl App {
    /// Probes the ports, makes the pool, configures and starts every port, takes the queue
    /// handles.
    pub fn setup(cfg: Config) -> Result<Self, AppError> {
        let available: Vec<usize> = core_affinity::get_core_ids()
            .map(|v| v.into_iter().map(|c| c.id).collect())
            .unwrap_or_default();
        let lcores = lcores(cfg.lcores.as_deref(), &available).map_err(AppError::Lcores)?;
        if cfg.nb_cores as usize > lcores.fwd.len() {
            return Err(AppError::Lcores(format!(
                "--nb-cores {}: only {} forwarding lcore{} ({}); give more with -l",
                cfg.nb_cores,
                lcores.fwd.len(),
                if lcores.fwd.len() == 1 { "" } else { "s" },
                lcores.fwd.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(",")
            )));
        }
        // The main thread runs on the main lcore, as DPDK's does; the threads ports start (the
        // emulated device, the drivers' control workers) inherit its CPU, so they stay off the
        // forwarding cores instead of being scheduled against a busy-polling core.
        if !core_affinity::set_for_current(core_affinity::CoreId { id: lcores.main }) {
            eprintln!("testpmd: warning: could not pin the main lcore to CPU {}", lcores.main);
        }
        let mut reg = Registry::new();
        reg.add(Box::new(mana_pmd::ManaFactory::new()));
        let mut ports = Vec::new();
        for spec in cfg.probe_strings() {
            ports.extend(reg.probe(&spec).map_err(AppError::Probe)?);
        }
        let nb_ports = ports.len();
        for (p, _) in &cfg.eth_peers {
            if *p as usize >= nb_ports {
                return Err(AppError::Config(format!(
                    "--eth-peer: port {p} does not exist ({nb_ports} port{})",
                    if nb_ports == 1 { "" } else { "s" }
                )));
            }
        }
        for p in &ports {
            let i = p.info();
            if cfg.rxq > i.max_rx_queues || cfg.txq > i.max_tx_queues {
                return Err(AppError::Config(format!(
                    "--rxq {} --txq {}: port {} ({}) has at most {} RX and {} TX queues",
                    cfg.rxq,
                    cfg.txq,
                    p.id(),
                    i.driver,
                    i.max_rx_queues,
                    i.max_tx_queues
                )));
            }
        }
        let descs: Vec<(u16, u16)> = ports
            .iter()
            .map(|p| {
                let d = p.info().default_desc;
                (if cfg.rxd == 0 { d.0 } else { cfg.rxd }, if cfg.txd == 0 { d.1 } else { cfg.txd })
            })
            .collect();
        let max_rxd = descs.iter().map(|d| d.0).max().unwrap_or(1024);
        let max_txd = descs.iter().map(|d| d.1).max().unwrap_or(1024);
        let n = cfg.total_num_mbufs.unwrap_or_else(|| {
            default_mbufs(nb_ports, cfg.rxq, cfg.txq, max_rxd, max_txd, lcores.fwd.len())
        });
        let mut pc = MbufPoolConfig::new(POOL_NAME, n);
        pc.cache_size = MBUF_CACHE;
        pc.data_room = cfg.mbuf_size - pmd_mempool::mbuf::MBUF_HEADROOM;
        pc.huge = if cfg.no_huge { HugePolicy::Never } else { HugePolicy::Prefer };
        println!(
            "testpmd: create a new mbuf pool <{POOL_NAME}>: n={n}, size={}, socket=0",
            cfg.mbuf_size
        );
        let pool = MbufPool::with_config(&pc).map_err(AppError::Pool)?;
        let mut peers: Vec<[u8; 6]> = (0..nb_ports).map(|i| [2, 0, 0, 0, 0, i as u8]).collect();
        for (p, m) in &cfg.eth_peers {
            peers[*p as usize] = *m;
        }
        for (p, d) in ports.iter().zip(&descs) {
            println!("Configuring Port {} (socket 0)", p.id());
            // Every event type, from the start (DPDK's testpmd registers its callback for each).
            p.on_event(
                None,
                Arc::new(|ev: &Event| {
                    println!("{}", event_line(ev));
                    flush();
                }),
            );
            setup_port(p, &cfg, &pool, *d)?;
            println!("Port {}: {}", p.id(), MacFmt(p.mac()));
        }
        println!("Checking link statuses...");
        println!("Done");
        let burst = match cfg.burst {
            0 => ports.first().map_or(32, |p| p.info().default_burst.max(1)) as usize,
            b => b as usize,
        };
        let nb_q = cfg.rxq.min(cfg.txq);
        let specs = streams(nb_ports, nb_q, cfg.topology);
        let mut idle = Vec::with_capacity(specs.len());
        for s in &specs {
            let (rp, tp) = (&ports[s.rx_port as usize], &ports[s.tx_port as usize]);
            let rxq = rp.rx_queue(s.rx_queue).map_err(port_err("rx queue"))?;
            let txq = tp.tx_queue(s.tx_queue).map_err(port_err("tx queue"))?;
            idle.push(Stream::new(
                *s,
                (rp.id(), tp.id()),
                rxq,
                txq,
                tp.mac(),
                peers[s.tx_port as usize],
                pool.clone(),
                cfg.txpkts,
            ));
        }
        let tsc_hz = if cfg.record_core_cycles { pmd_mempool::tsc::hz() } else { 0 };
        Ok(App {
            mode: cfg.mode,
            verbose: Arc::new(AtomicU8::new(cfg.verbose)),
            cfg,
            ports,
            pool,
            lcores,
            specs,
            idle,
            running: None,
            burst,
            rates: RateTracker::default(),
            peers,
            descs,
            tsc_hz,
        })
    }

    /// The ports.
    pub fn ports(&self) -> &[Port] {
        &self.ports
    }

    /// Whether forwarding is running.
    pub fn forwarding(&self) -> bool {
        self.running.is_some()
    }

    fn nb_cores(&self) -> usize {
        (self.cfg.nb_cores as usize).min(self.specs.len()).max(1)
    }

    /// DPDK's `fwd_config_display`.
    pub fn fwd_config_text(&self) -> String {
        let mut o = String::new();
        let ranges = spread(self.specs.len(), self.cfg.nb_cores as usize);
        o.push_str(&format!(
            "{} packet forwarding - ports={} - cores={} - streams={} - NUMA support disabled, MP \
             allocation mode: native\n",
            self.mode.name(),
            self.ports.len(),
            ranges.len(),
            self.specs.len()
        ));
        for (c, r) in ranges.iter().enumerate() {
            o.push_str(&format!(
                "Logical Core {} (socket 0) forwards packets on {} streams:\n",
                self.lcores.fwd[c],
                r.len()
            ));
            for s in &self.specs[r.clone()] {
                o.push_str(&format!(
                    "  RX P={}/Q={} (socket 0) -> TX P={}/Q={} (socket 0) peer={}\n",
                    self.ports[s.rx_port as usize].id(),
                    s.rx_queue,
                    self.ports[s.tx_port as usize].id(),
                    s.tx_queue,
                    MacFmt(self.peers[s.tx_port as usize])
                ));
            }
        }
        o
    }

    fn rxtx_config_text(&self) -> String {
        let mut o = format!(
            "\n  {} packet forwarding packets/burst={}\n  nb forwarding cores={} - nb forwarding \
             ports={}\n",
            self.mode.name(),
            self.burst,
            self.nb_cores(),
            self.ports.len()
        );
        for (p, d) in self.ports.iter().zip(&self.descs) {
            let (rxq, txq) = p.nb_queues();
            let c = p.conf();
            o.push_str(&format!(
                "  port {}: RX queue number: {rxq} Tx queue number: {txq}\n    Rx offloads={:#x} \
                 Tx offloads={:#x}\n    RX queue: 0\n      RX desc={} - RX free threshold=0\n    \
                 TX queue: 0\n      TX desc={} - TX free threshold=0\n",
                p.id(),
                c.rx_offloads,
                c.tx_offloads,
                d.0,
                d.1
            ));
        }
        o
    }

    /// Starts forwarding (`start`, `start tx_first N`).
    pub fn start(&mut self, tx_first: u32) -> Result<(), AppError> {
        if self.running.is_some() {
            println!("Packet forwarding already started");
            return Ok(());
        }
        if let Some(p) = self.ports.iter().find(|p| p.phase() != PortPhase::Started) {
            println!("Not all ports were started (port {} is not)", p.id());
            return Ok(());
        }
        print!("{}", self.fwd_config_text());
        print!("{}", self.rxtx_config_text());
        flush();
        let base: Vec<PortStats> =
            self.ports.iter().map(|p| p.stats().unwrap_or_default()).collect();
        let params = Arc::new(FwdParams {
            mode: self.mode,
            burst: self.burst,
            txpkts: self.cfg.txpkts,
            multi_flow: self.cfg.txonly_multi_flow,
            flows: self.cfg.flowgen_flows,
            record_cycles: self.cfg.record_core_cycles,
            verbose: self.verbose.clone(),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let mut stats = Vec::with_capacity(self.idle.len());
        for s in &mut self.idle {
            s.reset_stats();
            stats.push((s.spec, s.ports, s.stats.clone()));
        }
        let mut all = std::mem::take(&mut self.idle).into_iter();
        let mut cores = Vec::new();
        for (c, r) in spread(self.specs.len(), self.cfg.nb_cores as usize).into_iter().enumerate() {
            let cpu = self.lcores.fwd[c];
            let mut mine: Vec<Stream> = all.by_ref().take(r.len()).collect();
            for s in &mut mine {
                s.lcore = cpu as u8;
            }
            let (params, stop) = (params.clone(), stop.clone());
            let h = std::thread::Builder::new()
                .name(format!("lcore-{cpu}"))
                .spawn(move || {
                    if !core_affinity::set_for_current(core_affinity::CoreId { id: cpu }) {
                        eprintln!(
                            "testpmd: warning: could not pin the forwarding core to CPU {cpu}"
                        );
                    }
                    lcore_loop(&mut mine, &params, &stop, tx_first);
                    mine
                })
                .map_err(|e| AppError::Core(format!("cannot start lcore {cpu}: {e}")))?;
            cores.push((cpu, h));
        }
        self.running = Some(Running { stop, cores, base, stats, mode: self.mode });
        Ok(())
    }

    /// Stops forwarding and prints the forward statistics (`stop`).
    pub fn stop(&mut self) -> Result<(), AppError> {
        let Some(run) = self.running.take() else {
            println!("Packet forwarding not started");
            return Ok(());
        };
        println!("Telling cores to stop...");
        run.stop.store(true, Ordering::Relaxed);
        println!("Waiting for lcores to finish...");
        let mut failed = None;
        for (cpu, h) in run.cores {
            match h.join() {
                Ok(mut v) => self.idle.append(&mut v),
                Err(_) => failed = Some(cpu),
            }
        }
        print!("{}", self.fwd_stats_text(&run.base, &run.stats, run.mode));
        println!("\nDone.");
        flush();
        match failed {
            Some(cpu) => Err(AppError::Core(format!("the forwarding core on lcore {cpu} failed"))),
            None => Ok(()),
        }
    }

    /// DPDK's `fwd_stats_display`: per stream (when there are more streams than ports), per port,
    /// accumulated, and the cycles line.
    fn fwd_stats_text(
        &self,
        base: &[PortStats],
        streams: &[(StreamSpec, (u16, u16), Arc<StreamStats>)],
        mode: FwdMode,
    ) -> String {
        let mut o = String::new();
        let mut fwd_dropped = vec![0u64; self.ports.len()];
        let mut cycles = 0u64;
        for (spec, ids, st) in streams {
            if streams.len() > self.ports.len() {
                o.push_str(&fwd_stream_block(
                    spec,
                    *ids,
                    st.rx_packets.get(),
                    st.tx_packets.get(),
                    st.fwd_dropped.get(),
                ));
            }
            fwd_dropped[spec.tx_port as usize] += st.fwd_dropped.get();
            cycles += st.busy_cycles.get();
        }
        let mut total = FwdPortStats::default();
        for (i, p) in self.ports.iter().enumerate() {
            let s = p.stats().unwrap_or_default().since(&base[i]);
            let f = FwdPortStats {
                rx_packets: s.ipackets,
                rx_dropped: s.imissed,
                rx_errors: s.ierrors,
                rx_nombuf: s.rx_nombuf,
                tx_packets: s.opackets,
                tx_dropped: fwd_dropped[i] + s.oerrors,
            };
            total.add(&f);
            o.push_str(&fwd_port_block(p.id(), &f));
        }
        o.push_str(&accumulated_block(&total));
        if self.cfg.record_core_cycles {
            let pkts = if mode.counts_tx() { total.tx_packets } else { total.rx_packets };
            o.push_str(&core_cycles_line(cycles, mode.name(), pkts, self.tsc_hz));
        }
        o
    }

    fn selected(&self, sel: PortSel) -> Option<Vec<Port>> {
        match sel {
            PortSel::All => Some(self.ports.clone()),
            PortSel::One(id) => match self.ports.iter().find(|p| p.id() == id) {
                Some(p) => Some(vec![p.clone()]),
                None => {
                    println!("Invalid port {id}");
                    None
                }
            },
        }
    }

    /// The periodic statistics (`--stats-period`): DPDK's `print_stats`.
    pub fn print_stats(&mut self) {
        let mut o = String::new();
        if std::io::stdout().is_terminal() {
            o.push_str(stats::CLEAR_SCREEN);
        }
        o.push_str(stats::PORT_STATS_HEADER);
        for p in self.ports.clone() {
            o.push_str(&self.nic_stats(&p));
        }
        print!("{o}");
        flush();
    }

    fn nic_stats(&mut self, p: &Port) -> String {
        match p.stats() {
            Ok(s) => {
                let r = self.rates.update(p.id() as usize, &s, Instant::now());
                nic_stats_block(p.id(), &s, &r)
            }
            Err(e) => format!("\n  {e}\n"),
        }
    }

    fn info_text(&self, p: &Port) -> String {
        let i = p.info();
        let l = p.link();
        let (rxq, txq) = p.nb_queues();
        let c = p.conf();
        let mut o =
            format!("\n********************* Infos for port {:<2} *********************\n", p.id());
        o.push_str(&format!("MAC address: {}\n", MacFmt(p.mac())));
        o.push_str(&format!("Device name: {}\n", i.device));
        o.push_str(&format!("Driver name: {}\n", i.driver));
        o.push_str(&format!("Link status: {}\n", if l.up { "up" } else { "down" }));
        let speed = if l.speed_mbps == 0 {
            "None".to_owned()
        } else if l.speed_mbps % 1000 == 0 {
            format!("{} Gbps", l.speed_mbps / 1000)
        } else {
            format!("{} Mbps", l.speed_mbps)
        };
        o.push_str(&format!("Link speed: {speed}\n"));
        o.push_str(&format!(
            "Link duplex: {}\n",
            if l.full_duplex { "full-duplex" } else { "half-duplex" }
        ));
        o.push_str(&format!("MTU: {}\n", c.mtu.unwrap_or(1500)));
        o.push_str(&format!("Redirection table size: {}\n", i.reta_size));
        o.push_str("Supported RSS offload flow types:\n");
        let types: Vec<&str> = RSS_TYPES
            .iter()
            .filter(|(_, f)| i.flow_type_rss_offloads & f != 0)
            .map(|(n, _)| *n)
            .collect();
        for chunk in types.chunks(6) {
            o.push_str(&format!("  {}\n", chunk.join("  ")));
        }
        if let Some(r) = &c.rss {
            o.push_str(&format!("RSS hash types in use: {:#x}\n", r.hf));
        }
        o.push_str(&format!("Maximum configurable length of RX packet: {}\n", i.max_rx_pktlen));
        o.push_str(&format!("Current number of RX queues: {rxq}\n"));
        o.push_str(&format!("Max possible RX queues: {}\n", i.max_rx_queues));
        o.push_str(&format!("Max possible number of RXDs per queue: {}\n", i.rx_desc_lim.max));
        o.push_str(&format!("Min possible number of RXDs per queue: {}\n", i.rx_desc_lim.min));
        o.push_str(&format!("RXDs number alignment: {}\n", i.rx_desc_lim.align.max(1)));
        o.push_str(&format!("Current number of TX queues: {txq}\n"));
        o.push_str(&format!("Max possible TX queues: {}\n", i.max_tx_queues));
        o.push_str(&format!("Max possible number of TXDs per queue: {}\n", i.tx_desc_lim.max));
        o.push_str(&format!("Min possible number of TXDs per queue: {}\n", i.tx_desc_lim.min));
        o.push_str(&format!("TXDs number alignment: {}\n", i.tx_desc_lim.align.max(1)));
        o.push_str(&format!("Max segment number per packet: {}\n", i.max_tx_segs));
        o.push_str(&format!(
            "Device error handling mode: {}\n",
            match i.err_handle_mode {
                ErrHandleMode::None => "none",
                ErrHandleMode::Passive => "passive",
                ErrHandleMode::Proactive => "proactive",
            }
        ));
        o
    }

    fn xstats_text(p: &Port) -> String {
        let mut o = format!("###### NIC extended statistics for port {:<2}\n", p.id());
        match p.xstats() {
            Ok(v) => {
                for x in v {
                    o.push_str(&format!("{}: {}\n", x.name, x.value));
                }
            }
            Err(e) => o.push_str(&format!("{e}\n")),
        }
        o
    }

    /// Runs one command; false when it is `quit`.
    pub fn execute(&mut self, c: Command) -> Result<bool, AppError> {
        match c {
            Command::Nothing => {}
            Command::Quit => return Ok(false),
            Command::Help => print!("{}", cmd::HELP),
            Command::Start { tx_first } => self.start(tx_first)?,
            Command::Stop => self.stop()?,
            Command::ShowStats(sel) => {
                for p in self.selected(sel).unwrap_or_default() {
                    let s = self.nic_stats(&p);
                    print!("{s}");
                }
            }
            Command::ClearStats(sel) => {
                for p in self.selected(sel).unwrap_or_default() {
                    match p.stats_reset() {
                        Ok(()) => println!("\n  NIC statistics for port {} cleared", p.id()),
                        Err(e) => println!("{e}"),
                    }
                }
            }
            Command::ShowXstats(sel) => {
                for p in self.selected(sel).unwrap_or_default() {
                    print!("{}", Self::xstats_text(&p));
                }
            }
            Command::ShowInfo(sel) => {
                for p in self.selected(sel).unwrap_or_default() {
                    print!("{}", self.info_text(&p));
                }
            }
            Command::ShowConfigFwd => print!("{}", self.fwd_config_text()),
            Command::SetFwd(m) => {
                if self.running.is_some() {
                    println!("Please stop forwarding first");
                } else {
                    self.mode = m;
                    println!("Set {} packet forwarding mode", m.name());
                }
            }
            Command::SetVerbose(v) => {
                let old = self.verbose.swap(v, Ordering::Relaxed);
                println!("Change verbose level from {old} to {v}");
            }
            Command::PortStop(_) | Command::PortStart(_) if self.running.is_some() => {
                println!("Please stop forwarding first");
            }
            Command::PortStop(sel) => {
                for p in self.selected(sel).unwrap_or_default() {
                    println!("Stopping ports...");
                    match p.stop() {
                        Ok(()) => println!("Done"),
                        Err(e) => println!("{e}"),
                    }
                }
            }
            Command::PortStart(sel) => {
                for p in self.selected(sel).unwrap_or_default() {
                    match p.start() {
                        Ok(()) => {
                            println!("Port {}: {}", p.id(), MacFmt(p.mac()));
                            println!("Checking link statuses...");
                            println!("Done");
                        }
                        Err(e) => println!("{e}"),
                    }
                }
            }
            Command::PortRss(sel, g) => {
                for p in self.selected(sel).unwrap_or_default() {
                    let hf = g.hf() & p.info().flow_type_rss_offloads;
                    if let Err(e) = p.rss_hash_update(&RssConf { key: None, hf }) {
                        println!("{e}");
                    }
                }
            }
            // DPDK reads the port's hash types back and sets them with the new key, so the flow
            // type named on the command line does not change what is hashed: the same here.
            Command::PortRssKey { port, flow_type: _, key } => {
                let Some(p) = self.selected(PortSel::One(port)).and_then(|v| v.into_iter().next())
                else {
                    return Ok(true);
                };
                let size = p.info().hash_key_size as usize;
                if size == 0 {
                    println!("dev_info did not provide a valid hash key size");
                } else if key.len() != size {
                    println!(
                        "port {port}: the key is {} bytes; the port's RSS key is {size} bytes",
                        key.len()
                    );
                } else {
                    // As DPDK: the port keeps its hash types; only the key changes.
                    let hf = p
                        .rss_hash_conf()
                        .map(|r| r.hf)
                        .or_else(|_| Ok::<u64, EthError>(p.conf().rss.map_or(0, |r| r.hf)));
                    let hf = hf.unwrap_or(0);
                    if let Err(e) = p.rss_hash_update(&RssConf { key: Some(key), hf }) {
                        println!("{e}");
                    }
                }
            }
        }
        flush();
        Ok(true)
    }

    /// Stops forwarding if it runs, stops and closes every port, and checks that every mbuf is
    /// back in the pool.
    pub fn shutdown(mut self) -> Result<(), AppError> {
        let mut first_err = None;
        if self.running.is_some() {
            if let Err(e) = self.stop() {
                first_err.get_or_insert(e);
            }
        }
        for p in &self.ports {
            println!("\nStopping port {}...", p.id());
            println!("Stopping ports...");
            if let Err(e) = p.stop() {
                println!("{e}");
                first_err.get_or_insert(AppError::Port { op: "stop", source: e });
            }
            println!("Done");
        }
        // The queue handles go before the ports close.
        self.idle.clear();
        for p in &self.ports {
            println!("\nShutting down port {}...", p.id());
            println!("Closing ports...");
            match p.close() {
                Ok(()) => println!("Port {} is closed", p.id()),
                Err(e) => {
                    println!("{e}");
                    first_err.get_or_insert(AppError::Port { op: "close", source: e });
                }
            }
            println!("Done");
        }
        let audit = self.pool.audit();
        if audit.is_complete() {
            println!("\nAll {} mbufs of {POOL_NAME} are back in the pool", audit.size);
        } else {
            first_err.get_or_insert(AppError::Leak(audit));
        }
        println!("\nBye...");
        flush();
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

fn setup_port(
    p: &Port,
    cfg: &Config,
    pool: &MbufPool,
    (rxd, txd): (u16, u16),
) -> Result<(), AppError> {
    let i = p.info().clone();
    let mut conf = PortConf::default();
    let hf = cfg.rss.hf(cfg.rxq) & i.flow_type_rss_offloads;
    if hf != 0 && i.reta_size > 0 {
        conf.rss = Some(RssConf { key: None, hf });
        conf.rx_offloads |= i.rx_offload_capa & rx_offload::RSS_HASH;
    }
    // As DPDK's testpmd: fast free when the port can (one pool, no shared mbufs here).
    conf.tx_offloads |= i.tx_offload_capa & tx_offload::MBUF_FAST_FREE;
    p.configure(cfg.rxq, cfg.txq, &conf).map_err(port_err("configure"))?;
    for q in 0..cfg.rxq {
        p.rx_queue_setup(q, rxd, pool).map_err(port_err("rx queue setup"))?;
    }
    for q in 0..cfg.txq {
        p.tx_queue_setup(q, txd).map_err(port_err("tx queue setup"))?;
    }
    p.start().map_err(port_err("start"))?;
    Ok(())
}

/// Where input and stop requests come from.
pub struct Control {
    /// Set by SIGINT.
    pub sigint: Arc<AtomicBool>,
    /// Set by SIGTERM.
    pub sigterm: Arc<AtomicBool>,
    /// When to stop by itself (`--duration`).
    pub deadline: Option<Instant>,
}

impl Control {
    /// The signal that asked to stop, if one did.
    pub fn signalled(&self) -> Option<i32> {
        if self.sigint.load(Ordering::Relaxed) {
            Some(signal_hook::consts::SIGINT)
        } else if self.sigterm.load(Ordering::Relaxed) {
            Some(signal_hook::consts::SIGTERM)
        } else {
            None
        }
    }

    fn expired(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// Whether to stop now (printing why).
    fn should_stop(&self) -> bool {
        if let Some(s) = self.signalled() {
            println!("\nSignal {s} received, preparing to exit...");
            return true;
        }
        if self.expired() {
            println!("\nDuration elapsed, preparing to exit...");
            return true;
        }
        false
    }
}

/// Lines of stdin, read on their own thread (`None` at end of input).
pub fn stdin_lines() -> Receiver<Option<String>> {
    let (tx, rx) = mpsc::channel();
    let _ = std::thread::Builder::new().name("stdin".into()).spawn(move || {
        for line in std::io::stdin().lines() {
            match line {
                Ok(l) => {
                    if tx.send(Some(l)).is_err() {
                        return;
                    }
                }
                Err(_) => break,
            }
        }
        let _ = tx.send(None);
    });
    rx
}

const TICK: Duration = Duration::from_millis(20);

/// Non-interactive mode: forward until a signal, `--duration`, or Enter (without
/// `--stats-period`), printing statistics every period.
pub fn run_batch(app: &mut App, ctl: &Control) -> Result<(), AppError> {
    println!("No commandline core given, start packet forwarding");
    app.start(u32::from(app.cfg.tx_first))?;
    let input = match app.cfg.stats_period {
        None => {
            println!("Press enter to exit");
            Some(stdin_lines())
        }
        Some(_) => None,
    };
    flush();
    let mut next_stats = app.cfg.stats_period.map(|p| Instant::now() + p);
    loop {
        if ctl.should_stop() {
            break;
        }
        if let (Some(t), Some(p)) = (next_stats, app.cfg.stats_period) {
            if Instant::now() >= t {
                app.print_stats();
                next_stats = Some(t + p);
            }
        }
        if let Some(rx) = &input {
            match rx.recv_timeout(TICK) {
                Ok(Some(_)) => break,
                // End of input: keep running until a signal or --duration (so testpmd can run
                // in the background with stdin closed).
                Ok(None) | Err(RecvTimeoutError::Disconnected) => std::thread::sleep(TICK),
                Err(RecvTimeoutError::Timeout) => {}
            }
        } else {
            std::thread::sleep(TICK);
        }
    }
    app.stop()
}

/// Interactive mode: the `testpmd> ` prompt over stdin (a terminal or not), until `quit`, end
/// of input, a signal or `--duration`.
pub fn run_interactive(app: &mut App, ctl: &Control) -> Result<(), AppError> {
    println!("Interactive-mode selected");
    if app.cfg.auto_start {
        println!("Start automatic packet forwarding");
        app.start(0)?;
    }
    let echo = !std::io::stdin().is_terminal();
    let input = stdin_lines();
    let prompt = || {
        print!("testpmd> ");
        flush();
    };
    prompt();
    loop {
        match input.recv_timeout(TICK) {
            Ok(Some(line)) => {
                if echo {
                    println!("{line}");
                }
                match cmd::parse(&line) {
                    Ok(c) => {
                        if !app.execute(c)? {
                            break;
                        }
                    }
                    Err(e @ CmdError::NotFound) | Err(e @ CmdError::BadArgs(_)) => println!("{e}"),
                }
                prompt();
            }
            Ok(None) | Err(RecvTimeoutError::Disconnected) => {
                println!();
                break;
            }
            Err(RecvTimeoutError::Timeout) => {
                if ctl.should_stop() {
                    break;
                }
            }
        }
    }
    if app.forwarding() { app.stop() } else { Ok(()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lcores_main_first_then_forwarding() {
        assert_eq!(lcores(Some(&[0, 1]), &[]), Ok(Lcores { main: 0, fwd: vec![1] }));
        assert_eq!(lcores(Some(&[2, 3, 5]), &[]), Ok(Lcores { main: 2, fwd: vec![3, 5] }));
        assert!(lcores(Some(&[1]), &[0, 1]).unwrap_err().contains("two lcores"));
        assert_eq!(lcores(None, &[0, 1]), Ok(Lcores { main: 0, fwd: vec![1] }));
        assert_eq!(lcores(None, &[3]), Ok(Lcores { main: 3, fwd: vec![3] }));
    }

    #[test]
    fn events_print_as_dpdk() {
        let ev =
            Event { port: 0, kind: EventType::ErrRecovering, queue: None, detail: String::new() };
        assert_eq!(event_line(&ev), "\nPort 0: error recovering event");
        let ev = Event {
            port: 1,
            kind: EventType::QueueError,
            queue: Some(3),
            detail: "sq disabled".into(),
        };
        assert_eq!(event_line(&ev), "\nPort 1: queue state event (queue 3): sq disabled");
        assert_eq!(event_desc(EventType::RecoverySuccess), "error recovery successful");
        assert_eq!(event_desc(EventType::RecoveryFailed), "error recovery failed");
        assert_eq!(event_desc(EventType::IntrRmv), "device removal");
        assert_eq!(event_desc(EventType::LinkChange), "link state change");
    }

    #[test]
    fn default_pool_covers_queues_and_caches() {
        let n = default_mbufs(2, 1, 1, 1024, 1024, 1);
        assert!(n >= 2 * (1024 + 1024 + 1024), "{n}");
        assert_eq!(default_mbufs(1, 1, 1, 1, 1, 1), 8192);
    }
}
