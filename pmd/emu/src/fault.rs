//! Faults the device can be told to commit, from tests or `mana-emu ctl ... inject`.

use std::str::FromStr;
use std::time::Duration;

use crate::config::ParseError;

/// One injected fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Post EQE 135 (GDMA_EQE_HWC_RESET_REQUEST) on the HWC EQ; the hardware channel then stops
    /// answering for the configured time, every queue, region and key becomes invalid, and a new
    /// ESTABLISH_HWC is accepted afterwards.
    ResetRequest,
    /// BAR0 reads all ones and the device stops, until it resets itself after the configured
    /// time (or `down` if given).
    Fatal {
        /// Override of the configured down time.
        down: Option<Duration>,
    },
    /// Hot removal: BAR0 reads all ones, the device is gone until `Readd`.
    Remove,
    /// The removed device comes back, freshly reset.
    Readd,
    /// Disable send queue `sq` with CQE_TX_GDMA_ERR on its next WQE.
    SqError {
        /// Queue id.
        sq: u32,
    },
    /// Answer every HWC request this much later.
    HwcDelay(Duration),
    /// Answer the HWC request of this message type with an error status.
    FailCmd(u32),
    /// Corrupt a field of CQEs at this rate (per million CQEs; 0 turns it off).
    Hostile {
        /// Corrupted CQEs per million.
        per_million: u32,
    },
    /// Turn off HwcDelay, FailCmd and Hostile.
    Clear,
}

/// HWC message types by the names `fail-cmd` accepts.
pub const COMMAND_NAMES: &[(&str, u32)] = &[
    ("VERIFY_VF_DRIVER_VERSION", gdma_defs::GDMA_VERIFY_VF_DRIVER_VERSION),
    ("QUERY_MAX_RESOURCES", gdma_defs::GDMA_QUERY_MAX_RESOURCES),
    ("LIST_DEVICES", gdma_defs::GDMA_LIST_DEVICES),
    ("REGISTER_DEVICE", gdma_defs::GDMA_REGISTER_DEVICE),
    ("DEREGISTER_DEVICE", gdma_defs::GDMA_DEREGISTER_DEVICE),
    ("GENERATE_TEST_EQE", gdma_defs::GDMA_GENERATE_TEST_EQE),
    ("GENERATE_RESET_REQUEST_EQE", gdma_defs::GDMA_GENERATE_RESET_REQUEST_EQE),
    ("CREATE_QUEUE", gdma_defs::GDMA_CREATE_QUEUE),
    ("DISABLE_QUEUE", gdma_defs::GDMA_DISABLE_QUEUE),
    ("ALLOCATE_RESOURCE_RANGE", gdma_defs::GDMA_ALLOCATE_RESOURCE_RANGE),
    ("DESTROY_RESOURCE_RANGE", gdma_defs::GDMA_DESTROY_RESOURCE_RANGE),
    ("CREATE_DMA_REGION", gdma_defs::GDMA_CREATE_DMA_REGION),
    ("DMA_REGION_ADD_PAGES", gdma_defs::GDMA_DMA_REGION_ADD_PAGES),
    ("DESTROY_DMA_REGION", gdma_defs::GDMA_DESTROY_DMA_REGION),
    ("QUERY_DEV_CONFIG", gdma_defs::MANA_QUERY_DEV_CONFIG),
    ("QUERY_GF_STAT", gdma_defs::MANA_QUERY_GF_STAT),
    ("CONFIG_VPORT_TX", gdma_defs::MANA_CONFIG_VPORT_TX),
    ("CREATE_WQ_OBJ", gdma_defs::MANA_CREATE_WQ_OBJ),
    ("DESTROY_WQ_OBJ", gdma_defs::MANA_DESTROY_WQ_OBJ),
    ("FENCE_RQ", gdma_defs::MANA_FENCE_RQ),
    ("CONFIG_VPORT_RX", gdma_defs::MANA_CONFIG_VPORT_RX),
    ("QUERY_VPORT_CONFIG", gdma_defs::MANA_QUERY_VPORT_CONFIG),
];

/// The name of an HWC message type, if known.
pub fn command_name(msg_type: u32) -> Option<&'static str> {
    COMMAND_NAMES.iter().find(|(_, t)| *t == msg_type).map(|(n, _)| *n)
}

fn perr(what: &str, why: impl Into<String>) -> ParseError {
    ParseError { what: what.to_owned(), why: why.into() }
}

fn ms(what: &str, v: Option<&str>) -> Result<Duration, ParseError> {
    let v = v.ok_or_else(|| perr(what, "needs a time in milliseconds"))?;
    let n: u64 =
        v.parse().map_err(|_| perr(what, format!("'{v}' is not a number of milliseconds")))?;
    Ok(Duration::from_millis(n))
}

