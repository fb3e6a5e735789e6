//! The mempool: fixed-size objects in memory segments, a pmd-ring MP/MC ring as the common pool,
//! and a per-lcore cache in front of it.
//!
//! # Cache policy
//! Each lcore has a LIFO stack of up to `cache_size` object pointers, the policy of DPDK 26.07
//! (commit f5e1310f16; earlier DPDK let a cache grow to 1.5 x its size and flushed or refilled
//! it whole, which made caches ping-pong against the ring):
//! - put(n): if the objects fit, push them. If not and `n <= size/2`, move the bottom (coldest)
//!   `size/2` objects to the ring in one bulk enqueue, slide the rest down, then push. A put of
//!   more than `size/2` objects that does not fit goes straight to the ring.
//! - get(n): if the cache holds `n`, pop them. If not and `n <= size/2`, refill `size/2` from the
//!   ring in one burst, then pop. A larger get that the cache cannot serve goes straight to the
//!   ring. A get can fail while other lcores' caches hold objects, as in DPDK.
//!
//! Threads without an lcore id (more than [`MAX_LCORE`](crate::lcore::MAX_LCORE) live threads)
//! and pools created with `cache_size` 0 use the ring directly.
//!
//! # Ownership
//! The pool hands out raw object pointers ([`ObjPtr`]); putting one back is `unsafe` because the
//! pool cannot tell a pointer that is still in use from a free one. The safe ways to use objects
//! are [`ObjTable`] (objects never leave the table), and, for packet buffers, [`Mbuf`](crate::Mbuf),
//! which frees itself to its own pool exactly once.
#![allow(unsafe_code)]

use core::cell::UnsafeCell;
use core::mem::MaybeUninit;
use core::ptr::NonNull;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};

use crossbeam_utils::CachePadded;
use pmd_ring::{McConsumer, MpProducer, RingBuilder};

use crate::lcore::{self, MAX_LCORE};
use crate::segment::{HugePolicy, MemSegment, SegmentError};

/// Largest per-lcore cache (DPDK's `RTE_MEMPOOL_CACHE_MAX_SIZE`).
pub const CACHE_MAX_SIZE: u32 = 512;
/// Cache size used when a configuration does not say.
pub const DEFAULT_CACHE_SIZE: u32 = 256;
/// Object alignment and stride granularity: one cache line.
pub const OBJ_ALIGN: usize = 64;
/// Most objects a pool may hold (ring slots are 31-bit).
pub const MAX_OBJECTS: u32 = 1 << 30;

/// Address of one object. `Copy`: it is only an address; see the module docs for ownership.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(transparent)]
pub struct ObjPtr(NonNull<u8>);

// SAFETY: an ObjPtr is an address inside a pool's segment; the memory it names may be used from
// any thread by whoever owns the object.
unsafe impl Send for ObjPtr {}

impl ObjPtr {
    /// The object's first byte.
    #[inline]
    pub fn as_ptr(self) -> *mut u8 {
        self.0.as_ptr()
    }

    /// The address as an integer.
    #[inline]
    pub fn addr(self) -> usize {
        self.0.as_ptr() as usize
    }
}

/// The object starting at `p`.
///
/// # Safety
/// `p` is non-null (the start of a pool object).
#[inline(always)]
pub(crate) unsafe fn obj_from_ptr(p: *mut u8) -> ObjPtr {
    // SAFETY: per the contract.
    ObjPtr(unsafe { NonNull::new_unchecked(p) })
}

impl fmt::Debug for ObjPtr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjPtr({:p})", self.0)
    }
}

