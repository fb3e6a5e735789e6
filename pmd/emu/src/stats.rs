//! Device counters: written by the device thread only, readable by anyone at any time.
//!
//! Each counter is an `AtomicU64` updated with a plain load and store (one writer), so counting
//! costs what a non-atomic increment costs, and readers never see a torn value.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::fault::COMMAND_NAMES;

/// A counter with one writer.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds `n` (device thread only).
    #[inline(always)]
    pub fn add(&self, n: u64) {
        self.0.store(self.0.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
    }

    /// Adds one (device thread only).
    #[inline(always)]
    pub fn inc(&self) {
        self.add(1);
    }

    /// Current value.
    #[inline]
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

macro_rules! counters {
    ($(#[$m:meta])* $name:ident { $($(#[$fm:meta])* $field:ident),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Default)]
        pub struct $name {
            $($(#[$fm])* pub $field: Counter,)*
        }

        impl $name {
            /// (name, value) of every counter.
            pub fn values(&self) -> Vec<(&'static str, u64)> {
                vec![$((stringify!($field), self.$field.get()),)*]
            }
        }
    };
}

counters! {
    /// Per-vport traffic counters.
    VportStats {
        /// Frames delivered into RQ buffers.
        rx_packets,
        /// Bytes delivered into RQ buffers.
        rx_bytes,
        /// Frames dropped: no RQ WQE posted.
        rx_drops_no_wqe,
        /// Frames dropped: the vport is not rx-enabled (or has no queue to steer to).
        rx_drops_disabled,
        /// Frames larger than the posted buffer (CQE_RX_TRUNCATED).
        rx_truncated,
        /// RX CQEs written (a coalesced CQE counts once).
        rx_cqes,
        /// Frames transmitted (delivered to the wire).
        tx_packets,
        /// Bytes transmitted.
        tx_bytes,
        /// TX WQEs completed with an error CQE.
        tx_errors,
        /// TX CQEs written (suppressed successes are not counted).
        tx_cqes,
        /// TX frames dropped for MTU.
        tx_drops_mtu,
        /// TX frames dropped by source-MAC enforcement (CQE_TX_SA_DROP).
        tx_drops_sa,
        /// Frames the wire refused (TAP/AF_PACKET send failures, or gen's sink).
        wire_tx_drops,
    }
}

counters! {
    /// Device-wide counters.
    DeviceStats {
        /// Device loop passes.
        loops,
        /// Loop passes that found work.
        busy_loops,
        /// TSC cycles spent in passes that found work (device cycles per packet = this over
        /// the packets moved).
        busy_cycles,
        /// Doorbell values taken.
        doorbells,
        /// Doorbells naming no live queue.
        doorbells_unknown_queue,
        /// WQ doorbells refused (backwards or past the ring).
        doorbells_refused,
        /// DMA accesses outside the mapped IOVA space.
        dma_errors,
        /// Send queues disabled by an error.
        sq_disabled,
        /// Completions held back because a CQ/EQ consumer stopped ringing doorbells.
        cq_stalls,
        /// EQEs posted on armed EQs (MSI-X interrupts a real device would raise).
        interrupts,
        /// HWC requests answered with an error status.
        hwc_errors,
        /// HWC requests of message types the device does not know.
        hwc_unknown,
        /// Device resets (reset request, fatal, removal).
        resets,
        /// DMA mappings added (a driver registering memory).
        dma_maps,
        /// DMA mappings removed.
        dma_unmaps,
        /// CQEs corrupted on purpose by the hostile mode.
        hostile_corruptions,
    }
}

/// All counters of a device.
#[derive(Debug)]
pub struct Stats {
    /// Device-wide counters.
    pub device: DeviceStats,
    /// One entry per vport.
    pub vports: Vec<VportStats>,
    /// HWC requests received, by message type (the order of `COMMAND_NAMES`).
    pub hwc_requests: Vec<Counter>,
    /// Hostile corruptions by kind (0..7 on RX CQEs, 7..14 on TX CQEs; the kinds of
    /// `tx::post_corrupted`).
    pub hostile_by_kind: Vec<Counter>,
}

impl Stats {
    /// Counters for `vports` vports.
    pub fn new(vports: u16) -> Self {
        Stats {
            device: DeviceStats::default(),
            vports: (0..vports).map(|_| VportStats::default()).collect(),
            hwc_requests: COMMAND_NAMES.iter().map(|_| Counter::default()).collect(),
            hostile_by_kind: (0..14).map(|_| Counter::default()).collect(),
        }
    }

    /// Counts an HWC request of `msg_type` (unknown types go to `hwc_unknown`).
    pub fn count_request(&self, msg_type: u32) {
        match COMMAND_NAMES.iter().position(|(_, t)| *t == msg_type) {
            Some(i) => self.hwc_requests[i].inc(),
            None => self.device.hwc_unknown.inc(),
        }
    }

    /// HWC requests of `msg_type` received so far.
    pub fn requests(&self, msg_type: u32) -> u64 {
        COMMAND_NAMES
            .iter()
            .position(|(_, t)| *t == msg_type)
            .map_or(0, |i| self.hwc_requests[i].get())
    }

    /// Everything as one JSON object.
    pub fn to_json(&self) -> String {
        let mut s = String::from("{\"device\":{");
        push_fields(&mut s, &self.device.values());
        s.push_str("},\"hwc_requests\":{");
        let reqs: Vec<(&str, u64)> =
            COMMAND_NAMES.iter().zip(&self.hwc_requests).map(|((n, _), c)| (*n, c.get())).collect();
        push_fields(&mut s, &reqs);
        s.push_str("},\"vports\":[");
        for (i, v) in self.vports.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            s.push('{');
            push_fields(&mut s, &v.values());
            s.push('}');
        }
        s.push_str("]}");
        s
    }
}

fn push_fields(s: &mut String, fields: &[(&str, u64)]) {
    for (i, (k, v)) in fields.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let _ = write!(s, "\"{k}\":{v}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_has_every_counter() {
        let st = Stats::new(2);
        st.vports[1].rx_packets.add(5);
        st.count_request(gdma_defs::MANA_CREATE_WQ_OBJ);
        st.count_request(0x9999);
        let j = st.to_json();
        assert!(j.contains("\"CREATE_WQ_OBJ\":1"), "{j}");
        assert!(j.contains("\"hwc_unknown\":1"), "{j}");
        assert!(j.contains("\"vports\":[{") && j.contains("\"rx_packets\":5"), "{j}");
        assert_eq!(st.requests(gdma_defs::MANA_CREATE_WQ_OBJ), 1);
        assert_eq!(j.matches('{').count(), j.matches('}').count());
    }
}
