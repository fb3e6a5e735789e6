//! Mbuf behaviour: defaults, data operations, chains, clones, bulk paths, accounting.

use super::*;
use crate::segment::HugePolicy;

fn pool(name: &str, n: u32) -> MbufPool {
    let mut cfg = MbufPoolConfig::new(name, n);
    cfg.cache_size = 0;
    cfg.huge = HugePolicy::Never;
    MbufPool::with_config(&cfg).unwrap()
}

#[test]
fn a_fresh_mbuf_has_dpdk_defaults() {
    let p = pool("defaults", 4);
    assert_eq!(p.buf_len(), 2176);
    assert_eq!(p.stride(), 128 + 2176);
    let m = p.alloc().unwrap();
    assert_eq!((m.data_off(), m.data_len(), m.pkt_len(), m.nb_segs()), (128, 0, 0, 1));
    assert_eq!((m.refcnt(), m.port(), m.ol_flags()), (1, MBUF_INVALID_PORT, 0));
    assert_eq!((m.headroom(), m.tailroom()), (128, 2048));
    let hdr = m.as_raw().as_ptr() as usize;
    assert_eq!(
        m.data_addr() as usize,
        hdr + 128 + 128,
        "buffer after the header, data after headroom"
    );
    assert_eq!(m.buf_iova(), p.va_to_iova(hdr + 128).unwrap());
    assert_eq!(m.data_iova(), m.buf_iova() + 128);
    assert!(m.is_exclusive() && !m.is_indirect());
    assert_eq!(m.pool_name(), "defaults");
    drop(m);
    assert!(p.audit().is_complete());
}

#[test]
fn append_prepend_adj_trim() {
    let p = pool("ops", 2);
    let mut m = p.alloc().unwrap();
    m.append(5).unwrap().copy_from_slice(b"hello");
    m.prepend(3).unwrap().copy_from_slice(b">>>");
    assert_eq!(m.data(), b">>>hello");
    assert_eq!((m.pkt_len(), m.data_len(), m.headroom()), (8, 8, 125));
    assert!(m.adj(3));
    assert!(m.trim(1));
    assert_eq!(m.data(), b"hell");
    assert_eq!(m.pkt_len(), 4);
    assert!(!m.adj(5), "cannot remove more than there is");
    assert!(!m.trim(5));
    assert!(m.prepend(200).is_none(), "headroom is 128");
    assert!(m.append(2048).is_none(), "tailroom is 2044");
    assert!(m.append(2044).is_some());
    assert_eq!(m.tailroom(), 0);
    assert!(!m.set_data_len(2049), "past the buffer");
    m.data_mut().unwrap()[0] = b'H';
    assert_eq!(&m.data()[..4], b"Hell");
    m.set_tx_lens(14, 20, 8);
    assert_eq!(m.tx_lens(), (14, 20, 8));
}

#[test]
fn chains_sum_lengths_and_free_every_segment() {
    let p = pool("chain", 8);
    let mut a = p.alloc().unwrap();
    a.append(3).unwrap().copy_from_slice(b"abc");
    let mut b = p.alloc().unwrap();
    b.append(2).unwrap().copy_from_slice(b"de");
    let mut c = p.alloc().unwrap();
    c.append(1).unwrap().copy_from_slice(b"f");
    b.chain(c).unwrap();
    a.chain(b).unwrap();
    assert_eq!((a.nb_segs(), a.pkt_len(), a.data_len()), (3, 6, 3));
    assert_eq!(a.to_vec(), b"abcdef");
    assert_eq!(a.segments().map(<[u8]>::len).collect::<Vec<_>>(), [3, 2, 1]);
    a.append(1).unwrap().copy_from_slice(b"g");
    assert_eq!(a.to_vec(), b"abcdefg", "append grows the last segment");
    assert!(a.trim(2));
    assert_eq!(a.to_vec(), b"abcde");
    assert_eq!(p.in_use_count(), 3);
    drop(a);
    assert!(p.audit().is_complete());
    // Freed segments come back with the pool invariants.
    let mut all = Vec::new();
    p.alloc_bulk(&mut all, 8).unwrap();
    assert!(all.iter().all(|m| m.nb_segs() == 1 && m.segments().count() == 1 && m.refcnt() == 1));
}

