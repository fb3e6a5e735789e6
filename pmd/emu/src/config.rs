//! Device configuration and the command-line words that describe it.

use std::str::FromStr;
use std::time::Duration;

/// Where a device's vports send and receive frames.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireSpec {
    /// Vports cabled to each other in pairs: 0 <-> 1, 2 <-> 3, ... (an odd last vport talks to
    /// itself).
    Pair,
    /// An endless stream of generated frames into every vport's RX; TX is counted and dropped.
    Gen(GenSpec),
    /// One Linux TAP interface per vport, created or attached by name.
    Tap(Vec<String>),
    /// One existing Linux interface per vport, through an AF_PACKET socket.
    AfPacket(Vec<String>),
}

/// What the traffic generator produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GenSpec {
    /// Frame size in bytes, without the FCS (60..=9018; 60 is the 64-byte minimum frame).
    pub frame_size: u16,
    /// Number of distinct UDP/IPv4 flows (source address and port vary), 1..=65536.
    pub flows: u32,
}

impl Default for GenSpec {
    fn default() -> Self {
        GenSpec { frame_size: 60, flows: 1024 }
    }
}

/// Why a wire or fault description could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}: {why}")]
pub struct ParseError {
    /// The text that was parsed.
    pub what: String,
    /// What is wrong with it.
    pub why: String,
}

fn perr(what: &str, why: impl Into<String>) -> ParseError {
    ParseError { what: what.to_owned(), why: why.into() }
}

impl FromStr for WireSpec {
    type Err = ParseError;

    /// `pair`, `gen[:size=N][,flows=N]`, `tap:IF0,IF1,...`, `afpacket:IF0,IF1,...`.
    fn from_str(s: &str) -> Result<Self, ParseError> {
        let (kind, args) = s.split_once(':').unwrap_or((s, ""));
        let names = || -> Result<Vec<String>, ParseError> {
            let v: Vec<String> =
                args.split(',').filter(|n| !n.is_empty()).map(str::to_owned).collect();
            if v.is_empty() {
                return Err(perr(s, format!("{kind} needs interface names: {kind}:IF0,IF1")));
            }
            if let Some(bad) = v.iter().find(|n| n.len() > 15 || n.contains(['/', ' '])) {
                return Err(perr(s, format!("'{bad}' is not an interface name")));
            }
            Ok(v)
        };
        match kind {
            "pair" if args.is_empty() => Ok(WireSpec::Pair),
            "pair" => Err(perr(s, "pair takes no arguments")),
            "gen" => {
                let mut g = GenSpec::default();
                for kv in args.split(',').filter(|a| !a.is_empty()) {
                    let (k, v) = kv
                        .split_once('=')
                        .ok_or_else(|| perr(s, format!("'{kv}' is not key=value")))?;
                    let n: u32 =
                        v.parse().map_err(|_| perr(s, format!("'{v}' is not a number")))?;
                    match k {
                        "size" if (60..=9018).contains(&n) => g.frame_size = n as u16,
                        "size" => return Err(perr(s, format!("size {n} is outside 60..=9018"))),
                        "flows" if (1..=65536).contains(&n) => g.flows = n,
                        "flows" => return Err(perr(s, format!("flows {n} is outside 1..=65536"))),
                        _ => {
                            return Err(perr(s, format!("unknown gen option '{k}' (size, flows)")));
                        }
                    }
                }
                Ok(WireSpec::Gen(g))
            }
            "tap" => Ok(WireSpec::Tap(names()?)),
            "afpacket" => Ok(WireSpec::AfPacket(names()?)),
            _ => Err(perr(
                s,
                format!("unknown wire '{kind}' (pair, gen, tap:IF0,IF1, afpacket:IF0,IF1)"),
            )),
        }
    }
}

