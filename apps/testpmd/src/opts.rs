//! Command-line options, with dpdk-testpmd's names and meanings.
//!
//! Parsing follows getopt_long, as DPDK does: `--name=value` and `--name value` both work, a long
//! name may be shortened to any unambiguous prefix (`--stats 2` is `--stats-period 2`), and `--`
//! (DPDK's boundary between EAL and application options) is accepted anywhere and ignored, so a
//! dpdk-testpmd command line runs as it is. A few EAL options that have no meaning here
//! (`--no-pci`, `-m`, `-n`, `--file-prefix`, ...) are accepted and ignored.
//!
//! Every error names the option and says what was expected.

use std::fmt;
use std::time::Duration;

use pmd_ethdev::conf::rss;
use pmd_ethdev::pkts::MAX_PKT_BURST;

use crate::fwd::FwdMode;
use crate::topo::{Topology, parse_lcores};

/// The probe string used when no `--vdev` is given: the in-process software MANA device with two
/// vports cabled to each other.
pub const DEFAULT_VDEV: &str = "mana:emu,vports=2,wire=pair";

/// Default mbuf buffer size (headroom included), DPDK's `RTE_MBUF_DEFAULT_BUF_SIZE`.
pub const DEFAULT_MBUF_SIZE: u16 = 2176;

/// Default txonly/flowgen packet length (`TXONLY_DEF_PACKET_LEN`).
pub const DEFAULT_TXPKTS: u16 = 64;

/// Smallest packet txonly and flowgen can build: Ethernet, IPv4 and UDP headers.
pub const MIN_TXPKTS: u16 = 42;

/// Which RSS hash types the ports are configured with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RssChoice {
    /// DPDK's default: IP hashing when there is more than one RX queue, none otherwise.
    Default,
    /// `--rss-ip`.
    Ip,
    /// `--rss-udp`.
    Udp,
}

impl RssChoice {
    /// The hash types asked for with `nb_rxq` RX queues (before masking with what the port can
    /// do). DPDK configures RSS only with more than one RX queue.
    pub fn hf(self, nb_rxq: u16) -> u64 {
        if nb_rxq <= 1 {
            return 0;
        }
        match self {
            RssChoice::Default | RssChoice::Ip => rss::IP,
            RssChoice::Udp => rss::UDP,
        }
    }
}

/// Everything the command line says.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `-l/--lcores` (or `-c`): the lcores, main lcore first. `None`: every CPU.
    pub lcores: Option<Vec<usize>>,
    /// `--vdev` probe strings, in order (empty: [`DEFAULT_VDEV`]).
    pub vdevs: Vec<String>,
    /// `--nb-cores`: forwarding cores.
    pub nb_cores: u16,
    /// `--rxq`.
    pub rxq: u16,
    /// `--txq`.
    pub txq: u16,
    /// `--rxd` (0: the driver's default).
    pub rxd: u16,
    /// `--txd` (0: the driver's default).
    pub txd: u16,
    /// `--burst` (0: the driver's default).
    pub burst: u16,
    /// `--forward-mode`.
    pub mode: FwdMode,
    /// `--port-topology`.
    pub topology: Topology,
    /// `--stats-period` (non-interactive mode).
    pub stats_period: Option<Duration>,
    /// `-a/--auto-start` (interactive mode).
    pub auto_start: bool,
    /// `--tx-first`.
    pub tx_first: bool,
    /// `--record-core-cycles`.
    pub record_core_cycles: bool,
    /// `--eth-peer PORT,MAC`, in order.
    pub eth_peers: Vec<(u16, [u8; 6])>,
    /// `--txpkts`: txonly/flowgen packet length.
    pub txpkts: u16,
    /// `--txonly-multi-flow`.
    pub txonly_multi_flow: bool,
    /// `--flowgen-flows`.
    pub flowgen_flows: u32,
    /// `--mbuf-size`: buffer size, headroom included.
    pub mbuf_size: u16,
    /// `--total-num-mbufs` (None: computed from the queues).
    pub total_num_mbufs: Option<u32>,
    /// `--rss-ip` / `--rss-udp`.
    pub rss: RssChoice,
    /// `--verbose[=N]` / `--verbose-level N`.
    pub verbose: u8,
    /// `--duration`: stop by itself after this long.
    pub duration: Option<Duration>,
    /// `-i/--interactive`.
    pub interactive: bool,
    /// `--no-huge`: 4 KiB pages only.
    pub no_huge: bool,
}

