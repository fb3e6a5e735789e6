//! MANA / GDMA wire formats: the contract between the mana-pmd driver and the mana-emu device.
//!
//! Every format the two sides exchange, as plain safe Rust, following
//! `shared/spec/gdma.md` bit for bit (section numbers below refer to it):
//!
//! | module | contents | spec |
//! |---|---|---|
//! | [`regs`] | BAR0 register map, PCI ids, SMC header and ESTABLISH/DESTROY_HWC | §2.1, §6.1 |
//! | [`doorbell`] | doorbell offsets, 64-bit SQ/RQ/CQ/EQ values, short doorbells | §2.2–2.4 |
//! | [`queue`] | queue kinds, size rules, WQ arithmetic, CQ/EQ owner bits | §1 |
//! | [`wqe`] | WQE header, SGE, TX short/long OOB, RX WQE, HWC TX OOB | §3 |
//! | [`cqe`] | CQE and info dword, Ethernet CQE header, RX/TX completion OOB, HWC RX OOB | §4 |
//! | [`eqe`] | EQE and info dword, event types and data, INIT_DATA types | §5 |
//! | [`hwc`] | HWC message headers, msg types, status codes, message encode/parse | §6.2 |
//! | [`msgs_gdma`] | generic GDMA request/response bodies | §6.3 |
//! | [`msgs_mana`] | MANA Ethernet request/response bodies | §6.4 |
//! | [`rss`] | NDIS hash types, default keys, Toeplitz hash | §8 |
//!
//! Hot-path formats (doorbells, WQE header, TX OOB, CQE/EQE info dwords, completion OOB
//! fields) are `#[repr(transparent)]` bitfield newtypes over `u32`/`u64` with `const fn`
//! getters and `with_*` setters, so a driver can build and decode them as plain integers
//! around its own volatile/atomic ring accesses. Larger structures are `#[repr(C)]` with
//! compile-time size and offset checks and `zerocopy` byte conversions. Decoders of untrusted
//! input return [`DecodeError`]; encoders that validate ranges return [`EncodeError`].
//! All multi-byte fields are little-endian; the crate only builds for little-endian targets.
#![forbid(unsafe_code)]

#[cfg(not(target_endian = "little"))]
compile_error!("gdma-defs assumes a little-endian target (MANA wire formats are little-endian)");

mod bits;

pub mod cqe;
pub mod doorbell;
pub mod eqe;
pub mod error;
pub mod hwc;
pub mod msgs_gdma;
pub mod msgs_mana;
pub mod queue;
pub mod regs;
pub mod rss;
pub mod wqe;

pub use cqe::*;
pub use doorbell::*;
pub use eqe::*;
pub use error::{DecodeError, EncodeError};
pub use hwc::*;
pub use msgs_gdma::*;
pub use msgs_mana::*;
pub use queue::*;
pub use regs::*;
pub use rss::*;
pub use wqe::*;

/// Re-export of the `zerocopy` traits the message types implement, so users need not depend
/// on `zerocopy` directly to call `as_bytes`, `read_from_bytes` and friends.
pub use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout};
