//! The interactive commands, spelled as dpdk-testpmd spells them, parsed into [`Command`]s.

use pmd_ethdev::conf::rss;

use crate::fwd::FwdMode;

/// Which ports a command is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortSel {
    /// `all`.
    All,
    /// One port id.
    One(u16),
}

/// `port config all rss ...` hash type groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RssGroup {
    /// `ip`.
    Ip,
    /// `udp`.
    Udp,
    /// `tcp`.
    Tcp,
    /// `all`.
    All,
    /// `none`: RSS off.
    None,
}

impl RssGroup {
    /// The hash types (before masking with what the port can do).
    pub fn hf(self) -> u64 {
        match self {
            RssGroup::Ip => rss::IP,
            RssGroup::Udp => rss::UDP,
            RssGroup::Tcp => rss::TCP,
            RssGroup::All => rss::IP | rss::TCP | rss::UDP,
            RssGroup::None => 0,
        }
    }
}

/// RSS flow type names (`port config N rss-hash-key TYPE`, `show port info`), DPDK's spelling.
pub const RSS_TYPES: &[(&str, u64)] = &[
    ("ipv4", rss::IPV4),
    ("ipv4-frag", rss::FRAG_IPV4),
    ("ipv4-tcp", rss::NONFRAG_IPV4_TCP),
    ("ipv4-udp", rss::NONFRAG_IPV4_UDP),
    ("ipv4-other", rss::NONFRAG_IPV4_OTHER),
    ("ipv6", rss::IPV6),
    ("ipv6-frag", rss::FRAG_IPV6),
    ("ipv6-tcp", rss::NONFRAG_IPV6_TCP),
    ("ipv6-udp", rss::NONFRAG_IPV6_UDP),
    ("ipv6-other", rss::NONFRAG_IPV6_OTHER),
];

/// A command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// An empty line.
    Nothing,
    /// `start` / `start tx_first [N]`.
    Start {
        /// txonly bursts per stream before forwarding.
        tx_first: u32,
    },
    /// `stop`.
    Stop,
    /// `show port stats all|N`.
    ShowStats(PortSel),
    /// `clear port stats all|N`.
    ClearStats(PortSel),
    /// `show port xstats all|N`.
    ShowXstats(PortSel),
    /// `show port info all|N`.
    ShowInfo(PortSel),
    /// `show config fwd`.
    ShowConfigFwd,
    /// `set fwd MODE`.
    SetFwd(FwdMode),
    /// `set verbose N`.
    SetVerbose(u8),
    /// `port stop all|N`.
    PortStop(PortSel),
    /// `port start all|N`.
    PortStart(PortSel),
    /// `port config all rss ip|udp|tcp|all|none`.
    PortRss(PortSel, RssGroup),
    /// `port config N rss-hash-key TYPE HEX`.
    PortRssKey {
        /// The port.
        port: u16,
        /// The flow type named (DPDK keeps the port's hash types; only the key changes).
        flow_type: u64,
        /// The key.
        key: Vec<u8>,
    },
    /// `help`.
    Help,
    /// `quit`.
    Quit,
}

/// Why a line is not a command: DPDK's two answers, with what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CmdError {
    /// No command starts this way.
    NotFound,
    /// A known command with a bad argument.
    BadArgs(String),
}

impl std::fmt::Display for CmdError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CmdError::NotFound => write!(f, "Command not found (type 'help')"),
            CmdError::BadArgs(why) => write!(f, "Bad arguments: {why}"),
        }
    }
}

/// The commands, for `help`.
pub const HELP: &str = "\
  start                                      start forwarding
  start tx_first [N]                         send N (1) txonly bursts per stream, then forward
  stop                                       stop forwarding and show the forward statistics
  show port stats all|N                      port counters and throughput since the last show
  clear port stats all|N                     reset the port counters
  show port xstats all|N                     named counters
  show port info all|N                       capabilities and configuration
  show config fwd                            the forwarding configuration
  set fwd MODE                               io, mac, macswap, flowgen, rxonly, txonly, icmpecho, 5tswap
  set verbose N                              1: dump received packets
  port stop|start all|N                      stop or start ports (forwarding stopped)
  port config all rss ip|udp|tcp|all|none    RSS hash types
  port config N rss-hash-key TYPE HEX        RSS key (TYPE: ipv4, ipv4-tcp, ipv4-udp, ipv6, ...)
  quit                                       stop, close the ports and exit
