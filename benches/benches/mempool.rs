//! The mempool get/put path (bulk through an object table, with and without cache) and the
//! mbuf allocate/free path (single and bulk).
#![forbid(unsafe_code)]
#![allow(missing_docs)] // criterion_group! generates undocumented functions

use std::hint::black_box;

use arrayvec::ArrayVec;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pmd_mempool::{HugePolicy, Mbuf, MbufPool, MbufPoolConfig, Mempool, MempoolConfig, ObjTable};

fn mempool(c: &mut Criterion) {
    let mut g = c.benchmark_group("mempool");
    for cache in [0u32, 512] {
        let cfg =
            MempoolConfig::new("bench", 2047, 2048).cache_size(cache).huge(HugePolicy::Prefer);
        let pool = Mempool::create(&cfg).unwrap();
        let mut t = ObjTable::new(&pool, 32);
        g.throughput(Throughput::Elements(32));
        g.bench_function(format!("get_put_bulk32/cache{cache}"), |b| {
            b.iter(|| {
                t.get_bulk(black_box(32)).unwrap();
                t.put_bulk(black_box(32));
            })
        });
    }
    g.finish();
}

fn mbuf(c: &mut Criterion) {
    let mut g = c.benchmark_group("mbuf");
    let mut cfg = MbufPoolConfig::new("bench-mbuf", 4095);
    cfg.cache_size = 256;
    let pool = MbufPool::with_config(&cfg).unwrap();
    g.throughput(Throughput::Elements(1));
    g.bench_function("alloc_free", |b| b.iter(|| drop(black_box(pool.alloc().unwrap()))));
    g.throughput(Throughput::Elements(32));
    g.bench_function("alloc_bulk32_free_bulk", |b| {
        let mut v = ArrayVec::<Mbuf, 32>::new();
        b.iter(|| {
            pool.alloc_bulk(&mut v, 32).unwrap();
            Mbuf::free_bulk(black_box(&mut v).drain(..));
        })
    });
    g.finish();
}

criterion_group!(benches, mempool, mbuf);
criterion_main!(benches);