impl Default for Config {
    /// DPDK's defaults (what a command line with options but none of these gets).
    fn default() -> Self {
        Config {
            lcores: None,
            vdevs: Vec::new(),
            nb_cores: 1,
            rxq: 1,
            txq: 1,
            rxd: 0,
            txd: 0,
            burst: 32,
            mode: FwdMode::Io,
            topology: Topology::Paired,
            stats_period: None,
            auto_start: false,
            tx_first: false,
            record_core_cycles: false,
            eth_peers: Vec::new(),
            txpkts: DEFAULT_TXPKTS,
            txonly_multi_flow: false,
            flowgen_flows: 1024,
            mbuf_size: DEFAULT_MBUF_SIZE,
            total_num_mbufs: None,
            rss: RssChoice::Default,
            verbose: 0,
            duration: None,
            interactive: false,
            no_huge: false,
        }
    }
}

impl Config {
    /// The main job, what `testpmd` with no options runs: io forwarding over the embedded MANA
    /// device (two vports cabled as a pair), primed with a first burst, statistics every second.
    pub fn main_job() -> Self {
        Config { tx_first: true, stats_period: Some(Duration::from_secs(1)), ..Config::default() }
    }

    /// The probe strings to use (the default one when none was given).
    pub fn probe_strings(&self) -> Vec<String> {
        if self.vdevs.is_empty() { vec![DEFAULT_VDEV.to_owned()] } else { self.vdevs.clone() }
    }
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    /// Run with this configuration.
    Run(Box<Config>),
    /// Print the usage and exit.
    Help,
}

/// A bad command line: which option, and what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptError {
    /// The option as written (or the stray argument).
    pub option: String,
    /// What is wrong.
    pub why: String,
}

impl fmt::Display for OptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "option {}: {}", self.option, self.why)
    }
}

impl std::error::Error for OptError {}

/// Whether an option takes a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arg {
    /// A flag.
    No,
    /// A value, inline (`=v`, or glued to a short option) or in the next argument.
    Yes,
    /// A value only inline (`--verbose=2`); alone it means the default.
    Optional,
}

/// The options: long name, short letter, argument.
const OPTIONS: &[(&str, Option<char>, Arg)] = &[
    ("lcores", Some('l'), Arg::Yes),
    ("coremask", Some('c'), Arg::Yes),
    ("vdev", None, Arg::Yes),
    ("nb-cores", None, Arg::Yes),
    ("rxq", None, Arg::Yes),
    ("txq", None, Arg::Yes),
    ("rxd", None, Arg::Yes),
    ("txd", None, Arg::Yes),
    ("burst", None, Arg::Yes),
    ("forward-mode", None, Arg::Yes),
    ("port-topology", None, Arg::Yes),
    ("stats-period", None, Arg::Yes),
    ("auto-start", Some('a'), Arg::No),
    ("tx-first", None, Arg::No),
    ("record-core-cycles", None, Arg::No),
    ("eth-peer", None, Arg::Yes),
    ("txpkts", None, Arg::Yes),
    ("txonly-multi-flow", None, Arg::No),
    ("flowgen-flows", None, Arg::Yes),
    ("mbuf-size", None, Arg::Yes),
    ("total-num-mbufs", None, Arg::Yes),
    ("rss-ip", None, Arg::No),
    ("rss-udp", None, Arg::No),
    ("verbose", None, Arg::Optional),
    ("verbose-level", None, Arg::Yes),
    ("duration", None, Arg::Yes),
    ("interactive", Some('i'), Arg::No),
    ("help", Some('h'), Arg::No),
    // EAL options accepted for compatibility.
    ("no-huge", None, Arg::No),
    ("no-pci", None, Arg::No),
    ("in-memory", None, Arg::No),
    ("file-prefix", None, Arg::Yes),
    ("log-level", None, Arg::Yes),
    ("socket-mem", None, Arg::Yes),
    ("memory", Some('m'), Arg::Yes),
    ("channels", Some('n'), Arg::Yes),
];

