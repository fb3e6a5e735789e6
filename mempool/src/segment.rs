//! Memory segments: the memory the device may touch.
//!
//! A segment is one shared mapping of a file descriptor:
//! - anonymous: `memfd_create(MFD_HUGETLB | MFD_HUGE_2MB)`, 2 MiB pages;
//! - named: a file on a mounted hugetlbfs (`/dev/hugepages/NAME`), which a restarted process can
//!   open again ([`MemSegment::open_named`]), the base of keepalive;
//! - from a received file descriptor ([`MemSegment::from_file`]), how the device daemon maps the
//!   driver's memory.
//!
//! When no 2 MiB page is free, [`HugePolicy::Prefer`] (the default) falls back to 4 KiB pages (a
//! plain memfd, or a file in `/dev/shm` for named segments) and prints one warning line per
//! process; [`HugePolicy::Require`] fails instead. Either way [`MemSegment::page_size`] tells
//! which it got. The fd and the name are kept so the segment can be shared later.
//!
//! The segment never hands out references into its memory, only raw addresses: the device writes
//! this memory behind the compiler's back, so every access is the caller's volatile/atomic
//! business. Each segment knows its IOVA base, the address the device uses for its first byte; in
//! our IOVA-as-VA mode that is the address of the mapping in the driver process.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use memmap2::{MmapOptions, MmapRaw};

/// 2 MiB: the hugepage size segments use.
pub const HUGEPAGE_SIZE: usize = 2 << 20;
/// The small page size of the fallback.
pub const SMALL_PAGE_SIZE: usize = 4096;

/// `MFD_HUGE_2MB`: log2(2 MiB) in the `MFD_HUGE_SHIFT` (26) bits of the flags.
const MFD_HUGE_2MB: libc::c_uint = 21 << 26;

/// Whether a segment must, may or must not use hugepages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HugePolicy {
    /// 2 MiB pages when free ones exist, else 4 KiB pages with one warning line per process.
    #[default]
    Prefer,
    /// 2 MiB pages or an error.
    Require,
    /// 4 KiB pages.
    Never,
}

/// Why a segment could not be created or attached.
#[derive(Debug, thiserror::Error)]
pub enum SegmentError {
    /// A segment needs at least one byte.
    #[error("segment '{name}': length 0")]
    ZeroLength {
        /// Segment name.
        name: String,
    },
    /// The name cannot be used as a file name.
    #[error(
        "segment name '{name}' is invalid (empty, contains '/' or NUL, or longer than 200 bytes)"
    )]
    BadName {
        /// Segment name.
        name: String,
    },
    /// Hugepages were required and none (or not enough) are free.
    #[error(
        "segment '{name}': {len} bytes need {pages} free 2 MiB hugepages, the system has {free} \
         free (reserve more: echo N > /proc/sys/vm/nr_hugepages)"
    )]
    NoHugepages {
        /// Segment name.
        name: String,
        /// Bytes asked for.
        len: usize,
        /// 2 MiB pages that needs.
        pages: usize,
        /// Free 2 MiB pages the kernel reports (0 if unknown).
        free: usize,
    },
    /// More memory than the system has available.
    #[error("segment '{name}': {len} bytes requested, the system has {available} bytes available")]
    OutOfMemory {
        /// Segment name.
        name: String,
        /// Bytes asked for.
        len: usize,
        /// `MemAvailable` plus free hugepages.
        available: usize,
    },
    /// Named hugepage segments need a mounted hugetlbfs.
    #[error("segment '{name}': no hugetlbfs is mounted (mount -t hugetlbfs nodev /dev/hugepages)")]
    NoHugetlbfs {
        /// Segment name.
        name: String,
    },
    /// A system call failed.
    #[error("segment '{name}': {op} failed: {source}")]
    Io {
        /// Segment name.
        name: String,
        /// What was being done.
        op: &'static str,
        /// The error from the system.
        #[source]
        source: io::Error,
    },
}

/// The memory behind a segment.
#[derive(Debug)]
enum Backing {
    /// A shared mapping of `file`.
    Mapped { map: MmapRaw, file: File },
    /// Zeroed heap memory: only under Miri, which cannot map files, so that the pool and mbuf
    /// code above segments can still be checked by it.
    #[cfg(miri)]
    Heap { ptr: core::ptr::NonNull<u8>, layout: std::alloc::Layout },
}

