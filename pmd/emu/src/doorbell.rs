//! Doorbell dispatch: a value taken from a doorbell slot goes to the queue its id names.

use gdma_defs::{Doorbell, GDMA_EQE_COMPLETION};

use crate::device::{Core, Shared};
use crate::queues::{Eq, Posted};

/// Dispatches doorbell value `v` taken from register `slot` of some page.
pub(crate) fn dispatch(core: &mut Core, slot: u32, v: u64) {
    let shared = core.shared.clone();
    let stats = &shared.stats.device;
    let shared = &*shared;
    let Some(db) = Doorbell::decode(slot, v) else {
        stats.doorbells_unknown_queue.inc();
        return;
    };
    match db {
        Doorbell::Sq { id, tail } => {
            if let Some(h) = core.hwc.as_mut().filter(|h| h.sq.id == id) {
                if !h.sq.doorbell(tail) {
                    stats.doorbells_refused.inc();
                }
            } else if let Some(sq) = core.obj.sqs.get_mut(id) {
                if !sq.wq.doorbell(tail) {
                    stats.doorbells_refused.inc();
                } else if sq.wq.pending() != 0 && !core.obj.tx_ready.contains(&id) {
                    core.obj.tx_ready.push(id);
                }
            } else {
                stats.doorbells_unknown_queue.inc();
            }
        }
        Doorbell::Rq { id, tail, .. } => {
            let wq = match core.hwc.as_mut().filter(|h| h.rq.id == id) {
                Some(h) => Some(&mut h.rq),
                None => core.obj.rqs.get_mut(id).map(|r| &mut r.wq),
            };
            match wq {
                Some(wq) => {
                    if !wq.doorbell(tail) {
                        stats.doorbells_refused.inc();
                    }
                }
                None => stats.doorbells_unknown_queue.inc(),
            }
        }
        Doorbell::Cq { id, index, arm } => {
            if let Some(h) = core.hwc.as_mut().filter(|h| h.cq.id == id) {
                if h.cq.doorbell(index, arm) {
                    let cq = h.cq.id;
                    post_eqe(shared, &mut h.eq, GDMA_EQE_COMPLETION, [cq, 0, 0]);
                }
            } else if let Some(cq) = core.obj.cqs.get_mut(id) {
                if cq.doorbell(index, arm) {
                    let parent = cq.parent_eq;
                    signal_eq(core, parent, id);
                }
            } else {
                stats.doorbells_unknown_queue.inc();
            }
        }
        Doorbell::Eq { id, index, arm } => {
            let eq = match core.hwc.as_mut().filter(|h| h.eq.id == id) {
                Some(h) => Some(&mut h.eq),
                None => core.obj.eqs.get_mut(id),
            };
            match eq {
                Some(eq) => {
                    if eq.doorbell(index, arm) {
                        stats.interrupts.inc();
                        shared.raise(eq.msix);
                    }
                }
                None => stats.doorbells_unknown_queue.inc(),
            }
        }
        Doorbell::RqClientData(_) | Doorbell::Dim(_) => {}
    }
}

/// Posts a COMPLETION EQE for CQ `cq` on EQ `eq` (data-path EQs), counting an interrupt when
/// the EQ was armed.
pub(crate) fn signal_eq(core: &mut Core, eq: Option<u32>, cq: u32) {
    let Some(eq) = eq.and_then(|e| core.obj.eqs.get_mut(e)) else {
        return;
    };
    post_eqe(&core.shared, eq, GDMA_EQE_COMPLETION, [cq, 0, 0]);
}

/// Posts an EQE on any EQ (HWC or data path): when the EQ was armed, its MSI-X vector is
/// raised (and counted); a stall is counted when its consumer stopped ringing the doorbell.
pub(crate) fn post_eqe(shared: &Shared, eq: &mut Eq, event_type: u8, data: [u32; 3]) {
    let stats = &shared.stats.device;
    match eq.post(event_type, data) {
        Posted::Done { signal: true } => {
            stats.interrupts.inc();
            shared.raise(eq.msix);
        }
        Posted::Done { signal: false } => {}
        Posted::Stalled | Posted::Held => stats.cq_stalls.inc(),
    }
}
