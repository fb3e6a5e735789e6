//! Single-threaded behaviour of every mode (these also run under Miri).

use super::*;

fn check_basic<P: SyncMode, C: SyncMode>() {
    let (tx, rx) = RingBuilder::new(8).build::<u64, P, C>().unwrap();
    assert_eq!(tx.capacity(), 7);
    assert_eq!(tx.size(), 8);
    assert!(rx.is_empty());
    assert_eq!(rx.dequeue(), None);
    for i in 0..7 {
        assert_eq!(tx.enqueue(i), Ok(()));
    }
    assert!(tx.is_full());
    assert_eq!(tx.enqueue(99), Err(99));
    assert_eq!(rx.count(), 7);
    assert_eq!(rx.free_count(), 0);
    for i in 0..7 {
        assert_eq!(rx.dequeue(), Some(i));
    }
    assert_eq!(rx.dequeue(), None);
}

#[test]
fn single_element_every_mode() {
    check_basic::<Single, Single>();
    check_basic::<Multi, Multi>();
    check_basic::<Hts, Hts>();
    check_basic::<Single, Multi>();
    check_basic::<Multi, Single>();
    check_basic::<Hts, Single>();
}

fn check_bulk_burst<P: SyncMode, C: SyncMode>() {
    let (tx, rx) = RingBuilder::new(16).build::<u32, P, C>().unwrap();
    let data: Vec<u32> = (0..20).collect();
    // Bulk is all or nothing.
    assert_eq!(tx.enqueue_bulk(&data[..16]), 0, "16 > capacity 15");
    assert_eq!(tx.enqueue_bulk(&data[..10]), 10);
    assert_eq!(tx.enqueue_bulk(&data[10..16]), 0, "6 > 5 free");
    // Burst takes what fits, from the front.
    assert_eq!(tx.enqueue_burst(&data[10..16]), 5);
    assert_eq!(tx.enqueue_burst(&data[15..]), 0);
    let mut out = [0u32; 16];
    assert_eq!(rx.dequeue_bulk(&mut out), 0, "16 > 15 present");
    assert_eq!(rx.dequeue_bulk(&mut out[..4]), 4);
    assert_eq!(&out[..4], &[0, 1, 2, 3]);
    assert_eq!(rx.dequeue_burst(&mut out), 11);
    assert_eq!(&out[..11], &data[4..15]);
    assert_eq!(rx.dequeue_burst(&mut out), 0);
    // Empty requests move nothing and report 0.
    assert_eq!(tx.enqueue_bulk(&[]), 0);
    assert_eq!(rx.dequeue_bulk(&mut []), 0);
}

#[test]
fn bulk_and_burst_every_mode() {
    check_bulk_burst::<Single, Single>();
    check_bulk_burst::<Multi, Multi>();
    check_bulk_burst::<Hts, Hts>();
    check_bulk_burst::<Multi, Hts>();
}

#[test]
fn exact_size_gives_the_requested_capacity() {
    for count in [1u32, 2, 3, 7, 8, 100, 1000, 4096] {
        let (tx, rx) =
            RingBuilder::new(count).exact_size(true).build::<u64, Single, Single>().unwrap();
        assert_eq!(tx.capacity(), count);
        assert_eq!(tx.size(), (count + 1).next_power_of_two());
        let v: Vec<u64> = (0..count as u64).collect();
        assert_eq!(tx.enqueue_bulk(&v), count as usize);
        assert!(tx.is_full());
        assert_eq!(tx.enqueue(0), Err(0));
        let mut out = vec![0; count as usize];
        assert_eq!(rx.dequeue_bulk(&mut out), count as usize);
        assert_eq!(out, v);
    }
}

#[test]
fn bad_counts_are_rejected_with_the_numbers() {
    assert_eq!(
        RingBuilder::new(0).build::<u64, Single, Single>().err(),
        Some(RingError::ZeroCount)
    );
    assert_eq!(
        RingBuilder::new(1).build::<u64, Single, Single>().err(),
        Some(RingError::ZeroCount),
        "a one-slot table has no capacity"
    );
    assert_eq!(
        RingBuilder::new(100).build::<u64, Single, Single>().err(),
        Some(RingError::NotPowerOfTwo { count: 100 })
    );
    assert_eq!(
        RingBuilder::new(1 << 31).build::<u64, Single, Single>().err(),
        Some(RingError::TooLarge { count: 1 << 31, max: RING_SZ_MASK })
    );
    assert_eq!(
        RingBuilder::new((1 << 30) + 1).exact_size(true).build::<u64, Single, Single>().err(),
        Some(RingError::TooLarge { count: (1 << 30) + 1, max: 1 << 30 })
    );
    let msg = RingError::NotPowerOfTwo { count: 100 }.to_string();
    assert!(msg.contains("100") && msg.contains("power of two"), "{msg}");
}