// SAFETY: the heap variant is plain owned memory, like the mapping.
#[cfg(miri)]
unsafe impl Send for Backing {}
// SAFETY: as above; the segment hands out raw addresses only.
#[cfg(miri)]
unsafe impl Sync for Backing {}

impl Backing {
    fn ptr(&self) -> *mut u8 {
        match self {
            Backing::Mapped { map, .. } => map.as_mut_ptr(),
            #[cfg(miri)]
            Backing::Heap { ptr, .. } => ptr.as_ptr(),
        }
    }

    fn len(&self) -> usize {
        match self {
            Backing::Mapped { map, .. } => map.len(),
            #[cfg(miri)]
            Backing::Heap { layout, .. } => layout.size(),
        }
    }
}

#[cfg(miri)]
impl Drop for Backing {
    fn drop(&mut self) {
        if let Backing::Heap { ptr, layout } = self {
            // SAFETY: allocated in `heap_for_miri` with this layout.
            unsafe { std::alloc::dealloc(ptr.as_ptr(), *layout) };
        }
    }
}

/// One mapped segment. Unmapped (and, when it created a named file, unlinked) on drop.
#[derive(Debug)]
pub struct MemSegment {
    backing: Backing,
    name: String,
    /// The file of a named segment; removed on drop when `owner` (unless kept).
    path: Option<PathBuf>,
    owner: bool,
    keep: bool,
    page_size: usize,
    iova_base: u64,
}

/// Prints the fallback warning once per process.
static WARNED_FALLBACK: AtomicBool = AtomicBool::new(false);

fn warn_fallback(name: &str, len: usize) {
    if !WARNED_FALLBACK.swap(true, Ordering::Relaxed) {
        eprintln!(
            "pmd-mempool: warning: no free 2 MiB hugepages for segment '{name}' ({len} bytes, {} \
             free); using 4 KiB pages, which costs TLB misses (reserve hugepages with \
             scripts/hugepages.sh)",
            free_hugepages()
        );
    }
}