/// Why a pool could not be created, or an object could not be had.
#[derive(Debug, thiserror::Error)]
pub enum MempoolError {
    /// A pool needs at least one object.
    #[error("mempool '{name}': zero objects requested")]
    ZeroObjects {
        /// Pool name.
        name: String,
    },
    /// More objects than the ring can index.
    #[error("mempool '{name}': {n} objects exceed the maximum of {max}")]
    TooManyObjects {
        /// Pool name.
        name: String,
        /// Objects asked for.
        n: u32,
        /// MAX_OBJECTS.
        max: u32,
    },
    /// The object size is zero or does not fit a segment.
    #[error("mempool '{name}': object size {size} does not fit (must be 1..={max} bytes)")]
    BadObjectSize {
        /// Pool name.
        name: String,
        /// Object size asked for.
        size: usize,
        /// Largest object that fits a segment.
        max: usize,
    },
    /// The cache is larger than DPDK allows or than the pool can feed.
    #[error(
        "mempool '{name}': cache size {cache} is too large for {n} objects (at most {max}: \
         {CACHE_MAX_SIZE} and no more than n / 1.5)"
    )]
    CacheTooLarge {
        /// Pool name.
        name: String,
        /// Cache size asked for.
        cache: u32,
        /// Objects in the pool.
        n: u32,
        /// Largest cache allowed for this pool.
        max: u32,
    },
    /// The pool's memory could not be had.
    #[error("mempool '{name}': no memory for {n} objects of {stride} bytes ({bytes} bytes)")]
    NoMemory {
        /// Pool name.
        name: String,
        /// Objects asked for.
        n: u32,
        /// Bytes per object, padded.
        stride: usize,
        /// Total bytes.
        bytes: usize,
        /// What failed.
        #[source]
        source: SegmentError,
    },
    /// The common ring could not be created.
    #[error("mempool '{name}': ring: {source}")]
    Ring {
        /// Pool name.
        name: String,
        /// The ring's error.
        #[source]
        source: pmd_ring::RingError,
    },
    /// A get found too few objects (in this lcore's cache and the common ring together).
    #[error(
        "mempool '{name}': exhausted: wanted {wanted} objects, {available} available of {size}"
    )]
    Exhausted {
        /// Pool name.
        name: String,
        /// Objects asked for.
        wanted: usize,
        /// Objects in the ring and all caches at the time (a snapshot).
        available: u32,
        /// Objects in the pool.
        size: u32,
    },
    /// An [`ObjTable`] has no room for the objects asked for.
    #[error("object table full: {len} of {capacity} used, {wanted} more requested")]
    TableFull {
        /// Objects in the table.
        len: usize,
        /// Table capacity.
        capacity: usize,
        /// Objects asked for.
        wanted: usize,
    },
}

/// How to build a pool.
#[derive(Debug, Clone)]
pub struct MempoolConfig {
    /// Name (also the prefix of its segments' names).
    pub name: String,
    /// Number of objects.
    pub n: u32,
    /// Bytes per object; rounded up to [`OBJ_ALIGN`] for the stride.
    pub elt_size: usize,
    /// Per-lcore cache size; 0 disables caches.
    pub cache_size: u32,
    /// Hugepages or not.
    pub huge: HugePolicy,
    /// Largest segment to map (objects never cross a segment): the pool spreads over several
    /// segments when it needs more.
    pub max_segment_len: usize,
}

impl MempoolConfig {
    /// `n` objects of `elt_size` bytes, default cache, hugepages preferred, segments up to 1 GiB.
    pub fn new(name: &str, n: u32, elt_size: usize) -> Self {
        MempoolConfig {
            name: name.to_owned(),
            n,
            elt_size,
            cache_size: DEFAULT_CACHE_SIZE,
            huge: HugePolicy::Prefer,
            max_segment_len: 1 << 30,
        }
    }

    /// Sets the per-lcore cache size.
    pub fn cache_size(mut self, cache_size: u32) -> Self {
        self.cache_size = cache_size;
        self
    }

    /// Sets the hugepage policy.
    pub fn huge(mut self, huge: HugePolicy) -> Self {
        self.huge = huge;
        self
    }

    /// Sets the largest segment length.
    pub fn max_segment_len(mut self, len: usize) -> Self {
        self.max_segment_len = len;
        self
    }
}

/// One lcore's cache: a LIFO stack of object pointers.
struct LcoreCache {
    /// Objects in `objs`. Written only by the thread holding this lcore id; others read it
    /// (Relaxed) for counts and audits.
    len: AtomicU32,
    /// `cache_size` slots, touched only by the thread holding this lcore id.
    objs: Box<[UnsafeCell<MaybeUninit<ObjPtr>>]>,
}

