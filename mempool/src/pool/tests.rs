//! Pool behaviour: creation errors, get/put, the cache policy, segments, threads, audit.

use super::*;
use crate::segment::HugePolicy;

fn small(name: &str, n: u32, elt: usize, cache: u32) -> Mempool {
    Mempool::create(&MempoolConfig::new(name, n, elt).cache_size(cache).huge(HugePolicy::Never))
        .unwrap()
}

#[test]
fn bad_configurations_are_typed_errors_with_numbers() {
    let cfg =
        |n, elt, cache| MempoolConfig::new("bad", n, elt).cache_size(cache).huge(HugePolicy::Never);
    let e = Mempool::create(&cfg(0, 64, 0)).unwrap_err();
    assert!(matches!(e, MempoolError::ZeroObjects { .. }), "{e}");
    let e = Mempool::create(&cfg(MAX_OBJECTS + 1, 64, 0)).unwrap_err();
    assert!(
        matches!(e, MempoolError::TooManyObjects { n, max, .. } if n == MAX_OBJECTS + 1 && max == MAX_OBJECTS)
    );
    let e = Mempool::create(&cfg(10, 0, 0)).unwrap_err();
    assert!(matches!(e, MempoolError::BadObjectSize { size: 0, .. }), "{e}");
    let e = Mempool::create(&cfg(10, 1 << 20, 0).max_segment_len(1 << 16)).unwrap_err();
    assert!(
        matches!(e, MempoolError::BadObjectSize { size, max, .. } if size == 1 << 20 && max == 1 << 16),
        "{e}"
    );
    let e = Mempool::create(&cfg(100, 64, 67)).unwrap_err();
    assert!(matches!(e, MempoolError::CacheTooLarge { cache: 67, n: 100, max: 66, .. }), "{e}");
    assert!(e.to_string().contains("67") && e.to_string().contains("100"), "{e}");
    let e = Mempool::create(&cfg(10_000, 64, 513)).unwrap_err();
    assert!(matches!(e, MempoolError::CacheTooLarge { max: 512, .. }), "{e}");
}

#[test]
#[cfg_attr(miri, ignore = "needs the OS's memory figures")]
fn memory_exhaustion_is_a_typed_error() {
    // 2^30 objects of 1 MiB cannot be mapped on any machine this runs on.
    let cfg =
        MempoolConfig::new("huge", MAX_OBJECTS, 1 << 20).huge(HugePolicy::Never).cache_size(0);
    match Mempool::create(&cfg) {
        Err(MempoolError::NoMemory { n, stride, bytes, .. }) => {
            assert_eq!((n, stride), (MAX_OBJECTS, 1 << 20));
            assert_eq!(bytes, MAX_OBJECTS as usize * (1 << 20));
        }
        other => panic!("expected NoMemory, got {other:?}"),
    }
}

#[test]
fn get_put_and_audit_without_cache() {
    let pool = small("nocache", 8, 100, 0);
    assert_eq!(pool.stride(), 128);
    assert!(pool.audit().is_complete());
    let mut objs = [MaybeUninit::uninit(); 8];
    pool.get_bulk(&mut objs).unwrap();
    // SAFETY: get_bulk succeeded, so all are initialised.
    let objs: Vec<ObjPtr> = objs.iter().map(|o| unsafe { o.assume_init() }).collect();
    assert_eq!(pool.in_use_count(), 8);
    assert!(!pool.audit().is_complete());
    match pool.get() {
        Err(MempoolError::Exhausted { wanted: 1, available: 0, size: 8, .. }) => {}
        other => panic!("expected Exhausted, got {other:?}"),
    }
    let mut sorted = objs.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 8, "distinct objects");
    for w in sorted.windows(2) {
        assert!(w[1].addr() - w[0].addr() >= 128, "objects do not overlap");
    }
    assert!(objs.iter().all(|o| o.addr() % OBJ_ALIGN == 0));
    // SAFETY: all from this pool, each returned once.
    unsafe { pool.put_bulk(&objs) };
    let a = pool.audit();
    assert!(a.is_complete(), "{a}");
    assert_eq!(a.in_ring, 8);
}

