//! Shared-memory windows: [`pmd_mempool::shm::Window`] (raw, bounds-checked access to memory the
//! driver shares with the device) and [`pmd_mempool::shm::SegmentWindow`] (a window that keeps
//! its segment mapped).

pub(crate) use pmd_mempool::shm::{SegmentWindow, Window};