fn check_wrap<P: SyncMode, C: SyncMode>() {
    // Start just below 2^32 and run long enough to cross it several table lengths over.
    let (tx, rx) = RingBuilder::new(8).start_index(u32::MAX - 20).build::<u64, P, C>().unwrap();
    let mut next_in = 0u64;
    let mut next_out = 0u64;
    let mut buf = [0u64; 5];
    for round in 0..40 {
        let batch: Vec<u64> = (next_in..next_in + 1 + round % 5).collect();
        let n = tx.enqueue_burst(&batch);
        next_in += n as u64;
        assert!(rx.count() as u64 == next_in - next_out);
        let m = rx.dequeue_burst(&mut buf[..(round as usize % 4) + 1]);
        for v in &buf[..m] {
            assert_eq!(*v, next_out);
            next_out += 1;
        }
    }
    while let Some(v) = rx.dequeue() {
        assert_eq!(v, next_out);
        next_out += 1;
    }
    assert_eq!(next_in, next_out);
    assert!(next_in > 60, "crossed the wrap with real traffic");
}

#[test]
fn indices_cross_the_u32_wrap() {
    check_wrap::<Single, Single>();
    check_wrap::<Multi, Multi>();
    check_wrap::<Hts, Hts>();
}

fn check_first_ops_near_the_wrap<P: SyncMode, C: SyncMode>() {
    // The very first operations after creation, with indices just below 2^32: an empty ring must
    // refuse a dequeue and a full one an enqueue (a handle's cached view of the other side must
    // start from the real start index, not from zero).
    for start in [u32::MAX, u32::MAX - 1, u32::MAX - 6, 1 << 31] {
        let (tx, rx) = RingBuilder::new(8).start_index(start).build::<u64, P, C>().unwrap();
        assert_eq!(rx.dequeue(), None, "start {start:#x}");
        assert_eq!(rx.dequeue_burst(&mut [0; 4]), 0);
        assert_eq!(tx.enqueue_burst(&[1; 20]), 7, "start {start:#x}");
        assert_eq!(tx.enqueue(2), Err(2));
        let mut out = [0u64; 8];
        assert_eq!(rx.dequeue_burst(&mut out), 7);
        assert_eq!(rx.dequeue(), None);
    }
}

#[test]
fn first_operations_near_the_wrap() {
    check_first_ops_near_the_wrap::<Single, Single>();
    check_first_ops_near_the_wrap::<Multi, Multi>();
    check_first_ops_near_the_wrap::<Hts, Single>();
}

#[test]
fn sixteen_byte_elements() {
    let (tx, rx) = mpmc::<(u64, u64)>(32).unwrap();
    let v: Vec<(u64, u64)> = (0..20).map(|i| (i, i * 3)).collect();
    assert_eq!(tx.enqueue_bulk(&v), 20);
    let mut out = [(0, 0); 20];
    assert_eq!(rx.dequeue_bulk(&mut out), 20);
    assert_eq!(out.to_vec(), v);
}

#[test]
fn uninit_dequeue_fills_the_prefix() {
    let (tx, rx) = spsc::<u64>(16).unwrap();
    assert_eq!(tx.enqueue_bulk(&[7, 8, 9]), 3);
    let mut out = [MaybeUninit::<u64>::uninit(); 8];
    assert_eq!(rx.dequeue_bulk_uninit(&mut out), 0);
    assert_eq!(rx.dequeue_burst_uninit(&mut out), 3);
    // SAFETY: the first three were filled.
    #[allow(unsafe_code)]
    let got: Vec<u64> = out[..3].iter().map(|m| unsafe { m.assume_init() }).collect();
    assert_eq!(got, [7, 8, 9]);
}

#[test]
fn stale_cached_tail_never_overstates_room() {
    // A Single producer caches the consumer tail; after the consumer frees room the producer must
    // see it (by reloading) and must never exceed capacity with the stale value.
    let (tx, rx) = spsc::<u8>(4).unwrap();
    assert_eq!(tx.enqueue_bulk(&[1, 2, 3]), 3);
    assert_eq!(tx.enqueue(4), Err(4));
    assert_eq!(rx.dequeue(), Some(1));
    assert_eq!(tx.enqueue_bulk(&[4, 5]), 0, "only one slot is free");
    assert_eq!(tx.enqueue(4), Ok(()));
    assert!(tx.is_full());
}

#[test]
fn handles_have_the_right_auto_traits() {
    fn send<X: Send>() {}
    fn sync<X: Sync>() {}
    fn clone<X: Clone>() {}
    send::<SpProducer<u64>>();
    send::<ScConsumer<u64>>();
    send::<MpProducer<u64>>();
    sync::<MpProducer<u64>>();
    sync::<McConsumer<u64>>();
    clone::<MpProducer<u64>>();
    clone::<Consumer<u64, Hts>>();
    // That Single handles are neither Sync nor Clone is proven by the compile_fail doc tests on
    // `Producer`.
}
