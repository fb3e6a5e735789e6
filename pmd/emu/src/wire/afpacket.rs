//! AF_PACKET wire (being written).

use super::{Port, WireError};

/// An interface through AF_PACKET.
pub struct AfPacket;

impl AfPacket {
    /// Opens AF_PACKET on interface `name`.
    pub fn open(name: &str) -> Result<Self, WireError> {
        Err(WireError { what: name.to_owned(), source: std::io::ErrorKind::Unsupported.into() })
    }
}

impl Port for AfPacket {
    fn send(&mut self, _frame: &[u8]) -> bool {
        false
    }
    fn recv(&mut self, _buf: &mut [u8]) -> Option<usize> {
        None
    }
}