impl FromStr for Fault {
    type Err = ParseError;

    /// `reset-request`, `fatal [MS]`, `remove`, `readd`, `sq-error Q`, `hwc-delay MS`,
    /// `fail-cmd NAME|NUMBER`, `hostile PER_MILLION`, `clear`.
    fn from_str(s: &str) -> Result<Self, ParseError> {
        let mut words = s.split_whitespace();
        let kind = words.next().unwrap_or("");
        let arg = words.next();
        if words.next().is_some() {
            return Err(perr(s, "too many arguments"));
        }
        let no_arg = |f: Fault| {
            if arg.is_some() { Err(perr(s, format!("{kind} takes no argument"))) } else { Ok(f) }
        };
        match kind {
            "reset-request" => no_arg(Fault::ResetRequest),
            "fatal" => Ok(Fault::Fatal { down: arg.map(|a| ms(s, Some(a))).transpose()? }),
            "remove" => no_arg(Fault::Remove),
            "readd" => no_arg(Fault::Readd),
            "sq-error" => {
                let q = arg.ok_or_else(|| perr(s, "sq-error needs a send queue id"))?;
                let sq = parse_u32(q).ok_or_else(|| perr(s, format!("'{q}' is not a queue id")))?;
                Ok(Fault::SqError { sq })
            }
            "hwc-delay" => Ok(Fault::HwcDelay(ms(s, arg)?)),
            "fail-cmd" => {
                let name = arg.ok_or_else(|| perr(s, "fail-cmd needs a command name"))?;
                let upper = name.to_ascii_uppercase().replace('-', "_");
                let bare = upper
                    .strip_prefix("GDMA_")
                    .or_else(|| upper.strip_prefix("MANA_"))
                    .unwrap_or(&upper);
                let t = COMMAND_NAMES
                    .iter()
                    .find(|(n, _)| *n == bare)
                    .map(|(_, t)| *t)
                    .or_else(|| parse_u32(name))
                    .ok_or_else(|| perr(s, format!("unknown command '{name}'")))?;
                Ok(Fault::FailCmd(t))
            }
            "hostile" => {
                let r = arg.ok_or_else(|| perr(s, "hostile needs a rate per million CQEs"))?;
                let per_million = r.parse().ok().filter(|&n: &u32| n <= 1_000_000);
                Ok(Fault::Hostile {
                    per_million: per_million
                        .ok_or_else(|| perr(s, format!("'{r}' is not a rate in 0..=1000000")))?,
                })
            }
            "clear" => no_arg(Fault::Clear),
            _ => Err(perr(
                s,
                "unknown fault (reset-request, fatal [MS], remove, readd, sq-error Q, hwc-delay MS, \
                 fail-cmd NAME, hostile PER_MILLION, clear)",
            )),
        }
    }
}

fn parse_u32(s: &str) -> Option<u32> {
    match s.strip_prefix("0x") {
        Some(h) => u32::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_words() {
        assert_eq!("reset-request".parse(), Ok(Fault::ResetRequest));
        assert_eq!("fatal".parse(), Ok(Fault::Fatal { down: None }));
        assert_eq!("fatal 50".parse(), Ok(Fault::Fatal { down: Some(Duration::from_millis(50)) }));
        assert_eq!("sq-error 0x1a".parse(), Ok(Fault::SqError { sq: 0x1a }));
        assert_eq!("hwc-delay 20".parse(), Ok(Fault::HwcDelay(Duration::from_millis(20))));
        assert_eq!(
            "fail-cmd create_wq_obj".parse(),
            Ok(Fault::FailCmd(gdma_defs::MANA_CREATE_WQ_OBJ))
        );
        assert_eq!("fail-cmd 12".parse(), Ok(Fault::FailCmd(12)));
        assert_eq!(
            "fail-cmd GDMA_CREATE_QUEUE".parse(),
            Ok(Fault::FailCmd(gdma_defs::GDMA_CREATE_QUEUE))
        );
        assert_eq!("hostile 1000".parse(), Ok(Fault::Hostile { per_million: 1000 }));
        for bad in [
            "",
            "explode",
            "sq-error",
            "sq-error x",
            "remove now",
            "hostile 2000000",
            "fail-cmd NOPE",
            "hwc-delay",
        ] {
            assert!(bad.parse::<Fault>().is_err(), "{bad}");
        }
        assert_eq!(command_name(gdma_defs::MANA_FENCE_RQ), Some("FENCE_RQ"));
    }
}
