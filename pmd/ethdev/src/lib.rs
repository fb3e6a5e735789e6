//! pmd-ethdev: the port API applications use, whatever the driver.
//!
//! - [`Registry::probe`] turns a probe string (`mana:emu`, `mana:sock=PATH`, `null`, `ring:NAME`)
//!   into [`Port`]s.
//! - A [`Port`] is configured ([`PortConf`]: RSS, offloads, MTU), gets RX and TX queues, starts
//!   and stops, reports [`DevInfo`], link, MAC, stats and named xstats, and raises [`Event`]s to
//!   registered callbacks (the recovery events among them).
//! - Each queue is polled by one thread through its handle ([`RxQueue`], [`TxQueue`]: `Send`, not
//!   `Sync`, taken once). A burst goes through the port's [`Dispatch`] (live or "removed"
//!   functions, swapped atomically) and the queue's gate ([`gate`]: one locked instruction to
//!   enter, a plain store to leave), then into the driver. No lock and no RCU on the fast path.
//! - Drivers implement [`PortDriver`] for the control side and [`RxBurst`]/[`TxBurst`] for the
//!   queues, whose state they keep in [`QueueSlot`]s. The `null` and `ring` ports live here.
//!
//! Unsafe code is confined to [`gate`] (the slot's state cell), [`queue`] (the poller contract),
//! [`pkts`] (the burst buffer as an mbuf allocation target) and [`ring`] (mbufs taken back from
//! the addresses its rings carry).
#![deny(unsafe_code)]

pub mod conf;
pub mod error;
pub mod event;
pub mod gate;
pub mod null;
pub mod pkts;
pub mod port;
pub mod probe;
pub mod queue;
pub mod ring;
pub mod stats;

pub use conf::{DescLim, DevInfo, ErrHandleMode, Link, PortConf, RssConf};
pub use error::{EthError, EthResult};
pub use event::{Callback, CallbackId, Event, EventType, Events};
pub use gate::{Exclusive, QueueSlot};
pub use pkts::{MAX_PKT_BURST, Pkts};
pub use port::{Port, PortContext, PortDriver, PortPhase};
pub use probe::{DriverFactory, ProbeArgs, Registry};
pub use queue::{Dispatch, RxBurst, RxQueue, RxSlot, TxBurst, TxQueue, TxSlot};
pub use stats::{Counter, PortStats, RxQueueStats, TxQueueStats, XStat};
