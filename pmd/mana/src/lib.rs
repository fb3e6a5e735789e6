//! mana-pmd: the MANA poll-mode driver.
#![deny(unsafe_code)]

pub mod bus;
pub mod cp;
pub mod gdma;
