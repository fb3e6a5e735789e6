//! The time-stamp counter: the cycle clock benchmarks and statistics use (DPDK `rte_rdtsc`).
#![allow(unsafe_code)]

use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Reads the time-stamp counter.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub fn rdtsc() -> u64 {
    // SAFETY: RDTSC has no preconditions on x86_64 (it reads a counter; user mode may execute it
    // unless the OS sets CR4.TSD, which Linux does not).
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Nanoseconds since the first call, standing in for a cycle counter where there is no TSC.
#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
pub fn rdtsc() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// Counter ticks per second, measured once against the monotonic clock (about 50 ms).
pub fn hz() -> u64 {
    static HZ: OnceLock<u64> = OnceLock::new();
    *HZ.get_or_init(|| {
        let (t0, c0) = (Instant::now(), rdtsc());
        std::thread::sleep(Duration::from_millis(50));
        let (dt, dc) = (t0.elapsed(), rdtsc() - c0);
        (dc as f64 / dt.as_secs_f64()) as u64
    })
}

#[cfg(test)]
mod tests {
    #[test]
    #[cfg_attr(miri, ignore = "rdtsc and sleep")]
    fn counter_advances_at_a_plausible_rate() {
        let a = super::rdtsc();
        let b = super::rdtsc();
        assert!(b >= a);
        let hz = super::hz();
        assert!((1_000_000..20_000_000_000).contains(&hz), "{hz}");
    }
}
