//! RX (being written).
use crate::device::Core;
/// Receives from the wire.
pub(crate) fn from_wire(_core: &mut Core) -> bool {
    false
}
/// Writes pending coalesced CQEs.
pub(crate) fn flush_coalesced(_core: &mut Core) -> bool {
    false
}
