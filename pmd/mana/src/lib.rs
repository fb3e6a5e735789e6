//! mana-pmd: the MANA poll-mode driver.
#![deny(unsafe_code)]

pub mod bus;
pub mod cp;
pub mod cq;
pub mod device;
pub mod dma;
pub mod factory;
pub mod gdma;
pub mod port;
pub mod qmem;
pub mod rxq;
pub mod state;
pub mod txq;

pub use device::{DeviceOpts, Hooks};
pub use factory::ManaFactory;
pub use port::ManaPort;
pub use state::DevState;