/// Free 2 MiB hugepages the kernel reports, 0 if it cannot be read.
pub fn free_hugepages() -> usize {
    if cfg!(miri) {
        return 0;
    }
    std::fs::read_to_string("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// Bytes the kernel reports available for new allocations (`MemAvailable`), `usize::MAX` if it
/// cannot be read.
pub fn available_memory() -> usize {
    if cfg!(miri) {
        return usize::MAX;
    }
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
        .map_or(usize::MAX, |kb| kb.saturating_mul(1024))
}

/// Fails early, before any page is touched, when `len` bytes cannot possibly be had: populating a
/// mapping larger than memory would summon the OOM killer instead of returning an error.
pub fn check_available(name: &str, len: usize) -> Result<(), SegmentError> {
    let available = available_memory().saturating_add(free_hugepages() * HUGEPAGE_SIZE);
    if len > available {
        return Err(SegmentError::OutOfMemory { name: name.to_owned(), len, available });
    }
    Ok(())
}

/// The mount point of a hugetlbfs with 2 MiB pages, if one is mounted.
pub fn hugetlbfs_mount() -> Option<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/mounts").ok()?;
    mounts.lines().find_map(|line| {
        let mut f = line.split_whitespace();
        let (_, dir, fstype, opts) = (f.next()?, f.next()?, f.next()?, f.next()?);
        let two_mb = !opts.contains("pagesize=") || opts.contains("pagesize=2M");
        (fstype == "hugetlbfs" && two_mb).then(|| PathBuf::from(dir))
    })
}

fn check_name(name: &str) -> Result<(), SegmentError> {
    if name.is_empty() || name.len() > 200 || name.contains(['/', '\0']) {
        return Err(SegmentError::BadName { name: name.to_owned() });
    }
    Ok(())
}

fn io_err<'a>(name: &'a str, op: &'static str) -> impl FnOnce(io::Error) -> SegmentError + 'a {
    move |source| SegmentError::Io { name: name.to_owned(), op, source }
}

/// Creates a memfd; `huge` asks for 2 MiB hugetlb pages.
fn memfd(name: &str, huge: bool) -> io::Result<File> {
    let cname = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mut flags = libc::MFD_CLOEXEC;
    if huge {
        flags |= libc::MFD_HUGETLB | MFD_HUGE_2MB;
    }
    // SAFETY: `cname` is a valid NUL-terminated string that outlives the call.
    let fd = unsafe { libc::memfd_create(cname.as_ptr(), flags) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by memfd_create, is open, and nothing else owns it.
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// Maps `len` bytes of `file` shared, optionally pre-faulting every page.
fn map(file: &File, len: usize, populate: bool) -> io::Result<MmapRaw> {
    let mut opts = MmapOptions::new();
    opts.len(len);
    if populate {
        opts.populate();
    }
    opts.map_raw(file)
}

fn round_up(len: usize, page: usize) -> usize {
    len.div_ceil(page) * page
}

impl MemSegment {
    /// An anonymous segment of at least `len` bytes (rounded up to the page size).
    pub fn anonymous(name: &str, len: usize, policy: HugePolicy) -> Result<Self, SegmentError> {
        check_name(name)?;
        if len == 0 {
            return Err(SegmentError::ZeroLength { name: name.to_owned() });
        }
        if cfg!(miri) {
            return Ok(Self::heap_for_miri(name, round_up(len, SMALL_PAGE_SIZE), policy));
        }
        if policy != HugePolicy::Never {
            let huge_len = round_up(len, HUGEPAGE_SIZE);
            let attempt =
                Self::enough_hugepages(huge_len).and_then(|()| memfd(name, true)).and_then(|f| {
                    f.set_len(huge_len as u64)?;
                    let m = map(&f, huge_len, true)?;
                    Ok((f, m))
                });
            match attempt {
                Ok((file, map)) => return Ok(Self::assemble(map, file, name, None, HUGEPAGE_SIZE)),
                Err(e) if policy == HugePolicy::Require => {
                    return Err(no_hugepages_or(name, huge_len, e, "hugetlb memfd"));
                }
                Err(_) => warn_fallback(name, len),
            }
        }
        let small_len = round_up(len, SMALL_PAGE_SIZE);
        Self::enough_small_pages(name, small_len)?;
        let file = memfd(name, false).map_err(io_err(name, "memfd_create"))?;
        file.set_len(small_len as u64).map_err(io_err(name, "ftruncate"))?;
        let map = map(&file, small_len, true).map_err(io_err(name, "mmap"))?;
        Ok(Self::assemble(map, file, name, None, SMALL_PAGE_SIZE))
    }

    /// A named segment: a new file `NAME` on hugetlbfs (or, on fallback, in `/dev/shm`) that
    /// another or a restarted process can attach with [`open_named`](Self::open_named). The file
    /// is removed when this segment is dropped, unless [`keep`](Self::keep) was called.
    pub fn named(name: &str, len: usize, policy: HugePolicy) -> Result<Self, SegmentError> {
        check_name(name)?;
        if len == 0 {
            return Err(SegmentError::ZeroLength { name: name.to_owned() });
        }
        if policy != HugePolicy::Never {
            match hugetlbfs_mount() {
                Some(dir) => {
                    let huge_len = round_up(len, HUGEPAGE_SIZE);
                    match Self::create_file(&dir.join(name), name, huge_len, HUGEPAGE_SIZE) {
                        Ok(seg) => return Ok(seg),
                        Err(e) if policy == HugePolicy::Require => return Err(e),
                        Err(_) => warn_fallback(name, len),
                    }
                }
                None if policy == HugePolicy::Require => {
                    return Err(SegmentError::NoHugetlbfs { name: name.to_owned() });
                }
                None => warn_fallback(name, len),
            }
        }
        let path = Path::new("/dev/shm").join(name);
        let small_len = round_up(len, SMALL_PAGE_SIZE);
        Self::enough_small_pages(name, small_len)?;
        Self::create_file(&path, name, small_len, SMALL_PAGE_SIZE)
    }

    /// Whether the kernel reports enough free 2 MiB pages (the mapping is tried only then).
    fn enough_hugepages(len: usize) -> io::Result<()> {
        if len > free_hugepages() * HUGEPAGE_SIZE {
            return Err(io::Error::from_raw_os_error(libc::ENOMEM));
        }
        Ok(())
    }

    fn enough_small_pages(name: &str, len: usize) -> Result<(), SegmentError> {
        let available = available_memory();
        if len > available {
            return Err(SegmentError::OutOfMemory { name: name.to_owned(), len, available });
        }
        Ok(())
    }

    fn create_file(path: &Path, name: &str, len: usize, page: usize) -> Result<Self, SegmentError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(path)
            .map_err(io_err(name, "create segment file"))?;
        let mapped =
            file.set_len(len as u64).and_then(|()| map(&file, len, true)).map_err(|e| {
                let _ = std::fs::remove_file(path);
                if page == HUGEPAGE_SIZE {
                    no_hugepages_or(name, len, e, "mmap")
                } else {
                    SegmentError::Io { name: name.to_owned(), op: "mmap", source: e }
                }
            })?;
        let mut seg = Self::assemble(mapped, file, name, Some(path.to_owned()), page);
        seg.owner = true;
        Ok(seg)
    }

    /// Attaches an existing named segment (created by [`named`](Self::named), possibly by a
    /// process that has since exited). The file stays when this segment is dropped.
    pub fn open_named(name: &str) -> Result<Self, SegmentError> {
        check_name(name)?;
        let candidates = hugetlbfs_mount()
            .map(|d| (d.join(name), HUGEPAGE_SIZE))
            .into_iter()
            .chain([(Path::new("/dev/shm").join(name), SMALL_PAGE_SIZE)]);
        let mut last = None;
        for (path, page) in candidates {
            match OpenOptions::new()
                .read(true)
                .write(true)
                .custom_flags(libc::O_CLOEXEC)
                .open(&path)
            {
                Ok(file) => {
                    let len = file.metadata().map_err(io_err(name, "stat"))?.len() as usize;
                    let map = map(&file, len, true).map_err(io_err(name, "mmap"))?;
                    return Ok(Self::assemble(map, file, name, Some(path), page));
                }
                Err(e) => last = Some(e),
            }
        }
        Err(SegmentError::Io {
            name: name.to_owned(),
            op: "open segment file",
            source: last.unwrap_or_else(|| io::Error::from(io::ErrorKind::NotFound)),
        })
    }

    /// Maps a whole file received from elsewhere (for example an fd passed over a unix socket).
    /// `page_size` is what the sender reports; it is not checked.
    pub fn from_file(name: &str, file: File, page_size: usize) -> Result<Self, SegmentError> {
        let len = file.metadata().map_err(io_err(name, "stat"))?.len() as usize;
        if len == 0 {
            return Err(SegmentError::ZeroLength { name: name.to_owned() });
        }
        let map = map(&file, len, false).map_err(io_err(name, "mmap"))?;
        Ok(Self::assemble(map, file, name, None, page_size))
    }

    /// Heap memory standing in for a mapping under Miri (never called otherwise).
    #[cfg(not(miri))]
    fn heap_for_miri(_: &str, _: usize, _: HugePolicy) -> Self {
        unreachable!("heap segments exist only under Miri")
    }

    /// Heap memory standing in for a mapping under Miri.
    #[cfg(miri)]
    fn heap_for_miri(name: &str, len: usize, _: HugePolicy) -> Self {
        let layout =
            std::alloc::Layout::from_size_align(len, SMALL_PAGE_SIZE).expect("page layout");
        // SAFETY: non-zero size.
        let raw = unsafe { std::alloc::alloc_zeroed(layout) };
        let ptr = core::ptr::NonNull::new(raw).expect("allocation");
        MemSegment {
            backing: Backing::Heap { ptr, layout },
            name: name.to_owned(),
            path: None,
            owner: false,
            keep: false,
            page_size: SMALL_PAGE_SIZE,
            iova_base: raw as u64,
        }
    }

    fn assemble(
        map: MmapRaw,
        file: File,
        name: &str,
        path: Option<PathBuf>,
        page_size: usize,
    ) -> Self {
        let iova_base = map.as_ptr() as u64;
        MemSegment {
            backing: Backing::Mapped { map, file },
            name: name.to_owned(),
            path,
            owner: false,
            keep: false,
            page_size,
            iova_base,
        }
    }

    /// Leaves the named file in place when this segment is dropped (for keepalive).
    pub fn keep(&mut self) {
        self.keep = true;
    }

    /// First byte of the mapping in this process.
    #[inline]
    pub fn base(&self) -> *mut u8 {
        self.backing.ptr()
    }

    /// First byte's address as an integer.
    #[inline]
    pub fn base_addr(&self) -> usize {
        self.backing.ptr() as usize
    }

    /// Length in bytes (a multiple of the page size).
    #[inline]
    pub fn len(&self) -> usize {
        self.backing.len()
    }

    /// Always false: segments have at least one page.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.backing.len() == 0
    }

    /// Page size backing the segment: [`HUGEPAGE_SIZE`] or [`SMALL_PAGE_SIZE`].
    #[inline]
    pub fn page_size(&self) -> usize {
        self.page_size
    }

    /// Whether the segment is on 2 MiB hugepages.
    #[inline]
    pub fn is_hugepage(&self) -> bool {
        self.page_size == HUGEPAGE_SIZE
    }

    /// The segment's name (memfd name or file name).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The file of a named segment.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The file descriptor, to pass to the device process (`None` only for the heap memory that
    /// stands in for mappings under Miri).
    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        match &self.backing {
            Backing::Mapped { file, .. } => Some(file.as_fd()),
            #[cfg(miri)]
            Backing::Heap { .. } => None,
        }
    }

    /// The address the device uses for the first byte.
    #[inline]
    pub fn iova_base(&self) -> u64 {
        self.iova_base
    }

    /// Whether `[addr, addr + len)` lies inside the segment.
    #[inline]
    pub fn contains(&self, addr: usize, len: usize) -> bool {
        let off = addr.wrapping_sub(self.base_addr());
        off < self.len() && len <= self.len() - off
    }

    /// The IOVA of a process address inside the segment.
    #[inline]
    pub fn va_to_iova(&self, addr: usize) -> Option<u64> {
        self.contains(addr, 1).then(|| self.iova_base + (addr - self.base_addr()) as u64)
    }

    /// The process address of `[iova, iova + len)`, if the whole range is inside the segment.
    #[inline]
    pub fn iova_to_va(&self, iova: u64, len: usize) -> Option<usize> {
        let off = usize::try_from(iova.wrapping_sub(self.iova_base)).ok()?;
        (off < self.len() && len <= self.len() - off).then(|| self.base_addr() + off)
    }
}

