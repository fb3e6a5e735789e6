//! Probe strings of the MANA driver.
//!
//! - `mana:emu[,vports=N][,wire=WIRE][,queues=N][,any_source_mac=0|1][,near_wrap=0|1]`: a software
//!   MANA device
//!   started in this process (wire: `pair`, `gen[:size=N,flows=N]`, `tap:IF0,IF1`,
//!   `afpacket:IF0,IF1`), one port per vport. What tests and the default testpmd run use; no root
//!   and no hugepages needed.
//! - `mana:sock=PATH`: the device of a running `mana-emu` daemon.

use std::sync::{Arc, Mutex};

use pmd_ethdev::port::PortDriver;
use pmd_ethdev::probe::{DriverFactory, ProbeArgs};
use pmd_ethdev::{EthError, EthResult};

use crate::bus::Bus;
use crate::device::{Device, DeviceOpts};
use crate::gdma::{GdmaConfig, GdmaControlPlane};
use crate::port::ManaPort;

/// Probes `mana` ports.
#[derive(Default)]
pub struct ManaFactory {
    /// An in-process device `mana:emu` attaches to instead of starting one (tests use it to
    /// inject faults into the device the ports drive).
    #[cfg(feature = "emu")]
    device: Mutex<Option<Arc<mana_emu::Device>>>,
    /// Control-plane settings.
    pub gdma: GdmaConfig,
    /// Driver options.
    pub opts: DeviceOpts,
}

impl std::fmt::Debug for ManaFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ManaFactory")
    }
}

impl ManaFactory {
    /// A factory.
    pub fn new() -> Self {
        Self::default()
    }

    /// `mana:emu` attaches to `dev` (once) instead of starting a device.
    #[cfg(feature = "emu")]
    pub fn with_device(self, dev: Arc<mana_emu::Device>) -> Self {
        *self.device.lock().unwrap_or_else(|e| e.into_inner()) = Some(dev);
        self
    }

    /// Queues start near the 2^32 wrap of their positions (a test hook; the device must be told
    /// the same: `mana_emu::DeviceConfig::start_near_wrap`, or `near_wrap=1` in `mana:emu`).
    pub fn start_near_wrap(mut self) -> Self {
        self.opts.start_near_wrap = true;
        self
    }

    fn ports(&self, bus: Box<dyn Bus>, spec: &str) -> EthResult<Vec<Box<dyn PortDriver>>> {
        self.ports_with(bus, spec, self.opts.clone())
    }

    fn ports_with(
        &self,
        bus: Box<dyn Bus>,
        spec: &str,
        opts: DeviceOpts,
    ) -> EthResult<Vec<Box<dyn PortDriver>>> {
        let describe = bus.describe();
        let cp = GdmaControlPlane::new(bus, self.gdma.clone());
        let dev = Device::start(Box::new(cp), describe, opts)
            .map_err(|why| EthError::BadProbe { spec: spec.to_owned(), why })?;
        Ok((0..dev.vports.len())
            .map(|i| Box::new(ManaPort::new(dev.clone(), i)) as Box<dyn PortDriver>)
            .collect())
    }
}

impl DriverFactory for ManaFactory {
    fn name(&self) -> &'static str {
        "mana"
    }

    fn usage(&self) -> &'static str {
        "mana:emu[,vports=N][,wire=pair|gen|tap:IF0,IF1|afpacket:IF0,IF1][,queues=N][,any_source_mac=0|1] \
         or mana:sock=PATH"
    }

    fn probe(&self, args: &ProbeArgs) -> EthResult<Vec<Box<dyn PortDriver>>> {
        match (args.head.as_deref(), args.get("sock")) {
            #[cfg(feature = "emu")]
            (Some("emu"), None) => {
                args.only(&["vports", "wire", "queues", "any_source_mac", "near_wrap"])?;
                let near_wrap = args.parse_or::<u8>("near_wrap", 0)? != 0;
                let given = self.device.lock().unwrap_or_else(|e| e.into_inner()).take();
                let dev = match given {
                    Some(d) => d,
                    None => {
                        let vports: u16 = args.parse_or("vports", 2)?;
                        let wire: mana_emu::WireSpec =
                            args.get("wire")
                                .unwrap_or("pair")
                                .parse()
                                .map_err(|e| args.error(format!("wire: {e}")))?;
                        let mut cfg = mana_emu::DeviceConfig::new(vports, wire);
                        cfg.max_queues = args.parse_or("queues", 16u32)?;
                        cfg.source_mac_check = args.parse_or::<u8>("any_source_mac", 0)? == 0;
                        cfg.start_near_wrap = near_wrap;
                        cfg.validate().map_err(|e| args.error(e.to_string()))?;
                        Arc::new(
                            mana_emu::Device::start(cfg)
                                .map_err(|e| args.error(format!("cannot start the device: {e}")))?,
                        )
                    }
                };
                let mut opts = self.opts.clone();
                opts.start_near_wrap |= near_wrap || dev.config().start_near_wrap;
                self.ports_with(Box::new(crate::bus::EmuBus::new(dev)), &args.spec, opts)
            }
            #[cfg(feature = "emu")]
            (None, Some(path)) => {
                args.only(&["sock"])?;
                let bus = crate::bus::SockBus::connect(std::path::Path::new(path))
                    .map_err(|e| args.error(e))?;
                self.ports(Box::new(bus), &args.spec)
            }
            _ => Err(args.error("expected mana:emu[,...] or mana:sock=PATH")),
        }
    }
}
