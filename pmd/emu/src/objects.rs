//! Everything a driver creates in the device: registration, doorbell pages, DMA regions, EQs,
//! CQs, SQs, RQs, WQ objects and vport configuration. Owned by the device thread; a reset
//! replaces it with a fresh one, so every id, handle and key from before becomes invalid.

use std::collections::HashMap;

use gdma_defs::{GdmaQueueType, MANA_DEFAULT_RSS_KEY, MANA_HASH_KEY_SIZE};

use crate::bar::DB_PAGES;
use crate::queues::{Cq, Eq, Wq};
use crate::rss::Toeplitz;

/// First id given to a queue of each kind (ids below it are never used, so a driver that takes
/// 0 for "invalid" is exercised, as OpenVMM's emulator does).
pub const FIRST_QUEUE_ID: u32 = 24;
/// Largest queue id (24 bits).
pub const MAX_QUEUE_ID: u32 = (1 << 24) - 1;

/// A queue id no queue has (below [`FIRST_QUEUE_ID`]): what steering holds for a destroyed RQ.
pub const NO_QUEUE: u32 = 0;

/// Objects addressed by queue ids from [`FIRST_QUEUE_ID`], reusing freed ids.
#[derive(Debug)]
pub struct IdTable<T> {
    slots: Vec<Option<T>>,
    free: Vec<u32>,
}

impl<T> Default for IdTable<T> {
    fn default() -> Self {
        IdTable { slots: Vec::new(), free: Vec::new() }
    }
}

impl<T> IdTable<T> {
    /// Inserts the object `make(id)` builds and returns its id, or `None` if ids ran out or
    /// `make` refused.
    pub fn insert_with<E>(
        &mut self,
        make: impl FnOnce(u32) -> Result<T, E>,
    ) -> Result<u32, Option<E>> {
        let slot = match self.free.last() {
            Some(&s) => s,
            None => u32::try_from(self.slots.len()).map_err(|_| None)?,
        };
        let id = slot + FIRST_QUEUE_ID;
        if id > MAX_QUEUE_ID {
            return Err(None);
        }
        let v = make(id).map_err(Some)?;
        if self.free.pop().is_none() {
            self.slots.push(None);
        }
        self.slots[slot as usize] = Some(v);
        Ok(id)
    }

    /// The object with `id`.
    #[inline]
    pub fn get(&self, id: u32) -> Option<&T> {
        self.slots.get(id.checked_sub(FIRST_QUEUE_ID)? as usize)?.as_ref()
    }

    /// The object with `id`, mutably.
    #[inline]
    pub fn get_mut(&mut self, id: u32) -> Option<&mut T> {
        self.slots.get_mut(id.checked_sub(FIRST_QUEUE_ID)? as usize)?.as_mut()
    }

    /// Removes and returns the object with `id`.
    pub fn remove(&mut self, id: u32) -> Option<T> {
        let slot = id.checked_sub(FIRST_QUEUE_ID)?;
        let v = self.slots.get_mut(slot as usize)?.take()?;
        self.free.push(slot);
        Some(v)
    }

    /// Live objects with their ids.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &T)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| Some((i as u32 + FIRST_QUEUE_ID, s.as_ref()?)))
    }

    /// Live objects with their ids, mutably.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (u32, &mut T)> {
        self.slots
            .iter_mut()
            .enumerate()
            .filter_map(|(i, s)| Some((i as u32 + FIRST_QUEUE_ID, s.as_mut()?)))
    }

    /// Number of live objects.
    pub fn len(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    /// Whether no object is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A DMA region: the page list of a queue ring, as CREATE_DMA_REGION (+ ADD_PAGES) gave it.
#[derive(Debug, Clone, Default)]
pub struct DmaRegion {
    /// Length in bytes.
    pub length: u64,
    /// Offset of the first byte in the first page.
    pub offset_in_page: u32,
    /// Pages announced by CREATE_DMA_REGION.
    pub page_count: u32,
    /// Page addresses received so far.
    pub pages: Vec<u64>,
    /// Taken by an object (a queue owns its region from then on).
    pub in_use: bool,
}

impl DmaRegion {
    /// Every announced page has arrived.
    pub fn complete(&self) -> bool {
        self.pages.len() as u32 == self.page_count
    }
}

/// A WQ object (CREATE_WQ_OBJ): an SQ or RQ with its CQ on a vport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WqObj {
    /// Vport index.
    pub vport: u16,
    /// SQ or RQ.
    pub kind: GdmaQueueType,
    /// The work queue's id.
    pub wq_id: u32,
    /// Its completion queue's id.
    pub cq_id: u32,
}