impl Drop for MemSegment {
    fn drop(&mut self) {
        if let (true, false, Some(path)) = (self.owner, self.keep, &self.path) {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Turns a hugepage mapping failure into `NoHugepages` when the cause is a shortage of pages.
fn no_hugepages_or(name: &str, len: usize, e: io::Error, op: &'static str) -> SegmentError {
    match e.raw_os_error() {
        Some(libc::ENOMEM) | Some(libc::EINVAL) | Some(libc::ENOSPC) => SegmentError::NoHugepages {
            name: name.to_owned(),
            len,
            pages: len / HUGEPAGE_SIZE,
            free: free_hugepages(),
        },
        _ => SegmentError::Io { name: name.to_owned(), op, source: e },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unique(tag: &str) -> String {
        format!("pmdtest-{tag}-{}-{:?}", std::process::id(), std::thread::current().id())
            .replace(['(', ')'], "")
    }

    #[test]
    #[cfg_attr(miri, ignore = "maps files")]
    fn small_pages_translate_both_ways() {
        let seg = MemSegment::anonymous("t-small", 10_000, HugePolicy::Never).unwrap();
        assert_eq!(seg.page_size(), SMALL_PAGE_SIZE);
        assert_eq!(seg.len(), 12_288, "rounded up to whole pages");
        let base = seg.base_addr();
        assert_eq!(seg.va_to_iova(base), Some(seg.iova_base()));
        assert_eq!(seg.va_to_iova(base + 100), Some(seg.iova_base() + 100));
        assert_eq!(seg.va_to_iova(base + seg.len()), None);
        assert_eq!(seg.va_to_iova(base - 1), None);
        assert_eq!(seg.iova_to_va(seg.iova_base() + 64, 64), Some(base + 64));
        assert_eq!(
            seg.iova_to_va(seg.iova_base() + seg.len() as u64 - 8, 8),
            Some(base + seg.len() - 8)
        );
        assert_eq!(
            seg.iova_to_va(seg.iova_base() + seg.len() as u64 - 8, 9),
            None,
            "runs off the end"
        );
        assert_eq!(seg.iova_to_va(seg.iova_base().wrapping_sub(1), 1), None);
        assert_eq!(seg.iova_to_va(u64::MAX, 2), None);
        assert!(seg.contains(base, seg.len()));
        assert!(!seg.contains(base, seg.len() + 1));
    }

    #[test]
    #[cfg_attr(miri, ignore = "maps files")]
    fn memory_is_zeroed_and_writable() {
        let seg = MemSegment::anonymous("t-rw", 4096, HugePolicy::Never).unwrap();
        let p = seg.base();
        // SAFETY: the segment maps 4096 bytes at `p`, nothing else uses them.
        unsafe {
            assert_eq!(p.add(4095).read_volatile(), 0);
            p.add(10).write_volatile(0xab);
            assert_eq!(p.add(10).read_volatile(), 0xab);
        }
    }

    #[test]
    #[cfg_attr(miri, ignore = "maps files")]
    fn prefer_policy_always_gives_memory() {
        let seg = MemSegment::anonymous("t-prefer", 3 << 20, HugePolicy::Prefer).unwrap();
        assert!(seg.len() >= 3 << 20);
        if seg.is_hugepage() {
            assert_eq!(seg.len() % HUGEPAGE_SIZE, 0);
        }
    }

    #[test]
    #[cfg_attr(miri, ignore = "maps files")]
    fn require_policy_reports_the_numbers_when_pages_are_short() {
        // Ask for far more than any test machine reserves.
        let len = 1usize << 40;
        match MemSegment::anonymous("t-huge", len, HugePolicy::Require) {
            Err(SegmentError::NoHugepages { len: l, pages, .. }) => {
                assert_eq!(l, len);
                assert_eq!(pages, len / HUGEPAGE_SIZE);
            }
            other => panic!("expected NoHugepages, got {other:?}"),
        }
    }

    #[test]
    fn bad_arguments_are_errors() {
        assert!(matches!(
            MemSegment::anonymous("x", 0, HugePolicy::Never),
            Err(SegmentError::ZeroLength { .. })
        ));
        assert!(matches!(
            MemSegment::named("a/b", 4096, HugePolicy::Never),
            Err(SegmentError::BadName { .. })
        ));
        assert!(matches!(
            MemSegment::anonymous("", 4096, HugePolicy::Never),
            Err(SegmentError::BadName { .. })
        ));
    }

    #[test]
    #[cfg_attr(miri, ignore = "maps files")]
    fn named_segment_is_shared_with_a_second_mapping_and_removed_on_drop() {
        let name = unique("named");
        let seg = MemSegment::named(&name, 8192, HugePolicy::Prefer).unwrap();
        let path = seg.path().unwrap().to_owned();
        assert!(path.exists());
        // SAFETY: inside the mapping; no one else writes it.
        unsafe { seg.base().add(100).write_volatile(42) };
        let other = MemSegment::open_named(&name).unwrap();
        assert_ne!(other.base_addr(), seg.base_addr(), "a second, independent mapping");
        // SAFETY: same file, same offset, inside the mapping.
        assert_eq!(unsafe { other.base().add(100).read_volatile() }, 42);
        drop(other);
        assert!(path.exists(), "attaching does not own the file");
        drop(seg);
        assert!(!path.exists(), "the creator removes its file");
    }

    #[test]
    #[cfg_attr(miri, ignore = "maps files")]
    fn kept_named_segment_survives_its_creator() {
        let name = unique("keep");
        let mut seg = MemSegment::named(&name, 4096, HugePolicy::Never).unwrap();
        seg.keep();
        // SAFETY: inside the mapping.
        unsafe { seg.base().write_volatile(7) };
        drop(seg);
        let again = MemSegment::open_named(&name).unwrap();
        // SAFETY: inside the mapping.
        assert_eq!(unsafe { again.base().read_volatile() }, 7);
        std::fs::remove_file(again.path().unwrap()).unwrap();
    }

    #[test]
    #[cfg_attr(miri, ignore = "maps files")]
    fn a_file_descriptor_maps_the_same_memory() {
        let seg = MemSegment::anonymous("t-fd", 4096, HugePolicy::Never).unwrap();
        // SAFETY: inside the mapping.
        unsafe { seg.base().add(8).write_volatile(9) };
        let file = File::from(seg.fd().unwrap().try_clone_to_owned().unwrap());
        let peer = MemSegment::from_file("peer", file, seg.page_size()).unwrap();
        // SAFETY: inside the mapping of the same memfd.
        assert_eq!(unsafe { peer.base().add(8).read_volatile() }, 9);
    }
}
