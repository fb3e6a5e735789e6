//! pmd-ring: a fixed-capacity lock-free ring in the manner of DPDK's `rte_ring`.
//!
//! # Model
//! A table of `size` slots (a power of two) and two head/tail pairs of free-running `u32`
//! indices, one for the producer side and one for the consumer side, each on its own 128-byte
//! block. Indices are never masked except to find a slot, and every subtraction is modulo 2^32,
//! so wrapping past `u32::MAX` is harmless:
//! - free slots (producer view) = `capacity + cons.tail - prod.head`
//! - filled slots (consumer view) = `prod.tail - cons.head`
//!
//! An operation (1) claims `n` slots by moving its side's head, (2) copies elements, (3) publishes
//! by moving its side's tail. The other side only ever looks at the tail, so it never sees a slot
//! that is claimed but not yet written (or read).
//!
//! By default the usable capacity is `count - 1` for a power-of-two `count`, as in DPDK. With
//! [`RingBuilder::exact_size`] the table is `next_power_of_two(count + 1)` slots and the capacity is
//! exactly `count`.
//!
//! # Synchronisation modes
//! Chosen per side when the ring is built, as type parameters of the handles:
//! - [`Single`]: one thread on this side. No read-modify-write: own tail loaded Relaxed, the
//!   opposite tail loaded Acquire only when a cached copy says there is not enough room, own tail
//!   stored Release. The handle is neither `Clone` nor `Sync`.
//! - [`Multi`]: any number of threads. Head moved with a compare-and-swap; tails are published in
//!   claim order (a thread waits until the tail reaches its claim's start). Handles are `Clone`
//!   and `Sync`.
//! - [`Hts`] (head/tail sync): any number of threads, but operations on a side are serialised: a
//!   head may move only when the side has no operation in flight (head == tail). No thread ever
//!   waits behind a preempted peer in the middle of the tail publish, which helps on overcommitted
//!   CPUs. Handles are `Clone` and `Sync`.
//!
//! # Memory ordering: the Acquire/Release pairs
//! | label | where | pairs with |
//! |---|---|---|
//! | R0 | Release store of a side's tail when publishing | A1 of the other side (slot contents / slot reuse), A3 and A4 of the same side |
//! | A1 | Acquire load of the opposite side's tail when claiming | R0 of the opposite side |
//! | A0 | Acquire load of own head before a multi-thread claim | R1 of the previous claimer on this side |
//! | R1/A2 | head compare-and-swap: Release on success, Acquire on failure | A0 / A2 of other claimers |
//! | A3 | Acquire load of own tail in the HTS head wait | R0 of the previous operation on this side |
//! | A4 | Acquire load of own tail in the multi-thread in-order publish wait | R0 of the previous claimer, so that its slot writes reach the opposite side through our R0 |
//! | A5/R5 | a multi-thread handle's copy of the opposite tail: Acquire load, Release store after a refresh | each other, carrying the refresher's A1 to every user of the copy |
//!
//! A0 exists for the reason DPDK gives: without it a claimer could pair a head that already
//! includes another thread's claim with an older opposite tail than that thread used, and compute
//! a free count that underflows.
//!
//! # Checking
//! - `cargo test -p pmd-ring`: unit tests and multi-thread exactly-once stress tests.
//! - `RUSTFLAGS="--cfg loom" cargo test -p pmd-ring --test loom --release`: loom models of the
//!   SP/SC, MP/MC and HTS protocols on small rings.
//! - `cargo +nightly miri test -p pmd-ring --lib`: Miri over the single-threaded tests (the slot
//!   table's unsafe copies, wrap-around, 16-byte elements).
#![deny(unsafe_code)]

mod slots;
mod sync;

pub use slots::copy_small;

use core::cell::Cell;
use core::fmt;
use core::marker::PhantomData;
use core::mem::MaybeUninit;

use crossbeam_utils::CachePadded;

use crate::sealed::{Claim, HeadTail, SingleLocal};
use crate::slots::SlotTable;
use crate::sync::{Arc, AtomicU32, Ordering, SpinWait};

/// Largest slot count a ring may have (DPDK's `RTE_RING_SZ_MASK`).
pub const RING_SZ_MASK: u32 = 0x7fff_ffff;