";

fn port_sel(w: Option<&str>) -> Result<PortSel, CmdError> {
    match w {
        Some("all") => Ok(PortSel::All),
        Some(n) => n
            .parse()
            .map(PortSel::One)
            .map_err(|_| CmdError::BadArgs(format!("expected 'all' or a port id, got '{n}'"))),
        None => Err(CmdError::BadArgs("expected 'all' or a port id".into())),
    }
}

fn end(w: &[&str], n: usize) -> Result<(), CmdError> {
    match w.get(n) {
        None => Ok(()),
        Some(x) => Err(CmdError::BadArgs(format!("unexpected '{x}'"))),
    }
}

/// Parses a hex string (`6d5a56da...`) into bytes.
pub fn parse_hex(s: &str) -> Option<Vec<u8>> {
    if s.is_empty() || s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()))
        .collect()
}

/// Parses one command line.
pub fn parse(line: &str) -> Result<Command, CmdError> {
    let w: Vec<&str> = line.split_whitespace().collect();
    let bad = |why: &str| Err(CmdError::BadArgs(why.to_owned()));
    match w.as_slice() {
        [] => Ok(Command::Nothing),
        ["start"] => Ok(Command::Start { tx_first: 0 }),
        ["start", "tx_first"] => Ok(Command::Start { tx_first: 1 }),
        ["start", "tx_first", n] => match n.parse::<u32>() {
            Ok(n) if n >= 1 => Ok(Command::Start { tx_first: n }),
            _ => bad(&format!("expected a number of bursts >= 1, got '{n}'")),
        },
        ["start", ..] => bad("expected 'start' or 'start tx_first [N]'"),
        ["stop"] => Ok(Command::Stop),
        ["stop", ..] => bad("'stop' takes no argument"),
        ["quit"] | ["exit"] => Ok(Command::Quit),
        ["help", ..] => Ok(Command::Help),
        ["show", "port", what, rest @ ..] => {
            let sel = port_sel(rest.first().copied())?;
            end(rest, 1)?;
            match *what {
                "stats" => Ok(Command::ShowStats(sel)),
                "xstats" => Ok(Command::ShowXstats(sel)),
                "info" => Ok(Command::ShowInfo(sel)),
                _ => bad(&format!("expected stats, xstats or info, got '{what}'")),
            }
        }
        ["show", "config", "fwd"] => Ok(Command::ShowConfigFwd),
        ["show", ..] => bad("expected 'show port stats|xstats|info all|N' or 'show config fwd'"),
        ["clear", "port", "stats", rest @ ..] => {
            let sel = port_sel(rest.first().copied())?;
            end(rest, 1)?;
            Ok(Command::ClearStats(sel))
        }
        ["set", "fwd", mode] => {
            mode.parse::<FwdMode>().map(Command::SetFwd).map_err(CmdError::BadArgs)
        }
        ["set", "verbose", n] => match n.parse::<u8>() {
            Ok(v) => Ok(Command::SetVerbose(v)),
            Err(_) => bad(&format!("expected a verbosity 0..=255, got '{n}'")),
        },
        ["set", ..] => bad("expected 'set fwd MODE' or 'set verbose N'"),
        ["port", op @ ("stop" | "start"), rest @ ..] => {
            let sel = port_sel(rest.first().copied())?;
            end(rest, 1)?;
            Ok(if *op == "stop" { Command::PortStop(sel) } else { Command::PortStart(sel) })
        }
        ["port", "config", p, "rss", g] => {
            let sel = port_sel(Some(p))?;
            let g = match *g {
                "ip" => RssGroup::Ip,
                "udp" => RssGroup::Udp,
                "tcp" => RssGroup::Tcp,
                "all" => RssGroup::All,
                "none" => RssGroup::None,
                _ => return bad(&format!("expected ip, udp, tcp, all or none, got '{g}'")),
            };
            Ok(Command::PortRss(sel, g))
        }
        ["port", "config", p, "rss-hash-key", ty, hex] => {
            let port = match port_sel(Some(p))? {
                PortSel::One(n) => n,
                PortSel::All => return bad("rss-hash-key is set one port at a time"),
            };
            let flow_type =
                RSS_TYPES.iter().find(|(n, _)| n == ty).map(|(_, f)| *f).ok_or_else(|| {
                    let names: Vec<_> = RSS_TYPES.iter().map(|(n, _)| *n).collect();
                    CmdError::BadArgs(format!("expected one of {}, got '{ty}'", names.join(", ")))
                })?;
            let key = parse_hex(hex).ok_or_else(|| {
                CmdError::BadArgs(format!("expected the key as hexadecimal bytes, got '{hex}'"))
            })?;
            Ok(Command::PortRssKey { port, flow_type, key })
        }
        ["port", ..] => {
            bad("expected 'port stop|start all|N', 'port config all|N rss ip|udp|tcp|all|none' or \
             'port config N rss-hash-key TYPE HEX'")
        }
        _ => Err(CmdError::NotFound),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse_as_dpdk_spells_them() {
        use Command::*;
        let cases: &[(&str, Command)] = &[
            ("", Nothing),
            ("   ", Nothing),
            ("start", Start { tx_first: 0 }),
            ("start tx_first", Start { tx_first: 1 }),
            ("start tx_first 16", Start { tx_first: 16 }),
            ("stop", Stop),
            ("show port stats all", ShowStats(PortSel::All)),
            ("show port stats 1", ShowStats(PortSel::One(1))),
            ("clear port stats all", ClearStats(PortSel::All)),
            ("show port xstats 0", ShowXstats(PortSel::One(0))),
            ("show port info all", ShowInfo(PortSel::All)),
            ("show config fwd", ShowConfigFwd),
            ("set fwd macswap", SetFwd(FwdMode::MacSwap)),
            ("set fwd 5tswap", SetFwd(FwdMode::FiveTupleSwap)),
            ("set verbose 1", SetVerbose(1)),
            ("port stop all", PortStop(PortSel::All)),
            ("port start 1", PortStart(PortSel::One(1))),
            ("port config all rss udp", PortRss(PortSel::All, RssGroup::Udp)),
            ("port config 0 rss none", PortRss(PortSel::One(0), RssGroup::None)),
            ("  quit  ", Quit),
            ("help", Help),
        ];
        for (line, want) in cases {
            assert_eq!(parse(line).as_ref(), Ok(want), "{line:?}");
        }
        let key =
            "6d5a56da255b0ec24167253d43a38fb0d0ca2bcbae7b30b477cb2da38030f20c6a42b73bbeac01fa";
        match parse(&format!("port config 0 rss-hash-key ipv4-udp {key}")).unwrap() {
            PortRssKey { port: 0, flow_type, key } => {
                assert_eq!(flow_type, rss::NONFRAG_IPV4_UDP);
                assert_eq!(key.len(), 40);
                assert_eq!(&key[..3], &[0x6d, 0x5a, 0x56]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_commands_say_what_was_expected() {
        assert_eq!(parse("foo bar"), Err(CmdError::NotFound));
        let cases = [
            ("set fwd warp", "expected one of io, mac"),
            ("set verbose x", "verbosity"),
            ("show port stats", "expected 'all' or a port id"),
            ("show port stats x", "got 'x'"),
            ("show port stats 0 1", "unexpected '1'"),
            ("show port bogus 0", "stats, xstats or info"),
            ("start tx_first 0", "bursts >= 1"),
            ("start now", "start tx_first"),
            ("port config all rss sctp", "ip, udp, tcp, all or none"),
            ("port config 0 rss-hash-key ipv9 00", "ipv4, ipv4-frag"),
            ("port config 0 rss-hash-key ipv4 abc", "hexadecimal"),
            ("port config 0 rss-hash-key ipv4 zz", "hexadecimal"),
            ("port config all rss-hash-key ipv4 00", "one port at a time"),
            ("port frob", "port stop|start"),
        ];
        for (line, part) in cases {
            let e = parse(line).unwrap_err();
            assert!(matches!(e, CmdError::BadArgs(_)), "{line}: {e:?}");
            assert!(e.to_string().starts_with("Bad arguments: "), "{e}");
            assert!(e.to_string().contains(part), "{line}: {e}");
        }
    }

    #[test]
    fn hex_keys() {
        assert_eq!(parse_hex("00ff10"), Some(vec![0, 255, 16]));
        assert_eq!(parse_hex("0"), None);
        assert_eq!(parse_hex(""), None);
        assert_eq!(parse_hex("0g"), None);
        assert_eq!(RssGroup::None.hf(), 0);
        assert_eq!(RssGroup::All.hf() & rss::UDP, rss::UDP);
    }
}