// SAFETY: `objs` is only read and written by the one live thread that holds this cache's lcore
// id (ids are unique per live thread, and handed over with Release/Acquire); `len` is atomic.
unsafe impl Sync for LcoreCache {}

impl LcoreCache {
    fn new(size: u32) -> Self {
        let objs = (0..size).map(|_| UnsafeCell::new(MaybeUninit::uninit())).collect();
        LcoreCache { len: AtomicU32::new(0), objs }
    }

    #[inline(always)]
    fn slots(&self) -> *mut ObjPtr {
        // UnsafeCell<MaybeUninit<ObjPtr>> has ObjPtr's layout; writes through it are allowed.
        UnsafeCell::raw_get(self.objs.as_ptr()).cast::<ObjPtr>()
    }
}

/// Where one segment's objects are.
struct SegSpan {
    seg: MemSegment,
    /// Index of the segment's first object in the pool.
    first: u32,
    /// Objects in this segment.
    count: u32,
}

/// The pool itself; shared by [`Mempool`] handles and referenced by raw pointer from mbufs.
pub(crate) struct PoolInner {
    name: String,
    ring_tx: MpProducer<ObjPtr>,
    ring_rx: McConsumer<ObjPtr>,
    cache_size: u32,
    caches: Box<[CachePadded<LcoreCache>]>,
    size: u32,
    elt_size: usize,
    stride: usize,
    spans: Vec<SegSpan>,
    /// Live [`Mempool`] handles; the last one to go decides whether memory can be freed.
    handles: AtomicUsize,
    /// Objects that a put could not return to the full ring: only a double put can cause it.
    lost: AtomicU64,
    /// Per-object state for the `debug-objects` feature.
    #[cfg(feature = "debug-objects")]
    states: Box<[core::sync::atomic::AtomicU8]>,
    /// Packet-buffer geometry when this is an mbuf pool.
    pub(crate) mbuf: Option<crate::mbuf::MbufGeometry>,
}

/// A snapshot of where a pool's objects are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Audit {
    /// Objects in the pool.
    pub size: u32,
    /// Objects in the common ring.
    pub in_ring: u32,
    /// Objects in the per-lcore caches.
    pub in_caches: u32,
    /// Objects a put could not return (only a double put of a raw pointer causes this).
    pub lost: u64,
}

impl Audit {
    /// Objects not in the ring or a cache: taken and not yet returned.
    pub fn in_use(&self) -> u32 {
        self.size.saturating_sub(self.in_ring + self.in_caches)
    }

    /// Whether every object is back and none was lost: the leak check after stop, close or reset.
    pub fn is_complete(&self) -> bool {
        self.in_ring + self.in_caches == self.size && self.lost == 0
    }
}

impl fmt::Display for Audit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} objects: {} in ring, {} in caches, {} in use, {} lost",
            self.size,
            self.in_ring,
            self.in_caches,
            self.in_use(),
            self.lost
        )
    }
}

/// A pool of fixed-size objects. Cloning gives another handle to the same pool.
pub struct Mempool {
    inner: Arc<PoolInner>,
}

impl Clone for Mempool {
    fn clone(&self) -> Self {
        self.inner.handles.fetch_add(1, Ordering::Relaxed);
        Mempool { inner: self.inner.clone() }
    }
}

impl Drop for Mempool {
    fn drop(&mut self) {
        // AcqRel: the last handle sees every other handle's puts before it audits.
        if self.inner.handles.fetch_sub(1, Ordering::AcqRel) == 1 {
            let audit = self.inner.audit();
            if audit.in_use() > 0 {
                eprintln!(
                    "pmd-mempool: mempool '{}' dropped with {} of {} objects still in use; its \
                     memory is kept so they stay valid",
                    self.inner.name,
                    audit.in_use(),
                    audit.size
                );
                // Objects (mbufs) still point at the pool and into its segments: keep both.
                std::mem::forget(self.inner.clone());
            }
        }
    }
}

impl fmt::Debug for Mempool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mempool")
            .field("name", &self.inner.name)
            .field("size", &self.inner.size)
            .field("stride", &self.inner.stride)
            .field("cache_size", &self.inner.cache_size)
            .finish()
    }
}