/// The usage text (`--help`).
pub fn usage() -> String {
    format!(
        "Usage: testpmd [EAL options] [--] [testpmd options]

A DPDK-style testpmd over our ports. With no options at all it runs the main job: io forwarding
over the embedded software MANA device ({DEFAULT_VDEV}), primed with --tx-first,
statistics every second until Ctrl-C.

EAL options:
  -l, --lcores LIST          lcores to use (\"0,1\", \"0-3,6\"); the first is the main lcore, the
                             others forward (default: every CPU)
  -c, --coremask MASK        the same as a hexadecimal mask
  --vdev SPEC                a port probe string (repeatable): mana:emu[,vports=N][,wire=W]
                             [,queues=N][,any_source_mac=1], mana:sock=PATH, null[,size=N],
                             ring:NAME[,queues=N][,size=N]; net_nullN[,...] means null[,...]
                             (default: {DEFAULT_VDEV})
  --no-huge                  4 KiB pages only (hugepages are used when free, else 4 KiB pages)
  --no-pci, --in-memory, --file-prefix X, --log-level X, --socket-mem X, -m N, -n N
                             accepted and ignored

testpmd options:
  -i, --interactive          run the command prompt (reads commands from stdin)
  -a, --auto-start           start forwarding at once in interactive mode
  --nb-cores N               forwarding cores (default 1)
  --rxq N, --txq N           RX/TX queues per port (default 1)
  --rxd N, --txd N           descriptors per queue (default: the driver's)
  --burst N                  packets per burst, 1..={MAX_PKT_BURST} (default 32)
  --forward-mode MODE        {} (default io)
  --port-topology T          paired, chained or loop (default paired)
  --stats-period S           print port statistics every S seconds (non-interactive mode)
  --tx-first                 send a burst on every stream before forwarding
  --record-core-cycles       count busy cycles: CPU cycles/packet at stop
  --eth-peer PORT,MAC        the peer MAC of a port (mac, txonly, flowgen)
  --txpkts LEN               txonly/flowgen packet length ({MIN_TXPKTS}.., default {DEFAULT_TXPKTS})
  --txonly-multi-flow        vary the UDP source port of txonly packets (spreads RSS)
  --flowgen-flows N          flows of flowgen (default 1024)
  --mbuf-size N              mbuf buffer size, headroom included (default {DEFAULT_MBUF_SIZE})
  --total-num-mbufs N        mbufs in the pool (> 1024; default: enough for the queues)
  --rss-ip, --rss-udp        RSS hash types with more than one RX queue (default: ip)
  --verbose[=N]              verbosity (1: one line per received packet in rxonly mode)
  --duration S               stop by itself after S seconds
  -h, --help                 this text
",
        FwdMode::ALL.iter().map(|m| m.name()).collect::<Vec<_>>().join("|")
    )
}

/// Parses the arguments after the program name.
pub fn parse_args<I, S>(args: I) -> Result<Parsed, OptError>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let args: Vec<String> = args.into_iter().map(Into::into).collect();
    if args.is_empty() {
        return Ok(Parsed::Run(Box::new(Config::main_job())));
    }
    let mut cfg = Config::default();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        i += 1;
        if a == "--" {
            continue;
        }
        let (name, written, inline) = if let Some(long) = a.strip_prefix("--") {
            let (n, v) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_owned())),
                None => (long, None),
            };
            (resolve_long(n, a)?, format!("--{n}"), v)
        } else if let Some(short) = a.strip_prefix('-').filter(|s| !s.is_empty()) {
            let mut chars = short.chars();
            let c = chars.next().unwrap_or('?');
            let rest: String = chars.collect();
            let name = OPTIONS
                .iter()
                .find(|o| o.1 == Some(c))
                .map(|o| o.0)
                .ok_or_else(|| err(a, "unknown option (see --help)"))?;
            (name, format!("-{c}"), (!rest.is_empty()).then_some(rest))
        } else {
            return Err(err(a, "unexpected argument (options start with - or --; see --help)"));
        };
        let kind = OPTIONS.iter().find(|o| o.0 == name).map_or(Arg::No, |o| o.2);
        let value = match (kind, inline) {
            (Arg::No, Some(_)) => return Err(err(&written, "takes no value")),
            (Arg::No, None) | (Arg::Optional, None) => None,
            (_, Some(v)) => Some(v),
            (Arg::Yes, None) => {
                let v = args
                    .get(i)
                    .filter(|v| *v != "--")
                    .ok_or_else(|| err(&written, "needs a value"))?;
                i += 1;
                Some(v.clone())
            }
        };
        if name == "help" {
            return Ok(Parsed::Help);
        }
        apply(&mut cfg, name, &written, value.as_deref().unwrap_or(""))?;
    }
    check(&cfg)?;
    Ok(Parsed::Run(Box::new(cfg)))
}

