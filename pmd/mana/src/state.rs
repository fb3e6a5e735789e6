//! The device state of §11.1 of the recovery design: one atomic, written by the device's control
//! worker, read by anyone without a lock.
//!
//! Every transition is a store by the worker, except the first step of an episode
//! (`Active → Quiescing`), which is a compare-and-swap so that a storm of fatal reports from
//! several sources starts exactly one episode. Stores are Release and loads Acquire (ST-1): a
//! thread that reads a state sees what the worker did before entering it (a control call that
//! reads `Active` after a recovery sees the rebuilt queues).

#[cfg(loom)]
use loom::sync::atomic::{AtomicU8, Ordering};
#[cfg(not(loom))]
use std::sync::atomic::{AtomicU8, Ordering};

/// What the device is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum DevState {
    /// Serving: bursts run, control calls work.
    Active = 0,
    /// A fault was seen: bursts are being shut out, control calls get Busy.
    Quiescing = 1,
    /// Device objects and buffers are gone; waiting for the device to come back.
    TornDown = 2,
    /// Bringing the device back and rebuilding the ports.
    Recovering = 3,
    /// Recovery gave up: the ports are unusable until closed.
    Failed = 4,
    /// The device was removed: no recovery is attempted.
    Removed = 5,
    /// Closed.
    Closed = 6,
}

impl DevState {
    fn from_u8(v: u8) -> DevState {
        match v {
            0 => DevState::Active,
            1 => DevState::Quiescing,
            2 => DevState::TornDown,
            3 => DevState::Recovering,
            4 => DevState::Failed,
            5 => DevState::Removed,
            _ => DevState::Closed,
        }
    }

    /// Its name (for errors and logs).
    pub fn name(self) -> &'static str {
        match self {
            DevState::Active => "active",
            DevState::Quiescing => "quiescing",
            DevState::TornDown => "torn down",
            DevState::Recovering => "recovering",
            DevState::Failed => "failed",
            DevState::Removed => "removed",
            DevState::Closed => "closed",
        }
    }

    /// Whether a recovery episode is under way (control calls other than stop and close are
    /// refused with Busy).
    pub fn in_episode(self) -> bool {
        matches!(self, DevState::Quiescing | DevState::TornDown | DevState::Recovering)
    }
}

/// The state cell.
#[derive(Debug)]
pub struct StateCell(AtomicU8);

impl Default for StateCell {
    fn default() -> Self {
        StateCell(AtomicU8::new(DevState::Active as u8))
    }
}

impl StateCell {
    /// The state now (ST-1 Acquire).
    pub fn get(&self) -> DevState {
        DevState::from_u8(self.0.load(Ordering::Acquire))
    }

    /// Worker only: moves to `s` (ST-1 Release).
    pub fn set(&self, s: DevState) {
        self.0.store(s as u8, Ordering::Release);
    }

    /// Starts an episode: `Active → Quiescing`. True for exactly one caller per episode, however
    /// many report the fault (AcqRel: ST-1 on both sides).
    pub fn begin_episode(&self) -> bool {
        self.0
            .compare_exchange(
                DevState::Active as u8,
                DevState::Quiescing as u8,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn only_one_of_many_reports_starts_an_episode() {
        let s = std::sync::Arc::new(StateCell::default());
        let winners: usize = (0..8)
            .map(|_| {
                let s = s.clone();
                std::thread::spawn(move || s.begin_episode() as usize)
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .sum();
        assert_eq!(winners, 1);
        assert_eq!(s.get(), DevState::Quiescing);
        assert!(!s.begin_episode(), "no second episode while one runs");
        s.set(DevState::Active);
        assert!(s.begin_episode(), "the next fault after recovery starts a new one");
    }

    #[test]
    fn states_round_trip() {
        for v in 0..7u8 {
            assert_eq!(DevState::from_u8(v) as u8, v);
        }
        assert!(DevState::TornDown.in_episode());
        assert!(!DevState::Failed.in_episode());
    }
}
