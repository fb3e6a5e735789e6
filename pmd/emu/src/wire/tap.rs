//! TAP wire (being written).

use super::{Port, WireError};

/// A TAP interface.
pub struct Tap;

impl Tap {
    /// Opens or creates TAP interface `name`.
    pub fn open(name: &str) -> Result<Self, WireError> {
        Err(WireError { what: name.to_owned(), source: std::io::ErrorKind::Unsupported.into() })
    }
}

impl Port for Tap {
    fn send(&mut self, _frame: &[u8]) -> bool {
        false
    }
    fn recv(&mut self, _buf: &mut [u8]) -> Option<usize> {
        None
    }
}