/// Largest element the ring accepts, in bytes.
pub const MAX_ELEMENT_SIZE: usize = 16;

/// Why a ring could not be created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RingError {
    /// A ring needs at least one usable slot.
    #[error("ring count must be at least 1 (got 0)")]
    ZeroCount,
    /// Without `exact_size`, the slot count must be a power of two.
    #[error(
        "ring count {count} is not a power of two (use exact_size to get exactly {count} slots)"
    )]
    NotPowerOfTwo {
        /// The count asked for.
        count: u32,
    },
    /// The count does not fit the 31-bit slot space.
    #[error("ring count {count} exceeds the maximum of {max}")]
    TooLarge {
        /// The count asked for.
        count: u32,
        /// Largest count accepted in this mode.
        max: u32,
    },
    /// The slot table could not be allocated.
    #[error("could not allocate {slots} slots of {elem_size} bytes for the ring")]
    AllocFailed {
        /// Number of slots.
        slots: u32,
        /// Bytes per slot.
        elem_size: usize,
    },
}

/// Read-only after creation: the table and its geometry.
struct Geometry<T> {
    slots: SlotTable<T>,
    capacity: u32,
}

/// What both ends of a ring share.
struct Shared<T> {
    geo: CachePadded<Geometry<T>>,
    prod: CachePadded<HeadTail>,
    cons: CachePadded<HeadTail>,
}

/// How many indices a side may claim, given its position and the opposite side's tail.
#[inline(always)]
fn available<const PROD: bool>(capacity: u32, own: u32, opp_tail: u32) -> u32 {
    if PROD {
        capacity.wrapping_add(opp_tail).wrapping_sub(own)
    } else {
        opp_tail.wrapping_sub(own)
    }
}

#[inline(always)]
fn grant(want: u32, avail: u32, fixed: bool) -> u32 {
    if want <= avail {
        want
    } else if fixed {
        0
    } else {
        avail
    }
}

/// Types of the mode trait; public only inside this private module, so the trait is sealed.
mod sealed {
    use crate::sync::AtomicU32;

    /// One side's pair of free-running indices.
    #[derive(Default)]
    pub struct HeadTail {
        /// Next index to claim (used by `Multi` and `Hts`; a `Single` side claims from `tail`).
        pub(crate) head: AtomicU32,
        /// Every index below this one is published to the other side.
        pub(crate) tail: AtomicU32,
    }

    /// What a `Single` handle remembers between operations.
    pub struct SingleLocal {
        /// Its own side's tail. Only this handle writes the shared tail, so this copy is always
        /// equal to it; keeping it here lets the compiler hold it in a register across calls
        /// instead of reloading the shared cache line.
        pub(crate) pos: core::cell::Cell<u32>,
        /// The opposite side's tail as last loaded: a lower bound of its real value, so room computed
        /// from it is never more than the real room.
        pub(crate) opp_tail: core::cell::Cell<u32>,
    }

    /// A claim on `n` consecutive indices starting at `start`.
    #[derive(Clone, Copy)]
    pub struct Claim {
        pub(crate) start: u32,
        pub(crate) n: u32,
    }

    /// The per-mode claim and publish steps; sealed so that only the three modes exist.
    pub trait Mode {
        /// State a handle keeps for itself.
        type Local: Send;
        /// The state of a new handle, given the opposite side's and its own side's tails.
        fn local(opp_tail: u32, own_tail: u32) -> Self::Local;
        /// Claims up to `want` indices (exactly `want` or none when `fixed`).
        fn claim<const PROD: bool>(
            own: &HeadTail,
            opp: &HeadTail,
            capacity: u32,
            want: u32,
            fixed: bool,
            local: &Self::Local,
        ) -> Claim;
        /// Publishes a claim to the opposite side.
        fn publish(own: &HeadTail, claim: Claim, local: &Self::Local);
    }
}

/// A synchronisation mode for one side of a ring: [`Single`], [`Multi`] or [`Hts`].
pub trait SyncMode: sealed::Mode + 'static {
    /// Short name as DPDK prints it ("SP"/"MP"/"HTS" on the producer side).
    const NAME: &'static str;
}

