//! The `ring` port (like DPDK's net_ring). Stub: the helper session replaces it.

use crate::error::EthResult;
use crate::port::PortDriver;
use crate::probe::{DriverFactory, ProbeArgs};

/// Probes `ring` ports.
#[derive(Debug, Default)]
pub struct RingFactory;

impl DriverFactory for RingFactory {
    fn name(&self) -> &'static str {
        "ring"
    }

    fn usage(&self) -> &'static str {
        "ring:NAME"
    }

    fn probe(&self, args: &ProbeArgs) -> EthResult<Vec<Box<dyn PortDriver>>> {
        Err(args.error("the ring driver is not built yet"))
    }
}