fn err(option: &str, why: impl Into<String>) -> OptError {
    OptError { option: option.to_owned(), why: why.into() }
}

/// The option a long name (or an unambiguous prefix of one) means.
fn resolve_long(name: &str, written: &str) -> Result<&'static str, OptError> {
    if let Some(o) = OPTIONS.iter().find(|o| o.0 == name) {
        return Ok(o.0);
    }
    let matches: Vec<&'static str> =
        OPTIONS.iter().filter(|o| !name.is_empty() && o.0.starts_with(name)).map(|o| o.0).collect();
    match matches.as_slice() {
        [one] => Ok(one),
        [] => Err(err(written, "unknown option (see --help)")),
        many => Err(err(
            written,
            format!(
                "ambiguous; it could be {}",
                many.iter().map(|m| format!("--{m}")).collect::<Vec<_>>().join(", ")
            ),
        )),
    }
}

/// An integer in `lo..=hi`.
fn int<T>(opt: &str, v: &str, lo: u64, hi: u64, what: &str) -> Result<T, OptError>
where
    T: TryFrom<u64>,
{
    let bad = || err(opt, format!("expected {what} from {lo} to {hi}, got '{v}'"));
    let n: u64 = v.trim().parse().map_err(|_| bad())?;
    if n < lo || n > hi {
        return Err(bad());
    }
    T::try_from(n).map_err(|_| bad())
}

/// Seconds, maybe fractional, above zero.
fn seconds(opt: &str, v: &str) -> Result<Duration, OptError> {
    let bad = || err(opt, format!("expected a number of seconds above 0, got '{v}'"));
    let s: f64 = v.trim().parse().map_err(|_| bad())?;
    if !s.is_finite() || s <= 0.0 || s > 1e9 {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(s))
}

/// Parses `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut m = [0u8; 6];
    let mut parts = s.split(':');
    for b in &mut m {
        let p = parts.next()?;
        if p.is_empty() || p.len() > 2 {
            return None;
        }
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    parts.next().is_none().then_some(m)
}

/// `--vdev` strings with DPDK driver names: `net_null0[,ARGS]` is `null[,ARGS]`.
pub fn vdev_probe_string(spec: &str) -> String {
    if let Some(rest) = spec.strip_prefix("net_null") {
        let digits = rest.chars().take_while(|c| c.is_ascii_digit()).count();
        let tail = &rest[digits..];
        if tail.is_empty() || tail.starts_with(',') {
            return format!("null{tail}");
        }
    }
    spec.to_owned()
}