/// A send queue with what the data path needs about it.
#[derive(Debug)]
pub struct Sq {
    /// The ring.
    pub wq: Wq,
    /// Vport it transmits on.
    pub vport: u16,
    /// Set by `sq-error`: the next WQE completes with CQE_TX_GDMA_ERR and disables the queue.
    pub inject_error: bool,
}

/// A receive queue with its pending coalesced completion.
#[derive(Debug)]
pub struct Rq {
    /// The ring.
    pub wq: Wq,
    /// Vport it receives on.
    pub vport: u16,
    /// Packets waiting in a coalesced CQE: (length, hash) of each, up to 4.
    pub pending: arrayvec_lite::Pending,
    /// A FENCE_RQ is waiting to be completed once the pending CQE is out.
    pub fence: bool,
    /// On `Objects::rx_pending` already.
    pub listed: bool,
}

/// A tiny fixed-capacity list (the crate avoids a dependency for four entries).
pub mod arrayvec_lite {
    /// Up to four (packet length, hash) entries of one coalesced CQE, with their shared flags.
    #[derive(Debug, Clone, Copy, Default)]
    pub struct Pending {
        /// Entries used.
        pub len: usize,
        /// (packet length, hash).
        pub pkts: [(u16, u32); 4],
        /// RX flags dword shared by the packets.
        pub flags: u32,
        /// Byte offset of the first WQE.
        pub wqe_offset: u32,
    }
}

/// RX configuration and state of a vport.
pub struct Vport {
    /// Index.
    pub index: u16,
    /// MAC address.
    pub mac: [u8; 6],
    /// Handle QUERY_VPORT_CONFIG reports.
    pub handle: u64,
    /// CONFIG_VPORT_TX done (TX allowed).
    pub tx_configured: bool,
    /// TX vport offset the OOBs must carry.
    pub tx_offset: u16,
    /// RX enabled by CONFIG_VPORT_RX.
    pub rx_enabled: bool,
    /// RSS enabled by CONFIG_VPORT_RX.
    pub rss_enabled: bool,
    /// CQE coalescing enabled.
    pub coalescing: bool,
    /// RSS key.
    pub key: [u8; MANA_HASH_KEY_SIZE],
    /// The key, expanded for hashing.
    pub toeplitz: Toeplitz,
    /// Indirection table: RQ ids (resolved from the WQ-object handles).
    pub table: Vec<u32>,
    /// RQ for frames that cannot be hashed.
    pub default_rq: Option<u32>,
}

impl std::fmt::Debug for Vport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vport")
            .field("index", &self.index)
            .field("tx_configured", &self.tx_configured)
            .field("rx_enabled", &self.rx_enabled)
            .field("rss_enabled", &self.rss_enabled)
            .field("table_len", &self.table.len())
            .finish_non_exhaustive()
    }
}

impl Vport {
    /// A vport in its power-on state; its handle depends on `epoch`, so a handle kept from
    /// before a reset is refused after it.
    pub fn new(index: u16, mac: [u8; 6], epoch: u32) -> Self {
        Vport {
            index,
            mac,
            handle: 0x1000_0000 + ((epoch as u64) << 32) + index as u64,
            tx_configured: false,
            tx_offset: 0,
            rx_enabled: false,
            rss_enabled: false,
            coalescing: false,
            key: MANA_DEFAULT_RSS_KEY,
            toeplitz: Toeplitz::new(&MANA_DEFAULT_RSS_KEY),
            table: Vec::new(),
            default_rq: None,
        }
    }

    /// Steering stops naming RQ `id` (destroyed): table entries become [`NO_QUEUE`], which no
    /// queue ever has, so frames hashed there are dropped.
    pub fn forget_rq(&mut self, id: u32) {
        for e in self.table.iter_mut().filter(|e| **e == id) {
            *e = NO_QUEUE;
        }
        if self.default_rq == Some(id) {
            self.default_rq = None;
        }
    }

    /// Sets the RSS key.
    pub fn set_key(&mut self, key: [u8; MANA_HASH_KEY_SIZE]) {
        self.key = key;
        self.toeplitz = Toeplitz::new(&key);
    }
}