/// Marker for modes whose handles may be cloned and shared between threads.
pub trait SharedMode: SyncMode {}

/// One thread on this side (DPDK `RING_F_SP_ENQ` / `RING_F_SC_DEQ`).
#[derive(Debug)]
pub enum Single {}
/// Any number of threads, claims by compare-and-swap, in-order publish (DPDK's default MP/MC).
#[derive(Debug)]
pub enum Multi {}
/// Any number of threads, operations serialised per side (DPDK `RING_F_MP_HTS_ENQ` / `_MC_HTS_DEQ`).
#[derive(Debug)]
pub enum Hts {}

impl SyncMode for Single {
    const NAME: &'static str = "S";
}
impl SyncMode for Multi {
    const NAME: &'static str = "M";
}
impl SyncMode for Hts {
    const NAME: &'static str = "HTS";
}
impl SharedMode for Multi {}
impl SharedMode for Hts {}

impl sealed::Mode for Single {
    type Local = SingleLocal;

    fn local(opp_tail: u32, own_tail: u32) -> SingleLocal {
        SingleLocal { pos: Cell::new(own_tail), opp_tail: Cell::new(opp_tail) }
    }

    #[inline(always)]
    fn claim<const PROD: bool>(
        _own: &HeadTail,
        opp: &HeadTail,
        capacity: u32,
        want: u32,
        fixed: bool,
        local: &SingleLocal,
    ) -> Claim {
        let start = local.pos.get();
        let mut avail = available::<PROD>(capacity, start, local.opp_tail.get());
        if avail < want {
            // A1: pairs with the opposite side's R0. For a producer: every slot below cons.tail
            // has been read and may be overwritten. For a consumer: every slot below prod.tail has
            // been written and its contents are visible.
            let opp_tail = opp.tail.load(Ordering::Acquire);
            local.opp_tail.set(opp_tail);
            avail = available::<PROD>(capacity, start, opp_tail);
        }
        Claim { start, n: grant(want, avail, fixed) }
    }

    #[inline(always)]
    fn publish(own: &HeadTail, claim: Claim, local: &SingleLocal) {
        let end = claim.start.wrapping_add(claim.n);
        local.pos.set(end);
        // R0: pairs with the opposite side's A1 (see `claim`).
        own.tail.store(end, Ordering::Release);
    }
}

/// The compare-and-swap claim shared by [`Multi`] and [`Hts`].
#[inline(always)]
fn claim_cas<const PROD: bool, const HTS: bool>(
    own: &HeadTail,
    opp: &HeadTail,
    capacity: u32,
    want: u32,
    fixed: bool,
    cached_opp_tail: &AtomicU32,
) -> Claim {
    // A0: pairs with R1 of the previous claimer on this side, so the opposite tail we load below
    // is at least as new as the one that claimer used.
    let mut start = own.head.load(Ordering::Acquire);
    let mut spin = SpinWait::default();
    loop {
        if HTS {
            // A3: pairs with R0 of the previous operation on this side. Only when head == tail is
            // nothing in flight; a claim may then start at `start`.
            if own.tail.load(Ordering::Acquire) != start {
                spin.wait();
                start = own.head.load(Ordering::Acquire);
                continue;
            }
        }
        // A5: pairs with R5 of the thread that last refreshed this handle's copy of the opposite
        // tail, which it stored after its own A1: our slot accesses stay ordered after the
        // opposite side's.
        let mut avail = available::<PROD>(capacity, start, cached_opp_tail.load(Ordering::Acquire));
        // The copy may be older than the tail another claimer on this side used to move the
        // head, in which case the room computed from it wraps past the capacity: reload then, as
        // when it shows too little room.
        if avail < want || avail > capacity {
            // A1: pairs with the opposite side's R0.
            let opp_tail = opp.tail.load(Ordering::Acquire);
            // R5: pairs with A5.
            cached_opp_tail.store(opp_tail, Ordering::Release);
            avail = available::<PROD>(capacity, start, opp_tail);
        }
        let n = grant(want, avail, fixed);
        if n == 0 {
            return Claim { start, n };
        }
        // R1 on success / A2 on failure: pairs with A0 and A2 of the other claimers.
        match own.head.compare_exchange_weak(
            start,
            start.wrapping_add(n),
            Ordering::Release,
            Ordering::Acquire,
        ) {
            Ok(_) => return Claim { start, n },
            Err(current) => start = current,
        }
    }
}

