//! TX (being written).
use crate::device::Core;
/// Processes send queues.
pub(crate) fn process(_core: &mut Core) -> bool {
    false
}
