//! Logical core ids: which per-lcore cache a thread uses.
//!
//! DPDK gives each EAL thread an lcore id and indexes per-lcore data with it. Here any thread gets
//! an id from 0 to [`MAX_LCORE`]` - 1` the first time it asks ([`id`]), or claims a chosen one
//! ([`register`], what a forwarding application does for the thread it pins to core N). The id is
//! released when the thread exits, so a later thread may reuse it together with the mempool caches
//! it indexes; the Release of the id on exit pairs with the Acquire of the next claim, so the new
//! owner sees everything the old one left in those caches.
//!
//! No two live threads ever hold the same id: that is what makes a per-lcore cache safe to use
//! without a lock.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

/// Number of lcore ids (DPDK's default `RTE_MAX_LCORE`).
pub const MAX_LCORE: usize = 128;

/// Bitmap of ids in use.
static USED: [AtomicU64; MAX_LCORE / 64] = [const { AtomicU64::new(0) }; MAX_LCORE / 64];

/// This thread has not asked yet.
const UNSET: u32 = u32::MAX;
/// This thread asked and every id was taken, or it is exiting: it uses no cache.
const NONE: u32 = u32::MAX - 1;

thread_local! {
    /// The current thread's id, or UNSET / NONE. No destructor, so reading it stays valid while
    /// other thread-locals are being destroyed.
    static ID: Cell<u32> = const { Cell::new(UNSET) };
    /// Releases the id when the thread exits.
    static OWNER: Cell<Option<Registration>> = const { Cell::new(None) };
}

/// Owns an id; gives it back on drop.
struct Registration(u32);

impl Drop for Registration {
    fn drop(&mut self) {
        // Any cache access from a destructor that runs after this one goes to the shared ring.
        let _ = ID.try_with(|c| c.set(NONE));
        free(self.0);
    }
}

/// Why an id could not be registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LcoreError {
    /// Ids go from 0 to MAX_LCORE - 1.
    #[error("lcore id {id} is out of range (0..{max})")]
    OutOfRange {
        /// The id asked for.
        id: u32,
        /// MAX_LCORE.
        max: usize,
    },
    /// Another live thread holds the id.
    #[error("lcore id {id} is already used by another thread")]
    Taken {
        /// The id asked for.
        id: u32,
    },
    /// This thread already holds a different id.
    #[error("this thread already has lcore id {current}")]
    AlreadyRegistered {
        /// The id this thread holds.
        current: u32,
    },
}

fn try_claim(id: u32) -> bool {
    let (word, bit) = ((id / 64) as usize, 1u64 << (id % 64));
    // Acquire pairs with the Release in `free`: the previous owner's cache writes are visible.
    USED[word].fetch_or(bit, Ordering::AcqRel) & bit == 0
}

fn free(id: u32) {
    let (word, bit) = ((id / 64) as usize, 1u64 << (id % 64));
    // Release pairs with the Acquire in `try_claim`.
    USED[word].fetch_and(!bit, Ordering::AcqRel);
}

fn adopt(id: u32) {
    ID.with(|c| c.set(id));
    OWNER.with(|o| o.set(Some(Registration(id))));
}

/// The current thread's lcore id, assigning the lowest free one on first use. `None` when all
/// [`MAX_LCORE`] ids are held by live threads (the thread then works without caches).
#[inline]
pub fn id() -> Option<u32> {
    match ID.try_with(Cell::get).unwrap_or(NONE) {
        UNSET => assign(),
        NONE => None,
        id => Some(id),
    }
}

/// The current thread's id as stored, without assigning one: an id below [`MAX_LCORE`], or a
/// value at or above it when the thread has none (yet). For hot paths that index per-lcore data
/// and take a slow path on a miss, which then calls [`id`].
#[inline(always)]
pub fn current_raw() -> u32 {
    ID.with(Cell::get)
}

#[cold]
fn assign() -> Option<u32> {
    for id in 0..MAX_LCORE as u32 {
        if try_claim(id) {
            adopt(id);
            return Some(id);
        }
    }
    ID.with(|c| c.set(NONE));
    None
}

/// Claims lcore id `id` for the current thread.
pub fn register(id: u32) -> Result<(), LcoreError> {
    if id as usize >= MAX_LCORE {
        return Err(LcoreError::OutOfRange { id, max: MAX_LCORE });
    }
    match ID.with(Cell::get) {
        current if current == id => return Ok(()),
        UNSET | NONE => {}
        current => return Err(LcoreError::AlreadyRegistered { current }),
    }
    if !try_claim(id) {
        return Err(LcoreError::Taken { id });
    }
    adopt(id);
    Ok(())
}

/// Gives up the current thread's id now (it would be released at thread exit anyway). Flush the
/// thread's mempool caches first if their objects should not wait for the next owner of the id.
pub fn release() {
    OWNER.with(|o| drop(o.take()));
    ID.with(|c| c.set(UNSET));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_get_distinct_ids_and_exit_releases_them() {
        let ids: Vec<u32> = (0..8)
            .map(|_| std::thread::spawn(|| (id().unwrap(), id().unwrap())))
            .map(|h| h.join().unwrap())
            .map(|(a, b)| {
                assert_eq!(a, b, "stable within a thread");
                a
            })
            .collect();
        assert!(ids.iter().all(|&i| (i as usize) < MAX_LCORE));
        // Concurrently live threads must differ.
        let barrier = std::sync::Barrier::new(4);
        let live: Vec<u32> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| {
                        let i = id().unwrap();
                        barrier.wait();
                        i
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut sorted = live.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 4, "{live:?}");
    }

    #[test]
    fn register_rules() {
        std::thread::spawn(|| {
            assert_eq!(
                register(MAX_LCORE as u32),
                Err(LcoreError::OutOfRange { id: 128, max: 128 })
            );
            register(100).unwrap();
            assert_eq!(id(), Some(100));
            assert_eq!(register(100), Ok(()), "idempotent");
            assert_eq!(register(101), Err(LcoreError::AlreadyRegistered { current: 100 }));
            std::thread::spawn(|| assert_eq!(register(100), Err(LcoreError::Taken { id: 100 })))
                .join()
                .unwrap();
            release();
            std::thread::spawn(|| {
                register(100).unwrap();
                release();
            })
            .join()
            .unwrap();
        })
        .join()
        .unwrap();
    }
}