impl Mempool {
    /// Creates a pool of `cfg.n` objects of `cfg.elt_size` bytes.
    pub fn create(cfg: &MempoolConfig) -> Result<Self, MempoolError> {
        Self::create_with(cfg, None, |_, _, _| {})
    }

    /// Creates a pool and runs `init` once on every object (its pointer and index), before any
    /// object is handed out. `mbuf` marks packet-buffer pools.
    pub(crate) fn create_with(
        cfg: &MempoolConfig,
        mbuf: Option<crate::mbuf::MbufGeometry>,
        mut init: impl FnMut(&PoolInner, ObjPtr, u32),
    ) -> Result<Self, MempoolError> {
        let name = cfg.name.clone();
        let n = cfg.n;
        if n == 0 {
            return Err(MempoolError::ZeroObjects { name });
        }
        if n > MAX_OBJECTS {
            return Err(MempoolError::TooManyObjects { name, n, max: MAX_OBJECTS });
        }
        let max_obj = cfg.max_segment_len.max(OBJ_ALIGN);
        if cfg.elt_size == 0 || cfg.elt_size > max_obj {
            return Err(MempoolError::BadObjectSize { name, size: cfg.elt_size, max: max_obj });
        }
        // DPDK's rule: a cache may hold at most n / 1.5 objects, and at most CACHE_MAX_SIZE.
        let max_cache = CACHE_MAX_SIZE.min((n as u64 * 2 / 3) as u32);
        if cfg.cache_size > max_cache {
            return Err(MempoolError::CacheTooLarge {
                name,
                cache: cfg.cache_size,
                n,
                max: max_cache,
            });
        }
        let stride = cfg.elt_size.next_multiple_of(OBJ_ALIGN);
        let bytes = (n as usize).saturating_mul(stride);
        crate::segment::check_available(&name, bytes).map_err(|source| MempoolError::NoMemory {
            name: name.clone(),
            n,
            stride,
            bytes,
            source,
        })?;
        let spans = Self::map_segments(cfg, stride)?;
        let (ring_tx, ring_rx) = RingBuilder::new(n)
            .exact_size(true)
            .build()
            .map_err(|source| MempoolError::Ring { name: name.clone(), source })?;
        let caches = if cfg.cache_size == 0 {
            Box::default()
        } else {
            (0..MAX_LCORE).map(|_| CachePadded::new(LcoreCache::new(cfg.cache_size))).collect()
        };
        let inner = Arc::new(PoolInner {
            name,
            ring_tx,
            ring_rx,
            cache_size: cfg.cache_size,
            caches,
            size: n,
            elt_size: cfg.elt_size,
            stride,
            spans,
            handles: AtomicUsize::new(1),
            lost: AtomicU64::new(0),
            #[cfg(feature = "debug-objects")]
            states: (0..n).map(|_| core::sync::atomic::AtomicU8::new(0)).collect(),
            mbuf,
        });
        // Initialise every object (at its final pool address, which mbufs record), then fill
        // the ring in address order.
        let mut batch = Vec::with_capacity(256);
        for span in &inner.spans {
            for i in 0..span.count {
                let addr = span.seg.base().wrapping_add(i as usize * stride);
                let obj = ObjPtr(NonNull::new(addr).expect("segment addresses are non-null"));
                init(&inner, obj, span.first + i);
                batch.push(obj);
                if batch.len() == batch.capacity() {
                    inner.ring_put_all(&batch);
                    batch.clear();
                }
            }
        }
        inner.ring_put_all(&batch);
        Ok(Mempool { inner })
    }

    fn map_segments(cfg: &MempoolConfig, stride: usize) -> Result<Vec<SegSpan>, MempoolError> {
        let per_seg = (cfg.max_segment_len / stride).max(1) as u32;
        let mut spans = Vec::new();
        let mut first = 0u32;
        while first < cfg.n {
            let count = per_seg.min(cfg.n - first);
            let seg_name = format!("{}-{}", cfg.name, spans.len());
            let seg = MemSegment::anonymous(&seg_name, count as usize * stride, cfg.huge).map_err(
                |source| MempoolError::NoMemory {
                    name: cfg.name.clone(),
                    n: cfg.n,
                    stride,
                    bytes: cfg.n as usize * stride,
                    source,
                },
            )?;
            spans.push(SegSpan { seg, first, count });
            first += count;
        }
        Ok(spans)
    }

