//! pmd-mempool: the memory under everything that moves packets.
//!
//! - [`segment`]: hugepage memory segments (memfd or hugetlbfs files, mapped with memmap2), with
//!   a 4 KiB fallback, their fds and names kept for sharing, and IOVA translation both ways.
//! - [`pool`]: a pool of fixed-size objects over one or more segments: a pmd-ring MP/MC ring as the
//!   common pool, a per-lcore cache in front of it, and an audit that tells whether every object
//!   is back (the leak check every later test uses).
//! - [`mbuf`]: the packet buffer, a DPDK-like two-cache-line header in front of its data, with
//!   chains, refcounts and indirect clones; one pointer wide, freed to its pool exactly once.
//! - [`shm`]: raw, bounds-checked windows onto memory shared with another agent (a device, a
//!   process): copies and atomics, never references.
//! - [`lcore`]: the per-thread lcore ids that index the caches; [`tsc`]: the cycle counter.
//!
//! Unsafe code lives in `segment` (mapping), `pool` (cache slots, object pointers), `mbuf` (header
//! fields), `shm` (shared-memory access) and `tsc` (one instruction); every block carries a `// SAFETY:` comment.
#![deny(unsafe_code)]

pub mod lcore;
pub mod mbuf;
pub mod pool;
pub mod segment;
pub mod shm;
pub mod tsc;

pub use mbuf::held::HeldRing;
pub use mbuf::{Mbuf, MbufBuf, MbufPool, MbufPoolConfig};
pub use pool::{Audit, Mempool, MempoolConfig, MempoolError, ObjPtr, ObjTable};
pub use segment::{HugePolicy, MemSegment, SegmentError};
