//! The hardware channel (being written).

use crate::device::Core;
use crate::objects::Objects;
use crate::queues::{Cq, Eq, Wq};

/// The HWC queues.
pub(crate) struct Hwc {
    pub(crate) eq: Eq,
    pub(crate) cq: Cq,
    pub(crate) sq: Wq,
    pub(crate) rq: Wq,
}

impl Hwc {
    /// Posts an event on the HWC EQ.
    pub(crate) fn post_event(&mut self, _obj: &mut Objects, event: u8, data: [u32; 3]) {
        self.eq.post(event, data);
    }
}

/// Serves the SMC.
pub(crate) fn poll_smc(_core: &mut Core) -> bool {
    false
}

/// Serves HWC requests.
pub(crate) fn service(_core: &mut Core) -> bool {
    false
}