/// Everything that shapes a device.
#[derive(Debug, Clone)]
pub struct DeviceConfig {
    /// Name (segment names, diagnostics).
    pub name: String,
    /// Number of vports (1..=16).
    pub vports: u16,
    /// Where frames go.
    pub wire: WireSpec,
    /// Queues per vport (SQs and RQs each), reported by QUERY_VPORT_CONFIG.
    pub max_queues: u32,
    /// Adapter MTU reported by QUERY_DEV_CONFIG (frame size without FCS: 1514 for MTU 1500).
    pub adapter_mtu: u16,
    /// MAC of vport 0; vport i gets the last byte plus i.
    pub mac_base: [u8; 6],
    /// Indirection table size reported per vport.
    pub indirection_entries: u32,
    /// Most CQ/EQ laps the device runs ahead of the consumer's last doorbell before it stalls
    /// (§10.2 pitfall 1: hardware needs a doorbell at least every 8 laps). 0 disables the check.
    pub cq_lap_limit: u32,
    /// How long the hardware channel stays silent after a reset request before the device
    /// accepts a new ESTABLISH_HWC.
    pub reset_down_time: Duration,
    /// How long BAR0 reads all ones after a fatal error before the device resets itself.
    pub fatal_down_time: Duration,
    /// Idle policy: loop passes spent spinning before the device starts yielding, then napping.
    pub spin_passes: u32,
    /// Idle policy: while the device serves its control channel (the last work it did was an
    /// SMC or HWC request, or coming back from a reset), its idle spinning yields the CPU once
    /// every this many passes (0: never), so that a driver thread that shares its CPU (woken
    /// for an answer, or polling for the device's return) runs at once instead of after the
    /// rest of the device's time slice. Data-path work turns this off.
    pub spin_yield_every: u32,
    /// Longest nap of an idle device.
    pub max_nap: Duration,
    /// CPU to pin the device thread to.
    pub cpu: Option<usize>,
    /// Source-MAC enforcement, as Azure does: a frame whose source MAC is not its vport's is
    /// dropped with CQE_TX_SA_DROP. Off lets forwarders that keep the sender's MAC (testpmd's
    /// io mode) run over the emulation, which real MANA would not allow.
    pub source_mac_check: bool,
    /// Test hook: queues made by CREATE_WQ_OBJ start near the 2^32 wrap of their free-running
    /// positions (`gdma_defs::near_wrap_wq_start`, `OwnerRing::near_wrap_index`) instead of at
    /// the start; a driver told the same proves its counters cross 2^32.
    pub start_near_wrap: bool,
}

impl DeviceConfig {
    /// `vports` vports on `wire` with defaults for everything else.
    pub fn new(vports: u16, wire: WireSpec) -> Self {
        DeviceConfig {
            name: "mana-emu".to_owned(),
            vports,
            wire,
            max_queues: 16,
            adapter_mtu: 1514,
            mac_base: [0x00, 0x15, 0x5d, 0x00, 0x00, 0x10],
            indirection_entries: 64,
            cq_lap_limit: 7,
            reset_down_time: Duration::from_millis(100),
            fatal_down_time: Duration::from_millis(200),
            spin_passes: 20_000,
            spin_yield_every: 256,
            max_nap: Duration::from_millis(1),
            cpu: None,
            source_mac_check: true,
            start_near_wrap: false,
        }
    }

    /// MAC of vport `i`.
    pub fn mac(&self, i: u16) -> [u8; 6] {
        let mut m = self.mac_base;
        let v = u16::from_be_bytes([m[4], m[5]]).wrapping_add(i);
        m[4..6].copy_from_slice(&v.to_be_bytes());
        m
    }

    /// Checks ranges; the error names the field.
    pub fn validate(&self) -> Result<(), ParseError> {
        if !(1..=16).contains(&self.vports) {
            return Err(perr("vports", format!("{} is outside 1..=16", self.vports)));
        }
        if !(1..=64).contains(&self.max_queues) {
            return Err(perr("queues", format!("{} is outside 1..=64", self.max_queues)));
        }
        if !self.indirection_entries.is_power_of_two() || self.indirection_entries > 512 {
            return Err(perr(
                "indirection_entries",
                format!("{} is not a power of two <= 512", self.indirection_entries),
            ));
        }
        if let WireSpec::Tap(v) | WireSpec::AfPacket(v) = &self.wire {
            if v.len() != self.vports as usize {
                return Err(perr(
                    "wire",
                    format!("{} interfaces for {} vports", v.len(), self.vports),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_words() {
        assert_eq!("pair".parse(), Ok(WireSpec::Pair));
        assert_eq!("gen".parse(), Ok(WireSpec::Gen(GenSpec::default())));
        assert_eq!(
            "gen:size=128,flows=4".parse(),
            Ok(WireSpec::Gen(GenSpec { frame_size: 128, flows: 4 }))
        );
        assert_eq!("tap:a,b".parse(), Ok(WireSpec::Tap(vec!["a".into(), "b".into()])));
        assert_eq!("afpacket:veth0".parse(), Ok(WireSpec::AfPacket(vec!["veth0".into()])));
        for bad in [
            "tap",
            "tap:",
            "gen:size=10",
            "gen:flows=0",
            "gen:colour=red",
            "gen:size",
            "wifi",
            "pair:x",
            "afpacket:a/b",
        ] {
            let e = bad.parse::<WireSpec>().unwrap_err();
            assert_eq!(e.what, bad, "{e}");
        }
    }

    #[test]
    fn macs_and_validation() {
        let mut c = DeviceConfig::new(2, WireSpec::Pair);
        assert_eq!(c.mac(1), [0x00, 0x15, 0x5d, 0x00, 0x00, 0x11]);
        c.validate().unwrap();
        c.wire = WireSpec::Tap(vec!["a".into()]);
        assert!(c.validate().unwrap_err().why.contains("1 interfaces for 2 vports"));
        c.vports = 0;
        assert_eq!(c.validate().unwrap_err().what, "vports");
    }
}