impl sealed::Mode for Multi {
    /// The opposite side's tail as last loaded through this handle (see `claim_cas`).
    type Local = AtomicU32;

    fn local(opp_tail: u32, _: u32) -> AtomicU32 {
        AtomicU32::new(opp_tail)
    }

    #[inline(always)]
    fn claim<const PROD: bool>(
        own: &HeadTail,
        opp: &HeadTail,
        capacity: u32,
        want: u32,
        fixed: bool,
        cached_opp_tail: &AtomicU32,
    ) -> Claim {
        claim_cas::<PROD, false>(own, opp, capacity, want, fixed, cached_opp_tail)
    }

    #[inline(always)]
    fn publish(own: &HeadTail, claim: Claim, _: &AtomicU32) {
        // A4: wait for every earlier claim on this side to publish, in order. Acquire pairs with
        // their R0, so that their slot accesses happen-before our R0 and reach the other side
        // through it.
        let mut spin = SpinWait::default();
        while own.tail.load(Ordering::Acquire) != claim.start {
            spin.wait();
        }
        // R0: pairs with the opposite side's A1.
        own.tail.store(claim.start.wrapping_add(claim.n), Ordering::Release);
    }
}

impl sealed::Mode for Hts {
    /// The opposite side's tail as last loaded through this handle (see `claim_cas`).
    type Local = AtomicU32;

    fn local(opp_tail: u32, _: u32) -> AtomicU32 {
        AtomicU32::new(opp_tail)
    }

    #[inline(always)]
    fn claim<const PROD: bool>(
        own: &HeadTail,
        opp: &HeadTail,
        capacity: u32,
        want: u32,
        fixed: bool,
        cached_opp_tail: &AtomicU32,
    ) -> Claim {
        claim_cas::<PROD, true>(own, opp, capacity, want, fixed, cached_opp_tail)
    }

    #[inline(always)]
    fn publish(own: &HeadTail, claim: Claim, _: &AtomicU32) {
        // R0: pairs with the opposite side's A1 and with A3 of the next operation on this side.
        // No wait: a claim only starts when the side is idle, so publishes are already in order.
        own.tail.store(claim.start.wrapping_add(claim.n), Ordering::Release);
    }
}

/// The producer end of a ring.
///
/// With [`Single`] there is exactly one, and it is neither `Clone` nor `Sync`. With [`Multi`] or
/// [`Hts`] it may be cloned and shared freely.
///
/// A single-producer handle cannot be cloned:
/// ```compile_fail
/// let (tx, _rx) = pmd_ring::spsc::<u64>(8).unwrap();
/// let second = tx.clone();
/// ```
/// nor shared between threads:
/// ```compile_fail
/// fn shared<X: Sync>(_: &X) {}
/// let (tx, _rx) = pmd_ring::spsc::<u64>(8).unwrap();
/// shared(&tx);
/// ```
/// while a multi-producer handle can be both:
/// ```
/// fn shared<X: Sync + Clone>(_: &X) {}
/// let (tx, _rx) = pmd_ring::mpmc::<u64>(8).unwrap();
/// shared(&tx);
/// ```
pub struct Producer<T, S: SyncMode> {
    shared: Arc<Shared<T>>,
    local: S::Local,
    _mode: PhantomData<fn() -> S>,
}

/// The consumer end of a ring; the same rules as [`Producer`].
pub struct Consumer<T, S: SyncMode> {
    shared: Arc<Shared<T>>,
    local: S::Local,
    _mode: PhantomData<fn() -> S>,
}

/// The two ends of a new ring.
pub type Ends<T, P, C> = (Producer<T, P>, Consumer<T, C>);

/// Producer with one thread (SP).
pub type SpProducer<T> = Producer<T, Single>;
/// Consumer with one thread (SC).
pub type ScConsumer<T> = Consumer<T, Single>;
/// Producer shared by many threads (MP).
pub type MpProducer<T> = Producer<T, Multi>;
/// Consumer shared by many threads (MC).
pub type McConsumer<T> = Consumer<T, Multi>;

