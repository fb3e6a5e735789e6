//! mana-emu: a software MANA virtual function. `DESIGN.md` next to this crate describes it.
//!
//! Start one with [`Device::start`]: it runs on its own thread, publishes BAR0 (register map,
//! shared-memory channel, doorbell pages) in a shared segment, serves the hardware channel,
//! moves frames between its vports and the configured [`WireSpec`], and commits [`Fault`]s on
//! command. The `mana-emu` daemon (apps/mana-emu) runs the same device behind a unix socket.
#![deny(unsafe_code)]

pub mod bar;
mod cmds;
pub mod config;
pub mod device;
pub mod dma;
mod doorbell;
pub mod fault;
mod fdpass;
pub mod frame;
mod hwc;
pub mod link;
pub mod objects;
pub mod queues;
pub mod rss;
mod rx;
mod shm;
pub mod stats;
#[cfg(any(test, feature = "testdrv"))]
pub mod testdrv;
#[cfg(test)]
mod tests;
mod tx;
pub mod wire;

pub use config::{DeviceConfig, GenSpec, WireSpec};
pub use device::{Device, EmuError, InterruptHandler};
pub use dma::{MapError, Mapping};
pub use fault::Fault;
pub use stats::Stats;