    pub(crate) fn inner(&self) -> &PoolInner {
        &self.inner
    }

    /// The pool's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Number of objects.
    pub fn size(&self) -> u32 {
        self.inner.size
    }

    /// Object size asked for.
    pub fn elt_size(&self) -> usize {
        self.inner.elt_size
    }

    /// Distance between objects (the size rounded up to a cache line).
    pub fn stride(&self) -> usize {
        self.inner.stride
    }

    /// Per-lcore cache size.
    pub fn cache_size(&self) -> u32 {
        self.inner.cache_size
    }

    /// Whether `other` is a handle to this same pool.
    pub fn same_pool(&self, other: &Mempool) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// The segments holding the objects (to map them for the device).
    pub fn segments(&self) -> impl Iterator<Item = &MemSegment> {
        self.inner.spans.iter().map(|s| &s.seg)
    }

    /// The IOVA of an address inside the pool's memory.
    pub fn va_to_iova(&self, addr: usize) -> Option<u64> {
        self.inner.va_to_iova(addr)
    }

    /// Where the objects are (a snapshot; exact when no other thread is using the pool).
    pub fn audit(&self) -> Audit {
        self.inner.audit()
    }

    /// Objects in the ring and caches (DPDK `rte_mempool_avail_count`).
    pub fn avail_count(&self) -> u32 {
        let a = self.audit();
        a.in_ring + a.in_caches
    }

    /// Objects taken and not returned (DPDK `rte_mempool_in_use_count`).
    pub fn in_use_count(&self) -> u32 {
        self.audit().in_use()
    }

    /// Indices of the objects currently in use (`debug-objects` feature): which ones leaked.
    #[cfg(feature = "debug-objects")]
    pub fn objects_in_use(&self) -> Vec<u32> {
        (0..self.inner.size)
            .filter(|&i| self.inner.states[i as usize].load(Ordering::Relaxed) != 0)
            .collect()
    }

    /// Takes one object.
    #[inline]
    pub fn get(&self) -> Result<ObjPtr, MempoolError> {
        let mut slot = MaybeUninit::<ObjPtr>::uninit();
        // SAFETY: one writable slot.
        if unsafe { self.inner.get_raw(slot.as_mut_ptr(), 1) } {
            // SAFETY: get_raw returned true, so the slot was written.
            Ok(unsafe { slot.assume_init() })
        } else {
            Err(self.inner.exhausted(1))
        }
    }

    /// Takes `out.len()` objects, all or none.
    #[inline]
    pub fn get_bulk(&self, out: &mut [MaybeUninit<ObjPtr>]) -> Result<(), MempoolError> {
        // SAFETY: the slice covers its length.
        if unsafe { self.inner.get_raw(out.as_mut_ptr().cast(), out.len()) } {
            Ok(())
        } else {
            Err(self.inner.exhausted(out.len()))
        }
    }

    /// Returns one object.
    ///
    /// # Safety
    /// `obj` came from this pool's `get`/`get_bulk`, has not been returned since, and is not used
    /// after this call.
    #[inline]
    pub unsafe fn put(&self, obj: ObjPtr) {
        // SAFETY: forwarded contract.
        unsafe { self.inner.put_raw(&obj, 1) }
    }

    /// Returns objects.
    ///
    /// # Safety
    /// As for [`put`](Self::put), for every element; no element appears twice.
    #[inline]
    pub unsafe fn put_bulk(&self, objs: &[ObjPtr]) {
        // SAFETY: forwarded contract.
        unsafe { self.inner.put_raw(objs.as_ptr(), objs.len()) }
    }

    /// Moves the current lcore's cached objects back to the common ring.
    pub fn cache_flush(&self) {
        self.inner.cache_flush();
    }
}

impl PoolInner {
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The IOVA of an address inside the pool's memory.
    pub(crate) fn va_to_iova(&self, addr: usize) -> Option<u64> {
        self.spans.iter().find_map(|s| s.seg.va_to_iova(addr))
    }