#[test]
fn indirect_clones_share_data_until_the_last_holder_frees() {
    let p = pool("clone", 8);
    let mut a = p.alloc().unwrap();
    a.append(4).unwrap().copy_from_slice(b"data");
    a.set_port(3);
    a.set_rss_hash(0xdead);
    let b = a.try_clone(&p).unwrap();
    assert!(b.is_indirect());
    assert_eq!(a.refcnt(), 2);
    assert_eq!(b.data(), b"data");
    assert_eq!(b.data_addr(), a.data_addr(), "no copy");
    assert_eq!((b.port(), b.rss_hash(), b.pkt_len()), (3, 0xdead, 4));
    assert!(a.data_mut().is_none(), "shared buffer is read-only");
    assert_eq!(p.in_use_count(), 2);
    // Free the original first: its buffer must survive for the clone.
    drop(a);
    assert_eq!(p.in_use_count(), 2);
    assert_eq!(b.data(), b"data");
    drop(b);
    assert!(p.audit().is_complete());
    // And the other order.
    let mut a = p.alloc().unwrap();
    a.append(1).unwrap()[0] = 7;
    let b = a.try_clone(&p).unwrap();
    drop(b);
    assert_eq!(a.refcnt(), 1);
    assert!(a.data_mut().is_some(), "exclusive again");
    drop(a);
    assert!(p.audit().is_complete());
}

#[test]
fn clones_of_chains_and_clones_of_clones() {
    let p = pool("clone2", 16);
    let mut a = p.alloc().unwrap();
    a.append(2).unwrap().copy_from_slice(b"ab");
    let mut t = p.alloc().unwrap();
    t.append(2).unwrap().copy_from_slice(b"cd");
    a.chain(t).unwrap();
    let b = a.try_clone(&p).unwrap();
    let c = b.try_clone(&p).unwrap();
    assert_eq!((b.to_vec(), c.to_vec()), (b"abcd".to_vec(), b"abcd".to_vec()));
    assert_eq!((b.nb_segs(), c.nb_segs()), (2, 2));
    assert_eq!(a.refcnt(), 3, "clones of clones hold the direct buffer");
    assert_eq!(p.in_use_count(), 6);
    drop(b);
    drop(a);
    assert_eq!(c.to_vec(), b"abcd");
    drop(c);
    assert!(p.audit().is_complete());
}

#[test]
fn clones_freed_on_other_threads() {
    let p = pool("clonethreads", 64);
    for _ in 0..if cfg!(miri) { 2 } else { 20 } {
        let mut a = p.alloc().unwrap();
        a.append(8).unwrap().copy_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        let clones: Vec<Mbuf> = (0..4).map(|_| a.try_clone(&p).unwrap()).collect();
        std::thread::scope(|s| {
            for c in clones {
                s.spawn(move || {
                    assert_eq!(c.data(), &[1, 2, 3, 4, 5, 6, 7, 8]);
                    drop(c);
                });
            }
            drop(a);
        });
    }
    assert!(p.audit().is_complete());
}

#[test]
fn bulk_alloc_into_arrayvec_and_vec_and_bulk_free() {
    let p = pool("bulk", 64);
    let mut av = ArrayVec::<Mbuf, 32>::new();
    p.alloc_bulk(&mut av, 32).unwrap();
    assert!(matches!(
        p.alloc_bulk(&mut av, 1),
        Err(MempoolError::TableFull { capacity: 0, wanted: 1, .. })
    ));
    let mut v = Vec::new();
    p.alloc_bulk(&mut v, 32).unwrap();
    match p.alloc_bulk(&mut v, 1) {
        Err(MempoolError::Exhausted { wanted: 1, available: 0, size: 64, .. }) => {}
        other => panic!("expected Exhausted, got {other:?}"),
    }
    assert_eq!(v.len(), 32, "a failed bulk adds nothing");
    let mut addrs: Vec<usize> = av.iter().chain(&v).map(|m| m.as_raw().as_ptr() as usize).collect();
    addrs.sort_unstable();
    addrs.dedup();
    assert_eq!(addrs.len(), 64);
    Mbuf::free_bulk(av.drain(..).chain(v.drain(..)));
    assert!(p.audit().is_complete());
}

