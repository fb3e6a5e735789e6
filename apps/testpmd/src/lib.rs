//! testpmd: DPDK's testpmd for our ports, so anyone who knows `dpdk-testpmd` feels at home.
//!
//! - [`opts`]: the command line, with DPDK's option names and meanings, into a [`opts::Config`].
//! - [`topo`]: port pairing, streams (one per RX queue) and their spread over forwarding cores.
//! - [`pkt`]: the packet rewrites of the modes (mac, macswap, 5tswap, icmpecho, generated UDP),
//!   pure functions over frame bytes.
//! - [`fwd`]: the modes over mbufs, the streams that own the queue handles, a core's loop.
//! - [`stats`]: DPDK's statistics blocks as pure functions over numbers.
//! - [`cmd`]: the interactive commands.
//! - [`app`]: setup, start/stop on pinned cores, the batch and interactive loops, shutdown.
#![forbid(unsafe_code)]

pub mod app;
pub mod cmd;
pub mod fwd;
pub mod opts;
pub mod pkt;
pub mod stats;
pub mod topo;
