//! How the GDMA control plane reaches a device: BAR0 and DMA mappings.
//!
//! - [`EmuBus`]: the software device in this process (`mana:emu`): BAR0 is the device's segment,
//!   a mapping hands the device the segment itself (IOVA = VA).
//! - [`SockBus`]: the mana-emu daemon (`mana:sock=PATH`): BAR0 arrives as an fd, a mapping passes
//!   the segment's fd.
//!
//! Real hardware given to user space (vfio) would be a third one. A bus is used from the control
//! path only (the device's control worker); the data path never calls it.

use std::sync::Arc;

use pmd_mempool::{MemSegment, Mempool};

/// BAR0 and DMA mappings of one device.
pub trait Bus: Send {
    /// BAR0: register map, shared-memory channel, doorbell pages.
    fn bar0(&self) -> &Arc<MemSegment>;
    /// Maps a segment for DMA at its own IOVA (mapping one that is already mapped is fine).
    fn map_segment(&mut self, seg: &Arc<MemSegment>) -> Result<(), String>;
    /// Maps every segment of a pool for DMA (again: fine).
    fn map_pool(&mut self, pool: &Mempool) -> Result<(), String>;
    /// Removes the mapping that starts at `iova`.
    fn unmap(&mut self, iova: u64) -> Result<(), String>;
    /// Whether the device is there (not hot-removed, the daemon still connected).
    fn present(&self) -> bool;
    /// One line describing the device.
    fn describe(&self) -> String;
    /// Has `wake` called whenever the device raises MSI-X vector `vector` (an event on an armed
    /// EQ of that vector), or stops it (`None`). False when this bus delivers no interrupts:
    /// the driver then polls. `wake` runs on a thread of the device's and must return at once.
    fn set_interrupt(&mut self, vector: u32, wake: Option<Arc<dyn Fn() + Send + Sync>>) -> bool {
        let _ = (vector, wake);
        false
    }
}

#[cfg(feature = "emu")]
pub use emu::{EmuBus, SockBus};

#[cfg(feature = "emu")]
mod emu {
    use std::collections::BTreeSet;
    use std::path::PathBuf;
    use std::sync::Arc;

    use mana_emu::link::Client;
    use mana_emu::{Device, Mapping};
    use pmd_mempool::{MemSegment, Mempool};

    use super::Bus;

    /// The software device in this process.
    pub struct EmuBus {
        dev: Arc<Device>,
        mapped: BTreeSet<u64>,
    }

    impl EmuBus {
        /// A bus to `dev`.
        pub fn new(dev: Arc<Device>) -> Self {
            EmuBus { dev, mapped: BTreeSet::new() }
        }

        /// The device (tests inject faults through it).
        pub fn device(&self) -> &Arc<Device> {
            &self.dev
        }
    }

    impl Bus for EmuBus {
        fn bar0(&self) -> &Arc<MemSegment> {
            self.dev.bar0()
        }

        fn map_segment(&mut self, seg: &Arc<MemSegment>) -> Result<(), String> {
            if self.mapped.contains(&seg.iova_base()) {
                return Ok(());
            }
            self.dev.map(vec![Mapping::segment(seg.clone())]).map_err(|e| e.to_string())?;
            self.mapped.insert(seg.iova_base());
            Ok(())
        }

        fn map_pool(&mut self, pool: &Mempool) -> Result<(), String> {
            let maps: Vec<Mapping> = Mapping::pool(pool)
                .into_iter()
                .filter(|m| !self.mapped.contains(&m.iova()))
                .collect();
            let iovas: Vec<u64> = maps.iter().map(|m| m.iova()).collect();
            if !maps.is_empty() {
                self.dev.map(maps).map_err(|e| e.to_string())?;
            }
            self.mapped.extend(iovas);
            Ok(())
        }

        fn unmap(&mut self, iova: u64) -> Result<(), String> {
            self.mapped.remove(&iova);
            self.dev.unmap(iova).map_err(|e| e.to_string())
        }

        fn present(&self) -> bool {
            self.dev.present()
        }

        fn describe(&self) -> String {
            format!("mana-emu in-process, {} vports", self.dev.config().vports)
        }

        fn set_interrupt(
            &mut self,
            vector: u32,
            wake: Option<Arc<dyn Fn() + Send + Sync>>,
        ) -> bool {
            self.dev.set_interrupt_handler(vector, wake);
            true
        }
    }

    /// The mana-emu daemon.
    pub struct SockBus {
        client: Client,
        path: PathBuf,
        mapped: BTreeSet<u64>,
    }

    impl SockBus {
        /// Connects to the daemon at `path`.
        pub fn connect(path: &std::path::Path) -> Result<Self, String> {
            let client = Client::connect(path)
                .map_err(|e| format!("cannot reach mana-emu at {}: {e}", path.display()))?;
            Ok(SockBus { client, path: path.to_owned(), mapped: BTreeSet::new() })
        }

        /// Vports the daemon's device has.
        pub fn vports(&self) -> u16 {
            self.client.vports()
        }
    }

    impl Bus for SockBus {
        fn bar0(&self) -> &Arc<MemSegment> {
            self.client.bar0()
        }

        fn map_segment(&mut self, seg: &Arc<MemSegment>) -> Result<(), String> {
            self.client.map(seg).map_err(|e| e.to_string())?;
            self.mapped.insert(seg.iova_base());
            Ok(())
        }

        fn map_pool(&mut self, pool: &Mempool) -> Result<(), String> {
            for seg in pool.segments() {
                if !self.mapped.contains(&seg.iova_base()) {
                    self.client.map(seg).map_err(|e| e.to_string())?;
                    self.mapped.insert(seg.iova_base());
                }
            }
            Ok(())
        }

        fn unmap(&mut self, iova: u64) -> Result<(), String> {
            self.mapped.remove(&iova);
            self.client.unmap(iova).map_err(|e| e.to_string())
        }

        fn present(&self) -> bool {
            self.client.present().unwrap_or(false)
        }

        fn describe(&self) -> String {
            format!("mana-emu daemon at {}, {} vports", self.path.display(), self.client.vports())
        }
    }
}