#[test]
fn free_bulk_handles_mixed_pools_chains_and_clones() {
    let (p1, p2) = (pool("mix1", 200), pool("mix2", 200));
    let mut ms = Vec::new();
    for i in 0..150 {
        let p = if i % 3 == 0 { &p1 } else { &p2 };
        let mut m = p.alloc().unwrap();
        m.append(1).unwrap();
        if i % 7 == 0 {
            let t = p2.alloc().unwrap();
            m.chain(t).unwrap();
        }
        if i % 11 == 0 {
            let c = m.try_clone(&p1).unwrap();
            ms.push(c);
        }
        ms.push(m);
    }
    Mbuf::free_bulk(ms);
    assert!(p1.audit().is_complete(), "{}", p1.audit());
    assert!(p2.audit().is_complete(), "{}", p2.audit());
}

#[test]
fn raw_alloc_keeps_the_pool_invariants() {
    let p = pool("raw", 4);
    let mut m = p.alloc().unwrap();
    m.append(100).unwrap();
    m.set_port(5);
    drop(m);
    let mut slots = [const { core::mem::MaybeUninit::<Mbuf>::uninit() }; 4];
    // SAFETY: four writable slots.
    assert!(unsafe { p.alloc_bulk_raw(slots.as_mut_ptr().cast(), 4) });
    // SAFETY: all four were written.
    let ms: Vec<Mbuf> = slots.into_iter().map(|s| unsafe { s.assume_init() }).collect();
    assert!(ms.iter().all(|m| m.refcnt() == 1 && m.nb_segs() == 1 && m.segments().count() == 1));
    drop(ms);
    assert!(p.audit().is_complete());
}

#[test]
#[cfg_attr(miri, ignore = "leaks the pool on purpose")]
fn mbufs_outliving_their_pool_stay_valid() {
    let p = pool("outlive", 4);
    let mut m = p.alloc().unwrap();
    drop(p);
    // The pool handle is gone; its memory was kept because an object is in use.
    m.append(3).unwrap().copy_from_slice(b"ok!");
    assert_eq!(m.data(), b"ok!");
    drop(m);
}

#[test]
fn an_oversized_buffer_is_refused() {
    let mut cfg = MbufPoolConfig::new("big", 4);
    cfg.data_room = u16::MAX;
    cfg.huge = HugePolicy::Never;
    let e = MbufPool::with_config(&cfg).unwrap_err();
    assert!(matches!(e, MempoolError::BadObjectSize { .. }), "{e}");
}

#[test]
fn mbufs_move_between_threads_with_caches() {
    // Allocated on one thread, freed on another (through that thread's cache): the classic
    // RX-core / TX-core split. Everything comes back.
    let mut cfg = MbufPoolConfig::new("xthread", 4096);
    cfg.huge = HugePolicy::Never;
    let p = MbufPool::with_config(&cfg).unwrap();
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Mbuf>>(4);
    std::thread::scope(|s| {
        let p = &p;
        s.spawn(move || {
            for _ in 0..if cfg!(miri) { 5 } else { 500 } {
                let mut v = Vec::with_capacity(32);
                while p.alloc_bulk(&mut v, 32).is_err() {
                    std::thread::yield_now();
                }
                tx.send(v).unwrap();
            }
        });
        s.spawn(move || {
            while let Ok(v) = rx.recv() {
                Mbuf::free_bulk(v);
            }
        });
    });
    let a = p.audit();
    assert!(a.is_complete(), "{a}");
}

#[test]
fn slots_are_filled_all_or_none_and_freed_in_bulk_whatever_they_hold() {
    let (p1, p2) = (pool("slots1", 36), pool("slots2", 64));
    let mut slots: Vec<Option<Mbuf>> = (0..40).map(|_| None).collect();
    assert!(p1.alloc_into_slots(&mut slots[..32]));
    assert!(slots[..32].iter().all(Option::is_some) && slots[32..].iter().all(Option::is_none));
    assert_eq!(p1.in_use_count(), 32);
    // More than the pool has left (4): nothing taken, nothing written.
    assert!(!p1.alloc_into_slots(&mut slots[32..40]));
    assert!(slots[32..].iter().all(Option::is_none));
    assert_eq!(p1.in_use_count(), 32);
    // The general path: a chain, a clone (of another pool), an mbuf of another pool, a gap.
    let mut c = p1.alloc().unwrap();
    c.chain(p2.alloc().unwrap()).unwrap();
    slots[3] = None;
    let taken = slots[4].take().unwrap();
    slots[4] = Some(taken.try_clone(&p2).unwrap());
    slots[5] = Some(c);
    let stray = slots[6].replace(p2.alloc().unwrap()).unwrap();
    drop((taken, stray));
    let held = slots.iter().filter(|s| s.is_some()).count();
    assert_eq!(Mbuf::free_slots(&mut slots), held);
    assert!(slots.iter().all(Option::is_none));
    assert!(p1.audit().is_complete(), "{}", p1.audit());
    assert!(p2.audit().is_complete(), "{}", p2.audit());
}

