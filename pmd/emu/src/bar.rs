//! BAR0: register map, shared-memory channel (SMC) and doorbell pages, in one shared segment.
//!
//! Layout (see DESIGN.md): register map at 0, SMC at 0x28, doorbell page k at
//! `0x1000 + k * 0x1000`. The device writes the register map once, answers SMC requests, and
//! takes doorbell values with `swap(0)`; the driver writes SMC requests and doorbells.

use core::sync::atomic::Ordering;
use std::sync::Arc;

use gdma_defs::{
    DB_CQ, DB_EQ, DB_RQ, DB_SQ, RegMap, SMC_APERTURE_DWORDS, SMC_LAST_DWORD, SMC_SIZE, SmcProtoHdr,
};
use pmd_mempool::{HugePolicy, MemSegment, SegmentError};

use crate::shm::{SegmentWindow, Window};

/// Offset of the SMC window in BAR0.
pub const SMC_OFFSET: usize = 0x28;
/// Offset of doorbell page 0.
pub const DB_PAGES_OFFSET: usize = 0x1000;
/// Size of a doorbell page.
pub const DB_PAGE_SIZE: usize = 0x1000;
/// Doorbell pages in BAR0 (page 0 belongs to the hardware channel).
pub const DB_PAGES: u32 = 256;
/// The four doorbell registers of a page, in the order the device polls them.
pub const DB_SLOTS: [u32; 4] = [DB_SQ, DB_RQ, DB_CQ, DB_EQ];

/// BAR0 of one device.
pub struct Bar0 {
    mem: SegmentWindow,
}

impl Bar0 {
    /// A fresh BAR0 in a new memfd segment, register map written.
    pub fn new(name: &str) -> Result<Self, SegmentError> {
        let len = DB_PAGES_OFFSET + DB_PAGES as usize * DB_PAGE_SIZE;
        let seg = Arc::new(MemSegment::anonymous(name, len, HugePolicy::Never)?);
        let bar = Bar0 { mem: SegmentWindow::new(seg) };
        let _ = bar.restore();
        Ok(bar)
    }

    /// The segment (its fd is what the daemon passes to a driver; in-process drivers map it as
    /// is).
    pub fn segment(&self) -> &Arc<MemSegment> {
        self.mem.segment()
    }

    #[inline(always)]
    fn win(&self) -> &Window {
        self.mem.win()
    }

    /// The register map the device publishes.
    pub fn reg_map() -> RegMap {
        RegMap {
            micro_version: 0,
            minor_version: 0,
            major_version: 1,
            db_pages_offset: DB_PAGES_OFFSET as u64,
            db_page_size: DB_PAGE_SIZE as u16,
            shm_offset: SMC_OFFSET as u64,
            shm_size: SMC_SIZE as u16,
            ..Default::default()
        }
    }

    /// Writes the register map and clears the SMC and every doorbell (power-on state).
    ///
    /// The first dword of the register map is written last, with Release: a driver that sees it
    /// no longer all ones (the reset check) and then reads the rest of the page (after an
    /// Acquire load of that dword) sees the whole register map and a cleared SMC, never the
    /// zeroes or the all-ones of the reset in between.
    ///
    /// Returns when the register map became readable.
    pub fn restore(&self) -> std::time::Instant {
        let win = self.win();
        win.fill(DB_PAGES_OFFSET, win.len() - DB_PAGES_OFFSET, 0);
        let map = Self::reg_map().to_bytes();
        win.fill(map.len(), DB_PAGES_OFFSET - map.len(), 0);
        win.write(4, &map[4..]);
        let at = std::time::Instant::now();
        win.store_u32(0, u32::from_le_bytes([map[0], map[1], map[2], map[3]]), Ordering::Release);
        at
    }

    /// Makes the first page (register map and SMC) read all ones: a dead or removed device.
    pub fn poison(&self) {
        self.win().fill(0, DB_PAGES_OFFSET, 0xff);
    }

    /// The SMC header dword (Acquire: pairs with the driver's ordered writes of dwords 0..7,
    /// the header last).
    pub fn smc_header(&self) -> SmcProtoHdr {
        SmcProtoHdr(
            self.win()
                .load_u32(SMC_OFFSET + SMC_LAST_DWORD * 4, Ordering::Acquire)
                .unwrap_or(u32::MAX),
        )
    }

    /// Takes possession of the SMC window while a request is served (the hardware sets the
    /// owner bit on the driver's write; a polling device sets it when it sees the request).
    pub fn smc_take(&self, hdr: SmcProtoHdr) {
        self.win().store_u32(
            SMC_OFFSET + SMC_LAST_DWORD * 4,
            hdr.with_owner_is_pf(true).0,
            Ordering::Release,
        );
    }

    /// The eight SMC dwords.
    pub fn smc_read(&self) -> [u32; SMC_APERTURE_DWORDS] {
        let mut out = [0u32; SMC_APERTURE_DWORDS];
        for (i, d) in out.iter_mut().enumerate() {
            *d = self.win().load_u32(SMC_OFFSET + i * 4, Ordering::Acquire).unwrap_or(u32::MAX);
        }
        out
    }

    /// Writes the response header (owner bit clear): the window goes back to the driver.
    pub fn smc_respond(&self, hdr: SmcProtoHdr) {
        // Release: pairs with the driver's Acquire poll of the owner bit.
        self.win().store_u32(
            SMC_OFFSET + SMC_LAST_DWORD * 4,
            hdr.with_owner_is_pf(false).0,
            Ordering::Release,
        );
    }

    /// Takes the value of doorbell register `slot` of page `page`, if the driver wrote one since
    /// the last take (a written value is never 0: queue ids start above 0).
    #[inline]
    pub fn take_doorbell(&self, page: u32, slot: u32) -> Option<u64> {
        let off = DB_PAGES_OFFSET + page as usize * DB_PAGE_SIZE + slot as usize;
        // Acquire: pairs with the driver's Release before its doorbell store, so the WQEs and
        // consumed entries the doorbell announces are visible.
        match self.win().load_u64(off, Ordering::Acquire)? {
            0 => None,
            _ => self.win().swap_u64(off, 0, Ordering::Acquire).filter(|&v| v != 0),
        }
    }

    /// Clears every doorbell page (a reset forgets pending doorbells).
    pub fn clear_doorbells(&self) {
        self.win().fill(DB_PAGES_OFFSET, DB_PAGES as usize * DB_PAGE_SIZE, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_map_smc_and_doorbells() {
        let bar = Bar0::new("bar-test").unwrap();
        let mut head = [0u8; 40];
        assert!(bar.win().read(0, &mut head));
        let map = RegMap::from_bytes(&head).unwrap();
        map.validate().unwrap();
        assert_eq!(map.db_page_bar_offset(3), Some(0x4000));
        assert_eq!(bar.take_doorbell(1, DB_SQ), None);
        bar.win().store_u64(
            DB_PAGES_OFFSET + DB_PAGE_SIZE + DB_SQ as usize,
            0x140_0000_0012,
            Ordering::Release,
        );
        assert_eq!(bar.take_doorbell(1, DB_SQ), Some(0x140_0000_0012));
        assert_eq!(bar.take_doorbell(1, DB_SQ), None, "taken once");
        assert_eq!(bar.take_doorbell(DB_PAGES, DB_SQ), None, "page out of range");
        bar.poison();
        assert_eq!(bar.smc_header().0, u32::MAX);
        bar.restore();
        assert_eq!(bar.smc_header().0, 0);
    }
}
