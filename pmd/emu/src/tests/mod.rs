//! Device tests through the test-only driver.

mod arming;
mod bringup;
mod coalescing;
mod doorbells;
mod faults;
mod hwc;
mod hwc_errors;
mod offload;
mod rss;
mod rx;
mod tx;
mod util;
