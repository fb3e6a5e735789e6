//! mempool-perf: DPDK's `mempool_perf_autotest` measurement for pmd-mempool, printing its line
//! format:
//! `mempool_autotest cache=512 cores=1 n_get_bulk=32 n_put_bulk=32 n_keep=128 constant_n=0 rate_persec=N`
//!
//! Each core, pinned, loops for the test time: take `n_keep` objects in bulks of `n_get_bulk`,
//! then put them back in bulks of `n_put_bulk`. `rate_persec` is the number of objects cycled
//! (one get plus one put each) per second, summed over the cores. Objects are 2048 bytes; the
//! pool holds `lcores * (128 + 512) - 1` of them, as in DPDK 22.11 (`lcores` being every core
//! the process may use; more when n_keep is larger than 128).
#![forbid(unsafe_code)]

use std::sync::Barrier;
use std::time::{Duration, Instant};

use clap::Parser;
use pmd_mempool::{HugePolicy, Mempool, MempoolConfig, ObjTable, lcore};

/// Object size of DPDK's test.
const ELT_SIZE: usize = 2048;
/// Objects cycled between two clock reads (DPDK's `N`).
const N: usize = 65536;

#[derive(Parser, Debug)]
#[command(about = "pmd-mempool performance in DPDK mempool_perf_autotest's format")]
struct Args {
    /// Seconds per measurement (DPDK 22.11 uses 5, later versions 1).
    #[arg(long, default_value_t = 1.0)]
    time: f64,
    /// The full matrix: cache 0, 256, 512; cores 1 and all; bulks 1, 4, 8, 32, 64, 128;
    /// keep 32, 128, 512, 2048.
    #[arg(long)]
    full: bool,
    /// Run only this cache size (repeatable).
    #[arg(long)]
    cache: Vec<u32>,
    /// Run only these core counts (repeatable).
    #[arg(long)]
    cores: Vec<usize>,
    /// Run only this get bulk size (repeatable).
    #[arg(long)]
    get_bulk: Vec<usize>,
    /// Run only this put bulk size (repeatable).
    #[arg(long)]
    put_bulk: Vec<usize>,
    /// Run only this n_keep (repeatable).
    #[arg(long)]
    keep: Vec<usize>,
    /// Hugepage policy for the pool: prefer, require or never.
    #[arg(long, default_value = "prefer")]
    huge: String,
}

/// Pins the calling thread to CPU `core` (by number: the caller's own affinity mask, which a
/// pinned parent passes on, must not limit the choice).
fn pin(core: usize) {
    if !core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
        eprintln!("warning: could not pin a thread to CPU {core}");
    }
}

/// Cycles objects on one core for `time`; returns how many.
fn per_core(pool: &Mempool, get: usize, put: usize, keep: usize, time: Duration) -> u64 {
    let mut table = ObjTable::new(pool, keep);
    let mut count = 0u64;
    let start = Instant::now();
    while start.elapsed() < time {
        for _ in 0..(N / keep).max(1) {
            let mut taken = 0;
            while taken < keep {
                if let Err(e) = table.get_bulk(get) {
                    eprintln!("mempool-perf: {e}");
                    std::process::exit(1);
                }
                taken += get;
            }
            let mut given = 0;
            while given < keep {
                table.put_bulk(put);
                given += put;
            }
        }
        count += ((N / keep).max(1) * keep) as u64;
    }
    count
}

fn run_one(
    cache: u32,
    cores: &[usize],
    lcores: usize,
    (get, put, keep): (usize, usize, usize),
    args: &Args,
    huge: HugePolicy,
) {
    // DPDK sizes the pool by the lcores the application has, not by the cores in the test.
    let n = (lcores * (keep.max(128) + 512) - 1) as u32;
    let cfg = MempoolConfig::new("perf", n, ELT_SIZE).cache_size(cache).huge(huge);
    let pool = match Mempool::create(&cfg) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("mempool-perf: {e}");
            std::process::exit(1);
        }
    };
    let time = Duration::from_secs_f64(args.time);
    let barrier = Barrier::new(cores.len());
    let total: f64 = std::thread::scope(|s| {
        let handles: Vec<_> = cores
            .iter()
            .enumerate()
            .map(|(i, &core)| {
                let (pool, barrier) = (&pool, &barrier);
                s.spawn(move || {
                    pin(core);
                    lcore::register(i as u32).expect("fresh thread");
                    barrier.wait();
                    let t0 = Instant::now();
                    let count = per_core(pool, get, put, keep, time);
                    pool.cache_flush();
                    count as f64 / t0.elapsed().as_secs_f64()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    let audit = pool.audit();
    assert!(audit.is_complete(), "objects lost: {audit}");
    println!(
        "mempool_autotest cache={cache} cores={} n_get_bulk={get} n_put_bulk={put} n_keep={keep} \
         constant_n=0 rate_persec={}",
        cores.len(),
        total as u64
    );
}

fn main() {
    let args = Args::parse();
    let huge = match args.huge.as_str() {
        "prefer" => HugePolicy::Prefer,
        "require" => HugePolicy::Require,
        "never" => HugePolicy::Never,
        other => {
            eprintln!("mempool-perf: --huge must be prefer, require or never (got '{other}')");
            std::process::exit(2);
        }
    };
    let all: Vec<usize> =
        core_affinity::get_core_ids().unwrap_or_default().iter().map(|c| c.id).collect();
    let pick = |given: &Vec<usize>, default: Vec<usize>| {
        if given.is_empty() { default } else { given.clone() }
    };
    let (caches, bulks, keeps): (Vec<u32>, Vec<usize>, Vec<usize>) = if args.full {
        (vec![0, 256, 512], vec![1, 4, 8, 32, 64, 128], vec![32, 128, 512, 2048])
    } else {
        (vec![0, 512], vec![1, 4, 32], vec![32, 128])
    };
    let caches = if args.cache.is_empty() { caches } else { args.cache.clone() };
    let core_counts = pick(&args.cores, if all.len() >= 2 { vec![1, 2] } else { vec![1] });
    let gets = pick(&args.get_bulk, bulks.clone());
    let puts = pick(&args.put_bulk, bulks);
    let keeps = pick(&args.keep, keeps);
    for &cache in &caches {
        for &ncores in &core_counts {
            if ncores > all.len() {
                eprintln!("mempool-perf: {ncores} cores asked, {} available", all.len());
                std::process::exit(2);
            }
            let cores = &all[..ncores];
            for &keep in &keeps {
                for &get in &gets {
                    for &put in &puts {
                        if keep % get != 0 || keep % put != 0 {
                            continue;
                        }
                        run_one(cache, cores, all.len(), (get, put, keep), &args, huge);
                    }
                }
            }
        }
    }
}