#[test]
fn cache_follows_the_half_flush_half_refill_policy() {
    // One thread (its lcore id is fixed for the test), cache of 8 over 64 objects.
    let pool = small("policy", 64, 64, 8);
    let mut t = ObjTable::new(&pool, 64);
    // Empty cache, get(2): refill size/2 = 4 from the ring, hand out 2 -> cache holds 2.
    t.get_bulk(2).unwrap();
    let a = pool.audit();
    assert_eq!((a.in_caches, a.in_ring), (2, 60), "{a}");
    // get(3) with 2 cached: refill 4 more -> 6, hand out 3 -> 3 cached.
    t.get_bulk(3).unwrap();
    assert_eq!(pool.audit().in_caches, 3);
    // get(5) > size/2: straight from the ring, cache untouched.
    t.get_bulk(5).unwrap();
    let a = pool.audit();
    assert_eq!((a.in_caches, a.in_ring), (3, 51), "{a}");
    // put(4): 3 + 4 = 7 <= 8 fits.
    t.put_bulk(4);
    assert_eq!(pool.audit().in_caches, 7);
    // put(4): 7 + 4 > 8 and 4 <= 4: flush the bottom 4 to the ring, then push -> 3 + 4 = 7.
    t.put_bulk(4);
    let a = pool.audit();
    assert_eq!((a.in_caches, a.in_ring), (7, 55), "{a}");
    // put(2): 7 + 2 > 8: flush 4 -> 3, push 2 -> 5.
    t.put_bulk(2);
    let a = pool.audit();
    assert_eq!((a.in_caches, a.in_ring, a.in_use()), (5, 59, 0), "{a}");
    assert!(a.is_complete());
    // A get of more than size/2 the cache cannot serve comes from the ring, and a put of more
    // than size/2 that does not fit goes to the ring: the cache keeps its 5 either way.
    t.get_bulk(10).unwrap();
    assert_eq!(pool.audit().in_caches, 5);
    t.put_bulk(6);
    assert_eq!(pool.audit().in_caches, 5, "6 > size/2 bypasses the cache when it does not fit");
    t.put_all();
    assert!(pool.audit().is_complete());
    pool.cache_flush();
    let a = pool.audit();
    assert_eq!((a.in_caches, a.in_ring), (0, 64), "{a}");
}

#[test]
fn a_get_larger_than_the_cache_can_be_served_from_ring_only() {
    let pool = small("ringonly", 16, 64, 8);
    let mut t = ObjTable::new(&pool, 16);
    t.get_bulk(16).unwrap();
    assert_eq!(pool.in_use_count(), 16);
    assert!(matches!(
        t.get_bulk(1),
        Err(MempoolError::TableFull { len: 16, capacity: 16, wanted: 1 })
    ));
    drop(t);
    assert!(pool.audit().is_complete(), "dropping the table returns its objects");
}

#[test]
fn objects_spread_over_several_segments() {
    let cfg = MempoolConfig::new("multiseg", 100, 1000)
        .huge(HugePolicy::Never)
        .cache_size(0)
        .max_segment_len(8192);
    let pool = Mempool::create(&cfg).unwrap();
    assert_eq!(pool.stride(), 1024);
    let segs: Vec<_> = pool.segments().collect();
    assert_eq!(segs.len(), 13, "8 objects per 8 KiB segment");
    let mut t = ObjTable::new(&pool, 100);
    t.get_bulk(100).unwrap();
    for o in t.objs() {
        let inside: Vec<_> = segs.iter().filter(|s| s.contains(o.addr(), 1000)).collect();
        assert_eq!(inside.len(), 1, "every object lies wholly inside one segment");
        assert_eq!(pool.va_to_iova(o.addr()), inside[0].va_to_iova(o.addr()));
    }
}

#[test]
fn threads_share_a_pool_without_losing_or_doubling_objects() {
    let pool = small("threads", 2048, 64, 64);
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let pool = &pool;
            s.spawn(move || {
                let mut table = ObjTable::new(pool, 256);
                let mut rng = t * 7919 + 1;
                for round in 0..if cfg!(miri) { 30 } else { 2000u64 } {
                    rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    let n = 1 + (rng >> 33) as usize % 40;
                    if table.len() + n <= 256 && table.get_bulk(n).is_ok() {
                        // Stamp the new objects; a doubly handed-out object would be restamped
                        // by another thread and fail the check below.
                        let stamp = (t << 32) | round;
                        for o in &table.objs()[table.len() - n..] {
                            // SAFETY: the object is ours until it goes back; 64 bytes long.
                            unsafe { o.as_ptr().cast::<u64>().write_volatile(stamp) };
                        }
                        std::thread::yield_now();
                        for o in &table.objs()[table.len() - n..] {
                            // SAFETY: as above.
                            let v = unsafe { o.as_ptr().cast::<u64>().read_volatile() };
                            assert_eq!(v, stamp, "object shared with another thread");
                        }
                    }
                    table.put_bulk((rng >> 40) as usize % 48);
                }
            });
        }
    });
    // The threads have exited; their caches still hold objects, which count as available.
    let a = pool.audit();
    assert!(a.is_complete(), "{a}");
}

#[cfg(feature = "debug-objects")]
mod debug_objects {
    use super::*;

    #[test]
    #[should_panic(expected = "returned twice")]
    fn a_double_put_is_caught() {
        let pool = small("dbl", 4, 64, 0);
        let o = pool.get().unwrap();
        // SAFETY: deliberately broken (that is the test): the feature must stop it.
        unsafe {
            pool.put(o);
            pool.put(o);
        }
    }

    #[test]
    #[should_panic(expected = "is not an object of this pool")]
    fn a_foreign_pointer_is_caught() {
        let a = small("fa", 4, 64, 0);
        let b = small("fb", 4, 64, 0);
        let o = a.get().unwrap();
        // SAFETY: deliberately broken: the feature must stop it.
        unsafe { b.put(o) };
    }

    #[test]
    fn leaked_objects_are_named() {
        let pool = small("leak", 4, 64, 0);
        let mut t = ObjTable::new(&pool, 4);
        t.get_bulk(2).unwrap();
        let mut leaked = pool.objects_in_use();
        leaked.sort_unstable();
        assert_eq!(leaked.len(), 2);
        t.put_all();
        assert!(pool.objects_in_use().is_empty());
    }
}