/// The device's object model.
#[derive(Debug)]
pub struct Objects {
    /// REGISTER_DEVICE done.
    pub registered: bool,
    /// Protection domain id handed out.
    pub pdid: u32,
    /// Memory key covering the whole DMA space.
    pub gpa_mkey: u32,
    /// Doorbell page REGISTER_DEVICE handed out.
    pub db_id: u32,
    /// Doorbell pages in use (page 0 is the HWC's).
    db_pages: [bool; DB_PAGES as usize],
    /// The same pages as a list, in allocation order: what the device polls.
    pub active_pages: Vec<u32>,
    /// DMA regions by handle.
    pub regions: HashMap<u64, DmaRegion>,
    /// Next region handle.
    pub next_region: u64,
    /// Event queues.
    pub eqs: IdTable<Eq>,
    /// Completion queues.
    pub cqs: IdTable<Cq>,
    /// Send queues.
    pub sqs: IdTable<Sq>,
    /// Receive queues.
    pub rqs: IdTable<Rq>,
    /// WQ objects by handle.
    pub wq_objs: HashMap<u64, WqObj>,
    /// Next WQ-object handle.
    pub next_wq_obj: u64,
    /// Vports.
    pub vports: Vec<Vport>,
    /// SQ ids with doorbelled work not yet processed.
    pub tx_ready: Vec<u32>,
    /// RQ ids with a coalesced completion or a fence waiting to be written.
    pub rx_pending: Vec<u32>,
}

impl Objects {
    /// Power-on state for vports with `macs`. `epoch` varies the keys and handles between
    /// resets, so anything kept from before a reset is recognisably stale.
    pub fn new(macs: &[[u8; 6]], epoch: u32) -> Self {
        let mut db_pages = [false; DB_PAGES as usize];
        db_pages[0] = true;
        Objects {
            registered: false,
            pdid: 0x10 + epoch,
            // 24 bits: the HWC gets it through an INIT_DATA value (bits 0..24).
            gpa_mkey: (0x5a_5a00 ^ epoch.wrapping_mul(0x9e37)) & 0xff_ffff | 1,
            db_id: 0,
            db_pages,
            active_pages: vec![0],
            regions: HashMap::new(),
            next_region: 1 + ((epoch as u64) << 32),
            eqs: IdTable::default(),
            cqs: IdTable::default(),
            sqs: IdTable::default(),
            rqs: IdTable::default(),
            wq_objs: HashMap::new(),
            next_wq_obj: 0x2000_0000 + ((epoch as u64) << 32),
            vports: macs.iter().enumerate().map(|(i, m)| Vport::new(i as u16, *m, epoch)).collect(),
            tx_ready: Vec::new(),
            rx_pending: Vec::new(),
        }
    }

    /// Allocates the lowest free doorbell page.
    pub fn alloc_db_page(&mut self) -> Option<u32> {
        let p = self.db_pages.iter().position(|used| !used)?;
        self.db_pages[p] = true;
        self.active_pages.push(p as u32);
        Some(p as u32)
    }

    /// Frees doorbell page `p`; false if it was not in use (page 0, the HWC's, is never freed).
    pub fn free_db_page(&mut self, p: u32) -> bool {
        match self.db_pages.get_mut(p as usize) {
            Some(used) if *used && p != 0 => {
                *used = false;
                self.active_pages.retain(|&q| q != p);
                true
            }
            _ => false,
        }
    }

    /// Whether doorbell page `p` is in use.
    pub fn page_in_use(&self, p: u32) -> bool {
        self.db_pages.get(p as usize).copied().unwrap_or(false)
    }

    /// The page list of a completed, unused region, and marks it used.
    pub fn take_region(&mut self, handle: u64) -> Option<DmaRegion> {
        let r = self.regions.get_mut(&handle)?;
        if r.in_use || !r.complete() {
            return None;
        }
        r.in_use = true;
        Some(r.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_start_at_24_and_are_reused() {
        let mut t = IdTable::<&str>::default();
        let a = t.insert_with(|_| Ok::<_, ()>("a")).unwrap();
        let b = t.insert_with(|_| Ok::<_, ()>("b")).unwrap();
        assert_eq!((a, b), (24, 25));
        assert_eq!(t.get(24), Some(&"a"));
        assert_eq!(t.get(0), None);
        assert_eq!(t.get(23), None);
        assert_eq!(t.remove(24), Some("a"));
        assert_eq!(t.remove(24), None);
        assert_eq!(t.insert_with(|id| Ok::<_, ()>(if id == 24 { "c" } else { "?" })).unwrap(), 24);
        assert_eq!(t.insert_with(|_| Err::<&str, _>("no")), Err(Some("no")));
        assert_eq!(t.len(), 2);
        assert_eq!(t.iter().map(|(i, _)| i).collect::<Vec<_>>(), [24, 25]);
    }
}