impl<T, S: SharedMode> Clone for Producer<T, S> {
    fn clone(&self) -> Self {
        let sh = &self.shared;
        let local =
            S::local(sh.cons.tail.load(Ordering::Acquire), sh.prod.tail.load(Ordering::Acquire));
        Producer { shared: self.shared.clone(), local, _mode: PhantomData }
    }
}

impl<T, S: SharedMode> Clone for Consumer<T, S> {
    fn clone(&self) -> Self {
        let sh = &self.shared;
        let local =
            S::local(sh.prod.tail.load(Ordering::Acquire), sh.cons.tail.load(Ordering::Acquire));
        Consumer { shared: self.shared.clone(), local, _mode: PhantomData }
    }
}

/// Builds a ring; see [`RingBuilder`]. Shorthands: [`spsc`], [`mpmc`], [`hts`].
#[derive(Debug, Clone)]
pub struct RingBuilder {
    count: u32,
    exact: bool,
    start_index: u32,
}

impl RingBuilder {
    /// A ring of `count` slots (a power of two; capacity `count - 1`), unless [`exact_size`] is set.
    ///
    /// [`exact_size`]: RingBuilder::exact_size
    pub fn new(count: u32) -> Self {
        RingBuilder { count, exact: false, start_index: 0 }
    }

    /// Capacity exactly `count` (DPDK `RING_F_EXACT_SZ`): the table gets the next power of two
    /// above `count`.
    pub fn exact_size(mut self, exact: bool) -> Self {
        self.exact = exact;
        self
    }

    /// Starts all four indices at `index` instead of 0. Only useful to test behaviour across the
    /// 2^32 wrap of the free-running indices, which a long-running ring reaches eventually.
    pub fn start_index(mut self, index: u32) -> Self {
        self.start_index = index;
        self
    }

    /// Creates the ring and returns its two ends.
    pub fn build<T: Copy + Send, P: SyncMode, C: SyncMode>(
        self,
    ) -> Result<Ends<T, P, C>, RingError> {
        const { assert!(size_of::<T>() <= MAX_ELEMENT_SIZE, "ring elements are at most 16 bytes") };
        let (size, capacity) = self.geometry()?;
        let slots = SlotTable::new(size)
            .ok_or(RingError::AllocFailed { slots: size, elem_size: size_of::<T>() })?;
        let idx = self.start_index;
        let side =
            || CachePadded::new(HeadTail { head: AtomicU32::new(idx), tail: AtomicU32::new(idx) });
        let shared = Arc::new(Shared {
            geo: CachePadded::new(Geometry { slots, capacity }),
            prod: side(),
            cons: side(),
        });
        Ok((
            Producer { shared: shared.clone(), local: P::local(idx, idx), _mode: PhantomData },
            Consumer { shared, local: C::local(idx, idx), _mode: PhantomData },
        ))
    }

    /// (slot count, capacity) for this request.
    fn geometry(&self) -> Result<(u32, u32), RingError> {
        let count = self.count;
        if count == 0 {
            return Err(RingError::ZeroCount);
        }
        if self.exact {
            // The table needs one spare slot beyond the capacity.
            let max = RING_SZ_MASK.div_ceil(2);
            if count > max {
                return Err(RingError::TooLarge { count, max });
            }
            Ok(((count + 1).next_power_of_two(), count))
        } else {
            if count > RING_SZ_MASK {
                return Err(RingError::TooLarge { count, max: RING_SZ_MASK });
            }
            if !count.is_power_of_two() {
                return Err(RingError::NotPowerOfTwo { count });
            }
            // A one-slot table would have no usable capacity.
            if count == 1 {
                return Err(RingError::ZeroCount);
            }
            Ok((count, count - 1))
        }
    }
}

/// A single-producer single-consumer ring of `count` slots (capacity `count - 1`).
pub fn spsc<T: Copy + Send>(count: u32) -> Result<(SpProducer<T>, ScConsumer<T>), RingError> {
    RingBuilder::new(count).build()
}