fn apply(cfg: &mut Config, name: &str, opt: &str, v: &str) -> Result<(), OptError> {
    match name {
        "lcores" => {
            cfg.lcores = Some(parse_lcores(v).map_err(|why| err(opt, why))?);
        }
        "coremask" => {
            let hex = v.trim_start_matches("0x").trim_start_matches("0X");
            let mask = u128::from_str_radix(hex, 16)
                .map_err(|_| err(opt, format!("expected a hexadecimal core mask, got '{v}'")))?;
            if mask == 0 {
                return Err(err(opt, "expected a core mask with at least one bit set, got 0"));
            }
            cfg.lcores = Some((0..128).filter(|b| mask >> b & 1 == 1).collect());
        }
        "vdev" => {
            if v.trim().is_empty() {
                return Err(err(opt, "expected a probe string such as null or mana:emu"));
            }
            cfg.vdevs.push(vdev_probe_string(v.trim()));
        }
        "nb-cores" => cfg.nb_cores = int(opt, v, 1, 128, "a number of forwarding cores")?,
        "rxq" => cfg.rxq = int(opt, v, 1, 1024, "a number of RX queues")?,
        "txq" => cfg.txq = int(opt, v, 1, 1024, "a number of TX queues")?,
        "rxd" => cfg.rxd = int(opt, v, 1, 65535, "a number of RX descriptors")?,
        "txd" => cfg.txd = int(opt, v, 1, 65535, "a number of TX descriptors")?,
        "burst" => cfg.burst = int(opt, v, 0, MAX_PKT_BURST as u64, "a burst size (0: driver's)")?,
        "forward-mode" => {
            cfg.mode = v.parse().map_err(|why: String| err(opt, why))?;
        }
        "port-topology" => {
            cfg.topology = v.parse().map_err(|why: String| err(opt, why))?;
        }
        "stats-period" => cfg.stats_period = Some(seconds(opt, v)?),
        "auto-start" => cfg.auto_start = true,
        "tx-first" => cfg.tx_first = true,
        "record-core-cycles" => cfg.record_core_cycles = true,
        "eth-peer" => {
            let bad = || err(opt, format!("expected PORT,MAC (0,02:00:00:00:00:01), got '{v}'"));
            let (p, m) = v.split_once(',').ok_or_else(bad)?;
            let port: u16 = p.trim().parse().map_err(|_| bad())?;
            let mac = parse_mac(m.trim()).ok_or_else(bad)?;
            cfg.eth_peers.push((port, mac));
        }
        "txpkts" => {
            if v.contains(',') {
                return Err(err(
                    opt,
                    format!(
                        "'{v}': packets of several segments are not supported; give one length"
                    ),
                ));
            }
            cfg.txpkts = int(opt, v, MIN_TXPKTS as u64, 9600, "a packet length")?;
        }
        "txonly-multi-flow" => cfg.txonly_multi_flow = true,
        "flowgen-flows" => cfg.flowgen_flows = int(opt, v, 1, 1 << 24, "a number of flows")?,
        "mbuf-size" => {
            cfg.mbuf_size = int(opt, v, 128 + 64, 65535, "a buffer size (headroom included)")?
        }
        "total-num-mbufs" => {
            cfg.total_num_mbufs = Some(int(opt, v, 1025, 1 << 26, "a number of mbufs")?)
        }
        "rss-ip" => cfg.rss = RssChoice::Ip,
        "rss-udp" => cfg.rss = RssChoice::Udp,
        "verbose" => {
            cfg.verbose = if v.is_empty() { 1 } else { int(opt, v, 0, 255, "a verbosity")? }
        }
        "verbose-level" => cfg.verbose = int(opt, v, 0, 255, "a verbosity")?,
        "duration" => cfg.duration = Some(seconds(opt, v)?),
        "interactive" => cfg.interactive = true,
        "no-huge" => cfg.no_huge = true,
        // Accepted EAL options without meaning here.
        _ => {}
    }
    Ok(())
}