    fn audit(&self) -> Audit {
        let in_caches = self.caches.iter().map(|c| c.len.load(Ordering::Relaxed)).sum();
        Audit {
            size: self.size,
            in_ring: self.ring_rx.count(),
            in_caches,
            lost: self.lost.load(Ordering::Relaxed),
        }
    }

    #[cold]
    pub(crate) fn exhausted(&self, wanted: usize) -> MempoolError {
        let a = self.audit();
        MempoolError::Exhausted {
            name: self.name.clone(),
            wanted,
            available: a.in_ring + a.in_caches,
            size: self.size,
        }
    }

    /// Enqueues objects that must fit (the ring holds every object of the pool).
    fn ring_put_all(&self, objs: &[ObjPtr]) {
        let n = self.ring_tx.enqueue_burst(objs);
        if n < objs.len() {
            // Only more puts than gets (a double put) can fill the ring.
            self.lost.fetch_add((objs.len() - n) as u64, Ordering::Relaxed);
        }
    }

    /// The calling thread's cache, if it has an lcore id and the pool has caches (assigning an
    /// id on first use).
    #[inline(always)]
    fn local_cache(&self) -> Option<&LcoreCache> {
        self.caches.get(lcore::id()? as usize).map(|c| &**c)
    }

    /// Takes `n` objects into `dst`, all or none.
    ///
    /// The fast path (the calling thread's cache holds `n`) is small and inline; everything else
    /// (first use of an lcore id, refill, ring-only pools) is out of line.
    ///
    /// # Safety
    /// `dst` is valid for writes of `n` elements.
    #[inline(always)]
    pub(crate) unsafe fn get_raw(&self, dst: *mut ObjPtr, n: usize) -> bool {
        // An unassigned or absent id indexes past the caches (ids are < MAX_LCORE).
        if let Some(cache) = self.caches.get(lcore::current_raw() as usize) {
            let len = cache.len.load(Ordering::Relaxed) as usize;
            if n <= len {
                let len = len - n;
                // SAFETY: the cache is this thread's (lcore ids are unique among live threads);
                // its slots [len, len + n) hold objects; `dst` covers n writes.
                unsafe { pmd_ring::copy_small(dst, cache.slots().add(len), n) };
                cache.len.store(len as u32, Ordering::Relaxed);
                #[cfg(feature = "debug-objects")]
                // SAFETY: all n were written.
                self.debug_mark(unsafe { core::slice::from_raw_parts(dst, n) }, true);
                return true;
            }
        }
        if self.caches.is_empty() {
            // A pool without caches: the ring is the normal path, not a slow one.
            // SAFETY: `dst` covers n elements.
            let out = unsafe { core::slice::from_raw_parts_mut(dst.cast(), n) };
            let ok = self.ring_rx.dequeue_bulk_uninit(out) == n;
            #[cfg(feature = "debug-objects")]
            if ok {
                // SAFETY: on success all n were written.
                self.debug_mark(unsafe { core::slice::from_raw_parts(dst, n) }, true);
            }
            return ok;
        }
        // SAFETY: forwarded.
        unsafe { self.get_slow(dst, n) }
    }

    /// # Safety
    /// As for `get_raw`.
    #[cold]
    #[inline(never)]
    unsafe fn get_slow(&self, dst: *mut ObjPtr, n: usize) -> bool {
        let ok = match self.local_cache() {
            // SAFETY: this thread's cache; `dst` forwarded.
            Some(cache) => unsafe { self.cache_get(cache, dst, n) },
            None => {
                // SAFETY: `dst` covers n elements.
                let out = unsafe { core::slice::from_raw_parts_mut(dst.cast(), n) };
                self.ring_rx.dequeue_bulk_uninit(out) == n
            }
        };
        #[cfg(feature = "debug-objects")]
        if ok {
            // SAFETY: on success all n were written.
            self.debug_mark(unsafe { core::slice::from_raw_parts(dst, n) }, true);
        }
        ok
    }