#[test]
fn a_dry_pool_fills_no_slot() {
    let p = pool("slots-dry", 8);
    let mut slots: Vec<Option<Mbuf>> = (0..16).map(|_| None).collect();
    assert!(!p.alloc_into_slots(&mut slots));
    assert!(slots.iter().all(Option::is_none));
    assert!(p.alloc_into_slots(&mut slots[..8]));
    assert_eq!(Mbuf::free_slots(&mut slots), 8);
    assert!(p.audit().is_complete());
}

#[test]
fn slot_contents_move_into_a_burst_in_order_with_gaps_skipped() {
    let p = pool("slots-take", 32);
    let mut slots: Vec<Option<Mbuf>> = (0..8).map(|_| None).collect();
    assert!(p.alloc_into_slots(&mut slots));
    for (i, s) in slots.iter_mut().enumerate() {
        s.as_mut().unwrap().set_port(i as u16);
    }
    // All present: one copy.
    let mut out: ArrayVec<Mbuf, 16> = ArrayVec::new();
    assert_eq!(Mbuf::take_slots_into(&mut slots[..4], &mut out), 4);
    assert!(slots[..4].iter().all(Option::is_none));
    // A gap: skipped; room for only two more than there are.
    drop(slots[5].take());
    let mut small: ArrayVec<Mbuf, 2> = ArrayVec::new();
    assert_eq!(Mbuf::take_slots_into(&mut slots[4..], &mut small), 2, "two slots fit");
    assert_eq!(small.iter().map(|m| m.port()).collect::<Vec<_>>(), vec![4]);
    assert_eq!(Mbuf::take_slots_into(&mut slots[6..], &mut out), 2);
    assert_eq!(out.iter().map(|m| m.port()).collect::<Vec<_>>(), vec![0, 1, 2, 3, 6, 7]);
    drop((out, small));
    assert!(p.audit().is_complete());
}

#[test]
fn rx_set_never_leaves_the_buffer() {
    let p = pool("rx-set", 2);
    let mut m = p.alloc().unwrap();
    m.rx_set(128, 60, 3, 0x2, 0);
    assert_eq!(
        (m.data_off(), m.data_len(), m.pkt_len(), m.port(), m.ol_flags()),
        (128, 60, 60, 3, 2)
    );
    let (iova, len) = m.data_iova_len();
    assert_eq!((iova, len), (m.data_iova(), 60));
    // Too long for the buffer: cut to it.
    m.rx_set(128, u16::MAX, 3, 0, 0);
    assert_eq!(m.data_len() as usize, m.buf_len() as usize - 128);
    m.rx_set(u16::MAX, 10, 3, 0, 0);
    assert_eq!((m.data_off(), m.data_len()), (m.buf_len(), 0));
    drop(m);
    assert!(p.audit().is_complete());
}

#[test]
fn rx_set_sets_the_hash_and_clears_the_vlan_tag() {
    let p = pool("rx-set-hashed", 2);
    let mut m = p.alloc().unwrap();
    m.set_vlan_tci(7);
    m.set_packet_type(9);
    m.rx_set(128, 60, 3, 0x2, 0xdead_beef);
    assert_eq!(
        (m.data_off(), m.data_len(), m.pkt_len(), m.port(), m.ol_flags()),
        (128, 60, 60, 3, 2)
    );
    assert_eq!((m.rss_hash(), m.vlan_tci(), m.packet_type()), (0xdead_beef, 0, 0));
    // The neighbours of the wide stores are untouched.
    assert_eq!((m.nb_segs(), m.refcnt()), (1, 1));
    assert_eq!(m.data(), &m.to_vec()[..]);
    // Too long for the buffer: cut to it, as rx_set does.
    m.rx_set(128, u16::MAX, 3, 0, 0);
    assert_eq!(m.data_len() as usize, m.buf_len() as usize - 128);
    assert_eq!(m.pkt_len(), m.data_len() as u32);
    m.rx_set(u16::MAX, 10, 3, 0, 0);
    assert_eq!((m.data_off(), m.data_len(), m.pkt_len()), (m.buf_len(), 0, 0));
    drop(m);
    assert!(p.audit().is_complete());
}