/// Checks between options.
fn check(cfg: &Config) -> Result<(), OptError> {
    if cfg.tx_first && cfg.interactive {
        return Err(err(
            "--tx-first",
            "cannot be used in interactive mode (use the command 'start tx_first')",
        ));
    }
    if cfg.txpkts > cfg.mbuf_size.saturating_sub(pmd_mempool::mbuf::MBUF_HEADROOM) {
        return Err(err(
            "--txpkts",
            format!(
                "{} bytes do not fit an mbuf of {} bytes ({} of headroom); raise --mbuf-size",
                cfg.txpkts,
                cfg.mbuf_size,
                pmd_mempool::mbuf::MBUF_HEADROOM
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Config {
        match parse_args(args.iter().copied()) {
            Ok(Parsed::Run(c)) => *c,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    fn fails(args: &[&str]) -> OptError {
        match parse_args(args.iter().copied()) {
            Err(e) => e,
            Ok(p) => panic!("{args:?} parsed: {p:?}"),
        }
    }

    #[test]
    fn no_options_is_the_main_job() {
        let c = run(&[]);
        assert_eq!(c, Config::main_job());
        assert!(c.tx_first);
        assert_eq!(c.stats_period, Some(Duration::from_secs(1)));
        assert_eq!(c.mode, FwdMode::Io);
        assert_eq!(c.probe_strings(), vec![DEFAULT_VDEV.to_owned()]);
        // Any option at all gives DPDK's defaults instead.
        let c = run(&["--burst", "32"]);
        assert!(!c.tx_first && c.stats_period.is_none());
    }

    #[test]
    fn both_spellings_and_prefixes_work() {
        for args in [
            &["--forward-mode=macswap", "--rxq=2", "--stats-period=2"][..],
            &["--forward-mode", "macswap", "--rxq", "2", "--stats-period", "2"],
            &["--forward", "macswap", "--rxq", "2", "--stats", "2"],
            &["--", "--forward-mode=macswap", "--rxq=2", "--stats-period", "2"],
        ] {
            let c = run(args);
            assert_eq!(c.mode, FwdMode::MacSwap, "{args:?}");
            assert_eq!(c.rxq, 2, "{args:?}");
            assert_eq!(c.stats_period, Some(Duration::from_secs(2)), "{args:?}");
        }
    }

    #[test]
    fn a_dpdk_command_line_parses() {
        let c = run(&[
            "--no-huge",
            "--no-pci",
            "-m",
            "512",
            "--vdev=net_null0",
            "--vdev",
            "net_null1,size=128",
            "-l",
            "0,1",
            "--",
            "--forward-mode=io",
            "--record-core-cycles",
            "-a",
            "-i",
            "--nb-cores=1",
            "--txd=256",
            "--rxd=256",
            "--total-num-mbufs=16384",
        ]);
        assert_eq!(c.vdevs, ["null", "null,size=128"]);
        assert_eq!(c.lcores, Some(vec![0, 1]));
        assert!(c.no_huge && c.record_core_cycles && c.auto_start && c.interactive);
        assert_eq!((c.rxd, c.txd, c.nb_cores), (256, 256, 1));
        assert_eq!(c.total_num_mbufs, Some(16384));
    }

    #[test]
    fn every_option_lands_in_its_field() {
        let c = run(&[
            "-l1-3",
            "--vdev",
            "mana:emu,vports=2",
            "--nb-cores",
            "2",
            "--rxq",
            "4",
            "--txq",
            "3",
            "--rxd",
            "512",
            "--txd",
            "128",
            "--burst",
            "64",
            "--forward-mode",
            "5tswap",
            "--port-topology",
            "loop",
            "--tx-first",
            "--eth-peer",
            "1,02:aa:bb:cc:dd:0e",
            "--txpkts",
            "128",
            "--txonly-multi-flow",
            "--flowgen-flows",
            "16",
            "--mbuf-size",
            "4096",
            "--rss-udp",
            "--verbose=2",
            "--duration",
            "0.5",
        ]);
        assert_eq!(c.lcores, Some(vec![1, 2, 3]));
        assert_eq!(c.vdevs, ["mana:emu,vports=2"]);
        assert_eq!((c.nb_cores, c.rxq, c.txq, c.rxd, c.txd, c.burst), (2, 4, 3, 512, 128, 64));
        assert_eq!(c.mode, FwdMode::FiveTupleSwap);
        assert_eq!(c.topology, Topology::Loop);
        assert!(c.tx_first && c.txonly_multi_flow);
        assert_eq!(c.eth_peers, [(1, [0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0x0e])]);
        assert_eq!((c.txpkts, c.flowgen_flows, c.mbuf_size), (128, 16, 4096));
        assert_eq!(c.rss, RssChoice::Udp);
        assert_eq!(c.verbose, 2);
        assert_eq!(c.duration, Some(Duration::from_millis(500)));
        assert_eq!(run(&["--verbose"]).verbose, 1);
        assert_eq!(run(&["--rss-ip"]).rss, RssChoice::Ip);
        assert_eq!(run(&["-c", "0x6"]).lcores, Some(vec![1, 2]));
        assert_eq!(parse_args(["-h"]).unwrap(), Parsed::Help);
        assert_eq!(parse_args(["--burst=8", "--help"]).unwrap(), Parsed::Help);
    }

    #[test]
    fn errors_name_the_option_and_what_was_expected() {
        let cases: &[(&[&str], &str, &str)] = &[
            (&["--rxq=abc"], "--rxq", "expected a number of RX queues from 1 to 1024, got 'abc'"),
            (&["--rxq", "0"], "--rxq", "from 1 to 1024"),
            (&["--burst=513"], "--burst", "from 0 to 512"),
            (&["--forward-mode=warp"], "--forward-mode", "io, mac, macswap"),
            (&["--nb-cores"], "--nb-cores", "needs a value"),
            (&["--tx-first=1"], "--tx-first", "takes no value"),
            (&["--bogus"], "--bogus", "unknown option"),
            (&["-z"], "-z", "unknown option"),
            (&["--r"], "--r", "ambiguous"),
            (&["stray"], "stray", "unexpected argument"),
            (&["--eth-peer", "0"], "--eth-peer", "expected PORT,MAC"),
            (&["--eth-peer", "0,02:00:00:00:00"], "--eth-peer", "expected PORT,MAC"),
            (&["--txpkts", "20"], "--txpkts", "from 42"),
            (&["--txpkts", "64,64"], "--txpkts", "several segments"),
            (&["--txpkts", "3000"], "--txpkts", "raise --mbuf-size"),
            (&["--total-num-mbufs", "1000"], "--total-num-mbufs", "from 1025"),
            (&["--stats-period", "-1"], "--stats-period", "seconds above 0"),
            (&["--duration", "x"], "--duration", "seconds above 0"),
            (&["-l", "3-1"], "-l", "range"),
            (&["-c", "zz"], "-c", "hexadecimal"),
            (&["-i", "--tx-first"], "--tx-first", "interactive"),
            (&["--port-topology", "ring"], "--port-topology", "paired, chained or loop"),
        ];
        for (args, opt, what) in cases {
            let e = fails(args);
            assert_eq!(e.option, *opt, "{args:?}: {e}");
            assert!(e.to_string().contains(what), "{args:?}: {e}");
            assert!(e.to_string().starts_with(&format!("option {opt}: ")), "{e}");
        }
    }

    #[test]
    fn macs_and_vdev_names() {
        assert_eq!(parse_mac("02:00:00:00:00:01"), Some([2, 0, 0, 0, 0, 1]));
        assert_eq!(parse_mac("2:0:0:0:0:1"), Some([2, 0, 0, 0, 0, 1]));
        assert_eq!(parse_mac("02:00:00:00:00:01:02"), None);
        assert_eq!(parse_mac("02:00:00:00:00:0g"), None);
        assert_eq!(parse_mac("02:00:00:00:00:100"), None);
        assert_eq!(vdev_probe_string("net_null0"), "null");
        assert_eq!(vdev_probe_string("net_null12,size=128"), "null,size=128");
        assert_eq!(vdev_probe_string("net_nullx"), "net_nullx");
        assert_eq!(vdev_probe_string("mana:emu"), "mana:emu");
    }

    #[test]
    fn rss_defaults_follow_dpdk() {
        assert_eq!(RssChoice::Default.hf(1), 0);
        assert_eq!(RssChoice::Udp.hf(1), 0);
        assert_eq!(RssChoice::Default.hf(2), rss::IP);
        assert_eq!(RssChoice::Udp.hf(4), rss::UDP);
    }
}