    /// Returns `n` objects from `src`; inline fast path as for `get_raw`.
    ///
    /// # Safety
    /// `src` is valid for reads of `n` elements, each an object of this pool that is in use and
    /// not used after this call.
    #[inline(always)]
    pub(crate) unsafe fn put_raw(&self, src: *const ObjPtr, n: usize) {
        #[cfg(feature = "debug-objects")]
        // SAFETY: `src` covers n elements.
        self.debug_mark(unsafe { core::slice::from_raw_parts(src, n) }, false);
        if let Some(cache) = self.caches.get(lcore::current_raw() as usize) {
            let len = cache.len.load(Ordering::Relaxed) as usize;
            if len + n <= cache.objs.len() {
                // SAFETY: this thread's cache; [len, len + n) is inside it; `src` covers n.
                unsafe { pmd_ring::copy_small(cache.slots().add(len), src, n) };
                cache.len.store((len + n) as u32, Ordering::Relaxed);
                return;
            }
        }
        if self.caches.is_empty() {
            // SAFETY: `src` covers n elements.
            self.ring_put_all(unsafe { core::slice::from_raw_parts(src, n) });
            return;
        }
        // SAFETY: forwarded.
        unsafe { self.put_slow(src, n) }
    }

    /// # Safety
    /// As for `put_raw`.
    #[cold]
    #[inline(never)]
    unsafe fn put_slow(&self, src: *const ObjPtr, n: usize) {
        match self.local_cache() {
            // SAFETY: this thread's cache; `src` forwarded.
            Some(cache) => unsafe { self.cache_put(cache, src, n) },
            // SAFETY: `src` covers n elements.
            None => self.ring_put_all(unsafe { core::slice::from_raw_parts(src, n) }),
        }
    }

    /// The cache policy when the fast path does not apply.
    ///
    /// # Safety
    /// `cache` belongs to the calling thread's lcore id; `dst` is valid for `n` writes.
    unsafe fn cache_get(&self, cache: &LcoreCache, dst: *mut ObjPtr, n: usize) -> bool {
        let size = self.cache_size as usize;
        let mut len = cache.len.load(Ordering::Relaxed) as usize;
        let slots = cache.slots();
        if n > len {
            if n > size / 2 {
                // Too large for the cache policy: straight from the ring.
                // SAFETY: `dst` covers n elements.
                let out = unsafe { core::slice::from_raw_parts_mut(dst.cast(), n) };
                return self.ring_rx.dequeue_bulk_uninit(out) == n;
            }
            // Refill half the cache; len < n <= size/2, so len + size/2 < size: it fits.
            // SAFETY: slots [len, len + size/2) are inside the cache and only this thread uses
            // them.
            let room = unsafe { core::slice::from_raw_parts_mut(slots.add(len).cast(), size / 2) };
            len += self.ring_rx.dequeue_burst_uninit(room);
            if n > len {
                cache.len.store(len as u32, Ordering::Relaxed);
                return false;
            }
        }
        len -= n;
        // SAFETY: slots [len, len + n) hold objects; `dst` covers n writes; no overlap (the cache
        // is private storage).
        unsafe { pmd_ring::copy_small(dst, slots.add(len), n) };
        cache.len.store(len as u32, Ordering::Relaxed);
        true
    }

    /// The cache policy when the fast path does not apply.
    ///
    /// # Safety
    /// `cache` belongs to the calling thread's lcore id; `src` is valid for `n` reads.
    unsafe fn cache_put(&self, cache: &LcoreCache, src: *const ObjPtr, n: usize) {
        let size = self.cache_size as usize;
        let mut len = cache.len.load(Ordering::Relaxed) as usize;
        let slots = cache.slots();
        if len + n > size {
            if n > size / 2 {
                // Too large for the cache policy: straight to the ring.
                // SAFETY: `src` covers n elements.
                self.ring_put_all(unsafe { core::slice::from_raw_parts(src, n) });
                return;
            }
            // Flush the bottom (coldest) half; len + n > size and n <= size/2, so len > size/2.
            let half = size / 2;
            // SAFETY: slots [0, half) hold objects.
            self.ring_put_all(unsafe { core::slice::from_raw_parts(slots, half) });
            // SAFETY: slide [half, len) down to [0, len - half); `copy` handles the overlap.
            unsafe { core::ptr::copy(slots.add(half), slots, len - half) };
            len -= half;
        }
        // SAFETY: len + n <= size, so [len, len + n) is inside the cache.
        unsafe { pmd_ring::copy_small(slots.add(len), src, n) };
        cache.len.store((len + n) as u32, Ordering::Relaxed);
    }

