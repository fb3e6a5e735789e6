//! Wires: where the device's vports send and receive frames.
//!
//! `pair` is handled inside the device (a transmitted frame goes straight into the peer vport's
//! RX path). Everything else is a [`Port`] per vport: the traffic generator ([`generator`]), a TAP
//! interface ([`tap`]) or an existing interface through AF_PACKET ([`afpacket`]). The device
//! thread owns the ports; nothing here is shared between threads.

pub mod afpacket;
pub mod generator;
pub mod tap;

use crate::config::WireSpec;

/// Why a wire could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("wire {what}: {source}")]
pub struct WireError {
    /// Which interface or wire.
    pub what: String,
    /// What failed.
    #[source]
    pub source: std::io::Error,
}

/// One vport's connection to the outside.
pub trait Port: Send {
    /// Sends a frame that leaves the vport. False if it was dropped (the caller counts it).
    fn send(&mut self, frame: &[u8]) -> bool;

    /// Receives one waiting frame into `buf` (large enough for the biggest frame) and returns
    /// its length, or `None` when nothing is waiting. Never blocks.
    fn recv(&mut self, buf: &mut [u8]) -> Option<usize>;

    /// Receives a frame without copying it, when the port can (the generator): calls `take`
    /// with the frame and returns what `take` returned. The default copies through `recv`.
    fn recv_with(&mut self, buf: &mut [u8], take: &mut dyn FnMut(&[u8]) -> bool) -> Option<bool> {
        let n = self.recv(buf)?;
        Some(take(&buf[..n]))
    }
}

/// A port that is not there (a stand-in while the real one is borrowed).
pub struct Unplugged;

impl Port for Unplugged {
    fn send(&mut self, _frame: &[u8]) -> bool {
        false
    }

    fn recv(&mut self, _buf: &mut [u8]) -> Option<usize> {
        None
    }
}

/// The wire of a device.
pub enum Wire {
    /// Vports cabled in pairs inside the device.
    Pair,
    /// One port per vport.
    Ports(Vec<Box<dyn Port>>),
}

impl Wire {
    /// Builds the wire for `vports` vports with MACs `macs`.
    pub fn open(spec: &WireSpec, macs: &[[u8; 6]]) -> Result<Wire, WireError> {
        Ok(match spec {
            WireSpec::Pair => Wire::Pair,
            WireSpec::Gen(g) => Wire::Ports(
                macs.iter()
                    .map(|m| Box::new(generator::Generator::new(*g, *m)) as Box<dyn Port>)
                    .collect(),
            ),
            WireSpec::Tap(names) => Wire::Ports(
                names
                    .iter()
                    .map(|n| tap::Tap::open(n).map(|p| Box::new(p) as Box<dyn Port>))
                    .collect::<Result<_, _>>()?,
            ),
            WireSpec::AfPacket(names) => Wire::Ports(
                names
                    .iter()
                    .map(|n| afpacket::AfPacket::open(n).map(|p| Box::new(p) as Box<dyn Port>))
                    .collect::<Result<_, _>>()?,
            ),
        })
    }

    /// The peer of `vport` on a pair wire.
    pub fn pair_peer(vport: u16, vports: u16) -> u16 {
        let peer = vport ^ 1;
        if peer < vports { peer } else { vport }
    }
}