/// A multi-producer multi-consumer ring of `count` slots (capacity `count - 1`).
pub fn mpmc<T: Copy + Send>(count: u32) -> Result<(MpProducer<T>, McConsumer<T>), RingError> {
    RingBuilder::new(count).build()
}

/// A head/tail-sync ring (both sides [`Hts`]) of `count` slots (capacity `count - 1`).
pub fn hts<T: Copy + Send>(count: u32) -> Result<Ends<T, Hts, Hts>, RingError> {
    RingBuilder::new(count).build()
}

/// Saturating length of a slice as a `u32` request.
#[inline(always)]
fn want(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

/// Queries available on both ends.
macro_rules! common_queries {
    () => {
        /// Usable capacity (`count - 1`, or exactly `count` with `exact_size`).
        #[inline]
        pub fn capacity(&self) -> u32 {
            self.shared.geo.capacity
        }

        /// Number of slots in the table (a power of two).
        #[inline]
        pub fn size(&self) -> u32 {
            self.shared.geo.slots.size()
        }

        /// Elements in the ring (a snapshot; other threads may change it at once).
        #[inline]
        pub fn count(&self) -> u32 {
            let prod = self.shared.prod.tail.load(Ordering::Acquire);
            let cons = self.shared.cons.tail.load(Ordering::Acquire);
            prod.wrapping_sub(cons).min(self.capacity())
        }

        /// Free slots (a snapshot).
        #[inline]
        pub fn free_count(&self) -> u32 {
            self.capacity() - self.count()
        }

        /// Whether the ring holds no element (a snapshot).
        #[inline]
        pub fn is_empty(&self) -> bool {
            self.count() == 0
        }

        /// Whether the ring has no free slot (a snapshot).
        #[inline]
        pub fn is_full(&self) -> bool {
            self.count() == self.capacity()
        }
    };
}

impl<T: Copy + Send, S: SyncMode> Producer<T, S> {
    common_queries!();

    /// Enqueues `n` elements from `src` (all or, when `fixed`, none). Returns how many.
    ///
    /// # Safety
    /// `src` is valid for reads of `n` elements.
    #[inline(always)]
    #[allow(unsafe_code)]
    unsafe fn enqueue_raw(&self, src: *const T, n: u32, fixed: bool) -> u32 {
        let sh = &*self.shared;
        let claim = S::claim::<true>(&sh.prod, &sh.cons, sh.geo.capacity, n, fixed, &self.local);
        if claim.n != 0 {
            // SAFETY: the claim gives this thread the indices [start, start + n) alone until it
            // publishes them; claim.n <= capacity < size; `src` covers claim.n <= n elements.
            unsafe { sh.geo.slots.write(claim.start, src, claim.n) };
            S::publish(&sh.prod, claim, &self.local);
        }
        claim.n
    }

    /// Enqueues one element; gives it back if the ring is full.
    #[inline]
    pub fn enqueue(&self, obj: T) -> Result<(), T> {
        // SAFETY: `obj` is one readable element.
        #[allow(unsafe_code)]
        let n = unsafe { self.enqueue_raw(&obj, 1, true) };
        if n == 1 { Ok(()) } else { Err(obj) }
    }

    /// Enqueues all of `objs` or nothing. Returns `objs.len()` or 0.
    #[inline]
    pub fn enqueue_bulk(&self, objs: &[T]) -> usize {
        // SAFETY: the slice covers its length; `want` never exceeds it.
        #[allow(unsafe_code)]
        let n = unsafe { self.enqueue_raw(objs.as_ptr(), want(objs.len()), true) };
        n as usize
    }

    /// Enqueues as many leading elements of `objs` as fit. Returns how many.
    #[inline]
    pub fn enqueue_burst(&self, objs: &[T]) -> usize {
        // SAFETY: as in `enqueue_bulk`.
        #[allow(unsafe_code)]
        let n = unsafe { self.enqueue_raw(objs.as_ptr(), want(objs.len()), false) };
        n as usize
    }
}

impl<T: Copy + Send, S: SyncMode> Consumer<T, S> {
    common_queries!();

    /// Dequeues `n` elements into `dst` (all or, when `fixed`, none). Returns how many.
    ///
    /// # Safety
    /// `dst` is valid for writes of `n` elements.
    #[inline(always)]
    #[allow(unsafe_code)]
    unsafe fn dequeue_raw(&self, dst: *mut T, n: u32, fixed: bool) -> u32 {
        let sh = &*self.shared;
        let claim = S::claim::<false>(&sh.cons, &sh.prod, sh.geo.capacity, n, fixed, &self.local);
        if claim.n != 0 {
            // SAFETY: the claim covers [start, start + n), all published by the producer (A1 in
            // `claim` made their contents visible), and no other consumer reads them; `dst`
            // covers claim.n <= n elements.
            unsafe { sh.geo.slots.read(claim.start, dst, claim.n) };
            S::publish(&sh.cons, claim, &self.local);
        }
        claim.n
    }

    /// Dequeues one element, if any.
    #[inline]
    pub fn dequeue(&self) -> Option<T> {
        let mut slot = MaybeUninit::<T>::uninit();
        // SAFETY: one writable element.
        #[allow(unsafe_code)]
        let n = unsafe { self.dequeue_raw(slot.as_mut_ptr(), 1, true) };
        // SAFETY: n == 1 means the element was written.
        #[allow(unsafe_code)]
        (n == 1).then(|| unsafe { slot.assume_init() })
    }

    /// Fills all of `objs` or nothing. Returns `objs.len()` or 0.
    #[inline]
    pub fn dequeue_bulk(&self, objs: &mut [T]) -> usize {
        // SAFETY: the slice covers its length.
        #[allow(unsafe_code)]
        let n = unsafe { self.dequeue_raw(objs.as_mut_ptr(), want(objs.len()), true) };
        n as usize
    }

    /// Fills as many leading elements of `objs` as the ring holds. Returns how many.
    #[inline]
    pub fn dequeue_burst(&self, objs: &mut [T]) -> usize {
        // SAFETY: the slice covers its length.
        #[allow(unsafe_code)]
        let n = unsafe { self.dequeue_raw(objs.as_mut_ptr(), want(objs.len()), false) };
        n as usize
    }

    /// Like [`dequeue_bulk`](Self::dequeue_bulk) into uninitialised storage: on success every
    /// element of `objs` is initialised.
    #[inline]
    pub fn dequeue_bulk_uninit(&self, objs: &mut [MaybeUninit<T>]) -> usize {
        // SAFETY: MaybeUninit<T> has T's layout; the slice covers its length.
        #[allow(unsafe_code)]
        let n = unsafe { self.dequeue_raw(objs.as_mut_ptr().cast(), want(objs.len()), true) };
        n as usize
    }

    /// Like [`dequeue_burst`](Self::dequeue_burst) into uninitialised storage: the first `n`
    /// returned elements are initialised.
    #[inline]
    pub fn dequeue_burst_uninit(&self, objs: &mut [MaybeUninit<T>]) -> usize {
        // SAFETY: as above.
        #[allow(unsafe_code)]
        let n = unsafe { self.dequeue_raw(objs.as_mut_ptr().cast(), want(objs.len()), false) };
        n as usize
    }
}

impl<T, S: SyncMode> fmt::Debug for Producer<T, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Producer").field("mode", &S::NAME).finish_non_exhaustive()
    }
}

impl<T, S: SyncMode> fmt::Debug for Consumer<T, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Consumer").field("mode", &S::NAME).finish_non_exhaustive()
    }
}

// The two sides' indices live on separate 128-byte blocks, away from the read-only geometry.
#[cfg(not(loom))]
const _: () = {
    use core::mem::offset_of;
    assert!(align_of::<CachePadded<HeadTail>>() >= 128);
    assert!(offset_of!(Shared<u64>, prod) % 128 == 0);
    assert!(offset_of!(Shared<u64>, cons) % 128 == 0);
    assert!(offset_of!(Shared<u64>, prod).abs_diff(offset_of!(Shared<u64>, cons)) >= 128);
    assert!(offset_of!(Shared<u64>, prod).abs_diff(offset_of!(Shared<u64>, geo)) >= 128);
    assert!(offset_of!(Shared<u64>, cons).abs_diff(offset_of!(Shared<u64>, geo)) >= 128);
};

#[cfg(all(test, not(loom)))]
mod tests;