    fn cache_flush(&self) {
        if let Some(cache) = self.local_cache() {
            let len = cache.len.load(Ordering::Relaxed) as usize;
            // SAFETY: this thread's cache; its first `len` slots hold objects.
            self.ring_put_all(unsafe { core::slice::from_raw_parts(cache.slots(), len) });
            cache.len.store(0, Ordering::Relaxed);
        }
    }

    /// Index of an object of this pool, if `addr` is the start of one.
    #[cfg(feature = "debug-objects")]
    fn index_of(&self, addr: usize) -> Option<u32> {
        self.spans.iter().find_map(|s| {
            let off = addr.checked_sub(s.seg.base_addr())?;
            let i = off / self.stride;
            (off % self.stride == 0 && i < s.count as usize).then(|| s.first + i as u32)
        })
    }

    /// Flips each object's state, panicking on a double get/put or a foreign pointer: the point
    /// of the `debug-objects` feature is to stop at the first misuse.
    #[cfg(feature = "debug-objects")]
    fn debug_mark(&self, objs: &[ObjPtr], taking: bool) {
        for o in objs {
            let Some(i) = self.index_of(o.addr()) else {
                panic!("mempool '{}': {o:?} is not an object of this pool", self.name);
            };
            let was = self.states[i as usize].swap(taking as u8, Ordering::Relaxed);
            if was == taking as u8 {
                let what = if taking { "handed out twice" } else { "returned twice" };
                panic!("mempool '{}': object {i} ({o:?}) {what}", self.name);
            }
        }
    }
}

/// A table of objects taken from one pool: the safe way to use a pool's objects in bulk.
///
/// Objects enter the table from its pool and leave it only back to the same pool, so none can
/// be returned twice or to another pool. Dropping the table returns whatever it holds.
pub struct ObjTable<'p> {
    pool: &'p Mempool,
    objs: Vec<ObjPtr>,
}

impl<'p> ObjTable<'p> {
    /// An empty table that can hold `capacity` objects.
    pub fn new(pool: &'p Mempool, capacity: usize) -> Self {
        ObjTable { pool, objs: Vec::with_capacity(capacity) }
    }

    /// Takes `n` objects from the pool into the table, all or none.
    #[inline]
    pub fn get_bulk(&mut self, n: usize) -> Result<(), MempoolError> {
        let (len, capacity) = (self.objs.len(), self.objs.capacity());
        if n > capacity - len {
            return Err(MempoolError::TableFull { len, capacity, wanted: n });
        }
        // SAFETY: the spare capacity holds at least n elements.
        if unsafe { self.pool.inner.get_raw(self.objs.as_mut_ptr().add(len), n) } {
            // SAFETY: get_raw wrote n elements after `len`.
            unsafe { self.objs.set_len(len + n) };
            Ok(())
        } else {
            Err(self.pool.inner.exhausted(n))
        }
    }

    /// Returns the last `n` objects of the table (or all, if it holds fewer) to the pool.
    #[inline]
    pub fn put_bulk(&mut self, n: usize) {
        let len = self.objs.len();
        let n = n.min(len);
        // SAFETY: the shrink below removes them from the table first in effect: they were taken
        // from this pool by `get_bulk` and the table never hands ownership out.
        unsafe {
            self.objs.set_len(len - n);
            self.pool.inner.put_raw(self.objs.as_ptr().add(len - n), n);
        }
    }

    /// Returns every object to the pool.
    pub fn put_all(&mut self) {
        self.put_bulk(self.objs.len());
    }

    /// The objects held (their addresses, for reading and writing their memory).
    pub fn objs(&self) -> &[ObjPtr] {
        &self.objs
    }

    /// Objects held.
    pub fn len(&self) -> usize {
        self.objs.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.objs.is_empty()
    }
}

impl Drop for ObjTable<'_> {
    fn drop(&mut self) {
        self.put_all();
    }
}

#[cfg(test)]
mod tests;
