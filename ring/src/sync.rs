//! The atomics the ring is built from, switched to loom's models under `--cfg loom`.
//!
//! Everything that synchronises between threads goes through this module, so the loom models in
//! `tests/loom.rs` exercise exactly the code that ships.

#[cfg(loom)]
pub(crate) use loom::sync::Arc;
#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU32, Ordering};

#[cfg(not(loom))]
pub(crate) use std::sync::Arc;
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicU32, Ordering};

/// The wait in every loop that waits for another thread (in-order tail publish, HTS head wait).
///
/// On hardware it spins with the `pause` instruction, and after [`SPINS_BEFORE_YIELD`] rounds
/// yields the CPU: the thread being waited for may have been preempted (more threads than cores),
/// and spinning for its whole time slice would only delay it. Under loom every round yields so
/// the model checker can schedule the thread being waited for.
#[derive(Default)]
pub(crate) struct SpinWait {
    rounds: u32,
}

/// Pause rounds before a waiting thread starts yielding its CPU.
#[cfg(not(loom))]
const SPINS_BEFORE_YIELD: u32 = 256;

impl SpinWait {
    /// Waits once.
    #[inline]
    pub(crate) fn wait(&mut self) {
        #[cfg(loom)]
        loom::thread::yield_now();
        #[cfg(not(loom))]
        {
            if self.rounds < SPINS_BEFORE_YIELD {
                self.rounds += 1;
                core::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
    }
}
